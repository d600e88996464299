"""Site configuration (FHIRSVC_SITE_CONFIG): the shipped example loads and changes the cards as it says; every kind
of mistake stops start-up with a message naming it, through the real command-line process (``fhirsvc check`` and
``fhirsvc serve``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from datetime import timedelta

import pytest

from fhirsvc import create_app
from fhirsvc.knowledge.site import load_site_config
from tests.cds.test_call_configuration import scenario
from tests.cds.test_scenarios import run_scenario
from tests.conftest import ROOT

EXAMPLE = ROOT / "docs" / "examples" / "site-config.json"
REQUEST = ROOT / "fixtures" / "scenarios" / "001-clean-ra-adult-no-cards.request.json"


def make_app(tmp_path, site_config: str = ""):
    return create_app({"TESTING": True, "KNOWLEDGE_PATH": "", "AUTH": "off", "SITE_CONFIG": site_config,
                       "DATABASE_URL": f"sqlite:///{tmp_path / 'state.sqlite3'}",
                       "PUBLIC_BASE_URL": "https://cds.example.org"})


def rules_of(cards: list[dict]) -> Counter:
    return Counter((card["extension"]["fhirsvc.rule"], card["indicator"]) for card in cards)


def test_the_shipped_example_loads_and_changes_the_cards(tmp_path, knowledge):
    site = load_site_config(EXAMPLE, knowledge)
    assert site.version == json.loads(EXAMPLE.read_text())["version"]
    plain, configured = make_app(tmp_path / "a"), make_app(tmp_path / "b", str(EXAMPLE))
    # switched off: the seniors' info card (#11) of a 65-year-old
    body, now = scenario("035-age-65")
    assert ("anakinra-seniors", "info") in rules_of(run_scenario(plain, body, now))
    assert not any(rule == "anakinra-seniors" for rule, _ in rules_of(run_scenario(configured, body, now)))
    # another indicator: breastfeeding (#16) info -> warning
    body, now = scenario("048-breastfeeding")
    assert rules_of(run_scenario(plain, body, now)) == Counter({("anakinra-breastfeeding", "info"): 1})
    cards = run_scenario(configured, body, now)
    assert rules_of(cards) == Counter({("anakinra-breastfeeding", "warning"): 1})
    assert all(card["extension"]["fhirsvc.site-config"] == site.version for card in cards)
    # an adjustable window: kidney results may be 270 days old, not 180: the card says the window in force
    body, now = scenario("031-renal-no-result-180-days")
    (default,) = [c for c in run_scenario(plain, body, now)
                  if c["extension"]["fhirsvc.rule"] == "anakinra-kidney-dosing"]
    assert "180 days" in default["summary"] + default["detail"]
    for card in run_scenario(configured, body, now):
        assert "180 days" not in card["summary"] + card["detail"]
    assert configured.test_client().get("/healthz").get_json()["siteConfig"]["version"] == site.version
    assert plain.test_client().get("/healthz").get_json()["siteConfig"] == {"version": None}


def test_a_result_outside_the_default_window_but_inside_the_sites_is_used(tmp_path, knowledge):
    """The kidney window read from the site: a creatinine clearance of 29 mL/min 200 days old is too old under the
    default 180 days ("no recent result"), and gives the dosing warning under the example's 270."""
    body, now = scenario("027-renal-crcl-29")
    for entry in body["prefetch"]["observations"]["entry"]:
        if "effectiveDateTime" in entry["resource"]:
            entry["resource"]["effectiveDateTime"] = (now - timedelta(days=200)).date().isoformat()
    plain = [c for c in run_scenario(make_app(tmp_path / "a"), body, now)
             if c["extension"]["fhirsvc.rule"] == "anakinra-kidney-dosing"]
    configured = [c for c in run_scenario(make_app(tmp_path / "b", str(EXAMPLE)), body, now)
                  if c["extension"]["fhirsvc.rule"] == "anakinra-kidney-dosing"]
    assert [c["indicator"] for c in plain] == ["info"] and "180 days" in plain[0]["summary"] + plain[0]["detail"]
    assert [c["indicator"] for c in configured] == ["warning"]  # the dosing warning: CrCl 29 read


MISTAKES = [
    (None, "cannot read the file"),
    ("{not json", "not valid JSON"),
    ([], "must hold a JSON object"),
    ({"rules": {}}, "version: required"),
    ({"version": "x", "rules": {}, "extra": 1}, "extra: unknown key"),
    ({"version": "x", "rules": {"anakinra-nonesuch": {}}}, "rules.anakinra-nonesuch: no such rule"),
    ({"version": "x", "rules": {"anakinra-seniors": {"age": 70}}}, "rules.anakinra-seniors.age: no such setting"),
    ({"version": "x", "rules": {"anakinra-kidney-dosing": {"kidney-result-max-age-days": 400}}},
     "rules.anakinra-kidney-dosing.kidney-result-max-age-days: 400 is out of range (30 to 365 days)"),
    ({"version": "x", "rules": {"anakinra-kidney-dosing": {"kidney-result-max-age-days": "90"}}},
     "rules.anakinra-kidney-dosing.kidney-result-max-age-days: must be a whole number"),
    ({"version": "x", "rules": {"anakinra-active-infection": {"fever-window-hours": True}}},
     "rules.anakinra-active-infection.fever-window-hours: must be a whole number"),
    ({"version": "x", "rules": {"anakinra-seniors": {"enabled": "no"}}}, "rules.anakinra-seniors.enabled: must be"),
    ({"version": "x", "rules": {"anakinra-seniors": {"indicator": "loud"}}},
     "rules.anakinra-seniors.indicator: must be one of info, warning, critical"),
    ({"version": "x", "rules": {"anakinra-allergy": {"enabled": False}}},
     "rules.anakinra-allergy.enabled: this rule is never to be weakened"),
    ({"version": "x", "rules": {"anakinra-live-vaccine": {"indicator": "warning"}}},
     "rules.anakinra-live-vaccine.indicator: this rule is never to be weakened: warning below its critical"),
]


def write(tmp_path, content) -> str:
    path = tmp_path / "site.json"
    if content is None:
        return str(tmp_path / "missing.json")
    path.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")
    return str(path)


def run_cli(args: list[str], site_config: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "FHIRSVC_SITE_CONFIG": site_config, "FHIRSVC_KNOWLEDGE_PATH": "", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "fhirsvc.cli", *args], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize(("content", "message"), MISTAKES, ids=[m for _, m in MISTAKES])
def test_every_kind_of_mistake_stops_fhirsvc_check_naming_it(tmp_path, content, message):
    done = run_cli(["check", str(REQUEST)], write(tmp_path, content))
    assert done.returncode == 2, done.stdout
    assert message in done.stderr
    assert "FHIRSVC_SITE_CONFIG" in done.stderr


def test_all_mistakes_are_named_at_once_and_fhirsvc_serve_does_not_start(tmp_path):
    content = {"version": "x", "rules": {"anakinra-nonesuch": {}, "anakinra-seniors": {"indicator": "loud"},
                                         "anakinra-allergy": {"enabled": False}}}
    env_db = f"sqlite:///{tmp_path / 'state.sqlite3'}"
    path = write(tmp_path, content)
    done = subprocess.run([sys.executable, "-m", "fhirsvc.cli", "serve", "--port", "0"], cwd=ROOT, timeout=120,
                          capture_output=True, text=True,
                          env={**os.environ, "FHIRSVC_SITE_CONFIG": path, "FHIRSVC_KNOWLEDGE_PATH": "",
                               "FHIRSVC_AUTH": "off", "FHIRSVC_DATABASE_URL": env_db, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 1
    for named in ("rules.anakinra-nonesuch", "rules.anakinra-seniors.indicator", "rules.anakinra-allergy.enabled"):
        assert named in done.stderr


def test_weakening_with_a_reason_is_accepted(tmp_path):
    content = {"version": "x", "rules": {"anakinra-allergy": {"indicator": "warning",
                                                              "reason": "allergy clinic runs its own check"}}}
    done = run_cli(["check", str(REQUEST)], write(tmp_path, content))
    assert done.returncode == 0, done.stderr


def test_check_orders_answers_under_the_site_configuration(tmp_path):
    """$check-orders evaluates with the site configuration too: the seniors' issue of a 86-year-old is gone."""
    from tests.fhir.test_check_orders import bundle, issue_pair, issues, order

    elderly = {"resourceType": "Patient", "id": "p1", "birthDate": "1940-05-01", "gender": "female"}
    posted = bundle(order(dose=100), elderly)
    found = {}
    for name, site_config in (("plain", ""), ("site", str(EXAMPLE))):
        response = make_app(tmp_path / name, site_config).test_client().post("/fhir/R4/$check-orders", json=posted)
        assert response.status_code == 200
        found[name] = {issue_pair(issue)[0] for issue in issues(response.get_json())}
    assert "GEALRT" in found["plain"] and "GEALRT" not in found["site"]
