#!/bin/bash
# make bench: settle's benchmarks, each against a baseline run in the same
# process on the same machine.  Starts its own throwaway PostgreSQL 15 cluster
# (fsync on), prints the conditions, runs every benchmark bounded in time and
# writes docs/BENCHMARKS.md and docs/img/bench_*.svg.
#
# Environment:
#   BENCH_T=15          seconds per pgbench point (intake)
#   BENCH_INTAKE_ROUNDS=3  intake rounds (each point once per round, alternating)
#   BENCH_E2E_T=15      seconds of open-loop submit load per end-to-end point
#   BENCH_E2E_RATES="500 2000"  offered submit rates (pgbench --rate), per second
#   BENCH_E2E_INTERVAL=1000     settle.cycle_interval (ms, the idle heartbeat) during the end-to-end points
#   BENCH_E2E_ROUNDS=3  rounds per rate (worker on / submit alone, alternating)
#   BENCH_SWEEP_WINDOWS="0 25 50 75 100 150"  batching windows (ms) swept at BENCH_SWEEP_RATE (2000)/s,
#                       BENCH_SWEEP_T=10 s per point, BENCH_SWEEP_ROUNDS=3
#   BENCH_MAXRATE_STEPS="1000 2000 3000 4000 5000 6000 8000"  offered rates tried, rising, for the highest
#                       rate kept up with, BENCH_MAXRATE_T=10 s each
#   BENCH_CYCLE_NS="1000 10000 100000"   queue sizes of the cycle benchmark
#   BENCH_CYCLE_ROUNDS=3 rounds per size (the same queue; settle and the transfer baseline alternating)
#   BENCH_POST_N=20000  payments per posting round (every side)
#   BENCH_POST_ROUNDS=3 posting rounds (each side once per round, alternating)
#   BENCH_BULK_N=100000 payments per bulk round (both sides)
#   BENCH_BULK_ROUNDS=3 bulk rounds in one session, as many in two (settle and plain alternating)
#   BENCH_OUT=docs      where BENCHMARKS.md and img/ go
#   BENCH_QUALITY=0     skip the solver's quality against CBC (test/solver/quality.sh;
#                       CBC_SECONDS=60, REPEAT=21 are passed through to it)
#   KEEP=1              leave the cluster running and its directory in place
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BENCH=$ROOT/test/bench
cd "$ROOT"
. test/lib/cluster.sh

T=${BENCH_T:-15}
INTAKE_ROUNDS=${BENCH_INTAKE_ROUNDS:-3}
E2E_T=${BENCH_E2E_T:-15}
CYCLE_NS=${BENCH_CYCLE_NS:-"1000 10000 100000"}
POST_N=${BENCH_POST_N:-20000}
POST_ROUNDS=${BENCH_POST_ROUNDS:-3}
BULK_N=${BENCH_BULK_N:-100000}
DOCDIR=${BENCH_OUT:-$ROOT/docs}
PGBENCH=$PGBIN/pgbench
START_S=$(date +%s)

DIR=$(mktemp -d /tmp/settle-bench.XXXXXX)
chmod 755 "$DIR"
RES=$DIR/results            # key=value, one per line
WORK=$DIR/work              # pgbench logs and scratch
mkdir -p "$WORK"
: >"$RES"

PORT=$(free_port 56300)
CONF=(
    "fsync = on"
    "synchronous_commit = on"
    "full_page_writes = on"
    "shared_buffers = 256MB"
    "max_wal_size = 4GB"
    "checkpoint_timeout = 15min"
    "max_connections = 100"
    "settle.worker_enabled = off"
    "settle.database = 'postgres'"
    "log_min_messages = warning"
)

cleanup() {
    if [ "${KEEP:-0}" = 1 ]; then
        echo "cluster left running: $DIR (port $PORT)"
    else
        cluster_stop "$DIR"
        rm -rf "$DIR"
    fi
}
trap cleanup EXIT

log() { printf '%s  %s\n' "$(date -u +%H:%M:%S)" "$*"; }
put() { echo "$1=$2" >>"$RES"; }             # record a result
get() { awk -F= -v k="$1" '$1 == k { v = substr($0, length(k) + 2) } END { print v }' "$RES"; }
loadavg() { cut -d' ' -f1 /proc/loadavg; }
now() { date +%s.%N; }
ms_since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", (b - a) * 1000 }'; }
q() { local db=$1; shift; cluster_psql "$PORT" -d "$db" -At "$@"; }
calc() { awk "BEGIN { printf \"$1\", $2 }"; }
# Repeated points: a key's values over rounds 1..n ("%r" in the key stands for the round),
# the round whose value is the median, and the median and range of values read from stdin
# (put MED = the median, RANGE.min, RANGE.max).
rounds_of() { local r; for r in $(seq 1 "$2"); do get "${1//%r/$r}"; done; }
median_round() { local r; for r in $(seq 1 "$2"); do echo "$(get "${1//%r/$r}") $r"; done | sort -n | awk '{ v[NR] = $2 } END { print v[int((NR + 1) / 2)] }'; }
stats() {
    local vals
    vals=$(sort -n)
    put "$1" "$(awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }' <<<"$vals")"
    put "$2.min" "$(head -1 <<<"$vals")"
    put "$2.max" "$(tail -1 <<<"$vals")"
}

# CPU used by other processes on the machine during a section, in cores:
# machine busy time (/proc/stat) minus this cluster's processes (the
# postmaster, its children, and the children it has reaped) minus this
# script's own children (pgbench, psql, the solver benchmark: `times`).
HZ=$(getconf CLK_TCK)
NCPU=$(nproc)
cpu_now() {
    local busy all ours=0 pm pid clients
    read -r busy all < <(awk '/^cpu / { b = $2 + $3 + $4 + $7 + $8 + $9; print b, b + $5 + $6 }' /proc/stat)
    pm=$(head -1 "$DIR/data/postmaster.pid" 2>/dev/null || echo 0)
    if [ "$pm" != 0 ] && [ -r "/proc/$pm/stat" ]; then
        ours=$(awk '{ print $14 + $15 + $16 + $17 }' "/proc/$pm/stat")
        for pid in $(ps -o pid= --ppid "$pm"); do
            ours=$((ours + $(awk '{ print $14 + $15 }' "/proc/$pid/stat" 2>/dev/null || echo 0)))
        done
    fi
    echo "$busy $all $ours"
}
# this shell's children (pgbench, psql, the solver benchmark) are counted
# with `times`, which must run in this shell, not in a subshell
section_start() { CPU_MARK=$(cpu_now); times >"$WORK/times0"; }
section_end() {     # name: records cpu_other.name (cores busy with other work)
    local b0 a0 o0 b1 a1 o1 c0 c1
    read -r b0 a0 o0 <<<"$CPU_MARK"
    read -r b1 a1 o1 <<<"$(cpu_now)"
    times >"$WORK/times1"
    c0=$(sed -n 2p "$WORK/times0" | awk -v hz="$HZ" '{ t = 0; for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); t += a[1] * 60 + a[2] } printf "%d", t * hz }')
    c1=$(sed -n 2p "$WORK/times1" | awk -v hz="$HZ" '{ t = 0; for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); t += a[1] * 60 + a[2] } printf "%d", t * hz }')
    o0=$((o0 + c0)); o1=$((o1 + c1))
    put "cpu_other.$1" "$(awk -v db=$((b1 - b0)) -v da=$((a1 - a0)) -v ou=$((o1 - o0)) -v n="$NCPU" \
        'BEGIN { v = (da > 0 ? (db - ou) * n / da : 0); if (v < 0) v = 0; printf "%.2f", v }')"
    put "cpu_ours.$1" "$(awk -v da=$((a1 - a0)) -v ou=$((o1 - o0)) -v n="$NCPU" \
        'BEGIN { printf "%.2f", (da > 0 ? ou * n / da : 0) }')"
}

# a fresh database with settle and the benchmark fixtures
new_db() {
    local db=$1
    [ "$db" = postgres ] || q postgres -c "CREATE DATABASE $db"
    q "$db" -c "CREATE EXTENSION settle" -f "$BENCH/setup.sql" -c "SELECT bench.setup_reference()" >/dev/null
}

# pgbench run: name db clients script [extra args]; records tps, p50, p99, n
run_pgbench() {
    local name=$1 db=$2 clients=$3 script=$4
    shift 4
    local threads=2
    [ "$clients" -lt 2 ] && threads=1
    rm -f "$WORK/$name".*
    "$PGBENCH" -h 127.0.0.1 -p "$PORT" -U postgres -n -M prepared -c "$clients" -j "$threads" \
        -l --log-prefix="$WORK/$name" "$@" -f "$script" "$db" >"$WORK/$name.out" 2>&1 || {
        cat "$WORK/$name.out"
        echo "pgbench $name failed" >&2
        exit 1
    }
    local tps failed
    tps=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)/\1/p' "$WORK/$name.out")
    failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$WORK/$name.out")
    put "$name.tps" "$(calc %.0f "$tps")"
    put "$name.failed" "${failed:-0}"
    # per-transaction latency (microseconds, third field of pgbench's log)
    cat "$WORK/$name".[0-9]* | awk '{ print $3 }' | sort -n >"$WORK/$name.lat"
    awk '{ v[NR] = $1 } END {
            n = NR; if (n == 0) { print "0 0 0 0"; exit }
            i50 = int(0.50 * n + 0.5); i99 = int(0.99 * n + 0.5); if (i50 < 1) i50 = 1; if (i99 < 1) i99 = 1
            printf "%d %.2f %.2f %.2f\n", n, v[i50] / 1000, v[i99] / 1000, v[n] / 1000 }' \
        "$WORK/$name.lat" >"$WORK/$name.pct"
    read -r n p50 p99 pmax <"$WORK/$name.pct"
    put "$name.n" "$n"
    put "$name.p50" "$p50"
    put "$name.p99" "$p99"
    # open loop (--rate): schedule lag, how far behind its schedule each transaction started
    # (seventh field of the log, microseconds); pgbench's own average too
    if grep -q '^rate limit schedule lag' "$WORK/$name.out"; then
        cat "$WORK/$name".[0-9]* | awk 'NF >= 7 { print $7 }' | sort -n >"$WORK/$name.lag"
        awk '{ v[NR] = $1 } END { n = NR; if (n == 0) { print "0 0 0"; exit }
                i50 = int(0.50 * n + 0.5); i99 = int(0.99 * n + 0.5); if (i50 < 1) i50 = 1; if (i99 < 1) i99 = 1
                printf "%.2f %.2f %.2f\n", v[i50] / 1000, v[i99] / 1000, v[n] / 1000 }' "$WORK/$name.lag" >"$WORK/$name.lagpct"
        read -r l50 l99 lmax <"$WORK/$name.lagpct"
        put "$name.lag_p50" "$l50"
        put "$name.lag_p99" "$l99"
        put "$name.lag_max" "$lmax"
        put "$name.lag_avg" "$(sed -n 's/^rate limit schedule lag: avg \([0-9.]*\).*/\1/p' "$WORK/$name.out")"
        rm -f "$WORK/$name.lag"
    fi
    rm -f "$WORK/$name".[0-9]* "$WORK/$name.lat"
}

# ---------------------------------------------------------------- conditions
log "settle benchmarks: cluster in $DIR, port $PORT"
cluster_init "$DIR" "$PORT" "${CONF[@]}"
cluster_start "$DIR"

put date "$(date -u '+%Y-%m-%d %H:%M UTC')"
put host "$(hostname)"
put cpu "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
put cores "$(nproc)"
put mem "$(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
put kernel "$(uname -r)"
put pg "$(q postgres -c 'SHOW server_version')"
put glpk "$(dpkg-query -W -f='${Version}' libglpk-dev 2>/dev/null || echo '?')"
put commit "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet 2>/dev/null || echo ' (with uncommitted changes)')"
put load_start "$(cut -d' ' -f1-3 /proc/loadavg)"
SETTINGS=$(q postgres -F ' = ' -c "SELECT name, setting || coalesce(unit, '') FROM pg_settings
    WHERE name IN ('fsync', 'synchronous_commit', 'full_page_writes', 'wal_level', 'shared_buffers', 'jit',
                   'max_wal_size', 'checkpoint_timeout', 'max_connections', 'settle.cycle_interval',
                   'settle.solver_time_limit', 'settle.max_cycle_payments', 'settle.mip_max_payments',
                   'settle.mip_gap', 'settle.delay_cost_bps', 'settle.two_phase', 'settle.max_bulk_rows')
    ORDER BY name")
echo "== conditions"
sed 's/=/: /' "$RES"
echo "$SETTINGS" | sed 's/^/  /'
echo "$SETTINGS" >"$DIR/settings"

# ---------------------------------------------------------------- 1. intake, single row
log "intake, single row: settle_submit against plain INSERT ... ON CONFLICT, ${T}s per point, $INTAKE_ROUNDS rounds"
new_db bench_intake
put load_intake "$(loadavg)"
put intake_rounds "$INTAKE_ROUNDS"
section_start
run_pgbench warm_plain bench_intake 8 "$BENCH/insert.pgb" -T 3
run_pgbench warm_settle bench_intake 8 "$BENCH/submit.pgb" -T 3
# INTAKE_ROUNDS rounds; odd rounds plain, settle, settle, plain; even rounds the
# other way round: drift during the run hits both sides alike
for r in $(seq 1 "$INTAKE_ROUNDS"); do
    if [ $((r % 2)) = 1 ]; then
        run_pgbench "intake_plain_8.r$r" bench_intake 8 "$BENCH/insert.pgb" -T "$T"
        run_pgbench "intake_settle_8.r$r" bench_intake 8 "$BENCH/submit.pgb" -T "$T"
        run_pgbench "intake_settle_32.r$r" bench_intake 32 "$BENCH/submit.pgb" -T "$T"
        run_pgbench "intake_plain_32.r$r" bench_intake 32 "$BENCH/insert.pgb" -T "$T"
    else
        run_pgbench "intake_settle_8.r$r" bench_intake 8 "$BENCH/submit.pgb" -T "$T"
        run_pgbench "intake_plain_8.r$r" bench_intake 8 "$BENCH/insert.pgb" -T "$T"
        run_pgbench "intake_plain_32.r$r" bench_intake 32 "$BENCH/insert.pgb" -T "$T"
        run_pgbench "intake_settle_32.r$r" bench_intake 32 "$BENCH/submit.pgb" -T "$T"
    fi
    for c in 8 32; do
        put "intake_ratio_$c.r$r" "$(calc %.2f "$(get "intake_settle_$c.r$r.tps") / $(get "intake_plain_$c.r$r.tps")")"
    done
done
section_end intake
# per side and measure: the median round (by TPS) gives the figures shown; ratios: median and range
for side in settle plain; do
    for c in 8 32; do
        mr=$(median_round "intake_${side}_$c.r%r.tps" "$INTAKE_ROUNDS")
        for f in tps p50 p99 n failed; do put "intake_${side}_$c.$f" "$(get "intake_${side}_$c.r$mr.$f")"; done
        vals=$(rounds_of "intake_${side}_$c.r%r.tps" "$INTAKE_ROUNDS" | sort -n)
        put "intake_${side}_$c.tps_min" "$(head -1 <<<"$vals")"
        put "intake_${side}_$c.tps_max" "$(tail -1 <<<"$vals")"
    done
done
for c in 8 32; do
    rounds_of "intake_ratio_$c.r%r" "$INTAKE_ROUNDS" | stats "intake_ratio_$c" "intake_ratio_$c"
    log "  $c clients: settle $(get intake_settle_$c.tps) tps (p50 $(get intake_settle_$c.p50) ms, p99 $(get intake_settle_$c.p99) ms), plain $(get intake_plain_$c.tps) tps (p50 $(get intake_plain_$c.p50) ms, p99 $(get intake_plain_$c.p99) ms): ratio median $(get intake_ratio_$c) over $INTAKE_ROUNDS rounds ($(get intake_ratio_$c.min)-$(get intake_ratio_$c.max))"
done

# ---------------------------------------------------------------- 2. intake, bulk
log "intake, bulk: $BULK_N payments a round in JSON arrays of 10,000, ${BENCH_BULK_ROUNDS:-3} rounds in 1 session, as many in 2"
new_db bench_bulk
put load_bulk "$(loadavg)"
plain_bulk_sql() {    # first step [round]: arrays first, first + step, ... of the round
    local k r=${3:-1}
    for k in $(q bench_bulk -c "SELECT chunk FROM bench.bulk_doc WHERE round = $r ORDER BY chunk" | awk -v f="$1" -v s="$2" '(NR - 1) % s == f'); do
        echo "INSERT INTO bench.payment_plain (transaction_id, idempotency_key, amount, source_currency,
              destination_currency, source_account, destination_account, counterparty_id,
              source_participant, priority, deadline)
              SELECT r.transaction_id, r.idempotency_key, (r.amount * 100)::bigint, r.source_currency,
                     r.destination_currency, r.source_account, r.destination_account, r.counterparty_id,
                     split_part(r.source_account, '_', 1), coalesce(r.priority, 5), r.deadline
                FROM bench.bulk_doc d,
                     jsonb_to_recordset(d.doc) AS r(transaction_id text, idempotency_key text, amount numeric,
                         source_currency text, destination_currency text, source_account text,
                         destination_account text, counterparty_id text, priority int, deadline timestamptz)
               WHERE d.round = $r AND d.chunk = $k
                  ON CONFLICT DO NOTHING;"
    done
}
settle_bulk_sql() {
    local k r=${3:-1}
    for k in $(q bench_bulk -c "SELECT chunk FROM bench.bulk_doc WHERE round = $r ORDER BY chunk" | awk -v f="$1" -v s="$2" '(NR - 1) % s == f'); do
        echo "SELECT count(*) FILTER (WHERE sqlstate IS NOT NULL)
                FROM settle_submit_bulk((SELECT doc FROM bench.bulk_doc WHERE round = $r AND chunk = $k));"
    done
}
# BULK_ROUNDS rounds of new payments, one session: plain and settle alternating
# which goes first, the replay right after settle's; then BULK_ROUNDS rounds of
# new payments in two sessions at once, alternating the same way.
BULK_ROUNDS=${BENCH_BULK_ROUNDS:-3}
put bulk_rounds "$BULK_ROUNDS"
bulk_plain() {      # round sessions key
    local t0
    q bench_bulk -c "CHECKPOINT" >/dev/null
    t0=$(now)
    if [ "$2" = 1 ]; then
        plain_bulk_sql 0 1 "$1" | q bench_bulk >/dev/null
    else
        plain_bulk_sql 0 2 "$1" | q bench_bulk >/dev/null &
        plain_bulk_sql 1 2 "$1" | q bench_bulk >/dev/null
        wait
    fi
    put "$3_plain_ms.r$1" "$(ms_since "$t0")"
}
bulk_settle() {     # round sessions key
    local t0
    q bench_bulk -c "CHECKPOINT" >/dev/null
    t0=$(now)
    if [ "$2" = 1 ]; then
        settle_bulk_sql 0 1 "$1" | q bench_bulk >"$WORK/bulk.out"
    else
        settle_bulk_sql 0 2 "$1" | q bench_bulk >"$WORK/bulk.out" &
        settle_bulk_sql 1 2 "$1" | q bench_bulk >"$WORK/bulk_b.out"
        wait
        cat "$WORK/bulk_b.out" >>"$WORK/bulk.out"
    fi
    put "$3_settle_ms.r$1" "$(ms_since "$t0")"
    put "$3_settle_errors.r$1" "$(awk '{ s += $1 } END { print s + 0 }' "$WORK/bulk.out")"
    if [ "$2" = 1 ]; then
        # the same arrays again: every element is a replay (idempotency), nothing written
        t0=$(now)
        settle_bulk_sql 0 1 "$1" | q bench_bulk >/dev/null
        put "$3_replay_ms.r$1" "$(ms_since "$t0")"
    fi
}
section_start
for pass in 1 2; do
    key=bulk; [ "$pass" = 2 ] && key=bulk2
    for i in $(seq 1 "$BULK_ROUNDS"); do
        r=$(( (pass - 1) * BULK_ROUNDS + i ))
        q bench_bulk -c "SELECT bench.generate($BULK_N, $r, 0.42 + $r / 1000.0)" -c "SELECT bench.make_docs($r, 10000)" >/dev/null
        if [ $((i % 2)) = 1 ]; then
            bulk_plain "$r" "$pass" "$key"; bulk_settle "$r" "$pass" "$key"
        else
            bulk_settle "$r" "$pass" "$key"; bulk_plain "$r" "$pass" "$key"
        fi
        for side in plain settle replay; do
            ms=$(get "${key}_${side}_ms.r$r")
            [ -n "$ms" ] && put "${key}_${side}_rate.r$i" "$(calc %.0f "$BULK_N / ($ms / 1000)")"
        done
        put "${key}_ratio.r$i" "$(calc %.2f "$(get "${key}_settle_rate.r$i") / $(get "${key}_plain_rate.r$i")")"
        log "  $pass session(s), round $i: settle_submit_bulk $(get "${key}_settle_rate.r$i")/s$( [ "$pass" = 1 ] && echo " (replays $(get "${key}_replay_rate.r$i")/s)"), plain $(get "${key}_plain_rate.r$i")/s, ratio $(get "${key}_ratio.r$i"); $(get "${key}_settle_errors.r$r") refused"
    done
done
section_end bulk
# medians and ranges over the rounds (the figures shown)
for key in bulk bulk2; do
    fields="settle_rate plain_rate ratio"
    [ "$key" = bulk ] && fields="$fields replay_rate"
    for f in $fields; do rounds_of "${key}_$f.r%r" "$BULK_ROUNDS" | stats "${key}_$f" "${key}_$f"; done
done
put bulk_settle_errors "$(for r in $(seq 1 $((2 * BULK_ROUNDS))); do get "bulk_settle_errors.r$r"; get "bulk2_settle_errors.r$r"; done | awk '{ s += $1 } END { print s + 0 }')"
put bulk_rows "$(q bench_bulk -c "SELECT count(*) FROM settle.payment")"
put bulk_plain_rows "$(q bench_bulk -c "SELECT count(*) FROM bench.payment_plain")"
log "  medians: 1 session: settle_submit_bulk $(get bulk_settle_rate)/s (replays $(get bulk_replay_rate)/s), plain $(get bulk_plain_rate)/s, ratio $(get bulk_ratio) ($(get bulk_ratio.min)-$(get bulk_ratio.max)); 2 sessions: $(get bulk2_settle_rate)/s, plain $(get bulk2_plain_rate)/s, ratio $(get bulk2_ratio) ($(get bulk2_ratio.min)-$(get bulk2_ratio.max)); $(get bulk_rows) rows, $(get bulk_settle_errors) refused"
q postgres -c "DROP DATABASE bench_bulk"

# ---------------------------------------------------------------- 3. cycle (and optimisation in the database)
# One database per N and round: reference workload, 10% liquidity, costs on,
# 30% deferrable; the same queue (same seed) in every round.  Baseline: the
# same queue settled gross, one transfer per transaction (8 clients), from
# the same starting balances.  CYCLE_ROUNDS rounds, alternating which of the
# two goes first; the figures shown are the round with the median cycle time
# (the selection is the same in every round unless a time limit cut the
# solver: cycle_N.same says), with the range of both times.
CYCLE_ROUNDS=${BENCH_CYCLE_ROUNDS:-3}
put cycle_rounds "$CYCLE_ROUNDS"
cycle_settle() {    # n db round
    local n=$1 db=$2 r=$3 k="cycle_$1.r$3" t0
    q "$db" -c "CHECKPOINT" >/dev/null
    t0=$(now)
    q "$db" -F ' ' -c "SELECT considered, settled, deferred, unsettled, round(cycle_ms::numeric, 1),
                              round(solver_ms::numeric, 1), solver_status, replace(solver_method, ' ', '_'),
                              cost, naive_cost, fifo_settled, fifo_cost, settled_value, fifo_value,
                              coalesce(saved_vs_naive_pct, 0), coalesce(lp_bound_pct::text, 'n/a'), wires, naive_wires,
                              fifo_netted_cost, fifo_netted_wires, coalesce(saved_vs_netting_pct::text, 'n/a')
                         FROM settle_run_cycle()" >"$WORK/$k"
    put "$k.wall_ms" "$(ms_since "$t0")"
    read -r considered settled deferred unsettled cms sms sstatus smethod cost naive fifo_n fifo_cost value fifo_value saved lp wires naive_wires netted netted_wires saved_net <"$WORK/$k"
    for f in considered settled deferred unsettled cms sms sstatus smethod cost naive fifo_n fifo_cost value fifo_value saved lp wires naive_wires netted netted_wires saved_net; do
        put "$k.$f" "${!f}"
    done
    put "$k.solver_share" "$(calc %.1f "100 * $sms / $cms")"
}
cycle_transfer() {  # n db round
    local n=$1 db=$2 r=$3 t0
    q "$db" -c "CHECKPOINT" -c "SELECT setval('bench.next_payment', 1, false)" >/dev/null
    t0=$(now)
    run_pgbench "transfer_cycle_$n.r$r" "$db" 8 "$BENCH/transfer.pgb" -t $(( (n + 7) / 8 ))
    put "cycle_$n.r$r.base_ms" "$(ms_since "$t0")"
    put "cycle_$n.r$r.base_posted" "$(q "$db" -c "SELECT count(DISTINCT payment_id) FROM bench.ledger_entry")"
}
for n in $CYCLE_NS; do
    log "cycle: N = $n, $CYCLE_ROUNDS rounds"
    put "load_cycle_$n" "$(loadavg)"
    section_start
    for r in $(seq 1 "$CYCLE_ROUNDS"); do
        db=bench_cycle_$n
        q postgres -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1
        new_db "$db"
        q "$db" -c "SELECT bench.generate($n, 1, 0.42)" -c "SELECT bench.fund(1, 0.10)" \
            -c "SELECT bench.make_docs(1, 10000)" -c "SELECT bench.copy_accounts()" >/dev/null
        nchunks=$(q "$db" -c "SELECT count(*) FROM bench.bulk_doc")
        for k in $(seq 0 $((nchunks - 1))); do
            echo "SELECT count(*) FILTER (WHERE sqlstate IS NOT NULL) FROM settle_submit_bulk((SELECT doc FROM bench.bulk_doc WHERE chunk = $k));"
        done | q "$db" >/dev/null
        q "$db" -c "CHECKPOINT" -c "VACUUM ANALYZE" >/dev/null
        if [ $((r % 2)) = 1 ]; then
            cycle_settle "$n" "$db" "$r"; cycle_transfer "$n" "$db" "$r"
        else
            cycle_transfer "$n" "$db" "$r"; cycle_settle "$n" "$db" "$r"
        fi
        k="cycle_$n.r$r"
        log "  round $r: settle cycle $(get "$k.cms") ms (solver $(get "$k.sms") ms, $(get "$k.sstatus")): $(get "$k.settled") of $(get "$k.considered") settled, $(get "$k.deferred") deferred; cost $(get "$k.cost"), naive $(get "$k.naive") ($(get "$k.saved")% saved), FIFO's payments netted $(get "$k.netted") ($(get "$k.saved_net")% saved), LP bound $(get "$k.lp"); baseline transfers $(get "$k.base_ms") ms for $(get "$k.base_posted") posted"
        [ "${KEEP:-0}" = 1 ] && [ "$r" = "$CYCLE_ROUNDS" ] || q postgres -c "DROP DATABASE $db" >/dev/null
    done
    section_end "cycle_$n"
    # the round with the median cycle time gives the figures; ranges of both times
    mr=$(median_round "cycle_$n.r%r.cms" "$CYCLE_ROUNDS")
    for f in considered settled deferred unsettled cms sms sstatus smethod cost naive fifo_n fifo_cost value fifo_value saved lp wires naive_wires netted netted_wires saved_net solver_share wall_ms base_posted; do
        put "cycle_$n.$f" "$(get "cycle_$n.r$mr.$f")"
    done
    # (the median of cms is the median round's own)
    for f in cms base_ms; do rounds_of "cycle_$n.r%r.$f" "$CYCLE_ROUNDS" | stats "cycle_$n.$f" "cycle_$n.$f"; done
    put "cycle_$n.same" "$( [ "$(for r in $(seq 1 "$CYCLE_ROUNDS"); do get "cycle_$n.r$r.settled"; done | sort -u | wc -l)" = 1 ] && echo yes || echo no)"
    log "  median: cycle $(get "cycle_$n.cms") ms ($(get "cycle_$n.cms.min")-$(get "cycle_$n.cms.max")), baseline $(get "cycle_$n.base_ms") ms ($(get "cycle_$n.base_ms.min")-$(get "cycle_$n.base_ms.max")); same selection every round: $(get "cycle_$n.same")"
done

# ---------------------------------------------------------------- 4. posting
# Enough liquidity for every payment, none deferrable: every side posts all N.
# Three rounds of new payments; in each, the same payments posted three ways, in
# alternating order (odd rounds settle first, even rounds settle last):
#   settle: one cycle; its posting rate is counted on the cycle's time outside
#     the solver (queue load, locks, posting, baselines, record: more than
#     posting alone), and on the client's wall time of the whole call too;
#   set-based SQL: bench.post_set(), the same two legs per payment inserted in
#     one statement and every balance updated once by its net, one transaction;
#   transfer: bench.transfer, one payment per transaction, 8 clients (pgbench).
# Both baselines start from a fresh copy of the accounts (bench.copy_accounts).
log "posting: $POST_N payments per round, $POST_ROUNDS rounds, settle cycle against set-based SQL and per-payment transfer"
new_db bench_post
post_settle() {
    local r=$1 t0
    q bench_post -c "CHECKPOINT" >/dev/null
    t0=$(now)
    q bench_post -F ' ' -c "SELECT settled, round(cycle_ms::numeric, 1), round(solver_ms::numeric, 1)
                              FROM settle_run_cycle()" >"$WORK/post_$r"
    put "post.settle_wall_ms.r$r" "$(ms_since "$t0")"
}
post_set() {
    local r=$1 t0
    q bench_post -c "SELECT bench.copy_accounts()" -c "CHECKPOINT" >/dev/null
    t0=$(now)
    put "post.set_posted.r$r" "$(q bench_post -c "SELECT bench.post_set($r)")"
    put "post.set_ms.r$r" "$(ms_since "$t0")"
}
post_transfer() {
    local r=$1 n=$2
    q bench_post -c "SELECT bench.copy_accounts()" -c "CHECKPOINT" \
        -c "SELECT setval('bench.next_payment', min(id), false) FROM bench.workload WHERE round = $r" >/dev/null
    run_pgbench "transfer_post_$r" bench_post 8 "$BENCH/transfer.pgb" -t $(( (n + 7) / 8 ))
}
post_round() {      # round n baseline: new payments, queued; settled by one cycle (and both baselines)
    local r=$1 n=$2 baseline=$3
    q bench_post -c "SELECT bench.generate($n, $r, $r * 0.01, 0)" -c "SELECT bench.fund($r, 2.0)" \
        -c "SELECT bench.make_docs($r, 10000)" -c "SELECT bench.copy_accounts()" >/dev/null
    local k
    for k in $(q bench_post -c "SELECT chunk FROM bench.bulk_doc WHERE round = $r ORDER BY 1"); do
        echo "SELECT count(*) FILTER (WHERE sqlstate IS NOT NULL) FROM settle_submit_bulk((SELECT doc FROM bench.bulk_doc WHERE round = $r AND chunk = $k));"
    done | q bench_post >/dev/null
    q bench_post -c "CHECKPOINT" -c "VACUUM ANALYZE settle.payment" >/dev/null
    if [ "$baseline" = 0 ]; then
        post_settle "$r"
    elif [ $((r % 2)) = 1 ]; then
        post_settle "$r"; post_set "$r"; post_transfer "$r" "$n"
    else
        post_transfer "$r" "$n"; post_set "$r"; post_settle "$r"
    fi
}
put load_post "$(loadavg)"
put post_rounds "$POST_ROUNDS"
section_start
for r in $(seq 1 "$POST_ROUNDS"); do
    post_round "$r" "$POST_N" 1
    read -r settled cms sms <"$WORK/post_$r"
    put "post.settled.r$r" "$settled"
    put "post.cycle_ms.r$r" "$cms"
    put "post.solver_ms.r$r" "$sms"
    put "post.settle_rate.r$r" "$(calc %.0f "$settled / (($cms - $sms) / 1000)")"
    put "post.settle_rate_wall.r$r" "$(calc %.0f "$settled / ($(get "post.settle_wall_ms.r$r") / 1000)")"
    put "post.set_rate.r$r" "$(calc %.0f "$(get "post.set_posted.r$r") / ($(get "post.set_ms.r$r") / 1000)")"
    put "post.base_rate.r$r" "$(get "transfer_post_$r.tps")"
    put "post.ratio.r$r" "$(calc %.2f "$(get "post.settle_rate.r$r") / $(get "post.base_rate.r$r")")"
    put "post.ratio_set.r$r" "$(calc %.2f "$(get "post.settle_rate.r$r") / $(get "post.set_rate.r$r")")"
    put "post.ratio_wall_set.r$r" "$(calc %.2f "$(get "post.settle_rate_wall.r$r") / $(get "post.set_rate.r$r")")"
    log "  round $r: settle $(get "post.settle_rate.r$r")/s outside the solver ($(get "post.settle_rate_wall.r$r")/s client wall, whole call), set-based SQL $(get "post.set_rate.r$r")/s, transfer $(get "post.base_rate.r$r")/s"
done
section_end post
put post.base_posted "$(q bench_post -c "SELECT count(DISTINCT payment_id) FROM bench.ledger_entry")"
# median and range over the rounds: key.med, key.min, key.max
for k in settle_rate settle_rate_wall set_rate base_rate ratio ratio_set ratio_wall_set; do
    rounds_of "post.$k.r%r" "$POST_ROUNDS" | stats "post.$k.med" "post.$k"
done
log "  medians: settle $(get post.settle_rate.med)/s, set-based $(get post.set_rate.med)/s, transfer $(get post.base_rate.med)/s; ratio to transfer $(get post.ratio.med) ($(get post.ratio.min)-$(get post.ratio.max)), to set-based $(get post.ratio_set.med) ($(get post.ratio_set.min)-$(get post.ratio_set.max))"

# ---------------------------------------------------------------- 5. verify
HAS_VERIFY=$(q bench_post -c "SELECT count(*) FROM pg_proc WHERE proname = 'settle_verify'")
if [ "$HAS_VERIFY" -gt 0 ]; then
    log "verify: growing the ledger to >= 1,000,000 entries"
    r=$((POST_ROUNDS + 1))
    while [ "$(q bench_post -c "SELECT count(*) FROM settle.ledger_entry")" -lt "${BENCH_VERIFY_MIN:-1000000}" ]; do
        post_round "$r" 100000 0
        r=$((r + 1))
    done
    put verify.entries "$(q bench_post -c "SELECT count(*) FROM settle.ledger_entry")"
    q bench_post -c "CHECKPOINT" >/dev/null
    put load_verify "$(loadavg)"
    section_start
    HAS_SEAL=$(q bench_post -c "SELECT count(*) FROM pg_proc WHERE proname = 'settle_seal'")
    if [ "$HAS_SEAL" -gt 0 ]; then
        # sealing (hash-chaining the new entries and events) is separate from checking
        t0=$(now)
        q bench_post -c "SELECT * FROM settle_seal()" >"$WORK/seal.out" 2>&1 || true
        put verify.seal_ms "$(ms_since "$t0")"
    fi
    t0=$(now)
    q bench_post -F ' | ' -c "SELECT * FROM settle_verify()" >"$WORK/verify.out" 2>&1 || true
    put verify.ms "$(ms_since "$t0")"
    section_end verify
    put verify.rate "$(calc %.0f "$(get verify.entries) / ($(get verify.ms) / 1000)")"
    put verify.problems "$(grep -c . "$WORK/verify.out" || true)"
    put verify.output "$(head -5 "$WORK/verify.out" | tr '\n' ';' | sed 's/;*$//' | cut -c1-400)"
    log "  settle_seal(): $(get verify.seal_ms) ms; settle_verify(): $(get verify.entries) entries in $(get verify.ms) ms, $(get verify.problems) problem rows"
else
    put verify.entries "n/a"
    log "verify: settle_verify() not installed: not available yet"
fi
[ "${KEEP:-0}" = 1 ] || q postgres -c "DROP DATABASE bench_post"

# ---------------------------------------------------------------- 6. solver (no database)
# (a) test/solver/bench.sh at the extension's default 500 ms limit, 1k-100k, once;
# (b) test/solver/quality.sh: CBC's 60 s answer and proven bound on the reference
#     instances, settle 3 runs alternating with the solver without its kicks, and
#     the deep pass against time beside CBC stopped at 0.1, 1 and 10 s (issue #27,
#     test/solver/deep_quality.sh; DEEP=0 skips it).
log "solver: test/solver/bench.sh at the default 500 ms limit; quality against CBC (test/solver/quality.sh)"
put load_solver "$(loadavg)"
section_start
bash test/solver/bench.sh 500 100000 >"$WORK/solver.out" 2>&1
kv() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<"$1"; }
while read -r line; do
    case $line in bench\ *) ;; *) continue ;; esac
    n=$(kv "$line" n); l=$(kv "$line" liquidity); c=$(kv "$line" costs)
    key="solver_${n}_${l}_${c}"
    for f in ms status weight_pct_of_lp greedy_ms greedy_weight_pct_of_lp fifo_weight_pct_of_lp settled objective; do
        put "$key.$f" "$(kv "$line" $f)"
    done
done <"$WORK/solver.out"
section_end solver
if [ "${BENCH_QUALITY:-1}" = 1 ]; then
    put load_quality "$(cut -d' ' -f1-3 /proc/loadavg) at start"
    section_start
    bash test/solver/quality.sh "$WORK/quality" >>"$RES" 2>"$WORK/quality.err" || { cat "$WORK/quality.err"; echo "quality.sh failed" >&2; exit 1; }
    section_end quality
    put load_quality "$(get load_quality); $(cut -d' ' -f1-3 /proc/loadavg) at end"
fi
log "  1,000 payments, 10% liquidity, costs on: objective $(get q.1000_0.10_on.settle_objective) (CBC 60 s: $(get q.1000_0.10_on.cbc_objective), bound $(get q.1000_0.10_on.cbc_bound))"

# ---------------------------------------------------------------- 7. end to end
# Open loop: pgbench --rate submits new payments with settle_submit on a fixed
# schedule (8 clients), whether or not earlier ones are done, so a slow server
# shows as schedule lag instead of a lower offered load.  Worker on (woken by
# commits; cycle_interval E2E_INTERVAL ms is only its idle heartbeat), every
# account with ample liquidity, every payment due.  Submit-to-settled latency
# = end of the cycle that settled the payment (settle.cycle.finished_at, just
# before its commit) - its submission (created_at); to the listener's receipt
# = when test/bench/listen.py, LISTENing on settle_settled in its own
# connection, received the notification that named the payment - created_at.
# A client's schedule lag comes on top of both.  Baseline: the same open-loop
# submit load with the worker off, into another database of the same cluster
# (intake alone).  E2E_ROUNDS rounds per rate, alternating the order of the
# two.  Then (a) the batching window swept at 2,000/s (settle.batch_window =
# settle.max_batch_delay = W): latency against savings, and (b) the highest
# offered rate the worker keeps up with, rising in steps.
E2E_RATES=${BENCH_E2E_RATES:-"500 2000"}
E2E_INTERVAL=${BENCH_E2E_INTERVAL:-1000}
E2E_ROUNDS=${BENCH_E2E_ROUNDS:-3}
SWEEP_WINDOWS=${BENCH_SWEEP_WINDOWS:-"0 25 50 75 100 150"}
SWEEP_RATE=${BENCH_SWEEP_RATE:-2000}
SWEEP_T=${BENCH_SWEEP_T:-10}
SWEEP_ROUNDS=${BENCH_SWEEP_ROUNDS:-3}
MAXRATE_STEPS=${BENCH_MAXRATE_STEPS:-"1000 2000 3000 4000 5000 6000 8000"}
MAXRATE_T=${BENCH_MAXRATE_T:-10}
log "end to end: open loop at ${E2E_RATES// //s and }/s, ${E2E_T}s per point, $E2E_ROUNDS rounds, cycle_interval $E2E_INTERVAL ms"
new_db postgres
new_db bench_e2e_base
q postgres -c "SELECT settle_fund_account(account_id, 1000000000, 'bench') FROM settle.account WHERE kind = 'customer'" >/dev/null
q postgres -c "ALTER SYSTEM SET settle.cycle_interval = $E2E_INTERVAL" -c "SELECT pg_reload_conf()" >/dev/null
put e2e_batch_window "$(q postgres -c "SHOW settle.batch_window")"
put e2e_max_batch_delay "$(q postgres -c "SHOW settle.max_batch_delay")"
worker() {      # on|off
    q postgres -c "ALTER SYSTEM SET settle.worker_enabled = $1" -c "SELECT pg_reload_conf()" >/dev/null
    sleep 2
}
window() {      # ms: settle.batch_window = settle.max_batch_delay = ms; "default": both reset;
                # pN: the pacer's own choice, batch_window reset, max_batch_delay = N
    if [ "$1" = default ]; then
        q postgres -c "ALTER SYSTEM RESET settle.batch_window" -c "ALTER SYSTEM RESET settle.max_batch_delay" \
            -c "SELECT pg_reload_conf()" >/dev/null
    elif [ "${1#p}" != "$1" ]; then
        q postgres -c "ALTER SYSTEM RESET settle.batch_window" -c "ALTER SYSTEM SET settle.max_batch_delay = ${1#p}" \
            -c "SELECT pg_reload_conf()" >/dev/null
    else
        q postgres -c "ALTER SYSTEM SET settle.batch_window = $1" -c "ALTER SYSTEM SET settle.max_batch_delay = $1" \
            -c "SELECT pg_reload_conf()" >/dev/null
    fi
}
# One open-loop run with the worker on: key rate seconds.  Records key.tps,
# key.lag_* (run_pgbench) and key.s_* (settlement), key.r_* (listener).
e2e_run() {
    local key=$1 rate=$2 secs=$3 lo lpid
    lo=$(q postgres -c "SELECT coalesce(max(payment_id), 0) FROM settle.payment")
    worker on
    rm -f "$WORK/heard" "$WORK/heard.ready"
    /usr/bin/python3 "$BENCH/listen.py" "$PORT" postgres settle_settled "$WORK/heard" &
    lpid=$!
    for _ in $(seq 1 100); do [ -e "$WORK/heard.ready" ] && break; sleep 0.1; done
    # the gathering time the worker chose, halfway through the load (settle.batch_window ..
    # settle.max_batch_delay, docs/CYCLE.md "Pacing")
    rm -f "$WORK/pace_ms"
    (sleep "$(calc %.1f "$secs / 2")"; q postgres -c "SELECT round(batch_delay_ms::numeric, 1) FROM settle_backlog_status()" >"$WORK/pace_ms") &
    run_pgbench "$key" postgres 8 "$BENCH/submit.pgb" -T "$secs" --rate="$rate"
    wait $!
    put "$key.pace_ms" "$(cat "$WORK/pace_ms")"
    put "$key.end_queued" "$(q postgres -c "SELECT count(*) FROM settle.payment WHERE status = 'queued' AND payment_id > $lo")"
    for _ in $(seq 1 120); do
        [ "$(q postgres -c "SELECT count(*) FROM settle.payment WHERE status = 'queued' AND payment_id > $lo")" = 0 ] && break
        sleep 0.5
    done
    sleep 0.5                   # the last notification reaches the listener
    kill -TERM "$lpid" 2>/dev/null
    wait "$lpid" 2>/dev/null || true
    worker off
    q postgres -F ' ' -c "CREATE TEMP TABLE heard (payment_id bigint, at double precision)" \
        -c "\\copy heard FROM '$WORK/heard' WITH (DELIMITER ' ')" -c "
        WITH p AS (SELECT p.payment_id, p.created_at, c.finished_at,
                          extract(epoch FROM c.finished_at - p.created_at) * 1000 AS ms
                     FROM settle.payment p JOIN settle.cycle c USING (cycle_id)
                    WHERE p.payment_id > $lo AND p.status = 'settled'),
             r AS (SELECT (h.at - extract(epoch FROM p.created_at)) * 1000 AS ms
                     FROM heard h JOIN p USING (payment_id))
        SELECT count(*),
               round((count(*) / extract(epoch FROM max(finished_at) - min(created_at)))::numeric, 0),
               round(percentile_cont(0.50) WITHIN GROUP (ORDER BY ms)::numeric, 1),
               round(percentile_cont(0.95) WITHIN GROUP (ORDER BY ms)::numeric, 1),
               round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 1),
               (SELECT count(*) FROM settle.payment WHERE payment_id > $lo AND status <> 'settled'),
               (SELECT count(*) FROM settle.cycle WHERE finished_at >= (SELECT min(created_at) FROM p)),
               (SELECT round(avg(cycle_ms)::numeric, 1) FROM settle.cycle WHERE finished_at >= (SELECT min(created_at) FROM p)),
               -- what the run's cycles saved against naive batching (one pay-in and one
               -- pay-out wire per participant and currency, spread on gross volume), %
               (SELECT round((100 * (1 - sum(c.cost) / nullif(sum(c.naive_cost), 0)))::numeric, 1)
                  FROM settle.cycle c WHERE c.finished_at >= (SELECT min(created_at) FROM p)),
               (SELECT round(avg(c.settled)::numeric, 1)
                  FROM settle.cycle c WHERE c.finished_at >= (SELECT min(created_at) FROM p) AND c.settled > 0),
               (SELECT round(avg(c.solver_ms)::numeric, 2)
                  FROM settle.cycle c WHERE c.finished_at >= (SELECT min(created_at) FROM p)),
               -- the listener: ids heard (once each?), latency to its receipt
               (SELECT count(DISTINCT payment_id) FROM heard WHERE payment_id IN (SELECT payment_id FROM p)),
               (SELECT count(*) - count(DISTINCT payment_id) FROM heard),
               (SELECT round(percentile_cont(0.50) WITHIN GROUP (ORDER BY ms)::numeric, 1) FROM r),
               (SELECT round(percentile_cont(0.95) WITHIN GROUP (ORDER BY ms)::numeric, 1) FROM r),
               (SELECT round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 1) FROM r)
          FROM p" >"$WORK/$key"
    read -r cnt srate p50 p95 p99 left cycles avg_cycle saved per_cycle avg_solver heard dup r_p50 r_p95 r_p99 <"$WORK/$key"
    for k in cnt srate p50 p95 p99 left cycles avg_cycle saved per_cycle avg_solver; do put "$key.s_$k" "${!k}"; done
    for k in heard dup r_p50 r_p95 r_p99; do put "$key.$k" "${!k}"; done
}
e2e_settle() {  # rate round
    local rate=$1 r=$2 key="e2e_$1.r$2"
    e2e_run "$key" "$rate" "$E2E_T"
    log "  $rate/s round $r: submitted $(get "$key.tps")/s (schedule lag p50 $(get "$key.lag_p50") ms, p99 $(get "$key.lag_p99") ms, max $(get "$key.lag_max") ms); settled $(get "$key.s_cnt") ($(get "$key.s_srate")/s), submit-to-settled p50 $(get "$key.s_p50") ms, p95 $(get "$key.s_p95") ms, p99 $(get "$key.s_p99") ms; listener heard $(get "$key.heard") ($(get "$key.dup") twice), p50 $(get "$key.r_p50") ms, p95 $(get "$key.r_p95") ms, p99 $(get "$key.r_p99") ms; $(get "$key.s_left") not settled; $(get "$key.s_cycles") cycles (avg $(get "$key.s_avg_cycle") ms, $(get "$key.s_per_cycle") a cycle, gathering $(get "$key.pace_ms") ms); saved $(get "$key.s_saved")% vs naive batching"
}
e2e_base() {    # rate round
    local rate=$1 r=$2 key="e2e_base_$1.r$2"
    worker off
    run_pgbench "$key" bench_e2e_base 8 "$BENCH/submit.pgb" -T "$E2E_T" --rate="$rate"
    log "  $rate/s round $r, worker off: submitted $(get "$key.tps")/s, submit p50 $(get "$key.p50") ms, p99 $(get "$key.p99") ms, schedule lag p99 $(get "$key.lag_p99") ms"
}
median_range() {    # prefix rounds field...: prefix.field.med/.min/.max over prefix.rN.field
    local pre=$1 n=$2 f
    shift 2
    for f in "$@"; do rounds_of "$pre.r%r.$f" "$n" | stats "$pre.$f.med" "$pre.$f"; done
}
SETTLE_FIELDS="pace_ms tps lag_p50 lag_p99 lag_max s_cnt s_srate s_p50 s_p95 s_p99 s_left s_cycles s_avg_cycle s_avg_solver s_saved s_per_cycle heard dup r_p50 r_p95 r_p99 end_queued"
for rate in $E2E_RATES; do
    put "load_e2e_$rate" "$(loadavg)"
    section_start
    for r in $(seq 1 "$E2E_ROUNDS"); do
        if [ $((r % 2)) = 1 ]; then e2e_base "$rate" "$r"; e2e_settle "$rate" "$r"
        else e2e_settle "$rate" "$r"; e2e_base "$rate" "$r"; fi
    done
    section_end "e2e_$rate"
    # median and range over the rounds
    median_range "e2e_$rate" "$E2E_ROUNDS" $SETTLE_FIELDS
    median_range "e2e_base_$rate" "$E2E_ROUNDS" tps p50 p99 lag_p50 lag_p99 lag_max
done
put e2e_rates "$E2E_RATES"
put e2e_interval "$E2E_INTERVAL"
put e2e_rounds "$E2E_ROUNDS"

# (a) the batching window at SWEEP_RATE/s: each window W forces every cycle to
# gather for W ms (settle.batch_window = settle.max_batch_delay = W); rounds
# go through the windows in alternating directions
log "end to end: batching window swept at $SWEEP_RATE/s: ${SWEEP_WINDOWS// / ms, } ms; ${SWEEP_T}s per point, $SWEEP_ROUNDS rounds"
put sweep_rate "$SWEEP_RATE"
put sweep_windows "$SWEEP_WINDOWS"
put sweep_rounds "$SWEEP_ROUNDS"
put sweep_t "$SWEEP_T"
section_start
for r in $(seq 1 "$SWEEP_ROUNDS"); do
    order=$SWEEP_WINDOWS
    [ $((r % 2)) = 0 ] && order=$(tr ' ' '\n' <<<"$SWEEP_WINDOWS" | tac | tr '\n' ' ')
    for w in $order; do
        window "$w"
        key="sweep_$w.r$r"
        e2e_run "$key" "$SWEEP_RATE" "$SWEEP_T"
        log "  window $w ms, round $r: p50 $(get "$key.s_p50") / p95 $(get "$key.s_p95") / p99 $(get "$key.s_p99") ms (listener p95 $(get "$key.r_p95") ms), $(get "$key.s_per_cycle") a cycle, saved $(get "$key.s_saved")%, lag p99 $(get "$key.lag_p99") ms"
    done
done
window default
section_end sweep
for w in $SWEEP_WINDOWS; do median_range "sweep_$w" "$SWEEP_ROUNDS" $SETTLE_FIELDS; done

# (b) the highest rate the worker keeps up with: offered rates rising until a
# step fails; a step is kept up with when the load was really offered (at
# least 95% of the rate submitted: the clients share the cores) and less than
# half a second of arrivals was still queued when the load ended.  The
# highest passing rate is then run twice more (median and range of 3).
log "end to end: highest rate kept up with, steps ${MAXRATE_STEPS// //s, }/s, ${MAXRATE_T}s each"
put maxrate_steps "$MAXRATE_STEPS"
put maxrate_t "$MAXRATE_T"
keeps_up() {    # key rate
    awk -v tps="$(get "$1.tps")" -v q="$(get "$1.end_queued")" -v rate="$2" \
        'BEGIN { exit !(tps + 0 >= 0.95 * rate && q != "" && q + 0 < 0.5 * rate) }'
}
section_start
best=0
for rate in $MAXRATE_STEPS; do
    key="maxrate_$rate"
    e2e_run "$key.r1" "$rate" "$MAXRATE_T"
    if keeps_up "$key.r1" "$rate"; then put "$key.ok" yes; best=$rate; else put "$key.ok" no; fi
    log "  $rate/s: submitted $(get "$key.r1.tps")/s, lag p99 $(get "$key.r1.lag_p99") ms, $(get "$key.r1.end_queued") queued at the end; p95 $(get "$key.r1.s_p95") ms, saved $(get "$key.r1.s_saved")%: kept up: $(get "$key.ok")"
    [ "$(get "$key.ok")" = yes ] || break
done
put maxrate "$best"
if [ "$best" != 0 ]; then
    for r in 2 3; do e2e_run "maxrate_$best.r$r" "$best" "$MAXRATE_T"; done
    median_range "maxrate_$best" 3 $SETTLE_FIELDS
fi
section_end maxrate
log "  highest rate kept up with: $best/s"

# the REST gateway against its baselines, in its own cluster (its section of the doc)
log "REST gateway (test/bench/gateway.sh)"
cluster_stop "$DIR"
GW_BENCH_OUT="$DOCDIR/img/bench_gateway.md" bash "$BENCH/gateway.sh"
# the production shape (issue #32): a primary, a synchronous standby, the
# worker and the gateway, open-loop load (its section of the doc)
log "production shape (test/bench/production.sh)"
PROD_OUT_DIR="$DOCDIR/img" bash "$BENCH/production.sh"
cluster_start "$DIR"

put load_end "$(cut -d' ' -f1-3 /proc/loadavg)"
put duration_s "$(( $(date +%s) - START_S ))"

# ---------------------------------------------------------------- plots and the doc
mkdir -p "$DOCDIR/img"
# the raw figures next to the plots: report.sh can rewrite the doc from them
cp "$RES" "$DOCDIR/img/bench_results.txt"
cp "$DIR/settings" "$DOCDIR/img/bench_settings.txt"
bash "$BENCH/report.sh" "$DOCDIR/img/bench_results.txt" "$DOCDIR/img/bench_settings.txt" "$DOCDIR" "$WORK"
log "done in $(get duration_s) s: $DOCDIR/BENCHMARKS.md"
