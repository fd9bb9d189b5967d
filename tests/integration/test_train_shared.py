"""Integration on real data: a slice of the shared law corpus (the BGB and a few other laws)."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from plugin_model import extract_laws

from legalsearch.config import TrainConfig, Word2VecConfig
from legalsearch.engine import Model
from legalsearch.errors import ArtifactError
from legalsearch.pipeline import train
from legalsearch.ranking import recommend

pytestmark = [pytest.mark.shared, pytest.mark.slow]

SLICE = ("gesetze/b/bgb/index.md", "gesetze/g/gg/index.md", "gesetze/w/woeigg/index.md",
         "gesetze/b/bgbeg/index.md")


@pytest.fixture(scope="module")
def slice_model(shared_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Train on the BGB, GG, WoEigG and EGBGB, read from the shared archive (small CBOW vectors, one worker)."""
    laws = extract_laws(shared_dir / "corpora" / "gesetze-markdown.tar.gz", SLICE, tmp_path_factory.mktemp("laws"))
    # a small corpus needs many epochs, or the vectors stay degenerate (see docs/evaluation.md)
    cfg = replace(
        TrainConfig(),
        word2vec=Word2VecConfig(vector_size=64, epochs=20, sample=1e-3, workers=1, seed=1, sg=False),
    )
    models = tmp_path_factory.mktemp("models")
    train([laws], cfg, models, cache_dir=tmp_path_factory.mktemp("cache"), progress=False)
    return (models / "current").resolve()


def test_real_section_ids_and_metadata(slice_model: Path) -> None:
    model = Model.load(slice_model)
    for doc_id in ("BGB § 573", "BGB § 573b", "BGB § 1", "GG Art 1"):
        assert doc_id in model.index.rows, doc_id
    doc = model.document("BGB § 573")
    assert doc.title == "Ordentliche Kündigung des Vermieters"
    assert doc.type == "statute" and doc.metadata["law"] == "BGB"
    assert "Mietverhältnis" in str(doc.metadata["heading_path"])
    assert "berechtigtes Interesse" in doc.text
    assert not any("weggefallen" in i for i in model.index.ids)


def test_tenancy_section_recommends_tenancy_sections(slice_model: Path) -> None:
    model = Model.load(slice_model)
    results = recommend(model, positive=["BGB § 573"], k=10).results
    tenancy = [r for r in results if "Mietverhältnis" in str(r.metadata.get("heading_path", ""))]
    assert len(tenancy) >= 6, [r.doc_id for r in results]


@pytest.mark.parametrize("victim", ["index.faiss", "vectors.npy", "ids.txt", "lexical"])
def test_damaged_files_are_refused(slice_model: Path, tmp_path: Path, victim: str) -> None:
    copy = tmp_path / "model"
    shutil.copytree(slice_model, copy)
    target = copy / victim
    if target.is_dir():
        target = sorted(p for p in target.iterdir() if p.is_file())[0]
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x01
    target.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match=target.name):
        Model.load(copy)


def test_citation_routes_and_search_with_real_ids(slice_model: Path) -> None:
    from urllib.parse import quote

    from fastapi.testclient import TestClient

    from legalsearch.api.app import create_app
    from legalsearch.config import ServiceSettings

    settings = ServiceSettings(models_dir=slice_model.parent, watch_interval_s=0)  # type: ignore[call-arg]
    with TestClient(create_app(settings)) as client:
        cites = client.get(f"/documents/{quote('BGB § 573a', safe='')}/citations")
        assert cites.status_code == 200, cites.text
        assert {"BGB § 573", "BGB § 549"} <= {c["id"] for c in cites.json()["citations"]}
        cited = client.get(f"/documents/{quote('BGB § 573', safe='')}/cited-by", params={"limit": 100}).json()
        citing = {c["id"] for c in cited["cited_by"]}
        assert {"BGB § 573a", "BGB § 574", "BGB § 577a"} <= citing, citing
        doc = client.get(f"/documents/{quote('BGB § 573', safe='')}").json()
        assert doc["citations"]["cited_by"] == cited["total"]
        for q, first in (("§ 573 BGB Eigenbedarf", "BGB § 573"), ("Art. 1 GG", "GG Art 1")):
            hit = client.get("/search", params={"q": q}).json()["results"][0]
            assert hit["id"] == first and hit["explanation"]["cited_in_query"], (q, hit["id"])
