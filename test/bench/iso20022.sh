#!/bin/bash
# ISO 20022 intake throughput (issue #30; docs/ISO20022.md): the same
# payments posted to settle-gateway as pacs.009.001.08 messages of 1, 100 and
# 1,000 transactions (POST /api/v1/iso20022: schema validation with libxml2,
# mapping, settle_submit_bulk, a pacs.002 answer) and as the JSON path's
# bodies of the same sizes (POST /api/v1/transactions: one payment, or an
# array), alternating, ISO_BENCH_REPS times each.  Its own cluster (fsync on,
# the worker off: intake alone), one participant's API client,
# ISO_BENCH_CONN keep-alive connections from a Python client sending
# pre-built bodies, ISO_BENCH_N payments per point.  Prints accepted
# payments/s per point, the median and range, and the ratio ISO / JSON.
# Part of make bench (ISO_BENCH_DOC=file replaces the file's "## ISO 20022
# intake" section); by itself:
#   PGBIN=... bash test/bench/iso20022.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/scratch.sh

N=${ISO_BENCH_N:-20000}
REPS=${ISO_BENCH_REPS:-2}
CONN=${ISO_BENCH_CONN:-8}
SIZES=${ISO_BENCH_SIZES:-"1 100 1000"}
PY=/usr/bin/python3
GATEWAY=$PGBIN/settle-gateway
[ -x "$GATEWAY" ] || GATEWAY=src/gateway/settle-gateway
scratch bench-iso20022
scratch_ports P 55720 G 18720
scratch_on_exit '[ -n "${GW_PID:-}" ] && kill "$GW_PID" 2>/dev/null'
scratch_cluster "$TMP/db"
cluster_init "$TMP/db" "$P" "settle.worker_enabled = off" "fsync = on" "shared_buffers = 256MB" \
    "max_wal_size = 4GB" || exit 1
cluster_start "$TMP/db" || exit 1
Q_PORT=$P
q "CREATE EXTENSION settle" >/dev/null
q "SELECT settle_create_participant('AAAAUS33'), settle_create_participant('BBBBUS33');
   SELECT settle_create_account('acc_a_usd', 'AAAAUS33', 'USD', opening_balance => 100000000);
   SELECT settle_create_account('acc_b_usd', 'BBBBUS33', 'USD');
   CREATE ROLE bank_a_app LOGIN; SELECT settle_map_role('bank_a_app', 'AAAAUS33');
   CREATE ROLE gateway LOGIN IN ROLE settle_gateway;" >/dev/null || exit 1
TOKEN=$(q "SELECT settle_issue_api_token('bank_a_bench', 'bank_a_app')")
"$GATEWAY" --port "$G" --db "host=127.0.0.1 port=$P user=gateway dbname=postgres" --max-body 4194304 \
    --max-array 1000 --iso20022-xsd-dir iso20022/xsd >"$TMP/gw.log" 2>&1 &
GW_PID=$!
for _ in $(seq 1 50); do curl -s -o /dev/null "http://127.0.0.1:$G/metrics" && break; sleep 0.2; done

"$PY" - "$G" "$TOKEN" "$N" "$REPS" "$CONN" "$SIZES" >"$TMP/out" <<'PY'
import http.client, json, statistics, sys, threading, time

port, token, n, reps, conn, sizes = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), [int(s) for s in sys.argv[6].split()]

def tx_xml(tag, i):
    return ("<CdtTrfTxInf><PmtId><EndToEndId>E%d</EndToEndId><TxId>%s-T%d</TxId></PmtId>"
            "<IntrBkSttlmAmt Ccy=\"USD\">%d.%02d</IntrBkSttlmAmt><IntrBkSttlmDt>2099-12-31</IntrBkSttlmDt>"
            "<Dbtr><FinInstnId><BICFI>AAAAUS33</BICFI></FinInstnId></Dbtr>"
            "<DbtrAcct><Id><Othr><Id>acc_a_usd</Id></Othr></Id></DbtrAcct>"
            "<Cdtr><FinInstnId><BICFI>BBBBUS33</BICFI></FinInstnId></Cdtr>"
            "<CdtrAcct><Id><Othr><Id>acc_b_usd</Id></Othr></Id></CdtrAcct></CdtTrfTxInf>"
            % (i, tag, i, 1 + i % 500, i % 100))

def iso_body(tag, msg, first, size):
    return ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
            "<Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:pacs.009.001.08\"><FICdtTrf><GrpHdr>"
            "<MsgId>%s</MsgId><CreDtTm>2026-12-08T00:00:00Z</CreDtTm><NbOfTxs>%d</NbOfTxs>"
            "<SttlmInf><SttlmMtd>CLRG</SttlmMtd></SttlmInf></GrpHdr>%s</FICdtTrf></Document>"
            % (msg, size, "".join(tx_xml(tag, i) for i in range(first, first + size)))).encode()

def json_body(tag, first, size):
    rows = [{"transaction_id": "%s_%d" % (tag, i), "idempotency_key": "%s_%d" % (tag, i),
             "amount": "%d.%02d" % (1 + i % 500, i % 100), "source_currency": "USD", "destination_currency": "USD",
             "source_account": "acc_a_usd", "destination_account": "acc_b_usd", "counterparty_id": "BBBBUS33"}
            for i in range(first, first + size)]
    return json.dumps(rows[0] if size == 1 else rows).encode()

def run(kind, tag, size):
    bodies = [iso_body(tag, "%s-%d" % (tag, m), m * size, size) if kind == "iso" else json_body(tag, m * size, size)
              for m in range(n // size)]
    path = "/api/v1/iso20022" if kind == "iso" else "/api/v1/transactions"
    ctype = "application/xml" if kind == "iso" else "application/json"
    lock = threading.Lock()
    state = {"next": 0, "bad": 0}
    def worker():
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        while True:
            with lock:
                i = state["next"]; state["next"] += 1
            if i >= len(bodies):
                break
            c.request("POST", path, body=bodies[i], headers={"Authorization": "Bearer " + token, "Content-Type": ctype})
            r = c.getresponse(); body = r.read()
            if r.status not in (200, 201):
                if state["bad"] == 0: print("answer %d: %s" % (r.status, body[:300]), file=sys.stderr)
                with lock:
                    state["bad"] += 1
        c.close()
    t0 = time.time()
    ts = [threading.Thread(target=worker) for _ in range(conn)]
    for t in ts: t.start()
    for t in ts: t.join()
    secs = time.time() - t0
    if state["bad"]:
        print("FAIL %s %s size %d: %d requests not answered 200/201" % (kind, tag, size, state["bad"]))
    return len(bodies) * size / secs

rows = []
for size in sizes:
    res = {"iso": [], "json": []}
    for r in range(reps):
        order = ["iso", "json"] if r % 2 == 0 else ["json", "iso"]
        for kind in order:
            res[kind].append(run(kind, "%s%d_%d" % (kind, size, r), size))
    mi, mj = statistics.median(res["iso"]), statistics.median(res["json"])
    print("iso20022 size=%d iso=%.0f (%.0f-%.0f) json=%.0f (%.0f-%.0f) ratio=%.2f" % (
        size, mi, min(res["iso"]), max(res["iso"]), mj, min(res["json"]), max(res["json"]), mi / mj))
PY
cat "$TMP/out"
grep -q '^FAIL' "$TMP/out" && exit 1
# every payment of every run accepted (a 200 can carry refusals)
expected=0
for size in $SIZES; do expected=$((expected + 2 * REPS * (N / size) * size)); done
written=$(q "SELECT count(*) FROM settle.payment")
[ "$written" = "$expected" ] || { echo "FAIL: $written payments written, $expected sent"; exit 1; }

if [ -n "${ISO_BENCH_DOC:-}" ]; then
    ROWS=$(awk '/^iso20022 size=/ { split($2, s, "="); split($3, i, "="); split($5, j, "="); split($7, r, "=");
                 printf "| %s | %s %s | %s %s | %s |\n", s[2], i[2], $4, j[2], $6, r[2] }' "$TMP/out")
    SECTION="## ISO 20022 intake

\`make bench\` (\`test/bench/iso20022.sh\`), $(date -u +%Y-%m-%d), $(nproc) cores, one node, fsync on, the
worker off: $N payments per point posted to settle-gateway from $CONN keep-alive connections (a
Python client sending pre-built bodies) as pacs.009.001.08 messages (schema-validated, mapped,
answered with a pacs.002) and as the JSON path's bodies of the same number of payments (one
object, or an array), alternating, $REPS times each. Accepted payments per second, median (range):

| payments per message | ISO 20022 (pacs.009) | JSON | ISO / JSON |
|---|---|---|---|
$ROWS"
    printf '%s\n' "$SECTION" | "$PY" test/bench/doc_section.py "$ISO_BENCH_DOC" "## Profiling"
fi
