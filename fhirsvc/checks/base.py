"""The frame the checks run in: one ``Run`` per CDS call (patient data selected once), one ``Job`` per
judged order and drug, and the registry of checks the engine runs in a fixed order.

A check is a function ``(job) -> Iterable[Finding]`` registered with ``@check(...)``; its declared
``rule``, ``topic`` and ``anchor`` are what the engine reports when the function itself fails, and its
``needs`` are the patient data keys (``context.DATA_KEYS``) it reads: the evaluation layer fetches only the keys
the checks of the judged orders need (``engine.relevance``), so a check must declare every key it reads.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any, NamedTuple

from fhirsvc.checks import wording
from fhirsvc.checks.config import TOPICS, VS_NOT_ACTIVE_CONDITION
from fhirsvc.checks.context import (
    ALLERGIES,
    CONDITIONS,
    DATA_KEYS,
    MEDICATIONS,
    OBSERVATIONS,
    PATIENT,
    PatientContext,
)
from fhirsvc.checks.findings import Action, Finding, Suggestion
from fhirsvc.checks.index import DrugIndex, concept_keys, drug_index
from fhirsvc.checks.reading.age import age_range, age_years
from fhirsvc.checks.reading.conditions import (
    allergy_concepts,
    condition_in,
    condition_standing,
    is_active_allergy,
)
from fhirsvc.checks.reading.daily_dose import DailyDose, daily_dose
from fhirsvc.checks.reading.medications import is_current, is_live_draft
from fhirsvc.checks.reading.observations import ObservationIndex
from fhirsvc.checks.reading.resources import reference_key
from fhirsvc.checks.reading.windows import Window
from fhirsvc.checks.recognition import medication_concepts
from fhirsvc.drugmodel.profile import DrugProfile, Guideline, Interaction
from fhirsvc.drugmodel.units import duration
from fhirsvc.fhirtypes import concept_text
from fhirsvc.knowledge.rules import RuleThreshold, rule_for, threshold
from fhirsvc.knowledge.site import NO_SITE_CONFIG, SiteConfig, setting_value
from fhirsvc.knowledge.store import Knowledge
from fhirsvc.terminology import ValueSetMatcher, codings, concept_key

Resource = Mapping[str, Any]
SUMMARY_MAX = 139
# Most ``Type/id``s a finding's facts list of the other records it found (``others``): the card names one.
FACTS_LIST_MAX = 20
# Most orders one suggestion cancels together: an order set holds a few orders of one interaction class; a pipeline
# checking hundreds at once would otherwise get a suggestion per order naming all the others (work and answer size
# growing with the square of the orders). Past it, the suggestion cancels the first of them, as one order would.
MAX_ACTIONS_PER_SUGGESTION = 10


def clip(text: str, limit: int = SUMMARY_MAX) -> str:
    """Shorten card text to ``limit`` characters (an ellipsis marks the cut)."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip(" ,;:") + "…"


def lower_first(text: str) -> str:
    """``Live vaccines`` -> ``live vaccines`` (an acronym such as ``TNF inhibitors`` stays)."""
    return text[0].lower() + text[1:] if len(text) > 1 and text[1].islower() else text


def plain(value: Any) -> Any:
    """A deep, mutable, plain-JSON copy (dicts and lists) of a resource; the input is never touched."""
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return copy.deepcopy(value)


class Run:
    """One CDS call: the context, the knowledge, and what every check needs, computed once."""

    def __init__(self, context: PatientContext, knowledge: Knowledge, site: SiteConfig = NO_SITE_CONFIG) -> None:
        self.context = context
        self.knowledge = knowledge
        self.site = site  # the site configuration: the adjustable values the checks read (Job.setting)
        self.now = context.now
        self.index: DrugIndex = drug_index(knowledge)
        self._named: dict[int, Named] = {}  # records outside the call's lists, by identity (Run.named)
        # active conditions/allergies and medication records in a value set, by (kind, value set)
        self._in_value_set: dict[tuple[str, str | None], tuple[Resource, ...]] = {}
        # selections of the records that can conflict with an order, with the position of each Type/id (Run.others)
        self._selected: dict[Hashable, tuple[list[tuple[Resource, str]], dict[str, int]]] = {}
        self._once: dict[Hashable, Any] = {}

    @property
    def drugs(self) -> tuple[DrugProfile, ...]:
        return self.index.drugs

    def value_set(self, url: str | None) -> ValueSetMatcher | None:
        return self.knowledge.value_sets.get(url) if url else None

    def unavailable(self, *keys: str) -> list[str]:
        """The data keys among ``keys`` that could not be had."""
        return [k for k in keys if k in self.context.unavailable]

    # --- patient data ---
    @cached_property
    def age(self) -> int | None:
        return age_years(self.context.patient, self.now)

    @cached_property
    def ages(self) -> tuple[int, int] | None:
        """The youngest and oldest age the birth date allows (two ages for a partial one near a birthday)."""
        return age_range(self.context.patient, self.now)

    @cached_property
    def _condition_list(self) -> tuple[list[Resource], list[Resource], dict[int, Any]]:
        """(the active conditions, the conditions on the list, the ``concept_key`` of each one's code by its
        identity): each condition's statuses and code read once per call (``condition_standing``)."""
        active: list[Resource] = []
        recorded: list[Resource] = []
        keys: dict[int, Any] = {}
        for condition in self.context.conditions:
            is_active, is_recorded = condition_standing(condition)
            if is_recorded:
                recorded.append(condition)
                keys[id(condition)] = concept_key(condition.get("code"))
            if is_active:
                active.append(condition)
        return active, recorded, keys

    @property
    def active_conditions(self) -> list[Resource]:
        return self._condition_list[0]

    @cached_property
    def active_allergies(self) -> list[Resource]:
        return [a for a in self.context.allergies if is_active_allergy(a)]

    @cached_property
    def observations(self) -> ObservationIndex:
        """The observations, for ``patient.observations_of`` (and the functions built on it) over several value
        sets: each value set's observations are selected once per call."""
        return ObservationIndex(self.context.observations)

    @property
    def recorded_conditions(self) -> list[Resource]:
        return self._condition_list[1]

    @cached_property
    def not_active(self) -> ValueSetMatcher | None:
        """The knowledge's codes that are never an active condition (history, screening, exposure)."""
        return self.value_set(VS_NOT_ACTIVE_CONDITION)

    def condition_in(self, url: str | None, concept: Mapping[str, Any] | None, key: Any = ...) -> bool:
        """Whether a condition's or a reason's concept is the value set's condition (``patient.condition_in``:
        by code, by name only without a code the value set can judge; never a history/screening code)."""
        matcher = self.value_set(url)
        return matcher is not None and condition_in(matcher, concept, self.not_active, key)

    @cached_property
    def condition_codes(self) -> dict[str, list[Any]]:
        """The code of each condition on the list, by the references that name it (``Job.order_reasons``)."""
        return _codes_by_reference(self.context.conditions)

    @cached_property
    def _keyed_allergies(self) -> list[tuple[Resource, tuple[list[Mapping[str, Any]], tuple[Any, ...]]]]:
        """Each active allergy with what it is to (``allergy_concepts``) and the ``concept_key`` of each."""
        return [(a, _keyed(allergy_concepts(a))) for a in self.active_allergies]

    def conditions_in(self, url: str | None) -> tuple[Resource, ...]:
        """The active conditions that are the value set's condition (``condition_in``), once per value set."""
        return self._conditions(url, "active", self.active_conditions)

    def recorded_in(self, url: str | None) -> tuple[Resource, ...]:
        """The conditions on the list (any clinical status) that are the value set's condition: how an
        indication is recorded."""
        return self._conditions(url, "recorded", self.recorded_conditions)

    def _conditions(self, url: str | None, kind: str, records: list[Resource]) -> tuple[Resource, ...]:
        found = self._in_value_set.get((kind, url))
        if found is None:
            keys, matcher, not_active = self._condition_list[2], self.value_set(url), self.not_active
            found = self._in_value_set[(kind, url)] = tuple(
                c for c in records if condition_in(matcher, c.get("code"), not_active, keys.get(id(c), ...))
            ) if matcher is not None else ()
        return found

    def allergies_in(self, url: str | None) -> tuple[Resource, ...]:
        """The active allergies to something in the value set (``patient.matching``), once per value set."""
        found = self._in_value_set.get(("allergies", url))
        if found is None:
            matcher = self.value_set(url)
            found = self._in_value_set[("allergies", url)] = tuple(
                record for record, concepts in self._keyed_allergies
                if any(map(matcher.matches_keyed, *concepts))) if matcher is not None else ()
        return found

    def medications_in(self, url: str | None) -> tuple[Resource, ...]:
        """The medication records (any status; not the draft orders) with a concept in the value set
        (``recognition.in_value_set``), once per value set."""
        found = self._in_value_set.get(("medications", url))
        if found is None:
            matcher = self.value_set(url)
            found = self._in_value_set[("medications", url)] = tuple(
                named.resource for named in self._named_medications.values() if _named_in(named, matcher)
            ) if matcher is not None else ()
        return found

    def _members(self, url: str | None, concept: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
        """The value set's concepts (``compose.include.concept``) that the concept's codings are."""
        value_set = self.knowledge.resolve(url) if url else None
        keys = {(c.get("system"), c.get("code")) for c in codings(concept)}
        return [member for include in ((value_set or {}).get("compose") or {}).get("include") or ()
                for member in include.get("concept") or () if (include.get("system"), member.get("code")) in keys]

    def concept_label(self, url: str | None, concept: Mapping[str, Any] | None) -> str:
        """A short name of a coded concept: the shortest designation (or display) its code has in the
        knowledge value set (a creatinine clearance code -> ``CrCl``), else its own text or display."""
        for member in self._members(url, concept):
            names = [d["value"] for d in member.get("designation") or () if d.get("value")]
            names = names or ([member["display"]] if member.get("display") else [])
            if names:
                return str(min(names, key=len))
        return concept_text(concept)

    @cached_property
    def _named_drafts(self) -> dict[int, Named]:
        """Every draft order, named (``Named``) in one pass, by identity."""
        return self._name_all(self.context.draft_orders)

    @cached_property
    def _named_medications(self) -> dict[int, Named]:
        """Every medication record, named (``Named``) in one pass, by identity (the records are kept by the
        context: an id is not reused while the call lasts)."""
        return self._name_all(self.context.medications)

    def _name_all(self, resources: Iterable[Resource]) -> dict[int, Named]:
        referenced, recognize = self.context.referenced_medications, self.index.recognize_keyed
        named = {}
        for resource in resources:
            concepts = medication_concepts(resource, referenced)
            keys = concept_keys(concepts)
            named[id(resource)] = Named(resource, concepts, keys, recognize(concepts, keys))
        return named

    def _name(self, resource: Resource) -> Named:
        return self._name_all((resource,))[id(resource)]

    def named(self, resource: Resource) -> Named:
        """What names the medication of a draft order or a medication record (from the passes above; another
        resource is named on its own, once)."""
        key = id(resource)
        found = self._named_drafts.get(key) or self._named_medications.get(key) or self._named.get(key)
        if found is None:
            found = self._named[key] = self._name(resource)
        return found

    def concepts(self, resource: Resource) -> list[Mapping[str, Any]]:
        """The concepts that name what a resource orders or records (``recognition.medication_concepts``)."""
        return self.named(resource).concepts

    def concepts_in(self, resource: Resource, matcher: ValueSetMatcher) -> bool:
        """Whether one of the resource's concepts is a member of the value set (``recognition.in_value_set``),
        from each concept's ``concept_key`` read once per call."""
        return _named_in(self.named(resource), matcher)

    def drugs_of(self, resource: Resource) -> tuple[DrugProfile, ...]:
        """The knowledge drugs a resource is for (``recognition.recognize``, through the index)."""
        return self.named(resource).drugs

    @cached_property
    def _medications_of(self) -> dict[str, list[Resource]]:
        """The medication records (not the draft orders) of each knowledge drug, in the order of the list."""
        found: dict[str, list[Resource]] = {}
        for med in self.context.medications:
            for drug in self.drugs_of(med):
                found.setdefault(drug.id, []).append(med)
        return found

    def medications_of(self, drug_id: str) -> Sequence[Resource]:
        """The medication records (any status; not the draft orders) of a knowledge drug."""
        return self._medications_of.get(drug_id, ())

    @property
    def patient_reference(self) -> str | None:
        patient = self.context.patient or {}
        if patient.get("id"):
            return f"Patient/{patient['id']}"
        for order in self.context.draft_orders:
            ref = (order.get("subject") or order.get("patient") or {}).get("reference")
            if ref:
                return str(ref)
        return None

    # --- other medications ---
    @cached_property
    def draft_keys(self) -> frozenset[str]:
        """``Type/id`` of every draft order (live or not)."""
        return frozenset(reference_key(d) for d in self.context.draft_orders)

    @cached_property
    def _records(self) -> tuple[list[tuple[Resource, str]], list[tuple[Resource, str]]]:
        """(the live draft orders, the current medications): each ``Type/id`` once (its first live draft, else
        its first current medication), tagged ``draft`` or ``medication``. Selected once per call."""
        seen: set[str] = set()
        drafts: list[tuple[Resource, str]] = []
        for draft in self.context.draft_orders:
            key = reference_key(draft)
            if key not in seen and is_live_draft(draft):
                seen.add(key)
                drafts.append((draft, "draft"))
        medications: list[tuple[Resource, str]] = []
        for med in self.context.medications:
            key = reference_key(med)
            if key not in seen and is_current(med):
                seen.add(key)
                medications.append((med, "medication"))
        return drafts, medications

    def _candidates(self, medications: bool) -> list[tuple[Resource, str]]:
        drafts, current = self._records
        return drafts + current if medications else drafts

    def _without(self, memo: Hashable, order: Resource) -> Others:
        chosen, positions = self._selected[memo]
        return Others(chosen, positions.get(reference_key(order)))

    def others(self, order: Resource, *, medications: bool = True) -> Others:
        """The records that can conflict with ``order``: the other live draft orders, then (``medications``) the
        current (active/on-hold) medications, each ``Type/id`` once, tagged ``draft`` or ``medication``."""
        memo = ("all", medications)
        if memo not in self._selected:
            self._selected[memo] = _selection(self._candidates(medications))
        return self._without(memo, order)

    def others_in(self, order: Resource, url: str | None, *, medications: bool = True) -> Others:
        """``others(order)`` with a concept in the value set (``concepts_in``)."""
        memo = ("value-set", url, medications)
        if memo not in self._selected:
            matcher = self.value_set(url)
            self._selected[memo] = _selection([(r, kind) for r, kind in self._candidates(medications)
                                               if matcher is not None and _named_in(self.named(r), matcher)])
        return self._without(memo, order)

    def others_of(self, order: Resource, drug_id: str, *, drafts: bool = True, medications: bool = True,
                  types: frozenset[str] | None = None) -> Others:
        """``others(order)`` for the knowledge drug (``drugs_of``): without the draft orders unless ``drafts``,
        of the resource ``types`` only if given."""
        memo = ("drug", drug_id, drafts, medications, types)
        if memo not in self._selected:
            self._selected[memo] = _selection([
                (r, kind) for r, kind in self._candidates(medications)
                if (drafts or kind != "draft") and (types is None or r.get("resourceType") in types)
                and any(d.id == drug_id for d in self.drugs_of(r))])
        return self._without(memo, order)

    def once(self, name: Hashable, compute: Callable[[], Any]) -> Any:
        """``compute()``, computed once per call and ``name`` (an answer the same for every order)."""
        if name not in self._once:
            self._once[name] = compute()
        return self._once[name]


class Others(Sequence[tuple[Resource, str]]):
    """A selection of a call's records without one of them (an order's own; records are unique by ``Type/id``):
    read in place, so that it costs nothing per order."""

    def __init__(self, records: Sequence[tuple[Resource, str]], skip: int | None = None) -> None:
        self._records = records
        self._skip = skip

    def __len__(self) -> int:
        return len(self._records) - (self._skip is not None)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        return self._records[index + (self._skip is not None and index >= self._skip)]

    def __iter__(self) -> Iterator[tuple[Resource, str]]:
        return (item for i, item in enumerate(self._records) if i != self._skip)

    def keys(self, limit: int = FACTS_LIST_MAX) -> list[str]:
        """The ``Type/id``s of the first ``limit`` records (for facts)."""
        return [reference_key(r) for r, _ in self[:limit]]


def _selection(chosen: list[tuple[Resource, str]]) -> tuple[list[tuple[Resource, str]], dict[str, int]]:
    """Selected records with the position of each ``Type/id`` (``Run._without``)."""
    return chosen, {reference_key(r): i for i, (r, _) in enumerate(chosen)}


class Named(NamedTuple):
    """What names the medication of a draft order or a medication record, read once per call: its concepts
    (``recognition.medication_concepts``), the ``concept_key`` of each, and the knowledge drugs it is for."""

    resource: Resource  # kept with its answers: its id is not reused while the call lasts
    concepts: list[Mapping[str, Any]]
    keys: tuple[Any, ...]
    drugs: tuple[DrugProfile, ...]


def _keyed(concepts: list[Mapping[str, Any]]) -> tuple[list[Mapping[str, Any]], tuple[Any, ...]]:
    return concepts, concept_keys(concepts)


def _named_in(named: Named, matcher: ValueSetMatcher) -> bool:
    """Whether one of the named concepts is a member of the value set (``recognition.in_value_set``)."""
    return any(map(matcher.matches_keyed, named.concepts, named.keys))


@dataclass
class Job:
    """One judged order and one drug: a forward job (the order is for ``drug``), or a reverse job (the
    order is for the other party of ``interaction``, one of ``drug``'s interactions)."""

    run: Run
    order: Resource
    drug: DrugProfile
    interaction: Interaction | None = None
    # The check running on this job (``engine.run_one`` sets it): its findings take their rule and topic from it.
    check: Check | None = None

    @property
    def context(self) -> PatientContext:
        return self.run.context

    @property
    def order_id(self) -> str | None:
        return self.order.get("id")

    @property
    def order_ref(self) -> str:
        return reference_key(self.order)

    def drug_records(self, test: Callable[[Resource], bool]) -> list[Resource]:
        """The patient's medication records (not the draft orders) of this job's drug that pass ``test``
        (``is_current``: on therapy; ``is_past``)."""
        return [m for m in self.run.medications_of(self.drug.id) if test(m)]

    @cached_property
    def dose(self) -> DailyDose:
        return daily_dose(self.order, self.drug.mg_per_ml, self.drug.mg_per_syringe)

    def order_reasons(self) -> list[Mapping[str, Any]]:
        """The order's reasons: ``reasonCode`` and the code of each ``reasonReference`` Condition (on the
        condition list, then contained in the order; looked up by reference, not by a scan per reference)."""
        out = list(self.order.get("reasonCode") or ())
        references = self.order.get("reasonReference") or ()
        contained = _codes_by_reference(self.order.get("contained") or ()) if references else {}
        for ref in references:
            target = (ref or {}).get("reference") or ""
            out += self.run.condition_codes.get(target, [])
            out += contained.get(target, [])
            if ref.get("display"):
                out.append({"text": ref["display"]})
        return out

    @cached_property
    def _reasons(self) -> list[tuple[Mapping[str, Any], Any]]:
        """The order's reasons with their ``concept_key``, read once per job."""
        return [(reason, concept_key(reason)) for reason in self.order_reasons()]

    @cached_property
    def _recorded(self) -> dict[str | None, list[str]]:
        return {}

    def indication_recorded(self, url: str | None) -> list[str]:
        """How the indication of a value set is recorded: the active conditions and order reasons in it
        (their names), empty if it is not recorded. Once per job and value set."""
        names = self._recorded.get(url)
        if names is None:
            names = self._recorded[url] = self._indication_names(url)
        return names

    def _indication_names(self, url: str | None) -> list[str]:
        if self.run.value_set(url) is None:
            return []
        names = [_name(c.get("code")) for c in self.run.recorded_in(url)]
        names += [_name(r) for r, key in self._reasons if self.run.condition_in(url, r, key)]
        return names

    @cached_property
    def weight_based_indication(self) -> Guideline | None:
        """The first weight-based guideline whose indication is recorded, or None."""
        for guide in self.drug.guidelines:
            if guide.weight_based and self.indication_recorded(guide.indication_value_set):
                return guide
        return None

    @cached_property
    def fixed_guideline(self) -> Guideline | None:
        """The fixed-dose guideline for this patient: one with a mg-per-day maximum whose indication is
        recorded and whose age range fits; else the first with a maximum whose age fits; else the first
        with a maximum."""
        candidates = [g for g in self.drug.guidelines if g.fixed_limits]
        if not candidates:
            return None

        def age_fits(guide: Guideline) -> bool:
            ages = guide.of_kind("age")
            return self.run.age is None or all(a.holds(self.run.age) for a in ages)

        for pick in (lambda g: age_fits(g) and self.indication_recorded(g.indication_value_set), age_fits):
            chosen = [g for g in candidates if pick(g)]
            if chosen:
                return chosen[0]
        return candidates[0]

    def finding(self, indicator: str, summary: str, detail: str, section: str, anchor: str,
                facts: Mapping[str, Any] | None = None, suggestions: Iterable[Suggestion] = (), unable: bool = False,
                *, rule: str | None = None, topic: str | None = None) -> Finding:
        """A Finding about this job's order and drug (the summary is clipped to the card limit), of the running
        check's rule and topic; ``rule``/``topic`` for a check that reports under another rule (an interaction
        class's own rule). ``rule`` is a rule *key* (``Rule.key``: the contract number); the finding carries the
        id of the drug's rule of that key in the knowledge's registry (``knowledge.rules``)."""
        if (rule is None or topic is None) and self.check is None:
            raise ValueError("a finding needs a rule and a topic: run the check with engine.run_one")
        topic = topic if topic is not None else self.check.topic  # type: ignore[union-attr]
        key, name = (rule, rule) if rule is not None else (self.check.key, self.check.rule)  # type: ignore[union-attr]
        base = {"order": self.order_ref, "drug": self.drug.id}
        if unable and self.check is not None:  # what could not be checked, in words (checks.unavailable)
            base["not_checked"] = self.check.title
        return Finding(rule=self.rule_id(key, name), topic=topic, topic_display=TOPICS[topic], indicator=indicator,
                       summary=clip(summary), detail=detail, drug=self.drug.id, section=section or self.drug.section,
                       anchor=anchor, order_id=self.order_id, facts={**base, **(facts or {})},
                       suggestions=tuple(suggestions), unable=unable)

    def setting(self, code: str) -> int:
        """The value in force of an adjustable setting of the running check's rule: the site configuration's, else
        the knowledge's default (``knowledge.site``)."""
        if self.check is None:
            raise ValueError("a setting belongs to a rule: run the check with engine.run_one")
        return setting_value(self.run.knowledge, self.run.site, self.rule_id(self.check.key, self.check.rule), code)

    def window(self, spec: tuple[str, str, str]) -> Window:
        """The time window of an adjustable setting (``checks.config``: code, unit, what it selects)."""
        code, unit, noun = spec
        return Window(self.setting(code), unit, noun)

    def threshold(self, code: str) -> RuleThreshold:
        """A fixed threshold of the drug's rules (``knowledge.rules.threshold``: the drug's registry, else another
        registry's; no site configuration changes it): ``.value`` in ``.unit``, ``.holds(measured)``."""
        return threshold(self.run.knowledge, self.drug.id, code)

    def threshold_window(self, spec: tuple[str, str]) -> Window:
        """A fixed threshold that is a time span (a UCUM duration, e.g. ``wk``) as a window of whole days (else
        hours): ``spec`` is its code and what the window selects (``checks.config``)."""
        code, noun = spec
        found = self.threshold(code)
        span = duration({"value": found.value, "code": found.unit})
        if span is None:
            raise ValueError(f"the threshold {code!r} is not a time span ({found.unit})")
        return Window.of(span, noun)

    def rule_id(self, key: str, name: str) -> str:
        """The id of the drug's rule named by ``key`` in the registry; a drug without a registry entry for it
        (no registry, or an interaction class the contract does not name) gets ``<drug>-<name>``, ``name``
        being the check's name or the interaction class's rule: stable all the same."""
        found = rule_for(self.run.knowledge, self.drug.id, key)
        return found.id if found else f"{self.drug.id}-{name}"

    def name_of(self, resource: Resource) -> str:
        """What the chart calls the medication of an order or a medication record: its text or display,
        shortened; for a medication given by code alone, the knowledge's name of the drug it is, else the
        label of the group member it is (an interaction value set's display of its code)."""
        concepts = self.run.concepts(resource)
        name = wording.medication_name(concepts)
        if name:
            return name
        drugs = self.run.drugs_of(resource)
        if drugs:
            return drugs[0].name
        for inter in self.drug.interactions:
            label = wording.member_label(self.run.knowledge, inter.value_set, concepts)
            if label:
                return label
        return "the ordered medication"

    def delete(self, resource: Resource) -> Suggestion:
        """Suggest cancelling a draft order (``delete`` with its ``Type/id``; the text names its medication)."""
        label, description = wording.suggestion_words("cancel", name=self.name_of(resource))
        return Suggestion(label=clip(label, 80), action="delete", description=description,
                          resource_id=reference_key(resource))

    def delete_all(self, resources: Sequence[Resource], group: str) -> Suggestion:
        """Suggest cancelling several draft orders of one ``group`` (a value set's member name) together: one
        suggestion, a ``delete`` action per order, all of them taken (``action_selection`` ``all``: one order left
        keeps the problem); a single order, or more than ``MAX_ACTIONS_PER_SUGGESTION``: ``delete`` of the first."""
        if len(resources) == 1 or len(resources) > MAX_ACTIONS_PER_SUGGESTION:
            return self.delete(resources[0])
        first, *rest = (self.delete(resource) for resource in resources)
        label, _ = wording.suggestion_words("cancel-all", count=len(resources), group=group)
        return replace(first, label=clip(label, 80), action_selection="all",
                       more=tuple(Action("delete", s.description, resource_id=s.resource_id) for s in rest))


def _codes_by_reference(conditions: Iterable[Resource]) -> dict[str, list[Any]]:
    """The code of each condition that has one, by the references that name it (``Type/id`` and ``#id``)."""
    found: dict[str, list[Any]] = {}
    for cond in conditions:
        if cond.get("code"):
            for key in {reference_key(cond), f"#{cond.get('id')}"}:
                found.setdefault(key, []).append(cond["code"])
    return found


def _name(concept: Mapping[str, Any] | None) -> str:
    return concept_text(concept) or "recorded"


CheckFunction = Callable[[Job], Iterable[Finding]]


@dataclass(frozen=True)
class Check:
    """A registered check: which contract rules it implements, and what the engine reports if it fails."""

    rule: str
    numbers: tuple[int, ...]
    topic: str
    anchor: str
    title: str  # what it checks, for "Unable to check <title>"
    reverse: bool
    function: CheckFunction
    position: float  # where its findings come in the output: its first contract number (or ``after``)
    needs: frozenset[str] = frozenset()  # the patient data keys it reads (context.DATA_KEYS)
    rule_key: str = ""  # the registry rule its findings belong to (``Rule.key``); default: its first number

    @property
    def key(self) -> str:
        return self.rule_key or (str(self.numbers[0]) if self.numbers else self.rule)


CHECKS: list[Check] = []


def check(rule: str, numbers: tuple[int, ...], topic: str, anchor: str, title: str, *, needs: Iterable[str],
          reverse: bool = False, after: float | None = None,
          rule_key: str = "") -> Callable[[CheckFunction], CheckFunction]:
    """Register a check function; the registry is kept in contract order (the order of the findings).
    ``rule`` names the check (logs); its findings carry the registry id of the rule ``rule_key`` (default: the
    first of ``numbers``; a check of several rules names the rule per finding).
    ``needs``: every patient data key the check reads (directly or through ``Run``/``Job``: a guideline
    chosen by age and recorded indication reads ``patient`` and ``conditions``)."""
    needed = frozenset(needs)
    unknown = needed - set(DATA_KEYS)
    if unknown:
        raise ValueError(f"check {rule} needs unknown data keys {sorted(unknown)}")

    def register(function: CheckFunction) -> CheckFunction:
        position = after if after is not None else float(min(numbers))
        CHECKS.append(Check(rule, numbers, topic, anchor, title, reverse, function, position, needed, rule_key))
        CHECKS.sort(key=lambda c: c.position)
        return function
    return register


# Data keys each kind of patient data comes from (for "Unable to check" findings).
DATA_LABELS = {PATIENT: "patient record (birth date)", CONDITIONS: "condition list", ALLERGIES: "allergy list",
               MEDICATIONS: "medication list", OBSERVATIONS: "observations (lab results, vital signs)"}


def unavailable_text(keys: Iterable[str]) -> str:
    return " and ".join(DATA_LABELS.get(k, k) for k in keys)
