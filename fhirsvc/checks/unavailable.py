"""One "Unable to check" card per patient data key that could not be had (contract, "Unable to check").

A prefetch key that came back as an OperationOutcome (or could not be fetched) stops every check that needed
it; each such check reports an "Unable to check" finding naming the key (``facts["unavailable"]``). The
prescriber reads one card about one failure: ``one_per_failed_key`` replaces the findings a key stopped by
one finding whose indicator is the most severe of them, whose topic, rule and monograph section are that
check's, and whose detail names every check it stopped. A key that stopped a single check keeps that check's
own finding (it is already one card). Findings that are "Unable to check" for another reason (a stale weight,
an unreadable count) are left as they are.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from fhirsvc.checks import wording
from fhirsvc.checks.base import DATA_LABELS, clip
from fhirsvc.checks.context import PatientContext
from fhirsvc.checks.findings import INDICATORS, Finding
from fhirsvc.checks.index import drug_index
from fhirsvc.knowledge.store import Knowledge


def stopped_by(finding: Finding, keys: Iterable[str]) -> list[str]:
    """The failed data keys among ``keys`` that stopped the finding's check (none for a finding that decided)."""
    if not finding.unable:
        return []
    named = finding.facts.get("unavailable") or ()
    return [key for key in keys if key in named]


def one_card_per_failed_key(findings: Sequence[Finding], context: PatientContext,
                             knowledge: Knowledge) -> list[Finding]:
    """``one_per_failed_key`` for the keys of the call that could not be had, drugs named by the knowledge."""
    if not context.unavailable:
        return list(findings)
    names = {drug.id: drug.name for drug in drug_index(knowledge).drugs}
    return one_per_failed_key(findings, context.unavailable, names)


def one_per_failed_key(findings: Sequence[Finding], unavailable: Mapping[str, str],
                       drug_names: Mapping[str, str]) -> list[Finding]:
    """The findings with those stopped by each failed key (``unavailable``) replaced by one finding per key, at
    the place of the first of them. ``drug_names``: the knowledge's name of each drug id (for the words)."""
    groups: dict[str, list[Finding]] = {key: [] for key in unavailable}
    for finding in findings:
        for key in stopped_by(finding, unavailable):
            groups[key].append(finding)
    out: list[Finding] = []
    placed: set[int] = set()
    for finding in findings:
        keys = stopped_by(finding, unavailable)
        if not keys:
            out.append(finding)
            continue
        for key in keys:
            if id(groups[key]) in placed:
                continue
            placed.add(id(groups[key]))
            one = groups[key][0] if len(groups[key]) == 1 else consolidated(key, groups[key], drug_names)
            if id(one) not in placed:
                placed.add(id(one))
                out.append(one)
    return out


def _names(findings: Iterable[Finding]) -> list[str]:
    """What each stopped check checks, in words, each once, in the order of the findings."""
    names: list[str] = []
    for finding in findings:
        name = str(finding.facts.get("not_checked") or finding.rule.replace("-", " "))
        if name not in names:
            names.append(name)
    return names


def consolidated(key: str, stopped: Sequence[Finding], drug_names: Mapping[str, str]) -> Finding:
    """The one finding of a failed key: the most severe of the stopped checks gives its indicator, topic, rule
    and section; the detail names every stopped check; ``facts["rules"]`` lists their rules."""
    worst = max(stopped, key=lambda f: INDICATORS.index(f.indicator))  # the first of the most severe
    names = _names(stopped)
    drugs = list(dict.fromkeys(drug_names.get(f.drug, f.drug) for f in stopped))
    rules = list(dict.fromkeys(f.rule for f in stopped))
    summary, detail = wording.words(
        "unavailable.key" if len(names) > 1 else "unavailable.key_one", data=DATA_LABELS.get(key, key),
        count=len(names), drug=wording.joined(drugs),
        checks=wording.joined(names), were="was" if len(names) == 1 else "were")
    return Finding(rule=worst.rule, topic=worst.topic, topic_display=worst.topic_display, indicator=worst.indicator,
                   summary=clip(summary), detail=detail, drug=worst.drug, section=worst.section, anchor=worst.anchor,
                   order_id=stopped[0].order_id, unable=True, data_key=key,
                   facts={"unavailable": [key], "rules": rules, "not_checked": names,
                          "orders": list(dict.fromkeys(str(f.facts["order"]) for f in stopped if f.facts.get("order"))),
                          "order_ids": list(dict.fromkeys(f.order_id for f in stopped if f.order_id))})
