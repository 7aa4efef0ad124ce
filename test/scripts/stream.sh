#!/bin/bash
# Streaming events out (docs/AUDIT.md): pg_recvlogical with pgoutput and the
# publication settle_events receives every event and every ledger entry of
# a known workload, each once, in commit order (a transaction that took an
# earlier event_id but committed later arrives later); the test_decoding
# plugin shows the same order.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/scratch.sh
. test/lib/tap.sh

scratch stream
scratch_ports P 55480
APID=
scratch_on_exit '[ -n "$APID" ] && kill "$APID" 2>/dev/null'
scratch_cluster "$TMP/c"

cluster_init "$TMP/c" "$P" "settle.worker_enabled = off" "wal_level = logical" || exit 1
cluster_start "$TMP/c" || exit 1
Q_PORT=$P    # q SQL: test/lib/cluster.sh

q "CREATE EXTENSION settle" >/dev/null \
    && q "SELECT settle_create_publication()" >/dev/null \
    && q "SELECT pg_create_logical_replication_slot('settle_cdc', 'pgoutput')" >/dev/null \
    && q "SELECT pg_create_logical_replication_slot('settle_td', 'test_decoding')" >/dev/null
ok $? "extension, publication and logical slots (pgoutput, test_decoding) created" || { done_testing; exit 1; }

# the workload: reference data, funding, 40 payments in one bulk call and
# 10 single ones, a cycle
q "SELECT settle_create_participant(p) FROM unnest(ARRAY['s_a', 's_b']) p" >/dev/null \
    && q "SELECT settle_create_account(p || '_usd', p, 'USD', opening_balance => 100000) FROM unnest(ARRAY['s_a', 's_b']) p" >/dev/null
ok $? "participants and funded accounts created"
bulk_ok=$(q "SELECT count(*) FILTER (WHERE status = 'queued') FROM settle_submit_bulk((SELECT jsonb_agg(jsonb_build_object(
       'transaction_id', 'sb_' || i, 'amount', (10 + i)::text, 'source_currency', 'USD',
       'destination_currency', 'USD', 'source_account', 's_a_usd', 'destination_account', 's_b_usd',
       'counterparty_id', 's_b', 'idempotency_key', 'sbk_' || i)) FROM generate_series(1, 40) i))")
is "$bulk_ok" "40" "the bulk call queues its 40 payments"
singles=0
for i in $(seq 1 10); do
    [ "$(q "SELECT status FROM settle_submit('ss_$i', $i, 'USD', 'USD', 's_b_usd', 's_a_usd', 's_a', 'ssk_$i')")" = queued ] \
        && singles=$((singles + 1))
done
is "$singles" "10" "the 10 single submits are queued"
is "$(q "SELECT settled FROM settle_run_cycle()")" "50" "the cycle settles all 50 payments"

# two transactions that commit in the other order than their event ids:
# A writes its event first and commits 3 s later; B writes and commits meanwhile
PGAPPNAME=stream_a cluster_psql "$P" -d postgres -At -c "BEGIN" -c "SELECT settle_create_participant('late_a')" \
    -c "SELECT pg_sleep(3)" -c "COMMIT" >/dev/null &
APID=$!
a_sleeping() { [ "$(q "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'stream_a' AND wait_event = 'PgSleep'")" = 1 ]; }
wait_for 20 a_sleeping
ok $? "transaction A holds its event uncommitted"
q "SELECT settle_create_participant('late_b')" >/dev/null
wait "$APID"
ok $? "transaction A commits after B"
APID=
a_id=$(q "SELECT event_id FROM settle.event WHERE entity_id = 'late_a' AND event_type = 'created'")
b_id=$(q "SELECT event_id FROM settle.event WHERE entity_id = 'late_b' AND event_type = 'created'")
[ "$a_id" -lt "$b_id" ]
ok $? "A's event id ($a_id) is below B's ($b_id)"

end=$(q "SELECT pg_current_wal_lsn()")
events=$(q "SELECT count(*) FROM settle.event")
entries=$(q "SELECT count(*) FROM settle.ledger_entry")
# the counts below compare the stream with the tables: both must hold the workload
# (fundings and 50 settled payments: at least 2 + 2 x 50 ledger entries)
[ "${events:-0}" -ge 52 ] && [ "${entries:-0}" -ge 102 ]
ok $? "the tables hold the workload ($events events, $entries ledger entries)"

# pgoutput through the publication, as a CDC tool or a subscriber reads it
pg_recvlogical -h 127.0.0.1 -p "$P" -U postgres -d postgres --slot settle_cdc --start --no-loop \
    --endpos "$end" -o proto_version=1 -o publication_names=settle_events -f "$TMP/cdc.bin" 2>"$TMP/cdc.err"
ok $? "pg_recvlogical (pgoutput, publication settle_events) reads up to $end"
cat "$TMP/cdc.err"

# decode pgoutput protocol 1: one line per insert: "relation first-column"
/usr/bin/python3 test/lib/pgoutput.py --first "$TMP/cdc.bin" >"$TMP/cdc.txt"
ok $? "the pgoutput stream decodes"

is "$(grep -c '^settle.event ' "$TMP/cdc.txt")" "$events" "every event arrives ($events)"
is "$(grep '^settle.event ' "$TMP/cdc.txt" | sort | uniq -d | wc -l)" "0" "no event arrives twice"
is "$(grep '^settle.event ' "$TMP/cdc.txt" | awk '{print $2}' | sort -n | tr '\n' ' ')" \
   "$(q "SELECT string_agg(event_id::text, ' ' ORDER BY event_id) || ' ' FROM settle.event")" \
   "the events received are exactly the table's"
is "$(grep -c '^settle.ledger_entry ' "$TMP/cdc.txt")" "$entries" "every ledger entry arrives ($entries)"
is "$(grep -c '^settle\.' "$TMP/cdc.txt")" "$(grep -vc '^BEGIN\|^COMMIT' "$TMP/cdc.txt")" "nothing but settle.event and settle.ledger_entry is published"
# commit order: B's event before A's although A's id is lower
order=$(grep -E "^settle.event ($a_id|$b_id)\$" "$TMP/cdc.txt" | awk '{print $2}' | tr '\n' ' ')
is "$order" "$b_id $a_id " "events arrive in commit order (B, then A)"
# the bulk call's 40 submitted events arrive in one transaction, in id order
bulk=$(awk '/^BEGIN/{t++} /^settle.event /{print t, $2}' "$TMP/cdc.txt" | awk '{c[$1]++} END {for (t in c) if (c[t] == 40) n++; print n + 0}')
is "$bulk" "1" "the 40 events of the bulk submit arrive as one transaction"
ids=$(grep '^settle.event ' "$TMP/cdc.txt" | awk '{print $2}' | grep -vxE "$a_id|$b_id")
is "$(echo "$ids" | tr '\n' ' ')" "$(echo "$ids" | sort -n | tr '\n' ' ')" \
   "without A and B, ids arrive ascending (the workload was sequential)"

# test_decoding shows the same order in text
pg_recvlogical -h 127.0.0.1 -p "$P" -U postgres -d postgres --slot settle_td --start --no-loop \
    --endpos "$end" -f "$TMP/td.txt" 2>"$TMP/td.err"
ok $? "pg_recvlogical (test_decoding) reads up to $end"
td=$(grep -oE "^table settle\.event: INSERT: event_id\[bigint\]:($a_id|$b_id) " "$TMP/td.txt" | grep -oE '[0-9]+ $' | tr -d ' ' | tr '\n' ' ')
is "$td" "$b_id $a_id " "test_decoding: B's event, then A's"
is "$(grep -c '^table settle\.event: INSERT' "$TMP/td.txt")" "$events" "test_decoding: every event"

q "SELECT pg_drop_replication_slot(s) FROM unnest(ARRAY['settle_cdc', 'settle_td']) s" >/dev/null
done_testing
