#!/bin/bash
# The seal's statement Merkle tree (issue #32): settle._merkle_extend() in C
# (1.2, src/merkle.c) against the set-based SQL it replaced (1.1's
# definition, taken from src/sql/releases/settle--1.1.sql and created as
# bench.merkle_extend_sql()), on the same sealed ledger, in the same run.
#
# The ledger: N payments (default 10,000) among 50 participants settled in
# cycles and sealed.  Then, for each side and round (alternating), the tree
# is emptied and grown again over the same seals, K seals at a time
# (each step: K seals appended, the extension timed, COMMIT), as the worker
# grows it after each cycle: K = 240 (a cycle of about 75 payments at
# 1,000/s) and K = all (one seal of the whole ledger).  After every run
# settle_verify() must find the tree exact.  Prints microseconds per leaf,
# the median and range over REPEAT rounds, and the ratio SQL / C; then the
# same for the two hash chains sealed whole.
# Part of make bench (Makefile; SEAL_DOC=file replaces the file's
# "## Seal" section); by itself:
#   PGBIN=... bash test/bench/seal.sh [payments]
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/scratch.sh

N=${1:-${BENCH_SEAL_N:-10000}}
REPEAT=${BENCH_SEAL_REPEAT:-3}
STEPS=${BENCH_SEAL_STEPS:-"240 all"}
scratch bench-seal
scratch_ports P 55660
scratch_cluster "$TMP/c"
cluster_init "$TMP/c" "$P" "settle.worker_enabled = off" "fsync = on" "shared_buffers = 256MB" "max_wal_size = 4GB" || exit 1
cluster_start "$TMP/c" || exit 1
q() { cluster_psql "$P" -d postgres -At "$@"; }

q -c "CREATE EXTENSION settle" >/dev/null || exit 1
# the baseline: 1.1's SQL definition under another name
awk '/^CREATE FUNCTION settle._merkle_extend\(\)/ { on = 1 } on { print } on && /^\$\$;/ { exit }' \
    src/sql/releases/settle--1.1.sql \
  | sed 's/^CREATE FUNCTION settle._merkle_extend()/CREATE FUNCTION bench.merkle_extend_sql()/' >"$TMP/baseline.sql"
grep -q 'bench.merkle_extend_sql' "$TMP/baseline.sql" || { echo "the 1.1 definition was not found"; exit 1; }
awk '/^CREATE FUNCTION settle._seal_chain\(/ { on = 1 } on { print } on && /^\$\$;/ { exit }' \
    src/sql/releases/settle--1.1.sql \
  | sed 's/^CREATE FUNCTION settle._seal_chain(/CREATE FUNCTION bench.seal_chain_sql(/' >>"$TMP/baseline.sql"
grep -q 'bench.seal_chain_sql' "$TMP/baseline.sql" || { echo "the 1.1 chain definition was not found"; exit 1; }
q -c "CREATE SCHEMA bench" -f "$TMP/baseline.sql" >/dev/null || exit 1

# the ledger: 50 participants, N payments settled in cycles of about 1,000
q -c "SELECT count(*) FROM (SELECT settle_create_participant('sp' || i) FROM generate_series(1, 50) i) x" >/dev/null
q -c "SELECT count(*) FROM (SELECT settle_create_account('sp' || i || '_usd', 'sp' || i, 'USD', opening_balance => 1000000)
        FROM generate_series(1, 50) i) x" >/dev/null
for ((b = 0; b < N; b += 1000)); do
    q -c "SELECT setseed(0.25); SELECT count(*) FROM settle_submit_bulk((SELECT jsonb_agg(jsonb_build_object(
        'transaction_id', 's' || g, 'amount', (1 + floor(random() * 500))::text, 'source_currency', 'USD',
        'destination_currency', 'USD', 'source_account', 'sp' || s || '_usd', 'destination_account', 'sp' || d || '_usd',
        'counterparty_id', 'sp' || d, 'idempotency_key', 'sk' || g))
      FROM (SELECT g, s, 1 + (s + o) % 50 AS d
              FROM (SELECT g, 1 + floor(random() * 50)::int AS s, floor(random() * 49)::int AS o
                      FROM generate_series($b + 1, least($b + 1000, $N)) g) x) y))" >/dev/null || exit 1
    q -c "SELECT settled FROM settle_run_cycle()" >/dev/null || exit 1
done
q -c "SELECT count(*) FROM settle_seal()" >/dev/null || exit 1
LEAVES=$(q -c "SELECT count(*) FROM settle.ledger_seal")
echo "ledger: $N payments, $LEAVES sealed entries"

# the seals kept aside; each run starts from an empty tree and no seals,
# and appends them K at a time (append-only triggers off: replication role)
[ -n "${SEAL_KEEP:-}" ] && echo "port $P"
q -c "CREATE TABLE bench.seals AS SELECT * FROM settle.ledger_seal" >/dev/null
q -c "CREATE PROCEDURE bench.grow(impl text, k bigint, INOUT us double precision) LANGUAGE plpgsql AS \$\$
DECLARE
    done bigint := 0;
    total bigint := (SELECT max(seq) FROM bench.seals);
    t0 timestamptz;
BEGIN
    SET session_replication_role = replica;
    TRUNCATE settle.ledger_leaf, settle.ledger_merkle_node, settle.ledger_seal;
    COMMIT;
    us := 0;
    WHILE done < total LOOP
        SET session_replication_role = replica;
        INSERT INTO settle.ledger_seal SELECT * FROM bench.seals WHERE seq > done AND seq <= done + k;
        SET session_replication_role = origin;
        t0 := clock_timestamp();
        EXECUTE format('SELECT %s()', impl);
        us := us + extract(epoch FROM clock_timestamp() - t0) * 1000000;
        COMMIT;
        done := done + k;
    END LOOP;
END
\$\$" >/dev/null || exit 1

median() { tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
range() { tr ' ' '\n' | grep . | sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { print lo "-" hi }'; }
ROWS=""
for k in $STEPS; do
    kk=$k; [ "$k" = all ] && kk=$LEAVES
    c_us=""; sql_us=""
    for r in $(seq 1 "$REPEAT"); do
        for impl in settle._merkle_extend bench.merkle_extend_sql; do
            us=$(q -c "CALL bench.grow('$impl', $kk, 0)") || exit 1
            problems=$(q -c "SELECT count(*) FROM settle_verify(seal => false) WHERE problem LIKE 'merkle%'")
            [ "$problems" = 0 ] || { echo "after $impl, K=$k: settle_verify() found $problems Merkle problems"; exit 1; }
            per=$(awk -v us="$us" -v n="$LEAVES" 'BEGIN { printf "%.2f", us / n }')
            if [ "$impl" = settle._merkle_extend ]; then c_us="$c_us $per"; else sql_us="$sql_us $per"; fi
        done
    done
    cm=$(median <<<"$c_us"); sm=$(median <<<"$sql_us")
    ratio=$(awk -v a="$sm" -v b="$cm" 'BEGIN { printf "%.1f", a / b }')
    echo "seal_merkle K=$k: C $cm us/leaf (range $(range <<<"$c_us")), SQL $sm us/leaf (range $(range <<<"$sql_us")), ratio SQL/C $ratio"
    ROWS="$ROWS| $k | $cm ($(range <<<"$c_us")) | $sm ($(range <<<"$sql_us")) | $ratio |
"
done

# The two hash chains, every unsealed row at once: settle._seal_chain (1.2:
# the rows hashed and appended in C) against 1.1's (a window aggregate over
# SQL content and hash functions), the Merkle trigger off for both.
q -c "ALTER TABLE settle.seal_run DISABLE TRIGGER seal_run_merkle" >/dev/null
ROWS_CHAIN=$(q -c "SELECT (SELECT count(*) FROM settle.ledger_entry) + (SELECT count(*) FROM settle.event)")
c_us=""; sql_us=""
for r in $(seq 1 "$REPEAT"); do
    for impl in settle._seal_chain bench.seal_chain_sql; do
        us=$(q -f - <<SQL | tail -1
SET session_replication_role = replica;
TRUNCATE settle.ledger_seal, settle.event_seal, settle.seal_run;
SET session_replication_role = origin;
SELECT pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot()) AS h \\gset
SELECT clock_timestamp() AS t0 \\gset
SELECT count(*) FROM $impl('ledger_entry', :'h') a, $impl('event', :'h') b;
SELECT extract(epoch FROM clock_timestamp() - :'t0') * 1000000;
SQL
) || exit 1
        problems=$(q -c "SELECT count(*) FROM settle_verify(seal => false) WHERE problem LIKE 'chain%'")
        [ "$problems" = 0 ] || { echo "after $impl: settle_verify() found $problems chain problems"; exit 1; }
        per=$(awk -v us="$us" -v n="$ROWS_CHAIN" 'BEGIN { printf "%.2f", us / n }')
        if [ "$impl" = settle._seal_chain ]; then c_us="$c_us $per"; else sql_us="$sql_us $per"; fi
    done
done
q -c "ALTER TABLE settle.seal_run ENABLE TRIGGER seal_run_merkle" >/dev/null
cm=$(median <<<"$c_us"); sm=$(median <<<"$sql_us")
ratio=$(awk -v a="$sm" -v b="$cm" 'BEGIN { printf "%.1f", a / b }')
echo "seal_chains ($ROWS_CHAIN rows): C $cm us/row (range $(range <<<"$c_us")), SQL $sm us/row (range $(range <<<"$sql_us")), ratio SQL/C $ratio"
CHAIN_ROW="| both hash chains, all $ROWS_CHAIN rows in one seal (µs per row) | $cm ($(range <<<"$c_us")) | $sm ($(range <<<"$sql_us")) | $ratio |
"

if [ -n "${SEAL_DOC:-}" ]; then
    SECTION="## Seal: the hash chains and the statement tree

\`make bench\` (\`test/bench/seal.sh\`), $(date -u +%Y-%m-%d), $(nproc) cores, fsync on, one node: a ledger of
$N payments ($LEAVES sealed entries); the tree emptied and grown again over the same seals, K seals at
a time (each step appended, extended, committed, as the worker's seal after each cycle), by
\`settle._merkle_extend()\` in C (1.2) and by the set-based SQL of 1.1 (baseline), alternating,
$REPEAT rounds each; every run checked exact by \`settle_verify()\`. Then the two hash chains
(ledger entries and events) sealed whole by \`settle._seal_chain\` of 1.2 (rows hashed and
appended in C) and of 1.1 (SQL), alternating. Microseconds per leaf or row, median (range):

| the tree (µs per leaf), K seals per step | C | SQL (1.1) | SQL / C |
|---|---|---|---|
$ROWS$CHAIN_ROW"
    printf '%s\n' "$SECTION" | python3 test/bench/doc_section.py "$SEAL_DOC" "## Profiling"
fi
