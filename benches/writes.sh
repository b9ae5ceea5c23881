#!/usr/bin/env bash
# The write path, side by side in one run on a machine whose speed drifts: alternating rounds,
# each on a fresh database.
#
#   benches/writes.sh durability [ROUNDS] [SECONDS]
#       SQLite with --sqlite-durability full (the default) and normal: creates at 8 and at 1
#       connection (wrk, ../shared/bench/post_patient.lua, SECONDS each) and the ingest of
#       ../shared/data/synthea-p25 (benches/ingest.py, 1 client); plus pg_test_fsync's figure for
#       the disk of the run (one fdatasync'd 8 kB write, the cost a durable commit waits for).
#   benches/writes.sh batch sqlite|postgres [ROUNDS]
#       The resources of synthea-p25 loaded by id in Bundles of 500 PUTs (benches/batch.py, 1
#       client), as transactions and as batches, each on a fresh database.
#
# Prints every round, then the medians and the ratios. Needs wrk and Python 3 with requests.
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/postgres.sh
what=${1:?usage: benches/writes.sh durability [ROUNDS] [SECONDS] | batch sqlite|postgres [ROUNDS]}
shift
data=../shared/data/synthea-p25
[ -d "$data" ] || { echo "$data is needed"; exit 1; }
cargo build --release --quiet
bin=./target/release/fhir-server
work=$(mktemp -d /tmp/fhir-writes.XXXXXX)
server=""
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null
  wait 2>/dev/null || true
  stop_postgres "$work"
  rm -rf "$work"
}
trap cleanup EXIT
port=$(free_port)
base="http://127.0.0.1:$port/fhir/R4"

start() { # start DATABASE_URL [FLAGS…]
  local url=$1
  shift
  FHIR_LOG=warn $bin --listen "127.0.0.1:$port" --database-url "$url" "$@" >>"$work/server.log" 2>&1 &
  server=$!
  for _ in $(seq 300); do curl -sf "http://127.0.0.1:$port/health/ready" >/dev/null && break; sleep 0.1; done
}
stop() { kill "$server"; wait "$server" 2>/dev/null || true; server=""; }
rate() { awk '/Requests\/sec/ {print $2}'; }

medians() { # medians LABEL… (rows of "label value…" in $work/figures)
  python3 - "$work/figures" "$@" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    label, *values = line.split()
    rows.setdefault(label, []).append([float(v) for v in values])
labels = sys.argv[2:]
medians = {l: [statistics.median(col) for col in zip(*rows[l])] for l in labels}
for l in labels:
    print(l, " ".join(f"{v:,.0f}" for v in medians[l]))
first, second = labels
print(f"{second} / {first}:", " ".join(f"{b / a:.3f}" for a, b in zip(medians[first], medians[second])))
PY
}

case "$what" in
  durability)
    rounds=${1:-3}
    secs=${2:-10}
    bindir=$(pg_config --bindir 2>/dev/null || dirname "$(ls /usr/lib/postgresql/*/bin/initdb | tail -1)")
    echo "== pg_test_fsync on this disk (one 8 kB write, then fdatasync):"
    "$bindir/pg_test_fsync" -s 2 -f "$work/fsync.test" 2>/dev/null | grep -E "^ +fdatasync" | head -2 | sed 's/^ */    /'
    for round in $(seq "$rounds"); do
      order="full normal"
      [ $((round % 2)) = 0 ] && order="normal full"
      for mode in $order; do
        rm -f "$work"/fhir.sqlite*
        start "sqlite:$work/fhir.sqlite" --sqlite-durability "$mode"
        c8=$(wrk -t1 -c8 -d"${secs}s" -s ../shared/bench/post_patient.lua "$base/Patient" | rate)
        c1=$(wrk -t1 -c1 -d"${secs}s" -s ../shared/bench/post_patient.lua "$base/Patient" | rate)
        ingest=$(python3 benches/ingest.py "$base" 1 "$data" | awk '/resources\/s/ {for (i = 1; i < NF; i++) if ($(i + 1) ~ /^resources\/s/) print $i}' | tr -d ,)
        stop
        echo "round $round $mode: create 8 connections $c8 req/s, 1 connection $c1 req/s, synthea-p25 ingest $ingest resources/s"
        echo "$mode $c8 $c1 $ingest" >>"$work/figures"
      done
    done
    echo "== medians: create at 8, create at 1 (req/s), synthea-p25 ingest (resources/s)"
    medians normal full
    ;;
  batch)
    backend=${1:?usage: benches/writes.sh batch sqlite|postgres [ROUNDS]}
    rounds=${2:-3}
    [ "$backend" = postgres ] && start_postgres "$work" 512MB
    for round in $(seq "$rounds"); do
      order="transaction batch"
      [ $((round % 2)) = 0 ] && order="batch transaction"
      for kind in $order; do
        if [ "$backend" = postgres ]; then
          "$bindir/psql" -q -h 127.0.0.1 -p "$pgport" -U postgres -c "DROP DATABASE IF EXISTS bench" -c "CREATE DATABASE bench" postgres
          url="postgres://postgres@127.0.0.1:$pgport/bench"
        else
          rm -f "$work"/fhir.sqlite*
          url="sqlite:$work/fhir.sqlite"
        fi
        start "$url"
        line=$(python3 benches/batch.py "$base" "$kind" 1 500 "$data")
        stop
        echo "round $round: $line"
        echo "$kind $(echo "$line" | awk '{for (i = 1; i < NF; i++) if ($(i + 1) == "resources/s") print $i}' | tr -d ,)" >>"$work/figures"
      done
    done
    echo "== medians (resources/s)"
    medians transaction batch
    ;;
  *) echo "unknown workload $what"; exit 1 ;;
esac
