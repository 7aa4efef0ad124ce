#!/bin/bash
# Real time (docs/OPERATIONS.md, "Real time"): the worker wakes on committed
# payments, not on a clock.  With a heartbeat of 60 s (settle.cycle_interval),
# single payments settle within a fraction of a second of their commit, and a
# listener on the channel settle_settled receives every settled payment id
# exactly once, in payloads below NOTIFY's limit; pg_recvlogical on the
# publication settle_events receives each settled payment's event exactly once.  In two-phase mode clients
# hear of payments when the rail makes them final (settle_settled on
# confirmation, settle_failed when a pay-in fails for good), not when a cycle
# reserves them.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/scratch.sh
. test/lib/tap.sh

scratch realtime
scratch_ports P 55620
scratch_on_exit '[ -n "${LISTENER:-}" ] && kill "$LISTENER" 2>/dev/null'
scratch_cluster "$TMP/db"
cluster_init "$TMP/db" "$P" "settle.database = postgres" "settle.cycle_interval = 60s" "settle.batch_window = 10ms" \
    "wal_level = logical" || exit 1
cluster_start "$TMP/db" || exit 1
q() { cluster_psql "$P" -d postgres -At -c "$1"; }
q "CREATE EXTENSION settle" >/dev/null
# the second delivery path: logical decoding of the publication settle_events (docs/AUDIT.md)
q "SELECT settle_create_publication()" >/dev/null
q "SELECT pg_create_logical_replication_slot('settle_rt', 'pgoutput')" >/dev/null
q "SELECT settle_create_participant(p) FROM unnest(ARRAY['r_a','r_b','r_c']) p" >/dev/null
q "SELECT settle_create_account(p || '_usd', p, 'USD', opening_balance => 10000000) FROM unnest(ARRAY['r_a','r_b','r_c']) p" >/dev/null

# the listener: every payment id of every settle_settled notification, in arrival order
cat >"$TMP/listen.py" <<'PY'
import json, select, sys, time, psycopg2
conn = psycopg2.connect("host=127.0.0.1 port=%s user=postgres dbname=postgres" % sys.argv[1])
conn.autocommit = True
conn.cursor().execute("LISTEN settle_settled")
open(sys.argv[2] + ".ready", "w").close()
ids, payloads, longest = [], 0, 0
end = time.time() + float(sys.argv[3])
while time.time() < end and len(ids) < int(sys.argv[4]):
    if select.select([conn], [], [], 0.2) != ([], [], []):
        conn.poll()
        while conn.notifies:
            n = conn.notifies.pop(0)
            payloads += 1
            longest = max(longest, len(n.payload))
            ids += json.loads(n.payload)["payments"]
with open(sys.argv[2], "w") as f:
    json.dump({"ids": ids, "payloads": payloads, "longest": longest}, f)
PY
N_BULK=2000
/usr/bin/python3 "$TMP/listen.py" "$P" "$TMP/heard.json" 120 $((N_BULK + 20)) &
LISTENER=$!
wait_for 10 test -e "$TMP/heard.json.ready"

sleep 1   # the worker is idle: its next heartbeat is a minute away
for i in $(seq 1 20); do
    q "SELECT settle_submit('s$i', 1, 'USD', 'USD', 'r_a_usd', 'r_b_usd', 'r_b', 'sk$i')" >/dev/null
    sleep 0.1
done
all_single() { [ "$(q "SELECT count(*) FROM settle.payment WHERE transaction_id LIKE 's%' AND status = 'settled'")" = 20 ]; }
wait_for 10 all_single
ok $? "20 single payments settle with a 60 s heartbeat: the worker is woken by their commits"
lat=$(q "SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM settled_at - created_at) * 1000))::int || ' ' ||
                round(max(extract(epoch FROM settled_at - created_at) * 1000))::int
           FROM settle.payment WHERE transaction_id LIKE 's%'")
echo "# submit to settled (database timestamps): median ${lat% *} ms, max ${lat#* } ms"
[ "${lat#* }" -lt 2000 ]
ok $? "each settled within 2 s of its commit, far from the 60 s heartbeat (median ${lat% *} ms)"

# a burst through the bulk path, in 4 calls
for c in 0 1 2 3; do
    q "SELECT count(*) FROM settle_submit_bulk((SELECT jsonb_agg(jsonb_build_object(
          'transaction_id', 'b' || g, 'idempotency_key', 'bk' || g, 'amount', '1.00',
          'source_currency', 'USD', 'destination_currency', 'USD',
          'source_account', (ARRAY['r_a_usd','r_b_usd','r_c_usd'])[g % 3 + 1],
          'destination_account', (ARRAY['r_b_usd','r_c_usd','r_a_usd'])[g % 3 + 1],
          'counterparty_id', (ARRAY['r_b','r_c','r_a'])[g % 3 + 1]))
        FROM generate_series($((c * N_BULK / 4 + 1)), $(((c + 1) * N_BULK / 4))) g))" >/dev/null
done
all_bulk() { [ "$(q "SELECT count(*) FROM settle.payment WHERE status = 'settled'")" = $((N_BULK + 20)) ]; }
wait_for 30 all_bulk
ok $? "a burst of $N_BULK through the bulk path settles without waiting for the heartbeat"
wait "$LISTENER"; LISTENER=
settled_ids=$(q "SELECT string_agg(payment_id::text, ',' ORDER BY payment_id) FROM settle.payment WHERE status = 'settled'")
heard=$(/usr/bin/python3 -c "
import json; d = json.load(open('$TMP/heard.json'))
print(','.join(str(i) for i in sorted(d['ids'])))")
is "$(/usr/bin/python3 -c "import json; d = json.load(open('$TMP/heard.json')); print(len(d['ids']) == len(set(d['ids'])))")" "True" \
   "the listener heard no payment twice"
[ -n "$settled_ids" ] && [ "$heard" = "$settled_ids" ]
ok $? "it heard every settled payment ($(echo "$settled_ids" | tr ',' '\n' | wc -l)), and only those"
info=$(/usr/bin/python3 -c "import json; d = json.load(open('$TMP/heard.json')); print(d['payloads'], d['longest'])")
[ "${info#* }" -lt 8000 ]
ok $? "in ${info% *} notifications, the longest payload ${info#* } bytes (NOTIFY's limit is 8000)"
is "$(q "SELECT count(*) FROM settle.cycle WHERE run_by = 'worker'")" "$(q "SELECT count(*) FROM settle.cycle")" "every cycle was the worker's"
# the same payments through the publication: pg_recvlogical (pgoutput) reads every committed
# change up to now; each settled payment is one 'settled' event of settle.event
end=$(q "SELECT pg_current_wal_lsn()")
pg_recvlogical -h 127.0.0.1 -p "$P" -U postgres -d postgres --slot settle_rt --start --no-loop \
    --endpos "$end" -o proto_version=1 -o publication_names=settle_events -f "$TMP/rt.bin" 2>"$TMP/rt.err"
ok $? "pg_recvlogical (pgoutput, publication settle_events) reads up to $end" || cat "$TMP/rt.err"
/usr/bin/python3 test/lib/pgoutput.py "$TMP/rt.bin" >"$TMP/rt.txt"
ok $? "the stream decodes"
# the relation, then settle.event's columns: event_id, occurred_at, entity, entity_id, event_type, ...
awk -F'\t' '$1 == "settle.event" && $4 == "payment" && $6 == "settled" { print $5 }' "$TMP/rt.txt" | sort -n >"$TMP/rt_ids"
is "$(sort -n "$TMP/rt_ids" | uniq -d | wc -l)" 0 "the stream carries no settled payment twice"
is "$(paste -sd, "$TMP/rt_ids")" "$settled_ids" "it carries every settled payment ($(wc -l <"$TMP/rt_ids")), and only those"
q "SELECT pg_drop_replication_slot('settle_rt')" >/dev/null
# --- two-phase: clients hear of final states, not of reservations ----------------------
# (docs/OPERATIONS.md, "Real time"): settle_settled when the rail's confirmation of the
# pay-ins posts the cycle, settle_failed for the defaulter's payments when a pay-in fails
cat >"$TMP/listen2.py" <<'PY'
import select, sys, time, psycopg2
conn = psycopg2.connect("host=127.0.0.1 port=%s user=postgres dbname=postgres" % sys.argv[1])
conn.autocommit = True
cur = conn.cursor()
cur.execute("LISTEN settle_settled")
cur.execute("LISTEN settle_failed")
open(sys.argv[2] + ".ready", "w").close()
end = time.time() + float(sys.argv[3])
with open(sys.argv[2], "w") as out:
    while time.time() < end:
        if select.select([conn], [], [], 0.2) != ([], [], []):
            conn.poll()
            while conn.notifies:
                n = conn.notifies.pop(0)
                out.write("%s %s\n" % (n.channel, n.payload))
                out.flush()
PY
heard_ids() {  # heard_ids CHANNEL: the payment ids heard on it, sorted, comma-separated
    /usr/bin/python3 -c "
import json, sys
ids = []
for line in open('$TMP/heard2.txt'):
    ch, payload = line.split(' ', 1)
    if ch == '$1':
        ids += json.loads(payload)['payments']
print(','.join(str(i) for i in sorted(ids)))"
}
ids_of() { q "SELECT coalesce(string_agg(payment_id::text, ',' ORDER BY payment_id), '') FROM settle.payment WHERE transaction_id LIKE '$1'"; }
q "ALTER SYSTEM SET settle.two_phase = on" >/dev/null
q "SELECT pg_reload_conf()" >/dev/null
sleep 1
/usr/bin/python3 "$TMP/listen2.py" "$P" "$TMP/heard2.txt" 60 &
LISTENER=$!
wait_for 10 test -e "$TMP/heard2.txt.ready"
for i in 1 2 3 4 5; do
    q "SELECT settle_submit('tp$i', 1, 'USD', 'USD', 'r_a_usd', 'r_b_usd', 'r_b', 'tpk$i')" >/dev/null
done
all_reserved() { [ "$(q "SELECT count(*) FROM settle.payment WHERE transaction_id LIKE 'tp%' AND status = 'reserved'")" = 5 ]; }
wait_for 20 all_reserved
ok $? "two-phase: the worker's cycle reserves the 5 payments"
sleep 1
is "$(wc -l <"$TMP/heard2.txt")" 0 "nothing is heard while they are only reserved"
q "SELECT count(settle_rail_confirm(f.batch_id, 'ref-' || f.batch_id)) FROM settle_rail_fetch(100) f WHERE f.direction = 'pay_in'" >/dev/null
is "$(q "SELECT count(*) FROM settle.payment WHERE transaction_id LIKE 'tp%' AND status = 'settled'")" 5 "the rail confirms the pay-in: they settle"
heard_settled() { [ "$(heard_ids settle_settled)" = "$(ids_of 'tp%')" ]; }
wait_for 10 heard_settled
ok $? "the listener hears exactly those 5 ids on settle_settled, once each, after the confirmation"
is "$(head -1 "$TMP/heard2.txt" | sed 's/^settle_settled {"cycle": [0-9]*, "part": 1, "parts": 1, "payments": \[.*\]}$/format ok/')" "format ok" \
   "the payload has the direct mode's format: cycle, part, parts, payments"
# a pay-in that fails for good: the defaulter's payments fail, and clients hear it
for i in 1 2 3; do
    q "SELECT settle_submit('tf$i', 1, 'USD', 'USD', 'r_c_usd', 'r_a_usd', 'r_a', 'tfk$i')" >/dev/null
done
fail_reserved() { [ "$(q "SELECT count(*) FROM settle.payment WHERE transaction_id LIKE 'tf%' AND status = 'reserved'")" = 3 ]; }
wait_for 20 fail_reserved
ok $? "3 payments of r_c reserved"
q "SELECT count(settle_rail_fail(f.batch_id, 'insufficient funds at the bank', false)) FROM settle_rail_fetch(100) f
    WHERE f.direction = 'pay_in' AND f.participant_id = 'r_c'" >/dev/null
is "$(q "SELECT count(*) FROM settle.payment WHERE transaction_id LIKE 'tf%' AND status = 'failed'")" 3 "r_c's pay-in fails for good: its payments fail"
heard_failed() { [ "$(heard_ids settle_failed)" = "$(ids_of 'tf%')" ]; }
wait_for 10 heard_failed
ok $? "the listener hears exactly those 3 ids on settle_failed"
is "$(heard_ids settle_settled)" "$(ids_of 'tp%')" "and nothing more on settle_settled"
kill "$LISTENER" 2>/dev/null; wait "$LISTENER" 2>/dev/null; LISTENER=
q "ALTER SYSTEM RESET settle.two_phase" >/dev/null
q "SELECT pg_reload_conf()" >/dev/null
done_testing
