-- Settlement semantics (issue #16): late retries (item 2), suspension
-- (item 3), stale reference data in one long-lived session (item 4), the
-- meaning of priority (item 6).  Own database.
CREATE DATABASE settle_semantics;
\c settle_semantics
CREATE EXTENSION settle;
-- errors are recorded by pg_regress: only their SQLSTATE, which is what
-- these tests check (the codes are settle's public interface, docs/ERRORS.md)
\set VERBOSITY sqlstate
SELECT settle_create_participant(p) FROM unnest(ARRAY['s_a', 's_b', 's_c']) p;
SELECT settle_create_account(p || '_usd', p, 'USD', opening_balance => 1000) FROM unnest(ARRAY['s_a', 's_b', 's_c']) p;
SELECT settle_create_account('s_z_usd', 's_c', 'USD');

------------------------------------------------------------------------
-- Item 2. A late retry returns the original.  late_1 settles, late_2
-- (no liquidity: s_z has nothing) expires; both deadlines pass; the client
-- retries each with the same key and content: the original payment,
-- replay = true, its current status -- not SE051, which reads as "never
-- accepted".  A different content is still SE060, a new key SE051.
------------------------------------------------------------------------
SELECT clock_timestamp() + interval '1 second' AS dl \gset
SELECT status, replay FROM settle_submit('late_1', 10, 'USD', 'USD', 's_a_usd', 's_b_usd', 's_b', 'late_k1', deadline => :'dl');
SELECT status, replay FROM settle_submit('late_2', 10, 'USD', 'USD', 's_z_usd', 's_b_usd', 's_b', 'late_k2', deadline => :'dl');
SELECT considered, settled FROM settle_run_cycle();
SELECT pg_sleep(greatest(0, extract(epoch FROM :'dl'::timestamptz - clock_timestamp()) + 0.05)::float8);
SELECT count(*) AS cycles, sum(expired) AS expired FROM settle_run_cycle();
SELECT t.transaction_id, s.status, s.replay
  FROM settle_submit('late_1', 10, 'USD', 'USD', 's_a_usd', 's_b_usd', 's_b', 'late_k1', deadline => :'dl') s,
       settle.transactions t WHERE t.payment_id = s.payment_id;
SELECT t.transaction_id, s.status, s.replay
  FROM settle_submit('late_2', 10, 'USD', 'USD', 's_z_usd', 's_b_usd', 's_b', 'late_k2', deadline => :'dl') s,
       settle.transactions t WHERE t.payment_id = s.payment_id;
-- the bulk path too
SELECT ordinal, status, replay, sqlstate FROM settle_submit_bulk(jsonb_build_array(
    jsonb_build_object('transaction_id', 'late_1', 'amount', 10, 'source_currency', 'USD', 'destination_currency', 'USD',
                       'source_account', 's_a_usd', 'destination_account', 's_b_usd', 'counterparty_id', 's_b',
                       'idempotency_key', 'late_k1', 'deadline', :'dl'::timestamptz),
    jsonb_build_object('transaction_id', 'late_3', 'amount', 10, 'source_currency', 'USD', 'destination_currency', 'USD',
                       'source_account', 's_a_usd', 'destination_account', 's_b_usd', 'counterparty_id', 's_b',
                       'idempotency_key', 'late_k3', 'deadline', :'dl'::timestamptz)));
SELECT settle_submit('late_1', 11, 'USD', 'USD', 's_a_usd', 's_b_usd', 's_b', 'late_k1', deadline => :'dl'); -- other_content
SELECT settle_submit('late_4', 10, 'USD', 'USD', 's_a_usd', 's_b_usd', 's_b', 'late_k4', deadline => :'dl'); -- new_key
SELECT count(*) AS written FROM settle.payment WHERE transaction_id IN ('late_3', 'late_4');

------------------------------------------------------------------------
-- Item 6. Priority: 9 is the most urgent.  s_c can pay one of two due
-- payments of 600.00; the one with priority 9 settles, priority 1 waits.
------------------------------------------------------------------------
SELECT obj_description('settle.payment_priority'::regtype, 'pg_type') AS priority_means;
SELECT status FROM settle_submit('prio_1', 600, 'USD', 'USD', 's_c_usd', 's_a_usd', 's_a', 'prio_k1', priority => 1);
SELECT status FROM settle_submit('prio_9', 600, 'USD', 'USD', 's_c_usd', 's_b_usd', 's_b', 'prio_k9', priority => 9);
SELECT considered, settled FROM settle_run_cycle();
SELECT transaction_id, priority, status FROM settle.transactions WHERE transaction_id LIKE 'prio%' ORDER BY 1;
\set VERBOSITY default
SELECT settle_submit('prio_x', 1, 'USD', 'USD', 's_c_usd', 's_a_usd', 's_a', 'prio_kx', priority => 10);
\set VERBOSITY sqlstate

------------------------------------------------------------------------
-- Item 3. Suspension.  Queued: s_a -> s_b 10 (s_a pays), s_c -> s_a 5
-- (s_a is paid), s_c -> s_b 7 (s_a not involved), all before any cycle.
-- Suspending
-- s_a holds its payments at once, as payer and (settle.suspension_holds_payee,
-- on by default) as payee, with the reason; the next cycle settles only the
-- third.  Reactivating s_a releases nothing: an operator releases one
-- (it settles) and cancels the other (failed, with the reason).
------------------------------------------------------------------------
SELECT status FROM settle_submit('sus_1', 10, 'USD', 'USD', 's_a_usd', 's_b_usd', 's_b', 'sus_k1');
SELECT status FROM settle_submit('sus_2', 5, 'USD', 'USD', 's_c_usd', 's_a_usd', 's_a', 'sus_k2');
SELECT status FROM settle_submit('sus_3', 7, 'USD', 'USD', 's_c_usd', 's_b_usd', 's_b', 'sus_k3');
SELECT settle_set_participant_status('s_a', 'suspended');
SELECT transaction_id, status, hold_reason FROM settle.transactions WHERE transaction_id LIKE 'sus%' ORDER BY 1;
SELECT t.transaction_id, e.event_type, e.from_status, e.to_status, e.details FROM settle.events e
  JOIN settle.transactions t ON e.entity = 'payment' AND e.entity_id = t.payment_id::text
 WHERE t.transaction_id LIKE 'sus%' AND e.event_type = 'held' ORDER BY 1;
SELECT considered, settled, unsettled FROM settle_run_cycle();
SELECT transaction_id, status FROM settle.transactions WHERE transaction_id LIKE 'sus%' ORDER BY 1;
-- (the third: prio_1, s_c -> s_a, waiting since item 6, held as s_a is its payee)
SELECT labels, value FROM settle.metrics WHERE metric = 'settle_queue_payments' AND labels->>'status' = 'held';
-- released while s_a is still suspended: refused, the cycle would hold it again
SELECT settle_release_payment(payment_id) AS still_suspended FROM settle.payment WHERE transaction_id = 'sus_1';
SELECT settle_set_participant_status('s_a', 'active');
SELECT count(*) FILTER (WHERE status = 'held') AS still_held FROM settle.payment WHERE transaction_id LIKE 'sus%';
SELECT settle_release_payment(payment_id) FROM settle.payment WHERE transaction_id = 'sus_1';
SELECT settle_cancel_payment(payment_id, 'member in default: the payer is told') FROM settle.payment WHERE transaction_id = 'sus_2';
SELECT settle_cancel_payment(payment_id, 'again') AS cancel_twice FROM settle.payment WHERE transaction_id = 'sus_2';
SELECT considered, settled FROM settle_run_cycle();
SELECT transaction_id, status, hold_reason FROM settle.transactions WHERE transaction_id LIKE 'sus%' ORDER BY 1;
SELECT e.event_type, e.from_status, e.to_status, e.details - 'by' AS details FROM settle.events e
  JOIN settle.payment p ON e.entity = 'payment' AND e.entity_id = p.payment_id::text
 WHERE p.transaction_id IN ('sus_1', 'sus_2') ORDER BY e.event_id;
-- the scheme's choice: with settle.suspension_holds_payee off, payments to a
-- suspended participant still settle; from it, never
SET settle.suspension_holds_payee = off;
SELECT status FROM settle_submit('sus_4', 3, 'USD', 'USD', 's_c_usd', 's_a_usd', 's_a', 'sus_k4');
SELECT status FROM settle_submit('sus_5', 3, 'USD', 'USD', 's_a_usd', 's_c_usd', 's_c', 'sus_k5');
SELECT settle_set_participant_status('s_a', 'suspended');
SELECT considered, settled FROM settle_run_cycle();
SELECT transaction_id, status, hold_reason FROM settle.transactions WHERE transaction_id IN ('sus_4', 'sus_5') ORDER BY 1;
RESET settle.suspension_holds_payee;
SELECT settle_set_participant_status('s_a', 'active');
-- a payment intake accepted while the suspension was committing (the
-- participant's status changed under it): the cycle holds it itself
SELECT status FROM settle_submit('sus_6', 4, 'USD', 'USD', 's_b_usd', 's_c_usd', 's_c', 'sus_k6');
UPDATE settle.participant SET status = 'suspended' WHERE participant_id = 's_b';
SELECT considered, settled, unsettled FROM settle_run_cycle();
SELECT transaction_id, status, hold_reason FROM settle.transactions WHERE transaction_id = 'sus_6';
UPDATE settle.participant SET status = 'active' WHERE participant_id = 's_b';
-- a held payment whose deadline passes expires like a queued one
SELECT clock_timestamp() + interval '300 milliseconds' AS dl2 \gset
SELECT status FROM settle_submit('sus_7', 4, 'USD', 'USD', 's_b_usd', 's_c_usd', 's_c', 'sus_k7', deadline => :'dl2');
SELECT settle_set_participant_status('s_b', 'suspended');
SELECT pg_sleep(greatest(0, extract(epoch FROM :'dl2'::timestamptz - clock_timestamp()) + 0.05)::float8);
SELECT expired FROM settle_run_cycle();
SELECT transaction_id, status FROM settle.transactions WHERE transaction_id = 'sus_7';
SELECT settle_set_participant_status('s_b', 'active');
SELECT count(*) AS differences FROM settle_replay();
SELECT count(*) AS problems FROM settle_verify();

------------------------------------------------------------------------
-- Item 4. Reference data changes reach a long-lived session (this one).
-- Before, intake and settle.to_major kept what they had read for the
-- backend's life.
------------------------------------------------------------------------
SELECT settle_create_account('s_a_eur', 's_a', 'EUR'), settle_create_account('s_b_eur', 's_b', 'EUR');
SELECT settle_set_fx_rate('USD', 'EUR', 0.9) IS NOT NULL AS usd_eur;
SELECT status FROM settle_submit('ref_1', 1, 'USD', 'EUR', 's_a_usd', 's_b_eur', 's_b', 'ref_k1');
-- an operator removes the pair: refused from now on (was accepted)
DELETE FROM settle.fx_rate WHERE base_currency = 'USD' AND quote_currency = 'EUR';
SELECT settle_submit('ref_2', 1, 'USD', 'EUR', 's_a_usd', 's_b_eur', 's_b', 'ref_k2'); -- removed_pair
-- a new pair, the other way round: accepted
SELECT settle_set_fx_rate('EUR', 'USD', 1.1) IS NOT NULL AS eur_usd;
SELECT status FROM settle_submit('ref_3', 1, 'USD', 'EUR', 's_a_usd', 's_b_eur', 's_b', 'ref_k3');
-- a new rate moves the bound of what can be posted at once
SELECT status FROM settle_submit('ref_4', 1000000000000, 'USD', 'EUR', 's_a_usd', 's_b_eur', 's_b', 'ref_k4'); -- before_new_rate
SELECT settle_set_fx_rate('EUR', 'USD', 0.0001) IS NOT NULL AS eur_usd_tiny;
SELECT settle_submit('ref_5', 1000000000000, 'USD', 'EUR', 's_a_usd', 's_b_eur', 's_b', 'ref_k5'); -- after_new_rate
-- settle.to_major follows a currency's change
INSERT INTO settle.currency VALUES ('XTS', 2, 'test currency');
SELECT settle.to_major(12345, 'XTS') AS two_decimals;
UPDATE settle.currency SET exponent = 0 WHERE code = 'XTS';
SELECT settle.to_major(12345, 'XTS') AS no_decimals;
-- DROP and CREATE EXTENSION in the same session: nothing of the old one stays
SET settle.allow_drop = on;  -- the ledger holds entries (SE151 otherwise)
DROP EXTENSION settle CASCADE;
CREATE EXTENSION settle;
SELECT settle.to_major(12345, 'XTS') AS unknown_again;
SELECT settle_create_participant(p) FROM unnest(ARRAY['s_a', 's_b']) p;
SELECT settle_create_account('s_a_usd', 's_a', 'USD', opening_balance => 10), settle_create_account('s_b_eur', 's_b', 'EUR');
SELECT settle_submit('ref_6', 1, 'USD', 'EUR', 's_a_usd', 's_b_eur', 's_b', 'ref_k6'); -- no_rate_in_new_install

\c contrib_regression
DROP DATABASE settle_semantics;
