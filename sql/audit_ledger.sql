-- Ledger integrity and audit (docs/AUDIT.md): append-only refusals, the
-- hash chains and settle_verify(), digests, balances as of a moment,
-- payment history, replay.  Runs in its own database so that ids are known.
CREATE DATABASE settle_audit;
\c settle_audit
CREATE EXTENSION settle;
SET client_min_messages = warning;
-- errors are recorded by pg_regress: only their SQLSTATE, which is what
-- these tests check (the codes are settle's public interface, docs/ERRORS.md)
\set VERBOSITY sqlstate
-- Seal until every row is in its chain (a concurrent autovacuum transaction
-- could hold the horizon back for a moment); returns the chains' lengths.
CREATE FUNCTION seal_all() RETURNS TABLE (chain text, length bigint) LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN 1..100 LOOP
        PERFORM settle_seal();
        EXIT WHEN NOT EXISTS (SELECT 1 FROM settle.ledger_entry e
                               WHERE NOT EXISTS (SELECT 1 FROM settle.ledger_seal x WHERE x.entry_id = e.entry_id))
              AND NOT EXISTS (SELECT 1 FROM settle.event e
                               WHERE NOT EXISTS (SELECT 1 FROM settle.event_seal x WHERE x.event_id = e.event_id));
        PERFORM pg_sleep(0.1);
    END LOOP;
    RETURN QUERY SELECT 'ledger_entry', count(*) FROM settle.ledger_seal
       UNION ALL SELECT 'event', count(*) FROM settle.event_seal;
END
$$;

-- an empty ledger is clean, and sealing it seals nothing
SELECT chain, sealed, last_seq, head FROM settle_seal();
SELECT count(*) AS problems FROM settle_verify();

------------------------------------------------------------------------
-- 1. A mixed workload, with the moment after each step kept in a psql
--    variable: funding, payments, a cycle, a limit and a status change, an
--    FX payment, an expiry.
------------------------------------------------------------------------
SELECT clock_timestamp() AS t0 \gset
SELECT settle_set_wire_fee('USD', 25), settle_set_wire_fee('EUR', 20);
SELECT settle_set_fx_rate('EUR', 'USD', 1.10, 10) IS NOT NULL AS rate;
SELECT settle_create_participant(p) FROM unnest(ARRAY['bank_a', 'bank_b', 'bank_c']) p;
SELECT settle_create_account('a_usd', 'bank_a', 'USD', lower_limit => 100, opening_balance => 1000);
SELECT settle_create_account('b_usd', 'bank_b', 'USD', opening_balance => 200);
SELECT settle_create_account('c_usd', 'bank_c', 'USD');
SELECT settle_create_account('c_eur', 'bank_c', 'EUR');
SELECT clock_timestamp() AS t1 \gset
SELECT status FROM settle_submit('pay_1', 300, 'USD', 'USD', 'a_usd', 'b_usd', 'bank_b', 'k1');
SELECT status FROM settle_submit('pay_2', 50, 'USD', 'USD', 'b_usd', 'c_usd', 'bank_c', 'k2');
SELECT status FROM settle_submit('pay_3', 110, 'USD', 'EUR', 'a_usd', 'c_eur', 'bank_c', 'k3');
SELECT status FROM settle_submit('pay_4', 5000, 'USD', 'USD', 'c_usd', 'a_usd', 'bank_a', 'k4',
                                 deadline => clock_timestamp() + interval '2 seconds');
SELECT clock_timestamp() AS t2 \gset
SELECT considered, settled, unsettled FROM settle_run_cycle();
SELECT clock_timestamp() AS t3 \gset
SELECT settle_fund_account('b_usd', 40.50, 'top-up') AS funding_journal;
SELECT settle_set_account_limit('b_usd', 75);
SELECT settle_set_account_status('c_usd', 'frozen');
SELECT settle_set_participant_status('bank_c', 'suspended');
SELECT pg_sleep(2.1);
SELECT considered, settled, expired FROM settle_run_cycle();
SELECT clock_timestamp() AS t4 \gset
SELECT transaction_id, status, cycle_id, destination_amount FROM settle.payment ORDER BY payment_id;
SELECT account_id, balance_minor FROM settle.accounts ORDER BY account_id;

------------------------------------------------------------------------
-- 2. Sealing and verifying: every entry and event is chained; the ledger
--    is clean; sealing again adds nothing.
------------------------------------------------------------------------
SELECT * FROM seal_all();
SELECT count(*) AS ledger_entries, (SELECT count(*) FROM settle.event) AS events FROM settle.ledger_entry;
SELECT chain, sealed, last_seq FROM settle_seal();
SELECT * FROM settle_verify();
-- each seal links to the one before, the first to 32 zero bytes
SELECT count(*) AS links_ok FROM settle.ledger_seal x
  JOIN settle.ledger_seal y ON y.seq = x.seq - 1 AND x.prev_hash = y.hash;
SELECT encode(prev_hash, 'hex') = repeat('00', 32) AS genesis FROM settle.ledger_seal WHERE seq = 1;
-- anyone can recompute a seal with psql alone: sha256(previous hash || canonical content)
SELECT x.seq, e.entry_id,
       convert_from(settle._entry_content(e.entry_id, e.journal_id, e.batch_id, e.payment_id, e.account_id,
                                          e.currency, e.amount, e.posted_at), 'UTF8') ~
           ('^\[' || e.entry_id || ', ' || e.journal_id || ', null, null, "_external.USD", "USD", -100000, [0-9]+\]$') AS canonical,
       sha256(x.prev_hash || settle._entry_content(e.entry_id, e.journal_id, e.batch_id, e.payment_id, e.account_id,
                                                   e.currency, e.amount, e.posted_at)) = x.hash AS recomputed
  FROM settle.ledger_seal x JOIN settle.ledger_entry e USING (entry_id) WHERE x.seq = 1;
SELECT settle_chain_digest() AS digest \gset
SELECT chain, seq, matches FROM settle_verify_digest(:'digest');

------------------------------------------------------------------------
-- 3. Append-only, for every role.  As the owner (a superuser here):
------------------------------------------------------------------------
SELECT format('UPDATE settle.%I SET %s', t, c), format('DELETE FROM settle.%I', t),
       format('TRUNCATE settle.%I CASCADE', t)
  FROM (VALUES ('ledger_entry', 'amount = amount'), ('journal', 'reference = NULL'),
               ('event', 'details = NULL'), ('cycle', 'cost = 0'),
               ('ledger_seal', 'hash = hash'), ('event_seal', 'hash = hash'),
               ('seal_run', 'rows_sealed = 0')) v(t, c) \gexec
-- a role granted every privilege on them is refused the same way
CREATE ROLE regress_audit_writer;
GRANT USAGE ON SCHEMA settle TO regress_audit_writer;
GRANT ALL ON settle.ledger_entry, settle.journal, settle.event, settle.ledger_seal TO regress_audit_writer;
SET ROLE regress_audit_writer;
UPDATE settle.ledger_entry SET amount = 1;
DELETE FROM settle.event;
TRUNCATE settle.ledger_seal;
RESET ROLE;
-- an auditor reads and verifies, and may not write at all
CREATE ROLE regress_audit_reader IN ROLE settle_auditor;
SET ROLE regress_audit_reader;
UPDATE settle.ledger_entry SET amount = 1;
DELETE FROM settle.event;
INSERT INTO settle.ledger_seal VALUES (999, 999, '\x00', '\x00');
SELECT settle_seal();
SELECT count(*) AS problems FROM settle_verify();
-- and recomputes every seal of the ledger chain itself
SELECT count(*) AS seals_recomputed FROM settle.ledger_seal x JOIN settle.ledger_entry e USING (entry_id)
 WHERE sha256(x.prev_hash || settle._entry_content(e.entry_id, e.journal_id, e.batch_id, e.payment_id, e.account_id,
                                                   e.currency, e.amount, e.posted_at)) = x.hash;
RESET ROLE;
-- nothing changed
SELECT count(*) AS ledger_entries, sum(abs(amount)) AS volume FROM settle.ledger_entry;

------------------------------------------------------------------------
-- 4. Tampering by a superuser, who disables the trigger and alters the
--    debit leg of pay_1: verify names the entry, its batch, its journal,
--    the account and the payment.  Put back, all is clean again.
------------------------------------------------------------------------
SELECT e.entry_id, e.batch_id, e.account_id, e.amount FROM settle.ledger_entry e
  JOIN settle.payment p USING (payment_id) WHERE p.transaction_id = 'pay_1' ORDER BY e.entry_id;
SELECT e.entry_id AS victim, e.amount AS original FROM settle.ledger_entry e
  JOIN settle.payment p USING (payment_id) WHERE p.transaction_id = 'pay_1' AND e.amount < 0 \gset
ALTER TABLE settle.ledger_entry DISABLE TRIGGER ledger_entry_append_only;
UPDATE settle.ledger_entry SET amount = -20000 WHERE entry_id = :victim;
ALTER TABLE settle.ledger_entry ENABLE TRIGGER ledger_entry_append_only;
-- (the statement tree's roots are hashes over random salts: shown as <hash>)
SELECT problem, entity, entity_id, regexp_replace(detail, '[0-9a-f]{64}', '<hash>', 'g') AS detail FROM settle_verify();
ALTER TABLE settle.ledger_entry DISABLE TRIGGER ledger_entry_append_only;
UPDATE settle.ledger_entry SET amount = :original WHERE entry_id = :victim;
ALTER TABLE settle.ledger_entry ENABLE TRIGGER ledger_entry_append_only;
SELECT count(*) AS problems FROM settle_verify();

-- an event deleted
BEGIN;
ALTER TABLE settle.event DISABLE TRIGGER event_append_only;
DELETE FROM settle.event WHERE event_id = 20;
SELECT * FROM settle_verify(seal => false);
ROLLBACK;

-- two entries in a journal that does not exist (the table has no foreign keys)
BEGIN;
INSERT INTO settle.ledger_entry (journal_id, account_id, currency, amount)
    VALUES (999999, 'a_usd', 'USD', 1), (999999, 'b_usd', 'USD', -1);
SELECT problem, detail FROM settle_verify(seal => false) WHERE problem LIKE 'entry%' ORDER BY entity_id;
ROLLBACK;

-- two seals swapped (a reordered chain): the first broken link is named
BEGIN;
ALTER TABLE settle.ledger_seal DISABLE TRIGGER ledger_seal_append_only;
UPDATE settle.ledger_seal SET seq = -seq WHERE seq IN (5, 6);
UPDATE settle.ledger_seal SET seq = CASE seq WHEN -5 THEN 6 ELSE 5 END WHERE seq IN (-5, -6);
SELECT problem, entity, entity_id, regexp_replace(detail, '[0-9a-f]{64}', '<hash>', 'g') AS detail
  FROM settle_verify(seal => false);
ROLLBACK;

-- a consistent rewrite: an entry backdated by a day (no balance changes)
-- AND every seal recomputed.  The chain alone cannot tell; the statement
-- tree's leaf (merkle_leaf_altered), the head the last seal run recorded
-- (chain_head_missing) and the digest stored outside can.
BEGIN;
ALTER TABLE settle.ledger_entry DISABLE TRIGGER ledger_entry_append_only;
ALTER TABLE settle.ledger_seal DISABLE TRIGGER ledger_seal_append_only;
UPDATE settle.ledger_entry SET posted_at = posted_at - interval '1 day' WHERE entry_id = :victim;
SELECT problem, entity_id FROM settle_verify(seal => false);
UPDATE settle.ledger_seal x SET prev_hash = n.prev_hash, hash = n.hash
  FROM (SELECT c.seq, coalesce(lag(c.hash) OVER (ORDER BY c.seq), decode(repeat('00', 32), 'hex')) AS prev_hash, c.hash
          FROM (SELECT s.seq, settle._chain(decode(repeat('00', 32), 'hex'),
                           settle._entry_content(e.entry_id, e.journal_id, e.batch_id, e.payment_id, e.account_id,
                                                 e.currency, e.amount, e.posted_at)) OVER (ORDER BY s.seq) AS hash
                  FROM settle.ledger_seal s JOIN settle.ledger_entry e USING (entry_id)) c) n
 WHERE n.seq = x.seq;
SELECT problem, entity FROM settle_verify(seal => false);
SELECT chain, seq, matches FROM settle_verify_digest(:'digest');
ROLLBACK;
SELECT chain, seq, matches FROM settle_verify_digest(:'digest');
SELECT settle_verify_digest('{}'); -- not_a_digest

------------------------------------------------------------------------
-- 4b. What the chains did not cover (issue: security round 2): the rows
--     that state money or an outcome are checked against chained rows,
--     the chain heads against the last seal run, and an emptied ledger is
--     never clean.  The owner can disable triggers; verify still tells.
------------------------------------------------------------------------
SELECT count(*) AS problems_before FROM settle_verify();
-- a batch's wire cannot be changed, only its rail state
UPDATE settle.batch SET net_amount = net_amount + 100; -- change_wire
DELETE FROM settle.batch; -- delete_batches
BEGIN;
ALTER TABLE settle.batch DISABLE TRIGGER batch_wire_fixed;
UPDATE settle.batch SET net_amount = net_amount + 100 WHERE batch_id = (SELECT min(batch_id) FROM settle.batch);
SELECT problem, entity FROM settle_verify(seal => false);
ROLLBACK;
-- a cycle record and a journal rewritten with the triggers off
BEGIN;
ALTER TABLE settle.cycle DISABLE TRIGGER USER;
UPDATE settle.cycle SET settled = settled + 1 WHERE cycle_id = (SELECT min(cycle_id) FROM settle.cycle);
ALTER TABLE settle.journal DISABLE TRIGGER journal_append_only;
UPDATE settle.journal SET reference = 'rewritten' WHERE kind = 'funding' AND journal_id = (SELECT min(journal_id) FROM settle.journal);
UPDATE settle.journal SET cycle_id = cycle_id + 1000 WHERE kind = 'settlement' AND journal_id = (SELECT max(journal_id) FROM settle.journal WHERE kind = 'settlement');
SELECT problem, entity FROM settle_verify(seal => false) ORDER BY 1, 2;
ROLLBACK;
-- a deleted tail: the last entries and their seals removed, balances fixed
-- to match; the last seal run still names the old head
BEGIN;
ALTER TABLE settle.ledger_entry DISABLE TRIGGER ledger_entry_append_only;
ALTER TABLE settle.ledger_seal DISABLE TRIGGER ledger_seal_append_only;
CREATE TEMP TABLE gone AS
    SELECT e.* FROM settle.ledger_entry e JOIN settle.ledger_seal x USING (entry_id)
     WHERE x.seq > (SELECT max(seq) - 2 FROM settle.ledger_seal);
DELETE FROM settle.ledger_seal WHERE entry_id IN (SELECT entry_id FROM gone);
DELETE FROM settle.ledger_entry WHERE entry_id IN (SELECT entry_id FROM gone);
UPDATE settle.account a SET balance = a.balance - g.total
  FROM (SELECT account_id, sum(amount) AS total FROM gone GROUP BY 1) g WHERE a.account_id = g.account_id;
SELECT problem, entity FROM settle_verify(seal => false) WHERE problem LIKE 'chain%' OR problem LIKE 'ledger%';
ROLLBACK;
-- an emptied ledger: entries, seals and seal runs gone, balances zeroed
BEGIN;
ALTER TABLE settle.ledger_entry DISABLE TRIGGER ledger_entry_append_only;
ALTER TABLE settle.ledger_seal DISABLE TRIGGER ledger_seal_append_only;
ALTER TABLE settle.seal_run DISABLE TRIGGER seal_run_append_only;
TRUNCATE settle.ledger_entry, settle.ledger_seal;
DELETE FROM settle.seal_run;
UPDATE settle.account SET balance = 0, pending_debit = 0, pending_credit = 0;
SELECT problem, entity FROM settle_verify(seal => false) WHERE problem LIKE 'ledger%' OR problem LIKE 'chain_head%';
ROLLBACK;
SELECT count(*) AS problems_after FROM settle_verify();

------------------------------------------------------------------------
-- 5. As of a moment: three accounts before anything, after funding,
--    after submitting (nothing posted yet), after the first cycle, now.
------------------------------------------------------------------------
SELECT a.account_id, i.at, b.balance, b.entries
  FROM unnest(ARRAY['a_usd', 'b_usd', 'c_eur']) a(account_id),
       (VALUES ('t0', :'t0'::timestamptz), ('t1', :'t1'), ('t2', :'t2'), ('t3', :'t3'), ('t4', :'t4')) i(at, ts),
       LATERAL settle_balance_as_of(a.account_id, i.ts) b
 ORDER BY 1, 2;
-- now equals the current balance, for every account
SELECT count(*) AS accounts, count(*) FILTER (WHERE b.balance_minor = a.balance) AS equal_now
  FROM settle.account a, LATERAL settle_balance_as_of(a.account_id, clock_timestamp()) b;
SELECT settle_balance_as_of('nope', now()); -- unknown_account

------------------------------------------------------------------------
-- 6. The history of a payment, and of one that expired.
------------------------------------------------------------------------
SELECT source, id, what, from_status, to_status, account_id, amount, journal_id, batch_id
  FROM settle_payment_history('pay_3');
SELECT source, id, what, from_status, to_status, details FROM settle_payment_history('pay_4');
SELECT count(*) AS unknown FROM settle_payment_history('nope');

------------------------------------------------------------------------
-- 7. Replay from the event log: equal to the current state.
------------------------------------------------------------------------
--    Balances too: every event that posted carries its postings.
SELECT entity, regexp_replace(field, ' .*', '') AS field, count(*) AS compared,
       count(*) FILTER (WHERE NOT equal) AS different
  FROM settle_replay(false) GROUP BY 1, 2 ORDER BY 1, 2;
SELECT * FROM settle_replay();
-- the balances rebuilt from the events, next to the current ones
SELECT entity_id AS account_id, replayed, current, equal
  FROM settle_replay(false) WHERE field = 'balance' ORDER BY 1;
-- what a settled payment's event carries
SELECT e.details->'postings' AS postings
  FROM settle.event e JOIN settle.payment p ON p.payment_id::text = e.entity_id
 WHERE e.entity = 'payment' AND e.event_type = 'settled' AND p.transaction_id = 'pay_1';
-- a status, a limit, a balance and a pending amount changed behind the event log's back are found,
-- and so is a ledger entry that no event announced
-- (a final outcome refuses to change, the owner's UPDATE included; a
-- tamperer disables that trigger first)
UPDATE settle.payment SET status = 'queued' WHERE transaction_id = 'pay_2'; -- outcome_final
BEGIN;
ALTER TABLE settle.payment DISABLE TRIGGER payment_outcome_final;
UPDATE settle.payment SET status = 'queued' WHERE transaction_id = 'pay_2';
UPDATE settle.account SET lower_limit = 0 WHERE account_id = 'b_usd';
UPDATE settle.account SET balance = balance + 1 WHERE account_id = 'c_eur';
UPDATE settle.account SET pending_debit = 5 WHERE account_id = 'c_usd';
INSERT INTO settle.ledger_entry (journal_id, account_id, currency, amount)
    SELECT min(journal_id), 'a_usd', 'USD', 500 FROM settle.journal;
SELECT * FROM settle_replay();
ROLLBACK;

------------------------------------------------------------------------
-- 8. Streaming: the publication for logical replication and CDC.
------------------------------------------------------------------------
-- created by the operator, once (not by CREATE EXTENSION: pg_dump would then
-- dump it and every restore would fail on "already exists")
SELECT count(*) AS before_created FROM pg_publication WHERE pubname = 'settle_events';
SELECT settle_create_publication();
SELECT settle_create_publication() AS again;
SELECT pubname, pubinsert, pubupdate, pubdelete, pubtruncate FROM pg_publication WHERE pubname = 'settle_events';
SELECT schemaname, tablename FROM pg_publication_tables WHERE pubname = 'settle_events' ORDER BY 2;

\c contrib_regression
DROP DATABASE settle_audit;
DROP ROLE regress_audit_writer;
DROP ROLE regress_audit_reader;
