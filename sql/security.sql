-- Roles, privileges and row-level security.  Runs in its own database; the
-- roles are cluster-wide, so they are dropped at the end.
CREATE DATABASE settle_security;
\c settle_security
CREATE EXTENSION settle;
-- errors are recorded by pg_regress: only their SQLSTATE, which is what
-- these tests check (the codes are settle's public interface, docs/ERRORS.md)
\set VERBOSITY sqlstate

-- nothing is granted to PUBLIC
SELECT count(*) AS public_functions FROM pg_proc p
 WHERE (p.pronamespace = 'settle'::regnamespace OR p.proname LIKE 'settle\_%')
   AND has_function_privilege('public', p.oid, 'EXECUTE');
SELECT count(*) AS public_tables FROM pg_class c
 WHERE c.relnamespace = 'settle'::regnamespace AND c.relkind IN ('r', 'v')
   AND has_table_privilege('public', c.oid, 'SELECT');
-- every SECURITY DEFINER function pins its search_path
SELECT p.proname FROM pg_proc p
 WHERE (p.pronamespace = 'settle'::regnamespace OR p.proname LIKE 'settle\_%') AND p.prosecdef
   AND NOT EXISTS (SELECT 1 FROM unnest(p.proconfig) c WHERE c LIKE 'search_path=%');
SELECT count(*) > 5 AS definer_functions FROM pg_proc p WHERE p.proname LIKE 'settle\_%' AND p.prosecdef;
-- every SQL and PL/pgSQL function pins it too, but for the four the planner
-- must inline (a SET clause prevents inlining): they run inside pinned callers;
-- and settle_archive_all, a procedure that commits between slices (a SET
-- clause forbids COMMIT): every name in it is schema-qualified
SELECT p.oid::regprocedure AS unpinned FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
 WHERE (p.pronamespace = 'settle'::regnamespace OR p.proname LIKE 'settle\_%') AND l.lanname IN ('sql', 'plpgsql')
   AND NOT EXISTS (SELECT 1 FROM unnest(p.proconfig) c WHERE c LIKE 'search_path=%')
 ORDER BY p.oid::regprocedure::text;

-- two participants, their logins, an auditor, an operator and a stranger
SELECT settle_create_participant('sec_a'), settle_create_participant('sec_b');
SELECT settle_create_account('sec_a_usd', 'sec_a', 'USD', opening_balance => 1000),
       settle_create_account('sec_b_usd', 'sec_b', 'USD', opening_balance => 1000);
CREATE ROLE sec_login_a LOGIN;
CREATE ROLE sec_login_b LOGIN;
CREATE ROLE sec_stranger LOGIN;
CREATE ROLE sec_audit LOGIN IN ROLE settle_auditor;
CREATE ROLE sec_ops LOGIN IN ROLE settle_operator;
CREATE ROLE sec_unmapped LOGIN IN ROLE settle_submitter;
SELECT settle_map_role('sec_login_a', 'sec_a'), settle_map_role('sec_login_b', 'sec_b');
SELECT settle_map_role('no_such_role', 'sec_a'); -- unknown_role

-- participant A submits from its own account; B's account is refused
SET ROLE sec_login_a;
SELECT status, replay FROM settle_submit('sec_t1', 10, 'USD', 'USD', 'sec_a_usd', 'sec_b_usd', 'sec_b', 'sec_k1');
SELECT settle_submit('sec_t2', 10, 'USD', 'USD', 'sec_b_usd', 'sec_a_usd', 'sec_a', 'sec_k2'); -- other_account
SELECT count(*) AS bulk_refused FROM settle_submit_bulk('[{"transaction_id": "sec_t3", "amount": 1, "source_currency": "USD",
  "destination_currency": "USD", "source_account": "sec_b_usd", "destination_account": "sec_a_usd",
  "counterparty_id": "sec_a", "idempotency_key": "sec_k3"}]') WHERE sqlstate = 'SE035';
RESET ROLE;

-- B pays C... B pays A too; and a payment between others that A must not see
SELECT settle_create_participant('sec_c');
SELECT settle_create_account('sec_c_usd', 'sec_c', 'USD');
SET ROLE sec_login_b;
SELECT status FROM settle_submit('sec_t4', 20, 'USD', 'USD', 'sec_b_usd', 'sec_c_usd', 'sec_c', 'sec_k4');
SELECT status FROM settle_submit('sec_t5', 30, 'USD', 'USD', 'sec_b_usd', 'sec_a_usd', 'sec_a', 'sec_k5');
-- B guessing A's key learns nothing about A's payment, and cannot replay it;
-- keys and transaction ids are B's own: the same key or id is a new payment of B
SELECT settle_submit('sec_t1', 10, 'USD', 'USD', 'sec_a_usd', 'sec_b_usd', 'sec_b', 'sec_k1'); -- replay_of_other
SELECT status FROM settle_submit('sec_x', 1, 'USD', 'USD', 'sec_b_usd', 'sec_c_usd', 'sec_c', 'sec_k1'); -- key_of_other
RESET ROLE;
SELECT settled FROM settle_run_cycle();

-- what each participant sees
SET ROLE sec_login_a;
SELECT transaction_id, status FROM settle.transactions ORDER BY 1;
SELECT account_id, balance FROM settle.accounts ORDER BY 1;
SELECT account_id, amount FROM settle.ledger ORDER BY entry_id;
SELECT participant_id, currency FROM settle.batches ORDER BY 1;
SELECT count(*) AS own_events FROM settle.events WHERE entity = 'payment';
SELECT * FROM settle_payment_status(transaction_id => 'sec_t4');
-- nor can A touch anything directly or call operator functions
SELECT * FROM settle.cycles; -- cycles
UPDATE settle.account SET balance = balance + 1000000 WHERE account_id = 'sec_a_usd'; -- update_balance
INSERT INTO settle.ledger_entry (journal_id, account_id, currency, amount) VALUES (1, 'sec_a_usd', 'USD', 100); -- insert_ledger
DELETE FROM settle.payment; -- delete_payments
SELECT settle_create_participant('sec_evil'); -- create_participant
SELECT settle_fund_account('sec_a_usd', 1000000); -- fund_self
SELECT settle_run_cycle(); -- run_cycle
SELECT settle_map_role('sec_login_a', 'sec_b'); -- remap_self
SELECT settle._run_cycle('manual'); -- internal_cycle
RESET ROLE;

SET ROLE sec_login_b;
SELECT transaction_id, status FROM settle.transactions ORDER BY 1;
SELECT account_id FROM settle.accounts ORDER BY 1;
RESET ROLE;

-- a submitter with no participant mapping submits nothing
SET ROLE sec_unmapped;
SELECT settle_submit('sec_t6', 1, 'USD', 'USD', 'sec_a_usd', 'sec_b_usd', 'sec_b', 'sec_k6'); -- unmapped
SELECT count(*) AS unmapped_sees FROM settle.transactions;
RESET ROLE;

-- a role with no settle role at all cannot even call intake or read
SET ROLE sec_stranger;
SELECT settle_submit('sec_t7', 1, 'USD', 'USD', 'sec_a_usd', 'sec_b_usd', 'sec_b', 'sec_k7'); -- stranger_submit
SELECT count(*) FROM settle.transactions; -- stranger_read
RESET ROLE;

-- the auditor reads everything and changes nothing
SET ROLE sec_audit;
SELECT count(*) AS auditor_sees_payments FROM settle.transactions;
SELECT count(*) > 0 AS auditor_sees_cycles FROM settle.cycles;
SELECT settle_submit('sec_t8', 1, 'USD', 'USD', 'sec_a_usd', 'sec_b_usd', 'sec_b', 'sec_k8'); -- auditor_submit
UPDATE settle.payment SET status = 'settled'; -- auditor_update
RESET ROLE;

-- the operator manages reference data, pays from any account, runs cycles
SET ROLE sec_ops;
SELECT settle_create_participant('sec_d');
SELECT status FROM settle_submit('sec_t9', 5, 'USD', 'USD', 'sec_a_usd', 'sec_c_usd', 'sec_c', 'sec_k9');
SELECT settled FROM settle_run_cycle();
SELECT count(*) AS operator_sees FROM settle.transactions;
RESET ROLE;

-- search_path tricks: a submitter's own '=' operator for text, first on its
-- search_path, is never used by settle's functions (their search_path is pinned)
CREATE SCHEMA sec_evil AUTHORIZATION sec_login_a;
SET ROLE sec_login_a;
CREATE TABLE sec_evil.calls (n int);
CREATE FUNCTION sec_evil.always_true(text, text) RETURNS boolean LANGUAGE plpgsql AS
  'BEGIN INSERT INTO sec_evil.calls VALUES (1); RETURN true; END';
CREATE OPERATOR sec_evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = sec_evil.always_true);
SET search_path = sec_evil, public, pg_catalog;
SELECT status, replay FROM settle_submit('sec_t10', 1, 'USD', 'USD', 'sec_a_usd', 'sec_b_usd', 'sec_b', 'sec_k10');
SELECT settle_submit('sec_t11', 1, 'USD', 'USD', 'sec_b_usd', 'sec_a_usd', 'sec_a', 'sec_k11'); -- still_refused
SELECT count(*) AS evil_calls FROM sec_evil.calls;
RESET search_path;
RESET ROLE;

------------------------------------------------------------------------
-- Participant isolation (issue: security round 2)
------------------------------------------------------------------------
SELECT settle_create_account('sec_b_eur', 'sec_b', 'EUR');
SELECT settle_create_account('sec_b_frozen', 'sec_b', 'USD');
SELECT settle_set_account_status('sec_b_frozen', 'frozen');
SET ROLE sec_login_a;
-- keys and ids are scoped per participant: B cannot squat A's next ones
SELECT status, replay FROM settle_submit('sec_next', 1, 'USD', 'USD', 'sec_a_usd', 'sec_b_usd', 'sec_b', 'sec_knext');
RESET ROLE;
SET ROLE sec_login_b;
SELECT status, replay FROM settle_submit('sec_next2', 1, 'USD', 'USD', 'sec_b_usd', 'sec_a_usd', 'sec_a', 'sec_knext2');
RESET ROLE;
SET ROLE sec_login_a;
-- A's "next" id and key are free for A although B used the same strings
SELECT status, replay FROM settle_submit('sec_next2', 1, 'USD', 'USD', 'sec_a_usd', 'sec_b_usd', 'sec_b', 'sec_knext2');
-- a retry of A's own is still a replay, and a different payment under A's key a conflict
SELECT status, replay FROM settle_submit('sec_next', 1, 'USD', 'USD', 'sec_a_usd', 'sec_b_usd', 'sec_b', 'sec_knext');
SELECT settle_submit('sec_next', 2, 'USD', 'USD', 'sec_a_usd', 'sec_b_usd', 'sec_b', 'sec_knext'); -- own_conflict
SELECT settle_submit('sec_next', 2, 'USD', 'USD', 'sec_a_usd', 'sec_b_usd', 'sec_b', 'sec_kother'); -- own_id_taken
-- accounts A cannot read: one refusal, no detail, whatever is wrong with them
SELECT settle_submit('sec_u1', 1, 'USD', 'USD', 'sec_a_usd', 'sec_nowhere', 'sec_b', 'sec_ku1'); -- dst_missing
SELECT settle_submit('sec_u2', 1, 'USD', 'USD', 'sec_a_usd', 'sec_b_frozen', 'sec_b', 'sec_ku2'); -- dst_frozen
SELECT settle_submit('sec_u3', 1, 'USD', 'USD', 'sec_a_usd', 'sec_b_eur', 'sec_b', 'sec_ku3'); -- dst_currency
SELECT settle_submit('sec_u4', 1, 'USD', 'USD', 'sec_a_usd', 'sec_c_usd', 'sec_b', 'sec_ku4'); -- dst_other_owner
SELECT settle_submit('sec_u5', 1, 'USD', 'USD', 'sec_nowhere', 'sec_b_usd', 'sec_b', 'sec_ku5'); -- src_missing
SELECT settle_submit('sec_u6', 1, 'USD', 'USD', 'sec_b_usd', 'sec_a_usd', 'sec_a', 'sec_ku6'); -- src_other
-- the same call with full details for an operator
RESET ROLE;
SET ROLE sec_ops;
SELECT settle_submit('sec_u2', 1, 'USD', 'USD', 'sec_a_usd', 'sec_b_frozen', 'sec_b', 'sec_ku2'); -- operator_sees_why
RESET ROLE;
-- journals: a participant sees those that touch its accounts only
SELECT settle_fund_account('sec_c_usd', 5, 'C-FUNDING-REF-SECRET');
SET ROLE sec_login_a;
SELECT count(*) AS journals_without_own_entries FROM settle.journal j
 WHERE NOT EXISTS (SELECT 1 FROM settle.ledger_entry e JOIN settle.account a USING (account_id)
                    WHERE e.journal_id = j.journal_id AND a.participant_id = 'sec_a');
SELECT count(*) AS sees_c_funding FROM settle.journal WHERE reference = 'C-FUNDING-REF-SECRET';
SELECT count(*) > 0 AS sees_own_journals FROM settle.journal;
-- the payee does not see the payer's idempotency key
SELECT transaction_id, source_participant, idempotency_key FROM settle.transactions
 WHERE transaction_id IN ('sec_t5', 'sec_t1') ORDER BY 1;
SELECT count(*) AS found_by_payers_key FROM settle_payment_status(idempotency_key => 'sec_k5');
RESET ROLE;
-- a mapping follows the role, not its name: dropped and created again, the
-- login is not mapped; DROP ROLE removed the mapping, with an event
CREATE ROLE sec_reborn LOGIN;
SELECT settle_map_role('sec_reborn', 'sec_a');
SELECT role_name, participant_id FROM settle.participant_role WHERE role_name = 'sec_reborn';
DROP ROLE sec_reborn;
SELECT count(*) AS mappings_left FROM settle.participant_role WHERE role_name = 'sec_reborn';
SELECT details->>'role' AS role, details->>'reason' AS reason FROM settle.events
 WHERE event_type = 'role_unmapped' ORDER BY event_id;
CREATE ROLE sec_reborn LOGIN IN ROLE settle_submitter;
SET ROLE sec_reborn;
SELECT settle_submit('sec_r1', 1, 'USD', 'USD', 'sec_a_usd', 'sec_b_usd', 'sec_b', 'sec_kr1'); -- reborn_submit
SELECT count(*) AS reborn_sees FROM settle.transactions;
RESET ROLE;
DROP ROLE sec_reborn;

------------------------------------------------------------------------
-- Auditors write nothing (issue: security round 2)
------------------------------------------------------------------------
SET ROLE sec_audit;
BEGIN;
SELECT count(*) AS problems FROM settle_verify();
SELECT settle_chain_digest() ? 'ledger_entry' AS digest;
SELECT count(*) AS differences FROM settle_replay();
SELECT pg_current_xact_id_if_assigned() IS NULL AS auditor_wrote_nothing;
COMMIT;
SELECT count(*) FROM settle_seal(); -- auditor_seal
RESET ROLE;
SET ROLE sec_ops;
BEGIN;
SELECT count(*) AS problems FROM settle_verify();
SELECT pg_current_xact_id_if_assigned() IS NOT NULL AS operator_sealed;
COMMIT;
RESET ROLE;

\c contrib_regression
DROP DATABASE settle_security;
DROP ROLE sec_login_a, sec_login_b, sec_stranger, sec_audit, sec_ops, sec_unmapped;
