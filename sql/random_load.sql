-- Invariants under a random load (issue #16, "Done when"): 2,000 payments
-- per mode (direct, then two-phase with the rail confirming and failing
-- wires at random), with linked groups, short deadlines, operator returns
-- and returns of failed pay-outs in the mix.  After each mode:
--   every currency's balances sum to zero (double entry, the operator's
--   settlement and external accounts included), no customer account is
--   below its limit, nothing settled twice, every linked group settled
--   whole or not at all, settle_verify() and settle_replay() clean.
-- The solver's choices depend on its time limit, so only the invariants
-- are printed, never counts of what settled.
-- Own database.
CREATE DATABASE settle_random_load;
\c settle_random_load
CREATE EXTENSION settle;
\set VERBOSITY sqlstate
SET client_min_messages = warning;
SELECT setseed(0.16);

SELECT count(*) FROM (SELECT settle_create_participant(format('r%s', i)) FROM generate_series(1, 12) i) s;
SELECT count(*) FROM (
    SELECT settle_create_account(format('r%s_%s', i, lower(c)), format('r%s', i), c,
                                 opening_balance => floor(random() * 5000)::numeric,
                                 lower_limit => floor(random() * 1000)::numeric)
      FROM generate_series(1, 12) i, unnest(ARRAY['USD', 'EUR']) c) s;
SELECT settle_set_fx_rate('USD', 'EUR', 0.9137) IS NOT NULL AS rate;

-- One round: 250 random payments through settle_submit_bulk.  Every tenth
-- pair of rows is a linked group of two, payment versus payment: the second
-- leg is paid by the first leg's payee (a party of the group).  One payment
-- in twenty has a deadline that passes before the cycle.
CREATE FUNCTION round_payments(r integer) RETURNS jsonb LANGUAGE sql AS $$
    WITH p AS (
        SELECT i, 1 + floor(random() * 12)::int AS s, floor(random() * 11)::int AS d_off,
               (ARRAY['USD', 'EUR'])[1 + floor(random() * 2)::int] AS sc,
               (ARRAY['USD', 'EUR'])[1 + floor(random() * 2)::int] AS dc,
               round((1 + random() * 1999)::numeric, 2) AS amount, random() AS u
          FROM generate_series(1, 250) i),
    q AS (
        SELECT p.*, 1 + (p.s + p.d_off) % 12 AS d FROM p),
    -- the second row of each linked pair pays back: payer and payee swapped
    l AS (
        SELECT q.i, q.sc, q.dc, q.amount, q.u,
               CASE WHEN q.i % 10 = 2 THEN lag(q.d) OVER (ORDER BY q.i) ELSE q.s END AS s,
               CASE WHEN q.i % 10 = 2 THEN lag(q.s) OVER (ORDER BY q.i) ELSE q.d END AS d
          FROM q)
    SELECT jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
               'transaction_id', format('t%s-%s', r, l.i),
               'idempotency_key', format('k%s-%s', r, l.i),
               'amount', l.amount::text,
               'source_currency', l.sc, 'destination_currency', l.dc,
               'source_account', format('r%s_%s', l.s, lower(l.sc)),
               'destination_account', format('r%s_%s', l.d, lower(l.dc)),
               'counterparty_id', format('r%s', l.d),
               'link_group', CASE WHEN l.i % 10 IN (1, 2) THEN format('g%s-%s', r, l.i / 10) END,
               'link_size', CASE WHEN l.i % 10 IN (1, 2) THEN 2 END,
               'deadline', CASE WHEN l.u < 0.05 THEN to_jsonb(clock_timestamp() + interval '20 milliseconds') END))
           ORDER BY l.i)
      FROM l
$$;

-- An operator returns a few settled payments (a return the limit refuses is skipped).
CREATE FUNCTION return_some(n integer) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    pid bigint;
BEGIN
    FOR pid IN SELECT payment_id FROM settle.payment WHERE status = 'settled' ORDER BY random() LIMIT n LOOP
        BEGIN
            PERFORM settle_return_payment(pid, 'random recall');
        EXCEPTION WHEN SQLSTATE 'SE107' THEN
            NULL;
        END;
    END LOOP;
END
$$;

-- The rail answers every instruction: 97% of pay-ins and 80% of pay-outs
-- confirmed, the rest failed for good (a pay-in voids its cycle, a pay-out
-- returns the payments into it).
CREATE FUNCTION rail_answers(r integer) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    b record;
    more boolean := true;
    confirm boolean;
    forced_in boolean := false;
    forced_out boolean := false;
BEGIN
    WHILE more LOOP
        more := false;
        FOR b IN SELECT * FROM settle_rail_fetch(1000) LOOP
            more := true;
            BEGIN
                confirm := random() < (CASE b.direction WHEN 'pay_in' THEN 0.97 ELSE 0.8 END);
                -- and surely at least once each: from round 10 a pay-in, from
                -- round 12 a pay-out, until one has failed
                IF r >= 10 AND b.direction = 'pay_in' AND NOT forced_in
                   AND NOT EXISTS (SELECT 1 FROM settle.batch x WHERE x.status = 'voided') THEN
                    confirm := false; forced_in := true;
                ELSIF r >= 12 AND b.direction = 'pay_out' AND NOT forced_out
                   AND NOT EXISTS (SELECT 1 FROM settle.batch x WHERE x.direction = 'pay_out'
                                                                 AND x.status IN ('returned', 'failed')) THEN
                    confirm := false; forced_out := true;
                END IF;
                IF confirm THEN
                    PERFORM settle_rail_confirm(b.batch_id);
                ELSE
                    PERFORM settle_rail_fail(b.batch_id, 'random rejection', false);
                END IF;
            EXCEPTION WHEN SQLSTATE 'SE121' THEN
                -- its cycle was voided by a pay-in that failed before it
                -- (fetched in the same round): as a connector, drop it
                NULL;
            END;
        END LOOP;
    END LOOP;
END
$$;

-- The invariants, one row each.
CREATE FUNCTION invariants() RETURNS TABLE (invariant text, holds boolean) LANGUAGE sql AS $$
    SELECT 'every currency sums to zero',
           bool_and(t.total = 0) FROM (SELECT currency, sum(balance) AS total FROM settle.account GROUP BY currency) t
    UNION ALL
    SELECT 'the ledger sums to zero per currency',
           coalesce(bool_and(t.total = 0), true) FROM (SELECT currency, sum(amount) AS total FROM settle.ledger_entry GROUP BY currency) t
    UNION ALL
    SELECT 'no customer account below its limit',
           NOT EXISTS (SELECT 1 FROM settle.account WHERE kind = 'customer' AND balance - pending_debit < -lower_limit)
    UNION ALL
    SELECT 'nothing settled twice',
           NOT EXISTS (SELECT 1 FROM settle.event WHERE entity = 'payment' AND event_type = 'settled'
                        GROUP BY entity_id HAVING count(*) > 1)
    UNION ALL
    SELECT 'every settled or returned payment has one settlement',
           NOT EXISTS (SELECT 1 FROM settle.payment p
                        WHERE p.status IN ('settled', 'returned')
                          AND (SELECT count(DISTINCT e.journal_id) FROM settle.ledger_entry e
                                 JOIN settle.journal j ON j.journal_id = e.journal_id AND j.kind = 'settlement'
                                WHERE e.payment_id = p.payment_id) <> 1)
    UNION ALL
    SELECT 'linked groups settle whole or not at all, in one cycle',
           NOT EXISTS (SELECT 1 FROM settle.link_group g JOIN settle.payment_link l USING (link_group)
                         JOIN settle.payment p ON p.payment_id = l.payment_id
                        GROUP BY g.link_group, g.link_size
                       HAVING count(*) FILTER (WHERE p.status IN ('settled', 'returned', 'reserved')) NOT IN (0, g.link_size)
                           OR count(DISTINCT p.cycle_id) FILTER (WHERE p.status IN ('settled', 'returned', 'reserved')) > 1)
    UNION ALL
    SELECT 'nothing left pending', NOT EXISTS (SELECT 1 FROM settle.account WHERE pending_debit <> 0 OR pending_credit <> 0)
    UNION ALL
    SELECT 'settle_verify() is clean', NOT EXISTS (SELECT 1 FROM settle_verify())
    UNION ALL
    SELECT 'settle_replay() is clean', NOT EXISTS (SELECT 1 FROM settle_replay())
$$;

-- Direct mode: 8 rounds of 250.
DO $$
BEGIN
    FOR r IN 1 .. 8 LOOP
        PERFORM count(*) FROM settle_submit_bulk(round_payments(r));
        PERFORM pg_sleep(0.03);
        PERFORM settle_run_cycle();
        PERFORM return_some(5);
        -- each round its own transaction: deadlines pass against now()
        COMMIT;
    END LOOP;
END
$$;
SELECT * FROM invariants();
-- the mix happened: linked groups, returns, expiries
SELECT count(*) FILTER (WHERE status = 'settled') > 100 AS settled_many,
       count(*) FILTER (WHERE status = 'returned') > 0 AS returned_some,
       count(*) FILTER (WHERE status = 'expired') > 0 AS expired_some
  FROM settle.payment;
SELECT count(*) FILTER (WHERE status = 'settled') > 0 AS groups_settled FROM settle.link_groups;

-- Two-phase mode: 8 more rounds, the rail confirming or failing every wire.
SET settle.two_phase = on;
DO $$
BEGIN
    FOR r IN 9 .. 16 LOOP
        PERFORM count(*) FROM settle_submit_bulk(round_payments(r));
        PERFORM pg_sleep(0.03);
        PERFORM settle_run_cycle();
        PERFORM rail_answers(r);
        PERFORM return_some(3);
        COMMIT;
    END LOOP;
END
$$;
SELECT * FROM invariants();
SELECT count(*) FILTER (WHERE status = 'voided') > 0 AS voided_some,
       count(*) FILTER (WHERE status IN ('returned', 'failed') AND direction = 'pay_out') > 0 AS pay_outs_failed
  FROM settle.batch;

\c postgres
DROP DATABASE settle_random_load;
