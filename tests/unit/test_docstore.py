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
