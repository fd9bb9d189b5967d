"""The citation graph measured: extraction and resolution on the five hand-labelled samples (tuning, held-out,
second, third and fourth held-out), the graph of the full law corpus (its build time and statistics), and the same
samples through ``legal-reference-extraction`` (refex), overall and per class of citation (``comparison_table``).

``python -m bench.citations --shared ../shared`` prints the figures and writes them as JSON; ``make bench`` runs
it as the ``citations`` suite. Definitions (docs/citations.md): a predicted citation matches a labelled one when
both spans are equal; precision = matched / predicted, recall = matched / labelled; resolution accuracy = matched
citations whose target set (and, for unresolved ones, reason) equals the label's / matched.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench import REPO_ROOT
from legalsearch.citations import Extractor, LawDirectory, directory_of, resolve
from legalsearch.citegraph import build_graph
from legalsearch.config import CitationsConfig, CorpusConfig
from legalsearch.corpus import IngestReport, read_documents
from legalsearch.types import Document

LABELS = REPO_ROOT / "tests" / "fixtures" / "citations" / "labelled.jsonl"
#: a second sample, labelled after the extractor's rules were tuned on LABELS (its misses then fixed rules too)
HELDOUT = REPO_ROOT / "tests" / "fixtures" / "citations" / "heldout.jsonl"
#: a third sample, labelled and committed before any extractor saw its passages (tests/fixtures/citations/README.md)
HELDOUT2 = REPO_ROOT / "tests" / "fixtures" / "citations" / "heldout2.jsonl"
#: a fourth sample, labelled and committed before any extractor saw its passages (tests/fixtures/citations/README.md)
HELDOUT3 = REPO_ROOT / "tests" / "fixtures" / "citations" / "heldout3.jsonl"
#: a fifth sample, labelled and committed before any extractor saw its passages (tests/fixtures/citations/README.md)
HELDOUT4 = REPO_ROOT / "tests" / "fixtures" / "citations" / "heldout4.jsonl"
#: a sixth sample, labelled and committed before any extractor saw its passages (tests/fixtures/citations/README.md)
HELDOUT5 = REPO_ROOT / "tests" / "fixtures" / "citations" / "heldout5.jsonl"
#: the samples in the results: (key, title, path)
SAMPLES = (("sample", "tuning sample", LABELS), ("heldout", "held-out sample", HELDOUT),
           ("heldout2", "second held-out sample", HELDOUT2), ("heldout3", "third held-out sample", HELDOUT3),
           ("heldout4", "fourth held-out sample", HELDOUT4), ("heldout5", "fifth held-out sample", HELDOUT5))
ARCHIVE = Path("corpora") / "gesetze-markdown.tar.gz"
#: misses listed per extractor in the results (all are counted)
MAX_MISSES = 60

#: one predicted citation: (start, end, target ids, reason or None)
Prediction = tuple[int, int, tuple[str, ...], str | None]
Predictor = Callable[[str, str | None], list[Prediction]]


@dataclass
class Scores:
    """Span-match extraction figures and resolution accuracy of one extractor on the sample."""

    name: str
    labelled: int = 0
    predicted: int = 0
    matched: int = 0
    resolved_right: int = 0
    #: resolution right when only the target sets are compared (unresolved reasons not)
    targets_right: int = 0
    misses: list[dict[str, Any]] = field(default_factory=list)
    miss_counts: dict[str, int] = field(default_factory=dict)
    #: per class of labelled citation (``citation_class``): labelled, matched, resolved right
    by_class: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def precision(self) -> float:
        """Matched / predicted."""
        return self.matched / self.predicted if self.predicted else 0.0

    @property
    def recall(self) -> float:
        """Matched / labelled."""
        return self.matched / self.labelled if self.labelled else 0.0

    @property
    def resolution_accuracy(self) -> float:
        """Matched citations resolved exactly as labelled / matched."""
        return self.resolved_right / self.matched if self.matched else 0.0

    def miss(self, kind: str, **detail: Any) -> None:
        """Count (and keep the first few of) one miss."""
        self.miss_counts[kind] = self.miss_counts.get(kind, 0) + 1
        if len(self.misses) < MAX_MISSES:
            self.misses.append({"kind": kind, **detail})

    def to_dict(self) -> dict[str, Any]:
        """The figures, rounded, with the misses."""
        data = asdict(self)
        data.update(precision=round(self.precision, 4), recall=round(self.recall, 4),
                    resolution_accuracy=round(self.resolution_accuracy, 4),
                    target_accuracy=round(self.targets_right / self.matched, 4) if self.matched else 0.0)
        return data


#: a law named by words in the span: "des Bürgerlichen Gesetzbuchs", "der Verordnung ( EG ) Nr. 178/2002"
_TITLE = re.compile(r"\b(?:des|der|dem|zum|zur|dieses|dieser)\s+(?:[a-zäöü]+\s+)?"
                    r"(?:[A-ZÄÖÜ]|\d+\.\s+[A-ZÄÖÜ]|Sechsten|Zehnten)")
_PART_WORDS = {"Abs", "Abs.", "Absatz", "Nr", "Nr.", "Nummer", "S", "S.", "Satz", "Buchst", "Buchst.", "Buchstabe",
               "Halbs", "Halbs.", "Halbsatz", "Alt", "Alt.", "Alternative", "Teil", "Ziff", "Ziff."}


def citation_class(citation: dict[str, Any]) -> str:
    """The kind of a labelled citation, for the per-class figures: ``unresolved`` (labelled unknown law, missing
    section or no law), ``law by title`` (named by words), ``law by abbreviation`` (`§ 573 BGB`, `Art 3 GG`,
    `§ 2 UmwStG 1995`) or ``no law in span`` (`nach § 5`, the first groups of a chain: resolved from the citing
    law or the chain)."""
    if citation["unresolved"]:
        return "unresolved"
    surface = citation["surface"]
    if _TITLE.search(surface):
        return "law by title"
    tokens = surface.split()
    while tokens and re.fullmatch(r"\d{4}", tokens[-1]):
        tokens.pop()
    last = tokens[-1] if tokens else ""
    if len(tokens) > 1 and last not in _PART_WORDS and any(ch.isupper() for ch in last) and tokens[0] != last:
        return "law by abbreviation"
    return "no law in span"


def load_labels(path: Path = LABELS) -> list[dict[str, Any]]:
    """The labelled passages (one JSON object a line)."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def read_corpus(path: Path) -> tuple[list[Document], list[tuple[str, str, str, str]]]:
    """Every document of a corpus, read as training reads it, and its withheld (repealed, empty) sections."""
    report = IngestReport()
    documents = list(read_documents([path], CorpusConfig(), report))
    return documents, report.withheld


def ours(directory: LawDirectory, max_range: int = CitationsConfig().max_range_targets) -> Predictor:
    """The project's extractor and resolver as a predictor."""
    extractor = Extractor(directory)

    def predict(text: str, context: str | None) -> list[Prediction]:
        out = []
        for c in extractor.extract(text):
            r = resolve(c, directory, context, max_range)
            out.append((c.start, c.end, r.targets, r.reason))
        return out

    return predict


def refex(directory: LawDirectory) -> Predictor | str:
    """``legal-reference-extraction`` as a predictor (its books mapped to the corpus's jurabk, a citation without a
    book to the citing law as for ours); the reason as a string when it is not installed."""
    try:
        from refex.orchestrator import CitationExtractor
        logging.getLogger("refex").setLevel(logging.ERROR)  # it warns about every reference without a law
    except ImportError as exc:
        return f"legal-reference-extraction is not installed ({exc}); pip install -e '.[compare]'"
    extractor = CitationExtractor()

    def predict(text: str, context: str | None) -> list[Prediction]:
        spans: dict[tuple[int, int], list[Any]] = {}
        for cit in extractor.extract(text).citations:
            if getattr(cit, "book", None) is None and getattr(cit, "number", None) is None:
                continue  # case references (file numbers), not law citations
            spans.setdefault((cit.span.start, cit.span.end), []).append(cit)
        out = []
        for (start, end), cits in sorted(spans.items()):
            out.append((start, end, *_refex_targets(cits, directory, context)))
        return out

    return predict


def _refex_targets(cits: list[Any], directory: LawDirectory, context: str | None) -> tuple[tuple[str, ...], str | None]:
    targets: list[str] = []
    reason = None
    for cit in cits:
        book = cit.book
        law = directory.canonical(book) if book else context
        if law is None:
            reason = "unknown law" if book else "no law"
            continue
        unit = "Art" if getattr(cit, "unit", "") == "article" else "§"
        number = str(cit.number)
        until = getattr(cit, "range_end", None)
        if until:
            targets.extend(directory.in_range(law, unit, number, str(until)))
        elif (doc_id := directory.lookup(law, unit, number)) is not None:
            targets.append(doc_id)
        else:
            reason = reason or "missing section"
    unique = tuple(dict.fromkeys(targets))
    return unique, None if unique else (reason or "missing section")


def score(name: str, labels: Sequence[dict[str, Any]], predict: Predictor) -> Scores:
    """Run one predictor over the sample and compare it with the labels."""
    s = Scores(name)
    for number, passage in enumerate(labels):
        text = passage["text"]
        gold = {(c["start"], c["end"]): c for c in passage["citations"]}
        predicted = {(p[0], p[1]): p for p in predict(text, passage.get("context_law"))}
        s.labelled += len(gold)
        s.predicted += len(predicted)
        where = {"passage": number, "citing": passage.get("citing") or passage.get("origin")}
        for span, c in gold.items():
            p = predicted.get(span)
            cls = s.by_class.setdefault(citation_class(c), {"labelled": 0, "matched": 0, "resolved_right": 0})
            cls["labelled"] += 1
            cls["matched"] += p is not None
            cls["resolved_right"] += (p is not None and set(p[2]) == set(c["targets"]) and p[3] == c["unresolved"])
            if p is None:
                near = [text[a:b] for a, b in predicted if a < span[1] and b > span[0]]
                s.miss("missed", **where, labelled=c["surface"], predicted_overlapping=near)
                continue
            s.matched += 1
            same_targets = set(p[2]) == set(c["targets"])
            s.targets_right += same_targets
            if same_targets and p[3] == c["unresolved"]:
                s.resolved_right += 1
            else:
                s.miss("wrong resolution", **where, surface=c["surface"], labelled=c["targets"],
                       labelled_reason=c["unresolved"], predicted=list(p[2]), predicted_reason=p[3])
        for span in predicted.keys() - gold.keys():
            s.miss("spurious", **where, predicted=text[span[0]:span[1]])
    return s


def graph_figures(documents: Sequence[Document], withheld: Sequence[tuple[str, str, str, str]],
                  config: CitationsConfig) -> dict[str, Any]:
    """Build the graph of ``documents`` in a temporary folder: seconds and statistics."""
    with tempfile.TemporaryDirectory(prefix="legalsearch-citations-") as tmp:
        started, cpu = time.perf_counter(), time.process_time()
        stats = build_graph(documents, config, Path(tmp), withheld)
        seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
        size = sum(p.stat().st_size for p in Path(tmp).rglob("*") if p.is_file())
    return {"documents": len(documents), "build_seconds": round(seconds, 2), "build_cpu_seconds": round(cpu_seconds, 2),
            "artifact_bytes": size, **stats}


def run_citations(shared: Path, quick: bool = False) -> dict[str, Any]:
    """The suite: graph of the full law corpus (demo corpus with ``quick``), the sample through both extractors."""
    started = time.perf_counter()
    if quick or not (shared / ARCHIVE).is_file():
        documents, withheld = read_corpus(REPO_ROOT / "corpora" / "demo")
        corpus = "corpora/demo"
    else:
        documents, withheld = read_corpus(shared / ARCHIVE)
        corpus = str(shared / ARCHIVE)
    read_seconds = time.perf_counter() - started
    results: dict[str, Any] = {"corpus": corpus, "read_seconds": round(read_seconds, 2),
                               "graph": graph_figures(documents, withheld, CitationsConfig())}
    if corpus == "corpora/demo":
        results["sample"] = "skipped: the labelled sample needs the full law corpus to resolve"
        return results
    directory = directory_of(documents, withheld)
    other = refex(directory)
    for key, _, path in SAMPLES:
        labels = load_labels(path)
        results[key] = {"passages": len(labels), "ours": score("legalsearch", labels, ours(directory)).to_dict()}
        results[key]["refex"] = other if isinstance(other, str) else score("refex", labels, other).to_dict()
    return results


def summary(results: dict[str, Any]) -> str:
    """A few lines of text: build time, graph statistics, both extractors' figures."""
    g = results["graph"]
    lines = [f"graph of {results['corpus']}: {g['documents']:,} documents, built in {g['build_seconds']} s; "
             f"{g['citations']:,} citations, {g['resolved']:,} resolved, unresolved {g['unresolved']}; "
             f"{g['edges']:,} edges {g['edges_by_kind']}; statutes citing {g['share_statutes_citing']:.1%}, "
             f"cited {g['share_statutes_cited']:.1%}"]
    lines += [f"  most cited: {m['id']} ({m['citations']} citations from {m['citing']} documents)"
              for m in g["most_cited"][:10]]
    sample = results["sample"]
    if isinstance(sample, str):
        return "\n".join([*lines, sample])
    for key, title, _ in SAMPLES:
        part = results.get(key, {})
        for name in ("ours", "refex"):
            s = part.get(name)
            if s is None or isinstance(s, str):
                lines.append(f"{title}, {name}: {s or 'not measured'}")
                continue
            lines.append(f"{title}, {s['name']}: precision {s['precision']:.3f}, recall {s['recall']:.3f}, "
                         f"resolution accuracy {s['resolution_accuracy']:.3f} (targets only {s['target_accuracy']:.3f})"
                         f" over {s['labelled']} labelled / {s['predicted']} predicted; misses {s['miss_counts']}")
    lines += ["", *comparison_table(results)]
    return "\n".join(lines)


def comparison_table(results: dict[str, Any]) -> list[str]:
    """Markdown: both extractors on every sample, overall and per class of labelled citation (recall = matched /
    labelled of the class; resolved = matched and resolved exactly as labelled / labelled of the class)."""
    lines = ["| sample | class | labelled | legalsearch recall | legalsearch resolved | refex recall "
             "| refex resolved |", "|---|---|---:|---:|---:|---:|---:|"]
    for key, title, _ in SAMPLES:
        part = results.get(key)
        if not isinstance(part, dict) or not isinstance(part.get("ours"), dict):
            continue
        scores = [part["ours"], part.get("refex")]
        for cls in ["all", *sorted(part["ours"]["by_class"])]:
            cells = []
            for s in scores:
                if not isinstance(s, dict):
                    cells += ["–", "–"]
                    continue
                c = s["by_class"].get(cls, {}) if cls != "all" else s
                n = c.get("labelled", 0) or 1
                cells += [f"{c.get('matched', 0) / n:.3f}", f"{c.get('resolved_right', 0) / n:.3f}"]
            labelled = part["ours"]["labelled"] if cls == "all" else part["ours"]["by_class"][cls]["labelled"]
            lines.append(f"| {title} | {cls} | {labelled} | " + " | ".join(cells) + " |")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: print the summary, write the JSON."""
    p = argparse.ArgumentParser(prog="python -m bench.citations", description=__doc__)
    p.add_argument("--shared", type=Path, default=REPO_ROOT.parent / "shared")
    p.add_argument("--quick", action="store_true", help="the demo corpus only (no sample evaluation)")
    p.add_argument("--output", type=Path, default=None, help="write the results as JSON here")
    args = p.parse_args(argv)
    results = run_citations(args.shared, args.quick)
    print(summary(results))
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
