"""What the governance view says to change: cards per order, the rules to review, and the effect of a site
configuration change. Arithmetic on the store's counts (``Governance.rules``, ``.orders``, ``.versions``, aggregated
in SQL from the stored rows), never on totals a caller sends.

- **Cards per order**: of each judged order of a drug of the knowledge (its latest judgement), how many cards the
  answer held about it; the mean and the 90th percentile (nearest rank) over the orders of the period, overall and
  per site configuration version.
- **Rules to review** (per rule id): an override rate at or above the flag over enough feedback; or a last week
  whose firing rate falls outside the rule's control limits. The control chart is a **u-chart** (statistical
  process control for counts per unit of opportunity): per ISO week, u = cards of the rule / orders judged of its
  drug; the centre line ū is the pooled rate of the baseline weeks (every full week of the period before the last
  week, at least ``MIN_BASELINE_WEEKS`` of them, with orders), the limits ū ± 3·sqrt(ū / n) for the last week's n
  orders. Above the upper limit: fires far more than its baseline; below the lower limit (a rule that stopped
  firing is the extreme case): fires far less. The false-alarm rate is the chance that an in-control week (its
  count Poisson with mean ū·n) falls outside the limits: computed exactly from the Poisson distribution for each
  rule's last week (``false_alarm``), and said on the page with its total over the rules charted.
- **Configuration in force**: per rule, what the site configuration sets (switched off, indicator, adjustable
  values, reason) and since when, from the stored versions' first-seen times.
- **Effect of a change**: per site configuration version in force during the period, per rule the override rate,
  and per drug the cards per order; consecutive versions side by side ("before" and "after").
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from fhirsvc.knowledge import Knowledge
from fhirsvc.knowledge.site import RuleSettings, SiteConfig, adjustable, weakened
from fhirsvc.storage.base import ConfigVersion, OrderCount, RuleCount

MIN_BASELINE_WEEKS = 3
SIGMAS = 3.0
CONTROL_METHOD = ("u-chart: per ISO week, cards of the rule per order judged of its drug; centre line the pooled rate "
                  "of the earlier weeks of the period (at least 3 with orders), limits centre ± 3·sqrt(centre / orders "
                  "of the last week); the last week is judged")
NO_VERSION = "(none)"  # cards and orders noted without a site configuration


@dataclass(frozen=True)
class PerOrder:
    """Cards per judged order of one drug: how many orders, the mean and the 90th percentile (nearest rank)."""

    orders: int
    mean: float | None
    p90: int | None


def per_order(histogram: Mapping[int, int]) -> PerOrder:
    """Cards per order from a histogram (cards -> orders)."""
    orders = sum(histogram.values())
    if not orders:
        return PerOrder(0, None, None)
    mean = sum(cards * count for cards, count in histogram.items()) / orders
    rank, seen = math.ceil(0.9 * orders), 0
    for cards in sorted(histogram):
        seen += histogram[cards]
        if seen >= rank:
            return PerOrder(orders, mean, cards)
    raise AssertionError("unreachable: the ranks add up to the orders")


def week_of(day: date) -> date:
    return day - timedelta(days=day.weekday())


@dataclass
class RuleWeek:
    cards: int = 0
    orders: int = 0


@dataclass
class Chart:
    """One rule's u-chart over the period's weeks, judged on its last week."""

    rule: str
    drug: str | None
    weeks: dict[date, RuleWeek]
    centre: float | None = None  # ū of the baseline weeks
    lower: float | None = None  # limits for the last week
    upper: float | None = None
    last: date | None = None
    signal: str | None = None  # "above" | "below" | None
    false_alarm: float | None = None  # P(outside the limits | in control) for the last week


def _poisson_cdf(k: int, mean: float) -> float:
    """P(X <= k) for X ~ Poisson(mean), summed in log space (k bounded by the counts of one week)."""
    if k < 0:
        return 0.0
    total, log_term = 0.0, -mean
    for i in range(k + 1):
        if i:
            log_term += math.log(mean) - math.log(i)
        total += math.exp(log_term)
    return min(total, 1.0)


def false_alarm(centre: float, orders: int, lower: float, upper: float) -> float:
    """The chance that a week in control (cards ~ Poisson(centre * orders)) falls outside [lower, upper]·orders."""
    mean = centre * orders
    below = _poisson_cdf(math.ceil(lower * orders) - 1, mean) if lower > 0 else 0.0
    above = 1.0 - _poisson_cdf(math.floor(upper * orders), mean)
    return below + above


def chart(rule: str, drug: str | None, weeks: dict[date, RuleWeek], all_weeks: list[date]) -> Chart:
    """The u-chart of one rule over ``all_weeks`` (Mondays): the last is judged against the ones before it."""
    found = Chart(rule, drug, weeks)
    if len(all_weeks) < MIN_BASELINE_WEEKS + 1:
        return found
    last, baseline = all_weeks[-1], [w for w in all_weeks[:-1] if weeks.get(w, RuleWeek()).orders]
    now = weeks.get(last, RuleWeek())
    if len(baseline) < MIN_BASELINE_WEEKS or not now.orders:
        return found
    cards = sum(weeks[w].cards for w in baseline if w in weeks)
    orders = sum(weeks[w].orders for w in baseline)
    centre = cards / orders
    spread = SIGMAS * math.sqrt(centre / now.orders)
    found.centre, found.last = centre, last
    found.lower, found.upper = max(0.0, centre - spread), centre + spread
    rate = now.cards / now.orders
    found.signal = "above" if rate > found.upper else "below" if rate < found.lower else None
    found.false_alarm = false_alarm(centre, now.orders, found.lower, found.upper)
    return found


@dataclass(frozen=True)
class ToReview:
    rule: str
    why: str  # "override rate" | "fires far more" | "fires far less"
    detail: str


@dataclass
class RuleVersion:
    """One rule under one site configuration version: cards issued, accepted, overridden."""

    issued: int = 0
    accepted: int = 0
    overridden: int = 0

    @property
    def override_rate(self) -> float | None:
        feedback = self.accepted + self.overridden
        return self.overridden / feedback if feedback else None


@dataclass
class Review:
    per_order: dict[str, PerOrder]  # drug -> cards per order over the period
    per_order_by_version: dict[str, dict[str, PerOrder]]  # drug -> version -> cards per order
    charts: list[Chart]
    to_review: list[ToReview]
    by_version: dict[str, dict[str, RuleVersion]]  # rule -> version -> counts
    versions: list[ConfigVersion]
    version_order: list[str] = field(default_factory=list)  # versions in force in the period, by first seen

    @property
    def charted(self) -> list[Chart]:
        return [c for c in self.charts if c.false_alarm is not None]

    @property
    def false_alarm_any(self) -> float | None:
        """The chance that at least one charted rule is flagged in a week where none changed (independent rules)."""
        charted = self.charted
        if not charted:
            return None
        stay = 1.0
        for found in charted:
            stay *= 1.0 - (found.false_alarm or 0.0)
        return 1.0 - stay

    @property
    def false_alarm_mean(self) -> float | None:
        charted = self.charted
        return sum(c.false_alarm or 0.0 for c in charted) / len(charted) if charted else None


def build_review(rules: Iterable[RuleCount], orders: Iterable[OrderCount], versions: list[ConfigVersion],
                 weeks: list[date], flag_rate: float, flag_min: int) -> Review:
    """The review of a period whose ISO weeks start on ``weeks`` (Mondays), from the store's counts."""
    histograms: dict[str, dict[int, int]] = {}
    by_version_orders: dict[str, dict[str, dict[int, int]]] = {}
    orders_per_week: dict[str, dict[date, int]] = {}
    for row in orders:
        overall = histograms.setdefault(row.drug, {})
        overall[row.cards] = overall.get(row.cards, 0) + row.orders
        hist = by_version_orders.setdefault(row.drug, {}).setdefault(row.site_config or NO_VERSION, {})
        hist[row.cards] = hist.get(row.cards, 0) + row.orders
        judged = orders_per_week.setdefault(row.drug, {})
        judged[week_of(row.day)] = judged.get(week_of(row.day), 0) + row.orders
    per_rule: dict[tuple[str, str | None], dict[date, RuleWeek]] = {}
    by_version: dict[str, dict[str, RuleVersion]] = {}
    for count in rules:
        tally = by_version.setdefault(count.rule, {}).setdefault(count.site_config or NO_VERSION, RuleVersion())
        setattr(tally, count.kind, getattr(tally, count.kind) + count.count)
        if count.kind == "issued":
            fired = per_rule.setdefault((count.rule, count.drug), {}).setdefault(week_of(count.day), RuleWeek())
            fired.cards += count.count
    charts = []
    for (rule, drug), rule_weeks in sorted(per_rule.items(), key=lambda item: item[0][0]):
        for monday, judged_orders in orders_per_week.get(drug or "", {}).items():
            rule_weeks.setdefault(monday, RuleWeek()).orders = judged_orders
        charts.append(chart(rule, drug, rule_weeks, weeks))
    to_review = _flagged_overrides(by_version, flag_rate, flag_min) + [
        ToReview(c.rule, "fires far more" if c.signal == "above" else "fires far less",
                 f"week of {c.last}: {c.weeks[c.last].cards} cards on {c.weeks[c.last].orders} orders "  # type: ignore[index]
                 f"({c.weeks[c.last].cards / c.weeks[c.last].orders:.3f} per order); "  # type: ignore[index]
                 f"baseline {c.centre:.3f}, limits {c.lower:.3f} to {c.upper:.3f}")
        for c in charts if c.signal]
    in_force = {v for rule in by_version.values() for v in rule} | {
        v for drug in by_version_orders.values() for v in drug}
    order = [v.version for v in versions if v.version in in_force]
    order = list(dict.fromkeys([*([NO_VERSION] if NO_VERSION in in_force else []), *order,
                                *sorted(in_force - set(order) - {NO_VERSION})]))
    return Review({drug: per_order(h) for drug, h in histograms.items()},
                  {drug: {v: per_order(h) for v, h in hists.items()} for drug, hists in by_version_orders.items()},
                  charts, to_review, by_version, versions, order)


def _flagged_overrides(by_version: Mapping[str, Mapping[str, RuleVersion]], flag_rate: float,
                       flag_min: int) -> list[ToReview]:
    found = []
    for rule, versions in sorted(by_version.items()):
        accepted = sum(v.accepted for v in versions.values())
        overridden = sum(v.overridden for v in versions.values())
        feedback = accepted + overridden
        if feedback >= flag_min and overridden / feedback >= flag_rate:
            found.append(ToReview(rule, "override rate",
                                  f"{overridden} of {feedback} feedback items overridden "
                                  f"({overridden / feedback * 100:.0f} %, flag at {flag_rate * 100:.0f} % over "
                                  f"{flag_min} or more)"))
    return found


@dataclass(frozen=True)
class RuleInForce:
    """One rule as the site configuration in force sets it, and since when (the first-seen time of the earliest
    version from which its entry has not changed)."""

    rule: str
    enabled: bool
    indicator: str
    default_indicator: str
    values: tuple[tuple[str, int, int, str], ...]  # code, value in force, default, unit
    reason: str | None
    weakened: bool
    never_weaken: bool
    changed: bool  # the site sets something for it
    since: datetime | None  # None: never recorded (no version stored yet)


def configuration_in_force(knowledge: Knowledge, site: SiteConfig,
                           versions: list[ConfigVersion]) -> list[RuleInForce]:
    """Every rule with the settings in force (the site's, else the knowledge's defaults), and since when its entry
    has been as it is, from the stored versions (by first-seen time)."""
    found = []
    history = sorted(versions, key=lambda v: v.first_seen)
    for rule_id, declared in adjustable(knowledge).items():
        rule, entry = declared.rule, site.rules.get(rule_id)
        settings = entry or RuleSettings()
        values = tuple((s.code, settings.values.get(s.code, s.default), s.default, s.unit) for s in declared.settings)
        raw = (site.document.get("rules") or {}).get(rule_id) if site.version else None
        found.append(RuleInForce(
            rule_id, settings.enabled, settings.indicator or rule.indicator, rule.indicator, values, settings.reason,
            weakened(rule, settings), declared.never_weaken, raw is not None, _since(history, rule_id, raw)))
    return found


def _since(history: list[ConfigVersion], rule_id: str, entry: Any) -> datetime | None:
    """The first-seen time of the earliest stored version from which the rule's entry equals ``entry`` without a
    break (the versions in first-seen order)."""
    since = None
    for version in history:
        try:
            rules = json.loads(version.settings).get("rules") or {}
        except (ValueError, AttributeError):
            rules = {}
        since = (since or version.first_seen) if rules.get(rule_id) == entry else None
    return since
