#!/usr/bin/env bash
# The wheel runs alone (make wheel-check; CI runs it): build the wheel of this checkout, install it without extras
# into a fresh virtualenv in an empty temporary directory, and there, far from the checkout:
#   - the wheel holds the knowledge and the templates, and `fhirsvc` is imported from the virtualenv;
#   - `fhirsvc check` runs the checks on a golden scenario (copied beside it) and finds its critical findings;
#   - `fhirsvc serve` starts on a free loopback port and answers GET /healthz, GET /fhir/R4/metadata and the
#     monograph index page (templates), keeping its state in var/ of the working directory; then it is stopped;
#   - what needs an extra (PostgreSQL, the governance charts, the independent validator) says which to install.
# PYTHON= the interpreter to build and install with (default python3); KEEP=1 keeps the directory.
set -euo pipefail
cd "$(dirname "$0")/.."
checkout=$PWD
python=${PYTHON:-python3}
scenario=fixtures/scenarios/016-live-vaccine-same-bundle.request.json

# Nothing of the caller's configuration (which may point into the checkout) reaches the installed service.
while read -r name; do unset "$name"; done < <(compgen -e | grep -E '^(FHIRSVC_|PYTHON(PATH|HOME)$)' || true)

dir=$(mktemp -d)
server=
cleanup() {
    if [ -n "$server" ] && kill -0 "$server" 2>/dev/null; then kill "$server"; wait "$server" || true; fi
    if [ "${KEEP:-}" = 1 ]; then echo "wheel-check: kept $dir"; else rm -rf "$dir"; fi
}
trap cleanup EXIT
fail() { echo "wheel-check: FAILED: $*" >&2; exit 1; }

# Built from a copy of the checkout's files (tracked or new, not ignored): nothing left over in build/ gets in.
echo "wheel-check: building the wheel of $checkout in $dir"
mkdir "$dir/src"
git ls-files -z --cached --others --exclude-standard | tar --null -T - --ignore-failed-read -cf - 2>/dev/null \
    | tar -xf - -C "$dir/src"
"$python" -m pip wheel --quiet --no-deps --wheel-dir "$dir/dist" "$dir/src"
wheel=$(ls "$dir"/dist/fhirsvc-*.whl)
"$python" - "$wheel" <<'EOF' || fail "the wheel lacks data files"
import os, sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
knowledge = [n for n in names if n.startswith("fhirsvc/knowledge/data/") and n.endswith(".json")]
templates = [n for n in names if "/templates/" in n and n.endswith(".html")]
size = sum(i.file_size for i in zipfile.ZipFile(sys.argv[1]).infolist())
print(f"wheel-check: {sys.argv[1].rsplit('/', 1)[-1]}: {os.path.getsize(sys.argv[1]) // 1024} kB, {len(names)} files, "
      f"{size // 1024} kB unpacked: "
      f"{sum(n.endswith('.py') for n in names)} modules, {len(knowledge)} knowledge files, {len(templates)} templates")
assert len(knowledge) > 50 and "fhirsvc/knowledge/data/README.md" in names, "no knowledge"
assert {"fhirsvc/monograph/templates/monograph/page.html", "fhirsvc/governance/templates/governance/page.html"} \
    <= set(names), "no templates"
EOF

"$python" -m venv "$dir/venv"
"$dir/venv/bin/python" -m pip install --quiet --upgrade pip
"$dir/venv/bin/python" -m pip install --quiet "$wheel"
cp "$scenario" "$dir/scenario.json"
cd "$dir"
bin=$dir/venv/bin
where=$("$bin/python" -c 'import fhirsvc; print(fhirsvc.__file__)')
case $where in "$dir"/venv/*) echo "wheel-check: fhirsvc imported from $where";; *) fail "fhirsvc imported from $where";; esac

status=0
"$bin/fhirsvc" check --now 2026-11-24T12:00:00Z scenario.json > check.out || status=$?
cat check.out
[ "$status" = 1 ] && grep -q "Live vaccine" check.out || fail "fhirsvc check: exit status $status, expected 1"

port=$("$bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
FHIRSVC_AUTH=off "$bin/fhirsvc" serve --host 127.0.0.1 --port "$port" > serve.log 2>&1 &
server=$!
"$bin/python" - "$port" <<'EOF' || { cat serve.log >&2; fail "fhirsvc serve"; }
import json, sys, time, urllib.request
base = f"http://127.0.0.1:{sys.argv[1]}"
deadline = time.monotonic() + 60  # start-up validates the knowledge (no cache yet)
while True:
    try:
        with urllib.request.urlopen(base + "/healthz", timeout=5) as answer:
            health = json.load(answer)
        break
    except OSError:
        if time.monotonic() > deadline:
            raise SystemExit("no answer on /healthz within 60 s")
        time.sleep(0.2)
assert health["status"] == "ok" and health["knowledge"]["total"] > 50, health
print(f"wheel-check: GET /healthz: {health['status']}, {health['knowledge']['total']} resources, "
      f"database {health['database']['backend']} {health['database']['status']}")
with urllib.request.urlopen(base + "/fhir/R4/metadata", timeout=10) as answer:
    capability = json.load(answer)
assert answer.status == 200 and capability["resourceType"] == "CapabilityStatement", capability
assert capability["fhirVersion"].startswith("4."), capability["fhirVersion"]
print(f"wheel-check: GET /fhir/R4/metadata: {capability['resourceType']} {capability['fhirVersion']}, "
      f"{len(capability['rest'][0]['resource'])} resource types")
with urllib.request.urlopen(base + "/monographs/", timeout=10) as answer:
    page = answer.read().decode()
assert answer.status == 200 and "anakinra" in page.lower(), page[:500]
print(f"wheel-check: GET /monographs/: {answer.status}, {len(page)} characters of HTML (the package's templates)")
EOF
kill "$server"
wait "$server" || true
server=
[ -f var/feedback.sqlite3 ] || fail "no state in var/ of the working directory"
echo "wheel-check: state kept in var/ of the working directory; server stopped"

# What needs an extra says so, and the service does not start half-working.
expect_refusal() {  # expected text, then the environment and command
    local expected=$1 out; shift
    status=0; out=$(timeout 120 env "$@" 2>&1) || status=$?
    [ "$status" != 0 ] && grep -qF "$expected" <<<"$out" || fail "$* (exit $status): $out"
    echo "wheel-check: refused as expected: $(grep -F "$expected" <<<"$out" | head -c 160)"
}
expect_refusal "fhirsvc[postgres]" FHIRSVC_DATABASE_URL=postgresql://fhirsvc@127.0.0.1:1/fhirsvc FHIRSVC_AUTH=off \
    "$bin/fhirsvc" serve --host 127.0.0.1 --port "$port"
expect_refusal "fhirsvc[governance]" FHIRSVC_GOVERNANCE=on FHIRSVC_AUTH=off "$bin/fhirsvc" serve --host 127.0.0.1 --port "$port"
expect_refusal "fhirsvc[validate]" "$bin/fhirsvc" validate
echo "wheel-check: OK"
