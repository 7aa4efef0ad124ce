#!/bin/bash
# The settlement worker: settles with no manual call, counts and logs a
# failing cycle and goes on, survives kill -9 of
# the whole server in the middle of load (no partial batch, ledger balanced
# after restart), resumes after the restart, waits on a standby and starts
# cycling by itself when the standby is promoted.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/scratch.sh
. test/lib/tap.sh

scratch worker
scratch_ports P1 55460 P2 55461
scratch_cluster "$TMP/primary" "$TMP/standby"

WORKER_CONF=("settle.cycle_interval = 200ms" "settle.database = postgres"
             "wal_level = replica" "max_wal_senders = 4" "hot_standby = on")
cluster_init "$TMP/primary" "$P1" "${WORKER_CONF[@]}" || exit 1
echo "host replication postgres 127.0.0.1/32 trust" | as_pg tee -a "$TMP/primary/data/pg_hba.conf" >/dev/null
cluster_start "$TMP/primary" || exit 1
Q_PORT=$P1    # q SQL: test/lib/cluster.sh

q "CREATE EXTENSION settle" >/dev/null
q "SELECT settle_create_participant(p) FROM unnest(ARRAY['w_a','w_b','w_c']) p" >/dev/null
q "SELECT settle_create_account(p || '_usd', p, 'USD', opening_balance => 1000000) FROM unnest(ARRAY['w_a','w_b','w_c']) p" >/dev/null
q "SELECT settle_submit('w_' || i, 10 + i, 'USD', 'USD', 'w_a_usd', 'w_b_usd', 'w_b', 'wk_' || i) FROM generate_series(1, 20) i" >/dev/null

settled_all() { [ "$(q "SELECT count(*) FROM settle.payment WHERE status = 'queued'")" = 0 ]; }
wait_for 20 settled_all
ok $? "the worker settles queued payments with no manual call"
# one query, so that two failed queries cannot compare equal
is "$(q "SELECT count(*) > 0 AND count(*) FILTER (WHERE run_by = 'worker') = count(*) FROM settle.cycle WHERE settled > 0")" t \
   "every settling cycle was the worker's"
is "$(q "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'settle worker' AND application_name = 'settle worker'")" "1" \
   "the worker shows its name in pg_stat_activity"
grep -q "settle cycle [0-9]*: 20 of 20 settled" "$TMP/primary/server.log"
ok $? "the worker logs one line per cycle that did work"

# a cycle that fails is rolled back, logged and counted, and the next one runs:
# a trigger (a superuser's) makes writing a batch fail, then it is dropped
q "CREATE FUNCTION public.fail_batch() RETURNS trigger LANGUAGE plpgsql AS \$\$
   BEGIN RAISE EXCEPTION 'injected failure: %', repeat('é', 300) USING ERRCODE = 'SE999'; END \$\$" >/dev/null
q "CREATE TRIGGER fail_batch BEFORE INSERT ON settle.batch FOR EACH STATEMENT EXECUTE FUNCTION public.fail_batch()" >/dev/null
q "SELECT settle_submit('w_fail', 10, 'USD', 'USD', 'w_a_usd', 'w_b_usd', 'w_b', 'wk_fail')" >/dev/null
cycle_failed() { [ "$(q "SELECT cycles_failed > 0 FROM settle_worker_status()")" = t ]; }
wait_for 20 cycle_failed
ok $? "a failing cycle is counted by settle_worker_status()"
is "$(q "SELECT last_failure_in || ' ' || last_sqlstate || ' ' || left(last_error, 19) FROM settle_worker_status()")" \
   "cycle SE999 injected failure: é" "it keeps the last failure: where, SQLSTATE and message"
is "$(q "SELECT octet_length(last_error) <= 511 AND last_error = left('injected failure: ' || repeat('é', 300), length(last_error)) FROM settle_worker_status()")" \
   "t" "a long message is cut to at most 511 bytes, on a character boundary (18 + 2k bytes)"
is "$(q "SELECT status FROM settle.payment WHERE transaction_id = 'w_fail'")" "queued" "the failed cycle wrote nothing"
[ "$(q "SELECT value FROM settle.metrics WHERE metric = 'settle_worker_cycles_failed_total'")" -ge 1 ]
ok $? "and the metric settle_worker_cycles_failed_total counts it"
grep -q "settle cycle failed: injected failure" "$TMP/primary/server.log"
ok $? "the failure is logged"
# read while every cycle still fails (the queue holds w_fail), so it cannot move before the drop
ok_before=$(q "SELECT cycles_ok FROM settle_worker_status()")
q "DROP TRIGGER fail_batch ON settle.batch" >/dev/null
fail_settled() { [ "$(q "SELECT status FROM settle.payment WHERE transaction_id = 'w_fail'")" = settled ]; }
wait_for 20 fail_settled
ok $? "once the cause is gone the next cycle settles the payment"
[ "$(q "SELECT cycles_ok FROM settle_worker_status()")" -gt "$ok_before" ]
ok $? "and is counted as a cycle that committed"

# a payment deferred to a far deadline: the cycles that change nothing write no
# record (they would add a cycle row and an event every interval) and are counted
q "SELECT settle_set_wire_fee('USD', 25)" >/dev/null
q "SELECT settle_submit('w_far', 1, 'USD', 'USD', 'w_a_usd', 'w_b_usd', 'w_b', 'wk_far', deadline => now() + interval '30 days')" >/dev/null
sleep 1
rows_before=$(q "SELECT (SELECT count(*) FROM settle.cycle) || ' ' || (SELECT count(*) FROM settle.event)")
unchanged_before=$(q "SELECT cycles_unchanged FROM settle_worker_status()")
sleep 2
is "$(q "SELECT status FROM settle.payment WHERE transaction_id = 'w_far'")" "queued" "a small payment with a far deadline waits (its wire costs more than waiting)"
is "$(q "SELECT (SELECT count(*) FROM settle.cycle) || ' ' || (SELECT count(*) FROM settle.event)")" "$rows_before" \
   "the worker's cycles that change nothing write no cycle row and no event"
[ "$(q "SELECT cycles_unchanged FROM settle_worker_status()")" -ge $((unchanged_before + 5)) ]
ok $? "they are counted: settle_worker_status().cycles_unchanged and settle_worker_cycles_unchanged_total"
is "$(q "SELECT value > 0 FROM settle.metrics WHERE metric = 'settle_worker_cycles_unchanged_total'")" "t" "the metric has them"
is "$(q "SELECT value < 2 FROM settle.metrics WHERE metric = 'settle_last_cycle_age_seconds'")" "t" \
   "settle_last_cycle_age_seconds counts them as cycles (no false SettleCyclesFailing)"
q "SELECT settle_set_wire_fee('USD', 0)" >/dev/null

# suspension with the worker cycling every 200 ms (issue #16, item 3): w_d's
# payment waits for liquidity; w_d is suspended, then funded; the worker must
# not settle it (held, with the reason) until an operator releases it
q "SELECT settle_create_participant(p) FROM unnest(ARRAY['w_d','w_e']) p" >/dev/null
q "SELECT settle_create_account(p || '_usd', p, 'USD') FROM unnest(ARRAY['w_d','w_e']) p" >/dev/null
q "SELECT settle_submit('w_sus', 50, 'USD', 'USD', 'w_d_usd', 'w_e_usd', 'w_e', 'wk_sus')" >/dev/null
sleep 0.6
is "$(q "SELECT status FROM settle.payment WHERE transaction_id = 'w_sus'")" "queued" "a payment without liquidity waits in the queue"
q "SELECT settle_set_participant_status('w_d', 'suspended')" >/dev/null
q "SELECT settle_fund_account('w_d_usd', 100)" >/dev/null
cycles_before=$(q "SELECT cycles_ok FROM settle_worker_status()")
more_cycles() { [ "$(q "SELECT cycles_ok FROM settle_worker_status()")" -ge $((cycles_before + 3)) ]; }
wait_for 20 more_cycles
is "$(q "SELECT status || ' ' || hold_reason FROM settle.transactions WHERE transaction_id = 'w_sus'")" \
   "held payer w_d is suspended" "the worker does not settle a suspended payer's queued payment, though it is funded now"
q "SELECT settle_set_participant_status('w_d', 'active')" >/dev/null
cycles_before=$(q "SELECT cycles_ok FROM settle_worker_status()")
wait_for 20 more_cycles
is "$(q "SELECT status FROM settle.payment WHERE transaction_id = 'w_sus'")" "held" "reactivating the participant releases nothing by itself"
q "SELECT settle_release_payment(payment_id) FROM settle.payment WHERE transaction_id = 'w_sus'" >/dev/null
sus_settled() { [ "$(q "SELECT status FROM settle.payment WHERE transaction_id = 'w_sus'")" = settled ]; }
wait_for 20 sus_settled
ok $? "released by the operator, the worker settles it"

# load: 4 clients submitting for a few seconds, then SIGKILL of every server process
cat > "$TMP/load.sql" <<'SQL'
\set k random(1, 1000000000000)
\set s random(0, 2)
SELECT settle_submit('load_' || :k, 1.00, 'USD', 'USD', (ARRAY['w_a_usd','w_b_usd','w_c_usd'])[:s + 1], (ARRAY['w_b_usd','w_c_usd','w_a_usd'])[:s + 1], (ARRAY['w_b','w_c','w_a'])[:s + 1], 'loadk_' || :k);
SQL
"$PGBIN/pgbench" -n -h 127.0.0.1 -p "$P1" -U postgres -c 4 -T 20 -f "$TMP/load.sql" postgres >"$TMP/pgbench.log" 2>&1 &
LOAD=$!
sleep 3
cycles_before=$(q "SELECT count(*) FROM settle.cycle")
cluster_crash "$TMP/primary"
wait $LOAD 2>/dev/null
[ "$cycles_before" -gt 1 ]
ok $? "cycles ran during the load before the crash ($cycles_before)"

cluster_start "$TMP/primary"
ok $? "the server restarts after kill -9 (crash recovery)"

is "$(q "SELECT count(*) FROM (SELECT journal_id, currency FROM settle.ledger_entry GROUP BY 1, 2 HAVING sum(amount) <> 0) x")" "0" \
   "after the crash every journal sums to zero per currency"
is "$(q "SELECT count(*) FROM (SELECT batch_id FROM settle.ledger_entry WHERE batch_id IS NOT NULL GROUP BY 1 HAVING sum(amount) <> 0) x")" "0" \
   "no partial batch: every batch sums to zero"
is "$(q "SELECT count(*) FROM settle.batch b WHERE NOT EXISTS (SELECT 1 FROM settle.ledger_entry e WHERE e.batch_id = b.batch_id)")" "0" \
   "every recorded batch has its postings"
is "$(q "SELECT count(*) FROM settle.account a LEFT JOIN (SELECT account_id, sum(amount) s FROM settle.ledger_entry GROUP BY 1) e USING (account_id) WHERE a.balance <> coalesce(e.s, 0)")" "0" \
   "every balance equals the sum of its entries"
is "$(q "SELECT count(*) FROM (SELECT p.payment_id FROM settle.payment p LEFT JOIN settle.ledger_entry e USING (payment_id) GROUP BY p.payment_id, p.status HAVING count(e.entry_id) <> CASE WHEN p.status = 'settled' THEN 2 ELSE 0 END) x")" "0" \
   "each settled payment posted exactly once (two legs), queued ones never"

all_sealed() { [ "$(q "SELECT (SELECT count(*) FROM settle.ledger_entry) = (SELECT count(*) FROM settle.ledger_seal)")" = t ]; }
wait_for 20 all_sealed
ok $? "the worker seals every ledger entry into the audit chain after its cycles"
is "$(q "SELECT count(*) FROM settle_verify()")" "0" "settle_verify() finds no problem after the crash"
is "$(q "SELECT count(*) FROM settle_replay()")" "0" \
   "replay from the event log alone (statuses, balances, postings per journal) equals the state after the crash"

settled_before=$(q "SELECT count(*) FROM settle.payment WHERE status = 'settled'")
q "SELECT settle_submit('after_crash', 5, 'USD', 'USD', 'w_c_usd', 'w_a_usd', 'w_a', 'after_crash_k')" >/dev/null
after_crash_settled() { [ "$(q "SELECT status FROM settle.payment WHERE transaction_id = 'after_crash'")" = settled ] && settled_all; }
wait_for 30 after_crash_settled
ok $? "after the restart the worker resumes and settles the backlog and new payments"
[ "$(q "SELECT count(*) FROM settle.payment WHERE status = 'settled'")" -gt "$settled_before" ]
ok $? "payments submitted under load settled ($settled_before before the restart)"

# a standby: the worker waits there, and cycles after promotion
mkdir -p "$TMP/standby" && chown "$PGRUNAS" "$TMP/standby"
as_pg "$PGBIN/pg_basebackup" -h 127.0.0.1 -p "$P1" -U postgres -D "$TMP/standby/data" -R -X stream -c fast >/dev/null 2>&1
ok $? "a standby is cloned from the primary"
as_pg sed -i "s/^port = .*/port = $P2/; s#^unix_socket_directories = .*#unix_socket_directories = '$TMP/standby'#" "$TMP/standby/data/postgresql.conf"
cluster_start "$TMP/standby"
ok $? "the standby starts"
cluster_stop "$TMP/primary" fast
wait_for 10 grep -q "settle worker waiting: server is in recovery" "$TMP/standby/server.log"
ok $? "the worker on the standby waits while in recovery"
s() { cluster_psql "$P2" -d postgres -At -c "$1"; }
as_pg "$PGBIN/pg_ctl" -D "$TMP/standby/data" promote -w >/dev/null
ok $? "the standby is promoted"
s "SELECT settle_submit('after_promote', 7, 'USD', 'USD', 'w_a_usd', 'w_b_usd', 'w_b', 'after_promote_k')" >/dev/null
promoted_settled() { [ "$(s "SELECT status FROM settle.payment WHERE transaction_id = 'after_promote'")" = settled ]; }
wait_for 20 promoted_settled
ok $? "after promotion the same worker settles, with no restart"
wait_for 10 grep -q "settle worker: server promoted, cycling" "$TMP/standby/server.log"
ok $? "the worker logs that it took over"

done_testing
