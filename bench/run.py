"""Benchmark fhirsvc against a bare Flask endpoint measured in the same run (``make bench``).

Three parts: start-up (``create_app()`` in a fresh process, and its RSS), in-process latency with the
Flask test client, and HTTP throughput and latency under gunicorn on loopback (wrk, or a Python load
generator when wrk is not installed). Every number is also given as a ratio to the bare endpoint.
Results go to ``bench/results/<UTC timestamp>.json``; exit status 1 if any response was an error.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
HOST = "127.0.0.1"

READ_R4 = "/fhir/R4/MedicationKnowledge/anakinra"
READ_R5 = "/fhir/R5/MedicationKnowledge/anakinra"
SEARCH_R4 = "/fhir/R4/MedicationKnowledge?code=L04AC03"
SEARCH_R5_INCLUDE = "/fhir/R5/MedicationKnowledge?code=L04AC03&_include=MedicationKnowledge:monograph"
BARE = "/bare"

IN_PROCESS = {"read R4": READ_R4, "read R5": READ_R5, "search R4": SEARCH_R4,
              "search R5 _include": SEARCH_R5_INCLUDE, "bare": BARE}
OVER_HTTP = {"read R4": READ_R4, "search R4": SEARCH_R4, "bare": BARE}


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


def full(workers: int) -> Settings:
    """The default run: about 70 s."""
    return Settings(iterations=3000, warmup=300, startup_runs=3, duration=15, http_warmup=2,
                    connections=2 * workers, workers=workers)


def quick(workers: int) -> Settings:
    """The ``--quick`` smoke run: about 20 s."""
    return Settings(iterations=300, warmup=50, startup_runs=1, duration=3, http_warmup=1,
                    connections=2 * workers, workers=workers)


# --- the bare Flask app ---------------------------------------------------------------------------


def bare_body(size: int) -> bytes:
    """A fixed JSON body of exactly ``size`` bytes (or the smallest valid one)."""
    head, tail = b'{"resourceType": "Basic", "id": "bare", "text": "', b'"}'
    return head + b"x" * max(0, size - len(head) - len(tail)) + tail


def bare_app(size: int):
    """A plain Flask app with one route returning a precomputed body of ``size`` bytes."""
    from flask import Flask

    app = Flask(__name__)
    body = bare_body(size)

    @app.get(BARE)
    def bare():
        return app.response_class(body, mimetype="application/json")

    return app


def serve_bare(bind: str, workers: int, size: int) -> None:
    """Serve the bare app with gunicorn, configured as ``fhirsvc serve`` configures it."""
    from gunicorn.app.base import BaseApplication

    app = bare_app(size)

    class Server(BaseApplication):
        def load_config(self) -> None:
            self.cfg.set("bind", bind)
            self.cfg.set("workers", workers)
            self.cfg.set("accesslog", "-")

        def load(self):
            return app

    Server().run()


# --- measuring ------------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile of sorted ``values`` (q in 0..100)."""
    return values[min(len(values) - 1, max(0, math.ceil(q / 100 * len(values)) - 1))]


def summary(nanoseconds: list[int]) -> dict[str, float]:
    """n, mean, p50 and p99 in milliseconds."""
    ms = sorted(ns / 1e6 for ns in nanoseconds)
    return {"n": len(ms), "mean_ms": statistics.fmean(ms), "p50_ms": percentile(ms, 50), "p99_ms": percentile(ms, 99)}


def rss_mb(pid: int | str = "self", field: str = "VmRSS") -> float:
    """Resident set size of a process (``VmRSS``; ``VmHWM`` for the peak), from /proc (MB)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return 0.0


def startup_probe() -> None:
    """In a fresh process: time the import and create_app() (and the knowledge load inside it); print JSON."""
    start = time.perf_counter()
    import fhirsvc

    imported = time.perf_counter()
    loading: list[float] = []
    load_knowledge = getattr(fhirsvc, "load_knowledge", None)
    if load_knowledge is not None:
        def timed(*args, **kwargs):
            began = time.perf_counter()
            try:
                return load_knowledge(*args, **kwargs)
            finally:
                loading.append(time.perf_counter() - began)

        fhirsvc.load_knowledge = timed
    fhirsvc.create_app()
    created = time.perf_counter()
    print(json.dumps({"import_s": imported - start, "create_app_s": created - imported,
                      "knowledge_load_s": loading[0] if loading else None,
                      "rss_mb": rss_mb(), "peak_rss_mb": rss_mb(field="VmHWM")}))


def measure_startup(settings: Settings) -> dict[str, Any]:
    """Median over fresh processes of the start-up probe."""
    runs = []
    for _ in range(settings.startup_runs):
        out = subprocess.run([sys.executable, __file__, "--startup-probe"], check=True, capture_output=True,
                             text=True, cwd=ROOT).stdout
        runs.append(json.loads(out.strip().splitlines()[-1]))
    result = {key: statistics.median(r[key] for r in runs) if runs[0][key] is not None else None for key in runs[0]}
    return result | {"runs": len(runs)}


def measure_in_process(service, bare, settings: Settings) -> tuple[dict[str, Any], int]:
    """Latency of each endpoint with the Flask test client, interleaved so drift hits all alike."""
    clients = {name: (bare if url == BARE else service).test_client() for name, url in IN_PROCESS.items()}
    samples: dict[str, list[int]] = {name: [] for name in IN_PROCESS}
    sizes: dict[str, int] = {}
    errors = dict.fromkeys(IN_PROCESS, 0)
    for _ in range(settings.warmup):
        for name, url in IN_PROCESS.items():
            sizes[name] = len(clients[name].get(url).get_data())
    for _ in range(settings.iterations):
        for name, url in IN_PROCESS.items():
            began = time.perf_counter_ns()
            response = clients[name].get(url)
            response.get_data()
            samples[name].append(time.perf_counter_ns() - began)
            errors[name] += response.status_code != 200
    results = {name: summary(samples[name]) | {"bytes": sizes[name], "errors": errors[name]} for name in IN_PROCESS}
    return with_ratios(results, ("mean_ms", "p50_ms", "p99_ms")), sum(errors.values())


def with_ratios(results: dict[str, dict[str, Any]], keys: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """Add ``<key>_x_bare``: each value divided by the bare endpoint's."""
    bare = results["bare"]
    for row in results.values():
        for key in keys:
            row[f"{key}_x_bare"] = row[key] / bare[key] if bare.get(key) else None
    return results


# --- HTTP under gunicorn --------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def wait_ready(process: subprocess.Popen, url: str, log: Path, timeout: float = 60) -> None:
    """Poll ``url`` until it answers 200; raise with the server's log if it dies or never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server not ready after {timeout} s:\n{log.read_text()[-2000:]}")


@contextmanager
def served(command: list[str], ready_url: str, log: Path) -> Iterator[subprocess.Popen]:
    """Run a server until the block ends; its output goes to ``log``."""
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        wait_ready(process, ready_url, log)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def tree_rss_mb(pid: int) -> dict[str, Any]:
    """RSS of a gunicorn master and its workers (MB)."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            children.append(int(stat.parent.name))
    workers = [rss_mb(child) for child in children]
    master = rss_mb(pid)
    return {"master_mb": master, "workers_mb": sorted(workers), "total_mb": master + sum(workers)}


UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _ms(text: str) -> float:
    """wrk's ``497.00us`` / ``4.28ms`` / ``1.02s`` in milliseconds."""
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * UNITS[unit]


def wrk_load(url: str, duration: float, settings: Settings) -> dict[str, Any]:
    """Drive ``url`` with wrk; requests/s, latency and error count from its report."""
    out = subprocess.run(["wrk", "-t1", f"-c{settings.connections}", f"-d{max(1, round(duration))}s", "--latency",
                          url], check=True, capture_output=True, text=True).stdout
    latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", out, re.MULTILINE))
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = (sum(map(int, socket_errors.groups())) if socket_errors else 0) + (int(non_2xx[1]) if non_2xx else 0)
    return {"requests": int(re.search(r"(\d+) requests in", out)[1]),
            "requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1]),
            "mean_ms": _ms(re.search(r"Latency\s+(\S+)", out)[1]),
            "p50_ms": _ms(latency["50"]), "p99_ms": _ms(latency["99"]), "errors": errors}


def python_load(url: str, duration: float, settings: Settings) -> dict[str, Any]:
    """Drive ``url`` from threads, one keep-alive http.client connection each (reconnecting when closed)."""
    parsed = urllib.request.urlparse(url)
    path = parsed.path + (f"?{parsed.query}" if parsed.query else "")
    results: list[tuple[list[int], int]] = []
    deadline = time.perf_counter() + duration

    def drive() -> None:
        connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=10)
        samples, errors = [], 0
        while time.perf_counter() < deadline:
            began = time.perf_counter_ns()
            try:
                connection.request("GET", path)
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


def measure_http(settings: Settings, body_size: int, generator: str) -> tuple[dict[str, Any], dict[str, Any], int]:
    """The service (``fhirsvc serve``) and the bare app under gunicorn, same workers, driven in turn."""
    load = wrk_load if generator == "wrk" else python_load
    service_port, bare_port = free_port(), free_port()
    service_cmd = [sys.executable, "-m", "fhirsvc.cli", "serve", "--host", HOST, "--port", str(service_port),
                   "--workers", str(settings.workers)]
    bare_cmd = [sys.executable, __file__, "--serve-bare", f"{HOST}:{bare_port}", "--workers", str(settings.workers),
                "--body-size", str(body_size)]
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as logs, \
            served(service_cmd, f"http://{HOST}:{service_port}/healthz", Path(logs, "service.log")) as service, \
            served(bare_cmd, f"http://{HOST}:{bare_port}{BARE}", Path(logs, "bare.log")) as bare:
        for name, path in OVER_HTTP.items():
            url = f"http://{HOST}:{bare_port if path == BARE else service_port}{path}"
            load(url, settings.http_warmup, settings)
            results[name] = load(url, settings.duration, settings)
        memory = {"service": tree_rss_mb(service.pid), "bare": tree_rss_mb(bare.pid)}
    errors = sum(row["errors"] for row in results.values())
    return with_ratios(results, ("requests_per_s", "mean_ms", "p50_ms", "p99_ms")), memory, errors


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
    start, rows = result["startup"], result["in_process"]
    parts = [table(
        f"In-process (Flask test client, {result['settings']['iterations']} requests each, interleaved)",
        ["endpoint", "bytes", "mean ms", "p50 ms", "p99 ms", "mean/bare", "p50/bare", "p99/bare", "errors"],
        [[name, r["bytes"], f"{r['mean_ms']:.3f}", f"{r['p50_ms']:.3f}", f"{r['p99_ms']:.3f}",
          ratio(r["mean_ms_x_bare"]), ratio(r["p50_ms_x_bare"]), ratio(r["p99_ms_x_bare"]), r["errors"]]
         for name, r in rows.items()])]
    http = result["http"]
    settings = result["settings"]
    parts.append(table(
        f"HTTP under gunicorn on loopback ({http['generator']}, {settings['workers']} workers, "
        f"{settings['connections']} connections, {settings['duration']:g} s each)",
        ["endpoint", "req/s", "req/s vs bare", "p50 ms", "p99 ms", "p50/bare", "p99/bare", "errors"],
        [[name, f"{r['requests_per_s']:.0f}", ratio(r["requests_per_s_x_bare"]), f"{r['p50_ms']:.3f}",
          f"{r['p99_ms']:.3f}", ratio(r["p50_ms_x_bare"]), ratio(r["p99_ms_x_bare"]), r["errors"]]
         for name, r in http["endpoints"].items()]))
    memory = http["rss"]
    load = f", knowledge load {start['knowledge_load_s']:.3f} s" if start["knowledge_load_s"] is not None else ""
    parts.append("\n".join([
        f"Start-up (fresh process, median of {start['runs']}): import fhirsvc {start['import_s']:.3f} s, "
        f"create_app() {start['create_app_s']:.3f} s{load}",
        f"RSS after create_app(): {start['rss_mb']:.1f} MB (peak {start['peak_rss_mb']:.1f} MB)",
        f"RSS under gunicorn after load: service {memory['service']['total_mb']:.1f} MB, "
        f"bare {memory['bare']['total_mb']:.1f} MB (master + {settings['workers']} workers)",
    ]))
    info = result["machine"]
    parts.append(f"{info['cpu_count']} CPUs ({info['cpu_model']}), Python {info['python']}, "
                 f"commit {(info['git_commit'] or '?')[:12]}{' (dirty)' if info['git_dirty'] else ''}, "
                 f"run time {result['run_time_s']:.1f} s")
    return "\n\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; 0 if every response was a success, 1 otherwise."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a ~20 s smoke run")
    parser.add_argument("--workers", type=int, default=int(os.environ.get("FHIRSVC_WORKERS", "2")),
                        help="gunicorn workers for both servers (default: FHIRSVC_WORKERS or 2)")
    parser.add_argument("--python-load", action="store_true", help="use the Python load generator even if wrk is found")
    parser.add_argument("--startup-probe", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--serve-bare", metavar="BIND", help=argparse.SUPPRESS)
    parser.add_argument("--body-size", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.startup_probe:
        startup_probe()
        return 0
    if args.serve_bare:
        serve_bare(args.serve_bare, args.workers, args.body_size)
        return 0

    began = time.perf_counter()
    settings = (quick if args.quick else full)(args.workers)
    generator = "wrk" if shutil.which("wrk") and not args.python_load else "python (threads + http.client)"
    print(f"{'quick' if args.quick else 'full'} run; load generator: {generator}", flush=True)

    startup = measure_startup(settings)
    from fhirsvc import create_app

    service = create_app()
    body_size = len(service.test_client().get(READ_R4).get_data())
    in_process, in_process_errors = measure_in_process(service, bare_app(body_size), settings)
    endpoints, memory, http_errors = measure_http(settings, body_size, generator)

    now = datetime.now(UTC)
    result = {
        "timestamp": now.isoformat(timespec="seconds"), "mode": "quick" if args.quick else "full",
        "machine": machine(), "settings": asdict(settings), "startup": startup, "in_process": in_process,
        "http": {"generator": generator, "endpoints": endpoints, "rss": memory},
        "errors": in_process_errors + http_errors, "run_time_s": time.perf_counter() - began,
    }
    print(report(result))
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{now.strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"results: {path.relative_to(ROOT)}")
    if result["errors"]:
        print(f"FAILED: {result['errors']} error response(s) during the load", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
