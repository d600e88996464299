"""What the CDS part of ``make bench`` sends and loads: order-sign requests with a realistic prefetch, made-up
drugs written as knowledge files, and a stand-in FHIR server on loopback with a fixed delay per request; and
the helpers for real servers on this machine (a free port, a served process, a gunicorn master's workers,
RSS) that run.py, soak.py and the tests that start servers share.

Nothing here is committed data: the made-up drugs are generated into a temporary directory at bench time.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
SNOMED = "http://snomed.info/sct"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
LOCAL = "urn:example:bench-drugs"
CANONICAL = "https://fhirsvc.org/fhir/"
VALUE_SET_EXT = CANONICAL + "StructureDefinition/value-set"
SECTION_EXT = CANONICAL + "StructureDefinition/source-section"
PATIENT_ID = "bench-patient"

# --- made-up drugs ---------------------------------------------------------------------------------------


def drug_name(i: int) -> tuple[str, str]:
    """The generic and brand name of made-up drug ``i``: whole words no real text contains."""
    return f"benchimab{i:05d}", f"Benchra{i:05d}"


def _section(text: str) -> list[dict]:
    return [{"url": SECTION_EXT, "valueString": text}]


def _value_set(vid: str, title: str, concepts: list[tuple[str, str, list[str]]]) -> dict:
    return {"resourceType": "ValueSet", "id": vid, "url": f"{CANONICAL}ValueSet/{vid}", "version": "1.0.0",
            "name": vid.title().replace("-", ""), "title": title, "status": "active",
            "compose": {"include": [{"system": LOCAL, "concept": [
                {"code": code, "display": display, **({"designation": [{"value": n} for n in names]} if names else {})}
                for code, display, names in concepts]}]}}


PER_DAY = {"value": 1, "unit": "day", "system": UCUM, "code": "d"}


def _mg(value: float) -> dict:
    return {"value": value, "unit": "mg", "system": UCUM, "code": "mg"}


def made_up_drug(i: int) -> list[dict]:
    """Five knowledge resources shaped like the shipped drug's: a MedicationKnowledge with a product ValueSet,
    a dosing guideline with a maximum daily dose, an interaction (its own interactant class) and an allergy
    contraindication (its own products)."""
    generic, brand = drug_name(i)
    did = f"bench-{i:05d}"
    products, klass = f"{did}-products", f"{did}-interactants"
    return [
        _value_set(products, f"{generic} products ({generic}, {brand})",
                   [(f"BD-{i}", generic, [brand]), (f"BD-{i}-20", f"{generic} 20 mg/mL vial", [brand])]),
        _value_set(klass, f"Interactants of {generic} (made-up class)",
                   [(f"BC-{i}-1", f"benchstatin{i:05d}", [f"Statbench{i:05d}"]),
                    (f"BC-{i}-2", f"benchotra{i:05d}", [])]),
        {"resourceType": "ClinicalUseDefinition", "id": f"{did}-interaction", "extension": _section("Interactions"),
         "type": "interaction",
         "interaction": {"interactant": [{"itemCodeableConcept": {
             "extension": [{"url": VALUE_SET_EXT, "valueCanonical": f"{CANONICAL}ValueSet/{klass}"}],
             "text": f"Interactants of {generic}"}}],
             "management": [{"text": f"Do not combine {generic} with its interactants."}]}},
        {"resourceType": "ClinicalUseDefinition", "id": f"{did}-contraindication", "extension": _section("Allergies"),
         "type": "contraindication",
         "contraindication": {"diseaseSymptomProcedure": {"concept": {
             "extension": [{"url": VALUE_SET_EXT, "valueCanonical": f"{CANONICAL}ValueSet/{products}"}],
             "text": f"Allergy to {generic}"}}}},
        {"resourceType": "MedicationKnowledge", "id": did, "extension": _section(f"{generic} monograph"),
         "code": {"extension": [{"url": VALUE_SET_EXT, "valueCanonical": f"{CANONICAL}ValueSet/{products}"}],
                  "coding": [{"system": LOCAL, "code": f"BD-{i}", "display": generic}], "text": generic},
         "status": "active", "name": [generic, brand],
         "clinicalUseIssue": [{"reference": f"ClinicalUseDefinition/{did}-interaction"},
                              {"reference": f"ClinicalUseDefinition/{did}-contraindication"}],
         "indicationGuideline": [{"dosingGuideline": [{
             "id": "daily-standard", "extension": _section("Dosage"),
             "dosage": [{"type": {"text": "standard"}, "dosage": [{
                 "text": "40 mg once a day.",
                 "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
                 "doseAndRate": [{"doseQuantity": _mg(40)}],
                 "maxDosePerPeriod": [{"numerator": _mg(40), "denominator": PER_DAY}]}]}]}]}],
         "definitional": {"ingredient": [{"item": {"concept": {"text": generic}}, "strengthRatio": {
             "numerator": _mg(20), "denominator": {"value": 1, "unit": "mL", "system": UCUM, "code": "mL"}}}]}},
    ]


def write_drugs(directory: Path, count: int) -> Path:
    """Write ``count`` made-up drugs (5 files each) into ``directory``; return it."""
    directory.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        for resource in made_up_drug(i):
            (directory / f"{resource['resourceType']}-{resource['id']}.json").write_text(json.dumps(resource))
    return directory


# --- order-sign requests -------------------------------------------------------------------------------------


def _concept(*codings: dict, text: str | None = None) -> dict:
    out: dict[str, Any] = {}
    if codings:
        out["coding"] = list(codings)
    if text:
        out["text"] = text
    return out


def _med(rid: str, concept: dict, status: str, authored: str, dose: float = 10, unit: str = "mg") -> dict:
    return {"resourceType": "MedicationRequest", "id": rid, "status": status, "intent": "order",
            "subject": {"reference": f"Patient/{PATIENT_ID}"}, "authoredOn": authored,
            "medicationCodeableConcept": concept,
            "dosageInstruction": [{"timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
                                   "route": {"coding": [{"system": SNOMED, "code": "26643006", "display": "Oral"}]},
                                   "doseAndRate": [{"doseQuantity": {"value": dose, "unit": unit, "system": UCUM,
                                                                     "code": unit}}]}]}


# Other medications of an RA patient (none of them the knowledge's drug): orders and medication history.
OTHER_MEDICATIONS = [
    _concept({"system": RXNORM, "code": "105586", "display": "methotrexate 2.5 MG Oral Tablet"},
             text="methotrexate 2.5 mg tablet"),
    _concept({"system": RXNORM, "code": "310273", "display": "folic acid 1 MG Oral Tablet"}, text="folic acid 1 mg"),
    _concept({"system": RXNORM, "code": "312617", "display": "prednisone 5 MG Oral Tablet"}, text="prednisone 5 mg"),
    _concept({"system": RXNORM, "code": "197806", "display": "ibuprofen 600 MG Oral Tablet"}, text="ibuprofen 600 mg"),
    _concept({"system": RXNORM, "code": "198211", "display": "simvastatin 40 MG Oral Tablet"},
             text="simvastatin 40 mg"),
    _concept({"system": RXNORM, "code": "314076", "display": "lisinopril 10 MG Oral Tablet"}, text="lisinopril 10 mg"),
    _concept({"system": RXNORM, "code": "197361", "display": "amlodipine 5 MG Oral Tablet"}, text="amlodipine 5 mg"),
    _concept({"system": RXNORM, "code": "860975", "display": "metformin hydrochloride 500 MG Oral Tablet"},
             text="metformin 500 mg"),
    _concept({"system": RXNORM, "code": "198052", "display": "omeprazole 20 MG Delayed Release Oral Capsule"},
             text="omeprazole 20 mg"),
    _concept({"system": RXNORM, "code": "979485", "display": "losartan potassium 50 MG Oral Tablet"},
             text="losartan 50 mg"),
    _concept({"system": RXNORM, "code": "1049630", "display": "acetaminophen 325 MG / oxycodone 5 MG Oral Tablet"},
             text="oxycodone/acetaminophen 5/325"),
    _concept({"system": RXNORM, "code": "312938", "display": "sertraline 50 MG Oral Tablet"}, text="sertraline 50 mg"),
]

CONDITIONS = [
    _concept({"system": SNOMED, "code": "69896004", "display": "Rheumatoid arthritis"}, text="Rheumatoid arthritis"),
    _concept({"system": ICD10CM, "code": "I10", "display": "Essential (primary) hypertension"}, text="Hypertension"),
    _concept({"system": SNOMED, "code": "44054006", "display": "Diabetes mellitus type 2"}, text="Type 2 diabetes"),
    _concept({"system": SNOMED, "code": "55822004", "display": "Hyperlipidemia"}, text="Hyperlipidemia"),
    _concept({"system": ICD10CM, "code": "K21.9", "display": "Gastro-esophageal reflux disease without esophagitis"},
             text="GERD"),
    _concept({"system": SNOMED, "code": "35489007", "display": "Depressive disorder"}, text="Depression"),
    _concept({"system": SNOMED, "code": "64859006", "display": "Osteoporosis"}, text="Osteoporosis"),
]

ALLERGIES = [
    _concept({"system": RXNORM, "code": "7980", "display": "penicillin G"}, text="Penicillin"),
    _concept({"system": SNOMED, "code": "91936005", "display": "Allergy to penicillin"}, text="Penicillin allergy"),
    _concept({"system": RXNORM, "code": "10180", "display": "sulfamethoxazole"}, text="Sulfa drugs"),
    _concept({"system": SNOMED, "code": "300913006", "display": "Shellfish allergy"}, text="Shellfish"),
]

# (LOINC code, display, unit, value at index 0, change per step): weights, kidney function, ANC, temperature.
OBSERVATIONS = [
    ("29463-7", "Body weight", "kg", 72.0, -0.1),
    ("35591-7", "Creatinine renal clearance predicted by Cockcroft-Gault formula", "mL/min", 85.0, -0.2),
    ("751-8", "Neutrophils [#/volume] in Blood by Automated count", "10*9/L", 4.2, 0.01),
    ("8310-5", "Body temperature", "Cel", 36.8, 0.0),
    ("33914-3", "Glomerular filtration rate/1.73 sq M.predicted by Creatinine-based formula (MDRD)",
     "mL/min/{1.73_m2}", 88.0, -0.1),
]


def kineret_order(rid: str = "order-kineret") -> dict:
    """The anakinra draft order: 100 mg once a day, named as an EHR names it (a branded clinical drug code)."""
    order = _med(rid, _concept({"system": RXNORM, "code": "349325",
                                "display": "anakinra 150 MG/ML Prefilled Syringe [Kineret]"},
                               text="Kineret 100 mg/0.67 mL prefilled syringe"),
                 "draft", datetime.now(UTC).date().isoformat(), 100)
    order["dosageInstruction"][0]["route"] = {"coding": [{"system": SNOMED, "code": "34206005",
                                                          "display": "Subcutaneous route"}]}
    return order


def _bundle(resources: list[dict]) -> dict:
    return {"resourceType": "Bundle", "type": "searchset", "total": len(resources),
            "entry": [{"fullUrl": f"urn:uuid:{r['resourceType']}-{r['id']}", "resource": r,
                       "search": {"mode": "match"}} for r in resources]}


def patient_data(size: int, now: datetime | None = None) -> dict[str, list[dict]]:
    """About ``size`` resources of one RA patient: the Patient, conditions (~12 %), allergies (~5 %),
    medication history (~30 %) and observations over time (the rest: weights, kidney function, ANC,
    temperature, newest first)."""
    now = now or datetime.now(UTC)
    rest = max(0, size - 1)
    n_cond = max(1, round(rest * 0.12)) if rest else 0
    n_alg = max(1, round(rest * 0.05)) if rest >= 4 else 0
    n_med = max(1, round(rest * 0.30)) if rest >= 3 else 0
    n_obs = max(0, rest - n_cond - n_alg - n_med)
    patient = {"resourceType": "Patient", "id": PATIENT_ID, "gender": "female", "birthDate": "1954-04-12",
               "name": [{"family": "Benchperson", "given": ["Ada"]}]}
    conditions = [{"resourceType": "Condition", "id": f"cond-{k}", "subject": {"reference": f"Patient/{PATIENT_ID}"},
                   "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                                  "code": "active" if k < len(CONDITIONS) else "resolved"}]},
                   "code": CONDITIONS[k % len(CONDITIONS)],
                   "onsetDateTime": (now - timedelta(days=400 + 30 * k)).date().isoformat()} for k in range(n_cond)]
    allergies = [{"resourceType": "AllergyIntolerance", "id": f"alg-{k}",
                  "patient": {"reference": f"Patient/{PATIENT_ID}"},
                  "clinicalStatus": {"coding": [{"code": "active"}]},
                  "verificationStatus": {"coding": [{"code": "confirmed"}]},
                  "code": ALLERGIES[k % len(ALLERGIES)]} for k in range(n_alg)]
    medications = []
    for k in range(n_med):
        status = "active" if k < len(OTHER_MEDICATIONS) else "completed"
        med = _med(f"med-{k}", OTHER_MEDICATIONS[k % len(OTHER_MEDICATIONS)], status,
                   (now - timedelta(days=20 + 15 * k)).date().isoformat())
        if status == "completed":
            med["dosageInstruction"][0]["timing"]["repeat"]["boundsPeriod"] = {
                "start": (now - timedelta(days=60 + 15 * k)).date().isoformat(),
                "end": (now - timedelta(days=20 + 15 * k)).date().isoformat()}
        medications.append(med)
    observations = []
    for k in range(n_obs):
        code, display, unit, first, step = OBSERVATIONS[k % len(OBSERVATIONS)]
        age = k // len(OBSERVATIONS)
        observations.append({
            "resourceType": "Observation", "id": f"obs-{k}", "status": "final",
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                      "code": "laboratory" if unit not in ("kg", "Cel") else "vital-signs"}]}],
            "code": _concept({"system": LOINC, "code": code, "display": display}),
            "subject": {"reference": f"Patient/{PATIENT_ID}"},
            "effectiveDateTime": (now - timedelta(days=3 + 7 * age, hours=k % 5)).isoformat(timespec="seconds"),
            "valueQuantity": {"value": round(first + step * age, 2), "unit": unit, "system": UCUM, "code": unit}})
    return {"patient": [patient], "conditions": conditions, "allergies": allergies, "medications": medications,
            "observations": observations}


def draft_orders(count: int) -> list[dict]:
    """The anakinra order and ``count - 1`` other draft orders (the patient's other medications)."""
    today = datetime.now(UTC).date().isoformat()
    return [kineret_order()] + [_med(f"order-{k}", OTHER_MEDICATIONS[k % len(OTHER_MEDICATIONS)], "draft", today)
                                for k in range(count - 1)]


# HL7's R4 example MedicationRequest/medrx0312 (phenytoin oral suspension, RxNorm 1313112): an order the knowledge
# does not judge (tests/cds/hl7_r4_examples/README.md says where the examples come from).
UNRELATED_ORDER = Path(__file__).resolve().parent.parent / "tests" / "cds" / "hl7_r4_examples" / \
    "MedicationRequest-medrx0312.json"


def unrelated_order() -> dict:
    """HL7's phenytoin example as a draft order of the bench patient (without its narrative, as draft orders come)."""
    order = json.loads(UNRELATED_ORDER.read_text(encoding="utf-8"))
    order.pop("text", None)
    return {**order, "status": "draft", "subject": {"reference": f"Patient/{PATIENT_ID}"}}


def order_sign(orders: int = 1, prefetch: int = 100, missing: tuple[str, ...] = (),
               fhir_server: str | None = None, unrelated: bool = False) -> dict:
    """An order-sign request: ``orders`` draft orders (anakinra first), about ``prefetch`` prefetched resources;
    the keys in ``missing`` are left out (read from ``fhir_server`` instead). ``unrelated``: the one draft order
    is for a drug the knowledge does not judge instead (the same patient and prefetch)."""
    data = patient_data(prefetch)
    values = {"patient": data["patient"][0], **{key: _bundle(data[key]) for key in
                                                ("conditions", "allergies", "medications", "observations")}}
    body: dict[str, Any] = {
        "hook": "order-sign", "hookInstance": "6f1c2f8e-bench-4bd6-9a0e-000000000001",
        "context": {"userId": "Practitioner/bench", "patientId": PATIENT_ID,
                    "draftOrders": {"resourceType": "Bundle", "type": "collection",
                                    "entry": [{"resource": o} for o in (
                                        [unrelated_order()] if unrelated else draft_orders(orders))]}},
        "prefetch": {key: value for key, value in values.items() if key not in missing}}
    if fhir_server:
        body["fhirServer"] = fhir_server
        body["fhirAuthorization"] = {"access_token": "bench-token", "token_type": "Bearer", "expires_in": 300,
                                     "scope": "patient/*.read", "subject": "fhirsvc"}
    return body


# A TNF inhibitor (etanercept, RxNorm 214555): the knowledge warns against it with anakinra.
ETANERCEPT = _concept({"system": RXNORM, "code": "214555", "display": "etanercept"}, text="Enbrel (etanercept) 50 mg")


def interacting_orders(count: int) -> list[dict]:
    """``count`` draft orders, anakinra and etanercept in turn: every anakinra order interacts with every
    etanercept order, the most checking per order the shipped knowledge gives."""
    today = datetime.now(UTC).date().isoformat()
    return [kineret_order(f"order-kineret-{k}") if k % 2 == 0
            else _med(f"order-tnf-{k}", ETANERCEPT, "draft", today, 50) for k in range(count)]


def check_orders_bundle(orders: int = 1, prefetch: int = 100, interacting: bool = False) -> dict:
    """The order-sign workload as a ``$check-orders`` input: one collection Bundle of the draft orders and the
    same patient data; ``interacting``: the orders are ``interacting_orders`` instead."""
    data = patient_data(prefetch)
    drafts = interacting_orders(orders) if interacting else draft_orders(orders)
    resources = [*drafts, *(r for key in ("patient", "conditions", "allergies", "medications",
                                          "observations") for r in data[key])]
    return {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources]}


def patient_view(prefetch: int = 100) -> dict:
    """A patient-view request for the same patient, on anakinra for 60 days (an active order in the medication
    list), with the same prefetched data (no allergies: patient-view does not read them)."""
    data = patient_data(prefetch)
    therapy = kineret_order("kineret-current")
    therapy.update(status="active", authoredOn=(datetime.now(UTC) - timedelta(days=60)).date().isoformat())
    return {"hook": "patient-view", "hookInstance": "6f1c2f8e-bench-4bd6-9a0e-000000000002",
            "context": {"userId": "Practitioner/bench", "patientId": PATIENT_ID},
            "prefetch": {"patient": data["patient"][0], "conditions": _bundle(data["conditions"]),
                         "medications": _bundle([therapy, *data["medications"]]),
                         "observations": _bundle(data["observations"])}}


# --- a stand-in FHIR server -------------------------------------------------------------------------------


@contextmanager
def slow_fhir_server(delay: float, prefetch: int = 100) -> Iterator[tuple[str, list[float]]]:
    """A threaded FHIR server on loopback answering the prefetch templates after ``delay`` seconds each;
    yields its base URL and the list of request arrival times (monotonic)."""
    import time

    data = patient_data(prefetch)
    routes = {"Patient": data["patient"][0], "Condition": _bundle(data["conditions"]),
              "AllergyIntolerance": _bundle(data["allergies"]), "MedicationRequest": _bundle(data["medications"]),
              "Observation": _bundle(data["observations"])}
    bodies = {name: json.dumps(doc).encode() for name, doc in routes.items()}
    arrivals: list[float] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall

        def do_GET(self) -> None:
            arrivals.append(time.monotonic())
            time.sleep(delay)
            path = urlsplit(self.path).path.rstrip("/").split("/")
            body = bodies.get(path[-2] if len(path) > 1 and path[-2] == "Patient" else path[-1])
            status = 200 if body is not None else 404
            body = body if body is not None else b'{"resourceType": "OperationOutcome"}'
            self.send_response(status)
            self.send_header("Content-Type", "application/fhir+json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/fhir", arrivals
    finally:
        server.shutdown()
        server.server_close()


# --- hostile clients (shared by run.py's mixed-load part and tests/test_serving.py) -----------------------


@contextmanager
def hostile_connections(host: str, port: int, idle: int = 4, silent: int = 2, slow: int = 2,
                        path: str = "/healthz") -> Iterator[None]:
    """Hold, while the block runs: ``idle`` kept-alive connections left idle after one answer each (a browser
    showing a page), ``silent`` connections that never send a byte, and ``slow`` connections that send a request
    line (POST ``path``) and then a header line a second (slowloris)."""
    stop = threading.Event()
    with ExitStack() as stack:
        def connect() -> socket.socket:
            return stack.enter_context(socket.create_connection((host, port), timeout=30))

        for _ in range(idle):
            sock = connect()
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: fhirsvc\r\n\r\n")
            if not sock.recv(65536).startswith(b"HTTP/1.1 200"):
                raise RuntimeError("the kept-alive connection got no 200")
        for _ in range(silent):
            connect()
        dripping = [connect() for _ in range(slow)]
        for sock in dripping:
            sock.sendall(f"POST {path} HTTP/1.1\r\nHost: fhirsvc\r\n".encode())

        def drip() -> None:
            line = 0
            while not stop.wait(1):
                line += 1
                for sock in dripping:
                    with suppress(OSError):
                        sock.sendall(f"X-Slow-{line}: {line}\r\n".encode())

        thread = threading.Thread(target=drip, daemon=True)
        thread.start()
        try:
            stop.wait(1.5)  # the slow connections have sent their first lines and been handed to threads
            yield
        finally:
            stop.set()
            thread.join(timeout=10)


# --- processes on this machine (shared by run.py, soak.py and the tests that start servers) --------------


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (a gunicorn master's workers), from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return sorted(found)


def rss_mb(pid: int | str = "self", field: str = "VmRSS") -> float:
    """Resident set size of a process (``VmRSS``; ``VmHWM`` for the peak), from /proc (MB); 0 if it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


@contextmanager
def served(command: list[str], ready_url: str, log: Path | None, env: dict[str, str] | None = None,
           cwd: Path | None = None, timeout: float = 120) -> Iterator[subprocess.Popen]:
    """Start ``command`` (its output in ``log``, or discarded; ``env`` added to this environment), wait until
    ``ready_url`` answers 200, yield the process; terminate it at the end if it still runs. RuntimeError, with
    the end of the log, if it exits or does not answer within ``timeout`` seconds."""
    with log.open("wb") if log else open(os.devnull, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=cwd,
                                   env={**os.environ, **(env or {})})
    try:
        _wait_ready(process, ready_url, timeout, log)
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_ready(process: subprocess.Popen, url: str, timeout: float, log: Path | None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}{_tail(log)}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"the server did not answer {url} within {timeout:g} s{_tail(log)}")


def _tail(log: Path | None) -> str:
    return f"; its log ends:\n{log.read_text(errors='replace')[-2000:]}" if log and log.exists() else ""


def kill_all(process: subprocess.Popen) -> None:
    """SIGKILL a gunicorn master started here and its workers, as a crash would (no graceful shutdown)."""
    if process.poll() is None:
        workers = children(process.pid)
        process.kill()
        for pid in workers:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    process.wait(timeout=10)


def wait_for_workers(master: int, count: int, timeout: float = 30) -> list[int]:
    """The pids of a gunicorn master's workers, once it has ``count`` of them."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        workers = children(master)
        if len(workers) >= count:
            return workers
        time.sleep(0.05)
    raise RuntimeError(f"gunicorn has {len(children(master))} workers, not {count}")
