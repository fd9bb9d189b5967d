from pathlib import Path

from legalsearch.docstore import DocumentStore, write_documents
from legalsearch.types import Document


def test_records_read_back_exactly_including_what_orjson_refuses(tmp_path: Path) -> None:
    docs = [
        Document(id="a", text="Text mit „Anführungszeichen“ und \"quotes\" \u00e4\u00df", title="A", type="statute",
                 metadata={"year": 2001, "share": 0.1, "flag": True, "none": None}),
        # orjson reads integers beyond 64 bits as floats and refuses NaN: json reads them as written
        Document(id="b", text="x", title="B", type="annex", metadata={"big": 2**70 + 1, "neg": -(2**65) - 3}),
        Document(id="c", text="y", title="C", type="annex", metadata={"nan": float("inf"), "max": 2**64 - 1}),
    ]
    assert write_documents(docs, tmp_path) == 3
    store = DocumentStore(tmp_path)
    try:
        for row, doc in enumerate(docs):
            assert store.get(row) == doc
        assert type(store.record(1)["metadata"]["big"]) is int
        assert store.record(1)["metadata"]["big"] == 2**70 + 1
        assert store.record(2)["metadata"]["max"] == 2**64 - 1
    finally:
        store.close()


def test_facets_count_rows_by_value_and_year_of_date(tmp_path: Path) -> None:
    import numpy as np
    import pytest

    from legalsearch.errors import InvalidRequestError

    docs = [
        Document(id="1", text="t", type="decision", metadata={"court": "BGH", "date": "2021-03-01", "law": "BGB"}),
        Document(id="2", text="t", type="decision", metadata={"court": "AG", "date": "2021-12-31", "law": "BGB"}),
        Document(id="3", text="t", type="decision", metadata={"court": "BGH", "date": "2019-05-05"}),
        Document(id="4", text="t", type="statute", metadata={"law": "ZPO", "date": "unbekannt"}),
        Document(id="5", text="t", type="statute", metadata={"law": "ZPO"}),
    ]
    write_documents(docs, tmp_path)
    store = DocumentStore(tmp_path)
    try:
        every = np.arange(5)
        got = store.facets(["law", "court", "year", "type"], every, limit=10)
        assert got == {
            "law": [("BGB", 2), ("ZPO", 2)],  # a tie goes to the smaller value
            "court": [("BGH", 2), ("AG", 1)],
            "year": [(2021, 2), (2019, 1)],  # "unbekannt" is no date: not counted
            "type": [("decision", 3), ("statute", 2)],
        }
        assert store.facets(["court", "law"], np.asarray([2, 3]), limit=1) == {"court": [("BGH", 1)],
                                                                               "law": [("ZPO", 1)]}
        assert store.facets(["year"], np.zeros(0, dtype=np.int64), limit=5) == {"year": []}
        with pytest.raises(InvalidRequestError, match="unknown facet 'section'"):
            store.facets(["section"], every, limit=5)
        with pytest.raises(InvalidRequestError, match="facet_limit"):
            store.facets(["law"], every, limit=0)
    finally:
        store.close()


def test_facets_of_a_row_mask_count_as_its_rows_in_runs_or_not(tmp_path: Path) -> None:
    """A boolean mask (a query's matched rows) is counted by runs of equal codes where a column has few runs
    (laws come statute by statute), row by row otherwise: both count what the mask's rows count."""
    import numpy as np
    import pytest

    rng = np.random.default_rng(3)
    laws = [f"L{i:02d}" for i in range(12)]
    docs = []
    for i in range(600):
        law = laws[i // 50] if i % 97 else None  # runs of 50 rows, a few rows without a law
        meta: dict[str, object] = {"court": str(rng.choice(["AG", "BGH", "LG"])), "date": f"{2000 + i % 7}-01-02"}
        if law is not None:
            meta["law"] = law
        docs.append(Document(id=str(i), text="t", type="statute" if i < 400 else "decision", metadata=meta))
    write_documents(docs, tmp_path)
    store = DocumentStore(tmp_path)
    try:
        assert set(store._facet_runs) == {"law", "type"}  # court and year change from row to row
        names = ["law", "type", "court", "year"]
        for share in (0.0, 0.01, 0.3, 0.9, 1.0):
            mask = rng.random(len(docs)) < share
            for limit in (1, 3, 20):
                rows = np.flatnonzero(mask)
                assert store.facets(names, mask, limit) == store.facets(names, rows, limit)
                assert store.facets(names, mask, limit) == store.facets(names, rows[::-1].copy(), limit)
        with pytest.raises(ValueError, match="one entry per row"):
            store.facets(names, np.ones(3, dtype=bool), 5)
    finally:
        store.close()


def test_top_counts_keep_the_most_frequent_codes_ties_to_the_smaller() -> None:
    import numpy as np

    from legalsearch.docstore import _top_counts

    rng = np.random.default_rng(5)
    for _ in range(200):
        counts = rng.integers(0, 6, size=int(rng.integers(1, 60)))
        for limit in (1, 2, 5, 100):
            found = np.flatnonzero(counts)
            expected = found[np.lexsort((found, -counts[found]))][:limit]
            assert _top_counts(counts, limit) == [(int(c), int(counts[c])) for c in expected]
