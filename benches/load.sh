#!/usr/bin/env bash
# Load workloads over HTTP for create, read and update of Patients, on one backend.
#
#   benches/load.sh sqlite|postgres [SECONDS]
#
# Builds the release binary, starts the server on a fresh database (SQLite in a temp dir, or a
# private PostgreSQL cluster with durable settings: fsync and synchronous_commit on), and runs wrk
# (Debian package `wrk`) on the same machine. Prints wrk's requests/s and latency percentiles.
# The workloads match ../shared/bench: read by id at 16 and 1 connections, create at 8, plus
# update (PUT over 1,000 ids) at 8.
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/postgres.sh
backend=${1:?usage: benches/load.sh sqlite|postgres [SECONDS]}
secs=${2:-10}
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install -y wrk"; exit 1; }
cargo build --release --quiet
work=$(mktemp -d /tmp/fhir-load.XXXXXX)
port=$(free_port)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  stop_postgres "$work"
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

case "$backend" in
  sqlite) url="sqlite:$work/fhir.sqlite" ;;
  postgres) start_postgres "$work" 512MB ;;
  *) echo "unknown backend $backend"; exit 1 ;;
esac

FHIR_LOG=warn ./target/release/fhir-server --listen "127.0.0.1:$port" --database-url "$url" &
pids+=($!)
base="http://127.0.0.1:$port/fhir/R4"
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/health/ready" >/dev/null && break; sleep 0.1; done

summary() { grep -E "Requests/sec|^ +(50|99)%|Non-2xx|Socket errors" | sed 's/^/    /'; }
# The HTTP ceiling on this machine right now: the same server answering GET /health (no store),
# so the figures below can be read as a share of what the HTTP stack itself reaches.
echo "== $backend: ceiling, GET /health, 16 connections"
wrk -t1 -c16 -d"${secs}s" --latency "http://127.0.0.1:$port/health" | summary
if [ "$backend" = postgres ]; then
  # The database's own ceiling for primary-key reads: pgbench's select-only run from a C client.
  echo "== postgres: ceiling, pgbench -S (primary-key SELECT), 16 connections"
  "$bindir/pgbench" -i -q -s 1 -h 127.0.0.1 -p "$pgport" -U postgres postgres >/dev/null 2>&1
  "$bindir/pgbench" -S -c 16 -j 1 -T "$secs" -h 127.0.0.1 -p "$pgport" -U postgres postgres 2>/dev/null \
    | grep -E "^tps|latency average" | sed 's/^/    /'
fi
echo "== $backend: read by id, 16 connections"
bash ../shared/bench/read_patient.sh "$base" "$secs" 16 | summary
echo "== $backend: read by id, 1 connection"
bash ../shared/bench/read_patient.sh "$base" "$secs" 1 | summary
echo "== $backend: create, 8 connections"
wrk -t1 -c8 -d"${secs}s" --latency -s ../shared/bench/post_patient.lua "$base/Patient" | summary
echo "== $backend: update (PUT over 1,000 ids), 8 connections"
wrk -t1 -c8 -d"${secs}s" --latency -s benches/put_patient.lua "$base" | summary
