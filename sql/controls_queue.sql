-- Queue management by the payer (issue #33): change the priority of a
-- queued payment, move it to the front or the back of its priority class,
-- revoke it; the payer only (or an operator), a queued payment only;
-- every change an event.  The optimiser honours the new order.  Own database.
CREATE DATABASE settle_queue;
\c settle_queue
CREATE EXTENSION settle;
\set VERBOSITY sqlstate
CREATE VIEW st AS
    SELECT transaction_id, status, priority FROM settle.transactions ORDER BY transaction_id;
SELECT settle_create_participant(p) FROM unnest(ARRAY['qa', 'qb', 'qc']) p;
SELECT settle_create_account('qa_usd', 'qa', 'USD', opening_balance => 100),
       settle_create_account('qb_usd', 'qb', 'USD', opening_balance => 0),
       settle_create_account('qc_usd', 'qc', 'USD', opening_balance => 100);
CREATE ROLE regress_queue_qa LOGIN IN ROLE settle_submitter;
CREATE ROLE regress_queue_qb LOGIN IN ROLE settle_submitter;
SELECT settle_map_role('regress_queue_qa', 'qa'), settle_map_role('regress_queue_qb', 'qb');
CREATE FUNCTION pid(t text) RETURNS bigint LANGUAGE sql AS
    $$ SELECT payment_id FROM settle.payment WHERE transaction_id = t $$;
GRANT EXECUTE ON FUNCTION pid(text) TO PUBLIC;

------------------------------------------------------------------------
-- Order: qa pays qb 60 twice (a then b, same priority); 100 pays one.
-- Untouched, the older settles (qc's d and e, the control); b moved to
-- the front settles.
------------------------------------------------------------------------
SELECT status FROM settle_submit('d', 60, 'USD', 'USD', 'qc_usd', 'qb_usd', 'qb', 'k4');
SELECT status FROM settle_submit('e', 60, 'USD', 'USD', 'qc_usd', 'qb_usd', 'qb', 'k5');
SET ROLE regress_queue_qa;
SELECT status FROM settle_submit('a', 60, 'USD', 'USD', 'qa_usd', 'qb_usd', 'qb', 'k1');
SELECT status FROM settle_submit('b', 60, 'USD', 'USD', 'qa_usd', 'qb_usd', 'qb', 'k2');
SELECT status FROM settle_submit('c', 10, 'USD', 'USD', 'qa_usd', 'qb_usd', 'qb', 'k3');
SELECT settle_move_payment(pid('b'), 'front');
SELECT settle_move_payment(pid('c'), 'back');
SELECT settle_change_priority(pid('c'), 2);
SELECT settle_move_payment(pid('c'), 'middle');               -- SE184
SELECT settle_change_priority(pid('c'), 10);                  -- SE050
SELECT settle_change_priority(NULL, 3);                       -- SE001
RESET ROLE;
SELECT p.transaction_id, p.queued_since < p.created_at AS moved_ahead, p.queued_since > p.created_at AS moved_back
  FROM settle.payment p ORDER BY 1;
SELECT considered, settled FROM settle_run_cycle();
SELECT * FROM st;

------------------------------------------------------------------------
-- Rights: the payee and strangers cannot change a payment (SE103, as if
-- it did not exist); an operator can; a settled payment cannot (SE182).
------------------------------------------------------------------------
SET ROLE regress_queue_qb;
SELECT settle_change_priority(pid('a'), 9);                   -- SE103
SELECT settle_revoke_payment(pid('a'), 'not mine');           -- SE103
RESET ROLE;
SELECT settle_change_priority(pid('a'), 7);
SET ROLE regress_queue_qa;
SELECT settle_change_priority(pid('b'), 9);                   -- SE182
SELECT settle_revoke_payment(pid('a'), '');                   -- SE001
SELECT settle_revoke_payment(pid('a'), 'sent twice');
SELECT settle_revoke_payment(pid('a'), 'again');              -- SE182
RESET ROLE;
CREATE ROLE regress_queue_nobody LOGIN IN ROLE settle_submitter;
SET ROLE regress_queue_nobody;
SELECT settle_revoke_payment(1, 'x');                         -- SE036
RESET ROLE;
SELECT * FROM st;
-- a retry of the submission is still a replay: it is compared with what was
-- submitted (priority 5), not with the priority its payer set since
SET ROLE regress_queue_qa;
SELECT status, replay FROM settle_submit('c', 10, 'USD', 'USD', 'qa_usd', 'qb_usd', 'qb', 'k3');
SELECT status, replay FROM settle_submit('c', 10, 'USD', 'USD', 'qa_usd', 'qb_usd', 'qb', 'k3', 2); -- SE060
RESET ROLE;
-- a revoked payment never settles
SELECT settle_fund_account('qa_usd', 100, 'top-up') IS NOT NULL AS funded;
SELECT considered, settled FROM settle_run_cycle();
SELECT * FROM st;

-- the priority in force is what the cycle weighs: qc (40 left) pays qb 30
-- twice; the later one raised to 9 settles, the older waits
SELECT status FROM settle_submit('f', 30, 'USD', 'USD', 'qc_usd', 'qb_usd', 'qb', 'k6');
SELECT status FROM settle_submit('g', 30, 'USD', 'USD', 'qc_usd', 'qb_usd', 'qb', 'k7');
SELECT settle_change_priority(pid('g'), 9);
SELECT considered, settled FROM settle_run_cycle();
SELECT * FROM st WHERE transaction_id IN ('f', 'g');

-- every change an event, with who made it
SELECT p.transaction_id, e.event_type, e.from_status, e.to_status,
       e.details - 'queued_since' AS details
  FROM settle.events e JOIN settle.payment p ON p.payment_id::text = e.entity_id
 WHERE e.entity = 'payment' AND e.event_type IN ('priority_changed', 'moved', 'revoked')
 ORDER BY e.event_id;

-- the ledger and the events still verify, and replay
SELECT problem, entity, entity_id FROM settle_verify();
SELECT count(*) AS replay_differences FROM settle_replay();

\c contrib_regression
DROP DATABASE settle_queue;
DROP ROLE regress_queue_qa;
DROP ROLE regress_queue_qb;
DROP ROLE regress_queue_nobody;
