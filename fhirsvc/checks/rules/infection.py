"""Infection (#12) and neutropenia (#13): the drug's warnings on the inability to fight infections and on
decreased white blood cells.

An active infection or a recent fever (#12); a low absolute neutrophil count or a neutropenia condition
(#13). Each runs for a drug whose knowledge has a warning ClinicalUseDefinition pointing to the value set.
"""

from __future__ import annotations

from collections.abc import Iterable

from fhirsvc.checks import wording
from fhirsvc.checks.base import Job, check
from fhirsvc.checks.config import (
    FEVER_TEMPERATURES,
    VS_BODY_TEMPERATURE,
    VS_NEUTROPENIA,
    VS_NEUTROPHIL_COUNT,
    VS_SERIOUS_INFECTIONS,
)
from fhirsvc.checks.context import CONDITIONS, OBSERVATIONS
from fhirsvc.checks.findings import Finding
from fhirsvc.checks.reading.observations import Measurement, Threshold, newest_measurement, readings_within
from fhirsvc.checks.reading.resources import reference_key
from fhirsvc.checks.reading.windows import Window, day
from fhirsvc.checks.rules.warning import unable_finding, warning_quote, warning_words
from fhirsvc.drugmodel.profile import section_of
from fhirsvc.drugmodel.units import cells_10e9_per_l, celsius
from fhirsvc.terminology import ValueSetMatcher

GIGA_PER_L = "\u00d7 10\u2079/L"  # x 10^9/L as printed on a card


def anc_test(job: Job) -> Threshold:
    """#13: is the count below the knowledge's threshold (a count reported as a bound, "<0.5", is read when it
    decides this)."""
    low = job.threshold("neutrophil-count")
    return Threshold.compare(low.comparator, low.value, low.unit)


def _sentence(text: str) -> str:
    """The text with its first letter upper-cased (a clause as a sentence)."""
    return text[:1].upper() + text[1:]


@check("active-infection", (12,), "COND", "warnings", "active infection", needs=(CONDITIONS, OBSERVATIONS))
def check_infection(job: Job) -> Iterable[Finding]:
    """#12 COND warning: an active condition in the drug's serious-infection value set, or a body
    temperature of at least the knowledge's ``fever-celsius`` threshold within the rule's fever window
    (``FEVER_TEMPERATURES``, a setting a site may adjust). Monograph SECTION 1 of 4 >
    IMPORTANT INFORMATION > Inability to fight infections."""
    cud = job.drug.warning(VS_SERIOUS_INFECTIONS)
    if cud is None:
        return []
    section = section_of(cud)
    found = job.run.conditions_in(VS_SERIOUS_INFECTIONS)
    if found:
        cond = found[0]
        name = wording.record_name(cond)
        return [job.finding(
            "warning",
            *warning_words(job, f"Active infection recorded ({name})",
                      wording.markdown("Active infection on the problem list: **{name}**{recorded}.", name=name,
                                       recorded=wording.recorded_on(cond)), cud,
                      wording.ADVICE["infection"]),
            section, "warnings", {"condition": reference_key(cond), "value_set": VS_SERIOUS_INFECTIONS})]
    matcher = job.run.value_set(VS_BODY_TEMPERATURE)
    window, fever_celsius = job.window(FEVER_TEMPERATURES), job.threshold("fever-celsius")
    fever_test = Threshold.compare(fever_celsius.comparator, fever_celsius.value, "°C")
    readings = readings_within(job.run.observations, matcher, job.run.now, window, celsius,
                               fever_test) if matcher is not None else []
    fevers = [r for r in readings if r.readable and r.meets]
    if fevers:
        fever = max(fevers, key=lambda r: (r.value or 0.0))
        value, obs, when = round(fever.value or 0.0, 1), fever.observation, fever.when
        shown = f"{fever.comparator}{value:g}"
        return [job.finding(
            "warning",
            *warning_words(job, f"Fever {shown} °C ({fever.date})",
                      wording.markdown("Body temperature **{shown} °C** on {date}, a sign of infection (fever: "
                                       "{fever:g} °C or more {window}).", shown=shown, date=fever.date,
                                       fever=fever_celsius.value, window=_within(window)), cud,
                      wording.ADVICE["infection"]),
            section, "warnings",
            {"temperature": {"value": value, "unit": "Cel", "date": fever.date, "observation": reference_key(obs),
                             **({"comparator": fever.comparator} if fever.comparator else {})},
             "threshold_celsius": fever_celsius.value, "window_hours": window.limit,
             "placed_at": "last instant of its date" if when and not when.exact else "as recorded"})]
    missing = job.run.unavailable(CONDITIONS, OBSERVATIONS)
    if missing:
        return [unable_finding(job, "warning", "active infection", missing, section,
                               "warnings", "Ask about infection and fever before signing.")]
    if readings and not any(r.readable for r in readings):
        newest = readings[0]
        return [job.finding(
            "warning",
            *wording.words("warning.unable", what="fever", drug=job.drug.name,
                           problem=f"newest temperature cannot be used ({newest.shown or 'no value'}, {newest.date})",
                           reason=f"No active infection is recorded, and no body temperature of the last "
                           f"{window.limit} hours can be used: the newest ({newest.described()}). Fever "
                           f"is {fever_celsius.value:g} °C or more ({_within(window)}).",
                           todo="Take the temperature before signing.", quote=warning_quote(cud)),
            section, "warnings",
            {"temperature_unreadable": [{"observation": reference_key(r.observation), "date": r.date,
                                         "found": r.shown, "problem": r.problem} for r in readings],
             "window_hours": window.limit}, unable=True)]
    return []


def _within(window: Window) -> str:
    """The fever window as a card says it: ``within 72 hours; temperatures older than 72 hours are not used``."""
    return f"within {window.limit} hours; {window.rule}"


@check("neutropenia", (13,), "LAB", "warnings", "neutrophil count", needs=(CONDITIONS, OBSERVATIONS))
def check_neutropenia(job: Job) -> Iterable[Finding]:
    """#13 LAB warning: the newest absolute neutrophil count is below the knowledge's ``neutrophil-count``
    threshold (units converted; a percentage is not usable), or an active condition in the drug's neutropenia
    value set. Monograph
    SECTION 1 of 4 > IMPORTANT INFORMATION > Decreased white blood cells. A missing count is #14's."""
    return neutropenia(job, newest_readable=False)


def _neutrophils(job: Job, matcher: ValueSetMatcher, newest_readable: bool) -> Measurement:
    """The newest neutrophil count (``newest_readable``: the newest one that can be read, the others skipped)."""
    return newest_measurement(job.run.observations, matcher, job.run.now, cells_10e9_per_l, "10*9/L",
                              test=anc_test(job), readable_only=newest_readable)


def neutropenia(job: Job, newest_readable: bool) -> list[Finding]:
    """#13's findings; ``newest_readable`` (patient-view, on therapy): judged on the newest readable count, a newer
    one that cannot be read being the blood-count reminder's (counted as not done), not a card of its own."""
    cud = job.drug.warning(VS_NEUTROPENIA)
    if cud is None:
        return []
    section = section_of(cud)
    matcher, low = job.run.value_set(VS_NEUTROPHIL_COUNT), job.threshold("neutrophil-count").value
    measure = _neutrophils(job, matcher, newest_readable) if matcher else None
    if measure is not None and measure.found and measure.meets:
        shown = f"{measure.shown.split(' ')[0]} {GIGA_PER_L}"
        per_ul = round((measure.value or 0.0) * 1000)
        return [job.finding(
            "warning",
            *warning_words(job, f"Low neutrophil count {shown} ({day(measure.when)})",
                      wording.markdown("Newest absolute neutrophil count: **{shown}** ({per_ul} /\u00b5L) on {when}, "
                                       "below {limit:g} {unit}.", shown=shown, per_ul=per_ul, when=day(measure.when),
                                       limit=low, unit=GIGA_PER_L), cud,
                      wording.ADVICE['neutropenia']),
            section, "warnings", {**measure.facts("neutrophils"), "threshold_10e9_per_l": low})]
    found = job.run.conditions_in(VS_NEUTROPENIA)
    if found:
        cond = found[0]
        name = wording.record_name(cond)
        return [job.finding(
            "warning",
            *warning_words(job, f"Neutropenia recorded ({name})" if name.lower() != "neutropenia"
                      else "Neutropenia recorded",
                      wording.markdown("Active on the problem list: **{name}**{recorded}.", name=name,
                                       recorded=wording.recorded_on(cond)), cud,
                      wording.ADVICE["neutropenia"]),
            section, "warnings", {"condition": reference_key(cond),
                                  **(measure.facts("neutrophils") if measure else {})})]
    missing = job.run.unavailable(OBSERVATIONS)
    if not missing and CONDITIONS in job.context.unavailable and not (measure and measure.found):
        missing = [CONDITIONS]
    if missing:
        return [unable_finding(job, "warning", "the neutrophil count", missing, section,
                               "warnings", "Review the latest neutrophil count before signing.")]
    if measure is not None and measure.status == "unreadable":
        label = "neutrophil count"
        return [job.finding(
            "warning",
            *wording.words("warning.unable", what="the neutrophil count", drug=job.drug.name,
                           problem=measure.brief(label), reason=f"{_sentence(measure.problem(label))}.",
                           todo=f"An absolute count (\u00d7 10\u2079/L or /\u00b5L, status final) is needed to check "
                           f"for neutropenia (below {low:g} {GIGA_PER_L}).",
                           quote=warning_quote(cud)),
            section, "warnings", {**measure.facts("neutrophils"), "threshold_10e9_per_l": low},
            unable=True)]
    return []
