#!/bin/bash
# make run: a throwaway PostgreSQL 15 with settle preloaded, the demo data,
# one settlement cycle, and what happened.  KEEP=1 leaves the server running.
set -euo pipefail
cd "$(dirname "$0")/.."
. test/lib/cluster.sh

DIR=${SETTLE_DEMO_DIR:-/tmp/settle-demo}
cluster_stop "$DIR" immediate 2>/dev/null || true
rm -rf "$DIR"
PORT=$(free_port 55440)
cluster_init "$DIR" "$PORT" "settle.worker_enabled = off"
cluster_start "$DIR"
if [ "${KEEP:-0}" != 1 ]; then
    trap 'cluster_stop "$DIR" fast; rm -rf "$DIR"' EXIT
fi
echo "== PostgreSQL 15 on 127.0.0.1:$PORT, data in $DIR/data, settle preloaded"
cluster_psql "$PORT" -d postgres -f test/demo.sql
echo
tail -n 200 "$DIR/server.log" | grep -E "settle (cycle|worker)" || true
if [ "${KEEP:-0}" = 1 ]; then
    echo "server left running: psql -h 127.0.0.1 -p $PORT -U postgres"
fi
