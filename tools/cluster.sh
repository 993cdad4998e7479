#!/usr/bin/env bash
# `make cluster`: a throwaway PostgreSQL and two Sandgate nodes on it, to try several nodes by
# hand. Everything lives in one temporary directory and goes when you press Ctrl-C.
#
#   node A: http://127.0.0.1:7512    node B: http://127.0.0.1:7513
#   database: postgres://sandgate@127.0.0.1:$PG_PORT/postgres (trust authentication, 127.0.0.1 only)
#
# PostgreSQL refuses to run as root: as root, the database runs as the `postgres` user.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${SANDGATE_BIN:-./target/release/sandgate}
PG_PORT=${PG_PORT:-55432}
NODE_A=${NODE_A:-127.0.0.1:7512}
NODE_B=${NODE_B:-127.0.0.1:7513}

pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$pg_bin/initdb" ] || { echo "error: PostgreSQL is not installed (apt-get install postgresql)"; exit 1; }
[ -x "$BIN" ] || { echo "error: $BIN is missing (cargo build --release -p sandgate)"; exit 1; }

dir=$(mktemp -d /tmp/sandgate-cluster.XXXXXX)
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[ "$(id -u)" = 0 ] && chown postgres:postgres "$dir"

pids=()
cleanup() {
  echo; echo "stopping…"
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  as_pg "$pg_bin/pg_ctl" -D "$dir/pg" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT INT TERM

echo "== PostgreSQL on 127.0.0.1:$PG_PORT ($dir/pg)"
as_pg "$pg_bin/initdb" -D "$dir/pg" -U sandgate --auth=trust -E UTF8 >/dev/null
as_pg "$pg_bin/pg_ctl" -D "$dir/pg" -l "$dir/pg.log" -w start \
  -o "-p $PG_PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories=''" >/dev/null
export SANDGATE_DATABASE_URL="postgres://sandgate@127.0.0.1:$PG_PORT/postgres"

for node in A B; do
  listen=$([ "$node" = A ] && echo "$NODE_A" || echo "$NODE_B")
  echo "== node $node on http://$listen"
  "$BIN" serve --listen "$listen" --data-dir "$dir/node-$node" > >(sed -u "s/^/[$node] /") 2>&1 &
  pids+=($!)
done
echo "== Ctrl-C stops both nodes and the database"
wait
