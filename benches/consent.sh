#!/usr/bin/env bash
# The cost of consent enforcement on search, side by side in one run: one server, one data set in
# which 10 % of the patients have a Consent denying a practitioner, searched by that practitioner
# (governed by the consents) and by a system/ client without a user (exempt from them, so the
# same SQL without the consent narrowing), alternating, on a machine whose speed drifts.
#
#   benches/consent.sh sqlite|postgres [PATIENTS] [ROUNDS] [RUNS]
#
# Builds the release binary, fills a fresh database with `fhir-server generate --patients
# PATIENTS` (default 1250: about 50,000 resources), stores an opt-in Consent whose one exception
# withholds everything from Practitioner/bench for every tenth patient, makes a `user/*.rs` token
# with fhirUser Practitioner/bench and a `system/*.rs` token, and per round runs the queries of
# benches/search_latency.py (RUNS runs each) with each token. Prints the per-query p50 of the
# last round, then the medians of the overall p50 and governed / exempt. Needs Python 3 with
# requests.
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/postgres.sh
backend=${1:?usage: benches/consent.sh sqlite|postgres [PATIENTS] [ROUNDS] [RUNS]}
patients=${2:-1250}
rounds=${3:-3}
runs=${4:-20}
python3 -c 'import requests' 2>/dev/null || { echo "Python's requests is needed: pip install requests"; exit 1; }
bench_setup consent "$backend" 1GB

echo "== $backend: fhir-server generate --patients $patients"
FHIR_LOG=warn $bin generate --database-url "$url" --patients "$patients" --seed 1
kid=$($bin keys generate --out "$work/keys" | sed 's/.*(kid \(.*\))/\1/')
token() { $bin token --key "$work/keys/private-key.pem" --kid="$kid" --issuer https://bench.example \
  --audience "$base" --expires-in 86400 "$@"; }
governed=$(token --scope "user/*.rs" --fhir-user Practitioner/bench)
exempt=$(token --scope "system/*.rs")
writer=$(token --scope "system/*.cruds")

FHIR_LOG=warn $bin --listen "127.0.0.1:$port" --database-url "$url" \
  --auth-issuer https://bench.example --auth-jwks-file "$work/keys/jwks.json" >>"$work/server.log" 2>&1 &
server=$!
for _ in $(seq 300); do curl -sf "http://127.0.0.1:$port/health/ready" >/dev/null && break; sleep 0.1; done

FHIR_TOKEN=$writer python3 - "$base" <<'PY'
import os, sys, requests
base, session = sys.argv[1], requests.Session()
session.headers["Authorization"] = "Bearer " + os.environ["FHIR_TOKEN"]
session.headers["Content-Type"] = "application/fhir+json"
ids, url = [], f"{base}/Patient?_elements=id&_count=1000&_sort=_id"
while url:
    page = session.get(url).json()
    ids += [e["resource"]["id"] for e in page.get("entry", [])]
    url = next((l["url"] for l in page.get("link", []) if l["relation"] == "next"), None)
denying = ids[::10]
for pid in denying:
    consent = {
        "resourceType": "Consent", "id": f"deny-{pid}", "status": "active",
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": f"Patient/{pid}"}, "dateTime": "2024-01-01",
        "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}]},
        "provision": {"actor": [{"role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "PRCP"}]},
                                 "reference": {"reference": "Practitioner/bench"}}]},
    }
    r = session.put(f"{base}/Consent/deny-{pid}", json=consent)
    r.raise_for_status()
print(f"{len(denying)} of {len(ids)} patients deny Practitioner/bench")
PY
if [ "$backend" = postgres ]; then "$bindir/psql" -q -h 127.0.0.1 -p "$pgport" -U postgres -c "VACUUM ANALYZE" postgres; fi

measure() { # measure governed|exempt round
  local tok=$governed
  [ "$1" = exempt ] && tok=$exempt
  FHIR_TOKEN=$tok python3 benches/search_latency.py "$base" "$runs" 20 | tee "$work/search-$1-$2.txt" | tail -1
  awk -v mode="$1" '$NF == "overall" {print mode, $1}' "$work/search-$1-$2.txt" >>"$work/figures"
}
for round in $(seq "$rounds"); do
  if [ $((round % 2)) = 1 ]; then measure exempt "$round"; measure governed "$round"; else measure governed "$round"; measure exempt "$round"; fi
done
echo "== per-query search p50 (ms), last round:"
echo "  exempt  governed  query"
paste <(awk '{print $1}' "$work/search-exempt-$rounds.txt") <(awk '{print $1, $NF}' "$work/search-governed-$rounds.txt") | sed -n '3,20p'
python3 - "$work/figures" <<'PY'
import statistics, sys
figures = {}
for line in open(sys.argv[1]):
    mode, value = line.split()
    figures.setdefault(mode, []).append(float(value))
exempt, governed = statistics.median(figures["exempt"]), statistics.median(figures["governed"])
print(f"search p50 overall: exempt {exempt:,.1f} ms, governed by consents {governed:,.1f} ms, governed / exempt = {governed / exempt:.3f}")
PY
