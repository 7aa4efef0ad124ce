-- A poison payment cannot block settlement (issue #16, item 5b).  An
-- account whose balance is near the top of the int64 range: the cycle
-- settles the payments into it that fit, oldest first, leaves the one that
-- fits only alone for a later cycle, holds it (reason, event, metric) once
-- it can never fit, and settles everything else.  Before, the solver refused
-- the whole instance (a sum could overflow), the greedy fallback settled
-- nothing, cycle after cycle, for everyone.  (Currencies' values are fine:
-- extreme FX credits are in fx_exact.)  Own database.
CREATE DATABASE settle_cycle_range;
\c settle_cycle_range
CREATE EXTENSION settle;
SELECT settle_create_participant('big_t'), settle_create_participant('big_u');
SELECT settle_create_account('big_t_usd', 'big_t', 'USD'), settle_create_account('big_u_usd', 'big_u', 'USD', opening_balance => 100);
-- 9,214 fundings of the largest amount: 9,213,999,999,999,990,786 minor
-- units, 9,372,036,854,785,021 below the largest bigint: room for nine more
-- of the largest amount, not ten
SELECT count(settle_fund_account('big_t_usd', 9999999999999.99)) AS fundings FROM generate_series(1, 9214);
SELECT balance_minor, 9223372036854775807 - balance_minor AS room FROM settle.accounts WHERE account_id = 'big_t_usd';
-- ten payers, each with an overdraft of the largest amount, pay it to big_t
SELECT count(*) AS payers FROM generate_series(1, 10) i,
       LATERAL (SELECT settle_create_participant('big_p' || i)) p,
       LATERAL (SELECT settle_create_account('big_p' || i || '_usd', 'big_p' || i, 'USD', lower_limit => 9999999999999.99)) a;
SELECT count(*) AS queued FROM generate_series(1, 10) i,
       settle_submit('big' || i, 9999999999999.99, 'USD', 'USD', 'big_p' || i || '_usd', 'big_t_usd', 'big_t', 'bigk' || i);
-- and an unrelated payment with its own liquidity
SELECT status FROM settle_submit('small', 10, 'USD', 'USD', 'big_u_usd', 'big_p1_usd', 'big_p1', 'smallk');
SELECT considered, settled, unsettled, solver_status FROM settle_run_cycle();
SELECT transaction_id, status, hold_reason FROM settle.transactions
 WHERE status <> 'settled' OR transaction_id = 'small' ORDER BY payment_id;
SELECT balance_minor, 9223372036854775807 - balance_minor AS room FROM settle.accounts WHERE account_id = 'big_t_usd';
-- the tenth can never fit now: held, with the reason and an event
SELECT considered, settled, unsettled FROM settle_run_cycle();
SELECT t.transaction_id, t.status, e.event_type, e.details FROM settle.transactions t
  JOIN settle.events e ON e.entity = 'payment' AND e.entity_id = t.payment_id::text AND e.event_type = 'held';
SELECT value FROM settle.metrics WHERE metric = 'settle_queue_payments' AND labels->>'status' = 'held';
SELECT count(*) AS cycles FROM settle_run_cycle();
SELECT count(*) AS differences FROM settle_replay();

\c contrib_regression
DROP DATABASE settle_cycle_range;
