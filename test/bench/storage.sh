#!/bin/bash
# Storage cost of settle, measured (`make storage`; docs/OPERATIONS.md, "Growth"):
# N payments (default 1,000,000) among 100 participants through the bulk
# path, settled by cycles of up to 100,000, sealed, with one end-of-day
# snapshot; then the size of every settle table with its indexes and TOAST.
# Prints a table (bytes per payment, MB per million) and the conditions.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh

N=${STORAGE_N:-1000000}
CHUNK=50000
TMP=$(mktemp -d /tmp/settle-storage.XXXXXX)
chmod 755 "$TMP"
P=$(free_port 55600)
trap 'cluster_stop "$TMP/db" immediate; rm -rf "$TMP"' EXIT
cluster_init "$TMP/db" "$P" "settle.worker_enabled = off" "shared_buffers = 512MB" "max_wal_size = 4GB" \
    "settle.max_bulk_rows = 100000" >/dev/null || exit 1
cluster_start "$TMP/db" || exit 1
q() { cluster_psql "$P" -d postgres -At -c "$1"; }
q "CREATE EXTENSION settle" >/dev/null
q "SELECT settle_set_wire_fee('USD', 0)" >/dev/null
q "SELECT count(*) FROM (SELECT settle_create_participant('s_' || i), settle_create_account('s_' || i || '_usd', 's_' || i, 'USD', opening_balance => 1000000000)
                          FROM generate_series(1, 100) i) x" >/dev/null
start=$(date +%s)
done_n=0
while [ "$done_n" -lt "$N" ]; do
    n=$(( N - done_n < CHUNK ? N - done_n : CHUNK ))
    q "SELECT count(*) FROM settle_submit_bulk((
         SELECT jsonb_agg(jsonb_build_object(
                  'transaction_id', 'tx' || g, 'idempotency_key', 'key-' || g || '-' || md5(g::text),
                  'amount', ((g % 9000) + 100)::text, 'source_currency', 'USD', 'destination_currency', 'USD',
                  'source_account', 's_' || (g % 100 + 1) || '_usd',
                  'destination_account', 's_' || ((g * 7 + 3) % 100 + 1) || '_usd',
                  'counterparty_id', 's_' || ((g * 7 + 3) % 100 + 1)))
           FROM generate_series($done_n + 1, $done_n + $n) g
          WHERE g % 100 <> (g * 7 + 3) % 100)) WHERE sqlstate IS NULL" >/dev/null || exit 1
    done_n=$((done_n + n))
done
while [ "$(q "SELECT count(*) FROM settle.payment WHERE status = 'queued'")" != 0 ]; do
    q "SELECT settled FROM settle_run_cycle()" >/dev/null || exit 1
done
q "SELECT count(*) FROM settle_seal()" >/dev/null
q "SELECT settle_end_of_day(current_date)" >/dev/null
q "VACUUM ANALYZE" >/dev/null
secs=$(( $(date +%s) - start ))
payments=$(q "SELECT count(*) FROM settle.payment")
echo "payments: $payments settled: $(q "SELECT count(*) FROM settle.payment WHERE status = 'settled'") cycles: $(q "SELECT count(*) FROM settle.cycle") ($secs s)"
echo "rows: $(q "SELECT (SELECT count(*) FROM settle.event) || ' events, ' || (SELECT count(*) FROM settle.ledger_entry) || ' ledger entries, ' || (SELECT count(*) FROM settle.journal) || ' journals, ' || (SELECT count(*) FROM settle.batch) || ' batches'")"
echo
echo "| table | rows | total (MB) | of which indexes (MB) | bytes per payment | MB per million payments |"
echo "|---|---:|---:|---:|---:|---:|"
q "SELECT format('| %s | %s | %s | %s | %s | %s |', c.relname, c.reltuples::bigint,
              round(pg_total_relation_size(c.oid) / 1048576.0, 1), round(pg_indexes_size(c.oid) / 1048576.0, 1),
              round(pg_total_relation_size(c.oid)::numeric / $payments, 1),
              round(pg_total_relation_size(c.oid)::numeric / $payments * 1000000 / 1048576.0, 1))
     FROM pg_class c WHERE c.relnamespace = 'settle'::regnamespace AND c.relkind = 'r'
      AND pg_total_relation_size(c.oid) > 65536
    ORDER BY pg_total_relation_size(c.oid) DESC"
q "SELECT format('| **all settle tables** | | %s | %s | %s | %s |',
              round(sum(pg_total_relation_size(c.oid)) / 1048576.0, 1), round(sum(pg_indexes_size(c.oid)) / 1048576.0, 1),
              round(sum(pg_total_relation_size(c.oid))::numeric / $payments, 1),
              round(sum(pg_total_relation_size(c.oid))::numeric / $payments * 1000000 / 1048576.0, 1))
     FROM pg_class c WHERE c.relnamespace = 'settle'::regnamespace AND c.relkind = 'r'"
echo
echo "conditions: PostgreSQL $(q "SHOW server_version"), $(nproc) cores, block size $(q "SHOW block_size"), after VACUUM; WAL and archives not counted"
