-- Idempotency: same key and content replays; same key, other content is
-- refused (SE060); same transaction_id under another key is refused (SE061).
-- errors are recorded by pg_regress: only their SQLSTATE (docs/ERRORS.md)
\set VERBOSITY sqlstate
SELECT payment_id AS original_id, submitted_at AS original_at
  FROM settle_submit('txn_r1', 42.50, 'USD', 'EUR', 'acc_001', 'acc_002', 'bank_b', 'req_r1') \gset
SELECT count(*) AS payments_before FROM settle.payment \gset
SELECT count(*) AS events_before FROM settle.event WHERE entity = 'payment' \gset

-- an exact repeat returns the original outcome, marked as a replay
SELECT payment_id = :original_id AS same_id, status, replay, submitted_at = :'original_at' AS same_time
  FROM settle_submit('txn_r1', 42.50, 'USD', 'EUR', 'acc_001', 'acc_002', 'bank_b', 'req_r1');
-- the same amount written differently is the same content
SELECT replay FROM settle_submit('txn_r1', 42.5000, 'USD', 'EUR', 'acc_001', 'acc_002', 'bank_b', 'req_r1', priority => 5);

-- each field changed under the same key is a conflict
SELECT settle_submit('txn_r1', 42.51, 'USD', 'EUR', 'acc_001', 'acc_002', 'bank_b', 'req_r1'); -- other_amount
SELECT settle_submit('txn_r9', 42.50, 'USD', 'EUR', 'acc_001', 'acc_002', 'bank_b', 'req_r1'); -- other_transaction_id
SELECT settle_submit('txn_r1', 42.50, 'USD', 'USD', 'acc_001', 'acc_003', 'bank_b', 'req_r1'); -- other_destination
SELECT settle_submit('txn_r1', 42.50, 'USD', 'EUR', 'acc_001', 'acc_002', 'bank_b', 'req_r1', 6); -- other_priority
SELECT settle_submit('txn_r1', 42.50, 'USD', 'EUR', 'acc_001', 'acc_002', 'bank_b', 'req_r1', 5, now() + interval '1 day'); -- other_deadline
-- the transaction_id under a new key
SELECT settle_submit('txn_r1', 42.50, 'USD', 'EUR', 'acc_001', 'acc_002', 'bank_b', 'req_r2'); -- transaction_id_taken

-- a retry after the account was frozen still gets its original answer
SELECT settle_set_account_status('acc_001', 'frozen');
SELECT replay, status FROM settle_submit('txn_r1', 42.50, 'USD', 'EUR', 'acc_001', 'acc_002', 'bank_b', 'req_r1');
SELECT settle_submit('txn_r3', 1, 'USD', 'EUR', 'acc_001', 'acc_002', 'bank_b', 'req_r3'); -- new_payment_refused
SELECT settle_set_account_status('acc_001', 'active');

-- replays and conflicts wrote nothing
SELECT count(*) - :payments_before AS payments_written, (SELECT count(*) FROM settle.event WHERE entity = 'payment') - :events_before AS events_written
  FROM settle.payment;

-- status look-up, by transaction_id or by idempotency key
SELECT transaction_id, idempotency_key, amount, status FROM settle_payment_status(transaction_id => 'txn_r1');
SELECT transaction_id, idempotency_key, amount, status FROM settle_payment_status(idempotency_key => 'req_r1');
SELECT count(*) AS unknown FROM settle_payment_status(transaction_id => 'no_such');

-- a conflict's detail: the original payment when a field of 1.0 differs; a
-- field added since names itself and its stored value (include/payment_fields.h)
CREATE FUNCTION pg_temp.conflict_detail(call text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    d text;
BEGIN
    EXECUTE call;
    RETURN 'no conflict';
EXCEPTION WHEN SQLSTATE 'SE060' THEN
    GET STACKED DIAGNOSTICS d = PG_EXCEPTION_DETAIL;
    RETURN regexp_replace(d, '([Pp]ayment) \d+', '\1 N');
END
$$;
SELECT pg_temp.conflict_detail($$SELECT settle_submit('txn_r1', 42.51, 'USD', 'EUR', 'acc_001', 'acc_002', 'bank_b', 'req_r1')$$) AS other_amount;
SELECT pg_temp.conflict_detail($$SELECT settle_submit('txn_r1', 42.50, 'USD', 'EUR', 'acc_001', 'acc_002', 'bank_b', 'req_r1',
                                                      not_before => '2030-01-01 00:00:00+00')$$) AS other_not_before;
SELECT pg_temp.conflict_detail($$SELECT settle_submit('txn_r1', 42.50, 'USD', 'EUR', 'acc_001', 'acc_002', 'bank_b', 'req_r1',
                                                      link_group => 'grp_r1', link_size => 2)$$) AS other_link;
SELECT pg_temp.conflict_detail($$SELECT settle_submit('txn_r1', 42.50, 'USD', 'EUR', 'acc_001', 'acc_002', 'bank_b', 'req_r1')$$) AS same;
-- (a stored time, printed in UTC; rolled back: the later tests count the queue)
BEGIN;
SELECT replay FROM settle_submit('txn_r5', 1, 'USD', 'EUR', 'acc_001', 'acc_002', 'bank_b', 'req_r5',
                                 not_before => '2030-01-01 01:00:00+01');
SELECT pg_temp.conflict_detail($$SELECT settle_submit('txn_r5', 1, 'USD', 'EUR', 'acc_001', 'acc_002', 'bank_b', 'req_r5',
                                                      not_before => '2030-01-02 00:00:00+00')$$) AS later_not_before;
SELECT pg_temp.conflict_detail($$SELECT settle_submit('txn_r5', 1, 'USD', 'EUR', 'acc_001', 'acc_002', 'bank_b', 'req_r5',
                                                      not_before => '2030-01-01 00:00:00+00')$$) AS same_not_before;
ROLLBACK;
