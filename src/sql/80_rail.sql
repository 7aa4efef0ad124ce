-- settle install script, part 8: the executor -- two-phase settlement with
-- the external rail, and the calendar jobs.
--
-- With settle.two_phase on, a cycle does not post: it *reserves*.  The
-- chosen payments' legs are written to settle.reservation, and each
-- account's net in the cycle is counted in its pending_debit (a net debit,
-- which counts against the limit) or pending_credit (a net credit, not yet
-- available): the cycle posts or voids as a whole, so within it a credit
-- offsets a debit, as in the solver's limit rule and in direct mode.  Each batch is a wire:
--   net < 0  pay-in   the participant owes the operator: instructed first;
--   net > 0  pay-out  the operator owes the participant: instructed once every
--                     pay-in of the cycle is confirmed;
--   net = 0  none     nothing to move.
-- When every pay-in of a cycle is confirmed, the whole cycle is posted (the
-- reservations become ledger entries in one journal) and its pay-outs are
-- released for instruction.  A pay-in that fails for good voids the cycle:
-- reservations released, the defaulting participant's payments failed, the
-- others back in the queue for the next cycle.  A pay-out that fails for
-- good returns the payments into it to their payers, up to its net
-- (82_returns.sql); what cannot be returned stays posted and the batch is
-- marked failed for an operator.  Nothing is ever updated or deleted in the
-- ledger.  docs/SETTLEMENT_FLOW.md draws the state machines.

-- Reserved legs of two-phase cycles: what will be posted on confirmation.
CREATE TABLE settle.reservation (
    reservation_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    cycle_id        bigint NOT NULL,
    batch_id        bigint NOT NULL,
    payment_id      bigint,
    account_id      text NOT NULL,
    currency        text NOT NULL,
    amount          bigint NOT NULL CHECK (amount <> 0),
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp()
);
SELECT pg_catalog.pg_extension_config_dump('settle.reservation', '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('settle.reservation', 'reservation_id'), '');
CREATE INDEX reservation_cycle ON settle.reservation (cycle_id);
CREATE INDEX reservation_batch ON settle.reservation (batch_id);
CREATE TRIGGER reservation_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON settle.reservation
    FOR EACH STATEMENT EXECUTE FUNCTION settle._refuse_change();

-- A payment's outcome, once final, never changes (issue #16, item 11):
-- expired, failed and returned stay so; settled stays settled, except that a
-- return (82_returns.sql, a new journal) makes it returned, and nothing
-- else does.  Whatever the path (a retry, a cycle, a late or racing
-- acknowledgement, a bug), the row refuses any other change.
-- The WHEN clause keeps the per-row cost of a cycle's UPDATE to an
-- expression: the function runs only to refuse.
CREATE OR REPLACE FUNCTION settle._refuse_outcome_change() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RAISE EXCEPTION 'payment % is %: its outcome cannot change', OLD.payment_id, OLD.status
        USING ERRCODE = 'SE113', DETAIL = format('Refused change to %s.', NEW.status),
              HINT = 'A final outcome is corrected by a new payment, never by changing this one.';
END
$$;
CREATE TRIGGER payment_outcome_final BEFORE UPDATE OF status ON settle.payment
    FOR EACH ROW
    WHEN (NEW.status IS DISTINCT FROM OLD.status
          AND ((OLD.status IN ('settled', 'expired', 'failed', 'returned')
                AND NOT (OLD.status = 'settled' AND NEW.status = 'returned'))
               OR (NEW.status = 'returned' AND OLD.status <> 'settled')))
    EXECUTE FUNCTION settle._refuse_outcome_change();

-- End-of-day balance snapshots (append-only).
CREATE TABLE settle.balance_snapshot (
    snapshot_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    business_date   date NOT NULL,
    taken_at        timestamptz NOT NULL,
    account_id      text NOT NULL,
    currency        text NOT NULL,
    balance         bigint NOT NULL,
    pending_debit   bigint NOT NULL,
    pending_credit  bigint NOT NULL,
    CONSTRAINT balance_snapshot_day UNIQUE (business_date, account_id)
);
SELECT pg_catalog.pg_extension_config_dump('settle.balance_snapshot', '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('settle.balance_snapshot', 'snapshot_id'), '');
CREATE TRIGGER balance_snapshot_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON settle.balance_snapshot
    FOR EACH STATEMENT EXECUTE FUNCTION settle._refuse_change();

-- Records a batch's state change as an event.
CREATE OR REPLACE FUNCTION settle._batch_event(b settle.batch, new_status text, details jsonb DEFAULT NULL)
RETURNS void LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    INSERT INTO settle.event (entity, entity_id, event_type, from_status, to_status, details)
    VALUES ('batch', b.batch_id::text, new_status, b.status, new_status,
            coalesce(details, '{}'::jsonb) || jsonb_build_object('cycle_id', b.cycle_id, 'attempts', b.attempts))
$$;

-- What a two-phase cycle reserved on each account: total, every reserved
-- amount (what posting adds to the balance); legs, the net of its payments'
-- legs, which the cycle counted in pending_debit (< 0) or pending_credit
-- (> 0): a participant pays in its net, as the solver's limit rule has it.
CREATE OR REPLACE FUNCTION settle._reserved_nets(p_cycle_id bigint)
RETURNS TABLE (account_id text, total bigint, legs bigint)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT r.account_id, sum(r.amount)::bigint,
           coalesce(sum(r.amount) FILTER (WHERE r.payment_id IS NOT NULL), 0)::bigint
      FROM settle.reservation r WHERE r.cycle_id = p_cycle_id GROUP BY r.account_id
$$;

-- Posts a two-phase cycle once every pay-in is confirmed: reservations become one journal.
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

-- Voids a two-phase cycle whose pay-in failed for good: nothing was posted,
-- reservations are released, the defaulter's payments fail, the others queue again.
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

-- A confirmed pay-in of a cycle that is then voided: the participant wired
-- the money and the operator holds it, but the cycle that needed it will not
-- post.  It becomes the participant's funding: one balanced journal (kind
-- funding) from the operator's external account of the currency to the
-- account of the participant that the batch debited most (its only one in
-- that currency, usually), an account 'funded' event that carries the
-- postings (replay), and the batch 'retained' with its journal.  The
-- participant's requeued payments are then settled by a later cycle like
-- any other, against a balance that includes this funding.
CREATE OR REPLACE FUNCTION settle._retain_pay_in(b settle.batch) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    acc text;
    amount bigint := -b.net_amount;
    ext text := settle._operator_account('external', b.currency);
    ref text := format('pay-in batch %s of voided cycle %s', b.batch_id, b.cycle_id);
    jid bigint;
BEGIN
    SELECT r.account_id INTO acc FROM settle.reservation r
     WHERE r.batch_id = b.batch_id AND r.payment_id IS NOT NULL
     GROUP BY r.account_id ORDER BY sum(r.amount), r.account_id LIMIT 1;
    INSERT INTO settle.journal (kind, cycle_id, reference) VALUES ('funding', NULL, ref) RETURNING journal_id INTO jid;
    INSERT INTO settle.ledger_entry (journal_id, account_id, currency, amount)
        VALUES (jid, ext, b.currency, -amount), (jid, acc, b.currency, amount);
    UPDATE settle.account a SET balance = a.balance - amount, updated_at = clock_timestamp() WHERE a.account_id = ext;
    UPDATE settle.account a SET balance = a.balance + amount, updated_at = clock_timestamp() WHERE a.account_id = acc;
    INSERT INTO settle.event (entity, entity_id, event_type, details)
        VALUES ('account', acc, 'funded',
                jsonb_build_object('journal_id', jid, 'amount', amount, 'reference', ref, 'batch_id', b.batch_id,
                                   'cycle_id', b.cycle_id,
                                   'postings', jsonb_build_array(
                                       jsonb_build_object('account', ext, 'currency', b.currency, 'amount', -amount),
                                       jsonb_build_object('account', acc, 'currency', b.currency, 'amount', amount))));
    PERFORM settle._batch_event(b, 'retained',
                                jsonb_build_object('journal_id', jid, 'account', acc, 'amount', amount,
                                                   'reason', 'its cycle was voided after this pay-in was confirmed'));
    UPDATE settle.batch x SET status = 'retained', updated_at = clock_timestamp() WHERE x.batch_id = b.batch_id;
    RETURN jid;
END
$$;

-- The rail takes up to max_batches instructions that are due: pay-ins first.
CREATE OR REPLACE FUNCTION settle_rail_fetch(max_batches integer DEFAULT 100)
RETURNS TABLE (batch_id bigint, cycle_id bigint, participant_id text, currency text,
               direction text, amount numeric, attempt integer)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    b settle.batch;
BEGIN
    PERFORM settle._check_fence('handing batches to the rail');
    PERFORM settle._check_sync_standby('handing batches to the rail');
    FOR b IN SELECT * FROM settle.batch x
              WHERE x.status = 'pending' AND x.next_attempt_at <= clock_timestamp()
              ORDER BY (x.direction = 'pay_out'), x.next_attempt_at, x.batch_id
              LIMIT max_batches
                FOR UPDATE SKIP LOCKED LOOP
        PERFORM settle._batch_event(b, 'instructed');
        UPDATE settle.batch x SET status = 'instructed', attempts = x.attempts + 1,
               instructed_at = clock_timestamp(), updated_at = clock_timestamp()
         WHERE x.batch_id = b.batch_id;
        batch_id := b.batch_id;
        cycle_id := b.cycle_id;
        participant_id := b.participant_id;
        currency := b.currency;
        direction := b.direction;
        amount := settle.to_major(abs(b.net_amount), b.currency);
        attempt := b.attempts + 1;
        RETURN NEXT;
    END LOOP;
    -- the rows leave when the function returns: not before the batches (and the
    -- cycle that made them) are on the synchronous standby
    PERFORM settle._wait_durable('the batches handed to the rail');
END
$$;

-- Locks an instructed batch for an acknowledgement; refuses unknown and final ones.
-- The acknowledgements of one cycle take its row lock first, one at a time:
-- two pay-ins confirmed at once would otherwise each miss the other's
-- confirmation and the cycle would never post, and a confirmation racing a
-- final failure would see the cycle half voided.
CREATE OR REPLACE FUNCTION settle._ack_lock(p_batch_id bigint) RETURNS settle.batch
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    b settle.batch;
BEGIN
    PERFORM 1 FROM settle.cycle c
     WHERE c.cycle_id = (SELECT x.cycle_id FROM settle.batch x WHERE x.batch_id = p_batch_id)
       FOR UPDATE;
    -- a new statement: it sees what the acknowledgement we waited for committed
    SELECT * INTO b FROM settle.batch WHERE batch_id = p_batch_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'batch % does not exist', p_batch_id USING ERRCODE = 'SE120';
    ELSIF b.status <> 'instructed' THEN
        RAISE EXCEPTION 'batch % is not awaiting an acknowledgement', p_batch_id
            USING ERRCODE = 'SE121', DETAIL = format('Its status is %s.', b.status),
                  HINT = 'Only an instructed batch can be confirmed or failed, once.';
    END IF;
    RETURN b;
END
$$;

-- The rail confirms a wire.
CREATE OR REPLACE FUNCTION settle_rail_confirm(batch_id bigint, rail_reference text DEFAULT NULL)
RETURNS text LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    b settle.batch := settle._ack_lock(batch_id);
BEGIN
    PERFORM settle._check_fence('a rail acknowledgement');
    PERFORM settle._check_sync_standby('a rail acknowledgement');
    PERFORM settle._batch_event(b, 'confirmed', jsonb_build_object('rail_reference', rail_reference));
    UPDATE settle.batch x SET status = 'confirmed', rail_reference = settle_rail_confirm.rail_reference,
           last_error = NULL, updated_at = clock_timestamp()
     WHERE x.batch_id = b.batch_id;
    -- the last pay-in of a cycle posts it
    IF b.direction = 'pay_in' AND NOT EXISTS (
           SELECT 1 FROM settle.batch x
            WHERE x.cycle_id = b.cycle_id AND x.direction = 'pay_in' AND x.status <> 'confirmed') THEN
        PERFORM settle._post_cycle(b.cycle_id);
    END IF;
    RETURN 'confirmed';
END
$$;

-- The rail reports a failed attempt; retried with exponential backoff until
-- settle.rail_max_attempts, then final.
CREATE OR REPLACE FUNCTION settle_rail_fail(batch_id bigint, reason text, retryable boolean DEFAULT true)
RETURNS text LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    b settle.batch := settle._ack_lock(batch_id);
    max_attempts int := current_setting('settle.rail_max_attempts')::int;
    backoff interval := current_setting('settle.rail_backoff')::interval;
BEGIN
    PERFORM settle._check_fence('a rail acknowledgement');
    PERFORM settle._check_sync_standby('a rail acknowledgement');
    IF retryable AND b.attempts < max_attempts THEN
        PERFORM settle._batch_event(b, 'pending', jsonb_build_object('error', reason, 'retry', true));
        UPDATE settle.batch x SET status = 'pending', last_error = reason, updated_at = clock_timestamp(),
               next_attempt_at = clock_timestamp() + backoff * power(2, b.attempts - 1)
         WHERE x.batch_id = b.batch_id;
        RETURN 'retry';
    END IF;
    IF b.direction = 'pay_out' THEN
        -- already posted: the payments into it go back to their payers, up to
        -- its net (82_returns.sql); what is left, an operator resolves
        IF settle._return_pay_out(b, reason) = b.net_amount THEN
            RETURN 'returned';
        END IF;
        RETURN 'failed';
    END IF;
    PERFORM settle._void_cycle(b.cycle_id, b.participant_id, reason);
    RETURN 'voided';
END
$$;

-- Instructions without an answer within settle.rail_timeout count as failed attempts.
CREATE OR REPLACE FUNCTION settle_rail_expire() RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    id bigint;
    n int := 0;
BEGIN
    PERFORM settle._check_fence('the rail time-out job');
    PERFORM settle._check_sync_standby('the rail time-out job');
    FOR id IN SELECT x.batch_id FROM settle.batch x
               WHERE x.status = 'instructed'
                 AND x.instructed_at < clock_timestamp() - current_setting('settle.rail_timeout')::interval
               ORDER BY x.batch_id LOOP
        -- an earlier one in this loop may have voided its whole cycle
        IF (SELECT x.status FROM settle.batch x WHERE x.batch_id = id FOR UPDATE) = 'instructed' THEN
            PERFORM @extschema@.settle_rail_fail(id, 'timed out waiting for the rail', true);
            n := n + 1;
        END IF;
    END LOOP;
    RETURN n;
END
$$;

-- End of day: one balance snapshot per account for the business date, and
-- an event; run again the same day, it adds nothing.
CREATE OR REPLACE FUNCTION settle_end_of_day(business_date date DEFAULT current_date)
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n int;
BEGIN
    PERFORM settle._check_fence('the end-of-day job');
    PERFORM settle._check_sync_standby('the end-of-day job');
    INSERT INTO settle.balance_snapshot (business_date, taken_at, account_id, currency, balance, pending_debit, pending_credit)
        SELECT settle_end_of_day.business_date, clock_timestamp(), a.account_id, a.currency,
               a.balance, a.pending_debit, a.pending_credit
          FROM settle.account a
        ON CONFLICT ON CONSTRAINT balance_snapshot_day DO NOTHING;
    GET DIAGNOSTICS n = ROW_COUNT;
    INSERT INTO settle.event (entity, entity_id, event_type, details)
        VALUES ('cycle', 'eod-' || business_date, 'end_of_day', jsonb_build_object('accounts', n));
    -- mappings of logins dropped while this database was not the one in use
    PERFORM settle.forget_dropped_roles();
    RETURN n;
END
$$;

-- Retention: idempotency keys of payments that ended more than keep ago are
-- released, so the key space does not grow without bound; a client retrying
-- with such a key later creates a new payment (documented window).  The
-- transaction_id stays unique forever.
CREATE OR REPLACE FUNCTION settle_purge_idempotency_keys(keep interval DEFAULT '30 days')
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n int;
BEGIN
    PERFORM settle._check_fence('the key retention job');
    PERFORM settle._check_sync_standby('the key retention job');
    WITH p AS (
        UPDATE settle.payment x SET idempotency_key = '~expired:' || x.payment_id
         WHERE x.status IN ('settled', 'expired', 'failed', 'returned') AND x.updated_at < clock_timestamp() - keep
           AND x.idempotency_key NOT LIKE '~expired:%'
        RETURNING x.payment_id)
    SELECT count(*) INTO n FROM p;
    INSERT INTO settle.event (entity, entity_id, event_type, details)
        VALUES ('cycle', 'retention', 'keys_released', jsonb_build_object('payments', n, 'keep', keep));
    RETURN n;
END
$$;

-- pg_cron schedules (call once, where pg_cron is installed).
CREATE OR REPLACE FUNCTION settle_schedule_jobs(end_of_day text DEFAULT '5 0 * * *',
                                     retention text DEFAULT '30 1 * * *',
                                     rail_timeouts text DEFAULT '* * * * *',
                                     liquidity_forecast text DEFAULT '10 0 * * *')
RETURNS SETOF bigint LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_cron') THEN
        RAISE EXCEPTION 'pg_cron is not installed in this database' USING ERRCODE = 'SE130',
            HINT = 'Add pg_cron to shared_preload_libraries and run CREATE EXTENSION pg_cron.';
    END IF;
    RETURN NEXT cron.schedule('settle-end-of-day', end_of_day, format('SELECT %I.settle_end_of_day()', '@extschema@'));
    RETURN NEXT cron.schedule('settle-retention', retention, format('SELECT %I.settle_purge_idempotency_keys()', '@extschema@'));
    RETURN NEXT cron.schedule('settle-rail-timeouts', rail_timeouts, format('SELECT %I.settle_rail_expire()', '@extschema@'));
    -- the day's liquidity forecasts (86_liquidity.sql), read by the metrics and the alert
    RETURN NEXT cron.schedule('settle-liquidity-forecast', liquidity_forecast,
                              format('SELECT %I.settle_refresh_liquidity_forecast()', '@extschema@'));
END
$$;
