-- settle 1.0 -> 1.1 (ALTER EXTENSION settle UPDATE TO '1.1').
--
-- Every object 1.1 adds or changes, in the order of src/sql/*.sql, so that an
-- updated 1.0 database has exactly the objects of a fresh 1.1 install
-- (test/scripts/upgrade.sh compares the two catalogs).  Each section names the
-- issue it comes from; a function changed in src/sql/ is replaced here whole.

\echo Use "ALTER EXTENSION settle UPDATE TO '1.1'" to load this file. \quit


-- issue #18: the backlog between cycles (settle_backlog_status(), family backlog of settle.metrics)
-- One row while settle is preloaded and this is the worker's database.
CREATE FUNCTION settle_backlog_status(
    OUT queued_estimate bigint, OUT arrived bigint, OUT refused bigint,
    OUT waiting bigint, OUT oldest_waiting_payment bigint, OUT oldest_waiting_since timestamptz,
    OUT stalled boolean, OUT stalled_since timestamptz, OUT stalls bigint,
    OUT cycles_without_progress integer, OUT backoff_ms double precision,
    OUT batch_delay_ms double precision, OUT reported_at timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'settle_backlog_status' LANGUAGE C VOLATILE;
-- the same in settle's schema, for the metrics (a name in public could be
-- made ambiguous by someone else's overload)
CREATE FUNCTION settle._backlog_status(
    OUT queued_estimate bigint, OUT arrived bigint, OUT refused bigint,
    OUT waiting bigint, OUT oldest_waiting_payment bigint, OUT oldest_waiting_since timestamptz,
    OUT stalled boolean, OUT stalled_since timestamptz, OUT stalls bigint,
    OUT cycles_without_progress integer, OUT backoff_ms double precision,
    OUT batch_delay_ms double precision, OUT reported_at timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'settle_backlog_status' LANGUAGE C VOLATILE;

-- backlog: what the worker's last cycle left and how it paces itself; 0 (the
-- estimate NULL, NaN in Prometheus) where this database has no worker.
CREATE FUNCTION settle._metrics_backlog()
RETURNS TABLE (metric text, labels jsonb, value double precision)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    WITH b AS (SELECT * FROM settle._backlog_status()),
         one AS (SELECT b.* FROM (SELECT 1) x LEFT JOIN b ON true)
    SELECT 'settle_backlog_queued_estimate', '{}'::jsonb, one.queued_estimate::double precision FROM one
    UNION ALL
    SELECT 'settle_intake_refused_total', '{}'::jsonb, coalesce(one.refused, 0)::double precision FROM one
    UNION ALL
    SELECT 'settle_backlog_waiting_payments', '{}'::jsonb, coalesce(one.waiting, 0)::double precision FROM one
    UNION ALL
    -- how long every cycle has left the same oldest payment waiting
    SELECT 'settle_backlog_oldest_waiting_seconds', '{}'::jsonb,
           coalesce(extract(epoch FROM clock_timestamp() - one.oldest_waiting_since), 0)::double precision FROM one
    UNION ALL
    SELECT 'settle_backlog_stalled', '{}'::jsonb, CASE WHEN one.stalled THEN 1 ELSE 0 END::double precision FROM one
    UNION ALL
    SELECT 'settle_backlog_stalls_total', '{}'::jsonb, coalesce(one.stalls, 0)::double precision FROM one
    UNION ALL
    SELECT 'settle_worker_backoff_seconds', '{}'::jsonb, coalesce(one.backoff_ms / 1000, 0)::double precision FROM one
    UNION ALL
    SELECT 'settle_worker_batch_delay_seconds', '{}'::jsonb,
           coalesce(one.batch_delay_ms / 1000, 0)::double precision FROM one
$$;

CREATE OR REPLACE VIEW settle.metrics AS
              SELECT 'queue'::text AS family, m.metric, m.labels, m.value FROM settle._metrics_queue() m
    UNION ALL SELECT 'cycles', m.metric, m.labels, m.value FROM settle._metrics_cycles() m
    UNION ALL SELECT 'latency', m.metric, m.labels, m.value FROM settle._metrics_latency() m
    UNION ALL SELECT 'outbox', m.metric, m.labels, m.value FROM settle._metrics_outbox() m
    UNION ALL SELECT 'worker', m.metric, m.labels, m.value FROM settle._metrics_worker() m
    UNION ALL SELECT 'replication', m.metric, m.labels, m.value FROM settle._metrics_replication() m
    UNION ALL SELECT 'backlog', m.metric, m.labels, m.value FROM settle._metrics_backlog() m;
REVOKE ALL ON FUNCTION @extschema@.settle_backlog_status(), settle._backlog_status(), settle._metrics_backlog() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.settle_backlog_status(), settle._metrics_backlog()
    TO pg_monitor, settle_operator, settle_auditor;
COMMENT ON FUNCTION @extschema@.settle_backlog_status() IS
    'The queue as the settlement worker last saw it (only in settle.database): estimated depth, intake refusals (SE160), payments left waiting, a stalled backlog, the worker''s backoff and batching delay';
COMMENT ON COLUMN settle.metrics.family IS 'queue, cycles, latency, outbox, worker, replication or backlog';

-- issue #18: two-phase notifications (settle_settled when the rail's confirmation posts a cycle,
-- settle_failed when a failed pay-in voids it)
-- Notify channel with the payment ids of one cycle, in parts of at most 400.
CREATE FUNCTION settle._notify_payments(channel text, p_cycle_id bigint, ids bigint[]) RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n integer := coalesce(cardinality(ids), 0);
    per constant integer := 400;
    parts integer := (n + per - 1) / per;
    i integer;
BEGIN
    FOR i IN 1 .. parts LOOP
        -- the text of src/cycle.c's payloads, key for key
        PERFORM pg_notify(channel, format('{"cycle": %s, "part": %s, "parts": %s, "payments": [%s]}',
                                          p_cycle_id, i, parts,
                                          array_to_string(ids[(i - 1) * per + 1 : i * per], ', ')));
    END LOOP;
    RETURN parts;
END
$$;
REVOKE ALL ON FUNCTION settle._notify_payments(text, bigint, bigint[]) FROM PUBLIC;
CREATE OR REPLACE FUNCTION settle._post_cycle(p_cycle_id bigint) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    jid bigint;
    b settle.batch;
BEGIN
    INSERT INTO settle.journal (kind, cycle_id, reference)
        VALUES ('settlement', p_cycle_id, 'two-phase: all pay-ins confirmed')
        RETURNING journal_id INTO jid;
    INSERT INTO settle.ledger_entry (journal_id, batch_id, payment_id, account_id, currency, amount)
        SELECT jid, r.batch_id, r.payment_id, r.account_id, r.currency, r.amount
          FROM settle.reservation r WHERE r.cycle_id = p_cycle_id ORDER BY r.reservation_id;
    -- reserved amounts become posted
    UPDATE settle.account a
       SET balance = a.balance + d.total,
           pending_debit = a.pending_debit - d.debits,
           pending_credit = a.pending_credit - d.credits,
           updated_at = clock_timestamp()
      FROM (SELECT n.account_id, n.total, greatest(-n.legs, 0) AS debits, greatest(n.legs, 0) AS credits
              FROM settle._reserved_nets(p_cycle_id) n) d
     WHERE a.account_id = d.account_id;
    WITH s AS (
        UPDATE settle.payment p SET status = 'settled', settled_at = clock_timestamp(), updated_at = clock_timestamp()
         WHERE p.cycle_id = p_cycle_id AND p.status = 'reserved'
        RETURNING p.*)
    INSERT INTO settle.event (occurred_at, entity, entity_id, event_type, from_status, to_status, details)
        SELECT s.settled_at, 'payment', s.payment_id::text, 'settled', 'reserved', 'settled',
               jsonb_build_object('cycle_id', p_cycle_id, 'journal_id', jid,
                   'postings', settle._payment_postings(s.source_account, s.source_currency, s.amount,
                                                        s.destination_account, s.destination_currency,
                                                        s.destination_amount))
          FROM s;
    -- clients hear of it now: these payments have reached their final state (75_notify.sql)
    PERFORM settle._notify_payments('settle_settled', p_cycle_id,
        (SELECT array_agg(p.payment_id ORDER BY p.payment_id) FROM settle.payment p
          WHERE p.cycle_id = p_cycle_id AND p.status = 'settled'));
    -- the pay-outs may now go to the rail
    FOR b IN SELECT * FROM settle.batch WHERE cycle_id = p_cycle_id AND status = 'reserved' FOR UPDATE LOOP
        PERFORM settle._batch_event(b, 'pending');
        UPDATE settle.batch SET status = 'pending', next_attempt_at = clock_timestamp(), updated_at = clock_timestamp()
         WHERE batch_id = b.batch_id;
    END LOOP;
    -- the batches' counter-entries on the settlement accounts, as the payments' events carry theirs
    INSERT INTO settle.event (entity, entity_id, event_type, to_status, details)
        SELECT 'cycle', p_cycle_id::text, 'posted', 'posted',
               jsonb_build_object('journal_id', jid, 'postings',
                   coalesce(jsonb_agg(jsonb_build_object('account', r.account_id, 'currency', r.currency,
                                                         'amount', r.amount, 'batch_id', r.batch_id)
                                      ORDER BY r.reservation_id), '[]'::jsonb))
          FROM settle.reservation r
         WHERE r.cycle_id = p_cycle_id AND r.payment_id IS NULL;
    RETURN jid;
END
$$;

CREATE OR REPLACE FUNCTION settle._void_cycle(p_cycle_id bigint, defaulter text, reason text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    b settle.batch;
BEGIN
    UPDATE settle.account a
       SET pending_debit = a.pending_debit - d.debits,
           pending_credit = a.pending_credit - d.credits,
           updated_at = clock_timestamp()
      FROM (SELECT n.account_id, greatest(-n.legs, 0) AS debits, greatest(n.legs, 0) AS credits
              FROM settle._reserved_nets(p_cycle_id) n) d
     WHERE a.account_id = d.account_id AND a.kind = 'customer';
    WITH f AS (
        UPDATE settle.payment p
           SET status = CASE WHEN p.source_participant = defaulter THEN 'failed' ELSE 'queued' END,
               cycle_id = CASE WHEN p.source_participant = defaulter THEN p.cycle_id END,
               destination_amount = NULL, fx_rate = NULL, updated_at = clock_timestamp()
         WHERE p.cycle_id = p_cycle_id AND p.status = 'reserved'
        RETURNING p.payment_id, p.status)
    INSERT INTO settle.event (entity, entity_id, event_type, from_status, to_status, details)
        SELECT 'payment', f.payment_id::text, CASE WHEN f.status = 'failed' THEN 'failed' ELSE 'requeued' END,
               'reserved', f.status,
               jsonb_build_object('cycle_id', p_cycle_id, 'reason', reason, 'defaulter', defaulter)
          FROM f;
    -- the defaulter's payments have failed for good (the others are queued again)
    PERFORM settle._notify_payments('settle_failed', p_cycle_id,
        (SELECT array_agg(p.payment_id ORDER BY p.payment_id) FROM settle.payment p
          WHERE p.cycle_id = p_cycle_id AND p.status = 'failed'));
    FOR b IN SELECT * FROM settle.batch
              WHERE cycle_id = p_cycle_id AND status IN ('reserved', 'pending', 'instructed') FOR UPDATE LOOP
        PERFORM settle._batch_event(b, 'voided', jsonb_build_object('reason', reason));
        UPDATE settle.batch SET status = 'voided', last_error = reason, updated_at = clock_timestamp()
         WHERE batch_id = b.batch_id;
    END LOOP;
    -- pay-ins already confirmed: the operator has that money; it is kept as
    -- the payer's funding (never lost, never asked for twice without a record)
    FOR b IN SELECT * FROM settle.batch
              WHERE cycle_id = p_cycle_id AND direction = 'pay_in' AND status = 'confirmed'
              ORDER BY batch_id FOR UPDATE LOOP
        PERFORM settle._retain_pay_in(b);
    END LOOP;
    INSERT INTO settle.event (entity, entity_id, event_type, to_status, details)
        VALUES ('cycle', p_cycle_id::text, 'voided', 'voided',
                jsonb_build_object('defaulter', defaulter, 'reason', reason));
END
$$;
