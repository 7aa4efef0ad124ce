#!/bin/bash
# Verifiable statements (docs/AUDIT.md, "Statements a participant can
# verify"): settle_statement() against the Merkle tree that
# settle_chain_digest() exports, checked offline by
# tools/settle-verify-statement.  A genuine statement verifies (for every
# size the tree has had); a tampered entry, a dropped entry (also with the
# balances recomputed to hide it), an entry in the database changed after
# sealing, and a statement against the wrong digest are each rejected; a
# participant gets its own statement only and sees nothing of another's.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/scratch.sh
. test/lib/tap.sh

VERIFY=tools/settle-verify-statement
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
scratch statement
scratch_ports P 55620
scratch_cluster "$TMP/c"
cluster_init "$TMP/c" "$P" "settle.worker_enabled = off" || exit 1
cluster_start "$TMP/c" || exit 1
Q_PORT=$P    # q SQL: test/lib/cluster.sh
qa() { psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$P" -U st_alice -d postgres -At -c "$1"; }
verify() { $PY "$VERIFY" "$1" "$2" >"$TMP/verify.out" 2>&1; }
# rejected PATTERN NAME, right after verify: the verifier exited 1 with its
# "REJECTED:" answer and a reason matching PATTERN.  Any other exit (a crash
# is 1 too, with a traceback; a usage error 2) is not a rejection.
rejected() {
    local rc=$?
    [ "$rc" = 1 ] && head -1 "$TMP/verify.out" | grep -q '^REJECTED: ' && grep -qE "$1" "$TMP/verify.out"
    ok $? "$2" || { echo "#   exit $rc:"; sed 's/^/#   /' "$TMP/verify.out" | head -5; }
}

q "CREATE EXTENSION settle" >/dev/null \
  && q "SELECT settle_create_participant(p) FROM unnest(ARRAY['st_a', 'st_b', 'st_c']) p" >/dev/null \
  && q "SELECT settle_create_account(p || '_usd', p, 'USD', opening_balance => 1000) FROM unnest(ARRAY['st_a', 'st_b', 'st_c']) p" >/dev/null \
  && q "SELECT settle_create_account('st_a_eur', 'st_a', 'EUR', opening_balance => 500)" >/dev/null \
  && q "CREATE ROLE st_alice LOGIN; SELECT settle_map_role('st_alice', 'st_a')" >/dev/null
ok $? "three participants, four funded accounts, a login mapped to st_a" || { done_testing; exit 1; }

# three rounds of payments among the three, a cycle and a seal each: the
# tree grows over several seal runs
rounds=0
for r in 1 2 3; do
    q "SELECT count(*) FROM (SELECT settle_submit('r${r}_' || i, 10 + i, 'USD', 'USD', s || '_usd', d || '_usd', d, 'k${r}_' || i)
         FROM generate_series(1, 4) i, (VALUES ('st_a', 'st_b'), ('st_b', 'st_c'), ('st_c', 'st_a')) v(s, d)) x" >/dev/null \
      && q "SELECT settle_run_cycle()" >/dev/null && q "SELECT count(*) FROM settle_seal()" >/dev/null || break
    if [ "$r" = 1 ]; then
        q "SELECT settle._merkle_root(settle._merkle_size())" >"$TMP/root1"
        q "SELECT settle._merkle_size()" >"$TMP/size1"
    fi
    rounds=$((rounds + 1))
done
[ "$rounds" = 3 ] && [ "$(q "SELECT count(*) FROM settle.payment WHERE status = 'settled'")" = 36 ]
ok $? "three rounds of 12 payments, each settled by a cycle and sealed"

n=$(q "SELECT settle._merkle_size()")
sealed=$(q "SELECT count(*) FROM settle.ledger_seal")
is "$n" "$sealed" "the tree has one leaf per sealed entry ($n)"
is "$(q "SELECT settle._merkle_root($(cat "$TMP/size1"))")" "$(cat "$TMP/root1")" \
   "the root of the tree as it was after the first seal is unchanged by later seals"

q "SELECT settle_chain_digest()" >"$TMP/digest.json"
size_in_digest=$($PY -c "import json,sys; print(json.load(open(sys.argv[1]))['ledger_merkle']['size'])" "$TMP/digest.json")
is "$size_in_digest" "$n" "settle_chain_digest() exports the tree's size and root"

# a genuine statement verifies, as an operator asks it and as the participant does
q "SELECT settle_statement('st_a', now() - interval '1 hour', now() + interval '1 hour')" >"$TMP/op.json"
verify "$TMP/op.json" "$TMP/digest.json"
ok $? "an operator's statement of st_a verifies against the digest" || cat "$TMP/verify.out"
qa "SELECT settle_statement('st_a', now() - interval '1 hour', now() + interval '1 hour')" >"$TMP/a.json"
verify "$TMP/a.json" "$TMP/digest.json"
ok $? "st_a's own login gets a statement that verifies" || cat "$TMP/verify.out"
entries=$($PY -c "import json,sys; s=json.load(open(sys.argv[1])); print(sum(len(a['entries']) for a in s['accounts']))" "$TMP/a.json")
expected=$(q "SELECT count(*) FROM settle.ledger_entry e JOIN settle.account a USING (account_id) WHERE a.participant_id = 'st_a'")
is "$entries" "$expected" "the statement shows each of st_a's $expected entries"
grep -q 'st_b\|st_c' "$TMP/a.json"
ok $((! $?)) "nothing in st_a's statement names st_b or st_c (other entries appear as hashes only)"
err=$(qa "SELECT settle_statement('st_b', now() - interval '1 hour', now())" 2>&1 >/dev/null)
echo "$err" | grep -q 'participant_id "st_b" does not exist'
ok $? "st_a's login asking for st_b's statement is refused as if st_b did not exist" || echo "# $err"

# every size the tree has had: each statement verifies against that size's root
bad=0
for m in $(seq 1 "$n"); do
    q "SELECT settle_statement('st_b', '-infinity', 'infinity', $m)" >"$TMP/m.json"
    q "SELECT jsonb_build_object('format', 'settle-chain-digest/1', 'ledger_merkle',
              jsonb_build_object('size', $m, 'root', encode(settle._merkle_root($m), 'hex')))" >"$TMP/md.json"
    verify "$TMP/m.json" "$TMP/md.json" || { bad=$((bad + 1)); cat "$TMP/verify.out"; }
done
is "$bad" "0" "statements of st_b against each of the $n tree sizes verify (every proof shape)"

# tampering with the statement
edit() {  # edit IN OUT PYTHON-EXPRESSION-ON-s
    $PY - "$1" "$2" "$3" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))
def leaf(e): return json.loads(e["content"])
def put(e, v): e["content"] = json.dumps(v, separators=(", ", ": "))
exec(sys.argv[3])
json.dump(s, open(sys.argv[2], "w"))
EOF
}
edit "$TMP/a.json" "$TMP/t1.json" '
e = s["accounts"][1]["entries"][2]; v = leaf(e); v[8] += 100; v[11] += 100; put(e, v)'
verify "$TMP/t1.json" "$TMP/digest.json"
rejected 'does not lead to the digest' "a tampered entry (amount raised) is rejected"
grep -q 'does not lead to the digest' "$TMP/verify.out"
ok $? "  ... because its proof no longer reaches the root"
edit "$TMP/a.json" "$TMP/t2.json" 'del s["accounts"][1]["entries"][3]'
verify "$TMP/t2.json" "$TMP/digest.json"
rejected 'missing' "a dropped entry is rejected"
grep -q 'entries [0-9]* to [0-9]* of the account are missing' "$TMP/verify.out"
ok $? "  ... as a gap in the account's numbering"
edit "$TMP/a.json" "$TMP/t3.json" '
es = s["accounts"][1]["entries"]; gone = leaf(es[3])
del es[3]
for e in es[3:]:
    v = leaf(e); v[10] -= 1; v[11] -= gone[8]; put(e, v)'
verify "$TMP/t3.json" "$TMP/digest.json"
rejected 'does not lead to the digest' "a dropped entry with the later numbers and balances recomputed is rejected (the leaves commit to them)"
edit "$TMP/a.json" "$TMP/t4.json" 'del s["accounts"][1]["entries"][0]'
verify "$TMP/t4.json" "$TMP/digest.json"
rejected 'the entries before number [0-9]+ are missing' "dropping an account's first entry is rejected"
edit "$TMP/a.json" "$TMP/t5.json" '
e = s["accounts"][1]["entries"][0]; v = leaf(e); v[5] = "st_b"; put(e, v)'
verify "$TMP/t5.json" "$TMP/digest.json"
rejected 'is an entry of another participant' "an entry relabelled as another participant's is rejected"
edit "$TMP/a.json" "$TMP/t6.json" 's["accounts"][1]["entries"][0]["note"] = "x"'
verify "$TMP/t6.json" "$TMP/digest.json"
rejected 'an entry has other fields than' "a statement carrying an unknown field is rejected"

# the wrong digest: one taken before the last seal, and one of another database
q "SELECT jsonb_build_object('format', 'settle-chain-digest/1', 'ledger_merkle',
          jsonb_build_object('size', $(cat "$TMP/size1"), 'root', encode(settle._merkle_root($(cat "$TMP/size1")), 'hex')))" >"$TMP/old.json"
verify "$TMP/a.json" "$TMP/old.json"
rejected 'another tree' "a statement against the wrong (earlier) digest is rejected"
grep -q 'another tree' "$TMP/verify.out"
ok $? "  ... as against another tree"
$PY -c "
import json,sys; d=json.load(open(sys.argv[1])); r=d['ledger_merkle']['root']
d['ledger_merkle']['root'] = ('0' if r[0] != '0' else '1') + r[1:]; json.dump(d, open(sys.argv[2], 'w'))" "$TMP/digest.json" "$TMP/wrong.json"
verify "$TMP/a.json" "$TMP/wrong.json"
rejected 'another tree' "a statement against a digest of the same size with another root is rejected"

# consistency proofs (RFC 9162 section 2.1.4): every pair of sizes of the
# tree so far, against roots and proofs recomputed independently
# (test/lib/merkle_check.py), each also tampered with
leaves() { q "SELECT encode(hash, 'hex') FROM settle.ledger_merkle_node WHERE level = 0 ORDER BY idx" >"$TMP/leaves.txt"; }
leaves
q "SELECT jsonb_agg(settle_consistency_proof(m, n)) FROM generate_series(0, $n) n, generate_series(0, n) m" >"$TMP/proofs.json"
pairs=$(( (n + 1) * (n + 2) / 2 ))
res=$($PY test/lib/merkle_check.py "$VERIFY" "$TMP/leaves.txt" "$TMP/proofs.json" | tail -1)
echo "# $res"
echo "$res" | grep -qx "proofs=$pairs roots_differ=0 proofs_differ=0 rejected_genuine=0 tampered=[0-9]* tampered_accepted=0"
ok $? "all $pairs pairs 0 <= m <= n <= $n: proofs as RFC 9162 defines them, verified; every tampered copy rejected"

# a larger tree (a round of 150 payments), random pairs
q "SELECT count(*) FROM (SELECT settle_submit('big_' || i, 1 + i % 50, 'USD', 'USD', s || '_usd', d || '_usd', d, 'kbig_' || i)
     FROM generate_series(1, 50) i, (VALUES ('st_a', 'st_b'), ('st_b', 'st_c'), ('st_c', 'st_a')) v(s, d)) x" >/dev/null \
  && q "SELECT settle_run_cycle()" >/dev/null && q "SELECT count(*) FROM settle_seal()" >/dev/null
big=$(q "SELECT settle._merkle_size()")
[ "$big" -gt 300 ]
ok $? "the tree grew to $big leaves"
leaves
q "SELECT jsonb_agg(settle_consistency_proof(m, n))
     FROM (SELECT n, (random() * n)::bigint AS m
             FROM (SELECT (1 + random() * ($big - 1))::bigint AS n FROM generate_series(1, 300)) r) x" >"$TMP/proofs.json"
res=$($PY test/lib/merkle_check.py "$VERIFY" "$TMP/leaves.txt" "$TMP/proofs.json" | tail -1)
echo "# $res"
echo "$res" | grep -qx "proofs=300 roots_differ=0 proofs_differ=0 rejected_genuine=0 tampered=[0-9]* tampered_accepted=0"
ok $? "300 random pairs up to $big leaves: proofs as RFC 9162 defines them, verified; tampered copies rejected"

# the verifier's command line: yesterday's digest, today's, the proof between
q "SELECT settle_chain_digest()" >"$TMP/digest2.json"
q "SELECT settle_consistency_proof($n, $big)" >"$TMP/cons.json"
cverify() { $PY "$VERIFY" --consistency "$@" >"$TMP/verify.out" 2>&1; }
cverify "$TMP/cons.json" "$TMP/digest.json" "$TMP/digest2.json"
ok $? "settle-verify-statement --consistency: today's tree ($big) extends the digest kept at $n" || cat "$TMP/verify.out"
qa "SELECT settle_consistency_proof($n, $big)" >"$TMP/cons_a.json"
cmp -s "$TMP/cons.json" "$TMP/cons_a.json"
ok $? "a participant's login gets the same proof"
$PY -c "
import json,sys; p=json.load(open(sys.argv[1])); x=p['proof'][0]
p['proof'][0] = ('0' if x[0] != '0' else '1') + x[1:]; json.dump(p, open(sys.argv[2], 'w'))" "$TMP/cons.json" "$TMP/cons_t.json"
cverify "$TMP/cons_t.json" "$TMP/digest.json" "$TMP/digest2.json"
rejected 'does not show that the tree of [0-9]+ leaves extends' "a proof with one hash changed is rejected, as not showing that the tree extends the old one"
cverify "$TMP/cons.json" "$TMP/digest.json" "$TMP/wrong.json"
rejected 'ends at another tree' "a proof against a new digest it was not made for is rejected"
q "SELECT settle_consistency_proof($(cat "$TMP/size1"), $big)" >"$TMP/cons1.json"
cverify "$TMP/cons1.json" "$TMP/old.json" "$TMP/digest2.json"
ok $? "the tree after the first seal ($(cat "$TMP/size1") leaves) is extended by today's too"
cverify "$TMP/cons1.json" "$TMP/wrong.json" "$TMP/digest2.json"
rejected 'starts from another tree' "an old digest whose root was rewritten is rejected (the proof starts from another tree)"
# a forged history: the old tree's first leaf replaced, its root recomputed
$PY - "$TMP/leaves.txt" "$(cat "$TMP/size1")" "$TMP/forged_old.json" <<'EOF2'
import hashlib, json, sys
L = [bytes.fromhex(x.strip()) for x in open(sys.argv[1]) if x.strip()][:int(sys.argv[2])]
L[0] = hashlib.sha256(b"forged").digest()
def mth(L):
    if len(L) == 1: return L[0]
    k = 1
    while k * 2 < len(L): k *= 2
    return hashlib.sha256(b"\x01" + mth(L[:k]) + mth(L[k:])).digest()
json.dump({"format": "settle-chain-digest/1", "ledger_merkle": {"size": len(L), "root": mth(L).hex()}},
          open(sys.argv[3], "w"))
EOF2
$PY -c "
import json,sys; p=json.load(open(sys.argv[1])); p['old'] = json.load(open(sys.argv[2]))['ledger_merkle']
json.dump(p, open(sys.argv[3], 'w'))" "$TMP/cons1.json" "$TMP/forged_old.json" "$TMP/cons_f.json"
cverify "$TMP/cons_f.json" "$TMP/forged_old.json" "$TMP/digest2.json"
rejected 'does not show that the tree of [0-9]+ leaves extends' "a history with one early leaf changed is not extended by today's tree (rejected)"
err=$(q "SELECT settle_consistency_proof($big, $n)" 2>&1 >/dev/null)
echo "$err" | grep -q 'no consistency proof from tree size'
ok $? "settle_consistency_proof(new, old) is refused" || echo "# $err"
is "$(q "SELECT count(*) FROM settle_verify()")" "0" "settle_verify() is clean, the tree's checks included"

# an entry changed in the database after it was sealed: the statement the
# operator then produces does not verify
q "BEGIN; ALTER TABLE settle.ledger_entry DISABLE TRIGGER ledger_entry_append_only;
   UPDATE settle.ledger_entry SET amount = amount - 1 WHERE entry_id = (SELECT min(entry_id) FROM settle.ledger_entry e
          JOIN settle.account a USING (account_id) WHERE a.participant_id = 'st_a' AND e.payment_id IS NOT NULL);
   ALTER TABLE settle.ledger_entry ENABLE TRIGGER ledger_entry_append_only; COMMIT" >/dev/null
q "SELECT settle_statement('st_a', now() - interval '1 hour', now() + interval '1 hour')" >"$TMP/forged.json"
verify "$TMP/forged.json" "$TMP/digest2.json"
rejected 'does not lead to the digest' "after an entry was changed in the database, the statement no longer verifies"
q "SELECT DISTINCT problem FROM settle_verify() ORDER BY 1" >"$TMP/problems"
grep -qx merkle_leaf_altered "$TMP/problems" && grep -qx merkle_root_mismatch "$TMP/problems"
ok $? "  ... and settle_verify() reports its leaf and the tree's root (merkle_leaf_altered, merkle_root_mismatch)" \
    || sed 's/^/# /' "$TMP/problems"
is "$(q "SELECT matches FROM settle_verify_digest('$(cat "$TMP/digest2.json")') WHERE chain = 'ledger_merkle'")" "f" \
   "  ... and settle_verify_digest() finds the digest's root no longer recomputes"

# the verifier itself is standard library only
# (xml.etree, datetime, decimal: reading a camt.053/camt.054, docs/ISO20022.md)
! grep -E '^import |^from [a-z_.]+ import ' "$VERIFY" \
    | grep -vqE '^import (hashlib|json|sys|xml\.etree\.ElementTree as ET)$|^from (datetime|decimal) import [A-Za-z, ]+$'
ok $? "the verifier imports nothing outside Python's standard library"

done_testing
