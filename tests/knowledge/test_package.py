"""The knowledge loaded from a FHIR package (a .tgz or its extracted folder), validated as the folder is, and a bad
package refused at start-up with its reason, never extracted outside a temporary folder of its own."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from fhirsvc import create_app
from fhirsvc.errors import KnowledgeError
from fhirsvc.knowledge import load_knowledge
from fhirsvc.knowledge import package as packages
from fhirsvc.knowledge.loader import knowledge_files
from fhirsvc.knowledge.package import INDEX, MANIFEST, manifest, package_files, write_package
from tests.conftest import KNOWLEDGE_DIR, ROOT


def _resources(folder: Path = KNOWLEDGE_DIR) -> list[dict]:
    return [json.loads(path.read_text(encoding="utf-8")) for path in sorted(folder.glob("*.json"))]


def _manifest(fhir_version: str = "5.0.0") -> dict:
    return manifest("test.knowledge", "1.0.0", fhir_version, "test")


@pytest.fixture(scope="module")
def tarball(tmp_path_factory) -> Path:
    return write_package(tmp_path_factory.mktemp("pkg") / "knowledge.tgz", _manifest(), _resources())


def _tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def _good_members() -> list[tuple[tarfile.TarInfo, bytes | None]]:
    files = package_files(_manifest(), _resources()[:3])
    return [(tarfile.TarInfo(f"package/{name}"), data) for name, data in sorted(files.items())]


def _load_problems(path: Path) -> str:
    with pytest.raises(KnowledgeError) as raised:
        load_knowledge([path])
    return str(raised.value)


def test_the_package_tarball_is_reproducible_and_sorted(tmp_path):
    first = write_package(tmp_path / "a.tgz", _manifest(), _resources())
    second = write_package(tmp_path / "b.tgz", _manifest(), reversed(_resources()))
    assert first.read_bytes() == second.read_bytes()
    assert first.read_bytes()[4:8] == b"\0\0\0\0"  # the gzip header carries no time
    with tarfile.open(first) as tar:
        members = tar.getmembers()
    names = [member.name for member in members]
    assert names == sorted(names) and f"package/{MANIFEST}" in names and f"package/{INDEX}" in names
    assert {(m.mtime, m.uid, m.gid, m.uname, m.mode) for m in members} == {(packages.FIXED_MTIME, 0, 0, "", 0o644)}


def test_the_index_lists_every_resource_file_with_its_fields(tarball, tmp_path):
    with tarfile.open(tarball) as tar:
        tar.extractall(tmp_path, filter="data")
    index = json.loads((tmp_path / "package" / INDEX).read_text(encoding="utf-8"))
    assert index["index-version"] == 2
    files = sorted(p.name for p in (tmp_path / "package").glob("*.json") if p.name not in (MANIFEST, INDEX))
    assert [entry["filename"] for entry in index["files"]] == files and len(files) == len(_resources()) + 1
    by_name = {entry["filename"]: entry for entry in index["files"]}
    sd = by_name["StructureDefinition-source-section.json"]
    source = json.loads((KNOWLEDGE_DIR / "StructureDefinition-source-section.json").read_text(encoding="utf-8"))
    assert sd["kind"] == "complex-type" and sd["type"] == "Extension" and sd["version"] == source["version"]
    assert by_name["CodeSystem-check-outcome.json"]["content"] == "complete"
    assert set(by_name["MedicationKnowledge-anakinra.json"]) == {"filename", "resourceType", "id"}
    assert by_name["ImplementationGuide-test.knowledge.json"] == {  # the package's own guide
        "filename": "ImplementationGuide-test.knowledge.json", "resourceType": "ImplementationGuide",
        "id": "test.knowledge", "url": "https://fhirsvc.org/fhir/ImplementationGuide/test.knowledge",
        "version": "1.0.0"}


def test_the_knowledge_loads_from_a_tarball_and_from_its_folder_as_from_the_folder(tarball, tmp_path):
    from_folder = load_knowledge([KNOWLEDGE_DIR])
    with tarfile.open(tarball) as tar:
        tar.extractall(tmp_path, filter="data")
    for source in (tarball, tmp_path, tmp_path / "package"):
        loaded = load_knowledge([source])
        assert loaded.resources == from_folder.resources and loaded.version == from_folder.version
    extracted = knowledge_files([tarball], [])
    assert all(not path.is_relative_to(tarball.parent) for path in extracted)  # a temporary folder of its own
    assert {path.name for path in extracted} == {path.name for path in KNOWLEDGE_DIR.glob("*.json")}


@pytest.mark.parametrize("setting", ["KNOWLEDGE_DIR", "KNOWLEDGE_PATH"])
def test_the_service_serves_the_knowledge_of_a_package(tarball, monkeypatch, setting):
    if setting == "KNOWLEDGE_DIR":
        config = {"KNOWLEDGE_DIR": str(tarball), "KNOWLEDGE_PATH": ""}
    else:  # the shipped folder first, then a package of one more drug's resources
        extra = write_package(tarball.parent / "extra.tgz", _manifest(), [_extra_value_set()])
        config = {"KNOWLEDGE_PATH": str(extra)}
    monkeypatch.setenv(f"FHIRSVC_{setting}", config[setting])
    app = create_app({"TESTING": True, "AUTH": "off", **{k: v for k, v in config.items() if k != setting}})
    client = app.test_client()
    answer = client.get("/fhir/R5/MedicationKnowledge/anakinra")
    assert answer.status_code == 200 and answer.json["id"] == "anakinra"
    guide = client.get("/fhir/R5/ImplementationGuide/test.knowledge")  # it describes the package: not served
    assert guide.status_code == 404 and guide.json["resourceType"] == "OperationOutcome"
    if setting == "KNOWLEDGE_PATH":
        assert client.get("/fhir/R5/ValueSet/from-a-package").status_code == 200


def _extra_value_set() -> dict:
    value_set = json.loads((KNOWLEDGE_DIR / "ValueSet-nomid.json").read_text(encoding="utf-8"))
    value_set["id"] = "from-a-package"
    value_set["url"] = value_set["url"].rsplit("/", 1)[0] + "/from-a-package"
    return value_set


def test_a_package_is_validated_as_the_folder_is(tmp_path):
    broken = _resources()
    medication = next(r for r in broken if r["resourceType"] == "MedicationKnowledge")
    medication["unknownElement"] = 1
    path = write_package(tmp_path / "broken.tgz", _manifest(), broken)
    assert "MedicationKnowledge.unknownElement: unknown element" in _load_problems(path)


def test_a_package_without_package_json_is_refused(tmp_path):
    members = [(info, data) for info, data in _good_members() if not info.name.endswith(MANIFEST)]
    message = _load_problems(_tar(tmp_path / "no-manifest.tgz", members))
    assert "no-manifest.tgz" in message and "no package.json" in message


def test_an_r4_package_is_refused_as_knowledge(tmp_path):
    path = write_package(tmp_path / "r4.tgz", _manifest("4.0.1"), _resources()[:3])
    message = _load_problems(path)
    assert 'package.json.fhirVersions: is ["4.0.1"], expected ["5.0.0"]' in message


def test_an_index_that_does_not_match_the_files_is_refused(tmp_path):
    members = _good_members()
    index = next(data for info, data in members if info.name.endswith(INDEX))
    wrong = json.loads(index)
    wrong["files"][0]["id"] = "something-else"
    wrong["files"].append({"filename": "Missing-x.json", "resourceType": "Missing", "id": "x"})
    members = [(info, json.dumps(wrong).encode() if info.name.endswith(INDEX) else data) for info, data in members]
    message = _load_problems(_tar(tmp_path / "index.tgz", members))
    assert "does not match the file" in message and "lists Missing-x.json, which the package does not hold" in message


def test_a_guide_that_does_not_describe_the_package_is_refused(tmp_path):
    members = _good_members()
    name = "package/ImplementationGuide-test.knowledge.json"
    guide = json.loads(next(data for info, data in members if info.name == name))
    dropped = guide["definition"]["resource"].pop(0)["reference"]["reference"]
    guide["definition"]["resource"].append({"reference": {"reference": "ValueSet/not-in-the-package"}})
    guide["version"] = "0.9.0"
    members = [(info, json.dumps(guide).encode() if info.name == name else data) for info, data in members]
    message = _load_problems(_tar(tmp_path / "guide.tgz", members))
    assert "ImplementationGuide-test.knowledge.json: ImplementationGuide.version: is \"0.9.0\", the package.json " \
           "says \"1.0.0\"" in message
    assert f"ImplementationGuide.definition.resource: {dropped} is not listed" in message
    assert "lists ValueSet/not-in-the-package, which the package does not hold" in message


def _escape_member(kind: str) -> tarfile.TarInfo:
    if kind == "traversal":
        return tarfile.TarInfo("package/../../escaped.json")
    if kind == "absolute":
        return tarfile.TarInfo(str(Path("/tmp") / "fhirsvc-absolute-escaped.json"))
    if kind == "outside":
        return tarfile.TarInfo("other/escaped.json")
    info = tarfile.TarInfo("package/link.json")
    info.type = tarfile.SYMTYPE if kind == "symlink" else tarfile.LNKTYPE
    info.linkname = "/etc/passwd"
    return info


@pytest.mark.parametrize("kind, reason", [
    ("traversal", "is not a relative path under package/"),
    ("absolute", "is not a relative path under package/"),
    ("outside", "is not a relative path under package/"),
    ("symlink", "is not a regular file"),
    ("hardlink", "is not a regular file"),
])
def test_a_tarball_that_would_write_outside_or_link_is_refused(tmp_path, monkeypatch, kind, reason):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "deep" / "er").mkdir(parents=True)
    info = _escape_member(kind)
    members = [*_good_members(), (info, b"{}" if info.isfile() else None)]
    tarball = _tar(tmp_path / "deep" / "er" / f"{kind}.tgz", members)
    message = _load_problems(tarball)
    assert f"{kind}.tgz" in message and "not a usable FHIR package" in message and reason in message
    assert not list(tmp_path.rglob("escaped.json")) and not Path("/tmp/fhirsvc-absolute-escaped.json").exists()


def test_oversized_members_and_too_many_are_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(packages, "MAX_MEMBER_BYTES", 1000)
    tarball = write_package(tmp_path / "big.tgz", _manifest(), _resources())
    assert "is larger than 1000 bytes" in _load_problems(tarball)
    monkeypatch.setattr(packages, "MAX_MEMBER_BYTES", 16 * 1024 * 1024)
    monkeypatch.setattr(packages, "MAX_TOTAL_BYTES", 20_000)
    assert "the entries hold more than 20000 bytes" in _load_problems(tarball)
    monkeypatch.setattr(packages, "MAX_TOTAL_BYTES", 256 * 1024 * 1024)
    monkeypatch.setattr(packages, "MAX_MEMBERS", 5)
    assert "more than 5 entries" in _load_problems(tarball)
    monkeypatch.setattr(packages, "MAX_TARBALL_BYTES", 100)
    assert "the tarball is larger than 100 bytes" in _load_problems(tarball)


def test_a_tarball_that_unzips_to_more_than_the_bound_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(packages, "MAX_UNZIPPED_BYTES", 1024 * 1024)
    header = tarfile.TarInfo("package/huge-header.json")
    header.pax_headers = {"comment": "x" * (2 * 1024 * 1024)}  # read whole by a tar reader before the member
    tarball = _tar(tmp_path / "bomb.tgz", [*_good_members(), (header, b"{}")])
    assert tarball.stat().st_size < 64 * 1024
    assert "the tarball unzips to more than 1048576 bytes" in _load_problems(tarball)


def test_a_file_that_is_not_a_gzipped_tar_is_refused(tmp_path):
    path = tmp_path / "not.tgz"
    path.write_bytes(b"not a tarball at all")
    assert "not a readable gzipped tar" in _load_problems(path)


def test_the_service_does_not_start_on_a_bad_package(tmp_path, monkeypatch):
    path = write_package(tmp_path / "r4.tgz", _manifest("4.0.1"), _resources()[:3])
    monkeypatch.setenv("FHIRSVC_KNOWLEDGE_DIR", str(path))
    with pytest.raises(KnowledgeError, match=r"r4\.tgz: package\.json\.fhirVersions"):
        create_app({"TESTING": True, "AUTH": "off", "KNOWLEDGE_PATH": ""})


def test_the_extracted_package_is_removed_when_the_process_ends_not_when_a_fork_does(tarball, tmp_path):
    code = ("import os, sys\nfrom pathlib import Path\nfrom fhirsvc.knowledge.package import open_package\n"
            f"package = open_package(Path({str(tarball)!r}))\nprint(package.folder, flush=True)\n"
            "pid = os.fork()\nif pid == 0:\n    sys.exit(0)\nos.waitpid(pid, 0)\n"
            "print(package.folder.is_dir(), flush=True)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    folder, after_fork = result.stdout.split()
    assert after_fork == "True" and not Path(folder).exists()
