#!/bin/bash
# search_path hijack (docs/SECURITY.md): a role that may create objects in
# public (in PostgreSQL 15 a non-superuser database owner may) and owns a
# schema named after the worker's role plants functions and operators that
# outbid pg_catalog's for the SQL settle runs (nextval(text) against
# nextval(regclass) with an unknown literal, exact-type operators against
# ones that need a cast, unnest(text[]) against unnest(anyarray), functions
# named like types).  Each trap records who ran it and tries to make its
# planter a superuser.  Then the worker cycles (two-phase) and seals, an
# operator runs a cycle, the rail functions run, a submitter submits, an
# auditor verifies and replays: no trap may ever run, and the planter stays
# unprivileged.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/scratch.sh
. test/lib/tap.sh

scratch planted
scratch_ports P1 55500
scratch_cluster "$TMP/db"
cluster_init "$TMP/db" "$P1" "settle.cycle_interval = 200ms" "settle.database = postgres" "settle.two_phase = on" || exit 1
cluster_start "$TMP/db" || exit 1
Q_PORT=$P1    # q SQL: test/lib/cluster.sh
qas() { local who=$1; shift; psql -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$P1" -U "$who" -d postgres -c "$1"; }

q "CREATE EXTENSION settle" >/dev/null
q "CREATE ROLE planter LOGIN; CREATE ROLE pl_sub LOGIN; CREATE ROLE pl_ops LOGIN IN ROLE settle_operator;
   CREATE ROLE pl_audit LOGIN IN ROLE settle_auditor;
   GRANT CREATE ON SCHEMA public TO planter; CREATE SCHEMA postgres AUTHORIZATION planter" >/dev/null
q "SELECT settle_create_participant(p) FROM unnest(ARRAY['pl_a','pl_b','pl_c']) p" >/dev/null
q "SELECT settle_create_account(p || '_usd', p, 'USD', opening_balance => 1000) FROM unnest(ARRAY['pl_a','pl_b','pl_c']) p" >/dev/null
q "SELECT settle_create_account(p || '_eur', p, 'EUR', opening_balance => 1000) FROM unnest(ARRAY['pl_a','pl_b','pl_c']) p" >/dev/null
q "SELECT settle_set_fx_rate('EUR', 'USD', 1.1, 5)" >/dev/null
q "SELECT settle_map_role('pl_sub', 'pl_a')" >/dev/null

# the traps, planted by planter in public and in the schema "postgres"
cat >"$TMP/traps.sql" <<'SQL'
CREATE TABLE public.trap_log (trap text, run_by name, superuser boolean, at timestamptz DEFAULT clock_timestamp());
GRANT INSERT ON public.trap_log TO PUBLIC;
CREATE FUNCTION public.trap(what text) RETURNS void LANGUAGE plpgsql AS $f$
BEGIN
    INSERT INTO public.trap_log (trap, run_by, superuser)
    VALUES (what, current_user, (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user));
    BEGIN
        EXECUTE 'ALTER ROLE planter SUPERUSER';
    EXCEPTION WHEN OTHERS THEN NULL;
    END;
END
$f$;
GRANT EXECUTE ON FUNCTION public.trap(text) TO PUBLIC;
SQL
for s in public postgres; do cat >>"$TMP/traps.sql" <<SQL
CREATE FUNCTION $s.nextval(text) RETURNS bigint LANGUAGE plpgsql AS \$f\$
BEGIN PERFORM public.trap('$s.nextval(text)'); RETURN pg_catalog.nextval(\$1::pg_catalog.regclass); END \$f\$;
CREATE FUNCTION $s.unnest(text[]) RETURNS SETOF text LANGUAGE plpgsql AS \$f\$
BEGIN PERFORM public.trap('$s.unnest(text[])'); RETURN QUERY SELECT pg_catalog.unnest(\$1); END \$f\$;
CREATE FUNCTION $s.unnest(bigint[]) RETURNS SETOF bigint LANGUAGE plpgsql AS \$f\$
BEGIN PERFORM public.trap('$s.unnest(bigint[])'); RETURN QUERY SELECT pg_catalog.unnest(\$1); END \$f\$;
CREATE FUNCTION $s.trap_mul(bigint, numeric) RETURNS numeric LANGUAGE plpgsql AS \$f\$
BEGIN PERFORM public.trap('$s.*(bigint,numeric)'); RETURN \$1::numeric OPERATOR(pg_catalog.*) \$2; END \$f\$;
CREATE OPERATOR $s.* (LEFTARG = bigint, RIGHTARG = numeric, FUNCTION = $s.trap_mul);
CREATE FUNCTION $s.trap_pow(numeric, smallint) RETURNS numeric LANGUAGE plpgsql AS \$f\$
BEGIN PERFORM public.trap('$s.^(numeric,smallint)'); RETURN \$1 OPERATOR(pg_catalog.^) \$2::numeric; END \$f\$;
CREATE OPERATOR $s.^ (LEFTARG = numeric, RIGHTARG = smallint, FUNCTION = $s.trap_pow);
CREATE FUNCTION $s.trap_div(integer, numeric) RETURNS numeric LANGUAGE plpgsql AS \$f\$
BEGIN PERFORM public.trap('$s./(integer,numeric)'); RETURN \$1::numeric OPERATOR(pg_catalog./) \$2; END \$f\$;
CREATE OPERATOR $s./ (LEFTARG = integer, RIGHTARG = numeric, FUNCTION = $s.trap_div);
CREATE FUNCTION $s.trap_eq(text, character varying) RETURNS boolean LANGUAGE plpgsql AS \$f\$
BEGIN PERFORM public.trap('$s.=(text,varchar)'); RETURN \$1 OPERATOR(pg_catalog.=) \$2::text; END \$f\$;
CREATE OPERATOR $s.= (LEFTARG = text, RIGHTARG = character varying, FUNCTION = $s.trap_eq);
CREATE FUNCTION $s.numeric(double precision) RETURNS numeric LANGUAGE plpgsql AS \$f\$
BEGIN PERFORM public.trap('$s.numeric(float8)'); RETURN \$1::numeric; END \$f\$;
CREATE FUNCTION $s.int8(numeric) RETURNS bigint LANGUAGE plpgsql AS \$f\$
BEGIN PERFORM public.trap('$s.int8(numeric)'); RETURN \$1::bigint; END \$f\$;
CREATE FUNCTION $s.jsonb_build_object(text, integer, text, integer, text, integer, text, text) RETURNS jsonb LANGUAGE plpgsql AS \$f\$
BEGIN PERFORM public.trap('$s.jsonb_build_object'); RETURN '{}'::jsonb; END \$f\$;
CREATE FUNCTION $s.pg_advisory_xact_lock(integer) RETURNS void LANGUAGE plpgsql AS \$f\$
BEGIN PERFORM public.trap('$s.pg_advisory_xact_lock(integer)'); END \$f\$;
CREATE FUNCTION $s.quote_ident(name) RETURNS text LANGUAGE plpgsql AS \$f\$
BEGIN PERFORM public.trap('$s.quote_ident(name)'); RETURN pg_catalog.quote_ident(\$1::text); END \$f\$;
CREATE FUNCTION $s.settle_seal(integer DEFAULT 0) RETURNS void LANGUAGE plpgsql AS \$f\$
BEGIN PERFORM public.trap('$s.settle_seal(integer)'); END \$f\$;
SQL
done
qas planter "$(cat "$TMP/traps.sql")" >/dev/null
ok $? "planter (no superuser; CREATE on public, owner of schema postgres) plants the traps"
# the traps are live: an ordinary query with the default search_path calls one
q "SELECT nextval('settle.batch_id_seq') > 0; DELETE FROM public.trap_log" >/dev/null
is "$(q "SELECT rolsuper FROM pg_roles WHERE rolname = 'planter'")" "t" \
   "the traps work: a superuser session with the default search_path runs one and makes planter a superuser"
q "ALTER ROLE planter NOSUPERUSER" >/dev/null

# 1. the worker: two-phase cycles (FX and not) and seals
qas pl_sub "SELECT count(*) FROM (SELECT settle_submit('pl_t' || i, 10 + i, 'USD', 'USD', 'pl_a_usd', 'pl_b_usd', 'pl_b', 'pl_k' || i) FROM generate_series(1, 5) i) s" >/dev/null
ok $? "a submitter submits (settle_submit)"
qas pl_sub "SELECT count(*) FROM settle_submit_bulk('[{\"transaction_id\": \"pl_fx\", \"amount\": \"10.00\", \"source_currency\": \"USD\", \"destination_currency\": \"EUR\", \"source_account\": \"pl_a_usd\", \"destination_account\": \"pl_c_eur\", \"counterparty_id\": \"pl_c\", \"idempotency_key\": \"pl_kfx\"}, {\"transaction_id\": \"pl_t1\", \"amount\": \"11\", \"source_currency\": \"USD\", \"destination_currency\": \"USD\", \"source_account\": \"pl_a_usd\", \"destination_account\": \"pl_b_usd\", \"counterparty_id\": \"pl_b\", \"idempotency_key\": \"pl_k1\"}]')" >/dev/null
ok $? "and in bulk (with an FX payment and a replay)"
reserved() { [ "$(q "SELECT count(*) FROM settle.payment WHERE status = 'queued'")" = 0 ] && [ "$(q "SELECT count(*) FROM settle.batch")" -gt 0 ]; }
wait_for 20 reserved
ok $? "the worker reserves every payment in two-phase cycles"
sealed() { [ "$(q "SELECT count(*) FROM settle.event e WHERE NOT EXISTS (SELECT 1 FROM settle.event_seal s WHERE s.event_id = e.event_id)")" = 0 ]; }
wait_for 20 sealed
ok $? "the worker seals what the cycles wrote"

# 2. the rail, as an operator: fetch and confirm until every batch is confirmed
for _ in 1 2 3 4; do
    for b in $(qas pl_ops "SELECT batch_id FROM settle_rail_fetch(100)"); do
        qas pl_ops "SELECT settle_rail_confirm($b, 'R-$b')" >/dev/null
    done
done
is "$(q "SELECT count(*) FILTER (WHERE status <> 'confirmed') || ' of ' || count(*) FROM settle.batch")" \
   "0 of $(q "SELECT count(*) FROM settle.batch")" "an operator fetches and confirms every batch through the rail functions"
is "$(q "SELECT count(*) FROM settle.payment WHERE status = 'settled'")" "6" "every payment is settled"
# 3. an operator's manual cycle, the expiry job, end of day; the worker cycles again
qas pl_sub "SELECT count(*) FROM settle_submit('pl_t9', 9, 'USD', 'USD', 'pl_a_usd', 'pl_b_usd', 'pl_b', 'pl_k9')" >/dev/null
qas pl_ops "SELECT count(*) FROM settle_run_cycle()" >/dev/null
ok $? "an operator runs a cycle by hand"
qas pl_ops "SELECT settle_rail_expire()" >/dev/null
ok $? "and the rail time-out job"
# 4. an auditor verifies and replays
is "$(qas pl_audit "SELECT count(*) FROM settle_verify()")" "0" "an auditor's settle_verify() finds nothing wrong"
is "$(qas pl_audit "SELECT count(*) FROM settle_replay()")" "0" "and settle_replay() finds no difference"
sleep 1

is "$(q "SELECT count(*) FROM public.trap_log")" "0" "no trap ran: not in the worker, a cycle, a seal, intake, the rail functions or the audit"
q "SELECT trap, run_by, superuser FROM public.trap_log ORDER BY at LIMIT 10" | sed 's/^/#   ran: /'
is "$(q "SELECT rolsuper FROM pg_roles WHERE rolname = 'planter'")" "f" "planter is still not a superuser"
done_testing
