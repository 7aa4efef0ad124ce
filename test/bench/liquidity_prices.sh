#!/bin/bash
# The cost of recording each cycle's liquidity prices (issue #21,
# docs/ALGORITHM.md "Liquidity prices and funding advice"): the same cycle
# on the same queue with settle.liquidity_prices off (baseline) and on,
# alternating, each REPEAT times (default 3); the wall time of
# settle_run_cycle() each, then the median and range of both and their
# ratio.  Every run is one transaction rolled back after the cycle, so each
# starts from the same balances and queue.  Part of make bench (Makefile);
# by itself:
#   PGBIN=... bash test/bench/liquidity_prices.sh [payments] [accounts]
# Must print a ratio below 1.05 (the issue's bound: < 5% of cycle time).
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/scratch.sh

N=${1:-${BENCH_PRICES_N:-20000}}
A=${2:-${BENCH_PRICES_ACCOUNTS:-1000}}
REPEAT=${BENCH_PRICES_REPEAT:-3}
scratch bench-prices
scratch_ports P 55640
scratch_cluster "$TMP/c"
cluster_init "$TMP/c" "$P" "settle.worker_enabled = off" "fsync = on" "settle.solver_time_limit = 2s" || exit 1
cluster_start "$TMP/c" || exit 1
q() { cluster_psql "$P" -d postgres -At "$@"; }

q -c "CREATE EXTENSION settle" >/dev/null
# A accounts with little liquidity; N payments among them in rings and
# random pairs, so that many accounts' limits bind (their prices are > 0)
q -c "SELECT count(*) FROM (SELECT settle_create_participant('bp' || i) FROM generate_series(1, $A) i) x" >/dev/null
q -c "SELECT count(*) FROM (SELECT settle_create_account('bp' || i || '_usd', 'bp' || i, 'USD',
        opening_balance => (100 + (i * 7919) % 900)::numeric) FROM generate_series(1, $A) i) x" >/dev/null
cat >"$TMP/run.sql" <<EOF
BEGIN;
SELECT setseed(0.5);
SELECT count(*) FROM settle_submit_bulk((SELECT jsonb_agg(jsonb_build_object(
    'transaction_id', 'b' || g, 'amount', (10 + floor(random() * 400))::text, 'source_currency', 'USD',
    'destination_currency', 'USD', 'source_account', 'bp' || s || '_usd', 'destination_account', 'bp' || d || '_usd',
    'counterparty_id', 'bp' || d, 'idempotency_key', 'bk' || g))
  FROM (SELECT g, 1 + floor(random() * $A)::int AS s, 1 + floor(random() * ($A - 1))::int AS o
          FROM generate_series(1, $N) g) x,
       LATERAL (SELECT 1 + (s + o - 1) % $A AS d) y)) \g /dev/null
SET LOCAL settle.liquidity_prices = :mode;
SELECT clock_timestamp() AS t0 \gset
SELECT settle_run_cycle() IS NOT NULL AS ran \g /dev/null
SELECT round((extract(epoch FROM clock_timestamp() - :'t0') * 1000)::numeric, 1) AS ms,
       (SELECT count(*) FROM settle.liquidity_price) AS prices,
       (SELECT settled FROM settle.cycle ORDER BY cycle_id DESC LIMIT 1) AS settled;
ROLLBACK;
EOF
off=() on=()
echo "# liquidity prices: $N payments among $A accounts, one cycle per run, $REPEAT runs each way, alternating"
for r in $(seq 1 "$REPEAT"); do
    for mode in off on; do
        line=$(q -v mode="$mode" -f "$TMP/run.sql" | tail -1)
        IFS='|' read -r ms prices settled <<<"$line"
        echo "#   run $r, prices $mode: cycle $ms ms, $settled settled, $prices price rows"
        if [ "$mode" = off ]; then off+=("$ms"); else on+=("$ms"); fi
    done
done
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }
range() { printf '%s\n' "$@" | sort -g | awk 'NR==1{lo=$1} {hi=$1} END {print lo "-" hi}'; }
m_off=$(median "${off[@]}") m_on=$(median "${on[@]}")
ratio=$(awk -v a="$m_on" -v b="$m_off" 'BEGIN {printf "%.3f", a / b}')
echo "liquidity_prices_off_ms median $m_off range $(range "${off[@]}")"
echo "liquidity_prices_on_ms median $m_on range $(range "${on[@]}")"
echo "liquidity_prices_ratio $ratio (on / off, medians; bound 1.05)"
awk -v r="$ratio" 'BEGIN {exit !(r < 1.05)}'
