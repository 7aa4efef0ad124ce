#!/bin/bash
# High availability, long form (`make ha-test`): one etcd + three Patroni nodes on 127.0.0.1,
# then under load, one after another: HA_CRASHES SIGKILLs of the leader, HA_SWITCHOVERS
# planned switchovers, HA_FREEZES frozen leaders (SIGSTOP: the node is cut off from
# everyone, then woken), HA_PARTITIONS network partitions (every connection of the leader's
# node cut by test/ha/netsplit.py, through which all cluster traffic flows, then healed;
# alternately held like lost packets and reset) and HA_ETCD_CUTS cuts of the leader's
# connection to etcd only (clients and replicas still reach it). After every round: every
# acknowledged payment exactly once (also those of all earlier rounds), nothing settled
# twice, ledger invariants and settle_verify(), the worker cycling on the new leader, the old
# leader back as a replica; after a partition also the old leader demoted while cut off and
# nothing acknowledged by it to a client left on its side.
# Prints each round's time from disruption to the first acknowledged write on the new
# leader, then a summary. Exit status 0 only if every round passed.
#
# Settings (environment): HA_CRASHES (5), HA_SWITCHOVERS (3), HA_FREEZES (2), HA_PARTITIONS (4),
# HA_ETCD_CUTS (2), TTL, LOOP_WAIT, RETRY_TIMEOUT, USE_SLOTS (Patroni, defaults in
# patroni.yml.in), HA_LIMIT (1500 s).
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/ha/lib.sh

CRASHES=${HA_CRASHES:-5}
SWITCHOVERS=${HA_SWITCHOVERS:-3}
FREEZES=${HA_FREEZES:-2}
PARTITIONS=${HA_PARTITIONS:-4}
ETCD_CUTS=${HA_ETCD_CUTS:-2}
# the proxies carry every round's traffic, so that all kinds run on the same cluster
[ $((PARTITIONS + ETCD_CUTS)) -gt 0 ] && export HA_NETSPLIT=1

TMP=$(mktemp -d /tmp/settle-ha-long.XXXXXX)
chmod 755 "$TMP"
( trap 'kill $s 2>/dev/null; exit 0' TERM
  sleep "${HA_LIMIT:-1500}" & s=$!; wait $s
  echo "time limit reached"; kill -TERM $$ ) 2>/dev/null &
WATCHDOG=$!
cleanup() { kill $WATCHDOG 2>/dev/null; [ -n "${KEEP:-}" ] && { echo "kept $TMP"; return; }; ha_cleanup; rm -rf "$TMP"; }
trap cleanup EXIT
trap 'exit 1' TERM INT

ha_init "$TMP/ha" || exit 1
echo "== settings: $(grep -E '^ +(ttl|loop_wait|retry_timeout):' "$HA_DIR/node1/patroni.yml" | tr -s ' ' | tr '\n' ' ')"
echo "== starting etcd (127.0.0.1:$HA_ETCD_PORT) and three Patroni nodes ($HA_HOSTS)"
t=$(date +%s)
ha_start || { echo "FAIL: cluster did not start"; exit 1; }
echo "   ready in $(( $(date +%s) - t )) s: leader $(ha_leader), synchronous standby $(ha_sync)"
ha_setup_data || { echo "FAIL: reference data"; exit 1; }

fail=0
prefixes=""
acked_files=()
declare -A times
round=0
run_round() {
    local kind=$1 p
    round=$((round + 1))
    p=r$round
    ha_round "$kind" "$p"
    prefixes="${prefixes:+$prefixes,}$p"
    acked_files+=("$HA_DIR/acked-$p")
    if [ -f "$HA_DIR/acked-${p}m" ]; then
        prefixes="$prefixes,${p}m"
        acked_files+=("$HA_DIR/acked-${p}m")
    fi
    local line status=ok
    line=$(tail -1 "$HA_DIR/check-$p.log" 2>/dev/null)
    [ "$HA_CLIENT_RC" = 0 ] && [ "$HA_CHECK_RC" = 0 ] && [ "$HA_WORKER_OK" = 0 ] && [ -n "$HA_SECS" ] \
        && [ -n "$HA_REJOIN_SECS" ] && [ -n "$HA_NEW" ] && [ "$HA_NEW" != "$HA_OLD" ] || status=FAIL
    [ "$kind" = partition ] && { [ -n "$HA_DEMOTE_SECS" ] && [ "$HA_MINORITY" = 0 ] || status=FAIL; }
    [ "$kind" = etcd-cut ] && { [ -n "$HA_DEMOTE_SECS" ] || status=FAIL; }
    printf '%-4s round %2d %-10s %s -> %s: first acknowledged write after %s s; %s; worker %s; old leader replica again after %s s\n' \
        "$status" "$round" "$kind" "$HA_OLD" "${HA_NEW:-none}" "${HA_SECS:-never}" "${line:-no check}" \
        "$([ "$HA_WORKER_OK" = 0 ] && echo cycling || echo NOT-cycling)" "${HA_REJOIN_SECS:-never}"
    [ "$kind" = partition ] && printf '     cut (%s): old leader answered as primary last %s s after the cut, in recovery after %s s (still cut off); acknowledged by it after the cut: %s\n' \
        "$HA_CUT_MODE" "${HA_DEMOTE_SECS:-never}" "${HA_RECOVERY_SECS:-never}" "${HA_MINORITY:-unknown}"
    [ "$kind" = etcd-cut ] && printf '     etcd cut (%s): old leader answered as primary last %s s after the cut, in recovery after %s s\n' \
        "$HA_CUT_MODE" "${HA_DEMOTE_SECS:-never}" "${HA_RECOVERY_SECS:-never}"
    if [ $status != ok ]; then
        fail=$((fail + 1))
        grep -v '^ok' "$HA_DIR/check-$p.log" 2>/dev/null | sed 's/^/     /'
        tail -3 "$HA_DIR/client-$p.log" | sed 's/^/     client: /'
    fi
    [ -n "$HA_SECS" ] && times[$kind]="${times[$kind]:-} $HA_SECS"
}

for _ in $(seq 1 "$CRASHES"); do run_round crash; done
for _ in $(seq 1 "$SWITCHOVERS"); do run_round switchover; done
for _ in $(seq 1 "$FREEZES"); do run_round freeze; done
for i in $(seq 1 "$PARTITIONS"); do
    HA_CUT_MODE=$([ $((i % 2)) = 1 ] && echo hold || echo reset)
    run_round partition
done
for i in $(seq 1 "$ETCD_CUTS"); do
    HA_CUT_MODE=$([ $((i % 2)) = 1 ] && echo hold || echo reset)
    run_round etcd-cut
done

echo "== every round's acknowledged payments, checked together on the final leader ($(ha_leader))"
"$HA_PY" test/ha/client.py check --hosts "$HA_HOSTS" --acked "${acked_files[@]}" --prefixes "$prefixes" | sed 's/^/   /'
[ "${PIPESTATUS[0]}" = 0 ] || fail=$((fail + 1))

echo "== times from disruption to the first acknowledged write on the new leader (s)"
for kind in crash switchover freeze partition etcd-cut; do
    [ -n "${times[$kind]:-}" ] || continue
    echo "${times[$kind]}" | tr ' ' '\n' | grep . | sort -n | awk -v k="$kind" '
        { v[NR] = $1; s += $1 }
        END { med = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
              printf "   %-10s runs %d  min %.3f  median %.3f  mean %.3f  max %.3f\n", k, NR, v[1], med, s / NR, v[NR] }'
done
if [ "$fail" = 0 ]; then echo "PASS: $round rounds"; else echo "FAIL: $fail of $round rounds (or the final check) failed"; fi
[ "$fail" = 0 ]
