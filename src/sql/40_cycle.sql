-- settle install script, part 4: the settlement engine (cycles, batches).
-- A cycle takes the queue, chooses what to settle with GLPK (src/solver.c),
-- posts it as one balanced journal, and records itself with its baselines.

-- What a settled payment posted, as its event carries it: the debit on the
-- payer's account, the credit on the payee's.  Every event that posts to the
-- ledger carries such a "postings" array (docs/AUDIT.md), so that
-- settle_replay() rebuilds balances from the event log alone.
CREATE OR REPLACE FUNCTION settle._payment_postings(source_account text, source_currency text, amount bigint,
                                         destination_account text, destination_currency text,
                                         destination_amount bigint)
-- Inlined into the posting statements (a call per payment was 7% of a
-- cycle): so no SET clause (names are qualified instead), and STABLE like
-- jsonb_build_object, since an IMMUTABLE function with a STABLE body is
-- never inlined.
RETURNS jsonb LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT pg_catalog.jsonb_build_array(
        pg_catalog.jsonb_build_object('account', source_account, 'currency', source_currency,
                                      'amount', OPERATOR(pg_catalog.-) amount),
        pg_catalog.jsonb_build_object('account', destination_account, 'currency', destination_currency,
                                      'amount', destination_amount))
$$;

-- One row per cycle, written once when the cycle commits.
-- Values and costs are in the reference currency (settle.reference_currency),
-- major units; they are measurements for operators, the postings are exact.
CREATE SEQUENCE settle.cycle_id_seq;
SELECT pg_catalog.pg_extension_config_dump('settle.cycle_id_seq', '');
CREATE TABLE settle.cycle (
    cycle_id            bigint PRIMARY KEY,
    started_at          timestamptz NOT NULL,
    finished_at         timestamptz NOT NULL,
    run_by              text NOT NULL CHECK (run_by IN ('manual', 'worker')),
    reference_currency  text NOT NULL,
    considered          integer NOT NULL,
    settled             integer NOT NULL,
    deferred            integer NOT NULL,
    unsettled           integer NOT NULL,
    expired             integer NOT NULL,
    settled_value       numeric NOT NULL,
    batches             integer NOT NULL,
    wires               integer NOT NULL,
    fee_cost            numeric NOT NULL,
    fx_cost             numeric NOT NULL,
    cost                numeric NOT NULL,
    fifo_settled        integer NOT NULL,
    fifo_value          numeric NOT NULL,
    fifo_cost           numeric NOT NULL,
    naive_wires         integer NOT NULL,
    naive_cost          numeric NOT NULL,
    lp_bound_pct        numeric,
    solver_status       text NOT NULL,
    solver_method       text NOT NULL,
    solver_ms           double precision NOT NULL,
    cycle_ms            double precision NOT NULL,
    journal_id          bigint,
    -- issue #20: the netting-only baseline (NULL in cycles recorded before 1.1)
    fifo_netted_wires   integer,
    fifo_netted_cost    numeric
);
SELECT pg_catalog.pg_extension_config_dump('settle.cycle', '');
CREATE TRIGGER cycle_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON settle.cycle
    FOR EACH STATEMENT EXECUTE FUNCTION settle._refuse_change();

-- A batch is one wire: the net position of one participant in one currency
-- in one cycle.  net_amount > 0: the participant receives.  The batch's
-- ledger entries (its payments' legs and the counter-entry on the operator's
-- settlement account) sum to zero.
CREATE TABLE settle.batch (
    batch_id        bigint PRIMARY KEY,
    cycle_id        bigint NOT NULL,
    participant_id  text NOT NULL,
    currency        text NOT NULL,
    debit_total     bigint NOT NULL,
    credit_total    bigint NOT NULL,
    net_amount      bigint NOT NULL,
    payment_legs    integer NOT NULL,
    fee             bigint NOT NULL,
    -- settled (direct mode); the rail's states in two-phase mode (80_rail.sql, 82_returns.sql)
    status          text NOT NULL DEFAULT 'settled'
                    CHECK (status IN ('settled', 'reserved', 'pending', 'instructed', 'confirmed', 'voided', 'failed', 'retained', 'returned')),
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    direction       text NOT NULL DEFAULT 'none' CHECK (direction IN ('pay_in', 'pay_out', 'none')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz,
    instructed_at   timestamptz,
    rail_reference  text,
    last_error      text,
    updated_at      timestamptz NOT NULL DEFAULT clock_timestamp()
);
SELECT pg_catalog.pg_extension_config_dump('settle.batch', '');
CREATE SEQUENCE settle.batch_id_seq OWNED BY settle.batch.batch_id;
SELECT pg_catalog.pg_extension_config_dump('settle.batch_id_seq', '');
CREATE INDEX batch_cycle ON settle.batch (cycle_id);
-- A batch's wire (who, which currency, how much, which cycle) never changes
-- once written, only its rail state moves; DELETE and TRUNCATE are refused.
-- settle_verify() also compares each batch with its first (chained) event.
CREATE OR REPLACE FUNCTION settle._batch_wire_fixed() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF (NEW.batch_id, NEW.cycle_id, NEW.participant_id, NEW.currency, NEW.debit_total, NEW.credit_total,
        NEW.net_amount, NEW.payment_legs, NEW.fee, NEW.direction, NEW.created_at)
       IS DISTINCT FROM
       (OLD.batch_id, OLD.cycle_id, OLD.participant_id, OLD.currency, OLD.debit_total, OLD.credit_total,
        OLD.net_amount, OLD.payment_legs, OLD.fee, OLD.direction, OLD.created_at) THEN
        RAISE EXCEPTION 'the wire of batch % cannot change', OLD.batch_id
            USING ERRCODE = 'SE110',
                  DETAIL = 'Only a batch''s rail state (status, attempts, times, reference, error) may be updated.',
                  HINT = 'Corrections are new entries (a reversal or an adjustment), never changes.';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER batch_wire_fixed BEFORE UPDATE ON settle.batch
    FOR EACH ROW EXECUTE FUNCTION settle._batch_wire_fixed();
CREATE TRIGGER batch_no_delete BEFORE DELETE OR TRUNCATE ON settle.batch
    FOR EACH STATEMENT EXECUTE FUNCTION settle._refuse_change();
CREATE INDEX batch_outbox ON settle.batch (next_attempt_at) WHERE status = 'pending';
CREATE INDEX batch_instructed ON settle.batch (instructed_at) WHERE status = 'instructed';
CREATE INDEX payment_cycle ON settle.payment (cycle_id) WHERE cycle_id IS NOT NULL;

-- Runs one cycle; returns its cycle_id (NULL if the queue was empty).
CREATE OR REPLACE FUNCTION settle._run_cycle(run_by text DEFAULT 'manual') RETURNS bigint
    AS 'MODULE_PATHNAME', 'settle_run_cycle_sql' LANGUAGE C VOLATILE;

-- The columns are listed, not c.*: those added after 1.0 come after 1.0's
-- (value_over_fifo), in a fresh install as in an updated database.
CREATE OR REPLACE VIEW settle.cycles AS
    SELECT c.cycle_id, c.started_at, c.finished_at, c.run_by, c.reference_currency, c.considered,
           c.settled, c.deferred, c.unsettled, c.expired, c.settled_value, c.batches, c.wires,
           c.fee_cost, c.fx_cost, c.cost, c.fifo_settled, c.fifo_value, c.fifo_cost,
           c.naive_wires, c.naive_cost, c.lp_bound_pct, c.solver_status, c.solver_method,
           c.solver_ms, c.cycle_ms, c.journal_id,
           CASE WHEN c.naive_cost > 0 THEN round(100 * (c.naive_cost - c.cost) / c.naive_cost, 2) END
               AS saved_vs_naive_pct,
           c.settled_value - c.fifo_value AS value_over_fifo,
           c.fifo_netted_wires, c.fifo_netted_cost,
           CASE WHEN c.fifo_netted_cost > 0
                THEN round(100 * (c.fifo_netted_cost - c.cost) / c.fifo_netted_cost, 2) END
               AS saved_vs_netting_pct
      FROM settle.cycle c;

CREATE OR REPLACE VIEW settle.batches AS
    SELECT b.batch_id, b.cycle_id, b.participant_id, b.currency,
           settle.to_major(b.debit_total, b.currency) AS debit_total,
           settle.to_major(b.credit_total, b.currency) AS credit_total,
           settle.to_major(b.net_amount, b.currency) AS net_amount,
           b.net_amount AS net_amount_minor,
           b.payment_legs, settle.to_major(b.fee, b.currency) AS fee, b.status, b.created_at,
           b.direction, b.attempts, b.next_attempt_at, b.instructed_at, b.rail_reference,
           b.last_error, b.updated_at
      FROM settle.batch b;

CREATE OR REPLACE VIEW settle.ledger AS
    SELECT e.entry_id, e.journal_id, j.kind AS journal_kind, j.cycle_id, e.batch_id, e.payment_id,
           e.account_id, e.currency,
           settle.to_major(e.amount, e.currency) AS amount,
           e.amount AS amount_minor, e.posted_at
      FROM settle.ledger_entry e JOIN settle.journal j USING (journal_id);

-- Runs one settlement cycle now and returns what it did.
CREATE OR REPLACE FUNCTION settle_run_cycle() RETURNS SETOF settle.cycles
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    id bigint := settle._run_cycle('manual');
BEGIN
    RETURN QUERY SELECT * FROM settle.cycles c WHERE c.cycle_id = id;
END
$$;

-- Held payments (docs/CYCLE.md, "Held payments"): an operator releases one
-- into the queue, or cancels it (it fails, with the operator's reason).
CREATE OR REPLACE FUNCTION settle_release_payment(payment_id bigint)
RETURNS text LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    p settle.payment;
    blocked text;
BEGIN
    SELECT * INTO p FROM settle.payment x WHERE x.payment_id = settle_release_payment.payment_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'payment % does not exist', payment_id USING ERRCODE = 'SE103';
    ELSIF p.status <> 'held' THEN
        RAISE EXCEPTION 'payment % is not held', payment_id USING ERRCODE = 'SE104',
            DETAIL = format('Its status is %s.', p.status),
            HINT = 'Only a held payment can be released.';
    END IF;
    -- the cycle would only hold it again
    SELECT x.participant_id || ' is ' || x.status INTO blocked FROM settle.participant x
     WHERE x.status <> 'active'
       AND (x.participant_id = p.source_participant
            OR (x.participant_id = p.counterparty_id AND coalesce(current_setting('settle.suspension_holds_payee', true)::boolean, true)))
     ORDER BY x.participant_id <> p.source_participant LIMIT 1;
    IF blocked IS NOT NULL THEN
        RAISE EXCEPTION 'payment % cannot be released: participant %', payment_id, blocked
            USING ERRCODE = 'SE105',
                  HINT = 'Set the participant active first, or cancel the payment with settle_cancel_payment().';
    END IF;
    UPDATE settle.payment x SET status = 'queued', hold_reason = NULL, updated_at = clock_timestamp()
     WHERE x.payment_id = p.payment_id;
    INSERT INTO settle.event (entity, entity_id, event_type, from_status, to_status, details)
        VALUES ('payment', p.payment_id::text, 'released', 'held', 'queued',
                jsonb_build_object('hold_reason', p.hold_reason, 'by', session_user::text));
    RETURN 'queued';
END
$$;

CREATE OR REPLACE FUNCTION settle_cancel_payment(payment_id bigint, reason text)
RETURNS text LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    p settle.payment;
BEGIN
    IF reason IS NULL OR btrim(reason) = '' THEN
        RAISE EXCEPTION 'reason must not be empty' USING ERRCODE = 'SE001';
    END IF;
    SELECT * INTO p FROM settle.payment x WHERE x.payment_id = settle_cancel_payment.payment_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'payment % does not exist', payment_id USING ERRCODE = 'SE103';
    ELSIF p.status NOT IN ('held', 'queued') THEN
        RAISE EXCEPTION 'payment % cannot be cancelled', payment_id USING ERRCODE = 'SE104',
            DETAIL = format('Its status is %s.', p.status),
            HINT = 'Only a held or queued payment can be cancelled.';
    END IF;
    UPDATE settle.payment x SET status = 'failed', updated_at = clock_timestamp()
     WHERE x.payment_id = p.payment_id;
    INSERT INTO settle.event (entity, entity_id, event_type, from_status, to_status, details)
        VALUES ('payment', p.payment_id::text, 'cancelled', p.status, 'failed',
                jsonb_build_object('reason', reason, 'hold_reason', p.hold_reason, 'by', session_user::text));
    RETURN 'failed';
END
$$;
