-- settle install script, part 2: intake.

-- Waits until what this backend can see is on the synchronous standby; SE140
-- if the wait is cancelled (src/durability.c).  Answers that report a payment
-- or hand a batch to the rail call it: their own transaction may write nothing,
-- so its commit would not wait.
CREATE OR REPLACE FUNCTION settle._wait_durable(what text) RETURNS void
AS 'MODULE_PATHNAME', 'settle_wait_durable_sql' LANGUAGE C VOLATILE STRICT;

-- The WAL position up to which commits are durable where they must be: what
-- the synchronous standby has confirmed (the local flush without one).  A
-- CDC consumer acts on a decoded transaction once its commit LSN is at or
-- below it (docs/AUDIT.md, "Streaming events out").  NULL on a standby.
-- Whether this server is a fenced restored copy, and why (src/fence.c).
CREATE OR REPLACE FUNCTION settle_fence_state(OUT fenced boolean, OUT reason text) RETURNS record
AS 'MODULE_PATHNAME', 'settle_fence_state' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION settle_fence_state() IS
    'Whether this server or database is fenced (a restored copy, physical or from a dump: no cycles, intake, rail traffic or calendar jobs), and why';
-- Releases a copy restored from a dump (05_origin.sql) once an operator has
-- checked it: records a 'released' row for this place (nothing when this
-- database is not a copy).  Returns the fence state after it.
CREATE OR REPLACE FUNCTION settle_release_copy(reason text)
RETURNS TABLE (fenced boolean, fence_reason text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF reason IS NULL OR btrim(reason) = '' THEN
        RAISE EXCEPTION 'a release needs a reason' USING ERRCODE = '22023',
            HINT = 'Say what was checked, e.g. settle_release_copy(''replaces the failed primary, verified clean'').';
    END IF;
    INSERT INTO settle.origin (system_identifier, database_oid, database_name, kind, reason)
    SELECT s.system_identifier, d.oid, d.datname, 'released', reason
      FROM pg_control_system() s, pg_database d
     WHERE d.datname = current_database()
       AND EXISTS (SELECT 1 FROM settle.origin o
                    WHERE o.kind = 'created' AND (o.system_identifier, o.database_oid) <> (s.system_identifier, d.oid))
    ON CONFLICT DO NOTHING;
    RETURN QUERY SELECT f.fenced, f.reason FROM @extschema@.settle_fence_state() f;
END
$$;
COMMENT ON FUNCTION settle_release_copy(text) IS
    'Release a database restored from a dump (a fenced copy) once checked: it settles, takes payments and talks to the rail from now on (operators)';
-- SE153 when fenced, for the SQL functions that act on the outside world.
CREATE OR REPLACE FUNCTION settle._check_fence(what text) RETURNS void
AS 'MODULE_PATHNAME', 'settle_check_fence_sql' LANGUAGE C VOLATILE STRICT;

-- Whether this primary can commit durably now: synchronous standbys required
-- (synchronous_standby_names, synchronous_commit above local) and how many
-- stream; refusing while too few do (src/sync_standby.c, docs/CONSENSUS.md).
CREATE OR REPLACE FUNCTION settle_sync_standby_state(
    OUT required boolean, OUT needed integer, OUT streaming integer,
    OUT catching_up integer, OUT refusing boolean, OUT reason text) RETURNS record
AS 'MODULE_PATHNAME', 'settle_sync_standby_state_sql' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION settle_sync_standby_state() IS
    'Whether synchronous standbys are required, how many are needed and streaming, and whether new payments, rail calls and cycles are refused (SE170)';
-- SE170 on an orphan (after settle.sync_standby_grace), for the SQL functions that write.
CREATE OR REPLACE FUNCTION settle._check_sync_standby(what text) RETURNS void
AS 'MODULE_PATHNAME', 'settle_check_sync_standby_sql' LANGUAGE C VOLATILE STRICT;

CREATE OR REPLACE FUNCTION settle_durable_lsn() RETURNS pg_lsn
AS 'MODULE_PATHNAME', 'settle_durable_lsn' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION settle_durable_lsn() IS
    'WAL position up to which commits are confirmed by the synchronous standby (local flush without one)';

-- The parameters are the payment fields, in order: include/payment_fields.h
-- (test/scripts/payment_fields.sh holds this signature to it).
CREATE OR REPLACE FUNCTION settle_submit(
    transaction_id       text,
    amount               numeric,
    source_currency      text,
    destination_currency text,
    source_account       text,
    destination_account  text,
    counterparty_id      text,
    idempotency_key      text,
    priority             integer DEFAULT 5,
    deadline             timestamptz DEFAULT NULL,
    -- linked payments, all or nothing (84_links.sql): both or neither
    link_group           text DEFAULT NULL,
    link_size            integer DEFAULT NULL,
    -- the earliest settlement time (issue #33): not settled before it
    not_before           timestamptz DEFAULT NULL,
    OUT payment_id       bigint,
    OUT status           text,
    OUT replay           boolean,
    OUT submitted_at     timestamptz,
    OUT updated_at       timestamptz)
RETURNS record
AS 'MODULE_PATHNAME', 'settle_submit_1_2' LANGUAGE C VOLATILE;

COMMENT ON FUNCTION settle_submit IS
    'Validate and queue one payment, exactly once per idempotency_key';

CREATE OR REPLACE FUNCTION settle_submit_bulk(
    payments              jsonb,
    OUT ordinal           integer,
    OUT transaction_id    text,
    OUT idempotency_key   text,
    OUT payment_id        bigint,
    OUT status            text,
    OUT replay            boolean,
    OUT sqlstate          text,
    OUT message           text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'settle_submit_bulk' LANGUAGE C VOLATILE;

COMMENT ON FUNCTION settle_submit_bulk IS
    'Validate and queue many payments (a JSON array of objects keyed like settle_submit''s parameters); one result row each';
