-- Returns and reversals (issue #16, item 9): a return is a new balanced
-- journal that takes back a settled payment's legs (never an UPDATE of the
-- ledger), linked to the original, with its own event, visible in history,
-- replay and verify; an operator returns a payment with a reason, a pay-out
-- that fails for good returns the payments into it; the limit rule holds.
-- Own database.
CREATE DATABASE settle_returns;
\c settle_returns
CREATE EXTENSION settle;
\set VERBOSITY sqlstate
CREATE FUNCTION pid(txn text) RETURNS bigint LANGUAGE sql AS
  'SELECT payment_id FROM settle.payment WHERE transaction_id = txn';
CREATE FUNCTION b(participant text, dir text) RETURNS bigint LANGUAGE sql AS
  'SELECT max(batch_id) FROM settle.batch WHERE participant_id = participant AND direction = dir';
CREATE VIEW money AS
    SELECT account_id, balance, pending_debit, available
      FROM settle.accounts WHERE kind = 'customer' ORDER BY account_id;
-- the whole ledger, per currency: always zero
CREATE VIEW ledger_sum AS
    SELECT currency, sum(amount) AS total FROM settle.ledger_entry GROUP BY currency ORDER BY currency;

SELECT settle_create_participant(p) FROM unnest(ARRAY['ra', 'rb', 'rc']) p;
SELECT settle_create_account('ra_usd', 'ra', 'USD', opening_balance => 500),
       settle_create_account('rb_usd', 'rb', 'USD', opening_balance => 50),
       settle_create_account('rb_eur', 'rb', 'EUR'),
       settle_create_account('rc_usd', 'rc', 'USD', opening_balance => 0, lower_limit => 20);
SELECT settle_set_fx_rate('USD', 'EUR', 0.9) IS NOT NULL AS rate_set;

------------------------------------------------------------------------
-- An operator returns a same-currency payment: two legs, a 'reversal'
-- journal, the payment 'returned', balances back where they were.
------------------------------------------------------------------------
SELECT status FROM settle_submit('r1', 100, 'USD', 'USD', 'ra_usd', 'rb_usd', 'rb', 'rk1');
SELECT status FROM settle_submit('r2', 200, 'USD', 'EUR', 'ra_usd', 'rb_eur', 'rb', 'rk2');
SELECT status FROM settle_submit('r3', 30, 'USD', 'USD', 'rb_usd', 'rc_usd', 'rc', 'rk3');
SELECT considered, settled FROM settle_run_cycle();
SELECT * FROM money;
SELECT settle_return_payment(pid('r1'), 'recalled by the payer: duplicate invoice') > 0 AS journal;
SELECT transaction_id, status FROM settle.transactions ORDER BY 1;
SELECT * FROM money;
SELECT j.kind, j.cycle_id, j.reference, e.account_id, e.amount, e.payment_id = pid('r1') AS of_r1
  FROM settle.journal j JOIN settle.ledger_entry e USING (journal_id)
 WHERE j.kind = 'reversal' ORDER BY e.entry_id;
-- the event links the return to the original journal and carries the postings
SELECT e.event_type, e.from_status, e.to_status, e.details->>'reason' AS reason,
       e.details->>'initiated_by' AS initiated_by,
       (e.details->>'returns_journal')::bigint =
           (SELECT journal_id FROM settle.journal WHERE kind = 'settlement' ORDER BY journal_id LIMIT 1) AS links_original,
       jsonb_array_length(e.details->'postings') AS postings
  FROM settle.event e WHERE e.entity = 'payment' AND e.entity_id = pid('r1')::text AND e.event_type = 'returned';
-- history shows the settlement and the return
SELECT source, what, from_status, to_status, account_id, amount
  FROM settle_payment_history('r1') ORDER BY at, source, id;

------------------------------------------------------------------------
-- Across currencies, at the payment's own rate: the payer gets its 200 USD
-- back, the payee gives back its 180 EUR, the settlement accounts take the
-- two sides; each currency of the journal sums to zero.
------------------------------------------------------------------------
SELECT settle_set_fx_rate('USD', 'EUR', 0.5) IS NOT NULL AS rate_set;
SELECT settle_return_payment(pid('r2'), 'beneficiary account closed') > 0 AS journal;
SELECT e.account_id, e.currency, e.amount
  FROM settle.ledger_entry e JOIN settle.journal j USING (journal_id)
 WHERE j.kind = 'reversal' AND j.reference LIKE 'return of payment ' || pid('r2') || ':%' ORDER BY e.entry_id;
SELECT * FROM ledger_sum;
SELECT * FROM money;

------------------------------------------------------------------------
-- Refusals: a reason is required (SE108), the payment must exist (SE103)
-- and be settled, once (SE106), and the payee's account must stay within
-- its limit (SE107: rc_usd has 30 and a limit of 20; r3 took 30 in, so
-- after rc spends 45 it holds -15, and taking 30 back would leave -45).
------------------------------------------------------------------------
SELECT settle_return_payment(pid('r3'), '  ');
SELECT settle_return_payment(-1, 'no such payment');
SELECT settle_return_payment(pid('r1'), 'again');
SELECT status FROM settle_submit('r4', 45, 'USD', 'USD', 'rc_usd', 'ra_usd', 'ra', 'rk4');
SELECT considered, settled FROM settle_run_cycle();
SELECT status FROM settle_submit('r5', 5, 'USD', 'USD', 'ra_usd', 'rb_usd', 'rb', 'rk5');
SELECT settle_return_payment(pid('r3'), 'would overdraw the payee');
SELECT settle_return_payment(pid('r5'), 'still queued');
SELECT transaction_id, status FROM settle.transactions WHERE transaction_id IN ('r3', 'r5') ORDER BY 1;
-- once returned, nothing flips it back (SE113), whatever the path
UPDATE settle.payment SET status = 'settled' WHERE transaction_id = 'r1';
UPDATE settle.payment SET status = 'returned' WHERE transaction_id = 'r5';
-- the ledger refuses changes; the return did not change any row of it
UPDATE settle.ledger_entry SET amount = amount WHERE payment_id = pid('r1');

-- verify and replay are clean; replay rebuilds the returned status and
-- every balance from the events
SELECT problem, entity, entity_id FROM settle_verify();
SELECT count(*) AS differences FROM settle_replay();
SELECT field, replayed, current FROM settle_replay(false)
 WHERE entity = 'payment' AND entity_id = pid('r1')::text ORDER BY field;

-- verify sees a forged return: a reversal journal without its event, and
-- a returned status without a reversal
BEGIN;
ALTER TABLE settle.journal DISABLE TRIGGER journal_append_only;
ALTER TABLE settle.payment DISABLE TRIGGER payment_outcome_final;
INSERT INTO settle.journal (kind, reference) VALUES ('reversal', 'forged');
UPDATE settle.payment SET status = 'returned' WHERE transaction_id = 'r4';
SELECT problem, entity FROM settle_verify(seal => false) ORDER BY 1, 2;
ROLLBACK;

-- only operators return payments
CREATE ROLE regress_returns_submitter LOGIN IN ROLE settle_submitter;
CREATE ROLE regress_returns_operator LOGIN IN ROLE settle_operator;
SET ROLE regress_returns_submitter;
SELECT settle_return_payment(pid('r4'), 'not mine to return');
RESET ROLE;
SET ROLE regress_returns_operator;
SELECT settle_return_payment((SELECT payment_id FROM settle.payment WHERE transaction_id = 'r4'), 'operator recall') > 0 AS journal;
RESET ROLE;
SELECT transaction_id, status FROM settle.transactions WHERE transaction_id = 'r4';

------------------------------------------------------------------------
-- Two-phase: a pay-out that fails for good.  px pays py 100 and 40, py pays
-- pz 30 in the same cycle: py's net +110 is its pay-out.  The rail fails it
-- for good: the payments into py are returned newest first up to 110 (the
-- 40, then not the 100 which would exceed what is left, 70): the batch is
-- 'failed' with 70 left for the operator.  A second case where returns
-- cover the whole net makes the batch 'returned'.
------------------------------------------------------------------------
SELECT settle_create_participant(p) FROM unnest(ARRAY['px', 'py', 'pz']) p;
SELECT settle_create_account('px_usd', 'px', 'USD', opening_balance => 1000),
       settle_create_account('py_usd', 'py', 'USD'),
       settle_create_account('pz_usd', 'pz', 'USD');
-- r5 settles (direct mode) before the two-phase cycles
SELECT considered, settled FROM settle_run_cycle();
SET settle.two_phase = on;
SET settle.rail_max_attempts = 1;
SELECT status FROM settle_submit('p1', 100, 'USD', 'USD', 'px_usd', 'py_usd', 'py', 'pk1');
SELECT status FROM settle_submit('p2', 40, 'USD', 'USD', 'px_usd', 'py_usd', 'py', 'pk2');
SELECT status FROM settle_submit('p3', 30, 'USD', 'USD', 'py_usd', 'pz_usd', 'pz', 'pk3');
SELECT considered, settled FROM settle_run_cycle();
SELECT participant_id, direction, amount FROM settle_rail_fetch() ORDER BY 1;
SELECT settle_rail_confirm(b('px', 'pay_in'));
SELECT participant_id, direction, amount FROM settle_rail_fetch() ORDER BY 1;
SELECT settle_rail_fail(b('py', 'pay_out'), 'beneficiary bank rejects: account closed', retryable => false);
SELECT transaction_id, status FROM settle.transactions WHERE transaction_id IN ('p1', 'p2', 'p3') ORDER BY 1;
SELECT participant_id, direction, status, net_amount FROM settle.batch
 WHERE batch_id IN (b('py', 'pay_out'), b('pz', 'pay_out')) ORDER BY 1;
SELECT event_type, details->'returned_payments' = to_jsonb(ARRAY[pid('p2')]) AS returned_p2,
       details->>'returned' AS returned, details->>'not_returned' AS not_returned
  FROM settle.event WHERE entity = 'batch' AND entity_id = b('py', 'pay_out')::text ORDER BY event_id DESC LIMIT 1;
SELECT * FROM money WHERE account_id LIKE 'p%';
-- returns cover a whole net: qa pays qb 25, nothing else; qb's pay-out of 25 fails
SELECT settle_create_participant(p) FROM unnest(ARRAY['qa', 'qb']) p;
SELECT settle_create_account('qa_usd', 'qa', 'USD', opening_balance => 100),
       settle_create_account('qb_usd', 'qb', 'USD');
SELECT status FROM settle_submit('q1', 25, 'USD', 'USD', 'qa_usd', 'qb_usd', 'qb', 'qk1');
SELECT considered, settled FROM settle_run_cycle();
SELECT count(*) FROM settle_rail_fetch();
SELECT settle_rail_confirm(b('qa', 'pay_in'));
SELECT count(*) FROM settle_rail_fetch();
SELECT settle_rail_fail(b('qb', 'pay_out'), 'no such beneficiary', retryable => false);
SELECT status FROM settle.batch WHERE batch_id = b('qb', 'pay_out');
SELECT transaction_id, status FROM settle.transactions WHERE transaction_id = 'q1';
SELECT * FROM money WHERE account_id LIKE 'q%';
-- a returned batch takes no more acknowledgements (SE121)
SELECT settle_rail_confirm(b('qb', 'pay_out'));
SELECT * FROM ledger_sum;
SELECT problem, entity, entity_id FROM settle_verify();
SELECT count(*) AS differences FROM settle_replay();

\c postgres
DROP DATABASE settle_returns;
DROP ROLE regress_returns_submitter, regress_returns_operator;
