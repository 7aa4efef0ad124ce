#!/bin/bash
# High availability, long form (`make ha-test`): three etcd members and three Patroni nodes on
# 127.0.0.1, every node's cluster traffic through test/ha/netsplit.py's proxies, then under
# load one round after another (test/ha/lib.sh, ha_round, says what each does):
#   HA_CRASHES (3) crash            SIGKILL of the leader (Patroni and PostgreSQL)
#   HA_PG_KILLS (1) pg-kill         SIGKILL of the leader's PostgreSQL only
#   HA_PATRONI_KILLS (1) patroni-kill  SIGKILL of the leader's Patroni only; the orphaned
#                                   PostgreSQL is probed: it must acknowledge nothing (no new
#                                   payment, no replay, no payment status) and hand no batch to
#                                   the rail
#   HA_REPLICA_KILLS (1) replica-kill, HA_SYNC_KILLS (1) sync-kill   a replica / the
#                                   synchronous standby SIGKILLed under load
#   HA_ETCD_MEMBER_KILLS (1), HA_ETCD_LEADER_KILLS (1)   an etcd follower / the etcd Raft
#                                   leader SIGKILLed under load
#   HA_SWITCHOVERS (2) switchover
#   HA_SWITCHOVER_CRASHES (1) switchover-crash   the old leader killed during a switchover
#   HA_CRASH_STANDBY_LOSSES (1) crash-standby-loss  a crash, then the new leader's standby
#   HA_FREEZES (2) freeze           SIGSTOP of the leader until the new leader has written
#   HA_FREEZE_WAKES (2) freeze-wake SIGSTOP, woken after a random 1 to 12 s (before or after
#                                   the fail-over)
#   HA_PARTITIONS (2) partition     the leader's node cut both ways (held, then reset),
#                                   its own connections to its peers too
#   HA_ONEWAYS (2) oneway-out, oneway-in  only what the leader sends / receives is lost
#   HA_ETCD_CUTS (1) etcd-cut       the leader's connection to etcd only
# Disruptions come after a random 2 to 6 s of load (HA_SEED, printed, repeats a run's random
# choices). After every round: every acknowledged payment exactly once on the leader (also those
# of all earlier rounds), nothing settled twice, ledger invariants and settle_verify(), every
# node (old leader and replicas too) holding every acknowledged payment with the same payments,
# events, ledger, balances, batches and chain heads, the worker cycling on the leader, every
# node and etcd member back. Prints each round's time from the disruption to the first
# acknowledged new write (replays do not count) on the leader at the end of the round, and a
# summary. Exit status 0 only if every round passed.
#
# Settings (environment): the counts above, HA_SEED, TTL, LOOP_WAIT, RETRY_TIMEOUT, USE_SLOTS
# (Patroni, defaults in patroni.yml.in), HA_ETCD_MEMBERS (3), HA_LIMIT (1500 s).
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/ha/lib.sh

# HA_PROFILE=window (make ha-window): 20 crashes and 10 switchovers only, the client-side
# fail-over window's measurement (docs/CONSENSUS.md); other counts still apply when set
if [ "${HA_PROFILE:-}" = window ]; then
    : "${HA_CRASHES:=20}" "${HA_SWITCHOVERS:=10}" "${HA_LIMIT:=4200}"
    for v in PG_KILLS PATRONI_KILLS REPLICA_KILLS SYNC_KILLS ETCD_MEMBER_KILLS ETCD_LEADER_KILLS SWITCHOVER_CRASHES \
             CRASH_STANDBY_LOSSES FREEZES FREEZE_WAKES PARTITIONS ONEWAYS ETCD_CUTS; do
        eval ": \"\${HA_$v:=0}\""
    done
fi
CRASHES=${HA_CRASHES:-3}
PG_KILLS=${HA_PG_KILLS:-1}
PATRONI_KILLS=${HA_PATRONI_KILLS:-1}
REPLICA_KILLS=${HA_REPLICA_KILLS:-1}
SYNC_KILLS=${HA_SYNC_KILLS:-1}
ETCD_MEMBER_KILLS=${HA_ETCD_MEMBER_KILLS:-1}
ETCD_LEADER_KILLS=${HA_ETCD_LEADER_KILLS:-1}
SWITCHOVERS=${HA_SWITCHOVERS:-2}
SWITCHOVER_CRASHES=${HA_SWITCHOVER_CRASHES:-1}
CRASH_STANDBY_LOSSES=${HA_CRASH_STANDBY_LOSSES:-1}
FREEZES=${HA_FREEZES:-2}
FREEZE_WAKES=${HA_FREEZE_WAKES:-2}
PARTITIONS=${HA_PARTITIONS:-2}
ONEWAYS=${HA_ONEWAYS:-2}
ETCD_CUTS=${HA_ETCD_CUTS:-1}
HA_SEED=${HA_SEED:-$(date +%s)}
RANDOM=$HA_SEED
export HA_RANDOM=1
# the proxies carry every round's traffic, so that all kinds run on the same cluster
[ $((PARTITIONS + ONEWAYS + ETCD_CUTS)) -gt 0 ] && export HA_NETSPLIT=1

TMP=$(mktemp -d /tmp/settle-ha-long.XXXXXX)
chmod 755 "$TMP"
( trap 'kill $s 2>/dev/null; exit 0' TERM
  sleep "${HA_LIMIT:-1500}" & s=$!; wait $s
  echo "time limit reached"; kill -TERM $$ ) 2>/dev/null &
WATCHDOG=$!
GW_PID=""
cleanup() { kill $WATCHDOG 2>/dev/null; [ -n "$GW_PID" ] && kill "$GW_PID" 2>/dev/null; [ -n "${KEEP:-}" ] && { echo "kept $TMP"; return; }; ha_cleanup; rm -rf "$TMP"; }
trap cleanup EXIT
trap 'exit 1' TERM INT

ha_init "$TMP/ha" || exit 1
echo "== settings: $(grep -E '^ +(ttl|loop_wait|retry_timeout):' "$HA_DIR/node1/patroni.yml" | tr -s ' ' | tr '\n' ' ')seed $HA_SEED"
echo "== starting $HA_ETCD_MEMBERS etcd members and three Patroni nodes ($HA_HOSTS)"
t=$(date +%s)
ha_start || { echo "FAIL: cluster did not start"; exit 1; }
echo "   ready in $(( $(date +%s) - t )) s: leader $(ha_leader), synchronous standby $(ha_sync)"
ha_setup_data || { echo "FAIL: reference data"; exit 1; }
# settle-gateway in front of the three nodes (every node's client port, target_session_attrs
# read-write): each round's HTTP client submits through it, which gives the round's window as a
# client sees it
ha_start_gateway "$TMP/gateway.log" || { echo "FAIL: settle-gateway"; exit 1; }
GW_PID=$HA_GW_PID
export HA_GW_URL HA_GW_TOKEN
echo "   settle-gateway at $HA_GW_URL (pool of ${HA_GW_POOL:-2}) in front of the cluster"

fail=0
prefixes=""
acked_files=()
declare -A times pauses windows
kinds=""
round=0
# run_round LABEL ACTION: one round, its line, its times
run_round() {
    local label=$1 kind=$2 p
    round=$((round + 1))
    p=r$round
    ha_round "$kind" "$p"
    prefixes="${prefixes:+$prefixes,}$p"
    acked_files+=("$HA_DIR/acked-$p")
    if [ -f "$HA_DIR/acked-${p}g" ]; then
        prefixes="$prefixes,${p}g"
        acked_files+=("$HA_DIR/acked-${p}g")
    fi
    if [ -f "$HA_DIR/acked-${p}m" ]; then
        prefixes="$prefixes,${p}m"
        acked_files+=("$HA_DIR/acked-${p}m")
    fi
    local line nodes
    line=$(tail -1 "$HA_DIR/check-$p.log" 2>/dev/null)
    nodes=$(grep -c '^ok' "$HA_DIR/nodes-$p.log" 2>/dev/null)
    printf '%-4s round %2d %-18s %s -> %s: first acknowledged write after %s s (longest pause %s s); %s; nodes %s/9 ok; worker %s; whole again after %s s\n' \
        "$HA_STATUS" "$round" "$label" "$HA_OLD" "${HA_NEW:-none}" "${HA_SECS:-never}" "${HA_GAP:-?}" "${line:-no check}" "$nodes" \
        "$([ "$HA_WORKER_OK" = 0 ] && echo cycling || echo NOT-cycling)" "${HA_REJOIN_SECS:-never}"
    [ -n "$HA_GW_URL" ] && printf '     client window through the gateway: %s s%s\n' "${HA_WINDOW:-none}" \
        "$([ -n "$HA_WINDOW_ENDS" ] && echo " (from its last acknowledgement before the disruption, at ${HA_WINDOW_ENDS% *} s, to the first after it, at ${HA_WINDOW_ENDS#* } s)")"
    [ -n "$HA_NOTE" ] && echo "     $HA_NOTE"
    [ -n "$HA_CUT_USED" ] && printf '     cut (%s): old leader answered as primary last %s s after the cut, in recovery after %s s%s\n' \
        "$HA_CUT_USED" "${HA_DEMOTE_SECS:-never}" "${HA_RECOVERY_SECS:-never}" \
        "$([ -n "$HA_MINORITY" ] && echo "; acknowledged by it to its own client after the cut: $HA_MINORITY")"
    [ -f "$HA_DIR/probe-$p.log" ] && sed -n 's/^probe: /     probe of the old leader: /p' "$HA_DIR/probe-$p.log" 
    [ -n "$HA_ORPHAN_ACKS" ] && echo "     acknowledged to the load by the orphan after the new leader's first write: $HA_ORPHAN_ACKS"
    if [ "$HA_STATUS" != ok ]; then
        fail=$((fail + 1))
        echo "     failed: $HA_WHY"
        grep -v '^ok' "$HA_DIR/check-$p.log" 2>/dev/null | sed 's/^/     check: /'
        grep -v '^ok' "$HA_DIR/nodes-$p.log" 2>/dev/null | sed 's/^/     nodes: /'
        tail -6 "$HA_DIR/client-$p.log" | sed 's/^/     client: /'
        # the round's logs are kept, the cluster's directory is removed at the end
        local keep=/tmp/settle-ha-failed-$HA_SEED-$p
        mkdir -p "$keep" && cp "$HA_DIR"/*-"$p"* "$HA_DIR"/netsplit.log "$keep"/ 2>/dev/null
        for n in $HA_NODES; do cp "$HA_DIR/$n/patroni.log" "$keep/$n-patroni.log" 2>/dev/null; done
        echo "     logs kept in $keep"
    fi
    case " $kinds " in *" $label "*) ;; *) kinds="$kinds $label" ;; esac
    [ -n "$HA_WINDOW" ] && windows[$label]="${windows[$label]:-} $HA_WINDOW"
    # the figure of a round: with a new leader, the time to its first acknowledged new write;
    # with the same leader, the longest time without any acknowledgement
    if [ -n "$HA_NEW" ] && [ "$HA_NEW" != "$HA_OLD" ]; then
        [ -n "$HA_SECS" ] && times[$label]="${times[$label]:-} $HA_SECS"
    else
        [ -n "$HA_GAP" ] && pauses[$label]="${pauses[$label]:-} $HA_GAP"
    fi
}

rounds() { local n=$1 label=$2 kind=$3; for _ in $(seq 1 "$n"); do run_round "$label" "$kind"; done; }
rounds "$CRASHES" crash crash
rounds "$PG_KILLS" pg-kill pg-kill
rounds "$PATRONI_KILLS" patroni-kill patroni-kill
rounds "$REPLICA_KILLS" replica-kill replica-kill
rounds "$SYNC_KILLS" sync-kill sync-kill
rounds "$ETCD_MEMBER_KILLS" etcd-member-kill etcd-member-kill
rounds "$ETCD_LEADER_KILLS" etcd-leader-kill etcd-leader-kill
rounds "$SWITCHOVERS" switchover switchover
rounds "$SWITCHOVER_CRASHES" switchover-crash switchover-crash
rounds "$CRASH_STANDBY_LOSSES" crash-standby-loss crash-standby-loss
HA_RANDOM=0 rounds "$FREEZES" freeze freeze
rounds "$FREEZE_WAKES" freeze-wake freeze
for i in $(seq 1 "$PARTITIONS"); do
    HA_CUT_MODE=$([ $((i % 2)) = 1 ] && echo hold || echo reset)
    run_round "partition-$HA_CUT_MODE" partition
done
for i in $(seq 1 "$ONEWAYS"); do
    run_round "$([ $((i % 2)) = 1 ] && echo oneway-out || echo oneway-in)" "$([ $((i % 2)) = 1 ] && echo oneway-out || echo oneway-in)"
done
for i in $(seq 1 "$ETCD_CUTS"); do
    HA_CUT_MODE=$([ $((i % 2)) = 1 ] && echo hold || echo reset)
    run_round "etcd-cut-$HA_CUT_MODE" etcd-cut
done

echo "== every round's acknowledged payments, checked together on the final leader ($(ha_leader))"
"$HA_PY" test/ha/client.py check --hosts "$HA_HOSTS" --acked "${acked_files[@]}" --prefixes "$prefixes" | sed 's/^/   /'
[ "${PIPESTATUS[0]}" = 0 ] || fail=$((fail + 1))

summary() {
    echo "$2" | tr ' ' '\n' | grep . | sort -n | awk -v k="$1" '
        { v[NR] = $1; s += $1; all = all " " $1 }
        END { med = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
              printf "   %-18s runs %d  min %.3f  median %.3f  mean %.3f  max %.3f  (%s)\n", k, NR, v[1], med, s / NR, v[NR], substr(all, 2) }'
}
echo "== rounds with a new leader: from the disruption to the first acknowledged new write on it (s)"
for kind in $kinds; do [ -n "${times[$kind]:-}" ] && summary "$kind" "${times[$kind]}"; done
echo "== rounds that kept their leader: the longest time without an acknowledged write (s)"
for kind in $kinds; do [ -n "${pauses[$kind]:-}" ] && summary "$kind" "${pauses[$kind]}"; done
# the client's windows: percentiles by nearest rank (the smallest value with at least p% of the
# rounds at or below it: with 20 rounds P95 is the 19th, P99 the 20th, the largest)
pct() {
    echo "$2" | tr ' ' '\n' | grep . | sort -n | awk -v k="$1" '
        function rank(p) { r = int(p * NR / 100); if (r < p * NR / 100) r++; if (r < 1) r = 1; return v[r] }
        { v[NR] = $1 }
        END { p50 = rank(50); p95 = rank(95); p99 = rank(99)
              printf "   %-22s rounds %2d  P50 %.3f  P95 %.3f  P99 %.3f  max %.3f  P99 < 5 s: %s  median < 3 s: %s\n",
                  k, NR, p50, p95, p99, v[NR], (p99 < 5 ? "met" : "MISSED"), (p50 < 3 ? "met" : "MISSED") }'
}
echo "== the client's unavailability window through settle-gateway, by round kind (s)"
allfo=""
for kind in $kinds; do
    [ -n "${windows[$kind]:-}" ] || continue
    pct "$kind" "${windows[$kind]}"
    case $kind in crash|switchover) allfo="$allfo ${windows[$kind]}" ;; esac
done
[ -n "$allfo" ] && pct "crash + switchover" "$allfo"
if [ "$fail" = 0 ]; then echo "PASS: $round rounds"; else echo "FAIL: $fail of $round rounds (or the final check) failed"; fi
[ "$fail" = 0 ]
