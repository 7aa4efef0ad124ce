-- settle.metrics after a known workload: every counter and gauge checked
-- against what the workload did.  Own database, so the figures are exact.
CREATE DATABASE settle_metrics;
\c settle_metrics
CREATE EXTENSION settle;
-- one family at a time, timing-free rows only
CREATE FUNCTION m(fam text) RETURNS TABLE (metric text, labels jsonb, value double precision)
LANGUAGE sql AS $$
    SELECT m.metric, m.labels, m.value FROM settle.metrics m
     WHERE m.family = fam AND m.metric NOT LIKE '%age_seconds' AND m.metric NOT LIKE '%seconds_sum'
       AND m.metric NOT LIKE '%seconds_bucket'
     ORDER BY m.metric, m.labels::text
$$;
CREATE FUNCTION v(name text, lbl jsonb DEFAULT '{}') RETURNS double precision
LANGUAGE sql AS $$ SELECT value FROM settle.metrics WHERE metric = name AND labels = lbl $$;

-- every family is there, with its fixed series, before anything happened
SELECT family, count(*) AS samples FROM settle.metrics GROUP BY 1 ORDER BY 1;
SELECT v('settle_last_cycle_age_seconds') IS NULL AS no_cycle_yet;
SELECT * FROM m('queue');
-- the backlog: shared memory of the worker's database (not this one): zeros, no estimate
SELECT * FROM m('backlog');
SELECT count(*) AS backlog_rows_here FROM settle_backlog_status();

SELECT settle_set_wire_fee('USD', 25);
SELECT settle_create_participant(p) FROM unnest(ARRAY['m_a', 'm_b', 'm_c', 'm_d']) p;
SELECT settle_create_account(p || '_usd', p, 'USD') FROM unnest(ARRAY['m_a', 'm_b', 'm_c']) p;
SELECT settle_create_account('m_d_usd', 'm_d', 'USD', opening_balance => 500);

------------------------------------------------------------------------
-- 1. A gridlocked ring A -> B -> C -> A of 100.00 each: settles together,
--    no wire (cost 0); naive batching 6 wires = 150.00; FIFO settles none
--    of the ring.  D pays A 40.00 (D has 500): 2 wires = 50.00; naive adds
--    D's pay-in (A already has a pay-out): 7 wires = 175.00.  FIFO skips
--    the ring's payments (none fits alone) and settles d_1: 1 settled, one
--    wire, 25.00.  B pays D 1,000.00, which B cannot fund: unsettled.
------------------------------------------------------------------------
SELECT status FROM settle_submit('ring_1', 100, 'USD', 'USD', 'm_a_usd', 'm_b_usd', 'm_b', 'k1');
SELECT status FROM settle_submit('ring_2', 100, 'USD', 'USD', 'm_b_usd', 'm_c_usd', 'm_c', 'k2');
SELECT status FROM settle_submit('ring_3', 100, 'USD', 'USD', 'm_c_usd', 'm_a_usd', 'm_a', 'k3');
SELECT status FROM settle_submit('d_1', 40, 'USD', 'USD', 'm_d_usd', 'm_a_usd', 'm_a', 'k4');
SELECT status FROM settle_submit('big', 1000, 'USD', 'USD', 'm_b_usd', 'm_d_usd', 'm_d', 'k5');
SELECT v('settle_queue_payments', '{"status": "queued"}') AS queued,
       v('settle_queue_oldest_age_seconds') > 0 AS oldest_waits;
SELECT considered, settled, unsettled, batches, wires, settled_value, cost, fifo_settled, fifo_cost,
       naive_wires, naive_cost, solver_status FROM settle_run_cycle();
-- 2. the unfundable payment again: a second cycle, nothing settled
SELECT considered, settled, unsettled, wires, cost, naive_cost FROM settle_run_cycle();

SELECT * FROM m('queue');
SELECT v('settle_queue_oldest_age_seconds') > 0 AS big_still_waits;
SELECT * FROM m('cycles');
SELECT v('settle_last_cycle_age_seconds') BETWEEN 0 AND 60 AS last_cycle_recent;
-- the histograms: two observations, cumulative buckets, all under 5 s
SELECT metric, value FROM settle.metrics WHERE family = 'latency' AND metric LIKE '%count' ORDER BY 1;
SELECT metric, value FROM settle.metrics
 WHERE family = 'latency' AND metric LIKE '%bucket' AND labels->>'le' IN ('5', '+Inf') ORDER BY 1, labels->>'le';
SELECT metric, bool_and(ok) AS cumulative FROM (
    SELECT metric, value >= lag(value, 1, 0::double precision) OVER (PARTITION BY metric ORDER BY
               CASE WHEN labels->>'le' = '+Inf' THEN 'Infinity'::float8 ELSE (labels->>'le')::float8 END) AS ok
      FROM settle.metrics WHERE family = 'latency' AND metric LIKE '%bucket') x
 GROUP BY 1 ORDER BY 1;
-- the solver time sum equals the cycles' solver_ms, in seconds
SELECT abs(v('settle_cycle_solver_seconds_sum') - (SELECT sum(solver_ms) / 1000 FROM settle.cycle)) < 1e-9 AS solver_sum_exact,
       abs(v('settle_cycle_duration_seconds_sum') - (SELECT sum(cycle_ms) / 1000 FROM settle.cycle)) < 1e-9 AS cycle_sum_exact;

------------------------------------------------------------------------
-- 3. Two-phase: m_d pays m_b 10.00.  The cycle reserves (1 reserved
--    payment, m_d's pay-in pending, m_b's pay-out waiting).  The rail takes
--    the pay-in (instructed), fails it once (a retry), takes it again and
--    fails it for good: the cycle is voided (a pay-in final failure).
------------------------------------------------------------------------
SET settle.two_phase = on;
SET settle.rail_backoff = 0;
SELECT status FROM settle_submit('tp_1', 10, 'USD', 'USD', 'm_d_usd', 'm_b_usd', 'm_b', 'k6');
SELECT considered, settled, unsettled FROM settle_run_cycle();
SELECT * FROM m('queue');
SELECT * FROM m('outbox');
SELECT participant_id, direction FROM settle_rail_fetch();
SELECT * FROM m('outbox');
SELECT settle_rail_fail(batch_id, 'rail busy') FROM settle.batch WHERE status = 'instructed';
SELECT participant_id, direction FROM settle_rail_fetch();
SELECT settle_rail_fail(batch_id, 'account closed', retryable => false) FROM settle.batch WHERE status = 'instructed';
SELECT * FROM m('outbox');
SELECT * FROM m('queue');
-- tp_1 failed with its defaulter; big is still queued
SELECT transaction_id, status FROM settle.transactions WHERE transaction_id IN ('big', 'tp_1') ORDER BY 1;

------------------------------------------------------------------------
-- 4. Two-phase, pay-out failing for good: m_a pays m_c 20.00 (m_a has
--    40.00 from d_1).  Pay-in confirmed (posted), pay-out fails for good.
------------------------------------------------------------------------
SET settle.rail_max_attempts = 1;
SELECT status FROM settle_submit('tp_2', 20, 'USD', 'USD', 'm_a_usd', 'm_c_usd', 'm_c', 'k7');
SELECT considered, settled FROM settle_run_cycle();
SELECT settle_rail_confirm(batch_id) FROM settle_rail_fetch();
SELECT participant_id, direction FROM settle_rail_fetch();
SELECT settle_rail_fail(batch_id, 'beneficiary bank rejected') FROM settle.batch WHERE status = 'instructed';
SELECT * FROM m('outbox');
SELECT * FROM m('cycles');

------------------------------------------------------------------------
-- 5. Node and worker: this node is a primary; whether the worker is
--    enabled is whatever the server says.
------------------------------------------------------------------------
SELECT metric, labels, value FROM settle.metrics WHERE metric = 'settle_node_primary';
SELECT v('settle_worker_enabled') = CASE WHEN current_setting('settle.worker_enabled')::boolean THEN 1 ELSE 0 END
       AS worker_enabled_matches;
SELECT count(*) AS replication_samples_without_standby FROM settle.metrics WHERE family = 'replication';
-- no synchronous standby is required here, so none is missing and nothing is
-- refused (test/scripts/durability.sh has the orphan: a standby that is gone)
SELECT v('settle_sync_standby_missing') AS sync_standby_missing;
SELECT required, needed, streaming, catching_up, refusing, reason FROM settle_sync_standby_state();
SET synchronous_commit = local;
SELECT required, refusing, reason FROM settle_sync_standby_state();
RESET synchronous_commit;
SELECT synchronous_standby_required, synchronous_standbys_needed, synchronous_standby_missing,
       synchronous_standby_reason FROM settle_gateway_health();
-- the workers are off on this server (settle.worker_enabled): the launcher
-- serves no database, the counters are 0 and settle_worker_status() reports no
-- worker for this database
SELECT metric, value FROM settle.metrics WHERE metric LIKE 'settle_worker_%failed_total' ORDER BY 1;
SELECT count(*) AS worker_of_this_database FROM settle_worker_status();
SELECT value AS workers_here FROM settle.metrics WHERE metric = 'settle_worker_running';

------------------------------------------------------------------------
-- 6. Who may read: a pg_monitor login reads every metric and no row; a
--    login with no role reads nothing.
------------------------------------------------------------------------
CREATE ROLE settle_metrics_reader LOGIN IN ROLE pg_monitor;
CREATE ROLE settle_metrics_nobody LOGIN;
SET ROLE settle_metrics_reader;
SELECT count(*) AS samples, v('settle_queue_payments', '{"status": "queued"}') AS queued FROM settle.metrics;
SELECT count(*) FROM settle.cycle;
SET ROLE settle_metrics_nobody;
SELECT count(*) FROM settle.metrics;
RESET ROLE;
-- settle.cycle_total is not writable by readers, and the totals match the cycle log
SELECT (SELECT sum(cycles) FROM settle.cycle_total) = (SELECT count(*) FROM settle.cycle) AS totals_match_cycles;

\c contrib_regression
DROP DATABASE settle_metrics;
DROP ROLE settle_metrics_reader;
DROP ROLE settle_metrics_nobody;
