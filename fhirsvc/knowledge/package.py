"""The knowledge as a FHIR NPM package: write one (a reproducible tarball), and read one safely (a ``.tgz`` or its
extracted folder) so that the service can load its knowledge from a package as from a folder.

The layout is the FHIR NPM package one (https://hl7.org/fhir/packages.html, "FHIR NPM Packages"): a gzipped tar
with a ``package/`` folder holding ``package.json`` (``name``, ``version``, ``fhirVersions``, ``dependencies``,
...), one JSON file per resource and ``.index.json`` (``index-version`` 2: one entry per resource file with its
``filename``, ``resourceType``, ``id`` and, where the resource has them, ``url``, ``version``, ``kind``, ``type``,
``supplements``, ``content``). Each package also carries an ImplementationGuide resource that describes it
(``implementation_guide``: its packageId, version, FHIR version, the core package it depends on, and every resource
it holds), generated from the package's own manifest and resource list; the service does not load it as knowledge.
docs/packages.md says how the packages are named, built and loaded.

Reading a tarball never trusts it: only regular files under ``package/`` are taken (no links, devices, absolute
paths or ``..``), each member and the whole are bounded, and the files are written into a fresh temporary folder
of their own, checked to stay inside it.
"""

from __future__ import annotations

import atexit
import gzip
import io
import json
import os
import re
import shutil
import tarfile
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from pydantic import ValidationError

from fhirsvc.canonical import CANONICAL
from fhirsvc.fhirversion import UnknownResourceType, resource_class
from fhirsvc.knowledge.problems import Problem

PACKAGE_NAME = "fhirsvc.knowledge.anakinra"  # the R5 package; the R4 view's is PACKAGE_NAME + ".r4"
R4_SUFFIX = ".r4"
CORE_PACKAGES = {"5.0.0": "hl7.fhir.r5.core", "4.0.1": "hl7.fhir.r4.core"}
# The canonical of the core specification's own ImplementationGuide (every core package's): what an
# ImplementationGuide.dependsOn names when it depends on a core package.
CORE_GUIDE = "http://hl7.org/fhir/ImplementationGuide/fhir"
GUIDE_TYPE = "ImplementationGuide"
KNOWLEDGE_FHIR_VERSION = "5.0.0"  # the service loads R5 knowledge only
MANIFEST, INDEX = "package.json", ".index.json"
INDEX_VERSION = 2
# The index elements besides filename, resourceType and id, and the resource types each applies to (None: any).
INDEX_FIELDS = {"url": None, "version": None, "kind": ("StructureDefinition",), "type": ("StructureDefinition",),
                "supplements": ("CodeSystem",), "content": ("CodeSystem",)}
FIXED_MTIME = 499162500  # every member's time (1985-10-26T08:15:00Z): the same content gives the same bytes
# Bounds on a package read (a hostile or broken tarball stops at the first one it passes).
MAX_TARBALL_BYTES = 64 * 1024 * 1024
MAX_MEMBERS = 10_000
MAX_MEMBER_BYTES = 16 * 1024 * 1024
MAX_TOTAL_BYTES = 256 * 1024 * 1024
MAX_UNZIPPED_BYTES = MAX_TOTAL_BYTES + 16 * 1024 * 1024  # the whole tar once unzipped: the members and their headers
TARBALL_SUFFIXES = (".tgz", ".tar.gz")


class PackageError(ValueError):
    """A package that cannot be read: the message says what is wrong with it."""


# --- writing ------------------------------------------------------------------------------------------------


def resource_filename(resource: Mapping[str, Any]) -> str:
    """``<resourceType>-<id>.json``, the name every file of the package has."""
    return f"{resource['resourceType']}-{resource['id']}.json"


def index_entry(filename: str, resource: Mapping[str, Any]) -> dict[str, Any]:
    """The ``.index.json`` entry of one resource file (index-version 2)."""
    entry: dict[str, Any] = {"filename": filename, "resourceType": resource["resourceType"], "id": resource["id"]}
    entry.update((name, resource[name]) for name, types in INDEX_FIELDS.items()
                 if isinstance(resource.get(name), str) and (types is None or resource["resourceType"] in types))
    return entry


def manifest(name: str, version: str, fhir_version: str, description: str) -> dict[str, Any]:
    """The ``package.json`` of a knowledge package for one FHIR version (it depends on that version's core)."""
    return {
        "name": name,
        "version": version,
        "description": description,
        "author": "fhirsvc",
        "license": "Apache-2.0",
        "canonical": CANONICAL.rstrip("/"),
        "url": CANONICAL.rstrip("/"),
        "fhirVersions": [fhir_version],
        "dependencies": {CORE_PACKAGES[fhir_version]: fhir_version},
    }


def guide_name(package_name: str) -> str:
    """The computer-friendly name of a package's guide: ``fhirsvc.knowledge.anakinra`` gives
    ``FhirsvcKnowledgeAnakinra`` (a letter, then letters and digits, as ImplementationGuide.name asks)."""
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", package_name) if part)


def implementation_guide(package_json: Mapping[str, Any], resources: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The ImplementationGuide describing a package, from its manifest and its resources only: id and packageId
    the package name, its version, FHIR version and license, a dependsOn per core package it depends on, and one
    ``definition.resource`` per resource. The release date and status are the resources' own (one each when
    the knowledge carries one release). Only elements R4 and R5 share, so the same shape is valid in both."""
    resources = list(resources)
    listed = sorted((res["resourceType"], res["id"]) for res in resources)
    canonical = [res for res in resources if isinstance(res, Mapping) and isinstance(res.get("url"), str)]
    dates = {res["date"] for res in canonical if isinstance(res.get("date"), str)}
    statuses = {res["status"] for res in canonical if isinstance(res.get("status"), str)}
    name = package_json["name"]
    guide: dict[str, Any] = {
        "resourceType": GUIDE_TYPE,
        "id": name,
        "url": f"{CANONICAL}{GUIDE_TYPE}/{name}",
        "version": package_json["version"],
        "name": guide_name(name),
        "title": package_json.get("description", name),
        "status": statuses.pop() if len(statuses) == 1 else "draft",
        **({"date": dates.pop()} if len(dates) == 1 else {}),
        "publisher": package_json.get("author", ""),
        "description": f"The FHIR package {name} {package_json['version']}: {package_json.get('description', '')}",
        "packageId": name,
        "license": package_json.get("license", "not-open-source"),
        "fhirVersion": list(package_json["fhirVersions"]),
        "dependsOn": [{"uri": CORE_GUIDE, "packageId": core, "version": version}
                      for core, version in sorted(package_json.get("dependencies", {}).items())
                      if core in CORE_PACKAGES.values()],
        "definition": {"resource": [{"reference": {"reference": f"{rtype}/{rid}"}} for rtype, rid in listed]},
    }
    return {key: value for key, value in guide.items() if value not in ("", [])}


def _json_bytes(value: Any) -> bytes:
    return (json.dumps(value, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def package_files(package_json: Mapping[str, Any], resources: Iterable[Mapping[str, Any]]) -> dict[str, bytes]:
    """Every file of the ``package/`` folder by name: the resources, the package's ImplementationGuide,
    ``.index.json`` and ``package.json``."""
    resources = list(resources)
    files = {resource_filename(res): (_json_bytes(res), res) for res in resources}
    guide = implementation_guide(package_json, resources)
    if resource_filename(guide) in files:
        raise ValueError(f"{resource_filename(guide)}: the package's own ImplementationGuide is generated, not given")
    files[resource_filename(guide)] = (_json_bytes(guide), guide)
    index = {"index-version": INDEX_VERSION,
             "files": [index_entry(name, res) for name, (_, res) in sorted(files.items())]}
    return {**{name: data for name, (data, _) in files.items()}, INDEX: _json_bytes(index),
            MANIFEST: _json_bytes(package_json)}


def write_package(path: Path, package_json: Mapping[str, Any], resources: Iterable[Mapping[str, Any]]) -> Path:
    """Write the package tarball at ``path``: entries sorted by name, fixed times, owners and modes, and a gzip
    header without name or time, so that the same resources always give the same bytes."""
    files = package_files(package_json, resources)
    raw = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as zipped, \
            tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(files):
            info = tarfile.TarInfo(f"package/{name}")
            info.size, info.mtime, info.mode = len(files[name]), FIXED_MTIME, 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(files[name]))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(raw.getvalue())
    return path


# --- reading ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Package:
    """A package opened for reading: its ``package/`` folder, its manifest and index as parsed (None when
    missing or unreadable: ``check_package`` says why), its resource files, and among them the package's own
    ImplementationGuide (the one whose packageId is the package name), if it has one."""

    source: Path
    folder: Path
    manifest: Any
    index: Any
    resource_files: tuple[Path, ...] = field(default=())
    guide_file: Path | None = None

    @property
    def content_files(self) -> tuple[Path, ...]:
        """The resource files less the package's own ImplementationGuide: what the package holds as knowledge."""
        return tuple(path for path in self.resource_files if path != self.guide_file)


def is_package(path: Path) -> bool:
    """A package tarball, or a folder holding ``package.json`` (the ``package/`` folder) or ``package/``."""
    if path.is_file():
        return path.name.endswith(TARBALL_SUFFIXES)
    return path.is_dir() and ((path / MANIFEST).is_file() or (path / "package").is_dir())


def open_package(path: Path) -> Package:
    """Open a package tarball (extracted, bounded, into a temporary folder removed at exit) or folder; raise
    PackageError when it cannot be read at all."""
    source = path
    if path.is_file():
        path = _extract(path)
    folder = path if (path / MANIFEST).is_file() else path / "package"
    if not folder.is_dir() or not (folder / MANIFEST).is_file():
        raise PackageError(f"no {MANIFEST}: a FHIR package holds package/{MANIFEST}")
    resources = sorted(p for p in folder.glob("*.json") if p.name not in (MANIFEST, INDEX) and p.is_file()
                       and not p.is_symlink())
    package_json = _read_json(folder / MANIFEST)
    return Package(source, folder, package_json, _read_json(folder / INDEX), tuple(resources),
                   _guide_file(resources, package_json))


def _guide_file(files: Iterable[Path], package_json: Any) -> Path | None:
    """The package's own ImplementationGuide among its files: an ImplementationGuide whose packageId is the
    package's name."""
    name = package_json.get("name") if isinstance(package_json, dict) else None
    for path in files:
        if path.name.startswith(f"{GUIDE_TYPE}-"):
            resource = _read_json(path)
            if (isinstance(resource, dict) and resource.get("resourceType") == GUIDE_TYPE
                    and isinstance(name, str) and resource.get("packageId") == name):
                return path
    return None


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None


def _extract(tarball: Path) -> Path:
    """Extract the regular files under ``package/`` into a new temporary folder; PackageError for anything
    else in the tarball (links, devices, absolute or escaping paths) or a bound passed."""
    if tarball.stat().st_size > MAX_TARBALL_BYTES:
        raise PackageError(f"the tarball is larger than {MAX_TARBALL_BYTES} bytes")
    target = Path(tempfile.mkdtemp(prefix=f"{tarball.name}-"))
    atexit.register(_remove_at_exit, target, os.getpid())
    try:
        with gzip.open(tarball, "rb") as unzipped, \
                tarfile.open(fileobj=_Bounded(unzipped, MAX_UNZIPPED_BYTES), mode="r|") as tar:
            _extract_members(tar, target, tarball.stat().st_mtime)
    except (tarfile.TarError, EOFError, OSError, gzip.BadGzipFile) as exc:
        shutil.rmtree(target, ignore_errors=True)
        raise PackageError(f"not a readable gzipped tar: {exc}") from exc
    except PackageError:
        shutil.rmtree(target, ignore_errors=True)
        raise
    return target


class _Bounded(io.RawIOBase):
    """A stream that refuses to give more than ``limit`` bytes (a gzip bomb, an endless tar header)."""

    def __init__(self, stream: Any, limit: int) -> None:
        self.stream, self.limit, self.count = stream, limit, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        read = int(self.stream.readinto(buffer))
        self.count += read
        if self.count > self.limit:
            raise PackageError(f"the tarball unzips to more than {self.limit} bytes")
        return read


def _remove_at_exit(folder: Path, owner: int) -> None:
    """Remove an extracted package when the process that extracted it ends (not when a forked worker does)."""
    if os.getpid() == owner:
        shutil.rmtree(folder, ignore_errors=True)


def _extract_members(tar: tarfile.TarFile, target: Path, mtime: float) -> None:
    """Write the members into ``target``, each with the tarball's own time (the members' times are fixed, and
    a served resource's ``meta.lastUpdated`` is its file's time)."""
    count = total = 0
    root = target.resolve()
    for member in tar:
        count += 1
        if count > MAX_MEMBERS:
            raise PackageError(f"more than {MAX_MEMBERS} entries")
        name = PurePosixPath(member.name)
        if member.isdir() and _safe_name(name):
            continue
        if not member.isfile():
            raise PackageError(f"entry {member.name!r} is not a regular file (links and devices are refused)")
        if not _safe_name(name):
            raise PackageError(f"entry {member.name!r} is not a relative path under package/")
        if member.size > MAX_MEMBER_BYTES:
            raise PackageError(f"entry {member.name!r} is larger than {MAX_MEMBER_BYTES} bytes")
        total += member.size
        if total > MAX_TOTAL_BYTES:
            raise PackageError(f"the entries hold more than {MAX_TOTAL_BYTES} bytes")
        destination = (root / Path(*name.parts)).resolve()
        if not destination.is_relative_to(root):
            raise PackageError(f"entry {member.name!r} would be written outside the package folder")
        data = tar.extractfile(member)
        if data is None:
            raise PackageError(f"entry {member.name!r} cannot be read")
        destination.parent.mkdir(parents=True, exist_ok=True)
        with destination.open("wb") as out:
            shutil.copyfileobj(data, out)
            copied = out.tell()
        if copied != member.size:
            raise PackageError(f"entry {member.name!r} is shorter than its header says")
        os.utime(destination, (mtime, mtime))


def _safe_name(name: PurePosixPath) -> bool:
    """A relative path under ``package/`` with no ``..`` and no empty or current-folder parts."""
    parts = name.parts
    return (not name.is_absolute() and len(parts) >= 1 and parts[0] == "package"
            and all(part not in ("", ".", "..") and "\\" not in part for part in parts))


def check_package(package: Package, fhir_version: str | None = KNOWLEDGE_FHIR_VERSION) -> list[Problem]:
    """What is wrong with a package's manifest and index: ``package.json`` with a name, a version and
    ``fhirVersions`` [``fhir_version``] (None: any one known version), and ``.index.json`` at index-version 2
    listing exactly the resource files, each as its file says."""
    where = str(package.source)
    data = package.manifest
    if not isinstance(data, dict):
        return [Problem(where, MANIFEST, "not a JSON object")]
    problems = [Problem(where, f"{MANIFEST}.{key}", "required: a non-empty string")
                for key in ("name", "version") if not isinstance(data.get(key), str) or not data[key]]
    versions = data.get("fhirVersions")
    if versions != [fhir_version] if fhir_version else versions not in [[v] for v in CORE_PACKAGES]:
        expected = f'["{fhir_version}"]' if fhir_version else " or ".join(f'["{v}"]' for v in CORE_PACKAGES)
        problems.append(Problem(where, f"{MANIFEST}.fhirVersions", f"is {json.dumps(versions)}, expected {expected}"
                                + (" (the service loads R5 knowledge)" if fhir_version else "")))
    return problems + _check_index(package) + _check_guide(package)


def _check_index(package: Package) -> list[Problem]:
    where, index = str(package.source), package.index
    if not isinstance(index, dict) or not isinstance(index.get("files"), list):
        return [Problem(where, INDEX, "missing or not a JSON object with a files array")]
    problems = []
    if index.get("index-version") != INDEX_VERSION:
        problems.append(Problem(where, f"{INDEX}.index-version", f"is {index.get('index-version')!r}, expected 2"))
    listed: dict[str, Any] = {str(entry.get("filename")): entry for entry in index["files"] if isinstance(entry, dict)}
    present = {path.name: path for path in package.resource_files}
    for name in sorted(set(present) - set(listed)):
        problems.append(Problem(where, INDEX, f"{name} is not listed"))
    for name in sorted(set(listed) - set(present)):
        problems.append(Problem(where, INDEX, f"lists {name}, which the package does not hold"))
    for name in sorted(set(listed) & set(present)):
        resource = _read_json(present[name])
        if isinstance(resource, dict) and isinstance(resource.get("id"), str) and "resourceType" in resource:
            expected = index_entry(name, resource)
            if listed[name] != expected:
                problems.append(Problem(where, INDEX, f"the entry of {name} does not match the file "
                                        f"(expected {json.dumps(expected, ensure_ascii=False)})"))
    return problems


def _check_guide(package: Package) -> list[Problem]:
    """The package's own ImplementationGuide (when it has one) says what its manifest says (version, FHIR
    version) and lists exactly the resources the package holds."""
    if package.guide_file is None:
        return []
    where, guide = str(package.guide_file), _read_json(package.guide_file)
    problems = []
    for element, expected in (("version", package.manifest.get("version")),
                              ("fhirVersion", package.manifest.get("fhirVersions"))):
        if guide.get(element) != expected:
            problems.append(Problem(where, f"{GUIDE_TYPE}.{element}", f"is {json.dumps(guide.get(element))}, "
                                    f"the package.json says {json.dumps(expected)}"))
    listed = _guide_references(guide)
    held = set()
    for path in package.content_files:
        resource = _read_json(path)
        if isinstance(resource, dict):
            held.add(f"{resource.get('resourceType')}/{resource.get('id')}")
    for reference in sorted(held - listed):
        problems.append(Problem(where, f"{GUIDE_TYPE}.definition.resource", f"{reference} is not listed"))
    for reference in sorted(listed - held):
        problems.append(Problem(where, f"{GUIDE_TYPE}.definition.resource",
                                f"lists {reference}, which the package does not hold"))
    return problems


def _guide_references(guide: Mapping[str, Any]) -> set[str]:
    definition = guide.get("definition")
    items = definition.get("resource") if isinstance(definition, dict) else None
    return {str(item.get("reference", {}).get("reference")) for item in items or ()
            if isinstance(item, dict) and isinstance(item.get("reference"), dict)}


def check_r4_resources(files: Iterable[Path]) -> list[Problem]:
    """Each file of an R4 package parsed by the R4 model of its type (fhir.resources R4B, R4B-only types
    refused: ``fhirversion.resource_class``)."""
    problems = []
    for path in files:
        resource = _read_json(path)
        if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
            problems.append(Problem(str(path), "-", "not a FHIR resource in JSON"))
            continue
        try:
            resource_class("R4", resource["resourceType"]).model_validate(resource)
        except UnknownResourceType as exc:
            problems.append(Problem(str(path), "resourceType", str(exc)))
        except ValidationError as exc:
            problems += [Problem(str(path), ".".join(map(str, (resource["resourceType"], *err["loc"]))), err["msg"])
                         for err in exc.errors()]
    return problems
