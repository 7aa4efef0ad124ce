-- The settlement cycle, on cases small enough to check by hand.  Runs in
-- its own database so that the queue holds only these payments.
CREATE DATABASE settle_engine;
\c settle_engine
CREATE EXTENSION settle;
-- errors are recorded by pg_regress: only their SQLSTATE, which is what
-- these tests check (the codes are settle's public interface, docs/ERRORS.md)
\set VERBOSITY sqlstate
SELECT settle_set_wire_fee('USD', 25), settle_set_wire_fee('EUR', 20), settle_set_wire_fee('GBP', 18);

-- an empty queue: no cycle is recorded
SELECT count(*) AS cycles FROM settle_run_cycle();

------------------------------------------------------------------------
-- 1. Gridlock: A -> B -> C -> A, 100.00 USD each, every balance 0, no
--    overdraft.  One by one nothing fits (FIFO settles 0); together the
--    ring offsets to zero and all three settle.  Each participant's net is
--    0, so no wire is needed at all: cost 0.  Naive batching would send a
--    pay-in and a pay-out wire per bank: 6 x 25 = 150.
------------------------------------------------------------------------
SELECT settle_create_participant(p) FROM unnest(ARRAY['g_a', 'g_b', 'g_c']) p;
SELECT settle_create_account(p || '_usd', p, 'USD') FROM unnest(ARRAY['g_a', 'g_b', 'g_c']) p;
SELECT status FROM settle_submit('ring_1', 100, 'USD', 'USD', 'g_a_usd', 'g_b_usd', 'g_b', 'ring_k1');
SELECT status FROM settle_submit('ring_2', 100, 'USD', 'USD', 'g_b_usd', 'g_c_usd', 'g_c', 'ring_k2');
SELECT status FROM settle_submit('ring_3', 100, 'USD', 'USD', 'g_c_usd', 'g_a_usd', 'g_a', 'ring_k3');
SELECT considered, settled, unsettled, batches, wires, settled_value, cost,
       fifo_settled, fifo_value, naive_wires, naive_cost, saved_vs_naive_pct, solver_status
  FROM settle_run_cycle();
SELECT transaction_id, status FROM settle.transactions WHERE transaction_id LIKE 'ring%' ORDER BY 1;
SELECT account_id, balance FROM settle.accounts WHERE account_id LIKE 'g\_%' ORDER BY 1;
SELECT participant_id, currency, debit_total, credit_total, net_amount, payment_legs, fee FROM settle.batches ORDER BY participant_id;
SELECT account_id, amount FROM settle.ledger WHERE journal_kind = 'settlement' ORDER BY entry_id;

------------------------------------------------------------------------
-- 2. Limits: x pays y 100.00 but has 50.00 and may go 30.00 below zero.
--    It stays queued; a second cycle does not settle it either; after a
--    top-up of 20.00 it settles, leaving x at exactly -30.00.
------------------------------------------------------------------------
SELECT settle_create_participant('l_x'), settle_create_participant('l_y');
SELECT settle_create_account('l_x_usd', 'l_x', 'USD', lower_limit => 30, opening_balance => 50);
SELECT settle_create_account('l_y_usd', 'l_y', 'USD');
SELECT status FROM settle_submit('limit_1', 100, 'USD', 'USD', 'l_x_usd', 'l_y_usd', 'l_y', 'limit_k1');
SELECT considered, settled, unsettled, fifo_settled FROM settle_run_cycle();
SELECT considered, settled, unsettled FROM settle_run_cycle();
SELECT status FROM settle.transactions WHERE transaction_id = 'limit_1';
SELECT settle_fund_account('l_x_usd', 20) > 0 AS topped_up;
SELECT considered, settled, unsettled FROM settle_run_cycle();
SELECT account_id, balance, lower_limit, available FROM settle.accounts WHERE account_id LIKE 'l\_%' ORDER BY 1;

------------------------------------------------------------------------
-- 3. FX netting.  EUR/USD mid 1.10, spread 10 bps (0.1%).  Costs are
--    measured in USD (settle.reference_currency): the EUR wire fee of 20.00
--    EUR is 22.00 USD.
--    p1: fx_x pays 1,100.00 USD -> fx_y's EUR account: 1,000.00 EUR at mid
--    p2: fx_y pays   500.00 EUR -> fx_x's USD account:   550.00 USD at mid
--    Converted volume USD->EUR 1,100 and EUR->USD 550 (in USD): net 550,
--    spread 0.1% = 0.55.  Wires: fx_x USD nets -550.00 (fee 25.00), fx_y
--    EUR nets +500.00 (fee 22.00): cost 25 + 22 + 0.55 = 47.55.
--    Naive: gross spread 0.1% x 1,650 = 1.65; wires pay-in (fx_x USD, fx_y
--    EUR) and pay-out (fx_y EUR, fx_x USD): 25 + 22 + 22 + 25 = 94;
--    cost 95.65, so the cycle saves 48.10 = 50.29%.
--    Postings: fx_x_usd -1100.00 +550.00, fx_y_eur +1000.00 -500.00,
--    _settlement.USD +550.00 (fx_x's wire), _settlement.EUR -500.00
--    (fx_y's wire): each currency sums to zero.
------------------------------------------------------------------------
SELECT settle_set_fx_rate('EUR', 'USD', 1.10, 10) IS NOT NULL AS rate;
SELECT settle_create_participant('fx_x'), settle_create_participant('fx_y');
SELECT settle_create_account('fx_x_usd', 'fx_x', 'USD', lower_limit => 200, opening_balance => 1000);
SELECT settle_create_account('fx_y_eur', 'fx_y', 'EUR', opening_balance => 600);
SELECT status FROM settle_submit('fx_1', 1100, 'USD', 'EUR', 'fx_x_usd', 'fx_y_eur', 'fx_y', 'fx_k1');
SELECT status FROM settle_submit('fx_2', 500, 'EUR', 'USD', 'fx_y_eur', 'fx_x_usd', 'fx_x', 'fx_k2');
SELECT considered, settled, batches, wires, settled_value, fee_cost, fx_cost, cost,
       naive_wires, naive_cost, saved_vs_naive_pct
  FROM settle_run_cycle();
SELECT transaction_id, amount, source_currency, destination_amount, destination_currency, fx_rate, status
  FROM settle.transactions WHERE transaction_id LIKE 'fx\_%' ORDER BY 1;
SELECT l.account_id, l.amount, l.currency, b.participant_id AS batch_of
  FROM settle.ledger l JOIN settle.batches b USING (batch_id)
 WHERE l.cycle_id = (SELECT max(cycle_id) FROM settle.cycles) ORDER BY l.entry_id;
SELECT participant_id, currency, net_amount, fee FROM settle.batches
 WHERE cycle_id = (SELECT max(cycle_id) FROM settle.cycles) ORDER BY 1;
SELECT account_id, balance FROM settle.accounts WHERE account_id IN ('fx_x_usd', 'fx_y_eur', '_settlement.USD', '_settlement.EUR') ORDER BY 1;

------------------------------------------------------------------------
-- 4. Deferral: a 10.00 GBP payment that may wait (deadline in 4 s; the
--    cycle interval is 1 s) would open two wires costing 2 x 18 GBP for
--    itself alone; waiting one cycle costs 10 bps of its value.  It waits.
--    Once its deadline is within one cycle, it must settle, and does.
------------------------------------------------------------------------
SELECT settle_set_fx_rate('GBP', 'USD', 1.25, 5) IS NOT NULL AS rate;
SELECT settle_create_participant('d_a'), settle_create_participant('d_b');
SELECT settle_create_account('d_a_gbp', 'd_a', 'GBP', opening_balance => 100);
SELECT settle_create_account('d_b_gbp', 'd_b', 'GBP');
SELECT status FROM settle_submit('defer_1', 10, 'GBP', 'GBP', 'd_a_gbp', 'd_b_gbp', 'd_b', 'defer_k1', 5, clock_timestamp() + interval '4 seconds');
SELECT considered, settled, deferred, cost FROM settle_run_cycle();
SELECT status FROM settle.transactions WHERE transaction_id = 'defer_1';
SELECT pg_sleep(3.3);
SELECT considered, settled, deferred, wires, cost FROM settle_run_cycle();
SELECT status FROM settle.transactions WHERE transaction_id = 'defer_1';

------------------------------------------------------------------------
-- 5. Expiry: a payment that cannot settle before its deadline expires,
--    with an event, and is never posted.
------------------------------------------------------------------------
SELECT status FROM settle_submit('exp_1', 1000, 'USD', 'USD', 'l_y_usd', 'l_x_usd', 'l_x', 'exp_k1', 5, clock_timestamp() + interval '1 second');
SELECT settled, unsettled, expired FROM settle_run_cycle();
SELECT pg_sleep(1.2);
SELECT settled, expired FROM settle_run_cycle();
SELECT status FROM settle.transactions WHERE transaction_id = 'exp_1';
SELECT event_type, from_status, to_status FROM settle.events
 WHERE entity = 'payment' AND entity_id = (SELECT payment_id::text FROM settle.transactions WHERE transaction_id = 'exp_1') ORDER BY event_id;
SELECT count(*) AS postings FROM settle.ledger WHERE payment_id = (SELECT payment_id FROM settle.transactions WHERE transaction_id = 'exp_1');

------------------------------------------------------------------------
-- 6. Solver time limit: with a limit far below what GLPK needs, the cycle
--    falls back to the greedy heuristic, says so, and still settles what is
--    safe (the payment that fits alone), never breaking a limit.
------------------------------------------------------------------------
SELECT status FROM settle_submit('tl_1', 10, 'USD', 'USD', 'l_x_usd', 'l_y_usd', 'l_y', 'tl_k1');
SELECT status FROM settle_submit('tl_2', 5, 'USD', 'USD', 'l_y_usd', 'l_x_usd', 'l_x', 'tl_k2');
SET settle.solver_time_limit = 0.000001;
SELECT considered, settled, solver_status, solver_method ~ 'greedy' AS greedy FROM settle_run_cycle();
RESET settle.solver_time_limit;
SELECT account_id, balance, available >= 0 AS within_limit FROM settle.accounts WHERE account_id LIKE 'l\_%' ORDER BY 1;

------------------------------------------------------------------------
-- Invariants over everything above
------------------------------------------------------------------------
-- every journal sums to zero per currency
SELECT journal_id, currency, sum(amount_minor) FROM settle.ledger GROUP BY 1, 2 HAVING sum(amount_minor) <> 0;
-- every batch sums to zero
SELECT batch_id, sum(amount_minor) FROM settle.ledger WHERE batch_id IS NOT NULL GROUP BY 1 HAVING sum(amount_minor) <> 0;
-- every balance equals the sum of its entries
SELECT a.account_id FROM settle.account a
  LEFT JOIN (SELECT account_id, sum(amount) s FROM settle.ledger_entry GROUP BY 1) e USING (account_id)
 WHERE a.balance <> coalesce(e.s, 0);
-- each settled payment is posted exactly twice (debit and credit), others never
SELECT p.transaction_id, p.status, count(e.entry_id) FROM settle.payment p
  LEFT JOIN settle.ledger_entry e USING (payment_id)
 GROUP BY 1, 2 HAVING count(e.entry_id) <> CASE WHEN p.status = 'settled' THEN 2 ELSE 0 END;
-- no customer account below its limit
SELECT account_id FROM settle.account WHERE kind = 'customer' AND balance < -lower_limit;
-- the ledger is append-only
UPDATE settle.ledger_entry SET amount = amount + 1; -- update_ledger
DELETE FROM settle.journal; -- delete_journal
TRUNCATE settle.event; -- truncate_events
UPDATE settle.cycle SET cost = 0; -- update_cycle

\c contrib_regression
DROP DATABASE settle_engine;
