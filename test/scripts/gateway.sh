#!/bin/bash
# settle-gateway over real HTTP (curl, and Python's standard library for the
# hostile clients): every endpoint and status code, tokens (issued, hashed,
# revoked, enforced by the database), replay and conflict, coalescing,
# answers only after commit (a synchronous standby that never answers holds
# the answer back), TLS with a self-signed certificate, hostile HTTP
# (oversized bodies, huge headers, malformed JSON, slow clients, many
# connections, garbage bytes) with bounded memory, and every answer checked
# against docs/openapi.json.  Everything started here is stopped here.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/scratch.sh
. test/lib/tap.sh
. test/lib/openapi.sh

PY=/usr/bin/python3
GATEWAY=${GATEWAY:-$PGBIN/settle-gateway}
[ -x "$GATEWAY" ] || GATEWAY=src/gateway/settle-gateway
for bin in curl openssl "$GATEWAY"; do
    command -v "$bin" >/dev/null || { echo "Bail out! $bin is missing (make; test/deps.sh)"; exit 1; }
done

scratch gateway
scratch_ports P 55620 PS 55621 G 18620 G2 18621 G3 18622 GT 18623 DEAD 18624 GR 18625 CL 18626 GC 18627 GD 18628
PIDS=()
scratch_on_exit 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done'
scratch_cluster "$TMP/standby" "$TMP/db"

cluster_init "$TMP/db" "$P" "settle.cycle_interval = 200ms" "settle.database = postgres" || exit 1
cluster_start "$TMP/db" || exit 1
Q_PORT=$P    # q SQL: test/lib/cluster.sh

q "CREATE EXTENSION settle" >/dev/null
q "SELECT settle_create_participant('bank_a'), settle_create_participant('bank_b');
   SELECT settle_create_account('acc_001', 'bank_a', 'USD', opening_balance => 1000000000);
   SELECT settle_create_account('acc_002', 'bank_b', 'EUR');
   SELECT settle_create_account('acc_003', 'bank_b', 'USD', opening_balance => 1000);
   SELECT settle_set_fx_rate('USD', 'EUR', 0.92);
   CREATE ROLE bank_a_app LOGIN; CREATE ROLE bank_b_app LOGIN;
   SELECT settle_map_role('bank_a_app', 'bank_a'), settle_map_role('bank_b_app', 'bank_b');
   CREATE ROLE gateway LOGIN IN ROLE settle_gateway;" >/dev/null || exit 1
TOKEN_A=$(q "SELECT settle_issue_api_token('bank_a_web', 'bank_a_app')")
TOKEN_B=$(q "SELECT settle_issue_api_token('bank_b_web', 'bank_b_app')")
[[ "$TOKEN_A" =~ ^stl_[0-9a-f]{64}$ ]]
ok $? "settle_issue_api_token returns a token of 64 hex digits"
is "$(q "SELECT count(*) FROM settle.api_client WHERE token_hash = sha256(convert_to('$TOKEN_A', 'UTF8'))
          AND position(convert_to('$TOKEN_A', 'UTF8') IN token_hash) = 0")" 1 \
   "only the token's SHA-256 is stored"
is "$(q "SELECT pg_has_role('settle_gateway', 'bank_a_app', 'MEMBER')")" t \
   "settle_gateway may SET ROLE to a client's role once it has a token"
q "SELECT settle_issue_api_token('bank_a_web', 'bank_a_app')" >/dev/null 2>"$TMP/err"
grep -q "SE160\|already exists" "$TMP/err"; ok $? "a client id is issued once (SE160)"
cluster_psql "$P" -d postgres -At -v VERBOSITY=verbose -c "SELECT settle_issue_api_token('x', 'gateway')" >/dev/null 2>"$TMP/err"
grep -q "SE036" "$TMP/err"; ok $? "a token only for a role mapped to a participant (SE036)"
cluster_psql "$P" -d postgres -At -U bank_a_app -c "SELECT settle_issue_api_token('y', 'bank_a_app')" >/dev/null 2>"$TMP/err"
# refused for its rights, not for any failure (a dead server also exits non-zero)
grep -q "permission denied" "$TMP/err"; ok $? "a submitter cannot issue tokens (permission denied)"

start_gateway() {  # port log args...
    local port=$1 log=$2
    shift 2
    "$GATEWAY" --port "$port" --db "host=127.0.0.1 port=$P user=gateway dbname=postgres" "$@" >"$log" 2>&1 &
    PIDS+=($!)
    LAST_PID=$!
}
up() { curl -s -o /dev/null "$1/metrics" -k; }
start_gateway "$G" "$TMP/gw.log" --max-body 8192 --connection-timeout 2 --max-connections 100 \
    --auth-ttl 1 --health-interval-ms 100 --batch-wait-us 2000
GW_PID=$LAST_PID
U=http://127.0.0.1:$G
wait_for 10 up "$U"
ok $? "settle-gateway listens" || { cat "$TMP/gw.log"; done_testing; exit 1; }

# call (test/lib/openapi.sh): every call is checked against docs/openapi.json at the end
CALL_MAX_TIME=20
hdr() { grep -i "^$2:" "$TMP/x/$1.hdr" | head -1 | cut -d: -f2- | tr -d '\r' | sed 's/^ //'; }
jf() { $PY -c 'import json,sys; v=json.load(sys.stdin)
for k in sys.argv[1].split("."): v = v[int(k)] if isinstance(v, list) else v.get(k)
print("null" if v is None else str(v).lower() if isinstance(v, bool) else v)' "$1"; }
A=(-H "Authorization: Bearer $TOKEN_A" -H "Content-Type: application/json")
B=(-H "Authorization: Bearer $TOKEN_B" -H "Content-Type: application/json")
SEED='{"transaction_id": "txn_001", "amount": "100000.00", "source_currency": "USD",
 "destination_currency": "EUR", "source_account": "acc_001", "destination_account": "acc_002",
 "counterparty_id": "bank_b", "idempotency_key": "req_001"}'
pay() {  # txid key [amount] [src] [dst] [cpty] [dstcur]: a payment's JSON
    echo "{\"transaction_id\":\"$1\",\"amount\":\"${3:-1.00}\",\"source_currency\":\"USD\",\"destination_currency\":\"${7:-USD}\",\"source_account\":\"${4:-acc_001}\",\"destination_account\":\"${5:-acc_003}\",\"counterparty_id\":\"${6:-bank_b}\",\"idempotency_key\":\"$2\"}"
}

# --- health and metrics ------------------------------------------------------
call health GET /api/v1/health
is "$CODE" 200 "GET /api/v1/health: 200"
is "$(echo "$BODY" | jf database.role)/$(echo "$BODY" | jf worker.running)/$(echo "$BODY" | jf synchronous_standby.required)" \
   "primary/true/false" "health: primary, worker running, no synchronous standby required"
call metrics GET /metrics
is "$CODE" 200 "GET /metrics: 200"
grep -q '^settle_gateway_requests_total{code="200"} [1-9]' "$TMP/x/metrics.body"
ok $? "metrics count requests by status"

# --- the seed's request: new, replay, conflict ---------------------------------
call seed POST /api/v1/transactions "${A[@]}" -d "$SEED"
is "$CODE" 201 "POST the seed's payment: 201 Created"
is "$(hdr seed Location)" "/api/v1/transactions/txn_001" "Location names the payment"
is "$(hdr seed Idempotent-Replayed)" "false" "Idempotent-Replayed: false"
is "$(q "SELECT count(*) FROM settle.payment WHERE transaction_id = 'txn_001' AND status IN ('queued', 'settled')")" 1 \
   "the payment is committed when the answer arrives (read from another session)"
call replay POST /api/v1/transactions "${A[@]}" -d "$SEED"
is "$CODE" 200 "the same request again: 200"
cmp -s "$TMP/x/seed.body" "$TMP/x/replay.body"
ok $? "a replay's body is the original answer's, byte for byte"
is "$(hdr replay Idempotent-Replayed)" "true" "Idempotent-Replayed: true"
is "$(q "SELECT count(*) FROM settle.payment WHERE idempotency_key = 'req_001'")" 1 "one payment, not two"
call conflict POST /api/v1/transactions "${A[@]}" -d "${SEED/100000.00/100000.01}"
is "$CODE/$(echo "$BODY" | jf sqlstate)/$(echo "$BODY" | jf field)" "409/SE060/idempotency_key" \
   "same key, other content: 409, SE060, naming idempotency_key"
is "$(hdr conflict Content-Type)" "application/problem+json" "errors are application/problem+json"
call conflict2 POST /api/v1/transactions "${A[@]}" -d "${SEED/req_001/req_002}"
is "$CODE/$(echo "$BODY" | jf sqlstate)" "409/SE061" "same transaction_id, other key: 409, SE061"

# --- validation: 422 naming the field, from the database's SQLSTATE ------------
call v_amount POST /api/v1/transactions "${A[@]}" -d "$(pay v1 v1 1.001)"
is "$CODE/$(echo "$BODY" | jf sqlstate)/$(echo "$BODY" | jf field)" "422/SE012/amount" "too many decimals: 422 SE012 amount"
call v_cur POST /api/v1/transactions "${A[@]}" -d "$(pay v2 v2 1.00 acc_001 acc_002 bank_b XYZ)"
is "$CODE/$(echo "$BODY" | jf sqlstate)/$(echo "$BODY" | jf field)" "422/SE021/destination_currency" \
   "unknown currency: 422 SE021 destination_currency"
call v_key POST /api/v1/transactions "${A[@]}" -d '{"transaction_id":"v3","colour":"red"}'
is "$CODE/$(echo "$BODY" | jf sqlstate)/$(echo "$BODY" | jf field)" "422/SE091/colour" "unknown key: 422 SE091 naming it"
call v_dup POST /api/v1/transactions "${A[@]}" -d '{"amount":"1.00","amount":"900.00"}'
is "$CODE/$(echo "$BODY" | jf field)" "422/amount" "a key twice: 422 naming it (no parser differential)"
call v_shape POST /api/v1/transactions "${A[@]}" -d '"a string"'
is "$CODE" 422 "JSON that is not a payment: 422"
call v_empty POST /api/v1/transactions "${A[@]}" -d '[]'
is "$CODE" 422 "an empty array: 422"

# --- authorisation, in the database ---------------------------------------------
call forbidden POST /api/v1/transactions "${B[@]}" -d "$(pay f1 f1 1.00 acc_001 acc_003)"
is "$CODE/$(echo "$BODY" | jf sqlstate)" "403/SE035" "bank_b's client paying from bank_a's account: 403, SE035 from the database"
is "$(q "SELECT count(*) FROM settle.payment WHERE transaction_id = 'f1'")" 0 "and nothing was written"
call noauth POST /api/v1/transactions -H "Content-Type: application/json" -d "$SEED"
is "$CODE" 401 "no token: 401"
grep -qi '^WWW-Authenticate: Bearer' "$TMP/x/noauth.hdr"; ok $? "with WWW-Authenticate: Bearer"
call badtoken POST /api/v1/transactions -H "Authorization: Bearer stl_0000" -H "Content-Type: application/json" -d "$SEED"
is "$CODE" 401 "an unknown token: 401"

# --- GET status -----------------------------------------------------------------
call status GET /api/v1/transactions/txn_001 -H "Authorization: Bearer $TOKEN_A"
is "$CODE/$(echo "$BODY" | jf transaction_id)/$(echo "$BODY" | jf amount)/$(echo "$BODY" | jf source_participant)" \
   "200/txn_001/100000.00/bank_a" "GET the payment: 200, exact amount as a string"
settled() { call status_s GET /api/v1/transactions/txn_001 -H "Authorization: Bearer $TOKEN_A"; [ "$(echo "$BODY" | jf status)" = settled ]; }
wait_for 15 settled
ok $? "its status becomes settled (the worker's cycle), seen through the gateway"
call status_other GET /api/v1/transactions/txn_001 -H "Authorization: Bearer $TOKEN_B"
is "$CODE" 404 "another participant's client does not find it (404)"
call status_unknown GET /api/v1/transactions/nope -H "Authorization: Bearer $TOKEN_A"
is "$CODE" 404 "an unknown transaction_id: 404"
call status_noauth GET /api/v1/transactions/txn_001
is "$CODE" 401 "GET without a token: 401"

# --- arrays ---------------------------------------------------------------------
call array POST /api/v1/transactions "${A[@]}" -d "[$(pay arr1 arr1), $(pay arr2 arr2 0.001), $SEED]"
is "$CODE" 200 "an array: 200"
is "$(echo "$BODY" | jf results.0.status),$(echo "$BODY" | jf results.1.status)/$(echo "$BODY" | jf results.1.sqlstate),$(echo "$BODY" | jf results.2.status)" \
   "201,422/SE012,200" "one result per element, in order: created, refused, replayed"

# --- linked payments (1.1): link_group and link_size pass through ----------------
lpay() { pay "$1" "$1" | sed "s/}\$/,\"link_group\":\"gw-link\",\"link_size\":$2}/"; }
call link_one POST /api/v1/transactions "${A[@]}" -d "$(lpay lk1 2)"
is "$CODE/$(q "SELECT members FROM settle.link_groups WHERE link_group = 'gw-link'")" "201/1" \
   "a linked payment over HTTP: 201, and it joined its group"
call link_size POST /api/v1/transactions "${A[@]}" -d "$(lpay lk2 3)"
is "$CODE/$(echo "$BODY" | jf sqlstate)/$(echo "$BODY" | jf field)" "422/SE081/link_group" \
   "another link_size for the same group: 422, SE081, naming link_group"

# --- revocation -----------------------------------------------------------------
T3=$(q "SELECT settle_issue_api_token('bank_a_batch', 'bank_a_app')")
call rev_before POST /api/v1/transactions -H "Authorization: Bearer $T3" -H "Content-Type: application/json" -d "$(pay rv1 rv1)"
is "$CODE" 201 "a second client of the same participant submits"
is "$(q "SELECT settle_revoke_api_token('bank_a_batch')")" t "settle_revoke_api_token"
sleep 1.2
call rev_after POST /api/v1/transactions -H "Authorization: Bearer $T3" -H "Content-Type: application/json" -d "$(pay rv2 rv2)"
is "$CODE" 401 "a revoked token: 401 once the auth cache (--auth-ttl 1) expired"
is "$(q "SELECT pg_has_role('settle_gateway', 'bank_a_app', 'MEMBER')")" t \
   "the role keeps its membership while another of its tokens is live"

# --- malformed and hostile requests ------------------------------------------------
call malformed POST /api/v1/transactions "${A[@]}" -d '{"transaction_id": "x",'
is "$CODE" 400 "malformed JSON: 400"
for bad in '{"a":"\u0000"}' $'{"a":"\xff"}' '{"a":"\ud800"}' '{"a":1e99999}' \
           "$(printf '[%.0s' {1..40})$(printf ']%.0s' {1..40})" '{"a":1} x'; do
    CODE=$(curl -s -o /dev/null -w '%{http_code}' "${A[@]}" --data-binary "$bad" "$U/api/v1/transactions")
    [ "$CODE" = 400 ] || { echo "# $bad -> $CODE"; break; }
done
is "$CODE" 400 "\\u0000, invalid UTF-8, a lone surrogate, a huge exponent, deep nesting, trailing text: 400"
call ctype POST /api/v1/transactions -H "Authorization: Bearer $TOKEN_A" -H "Content-Type: text/plain" -d "$SEED"
is "$CODE" 415 "wrong content type: 415"
head -c 20000 /dev/zero | tr '\0' ' ' >"$TMP/big"
call big POST /api/v1/transactions "${A[@]}" --data-binary @"$TMP/big"
is "$CODE" 413 "a body over --max-body (Content-Length): 413"
call bigchunked POST /api/v1/transactions "${A[@]}" -H "Transfer-Encoding: chunked" --data-binary @"$TMP/big"
is "$CODE" 413 "a body over --max-body, chunked: 413"
head -c 300000 /dev/zero | tr '\0' ' ' >"$TMP/huge"
CODE=$(curl -s -o /dev/null -w '%{http_code}' "${A[@]}" -H "Transfer-Encoding: chunked" --data-binary @"$TMP/huge" "$U/api/v1/transactions")
[ "$CODE" = 413 ] || [ "$CODE" = 000 ]
ok $? "a chunked body far over the limit is cut off ($CODE)"
CODE=$(curl -s -o /dev/null -w '%{http_code}' -H "X-Big: $(head -c 60000 /dev/zero | tr '\0' b)" "$U/api/v1/health")
is "$CODE" 431 "huge headers: 431"
UNDOC=undocumented call notfound GET /nope
is "$CODE" 404 "unknown path: 404"
UNDOC=undocumented call method DELETE /api/v1/transactions
is "$CODE/$(hdr method Allow)" "405/POST" "wrong method: 405 with Allow"

RSS0=$(awk '/VmRSS/ {print $2}' /proc/$GW_PID/status)
# slow clients, many connections, garbage: the server keeps serving
$PY - "$G" >"$TMP/hostile.log" 2>&1 <<'EOF'
import socket, sys, time, urllib.request
port = int(sys.argv[1])
def health():
    t = time.time()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/health", timeout=5) as r:
        return r.status, time.time() - t
# slowloris: 40 connections sending a header byte by byte
slow = []
for i in range(40):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"POST /api/v1/transactions HTTP/1.1\r\nHost: x\r\n")
    slow.append(s)
st, secs = health()
print(f"served during slowloris: {st} in {secs:.3f}s")
# garbage bytes and an endless header line
for junk in (b"\x00\xff" * 500 + b"\r\n\r\n", b"GET /" + b"a" * 100000):
    g = socket.create_connection(("127.0.0.1", port))
    try:
        g.sendall(junk)
        g.settimeout(5)
        g.recv(100)
    except OSError:
        pass
    g.close()
# the silent ones are closed by the server (--connection-timeout 2)
time.sleep(1.0)
for s in slow:
    try:
        s.sendall(b"X")
    except OSError:
        pass
closed = 0
deadline = time.time() + 6
for s in slow:
    s.settimeout(max(0.1, deadline - time.time()))
    try:
        if s.recv(100) == b"":
            closed += 1
    except ConnectionResetError:
        closed += 1
    except OSError:
        pass
print(f"slow connections closed by the server: {closed}/40")
# many connections: 300 at once against --max-connections 100
many = []
refused = 0
for i in range(300):
    try:
        many.append(socket.create_connection(("127.0.0.1", port), timeout=2))
    except OSError:
        refused += 1
time.sleep(0.5)
for s in many:
    s.close()
time.sleep(0.5)
st, secs = health()
print(f"served after 300 connections: {st} in {secs:.3f}s")
EOF
cat "$TMP/hostile.log" | sed 's/^/# /'
grep -q "served during slowloris: 200" "$TMP/hostile.log"; ok $? "slow clients do not stop others being served"
grep -q "closed by the server: 40/40" "$TMP/hostile.log"; ok $? "the server closes slow clients after --connection-timeout"
grep -q "served after 300 connections: 200" "$TMP/hostile.log"; ok $? "300 connections at once (limit 100): still serving after"
kill -0 "$GW_PID" 2>/dev/null; ok $? "the gateway is still running"
RSS1=$(awk '/VmRSS/ {print $2}' /proc/$GW_PID/status)
echo "# gateway RSS: ${RSS0} kB before the hostile clients, ${RSS1} kB after"
[ "$RSS1" -lt $((RSS0 + 65536)) ]; ok $? "memory stays bounded (RSS grew by $((RSS1 - RSS0)) kB)"

# --- coalescing: concurrent single-payment requests share bulk calls -------------
before=$(grep -E '^settle_gateway_batch_size_count' <(curl -s "$U/metrics") | awk '{print $2}')
$PY - "$G" "$TOKEN_A" >"$TMP/coalesce.log" 2>&1 <<'EOF'
import http.client, json, sys, threading
port, token = int(sys.argv[1]), sys.argv[2]
codes = []
def client(t):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    for i in range(20):
        k = f"co_{t}_{i}"
        body = json.dumps({"transaction_id": k, "amount": "1.00", "source_currency": "USD",
            "destination_currency": "USD", "source_account": "acc_001", "destination_account": "acc_003",
            "counterparty_id": "bank_b", "idempotency_key": k})
        c.request("POST", "/api/v1/transactions", body, {"Content-Type": "application/json",
                  "Authorization": "Bearer " + token})
        r = c.getresponse(); r.read(); codes.append(r.status)
ts = [threading.Thread(target=client, args=(t,)) for t in range(32)]
[t.start() for t in ts]; [t.join() for t in ts]
print("created", codes.count(201), "of", len(codes))
EOF
after=$(grep -E '^settle_gateway_batch_size_count' <(curl -s "$U/metrics") | awk '{print $2}')
is "$(cat "$TMP/coalesce.log")" "created 640 of 640" "32 concurrent clients x 20 payments: all 201"
is "$(q "SELECT count(*) FROM settle.payment WHERE transaction_id LIKE 'co\_%'")" 640 "640 payments in the database"
echo "# 640 requests in $((after - before)) settle_submit_bulk calls"
[ $((after - before)) -lt 640 ]; ok $? "concurrent requests were coalesced into fewer bulk calls ($((after - before)))"

# --- answers only after commit: a synchronous standby that never answers ------------
q "ALTER SYSTEM SET synchronous_standby_names = 'nobody'" >/dev/null
q "SELECT pg_reload_conf()" >/dev/null
sleep 0.5
call health_sync GET /api/v1/health
is "$CODE/$(echo "$BODY" | jf synchronous_standby.required)/$(echo "$BODY" | jf synchronous_standby.attached)" "503/true/0" \
   "health: 503 while a synchronous standby is required and none attached"
grep -qi '^Retry-After:' "$TMP/x/health_sync.hdr"; ok $? "with Retry-After"
is "$(echo "$BODY" | jf synchronous_standby.missing)/$(echo "$BODY" | jf synchronous_standby.needed)" "true/1" \
   "health: the synchronous standby is missing, 1 needed"
# an orphan refuses at once (SE170); durability.sh tests it in full, with a real standby
call orphan POST /api/v1/transactions "${A[@]}" -d "$(pay sy0 sy0)"
is "$CODE/$(echo "$BODY" | jf sqlstate)" "503/SE170" "a payment on an orphan is refused at once: 503, SE170"
grep -qi '^Retry-After:' "$TMP/x/orphan.hdr"; ok $? "with Retry-After"
is "$(q "SELECT count(*) FROM settle.payment WHERE transaction_id = 'sy0'")" 0 "and not written"
# refusals off (settle.sync_standby_grace = -1): commits wait for the standby, as PostgreSQL does
q "ALTER SYSTEM SET settle.sync_standby_grace = -1" >/dev/null
q "SELECT pg_reload_conf()" >/dev/null
sleep 0.5
CODE=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "${A[@]}" -d "$(pay sy1 sy1)" "$U/api/v1/transactions")
# curl's exit 28 is its own time-out: the gateway took the request and did not
# answer (a refused connection, 7, or a dead gateway, 52/56, also print 000)
is "$CODE/$?" 000/28 "a payment is not answered while its commit waits for the synchronous standby (curl timed out)"
# a commit whose wait for the standby is cancelled (pg_cancel_backend, as a pool's time-out
# does) stays local and comes back as a success with a WARNING: the gateway must not answer 201
syncwait() {  # what: settle_submit_bulk | _wait_durable
    q "SELECT pid FROM pg_stat_activity WHERE application_name = 'settle-gateway'
         AND wait_event = 'SyncRep' AND query LIKE '%$1%'" | grep -q .
}
curl -s -o "$TMP/sy2.body" -w '%{http_code}' --max-time 30 "${A[@]}" -d "$(pay sy2 sy2)" \
    "$U/api/v1/transactions" >"$TMP/sy2.code" &
SY2=$!
wait_for 10 syncwait settle_submit_bulk
ok $? "the gateway's commit waits for the synchronous standby"
q "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE application_name = 'settle-gateway'
     AND wait_event = 'SyncRep' AND query LIKE '%settle_submit_bulk%'" >/dev/null
wait_for 10 syncwait _wait_durable
ok $? "its wait cancelled, the commit stays local: the gateway then waits for durability itself"
sleep 0.5
kill -0 "$SY2" 2>/dev/null
ok $? "and has not answered"
q "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE application_name = 'settle-gateway'
     AND wait_event = 'SyncRep' AND query LIKE '%_wait_durable%'" >/dev/null
wait "$SY2"
is "$(cat "$TMP/sy2.code")/$($PY -c 'import json,sys; print(json.load(open(sys.argv[1])).get("sqlstate"))' "$TMP/sy2.body")" \
   "503/SE140" "that wait cancelled too: 503, SE140 (not durable: retry), never 201"
q "ALTER SYSTEM RESET synchronous_standby_names" >/dev/null
q "ALTER SYSTEM RESET settle.sync_standby_grace" >/dev/null
q "SELECT pg_reload_conf()" >/dev/null
sleep 0.5
call sync_retry POST /api/v1/transactions "${A[@]}" -d "$(pay sy1 sy1)"
is "$CODE" 200 "once released, the client's retry with the same key gets the original (200)"
is "$(q "SELECT count(*) FROM settle.payment WHERE transaction_id = 'sy1'")" 1 "one payment"
call sync_retry2 POST /api/v1/transactions "${A[@]}" -d "$(pay sy2 sy2)"
is "$CODE" 200 "the retry of the payment answered 503: 200, the original"

# --- 429: the queue is full; 503: no primary -------------------------------------------
start_gateway "$G2" "$TMP/gw2.log" --pool-size 1 --queue-max 1 --batch-wait-us 0
wait_for 10 up "http://127.0.0.1:$G2"
# hold the submitting connection: a lock the bulk insert waits for
( cluster_psql "$P" -d postgres -c "BEGIN; LOCK TABLE settle.payment IN EXCLUSIVE MODE; SELECT pg_sleep(3); COMMIT;" >/dev/null ) &
LOCKER=$!
sleep 0.5
curl -s -o "$TMP/q1" -w '%{http_code}' "${A[@]}" -d "$(pay q1 q1)" "http://127.0.0.1:$G2/api/v1/transactions" >"$TMP/q1.code" &
C1=$!
sleep 0.3
curl -s -o "$TMP/q2" -w '%{http_code}' "${A[@]}" -d "$(pay q2 q2)" "http://127.0.0.1:$G2/api/v1/transactions" >"$TMP/q2.code" &
C2=$!
sleep 0.3
U_SAVE=$U; U=http://127.0.0.1:$G2
call saturated POST /api/v1/transactions "${A[@]}" -d "$(pay q3 q3)"
U=$U_SAVE
is "$CODE" 429 "one payment in flight, one queued, --queue-max 1: 429"
grep -qi '^Retry-After: 1' "$TMP/x/saturated.hdr"; ok $? "with Retry-After"
# the statement in flight cancelled (57014, as a pooler's or an operator's cancel): 503, retry
q "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE application_name = 'settle-gateway'
     AND wait_event_type = 'Lock' AND query LIKE '%settle_submit_bulk%'" >/dev/null
wait $C1 $C2 $LOCKER
is "$(cat "$TMP/q1.code")/$(cat "$TMP/q2.code")" "503/201" \
   "the payment whose statement was cancelled: 503; the queued one is answered once the lock is released"
CODE=$(curl -s -o /dev/null -w '%{http_code}' "${A[@]}" -d "$(pay q1 q1)" "http://127.0.0.1:$G2/api/v1/transactions")
is "$CODE" 201 "the cancelled payment was not written: its retry creates it"

# --- a call past its deadline (--call-timeout-ms): the connection dropped, 503, retry ---
start_gateway "$GD" "$TMP/gwd.log" --pool-size 1 --batch-wait-us 0 --call-timeout-ms 1000
wait_for 10 up "http://127.0.0.1:$GD"
( cluster_psql "$P" -d postgres -c "BEGIN; LOCK TABLE settle.payment IN EXCLUSIVE MODE; SELECT pg_sleep(3); COMMIT;" >/dev/null ) &
LOCKER=$!
sleep 0.5
OUT=$(curl -s -o "$TMP/d1.body" -w '%{http_code} %{time_total}' --max-time 10 "${A[@]}" -d "$(pay d1 d1)" \
      "http://127.0.0.1:$GD/api/v1/transactions")
read -r DCODE DTIME <<<"$OUT"
is "$DCODE/$($PY -c 'import json,sys; print(json.load(open(sys.argv[1])).get("sqlstate"))' "$TMP/d1.body")" "503/08006" \
   "a call held past --call-timeout-ms 1000 (a lock held 3 s): 503, outcome unknown (08006)"
$PY -c 'import sys; t = float(sys.argv[1]); sys.exit(0 if 0.9 <= t < 2.5 else 1)' "$DTIME"
ok $? "answered when the deadline passed, not when the lock was released (${DTIME} s)"
grep -q "took longer than 1000 ms" "$TMP/gwd.log"; ok $? "the gateway logs the dropped call"
wait $LOCKER
CODE=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "${A[@]}" -d "$(pay d1 d1)" "http://127.0.0.1:$GD/api/v1/transactions")
[ "$CODE" = 200 ] || [ "$CODE" = 201 ]
ok $? "the retry with the same key is answered ($CODE: the dropped call committed or not)"
is "$(q "SELECT count(*) FROM settle.payment WHERE transaction_id = 'd1'")" 1 "exactly one payment"
CODE=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "${A[@]}" -d "$(pay d2 d2)" "http://127.0.0.1:$GD/api/v1/transactions")
is "$CODE" 201 "the gateway connects again and goes on"

start_gateway "$G3" "$TMP/gw3.log" --health-interval-ms 100
G3_PID=$LAST_PID
sleep 0.3
"$GATEWAY" --port "$DEAD" --db "host=127.0.0.1 port=1 dbname=postgres connect_timeout=1" >"$TMP/gwdead.log" 2>&1 &
PIDS+=($!)
wait_for 10 up "http://127.0.0.1:$DEAD"
U_SAVE=$U; U=http://127.0.0.1:$DEAD
call nodb_health GET /api/v1/health
is "$CODE/$(echo "$BODY" | jf database.reachable)" "503/false" "no database: health 503, unreachable"
call nodb_post POST /api/v1/transactions "${A[@]}" -d "$(pay nd1 nd1)"
is "$CODE" 503 "no database: a payment gets 503 (the token cannot be checked)"
grep -qi '^Retry-After:' "$TMP/x/nodb_post.hdr"; ok $? "with Retry-After"
U=$U_SAVE
# a gateway that reaches only a standby: health says "replica", payments get 503
mkdir -p "$TMP/standby" && chown "$PGRUNAS" "$TMP/standby"
as_pg "$PGBIN/pg_basebackup" -h 127.0.0.1 -p "$P" -U postgres -D "$TMP/standby/data" -R -X stream -c fast \
    >"$TMP/basebackup.log" 2>&1 || { cat "$TMP/basebackup.log"; exit 1; }
as_pg sed -i -e "s/^port = .*/port = $PS/" -e "s|^unix_socket_directories = .*|unix_socket_directories = '$TMP/standby'|" \
    "$TMP/standby/data/postgresql.conf"
cluster_start "$TMP/standby" || exit 1
"$GATEWAY" --port "$GR" --db "host=127.0.0.1 port=$PS user=gateway dbname=postgres connect_timeout=2" \
    --health-interval-ms 100 >"$TMP/gwreplica.log" 2>&1 &
PIDS+=($!)
wait_for 10 up "http://127.0.0.1:$GR"
U_SAVE=$U; U=http://127.0.0.1:$GR
call replica_health GET /api/v1/health
is "$CODE/$(echo "$BODY" | jf database.reachable)/$(echo "$BODY" | jf database.role)" "503/true/replica" \
   "only a standby reachable: health 503, reachable, role replica"
call replica_post POST /api/v1/transactions "${A[@]}" -d "$(pay rp1 rp1)"
is "$CODE" 503 "and a payment gets 503 (no primary)"
U=$U_SAVE
cluster_stop "$TMP/standby"

# a gateway whose database goes away after start: 503 for payments and status
wait_for 10 up "http://127.0.0.1:$G3"
U_SAVE=$U; U=http://127.0.0.1:$G3
call g3_ok POST /api/v1/transactions "${A[@]}" -d "$(pay g3a g3a)"
is "$CODE" 201 "a third gateway submits"
# revoking a role's last token: the database refuses the role at once, whatever the gateway cached
T4=$(q "CREATE ROLE bank_a_ops; SELECT settle_map_role('bank_a_ops', 'bank_a');
        SELECT settle_issue_api_token('bank_a_ops_client', 'bank_a_ops')" | tail -1)
CODE=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $T4" -H "Content-Type: application/json" \
    -d "$(pay ops1 ops1)" "$U/api/v1/transactions")
is "$CODE" 201 "a client of another role of bank_a submits (its token now in this gateway's cache for 5 s)"
q "SELECT settle_revoke_api_token('bank_a_ops_client')" >/dev/null
is "$(q "SELECT pg_has_role('settle_gateway', 'bank_a_ops', 'MEMBER')")" f "its last token revoked: settle_gateway is no longer a member of the role"
call revoked_db POST /api/v1/transactions -H "Authorization: Bearer $T4" -H "Content-Type: application/json" -d "$(pay ops2 ops2)"
is "$CODE/$(echo "$BODY" | jf sqlstate)" "403/42501" "within the cache's lifetime the database refuses the SET ROLE: 403, 42501"
is "$(q "SELECT count(*) FROM settle.payment WHERE transaction_id = 'ops2'")" 0 "nothing written"
cluster_stop "$TMP/db" fast
call nodb_post2 POST /api/v1/transactions "${A[@]}" -d "$(pay g3b g3b)"
is "$CODE" 503 "its database stopped: 503 (token cached, no primary)"
call nodb_status GET /api/v1/transactions/g3a -H "Authorization: Bearer $TOKEN_A"
is "$CODE" 503 "and GET status: 503"
cluster_start "$TMP/db"
back() { [ "$(curl -s -o /dev/null -w '%{http_code}' "${A[@]}" -d "$(pay g3b g3b)" "$U/api/v1/transactions")" = 201 ]; }
wait_for 15 back
ok $? "the database back: the retry with the same key is accepted"
call g3_replay POST /api/v1/transactions "${A[@]}" -d "$(pay g3b g3b)"
is "$CODE" 200 "and a further retry is a replay"
U=$U_SAVE

# --- TLS with a self-signed certificate -------------------------------------------------
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$TMP/key.pem" -out "$TMP/cert.pem" -days 1 \
    -subj "/CN=127.0.0.1" -addext "subjectAltName=IP:127.0.0.1" >/dev/null 2>&1
ok $? "a self-signed certificate"
start_gateway "$GT" "$TMP/gwtls.log" --tls-cert "$TMP/cert.pem" --tls-key "$TMP/key.pem"
wait_for 10 curl -s -o /dev/null --cacert "$TMP/cert.pem" "https://127.0.0.1:$GT/metrics"
CODE=$(curl -s -o "$TMP/tls.body" -w '%{http_code}' --cacert "$TMP/cert.pem" "${A[@]}" -d "$(pay tls1 tls1)" "https://127.0.0.1:$GT/api/v1/transactions")
is "$CODE" 201 "HTTPS, the certificate verified by curl: 201"
curl -s -o /dev/null "https://127.0.0.1:$GT/api/v1/health" 2>/dev/null
# 60: the peer's certificate could not be verified (not 7: nobody listening)
is "$?" 60 "a client that does not trust the certificate is refused (curl: certificate not verified)"
CODE=$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 "http://127.0.0.1:$GT/api/v1/health")
[ "$CODE" != 200 ]; ok $? "plain HTTP on the TLS port is not served ($CODE)"

# --- a host that accepts and closes (a proxy in front of a dead node) before the primary --------
# libpq gives up on the whole host list at such a host; the gateway then tries each host alone
$PY -c '
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(64)
while True:
    c, _ = s.accept(); c.close()' "$CL" &
PIDS+=($!)
wait_for 10 bash -c "echo > /dev/tcp/127.0.0.1/$CL"
"$GATEWAY" --port "$GC" --db "host=127.0.0.1,127.0.0.1 port=$CL,$P user=gateway dbname=postgres" \
    --health-interval-ms 100 >"$TMP/gwclose.log" 2>&1 &
PIDS+=($!)
wait_for 10 up "http://127.0.0.1:$GC"
wait_for 10 bash -c "curl -s http://127.0.0.1:$GC/api/v1/health | grep -q '\"role\":\"primary\"'"
ok $? "a first host that accepts and closes every connection: the gateway still finds the primary after it (health)"
CODE=$(curl -s -o /dev/null -w '%{http_code}' "${A[@]}" -d "$(pay cl1 cl1)" "http://127.0.0.1:$GC/api/v1/transactions")
is "$CODE" 201 "and a payment through it is acknowledged (201)"

# --- docs/openapi.json against every answer recorded above ---------------------------------
# the ISO 20022 endpoints are test/scripts/iso20022.sh's, the controls test/scripts/gateway_controls.sh's
openapi_tap "$TMP/x" '^(?!/api/v1/(iso20022|limits|reservations|alerts)|/api/v1/transactions/\{transaction_id\}/)'

# --- shut-down ---------------------------------------------------------------------------
kill -TERM "$GW_PID"
wait "$GW_PID"
is "$?" 0 "SIGTERM: the gateway stops cleanly"
grep -q "shutting down" "$TMP/gw.log"; ok $? "and says so"
done_testing
