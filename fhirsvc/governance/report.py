"""The governance report: which rules help and which are noise, over a period.

A rule is what tells cards apart: its rule id (docs/cds-checks.md, "Rules and their identity"), with its topic,
indicator and drug; cards noted before rule ids are told apart by topic + indicator + drug alone. For each rule,
over the period [from, to] (whole UTC days, both included):

- **cards issued**: cards last noted in the period (a card shown again, e.g. at every order-select call on the same
  order, has the same uuid and counts once, on the day it was last noted: at most once an hour per worker);
- **with feedback**: of those cards, how many got any feedback (whenever it came); the share is of the cards issued;
- **accepted**, **overridden**: the feedback items with an outcomeTimestamp in the period;
- **override rate**: overridden / (accepted + overridden); none without feedback;
- **override reasons**: the overridden items per reason code (items without a code: "no reason coded"), and per
  reason family: the service's codes and HL7's non-adherence reasons (CDS Hooks 3.0 ballot) mapped by the knowledge's
  ConceptMap ``override-reason-families`` to HL7's six categories, so both count in one number per family;
- **weekly**: the same numbers per ISO week (Monday to Sunday, UTC), the first and last week cut to the period;
- **flag**: an override rate at or above ``GOVERNANCE_FLAG_OVERRIDE_RATE`` over at least
  ``GOVERNANCE_FLAG_MIN_FEEDBACK`` feedback items.

Rules are ranked by override rate (highest first; rules without feedback last), then by feedback items. The counts
come from ``Store.governance`` (the same feedback query as the feedback statistics); everything here is arithmetic
on them, so the page, the CSV, the JSON and ``fhirsvc governance`` say the same.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import IO, Any

from fhirsvc.checks.config import TOPICS
from fhirsvc.escaping import csv_cell, plain_text
from fhirsvc.evaluation.cards import override_reasons
from fhirsvc.evaluation.reasons import families as reason_families
from fhirsvc.evaluation.services import LEGACY_SERVICE_ID
from fhirsvc.evaluation.services import services as declared_services
from fhirsvc.governance.review import (
    CONTROL_METHOD,
    MIN_BASELINE_WEEKS,
    SIGMAS,
    PerOrder,
    Review,
    RuleInForce,
    build_review,
    configuration_in_force,
)
from fhirsvc.knowledge import Knowledge
from fhirsvc.knowledge.site import NO_SITE_CONFIG, SiteConfig
from fhirsvc.storage.base import Governance, Store

DEFAULT_DAYS = 30
MAX_DAYS = 366
TOP_REASONS = 3
NO_REASON = "no reason coded"
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


class BadParameter(ValueError):
    """A parameter of the report cannot be used; the message says which and why (answered 400)."""


@dataclass(frozen=True)
class Period:
    first: date  # both days included, UTC
    last: date

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first, time(), UTC)

    @property
    def end(self) -> datetime:
        """The instant after the period: midnight UTC after its last day."""
        return datetime.combine(self.last + timedelta(days=1), time(), UTC)

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    def weeks(self) -> list[date]:
        """The Monday of each ISO week the period touches."""
        monday = self.first - timedelta(days=self.first.weekday())
        return [monday + timedelta(weeks=n) for n in range((self.last - monday).days // 7 + 1)]


def _day(name: str, text: str) -> date:
    if not _DAY.fullmatch(text):
        raise BadParameter(f"{name}={text!r} is not a date of the form YYYY-MM-DD (e.g. 2026-11-01)")
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise BadParameter(f"{name}={text!r} is not a calendar date") from None
    if day.year < 2000 or day >= date.max:
        raise BadParameter(f"{name}={text!r} is out of range (years 2000 to 9999)")
    return day


def parse_period(from_text: str | None, to_text: str | None, today: date) -> Period:
    """The period of ``from``/``to`` (YYYY-MM-DD, both included); defaults: to today, from 29 days before ``to``.
    BadParameter naming the parameter and the reason."""
    last = _day("to", to_text) if to_text else today
    first = _day("from", from_text) if from_text else last - timedelta(days=DEFAULT_DAYS - 1)
    if first > last:
        raise BadParameter(f"from={first.isoformat()} is after to={last.isoformat()}")
    if (last - first).days + 1 > MAX_DAYS:
        raise BadParameter(f"the period from {first.isoformat()} to {last.isoformat()} is "
                           f"{(last - first).days + 1} days; at most {MAX_DAYS} days at a time")
    return Period(first, last)


def services(knowledge: Knowledge) -> list[tuple[str, str]]:
    """The service ids a report can be limited to (the service table's), with how the form names them."""
    return [(s.id, f"{s.id} ({s.hook})") for s in declared_services(knowledge)] + [
        (LEGACY_SERVICE_ID, f"{LEGACY_SERVICE_ID} (deprecated)")]


def parse_service(text: str | None, knowledge: Knowledge) -> str | None:
    """The service of ``service=`` (None: every service); BadParameter if this server has no such service."""
    if not text:
        return None
    known = [sid for sid, _ in services(knowledge)]
    if text not in known:
        raise BadParameter(f"service={text!r} is not a service of this server; use one of {', '.join(known)}, "
                           "or leave it out for every service")
    return text


@dataclass(frozen=True)
class Thresholds:
    override_rate: float  # flag at or above this share (0-1) ...
    min_feedback: int  # ... over at least this many feedback items

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Thresholds:
        return cls(float(config["GOVERNANCE_FLAG_OVERRIDE_RATE"]), int(config["GOVERNANCE_FLAG_MIN_FEEDBACK"]))


@dataclass
class Tally:
    issued: int = 0
    with_feedback: int = 0
    accepted: int = 0
    overridden: int = 0

    @property
    def feedback(self) -> int:
        return self.accepted + self.overridden

    @property
    def share_with_feedback(self) -> float | None:
        return self.with_feedback / self.issued if self.issued else None

    @property
    def override_rate(self) -> float | None:
        return self.overridden / self.feedback if self.feedback else None

    def add(self, other: Tally) -> None:
        self.issued += other.issued
        self.with_feedback += other.with_feedback
        self.accepted += other.accepted
        self.overridden += other.overridden


@dataclass(frozen=True)
class Reason:
    system: str | None
    code: str | None
    display: str
    count: int


@dataclass
class RuleReport:
    topic: str | None
    indicator: str | None
    drug: str | None
    topic_display: str
    drug_name: str
    total: Tally
    weeks: list[Tally]
    reasons: list[Reason] = field(default_factory=list)
    families: list[Reason] = field(default_factory=list)  # the overrides per reason family (ours and HL7's together)
    flagged: bool = False
    rank: int = 0
    rule: str | None = None  # the rule id; None for cards noted before rule ids

    @property
    def label(self) -> str:
        named = f" · {self.rule}" if self.rule else ""
        return f"{self.topic_display} · {self.indicator or 'no indicator'} · {self.drug_name}{named}"

    @property
    def short_label(self) -> str:
        """For the charts: topic code, indicator, drug."""
        return f"{self.topic or '?'} {self.indicator or '?'} · {self.drug_name}"

    @property
    def top_reasons(self) -> list[Reason]:
        return self.reasons[:TOP_REASONS]


@dataclass
class Report:
    period: Period
    service: str | None  # None: every service
    thresholds: Thresholds
    weeks: list[date]
    rules: list[RuleReport]
    total: Tally
    total_weeks: list[Tally]
    unknown_items: int  # feedback items on cards whose rule is unknown (not issued by this store, or pruned early)
    unknown_cards: int
    cards_kept_since: date  # issued cards older than this are no longer kept
    not_issued: int = 0  # feedback items received on cards not issued by this store (or no longer kept): not stored
    review: Review | None = None  # cards per order, rules to review, effect of configuration changes (review.py)
    site: SiteConfig = NO_SITE_CONFIG  # the site configuration in force
    in_force: list[RuleInForce] = field(default_factory=list)  # per rule: its settings in force and since when

    @property
    def site_changes(self) -> list[RuleInForce]:
        """The rules the site configuration changes (the others are as the knowledge says)."""
        return [rule for rule in self.in_force if rule.changed]

    @property
    def empty(self) -> bool:
        return not self.rules and not self.unknown_items

    @property
    def flagged(self) -> list[RuleReport]:
        return [rule for rule in self.rules if rule.flagged]

    @property
    def partial_history(self) -> bool:
        """The period starts before the oldest day whose issued cards are still kept."""
        return self.period.first < self.cards_kept_since


def _drug_name(knowledge: Knowledge, drug: str | None) -> str:
    if drug is None:
        return "drug not recorded"
    names = (knowledge.get("MedicationKnowledge", drug) or {}).get("name") or [drug]
    return str(names[0])


def _reason_displays(knowledge: Knowledge) -> dict[tuple[str | None, str | None], str]:
    """The display of each reason the cards offer (ours and HL7's), by system and code."""
    return {(r["system"], r["code"]): r["display"] for r in override_reasons(knowledge)}


def _families(knowledge: Knowledge, reasons: list[Reason]) -> list[Reason]:
    """The overrides per reason family (the knowledge's ConceptMap: ours and HL7's codes in one count)."""
    found = reason_families(knowledge)
    counts: dict[str, int] = {}
    for reason in reasons:
        family = found.of(reason.system, reason.code)
        counts[family] = counts.get(family, 0) + reason.count
    return [Reason(None, family, found.display(family), count)
            for family, count in sorted(counts.items(), key=lambda item: (-item[1], item[0]))]


def build_report(counts: Governance, period: Period, service: str | None, thresholds: Thresholds,
                 knowledge: Knowledge, cards_kept_since: date) -> Report:
    """The report from the store's counts (``Store.governance`` over ``period``)."""
    weeks = period.weeks()
    week_of = {day: (day - weeks[0]).days // 7 for day in
               (period.first + timedelta(days=n) for n in range(period.days))}
    rules: dict[tuple[str | None, ...], RuleReport] = {}
    reasons: dict[tuple, dict[tuple[str | None, str | None], list]] = {}

    def rule(topic: str | None, indicator: str | None, drug: str | None, rule_id: str | None) -> RuleReport:
        key = (topic, indicator, drug, rule_id)
        if key not in rules:
            display = TOPICS.get(topic, topic) if topic else "no topic"
            rules[key] = RuleReport(topic, indicator, drug, display, _drug_name(knowledge, drug), Tally(),
                                    [Tally() for _ in weeks], rule=rule_id)
        return rules[key]

    for row in counts.issued:
        if (row.topic is None and row.indicator is None) or row.day not in week_of:
            continue
        tally = Tally(issued=row.cards, with_feedback=row.with_feedback)
        found = rule(row.topic, row.indicator, row.drug, row.rule)
        found.total.add(tally)
        found.weeks[week_of[row.day]].add(tally)
    unknown_items = 0
    displays = _reason_displays(knowledge)
    for item in counts.feedback.rows:
        if item.day not in week_of:
            continue
        if item.topic is None and item.indicator is None:
            unknown_items += item.items
            continue
        tally = Tally(accepted=item.items) if item.outcome == "accepted" else Tally(overridden=item.items)
        found = rule(item.topic, item.indicator, item.drug, item.rule)
        found.total.add(tally)
        found.weeks[week_of[item.day]].add(tally)
        if item.outcome == "overridden":
            code = (item.override_system, item.override_code) if item.override_code else (None, None)
            entry = reasons.setdefault((item.topic, item.indicator, item.drug, item.rule), {}).setdefault(
                code, [0, None])
            entry[0] += item.items
            entry[1] = entry[1] or item.override_display

    for key, found in rules.items():
        found.reasons = sorted(
            # a reason is named by the service's own display of its code, else by its code as plain text: the
            # display a client sent with it is free text, never shown
            (Reason(system, code, displays.get((system, code)) or plain_text(code or "") or NO_REASON, count)
             for (system, code), (count, _display) in reasons.get(key, {}).items()),
            key=lambda r: (-r.count, r.code is None, r.code or "", r.system or ""))
        found.families = _families(knowledge, found.reasons)
        rate = found.total.override_rate
        found.flagged = (rate is not None and rate >= thresholds.override_rate
                         and found.total.feedback >= thresholds.min_feedback)
    ranked = sorted(rules.values(), key=lambda r: (r.total.override_rate is None, -(r.total.override_rate or 0),
                                                   -r.total.feedback, -r.total.issued, r.label))
    total, total_weeks = Tally(), [Tally() for _ in weeks]
    for rank, found in enumerate(ranked, 1):
        found.rank = rank
        total.add(found.total)
        for week, tally in zip(total_weeks, found.weeks, strict=True):
            week.add(tally)
    review = build_review(counts.rules, counts.orders, counts.versions, weeks, thresholds.override_rate,
                          thresholds.min_feedback)
    return Report(period, service, thresholds, weeks, ranked, total, total_weeks, unknown_items,
                  counts.feedback.unknown_cards, cards_kept_since, counts.feedback.not_issued, review)


def governance_report(store: Store, knowledge: Knowledge, config: Mapping[str, Any], from_text: str | None,
                      to_text: str | None, service_text: str | None, today: date,
                      site: SiteConfig = NO_SITE_CONFIG) -> Report:
    """The report for these parameters (BadParameter if one cannot be used), read from the store, with the ``site``
    configuration in force: what the page, the CSV, the JSON and ``fhirsvc governance`` all show."""
    period = parse_period(from_text, to_text, today)
    service = parse_service(service_text, knowledge)
    counts = store.governance(service, period.first, period.last)
    kept_since = today - timedelta(days=int(config["CARD_RETENTION_DAYS"]))
    report = build_report(counts, period, service, Thresholds.from_config(config), knowledge, kept_since)
    report.site = site
    report.in_force = configuration_in_force(knowledge, site, counts.versions)
    return report


# --- the report as data: the JSON twin and the CSV ------------------------------------------------------------


def _rate(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def tally_document(tally: Tally) -> dict[str, Any]:
    return {"cardsIssued": tally.issued, "cardsWithFeedback": tally.with_feedback,
            "shareWithFeedback": _rate(tally.share_with_feedback), "feedback": tally.feedback,
            "accepted": tally.accepted, "overridden": tally.overridden, "overrideRate": _rate(tally.override_rate)}


def report_document(report: Report) -> dict[str, Any]:
    """The JSON twin of the page."""
    def weekly(tallies: Iterable[Tally]) -> list[dict[str, Any]]:
        return [{"week": week.isoformat(), **tally_document(tally)} for week, tally in zip(report.weeks, tallies,
                                                                                           strict=True)]

    return {
        "period": {"from": report.period.first.isoformat(), "to": report.period.last.isoformat(),
                   "days": report.period.days},
        "service": report.service,
        "thresholds": {"overrideRate": report.thresholds.override_rate,
                       "minFeedback": report.thresholds.min_feedback},
        "cardsKeptSince": report.cards_kept_since.isoformat(),
        "weeks": [week.isoformat() for week in report.weeks],
        "rules": [{
            "rank": rule.rank, "rule": rule.rule, "topic": rule.topic, "topicDisplay": rule.topic_display,
            "indicator": rule.indicator,
            "drug": rule.drug, "drugName": rule.drug_name, **tally_document(rule.total), "flagged": rule.flagged,
            "overrideReasons": [{"system": r.system, "code": r.code, "display": r.display, "count": r.count}
                                for r in rule.reasons],
            "overrideReasonFamilies": [{"family": f.code, "display": f.display, "count": f.count}
                                       for f in rule.families],
            "weekly": weekly(rule.weeks),
        } for rule in report.rules],
        "totals": {**tally_document(report.total), "weekly": weekly(report.total_weeks)},
        "unknownRule": {"feedback": report.unknown_items, "cards": report.unknown_cards},
        "notIssued": {"feedback": report.not_issued},
        **(review_document(report.review) if report.review else {}),
        "configurationInForce": {
            "version": report.site.version, "digest": report.site.digest,
            "rules": [{"rule": r.rule, "enabled": r.enabled, "indicator": r.indicator,
                       "defaultIndicator": r.default_indicator,
                       "settings": [{"code": code, "value": value, "default": default, "unit": unit}
                                    for code, value, default, unit in r.values],
                       "reason": r.reason, "weakened": r.weakened, "neverWeaken": r.never_weaken,
                       "setBySite": r.changed, "since": r.since.isoformat() if r.since else None}
                      for r in report.in_force]},
    }


def _per_order(found: PerOrder) -> dict[str, Any]:
    return {"orders": found.orders, "mean": None if found.mean is None else round(found.mean, 4), "p90": found.p90}


def review_document(review: Review) -> dict[str, Any]:
    """Cards per order, the rules to review with the control charts' method, the effect of configuration changes."""
    return {
        "cardsPerOrder": {drug: {**_per_order(found), "byConfiguration": {
            version: _per_order(review.per_order_by_version[drug][version]) for version in review.version_order
            if version in review.per_order_by_version.get(drug, {})}}
            for drug, found in sorted(review.per_order.items())},
        "rulesToReview": [{"rule": r.rule, "why": r.why, "detail": r.detail} for r in review.to_review],
        "controlCharts": {
            "method": CONTROL_METHOD, "sigmas": SIGMAS, "minBaselineWeeks": MIN_BASELINE_WEEKS,
            "falseAlarm": {"meanPerRule": _rate(review.false_alarm_mean), "anyRule": _rate(review.false_alarm_any),
                           "rulesCharted": len(review.charted)},
            "rules": [{"rule": c.rule, "drug": c.drug, "week": c.last.isoformat() if c.last else None,
                       "centre": _rate(c.centre), "lower": _rate(c.lower), "upper": _rate(c.upper),
                       "signal": c.signal, "falseAlarm": _rate(c.false_alarm),
                       "weeks": [{"week": w.isoformat(), "cards": c.weeks[w].cards, "orders": c.weeks[w].orders}
                                 for w in sorted(c.weeks)]} for c in review.charts]},
        "configurationEffect": {
            "versions": review.version_order,
            "rules": {rule: {version: {"cardsIssued": v.issued, "accepted": v.accepted, "overridden": v.overridden,
                                       "overrideRate": _rate(v.override_rate)} for version, v in versions.items()}
                      for rule, versions in sorted(review.by_version.items())}},
        "configurationVersions": [{"version": v.version, "digest": v.digest, "firstSeen": v.first_seen.isoformat()}
                                  for v in review.versions],
    }


CSV_COLUMNS = ("rank", "rule", "topic", "topic_display", "indicator", "drug", "drug_name", "cards_issued",
               "cards_with_feedback", "share_with_feedback", "feedback", "accepted", "overridden", "override_rate",
               "flagged", "top_override_reasons")


def _fraction(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def reasons_text(rule: RuleReport) -> str:
    return "; ".join(f"{r.display} ({r.count})" for r in rule.top_reasons)


def write_csv(report: Report, out: IO[str], lineterminator: str = "\r\n") -> None:
    """The rule table as CSV: CSV_COLUMNS, then ``report_rows``, every text cell that a spreadsheet would take
    for a formula neutralised (``csv_cell``; the numbers are written as numbers)."""
    writer = csv.writer(out, lineterminator=lineterminator)
    writer.writerow(CSV_COLUMNS)
    writer.writerows([csv_cell(value) for value in row] for row in report_rows(report))


def report_rows(report: Report) -> list[tuple]:
    """The page's rule table as rows of CSV_COLUMNS (rates as fractions with 4 decimals)."""
    return [(rule.rank, rule.rule or "", rule.topic or "", rule.topic_display, rule.indicator or "", rule.drug or "",
             rule.drug_name,
             rule.total.issued, rule.total.with_feedback, _fraction(rule.total.share_with_feedback),
             rule.total.feedback, rule.total.accepted, rule.total.overridden, _fraction(rule.total.override_rate),
             "yes" if rule.flagged else "no", reasons_text(rule)) for rule in report.rules]


def percent(value: float | None) -> str:
    """A share as the page and the terminal show it: whole percent, a dash when there is none."""
    return "\u2013" if value is None else f"{value * 100:.0f} %"


def report_table(report: Report) -> str:
    """The rule table for a terminal: fixed-width columns, the top override reason shortened."""
    head = ("#", "rule (topic indicator drug)", "issued", "w/ feedback", "accepted", "overridden", "rate", "flag",
            "top override reason")
    rows: list[tuple[str, ...]]
    rows = [(str(rule.rank), rule.short_label, str(rule.total.issued),
             f"{rule.total.with_feedback} ({percent(rule.total.share_with_feedback)})", str(rule.total.accepted),
             str(rule.total.overridden), percent(rule.total.override_rate), "FLAG" if rule.flagged else "-",
             _clip(f"{rule.top_reasons[0].display} ({rule.top_reasons[0].count})") if rule.top_reasons else "-")
            for rule in report.rules]
    total = report.total
    rows.append(("", "all rules", str(total.issued), f"{total.with_feedback} ({percent(total.share_with_feedback)})",
                 str(total.accepted), str(total.overridden), percent(total.override_rate),
                 str(len(report.flagged)), ""))
    rows = [tuple(plain_text(cell) for cell in row) for row in rows]  # no control character reaches the terminal
    widths = [max(len(row[i]) for row in [head, *rows]) for i in range(len(head))]
    right = {0, 2, 3, 4, 5, 6}

    def line(row: tuple[str, ...]) -> str:  # cells already plain text
        return "  ".join(cell.rjust(width) if i in right else cell.ljust(width)
                         for i, (cell, width) in enumerate(zip(row, widths, strict=True))).rstrip()

    scope = (f"{report.service or 'every service'}, {report.period.first} to {report.period.last} "
             f"({report.period.days} days, UTC)")
    flag = (f"flag: override rate >= {report.thresholds.override_rate * 100:.0f} % over >= "
            f"{report.thresholds.min_feedback} feedback items")
    not_issued = (f"{report.not_issued} feedback item(s) received on cards this service did not issue (or no longer "
                  "keeps) are counted in no rule.")
    if report.empty:
        return f"{scope}\nNo cards were issued and no feedback on issued cards was received in this period.\n" + (
            f"{not_issued}\n" if report.not_issued else "")
    lines = [scope, flag, "", line(head), "  ".join("-" * w for w in widths), *map(line, rows[:-1]),
             "  ".join("-" * w for w in widths), line(rows[-1])]
    if report.unknown_items:
        lines.append(f"\n{report.unknown_items} feedback item(s) on {report.unknown_cards} card(s) of unknown rule "
                     "are counted in no rule.")
    if report.not_issued:
        lines.append(not_issued)
    if report.partial_history:
        lines.append(f"Issued cards before {report.cards_kept_since} are no longer kept: their counts are incomplete.")
    return "\n".join(lines) + "\n"


def _clip(text: str, width: int = 48) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"
