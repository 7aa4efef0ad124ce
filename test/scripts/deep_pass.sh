#!/bin/bash
# The deep pass on a stuck queue (issue #27, docs/CYCLE.md "The deep pass"),
# with the worker: a gridlocked queue of 1,000 payments between 50
# participants, each with 5% of its outflow (test/solver/workload.h's
# reference workload, one currency, generated in SQL with a fixed seed).
# The real-time cycles run as a large queue under a tight budget does: the
# solver cut short (settle.solver_time_limit = 1ms, no MIP), so the greedy
# fallback chooses.  They settle part of the queue and then leave the rest
# stuck; the deep pass runs between cycles on the stuck queue; the next
# cycle takes its hint and settles more than the real-time cycles could,
# with every account still within its limit.  Then, with the deep pass
# off, the same queue stays stuck (the control).  (When the real-time solve
# is not cut short, what it leaves of the reference instances has no
# selection the deep pass finds either: docs/ALGORITHM.md, "The deep pass".)  Only bounds a slow
# machine cannot break: no timings are asserted.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/scratch.sh
. test/lib/tap.sh

scratch deep_pass
scratch_ports P 55760
scratch_cluster "$TMP/db"
cluster_init "$TMP/db" "$P" "settle.database = postgres" "settle.worker_enabled = off" \
    "settle.cycle_interval = 200ms" "settle.stall_backoff_max = 200ms" "settle.deep_after_cycles = 2" \
    "settle.deep_interval = 100ms" "settle.deep_budget = 3s" \
    "settle.solver_time_limit = 1ms" "settle.mip_max_payments = 0" || exit 1
cluster_start "$TMP/db" || exit 1
q() { cluster_psql "$P" -d postgres -At -c "$1"; }
setting() {  # setting NAME VALUE: ALTER SYSTEM and reload
    q "ALTER SYSTEM SET $1 = '$2'" >/dev/null && q "SELECT pg_reload_conf()" >/dev/null && sleep 0.5
}
is_now() { test "$(q "$2")" = "$1"; }
q "CREATE EXTENSION settle" >/dev/null

# queue QUEUE_PREFIX SEED: 50 participants, 1,000 due payments (log-normal amounts, median 1,000.00,
# priorities 1..9), each account funded with 5% of its outflow
queue() {
    local x=$1 seed=$2
    q "SELECT setseed($seed)" >/dev/null
    cluster_psql "$P" -d postgres -At -c "SELECT setseed($seed)" -c "
      CREATE TABLE gen_$x AS
      SELECT g, s, (s + 1 + floor(random() * 49)::int) % 50 AS d,
             greatest(1.00, round(exp(ln(1000) + sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()))::numeric, 2)) AS amount,
             1 + floor(random() * 9)::int AS priority
        FROM (SELECT g, floor(random() * 50)::int AS s FROM generate_series(1, 1000) g) t" >/dev/null
    q "SELECT settle_create_participant('${x}' || i) FROM generate_series(0, 49) i" >/dev/null
    q "SELECT settle_create_account('${x}' || i || '_usd', '${x}' || i, 'USD',
              opening_balance => coalesce((SELECT round(0.05 * sum(amount), 2) FROM gen_$x WHERE s = i), 0))
         FROM generate_series(0, 49) i" >/dev/null
    q "SELECT count(*) FROM settle_submit_bulk((SELECT jsonb_agg(jsonb_build_object(
          'transaction_id', '${x}t' || g, 'idempotency_key', '${x}k' || g, 'amount', amount::text,
          'source_currency', 'USD', 'destination_currency', 'USD', 'priority', priority,
          'source_account', '${x}' || s || '_usd', 'destination_account', '${x}' || d || '_usd',
          'counterparty_id', '${x}' || d) ORDER BY g) FROM gen_$x))"
}
settled() { q "SELECT count(*) FROM settle.payment WHERE status = 'settled' AND transaction_id LIKE '$1t%'"; }
hint_cycles() { q "SELECT count(*) FROM settle.cycles WHERE solver_method = 'deep pass hint'"; }
below_limit() { q "SELECT count(*) FROM settle.account WHERE kind = 'customer' AND balance - pending_debit < -lower_limit"; }

is "$(queue a 0.27)" 1000 "1,000 payments queued between 50 participants with 5% of their outflow"
setting settle.worker_enabled on
wait_for 60 is_now 1 "SELECT least(count(*), 1) FROM settle.cycles WHERE solver_method = 'deep pass hint'"
ok $? "the worker ran the deep pass on the stuck queue and a cycle took its hint"
first=$(q "SELECT settled FROM settle.cycles ORDER BY cycle_id LIMIT 1")
before=$(q "SELECT coalesce(sum(settled), 0) FROM settle.cycles WHERE cycle_id < (SELECT min(cycle_id) FROM settle.cycles WHERE solver_method = 'deep pass hint')")
hint=$(q "SELECT settled FROM settle.cycles WHERE solver_method = 'deep pass hint' ORDER BY cycle_id LIMIT 1")
echo "# real-time cycles settled $before (the first $first), then the deep pass's hint $hint"
[ "${before:-0}" -gt 0 ] && [ "${hint:-0}" -gt 0 ]
ok $? "the real-time cycles settled part of the queue ($before) and left the rest stuck; the hint settled $hint more"
grep -q "settle deep pass on [0-9]* stuck payment(s): objective .* region(s) improved; the next cycle considers it" "$TMP/db/server.log"
ok $? "the server log has the deep pass's line (objective before and after, regions improved)"
grep -q "settle deep pass: hint taken" "$TMP/db/server.log"
ok $? "and the cycle's line that it took the hint"
is "$(below_limit)" 0 "every account is within its limit"

# the control: the same kind of queue with the deep pass off stays where the real-time cycles leave it
setting settle.worker_enabled off
setting settle.deep_budget 0
n0=$(hint_cycles)
is "$(queue b 0.27)" 1000 "the same queue again, other participants, with settle.deep_budget = 0"
setting settle.worker_enabled on
wait_for 30 is_now 1 "SELECT least(count(*), 1) FROM settle.cycles WHERE settled > 0 AND cycle_id > (SELECT max(cycle_id) FROM settle.cycles WHERE solver_method = 'deep pass hint')"
b1=$(settled b)
sleep 5
b2=$(settled b)
echo "# without the deep pass: $b1 settled, $b2 five seconds of cycles later"
[ "$b1" -gt 0 ] && [ "$b1" = "$b2" ] && [ "$(hint_cycles)" = "$n0" ]
ok $? "without the deep pass the real-time cycles settle $b1 and the rest stays stuck (no hint cycle)"
a=$(settled a)
[ "$a" -gt "$b2" ]
ok $? "with it, the same queue ends with more settled: $a against $b2"
is "$(below_limit)" 0 "every account is still within its limit"
done_testing
