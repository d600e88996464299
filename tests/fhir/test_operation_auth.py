"""The FHIR operations that take patient data ($check-orders, $validate on every base) need, under
FHIRSVC_AUTH=required, the bearer JWT the CDS routes take, addressed to the operation's URL; without it they
answer a 401 OperationOutcome with ``WWW-Authenticate: Bearer``. The knowledge's own routes stay open."""

from __future__ import annotations

from http import HTTPStatus

import pytest

from tests.cds.test_app_auth import ATTACKS, BASE, key, secured, secured_app, token  # noqa: F401 (fixtures)
from tests.fhir.test_check_orders import PATIENT, bundle, order

KINERET = {"resourceType": "Medication", "id": "m1", "code": {"text": "Kineret"}}


def operations(app) -> list[str]:
    """Every route of the URL map that runs $validate or $check-orders, with a type filled in."""
    return sorted({rule.rule.replace("<rtype>", "Medication") for rule in app.url_map.iter_rules()
                   if rule.rule.endswith(("/$validate", "/$check-orders"))})


def posted(path: str) -> dict:
    return bundle(order(), PATIENT) if path.endswith("$check-orders") else KINERET


def test_every_operation_on_patient_data_needs_a_token(secured_app, key):  # noqa: F811
    client = secured_app.test_client()
    paths = operations(secured_app)
    assert {"/fhir/R4/$check-orders", "/fhir/R5/$check-orders", "/fhir/$check-orders", "/fhir/R4/Medication/$validate",
            "/fhir/R5/Medication/$validate", "/fhir/Medication/$validate"} <= set(paths)
    for path in paths:
        refused = client.post(path, json=posted(path))
        assert refused.status_code == HTTPStatus.UNAUTHORIZED, path
        assert refused.headers["WWW-Authenticate"] == "Bearer"
        assert refused.mimetype == "application/fhir+json"
        assert refused.get_json()["issue"][0]["code"] == "login"
        allowed = client.post(path, json=posted(path), headers={"Authorization": f"Bearer {token(key, BASE + path)}"})
        assert allowed.status_code == HTTPStatus.OK, (path, allowed.get_json())


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_every_failure_is_a_401_without_detail(secured, key, attack):  # noqa: F811
    header = ATTACKS[attack](key)  # for the CDS service's URL: never $check-orders'
    response = secured.post("/fhir/R4/$check-orders", json=bundle(order(), PATIENT),
                            headers={"Authorization": header} if header else {})
    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert response.get_json()["issue"] == [{"severity": "error", "code": "login",
                                             "diagnostics": "authentication required"}]


def test_a_token_for_one_base_is_refused_on_another(secured, key):  # noqa: F811
    header = {"Authorization": f"Bearer {token(key, BASE + '/fhir/R4/$check-orders')}"}
    assert secured.post("/fhir/R5/$check-orders", json=bundle(order(), PATIENT), headers=header).status_code == 401


def test_a_replayed_token_is_refused(secured, key):  # noqa: F811
    header = {"Authorization": f"Bearer {token(key, BASE + '/fhir/R4/Medication/$validate')}"}
    assert secured.post("/fhir/R4/Medication/$validate", json=KINERET, headers=header).status_code == 200
    assert secured.post("/fhir/R4/Medication/$validate", json=KINERET, headers=header).status_code == 401


def test_the_knowledge_stays_open(secured):  # noqa: F811
    assert secured.get("/fhir/R4/metadata").status_code == 200
    assert secured.get("/fhir/R5/Medication/kineret").status_code == 200
    assert secured.get("/fhir/R5/ValueSet/live-vaccines/$validate-code",
                       query_string={"system": "http://hl7.org/fhir/sid/cvx", "code": "03"}).status_code == 200
