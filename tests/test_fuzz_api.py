"""Fuzzing the HTTP contract: schemathesis generates requests from ``openapi.yaml`` (positive and negative
data) against the service on loopback and checks every answer: no 5xx, a documented status code and
content type, and a body that conforms to the documented schema.

The default test run is small and seeded (``FUZZ_EXAMPLES`` fuzzed cases per operation, plus the
schema's examples). ``make fuzz`` runs the long one: ``python -m tests.test_fuzz_api`` serves the app
with gunicorn and drives it with the schemathesis CLI (thousands of cases, all phases), then prints its
summary. Known ids for the path parameters come from ``schemathesis.toml``; the versionId of vread is a
content hash, so both drivers add it at run time.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from bench.workload import free_port, served
from fhirsvc import create_app
from tests.conftest import ROOT, serving

pytestmark = pytest.mark.slow  # fuzzing: schemathesis against a served app

SPEC = ROOT / "openapi.yaml"
CONFIG = ROOT / "schemathesis.toml"
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
CHECK_NAMES = [check.__name__ for check in CHECKS]
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "8"))
SEED = int(os.environ.get("FUZZ_SEED", "20261124"))
VREAD = r"/_history/\{vid\}$"
STATUSES: Counter[tuple[str, int]] = Counter()


def fuzz_config(base_url: str | None, vid: str | None, examples: int, seed: int, phases: dict[str, Any]
                ) -> dict[str, Any]:
    """schemathesis.toml plus what is only known at run time: the server, the versionId, the budget."""
    data = tomllib.loads(CONFIG.read_text(encoding="utf-8"))
    if vid is not None:
        vread = {"include-path-regex": VREAD,
                 "parameters": {"path.type": "MedicationKnowledge", "path.id": "anakinra", "path.vid": vid}}
        data["operations"] = [vread, *data.get("operations", [])]
    if base_url is not None:
        data["base-url"] = base_url
    data.update({"seed": seed, "generation": {"mode": "all", "max-examples": examples, "database": "none"},
                 "phases": phases,
                 "checks": {"enabled": False, **{name: {"enabled": True} for name in CHECK_NAMES}},
                 "cache": {"enabled": False}})
    return data


def version_id(base_url: str) -> str:
    with urllib.request.urlopen(f"{base_url}/fhir/R5/MedicationKnowledge/anakinra", timeout=10) as response:
        return response.headers["ETag"].removeprefix('W/"').rstrip('"')


# --- the default test run: the app under werkzeug on loopback ------------------------------------------

@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory):
    return create_app({"TESTING": True, "KNOWLEDGE_PATH": "", "AUTH": "off", "GOVERNANCE": "on",
                       "FEEDBACK_DB": str(tmp_path_factory.mktemp("fuzz-api") / "feedback.sqlite3")})


@pytest.fixture(scope="module")
def live_server(fuzz_app):
    with serving(fuzz_app) as url:
        yield url


DEFAULT_PHASES = {"examples": {"enabled": True}, "coverage": {"enabled": False}, "fuzzing": {"enabled": True},
                  "stateful": {"enabled": False}}
# Loaded at import (schemathesis' lazy fixture loader does not work with pytest 9); the server's URL and
# the versionId are given to each call.
schema = schemathesis.openapi.from_path(
    SPEC, config=schemathesis.Config.from_dict(fuzz_config(None, None, EXAMPLES, SEED, DEFAULT_PHASES)))


@pytest.fixture(scope="module")
def vid(live_server) -> str:
    return version_id(live_server)


@schema.parametrize()
def test_every_answer_conforms_to_the_contract(case, live_server, vid):
    if "vid" in (case.path_parameters or {}):
        case.path_parameters["vid"] = vid
    response = case.call_and_validate(base_url=live_server, checks=CHECKS, timeout=30)
    STATUSES[(case.operation.label, response.status_code)] += 1


def test_the_fuzzed_run_reached_the_handlers():
    """Every operation was called, with enough cases, and nearly all of them got past a 404 at least once
    (the known ids of schemathesis.toml work)."""
    if not STATUSES:
        pytest.skip("the fuzz test did not run here (deselected)")
    labels = {result.ok().label for result in schema.get_all_operations()}
    assert {label for label, _ in STATUSES} == labels
    reached = {label for (label, status) in STATUSES if status != 404}
    assert len(reached) >= 0.9 * len(labels), sorted(labels - reached)
    total = sum(STATUSES.values())
    assert total >= 2 * len(labels), total
    print(f"{total} cases over {len(labels)} operations; statuses: "
          f"{dict(sorted(Counter(status for _, status in STATUSES.elements()).items()))}; "
          f"only 404s: {sorted(labels - reached) or 'none'}")


def test_the_type_enumeration_is_what_the_bases_serve(client):
    """openapi.yaml lists the served resource types: keep it equal to the CapabilityStatements."""
    served = {r["type"] for version in ("R4", "R5")
              for r in client.get(f"/fhir/{version}/metadata").json["rest"][0]["resource"]}
    type_parameter = schema.raw_schema["components"]["parameters"]["type"]
    assert set(type_parameter["schema"]["enum"]) == served


# Requests the fuzzers found answered with a 500 (or the wrong content type); each now gets a client error.
FOUND = [
    ("POST", "/fhir/R4/ValueSet/$expand", '{"resourceType": "Parameters", "parameter": [[null, null]]}', 400),
    ("POST", "/fhir/R5/ValueSet/live-vaccines/$validate-code", '{"resourceType": "Parameters", "parameter": [7]}',
     400),
    ("POST", "/fhir/R5/ValueSet/live-vaccines/$expand",
     '{"resourceType": "Parameters", "parameter": [{"name": "count", "valueDecimal": 1e999}]}', 400),
    ("POST", "/fhir/R5/MedicationKnowledge/$validate", '{"resourceType": "Parameters", "parameter": "resource"}', 400),
    ("POST", "/fhir/R4/MedicationKnowledge/$validate", '{"resourceType": "Parameters", "parameter": [1]}', 400),
    ("GET", "/fhir/R4/MedicationKnowledge?_lastUpdated=gt9999-12-31T23:59:59Z", None, 400),
    ("GET", "/fhir/R5/MedicationKnowledge?_lastUpdated=ap9999-12", None, 400),
    ("GET", "/fhir/R4/MedicationKnowledge?_lastUpdated=ap0001", None, 400),
    ("POST", "/fhir/R4/ValueSet/$expand", '{"resourceType": "Parameters", "parameter": ' + "[" * 900 + "]" * 900 + "}",
     400),
    ("POST", "/cds-services/medication-safety-order-sign", '{"hook": ' + "[" * 100_000 + "]" * 100_000 + "}", 400),
    ("POST", "/cds-services/medication-safety-order-sign/feedback",
     '{"feedback": [{"card": "0", "outcome": "overridden", "outcomeTimestamp": "0001-01-01T00:00:01+00:01"}]}', 400),
    ("GET", "/monographs/anakinra%0A", None, 404),
]


@pytest.mark.parametrize(("method", "path", "body", "status"), FOUND, ids=[f"{m} {p[:60]}" for m, p, _, _ in FOUND])
def test_what_fuzzing_found_stays_fixed(fuzz_app, method, path, body, status):
    content_type = "application/json" if path.startswith("/cds-services") else "application/fhir+json"
    response = fuzz_app.test_client().open(path, method=method, data=body, content_type=content_type if body else None)
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    expected = ("text/html" if path.startswith("/monographs") else
                "application/json" if path.startswith("/cds-services") else "application/fhir+json")
    assert response.mimetype == expected


# --- make fuzz: the long run, gunicorn + the schemathesis CLI -----------------------------------------

def main(argv: list[str] | None = None) -> int:
    """Serve with gunicorn on loopback, run ``st run`` over openapi.yaml, print its summary; its exit status."""
    parser = argparse.ArgumentParser(description="long schemathesis run against fhirsvc under gunicorn")
    parser.add_argument("--examples", type=int, default=100, help="fuzzed cases per operation (default 100)")
    parser.add_argument("--seed", type=int, default=int(time.time()), help="seed (default: the clock)")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    st = Path(sys.executable).with_name("st")
    with tempfile.TemporaryDirectory(prefix="fhirsvc-fuzz-") as tmp:
        env = {**os.environ, "FHIRSVC_AUTH": "off", "FHIRSVC_DATABASE_URL": f"sqlite:///{tmp}/feedback.sqlite3"}
        log = Path(tmp, "server.log")
        with served([sys.executable, "-m", "fhirsvc.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
                     "--workers", str(args.workers)], f"{base_url}/healthz", log, env, cwd=ROOT):
            phases = {"examples": {"enabled": True}, "coverage": {"enabled": True}, "fuzzing": {"enabled": True},
                      "stateful": {"enabled": False}}
            config = fuzz_config(base_url, version_id(base_url), args.examples, args.seed, phases)
            config_path = Path(tmp, "schemathesis.toml")
            config_path.write_text(_toml(config), encoding="utf-8")
            print(f"fuzzing {base_url} (gunicorn, {args.workers} workers): seed {args.seed}, "
                  f"{args.examples} fuzzed cases per operation, checks {', '.join(CHECK_NAMES)}", flush=True)
            status = subprocess.run([str(st), "--config-file", str(config_path), "--no-color", "run", str(SPEC),
                                     "--checks", ",".join(CHECK_NAMES), "--continue-on-failure"],
                                    cwd=tmp, check=False).returncode
        errors = _unhandled_errors(log.read_text(errors="replace"))
        print(f"server log: {len(errors)} unhandled error(s)" + "".join(f"\n  {line}" for line in errors[:20]))
    return status or (1 if errors else 0)


def _unhandled_errors(log: str) -> list[str]:
    """``unhandled error on METHOD PATH: ExceptionType: message`` for each traceback in the server's log."""
    lines = log.splitlines()
    found = []
    for i, line in enumerate(lines):
        if "unhandled error on" in line:
            final = "?"  # the last exception of the (possibly chained) traceback that follows
            for later in lines[i + 1:]:
                if "unhandled error on" in later or later[:1].isdigit():
                    break
                if re.match(r"[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)\b", later):
                    final = later
            found.append(f"{line[line.index('unhandled error on'):]}: {final[:200]}")
    return found


def _toml(config: dict[str, Any]) -> str:
    """The configuration as TOML: top-level keys as inline tables, then the [[operations]] tables."""
    def value(item: Any) -> str:
        if isinstance(item, dict):
            return "{ " + ", ".join(f"{json.dumps(k)} = {value(v)}" for k, v in item.items()) + " }"
        return json.dumps(item)  # strings, integers and booleans are written alike in JSON and TOML

    lines = [f"{json.dumps(key)} = {value(item)}" for key, item in config.items() if key != "operations"]
    for operation in config.get("operations", []):
        lines += ["", "[[operations]]", *(f"{json.dumps(key)} = {value(item)}" for key, item in operation.items())]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
