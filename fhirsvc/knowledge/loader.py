"""Load knowledge files, validate them with fhir.resources R5, and check ids and references.

Every problem names the file, the element (a FHIRPath-like path) and what is wrong, so that an
informaticist can fix the file without reading code. Loading stops start-up on any problem.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from fhirsvc import ndc
from fhirsvc.canonical import CANONICAL as CANONICAL_BASE
from fhirsvc.errors import KnowledgeError
from fhirsvc.fhirversion import UnknownResourceType, r5_class
from fhirsvc.knowledge.frozen import freeze
from fhirsvc.knowledge.package import PackageError, check_package, is_package, open_package
from fhirsvc.knowledge.problems import Problem
from fhirsvc.knowledge.rules import threshold_problems
from fhirsvc.knowledge.store import Knowledge

_RELATIVE_REFERENCE = re.compile(r"^([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(/_history/[A-Za-z0-9\-.]+)?$")

Entry = tuple[Path, dict[str, Any]]


def load_knowledge(paths: Sequence[Path], cache: str | Path | None = None) -> Knowledge:
    """Load and index every ``*.json`` under ``paths``; raise KnowledgeError naming each problem. ``cache``:
    the validation cache file (``ValidationCache``), or None to validate every file."""
    entries, problems = check_paths(paths, cache)
    if problems:
        raise KnowledgeError(problems)
    return Knowledge.build(knowledge_version(entries), entries)


def check_paths(paths: Sequence[Path], cache: str | Path | None = None) -> tuple[list[Entry], list[Problem]]:
    """Read and check every file: R5 structure, unique ids and urls, resolvable references, the rule registries'
    fixed thresholds (``rules.threshold_problems``). The resources come back frozen (read-only, as the store keeps
    them: frozen once, file by file, never held twice)."""
    entries: list[Entry] = []
    problems: list[Problem] = []
    validated = ValidationCache(cache)
    for path in knowledge_files(paths, problems):
        resource, file_problems = read_resource(path, validated)
        problems += file_problems
        if resource is not None and not file_problems:
            entries.append((path, freeze(resource)))
    validated.save()
    problems += check_unique(entries)
    problems += check_references(entries)
    problems += check_ndcs(entries)
    problems += threshold_problems(entries)
    return entries, problems


class ValidationCache:
    """The files (by SHA-256 of their text and the fhir.resources release) that passed the R5 model validation:
    with thousands of drugs that validation is most of the start-up, and the knowledge rarely changes.

    Only the model validation is skipped, and only for a file whose exact text passed it before with the same
    models: a changed file has another hash and is validated again, so bad knowledge still stops start-up
    with its file, element and message. One hex digest a line, appended to; unreadable or unwritable: no cache.
    """

    def __init__(self, path: str | Path | None) -> None:
        self.path = Path(path) if path else None
        self.known: set[str] = set()
        self.new: list[str] = []
        if self.path is not None:
            try:
                self.known = set(self.path.read_text(encoding="ascii").split())
            except (OSError, UnicodeDecodeError):
                self.known = set()

    def digest(self, text: str) -> str | None:
        if self.path is None:
            return None
        return hashlib.sha256(_MODELS.encode() + b"\0" + text.encode("utf-8", "surrogatepass")).hexdigest()

    def passed(self, digest: str | None) -> bool:
        return digest is not None and digest in self.known

    def add(self, digest: str | None) -> None:
        if digest is not None and digest not in self.known:
            self.known.add(digest)
            self.new.append(digest)

    def save(self) -> None:
        if self.path is None or not self.new:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="ascii") as out:
                out.write("".join(f"{digest}\n" for digest in self.new))
        except OSError:
            pass
        self.new = []


def _models_release() -> str:
    """What the model validation depends on: the fhir.resources and fhir-core releases."""
    from importlib.metadata import PackageNotFoundError, version

    found = []
    for package in ("fhir.resources", "fhir-core", "pydantic"):
        try:
            found.append(f"{package}=={version(package)}")
        except PackageNotFoundError:
            found.append(f"{package}==?")
    return " ".join(found)


_MODELS = _models_release()


def knowledge_files(paths: Iterable[Path], problems: list[Problem]) -> list[Path]:
    """Every ``*.json`` file under the given directories (or the files themselves), once, in order; a FHIR
    package (a ``.tgz`` or its extracted folder) gives its resource files, once its manifest and index pass
    ``package.check_package``."""
    found: dict[Path, None] = {}
    for path in paths:
        if is_package(path):
            found.update(dict.fromkeys(package_resource_files(path, problems)))
        elif path.is_dir():
            found.update(dict.fromkeys(sorted(p.resolve() for p in path.rglob("*.json"))))
        elif path.is_file():
            found[path.resolve()] = None
        else:
            problems.append(Problem(str(path), "-", "no such file or directory"))
    return list(found)


def package_resource_files(path: Path, problems: list[Problem]) -> list[Path]:
    """The resource files of an R5 knowledge package, or none (and the problems) when it is not one. The
    package's own ImplementationGuide describes the package, not the knowledge: it is not loaded."""
    try:
        package = open_package(path)
    except PackageError as exc:
        problems.append(Problem(str(path), "-", f"not a usable FHIR package: {exc}"))
        return []
    package_problems = check_package(package)
    problems += package_problems
    return [] if package_problems else [file.resolve() for file in package.content_files]


def read_resource(path: Path, cache: ValidationCache | None = None) -> tuple[dict[str, Any] | None, list[Problem]]:
    """Parse one file as JSON and validate it against its R5 resource model (unless ``cache`` knows that this
    exact text passed it)."""
    try:
        text = path.read_text(encoding="utf-8")
        resource = json.loads(text)
    except UnicodeDecodeError as exc:
        return None, [Problem(str(path), "-", f"not UTF-8 text ({exc.reason} at byte {exc.start})")]
    except json.JSONDecodeError as exc:
        return None, [Problem(str(path), "-", f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")]
    if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
        return None, [Problem(str(path), "resourceType", "not a FHIR resource (no resourceType)")]
    rtype = resource["resourceType"]
    try:
        model = r5_class(rtype)
    except UnknownResourceType as exc:
        return None, [Problem(str(path), "resourceType", str(exc))]
    problems = []
    if not isinstance(resource.get("id"), str) or not resource["id"]:
        problems.append(Problem(str(path), f"{rtype}.id", "every knowledge resource needs an id"))
    digest = cache.digest(text) if cache is not None else None
    if cache is not None and cache.passed(digest):
        return resource, problems
    try:
        model.model_validate(resource)
    except ValidationError as exc:
        problems += [Problem(str(path), _element_path(rtype, err["loc"]), _describe(err))
                     for err in exc.errors()]
    else:
        if cache is not None:
            cache.add(digest)
    return resource, problems


def _element_path(resource_type: str, loc: Sequence[Any]) -> str:
    """``('a', 0, 'b')`` -> ``Type.a[0].b``."""
    path = resource_type
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _describe(error: Mapping[str, Any]) -> str:
    """A pydantic error in the words of FHIR JSON."""
    kind = error["type"]
    given = error.get("input")
    shown = f" (got {json.dumps(given)[:60]})" if isinstance(given, (str, int, float, bool)) else ""
    if kind == "extra_forbidden":
        return "unknown element"
    if kind == "missing":
        return "required element is missing"
    if kind == "list_type":
        return f"must be a JSON array{shown}"
    if kind in ("model_type", "dict_type", "model_attributes_type", "json_invalid"):
        return f"must be a JSON object{shown}"
    return f"{error['msg']}{shown}"


def check_unique(entries: Sequence[Entry]) -> list[Problem]:
    """Each (resourceType, id) and each canonical url|version appears once."""
    problems = []
    seen: dict[tuple[str, str], Path] = {}
    for path, res in entries:
        rtype = res["resourceType"]
        keys = [(rtype, res["id"], f"{rtype}.id", f"duplicate id {rtype}/{res['id']}")]
        if "url" in res:
            url = f"{res['url']}|{res.get('version', '')}"
            keys.append(("url", url, f"{rtype}.url", f"duplicate canonical url {url.rstrip('|')}"))
        for kind, value, element, message in keys:
            first = seen.setdefault((kind, value), path)
            if first != path:
                problems.append(Problem(str(path), element, f"{message} (also in {first})"))
    return problems


def check_references(entries: Sequence[Entry]) -> list[Problem]:
    """Every literal reference and every canonical under the knowledge base resolves."""
    keys = {(res["resourceType"], res["id"]) for _, res in entries}
    urls = {res["url"] for _, res in entries if "url" in res}
    problems = []
    for path, res in entries:
        contained = {c.get("id") for c in res.get("contained") or () if isinstance(c, dict)}
        for element, key, value in _strings(res, res["resourceType"]):
            message = None
            if key == "reference":
                message = _check_reference(value, keys, contained)
            elif (_is_canonical(element, key) and value.startswith(CANONICAL_BASE)
                  and value.split("|", 1)[0] not in urls):
                message = f"canonical {value} does not resolve to any knowledge resource"
            if message:
                problems.append(Problem(str(path), element, message))
    return problems


def check_ndcs(entries: Sequence[Entry]) -> list[Problem]:
    """Every NDC (a Coding's code, an Identifier's value, a ValueSet concept under the NDC system) is an NDC
    in a form that reads one way (``fhirsvc.ndc``): an unhyphenated 10-digit code is ambiguous."""
    problems = []
    for path, res in entries:
        for element, code in _ndcs(res, res["resourceType"]):
            found = ndc.parse(code)
            if found is None:
                problems.append(Problem(str(path), element, f"{code!r} is not an NDC (10 digits hyphenated 4-4-2, "
                                        "5-3-2 or 5-4-1; 11 digits 5-4-2; or a product NDC 4-4, 5-3 or 5-4)"))
            elif found.kind == ndc.AMBIGUOUS:
                problems.append(Problem(str(path), element, f"NDC {code!r} (10 digits, no hyphens) can be read "
                                        "three ways: write it hyphenated, as the labeler publishes it"))
    return problems


def _ndcs(node: Any, path: str) -> Iterator[tuple[str, str]]:
    """Every (path, code) under the NDC system: Coding.code, Identifier.value, ValueSet include concepts."""
    if isinstance(node, Mapping):
        if node.get("system") == ndc.NDC:
            for key in ("code", "value"):
                if isinstance(node.get(key), str):
                    yield f"{path}.{key}", node[key]
            for index, concept in enumerate(node.get("concept") or ()):
                if isinstance(concept, Mapping) and isinstance(concept.get("code"), str):
                    yield f"{path}.concept[{index}].code", concept["code"]
        for key, value in node.items():
            if isinstance(value, Mapping):
                yield from _ndcs(value, f"{path}.{key}")
            elif isinstance(value, (list, tuple)):
                for index, item in enumerate(value):
                    yield from _ndcs(item, f"{path}.{key}[{index}]")


def _check_reference(value: str, keys: set[tuple[str, str]], contained: set[Any]) -> str | None:
    """Why a literal reference does not resolve, or None when it does."""
    if value.startswith("#"):
        return None if value[1:] in contained else f"reference {value} names no contained resource"
    match = _RELATIVE_REFERENCE.match(value.removeprefix(CANONICAL_BASE))
    if not match:
        return f"reference {value} is not a relative reference (Type/id) to a knowledge resource"
    if (match.group(1), match.group(2)) not in keys:
        return f"reference {value} does not resolve (no {match.group(1)} with id {match.group(2)})"
    return None


def _is_canonical(element: str, key: str) -> bool:
    """Elements that hold canonical URLs: ``*Canonical``, ``valueSet``, ``system`` and extension urls."""
    if key.endswith("Canonical") or key in ("valueSet", "system", "profile"):
        return True
    return key == "url" and re.search(r"(extension|modifierExtension)\[\d+\]\.url$", element) is not None


def _strings(node: Any, path: str) -> Iterator[tuple[str, str, str]]:
    """Every (path, key, string value) in a JSON tree."""
    if isinstance(node, dict):
        for key, value in node.items():
            child = f"{path}.{key}"
            if isinstance(value, str):
                yield child, key, value
            elif isinstance(value, (list, tuple)):
                for index, item in enumerate(value):
                    if isinstance(item, str):
                        yield f"{child}[{index}]", key, item
                    else:
                        yield from _strings(item, f"{child}[{index}]")
            else:
                yield from _strings(value, child)


def knowledge_version(entries: Sequence[Entry]) -> str:
    """A short content hash of the loaded knowledge: changes whenever any resource changes."""
    digest = hashlib.sha256()
    for _, res in sorted(entries, key=lambda e: (e[1]["resourceType"], e[1]["id"])):
        digest.update(json.dumps(res, sort_keys=True, separators=(",", ":")).encode())
    return digest.hexdigest()[:12]
