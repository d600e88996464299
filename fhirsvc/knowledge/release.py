"""Knowledge releases: the one release stamp the knowledge carries, the check that a release bumps it where the
content changed, and the change list between two releases (a semantic diff of the resources, not of the text).

The release stamp is the ``version``, ``date`` and ``status`` that every canonical resource (every resource with a
``url``) carries, one value each for the whole knowledge; the package version is that ``version``. A change of
content is any change of a resource other than those three stamp elements. docs/packages.md says how a release
is made and recorded.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

STAMP_ELEMENTS = ("version", "date", "status")
RELEASE_STATUS = "active"
_VERSION = re.compile(r"^(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?$")

Key = tuple[str, str]
Resources = Mapping[Key, Mapping[str, Any]]


@dataclass(frozen=True)
class Stamp:
    """The release stamp: each element's values across the canonical resources (one value each when sound)."""

    versions: frozenset[str]
    dates: frozenset[str]
    statuses: frozenset[str]

    @property
    def version(self) -> str | None:
        return next(iter(self.versions)) if len(self.versions) == 1 else None

    @property
    def date(self) -> str | None:
        return next(iter(self.dates)) if len(self.dates) == 1 else None

    def problems(self) -> list[str]:
        """What keeps the stamp from being one release's: an element missing or with several values."""
        found = []
        for name, values in (("version", self.versions), ("date", self.dates), ("status", self.statuses)):
            if len(values) != 1:
                shown = ", ".join(sorted(values)) or "none"
                found.append(f"the canonical resources carry {len(values)} {name}s ({shown}); a release has one")
        return found


def stamp(resources: Resources) -> Stamp:
    """The release stamp of the knowledge: the version, date and status of its canonical resources."""
    canonical = [res for res in resources.values() if isinstance(res.get("url"), str)]
    values = {name: frozenset(str(res.get(name, "")) for res in canonical) for name in STAMP_ELEMENTS}
    return Stamp(values["version"], values["date"], values["status"])


def parse_version(version: str) -> tuple[int, int, int, str] | None:
    """``major.minor.patch`` with an optional ``-label`` (the FHIR package version form), or None."""
    match = _VERSION.match(version)
    if not match:
        return None
    return int(match.group(1)), int(match.group(2)), int(match.group(3)), match.group(4) or ""


def newer(version: str, than: str) -> bool:
    """Whether ``version`` comes after ``than`` (a labelled version comes before its unlabelled one)."""
    a, b = parse_version(version), parse_version(than)
    if a is None or b is None:
        return False
    return (a[:3], a[3] == "", a[3]) > (b[:3], b[3] == "", b[3])


# --- the semantic diff ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """One difference: the element (a FHIRPath-like path, list items named by their id, url or code where they
    have one), what kind of value it is, and the value before and after (None: absent)."""

    path: str
    kind: str  # number, code, text, element
    old: Any
    new: Any

    def __str__(self) -> str:
        old, new = self.old, self.new
        if isinstance(old, str) and isinstance(new, str):
            old, new = _from_first_difference(old, new)
        return f"{self.kind}: `{self.path}`: {_shown(old)} → {_shown(new)}"


SHOWN_BEFORE_DIFFERENCE = 40


def _from_first_difference(old: str, new: str) -> tuple[str, str]:
    """Two long texts shown from a little before where they first differ, so a change list names the change
    rather than the part both share."""
    same = next((i for i, (a, b) in enumerate(zip(old, new, strict=False)) if a != b), min(len(old), len(new)))
    start = max(0, same - SHOWN_BEFORE_DIFFERENCE)
    if start == 0:
        return old, new
    return "..." + old[start:], "..." + new[start:]


@dataclass(frozen=True)
class Changes:
    """Everything that differs between two releases' resources."""

    added: tuple[Key, ...]
    removed: tuple[Key, ...]
    changed: Mapping[Key, tuple[Change, ...]]

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)


def compare(old: Resources, new: Resources) -> Changes:
    """The resources added, removed and changed (each change named), the release stamp left out."""
    changed = {}
    for key in sorted(set(old) & set(new)):
        found = tuple(diff(_content(old[key]), _content(new[key]), key[0]))
        if found:
            changed[key] = found
    return Changes(tuple(sorted(set(new) - set(old))), tuple(sorted(set(old) - set(new))), changed)


def _content(resource: Mapping[str, Any]) -> dict[str, Any]:
    """A resource without its release stamp (a canonical resource's version, date and status)."""
    if not isinstance(resource.get("url"), str):
        return dict(resource)
    return {key: value for key, value in resource.items() if key not in STAMP_ELEMENTS}


def diff(old: Any, new: Any, path: str) -> Iterator[Change]:
    """Every leaf that differs between two JSON trees; list items are paired by their label when every item has
    a distinct one, else by position."""
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        for key in [*old, *(k for k in new if k not in old)]:
            yield from diff(old.get(key), new.get(key), f"{path}.{key}")
    elif isinstance(old, (list, tuple)) and isinstance(new, (list, tuple)):
        before, after = _labelled(old), _labelled(new)
        if before is None or after is None:
            before = {str(i): item for i, item in enumerate(old)}
            after = {str(i): item for i, item in enumerate(new)}
        for label in [*before, *(k for k in after if k not in before)]:
            yield from diff(before.get(label), after.get(label), f"{path}[{label}]")
    elif old != new:
        yield Change(path, _kind(path, old, new), old, new)


def _labelled(items: Any) -> dict[str, Any] | None:
    """The items by label (``id``, else ``url``, else ``system|code``, else ``code``), or None when any item has
    none or two share one."""
    labels = {}
    for item in items:
        label = _label(item)
        if label is None or label in labels:
            return None
        labels[label] = item
    return labels


def _label(item: Any) -> str | None:
    if not isinstance(item, Mapping):
        return None
    for key in ("id", "url", "linkId"):
        if isinstance(item.get(key), str):
            return item[key].rsplit("/", 1)[-1] if key == "url" else item[key]
    if isinstance(item.get("code"), str):
        return f"{item['system']}|{item['code']}" if isinstance(item.get("system"), str) else item["code"]
    return None


def _kind(path: str, old: Any, new: Any) -> str:
    values = [v for v in (old, new) if v is not None]
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return "number"
    if path.rsplit(".", 1)[-1] in ("code", "system") or any(_label(v) and "code" in v for v in values):
        return "code"
    if all(isinstance(v, str) for v in values):
        return "text"
    return "element"


def _shown(value: Any) -> str:
    """A value in a change list: a code as ``system|code 'display'``, anything else as compact JSON."""
    if value is None:
        return "(none)"
    if isinstance(value, Mapping) and isinstance(value.get("code"), str):
        system = f"{value['system']}|" if isinstance(value.get("system"), str) else ""
        display = f" '{value['display']}'" if isinstance(value.get("display"), str) else ""
        return f"{system}{value['code']}{display}"
    text = json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    return text if len(text) <= 160 else text[:157] + "..."


# --- the release check and the change list ------------------------------------------------------------------


NO_CHANGES = Changes((), (), {})


def release_problems(version: str, current: Stamp, previous: tuple[str, Stamp] | None, changes: Changes,
                     view_changes: Changes = NO_CHANGES) -> list[str]:
    """Why the knowledge cannot be released as ``version``: a stamp that is not one release's, a version other
    than the knowledge's, a status other than active, or content changed since the previous release without a
    newer version and a date not before the previous release's (nothing changed at all is no release either).
    ``view_changes``: the changes of the R4 view since the previous release's R4 package; a change seen only there
    is a change all the same."""
    problems = current.problems()
    if parse_version(version) is None:
        problems.append(f"VERSION {version!r} is not major.minor.patch (optionally -label)")
    if current.version is not None and current.version != version:
        problems.append(f"the knowledge's version is {current.version}, not {version}: set `version` of every "
                        "canonical resource to the release version")
    if current.statuses and current.statuses != {RELEASE_STATUS}:
        problems.append(f"a release's status is {RELEASE_STATUS}, not {', '.join(sorted(current.statuses))}")
    if previous is None:
        return problems
    previous_version, previous_stamp = previous
    changed = "; ".join(f"{what}: {count_changes(found)}" for what, found in (("the knowledge", changes),
                                                                      ("its R4 view", view_changes)) if found)
    if not changed:
        problems.append(f"nothing changed since {previous_version}: no release to make")
    elif not newer(version, previous_version):
        problems.append(f"the content changed since {previous_version} ({changed}) but the version "
                        f"{version} is not newer: bump it")
    elif current.date is not None and previous_stamp.date is not None and current.date < previous_stamp.date:
        problems.append(f"the content changed since {previous_version} but the date {current.date} is before "
                        f"that release's ({previous_stamp.date}): set `date` of every canonical resource")
    return problems


def count_changes(changes: Changes) -> str:
    """How many resources were added, removed and changed."""
    return (f"{len(changes.added)} added, {len(changes.removed)} removed, {len(changes.changed)} changed "
            "resource(s)")


def change_list(name: str, old: tuple[str, Resources] | None, new: tuple[str, Resources],
                view: tuple[Resources | None, Resources] | None = None) -> str:
    """The human-readable change list (Markdown) from release ``old`` to ``new`` (version, resources), and when
    ``view`` is given (the R4 views of both, None for a release that recorded none) the R4 view's changes."""
    new_version, new_resources = new
    date = stamp(new_resources).date or "?"
    if old is None:
        lines = [f"# {name} {new_version}", "", f"First release, {date}: {len(new_resources)} resources.", ""]
        return "\n".join([*lines, *(f"- {t}/{i}" for t, i in sorted(new_resources)), ""])
    old_version, old_resources = old
    changes = compare(old_resources, new_resources)
    old_date = stamp(old_resources).date or "?"
    lines = [f"# {name} {old_version} → {new_version}", "",
             f"Released {date}; compared with {old_version} ({old_date}): {count_changes(changes)}.",
             "", *_change_lines(changes, old_resources, new_resources, "##", "")]
    if view is not None:
        old_view, new_view = view
        lines += ["## The R4 view", ""]
        if old_view is None:
            lines += [f"Release {old_version} recorded no R4 package: the R4 view is not compared.", ""]
        else:
            view_changes = compare(old_view, new_view)
            lines += [f"Compared with the R4 package of {old_version}: {count_changes(view_changes)}.", "",
                      *_change_lines(view_changes, old_view, new_view, "###", "R4 view: ")]
    return "\n".join(lines)


def _change_lines(changes: Changes, old_resources: Resources, new_resources: Resources, heading: str,
                  prefix: str) -> list[str]:
    """The counts by kind, the resources added and removed, and each changed resource's changes, under
    headings of level ``heading`` (each resource one level below) named with ``prefix``."""
    lines = []
    kinds = [change.kind for found in changes.changed.values() for change in found]
    if kinds:
        lines += [", ".join(f"{kinds.count(kind)} {kind} change(s)" for kind in ("number", "code", "text", "element")
                            if kind in kinds) + ".", ""]
    for title, keys, resources in (("Added", changes.added, new_resources),
                                   ("Removed", changes.removed, old_resources)):
        if keys:
            lines += [f"{heading} {prefix}{title} resources", ""]
            lines += [f"- {t}/{i}: {_title(resources[(t, i)])}" for t, i in keys] + [""]
    if changes.changed:
        lines += [f"{heading} {prefix}Changed resources", ""]
        for (rtype, rid), found in changes.changed.items():
            lines += [f"{heading}# {rtype}/{rid}", "", *(f"- {change}" for change in found), ""]
    return lines


def _title(resource: Mapping[str, Any]) -> str:
    for key in ("title", "name", "description"):
        if isinstance(resource.get(key), str):
            return resource[key][:120]
    return resource.get("resourceType", "")
