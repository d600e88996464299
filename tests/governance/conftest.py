"""The governance view's fixtures: a generated history (bench/history.py) in a store, and what the store must say
about it, computed here in plain Python from the generated cards and feedback (the oracle)."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from bench.history import History

# A fixed history: 4,000 card shows and 1,500 feedback items over 45 days before END.
END = datetime(2026, 11, 30, 18, 0, tzinfo=UTC)
START = END - timedelta(days=45)
SEED = 15


@dataclass
class Expected:
    issued: int = 0
    with_feedback: int = 0
    accepted: int = 0
    overridden: int = 0
    reasons: Counter = field(default_factory=Counter)  # override code (None: no code) -> items
    weeks: dict = field(default_factory=lambda: defaultdict(Counter))  # Monday -> counts

    @property
    def feedback(self) -> int:
        return self.accepted + self.overridden

    @property
    def rate(self) -> float | None:
        return self.overridden / self.feedback if self.feedback else None


def monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def expected(history: History, first: date, last: date, service: str | None = None):
    """Per rule (topic, indicator, drug): what the report must show for [first, last] (UTC days), counting of the
    items of one card only the latest (they all come from one reporter); and the items on cards never issued (not
    stored: counted on the day they were received, whatever their outcomeTimestamp)."""
    start = datetime.combine(first, time(), UTC)
    end = datetime.combine(last + timedelta(days=1), time(), UTC)
    issued = history.issued()
    fed = {(item.service, item.card) for item in history.feedback}
    rules: dict[tuple, Expected] = defaultdict(Expected)
    for (svc, card), show in issued.items():
        if (service is None or svc == service) and start <= show.at < end:
            rule = rules[(show.rule.topic, show.rule.indicator, show.rule.drug)]
            rule.issued += 1
            rule.with_feedback += (svc, card) in fed
            rule.weeks[monday(show.at.date())]["issued"] += 1
    latest: dict[tuple[str, str], tuple] = {}
    not_issued = 0
    for n, item in enumerate(history.feedback):
        if service is not None and item.service != service:
            continue
        if (item.service, item.card) not in issued:
            not_issued += 1
            continue
        key = (item.service, item.card)
        if key not in latest or (item.at, n) >= (latest[key][0].at, latest[key][1]):
            latest[key] = (item, n)
    for item, _ in latest.values():
        if not start <= item.at < end:
            continue
        show = issued[(item.service, item.card)]
        rule = rules[(show.rule.topic, show.rule.indicator, show.rule.drug)]
        setattr(rule, item.outcome, getattr(rule, item.outcome) + 1)
        rule.weeks[monday(item.at.date())][item.outcome] += 1
        if item.outcome == "overridden":
            rule.reasons[item.reason[1] if item.reason else None] += 1
    return dict(rules), not_issued
