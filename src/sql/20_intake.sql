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
    'Whether this server is fenced (a restored copy: no cycles, intake, rail traffic or calendar jobs), and why';
-- SE153 when fenced, for the SQL functions that act on the outside world.
CREATE OR REPLACE FUNCTION settle._check_fence(what text) RETURNS void
AS 'MODULE_PATHNAME', 'settle_check_fence_sql' LANGUAGE C VOLATILE STRICT;

CREATE OR REPLACE FUNCTION settle_durable_lsn() RETURNS pg_lsn
AS 'MODULE_PATHNAME', 'settle_durable_lsn' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION settle_durable_lsn() IS
    'WAL position up to which commits are confirmed by the synchronous standby (local flush without one)';

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
    OUT payment_id       bigint,
    OUT status           text,
    OUT replay           boolean,
    OUT submitted_at     timestamptz,
    OUT updated_at       timestamptz)
RETURNS record
AS 'MODULE_PATHNAME', 'settle_submit' LANGUAGE C VOLATILE;

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
