"""The committed request dump is answered byte for byte as it was recorded.

``tests/fixtures/dump/demo.jsonl.gz`` holds requests of every kind (searches plain, paged, filtered and with
facets; recommendations by id, text and keywords; suggestions; failing requests) with the answers the demo
model gave when it was recorded (``bench/dump.py``; the model version is written as ``<model>``, the one field
that may differ). A change to the API layer must not change a byte of them. A change meant to change answers
(ranking, snippets, a new field) records the dump again, and says so in its commit::

    PYTHONHASHSEED=0 python -m bench.dump record --train-demo --requests 240 --out tests/fixtures/dump/demo.jsonl.gz
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.dump import compare, in_process_client, load_corpus, make_calls, read_dump, send, served_version  # noqa: E402

DUMP = ROOT / "tests" / "fixtures" / "dump" / "demo.jsonl.gz"
RECORD = "PYTHONHASHSEED=0 python -m bench.dump record --train-demo --requests 240 --out " + str(
    DUMP.relative_to(ROOT))


def test_the_dump_holds_the_generated_requests(demo_model_path: Path) -> None:
    """The generator gives the same requests for the same model and seed (else the dump tests nothing new)."""
    header, entries = read_dump(DUMP)
    calls = make_calls(load_corpus(demo_model_path), header["requests"], header["seed"])
    assert [call for call, _ in entries] == calls, f"the request generator changed: record the dump again ({RECORD})"
    assert set(header["kinds"]) >= {"search_plain", "search_paged", "search_filtered", "search_facets",
                                    "recommend_id", "recommend_text", "invalid"}
    assert {"200", "404", "422"} <= set(header["statuses"])


def test_the_dump_is_answered_byte_for_byte(demo_models_dir: Path) -> None:
    _, recorded = read_dump(DUMP)
    with in_process_client(demo_models_dir) as client:
        version = served_version(client)
        replayed = [(call, send(client, call, version)) for call, _ in recorded]
    differences = compare(recorded, replayed)
    shown = "\n".join(f"#{d.index} {d.call.kind} {d.call.method} {d.call.path[:100]}: {d.what}"
                      for d in differences[:10])
    assert not differences, (f"{len(differences)} of {len(recorded)} answers differ from the dump; if the change "
                             f"is meant to change answers, record it again ({RECORD}):\n{shown}")
