#!/bin/bash
# The soak (`make ha-soak`): the shipped Patroni settings under a steady load for a long time,
# to show they cause no spurious fail-over. Three etcd members and three Patroni nodes on
# 127.0.0.1 (test/ha/lib.sh, no proxies), settle-gateway in front, and an HTTP client
# (gateway_client.py rate) sending HA_SOAK_RATE payments a second (2,000) as arrays of
# HA_SOAK_BATCH (50) for HA_SOAK_SECONDS (1,800). Meanwhile the leader is read every second.
# HA_SOAK_BURN=N adds N busy processes (niced 0, like a build) for the whole run: "the machine
# loaded" beyond what else runs on it.
#
# Passes only if: no fail-over (the same leader at every look, no promotion in any node's
# log, the same timeline at the end), every acknowledged payment in the database exactly once
# with the payment_id it was acknowledged with and nothing unacknowledged under the prefix, the
# client refused nothing, and every node is back whole at the end. Prints the rate reached, the
# longest time without any acknowledgement and the leader looks. Not in `make test` (it is a
# long load test); `HA_SOAK_SECONDS=180` is a short form.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/ha/lib.sh

SECONDS_WANTED=${HA_SOAK_SECONDS:-1800}
RATE=${HA_SOAK_RATE:-2000}
BATCH=${HA_SOAK_BATCH:-50}
BURN=${HA_SOAK_BURN:-0}
TMP=$(mktemp -d /tmp/settle-ha-soak.XXXXXX)
chmod 755 "$TMP"
BURNERS=""
GW_PID=""
( trap 'kill $s 2>/dev/null; exit 0' TERM
  sleep "$((SECONDS_WANTED + 600))" & s=$!; wait $s
  echo "time limit reached"; kill -TERM $$ ) 2>/dev/null &
WATCHDOG=$!
cleanup() {
    kill $WATCHDOG 2>/dev/null
    [ -n "$BURNERS" ] && kill $BURNERS 2>/dev/null
    [ -n "$GW_PID" ] && kill "$GW_PID" 2>/dev/null
    ha_cleanup; rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' TERM INT

ha_init "$TMP/ha" || exit 1
echo "== settings: $(grep -E '^ +(ttl|loop_wait|retry_timeout):' "$HA_DIR/node1/patroni.yml" | tr -s ' ' | tr '\n' ' ')"
ha_start || { echo "FAIL: cluster did not start"; exit 1; }
ha_setup_data || { echo "FAIL: reference data"; exit 1; }
HA_GW_POOL=${HA_GW_POOL:-4} ha_start_gateway "$TMP/gateway.log" || { echo "FAIL: settle-gateway"; exit 1; }
GW_PID=$HA_GW_PID
L0=$(ha_leader)
TL0=$(ha_psql "$L0" -c "SELECT timeline_id FROM pg_control_checkpoint()")
echo "== leader $L0 (timeline $TL0), synchronous standby $(ha_sync); $RATE payments/s as arrays of $BATCH for $SECONDS_WANTED s$([ "$BURN" -gt 0 ] && echo ", $BURN busy processes beside")"
for _ in $(seq 1 "$BURN"); do
    ( exec /usr/bin/python3 -c 'while True: pass' ) &
    BURNERS="$BURNERS $!"
done

start=$(ha_now)
since=$(date '+%Y-%m-%d %H:%M:%S')   # as Patroni's log lines begin (local time)
"$HA_PY" test/ha/gateway_client.py rate --url "$HA_GW_URL" --token "$HA_GW_TOKEN" --prefix soak \
    --acked "$TMP/acked.csv" --seconds "$SECONDS_WANTED" --rate "$RATE" --batch "$BATCH" \
    --workers "${HA_SOAK_WORKERS:-4}" >"$TMP/client.log" 2>&1 &
client=$!
# the leader, every second, as the REST API of each node says
looks=0 other=0 none=0
while kill -0 $client 2>/dev/null; do
    l=$(ha_leader) || l=none
    looks=$((looks + 1))
    if [ "$l" = none ]; then none=$((none + 1)); echo "$(ha_now) no leader" >> "$TMP/leader.log"
    elif [ "$l" != "$L0" ]; then other=$((other + 1)); echo "$(ha_now) $l" >> "$TMP/leader.log"; fi
    sleep 1
done
wait $client; crc=$?
[ -n "$BURNERS" ] && kill $BURNERS 2>/dev/null; BURNERS=""
sed 's/^/   client: /' "$TMP/client.log"

fail=0
report() { if [ "$1" = 0 ]; then echo "ok   $2"; else echo "FAIL $2"; fail=$((fail + 1)); fi; }
report "$crc" "the client got every payment acknowledged, nothing refused"
report "$([ $other = 0 ] && [ $none = 0 ]; echo $?)" "the leader stayed $L0 at all $looks looks (another leader $other, none $none)"
# Patroni's lines from the start of the load on: a promotion or a demotion is a fail-over
promos=$(cat "$HA_DIR"/node*/patroni.log | awk -v s="$since" 'substr($0, 1, 19) >= s' | grep -cE "promoted self to leader|Demoting self")
report "$([ "$promos" = 0 ]; echo $?)" "no node promoted or demoted itself during the soak ($promos such lines in the Patroni logs)"
L1=$(ha_leader)
TL1=$(ha_psql "$L1" -c "SELECT timeline_id FROM pg_control_checkpoint()")
report "$([ "$L1" = "$L0" ] && [ "$TL1" = "$TL0" ]; echo $?)" "same leader and timeline at the end ($L1, timeline $TL1)"
# every acknowledged payment exactly once, with its payment_id; nothing else under the prefix
res=$(ha_psql "$L1" -c "CREATE TEMP TABLE acked (k text, pid bigint, t float8)" \
    -c "\\copy acked FROM '$TMP/acked.csv' WITH (FORMAT csv)" \
    -c "SELECT (SELECT count(*) FROM acked) || ' ' ||
               (SELECT count(DISTINCT k) FROM acked) || ' ' ||
               (SELECT count(*) FROM acked a WHERE NOT EXISTS (SELECT 1 FROM settle.payment p WHERE p.idempotency_key = a.k)) || ' ' ||
               (SELECT count(*) FROM acked a JOIN settle.payment p ON p.idempotency_key = a.k WHERE p.payment_id <> a.pid) || ' ' ||
               (SELECT count(*) FROM settle.payment p WHERE p.idempotency_key LIKE 'soak-%'
                    AND NOT EXISTS (SELECT 1 FROM acked a WHERE a.k = p.idempotency_key)) || ' ' ||
               (SELECT count(*) - count(DISTINCT idempotency_key) FROM settle.payment WHERE idempotency_key LIKE 'soak-%')" 2>&1 | tail -1)
read -r n nd missing wrong extra dup <<< "$res"
report "$([ "${missing:-x}" = 0 ] && [ "$wrong" = 0 ] && [ "$extra" = 0 ] && [ "$dup" = 0 ] && [ "$n" -gt 0 ]; echo $?)" \
    "acknowledged $n ($nd keys), missing ${missing:-?}, other payment_id ${wrong:-?}, never acknowledged ${extra:-?}, twice ${dup:-?}"
ha_wait_healthy 60; report $? "every node whole at the end (leader, synchronous standby, replica streaming)"
echo "   soak of $(ha_secs "$start" "$(ha_now)") s; leader looks: $looks"
if [ "$fail" = 0 ]; then echo "PASS: soak, no fail-over"; else echo "FAIL: $fail checks"; fi
[ "$fail" = 0 ]
