"""The committed request dump is answered byte for byte as it was recorded.

``tests/fixtures/dump/demo.jsonl.gz`` holds requests of every kind (searches plain, paged, filtered and with
facets; recommendations by id, text and keywords; suggestions; failing requests) with the answers the demo
model gave when it was recorded (``bench/dump.py``; the model version is written as ``<model>``, the one field
that may differ). A change to the API layer must not change a byte of them. A change meant to change answers
(ranking, snippets, a new field) records the dump again, and says so in its commit::

    PYTHONHASHSEED=0 python -m bench.dump record --train-demo --requests 240 --out tests/fixtures/dump/demo.jsonl.gz
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.dump import (  # noqa: E402
    answer_bytes,
    compare,
    in_process_client,
    load_corpus,
    make_calls,
    read_dump,
    send,
    served_version,
)

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


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-4, abs_tol=2e-4)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _same_but_rounding(old: Any, new: Any) -> bool:
    """Answers equal up to score rounding: same status, keys, ids, order and texts."""
    try:
        return bool(old.status == new.status and _close(json.loads(answer_bytes(old)), json.loads(answer_bytes(new))))
    except ValueError:
        return False


def test_the_dump_is_answered_byte_for_byte(demo_models_dir: Path) -> None:
    _, recorded = read_dump(DUMP)
    with in_process_client(demo_models_dir) as client:
        version = served_version(client)
        replayed = [(call, send(client, call, version)) for call, _ in recorded]
    # the session's demo model is trained anew: scores may differ in the last printed digits (float sums in
    # another order on another machine); everything else must be identical
    answers = {i: (old, new) for i, ((_, old), (_, new)) in enumerate(zip(recorded, replayed, strict=True))}
    differences = [d for d in compare(recorded, replayed) if not _same_but_rounding(*answers[d.index])]
    shown = "\n".join(f"#{d.index} {d.call.kind} {d.call.method} {d.call.path[:100]}: {d.what}"
                      for d in differences[:10])
    assert not differences, (f"{len(differences)} of {len(recorded)} answers differ from the dump; if the change "
                             f"is meant to change answers, record it again ({RECORD}):\n{shown}")
