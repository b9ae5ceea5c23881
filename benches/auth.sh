#!/usr/bin/env bash
# The cost of authorization, side by side in one run: the same data set served with authorization
# off and on (a patient/ token), alternating, on a machine whose speed drifts between runs.
#
#   benches/auth.sh sqlite|postgres [PATIENTS] [ROUNDS] [SECONDS] [RUNS]
#
# Builds the release binary, fills a fresh database with `fhir-server generate --patients
# PATIENTS` (default 1250: about 50,000 resources), makes a key pair and a `patient/*.rs` token for
# the patient with MRN-1 and a `system/*.rs` token (`fhir-server keys generate`, `fhir-server
# token`), then per round starts the server without authorization and with it (trusting that key;
# the order alternates between rounds) and measures:
#   - read by id of one of the patient's Observations (wrk, 16 connections, SECONDS), with the
#     patient/ token: the costliest read check (token, scope, and the compartment test);
#   - the search latency of benches/search_latency.py (RUNS runs per query) with the system/ token,
#     which matches exactly what the open server matches: the pure cost of the check;
#   - the same queries with the patient/ token, narrowed in SQL to one compartment (the budget's
#     figure; those over the whole population match fewer resources than without authorization).
# Prints every figure, then the medians of each and on / off. Needs wrk and Python 3 with requests.
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/postgres.sh
backend=${1:?usage: benches/auth.sh sqlite|postgres [PATIENTS] [ROUNDS] [SECONDS] [RUNS]}
patients=${2:-1250}
rounds=${3:-3}
secs=${4:-8}
runs=${5:-30}
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install -y wrk"; exit 1; }
python3 -c 'import requests' 2>/dev/null || { echo "Python's requests is needed: pip install requests"; exit 1; }
cargo build --release --quiet
bin=./target/release/fhir-server
work=$(mktemp -d /tmp/fhir-auth.XXXXXX)
port=$(free_port)
base="http://127.0.0.1:$port/fhir/R4"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  stop_postgres "$work"
  rm -rf "$work"
}
trap cleanup EXIT

case "$backend" in
  sqlite) url="sqlite:$work/fhir.sqlite" ;;
  postgres) start_postgres "$work" 1GB ;;
  *) echo "unknown backend $backend"; exit 1 ;;
esac

echo "== $backend: fhir-server generate --patients $patients"
FHIR_LOG=warn $bin generate --database-url "$url" --patients "$patients" --seed 1
if [ "$backend" = postgres ]; then "$bindir/psql" -q -h 127.0.0.1 -p "$pgport" -U postgres -c "VACUUM ANALYZE" postgres; fi
kid=$($bin keys generate --out "$work/keys" | sed 's/.*(kid \(.*\))/\1/')

start() { # start off|on
  local extra=()
  [ "$1" = on ] && extra=(--auth-issuer https://bench.example --auth-jwks-file "$work/keys/jwks.json")
  FHIR_LOG=warn $bin --listen "127.0.0.1:$port" --database-url "$url" "${extra[@]}" >>"$work/server.log" 2>&1 &
  server=$!
  pids+=("$server")
  for _ in $(seq 300); do curl -sf "http://127.0.0.1:$port/health/ready" >/dev/null && break; sleep 0.1; done
}
stop() { kill "$server"; wait "$server" 2>/dev/null || true; }

# The patient with MRN-1 and one of its Observations, read with authorization off.
start off
patient=$(curl -sf "$base/Patient?identifier=https://example.org/mrn%7CMRN-1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["entry"][0]["resource"]["id"])')
observation=$(curl -sf "$base/Observation?subject=Patient/$patient&_count=1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["entry"][0]["resource"]["id"])')
stop
token=$($bin token --key "$work/keys/private-key.pem" --kid="$kid" --issuer https://bench.example \
  --audience "$base" --scope "patient/*.rs" --patient "$patient" --expires-in 86400)
system_token=$($bin token --key "$work/keys/private-key.pem" --kid="$kid" --issuer https://bench.example \
  --audience "$base" --scope "system/*.rs" --expires-in 86400)
echo "patient $patient, Observation/$observation"

measure() { # measure off|on round
  start "$1"
  local header=()
  [ "$1" = on ] && header=(-H "Authorization: Bearer $token")
  local rps
  rps=$(wrk -t2 -c16 -d"${secs}s" "${header[@]}" "$base/Observation/$observation" | awk '/Requests\/sec/ {print $2}')
  echo "$1 round $2: read by id $rps req/s"
  echo "$1 read $rps" >>"$work/figures"
  local tokenvar=""
  [ "$1" = on ] && tokenvar=$system_token
  FHIR_TOKEN=$tokenvar python3 benches/search_latency.py "$base" "$runs" 20 | tee "$work/search-$1-$2.txt" | tail -1
  awk -v mode="$1" '$NF == "overall" {print mode, "search", $1}' "$work/search-$1-$2.txt" >>"$work/figures"
  if [ "$1" = on ]; then
    FHIR_TOKEN=$token python3 benches/search_latency.py "$base" "$runs" 20 >"$work/search-patient-$2.txt"
    awk '$NF == "overall" {print "patient", "search", $1}' "$work/search-patient-$2.txt" >>"$work/figures"
  fi
  stop
}

for round in $(seq "$rounds"); do
  if [ $((round % 2)) = 1 ]; then measure off "$round"; measure on "$round"; else measure on "$round"; measure off "$round"; fi
done
echo "== per-query search p50 (ms), last round:"
echo "  off   system/  patient/  query"
paste <(awk '{print $1}' "$work/search-off-$rounds.txt") <(awk '{print $1}' "$work/search-on-$rounds.txt") \
  <(awk '{print $1, $NF}' "$work/search-patient-$rounds.txt") | sed -n '3,20p'
python3 - "$work/figures" <<'PY'
import statistics, sys
figures = {}
for line in open(sys.argv[1]):
    mode, what, value = line.split()
    figures.setdefault((what, mode), []).append(float(value))
for what, unit in (("read", "req/s"), ("search", "ms p50 overall")):
    off, on = statistics.median(figures[(what, "off")]), statistics.median(figures[(what, "on")])
    print(f"{what}: off {off:,.1f} {unit}, on {on:,.1f} {unit}, on / off = {on / off:.3f}")
off, patient = statistics.median(figures[("search", "off")]), statistics.median(figures[("search", "patient")])
print(f"search with the patient/ token: {patient:,.1f} ms p50 overall, patient / off = {patient / off:.3f}")
PY
