#!/bin/bash
# A logical copy starts fenced (issue #29, item 2; docs/OPERATIONS.md,
# "Restoring a copy for inspection"): last night's dump restored into a
# scratch database beside production, on the same server whose launcher
# serves every database, verifies clean and settles nothing: no cycle, no
# intake, no rail traffic; settle_fence_state() says why; production goes on.
# settle_release_copy() releases it, and then it settles.  A copy of the copy
# is fenced again.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/scratch.sh
. test/lib/tap.sh

scratch copy
scratch_ports P 55640
scratch_cluster "$TMP/db"
cluster_init "$TMP/db" "$P" "settle.cycle_interval = 200ms" || exit 1
cluster_start "$TMP/db" || exit 1
q() { cluster_psql "$P" -d "$1" -At -c "$2"; }
sqlstate() { psql -X -h 127.0.0.1 -p "$P" -U postgres -d "$1" -At -c '\set VERBOSITY sqlstate' -c "$2" 2>&1 | tail -1; }
reload() { q postgres "ALTER SYSTEM SET settle.worker_enabled = $1" >/dev/null; q postgres "SELECT pg_reload_conf()" >/dev/null; }

q postgres "CREATE DATABASE bank" >/dev/null
q bank "CREATE EXTENSION settle" >/dev/null
q bank "SELECT settle_create_participant(p) FROM unnest(ARRAY['c_a','c_b']) p" >/dev/null
q bank "SELECT settle_create_account(p || '_usd', p, 'USD', opening_balance => 1000) FROM unnest(ARRAY['c_a','c_b']) p" >/dev/null
q bank "SELECT settle_submit('early', 5, 'USD', 'USD', 'c_a_usd', 'c_b_usd', 'c_b', 'k_early')" >/dev/null
early() { [ "$(q bank "SELECT status FROM settle.payment WHERE transaction_id = 'early'")" = settled ]; }
wait_for 20 early
ok $? "production settles"
is "$(q bank "SELECT reason FROM settle_fence_state()")" "not a restored copy (settle.fence = auto, no recovery target)" \
   "production is not fenced"

# the queue at dump time: payments that would settle at the next cycle
reload off
sleep 1
q bank "SELECT settle_submit('q' || i, 7, 'USD', 'USD', 'c_a_usd', 'c_b_usd', 'c_b', 'k_q' || i) FROM generate_series(1, 5) i" >/dev/null
"$PGBIN/pg_dump" -h 127.0.0.1 -p "$P" -U postgres -Fc -f "$TMP/bank.dump" bank
ok $? "pg_dump of production with 5 payments queued"
reload on
prod_settled() { [ "$(q bank "SELECT count(*) FROM settle.payment WHERE status = 'settled'")" = 6 ]; }
wait_for 20 prod_settled
ok $? "production settles its queue"

# restored beside it, on the same server: the launcher serves every database
q postgres "CREATE DATABASE scratch" >/dev/null
"$PGBIN/pg_restore" -h 127.0.0.1 -p "$P" -U postgres -d scratch "$TMP/bank.dump" >"$TMP/restore.log" 2>&1
ok $? "pg_restore into a scratch database beside production" || sed 's/^/#   /' "$TMP/restore.log"
served() { [ "$(q scratch "SELECT state FROM settle_worker_status()")" = running ]; }
wait_for 10 served
ok $? "the launcher serves the scratch database (its worker runs)"
sleep 3
is "$(q scratch "SELECT count(*) FILTER (WHERE status = 'queued') || ' ' || count(*) FILTER (WHERE status = 'settled') FROM settle.payment")" "5 1" \
   "nothing settled in the copy: the 5 payments are still queued"
is "$(q scratch "SELECT count(*) FROM settle.cycle")" "$(q scratch "SELECT count(*) FROM settle.cycle WHERE finished_at < (SELECT min(recorded_at) FROM settle.origin WHERE database_name = 'scratch')")" \
   "no cycle ran in the copy"
is "$(q scratch "SELECT fenced FROM settle_fence_state()")" "t" "settle_fence_state(): fenced"
q scratch "SELECT reason FROM settle_fence_state()" | grep -q 'this database is a copy of the ledger created in database "bank"'
ok $? "with the reason: a copy of the ledger created in database \"bank\"" || q scratch "SELECT reason FROM settle_fence_state()" | sed 's/^/#   /'
is "$(q scratch "SELECT count(*) FROM settle_verify()")" "0" "settle_verify() is clean in the copy"
is "$(sqlstate scratch "SELECT settle_submit('x1', 1, 'USD', 'USD', 'c_a_usd', 'c_b_usd', 'c_b', 'k_x1')")" "ERROR:  SE153" \
   "intake in the copy is refused (SE153)"
is "$(sqlstate scratch "SELECT * FROM settle_run_cycle()")" "ERROR:  SE153" "a cycle by hand too"
is "$(sqlstate scratch "SELECT count(*) FROM settle_rail_fetch()")" "ERROR:  SE153" "and the rail"
is "$(q scratch "SELECT value FROM settle.metrics WHERE metric = 'settle_node_fenced'")" "1" "settle_node_fenced is 1 there"
grep -q 'settle worker: database "scratch" is fenced, no cycles until an operator releases it' "$TMP/db/server.log"
ok $? "its worker logs that the database is fenced"
is "$(q bank "SELECT fenced FROM settle_fence_state()")" "f" "production is not fenced"
q bank "SELECT settle_submit('prod_after', 3, 'USD', 'USD', 'c_a_usd', 'c_b_usd', 'c_b', 'k_prod_after')" >/dev/null
prod_after() { [ "$(q bank "SELECT status FROM settle.payment WHERE transaction_id = 'prod_after'")" = settled ]; }
wait_for 20 prod_after
ok $? "production takes and settles payments meanwhile"

# a copy of the copy, before the release: fenced too
q postgres "CREATE DATABASE scratch2 TEMPLATE scratch" >/dev/null
is "$(q scratch2 "SELECT fenced FROM settle_fence_state()")" "t" "a copy of the copy (CREATE DATABASE ... TEMPLATE) is fenced"

# released by an operator
is "$(sqlstate scratch "SELECT * FROM settle_release_copy('')")" "ERROR:  22023" "a release needs a reason"
is "$(q scratch "SELECT fenced FROM settle_release_copy('inspected: takes over from bank')")" "f" "settle_release_copy() releases it"
is "$(q scratch "SELECT kind || ' ' || reason FROM settle.origin WHERE database_name = 'scratch' AND kind = 'released'")" \
   "released inspected: takes over from bank" "the release is recorded with its reason"
copy_settled() { [ "$(q scratch "SELECT count(*) FROM settle.payment WHERE status = 'settled'")" = 6 ]; }
wait_for 20 copy_settled
ok $? "released, its worker settles the restored queue"
is "$(q scratch2 "SELECT fenced FROM settle_fence_state()")" "t" "the copy of the copy stays fenced (its own release needed)"
is "$(q scratch "SELECT count(*) FROM settle_verify()")" "0" "settle_verify() is clean after"
done_testing
