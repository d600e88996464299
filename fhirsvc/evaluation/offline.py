"""The checks offline, without the web app: on a saved CDS Hooks request, or on a plain FHIR Bundle.

A saved request (``order-select``, ``order-sign``, ``patient-view``) is evaluated as the service would, except
that nothing is fetched (``Environment.offline``): a prefetch key that is missing counts as unavailable ("Unable to
check"). A plain FHIR Bundle stands for the order request ``evaluation.bundles`` makes of it.

Used by ``fhirsvc check FILE.json`` (``fhirsvc/cli.py``).
"""

from __future__ import annotations

import codecs
import os
import stat
from dataclasses import dataclass, field
from datetime import datetime
from http import HTTPStatus
from pathlib import Path
from typing import Any

from fhirsvc.checks.findings import Finding
from fhirsvc.config import DEFAULTS
from fhirsvc.errors import FhirsvcError
from fhirsvc.escaping import plain_text
from fhirsvc.evaluation.bundles import request_from_bundle
from fhirsvc.evaluation.environment import DEFAULT_PUBLIC_BASE, Environment
from fhirsvc.evaluation.pipeline import Evaluation
from fhirsvc.evaluation.services import evaluate
from fhirsvc.jsontext import NotJson, parse_json
from fhirsvc.knowledge import Knowledge
from fhirsvc.knowledge.site import NO_SITE_CONFIG, SiteConfig

MAX_INPUT_BYTES = DEFAULTS["MAX_CONTENT_LENGTH"]  # the largest file read, as the largest HTTP body


class UnreadableInput(FhirsvcError, ValueError):
    """The input is not JSON, not a CDS Hooks order request or a FHIR Bundle, or has nothing to check.
    The message is one line, meant for a person."""

    status = HTTPStatus.BAD_REQUEST


@dataclass(frozen=True)
class OfflineResult:
    hook: str
    now: datetime
    judged: tuple[str, ...]  # Type/id of the judged orders
    findings: list[Finding] = field(default_factory=list)
    cards: list[dict[str, Any]] = field(default_factory=list)
    evaluation: Evaluation | None = None  # the pipeline's result, for the FHIR answer (evaluation.bundles)

    @property
    def critical(self) -> bool:
        return any(f.indicator == "critical" for f in self.findings)


def read_document(path: Path, max_bytes: int = MAX_INPUT_BYTES) -> Any:
    """The JSON document in ``path``; UnreadableInput (one line) if it cannot be read or is not JSON.

    Only a regular file is read (a FIFO, a device such as /dev/zero or a socket is refused without reading,
    so nothing blocks), at most ``max_bytes`` of it (the HTTP routes' body limit, FHIRSVC_MAX_CONTENT_LENGTH),
    and it is parsed as the HTTP routes parse a body (fhirsvc.jsontext.parse_json): UTF-8 (a leading byte-order
    mark is allowed), no NaN or Infinity, nesting at most MAX_DEPTH levels."""
    try:
        mode = os.stat(path).st_mode  # before opening: opening a device (or a FIFO) may block or act
        if stat.S_ISDIR(mode):
            raise UnreadableInput(f"{path}: is a directory")
        if not stat.S_ISREG(mode):
            raise UnreadableInput(f"{path}: not a regular file (a pipe, device or socket is not read)")
        # O_NONBLOCK: should the path have become a FIFO since, opening it does not wait for a writer
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise UnreadableInput(f"{path}: no such file") from None
    except OSError as exc:
        raise UnreadableInput(f"{path}: cannot be read ({exc.strerror or type(exc).__name__})") from None
    with os.fdopen(fd, "rb") as file:
        try:
            info = os.fstat(file.fileno())
            if not stat.S_ISREG(info.st_mode):  # replaced since it was looked at
                raise UnreadableInput(f"{path}: not a regular file (a pipe, device or socket is not read)")
            if info.st_size > max_bytes:
                raise UnreadableInput(f"{path}: larger than {max_bytes} bytes (FHIRSVC_MAX_CONTENT_LENGTH)")
            raw = file.read(max_bytes + 1)
        except OSError as exc:
            raise UnreadableInput(f"{path}: cannot be read ({exc.strerror or type(exc).__name__})") from None
    if len(raw) > max_bytes:  # it grew while being read
        raise UnreadableInput(f"{path}: larger than {max_bytes} bytes (FHIRSVC_MAX_CONTENT_LENGTH)")
    try:
        return parse_json(raw.removeprefix(codecs.BOM_UTF8))
    except NotJson as exc:
        raise UnreadableInput(f"{path}: {exc}") from None


def request_of(document: Any) -> Any:
    """The CDS Hooks request a document stands for: a saved request as it is, a plain Bundle's order request."""
    if not isinstance(document, dict):
        raise UnreadableInput(f"expected a JSON object (a CDS Hooks request or a FHIR Bundle), not a JSON "
                              f"{type(document).__name__.replace('dict', 'object').replace('list', 'array')}")
    if "hook" in document or "context" in document:
        return document
    if document.get("resourceType") == "Bundle":
        try:
            return request_from_bundle(document)
        except FhirsvcError as exc:
            raise UnreadableInput(str(exc)) from None
    if isinstance(document.get("resourceType"), str):
        raise UnreadableInput(f"a {document['resourceType']} is neither a CDS Hooks request nor a Bundle")
    raise UnreadableInput("neither a CDS Hooks request (hook, context) nor a FHIR Bundle")


def evaluate_offline(document: Any, knowledge: Knowledge, now: datetime | None = None,
                     public_base: str = DEFAULT_PUBLIC_BASE, site: SiteConfig = NO_SITE_CONFIG) -> OfflineResult:
    """Run the checks on a saved request or a plain Bundle, under the ``site`` configuration: the findings and the
    cards the service would answer. Nothing is fetched. UnreadableInput if the document cannot be checked."""
    try:
        result = evaluate(request_of(document), Environment.offline(knowledge, public_base, now, site))
    except FhirsvcError as exc:  # not valid (400), more than a limit allows (413), nothing about the patient (412)
        raise UnreadableInput(str(exc)) from None
    refs = tuple(f"{o.get('resourceType')}/{o.get('id')}" for o in result.orders if o.get("id") in result.judged)
    return OfflineResult(hook=result.hook, now=result.now, judged=refs, findings=result.findings, cards=result.cards,
                         evaluation=result)


def findings_json(result: OfflineResult) -> dict[str, Any]:
    """The result as JSON: the findings (topic, indicator, summary, order, ...) and the CDS Hooks cards."""
    return {
        "hook": result.hook, "now": result.now.isoformat(), "judged": list(result.judged),
        "critical": result.critical,
        "findings": [{"topic": f.topic, "topicDisplay": f.topic_display, "indicator": f.indicator,
                      "summary": f.summary, "order": order_reference(f), "rule": f.rule, "drug": f.drug,
                      "unableToCheck": f.unable} for f in result.findings],
        "cards": result.cards,
    }


def order_reference(finding: Finding) -> str:
    return str(finding.facts.get("order") or finding.order_id or "")


def findings_table(result: OfflineResult) -> str:
    """The findings as a plain-text table (topic, indicator, rule id, summary, order) and a one-line tally; what the
    input named (order ids, names) is ``plain_text``, so that no control character reaches the terminal."""
    rows = [tuple(map(plain_text, (f.topic, f.indicator, f.rule, f.summary, order_reference(f))))
            for f in result.findings]
    judged = plain_text(", ".join(result.judged) or "none")
    tally = {level: sum(1 for f in result.findings if f.indicator == level)
             for level in ("critical", "warning", "info")}
    footer = (f"{len(rows)} finding(s): {tally['critical']} critical, {tally['warning']} warning, {tally['info']} info"
              f" | {result.hook}, judged: {judged} | now {result.now.isoformat()}")
    if not rows:
        return f"No findings.\n{footer}"
    header = ("TOPIC", "INDICATOR", "RULE", "SUMMARY", "ORDER")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(5)]
    lines = ["  ".join([*(cell.ljust(widths[i]) for i, cell in enumerate(r[:4])), r[4]]).rstrip()
             for r in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join([*lines, footer])
