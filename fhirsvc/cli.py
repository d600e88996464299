"""``fhirsvc serve | validate``: the service's command line."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from fhirsvc.config import knowledge_dirs, load_config
from fhirsvc.errors import KnowledgeError


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``fhirsvc`` command; returns the exit status."""
    parser = argparse.ArgumentParser(prog="fhirsvc", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="serve the FHIR API and CDS Hooks with gunicorn")
    serve.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    serve.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8080")))
    serve.add_argument("--workers", type=int, default=int(os.environ.get("FHIRSVC_WORKERS", "2")))

    validate = commands.add_parser(
        "validate", help="validate knowledge: fhir.resources R5, ids, references, independent validator")
    validate.add_argument("paths", nargs="*", type=Path,
                          help="extra knowledge files or directories (default: the configured knowledge)")

    args = parser.parse_args(argv)
    if args.command == "serve":
        return serve_app(args.host, args.port, args.workers)
    return validate_knowledge(args.paths)


def serve_app(host: str, port: int, workers: int) -> int:
    """Load the knowledge once (a bad file stops here, with its message), then serve with gunicorn."""
    from gunicorn.app.base import BaseApplication

    from fhirsvc import create_app

    try:
        app = create_app()
    except KnowledgeError as exc:
        print(exc, file=sys.stderr)
        return 1

    class Server(BaseApplication):
        def load_config(self) -> None:
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers)
            self.cfg.set("accesslog", "-")

        def load(self):
            return app

    Server().run()
    return 0


def validate_knowledge(extra: Sequence[Path]) -> int:
    """Print every problem as ``file: element: message``; 0 if none is an error, 1 otherwise, 2 if the
    independent validator is not installed."""
    from fhirsvc.knowledge.independent import ValidatorNotInstalled, validate_files
    from fhirsvc.knowledge.loader import check_paths, knowledge_files

    paths = [*knowledge_dirs(load_config()), *extra]
    entries, problems = check_paths(paths)
    files = knowledge_files(paths, [])
    try:
        problems += validate_files(files)
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


if __name__ == "__main__":
    sys.exit(main())
