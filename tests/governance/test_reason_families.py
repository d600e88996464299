"""HL7's non-adherence reasons (CDS Hooks 3.0 ballot) beside the service's own: offered on warning and critical
cards, accepted as feedback, and counted with ours in one count per reason family, in the feedback statistics and in
the governance report, on both backends."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta

from fhirsvc import create_app
from fhirsvc.canonical import NON_ADHERENCE_REASONS, OVERRIDE_REASONS
from tests.cds.conftest import SERVICE
from tests.cds.test_call_configuration import scenario
from tests.cds.test_scenarios import run_scenario

EARLIER_DRAFT = "http://terminology.hl7.org/CodeSystem/non-adherence-reason"  # the ballot's earlier URL


def overridden(card: str, system: str | None, code: str | None, minutes: int) -> dict:
    item = {"card": card, "outcome": "overridden",
            "outcomeTimestamp": (datetime.now(UTC) - timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")}
    item["overrideReason"] = {"reason": {"system": system, "code": code}} if code else {"userComment": "none coded"}
    return item


def make_app(database_url: str):
    return create_app({"TESTING": True, "KNOWLEDGE_PATH": "", "AUTH": "off", "DATABASE_URL": database_url,
                       "GOVERNANCE": "on", "PUBLIC_BASE_URL": "https://cds.example.org"})


def test_cards_offer_ours_then_the_hl7_clinical_selection(tmp_path):
    client = make_app(f"sqlite:///{tmp_path}/state.sqlite3").test_client()
    body, _ = scenario("003-dose-101-mg")
    (card,) = client.post(SERVICE, data=json.dumps(body), content_type="application/json").get_json()["cards"]
    offered = [(r["system"], r["code"]) for r in card["overrideReasons"]]
    ours = [code for system, code in offered if system == OVERRIDE_REASONS]
    hl7 = [code for system, code in offered if system == NON_ADHERENCE_REASONS]
    assert ours == ["benefit-outweighs-risk", "will-monitor", "already-addressed", "data-out-of-date", "not-applicable"]
    # the six categories and six key codes of HL7's clinical selection (ValueSet non-adherence-reason-clinical)
    assert len(hl7) == 12 and {"cds-not-applicable", "patient-contraindication", "patient-refuses"} <= set(hl7)
    assert len(offered) == len(ours) + len(hl7)
    assert all(r["display"] for r in card["overrideReasons"])


def test_both_kinds_of_reason_count_in_one_family(database_url):
    app = make_app(database_url)
    cards = []
    for name in ("003-dose-101-mg", "044-monitoring-on-therapy-count-due", "010-allergy-kineret-critical"):
        body, now = scenario(name)
        cards += [c["uuid"] for c in run_scenario(app, body, now) if c["indicator"] in ("warning", "critical")]
    assert len(cards) >= 3
    client = app.test_client()
    feedback = [overridden(cards[0], OVERRIDE_REASONS, "will-monitor", 5),  # ours: concerns about outcomes
                overridden(cards[1], NON_ADHERENCE_REASONS, "patient-contraindication", 4),  # HL7's: the same family
                overridden(cards[2], EARLIER_DRAFT, "cds-not-applicable", 3)]  # the earlier draft URL: read too
    response = client.post(SERVICE + "/feedback", json={"feedback": feedback})
    assert response.get_json() == {"received": 3, "stored": 3}

    stats = client.get(SERVICE + "/feedback/stats").get_json()
    families = Counter()
    for group in stats["byTopic"]:
        families.update(group["overrideReasonFamilies"])
    assert families == Counter({"recipient-concerns-outcomes": 2, "cds-not-applicable": 1})

    # the days the feedback's timestamps fall on (minutes ago: just after midnight, yesterday too)
    first, today = ((datetime.now(UTC) - timedelta(minutes=m)).date().isoformat() for m in (10, 0))
    report = client.get(f"/governance/report.json?from={first}&to={today}").get_json()
    counted = Counter()
    for rule in report["rules"]:
        counted.update({f["family"]: f["count"] for f in rule["overrideReasonFamilies"]})
        assert sum(f["count"] for f in rule["overrideReasonFamilies"]) == rule["overridden"]
    assert counted == Counter({"recipient-concerns-outcomes": 2, "cds-not-applicable": 1})
    page = client.get(f"/governance/?from={first}&to={today}").get_data(as_text=True)
    assert "Recipient has concerns regarding potential health outcomes" in page
