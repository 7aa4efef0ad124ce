-- Liquidity prices and funding advice (issue #21, docs/ALGORITHM.md):
-- 1. a gridlocked ring that one top-up releases whole: the cycle prices the
--    ring's liquidity, the advice names the payment, the least top-up and
--    the whole ring it unlocks; after the top-up the next cycle settles it;
-- 2. against brute force (every subset of the queue) on 40 random small
--    queues: the least top-up and the weight it unlocks are the same;
-- 3. rights: a participant's login gets its own advice and prices only.
-- Own database.
CREATE DATABASE settle_funding_advice;
\c settle_funding_advice
CREATE EXTENSION settle;

------------------------------------------------------------------------
-- 1. Ring f1 -> f2 -> f3 -> f4 -> f1 of 100.00, 100.00, 100.00, 70.00 USD;
--    f1 has 10.00, the others nothing.  Nothing settles: f1 is 20.00 short
--    of paying 100.00 with the 70.00 it gets back.
------------------------------------------------------------------------
SELECT settle_create_participant(p) FROM unnest(ARRAY['f1', 'f2', 'f3', 'f4']) p;
SELECT settle_create_account('f1_usd', 'f1', 'USD', opening_balance => 10),
       settle_create_account('f2_usd', 'f2', 'USD'), settle_create_account('f3_usd', 'f3', 'USD'),
       settle_create_account('f4_usd', 'f4', 'USD');
SELECT count(*) FROM (
    SELECT settle_submit('ring_' || i, a, 'USD', 'USD', s, d, c, 'ring_k' || i)
      FROM (VALUES (1, 100, 'f1_usd', 'f2_usd', 'f2'), (2, 100, 'f2_usd', 'f3_usd', 'f3'),
                   (3, 100, 'f3_usd', 'f4_usd', 'f4'), (4, 70, 'f4_usd', 'f1_usd', 'f1')) v(i, a, s, d, c)) x;
SELECT considered, settled FROM settle_run_cycle();
-- the LP prices f1's liquidity (the others' too: each row is binding)
SELECT account_id, participant_id, currency, price > 0 AS priced, value_per_unit > 0 AS valued
  FROM settle.liquidity_price ORDER BY account_id;
SELECT account_id, available, status, top_up, top_up_minor, blocked_by_own_liquidity, blocked_by_others,
       unlocked_payments, unlocked_amount, unlocked_weight, liquidity_value_per_unit > 0 AS priced
  FROM settle_funding_advice('f1');
-- f2's liquidity: 100.00 lets f2, f3, f4 pay (the ring minus f1's payment)
SELECT account_id, top_up, blocked_by_own_liquidity, unlocked_payments, unlocked_amount
  FROM settle_funding_advice('f2');
-- one minor unit less than the advice is not enough, the advice is
SELECT settle_fund_account('f1_usd', 19.99, 'treasury top-up, one cent short');
SELECT considered, settled FROM settle_run_cycle();
SELECT top_up, unlocked_payments FROM settle_funding_advice('f1');
SELECT settle_fund_account('f1_usd', 0.01, 'the last cent');
SELECT considered, settled FROM settle_run_cycle();
SELECT account_id, status, top_up, blocked_by_own_liquidity, unlocked_payments FROM settle_funding_advice('f1');

------------------------------------------------------------------------
-- 2. Brute force: every subset of the queue (EUR, 3 to 8 payments among
--    4 accounts with random balances, limits, amounts, priorities).  The
--    least top-up of the target over the subsets that settle the most
--    weight with unlimited liquidity there, and the weight gained over the
--    most that settles without it, against the advice.
------------------------------------------------------------------------
CREATE FUNCTION brute_force(target text, OUT w_now numeric, OUT w_unlimited numeric, OUT least_topup numeric)
LANGUAGE sql AS $$
    WITH pay AS (
        SELECT (row_number() OVER (ORDER BY p.payment_id) - 1)::int AS k, p.source_account, p.destination_account,
               p.amount::numeric AS amount, p.priority * p.amount::numeric AS weight
          FROM settle.payment p WHERE p.status = 'queued' AND p.source_currency = 'EUR'),
    acc AS (
        SELECT a.account_id, (a.balance + a.lower_limit - a.pending_debit)::numeric AS avail
          FROM settle.account a
         WHERE a.account_id IN (SELECT source_account FROM pay UNION SELECT destination_account FROM pay)),
    masks AS (SELECT generate_series(0, (1 << (SELECT count(*) FROM pay)::int) - 1) AS m),
    net AS (
        SELECT m.m, acc.account_id, acc.avail,
               coalesce(sum(CASE WHEN pay.destination_account = acc.account_id THEN pay.amount ELSE -pay.amount END), 0) AS net
          FROM masks m CROSS JOIN acc
          LEFT JOIN pay ON (m.m >> pay.k) & 1 = 1
                       AND acc.account_id IN (pay.source_account, pay.destination_account)
         GROUP BY m.m, acc.account_id, acc.avail),
    subset AS (
        SELECT m.m,
               (SELECT coalesce(sum(pay.weight), 0) FROM pay WHERE (m.m >> pay.k) & 1 = 1) AS weight,
               bool_and(n.account_id = target OR n.avail + n.net >= least(0, n.avail)) AS others_ok,
               max(CASE WHEN n.account_id = target AND n.avail + n.net < least(0, n.avail)
                        THEN -(n.avail + n.net) ELSE 0 END) AS need
          FROM masks m JOIN net n ON n.m = m.m GROUP BY m.m)
    SELECT (SELECT max(weight) FROM subset WHERE others_ok AND need = 0),
           (SELECT max(weight) FROM subset WHERE others_ok),
           (SELECT min(need) FROM subset WHERE others_ok AND weight = (SELECT max(weight) FROM subset WHERE others_ok))
$$;
CREATE TABLE comparison (instance int, payments int, topup_advice bigint, topup_brute numeric,
                         unlocked_advice numeric, unlocked_brute numeric);
DO $$
DECLARE
    inst int;
    np int;
    i int;
    s int;
    d int;
    accs text[];
    adv record;
    bf record;
BEGIN
    PERFORM setseed(0.21);
    FOR inst IN 1..40 LOOP
        -- the previous instance's queue goes
        PERFORM settle_cancel_payment(p.payment_id, 'next instance')
           FROM settle.payment p WHERE p.status = 'queued';
        accs := '{}';
        FOR i IN 1..4 LOOP
            PERFORM settle_create_participant(format('bf%s_%s', inst, i));
            PERFORM settle_create_account(format('bf%s_%s_eur', inst, i), format('bf%s_%s', inst, i), 'EUR',
                                          lower_limit => (floor(random() * 3) * 10)::numeric,
                                          opening_balance => (floor(random() * 6) * 20)::numeric);
            accs := accs || format('bf%s_%s_eur', inst, i);
        END LOOP;
        np := 3 + floor(random() * 6)::int;
        FOR i IN 1..np LOOP
            s := 1 + floor(random() * 4)::int;
            d := 1 + (s + floor(random() * 3)::int) % 4;
            PERFORM settle_submit(format('bf%s_t%s', inst, i), (10 + floor(random() * 100))::numeric, 'EUR', 'EUR',
                                  accs[s], accs[d], format('bf%s_%s', inst, d), format('bf%s_k%s', inst, i),
                                  priority => 1 + floor(random() * 9)::int);
        END LOOP;
        SELECT * INTO adv FROM settle_funding_advice(format('bf%s_1', inst));
        SELECT * INTO bf FROM brute_force(accs[1]);
        INSERT INTO comparison VALUES (inst, np, adv.top_up_minor, bf.least_topup,
                                       adv.unlocked_weight, round((bf.w_unlimited - bf.w_now) / 5) / 100);
    END LOOP;
END
$$;
SELECT count(*) AS instances, sum(payments) AS payments,
       count(*) FILTER (WHERE topup_advice > 0) AS needing_a_topup,
       count(*) FILTER (WHERE topup_advice IS DISTINCT FROM topup_brute) AS topup_differs,
       count(*) FILTER (WHERE unlocked_advice IS DISTINCT FROM unlocked_brute) AS unlocked_differs
  FROM comparison;
SELECT * FROM comparison WHERE topup_advice IS DISTINCT FROM topup_brute OR unlocked_advice IS DISTINCT FROM unlocked_brute;

------------------------------------------------------------------------
-- 3. Rights: f2's login gets f2's advice and f2's prices; f1's advice is
--    refused as if f1 did not exist; an unmapped login is refused.
------------------------------------------------------------------------
CREATE ROLE fa_login_f2;
CREATE ROLE fa_unmapped;
SELECT settle_map_role('fa_login_f2', 'f2');
GRANT settle_submitter TO fa_unmapped;
SET ROLE fa_login_f2;
SELECT account_id, status FROM settle_funding_advice('f2');
SELECT DISTINCT participant_id FROM settle.liquidity_price;
SELECT * FROM settle_funding_advice('f1');
RESET ROLE;
SET ROLE fa_unmapped;
SELECT * FROM settle_funding_advice('f2');
RESET ROLE;
\c contrib_regression
DROP DATABASE settle_funding_advice;
DROP ROLE fa_login_f2;
DROP ROLE fa_unmapped;
