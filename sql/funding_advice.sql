-- Liquidity prices and funding advice (issue #21, docs/ALGORITHM.md):
-- 1. a gridlocked ring that one top-up releases whole: the cycle prices the
--    ring's liquidity, the advice names the payment, the least top-up and
--    the whole ring it unlocks; after the top-up the next cycle settles it;
-- 2. against brute force (every subset of the queue) on 40 random small
--    queues: the least top-up and the weight it unlocks are the same;
-- 2b. across currencies (issue #29): a USD -> EUR -> GBP -> USD ring, funded
--    one cent short and then exactly; wire fees in the objective;
-- 2c. against brute force on 40 random queues in three currencies with wire
--    fees and FX spreads;
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
-- 2b. Across currencies (issue #29, item 5): rates EUR->USD 1.25 (40 bps),
--     GBP->EUR 1.6 (25 bps), GBP->USD 2.0 (60 bps); no wire fees yet.  A
--     ring x1 (USD) -> x2 (EUR) -> x3 (GBP) -> x1 (USD): x1 pays 100.00 USD
--     (credits 80.00 EUR), x2 pays 80.00 EUR (50.00 GBP), x3 pays 40.00 GBP
--     (80.00 USD).  x1 has 5.00: it is 15.00 USD short (100.00 out, 80.00
--     back).  A one-currency advice sees none of it.
------------------------------------------------------------------------
SELECT count(*) FROM (SELECT settle_cancel_payment(p.payment_id, 'section 2b') FROM settle.payment p WHERE p.status = 'queued') x;
SELECT count(*) FROM (VALUES (settle_set_fx_rate('EUR', 'USD', 1.25, 40)), (settle_set_fx_rate('GBP', 'EUR', 1.6, 25)),
                           (settle_set_fx_rate('GBP', 'USD', 2.0, 60))) r;
-- payments by transaction id
CREATE FUNCTION tx(ids bigint[]) RETURNS text[] LANGUAGE sql AS $$
    SELECT coalesce(array_agg(p.transaction_id ORDER BY p.transaction_id), '{}') FROM settle.payment p WHERE p.payment_id = ANY (ids)
$$;
SELECT settle_create_participant(p) FROM unnest(ARRAY['x1', 'x2', 'x3']) p;
SELECT settle_create_account('x1_usd', 'x1', 'USD', opening_balance => 5), settle_create_account('x2_eur', 'x2', 'EUR'),
       settle_create_account('x3_gbp', 'x3', 'GBP');
SELECT count(*) FROM (
    SELECT settle_submit('xr_' || i, a, sc, dc, s, d, c, 'xr_k' || i)
      FROM (VALUES (1, 100, 'USD', 'EUR', 'x1_usd', 'x2_eur', 'x2'), (2, 80, 'EUR', 'GBP', 'x2_eur', 'x3_gbp', 'x3'),
                   (3, 40, 'GBP', 'USD', 'x3_gbp', 'x1_usd', 'x1')) v(i, a, sc, dc, s, d, c)) x;
SELECT considered, settled FROM settle_run_cycle();
-- value in USD: 100.00 + 100.00 + 80.00 = 280.00; unlocked_weight is the same
-- less the spread on each pair's net (0.40% of 100.00, 0.25% of 80.00 EUR =
-- 100.00 USD, 0.60% of 80.00) = 280.00 - 0.40 - 0.25 - 0.48
SELECT account_id, status, top_up, top_up_minor, tx(blocked_by_own_liquidity) AS blocked_by_own_liquidity,
       unlocked_payments, unlocked_amount, unlocked_weight
  FROM settle_funding_advice('x1');
-- x2's view, in EUR: with x1 short, x2's 80.00 EUR would need x2's own
-- money (x1's 100.00 USD never reaches it): the advice for x2 is 80.00
SELECT account_id, status, top_up, tx(blocked_by_own_liquidity) AS blocked_by_own_liquidity, tx(blocked_by_others) AS blocked_by_others
  FROM settle_funding_advice('x2');
-- one cent short of the advice settles nothing; the advice does
SELECT settle_fund_account('x1_usd', 14.99, 'one cent short');
SELECT considered, settled FROM settle_run_cycle();
SELECT top_up FROM settle_funding_advice('x1');
SELECT settle_fund_account('x1_usd', 0.01, 'the last cent');
SELECT considered, settled FROM settle_run_cycle();
SELECT p.transaction_id, p.status, p.destination_amount FROM settle.payment p WHERE p.transaction_id LIKE 'xr_%'
 ORDER BY 1;

-- Wire fees: x1 owes x2 two payments (USD -> EUR) of priority 1: 1.00 and
-- 50.00; x1's second account has nothing.  With the EUR wire at 3.00 (3.75
-- USD) and the USD wire at 2.50, both are worth funding together (the large
-- one pays for the wires): 10.20 of priority-weighted value less 3.75, 2.50
-- and 0.204 of spread = 3.75.
SELECT settle_set_wire_fee('EUR', 3.00), settle_set_wire_fee('USD', 2.50);
SELECT settle_create_account('x1_usd2', 'x1', 'USD');
SELECT count(*) FROM (
    SELECT settle_submit('xf_' || i, a, 'USD', 'EUR', 'x1_usd2', 'x2_eur', 'x2', 'xf_k' || i, priority => 1)
      FROM (VALUES (1, 1), (2, 50)) v(i, a)) x;
SELECT account_id, status, top_up, tx(blocked_by_own_liquidity) AS blocked_by_own_liquidity, unlocked_payments,
       unlocked_amount, unlocked_weight
  FROM settle_funding_advice('x1') WHERE account_id = 'x1_usd2';
-- the small one alone is not worth its wires (0.20 of priority-weighted value
-- against 6.25 of fees): no top-up is advised for it (the cycle itself
-- would settle it if the money were there: it settles every due payment
-- liquidity allows)
SELECT settle_cancel_payment(p.payment_id, 'only the small one') FROM settle.payment p WHERE p.transaction_id = 'xf_2';
SELECT account_id, status, top_up, tx(blocked_by_own_liquidity) AS blocked_by_own_liquidity,
       tx(blocked_by_others) AS blocked_by_others, unlocked_payments
  FROM settle_funding_advice('x1') WHERE account_id = 'x1_usd2';
SELECT settle_cancel_payment(p.payment_id, 'end of 2b') FROM settle.payment p WHERE p.transaction_id = 'xf_1';
SELECT settle_set_wire_fee('EUR', 0), settle_set_wire_fee('USD', 0);

------------------------------------------------------------------------
-- 2c. Brute force across currencies, with fees and spreads: 40 random
--     queues (3 to 7 payments among 4 accounts in USD, EUR and GBP, wire
--     fees of 0.50 to 3.00 per currency and one participant's own fee),
--     every subset: the objective is the settled priority x value (in the
--     target's currency at the mid rates) less 5 x (the fees of the wires
--     used + each pair's spread on its net converted value); credits are
--     converted as the cycle does.  The least top-up over the subsets with
--     the best objective that unlimited liquidity on the target allows,
--     and the objective gained / 5, against the advice.
------------------------------------------------------------------------
CREATE FUNCTION brute_force_fx(target text, OUT w_now numeric, OUT w_unlimited numeric, OUT least_topup numeric)
LANGUAGE sql AS $$
    WITH usd AS (   -- one major unit in USD (the reference currency)
        SELECT c.code, CASE WHEN c.code = 'USD' THEN 1::numeric
                            ELSE (SELECT f.mid_rate FROM settle.fx_rates f WHERE f.base_currency = c.code AND f.quote_currency = 'USD') END AS rate
          FROM (VALUES ('USD'), ('EUR'), ('GBP')) c(code)),
    tgt AS (SELECT u.rate FROM settle.account a JOIN usd u ON u.code = a.currency WHERE a.account_id = target),
    pay AS (
        SELECT (row_number() OVER (ORDER BY p.payment_id) - 1)::int AS k, p.source_account, p.destination_account,
               p.source_participant, p.counterparty_id, p.source_currency, p.destination_currency,
               p.amount::numeric AS debit,
               -- every exponent is 2 and every rate's inverse exact: credit = amount x rate, rounded
               CASE WHEN p.source_currency = p.destination_currency THEN p.amount::numeric
                    WHEN d.mid_rate IS NOT NULL THEN round(p.amount * d.mid_rate)
                    ELSE round(p.amount / i.mid_rate) END AS credit,
               p.amount * u.rate / (SELECT tgt.rate FROM tgt) AS value, p.priority,
               coalesce(d.spread_bps, i.spread_bps) AS spread_bps
          FROM settle.payment p JOIN usd u ON u.code = p.source_currency
          LEFT JOIN settle.fx_rates d ON d.base_currency = p.source_currency AND d.quote_currency = p.destination_currency
          LEFT JOIN settle.fx_rates i ON i.base_currency = p.destination_currency AND i.quote_currency = p.source_currency
         WHERE p.status = 'queued'),
    acc AS (
        SELECT a.account_id, (a.balance + a.lower_limit - a.pending_debit)::numeric AS avail
          FROM settle.account a
         WHERE a.account_id IN (SELECT source_account FROM pay UNION SELECT destination_account FROM pay)),
    fee AS (   -- each wire's fee in the target's minor units
        SELECT w.participant_id, w.currency,
               coalesce((SELECT f.fee FROM settle.wire_fee f WHERE f.participant_id = w.participant_id AND f.currency = w.currency),
                        (SELECT f.fee FROM settle.wire_fee f WHERE f.participant_id IS NULL AND f.currency = w.currency), 0)
               * (SELECT u.rate FROM usd u WHERE u.code = w.currency) / (SELECT tgt.rate FROM tgt) AS value
          FROM (SELECT source_participant AS participant_id, source_currency AS currency FROM pay
                UNION SELECT counterparty_id, destination_currency FROM pay) w),
    masks AS (SELECT generate_series(0, (1 << (SELECT count(*) FROM pay)::int) - 1) AS m),
    net AS (
        SELECT m.m, acc.account_id, acc.avail,
               coalesce(sum(CASE WHEN pay.destination_account = acc.account_id THEN pay.credit ELSE 0 END
                            - CASE WHEN pay.source_account = acc.account_id THEN pay.debit ELSE 0 END), 0) AS net
          FROM masks m CROSS JOIN acc
          LEFT JOIN pay ON (m.m >> pay.k) & 1 = 1
                       AND acc.account_id IN (pay.source_account, pay.destination_account)
         GROUP BY m.m, acc.account_id, acc.avail),
    cost AS (
        SELECT m.m,
               (SELECT coalesce(sum(pay.priority * pay.value), 0) FROM pay WHERE (m.m >> pay.k) & 1 = 1) AS weight,
               (SELECT coalesce(sum(fee.value), 0) FROM fee
                 WHERE EXISTS (SELECT 1 FROM pay WHERE (m.m >> pay.k) & 1 = 1
                                 AND ((pay.source_participant, pay.source_currency) = (fee.participant_id, fee.currency)
                                      OR (pay.counterparty_id, pay.destination_currency) = (fee.participant_id, fee.currency)))) AS fees,
               (SELECT coalesce(sum(abs(x.vol) * x.spread_bps / 10000), 0)
                  FROM (SELECT sum(CASE WHEN pay.source_currency < pay.destination_currency THEN pay.value ELSE -pay.value END) AS vol,
                               max(pay.spread_bps) AS spread_bps
                          FROM pay WHERE (m.m >> pay.k) & 1 = 1 AND pay.source_currency <> pay.destination_currency
                         GROUP BY least(pay.source_currency, pay.destination_currency),
                                  greatest(pay.source_currency, pay.destination_currency)) x) AS spread
          FROM masks m),
    subset AS (
        SELECT m.m, c.weight - 5 * c.fees - 5 * c.spread AS objective,
               bool_and(n.account_id = target OR n.avail + n.net >= least(0, n.avail)) AS others_ok,
               max(CASE WHEN n.account_id = target AND n.avail + n.net < least(0, n.avail)
                        THEN -(n.avail + n.net) ELSE 0 END) AS need
          FROM masks m JOIN net n ON n.m = m.m JOIN cost c ON c.m = m.m GROUP BY m.m, c.weight, c.fees, c.spread)
    SELECT (SELECT max(objective) FROM subset WHERE others_ok AND need = 0),
           (SELECT max(objective) FROM subset WHERE others_ok),
           (SELECT min(need) FROM subset WHERE others_ok
               AND objective >= (SELECT max(objective) FROM subset WHERE others_ok) - 1e-9)
$$;
CREATE TABLE comparison_fx (instance int, payments int, currencies int, topup_advice bigint, topup_brute numeric,
                            unlocked_advice numeric, unlocked_brute numeric);
DO $$
DECLARE
    inst int;
    np int;
    i int;
    s int;
    d int;
    accs text[];
    ccys text[];
    ccy text;
    adv record;
    bf record;
BEGIN
    PERFORM setseed(0.29);
    PERFORM settle_set_wire_fee(c, ((1 + floor(random() * 6)) * 0.5)::numeric) FROM unnest(ARRAY['USD', 'EUR', 'GBP']) c;
    FOR inst IN 1..40 LOOP
        PERFORM settle_cancel_payment(p.payment_id, 'next instance')
           FROM settle.payment p WHERE p.status = 'queued';
        accs := '{}';
        ccys := '{}';
        FOR i IN 1..4 LOOP
            ccy := (ARRAY['USD', 'EUR', 'GBP'])[1 + floor(random() * 3)::int];
            PERFORM settle_create_participant(format('bx%s_%s', inst, i));
            PERFORM settle_create_account(format('bx%s_%s', inst, i), format('bx%s_%s', inst, i), ccy,
                                          lower_limit => (floor(random() * 3) * 10)::numeric,
                                          opening_balance => (floor(random() * 6) * 20)::numeric);
            accs := accs || format('bx%s_%s', inst, i);
            ccys := ccys || ccy;
        END LOOP;
        -- one participant with its own fee in its currency
        PERFORM settle_set_wire_fee(ccys[2], floor(random() * 5)::numeric, participant_id => format('bx%s_2', inst));
        np := 3 + floor(random() * 5)::int;
        FOR i IN 1..np LOOP
            s := 1 + floor(random() * 4)::int;
            d := 1 + (s + floor(random() * 3)::int) % 4;
            PERFORM settle_submit(format('bx%s_t%s', inst, i), (10 + floor(random() * 100))::numeric, ccys[s], ccys[d],
                                  accs[s], accs[d], format('bx%s_%s', inst, d), format('bx%s_k%s', inst, i),
                                  priority => 1 + floor(random() * 9)::int);
        END LOOP;
        SELECT * INTO adv FROM settle_funding_advice(format('bx%s_1', inst));
        SELECT * INTO bf FROM brute_force_fx(accs[1]);
        INSERT INTO comparison_fx VALUES (inst, np, (SELECT count(DISTINCT c) FROM unnest(ccys) c), adv.top_up_minor,
                                          bf.least_topup, adv.unlocked_weight, round((bf.w_unlimited - bf.w_now) / 5) / 100);
    END LOOP;
END
$$;
-- the unlocked objective is computed in floating point by the advice: equal to the minor unit
SELECT count(*) AS instances, sum(payments) AS payments,
       count(*) FILTER (WHERE currencies > 1) AS across_currencies,
       count(*) FILTER (WHERE topup_advice > 0) AS needing_a_topup,
       count(*) FILTER (WHERE topup_advice IS DISTINCT FROM topup_brute) AS topup_differs,
       count(*) FILTER (WHERE abs(unlocked_advice - unlocked_brute) > 0.01 OR unlocked_advice IS NULL) AS unlocked_differs
  FROM comparison_fx;
SELECT * FROM comparison_fx WHERE topup_advice IS DISTINCT FROM topup_brute OR abs(unlocked_advice - unlocked_brute) > 0.01;

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
