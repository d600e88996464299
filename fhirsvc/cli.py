"""``fhirsvc serve | validate | check``: the service's command line."""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import runpy
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fhirsvc.config import knowledge_dirs, load_config
from fhirsvc.errors import ConfigError, KnowledgeError
from fhirsvc.fhirtypes import parse_instant
from fhirsvc.knowledge.problems import Problem

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication
    from gunicorn.app.base import BaseApplication


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``fhirsvc`` command; returns the exit status."""
    parser = argparse.ArgumentParser(prog="fhirsvc", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="serve the FHIR API and CDS Hooks with gunicorn")
    serve.add_argument("--host", help="address to listen on (default: HOST, else 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default: PORT, else 8080)")
    serve.add_argument("--workers", type=int, help="worker processes (default: FHIRSVC_WORKERS, else 2)")
    serve.add_argument("--threads", type=int, help="threads per worker (default: FHIRSVC_THREADS, else 8)")
    serve.add_argument("--config", type=Path, metavar="FILE", default=os.environ.get("FHIRSVC_GUNICORN_CONFIG") or None,
                       help="a gunicorn configuration file read after the shipped one (fhirsvc/gunicorn_conf.py): "
                            "the settings it names replace the shipped ones (default: FHIRSVC_GUNICORN_CONFIG)")

    validate = commands.add_parser(
        "validate", help="validate knowledge: fhir.resources R5, ids, references, independent validator")
    validate.add_argument("paths", nargs="*", type=Path,
                          help="extra knowledge files or directories (default: the configured knowledge)")
    validate.add_argument("--package", action="append", type=Path, default=[], metavar="FILE",
                          help="also validate a built FHIR package (.tgz or folder): its package.json and "
                               ".index.json, an R5 package's resources as the knowledge's, an R4 package's "
                               "against the R4 models (repeatable; `make validate` gives the packages of dist/)")

    check = commands.add_parser(
        "check", help="run the checks offline on a saved CDS Hooks request or a FHIR Bundle of MedicationRequests",
        description="Run the medication-safety checks offline (nothing is fetched) on a saved order-select / "
                    "order-sign request, or on a FHIR Bundle of MedicationRequests with optional Patient, Condition, "
                    "AllergyIntolerance, Observation and MedicationRequest context entries (the orders are the "
                    "draft entries, or every MedicationRequest if none is a draft). Exit status: 0 nothing "
                    "critical, 1 a critical finding, 2 unreadable input.")
    check.add_argument("file", type=Path, metavar="FILE.json", help="the saved request or Bundle")
    check.add_argument("--json", action="store_true", help="print the findings and cards as JSON")
    check.add_argument("--fhir", nargs="?", const="R4", choices=("R4", "R5"), metavar="R4|R5",
                       help="print the findings as the $check-orders answer: a FHIR Bundle of DetectedIssues "
                            "(R4 unless R5 is given)")
    check.add_argument("--now", type=_instant, metavar="ISO",
                       help="the clock for the checks, e.g. 2026-11-24T12:00:00Z (default: now; no zone means UTC)")

    governance = commands.add_parser(
        "governance", help="print the governance report (which CDS rules are overridden) for a period",
        description="Print the governance report, read from the configured database (FHIRSVC_DATABASE_URL): per "
                    "rule (topic, indicator, drug) the cards issued, the share with feedback, accepted, overridden, "
                    "the override rate and its top reason, ranked by override rate. Exit status: 0, or 2 for a "
                    "bad parameter or an unusable database.")
    governance.add_argument("--from", dest="start", metavar="YYYY-MM-DD", help="first day, UTC (default: 29 days "
                            "before --to)")
    governance.add_argument("--to", dest="end", metavar="YYYY-MM-DD", help="last day, UTC (default: today)")
    governance.add_argument("--service", help="one service id (default: every service)")
    output = governance.add_mutually_exclusive_group()
    output.add_argument("--csv", action="store_true", help="print the table as CSV (as GET /governance/report.csv)")
    output.add_argument("--json", action="store_true", help="print the whole report as JSON (as "
                        "GET /governance/report.json)")

    rules = commands.add_parser(
        "rules", help="list the rules: id, number, topic, default indicator, hooks, title, site settings, fixed "
                      "thresholds, source section",
        description="List the rules of the knowledge's rule registries, as GET /cds-services/rules does: per rule "
                    "its id (the extension[\"fhirsvc.rule\"] of its cards), its number in the contract, title, "
                    "v3-ActCode topic, default indicator, monograph source section, the services (hooks) that "
                    "run it, the settings a site may adjust and the fixed thresholds (which it may not). Exit "
                    "status: 0, or 2 if the knowledge does not load.")
    rules.add_argument("--json", action="store_true", help="print the list as JSON (as GET /cds-services/rules)")

    args = parser.parse_args(argv)
    if args.command == "rules":
        return print_rules(as_json=args.json)
    if args.command == "governance":
        return print_governance(args.start, args.end, args.service, "csv" if args.csv else
                                "json" if args.json else "table")
    if args.command == "serve":
        return serve_app(args.host, args.port, args.workers, args.threads, args.config)
    if args.command == "check":
        return check_file(args.file, as_json=args.json, now=args.now, fhir=args.fhir)
    return validate_knowledge(args.paths, args.package)


def _instant(value: str) -> datetime:
    try:
        parsed = parse_instant(value.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO date or date-time: {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def check_file(path: Path, as_json: bool = False, now: datetime | None = None, fhir: str | None = None) -> int:
    """Run the checks offline on ``path``; print a table (or JSON, or with ``fhir`` = R4 or R5 the FHIR Bundle of
    DetectedIssues that $check-orders answers). 0 if nothing is critical, 1 if a finding is critical, 2 if the
    input cannot be read (one line on stderr) or the knowledge does not load."""
    from fhirsvc.escaping import plain_text, terminal_json
    from fhirsvc.evaluation.bundles import answer
    from fhirsvc.evaluation.environment import DEFAULT_PUBLIC_BASE
    from fhirsvc.evaluation.offline import (
        UnreadableInput,
        evaluate_offline,
        findings_json,
        findings_table,
        read_document,
    )
    from fhirsvc.knowledge import load_knowledge
    from fhirsvc.knowledge.site import load_site_config

    config = load_config()
    try:
        document = read_document(path, int(config["MAX_CONTENT_LENGTH"]))
    except UnreadableInput as exc:
        print(f"fhirsvc check: {plain_text(exc)}", file=sys.stderr)
        return 2
    try:
        knowledge = load_knowledge(knowledge_dirs(config))
    except KnowledgeError as exc:
        print(f"fhirsvc check: the knowledge does not load: {exc}", file=sys.stderr)
        return 2
    try:
        site = load_site_config(config["SITE_CONFIG"], knowledge)
    except ConfigError as exc:
        print(f"fhirsvc check: {plain_text(exc)}", file=sys.stderr)
        return 2
    try:
        public = str(config.get("PUBLIC_BASE_URL") or DEFAULT_PUBLIC_BASE).rstrip("/")
        result = evaluate_offline(document, knowledge, now=now, public_base=public, site=site)
    except UnreadableInput as exc:
        print(f"fhirsvc check: {path}: {plain_text(exc)}", file=sys.stderr)  # it may quote the input
        return 2
    if fhir:
        assert result.evaluation is not None
        bundle = document if isinstance(document, dict) and document.get("resourceType") == "Bundle" else None
        output = json.dumps(answer(result.evaluation, fhir, f"{public}/fhir/{fhir}", bundle), indent=2,
                            ensure_ascii=False)
    elif as_json:
        output = json.dumps(findings_json(result), indent=2, ensure_ascii=False)
    else:
        output = findings_table(result)
    output = terminal_json(output) if fhir or as_json else output  # the table is plain text already
    try:
        print(output)
        sys.stdout.flush()
    except BrokenPipeError:  # e.g. piped into head: not an error of the checks
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 1 if result.critical else 0


def site_settings_text(rule: dict[str, Any]) -> str:
    """A rule's adjustable settings in a few words (``kidney-result-max-age-days=180 (30-365 days)``); a rule never
    to be weakened says so."""
    own = [f"{s['code']}={s['default']} ({s['minimum']}-{s['maximum']} {s['unit']})"
           for s in rule["settings"] if "minimum" in s]
    return "; ".join([*own, *(["never weaken without reason"] if rule["neverWeaken"] else [])]) or "-"


def thresholds_text(rule: dict[str, Any]) -> str:
    """A rule's fixed thresholds in a few words (``fever-celsius >= 38 Cel``), not a site setting."""
    return "; ".join(f"{t['code']} {t['comparator']} {t['value']:g} {t['unit']}" for t in rule["thresholds"]) or "-"


def print_rules(as_json: bool = False) -> int:
    """The rules of the knowledge as a table (or JSON), from the same list as ``GET /cds-services/rules``."""
    from fhirsvc.escaping import plain_text, terminal_json
    from fhirsvc.evaluation.rules import catalogue
    from fhirsvc.knowledge import load_knowledge

    config = load_config()
    try:
        knowledge = load_knowledge(knowledge_dirs(config), config["VALIDATION_CACHE"] or None)
    except KnowledgeError as exc:
        print(f"fhirsvc rules: the knowledge does not load: {exc}", file=sys.stderr)
        return 2
    listed = catalogue(knowledge)
    if as_json:
        print(terminal_json(json.dumps({"rules": listed}, indent=2, ensure_ascii=False)))
        return 0
    header = ("ID", "#", "TOPIC", "INDICATOR", "HOOKS", "TITLE", "SITE SETTINGS", "THRESHOLDS", "SOURCE SECTION")
    rows = [tuple(plain_text(cell) for cell in (r["id"], r["number"] or "-", r["topic"]["code"], r["indicator"],
                                                ",".join(s["hook"] for s in r["services"]) or "-", r["title"],
                                                site_settings_text(r), thresholds_text(r), r["sourceSection"]))
            for r in listed]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join([*(cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])), row[-1]]).rstrip()
             for row in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    print("\n".join([*lines, f"{len(rows)} rule(s)"]))
    return 0


def print_governance(start: str | None, end: str | None, service: str | None, output: str) -> int:
    """The governance report in the terminal: the same numbers as the page, read from the same store."""
    from fhirsvc.escaping import terminal_json
    from fhirsvc.governance.report import BadParameter, governance_report, report_document, report_table, write_csv
    from fhirsvc.knowledge.loader import load_knowledge
    from fhirsvc.knowledge.site import load_site_config
    from fhirsvc.storage import StorageError, open_store

    config = load_config()
    try:
        knowledge = load_knowledge(knowledge_dirs(config), config["VALIDATION_CACHE"] or None)
        store = open_store(str(config["DATABASE_URL"]), timeout=float(config["DATABASE_TIMEOUT"]))
    except (KnowledgeError, ConfigError, StorageError) as exc:
        print(f"fhirsvc governance: {exc}", file=sys.stderr)
        return 2
    try:
        report = governance_report(store, knowledge, config, start, end, service, datetime.now(UTC).date(),
                                   load_site_config(config["SITE_CONFIG"], knowledge))
    except (BadParameter, ConfigError) as exc:
        print(f"fhirsvc governance: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # the database went away meanwhile
        print(f"fhirsvc governance: {exc}", file=sys.stderr)
        return 2
    finally:
        store.close()
    if output == "json":
        print(terminal_json(json.dumps(report_document(report), indent=2, ensure_ascii=False)))
    elif output == "csv":
        write_csv(report, sys.stdout, lineterminator="\n")
    else:
        sys.stdout.write(report_table(report))
    return 0


def log_to_stderr() -> None:
    """Send the service's own log lines (``fhirsvc.*``: one per CDS call, errors, start-up warnings) to stderr,
    where gunicorn writes its own."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("[%(asctime)s] [%(process)d] [%(levelname)s] %(name)s: %(message)s",
                                           "%Y-%m-%d %H:%M:%S %z"))
    logging.getLogger("fhirsvc").addHandler(handler)


GC_THRESHOLD = 2000  # objects allocated (net) between young collections; Python's default is 700


def tune_gc() -> None:
    """Set up the garbage collector for serving, once start-up is done. What start-up built (the knowledge, its
    texts and indexes) lives as long as the process: it is frozen out of the collector's generations, so that
    collections during calls do not walk it again and the forked workers do not write to its pages. A CDS call
    parses a few thousand objects; with the young-generation threshold raised from 700 to GC_THRESHOLD, the
    collector runs about once in 20 calls instead of during every call (``make bench``: about 3 % of an
    order-sign call)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, *gc.get_threshold()[1:])


GUNICORN_CONFIG = Path(__file__).resolve().parent / "gunicorn_conf.py"


def gunicorn_settings(config: Path | None = None, **overrides: Any) -> dict[str, Any]:
    """The gunicorn settings to serve with: the shipped file (GUNICORN_CONFIG), then ``config`` (the settings it
    names replace the shipped ones), then the ``overrides`` that are not None. ConfigError if ``config`` cannot be
    read or a value is not one gunicorn takes."""
    from gunicorn.config import Config

    known = Config().settings
    settings: dict[str, Any] = {}
    for path in (GUNICORN_CONFIG, config):
        if path is None:
            continue
        try:
            namespace = runpy.run_path(str(path))
        except Exception as exc:  # a missing file, a syntax error, an error running it
            raise ConfigError(f"gunicorn configuration {path}: {type(exc).__name__}: {exc}") from exc
        settings.update((name, value) for name, value in namespace.items() if name in known)
    settings.update((name, value) for name, value in overrides.items() if value is not None)
    check = Config()
    for name, value in settings.items():
        try:
            check.set(name, value)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"gunicorn setting {name} = {value!r}: {exc}") from exc
    return settings


def gunicorn_server(app: WSGIApplication, settings: dict[str, Any], sources: Sequence[Path] = ()) -> BaseApplication:
    """A gunicorn application serving the WSGI ``app`` with ``settings`` (see gunicorn_settings); it logs the
    settings in effect, read from ``sources``."""
    from gunicorn.app.base import BaseApplication

    class Server(BaseApplication):
        def load_config(self) -> None:
            for name, value in settings.items():
                self.cfg.set(name, value)
            cfg = self.cfg  # gunicorn's effective values (e.g. "sync" with threads > 1 is gthread)
            logging.getLogger("fhirsvc.serve").info(
                "serving on %s: %s %s worker(s) x %s thread(s), keepalive %s s, timeout %s s, graceful_timeout %s s "
                "(gunicorn settings: %s)", ", ".join(cfg.bind), cfg.workers, cfg.worker_class_str,
                cfg.threads, cfg.keepalive, cfg.timeout, cfg.graceful_timeout, ", ".join(map(str, sources)))

        # gunicorn's stub takes the environ as a MutableMapping, PEP 3333 (and typeshed's WSGIApplication) a dict
        def load(self) -> WSGIApplication:  # type: ignore[override]
            return app

    return Server()


def serve_app(host: str | None = None, port: int | None = None, workers: int | None = None,
              threads: int | None = None, config: Path | None = None) -> int:
    """Load the knowledge once and open the database (a bad file or an unusable database stops here, with its
    message), then serve with gunicorn, set up by gunicorn_settings (``host`` and ``port``, when either is given,
    replace the configured ``bind``)."""
    from fhirsvc import create_app
    from fhirsvc.storage import StorageError

    log_to_stderr()
    bind = None
    if host is not None or port is not None:
        bind = f"{host or os.environ.get('HOST', '127.0.0.1')}:{port or os.environ.get('PORT', '8080')}"
    try:
        settings = gunicorn_settings(config, bind=bind, workers=workers, threads=threads)
        app = create_app()
    except (KnowledgeError, ConfigError, StorageError) as exc:
        print(f"fhirsvc serve: {exc}", file=sys.stderr)
        return 1
    tune_gc()
    gunicorn_server(app, settings, [path for path in (GUNICORN_CONFIG, config) if path is not None]).run()
    return 0


def validate_knowledge(extra: Sequence[Path], packages: Sequence[Path] = ()) -> int:
    """Print every problem as ``file: element: message``; 0 if none is an error, 1 otherwise, 2 if the
    independent validator is not installed. ``packages``: built FHIR packages to validate as well."""
    from fhirsvc.knowledge.independent import ValidatorNotInstalled, validate_files
    from fhirsvc.knowledge.loader import check_paths, knowledge_files
    from fhirsvc.knowledge.release import stamp

    paths = [*knowledge_dirs(load_config()), *extra]
    entries, problems = check_paths(paths)
    files = knowledge_files(paths, [])
    problems += [Problem("knowledge", "release stamp", message, "warning")
                 for message in stamp({(r["resourceType"], r["id"]): r for _, r in entries}).problems()]
    try:
        problems += validate_files(files)
        for package in packages:
            package_files, package_problems = validate_package(package)
            files += package_files
            problems += package_problems
    except ValidatorNotInstalled as exc:
        print(exc, file=sys.stderr)
        return 2
    errors = sorted(p for p in problems if p.severity == "error")
    warnings = sorted(p for p in problems if p.severity != "error")
    for problem in [*errors, *warnings]:
        print(f"{problem.severity.upper()}: {problem}")
    print(f"{len(files)} files, {len(entries)} resources loaded: "
          f"{len(errors)} error(s), {len(warnings)} warning(s)")
    return 1 if errors else 0


def validate_package(path: Path) -> tuple[list[Path], list[Problem]]:
    """A built package's files and problems: its manifest and index (``package.check_package``), then an R5
    package's resources as the knowledge is validated (models, ids, references, the independent validator), an
    R4 package's against the R4 models; the package's own ImplementationGuide by the models of its version."""
    from fhirsvc.knowledge.independent import validate_files
    from fhirsvc.knowledge.loader import check_paths, read_resource
    from fhirsvc.knowledge.package import PackageError, check_package, check_r4_resources, open_package

    try:
        package = open_package(path)
    except PackageError as exc:
        return [], [Problem(str(path), "-", f"not a usable FHIR package: {exc}")]
    problems = check_package(package, None)
    files = list(package.resource_files)
    if problems:
        return files, problems
    if package.manifest.get("fhirVersions") == ["5.0.0"]:
        problems += check_paths([package.folder])[1] + validate_files(files)
        if package.guide_file is not None:  # not knowledge, so not among check_paths' files
            problems += read_resource(package.guide_file)[1]
    else:
        problems += check_r4_resources(files)
    return files, problems

if __name__ == "__main__":
    sys.exit(main())
