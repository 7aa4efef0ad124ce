#!/bin/bash
# The launcher (issue #29, item 1; docs/OPERATIONS.md, "Several databases"):
# one settlement worker per database with the extension, with no
# settle.database set:
#   - two databases on one server are both settled by their own workers, and
#     settle_worker_status() answers per database (all_databases: every one);
#   - CREATE EXTENSION in a third while running gets a worker within seconds;
#     DROP EXTENSION makes it leave; DROP DATABASE of a served database goes
#     through at once (its worker is stopped first) and frees its slot;
#   - CREATE DATABASE ... TEMPLATE a served database works, and its worker
#     comes back;
#   - settle.database as an allow-list: a listed database that does not
#     exist is reported once and never restart-loops (worker starts counted
#     in the log), an unlisted one gets no worker, a listed database still
#     on 1.1's SQL gets a worker that settles.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/scratch.sh
. test/lib/tap.sh

scratch launcher
scratch_ports P 55620
scratch_cluster "$TMP/db"
cluster_init "$TMP/db" "$P" "settle.cycle_interval = 200ms" || exit 1
cluster_start "$TMP/db" || exit 1
q() { cluster_psql "$P" -d "$1" -At -c "$2"; }
setup() {
    q "$1" "CREATE EXTENSION settle" >/dev/null
    q "$1" "SELECT settle_create_participant(p) FROM unnest(ARRAY['l_a','l_b']) p" >/dev/null
    q "$1" "SELECT settle_create_account(p || '_usd', p, 'USD', opening_balance => 1000) FROM unnest(ARRAY['l_a','l_b']) p" >/dev/null
}
pay() { q "$1" "SELECT status FROM settle_submit('$2', 5, 'USD', 'USD', 'l_a_usd', 'l_b_usd', 'l_b', 'k_$2')" >/dev/null; }
settled() { [ "$(q "$1" "SELECT status || ' ' || NOT EXISTS (SELECT 1 FROM settle.cycle c WHERE c.run_by <> 'worker')
                         FROM settle.payment WHERE transaction_id = '$2'")" = "settled true" ]; }
state() { q "$1" "SELECT state FROM settle_worker_status()"; }
workers_in() { q postgres "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'settle worker' AND datname = '$1'"; }

is "$(q postgres "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'settle launcher'")" "1" \
   "one launcher, connected to no database"
is "$(q postgres "SELECT coalesce(datname, '(none)') FROM pg_stat_activity WHERE backend_type = 'settle launcher'")" "(none)" \
   "(pg_stat_activity shows it without a database)"

# two databases, each with its own worker
q postgres "CREATE DATABASE bank1" >/dev/null
q postgres "CREATE DATABASE bank2" >/dev/null
setup bank1
setup bank2
pay bank1 p1
pay bank2 p2
wait_for 20 settled bank1 p1
ok $? "bank1's payment is settled by a worker"
wait_for 20 settled bank2 p2
ok $? "bank2's payment is settled by a worker"
is "$(workers_in bank1) $(workers_in bank2)" "1 1" "one worker in each"
is "$(q bank1 "SELECT database || ' ' || state || ' ' || (pid IS NOT NULL) FROM settle_worker_status()")" "bank1 running true" \
   "settle_worker_status() in bank1 is bank1's worker"
# (a worker reports running from its first round on: wait for both, the states are what is checked)
all_states() { q bank2 "SELECT database || ' ' || state FROM settle_worker_status(all_databases => true) ORDER BY database"; }
both_running() { [ "$(all_states)" = "$(printf 'bank1 running\nbank2 running\npostgres not_installed')" ]; }
wait_for 20 both_running
is "$(all_states)" \
   "$(printf 'bank1 running\nbank2 running\npostgres not_installed')" \
   "settle_worker_status(all_databases => true): every database the launcher serves, with its state"
is "$(q bank1 "SELECT value FROM settle.metrics WHERE metric = 'settle_worker_served'")" "1" "metric settle_worker_served is 1"
[ "$(q bank2 "SELECT value FROM settle.metrics WHERE metric = 'settle_worker_starts_total'")" -ge 1 ]
ok $? "metric settle_worker_starts_total counts bank2's worker starts"
is "$(q bank2 "SELECT worker_enabled AND worker_running FROM settle_gateway_health()")" "t" "settle_gateway_health() says bank2 is served and its worker runs"

# a third database while running: a worker within seconds
q postgres "CREATE DATABASE bank3" >/dev/null
setup bank3
served3() { [ "$(state bank3)" = running ] && [ "$(workers_in bank3)" = 1 ]; }
wait_for 30 served3
ok $? "CREATE EXTENSION in a third database while running: a worker within seconds" || q bank1 "SELECT database, state, starts FROM settle_worker_status(true)" | sed 's/^/#   /'
pay bank3 p3
wait_for 20 settled bank3 p3
ok $? "and it settles there"
cluster_psql "$P" -d bank3 -At -c "SET settle.allow_drop = on" -c "DROP EXTENSION settle CASCADE" >/dev/null
left3() { [ "$(workers_in bank3)" = 0 ] && [ "$(q bank1 "SELECT state FROM settle_worker_status(true) WHERE database = 'bank3'")" = not_installed ]; }
wait_for 30 left3
ok $? "DROP EXTENSION: the worker leaves (state not_installed)"
grep -q 'settle worker: extension settle was dropped from database "bank3"; leaving' "$TMP/db/server.log"
ok $? "and says so"
setup bank3
wait_for 30 served3
ok $? "CREATE EXTENSION again: a worker again" || q bank1 "SELECT database, state, starts FROM settle_worker_status(true)" | sed 's/^/#   /'

# DROP DATABASE of a served database: its worker is stopped first, nothing waits
start=$(date +%s%N)
q postgres "DROP DATABASE bank2" >"$TMP/drop.out" 2>&1
ok $? "DROP DATABASE of a database with a running worker succeeds" || sed 's/^/#   /' "$TMP/drop.out"
[ $(( ($(date +%s%N) - start) / 1000000 )) -lt 4000 ]
ok $? "without waiting out the 5 s PostgreSQL gives other sessions"
gone2() { [ "$(q bank1 "SELECT count(*) FROM settle_worker_status(true) WHERE database = 'bank2'")" = 0 ] && [ "$(workers_in bank2)" = 0 ]; }
wait_for 30 gone2
ok $? "its worker is gone and its slot freed"

# a served database as a template: the worker steps aside, then comes back
q postgres "CREATE DATABASE bank1_copy TEMPLATE bank1" >"$TMP/copy.out" 2>&1
ok $? "CREATE DATABASE ... TEMPLATE a database with a running worker works" || sed 's/^/#   /' "$TMP/copy.out"
back1() { [ "$(state bank1)" = running ] && [ "$(workers_in bank1)" = 1 ]; }
# (the launcher starts it again at its next look at pg_database, every 5 s, or after the 10 s
# delay of a worker that exited unexpectedly: a bound for a loaded machine)
wait_for 30 back1
ok $? "and bank1's worker comes back"
copy_served() { [ "$(state bank1_copy)" = running ]; }
wait_for 30 copy_served
ok $? "the copy (it has the extension) gets a worker of its own"
pay bank1 p1b
wait_for 20 settled bank1 p1b
ok $? "bank1 settles again"

# settle.database as an allow-list, naming a database that does not exist
# 1.1's install script still refuses a database other than settle.database (SE150)
q postgres "CREATE DATABASE old11" >/dev/null
q postgres "ALTER SYSTEM SET settle.database = 'old11'" >/dev/null
q postgres "SELECT pg_reload_conf()" >/dev/null
sleep 0.5
q old11 "CREATE EXTENSION settle VERSION '1.1'" >/dev/null
ok $? "a database on 1.1's SQL (installed while settle.database names it alone)"
q postgres "ALTER SYSTEM SET settle.database = 'bank1, old11, nosuchdb'" >/dev/null
q postgres "SELECT pg_reload_conf()" >/dev/null
stopped3() { [ "$(workers_in bank3)" = 0 ] && [ "$(state bank3)" = stopped ]; }
wait_for 30 stopped3
ok $? "a database left out of settle.database: its worker is stopped (state stopped)"
q old11 "SELECT settle_create_participant(p) FROM unnest(ARRAY['l_a','l_b']) p" >/dev/null
q old11 "SELECT settle_create_account(p || '_usd', p, 'USD', opening_balance => 1000) FROM unnest(ARRAY['l_a','l_b']) p" >/dev/null
pay old11 p11
wait_for 20 settled old11 p11
ok $? "gets a worker that settles there"
is "$(q old11 "SELECT count(*) FROM settle_worker_status()")" "1" "settle_worker_status() of 1.1's SQL answers with the new library"
sleep 1
starts_before=$(grep -c 'settle worker started in database' "$TMP/db/server.log")
sleep 6
is "$(grep -c 'settle worker started in database' "$TMP/db/server.log")" "$starts_before" \
   "no worker restarts while nothing changes (no restart loop for the missing database)"
is "$(grep -c 'settle.database names database "nosuchdb", which does not exist' "$TMP/db/server.log")" "1" \
   "the missing database is reported once"
is "$(grep -c 'FATAL' "$TMP/db/server.log")" "$(grep -c 'FATAL:  terminating background worker "settle worker' "$TMP/db/server.log")" \
   "no FATAL but workers stopped on purpose"
out=$(psql -X -h 127.0.0.1 -p "$P" -U postgres -d bank1_copy -At -c "SET client_min_messages = notice" \
      -c "SET settle.allow_drop = on" -c "DROP EXTENSION settle CASCADE" -c "CREATE EXTENSION settle" 2>&1)
echo "$out" | grep -q 'settle.database does not list database "bank1_copy"'
ok $? "CREATE EXTENSION in a database settle.database leaves out says it will have no worker (a NOTICE, not SE150)"
is "$(workers_in bank1_copy)" "0" "and it gets none"
q postgres "ALTER SYSTEM RESET settle.database" >/dev/null
q postgres "SELECT pg_reload_conf()" >/dev/null
wait_for 30 served3
ok $? "settle.database reset: every database with settle is served again"
done_testing
