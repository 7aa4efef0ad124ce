#!/bin/bash
# make run: a throwaway PostgreSQL 15 with settle preloaded, the demo data,
# one settlement cycle, and what happened; then settle-gateway beside it, with
# the curl commands that submit the seed's payment over HTTP and read its
# status.  KEEP=1 leaves the server and the gateway running.
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

# The REST gateway (docs/GATEWAY.md) next to the database: a token for bank_a's client, the
# seed's accounts, and the curl commands that submit a payment and read its status.
GATEWAY=$PGBIN/settle-gateway
[ -x "$GATEWAY" ] || GATEWAY=src/gateway/settle-gateway
GPORT=$(free_port 18080)
TOKEN=$(cluster_psql "$PORT" -d postgres -At \
    -c "SELECT settle_create_account('acc_001', 'bank_a', 'USD', opening_balance => 250000)" \
    -c "SELECT settle_create_account('acc_002', 'bank_b', 'EUR')" \
    -c "CREATE ROLE bank_a_app LOGIN" -c "SELECT settle_map_role('bank_a_app', 'bank_a')" \
    -c "CREATE ROLE demo_gateway LOGIN IN ROLE settle_gateway" \
    -c "SELECT settle_issue_api_token('bank_a_demo', 'bank_a_app')" | tail -1)
"$GATEWAY" --port "$GPORT" --db "host=127.0.0.1 port=$PORT dbname=postgres user=demo_gateway" \
    >"$DIR/gateway.log" 2>&1 &
GW_PID=$!
if [ "${KEEP:-0}" != 1 ]; then
    trap 'kill $GW_PID 2>/dev/null; wait $GW_PID 2>/dev/null; cluster_stop "$DIR" fast; rm -rf "$DIR"' EXIT
fi
for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$GPORT/api/v1/health" && break; sleep 0.1; done
SUBMIT="curl -s -i -X POST http://127.0.0.1:$GPORT/api/v1/transactions \\
  -H 'Authorization: Bearer $TOKEN' -H 'Content-Type: application/json' \\
  -d '{\"transaction_id\": \"txn_001\", \"amount\": \"100000.00\", \"source_currency\": \"USD\",
       \"destination_currency\": \"EUR\", \"source_account\": \"acc_001\", \"destination_account\": \"acc_002\",
       \"counterparty_id\": \"bank_b\", \"idempotency_key\": \"req_001\"}'"
STATUS="curl -s http://127.0.0.1:$GPORT/api/v1/transactions/txn_001 -H 'Authorization: Bearer $TOKEN'"
echo
echo "== settle-gateway on http://127.0.0.1:$GPORT (docs/GATEWAY.md), a token for bank_a's client"
echo "\$ $SUBMIT"
eval "$SUBMIT"
echo
echo "\$ $STATUS"
eval "$STATUS"
echo
echo "\$ curl -s http://127.0.0.1:$GPORT/api/v1/health"
curl -s "http://127.0.0.1:$GPORT/api/v1/health"
echo
if [ "${KEEP:-0}" = 1 ]; then
    echo "server left running: psql -h 127.0.0.1 -p $PORT -U postgres"
    echo "gateway left running (pid $GW_PID): the curl commands above work as they are"
fi
