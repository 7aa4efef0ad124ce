-- The demo behind `make run`: five banks, three currencies, a payment ring
-- that is gridlocked one by one, opposite FX flows, and small payments that
-- may wait.  Then one settlement cycle, and what it did.
\set ON_ERROR_STOP 1
\pset footer off
CREATE EXTENSION settle;

\echo '== reference data: participants, accounts, FX rates, wire fees'
SELECT settle_create_participant(p, 'Bank ' || upper(right(p, 1))) FROM unnest(ARRAY['bank_a','bank_b','bank_c','bank_d','bank_e','bank_f']) p \g /dev/null
SELECT settle_create_account('a_usd', 'bank_a', 'USD', opening_balance => 1000),
       settle_create_account('b_usd', 'bank_b', 'USD', opening_balance => 1000),
       settle_create_account('c_usd', 'bank_c', 'USD', opening_balance => 1000),
       settle_create_account('d_usd', 'bank_d', 'USD', lower_limit => 5000, opening_balance => 200000),
       settle_create_account('d_eur', 'bank_d', 'EUR', opening_balance => 150000),
       settle_create_account('e_eur', 'bank_e', 'EUR', lower_limit => 2000, opening_balance => 250000),
       settle_create_account('e_gbp', 'bank_e', 'GBP', opening_balance => 80000),
       settle_create_account('a_gbp', 'bank_a', 'GBP', opening_balance => 50000),
       settle_create_account('f_usd', 'bank_f', 'USD') \g /dev/null
SELECT settle_set_fx_rate('EUR', 'USD', 1.08, 5), settle_set_fx_rate('GBP', 'USD', 1.27, 6),
       settle_set_fx_rate('EUR', 'GBP', 0.85, 8) \g /dev/null
SELECT settle_set_wire_fee('USD', 25), settle_set_wire_fee('EUR', 20), settle_set_wire_fee('GBP', 18) \g /dev/null
SELECT account_id, participant_id, currency, balance, lower_limit FROM settle.accounts WHERE kind = 'customer' ORDER BY 1;

\echo '== intake: the original example, then a ring A -> B -> C -> A of 50,000 USD each'
SELECT payment_id, status, replay FROM settle_submit(
    transaction_id => 'txn_001', amount => '100000.00', source_currency => 'USD', destination_currency => 'EUR',
    source_account => 'd_usd', destination_account => 'e_eur', counterparty_id => 'bank_e', idempotency_key => 'req_001');
SELECT count(*) AS ring_submitted FROM (
    SELECT settle_submit('ring_' || i, 50000, 'USD', 'USD', s, d, c, 'ring_key_' || i)
      FROM (VALUES (1, 'a_usd', 'b_usd', 'bank_b'), (2, 'b_usd', 'c_usd', 'bank_c'), (3, 'c_usd', 'a_usd', 'bank_a')) v(i, s, d, c)) x;

\echo '== in bulk: opposite FX flows that partly net, two small payments that may wait, one refused'
SELECT ordinal, transaction_id, status, replay, sqlstate FROM settle_submit_bulk($$[
  {"transaction_id": "fx_01", "amount": "60000.00", "source_currency": "EUR", "destination_currency": "USD",
   "source_account": "e_eur", "destination_account": "d_usd", "counterparty_id": "bank_d", "idempotency_key": "fx_k1"},
  {"transaction_id": "fx_02", "amount": "20000.00", "source_currency": "GBP", "destination_currency": "EUR",
   "source_account": "e_gbp", "destination_account": "d_eur", "counterparty_id": "bank_d", "idempotency_key": "fx_k2"},
  {"transaction_id": "fx_03", "amount": "15000.00", "source_currency": "EUR", "destination_currency": "GBP",
   "source_account": "d_eur", "destination_account": "a_gbp", "counterparty_id": "bank_a", "idempotency_key": "fx_k3"},
  {"transaction_id": "small_1", "amount": "40.00", "source_currency": "GBP", "destination_currency": "GBP",
   "source_account": "a_gbp", "destination_account": "e_gbp", "counterparty_id": "bank_e", "idempotency_key": "small_k1",
   "deadline": "2099-01-01T00:00:00Z"},
  {"transaction_id": "small_2", "amount": "15.00", "source_currency": "USD", "destination_currency": "USD",
   "source_account": "d_usd", "destination_account": "f_usd", "counterparty_id": "bank_f", "idempotency_key": "small_k2",
   "deadline": "2099-01-01T00:00:00Z"},
  {"transaction_id": "bad_1", "amount": "10.001", "source_currency": "USD", "destination_currency": "USD",
   "source_account": "a_usd", "destination_account": "b_usd", "counterparty_id": "bank_b", "idempotency_key": "bad_k1"}
]$$);

\echo '== a client retries txn_001 after a timeout: the original payment comes back, marked as a replay'
SELECT payment_id, status, replay FROM settle_submit('txn_001', 100000.00, 'USD', 'EUR', 'd_usd', 'e_eur', 'bank_e', 'req_001');

\echo '== the same key with a different amount is refused (SQLSTATE SE060), and nothing is written'
\set ON_ERROR_STOP 0
SELECT * FROM settle_submit('txn_001', 100001.00, 'USD', 'EUR', 'd_usd', 'e_eur', 'bank_e', 'req_001');
\set ON_ERROR_STOP 1
SELECT status, count(*) AS payments FROM settle.transactions GROUP BY status;

\echo '== one settlement cycle (GLPK)'
SELECT cycle_id, considered, settled, deferred, unsettled, batches, wires, settled_value, cost,
       fifo_settled, fifo_value, fifo_cost, naive_wires, naive_cost, saved_vs_naive_pct,
       solver_status, solver_method, round(solver_ms::numeric, 2) AS solver_ms, round(cycle_ms::numeric, 2) AS cycle_ms
  FROM settle_run_cycle() \gx

\echo '== payments after the cycle (small_2 waits: alone it would open bank_f''s USD wire, 25.00, for 15.00)'
SELECT transaction_id, amount, source_currency AS ccy, destination_amount, destination_currency AS to_ccy, fx_rate, status
  FROM settle.transactions ORDER BY payment_id;

\echo '== the wires (one batch per participant and currency, net of offsetting)'
SELECT batch_id, participant_id, currency, debit_total, credit_total, net_amount, payment_legs, fee
  FROM settle.batches ORDER BY batch_id;

\echo '== balances: each batch and the whole journal sum to zero per currency'
SELECT account_id, currency, balance, available FROM settle.accounts ORDER BY kind, account_id;
SELECT batch_id, currency, sum(amount_minor) AS batch_sum FROM settle.ledger WHERE batch_id IS NOT NULL
 GROUP BY 1, 2 HAVING sum(amount_minor) <> 0;
SELECT currency, sum(amount) AS journal_sum FROM settle.ledger GROUP BY currency ORDER BY 1;

\echo '== audit: hash chains sealed, the whole ledger verified, state replayed from the event log alone'
SELECT chain, sealed, last_seq FROM settle_seal();
SELECT count(*) AS verify_problems FROM settle_verify();
SELECT count(*) AS replay_compared, count(*) FILTER (WHERE NOT equal) AS replay_differences
  FROM settle_replay(false);

\echo '== the calendar, scheduled with pg_cron: end of day (balance snapshot), key retention, rail time-outs, liquidity forecasts'
CREATE EXTENSION pg_cron;
SELECT count(*) AS jobs_scheduled FROM settle_schedule_jobs();
SELECT jobname, schedule, command FROM cron.job ORDER BY jobname;
SELECT settle_end_of_day() AS accounts_snapshotted_now;
