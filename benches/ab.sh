#!/usr/bin/env bash
# Two builds side by side, in one run: the cost of a change as a ratio, on a machine whose speed
# drifts between runs minutes apart.
#
#   benches/ab.sh OLD NEW sqlite|postgres [ROUNDS] [SECONDS]
#
# OLD and NEW are git revisions (built here, release, into a shared target directory) or paths of
# fhir-server binaries. Each round starts each build on a fresh database (PostgreSQL: a private
# cluster with fsync and synchronous_commit on) in turn — OLD, NEW, then NEW, OLD the next round —
# and measures read by id (wrk, 16 connections, SECONDS), create (wrk, 8 connections, SECONDS: the
# single-write path) and the ingest of ../shared/data/synthea-p25 (one client, benches/ingest.py:
# transactions, the bulk path), with the CPU seconds the server process spent on
# the ingest (steadier than the rate on a machine whose neighbours steal time; PostgreSQL's own
# processes are not counted). Prints every figure, then per figure the median of each build and
# NEW / OLD. Needs wrk, Python 3 with requests, and for PostgreSQL its server binaries.
set -euo pipefail
cd "$(dirname "$0")/.."
old=${1:?usage: benches/ab.sh OLD NEW sqlite|postgres [ROUNDS] [SECONDS]}
new=${2:?usage}
backend=${3:?usage}
rounds=${4:-3}
secs=${5:-8}
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install -y wrk"; exit 1; }
work=$(mktemp -d /tmp/fhir-ab.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -d "$work/pg" ] && runuser -u postgres -- "$bindir/pg_ctl" -D "$work/pg" -m fast stop >/dev/null 2>&1 || true
  wait 2>/dev/null || true
  git worktree prune 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# A binary for a revision (built in a worktree, sharing this checkout's target directory so the
# dependencies build once) or a path.
target="$PWD/target"
binary() {
  if [ -x "$1" ]; then echo "$1"; return; fi
  local rev tree
  rev=$(git rev-parse --short "$1")
  tree="$work/tree-$rev"
  git worktree add -q --detach "$tree" "$rev"
  (cd "$tree" && CARGO_TARGET_DIR="$target" cargo build --release --quiet) >&2
  cp "$target/release/fhir-server" "$work/fhir-server-$rev"
  git worktree remove --force "$tree"
  echo "$work/fhir-server-$rev"
}
old_bin=$(binary "$old")
new_bin=$(binary "$new")

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
if [ "$backend" = postgres ]; then
  bindir=$(pg_config --bindir 2>/dev/null || true)
  [ -x "$bindir/initdb" ] || bindir=$(dirname "$(ls /usr/lib/postgresql/*/bin/initdb | tail -1)")
  chown postgres "$work"
  pgport=$(free_port)
  runuser -u postgres -- "$bindir/initdb" -D "$work/pg" -U postgres --auth=trust -E UTF8 --locale=C >/dev/null
  runuser -u postgres -- "$bindir/pg_ctl" -D "$work/pg" -l "$work/pg.log" -w \
    -o "-p $pgport -k $work -c listen_addresses=127.0.0.1 -c max_connections=200 -c shared_buffers=512MB" start >/dev/null
fi

# Runs one build on a fresh database; appends "label read ingest" to $work/results.
measure() {
  local label=$1 bin=$2 n=$3 url port
  case "$backend" in
    sqlite) url="sqlite:$work/$label-$n.sqlite" ;;
    postgres)
      "$bindir/psql" -q -h 127.0.0.1 -p "$pgport" -U postgres -c "CREATE DATABASE ab_${label}_$n" >/dev/null
      url="postgres://postgres@127.0.0.1:$pgport/ab_${label}_$n" ;;
  esac
  port=$(free_port)
  FHIR_LOG=warn "$bin" --listen "127.0.0.1:$port" --database-url "$url" &
  local pid=$!
  pids+=("$pid")
  local base="http://127.0.0.1:$port/fhir/R4"
  for _ in $(seq 200); do curl -sf "http://127.0.0.1:$port/health/ready" >/dev/null && break; sleep 0.1; done
  local read create ingest before after
  read=$(bash ../shared/bench/read_patient.sh "$base" "$secs" 16 | awk '/Requests\/sec/ {print $2}')
  create=$(wrk -t1 -c8 -d"${secs}s" -s ../shared/bench/post_patient.lua "$base/Patient" | awk '/Requests\/sec/ {print $2}')
  before=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  ingest=$(python3 benches/ingest.py "$base" 1 ../shared/data/synthea-p25 | awk '/resources\/s/ {print $1}')
  after=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  kill "$pid"; wait "$pid" 2>/dev/null || true
  echo "$label $read $create $ingest $(python3 -c "print(($after - $before) / $(getconf CLK_TCK))")" | tee -a "$work/results"
}

echo "== $backend: OLD $old, NEW $new; read by id (req/s, 16 connections), create (req/s, 8 connections), synthea-p25 ingest (resources/s, 1 client), server CPU s of the ingest"
for n in $(seq "$rounds"); do
  if [ $((n % 2)) -eq 1 ]; then
    measure old "$old_bin" "$n"; measure new "$new_bin" "$n"
  else
    measure new "$new_bin" "$n"; measure old "$old_bin" "$n"
  fi
done
python3 - "$work/results" <<'PY'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
for column, name in ((1, "read by id, req/s"), (2, "create, req/s"), (3, "ingest, resources/s"), (4, "ingest, server CPU s")):
    old = statistics.median(float(r[column]) for r in rows if r[0] == "old")
    new = statistics.median(float(r[column]) for r in rows if r[0] == "new")
    print(f"{name}: OLD {old:,.1f}, NEW {new:,.1f}, NEW/OLD {new / old:.3f}")
PY
