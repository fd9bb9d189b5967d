"""The indexed documents inside a model folder: texts by row, and metadata columns for filtering.

Row *i* here is row *i* of the FAISS index and of ``ids.txt``. Texts stay on disk (memory-mapped JSON Lines
with an offsets array); metadata is kept as one integer code array per field, so that filters run as numpy
comparisons before ranking and server workers share the pages.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from legalsearch.errors import ArtifactError, InvalidRequestError
from legalsearch.model import load_array
from legalsearch.types import Document, Scalar

DOCS_FILE = "documents.jsonl"
OFFSETS_FILE = "documents_offsets.npy"
TEXT_HASH_FILE = "documents_texthash.npy"
FACETS_DIR = "facets"
FACET_VALUES = "values.json"
#: fields every document has, filterable like metadata
BUILTIN_FIELDS = ("type",)
#: what can be counted per value (``DocumentStore.facets``): three metadata fields, and the year of ``date``
FACET_NAMES = ("law", "type", "court", "year")
#: the metadata field the ``year`` facet is derived from (ISO dates: the year is the first four characters)
YEAR_SOURCE = "date"


_DIGIT = re.compile(r"\d")


def text_fingerprint(text: str) -> int:
    """A 63-bit hash of a text with case, whitespace and digits ignored: equal for near-identical sections
    such as the many "Inkrafttreten" clauses that differ only in a date."""
    # the same as collapsing runs of digits and whitespace into one space and stripping, about twice as fast
    norm = " ".join(_DIGIT.sub(" ", text.lower()).split())
    return int.from_bytes(hashlib.blake2b(norm.encode("utf-8"), digest_size=8).digest(), "little") >> 1


def write_documents(documents: Iterable[Document], folder: Path) -> int:
    """Write documents in row order, with byte offsets and per-field metadata codes; returns the count."""
    offsets = [0]
    hashes: list[int] = []
    columns: dict[str, list[Scalar]] = {}
    n = 0
    with (folder / DOCS_FILE).open("wb") as fh:
        for doc in documents:
            record = {"id": doc.id, "title": doc.title, "type": doc.type, "text": doc.text,
                      "metadata": dict(doc.metadata)}
            line = json.dumps(record, ensure_ascii=False).encode("utf-8") + b"\n"
            fh.write(line)
            offsets.append(offsets[-1] + len(line))
            hashes.append(text_fingerprint(doc.text))
            fields = {"type": doc.type, **doc.metadata}
            for key in fields.keys() - columns.keys():
                columns[key] = [None] * n
            for key, column in columns.items():
                column.append(fields.get(key))
            n += 1
    np.save(folder / OFFSETS_FILE, np.asarray(offsets, dtype=np.int64))
    np.save(folder / TEXT_HASH_FILE, np.asarray(hashes, dtype=np.int64))
    facets = folder / FACETS_DIR
    facets.mkdir(exist_ok=True)
    values: dict[str, list[Scalar]] = {}
    for i, (key, column) in enumerate(sorted(columns.items())):
        uniques: list[Scalar] = sorted({v for v in column if v is not None}, key=lambda v: (type(v).__name__, v))
        code_of = {v: c for c, v in enumerate(uniques)}
        codes = np.asarray([code_of[v] if v is not None else -1 for v in column], dtype=np.int32)
        np.save(facets / f"{i:03d}.npy", codes)
        values[key] = uniques
    (facets / FACET_VALUES).write_text(
        json.dumps({"fields": sorted(columns), "values": values}, ensure_ascii=False), encoding="utf-8"
    )
    return n


@dataclass(frozen=True)
class DateRange:
    """An inclusive range over ISO date strings; either end may be open."""

    start: str | None = None
    end: str | None = None

    def contains(self, value: Scalar) -> bool:
        """Whether an ISO date (string) falls inside."""
        if not isinstance(value, str):
            return False
        return (self.start is None or value >= self.start) and (self.end is None or value <= self.end)


FilterValue = Scalar | DateRange | Sequence[Scalar]


class DocumentStore:
    """Read access to a model's documents by row; filters over metadata."""

    def __init__(self, folder: Path, mmap_texts: bool = True) -> None:
        try:
            self._offsets = load_array(folder / OFFSETS_FILE)
            self.text_hashes: np.ndarray = load_array(folder / TEXT_HASH_FILE)
            self._fh = (folder / DOCS_FILE).open("rb")
            self._buf: mmap.mmap | bytes = (
                mmap.mmap(self._fh.fileno(), 0, access=mmap.ACCESS_READ) if mmap_texts else self._fh.read()
            )
            meta = json.loads((folder / FACETS_DIR / FACET_VALUES).read_text(encoding="utf-8"))
            self.fields: tuple[str, ...] = tuple(meta["fields"])
            self._values: dict[str, list[Scalar]] = meta["values"]
            self._codes = {
                key: load_array(folder / FACETS_DIR / f"{i:03d}.npy")
                for i, key in enumerate(self.fields)
            }
        except (OSError, ValueError, KeyError) as exc:
            raise ArtifactError(f"document store in {folder} is unreadable: {exc}") from exc
        self._code_of = {k: {_key(v): c for c, v in enumerate(vals)} for k, vals in self._values.items()}
        self._facet_columns = {name: (self._codes[name], self._values[name])
                               for name in FACET_NAMES if name in self._codes}
        if YEAR_SOURCE in self._codes:
            self._facet_columns["year"] = _year_column(self._codes[YEAR_SOURCE], self._values[YEAR_SOURCE])
        #: per facet, its codes in runs of consecutive rows (``_CodeRuns``), where there are few runs
        self._facet_runs = {name: runs for name, (codes, _) in self._facet_columns.items()
                            if (runs := _code_runs(codes)) is not None}

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def record(self, row: int) -> dict[str, Any]:
        """The stored JSON record of one row."""
        lo, hi = int(self._offsets[row]), int(self._offsets[row + 1])
        line = self._buf[lo:hi]
        try:
            # several times faster than json on long texts
            data: dict[str, Any] = orjson.loads(line)
        except orjson.JSONDecodeError:  # NaN and the like, which json writes and reads
            return self._json_record(line)
        # orjson reads an integer beyond 64 bits as a float: metadata floats (rare) are read again by json
        if any(type(v) is float for v in data["metadata"].values()):
            return self._json_record(line)
        return data

    @staticmethod
    def _json_record(line: bytes) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(line)
        return data

    def get(self, row: int) -> Document:
        """The document at a row."""
        r = self.record(row)
        return Document(id=r["id"], text=r["text"], title=r["title"], type=r["type"], metadata=r["metadata"])

    def iter_documents(self) -> Iterable[Document]:
        """Every document in row order."""
        for row in range(len(self)):
            yield self.get(row)

    def field_value(self, field: str, row: int) -> Scalar:
        """One metadata value of one row, from the code arrays (no JSON parsing)."""
        codes = self._codes.get(field)
        if codes is None:
            return None
        code = int(codes[row])
        return None if code < 0 else self._values[field][code]

    def column(self, field: str) -> tuple[np.ndarray | None, list[Scalar]]:
        """A metadata field's code per row (-1: no value) and the values the codes stand for; (None, []) for a
        field the corpus does not have."""
        codes = self._codes.get(field)
        return (None, []) if codes is None else (codes, self._values[field])

    def filter_rows(self, filters: Mapping[str, FilterValue]) -> np.ndarray:
        """Sorted rows whose metadata match every filter: equality, any of a list, or a date range."""
        mask = np.ones(len(self), dtype=bool)
        for field, wanted in filters.items():
            codes = self._codes.get(field)
            if codes is None:
                raise InvalidRequestError(
                    f"unknown filter field {field!r}; filterable fields: {', '.join(self.fields)}"
                )
            values = self._values[field]
            if isinstance(wanted, DateRange):
                ok = [c for c, v in enumerate(values) if wanted.contains(v)]
            else:
                options = wanted if isinstance(wanted, list | tuple) else [wanted]
                ok = [self._code_of[field][_key(v)] for v in options if _key(v) in self._code_of[field]]
            mask &= np.isin(codes, np.asarray(ok, dtype=np.int32))
        return np.flatnonzero(mask).astype(np.int64)

    def facets(self, names: Sequence[str], rows: np.ndarray, limit: int) -> dict[str, list[tuple[Scalar, int]]]:
        """Per facet name, the ``limit`` most frequent values among ``rows`` (row numbers, or a boolean mask over
        all rows) with their counts (count desc, then value); rows without a value are not counted. A facet the
        corpus has no field for counts nothing."""
        check_facets(names)
        if limit < 1:
            raise InvalidRequestError(f"facet_limit must be at least 1, got {limit}")
        mask = rows if rows.dtype == np.bool_ else None
        if mask is not None and mask.shape != (len(self),):
            raise ValueError(f"a row mask needs one entry per row ({len(self)}), got shape {mask.shape}")
        empty = not mask.any() if mask is not None else rows.size == 0
        out: dict[str, list[tuple[Scalar, int]]] = {}
        # a mask (a query's matched rows: half the corpus, often) is counted by run of equal codes where the
        # column has few runs: from the running count of the mask, instead of gathering every matched row's code
        prefix: np.ndarray | None = None
        for name in names:
            column = self._facet_columns.get(name)
            if column is None or empty:
                out[name] = []
                continue
            codes, values = column
            runs = self._facet_runs.get(name) if mask is not None else None
            if runs is not None and mask is not None:
                prefix = _running_count(mask) if prefix is None else prefix
                counts = runs.counts(prefix, len(values))
            else:
                # code 0 collects the rows without a value
                counts = np.bincount(codes[rows] + 1, minlength=len(values) + 1)[1:]
            out[name] = [(values[c], n) for c, n in _top_counts(counts, limit)]
        return out

    def close(self) -> None:
        """Release the file handle and mapping."""
        if isinstance(self._buf, mmap.mmap):
            self._buf.close()
        self._fh.close()


#: a facet column is kept in runs when it has at most one run per this many rows
_RUNS_SHARE = 8


@dataclass(frozen=True)
class _CodeRuns:
    """A facet column as runs of consecutive rows with the same code: where each run starts and ends (the row
    after it), and its code."""

    starts: np.ndarray
    ends: np.ndarray
    codes: np.ndarray

    def counts(self, prefix: np.ndarray, n_values: int) -> np.ndarray:
        """Rows per code (``np.bincount(codes[mask] + 1)[1:]``) from a mask's running count (``_running_count``)."""
        per_run = prefix[self.ends] - prefix[self.starts]
        # float64 sums of whole numbers below 2**53 are exact
        counts = np.bincount(self.codes + 1, weights=per_run, minlength=n_values + 1)[1:]
        return counts.astype(np.int64)


def _code_runs(codes: np.ndarray) -> _CodeRuns | None:
    """``codes`` in runs (``_CodeRuns``) when there are few (statutes come law by law); None otherwise."""
    if codes.size == 0:
        return None
    changes = np.flatnonzero(codes[1:] != codes[:-1]) + 1
    if (changes.size + 1) * _RUNS_SHARE > codes.size:
        return None
    starts = np.concatenate(([0], changes)).astype(np.intp)
    ends = np.concatenate((changes, [codes.size])).astype(np.intp)
    return _CodeRuns(starts, ends, np.asarray(codes[starts], dtype=np.intp))


def _running_count(mask: np.ndarray) -> np.ndarray:
    """``out[i]``: how many of the first ``i`` rows the mask holds (``out[0]`` is 0)."""
    # int32 where it holds every count: half the memory to write (and to fault in) of an int64 sum
    out = np.empty(mask.size + 1, dtype=np.int32 if mask.size < np.iinfo(np.int32).max else np.int64)
    out[0] = 0
    np.cumsum(mask, out=out[1:])
    return out


def _top_counts(counts: np.ndarray, limit: int) -> list[tuple[int, int]]:
    """The ``limit`` (code, count) pairs with most rows (count desc, then code: codes follow the sorted values, so
    ties go to the smaller value); codes without rows are left out."""
    found = np.flatnonzero(counts)
    if found.size > limit:
        # only the codes with at least the limit-th largest count can be among the first: sort those alone
        values = counts[found]
        kth = np.partition(values, found.size - limit)[found.size - limit]
        found = found[values >= kth]
    top = found[np.lexsort((found, -counts[found]))][:limit]
    return list(zip(top.tolist(), counts[top].tolist(), strict=True))


def check_facets(names: Sequence[str]) -> None:
    """InvalidRequestError naming the first unknown facet."""
    for name in names:
        if name not in FACET_NAMES:
            raise InvalidRequestError(f"unknown facet {name!r}; facets: {', '.join(FACET_NAMES)}")


def _year_column(codes: np.ndarray, values: Sequence[Scalar]) -> tuple[np.ndarray, list[Scalar]]:
    """Year codes per row from the date codes: a date value that does not start with four digits has none."""
    year_of = [int(v[:4]) if isinstance(v, str) and v[:4].isdigit() else None for v in values]
    distinct = sorted({y for y in year_of if y is not None})
    code_of = {y: c for c, y in enumerate(distinct)}
    years: list[Scalar] = list(distinct)
    # index 0 stands for "no date" (code -1), so that one take maps every row
    table = np.asarray([-1] + [code_of[y] if y is not None else -1 for y in year_of], dtype=np.int32)
    return table[codes + 1], years


def _key(value: Any) -> tuple[str, Any]:
    # JSON round trips turn 1 and True alike into distinct types; keep type in the key so "1" != 1
    return (type(value).__name__, value)
