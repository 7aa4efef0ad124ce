#!/bin/bash
# Upgrades (docs/OPERATIONS.md, "Upgrades"):
#   - each released version older than the current one is installed, loaded
#     with payments, cycles, seals, and updated with ALTER EXTENSION settle
#     UPDATE; the upgraded database must then have exactly the objects of a
#     fresh install (every function, table, column, constraint, index,
#     trigger, policy, view, type and privilege: test/lib/extension_catalog.sql),
#     verify clean, and go on settling;
#   - a released version's install script is frozen: src/sql/*.sql must
#     still assemble into it;
#   - the comparison itself can fail: a changed comment and a dropped index
#     in one of two fresh installs are both reported;
#   - the upgrade into the version in development is built (tools/sql-upgrade.pl):
#     its re-runnable part, run again over a fresh install, changes nothing,
#     and a function written without OR REPLACE stops the build.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/scratch.sh
. test/lib/tap.sh

scratch upgrade
scratch_ports P 55560
scratch_cluster "$TMP/db"
cluster_init "$TMP/db" "$P" "settle.worker_enabled = off" || exit 1
cluster_start "$TMP/db" || exit 1
q() { local db=$1; shift; cluster_psql "$P" -d "$db" -At -c "$1"; }
catalog() { cluster_psql "$P" -d "$1" -At -f test/lib/extension_catalog.sql; }

CURRENT=$(sed -n "s/^default_version = '\(.*\)'/\1/p" settle.control)

# the comparison can fail
q postgres "CREATE DATABASE fresh_a" >/dev/null
q postgres "CREATE DATABASE fresh_b" >/dev/null
q fresh_a "CREATE EXTENSION settle" >/dev/null
q fresh_b "CREATE EXTENSION settle" >/dev/null
catalog fresh_a >"$TMP/fresh_a.txt"
catalog fresh_b >"$TMP/fresh_b.txt"
[ "$(wc -l <"$TMP/fresh_a.txt")" -gt 300 ] && cmp -s "$TMP/fresh_a.txt" "$TMP/fresh_b.txt"
ok $? "two fresh installs of $CURRENT have the same $(wc -l <"$TMP/fresh_a.txt") catalog lines"
q fresh_b "COMMENT ON FUNCTION settle_seal() IS 'changed'; DROP INDEX settle.batch_outbox" >/dev/null
catalog fresh_b >"$TMP/fresh_b2.txt"
changed=$(diff "$TMP/fresh_a.txt" "$TMP/fresh_b2.txt" | grep '^[<>]' | grep -c 'settle_seal()\|batch_outbox')
[ "$changed" -ge 2 ]
ok $? "a changed comment and a dropped index are both found by the comparison ($changed lines)"

# the re-runnable part of the built upgrade (functions, views, comments,
# grants) leaves a fresh install exactly as it was
q postgres "CREATE DATABASE fresh_c" >/dev/null
q fresh_c "CREATE EXTENSION settle" >/dev/null
# (outside an extension script: its two substitutions made here)
extschema=$(q fresh_c "SELECT extnamespace::regnamespace FROM pg_extension WHERE extname = 'settle'")
perl tools/sql-upgrade.pl --rerun-only $(ls src/sql/*.sql | sort) |
    sed -e 's|MODULE_PATHNAME|$libdir/settle|g' -e "s|@extschema@|$extschema|g" >"$TMP/rerun.sql"
ok $? "tools/sql-upgrade.pl lists the re-runnable statements of src/sql/*.sql"
cluster_psql "$P" -d fresh_c -q -v ON_ERROR_STOP=1 -1 -f "$TMP/rerun.sql" >"$TMP/rerun.log" 2>&1
ok $? "the re-runnable statements run again over a fresh $CURRENT ($(grep -c 'CREATE OR REPLACE' "$TMP/rerun.sql") functions and views)"
tail -3 "$TMP/rerun.log" | sed 's/^/#   /'
catalog fresh_c >"$TMP/fresh_c.txt"
diff "$TMP/fresh_a.txt" "$TMP/fresh_c.txt" >"$TMP/fresh_c.diff"
ok $? "and leave its catalog unchanged"
head -10 "$TMP/fresh_c.diff" | sed 's/^/#   /'
# what may not be re-run stops the build instead of being left out quietly
mkdir -p "$TMP/gen"
printf 'CREATE FUNCTION settle.f() RETURNS int LANGUAGE sql AS $$ SELECT 1; $$;\n' >"$TMP/gen/10_plain.sql"
printf 'CREATE EXTENSION IF NOT EXISTS plpgsql;\n' >"$TMP/gen/20_unknown.sql"
: >"$TMP/gen/1.1--1.2.sql"
out=$(perl tools/sql-upgrade.pl "$TMP/gen/1.1--1.2.sql" "$TMP/gen/10_plain.sql" 2>&1 >/dev/null)
[ $? != 0 ] && echo "$out" | grep -q 'CREATE FUNCTION without OR REPLACE'
ok $? "a CREATE FUNCTION without OR REPLACE stops the build ($out)"
out=$(perl tools/sql-upgrade.pl "$TMP/gen/1.1--1.2.sql" "$TMP/gen/20_unknown.sql" 2>&1 >/dev/null)
[ $? != 0 ] && echo "$out" | grep -q 'unknown kind'
ok $? "so does a statement of a kind not listed as re-runnable or install-only"
# a built upgrade is not hand-edited: the installed script is what the generator makes
for u in src/sql/updates/*--"$CURRENT".sql; do
    [ -e "$u" ] || continue
    up="settle--$(basename "$u")"
    [ -e "src/sql/releases/$up" ] && continue
    perl tools/sql-upgrade.pl "$u" $(ls src/sql/*.sql | sort) | cmp -s - "$("$PGBIN/pg_config" --sharedir)/extension/$up"
    ok $? "the installed $up is the one built from $u and src/sql/*.sql ($(grep -cv '^\s*\(--.*\)\?$' "$u") hand-written lines)"
done

# a released version's install script is frozen
if [ -f "src/sql/releases/settle--$CURRENT.sql" ]; then
    cat $(ls src/sql/*.sql | sort) | cmp -s - "src/sql/releases/settle--$CURRENT.sql"
    ok $? "src/sql/*.sql still assemble into the frozen install script of $CURRENT"
else
    echo "# $CURRENT is not released yet: its install script is built from src/sql/*.sql"
fi

# every released version older than the current one (src/sql/releases/), updated
older=0
for f in src/sql/releases/settle--*.sql; do
    [ -e "$f" ] || continue
    v=$(basename "$f" .sql); v=${v#settle--}
    case "$v" in *--*|"$CURRENT") continue ;; esac
    older=$((older + 1))
    db="up_$(echo "$v" | tr -c 'a-z0-9\n' '_')"
    q postgres "CREATE DATABASE $db" >/dev/null
    q "$db" "CREATE EXTENSION settle VERSION '$v'" >/dev/null
    ok $? "installed settle $v"
    # each step in its own transaction, as a worker and a seal job would run
    # them (a seal sees only what committed before it), on this library:
    # it runs the older release's SQL objects (COMPATIBLE_SQL)
    q "$db" "SELECT settle_create_participant(p) FROM unnest(ARRAY['u_a','u_b','u_c']) p" >/dev/null &&
    q "$db" "SELECT settle_create_account(p || '_usd', p, 'USD', opening_balance => 1000) FROM unnest(ARRAY['u_a','u_b','u_c']) p" >/dev/null &&
    q "$db" "SELECT count(*) FROM (SELECT settle_submit('t' || i, 1 + i, 'USD', 'USD', 'u_a_usd', 'u_b_usd', 'u_b', 'k' || i)
                                     FROM generate_series(1, 20) i) s" >/dev/null
    ok $? "loaded $v with participants, accounts and 20 payments"
    is "$(q "$db" "SELECT settled FROM settle_run_cycle()")" "20" "the new library runs a cycle on $v's SQL: 20 settled"
    q "$db" "SELECT settle_submit('q1', 5, 'USD', 'USD', 'u_b_usd', 'u_c_usd', 'u_c', 'kq1')" >/dev/null
    sealed=$(q "$db" "SELECT sum(sealed) FROM settle_seal()")
    [ "${sealed:-0}" -gt 20 ] 2>/dev/null
    ok $? "a seal in its own transaction sealed what $v had written (${sealed:-nothing} rows)"
    is "$(q "$db" "SELECT count(*) FROM settle_verify()")" "0" "settle_verify() is clean on $v before the update"
    q "$db" "ALTER EXTENSION settle UPDATE" >/dev/null
    ok $? "ALTER EXTENSION settle UPDATE from $v"
    is "$(q "$db" "SELECT extversion FROM pg_extension WHERE extname = 'settle'")" "$CURRENT" "$v is now $CURRENT"
    catalog "$db" >"$TMP/$db.txt"
    diff "$TMP/fresh_a.txt" "$TMP/$db.txt" >"$TMP/$db.diff"
    ok $? "the database updated from $v has exactly the objects of a fresh $CURRENT"
    head -20 "$TMP/$db.diff" | sed 's/^/#   /'
    is "$(q "$db" "SELECT count(*) FROM settle_verify()")" "0" "settle_verify() is clean after the update (chains sealed under $v included)"
    is "$(q "$db" "SELECT settled FROM settle_run_cycle()")" "1" "and the queued payment settles after it"
done
[ "$older" = 0 ] && echo "# no released version older than $CURRENT in src/sql/releases/: nothing to update from yet"
done_testing
