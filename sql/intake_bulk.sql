-- settle_submit_bulk: the same rules and idempotency as settle_submit,
-- reported per row; accepted rows are written, refused rows are not.
-- errors are recorded by pg_regress: only their SQLSTATE (docs/ERRORS.md)
\set VERBOSITY sqlstate
SELECT count(*) AS payments_before FROM settle.payment \gset

SELECT ordinal, transaction_id, idempotency_key, payment_id IS NOT NULL AS has_id, status, replay, sqlstate, message
  FROM settle_submit_bulk($$[
  {"transaction_id": "b_001", "amount": "10.00", "source_currency": "USD", "destination_currency": "EUR",
   "source_account": "acc_001", "destination_account": "acc_002", "counterparty_id": "bank_b", "idempotency_key": "bk_001"},
  {"transaction_id": "b_002", "amount": 20.5, "source_currency": "USD", "destination_currency": "USD",
   "source_account": "acc_001", "destination_account": "acc_003", "counterparty_id": "bank_b", "idempotency_key": "bk_002",
   "priority": 9, "deadline": "2099-12-31T23:00:00Z"},
  {"transaction_id": "b_001", "amount": "10.00", "source_currency": "USD", "destination_currency": "EUR",
   "source_account": "acc_001", "destination_account": "acc_002", "counterparty_id": "bank_b", "idempotency_key": "bk_001"},
  {"transaction_id": "b_003", "amount": "10.001", "source_currency": "USD", "destination_currency": "EUR",
   "source_account": "acc_001", "destination_account": "acc_002", "counterparty_id": "bank_b", "idempotency_key": "bk_003"},
  {"transaction_id": "b_004", "amount": "1", "source_currency": "USD", "destination_currency": "EUR",
   "source_account": "acc_001", "destination_account": "acc_002", "counterparty_id": "bank_b", "idempotency_key": "bk_001"},
  {"transaction_id": "b_002", "amount": "1", "source_currency": "USD", "destination_currency": "EUR",
   "source_account": "acc_001", "destination_account": "acc_002", "counterparty_id": "bank_b", "idempotency_key": "bk_005"},
  {"transaction_id": "txn_001", "amount": "100000.00", "source_currency": "USD", "destination_currency": "EUR",
   "source_account": "acc_001", "destination_account": "acc_002", "counterparty_id": "bank_b", "idempotency_key": "req_001"},
  {"transaction_id": "b_006", "amount": "5", "source_currency": "USD", "destination_currency": "EUR",
   "source_account": "acc_001", "destination_account": "acc_002", "counterparty_id": "bank_b", "idempotency_key": "bk_006",
   "deadline": "not a time"},
  {"transaction_id": "b_007", "amount": "5", "source_currency": "USD", "destination_currency": "EUR",
   "source_account": "acc_001", "destination_account": "acc_002", "counterparty_id": "bank_b", "idempotency_key": "bk_007",
   "colour": "blue"},
  {"transaction_id": "b_008", "amount": "5", "source_currency": "USD", "destination_currency": "EUR",
   "source_account": "acc_001", "destination_account": "acc_002", "counterparty_id": "bank_b"},
  {"transaction_id": 9, "amount": "5", "source_currency": "USD", "destination_currency": "EUR",
   "source_account": "acc_001", "destination_account": "acc_002", "counterparty_id": "bank_b", "idempotency_key": "bk_009"},
  {"transaction_id": "b_010", "amount": "5", "source_currency": "USD", "destination_currency": "EUR",
   "source_account": "acc_001", "destination_account": "acc_002", "counterparty_id": "bank_b", "idempotency_key": "bk_010",
   "priority": 12},
  "not an object",
  {"transaction_id": "b_011", "amount": "NaN", "source_currency": "USD", "destination_currency": "EUR",
   "source_account": "acc_001", "destination_account": "acc_002", "counterparty_id": "bank_b", "idempotency_key": "bk_011"}
  ]$$) ORDER BY ordinal;

-- exactly the two new payments were written
SELECT count(*) - :payments_before AS payments_written FROM settle.payment;
SELECT transaction_id, amount, priority, deadline FROM settle.transactions WHERE transaction_id LIKE 'b\_%' ORDER BY 1;

-- the same call again replays every accepted row and writes nothing
SELECT count(*) FILTER (WHERE replay) AS replays, count(*) FILTER (WHERE status = 'refused') AS refused
  FROM settle_submit_bulk($$[
  {"transaction_id": "b_001", "amount": "10.00", "source_currency": "USD", "destination_currency": "EUR",
   "source_account": "acc_001", "destination_account": "acc_002", "counterparty_id": "bank_b", "idempotency_key": "bk_001"},
  {"transaction_id": "b_002", "amount": 20.5, "source_currency": "USD", "destination_currency": "USD",
   "source_account": "acc_001", "destination_account": "acc_003", "counterparty_id": "bank_b", "idempotency_key": "bk_002",
   "priority": 9, "deadline": "2099-12-31T23:00:00Z"}]$$);
SELECT count(*) - :payments_before AS payments_written FROM settle.payment;

-- whole-call refusals
SELECT * FROM settle_submit_bulk('{"a": 1}'); -- not_array
SELECT * FROM settle_submit_bulk(NULL); -- null_input
SET settle.max_bulk_rows = 2;
SELECT * FROM settle_submit_bulk('[{}, {}, {}]'); -- too_many
RESET settle.max_bulk_rows;
SELECT count(*) AS empty_array FROM settle_submit_bulk('[]');

-- a larger batch: 1000 rows, every tenth a repeat of the row before it
SELECT count(*) FILTER (WHERE NOT replay AND status = 'queued') AS accepted,
       count(*) FILTER (WHERE replay) AS replays,
       count(*) FILTER (WHERE status = 'refused') AS refused
  FROM settle_submit_bulk((
    SELECT jsonb_agg(jsonb_build_object(
             'transaction_id', 'big_' || (i - (i % 10 = 0)::int), 'amount', '1.00',
             'source_currency', 'USD', 'destination_currency', 'USD',
             'source_account', 'acc_001', 'destination_account', 'acc_003',
             'counterparty_id', 'bank_b', 'idempotency_key', 'bigk_' || (i - (i % 10 = 0)::int)) ORDER BY i)
      FROM generate_series(1, 1000) i));
SELECT count(*) AS big_rows FROM settle.payment WHERE transaction_id LIKE 'big\_%';
