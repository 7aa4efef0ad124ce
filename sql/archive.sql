-- Archiving the event log, cycles and seal runs by time range (issue #15):
-- settle_archive(before) moves them to tables of schema settle_archive
-- without breaking the hash chains, settle_verify(), settle_replay(), the
-- digests, payment history, the outbox counters or key retention; an
-- archive is checked against its recorded hashes, and can be detached.
-- Own database.
CREATE DATABASE settle_archive_test;
\c settle_archive_test
CREATE EXTENSION settle;
\set VERBOSITY sqlstate
CREATE FUNCTION b(participant text, dir text) RETURNS bigint LANGUAGE sql AS
  'SELECT max(batch_id) FROM settle.batch WHERE participant_id = participant AND direction = dir';
CREATE VIEW outbox AS
    SELECT metric, labels, value FROM settle.metrics
     WHERE metric IN ('settle_outbox_retries_total', 'settle_outbox_final_failures_total') ORDER BY 1, 2::text;

-- before the horizon: direct cycles, a funding, a return, two-phase cycles
-- with a retry, a failed pay-in (a voided cycle) and a failed pay-out
SELECT settle_create_participant(p) FROM unnest(ARRAY['aa', 'ab', 'ac']) p;
SELECT settle_create_account('aa_usd', 'aa', 'USD', opening_balance => 1000),
       settle_create_account('ab_usd', 'ab', 'USD', opening_balance => 100),
       settle_create_account('ac_usd', 'ac', 'USD');
SELECT status FROM settle_submit('a1', 10, 'USD', 'USD', 'aa_usd', 'ab_usd', 'ab', 'ak1');
SELECT status FROM settle_submit('a2', 20, 'USD', 'USD', 'ab_usd', 'ac_usd', 'ac', 'ak2');
SELECT considered, settled FROM settle_run_cycle();
SELECT settle_fund_account('ac_usd', 5, 'top-up') IS NOT NULL AS funded;
SELECT settle_return_payment((SELECT payment_id FROM settle.payment WHERE transaction_id = 'a1'), 'recall') > 0 AS returned;
SET settle.two_phase = on;
SET settle.rail_max_attempts = 2;
SET settle.rail_backoff = '0';
SELECT status FROM settle_submit('a3', 30, 'USD', 'USD', 'aa_usd', 'ac_usd', 'ac', 'ak3');
SELECT considered, settled FROM settle_run_cycle();
SELECT count(*) FROM settle_rail_fetch();
SELECT settle_rail_fail(b('aa', 'pay_in'), 'timeout at the bank');
SELECT count(*) FROM settle_rail_fetch();
SELECT settle_rail_confirm(b('aa', 'pay_in'));
SELECT count(*) FROM settle_rail_fetch();
SELECT settle_rail_fail(b('ac', 'pay_out'), 'account closed', retryable => false);
SELECT status FROM settle_submit('a4', 40, 'USD', 'USD', 'ab_usd', 'aa_usd', 'aa', 'ak4');
SELECT considered, settled FROM settle_run_cycle();
SELECT count(*) FROM settle_rail_fetch();
SELECT settle_rail_fail(b('ab', 'pay_in'), 'insufficient funds', retryable => false);
RESET settle.two_phase;
SELECT count(*) AS chains_sealed FROM settle_seal();
SELECT * FROM outbox;
SELECT count(*) AS rows FROM settle_payment_history('a1');
SELECT clock_timestamp() AS horizon \gset
SELECT pg_sleep(0.01);

-- after the horizon
SELECT status FROM settle_submit('a5', 1, 'USD', 'USD', 'aa_usd', 'ab_usd', 'ab', 'ak5');
SELECT considered, settled FROM settle_run_cycle();
SELECT settle_chain_digest() AS digest \gset
SELECT count(*) AS events_before_horizon FROM settle.event WHERE occurred_at < :'horizon';
SELECT count(*) AS differences FROM settle_replay();

-- archive what is older than the horizon
SELECT archive_id, events > 20 AS events, cycles, seal_runs, first_seq, last_seq = events AS prefix,
       tables
  FROM settle_archive(:'horizon');
SELECT count(*) AS events_before_horizon FROM settle.event WHERE occurred_at < :'horizon';
SELECT count(*) AS archived_events FROM settle_archive.event_1 WHERE occurred_at < :'horizon';
SELECT count(*) AS cycles_left FROM settle.cycle;
-- the live chain starts where the archive ends
SELECT x.seq = a.last_seq + 1 AS next_seq, x.prev_hash = a.end_hash AS links
  FROM settle.event_seal x, settle.archive a ORDER BY x.seq LIMIT 1;
-- nothing lost for the audit
SELECT problem, entity, entity_id FROM settle_verify();
SELECT count(*) AS differences FROM settle_replay();
SELECT chain, matches FROM settle_verify_digest(:'digest');
SELECT * FROM outbox;
SELECT count(*) AS rows FROM settle_payment_history('a1');
SELECT archive_id, attached, intact FROM settle_verify_archive();

-- the chain goes on: new events seal after the live head
SELECT status FROM settle_submit('a6', 1, 'USD', 'USD', 'aa_usd', 'ab_usd', 'ab', 'ak6');
SELECT considered, settled FROM settle_run_cycle();
SELECT problem, entity, entity_id FROM settle_verify();
SELECT count(*) AS differences FROM settle_replay();

-- a changed archived event or seal is found
BEGIN;
UPDATE settle_archive.event_1 SET details = details || '{"amount": 1}' WHERE event_id = (SELECT min(event_id) FROM settle_archive.event_1);
SELECT archive_id, attached, intact FROM settle_verify_archive(1);
ROLLBACK;
BEGIN;
DELETE FROM settle_archive.event_seal_1 WHERE seq = 3;
SELECT archive_id, attached, intact FROM settle_verify_archive(1);
ROLLBACK;

-- detached: dropped after export; the hashes in settle.archive still vouch,
-- and verify, replay and the counters stay exact without the tables
DROP TABLE settle_archive.event_1, settle_archive.event_seal_1, settle_archive.cycle_1, settle_archive.seal_run_1;
SELECT archive_id, attached, intact FROM settle_verify_archive();
SELECT problem, entity, entity_id FROM settle_verify();
SELECT count(*) AS differences FROM settle_replay();
SELECT chain, matches FROM settle_verify_digest(:'digest');
SELECT * FROM outbox;
SELECT source, what FROM settle_payment_history('a1') ORDER BY at, source, id;

-- a second archive goes on from the first
SELECT clock_timestamp() AS horizon2 \gset
SELECT pg_sleep(0.01);
SELECT status FROM settle_submit('a7', 1, 'USD', 'USD', 'aa_usd', 'ab_usd', 'ab', 'ak7');
SELECT archive_id, first_seq = (SELECT last_seq + 1 FROM settle.archive WHERE archive_id = 1) AS continues
  FROM settle_archive(:'horizon2');
SELECT problem, entity, entity_id FROM settle_verify();
SELECT count(*) AS differences FROM settle_replay();
SELECT archive_id, attached, intact FROM settle_verify_archive();
-- the chain's last transaction stayed live (the next seal links to it); the
-- seal by settle_verify() moved the chain on, so it goes now, then nothing is left
SELECT count(*) FROM settle_archive(:'horizon2');
SELECT count(*) FROM settle_archive(:'horizon2');
SELECT considered, settled FROM settle_run_cycle();
SELECT count(*) AS differences FROM settle_replay();

-- in slices (issue #29): at most max_events per archive, whole transactions
-- (one larger than a slice is taken whole), each slice a bounded transaction;
-- settle_archive_all commits slice after slice and can be resumed
SELECT count(*) AS submitted FROM generate_series(1, 12) i,
       LATERAL settle_submit('s' || i, 1, 'USD', 'USD', 'aa_usd', 'ab_usd', 'ab', 'sk' || i) s;
SELECT considered, settled FROM settle_run_cycle();
SELECT status FROM settle_submit('s13', 1, 'USD', 'USD', 'aa_usd', 'ab_usd', 'ab', 'sk13');
SELECT status FROM settle_submit('s14', 1, 'USD', 'USD', 'aa_usd', 'ab_usd', 'ab', 'sk14');
SELECT count(*) AS chains_sealed FROM settle_seal();
SELECT clock_timestamp() AS horizon3 \gset
SELECT pg_sleep(0.01);
SELECT status FROM settle_submit('s_after', 1, 'USD', 'USD', 'aa_usd', 'ab_usd', 'ab', 'sk_after');
SELECT count(*) FROM settle_archive(:'horizon3', 0);
SELECT max(archive_id) AS last_archive FROM settle.archive \gset
-- one slice of 3: the next transaction is bigger (the 12 payments' cycle), so
-- the slice ends before it
SELECT events <= 3 AS bounded, first_seq = (SELECT last_seq + 1 FROM settle.archive WHERE archive_id = :last_archive) AS continues
  FROM settle_archive(:'horizon3', 3);
SELECT count(*) AS events_left_before_horizon FROM settle.event WHERE occurred_at < :'horizon3' \gset
CALL settle_archive_all(:'horizon3', 3);
SELECT count(*) AS events_before_horizon FROM settle.event WHERE occurred_at < :'horizon3';
-- contiguous slices, each at most 3 events unless it is one transaction
SELECT count(*) > 2 AS several_slices,
       bool_and(a.first_seq = (SELECT p.last_seq + 1 FROM settle.archive p WHERE p.archive_id = a.archive_id - 1)) AS contiguous,
       bool_and(a.events <= 3
                OR (xpath('/row/n/text()', query_to_xml(format('SELECT count(DISTINCT xid) AS n FROM settle_archive.event_%s',
                                                               a.archive_id), false, true, '')))[1]::text = '1') AS bounded_or_whole,
       sum(a.events) = :events_left_before_horizon AS all_moved
  FROM settle.archive a WHERE a.archive_id > :last_archive + 1;
SELECT max(events) > 3 AS a_bigger_transaction_whole FROM settle.archive WHERE archive_id > :last_archive;
SELECT problem, entity, entity_id FROM settle_verify();
SELECT count(*) AS differences FROM settle_replay();
SELECT bool_and(intact) AS all_intact FROM settle_verify_archive();
-- nothing left: the procedure archives nothing
CALL settle_archive_all(:'horizon3', 3);
-- the whole-ledger check and the choice of the slice take no seal lock: a
-- call with nothing to archive leaves it untaken (before 1.2 it sealed and
-- locked first, for its whole transaction)
BEGIN;
SELECT count(*) AS archived FROM settle_archive(:'horizon3', 3);
SELECT count(*) AS seal_lock_held FROM pg_locks
 WHERE locktype = 'relation' AND relation = 'settle.seal_lock'::regclass AND pid = pg_backend_pid() AND granted;
ROLLBACK;
-- inside a transaction block it cannot commit its slices
BEGIN;
CALL settle_archive_all(:'horizon3', 3);
ROLLBACK;

-- key retention keeps working on archived payments
SELECT settle_purge_idempotency_keys(keep => '0 seconds') >= 4 AS purged;
SELECT count(*) FROM settle.payment WHERE idempotency_key LIKE '~expired:%';

-- refusals: a horizon not in the past (SE154), a ledger that does not
-- verify (SE155); outside an archive, events are append-only (SE110) and
-- the archive lock is nobody's (42501)
SELECT * FROM settle_archive(clock_timestamp() + interval '1 hour');
SELECT * FROM settle_archive(NULL);
BEGIN;
ALTER TABLE settle.ledger_entry DISABLE TRIGGER ledger_entry_append_only;
UPDATE settle.ledger_entry SET amount = amount + 1 WHERE entry_id = (SELECT max(entry_id) FROM settle.ledger_entry);
SELECT * FROM settle_archive(clock_timestamp());
ROLLBACK;
DELETE FROM settle.event WHERE event_id = (SELECT min(event_id) FROM settle.event);
DELETE FROM settle.archive;
CREATE ROLE regress_archive_operator IN ROLE settle_operator;
SET ROLE regress_archive_operator;
BEGIN;
LOCK TABLE settle.archive_lock IN EXCLUSIVE MODE;
ROLLBACK;
SELECT archive_id, attached FROM settle_verify_archive();
RESET ROLE;
-- the archive schema owned by another role (created before the first
-- archive, or handed over): refused (42501), nothing archived
SELECT status FROM settle_submit('a_owner', 1, 'USD', 'USD', 'aa_usd', 'ab_usd', 'ab', 'ak_owner');
SELECT count(*) AS chains_sealed FROM settle_seal();
BEGIN;
ALTER SCHEMA settle_archive OWNER TO regress_archive_operator;
SELECT * FROM settle_archive(clock_timestamp());
ROLLBACK;

\c postgres
DROP DATABASE settle_archive_test;
DROP ROLE regress_archive_operator;
