#!/usr/bin/env bash
# The cost of the audit trail, side by side in one run: read by id of one Patient with
# `--audit denials` (the default: a plain read records nothing) and `--audit all` (every read
# is recorded: queued, appended to the pending records in batches, and made an AuditEvent when the
# server is idle or before AuditEvents are read), alternating rounds on a machine whose speed drifts.
# After each `all` round it times the search that stores the records still pending.
#
#   benches/audit.sh sqlite|postgres [ROUNDS] [SECONDS] [CONNECTIONS]
#
# Prints each round's requests/s, the medians and all / denials, and how many AuditEvents were
# stored and shed (a full queue sheds records and says so in the log). Needs wrk.
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/postgres.sh
backend=${1:?usage: benches/audit.sh sqlite|postgres [ROUNDS] [SECONDS]}
rounds=${2:-3}
secs=${3:-8}
connections=${4:-16}
threads=$((connections > 1 ? 2 : 1))
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install -y wrk"; exit 1; }
bench_setup audit "$backend" 512MB
start() { # start denials|all
  FHIR_LOG=warn $bin --listen "127.0.0.1:$port" --database-url "$url" --audit "$1" >>"$work/server-$1.log" 2>&1 &
  server=$!
  for _ in $(seq 300); do curl -sf "http://127.0.0.1:$port/health/ready" >/dev/null && break; sleep 0.1; done
}
stop() { kill "$server"; wait "$server" 2>/dev/null || true; server=""; }
count() { curl -sf "$base/AuditEvent?_summary=count" | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])'; }

start denials
curl -sf -X PUT "$base/Patient/bench" -H 'Content-Type: application/fhir+json' \
  -d '{"resourceType":"Patient","id":"bench","name":[{"family":"Bench"}]}' >/dev/null
stop
for round in $(seq "$rounds"); do
  for mode in $([ $((round % 2)) = 1 ] && echo "denials all" || echo "all denials"); do
    start "$mode"
    rps=$(wrk -t"$threads" -c"$connections" -d"${secs}s" "$base/Patient/bench" | awk '/Requests\/sec/ {print $2}')
    echo "$mode round $round: read by id $rps req/s"
    echo "$mode $rps" >>"$work/figures"
    if [ "$mode" = all ]; then
      # The records wait as pending rows; a search of AuditEvent first stores every one as an
      # AuditEvent. Timed here (the deferred cost), and done before the next round starts.
      sleep 1
      t0=$(date +%s.%N); events=$(count); t1=$(date +%s.%N)
      echo "    then $events AuditEvents searchable after $(python3 -c "print(f'{$t1 - $t0:.1f}')") s of indexing"
    fi
    stop
  done
done
start denials
shed=$( (grep -o 'shed=[0-9]*' "$work/server-all.log" || true) | awk -F= '$2 > 1 {s+=$2} END {print s+0}')
echo "AuditEvents stored: $(count); shed: about $shed (the server's count at each stop)"
stop
python3 - "$work/figures" <<'PY'
import statistics, sys
figures = {}
for line in open(sys.argv[1]):
    mode, value = line.split()
    figures.setdefault(mode, []).append(float(value))
off, on = statistics.median(figures["denials"]), statistics.median(figures["all"])
print(f"read by id: --audit denials {off:,.0f} req/s, --audit all {on:,.0f} req/s, all / denials = {on / off:.3f}")
PY
