#!/bin/bash
# Logical backups (docs/OPERATIONS.md, "Backup and restore"): a database with
# settle is dumped with pg_dump in the custom and the plain format and
# restored into another cluster (roles first, from pg_dumpall --globals-only).
# Both restores exit 0, and every table of settle equals the original row for
# row, every sequence is where it was, the chain heads match a digest taken
# before the dump, settle_verify() is clean, the cycle totals are not counted
# twice, the publication comes back once, the participants' logins work again
# after settle_remap_roles(), the copy is fenced until settle_release_copy(),
# and the restored database goes on: new ids after
# the old ones, a new cycle, a new seal that continues the chains.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/scratch.sh
. test/lib/tap.sh

scratch backup 777
scratch_ports P1 55520 P2 55521
scratch_cluster "$TMP/a" "$TMP/b"
for c in a b; do
    port=$([ $c = a ] && echo "$P1" || echo "$P2")
    cluster_init "$TMP/$c" "$port" "settle.worker_enabled = off" || exit 1
    cluster_start "$TMP/$c" || exit 1
done
qa() { cluster_psql "$P1" -d bank -At -c "$1"; }
qb() { local db=$1; shift; cluster_psql "$P2" -d "$db" -At -c "$1"; }

# --- the original: every kind of row settle writes -----------------------------------
cluster_psql "$P1" -d postgres -c "CREATE DATABASE bank" >/dev/null
qa "CREATE EXTENSION settle" >/dev/null
qa "CREATE ROLE bk_login_a LOGIN; CREATE ROLE bk_ops LOGIN IN ROLE settle_operator" >/dev/null
qa "SELECT settle_create_participant(p) FROM unnest(ARRAY['bk_a','bk_b','bk_c']) p" >/dev/null
qa "SELECT settle_create_account(p || '_usd', p, 'USD', lower_limit => 50, opening_balance => 100000) FROM unnest(ARRAY['bk_a','bk_b','bk_c']) p" >/dev/null
qa "SELECT settle_create_account(p || '_eur', p, 'EUR', opening_balance => 100000) FROM unnest(ARRAY['bk_a','bk_b','bk_c']) p" >/dev/null
qa "SELECT settle_fund_account('bk_a_usd', 250.50, 'WIRE-REF-1')" >/dev/null
qa "SELECT settle_set_fx_rate('EUR', 'USD', 1.0835, 4); SELECT settle_set_wire_fee('USD', 2.5); SELECT settle_set_wire_fee('EUR', 1.75, 'bk_b')" >/dev/null
qa "SELECT settle_map_role('bk_login_a', 'bk_a')" >/dev/null
qa "SELECT count(*) FROM (SELECT settle_submit('t' || i, 10 + i, 'USD', CASE WHEN i % 3 = 0 THEN 'EUR' ELSE 'USD' END,
        'bk_' || chr(97 + i % 3) || '_usd', 'bk_' || chr(97 + (i + 1) % 3) || CASE WHEN i % 3 = 0 THEN '_eur' ELSE '_usd' END,
        'bk_' || chr(97 + (i + 1) % 3), 'k' || i) FROM generate_series(1, 30) i) s" >/dev/null
qa "SELECT settled FROM settle_run_cycle()" >/dev/null
# two-phase: a cycle whose pay-ins are confirmed, one whose pay-in is pending
qa "ALTER DATABASE bank SET settle.two_phase = on" >/dev/null
qa "SELECT count(*) FROM (SELECT settle_submit('u' || i, 5, 'USD', 'USD', 'bk_a_usd', 'bk_b_usd', 'bk_b', 'uk' || i) FROM generate_series(1, 5) i) s" >/dev/null
qa "SELECT settled FROM settle_run_cycle()" >/dev/null
for b in $(qa "SELECT batch_id FROM settle_rail_fetch(10)"); do qa "SELECT settle_rail_confirm($b, 'R$b')" >/dev/null; done
for b in $(qa "SELECT batch_id FROM settle_rail_fetch(10)"); do qa "SELECT settle_rail_confirm($b, 'R$b')" >/dev/null; done
qa "SELECT settle_submit('w1', 7, 'USD', 'USD', 'bk_c_usd', 'bk_a_usd', 'bk_a', 'wk1')" >/dev/null
qa "SELECT settled FROM settle_run_cycle()" >/dev/null
qa "SELECT settle_end_of_day(current_date)" >/dev/null
qa "SELECT settle_create_publication()" >/dev/null
qa "SELECT count(*) FROM settle_seal()" >/dev/null
# written after the last seal: restored unsealed, to be sealed in the new cluster
qa "SELECT settle_submit('v1', 3, 'USD', 'USD', 'bk_b_usd', 'bk_c_usd', 'bk_c', 'vk1')" >/dev/null
digest=$(qa "SELECT settle._chain_digest()")
is "$(qa "SELECT count(*) FROM settle_verify(seal => false)")" "0" "the original verifies clean"
is "$(qa "SELECT count(*) > 0 FROM settle.reservation") $(qa "SELECT count(*) > 0 FROM settle.balance_snapshot") $(qa "SELECT count(DISTINCT status) >= 3 FROM settle.batch")" \
   "t t t" "it holds reservations, snapshots and batches in several rail states"

# table contents, order-independent, and sequence positions
TABLES=$(qa "SELECT string_agg(c.relname, ' ' ORDER BY c.relname) FROM pg_class c
              WHERE c.relnamespace = 'settle'::regnamespace AND c.relkind = 'r'")
fingerprint() {
    local q=$1 t out=""
    for t in $TABLES; do
        # the operator participant is created by CREATE EXTENSION, with its own time;
        # so is the copy's own row in settle.origin, beside the original's
        out="$out $t:$($q "SELECT count(*) || '/' || md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), ''))
                           FROM settle.$t x $([ "$t" = participant ] && echo 'WHERE NOT is_operator')
                           $([ "$t" = origin ] && echo "WHERE database_name = 'bank'")")"
    done
    echo "$out"
}
sequences() { $1 "SELECT string_agg(sequencename || '=' || coalesce(last_value, 0), ' ' ORDER BY sequencename) FROM pg_sequences WHERE schemaname = 'settle'"; }
FP_A=$(fingerprint qa)
MAX_A=$(qa "SELECT max(payment_id) FROM settle.payment")
SEQ_A=$(sequences qa)

# --- dump, both formats; roles first on the other cluster ---------------------------
as_pg pg_dump -h 127.0.0.1 -p "$P1" -U postgres -Fc -f "$TMP/bank.dump" bank
ok $? "pg_dump -Fc"
as_pg pg_dump -h 127.0.0.1 -p "$P1" -U postgres -Fp -f "$TMP/bank.sql" bank
ok $? "pg_dump -Fp"
as_pg pg_dumpall -h 127.0.0.1 -p "$P1" -U postgres --globals-only -f "$TMP/globals.sql"
# (the bootstrap superuser exists already on the other cluster: that line fails harmlessly)
psql -X -q -h 127.0.0.1 -p "$P2" -U postgres -d postgres -f "$TMP/globals.sql" >"$TMP/globals.log" 2>&1
is "$(cluster_psql "$P2" -d postgres -At -c "SELECT count(*) FROM pg_auth_members a JOIN pg_roles r ON r.oid = a.roleid
                                          JOIN pg_roles m ON m.oid = a.member WHERE r.rolname LIKE 'settle\_%' AND m.rolname LIKE 'bk\_%'")" "2" \
   "the roles and their settle memberships are on the other cluster (pg_dumpall --globals-only)"
grep ERROR "$TMP/globals.log" | grep -v "already exists" | sed 's/^/#   /'
cluster_psql "$P2" -d postgres -c "CREATE DATABASE r_custom" -c "CREATE DATABASE r_plain" >/dev/null

as_pg pg_restore -h 127.0.0.1 -p "$P2" -U postgres -d r_custom "$TMP/bank.dump" >"$TMP/restore.log" 2>&1
ok $? "pg_restore of the custom dump exits 0"
sed 's/^/#   /' "$TMP/restore.log" | head -10
cluster_psql "$P2" -d r_plain -v ON_ERROR_STOP=1 -f "$TMP/bank.sql" >"$TMP/plain.log" 2>&1
ok $? "psql -f of the plain dump exits 0 (ON_ERROR_STOP)"
grep ERROR "$TMP/plain.log" | head -5 | sed 's/^/#   /'

for db in r_custom r_plain; do
    q() { qb "$db" "$1"; }
    is "$(fingerprint q)" "$FP_A" "$db: every settle table equals the original, row for row"
    is "$(sequences q)" "$SEQ_A" "$db: every sequence is where it was"
    is "$(q "SELECT string_agg(chain || '=' || matches::text, ',') FROM settle_verify_digest('$digest')")" \
       "ledger_entry=true,event=true,ledger_merkle=true" \
       "$db: both chain heads and the statement tree's root match the digest taken before the dump"
    is "$(q "SELECT count(*) FROM settle_verify(seal => false)")" "0" "$db: settle_verify() is clean"
    is "$(q "SELECT count(*) FROM pg_publication WHERE pubname = 'settle_events'")" "1" "$db: the publication is back, once"
    is "$(q "SELECT sum(cycles) || ' ' || sum(settled) FROM settle.cycle_total")" \
       "$(qa "SELECT sum(cycles) || ' ' || sum(settled) FROM settle.cycle_total")" "$db: cycle totals rebuilt, not counted twice"
    # a copy: fenced until released (issue #29)
    is "$(q "SELECT fenced FROM settle_fence_state()")" "t" "$db: the restored copy is fenced"
    q "SELECT reason FROM settle_fence_state()" | grep -q 'is a copy of the ledger created in database "bank"'
    ok $? "$db: settle_fence_state() says it is a copy of bank's ledger"
    is "$(q "SELECT fenced FROM settle_release_copy('restored into a new cluster on purpose')")" "f" "$db: released by an operator"
    # the restored database goes on
    is "$(q "SELECT count(*) FROM settle_remap_roles()")" "1" "$db: settle_remap_roles() maps the login's new OID"
    is "$(cluster_psql "$P2" -d "$db" -At -c "SET ROLE bk_login_a" -c "SELECT payment_id > $MAX_A FROM settle_submit('n1', 1, 'USD', 'USD', 'bk_a_usd', 'bk_b_usd', 'bk_b', 'nk1')")" \
       "t" "$db: the participant's login submits again; the new payment id follows the old ones ($MAX_A)"
    is "$(cluster_psql "$P2" -d "$db" -At -c "SET ROLE bk_login_a" -c "SELECT replay FROM settle_submit('t1', 11, 'USD', 'USD', 'bk_b_usd', 'bk_c_usd', 'bk_c', 'k1')" 2>&1 | grep ERROR)" \
       "ERROR:  source_account \"bk_b_usd\" is not an account of participant \"bk_a\"" "$db: and is still held to its own accounts"
    is "$(q "SELECT replay FROM settle_submit('t1', 11, 'USD', 'USD', 'bk_b_usd', 'bk_c_usd', 'bk_c', 'k1')")" "t" \
       "$db: a retry of a payment from before the dump is a replay"
    q "SET settle.two_phase = off; SELECT settled FROM settle_run_cycle()" >/dev/null
    is "$(q "SELECT count(*) FROM settle_verify()")" "0" "$db: a new cycle and a new seal (continuing the chains) verify clean"
    is "$(q "SELECT count(*) FROM settle.event e WHERE NOT EXISTS (SELECT 1 FROM settle.event_seal s WHERE s.event_id = e.event_id)")" "0" \
       "$db: every event is sealed, those written after the original's last seal too"
done
done_testing
