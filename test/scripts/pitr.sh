#!/bin/bash
# Physical backups and point-in-time recovery with pgBackRest
# (docs/OPERATIONS.md, "Physical backups and point-in-time recovery"):
# WAL archiving and a full backup of a server whose worker settles payments;
# payments acknowledged before a target time T and after it; a restore to T
# into a new data directory.  The restored copy has every payment
# acknowledged before T and none after, settle_verify() is clean, and it
# starts fenced: its worker runs no cycle, intake, cycles, the rail and the
# calendar jobs are refused (SE153), until an operator releases it.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/scratch.sh
. test/lib/tap.sh

command -v pgbackrest >/dev/null || { echo "not ok 1 - pgbackrest is installed (test/deps.sh)"; echo "1..1"; exit 1; }
scratch pitr 777
scratch_ports P1 55580 P2 55581
scratch_cluster "$TMP/a" "$TMP/r"

CONF=$TMP/pgbackrest.conf
cat >"$CONF" <<CONF
[global]
repo1-path=$TMP/repo
repo1-retention-full=1
log-path=$TMP/log
lock-path=$TMP/lock
log-level-console=warn
start-fast=y
archive-async=n

[settle]
pg1-path=$TMP/a/data
pg1-port=$P1
pg1-socket-path=$TMP/a
pg1-user=postgres
CONF
mkdir -p "$TMP/repo" "$TMP/log" "$TMP/lock" && chown postgres "$TMP/repo" "$TMP/log" "$TMP/lock" "$CONF"
pgbr() { as_pg pgbackrest --config="$CONF" --stanza=settle "$@"; }

cluster_init "$TMP/a" "$P1" "settle.database = postgres" "settle.cycle_interval = 200ms" \
    "wal_level = replica" "archive_mode = on" \
    "archive_command = 'pgbackrest --config=$CONF --stanza=settle archive-push %p'" || exit 1
cluster_start "$TMP/a" || exit 1
qa() { cluster_psql "$P1" -d postgres -At -c "$1"; }
qa "CREATE EXTENSION settle" >/dev/null
qa "SELECT settle_create_participant(p) FROM unnest(ARRAY['p_a','p_b']) p" >/dev/null
qa "SELECT settle_create_account(p || '_usd', p, 'USD', opening_balance => 100000) FROM unnest(ARRAY['p_a','p_b']) p" >/dev/null
submit() { qa "SELECT count(*) FROM (SELECT settle_submit('$1' || i, 1, 'USD', 'USD', 'p_a_usd', 'p_b_usd', 'p_b', '$1k' || i) FROM generate_series(1, $2) i) s" >/dev/null; }

pgbr stanza-create >"$TMP/stanza.log" 2>&1 && pgbr check >>"$TMP/stanza.log" 2>&1
ok $? "pgBackRest stanza created, WAL archiving checked"
sed 's/^/#   /' "$TMP/stanza.log" | head -5
submit before_ 20
pgbr backup --type=full >"$TMP/backup.log" 2>&1
ok $? "full backup"
sed 's/^/#   /' "$TMP/backup.log" | head -5
submit after_backup_ 30
settled() { [ "$(qa "SELECT count(*) FROM settle.payment WHERE status = 'queued'")" = 0 ]; }
wait_for 20 settled
# the last acknowledged payments before T stay queued: the copy must not settle them while fenced
qa "ALTER SYSTEM SET settle.worker_enabled = off" >/dev/null; qa "SELECT pg_reload_conf()" >/dev/null
sleep 0.5
submit queued_at_t_ 5
sleep 1
T=$(qa "SELECT clock_timestamp()")
sleep 1
submit after_t_ 7
qa "SELECT pg_switch_wal()" >/dev/null
pgbr check >/dev/null 2>&1
ok $? "WAL up to after T archived"
ACKED_BEFORE=$(qa "SELECT count(*) FROM settle.payment WHERE created_at < '$T'")
SETTLED_BEFORE=$(qa "SELECT count(*) FROM settle.payment WHERE created_at < '$T' AND status = 'settled'")

# restore to T into a new data directory
mkdir -p "$TMP/r/data" && chown -R postgres "$TMP/r" && chmod 700 "$TMP/r/data"
pgbr restore --pg1-path="$TMP/r/data" --type=time --target="$T" --target-action=promote >"$TMP/restore.log" 2>&1
ok $? "pgbackrest restore --type=time to T into a new data directory"
sed 's/^/#   /' "$TMP/restore.log" | head -5
{
    echo "port = $P2"
    echo "unix_socket_directories = '$TMP/r'"
    echo "archive_mode = off"
    echo "settle.worker_enabled = on"
} | as_pg tee -a "$TMP/r/data/postgresql.auto.conf" >/dev/null
cluster_start "$TMP/r" || exit 1
qr() { cluster_psql "$P2" -d postgres -At -c "$1"; }
qr_state() { PGOPTIONS="-c statement_timeout=5s" psql -X -q -At -h 127.0.0.1 -p "$P2" -U postgres -d postgres -c '\set VERBOSITY sqlstate' -c "$1" 2>&1 | sed 's/^ERROR: *//'; }
promoted() { [ "$(qr "SELECT pg_is_in_recovery()")" = f ]; }
wait_for 60 promoted
ok $? "the restored copy reached T and was promoted"
is "$(qr "SELECT count(*) FROM settle.payment")" "$ACKED_BEFORE" "every payment acknowledged before T is there ($ACKED_BEFORE), none after"
is "$(qr "SELECT count(*) FROM settle.payment WHERE transaction_id LIKE 'after_t_%'")" "0" "the payments after T are not"
is "$(qr "SELECT count(*) FROM settle.payment WHERE status = 'settled'")" "$SETTLED_BEFORE" "settled as they were at T"
is "$(qr "SELECT count(*) FROM settle_verify(seal => false)")" "0" "settle_verify() is clean on the copy"
is "$(qr "SELECT fenced FROM settle_fence_state()")" "t" "the copy starts fenced (settle_fence_state)"
# the worker's line (src/worker.c): 'settle worker: database "postgres" is fenced, ...'
FENCED_LINE='settle worker: database "[^"]*" is fenced'
fenced_logged() { grep -q "$FENCED_LINE" "$TMP/r/server.log" 2>/dev/null || grep -rq "$FENCED_LINE" "$TMP/r/data/log" 2>/dev/null; }
wait_for 10 fenced_logged
ok $? "its worker says in the server log that the server is fenced"
cycles_before=$(qr "SELECT count(*) FROM settle.cycle")
sleep 2
is "$(qr "SELECT count(*) FROM settle.cycle") $(qr "SELECT count(*) FROM settle.payment WHERE status = 'queued'")" "$cycles_before 5" \
   "its worker runs no cycle: the 5 payments queued at T stay queued"
is "$(qr_state "SELECT settle_run_cycle()")" "SE153" "a cycle by hand is refused (SE153)"
is "$(qr_state "SELECT settle_submit('x1', 1, 'USD', 'USD', 'p_a_usd', 'p_b_usd', 'p_b', 'xk1')")" "SE153" "intake is refused"
is "$(qr_state "SELECT count(*) FROM settle_rail_fetch(10)")" "SE153" "the rail is handed nothing"
is "$(qr_state "SELECT settle_end_of_day()")" "SE153" "the calendar jobs are refused"
qr "ALTER SYSTEM SET settle.fence = off" >/dev/null
qr "SELECT pg_reload_conf()" >/dev/null
released() { [ "$(qr "SELECT count(*) FROM settle.payment WHERE status = 'queued'")" = 0 ]; }
wait_for 20 released
ok $? "released by an operator (settle.fence = off), the worker settles the queue"
is "$(qr "SELECT fenced FROM settle_fence_state()")" "f" "settle_fence_state() says released"
is "$(qr "SELECT count(*) FROM settle_verify()")" "0" "and the copy verifies clean after its first cycles"
done_testing
