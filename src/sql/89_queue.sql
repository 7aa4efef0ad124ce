-- settle install script, part 8.9: queue management by the payer (issue
-- #33, docs/PARTICIPANT_CONTROLS.md "Your queue"): change the priority of a
-- queued payment, move it to the front or the back of its priority class,
-- revoke it.  Refused once the payment is in a cycle (its row locked by the
-- cycle: SE183) or no longer queued (SE182).  Every change is an event.
--
-- Who may: the payer's login for its own payments, operators for any.  The
-- caller is told apart with its own rights by src/queue_control.c, which
-- then runs settle._queue_apply() as the tables' owner; nobody else may
-- execute that one.

-- The columns (00_schema.sql): queued_since, the moment the queue order of
-- a moved payment counts from (the cycle's priority aging reads it), and
-- queue_priority, the priority its payer set since it was submitted.

CREATE OR REPLACE FUNCTION settle._queue_change(payment_id bigint, action text, arg text)
RETURNS text AS 'MODULE_PATHNAME', 'settle_queue_change_sql' LANGUAGE C;

-- payer: the participant the caller acts for, NULL for an operator.
CREATE OR REPLACE FUNCTION settle._queue_apply(p_id bigint, action text, arg text, payer text, by_role text)
RETURNS text LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    p settle.payment;
    new_priority integer;
    since timestamptz;
BEGIN
    IF p_id IS NULL OR action IS NULL THEN
        RAISE EXCEPTION 'payment_id must not be null' USING ERRCODE = 'SE001';
    END IF;
    BEGIN
        SELECT * INTO p FROM settle.payment x WHERE x.payment_id = p_id FOR UPDATE NOWAIT;
    EXCEPTION WHEN lock_not_available THEN
        RAISE EXCEPTION 'payment % is in a settlement cycle', p_id USING ERRCODE = 'SE183',
            HINT = 'A cycle is settling it now: see its status once the cycle has ended.';
    END;
    -- another payer's payment: the same refusal as one that does not exist
    IF NOT FOUND OR (payer IS NOT NULL AND p.source_participant <> payer) THEN
        RAISE EXCEPTION 'payment % does not exist', p_id USING ERRCODE = 'SE103';
    END IF;
    IF p.status <> 'queued' THEN
        RAISE EXCEPTION 'payment % is not queued', p_id USING ERRCODE = 'SE182',
            DETAIL = format('Its status is %s.', p.status),
            HINT = 'Only a queued payment can be changed by its payer.';
    END IF;
    IF action = 'priority' THEN
        new_priority := arg::integer;
        IF new_priority IS NULL OR new_priority NOT BETWEEN 1 AND 9 THEN
            RAISE EXCEPTION 'priority must be between 1 and 9' USING ERRCODE = 'SE050';
        END IF;
        UPDATE settle.payment x SET queue_priority = new_priority, updated_at = clock_timestamp()
         WHERE x.payment_id = p_id;
        INSERT INTO settle.event (entity, entity_id, event_type, from_status, to_status, details)
            VALUES ('payment', p_id::text, 'priority_changed', 'queued', 'queued',
                    jsonb_build_object('from', coalesce(p.queue_priority, p.priority), 'to', new_priority,
                                       'by', by_role));
        RETURN new_priority::text;
    ELSIF action = 'move' THEN
        IF arg IS NULL OR arg NOT IN ('front', 'back') THEN
            RAISE EXCEPTION 'position must be front or back' USING ERRCODE = 'SE184';
        END IF;
        IF arg = 'front' THEN
            -- just before the oldest queued payment of the payer in its class
            SELECT least(min(coalesce(x.queued_since, x.created_at)), coalesce(p.queued_since, p.created_at))
                   - interval '1 millisecond'
              INTO since
              FROM settle.payment x
             WHERE x.status = 'queued' AND x.source_participant = p.source_participant
               AND coalesce(x.queue_priority, x.priority) = coalesce(p.queue_priority, p.priority)
               AND x.payment_id <> p_id;
            since := coalesce(since, coalesce(p.queued_since, p.created_at) - interval '1 millisecond');
        ELSE
            since := clock_timestamp();
        END IF;
        UPDATE settle.payment x SET queued_since = since, updated_at = clock_timestamp()
         WHERE x.payment_id = p_id;
        INSERT INTO settle.event (entity, entity_id, event_type, from_status, to_status, details)
            VALUES ('payment', p_id::text, 'moved', 'queued', 'queued',
                    jsonb_build_object('to', arg, 'queued_since', since, 'by', by_role));
        RETURN arg;
    ELSIF action = 'revoke' THEN
        IF arg IS NULL OR btrim(arg) = '' THEN
            RAISE EXCEPTION 'reason must not be empty' USING ERRCODE = 'SE001';
        END IF;
        UPDATE settle.payment x SET status = 'failed', updated_at = clock_timestamp()
         WHERE x.payment_id = p_id;
        INSERT INTO settle.event (entity, entity_id, event_type, from_status, to_status, details)
            VALUES ('payment', p_id::text, 'revoked', 'queued', 'failed',
                    jsonb_build_object('reason', arg, 'by', by_role));
        RETURN 'failed';
    END IF;
    RAISE EXCEPTION 'unknown queue action %', action USING ERRCODE = '22023';
END
$$;

CREATE OR REPLACE FUNCTION settle_change_priority(payment_id bigint, priority integer)
RETURNS integer LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT settle._queue_change(payment_id, 'priority', priority::text)::integer
$$;
CREATE OR REPLACE FUNCTION settle_move_payment(payment_id bigint, to_position text)
RETURNS text LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT settle._queue_change(payment_id, 'move', to_position)
$$;
CREATE OR REPLACE FUNCTION settle_revoke_payment(payment_id bigint, reason text)
RETURNS text LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT settle._queue_change(payment_id, 'revoke', reason)
$$;

COMMENT ON FUNCTION @extschema@.settle_change_priority(bigint, integer) IS
    'Change the priority (1-9) of a queued payment, before a cycle takes it (its payer, operators)';
COMMENT ON FUNCTION @extschema@.settle_move_payment(bigint, text) IS
    'Move a queued payment to the front or the back of its payer''s priority class: the age its priority aging counts from (its payer, operators)';
COMMENT ON FUNCTION @extschema@.settle_revoke_payment(bigint, text) IS
    'Revoke a queued payment with a reason, before a cycle takes it: it fails for good (its payer, operators)';

REVOKE ALL ON FUNCTION settle._queue_change(bigint, text, text),
    settle._queue_apply(bigint, text, text, text, text),
    @extschema@.settle_change_priority(bigint, integer), @extschema@.settle_move_payment(bigint, text),
    @extschema@.settle_revoke_payment(bigint, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION settle._queue_change(bigint, text, text),
    @extschema@.settle_change_priority(bigint, integer), @extschema@.settle_move_payment(bigint, text),
    @extschema@.settle_revoke_payment(bigint, text)
    TO settle_submitter, settle_operator;
