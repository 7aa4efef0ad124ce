-- Exact FX conversion (issue #16, items 1 and 5a): the credit is the exact
-- value rounded half away from zero to the destination's minor unit, in both
-- directions of a stored pair (the other way round divides by the stored
-- rate: no rounded reciprocal), for currencies with 0, 2, 3 and 4 decimals;
-- intake refuses a credit that could never be posted (SE015, SE016); a rate
-- raised after intake holds the payment instead of failing every cycle.
-- Own database.
CREATE DATABASE settle_fx_exact;
\c settle_fx_exact
CREATE EXTENSION settle;
-- errors are recorded by pg_regress: only their SQLSTATE, which is what
-- these tests check (the codes are settle's public interface, docs/ERRORS.md)
\set VERBOSITY sqlstate
-- An independent computation of the expected credit: the exact quotient to
-- 40 decimals (a half can only be met exactly, and then it is exact), then
-- numeric round(), which rounds half away from zero.
CREATE FUNCTION expected_credit(amount bigint, src text, dst text) RETURNS bigint LANGUAGE sql AS $$
    SELECT CASE WHEN d.mid_rate IS NOT NULL
                THEN round(amount * d.mid_rate * 10::numeric ^ (cd.exponent - cs.exponent))
                ELSE round((amount * 10::numeric ^ (cd.exponent - cs.exponent))::numeric(80, 40) / i.mid_rate)
           END::bigint
      FROM settle.currency cs, settle.currency cd
      LEFT JOIN settle.fx_rates d ON d.base_currency = src AND d.quote_currency = dst
      LEFT JOIN settle.fx_rates i ON i.base_currency = dst AND i.quote_currency = src
     WHERE cs.code = src AND cd.code = dst
$$;
SELECT settle_create_participant('fa'), settle_create_participant('fb');
SELECT settle_create_account('fa_' || lower(c), 'fa', c, opening_balance => 1000000000),
       settle_create_account('fb_' || lower(c), 'fb', c)
  FROM unnest(ARRAY['USD', 'GBP', 'EUR', 'JPY', 'BHD', 'CLF']) c ORDER BY c;
-- each pair stored one way only
SELECT settle_set_fx_rate('GBP', 'USD', 1.2) IS NOT NULL AS gbp_usd,
       settle_set_fx_rate('EUR', 'USD', 1.25) IS NOT NULL AS eur_usd,
       settle_set_fx_rate('USD', 'JPY', 120) IS NOT NULL AS usd_jpy,
       settle_set_fx_rate('BHD', 'USD', 2.4) IS NOT NULL AS bhd_usd,
       settle_set_fx_rate('CLF', 'JPY', 1) IS NOT NULL AS clf_jpy;

------------------------------------------------------------------------
-- 1. Every rounding boundary, both directions.  Hand-worked:
--   USD->GBP (divides by 1.2):  1200.03 -> 1000.025 -> 1000.03 (the issue's
--     case: the rounded reciprocal gave 1000.02); 0.03 -> 0.025 -> 0.03;
--     0.01 -> 0.0083 -> 0.01; 0.02 -> 0.0167 -> 0.02; 0.06 -> 0.05 exactly;
--     1200.02 -> 1000.0167 -> 1000.02; 1200.09 -> 1000.075 -> 1000.08
--   GBP->USD (multiplies by 1.2): 1000.03 -> 1200.036 -> 1200.04;
--     0.01 -> 0.012 -> 0.01; 0.04 -> 0.048 -> 0.05
--   EUR->USD (x 1.25): 0.02 -> 0.025 -> 0.03; 0.06 -> 0.075 -> 0.08
--   USD->EUR (/ 1.25): 0.01 -> 0.008 -> 0.01; 0.05 -> 0.04 exactly
--   JPY->USD (/ 120, 0 -> 2 decimals): 3 -> 0.025 -> 0.03; 9 -> 0.075 -> 0.08;
--     1 -> 0.0083 -> 0.01; 6 -> 0.05 exactly
--   USD->JPY (x 120): 0.01 -> 1.2 -> 1; 0.05 -> 6
--   USD->BHD (/ 2.4, 2 -> 3 decimals): 0.03 -> 0.0125 -> 0.013;
--     0.01 -> 0.00417 -> 0.004; 0.09 -> 0.0375 -> 0.038
--   BHD->USD (x 2.4): 0.003 -> 0.0072 -> 0.01; 0.125 -> 0.30 exactly
--   JPY->CLF (/ 1, 0 -> 4 decimals): 5 -> 5.0000
------------------------------------------------------------------------
CREATE TABLE cases (n serial, src text, dst text, amount numeric, expected numeric);
INSERT INTO cases (src, dst, amount, expected) VALUES
    ('USD', 'GBP', 1200.03, 1000.03), ('USD', 'GBP', 0.03, 0.03), ('USD', 'GBP', 0.01, 0.01),
    ('USD', 'GBP', 0.02, 0.02), ('USD', 'GBP', 0.06, 0.05), ('USD', 'GBP', 1200.02, 1000.02),
    ('USD', 'GBP', 1200.09, 1000.08),
    ('GBP', 'USD', 1000.03, 1200.04), ('GBP', 'USD', 0.01, 0.01), ('GBP', 'USD', 0.04, 0.05),
    ('EUR', 'USD', 0.02, 0.03), ('EUR', 'USD', 0.06, 0.08),
    ('USD', 'EUR', 0.01, 0.01), ('USD', 'EUR', 0.05, 0.04),
    ('JPY', 'USD', 3, 0.03), ('JPY', 'USD', 9, 0.08), ('JPY', 'USD', 1, 0.01), ('JPY', 'USD', 6, 0.05),
    ('USD', 'JPY', 0.01, 1), ('USD', 'JPY', 0.05, 6),
    ('USD', 'BHD', 0.03, 0.013), ('USD', 'BHD', 0.01, 0.004), ('USD', 'BHD', 0.09, 0.038),
    ('BHD', 'USD', 0.003, 0.01), ('BHD', 'USD', 0.125, 0.30),
    ('JPY', 'CLF', 5, 5);
SELECT count(*) FILTER (WHERE s.status = 'queued') AS accepted
  FROM cases c, settle_submit('fx' || c.n, c.amount, c.src, c.dst, 'fa_' || lower(c.src), 'fb_' || lower(c.dst),
                              'fb', 'fxk' || c.n) s;
SELECT considered, settled FROM settle_run_cycle();
SELECT c.src, c.dst, c.amount, t.destination_amount, c.expected, t.destination_amount = c.expected AS right
  FROM cases c JOIN settle.transactions t ON t.transaction_id = 'fx' || c.n ORDER BY c.n;
-- and against the independent computation
SELECT count(*) AS payments, count(*) FILTER (WHERE p.destination_amount = expected_credit(p.amount, p.source_currency, p.destination_currency)) AS exact
  FROM settle.payment p WHERE p.source_currency <> p.destination_currency;

------------------------------------------------------------------------
-- 2. A sweep: 1..1,500 minor units in each direction of each pair.  Intake
--    refuses exactly the amounts whose credit rounds to zero (SE016); every
--    credit the cycle computes equals the independent computation.
------------------------------------------------------------------------
CREATE FUNCTION sub(txn text, amount numeric, src text, dst text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    RETURN (SELECT s.status FROM settle_submit(txn, amount, src, dst, 'fa_' || lower(src), 'fb_' || lower(dst),
                                                'fb', 'k_' || txn) s);
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE;
END
$$;
CREATE TABLE sweep AS
SELECT v.src, v.dst, a AS minor, sub(format('sw_%s_%s_%s', v.src, v.dst, a), settle.to_major(a, v.src), v.src, v.dst) AS outcome
  FROM (VALUES ('USD', 'GBP'), ('GBP', 'USD'), ('USD', 'EUR'), ('EUR', 'USD'), ('USD', 'JPY'), ('JPY', 'USD'),
               ('USD', 'BHD'), ('BHD', 'USD')) v(src, dst),
       generate_series(1, 1500) a;
SELECT s.src, s.dst, count(*) FILTER (WHERE s.outcome = 'queued') AS accepted,
       count(*) FILTER (WHERE s.outcome = 'SE016') AS converts_to_zero,
       count(*) FILTER (WHERE (s.outcome = 'SE016') <> (expected_credit(s.minor, s.src, s.dst) = 0)) AS wrongly_judged
  FROM sweep s GROUP BY 1, 2 ORDER BY 1, 2;
SELECT considered, settled FROM settle_run_cycle();
SELECT count(*) AS payments,
       count(*) FILTER (WHERE p.destination_amount = expected_credit(p.amount, p.source_currency, p.destination_currency)) AS exact
  FROM settle.payment p WHERE p.transaction_id LIKE 'sw\_%';
SELECT count(*) AS differences FROM settle_replay();
SELECT count(*) AS problems FROM settle_verify();

------------------------------------------------------------------------
-- 3. What can never be posted is refused at intake, with the bound in the
--    detail: USD 9,999,999,999,999.99 at USD/EUR 1e9 (SE015); JPY to CLF
--    near 1 (4 more decimals: 100,000,000,000 JPY is 1e15 CLF minor units,
--    one more than the bound; 99,999,999,999 JPY fits); 0.002 BHD is 0.48
--    US cents (SE016), 0.003 BHD 0.72 (one cent).
------------------------------------------------------------------------
SELECT settle_set_fx_rate('USD', 'EUR', 1e9) IS NOT NULL AS usd_eur;
\set VERBOSITY default
SELECT settle_submit('big1', 9999999999999.99, 'USD', 'EUR', 'fa_usd', 'fb_eur', 'fb', 'bigk1');
\set VERBOSITY sqlstate
SELECT status FROM settle_submit('big2', 1, 'USD', 'EUR', 'fa_usd', 'fb_eur', 'fb', 'bigk2'); -- one_usd
SELECT settle_submit('big3', 100000000000, 'JPY', 'CLF', 'fa_jpy', 'fb_clf', 'fb', 'bigk3'); -- jpy_clf_over
SELECT status FROM settle_submit('big4', 99999999999, 'JPY', 'CLF', 'fa_jpy', 'fb_clf', 'fb', 'bigk4'); -- jpy_clf_largest
SELECT settle_submit('big5', 0.002, 'BHD', 'USD', 'fa_bhd', 'fb_usd', 'fb', 'bigk5'); -- bhd_zero
SELECT status FROM settle_submit('big6', 0.003, 'BHD', 'USD', 'fa_bhd', 'fb_usd', 'fb', 'bigk6'); -- bhd_cent
-- the bulk path says the same per row
SELECT ordinal, status, sqlstate FROM settle_submit_bulk('[
  {"transaction_id": "bb1", "amount": "9999999999999.99", "source_currency": "USD", "destination_currency": "EUR",
   "source_account": "fa_usd", "destination_account": "fb_eur", "counterparty_id": "fb", "idempotency_key": "bbk1"},
  {"transaction_id": "bb2", "amount": "0.002", "source_currency": "BHD", "destination_currency": "USD",
   "source_account": "fa_bhd", "destination_account": "fb_usd", "counterparty_id": "fb", "idempotency_key": "bbk2"}]');
SELECT settle_fund_account('fa_jpy', 100000000000) > 0 AS funded;
SELECT considered, settled FROM settle_run_cycle();
SELECT transaction_id, amount, source_currency, destination_amount, destination_currency, status
  FROM settle.transactions WHERE transaction_id LIKE 'big%' ORDER BY 1;

------------------------------------------------------------------------
-- 4. A rate raised after intake: the payment cannot be posted any more.
--    The cycle holds it (with the reason, an event, the held metric) and
--    settles the rest of the queue; before, the whole cycle failed with
--    22003 "bigint out of range" at stage "loading the queue", every round.
------------------------------------------------------------------------
SELECT settle_set_fx_rate('USD', 'EUR', 1.1) IS NOT NULL AS usd_eur_back;
SELECT status FROM settle_submit('raise1', 1000000, 'USD', 'EUR', 'fa_usd', 'fb_eur', 'fb', 'raisek1');
SELECT status FROM settle_submit('other1', 10, 'USD', 'USD', 'fa_usd', 'fb_usd', 'fb', 'otherk1');
SELECT settle_set_fx_rate('USD', 'EUR', 1e12) IS NOT NULL AS usd_eur_raised;
SELECT considered, settled, unsettled FROM settle_run_cycle();
SELECT transaction_id, status, hold_reason FROM settle.transactions WHERE transaction_id IN ('raise1', 'other1') ORDER BY 1;
SELECT e.event_type, e.from_status, e.to_status, e.details FROM settle.events e
  JOIN settle.payment p ON e.entity = 'payment' AND e.entity_id = p.payment_id::text
 WHERE p.transaction_id = 'raise1' ORDER BY e.event_id;
SELECT labels, value FROM settle.metrics WHERE metric = 'settle_queue_payments' ORDER BY labels::text;
-- the next cycle does not meet it again
SELECT count(*) AS cycles FROM settle_run_cycle();
-- released while the rate is still too high, the cycle holds it again;
-- then the operator cancels it: failed, for good
SELECT settle_release_payment(payment_id) FROM settle.payment WHERE transaction_id = 'raise1';
SELECT considered, settled, unsettled FROM settle_run_cycle();
SELECT settle_cancel_payment(payment_id, 'rate out of range; the client is told') FROM settle.payment WHERE transaction_id = 'raise1';
SELECT format('SELECT settle_release_payment(%s) -- release_failed', payment_id) FROM settle.payment WHERE transaction_id = 'raise1' \gexec
SELECT settle_release_payment(999999); -- release_unknown
SELECT transaction_id, status, hold_reason FROM settle.transactions WHERE transaction_id = 'raise1';
SELECT count(*) AS differences FROM settle_replay();
SELECT count(*) AS problems FROM settle_verify();

\c contrib_regression
DROP DATABASE settle_fx_exact;
