-- settle install script, part 5b: the backlog between cycles (issue #18):
-- the queue as the worker last saw it, intake's refusals under overload
-- (SE093, settle.max_queued) and a stuck backlog (settle.stall_after), from
-- shared memory (src/backlog.c, src/pace.c; docs/CYCLE.md, "Pacing,
-- backpressure and a stuck backlog").

-- One row while settle is preloaded and this is the worker's database.
CREATE OR REPLACE FUNCTION settle_backlog_status(
    OUT queued_estimate bigint, OUT arrived bigint, OUT refused bigint,
    OUT waiting bigint, OUT oldest_waiting_payment bigint, OUT oldest_waiting_since timestamptz,
    OUT stalled boolean, OUT stalled_since timestamptz, OUT stalls bigint,
    OUT cycles_without_progress integer, OUT backoff_ms double precision,
    OUT batch_delay_ms double precision, OUT arrival_rate double precision,
    OUT lone_payment_cost double precision, OUT netting_saturation double precision,
    OUT waiting_cost_per_second double precision, OUT reported_at timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'settle_backlog_status' LANGUAGE C VOLATILE;
-- the same in settle's schema, for the metrics (a name in public could be
-- made ambiguous by someone else's overload)
CREATE OR REPLACE FUNCTION settle._backlog_status(
    OUT queued_estimate bigint, OUT arrived bigint, OUT refused bigint,
    OUT waiting bigint, OUT oldest_waiting_payment bigint, OUT oldest_waiting_since timestamptz,
    OUT stalled boolean, OUT stalled_since timestamptz, OUT stalls bigint,
    OUT cycles_without_progress integer, OUT backoff_ms double precision,
    OUT batch_delay_ms double precision, OUT arrival_rate double precision,
    OUT lone_payment_cost double precision, OUT netting_saturation double precision,
    OUT waiting_cost_per_second double precision, OUT reported_at timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'settle_backlog_status' LANGUAGE C VOLATILE;

-- backlog: what the worker's last cycle left and how it paces itself; 0 (the
-- estimate NULL, NaN in Prometheus) where this database has no worker.
CREATE OR REPLACE FUNCTION settle._metrics_backlog()
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
