# Sourced by the benchmark scripts: a free port, and a private PostgreSQL cluster in a work
# directory, started with the installed server binaries (durable settings: fsync and
# synchronous_commit on, as shipped).
#
#   free_port                       prints a free TCP port on 127.0.0.1
#   start_postgres WORK [BUFFERS]   initdb + start in WORK/pg (shared_buffers BUFFERS, default
#                                   512MB); sets bindir, pgport and url
#   stop_postgres WORK              stops it (quietly; for cleanup traps)
#   bench_setup NAME BACKEND [BUFFERS]
#                                   builds the release binary and sets bin, work (a temporary
#                                   directory, removed on exit with the server $server and the
#                                   cluster), port, base and url (SQLite in work, or PostgreSQL)

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

start_postgres() {
  local work=$1 buffers=${2:-512MB}
  bindir=$(pg_config --bindir 2>/dev/null || true)
  [ -x "$bindir/initdb" ] || bindir=$(dirname "$(ls /usr/lib/postgresql/*/bin/initdb | tail -1)")
  chown postgres "$work"
  pgport=$(free_port)
  runuser -u postgres -- "$bindir/initdb" -D "$work/pg" -U postgres --auth=trust -E UTF8 --locale=C >/dev/null
  runuser -u postgres -- "$bindir/pg_ctl" -D "$work/pg" -l "$work/pg.log" -w \
    -o "-p $pgport -k $work -c listen_addresses=127.0.0.1 -c max_connections=200 -c shared_buffers=$buffers" start >/dev/null
  url="postgres://postgres@127.0.0.1:$pgport/postgres"
}

stop_postgres() {
  [ -n "${bindir:-}" ] && [ -d "$1/pg" ] && runuser -u postgres -- "$bindir/pg_ctl" -D "$1/pg" -m fast stop >/dev/null 2>&1
  return 0
}

bench_setup() {
  local name=$1 backend=$2 buffers=${3:-512MB}
  cargo build --release --quiet
  bin=./target/release/fhir-server
  work=$(mktemp -d "/tmp/fhir-$name.XXXXXX")
  port=$(free_port)
  base="http://127.0.0.1:$port/fhir/R4"
  server=""
  trap bench_cleanup EXIT
  case "$backend" in
    sqlite) url="sqlite:$work/fhir.sqlite" ;;
    postgres) start_postgres "$work" "$buffers" ;;
    *) echo "unknown backend $backend"; exit 1 ;;
  esac
}

bench_cleanup() {
  [ -n "${server:-}" ] && kill "$server" 2>/dev/null || true
  wait 2>/dev/null || true
  stop_postgres "$work"
  rm -rf "$work"
}
