-- settle install script, part 8.6: liquidity forecast (docs/LIQUIDITY.md).
--
-- Per participant and currency, the expected outflow and inflow of its
-- customer accounts (settled payments' ledger legs) for each interval of a
-- day, from its own history of the last weeks, with weekday and intraday
-- seasonality:
--     forecast(day, slot) = level x weekday_factor(weekday of day) x share(slot)
-- estimated separately for outflows and inflows (each >= 0; the net is
-- their difference):
--     daily(d)        the flow of history day d (days without flows count as 0)
--     weekday_factor  mean daily flow of the weekday / mean daily flow
--     level           mean of daily(d) / weekday_factor over the last 14 days
--                     (a recent, deseasonalised level: follows a trend)
--     share(slot)     the slot's part of the flow over the whole history
-- The forecasts of each day are stored by settle_refresh_liquidity_forecast()
-- (daily, pg_cron) for the metrics (settle.metrics family 'liquidity'),
-- whose alert fires when the rest of the day's forecast net outflow exceeds
-- the available liquidity (balance + limit - pending debits).

-- The forecast reads the flows of a day range: a BRIN index on posted_at
-- (entries are appended in time order; a few pages, nothing per row).
CREATE INDEX ledger_entry_posted_at ON settle.ledger_entry USING brin (posted_at);

-- The forecast of every slot of one day, for one participant's customer
-- accounts in one currency, from the history_weeks weeks before the day.
-- With the caller's rights (a participant's own rows under row-level
-- security).  Minor units.
CREATE OR REPLACE FUNCTION settle._flow_forecast(pid text, ccy text, day timestamptz, slot_minutes integer, history_weeks integer)
RETURNS TABLE (slot integer, slot_start timestamptz, expected_outflow bigint, expected_inflow bigint)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    WITH
    days AS (
        SELECT g AS d, extract(isodow FROM g)::integer AS w,
               row_number() OVER (ORDER BY g DESC) AS age     -- 1: the day before
          FROM generate_series(day - make_interval(days => 7 * history_weeks), day - interval '1 day',
                               interval '1 day') g),
    flows AS (
        SELECT date_trunc('day', e.posted_at) AS d,
               floor(extract(epoch FROM e.posted_at - date_trunc('day', e.posted_at)) / 60 / slot_minutes)::integer AS s,
               coalesce(sum(-e.amount) FILTER (WHERE e.amount < 0), 0)::numeric AS o,
               coalesce(sum(e.amount) FILTER (WHERE e.amount > 0), 0)::numeric AS i
          FROM settle.ledger_entry e JOIN settle.account a ON a.account_id = e.account_id
         WHERE a.participant_id = pid AND a.currency = ccy AND a.kind = 'customer' AND e.payment_id IS NOT NULL
           AND e.posted_at >= day - make_interval(days => 7 * history_weeks) AND e.posted_at < day
         GROUP BY 1, 2),
    daily AS (
        SELECT days.d, days.w, days.age, coalesce(sum(f.o), 0) AS o, coalesce(sum(f.i), 0) AS i
          FROM days LEFT JOIN flows f ON f.d = days.d GROUP BY days.d, days.w, days.age),
    overall AS (SELECT avg(o) AS o, avg(i) AS i FROM daily),
    factor AS (
        SELECT x.w, CASE WHEN v.o > 0 THEN avg(x.o) / v.o ELSE 1 END AS fo,
                    CASE WHEN v.i > 0 THEN avg(x.i) / v.i ELSE 1 END AS fi
          FROM daily x, overall v GROUP BY x.w, v.o, v.i),
    level AS (
        SELECT coalesce(avg(x.o / f.fo) FILTER (WHERE f.fo > 0), 0) AS o,
               coalesce(avg(x.i / f.fi) FILTER (WHERE f.fi > 0), 0) AS i
          FROM daily x JOIN factor f ON f.w = x.w WHERE x.age <= 14),
    share AS (
        SELECT f.s, sum(f.o) / nullif((SELECT sum(o) FROM flows), 0) AS so,
                    sum(f.i) / nullif((SELECT sum(i) FROM flows), 0) AS si
          FROM flows f GROUP BY f.s),
    target AS (
        SELECT coalesce((SELECT f.fo FROM factor f WHERE f.w = extract(isodow FROM day)::integer), 1) AS fo,
               coalesce((SELECT f.fi FROM factor f WHERE f.w = extract(isodow FROM day)::integer), 1) AS fi)
    SELECT s.s, day + make_interval(mins => s.s * slot_minutes),
           round(level.o * target.fo * coalesce(sh.so, 0))::bigint,
           round(level.i * target.fi * coalesce(sh.si, 0))::bigint
      FROM generate_series(0, (1440 / slot_minutes) - 1) s(s)
      CROSS JOIN level CROSS JOIN target
      LEFT JOIN share sh ON sh.s = s.s
     ORDER BY s.s
$$;

-- A participant's forecast for the rest of the day (from the slot as_of is
-- in), slot by slot, then one row for the whole rest of the day, per
-- currency of its customer accounts; available = balance + limit - pending
-- debits now, shortfall = what the cumulative net outflow exceeds it by.
CREATE OR REPLACE FUNCTION settle_liquidity_forecast(participant_id text, as_of timestamptz DEFAULT now(),
                                          slot_minutes integer DEFAULT 60, history_weeks integer DEFAULT 8)
RETURNS TABLE (currency text, window_kind text, window_start timestamptz, window_end timestamptz,
               expected_outflow numeric, expected_inflow numeric, expected_net_outflow numeric,
               cumulative_net_outflow numeric, available numeric, shortfall numeric)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    me text := settle.current_participant();
    day timestamptz := date_trunc('day', as_of);
BEGIN
    IF participant_id IS NULL OR as_of IS NULL OR slot_minutes IS NULL OR history_weeks IS NULL THEN
        RAISE EXCEPTION 'participant_id, as_of, slot_minutes and history_weeks must not be null' USING ERRCODE = 'SE001';
    END IF;
    IF NOT settle.sees_all() THEN
        IF me IS NULL THEN
            RAISE EXCEPTION 'role "%" is not mapped to a participant', current_user USING ERRCODE = 'SE036';
        END IF;
        IF me IS DISTINCT FROM settle_liquidity_forecast.participant_id THEN
            RAISE EXCEPTION 'participant_id "%" does not exist', settle_liquidity_forecast.participant_id
                USING ERRCODE = 'SE040';
        END IF;
    END IF;
    IF slot_minutes < 1 OR 1440 % slot_minutes <> 0 OR history_weeks NOT BETWEEN 2 AND 104 THEN
        RAISE EXCEPTION 'slot_minutes must divide a day (1440) and history_weeks be 2 to 104' USING ERRCODE = '22023';
    END IF;
    RETURN QUERY
    WITH ccy AS (
        SELECT a.currency, sum(a.balance + a.lower_limit - a.pending_debit) AS avail
          FROM settle.account a
         WHERE a.participant_id = settle_liquidity_forecast.participant_id AND a.kind = 'customer'
         GROUP BY a.currency),
    f AS (
        SELECT c.currency, c.avail, x.slot_start, x.expected_outflow, x.expected_inflow,
               sum(x.expected_outflow - x.expected_inflow) OVER (PARTITION BY c.currency ORDER BY x.slot) AS cum
          FROM ccy c, settle._flow_forecast(settle_liquidity_forecast.participant_id, c.currency, day,
                                            slot_minutes, history_weeks) x
         WHERE x.slot_start + make_interval(mins => slot_minutes) > as_of),
    rows AS (
        SELECT f.currency, 'interval'::text AS kind, f.slot_start AS ws,
               f.slot_start + make_interval(mins => slot_minutes) AS we,
               f.expected_outflow AS o, f.expected_inflow AS i, f.cum, f.avail
          FROM f
        UNION ALL
        SELECT f.currency, 'end_of_day', min(f.slot_start), day + interval '1 day',
               sum(f.expected_outflow), sum(f.expected_inflow),
               sum(f.expected_outflow - f.expected_inflow), min(f.avail)
          FROM f GROUP BY f.currency)
    SELECT r.currency, r.kind, r.ws, r.we,
           settle.to_major(r.o::bigint, r.currency), settle.to_major(r.i::bigint, r.currency),
           settle.to_major((r.o - r.i)::bigint, r.currency), settle.to_major(r.cum::bigint, r.currency),
           settle.to_major(r.avail::bigint, r.currency),
           settle.to_major(greatest(0, r.cum - r.avail)::bigint, r.currency)
      FROM rows r
     ORDER BY r.currency, r.kind = 'end_of_day', r.ws;
END
$$;
COMMENT ON FUNCTION settle_liquidity_forecast(text, timestamptz, integer, integer) IS
    'A participant''s expected outflow, inflow and net outflow per interval for the rest of the day and to the end of day, per currency, from its own history with weekday and intraday seasonality (docs/LIQUIDITY.md)';

-- The day's forecasts of every participant, for the metrics: written once a
-- day by settle_refresh_liquidity_forecast() (a scrape must stay cheap).
CREATE TABLE settle.liquidity_forecast (
    participant_id  text NOT NULL,
    currency        text NOT NULL,
    slot_start      timestamptz NOT NULL,
    slot_end        timestamptz NOT NULL,
    expected_outflow bigint NOT NULL,
    expected_inflow bigint NOT NULL,
    computed_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (participant_id, currency, slot_start)
);
SELECT pg_catalog.pg_extension_config_dump('settle.liquidity_forecast', '');
COMMENT ON TABLE settle.liquidity_forecast IS
    'settle: each participant''s forecast outflow and inflow per interval of a day (minor units), for the metrics; settle_refresh_liquidity_forecast()';

-- Computes (again) the forecasts of one day for every participant and
-- currency (operators; pg_cron, shortly after midnight).  Returns the rows written.
CREATE OR REPLACE FUNCTION settle_refresh_liquidity_forecast(day date DEFAULT current_date, slot_minutes integer DEFAULT 60,
                                                  history_weeks integer DEFAULT 8)
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n bigint;
    d timestamptz := day::timestamptz;
BEGIN
    IF slot_minutes < 1 OR 1440 % slot_minutes <> 0 OR history_weeks NOT BETWEEN 2 AND 104 THEN
        RAISE EXCEPTION 'slot_minutes must divide a day (1440) and history_weeks be 2 to 104' USING ERRCODE = '22023';
    END IF;
    DELETE FROM settle.liquidity_forecast f WHERE f.slot_start >= d AND f.slot_start < d + interval '1 day';
    -- a week of them is enough for the dashboard
    DELETE FROM settle.liquidity_forecast f WHERE f.slot_start < d - interval '7 days';
    INSERT INTO settle.liquidity_forecast (participant_id, currency, slot_start, slot_end, expected_outflow, expected_inflow)
    SELECT pc.participant_id, pc.currency, x.slot_start, x.slot_start + make_interval(mins => slot_minutes),
           x.expected_outflow, x.expected_inflow
      FROM (SELECT DISTINCT a.participant_id, a.currency FROM settle.account a
             WHERE a.kind = 'customer' AND a.status <> 'closed') pc,
           settle._flow_forecast(pc.participant_id, pc.currency, d, slot_minutes, history_weeks) x;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
COMMENT ON FUNCTION settle_refresh_liquidity_forecast(date, integer, integer) IS
    'Compute one day''s liquidity forecasts of every participant and currency for the metrics and the alert (operators; daily from pg_cron)';

-- Metrics, per participant and currency, today (the stored forecasts only):
--   settle_liquidity_forecast_net_outflow        forecast net outflow from the start of the day to now
--   settle_liquidity_actual_net_outflow          actual net outflow from the start of the day to now
--   settle_liquidity_forecast_rest_of_day_net_outflow   forecast net outflow from now to the end of the day
--   settle_liquidity_available                   balance + limit - pending debits, now
--   settle_liquidity_forecast_shortfall          rest of day forecast beyond available (0 if none)
-- Major units of the currency.  The actual reads today's entries through
-- the BRIN index on posted_at.
CREATE OR REPLACE FUNCTION settle._metrics_liquidity()
RETURNS TABLE (metric text, labels jsonb, value double precision)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    WITH fc AS (
        SELECT f.participant_id, f.currency,
               sum(CASE WHEN f.slot_end <= now() THEN f.expected_outflow - f.expected_inflow
                        WHEN f.slot_start < now() THEN (f.expected_outflow - f.expected_inflow)
                             * extract(epoch FROM now() - f.slot_start) / extract(epoch FROM f.slot_end - f.slot_start)
                        ELSE 0 END) AS so_far,
               sum(CASE WHEN f.slot_end <= now() THEN 0
                        WHEN f.slot_start < now() THEN (f.expected_outflow - f.expected_inflow)
                             * extract(epoch FROM f.slot_end - now()) / extract(epoch FROM f.slot_end - f.slot_start)
                        ELSE f.expected_outflow - f.expected_inflow END) AS rest
          FROM settle.liquidity_forecast f
         WHERE f.slot_start >= date_trunc('day', now()) AND f.slot_start < date_trunc('day', now()) + interval '1 day'
         GROUP BY 1, 2),
    actual AS (
        SELECT a.participant_id, a.currency, -sum(e.amount) AS net_out
          FROM settle.ledger_entry e JOIN settle.account a ON a.account_id = e.account_id
         WHERE e.posted_at >= date_trunc('day', now()) AND a.kind = 'customer' AND e.payment_id IS NOT NULL
         GROUP BY 1, 2),
    avail AS (
        SELECT a.participant_id, a.currency, sum(a.balance + a.lower_limit - a.pending_debit) AS available
          FROM settle.account a WHERE a.kind = 'customer' GROUP BY 1, 2),
    m AS (
        SELECT fc.participant_id, fc.currency, fc.so_far, fc.rest, coalesce(ac.net_out, 0) AS net_out,
               coalesce(av.available, 0) AS available, c.exponent
          FROM fc LEFT JOIN actual ac USING (participant_id, currency)
          LEFT JOIN avail av USING (participant_id, currency)
          JOIN settle.currency c ON c.code = fc.currency)
    SELECT x.metric, jsonb_build_object('participant', m.participant_id, 'currency', m.currency),
           (x.v / 10::numeric ^ m.exponent)::double precision
      FROM m, LATERAL (VALUES ('settle_liquidity_forecast_net_outflow', m.so_far),
                              ('settle_liquidity_actual_net_outflow', m.net_out::numeric),
                              ('settle_liquidity_forecast_rest_of_day_net_outflow', m.rest),
                              ('settle_liquidity_available', m.available::numeric),
                              ('settle_liquidity_forecast_shortfall', greatest(0, m.rest - m.available))) x(metric, v)
$$;

-- Rights: participants ask for their own forecast (the caller's rights and
-- row-level security); operators refresh; the metrics' readers read.
ALTER TABLE settle.liquidity_forecast ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_forecasts ON settle.liquidity_forecast FOR SELECT
    USING ((SELECT settle.sees_all()) OR participant_id = (SELECT settle.current_participant()));
REVOKE ALL ON settle.liquidity_forecast FROM PUBLIC;
GRANT SELECT ON settle.liquidity_forecast TO settle_submitter, settle_operator, settle_auditor;
REVOKE ALL ON FUNCTION settle._flow_forecast(text, text, timestamptz, integer, integer),
    @extschema@.settle_liquidity_forecast(text, timestamptz, integer, integer),
    @extschema@.settle_refresh_liquidity_forecast(date, integer, integer), settle._metrics_liquidity() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION settle._flow_forecast(text, text, timestamptz, integer, integer),
    @extschema@.settle_liquidity_forecast(text, timestamptz, integer, integer)
    TO settle_submitter, settle_operator, settle_auditor;
GRANT EXECUTE ON FUNCTION @extschema@.settle_refresh_liquidity_forecast(date, integer, integer) TO settle_operator;
GRANT EXECUTE ON FUNCTION settle._metrics_liquidity() TO pg_monitor, settle_operator, settle_auditor;

-- The metrics view (60_metrics.sql) gains the family 'liquidity': the view
-- is replaced, whole, with every family, in 88_controls.sql (the last family's file).

