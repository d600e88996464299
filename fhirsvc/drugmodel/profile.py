"""What the rules read about one drug, taken from its MedicationKnowledge and the resources it points to.

A ``DrugProfile`` is built for every MedicationKnowledge in the knowledge: its product value set (the
``value-set`` extension on ``MedicationKnowledge.code``), codes and names, strength and the content of one
prefilled syringe (``Medication.totalVolume`` of the associated Medication x strength), intended route,
dosing guidelines per indication (``indicationGuideline[].dosingGuideline[]`` with their dosages,
``maxDosePerPeriod`` and ``patientCharacteristic``s), clinical use issues (``clinicalUseIssue`` ->
ClinicalUseDefinitions: contraindications, interactions with their interactant value sets and
``washout-period``, warnings, indications) and the monitoring PlanDefinition. Nothing here names a drug.

The profiles are built once per knowledge (``fhirsvc.checks.index``) and never change, so what is derived
from them (dose limits, the name pattern) is computed on first use and kept.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property
from typing import Any

from fhirsvc.canonical import EXT_SOURCE_SECTION, EXT_VALUE_SET, EXT_WASHOUT
from fhirsvc.drugmodel.timing import administrations_per_day
from fhirsvc.drugmodel.units import DAYS_PER_UNIT, duration, unit_of
from fhirsvc.knowledge.rules import is_registry
from fhirsvc.knowledge.store import Knowledge
from fhirsvc.ndc import EMPTY_DIRECTORY, NdcDirectory
from fhirsvc.terminology import NamePattern, ValueSetMatcher, codings, knowledge_keys, lookup_keys, name_pattern

Resource = Mapping[str, Any]

def extension_values(element: Mapping[str, Any] | None, url: str) -> list[Any]:
    """The values (``value[x]``) of an element's extensions with this URL."""
    out = []
    for ext in (element or {}).get("extension") or ():
        if ext.get("url") == url:
            out += [v for k, v in ext.items() if k.startswith("value")]
    return out


def value_set_of(element: Mapping[str, Any] | None) -> str | None:
    """The canonical URL of the ValueSet a concept stands for (the ``value-set`` extension), or None."""
    values = extension_values(element, EXT_VALUE_SET)
    return str(values[0]).split("|", 1)[0] if values else None


def section_of(*elements: Mapping[str, Any] | None) -> str:
    """The monograph section (``source-section``) of the first element that has one."""
    for element in elements:
        values = extension_values(element, EXT_SOURCE_SECTION)
        if values:
            return str(values[0])
    return ""


def sections_of(element: Mapping[str, Any] | None) -> list[str]:
    return [str(v) for v in extension_values(element, EXT_SOURCE_SECTION)]


@dataclass(frozen=True)
class Characteristic:
    """One ``patientCharacteristic`` of a dosing guideline, by kind: ``age`` (a value in years), ``weight``
    (needs a body weight: a type with a value set and no value), ``measurement`` (an observation of the
    type's value set compared with a quantity), ``condition`` (an active condition in a value set)."""

    kind: str
    value_set: str | None = None
    comparator: str | None = None
    value: float | None = None
    unit: str = ""
    low: float | None = None
    high: float | None = None
    section: str = ""
    coding: tuple[Mapping[str, Any], ...] = ()
    text: str = ""  # the type's text, e.g. what the measurement is called

    def holds(self, number: float) -> bool:
        """Whether a number (age in years, a measurement in the characteristic's unit) satisfies it."""
        if self.value is not None:
            return compare(number, self.comparator or "=", self.value)
        if self.low is not None and number < self.low:
            return False
        return not (self.high is not None and number > self.high)


def compare(number: float, comparator: str, limit: float) -> bool:
    return {"<": number < limit, "<=": number <= limit, ">": number > limit, ">=": number >= limit,
            "=": number == limit}.get(comparator, number == limit)


def _characteristic(raw: Mapping[str, Any]) -> Characteristic:
    ctype = raw.get("type") or {}
    section = section_of(raw)
    if "valueCodeableConcept" in raw:
        return Characteristic("condition", value_set_of(raw["valueCodeableConcept"]), section=section)
    quantity = raw.get("valueQuantity")
    rng = raw.get("valueRange")
    unit = unit_of(quantity) if quantity else unit_of((rng or {}).get("low") or (rng or {}).get("high"))
    if unit == "a" or unit.lower() in ("years", "year", "yr"):
        if quantity:
            return Characteristic("age", comparator=quantity.get("comparator"), value=quantity.get("value"),
                                  unit="a", section=section)
        return Characteristic("age", low=((rng or {}).get("low") or {}).get("value"),
                              high=((rng or {}).get("high") or {}).get("value"), unit="a", section=section)
    vs = value_set_of(ctype)
    if quantity:
        return Characteristic("measurement", vs, quantity.get("comparator"), quantity.get("value"), unit,
                              section=section, coding=tuple(codings(ctype)), text=str(ctype.get("text") or ""))
    if rng:
        return Characteristic("measurement", vs, None, None, unit, ((rng.get("low") or {}).get("value")),
                              ((rng.get("high") or {}).get("value")), section=section, coding=tuple(codings(ctype)))
    return Characteristic("weight" if vs else "other", vs, section=section, coding=tuple(codings(ctype)))


@dataclass(frozen=True)
class DoseLimit:
    """A ``maxDosePerPeriod`` as an amount per day: ``per_kg`` if the numerator is per kilogram."""

    amount_per_day: float
    unit: str  # "mg" or "mg/kg"
    per_kg: bool


def _limit(ratio: Mapping[str, Any]) -> DoseLimit | None:
    num, den = ratio.get("numerator") or {}, ratio.get("denominator") or {}
    if num.get("value") is None:
        return None
    days = 1.0
    if den:
        days_unit = DAYS_PER_UNIT.get(unit_of(den)) or {"day": 1.0, "days": 1.0}.get(unit_of(den))
        if days_unit is None or not den.get("value"):
            return None
        days = den["value"] * days_unit
    unit = unit_of(num)
    per_kg = unit.lower().replace(" ", "") in ("mg/kg", "mg/kg/d")
    if unit.lower() not in ("mg", "mg/kg"):
        return None
    return DoseLimit(round(num["value"] / days, 6), unit, per_kg)


@dataclass(frozen=True)
class Dosage:
    """One dosage of a guideline: its type text (``standard``, ``starting``, ``split``, ``renal
    adjustment``, ``not established``) and the R5 Dosage."""

    type: str
    dosage: Mapping[str, Any]

    @cached_property
    def limits(self) -> list[DoseLimit]:
        return [lim for lim in (_limit(r) for r in self.dosage.get("maxDosePerPeriod") or ()) if lim]

    @property
    def dose_range(self) -> tuple[float | None, float | None, str]:
        """The dose range of ``doseAndRate`` (low, high, unit), e.g. (1, 2, 'mg/kg')."""
        for dr in self.dosage.get("doseAndRate") or ():
            rng = dr.get("doseRange")
            if rng:
                low, high = rng.get("low") or {}, rng.get("high") or {}
                return low.get("value"), high.get("value"), unit_of(low or high)
        return None, None, ""

    @property
    def repeat(self) -> Mapping[str, Any]:
        return (self.dosage.get("timing") or {}).get("repeat") or {}

    @cached_property
    def per_day(self) -> float | None:
        """Administrations per day (``timing.administrations_per_day``; 1 when the dosage gives no timing)."""
        timing = self.dosage.get("timing")
        return administrations_per_day(timing) if timing else 1.0

    @cached_property
    def mg_per_kg(self) -> tuple[tuple[str, float], ...]:
        """The mg/kg doses of ``doseAndRate``: ("", value) for a quantity, (" (low)", low) and (" (high)", high)
        for a range."""
        out: list[tuple[str, float]] = []
        for dose_rate in self.dosage.get("doseAndRate") or ():
            quantity = dose_rate.get("doseQuantity") or {}
            if _is_mg_per_kg(quantity):
                out.append(("", float(quantity["value"])))
            for bound in ("low", "high"):
                value = (dose_rate.get("doseRange") or {}).get(bound) or {}
                if _is_mg_per_kg(value):
                    out.append((f" ({bound})", float(value["value"])))
        return tuple(out)


def _is_mg_per_kg(quantity: Mapping[str, Any]) -> bool:
    return quantity.get("value") is not None and unit_of(quantity).lower().replace(" ", "") == "mg/kg"


@dataclass(frozen=True)
class Guideline:
    """One ``dosingGuideline``, with its indication (the indicationGuideline's CUD and its value set)."""

    id: str
    section: str
    indication_id: str | None
    indication_value_set: str | None
    dosages: tuple[Dosage, ...]
    characteristics: tuple[Characteristic, ...]
    source: Mapping[str, Any] = field(default_factory=dict, compare=False)  # the dosingGuideline element

    def of_kind(self, kind: str) -> list[Characteristic]:
        return [c for c in self.characteristics if c.kind == kind]

    @cached_property
    def weight_rates(self) -> tuple[tuple[str, float], ...]:
        """The guideline's doses per kg as daily totals, in dosage order, each once: every mg/kg dose (or range
        bound) x the dosage's administrations per day, labelled with the dosage type and bound ("starting
        (low)"), and every mg/kg-per-day maximum, labelled "maximum". Empty for a guideline not dosed by weight."""
        rates: list[tuple[str, float]] = []
        for dosage in self.dosages:
            if dosage.per_day:
                rates += [(f"{dosage.type or 'dose'}{bound}", value * dosage.per_day)
                          for bound, value in dosage.mg_per_kg]
            rates += [("maximum", limit.amount_per_day) for limit in dosage.limits if limit.per_kg]
        return tuple(dict.fromkeys(rates))

    @cached_property
    def split_dosages(self) -> tuple[Dosage, ...]:
        """The dosages that divide the day's dose between several administrations."""
        return tuple(d for d in self.dosages if d.per_day and (d.repeat.get("frequency") or 1) > 1)

    def below_age(self, years: int) -> bool:
        """Whether the guideline is for patients younger than ``years``: it has age characteristics, they all hold
        a year below that age, and not all hold at it."""
        ages = self.of_kind("age")
        return bool(ages) and all(c.holds(years - 1) for c in ages) and not all(c.holds(years) for c in ages)

    @cached_property
    def limits(self) -> list[tuple[Dosage, DoseLimit]]:
        return [(d, lim) for d in self.dosages for lim in d.limits]

    @cached_property
    def weight_based(self) -> bool:
        return any(lim.per_kg for _, lim in self.limits)

    @cached_property
    def fixed_limits(self) -> list[tuple[Dosage, DoseLimit]]:
        return [(d, lim) for d, lim in self.limits if not lim.per_kg]

    @cached_property
    def renal(self) -> bool:
        """A guideline for reduced kidney function: it has a kidney measurement or condition
        characteristic (and no age or weight one)."""
        kinds = {c.kind for c in self.characteristics}
        return bool(kinds & {"measurement", "condition"}) and not kinds & {"age", "weight"}

    @cached_property
    def not_established(self) -> bool:
        """A guideline that gives no dose (``not established`` for its population)."""
        return bool(self.dosages) and all(not d.dosage.get("doseAndRate") and not d.limits and
                                          not d.repeat for d in self.dosages)


@dataclass(frozen=True)
class Interaction:
    """An interaction CUD: the interactant class (value set), the washout period after stopping."""

    cud: Resource
    value_set: str
    text: str
    washout: timedelta | None

    @property
    def id(self) -> str:
        return str(self.cud.get("id", ""))


@dataclass(frozen=True)
class DrugProfile:
    """One drug of the knowledge, as the rules read it."""

    id: str
    names: tuple[str, ...]
    resource: Resource
    codes: frozenset[str]
    product_value_set: str | None
    product: ValueSetMatcher | None
    strength: Strength | None
    mg_per_ml: float | None
    mg_per_syringe: float | None
    route_value_set: str | None
    guidelines: tuple[Guideline, ...]
    cuds: tuple[Resource, ...]
    interactions: tuple[Interaction, ...]
    monitoring: tuple[Resource, ...]
    section: str
    ndc: NdcDirectory = EMPTY_DIRECTORY  # the knowledge's NDCs (resolves unhyphenated 10-digit ones)

    @cached_property
    def _names(self) -> NamePattern | None:
        """The whole-word matcher of the drug's names, built on first use."""
        return name_pattern(self.names)

    @property
    def name(self) -> str:
        return self.names[0] if self.names else self.id

    @property
    def label(self) -> str:
        """The first name with the others (brands) in brackets: ``generic (Brand)``."""
        return f"{self.names[0]} ({', '.join(self.names[1:])})" if len(self.names) > 1 else self.name

    def has_code(self, system: str | None, code: str | None) -> bool:
        if any(key in self.codes for key in lookup_keys(system, code, self.ndc)):
            return True
        return self.product is not None and self.product.has_code(system, code)

    def find_name(self, text: str | None) -> str | None:
        if not text:
            return None
        if self._names is not None:
            found = self._names.find(text)
            if found:
                return found
        return self.product.find_name(text) if self.product is not None else None

    def cuds_of_type(self, cud_type: str) -> list[Resource]:
        return list(self._cuds_by_type.get(cud_type, ()))

    @cached_property
    def _cuds_by_type(self) -> dict[str | None, list[Resource]]:
        found: dict[str | None, list[Resource]] = {}
        for cud in self.cuds:
            found.setdefault(cud.get("type"), []).append(cud)
        return found

    def warning(self, value_set: str) -> Resource | None:
        """The warning CUD whose ``warning.code`` stands for this value set."""
        return self._warnings.get(value_set)

    @cached_property
    def _warnings(self) -> dict[str | None, Resource]:
        """The first warning CUD of each value set (its ``warning.code``)."""
        found: dict[str | None, Resource] = {}
        for cud in self.cuds_of_type("warning"):
            found.setdefault(value_set_of((cud.get("warning") or {}).get("code")), cud)
        return found

    def warning_with_heading(self, heading: str) -> Resource | None:
        """The warning CUD whose monograph section ends with this heading (e.g. "For Seniors")."""
        return self._warnings_by_heading.get(heading)

    @cached_property
    def _warnings_by_heading(self) -> dict[str, Resource]:
        """The first warning CUD of each heading that ends one of its monograph sections."""
        found: dict[str, Resource] = {}
        for cud in self.cuds_of_type("warning"):
            for section in sections_of(cud):
                found.setdefault(section.split("\u203a")[-1].strip(), cud)
        return found

    def indications(self) -> list[tuple[Resource, str | None]]:
        """The indication CUDs with their value sets: those with dosing guidelines first (in
        ``indicationGuideline`` order), then the others."""
        return list(self._indications)

    @cached_property
    def _indications(self) -> tuple[tuple[Resource, str | None], ...]:
        order = {g.indication_id: i for i, g in reversed(list(enumerate(self.guidelines)))}
        cuds = sorted(self.cuds_of_type("indication"), key=lambda c: order.get(c.get("id"), len(order)))
        return tuple((c, value_set_of(((c.get("indication") or {}).get("diseaseSymptomProcedure") or {})
                                      .get("concept"))) for c in cuds)


def _guidelines(knowledge: Knowledge, mk: Resource) -> tuple[Guideline, ...]:
    out = []
    for group in mk.get("indicationGuideline") or ():
        cud_id, vs = None, None
        for ind in group.get("indication") or ():
            ref = (ind.get("reference") or {}).get("reference")
            cud = knowledge.resolve(ref) if ref else None
            if cud is not None:
                cud_id = cud.get("id")
                vs = value_set_of(((cud.get("indication") or {}).get("diseaseSymptomProcedure") or {})
                                  .get("concept"))
                break
            vs = vs or value_set_of(ind.get("concept"))
        for guide in group.get("dosingGuideline") or ():
            dosages = tuple(Dosage(str((d.get("type") or {}).get("text") or ""), dose)
                            for d in guide.get("dosage") or () for dose in d.get("dosage") or ())
            out.append(Guideline(str(guide.get("id") or ""), section_of(guide, group, mk), cud_id, vs, dosages,
                                 tuple(_characteristic(c) for c in guide.get("patientCharacteristic") or ()), guide))
    return tuple(out)


@dataclass(frozen=True)
class Strength:
    """The strength of the solution: ``mg`` in ``ml`` (as the knowledge states it, e.g. 100 mg / 0.67 mL)."""

    mg: float
    ml: float

    @property
    def mg_per_ml(self) -> float:
        return self.mg / self.ml


def _strength(ingredients: Iterable[Mapping[str, Any]]) -> Strength | None:
    """The first active ingredient strength given as mg / mL."""
    for ing in ingredients:
        ratio = ing.get("strengthRatio") or {}
        num, den = ratio.get("numerator") or {}, ratio.get("denominator") or {}
        if (unit_of(num).lower() == "mg" and unit_of(den).lower() == "ml" and num.get("value") and den.get("value")
                and ing.get("isActive", True) is not False):
            return Strength(float(num["value"]), float(den["value"]))
    return None


def _syringe_mg(knowledge: Knowledge, mk: Resource, mg_per_ml: float | None) -> float | None:
    """The content of one prefilled syringe in mg: the associated Medication's ``totalVolume`` (mL) x
    strength (its own ingredient strength if it has one)."""
    for ref in mk.get("associatedMedication") or ():
        med = knowledge.resolve(ref.get("reference") or "")
        if med is None:
            continue
        volume = med.get("totalVolume") or {}
        own = _strength(med.get("ingredient") or ())
        strength = own.mg_per_ml if own else mg_per_ml
        if volume.get("value") and unit_of(volume).lower() == "ml" and strength:
            return round(volume["value"] * strength, 6)
    return None


def _interactions(cuds: Iterable[Resource], own_value_set: str | None) -> tuple[Interaction, ...]:
    out = []
    for cud in cuds:
        if cud.get("type") != "interaction":
            continue
        inter = cud.get("interaction") or {}
        washout = next((duration(v) for v in extension_values(inter, EXT_WASHOUT)), None)
        for interactant in inter.get("interactant") or ():
            concept = interactant.get("itemCodeableConcept")
            vs = value_set_of(concept)
            if vs and vs != own_value_set:
                out.append(Interaction(cud, vs, str((concept or {}).get("text") or ""), washout))
    return tuple(out)


def _monitoring(knowledge: Knowledge, mk: Resource, product_vs: str | None) -> tuple[Resource, ...]:
    """PlanDefinitions about the drug: they cite its MedicationKnowledge or stand for its products."""
    plans = knowledge.derived("checks.plans", _plans_by_subject)
    found = {*plans.get(f"MedicationKnowledge/{mk.get('id')}", ()), *(plans.get(product_vs, ()) if product_vs else ())}
    return tuple(plan for _, plan in sorted(found))


def _plans_by_subject(knowledge: Knowledge) -> dict[str, list[tuple[int, Resource]]]:
    """Each PlanDefinition (with its position in id order) under the MedicationKnowledge references it cites
    and the value set its ``subjectCodeableConcept`` stands for."""
    out: defaultdict[str, list[tuple[int, Resource]]] = defaultdict(list)
    for position, plan in enumerate(knowledge.of_type("PlanDefinition")):
        if is_registry(plan):  # a rule registry cites the drug too, but is no monitoring plan
            continue
        keys = {(a.get("resourceReference") or {}).get("reference") for a in plan.get("relatedArtifact") or ()}
        keys.add(value_set_of(plan.get("subjectCodeableConcept")))
        for key in keys:
            if key is not None:
                out[key].append((position, plan))
    return out


def build_profile(knowledge: Knowledge, mk: Resource) -> DrugProfile:
    """Read one MedicationKnowledge (and what it points to) into a DrugProfile."""
    product_vs = value_set_of(mk.get("code"))
    product = knowledge.value_sets.get(product_vs) if product_vs else None
    codes = {key for c in codings(mk.get("code")) for key in knowledge_keys(c.get("system"), c.get("code"))}
    names = [str(n) for n in mk.get("name") or ()]
    for ref in mk.get("associatedMedication") or ():
        med = knowledge.resolve(ref.get("reference") or "")
        if med is not None:
            codes |= {key for c in codings(med.get("code")) for key in knowledge_keys(c.get("system"), c.get("code"))}
    cuds = tuple(c for c in (knowledge.resolve((r or {}).get("reference") or "")
                             for r in mk.get("clinicalUseIssue") or ()) if c is not None)
    strength = _strength((mk.get("definitional") or {}).get("ingredient") or ())
    mg_per_ml = strength.mg_per_ml if strength else None
    routes = (mk.get("definitional") or {}).get("intendedRoute") or ()
    return DrugProfile(
        id=str(mk.get("id")),
        names=tuple(names),
        resource=mk,
        codes=frozenset(codes),
        product_value_set=product_vs,
        product=product,
        strength=strength,
        mg_per_ml=mg_per_ml,
        mg_per_syringe=_syringe_mg(knowledge, mk, mg_per_ml),
        route_value_set=next((value_set_of(r) for r in routes if value_set_of(r)), None),
        guidelines=_guidelines(knowledge, mk),
        cuds=cuds,
        interactions=_interactions(cuds, product_vs),
        monitoring=_monitoring(knowledge, mk, product_vs),
        section=section_of(mk),
        ndc=knowledge.ndc,
    )


def drug_profiles(knowledge: Knowledge) -> tuple[DrugProfile, ...]:
    """A profile for every MedicationKnowledge, in id order: built once per knowledge and kept with it, so that
    every face reads the same profiles."""
    return knowledge.derived("drugmodel.profiles", lambda k: tuple(build_profile(k, mk)
                                                                  for mk in k.of_type("MedicationKnowledge")))


def profile_of(knowledge: Knowledge, drug_id: str) -> DrugProfile | None:
    """The profile of the MedicationKnowledge with this id, or None."""
    by_id = knowledge.derived("drugmodel.profiles_by_id", lambda k: {p.id: p for p in drug_profiles(k)})
    return by_id.get(drug_id)


__all__ = [
    "Characteristic",
    "Dosage",
    "DoseLimit",
    "DrugProfile",
    "Guideline",
    "Interaction",
    "Strength",
    "build_profile",
    "compare",
    "drug_profiles",
    "extension_values",
    "profile_of",
    "section_of",
    "sections_of",
    "value_set_of",
]
