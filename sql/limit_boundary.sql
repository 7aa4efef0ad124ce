-- Limits at their boundary (issue #17, item 9a): an account may end exactly
-- at -lower_limit, never one minor unit below it, in currencies with 0, 2
-- and 3 decimals, on its own, in a ring whose credits fund its debits, and
-- while reservations of two-phase settlement are pending.  A payment one
-- minor unit over stays queued and the cycle succeeds (an off-by-one in the
-- solver's available liquidity would select it, and the cycle would fail on
-- the account's CHECK constraint instead).  Own database.
CREATE DATABASE settle_limit_boundary;
\c settle_limit_boundary
CREATE EXTENSION settle;
CREATE VIEW money AS
    SELECT account_id, balance, lower_limit, pending_debit, available
      FROM settle.accounts WHERE kind = 'customer' ORDER BY account_id;
CREATE VIEW queue AS
    SELECT transaction_id, amount, source_currency, status
      FROM settle.transactions ORDER BY transaction_id;

------------------------------------------------------------------------
-- 1. USD: b_a has 50.00 and may go 30.00 below zero: available 80.00.
--    80.01 stays queued; then 80.00 settles, leaving b_a at exactly
--    -30.00 (available 0.00) and 80.01 still queued.
------------------------------------------------------------------------
SELECT settle_create_participant(p) FROM unnest(ARRAY['b_a', 'b_b', 'b_c', 'b_d']) p;
SELECT settle_create_account('b_a_usd', 'b_a', 'USD', lower_limit => 30, opening_balance => 50),
       settle_create_account('b_b_usd', 'b_b', 'USD');
SELECT status FROM settle_submit('usd_over', 80.01, 'USD', 'USD', 'b_a_usd', 'b_b_usd', 'b_b', 'k_usd_over');
SELECT considered, settled, unsettled FROM settle_run_cycle();
SELECT status FROM settle_submit('usd_exact', 80.00, 'USD', 'USD', 'b_a_usd', 'b_b_usd', 'b_b', 'k_usd_exact');
SELECT considered, settled, unsettled FROM settle_run_cycle();
SELECT * FROM money WHERE account_id LIKE 'b\_%';
SELECT * FROM queue WHERE transaction_id LIKE 'usd%';

------------------------------------------------------------------------
-- 2. JPY (no decimals), nothing and no overdraft: 1 yen does not fit;
--    BHD (3 decimals) with 0.005 and an overdraft of 0.005: 0.011 does not
--    fit, 0.010 does.
------------------------------------------------------------------------
SELECT settle_create_account('b_c_jpy', 'b_c', 'JPY'), settle_create_account('b_d_jpy', 'b_d', 'JPY'),
       settle_create_account('b_c_bhd', 'b_c', 'BHD', lower_limit => 0.005, opening_balance => 0.005),
       settle_create_account('b_d_bhd', 'b_d', 'BHD');
SELECT status FROM settle_submit('jpy_over', 1, 'JPY', 'JPY', 'b_c_jpy', 'b_d_jpy', 'b_d', 'k_jpy_over');
SELECT status FROM settle_submit('bhd_over', 0.011, 'BHD', 'BHD', 'b_c_bhd', 'b_d_bhd', 'b_d', 'k_bhd_over');
SELECT considered, settled, unsettled FROM settle_run_cycle();
SELECT status FROM settle_submit('bhd_exact', 0.010, 'BHD', 'BHD', 'b_c_bhd', 'b_d_bhd', 'b_d', 'k_bhd_exact');
SELECT considered, settled, unsettled FROM settle_run_cycle();
SELECT * FROM money WHERE account_id LIKE 'b\_c%' OR account_id LIKE 'b\_d%';
SELECT * FROM queue WHERE transaction_id LIKE 'jpy%' OR transaction_id LIKE 'bhd%';

------------------------------------------------------------------------
-- 3. A ring of two accounts with nothing and no overdraft: r_a pays 0.02
--    and receives 0.01 (it would end at -0.01): neither settles.  Then a
--    ring of 0.01 each way, in which every account ends at exactly 0.00:
--    it settles.
------------------------------------------------------------------------
SELECT settle_create_participant('r_a'), settle_create_participant('r_b');
SELECT settle_create_account('r_a_eur', 'r_a', 'EUR'), settle_create_account('r_b_eur', 'r_b', 'EUR');
SELECT status FROM settle_submit('ring_over_1', 0.02, 'EUR', 'EUR', 'r_a_eur', 'r_b_eur', 'r_b', 'k_ring_over_1');
SELECT status FROM settle_submit('ring_over_2', 0.01, 'EUR', 'EUR', 'r_b_eur', 'r_a_eur', 'r_a', 'k_ring_over_2');
SELECT considered, settled, unsettled FROM settle_run_cycle();
SELECT settle_cancel_payment(payment_id, 'boundary test') FROM settle.transactions WHERE transaction_id = 'ring_over_1';
SELECT status FROM settle_submit('ring_exact_1', 0.01, 'EUR', 'EUR', 'r_a_eur', 'r_b_eur', 'r_b', 'k_ring_exact_1');
SELECT considered, settled, unsettled FROM settle_run_cycle();
SELECT * FROM money WHERE account_id LIKE 'r\_%';
SELECT * FROM queue WHERE transaction_id LIKE 'ring%';

------------------------------------------------------------------------
-- 4. Two-phase: t_a has 100.00, no overdraft, and 60.00 reserved by a
--    cycle whose batch is still with the rail (available 40.00).  40.01
--    stays queued; 40.00 is reserved too, leaving available at exactly
--    0.00.
------------------------------------------------------------------------
SET settle.two_phase = on;
SELECT settle_create_participant('t_a'), settle_create_participant('t_b');
SELECT settle_create_account('t_a_gbp', 't_a', 'GBP', opening_balance => 100), settle_create_account('t_b_gbp', 't_b', 'GBP');
SELECT status FROM settle_submit('tp_first', 60, 'GBP', 'GBP', 't_a_gbp', 't_b_gbp', 't_b', 'k_tp_first');
SELECT considered, settled, unsettled FROM settle_run_cycle();
SELECT status FROM settle_submit('tp_over', 40.01, 'GBP', 'GBP', 't_a_gbp', 't_b_gbp', 't_b', 'k_tp_over');
SELECT considered, settled, unsettled FROM settle_run_cycle();
SELECT status FROM settle_submit('tp_exact', 40.00, 'GBP', 'GBP', 't_a_gbp', 't_b_gbp', 't_b', 'k_tp_exact');
SELECT considered, settled, unsettled FROM settle_run_cycle();
SELECT * FROM money WHERE account_id LIKE 't\_%';
SELECT * FROM queue WHERE transaction_id LIKE 'tp%';
RESET settle.two_phase;

-- no customer account below its limit, reservations included
SELECT account_id FROM settle.account WHERE kind = 'customer' AND balance - pending_debit < -lower_limit;

\c contrib_regression
DROP DATABASE settle_limit_boundary;
