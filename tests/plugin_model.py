"""Session fixtures shared by every test folder: a model trained on the bundled demo corpus."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DEMO_CORPUS = ROOT / "corpora" / "demo"
DEMO_CONFIG = ROOT / "configs" / "demo.toml"


@pytest.fixture(scope="session")
def demo_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models folder holding one model trained on the demo corpus (``current`` points at it).

    Trained once per test session, with one worker and fixed seeds. Tests must not modify it:
    copy it (``shutil.copytree(..., symlinks=True)``) to damage or swap models.
    """
    from legalsearch.config import load_config
    from legalsearch.pipeline import train

    models = tmp_path_factory.mktemp("demo-models")
    train(
        [DEMO_CORPUS],
        load_config(DEMO_CONFIG),
        models,
        extra_text=[DEMO_CORPUS / "extra"],
        cache_dir=tmp_path_factory.mktemp("demo-cache"),
        progress=False,
    )
    return models


@pytest.fixture(scope="session")
def demo_model_path(demo_models_dir: Path) -> Path:
    """The version folder of the demo model."""
    return (demo_models_dir / "current").resolve()


@pytest.fixture(scope="session")
def demo_model(demo_model_path: Path):  # type: ignore[no-untyped-def]
    """The demo model, loaded once (read-only use)."""
    from legalsearch.engine import Model

    return Model.load(demo_model_path)


def extract_laws(archive: Path, members: tuple[str, ...], dest: Path) -> Path:
    """Unpack some laws (``gesetze/<letter>/<slug>/index.md``) of the shared archive into ``dest``."""
    import tarfile

    with tarfile.open(archive) as tar:
        for member in tar:
            if member.name.lstrip("./") in members:
                tar.extract(member, dest, filter="data")
    return dest


def memory_mapped(array: object) -> bool:
    """Whether an array's memory comes from a file mapping (directly, or as a view of a ``np.memmap``)."""
    import numpy as np

    while array is not None:
        if isinstance(array, np.memmap):
            return True
        array = getattr(array, "base", None)
    return False
