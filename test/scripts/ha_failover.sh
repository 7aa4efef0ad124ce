#!/bin/bash
# High availability, short form (the long form is `make ha-test`, test/ha/run.sh):
# three etcd members and three Patroni-managed PostgreSQL 15 nodes on 127.0.0.1, settle preloaded and
# created at bootstrap, synchronous mode strict. A load client submits payments with
# idempotency keys through the leader; the leader is killed with SIGKILL (Patroni and every
# postgres process); the client reconnects to the new leader and retries what was not
# acknowledged with the same keys. Then: every acknowledged payment exactly once, nothing
# settled twice, ledger invariants, every node (the rewound old leader too) holding the same
# payments, events, ledger and chain heads, the worker cycling on the new leader, the old
# leader back as a replica. Meanwhile an HTTP client submits through settle-gateway, which
# lists all three nodes and follows the primary: it retries a 503 or a lost connection with the
# same key, and every payment it got acknowledged is in the new leader's database once.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/tap.sh
. test/ha/lib.sh

for bin in patroni etcd curl setpriv; do
    command -v $bin >/dev/null || { echo "not ok 1 - $bin is installed (test/deps.sh)"; echo "1..1"; exit 1; }
done
"$HA_PY" -c 'import psycopg2' 2>/dev/null || { echo "not ok 1 - python3-psycopg2 is installed (test/deps.sh)"; echo "1..1"; exit 1; }

TMP=$(mktemp -d /tmp/settle-ha.XXXXXX)
chmod 755 "$TMP"
# the whole test is bounded: a watchdog ends it (and the trap cleans up) after 170 s
( trap 'kill $s 2>/dev/null; exit 0' TERM
  sleep "${HA_SHORT_LIMIT:-170}" & s=$!; wait $s
  echo "# time limit reached"; kill -TERM $$ ) 2>/dev/null &
WATCHDOG=$!
GW_PID=""
cleanup() { kill $WATCHDOG 2>/dev/null; [ -n "$GW_PID" ] && kill "$GW_PID" 2>/dev/null; ha_cleanup; rm -rf "$TMP"; }
trap cleanup EXIT
trap 'exit 1' TERM INT

ha_init "$TMP/ha"
ok $? "three node configs rendered from test/ha/patroni.yml.in"
t=$(date +%s)
ha_start
ok $? "etcd and three Patroni nodes: a leader, a synchronous standby, a replica ($(( $(date +%s) - t )) s)" \
    || { done_testing; exit 1; }
L=$(ha_leader)
is "$(ha_psql "$L" -c "SHOW synchronous_standby_names" | grep -c .)" "1" "the leader has a synchronous standby name"
is "$(ha_psql "$L" -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'settle worker'")" "1" \
   "the settle worker runs on the leader"
ha_setup_data
ok $? "reference data created on the leader"

# settle-gateway in front of the three nodes, a client token for ha_a; its HTTP client stops
# with the round's own load (the round's stop file), before the round waits for the queue to drain
GATEWAY=$PGBIN/settle-gateway
[ -x "$GATEWAY" ] || GATEWAY=src/gateway/settle-gateway
GW_PORT=$(free_port 18700)
GW_DB="host=127.0.0.1,127.0.0.1,127.0.0.1 port=$(echo "$HA_HOSTS" | sed 's/127\.0\.0\.1://g') user=ha_gateway dbname=postgres"
GW_TOKEN=$(ha_psql "$L" -c "CREATE ROLE ha_gateway LOGIN IN ROLE settle_gateway" -c "CREATE ROLE ha_a_app LOGIN" \
    -c "SELECT settle_map_role('ha_a_app', 'ha_a')" -c "SELECT settle_issue_api_token('ha_a_gw', 'ha_a_app')" | tail -1)
"$GATEWAY" --port "$GW_PORT" --db "$GW_DB" --pool-size 2 >"$TMP/gateway.log" 2>&1 &
GW_PID=$!
wait_for 10 curl -sf -o /dev/null "http://127.0.0.1:$GW_PORT/api/v1/health"
ok $? "settle-gateway in front of the cluster: healthy (primary, worker, synchronous standby)"
"$HA_PY" test/ha/gateway_client.py load --url "http://127.0.0.1:$GW_PORT" --token "$GW_TOKEN" --prefix gw \
    --acked "$TMP/gw-acked" --stop-file "$HA_DIR/stop-short" --workers 2 --pause 0.02 --max-seconds 60 \
    >"$TMP/gw-client.log" 2>&1 &
GW_CLIENT=$!

HA_LOAD_BEFORE=4 HA_LOAD_AFTER=2 HA_REJOIN_TIMEOUT=60 ha_round crash short
ok $? "load, SIGKILL of the leader ($HA_OLD), reconnect and retry: the round passed" || echo "#   failed: $HA_WHY"
is "$HA_CLIENT_RC" 0 "the client got every submit acknowledged in the end"
[ -n "$HA_SECS" ] && [ "$HA_NEW" != "$HA_OLD" ]
ok $? "a new leader ($HA_NEW) acknowledged a write ${HA_SECS:-never} s after the kill"
sed 's/^/# /' "$HA_DIR/check-short.log"
is "$HA_CHECK_RC" 0 "acknowledged payments exactly once, none settled twice, ledger invariants hold"
sed 's/^/# /' "$HA_DIR/nodes-short.log"
is "$HA_NODES_RC" 0 "every node, the rewound old leader too, holds every acknowledged payment; all have the same payments, events, ledger, balances, batches and chain heads"
is "$HA_WORKER_OK" 0 "the worker cycles on the new leader by itself and drains the queue"
grep -q "settle worker: server promoted, cycling" "$HA_DIR/$HA_NEW/patroni.log"
ok $? "the new leader's worker logged its take-over"
[ -n "$HA_REJOIN_SECS" ]
ok $? "the old leader rejoined as a replica (${HA_REJOIN_SECS:-not} s after restart)"
wait $GW_CLIENT
is "$?" 0 "the HTTP client got every payment acknowledged through the gateway, retrying across the fail-over"
sed 's/^/# gateway client: /' "$TMP/gw-client.log"
grep -q '"retries": [1-9]' "$TMP/gw-client.log"
ok $? "the gateway answered 503 (or lost the connection) during the fail-over, and the retries went through"
"$HA_PY" test/ha/gateway_client.py check --dsn "host=127.0.0.1 port=$(ha_pg_port "$(ha_leader)") user=postgres dbname=postgres" \
    --acked "$TMP/gw-acked" --prefix gw >"$TMP/gw-check.log" 2>&1
is "$?" 0 "every payment acknowledged over HTTP is on the new leader once, with its payment_id, none twice"
sed 's/^/# /' "$TMP/gw-check.log"
curl -s "http://127.0.0.1:$GW_PORT/api/v1/health" | grep -q '"role":"primary"'
ok $? "the gateway follows the new primary (health)"
echo "# crash fail-over: ${HA_SECS:-none} s from SIGKILL to the first acknowledged write on the new leader"
done_testing
