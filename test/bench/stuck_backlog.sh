#!/bin/bash
# A stuck backlog against new payments (#18): STUCK_N payments (20,000) wait
# behind ten payers without liquidity, and new, affordable payments between
# ten funded participants arrive at RATE/s (20) for T seconds (4) per round.
# Rounds alternate settle.full_cycle_interval = 0 (before: every cycle
# loads and judges the whole queue) and AFTER (30s, the default: quiet payers skipped),
# PAIRS times (3); each prints the new payments' submit-to-settled P50 / P95
# / max (database timestamps), the worker's cycles and their median size.
#   PGBIN=... bash test/bench/stuck_backlog.sh
# Not part of make test; bounded: one bulk insert, then RATE x T x 2 x PAIRS payments.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/scratch.sh

STUCK_N=${STUCK_N:-20000}
RATE=${RATE:-20}
T=${T:-4}
PAIRS=${PAIRS:-3}
scratch stuck_backlog
scratch_ports P 55780
scratch_cluster "$TMP/db"
cluster_init "$TMP/db" "$P" "settle.database = postgres" "settle.cycle_interval = 60s" "max_connections = 50" || exit 1
cluster_start "$TMP/db" || exit 1
q() { cluster_psql "$P" -d postgres -At "$@"; }
q -c "CREATE EXTENSION settle" >/dev/null
# s1..s10 have nothing and pay n1..n10; n1..n10 are funded and pay each other
q -c "SELECT settle_create_participant(p) FROM unnest(ARRAY(SELECT 's' || g FROM generate_series(1, 10) g UNION ALL SELECT 'n' || g FROM generate_series(1, 10) g)) p" \
  -c "SELECT settle_create_account(p || '_usd', p, 'USD', opening_balance => CASE WHEN p LIKE 'n%' THEN 100000000 ELSE 0 END)
        FROM unnest(ARRAY(SELECT 's' || g FROM generate_series(1, 10) g UNION ALL SELECT 'n' || g FROM generate_series(1, 10) g)) p" >/dev/null
q -c "SELECT count(*) FROM settle_submit_bulk((SELECT jsonb_agg(jsonb_build_object(
        'transaction_id', 'stuck' || g, 'idempotency_key', 'stuck' || g, 'amount', '1.00',
        'source_currency', 'USD', 'destination_currency', 'USD',
        'source_account', 's' || (1 + g % 10) || '_usd', 'destination_account', 'n' || (1 + g % 10) || '_usd',
        'counterparty_id', 'n' || (1 + g % 10))) FROM generate_series(1, $STUCK_N) g))" >/dev/null
wait_stuck() { for _ in $(seq 1 120); do [ "$(q -c "SELECT coalesce(waiting, 0) >= $STUCK_N FROM settle_backlog_status()")" = t ] && return 0; sleep 0.5; done; return 1; }
wait_stuck || { echo "the worker did not take the stuck payments"; exit 1; }
cat >"$TMP/new.pgb" <<'PGB'
\set a random(1, 10)
\set b random(1, 9)
\set b CASE WHEN :b >= :a THEN :b + 1 ELSE :b END
\set k random(1, 9000000000000000000)
SELECT payment_id FROM settle_submit('new_' || :client_id || '_' || :k, 1.00, 'USD', 'USD', 'n' || :a || '_usd',
                                     'n' || :b || '_usd', 'n' || :b, 'new_' || :client_id || '_' || :k);
PGB
echo "| settle.full_cycle_interval | new payments | P50 ms | P95 ms | max ms | worker cycles | median considered | median cycle ms |"
echo "|---|---|---|---|---|---|---|---|"
for pair in $(seq 1 "$PAIRS"); do
    for fci in 0 ${AFTER:-30s}; do
        q -c "ALTER SYSTEM SET settle.full_cycle_interval = '$fci'" -c "SELECT pg_reload_conf()" >/dev/null
        sleep 1
        lo=$(q -c "SELECT max(payment_id) FROM settle.payment")
        clo=$(q -c "SELECT cycles_ok FROM settle_worker_status()")
        "$PGBIN/pgbench" -n -h 127.0.0.1 -p "$P" -U postgres -c 2 -j 2 -R "$RATE" -T "$T" -f "$TMP/new.pgb" postgres >"$TMP/pgb.log" 2>&1
        for _ in $(seq 1 120); do
            [ "$(q -c "SELECT count(*) FROM settle.payment WHERE payment_id > $lo AND status = 'queued'")" = 0 ] && break
            sleep 0.5
        done
        cycles=$(( $(q -c "SELECT cycles_ok FROM settle_worker_status()") - clo ))
        q -F ' | ' -c "SELECT '| $fci', count(*), round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 1),
                              round(percentile_cont(0.95) WITHIN GROUP (ORDER BY ms)::numeric, 1), round(max(ms)::numeric, 1),
                              '$cycles', (SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY considered) FROM settle.cycle c
                                           WHERE c.cycle_id IN (SELECT cycle_id FROM settle.payment WHERE payment_id > $lo)),
                              (SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY cycle_ms)::numeric, 1) FROM settle.cycle c
                                WHERE c.cycle_id IN (SELECT cycle_id FROM settle.payment WHERE payment_id > $lo)) || ' |'
                         FROM (SELECT extract(epoch FROM settled_at - created_at) * 1000 AS ms
                                 FROM settle.payment WHERE payment_id > $lo AND status = 'settled') x"
    done
done
echo "# still waiting: $(q -c "SELECT waiting FROM settle_backlog_status()") (the stuck payments); load average $(cut -d' ' -f1-3 /proc/loadavg)"
