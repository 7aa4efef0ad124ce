#!/bin/bash
# settle's C under valgrind, in a real backend: PostgreSQL in single-user mode
# with settle preloaded runs intake's refusal paths, a cycle and a seal, and
# valgrind must find no invalid read or write in a frame of settle's own
# sources.  Written for a use-after-free: every SPI call returns in SPI's
# procedure context, which SPI_finish frees, and intake built refusal texts
# there after its SPI calls (a transaction_id taken by an earlier payment,
# SE061; a key reused for another payment or another not_before, SE060):
# settle_submit_bulk then read freed memory for its answer and crashed the
# backend under load through the gateway.  The answers are checked too.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/scratch.sh
. test/lib/tap.sh

command -v valgrind >/dev/null || { echo "Bail out! valgrind is missing (test/deps.sh)"; exit 1; }
scratch memory
scratch_ports P 55760
scratch_cluster "$TMP/db"
cluster_init "$TMP/db" "$P" "settle.worker_enabled = off" || exit 1
cluster_start "$TMP/db" || exit 1
Q_PORT=$P
q "CREATE EXTENSION settle" >/dev/null
q "SELECT settle_create_participant('mem_a'), settle_create_participant('mem_b');
   SELECT settle_create_account('mem_a_usd', 'mem_a', 'USD', opening_balance => 1000000);
   SELECT settle_create_account('mem_b_usd', 'mem_b', 'USD');
   CREATE ROLE mem_app LOGIN; SELECT settle_map_role('mem_app', 'mem_a');" >/dev/null || exit 1
# 300 payments the calls below collide with
q "SELECT count(*) FROM settle_submit_bulk((SELECT jsonb_agg(jsonb_build_object('transaction_id', 'mt' || g,
      'idempotency_key', 'mk' || g, 'amount', '1.00', 'source_currency', 'USD', 'destination_currency', 'USD',
      'source_account', 'mem_a_usd', 'destination_account', 'mem_b_usd', 'counterparty_id', 'mem_b'))
    FROM generate_series(1, 300) g))" >/dev/null || exit 1
cluster_stop "$TMP/db"

row() {  # one payment's JSON: transaction id $1, key $2, amount $3 (SQL expressions of g), one line
    echo "jsonb_build_object('transaction_id', $1, 'idempotency_key', $2, 'amount', $3, 'source_currency', 'USD', 'destination_currency', 'USD', 'source_account', 'mem_a_usd', 'destination_account', 'mem_b_usd', 'counterparty_id', 'mem_b')"
}
# single-user mode: one statement per line
cat >"$TMP/script.sql" <<EOF
SET ROLE mem_app
SELECT 'RESULT taken ' || count(*) FILTER (WHERE sqlstate = 'SE061' AND message = 'transaction_id "mt' || ordinal || '" is already used under another idempotency_key') FROM settle_submit_bulk((SELECT jsonb_agg($(row "'mt' || g" "'other' || g" "'1.00'") ORDER BY g) FROM generate_series(1, 300) g))
SELECT 'RESULT conflict ' || count(*) FILTER (WHERE sqlstate = 'SE060' AND message = 'idempotency_key "mk' || ordinal || '" was already used for a different payment') FROM settle_submit_bulk((SELECT jsonb_agg($(row "'mt' || g" "'mk' || g" "'2.00'") ORDER BY g) FROM generate_series(1, 300) g))
SELECT 'RESULT within ' || count(*) FILTER (WHERE sqlstate = 'SE061' AND message LIKE 'transaction_id "w%" is already used under another idempotency_key') FROM settle_submit_bulk((SELECT jsonb_agg($(row "'w' || (g / 2)" "'wk' || g" "'1.00'") ORDER BY g) FROM generate_series(2, 401) g))
SELECT 'RESULT replays ' || count(*) FILTER (WHERE replay) FROM settle_submit_bulk((SELECT jsonb_agg($(row "'mt' || g" "'mk' || g" "'1.00'") ORDER BY g) FROM generate_series(1, 300) g))
SELECT 'RESULT timed ' || count(*) FROM settle_submit_bulk((SELECT jsonb_agg($(row "'nb' || g" "'nbk' || g" "'1.00'") || jsonb_build_object('not_before', '2099-01-01T00:00:00Z') ORDER BY g) FROM generate_series(1, 100) g)) WHERE sqlstate IS NULL
SELECT 'RESULT timed_conflict ' || count(*) FILTER (WHERE sqlstate = 'SE060' AND message = 'idempotency_key "nbk' || ordinal || '" was already used for a different payment') FROM settle_submit_bulk((SELECT jsonb_agg($(row "'nb' || g" "'nbk' || g" "'1.00'") || jsonb_build_object('not_before', '2099-01-02T00:00:00Z') ORDER BY g) FROM generate_series(1, 100) g))
RESET ROLE
SELECT 'RESULT settled ' || settled FROM settle_run_cycle()
SELECT 'RESULT sealed ' || sum(sealed) FROM settle_seal()
SELECT 'RESULT verify ' || count(*) FROM settle_verify()
EOF
chmod 644 "$TMP/script.sql"
mkdir -p "$TMP/vg"
[ "$(id -u)" = 0 ] && chown "$PGRUNAS" "$TMP/vg"
timeout 600 runuser -u "$PGRUNAS" -- valgrind --error-limit=no --num-callers=20 --log-file="$TMP/vg/valgrind.log" \
    "$PGBIN/postgres" --single -D "$TMP/db/data" -c shared_preload_libraries=settle \
    -c settle.worker_enabled=off postgres <"$TMP/script.sql" >"$TMP/out" 2>&1
ok $? "the statements ran in a single-user backend under valgrind" || tail -20 "$TMP/out"
result() { grep -o "RESULT $1 [0-9][0-9]*" "$TMP/out" | awk '{ print $3 }'; }
is "$(result taken)" 300 "300 payments whose transaction_id another key took: SE061, each with its own text"
is "$(result conflict)" 300 "300 keys reused for another amount: SE060, each with its own text"
is "$(result within)" 200 "200 transaction_ids repeated within the call: SE061"
is "$(result replays)" 300 "300 retries answered as replays"
is "$(result timed)" 100 "100 timed payments (not_before) accepted"
is "$(result timed_conflict)" 100 "their retries with another not_before: SE060, each with its own text"
[ "$(result settled)" -gt 0 ]; ok $? "a cycle settles ($(result settled))"
[ "$(result sealed)" -gt 0 ]; ok $? "a seal chains and extends the statement tree ($(result sealed) rows)"
is "$(result verify)" 0 "settle_verify() is clean"
# an error is settle's when one of its frames is in settle's own sources
SOURCES=$(cd src && ls *.c | sed 's/\./\\./' | paste -sd'|')
"${PY:-/usr/bin/python3}" - "$TMP/vg/valgrind.log" "$SOURCES" >"$TMP/ours" <<'PY'
import re, sys
log, sources = open(sys.argv[1]).read(), sys.argv[2]
ours = re.compile(r"\((%s):\d+\)" % sources)
blocks = re.split(r"\n==\d+== \n", log)
for b in blocks:
    if re.search(r"Invalid (read|write)|uninitialised|Conditional jump|Invalid free", b) and ours.search(b):
        print(b)
PY
checked=$?
# the log must exist and show that valgrind ran the backend (its summary line)
grep -q "ERROR SUMMARY" "$TMP/vg/valgrind.log" 2>/dev/null && [ "$checked" = 0 ] && [ ! -s "$TMP/ours" ]
ok $? "valgrind: no invalid read or write in settle's frames" || head -60 "$TMP/ours"
done_testing
