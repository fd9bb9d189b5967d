from pathlib import Path

import pytest

from legalsearch.config import (
    TrainConfig,
    config_from_dict,
    describe_settings,
    load_config,
    settings_markdown,
)
from legalsearch.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def test_default_toml_spells_out_exactly_the_defaults() -> None:
    assert load_config(ROOT / "configs" / "default.toml") == TrainConfig()


def test_demo_config_is_valid() -> None:
    assert load_config(ROOT / "configs" / "demo.toml").word2vec.workers == 1


def test_every_setting_has_help_text() -> None:
    for section, name, _default, help_text in describe_settings():
        assert help_text.strip(), f"[{section}] {name} has no help text"


def test_readme_configuration_table_matches_the_code() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start, end = "<!-- settings:start -->", "<!-- settings:end -->"
    assert start in readme and end in readme, "README lacks the generated settings table"
    table = readme.split(start, 1)[1].split(end, 1)[0].strip()
    assert table == settings_markdown(), "README settings table is stale: paste settings_markdown() output"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"word2vec": {"sg": 3}}, "must be true or false"),
        ({"word2vec": {"epochs": "5"}}, "must be an integer"),
        ({"word2vec": {"vector_sizes": 5}}, "unknown setting"),
        ({"wordvec": {}}, "unknown config section"),
        ({"index": {"type": "annoy"}}, "must be one of"),
        ({"search": {"expansion_weight": float("nan")}}, "must be a finite number"),
        ({"search": {"lexical_weight": float("inf")}}, "must be a finite number"),
        ({"search": {"lexical_weight": "0.8"}}, "must be a finite number"),
    ],
)
def test_bad_settings_are_refused_with_a_clear_message(data: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config_from_dict(data)


def test_missing_or_broken_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[word2vec\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)


def test_manifest_round_trip() -> None:
    cfg = TrainConfig()
    assert config_from_dict(cfg.to_dict()) == cfg
