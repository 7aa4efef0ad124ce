-- settle install script, part 8.8: what a participant controls (issue #33,
-- docs/PARTICIPANT_CONTROLS.md): bilateral and multilateral limits,
-- liquidity reservations for urgent payments, and early warnings (below).  The cycle reads both and
-- turns them into rows of the solver's model (src/cycle_controls.c): they
-- are constraints of the optimisation, not a filter after it.
--
-- Who may set what is enforced by the database: a participant's login
-- writes the tables itself (these functions run with the caller's rights),
-- and row-level security lets it write only its own rows; operators write
-- every row.  A trigger records every change as an event.

-- The settlement day: the calendar day in UTC, whatever the session's
-- TimeZone (a manual cycle and the worker, a participant and an operator
-- mean the same day), and the moment it started.
CREATE OR REPLACE FUNCTION settle._settlement_date() RETURNS date
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT (now() AT TIME ZONE 'UTC')::date
$$;
CREATE OR REPLACE FUNCTION settle._settlement_day_start() RETURNS timestamptz
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT ((now() AT TIME ZONE 'UTC')::date)::timestamp AT TIME ZONE 'UTC'
$$;

-- Limits, in minor units of `currency`: the largest net outflow the
-- participant accepts, within one settlement day (the calendar day in
-- UTC), towards counterparty_id (a bilateral limit), or, with
-- counterparty_id NULL, towards all participants it has no bilateral limit
-- with in that currency (the multilateral limit, T2's sense).
CREATE TABLE settle.participant_limit (
    participant_id  text NOT NULL REFERENCES settle.participant,
    counterparty_id text REFERENCES settle.participant,
    currency        text NOT NULL REFERENCES settle.currency,
    amount          bigint NOT NULL CHECK (amount BETWEEN 0 AND 999999999999999),
    updated_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT participant_limit_key UNIQUE NULLS NOT DISTINCT (participant_id, counterparty_id, currency),
    CONSTRAINT participant_limit_not_self CHECK (counterparty_id <> participant_id)
);
SELECT pg_catalog.pg_extension_config_dump('settle.participant_limit', '');

-- Reservations: `amount` of the account's available liquidity (balance +
-- lower limit - pending debits) only payments of priority >= min_priority
-- may use.  valid_on NULL: a standing reservation, every day until changed;
-- a date (a settlement day, in UTC): that day only, and it replaces the
-- standing one on that day.
CREATE TABLE settle.liquidity_reservation (
    account_id      text NOT NULL REFERENCES settle.account,
    valid_on        date,
    amount          bigint NOT NULL CHECK (amount BETWEEN 0 AND 999999999999999),
    min_priority    smallint NOT NULL CHECK (min_priority BETWEEN 2 AND 9),
    updated_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT liquidity_reservation_key UNIQUE NULLS NOT DISTINCT (account_id, valid_on)
);
SELECT pg_catalog.pg_extension_config_dump('settle.liquidity_reservation', '');

-- settle._limit_positions (every cycle, once a participant has a limit)
-- reads today's settled payments and the reserved ones: found by these
-- rather than by a scan of every payment ever settled.
CREATE INDEX payment_settled_at ON settle.payment (settled_at) WHERE status = 'settled';
CREATE INDEX payment_reserved ON settle.payment (payment_id) WHERE status = 'reserved';

-- Every change of a control is an event (entity participant for limits,
-- account for reservations).  The event is written as the owner (after the
-- row), but names who changed it: the role the row's statement ran as,
-- noted by a trigger with the caller's rights just before (one statement
-- runs as one role, so nothing can come in between).
CREATE OR REPLACE FUNCTION settle._control_changing() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM set_config('settle_control.changed_by', current_user::text, true);
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END
$$;
CREATE OR REPLACE FUNCTION settle._control_changed() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r record;
    kind text := CASE TG_OP WHEN 'DELETE' THEN 'removed' ELSE 'set' END;
    changed_by text := current_setting('settle_control.changed_by', true);
    owner text;
    d jsonb;
BEGIN
    IF TG_OP = 'DELETE' THEN
        r := OLD;
    ELSE
        r := NEW;
    END IF;
    IF TG_TABLE_NAME = 'participant_limit' THEN
        d := jsonb_build_object('counterparty_id', r.counterparty_id, 'currency', r.currency,
                                'by', changed_by)
             || CASE WHEN TG_OP = 'DELETE' THEN '{}'::jsonb ELSE jsonb_build_object('amount', r.amount) END
             || CASE WHEN TG_OP = 'UPDATE' THEN jsonb_build_object('was', OLD.amount) ELSE '{}'::jsonb END;
        owner := r.participant_id;
        INSERT INTO settle.event (entity, entity_id, event_type, details)
            VALUES ('participant', r.participant_id,
                    CASE WHEN r.counterparty_id IS NULL THEN 'multilateral_limit_' ELSE 'bilateral_limit_' END || kind, d);
    ELSIF TG_TABLE_NAME = 'participant_alert' THEN
        owner := r.participant_id;
        d := jsonb_build_object('currency', r.currency, 'kind', r.kind, 'by', changed_by)
             || CASE WHEN TG_OP = 'DELETE' THEN '{}'::jsonb ELSE jsonb_build_object('threshold', r.threshold) END;
        INSERT INTO settle.event (entity, entity_id, event_type, details)
            VALUES ('participant', r.participant_id, 'alert_' || kind, d);
    ELSE
        d := jsonb_build_object('valid_on', r.valid_on, 'by', changed_by)
             || CASE WHEN TG_OP = 'DELETE' THEN '{}'::jsonb
                     ELSE jsonb_build_object('amount', r.amount, 'min_priority', r.min_priority) END;
        SELECT a.participant_id INTO owner FROM settle.account a WHERE a.account_id = r.account_id;
        INSERT INTO settle.event (entity, entity_id, event_type, details)
            VALUES ('account', r.account_id, 'reservation_' || kind, d);
    END IF;
    -- the worker judges the participant's waiting payments again at its
    -- next cycle (src/quiet.c reads the row's xmin); a cycle does not lock it
    UPDATE settle.participant x SET updated_at = clock_timestamp() WHERE x.participant_id = owner;
    RETURN NULL;
END
$$;
-- In a DO block, so that an update from 1.1 creates them too once the
-- functions exist (src/sql/updates/ runs before the functions do).
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger t WHERE t.tgname = 'participant_limit_changed'
                      AND t.tgrelid = 'settle.participant_limit'::pg_catalog.regclass) THEN
        CREATE TRIGGER participant_limit_changing BEFORE INSERT OR UPDATE OR DELETE ON settle.participant_limit
            FOR EACH ROW EXECUTE FUNCTION settle._control_changing();
        CREATE TRIGGER liquidity_reservation_changing BEFORE INSERT OR UPDATE OR DELETE ON settle.liquidity_reservation
            FOR EACH ROW EXECUTE FUNCTION settle._control_changing();
        CREATE TRIGGER participant_limit_changed AFTER INSERT OR UPDATE OR DELETE ON settle.participant_limit
            FOR EACH ROW EXECUTE FUNCTION settle._control_changed();
        CREATE TRIGGER liquidity_reservation_changed AFTER INSERT OR UPDATE OR DELETE ON settle.liquidity_reservation
            FOR EACH ROW EXECUTE FUNCTION settle._control_changed();
    END IF;
END
$$;

-- The participant a control is set for: the caller's own, or any for an
-- operator.  Raises SE036 for a role mapped to no participant, SE180 when
-- a participant names another one.  (Row-level security refuses the write
-- anyway; this gives the refusal its code and words.)
CREATE OR REPLACE FUNCTION settle._control_owner(participant_id text) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    me text := settle.current_participant();
BEGIN
    IF participant_id IS NULL THEN
        RAISE EXCEPTION 'participant_id must not be null' USING ERRCODE = 'SE001';
    END IF;
    IF pg_has_role(current_user, 'settle_operator', 'MEMBER')
       OR (SELECT r.rolsuper FROM pg_roles r WHERE r.rolname = current_user) THEN
        IF NOT EXISTS (SELECT 1 FROM settle.participant p
                        WHERE p.participant_id = _control_owner.participant_id AND NOT p.is_operator) THEN
            RAISE EXCEPTION 'participant_id "%" does not exist', participant_id USING ERRCODE = 'SE040';
        END IF;
        RETURN participant_id;
    END IF;
    IF me IS NULL THEN
        RAISE EXCEPTION 'role "%" is not mapped to a participant', current_user USING ERRCODE = 'SE036';
    END IF;
    IF me <> participant_id THEN
        RAISE EXCEPTION 'participant "%" may not set the controls of participant "%"', me, participant_id
            USING ERRCODE = 'SE180', HINT = 'A participant sets its own limits, reservations and alerts only.';
    END IF;
    RETURN me;
END
$$;

CREATE OR REPLACE FUNCTION settle._set_limit(participant_id text, counterparty_id text, currency text, amount numeric)
RETURNS numeric LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    who text := settle._control_owner(participant_id);
    minor bigint;
BEGIN
    PERFORM settle._check_currency('currency', currency);
    IF counterparty_id IS NOT NULL THEN
        PERFORM settle._check_name('counterparty_id', counterparty_id);
        IF counterparty_id = who THEN
            RAISE EXCEPTION 'a participant has no limit towards itself' USING ERRCODE = 'SE181',
                HINT = 'Name another participant as counterparty_id, or none for the multilateral limit.';
        END IF;
        IF NOT EXISTS (SELECT 1 FROM settle.participant p
                        WHERE p.participant_id = _set_limit.counterparty_id AND NOT p.is_operator) THEN
            RAISE EXCEPTION 'counterparty_id "%" does not exist', counterparty_id USING ERRCODE = 'SE040';
        END IF;
    END IF;
    minor := settle._to_minor('amount', amount, currency, true);
    INSERT INTO settle.participant_limit AS l (participant_id, counterparty_id, currency, amount)
        VALUES (who, counterparty_id, currency, minor)
        ON CONFLICT ON CONSTRAINT participant_limit_key
        DO UPDATE SET amount = excluded.amount, updated_at = clock_timestamp()
        WHERE l.amount IS DISTINCT FROM excluded.amount;
    RETURN settle.to_major(minor, currency);
END
$$;

-- The largest net outflow `participant_id` accepts towards counterparty_id
-- in `currency` within a settlement day (major units; 0 stops every net
-- outflow to it, what offsets still settles).  Takes effect at the next cycle.
CREATE OR REPLACE FUNCTION settle_set_bilateral_limit(participant_id text, counterparty_id text, currency text, amount numeric)
RETURNS numeric LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF counterparty_id IS NULL THEN
        RAISE EXCEPTION 'counterparty_id must not be null' USING ERRCODE = 'SE001';
    END IF;
    RETURN settle._set_limit(participant_id, counterparty_id, currency, amount);
END
$$;

-- The largest net outflow towards all participants without a bilateral limit in `currency`.
CREATE OR REPLACE FUNCTION settle_set_multilateral_limit(participant_id text, currency text, amount numeric)
RETURNS numeric LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT settle._set_limit(participant_id, NULL, currency, amount)
$$;

-- Removes a limit (counterparty_id NULL: the multilateral one); true if there was one.
CREATE OR REPLACE FUNCTION settle_remove_limit(participant_id text, counterparty_id text, currency text)
RETURNS boolean LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    who text := settle._control_owner(participant_id);
BEGIN
    PERFORM settle._check_currency('currency', currency);
    DELETE FROM settle.participant_limit l
     WHERE l.participant_id = who AND l.counterparty_id IS NOT DISTINCT FROM settle_remove_limit.counterparty_id
       AND l.currency = settle_remove_limit.currency;
    RETURN FOUND;
END
$$;

-- Reserves `amount` (major units) of account_id's liquidity for payments of
-- priority >= min_priority; standing: every day until changed, else today only.
CREATE OR REPLACE FUNCTION settle_set_reservation(account_id text, amount numeric, min_priority integer,
                                       standing boolean DEFAULT false)
RETURNS numeric LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    acc record;
    minor bigint;
BEGIN
    PERFORM settle._check_name('account_id', account_id);
    SELECT a.participant_id, a.currency INTO acc FROM settle.account a
     WHERE a.account_id = settle_set_reservation.account_id AND a.kind = 'customer';
    IF NOT FOUND THEN
        -- another participant's account is not visible (row-level security): the same refusal
        RAISE EXCEPTION 'account_id "%" does not exist', account_id USING ERRCODE = 'SE030';
    END IF;
    PERFORM settle._control_owner(acc.participant_id);
    IF min_priority IS NULL OR min_priority NOT BETWEEN 2 AND 9 THEN
        RAISE EXCEPTION 'min_priority must be between 2 and 9' USING ERRCODE = 'SE050',
            HINT = 'Payments of priority min_priority and above may use the reserved liquidity.';
    END IF;
    IF standing IS NULL THEN
        RAISE EXCEPTION 'standing must not be null' USING ERRCODE = 'SE001';
    END IF;
    minor := settle._to_minor('amount', amount, acc.currency, true);
    INSERT INTO settle.liquidity_reservation AS r (account_id, valid_on, amount, min_priority)
        VALUES (account_id, CASE WHEN standing THEN NULL ELSE settle._settlement_date() END, minor, min_priority)
        ON CONFLICT ON CONSTRAINT liquidity_reservation_key
        DO UPDATE SET amount = excluded.amount, min_priority = excluded.min_priority, updated_at = clock_timestamp()
        WHERE (r.amount, r.min_priority) IS DISTINCT FROM (excluded.amount, excluded.min_priority);
    RETURN settle.to_major(minor, acc.currency);
END
$$;

-- Removes today's (standing false) or the standing reservation; true if there was one.
CREATE OR REPLACE FUNCTION settle_remove_reservation(account_id text, standing boolean DEFAULT false)
RETURNS boolean LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    owner text;
BEGIN
    PERFORM settle._check_name('account_id', account_id);
    SELECT a.participant_id INTO owner FROM settle.account a
     WHERE a.account_id = settle_remove_reservation.account_id AND a.kind = 'customer';
    IF NOT FOUND THEN
        RAISE EXCEPTION 'account_id "%" does not exist', account_id USING ERRCODE = 'SE030';
    END IF;
    PERFORM settle._control_owner(owner);
    DELETE FROM settle.liquidity_reservation r
     WHERE r.account_id = settle_remove_reservation.account_id
       AND r.valid_on IS NOT DISTINCT FROM CASE WHEN standing THEN NULL ELSE settle._settlement_date() END;
    RETURN FOUND;
END
$$;

-- Each limit with the net outflow already used in the settlement day that
-- starts at day_start (settled payments, and reserved ones of two-phase
-- cycles), minor units: what the
-- cycle reads (src/cycle_controls.c) and the view shows.  A payment counts
-- against the payer's limit in its source currency and, as an inflow, for
-- the payee's limit in its destination currency.
CREATE OR REPLACE FUNCTION settle._limit_positions(day_start timestamptz)
RETURNS TABLE (participant_id text, counterparty_id text, currency text, amount bigint, used bigint)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    WITH l AS (SELECT x.participant_id, x.counterparty_id, x.currency, x.amount FROM settle.participant_limit x),
    owners AS (SELECT DISTINCT l.participant_id FROM l),
    -- today's settled payments and the reserved ones (payment_settled_at, payment_reserved), read once
    today AS (
        SELECT p.source_participant, p.counterparty_id, p.source_currency, p.destination_currency,
               p.amount, p.destination_amount
          FROM settle.payment p
         WHERE p.status = 'settled' AND EXISTS (SELECT 1 FROM owners)
           -- both bounds: the planner, not knowing day_start, then expects a day's rows, not a third of all
           AND p.settled_at >= day_start AND p.settled_at < day_start + interval '1 day'
        UNION ALL
        SELECT p.source_participant, p.counterparty_id, p.source_currency, p.destination_currency,
               p.amount, p.destination_amount
          FROM settle.payment p
         WHERE p.status = 'reserved' AND EXISTS (SELECT 1 FROM owners)),
    f AS (
        SELECT t.source_participant AS owner, t.counterparty_id AS other, t.source_currency AS ccy,
               t.amount::numeric AS net
          FROM today t
         WHERE t.source_participant IN (SELECT o.participant_id FROM owners o)
        UNION ALL
        SELECT t.counterparty_id, t.source_participant, t.destination_currency,
               -coalesce(t.destination_amount, t.amount)::numeric
          FROM today t
         WHERE t.counterparty_id IN (SELECT o.participant_id FROM owners o)),
    -- per owner, counterparty and currency: what each limit's sum below reads
    fa AS MATERIALIZED (SELECT f.owner, f.other, f.ccy, sum(f.net) AS net FROM f GROUP BY 1, 2, 3)
    SELECT l.participant_id, l.counterparty_id, l.currency, l.amount,
           greatest(least(coalesce((
               SELECT sum(f.net) FROM fa f
                WHERE f.owner = l.participant_id AND f.ccy = l.currency
                  AND CASE WHEN l.counterparty_id IS NOT NULL THEN f.other = l.counterparty_id
                           ELSE NOT EXISTS (SELECT 1 FROM l b
                                             WHERE b.participant_id = l.participant_id AND b.currency = l.currency
                                               AND b.counterparty_id = f.other) END), 0),
               999999999999999), -999999999999999)::bigint
      FROM l
$$;

-- The limits as participants read them (their own; operators and auditors
-- all), with today's position: used = net outflow so far today (negative:
-- a net inflow), headroom = what may still flow out net.
CREATE OR REPLACE VIEW settle.participant_limits AS
    SELECT x.participant_id, x.counterparty_id, x.currency,
           CASE WHEN x.counterparty_id IS NULL THEN 'multilateral' ELSE 'bilateral' END AS kind,
           settle.to_major(x.amount, x.currency) AS amount,
           settle.to_major(x.used, x.currency) AS used,
           settle.to_major(x.amount - x.used, x.currency) AS headroom,
           l.updated_at
      FROM settle._limit_positions(settle._settlement_day_start()) x
      JOIN settle.participant_limit l
        ON l.participant_id = x.participant_id AND l.counterparty_id IS NOT DISTINCT FROM x.counterparty_id
       AND l.currency = x.currency;

-- Reservations as participants read them, with whether each applies today.
CREATE OR REPLACE VIEW settle.liquidity_reservations AS
    SELECT r.account_id, a.participant_id, a.currency, r.valid_on, r.valid_on IS NULL AS standing,
           settle.to_major(r.amount, a.currency) AS amount, r.min_priority,
           (r.valid_on IS NOT NULL AND r.valid_on = settle._settlement_date()
            OR (r.valid_on IS NULL AND NOT EXISTS (SELECT 1 FROM settle.liquidity_reservation d
                                                    WHERE d.account_id = r.account_id AND d.valid_on = settle._settlement_date())))
               AS applies_today,
           r.updated_at
      FROM settle.liquidity_reservation r JOIN settle.account a ON a.account_id = r.account_id;
ALTER VIEW settle.participant_limits SET (security_invoker = true);
ALTER VIEW settle.liquidity_reservations SET (security_invoker = true);

-- Rights: a participant's login reads and writes its own controls (row-level
-- security, with check), operators all; auditors read.
ALTER TABLE settle.participant_limit ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_limits ON settle.participant_limit
    USING ((SELECT settle.sees_all()) OR participant_id = (SELECT settle.current_participant()))
    WITH CHECK (pg_has_role(current_user, 'settle_operator', 'MEMBER')
                OR participant_id = (SELECT settle.current_participant()));
ALTER TABLE settle.liquidity_reservation ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_reservations ON settle.liquidity_reservation
    USING ((SELECT settle.sees_all())
           OR EXISTS (SELECT 1 FROM settle.account a WHERE a.account_id = liquidity_reservation.account_id
                        AND a.participant_id = (SELECT settle.current_participant())))
    WITH CHECK (pg_has_role(current_user, 'settle_operator', 'MEMBER')
                OR EXISTS (SELECT 1 FROM settle.account a WHERE a.account_id = liquidity_reservation.account_id
                             AND a.kind = 'customer'
                             AND a.participant_id = (SELECT settle.current_participant())));
REVOKE ALL ON settle.participant_limit, settle.liquidity_reservation,
    settle.participant_limits, settle.liquidity_reservations FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE, DELETE ON settle.participant_limit, settle.liquidity_reservation
    TO settle_submitter, settle_operator;
GRANT SELECT ON settle.participant_limit, settle.liquidity_reservation,
    settle.participant_limits, settle.liquidity_reservations TO settle_submitter, settle_operator, settle_auditor;
REVOKE ALL ON FUNCTION settle._settlement_date(), settle._settlement_day_start() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION settle._settlement_date(), settle._settlement_day_start()
    TO settle_submitter, settle_operator, settle_auditor;
REVOKE ALL ON FUNCTION settle._control_changed(), settle._control_changing(), settle._control_owner(text),
    settle._set_limit(text, text, text, numeric), settle._limit_positions(timestamptz),
    @extschema@.settle_set_bilateral_limit(text, text, text, numeric),
    @extschema@.settle_set_multilateral_limit(text, text, numeric),
    @extschema@.settle_remove_limit(text, text, text),
    @extschema@.settle_set_reservation(text, numeric, integer, boolean),
    @extschema@.settle_remove_reservation(text, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION settle._control_changing(), settle._control_owner(text), settle._set_limit(text, text, text, numeric),
    @extschema@.settle_set_bilateral_limit(text, text, text, numeric),
    @extschema@.settle_set_multilateral_limit(text, text, numeric),
    @extschema@.settle_remove_limit(text, text, text),
    @extschema@.settle_set_reservation(text, numeric, integer, boolean),
    @extschema@.settle_remove_reservation(text, boolean)
    TO settle_submitter, settle_operator;
GRANT EXECUTE ON FUNCTION settle._limit_positions(timestamptz) TO settle_submitter, settle_operator, settle_auditor;
GRANT EXECUTE ON FUNCTION settle._to_minor(text, numeric, text, boolean), settle._check_name(text, text),
    settle._check_currency(text, text)
    TO settle_submitter;

COMMENT ON FUNCTION @extschema@.settle_set_bilateral_limit(text, text, text, numeric) IS
    'Set the largest net outflow a participant accepts towards one counterparty in a currency within a settlement day; the optimiser settles within it from the next cycle (a participant for itself, operators for any)';
COMMENT ON FUNCTION @extschema@.settle_set_multilateral_limit(text, text, numeric) IS
    'Set the largest net outflow a participant accepts towards all participants it has no bilateral limit with, in a currency, within a settlement day (a participant for itself, operators for any)';
COMMENT ON FUNCTION @extschema@.settle_remove_limit(text, text, text) IS
    'Remove a bilateral limit, or the multilateral one (counterparty NULL); true if there was one';
COMMENT ON FUNCTION @extschema@.settle_set_reservation(text, numeric, integer, boolean) IS
    'Reserve part of an account''s liquidity for payments of priority min_priority and above, today only or standing (a participant for its own accounts, operators for any)';
COMMENT ON FUNCTION @extschema@.settle_remove_reservation(text, boolean) IS
    'Remove today''s reservation of an account (or the standing one); true if there was one';
COMMENT ON VIEW settle.participant_limits IS
    'settle: bilateral and multilateral limits with what today''s settled payments used of them (own rows for participants)';
COMMENT ON COLUMN settle.participant_limits.participant_id IS 'the participant whose outflow is limited';
COMMENT ON COLUMN settle.participant_limits.counterparty_id IS 'the counterparty of a bilateral limit; NULL for the multilateral limit';
COMMENT ON COLUMN settle.participant_limits.currency IS 'currency of the limit: payments out of and into accounts in it count';
COMMENT ON COLUMN settle.participant_limits.kind IS 'bilateral or multilateral';
COMMENT ON COLUMN settle.participant_limits.amount IS 'the largest net outflow accepted within a settlement day';
COMMENT ON COLUMN settle.participant_limits.used IS 'net outflow so far today (settled and reserved payments out less those in); negative: a net inflow';
COMMENT ON COLUMN settle.participant_limits.headroom IS 'amount - used: what may still flow out net today';
COMMENT ON COLUMN settle.participant_limits.updated_at IS 'when the limit was last set';
COMMENT ON VIEW settle.liquidity_reservations IS
    'settle: liquidity reserved on accounts for urgent payments (own accounts for participants)';
COMMENT ON COLUMN settle.liquidity_reservations.account_id IS 'the account';
COMMENT ON COLUMN settle.liquidity_reservations.participant_id IS 'its owner';
COMMENT ON COLUMN settle.liquidity_reservations.currency IS 'its currency';
COMMENT ON COLUMN settle.liquidity_reservations.valid_on IS 'the one day it applies; NULL for a standing reservation';
COMMENT ON COLUMN settle.liquidity_reservations.standing IS 'true: applies every day that has no reservation of its own';
COMMENT ON COLUMN settle.liquidity_reservations.amount IS 'reserved liquidity: only payments of min_priority and above may use it';
COMMENT ON COLUMN settle.liquidity_reservations.min_priority IS 'the lowest priority (2 to 9) that may use the reserved part';
COMMENT ON COLUMN settle.liquidity_reservations.applies_today IS 'whether the cycle applies it today';
COMMENT ON COLUMN settle.liquidity_reservations.updated_at IS 'when it was last set';

-- ------------------------------------------------------------------------
-- Early warnings (issue #33,
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
            FROM settle._limit_positions(settle._settlement_day_start()) x
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

-- Replay (docs/AUDIT.md, docs/PARTICIPANT_CONTROLS.md): every change of a
-- control is an event, so the controls in effect are rebuilt from the event
-- log alone and compared with the tables, like statuses and balances.
-- What one event says: the key of the control it changed and its value
-- then (NULL: removed); no row for another event.  Keys: a participant's
-- 'limit CCY' (multilateral), 'limit CCY COUNTERPARTY', 'alert CCY KIND'; an
-- account's 'reservation YYYY-MM-DD' or 'reservation standing'; a payment's
-- 'queue_priority' and 'queued_since' (UTC, microseconds).  Also what
-- settle_archive() carries for these events (48_archive.sql).
CREATE OR REPLACE FUNCTION settle._control_state(entity text, event_type text, details jsonb)
RETURNS TABLE (field text, value text)
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT f.field, f.value
      FROM (SELECT CASE
                       WHEN entity = 'participant' AND event_type IN ('bilateral_limit_set', 'bilateral_limit_removed',
                                                                      'multilateral_limit_set', 'multilateral_limit_removed')
                           THEN 'limit ' || (details->>'currency') || coalesce(' ' || (details->>'counterparty_id'), '')
                       WHEN entity = 'participant' AND event_type IN ('alert_set', 'alert_removed')
                           THEN 'alert ' || (details->>'currency') || ' ' || (details->>'kind')
                       WHEN entity = 'account' AND event_type IN ('reservation_set', 'reservation_removed')
                           THEN 'reservation ' || coalesce(details->>'valid_on', 'standing')
                       WHEN entity = 'payment' AND event_type = 'priority_changed' THEN 'queue_priority'
                       WHEN entity = 'payment' AND event_type = 'moved' THEN 'queued_since'
                   END AS field,
                   CASE
                       WHEN event_type IN ('bilateral_limit_set', 'multilateral_limit_set') THEN details->>'amount'
                       WHEN event_type = 'alert_set' THEN details->>'threshold'
                       WHEN event_type = 'reservation_set'
                           THEN (details->>'amount') || ' from priority ' || (details->>'min_priority')
                       WHEN event_type = 'priority_changed' THEN details->>'to'
                       WHEN event_type = 'moved'
                           THEN to_char((details->>'queued_since')::timestamptz AT TIME ZONE 'UTC',
                                        'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
                   END AS value) f
     WHERE f.field IS NOT NULL
$$;

-- The controls replayed (the last event of each key, or what the latest
-- archive carried) against the tables.
CREATE OR REPLACE FUNCTION settle._replay_controls()
RETURNS TABLE (entity text, entity_id text, field text, replayed text, current text)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    WITH replayed AS (
        SELECT DISTINCT ON (x.entity, x.entity_id, x.field) x.entity, x.entity_id, x.field, x.value
          FROM (SELECT e.entity, e.entity_id, c.field, c.value, e.event_id AS ord
                  FROM settle.event e, settle._control_state(e.entity, e.event_type, e.details) c
                 WHERE e.event_type IN ('bilateral_limit_set', 'bilateral_limit_removed', 'multilateral_limit_set',
                                        'multilateral_limit_removed', 'alert_set', 'alert_removed', 'reservation_set',
                                        'reservation_removed', 'priority_changed', 'moved')
                UNION ALL
                SELECT a.entity, a.entity_id, a.field, a.value, a.archive_id - 9000000000000000000
                  FROM settle.archive_state a
                 WHERE (a.entity = 'participant' AND (a.field LIKE 'limit %' OR a.field LIKE 'alert %'))
                    OR (a.entity = 'account' AND a.field LIKE 'reservation %')
                    OR (a.entity = 'payment' AND a.field IN ('queue_priority', 'queued_since'))) x
         ORDER BY x.entity, x.entity_id, x.field, x.ord DESC),
    cur AS (
        SELECT 'participant' AS entity, l.participant_id AS entity_id,
               'limit ' || l.currency || coalesce(' ' || l.counterparty_id, '') AS field, l.amount::text AS value
          FROM settle.participant_limit l
        UNION ALL
        SELECT 'participant', a.participant_id, 'alert ' || a.currency || ' ' || a.kind, a.threshold::text
          FROM settle.participant_alert a
        UNION ALL
        SELECT 'account', r.account_id, 'reservation ' || coalesce(to_char(r.valid_on, 'YYYY-MM-DD'), 'standing'),
               r.amount || ' from priority ' || r.min_priority
          FROM settle.liquidity_reservation r
        UNION ALL
        SELECT 'payment', p.payment_id::text, 'queue_priority', p.queue_priority::text
          FROM settle.payment p WHERE p.queue_priority IS NOT NULL
        UNION ALL
        SELECT 'payment', p.payment_id::text, 'queued_since',
               to_char(p.queued_since AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
          FROM settle.payment p WHERE p.queued_since IS NOT NULL)
    SELECT coalesce(r.entity, c.entity), coalesce(r.entity_id, c.entity_id), coalesce(r.field, c.field),
           r.value, c.value
      FROM replayed r FULL JOIN cur c ON c.entity = r.entity AND c.entity_id = r.entity_id AND c.field = r.field
     WHERE r.value IS NOT NULL OR c.value IS NOT NULL
$$;

-- settle_replay(): 50_audit.sql's settle._replay_state() and the controls
-- (docs/AUDIT.md, "Does the state agree with the event log?").
CREATE OR REPLACE FUNCTION settle_replay(only_differences boolean DEFAULT true)
RETURNS TABLE (entity text, entity_id text, field text, replayed text, current text, equal boolean)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT x.*
      FROM (SELECT * FROM settle._replay_state(only_differences)
            UNION ALL
            SELECT c.entity, c.entity_id, c.field, c.replayed, c.current, c.replayed IS NOT DISTINCT FROM c.current
              FROM settle._replay_controls() c
             WHERE NOT only_differences OR c.replayed IS DISTINCT FROM c.current) x
     ORDER BY 1, 2, 3
$$;
