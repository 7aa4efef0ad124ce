#!/bin/bash
# A participant's controls through settle-gateway (docs/GATEWAY.md, "A
# participant's controls"), over real HTTP with the worker running: limits
# set, listed with their position, and taking effect in the cycles (a
# payment over a bilateral limit waits while a smaller one settles, and
# settles once the limit is raised); reservations (today's and standing);
# alerts, raised by a cycle and shown; a queued payment's priority, position
# and revocation (the revocation shows in the payment's status); another
# participant's account or payment refused as the database refuses it;
# a payment in a cycle (its row locked) refused at once with 409; bad bodies
# 400/422; no token 401.  Every answer is checked against docs/openapi.json.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/scratch.sh
. test/lib/tap.sh
. test/lib/openapi.sh

PY=/usr/bin/python3
GATEWAY=${GATEWAY:-$PGBIN/settle-gateway}
[ -x "$GATEWAY" ] || GATEWAY=src/gateway/settle-gateway
for bin in curl "$GATEWAY"; do
    command -v "$bin" >/dev/null || { echo "Bail out! $bin is missing (make; test/deps.sh)"; exit 1; }
done

scratch gateway_controls
scratch_ports P 55680 G 18680
PIDS=()
scratch_on_exit 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done'
scratch_cluster "$TMP/db"

cluster_init "$TMP/db" "$P" "settle.cycle_interval = 200ms" "settle.database = postgres" || exit 1
cluster_start "$TMP/db" || exit 1
Q_PORT=$P

q "CREATE EXTENSION settle" >/dev/null
q "SELECT settle_create_participant('bank_a'), settle_create_participant('bank_b'), settle_create_participant('bank_c');
   SELECT settle_create_account('acc_a', 'bank_a', 'USD', opening_balance => 1000);
   SELECT settle_create_account('acc_b', 'bank_b', 'USD', opening_balance => 100000);
   SELECT settle_create_account('acc_c', 'bank_c', 'USD');
   CREATE ROLE bank_a_app LOGIN; CREATE ROLE bank_b_app LOGIN;
   SELECT settle_map_role('bank_a_app', 'bank_a'), settle_map_role('bank_b_app', 'bank_b');
   CREATE ROLE gateway LOGIN IN ROLE settle_gateway;" >/dev/null || exit 1
TOKEN_A=$(q "SELECT settle_issue_api_token('bank_a_web', 'bank_a_app')")
TOKEN_B=$(q "SELECT settle_issue_api_token('bank_b_web', 'bank_b_app')")

"$GATEWAY" --port "$G" --db "host=127.0.0.1 port=$P user=gateway dbname=postgres" --max-body 4096 \
    >"$TMP/gw.log" 2>&1 &
GW_PID=$!
PIDS+=($GW_PID)
U=http://127.0.0.1:$G
up() { curl -s -o /dev/null "$U/metrics"; }
wait_for 10 up
ok $? "settle-gateway listens" || { cat "$TMP/gw.log"; done_testing; exit 1; }

# j EXPR: a value of $BODY (Python expression over d)
j() { echo "$BODY" | $PY -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }
A=(-H "Authorization: Bearer $TOKEN_A" -H "Content-Type: application/json")
B=(-H "Authorization: Bearer $TOKEN_B" -H "Content-Type: application/json")
pay() {  # TXID AMOUNT [PRIORITY]: a payment of bank_a to bank_b, as JSON
    printf '{"transaction_id":"%s","amount":"%s","source_currency":"USD","destination_currency":"USD","source_account":"acc_a","destination_account":"acc_b","counterparty_id":"bank_b","idempotency_key":"k-%s","priority":%s}' \
        "$1" "$2" "$1" "${3:-5}"
}
status_of() { q "SELECT status FROM settle.payment WHERE transaction_id = '$1'"; }
settled() { [ "$(status_of "$1")" = settled ]; }

# --- limits ---------------------------------------------------------------------------------
call lim_empty GET /api/v1/limits "${A[@]}"
is "$CODE/$BODY" '200/{"limits" : []}' "GET /api/v1/limits with none: 200, an empty list"
call lim_set PUT /api/v1/limits/USD/bank_b "${A[@]}" -d '{"amount": "100.00"}'
is "$CODE/$(j 'd["kind"], d["counterparty_id"], d["currency"], d["amount"]')" "200/('bilateral', 'bank_b', 'USD', '100.00')" \
   "PUT a bilateral limit of 100.00 towards bank_b: 200, as set"
call lim_multi PUT /api/v1/limits/USD "${A[@]}" -d '{"amount": 5000}'
is "$CODE/$(j 'd["kind"], d["counterparty_id"], d["amount"]')" "200/('multilateral', None, '5000.00')" \
   "PUT the multilateral limit (a JSON number): 200"
is "$(q "SELECT string_agg(coalesce(counterparty_id, '-') || '=' || amount, ',' ORDER BY counterparty_id NULLS FIRST)
          FROM settle.participant_limit WHERE participant_id = 'bank_a'")" "-=500000,bank_b=10000" \
   "the database holds both limits of bank_a, in minor units"
is "$(q "SELECT count(*) FROM settle.event WHERE entity_id = 'bank_a' AND event_type IN ('bilateral_limit_set', 'multilateral_limit_set')")" 2 \
   "each change is an event"

# the limit takes effect: 150 waits, 60 (submitted after it) settles
call p150 POST /api/v1/transactions "${A[@]}" -d "$(pay t150 150.00 9)"
call p60 POST /api/v1/transactions "${A[@]}" -d "$(pay t60 60.00 5)"
is "$CODE" 201 "two payments to bank_b submitted (150.00 at priority 9, then 60.00)"
wait_for 15 settled t60
ok $? "the 60.00 within the limit settles"
sleep 1
is "$(status_of t150)" queued "the 150.00 over the limit waits (queued), and held back nothing"
call lim_list GET /api/v1/limits "${A[@]}"
is "$CODE/$(j '[(l["counterparty_id"], l["amount"], l["used"], l["headroom"]) for l in d["limits"]]')" \
   "200/[(None, '5000.00', '0.00', '5000.00'), ('bank_b', '100.00', '60.00', '40.00')]" \
   "GET lists both limits with today's position: 60.00 used towards bank_b, 40.00 headroom"
call lim_raise PUT /api/v1/limits/USD/bank_b "${A[@]}" -d '{"amount": "300"}'
is "$CODE/$(j 'd["amount"]')" "200/300.00" "raising the limit to 300: 200"
wait_for 15 settled t150
ok $? "the waiting 150.00 settles at a following cycle"

call lim_self PUT /api/v1/limits/USD/bank_a "${A[@]}" -d '{"amount": "1"}'
is "$CODE/$(j 'd["sqlstate"]')" "422/SE181" "a limit towards itself: 422 SE181"
call lim_bad_amount PUT /api/v1/limits/USD/bank_b "${A[@]}" -d '{"amount": "1.001"}'
is "$CODE/$(j 'd["sqlstate"], d.get("field")')" "422/('SE012', 'amount')" \
   "more decimals than USD allows: 422 SE012 naming amount"
call lim_word PUT /api/v1/limits/USD/bank_b "${A[@]}" -d '{"amount": "lots"}'
is "$CODE/$(j 'd["sqlstate"]')" "422/22P02" "an amount that is not a number: 422 (22P02)"
call lim_type PUT /api/v1/limits/USD/bank_b "${A[@]}" -d '{"amount": true}'
is "$CODE/$(j 'd["type"], d["field"]')" "422/('urn:settle:gateway:invalid-body', 'amount')" \
   "an amount of the wrong JSON type: 422 invalid-body naming amount"
call lim_unknown PUT /api/v1/limits/USD/bank_b "${A[@]}" -d '{"amount": "1", "limit": "2"}'
is "$CODE/$(j 'd["type"], d["field"]')" "422/('urn:settle:gateway:invalid-body', 'limit')" \
   "an unknown key: 422 naming it"
call lim_missing PUT /api/v1/limits/USD/bank_b "${A[@]}" -d '{}'
is "$CODE/$(j 'd["field"]')" "422/amount" "no amount: 422 naming amount"
call lim_twice PUT /api/v1/limits/USD/bank_b "${A[@]}" -d '{"amount": "1", "amount": "2"}'
is "$CODE/$(j 'd["type"], d["field"]')" "422/('urn:settle:gateway:duplicate-field', 'amount')" \
   "a key twice: 422 naming it (a parser differential otherwise)"
call lim_json PUT /api/v1/limits/USD/bank_b "${A[@]}" -d '{"amount": '
is "$CODE/$(j 'd["type"]')" "400/urn:settle:gateway:malformed-json" "not JSON: 400"
call lim_ctype PUT /api/v1/limits/USD/bank_b -H "Authorization: Bearer $TOKEN_A" -H "Content-Type: text/plain" -d '{"amount": "1"}'
is "$CODE" 415 "not application/json: 415"
call lim_anon GET /api/v1/limits
is "$CODE" 401 "no token: 401"
UNDOC=undocumented call lim_post POST /api/v1/limits "${A[@]}" -d '{}'
is "$CODE/$(grep -i '^Allow:' "$TMP/x/lim_post.hdr" | tr -d '\r')" "405/Allow: GET" "POST on the list: 405, Allow: GET"
is "$(q "SELECT amount FROM settle.participant_limit WHERE participant_id = 'bank_a' AND counterparty_id = 'bank_b'")" 30000 \
   "none of the refused requests changed the limit"
call lim_b GET /api/v1/limits "${B[@]}"
is "$CODE/$BODY" '200/{"limits" : []}' "bank_b does not see bank_a's limits"
call lim_del DELETE /api/v1/limits/USD "${A[@]}"
is "$CODE/$BODY" "204/" "DELETE the multilateral limit: 204, no body"
call lim_del_again DELETE /api/v1/limits/USD "${A[@]}"
is "$CODE/$(j 'd["title"]')" "404/No such limit" "DELETE it again: 404"
is "$(q "SELECT count(*) FROM settle.participant_limit WHERE participant_id = 'bank_a'")" 1 "the bilateral limit is still there"

# --- reservations -----------------------------------------------------------------------------
call res_empty GET /api/v1/reservations "${A[@]}"
is "$CODE/$BODY" '200/{"reservations" : []}' "GET /api/v1/reservations with none: 200, an empty list"
call res_set PUT /api/v1/reservations/acc_a "${A[@]}" -d '{"amount": "250.00", "min_priority": 8}'
is "$CODE/$(j 'd["account_id"], d["amount"], d["min_priority"], d["standing"]')" "200/('acc_a', '250.00', 8, False)" \
   "PUT today's reservation of 250.00 for priority 8 and up: 200"
call res_standing PUT /api/v1/reservations/acc_a "${A[@]}" -d '{"amount": "100", "min_priority": 7, "standing": true}'
is "$CODE/$(j 'd["standing"]')" "200/True" "PUT a standing reservation: 200"
call res_list GET /api/v1/reservations "${A[@]}"
is "$CODE/$(j '[(r["amount"], r["min_priority"], r["standing"], r["applies_today"]) for r in d["reservations"]]')" \
   "200/[('100.00', 7, True, False), ('250.00', 8, False, True)]" \
   "GET lists both: today's applies today, the standing one does not (today has its own)"
call res_other PUT /api/v1/reservations/acc_b "${A[@]}" -d '{"amount": "1", "min_priority": 8}'
is "$CODE/$(j 'd["sqlstate"], d["field"]')" "422/('SE030', 'account_id')" \
   "bank_a reserving on bank_b's account: 422 SE030, as if it did not exist"
call res_prio PUT /api/v1/reservations/acc_a "${A[@]}" -d '{"amount": "1", "min_priority": 1}'
is "$CODE/$(j 'd["sqlstate"], d["field"]')" "422/('SE050', 'min_priority')" "min_priority 1: 422 SE050"
call res_noprio PUT /api/v1/reservations/acc_a "${A[@]}" -d '{"amount": "1"}'
is "$CODE/$(j 'd["field"]')" "422/min_priority" "no min_priority: 422 naming it"
call res_query DELETE "/api/v1/reservations/acc_a?standing=yes" "${A[@]}"
is "$CODE/$(j 'd["field"]')" "400/standing" "DELETE ?standing=yes: 400"
call res_del DELETE "/api/v1/reservations/acc_a?standing=true" "${A[@]}"
is "$CODE" 204 "DELETE the standing reservation: 204"
call res_del_again DELETE "/api/v1/reservations/acc_a?standing=true" "${A[@]}"
is "$CODE" 404 "DELETE it again: 404"
is "$(q "SELECT string_agg(amount || '/' || min_priority || '/' || (valid_on IS NULL), ',') FROM settle.liquidity_reservation")" \
   "25000/8/false" "today's reservation is left, as set"
call res_del_other DELETE /api/v1/reservations/acc_b "${A[@]}"
is "$CODE/$(j 'd["sqlstate"]')" "422/SE030" "DELETE on bank_b's account: 422 SE030"

# --- alerts -------------------------------------------------------------------------------------
call al_set PUT /api/v1/alerts/USD/liquidity "${A[@]}" -d '{"threshold": "999.00"}'
is "$CODE/$(j 'd["currency"], d["kind"], d["threshold"]')" "200/('USD', 'liquidity', '999.00')" \
   "PUT a liquidity alert below 999.00: 200"
call al_kind PUT /api/v1/alerts/USD/mood "${A[@]}" -d '{"threshold": "1"}'
is "$CODE/$(j 'd["sqlstate"], d["field"]')" "422/('SE185', 'kind')" "an unknown kind: 422 SE185"
UNDOC=undocumented call al_short PUT /api/v1/alerts/USD "${A[@]}" -d '{"threshold": "1"}'
is "$CODE" 404 "/api/v1/alerts/{currency} without a kind: 404"
# a cycle that changes something checks the alerts: bank_a has 1000 - 60 - 150 = 790 < 999
call p_small POST /api/v1/transactions "${A[@]}" -d "$(pay tsmall 1.00 9)"
wait_for 15 settled tsmall
alerting() { [ "$(q "SELECT alerting_since IS NOT NULL FROM settle.participant_alert WHERE participant_id = 'bank_a'")" = t ]; }
wait_for 10 alerting
call al_list GET /api/v1/alerts "${A[@]}"
is "$CODE/$(j '[(a["kind"], a["threshold"], a["value"], a["alerting"], a["alerting_since"] is not None) for a in d["alerts"]]')" \
   "200/[('liquidity', '999.00', '789.00', True, True)]" "GET shows the alert raised by the cycle, with the value now"
call al_del DELETE /api/v1/alerts/USD/liquidity "${A[@]}"
is "$CODE" 204 "DELETE the alert: 204"
call al_del_again DELETE /api/v1/alerts/USD/liquidity "${A[@]}"
is "$CODE" 404 "DELETE it again: 404"

# --- the queue ------------------------------------------------------------------------------------
# more than bank_a has: queued until its deadline
call q1 POST /api/v1/transactions "${A[@]}" -d "$(pay tq1 5000.00 3)"
call q2 POST /api/v1/transactions "${A[@]}" -d "$(pay tq2 6000.00 3)"
is "$CODE" 201 "two payments bank_a cannot afford, queued"
call q_prio POST /api/v1/transactions/tq1/priority "${A[@]}" -d '{"priority": 8}'
is "$CODE/$(j 'd["transaction_id"], d["priority"]')" "200/('tq1', 8)" "POST .../priority 8: 200"
is "$(q "SELECT priority || '/' || queue_priority FROM settle.payment WHERE transaction_id = 'tq1'")" "3/8" \
   "the payment keeps its submitted priority and has the new one"
call q_prio_bad POST /api/v1/transactions/tq1/priority "${A[@]}" -d '{"priority": 10}'
is "$CODE/$(j 'd["sqlstate"], d["field"]')" "422/('SE050', 'priority')" "priority 10: 422 SE050"
call q_front POST /api/v1/transactions/tq2/position "${A[@]}" -d '{"position": "front"}'
is "$CODE/$(j 'd["position"]')" "200/front" "POST .../position front: 200"
call q_side POST /api/v1/transactions/tq2/position "${A[@]}" -d '{"position": "sideways"}'
is "$CODE/$(j 'd["sqlstate"], d["field"]')" "422/('SE184', 'position')" "position sideways: 422 SE184"
call q_other POST /api/v1/transactions/tq1/revoke "${B[@]}" -d '{"reason": "not mine"}'
is "$CODE/$(j 'd["title"]')" "404/No such payment" "bank_b (the payee) revoking bank_a's payment: 404"
call q_unknown POST /api/v1/transactions/nope/revoke "${A[@]}" -d '{"reason": "x"}'
is "$CODE" 404 "revoking an unknown transaction_id: 404"
UNDOC=undocumented call q_get GET /api/v1/transactions/tq1/revoke "${A[@]}"
is "$CODE" 405 "GET .../revoke: 405"
call q_empty POST /api/v1/transactions/tq1/revoke "${A[@]}" -d '{"reason": " "}'
is "$CODE/$(j 'd["sqlstate"], d["field"]')" "422/('SE001', 'reason')" "an empty reason: 422"
# a payment a cycle has taken (its row locked): 409 at once, without waiting
cluster_psql "$P" -d postgres -At -c "BEGIN; SELECT 1 FROM settle.payment WHERE transaction_id = 'tq2' FOR UPDATE; SELECT pg_sleep(6); COMMIT;" >/dev/null 2>&1 &
LOCKER=$!
locked() { [ "$(q "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep' AND query LIKE '%FOR UPDATE%'")" = 1 ]; }
wait_for 5 locked
start=$(date +%s)
call q_locked POST /api/v1/transactions/tq2/priority "${A[@]}" -d '{"priority": 9}'
is "$CODE/$(j 'd["sqlstate"]')" "409/SE183" "a payment in a cycle (row locked): 409 SE183"
[ $(( $(date +%s) - start )) -lt 5 ]; ok $? "answered without waiting for the lock"
wait "$LOCKER"
call q_revoke POST /api/v1/transactions/tq1/revoke "${A[@]}" -d '{"reason": "sent twice"}'
is "$CODE/$(j 'd["status"]')" "200/failed" "POST .../revoke: 200, failed"
call q_status GET /api/v1/transactions/tq1 "${A[@]}"
is "$CODE/$(j 'd["status"]')" "200/failed" "the payment's status shows it revoked (failed)"
is "$(q "SELECT string_agg(e.event_type || ':' || coalesce(e.details->>'by', ''), ',' ORDER BY e.event_id)
          FROM settle.event e JOIN settle.payment p ON e.entity = 'payment' AND e.entity_id = p.payment_id::text
         WHERE p.transaction_id = 'tq1' AND e.event_type IN ('priority_changed', 'revoked')")" \
   "priority_changed:bank_a_app,revoked:bank_a_app" "each change is an event naming the client's role"
call q_again POST /api/v1/transactions/tq1/revoke "${A[@]}" -d '{"reason": "again"}'
is "$CODE/$(j 'd["sqlstate"]')" "409/SE182" "revoking it again: 409 SE182 (no longer queued)"
call q_ok POST /api/v1/transactions/tq2/revoke "${A[@]}" -d '{"reason": "done"}'
is "$CODE/$(status_of tq2)" "200/failed" "the other, no longer locked, is revoked"

call lim_bi_del DELETE /api/v1/limits/USD/bank_b "${A[@]}"
call lim_bi_del_again DELETE /api/v1/limits/USD/bank_b "${A[@]}"
is "$CODE/$(q "SELECT count(*) FROM settle.participant_limit")" "404/0" "DELETE the bilateral limit (204), again: 404; none left"
call lim_multi_bad PUT /api/v1/limits/USD "${A[@]}" -d '{"amount": "-1"}'
is "$CODE" 422 "a negative multilateral limit: 422"
call q_prio_unknown POST /api/v1/transactions/nope/priority "${A[@]}" -d '{"priority": 9}'
call q_pos_unknown POST /api/v1/transactions/nope/position "${A[@]}" -d '{"position": "back"}'
is "$CODE" 404 "priority and position of an unknown transaction_id: 404"
call q_pos_failed POST /api/v1/transactions/tq1/position "${A[@]}" -d '{"position": "back"}'
is "$CODE/$(j 'd["sqlstate"]')" "409/SE182" "moving a revoked payment: 409 SE182"

# --- every endpoint: no token 401, a body not JSON 400, another media type 415, no database 503 ---
ENDPOINTS="GET:/api/v1/limits PUT:/api/v1/limits/USD DELETE:/api/v1/limits/USD PUT:/api/v1/limits/USD/bank_b
    DELETE:/api/v1/limits/USD/bank_b GET:/api/v1/reservations PUT:/api/v1/reservations/acc_a
    DELETE:/api/v1/reservations/acc_a GET:/api/v1/alerts PUT:/api/v1/alerts/USD/headroom
    DELETE:/api/v1/alerts/USD/headroom POST:/api/v1/transactions/tq2/priority
    POST:/api/v1/transactions/tq2/position POST:/api/v1/transactions/tq2/revoke"
n=0
for e in $ENDPOINTS; do
    m=${e%%:*} path=${e#*:} n=$((n + 1))
    call "all_401_$n" "$m" "$path" -H "Content-Type: application/json" -d '{}'
    [ "$CODE" = 401 ] || echo "# $m $path without a token: $CODE"
    [ "$CODE" = 401 ]; ok $? "$m $path without a token: 401"
    if [ "$m" = PUT ] || [ "$m" = POST ]; then
        call "all_400_$n" "$m" "$path" "${A[@]}" -d '{"x": '
        is "$CODE" 400 "$m $path with a body that is not JSON: 400"
        call "all_415_$n" "$m" "$path" -H "Authorization: Bearer $TOKEN_A" -H "Content-Type: application/xml" -d '{}'
        is "$CODE" 415 "$m $path with an XML body: 415"
    fi
done
is "$(q "SELECT count(*) FROM settle.participant_limit") $(q "SELECT count(*) FROM settle.participant_alert")" "0 0" \
   "none of them changed anything"
cluster_stop "$TMP/db" >/dev/null 2>&1
n=0
for e in $ENDPOINTS; do
    m=${e%%:*} path=${e#*:} n=$((n + 1))
    case $path in
        */limits/*) b='{"amount": "1"}' ;;
        */reservations/*) b='{"amount": "1", "min_priority": 8}' ;;
        */alerts/*) b='{"threshold": "1"}' ;;
        */priority) b='{"priority": 9}' ;;
        */position) b='{"position": "back"}' ;;
        */revoke) b='{"reason": "x"}' ;;
        *) b='' ;;
    esac
    call "all_503_$n" "$m" "$path" "${A[@]}" ${b:+-d "$b"}
    # from the pool (no primary), or from the token's look-up once its cache expired
    [ "$CODE" = 503 ] || echo "# $m $path: $CODE $BODY"
    [ "$CODE" = 503 ]; ok $? "$m $path with the database down: 503"
done
kill -0 "$GW_PID"; ok $? "the gateway is still running"

# --- docs/openapi.json against every answer recorded above ---------------------------------
openapi_tap "$TMP/x" '^/api/v1/(limits|reservations|alerts)|^/api/v1/transactions/\{transaction_id\}/'

kill -TERM "$GW_PID"
wait "$GW_PID"
is "$?" 0 "SIGTERM: the gateway stops cleanly"
done_testing
