-- settle_submit: every validation rule, each with its own SQLSTATE, and
-- the counts prove that a refused call writes nothing.
SELECT count(*) AS payments_before FROM settle.payment \gset
SELECT count(*) AS events_before FROM settle.event WHERE entity = 'payment' \gset

-- the original design's example, with named parameters
SELECT payment_id > 0 AS has_id, status, replay, submitted_at = updated_at AS fresh
  FROM settle_submit(transaction_id => 'txn_001', amount => '100000.00',
                     source_currency => 'USD', destination_currency => 'EUR',
                     source_account => 'acc_001', destination_account => 'acc_002',
                     counterparty_id => 'bank_b', idempotency_key => 'req_001');
SELECT transaction_id, amount, amount_minor, source_currency, destination_currency,
       source_account, destination_account, source_participant, counterparty_id, priority, deadline, status
  FROM settle.transactions WHERE transaction_id = 'txn_001';
SELECT entity, event_type, to_status FROM settle.events
 WHERE entity = 'payment' AND entity_id = (SELECT payment_id::text FROM settle.transactions WHERE transaction_id = 'txn_001');

-- positional, with priority and deadline; zero- and three-decimal currencies
SELECT status FROM settle_submit('txn_002', 1500, 'JPY', 'USD', 'acc_004', 'acc_001', 'bank_a', 'req_002', 9, now() + interval '1 hour');
SELECT status FROM settle_submit('txn_003', 1.125, 'BHD', 'USD', 'acc_005', 'acc_003', 'bank_b', 'req_003');
SELECT settle_set_fx_rate('BHD', 'USD', 2.65) IS NOT NULL AS rate;
SELECT status FROM settle_submit('txn_003', 1.125, 'BHD', 'USD', 'acc_005', 'acc_003', 'bank_b', 'req_003');
SELECT transaction_id, amount, amount_minor, priority FROM settle.transactions WHERE transaction_id IN ('txn_002', 'txn_003') ORDER BY 1;

SELECT count(*) AS payments_mid FROM settle.payment \gset
SELECT count(*) AS events_mid FROM settle.event WHERE entity = 'payment' AND event_type = 'submitted' \gset

-- one line per rule: the template is valid; each case breaks one field
CREATE TEMP TABLE cases (name text, call text);
INSERT INTO cases VALUES
 ('null transaction_id',        $$NULL, 10, 'USD', 'EUR', 'acc_001', 'acc_002', 'bank_b', 'k'$$),
 ('empty transaction_id',       $$'', 10, 'USD', 'EUR', 'acc_001', 'acc_002', 'bank_b', 'k'$$),
 ('long transaction_id',        $$repeat('t', 129), 10, 'USD', 'EUR', 'acc_001', 'acc_002', 'bank_b', 'k'$$),
 ('space in transaction_id',    $$'t 1', 10, 'USD', 'EUR', 'acc_001', 'acc_002', 'bank_b', 'k'$$),
 ('control in transaction_id',  $$E't\x01', 10, 'USD', 'EUR', 'acc_001', 'acc_002', 'bank_b', 'k'$$),
 ('unicode in transaction_id',  $$'tx€', 10, 'USD', 'EUR', 'acc_001', 'acc_002', 'bank_b', 'k'$$),
 ('null amount',                $$'t', NULL, 'USD', 'EUR', 'acc_001', 'acc_002', 'bank_b', 'k'$$),
 ('zero amount',                $$'t', 0, 'USD', 'EUR', 'acc_001', 'acc_002', 'bank_b', 'k'$$),
 ('negative amount',            $$'t', -10, 'USD', 'EUR', 'acc_001', 'acc_002', 'bank_b', 'k'$$),
 ('NaN amount',                 $$'t', 'NaN', 'USD', 'EUR', 'acc_001', 'acc_002', 'bank_b', 'k'$$),
 ('Infinity amount',            $$'t', 'Infinity', 'USD', 'EUR', 'acc_001', 'acc_002', 'bank_b', 'k'$$),
 ('three decimals in USD',      $$'t', 10.001, 'USD', 'EUR', 'acc_001', 'acc_002', 'bank_b', 'k'$$),
 ('decimals in JPY',            $$'t', 10.5, 'JPY', 'USD', 'acc_004', 'acc_001', 'bank_a', 'k'$$),
 ('four decimals in BHD',       $$'t', 1.0001, 'BHD', 'USD', 'acc_005', 'acc_001', 'bank_a', 'k'$$),
 ('above bound',                $$'t', 10000000000000, 'USD', 'EUR', 'acc_001', 'acc_002', 'bank_b', 'k'$$),
 ('huge digit string',          $$'t', repeat('9', 400)::numeric, 'USD', 'EUR', 'acc_001', 'acc_002', 'bank_b', 'k'$$),
 ('null source_currency',       $$'t', 10, NULL, 'EUR', 'acc_001', 'acc_002', 'bank_b', 'k'$$),
 ('lower-case currency',        $$'t', 10, 'usd', 'EUR', 'acc_001', 'acc_002', 'bank_b', 'k'$$),
 ('padded currency',            $$'t', 10, 'USD', ' EUR', 'acc_001', 'acc_002', 'bank_b', 'k'$$),
 ('unknown currency',           $$'t', 10, 'XYZ', 'EUR', 'acc_001', 'acc_002', 'bank_b', 'k'$$),
 ('unknown destination ccy',    $$'t', 10, 'USD', 'ABC', 'acc_001', 'acc_002', 'bank_b', 'k'$$),
 ('null source_account',        $$'t', 10, 'USD', 'EUR', NULL, 'acc_002', 'bank_b', 'k'$$),
 ('unknown source_account',     $$'t', 10, 'USD', 'EUR', 'acc_404', 'acc_002', 'bank_b', 'k'$$),
 ('unknown destination',        $$'t', 10, 'USD', 'EUR', 'acc_001', 'acc_404', 'bank_b', 'k'$$),
 ('operator account as source', $$'t', 10, 'USD', 'EUR', '_external.USD', 'acc_002', 'bank_b', 'k'$$),
 ('source in other currency',   $$'t', 10, 'EUR', 'EUR', 'acc_001', 'acc_002', 'bank_b', 'k'$$),
 ('destination in other ccy',   $$'t', 10, 'USD', 'USD', 'acc_001', 'acc_002', 'bank_b', 'k'$$),
 ('same account',               $$'t', 10, 'USD', 'USD', 'acc_003', 'acc_003', 'bank_b', 'k'$$),
 ('null counterparty',          $$'t', 10, 'USD', 'EUR', 'acc_001', 'acc_002', NULL, 'k'$$),
 ('unknown counterparty',       $$'t', 10, 'USD', 'EUR', 'acc_001', 'acc_002', 'bank_zz', 'k'$$),
 ('wrong counterparty',         $$'t', 10, 'USD', 'EUR', 'acc_001', 'acc_002', 'bank_c', 'k'$$),
 ('no fx rate',                 $$'t', 10, 'JPY', 'EUR', 'acc_004', 'acc_002', 'bank_b', 'k'$$),
 ('null idempotency_key',       $$'t', 10, 'USD', 'EUR', 'acc_001', 'acc_002', 'bank_b', NULL$$),
 ('empty idempotency_key',      $$'t', 10, 'USD', 'EUR', 'acc_001', 'acc_002', 'bank_b', ''$$),
 ('long idempotency_key',       $$'t', 10, 'USD', 'EUR', 'acc_001', 'acc_002', 'bank_b', repeat('k', 200)$$),
 ('null priority',              $$'t', 10, 'USD', 'EUR', 'acc_001', 'acc_002', 'bank_b', 'k', NULL$$),
 ('priority 0',                 $$'t', 10, 'USD', 'EUR', 'acc_001', 'acc_002', 'bank_b', 'k', 0$$),
 ('priority 10',                $$'t', 10, 'USD', 'EUR', 'acc_001', 'acc_002', 'bank_b', 'k', 10$$),
 ('deadline in the past',       $$'t', 10, 'USD', 'EUR', 'acc_001', 'acc_002', 'bank_b', 'k', 5, now() - interval '1 second'$$),
 ('deadline infinity',          $$'t', 10, 'USD', 'EUR', 'acc_001', 'acc_002', 'bank_b', 'k', 5, 'infinity'$$);
-- each case, run by \gexec; pg_regress records its SQLSTATE (docs/ERRORS.md)
\set VERBOSITY sqlstate
SELECT format('SELECT settle_submit(%s); -- %s', call, name) FROM cases ORDER BY name \gexec

-- account and participant state
SELECT settle_set_account_status('acc_003', 'frozen');
SELECT settle_submit('t', 1, 'USD', 'USD', 'acc_003', 'acc_001', 'bank_a', 'k'); -- frozen_source
SELECT settle_submit('t', 1, 'USD', 'USD', 'acc_001', 'acc_003', 'bank_b', 'k'); -- frozen_destination
SELECT settle_set_account_status('acc_003', 'active');
SELECT settle_set_participant_status('bank_b', 'suspended');
SELECT settle_submit('t', 1, 'USD', 'USD', 'acc_001', 'acc_003', 'bank_b', 'k'); -- suspended_counterparty
SELECT settle_submit('t', 1, 'USD', 'USD', 'acc_003', 'acc_001', 'bank_a', 'k'); -- suspended_payer
SELECT settle_set_participant_status('bank_b', 'active');

-- nothing was written by any refusal (the suspension held bank_b's queued payments: events 'held', not 'submitted')
SELECT count(*) - :payments_mid AS payments_written, (SELECT count(*) FROM settle.event WHERE entity = 'payment' AND event_type = 'submitted') - :events_mid AS events_written
  FROM settle.payment;

-- a refusal inside a transaction aborts it: the earlier submit is gone too
BEGIN;
SELECT status FROM settle_submit('txn_tx1', 1, 'USD', 'USD', 'acc_001', 'acc_003', 'bank_b', 'req_tx1');
SELECT settle_submit('txn_tx2', 0, 'USD', 'USD', 'acc_001', 'acc_003', 'bank_b', 'req_tx2');
ROLLBACK;
SELECT count(*) AS rolled_back FROM settle.payment WHERE transaction_id = 'txn_tx1';

-- the message names the field and the detail says what is wrong
\set VERBOSITY default
SELECT settle_submit('txn_x', 10.001, 'USD', 'EUR', 'acc_001', 'acc_002', 'bank_b', 'req_x');
SELECT settle_submit('txn_x', 10, 'USD', 'EUR', 'acc_001', 'acc_002', 'bank_c', 'req_x');
SELECT settle_submit('txn_x', 100000000000000, 'USD', 'EUR', 'acc_001', 'acc_002', 'bank_b', 'req_x');
