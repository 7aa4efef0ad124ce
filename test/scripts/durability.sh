#!/bin/bash
# Nothing is reported before it is durable (docs/CONSENSUS.md, "Answers that
# wait"): a primary with one synchronous standby; the standby is cut off, a
# submit's wait for it is cancelled (its commit stays local), and then:
#   - a retry with the same key (settle_submit, settle_submit_bulk) and a
#     status lookup do not answer until the standby has the payment: they
#     wait, and a cancelled wait is SE140, never replay = true;
#   - when the standby returns, the waiting retry answers replay = true;
#   - a cycle that committed only locally hands nothing to the rail
#     (settle_rail_fetch waits, then SE140);
#   - settle_durable_lsn() (what a CDC consumer may act on) stays below a
#     commit the standby does not have;
#   - after a fail-over to the standby, the payment and the batches that were
#     never acknowledged do not exist, and everything acknowledged does.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/scratch.sh
. test/lib/tap.sh

scratch durability
scratch_ports P1 55480 P2 55481
scratch_on_exit 'jobs -p | xargs -r kill 2>/dev/null'
scratch_cluster "$TMP/primary" "$TMP/standby"

cluster_init "$TMP/primary" "$P1" "settle.worker_enabled = off" "settle.two_phase = on" \
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

# every statement here is bounded (60 s): a commit, or settle's durable wait,
# that never returns fails the test instead of hanging it
q_on() { local port=$1; shift; timeout -k 5 60 psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres -d postgres -At "$@"; }
q() { q_on "$P1" -c "$1"; }
q2() { q_on "$P2" -c "$1"; }
# one statement with a 2 s timeout; prints its rows, or the SQLSTATE of its error.
# statement_timeout does not end a commit's wait for synchronous replication:
# a commit that waits (settle's own durable wait broken, say) is cut off after
# 15 s by the client, printed as "no answer", and its wait cancelled.
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
sync_streaming() { [ "$(q "SELECT count(*) FROM pg_stat_replication WHERE application_name = 'standby1' AND sync_state = 'sync' AND state = 'streaming'")" = 1 ]; }
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

wait_for 30 sync_streaming
ok $? "the standby streams as the synchronous standby"
q "CREATE EXTENSION settle" >/dev/null
q "SELECT settle_create_participant(p) FROM unnest(ARRAY['d_a','d_b']) p" >/dev/null
q "SELECT settle_create_account(p || '_usd', p, 'USD', opening_balance => 100000) FROM unnest(ARRAY['d_a','d_b']) p" >/dev/null
is "$(q "$(submit d_1 k_1)")" "f" "with the standby streaming, a payment is acknowledged"
is "$(q_timed "$(submit d_1 k_1)")" "t" "and its retry answers replay = true at once"

# A: the standby goes away; a payment's commit wait is cancelled
cluster_stop "$TMP/standby" fast
commit_locally "$(submit d_0 k_0)"
ok $? "standby stopped: a submit waits for it, the wait is cancelled, the commit stays local"
is "$(q "SELECT count(*) FROM settle.payment WHERE transaction_id = 'd_0'")" "1" \
   "the primary shows the unacknowledged payment"
lsn_a=$(q "SELECT pg_current_wal_flush_lsn()")
is "$(q "SELECT settle_durable_lsn() < '$lsn_a'")" "t" \
   "settle_durable_lsn() (what a CDC consumer may act on) stays below that commit"
q "$(submit d_0 k_0)" >"$TMP/retry.out" 2>&1 &
retry=$!
sleep 2
kill -0 $retry 2>/dev/null
ok $? "a retry with its key does not answer while the standby is away (it waits)"
cluster_start "$TMP/standby" || exit 1
wait_job 30 $retry
is "$(cat "$TMP/retry.out")" "t" "when the standby is back, the waiting retry answers replay = true"
wait_for 10 sync_streaming
is "$(q2 "SELECT count(*) FROM settle.payment WHERE transaction_id = 'd_0'")" "1" "and the payment is on the standby"
is "$(q "SELECT settle_durable_lsn() >= '$lsn_a'")" "t" "and settle_durable_lsn() has passed its commit"

# B: cut again; this time the primary fails and the standby is promoted
cluster_stop "$TMP/standby" fast
commit_locally "$(submit d_2 k_2)"
ok $? "standby stopped again: a second payment committed on the primary only"
is "$(q_timed "$(submit d_2 k_2)")" "SE140" "its retry (settle_submit) is refused with SE140 when the wait is cancelled"
is "$(q_timed "SELECT replay FROM settle_submit_bulk('[{\"transaction_id\": \"d_2\", \"amount\": \"10\", \"source_currency\": \"USD\", \"destination_currency\": \"USD\", \"source_account\": \"d_a_usd\", \"destination_account\": \"d_b_usd\", \"counterparty_id\": \"d_b\", \"idempotency_key\": \"k_2\"}]')")" \
   "SE140" "so is the same retry through settle_submit_bulk"
is "$(q_timed "SELECT status FROM settle_payment_status(transaction_id => 'd_2')")" "SE140" \
   "and settle_payment_status for it"
is "$(q_timed "SELECT (settle_submit('d_2', 11, 'USD', 'USD', 'd_a_usd', 'd_b_usd', 'd_b', 'k_2')).replay")" "SE140" \
   "a conflicting retry (SE060) is not answered either before the original is durable"
q "$(submit d_2 k_2)" >"$TMP/cancel.out" 2>&1 &
retry=$!
wait_for 10 some_waiting
cancel_waiting
wait_job 15 $retry
grep -q "SE140\|not yet durable" "$TMP/cancel.out" && ! grep -qx "t" "$TMP/cancel.out"
ok $? "a retry whose wait is cancelled by pg_cancel_backend gets SE140, no replay"

commit_locally "SELECT settled FROM settle_run_cycle()"
ok $? "a two-phase cycle commits on the primary only"
is "$(q "SELECT count(*) || ' ' || count(*) FILTER (WHERE status = 'pending' AND direction = 'pay_in') FROM settle.batch")" "2 1" \
   "its pay-in batch is due for the rail there (the pay-out follows its confirmation)"
is "$(q_timed "SELECT count(*) FROM settle_rail_fetch(10)")" "SE140" "settle_rail_fetch does not hand them to the rail"
is "$(q "SELECT count(*) FROM settle.batch WHERE status = 'instructed'")" "0" "and nothing was marked instructed"

# fail over: the primary dies, the standby (which never saw d_2 nor the cycle) is promoted
cluster_stop "$TMP/primary" immediate
cluster_start "$TMP/standby" || exit 1
as_pg "$PGBIN/pg_ctl" -D "$TMP/standby/data" -w promote >/dev/null
ok $? "the standby is promoted"
is "$(q2 "SELECT string_agg(transaction_id, ',' ORDER BY transaction_id) FROM settle.payment")" "d_0,d_1" \
   "every acknowledged payment is on the new primary; the unacknowledged one never existed"
is "$(q2 "SELECT count(*) FROM settle.batch")" "0" "the batches the rail never received do not exist"
is "$(q2 "SELECT count(*) FROM settle_rail_fetch(10)")" "0" "and the rail is handed nothing of them"
is "$(q2 "SELECT settle_durable_lsn() = pg_current_wal_flush_lsn()")" "t" \
   "alone (no synchronous standby), settle_durable_lsn() is the local flush position"
is "$(q2 "$(submit d_1 k_1)")" "t" "a retry of an acknowledged payment replays on the new primary"
done_testing
