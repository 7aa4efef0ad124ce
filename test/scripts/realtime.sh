#!/bin/bash
# Real time (docs/OPERATIONS.md, "Real time"): the worker wakes on committed
# payments, not on a clock.  With a heartbeat of 60 s (settle.cycle_interval),
# single payments settle within a fraction of a second of their commit, and a
# listener on the channel settle_settled receives every settled payment id
# exactly once, in payloads below NOTIFY's limit.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/scratch.sh
. test/lib/tap.sh

scratch realtime
scratch_ports P 55620
scratch_on_exit '[ -n "${LISTENER:-}" ] && kill "$LISTENER" 2>/dev/null'
scratch_cluster "$TMP/db"
cluster_init "$TMP/db" "$P" "settle.database = postgres" "settle.cycle_interval = 60s" "settle.batch_window = 10ms" || exit 1
cluster_start "$TMP/db" || exit 1
q() { cluster_psql "$P" -d postgres -At -c "$1"; }
q "CREATE EXTENSION settle" >/dev/null
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
[ "$heard" = "$settled_ids" ]
ok $? "it heard every settled payment ($(echo "$settled_ids" | tr ',' '\n' | wc -l)), and only those"
info=$(/usr/bin/python3 -c "import json; d = json.load(open('$TMP/heard.json')); print(d['payloads'], d['longest'])")
[ "${info#* }" -lt 8000 ]
ok $? "in ${info% *} notifications, the longest payload ${info#* } bytes (NOTIFY's limit is 8000)"
is "$(q "SELECT count(*) FROM settle.cycle WHERE run_by = 'worker'")" "$(q "SELECT count(*) FROM settle.cycle")" "every cycle was the worker's"
done_testing
