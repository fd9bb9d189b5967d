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
