-- Two-phase settlement semantics (issue #16): reservations follow the
-- netted liquidity rule (item 7), a confirmed pay-in of a voided cycle is
-- kept as the payer's funding (item 8), final outcomes never flip (item 11;
-- the racing acknowledgements are in test/isolation/specs/ack_race.spec).
-- Own database.
CREATE DATABASE settle_two_phase;
\c settle_two_phase
CREATE EXTENSION settle;
-- errors are recorded by pg_regress: only their SQLSTATE, which is what
-- these tests check (the codes are settle's public interface, docs/ERRORS.md)
\set VERBOSITY sqlstate
CREATE FUNCTION b(participant text, dir text) RETURNS bigint LANGUAGE sql AS
  'SELECT max(batch_id) FROM settle.batch WHERE participant_id = participant AND direction = dir';
CREATE VIEW money AS
    SELECT account_id, balance, pending_debit, pending_credit, available
      FROM settle.accounts WHERE kind = 'customer' ORDER BY account_id;

------------------------------------------------------------------------
-- Item 7. The issue's case, direct then two-phase: a_usd 50, c_usd 60,
-- b_usd 0; a -> b 100, c -> a 60.  a's net is -40, which fits its 50.
-- Direct mode settles both.  Two-phase used to reserve a's gross 100 and
-- fail the whole cycle at stage "reserving" (account_within_limit), every
-- round; now a reserves its net 40, c its 60, b's net 100 is pending
-- credit, and the confirmations post exactly what direct mode posts.
------------------------------------------------------------------------
SELECT settle_create_participant(p) FROM unnest(ARRAY['d_a', 'd_b', 'd_c', 't_a', 't_b', 't_c']) p;
SELECT settle_create_account('d_a_usd', 'd_a', 'USD', opening_balance => 50),
       settle_create_account('d_b_usd', 'd_b', 'USD'),
       settle_create_account('d_c_usd', 'd_c', 'USD', opening_balance => 60),
       settle_create_account('t_a_usd', 't_a', 'USD', opening_balance => 50),
       settle_create_account('t_b_usd', 't_b', 'USD'),
       settle_create_account('t_c_usd', 't_c', 'USD', opening_balance => 60);
SELECT status FROM settle_submit('d1', 100, 'USD', 'USD', 'd_a_usd', 'd_b_usd', 'd_b', 'dk1');
SELECT status FROM settle_submit('d2', 60, 'USD', 'USD', 'd_c_usd', 'd_a_usd', 'd_a', 'dk2');
SELECT considered, settled FROM settle_run_cycle();
SET settle.two_phase = on;
SET settle.rail_backoff = '1h';
SET settle.rail_max_attempts = 1;
SELECT status FROM settle_submit('t1', 100, 'USD', 'USD', 't_a_usd', 't_b_usd', 't_b', 'tk1');
SELECT status FROM settle_submit('t2', 60, 'USD', 'USD', 't_c_usd', 't_a_usd', 't_a', 'tk2');
SELECT considered, settled FROM settle_run_cycle();
SELECT * FROM money WHERE account_id LIKE 't%';
SELECT count(*) AS differences FROM settle_replay();
SELECT participant_id, direction, amount FROM settle_rail_fetch() ORDER BY 1;
SELECT settle_rail_confirm(b('t_a', 'pay_in')), settle_rail_confirm(b('t_c', 'pay_in'));
SELECT transaction_id, status FROM settle.transactions WHERE transaction_id IN ('d1', 'd2', 't1', 't2') ORDER BY 1;
-- the same balances as direct mode
SELECT substr(account_id, 3) AS account, string_agg(account_id || ' ' || balance, ', ' ORDER BY account_id) AS balances
  FROM settle.accounts WHERE account_id ~ '^[dt]_' GROUP BY 1 ORDER BY 1;
SELECT * FROM money WHERE account_id LIKE 't%';
SELECT participant_id, direction, amount FROM settle_rail_fetch();
SELECT settle_rail_confirm(b('t_b', 'pay_out'));

-- A ring with no liquidity at all (r_a -> r_b -> r_c -> r_a, 100 each):
-- every net is 0, nothing is reserved, no wire for the ring, as in direct
-- mode (before: the first debit of 100 broke account_within_limit and the
-- cycle failed).  A funded payment in the same cycle (t_b -> t_c 5) has
-- the cycle's only pay-in; its confirmation posts the ring with it.
SELECT settle_create_participant(p) FROM unnest(ARRAY['r_a', 'r_b', 'r_c']) p;
SELECT settle_create_account(p || '_usd', p, 'USD') FROM unnest(ARRAY['r_a', 'r_b', 'r_c']) p;
SELECT status FROM settle_submit('ring1', 100, 'USD', 'USD', 'r_a_usd', 'r_b_usd', 'r_b', 'ringk1');
SELECT status FROM settle_submit('ring2', 100, 'USD', 'USD', 'r_b_usd', 'r_c_usd', 'r_c', 'ringk2');
SELECT status FROM settle_submit('ring3', 100, 'USD', 'USD', 'r_c_usd', 'r_a_usd', 'r_a', 'ringk3');
SELECT status FROM settle_submit('fund1', 5, 'USD', 'USD', 't_b_usd', 't_c_usd', 't_c', 'fundk1');
SELECT considered, settled, batches, wires FROM settle_run_cycle();
SELECT transaction_id, status FROM settle.transactions WHERE transaction_id LIKE 'ring%' OR transaction_id = 'fund1' ORDER BY 1;
SELECT participant_id, direction, status FROM settle.batches WHERE participant_id LIKE 'r\_%' ORDER BY 1;
SELECT * FROM money WHERE account_id LIKE 'r%';
SELECT participant_id, direction, amount FROM settle_rail_fetch() ORDER BY 1;
SELECT settle_rail_confirm(b('t_b', 'pay_in'));
SELECT transaction_id, status FROM settle.transactions WHERE transaction_id LIKE 'ring%' OR transaction_id = 'fund1' ORDER BY 1;
SELECT participant_id, direction, amount FROM settle_rail_fetch() ORDER BY 1;
SELECT settle_rail_confirm(b('t_c', 'pay_out'));
SELECT count(*) AS differences FROM settle_replay();
SELECT count(*) AS problems FROM settle_verify();

------------------------------------------------------------------------
-- Item 8. A confirmed pay-in, then the cycle is voided.  v_x pays v_z 30,
-- v_y pays v_z 40: two pay-ins (v_x 30, v_y 40), one pay-out (v_z 70).
-- v_x's pay-in is confirmed (the operator has its 30), v_y's fails for
-- good: the cycle is voided, v_y's payment fails, v_x's is requeued.  The
-- 30 received is kept as v_x's funding: a funding journal (_external.USD
-- -30, v_x_usd +30), an account 'funded' event, the batch 'retained'.
-- Before, the batch stayed 'confirmed' and nothing recorded the money.
------------------------------------------------------------------------
SELECT settle_create_participant(p) FROM unnest(ARRAY['v_x', 'v_y', 'v_z']) p;
SELECT settle_create_account('v_x_usd', 'v_x', 'USD', opening_balance => 100),
       settle_create_account('v_y_usd', 'v_y', 'USD', opening_balance => 100),
       settle_create_account('v_z_usd', 'v_z', 'USD');
SELECT status FROM settle_submit('v1', 30, 'USD', 'USD', 'v_x_usd', 'v_z_usd', 'v_z', 'vk1');
SELECT status FROM settle_submit('v2', 40, 'USD', 'USD', 'v_y_usd', 'v_z_usd', 'v_z', 'vk2');
SELECT considered, settled FROM settle_run_cycle();
SELECT participant_id, direction, amount FROM settle_rail_fetch() ORDER BY 1;
SELECT settle_rail_confirm(b('v_x', 'pay_in'), 'RAIL-X');
SELECT settle_rail_fail(b('v_y', 'pay_in'), 'account closed at the bank', false);
SELECT participant_id, direction, status, net_amount FROM settle.batches WHERE participant_id LIKE 'v\_%' ORDER BY 1;
SELECT transaction_id, status FROM settle.transactions WHERE transaction_id IN ('v1', 'v2') ORDER BY 1;
SELECT * FROM money WHERE account_id LIKE 'v%';
SELECT j.kind, j.reference, l.account_id, l.amount FROM settle.ledger l JOIN settle.journal j USING (journal_id)
 WHERE j.reference LIKE 'pay-in batch%' ORDER BY l.entry_id;
SELECT e.entity, e.event_type, e.from_status, e.to_status, e.details - 'postings' - 'journal_id' - 'batch_id' - 'cycle_id' AS details
  FROM settle.events e
 WHERE (e.entity = 'batch' AND e.entity_id = b('v_x', 'pay_in')::text AND e.event_type = 'retained')
    OR (e.entity = 'account' AND e.entity_id = 'v_x_usd' AND e.event_type = 'funded')
 ORDER BY e.event_id;
-- (before, replay also expected the requeued payment in the voided cycle)
SELECT * FROM settle_replay();
SELECT count(*) AS problems FROM settle_verify();
-- the requeued payment settles in the next cycle (a new pay-in of 30; v_x's
-- balance holds the 30 it sent for the voided one)
SELECT considered, settled FROM settle_run_cycle();
SELECT participant_id, direction, amount FROM settle_rail_fetch() ORDER BY 1;
SELECT settle_rail_confirm(b('v_x', 'pay_in'));
SELECT transaction_id, status FROM settle.transactions WHERE transaction_id IN ('v1', 'v2') ORDER BY 1;
SELECT * FROM money WHERE account_id LIKE 'v%';

------------------------------------------------------------------------
-- Item 11. A final outcome never flips.  v2 failed (its payer defaulted):
-- a late confirmation of its voided batch is refused (SE121), a retry of it
-- returns 'failed', a cycle does not take it, and no UPDATE can make it
-- settled (SE113); an expired payment the same.
------------------------------------------------------------------------
SELECT settle_rail_confirm(b('v_y', 'pay_in')) AS late_confirmation;
SELECT status, replay FROM settle_submit('v2', 40, 'USD', 'USD', 'v_y_usd', 'v_z_usd', 'v_z', 'vk2');
SELECT count(*) AS cycles FROM settle_run_cycle();
UPDATE settle.payment SET status = 'settled' WHERE transaction_id = 'v2'; -- failed_to_settled
UPDATE settle.payment SET status = 'queued' WHERE transaction_id = 'v1'; -- settled_to_queued
SELECT status FROM settle_submit('x1', 1, 'USD', 'USD', 'v_z_usd', 'v_x_usd', 'v_x', 'xk1', deadline => clock_timestamp() + interval '200 milliseconds');
SELECT pg_sleep(0.25);
SELECT expired FROM settle_run_cycle();
UPDATE settle.payment SET status = 'queued' WHERE transaction_id = 'x1'; -- expired_to_queued
SELECT status, replay FROM settle_submit('x1', 1, 'USD', 'USD', 'v_z_usd', 'v_x_usd', 'v_x', 'xk1',
                                         deadline => (SELECT deadline FROM settle.payment WHERE transaction_id = 'x1'));
SELECT transaction_id, status FROM settle.transactions WHERE transaction_id IN ('v1', 'v2', 'x1') ORDER BY 1;

\c contrib_regression
DROP DATABASE settle_two_phase;
