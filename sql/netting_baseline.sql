-- The netting-only baseline (issue #20, docs/CYCLE.md "Baselines"): FIFO's
-- payments netted as the cycle nets its own, next to FIFO gross and the
-- optimiser, on queues small enough to compute by hand.  Own database, so
-- that the queue holds only these payments.
CREATE DATABASE settle_netting;
\c settle_netting
CREATE EXTENSION settle;
\set VERBOSITY sqlstate
SELECT settle_set_wire_fee('USD', 25), settle_set_wire_fee('EUR', 20);

------------------------------------------------------------------------
-- 1. Three banks, USD, wire fee 25.00, no overdraft.  Balances: n_a 0,
--    n_b 100.00, n_c 50.00.  In arrival order:
--      p1  n_a -> n_b 100.00   FIFO: n_a has 0, skipped
--      p2  n_b -> n_a 100.00   FIFO: fits (n_b 0, n_a 100)
--      p3  n_c -> n_a  50.00   FIFO: fits (n_c 0, n_a 150)
--      p4  n_a -> n_c  20.00   FIFO: fits (n_a 130, n_c 20)
--    FIFO gross: p2, p3, p4, one wire each, the payer's fee: 3 x 25 = 75.
--    Netting only, the same three payments: n_a +100 +50 -20 = +130,
--    n_b -100, n_c -50 +20 = -30: three wires with a net, 3 x 25 = 75.
--    The optimiser takes p1 too (n_a's 100.00 out is covered by p2 in the
--    same cycle): n_a -100 +100 +50 -20 = +30, n_b +100 -100 = 0,
--    n_c -30: two wires, 50; it saves 25 of 75 against netting, 33.33%.
------------------------------------------------------------------------
SELECT settle_create_participant(p) FROM unnest(ARRAY['n_a', 'n_b', 'n_c']) p;
SELECT settle_create_account('n_a_usd', 'n_a', 'USD');
SELECT settle_create_account('n_b_usd', 'n_b', 'USD', opening_balance => 100);
SELECT settle_create_account('n_c_usd', 'n_c', 'USD', opening_balance => 50);
SELECT status FROM settle_submit('n_p1', 100, 'USD', 'USD', 'n_a_usd', 'n_b_usd', 'n_b', 'n_k1');
SELECT status FROM settle_submit('n_p2', 100, 'USD', 'USD', 'n_b_usd', 'n_a_usd', 'n_a', 'n_k2');
SELECT status FROM settle_submit('n_p3', 50, 'USD', 'USD', 'n_c_usd', 'n_a_usd', 'n_a', 'n_k3');
SELECT status FROM settle_submit('n_p4', 20, 'USD', 'USD', 'n_a_usd', 'n_c_usd', 'n_c', 'n_k4');
SELECT considered, settled, wires, cost, fifo_settled, fifo_value, fifo_cost,
       fifo_netted_wires, fifo_netted_cost, saved_vs_netting_pct, naive_wires, naive_cost, saved_vs_naive_pct
  FROM settle_run_cycle();
-- the cycle's own wires, to check its cost against
SELECT participant_id, net_amount, fee FROM settle.batches
 WHERE cycle_id = (SELECT max(cycle_id) FROM settle.cycles) ORDER BY 1;

------------------------------------------------------------------------
-- 2. FX: netting saves against FIFO gross.  EUR/USD mid 1.10, spread
--    10 bps; costs in USD (the EUR fee of 20.00 EUR is 22.00 USD).
--      q1  x_x pays 1,100.00 USD -> x_y EUR (1,000.00 EUR)   FIFO: fits
--      q2  x_y pays   500.00 EUR -> x_x USD (  550.00 USD)   FIFO: fits
--      q3  x_y pays   100.00 EUR -> x_x USD (  110.00 USD)   FIFO: fits
--      q4  x_z pays    10.00 USD -> x_x, x_z has nothing: nobody settles it
--    FIFO gross: fees 25 + 22 + 22 = 69, spread on each payment's value
--    0.1% x (1,100 + 550 + 110) = 1.76: 70.76.
--    Netting only: x_x USD -1,100 +550 +110 = -440 (25), x_y EUR +1,000
--    -500 -100 = +400 (22); spread on the pair's net 0.1% x (1,100 - 660)
--    = 0.44: two wires, 47.44.  The optimiser settles the same three:
--    47.44, nothing saved against netting (0.00%).  Naive batching: a
--    pay-in and a pay-out wire each, 25 + 22 + 22 + 25, spread on the gross
--    1.76: 95.76.
------------------------------------------------------------------------
SELECT settle_set_fx_rate('EUR', 'USD', 1.10, 10) IS NOT NULL AS rate;
SELECT settle_create_participant(p) FROM unnest(ARRAY['x_x', 'x_y', 'x_z']) p;
SELECT settle_create_account('x_x_usd', 'x_x', 'USD', lower_limit => 200, opening_balance => 1000);
SELECT settle_create_account('x_y_eur', 'x_y', 'EUR', opening_balance => 600);
SELECT settle_create_account('x_z_usd', 'x_z', 'USD');
SELECT status FROM settle_submit('x_q1', 1100, 'USD', 'EUR', 'x_x_usd', 'x_y_eur', 'x_y', 'x_k1');
SELECT status FROM settle_submit('x_q2', 500, 'EUR', 'USD', 'x_y_eur', 'x_x_usd', 'x_x', 'x_k2');
SELECT status FROM settle_submit('x_q3', 100, 'EUR', 'USD', 'x_y_eur', 'x_x_usd', 'x_x', 'x_k3');
SELECT status FROM settle_submit('x_q4', 10, 'USD', 'USD', 'x_z_usd', 'x_x_usd', 'x_x', 'x_k4');
SELECT considered, settled, unsettled, wires, fee_cost, fx_cost, cost, fifo_settled, fifo_value, fifo_cost,
       fifo_netted_wires, fifo_netted_cost, saved_vs_netting_pct, naive_wires, naive_cost
  FROM settle_run_cycle();
SELECT participant_id, currency, net_amount, fee FROM settle.batches
 WHERE cycle_id = (SELECT max(cycle_id) FROM settle.cycles) ORDER BY 1;
SELECT settle_cancel_payment((SELECT payment_id FROM settle.transactions WHERE transaction_id = 'x_q4'), 'test over') IS NOT NULL AS cancelled;

------------------------------------------------------------------------
-- 3. A ring FIFO settles in full: r_a (100.00) pays r_b 100.00, then r_b
--    pays r_a 100.00.  FIFO gross: two wires, 50; netted, every net is 0:
--    no wire, cost 0, so saved_vs_netting_pct is NULL (nothing to save).
------------------------------------------------------------------------
SELECT settle_create_participant(p) FROM unnest(ARRAY['r_a', 'r_b']) p;
SELECT settle_create_account('r_a_usd', 'r_a', 'USD', opening_balance => 100);
SELECT settle_create_account('r_b_usd', 'r_b', 'USD');
SELECT status FROM settle_submit('r_1', 100, 'USD', 'USD', 'r_a_usd', 'r_b_usd', 'r_b', 'r_k1');
SELECT status FROM settle_submit('r_2', 100, 'USD', 'USD', 'r_b_usd', 'r_a_usd', 'r_a', 'r_k2');
SELECT considered, settled, wires, cost, fifo_settled, fifo_cost, fifo_netted_wires, fifo_netted_cost,
       saved_vs_netting_pct
  FROM settle_run_cycle();

-- the view's new columns come after 1.0's, in this order
SELECT attnum, attname FROM pg_attribute
 WHERE attrelid = 'settle.cycles'::regclass AND attnum > 25 ORDER BY attnum;

\c contrib_regression
DROP DATABASE settle_netting;

------------------------------------------------------------------------
-- 4. A database still at 1.0's SQL: this library records its cycles
--    without the new columns; after ALTER EXTENSION settle UPDATE, in the
--    same session, the next cycle has them, and the earlier one has NULL.
--    One 10.00 USD payment each: FIFO gross 25; netted, a pay-in and a
--    pay-out wire, 50 (what the cycle itself pays for a lone payment).
------------------------------------------------------------------------
CREATE DATABASE settle_netting_10;
\c settle_netting_10
CREATE EXTENSION settle VERSION '1.0';
SELECT settle_set_wire_fee('USD', 25);
SELECT settle_create_participant(p) FROM unnest(ARRAY['o_a', 'o_b']) p;
SELECT settle_create_account('o_a_usd', 'o_a', 'USD', opening_balance => 100);
SELECT settle_create_account('o_b_usd', 'o_b', 'USD');
SELECT status FROM settle_submit('o_1', 10, 'USD', 'USD', 'o_a_usd', 'o_b_usd', 'o_b', 'o_k1');
SELECT settled, fifo_cost FROM settle_run_cycle();
ALTER EXTENSION settle UPDATE;
SELECT status FROM settle_submit('o_2', 10, 'USD', 'USD', 'o_a_usd', 'o_b_usd', 'o_b', 'o_k2');
SELECT settled, fifo_cost, fifo_netted_wires, fifo_netted_cost FROM settle_run_cycle();
SELECT cycle_id, fifo_netted_wires, fifo_netted_cost, saved_vs_netting_pct FROM settle.cycles ORDER BY 1;
\c contrib_regression
DROP DATABASE settle_netting_10;
