"""The citation graph of a model: who cites whom, as CSR arrays in ``citations/``, verified on load.

Layout (every file listed with its hash in the manifest)::

    citations/
      cites.{indptr,indices,counts,offsets,lengths,kinds}.npy     row i -> cited rows, per edge: citations,
                                                                  first citing span (offset, length), kind
      cited_by.{indptr,indices,counts,offsets,lengths,kinds}.npy  the transpose: row j <- citing rows; offset
                                                                  and length are the span in the citing text
      unresolved.jsonl + unresolved.indptr.npy                    per row, the citations that resolve to no
                                                                  document, as written, with the reason
      laws.json                                                   every law's sections, to resolve queries
      graph.json                                                  edge kinds and the statistics of the build

A self-citation (a section naming itself) is counted in the statistics and is no edge.
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from legalsearch.citations import Extractor, LawDirectory, Resolved, directory_of, resolve
from legalsearch.config import CitationsConfig
from legalsearch.errors import ArtifactError, InvalidRequestError
from legalsearch.model import load_array
from legalsearch.types import Document

if TYPE_CHECKING:
    from legalsearch.engine import Model

log = logging.getLogger(__name__)

CITATIONS_DIR = "citations"
#: the files of ``CITATIONS_DIR`` beside the edge arrays (``Edges.save``)
_GRAPH_FILE = "graph.json"  # kinds and statistics
_UNRESOLVED_FILE = "unresolved.jsonl"  # one JSON list a row with unresolved citations
_UNRESOLVED_INDPTR_FILE = "unresolved.indptr.npy"  # byte offsets of each row's line in _UNRESOLVED_FILE
_LAWS_FILE = "laws.json"  # the law directory: titles and sections
_SHORT_TITLES_FILE = "short_titles.json"  # short titles read from the corpus's text
_ALIASES_FILE = "aliases.json"  # law names the corpus defines
_FIELDS = ("indptr", "indices", "counts", "offsets", "lengths", "kinds")
_DTYPES = {"indptr": np.int64, "indices": np.int32, "counts": np.int32, "offsets": np.int32,
           "lengths": np.int32, "kinds": np.uint8}
_MAY_CITE = re.compile(r"§|\bArt")
#: statistics keep this many most cited sections
TOP_CITED = 25


@dataclass(frozen=True)
class Edges:
    """One direction of the graph as CSR: row -> (other row, count, first span offset and length, kind)."""

    indptr: np.ndarray
    indices: np.ndarray
    counts: np.ndarray
    offsets: np.ndarray
    lengths: np.ndarray
    kinds: np.ndarray

    def of(self, row: int) -> slice:
        """The positions of one row's edges."""
        return slice(int(self.indptr[row]), int(self.indptr[row + 1]))

    def degree(self, row: int) -> int:
        """How many distinct documents the row links to."""
        return int(self.indptr[row + 1] - self.indptr[row])

    def save(self, folder: Path, name: str) -> None:
        """Write the six arrays as ``<name>.<field>.npy``."""
        for f in _FIELDS:
            np.save(folder / f"{name}.{f}.npy", getattr(self, f).astype(_DTYPES[f], copy=False))

    @classmethod
    def load(cls, folder: Path, name: str, n_docs: int, n_kinds: int, mmap: bool) -> Edges:
        """Read and check one direction; ArtifactError when the arrays do not form a graph of ``n_docs`` rows."""
        try:
            arrays = {f: load_array(folder / f"{name}.{f}.npy", mmap) for f in _FIELDS}
        except (OSError, ValueError) as exc:
            raise ArtifactError(f"citation graph in {folder} is unreadable: {exc}") from exc
        edges = cls(**arrays)
        edges._check(folder, name, n_docs, n_kinds)
        return edges

    def _check(self, folder: Path, name: str, n_docs: int, n_kinds: int) -> None:
        indptr, m = self.indptr, int(self.indices.shape[0])
        problems = []
        if indptr.shape != (n_docs + 1,) or int(indptr[0]) != 0 or int(indptr[-1]) != m:
            problems.append(f"indptr has shape {indptr.shape} and ends at {int(indptr[-1]) if indptr.size else None}"
                            f" for {n_docs} documents and {m} edges")
        elif np.any(np.diff(indptr) < 0):
            problems.append("indptr decreases")
        for f in _FIELDS[1:]:
            arr = getattr(self, f)
            if arr.shape != (m,) or arr.dtype != _DTYPES[f]:
                problems.append(f"{f} has shape {arr.shape} and dtype {arr.dtype}, expected ({m},) {_DTYPES[f]}")
        if not problems and m:
            if int(self.indices.min()) < 0 or int(self.indices.max()) >= n_docs:
                problems.append("indices outside the documents")
            if int(self.kinds.max()) >= n_kinds:
                problems.append("kinds outside the kind table")
            if int(self.counts.min()) < 1:
                problems.append("an edge counted less than once")
        if problems:
            raise ArtifactError(f"citation graph {folder}/{name}: {'; '.join(problems)}")


@dataclass(frozen=True)
class CitationGraph:
    """Both directions, the unresolved citations per row, and the laws' sections."""

    folder: Path
    cites: Edges
    cited_by: Edges
    kinds: tuple[str, ...]
    stats: dict[str, Any]
    unresolved_indptr: np.ndarray

    @classmethod
    def load(cls, model_dir: Path, n_docs: int, mmap: bool = True) -> CitationGraph | None:
        """The graph of a model folder; None for a model trained before the graph existed."""
        folder = Path(model_dir) / CITATIONS_DIR
        if not folder.is_dir():
            return None
        try:
            meta = json.loads((folder / _GRAPH_FILE).read_text(encoding="utf-8"))
            unresolved = load_array(folder / _UNRESOLVED_INDPTR_FILE, mmap)
        except (OSError, ValueError) as exc:
            raise ArtifactError(f"citation graph in {folder} is unreadable: {exc}") from exc
        kinds = tuple(meta.get("kinds", ()))
        graph = cls(folder, Edges.load(folder, "cites", n_docs, len(kinds), mmap),
                    Edges.load(folder, "cited_by", n_docs, len(kinds), mmap), kinds, dict(meta.get("stats", {})),
                    unresolved)
        size = (folder / _UNRESOLVED_FILE).stat().st_size
        if unresolved.shape != (n_docs + 1,) or int(unresolved[-1]) != size or np.any(np.diff(unresolved) < 0):
            raise ArtifactError(f"citation graph {folder}: unresolved.indptr does not index unresolved.jsonl")
        if graph.cites.indices.shape != graph.cited_by.indices.shape:
            raise ArtifactError(f"citation graph {folder}: cites and cited_by hold different numbers of edges")
        return graph

    def unresolved(self, row: int) -> list[dict[str, Any]]:
        """The citations of a row that resolve to no document: start, end, surface, reason."""
        start, end = int(self.unresolved_indptr[row]), int(self.unresolved_indptr[row + 1])
        if start == end:
            return []
        with open(self.folder / _UNRESOLVED_FILE, "rb") as fh:
            fh.seek(start)
            items: list[dict[str, Any]] = json.loads(fh.read(end - start))
        return items

    @cached_property
    def directory(self) -> LawDirectory:
        """The laws and their sections, for resolving citations in queries (read on first use)."""
        data = json.loads((self.folder / _LAWS_FILE).read_text(encoding="utf-8"))
        rows = [(doc_id, law, entry["title"], f"{unit} {number}")
                for law, entry in data.items() for unit, number, doc_id in entry["sections"]]
        # laws without a section (treaties held as stubs) are indexed too, so that their names and aliases resolve
        rows += [("", law, entry["title"], "") for law, entry in data.items() if not entry["sections"]]
        directory = LawDirectory.from_sections(rows)
        for law, entry in data.items():  # laws without a numbered section still have a title
            directory.sections.setdefault(law, [])
            directory.titles.setdefault(law, entry["title"])
        short = self.folder / _SHORT_TITLES_FILE
        if directory.short_titles is not None and short.is_file():  # absent in graphs of the first version
            directory.short_titles.found.update(json.loads(short.read_text(encoding="utf-8")))
        aliases = self.folder / _ALIASES_FILE
        if aliases.is_file():  # absent in graphs written before the corpus's definitions were read
            learned = json.loads(aliases.read_text(encoding="utf-8"))
            directory.add_aliases(learned.get("aliases", {}), learned.get("names", {}))
        return directory


def _context_law(doc: Document) -> str | None:
    # only documents read from law Markdown carry "section": a decision's "law" metadata is a topic, not its law
    law = doc.metadata.get("law")
    return law if isinstance(law, str) and "section" in doc.metadata else None


@dataclass
class _Build:
    rows: dict[str, int]
    types: Sequence[str]
    kinds: dict[str, int]
    stats: Counter[str]
    reasons: Counter[str]

    def kind(self, src: int, dst: int) -> int:
        name = f"{self.types[src]}->{self.types[dst]}"
        return self.kinds.setdefault(name, len(self.kinds))


def build_graph(documents: Sequence[Document], config: CitationsConfig, out: Path,
                withheld: Sequence[tuple[str, str, str, str]] = ()) -> dict[str, Any]:
    """Extract, resolve and write the graph of ``documents`` into ``out/citations``; returns its statistics.

    ``withheld`` sections (repealed or empty, see ``IngestReport.withheld``) are citable but no documents: a
    citation naming only such sections is kept with reason "not indexed"."""
    directory = directory_of(documents, withheld)
    extractor = Extractor(directory)
    build = _Build({d.id: i for i, d in enumerate(documents)}, [d.type for d in documents], {}, Counter(),
                   Counter())
    edges: dict[tuple[int, int], list[int]] = {}
    folder = out / CITATIONS_DIR
    folder.mkdir()
    unresolved_indptr = np.zeros(len(documents) + 1, dtype=np.int64)
    with open(folder / _UNRESOLVED_FILE, "wb") as unresolved_out:
        for row, doc in enumerate(documents):
            found = [resolve(c, directory, _context_law(doc), config.max_range_targets)
                     for c in extractor.extract(doc.text)]
            missing = _add_edges(build, edges, row, found)
            if missing:
                unresolved_out.write(json.dumps(missing, ensure_ascii=False).encode("utf-8") + b"\n")
            unresolved_indptr[row + 1] = unresolved_out.tell()
    np.save(folder / _UNRESOLVED_INDPTR_FILE, unresolved_indptr)
    cites, cited_by = _csr(edges, len(documents))
    cites.save(folder, "cites")
    cited_by.save(folder, "cited_by")
    stats = _statistics(build, cites, cited_by, documents)
    kinds = sorted(build.kinds, key=build.kinds.__getitem__)
    _write_json(folder / _GRAPH_FILE, {"kinds": kinds, "stats": stats})
    _write_json(folder / _LAWS_FILE, {
        law: {"title": directory.titles.get(law, ""), "sections": [list(s) for s in sections]}
        for law, sections in directory.sections.items()
    })
    # the short titles read from the corpus's text, so that queries resolve them without the vocabulary
    short = directory.short_titles.found if directory.short_titles is not None else {}
    _write_json(folder / _SHORT_TITLES_FILE, {k: v for k, v in short.items() if v is not None})
    # the law names the corpus defines ("Kreditwesengesetzes (KWG)"), so that queries read them too
    _write_json(folder / _ALIASES_FILE, directory.learned)
    log.info("citations: %d found, %d resolved, %d edges", stats["citations"], stats["resolved"], stats["edges"])
    return stats


def _add_edges(build: _Build, edges: dict[tuple[int, int], list[int]], row: int,
               found: Sequence[Resolved]) -> list[dict[str, Any]]:
    """Count one document's citations into ``edges``; returns its unresolved ones as written."""
    unresolved = []
    for r in found:
        c = r.citation
        build.stats["citations"] += 1
        build.stats["capped_ranges"] += bool(r.capped)
        build.stats["missing_sections"] += len(r.missing)
        if r.reason is not None:
            build.reasons[r.reason] += 1
            unresolved.append({"start": c.start, "end": c.end, "surface": c.surface, "reason": r.reason,
                               "law": c.law})
            continue
        build.stats["resolved"] += 1
        indexed = [build.rows[t] for t in r.targets if t in build.rows]
        build.stats["withheld_targets"] += len(r.targets) - len(indexed)
        if not indexed:
            build.reasons["not indexed"] += 1
            unresolved.append({"start": c.start, "end": c.end, "surface": c.surface, "reason": "not indexed",
                               "law": c.law})
            continue
        for dst in indexed:
            if dst == row:
                build.stats["self_citations"] += 1
                continue
            edge = edges.get((row, dst))
            if edge is None:
                edges[(row, dst)] = [1, c.start, c.end - c.start, build.kind(row, dst)]
            else:
                edge[0] += 1
    return unresolved


def _csr(edges: dict[tuple[int, int], list[int]], n: int) -> tuple[Edges, Edges]:
    if edges:
        pairs = np.array(list(edges), dtype=np.int64)
        values = np.array(list(edges.values()), dtype=np.int64)
    else:
        pairs, values = np.zeros((0, 2), np.int64), np.zeros((0, 4), np.int64)
    return _direction(pairs[:, 0], pairs[:, 1], values, n), _direction(pairs[:, 1], pairs[:, 0], values, n)


def _direction(src: np.ndarray, dst: np.ndarray, values: np.ndarray, n: int) -> Edges:
    order = np.lexsort((dst, src))
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(src, minlength=n), out=indptr[1:])
    v = values[order]
    return Edges(indptr, dst[order].astype(np.int32), v[:, 0].astype(np.int32), v[:, 1].astype(np.int32),
                 v[:, 2].astype(np.int32), v[:, 3].astype(np.uint8))


def _statistics(build: _Build, cites: Edges, cited_by: Edges, documents: Sequence[Document]) -> dict[str, Any]:
    statutes = np.array([t == "statute" for t in build.types], dtype=bool)
    out_deg, in_deg = np.diff(cites.indptr), np.diff(cited_by.indptr)
    n_statutes = int(statutes.sum())
    incoming = np.bincount(cites.indices, weights=cites.counts, minlength=len(documents)).astype(np.int64)
    top = np.argsort(-incoming, kind="stable")[:TOP_CITED]
    kind_names = sorted(build.kinds, key=build.kinds.__getitem__)
    return {
        "citations": build.stats["citations"],
        "resolved": build.stats["resolved"],
        "unresolved": dict(sorted(build.reasons.items())),
        "missing_sections": build.stats["missing_sections"],
        "self_citations": build.stats["self_citations"],
        "withheld_targets": build.stats["withheld_targets"],
        "capped_ranges": build.stats["capped_ranges"],
        "edges": int(cites.indices.shape[0]),
        "edge_citations": int(cites.counts.sum()),
        "edges_by_kind": {k: int((cites.kinds == i).sum()) for i, k in enumerate(kind_names)},
        "statutes": n_statutes,
        "statutes_citing": int((statutes & (out_deg > 0)).sum()),
        "statutes_cited": int((statutes & (in_deg > 0)).sum()),
        "share_statutes_citing": round(float((statutes & (out_deg > 0)).sum()) / max(n_statutes, 1), 4),
        "share_statutes_cited": round(float((statutes & (in_deg > 0)).sum()) / max(n_statutes, 1), 4),
        "most_cited": [{"id": documents[int(r)].id, "citations": int(incoming[r]), "citing": int(in_deg[r])}
                       for r in top if incoming[r] > 0],
    }


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, ensure_ascii=False) + "\n", encoding="utf-8")


@dataclass(frozen=True, slots=True)
class CitationLink:
    """One edge as the API and the CLI show it: the other document, how often, where, and the edge kind."""

    id: str
    title: str
    type: str
    #: how many citations of the citing document name the cited one
    count: int
    #: the first citing span, in the citing document's text
    start: int
    end: int
    surface: str
    kind: str


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A document's resolved citations (one link per cited document) and those that resolve to nothing."""

    doc_id: str
    links: tuple[CitationLink, ...]
    unresolved: tuple[dict[str, Any], ...]


@dataclass(frozen=True, slots=True)
class Incoming:
    """One page of the documents citing a document, most citations first."""

    doc_id: str
    total: int
    links: tuple[CitationLink, ...]


def graph_of(model: Model) -> CitationGraph:
    """The model's citation graph; InvalidRequestError for a model trained without it."""
    if model.citations is None:
        raise InvalidRequestError(
            f"model {model.version} has no citation graph (trained before it existed, or with [citations] "
            "enabled = false): retrain it to get citations"
        )
    return model.citations


def counts_of(model: Model, row: int) -> dict[str, int] | None:
    """How many documents a row cites, how many cite it, how many of its citations resolve to nothing."""
    graph = model.citations
    if graph is None:
        return None
    return {"cites": graph.cites.degree(row), "cited_by": graph.cited_by.degree(row),
            "unresolved": len(graph.unresolved(row))}


def outgoing(model: Model, doc_id: str) -> Outgoing:
    """What a document cites, in the order of the cited documents in the corpus, plus its unresolved citations."""
    graph, row = graph_of(model), model.row_of(doc_id)
    text = model.documents.record(row)["text"]
    part = graph.cites.of(row)
    links = []
    for other, count, start, length, kind in zip(
        graph.cites.indices[part].tolist(), graph.cites.counts[part].tolist(), graph.cites.offsets[part].tolist(),
        graph.cites.lengths[part].tolist(), graph.cites.kinds[part].tolist(), strict=True,
    ):
        record = model.documents.record(other)
        links.append(CitationLink(record["id"], record["title"], record["type"], count, start, start + length,
                                  text[start:start + length], graph.kinds[kind]))
    return Outgoing(doc_id, tuple(links), tuple(graph.unresolved(row)))


def incoming(model: Model, doc_id: str, types: Sequence[str] = (), offset: int = 0, limit: int = 20) -> Incoming:
    """The documents citing ``doc_id`` (only of ``types`` when given), most citations first, then corpus order."""
    if offset < 0 or limit < 1:
        raise InvalidRequestError("offset must be at least 0 and limit at least 1")
    graph, row = graph_of(model), model.row_of(doc_id)
    part = graph.cited_by.of(row)
    rows = np.asarray(graph.cited_by.indices[part], dtype=np.int64)
    counts = np.asarray(graph.cited_by.counts[part], dtype=np.int64)
    positions = np.arange(rows.size)
    if types:
        wanted = set(types)
        keep = np.array([model.documents.record(int(r))["type"] in wanted for r in rows.tolist()], dtype=bool)
        positions = positions[keep] if keep.size else positions
    order = positions[np.lexsort((rows[positions], -counts[positions]))]
    page = order[offset:offset + limit].tolist()
    links = []
    for p in page:
        at = part.start + p
        record = model.documents.record(int(rows[p]))
        start, length = int(graph.cited_by.offsets[at]), int(graph.cited_by.lengths[at])
        links.append(CitationLink(record["id"], record["title"], record["type"], int(counts[p]), start,
                                  start + length, record["text"][start:start + length],
                                  graph.kinds[int(graph.cited_by.kinds[at])]))
    return Incoming(doc_id, int(order.size), tuple(links))


def named_sections(model: Model, query: str) -> dict[int, str]:
    """The rows of the sections a query names ("§ 573 BGB Eigenbedarf", "Art. 1 GG"), in the query's order, each
    with the citation as the query wrote it; empty when it names none or the model has no graph."""
    graph = model.citations
    if graph is None or not _MAY_CITE.search(query):
        return {}
    directory = graph.directory
    named: dict[int, str] = {}
    for citation in Extractor(directory).extract(query):
        found = resolve(citation, directory, None, model.config.citations.max_range_targets)
        for target in found.targets:
            row = model.index.rows.get(target)
            if row is not None:
                named.setdefault(row, citation.surface)
    return named
