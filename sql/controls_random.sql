-- The controls' invariants over random loads (issue #33): after every
-- cycle, with random bilateral and multilateral limits, reservations and
-- priorities,
--   limits: no participant's net outflow today exceeds a limit of its;
--   reservations: in each cycle, the payments below a reservation's
--     priority left the account at or above its reserve (counting the
--     cycle's credits), or no lower than where it started below it;
--   maximal: no queued payment could be added without breaking its
--     payer's account limit, its payer's limit towards the payee, or its
--     payer's reservation (checked here in SQL from the state after the
--     cycle): a payment a control holds back holds back no other;
--   the controls bind: some payments wait only because of a control.
-- One currency, no deadlines (every payment is due and settles when it
-- fits), no fees.  Only the invariants are printed.  Own database.
CREATE DATABASE settle_controls_random;
\c settle_controls_random
CREATE EXTENSION settle;
\set VERBOSITY sqlstate
SET client_min_messages = warning;
SELECT setseed(0.33);
SELECT count(*) FROM (SELECT settle_create_participant(format('r%s', i)) FROM generate_series(1, 6) i) s;
SELECT count(*) FROM (
    SELECT settle_create_account(format('r%s_usd', i), format('r%s', i), 'USD',
                                 opening_balance => floor(random() * 1500)::numeric,
                                 lower_limit => floor(random() * 300)::numeric)
      FROM generate_series(1, 6) i) s;
-- bilateral limits on about a third of the ordered pairs, multilateral ones for r1..r3
SELECT count(*) FROM (
    SELECT settle_set_bilateral_limit(format('r%s', i), format('r%s', j), 'USD', floor(random() * 600)::numeric)
      FROM generate_series(1, 6) i, generate_series(1, 6) j WHERE i <> j AND random() < 0.35) s;
SELECT count(*) FROM (
    SELECT settle_set_multilateral_limit(format('r%s', i), 'USD', (300 + floor(random() * 900))::numeric)
      FROM generate_series(1, 3) i) s;
-- reservations on the even participants' accounts
SELECT count(*) FROM (
    SELECT settle_set_reservation(format('r%s_usd', i), (100 + floor(random() * 500))::numeric,
                                  5 + floor(random() * 4)::int)
      FROM generate_series(2, 6, 2) i) s;

-- Minor units: each limit's headroom; each account's available and reserve.
CREATE VIEW headroom AS
    SELECT x.participant_id, x.counterparty_id, x.amount - x.used AS h
      FROM settle._limit_positions(settle._settlement_day_start()) x;
CREATE VIEW avail AS
    SELECT a.account_id, a.participant_id, a.balance + a.lower_limit - a.pending_debit AS v,
           r.amount AS reserve, r.min_priority
      FROM settle.account a
      LEFT JOIN settle.liquidity_reservation r ON r.account_id = a.account_id
     WHERE a.kind = 'customer';

-- The limit row a payment from p to q counts against, for p.
CREATE FUNCTION out_row(p text, q text) RETURNS bigint LANGUAGE sql AS $$
    SELECT coalesce((SELECT h FROM headroom WHERE participant_id = p AND counterparty_id = q),
                    (SELECT h FROM headroom WHERE participant_id = p AND counterparty_id IS NULL
                        AND NOT EXISTS (SELECT 1 FROM headroom WHERE participant_id = p AND counterparty_id = q)))
$$;

-- Queued payments that would still fit everywhere after the cycle.
CREATE FUNCTION addable() RETURNS SETOF bigint LANGUAGE sql AS $$
    SELECT p.payment_id
      FROM settle.payment p
      JOIN avail a ON a.account_id = p.source_account
     WHERE p.status = 'queued'
       AND a.v - p.amount >= least(0, a.v)
       AND (out_row(p.source_participant, p.counterparty_id) IS NULL
            OR out_row(p.source_participant, p.counterparty_id) - p.amount
               >= least(0, out_row(p.source_participant, p.counterparty_id)))
       AND (a.reserve IS NULL OR p.priority >= a.min_priority
            OR a.v - a.reserve - p.amount >= least(0, a.v - a.reserve))
$$;

-- Queued payments that fit their payer's account (and its reservation)
-- but not a limit: waiting only because of a limit.
CREATE FUNCTION held_by_limit() RETURNS bigint LANGUAGE sql AS $$
    SELECT count(*) FROM settle.payment p JOIN avail a ON a.account_id = p.source_account
     WHERE p.status = 'queued' AND a.v - p.amount >= least(0, a.v)
       AND (a.reserve IS NULL OR p.priority >= a.min_priority OR a.v - a.reserve - p.amount >= least(0, a.v - a.reserve))
       AND out_row(p.source_participant, p.counterparty_id) - p.amount < least(0, out_row(p.source_participant, p.counterparty_id))
$$;

-- Reservations broken by a cycle: start of cycle A0 = after - net of the
-- cycle; low-priority debits D, all credits C: A0 - R + C - D >= least(0, A0 - R).
CREATE FUNCTION reservations_broken(c bigint) RETURNS bigint LANGUAGE sql AS $$
    WITH f AS (
        SELECT a.account_id, a.v, a.reserve, a.min_priority,
               coalesce(sum(p.amount) FILTER (WHERE p.destination_account = a.account_id), 0) AS cr,
               coalesce(sum(p.amount) FILTER (WHERE p.source_account = a.account_id), 0) AS dr,
               coalesce(sum(p.amount) FILTER (WHERE p.source_account = a.account_id AND p.priority < a.min_priority), 0) AS dlo
          FROM avail a LEFT JOIN settle.payment p
            ON p.cycle_id = c AND a.account_id IN (p.source_account, p.destination_account)
         WHERE a.reserve IS NOT NULL
         GROUP BY a.account_id, a.v, a.reserve, a.min_priority)
    SELECT count(*) FROM f
     WHERE (f.v - f.cr + f.dr) - f.reserve + f.cr - f.dlo < least(0, (f.v - f.cr + f.dr) - f.reserve)
$$;

CREATE FUNCTION round_payments(r integer) RETURNS jsonb LANGUAGE sql AS $$
    WITH pick AS (
        SELECT k, 1 + floor(random() * 6)::int AS a, 1 + floor(random() * 5)::int AS off,
               round((1 + random() * 299)::numeric, 2) AS amount, 1 + floor(random() * 9)::int AS prio
          FROM generate_series(1, 40) k)
    SELECT jsonb_agg(jsonb_build_object(
        'transaction_id', format('t%s-%s', r, k), 'idempotency_key', format('t%s-%s', r, k),
        'amount', amount::text, 'source_currency', 'USD', 'destination_currency', 'USD',
        'source_account', format('r%s_usd', a), 'destination_account', format('r%s_usd', 1 + (a - 1 + off) % 6),
        'counterparty_id', format('r%s', 1 + (a - 1 + off) % 6), 'priority', prio) ORDER BY k)
      FROM pick
$$;

CREATE TABLE rounds (r integer, settled boolean, limits_kept boolean, reservations_kept boolean,
                     maximal boolean, held_by_limit bigint);
DO $$
DECLARE
    c bigint;
    n integer;
BEGIN
    FOR r IN 1 .. 8 LOOP
        SELECT count(*) INTO n FROM settle_submit_bulk(round_payments(r)) WHERE sqlstate IS NULL;
        SELECT cycle_id INTO c FROM settle_run_cycle();
        INSERT INTO rounds
        SELECT r, EXISTS (SELECT 1 FROM settle.payment p WHERE p.cycle_id = c),
               NOT EXISTS (SELECT 1 FROM headroom WHERE h < 0),
               reservations_broken(c) = 0,
               NOT EXISTS (SELECT 1 FROM addable()),
               held_by_limit();
    END LOOP;
END $$;
SELECT r, settled, limits_kept, reservations_kept, maximal FROM rounds ORDER BY r;
-- the controls bind: payments waited only for a limit
SELECT sum(held_by_limit) > 0 AS limits_bind FROM rounds;
SELECT count(*) > 0 AS some_settled, count(*) FILTER (WHERE status = 'queued') > 0 AS some_wait
  FROM settle.payment;
SELECT problem, entity, entity_id FROM settle_verify();

\c contrib_regression
DROP DATABASE settle_controls_random;
