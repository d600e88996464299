"""Benchmark fhirsvc against a bare Flask endpoint measured in the same run (``make bench``).

The parts: start-up (``create_app()`` in a fresh process, and its RSS), in-process latency with the
Flask test client (FHIR reads and searches, CDS order-sign), HTTP throughput and latency under gunicorn on
loopback (wrk, or a Python load generator when wrk is not installed; both servers with the shipped gunicorn
settings), the storage backends side by side, how the CDS evaluation scales with the number of drugs (start-up
and RSS too), draft orders and prefetch size, order-sign under a mixed load (the largest $check-orders in a
loop, idle and slow connections held), what fetching missing prefetch from a slow FHIR server adds, and the
governance view over 100,000 issued cards (bench/governance.py). Every in-process and HTTP number is also given
as a ratio to the bare endpoint.
Results go to ``bench/results/<UTC timestamp>.json``; exit status 1 if any response was an error.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import http.client
import itertools
import json
import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import governance  # bench/governance.py, beside this script
import workload  # bench/workload.py, beside this script
from workload import children, free_port, rss_mb, served

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
HOST = "127.0.0.1"

READ_R4 = "/fhir/R4/MedicationKnowledge/anakinra"
READ_R5 = "/fhir/R5/MedicationKnowledge/anakinra"
SEARCH_R4 = "/fhir/R4/MedicationKnowledge?code=L04AC03"
SEARCH_R5_INCLUDE = "/fhir/R5/MedicationKnowledge?code=L04AC03&_include=MedicationKnowledge:monograph"
ORDER_SIGN = "/cds-services/medication-safety-order-sign"
PATIENT_VIEW = "/cds-services/medication-safety-patient-view"
CHECK_ORDERS = "/fhir/R4/$check-orders"
BARE = "/bare"
BARE_POST = "/bare-post"
FETCH_DELAY = 0.05  # seconds the stand-in FHIR server adds to every request


@dataclass(frozen=True)
class Call:
    """One request: GET without a body, or POST of a JSON body."""

    path: str
    body: bytes | None = None
    vary: str = ""  # non-empty: each request's body names a new patient (so new cards), tagged with this

    def varied(self, n: int) -> bytes | None:
        """The body of the n-th request."""
        if not self.vary or self.body is None:
            return self.body
        return self.body.replace(workload.PATIENT_ID.encode(), f"{workload.PATIENT_ID}-{self.vary}-{n}".encode())

    @property
    def method(self) -> str:
        return "GET" if self.body is None else "POST"

    @property
    def bare(self) -> bool:
        return self.path in (BARE, BARE_POST)


def order_sign_body(orders: int = 1, prefetch: int = 100, **kwargs: Any) -> bytes:
    return json.dumps(workload.order_sign(orders, prefetch, **kwargs)).encode()


# The order-sign call of the in-process and HTTP parts: 1 anakinra order, about 100 prefetched resources; and the
# same call for an order the knowledge does not judge (HL7's phenytoin example): no fetch, no check, no card.
ORDER_SIGN_BODY = order_sign_body()
# The same order and patient data as a $check-orders Bundle, and a patient-view call for that patient on anakinra.
CHECK_ORDERS_BODY = json.dumps(workload.check_orders_bundle()).encode()
PATIENT_VIEW_BODY = json.dumps(workload.patient_view()).encode()
UNRELATED_BODY = order_sign_body(unrelated=True)
UNRELATED = "order-sign unrelated"
IN_PROCESS = {"read R4": Call(READ_R4), "read R5": Call(READ_R5), "search R4": Call(SEARCH_R4),
              "search R5 _include": Call(SEARCH_R5_INCLUDE), "bare": Call(BARE),
              "order-sign": Call(ORDER_SIGN, ORDER_SIGN_BODY), UNRELATED: Call(ORDER_SIGN, UNRELATED_BODY),
              "$check-orders R4": Call(CHECK_ORDERS, CHECK_ORDERS_BODY),
              "patient-view": Call(PATIENT_VIEW, PATIENT_VIEW_BODY), "bare POST": Call(BARE_POST, ORDER_SIGN_BODY)}
OVER_HTTP = {"read R4": Call(READ_R4), "search R4": Call(SEARCH_R4), "bare": Call(BARE),
             "order-sign": Call(ORDER_SIGN, ORDER_SIGN_BODY), UNRELATED: Call(ORDER_SIGN, UNRELATED_BODY),
             "bare POST": Call(BARE_POST, ORDER_SIGN_BODY)}
# the bare row each row is divided by (else "bare"); the unrelated body is the anakinra one with its order swapped
BARE_OF = {"order-sign": "bare POST", UNRELATED: "bare POST", "$check-orders R4": "bare POST",
           "patient-view": "bare POST", "bare POST": "bare POST"}


@dataclass(frozen=True)
class Settings:
    """How much to measure: the default run and ``--quick``."""

    iterations: int  # in-process requests per endpoint
    warmup: int  # in-process warm-up requests per endpoint
    startup_runs: int  # fresh processes timing create_app()
    duration: float  # seconds of HTTP load per endpoint
    http_warmup: float  # seconds of HTTP load per endpoint before measuring
    connections: int  # concurrent keep-alive connections of the load generator
    workers: int  # gunicorn workers, the same for the service and the bare app
    scaling_iterations: int  # order-sign calls per scaling point (fewer if the budget runs out)
    scaling_budget: float  # seconds per scaling point
    drug_counts: tuple[int, ...]  # made-up drugs loaded beside the shipped knowledge
    fetch_iterations: int  # order-sign calls with and without the five keys fetched from the slow server
    threads: int = 8  # threads per gunicorn worker, the same for both servers (main() sets what they run with)
    worker_class: str = "gthread"  # gunicorn's worker class in effect, the same for both


def check_orders_body(orders: int) -> bytes:
    """A $check-orders Bundle of ``orders`` draft orders, every other one for anakinra (each judged against all
    the others: what grew with the square of the orders before they were indexed), and ~100 record resources."""
    bundle = workload.check_orders_bundle(orders)
    for k in range(1, orders, 2):
        bundle["entry"][k]["resource"] = workload.kineret_order(f"kineret-{k}")
    return json.dumps(bundle).encode()


def full(workers: int) -> Settings:
    """The default run: about 5 minutes."""
    return Settings(iterations=3000, warmup=300, startup_runs=3, duration=15, http_warmup=2,
                    connections=2 * workers, workers=workers, scaling_iterations=2000, scaling_budget=8,
                    drug_counts=(1, 100, 1000, 10000), fetch_iterations=40)


def quick(workers: int) -> Settings:
    """The ``--quick`` smoke run: about 1 minute."""
    return Settings(iterations=300, warmup=50, startup_runs=1, duration=3, http_warmup=1,
                    connections=2 * workers, workers=workers, scaling_iterations=200, scaling_budget=2,
                    drug_counts=(1, 100, 1000), fetch_iterations=10)


# --- the bare Flask app ---------------------------------------------------------------------------


def bare_body(size: int) -> bytes:
    """A fixed JSON body of exactly ``size`` bytes (or the smallest valid one)."""
    head, tail = b'{"resourceType": "Basic", "id": "bare", "text": "', b'"}'
    return head + b"x" * max(0, size - len(head) - len(tail)) + tail


def bare_app(size: int, post_size: int = 0):
    """A plain Flask app: ``GET /bare`` returns a precomputed body of ``size`` bytes; ``POST /bare-post``
    parses the JSON request body (Flask's ``request.get_json()``: a JSON API cannot do less) and returns a
    precomputed body of ``post_size`` bytes."""
    from flask import Flask, request

    app = Flask(__name__)
    body, post_body = bare_body(size), bare_body(post_size)

    @app.get(BARE)
    def bare():
        return app.response_class(body, mimetype="application/json")

    @app.post(BARE_POST)
    def bare_post():
        request.get_json()
        return app.response_class(post_body, mimetype="application/json")

    return app


def serve_bare(bind: str, workers: int, threads: int, size: int, post_size: int) -> None:
    """Serve the bare app with gunicorn, configured as ``fhirsvc serve`` configures it (the shipped gunicorn
    settings and FHIRSVC_GUNICORN_CONFIG, the same workers and threads, the garbage collector set up alike)."""
    from fhirsvc.cli import gunicorn_server, gunicorn_settings, tune_gc

    config = os.environ.get("FHIRSVC_GUNICORN_CONFIG") or None  # as fhirsvc serve reads it
    server = gunicorn_server(bare_app(size, post_size),
                             gunicorn_settings(config and Path(config), bind=bind, workers=workers, threads=threads))
    tune_gc()  # as fhirsvc serve does once start-up is done
    server.run()


# --- measuring ------------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile of sorted ``values`` (q in 0..100)."""
    return values[min(len(values) - 1, max(0, math.ceil(q / 100 * len(values)) - 1))]


def summary(nanoseconds: list[int]) -> dict[str, float]:
    """n, mean, p50 and p99 in milliseconds."""
    ms = sorted(ns / 1e6 for ns in nanoseconds)
    return {"n": len(ms), "mean_ms": statistics.fmean(ms), "p50_ms": percentile(ms, 50), "p99_ms": percentile(ms, 99)}


def startup_probe() -> None:
    """In a fresh process: time the import and create_app() (and the knowledge load inside it); print JSON."""
    start = time.perf_counter()
    import fhirsvc

    imported = time.perf_counter()
    import fhirsvc.app  # what create_app() imports first (Flask and the faces): counted in create_app_s

    loading: list[float] = []
    load_knowledge = fhirsvc.app.load_knowledge

    def timed(*args, **kwargs):
        began = time.perf_counter()
        try:
            return load_knowledge(*args, **kwargs)
        finally:
            loading.append(time.perf_counter() - began)

    fhirsvc.app.load_knowledge = timed
    fhirsvc.app.create_app()
    created = time.perf_counter()
    print(json.dumps({"import_s": imported - start, "create_app_s": created - imported,
                      "knowledge_load_s": loading[0] if loading else None,
                      "rss_mb": rss_mb(), "peak_rss_mb": rss_mb(field="VmHWM")}))


def measure_startup(runs: int, knowledge_path: str = "") -> dict[str, Any]:
    """The start-up probe in fresh processes (``knowledge_path``: extra knowledge directories), with a validation
    cache of its own: the first run starts cold (every file validated), the others warm (median of them)."""
    with tempfile.TemporaryDirectory() as scratch:
        env = {**os.environ, "FHIRSVC_KNOWLEDGE_PATH": knowledge_path,
               "FHIRSVC_VALIDATION_CACHE": str(Path(scratch, "validated.txt")), "FHIRSVC_AUTH": "off"}
        results = []
        for _ in range(max(2, runs)):
            out = subprocess.run([sys.executable, __file__, "--startup-probe"], check=True, capture_output=True,
                                 text=True, cwd=ROOT, env=env).stdout
            result = json.loads(out.strip().splitlines()[-1])
            results.append(result | {"startup_s": result["import_s"] + result["create_app_s"]})
    warm = {key: statistics.median(r[key] for r in results[1:]) for key in results[0]}
    return {"cold": results[0], "warm": warm | {"runs": len(results) - 1}}


def request(client, call: Call):
    """Send one call with a Flask test client; the response with its body read."""
    response = client.open(call.path, method=call.method, data=call.body,
                           content_type="application/json" if call.body is not None else None)
    response.get_data()
    return response


@contextmanager
def as_served() -> Iterator[None]:
    """Measure with the garbage collector set up as ``fhirsvc serve`` sets it (``fhirsvc.cli.tune_gc``), then
    put it back."""
    from fhirsvc.cli import tune_gc

    threshold = gc.get_threshold()
    tune_gc()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)


@as_served()
def measure_in_process(service, bare, settings: Settings) -> tuple[dict[str, Any], int]:
    """Latency of each endpoint with the Flask test client, interleaved so drift hits all alike."""
    clients = {name: (bare if call.bare else service).test_client() for name, call in IN_PROCESS.items()}
    samples: dict[str, list[int]] = {name: [] for name in IN_PROCESS}
    sizes: dict[str, int] = {}
    errors = dict.fromkeys(IN_PROCESS, 0)
    for _ in range(settings.warmup):
        for name, call in IN_PROCESS.items():
            sizes[name] = len(request(clients[name], call).get_data())
    for _ in range(settings.iterations):
        for name, call in IN_PROCESS.items():
            began = time.perf_counter_ns()
            response = request(clients[name], call)
            samples[name].append(time.perf_counter_ns() - began)
            errors[name] += response.status_code != 200
    results = {name: summary(samples[name]) | {"bytes": sizes[name], "errors": errors[name]} for name in IN_PROCESS}
    results = with_ratios(results, ("mean_ms", "p50_ms", "p99_ms"))
    results[EVALUATE] = measure_evaluate(service, settings)
    return results, sum(errors.values())


EVALUATE = "order-sign evaluate()"


def measure_evaluate(service, settings: Settings) -> dict[str, Any]:
    """The order-sign call's own work, without Flask, the test client or parsing the body: ``evaluate()`` (validate,
    patient context, checks, cards, issued cards stored) on the parsed body, in a request context."""
    from fhirsvc.cds.views import evaluate

    body = json.loads(ORDER_SIGN_BODY)
    samples = []
    with service.test_request_context(ORDER_SIGN, method="POST"):
        for number in range(settings.warmup + settings.iterations):
            began = time.perf_counter_ns()
            evaluate("medication-safety-order-sign", body)
            if number >= settings.warmup:
                samples.append(time.perf_counter_ns() - began)
    return summary(samples) | {"bytes": 0, "errors": 0, **{f"{key}_x_bare": None for key in
                                                           ("mean_ms", "p50_ms", "p99_ms")}}


def with_ratios(results: dict[str, dict[str, Any]], keys: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """Add ``<key>_x_bare``: each value divided by its bare endpoint's (``BARE_OF``, else ``bare``)."""
    for name, row in results.items():
        bare = results.get(BARE_OF.get(name, "bare"), {})
        for key in keys:
            row[f"{key}_x_bare"] = row[key] / bare[key] if bare.get(key) else None
    return results


# --- HTTP under gunicorn --------------------------------------------------------------------------


def tree_rss_mb(pid: int) -> dict[str, Any]:
    """RSS of a gunicorn master and its workers (MB)."""
    workers = [rss_mb(child) for child in children(pid)]
    master = rss_mb(pid)
    return {"master_mb": master, "workers_mb": sorted(workers), "total_mb": master + sum(workers)}


UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _ms(text: str) -> float:
    """wrk's ``497.00us`` / ``4.28ms`` / ``1.02s`` in milliseconds."""
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * UNITS[unit]


def wrk_load(url: str, call: Call, duration: float, settings: Settings, scratch: Path) -> dict[str, Any]:
    """Drive ``url`` with wrk (a Lua script sends the POST body); requests/s, latency and errors from its report."""
    script: list[str] = []
    if call.body is not None:
        body_file = scratch / "wrk-body.json"
        body_file.write_bytes(call.body)
        script_file = scratch / "wrk-post.lua"
        script_file.write_text('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                               f'local f = io.open("{body_file}", "rb")\nwrk.body = f:read("*a")\nf:close()\n')
        if call.vary:  # a new patient per request: the body cut at the patient id once, joined with a new id
            with script_file.open("a") as script_text:
                script_text.write(
                    f'local pid, tag = "{workload.PATIENT_ID}", "{call.vary}"\n'
                    'local parts, start, n = {}, 1, 0\n'
                    'while true do\n'
                    '  local i, j = string.find(wrk.body, pid, start, true)\n'
                    '  if not i then table.insert(parts, string.sub(wrk.body, start)) break end\n'
                    '  table.insert(parts, string.sub(wrk.body, start, i - 1))\n'
                    '  start = j + 1\n'
                    'end\n'
                    'request = function()\n'
                    '  n = n + 1\n'
                    '  return wrk.format(nil, nil, nil, table.concat(parts, pid .. "-" .. tag .. "-" .. n))\n'
                    'end\n')
        script = ["-s", str(script_file)]
    out = subprocess.run(["wrk", "-t1", f"-c{settings.connections}", f"-d{max(1, round(duration))}s", "--latency",
                          *script, url], check=True, capture_output=True, text=True).stdout
    latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", out, re.MULTILINE))
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = (sum(map(int, socket_errors.groups())) if socket_errors else 0) + (int(non_2xx[1]) if non_2xx else 0)
    return {"requests": int(re.search(r"(\d+) requests in", out)[1]),
            "requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1]),
            "mean_ms": _ms(re.search(r"Latency\s+(\S+)", out)[1]),
            "p50_ms": _ms(latency["50"]), "p99_ms": _ms(latency["99"]), "errors": errors}


def python_load(url: str, call: Call, duration: float, settings: Settings, scratch: Path) -> dict[str, Any]:
    """Drive ``url`` from threads, one keep-alive http.client connection each (reconnecting when closed)."""
    parsed = urllib.request.urlparse(url)
    path = parsed.path + (f"?{parsed.query}" if parsed.query else "")
    headers = {"Content-Type": "application/json"} if call.body is not None else {}
    results: list[tuple[list[int], int]] = []
    deadline = time.perf_counter() + duration
    counter = itertools.count(1)

    def drive() -> None:
        connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=10)
        samples, errors = [], 0
        while time.perf_counter() < deadline:
            body = call.varied(next(counter))
            began = time.perf_counter_ns()
            try:
                connection.request(call.method, path, body=body, headers=headers)
                response = connection.getresponse()
                response.read()
                errors += response.status != 200
            except (OSError, http.client.HTTPException):
                errors += 1
                connection.close()
            samples.append(time.perf_counter_ns() - began)
        connection.close()
        results.append((samples, errors))

    began = time.perf_counter()
    threads = [threading.Thread(target=drive) for _ in range(settings.connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    samples = [ns for thread_samples, _ in results for ns in thread_samples]
    stats = summary(samples)
    return {"requests": stats.pop("n"), "requests_per_s": len(samples) / elapsed, **stats,
            "errors": sum(errors for _, errors in results)}


def served_model(threads: int | None) -> tuple[int, str]:
    """The threads per worker and the worker class both servers run with: the shipped gunicorn settings,
    FHIRSVC_GUNICORN_CONFIG and ``threads`` (when given), as ``fhirsvc serve`` reads them."""
    from gunicorn.config import Config

    from fhirsvc.cli import gunicorn_settings

    config = os.environ.get("FHIRSVC_GUNICORN_CONFIG") or None
    cfg = Config()
    for name, value in gunicorn_settings(config and Path(config), threads=threads).items():
        cfg.set(name, value)
    return cfg.threads, cfg.worker_class_str


def service_command(port: int, settings: Settings) -> list[str]:
    """``fhirsvc serve`` on ``port`` with the run's workers and threads (the shipped gunicorn settings)."""
    return [sys.executable, "-m", "fhirsvc.cli", "serve", "--host", HOST, "--port", str(port),
            "--workers", str(settings.workers), "--threads", str(settings.threads)]


def bare_command(port: int, settings: Settings, body_size: int, post_size: int) -> list[str]:
    """The bare app under gunicorn on ``port``, set up as ``service_command`` sets up the service."""
    return [sys.executable, __file__, "--serve-bare", f"{HOST}:{port}", "--workers", str(settings.workers),
            "--threads", str(settings.threads), "--body-size", str(body_size), "--post-body-size", str(post_size)]


def measure_http(settings: Settings, body_size: int, post_size: int, generator: str
                 ) -> tuple[dict[str, Any], dict[str, Any], int]:
    """The service (``fhirsvc serve``, CDS authentication off) and the bare app under gunicorn, same workers,
    driven in turn."""
    load = wrk_load if generator == "wrk" else python_load
    service_port, bare_port = free_port(), free_port()
    service_cmd = service_command(service_port, settings)
    bare_cmd = bare_command(bare_port, settings, body_size, post_size)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as scratch:
        service_env = {"FHIRSVC_AUTH": "off", "FHIRSVC_DATABASE_URL": f"sqlite:///{Path(scratch, 'feedback.sqlite3')}"}
        with served(service_cmd, f"http://{HOST}:{service_port}/healthz", Path(scratch, "service.log"),
                    service_env, cwd=ROOT) as service, \
                served(bare_cmd, f"http://{HOST}:{bare_port}{BARE}", Path(scratch, "bare.log"), cwd=ROOT) as bare:
            for name, call in OVER_HTTP.items():
                url = f"http://{HOST}:{bare_port if call.bare else service_port}{call.path}"
                load(url, call, settings.http_warmup, settings, Path(scratch))
                results[name] = load(url, call, settings.duration, settings, Path(scratch))
            memory = {"service": tree_rss_mb(service.pid), "bare": tree_rss_mb(bare.pid)}
    errors = sum(row["errors"] for row in results.values())
    return with_ratios(results, ("requests_per_s", "mean_ms", "p50_ms", "p99_ms")), memory, errors


# --- CDS: scaling and fhirServer fetch ------------------------------------------------------------


def cds_app(scratch: Path, **config: Any):
    """An app for the CDS measurements: authentication off, feedback in ``scratch``."""
    from fhirsvc import create_app

    return create_app({"AUTH": "off", "DATABASE_URL": f"sqlite:///{scratch / 'feedback.sqlite3'}", **config})


@as_served()
def time_calls(client, call: Call, settings: Settings, warmup: int = 20) -> tuple[dict[str, Any], int]:
    """p50/p99 of repeated calls: ``scaling_iterations`` or as many as fit in ``scaling_budget`` seconds."""
    for _ in range(warmup):
        request(client, call)
    samples, errors = [], 0
    deadline = time.perf_counter() + settings.scaling_budget
    while len(samples) < settings.scaling_iterations and (len(samples) < 20 or time.perf_counter() < deadline):
        began = time.perf_counter_ns()
        response = request(client, call)
        samples.append(time.perf_counter_ns() - began)
        errors += response.status_code != 200
    answer = json.loads(request(client, call).get_data())
    cards = len(answer["cards"]) if "cards" in answer else answer.get("total")  # $check-orders: its issues
    return summary(samples) | {"errors": errors, "cards": cards}, errors


def growth(rows: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """How p50 grows from the smallest to the largest point: the ratio and the cost per added unit (ms)."""
    low, high = min(rows), max(rows)
    first, last = rows[low]["p50_ms"], rows[high]["p50_ms"]
    return {"p50_ratio": last / first, "ms_per_unit": (last - first) / (high - low) if high > low else None}


def measure_scaling(service, settings: Settings, scratch: Path) -> tuple[dict[str, Any], int]:
    """order-sign p50/p99 against the number of made-up drugs (with start-up time and RSS of each knowledge,
    in fresh processes), of draft orders and of prefetched resources."""
    call = Call(ORDER_SIGN, ORDER_SIGN_BODY)
    drugs: dict[int, dict[str, Any]] = {}
    errors = 0
    for count in settings.drug_counts:
        directory = workload.write_drugs(scratch / f"drugs-{count}", count)
        startup = measure_startup(settings.startup_runs if count < 10000 else 2, str(directory))
        app = cds_app(scratch, KNOWLEDGE_PATH=str(directory))
        row, bad = time_calls(app.test_client(), call, settings)
        drugs[count] = row | {"startup": startup, "files": 5 * count}
        errors += bad
        print(f"  {count} drugs: p50 {row['p50_ms']:.3f} ms, start-up {startup['cold']['startup_s']:.2f} s cold, "
              f"{startup['warm']['startup_s']:.2f} s warm, peak RSS {startup['cold']['peak_rss_mb']:.0f} MB",
              flush=True)
        del app
        gc.collect()
    client = service.test_client()
    orders: dict[int, dict[str, Any]] = {}
    for count in (1, 10, 50):
        orders[count], bad = time_calls(client, Call(ORDER_SIGN, order_sign_body(orders=count)), settings)
        errors += bad
    from fhirsvc.evaluation.orders import MAX_ORDERS

    check_orders: dict[int, dict[str, Any]] = {}
    for count in (1, 10, 100, MAX_ORDERS):  # up to the most one call may hold (more: 413)
        check_orders[count], bad = time_calls(client, Call(CHECK_ORDERS, check_orders_body(count)), settings,
                                              warmup=2)
        errors += bad
    prefetch: dict[int, dict[str, Any]] = {}
    for size in (10, 100, 1000):
        prefetch[size], bad = time_calls(client, Call(ORDER_SIGN, order_sign_body(prefetch=size)), settings)
        prefetch[size]["bytes"] = len(order_sign_body(prefetch=size))
        errors += bad
    return {"drugs": {"points": drugs, "growth": growth(drugs)},
            "orders": {"points": orders, "growth": growth(orders)},
            "check_orders": {"points": check_orders, "growth": growth(check_orders)},
            "prefetch": {"points": prefetch, "growth": growth(prefetch)}}, errors


# --- mixed load: order-sign while an attacker sends the largest $check-orders and holds connections ----------

ATTACK_ORDERS = 1000  # orders in the attacker's $check-orders (halved until the service takes them)
ATTACKERS = 2  # concurrent attacker loops
ATTACK_IDLE, ATTACK_SILENT = 4, 2  # idle kept-alive connections, connections that never send a byte


def attack_body(orders: int, limit: int) -> bytes:
    """A $check-orders Bundle of ``orders`` interacting orders (and the patient data), padded with blanks to one
    byte under ``limit``: the largest body the service reads."""
    body = json.dumps(workload.check_orders_bundle(orders, interacting=True)).encode()
    return body + b" " * (limit - 1 - len(body))


def post_once(url: str, body: bytes, timeout: float = 300) -> tuple[int, float]:
    """POST ``body`` on a new connection: the status and the seconds it took."""
    parsed = urllib.request.urlparse(url)
    connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=timeout)
    began = time.perf_counter()
    try:
        connection.request("POST", parsed.path, body=body, headers={"Content-Type": "application/fhir+json"})
        response = connection.getresponse()
        response.read()
        return response.status, time.perf_counter() - began
    finally:
        connection.close()


def measure_mixed_load(settings: Settings, generator: str, scratch: Path,
                       attack_orders: int = ATTACK_ORDERS) -> tuple[dict[str, Any], int]:
    """The service under gunicorn (the shipped settings): order-sign driven alone, then again while ATTACKERS
    loops post the worst request the service takes to $check-orders (``attack_orders`` interacting orders, fewer
    if it refuses them, padded to just under FHIRSVC_MAX_CONTENT_LENGTH) and ATTACK_IDLE idle kept-alive,
    ATTACK_SILENT silent and threads - 1 slow-header connections are held. Reported: order-sign p50/p99, req/s and
    errors alone and under attack, and the attacker's calls."""
    from fhirsvc.config import load_config

    load = wrk_load if generator == "wrk" else python_load
    limit = int(load_config()["MAX_CONTENT_LENGTH"])
    slow = max(0, settings.threads - 1)
    port = free_port()
    base = f"http://{HOST}:{port}"
    env = {"FHIRSVC_AUTH": "off", "FHIRSVC_DATABASE_URL": f"sqlite:///{scratch / 'mixed.sqlite3'}"}
    with served(service_command(port, settings), f"{base}/healthz", scratch / "mixed.log", env, cwd=ROOT):
        orders, refusals = attack_orders, []
        while True:
            body = attack_body(orders, limit)
            status, seconds = post_once(base + CHECK_ORDERS, body)
            if status == 200 or orders <= 1:
                break
            refusals.append({"orders": orders, "status": status})
            orders //= 2
        call = Call(ORDER_SIGN, ORDER_SIGN_BODY)
        load(base + ORDER_SIGN, call, settings.http_warmup, settings, scratch)
        alone = load(base + ORDER_SIGN, call, settings.duration, settings, scratch)
        attacks: list[tuple[int, float]] = []
        stop = threading.Event()

        def attack() -> None:
            while not stop.is_set():
                try:
                    attacks.append(post_once(base + CHECK_ORDERS, body))
                except (OSError, http.client.HTTPException):
                    attacks.append((0, 0.0))

        with workload.hostile_connections(HOST, port, ATTACK_IDLE, ATTACK_SILENT, slow, ORDER_SIGN):
            attackers = [threading.Thread(target=attack) for _ in range(ATTACKERS)]
            for thread in attackers:
                thread.start()
            attacked = load(base + ORDER_SIGN, call, settings.duration, settings, scratch)
            stop.set()
            for thread in attackers:
                thread.join()
    statuses = sorted({status for status, _ in attacks})
    times = sorted(seconds for status, seconds in attacks if status == 200)
    errors = alone["errors"] + attacked["errors"] + (status != 200) + sum(s != 200 for s, _ in attacks)
    return {"limit_bytes": limit, "attack": {"orders": orders, "bytes": len(body), "loops": ATTACKERS,
                                             "first_call_s": seconds, "refused_first": refusals,
                                             "calls": len(attacks), "statuses": statuses,
                                             "p50_s": percentile(times, 50) if times else None},
            "held": {"idle": ATTACK_IDLE, "silent": ATTACK_SILENT, "slow_header": slow},
            "alone": alone, "attacked": attacked}, errors



def measure_fetch(settings: Settings, scratch: Path) -> tuple[dict[str, Any], int]:
    """order-sign with all prefetch against the same call with the five keys missing, read from a stand-in FHIR
    server on loopback that adds ``FETCH_DELAY`` to every request (interleaved)."""
    keys = ("patient", "conditions", "allergies", "medications", "observations")
    with workload.slow_fhir_server(FETCH_DELAY) as (base, arrivals):
        app = cds_app(scratch, FHIR_SERVER_ALLOWLIST=base)
        client = app.test_client()
        calls = {"prefetch": Call(ORDER_SIGN, order_sign_body(fhir_server=base)),
                 "fetched": Call(ORDER_SIGN, order_sign_body(fhir_server=base, missing=keys))}
        cards = {name: json.loads(request(client, call).get_data())["cards"] for name, call in calls.items()}
        samples: dict[str, list[int]] = {name: [] for name in calls}
        spreads, requests_per_call, errors = [], [], 0
        for _ in range(settings.fetch_iterations):
            for name, call in calls.items():
                seen = len(arrivals)
                began = time.perf_counter_ns()
                response = request(client, call)
                samples[name].append(time.perf_counter_ns() - began)
                errors += response.status_code != 200
                if name == "fetched":
                    mine = arrivals[seen:]
                    requests_per_call.append(len(mine))
                    spreads.append((max(mine) - min(mine)) * 1000 if mine else 0.0)
    rows = {name: summary(values) for name, values in samples.items()}
    added = rows["fetched"]["p50_ms"] - rows["prefetch"]["p50_ms"]
    return {"delay_ms": FETCH_DELAY * 1000, "keys_fetched": len(keys), **rows,
            "added_p50_ms": added, "added_in_requests": added / (FETCH_DELAY * 1000),
            "requests_per_call": statistics.median(requests_per_call),
            "arrival_spread_ms_p50": statistics.median(spreads),
            "same_cards": [c["summary"] for c in cards["prefetch"]] == [c["summary"] for c in cards["fetched"]]}, errors


# --- storage: SQLite and PostgreSQL side by side -------------------------------------------------

FEEDBACK_POSTERS = 4
FEEDBACK_CARDS = 20_000  # cards issued beforehand per poster (feedback is stored on issued cards only)


def issue_feedback_cards(database_url: str, prefix: str) -> None:
    """Note the cards the posters send feedback on as issued, with the backend's own insert."""
    from fhirsvc.storage import open_store
    from fhirsvc.storage.base import IssuedCard

    store = open_store(database_url)
    now = datetime.now(UTC)
    try:
        store._db_remember_cards([(ORDER_SIGN.rsplit("/", 1)[1], IssuedCard(f"{prefix}-{poster}-{n}", "BENCH",
                                                                            "warning", "[]"), now)
                                  for poster in range(FEEDBACK_POSTERS) for n in range(1, FEEDBACK_CARDS + 1)], None)
    finally:
        store.close()


def post_feedback(url: str, duration: float, prefix: str) -> dict[str, Any]:
    """``FEEDBACK_POSTERS`` threads post feedback (one new item per request on an issued card, keep-alive
    connections) for ``duration`` seconds: items/s, p50/p99 per request, errors."""
    parsed = urllib.request.urlparse(url)
    results: list[tuple[list[int], int]] = []
    deadline = time.perf_counter() + duration

    def drive(poster: int) -> None:
        connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)
        samples, errors, n = [], 0, 0
        while time.perf_counter() < deadline and n < FEEDBACK_CARDS:
            n += 1
            body = json.dumps({"feedback": [{"card": f"{prefix}-{poster}-{n}", "outcome": "overridden",
                                             "outcomeTimestamp": "2026-11-24T12:00:00Z"}]})
            began = time.perf_counter_ns()
            try:
                connection.request("POST", parsed.path, body=body, headers={"Content-Type": "application/json"})
                response = connection.getresponse()
                errors += response.status != 200 or json.loads(response.read()) != {"received": 1, "stored": 1}
            except (OSError, http.client.HTTPException, ValueError):
                errors += 1
                connection.close()
            samples.append(time.perf_counter_ns() - began)
        connection.close()
        results.append((samples, errors))

    began = time.perf_counter()
    threads = [threading.Thread(target=drive, args=(poster,)) for poster in range(FEEDBACK_POSTERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    samples = [ns for thread_samples, _ in results for ns in thread_samples]
    stats = summary(samples)
    errors = sum(errors for _, errors in results)
    return {"items": stats.pop("n") - errors, "items_per_s": (len(samples) - errors) / elapsed, **stats,
            "posters": FEEDBACK_POSTERS, "errors": errors}


STORAGE_ROUNDS = 3  # the HTTP rows of the storage part take turns this many times, so drift hits all alike


def interleaved(rows: list[tuple[str, str, bool]], load, settings: Settings, scratch: Path) -> dict[str, Any]:
    """Drive each (name, url, new patients) row for ``duration`` seconds in all, in ``STORAGE_ROUNDS`` turns
    (after one warm-up each): req/s over all turns, the median p50 and the highest p99 of the turns."""
    rounds = STORAGE_ROUNDS if settings.duration >= 3 * STORAGE_ROUNDS else 1
    turns: dict[str, list[dict[str, Any]]] = {name: [] for name, _, _ in rows}
    for number, (_, url, new_patients) in enumerate(rows):
        load(url, Call(ORDER_SIGN, ORDER_SIGN_BODY, f"{number}w" if new_patients else ""), settings.http_warmup,
             settings, scratch)
    for turn in range(rounds):
        for number, (name, url, new_patients) in enumerate(rows):
            call = Call(ORDER_SIGN, ORDER_SIGN_BODY, f"{number}t{turn}" if new_patients else "")
            turns[name].append(load(url, call, settings.duration / rounds, settings, scratch))
    return {name: {"requests": sum(t["requests"] for t in runs),
                   "requests_per_s": sum(t["requests"] for t in runs) / sum(t["requests"] / t["requests_per_s"]
                                                                            for t in runs),
                   "p50_ms": statistics.median(t["p50_ms"] for t in runs), "p99_ms": max(t["p99_ms"] for t in runs),
                   "errors": sum(t["errors"] for t in runs), "turns": len(runs)} for name, runs in turns.items()}


def measure_writes(url: str, cards: list[dict], settings: Settings) -> dict[str, Any]:
    """In process, what one CDS call writes: the ``jti`` of its token and the issued-cards note (the cards of the
    bench's order-sign request), each alone, on a store of the backend."""
    from fhirsvc.storage import open_store

    store = open_store(url)
    jti, queued, written = [], [], []
    try:
        for i in range(settings.warmup + settings.iterations):
            now = time.time()
            new_cards = [card | {"uuid": f"{card['uuid']}-{now}-{i}"} for card in cards]  # new cards: written
            began = time.perf_counter_ns()
            store.first_use("https://ehr.example.org", f"bench-{now}-{i}", now + 300, now)
            checked = time.perf_counter_ns()
            store.remember_cards("medication-safety", new_cards)
            noted = time.perf_counter_ns()
            store.write_notes()  # this call's note alone (the note writer batches 50 ms of calls)
            ended = time.perf_counter_ns()
            if i >= settings.warmup:
                jti.append(checked - began)
                queued.append(noted - checked)
                written.append(ended - noted)
        failed = store.card_notes_failed
    finally:
        store.close()
    return {"jti": summary(jti), "cards_note_in_call": summary(queued),
            "cards_note_written": summary(written) | {"cards": len(cards), "failed": failed}}


def measure_storage(settings: Settings, body_size: int, post_size: int, generator: str,
                    scratch: Path) -> tuple[dict[str, Any], int]:
    """Both backends in the same run: HTTP order-sign under gunicorn (its issued-cards note written to SQLite, or
    to PostgreSQL on loopback) against the bare POST endpoint; the jti and issued-cards writes per call in
    process; feedback throughput with ``FEEDBACK_POSTERS`` concurrent posters. PostgreSQL is a throwaway cluster
    (bench/pgcluster.py); without its binaries the part says so and measures SQLite alone."""
    import pgcluster

    load = wrk_load if generator == "wrk" else python_load
    result: dict[str, Any] = {}
    errors = 0
    with contextlib.ExitStack() as stack:
        urls = {"sqlite": f"sqlite:///{scratch / 'storage.sqlite3'}"}
        try:
            cluster = stack.enter_context(pgcluster.throwaway_cluster())
            urls["postgresql"] = cluster.create_database("bench")
            result["postgresql_server"] = subprocess.run([str(cluster.bin_dir / "postgres"), "--version"],
                                                         capture_output=True, text=True).stdout.strip()
        except RuntimeError as exc:
            result["postgresql_skipped"] = str(exc).splitlines()[0]
            print(f"  PostgreSQL not measured: {result['postgresql_skipped']}", flush=True)
        bare_port = free_port()
        bare_cmd = bare_command(bare_port, settings, body_size, post_size)
        stack.enter_context(served(bare_cmd, f"http://{HOST}:{bare_port}{BARE}", scratch / "bare.log", cwd=ROOT))
        services = {}
        for backend, url in urls.items():
            port = free_port()
            command = service_command(port, settings)
            stack.enter_context(served(command, f"http://{HOST}:{port}/healthz", scratch / f"{backend}.log",
                                       {"FHIRSVC_AUTH": "off", "FHIRSVC_DATABASE_URL": url}, cwd=ROOT))
            services[backend] = f"http://{HOST}:{port}"
        rows = [("bare POST", f"http://{HOST}:{bare_port}{BARE_POST}", True),
                *((f"order-sign ({backend})", base + ORDER_SIGN, True) for backend, base in services.items()),
                *((f"order-sign ({backend}), same request", base + ORDER_SIGN, False)
                  for backend, base in services.items())]
        http_rows = interleaved(rows, load, settings, scratch)
        errors += sum(row["errors"] for row in http_rows.values())
        for row in http_rows.values():
            row["requests_per_s_x_bare"] = row["requests_per_s"] / http_rows["bare POST"]["requests_per_s"]
        result["http"] = http_rows
        cards = json.loads(request(cds_app(scratch).test_client(), IN_PROCESS["order-sign"]).get_data())["cards"]
        result["writes"] = {backend: measure_writes(url, cards, settings) for backend, url in urls.items()}
        result["feedback"] = {}
        for backend, base in services.items():
            issue_feedback_cards(urls[backend], f"bench-{backend}")
            row = post_feedback(base + ORDER_SIGN + "/feedback", settings.duration, f"bench-{backend}")
            result["feedback"][backend] = row
            errors += row["errors"]
    return result, errors


# --- targets --------------------------------------------------------------------------------------


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets with the measured values: each ``met`` or not."""
    out = []

    def target(name: str, value: float | None, limit: float, below: bool, unit: str) -> None:
        if value is not None:
            out.append({"target": name, "value": value, "limit": limit, "unit": unit, "below": below,
                        "met": value < limit if below else value >= limit})

    in_process, http = result.get("in_process") or {}, (result.get("http") or {}).get("endpoints") or {}
    target("order-sign in-process p50 (test client)", (in_process.get("order-sign") or {}).get("p50_ms"), 2.0, True,
           "ms")
    target("order-sign evaluate() p50", (in_process.get(EVALUATE) or {}).get("p50_ms"), 2.0, True, "ms")
    if in_process.get("$check-orders R4") and in_process.get("order-sign"):
        target("$check-orders p50 vs order-sign p50 (in process)",
               in_process["$check-orders R4"]["p50_ms"] / in_process["order-sign"]["p50_ms"], 1.2, True, "x")
    target("HTTP order-sign req/s vs bare POST", (http.get("order-sign") or {}).get("requests_per_s_x_bare"),
           0.5, False, "x")
    target("HTTP read R4 req/s vs bare", (http.get("read R4") or {}).get("requests_per_s_x_bare"), 0.8, False, "x")
    storage_http = (result.get("storage") or {}).get("http") or {}
    for backend in ("sqlite", "postgresql"):
        target(f"HTTP order-sign req/s vs bare POST, {backend}",
               (storage_http.get(f"order-sign ({backend})") or {}).get("requests_per_s_x_bare"), 0.5, False, "x")
    for backend, part in ((result.get("governance") or {}).get("backends") or {}).items():
        if part:
            target(f"governance page p50, {result['governance']['cards']:,} cards, {backend}", part["page"]["p50_ms"],
                   1000.0, True, "ms")
    startup = result.get("startup")
    if startup:
        for state in ("cold", "warm"):
            target(f"start-up, shipped knowledge, {state} (import + create_app)", startup[state]["startup_s"],
                   1.0, True, "s")
    big = ((result.get("scaling") or {}).get("drugs") or {}).get("points", {}).get(10000)
    if big:
        for state in ("cold", "warm"):
            target(f"start-up, 10,000 drugs, {state} (import + create_app)", big["startup"][state]["startup_s"],
                   30.0, True, "s")
        target("peak RSS, 10,000 drugs", max(big["startup"][s]["peak_rss_mb"] for s in ("cold", "warm")),
               1024.0, True, "MB")
    return out


# --- report ---------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """CPU count and model, Python, platform, and the git commit (with a dirty flag)."""
    def git(*args: str) -> str | None:
        try:
            return subprocess.run(["git", *args], cwd=ROOT, check=True, capture_output=True, text=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return None

    cpuinfo = Path("/proc/cpuinfo")
    models = re.findall(r"^model name\s*:\s*(.+)$", cpuinfo.read_text(), re.MULTILINE) if cpuinfo.exists() else []
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"cpu_count": os.cpu_count(), "cpu_model": models[0] if models else platform.processor(),
            "python": platform.python_version(), "platform": platform.platform(),
            "git_commit": git("rev-parse", "HEAD"), "git_dirty": bool(status) if status is not None else None}


def table(title: str, header: list[str], rows: list[list[str]]) -> str:
    """A plain-text table with right-aligned columns."""
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]

    def line(row: list[str]) -> str:
        return "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                         for i, (c, w) in enumerate(zip(row, widths, strict=True)))

    return "\n".join([title, line(header), "  ".join("-" * w for w in widths), *map(line, rows)])


def ratio(value: float | None) -> str:
    """``4.61x``, or ``-`` when there is no ratio."""
    return f"{value:.2f}x" if value is not None else "-"


def report(result: dict[str, Any]) -> str:
    """The readable tables of a result."""
    parts = []
    settings = result["settings"]
    rows = result.get("in_process")
    if rows:
        parts.append(table(
            f"In-process (Flask test client, {settings['iterations']} requests each, interleaved; "
            "order-sign is divided by bare POST)",
            ["endpoint", "bytes", "mean ms", "p50 ms", "p99 ms", "mean/bare", "p50/bare", "p99/bare", "errors"],
            [[name, r["bytes"], f"{r['mean_ms']:.3f}", f"{r['p50_ms']:.3f}", f"{r['p99_ms']:.3f}",
              ratio(r["mean_ms_x_bare"]), ratio(r["p50_ms_x_bare"]), ratio(r["p99_ms_x_bare"]), r["errors"]]
             for name, r in rows.items()]))
    http = result.get("http")
    if http:
        parts.append(table(
            f"HTTP under gunicorn on loopback ({http['generator']}, {settings['workers']} "
            f"{settings['worker_class']} workers x {settings['threads']} threads, "
            f"{settings['connections']} connections, {settings['duration']:g} s each; order-sign vs bare POST)",
            ["endpoint", "req/s", "req/s vs bare", "p50 ms", "p99 ms", "p50/bare", "p99/bare", "errors"],
            [[name, f"{r['requests_per_s']:.0f}", ratio(r["requests_per_s_x_bare"]), f"{r['p50_ms']:.3f}",
              f"{r['p99_ms']:.3f}", ratio(r["p50_ms_x_bare"]), ratio(r["p99_ms_x_bare"]), r["errors"]]
             for name, r in http["endpoints"].items()]))
    scaling = result.get("scaling")
    if scaling:
        drugs = scaling["drugs"]
        parts.append(table(
            f"order-sign vs knowledge size (made-up drugs beside the shipped one; 1 order, ~100 prefetched; "
            f"p50 ratio largest/smallest {drugs['growth']['p50_ratio']:.2f}x)",
            ["drugs", "files", "calls", "p50 ms", "p99 ms", "start-up s cold", "warm", "load s cold", "warm",
             "RSS MB", "peak RSS MB"],
            [[n, r["files"], r["n"], f"{r['p50_ms']:.3f}", f"{r['p99_ms']:.3f}",
              f"{r['startup']['cold']['startup_s']:.2f}", f"{r['startup']['warm']['startup_s']:.2f}",
              f"{r['startup']['cold']['knowledge_load_s']:.2f}", f"{r['startup']['warm']['knowledge_load_s']:.2f}",
              f"{r['startup']['warm']['rss_mb']:.0f}",
              f"{max(r['startup'][s]['peak_rss_mb'] for s in ('cold', 'warm')):.0f}"]
             for n, r in drugs["points"].items()]))
        for key, label in (("orders", "order-sign vs draft orders (anakinra + others; ~100 prefetched)"),
                           ("check_orders", "$check-orders vs orders (every other one anakinra; ~100 record "
                                            "resources; cards = DetectedIssues)"),
                           ("prefetch", "order-sign vs prefetched resources (1 order)")):
            part = scaling.get(key)
            if not part:
                continue
            parts.append(table(
                f"{label}: p50 ratio {part['growth']['p50_ratio']:.2f}x, "
                f"{part['growth']['ms_per_unit']:.4f} ms per added one",
                [key, "calls", "p50 ms", "p99 ms", "cards"],
                [[n, r["n"], f"{r['p50_ms']:.3f}", f"{r['p99_ms']:.3f}", r["cards"]]
                 for n, r in part["points"].items()]))
    mixed = result.get("mixed_load")
    if mixed:
        attack, held = mixed["attack"], mixed["held"]
        parts.append(table(
            f"Mixed load (gunicorn {settings['workers']} {settings['worker_class']} workers x "
            f"{settings['threads']} threads, "
            f"{settings['connections']} connections, {settings['duration']:g} s each): order-sign alone, and while "
            f"{attack['loops']} loops post $check-orders of {attack['orders']} orders ({attack['bytes']:,} bytes, "
            f"limit {mixed['limit_bytes']:,}) and {held['idle']} idle kept-alive, {held['silent']} silent and "
            f"{held['slow_header']} slow-header connections are held",
            ["order-sign", "req/s", "p50 ms", "p99 ms", "errors"],
            [[name, f"{r['requests_per_s']:.0f}", f"{r['p50_ms']:.3f}", f"{r['p99_ms']:.3f}", r["errors"]]
             for name, r in (("alone", mixed["alone"]), ("under attack", mixed["attacked"]))]))
        parts.append(f"  attacker: {attack['calls']} $check-orders calls answered {attack['statuses']} meanwhile, "
                     f"p50 {attack['p50_s'] if attack['p50_s'] is None else round(attack['p50_s'], 2)} s per call "
                     f"(first call {attack['first_call_s']:.2f} s)"
                     + (f"; refused first: {attack['refused_first']}" if attack["refused_first"] else ""))
    fetch = result.get("fetch")
    if fetch:
        parts.append("\n".join([
            f"fhirServer fetch ({fetch['keys_fetched']} prefetch keys missing, stand-in server +"
            f"{fetch['delay_ms']:.0f} ms per request, {fetch['fetched']['n']} calls each, interleaved):",
            f"  p50 with prefetch {fetch['prefetch']['p50_ms']:.1f} ms, fetched {fetch['fetched']['p50_ms']:.1f} ms "
            f"(p99 {fetch['fetched']['p99_ms']:.1f}): added {fetch['added_p50_ms']:.1f} ms = "
            f"{fetch['added_in_requests']:.2f} x one request",
            f"  {fetch['requests_per_call']:.0f} requests per call, arriving within "
            f"{fetch['arrival_spread_ms_p50']:.1f} ms of each other (p50); same cards: {fetch['same_cards']}"]))
    storage = result.get("storage")
    if storage:
        parts.append(table(
            f"Storage: HTTP order-sign with its issued-cards note in each backend, vs bare POST ({settings['workers']}"
            f" workers, {settings['connections']} connections, {settings['duration']:g} s each in turns; PostgreSQL"
            " on loopback; a new patient in each request, so new cards to note, unless 'same request')",
            ["endpoint", "req/s", "req/s vs bare", "p50 ms", "p99 ms", "errors"],
            [[name, f"{r['requests_per_s']:.0f}", ratio(r["requests_per_s_x_bare"]), f"{r['p50_ms']:.3f}",
              f"{r['p99_ms']:.3f}", r["errors"]] for name, r in storage["http"].items()]))
        parts.append(table(
            "Storage: writes of one CDS call, in process (jti of its token; issued-cards note of the order-sign "
            "cards: queued in the call, then written alone), and feedback posted by "
            f"{FEEDBACK_POSTERS} concurrent posters over HTTP (one new item each)",
            ["backend", "jti p50 ms", "jti p99 ms", "note in call p50", "note written p50", "p99",
             "feedback items/s", "feedback p50 ms", "p99 ms", "errors"],
            [[backend, f"{w['jti']['p50_ms']:.3f}", f"{w['jti']['p99_ms']:.3f}",
              f"{w['cards_note_in_call']['p50_ms']:.3f}", f"{w['cards_note_written']['p50_ms']:.3f}",
              f"{w['cards_note_written']['p99_ms']:.3f}", f"{storage['feedback'][backend]['items_per_s']:.0f}",
              f"{storage['feedback'][backend]['p50_ms']:.3f}", f"{storage['feedback'][backend]['p99_ms']:.3f}",
              storage["feedback"][backend]["errors"]] for backend, w in storage["writes"].items()]))
        if storage.get("postgresql_skipped"):
            parts.append(f"PostgreSQL not measured: {storage['postgresql_skipped']}")
    start = result.get("startup")
    if start:
        lines = []
        for state, label in (("cold", "cold (validation cache empty)"),
                             ("warm", f"warm (median of {start['warm']['runs']})")):
            run = start[state]
            load = f", knowledge load {run['knowledge_load_s']:.3f} s" if run["knowledge_load_s"] is not None else ""
            lines.append(f"Start-up, fresh process, {label}: import fhirsvc {run['import_s']:.3f} s, "
                         f"create_app() {run['create_app_s']:.3f} s{load}; RSS after {run['rss_mb']:.1f} MB "
                         f"(peak {run['peak_rss_mb']:.1f} MB)")
        if http:
            memory = http["rss"]
            lines.append(f"RSS under gunicorn after load: service {memory['service']['total_mb']:.1f} MB, "
                         f"bare {memory['bare']['total_mb']:.1f} MB (master + {settings['workers']} workers)")
        parts.append("\n".join(lines))
    if result.get("governance"):
        parts.append("\n".join(governance.report_lines(result["governance"])))
    if result["targets"]:
        parts.append(table("Targets", ["target", "measured", "limit", "met"],
                           [[t["target"], f"{t['value']:.3f} {t['unit']}",
                             f"{'<' if t['below'] else '>='} "
                             f"{t['limit']:g} {t['unit']}", "yes" if t["met"] else "NO"] for t in result["targets"]]))
    info = result["machine"]
    parts.append(f"{info['cpu_count']} CPUs ({info['cpu_model']}), Python {info['python']}, "
                 f"commit {(info['git_commit'] or '?')[:12]}{' (dirty)' if info['git_dirty'] else ''}, "
                 f"run time {result['run_time_s']:.1f} s")
    return "\n\n".join(parts)


PARTS = ("startup", "in-process", "http", "storage", "scaling", "mixed-load", "fetch", "governance")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; 0 if every response was a success, 1 otherwise."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a ~1 minute smoke run (no 10,000-drug knowledge)")
    parser.add_argument("--workers", type=int, default=int(os.environ.get("FHIRSVC_WORKERS", "2")),
                        help="gunicorn workers for both servers (default: FHIRSVC_WORKERS or 2)")
    parser.add_argument("--threads", type=int, help="threads per gunicorn worker for both servers (default: "
                        "FHIRSVC_THREADS, else the shipped gunicorn configuration's)")
    parser.add_argument("--attack-orders", type=int, default=ATTACK_ORDERS,
                        help=f"orders in the attacker's $check-orders of the mixed-load part (default {ATTACK_ORDERS}; "
                             "halved until the service takes them)")
    parser.add_argument("--python-load", action="store_true", help="use the Python load generator even if wrk is found")
    parser.add_argument("--parts", default=",".join(PARTS),
                        help=f"comma-separated parts to run (default: all of {','.join(PARTS)})")
    parser.add_argument("--drugs", help="comma-separated made-up drug counts for the scaling part "
                                        "(default: 1,100,1000,10000; --quick: 1,100,1000)")
    parser.add_argument("--startup-probe", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--serve-bare", metavar="BIND", help=argparse.SUPPRESS)
    parser.add_argument("--body-size", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--post-body-size", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.startup_probe:
        startup_probe()
        return 0
    if args.serve_bare:
        serve_bare(args.serve_bare, args.workers, args.threads, args.body_size, args.post_body_size)
        return 0
    parts = set(args.parts.split(","))
    if parts - set(PARTS):
        parser.error(f"unknown parts: {', '.join(sorted(parts - set(PARTS)))}")

    began = time.perf_counter()
    settings = (quick if args.quick else full)(args.workers)
    if args.drugs:
        settings = replace(settings, drug_counts=tuple(int(n) for n in args.drugs.split(",")))
    threads, worker_class = served_model(args.threads)
    settings = replace(settings, threads=threads, worker_class=worker_class)
    generator = "wrk" if shutil.which("wrk") and not args.python_load else "python (threads + http.client)"
    print(f"{'quick' if args.quick else 'full'} run; load generator: {generator}; parts: {', '.join(sorted(parts))}",
          flush=True)

    result: dict[str, Any] = {"mode": "quick" if args.quick else "full", "machine": machine(),
                              "settings": asdict(settings)}
    errors = 0
    with tempfile.TemporaryDirectory(prefix="fhirsvc-bench-") as scratch_dir:
        scratch = Path(scratch_dir)
        if "startup" in parts:
            result["startup"] = measure_startup(settings.startup_runs)
        service = cds_app(scratch)
        body_size = len(request(service.test_client(), IN_PROCESS["read R4"]).get_data())
        post_size = len(request(service.test_client(), IN_PROCESS["order-sign"]).get_data())
        if "in-process" in parts:
            print("in-process ...", flush=True)
            result["in_process"], bad = measure_in_process(service, bare_app(body_size, post_size), settings)
            errors += bad
        if "http" in parts:
            print("HTTP ...", flush=True)
            endpoints, memory, bad = measure_http(settings, body_size, post_size, generator)
            result["http"] = {"generator": generator, "endpoints": endpoints, "rss": memory}
            errors += bad
        if "storage" in parts:
            print("storage (SQLite, PostgreSQL) ...", flush=True)
            result["storage"], bad = measure_storage(settings, body_size, post_size, generator, scratch)
            errors += bad
        if "scaling" in parts:
            print("scaling ...", flush=True)
            result["scaling"], bad = measure_scaling(service, settings, scratch)
            errors += bad
        if "mixed-load" in parts:
            print("mixed load ...", flush=True)
            result["mixed_load"], bad = measure_mixed_load(settings, generator, scratch, args.attack_orders)
            errors += bad
        if "fetch" in parts:
            print("fhirServer fetch ...", flush=True)
            result["fetch"], bad = measure_fetch(settings, scratch)
            errors += bad
        if "governance" in parts:
            print("governance view ...", flush=True)
            result["governance"], bad = governance.measure_governance(args.quick, scratch, ORDER_SIGN_BODY)
            errors += bad

    now = datetime.now(UTC)
    result = {"timestamp": now.isoformat(timespec="seconds"), **result, "errors": errors,
              "run_time_s": time.perf_counter() - began}
    result["targets"] = targets(result)
    print(report(result))
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{now.strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"results: {path.relative_to(ROOT)}")
    if result["errors"]:
        print(f"FAILED: {result['errors']} error response(s) during the run", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
