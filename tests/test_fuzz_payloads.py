"""Property test: mutated CDS Hooks requests never make the service answer 500.

The seeds are real requests: the order-select / order-sign payloads in ``tests/conformance/`` (hook
contexts alone are wrapped into a request) and the golden scenarios ``fixtures/scenarios/*.request.json``
when present, each as sent and, when it has no prefetch, with an empty prefetch too (so that the checks
run instead of a 412). Hypothesis mutates them: fields dropped, set to null, retyped or duplicated (a
repeated JSON key), huge strings, deep nesting, non-UTF-8 bytes, wrong resourceTypes inside draftOrders.
Every answer must be a 200 with ``{"cards": [...]}`` valid per CDS Hooks 2.0.1 (``card_schema``), or a
4xx OperationOutcome (CDS Hooks 3.0 "Returning OperationOutcome"). The run is derandomized and bounded
(``FUZZ_PAYLOAD_EXAMPLES``). Mutated
bodies go to the deprecated shared id, which routes by the body's own ``hook`` (mutated too); the seeds as
sent go to their hook's own service.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fhirsvc import create_app
from tests.cds.card_schema import assert_valid_outcome, assert_valid_response
from tests.cds.conftest import CONFORMANCE, LEGACY_SERVICE, SERVICE, empty_prefetch, order_request, service_path
from tests.conftest import ROOT, error_message

pytestmark = pytest.mark.slow  # fuzzing: hypothesis

SCENARIOS = ROOT / "fixtures" / "scenarios"
EXAMPLES = int(os.environ.get("FUZZ_PAYLOAD_EXAMPLES", "2500"))
HUGE = 1_000_000  # characters of a huge string: big, yet under FHIRSVC_MAX_CONTENT_LENGTH
DEEP = 5_000  # levels of a deeply nested value
OTHER_TYPES = ["Patient", "Bundle", "Observation", "OperationOutcome", "MedicationStatement", "", "medicationrequest",
               "Medication", "ServiceRequest", "Immunization", "MedicationOrder"]


def _request_files() -> list[Path]:
    hooks = [p for p in sorted(CONFORMANCE.glob("*.json")) if "order-select" in p.name or "order-sign" in p.name]
    return hooks + (sorted(SCENARIOS.glob("*.request.json")) if SCENARIOS.is_dir() else [])


def _as_request(path: Path) -> dict[str, Any] | None:
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or "context" not in data:
        return None
    if "hook" not in data:  # a hook context from the spec: wrap it like a client would
        hook = "order-select" if "order-select" in path.name else "order-sign"
        data = {"hook": hook, "hookInstance": f"fuzz-{path.stem}", **data}
    return data


def _seeds() -> list[tuple[str, dict[str, Any]]]:
    seeds = []
    for path in _request_files():
        request = _as_request(path)
        if request is None:
            continue
        seeds.append((path.name, request))
        if "prefetch" not in request:
            seeds.append((f"{path.name}+prefetch", {**request, "prefetch": empty_prefetch()}))
    return seeds


SEEDS = _seeds()


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    app = create_app({"TESTING": True, "KNOWLEDGE_PATH": "", "AUTH": "off", "PUBLIC_BASE_URL": "https://cds.example.org",
                      "FEEDBACK_DB": str(tmp_path_factory.mktemp("fuzz-payloads") / "feedback.sqlite3")})
    return app.test_client()


# --- mutations ------------------------------------------------------------------------------------

def _paths(node: Any, path: tuple = ()) -> list[tuple]:
    """Every path to a value inside the document (the root excluded)."""
    found = []
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in children:
        found.append((*path, key))
        found += _paths(child, (*path, key))
    return found


def _draft_resource_paths(document: Any) -> list[tuple]:
    entries = document
    for key in ("context", "draftOrders", "entry"):
        entries = entries.get(key) if isinstance(entries, dict) else None
    if not isinstance(entries, list):
        return []
    return [("context", "draftOrders", "entry", i, "resource") for i, e in enumerate(entries)
            if isinstance(e, dict) and isinstance(e.get("resource"), dict)]


def _get(document: Any, path: tuple) -> Any:
    for key in path:
        document = document[key]
    return document


def _set(document: Any, path: tuple, value: Any) -> None:
    _get(document, path[:-1])[path[-1]] = value


def _drop(document: Any, path: tuple) -> None:
    parent = _get(document, path[:-1])
    del parent[path[-1]]


def _retyped(value: Any, choice: int) -> Any:
    """A value of another JSON type than ``value``."""
    candidates = [0, -1.5e308, True, "text", [], {}, [value], {"value": value}, 10**30, "1e999"]
    others = [c for c in candidates if type(c) is not type(value)]
    return others[choice % len(others)]


def _nested_text(depth: int, leaf: Any) -> str:
    """JSON text of ``leaf`` inside ``depth`` levels of arrays and objects (built as text: json.dumps
    would itself hit the recursion limit)."""
    opening = "".join("[" if level % 2 else '{"x": ' for level in range(depth))
    closing = "".join("]" if level % 2 else "}" for level in reversed(range(depth)))
    return opening + json.dumps(leaf) + closing


MUTATIONS = ("drop", "null", "retype", "duplicate", "huge", "deep", "resource-type", "not-utf8")


@st.composite
def mutated(draw) -> tuple[str, bytes]:
    """(description, body bytes) of a seed with 1 to 3 mutations applied."""
    name, seed = draw(st.sampled_from(SEEDS))
    document = copy.deepcopy(seed)
    done = [name]
    raw_mutation = None
    deep: dict[str, str] = {}  # placeholder -> deeply nested JSON text
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(MUTATIONS))
        paths = _paths(document)
        if kind == "resource-type":
            targets = _draft_resource_paths(document)
            if not targets:
                continue
            target = draw(st.sampled_from(targets))
            value = draw(st.sampled_from([*OTHER_TYPES, None, 7, ["MedicationRequest"]]))
            _set(document, (*target, "resourceType"), value)
            done.append(f"{kind} {'/'.join(map(str, target))}={value!r}")
            continue
        if kind in ("not-utf8", "duplicate"):  # done on the serialised text, at the end
            raw_mutation = raw_mutation or kind
            continue
        if not paths:
            continue
        path = draw(st.sampled_from(paths))
        if kind == "drop":
            _drop(document, path)
        elif kind == "null":
            _set(document, path, None)
        elif kind == "retype":
            _set(document, path, _retyped(_get(document, path), draw(st.integers(0, 20))))
        elif kind == "huge":
            _set(document, path, draw(st.sampled_from(["x", "é", "🩺", "\x00", "1", "\ud800"])) * HUGE)
        elif kind == "deep":
            marker = f"__fuzz_deep_{len(deep)}__"
            deep[marker] = _nested_text(draw(st.sampled_from([50, 120, 999, DEEP])), _get(document, path))
            _set(document, path, marker)
        done.append(f"{kind} {'/'.join(map(str, path))}")
    paths = _paths(document)
    if raw_mutation == "duplicate" and paths:
        path = draw(st.sampled_from(paths))
        done.append(f"duplicate {'/'.join(map(str, path))}")
        body = _with_duplicate_key(document, path, draw(st.sampled_from([None, 0, "x", {"a": 1}])))
    else:
        body = json.dumps(document).encode()
    for marker, text in reversed(deep.items()):  # a later value may hold an earlier marker
        body = body.replace(json.dumps(marker).encode(), text.encode())
    if raw_mutation == "not-utf8":
        at = draw(st.integers(0, max(0, len(body) - 1)))
        body = body[:at] + draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\x80\x80"])) + body[at:]
        done.append(f"not-utf8 at byte {at}")
    return "; ".join(done), body


def _with_duplicate_key(document: Any, path: tuple, other: Any) -> bytes:
    """The document serialised with the key at ``path`` given twice (the second value wins in Python);
    a list item is simply repeated."""
    parent = _get(document, path[:-1])
    if isinstance(parent, list):
        parent.insert(path[-1], copy.deepcopy(parent[path[-1]]))
        return json.dumps(document).encode()
    marker = "__fuzz_duplicate__"
    parent[marker] = None
    text = json.dumps(document)
    key = json.dumps(str(path[-1]))
    return text.replace(f'"{marker}": null', f"{key}: {json.dumps(other)}").encode()


# --- the property ---------------------------------------------------------------------------------

def check_answer(response, description: str) -> None:
    status = response.status_code
    assert status < 500, f"{status} for {description}: {response.get_data(as_text=True)[:300]}"
    assert status == 200 or 400 <= status < 500, f"unexpected {status} for {description}"
    assert response.mimetype == "application/json", f"{response.mimetype} for {description}"
    body = json.loads(response.get_data())
    if status == 200:
        assert set(body) == {"cards"}, description
        assert_valid_response(body)
    else:
        assert_valid_outcome(body)
        assert isinstance(error_message(body), str), (description, body)


@settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None, print_blob=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example])
@given(case=mutated())
def test_a_mutated_request_gets_cards_or_a_client_error(client, case):
    description, body = case
    check_answer(client.post(LEGACY_SERVICE, data=body, content_type="application/json"), description)


@pytest.mark.parametrize(("name", "seed"), SEEDS, ids=[name for name, _ in SEEDS])
def test_every_seed_as_sent_gets_cards_or_a_client_error(client, name, seed):
    response = client.post(service_path(seed["hook"]), json=seed)
    check_answer(response, name)
    assert response.status_code in (200, 412), (name, response.get_json())


def _order(**fields) -> dict:
    order = {"resourceType": "MedicationRequest", "id": "mr-1", "status": "draft", "intent": "order",
             "medicationCodeableConcept": {"text": "Kineret 100 mg/0.67 mL prefilled syringe"},
             "subject": {"reference": "Patient/p1"},
             "dosageInstruction": [{"timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
                                    "doseAndRate": [{"doseQuantity": {"value": 200, "unit": "mg"}}]}]}
    return {**order, **fields}


def _paged(link: Any) -> dict:
    prefetch = empty_prefetch()
    prefetch["conditions"] = {"resourceType": "Bundle", "type": "searchset", "entry": [], "link": link}
    return prefetch


# Requests the fuzzers found answered with a 500 (or an invalid card); each is now a 200 or a 400.
FOUND = {
    "medicationReference is a list": ([_order(medicationReference=[None, None])], None),
    "medicationReference.reference is a list": ([_order(medicationReference={"reference": [None, None]})], None),
    "an order id that is an object": ([_order(id={"a": 1})], None),
    "an order id that is no FHIR id": ([_order(id="mr 1 " + "x" * 80), _order(
        id="mr-2", medicationCodeableConcept={"text": "etanercept 50 mg"}, dosageInstruction=[])], None),
    "a status that is an object": ([_order(status={"a": 1})], None),
    "a timing that is a string": ([_order(dosageInstruction=[{"timing": "daily"}])], None),
    "a coding that is an object": ([_order(medicationCodeableConcept={"coding": {"code": "x"}, "text": 5})], None),
    "a prefetch Bundle link that is a string": (None, _paged("next")),
    "a prefetch Bundle link with a number": (None, _paged([1, {"relation": "next", "url": 7}])),
    "a patient id with a lone surrogate": ("surrogate", None),
}


@pytest.mark.parametrize("name", list(FOUND))
def test_what_fuzzing_found_stays_fixed(client, name):
    orders, prefetch = FOUND[name]
    if orders == "surrogate":
        body = json.dumps(order_request()).replace('"patientId": "p1"', '"patientId": "p\\ud800"').encode()
        assert b"\\ud800" in body
    else:
        body = json.dumps(order_request(orders=orders, prefetch=prefetch)).encode()
    check_answer(client.post(SERVICE, data=body, content_type="application/json"), name)


def test_the_seeds_are_found():
    assert sum(1 for name, _ in SEEDS if "+" not in name) >= 10
