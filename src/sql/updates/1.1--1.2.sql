-- settle 1.1 -> 1.2: the table changes of 1.2, written by hand.
--
-- Only what the install script creates once goes here: tables, columns,
-- constraints, indexes, sequences, domains, triggers, policies, reference
-- rows, and the DROP of a function that 1.2 removes or whose signature or
-- result changes.  Functions, views, comments and grants are not copied here:
-- the build appends every re-runnable statement of src/sql/*.sql after this
-- file (tools/sql-upgrade.pl), and test/scripts/upgrade.sh proves that a
-- database updated from 1.0 or 1.1 equals a fresh 1.2 install.

-- Issue #29, item 5: the funding advice's solver takes the whole queue
-- (credits, wires, FX pairs): settle._topup_solve has seven more arguments.
DROP FUNCTION settle._topup_solve(integer, bigint[], boolean[], integer[], integer[], bigint[], double precision[],
                                  double precision);

-- #28 item 2 (an orphan refuses at once): settle_gateway_health() reports
-- how many synchronous standbys are needed, whether too few stream, and why.
DROP FUNCTION @extschema@.settle_gateway_health();

-- issue #29: settle_worker_status() gains columns (seals that found nothing,
-- the database, the worker's state) and an all-databases form
DROP FUNCTION @extschema@.settle_worker_status();
DROP FUNCTION settle._worker_status();

-- issue #29: settle_archive() works in slices (a new parameter, max_events)
DROP FUNCTION @extschema@.settle_archive(timestamptz);

-- issue #29: where this ledger lives; a copy restored from a dump starts
-- fenced (05_origin.sql).  An installation updated in place is where it was
-- created.
CREATE TABLE settle.origin (
    system_identifier bigint NOT NULL,
    database_oid      oid NOT NULL,
    database_name     name NOT NULL,
    kind              text NOT NULL CHECK (kind IN ('created', 'released')),
    recorded_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    recorded_by       name NOT NULL DEFAULT session_user,
    reason            text,
    PRIMARY KEY (system_identifier, database_oid, kind)
);
SELECT pg_catalog.pg_extension_config_dump('settle.origin', '');
CREATE TRIGGER origin_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON settle.origin
    FOR EACH STATEMENT EXECUTE FUNCTION settle._refuse_change();
INSERT INTO settle.origin (system_identifier, database_oid, database_name, kind)
SELECT s.system_identifier, d.oid, d.datname, 'created'
  FROM pg_catalog.pg_control_system() s, pg_catalog.pg_database d
 WHERE d.datname = pg_catalog.current_database();

-- issue #33: what a participant controls: limits and liquidity reservations
-- (88_controls.sql; the triggers are created there, once their functions exist)
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
CREATE TABLE settle.liquidity_reservation (
    account_id      text NOT NULL REFERENCES settle.account,
    valid_on        date,
    amount          bigint NOT NULL CHECK (amount BETWEEN 0 AND 999999999999999),
    min_priority    smallint NOT NULL CHECK (min_priority BETWEEN 2 AND 9),
    updated_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT liquidity_reservation_key UNIQUE NULLS NOT DISTINCT (account_id, valid_on)
);
SELECT pg_catalog.pg_extension_config_dump('settle.liquidity_reservation', '');
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

-- issue #33: queue management by the payer: where a moved payment's queue
-- order counts from, the priority its payer set since (89_queue.sql)
ALTER TABLE settle.payment ADD COLUMN queued_since timestamptz;
ALTER TABLE settle.payment ADD COLUMN queue_priority settle.payment_priority;

-- issue #33: timed payments: the earliest settlement time, a new last
-- parameter of settle_submit (re-created with it from 20_intake.sql)
ALTER TABLE settle.payment ADD COLUMN not_before timestamptz;
DROP FUNCTION @extschema@.settle_submit(text, numeric, text, text, text, text, text, text, integer, timestamptz, text, integer);

-- issue #33: early warnings on a participant's liquidity and limits' headroom (88_controls.sql)
CREATE TABLE settle.participant_alert (
    participant_id  text NOT NULL REFERENCES settle.participant,
    currency        text NOT NULL REFERENCES settle.currency,
    kind            text NOT NULL CHECK (kind IN ('liquidity', 'headroom')),
    threshold       bigint NOT NULL CHECK (threshold BETWEEN 0 AND 999999999999999),
    alerting_since  timestamptz,
    updated_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (participant_id, currency, kind)
);
SELECT pg_catalog.pg_extension_config_dump('settle.participant_alert', '');
ALTER TABLE settle.participant_alert ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_alerts ON settle.participant_alert
    USING ((SELECT settle.sees_all()) OR participant_id = (SELECT settle.current_participant()))
    WITH CHECK (pg_has_role(current_user, 'settle_operator', 'MEMBER')
                OR participant_id = (SELECT settle.current_participant()));

-- issue #33: settle._limit_positions reads today's settled and the reserved payments by index (88_controls.sql)
CREATE INDEX payment_settled_at ON settle.payment (settled_at) WHERE status = 'settled';
CREATE INDEX payment_reserved ON settle.payment (payment_id) WHERE status = 'reserved';

-- issue #30: the ISO 20022 notification stream's cursor (settle-gateway, iso_notify.c)
CREATE INDEX event_payment_outcome ON settle.event (xid, event_id)
    WHERE entity = 'payment' AND to_status IN ('settled', 'failed', 'expired');
