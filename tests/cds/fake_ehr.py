"""A FHIR server on 127.0.0.1 for the fetch tests: its answer per resource type can be set, and it records
every request it gets (path, Authorization and Cookie headers), wherever on the server it lands."""

from __future__ import annotations

import threading
import time

from flask import Flask, jsonify, redirect, request
from werkzeug.serving import make_server


def bundle(*resources, next_url=None):
    body = {"resourceType": "Bundle", "type": "searchset", "total": len(resources),
            "entry": [{"resource": r} for r in resources]}
    if next_url:
        body["link"] = [{"relation": "next", "url": next_url}]
    return body


class FakeEhr:
    """Modes per resource type: ok, 500, 401, garbage, slow, redirect (to ``redirect_to``), loop (a next link to
    itself), cookie (ok, with a Set-Cookie), deep (JSON nested 200,000 levels), many (two pages of ``many``
    resources), huge (pages of ``huge_bytes`` bytes without end). Paths outside ``/fhir/<type>[/<id>]`` answer
    404, and are recorded too: a server that must get no request at all is checked with ``requests == []``."""

    def __init__(self):
        self.modes: dict[str, str] = {}
        self.requests: list[tuple[str, str | None]] = []  # (path with query, Authorization)
        self.cookies: list[str | None] = []  # the Cookie header of each request
        self.redirect_to = "http://169.254.169.254/latest/meta-data"
        self.many = 3000  # resources per page in mode "many"
        self.huge_bytes = 1024 * 1024  # bytes per page in mode "huge"
        app = Flask("fake-ehr")

        @app.before_request
        def record():
            self.requests.append((request.full_path, request.headers.get("Authorization")))
            self.cookies.append(request.headers.get("Cookie"))

        @app.route("/fhir/<rtype>", defaults={"rid": None})
        @app.route("/fhir/<rtype>/<rid>")
        def serve(rtype, rid):
            mode = self.modes.get(rtype, "ok")
            if mode == "500":
                return jsonify({"resourceType": "OperationOutcome"}), 500
            if mode == "401":
                return "", 401
            if mode == "garbage":
                return "<html>not json</html>", 200
            if mode == "deep":  # JSON nested deeper than any parser's recursion allows
                return "[" * 200_000 + "]" * 200_000, 200, {"Content-Type": "application/fhir+json"}
            if mode == "slow":
                time.sleep(3)
            if mode == "redirect":
                return redirect(self.redirect_to)
            if mode == "loop":
                return jsonify(bundle({"resourceType": rtype, "id": "x"}, next_url=request.url))
            if mode == "many":  # more resources than a Bundle may hold, over two pages
                page = int(request.args.get("page", "1"))
                return jsonify(bundle(*({"resourceType": rtype, "id": f"r{page}-{i}"} for i in range(self.many)),
                                      next_url=f"{request.base_url}?page=2" if page == 1 else None))
            if mode == "huge":  # pages of ``huge_bytes`` each, every one with a next link
                page = int(request.args.get("page", "1"))
                padding = {"resourceType": rtype, "id": f"p{page}", "text": {"div": "x" * self.huge_bytes}}
                return jsonify(bundle(padding, next_url=f"{request.base_url}?page={page + 1}"))
            if rtype == "Patient":
                response = jsonify({"resourceType": "Patient", "id": rid, "birthDate": "1950-01-01"})
            elif rtype == "Medication":
                response = jsonify({"resourceType": "Medication", "id": rid, "code": {"text": "Kineret"}})
            elif request.args.get("page") == "2":
                response = jsonify(bundle({"resourceType": rtype, "id": f"{rtype.lower()}-2"}))
            else:
                response = jsonify(bundle({"resourceType": rtype, "id": f"{rtype.lower()}-1"},
                                          next_url=f"{request.base_url}?page=2" if rtype == "Condition" else None))
            if mode == "cookie":
                response.set_cookie("ehr-session", f"for-{request.headers.get('Authorization')}", path="/")
            return response

        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.port = self.server.server_port
        self.origin = f"http://127.0.0.1:{self.port}"
        self.base = f"{self.origin}/fhir"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def reset(self) -> None:
        self.modes.clear()
        self.requests.clear()
        self.cookies.clear()

    def close(self) -> None:
        self.server.shutdown()
