#!/bin/bash
# An idle server writes nothing (issue #29, item 3): with deferred payments in
# the queue and nothing else happening, the worker's cycles and seal runs
# leave settle.seal_run, settle.cycle, settle.event and settle.cycle_total
# (the metrics' totals) unchanged for a minute (IDLE_SECONDS), and count
# what they did not write instead.  A new payment is then settled and sealed
# as before.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/scratch.sh
. test/lib/tap.sh

IDLE_SECONDS=${IDLE_SECONDS:-60}
scratch idle
scratch_ports P 55600
scratch_cluster "$TMP/db"
cluster_init "$TMP/db" "$P" "settle.cycle_interval = 200ms" "settle.full_cycle_interval = 1s" || exit 1
cluster_start "$TMP/db" || exit 1
q() { cluster_psql "$P" -d postgres -At -c "$1"; }

q "CREATE EXTENSION settle" >/dev/null
q "SELECT settle_create_participant(p) FROM unnest(ARRAY['i_a','i_b']) p" >/dev/null
q "SELECT settle_create_account(p || '_usd', p, 'USD', opening_balance => 100000) FROM unnest(ARRAY['i_a','i_b']) p" >/dev/null
# a wire costs more than a small payment's wait until a far deadline: deferred
q "SELECT settle_set_wire_fee('USD', 25)" >/dev/null
q "SELECT settle_submit('far_' || i, 1, 'USD', 'USD', 'i_a_usd', 'i_b_usd', 'i_b', 'kfar_' || i,
                        deadline => now() + interval '30 days') FROM generate_series(1, 3) i" >/dev/null

sealed_all() { [ "$(q "SELECT (SELECT count(*) FROM settle.event) = (SELECT count(*) FROM settle.event_seal)")" = t ]; }
wait_for 20 sealed_all
ok $? "the worker seals what the setup wrote"
counts() {
    q "SELECT (SELECT count(*) FROM settle.seal_run) || ' ' || (SELECT count(*) FROM settle.cycle) || ' '
              || (SELECT count(*) FROM settle.event) || ' ' || (SELECT coalesce(sum(cycles), 0) FROM settle.cycle_total) || ' '
              || (SELECT count(*) FROM settle.ledger_seal) || ' ' || (SELECT count(*) FROM settle.event_seal)"
}
# settled: the last seal run that sealed something is behind us
sleep 1
before=$(counts)
st_before=$(q "SELECT cycles_unchanged || ' ' || seals_unchanged FROM settle_worker_status()")
sleep "$IDLE_SECONDS"
is "$(q "SELECT count(*) FROM settle.payment WHERE status = 'queued'")" "3" "the deferred payments are still queued"
is "$(counts)" "$before" \
   "idle for ${IDLE_SECONDS}s: no seal run, cycle, event or cycle total row written (seal_run cycle event totals ledger_seal event_seal)"
read -r cu0 su0 <<<"$st_before"
read -r cu1 su1 <<<"$(q "SELECT cycles_unchanged || ' ' || seals_unchanged FROM settle_worker_status()")"
[ "$((cu1 - cu0))" -ge $((IDLE_SECONDS * 2)) ]
ok $? "the worker kept cycling meanwhile: $((cu1 - cu0)) cycles that changed nothing, counted"
[ "$((su1 - su0))" -ge $((IDLE_SECONDS * 2)) ]
ok $? "and sealing: $((su1 - su0)) seal runs that found nothing, counted"
is "$(q "SELECT value >= $su1 FROM settle.metrics WHERE metric = 'settle_worker_seals_unchanged_total'")" "t" \
   "settle_worker_seals_unchanged_total has them"

# something new is settled and sealed as before, and the chains verify
q "SELECT settle_submit('now_1', 500, 'USD', 'USD', 'i_a_usd', 'i_b_usd', 'i_b', 'know_1')" >/dev/null
new_sealed() { [ "$(q "SELECT count(*) FROM settle.ledger_seal")" -ge 2 ] && sealed_all; }
wait_for 20 new_sealed
ok $? "a new payment is settled and sealed"
read -r runs0 _ <<<"$before"
[ "$(q "SELECT count(*) FROM settle.seal_run")" -gt "$runs0" ]
ok $? "with a seal run for what it wrote"
is "$(q "SELECT count(*) FROM settle_verify()")" "0" "settle_verify() is clean"
done_testing
