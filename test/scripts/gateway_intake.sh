#!/bin/bash
# Issue #26 over HTTP: what a request means does not depend on which gateway
# (or database session) carries it.  Two gateways whose libpq environments
# differ (PGTZ, PGDATESTYLE) replay the same request byte for byte and answer
# the same bytes for a GET; a deadline without an offset, or a word, is
# refused by both (422, SE052, field "deadline"); every accepted
# transaction_id reads back at the Location the gateway answered, and the ids
# the API cannot address are refused at intake (SE004); connections over
# --max-connections are answered 503 with Retry-After or closed at once,
# never left waiting in the listen queue.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/scratch.sh
. test/lib/tap.sh

PY=/usr/bin/python3
GATEWAY=${GATEWAY:-$PGBIN/settle-gateway}
[ -x "$GATEWAY" ] || GATEWAY=src/gateway/settle-gateway
for bin in curl "$GATEWAY"; do
    command -v "$bin" >/dev/null || { echo "Bail out! $bin is missing (make; test/deps.sh)"; exit 1; }
done

scratch gateway_intake
scratch_ports P 55640 G1 18640 G2 18641 G3 18642
PIDS=()
scratch_on_exit 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done'
scratch_cluster "$TMP/db"

cluster_init "$TMP/db" "$P" "settle.worker_enabled = off" "timezone = 'Asia/Tokyo'" || exit 1
cluster_start "$TMP/db" || exit 1
q() { cluster_psql "$P" -d postgres -At -c "$1"; }
q "CREATE EXTENSION settle" >/dev/null
q "SELECT settle_create_participant('bank_a'), settle_create_participant('bank_b');
   SELECT settle_create_account('acc_a', 'bank_a', 'USD', opening_balance => 1000);
   SELECT settle_create_account('acc_b', 'bank_b', 'USD');
   CREATE ROLE bank_a_app LOGIN;
   SELECT settle_map_role('bank_a_app', 'bank_a');
   CREATE ROLE gateway LOGIN IN ROLE settle_gateway;" >/dev/null || exit 1
TOKEN=$(q "SELECT settle_issue_api_token('bank_a_web', 'bank_a_app')")

start_gateway() {  # port log env-assignments... -- args...
    local port=$1 log=$2 envs=()
    shift 2
    while [ $# -gt 0 ] && [ "$1" != -- ]; do envs+=("$1"); shift; done
    shift
    env "${envs[@]}" "$GATEWAY" --port "$port" --db "host=127.0.0.1 port=$P user=gateway dbname=postgres" "$@" >"$log" 2>&1 &
    PIDS+=($!)
}
up() { curl -s -o /dev/null "$1/metrics"; }
start_gateway "$G1" "$TMP/g1.log" PGTZ=UTC PGDATESTYLE="ISO, MDY" --
start_gateway "$G2" "$TMP/g2.log" PGTZ=America/New_York PGDATESTYLE="SQL, DMY" --
U1=http://127.0.0.1:$G1
U2=http://127.0.0.1:$G2
wait_for 10 up "$U1" && wait_for 10 up "$U2"
ok $? "two gateways listen, one with PGTZ=UTC, one with PGTZ=America/New_York" \
    || { cat "$TMP/g1.log" "$TMP/g2.log"; done_testing; exit 1; }
# the sessions really differ: what each gateway's connections see
is "$(PGTZ=America/New_York cluster_psql "$P" -d postgres -At -c "SHOW TimeZone")" "America/New_York" \
   "libpq passes PGTZ to the session (so the two gateways' sessions differ)"

H=(-H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json")
post() {  # url body-file name: status in $CODE, answer in $TMP/NAME.{hdr,body}
    CODE=$(curl -s -X POST -D "$TMP/$3.hdr" -o "$TMP/$3.body" -w '%{http_code}' --max-time 20 "${H[@]}" \
        --data-binary "@$2" "$1/api/v1/transactions")
}
get() {  # url path name
    CODE=$(curl -s --path-as-is -D "$TMP/$3.hdr" -o "$TMP/$3.body" -w '%{http_code}' --max-time 20 \
        -H "Authorization: Bearer $TOKEN" "$1$2")
}
hdr() { grep -i "^$2:" "$TMP/$1.hdr" | head -1 | cut -d: -f2- | tr -d '\r' | sed 's/^ //'; }
jf() { $PY -c 'import json,sys; v=json.load(open(sys.argv[2]))
for k in sys.argv[1].split("."): v = v[int(k)] if isinstance(v, list) else v.get(k)
print("null" if v is None else v)' "$1" "$TMP/$2.body"; }

# --- the same request through two gateways -------------------------------------
printf '%s' '{"transaction_id":"tz_1","amount":"12.50","source_currency":"USD","destination_currency":"USD","source_account":"acc_a","destination_account":"acc_b","counterparty_id":"bank_b","idempotency_key":"tz_k1","deadline":"2099-06-01T12:00:00-04:00"}' >"$TMP/req1.json"
post "$U1" "$TMP/req1.json" first
is "$CODE" 201 "POST through the UTC gateway: 201"
post "$U2" "$TMP/req1.json" again
is "$CODE" 200 "the same bytes through the New York gateway: 200, a replay (not 409)"
is "$(hdr again Idempotent-Replayed)" true "Idempotent-Replayed: true"
cmp -s "$TMP/first.body" "$TMP/again.body"; ok $? "the replay's body is the original's, byte for byte"
is "$(q "SELECT count(*) || ' ' || to_char(deadline AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM settle.payment WHERE idempotency_key = 'tz_k1' GROUP BY deadline")" \
   "1 2099-06-01T16:00:00Z" "one payment, its deadline the instant the offset gave"
# and the other way round, a new payment first through New York
sed 's/tz_1/tz_2/; s/tz_k1/tz_k2/; s/12:00:00-04:00/23:30:00.25+05:30/' "$TMP/req1.json" >"$TMP/req2.json"
post "$U2" "$TMP/req2.json" first2
c2=$CODE
post "$U1" "$TMP/req2.json" again2
is "$c2/$CODE" 201/200 "a payment made through New York (201) replays through UTC (200)"

# a GET answers the same bytes through both gateways, times in UTC
get "$U1" /api/v1/transactions/tz_1 get1
c1=$CODE
get "$U2" /api/v1/transactions/tz_1 get2
is "$c1/$CODE" 200/200 "GET through both gateways: 200"
cmp -s "$TMP/get1.body" "$TMP/get2.body"; ok $? "the two GET answers are the same bytes"
is "$(jf deadline get2)" "2099-06-01T16:00:00.000000Z" "GET's deadline is RFC 3339 in UTC"

# --- deadlines refused by both -------------------------------------------------
n=0
for d in "2099-06-01T12:00:00" "tomorrow" "2099-06-01 12:00:00+00" "2099-06-01"; do
    n=$((n + 1))
    sed "s/tz_1/tz_r$n/; s/tz_k1/tz_rk$n/; s/2099-06-01T12:00:00-04:00/$d/" "$TMP/req1.json" >"$TMP/bad.json"
    post "$U1" "$TMP/bad.json" bad1
    c1=$CODE
    post "$U2" "$TMP/bad.json" bad2
    is "$c1/$CODE/$(jf sqlstate bad1)/$(jf sqlstate bad2)/$(jf field bad2)" "422/422/SE052/SE052/deadline" \
       "deadline \"$d\": 422 SE052 naming the field, through both gateways"
done
is "$(q "SELECT count(*) FROM settle.payment WHERE transaction_id LIKE 'tz\\_r%'")" 0 "none of them was written"

# --- identifiers: every accepted id reads back at its Location ----------------------
# ids with bytes that need escapes in a path, dots, and the whole printable set
# (but '/') in 8 ids of at most 16 bytes; then the ids the API cannot address
$PY - "$TMP/ids.json" <<'PYEOF'
import json, sys
chars = [chr(c) for c in range(0x21, 0x7f) if chr(c) != '/']
ids = ["a%b", "a%2Fb", "%2e%2e", "a?b=c", "a#b", "a+b", "a;b", "a\\b", 'a"b', "~x", "...", ".x", "x.", "a..b",
       "-", "%"] + ["".join(chars[i:i + 12]) for i in range(0, len(chars), 12)]
json.dump({"good": ids, "bad": ["loc/slash", "/", ".", ".."]}, open(sys.argv[1], "w"))
PYEOF
$PY - "$TMP/ids.json" "$G1" "$TOKEN" >"$TMP/ids.log" 2>&1 <<'PYEOF'
import http.client, json, sys
ids = json.load(open(sys.argv[1]))
port, token = int(sys.argv[2]), sys.argv[3]
def req(method, path, body=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    h = {"Authorization": "Bearer " + token}
    if body is not None:
        h["Content-Type"] = "application/json"
    c.request(method, path, body=body, headers=h)
    r = c.getresponse()
    out = (r.status, dict(r.getheaders()), r.read())
    c.close()
    return out
def pay(i, txid):
    return json.dumps({"transaction_id": txid, "amount": "1", "source_currency": "USD",
                       "destination_currency": "USD", "source_account": "acc_a", "destination_account": "acc_b",
                       "counterparty_id": "bank_b", "idempotency_key": "id_k%d" % i})
good = bad = 0
for i, txid in enumerate(ids["good"]):
    st, h, body = req("POST", "/api/v1/transactions", pay(i, txid))
    loc = h.get("Location")
    if st != 201 or not loc:
        print("POST %r: %d %s" % (txid, st, body[:200]))
        continue
    st, h, body = req("GET", loc)
    if st == 200 and json.loads(body)["transaction_id"] == txid:
        good += 1
    else:
        print("GET %s for %r: %d %s" % (loc, txid, st, body[:200]))
for i, txid in enumerate(ids["bad"]):
    st, h, body = req("POST", "/api/v1/transactions", pay(100 + i, txid))
    p = json.loads(body)
    if st == 422 and p.get("sqlstate") == "SE004" and p.get("field") == "transaction_id":
        bad += 1
    else:
        print("POST %r: %d %s" % (txid, st, body[:200]))
print("read back: %d/%d" % (good, len(ids["good"])))
print("refused: %d/%d" % (bad, len(ids["bad"])))
PYEOF
sed 's/^/# /' "$TMP/ids.log"
NGOOD=$($PY -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["good"]))' "$TMP/ids.json")
grep -q "read back: $NGOOD/$NGOOD" "$TMP/ids.log"
ok $? "every accepted transaction_id ($NGOOD, the printable set but '/') reads back at its Location: 200, the same id"
grep -q "refused: 4/4" "$TMP/ids.log"
ok $? "'/' anywhere, '.' and '..' are refused at intake: 422 SE004 naming transaction_id"
# curl follows a Location as a client would
post "$U1" <(printf '%s' '{"transaction_id":"q?x#y%z","amount":"1","source_currency":"USD","destination_currency":"USD","source_account":"acc_a","destination_account":"acc_b","counterparty_id":"bank_b","idempotency_key":"tz_curl"}') curl1
is "$CODE $(hdr curl1 Location)" "201 /api/v1/transactions/q%3Fx%23y%25z" "Location percent-encodes the id"
get "$U1" "$(hdr curl1 Location)" curl2
is "$CODE $(jf transaction_id curl2)" "200 q?x#y%z" "curl GETs it there"
get "$U1" /api/v1/transactions/tz_1%00junk nul
is "$CODE" 404 "a GET with %00 in the id does not read the payment named by the bytes before it (404)"
get "$U1" /api/v1/transactions/tz%5F1 escaped
is "$CODE $(jf transaction_id escaped)" "200 tz_1" "an id with needless escapes (tz%5F1) is decoded: 200"
get "$U1" /api/v1/transactions/loc%2Fslash slash
is "$CODE $(jf field slash)" "404 transaction_id" "a GET of an id the rule refuses: 404 naming transaction_id"

# --- more connections than --max-connections --------------------------------------
start_gateway "$G3" "$TMP/g3.log" -- --max-connections 4 --http-threads 2 --connection-timeout 10
U3=http://127.0.0.1:$G3
wait_for 10 up "$U3"
ok $? "a gateway with --max-connections 4 listens" || { cat "$TMP/g3.log"; done_testing; exit 1; }
$PY - "$G3" >"$TMP/limit.log" 2>&1 <<'PYEOF'
import socket, sys, time
port = int(sys.argv[1])
def conn():
    return socket.create_connection(("127.0.0.1", port), timeout=5)
def ask(s):
    """a GET /api/v1/health on s: the status line, "closed", or "no answer" (5 s)"""
    try:
        s.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                return "closed", data
            data += chunk
        return data.split(b"\r\n")[0].decode(), data
    except ConnectionResetError:
        return "closed", b""
    except socket.timeout:
        return "no answer", b""
held = [conn() for _ in range(4)]          # the limit, held idle
time.sleep(0.3)
# 20 over the limit: each asks and is answered
answers = []
for _ in range(20):
    s = conn()
    answers.append(ask(s))
    s.close()
n503 = sum(1 for a, d in answers if a.endswith("503 Service Unavailable"))
retry = sum(1 for a, d in answers if b"\r\nRetry-After: " in d)
print("over the limit: %d answered 503, %d with Retry-After, %s" % (n503, retry, sorted(set(a for a, d in answers))))
# fill the 503 allowance with idle connections (64), then more: closed at once
idle = []
for _ in range(70):
    try:
        idle.append(conn())
    except OSError:
        break
time.sleep(0.5)
late = []
for _ in range(10):
    try:
        s = conn()
        late.append(ask(s)[0])
        s.close()
    except OSError as e:
        late.append("refused")
print("beyond the allowance: %s" % sorted(late))
for s in idle + held:
    s.close()
time.sleep(0.5)
s = conn()
print("after they close: %s" % ask(s)[0])
PYEOF
sed 's/^/# /' "$TMP/limit.log"
grep -q "over the limit: 20 answered 503, 20 with Retry-After" "$TMP/limit.log"
ok $? "20 connections over --max-connections 4: each request answered 503 with Retry-After, none waits"
grep -qE "beyond the allowance: \[('(closed|refused)', )*'(closed|refused)'\]" "$TMP/limit.log"
ok $? "beyond the 503 allowance (64 more): new connections are closed at once, none waits"
grep -q "after they close: HTTP/1.1 200 OK" "$TMP/limit.log"
ok $? "once the connections close, a new client is served (200)"

done_testing
