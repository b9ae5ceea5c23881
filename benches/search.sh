#!/usr/bin/env bash
# Search latency at scale on one backend: a generated data set, then each query N times in a row.
#
#   benches/search.sh sqlite|postgres PATIENTS [N] [BUDGET]
#
# Builds the release binary, starts a fresh database (SQLite in a temp dir, or a private
# PostgreSQL cluster, as benches/load.sh does), fills it with `fhir-server generate --patients
# PATIENTS` (about 40 resources per patient: 25000 gives about a million), starts the server on it
# and runs benches/search_latency.py (Python 3 with `requests`), which prints p50/p99 per query
# over N runs (default 100) or BUDGET seconds (default 60), whichever ends first. The server's log
# goes to a file; the count of statements it logged as slow (over 1 s) is printed at the end.
# On SQLite the server gathers planner statistics itself (sampled `PRAGMA optimize` at start-up and
# as writes accumulate); PostgreSQL gets `VACUUM ANALYZE` before the run, as autovacuum would do
# shortly after a load anyway.
# SKIP=REGEX leaves matching queries out (see search_latency.py).
# Set KEEP=1 to keep the database directory (and print its path) for looking at query plans.
set -euo pipefail
cd "$(dirname "$0")/.."
backend=${1:?usage: benches/search.sh sqlite|postgres PATIENTS [N] [BUDGET]}
patients=${2:?usage: benches/search.sh sqlite|postgres PATIENTS [N] [BUDGET]}
runs=${3:-100}
budget=${4:-60}
python3 -c 'import requests' 2>/dev/null || { echo "Python's requests is needed: pip install requests"; exit 1; }
cargo build --release --quiet
work=$(mktemp -d /tmp/fhir-search.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ "$backend" = postgres ]; then runuser -u postgres -- "$bindir/pg_ctl" -D "$work/pg" -m fast stop >/dev/null 2>&1 || true; fi
  if [ "${KEEP:-0}" = 1 ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

case "$backend" in
  sqlite) url="sqlite:$work/fhir.sqlite" ;;
  postgres)
    bindir=$(pg_config --bindir 2>/dev/null || true)
    [ -x "$bindir/initdb" ] || bindir=$(dirname "$(ls /usr/lib/postgresql/*/bin/initdb | tail -1)")
    chown postgres "$work"
    pgport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    runuser -u postgres -- "$bindir/initdb" -D "$work/pg" -U postgres --auth=trust -E UTF8 --locale=C >/dev/null
    # Durable settings as in load.sh; a larger max_wal_size only spaces out checkpoints during the load.
    runuser -u postgres -- "$bindir/pg_ctl" -D "$work/pg" -l "$work/pg.log" -w \
      -o "-p $pgport -k $work -c listen_addresses=127.0.0.1 -c max_connections=200 -c shared_buffers=2GB -c max_wal_size=4GB" \
      start >/dev/null
    url="postgres://postgres@127.0.0.1:$pgport/postgres"
    ;;
  *) echo "unknown backend $backend"; exit 1 ;;
esac

echo "== $backend: fhir-server generate --patients $patients"
FHIR_LOG=warn ./target/release/fhir-server generate --database-url "$url" --patients "$patients" --seed 1
if [ "$backend" = postgres ]; then
  # Autovacuum would gather planner statistics on its own a little later; doing it now keeps the
  # figures from depending on when it happens to run.
  "$bindir/psql" -q -h 127.0.0.1 -p "$pgport" -U postgres -c "VACUUM ANALYZE" postgres
  "$bindir/psql" -At -h 127.0.0.1 -p "$pgport" -U postgres -c \
    "SELECT 'database size: ' || pg_size_pretty(pg_database_size('postgres'))" postgres
else
  echo "database size: $(du -sh "$work" | cut -f1)"
fi

start_server() {
  FHIR_LOG=warn ./target/release/fhir-server --listen "127.0.0.1:$port" --database-url "$url" >>"$work/server.log" 2>&1 &
  server=$!
  pids+=("$server")
  for _ in $(seq 300); do curl -sf "http://127.0.0.1:$port/health/ready" >/dev/null && break; sleep 0.1; done
}
latency() {
  echo "== $backend, $patients patients: search latency $1, one keep-alive connection"
  SKIP=$2 python3 benches/search_latency.py "http://127.0.0.1:$port/fhir/R4" "$runs" "$budget"
  echo "statements the server logged as slow (over 1 s) so far: $(grep -c 'slow statement' "$work/server.log" || true)"
}

start_server
if [ "$backend" = sqlite ]; then
  latency "with the statistics the server gathered itself (PRAGMA optimize)" "${SKIP:-}"
else
  latency "after VACUUM ANALYZE" "${SKIP:-}"
fi
