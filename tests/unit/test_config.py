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


def test_configuration_tables_match_the_code() -> None:
    doc = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    start, end = "<!-- settings:start -->", "<!-- settings:end -->"
    assert start in doc and end in doc, "docs/configuration.md lacks the generated settings tables"
    table = doc.split(start, 1)[1].split(end, 1)[0].strip()
    assert table == settings_markdown(), "docs/configuration.md is stale: paste settings_markdown() output"


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


def test_every_numeric_setting_declares_its_range() -> None:
    numeric = [(s, n, h) for s, n, d, h in describe_settings() if type(d) in (int, float)]
    assert numeric
    missing = [f"[{s}] {n}" for s, n, h in numeric if "Range:" not in h]
    assert not missing, f"settings without a declared range: {missing}"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"word2vec": {"vector_size": 0}}, r"\[word2vec\] vector_size = 0: must be between 4 and 4096"),
        ({"lexical": {"b": 1.5}}, r"\[lexical\] b = 1.5: must be between 0.0 and 1.0"),
        ({"keywords": {"max_df": -0.1}}, "must be between"),
        ({"search": []}, r"\[search\] must be a table"),
    ],
)
def test_out_of_range_values_are_refused_with_the_range(data: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config_from_dict(data)


def test_sections_are_frozen_and_coerce_nothing() -> None:
    config = config_from_dict({"lexical": {"k1": 1}})
    assert config.lexical.k1 == 1.0 and isinstance(config.lexical.k1, float)
    with pytest.raises(AttributeError):
        config.lexical.k1 = 3.0  # type: ignore[misc]
