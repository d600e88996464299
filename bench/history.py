"""A generated history of CDS calls and feedback, for the governance view's tests, ``make demo-governance`` and
``make bench``: seeded, so the same arguments give the same history.

The rules are the real ones: each (topic, indicator) the golden scenarios' expected cards carry
(``fixtures/scenarios/*.expected.json``), for the shipped drug. Each rule gets a volume and a propensity to be
overridden (some are mostly noise, some mostly followed), and preferred override reasons from the knowledge's
override-reason CodeSystem. Calls give one to three cards at one instant, on the three service ids (the
deprecated one rarely); weekdays are busier than weekends. Some cards are shown again later on the same order
(same uuid: the store keeps the last time), some get two feedback items, some overrides carry only a comment, and
a few feedback items name cards the store never issued.

``load(store, history)`` writes it through the store: the cards with the backend's own insert at their
generated times, in batches, the feedback with ``Store.record`` (so each item gets its rule as the service would).
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "fixtures" / "scenarios"
REASONS_FILE = ROOT / "fhirsvc" / "knowledge" / "data" / "CodeSystem-cds-override-reasons.json"
DRUG = "anakinra"
SERVICES = (("medication-safety-order-select", 0.6), ("medication-safety-order-sign", 0.36),
            ("medication-safety", 0.04))


@dataclass(frozen=True)
class Rule:
    topic: str
    indicator: str
    drug: str


@dataclass(frozen=True)
class Show:
    """One card shown at one instant (a card shown again later is a second Show with the same uuid)."""

    service: str
    card: str
    rule: Rule
    at: datetime


@dataclass(frozen=True)
class Feedback:
    service: str
    card: str
    outcome: str
    at: datetime
    reason: tuple[str, str, str] | None  # system, code, display
    comment: str | None


@dataclass
class History:
    shows: list[Show]  # in time order
    feedback: list[Feedback]
    rules: list[Rule]

    def issued(self) -> dict[tuple[str, str], Show]:
        """What the store keeps: per (service, card), the last show."""
        last: dict[tuple[str, str], Show] = {}
        for show in self.shows:
            last[(show.service, show.card)] = show
        return last


def scenario_rules(drug: str = DRUG) -> list[Rule]:
    """The (topic, indicator) pairs of the golden scenarios' expected cards, sorted."""
    pairs = set()
    for path in SCENARIOS.glob("*.expected.json"):
        for card in json.loads(path.read_text(encoding="utf-8")).get("cards", ()):
            pairs.add((card["topic"], card["indicator"]))
    return [Rule(topic, indicator, drug) for topic, indicator in sorted(pairs)]


def override_reasons() -> list[tuple[str, str, str]]:
    system = json.loads(REASONS_FILE.read_text(encoding="utf-8"))
    return [(system["url"], concept["code"], concept["display"]) for concept in system["concept"]]


def generate(seed: int, cards: int, feedback: int, start: datetime, end: datetime) -> History:
    """About ``cards`` card shows between ``start`` and ``end`` and about ``feedback`` feedback items."""
    rng = random.Random(seed)
    rules = scenario_rules()
    reasons = override_reasons()
    volume = {rule: rng.lognormvariate(0, 1.0) for rule in rules}  # some rules fire far more than others
    override = {rule: rng.choice((0.97, 0.92, 0.85, 0.7, 0.5, 0.3, 0.15)) for rule in rules}
    preferred = {rule: rng.sample(reasons, k=min(3, len(reasons))) for rule in rules}
    services, service_weights = zip(*SERVICES, strict=True)
    span = (end - start).total_seconds()
    shows: list[Show] = []
    while len(shows) < cards:
        at = start + timedelta(seconds=rng.random() * span)
        if at.weekday() >= 5 and rng.random() < 0.6:  # quieter weekends
            continue
        service = rng.choices(services, service_weights)[0]
        for rule in rng.choices(rules, [volume[r] for r in rules], k=rng.choice((1, 1, 1, 2, 2, 3))):
            card = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            shows.append(Show(service, card, rule, at.replace(microsecond=at.microsecond // 1000 * 1000)))
    shows = shows[:cards]
    # some cards shown again later on the same order: same uuid, the later time is kept
    for show in rng.sample(shows, k=len(shows) // 20):
        again = show.at + timedelta(minutes=rng.randint(1, 60 * 24 * 3))
        if again < end:
            shows.append(Show(show.service, show.card, show.rule, again))
    shows.sort(key=lambda s: s.at)
    items: list[Feedback] = []
    issued = list({(s.service, s.card): s for s in shows}.values())
    for show in rng.sample(issued, k=min(len(issued), feedback * 95 // 100)):
        items.extend(_feedback(rng, show, override[show.rule], preferred[show.rule], end))
    for _ in range(feedback - len(items)):  # cards this store never issued
        at = start + timedelta(seconds=rng.random() * span)
        items.append(Feedback(rng.choices(services, service_weights)[0], f"unknown-{rng.getrandbits(64):x}",
                              "overridden", at, None, "card from another system"))
    return History(shows, items[:max(feedback, 0)], rules)


def _feedback(rng: random.Random, show: Show, override: float, reasons: list, end: datetime) -> Iterator[Feedback]:
    at = show.at + timedelta(seconds=rng.randint(2, 600))
    for n in range(2 if rng.random() < 0.05 else 1):
        moment = at + timedelta(minutes=5 * n)
        if rng.random() < override:
            roll = rng.random()
            if roll < 0.1:  # a comment only
                yield Feedback(show.service, show.card, "overridden", moment, None, "see note")
            else:
                reason = reasons[0] if roll < 0.6 else reasons[1] if roll < 0.85 else reasons[-1]
                yield Feedback(show.service, show.card, "overridden", moment, reason, None)
        else:
            yield Feedback(show.service, show.card, "accepted", moment, None, None)


def load(store, history: History, batch: int = 500) -> None:
    """Write the history into ``store`` (a ``fhirsvc.storage.Store``)."""
    from fhirsvc.storage.base import FeedbackItem, IssuedCard

    def remember(batch: list[Show]) -> None:
        """Cards at their generated times, with the backend's own insert (what the note writer calls); it waits
        little for a connection, so a busy machine gets a few tries."""
        rows = [(s.service, IssuedCard(s.card, s.rule.topic, s.rule.indicator, "[]", s.rule.drug), s.at)
                for s in batch]
        for attempt in range(20):
            try:
                store._db_remember_cards(rows, None)
                return
            except store.database_errors:
                if attempt == 19:
                    raise
                time.sleep(0.05)

    store.health()  # opens the connections
    shows: list[Show] = []
    keys: set[tuple[str, str]] = set()
    for show in history.shows:  # in time order; a card shown again goes to a later batch, so the later time wins
        if len(shows) >= 2000 or (show.service, show.card) in keys:
            remember(shows)
            shows, keys = [], set()
        shows.append(show)
        keys.add((show.service, show.card))
    if shows:
        remember(shows)
    by_service: dict[str, list[Feedback]] = {}
    for item in history.feedback:
        by_service.setdefault(item.service, []).append(item)
    for service, items in by_service.items():
        for first in range(0, len(items), batch):
            store.record(service, [FeedbackItem(
                card=i.card, outcome=i.outcome, outcome_timestamp=i.at,
                accepted_suggestions=("suggestion",) if i.outcome == "accepted" else (),
                override_system=i.reason[0] if i.reason else None, override_code=i.reason[1] if i.reason else None,
                override_display=i.reason[2] if i.reason else None, user_comment=i.comment)
                for i in items[first:first + batch]])


def default_window(days: int = 30, now: datetime | None = None) -> tuple[datetime, datetime]:
    """The last ``days`` days up to now (UTC)."""
    end = (now or datetime.now(UTC)).replace(microsecond=0)
    return end - timedelta(days=days), end
