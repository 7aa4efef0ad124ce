-- settle 1.0 -> 1.1 (ALTER EXTENSION settle UPDATE TO '1.1').
--
-- Every object 1.1 adds or changes, in the order of src/sql/*.sql, so that an
-- updated 1.0 database has exactly the objects of a fresh 1.1 install
-- (test/scripts/upgrade.sh compares the two catalogs).  Each section names the
-- issue it comes from; a function changed in src/sql/ is replaced here whole.

\echo Use "ALTER EXTENSION settle UPDATE TO '1.1'" to load this file. \quit


-- issue #21: what a participant's treasurer needs: funding advice, liquidity forecast, verifiable statements

-- the statement tree's size and root in the digest (src/sql/50_audit.sql)
CREATE OR REPLACE FUNCTION settle._chain_digest()
RETURNS jsonb LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    d jsonb;
BEGIN
    SELECT jsonb_build_object(
               'format', 'settle-chain-digest/1',
               'database', current_database(),
               'taken_at', clock_timestamp(),
               'ledger_entry', (SELECT jsonb_build_object('seq', x.seq, 'entry_id', x.entry_id, 'hash', encode(x.hash, 'hex'))
                                  FROM settle.ledger_seal x ORDER BY x.seq DESC LIMIT 1),
               'event', (SELECT jsonb_build_object('seq', x.seq, 'event_id', x.event_id, 'hash', encode(x.hash, 'hex'))
                           FROM settle.event_seal x ORDER BY x.seq DESC LIMIT 1),
               -- the statement Merkle tree over the sealed entries (87_statements.sql)
               'ledger_merkle', (SELECT jsonb_build_object('size', t.n, 'root', encode(settle._merkle_root(t.n), 'hex'))
                                   FROM (SELECT settle._merkle_size() AS n) t))
      INTO d;
    RETURN d;
END
$$;

-- src/sql/85_funding_advice.sql
-- (docs/ALGORITHM.md, "Liquidity prices and funding advice").
--
-- Each cycle's LP relaxation prices every account's liquidity: the dual
-- value of its row, the objective's decrease per minor unit more available
-- (src/solver_duals.c).  The cycle records the positive ones here (an
-- account without a row in a cycle had price 0 or was not in it).
-- settle_funding_advice() answers, per account of a participant, which of
-- its queued payments its own liquidity blocks, the least top-up that
-- settles them (three exact MIPs) and what that top-up unlocks for everyone.

CREATE TABLE settle.liquidity_price (
    cycle_id        bigint NOT NULL,
    account_id      text NOT NULL,
    participant_id  text NOT NULL,
    currency        text NOT NULL,
    -- the LP dual of the account's row: objective decrease per minor unit more available
    price           double precision NOT NULL,
    -- the same per major unit, in settled priority-weighted value (reference
    -- currency) per unit of liquidity (reference currency): 3 = one more unit
    -- here would let three units of (due, priority 5) payments settle
    value_per_unit  double precision NOT NULL,
    PRIMARY KEY (cycle_id, account_id)
);
SELECT pg_catalog.pg_extension_config_dump('settle.liquidity_price', '');
CREATE INDEX liquidity_price_account ON settle.liquidity_price (account_id, cycle_id);
CREATE TRIGGER liquidity_price_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON settle.liquidity_price
    FOR EACH STATEMENT EXECUTE FUNCTION settle._refuse_change();
COMMENT ON TABLE settle.liquidity_price IS
    'settle: per cycle, each account whose liquidity the LP relaxation priced above 0 (its dual value); docs/ALGORITHM.md';
COMMENT ON COLUMN settle.liquidity_price.price IS
    'The LP dual of the account''s row: decrease of the cycle''s objective per minor unit more available';
COMMENT ON COLUMN settle.liquidity_price.value_per_unit IS
    'Settled priority-weighted value per unit more liquidity, both in the reference currency (price per major unit / due factor)';

-- The three MIPs of src/solver_duals.c over arrays (accounts and payments
-- numbered from 1): the least top-up of account target that settles what
-- unlimited liquidity there would.
CREATE FUNCTION settle._topup_solve(target integer, available bigint[], constrained boolean[],
        src integer[], dst integer[], amount bigint[], weight double precision[], time_limit_ms double precision,
        OUT status text, OUT top_up bigint, OUT weight_now double precision,
        OUT weight_unlimited double precision, OUT weight_topped double precision,
        OUT settled_now boolean[], OUT settled_topped boolean[])
    AS 'MODULE_PATHNAME', 'settle_topup_solve_sql' LANGUAGE C STRICT VOLATILE;

-- The advice, as the owner (called by settle_funding_advice() only): per
-- customer account of the participant, over the queued payments of the
-- account's currency between active accounts (cross-currency payments are
-- not in this model), weight = priority x amount.
CREATE FUNCTION settle._funding_advice(pid text)
RETURNS TABLE (account_id text, currency text, available numeric, status text,
               top_up numeric, top_up_minor bigint,
               blocked_by_own_liquidity bigint[], blocked_by_others bigint[],
               unlocked_payments integer, unlocked_amount numeric, unlocked_weight numeric,
               liquidity_value_per_unit double precision, price_cycle_id bigint)
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    acc record;
    q record;
    sol record;
    limit_ms double precision := (SELECT x.setting::double precision FROM pg_settings x
                                   WHERE x.name = 'settle.solver_time_limit');
    last_cycle bigint := (SELECT max(c.cycle_id) FROM settle.cycle c);
BEGIN
    FOR acc IN SELECT a.account_id, a.currency, a.balance + a.lower_limit - a.pending_debit AS avail
                 FROM settle.account a
                WHERE a.participant_id = pid AND a.kind = 'customer'
                ORDER BY a.account_id LOOP
        WITH pay AS (
            SELECT p.payment_id, p.source_account, p.destination_account, p.amount::bigint AS amount,
                   p.priority::integer AS priority
              FROM settle.payment p
              JOIN settle.account sa ON sa.account_id = p.source_account AND sa.status = 'active'
              JOIN settle.account da ON da.account_id = p.destination_account AND da.status = 'active'
             WHERE p.status = 'queued' AND p.source_currency = acc.currency
               AND p.destination_currency = acc.currency),
        ids AS (
            SELECT x.account_id, (row_number() OVER (ORDER BY x.account_id))::integer AS n
              FROM (SELECT pay.source_account AS account_id FROM pay
                    UNION SELECT pay.destination_account FROM pay
                    UNION SELECT acc.account_id) x),
        numbered AS (
            SELECT pay.*, s.n AS sn, d.n AS dn
              FROM pay JOIN ids s ON s.account_id = pay.source_account
                       JOIN ids d ON d.account_id = pay.destination_account)
        SELECT (SELECT i.n FROM ids i WHERE i.account_id = acc.account_id) AS target,
               (SELECT array_agg(a.balance + a.lower_limit - a.pending_debit ORDER BY i.n)
                  FROM ids i JOIN settle.account a ON a.account_id = i.account_id) AS avail,
               (SELECT array_agg(a.kind = 'customer' ORDER BY i.n)
                  FROM ids i JOIN settle.account a ON a.account_id = i.account_id) AS cons,
               array_agg(n.payment_id ORDER BY n.payment_id) AS pids,
               array_agg(n.sn ORDER BY n.payment_id) AS src,
               array_agg(n.dn ORDER BY n.payment_id) AS dst,
               array_agg(n.amount ORDER BY n.payment_id) AS amount,
               array_agg((n.priority * n.amount)::double precision ORDER BY n.payment_id) AS weight,
               array_agg(n.source_account = acc.account_id ORDER BY n.payment_id) AS own
          INTO q FROM numbered n;
        account_id := acc.account_id;
        currency := acc.currency;
        available := settle.to_major(acc.avail, acc.currency);
        SELECT lp.value_per_unit INTO liquidity_value_per_unit FROM settle.liquidity_price lp
         WHERE lp.cycle_id = last_cycle AND lp.account_id = acc.account_id;
        liquidity_value_per_unit := coalesce(liquidity_value_per_unit, CASE WHEN last_cycle IS NOT NULL THEN 0 END);
        price_cycle_id := last_cycle;
        IF q.pids IS NULL OR NOT (true = ANY (q.own)) THEN
            status := 'nothing_queued';
            top_up := 0; top_up_minor := 0;
            blocked_by_own_liquidity := '{}'; blocked_by_others := '{}';
            unlocked_payments := 0; unlocked_amount := 0; unlocked_weight := 0;
            RETURN NEXT;
            CONTINUE;
        END IF;
        sol := settle._topup_solve(q.target, q.avail, q.cons, q.src, q.dst, q.amount, q.weight, limit_ms);
        status := sol.status;
        top_up_minor := sol.top_up;
        top_up := settle.to_major(sol.top_up, acc.currency);
        SELECT coalesce(array_agg(q.pids[i] ORDER BY i) FILTER (WHERE q.own[i] AND sol.settled_topped[i] AND NOT sol.settled_now[i]), '{}'),
               coalesce(array_agg(q.pids[i] ORDER BY i) FILTER (WHERE q.own[i] AND NOT sol.settled_topped[i]), '{}'),
               count(*) FILTER (WHERE sol.settled_topped[i] AND NOT sol.settled_now[i]),
               settle.to_major((coalesce(sum(q.amount[i]) FILTER (WHERE sol.settled_topped[i]), 0)
                                - coalesce(sum(q.amount[i]) FILTER (WHERE sol.settled_now[i]), 0))::bigint, acc.currency)
          INTO blocked_by_own_liquidity, blocked_by_others, unlocked_payments, unlocked_amount
          FROM generate_series(1, cardinality(q.pids)) i;
        unlocked_weight := settle.to_major(round((sol.weight_topped - sol.weight_now) / 5)::bigint, acc.currency);
        RETURN NEXT;
    END LOOP;
END
$$;

-- The caller's rights decide whose advice it may have (src/funding_advice.c).
CREATE FUNCTION settle_funding_advice(participant_id text)
RETURNS TABLE (account_id text, currency text, available numeric, status text,
               top_up numeric, top_up_minor bigint,
               blocked_by_own_liquidity bigint[], blocked_by_others bigint[],
               unlocked_payments integer, unlocked_amount numeric, unlocked_weight numeric,
               liquidity_value_per_unit double precision, price_cycle_id bigint)
    AS 'MODULE_PATHNAME', 'settle_funding_advice_sql' LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION settle_funding_advice(text) IS
    'Per account of a participant: the queued payments its own liquidity blocks, the least top-up that settles them (solved exactly) and what it unlocks for all';

-- Rights: a participant reads its own prices (row-level security) and its
-- own advice; the advice's internals are the owner's.
ALTER TABLE settle.liquidity_price ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_prices ON settle.liquidity_price FOR SELECT
    USING ((SELECT settle.sees_all()) OR participant_id = (SELECT settle.current_participant()));
REVOKE ALL ON settle.liquidity_price FROM PUBLIC;
GRANT SELECT ON settle.liquidity_price TO settle_submitter, settle_operator, settle_auditor;
REVOKE ALL ON FUNCTION settle._topup_solve(integer, bigint[], boolean[], integer[], integer[], bigint[], double precision[], double precision),
    settle._funding_advice(text), @extschema@.settle_funding_advice(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.settle_funding_advice(text) TO settle_submitter, settle_operator, settle_auditor;

-- src/sql/86_liquidity.sql
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
CREATE FUNCTION settle._flow_forecast(pid text, ccy text, day timestamptz, slot_minutes integer, history_weeks integer)
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
CREATE FUNCTION settle_liquidity_forecast(participant_id text, as_of timestamptz DEFAULT now(),
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
CREATE FUNCTION settle_refresh_liquidity_forecast(day date DEFAULT current_date, slot_minutes integer DEFAULT 60,
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
CREATE FUNCTION settle._metrics_liquidity()
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
-- is replaced here, whole, because its new function needs the table above.
CREATE OR REPLACE VIEW settle.metrics AS
              SELECT 'queue'::text AS family, m.metric, m.labels, m.value FROM settle._metrics_queue() m
    UNION ALL SELECT 'cycles', m.metric, m.labels, m.value FROM settle._metrics_cycles() m
    UNION ALL SELECT 'latency', m.metric, m.labels, m.value FROM settle._metrics_latency() m
    UNION ALL SELECT 'outbox', m.metric, m.labels, m.value FROM settle._metrics_outbox() m
    UNION ALL SELECT 'worker', m.metric, m.labels, m.value FROM settle._metrics_worker() m
    UNION ALL SELECT 'replication', m.metric, m.labels, m.value FROM settle._metrics_replication() m
    UNION ALL SELECT 'liquidity', m.metric, m.labels, m.value FROM settle._metrics_liquidity() m;

-- src/sql/87_statements.sql
-- "Statements a participant can verify").
--
-- Every sealed ledger entry is also a leaf of one append-only Merkle tree
-- (RFC 6962 / 9162 shape: leaf index = chain seq - 1, a tree of n leaves is
-- the first n sealed entries).  A leaf commits to the entry's content and
-- to its place in its account: the account's entry number (account_seq,
-- 1, 2, ... in chain order) and its balance after the entry, so that a
-- statement from which an entry was dropped, or whose balances were
-- recomputed after a drop, no longer verifies.  Each leaf has 16 random
-- bytes of salt, revealed only with the participant's own entries: the
-- sibling hashes a statement carries cannot be reversed into another
-- participant's amounts by guessing.
--
--   leaf hash  = sha256(0x00 || salt || content)      content: the UTF-8 text of
--                [seq, entry_id, journal_id, batch_id, payment_id, participant_id,
--                 account_id, currency, amount, posted_at (µs since epoch), account_seq,
--                 balance_after]: a verifier sees whose entry each leaf is
--   node hash  = sha256(0x01 || left || right)
--
-- Complete subtrees are stored once (settle.ledger_merkle_node, (level, idx)
-- covers leaves idx * 2^level .. (idx + 1) * 2^level - 1) and never change,
-- so the root and the inclusion proofs of any earlier tree size can be
-- computed from them.  The tree grows with every seal run that sealed
-- ledger entries (a trigger on settle.seal_run); settle_chain_digest()
-- exports its size and root beside the chain heads.

CREATE TABLE settle.ledger_leaf (
    seq             bigint PRIMARY KEY,     -- settle.ledger_seal.seq; the leaf index is seq - 1
    entry_id        bigint NOT NULL UNIQUE,
    account_id      text NOT NULL,
    account_seq     bigint NOT NULL,        -- the account's entries numbered 1, 2, ... in chain order
    balance_after   bigint NOT NULL,        -- the sum of the account's entries up to this one, chain order
    salt            bytea NOT NULL          -- 16 random bytes, revealed only to the account's participant
);
SELECT pg_catalog.pg_extension_config_dump('settle.ledger_leaf', '');
CREATE UNIQUE INDEX ledger_leaf_account ON settle.ledger_leaf (account_id, account_seq);
CREATE TABLE settle.ledger_merkle_node (
    level           smallint NOT NULL,      -- 0: a leaf hash
    idx             bigint NOT NULL,
    hash            bytea NOT NULL,
    PRIMARY KEY (level, idx)
);
SELECT pg_catalog.pg_extension_config_dump('settle.ledger_merkle_node', '');
CREATE TRIGGER ledger_leaf_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON settle.ledger_leaf
    FOR EACH STATEMENT EXECUTE FUNCTION settle._refuse_change();
CREATE TRIGGER ledger_merkle_node_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON settle.ledger_merkle_node
    FOR EACH STATEMENT EXECUTE FUNCTION settle._refuse_change();
COMMENT ON TABLE settle.ledger_leaf IS
    'settle: each sealed ledger entry as a leaf of the statement Merkle tree: its number and balance in its account, its salt';
COMMENT ON TABLE settle.ledger_merkle_node IS
    'settle: the complete subtrees of the statement Merkle tree over sealed ledger entries (level 0: leaf hashes)';

-- The leaf content (text, as the verifier reads it) and the two hashes:
-- like settle._entry_content, without a pinned search_path so that the
-- planner inlines them (once per leaf); everything they name is in
-- pg_catalog, which is searched first.
CREATE FUNCTION settle._leaf_content(seq bigint, entry_id bigint, journal_id bigint, batch_id bigint,
                                     payment_id bigint, participant_id text, account_id text, currency text,
                                     amount bigint, posted_at timestamptz, account_seq bigint, balance_after bigint)
RETURNS text LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT pg_catalog.jsonb_build_array(seq, entry_id, journal_id, batch_id, payment_id, participant_id, account_id, currency,
               amount, (extract(epoch FROM posted_at) * 1000000)::bigint, account_seq, balance_after)::text
$$;
-- Microseconds since the epoch; -infinity and infinity as the ends of bigint.
CREATE FUNCTION settle._epoch_us(t timestamptz) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE WHEN pg_catalog.isfinite(t) THEN (extract(epoch FROM t) * 1000000)::bigint
                WHEN t > '2000-01-01'::timestamptz THEN 9223372036854775807
                ELSE -9223372036854775808 END
$$;
CREATE FUNCTION settle._leaf_hash(salt bytea, content text) RETURNS bytea
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT pg_catalog.sha256('\x00'::bytea OPERATOR(pg_catalog.||) salt
                             OPERATOR(pg_catalog.||) pg_catalog.convert_to(content, 'UTF8'))
$$;
CREATE FUNCTION settle._node_hash(l bytea, r bytea) RETURNS bytea
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT pg_catalog.sha256('\x01'::bytea OPERATOR(pg_catalog.||) l OPERATOR(pg_catalog.||) r)
$$;

-- Adds every sealed entry that is not a leaf yet, then every subtree those
-- leaves complete.  Returns the number of leaves added.  Runs under the seal
-- lock (from the seal_run trigger), so leaves are added by one at a time.
CREATE FUNCTION settle._merkle_extend() RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    done bigint;
    added bigint;
    n bigint;
    lvl int;
BEGIN
    SELECT coalesce(max(l.seq), 0) INTO done FROM settle.ledger_leaf l;
    WITH fresh AS (
        SELECT s.seq, e.entry_id, e.journal_id, e.batch_id, e.payment_id, a.participant_id, e.account_id,
               e.currency, e.amount, e.posted_at
          FROM settle.ledger_seal s JOIN settle.ledger_entry e ON e.entry_id = s.entry_id
          LEFT JOIN settle.account a ON a.account_id = e.account_id
         WHERE s.seq > done),
    prior AS (
        SELECT a.account_id, p.account_seq, p.balance_after
          FROM (SELECT DISTINCT f.account_id FROM fresh f) a
          CROSS JOIN LATERAL (SELECT x.account_seq, x.balance_after FROM settle.ledger_leaf x
                               WHERE x.account_id = a.account_id
                               ORDER BY x.account_seq DESC LIMIT 1) p),
    leaf AS (
        SELECT f.*, coalesce(p.account_seq, 0) + row_number() OVER w AS account_seq,
               (coalesce(p.balance_after, 0) + sum(f.amount) OVER w)::bigint AS balance_after,
               uuid_send(gen_random_uuid()) AS salt
          FROM fresh f LEFT JOIN prior p ON p.account_id = f.account_id
        WINDOW w AS (PARTITION BY f.account_id ORDER BY f.seq)),
    ins AS (
        INSERT INTO settle.ledger_leaf (seq, entry_id, account_id, account_seq, balance_after, salt)
        SELECT l.seq, l.entry_id, l.account_id, l.account_seq, l.balance_after, l.salt FROM leaf l)
    INSERT INTO settle.ledger_merkle_node (level, idx, hash)
    SELECT 0, l.seq - 1,
           settle._leaf_hash(l.salt, settle._leaf_content(l.seq, l.entry_id, l.journal_id, l.batch_id, l.payment_id,
                                                          l.participant_id, l.account_id, l.currency, l.amount, l.posted_at,
                                                          l.account_seq, l.balance_after))
      FROM leaf l;
    GET DIAGNOSTICS added = ROW_COUNT;
    IF added = 0 THEN
        RETURN 0;
    END IF;
    n := done + added;
    -- level lvl gains the nodes idx in [done >> lvl, n >> lvl): complete now, not before
    lvl := 1;
    WHILE (n >> lvl) > 0 LOOP
        INSERT INTO settle.ledger_merkle_node (level, idx, hash)
        SELECT lvl, a.idx / 2, settle._node_hash(a.hash, b.hash)
          FROM settle.ledger_merkle_node a
          JOIN settle.ledger_merkle_node b ON b.level = lvl - 1 AND b.idx = a.idx + 1
         WHERE a.level = lvl - 1 AND a.idx >= 2 * (done >> lvl) AND a.idx < 2 * (n >> lvl)
           AND a.idx % 2 = 0;
        lvl := lvl + 1;
    END LOOP;
    RETURN added;
END
$$;

CREATE FUNCTION settle._merkle_on_seal() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM settle._merkle_extend();
    RETURN NULL;
END
$$;
CREATE TRIGGER seal_run_merkle AFTER INSERT ON settle.seal_run
    FOR EACH ROW WHEN (NEW.chain = 'ledger_entry' AND NEW.rows_sealed > 0)
    EXECUTE FUNCTION settle._merkle_on_seal();

-- Leaves in the tree now.
CREATE FUNCTION settle._merkle_size() RETURNS bigint
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT coalesce(max(n.idx) + 1, 0) FROM settle.ledger_merkle_node n WHERE n.level = 0
$$;

-- One stored subtree (an error if it is missing: the tree is incomplete).
CREATE FUNCTION settle._merkle_node(lvl int, i bigint) RETURNS bytea
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    h bytea;
BEGIN
    SELECT n.hash INTO h FROM settle.ledger_merkle_node n WHERE n.level = lvl AND n.idx = i;
    IF h IS NULL THEN
        RAISE EXCEPTION 'the statement Merkle tree has no node (%, %)', lvl, i
            USING ERRCODE = 'XX001', HINT = 'Run settle_verify(); the tree is rebuilt by no function, it only grows.';
    END IF;
    RETURN h;
END
$$;

-- The root of the tree of the first n leaves: its perfect subtrees (one per
-- bit of n, largest first) folded from the right, as RFC 9162 defines it.
CREATE FUNCTION settle._merkle_root(n bigint) RETURNS bytea
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    peaks bytea[] := '{}';
    off bigint := 0;
    r bytea;
    b int;
    i int;
BEGIN
    IF n IS NULL OR n < 0 OR n > settle._merkle_size() THEN
        RAISE EXCEPTION 'the statement Merkle tree has % leaves, not %', settle._merkle_size(), n
            USING ERRCODE = '22023';
    END IF;
    IF n = 0 THEN
        RETURN sha256(''::bytea);
    END IF;
    FOR b IN REVERSE 62..0 LOOP
        CONTINUE WHEN (n >> b) & 1 = 0;
        peaks := peaks || settle._merkle_node(b, off >> b);
        off := off + (1::bigint << b);
    END LOOP;
    r := peaks[cardinality(peaks)];
    FOR i IN REVERSE cardinality(peaks) - 1 .. 1 LOOP
        r := settle._node_hash(peaks[i], r);
    END LOOP;
    RETURN r;
END
$$;

-- The inclusion proof of leaf m in the tree of the first n leaves, bottom
-- up (RFC 9162 section 2.1.3): the siblings inside m's perfect subtree, the
-- root of everything to its right, then each perfect subtree to its left.
-- Only hashes: it says nothing of any other leaf.
CREATE FUNCTION settle._merkle_path(m bigint, n bigint) RETURNS bytea[]
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    off bigint := 0;
    peak int := -1;
    lefts bytea[] := '{}';
    rights bytea[] := '{}';
    path bytea[] := '{}';
    r bytea;
    b int;
    i int;
BEGIN
    IF m IS NULL OR n IS NULL OR m < 0 OR m >= n OR n > settle._merkle_size() THEN
        RAISE EXCEPTION 'leaf % is not in a tree of % leaves', m, n USING ERRCODE = '22023';
    END IF;
    FOR b IN REVERSE 62..0 LOOP
        CONTINUE WHEN (n >> b) & 1 = 0;
        IF peak >= 0 THEN
            rights := rights || settle._merkle_node(b, off >> b);
        ELSIF m < off + (1::bigint << b) THEN
            peak := b;
        ELSE
            lefts := lefts || settle._merkle_node(b, off >> b);
        END IF;
        off := off + (1::bigint << b);
    END LOOP;
    FOR b IN 0 .. peak - 1 LOOP
        path := path || settle._merkle_node(b, (m >> b) # 1);
    END LOOP;
    IF cardinality(rights) > 0 THEN
        r := rights[cardinality(rights)];
        FOR i IN REVERSE cardinality(rights) - 1 .. 1 LOOP
            r := settle._node_hash(rights[i], r);
        END LOOP;
        path := path || r;
    END IF;
    FOR i IN REVERSE cardinality(lefts) .. 1 LOOP
        path := path || lefts[i];
    END LOOP;
    RETURN path;
END
$$;

-- A participant's statement: with the caller's rights, so that row-level
-- security shows a participant its own accounts, entries and leaves only
-- (operators and auditors: any participant's).  Per account, the entries
-- from the first posted at or after from_time to the last posted before
-- to_time (chain order, no gap), with the entry just before and the entry
-- just after as context when the tree has them; each entry with its leaf
-- content, salt and inclusion proof against the tree of tree_size leaves
-- (default: every sealed entry).  docs/AUDIT.md; the offline verifier is
-- tools/settle-verify-statement.
CREATE FUNCTION settle_statement(participant_id text, from_time timestamptz, to_time timestamptz,
                                 tree_size bigint DEFAULT NULL)
RETURNS jsonb LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    me text := settle.current_participant();
    n bigint;
    accounts jsonb;
BEGIN
    IF participant_id IS NULL OR from_time IS NULL OR to_time IS NULL THEN
        RAISE EXCEPTION 'participant_id, from_time and to_time must not be null' USING ERRCODE = 'SE001';
    END IF;
    IF NOT settle.sees_all() THEN
        IF me IS NULL THEN
            RAISE EXCEPTION 'role "%" is not mapped to a participant', current_user USING ERRCODE = 'SE036';
        END IF;
        IF me IS DISTINCT FROM settle_statement.participant_id THEN
            -- the same refusal as an unknown participant: nothing is learnt about others
            RAISE EXCEPTION 'participant_id "%" does not exist', settle_statement.participant_id
                USING ERRCODE = 'SE040';
        END IF;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM settle.participant p
                    WHERE p.participant_id = settle_statement.participant_id AND NOT p.is_operator) THEN
        RAISE EXCEPTION 'participant_id "%" does not exist', settle_statement.participant_id USING ERRCODE = 'SE040';
    END IF;
    n := coalesce(tree_size, settle._merkle_size());
    IF n < 0 OR n > settle._merkle_size() THEN
        RAISE EXCEPTION 'tree_size % is not a size of the statement tree', n USING ERRCODE = '22023',
            DETAIL = format('The tree has %s leaves (sealed ledger entries).', settle._merkle_size());
    END IF;
    WITH acc AS (
        SELECT a.account_id, a.currency, a.participant_id FROM settle.account a
         WHERE a.participant_id = settle_statement.participant_id AND a.kind = 'customer'),
    leaf AS (
        SELECT l.seq, acc.participant_id, l.account_id, l.account_seq, l.balance_after, l.salt, e.journal_id, e.batch_id,
               e.payment_id, e.entry_id, e.currency, e.amount, e.posted_at
          FROM acc JOIN settle.ledger_leaf l ON l.account_id = acc.account_id
          JOIN settle.ledger_entry e ON e.entry_id = l.entry_id
         WHERE l.seq <= n),
    bounds AS (
        SELECT acc.account_id,
               coalesce(min(l.account_seq) FILTER (WHERE l.posted_at >= from_time), max(l.account_seq) + 1, 1) AS lo,
               coalesce(max(l.account_seq) FILTER (WHERE l.posted_at < to_time), 0) AS hi
          FROM acc LEFT JOIN leaf l ON l.account_id = acc.account_id
         GROUP BY acc.account_id),
    shown AS (
        SELECT l.*, l.account_seq BETWEEN b.lo AND b.hi AS in_period
          FROM leaf l JOIN bounds b ON b.account_id = l.account_id
         WHERE l.account_seq BETWEEN least(b.lo, b.hi + 1) - 1 AND greatest(b.hi, b.lo - 1) + 1)
    SELECT coalesce(jsonb_agg(jsonb_build_object(
               'account_id', acc.account_id, 'currency', acc.currency,
               'entries', coalesce((
                   SELECT jsonb_agg(jsonb_build_object(
                              'leaf_index', s.seq - 1,
                              'in_period', s.in_period,
                              'content', settle._leaf_content(s.seq, s.entry_id, s.journal_id, s.batch_id, s.payment_id,
                                                              s.participant_id, s.account_id, s.currency, s.amount, s.posted_at,
                                                              s.account_seq, s.balance_after),
                              'salt', encode(s.salt, 'hex'),
                              'proof', (SELECT jsonb_agg(encode(h, 'hex') ORDER BY o)
                                          FROM unnest(settle._merkle_path(s.seq - 1, n)) WITH ORDINALITY AS x(h, o)))
                              ORDER BY s.account_seq)
                     FROM shown s WHERE s.account_id = acc.account_id), '[]'::jsonb))
               ORDER BY acc.account_id), '[]'::jsonb)
      INTO accounts
      FROM acc;
    RETURN jsonb_build_object(
        'format', 'settle-statement/1',
        'participant_id', settle_statement.participant_id,
        'from', from_time, 'to', to_time,
        'from_us', settle._epoch_us(from_time),
        'to_us', settle._epoch_us(to_time),
        'tree', jsonb_build_object('size', n, 'root', encode(settle._merkle_root(n), 'hex')),
        'accounts', accounts);
END
$$;
COMMENT ON FUNCTION settle_statement(text, timestamptz, timestamptz, bigint) IS
    'A participant''s ledger entries from from_time to to_time, each with a Merkle inclusion proof against the sealed tree in settle_chain_digest(); check offline with tools/settle-verify-statement';

-- Rights: the functions are the caller's own; row-level security keeps a
-- participant to its own accounts, entries and leaves; the tree is read
-- through the three functions above, which return hashes only.
ALTER TABLE settle.ledger_leaf ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_leaves ON settle.ledger_leaf FOR SELECT
    USING ((SELECT settle.sees_all()) OR EXISTS (SELECT 1 FROM settle.account a
                                         WHERE a.account_id = ledger_leaf.account_id
                                           AND a.participant_id = (SELECT settle.current_participant())));
REVOKE ALL ON settle.ledger_leaf, settle.ledger_merkle_node FROM PUBLIC;
REVOKE ALL ON FUNCTION settle._leaf_content(bigint, bigint, bigint, bigint, bigint, text, text, text, bigint, timestamptz, bigint, bigint),
    settle._epoch_us(timestamptz), settle._leaf_hash(bytea, text), settle._node_hash(bytea, bytea), settle._merkle_extend(), settle._merkle_on_seal(),
    settle._merkle_size(), settle._merkle_node(int, bigint), settle._merkle_root(bigint), settle._merkle_path(bigint, bigint),
    @extschema@.settle_statement(text, timestamptz, timestamptz, bigint) FROM PUBLIC;
GRANT SELECT ON settle.ledger_leaf TO settle_submitter, settle_operator, settle_auditor;
GRANT SELECT ON settle.ledger_merkle_node TO settle_operator, settle_auditor;
GRANT EXECUTE ON FUNCTION settle._leaf_content(bigint, bigint, bigint, bigint, bigint, text, text, text, bigint, timestamptz, bigint, bigint),
    settle._epoch_us(timestamptz), settle._leaf_hash(bytea, text), settle._node_hash(bytea, bytea),
    settle._merkle_size(), settle._merkle_root(bigint), settle._merkle_path(bigint, bigint),
    @extschema@.settle_statement(text, timestamptz, timestamptz, bigint)
    TO settle_submitter, settle_operator, settle_auditor;

-- the entries sealed before the update become the statement tree's first leaves
SELECT settle._merkle_extend();
