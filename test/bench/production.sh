#!/bin/bash
# The production shape (issue #32), a section of `make bench`; alone:
# `make bench-production` or `bash test/bench/production.sh`.
#
# A primary and one synchronous standby on this machine (streaming,
# synchronous_standby_names set, synchronous_commit on, fsync on), the worker
# on with its default settings, settle-gateway in front, load generated open
# loop: test/bench/http_load.c (built here with cc) schedules request i at
# start + i / rate and counts each request's latency from its scheduled time;
# pgbench --rate does the same for the libpq items.  For each workload
# (PROD_WORKLOADS: "reference", the 50 participants of test/bench/setup.sql;
# "wide", PROD_WIDE_N participants with USD, EUR and GBP accounts, FX rates and
# a different wire fee per currency) a fresh pair is built and:
#   1. HTTP, single-payment requests over PROD_CONN keep-alive connections,
#      unique keys: offered rates PROD_RATES, highest first, until one meets
#      the target (>= 98% acknowledged, P95 submit-to-settled < 100 ms, P99 <
#      200 ms, every acknowledged payment settled exactly once); the first
#      (target) rate and the best one run PROD_ROUNDS times.  Settled = the
#      listener's receipt of the settle_settled notification, which PostgreSQL
#      sends after the commit and its wait for the standby.  Baseline: the
#      same payments over libpq (pgbench, 64 clients, same rate), each a plain
#      INSERT and a plain gross posting in one transaction (prod_plain.pgb).
#   2. single-row settle_submit over libpq, pgbench --rate, 64 clients, rates
#      PROD_PG_RATES highest first until one is kept up with.
#   3. 8, 64 and 256 clients (PROD_CLIENTS) at the highest rate item 2 kept up
#      with: backlog sampled every second, P95.
#   4. PROD_IDLE_CONN connections held open on the gateway, PROD_IDLE_RATE/s
#      spread over them; the gateway's memory per idle connection.
#   6. pg_stat_wal deltas (bytes, records, full-page images, writes, fsyncs)
#      per settled payment against the plain baseline of item 1, and CPU per
#      payment by stage, at PROD_WAL_RATE/s.
# Results: key=value lines in $PROD_OUT_DIR/bench_production_results.txt,
# the section docs/img/bench_production.md (test/bench/production_report.py).
#
# Environment (defaults are the issue's): PROD_T=60 (seconds per item-1 point),
# PROD_RATES="8000 4000 2000 1000 500", PROD_ROUNDS=3, PROD_CONN=256,
# PROD_PG_T=20, PROD_PG_RATES="6000 4000 3000 2000 1000",
# PROD_CLIENTS="8 64 256", PROD_CL_T=20, PROD_IDLE_CONN=10000,
# PROD_IDLE_RATE=5000, PROD_IDLE_T=30, PROD_WAL_RATE=1000, PROD_WAL_T=20,
# PROD_ITEMS="1 2 3 4 6", PROD_WORKLOADS="reference wide", PROD_WIDE_N=500,
# PROD_DRAIN=60 (seconds a run may take to settle what was offered),
# PROD_GW_ARGS (more gateway options), PROD_LABEL (a suffix of the workload's
# keys: a variant measured next to an earlier run, with PROD_RESULTS), PROD_CONF (one more postgresql.conf
# line, for profiling: e.g. shared_preload_libraries with pg_stat_statements), PROD_OUT_DIR=docs/img, PROD_RESULTS (add to this results file), PROD_DOC (a document whose "Production shape"
# section is replaced: make bench-production), KEEP=1 (leave the last pair running).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BENCH=$ROOT/test/bench
cd "$ROOT"
. test/lib/cluster.sh

PROD_T=${PROD_T:-60}
RATES=${PROD_RATES:-"8000 4000 2000 1000 500"}
ROUNDS=${PROD_ROUNDS:-3}
CONN=${PROD_CONN:-256}
PG_T=${PROD_PG_T:-20}
PG_RATES=${PROD_PG_RATES:-"6000 4000 3000 2000 1000"}
CLIENTS=${PROD_CLIENTS:-"8 64 256"}
CL_T=${PROD_CL_T:-20}
IDLE_CONN=${PROD_IDLE_CONN:-10000}
IDLE_RATE=${PROD_IDLE_RATE:-5000}
IDLE_T=${PROD_IDLE_T:-30}
WAL_RATE=${PROD_WAL_RATE:-1000}
WAL_T=${PROD_WAL_T:-20}
ITEMS=" ${PROD_ITEMS:-1 2 3 4 6} "
WORKLOADS=${PROD_WORKLOADS:-"reference wide"}
WIDE_N=${PROD_WIDE_N:-500}
DRAIN=${PROD_DRAIN:-60}
OUTDIR=${PROD_OUT_DIR:-$ROOT/docs/img}
GATEWAY=$PGBIN/settle-gateway
[ -x "$GATEWAY" ] || GATEWAY=$ROOT/src/gateway/settle-gateway
PGBENCH=$PGBIN/pgbench
PY=/usr/bin/python3
for bin in "$GATEWAY" "$PGBENCH" "$PGBIN/pg_basebackup" cc; do
    command -v "$bin" >/dev/null || { echo "production bench: $bin is missing (test/deps.sh, make)" >&2; exit 1; }
done
START_S=$(date +%s)

DIR=$(mktemp -d /tmp/settle-prod.XXXXXX)
chmod 755 "$DIR"
WORK=$DIR/work
mkdir -p "$WORK" "$OUTDIR"
# PROD_RESULTS: a results file of an earlier run to add to (another workload
# measured separately, e.g. to keep each run under a time limit)
RES=${PROD_RESULTS:-$DIR/results}
[ -n "${PROD_RESULTS:-}" ] || : >"$RES"
LOAD=$WORK/http_load
cc -std=c11 -O2 -Wall -Wextra -Werror -o "$LOAD" "$BENCH/http_load.c"

P1="" P2="" GPORT="" GW_PID="" PRI="" STB=""
stop_pair() {
    [ -n "$GW_PID" ] && kill "$GW_PID" 2>/dev/null && wait "$GW_PID" 2>/dev/null
    GW_PID=""
    [ -n "$STB" ] && cluster_stop "$STB"
    [ -n "$PRI" ] && cluster_stop "$PRI"
    STB="" PRI=""
}
cleanup() {
    [ "${KEEP:-0}" = 1 ] || jobs -p | xargs -r kill 2>/dev/null || true
    if [ "${KEEP:-0}" = 1 ]; then echo "left running: $DIR (primary $P1, standby $P2, gateway $GPORT pid $GW_PID)"
    else stop_pair; rm -rf "$DIR"; fi
}
trap cleanup EXIT

log() { printf '%s  production: %s\n' "$(date -u +%H:%M:%S)" "$*"; }
put() { echo "$1=$2" >>"$RES"; }
get() { awk -F= -v k="$1" '$1 == k { v = substr($0, length(k) + 2) } END { print v }' "$RES"; }
q() { cluster_psql "$P1" -d postgres -At "$@"; }
q2() { cluster_psql "$P2" -d postgres -At "$@"; }
calc() { awk "BEGIN { printf \"$1\", $2 }"; }

# ---------------------------------------------------------------- CPU by process class
# Clock ticks per class: the primary's client backends (the gateway's
# connections, pgbench's, the listener's; those that exited are in the
# postmaster's reaped-children time), the settle worker, the WAL sender, the
# primary's other processes, the standby (all its processes), the gateway,
# this shell's children (http_load, pgbench, psql: `times`), and the machine.
HZ=$(getconf CLK_TCK)
NCPU=$(nproc)
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
# A mark is a file of "class pid ticks" lines, one per live process, and the
# ticks of the children each postmaster has reaped ("reaped_pri", "reaped_stb").
CPU_MARKS=0
cpu_mark() {    # VAR: the mark's file
    local f pm sm pid cmd busy all ch
    CPU_MARKS=$((CPU_MARKS + 1))
    f=$WORK/cpumark.$CPU_MARKS
    read -r busy all < <(awk '/^cpu / { b = $2 + $3 + $4 + $7 + $8 + $9; print b, b + $5 + $6 }' /proc/stat)
    pm=$(head -1 "$PRI/data/postmaster.pid")
    sm=$(head -1 "$STB/data/postmaster.pid")
    {
        echo "busy 0 $busy"
        echo "all 0 $all"
        echo "reaped_pri 0 $(awk '{ print $16 + $17 }' "/proc/$pm/stat")"
        echo "pri_other $pm $(ticks "$pm")"
        for pid in $(ps -o pid= --ppid "$pm"); do
            cmd=$( (tr '\0' ' ' <"/proc/$pid/cmdline") 2>/dev/null || true)
            case $cmd in
                *"settle worker"*) echo "worker $pid $(ticks "$pid")" ;;
                *walsender*) echo "walsender $pid $(ticks "$pid")" ;;
                *"127.0.0.1("*|*"[local]"*) echo "client $pid $(ticks "$pid")" ;;
                *) echo "pri_other $pid $(ticks "$pid")" ;;
            esac
        done
        echo "reaped_stb 0 $(awk '{ print $16 + $17 }' "/proc/$sm/stat")"
        echo "standby $sm $(ticks "$sm")"
        for pid in $(ps -o pid= --ppid "$sm"); do echo "standby $pid $(ticks "$pid")"; done
        [ -n "$GW_PID" ] && echo "gateway $GW_PID $(ticks "$GW_PID")"
        times >"$WORK/times"
        ch=$(sed -n 2p "$WORK/times" | awk -v hz="$HZ" '{ t = 0; for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); t += a[1] * 60 + a[2] } printf "%d", t * hz }')
        echo "children 0 $ch"
    } >"$f"
    printf -v "$1" '%s' "$f"
}
# NAME MARK0 MARK1 N: CPU microseconds per payment (N payments) by class, and
# the cores busy with other work on the machine during the run.  A process
# live at both marks counts its difference; one that started counts all its
# ticks; what exited in between is in its postmaster's reaped time (less what
# it had used before the first mark), counted as client backends on the
# primary (most are: pgbench's, psql's) and as the standby on the standby.
cpu_put() {
    local name=$1 n=$4 k
    awk -v hz="$HZ" -v n="$n" -v c="$NCPU" '
        FNR == NR { s[$1 " " $2] = $3; cls[$1 " " $2] = $1; next }
        { e[$1 " " $2] = $3 }
        END {
            for (k in e) {
                split(k, x, " ")
                if (x[1] == "busy" || x[1] == "all" || x[1] ~ /^reaped/) continue
                d[x[1]] += e[k] - ((k in s) ? s[k] : 0)
            }
            for (k in s) {
                split(k, x, " ")
                if (!(k in e) && x[1] != "busy" && x[1] != "all" && x[1] !~ /^reaped/) gone[x[1] == "standby" ? "stb" : "pri"] += s[k]
            }
            d["client"] += e["reaped_pri 0"] - s["reaped_pri 0"] - gone["pri"]
            d["standby"] += e["reaped_stb 0"] - s["reaped_stb 0"] - gone["stb"]
            ours = 0
            split("client worker walsender pri_other standby gateway children", cl, " ")
            for (i = 1; i <= 7; i++) {
                printf "%s.us_%s=%.1f\n", name, cl[i], (n > 0 ? d[cl[i]] / hz * 1e6 / n : 0)
                ours += d[cl[i]]
            }
            da = e["all 0"] - s["all 0"]; db = e["busy 0"] - s["busy 0"]
            v = (da > 0 ? (db - ours) * c / da : 0); if (v < 0) v = 0
            printf "%s.cpu_other=%.2f\n", name, v
            printf "%s.cpu_ours=%.2f\n", name, (da > 0 ? ours * c / da : 0)
        }' name="$name" "$2" "$3" >>"$RES"
}

# ---------------------------------------------------------------- the pair
# workload NAME: a fresh primary + synchronous standby, settle, the workload's
# participants, accounts (funded so that every payment settles), rates, fees,
# one API token per participant, the gateway
start_pair() {
    local wl=$1 np pfx pw
    PRI=$DIR/$wl-primary STB=$DIR/$wl-standby
    P1=$(free_port 56600)
    P2=$(free_port $((P1 + 1)))
    GPORT=$(free_port 18600)
    mkdir -p "$PRI" "$STB"
    cluster_init "$PRI" "$P1" "fsync = on" "synchronous_commit = on" "full_page_writes = on" \
        "shared_buffers = 256MB" "max_wal_size = 4GB" "checkpoint_timeout = 15min" "max_connections = 400" \
        "wal_level = replica" "max_wal_senders = 4" "hot_standby = on" \
        "synchronous_standby_names = 'standby1'" "settle.database = 'postgres'" "log_min_messages = warning" \
        ${PROD_CONF:+"$PROD_CONF"}
    echo "host replication postgres 127.0.0.1/32 trust" | as_pg tee -a "$PRI/data/pg_hba.conf" >/dev/null
    cluster_start "$PRI"
    [ "$(id -u)" = 0 ] && chown "$PGRUNAS" "$STB"
    as_pg "$PGBIN/pg_basebackup" -h 127.0.0.1 -p "$P1" -U postgres -D "$STB/data" -X stream -c fast
    {
        echo "port = $P2"
        echo "unix_socket_directories = '$STB'"
        echo "primary_conninfo = 'host=127.0.0.1 port=$P1 user=postgres application_name=standby1'"
        echo "synchronous_standby_names = ''"
    } | as_pg tee -a "$STB/data/postgresql.conf" >/dev/null
    as_pg touch "$STB/data/standby.signal"
    cluster_start "$STB"
    for _ in $(seq 100); do
        [ "$(q -c "SELECT count(*) FROM pg_stat_replication WHERE application_name = 'standby1' AND sync_state = 'sync' AND state = 'streaming'")" = 1 ] && break
        sleep 0.2
    done
    [ "$(q -c "SELECT sync_state FROM pg_stat_replication WHERE application_name = 'standby1'")" = sync ] \
        || { echo "production bench: the standby is not synchronous" >&2; exit 1; }

    q -c "CREATE EXTENSION settle" -f "$BENCH/setup.sql" >/dev/null
    if [ "$wl" = reference ]; then
        q -c "SELECT bench.setup_reference()" >/dev/null
        np=50 pfx=p pw=2
    else
        np=$WIDE_N pfx=w pw=4
        q -c "SELECT settle_create_participant(format('w%s', lpad(i::text, 4, '0'))) FROM generate_series(1, $np) i" \
          -c "SELECT settle_create_account(format('w%s_%s', lpad(i::text, 4, '0'), c), format('w%s', lpad(i::text, 4, '0')), c)
                FROM generate_series(1, $np) i, unnest(ARRAY['USD', 'EUR', 'GBP']) c" \
          -c "SELECT settle_set_fx_rate('EUR', 'USD', 1.10, 5), settle_set_fx_rate('GBP', 'USD', 1.25, 5),
                     settle_set_fx_rate('EUR', 'GBP', 0.88, 5)" \
          -c "SELECT settle_set_wire_fee('USD', 25), settle_set_wire_fee('EUR', 15), settle_set_wire_fee('GBP', 20)" >/dev/null
    fi
    NP=$np PFX=$pfx PW=$pw
    q -c "SELECT settle_fund_account(account_id, 1000000000, 'bench') FROM settle.account WHERE kind = 'customer'" \
      -c "SELECT bench.copy_accounts()" \
      -c "CREATE ROLE prod_gateway LOGIN IN ROLE settle_gateway" \
      -c "DO \$\$ DECLARE p text; BEGIN
            FOR p IN SELECT participant_id FROM settle.participant WHERE participant_id LIKE '${pfx}%' LOOP
              EXECUTE format('CREATE ROLE %I LOGIN', p || '_app');
              PERFORM settle_map_role(p || '_app', p);
            END LOOP; END \$\$" >/dev/null
    q -F ' ' -c "SELECT participant_id, settle_issue_api_token(participant_id || '_web', participant_id || '_app')
                   FROM settle.participant WHERE participant_id LIKE '${pfx}%' ORDER BY 1" >"$WORK/tokens"
    [ "$(wc -l <"$WORK/tokens")" = "$np" ]
    put "$K.participants" "$np"
    put "$K.accounts" "$(q -c "SELECT count(*) FROM settle.account WHERE kind = 'customer'")"
    put "$K.fees" "$(q -c "SELECT string_agg(currency || ' ' || fee, ', ' ORDER BY currency) FROM settle.wire_fee" 2>/dev/null || echo '?')"
    put "$K.worker_settings" "$(q -c "SELECT string_agg(name || '=' || setting, ' ' ORDER BY name) FROM pg_settings
                                        WHERE name IN ('settle.worker_enabled', 'settle.batch_window', 'settle.max_batch_delay', 'settle.cycle_interval')")"
    # the gateway: defaults, except as many connections as item 4 holds, and a
    # connection time-out longer than item 4's idle phase
    (ulimit -n "$(ulimit -Hn)"; exec "$GATEWAY" --port "$GPORT" --db "host=127.0.0.1 port=$P1 dbname=postgres user=prod_gateway" \
        --max-connections $((IDLE_CONN + 1000)) --connection-timeout 120 ${PROD_GW_ARGS:-}) >"$DIR/$wl-gateway.log" 2>&1 &
    GW_PID=$!
    for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$GPORT/metrics" && break; sleep 0.1; done
    put "$K.gateway_args" "--max-connections $((IDLE_CONN + 1000)) --connection-timeout 120 ${PROD_GW_ARGS:-}"
}

# ---------------------------------------------------------------- measuring
# A listener on settle_settled (PostgreSQL delivers a notification after the
# commit and its wait for the synchronous standby): listen_start / listen_stop
listen_start() {
    rm -f "$WORK/heard" "$WORK/heard.ready"
    "$PY" "$BENCH/listen.py" "$P1" postgres settle_settled "$WORK/heard" &
    LPID=$!
    for _ in $(seq 1 100); do [ -e "$WORK/heard.ready" ] && break; sleep 0.1; done
}
listen_stop() { sleep 0.5; kill -TERM "$LPID" 2>/dev/null; wait "$LPID" 2>/dev/null || true; }
# the queue: sampled every second into $WORK/backlog.KEY until backlog_stop
backlog_start() {
    (while :; do q -c "SELECT count(*) FROM settle.payment WHERE status = 'queued'" 2>/dev/null || true; sleep 1; done) \
        >"$WORK/backlog.$1" &
    BPID=$!
}
backlog_stop() { kill "$BPID" 2>/dev/null; wait "$BPID" 2>/dev/null || true; }
# before a run: what an earlier (failed) step left queued settles first, at
# most 3 x DRAIN s; KEY.start_queued says what was still queued
settle_leftover() {
    local n=0
    for _ in $(seq 1 $((DRAIN * 15))); do
        n=$(q -c "SELECT count(*) FROM settle.payment WHERE status = 'queued'")
        [ "$n" = 0 ] && break
        sleep 0.2
    done
    put "$1.start_queued" "$n"
}
# wait until nothing above payment id LO is queued (at most DRAIN s); KEY.drain_s
drain() {
    local key=$1 lo=$2 t0
    t0=$(date +%s.%N)
    put "$key.end_queued" "$(q -c "SELECT count(*) FROM settle.payment WHERE status = 'queued' AND payment_id > $lo")"
    for _ in $(seq 1 $((DRAIN * 5))); do
        [ "$(q -c "SELECT count(*) FROM settle.payment WHERE status = 'queued' AND payment_id > $lo")" = 0 ] && break
        sleep 0.2
    done
    put "$key.drain_s" "$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')"
}
wal_mark() { q -F ' ' -c "SELECT wal_records, wal_fpi, wal_bytes, wal_write, wal_sync FROM pg_stat_wal"; }
wal_mark2() { q2 -F ' ' -c "SELECT wal_write, wal_sync FROM pg_stat_wal"; }
wal_put() {     # KEY MARK0 MARK1 STANDBY0 STANDBY1 N
    local a b s0 s1
    read -r -a a <<<"$2"; read -r -a b <<<"$3"; read -r -a s0 <<<"$4"; read -r -a s1 <<<"$5"
    local n=$6 f=(records fpi bytes writes fsyncs) i
    for i in 0 1 2 3 4; do
        put "$1.wal_${f[$i]}" "$(awk -v d=$((b[i] - a[i])) -v n="$n" 'BEGIN { printf "%.3f", (n > 0 ? d / n : 0) }')"
    done
    put "$1.standby_writes" "$(awk -v d=$((s1[0] - s0[0])) -v n="$n" 'BEGIN { printf "%.3f", (n > 0 ? d / n : 0) }')"
    put "$1.standby_fsyncs" "$(awk -v d=$((s1[1] - s0[1])) -v n="$n" 'BEGIN { printf "%.3f", (n > 0 ? d / n : 0) }')"
}
# the standby has replayed everything the primary flushed
standby_caught_up() {
    local lsn
    lsn=$(q -c "SELECT pg_current_wal_flush_lsn()")
    for _ in $(seq 100); do
        [ "$(q2 -c "SELECT pg_last_wal_replay_lsn() >= '$lsn'")" = t ] && return 0
        sleep 0.2
    done
    return 1
}

# Settlement of the payments above LO (those of TAG's transaction ids when TAG
# is given) and the cycles of the run: KEY.{settled, s_p50/95/99 (cycle end -
# created_at), saved, cycles, per_cycle, heard, dup}
settle_stats() {
    local key=$1 lo=$2
    q -F ' ' -c "CREATE TEMP TABLE heard (payment_id bigint, at double precision)" \
        -c "\\copy heard FROM '$WORK/heard' WITH (DELIMITER ' ')" -c "
        WITH p AS (SELECT p.payment_id, p.created_at, c.finished_at,
                          extract(epoch FROM c.finished_at - p.created_at) * 1000 AS ms
                     FROM settle.payment p JOIN settle.cycle c USING (cycle_id)
                    WHERE p.payment_id > $lo AND p.status = 'settled'),
             r AS (SELECT (h.at - extract(epoch FROM p.created_at)) * 1000 AS ms
                     FROM heard h JOIN p USING (payment_id)),
             cy AS (SELECT * FROM settle.cycle WHERE finished_at >= (SELECT min(created_at) FROM p))
        SELECT count(*),
               coalesce(round(percentile_cont(0.50) WITHIN GROUP (ORDER BY ms)::numeric, 1), 0),
               coalesce(round(percentile_cont(0.95) WITHIN GROUP (ORDER BY ms)::numeric, 1), 0),
               coalesce(round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 1), 0),
               coalesce((SELECT round(percentile_cont(0.95) WITHIN GROUP (ORDER BY ms)::numeric, 1) FROM r), 0),
               coalesce((SELECT round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 1) FROM r), 0),
               (SELECT count(*) FROM settle.payment WHERE payment_id > $lo AND status <> 'settled'),
               (SELECT count(*) FROM cy),
               coalesce((SELECT round(avg(settled)::numeric, 1) FROM cy WHERE settled > 0), 0),
               coalesce((SELECT round((100 * (1 - sum(cost) / nullif(sum(naive_cost), 0)))::numeric, 1) FROM cy), 0),
               (SELECT count(DISTINCT payment_id) FROM heard WHERE payment_id IN (SELECT payment_id FROM p)),
               (SELECT count(*) - count(DISTINCT payment_id) FROM heard)
          FROM p" >"$WORK/$key.settle"
    read -r settled s_p50 s_p95 s_p99 r_p95 r_p99 unsettled cycles per_cycle saved heard dup <"$WORK/$key.settle"
    for k in settled s_p50 s_p95 s_p99 r_p95 r_p99 unsettled cycles per_cycle saved heard dup; do put "$key.$k" "${!k}"; done
}

# ---------------------------------------------------------------- item 1 (and 4): HTTP
# http_run KEY RATE SECONDS CONNECTIONS [IDLE_SECONDS]: http_load through the
# gateway; then acknowledgement and submit-to-settled from each request's
# scheduled time, exactly-once checks on the primary and the standby
http_run() {
    local key=$1 rate=$2 secs=$3 conns=$4 idle=${5:-0} lo m0 m1 w0 w1 s0 s1 tag line
    tag="h$(date +%s%N | tail -c 9)"
    settle_leftover "$key"
    lo=$(q -c "SELECT coalesce(max(payment_id), 0) FROM settle.payment")
    listen_start
    backlog_start "$key"
    w0=$(wal_mark); s0=$(wal_mark2)
    cpu_mark m0
    "$LOAD" -p "$GPORT" -r "$rate" -d "$secs" -c "$conns" -P "$WORK/tokens" -x "$tag" -o "$WORK/$key.req" \
        -f 0.2 -s "$RANDOM" -m "$GW_PID" -D "$DRAIN" -I "$idle" >"$WORK/$key.out" 2>&1 \
        || { cat "$WORK/$key.out"; echo "http_load failed" >&2; exit 1; }
    drain "$key" "$lo"
    cpu_mark m1
    w1=$(wal_mark); s1=$(wal_mark2)
    backlog_stop
    listen_stop
    line=$(grep '^RESULT' "$WORK/$key.out")
    for kv in $line; do [ "$kv" = RESULT ] || put "$key.${kv%%=*}" "${kv#*=}"; done
    put "$key.rate" "$rate"; put "$key.seconds" "$secs"; put "$key.conns" "$conns"
    put "$key.backlog_max" "$(sort -n "$WORK/backlog.$key" | tail -1)"
    put "$key.load_cpu_us" "$(awk -v c="$(get "$key.cpu_s")" -v n="$(get "$key.offered")" 'BEGIN { printf "%.1f", c * 1e6 / n }')"
    settle_stats "$key" "$lo"
    # per request: scheduled, answered, status, transaction id -> latency from the schedule
    q -F ' ' -c "SET work_mem = '256MB'" \
        -c "CREATE TEMP TABLE req (sched bigint, ack bigint, status int, tid text)" \
        -c "\\copy req FROM '$WORK/$key.req' WITH (DELIMITER ' ')" \
        -c "CREATE TEMP TABLE heard (payment_id bigint, at double precision)" \
        -c "\\copy heard FROM '$WORK/heard' WITH (DELIMITER ' ')" \
        -c "CREATE TEMP TABLE hh AS SELECT payment_id, min(at) AS at, count(*) AS n FROM heard GROUP BY 1" \
        -c "CREATE TEMP TABLE mine AS SELECT payment_id, transaction_id, status FROM settle.payment
             WHERE payment_id > $lo AND transaction_id LIKE '${tag}\\_%'" \
        -c "ANALYZE req" -c "ANALYZE hh" -c "ANALYZE mine" -c "
        WITH a AS (SELECT r.*, m.payment_id, m.status AS pstatus, hh.at AS heard_at, coalesce(hh.n, 0) AS heard_n
                     FROM req r LEFT JOIN mine m ON m.transaction_id = r.tid
                          LEFT JOIN hh ON hh.payment_id = m.payment_id
                    WHERE r.status IN (200, 201)),
             l AS (SELECT CASE WHEN heard_at IS NULL THEN 'infinity'::float8
                               ELSE heard_at * 1000 - sched / 1000.0 END AS ms FROM a)
        SELECT (SELECT count(*) FROM req),
               count(*),
               (SELECT round(percentile_cont(0.50) WITHIN GROUP (ORDER BY ms)::numeric, 1) FROM l),
               (SELECT round(percentile_cont(0.95) WITHIN GROUP (ORDER BY ms)::numeric, 1) FROM l),
               (SELECT round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 1) FROM l),
               count(*) FILTER (WHERE payment_id IS NULL),
               count(*) FILTER (WHERE pstatus IS DISTINCT FROM 'settled'),
               count(*) FILTER (WHERE heard_n <> 1),
               (SELECT count(*) FROM mine m WHERE NOT EXISTS
                   (SELECT 1 FROM req r WHERE r.tid = m.transaction_id AND r.status IN (200, 201))),
               (SELECT count(*) FROM (SELECT e.payment_id FROM settle.ledger_entry e
                                       WHERE e.payment_id IN (SELECT payment_id FROM a)
                                       GROUP BY 1 HAVING count(DISTINCT e.journal_id) <> 1) x),
               (SELECT count(*) FROM a WHERE NOT EXISTS (SELECT 1 FROM settle.ledger_entry e WHERE e.payment_id = a.payment_id)),
               (SELECT count(*) || ' ' || coalesce(sum(payment_id), 0) FROM mine WHERE status = 'settled')
          FROM a" >"$WORK/$key.acks"
    read -r offered acked e_p50 e_p95 e_p99 missing not_settled heard_not_once unacked_written twice no_entries pri_sum <"$WORK/$key.acks"
    for k in acked e_p50 e_p95 e_p99 missing not_settled heard_not_once unacked_written twice no_entries; do put "$key.$k" "${!k}"; done
    put "$key.acked_pct" "$(awk -v a="$acked" -v o="$offered" 'BEGIN { printf "%.2f", 100 * a / o }')"
    # the standby: the same settled payments
    standby_caught_up || true
    put "$key.standby_same" "$([ "$(q2 -c "SELECT count(*) || ' ' || coalesce(sum(payment_id), 0) FROM settle.payment p
        WHERE p.payment_id > $lo AND p.transaction_id LIKE '${tag}\\_%' AND p.status = 'settled'")" = "$pri_sum" ] && echo yes || echo no)"
    cpu_put "$key" "$m0" "$m1" "$acked"
    wal_put "$key" "$w0" "$w1" "$s0" "$s1" "$(get "$key.settled")"
    # the target: >= 98% acknowledged, P95 < 100 ms, P99 < 200 ms, exactly once
    put "$key.met" "$(awk -v p="$(get "$key.acked_pct")" -v p95="$e_p95" -v p99="$e_p99" \
        -v bad=$((missing + not_settled + heard_not_once + twice + no_entries)) -v sb="$(get "$key.standby_same")" \
        'BEGIN { print (p >= 98 && p95 < 100 && p99 < 200 && bad == 0 && sb == "yes") ? "met" : "missed" }')"
    log "  $key: $rate/s offered over $conns connections for ${secs}s: acknowledged $(get "$key.acked_pct")% (ack P95 $(get "$key.ack_p95_ms") ms, P99 $(get "$key.ack_p99_ms") ms), submit-to-settled P50 $e_p50 / P95 $e_p95 / P99 $e_p99 ms from the schedule; not settled $not_settled, heard not once $heard_not_once, posted twice $twice; standby same: $(get "$key.standby_same"); saved $(get "$key.saved")% vs naive; backlog max $(get "$key.backlog_max"); gateway $(get "$key.us_gateway") us, http_load $(get "$key.load_cpu_us") us per payment; other work $(get "$key.cpu_other") cores: $(get "$key.met")"
}

# ---------------------------------------------------------------- items 1-3, 6: pgbench
# pg_run KEY SCRIPT RATE SECONDS CLIENTS: open loop over libpq; for
# prod_submit.pgb the settlement too (listener, drain)
pg_run() {
    local key=$1 script=$2 rate=$3 secs=$4 clients=$5 lo m0 m1 w0 w1 s0 s1 n tps lag
    settle_leftover "$key"
    lo=$(q -c "SELECT coalesce(max(payment_id), 0) FROM settle.payment")
    [ "$script" = prod_submit.pgb ] && { listen_start; backlog_start "$key"; }
    w0=$(wal_mark); s0=$(wal_mark2)
    cpu_mark m0
    rm -f "$WORK/$key".log*
    "$PGBENCH" -h 127.0.0.1 -p "$P1" -U postgres -n -M prepared -c "$clients" -j 2 -T "$secs" --rate="$rate" \
        -D np="$NP" -D pfx="$PFX" -D pw="$PW" -D fx=20 -l --log-prefix="$WORK/$key.log" \
        -f "$BENCH/$script" postgres >"$WORK/$key.out" 2>&1 || { cat "$WORK/$key.out"; echo "pgbench $key failed" >&2; exit 1; }
    [ "$script" = prod_submit.pgb ] && drain "$key" "$lo"
    cpu_mark m1
    w1=$(wal_mark); s1=$(wal_mark2)
    n=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$WORK/$key.out")
    tps=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)/\1/p' "$WORK/$key.out")
    put "$key.rate" "$rate"; put "$key.seconds" "$secs"; put "$key.clients" "$clients"
    put "$key.n" "$n"
    put "$key.tps" "$(calc %.0f "$tps")"
    put "$key.offered_pct" "$(awk -v n="$n" -v r="$rate" -v s="$secs" 'BEGIN { printf "%.2f", 100 * n / (r * s) }')"
    # per transaction, from its scheduled start (pgbench --rate): latency and schedule lag
    cat "$WORK/$key".log* | awk '{ print $3 / 1000, $NF / 1000 }' >"$WORK/$key.lat"
    put "$key.c_p95" "$(sort -n -k1,1 "$WORK/$key.lat" | awk '{ v[NR] = $1 } END { printf "%.1f", NR ? v[int(0.95 * (NR - 1)) + 1] : 0 }')"
    put "$key.c_p99" "$(sort -n -k1,1 "$WORK/$key.lat" | awk '{ v[NR] = $1 } END { printf "%.1f", NR ? v[int(0.99 * (NR - 1)) + 1] : 0 }')"
    put "$key.lag_p99" "$(sort -n -k2,2 "$WORK/$key.lat" | awk '{ v[NR] = $2 } END { printf "%.1f", NR ? v[int(0.99 * (NR - 1)) + 1] : 0 }')"
    rm -f "$WORK/$key".log* "$WORK/$key.lat"
    if [ "$script" = prod_submit.pgb ]; then
        backlog_stop
        listen_stop
        put "$key.backlog_max" "$(sort -n "$WORK/backlog.$key" | tail -1)"
        settle_stats "$key" "$lo"
        cpu_put "$key" "$m0" "$m1" "$n"
        wal_put "$key" "$w0" "$w1" "$s0" "$s1" "$(get "$key.settled")"
        # kept up with: the rate really offered (>= 95% committed: pgbench's
        # arrivals are random), less than
        # half a second of arrivals queued when the load ended; the target
        # on top: P95 (listener's receipt) < 100 ms
        put "$key.kept_up" "$(awk -v p="$(get "$key.offered_pct")" -v qd="$(get "$key.end_queued")" -v r="$rate" \
            'BEGIN { print (p >= 95 && qd + 0 < 0.5 * r) ? "yes" : "no" }')"
        put "$key.met" "$(awk -v k="$(get "$key.kept_up")" -v p95="$(get "$key.r_p95")" \
            'BEGIN { print (k == "yes" && p95 + 0 < 100) ? "met" : "missed" }')"
        log "  $key: $rate/s, $clients clients: committed $(get "$key.offered_pct")% of the offered rate (schedule lag P99 $(get "$key.lag_p99") ms), $(get "$key.end_queued") queued at the end (max $(get "$key.backlog_max")), submit-to-settled P95 $(get "$key.s_p95") ms (cycle end) / $(get "$key.r_p95") ms (listener), saved $(get "$key.saved")%: kept up $(get "$key.kept_up"), $(get "$key.met")"
    else
        cpu_put "$key" "$m0" "$m1" "$n"
        wal_put "$key" "$w0" "$w1" "$s0" "$s1" "$n"
        put "$key.met" "$(awk -v p="$(get "$key.offered_pct")" -v p95="$(get "$key.c_p95")" -v p99="$(get "$key.c_p99")" \
            'BEGIN { print (p >= 98 && p95 + 0 < 100 && p99 + 0 < 200) ? "met" : "missed" }')"
        log "  $key (plain insert + gross posting): $rate/s, $clients clients: committed $(get "$key.offered_pct")%, latency from the schedule P95 $(get "$key.c_p95") ms, P99 $(get "$key.c_p99") ms"
    fi
}

# ---------------------------------------------------------------- the run
put date "$(date -u '+%Y-%m-%d %H:%M UTC')"
put cpu "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
put cores "$NCPU"
put mem "$(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
put commit "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet 2>/dev/null || echo ' (with uncommitted changes)')"
put load_start "$(cut -d' ' -f1-3 /proc/loadavg)"
put params "PROD_T=$PROD_T PROD_RATES='$RATES' PROD_ROUNDS=$ROUNDS PROD_CONN=$CONN PROD_PG_T=$PG_T PROD_PG_RATES='$PG_RATES' PROD_CLIENTS='$CLIENTS' PROD_CL_T=$CL_T PROD_IDLE_CONN=$IDLE_CONN PROD_IDLE_RATE=$IDLE_RATE PROD_IDLE_T=$IDLE_T PROD_WAL_RATE=$WAL_RATE PROD_WAL_T=$WAL_T PROD_ITEMS='${ITEMS# }' PROD_WORKLOADS='$WORKLOADS' PROD_WIDE_N=$WIDE_N"
put workloads "$(for w in $WORKLOADS; do printf '%s%s ' "$w" "${PROD_LABEL:-}"; done)"

for wl in $WORKLOADS; do
    # PROD_LABEL: a suffix of the keys, to record a variant next to an earlier
    # run of the same workload (e.g. "+pool16" with PROD_GW_ARGS)
    K=$wl${PROD_LABEL:-}
    log "workload $wl$([ -n "${PROD_LABEL:-}" ] && echo " ($PROD_LABEL)"): primary + synchronous standby"
    put "$K.date" "$(date -u '+%Y-%m-%d %H:%M UTC')"
    put "$K.load_start" "$(cut -d' ' -f1-3 /proc/loadavg)"
    put "$K.params" "$(get params)"
    WL_START=$(date +%s)
    start_pair "$wl"
    put "$K.pg" "$(q -c 'SHOW server_version')"
    log "  warm-up: 5 s at 1,000/s through the gateway"
    "$LOAD" -p "$GPORT" -r 1000 -d 5 -c "$CONN" -P "$WORK/tokens" -x warm -o "$WORK/warm.req" -D 30 >/dev/null 2>&1 || true

    if [[ $ITEMS == *" 1 "* ]]; then
        log "item 1: HTTP, $CONN connections, ${PROD_T}s per point, rates ${RATES// //s, }/s"
        best=0 first=""
        for rate in $RATES; do
            [ -z "$first" ] && first=$rate
            http_run "$K.i1_$rate.r1" "$rate" "$PROD_T" "$CONN"
            pg_run "$K.i1b_$rate.r1" prod_plain.pgb "$rate" "$PROD_T" 64
            [ "$(get "$K.i1_$rate.r1.met")" = met ] && { best=$rate; break; }
        done
        put "$K.i1_rates_tried" "$(awk -v r="$rate" '{ for (i = 1; i <= NF; i++) { printf "%s%s", (i > 1 ? " " : ""), $i; if ($i == r) exit } }' <<<"$RATES")"
        put "$K.i1_best" "$best"
        for r in $(seq 2 "$ROUNDS"); do
            for rate in $(printf '%s\n' "$first" "$best" | awk '$1 != 0' | sort -u); do
                if [ $((r % 2)) = 0 ]; then
                    pg_run "$K.i1b_$rate.r$r" prod_plain.pgb "$rate" "$PROD_T" 64
                    http_run "$K.i1_$rate.r$r" "$rate" "$PROD_T" "$CONN"
                else
                    http_run "$K.i1_$rate.r$r" "$rate" "$PROD_T" "$CONN"
                    pg_run "$K.i1b_$rate.r$r" prod_plain.pgb "$rate" "$PROD_T" 64
                fi
            done
        done
        put "$K.i1_rounds" "$ROUNDS"
    fi

    if [[ $ITEMS == *" 2 "* ]] || [[ $ITEMS == *" 3 "* ]]; then
        log "item 2: settle_submit over libpq, pgbench --rate, 64 clients, ${PG_T}s per point"
        best2=0
        for rate in $PG_RATES; do
            pg_run "$K.i2_$rate" prod_submit.pgb "$rate" "$PG_T" 64
            if [ "$(get "$K.i2_$rate.kept_up")" = yes ]; then best2=$rate; break; fi
        done
        put "$K.i2_rates_tried" "$(awk -v r="$rate" '{ for (i = 1; i <= NF; i++) { printf "%s%s", (i > 1 ? " " : ""), $i; if ($i == r) exit } }' <<<"$PG_RATES")"
        put "$K.i2_best" "$best2"
    fi

    if [[ $ITEMS == *" 3 "* ]]; then
        cr=${PROD_CL_RATE:-$best2}
        [ "$cr" = 0 ] && cr=1000
        put "$K.i3_rate" "$cr"
        log "item 3: $cr/s from ${CLIENTS// /, } clients, ${CL_T}s each"
        for c in $CLIENTS; do pg_run "$K.i3_c$c" prod_submit.pgb "$cr" "$CL_T" "$c"; done
    fi

    if [[ $ITEMS == *" 4 "* ]]; then
        log "item 4: $IDLE_CONN connections held open, $IDLE_RATE/s spread over them, ${IDLE_T}s"
        http_run "$K.i4" "$IDLE_RATE" "$IDLE_T" "$IDLE_CONN" 5
        put "$K.i4.per_conn_kb" "$(awk -v a="$(get "$K.i4.rss_before_kb")" -v b="$(get "$K.i4.rss_after_kb")" -v n="$IDLE_CONN" 'BEGIN { printf "%.2f", (b - a) / n }')"
        put "$K.i4.met" "$(awk -v p="$(get "$K.i4.ack_p99_ms")" -v a="$(get "$K.i4.acked_pct")" 'BEGIN { print (p + 0 < 100 && a + 0 >= 98) ? "met" : "missed" }')"
    fi

    if [[ $ITEMS == *" 6 "* ]]; then
        log "item 6: WAL and CPU per payment at $WAL_RATE/s, ${WAL_T}s, 8 clients: settle_submit + worker, then plain insert + gross posting"
        q -c "CHECKPOINT" >/dev/null
        pg_run "$K.i6" prod_submit.pgb "$WAL_RATE" "$WAL_T" 8
        q -c "CHECKPOINT" >/dev/null
        pg_run "$K.i6b" prod_plain.pgb "$WAL_RATE" "$WAL_T" 8
    fi
    put "$K.load_end" "$(cut -d' ' -f1-3 /proc/loadavg)"
    put "$K.duration_s" "$(( $(date +%s) - WL_START ))"
    [ "${KEEP:-0}" = 1 ] && [ "$wl" = "${WORKLOADS##* }" ] || stop_pair
done
put load_end "$(cut -d' ' -f1-3 /proc/loadavg)"
put duration_s "$(( $(date +%s) - START_S ))"

cp "$RES" "$OUTDIR/bench_production_results.txt"
"$PY" "$BENCH/production_report.py" "$OUTDIR/bench_production_results.txt" "$OUTDIR/bench_production.md"
cat "$OUTDIR/bench_production.md"
# alone (make bench-production): the section replaces its previous version in
# the document, which make bench otherwise regenerates whole
if [ -n "${PROD_DOC:-}" ]; then
    "$PY" "$BENCH/doc_section.py" "$PROD_DOC" "## Targets missed" <"$OUTDIR/bench_production.md"
fi
log "done in $(get duration_s) s: $OUTDIR/bench_production.md"
