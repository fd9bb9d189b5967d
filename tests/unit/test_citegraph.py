"""The citation graph artifact: edges, counts, spans, kinds, the bad cases counted, the arrays checked on load."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from legalsearch.citegraph import CitationGraph, build_graph
from legalsearch.config import CitationsConfig, config_from_dict
from legalsearch.errors import ArtifactError, ConfigError
from legalsearch.types import Document


def _section(n: int, text: str) -> Document:
    return Document(id=f"XG § {n}", text=text, title=f"Titel {n}", type="statute",
                    metadata={"law": "XG", "law_title": "Beispielgesetz", "section": f"§ {n}"})


DOCS = [
    _section(1, "Nach § 2 und § 1 Abs. 2 gilt dies; die §§ 2 bis 4 bleiben unberührt."),  # § 1 cites itself
    _section(2, "Die §§ 1 bis 10000 gelten; die §§ 9 bis 3 auch; § 5 YG und § 99 bleiben."),
    _section(3, "Ohne Verweis."),
    _section(4, "Gemäß § 3 des Beispielgesetzes."),
    Document(id="D-1", text="Nach § 2 XG und § 2 Abs. 1 XG sowie § 4 XG.", title="Urteil", type="decision",
             metadata={"law": "XG"}),
]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("model")
    stats = build_graph(DOCS, CitationsConfig(max_range_targets=2), out,
                        withheld=[("XG § 5", "XG", "Beispielgesetz", "§ 5")])
    return out, stats


def test_edges_counts_spans_and_kinds(built: tuple[Path, dict]) -> None:
    out, stats = built
    graph = CitationGraph.load(out, len(DOCS))
    assert graph is not None
    rows = {d.id: i for i, d in enumerate(DOCS)}
    part = graph.cites.of(rows["D-1"])
    assert graph.cites.indices[part].tolist() == [rows["XG § 2"], rows["XG § 4"]]
    assert graph.cites.counts[part].tolist() == [2, 1]
    start, length = int(graph.cites.offsets[part][0]), int(graph.cites.lengths[part][0])
    assert DOCS[rows["D-1"]].text[start:start + length] == "§ 2 XG"
    assert graph.kinds[int(graph.cites.kinds[part][0])] == "decision->statute"
    # the transpose holds the same edges
    into = graph.cited_by.of(rows["XG § 2"])
    assert set(graph.cited_by.indices[into].tolist()) == {rows["XG § 1"], rows["D-1"]}
    assert stats["edges"] == int(graph.cites.indices.shape[0]) == int(graph.cited_by.indices.shape[0])
    assert graph.cites.degree(rows["XG § 4"]) == 1  # "des Beispielgesetzes": by title, to § 3


def test_bad_cases_are_counted_and_kept(built: tuple[Path, dict]) -> None:
    out, stats = built
    graph = CitationGraph.load(out, len(DOCS))
    assert graph is not None
    # § 1 names itself, and § 2's range "§§ 1 bis 10000" holds § 2; both ranges are cut at 2 sections
    assert stats["self_citations"] == 2 and stats["capped_ranges"] == 2
    rows = {d.id: i for i, d in enumerate(DOCS)}
    assert rows["XG § 1"] not in graph.cites.indices[graph.cites.of(rows["XG § 1"])].tolist()
    kept = {(u["surface"], u["reason"]) for u in graph.unresolved(rows["XG § 2"])}
    assert kept == {("§§ 9 bis 3", "malformed range"), ("§ 5 YG", "unknown law"), ("§ 99", "missing section")}
    assert stats["unresolved"] == {"malformed range": 1, "missing section": 1, "unknown law": 1}
    assert graph.unresolved(rows["XG § 3"]) == []


def test_a_repealed_section_is_not_indexed(tmp_path: Path) -> None:
    docs = [_section(1, "Nach § 5 gilt das.")]
    stats = build_graph(docs, CitationsConfig(), tmp_path, withheld=[("XG § 5", "XG", "Beispielgesetz", "§ 5")])
    graph = CitationGraph.load(tmp_path, 1)
    assert graph is not None and stats["edges"] == 0
    assert [u["reason"] for u in graph.unresolved(0)] == ["not indexed"]


def test_a_law_without_sections_is_a_law_when_building_and_after_loading(tmp_path: Path) -> None:
    # a treaty held as a stub (IngestReport.withheld with an empty label): its articles are missing, not unknown
    docs = [_section(1, "Nach Artikel 69 des Übereinkommens über die Erteilung europäischer Patente gilt das.")]
    stub = ("", "EuPatÜbk", "Übereinkommen über die Erteilung europäischer Patente", "")
    build_graph(docs, CitationsConfig(), tmp_path, withheld=[stub])
    graph = CitationGraph.load(tmp_path, 1)
    assert graph is not None
    assert [u["reason"] for u in graph.unresolved(0)] == ["missing section"]
    assert graph.directory.canonical("EPÜ") == "EuPatÜbk"  # the curated alias of a stub resolves in queries too


def test_arrays_that_do_not_form_a_graph_are_refused(built: tuple[Path, dict], tmp_path: Path) -> None:
    import shutil

    out, _ = built
    copy = tmp_path / "m"
    shutil.copytree(out, copy)
    with pytest.raises(ArtifactError, match="indptr"):
        CitationGraph.load(copy, len(DOCS) + 1)
    indptr = np.load(copy / "citations" / "cited_by.indptr.npy")
    indptr[1] = indptr[-1] + 5
    np.save(copy / "citations" / "cited_by.indptr.npy", indptr)
    with pytest.raises(ArtifactError, match="cited_by"):
        CitationGraph.load(copy, len(DOCS))
    graph_json = json.loads((out / "citations" / "graph.json").read_text(encoding="utf-8"))
    assert graph_json["kinds"]


def test_a_range_cap_below_one_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="max_range_targets = 0: must be between 1 and"):
        config_from_dict({"citations": {"max_range_targets": 0}})
