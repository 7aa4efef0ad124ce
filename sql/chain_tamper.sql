-- Every field of every chained row, changed behind the triggers' back, is
-- reported by settle_verify() (issue #34): events and ledger entries (their
-- hash chains), their seals, the batch, cycle and journal records (checked
-- against the chained events), the statement tree's leaves and subtrees.
-- Each change is made by a superuser with the triggers off, checked and
-- rolled back.  The list of fields comes from the catalog: a column added to
-- one of these tables without a tamper case (or a reason why verify cannot
-- see it) fails the coverage check at the end, and so does a field that the
-- hash functions stop covering (its tamper case then finds nothing).
CREATE DATABASE settle_tamper;
\c settle_tamper
CREATE EXTENSION settle;
SET client_min_messages = warning;
\set VERBOSITY sqlstate

-- a little of everything: settled payments in batches, a funding, a return
SELECT settle_set_wire_fee('USD', 25);
SELECT settle_create_participant(p) FROM unnest(ARRAY['ta', 'tb', 'tc']) p;
SELECT settle_create_account('ta_usd', 'ta', 'USD', opening_balance => 1000),
       settle_create_account('tb_usd', 'tb', 'USD', opening_balance => 100),
       settle_create_account('tc_usd', 'tc', 'USD');
SELECT status FROM settle_submit('t1', 300, 'USD', 'USD', 'ta_usd', 'tb_usd', 'tb', 'tk1');
SELECT status FROM settle_submit('t2', 50, 'USD', 'USD', 'tb_usd', 'tc_usd', 'tc', 'tk2');
SELECT status FROM settle_submit('t3', 20, 'USD', 'USD', 'ta_usd', 'tc_usd', 'tc', 'tk3');
SELECT considered, settled, batches FROM settle_run_cycle();
SELECT settle_fund_account('tb_usd', 40.50, 'top-up') > 0 AS funded;
SELECT settle_return_payment((SELECT payment_id FROM settle.payment WHERE transaction_id = 't3'), 'recalled') > 0 AS returned;
-- seal until every row is in its chain (an autovacuum transaction can hold
-- the horizon back for a moment)
DO $$
BEGIN
    FOR i IN 1..100 LOOP
        PERFORM settle_seal();
        EXIT WHEN NOT EXISTS (SELECT 1 FROM settle.ledger_entry e
                               WHERE NOT EXISTS (SELECT 1 FROM settle.ledger_seal x WHERE x.entry_id = e.entry_id))
              AND NOT EXISTS (SELECT 1 FROM settle.event e
                               WHERE NOT EXISTS (SELECT 1 FROM settle.event_seal x WHERE x.event_id = e.event_id));
        PERFORM pg_sleep(0.1);
    END LOOP;
END
$$;
SELECT count(*) AS problems_before FROM settle_verify(seal => false);

-- The rows changed: one of each kind, chosen so that only the check under
-- test can see the change (an event of a payment that no record is compared
-- with; a settlement leg; the first batch; the cycle; each kind of journal;
-- an entry in the middle of the chain, so that links on both sides exist).
CREATE TEMP TABLE victim AS SELECT
    (SELECT min(e.event_id) FROM settle.event e
      WHERE e.entity = 'payment' AND e.event_type = 'settled') AS event_id,
    (SELECT min(e.entry_id) FROM settle.ledger_entry e WHERE e.payment_id IS NOT NULL AND e.batch_id IS NOT NULL) AS entry_id,
    (SELECT min(b.batch_id) FROM settle.batch b) AS batch_id,
    (SELECT min(c.cycle_id) FROM settle.cycle c) AS cycle_id,
    (SELECT min(j.journal_id) FROM settle.journal j WHERE j.kind = 'funding' AND j.reference IS NOT NULL) AS funding_journal,
    (SELECT min(j.journal_id) FROM settle.journal j WHERE j.kind = 'settlement') AS settlement_journal,
    (SELECT min(j.journal_id) FROM settle.journal j WHERE j.kind = 'reversal') AS reversal_journal;
SELECT event_id IS NOT NULL AND entry_id IS NOT NULL AND batch_id IS NOT NULL AND cycle_id IS NOT NULL
       AND funding_journal IS NOT NULL AND settlement_journal IS NOT NULL AND reversal_journal IS NOT NULL AS victims_found
  FROM victim;
-- the event has every field set, so that each can change
SELECT e.from_status IS NOT NULL AND e.to_status IS NOT NULL AND e.details IS NOT NULL AS event_fields_set
  FROM settle.event e, victim v WHERE e.event_id = v.event_id;

-- tamper_case: which row of which table, which column, its new value (an SQL
-- expression over the row's old values)
CREATE TEMP TABLE tamper_case (tbl text, col text, new_value text, row_filter text, PRIMARY KEY (tbl, col, row_filter));
INSERT INTO tamper_case
SELECT 'event', c, v, format('event_id = %s', event_id) FROM victim,
  (VALUES ('event_id', 'event_id + 1000000'),
          ('occurred_at', 'occurred_at + interval ''1 microsecond'''),
          ('entity', '''account'''),
          ('entity_id', 'entity_id || ''0'''),
          ('event_type', '''settled_twice'''),
          ('from_status', '''expired'''),
          ('to_status', '''queued'''),
          ('details', 'details || ''{"note": "x"}''')) t(c, v)
UNION ALL
SELECT 'ledger_entry', c, v, format('entry_id = %s', entry_id) FROM victim,
  (VALUES ('entry_id', 'entry_id + 1000000'),
          ('journal_id', 'journal_id + 1'),
          ('batch_id', 'batch_id + 1'),
          ('payment_id', 'payment_id + 1'),
          ('account_id', '''tc_usd'''),
          ('currency', '''EUR'''),
          ('amount', 'amount + 1'),
          ('posted_at', 'posted_at + interval ''1 microsecond''')) t(c, v)
UNION ALL
SELECT s, c, v, 'seq = 3' FROM unnest(ARRAY['ledger_seal', 'event_seal']) s,
  (VALUES ('seq', 'seq + 1000000'),
          ('prev_hash', 'sha256(prev_hash)'),
          ('hash', 'sha256(hash)')) t(c, v)
UNION ALL
SELECT 'ledger_seal', 'entry_id', 'entry_id + 1000000', 'seq = 3'
UNION ALL
SELECT 'event_seal', 'event_id', 'event_id + 1000000', 'seq = 3'
UNION ALL
SELECT 'batch', c, v, format('batch_id = %s', batch_id) FROM victim,
  (VALUES ('batch_id', 'batch_id + 1000000'),
          ('cycle_id', 'cycle_id + 1'),
          ('participant_id', '''tc'''),
          ('currency', '''EUR'''),
          ('net_amount', 'net_amount + 1'),
          ('fee', 'fee + 1'),
          ('direction', 'CASE direction WHEN ''none'' THEN ''pay_in'' ELSE ''none'' END')) t(c, v)
UNION ALL
SELECT 'cycle', c, v, format('cycle_id = %s', cycle_id) FROM victim,
  (VALUES ('cycle_id', 'cycle_id + 1000000'),
          ('settled', 'settled + 1'),
          ('expired', 'expired + 1'),
          ('batches', 'batches + 1'),
          ('solver_status', '''heuristic''')) t(c, v)
UNION ALL
SELECT 'journal', c, v, format('journal_id = %s', j) FROM victim,
  (VALUES ('journal_id', 'journal_id + 1000000', 'funding'),
          ('kind', '''adjustment''', 'settlement'),
          ('cycle_id', 'cycle_id + 1', 'settlement'),
          ('reference', 'reference || ''x''', 'reversal')) t(c, v, k),
  LATERAL (SELECT CASE k WHEN 'funding' THEN funding_journal WHEN 'settlement' THEN settlement_journal
                         ELSE reversal_journal END) x(j)
UNION ALL
SELECT 'ledger_leaf', c, v, 'seq = 3' FROM
  (VALUES ('seq', 'seq + 1000000'),
          ('entry_id', 'entry_id + 1000000'),
          ('account_id', '''tz_usd'''),
          ('account_seq', 'account_seq + 1000'),
          ('balance_after', 'balance_after + 1'),
          ('salt', 'sha256(salt)')) t(c, v)
UNION ALL
SELECT 'ledger_merkle_node', c, v, 'level = 1 AND idx = 1' FROM
  (VALUES ('level', 'level + 10'),
          ('idx', 'idx + 1000'),
          ('hash', 'sha256(hash)')) t(c, v);

-- Fields settle_verify() cannot check, and why: nothing chained records
-- them.  Listed so that the list is seen, and a new column has to be put
-- in one list or the other.
CREATE TEMP TABLE unprotected (tbl text, col text, why text, PRIMARY KEY (tbl, col));
INSERT INTO unprotected
SELECT 'event', 'xid', 'which transaction wrote it: when to seal, not what'
UNION ALL SELECT 'ledger_entry', 'xid', 'which transaction wrote it: when to seal, not what'
UNION ALL SELECT s, 'sealed_at', 'when the seal was written' FROM unnest(ARRAY['ledger_seal', 'event_seal']) s
UNION ALL SELECT 'journal', 'created_at', 'no event records it'
UNION ALL SELECT 'batch', c, 'the wire''s totals: fixed by a trigger, not in its first event (net_amount and fee are)'
  FROM unnest(ARRAY['debit_total', 'credit_total', 'payment_legs', 'created_at']) c
UNION ALL SELECT 'batch', c, 'rail state: changes as the rail answers'
  FROM unnest(ARRAY['status', 'attempts', 'next_attempt_at', 'instructed_at', 'rail_reference', 'last_error', 'updated_at']) c
UNION ALL SELECT 'cycle', c, 'not in its completed event (settled, expired, batches, solver_status are)'
  FROM unnest(ARRAY['started_at', 'finished_at', 'run_by', 'reference_currency', 'considered', 'deferred', 'unsettled',
                    'settled_value', 'wires', 'fee_cost', 'fx_cost', 'cost', 'fifo_settled', 'fifo_value', 'fifo_cost',
                    'naive_wires', 'naive_cost', 'lp_bound_pct', 'solver_method', 'solver_ms', 'cycle_ms', 'journal_id',
                    'fifo_netted_wires', 'fifo_netted_cost']) c;

-- One case: the change, then what settle_verify() says, then undone (the
-- subtransaction is rolled back, the triggers' state with it).
CREATE FUNCTION tamper(tbl text, col text, new_value text, row_filter text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
    found text;
BEGIN
    BEGIN
        SET LOCAL session_replication_role = replica;   -- no trigger fires
        -- an id GENERATED ALWAYS can only be changed once it is BY DEFAULT
        IF EXISTS (SELECT 1 FROM pg_attribute x WHERE x.attrelid = ('settle.' || tbl)::regclass
                      AND x.attname = col AND x.attidentity = 'a') THEN
            EXECUTE format('ALTER TABLE settle.%I ALTER COLUMN %I SET GENERATED BY DEFAULT', tbl, col);
        END IF;
        EXECUTE format('UPDATE settle.%I SET %I = %s WHERE %s', tbl, col, new_value, row_filter);
        GET DIAGNOSTICS n = ROW_COUNT;
        SET LOCAL session_replication_role = origin;
        IF n <> 1 THEN
            found := format('(%s rows changed, not 1)', n);
        ELSE
            SELECT string_agg(DISTINCT v.problem, ' ') INTO found FROM settle_verify(seal => false) v;
        END IF;
        RAISE EXCEPTION 'undo' USING ERRCODE = 'P0001';
    EXCEPTION WHEN OTHERS THEN
        IF SQLERRM <> 'undo' THEN
            found := format('the change failed: %s', SQLSTATE);
        END IF;
    END;
    RETURN coalesce(found, 'NOTHING FOUND');
END
$$;

-- every case: what verify reports
SELECT t.tbl, t.col, tamper(t.tbl, t.col, t.new_value, t.row_filter) AS reported
  FROM tamper_case t ORDER BY 1, 2;
-- and every change was undone
SELECT count(*) AS problems_after FROM settle_verify(seal => false);

-- Coverage.  Each chained table: every column is tampered with or listed
-- as unprotected, and nothing else is.
SELECT coalesce(a.tbl, c.tbl) AS tbl, coalesce(a.col, c.col) AS col,
       CASE WHEN c.tbl IS NULL THEN 'a column without a tamper case'
            ELSE 'a tamper case for no column' END AS coverage
  FROM (SELECT r.relname::text AS tbl, x.attname::text AS col
          FROM pg_attribute x JOIN pg_class r ON r.oid = x.attrelid
         WHERE r.relnamespace = 'settle'::regnamespace
           AND r.relname IN ('event', 'ledger_entry', 'ledger_seal', 'event_seal', 'batch', 'cycle', 'journal',
                             'ledger_leaf', 'ledger_merkle_node')
           AND x.attnum > 0 AND NOT x.attisdropped) a
  FULL JOIN (SELECT t.tbl, t.col FROM tamper_case t UNION SELECT u.tbl, u.col FROM unprotected u) c
    ON c.tbl = a.tbl AND c.col = a.col
 WHERE a.tbl IS NULL OR c.tbl IS NULL
 ORDER BY 1, 2;
-- the chained content of events and entries names every column but xid,
-- as the hash functions are called (settle._chain_spec)
SELECT s.which, array_agg(m[1] ORDER BY m[1]) AS hashed
  FROM unnest(ARRAY['event', 'ledger_entry']) s(which),
       LATERAL regexp_matches((settle._chain_spec(s.which)).content, '\me\.([a-z_]+)', 'g') m
 GROUP BY 1 ORDER BY 1;
SELECT s.which, array_agg(x.attname::text ORDER BY x.attname) AS columns_but_xid
  FROM unnest(ARRAY['event', 'ledger_entry']) s(which)
  JOIN pg_attribute x ON x.attrelid = ('settle.' || s.which)::regclass AND x.attnum > 0 AND NOT x.attisdropped
 WHERE x.attname <> 'xid'
 GROUP BY 1 ORDER BY 1;
-- the unprotected fields, for the record
SELECT tbl, string_agg(col, ', ' ORDER BY col) AS unprotected FROM unprotected GROUP BY 1 ORDER BY 1;

\c contrib_regression
DROP DATABASE settle_tamper;
