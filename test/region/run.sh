#!/bin/bash
# A second region (`make region-test`, issue #28 item 3; runbook: docs/OPERATIONS.md,
# "A second region").  On 127.0.0.1:
#   region A: etcd and three Patroni nodes (test/ha/lib.sh: a leader and a synchronous
#             standby, Patroni's synchronous_mode_strict);
#   region B: its own etcd and one Patroni node, b1, a Patroni standby cluster
#             (bootstrap.dcs.standby_cluster) replicating from region A's leader across
#             test/region/wan.py, a link that delays every byte REGION_DELAY_MS (15) each
#             way: a 30 ms round trip.
# For each mode (REGION_MODES, "async sync"):
#   async: b1 replicates asynchronously (the default of a standby cluster);
#   sync:  region A's leader names b1 its synchronous standby (Patroni's synchronous_mode
#          turned off in A, synchronous_standby_names = 'b1' set with ALTER SYSTEM): every
#          commit waits for the other region.
# The commit latency and rate with that mode (pgbench, REGION_PGBENCH_T s, 8 clients,
# single-row submits against region A's leader); then under load (test/ha/client.py,
# REGION_WORKERS clients submitting with retries, REGION_LOAD_S s) the whole of region A is
# lost at once with the link (SIGKILL of the link, so that what was in flight on it never
# arrives, and of every Patroni, PostgreSQL and etcd of A) and region B is promoted (PATCH
# /config standby_cluster: null).
# Measured and printed: the replication lag before the loss, the time to promote (RTO:
# from the promotion's request to the first payment accepted in B; the decision to promote
# is the operator's and not counted), the acknowledged payments B does not have (RPO: how
# many, and when they were acknowledged, relative to the start of the loss).  Checked: B streams through the link before the loss; in
# sync mode nothing acknowledged is lost; B accepts payments and its worker settles them;
# every payment B has is there once; settle_verify() is clean on B.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/tap.sh
. test/ha/lib.sh

MODES=${REGION_MODES:-"async sync"}
DELAY=${REGION_DELAY_MS:-15}
WORKERS=${REGION_WORKERS:-8}
LOAD_S=${REGION_LOAD_S:-10}
PGBENCH_T=${REGION_PGBENCH_T:-10}
ROOT=$(mktemp -d /tmp/settle-region.XXXXXX)
chmod 755 "$ROOT"
[ "$(id -u)" = 0 ] && chown "$HA_RUNAS" "$ROOT"
RESULTS=$ROOT/results
: >"$RESULTS"
export HA_ETCD_MEMBERS=1

# The harness's state is per region: these swap it (lib.sh keeps it in globals).
save_region() {
    eval "R_$1=\"HA_DIR='$HA_DIR' HA_NODES='$HA_NODES' HA_ETCD_PORT1='$HA_ETCD_PORT1' HA_ETCD_PEER1='$HA_ETCD_PEER1' HA_ETCD_PORT='$HA_ETCD_PORT' HA_ETCD_TARGETS='$HA_ETCD_TARGETS' HA_HOSTS='$HA_HOSTS'\""
}
use_region() { eval "eval \"\$R_$1\""; }

cleanup() {
    [ -n "${LOAD_PID:-}" ] && kill -9 "$LOAD_PID" 2>/dev/null
    [ -n "${WAN_PID:-}" ] && kill -9 "$WAN_PID" 2>/dev/null
    for r in A B; do
        if [ -n "$(eval "echo \${R_$r:-}")" ]; then use_region $r; ha_cleanup; fi
    done
    rm -rf "$ROOT"
}
trap cleanup EXIT

rest_b() { curl -s -o /dev/null -m 1 -w '%{http_code}' "http://127.0.0.1:$(ha_rest_port b1)/$1" 2>/dev/null; }
psql_b() { psql -X -q -At -h 127.0.0.1 -p "$(ha_pg_port b1)" -U postgres -d postgres "$@"; }
stamp() { date +%s.%N; }
b_standby_leader() { [ "$(rest_b standby-leader)" = 200 ]; }
b_streaming() { [ "$(psql_b -c "SELECT status FROM pg_stat_wal_receiver" 2>/dev/null)" = streaming ]; }
b_settled() { [ "$(psql_b -c "SELECT status FROM settle.payment WHERE idempotency_key = '$1'" 2>/dev/null)" = settled ]; }
a_sync_is_b1() { [ "$(ha_psql "$1" -c "SELECT sync_state FROM pg_stat_replication WHERE application_name = 'b1'" 2>/dev/null)" = sync ]; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
put() { echo "$1=$2" >>"$RESULTS"; }

# every process of region A (Patroni, PostgreSQL and its children, etcd) SIGKILLed in one
# call: killed node by node, the last ones could elect a leader of their own first
kill_region_a() {
    local n pids="" pm
    for n in node1 node2 node3; do
        pids="$pids $(ha_patroni_pid "$n")"
        pm=$(ha_postmaster_pid "$n") && pids="$pids $pm $(pgrep -P "$pm" | tr '\n' ' ')"
    done
    pids="$pids $(ha_etcd_pid 1)"
    kill -9 $pids 2>/dev/null
    for _ in $(seq 1 100); do
        local alive=0 p
        for p in $pids; do pid_running "$p" && alive=1; done
        [ $alive = 0 ] && return 0
        sleep 0.1
    done
}

# region B's node: lib.sh's rendering, then a standby cluster of region A through the link
# (one node: Patroni's synchronous mode off there, or the promoted region could not commit)
make_region_b_config() {
    "$HA_PY" - "$HA_DIR/b1/patroni.yml" "$WAN_PORT" <<'PY'
import sys, yaml
path, port = sys.argv[1], int(sys.argv[2])
c = yaml.safe_load(open(path))
dcs = c["bootstrap"]["dcs"]
dcs["standby_cluster"] = {"host": "127.0.0.1", "port": port, "create_replica_methods": ["basebackup"]}
dcs["synchronous_mode"] = False
dcs["synchronous_mode_strict"] = False
c["bootstrap"].pop("post_bootstrap", None)
yaml.safe_dump(c, open(path, "w"), default_flow_style=False)
PY
}

run_mode() {
    local mode=$1 l t0 t1 tk lag
    echo "# --- mode $mode: region A (3 nodes), region B (b1) behind a ${DELAY} ms-each-way link"
    R_A=""; R_B=""
    # region A
    HA_NODES="node1 node2 node3"
    ha_init "$ROOT/$mode-a" || return 1
    save_region A
    ha_start || { ok 1 "region A ($mode) is up"; return 1; }
    ha_setup_data || { ok 1 "region A's reference data"; return 1; }
    l=$(ha_leader)
    # the link to region A's leader
    WAN_PORT=$(free_port 24700)
    (exec setpriv --reuid="$HA_RUNAS" --regid="$HA_RUNAS" --init-groups -- "$HA_PY" test/region/wan.py \
        --listen "$WAN_PORT" --delay "$DELAY" \
        --rest "$(ha_rest_port node1),$(ha_rest_port node2),$(ha_rest_port node3)" \
        --pg "$(ha_pg_port node1),$(ha_pg_port node2),$(ha_pg_port node3)") >"$ROOT/$mode-wan.log" 2>&1 &
    WAN_PID=$!
    disown "$WAN_PID"
    # region B
    HA_NODES="b1"
    HA_PORT_BASE=24500 ha_init "$ROOT/$mode-b" || return 1
    make_region_b_config || return 1
    [ "$(id -u)" = 0 ] && chown -R "$HA_RUNAS" "$HA_DIR"
    save_region B
    ha_start_etcd || return 1
    ha_start_node b1
    wait_for 180 b_standby_leader
    ok $? "region B ($mode): b1 is the standby leader of a standby cluster" || { tail -20 "$HA_DIR/b1/patroni.log"; return 1; }
    wait_for 60 b_streaming
    ok $? "b1 streams from region A's leader through the link" || return 1
    use_region A
    l=$(ha_leader)
    if [ "$mode" = sync ]; then
        # Patroni's synchronous mode manages synchronous_standby_names among its own members
        # only: off in region A, and b1 named by hand (postgresql.auto.conf wins over the
        # postgresql.conf Patroni writes)
        curl -s -m 5 -X PATCH -d '{"synchronous_mode": false, "synchronous_mode_strict": false}' \
            "http://127.0.0.1:$(ha_rest_port "$l")/config" >/dev/null
        sleep 3
        ha_psql "$l" -c "ALTER SYSTEM SET synchronous_standby_names = 'b1'" -c "SELECT pg_reload_conf()" >/dev/null
        wait_for 20 a_sync_is_b1 "$l"
        ok $? "region A's leader waits for b1 at every commit (sync_state sync)" || return 1
    fi
    # what the mode costs: the same single-row submits, 8 clients, against region A's leader
    cat >"$ROOT/submit.pgb" <<'SQL'
\set k random(1, 1000000000)
\set s random(0, 2)
SELECT settle_submit('rb_' || :client_id || '_' || :k, 1.00, 'USD', 'USD', (ARRAY['ha_a_usd','ha_b_usd','ha_c_usd'])[:s + 1], (ARRAY['ha_b_usd','ha_c_usd','ha_a_usd'])[:s + 1], (ARRAY['ha_b','ha_c','ha_a'])[:s + 1], 'rbk_' || :client_id || '_' || :k);
SQL
    "$PGBIN/pgbench" -n -h 127.0.0.1 -p "$(ha_pg_port "$l")" -U postgres -c 8 -j 2 -T "$PGBENCH_T" \
        -f "$ROOT/submit.pgb" postgres >"$ROOT/$mode-pgbench.log" 2>&1
    put "$mode.tps" "$(awk '/^tps/ { printf "%.0f", $3 }' "$ROOT/$mode-pgbench.log")"
    put "$mode.latency_ms" "$(awk '/latency average/ { print $4 }' "$ROOT/$mode-pgbench.log")"
    [ -n "$(grep '^tps' "$ROOT/$mode-pgbench.log")" ]
    ok $? "single-row submits with $mode: $(grep -m1 '^tps' "$ROOT/$mode-pgbench.log" | cut -d' ' -f1-3) tps, latency $(awk '/latency average/ { print $4 }' "$ROOT/$mode-pgbench.log") ms"
    # the load whose acknowledgements count
    rm -f "$ROOT/stop"
    "$HA_PY" test/ha/client.py load --hosts "$HA_HOSTS" --prefix "r$mode" --count 1000000 --max-seconds 600 \
        --acked "$ROOT/$mode-acked" --workers "$WORKERS" --pause 0 --stop-file "$ROOT/stop" >"$ROOT/$mode-client.log" 2>&1 &
    LOAD_PID=$!
    sleep "$LOAD_S"
    lag=$(ha_psql "$l" -c "SELECT coalesce(round(extract(epoch FROM replay_lag) * 1000, 1), 0) || ' ms replay, '
                                 || pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn) || ' bytes'
                             FROM pg_stat_replication WHERE application_name = 'b1'")
    put "$mode.lag" "$lag"
    echo "# b1's lag behind region A's leader under load: $lag"
    # region A lost, and the link with it (what was in flight on it never arrives): every
    # process at once
    tk=$(stamp)
    kill -9 "$WAN_PID" 2>/dev/null; WAN_PID=""
    kill_region_a
    touch "$ROOT/stop"
    sleep 1
    kill -9 "$LOAD_PID" 2>/dev/null; wait "$LOAD_PID" 2>/dev/null; LOAD_PID=""
    put "$mode.acked" "$(wc -l <"$ROOT/$mode-acked")"
    # region B promoted
    use_region B
    t0=$(stamp)
    curl -s -m 5 -X PATCH -d '{"standby_cluster": null}' "http://127.0.0.1:$(ha_rest_port b1)/config" >/dev/null
    t1=""
    for _ in $(seq 1 600); do
        if psql_b -c "SELECT payment_id FROM settle_submit('rb-first-$mode', 1.00, 'USD', 'USD', 'ha_a_usd', 'ha_b_usd', 'ha_b', 'rb-first-$mode')" >/dev/null 2>&1; then
            t1=$(stamp); break
        fi
        sleep 0.1
    done
    [ -n "$t1" ]
    ok $? "region B promoted: it accepts a payment" || { tail -20 "$HA_DIR/b1/patroni.log"; return 1; }
    put "$mode.rto_promote" "$(secs "$t0" "$t1")"
    echo "# RTO: $(secs "$t0" "$t1") s from the promotion's request to the first payment accepted"
    # RPO: acknowledged payments B does not have
    psql_b -c "SELECT idempotency_key FROM settle.payment WHERE idempotency_key LIKE 'r${mode}-%'" >"$ROOT/$mode-in-b"
    "$HA_PY" - "$ROOT/$mode-acked" "$ROOT/$mode-in-b" "$tk" >"$ROOT/$mode-rpo" <<'PY'
import json, sys
acked = [json.loads(l) for l in open(sys.argv[1])]
have = set(l.strip() for l in open(sys.argv[2]) if l.strip())
tk = float(sys.argv[3])
missing = [r for r in acked if r["key"] not in have]
# when the lost ones were acknowledged, from the start of the loss (the kills take a moment)
first = "%.3f" % (min(r["t"] for r in missing) - tk) if missing else "-"
last = "%.3f" % (max(r["t"] for r in missing) - tk) if missing else "-"
print(len(acked), len(missing), first, last)
PY
    read -r n_acked n_missing first last <"$ROOT/$mode-rpo"
    put "$mode.missing" "$n_missing"
    put "$mode.missing_acked_from_s" "$first"
    put "$mode.missing_acked_to_s" "$last"
    echo "# RPO: $n_missing of $n_acked acknowledged payments not in region B (acknowledged from $first to $last s after the loss began)"
    if [ "$mode" = sync ]; then
        is "$n_missing" 0 "sync: every acknowledged payment is in region B ($n_acked)"
    else
        [ "$n_acked" -gt 0 ]
        ok $? "async: $n_acked acknowledged, $n_missing of them lost with region A (measured, not a failure)"
    fi
    is "$(psql_b -c "SELECT count(*) FROM (SELECT idempotency_key FROM settle.payment GROUP BY 1 HAVING count(*) > 1) d")" 0 \
       "region B has every payment it has once"
    wait_for 60 b_settled "rb-first-$mode"
    ok $? "region B's worker settles the first payment accepted there"
    is "$(psql_b -c "SELECT count(*) FROM settle_verify()")" 0 "settle_verify() is clean on region B"
    use_region B; ha_cleanup; R_B=""
    use_region A; ha_cleanup; R_A=""
    return 0
}

for mode in $MODES; do
    run_mode "$mode" || echo "# mode $mode stopped early"
done
echo "# results:"; sed 's/^/#   /' "$RESULTS"
done_testing
