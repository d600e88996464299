"""Soak test (``make soak``): fhirsvc under gunicorn on loopback, driven by wrk for SOAK_SECONDS (default
300) with a fixed mix of FHIR reads, searches, terminology operations and CDS Hooks order-sign calls.

Reported: throughput, p50/p99 latency (wrk, all requests) and per request kind (a probe thread timing
each kind in turn while the load runs), every error (non-2xx answers, socket errors, unhandled errors
in the server log, workers that died and were replaced), and the RSS of the gunicorn master and of each
worker at the start (after a warm-up) and at the end, sampled along the way. Exit status 1 if there was
any error, 2 if the run could not be made (no wrk, the server did not start). The result is also written
to ``bench/results/soak-<UTC timestamp>.json`` (ignored by git).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from workload import children, free_port, rss_mb, served, wait_for_workers  # bench/workload.py, beside this script

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
SCENARIOS = ROOT / "fixtures" / "scenarios"
HOST = "127.0.0.1"
VALUE_SET = "https://fhirsvc.org/fhir/ValueSet/live-vaccines"


@dataclass(frozen=True)
class Kind:
    """One kind of request of the mix, with its weight (how many of every 100 requests)."""

    name: str
    weight: int
    method: str
    paths: tuple[str, ...]
    bodies: tuple[str, ...] = ()


def mix(cds_bodies: list[str]) -> list[Kind]:
    """The request mix: 60 % FHIR (reads, searches, terminology), 40 % CDS order-sign calls."""
    return [
        Kind("read R4", 20, "GET", ("/fhir/R4/MedicationKnowledge/anakinra", "/fhir/R4/ValueSet/live-vaccines")),
        Kind("read R5", 10, "GET", ("/fhir/R5/MedicationKnowledge/anakinra", "/fhir/R5/ValueSet/live-vaccines")),
        Kind("search R4", 10, "GET", ("/fhir/R4/MedicationKnowledge?code=L04AC03",
                                      f"/fhir/R4/ValueSet?url={VALUE_SET}")),
        Kind("search R5", 10, "GET", (
            "/fhir/R5/MedicationKnowledge?code=L04AC03&_include=MedicationKnowledge:monograph",
            "/fhir/R5/ClinicalUseDefinition?type=contraindication&_count=20")),
        Kind("terminology", 10, "GET", ("/fhir/R4/ValueSet/live-vaccines/$expand?filter=measles",
                                        f"/fhir/R4/ValueSet/$validate-code?url={VALUE_SET}"
                                        "&system=http://hl7.org/fhir/sid/cvx&code=03")),
        Kind("cds order-sign", 40, "POST", ("/cds-services/medication-safety-order-sign",), tuple(cds_bodies)),
    ]


def cds_bodies(limit: int = 12) -> list[str]:
    """order-sign requests with their prefetch: golden scenarios when present, else one built here."""
    bodies = []
    for path in sorted(SCENARIOS.glob("*.request.json")) if SCENARIOS.is_dir() else []:
        request = json.loads(path.read_text(encoding="utf-8"))
        if request.get("hook") == "order-sign" and isinstance(request.get("prefetch"), dict):
            bodies.append(json.dumps(request, separators=(",", ":")))
    if bodies:
        step = max(1, len(bodies) // limit)
        return bodies[::step][:limit]
    order = {"resourceType": "MedicationRequest", "id": "mr-1", "status": "draft", "intent": "order",
             "medicationCodeableConcept": {"text": "Kineret 100 mg/0.67 mL prefilled syringe"},
             "subject": {"reference": "Patient/p1"},
             "dosageInstruction": [{"timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
                                    "doseAndRate": [{"doseQuantity": {"value": 200, "unit": "mg"}}]}]}
    request = {"hook": "order-sign", "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
               "context": {"userId": "Practitioner/u1", "patientId": "p1",
                           "draftOrders": {"resourceType": "Bundle", "type": "collection",
                                           "entry": [{"resource": order}]}},
               "prefetch": {"patient": {"resourceType": "Patient", "id": "p1", "birthDate": "1970-05-01"},
                            "conditions": None, "allergies": None, "medications": None,
                            "observations": {"resourceType": "Bundle", "type": "searchset", "total": 0}}}
    return [json.dumps(request, separators=(",", ":"))]


# --- wrk ------------------------------------------------------------------------------------------------

def _lua_string(text: str) -> str:
    level = 0
    while f"]{'=' * level}]" in text:
        level += 1
    return f"[{'=' * level}[{text}]{'=' * level}]"


def wrk_script(kinds: list[Kind]) -> str:
    """A wrk script sending the mix in a fixed interleaved order, counting non-2xx answers by status."""
    requests = []
    for kind in kinds:
        variants = [(path, body) for path in kind.paths for body in (kind.bodies or ("",))]
        requests += [(kind.method, *variants[i % len(variants)]) for i in range(kind.weight)]
    order = [requests[(i * 37) % len(requests)] for i in range(len(requests))]  # 37 is prime to 100: a shuffle
    entries = ",\n".join(f"  {{{_lua_string(m)}, {_lua_string(p)}, {_lua_string(b)}}}" for m, p, b in order)
    return f"""-- generated by bench/soak.py
local requests = {{
{entries}
}}
local counter = 0
statuses = {{}}  -- a global: done() collects it from each thread with thread:get
local threads = {{}}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  counter = math.random(#requests) - 1
end

function request()
  counter = counter + 1
  local r = requests[(counter % #requests) + 1]
  if r[1] == "POST" then
    return wrk.format("POST", r[2], {{["Content-Type"] = "application/json"}}, r[3])
  end
  return wrk.format("GET", r[2], {{["Accept"] = "application/fhir+json"}})
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    statuses[status] = (statuses[status] or 0) + 1
  end
end

function done(summary, latency, requests)
  local failed = {{}}
  for _, thread in ipairs(threads) do
    local counts = thread:get("statuses")
    for status, n in pairs(counts) do
      failed[status] = (failed[status] or 0) + n
    end
  end
  for status, n in pairs(failed) do
    io.write(string.format("SOAK status %d %d\\n", status, n))
  end
  io.write(string.format("SOAK latency_us p50 %d p90 %d p99 %d max %d\\n", latency:percentile(50),
                         latency:percentile(90), latency:percentile(99), latency.max))
  io.write(string.format("SOAK totals requests %d errors_connect %d errors_read %d errors_write %d "
                         .. "errors_timeout %d errors_status %d\\n", summary.requests, summary.errors.connect,
                         summary.errors.read, summary.errors.write, summary.errors.timeout, summary.errors.status))
end
"""


def run_wrk(url: str, script: Path, seconds: float, connections: int, threads: int) -> dict[str, Any]:
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "10s",
                          "-s", str(script), url], check=True, capture_output=True, text=True).stdout
    totals = dict(zip(*[iter(re.search(r"^SOAK totals (.+)$", out, re.MULTILINE)[1].split())] * 2, strict=True))
    latency = dict(zip(*[iter(re.search(r"^SOAK latency_us (.+)$", out, re.MULTILINE)[1].split())] * 2, strict=True))
    statuses = {int(s): int(n) for s, n in re.findall(r"^SOAK status (\d+) (\d+)$", out, re.MULTILINE)}
    socket_errors = sum(int(totals[k]) for k in ("errors_connect", "errors_read", "errors_write", "errors_timeout"))
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])
    return {"requests": int(totals["requests"]), "requests_per_s": rate,
            "p50_ms": int(latency["p50"]) / 1000, "p90_ms": int(latency["p90"]) / 1000,
            "p99_ms": int(latency["p99"]) / 1000, "max_ms": int(latency["max"]) / 1000,
            "non_2xx": statuses, "socket_errors": socket_errors,
            "errors": socket_errors + sum(statuses.values()), "wrk_output": out}


# --- the server and its processes -------------------------------------------------------------------------

def memory(master: int) -> dict[str, Any]:
    workers = children(master)
    return {"master_mb": round(rss_mb(master), 1), "workers": {pid: round(rss_mb(pid), 1) for pid in workers}}


# --- per-kind latency under load ---------------------------------------------------------------------------

class Probe(threading.Thread):
    """Times one request of each kind in turn (one keep-alive-less connection each), while the load runs."""

    def __init__(self, port: int, kinds: list[Kind], interval: float):
        super().__init__(daemon=True)
        self.port, self.kinds, self.interval = port, kinds, interval
        self.samples: dict[str, list[float]] = {kind.name: [] for kind in kinds}
        self.failures: list[str] = []
        self.stop = threading.Event()

    def run(self) -> None:
        i = 0
        while not self.stop.wait(self.interval):
            kind = self.kinds[i % len(self.kinds)]
            path = kind.paths[(i // len(self.kinds)) % len(kind.paths)]
            body = kind.bodies[(i // len(self.kinds)) % len(kind.bodies)] if kind.bodies else None
            i += 1
            connection = http.client.HTTPConnection(HOST, self.port, timeout=30)
            started = time.perf_counter()
            try:
                connection.request(kind.method, path, body=body, headers={"Content-Type": "application/json"}
                                   if body else {"Accept": "application/fhir+json"})
                response = connection.getresponse()
                response.read()
                if response.status != 200:
                    self.failures.append(f"{kind.method} {path}: {response.status}")
            except (OSError, http.client.HTTPException) as exc:
                self.failures.append(f"{kind.method} {path}: {type(exc).__name__}")
            finally:
                connection.close()
            self.samples[kind.name].append((time.perf_counter() - started) * 1000)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))] if ordered else 0.0


# --- the run -----------------------------------------------------------------------------------------------

def soak(seconds: float, workers: int, connections: int, threads: int) -> dict[str, Any]:
    kinds = mix(cds_bodies())
    port = free_port()
    base = f"http://{HOST}:{port}"
    with tempfile.TemporaryDirectory(prefix="fhirsvc-soak-") as tmp:
        script = Path(tmp, "soak.lua")
        script.write_text(wrk_script(kinds), encoding="utf-8")
        env = {"FHIRSVC_AUTH": "off", "FHIRSVC_FEEDBACK_DB": f"{tmp}/feedback.sqlite3", "FHIRSVC_LOG_LEVEL": "WARNING"}
        log_path = Path(tmp, "server.log")
        with served([sys.executable, "-m", "fhirsvc.cli", "serve", "--host", HOST, "--port", str(port),
                     "--workers", str(workers)], f"{base}/healthz", log_path, env, cwd=ROOT) as server:
            wait_for_workers(server.pid, workers)
            run_wrk(base, script, min(10, max(2, seconds / 30)), connections, threads)  # warm-up
            start_memory = memory(server.pid)
            samples = [(0.0, start_memory)]
            probe = Probe(port, kinds, interval=0.25)
            probe.start()
            sampler_stop = threading.Event()

            def sample() -> None:
                began = time.monotonic()
                while not sampler_stop.wait(max(1.0, seconds / 30)):
                    samples.append((round(time.monotonic() - began, 1), memory(server.pid)))

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            began = datetime.now(UTC)
            load = run_wrk(base, script, seconds, connections, threads)
            probe.stop.set()
            sampler_stop.set()
            probe.join(timeout=60)
            sampler.join(timeout=10)
            end_memory = memory(server.pid)
        server_errors = [line for line in log_path.read_text(errors="replace").splitlines()
                         if "unhandled error" in line or "WORKER TIMEOUT" in line or "Worker (pid" in line]
    restarted = sorted(set(start_memory["workers"]) - set(end_memory["workers"]))
    per_kind = {name: {"n": len(values), "p50_ms": round(percentile(values, 50), 2),
                       "p99_ms": round(percentile(values, 99), 2)} for name, values in probe.samples.items()}
    errors = load["errors"] + len(server_errors) + len(restarted) + len(probe.failures)
    return {
        "started": began.isoformat(timespec="seconds"), "seconds": seconds, "workers": workers,
        "connections": connections, "wrk_threads": threads, "mix": {k.name: k.weight for k in kinds},
        "cds_bodies": sum(len(k.bodies) for k in kinds),
        "load": {k: v for k, v in load.items() if k != "wrk_output"}, "per_kind_probe": per_kind,
        "probe_failures": probe.failures[:20], "server_errors": server_errors[:20], "restarted_workers": restarted,
        "memory": {"start": start_memory, "end": end_memory,
                   "samples": [{"t": t, "workers_mb": sorted(m["workers"].values())} for t, m in samples]},
        "errors": errors,
    }


def report(result: dict[str, Any]) -> str:
    load, mem = result["load"], result["memory"]
    start_workers = list(mem["start"]["workers"].values())
    end_workers = list(mem["end"]["workers"].values())
    peak = max((max(s["workers_mb"]) for s in mem["samples"] if s["workers_mb"]), default=0.0)
    lines = [
        f"Soak: {result['seconds']:g} s, gunicorn {result['workers']} workers, wrk {result['wrk_threads']} threads / "
        f"{result['connections']} connections; mix {result['mix']} (order-sign bodies: {result['cds_bodies']})",
        f"  throughput  {load['requests_per_s']:.0f} req/s ({load['requests']} requests)",
        f"  latency     p50 {load['p50_ms']:.2f} ms, p90 {load['p90_ms']:.2f} ms, p99 {load['p99_ms']:.2f} ms, "
        f"max {load['max_ms']:.2f} ms",
        "  per kind (probe under load, ms):  " + "; ".join(
            f"{name} p50 {row['p50_ms']:.1f} p99 {row['p99_ms']:.1f} (n={row['n']})"
            for name, row in result["per_kind_probe"].items()),
        f"  errors      {result['errors']} (non-2xx {load['non_2xx'] or 0}, socket {load['socket_errors']}, "
        f"server log {len(result['server_errors'])}, restarted workers {len(result['restarted_workers'])}, "
        f"probe {len(result['probe_failures'])})",
        f"  worker RSS  start {', '.join(f'{v:.1f}' for v in start_workers)} MB -> end "
        f"{', '.join(f'{v:.1f}' for v in end_workers)} MB (peak {peak:.1f} MB); master "
        f"{mem['start']['master_mb']:.1f} -> {mem['end']['master_mb']:.1f} MB",
    ]
    for label, items in (("server log", result["server_errors"]), ("probe", result["probe_failures"])):
        lines += [f"  {label}: {item}" for item in items]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("SOAK_SECONDS", "300")),
                        help="duration of the load (default SOAK_SECONDS or 300)")
    parser.add_argument("--workers", type=int, default=int(os.environ.get("FHIRSVC_WORKERS", "2")))
    parser.add_argument("--connections", type=int, default=None, help="wrk connections (default 2 x workers)")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (default 1)")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("soak: wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    try:
        result = soak(args.seconds, args.workers, args.connections or 2 * args.workers, args.threads)
    except (RuntimeError, subprocess.CalledProcessError) as exc:
        print(f"soak: {exc}", file=sys.stderr)
        return 2
    print(report(result))
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"soak-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"  result      {path.relative_to(ROOT)}")
    return 1 if result["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
