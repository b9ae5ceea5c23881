#!/usr/bin/env bash
# Regenerates the README's conformance table: starts this server (release build) on a fresh SQLite
# database with authorization on, runs `fhir-server conformance` on conformance-tests/ (a token by
# SMART Backend Services for the suite's client, a Patient-only token for the authorization
# script) and on the public scripts in ../shared/testscripts, and prints one Markdown row per set.
#
#   conformance-tests/run.sh            reports are left in a temporary directory it prints
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=./target/release/fhir-server
work=$(mktemp -d /tmp/fhir-conformance.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port/fhir/R4"
server=""
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; wait 2>/dev/null || true' EXIT

# The suite's clients (the test keys of tests/fixtures/auth), and a key for a Patient-only token.
jwks=$(cat tests/fixtures/auth/client-jwks.json)
echo "[{\"client_id\": \"suite\", \"jwks\": $jwks, \"scope\": \"system/*.cruds\"}]" >"$work/clients.json"
kid=$($bin keys generate --out "$work/keys" | sed 's/.*(kid \(.*\))/\1/')
reader=$($bin token --key "$work/keys/private-key.pem" --kid="$kid" --issuer https://conformance.example \
  --audience "$base" --scope "system/Patient.rs")

FHIR_LOG=warn $bin --listen "127.0.0.1:$port" --database-url "sqlite:$work/fhir.sqlite" \
  --auth-clients-file "$work/clients.json" --auth-signing-key "$work/signing-key.pem" \
  --auth-issuer https://conformance.example --auth-jwks-file "$work/keys/jwks.json" >"$work/server.log" 2>&1 &
server=$!
for _ in $(seq 300); do curl -sf "http://127.0.0.1:$port/health/ready" >/dev/null && break; sleep 0.1; done

run() { # run NAME PATH…
  local name=$1
  shift
  $bin conformance --base "$base" --client-id suite --client-key tests/fixtures/auth/client-ec384.pem \
    --client-kid client-ec --token-url "$base/auth/token" --scope "system/*.cruds" \
    --var "readerToken=$reader" --report-dir "$work/$name" "$@" >"$work/$name.txt" || true
}
run suite conformance-tests
[ -d ../shared/testscripts ] && run public ../shared/testscripts

echo "| Suite | Scripts | Tests | Pass | Fail | Skip |"
echo "|---|---|---|---|---|---|"
for name in suite public; do
  [ -d "$work/$name" ] || continue
  python3 - "$work/$name" "$name" <<'PY'
import json, os, sys
folder, name = sys.argv[1], sys.argv[2]
label = {"suite": "`conformance-tests/`", "public": "`../shared/testscripts`"}[name]
counts = {"scripts": 0, "tests": 0, "pass": 0, "fail": 0, "skip": 0}
for file in os.listdir(folder):
    report = json.load(open(os.path.join(folder, file)))
    counts["scripts"] += 1
    for test in report.get("test", []):
        counts["tests"] += 1
        results = [next(iter(a.values()))["result"] for a in test["action"]]
        asserts = [a["assert"]["result"] for a in test["action"] if "assert" in a]
        # As the engine judges a test: a skipped check is no evidence.
        if any(r in ("fail", "error") for r in results):
            counts["fail"] += 1
        elif all(r == "skip" for r in results) or (asserts and not any(r in ("pass", "warning") for r in asserts)):
            counts["skip"] += 1
        else:
            counts["pass"] += 1
print(f"| {label} | {counts['scripts']} | {counts['tests']} | {counts['pass']} | {counts['fail']} | {counts['skip']} |")
PY
done
echo
echo "reports and summaries: $work"
