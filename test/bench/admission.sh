#!/bin/bash
# Admission by the backlog's age (issue #32 item 3, settle.max_queue_age;
# docs/CYCLE.md, "Backpressure"), measured: the reference workload
# (test/bench/setup.sql, accounts funded) offered open loop at a rate above
# what the worker keeps up with (pgbench --rate, ADMISSION_RATE per second
# from ADMISSION_CLIENTS clients for ADMISSION_T s, one node, fsync on, the
# worker with its defaults), with settle.max_queue_age off (the baseline:
# every payment accepted, the queue grows) and set to ADMISSION_AGE ms,
# alternating, ADMISSION_ROUNDS rounds each.  Each submit goes through
# bench.try_submit, which answers -1 for SE093 instead of aborting the
# pgbench client.  Per run: offered, accepted and refused; the largest queue
# sampled every second; for the accepted payments, submitted-to-settled
# (settled_at - created_at: the settling cycle's time) P50/P95/P99 once the
# queue has drained.  Part of make bench (ADMISSION_DOC=file replaces the
# file's "## Admission" section); by itself:
#   PGBIN=... bash test/bench/admission.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/scratch.sh

RATE=${ADMISSION_RATE:-4000}
CLIENTS=${ADMISSION_CLIENTS:-64}
T=${ADMISSION_T:-15}
AGE=${ADMISSION_AGE:-250}
ROUNDS=${ADMISSION_ROUNDS:-2}
scratch bench-admission
scratch_ports P 55700
scratch_cluster "$TMP/c"
cluster_init "$TMP/c" "$P" "settle.database = 'postgres'" "fsync = on" "max_connections = 150" \
    "shared_buffers = 256MB" "max_wal_size = 4GB" || exit 1
cluster_start "$TMP/c" || exit 1
q() { cluster_psql "$P" -d postgres -At "$@"; }
q -c "CREATE EXTENSION settle" -f test/bench/setup.sql -c "SELECT bench.setup_reference()" \
  -c "SELECT count(*) FROM (SELECT settle_fund_account(account_id, 1000000000, 'bench') FROM settle.account WHERE kind = 'customer') f" \
  >/dev/null || exit 1
q -c "CREATE FUNCTION bench.try_submit(tid text, amount numeric, sc text, dc text, sa text, da text, cp text, k text)
      RETURNS bigint LANGUAGE plpgsql AS \$\$
      BEGIN
          RETURN (SELECT s.payment_id FROM settle_submit(tid, amount, sc, dc, sa, da, cp, k) s);
      EXCEPTION WHEN SQLSTATE 'SE093' THEN
          RETURN -1;
      END \$\$" >/dev/null || exit 1
# test/bench/prod_submit.pgb's payments, through bench.try_submit, each run's ids prefixed
sed -e 's/LATERAL settle_submit(/LATERAL bench.try_submit(/' -e "s/'t' || :client_id/:run || 't' || :client_id/" \
    -e 's/SELECT s.payment_id/SELECT s/' test/bench/prod_submit.pgb >"$TMP/submit.pgb"
grep -q 'bench.try_submit' "$TMP/submit.pgb" || { echo "could not derive the script from prod_submit.pgb"; exit 1; }

percentile() {   # percentile RUN FRACTION: of settled_at - created_at, ms
    q -c "SELECT round(percentile_cont($2) WITHIN GROUP (ORDER BY extract(epoch FROM settled_at - created_at) * 1000)::numeric, 1)
            FROM settle.payment WHERE transaction_id LIKE '$1%' AND status = 'settled'"
}
one_run() {      # one_run NAME AGE_MS
    local run=$1 age=$2 sampler queued_max offered accepted
    q -c "ALTER SYSTEM SET settle.max_queue_age = '$age'" -c "SELECT pg_reload_conf()" >/dev/null
    sleep 1
    ( while :; do q -c "SELECT count(*) FROM settle.payment WHERE status = 'queued'"; sleep 1; done ) >"$TMP/$run.queue" 2>/dev/null &
    sampler=$!
    "$PGBIN/pgbench" -n -h 127.0.0.1 -p "$P" -U postgres -c "$CLIENTS" -j 2 -R "$RATE" -T "$T" \
        -D np=50 -D "pfx='p'" -D pw=2 -D fx=20 -D "run='$run'" -f "$TMP/submit.pgb" postgres >"$TMP/$run.pgbench" 2>&1
    # drain: what was accepted settles (at most 120 s)
    for _ in $(seq 1 240); do
        [ "$(q -c "SELECT count(*) FROM settle.payment WHERE status = 'queued'")" = 0 ] && break
        sleep 0.5
    done
    kill "$sampler" 2>/dev/null; wait "$sampler" 2>/dev/null
    queued_max=$(sort -n "$TMP/$run.queue" | tail -1)
    offered=$(awk '/number of transactions actually processed/ { split($NF, a, "/"); print a[1] }' "$TMP/$run.pgbench")
    accepted=$(q -c "SELECT count(*) FROM settle.payment WHERE transaction_id LIKE '$run%'")
    local p50 p95 p99
    p50=$(percentile "$run" 0.5); p95=$(percentile "$run" 0.95); p99=$(percentile "$run" 0.99)
    echo "$run age=$age offered=$offered accepted=$accepted refused=$((offered - accepted)) queue_max=${queued_max:-0}" \
         "settled_p50_ms=$p50 p95_ms=$p95 p99_ms=$p99"
    ROWS="$ROWS| $run | $([ "$age" = 0 ] && echo off || echo "$age ms") | $offered | $accepted | $((offered - accepted)) | ${queued_max:-0} | $p50 / $p95 / $p99 |
"
}
ROWS=""
echo "admission: $RATE/s offered from $CLIENTS clients for $T s, one node, fsync on; settle.max_queue_age off and $AGE ms, $ROUNDS rounds each"
for r in $(seq 1 "$ROUNDS"); do
    if [ $((r % 2)) = 1 ]; then
        one_run "off$r" 0; one_run "on$r" "$AGE"
    else
        one_run "on$r" "$AGE"; one_run "off$r" 0
    fi
done

if [ -n "${ADMISSION_DOC:-}" ]; then
    SECTION="## Admission by the backlog's age

\`make bench\` (\`test/bench/admission.sh\`), $(date -u +%Y-%m-%d), $(nproc) cores, one node, fsync on, the worker
with its defaults: the reference workload offered open loop at $RATE/s from $CLIENTS clients for $T s
(pgbench \`--rate\`; a refused submit, SE093, is answered -1 and the client goes on), with
\`settle.max_queue_age\` off (the baseline: everything accepted) and $AGE ms, alternating. Offered is
what pgbench sent (below the rate when the machine could not send it all); the queue's largest
size sampled every second; submitted to settled (the settling cycle's time) of the accepted
payments after the queue drained, ms:

| run | settle.max_queue_age | offered | accepted | refused (SE093) | largest queue | settled P50 / P95 / P99 ms |
|---|---|---|---|---|---|---|
$ROWS"
    printf '%s\n' "$SECTION" | python3 test/bench/doc_section.py "$ADMISSION_DOC" "## Profiling"
fi
