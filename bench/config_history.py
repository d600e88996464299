"""A history of anakinra orders before and after a site configuration change, for ``make demo-governance``, ``make
bench`` and the tests: seeded, so the same arguments give the same history.

The cards are the real ones: every golden scenario of an order hook (``fixtures/scenarios/``) is evaluated by the
service's own pipeline (``evaluate_offline``) under each configuration, the one in force before the change
(``BEFORE``: nothing changed, a version of its own) and the one after (the shipped example,
``docs/examples/site-config.json``). Each week, ``orders`` orders are drawn from those scenarios (the same draws
before and after), and each order gets the cards its scenario got under the configuration of its week: the judged
order with its number of cards, each card with its rule and indicator. Feedback is generated per rule (how often
prescribers override it: ``OVERRIDE``), as ``bench/history.py`` does. Nothing here is a measured clinical fact.

``load(store, history)`` writes the cards and orders at their generated times with the backend's own insert, the two
configuration versions with their first-seen times (the change), and the feedback with ``Store.record``.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "fixtures" / "scenarios"
EXAMPLE = ROOT / "docs" / "examples" / "site-config.json"
BEFORE = {"version": "before-committee", "rules": {}}
SERVICE = "medication-safety-order-sign"
OVERRIDE = {"info": 0.9, "warning": 0.6, "critical": 0.2}  # generated share of overrides per indicator
SENIORS_OVERRIDE = 0.94  # the seniors' info card: the committee's example of noise


@dataclass(frozen=True)
class Outcome:
    """What one scenario's order got under one configuration: its cards (rule, topic, indicator)."""

    cards: tuple[tuple[str, str, str], ...]


@dataclass(frozen=True)
class Order:
    at: datetime
    version: str
    cards: tuple[tuple[str, str, str], ...]


@dataclass
class ConfigHistory:
    orders: list[Order]
    change: datetime
    versions: dict[str, dict[str, Any]]  # version -> configuration document


def _outcomes(site_document: dict[str, Any], knowledge) -> list[Outcome]:
    """Each single-order anakinra scenario's cards under the configuration ``site_document``."""
    from fhirsvc.evaluation.offline import evaluate_offline
    from fhirsvc.knowledge.site import parse_site_config

    problems: list[str] = []
    site = parse_site_config(site_document, knowledge, problems)
    assert not problems, problems
    found = []
    for request in sorted(SCENARIOS.glob("*.request.json")):
        body = json.loads(request.read_text(encoding="utf-8"))
        if body.get("hook") not in ("order-select", "order-sign"):
            continue
        expected = json.loads(request.with_name(request.name.replace(".request", ".expected")).read_text())
        result = evaluate_offline(body, knowledge, now=datetime.fromisoformat(expected["now"]), site=site)
        evaluation = result.evaluation
        if evaluation is None or len(evaluation.drug_orders) != 1:
            continue  # one judged anakinra order: its cards are the order's
        found.append(Outcome(tuple((f.rule, f.topic, f.indicator) for f in evaluation.findings)))
    return found


def generate(knowledge, seed: int = 2026, weeks: int = 8, change_week: int = 4, orders: int = 150,
             end: datetime | None = None) -> ConfigHistory:
    """``weeks`` ISO weeks of ``orders`` orders each, ending with the week of ``end``; the configuration changes at
    the start of week ``change_week``."""
    rng = random.Random(seed)
    after = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    outcomes = {BEFORE["version"]: _outcomes(BEFORE, knowledge), after["version"]: _outcomes(after, knowledge)}
    end = (end or datetime.now(UTC)).replace(microsecond=0)
    monday = datetime.combine((end - timedelta(weeks=weeks - 1)).date(), datetime.min.time(), UTC)
    monday -= timedelta(days=monday.weekday())
    change = monday + timedelta(weeks=change_week)
    history: list[Order] = []
    for week in range(weeks):
        start = monday + timedelta(weeks=week)
        version = BEFORE["version"] if start < change else after["version"]
        for _ in range(orders):
            at = start + timedelta(seconds=rng.random() * 7 * 86400)
            pick = rng.randrange(len(outcomes[version]))
            if at < end:
                history.append(Order(at.replace(microsecond=0), version, outcomes[version][pick].cards))
    return ConfigHistory(sorted(history, key=lambda o: o.at), change,
                         {BEFORE["version"]: BEFORE, after["version"]: after})


def load(store, history: ConfigHistory, seed: int = 2026) -> None:
    """Write the history into ``store``: cards and judged orders at their times, the versions with their first-seen
    times, generated feedback on the cards."""
    from fhirsvc.storage.base import ConfigVersion, FeedbackItem, IssuedCard, JudgedOrder

    rng = random.Random(seed)
    cards, orders, feedback = [], [], []
    for order in history.orders:
        key = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        orders.append((SERVICE, JudgedOrder(key, "anakinra", len(order.cards)), order.version, order.at))
        for rule, topic, indicator in order.cards:
            card = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            cards.append((SERVICE, IssuedCard(card, topic, indicator, "[]", "anakinra", rule, order.version),
                          order.at))
            share = SENIORS_OVERRIDE if rule.endswith("-seniors") else OVERRIDE[indicator]
            if rng.random() < 0.4:  # feedback on some cards
                overridden = rng.random() < share
                feedback.append(FeedbackItem(card, "overridden" if overridden else "accepted",
                                             order.at + timedelta(seconds=rng.randint(5, 300)),
                                             () if overridden else ("suggestion",)))
    store.health()
    for first in range(0, max(len(cards), len(orders)), 2000):
        store._db_remember_cards(cards[first:first + 2000], None, orders[first:first + 2000])
    first_seen = {BEFORE["version"]: history.orders[0].at if history.orders else history.change}
    for version, document in history.versions.items():
        text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        store._db_config_seen(ConfigVersion(version, hashlib.sha256(text.encode()).hexdigest(),
                                            first_seen.get(version, history.change), text))
    for first in range(0, len(feedback), 500):
        store.record(SERVICE, feedback[first:first + 500])


def cards_per_order(history: ConfigHistory) -> dict[str, dict[str, float]]:
    """Cards per order before and after the change, from the history itself (mean, p90 by nearest rank)."""
    found = {}
    for version in history.versions:
        counts = sorted(len(o.cards) for o in history.orders if o.version == version)
        if counts:
            found[version] = {"orders": len(counts), "mean": sum(counts) / len(counts),
                              "p90": counts[math.ceil(0.9 * len(counts)) - 1]}
    return found
