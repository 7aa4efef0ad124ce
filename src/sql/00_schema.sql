-- settle install script, part 0: schema, reference data, queue, events, ledger.
-- Tables are singular (settle.payment); the views users read are plural
-- (settle.transactions, settle.accounts, ...), see 30_views.sql.

\echo Use "CREATE EXTENSION settle" to load this file. \quit

CREATE SCHEMA IF NOT EXISTS settle;
COMMENT ON SCHEMA settle IS 'settle: tables and views of the settlement engine';

-- The three roles (their rights: 90_security.sql), created here once so that
-- every later part can grant to them.  Roles are cluster-wide: a second
-- database with settle reuses them.
DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['settle_submitter', 'settle_operator', 'settle_auditor'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = r) THEN
            EXECUTE format('CREATE ROLE %I NOLOGIN', r);
        END IF;
    END LOOP;
END
$$;
COMMENT ON ROLE settle_submitter IS 'settle: submits payments for the participant its login is mapped to';
COMMENT ON ROLE settle_operator IS 'settle: reference data, cycles, every row';
COMMENT ON ROLE settle_auditor IS 'settle: read-only access to every row';

-- Where the worker is.  Without shared_preload_libraries there is none:
-- everything works, cycles run by hand or from pg_cron, and a NOTICE says
-- so.  With it, the launcher starts a worker for every database with the
-- extension (settle.database, if set, lists the ones it may serve).  Until
-- 1.1 the worker served one database and CREATE EXTENSION elsewhere was
-- refused (SE150, retired in 1.2: docs/ERRORS.md).
CREATE OR REPLACE FUNCTION settle._preloaded() RETURNS boolean
    AS 'MODULE_PATHNAME', 'settle_preloaded_sql' LANGUAGE C STABLE;
-- Whether the launcher serves this database: preloaded, settle.worker_enabled,
-- and settle.database empty or naming it.
CREATE OR REPLACE FUNCTION settle._database_served() RETURNS boolean
    AS 'MODULE_PATHNAME', 'settle_database_served' LANGUAGE C STABLE;
DO $$
BEGIN
    IF NOT settle._preloaded() THEN
        -- CREATE EXTENSION runs this script with client_min_messages at warning
        PERFORM set_config('client_min_messages', 'notice', true);
        RAISE NOTICE 'settle is not in shared_preload_libraries: there is no settlement worker'
            USING HINT = 'Cycles run with settle_run_cycle(), by hand or from pg_cron; add settle to shared_preload_libraries and restart for the worker.';
    ELSIF NOT settle._database_served() AND current_setting('settle.worker_enabled')::boolean THEN
        PERFORM set_config('client_min_messages', 'notice', true);
        RAISE NOTICE 'settle.database does not list database "%": no settlement worker will serve it', current_database()
            USING HINT = 'Add it to settle.database and reload, or run settle_run_cycle() from pg_cron.';
    END IF;
END
$$;

-- The value rules of the tables intake writes, as domains rather than table
-- CHECKs: a domain's check is parsed once per backend (type cache), a table's
-- CHECK on every statement that writes the table, which was a sixth of the
-- CPU of a single-row settle_submit (docs/INTAKE.md).
CREATE DOMAIN settle.payment_amount AS bigint       -- minor units
    CONSTRAINT payment_amount_check CHECK (VALUE > 0);
CREATE DOMAIN settle.payment_priority AS smallint   -- 9 most urgent (weight priority / 5)
    CONSTRAINT payment_priority_check CHECK (VALUE BETWEEN 1 AND 9);
COMMENT ON DOMAIN settle.payment_priority IS
    'settle: payment priority, 1 (least urgent) to 9 (most urgent); the solver weighs a payment by priority / 5';
CREATE DOMAIN settle.payment_status AS text
    CONSTRAINT payment_status_check CHECK (VALUE IN ('queued', 'held', 'reserved', 'settled', 'expired', 'failed', 'returned'));
CREATE DOMAIN settle.event_entity AS text
    CONSTRAINT event_entity_check
    CHECK (VALUE IN ('payment', 'batch', 'cycle', 'account', 'participant', 'fx_rate', 'wire_fee'));

-- Refuses UPDATE, DELETE and TRUNCATE on append-only tables, for every role.
-- One exception: settle_archive() (48_archive.sql) moves old events, event
-- seals, cycles and seal runs to archive tables; its DELETEs pass while its
-- own transaction holds settle.archive_lock, which no other role can lock.
CREATE OR REPLACE FUNCTION settle._refuse_change() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_OP = 'DELETE' AND TG_TABLE_NAME IN ('event', 'event_seal', 'cycle', 'seal_run')
       AND EXISTS (SELECT 1 FROM pg_locks l
                    WHERE l.locktype = 'relation' AND l.relation = to_regclass('settle.archive_lock')
                      AND l.pid = pg_backend_pid() AND l.mode = 'ExclusiveLock' AND l.granted) THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'settle.% is append-only', TG_TABLE_NAME
        USING ERRCODE = 'SE110',
              DETAIL = format('%s refused on %I.%I.', TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME),
              HINT = 'Corrections are new entries (a reversal or an adjustment), never changes.';
END
$$;

-- Refuses DELETE on reference data: accounts and participants are closed, never removed.
CREATE OR REPLACE FUNCTION settle._refuse_delete() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RAISE EXCEPTION 'rows of settle.% cannot be deleted', TG_TABLE_NAME
        USING ERRCODE = 'SE110',
              HINT = 'Set the status to ''closed'' instead.';
END
$$;

-- Serialise cycles (src/cycle.c) and seals (settle_seal()): each takes an
-- EXCLUSIVE lock on its table.  Nobody is granted anything on these tables,
-- so no other role can take a conflicting lock, unlike an advisory lock
-- (pg_advisory_lock is executable by PUBLIC, and a held key would stall the
-- worker).  A wait shows as settle_lock_wait_seconds (settle.metrics).
CREATE TABLE settle.cycle_lock ();
CREATE TABLE settle.seal_lock ();
COMMENT ON TABLE settle.cycle_lock IS 'settle: locked by each cycle, so that one runs at a time';
COMMENT ON TABLE settle.seal_lock IS 'settle: locked by each seal, so that one runs at a time';

-- pg_dump: every table that holds data users created is registered with
-- pg_extension_config_dump (beside its CREATE TABLE), with its sequence, so
-- that a dump of a database with settle carries every row and sequence
-- position.  Not registered: settle.currency (shipped rows only), the
-- operator participant (created here), settle.cycle_total (rebuilt by its
-- trigger as the cycles are restored) and the two lock tables (empty).

-- ISO 4217 currencies and their minor-unit exponents.
CREATE TABLE settle.currency (
    code        text PRIMARY KEY CHECK (code ~ '^[A-Z]{3}$'),
    exponent    smallint NOT NULL CHECK (exponent BETWEEN 0 AND 4),
    name        text NOT NULL
);

INSERT INTO settle.currency (code, exponent, name) VALUES
    ('USD', 2, 'US Dollar'), ('EUR', 2, 'Euro'), ('JPY', 0, 'Yen'),
    ('GBP', 2, 'Pound Sterling'), ('CNY', 2, 'Yuan Renminbi'),
    ('AUD', 2, 'Australian Dollar'), ('CAD', 2, 'Canadian Dollar'),
    ('CHF', 2, 'Swiss Franc'), ('HKD', 2, 'Hong Kong Dollar'),
    ('SGD', 2, 'Singapore Dollar'), ('SEK', 2, 'Swedish Krona'),
    ('KRW', 0, 'Won'), ('NOK', 2, 'Norwegian Krone'),
    ('NZD', 2, 'New Zealand Dollar'), ('INR', 2, 'Indian Rupee'),
    ('MXN', 2, 'Mexican Peso'), ('TWD', 2, 'New Taiwan Dollar'),
    ('ZAR', 2, 'Rand'), ('BRL', 2, 'Brazilian Real'),
    ('DKK', 2, 'Danish Krone'), ('PLN', 2, 'Zloty'), ('THB', 2, 'Baht'),
    ('ILS', 2, 'New Israeli Sheqel'), ('IDR', 2, 'Rupiah'),
    ('CZK', 2, 'Czech Koruna'), ('AED', 2, 'UAE Dirham'),
    ('TRY', 2, 'Turkish Lira'), ('HUF', 2, 'Forint'),
    ('CLP', 0, 'Chilean Peso'), ('SAR', 2, 'Saudi Riyal'),
    ('PHP', 2, 'Philippine Peso'), ('MYR', 2, 'Malaysian Ringgit'),
    ('COP', 2, 'Colombian Peso'), ('RON', 2, 'Romanian Leu'),
    ('PEN', 2, 'Sol'), ('VND', 0, 'Dong'), ('ISK', 0, 'Iceland Krona'),
    ('BHD', 3, 'Bahraini Dinar'), ('KWD', 3, 'Kuwaiti Dinar'),
    ('OMR', 3, 'Rial Omani'), ('JOD', 3, 'Jordanian Dinar'),
    ('TND', 3, 'Tunisian Dinar'), ('IQD', 3, 'Iraqi Dinar'),
    ('LYD', 3, 'Libyan Dinar'), ('CLF', 4, 'Unidad de Fomento'),
    ('UYW', 4, 'Unidad Previsional');

-- Participants: banks and other counterparties, plus the operator itself.
CREATE TABLE settle.participant (
    participant_id  text PRIMARY KEY,
    name            text NOT NULL,
    status          text NOT NULL DEFAULT 'active'
                    CHECK (status IN ('active', 'suspended', 'closed')),
    is_operator     boolean NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at      timestamptz NOT NULL DEFAULT clock_timestamp()
);
SELECT pg_catalog.pg_extension_config_dump('settle.participant', 'WHERE NOT is_operator');

-- Accounts: one currency each; balance and lower_limit in minor units.
-- lower_limit is how far the balance may go below zero (0 = no overdraft).
-- kind 'customer' belongs to a participant; 'settlement' and 'external' are
-- the operator's own (per currency: the netting counter-account of every
-- batch, and the source of funding), and have no limit.
CREATE TABLE settle.account (
    account_id      text PRIMARY KEY,
    participant_id  text NOT NULL REFERENCES settle.participant,
    currency        text NOT NULL REFERENCES settle.currency,
    kind            text NOT NULL DEFAULT 'customer'
                    CHECK (kind IN ('customer', 'settlement', 'external')),
    balance         bigint NOT NULL DEFAULT 0,
    lower_limit     bigint NOT NULL DEFAULT 0 CHECK (lower_limit >= 0),
    status          text NOT NULL DEFAULT 'active'
                    CHECK (status IN ('active', 'frozen', 'closed')),
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- two-phase settlement (80_rail.sql): a cycle's net debit reserved,
    -- counting against the limit, and its net credit, not yet available
    pending_debit   bigint NOT NULL DEFAULT 0 CHECK (pending_debit >= 0),
    pending_credit  bigint NOT NULL DEFAULT 0 CHECK (pending_credit >= 0),
    -- last line of defence: a customer account never ends below its limit
    CONSTRAINT account_within_limit CHECK (kind <> 'customer' OR balance - pending_debit >= -lower_limit)
);
SELECT pg_catalog.pg_extension_config_dump('settle.account', '');
CREATE INDEX account_participant ON settle.account (participant_id);

CREATE TRIGGER participant_no_delete BEFORE DELETE OR TRUNCATE ON settle.participant
    FOR EACH STATEMENT EXECUTE FUNCTION settle._refuse_delete();
CREATE TRIGGER account_no_delete BEFORE DELETE OR TRUNCATE ON settle.account
    FOR EACH STATEMENT EXECUTE FUNCTION settle._refuse_delete();

-- FX mid rates: 1 unit of base = mid_rate units of quote.  spread_bps is what
-- converting costs the operator.  The latest row per pair is in force.
CREATE TABLE settle.fx_rate (
    base_currency   text NOT NULL REFERENCES settle.currency,
    quote_currency  text NOT NULL REFERENCES settle.currency,
    mid_rate        numeric NOT NULL CHECK (mid_rate > 0),
    spread_bps      numeric NOT NULL DEFAULT 0 CHECK (spread_bps >= 0),
    valid_from      timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (base_currency, quote_currency, valid_from),
    CHECK (base_currency <> quote_currency)
);
SELECT pg_catalog.pg_extension_config_dump('settle.fx_rate', '');

-- Backends cache currencies and FX pairs (intake, settle.to_major): every
-- change tells them to read again (src/refcache.c).
CREATE OR REPLACE FUNCTION settle._reference_changed() RETURNS trigger
    AS 'MODULE_PATHNAME', 'settle_reference_changed' LANGUAGE C;
CREATE TRIGGER currency_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON settle.currency
    FOR EACH STATEMENT EXECUTE FUNCTION settle._reference_changed();
CREATE TRIGGER fx_rate_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON settle.fx_rate
    FOR EACH STATEMENT EXECUTE FUNCTION settle._reference_changed();

-- Wire fees: the fixed cost of one wire for a participant in a currency,
-- in minor units of that currency.  participant_id NULL is the default for
-- the currency.
CREATE TABLE settle.wire_fee (
    participant_id  text REFERENCES settle.participant,
    currency        text NOT NULL REFERENCES settle.currency,
    fee             bigint NOT NULL CHECK (fee >= 0),
    CONSTRAINT wire_fee_key UNIQUE NULLS NOT DISTINCT (participant_id, currency)
);
SELECT pg_catalog.pg_extension_config_dump('settle.wire_fee', '');

-- The payment queue.  Amount in minor units of source_currency.  Accounts are
-- validated by settle_submit and never deleted, so no foreign keys slow
-- intake down.  source_participant is the owner of source_account.
CREATE TABLE settle.payment (
    payment_id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    transaction_id      text NOT NULL,
    idempotency_key     text NOT NULL,
    amount              settle.payment_amount NOT NULL,
    source_currency     text NOT NULL,
    destination_currency text NOT NULL,
    source_account      text NOT NULL,
    destination_account text NOT NULL,
    counterparty_id     text NOT NULL,
    source_participant  text NOT NULL,
    priority            settle.payment_priority NOT NULL DEFAULT 5,
    deadline            timestamptz,
    status              settle.payment_status NOT NULL DEFAULT 'queued',
    created_at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    settled_at          timestamptz,
    cycle_id            bigint,
    destination_amount  bigint,
    fx_rate             numeric,
    -- why a 'held' payment is held (the participant is suspended, it can
    -- never be posted at today's rate, ...); NULL otherwise
    hold_reason         text,
    -- queue management by the payer (89_queue.sql, issue #33): where its
    -- queue order counts from once moved (NULL: created_at), and the
    -- priority it set since (NULL: as submitted; `priority` stays what was
    -- submitted, which a retry of the submission is compared with)
    queued_since        timestamptz,
    queue_priority      settle.payment_priority,
    -- the earliest settlement time the payer gave (issue #33): no cycle
    -- takes the payment before it; NULL: at once
    not_before          timestamptz
);
SELECT pg_catalog.pg_extension_config_dump('settle.payment', '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('settle.payment', 'payment_id'), '');
-- Exactly-once intake rests on these two unique indexes.  Both are scoped to
-- the payer participant, as payment APIs scope idempotency keys per client:
-- one participant's keys and ids neither collide with another's, nor can
-- they be squatted, probed or blocked on by another.
CREATE UNIQUE INDEX payment_idempotency_key ON settle.payment (source_participant, idempotency_key);
CREATE UNIQUE INDEX payment_transaction_id ON settle.payment (source_participant, transaction_id);
-- The cycle reads the queue through this small partial index.
CREATE INDEX payment_queued ON settle.payment (payment_id) WHERE status = 'queued';
-- Held payments (a suspended participant, an amount that cannot be posted)
-- wait for an operator; expiry reads them too.
CREATE INDEX payment_held ON settle.payment (payment_id) WHERE status = 'held';

-- Every state change, of payments and everything else.  Append-only.
CREATE TABLE settle.event (
    event_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    occurred_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    entity          settle.event_entity NOT NULL,
    entity_id       text NOT NULL,
    event_type      text NOT NULL,
    from_status     text,
    to_status       text,
    details         jsonb,
    -- inserting transaction: settle_seal() chains rows once it has finished (50_audit.sql)
    xid             xid8 NOT NULL DEFAULT pg_current_xact_id()
);
SELECT pg_catalog.pg_extension_config_dump('settle.event', '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('settle.event', 'event_id'), '');
CREATE INDEX event_entity ON settle.event (entity, entity_id);
-- settle-gateway's ISO 20022 notification stream (issue #30) reads the
-- payments' outcomes in (xid, event_id) order after a client's cursor
CREATE INDEX event_payment_outcome ON settle.event (xid, event_id)
    WHERE entity = 'payment' AND to_status IN ('settled', 'failed', 'expired');
CREATE TRIGGER event_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON settle.event
    FOR EACH STATEMENT EXECUTE FUNCTION settle._refuse_change();

-- The double-entry ledger.  A journal is a set of entries that sums to zero
-- per currency; amount is signed (+ credit raises the balance, - debit).
CREATE TABLE settle.journal (
    journal_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind            text NOT NULL CHECK (kind IN ('funding', 'settlement', 'reversal', 'adjustment')),
    cycle_id        bigint,
    reference       text,
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp()
);
SELECT pg_catalog.pg_extension_config_dump('settle.journal', '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('settle.journal', 'journal_id'), '');
CREATE TABLE settle.ledger_entry (
    entry_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- no foreign keys on this table: one RI query per entry was 39% of a
    -- 100,000-payment cycle; the journal, account and payment of every entry
    -- are written by the same transaction and checked by settle_verify()
    journal_id      bigint NOT NULL,
    batch_id        bigint,
    payment_id      bigint,
    account_id      text NOT NULL,
    currency        text NOT NULL,
    amount          bigint NOT NULL CHECK (amount <> 0),
    posted_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- inserting transaction: settle_seal() chains rows once it has finished (50_audit.sql)
    xid             xid8 NOT NULL DEFAULT pg_current_xact_id()
);
SELECT pg_catalog.pg_extension_config_dump('settle.ledger_entry', '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('settle.ledger_entry', 'entry_id'), '');
CREATE INDEX ledger_entry_account ON settle.ledger_entry (account_id, entry_id);
CREATE INDEX ledger_entry_payment ON settle.ledger_entry (payment_id) WHERE payment_id IS NOT NULL;
CREATE TRIGGER journal_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON settle.journal
    FOR EACH STATEMENT EXECUTE FUNCTION settle._refuse_change();
CREATE TRIGGER ledger_entry_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON settle.ledger_entry
    FOR EACH STATEMENT EXECUTE FUNCTION settle._refuse_change();

-- The operator: owns the settlement and external accounts of every currency.
INSERT INTO settle.participant (participant_id, name, is_operator)
    VALUES ('_settle', 'settle operator', true);

-- Who is calling: row-level security, the views and intake use these
-- (grants in 90_security.sql).

-- Which login acts for which participant.  By the role's OID and name: a
-- login dropped and created again under the same name is a new role and
-- inherits nothing (DROP ROLE removes its mapping, src/role_map.c, and
-- settle.forget_dropped_roles() those left in other databases); a renamed
-- login is not mapped until mapped again; after a restore into another
-- cluster (new OIDs) settle_remap_roles() re-resolves the names.
CREATE TABLE settle.participant_role (
    role_oid        oid PRIMARY KEY,
    role_name       name NOT NULL,       -- at mapping time, for people reading the table
    participant_id  text NOT NULL REFERENCES settle.participant
);
SELECT pg_catalog.pg_extension_config_dump('settle.participant_role', '');

-- The participant the current role acts for (NULL if none).
CREATE OR REPLACE FUNCTION settle.current_participant() RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT participant_id FROM settle.participant_role
     WHERE role_oid = (SELECT r.oid FROM pg_roles r WHERE r.rolname = current_user)
       AND role_name = current_user
$$;

-- Whether the current role sees every row (operators, auditors, superusers).
CREATE OR REPLACE FUNCTION settle.sees_all() RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT pg_has_role(current_user, 'settle_operator', 'MEMBER')
        OR pg_has_role(current_user, 'settle_auditor', 'MEMBER')
        OR (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
$$;
