"""Serving suite: a real uvicorn on loopback under load (wrk, or an async httpx client where wrk is absent),
beside the in-process cost of the same operations, so that the API's overhead shows as a ratio.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

from bench import median, percentile
from legalsearch.model import set_current

log = logging.getLogger(__name__)

#: realistic lay questions about German law, about 40 words each, written for this benchmark (not from any
#: evaluation set)
QUESTIONS = (
    "Mein Vermieter hat mir nach zwölf Jahren wegen Eigenbedarf für seine Tochter gekündigt, obwohl er im selben "
    "Haus noch eine leere Wohnung hat. Muss ich ausziehen, welche Kündigungsfrist gilt für mich und kann ich "
    "wegen meines Alters und meiner Krankheit widersprechen?",
    "Ich habe online ein gebrauchtes Auto bei einem Händler gekauft und nach drei Wochen zeigt sich ein "
    "Getriebeschaden. Der Händler sagt, die Gewährleistung sei ausgeschlossen. Kann ich vom Kaufvertrag "
    "zurücktreten oder eine Reparatur verlangen und wer muss beweisen, dass der Mangel schon vorher bestand?",
    "Mein Arbeitgeber will mir nach acht Jahren Betriebszugehörigkeit betriebsbedingt kündigen, ein jüngerer "
    "Kollege ohne Kinder darf aber bleiben. Ist die Sozialauswahl fehlerhaft, wie lange habe ich Zeit für eine "
    "Kündigungsschutzklage und steht mir eine Abfindung zu, wenn der Betriebsrat nicht angehört wurde?",
    "Nach dem Tod meiner Mutter hat mein Bruder ein handschriftliches Testament vorgelegt, das ihn als Alleinerben "
    "einsetzt. Ich bin nicht erwähnt. Kann ich meinen Pflichtteil verlangen, wie hoch ist er und muss mein Bruder "
    "mir Auskunft über den Nachlass und frühere Schenkungen geben?",
    "Unser Nachbar hat direkt an der Grundstücksgrenze eine hohe Hecke gepflanzt, die unseren Garten den ganzen Tag "
    "verschattet, und Äste ragen auf unser Dach. Dürfen wir die überhängenden Zweige selbst abschneiden, welche "
    "Abstände gelten und können wir verlangen, dass er die Hecke kürzt?",
    "Ich habe meinen Fitnessstudiovertrag fristgerecht schriftlich gekündigt, das Studio behauptet aber, die "
    "Kündigung nie erhalten zu haben, und bucht weiter Beiträge ab. Wie kann ich den Zugang der Kündigung beweisen, "
    "darf ich die Lastschrift zurückgeben und verlängert sich der Vertrag automatisch?",
    "Beim Umzug hat die Spedition mehrere Möbelstücke beschädigt und ein Karton mit Geschirr fehlt ganz. Die Firma "
    "verweist auf ihre Allgemeinen Geschäftsbedingungen und eine Haftungsgrenze. Welche Fristen muss ich für die "
    "Schadensanzeige einhalten und haftet der Frachtführer für den vollen Wert meiner Sachen?",
    "Meine Eltern sind pflegebedürftig und das Sozialamt verlangt von mir Elternunterhalt für die Heimkosten. Ich "
    "verdiene ordentlich, habe aber selbst zwei Kinder und einen Kredit für unser Haus. Ab welchem Einkommen muss "
    "ich zahlen und welche Ausgaben werden bei der Berechnung berücksichtigt?",
)

#: texts for /recommend by text: short case descriptions (also written for this benchmark)
TEXTS = (
    "Der Mieter zahlt seit drei Monaten keine Miete; der Vermieter kündigt fristlos wegen Zahlungsverzugs.",
    "Der Käufer rügt einen Sachmangel der gekauften Sache und verlangt Nacherfüllung oder Minderung des Preises.",
    "Der Arbeitnehmer erhebt Kündigungsschutzklage gegen eine verhaltensbedingte Kündigung ohne vorherige Abmahnung.",
    "Der Erbe schlägt die Erbschaft aus, weil der Nachlass überschuldet ist, und fragt nach der Frist.",
    "Die Behörde erlässt einen Bescheid ohne vorherige Anhörung; der Bürger legt Widerspruch ein.",
    "Der Steuerpflichtige macht Werbungskosten für das häusliche Arbeitszimmer in der Steuererklärung geltend.",
)

#: what a user types into the search box, keystroke by keystroke from the second character (each prefix is one
#: /suggest request), and a few finished words with typos in them
SUGGEST_TYPED = ("Kündigung", "Eigenbedarf", "Mietvertrag", "Gewährleistung", "Kündigungsschutzklage", "Pflichtteil",
                 "Testament", "Schadensersatz", "Verwaltungsakt", "Sozialauswahl", "BGB § 573", "ZPO § 91")
SUGGEST_TYPOS = ("Kündigugn", "Gewährleistugn", "Mietvetrag", "Schadenersatz", "Pflichteil", "Verwaltungsackt",
                 "Kuendigungsfrist", "Eigenbedarfskündigun")
#: the facets the search page asks for with every search
FACETS = "law,type,court,year"

CONCURRENCY = (1, 16, 64)
ENDPOINTS = ("recommend_id", "recommend_text", "search", "search_facets", "suggest")
#: GET /livez: no model work at all, the floor that uvicorn + FastAPI + loopback cost on this machine
FLOOR = "livez"


@dataclass(frozen=True)
class Request:
    """One HTTP request of a workload."""

    method: str
    path: str
    body: str | None


@dataclass(frozen=True)
class LoadResult:
    """Latency percentiles and throughput of one load run."""

    endpoint: str
    connections: int
    #: None when no request completed within the run (the server is saturated far below this concurrency)
    p50_ms: float | None
    p99_ms: float | None
    requests_per_s: float
    requests: int
    errors: int
    client: str
    #: CPU time of the server's processes (all workers) per completed request, from /proc: what a request costs
    #: the machine, whatever the latency; None where /proc is unreadable
    server_cpu_ms_per_request: float | None = None


@dataclass(frozen=True)
class ServerProcess:
    """A running uvicorn."""

    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def models_dir_for(model: Path, scratch: Path) -> Path:
    """A models folder for the server: ``model`` itself when it has ``current``, else one linking to it."""
    if (model / "current").exists():
        return model
    if not (model / "manifest.json").is_file():
        raise FileNotFoundError(f"{model} is neither a models folder (with current) nor a model version folder")
    folder = scratch / "served-models"
    folder.mkdir(parents=True, exist_ok=True)
    # the server looks the version up by name inside its models folder: link the version in, then current to it
    version = folder / model.resolve().name
    if version.is_symlink():
        version.unlink()
    version.symlink_to(model.resolve(), target_is_directory=True)
    # current.json pins the manifest's hash: without it the server refuses the model
    set_current(folder, version.name, verify=False)
    return folder


@contextmanager
def run_server(models_dir: Path, workers: int = 1, startup_timeout_s: float = 240,
               balance: bool = True, code: Path | None = None) -> Iterator[ServerProcess]:
    """Start ``legalsearch serve`` on loopback (from the checkout ``code`` when given); stop it afterwards."""
    port = free_port()
    env = dict(os.environ, LEGALSEARCH_MODELS_DIR=str(models_dir), LEGALSEARCH_WATCH_INTERVAL_S="0",
               LEGALSEARCH_LOG_LEVEL="warning")
    env.pop("LEGALSEARCH_API_KEYS", None)
    if code is not None:
        env["PYTHONPATH"] = str(code / "src")
    log_file = tempfile.NamedTemporaryFile(prefix="bench-uvicorn-", suffix=".log", delete=False)  # noqa: SIM115
    # the production command: with several workers it balances connections (legalsearch.api.workers)
    cmd = [sys.executable, "-m", "legalsearch.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
           "--workers", str(workers), "--models-dir", str(models_dir), "--no-access-log",
           "--balance" if balance else "--no-balance"]
    proc = subprocess.Popen(cmd, env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True,
                            cwd=code)
    base = f"http://127.0.0.1:{port}"
    server = ServerProcess(proc, base, Path(log_file.name))
    try:
        deadline = time.monotonic() + startup_timeout_s
        detail = "no answer"
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"uvicorn exited with {proc.returncode}: {server.log_path.read_text()[-2000:]}")
            try:
                resp = httpx.get(f"{base}/readyz", timeout=2)
                if resp.status_code == 200:
                    break
                detail = resp.text[:500]
            except httpx.HTTPError as exc:
                detail = str(exc)
            if time.monotonic() > deadline:
                raise RuntimeError(f"uvicorn not ready after {startup_timeout_s} s: {detail}")
            time.sleep(0.25)
        yield server
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log_file.close()
        server.log_path.unlink(missing_ok=True)


def server_cpu_seconds(pgid: int) -> float | None:
    """User + system CPU seconds of every live process in the server's process group (uvicorn and its workers)."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    try:
        pids = [p for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return None
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        # after the command name: state, ppid, pgrp, ..., utime (12th), stime (13th)
        if int(fields[2]) == pgid:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def workloads(doc_ids: Sequence[str], seed: int = 7) -> dict[str, list[Request]]:
    """The three workloads: recommend by id (sampled ids), recommend by text, search with ~40-word questions."""
    rng = random.Random(seed)
    ids = rng.sample(list(doc_ids), min(200, len(doc_ids)))
    return {
        "recommend_id": [Request("POST", "/recommend", json.dumps({"positive": [i], "k": 10})) for i in ids],
        "recommend_text": [Request("POST", "/recommend", json.dumps({"text": t, "k": 10})) for t in TEXTS],
        "search": [Request("GET", "/search?" + urlencode({"q": q, "k": 10}), None) for q in QUESTIONS],
        "search_facets": [Request("GET", "/search?" + urlencode({"q": q, "k": 10, "facets": FACETS}), None)
                          for q in QUESTIONS],
        "suggest": [Request("GET", "/suggest?" + urlencode({"q": q, "k": 8}), None) for q in suggest_queries()],
        FLOOR: [Request("GET", "/livez", None)],
    }


def suggest_queries() -> list[str]:
    """Every prefix a user types on the way to each of ``SUGGEST_TYPED`` (from two characters on), then the
    typos, interleaved so that each stretch of the run mixes short, long and misspelt ones."""
    rng = random.Random(5)
    queries = [word[:n] for word in SUGGEST_TYPED for n in range(2, len(word) + 1)] + list(SUGGEST_TYPOS)
    rng.shuffle(queries)
    return queries


def _lua_string(text: str) -> str:
    return "[==[" + text + "]==]"


def _wrk_script(requests: Sequence[Request], think_ms: float | None = None) -> str:
    # paced runs: each connection waits a random (exponential) think time before its next request, so that the
    # connections together offer a set rate instead of as many requests as the server can take
    pacing = "" if think_ms is None else f"""
delay = function()
  return math.floor(-{think_ms:.3f} * math.log(1 - math.random()))
end
"""
    entries = ",\n".join(
        "{" + f"{_lua_string(r.method)}, {_lua_string(r.path)}, {_lua_string(r.body) if r.body else 'nil'}" + "}"
        for r in requests
    )
    return f"""
local specs = {{
{entries}
}}
local reqs = {{}}
local i = 0
init = function(args)
  for k, s in ipairs(specs) do
    local headers = {{}}
    if s[3] then headers["Content-Type"] = "application/json" end
    reqs[k] = wrk.format(s[1], s[2], headers, s[3])
  end
end
request = function()
  i = i % #reqs + 1
  return reqs[i]
end
{pacing}done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCHJSON {{\\"p50_us\\": %d, \\"p99_us\\": %d, \\"requests\\": %d, \\"duration_us\\": %d, "
    .. "\\"socket_errors\\": %d, \\"status_errors\\": %d}}\\n",
    latency:percentile(50), latency:percentile(99), summary.requests, summary.duration,
    e.connect + e.read + e.write + e.timeout, e.status))
end
"""


def load_wrk(base_url: str, endpoint: str, requests: Sequence[Request], connections: int,
             duration_s: float, think_ms: float | None = None) -> LoadResult:
    """One load run with wrk (latency as wrk measures it, from request sent to response read); with
    ``think_ms``, each connection pauses that long on average between a response and its next request."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        fh.write(_wrk_script(requests, think_ms))
        script = fh.name
    try:
        threads = max(1, min(2, connections))
        out = subprocess.run(
            ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{max(1, round(duration_s))}s",
             "--timeout", "30s", "-s", script, base_url],
            capture_output=True, text=True, check=True, timeout=duration_s + 60,
        ).stdout
    finally:
        os.unlink(script)
    line = next(line for line in out.splitlines() if line.startswith("BENCHJSON "))
    data = json.loads(line.removeprefix("BENCHJSON "))
    seconds = data["duration_us"] / 1e6
    done = data["requests"] > 0
    return LoadResult(endpoint, connections, data["p50_us"] / 1000 if done else None,
                      data["p99_us"] / 1000 if done else None,
                      data["requests"] / seconds, data["requests"], data["socket_errors"] + data["status_errors"],
                      "wrk")


async def _load_httpx(base_url: str, requests: Sequence[Request], connections: int,
                      duration_s: float) -> tuple[list[float], int, float]:
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30) as client:
        start = time.perf_counter()
        stop = start + duration_s

        async def worker(offset: int) -> None:
            nonlocal errors
            i = offset
            while time.perf_counter() < stop:
                r = requests[i % len(requests)]
                i += 1
                t0 = time.perf_counter()
                try:
                    resp = await client.request(r.method, r.path, content=r.body,
                                                headers={"Content-Type": "application/json"} if r.body else None)
                    ok = resp.status_code < 400
                except httpx.HTTPError:
                    ok = False
                latencies.append((time.perf_counter() - t0) * 1000)
                errors += 0 if ok else 1

        await asyncio.gather(*(worker(c) for c in range(connections)))
        elapsed = time.perf_counter() - start
    return latencies, errors, elapsed


def load_httpx(base_url: str, endpoint: str, requests: Sequence[Request], connections: int,
               duration_s: float) -> LoadResult:
    """One load run with an async httpx client (the fallback where wrk is absent; the client costs CPU too)."""
    latencies, errors, elapsed = asyncio.run(_load_httpx(base_url, requests, connections, duration_s))
    done = bool(latencies)
    return LoadResult(endpoint, connections, percentile(latencies, 50) if done else None,
                      percentile(latencies, 99) if done else None,
                      len(latencies) / elapsed, len(latencies), errors, "httpx")


def warm_up(base_url: str, loads: dict[str, list[Request]], rounds: int = 2, per_workload: int = 20,
            connections: int = 4) -> None:
    """Send the first requests of every workload so that memory maps and caches are populated, over several
    connections held at once: the server gives each new connection to its least busy worker, so every worker
    gets its share (one connection would warm one worker and leave the other cold for the timed run)."""

    def one_connection(_: int) -> None:
        with httpx.Client(base_url=base_url, timeout=120) as client:
            for _ in range(rounds):
                for reqs in loads.values():
                    for r in reqs[:per_workload]:
                        client.request(r.method, r.path, content=r.body,
                                       headers={"Content-Type": "application/json"} if r.body else None)

    with ThreadPoolExecutor(max_workers=connections) as pool:
        list(pool.map(one_connection, range(connections)))


def _timed(fn: Callable[[], object], n: int) -> dict[str, float]:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return {"p50_ms": round(percentile(times, 50), 4), "p99_ms": round(percentile(times, 99), 4), "calls": n}


def in_process(model_path: Path, doc_ids: Sequence[str], calls: int) -> dict[str, dict[str, float]]:
    """The same operations without HTTP: bare FAISS and bm25s queries, and the full ranking functions."""
    import numpy as np

    from legalsearch import ranking
    from legalsearch.engine import Model
    from legalsearch.index import search_index, set_faiss_threads

    set_faiss_threads(1)  # as the server runs (faiss_threads = 1)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=1)
    except ImportError:  # pragma: no cover - scikit-learn brings threadpoolctl
        pass
    model = Model.load(model_path)
    rng = random.Random(11)
    ids = rng.sample(list(doc_ids), min(200, len(doc_ids)))
    vectors = [np.asarray(model.docvectors[model.row_of(i)], dtype=np.float32)[None, :] for i in ids]
    vectors = [v for v in vectors if float(np.abs(v).sum()) > 0] or vectors
    lex_terms = []
    for q in QUESTIONS:
        toks = ranking.analyze_text(model, q).tokens
        terms: dict[str, float] = {}
        for t in toks:
            terms[t] = terms.get(t, 0.0) + 1.0
        lex_terms.append(terms)
    counters = {"faiss": 0, "bm25": 0, "rid": 0, "rtext": 0, "search": 0, "facets": 0, "suggest": 0}
    typed = suggest_queries()
    # the caches the server builds before a model serves (the suggestion index, the structure columns, the
    # keywords' lexical parts): without it the first calls build them and their time lands in the p99
    ranking.warm_up(model)

    def nxt(name: str, seq: Sequence[Any]) -> Any:
        counters[name] += 1
        return seq[counters[name] % len(seq)]

    out = {
        # recommend asks FAISS for 2k + seeds + 10 = 31 rows at k = 10
        "faiss_search_k31": _timed(lambda: search_index(model.index, nxt("faiss", vectors), 31), calls),
        "bm25_scores": _timed(lambda: model.lexical.scores(nxt("bm25", lex_terms)), calls),
        "ranking.recommend_by_id": _timed(lambda: ranking.recommend(model, positive=[nxt("rid", ids)], k=10), calls),
        "ranking.recommend_by_text": _timed(lambda: ranking.recommend(model, text=nxt("rtext", TEXTS), k=10),
                                            calls),
        "ranking.search": _timed(lambda: ranking.search(model, nxt("search", QUESTIONS), k=10),
                                 max(5, calls // 4)),
        "ranking.search_facets": _timed(
            lambda: ranking.search(model, nxt("facets", QUESTIONS), k=10, facets=FACETS.split(",")),
            max(5, calls // 4)),
        "suggest": _timed(lambda: model.suggestions.suggest(nxt("suggest", typed), 8), calls * 4),
    }
    model.close()
    return out


@dataclass(frozen=True)
class ServingOptions:
    """What the serving suite runs against."""

    model: Path
    work_dir: Path
    repeats: int = 3
    duration_s: float = 8.0
    concurrency: tuple[int, ...] = CONCURRENCY
    client: str = "auto"
    in_process_calls: int = 100
    #: uvicorn workers: one per core, as `make serve` runs in production (FAISS and BLAS at one thread each)
    workers: int = 2
    #: connections handed out by legalsearch's balancer (False: uvicorn's workers race for them)
    balance: bool = True
    #: paced runs at 16 connections (wrk only): endpoint -> offered requests/s, beside the saturating ones
    paced: tuple[tuple[str, float], ...] = (("recommend_id", 500.0),)
    #: the original code (a checkout's folder) served beside this one with its own model, in the same run
    baseline_code: Path | None = None
    baseline_model: Path | None = None


#: the endpoints the original code (7f662ea) answers: it has no facets and no /suggest
BASELINE_ENDPOINTS = ("recommend_id", "recommend_text", "search")
#: p99 targets at 16 connections (ms) and throughput floors (req/s), from issues 18 and 19
TARGETS: tuple[tuple[str, float, float | None], ...] = (
    ("recommend_id", 20.0, 500.0), ("recommend_text", 40.0, None), ("search", 60.0, None),
    ("search_facets", 60.0, None), ("suggest", 10.0, None))


def _model_version_dir(models_dir: Path) -> Path:
    from legalsearch.model import resolve_model_dir

    return resolve_model_dir(models_dir)


def _median_run(server: ServerProcess, once: Callable[[], LoadResult], repeats: int) -> LoadResult:
    """``once`` run ``repeats`` times: median latencies, throughput and server CPU per request; summed counts."""
    return _median_runs([(server, once)], repeats)[0]


def _median_runs(points: Sequence[tuple[ServerProcess, Callable[[], LoadResult]]], repeats: int) -> list[LoadResult]:
    """Each point's ``once`` run ``repeats`` times, the points taking turns (a, b, a, b, ...): two codes compared
    this way meet the same moments of a machine whose speed drifts from minute to minute. Per point: median
    latencies, throughput and server CPU per request; summed counts."""
    runs: list[list[LoadResult]] = [[] for _ in points]
    cpu_per_request: list[list[float]] = [[] for _ in points]
    for _ in range(repeats):
        for i, (server, once) in enumerate(points):
            before = server_cpu_seconds(server.process.pid)
            run = once()
            after = server_cpu_seconds(server.process.pid)
            runs[i].append(run)
            if before is not None and after is not None and run.requests:
                cpu_per_request[i].append((after - before) * 1000 / run.requests)
    results = []
    for point_runs, cpus in zip(runs, cpu_per_request, strict=True):
        p50s = [r.p50_ms for r in point_runs if r.p50_ms is not None]
        p99s = [r.p99_ms for r in point_runs if r.p99_ms is not None]
        first = point_runs[0]
        result = LoadResult(
            first.endpoint, first.connections, round(median(p50s), 3) if p50s else None,
            round(median(p99s), 3) if p99s else None, round(median([r.requests_per_s for r in point_runs]), 1),
            sum(r.requests for r in point_runs), sum(r.errors for r in point_runs), first.client,
            round(median(cpus), 3) if cpus else None,
        )
        log.info("%s", result)
        results.append(result)
    return results


def _paced_runs(server: ServerProcess, loads: dict[str, list[Request]], rows: Sequence[LoadResult],
                opts: ServingOptions) -> list[dict[str, Any]]:
    """Each paced endpoint at 16 connections offering its rate: latency when the server is not saturated.

    A saturating closed loop measures the most the server takes, and its latency is mostly queueing; a backend
    sends what its users ask, so this is the latency it sees at that rate.
    """
    out = []
    connections = 16
    for endpoint, rate in opts.paced:
        unloaded = next((r.p50_ms for r in rows if r.endpoint == endpoint and r.connections == 1 and r.p50_ms), 0.0)
        # each connection's cycle is think time plus its own latency; the unloaded latency stands in for the latter
        think = max(0.0, connections / rate * 1000 - (unloaded or 0.0))
        # one short calibration run: under load a request takes longer than unloaded, so the think time is
        # shortened by what each connection's cycle overran
        probe = load_wrk(server.base_url, endpoint, loads[endpoint], connections, max(1.0, opts.duration_s / 2), think)
        if probe.requests_per_s > 0:
            think = max(0.0, think + connections * 1000 * (1 / rate - 1 / probe.requests_per_s))
        run = _median_run(server, functools.partial(load_wrk, server.base_url, endpoint, loads[endpoint],
                                                    connections, opts.duration_s, think), opts.repeats)
        out.append({
            "endpoint": endpoint, "connections": connections, "offered_per_s": rate, "think_ms": round(think, 2),
            "p50_ms": run.p50_ms, "p99_ms": run.p99_ms, "requests_per_s": run.requests_per_s, "errors": run.errors,
            "server_cpu_ms_per_request": run.server_cpu_ms_per_request,
        })
        log.info("paced %s", out[-1])
    return out


def run_serving(opts: ServingOptions) -> dict[str, Any]:
    """The serving section of the results."""
    from legalsearch.model import read_manifest

    models_dir = models_dir_for(opts.model, opts.work_dir)
    model_path = _model_version_dir(models_dir)
    manifest = read_manifest(model_path)
    doc_ids = (model_path / "ids.txt").read_text(encoding="utf-8").splitlines()
    loads = workloads(doc_ids)
    use_wrk = opts.client == "wrk" or (opts.client == "auto" and shutil.which("wrk") is not None)
    runner = load_wrk if use_wrk else load_httpx
    rows: list[LoadResult] = []
    original: list[LoadResult] = []
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(run_server(models_dir, workers=opts.workers, balance=opts.balance))
        # the original code, when given, is served at the same time (idle while this code is loaded) and its runs
        # take turns with this code's at the same points
        baseline = _start_baseline(opts, stack) if opts.baseline_code is not None else None
        warm_up(server.base_url, loads)
        if baseline is not None:
            warm_up(baseline[0].base_url, baseline[1])
        # the floor only at the middle concurrency (16 by default): it is a reference, not a workload
        floor_c = sorted(opts.concurrency)[len(opts.concurrency) // 2]
        for endpoint in (*ENDPOINTS, FLOOR):
            for c in opts.concurrency if endpoint != FLOOR else (floor_c,):
                points = [(server, functools.partial(runner, server.base_url, endpoint, loads[endpoint], c,
                                                     opts.duration_s))]
                paired = baseline is not None and c == 16 and endpoint in baseline[1]
                if paired:
                    assert baseline is not None
                    points.append((baseline[0], functools.partial(runner, baseline[0].base_url, endpoint,
                                                                  baseline[1][endpoint], c, opts.duration_s)))
                results = _median_runs(points, opts.repeats)
                rows.append(results[0])
                original += results[1:]
        paced = _paced_runs(server, loads, rows, opts) if use_wrk else []
    inproc = in_process(model_path, doc_ids, opts.in_process_calls)

    def p50(endpoint: str, c: int) -> float | None:
        return next((r.p50_ms for r in rows if r.endpoint == endpoint and r.connections == c), None)

    def row(endpoint: str, c: int) -> LoadResult | None:
        return next((r for r in rows if r.endpoint == endpoint and r.connections == c), None)

    c1 = min(opts.concurrency)
    overhead = {}
    pairs = (("recommend_id / ranking.recommend_by_id", "recommend_id", "ranking.recommend_by_id"),
             ("recommend_id / bare faiss", "recommend_id", "faiss_search_k31"),
             ("recommend_text / ranking.recommend_by_text", "recommend_text", "ranking.recommend_by_text"),
             ("search / ranking.search", "search", "ranking.search"),
             ("search / bare bm25 scores", "search", "bm25_scores"),
             ("search_facets / ranking.search_facets", "search_facets", "ranking.search_facets"),
             ("suggest / suggest", "suggest", "suggest"))
    for label, endpoint, op in pairs:
        http = p50(endpoint, c1)
        base = inproc[op]["p50_ms"]
        if http is not None and base > 0:
            overhead[label] = round(http / base, 2)
    targets = []
    for endpoint, p99_max, rps_min in TARGETS:
        r = row(endpoint, 16)
        if r is None:
            continue
        met = r.p99_ms is not None and r.p99_ms <= p99_max and (rps_min is None or r.requests_per_s >= rps_min)
        want = f"p99 ≤ {p99_max:g} ms" + (f", ≥ {rps_min:g} req/s" if rps_min else "")
        shown = f"p99 {r.p99_ms:.1f} ms" if r.p99_ms is not None else "no request completed"
        targets.append({"target": f"{endpoint}: {want}", "measured": f"{shown}, {r.requests_per_s:.1f} req/s",
                        "met": met})
    for pr in paced:
        if pr["endpoint"] == "recommend_id" and pr["p99_ms"] is not None:
            targets.append({
                "target": f"recommend_id paced at {pr['offered_per_s']:g} req/s: p99 ≤ 20 ms (not the saturating run)",
                "measured": f"p99 {pr['p99_ms']:.1f} ms, {pr['requests_per_s']:.1f} req/s",
                "met": pr["p99_ms"] <= 20.0 and pr["requests_per_s"] >= 0.95 * pr["offered_per_s"],
            })
    return {
        "client": "wrk" if use_wrk else "httpx",
        "model": str(model_path),
        "model_documents": int(manifest.get("counts", {}).get("documents", len(doc_ids))),
        "index_type": manifest.get("index_type"),
        "duration_s": opts.duration_s,
        "repeats": opts.repeats,
        "server": f"legalsearch serve (uvicorn), {opts.workers} worker(s)"
                  + (", connections balanced by the main process" if opts.balance and opts.workers > 1 else
                     ", workers racing for connections" if opts.workers > 1 else "")
                  + ", loopback, FAISS and BLAS threads 1 per worker",
        "workers": opts.workers,
        "load": [asdict(r) for r in rows],
        "paced": paced,
        "in_process": inproc,
        "overhead_ratio": overhead,
        "targets": targets,
        **(_against_original(rows, original, opts) if original else {}),
    }


def _start_baseline(opts: ServingOptions,
                    stack: contextlib.ExitStack) -> tuple[ServerProcess, dict[str, list[Request]]]:
    """The original code served with its own model (until ``stack`` closes), and its workloads: the endpoints
    it has, and the floor."""
    assert opts.baseline_code is not None and opts.baseline_model is not None
    models_dir = models_dir_for(opts.baseline_model, opts.work_dir / "original")
    doc_ids = (_model_version_dir(models_dir) / "ids.txt").read_text(encoding="utf-8").splitlines()
    loads = {k: v for k, v in workloads(doc_ids).items() if k in (*BASELINE_ENDPOINTS, FLOOR)}
    server = stack.enter_context(run_server(models_dir, workers=opts.workers, balance=opts.balance,
                                            code=opts.baseline_code))
    return server, loads


def _against_original(rows: Sequence[LoadResult], original: Sequence[LoadResult],
                      opts: ServingOptions) -> dict[str, Any]:
    """This code's p99 beside the original's, and every target scaled to this machine.

    The original code met each of its targets on the machine the issues were measured on, so its p99 here over
    that target is a lower bound of how much slower this machine is; the largest such bound scales the targets
    (a conservative scale: the true one is at least as large).
    """
    new = {r.endpoint: r for r in rows if r.connections == 16}
    old = {r.endpoint: r for r in original}
    wanted = {e: p99 for e, p99, _ in TARGETS}
    bounds = [old[e].p99_ms / wanted[e] for e in BASELINE_ENDPOINTS if e in old and old[e].p99_ms]
    scale = max([1.0, *bounds])
    side_by_side = [{
        "endpoint": e, "original_p99_ms": old[e].p99_ms, "new_p99_ms": new[e].p99_ms,
        "original_req_s": old[e].requests_per_s, "new_req_s": new[e].requests_per_s,
        "original_cpu_ms": old[e].server_cpu_ms_per_request, "new_cpu_ms": new[e].server_cpu_ms_per_request,
        "p99_ratio": round(new[e].p99_ms / old[e].p99_ms, 3) if new[e].p99_ms and old[e].p99_ms else None,
    } for e in (*BASELINE_ENDPOINTS, FLOOR) if e in old and e in new]
    scaled = []
    for endpoint, p99_max, _ in TARGETS:
        r = new.get(endpoint)
        if r is None or r.p99_ms is None:
            continue
        limit = round(p99_max * scale, 1)
        scaled.append({"target": f"{endpoint}: p99 ≤ {p99_max:g} ms × {scale:.2f} = {limit:g} ms",
                       "measured": f"p99 {r.p99_ms:.1f} ms", "met": r.p99_ms <= limit})
    return {"original": {"code": str(opts.baseline_code), "model": str(opts.baseline_model),
                         "load": [asdict(r) for r in original]},
            "against_original": side_by_side, "machine_scale": round(scale, 3), "scaled_targets": scaled}
