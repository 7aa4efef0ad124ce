#!/bin/bash
# settle-gateway benchmark (part of `make bench`; alone: bash test/bench/gateway.sh).
#
# Its own throwaway cluster, with the settings of test/bench/run.sh (fsync and
# synchronous_commit on, the worker off so that cycles do not run during the
# load).  One participant's client submits through the gateway; every point is
# repeated GW_BENCH_REPS times, alternating with its baselines:
#   1. accepted payments/s over HTTP: wrk (2 threads, GW_BENCH_CONN connections,
#      unique keys, one payment per request, test/bench/gateway.lua), with the
#      CPU of the gateway, of wrk and of PostgreSQL;
#   2. baseline: settle_submit_bulk called directly over libpq by as many
#      sessions as the gateway has connections, with the batch size the gateway
#      reached in the same repetition (test/bench/gateway_direct.py);
#   3. baseline: single-row settle_submit over libpq (pgbench, prepared,
#      GW_BENCH_SINGLE_CLIENTS clients), as the same participant's role;
#   4. latency at a paced 2,000/s and 5,000/s over HTTP (P50, P99).
# Writes a section of docs/BENCHMARKS.md to $GW_BENCH_OUT (default
# docs/img/bench_gateway.md, included by test/bench/report.sh) and the plots
# docs/img/bench_gateway_*.svg.
#
# Environment: GW_BENCH_T=10 (seconds per run), GW_BENCH_REPS=3,
# GW_BENCH_CONN=64, GW_BENCH_RATES="2000 5000", GW_BENCH_RATE_CONN=128,
# GW_BENCH_POOL=4, GW_BENCH_SINGLE_CLIENTS=16, GW_BENCH_OUT, KEEP=1.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BENCH=$ROOT/test/bench
cd "$ROOT"
. test/lib/cluster.sh

T=${GW_BENCH_T:-10}
REPS=${GW_BENCH_REPS:-3}
CONN=${GW_BENCH_CONN:-64}
RATES=${GW_BENCH_RATES:-"2000 5000"}
RATE_CONN=${GW_BENCH_RATE_CONN:-128}
POOL=${GW_BENCH_POOL:-4}
SINGLE_CLIENTS=${GW_BENCH_SINGLE_CLIENTS:-16}
OUT=${GW_BENCH_OUT:-$ROOT/docs/img/bench_gateway.md}
IMG=$(dirname "$OUT")
GATEWAY=$PGBIN/settle-gateway
[ -x "$GATEWAY" ] || GATEWAY=$ROOT/src/gateway/settle-gateway
PY=/usr/bin/python3
for bin in wrk "$GATEWAY" "$PGBIN/pgbench"; do
    command -v "$bin" >/dev/null || { echo "gateway bench: $bin is missing (test/deps.sh, make)" >&2; exit 1; }
done

DIR=$(mktemp -d /tmp/settle-gwbench.XXXXXX)
chmod 755 "$DIR"
WORK=$DIR/work
mkdir -p "$WORK" "$IMG"
RES=$DIR/results
: >"$RES"
PORT=$(free_port 56400)
GPORT=$(free_port 18400)
GW_PID=""
cleanup() {
    [ -n "$GW_PID" ] && kill "$GW_PID" 2>/dev/null && wait "$GW_PID" 2>/dev/null
    if [ "${KEEP:-0}" = 1 ]; then echo "cluster left running: $DIR (port $PORT)"; else cluster_stop "$DIR"; rm -rf "$DIR"; fi
}
trap cleanup EXIT

log() { printf '%s  gateway: %s\n' "$(date -u +%H:%M:%S)" "$*"; }
put() { echo "$1=$2" >>"$RES"; }
get() { awk -F= -v k="$1" '$1 == k { v = substr($0, length(k) + 2) } END { print v }' "$RES"; }
q() { cluster_psql "$PORT" -d postgres -At "$@"; }

# CPU, in clock ticks: machine busy and total (/proc/stat), PostgreSQL (the
# postmaster, its reaped children and its live ones), the gateway, and this
# shell's children (wrk, pgbench, the direct client: `times`)
HZ=$(getconf CLK_TCK)
NCPU=$(nproc)
# `times` must run in this shell (a $(...) subshell has no children): cpu_mark VAR
cpu_mark() {
    local busy all pg=0 pm pid gw=0 ch
    read -r busy all < <(awk '/^cpu / { b = $2 + $3 + $4 + $7 + $8 + $9; print b, b + $5 + $6 }' /proc/stat)
    pm=$(head -1 "$DIR/data/postmaster.pid")
    pg=$(awk '{ print $14 + $15 + $16 + $17 }' "/proc/$pm/stat")
    for pid in $(ps -o pid= --ppid "$pm"); do
        pg=$((pg + $(awk '{ print $14 + $15 }' "/proc/$pid/stat" 2>/dev/null || echo 0)))
    done
    gw=$(awk '{ print $14 + $15 }' "/proc/$GW_PID/stat")
    times >"$WORK/times"
    ch=$(sed -n 2p "$WORK/times" | awk -v hz="$HZ" '{ t = 0; for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); t += a[1] * 60 + a[2] } printf "%d", t * hz }')
    printf -v "$1" '%s' "$busy $all $pg $gw $ch"
}
# cores used during a run, from two marks: NAME MARK0 MARK1 -> NAME.cpu_{pg,gw,client,other}
cpu_put() {
    local b0 a0 p0 g0 c0 b1 a1 p1 g1 c1
    read -r b0 a0 p0 g0 c0 <<<"$2"
    read -r b1 a1 p1 g1 c1 <<<"$3"
    local da=$(( (a1 - a0) )) f
    f() { awk -v v="$1" -v da="$da" -v n="$NCPU" 'BEGIN { printf "%.2f", (da > 0 ? v * n / da : 0) }'; }
    put "$1.cpu_pg" "$(f $((p1 - p0)))"
    put "$1.cpu_gw" "$(f $((g1 - g0)))"
    put "$1.cpu_client" "$(f $((c1 - c0)))"
    # CPU seconds, to divide by the payments: independent of the window's length
    put "$1.cs_pg" "$(awk -v t=$((p1 - p0)) -v hz="$HZ" 'BEGIN { printf "%.3f", t / hz }')"
    put "$1.cs_gw" "$(awk -v t=$((g1 - g0)) -v hz="$HZ" 'BEGIN { printf "%.3f", t / hz }')"
    put "$1.cs_client" "$(awk -v t=$((c1 - c0)) -v hz="$HZ" 'BEGIN { printf "%.3f", t / hz }')"
    local other=$(( (b1 - b0) - (p1 - p0) - (g1 - g0) - (c1 - c0) ))
    [ $other -lt 0 ] && other=0
    put "$1.cpu_other" "$(f $other)"
}
metric() { curl -s "http://127.0.0.1:$GPORT/metrics" | awk -v m="$1" '$1 == m { print $2 }'; }

# ---------------------------------------------------------------- setup
log "cluster in $DIR, port $PORT; gateway on $GPORT"
cluster_init "$DIR" "$PORT" "fsync = on" "synchronous_commit = on" "full_page_writes = on" \
    "shared_buffers = 256MB" "max_wal_size = 4GB" "checkpoint_timeout = 15min" "max_connections = 100" \
    "settle.worker_enabled = off" "settle.database = 'postgres'" "log_min_messages = warning"
cluster_start "$DIR"
q -c "CREATE EXTENSION settle" \
  -c "SELECT settle_create_participant('gb_a'), settle_create_participant('gb_b')" \
  -c "SELECT settle_create_account('gb_a_usd', 'gb_a', 'USD', opening_balance => 1000000000)" \
  -c "SELECT settle_create_account('gb_b_usd', 'gb_b', 'USD')" \
  -c "CREATE ROLE gb_a_app LOGIN" -c "SELECT settle_map_role('gb_a_app', 'gb_a')" \
  -c "CREATE ROLE gb_gateway LOGIN IN ROLE settle_gateway" >/dev/null
TOKEN=$(q -c "SELECT settle_issue_api_token('gb_a_bench', 'gb_a_app')")
"$GATEWAY" --port "$GPORT" --db "host=127.0.0.1 port=$PORT dbname=postgres user=gb_gateway" \
    --pool-size "$POOL" --max-connections 1024 >"$DIR/gateway.log" 2>&1 &
GW_PID=$!
for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$GPORT/metrics" && break; sleep 0.1; done

put date "$(date -u '+%Y-%m-%d %H:%M UTC')"
put cpu "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
put cores "$NCPU"
put pg "$(q -c 'SHOW server_version')"
put wrk "$(wrk -v 2>&1 | head -1 | awk '{ print $2 }')"
put mhd "$(dpkg-query -W -f='${Version}' libmicrohttpd12 2>/dev/null || echo '?')"
put commit "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet 2>/dev/null || echo ' (with uncommitted changes)')"
put load_start "$(cut -d' ' -f1-3 /proc/loadavg)"

export GW_TOKEN=$TOKEN GW_SRC=gb_a_usd GW_DST=gb_b_usd GW_CPTY=gb_b GW_THREADS=2
# wrk run: NAME CONNECTIONS RATE(0: as fast as it goes) -> NAME.{rate,created,other,p50,p99}
run_wrk() {
    local name=$1 conn=$2 rate=$3 m0 m1 b0 n0
    b0=$(metric settle_gateway_batch_size_sum); n0=$(metric settle_gateway_batch_size_count)
    cpu_mark m0
    GW_RUN="$name" GW_RATE=$rate wrk -t2 -c"$conn" -d"${T}s" --timeout 10s -s "$BENCH/gateway.lua" \
        "http://127.0.0.1:$GPORT/" >"$WORK/$name.out" 2>&1
    cpu_mark m1
    cpu_put "$name" "$m0" "$m1"
    local line
    line=$(grep '^RESULT' "$WORK/$name.out") || { cat "$WORK/$name.out"; exit 1; }
    for kv in $line; do
        case $kv in created=*|other=*|seconds=*|p50_ms=*|p99_ms=*) put "$name.${kv%%=*}" "${kv#*=}" ;; esac
    done
    put "$name.rate" "$(awk -v c="$(get "$name.created")" -v s="$(get "$name.seconds")" 'BEGIN { printf "%.0f", c / s }')"
    put "$name.batch" "$(awk -v b=$(( $(metric settle_gateway_batch_size_sum) - b0 )) -v n=$(( $(metric settle_gateway_batch_size_count) - n0 )) \
        'BEGIN { printf "%.1f", (n > 0 ? b / n : 0) }')"
    put "$name.load" "$(cut -d' ' -f1 /proc/loadavg)"
}

log "warm-up"
GW_RUN=warm GW_RATE=0 wrk -t2 -c"$CONN" -d3s -s "$BENCH/gateway.lua" "http://127.0.0.1:$GPORT/" >/dev/null 2>&1

cat >"$WORK/single.pgb" <<'EOF'
\set k random(1, 9000000000000000000)
SELECT payment_id FROM settle_submit('s' || :client_id || '_' || :k, 1.00, 'USD', 'USD',
                                     'gb_a_usd', 'gb_b_usd', 'gb_b', 's' || :client_id || '_' || :k);
EOF

for r in $(seq 1 "$REPS"); do
    log "repetition $r of $REPS: HTTP, as fast as it goes ($CONN connections)"
    run_wrk "http_$r" "$CONN" 0
    batch=$(get "http_$r.batch")
    bsize=$(awk -v b="$batch" 'BEGIN { n = int(b + 0.5); print (n < 1 ? 1 : n) }')
    log "  $(get "http_$r.rate")/s accepted, average batch $batch; direct settle_submit_bulk, batches of $bsize, $POOL sessions"
    cpu_mark m0
    "$PY" "$BENCH/gateway_direct.py" --dsn "host=127.0.0.1 port=$PORT dbname=postgres user=gb_a_app" \
        --sessions "$POOL" --batch "$bsize" --seconds "$T" --prefix "d$r" >"$WORK/direct_$r.out" 2>&1 \
        || { cat "$WORK/direct_$r.out"; exit 1; }
    sleep 0.5   # its backends exit and are reaped: their CPU is then in the postmaster's
    cpu_mark m1
    cpu_put "direct_$r" "$m0" "$m1"
    put "direct_$r.rate" "$(awk '/^RESULT/ { for (i = 2; i <= NF; i++) { split($i, a, "="); if (a[1] == "rate") print a[2] } }' "$WORK/direct_$r.out")"
    put "direct_$r.batch" "$bsize"
    put "direct_$r.created" "$(awk '/^RESULT/ { for (i = 2; i <= NF; i++) { split($i, a, "="); if (a[1] == "created") print a[2] } }' "$WORK/direct_$r.out")"
    log "  direct: $(get "direct_$r.rate")/s; single-row settle_submit, $SINGLE_CLIENTS clients"
    cpu_mark m0
    "$PGBIN/pgbench" -h 127.0.0.1 -p "$PORT" -U gb_a_app -n -M prepared -c "$SINGLE_CLIENTS" -j 2 -T "$T" \
        -f "$WORK/single.pgb" postgres >"$WORK/single_$r.out" 2>&1 || { cat "$WORK/single_$r.out"; exit 1; }
    sleep 0.5
    cpu_mark m1
    cpu_put "single_$r" "$m0" "$m1"
    put "single_$r.rate" "$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)/\1/p' "$WORK/single_$r.out" | awk '{ printf "%.0f", $1 }')"
    put "single_$r.created" "$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$WORK/single_$r.out")"
    log "  single-row: $(get "single_$r.rate")/s"
    for rate in $RATES; do
        run_wrk "paced${rate}_$r" "$RATE_CONN" "$rate"
        log "  paced $rate/s: achieved $(get "paced${rate}_$r.rate")/s, p50 $(get "paced${rate}_$r.p50_ms") ms, p99 $(get "paced${rate}_$r.p99_ms") ms"
    done
done
put load_end "$(cut -d' ' -f1-3 /proc/loadavg)"
[ "$(q -c "SELECT count(*) FROM settle.payment")" -gt 0 ]
put payments_total "$(q -c "SELECT count(*) FROM settle.payment")"

# ---------------------------------------------------------------- the section
cp "$RES" "$IMG/bench_gateway_results.txt"
"$PY" "$BENCH/gateway_report.py" "$RES" "$OUT" "$IMG" "$REPS" "$T" "$CONN" "$RATE_CONN" "$POOL" "$SINGLE_CLIENTS" "$RATES"
log "written: $OUT"
