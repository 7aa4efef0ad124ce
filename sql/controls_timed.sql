-- Timed payments (issue #33): an earliest settlement time (not_before);
-- no cycle takes the payment before it, and it holds back nothing; then
-- it settles like any other.  A retry must repeat it (else SE060); it must
-- be finite and before the deadline (SE053).  The deadline stays the
-- reject time: a payment still queued at its deadline expires.  Own database.
CREATE DATABASE settle_timed;
\c settle_timed
CREATE EXTENSION settle;
\set VERBOSITY sqlstate
CREATE VIEW st AS
    SELECT transaction_id, status, not_before IS NOT NULL AS timed FROM settle.transactions ORDER BY transaction_id;
SELECT settle_create_participant(p) FROM unnest(ARRAY['ta', 'tb']) p;
SELECT settle_create_account('ta_usd', 'ta', 'USD', opening_balance => 100),
       settle_create_account('tb_usd', 'tb', 'USD');

-- later: in 2 s; now: an hour ago; the later one holds back nothing of ta's
SELECT status FROM settle_submit('later', 70, 'USD', 'USD', 'ta_usd', 'tb_usd', 'tb', 'k1', 9,
                                 not_before => clock_timestamp() + interval '2 seconds');
SELECT status FROM settle_submit('now', 50, 'USD', 'USD', 'ta_usd', 'tb_usd', 'tb', 'k2', 1,
                                 not_before => clock_timestamp() - interval '1 hour');
SELECT considered, settled FROM settle_run_cycle();
SELECT * FROM st;
-- in the bulk path, as RFC 3339 text
SELECT transaction_id, status, sqlstate FROM settle_submit_bulk('[
  {"transaction_id": "bulk-later", "amount": "10", "source_currency": "USD", "destination_currency": "USD",
   "source_account": "ta_usd", "destination_account": "tb_usd", "counterparty_id": "tb",
   "idempotency_key": "k3", "not_before": "2999-01-01T00:00:00Z"},
  {"transaction_id": "bulk-bad", "amount": "10", "source_currency": "USD", "destination_currency": "USD",
   "source_account": "ta_usd", "destination_account": "tb_usd", "counterparty_id": "tb",
   "idempotency_key": "k4", "not_before": "tomorrow"},
  {"transaction_id": "bulk-num", "amount": "10", "source_currency": "USD", "destination_currency": "USD",
   "source_account": "ta_usd", "destination_account": "tb_usd", "counterparty_id": "tb",
   "idempotency_key": "k5", "not_before": 12}]');
SELECT transaction_id, to_char(not_before AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') FROM settle.transactions
 WHERE transaction_id = 'bulk-later';
-- retries: the same time is a replay, another time or none a conflict
SELECT status, replay FROM settle_submit('bulk-later', 10, 'USD', 'USD', 'ta_usd', 'tb_usd', 'tb', 'k3',
                                         not_before => '2999-01-01T00:00:00Z');
SELECT status, replay FROM settle_submit('bulk-later', 10, 'USD', 'USD', 'ta_usd', 'tb_usd', 'tb', 'k3',
                                         not_before => '2999-01-02T00:00:00Z');  -- SE060
SELECT status, replay FROM settle_submit('bulk-later', 10, 'USD', 'USD', 'ta_usd', 'tb_usd', 'tb', 'k3'); -- SE060
SELECT status, replay FROM settle_submit('now', 50, 'USD', 'USD', 'ta_usd', 'tb_usd', 'tb', 'k2', 1); -- SE060
-- refusals
SELECT settle_submit('x1', 1, 'USD', 'USD', 'ta_usd', 'tb_usd', 'tb', 'x1', not_before => 'infinity');       -- SE053
SELECT settle_submit('x2', 1, 'USD', 'USD', 'ta_usd', 'tb_usd', 'tb', 'x2',
                     deadline => clock_timestamp() + interval '1 hour',
                     not_before => clock_timestamp() + interval '2 hours');                                     -- SE053
-- once its time has come, the later one settles (ta has 50 left: 70 does not fit until funded)
SELECT pg_sleep(2.1);
SELECT settle_fund_account('ta_usd', 20, 'top-up') IS NOT NULL AS funded;
SELECT considered, settled FROM settle_run_cycle();
SELECT * FROM st;
-- the deadline is the reject time: queued at its deadline, the payment expires
SELECT status FROM settle_submit('too-late', 500, 'USD', 'USD', 'ta_usd', 'tb_usd', 'tb', 'k6',
                                 deadline => clock_timestamp() + interval '1 second');
SELECT pg_sleep(1.1);
SELECT considered, settled, expired FROM settle_run_cycle();
SELECT * FROM st WHERE transaction_id = 'too-late';

\c contrib_regression
DROP DATABASE settle_timed;
