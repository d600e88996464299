"""`make package` and `make release`: the R5 package holds the knowledge folder's resources, the R4 package the
resources /fhir/R4 serves; a release is refused unless its version was bumped where the content changed, and its
change list names what changed; an independent reader (npm fhir-package-loader) loads both packages."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from fhirsvc.cli import main as fhirsvc_main
from fhirsvc.fhir import views
from fhirsvc.fhir.packages import PackagingError, build_packages, main, make_release, read_package_resources
from fhirsvc.fhir.registry import R4
from fhirsvc.fhirversion import resource_class
from fhirsvc.knowledge import load_knowledge
from fhirsvc.knowledge.package import PACKAGE_NAME, R4_SUFFIX, open_package, write_package
from fhirsvc.knowledge.release import Change
from tests.conftest import KNOWLEDGE_DIR, ROOT

LOADER_DIR = ROOT / ".package-loader"
READER = Path(__file__).with_name("read_packages.cjs")
SERVED_META = ("versionId", "lastUpdated")


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, Path]:
    return build_packages(load_knowledge([KNOWLEDGE_DIR]), tmp_path_factory.mktemp("dist"))


def _folder_resources(folder: Path) -> dict[tuple[str, str], dict]:
    resources = [json.loads(path.read_text(encoding="utf-8")) for path in folder.glob("*.json")]
    return {(res["resourceType"], res["id"]): res for res in resources}


def _unserved(resource: dict) -> dict:
    """A served resource without what serving adds (meta.versionId and meta.lastUpdated)."""
    meta = {key: value for key, value in resource.get("meta", {}).items() if key not in SERVED_META}
    return {**{key: value for key, value in resource.items() if key != "meta"}, **({"meta": meta} if meta else {})}


def test_the_packages_are_named_by_the_knowledges_release_version(built):
    r5, r4 = built
    version = json.loads((KNOWLEDGE_DIR / "ValueSet-nomid.json").read_text(encoding="utf-8"))["version"]
    assert r5.name == f"{PACKAGE_NAME}-{version}.tgz" and r4.name == f"{PACKAGE_NAME}{R4_SUFFIX}-{version}.tgz"
    for path, fhir_version, core in ((r5, "5.0.0", "hl7.fhir.r5.core"), (r4, "4.0.1", "hl7.fhir.r4.core")):
        package = open_package(path)
        assert package.manifest["fhirVersions"] == [fhir_version] and package.manifest["version"] == version
        assert package.manifest["dependencies"] == {core: fhir_version}


def test_the_r5_package_holds_every_resource_of_the_knowledge_folder(built):
    assert read_package_resources(built[0]) == _folder_resources(KNOWLEDGE_DIR)


def test_the_r4_package_holds_what_fhir_r4_serves(built, open_app, fhir):
    packaged = read_package_resources(built[1], "4.0.1")
    served = open_app.extensions[views.BASES_EXTENSION][R4].resources
    assert set(packaged) == set(served) and len(packaged) > 60
    for (rtype, rid), resource in packaged.items():
        answer = fhir.get(f"/fhir/R4/{rtype}/{rid}")  # validated as R4 by the fixture
        assert answer.status_code == 200 and _unserved(answer.get_json()) == resource, f"{rtype}/{rid}"


def test_the_packages_are_built_from_the_folder_whatever_it_holds(tmp_path):
    folder = shutil.copytree(KNOWLEDGE_DIR, tmp_path / "knowledge")
    added = json.loads((folder / "ValueSet-nomid.json").read_text(encoding="utf-8"))
    added["id"], added["url"] = "added-later", added["url"].rsplit("/", 1)[0] + "/added-later"
    (folder / "ValueSet-added-later.json").write_text(json.dumps(added), encoding="utf-8")
    (folder / "ValueSet-pregnancy-status-pregnant.json").unlink()
    r5, r4 = build_packages(load_knowledge([folder]), tmp_path / "dist")
    for path, version in ((r5, "5.0.0"), (r4, "4.0.1")):
        keys = set(read_package_resources(path, version))
        assert ("ValueSet", "added-later") in keys and ("ValueSet", "pregnancy-status-pregnant") not in keys
        package = open_package(path)
        guide = json.loads(package.guide_file.read_text(encoding="utf-8"))
        assert {entry["filename"] for entry in package.index["files"]} == {
            f"{t}-{i}.json" for t, i in keys} | {package.guide_file.name}
        assert _guide_references(guide) == {f"{t}/{i}" for t, i in keys}


def _guide_references(guide: dict) -> set[str]:
    return {item["reference"]["reference"] for item in guide["definition"]["resource"]}


def test_each_package_carries_an_implementation_guide_describing_it(built):
    knowledge = _folder_resources(KNOWLEDGE_DIR)
    release = {(res["version"], res["date"], res["status"]) for res in knowledge.values() if "url" in res}
    for path, release_name in zip(built, ("R5", "R4"), strict=True):
        package = open_package(path)
        name, fhir_version = package.manifest["name"], package.manifest["fhirVersions"][0]
        guides = [file for file in package.resource_files if file.name.startswith("ImplementationGuide-")]
        assert guides == [package.guide_file]
        guide = json.loads(package.guide_file.read_text(encoding="utf-8"))
        resource_class(release_name, "ImplementationGuide").model_validate(guide)  # R5, or R4 (the R4B model)
        assert (guide["id"], guide["packageId"], guide["version"]) == (name, name, package.manifest["version"])
        assert guide["url"].endswith(f"/ImplementationGuide/{name}") and guide["fhirVersion"] == [fhir_version]
        assert {(guide["version"], guide["date"], guide["status"])} == release
        core = package.manifest["dependencies"]
        assert guide["dependsOn"] == [{"uri": "http://hl7.org/fhir/ImplementationGuide/fhir", "packageId": core_name,
                                       "version": core_version} for core_name, core_version in core.items()]
        held = read_package_resources(path, fhir_version)
        assert _guide_references(guide) == {f"{t}/{i}" for t, i in held} and len(held) > 60
        assert ("ImplementationGuide", name) not in held  # the guide describes the package, it is no knowledge


def test_the_packages_are_reproducible(built, tmp_path):
    again = build_packages(load_knowledge([KNOWLEDGE_DIR]), tmp_path)
    assert [path.read_bytes() for path in again] == [path.read_bytes() for path in built]


def test_make_package_writes_both_packages(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FHIRSVC_KNOWLEDGE_PATH", "")
    monkeypatch.delenv("FHIRSVC_KNOWLEDGE_DIR", raising=False)
    assert main(["build", "--out", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [Path(line.split(" (")[0]).name for line in lines] == sorted(p.name for p in tmp_path.glob("*.tgz"))
    assert all(line.endswith(" bytes)") for line in lines) and len(lines) == 2


# --- releases ---------------------------------------------------------------------------------------------------


def _restamped(folder: Path, version: str, date: str) -> None:
    """Set the release stamp (version and date of every canonical resource) of a knowledge copy."""
    for path in folder.glob("*.json"):
        resource = json.loads(path.read_text(encoding="utf-8"))
        if "url" in resource:
            resource["version"], resource["date"] = version, date
            path.write_text(json.dumps(resource, indent=2, ensure_ascii=False), encoding="utf-8")


def _set_ra_adult_max_daily_dose(folder: Path, value: int) -> None:
    path = folder / "MedicationKnowledge-anakinra.json"
    medication = json.loads(path.read_text(encoding="utf-8"))
    guideline = next(guideline for indication in medication["indicationGuideline"]
                     for guideline in indication["dosingGuideline"] if guideline["id"] == "ra-adult")
    guideline["dosage"][0]["dosage"][0]["maxDosePerPeriod"][0]["numerator"]["value"] = value
    path.write_text(json.dumps(medication, indent=2, ensure_ascii=False), encoding="utf-8")


@pytest.fixture
def first_release(tmp_path) -> tuple[Path, Path]:
    """A knowledge copy released once (as 1.0.0) into a releases folder of the test's own."""
    folder = shutil.copytree(KNOWLEDGE_DIR, tmp_path / "knowledge")
    _restamped(folder, "1.0.0", "2026-12-06")
    releases = tmp_path / "releases"
    make_release(load_knowledge([folder]), "1.0.0", releases, tmp_path / "dist")
    return folder, releases


def test_a_release_is_recorded_with_its_hash_and_first_change_list(first_release, tmp_path):
    folder, releases = first_release
    rebuilt = build_packages(load_knowledge([folder]), tmp_path / "rebuilt")
    for package_name, built_again in zip((PACKAGE_NAME, PACKAGE_NAME + R4_SUFFIX), rebuilt, strict=True):
        recorded = releases / f"{package_name}-1.0.0.tgz"  # both packages, byte for byte what a rebuild gives
        digest, name = (releases / f"{recorded.name}.sha256").read_text(encoding="utf-8").split()
        assert name == recorded.name and digest == hashlib.sha256(recorded.read_bytes()).hexdigest()
        assert recorded.read_bytes() == built_again.read_bytes()
    assert (releases / "CHANGES-1.0.0.md").read_text(encoding="utf-8").startswith(f"# {PACKAGE_NAME} 1.0.0\n")


def test_a_changed_number_needs_a_bumped_version_and_is_named_in_the_change_list(first_release, tmp_path):
    folder, releases = first_release
    _set_ra_adult_max_daily_dose(folder, 200)
    with pytest.raises(PackagingError, match=r"the knowledge's version is 1\.0\.0, not 1\.0\.1"):
        make_release(load_knowledge([folder]), "1.0.1", releases, tmp_path / "dist")
    _restamped(folder, "0.9.0", "2026-12-07")
    with pytest.raises(PackagingError, match=r"^the content changed since 1\.0\.0 \(the knowledge: 0 added, 0 removed, "
                       r"1 changed resource\(s\); its R4 view: 0 added, 0 removed, 1 changed resource\(s\)\) but the "
                       r"version 0\.9\.0 is not newer: bump it$"):
        make_release(load_knowledge([folder]), "0.9.0", releases, tmp_path / "dist")
    _restamped(folder, "1.0.1", "2026-12-05")
    with pytest.raises(PackagingError, match="the date 2026-12-05 is before that release's"):
        make_release(load_knowledge([folder]), "1.0.1", releases, tmp_path / "dist")
    _restamped(folder, "1.0.1", "2026-12-07")
    *_, changes = make_release(load_knowledge([folder]), "1.0.1", releases, tmp_path / "dist")
    text = changes.read_text(encoding="utf-8")
    assert text.startswith(f"# {PACKAGE_NAME} 1.0.0 → 1.0.1\n") and "0 added, 0 removed, 1 changed resource(s)" in text
    assert "### MedicationKnowledge/anakinra" in text and "1 number change(s)." in text
    assert ("- number: `MedicationKnowledge.indicationGuideline[0].dosingGuideline[ra-adult].dosage[0].dosage[0]"
            ".maxDosePerPeriod[0].numerator.value`: 100 → 200") in text
    knowledge_part, view_part = text.split("## The R4 view")
    assert "version" not in knowledge_part.split("## Changed resources")[1].replace("1.0.1", "")  # the stamp is none
    assert "Compared with the R4 package of 1.0.0: 0 added, 0 removed, 1 changed resource(s)." in view_part
    assert "#### MedicationKnowledge/anakinra" in view_part and "numerator.value`: 100 → 200" in view_part
    assert sorted(p.name for p in releases.glob("*.tgz")) == sorted(
        f"{name}-{version}.tgz" for name in (PACKAGE_NAME, PACKAGE_NAME + R4_SUFFIX) for version in ("1.0.0", "1.0.1"))


def _changed_r4_view(releases: Path, version: str) -> str:
    """Rewrite the recorded R4 package of ``version`` as if the R4 view had then rendered one element otherwise
    (the knowledge itself unchanged); return the element's path."""
    recorded = releases / f"{PACKAGE_NAME}{R4_SUFFIX}-{version}.tgz"
    package = open_package(recorded)
    view = read_package_resources(recorded, "4.0.1")
    view[("MedicationKnowledge", "anakinra")]["synonym"].append("an older rendering")
    write_package(recorded, package.manifest, view.values())
    digest = hashlib.sha256(recorded.read_bytes()).hexdigest()
    (releases / f"{recorded.name}.sha256").write_text(f"{digest}  {recorded.name}\n", encoding="utf-8")
    return "MedicationKnowledge.synonym"


def test_a_change_seen_only_in_the_r4_view_is_a_change(first_release, tmp_path):
    folder, releases = first_release
    path = _changed_r4_view(releases, "1.0.0")
    _restamped(folder, "0.9.0", "2026-12-07")
    with pytest.raises(PackagingError, match=r"^the content changed since 1\.0\.0 \(its R4 view: 0 added, 0 removed, "
                       r"1 changed resource\(s\)\) but the version 0\.9\.0 is not newer: bump it$"):
        make_release(load_knowledge([folder]), "0.9.0", releases, tmp_path / "dist")
    _restamped(folder, "1.0.1", "2026-12-07")
    *_, changes = make_release(load_knowledge([folder]), "1.0.1", releases, tmp_path / "dist")
    knowledge_part, view_part = changes.read_text(encoding="utf-8").split("## The R4 view")
    assert "0 added, 0 removed, 0 changed resource(s)." in knowledge_part and "### " not in knowledge_part
    assert "#### MedicationKnowledge/anakinra" in view_part and f"`{path}[" in view_part
    assert "\"an older rendering\" → (none)" in view_part


def test_a_release_without_an_r4_package_is_compared_by_its_knowledge_alone(first_release, tmp_path):
    folder, releases = first_release
    for path in releases.glob(f"{PACKAGE_NAME}{R4_SUFFIX}-*"):
        path.unlink()  # as release 1.0.0 of the repository, recorded before the R4 package was
    with pytest.raises(PackagingError, match=r"nothing changed since 1\.0\.0"):
        make_release(load_knowledge([folder]), "1.0.1", releases, tmp_path / "dist")
    _set_ra_adult_max_daily_dose(folder, 200)
    _restamped(folder, "1.0.1", "2026-12-07")
    *_, changes = make_release(load_knowledge([folder]), "1.0.1", releases, tmp_path / "dist")
    assert "Release 1.0.0 recorded no R4 package: the R4 view is not compared." in changes.read_text(encoding="utf-8")
    assert (releases / f"{PACKAGE_NAME}{R4_SUFFIX}-1.0.1.tgz.sha256").is_file()


def test_the_change_list_between_any_two_packages(first_release, tmp_path, capsys):
    folder, releases = first_release
    _set_ra_adult_max_daily_dose(folder, 150)
    _restamped(folder, "2.0.0", "2026-12-08")
    newer, _ = build_packages(load_knowledge([folder]), tmp_path / "dist")
    assert main(["changes", str(releases / f"{PACKAGE_NAME}-1.0.0.tgz"), str(newer)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"# {PACKAGE_NAME} 1.0.0 → 2.0.0\n") and ".numerator.value`: 100 → 150" in out
    assert main(["changes", str(releases / f"{PACKAGE_NAME}-1.0.0.tgz"), str(tmp_path / "missing.tgz")]) == 1
    assert "missing.tgz" in capsys.readouterr().err


def test_codes_and_texts_are_named_and_an_unchanged_knowledge_is_no_release(first_release, tmp_path):
    folder, releases = first_release
    with pytest.raises(PackagingError, match=r"nothing changed since 1\.0\.0"):
        make_release(load_knowledge([folder]), "1.0.1", releases, tmp_path / "dist")
    path = folder / "ValueSet-live-vaccines.json"
    value_set = json.loads(path.read_text(encoding="utf-8"))
    include = value_set["compose"]["include"][0]
    removed = include["concept"].pop(0)
    value_set["title"] = "Live vaccines (revised)"
    path.write_text(json.dumps(value_set), encoding="utf-8")
    _restamped(folder, "1.1.0", "2026-12-07")
    *_, changes = make_release(load_knowledge([folder]), "1.1.0", releases, tmp_path / "dist")
    text = changes.read_text(encoding="utf-8")
    assert (f"- code: `ValueSet.compose.include[0].concept[{removed['code']}]`: {removed['code']} "
            f"'{removed['display']}' → (none)") in text
    assert "- text: `ValueSet.title`:" in text and "→ \"Live vaccines (revised)\"" in text


def test_make_release_refuses_a_version_already_recorded(first_release, tmp_path, capsys, monkeypatch):
    folder, releases = first_release
    monkeypatch.setenv("FHIRSVC_KNOWLEDGE_DIR", str(folder))
    monkeypatch.setenv("FHIRSVC_KNOWLEDGE_PATH", "")
    assert main(["release", "--version", "1.0.0", "--releases", str(releases), "--out", str(tmp_path / "d")]) == 1
    err = capsys.readouterr().err
    assert "release 1.0.0 is already recorded" in err and "still carries" not in err
    _set_ra_adult_max_daily_dose(folder, 200)  # changed, the version left as it was
    assert main(["release", "--version", "1.0.0", "--releases", str(releases), "--out", str(tmp_path / "d")]) == 1
    assert ("the knowledge still carries version 1.0.0 but its content is no longer that release's (the knowledge: "
            "0 added, 0 removed, 1 changed resource(s); its R4 view: 0 added, 0 removed, 1 changed resource(s)): "
            "release it as a newer version, dated no earlier than 2026-12-06") in capsys.readouterr().err


def test_the_recorded_releases_match_their_hashes():
    recorded = sorted((ROOT / "releases").glob(f"{PACKAGE_NAME}-*.tgz"))
    assert recorded
    r4_recorded = sorted((ROOT / "releases").glob(f"{PACKAGE_NAME}{R4_SUFFIX}-*.tgz"))
    for path in [*recorded, *r4_recorded]:
        digest, name = (path.parent / f"{path.name}.sha256").read_text(encoding="utf-8").split()
        assert name == path.name and digest == hashlib.sha256(path.read_bytes()).hexdigest()
    assert all(read_package_resources(path) for path in recorded)  # readable R5 knowledge packages
    assert all(read_package_resources(path, "4.0.1") for path in r4_recorded)


# --- fhirsvc validate --package -----------------------------------------------------------------------------------


def test_fhirsvc_validate_validates_the_packages(built, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("FHIRSVC_KNOWLEDGE_PATH", "")
    monkeypatch.delenv("FHIRSVC_KNOWLEDGE_DIR", raising=False)
    assert fhirsvc_main(["validate", "--package", str(built[0]), "--package", str(built[1])]) == 0
    assert " 0 error(s)" in capsys.readouterr().out
    broken = tmp_path / "package"
    shutil.copytree(open_package(built[1]).folder, broken)
    issue = next(broken.glob("DetectedIssue-*.json"))
    resource = json.loads(issue.read_text(encoding="utf-8"))
    resource["severity"] = 42
    issue.write_text(json.dumps(resource), encoding="utf-8")
    (broken / "Extra-file.json").write_text("{}", encoding="utf-8")
    assert fhirsvc_main(["validate", "--package", str(broken)]) == 1
    out = capsys.readouterr().out
    assert f"{broken}: .index.json: Extra-file.json is not listed" in out
    (broken / "Extra-file.json").unlink()
    assert fhirsvc_main(["validate", "--package", str(broken)]) == 1
    assert f"{issue}: DetectedIssue.severity" in capsys.readouterr().out


def test_fhirsvc_validate_validates_each_packages_guide_by_its_fhir_version(built, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("FHIRSVC_KNOWLEDGE_PATH", "")
    monkeypatch.delenv("FHIRSVC_KNOWLEDGE_DIR", raising=False)
    for path in built:
        broken = shutil.copytree(open_package(path).folder, tmp_path / path.name)
        guide_file = open_package(broken).guide_file
        guide = json.loads(guide_file.read_text(encoding="utf-8"))
        guide["dependsOn"][0]["packageVersion"] = guide["dependsOn"][0].pop("version")  # no such element
        guide_file.write_text(json.dumps(guide), encoding="utf-8")
        assert fhirsvc_main(["validate", "--package", str(broken)]) == 1
        out = capsys.readouterr().out  # R5: dependsOn[0].packageVersion, R4 (its models' paths): dependsOn.0...
        element = r"ImplementationGuide\.dependsOn(\[0\]|\.0)\.packageVersion"
        assert re.search(rf"{re.escape(str(guide_file))}: {element}", out)


# --- an independent reader --------------------------------------------------------------------------------------


def test_fhir_package_loader_reads_every_resource_of_both_packages(built, tmp_path):
    if not (LOADER_DIR / ".installed").is_file() or shutil.which("node") is None:
        hint = "the independent package reader needs node and npm's fhir-package-loader: `make package-loader`"
        if os.environ.get("CI"):  # CI installs it (`make test` needs it): missing there is a failure
            pytest.fail(hint)
        pytest.skip(hint)
    result = subprocess.run(["node", str(READER), str(LOADER_DIR), str(tmp_path / "cache"), *map(str, built)],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout)
    for path, report in zip(built, loaded["packages"], strict=True):
        package = open_package(path)
        assert (report["name"], report["version"], report["status"]) == (
            package.manifest["name"], package.manifest["version"], "LOADED")
        assert report["packageJson"] == package.manifest and report["index"] == package.index
        files = {(e["resourceType"], e["id"]): e for e in package.index["files"]}
        read = {(r["resourceType"], r["id"]): r for r in report["resources"]}
        assert set(read) == set(files) and len(read) == len(package.resource_files)
        files_read = [json.loads(file.read_text(encoding="utf-8")) for file in package.resource_files]
        assert {key: r["json"] for key, r in read.items()} == {(r["resourceType"], r["id"]): r for r in files_read}
        assert ("ImplementationGuide", package.manifest["name"]) in read  # the package's guide, read as any
        assert all(r.get("url") == files[key].get("url") for key, r in read.items())
    assert not [line for line in loaded["logs"] if line.startswith(("error", "warn"))], loaded["logs"]


def test_a_long_changed_text_is_shown_from_where_it_changes():
    shared = "The medication-safety checks of the CDS Hooks order hooks as a FHIR operation, " * 3
    line = str(Change("OperationDefinition.description", "text", shared + "old ending.", shared + "new ending."))
    assert '"old ending."' not in line and "old ending." in line and "new ending." in line
    assert line.count("...") == 2 and len(line) < 2 * len(shared)
    assert str(Change("ValueSet.title", "text", "Live vaccines", "Live vaccines (revised)")) == (
        'text: `ValueSet.title`: "Live vaccines" → "Live vaccines (revised)"')
