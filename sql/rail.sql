-- Two-phase settlement with the rail: every path of a batch, the limits
-- while reservations are pending, and the calendar jobs.  Own database.
CREATE DATABASE settle_executor;
\c settle_executor
CREATE EXTENSION settle;
-- errors are recorded by pg_regress: only their SQLSTATE, which is what
-- these tests check (the codes are settle's public interface, docs/ERRORS.md)
\set VERBOSITY sqlstate
CREATE VIEW state AS
    SELECT b.batch_id, b.participant_id, b.direction, b.status, b.net_amount, b.attempts
      FROM settle.batches b ORDER BY b.batch_id;
CREATE VIEW money AS
    SELECT account_id, balance, pending_debit, pending_credit, available
      FROM settle.accounts WHERE kind = 'customer' ORDER BY account_id;
SELECT settle_set_wire_fee('USD', 25);
SELECT settle_create_participant(p) FROM unnest(ARRAY['x_a', 'x_b', 'x_c']) p;
SELECT settle_create_account('x_a_usd', 'x_a', 'USD', opening_balance => 100),
       settle_create_account('x_b_usd', 'x_b', 'USD', opening_balance => 50),
       settle_create_account('x_c_usd', 'x_c', 'USD');
SET settle.two_phase = on;
SET settle.rail_backoff = '1h';
SET settle.rail_max_attempts = 3;

------------------------------------------------------------------------
-- 1. Confirmed: A pays B 60.  The cycle reserves: A's 60 counts against
--    its limit (available 40), B's 60 is pending, nothing is posted.  The
--    rail takes A's pay-in; its confirmation posts the cycle and releases
--    B's pay-out; its confirmation ends the batch.
------------------------------------------------------------------------
SELECT status FROM settle_submit('x1', 60, 'USD', 'USD', 'x_a_usd', 'x_b_usd', 'x_b', 'xk1');
SELECT considered, settled, batches, wires, journal_id FROM settle_run_cycle();
SELECT * FROM state;
SELECT * FROM money;
SELECT transaction_id, status FROM settle.transactions ORDER BY 1;
SELECT count(*) AS postings FROM settle.ledger WHERE journal_kind = 'settlement';
-- replay rebuilds the pending amounts from the "reserved" event's legs
SELECT entity_id, field, replayed, current FROM settle_replay(false)
 WHERE field LIKE 'pending%' AND current <> '0' ORDER BY 1, 2;
SELECT count(*) AS differences FROM settle_replay();
SELECT details->'reservations' AS reservations FROM settle.events
 WHERE entity = 'payment' AND event_type = 'reserved' ORDER BY event_id LIMIT 1;
-- A cannot spend the reserved 60 again: 60 more to C does not fit in 40
SELECT status FROM settle_submit('x2', 60, 'USD', 'USD', 'x_a_usd', 'x_c_usd', 'x_c', 'xk2');
SELECT considered, settled, unsettled FROM settle_run_cycle();
-- the rail: pay-ins first; the pay-out is not offered yet
SELECT batch_id, participant_id, direction, amount, attempt FROM settle_rail_fetch();
SELECT settle_rail_confirm(1, 'RAIL-0001');
SELECT * FROM state;
SELECT * FROM money;
SELECT transaction_id, status FROM settle.transactions ORDER BY 1;
SELECT account_id, amount FROM settle.ledger WHERE journal_kind = 'settlement' ORDER BY entry_id;
SELECT batch_id, participant_id, direction, amount, attempt FROM settle_rail_fetch();
SELECT settle_rail_confirm(2, 'RAIL-0002');
SELECT * FROM state;

------------------------------------------------------------------------
-- 2. Failed, retried, confirmed: A is funded and x2 (A pays C 60) settles;
--    its pay-in fails once, waits its backoff, is instructed again, and is
--    confirmed; then C's pay-out.
------------------------------------------------------------------------
CREATE FUNCTION b(participant text, dir text) RETURNS bigint LANGUAGE sql AS
  'SELECT max(batch_id) FROM settle.batch WHERE participant_id = participant AND direction = dir';
SELECT settle_fund_account('x_a_usd', 100) > 0 AS funded;
SELECT considered, settled FROM settle_run_cycle();
SELECT participant_id, direction, amount, attempt FROM settle_rail_fetch();
SELECT settle_rail_fail(b('x_a', 'pay_in'), 'rail busy');
SELECT status, attempts, next_attempt_at > clock_timestamp() + interval '59 minutes' AS waits_backoff, last_error
  FROM settle.batch WHERE batch_id = b('x_a', 'pay_in');
SELECT count(*) AS offered_during_backoff FROM settle_rail_fetch();
SELECT format('SELECT settle_rail_fail(%s, %L) -- not_instructed', b('x_a', 'pay_in'), 'late') \gexec
-- the backoff has passed
UPDATE settle.batch SET next_attempt_at = clock_timestamp() WHERE batch_id = b('x_a', 'pay_in');
SELECT participant_id, attempt FROM settle_rail_fetch();
SELECT settle_rail_confirm(b('x_a', 'pay_in'), 'RAIL-0003');
SELECT transaction_id, status FROM settle.transactions WHERE transaction_id = 'x2';
SELECT participant_id, direction, attempt FROM settle_rail_fetch();
SELECT settle_rail_confirm(b('x_c', 'pay_out'));
SELECT participant_id, direction, status, attempts FROM settle.batch WHERE batch_id IN (b('x_a', 'pay_in'), b('x_c', 'pay_out')) ORDER BY 1;

------------------------------------------------------------------------
-- 3. Failed for good: B pays C 30 and A pays C 10 in one cycle; B's
--    pay-in fails with a final error.  The cycle is voided: nothing was
--    posted, every reservation is released, B's payment fails, A's goes
--    back to the queue and settles in the next cycle.
------------------------------------------------------------------------
SELECT status FROM settle_submit('x3', 30, 'USD', 'USD', 'x_b_usd', 'x_c_usd', 'x_c', 'xk3');
SELECT status FROM settle_submit('x4', 10, 'USD', 'USD', 'x_a_usd', 'x_c_usd', 'x_c', 'xk4');
SELECT settled FROM settle_run_cycle() \gset
SELECT max(cycle_id) AS voided_cycle FROM settle.cycle \gset
SELECT * FROM money;
SELECT participant_id, direction, amount FROM settle_rail_fetch() ORDER BY 1;
SELECT settle_rail_fail(b('x_b', 'pay_in'), 'account closed at the bank', retryable => false);
SELECT participant_id, direction, status FROM settle.batch WHERE cycle_id = :voided_cycle ORDER BY 1;
SELECT * FROM money;
SELECT transaction_id, status, cycle_id IS NULL AS back_in_queue FROM settle.transactions WHERE transaction_id IN ('x3', 'x4') ORDER BY 1;
SELECT t.transaction_id, e.event_type, e.from_status, e.to_status FROM settle.events e
  JOIN settle.transactions t ON e.entity = 'payment' AND e.entity_id = t.payment_id::text
 WHERE t.transaction_id IN ('x3', 'x4') ORDER BY e.event_id;
SELECT event_type, details->>'defaulter' AS defaulter FROM settle.events WHERE entity = 'cycle' AND entity_id = :'voided_cycle' AND event_type = 'voided';
SELECT count(*) AS postings_of_voided_cycle FROM settle.ledger WHERE cycle_id = :voided_cycle;
SELECT settled FROM settle_run_cycle();
SELECT participant_id, direction FROM settle_rail_fetch();
SELECT settle_rail_confirm(b('x_a', 'pay_in'));
SELECT transaction_id, status FROM settle.transactions WHERE transaction_id = 'x4';
SELECT participant_id, direction FROM settle_rail_fetch();
SELECT settle_rail_confirm(b('x_c', 'pay_out'));

------------------------------------------------------------------------
-- 4. Timed out: an instruction with no answer within settle.rail_timeout
--    counts as a failed attempt and is retried; after
--    settle.rail_max_attempts (3) its failure is final.
------------------------------------------------------------------------
SET settle.rail_timeout = 1;
SET settle.rail_backoff = 0;
SELECT status FROM settle_submit('x5', 5, 'USD', 'USD', 'x_a_usd', 'x_b_usd', 'x_b', 'xk5');
SELECT settled FROM settle_run_cycle();
SELECT participant_id, attempt FROM settle_rail_fetch();
SELECT pg_sleep(0.01);
SELECT settle_rail_expire() AS timed_out;
SELECT status, attempts, last_error FROM settle.batch WHERE batch_id = b('x_a', 'pay_in');
SELECT participant_id, attempt FROM settle_rail_fetch();
SELECT pg_sleep(0.01);
SELECT settle_rail_expire() AS timed_out;
SELECT participant_id, attempt FROM settle_rail_fetch();
SELECT pg_sleep(0.01);
SELECT settle_rail_expire() AS timed_out;
SELECT status, attempts, last_error FROM settle.batch WHERE batch_id = b('x_a', 'pay_in');
SELECT transaction_id, status FROM settle.transactions WHERE transaction_id = 'x5';
RESET settle.rail_timeout;

------------------------------------------------------------------------
-- 5. Acknowledgements that cannot be taken
------------------------------------------------------------------------
SELECT settle_rail_confirm(999); -- unknown_batch
SELECT settle_rail_confirm(1); -- already_confirmed
SELECT format('SELECT settle_rail_fail(%s, %L) -- already_voided', b('x_b', 'pay_in'), 'again') \gexec

------------------------------------------------------------------------
-- 6. Invariants: the ledger balances, pending amounts are all released or
--    still backed by reservations, no account below its limit.
------------------------------------------------------------------------
SELECT journal_id, currency, sum(amount_minor) FROM settle.ledger GROUP BY 1, 2 HAVING sum(amount_minor) <> 0;
SELECT batch_id, sum(amount_minor) FROM settle.ledger WHERE batch_id IS NOT NULL GROUP BY 1 HAVING sum(amount_minor) <> 0;
SELECT a.account_id FROM settle.account a
  LEFT JOIN (SELECT account_id, sum(amount) s FROM settle.ledger_entry GROUP BY 1) e USING (account_id)
 WHERE a.balance <> coalesce(e.s, 0);
SELECT account_id FROM settle.account WHERE kind = 'customer' AND balance - pending_debit < -lower_limit;
SELECT * FROM money;
DELETE FROM settle.reservation; -- delete_reservations
-- replay from the event log alone (a posted cycle, a voided one, retries) equals the state
SELECT count(*) FILTER (WHERE field = 'balance') AS balances, count(*) FILTER (WHERE entity = 'journal') AS postings,
       count(*) FILTER (WHERE NOT equal) AS different
  FROM settle_replay(false);
SELECT * FROM settle_replay();

------------------------------------------------------------------------
-- 7. Calendar jobs
------------------------------------------------------------------------
SELECT settle_end_of_day('2026-11-25') AS snapshot_rows;
SELECT settle_end_of_day('2026-11-25') AS again_same_day;
SELECT account_id, balance FROM settle.balance_snapshot WHERE business_date = '2026-11-25' AND account_id LIKE 'x\_%' ORDER BY 1;
-- retention releases the keys of payments that ended before the window
SELECT settle_purge_idempotency_keys('1 hour') AS released_none;
SELECT settle_purge_idempotency_keys('0 seconds') AS released;
SELECT count(*) AS keys_left FROM settle.payment WHERE idempotency_key LIKE 'xk%';
-- a client retrying after the window is told the transaction_id is taken
SELECT settle_submit('x1', 60, 'USD', 'USD', 'x_a_usd', 'x_b_usd', 'x_b', 'xk1'); -- retry_after_window
SELECT settle_schedule_jobs(); -- without_pg_cron

\c contrib_regression
DROP DATABASE settle_executor;
