#!/bin/bash
# Install and drop (docs/OPERATIONS.md, "Install and drop"):
#   - without shared_preload_libraries, CREATE EXTENSION works, says with a
#     NOTICE that there is no worker, the session goes on, and cycles run by hand;
#   - with settle.database listing one database, CREATE EXTENSION in another
#     is allowed (SE150 is retired since 1.2) and says with a NOTICE that no
#     worker will serve it; settle_worker_status() answers only in a served
#     database; the worker says once when a listed database has no extension;
#   - DROP EXTENSION settle is refused while the ledger holds entries (SE151),
#     and once confirmed (settle.allow_drop) it also removes settle's pg_cron
#     jobs and the publication.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/scratch.sh
. test/lib/tap.sh

scratch lifecycle
scratch_ports P1 55540 P2 55541
scratch_cluster "$TMP/plain" "$TMP/pre"

# 1. not preloaded
cluster_init "$TMP/plain" "$P1" "shared_preload_libraries = ''" || exit 1
cluster_start "$TMP/plain" || exit 1
out=$(psql -X -h 127.0.0.1 -p "$P1" -U postgres -d postgres -At -v ON_ERROR_STOP=1 \
      -c "CREATE EXTENSION settle" -c "SELECT 'session alive'" -c "SHOW settle.database" 2>&1)
echo "$out" | grep -q "NOTICE:  settle is not in shared_preload_libraries: there is no settlement worker"
ok $? "without preload, CREATE EXTENSION says there is no worker"
echo "$out" | grep -q "^session alive$" && ! echo "$out" | grep -q FATAL
ok $? "and the session goes on (no FATAL)" || echo "$out" | sed 's/^/#   /'
q1() { cluster_psql "$P1" -d postgres -At -c "$1"; }
q1 "SELECT settle_create_participant(p) FROM unnest(ARRAY['l_a','l_b']) p" >/dev/null
q1 "SELECT settle_create_account(p || '_usd', p, 'USD', opening_balance => 100) FROM unnest(ARRAY['l_a','l_b']) p" >/dev/null
q1 "SELECT settle_submit('l1', 5, 'USD', 'USD', 'l_a_usd', 'l_b_usd', 'l_b', 'lk1')" >/dev/null
is "$(q1 "SELECT settled FROM settle_run_cycle()")" "1" "intake and a cycle by hand work"
is "$(q1 "SELECT count(*) FROM settle_worker_status()")" "0" "settle_worker_status() reports no worker"
# a library of another release than the SQL objects: refused, with the fix
q1 "UPDATE pg_extension SET extversion = '0.0-old' WHERE extname = 'settle'" >/dev/null
out=$(psql -X -h 127.0.0.1 -p "$P1" -U postgres -d postgres -At -c '\set VERBOSITY verbose' \
      -c "SELECT settle_submit('l2', 5, 'USD', 'USD', 'l_a_usd', 'l_b_usd', 'l_b', 'lk2')" 2>&1)
echo "$out" | grep -q "SE152: the settle library is release .* but this database has settle 0.0-old" && echo "$out" | grep -q "ALTER EXTENSION settle UPDATE"
ok $? "a library of another release than the installed SQL refuses intake (SE152, hint: ALTER EXTENSION settle UPDATE)"
out=$(psql -X -h 127.0.0.1 -p "$P1" -U postgres -d postgres -At -c "SELECT settle_run_cycle()" 2>&1)
echo "$out" | grep -q "is release .* but this database has settle 0.0-old"
ok $? "and cycles"
q1 "UPDATE pg_extension SET extversion = '$(sed -n "s/^default_version = '\(.*\)'/\1/p" settle.control)' WHERE extname = 'settle'" >/dev/null
is "$(q1 "SELECT status FROM settle_submit('l2', 5, 'USD', 'USD', 'l_a_usd', 'l_b_usd', 'l_b', 'lk2')")" "queued" "the same release again: intake works"

# 2. preloaded, the worker serving postgres
cluster_init "$TMP/pre" "$P2" "settle.database = postgres" "settle.cycle_interval = 200ms" || exit 1
cluster_start "$TMP/pre" || exit 1
q2() { cluster_psql "$P2" -d "${DB:-postgres}" -At -c "$1"; }
q2 "CREATE DATABASE other" >/dev/null
psql -X -h 127.0.0.1 -p "$P2" -U postgres -d other -At -c "SET client_min_messages = notice" -c "CREATE EXTENSION settle" >"$TMP/other.out" 2>&1
ok $? "with the worker on, CREATE EXTENSION in a database settle.database does not list is allowed (no SE150)"
grep -q 'NOTICE:  settle.database does not list database "other": no settlement worker will serve it' "$TMP/other.out"
ok $? "and says with a NOTICE that no worker will serve it"
is "$(DB=other q2 "SELECT count(*) FROM settle_worker_status()")" "0" "settle_worker_status() there reports no worker"
DB=other q2 "DROP EXTENSION settle" >/dev/null
saw_warning() { grep -q 'settle worker: extension settle is not installed in database "postgres"; waiting' "$TMP/pre/server.log"; }
wait_for 10 saw_warning
ok $? "the worker says its database has no extension"
is "$(grep -c 'extension settle is not installed' "$TMP/pre/server.log")" "1" "once, not every round"
q2 "CREATE EXTENSION settle" >/dev/null
q2 "CREATE EXTENSION pg_cron" >/dev/null
q2 "SELECT settle_create_participant(p) FROM unnest(ARRAY['l_a','l_b']) p" >/dev/null
q2 "SELECT settle_create_account(p || '_usd', p, 'USD', opening_balance => 100) FROM unnest(ARRAY['l_a','l_b']) p" >/dev/null
q2 "SELECT settle_submit('l1', 5, 'USD', 'USD', 'l_a_usd', 'l_b_usd', 'l_b', 'lk1')" >/dev/null
settled() { [ "$(q2 "SELECT status FROM settle.payment WHERE transaction_id = 'l1'")" = settled ]; }
wait_for 20 settled
ok $? "in its own database the worker settles"
is "$(q2 "SELECT count(*) FROM settle_worker_status()")" "1" "settle_worker_status() answers in the worker's database"
# the worker with SQL of another release: it waits and says why
q2 "UPDATE pg_extension SET extversion = '0.0-old' WHERE extname = 'settle'" >/dev/null
as_pg "$PGBIN/pg_ctl" -D "$TMP/pre/data" -w -m fast restart -l "$TMP/pre/server.log" >/dev/null
saw_mismatch() { grep -q 'settle worker: the library is release .* but database "postgres" has settle 0.0-old; waiting' "$TMP/pre/server.log"; }
wait_for 10 saw_mismatch
ok $? "the worker of a library of another release waits and says why"
q2 "UPDATE pg_extension SET extversion = '$(sed -n "s/^default_version = '\(.*\)'/\1/p" settle.control)' WHERE extname = 'settle'" >/dev/null
as_pg "$PGBIN/pg_ctl" -D "$TMP/pre/data" -w -m fast restart -l "$TMP/pre/server.log" >/dev/null
q2 "ALTER SYSTEM SET settle.worker_enabled = off" >/dev/null
q2 "SELECT pg_reload_conf()" >/dev/null
sleep 0.5
DB=other q2 "CREATE EXTENSION settle" >/dev/null 2>&1
ok $? "with the worker off, CREATE EXTENSION in another database is allowed"
is "$(DB=other q2 "SELECT count(*) FROM settle_worker_status()")" "0" "and settle_worker_status() there reports no worker"
q2 "ALTER SYSTEM RESET settle.worker_enabled" >/dev/null
q2 "SELECT pg_reload_conf()" >/dev/null

# 3. DROP EXTENSION
q2 "SELECT count(*) FROM settle_schedule_jobs()" >/dev/null
q2 "SELECT settle_create_publication()" >/dev/null
is "$(psql -X -h 127.0.0.1 -p "$P2" -U postgres -d postgres -At -c '\set VERBOSITY sqlstate' -c "DROP EXTENSION settle CASCADE" 2>&1)" \
   "ERROR:  SE151" "DROP EXTENSION settle (even CASCADE) is refused while the ledger holds entries (SE151)"
is "$(q2 "SELECT count(*) > 0 FROM settle.ledger_entry")" "t" "the ledger is still there"
is "$(cluster_psql "$P2" -d postgres -At -c "SET settle.allow_drop = on" -c "DROP EXTENSION settle CASCADE" -c "SELECT count(*) FROM pg_extension WHERE extname = 'settle'")" \
   "0" "confirmed with settle.allow_drop, it is dropped"
is "$(q2 "SELECT count(*) FROM cron.job WHERE jobname LIKE 'settle-%'")" "0" "its pg_cron jobs are gone"
is "$(q2 "SELECT count(*) FROM pg_publication WHERE pubname = 'settle_events'")" "0" "and so is its publication"
DB=other q2 "DROP EXTENSION settle" >/dev/null 2>&1
ok $? "an empty ledger drops without confirmation"
done_testing
