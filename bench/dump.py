"""Request dumps: a fixed, seeded set of API requests with each answer recorded byte for byte, and a comparison.

A refactoring of the API or the ranking code should answer every request exactly as before. ``record`` sends
the same requests (searches plain, paged, filtered and with facets; recommendations by id, text and keywords,
with and without facets; suggestions; and requests that fail) to the app and writes each request with its
status, media type and body; ``compare`` says which answers differ between two dumps::

    python -m bench.dump record --models-dir models --out /tmp/before.jsonl.gz            # in-process app
    python -m bench.dump record --models-dir models --out /tmp/before.jsonl.gz --serve    # a real uvicorn
    python -m bench.dump record --train-demo --requests 200 --out tests/fixtures/dump/demo.jsonl.gz
    python -m bench.dump compare /tmp/before.jsonl.gz /tmp/after.jsonl.gz

What may differ between two dumps of the same model and still count as identical (documented in docs/api.md):
the model version in the top-level ``model`` field is written as ``<model>`` (a model trained again has a new
version name), and the ``X-Request-ID`` header and timings are not recorded. Requests are generated from the
model's own ids and metadata values (``ids.txt``, ``facets/values.json``) with a seeded random generator, so
the same model and seed give the same requests.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import gzip
import io
import json
import logging
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlencode

import httpx

from bench.serving import QUESTIONS, SUGGEST_TYPED, SUGGEST_TYPOS, TEXTS

log = logging.getLogger(__name__)

#: the dump format (the first line of a dump names it)
FORMAT = 1
#: how the model version stands in a recorded answer
MODEL_PLACEHOLDER = "<model>"

#: short queries as people type them (written for this tool), beside the long questions of bench.serving
SHORT_QUERIES = (
    "Kündigung Mietvertrag", "Eigenbedarf", "fristlose Kündigung Zahlungsverzug", "Schadensersatz",
    "Gewährleistung Kaufvertrag Mangel", "Widerspruch Verwaltungsakt", "Kündigungsschutzklage Frist",
    "Pflichtteil Testament", "Mieterhöhung Vergleichsmiete", "Nacherfüllung", "Urlaubsanspruch Arbeitnehmer",
    "Betriebskosten Abrechnung", "Rücktritt vom Vertrag", "Haftung des Vermieters", "Anhörung Betriebsrat",
    "Verjährung", "Abmahnung", "Erbschaft ausschlagen", "Kaution Rückzahlung", "Minderung der Miete",
    "Mietvertrag", "kündigen", "Wohnung", "Gericht", "Vermieter Mieter", "Sozialauswahl betriebsbedingt",
)
#: stopwords only, an empty text: requests ranking refuses
UNANSWERABLE = ("und oder der die das", "   ", "")
KINDS = ("search_plain", "search_paged", "search_filtered", "search_facets", "recommend_id", "recommend_text",
         "recommend_keywords", "recommend_facets", "suggest", "invalid")
#: share of each kind in a dump
SHARES = (0.13, 0.10, 0.15, 0.08, 0.22, 0.11, 0.05, 0.06, 0.04, 0.06)
FACETS = ("law", "type", "court", "year")


@dataclass(frozen=True)
class Call:
    """One request of a dump: method, path with query string, body and its media type."""

    kind: str
    method: str
    path: str
    body: str | None = None
    content_type: str | None = None


@dataclass(frozen=True)
class Answer:
    """What the app answered: status, media type and body (UTF-8 text, else base64 in ``body_b64``)."""

    status: int
    content_type: str | None
    body: str | None
    body_b64: str | None = None


@dataclass(frozen=True)
class Corpus:
    """What requests are made of: the model's ids and filterable metadata values."""

    ids: tuple[str, ...]
    values: dict[str, list[Any]]


def load_corpus(model_dir: Path) -> Corpus:
    """Ids and facet values of a model version folder."""
    ids = tuple(line for line in (model_dir / "ids.txt").read_text(encoding="utf-8").splitlines() if line)
    values_file = model_dir / "facets" / "values.json"
    data = json.loads(values_file.read_text(encoding="utf-8")) if values_file.is_file() else {}
    return Corpus(ids, data.get("values", {}))


# ------------------------------------------------------------------------------------------------ requests


def _search(kind: str, params: list[tuple[str, str]]) -> Call:
    return Call(kind, "GET", "/search?" + urlencode(params))


def _recommend(kind: str, payload: object, content_type: str = "application/json") -> Call:
    return Call(kind, "POST", "/recommend", json.dumps(payload, ensure_ascii=False), content_type)


def _citation_query(rng: random.Random, corpus: Corpus) -> str:
    """A query naming a section as people cite it ("§ 12 DMietG"), from a statute id "DMietG § 12"."""
    statutes = [i for i in corpus.ids[:5000] if " § " in i]
    if not statutes:
        return rng.choice(SHORT_QUERIES)
    law, _, section = rng.choice(statutes).partition(" § ")
    return f"§ {section} {law} {rng.choice(SHORT_QUERIES)}"


def _query(rng: random.Random, corpus: Corpus) -> str:
    roll = rng.random()
    if roll < 0.45:
        return rng.choice(SHORT_QUERIES)
    if roll < 0.7:
        return rng.choice(QUESTIONS)
    if roll < 0.85:
        return rng.choice(TEXTS)
    return _citation_query(rng, corpus)


def _values(rng: random.Random, corpus: Corpus, field: str, most: int = 2) -> list[str]:
    pool = [v for v in corpus.values.get(field, []) if isinstance(v, str)]
    return rng.sample(pool, min(len(pool), rng.randint(1, most))) if pool else []


def _dates(rng: random.Random, corpus: Corpus) -> tuple[str, str]:
    dates = sorted(v for v in corpus.values.get("date", []) if isinstance(v, str))
    if len(dates) < 2:
        return "2000-01-01", "2030-12-31"
    a, b = sorted(rng.sample(dates, 2))
    return a[:10], b[:10]


def _filter_params(rng: random.Random, corpus: Corpus) -> list[tuple[str, str]]:
    params: list[tuple[str, str]] = []
    roll = rng.random()
    if roll < 0.3:
        params += [("type", v) for v in _values(rng, corpus, "type")]
    elif roll < 0.5:
        params += [("law", v) for v in _values(rng, corpus, "law", 3)]
    elif roll < 0.65:
        params += [("court", v) for v in _values(rng, corpus, "court")]
    elif roll < 0.8:
        start, end = _dates(rng, corpus)
        params += [("date_from", start)] + ([("date_to", end)] if rng.random() < 0.6 else [])
    else:
        spec: dict[str, Any] = {"type": _values(rng, corpus, "type", 1)}
        if rng.random() < 0.5:
            start, end = _dates(rng, corpus)
            spec["date"] = {"from": start, "to": end}
        params.append(("filters", json.dumps(spec, ensure_ascii=False)))
    if rng.random() < 0.3:
        params.append(("mode", rng.choice(("hybrid", "lexical", "embedding"))))
    if rng.random() < 0.2:
        params.append(("expand", "false"))
    return params


def _filter_body(rng: random.Random, corpus: Corpus) -> dict[str, Any]:
    roll = rng.random()
    if roll < 0.4:
        return {"type": rng.choice(_values(rng, corpus, "type", 1) or ["statute"])}
    if roll < 0.7:
        return {"law": _values(rng, corpus, "law", 3)}
    if roll < 0.85:
        return {"court": _values(rng, corpus, "court")}
    start, end = _dates(rng, corpus)
    return {"date": {"from": start, "to": end}}


def _facet_names(rng: random.Random) -> list[str]:
    return rng.sample(FACETS, rng.randint(1, len(FACETS)))


def _seed_ids(rng: random.Random, corpus: Corpus, most: int) -> list[str]:
    return rng.sample(corpus.ids, min(len(corpus.ids), rng.randint(1, most)))


def _recommend_by_id(rng: random.Random, corpus: Corpus) -> dict[str, Any]:
    # mostly one seed and the defaults: the case training prepares neighbours for
    payload: dict[str, Any] = {"positive": _seed_ids(rng, corpus, 1 if rng.random() < 0.6 else 3)}
    if rng.random() < 0.2:
        payload["negative"] = _seed_ids(rng, corpus, 2)
    if rng.random() < 0.3:
        payload["k"] = rng.choice((1, 3, 5, 20, 50))
    if rng.random() < 0.25:
        payload["offset"] = rng.choice((1, 5, 10, 30))
    if rng.random() < 0.2:
        payload["exclude"] = _seed_ids(rng, corpus, 5)
    if rng.random() < 0.15:
        payload["collapse"] = False
    if rng.random() < 0.2:
        payload["filters"] = _filter_body(rng, corpus)
    if rng.random() < 0.05:
        payload["positive"].append("no such id")
    return payload


def _invalid(rng: random.Random, corpus: Corpus) -> Call:
    """A request that fails (validation, unknown ids, unanswerable text): the path errors take is covered too."""
    seed = rng.choice(corpus.ids)
    q = rng.choice(SHORT_QUERIES)
    calls = (
        _recommend("invalid", {"positive": ["no such id"]}),
        _recommend("invalid", {"text": rng.choice(UNANSWERABLE)}),
        _recommend("invalid", {"positive": [seed], "text": q}),
        _recommend("invalid", {"positive": [seed], "k": 0}),
        _recommend("invalid", {"positive": [seed], "unexpected": 1}),
        _recommend("invalid", {"negative": [seed]}),
        _recommend("invalid", {"text": q, "facets": ["section"]}),
        _recommend("invalid", {"positive": [seed]}, "text/plain"),
        Call("invalid", "POST", "/recommend", '{"positive": [', "application/json"),
        _search("invalid", [("q", rng.choice(UNANSWERABLE))]),
        _search("invalid", [("q", q), ("k", "0")]),
        _search("invalid", [("q", q), ("k", "3"), ("k", "4")]),
        _search("invalid", [("q", q), ("mode", "both")]),
        _search("invalid", [("q", q), ("filters", "{not json")]),
        _search("invalid", [("q", q), ("filters", '{"nope": 1}')]),
        _search("invalid", [("q", q), ("date_from", "2020-01-01"), ("date_to", "2019-01-01")]),
        _search("invalid", [("q", q), ("facets", "law,color")]),
        _search("invalid", []),
        Call("invalid", "GET", "/suggest?" + urlencode({"q": "   "})),
        Call("invalid", "GET", "/suggest?" + urlencode({"q": "kü", "k": "50"})),
    )
    return rng.choice(calls)


def make_call(kind: str, rng: random.Random, corpus: Corpus) -> Call:
    """One request of ``kind`` (one of ``KINDS``)."""
    if kind == "search_plain":
        return _search(kind, [("q", _query(rng, corpus))])
    if kind == "search_paged":
        return _search(kind, [("q", _query(rng, corpus)), ("k", str(rng.choice((1, 3, 5, 10, 20, 50)))),
                              ("offset", str(rng.choice((0, 1, 5, 10, 20, 100))))])
    if kind == "search_filtered":
        return _search(kind, [("q", _query(rng, corpus)), *_filter_params(rng, corpus)])
    if kind == "search_facets":
        params = [("q", _query(rng, corpus)), ("facets", ",".join(_facet_names(rng)))]
        if rng.random() < 0.4:
            params.append(("facet_limit", str(rng.choice((1, 3, 50)))))
        if rng.random() < 0.4:
            params += _filter_params(rng, corpus)
        return _search(kind, params)
    if kind == "recommend_id":
        return _recommend(kind, _recommend_by_id(rng, corpus))
    if kind == "recommend_text":
        payload: dict[str, Any] = {"text": _query(rng, corpus)}
        if rng.random() < 0.3:
            payload["filters"] = _filter_body(rng, corpus)
        if rng.random() < 0.2:
            payload["k"] = rng.choice((3, 20))
        return _recommend(kind, payload)
    if kind == "recommend_keywords":
        words = " ".join(rng.sample(SHORT_QUERIES, 2)).lower().split()
        return _recommend(kind, {"keywords": words[:rng.randint(1, len(words))]})
    if kind == "recommend_facets":
        facet_payload = _recommend_by_id(rng, corpus) if rng.random() < 0.5 else {"text": _query(rng, corpus)}
        facet_payload["facets"] = _facet_names(rng)
        if rng.random() < 0.4:
            facet_payload["facet_limit"] = rng.choice((1, 5))
        return _recommend(kind, facet_payload)
    if kind == "suggest":
        word = rng.choice(SUGGEST_TYPED + SUGGEST_TYPOS)
        prefix = word[:rng.randint(2, len(word))]
        return Call(kind, "GET", "/suggest?" + urlencode({"q": prefix, "k": rng.choice((3, 8))}))
    if kind == "invalid":
        return _invalid(rng, corpus)
    raise ValueError(f"unknown request kind {kind!r}")


def make_calls(corpus: Corpus, n: int, seed: int = 0) -> list[Call]:
    """``n`` requests, each kind in its share (``SHARES``), shuffled with ``seed``."""
    rng = random.Random(seed)
    counts = [max(1, round(n * share)) for share in SHARES]
    counts[KINDS.index("recommend_id")] += n - sum(counts)
    kinds = [kind for kind, count in zip(KINDS, counts, strict=True) for _ in range(count)]
    rng.shuffle(kinds)
    return [make_call(kind, rng, corpus) for kind in kinds]


# ------------------------------------------------------------------------------------------------ recording


def normalise(body: bytes, version: str | None) -> bytes:
    """The answer with the model version written as ``<model>`` (the one field that may differ, see above)."""
    if not version:
        return body
    return body.replace(f'"model":"{version}"'.encode(), f'"model":"{MODEL_PLACEHOLDER}"'.encode())


def send(client: httpx.Client, call: Call, version: str | None) -> Answer:
    """Send one request; the answer as recorded."""
    headers = {"Content-Type": call.content_type} if call.content_type else {}
    content = call.body.encode("utf-8") if call.body is not None else None
    resp = client.request(call.method, call.path, content=content, headers=headers)
    body = normalise(resp.content, version)
    try:
        return Answer(resp.status_code, resp.headers.get("content-type"), body.decode("utf-8"))
    except UnicodeDecodeError:
        return Answer(resp.status_code, resp.headers.get("content-type"), None, base64.b64encode(body).decode())


def answer_bytes(answer: Answer) -> bytes:
    """The recorded body as bytes."""
    if answer.body is not None:
        return answer.body.encode("utf-8")
    return base64.b64decode(answer.body_b64 or "")


def _open(path: Path, mode: str) -> IO[str]:
    if path.suffix == ".gz":
        # mtime 0: the same dump gives the same file
        return io.TextIOWrapper(gzip.GzipFile(path, mode[0] + "b", mtime=0), encoding="utf-8")
    return path.open(mode, encoding="utf-8")


def write_dump(path: Path, header: dict[str, Any], entries: Sequence[tuple[Call, Answer]]) -> None:
    """A dump: a header line, then one line per request and its answer."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with _open(path, "w") as fh:
        fh.write(json.dumps({"format": FORMAT, **header}, ensure_ascii=False) + "\n")
        for call, answer in entries:
            fh.write(json.dumps({"request": asdict(call), "answer": asdict(answer)}, ensure_ascii=False) + "\n")


def read_dump(path: Path) -> tuple[dict[str, Any], list[tuple[Call, Answer]]]:
    """A dump's header and entries."""
    with _open(path, "r") as fh:
        lines = fh.read().splitlines()
    header = json.loads(lines[0])
    if header.get("format") != FORMAT:
        raise ValueError(f"{path}: dump format {header.get('format')!r}, this tool reads {FORMAT}")
    entries = []
    for line in lines[1:]:
        record = json.loads(line)
        entries.append((Call(**record["request"]), Answer(**record["answer"])))
    return header, entries


def served_version(client: httpx.Client) -> str | None:
    """The version the app serves (``/readyz``)."""
    resp = client.get("/readyz")
    model = resp.json().get("model") if resp.status_code == 200 else None
    return str(model) if model else None


def record(client: httpx.Client, calls: Sequence[Call]) -> tuple[str | None, list[tuple[Call, Answer]], float]:
    """Send every call in order; the served version, the entries and the seconds it took."""
    version = served_version(client)
    start = time.perf_counter()
    entries = [(call, send(client, call, version)) for call in calls]
    return version, entries, time.perf_counter() - start


@contextlib.contextmanager
def in_process_client(models_dir: Path) -> Iterator[httpx.Client]:
    """A TestClient of the app over ``models_dir`` (default settings otherwise, watching off)."""
    from fastapi.testclient import TestClient

    from legalsearch.api.app import create_app
    from legalsearch.config import ServiceSettings

    app = create_app(ServiceSettings(models_dir=models_dir, watch_interval_s=0))
    with TestClient(app) as client:
        yield client


@contextlib.contextmanager
def server_client(models_dir: Path, url: str | None) -> Iterator[httpx.Client]:
    """A client of ``url``, or of a ``legalsearch serve`` (one worker) started on 127.0.0.1 for the dump."""
    if url:
        with httpx.Client(base_url=url, timeout=120) as client:
            yield client
        return
    from bench.serving import run_server

    with run_server(models_dir, workers=1) as server, httpx.Client(base_url=server.base_url, timeout=120) as client:
        yield client


def train_demo(folder: Path) -> Path:
    """A models folder with the demo model, trained as the tests' ``demo_models_dir`` fixture trains it."""
    from legalsearch.config import load_config
    from legalsearch.pipeline import train

    root = Path(__file__).resolve().parents[1]
    demo = root / "corpora" / "demo"
    models = folder / "models"
    train([demo], load_config(root / "configs" / "demo.toml"), models, extra_text=[demo / "extra"],
          cache_dir=folder / "cache", progress=False)
    return models


# ------------------------------------------------------------------------------------------------ comparing


@dataclass(frozen=True)
class Difference:
    """One request whose answers differ."""

    index: int
    call: Call
    what: str


def _renamed(body: bytes, renames: dict[str, str]) -> bytes:
    """``body`` with top-level keys renamed (a documented change of the answer's shape), written as orjson does."""
    import orjson

    if not renames or not body.startswith(b"{"):
        return body
    data = orjson.loads(body)
    if not isinstance(data, dict) or not renames.keys() & data.keys():
        return body
    return orjson.dumps({renames.get(k, k): v for k, v in data.items()})


def _first_difference(a: bytes, b: bytes) -> str:
    at = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
    return f"bodies differ at byte {at}: {a[max(0, at - 60):at + 60]!r} vs {b[max(0, at - 60):at + 60]!r}"


def compare(before: Sequence[tuple[Call, Answer]], after: Sequence[tuple[Call, Answer]],
            renames: dict[str, str] | None = None) -> list[Difference]:
    """Requests whose answers differ (status, media type or body bytes); ``renames`` apply to ``before``."""
    if [c for c, _ in before] != [c for c, _ in after]:
        raise ValueError("the dumps do not hold the same requests: record both with the same model and seed")
    out: list[Difference] = []
    for i, ((call, old), (_, new)) in enumerate(zip(before, after, strict=True)):
        if (old.status, old.content_type) != (new.status, new.content_type):
            out.append(Difference(i, call, f"status/type {old.status} {old.content_type} -> "
                                           f"{new.status} {new.content_type}"))
            continue
        a, b = _renamed(answer_bytes(old), renames or {}), answer_bytes(new)
        if a != b:
            out.append(Difference(i, call, _first_difference(a, b)))
    return out


# ------------------------------------------------------------------------------------------------ timing


def _scope(call: Call, body: bytes) -> dict[str, Any]:
    path, _, query = call.path.partition("?")
    headers = [(b"host", b"127.0.0.1"), (b"content-length", str(len(body)).encode())]
    if call.content_type:
        headers.append((b"content-type", call.content_type.encode()))
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": call.method,
            "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": query.encode(),
            "root_path": "", "headers": headers, "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 80)}


async def _call_app(app: Any, call: Call) -> int:
    """One request straight through the ASGI app (no server, no client); its status."""
    body = call.body.encode("utf-8") if call.body is not None else b""
    sent = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(_scope(call, body), receive, send)
    return status


async def _time_calls(models_dir: Path, calls: Sequence[Call], rounds: int) -> dict[str, list[float]]:
    """CPU microseconds per request by kind, over ``rounds`` passes after one warm-up pass."""
    from legalsearch.api.app import create_app
    from legalsearch.config import ServiceSettings

    app = create_app(ServiceSettings(models_dir=models_dir, watch_interval_s=0))
    events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    started = asyncio.Event()

    async def lifespan_send(message: dict[str, Any]) -> None:
        if message["type"].startswith("lifespan.startup"):
            started.set()

    await events.put({"type": "lifespan.startup"})
    lifespan = asyncio.create_task(app({"type": "lifespan", "asgi": {"version": "3.0"}}, events.get, lifespan_send))
    await started.wait()
    cpu: dict[str, list[float]] = {}
    for round_ in range(rounds + 1):
        for call in calls:
            start = time.process_time_ns()
            await _call_app(app, call)
            if round_:
                cpu.setdefault(call.kind, []).append((time.process_time_ns() - start) / 1000)
    await events.put({"type": "lifespan.shutdown"})
    await lifespan
    return cpu


def _time_command(args: argparse.Namespace) -> int:
    import statistics

    models_dir = Path(args.models_dir)
    calls = make_calls(load_corpus((models_dir / "current").resolve()), args.requests, args.seed)
    cpu = asyncio.run(_time_calls(models_dir, calls, args.rounds))
    every = [v for values in cpu.values() for v in values]
    report = {kind: {"n": len(v), "median_us": round(statistics.median(v), 1), "mean_us": round(statistics.fmean(v), 1)}
              for kind, v in sorted(cpu.items())}
    report["all"] = {"n": len(every), "median_us": round(statistics.median(every), 1),
                     "mean_us": round(statistics.fmean(every), 1)}
    print(json.dumps(report))
    return 0


# ------------------------------------------------------------------------------------------------ command


def _record_command(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="dump-") as scratch:
        models_dir = train_demo(Path(scratch)) if args.train_demo else Path(args.models_dir)
        corpus = load_corpus((models_dir / "current").resolve())
        calls = make_calls(corpus, args.requests, args.seed)
        transport = "uvicorn" if args.serve or args.url else "in-process"
        clients = server_client(models_dir, args.url) if transport == "uvicorn" else in_process_client(models_dir)
        with clients as client:
            version, entries, seconds = record(client, calls)
    statuses = Counter(answer.status for _, answer in entries)
    header = {"requests": len(entries), "seed": args.seed, "transport": transport, "model": version,
              "kinds": dict(Counter(call.kind for call in calls)), "statuses": {str(k): v for k, v in statuses.items()}}
    write_dump(Path(args.out), header, entries)
    log.info("recorded %d requests in %.1f s (%s, model %s): statuses %s -> %s", len(entries), seconds, transport,
             version, dict(statuses), args.out)
    return 0


def _compare_command(args: argparse.Namespace) -> int:
    renames = dict(item.split("=", 1) for item in args.rename)
    head_a, before = read_dump(Path(args.before))
    head_b, after = read_dump(Path(args.after))
    differences = compare(before, after, renames)
    for diff in differences[:args.show]:
        print(f"#{diff.index} {diff.call.kind} {diff.call.method} {diff.call.path[:120]}: {diff.what}")
    kinds = Counter(d.call.kind for d in differences)
    print(f"{len(before)} requests ({head_a.get('transport')} vs {head_b.get('transport')}): "
          f"{len(before) - len(differences)} identical, {len(differences)} differ {dict(kinds) or ''}".rstrip())
    return 1 if differences else 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m bench.dump record|compare``."""
    parser = argparse.ArgumentParser(prog="python -m bench.dump", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("record", help="send the requests and write the dump")
    source = rec.add_mutually_exclusive_group(required=True)
    source.add_argument("--models-dir", help="models folder whose current model answers")
    source.add_argument("--train-demo", action="store_true", help="train the demo model (as the tests do) first")
    rec.add_argument("--out", required=True, help="the dump (JSON Lines; gzip-compressed when it ends in .gz)")
    rec.add_argument("--requests", type=int, default=1200, help="how many requests (default 1200)")
    rec.add_argument("--seed", type=int, default=0, help="seed of the request generator (default 0)")
    rec.add_argument("--serve", action="store_true", help="through a real `legalsearch serve` on 127.0.0.1")
    rec.add_argument("--url", help="through a server already running at this URL (loopback)")
    cmp = sub.add_parser("compare", help="compare two dumps; exit status 1 when any answer differs")
    cmp.add_argument("before")
    cmp.add_argument("after")
    cmp.add_argument("--rename", action="append", default=[], metavar="OLD=NEW",
                     help="a documented rename of a top-level answer key, applied to BEFORE")
    cmp.add_argument("--show", type=int, default=20, help="differences to print (default 20)")
    tim = sub.add_parser("time", help="CPU time per request straight through the ASGI app (JSON on stdout)")
    tim.add_argument("--models-dir", required=True, help="models folder whose current model answers")
    tim.add_argument("--requests", type=int, default=400, help="how many requests (default 400)")
    tim.add_argument("--seed", type=int, default=0, help="seed of the request generator (default 0)")
    tim.add_argument("--rounds", type=int, default=3, help="timed passes after one warm-up pass (default 3)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per request
    commands = {"record": _record_command, "compare": _compare_command, "time": _time_command}
    return commands[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
