-- settle install script, part 8.9: early warnings (issue #33,
-- docs/PARTICIPANT_CONTROLS.md "Early warnings").  A participant sets, per
-- currency, a threshold for its available liquidity (the sum over its
-- accounts in that currency of balance + lower limit - pending debits) or
-- for the headroom of its limits (the lowest of them); after each cycle
-- that changed something, settle._check_alerts() compares: crossing below
-- raises the alert (event alert_raised, NOTIFY settle_alert), back at or
-- above clears it (alert_cleared); while below, the metric
-- settle_participant_alert is 1.  Who may set what: as for limits
-- (88_controls.sql).

CREATE TABLE settle.participant_alert (
    participant_id  text NOT NULL REFERENCES settle.participant,
    currency        text NOT NULL REFERENCES settle.currency,
    kind            text NOT NULL CHECK (kind IN ('liquidity', 'headroom')),
    threshold       bigint NOT NULL CHECK (threshold BETWEEN 0 AND 999999999999999),
    -- since when the value is below the threshold; NULL: not alerting
    alerting_since  timestamptz,
    updated_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (participant_id, currency, kind)
);
SELECT pg_catalog.pg_extension_config_dump('settle.participant_alert', '');

-- The value each alert watches, minor units, now: available liquidity, or
-- the lowest headroom of the participant's limits in the currency (NULL
-- without limits) and the counterparty of that limit (NULL: multilateral).
CREATE OR REPLACE FUNCTION settle._alert_values()
RETURNS TABLE (participant_id text, currency text, kind text, threshold bigint, value bigint,
               counterparty_id text, alerting_since timestamptz)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT al.participant_id, al.currency, al.kind, al.threshold,
           CASE al.kind
               WHEN 'liquidity' THEN (SELECT sum(a.balance + a.lower_limit - a.pending_debit)::bigint
                                        FROM settle.account a
                                       WHERE a.participant_id = al.participant_id AND a.currency = al.currency
                                         AND a.kind = 'customer')
               ELSE h.headroom END,
           CASE al.kind WHEN 'headroom' THEN h.counterparty_id END,
           al.alerting_since
      FROM settle.participant_alert al
      LEFT JOIN LATERAL (
          SELECT x.counterparty_id, x.amount - x.used AS headroom
            FROM settle._limit_positions(date_trunc('day', now())) x
           WHERE al.kind = 'headroom' AND x.participant_id = al.participant_id AND x.currency = al.currency
           ORDER BY x.amount - x.used, x.counterparty_id NULLS FIRST LIMIT 1) h ON true
$$;

-- After a cycle (src/cycle_controls.c, as the cycle's runner): raise the
-- alerts whose value fell below their threshold, clear those back at or
-- above it; an event and a notification each.  Returns how many changed.
CREATE OR REPLACE FUNCTION settle._check_alerts() RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v record;
    n integer := 0;
    raised boolean;
    d jsonb;
BEGIN
    FOR v IN SELECT * FROM settle._alert_values() x
              WHERE (x.value < x.threshold) IS DISTINCT FROM (x.alerting_since IS NOT NULL)
                AND (x.value IS NOT NULL OR x.alerting_since IS NOT NULL)
              ORDER BY 1, 2, 3
    LOOP
        raised := v.value < v.threshold;
        UPDATE settle.participant_alert a
           SET alerting_since = CASE WHEN raised THEN clock_timestamp() END
         WHERE a.participant_id = v.participant_id AND a.currency = v.currency AND a.kind = v.kind;
        d := jsonb_build_object('currency', v.currency, 'kind', v.kind, 'threshold', v.threshold,
                                'value', v.value)
             || CASE WHEN v.kind = 'headroom' THEN jsonb_build_object('counterparty_id', v.counterparty_id)
                     ELSE '{}'::jsonb END;
        INSERT INTO settle.event (entity, entity_id, event_type, details)
            VALUES ('participant', v.participant_id, CASE WHEN raised THEN 'alert_raised' ELSE 'alert_cleared' END, d);
        PERFORM pg_notify('settle_alert', (jsonb_build_object('participant_id', v.participant_id,
                                                              'alert', CASE WHEN raised THEN 'raised' ELSE 'cleared' END)
                                           || d)::text);
        n := n + 1;
    END LOOP;
    RETURN n;
END
$$;

-- Sets the threshold (major units) below which the participant is warned:
-- kind 'liquidity' (its available liquidity in the currency) or 'headroom'
-- (the lowest headroom of its limits in the currency).
CREATE OR REPLACE FUNCTION settle_set_alert(participant_id text, currency text, kind text, threshold numeric)
RETURNS numeric LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    who text := settle._control_owner(participant_id);
    minor bigint;
BEGIN
    PERFORM settle._check_currency('currency', currency);
    IF kind IS NULL OR kind NOT IN ('liquidity', 'headroom') THEN
        RAISE EXCEPTION 'kind must be liquidity or headroom' USING ERRCODE = 'SE185';
    END IF;
    minor := settle._to_minor('threshold', threshold, currency, true);
    INSERT INTO settle.participant_alert AS a (participant_id, currency, kind, threshold)
        VALUES (who, currency, kind, minor)
        ON CONFLICT ON CONSTRAINT participant_alert_pkey
        DO UPDATE SET threshold = excluded.threshold, updated_at = clock_timestamp()
        WHERE a.threshold IS DISTINCT FROM excluded.threshold;
    RETURN settle.to_major(minor, currency);
END
$$;

CREATE OR REPLACE FUNCTION settle_remove_alert(participant_id text, currency text, kind text)
RETURNS boolean LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    who text := settle._control_owner(participant_id);
BEGIN
    DELETE FROM settle.participant_alert a
     WHERE a.participant_id = who AND a.currency = settle_remove_alert.currency AND a.kind = settle_remove_alert.kind;
    RETURN FOUND;
END
$$;

-- The alerts as participants read them (their own), with the value now.
CREATE OR REPLACE VIEW settle.participant_alerts AS
    SELECT x.participant_id, x.currency, x.kind,
           settle.to_major(x.threshold, x.currency) AS threshold,
           settle.to_major(x.value, x.currency) AS value,
           x.counterparty_id,
           x.alerting_since IS NOT NULL AS alerting, x.alerting_since
      FROM settle._alert_values() x;
ALTER VIEW settle.participant_alerts SET (security_invoker = true);

-- Metrics: 1 while an alert is raised, 0 otherwise, per alert.
CREATE OR REPLACE FUNCTION settle._metrics_alerts()
RETURNS TABLE (metric text, labels jsonb, value double precision)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT 'settle_participant_alert',
           jsonb_build_object('participant', a.participant_id, 'currency', a.currency, 'kind', a.kind),
           CASE WHEN a.alerting_since IS NOT NULL THEN 1 ELSE 0 END::double precision
      FROM settle.participant_alert a
$$;

-- The metrics view, whole, with every family (60_metrics.sql, 86_liquidity.sql
-- and the alerts): a family added anywhere must be added here too.
CREATE OR REPLACE VIEW settle.metrics AS
              SELECT 'queue'::text AS family, m.metric, m.labels, m.value FROM settle._metrics_queue() m
    UNION ALL SELECT 'cycles', m.metric, m.labels, m.value FROM settle._metrics_cycles() m
    UNION ALL SELECT 'latency', m.metric, m.labels, m.value FROM settle._metrics_latency() m
    UNION ALL SELECT 'outbox', m.metric, m.labels, m.value FROM settle._metrics_outbox() m
    UNION ALL SELECT 'worker', m.metric, m.labels, m.value FROM settle._metrics_worker() m
    UNION ALL SELECT 'replication', m.metric, m.labels, m.value FROM settle._metrics_replication() m
    UNION ALL SELECT 'backlog', m.metric, m.labels, m.value FROM settle._metrics_backlog() m
    UNION ALL SELECT 'liquidity', m.metric, m.labels, m.value FROM settle._metrics_liquidity() m
    UNION ALL SELECT 'alerts', m.metric, m.labels, m.value FROM settle._metrics_alerts() m;

-- In a DO block, like the controls' (88_controls.sql): the functions exist first.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger t WHERE t.tgname = 'participant_alert_changed'
                      AND t.tgrelid = 'settle.participant_alert'::pg_catalog.regclass) THEN
        CREATE TRIGGER participant_alert_changing BEFORE INSERT OR UPDATE OF threshold OR DELETE ON settle.participant_alert
            FOR EACH ROW EXECUTE FUNCTION settle._control_changing();
        CREATE TRIGGER participant_alert_changed AFTER INSERT OR UPDATE OF threshold OR DELETE ON settle.participant_alert
            FOR EACH ROW EXECUTE FUNCTION settle._control_changed();
    END IF;
END
$$;

COMMENT ON FUNCTION @extschema@.settle_set_alert(text, text, text, numeric) IS
    'Warn a participant (event alert_raised, NOTIFY settle_alert, metric settle_participant_alert) when its available liquidity, or the lowest headroom of its limits, in a currency falls below a threshold (a participant for itself, operators for any)';
COMMENT ON FUNCTION @extschema@.settle_remove_alert(text, text, text) IS
    'Remove an early warning; true if there was one';
COMMENT ON VIEW settle.participant_alerts IS
    'settle: early warnings with the value they watch now (own rows for participants)';
COMMENT ON COLUMN settle.participant_alerts.participant_id IS 'the participant warned';
COMMENT ON COLUMN settle.participant_alerts.currency IS 'the currency watched';
COMMENT ON COLUMN settle.participant_alerts.kind IS 'liquidity (available liquidity) or headroom (the lowest headroom of its limits)';
COMMENT ON COLUMN settle.participant_alerts.threshold IS 'the alert is raised when the value falls below it';
COMMENT ON COLUMN settle.participant_alerts.value IS 'the value now (NULL: a headroom alert without limits in the currency)';
COMMENT ON COLUMN settle.participant_alerts.counterparty_id IS 'headroom: the counterparty of the lowest limit (NULL: the multilateral one)';
COMMENT ON COLUMN settle.participant_alerts.alerting IS 'whether the alert is raised (as of the last cycle)';
COMMENT ON COLUMN settle.participant_alerts.alerting_since IS 'since when';

ALTER TABLE settle.participant_alert ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_alerts ON settle.participant_alert
    USING ((SELECT settle.sees_all()) OR participant_id = (SELECT settle.current_participant()))
    WITH CHECK (pg_has_role(current_user, 'settle_operator', 'MEMBER')
                OR participant_id = (SELECT settle.current_participant()));
REVOKE ALL ON settle.participant_alert, settle.participant_alerts FROM PUBLIC;
GRANT SELECT, DELETE ON settle.participant_alert TO settle_submitter, settle_operator;
GRANT INSERT (participant_id, currency, kind, threshold) ON settle.participant_alert TO settle_submitter, settle_operator;
GRANT UPDATE (threshold, updated_at) ON settle.participant_alert TO settle_submitter, settle_operator;
GRANT SELECT ON settle.participant_alert, settle.participant_alerts TO settle_submitter, settle_operator, settle_auditor;
REVOKE ALL ON FUNCTION settle._alert_values(), settle._check_alerts(), settle._metrics_alerts(),
    @extschema@.settle_set_alert(text, text, text, numeric), @extschema@.settle_remove_alert(text, text, text)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.settle_set_alert(text, text, text, numeric),
    @extschema@.settle_remove_alert(text, text, text) TO settle_submitter, settle_operator;
GRANT EXECUTE ON FUNCTION settle._alert_values() TO settle_submitter, settle_operator, settle_auditor;
GRANT EXECUTE ON FUNCTION settle._metrics_alerts() TO pg_monitor, settle_operator, settle_auditor;
