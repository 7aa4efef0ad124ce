-- settle install script, part 6: metrics for operators (docs/OPERATIONS.md).
--
-- settle.metrics is one row per Prometheus sample:
--     family   which group of metrics the row belongs to (queue, cycles,
--              latency, outbox, worker, replication, backlog): filter on it, and only
--              that group is computed;
--     metric   the Prometheus name (settle_..., counters end in _total);
--     labels   the sample's labels, as jsonb;
--     value    double precision.
-- docker/exporter/queries.yaml turns it into series for the standard
-- PostgreSQL exporter.  Every metric is cheap to compute however large the
-- tables grow: cycle counters come from settle.cycle_total (kept by a
-- trigger on settle.cycle, so a scrape never scans the cycle history), the
-- queue and outbox gauges from partial indexes.
--
-- The functions run as the extension owner (aggregates only, no rows), so a
-- monitoring login needs only pg_monitor (or settle_operator,
-- settle_auditor) and SELECT on settle.metrics.


-- Histogram bucket bounds (seconds) of solver and cycle time.
CREATE OR REPLACE FUNCTION settle._metrics_bounds() RETURNS double precision[]
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT '{0.001,0.0025,0.005,0.01,0.025,0.05,0.1,0.25,0.5,1,2.5,5}'::double precision[]
$$;

-- Cumulative bucket counts of one observation: 1 in every bucket whose bound is >= seconds.
CREATE OR REPLACE FUNCTION settle._metrics_observe(seconds double precision) RETURNS bigint[]
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT array_agg(CASE WHEN seconds <= b THEN 1 ELSE 0 END::bigint ORDER BY i)
      FROM unnest(settle._metrics_bounds()) WITH ORDINALITY AS x(b, i)
$$;

-- Element-wise sum of two bucket arrays.
CREATE OR REPLACE FUNCTION settle._metrics_add(a bigint[], b bigint[]) RETURNS bigint[]
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT array_agg(coalesce(x, 0) + coalesce(y, 0) ORDER BY i)
      FROM unnest(a, b) WITH ORDINALITY AS u(x, y, i)
$$;

-- Running totals of every committed cycle, per (run_by, solver_status,
-- reference currency): what the cycle counters read.  settle.cycle is
-- append-only, so totals only grow; cycles are serialised by their table
-- lock, so the upsert never waits for another cycle.
CREATE TABLE settle.cycle_total (
    run_by              text NOT NULL,
    solver_status       text NOT NULL,
    currency            text NOT NULL,
    cycles              bigint NOT NULL DEFAULT 0,
    considered          bigint NOT NULL DEFAULT 0,
    settled             bigint NOT NULL DEFAULT 0,
    deferred            bigint NOT NULL DEFAULT 0,
    unsettled           bigint NOT NULL DEFAULT 0,
    expired             bigint NOT NULL DEFAULT 0,
    settled_value       numeric NOT NULL DEFAULT 0,
    batches             bigint NOT NULL DEFAULT 0,
    wires               bigint NOT NULL DEFAULT 0,
    fee_cost            numeric NOT NULL DEFAULT 0,
    fx_cost             numeric NOT NULL DEFAULT 0,
    cost                numeric NOT NULL DEFAULT 0,
    fifo_settled        bigint NOT NULL DEFAULT 0,
    fifo_value          numeric NOT NULL DEFAULT 0,
    fifo_cost           numeric NOT NULL DEFAULT 0,
    naive_wires         bigint NOT NULL DEFAULT 0,
    naive_cost          numeric NOT NULL DEFAULT 0,
    solver_seconds_sum  double precision NOT NULL DEFAULT 0,
    solver_buckets      bigint[] NOT NULL,
    cycle_seconds_sum   double precision NOT NULL DEFAULT 0,
    cycle_buckets       bigint[] NOT NULL,
    last_finished_at    timestamptz NOT NULL,
    PRIMARY KEY (run_by, solver_status, currency)
);

-- Adds a new cycle to settle.cycle_total.
CREATE OR REPLACE FUNCTION settle._cycle_total_add() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO settle.cycle_total AS t
           (run_by, solver_status, currency, cycles, considered, settled, deferred, unsettled, expired,
            settled_value, batches, wires, fee_cost, fx_cost, cost, fifo_settled, fifo_value, fifo_cost,
            naive_wires, naive_cost, solver_seconds_sum, solver_buckets, cycle_seconds_sum, cycle_buckets,
            last_finished_at)
    VALUES (NEW.run_by, NEW.solver_status, NEW.reference_currency, 1, NEW.considered, NEW.settled,
            NEW.deferred, NEW.unsettled, NEW.expired, NEW.settled_value, NEW.batches, NEW.wires,
            NEW.fee_cost, NEW.fx_cost, NEW.cost, NEW.fifo_settled, NEW.fifo_value, NEW.fifo_cost,
            NEW.naive_wires, NEW.naive_cost, NEW.solver_ms / 1000, settle._metrics_observe(NEW.solver_ms / 1000),
            NEW.cycle_ms / 1000, settle._metrics_observe(NEW.cycle_ms / 1000), NEW.finished_at)
    ON CONFLICT (run_by, solver_status, currency) DO UPDATE SET
        cycles = t.cycles + 1,
        considered = t.considered + excluded.considered,
        settled = t.settled + excluded.settled,
        deferred = t.deferred + excluded.deferred,
        unsettled = t.unsettled + excluded.unsettled,
        expired = t.expired + excluded.expired,
        settled_value = t.settled_value + excluded.settled_value,
        batches = t.batches + excluded.batches,
        wires = t.wires + excluded.wires,
        fee_cost = t.fee_cost + excluded.fee_cost,
        fx_cost = t.fx_cost + excluded.fx_cost,
        cost = t.cost + excluded.cost,
        fifo_settled = t.fifo_settled + excluded.fifo_settled,
        fifo_value = t.fifo_value + excluded.fifo_value,
        fifo_cost = t.fifo_cost + excluded.fifo_cost,
        naive_wires = t.naive_wires + excluded.naive_wires,
        naive_cost = t.naive_cost + excluded.naive_cost,
        solver_seconds_sum = t.solver_seconds_sum + excluded.solver_seconds_sum,
        solver_buckets = settle._metrics_add(t.solver_buckets, excluded.solver_buckets),
        cycle_seconds_sum = t.cycle_seconds_sum + excluded.cycle_seconds_sum,
        cycle_buckets = settle._metrics_add(t.cycle_buckets, excluded.cycle_buckets),
        last_finished_at = greatest(t.last_finished_at, excluded.last_finished_at);
    RETURN NULL;
END
$$;
CREATE TRIGGER cycle_total_add AFTER INSERT ON settle.cycle
    FOR EACH ROW EXECUTE FUNCTION settle._cycle_total_add();

-- queue: payments waiting, and how long the oldest has waited.
CREATE OR REPLACE FUNCTION settle._metrics_queue()
RETURNS TABLE (metric text, labels jsonb, value double precision)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    -- queued: through the partial index payment_queued
    SELECT 'settle_queue_payments', '{"status": "queued"}'::jsonb,
           (SELECT count(*) FROM settle.payment p WHERE p.status = 'queued')::double precision
    UNION ALL
    -- held for an operator (a suspended participant, an amount that cannot be posted)
    SELECT 'settle_queue_payments', '{"status": "held"}'::jsonb,
           (SELECT count(*) FROM settle.payment p WHERE p.status = 'held')::double precision
    UNION ALL
    -- reserved (two-phase): the payments of cycles whose pay-ins are not all
    -- confirmed; such a cycle always has a pending or instructed batch
    SELECT 'settle_queue_payments', '{"status": "reserved"}'::jsonb,
           (SELECT count(*) FROM settle.payment p
             WHERE p.status = 'reserved'
               AND p.cycle_id IN (SELECT b.cycle_id FROM settle.batch b
                                   WHERE b.status = 'pending' OR b.status = 'instructed'))::double precision
    UNION ALL
    SELECT 'settle_queue_oldest_age_seconds', '{}'::jsonb,
           coalesce(extract(epoch FROM now() - (SELECT min(p.created_at) FROM settle.payment p
                                                 WHERE p.status = 'queued')), 0)::double precision
$$;

-- cycles: committed cycles and what they did, since the extension was created.
CREATE OR REPLACE FUNCTION settle._metrics_cycles()
RETURNS TABLE (metric text, labels jsonb, value double precision)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    WITH t AS (SELECT * FROM settle.cycle_total),
    -- money is per reference currency; the current one is always present
    cur AS (SELECT t.currency, sum(t.settled_value) AS settled_value, sum(t.fee_cost) AS fee_cost,
                   sum(t.fx_cost) AS fx_cost, sum(t.cost) AS cost, sum(t.fifo_cost) AS fifo_cost,
                   sum(t.naive_cost) AS naive_cost, sum(t.fifo_value) AS fifo_value
              FROM t GROUP BY t.currency
            UNION ALL
            SELECT current_setting('settle.reference_currency'), 0, 0, 0, 0, 0, 0, 0
             WHERE NOT EXISTS (SELECT 1 FROM t WHERE t.currency = current_setting('settle.reference_currency'))),
    s AS (SELECT coalesce(sum(t.settled), 0) AS settled, coalesce(sum(t.deferred), 0) AS deferred,
                 coalesce(sum(t.unsettled), 0) AS unsettled, coalesce(sum(t.expired), 0) AS expired,
                 coalesce(sum(t.considered), 0) AS considered, coalesce(sum(t.batches), 0) AS batches,
                 coalesce(sum(t.wires), 0) AS wires, coalesce(sum(t.naive_wires), 0) AS naive_wires,
                 coalesce(sum(t.fifo_settled), 0) AS fifo_settled, max(t.last_finished_at) AS last_finished_at
            FROM t)
    SELECT 'settle_cycles_total', jsonb_build_object('run_by', r, 'solver_status', st),
           coalesce((SELECT sum(t.cycles) FROM t WHERE t.run_by = r AND t.solver_status = st), 0)::double precision
      FROM unnest(ARRAY['manual', 'worker']) r, unnest(ARRAY['optimal', 'feasible', 'heuristic', 'error']) st
    UNION ALL
    SELECT 'settle_cycle_considered_payments_total', '{}'::jsonb, s.considered FROM s
    UNION ALL
    SELECT 'settle_cycle_payments_total', jsonb_build_object('outcome', o.outcome), o.n
      FROM s, LATERAL (VALUES ('settled', s.settled), ('deferred', s.deferred),
                              ('unsettled', s.unsettled), ('expired', s.expired)) o(outcome, n)
    UNION ALL
    SELECT 'settle_batches_total', '{}'::jsonb, s.batches FROM s
    UNION ALL
    SELECT 'settle_wires_total', jsonb_build_object('method', w.method), w.n
      FROM s, LATERAL (VALUES ('settle', s.wires), ('naive', s.naive_wires), ('fifo', s.fifo_settled)) w(method, n)
    UNION ALL
    SELECT 'settle_fifo_settled_payments_total', '{}'::jsonb, s.fifo_settled FROM s
    UNION ALL
    SELECT 'settle_settled_value_total', jsonb_build_object('currency', c.currency), c.settled_value FROM cur c
    UNION ALL
    SELECT 'settle_fifo_settled_value_total', jsonb_build_object('currency', c.currency), c.fifo_value FROM cur c
    UNION ALL
    SELECT 'settle_cost_total', jsonb_build_object('currency', c.currency, 'kind', k.kind), k.v
      FROM cur c, LATERAL (VALUES ('fee', c.fee_cost), ('fx', c.fx_cost)) k(kind, v)
    UNION ALL
    SELECT 'settle_baseline_cost_total', jsonb_build_object('currency', c.currency, 'baseline', k.baseline), k.v
      FROM cur c, LATERAL (VALUES ('naive', c.naive_cost), ('fifo', c.fifo_cost)) k(baseline, v)
    UNION ALL
    -- a gauge: against FIFO, which settles fewer payments, it can be negative
    SELECT 'settle_cost_saved', jsonb_build_object('currency', c.currency, 'baseline', k.baseline), k.v
      FROM cur c, LATERAL (VALUES ('naive', c.naive_cost - c.cost), ('fifo', c.fifo_cost - c.cost)) k(baseline, v)
    UNION ALL
    -- NULL (NaN in Prometheus) until the first cycle commits; the worker's
    -- cycles that changed nothing write no record but count as committed
    SELECT 'settle_last_cycle_age_seconds', '{}'::jsonb,
           extract(epoch FROM now() - greatest(s.last_finished_at,
                                               (SELECT w.last_cycle_at FROM settle._worker_status() w)))::double precision
      FROM s
$$;

-- latency: histograms of solver time and whole-cycle time, in seconds.
CREATE OR REPLACE FUNCTION settle._metrics_latency()
RETURNS TABLE (metric text, labels jsonb, value double precision)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    WITH h AS (
        SELECT 'settle_cycle_solver_seconds' AS name,
               coalesce((SELECT sum(t.cycles) FROM settle.cycle_total t), 0) AS n,
               coalesce((SELECT sum(t.solver_seconds_sum) FROM settle.cycle_total t), 0) AS total,
               (SELECT array_agg(x ORDER BY i) FROM (
                    SELECT i, sum(c) AS x FROM settle.cycle_total t, unnest(t.solver_buckets) WITH ORDINALITY u(c, i)
                     GROUP BY i) a) AS buckets
        UNION ALL
        SELECT 'settle_cycle_duration_seconds',
               coalesce((SELECT sum(t.cycles) FROM settle.cycle_total t), 0),
               coalesce((SELECT sum(t.cycle_seconds_sum) FROM settle.cycle_total t), 0),
               (SELECT array_agg(x ORDER BY i) FROM (
                    SELECT i, sum(c) AS x FROM settle.cycle_total t, unnest(t.cycle_buckets) WITH ORDINALITY u(c, i)
                     GROUP BY i) a))
    SELECT h.name || '_bucket', jsonb_build_object('le', b.bound::text), coalesce(h.buckets[b.i], 0)::double precision
      FROM h, unnest(settle._metrics_bounds()) WITH ORDINALITY b(bound, i)
    UNION ALL
    SELECT h.name || '_bucket', '{"le": "+Inf"}'::jsonb, h.n FROM h
    UNION ALL
    SELECT h.name || '_sum', '{}'::jsonb, h.total FROM h
    UNION ALL
    SELECT h.name || '_count', '{}'::jsonb, h.n FROM h
$$;

-- outbox (two-phase settlement): wires waiting for the rail, retries, final failures.
CREATE OR REPLACE FUNCTION settle._metrics_outbox()
RETURNS TABLE (metric text, labels jsonb, value double precision)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    -- pending and instructed batches are read through their partial indexes
    SELECT 'settle_outbox_batches', jsonb_build_object('status', st),
           (SELECT count(*) FROM settle.batch b WHERE b.status = st)::double precision
      FROM unnest(ARRAY['pending', 'instructed']) st
    UNION ALL
    SELECT 'settle_outbox_oldest_age_seconds', '{}'::jsonb,
           coalesce(extract(epoch FROM now() - least(
               (SELECT min(b.created_at) FROM settle.batch b WHERE b.status = 'pending'),
               (SELECT min(b.created_at) FROM settle.batch b WHERE b.status = 'instructed'))), 0)::double precision
    UNION ALL
    -- counted from the events, and from what archives carried of them
    -- (48_archive.sql), so that the totals never go down
    -- every failed attempt that was scheduled again (settle_rail_fail retryable, or a time-out)
    SELECT 'settle_outbox_retries_total', '{}'::jsonb,
           ((SELECT count(*) FROM settle.event e
              WHERE e.entity = 'batch' AND e.event_type = 'pending' AND e.details ? 'retry')
            + settle._archived_count('outbox_retries'))::double precision
    UNION ALL
    -- final failures: a pay-in voids its cycle; a pay-out's payments are
    -- returned (82_returns.sql), what is left for an operator
    SELECT 'settle_outbox_final_failures_total', '{"direction": "pay_in"}'::jsonb,
           ((SELECT count(*) FROM settle.event e
              WHERE e.entity = 'cycle' AND e.event_type = 'voided')
            + settle._archived_count('cycles_voided'))::double precision
    UNION ALL
    SELECT 'settle_outbox_final_failures_total', '{"direction": "pay_out"}'::jsonb,
           ((SELECT count(*) FROM settle.event e
              WHERE e.entity = 'batch' AND e.event_type IN ('failed', 'returned'))
            + settle._archived_count('pay_outs_failed'))::double precision
$$;

-- What this database's worker has done since the server started (shared
-- memory, src/worker_state.c): rounds that committed, cycles and seals that
-- failed and were rolled back (they leave no row in any table), and the
-- last failure; the launcher's view of it: the database, its state
-- (starting, running, not_installed, stopped, failed, paused: docs/OPERATIONS.md)
-- since when, and how many workers it started there.  all_databases: every
-- database the launcher serves.  No row when settle is not in
-- shared_preload_libraries or the launcher does not serve the database.
CREATE OR REPLACE FUNCTION settle_worker_status(all_databases boolean DEFAULT false,
    OUT pid integer, OUT started_at timestamptz,
    OUT cycles_ok bigint, OUT cycles_failed bigint, OUT seals_failed bigint,
    OUT last_cycle_at timestamptz, OUT last_failure_at timestamptz,
    OUT last_failure_in text, OUT last_sqlstate text, OUT last_error text,
    OUT cycles_unchanged bigint, OUT seals_unchanged bigint,
    OUT database name, OUT state text, OUT state_since timestamptz, OUT starts bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'settle_worker_status' LANGUAGE C VOLATILE;
-- this database's, under a name in settle's schema for the metrics (a name
-- in public could be made ambiguous by someone else's overload)
CREATE OR REPLACE FUNCTION settle._worker_status(
    OUT pid integer, OUT started_at timestamptz,
    OUT cycles_ok bigint, OUT cycles_failed bigint, OUT seals_failed bigint,
    OUT last_cycle_at timestamptz, OUT last_failure_at timestamptz,
    OUT last_failure_in text, OUT last_sqlstate text, OUT last_error text,
    OUT cycles_unchanged bigint, OUT seals_unchanged bigint,
    OUT database name, OUT state text, OUT state_since timestamptz, OUT starts bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'settle_worker_status' LANGUAGE C VOLATILE;

-- worker and node: is the worker there and busy, is it enabled, which role this node has.
CREATE OR REPLACE FUNCTION settle._metrics_worker()
RETURNS TABLE (metric text, labels jsonb, value double precision)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT 'settle_worker_running', '{}'::jsonb,
           (SELECT count(*) FROM pg_stat_activity a
             WHERE a.backend_type = 'settle worker' AND a.datname = current_database())::double precision
    UNION ALL
    SELECT 'settle_worker_busy', '{}'::jsonb,
           (SELECT count(*) FROM pg_stat_activity a
             WHERE a.backend_type = 'settle worker' AND a.state = 'active'
               AND a.datname = current_database())::double precision
    UNION ALL
    SELECT 'settle_worker_enabled', '{}'::jsonb,
           CASE WHEN current_setting('settle.worker_enabled', true)::boolean THEN 1 ELSE 0 END
    UNION ALL
    -- 1 while the launcher serves this database (preloaded, enabled, allowed by settle.database)
    SELECT 'settle_worker_served', '{}'::jsonb,
           CASE WHEN settle._database_served() THEN 1 ELSE 0 END
    UNION ALL
    -- workers the launcher started for this database since the server started:
    -- a rate above a few an hour means it keeps failing
    SELECT 'settle_worker_starts_total', '{}'::jsonb,
           coalesce((SELECT w.starts FROM settle._worker_status() w), 0)::double precision
    UNION ALL
    -- 0 where this database has no worker (not preloaded, or not served)
    SELECT 'settle_worker_cycles_failed_total', '{}'::jsonb,
           coalesce((SELECT w.cycles_failed FROM settle._worker_status() w), 0)::double precision
    UNION ALL
    -- cycles that settled and expired nothing: they write no cycle record
    SELECT 'settle_worker_cycles_unchanged_total', '{}'::jsonb,
           coalesce((SELECT w.cycles_unchanged FROM settle._worker_status() w), 0)::double precision
    UNION ALL
    -- seals that found nothing new: they write no seal run (issue #29)
    SELECT 'settle_worker_seals_unchanged_total', '{}'::jsonb,
           coalesce((SELECT w.seals_unchanged FROM settle._worker_status() w), 0)::double precision
    UNION ALL
    SELECT 'settle_worker_seals_failed_total', '{}'::jsonb,
           coalesce((SELECT w.seals_failed FROM settle._worker_status() w), 0)::double precision
    UNION ALL
    -- 1 on the primary, 0 on a replica (a standby in recovery)
    SELECT 'settle_node_primary', '{}'::jsonb, CASE WHEN pg_is_in_recovery() THEN 0 ELSE 1 END
    UNION ALL
    -- 1 on a fenced restored copy (no cycles, intake, rail or calendar until released)
    SELECT 'settle_node_fenced', '{}'::jsonb,
           CASE WHEN (SELECT f.fenced FROM @extschema@.settle_fence_state() f) THEN 1 ELSE 0 END
    UNION ALL
    -- 1 on a primary that requires synchronous standbys and has fewer streaming than it
    -- needs (an orphan: new payments, rail calls and cycles refused with SE170), else 0
    SELECT 'settle_sync_standby_missing', '{}'::jsonb,
           CASE WHEN s.required AND s.streaming < s.needed THEN 1 ELSE 0 END::double precision
      FROM @extschema@.settle_sync_standby_state() s
    UNION ALL
    -- how long a cycle (or a seal) has been waiting for the one before it, 0 if none waits
    SELECT 'settle_lock_wait_seconds', jsonb_build_object('lock', l.name),
           coalesce((SELECT max(extract(epoch FROM clock_timestamp() - k.waitstart)) FROM pg_locks k
                      WHERE k.locktype = 'relation' AND k.relation = l.rel AND NOT k.granted
                        AND k.database = (SELECT d.oid FROM pg_database d WHERE d.datname = current_database())),
                    0)::double precision
      FROM (VALUES ('cycle', 'settle.cycle_lock'::regclass), ('seal', 'settle.seal_lock'::regclass)) l(name, rel)
$$;

-- replication: on a primary, each standby's lag; on a replica, its replay delay.
CREATE OR REPLACE FUNCTION settle._metrics_replication()
RETURNS TABLE (metric text, labels jsonb, value double precision)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT 'settle_replication_lag_bytes', jsonb_build_object('standby', r.application_name),
           pg_wal_lsn_diff(pg_current_wal_lsn(), r.replay_lsn)::double precision
      FROM pg_stat_replication r WHERE NOT pg_is_in_recovery()
    UNION ALL
    -- replay_lag is NULL once the standby has replayed everything and nothing new is written
    SELECT 'settle_replication_lag_seconds', jsonb_build_object('standby', r.application_name),
           coalesce(extract(epoch FROM r.replay_lag), 0)::double precision
      FROM pg_stat_replication r WHERE NOT pg_is_in_recovery()
    UNION ALL
    SELECT 'settle_replica_delay_seconds', '{}'::jsonb,
           CASE WHEN pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn() THEN 0
                ELSE coalesce(extract(epoch FROM now() - pg_last_xact_replay_timestamp()), 0) END::double precision
     WHERE pg_is_in_recovery()
$$;

CREATE OR REPLACE VIEW settle.metrics AS
              SELECT 'queue'::text AS family, m.metric, m.labels, m.value FROM settle._metrics_queue() m
    UNION ALL SELECT 'cycles', m.metric, m.labels, m.value FROM settle._metrics_cycles() m
    UNION ALL SELECT 'latency', m.metric, m.labels, m.value FROM settle._metrics_latency() m
    UNION ALL SELECT 'outbox', m.metric, m.labels, m.value FROM settle._metrics_outbox() m
    UNION ALL SELECT 'worker', m.metric, m.labels, m.value FROM settle._metrics_worker() m
    UNION ALL SELECT 'replication', m.metric, m.labels, m.value FROM settle._metrics_replication() m
    UNION ALL SELECT 'backlog', m.metric, m.labels, m.value FROM settle._metrics_backlog() m;
COMMENT ON VIEW settle.metrics IS 'settle: one row per Prometheus sample (docs/OPERATIONS.md)';
