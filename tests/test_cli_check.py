"""``fhirsvc check FILE.json``: the checks offline on a saved CDS Hooks request or a plain FHIR Bundle.

Exit status 0 when nothing is critical, 1 when a finding is critical, 2 for unreadable input (one line on
stderr, never a traceback).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fhirsvc.cli import main
from tests.conftest import ROOT

SCENARIOS = ROOT / "fixtures" / "scenarios"
NOW = "2026-11-24T12:00:00Z"
CLEAN = SCENARIOS / "001-clean-ra-adult-no-cards.request.json"
LIVE_VACCINE = SCENARIOS / "016-live-vaccine-same-bundle.request.json"
ORDER_SELECT = SCENARIOS / "061-order-select-judges-selection.request.json"


@pytest.fixture(autouse=True)
def _shipped_knowledge_only(monkeypatch):
    monkeypatch.delenv("FHIRSVC_KNOWLEDGE_PATH", raising=False)
    monkeypatch.delenv("FHIRSVC_KNOWLEDGE_DIR", raising=False)
    monkeypatch.delenv("FHIRSVC_PUBLIC_BASE_URL", raising=False)


def check(capsys, *args: str) -> tuple[int, str, str]:
    status = main(["check", *args])
    out, err = capsys.readouterr()
    return status, out, err


def write(tmp_path: Path, document, name: str = "input.json") -> Path:
    path = tmp_path / name
    path.write_text(document if isinstance(document, str) else json.dumps(document), encoding="utf-8")
    return path


def kineret(order_id: str = "mr-1", status: str = "draft", mg: float = 100, per_day: int = 1, **extra) -> dict:
    return {"resourceType": "MedicationRequest", "id": order_id, "status": status, "intent": "order",
            "subject": {"reference": "Patient/p-42"},
            "medicationCodeableConcept": {"text": "Kineret (anakinra) 100 mg/0.67 mL syringe"},
            "dosageInstruction": [{"timing": {"repeat": {"frequency": per_day, "period": 1, "periodUnit": "d"}},
                                   "route": {"coding": [{"system": "http://snomed.info/sct", "code": "34206005"}]},
                                   "doseAndRate": [{"doseQuantity": {"value": mg, "unit": "mg"}}]}], **extra}


def bundle(*resources: dict) -> dict:
    return {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources]}


PATIENT = {"resourceType": "Patient", "id": "p-42", "birthDate": "1980-02-02", "gender": "male",
           "name": [{"family": "Fixturely", "given": ["Testa"]}]}
RA = {"resourceType": "Condition", "id": "c-ra", "subject": {"reference": "Patient/p-42"},
      "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                     "code": "active"}]},
      "code": {"coding": [{"system": "http://snomed.info/sct", "code": "69896004"}], "text": "Rheumatoid arthritis"}}
MTX = {"resourceType": "MedicationRequest", "id": "mtx", "status": "completed", "intent": "order",
       "subject": {"reference": "Patient/p-42"}, "medicationCodeableConcept": {"text": "methotrexate 2.5 mg tablet"}}


def observation(oid: str, loinc: str, value: float, unit: str, when: str = "2026-11-10T09:00:00Z") -> dict:
    return {"resourceType": "Observation", "id": oid, "status": "final", "subject": {"reference": "Patient/p-42"},
            "code": {"coding": [{"system": "http://loinc.org", "code": loinc}]}, "effectiveDateTime": when,
            "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}}


LABS = [observation("anc", "751-8", 3.2, "10*9/L"), observation("egfr", "98979-8", 90, "mL/min/{1.73_m2}")]


# --- saved CDS Hooks requests ---------------------------------------------------------------------------

def test_request_without_findings_exits_0(capsys):
    status, out, err = check(capsys, str(CLEAN), "--now", NOW)
    assert status == 0, err
    assert out.startswith("No findings.")
    assert "judged: MedicationRequest/mr-kineret" in out and "2026-11-24T12:00:00+00:00" in out


def test_request_with_a_critical_finding_exits_1_and_prints_a_table(capsys):
    status, out, _ = check(capsys, str(LIVE_VACCINE), "--now", NOW)
    assert status == 1
    lines = out.splitlines()
    assert lines[0].split() == ["TOPIC", "INDICATOR", "RULE", "SUMMARY", "ORDER"]
    assert set(lines[1]) <= {"-", " "}
    rows = [line for line in lines[2:] if line.startswith("DRG")]
    assert len(rows) == 2 and all("critical" in row for row in rows)
    # each row names its rule: the live vaccine with the anakinra order (#4), and anakinra with the vaccine (#19)
    assert [row.split()[2] for row in rows] == ["anakinra-live-vaccine", "anakinra-live-vaccine-on-therapy"]
    assert rows[0].endswith("MedicationRequest/mr-kineret") and rows[1].endswith("MedicationRequest/mr-mmr")
    assert "2 finding(s): 2 critical, 0 warning, 0 info" in lines[-1]


def test_json_output_has_findings_and_valid_cards(capsys):
    from tests.cds.card_schema import assert_valid_response

    status, out, _ = check(capsys, str(LIVE_VACCINE), "--json", "--now", NOW)
    assert status == 1
    document = json.loads(out)
    assert document["hook"] == "order-sign" and document["critical"] is True
    assert document["now"] == "2026-11-24T12:00:00+00:00"
    assert [(f["topic"], f["indicator"], f["order"]) for f in document["findings"]] == [
        ("DRG", "critical", "MedicationRequest/mr-kineret"), ("DRG", "critical", "MedicationRequest/mr-mmr")]
    assert all(f["summary"] and f["rule"] for f in document["findings"])
    assert_valid_response({"cards": document["cards"]})
    assert [c["extension"]["fhirsvc.rule"] for c in document["cards"]] == [f["rule"] for f in document["findings"]] \
        == ["anakinra-live-vaccine", "anakinra-live-vaccine-on-therapy"]
    assert all(c["links"][0]["url"].startswith("http://127.0.0.1:8080/monographs/") for c in document["cards"])


def test_the_same_cards_as_the_service(capsys, tmp_path):
    """Offline evaluation gives the cards (uuids included) that the service gives for the same request."""
    from datetime import datetime

    from fhirsvc import create_app
    from fhirsvc.cds.views import evaluate

    status, out, _ = check(capsys, str(ORDER_SELECT), "--json", "--now", NOW)
    assert status == 0
    offline = json.loads(out)["cards"]
    app = create_app({"KNOWLEDGE_PATH": "", "AUTH": "off", "FEEDBACK_DB": str(tmp_path / "f.sqlite3"),
                      "PUBLIC_BASE_URL": "http://127.0.0.1:8080"})
    body = json.loads(ORDER_SELECT.read_text(encoding="utf-8"))
    with app.test_request_context("/cds-services/medication-safety-order-select", method="POST"):
        served = evaluate("medication-safety-order-select", body, now=datetime.fromisoformat(NOW))
    assert offline == served
    assert [(c["source"]["topic"]["code"], c["indicator"]) for c in offline] == [("DRG", "warning")]


def test_order_select_judges_only_the_selection(capsys):
    status, out, _ = check(capsys, str(ORDER_SELECT), "--json", "--now", NOW)
    document = json.loads(out)
    assert status == 0
    assert document["hook"] == "order-select" and document["judged"] == ["MedicationRequest/mr-kineret"]


def test_request_without_any_patient_data_is_unreadable(capsys, tmp_path):
    body = json.loads(CLEAN.read_text(encoding="utf-8"))
    del body["prefetch"]
    status, out, err = check(capsys, str(write(tmp_path, body)), "--now", NOW)
    assert status == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "no patient data" in err


def test_other_hooks_are_refused(capsys, tmp_path):
    body = {"hook": "encounter-start", "hookInstance": "x", "context": {"userId": "Practitioner/1", "patientId": "p"}}
    status, _, err = check(capsys, str(write(tmp_path, body)))
    assert status == 2 and "encounter-start" in err and "patient-view" in err and len(err.strip().splitlines()) == 1


def test_a_patient_view_request_gives_its_reminders(capsys, tmp_path):
    on_therapy = kineret("mr-cur", status="active", authoredOn="2026-09-01")
    body = {"hook": "patient-view", "hookInstance": "x", "context": {"userId": "Practitioner/1", "patientId": "p-42"},
            "prefetch": {"patient": PATIENT, "conditions": bundle(RA), "medications": bundle(on_therapy),
                         "observations": None}}
    status, out, err = check(capsys, str(write(tmp_path, body)), "--now", NOW)
    assert status == 0 and err == ""
    assert "patient-view" in out and "Neutrophil count overdue for anakinra" in out


# --- plain Bundles --------------------------------------------------------------------------------------

def test_plain_bundle_drafts_are_the_orders_and_the_rest_is_context(capsys, tmp_path):
    current = kineret("mr-current", status="active", authoredOn="2026-06-01")
    document = bundle(PATIENT, RA, MTX, *LABS, current, kineret("mr-new"))
    status, out, _ = check(capsys, str(write(tmp_path, document)), "--json", "--now", NOW)
    result = json.loads(out)
    assert status == 0
    assert result["judged"] == ["MedicationRequest/mr-new"]
    assert [(f["topic"], f["indicator"], f["order"]) for f in result["findings"]] == [
        ("DUPTHPY", "warning", "MedicationRequest/mr-new")]


def test_plain_bundle_without_drafts_checks_every_medication_request(capsys, tmp_path):
    document = bundle(PATIENT, RA, MTX, *LABS, kineret("mr-a", status="active", mg=150))
    document["entry"] = [e for e in document["entry"] if e["resource"]["id"] != "mtx"]  # no DMARD on record
    status, out, _ = check(capsys, str(write(tmp_path, document)), "--now", NOW)
    assert status == 0
    topics = [line.split()[0] for line in out.splitlines()[2:-1]]
    assert topics == ["DOSEH", "COND"]
    assert "judged: MedicationRequest/mr-a" in out


def test_plain_bundle_with_a_critical_allergy_exits_1(capsys, tmp_path):
    allergy = {"resourceType": "AllergyIntolerance", "id": "alg", "patient": {"reference": "Patient/p-42"},
               "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/"
                                                        "allergyintolerance-clinical", "code": "active"}]},
               "code": {"text": "Kineret"}}
    status, out, _ = check(capsys, str(write(tmp_path, bundle(PATIENT, RA, MTX, *LABS, allergy, kineret()))),
                           "--now", NOW)
    assert status == 1
    assert any(line.startswith("ALGY") and "critical" in line for line in out.splitlines())


def test_plain_bundle_with_only_the_order(capsys, tmp_path):
    """Without a Patient the age is unknown ("Unable to check"); missing lists count as nothing recorded."""
    status, out, _ = check(capsys, str(write(tmp_path, bundle(kineret()))), "--json", "--now", NOW)
    findings = json.loads(out)["findings"]
    assert status == 0
    pairs = {(f["topic"], f["indicator"], f["unableToCheck"]) for f in findings}
    assert ("AGE", "warning", True) in pairs and ("GEALRT", "info", True) in pairs
    assert ("LAB", "info", False) in pairs  # monitoring due: no neutrophil count recorded
    assert not any(f["topic"] in ("ALGY", "DRG", "DUPTHPY") for f in findings)


def test_bundle_without_an_order_is_unreadable(capsys, tmp_path):
    status, out, err = check(capsys, str(write(tmp_path, bundle(PATIENT, RA))))
    assert status == 2 and out == "" and "no MedicationRequest" in err


def test_the_input_file_is_not_changed(capsys, tmp_path):
    path = write(tmp_path, bundle(PATIENT, RA, *LABS, kineret(mg=100, per_day=2)))
    before = path.read_bytes()
    check(capsys, str(path), "--json", "--now", NOW)
    assert path.read_bytes() == before


def test_now_defaults_to_the_clock_and_accepts_a_date(capsys):
    status, out, _ = check(capsys, str(CLEAN), "--json", "--now", "2026-11-24")
    assert status == 0 and json.loads(out)["now"] == "2026-11-24T00:00:00+00:00"
    status, out, _ = check(capsys, str(CLEAN), "--json")
    assert status in (0, 1) and json.loads(out)["now"].startswith("20")


def test_bad_now_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["check", str(CLEAN), "--now", "yesterday"])
    assert exc.value.code == 2
    assert "--now" in capsys.readouterr().err


# --- unreadable input -----------------------------------------------------------------------------------

GARBAGE = [
    ("empty", ""),
    ("not-json", "MSH|^~\\&|EHR|HOSPITAL"),
    ("truncated", '{"resourceType": "Bundle", "entry": ['),
    ("array", "[1, 2, 3]"),
    ("string", '"hello"'),
    ("number", "42"),
    ("null", "null"),
    ("empty-object", "{}"),
    ("patient", json.dumps(PATIENT)),
    ("bare-order", json.dumps(kineret())),
    ("bundle-entry-not-array", '{"resourceType": "Bundle", "entry": {"resource": {}}}'),
    ("bundle-garbage-entries", '{"resourceType": "Bundle", "entry": [1, "x", null, {"resource": 5}]}'),
    ("hook-only", '{"hook": "order-sign"}'),
    ("draft-orders-not-bundle", json.dumps({"hook": "order-sign", "hookInstance": "i", "context": {
        "userId": "Practitioner/1", "patientId": "p", "draftOrders": {"resourceType": "Patient"}}})),
    ("order-select-without-selections", json.dumps({"hook": "order-select", "hookInstance": "i", "context": {
        "userId": "Practitioner/1", "patientId": "p", "draftOrders": bundle(kineret())}, "prefetch": {}})),
]


@pytest.mark.parametrize(("name", "text"), GARBAGE, ids=[g[0] for g in GARBAGE])
def test_unreadable_input_exits_2_with_one_line(capsys, tmp_path, name, text):
    status, out, err = check(capsys, str(write(tmp_path, text, f"{name}.json")), "--now", NOW)
    assert status == 2, (out, err)
    assert out == ""
    assert len(err.strip().splitlines()) == 1 and err.startswith("fhirsvc check: "), err
    assert "Traceback" not in err


def test_garbage_prefetch_values_are_read_as_unavailable_data(capsys, tmp_path):
    """Prefetch values that are not FHIR (a number, a string, an array, non-object entries) make their keys
    unavailable; the checks still run and say what they could not check."""
    text = json.dumps({"hook": "order-sign", "hookInstance": "i", "context": {
        "userId": "Practitioner/1", "patientId": "p", "draftOrders": bundle(kineret())},
        "prefetch": {"patient": 7, "conditions": {"resourceType": "Bundle", "entry": ["x", 3]},
                     "allergies": "none", "medications": [], "observations": {"resourceType": "Bundle",
                                                                              "entry": [{"resource": []}]}}})
    status, out, err = check(capsys, str(write(tmp_path, text, "garbage-prefetch.json")), "--now", NOW)
    assert status in (0, 1), (out, err)
    assert "Traceback" not in err and "Unable to check" in out


def test_binary_and_missing_files_exit_2(capsys, tmp_path):
    binary = tmp_path / "image.json"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff\xfe")
    for path in (binary, tmp_path / "missing.json", tmp_path):
        status, out, err = check(capsys, str(path))
        assert status == 2 and out == "" and len(err.strip().splitlines()) == 1, (path, err)


def test_the_installed_command_never_prints_a_traceback(tmp_path):
    path = write(tmp_path, "{not json")
    done = subprocess.run([sys.executable, "-m", "fhirsvc.cli", "check", str(path)], capture_output=True, text=True,
                          check=False, cwd=ROOT)
    assert done.returncode == 2
    assert done.stdout == "" and "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("version", ["R4", "R5"])
def test_fhir_prints_the_check_orders_bundle(capsys, version):
    from tests.fhir.conftest import assert_valid_r4, assert_valid_r5

    status, out, _ = check(capsys, "--fhir", version, "--now", NOW, str(LIVE_VACCINE))
    answer = json.loads(out)
    (assert_valid_r5 if version == "R5" else assert_valid_r4)(answer)
    status_table, table, _ = check(capsys, "--now", NOW, str(LIVE_VACCINE))
    issues = [e["resource"] for e in answer["entry"]]
    assert answer["type"] == "searchset" and answer["total"] == len(issues) == len(table.splitlines()) - 3
    assert {i["resourceType"] for i in issues} == {"DetectedIssue"}
    assert "high" in {i["severity"] for i in issues} and status == status_table == 1  # the exit status is kept
    assert answer["link"][0]["url"].endswith(f"/fhir/{version}/$check-orders")


def test_fhir_on_a_bundle_names_the_orders_by_their_full_url(capsys, tmp_path):
    posted = bundle(kineret(mg=300), PATIENT)
    posted["entry"][0]["fullUrl"] = "urn:uuid:0b5e6a3c-1d2f-4e5a-8b9c-0d1e2f3a4b5c"
    status, out, _ = check(capsys, "--fhir", "--now", NOW, str(write(tmp_path, posted)))
    issues = [e["resource"] for e in json.loads(out)["entry"]]
    assert issues and status == 0
    assert {i["implicated"][0]["reference"] for i in issues} == {"urn:uuid:0b5e6a3c-1d2f-4e5a-8b9c-0d1e2f3a4b5c"}


def test_a_transaction_bundle_naming_its_medication_by_urn_uuid(capsys, tmp_path):
    """The Medication of a POSTed order is another entry of the transaction, named by its fullUrl: 200 mg/day of
    anakinra is the high-dose finding, an E. coli protein allergy the critical one (exit status 1)."""
    urn = "urn:uuid:7d3b1e2a-4c5f-4a6b-9c8d-1e2f3a4b5c6d"
    order = kineret(mg=100, per_day=2)
    del order["medicationCodeableConcept"]
    order["medicationReference"] = {"reference": urn}
    allergy = {"resourceType": "AllergyIntolerance", "id": "alg", "patient": {"reference": "Patient/p-42"},
               "code": {"text": "E. coli-derived proteins"}}
    medication = {"resourceType": "Medication", "code": {"coding": [
        {"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "72435"}]}}
    posted = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:7d3b1e2a-4c5f-4a6b-9c8d-1e2f3a4b5c6e", "resource": order,
         "request": {"method": "POST", "url": "MedicationRequest"}},
        {"fullUrl": urn, "resource": medication, "request": {"method": "POST", "url": "Medication"}},
        {"resource": PATIENT}, {"resource": RA}, {"resource": allergy}, *({"resource": lab} for lab in LABS)]}
    status, out, _ = check(capsys, "--json", "--now", NOW, str(write(tmp_path, posted)))
    found = {(f["topic"], f["indicator"]) for f in json.loads(out)["findings"]}
    assert status == 1 and {("DOSEH", "warning"), ("ALGY", "critical")} <= found


def test_a_bundle_entry_whose_resource_is_a_string_is_unreadable(capsys, tmp_path):
    posted = bundle(kineret(), PATIENT)
    posted["entry"].append({"resource": "MedicationRequest/mr-2"})
    status, _, err = check(capsys, "--now", NOW, str(write(tmp_path, posted)))
    assert status == 2 and "Bundle.entry[2].resource must be a FHIR resource, not a JSON string" in err


# --- hostile input: every kind exits 2, nothing blocks or grows without bound ----------------------------

def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """The installed command, as a user runs it (a generous timeout only detects a hang)."""
    import os

    environ = {k: v for k, v in os.environ.items() if not k.startswith("FHIRSVC_")} | (env or {})
    return subprocess.run([sys.executable, "-m", "fhirsvc.cli", "check", *args], capture_output=True, text=True,
                          check=False, cwd=ROOT, timeout=60, env=environ)


def assert_unreadable(done: subprocess.CompletedProcess, *words: str) -> None:
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr[-2000:])
    assert done.stdout == "" and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert len(done.stderr.strip().splitlines()) == 1 and done.stderr.startswith("fhirsvc check: "), done.stderr
    for word in words:
        assert word in done.stderr, done.stderr


def test_deeply_nested_json_exits_2(tmp_path):
    path = write(tmp_path, "[" * 100_000 + "]" * 100_000, "deep.json")
    assert_unreadable(run_cli(str(path), "--now", NOW), "not valid JSON")


def test_json_nested_deeper_than_the_http_routes_take_exits_2(tmp_path):
    from fhirsvc.jsontext import MAX_DEPTH

    inner = json.dumps(bundle(kineret()))
    path = write(tmp_path, '{"a":' * MAX_DEPTH + inner + "}" * MAX_DEPTH, "deep.json")
    assert_unreadable(run_cli(str(path), "--now", NOW), f"deeper than {MAX_DEPTH} levels")


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_nan_and_infinity_doses_are_refused_not_judged(tmp_path, value):
    text = json.dumps(bundle(kineret(mg=123456))).replace("123456", value)
    assert value in text
    done = run_cli(str(write(tmp_path, text, "nan.json")), "--now", NOW)
    assert_unreadable(done, "not valid JSON")
    assert "exceeds" not in done.stderr


def test_dev_zero_and_other_devices_are_refused_without_reading():
    assert_unreadable(run_cli("/dev/zero", "--now", NOW), "not a regular file")


def test_a_fifo_is_refused_without_blocking(tmp_path):
    import os

    fifo = tmp_path / "orders.json"
    os.mkfifo(fifo)
    assert_unreadable(run_cli(str(fifo), "--now", NOW), "not a regular file")  # no writer ever opens it


def test_a_file_over_the_size_limit_is_refused(tmp_path):
    padded = json.dumps(bundle(kineret())) + " " * 2000
    path = write(tmp_path, padded, "big.json")
    assert_unreadable(run_cli(str(path), "--now", NOW, env={"FHIRSVC_MAX_CONTENT_LENGTH": "1000"}),
                      "larger than 1000 bytes")
    done = run_cli(str(path), "--now", NOW, env={"FHIRSVC_MAX_CONTENT_LENGTH": str(len(padded))})
    assert done.returncode in (0, 1), done.stderr  # exactly at the limit it is read


def test_the_default_size_limit_is_the_http_body_limit():
    from fhirsvc.config import DEFAULTS
    from fhirsvc.evaluation.offline import MAX_INPUT_BYTES

    assert MAX_INPUT_BYTES == DEFAULTS["MAX_CONTENT_LENGTH"] == 5 * 1024 * 1024


def test_a_byte_order_mark_is_still_read(capsys, tmp_path):
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(bundle(kineret())).encode())
    status, out, err = check(capsys, str(path), "--now", NOW)
    assert status in (0, 1) and err == "" and "anakinra" in out.lower(), err


def test_no_control_character_from_the_input_reaches_the_terminal(capsys, tmp_path):
    """Names and ids of the input are printed as plain text: no escape sequence, C1 control or bidi override."""
    import re

    hostile = "\x1b]0;owned\x07\x1b[2J\x9b31m\u202e"
    order = kineret(order_id="mr-1", mg=300)
    order["medicationCodeableConcept"]["text"] = f"Kineret {hostile}(anakinra) 100 mg/0.67 mL syringe"
    other = kineret(order_id="mr-2", mg=100)
    other["id"] = f"mr-2{hostile}"
    path = write(tmp_path, bundle(order, other, PATIENT))
    control = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
    for args in ((), ("--json",), ("--fhir",)):
        status, out, err = check(capsys, str(path), "--now", NOW, *args)
        assert status in (0, 1) and out, err
        assert not control.search(out), (args, out)
        if args == ("--json",):  # the same data, escaped for the terminal
            assert f"MedicationRequest/mr-2{hostile}" in json.loads(out)["judged"]


def test_an_error_quoting_the_input_stays_one_plain_line(capsys, tmp_path):
    text = json.dumps({"resourceType": "Pat\x1b[2J\n\u202eient"})  # "a Pat...ient is neither ..."
    status, out, err = check(capsys, str(write(tmp_path, text)), "--now", NOW)
    assert status == 2 and out == "", err
    assert len(err.strip().splitlines()) == 1 and "\x1b" not in err and "\u202e" not in err, err
