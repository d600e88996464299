"""The knowledge as FHIR NPM packages, and its releases: ``python -m fhirsvc.fhir.packages build | release |
changes`` (``make package``, ``make release VERSION=...``).

Two packages of one version (the knowledge's release version, ``fhirsvc.knowledge.release``): the R5 knowledge
as authored (``fhirsvc.knowledge.anakinra``) and the R4 view as ``/fhir/R4`` serves it, built by the same
``build_r4_view`` (``fhirsvc.knowledge.anakinra.r4``). Both come from whatever the configured knowledge folder
holds. A release records both packages in ``releases/`` (each with its SHA-256) and the change list from the
previous release there, the R4 view compared as well as the knowledge; docs/packages.md says the rest.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fhirsvc.config import knowledge_dirs, load_config
from fhirsvc.errors import KnowledgeError
from fhirsvc.fhir.r4 import build_r4_view
from fhirsvc.knowledge import Knowledge, load_knowledge
from fhirsvc.knowledge.frozen import thaw
from fhirsvc.knowledge.package import (
    PACKAGE_NAME,
    R4_SUFFIX,
    PackageError,
    check_package,
    manifest,
    open_package,
    write_package,
)
from fhirsvc.knowledge.release import (
    NO_CHANGES,
    change_list,
    compare,
    count_changes,
    parse_version,
    release_problems,
    stamp,
)

Key = tuple[str, str]
DESCRIPTION = "fhirsvc medication-safety knowledge (the anakinra monograph) as FHIR {release} resources"


class PackagingError(Exception):
    """The packages cannot be built or released: every reason, one a line."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = list(problems)


def knowledge_resources(knowledge: Knowledge) -> dict[Key, dict[str, Any]]:
    """Every knowledge resource as plain JSON, by (type, id)."""
    return {key: thaw(resource) for key, resource in sorted(knowledge.resources.items())}


def package_paths(out: Path, version: str) -> tuple[Path, Path]:
    """Where the R5 and the R4 package of ``version`` are written."""
    return out / f"{PACKAGE_NAME}-{version}.tgz", out / f"{PACKAGE_NAME}{R4_SUFFIX}-{version}.tgz"


def build_packages(knowledge: Knowledge, out: Path) -> tuple[Path, Path]:
    """Write the R5 and the R4 package of the knowledge's release version into ``out``."""
    resources = knowledge_resources(knowledge)
    current = stamp(resources)
    if current.version is None:
        raise PackagingError(current.problems())
    r5_path, r4_path = package_paths(out, current.version)
    write_package(r5_path, manifest(PACKAGE_NAME, current.version, "5.0.0", DESCRIPTION.format(release="R5")),
                  resources.values())
    view = build_r4_view(knowledge)
    write_package(r4_path, manifest(PACKAGE_NAME + R4_SUFFIX, current.version, "4.0.1",
                                    DESCRIPTION.format(release="R4 (4.0.1)")), (view[key] for key in sorted(view)))
    return r5_path, r4_path


def read_package_resources(path: Path, fhir_version: str | None = "5.0.0") -> dict[Key, dict[str, Any]]:
    """The resources of a package (checked as ``check_package`` does), by (type, id), less the package's own
    ImplementationGuide (generated from the rest: never a change of its own)."""
    try:
        package = open_package(path)
    except PackageError as exc:
        raise PackagingError([f"{path}: {exc}"]) from exc
    problems = check_package(package, fhir_version)
    if problems:
        raise PackagingError([str(problem) for problem in problems])
    resources = {}
    for file in package.content_files:
        resource = json.loads(file.read_text(encoding="utf-8"))
        resources[(resource["resourceType"], resource["id"])] = resource
    return resources


@dataclass(frozen=True)
class Release:
    """A recorded release: its version and the R5 package file (the R4 one beside it, when recorded)."""

    version: str
    path: Path

    @property
    def r4_path(self) -> Path | None:
        """The release's R4 package, or None for a release that recorded none."""
        path = self.path.with_name(f"{PACKAGE_NAME}{R4_SUFFIX}-{self.version}.tgz")
        return path if path.is_file() else None


def recorded_releases(releases: Path) -> list[Release]:
    """The releases recorded in ``releases``, oldest first."""
    found = []
    for path in releases.glob(f"{PACKAGE_NAME}-*.tgz"):
        version = path.name.removeprefix(f"{PACKAGE_NAME}-").removesuffix(".tgz")
        parsed = parse_version(version)
        if parsed is not None:
            found.append((parsed[:3], parsed[3] == "", parsed[3], Release(version, path)))
    return [release for *_, release in sorted(found, key=lambda item: item[:3])]


def make_release(knowledge: Knowledge, version: str, releases: Path, out: Path) -> tuple[Path, Path, Path]:
    """Check the knowledge may be released as ``version`` (against the last recorded release: the knowledge
    against its R5 package, the R4 view against its R4 package when it recorded one), build both packages into
    ``out``, record them and their SHA-256 in ``releases`` and write the change list there; return the two
    packages and the change list."""
    resources = knowledge_resources(knowledge)
    view = build_r4_view(knowledge)
    recorded = recorded_releases(releases)
    same = [release for release in recorded if release.version == version]
    if same:
        raise PackagingError([f"release {version} is already recorded in {releases}",
                              *_differs_from(same[0], resources, view)])
    previous = recorded[-1] if recorded else None
    old = read_package_resources(previous.path) if previous else None
    old_view = read_package_resources(previous.r4_path, "4.0.1") if previous and previous.r4_path else None
    problems = release_problems(version, stamp(resources),
                                (previous.version, stamp(old)) if previous and old is not None else None,
                                compare(old or {}, resources),
                                compare(old_view, view) if old_view is not None else NO_CHANGES)
    if problems:
        raise PackagingError(problems)
    r5_path, r4_path = build_packages(knowledge, out)
    releases.mkdir(parents=True, exist_ok=True)
    for built in (r5_path, r4_path):
        recorded_path = releases / built.name
        shutil.copyfile(built, recorded_path)
        digest = hashlib.sha256(recorded_path.read_bytes()).hexdigest()
        (releases / f"{built.name}.sha256").write_text(f"{digest}  {built.name}\n", encoding="utf-8")
    changes_path = releases / f"CHANGES-{version}.md"
    changes_path.write_text(change_list(PACKAGE_NAME, (previous.version, old) if previous and old is not None
                                        else None, (version, resources), (old_view, view)), encoding="utf-8")
    return r5_path, r4_path, changes_path


def _differs_from(release: Release, resources: dict[Key, dict[str, Any]], view: dict[Key, dict[str, Any]]) -> list[str]:
    """When the knowledge still carries a recorded release's version but not its content: say so, and what a
    release of it needs."""
    if stamp(resources).version != release.version:
        return []
    old = read_package_resources(release.path)
    changes = compare(old, resources)
    view_changes = (compare(read_package_resources(release.r4_path, "4.0.1"), view) if release.r4_path
                    else NO_CHANGES)
    changed = "; ".join(f"{what}: {count_changes(found)}" for what, found in (("the knowledge", changes),
                                                                              ("its R4 view", view_changes)) if found)
    if not changed:
        return []
    return [f"the knowledge still carries version {release.version} but its content is no longer that release's "
            f"({changed}): release it as a newer version, dated no earlier than {stamp(old).date}"]


def main(argv: Sequence[str] | None = None) -> int:
    """``build`` (make package), ``release`` (make release VERSION=...) or ``changes OLD NEW``; 0 on success,
    1 with the reasons on stderr otherwise."""
    parser = argparse.ArgumentParser(prog="python -m fhirsvc.fhir.packages", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="write the R5 and the R4 package of the knowledge")
    build.add_argument("--out", type=Path, default=Path("dist"), help="the folder to write to (default: dist)")
    release = commands.add_parser("release", help="check, build and record a release of the knowledge")
    release.add_argument("--version", required=True, help="the release version (the knowledge must carry it)")
    release.add_argument("--out", type=Path, default=Path("dist"), help="the folder to write to (default: dist)")
    release.add_argument("--releases", type=Path, default=Path("releases"),
                         help="the folder of the recorded releases (default: releases)")
    changes = commands.add_parser("changes", help="print the change list between two R5 knowledge packages")
    changes.add_argument("old", type=Path)
    changes.add_argument("new", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.command == "changes":
            old, new = read_package_resources(args.old), read_package_resources(args.new)
            print(change_list(PACKAGE_NAME, (stamp(old).version or "?", old), (stamp(new).version or "?", new)))
            return 0
        knowledge = load_knowledge(knowledge_dirs(load_config()))
        if args.command == "build":
            written: tuple[Path, ...] = build_packages(knowledge, args.out)
        else:
            written = make_release(knowledge, args.version, args.releases, args.out)
    except (KnowledgeError, PackagingError) as exc:
        print(f"{parser.prog} {args.command}: {exc}", file=sys.stderr)
        return 1
    for path in written:
        print(f"{path} ({path.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
