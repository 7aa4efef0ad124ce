#!/bin/bash
# ISO 20022 at settle-gateway (docs/ISO20022.md), over real HTTP: the sample
# pacs.008 and pacs.009 messages of test/iso20022/ are validated, mapped onto
# settle_submit_bulk and answered with pacs.002 reports that validate against
# the official pacs.002.001.10 schema; what was written is read back from the
# database; a message sent again is answered with the same statuses and writes
# nothing; refusals carry the reason codes of the one table; hostile documents
# (entity bomb, external entity, deep nesting, wrong namespace, invalid
# amount, not XML, too large) are refused with nothing written and the
# gateway still answering; once the worker settled them, GET gives a pacs.002
# with ACSC.  Every answer is checked against docs/openapi.json.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/scratch.sh
. test/lib/tap.sh
. test/lib/openapi.sh

PY=/usr/bin/python3
GATEWAY=${GATEWAY:-$PGBIN/settle-gateway}
[ -x "$GATEWAY" ] || GATEWAY=src/gateway/settle-gateway
for bin in curl xmllint "$GATEWAY"; do
    command -v "$bin" >/dev/null || { echo "Bail out! $bin is missing (make; test/deps.sh)"; exit 1; }
done
XSD=iso20022/xsd
S=test/iso20022

scratch iso20022
scratch_ports P 55640 G 18640
PIDS=()
scratch_on_exit 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done'
scratch_cluster "$TMP/db"

cluster_init "$TMP/db" "$P" "settle.cycle_interval = 200ms" "settle.database = postgres" || exit 1
cluster_start "$TMP/db" || exit 1
Q_PORT=$P

# participants named by their BICs, accounts by their DbtrAcct/CdtrAcct Othr/Id
q "CREATE EXTENSION settle" >/dev/null
q "SELECT settle_create_participant('AAAAUS33'), settle_create_participant('BBBBUS33');
   SELECT settle_create_account('acc_a_usd', 'AAAAUS33', 'USD', opening_balance => 100000000);
   SELECT settle_create_account('acc_b_usd', 'BBBBUS33', 'USD');
   CREATE ROLE bank_a_app LOGIN; CREATE ROLE bank_b_app LOGIN;
   SELECT settle_map_role('bank_a_app', 'AAAAUS33'), settle_map_role('bank_b_app', 'BBBBUS33');
   CREATE ROLE gateway LOGIN IN ROLE settle_gateway;" >/dev/null || exit 1
TOKEN_A=$(q "SELECT settle_issue_api_token('bank_a_iso', 'bank_a_app')")
TOKEN_B=$(q "SELECT settle_issue_api_token('bank_b_iso', 'bank_b_app')")

"$GATEWAY" --port "$G" --db "host=127.0.0.1 port=$P user=gateway dbname=postgres" --max-body 65536 \
    --max-array 10 --iso20022-xsd-dir "$XSD" >"$TMP/gw.log" 2>&1 &
GW_PID=$!
PIDS+=($GW_PID)
U=http://127.0.0.1:$G
up() { curl -s -o /dev/null "$U/metrics"; }
wait_for 10 up
ok $? "settle-gateway listens" || { cat "$TMP/gw.log"; done_testing; exit 1; }
alive() { [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$U/api/v1/health")" = 200 ]; }

hdr() { grep -i "^$2:" "$TMP/x/$1.hdr" | head -1 | cut -d: -f2- | tr -d '\r' | sed 's/^ //'; }
jf() { $PY -c 'import json,sys; print(json.load(sys.stdin).get(sys.argv[1]))' "$1"; }
A=(-H "Authorization: Bearer $TOKEN_A" -H "Content-Type: application/xml")
B=(-H "Authorization: Bearer $TOKEN_B" -H "Content-Type: application/xml")
post() {  # NAME FILE [curl args]: POST a message as AAAAUS33
    local name=$1 file=$2
    shift 2
    call "$name" POST /api/v1/iso20022 "${A[@]}" --data-binary "@$file" "$@"
}
# valid NAME: the answer validates against the official pacs.002.001.10 schema
valid() { xmllint --noout --nonet --schema "$XSD/pacs.002.001.10.xsd" "$TMP/x/$1.body" 2>"$TMP/xmllint.$1"; }
# x NAME XPATH: a value of the answer (the pacs.002 namespace as p:)
x() {
    $PY - "$TMP/x/$1.body" "$2" <<'EOF'
import sys, xml.etree.ElementTree as ET
ns = {"p": "urn:iso:std:iso:20022:tech:xsd:pacs.002.001.10"}
r = ET.parse(sys.argv[1]).getroot()
print(" ".join((e.text or "") for e in r.findall(sys.argv[2], ns)))
EOF
}
TX=p:FIToFIPmtStsRpt/p:TxInfAndSts
GRP=p:FIToFIPmtStsRpt/p:OrgnlGrpInfAndSts
payments() { q "SELECT count(*) FROM settle.payment"; }

# --- docs/ISO20022.md's reason-code table is iso_reason.c's ---------------------------------
$PY - <<'EOF' >"$TMP/reasons.diff"
import re
code = re.findall(r'\{"([^"]+)", "([A-Z0-9]{4})", "([A-Za-z]+)"\}', open("src/gateway/iso_reason.c").read())
doc = open("docs/ISO20022.md").read()
table = doc.split("<!-- iso-reason-table")[1].split("<!-- end iso-reason-table")[0]
rows = [tuple(c.strip() for c in l.strip().strip("|").split("|")) for l in table.splitlines()[3:] if l.startswith("|")]
if code != rows or not code:
    print("code:", code)
    print("doc: ", rows)
EOF
[ -s "$TMP/reasons.diff" ] && cat "$TMP/reasons.diff"
[ ! -s "$TMP/reasons.diff" ]; ok $? "docs/ISO20022.md's reason-code table is src/gateway/iso_reason.c's, row for row"

# --- the samples are valid messages ------------------------------------------------------
for f in pacs008_two pacs008_refusals; do
    xmllint --noout --nonet --schema "$XSD/pacs.008.001.08.xsd" "$S/$f.xml" 2>/dev/null
    ok $? "sample $f.xml validates against pacs.008.001.08.xsd"
done
xmllint --noout --nonet --schema "$XSD/pacs.009.001.08.xsd" "$S/pacs009_one.xml" 2>/dev/null
ok $? "sample pacs009_one.xml validates against pacs.009.001.08.xsd"

# --- pacs.008 in, pacs.002 out ------------------------------------------------------------
post p008 "$S/pacs008_two.xml"
is "$CODE" 200 "POST a pacs.008 with two transactions: 200"
is "$(hdr p008 Content-Type)" "application/xml; charset=utf-8" "the answer is XML"
valid p008; ok $? "the answer validates against pacs.002.001.10.xsd" || cat "$TMP/xmllint.p008"
is "$(x p008 "$GRP/p:OrgnlMsgId")/$(x p008 "$GRP/p:OrgnlMsgNmId")/$(x p008 "$GRP/p:OrgnlNbOfTxs")/$(x p008 "$GRP/p:GrpSts")" \
   "MSG-008-0001/pacs.008.001.08/2/ACSP" "the group: original MsgId, message name, 2 transactions, ACSP"
is "$(x p008 "$TX/p:OrgnlTxId")|$(x p008 "$TX/p:TxSts")" "TX-008-1 TX-008-2|ACSP ACSP" \
   "each transaction accepted (ACSP), in the message's order"
is "$(x p008 "$TX/p:OrgnlEndToEndId")|$(x p008 "$TX/p:OrgnlInstrId")|$(x p008 "$TX/p:OrgnlUETR")" \
   "E2E-1 E2E-2|INSTR-1|8a562c67-ca16-48ba-b074-65581be6f011" "the original EndToEndId, InstrId, UETR are quoted"
is "$(x p008 "$TX/p:AcctSvcrRef")" "$(q "SELECT string_agg(payment_id::text, ' ' ORDER BY transaction_id) FROM settle.payment WHERE transaction_id LIKE 'TX-008-%'")" \
   "AcctSvcrRef is settle's payment_id"
is "$(q "SELECT string_agg(concat_ws(',', transaction_id, idempotency_key, amount, source_currency, source_account,
                 destination_account, counterparty_id, priority), ' | ' ORDER BY transaction_id)
          FROM settle.transactions WHERE transaction_id LIKE 'TX-008-%'")" \
   "TX-008-1,pacs.008.001.08:MSG-008-0001/TX-008-1,1500.25,USD,acc_a_usd,acc_b_usd,BBBBUS33,7 | TX-008-2,pacs.008.001.08:MSG-008-0001/TX-008-2,20.00,USD,acc_a_usd,acc_b_usd,BBBBUS33,5" \
   "written: TxId, key MsgId/TxId, amount, currency, accounts, creditor agent as counterparty, InstrPrty HIGH as 7"

# --- the same message again: the same statuses, nothing more written ------------------------
before=$(payments)
post p008_again "$S/pacs008_two.xml"
is "$CODE/$(x p008_again "$TX/p:TxSts")/$(x p008_again "$TX/p:AcctSvcrRef")" "200/ACSP ACSP/$(x p008 "$TX/p:AcctSvcrRef")" \
   "a duplicate message answers the original statuses and payments"
is "$(payments)" "$before" "and writes nothing"
valid p008_again; ok $? "its answer validates too"

# --- pacs.009 ---------------------------------------------------------------------------------
# settled today: its value date (2099-12-31 in the sample) made today's, or it would wait for that day
TODAY=$(q "SELECT (now() AT TIME ZONE 'UTC')::date")
sed "s/2099-12-31/$TODAY/" "$S/pacs009_one.xml" >"$TMP/p009_today.xml"
post p009 "$TMP/p009_today.xml"
is "$CODE/$(x p009 "$GRP/p:OrgnlMsgNmId")/$(x p009 "$TX/p:TxSts")" "200/pacs.009.001.08/ACSP" "POST a pacs.009: accepted"
valid p009; ok $? "its answer validates against pacs.002.001.10.xsd" || cat "$TMP/xmllint.p009"
is "$(q "SELECT concat_ws(',', amount, counterparty_id, priority, not_before AT TIME ZONE 'UTC', deadline AT TIME ZONE 'UTC')
          FROM settle.transactions WHERE transaction_id = 'TX-009-1'")" \
   "250000.00,BBBBUS33,9,$TODAY 00:00:00,$TODAY 23:59:59" \
   "written: Cdtr as counterparty, SttlmPrty URGT as 9, IntrBkSttlmDt as not_before (00:00 UTC), with RjctTm as the deadline"

# --- refusals with reason codes ---------------------------------------------------------------
before=$(payments)
post refusals "$S/pacs008_refusals.xml"
is "$CODE/$(x refusals "$GRP/p:GrpSts")" "200/PART" "a message with refusals: 200, GrpSts PART"
valid refusals; ok $? "its answer validates against pacs.002.001.10.xsd" || cat "$TMP/xmllint.refusals"
is "$(x refusals "$TX/p:TxSts")" "ACSP RJCT RJCT RJCT" "one accepted, three rejected"
is "$(x refusals "$TX/p:StsRsnInf/p:Rsn/p:Cd")" "AM12 AC03 AG03" \
   "reason codes: SE012 -> AM12, SE037 -> AC03, ChrgBr CRED -> AG03"
grep -q "SE012 amount has more decimals than USD allows" "$TMP/x/refusals.body"
ok $? "AddtlInf carries settle's SQLSTATE and message"
is "$(payments)" "$((before + 1))" "only the accepted transaction was written"

sed -e 's/MSG-008-0001/MSG-008-0003/' "$S/pacs008_two.xml" >"$TMP/other_msg.xml"
before=$(payments)
post dupl "$TMP/other_msg.xml"
is "$(x dupl "$TX/p:TxSts")/$(x dupl "$TX/p:StsRsnInf/p:Rsn/p:Cd")" "RJCT RJCT/DUPL DUPL" \
   "the same TxIds in another message: RJCT DUPL (SE061)"
sed -e 's/1500.25/1500.26/' "$S/pacs008_two.xml" >"$TMP/changed.xml"
post am05 "$TMP/changed.xml"
is "$(x am05 "$TX/p:TxSts")/$(x am05 "$TX/p:StsRsnInf/p:Rsn/p:Cd")" "RJCT ACSP/AM05" \
   "the same MsgId and TxId with another amount: RJCT AM05 (SE060); the unchanged one is its replay"
sed -e 's/MSG-008-0001/MSG-008-0004/' -e 's/<NbOfTxs>2</<NbOfTxs>3</' "$S/pacs008_two.xml" >"$TMP/nboftxs.xml"
post am18 "$TMP/nboftxs.xml"
is "$CODE/$(x am18 "$GRP/p:GrpSts")/$(x am18 "$GRP/p:StsRsnInf/p:Rsn/p:Cd")/$(x am18 "$TX/p:TxSts")" "200/RJCT/AM18/" \
   "NbOfTxs not the number of transactions: the message is rejected as a whole (AM18)"
valid am18; ok $? "that answer validates too"
sed -e 's/MSG-008-0001/MSG 008 5/' "$S/pacs008_two.xml" >"$TMP/msgid_space.xml"
post ff01 "$TMP/msgid_space.xml"
is "$CODE/$(x ff01 "$GRP/p:GrpSts")/$(x ff01 "$GRP/p:StsRsnInf/p:Rsn/p:Cd")" "200/RJCT/FF01" \
   "a MsgId with spaces (it would be part of the keys): the message is rejected as a whole (FF01)"
is "$(payments)" "$before" "none of these wrote anything"

# --- hostile input: refused, nothing written, the gateway still answers ----------------------
before=$(payments)
post bomb "$S/hostile_bomb.xml"
is "$CODE/$(echo "$BODY" | jf type)" "400/urn:settle:gateway:invalid-xml" "an entity expansion bomb: 400 invalid-xml"
grep -q "DTD" "$TMP/x/bomb.body"; ok $? "naming the DTD as the reason"
post xxe "$S/hostile_xxe.xml"
is "$CODE/$(echo "$BODY" | jf type)" "400/urn:settle:gateway:invalid-xml" "an external entity (file:///etc/passwd): 400"
! grep -q "root:" "$TMP/x/xxe.body"; ok $? "the file's content appears nowhere in the answer"
# nested 40 levels inside the Document: libxml2 reads it, the gateway's limit (32) refuses it
$PY -c 'print("<?xml version=\"1.0\"?><Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:pacs.008.001.08\">" + "<a>" * 40 + "</a>" * 40 + "</Document>")' >"$TMP/deep.xml"
post deep "$TMP/deep.xml"
is "$CODE/$(echo "$BODY" | jf type)" "400/urn:settle:gateway:invalid-xml" "elements nested 40 deep: 400"
grep -q "nested deeper than 32" "$TMP/x/deep.body"; ok $? "naming the depth limit"
$PY -c 'print("<Document>" + "<a>" * 8000 + "</a>" * 8000 + "</Document>")' >"$TMP/deeper.xml"
post deeper "$TMP/deeper.xml"
is "$CODE" 400 "elements nested 8,000 deep (within --max-body): 400"
post ns "$S/hostile_namespace.xml"
is "$CODE/$(echo "$BODY" | jf type)" "422/urn:settle:gateway:unsupported-message" "another version's namespace: 422 unsupported-message"
printf '<?xml version="1.0"?><Document xmlns="urn:example:other"><x/></Document>' >"$TMP/otherns.xml"
post otherns "$TMP/otherns.xml"
is "$CODE/$(echo "$BODY" | jf type)" "422/urn:settle:gateway:unsupported-message" "a foreign namespace: 422"
post amount "$S/hostile_amount.xml"
is "$CODE/$(echo "$BODY" | jf type)" "422/urn:settle:gateway:schema-invalid" "an amount that is not a decimal: 422 schema-invalid"
grep -q "IntrBkSttlmAmt" "$TMP/x/amount.body"; ok $? "naming the element"
printf 'not <xml' >"$TMP/garbage.xml"
post garbage "$TMP/garbage.xml"
is "$CODE" 400 "not XML: 400"
$PY -c 'import sys; s = open(sys.argv[1]).read().replace("UTF-8", "UTF-16").replace("MSG-008-0001", "MSG-U16")
open(sys.argv[2], "wb").write(s.encode("utf-16"))' "$S/pacs008_two.xml" "$TMP/utf16.xml"
post utf16 "$TMP/utf16.xml"
is "$CODE/$(echo "$BODY" | jf type)" "400/urn:settle:gateway:invalid-xml" "a UTF-16 document (an otherwise valid message): 400"
$PY -c 'print("<?xml version=\"1.0\"?><Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:pacs.008.001.08\"><!--" + "x" * 70000 + "--></Document>")' >"$TMP/big.xml"
post big "$TMP/big.xml"
is "$CODE" 413 "a body over --max-body: 413"
$PY - "$S/pacs008_two.xml" "$TMP/many.xml" <<'EOF'
import sys, re
s = open(sys.argv[1]).read()
tx = re.search(r"<CdtTrfTxInf>.*?</CdtTrfTxInf>", s, re.S).group(0)
many = "".join(tx.replace("TX-008-1", "TX-MANY-%d" % i) for i in range(11))
s = s.replace("MSG-008-0001", "MSG-MANY").replace("<NbOfTxs>2<", "<NbOfTxs>11<")
s = re.sub(r"<CdtTrfTxInf>.*</CdtTrfTxInf>", lambda m: many, s, flags=re.S)
open(sys.argv[2], "w").write(s)
EOF
post many "$TMP/many.xml"
is "$CODE/$(echo "$BODY" | jf type)" "422/urn:settle:gateway:too-many-transactions" "11 transactions with --max-array 10: 422"
call ctype POST /api/v1/iso20022 -H "Authorization: Bearer $TOKEN_A" -H "Content-Type: application/json" \
    --data-binary "@$S/pacs008_two.xml"
is "$CODE" 415 "Content-Type application/json: 415"
call noauth POST /api/v1/iso20022 -H "Content-Type: application/xml" --data-binary "@$S/pacs008_two.xml"
is "$CODE" 401 "no token: 401"
is "$(payments)" "$before" "no hostile message wrote anything"
alive; ok $? "the gateway still answers"
kill -0 "$GW_PID"; ok $? "and its process is the one started"

# --- pacs.002 by GET, as cycles complete ------------------------------------------------------
settled() { [ "$(q "SELECT count(*) FROM settle.payment WHERE transaction_id IN ('TX-008-1', 'TX-008-2') AND status = 'settled'")" = 2 ]; }
wait_for 30 settled
ok $? "the worker settles the message's payments"
call get GET /api/v1/iso20022/pacs.002/MSG-008-0001 -H "Authorization: Bearer $TOKEN_A"
is "$CODE/$(x get "$GRP/p:OrgnlMsgNmId")/$(x get "$GRP/p:GrpSts")/$(x get "$TX/p:OrgnlTxId")/$(x get "$TX/p:TxSts")" \
   "200/pacs.008.001.08/ACSC/TX-008-1 TX-008-2/ACSC ACSC" "GET its pacs.002: settled (ACSC)"
valid get; ok $? "it validates against pacs.002.001.10.xsd" || cat "$TMP/xmllint.get"
call get9 GET /api/v1/iso20022/pacs.002/MSG-009-0001 -H "Authorization: Bearer $TOKEN_A"
is "$CODE/$(x get9 "$GRP/p:OrgnlMsgNmId")/$(x get9 "$TX/p:OrgnlTxId")" "200/pacs.009.001.08/TX-009-1" "GET a pacs.009's pacs.002"
call get_none GET /api/v1/iso20022/pacs.002/MSG-NOPE -H "Authorization: Bearer $TOKEN_A"
is "$CODE" 404 "an unknown MsgId: 404"
call get_other GET /api/v1/iso20022/pacs.002/MSG-008-0001 -H "Authorization: Bearer $TOKEN_B"
is "$CODE" 404 "another participant's message: 404"
call get_noauth GET /api/v1/iso20022/pacs.002/MSG-008-0001
is "$CODE" 401 "GET without a token: 401"
UNDOC=undocumented call get_post POST /api/v1/iso20022/pacs.002/MSG-008-0001 -H "Authorization: Bearer $TOKEN_A"
is "$CODE/$(hdr get_post Allow)" "405/GET" "POST on a report: 405, Allow: GET"

# --- camt.053 and camt.054 of the day, with the statement's proofs ------------------------------
all_settled() { [ "$(q "SELECT count(*) FROM settle.payment WHERE status <> 'settled'")" = 0 ]; }
wait_for 30 all_settled
ok $? "every payment accepted is settled"
q "SELECT count(*) FROM settle_seal()" >/dev/null
q "SELECT settle_chain_digest()" >"$TMP/digest.json"
DAY=$(q "SELECT (now() AT TIME ZONE 'UTC')::date")
call c053 GET "/api/v1/iso20022/camt.053?date=$DAY" -H "Authorization: Bearer $TOKEN_A"
is "$CODE/$(hdr c053 Content-Type)" "200/application/xml; charset=utf-8" "GET the day's camt.053: 200, XML"
xmllint --noout --nonet --schema "$XSD/camt.053.001.08.xsd" "$TMP/x/c053.body" 2>"$TMP/xmllint.c053"
ok $? "it validates against camt.053.001.08.xsd" || cat "$TMP/xmllint.c053"
# y NAME XPATH: a value of a camt document (its namespace as c:)
y() {
    $PY - "$TMP/x/$1.body" "$2" <<'EOF'
import sys, xml.etree.ElementTree as ET
r = ET.parse(sys.argv[1]).getroot()
ns = {"c": r.tag[1:].split("}")[0]}
print(" ".join((e.text or "") for e in r.findall(sys.argv[2], ns)))
EOF
}
ST=c:BkToCstmrStmt/c:Stmt
is "$(y c053 "$ST/c:Acct/c:Id/c:Othr/c:Id")/$(y c053 "$ST/c:Acct/c:Ccy")" "acc_a_usd/USD" "one statement, for AAAAUS33's account"
is "$(y c053 "$ST/c:Ntry/c:CdtDbtInd" | tr ' ' '\n' | sort | uniq -c | tr -s ' ' | paste -sd,)" " 1 CRDT, 4 DBIT" \
   "its entries: the opening credit and the four payments' debits"
is "$(y c053 "$ST/c:Ntry[c:CdtDbtInd='DBIT']/c:Amt" | tr ' ' '\n' | sort -n | paste -sd' ')" "1.00 20.00 1500.25 250000.00" \
   "the debits are the accepted transactions' amounts"
is "$(y c053 "$ST/c:Bal/c:Tp/c:CdOrPrtry/c:Cd")|$(y c053 "$ST/c:Bal/c:Amt")" \
   "OPBD CLBD|0.00 $(q "SELECT balance FROM settle.accounts WHERE account_id = 'acc_a_usd'")" \
   "opening and closing balances: 0.00 before the day, the account's balance after it"
is "$(y c053 "$ST/c:Ntry/c:NtryDtls/c:TxDtls/c:Refs/c:TxId" | tr ' ' '\n' | sort | paste -sd' ')" "TX-008-1 TX-008-2 TX-009-1 TX-R-1" \
   "each payment's entry names its TxId"
tools/settle-verify-statement "$TMP/x/c053.body" "$TMP/digest.json" >"$TMP/verify.out" 2>&1
ok $? "tools/settle-verify-statement verifies the camt.053 against the digest" || cat "$TMP/verify.out"
grep -q "account reports are the statement's entries and balances" "$TMP/verify.out"
ok $? "  ... the proofs it carries and the entries and balances it shows"
sed 's#>1500.25<#>1500.35<#' "$TMP/x/c053.body" >"$TMP/tampered.xml"
tools/settle-verify-statement "$TMP/tampered.xml" "$TMP/digest.json" >"$TMP/verify.out" 2>&1
is "$?" 1 "a camt.053 with an amount changed is rejected (its proofs still hold)"
grep -q "1500.35 USD is not the statement's -150025 minor units" "$TMP/verify.out"; ok $? "  ... naming the amount" || cat "$TMP/verify.out"
$PY - "$TMP/x/c053.body" "$TMP/dropped.xml" <<'EOF'
import re, sys
s = open(sys.argv[1]).read()
open(sys.argv[2], "w").write(re.sub(r"<Ntry>.*?</Ntry>", "", s, count=1, flags=re.S))
EOF
tools/settle-verify-statement "$TMP/dropped.xml" "$TMP/digest.json" >"$TMP/verify.out" 2>&1
is "$?" 1 "a camt.053 with an entry dropped is rejected"
grep -q "entries in the report" "$TMP/verify.out"; ok $? "  ... counting the entries" || cat "$TMP/verify.out"
call c054 GET "/api/v1/iso20022/camt.054?date=$DAY" -H "Authorization: Bearer $TOKEN_B"
is "$CODE" 200 "GET the day's camt.054 as BBBBUS33: 200"
xmllint --noout --nonet --schema "$XSD/camt.054.001.08.xsd" "$TMP/x/c054.body" 2>"$TMP/xmllint.c054"
ok $? "it validates against camt.054.001.08.xsd" || cat "$TMP/xmllint.c054"
NT=c:BkToCstmrDbtCdtNtfctn/c:Ntfctn
is "$(y c054 "$NT/c:Acct/c:Id/c:Othr/c:Id")|$(y c054 "$NT/c:Ntry/c:CdtDbtInd" | tr ' ' '\n' | sort -u | paste -sd' ')|$(y c054 "$NT/c:Ntry/c:Amt" | tr ' ' '\n' | sort -n | paste -sd' ')" \
   "acc_b_usd|CRDT|1.00 20.00 1500.25 250000.00" "credit notifications of BBBBUS33's account, one per payment received"
tools/settle-verify-statement "$TMP/x/c054.body" "$TMP/digest.json" >"$TMP/verify.out" 2>&1
ok $? "the camt.054 verifies too" || cat "$TMP/verify.out"
! grep -q "acc_a_usd\|AAAAUS33" "$TMP/x/c054.body"; ok $? "nothing of AAAAUS33's accounts in BBBBUS33's notification"
call c053_nodate GET "/api/v1/iso20022/camt.053" -H "Authorization: Bearer $TOKEN_A"
is "$CODE/$(echo "$BODY" | jf field)" "400/date" "no date: 400 naming date"
call c053_baddate GET "/api/v1/iso20022/camt.053?date=2026-13-01" -H "Authorization: Bearer $TOKEN_A"
is "$CODE" 400 "a month 13: 400"
call c053_noauth GET "/api/v1/iso20022/camt.053?date=$DAY"
is "$CODE" 401 "no token: 401"
q "SELECT settle_create_participant('CCCCUS33'); CREATE ROLE bank_c_app LOGIN; SELECT settle_map_role('bank_c_app', 'CCCCUS33')" >/dev/null
TOKEN_C=$(q "SELECT settle_issue_api_token('bank_c_iso', 'bank_c_app')")
call c053_noacct GET "/api/v1/iso20022/camt.053?date=$DAY" -H "Authorization: Bearer $TOKEN_C"
is "$CODE" 404 "a participant without accounts: camt.053 404"
call c054_noacct GET "/api/v1/iso20022/camt.054?date=$DAY" -H "Authorization: Bearer $TOKEN_C"
is "$CODE" 404 "and camt.054 404"
call c054_nodate GET "/api/v1/iso20022/camt.054?day=$DAY" -H "Authorization: Bearer $TOKEN_B"
is "$CODE" 400 "camt.054 without date: 400"
call c054_noauth GET "/api/v1/iso20022/camt.054?date=$DAY"
is "$CODE" 401 "camt.054 without a token: 401"

# --- the notification stream (Server-Sent Events), opened before the next messages ---------------
# stream NAME TOKEN [curl args]: GET /api/v1/iso20022/notifications in the background into $TMP/NAME.sse
stream() {
    local name=$1 token=$2
    shift 2
    curl -sN --max-time 120 -H "Authorization: Bearer $token" "$@" "$U/api/v1/iso20022/notifications" \
        >"$TMP/$name.sse" 2>/dev/null &
    PIDS+=($!)
    eval "SSE_$name=$!"
}
ready() { grep -q "^event: ready" "$TMP/$1.sse" 2>/dev/null; }
stream sse_a "$TOKEN_A"
stream sse_b "$TOKEN_B"
wait_for 10 ready sse_a && wait_for 10 ready sse_b
ok $? "GET /api/v1/iso20022/notifications: each stream starts with a ready event"
READY_A=$(sed -n 's/^id: //p' "$TMP/sse_a.sse" | head -1)
[[ "$READY_A" =~ ^[0-9]+-0$ ]]; ok $? "  ... whose id is a resume point (<xid>-0): $READY_A"
# events FILE: the stream's events, one per line: type|id|data file (data written to $TMP/ev.N.xml)
events() {
    $PY - "$1" "$TMP" <<'PYEOF'
import sys
text = open(sys.argv[1]).read()
n = 0
for block in text.split("\n\n"):
    typ, data, eid = None, [], ""
    for line in block.split("\n"):
        if line.startswith("event: "): typ = line[7:]
        elif line.startswith("data: "): data.append(line[6:])
        elif line.startswith("id: "): eid = line[4:]
    if typ and typ != "ready" and typ != "end":
        n += 1
        path = "%s/ev.%s.%d.xml" % (sys.argv[2], sys.argv[1].split("/")[-1], n)
        open(path, "w").write("\n".join(data) + "\n")
        print("%s|%s|%s" % (typ, eid, path))
PYEOF
}
# xq FILE XPATH: values in an ISO document (its namespace as d:)
xq() {
    $PY - "$1" "$2" <<'PYEOF'
import sys, xml.etree.ElementTree as ET
r = ET.parse(sys.argv[1]).getroot()
ns = {"d": r.tag[1:].split("}")[0]}
print(" ".join((e.text or "") for e in r.findall(sys.argv[2], ns)))
PYEOF
}

# --- requested times: FrTm, TillTm, RjctTm, a value date ----------------------------------------
xmllint --noout --nonet --schema "$XSD/pacs.009.001.08.xsd" "$S/pacs009_times.xml" 2>/dev/null
ok $? "sample pacs009_times.xml validates against pacs.009.001.08.xsd"
before=$(payments)
post times "$S/pacs009_times.xml"
valid times; ok $? "its answer validates against pacs.002.001.10.xsd" || cat "$TMP/xmllint.times"
is "$CODE/$(x times "$GRP/p:GrpSts")/$(x times "$TX/p:TxSts")" "200/PART/ACSP ACSP ACSP RJCT RJCT RJCT" \
   "three timed transactions accepted, three refused"
is "$(x times "$TX/p:StsRsnInf/p:Rsn/p:Cd")" "DT01 DT01 DT01" \
   "refused DT01: a time without an offset (SE052), FrTm not before RjctTm (SE053), FrTm without a date"
grep -q "SE053 not_before must be before deadline" "$TMP/x/times.body"; ok $? "  ... naming SE053 for the second"
is "$(q "SELECT string_agg(concat_ws(',', transaction_id, not_before AT TIME ZONE 'UTC', coalesce((deadline AT TIME ZONE 'UTC')::text, '-')), ' | '
          ORDER BY transaction_id) FROM settle.transactions WHERE transaction_id LIKE 'TX-T-%'")" \
   "TX-T-FROM,2099-12-30 10:30:00,2099-12-30 15:00:00 | TX-T-REJECT,2099-12-30 00:00:00,2099-12-30 17:00:00 | TX-T-VALUE,2099-12-30 00:00:00,-" \
   "written: FrTm as not_before and TillTm (+01:00) as the deadline; RjctTm over TillTm; a value date alone as not_before 00:00 UTC"
is "$(payments)" "$((before + 3))" "only the three accepted were written"
post times_again "$S/pacs009_times.xml"
is "$(x times_again "$TX/p:TxSts")|$(x times_again "$TX/p:AcctSvcrRef")" "$(x times "$TX/p:TxSts")|$(x times "$TX/p:AcctSvcrRef")" \
   "the same message again: the same statuses and payments (the same times: replays, not AM05)"
is "$(payments)" "$((before + 3))" "and writes nothing"

# --- the business application header (head.001.001.02) in its envelope ---------------------------
# piece FILE ELEMENT: the envelope's AppHdr or Document alone
piece() {
    $PY - "$1" "$2" <<'PYEOF'
import sys, xml.etree.ElementTree as ET
for e in ET.parse(sys.argv[1]).getroot():
    if e.tag.endswith("}" + sys.argv[2]):
        print(ET.tostring(e, encoding="unicode"))
PYEOF
}
# h NAME XPATH: a value of an enveloped answer (h: the header, p: the pacs.002)
h() {
    $PY - "$TMP/x/$1.body" "$2" <<'PYEOF'
import sys, xml.etree.ElementTree as ET
ns = {"h": "urn:iso:std:iso:20022:tech:xsd:head.001.001.02", "p": "urn:iso:std:iso:20022:tech:xsd:pacs.002.001.10"}
r = ET.parse(sys.argv[1]).getroot()
print(" ".join((e.text or "") for e in r.findall(sys.argv[2], ns)))
PYEOF
}
piece "$S/pacs008_apphdr.xml" AppHdr >"$TMP/sample.AppHdr"
xmllint --noout --nonet --schema "$XSD/head.001.001.02.xsd" "$TMP/sample.AppHdr" 2>/dev/null
ok $? "sample pacs008_apphdr.xml's AppHdr validates against head.001.001.02.xsd"
before=$(payments)
post hdr "$S/pacs008_apphdr.xml"
is "$CODE/$($PY -c 'import sys, xml.etree.ElementTree as ET; print(ET.parse(sys.argv[1]).getroot().tag)' "$TMP/x/hdr.body")" \
   "200/{urn:swift:xsd:envelope}Envelope" "POST a pacs.008 with its AppHdr: 200, answered in the same envelope"
piece "$TMP/x/hdr.body" AppHdr >"$TMP/hdr.AppHdr"
piece "$TMP/x/hdr.body" Document >"$TMP/hdr.Document"
xmllint --noout --nonet --schema "$XSD/head.001.001.02.xsd" "$TMP/hdr.AppHdr" 2>"$TMP/xmllint.hdr"
ok $? "the answer's AppHdr validates against head.001.001.02.xsd" || cat "$TMP/xmllint.hdr"
xmllint --noout --nonet --schema "$XSD/pacs.002.001.10.xsd" "$TMP/hdr.Document" 2>"$TMP/xmllint.hdr"
ok $? "its Document validates against pacs.002.001.10.xsd" || cat "$TMP/xmllint.hdr"
is "$(h hdr h:AppHdr/h:Fr//h:BICFI)/$(h hdr h:AppHdr/h:To//h:BICFI)/$(h hdr h:AppHdr/h:BizMsgIdr)/$(h hdr h:AppHdr/h:MsgDefIdr)/$(h hdr h:AppHdr/h:BizSvc)" \
   "SETLUS33/AAAAUS33/STS-MSG-008-HDR/pacs.002.001.10/swift.cbprplus.02" \
   "its header: from the message's To to its Fr, naming the pacs.002 and its MsgId, the same BizSvc"
is "$(h hdr h:AppHdr/h:Rltd/h:BizMsgIdr)/$(h hdr h:AppHdr/h:Rltd/h:MsgDefIdr)/$(h hdr h:AppHdr/h:Rltd/h:Fr//h:BICFI)" \
   "MSG-008-HDR/pacs.008.001.08/AAAAUS33" "Rltd quotes the message's header"
PR=p:Document/p:FIToFIPmtStsRpt
is "$(h hdr $PR/p:OrgnlGrpInfAndSts/p:GrpSts)/$(h hdr $PR/p:TxInfAndSts/p:TxSts)" "ACSP/ACSP ACSP" "both transactions accepted"
is "$(q "SELECT string_agg(idempotency_key, ' ' ORDER BY transaction_id) FROM settle.payment WHERE transaction_id LIKE 'TX-H-%'")" \
   "pacs.008.001.08:MSG-008-HDR/TX-H-1 pacs.008.001.08:MSG-008-HDR/TX-H-2" "written as the Document alone would be"
post hdr_again "$S/pacs008_apphdr.xml"
is "$(h hdr_again $PR/p:TxInfAndSts/p:AcctSvcrRef)" "$(h hdr $PR/p:TxInfAndSts/p:AcctSvcrRef)" "sent again: the same payments"
is "$(payments)" "$((before + 2))" "two payments written, none by the replay"
before=$(payments)
sed 's#<MsgDefIdr>pacs.008.001.08<#<MsgDefIdr>pacs.009.001.08<#' "$S/pacs008_apphdr.xml" >"$TMP/hdr_def.xml"
post hdr_def "$TMP/hdr_def.xml"
is "$CODE/$(h hdr_def $PR/p:OrgnlGrpInfAndSts/p:GrpSts)/$(h hdr_def $PR/p:OrgnlGrpInfAndSts/p:StsRsnInf/p:Rsn/p:Cd)" \
   "200/RJCT/FF01" "MsgDefIdr naming another message: rejected as a whole (FF01)"
grep -q "pacs.009.001.08&quot; is not the Document's message" "$TMP/x/hdr_def.body"; ok $? "  ... saying why"
sed 's#<BizMsgIdr>MSG-008-HDR<#<BizMsgIdr>MSG-OTHER<#' "$S/pacs008_apphdr.xml" >"$TMP/hdr_biz.xml"
post hdr_biz "$TMP/hdr_biz.xml"
is "$(h hdr_biz $PR/p:OrgnlGrpInfAndSts/p:GrpSts)/$(h hdr_biz $PR/p:OrgnlGrpInfAndSts/p:StsRsnInf/p:Rsn/p:Cd)" \
   "RJCT/FF01" "BizMsgIdr not the MsgId: rejected as a whole (FF01)"
sed -e '/<Fr>/s#AAAAUS33#BBBBUS33#' -e 's/MSG-008-HDR/MSG-008-HDR2/g' "$S/pacs008_apphdr.xml" >"$TMP/hdr_fr.xml"
post hdr_fr "$TMP/hdr_fr.xml"
is "$(h hdr_fr $PR/p:OrgnlGrpInfAndSts/p:GrpSts)/$(h hdr_fr $PR/p:OrgnlGrpInfAndSts/p:StsRsnInf/p:Rsn/p:Cd)/$(h hdr_fr h:AppHdr/h:To//h:BICFI)" \
   "RJCT/RC01/BBBBUS33" "Fr not the token's participant: rejected as a whole (RC01)"
piece "$TMP/x/hdr_fr.body" AppHdr >"$TMP/hdr_fr.AppHdr"
xmllint --noout --nonet --schema "$XSD/head.001.001.02.xsd" "$TMP/hdr_fr.AppHdr" 2>/dev/null
ok $? "  ... in an answer whose AppHdr validates"
sed 's#<CreDt>.*</CreDt>##' "$S/pacs008_apphdr.xml" >"$TMP/hdr_invalid.xml"
post hdr_invalid "$TMP/hdr_invalid.xml"
is "$CODE/$(echo "$BODY" | jf type)" "422/urn:settle:gateway:schema-invalid" "an AppHdr without CreDt: 422 schema-invalid"
$PY -c 'import re, sys; open(sys.argv[2], "w").write(re.sub(r"<Document.*</Document>", "", open(sys.argv[1]).read(), flags=re.S))' \
    "$S/pacs008_apphdr.xml" "$TMP/hdr_only.xml"
post hdr_only "$TMP/hdr_only.xml"
is "$CODE/$(echo "$BODY" | jf type)" "422/urn:settle:gateway:unsupported-message" "an envelope without a Document: 422 unsupported-message"
is "$(payments)" "$before" "no inconsistent header wrote anything"
settled_h() { [ "$(q "SELECT count(*) FROM settle.payment WHERE transaction_id LIKE 'TX-H-%' AND status = 'settled'")" = 2 ]; }
wait_for 30 settled_h
ok $? "the header's payments settle"
is "$(q "SELECT string_agg(status::text, ' ' ORDER BY transaction_id) FROM settle.payment WHERE transaction_id LIKE 'TX-T-%'")" \
   "queued queued queued" "meanwhile the payments valued 2099-12-30 wait for their day (queued)"

# --- pushed: pacs.002 and camt.054 on the streams, as the header's payments settled -----------------
pushed_a() { [ "$(events "$TMP/sse_a.sse" | grep -c '^camt.054|')" -ge 2 ]; }
pushed_b() { [ "$(events "$TMP/sse_b.sse" | grep -c '^camt.054|')" -ge 2 ]; }
wait_for 15 pushed_a && wait_for 15 pushed_b
ok $? "both streams received the settled payments' notifications"
events "$TMP/sse_a.sse" >"$TMP/ev_a.list"
events "$TMP/sse_b.sse" >"$TMP/ev_b.list"
is "$(cut -d'|' -f1 "$TMP/ev_a.list" | paste -sd' ')" "pacs.002 camt.054 pacs.002 camt.054" \
   "the payer's stream: for each payment a pacs.002 then a camt.054"
is "$(cut -d'|' -f1 "$TMP/ev_b.list" | paste -sd' ')" "camt.054 camt.054" "the payee's stream: a camt.054 for each, no pacs.002"
bad=0
while IFS='|' read -r typ id file; do
    xsd=$XSD/pacs.002.001.10.xsd
    [ "$typ" = camt.054 ] && xsd=$XSD/camt.054.001.08.xsd
    xmllint --noout --nonet --schema "$xsd" "$file" 2>>"$TMP/xmllint.sse" || bad=$((bad + 1))
done < <(cat "$TMP/ev_a.list" "$TMP/ev_b.list")
is "$bad" 0 "every pushed document validates against its schema" || cat "$TMP/xmllint.sse"
P1=$(sed -n 1p "$TMP/ev_a.list" | cut -d'|' -f3)
is "$(xq "$P1" d:FIToFIPmtStsRpt/d:OrgnlGrpInfAndSts/d:OrgnlMsgId)/$(xq "$P1" d:FIToFIPmtStsRpt/d:TxInfAndSts/d:OrgnlTxId)/$(xq "$P1" d:FIToFIPmtStsRpt/d:TxInfAndSts/d:TxSts)" \
   "MSG-008-HDR/TX-H-1/ACSC" "the first pacs.002: the message's MsgId, TX-H-1, ACSC"
C1=$(sed -n 2p "$TMP/ev_a.list" | cut -d'|' -f3)
is "$(xq "$C1" d:BkToCstmrDbtCdtNtfctn/d:Ntfctn/d:Acct/d:Id/d:Othr/d:Id)/$(xq "$C1" d:BkToCstmrDbtCdtNtfctn/d:Ntfctn/d:Ntry/d:CdtDbtInd)/$(xq "$C1" d:BkToCstmrDbtCdtNtfctn/d:Ntfctn/d:Ntry/d:Amt)/$(xq "$C1" d:BkToCstmrDbtCdtNtfctn/d:Ntfctn/d:Ntry/d:NtryDtls/d:TxDtls/d:Refs/d:TxId)" \
   "acc_a_usd/DBIT/1500.25/TX-H-1" "the payer's camt.054: a debit of acc_a_usd, the amount and TxId"
C2=$(sed -n 1p "$TMP/ev_b.list" | cut -d'|' -f3)
is "$(xq "$C2" d:BkToCstmrDbtCdtNtfctn/d:Ntfctn/d:Acct/d:Id/d:Othr/d:Id)/$(xq "$C2" d:BkToCstmrDbtCdtNtfctn/d:Ntfctn/d:Ntry/d:CdtDbtInd)/$(xq "$C2" d:BkToCstmrDbtCdtNtfctn/d:Ntfctn/d:Ntry/d:Amt)" \
   "acc_b_usd/CRDT/1500.25" "the payee's camt.054: a credit of acc_b_usd"
! grep -q "acc_a_usd" "$TMP/sse_b.sse"; ok $? "nothing of the payer's accounts on the payee's stream"
LAST_A=$(tail -1 "$TMP/ev_a.list" | cut -d'|' -f2)
[[ "$LAST_A" =~ ^[0-9]+-[0-9]+$ ]]; ok $? "the last event of a payment carries the resume id ($LAST_A)"

# a failure: the payer revokes a payment still waiting for its value date
q "SELECT settle_revoke_payment(payment_id, 'customer recalled') FROM settle.payment WHERE transaction_id = 'TX-T-VALUE'" >/dev/null
pushed_rjct() { events "$TMP/sse_a.sse" | grep -q '^pacs.002|.*' && [ "$(events "$TMP/sse_a.sse" | wc -l)" -ge 5 ]; }
# usually about a second, but once in a few runs 15 s, and over 30 s once on a machine at load 9
# (docs/ISO20022.md, "Not done yet"): waits 50 s, and says what held transactions open if late
wait_for 50 pushed_rjct
ok $? "a payment failing is pushed too" ||
    q "SELECT pid, backend_type, application_name, state, backend_xid, backend_xmin, now() - xact_start, left(query, 100)
         FROM pg_stat_activity WHERE backend_xid IS NOT NULL OR backend_xmin IS NOT NULL" | sed 's/^/# holding: /'
F=$(events "$TMP/sse_a.sse" | sed -n 5p | cut -d'|' -f3)
is "$(xq "$F" d:FIToFIPmtStsRpt/d:OrgnlGrpInfAndSts/d:OrgnlMsgId)/$(xq "$F" d:FIToFIPmtStsRpt/d:TxInfAndSts/d:OrgnlTxId)/$(xq "$F" d:FIToFIPmtStsRpt/d:TxInfAndSts/d:TxSts)/$(xq "$F" d:FIToFIPmtStsRpt/d:TxInfAndSts/d:StsRsnInf/d:Rsn/d:Cd)" \
   "MSG-009-TIMES/TX-T-VALUE/RJCT/ED05" "  ... as a pacs.002 RJCT ED05 of its message"
xmllint --noout --nonet --schema "$XSD/pacs.002.001.10.xsd" "$F" 2>/dev/null; ok $? "  ... valid"
sleep 1
is "$(events "$TMP/sse_b.sse" | wc -l)" 2 "the payee heard nothing of it"

# resuming: from the ready id, the same events again; from the last, nothing
kill "$SSE_sse_a" 2>/dev/null
stream sse_resume "$TOKEN_A" -H "Last-Event-ID: $READY_A"
resumed() { [ "$(events "$TMP/sse_resume.sse" | wc -l)" -ge 5 ]; }
wait_for 15 resumed
is "$(events "$TMP/sse_resume.sse" | cut -d'|' -f1,2 | paste -sd' ')" "$(events "$TMP/sse_a.sse" | cut -d'|' -f1,2 | paste -sd' ')" \
   "reconnected with Last-Event-ID: the ready id: exactly the same events, same ids"
LAST_ALL=$(events "$TMP/sse_a.sse" | tail -1 | cut -d'|' -f2)
stream sse_after "$TOKEN_A" --get --data-urlencode "since=$LAST_ALL"
wait_for 10 ready sse_after
sleep 2
is "$(events "$TMP/sse_after.sse" | wc -l)" 0 "?since= the last id: nothing again"
grep -q "^id: $LAST_ALL\$" "$TMP/sse_after.sse"; ok $? "  ... its ready event confirms the cursor"

# an expiry: a payment its payer cannot fund, its RjctTm a few seconds away, on the stream resumed from the last id
AMT=$(q "SELECT balance + 1 FROM settle.accounts WHERE account_id = 'acc_a_usd'")
RJ=$(q "SELECT to_char((now() + interval '4 seconds') AT TIME ZONE 'UTC', 'HH24:MI:SS')")
sed -e "s/MSG-009-0001/MSG-009-EXP/" -e "s/TX-009-1/TX-009-EXP/" -e "s/2099-12-31/$TODAY/" -e "s/23:59:59Z/${RJ}Z/" \
    -e "s#>250000.00<#>$AMT<#" "$S/pacs009_one.xml" >"$TMP/expire.xml"
post expire "$TMP/expire.xml"
is "$(x expire "$TX/p:TxSts")" ACSP "a payment its payer cannot fund ($AMT), to be rejected at $RJ UTC: accepted"
expired_pushed() { events "$TMP/sse_after.sse" | grep -q '^pacs.002|'; }
wait_for 30 expired_pushed
ok $? "when it expires, the stream resumed from the last id pushes it"
E=$(events "$TMP/sse_after.sse" | grep '^pacs.002|' | tail -1 | cut -d'|' -f3)
is "$(xq "$E" d:FIToFIPmtStsRpt/d:TxInfAndSts/d:OrgnlTxId)/$(xq "$E" d:FIToFIPmtStsRpt/d:TxInfAndSts/d:TxSts)/$(xq "$E" d:FIToFIPmtStsRpt/d:TxInfAndSts/d:StsRsnInf/d:Rsn/d:Cd)" \
   "TX-009-EXP/RJCT/NARR" "  ... a pacs.002 RJCT NARR (expired)"
is "$(q "SELECT status FROM settle.payment WHERE transaction_id = 'TX-009-EXP'")" expired "  ... as the database has it"


# a hung subscriber (connects, never reads) and refusals: the gateway unharmed
$PY - "$G" "$TOKEN_A" <<'PYEOF' &
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(("127.0.0.1", int(sys.argv[1])))
s.sendall(("GET /api/v1/iso20022/notifications?since=1-0 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n" % sys.argv[2]).encode())
time.sleep(8)
PYEOF
HUNG=$!
PIDS+=($HUNG)
sleep 2
alive; ok $? "a subscriber that never reads (replaying from the beginning): the gateway still answers"
call sse_ok GET /api/v1/iso20022/notifications -H "Authorization: Bearer $TOKEN_B" --max-time 2
is "$CODE/$(hdr sse_ok Content-Type)" "200/text/event-stream; charset=utf-8" "a stream is text/event-stream"
# at most 64 streams per gateway: the 65th is refused, the gateway unharmed
FULL=()
for i in $(seq 64); do
    curl -sN --max-time 30 -H "Authorization: Bearer $TOKEN_B" "$U/api/v1/iso20022/notifications" >/dev/null 2>&1 &
    FULL+=($!)
    PIDS+=($!)
done
sleep 2
call sse_full GET /api/v1/iso20022/notifications -H "Authorization: Bearer $TOKEN_B" --max-time 5
is "$CODE/$(echo "$BODY" | jf type)" "503/urn:settle:gateway:unavailable" "64 streams open: the next one 503"
for p in "${FULL[@]}"; do kill "$p" 2>/dev/null; done
alive; ok $? "the gateway still answers"
call sse_noauth GET /api/v1/iso20022/notifications
is "$CODE" 401 "the stream without a token: 401"
call sse_badid GET /api/v1/iso20022/notifications -H "Authorization: Bearer $TOKEN_A" -H "Last-Event-ID: yesterday"
is "$CODE/$(echo "$BODY" | jf field)" "400/Last-Event-ID" "a Last-Event-ID the stream never sent: 400"
UNDOC=undocumented call sse_post POST /api/v1/iso20022/notifications -H "Authorization: Bearer $TOKEN_A"
is "$CODE/$(hdr sse_post Allow)" "405/GET" "POST on the stream: 405, Allow: GET"

# --- one payment's camt.054 by GET -----------------------------------------------------------------
PID_H1=$(q "SELECT payment_id FROM settle.payment WHERE transaction_id = 'TX-H-1'")
call c054p_a GET "/api/v1/iso20022/camt.054/$PID_H1" -H "Authorization: Bearer $TOKEN_A"
is "$CODE/$(hdr c054p_a Content-Type)" "200/application/xml; charset=utf-8" "GET camt.054/{payment_id} as the payer: 200, XML"
xmllint --noout --nonet --schema "$XSD/camt.054.001.08.xsd" "$TMP/x/c054p_a.body" 2>"$TMP/xmllint.c054p"
ok $? "it validates against camt.054.001.08.xsd" || cat "$TMP/xmllint.c054p"
is "$(xq "$TMP/x/c054p_a.body" d:BkToCstmrDbtCdtNtfctn/d:Ntfctn/d:Ntry/d:CdtDbtInd)/$(xq "$TMP/x/c054p_a.body" d:BkToCstmrDbtCdtNtfctn/d:Ntfctn/d:Ntry/d:Amt)/$(xq "$TMP/x/c054p_a.body" d:BkToCstmrDbtCdtNtfctn/d:Ntfctn/d:Ntry/d:NtryDtls/d:TxDtls/d:Refs/d:AcctSvcrRef)" \
   "DBIT/1500.25/$PID_H1" "  ... the debit of that payment"
call c054p_b GET "/api/v1/iso20022/camt.054/$PID_H1" -H "Authorization: Bearer $TOKEN_B"
is "$CODE/$(xq "$TMP/x/c054p_b.body" d:BkToCstmrDbtCdtNtfctn/d:Ntfctn/d:Acct/d:Id/d:Othr/d:Id)/$(xq "$TMP/x/c054p_b.body" d:BkToCstmrDbtCdtNtfctn/d:Ntfctn/d:Ntry/d:CdtDbtInd)" \
   "200/acc_b_usd/CRDT" "as the payee: the credit of its account"
! grep -q acc_a_usd "$TMP/x/c054p_b.body"; ok $? "  ... and nothing of the payer's"
call c054p_tx GET "/api/v1/iso20022/camt.054/MSG-008-HDR/TX-H-1" -H "Authorization: Bearer $TOKEN_A"
is "$CODE/$(xq "$TMP/x/c054p_tx.body" d:BkToCstmrDbtCdtNtfctn/d:Ntfctn/d:Ntry/d:NtryDtls/d:TxDtls/d:Refs/d:AcctSvcrRef)" "200/$PID_H1" \
   "GET camt.054/{MsgId}/{TxId}: the same payment"
is "$(xq "$TMP/x/c054p_tx.body" d:BkToCstmrDbtCdtNtfctn/d:Ntfctn/d:Ntry/d:Amt)" "$(xq "$C1" d:BkToCstmrDbtCdtNtfctn/d:Ntfctn/d:Ntry/d:Amt)" \
   "  ... the entry pushed on the stream"
call c054p_c GET "/api/v1/iso20022/camt.054/$PID_H1" -H "Authorization: Bearer $TOKEN_C"
is "$CODE" 404 "another participant: 404"
call c054p_queued GET "/api/v1/iso20022/camt.054/MSG-009-TIMES/TX-T-FROM" -H "Authorization: Bearer $TOKEN_A"
is "$CODE" 404 "a payment not settled: 404"
call c054p_bad GET "/api/v1/iso20022/camt.054/abc" -H "Authorization: Bearer $TOKEN_A"
is "$CODE" 404 "neither a payment_id nor MsgId/TxId: 404"
call c054p_noauth GET "/api/v1/iso20022/camt.054/$PID_H1"
is "$CODE" 401 "without a token: 401"
call c054p_tx_noauth GET "/api/v1/iso20022/camt.054/MSG-008-HDR/TX-H-1"
is "$CODE" 401 "by MsgId/TxId without a token: 401"
kill "$HUNG" 2>/dev/null
alive; ok $? "the gateway still answers once the hung subscriber left"

# --- a MsgId with '/': its own payments only (the key is <message>:<MsgId>/<TxId>) -------------
sed -e 's#MSG-008-0001#MSG/008/6#' -e 's/TX-008-/TX-S-/' "$S/pacs008_two.xml" >"$TMP/slash.xml"
post slash "$TMP/slash.xml"
is "$CODE/$(x slash "$TX/p:TxSts")" "200/ACSP ACSP" "a MsgId with '/' is accepted"
call get_slash GET "/api/v1/iso20022/pacs.002/MSG%2F008%2F6" -H "Authorization: Bearer $TOKEN_A"
is "$CODE/$(x get_slash "$GRP/p:OrgnlMsgId")/$(x get_slash "$TX/p:OrgnlTxId")" "200/MSG/008/6/TX-S-1 TX-S-2" \
   "GET its report (percent-encoded): its two payments"
call get_prefix GET "/api/v1/iso20022/pacs.002/MSG%2F008" -H "Authorization: Bearer $TOKEN_A"
is "$CODE" 404 "GET MsgId MSG/008, a prefix of it: 404, not MSG/008/6's payments"

# --- no database: 503, the gateway still up -----------------------------------------------------
cluster_stop "$TMP/db" >/dev/null 2>&1
post down "$S/pacs008_two.xml"
is "$CODE" 503 "no primary: 503 (send the same message again later)"
call get_down GET /api/v1/iso20022/pacs.002/MSG-008-0001 -H "Authorization: Bearer $TOKEN_A"
is "$CODE" 503 "GET with no primary: 503"
call c053_down GET "/api/v1/iso20022/camt.053?date=$DAY" -H "Authorization: Bearer $TOKEN_A"
is "$CODE" 503 "a camt.053 with no primary: 503"
call c054_down GET "/api/v1/iso20022/camt.054?date=$DAY" -H "Authorization: Bearer $TOKEN_B"
is "$CODE" 503 "a camt.054 with no primary: 503"
call c054p_down GET "/api/v1/iso20022/camt.054/$PID_H1" -H "Authorization: Bearer $TOKEN_A"
is "$CODE" 503 "one payment's camt.054 with no primary: 503"
call c054p_tx_down GET "/api/v1/iso20022/camt.054/MSG-008-HDR/TX-H-1" -H "Authorization: Bearer $TOKEN_A"
is "$CODE" 503 "  ... by MsgId/TxId: 503"
kill -0 "$GW_PID"; ok $? "the gateway is still running"

# --- docs/openapi.json against every answer recorded above ---------------------------------
openapi_tap "$TMP/x" '^/api/v1/iso20022'

kill -TERM "$GW_PID"
wait "$GW_PID"
is "$?" 0 "SIGTERM: the gateway stops cleanly"
done_testing
