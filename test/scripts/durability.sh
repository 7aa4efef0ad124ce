#!/bin/bash
# Nothing is reported before it is durable, and an orphan refuses at once
# (docs/CONSENSUS.md, "Answers that wait" and "An orphan refuses at once"):
# a primary with one synchronous standby, and settle-gateway in front of it.
#
# 1. The standby is stopped: the primary is an orphan.  Within a second, with
#    SE170 and nothing written: settle_submit, settle_submit_bulk, a gateway
#    POST (503, Retry-After), the rail calls, settle_run_cycle; the worker
#    runs no cycle (no backend waits in SyncRep holding the cycle lock);
#    settle_sync_standby_state(), settle_gateway_health(), the gateway's
#    health and the metric settle_sync_standby_missing say why.  A payment
#    committed there only (refusals turned off) is not replayed, nor its
#    status given.  synchronous_commit = local is the session's choice.
# 2. The standby is restarted: intake, the worker's cycles, replays, health
#    resume by themselves.
# 3. The standby's WAL receiver is frozen (SIGSTOP: its walsender still
#    streams, as in a network cut until wal_sender_timeout): a commit waits,
#    its wait is cancelled and it stays local; then
#    - a retry with the same key (settle_submit, settle_submit_bulk) and a
#      status lookup do not answer until the standby has the payment: they
#      wait, and a cancelled wait is SE140, never replay = true;
#    - when the standby thaws, the waiting retry answers replay = true;
#    - a cycle that committed only locally hands nothing to the rail
#      (settle_rail_fetch waits, then SE140);
#    - settle_durable_lsn() (what a CDC consumer may act on) stays below a
#      commit the standby does not have.
# 4. The frozen standby is killed: the primary is an orphan with commits of
#    its own; their retries are refused at once (SE170).
# 5. The primary dies and the standby is promoted: every acknowledged payment
#    is there, nothing unacknowledged is; without synchronous standbys, no
#    refusal ever.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/scratch.sh
. test/lib/tap.sh

PY=/usr/bin/python3
GATEWAY=${GATEWAY:-$PGBIN/settle-gateway}
[ -x "$GATEWAY" ] || GATEWAY=src/gateway/settle-gateway
command -v curl >/dev/null && [ -x "$GATEWAY" ] || { echo "Bail out! curl or $GATEWAY is missing"; exit 1; }

scratch durability
scratch_ports P1 55480 P2 55481 G 18680
GW_PID=
scratch_on_exit '[ -n "$GW_PID" ] && kill "$GW_PID" 2>/dev/null; jobs -p | xargs -r kill 2>/dev/null'
scratch_cluster "$TMP/primary" "$TMP/standby"

# the walsender of a frozen standby must outlive part 3 (a network cut ends it after wal_sender_timeout)
cluster_init "$TMP/primary" "$P1" "settle.worker_enabled = off" "settle.two_phase = on" \
    "settle.cycle_interval = 200ms" "wal_sender_timeout = 10min" \
    "wal_level = replica" "max_wal_senders = 4" "hot_standby = on" \
    "synchronous_standby_names = 'standby1'" "synchronous_commit = on" || exit 1
echo "host replication postgres 127.0.0.1/32 trust" | as_pg tee -a "$TMP/primary/data/pg_hba.conf" >/dev/null
cluster_start "$TMP/primary" || exit 1
mkdir -p "$TMP/standby" && chown postgres "$TMP/standby"
as_pg "$PGBIN/pg_basebackup" -h 127.0.0.1 -p "$P1" -U postgres -D "$TMP/standby/data" -X stream -c fast \
    || { echo "not ok 1 - base backup"; exit 1; }
{
    echo "port = $P2"
    echo "unix_socket_directories = '$TMP/standby'"
    echo "primary_conninfo = 'host=127.0.0.1 port=$P1 user=postgres application_name=standby1'"
    echo "wal_retrieve_retry_interval = 200ms"
    # once promoted it runs alone: no synchronous standby of its own
    echo "synchronous_standby_names = ''"
} | as_pg tee -a "$TMP/standby/data/postgresql.conf" >/dev/null
as_pg touch "$TMP/standby/data/standby.signal"
cluster_start "$TMP/standby" || exit 1

# Every statement here is bounded by the client (issue #34): statement_timeout
# does not end a commit's wait for synchronous replication, so a commit, or
# settle's durable wait, that never returns would hang the test.  q and q2:
# 60 s; q_timed and q_clock, whose answers are checked: 15 s, printed as "no
# answer in 15 s", and the waits left behind cancelled.
q_on() { local port=$1; shift; timeout -k 5 60 psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres -d postgres -At "$@"; }
q() { q_on "$P1" -c "$1"; }
q2() { q_on "$P2" -c "$1"; }
# one statement with a 2 s timeout; prints its rows, or the SQLSTATE of its error
q_timed() {
    local out
    out=$(PGOPTIONS="-c statement_timeout=2s" timeout -k 5 15 psql -X -q -At -h 127.0.0.1 -p "$P1" -U postgres -d postgres \
        -c '\set VERBOSITY sqlstate' -c "$1" 2>&1)
    if [ $? -ge 124 ]; then
        echo "no answer in 15 s"
        cancel_waiting
        return 1
    fi
    echo "$out" | grep -v '^WARNING' | sed 's/^ERROR: *//'
}
# one statement (5 s timeout as a safety net): "SQLSTATE-or-rows ms", ms measured by the server
q_clock() {
    local out
    out=$(PGOPTIONS="-c statement_timeout=5s" timeout -k 5 15 psql -X -q -At -h 127.0.0.1 -p "$P1" -U postgres -d postgres \
        -v VERBOSITY=sqlstate 2>&1 <<EOF
SELECT clock_timestamp() AS t0 \gset
$1;
SELECT round(extract(epoch FROM clock_timestamp() - :'t0') * 1000);
EOF
)
    if [ $? -ge 124 ]; then
        echo "no answer in 15 s"
        cancel_waiting
        return 1
    fi
    echo "$out" | grep -v '^WARNING' | sed 's/^ERROR: *//' | tr '\n' ' ' | sed 's/ $//'
}
# "SE170 123" -> within a second with that SQLSTATE?
refused_fast() { local got=$1 code=$2; [ "${got% *}" = "$code" ] && [ "${got##* }" -lt 1000 ]; }
sync_streaming() { [ "$(q "SELECT count(*) FROM pg_stat_replication WHERE application_name = 'standby1' AND sync_state = 'sync' AND state = 'streaming'")" = 1 ]; }
refusing() { [ "$(q "SELECT refusing FROM settle_sync_standby_state()")" = t ]; }
not_refusing() { [ "$(q "SELECT refusing FROM settle_sync_standby_state()")" = f ]; }
waiting_pids() { q "SELECT pid FROM pg_stat_activity WHERE wait_event = 'SyncRep' AND pid <> pg_backend_pid()"; }
some_waiting() { [ -n "$(waiting_pids)" ]; }
cancel_waiting() { q "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE wait_event = 'SyncRep'" >/dev/null; }
# run a statement whose commit waits for the absent standby, then cancel the wait:
# it is committed on the primary only (WARNING, no acknowledgement)
commit_locally() {
    q "$1" >"$TMP/local.out" 2>&1 &
    local job=$!
    wait_for 10 some_waiting || { wait_job 5 $job; return 1; }
    cancel_waiting
    wait_job 15 $job || return 1
    grep -q "canceling wait for synchronous replication" "$TMP/local.out"
}
submit() { echo "SELECT replay FROM settle_submit('$1', 10, 'USD', 'USD', 'd_a_usd', 'd_b_usd', 'd_b', '$2')"; }
bulk() { echo "SELECT replay FROM settle_submit_bulk('[{\"transaction_id\": \"$1\", \"amount\": \"10\", \"source_currency\": \"USD\", \"destination_currency\": \"USD\", \"source_account\": \"d_a_usd\", \"destination_account\": \"d_b_usd\", \"counterparty_id\": \"d_b\", \"idempotency_key\": \"$2\"}]')"; }
exists() { q "SELECT count(*) FROM settle.payment WHERE transaction_id = '$1'"; }
rounds() { q "SELECT coalesce(sum(cycles_ok + cycles_failed + cycles_unchanged), -1) FROM settle_worker_status() WHERE pid IS NOT NULL"; }
cycled() { [ "$(rounds)" -gt "$1" ]; }
worker_idle() { [ "$(q "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'settle worker' AND state = 'active'")" = 0 ]; }
reload() { q "ALTER SYSTEM SET $1" >/dev/null && q "SELECT pg_reload_conf()" >/dev/null; }
jf() { $PY -c 'import json,sys; v=json.load(sys.stdin)
for k in sys.argv[1].split("."): v = v.get(k)
print("null" if v is None else str(v).lower() if isinstance(v, bool) else v)' "$1"; }
U=http://127.0.0.1:$G
# gateway POST of one payment: "HTTP-status ms", body in $TMP/post.body, headers in $TMP/post.hdr
post() {
    curl -s -o "$TMP/post.body" -D "$TMP/post.hdr" -w '%{http_code} %{time_total}' --max-time 20 \
        -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json" \
        -d "{\"transaction_id\":\"$1\",\"amount\":\"1.00\",\"source_currency\":\"USD\",\"destination_currency\":\"USD\",\"source_account\":\"d_a_usd\",\"destination_account\":\"d_b_usd\",\"counterparty_id\":\"d_b\",\"idempotency_key\":\"$2\"}" \
        "$U/api/v1/transactions" | awk '{printf "%s %d", $1, $2 * 1000}'
}
health() { curl -s -o "$TMP/health.body" -w '%{http_code}' --max-time 10 "$U/api/v1/health"; }
health_is() { [ "$(health)" = "$1" ]; }

wait_for 30 sync_streaming
ok $? "the standby streams as the synchronous standby"
q "CREATE EXTENSION settle" >/dev/null
q "SELECT settle_create_participant(p) FROM unnest(ARRAY['d_a','d_b']) p" >/dev/null
q "SELECT settle_create_account(p || '_usd', p, 'USD', opening_balance => 100000) FROM unnest(ARRAY['d_a','d_b']) p" >/dev/null
q "CREATE ROLE d_a_app LOGIN; SELECT settle_map_role('d_a_app', 'd_a'); CREATE ROLE gateway LOGIN IN ROLE settle_gateway" >/dev/null
TOKEN=$(q "SELECT settle_issue_api_token('d_a_web', 'd_a_app')")
"$GATEWAY" --port "$G" --db "host=127.0.0.1 port=$P1 user=gateway dbname=postgres" \
    --health-interval-ms 100 --retry-after 2 >"$TMP/gw.log" 2>&1 &
GW_PID=$!
wait_for 10 health_is 200
ok $? "settle-gateway is up and healthy" || { cat "$TMP/gw.log"; done_testing; exit 1; }

is "$(q "$(submit d_1 k_1)")" "f" "with the standby streaming, a payment is acknowledged"
is "$(q_timed "$(submit d_1 k_1)")" "t" "and its retry answers replay = true at once"
is "$(q "SELECT required || ' ' || needed || ' ' || streaming || ' ' || refusing FROM settle_sync_standby_state()")" "true 1 1 false" \
   "settle_sync_standby_state(): required, 1 needed, 1 streaming, not refusing"
is "$(post g_1 gk_1 | cut -d' ' -f1)" "201" "a gateway POST is acknowledged (201)"

# --- 1. the orphan: the standby is stopped ------------------------------------------
cluster_stop "$TMP/standby" fast
wait_for 10 refusing
ok $? "standby stopped: settle_sync_standby_state() says refusing"
is "$(q "SELECT needed || ' ' || streaming || ': ' || reason FROM settle_sync_standby_state()")" \
   "1 0: 0 of 1 synchronous standby(s) streaming: new payments, rail calls and cycles are refused (SE170) until one is back" \
   "and why: 0 of 1 streaming"
is "$(q "SELECT value FROM settle.metrics WHERE metric = 'settle_sync_standby_missing'")" "1" \
   "the metric settle_sync_standby_missing is 1"
is "$(q "SELECT synchronous_standby_missing || ' ' || synchronous_standbys_needed FROM settle_gateway_health()")" "true 1" \
   "settle_gateway_health(): synchronous standby missing, 1 needed"
wait_for 10 health_is 503
ok $? "the gateway's health answers 503"
is "$(jf synchronous_standby.missing <"$TMP/health.body")/$(jf synchronous_standby.needed <"$TMP/health.body")" "true/1" \
   "and says why: synchronous_standby.missing, needed 1"
jf synchronous_standby.reason <"$TMP/health.body" | grep -q "0 of 1 synchronous standby(s) streaming"
ok $? "with the reason (0 of 1 streaming)"

got=$(q_clock "$(submit o_1 ok_1)")
refused_fast "$got" SE170
ok $? "settle_submit of a new payment: SE170 within a second ($got ms)"
is "$(exists o_1)" "0" "and nothing written"
got=$(q_clock "$(bulk o_2 ok_2)")
refused_fast "$got" SE170
ok $? "settle_submit_bulk of a new payment: SE170 within a second, the whole call ($got ms)"
is "$(exists o_2)" "0" "and nothing written"
got=$(post o_3 ok_3)
[ "${got% *}" = 503 ] && [ "${got##* }" -lt 1000 ]
ok $? "a gateway POST of a new payment: 503 within a second ($got ms)"
is "$($PY -c 'import json,sys; print(json.load(open(sys.argv[1])).get("sqlstate"))' "$TMP/post.body")" "SE170" \
   "with sqlstate SE170"
grep -qi '^Retry-After: 2' "$TMP/post.hdr"; ok $? "and Retry-After"
is "$(exists o_3)" "0" "and nothing written"
is "$(waiting_pids)" "" "no backend waits in SyncRep"
got=$(q_clock "SELECT count(*) FROM settle_rail_fetch(10)")
refused_fast "$got" SE170; ok $? "settle_rail_fetch: SE170 within a second ($got ms)"
got=$(q_clock "SELECT settle_rail_expire()")
refused_fast "$got" SE170; ok $? "settle_rail_expire (the rail time-out job): SE170 within a second ($got ms)"
got=$(q_clock "SELECT count(*) FROM settle_run_cycle()")
refused_fast "$got" SE170; ok $? "settle_run_cycle by hand: SE170 within a second ($got ms)"

# the worker, enabled now, runs no round: no transaction, no cycle lock, no SyncRep wait
reload "settle.worker_enabled = on"
wait_for 10 grep -q "no synchronous standby is streaming, no cycles until one is" "$TMP/primary/server.log"
ok $? "the worker logs that it runs no cycle while no synchronous standby streams"
sleep 2
is "$(rounds)" "0" "the worker ran no round in 2 s (cycle interval 200 ms; a payment is queued)"
is "$(q "SELECT count(*) FROM settle.cycle")" "0" "no cycle recorded"
is "$(q "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'SyncRep' OR (backend_type = 'settle worker' AND state = 'active')")" "0" \
   "no backend waits in SyncRep, the worker is not in a transaction"
is "$(q "SELECT count(*) FROM pg_locks WHERE relation = 'settle.cycle_lock'::regclass")" "0" "nobody holds the cycle lock"

is "$(q "SET synchronous_commit = local; $(submit o_4 ok_4)")" "f" \
   "synchronous_commit = local (the session asks for no standby): not refused"
# refusals off: the commit waits in SyncRep as PostgreSQL does; cancelled, it stays local
reload "settle.sync_standby_grace = -1"
wait_for 10 not_refusing
commit_locally "$(submit d_0 k_0)"
ok $? "settle.sync_standby_grace = -1: no refusal, a submit waits for the standby; cancelled, its commit stays local"
reload "settle.sync_standby_grace = 500"
wait_for 10 refusing
got=$(q_clock "$(submit d_0 k_0)")
refused_fast "$got" SE170
ok $? "the retry of that local-only payment is refused at once, SE170, never replay = true ($got ms)"
got=$(q_clock "SELECT status FROM settle_payment_status(transaction_id => 'd_0')")
refused_fast "$got" SE170; ok $? "so is its status ($got ms)"
lsn_a=$(q "SELECT pg_current_wal_flush_lsn()")
is "$(q "SELECT settle_durable_lsn() < '$lsn_a'")" "t" \
   "settle_durable_lsn() (what a CDC consumer may act on) stays below that commit"

# --- 2. the standby is back: everything resumes by itself -----------------------------
cluster_start "$TMP/standby" || exit 1
wait_for 30 sync_streaming
ok $? "the standby is restarted and streams"
wait_for 10 not_refusing
ok $? "settle_sync_standby_state() no longer refuses"
is "$(q_timed "$(submit d_0 k_0)")" "t" "the retry of the payment committed locally answers replay = true"
is "$(q2 "SELECT count(*) FROM settle.payment WHERE transaction_id = 'd_0'")" "1" "and the payment is on the standby"
is "$(q "SELECT settle_durable_lsn() >= '$lsn_a'")" "t" "and settle_durable_lsn() has passed its commit"
is "$(q "$(submit d_3 k_3)")" "f" "a new payment is acknowledged"
is "$(post g_2 gk_2 | cut -d' ' -f1)" "201" "so is a gateway POST (201)"
wait_for 20 cycled 0
ok $? "the worker cycles again by itself"
wait_for 10 health_is 200
ok $? "the gateway's health answers 200 again"
is "$(q "SELECT value FROM settle.metrics WHERE metric = 'settle_sync_standby_missing'")" "0" "the metric is 0"
reload "settle.worker_enabled = off"
sleep 1
wait_for 10 worker_idle
ok $? "(the worker is disabled again: part 3 freezes the standby, which no check can tell from a slow one)"
is "$(q "SELECT count(*) FROM settle.batch WHERE status = 'instructed'")" "0" "(no batch has been handed to the rail)"
batches_before=$(q "SELECT count(*) FROM settle.batch")
last_cycle=$(q "SELECT coalesce(max(cycle_id), 0) FROM settle.cycle")

# --- 3. the standby freezes: its walsender still streams ------------------------------
receiver=$(q2 "SELECT pid FROM pg_stat_wal_receiver")
[ -n "$receiver" ] && kill -STOP "$receiver"
ok $? "the standby's WAL receiver is frozen (SIGSTOP)"
commit_locally "$(submit d_2 k_2)"
ok $? "a submit waits for the standby, the wait is cancelled, the commit stays local"
is "$(q "SELECT refusing FROM settle_sync_standby_state()")" "f" \
   "no refusal: the walsender still streams (until wal_sender_timeout ends it)"
is "$(exists d_2)" "1" "the primary shows the unacknowledged payment"
lsn_b=$(q "SELECT pg_current_wal_flush_lsn()")
is "$(q "SELECT settle_durable_lsn() < '$lsn_b'")" "t" "settle_durable_lsn() stays below that commit"
q "$(submit d_2 k_2)" >"$TMP/retry.out" 2>&1 &
retry=$!
sleep 2
kill -0 $retry 2>/dev/null
ok $? "a retry with its key does not answer while the standby is away (it waits)"
kill -CONT "$receiver"
wait_job 30 $retry
is "$(cat "$TMP/retry.out")" "t" "when the standby thaws, the waiting retry answers replay = true"
wait_for 10 sync_streaming
is "$(q2 "SELECT count(*) FROM settle.payment WHERE transaction_id = 'd_2'")" "1" "and the payment is on the standby"

kill -STOP "$receiver"
commit_locally "$(submit d_4 k_4)"
ok $? "frozen again: a payment committed on the primary only"
is "$(q_timed "$(submit d_4 k_4)")" "SE140" "its retry (settle_submit) is refused with SE140 when the wait is cancelled"
is "$(q_timed "$(bulk d_4 k_4)")" "SE140" "so is the same retry through settle_submit_bulk"
is "$(q_timed "SELECT status FROM settle_payment_status(transaction_id => 'd_4')")" "SE140" \
   "and settle_payment_status for it"
is "$(q_timed "SELECT (settle_submit('d_4', 11, 'USD', 'USD', 'd_a_usd', 'd_b_usd', 'd_b', 'k_4')).replay")" "SE140" \
   "a conflicting retry (SE060) is not answered either before the original is durable"
q "$(submit d_4 k_4)" >"$TMP/cancel.out" 2>&1 &
retry=$!
wait_for 10 some_waiting
cancel_waiting
wait_job 15 $retry
grep -q "SE140\|not yet durable" "$TMP/cancel.out" && ! grep -qx "t" "$TMP/cancel.out"
ok $? "a retry whose wait is cancelled by pg_cancel_backend gets SE140, no replay"

commit_locally "SELECT settled FROM settle_run_cycle()"
ok $? "a two-phase cycle commits on the primary only"
local_cycle=$(q "SELECT max(cycle_id) FROM settle.cycle")
[ "$local_cycle" -gt "$last_cycle" ]; ok $? "it recorded cycle $local_cycle"
is "$(q "SELECT count(*) > 0 FROM settle.batch WHERE cycle_id = $local_cycle AND status = 'pending' AND direction = 'pay_in'")" "t" \
   "its pay-in batches are due for the rail there"
is "$(q_timed "SELECT count(*) FROM settle_rail_fetch(10)")" "SE140" "settle_rail_fetch does not hand them to the rail"
is "$(q "SELECT count(*) FROM settle.batch WHERE status = 'instructed'")" "0" "and nothing was marked instructed"

# --- 4. the frozen standby dies: an orphan with commits of its own ---------------------
cluster_crash "$TMP/standby"
wait_for 10 refusing
ok $? "the standby killed: the primary refuses"
got=$(q_clock "$(submit d_4 k_4)")
refused_fast "$got" SE170
ok $? "the retry of its local-only payment: SE170 at once, no wait, no replay ($got ms)"
got=$(q_clock "SELECT count(*) FROM settle_rail_fetch(10)")
refused_fast "$got" SE170; ok $? "settle_rail_fetch: SE170 at once ($got ms)"

# --- 5. fail over: the primary dies, the standby (which never saw d_4 nor the cycle) is promoted
cluster_stop "$TMP/primary" immediate
cluster_start "$TMP/standby" || exit 1
as_pg "$PGBIN/pg_ctl" -D "$TMP/standby/data" -w promote >/dev/null
ok $? "the standby is promoted"
is "$(q2 "SELECT string_agg(transaction_id, ',' ORDER BY transaction_id) FROM settle.payment")" "d_0,d_1,d_2,d_3,g_1,g_2,o_4" \
   "every acknowledged payment is on the new primary; the unacknowledged one never existed"
is "$(q2 "SELECT count(*) FROM settle.cycle WHERE cycle_id = $local_cycle")/$(q2 "SELECT count(*) FROM settle.batch")" "0/$batches_before" \
   "the local-only cycle and its batches do not exist"
is "$(q2 "SELECT count(*) FROM settle_rail_fetch(100) WHERE cycle_id >= $local_cycle")" "0" "and the rail is handed nothing of them"
is "$(q2 "SELECT settle_durable_lsn() = pg_current_wal_flush_lsn()")" "t" \
   "alone (no synchronous standby), settle_durable_lsn() is the local flush position"
is "$(q2 "SELECT required || ' ' || refusing FROM settle_sync_standby_state()")" "false false" \
   "synchronous_standby_names empty: no standby required, no refusal"
is "$(q2 "$(submit d_1 k_1)")" "t" "a retry of an acknowledged payment replays on the new primary"
is "$(q2 "$(submit n_1 nk_1)")" "f" "a new payment is accepted there"
is "$(q2 "SELECT count(*) >= 0 FROM settle_run_cycle()")" "t" "and a cycle runs by hand"
done_testing
