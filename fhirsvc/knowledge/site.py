"""Site configuration: what one site changes of the rules (``FHIRSVC_SITE_CONFIG``, docs/configuration.md).

A JSON file ``{"version": "...", "rules": {"<rule id>": {...}}}``; per rule, each optional:

- ``enabled``: false, the rule gives no card;
- ``indicator``: ``info``, ``warning`` or ``critical``, instead of the rule's default;
- the rule's adjustable settings, as the knowledge declares them (the ``site-setting`` extensions of the rule's
  action in its registry, read by ``knowledge.rules``: code, allowed range, unit, default), e.g. how recent a kidney
  function result must be;
- ``reason``: why; required to weaken a rule the knowledge marks as never to be weakened (``never-weaken``: the
  critical allergy and live-vaccine rules): ``enabled: false`` or a lower indicator.

A rule's fixed thresholds (``rule-threshold``, read by ``knowledge.rules.threshold``) are not settings: no key of
this file reaches them.

Read once at start-up (``load_site_config``) and validated against the knowledge: an unreadable file, bad JSON, an
unknown rule id or setting, a value of the wrong type or out of its range, a weakening without a reason stops
start-up (``ConfigError``) with a message naming each. The checks read each adjustable value through
``SiteConfig.value`` (the site's, else the knowledge's default); the evaluation drops the findings of disabled rules
and sets the site's indicator. The version names the settings on every card, in /healthz and in governance.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fhirsvc.canonical import EXT_NEVER_WEAKEN, EXT_SITE_SETTING
from fhirsvc.errors import ConfigError
from fhirsvc.knowledge.rules import Rule, rules
from fhirsvc.knowledge.store import Knowledge

INDICATORS = ("info", "warning", "critical")  # from least to most severe
RULE_KEYS = ("enabled", "indicator", "reason")
MAX_VERSION_LENGTH = 64
MAX_REASON_LENGTH = 1000
MAX_FILE_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Setting:
    """An adjustable number of a rule, as its registry action declares it (``site-setting`` extension)."""

    code: str
    unit: str
    minimum: int
    maximum: int
    default: int
    description: str

    def as_json(self) -> dict[str, Any]:
        return {"code": self.code, "type": "integer", "unit": self.unit, "minimum": self.minimum,
                "maximum": self.maximum, "default": self.default, "description": self.description}


@dataclass(frozen=True)
class Adjustable:
    """What a site may change of one rule: its declared settings, and whether weakening it needs a reason."""

    rule: Rule
    settings: tuple[Setting, ...] = ()
    never_weaken: bool = False

    def setting(self, code: str) -> Setting | None:
        return next((s for s in self.settings if s.code == code), None)


def adjustable(knowledge: Knowledge) -> dict[str, Adjustable]:
    """Every rule of the knowledge's registries by id, with what a site may change of it (read once)."""
    return knowledge.derived("site.adjustable", _read_adjustable)


def _read_adjustable(knowledge: Knowledge) -> dict[str, Adjustable]:
    found = {}
    for rule in rules(knowledge):
        plan = knowledge.resolve(rule.registry) or {}
        action: Mapping[str, Any] = next((a for a in plan.get("action") or () if a.get("id") == rule.id), {})
        extensions = action.get("extension") or ()
        settings = tuple(_setting(e) for e in extensions if e.get("url") == EXT_SITE_SETTING)
        never = any(e.get("url") == EXT_NEVER_WEAKEN and e.get("valueBoolean") is True for e in extensions)
        found[rule.id] = Adjustable(rule, settings, never)
    return found


def _setting(extension: Mapping[str, Any]) -> Setting:
    parts = {part["url"]: next(v for k, v in part.items() if k.startswith("value"))
             for part in extension.get("extension") or ()}
    return Setting(str(parts["code"]), str(parts["unit"]), int(parts["minimum"]), int(parts["maximum"]),
                   int(parts["default"]), str(parts["description"]))


def setting_value(knowledge: Knowledge, site: SiteConfig, rule_id: str, code: str) -> int:
    """The value of a rule's adjustable setting in force: the site's, else the knowledge's default (for a rule
    that does not declare it, e.g. a drug without a registry, the default another rule declares for the same
    code). KeyError if no rule of the knowledge declares it."""
    rules_known = adjustable(knowledge)
    found = rules_known.get(rule_id)
    declared = found.setting(code) if found else None
    if declared is None:  # a drug whose registry does not declare it: the default another registry declares
        declared = next((s for r in rules_known.values() for s in r.settings if s.code == code), None)
        if declared is None:
            raise KeyError(f"no rule of the knowledge declares the setting {code!r}")
    return site.value(rule_id, code, declared.default)


@dataclass(frozen=True)
class RuleSettings:
    """What the site set for one rule."""

    enabled: bool = True
    indicator: str | None = None  # None: the rule's default
    values: Mapping[str, int] = field(default_factory=dict)  # adjustable settings by code
    reason: str | None = None


@dataclass(frozen=True)
class SiteConfig:
    """The site configuration in force; ``version`` None: none (every rule as the knowledge says)."""

    version: str | None = None
    rules: Mapping[str, RuleSettings] = field(default_factory=dict)
    document: Mapping[str, Any] = field(default_factory=dict)  # the file as read (canonical JSON for storage)

    def enabled(self, rule_id: str) -> bool:
        found = self.rules.get(rule_id)
        return found is None or found.enabled

    def indicator(self, rule_id: str, default: str) -> str:
        found = self.rules.get(rule_id)
        return found.indicator if found is not None and found.indicator else default

    def value(self, rule_id: str, code: str, default: int) -> int:
        """The site's value of a rule's adjustable setting, else ``default`` (the knowledge's)."""
        found = self.rules.get(rule_id)
        return found.values.get(code, default) if found is not None else default

    @property
    def digest(self) -> str | None:
        if self.version is None:
            return None
        return hashlib.sha256(canonical_json(self.document).encode()).hexdigest()


NO_SITE_CONFIG = SiteConfig()


def canonical_json(document: Mapping[str, Any]) -> str:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def load_site_config(path: str | Path | None, knowledge: Knowledge) -> SiteConfig:
    """The site configuration of the file at ``path`` (empty: none), validated against the knowledge's rules;
    ConfigError naming every mistake."""
    if not path:
        return NO_SITE_CONFIG
    where = f"FHIRSVC_SITE_CONFIG {str(path)!r}"
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read the file: {exc.strerror or exc}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise ConfigError(f"{where}: larger than {MAX_FILE_BYTES} bytes")
    try:
        document = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{where}: not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{where}: not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    problems: list[str] = []
    config = parse_site_config(document, knowledge, problems)
    if problems:
        raise ConfigError(f"{where} is not a valid site configuration:\n" + "\n".join(f"- {p}" for p in problems))
    return config


def parse_site_config(document: Any, knowledge: Knowledge, problems: list[str]) -> SiteConfig:
    """The configuration of a parsed document; each mistake appended to ``problems``, naming where it is."""
    if not isinstance(document, dict):
        problems.append("the file must hold a JSON object {\"version\": ..., \"rules\": {...}}")
        return NO_SITE_CONFIG
    for key in sorted(set(document) - {"version", "rules"}):
        problems.append(f"{key}: unknown key (a site configuration has \"version\" and \"rules\")")
    version = document.get("version")
    if not isinstance(version, str) or not version.strip() or len(version) > MAX_VERSION_LENGTH:
        problems.append(f"version: required, a non-empty string of at most {MAX_VERSION_LENGTH} characters "
                        "that names these settings")
    given = document.get("rules", {})
    if not isinstance(given, dict):
        problems.append("rules: must be a JSON object of rule ids")
        given = {}
    known = adjustable(knowledge)
    parsed: dict[str, RuleSettings] = {}
    for rule_id, settings in given.items():
        rule = known.get(rule_id)
        if rule is None:
            problems.append(f"rules.{rule_id}: no such rule (`fhirsvc rules` lists them)")
            continue
        found = _rule_settings(rule, settings, problems)
        if found is not None:
            parsed[rule_id] = found
    return SiteConfig(version if isinstance(version, str) else None, parsed, document)


def _rule_settings(found: Adjustable, settings: Any, problems: list[str]) -> RuleSettings | None:
    rule = found.rule
    where = f"rules.{rule.id}"
    if not isinstance(settings, dict):
        problems.append(f"{where}: must be a JSON object (enabled, indicator, reason, and the rule's settings)")
        return None
    declared = {setting.code: setting for setting in found.settings}
    count = len(problems)
    for key in sorted(set(settings) - set(RULE_KEYS) - set(declared)):
        accepted = ", ".join([*RULE_KEYS, *declared])
        problems.append(f"{where}.{key}: no such setting of this rule (it accepts {accepted})")
    enabled = settings.get("enabled", True)
    if not isinstance(enabled, bool):
        problems.append(f"{where}.enabled: must be true or false")
    indicator = settings.get("indicator")
    if indicator is not None and indicator not in INDICATORS:
        problems.append(f"{where}.indicator: must be one of {', '.join(INDICATORS)}")
    reason = settings.get("reason")
    if reason is not None and (not isinstance(reason, str) or not reason.strip() or len(reason) > MAX_REASON_LENGTH):
        problems.append(f"{where}.reason: a non-empty string of at most {MAX_REASON_LENGTH} characters")
    values: dict[str, int] = {}
    for code, setting in declared.items():
        if code not in settings:
            continue
        value = settings[code]
        if not isinstance(value, int) or isinstance(value, bool):
            problems.append(f"{where}.{code}: must be a whole number ({setting.unit})")
        elif not setting.minimum <= value <= setting.maximum:
            problems.append(f"{where}.{code}: {value} is out of range ({setting.minimum} to {setting.maximum} "
                            f"{setting.unit})")
        else:
            values[code] = value
    if found.never_weaken and not reason:
        if enabled is False:
            problems.append(f"{where}.enabled: this rule is never to be weakened: switching it off needs a \"reason\"")
        if indicator in INDICATORS and INDICATORS.index(indicator) < INDICATORS.index(rule.indicator):
            problems.append(f"{where}.indicator: this rule is never to be weakened: {indicator} below its "
                            f"{rule.indicator} needs a \"reason\"")
    if len(problems) > count:
        return None
    return RuleSettings(enabled, indicator, values, reason)


def weakened(rule: Rule, settings: RuleSettings) -> bool:
    """Whether the site's settings weaken the rule: switched off, or a lower indicator than its default."""
    lower = (settings.indicator is not None and rule.indicator in INDICATORS
             and INDICATORS.index(settings.indicator) < INDICATORS.index(rule.indicator))
    return not settings.enabled or lower
