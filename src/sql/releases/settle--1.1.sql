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
-- so.  With it, the worker serves one database (settle.database); created
-- in another while the worker is on, payments there would stay queued
-- forever, so that is refused.
CREATE FUNCTION settle._preloaded() RETURNS boolean
    AS 'MODULE_PATHNAME', 'settle_preloaded_sql' LANGUAGE C STABLE;
DO $$
BEGIN
    IF NOT settle._preloaded() THEN
        -- CREATE EXTENSION runs this script with client_min_messages at warning
        PERFORM set_config('client_min_messages', 'notice', true);
        RAISE NOTICE 'settle is not in shared_preload_libraries: there is no settlement worker'
            USING HINT = 'Cycles run with settle_run_cycle(), by hand or from pg_cron; add settle to shared_preload_libraries and restart for the worker.';
    ELSIF current_setting('settle.worker_enabled')::boolean
          AND current_setting('settle.database') <> current_database() THEN
        RAISE EXCEPTION 'the settlement worker serves database "%", not "%"',
                        current_setting('settle.database'), current_database()
            USING ERRCODE = 'SE150',
                  DETAIL = 'Payments submitted here would stay queued: no worker would run their cycles.',
                  HINT = format('Set settle.database = %L and restart, or set settle.worker_enabled = off and run settle_run_cycle() from pg_cron.',
                                current_database());
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
CREATE FUNCTION settle._refuse_change() RETURNS trigger
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
CREATE FUNCTION settle._refuse_delete() RETURNS trigger
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
CREATE FUNCTION settle._reference_changed() RETURNS trigger
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
    hold_reason         text
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
CREATE FUNCTION settle.current_participant() RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT participant_id FROM settle.participant_role
     WHERE role_oid = (SELECT r.oid FROM pg_roles r WHERE r.rolname = current_user)
       AND role_name = current_user
$$;

-- Whether the current role sees every row (operators, auditors, superusers).
CREATE FUNCTION settle.sees_all() RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT pg_has_role(current_user, 'settle_operator', 'MEMBER')
        OR pg_has_role(current_user, 'settle_auditor', 'MEMBER')
        OR (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
$$;
-- settle install script, part 1: reference data functions.
-- Each validates its input with the same C rules as settle_submit (same
-- SQLSTATEs), and records an event for every change.

-- C validators shared with intake (src/refcheck.c).
CREATE FUNCTION settle._check_name(field text, value text) RETURNS text
    AS 'MODULE_PATHNAME', 'settle_check_name_sql' LANGUAGE C IMMUTABLE;
CREATE FUNCTION settle._check_currency(field text, value text) RETURNS smallint
    AS 'MODULE_PATHNAME', 'settle_check_currency_sql' LANGUAGE C STABLE;
CREATE FUNCTION settle._to_minor(field text, value numeric, currency text, allow_zero boolean DEFAULT false)
    RETURNS bigint AS 'MODULE_PATHNAME', 'settle_to_minor_sql' LANGUAGE C STABLE;

-- Minor units to a numeric in major units, with the currency's scale.
CREATE FUNCTION settle.to_major(amount bigint, currency text) RETURNS numeric
AS 'MODULE_PATHNAME', 'settle_to_major' LANGUAGE C STABLE STRICT PARALLEL SAFE;

-- The source amounts (minor units) whose credit, converted from src to dst at
-- the rate in force, can be posted: at least one minor unit of dst and at
-- most 999,999,999,999,999.  The cycle converts as src/cycle.c does: the
-- pair as stored (base src, quote dst) multiplies by its mid rate, a pair
-- stored the other way round divides by it, rounded half away from zero;
-- with a = the amount, credit = round(a * n / d), so credit >= 1 iff
-- 2an >= d and credit <= M iff 2an < (2M + 1)d, computed exactly (div and
-- mod of numerics are exact).  No row (NULLs) without a rate.  Intake caches
-- the answer (src/intake.c, invalidated when a rate changes).
CREATE FUNCTION settle._fx_bounds(src text, dst text, OUT min_amount bigint, OUT max_amount bigint)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    WITH r AS (
        SELECT (SELECT f.mid_rate FROM settle.fx_rate f WHERE f.base_currency = src AND f.quote_currency = dst
                 ORDER BY f.valid_from DESC LIMIT 1) AS direct,
               (SELECT f.mid_rate FROM settle.fx_rate f WHERE f.base_currency = dst AND f.quote_currency = src
                 ORDER BY f.valid_from DESC LIMIT 1) AS inverse,
               10::numeric ^ ((SELECT c.exponent FROM settle.currency c WHERE c.code = dst)
                              - (SELECT c.exponent FROM settle.currency c WHERE c.code = src))::numeric AS scale),
    f AS (
        SELECT CASE WHEN r.direct IS NOT NULL THEN r.direct * r.scale ELSE r.scale END AS n,
               CASE WHEN r.direct IS NOT NULL THEN 1::numeric ELSE r.inverse END AS d
          FROM r WHERE r.direct IS NOT NULL OR r.inverse IS NOT NULL),
    b AS (SELECT f.d AS lo, (2 * 999999999999999::numeric + 1) * f.d AS hi, 2 * f.n AS den FROM f)
    SELECT least(div(b.lo, b.den) + CASE WHEN mod(b.lo, b.den) > 0 THEN 1 ELSE 0 END,
                 1000000000000000)::bigint,
           least(div(b.hi, b.den) + CASE WHEN mod(b.hi, b.den) > 0 THEN 1 ELSE 0 END - 1,
                 999999999999999)::bigint
      FROM b
$$;

-- The operator's settlement or external account for a currency, created on first use.
CREATE FUNCTION settle._operator_account(kind text, currency text) RETURNS text
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    id text := '_' || kind || '.' || currency;
BEGIN
    INSERT INTO settle.account (account_id, participant_id, currency, kind)
        VALUES (id, '_settle', currency, kind)
        ON CONFLICT (account_id) DO NOTHING;
    RETURN id;
END
$$;

CREATE FUNCTION settle_create_participant(participant_id text, name text DEFAULT NULL)
RETURNS text LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM settle._check_name('participant_id', participant_id);
    IF name IS NOT NULL AND (length(name) > 200 OR name ~ '[[:cntrl:]]') THEN
        RAISE EXCEPTION 'name must be at most 200 characters without control characters'
            USING ERRCODE = 'SE073';
    END IF;
    IF EXISTS (SELECT 1 FROM settle.participant p WHERE p.participant_id = settle_create_participant.participant_id) THEN
        RAISE EXCEPTION 'participant_id "%" already exists', participant_id
            USING ERRCODE = 'SE070', HINT = 'Participant ids are unique and never reused.';
    END IF;
    INSERT INTO settle.participant (participant_id, name)
        VALUES (participant_id, coalesce(name, participant_id));
    INSERT INTO settle.event (entity, entity_id, event_type, to_status, details)
        VALUES ('participant', participant_id, 'created', 'active', jsonb_build_object('name', coalesce(name, participant_id)));
    RETURN participant_id;
END
$$;

CREATE FUNCTION settle_set_participant_status(participant_id text, status text)
RETURNS text LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    old text;
BEGIN
    PERFORM settle._check_name('participant_id', participant_id);
    IF status IS NULL OR status NOT IN ('active', 'suspended', 'closed') THEN
        RAISE EXCEPTION 'status must be active, suspended or closed'
            USING ERRCODE = 'SE076', DETAIL = format('status is %L.', status);
    END IF;
    SELECT p.status INTO old FROM settle.participant p
     WHERE p.participant_id = settle_set_participant_status.participant_id AND NOT p.is_operator
       FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'participant_id "%" does not exist', participant_id USING ERRCODE = 'SE040';
    END IF;
    UPDATE settle.participant p SET status = settle_set_participant_status.status, updated_at = clock_timestamp()
     WHERE p.participant_id = settle_set_participant_status.participant_id;
    INSERT INTO settle.event (entity, entity_id, event_type, from_status, to_status)
        VALUES ('participant', participant_id, 'status_changed', old, status);
    -- a suspended (or closed) participant's queued payments are held at once:
    -- as payer always, as payee when settle.suspension_holds_payee is on.
    -- They stay visible with the reason until an operator releases
    -- (settle_release_payment) or cancels (settle_cancel_payment) them; a
    -- cycle holds any that intake accepted while this committed.
    IF status <> 'active' THEN
        WITH h AS (
            UPDATE settle.payment p
               SET status = 'held', updated_at = clock_timestamp(),
                   hold_reason = CASE WHEN p.source_participant = settle_set_participant_status.participant_id
                                      THEN format('payer %s is %s', p.source_participant, settle_set_participant_status.status)
                                      ELSE format('payee %s is %s', p.counterparty_id, settle_set_participant_status.status) END
             WHERE p.status = 'queued'
               AND (p.source_participant = settle_set_participant_status.participant_id
                    OR (p.counterparty_id = settle_set_participant_status.participant_id
                        AND coalesce(current_setting('settle.suspension_holds_payee', true)::boolean, true)))
            RETURNING p.payment_id, p.hold_reason, p.updated_at)
        INSERT INTO settle.event (occurred_at, entity, entity_id, event_type, from_status, to_status, details)
            SELECT h.updated_at, 'payment', h.payment_id::text, 'held', 'queued', 'held',
                   jsonb_build_object('reason', h.hold_reason)
              FROM h;
    END IF;
    RETURN status;
END
$$;

CREATE FUNCTION settle_create_account(account_id text, participant_id text, currency text,
                                      lower_limit numeric DEFAULT 0, opening_balance numeric DEFAULT 0)
RETURNS text LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    pstatus text;
    limit_minor bigint;
BEGIN
    PERFORM settle._check_name('account_id', account_id);
    PERFORM settle._check_name('participant_id', participant_id);
    PERFORM settle._check_currency('currency', currency);
    limit_minor := settle._to_minor('lower_limit', lower_limit, currency, true);
    PERFORM settle._to_minor('opening_balance', opening_balance, currency, true);
    SELECT p.status INTO pstatus FROM settle.participant p
     WHERE p.participant_id = settle_create_account.participant_id AND NOT p.is_operator;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'participant_id "%" does not exist', participant_id
            USING ERRCODE = 'SE040', HINT = 'Create it first with settle_create_participant().';
    ELSIF pstatus <> 'active' THEN
        RAISE EXCEPTION 'participant_id "%" is not active', participant_id
            USING ERRCODE = 'SE041', DETAIL = format('Its status is %s.', pstatus);
    END IF;
    IF EXISTS (SELECT 1 FROM settle.account a WHERE a.account_id = settle_create_account.account_id) THEN
        RAISE EXCEPTION 'account_id "%" already exists', account_id
            USING ERRCODE = 'SE071', HINT = 'Account ids are unique and never reused.';
    END IF;
    INSERT INTO settle.account (account_id, participant_id, currency, lower_limit)
        VALUES (account_id, participant_id, currency, limit_minor);
    INSERT INTO settle.event (entity, entity_id, event_type, to_status, details)
        VALUES ('account', account_id, 'created', 'active',
                jsonb_build_object('participant_id', participant_id, 'currency', currency, 'lower_limit', limit_minor));
    IF opening_balance <> 0 THEN
        PERFORM settle._fund_account(account_id, opening_balance, 'opening balance');
    END IF;
    RETURN account_id;
END
$$;

CREATE FUNCTION settle_set_account_limit(account_id text, lower_limit numeric)
RETURNS numeric LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    acc settle.account;
    limit_minor bigint;
BEGIN
    PERFORM settle._check_name('account_id', account_id);
    SELECT * INTO acc FROM settle.account a
     WHERE a.account_id = settle_set_account_limit.account_id AND a.kind = 'customer' FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'account_id "%" does not exist', account_id USING ERRCODE = 'SE030';
    END IF;
    limit_minor := settle._to_minor('lower_limit', lower_limit, acc.currency, true);
    -- pending debits of two-phase cycles (80_rail.sql) count against the limit too
    IF acc.balance - acc.pending_debit < -limit_minor THEN
        RAISE EXCEPTION 'lower_limit would leave account "%" below its limit', account_id
            USING ERRCODE = 'SE072',
                  DETAIL = format('The balance is %s %s.', settle.to_major(acc.balance, acc.currency), acc.currency),
                  HINT = 'Fund the account first, or choose a limit at least as large as the overdraft.';
    END IF;
    UPDATE settle.account a SET lower_limit = limit_minor, updated_at = clock_timestamp()
     WHERE a.account_id = acc.account_id;
    INSERT INTO settle.event (entity, entity_id, event_type, details)
        VALUES ('account', account_id, 'limit_changed',
                jsonb_build_object('from', acc.lower_limit, 'to', limit_minor));
    RETURN settle.to_major(limit_minor, acc.currency);
END
$$;

CREATE FUNCTION settle_set_account_status(account_id text, status text)
RETURNS text LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    old text;
BEGIN
    PERFORM settle._check_name('account_id', account_id);
    IF status IS NULL OR status NOT IN ('active', 'frozen', 'closed') THEN
        RAISE EXCEPTION 'status must be active, frozen or closed'
            USING ERRCODE = 'SE076', DETAIL = format('status is %L.', status);
    END IF;
    SELECT a.status INTO old FROM settle.account a
     WHERE a.account_id = settle_set_account_status.account_id AND a.kind = 'customer' FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'account_id "%" does not exist', account_id USING ERRCODE = 'SE030';
    END IF;
    UPDATE settle.account a SET status = settle_set_account_status.status, updated_at = clock_timestamp()
     WHERE a.account_id = settle_set_account_status.account_id;
    INSERT INTO settle.event (entity, entity_id, event_type, from_status, to_status)
        VALUES ('account', account_id, 'status_changed', old, status);
    RETURN status;
END
$$;

-- Funds an account from the operator's external account: one balanced journal.
CREATE FUNCTION settle._fund_account(account_id text, amount numeric, reference text)
RETURNS bigint LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    acc settle.account;
    minor bigint;
    ext text;
    jid bigint;
BEGIN
    PERFORM settle._check_name('account_id', account_id);
    SELECT * INTO acc FROM settle.account a
     WHERE a.account_id = _fund_account.account_id AND a.kind = 'customer' FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'account_id "%" does not exist', account_id USING ERRCODE = 'SE030';
    ELSIF acc.status = 'closed' THEN
        RAISE EXCEPTION 'account_id "%" is not active', account_id
            USING ERRCODE = 'SE031', DETAIL = 'Its status is closed.';
    END IF;
    minor := settle._to_minor('amount', amount, acc.currency);
    ext := settle._operator_account('external', acc.currency);
    INSERT INTO settle.journal (kind, reference) VALUES ('funding', reference) RETURNING journal_id INTO jid;
    INSERT INTO settle.ledger_entry (journal_id, account_id, currency, amount)
        VALUES (jid, ext, acc.currency, -minor), (jid, acc.account_id, acc.currency, minor);
    UPDATE settle.account a SET balance = a.balance - minor, updated_at = clock_timestamp() WHERE a.account_id = ext;
    UPDATE settle.account a SET balance = a.balance + minor, updated_at = clock_timestamp() WHERE a.account_id = acc.account_id;
    INSERT INTO settle.event (entity, entity_id, event_type, details)
        VALUES ('account', acc.account_id, 'funded', jsonb_build_object('journal_id', jid, 'amount', minor, 'reference', reference,
                'postings', jsonb_build_array(
                    jsonb_build_object('account', ext, 'currency', acc.currency, 'amount', -minor),
                    jsonb_build_object('account', acc.account_id, 'currency', acc.currency, 'amount', minor))));
    RETURN jid;
END
$$;

CREATE FUNCTION settle_fund_account(account_id text, amount numeric, reference text DEFAULT NULL)
RETURNS bigint LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT settle._fund_account(account_id, amount, reference)
$$;

CREATE FUNCTION settle_set_fx_rate(base_currency text, quote_currency text, mid_rate numeric, spread_bps numeric DEFAULT 0)
RETURNS timestamptz LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    at timestamptz := clock_timestamp();
BEGIN
    PERFORM settle._check_currency('base_currency', base_currency);
    PERFORM settle._check_currency('quote_currency', quote_currency);
    IF base_currency = quote_currency THEN
        RAISE EXCEPTION 'base_currency and quote_currency must differ' USING ERRCODE = 'SE074';
    END IF;
    IF mid_rate IS NULL OR mid_rate = 'NaN' OR mid_rate <= 0 OR mid_rate = 'Infinity' THEN
        RAISE EXCEPTION 'mid_rate must be a positive finite number' USING ERRCODE = 'SE074',
            DETAIL = format('mid_rate is %s.', coalesce(mid_rate::text, 'null'));
    END IF;
    IF spread_bps IS NULL OR spread_bps = 'NaN' OR spread_bps < 0 OR spread_bps > 10000 THEN
        RAISE EXCEPTION 'spread_bps must be between 0 and 10000' USING ERRCODE = 'SE074',
            DETAIL = format('spread_bps is %s.', coalesce(spread_bps::text, 'null'));
    END IF;
    INSERT INTO settle.fx_rate VALUES (base_currency, quote_currency, mid_rate, spread_bps, at);
    INSERT INTO settle.event (entity, entity_id, event_type, details)
        VALUES ('fx_rate', base_currency || quote_currency, 'rate_set',
                jsonb_build_object('mid_rate', mid_rate, 'spread_bps', spread_bps));
    RETURN at;
END
$$;

CREATE FUNCTION settle_set_wire_fee(currency text, fee numeric, participant_id text DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    minor bigint;
BEGIN
    PERFORM settle._check_currency('currency', currency);
    IF participant_id IS NOT NULL THEN
        PERFORM settle._check_name('participant_id', participant_id);
        IF NOT EXISTS (SELECT 1 FROM settle.participant p WHERE p.participant_id = settle_set_wire_fee.participant_id) THEN
            RAISE EXCEPTION 'participant_id "%" does not exist', participant_id USING ERRCODE = 'SE040';
        END IF;
    END IF;
    IF fee IS NULL OR fee = 'NaN' OR fee < 0 THEN
        RAISE EXCEPTION 'fee must be zero or positive' USING ERRCODE = 'SE075',
            DETAIL = format('fee is %s.', coalesce(fee::text, 'null'));
    END IF;
    minor := settle._to_minor('fee', fee, currency, true);
    INSERT INTO settle.wire_fee AS w (participant_id, currency, fee)
        VALUES (participant_id, currency, minor)
        ON CONFLICT ON CONSTRAINT wire_fee_key DO UPDATE SET fee = excluded.fee;
    INSERT INTO settle.event (entity, entity_id, event_type, details)
        VALUES ('wire_fee', coalesce(participant_id, '*') || '/' || currency, 'fee_set', jsonb_build_object('fee', minor));
    RETURN minor;
END
$$;
-- settle install script, part 2: intake.

-- Waits until what this backend can see is on the synchronous standby; SE140
-- if the wait is cancelled (src/durability.c).  Answers that report a payment
-- or hand a batch to the rail call it: their own transaction may write nothing,
-- so its commit would not wait.
CREATE FUNCTION settle._wait_durable(what text) RETURNS void
AS 'MODULE_PATHNAME', 'settle_wait_durable_sql' LANGUAGE C VOLATILE STRICT;

-- The WAL position up to which commits are durable where they must be: what
-- the synchronous standby has confirmed (the local flush without one).  A
-- CDC consumer acts on a decoded transaction once its commit LSN is at or
-- below it (docs/AUDIT.md, "Streaming events out").  NULL on a standby.
-- Whether this server is a fenced restored copy, and why (src/fence.c).
CREATE FUNCTION settle_fence_state(OUT fenced boolean, OUT reason text) RETURNS record
AS 'MODULE_PATHNAME', 'settle_fence_state' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION settle_fence_state() IS
    'Whether this server is fenced (a restored copy: no cycles, intake, rail traffic or calendar jobs), and why';
-- SE153 when fenced, for the SQL functions that act on the outside world.
CREATE FUNCTION settle._check_fence(what text) RETURNS void
AS 'MODULE_PATHNAME', 'settle_check_fence_sql' LANGUAGE C VOLATILE STRICT;

CREATE FUNCTION settle_durable_lsn() RETURNS pg_lsn
AS 'MODULE_PATHNAME', 'settle_durable_lsn' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION settle_durable_lsn() IS
    'WAL position up to which commits are confirmed by the synchronous standby (local flush without one)';

CREATE FUNCTION settle_submit(
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

CREATE FUNCTION settle_submit_bulk(
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
-- settle install script, part 3: the views users read, and status look-up.
-- Amounts appear twice: exact numeric in major units, and minor units.

CREATE VIEW settle.currencies AS
    SELECT code, exponent, name FROM settle.currency;

CREATE VIEW settle.participants AS
    SELECT participant_id, name, status, created_at, updated_at
      FROM settle.participant WHERE NOT is_operator;

CREATE VIEW settle.accounts AS
    SELECT a.account_id, a.participant_id, a.currency, a.kind,
           settle.to_major(a.balance, a.currency) AS balance,
           settle.to_major(a.lower_limit, a.currency) AS lower_limit,
           settle.to_major(a.balance - a.pending_debit + a.lower_limit, a.currency) AS available,
           a.balance AS balance_minor, a.lower_limit AS lower_limit_minor,
           a.status, a.created_at, a.updated_at,
           settle.to_major(a.pending_debit, a.currency) AS pending_debit,
           settle.to_major(a.pending_credit, a.currency) AS pending_credit
      FROM settle.account a;

-- idempotency_key is the payer's: the payee sees NULL there
CREATE VIEW settle.transactions AS
    SELECT p.payment_id, p.transaction_id,
           CASE WHEN (SELECT settle.sees_all()) OR p.source_participant = (SELECT settle.current_participant())
                THEN p.idempotency_key END AS idempotency_key,
           settle.to_major(p.amount, p.source_currency) AS amount,
           p.amount AS amount_minor,
           p.source_currency, p.destination_currency,
           p.source_account, p.destination_account,
           p.source_participant, p.counterparty_id,
           settle.to_major(p.destination_amount, p.destination_currency) AS destination_amount,
           p.fx_rate, p.priority, p.deadline, p.status,
           p.created_at AS submitted_at, p.updated_at, p.settled_at, p.cycle_id,
           p.hold_reason
      FROM settle.payment p;

CREATE VIEW settle.events AS
    SELECT event_id, occurred_at, entity, entity_id, event_type,
           from_status, to_status, details
      FROM settle.event;

CREATE VIEW settle.fx_rates AS
    SELECT DISTINCT ON (base_currency, quote_currency)
           base_currency, quote_currency, mid_rate, spread_bps, valid_from
      FROM settle.fx_rate
     ORDER BY base_currency, quote_currency, valid_from DESC;

CREATE VIEW settle.wire_fees AS
    SELECT w.participant_id, w.currency, settle.to_major(w.fee, w.currency) AS fee, w.fee AS fee_minor
      FROM settle.wire_fee w;

-- Status of one payment, by transaction_id or by idempotency_key; answered
-- only once what it reports is on the synchronous standby.
CREATE FUNCTION settle_payment_status(transaction_id text DEFAULT NULL, idempotency_key text DEFAULT NULL)
RETURNS SETOF settle.transactions
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN QUERY
    SELECT t.* FROM settle.transactions t
     WHERE t.transaction_id = settle_payment_status.transaction_id
    UNION ALL
    SELECT t.* FROM settle.transactions t
     WHERE t.idempotency_key = settle_payment_status.idempotency_key
       AND t.transaction_id IS DISTINCT FROM settle_payment_status.transaction_id;
    PERFORM settle._wait_durable('the payment status');
END
$$;
-- settle install script, part 4: the settlement engine (cycles, batches).
-- A cycle takes the queue, chooses what to settle with GLPK (src/solver.c),
-- posts it as one balanced journal, and records itself with its baselines.

-- What a settled payment posted, as its event carries it: the debit on the
-- payer's account, the credit on the payee's.  Every event that posts to the
-- ledger carries such a "postings" array (docs/AUDIT.md), so that
-- settle_replay() rebuilds balances from the event log alone.
CREATE FUNCTION settle._payment_postings(source_account text, source_currency text, amount bigint,
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
CREATE FUNCTION settle._batch_wire_fixed() RETURNS trigger
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
CREATE FUNCTION settle._run_cycle(run_by text DEFAULT 'manual') RETURNS bigint
    AS 'MODULE_PATHNAME', 'settle_run_cycle_sql' LANGUAGE C VOLATILE;

-- The columns are listed, not c.*: those added after 1.0 come after 1.0's
-- (value_over_fifo), in a fresh install as in an updated database.
CREATE VIEW settle.cycles AS
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

CREATE VIEW settle.batches AS
    SELECT b.batch_id, b.cycle_id, b.participant_id, b.currency,
           settle.to_major(b.debit_total, b.currency) AS debit_total,
           settle.to_major(b.credit_total, b.currency) AS credit_total,
           settle.to_major(b.net_amount, b.currency) AS net_amount,
           b.net_amount AS net_amount_minor,
           b.payment_legs, settle.to_major(b.fee, b.currency) AS fee, b.status, b.created_at,
           b.direction, b.attempts, b.next_attempt_at, b.instructed_at, b.rail_reference,
           b.last_error, b.updated_at
      FROM settle.batch b;

CREATE VIEW settle.ledger AS
    SELECT e.entry_id, e.journal_id, j.kind AS journal_kind, j.cycle_id, e.batch_id, e.payment_id,
           e.account_id, e.currency,
           settle.to_major(e.amount, e.currency) AS amount,
           e.amount AS amount_minor, e.posted_at
      FROM settle.ledger_entry e JOIN settle.journal j USING (journal_id);

-- Runs one settlement cycle now and returns what it did.
CREATE FUNCTION settle_run_cycle() RETURNS SETOF settle.cycles
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    id bigint := settle._run_cycle('manual');
BEGIN
    RETURN QUERY SELECT * FROM settle.cycles c WHERE c.cycle_id = id;
END
$$;

-- Held payments (docs/CYCLE.md, "Held payments"): an operator releases one
-- into the queue, or cancels it (it fails, with the operator's reason).
CREATE FUNCTION settle_release_payment(payment_id bigint)
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

CREATE FUNCTION settle_cancel_payment(payment_id bigint, reason text)
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
-- settle install script, part 4.8: archiving the event log, cycles and
-- seal runs by time range (issue #15, docs/OPERATIONS.md "Archiving").
--
-- settle.event grows by every state change and never shrinks; a ledger kept
-- for years needs its old events out of the hot table without losing what
-- they prove.  settle_archive(before) moves a prefix of the sealed event
-- chain (whole transactions, every event older than `before`), the cycles
-- whose 'completed' event is in it and the older seal runs into plain tables
-- of schema settle_archive, one set per archive:
--     settle_archive.event_N, event_seal_N, cycle_N, seal_run_N
-- and records in settle.archive (append-only) the chain positions and the
-- hashes at both ends.  The live chain then starts at the next seal, whose
-- prev_hash is the archive's end_hash: settle_verify() checks the links from
-- there, settle_verify_archive(N) checks an archived chunk against the
-- recorded hashes while its tables are attached.  Detaching is the
-- operator's: dump the four tables (pg_dump -t 'settle_archive.*_N') and
-- drop them; the hashes in settle.archive still vouch for the chunk, and an
-- external copy can be attached again and verified.
--
-- What the audit functions read from the archived events is carried in
-- settle.archive_state (append-only), so that settle_replay() and
-- settle_verify() stay exact without them: each entity's last status (and
-- two-phase reservations), each payment's cycle, each account's limit and
-- the sum of its archived postings, each journal's postings per account and
-- the reference or cycle its events gave it, each batch's first event.
-- The ledger (entries, journals, ledger seals) is never archived: balances
-- as of any date and the entry chain stay whole.

CREATE TABLE settle.archive (
    archive_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    archived_before timestamptz NOT NULL,     -- the time asked for
    first_seq       bigint NOT NULL,          -- event chain positions archived
    last_seq        bigint NOT NULL,
    start_hash      bytea NOT NULL,           -- prev_hash of the first archived seal
    end_hash        bytea NOT NULL,           -- hash of the last: the live chain goes on from it
    first_event_id  bigint NOT NULL,
    last_event_id   bigint NOT NULL,
    events          bigint NOT NULL,
    cycles          bigint NOT NULL,
    seal_runs       bigint NOT NULL,
    schema_name     name NOT NULL,            -- where its tables were created
    archived_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    archived_by     text NOT NULL DEFAULT session_user,
    CHECK (last_seq >= first_seq)
);
SELECT pg_catalog.pg_extension_config_dump('settle.archive', '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('settle.archive', 'archive_id'), '');
CREATE TABLE settle.archive_state (
    archive_id      bigint NOT NULL REFERENCES settle.archive,
    entity          text NOT NULL,
    entity_id       text NOT NULL,
    field           text NOT NULL,
    value           text,
    PRIMARY KEY (entity, entity_id, field, archive_id)
);
SELECT pg_catalog.pg_extension_config_dump('settle.archive_state', '');
-- Held by settle_archive(): while it is, the append-only tables it empties
-- accept its DELETEs (settle._refuse_change); nobody is granted anything on
-- it, so no other role can take it.
CREATE TABLE settle.archive_lock ();
COMMENT ON TABLE settle.archive_lock IS 'settle: locked by settle_archive(), which alone may delete archived rows';
CREATE TRIGGER archive_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON settle.archive
    FOR EACH STATEMENT EXECUTE FUNCTION settle._refuse_change();
CREATE TRIGGER archive_state_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON settle.archive_state
    FOR EACH STATEMENT EXECUTE FUNCTION settle._refuse_change();

-- The carried value of one field (the latest archive's; balances and
-- journal postings are sums over every archive).
CREATE FUNCTION settle._archived(p_entity text, p_entity_id text, p_field text) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT s.value FROM settle.archive_state s
     WHERE s.entity = p_entity AND s.entity_id = p_entity_id AND s.field = p_field
     ORDER BY s.archive_id DESC LIMIT 1
$$;

-- The sum of one counter over every archive (metrics that count events).
CREATE FUNCTION settle._archived_count(counter text) RETURNS bigint
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT coalesce(sum(s.value::bigint), 0)::bigint FROM settle.archive_state s
     WHERE s.entity = 'counter' AND s.entity_id = counter AND s.field = 'count'
$$;

-- The event chain's base: the position and hash the live chain goes on from
-- (0 and 32 zero bytes before any archive).
CREATE FUNCTION settle._event_chain_base(OUT base_seq bigint, OUT base_hash bytea)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT coalesce(max(a.last_seq), 0),
           coalesce((SELECT a2.end_hash FROM settle.archive a2 ORDER BY a2.last_seq DESC LIMIT 1),
                    decode(repeat('00', 32), 'hex'))
      FROM settle.archive a
$$;

-- Archives every sealed event older than `before` (whole transactions, a
-- prefix of the live chain), the cycles completed by them and the seal runs
-- before the last of each chain.  Seals first; refuses while settle_verify()
-- reports a problem (an archive must carry a clean state).  Returns the new
-- archive, or no row when there is nothing to archive.
CREATE FUNCTION settle_archive(before timestamptz)
RETURNS TABLE (archive_id bigint, events bigint, cycles bigint, seal_runs bigint, first_seq bigint,
               last_seq bigint, end_hash text, tables text[])
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    base record := settle._event_chain_base();
    cut bigint;
    first_s settle.event_seal;
    last_s settle.event_seal;
    aid bigint;
    n_events bigint;
    n_cycles bigint;
    n_runs bigint;
    problems bigint;
    sch name := 'settle_archive';
    t_event text;
    t_seal text;
    t_cycle text;
    t_run text;
BEGIN
    IF before IS NULL OR before > clock_timestamp() THEN
        RAISE EXCEPTION 'archive horizon must be a time in the past' USING ERRCODE = 'SE154',
            DETAIL = format('Asked for %s.', coalesce(before::text, 'NULL'));
    END IF;
    -- one archive at a time, no seal run in between
    LOCK TABLE settle.archive_lock IN EXCLUSIVE MODE;
    PERFORM settle._seal();
    LOCK TABLE settle.seal_lock IN EXCLUSIVE MODE;
    SELECT count(*) INTO problems FROM settle._verify();
    IF problems > 0 THEN
        RAISE EXCEPTION 'the ledger does not verify: nothing archived' USING ERRCODE = 'SE155',
            DETAIL = format('settle_verify() reports %s problems.', problems),
            HINT = 'An archive carries the state its events prove: resolve what settle_verify() reports first.';
    END IF;
    -- the longest prefix of the live chain older than `before` ...
    SELECT min(x.seq) - 1 INTO cut
      FROM settle.event_seal x JOIN settle.event e ON e.event_id = x.event_id
     WHERE e.occurred_at >= before;
    IF cut IS NULL THEN
        SELECT max(x.seq) INTO cut FROM settle.event_seal x;
    END IF;
    -- ... ending with a whole transaction (its events are contiguous in the
    -- chain): if the next seal is of the same transaction, stop before it
    IF EXISTS (SELECT 1 FROM settle.event_seal x WHERE x.seq = cut + 1) THEN
        SELECT coalesce(min(x.seq) - 1, cut) INTO cut
          FROM settle.event_seal x JOIN settle.event e ON e.event_id = x.event_id
         WHERE x.seq <= cut
           AND e.xid = (SELECT e2.xid FROM settle.event_seal x2 JOIN settle.event e2 ON e2.event_id = x2.event_id
                         WHERE x2.seq = cut + 1);
    END IF;
    IF cut IS NULL OR cut <= base.base_seq THEN
        RETURN;
    END IF;
    SELECT * INTO first_s FROM settle.event_seal x WHERE x.seq = base.base_seq + 1;
    SELECT * INTO last_s FROM settle.event_seal x WHERE x.seq = cut;
    n_events := cut - base.base_seq;
    SELECT count(*) INTO n_cycles FROM settle.cycle c
     WHERE EXISTS (SELECT 1 FROM settle.event_seal x JOIN settle.event e ON e.event_id = x.event_id
                    WHERE x.seq BETWEEN first_s.seq AND last_s.seq
                      AND e.entity = 'cycle' AND e.event_type = 'completed' AND e.entity_id = c.cycle_id::text);
    SELECT count(*) INTO n_runs FROM settle.seal_run r
     WHERE r.run_id < (SELECT max(r2.run_id) FROM settle.seal_run r2 WHERE r2.chain = r.chain)
       AND r.sealed_at < before;

    INSERT INTO settle.archive (archived_before, first_seq, last_seq, start_hash, end_hash,
                                first_event_id, last_event_id, events, cycles, seal_runs, schema_name)
        VALUES (before, first_s.seq, last_s.seq, first_s.prev_hash, last_s.hash,
                first_s.event_id, last_s.event_id, n_events, n_cycles, n_runs, sch)
        RETURNING settle.archive.archive_id INTO aid;
    t_event := format('%I.%I', sch, 'event_' || aid);
    t_seal := format('%I.%I', sch, 'event_seal_' || aid);
    t_cycle := format('%I.%I', sch, 'cycle_' || aid);
    t_run := format('%I.%I', sch, 'seal_run_' || aid);
    IF to_regnamespace(sch) IS NULL THEN
        EXECUTE format('CREATE SCHEMA %I', sch);
        EXECUTE format('GRANT USAGE ON SCHEMA %I TO settle_operator, settle_auditor', sch);
    ELSIF (SELECT n.nspowner FROM pg_namespace n WHERE n.nspname = sch)
          IS DISTINCT FROM (SELECT r.oid FROM pg_roles r WHERE r.rolname = current_user) THEN
        -- a schema someone else created first: its owner could swap the archive's tables
        RAISE EXCEPTION 'schema % belongs to another role: nothing archived', sch USING ERRCODE = '42501',
            HINT = 'The archive tables are created in a schema owned by the extension''s owner; rename or drop the other one.';
    END IF;

    -- the chunk: its seals, its events, the cycles they completed, the older seal runs
    EXECUTE format('CREATE TABLE %s AS SELECT x.* FROM settle.event_seal x WHERE x.seq BETWEEN $1 AND $2', t_seal)
        USING first_s.seq, last_s.seq;
    EXECUTE format('CREATE TABLE %s AS SELECT e.* FROM settle.event e JOIN %s x USING (event_id)', t_event, t_seal);
    EXECUTE format($q$CREATE TABLE %s AS SELECT c.* FROM settle.cycle c
                       WHERE EXISTS (SELECT 1 FROM %s e WHERE e.entity = 'cycle' AND e.event_type = 'completed'
                                        AND e.entity_id = c.cycle_id::text)$q$, t_cycle, t_event);
    EXECUTE format($q$CREATE TABLE %s AS SELECT r.* FROM settle.seal_run r
                       WHERE r.run_id < (SELECT max(r2.run_id) FROM settle.seal_run r2 WHERE r2.chain = r.chain)
                         AND r.sealed_at < $1$q$, t_run) USING before;
    EXECUTE format('ALTER TABLE %s ADD PRIMARY KEY (seq)', t_seal);
    EXECUTE format('ALTER TABLE %s ADD PRIMARY KEY (event_id)', t_event);
    EXECUTE format('CREATE INDEX ON %s (entity, entity_id)', t_event);
    EXECUTE format('GRANT SELECT ON %s, %s, %s, %s TO settle_operator, settle_auditor', t_event, t_seal, t_cycle, t_run);
    EXECUTE format('COMMENT ON TABLE %s IS %L', t_event,
                   format('settle archive %s: events %s..%s (chain seals %s..%s), older than %s', aid,
                          first_s.event_id, last_s.event_id, first_s.seq, last_s.seq, before));

    -- what replay and verify read from these events, carried (docs/AUDIT.md)
    EXECUTE format($q$
        INSERT INTO settle.archive_state (archive_id, entity, entity_id, field, value)
        -- each entity's last status event: its status, and (two-phase) its reservations and cycle
        SELECT $1, l.entity, l.entity_id, 'last_status',
               jsonb_build_object('to_status', l.to_status, 'reservations', l.details->'reservations',
                                  'cycle_id', l.details->>'cycle_id')::text
          FROM (SELECT DISTINCT ON (e.entity, e.entity_id) e.*
                  FROM %1$s e
                 WHERE e.to_status IS NOT NULL AND e.entity IN ('payment', 'batch', 'participant', 'account')
                 ORDER BY e.entity, e.entity_id, e.event_id DESC) l
        UNION ALL
        -- each payment's cycle, as replay's settled_in reads it
        SELECT $1, 'payment', s.entity_id, 'cycle_id',
               CASE WHEN s.event_type <> 'requeued' THEN s.details->>'cycle_id' END
          FROM (SELECT DISTINCT ON (e.entity_id) e.*
                  FROM %1$s e
                 WHERE e.entity = 'payment' AND e.to_status IN ('settled', 'reserved', 'failed', 'queued', 'returned')
                 ORDER BY e.entity_id, e.event_id DESC) s
        UNION ALL
        -- each account's limit
        SELECT $1, 'account', m.entity_id, 'lower_limit',
               CASE m.event_type WHEN 'created' THEN m.details->>'lower_limit' ELSE m.details->>'to' END
          FROM (SELECT DISTINCT ON (e.entity_id) e.*
                  FROM %1$s e
                 WHERE e.entity = 'account' AND e.event_type IN ('created', 'limit_changed')
                 ORDER BY e.entity_id, e.event_id DESC) m
        UNION ALL
        -- the postings: per account (balances) and per journal and account
        SELECT $1, 'account', x.account, 'posted', sum(x.amount)::text
          FROM %1$s e, jsonb_to_recordset(e.details->'postings') AS x(account text, amount bigint)
         WHERE e.details ? 'postings' GROUP BY x.account
        UNION ALL
        SELECT $1, 'journal', (e.details->>'journal_id'), 'posted to ' || x.account, sum(x.amount)::text
          FROM %1$s e, jsonb_to_recordset(e.details->'postings') AS x(account text, amount bigint)
         WHERE e.details ? 'postings' GROUP BY e.details->>'journal_id', x.account
        UNION ALL
        -- what a journal's events said of it (settle_verify: journal_record_altered)
        SELECT $1, 'journal', e.details->>'journal_id', 'reference', min(e.details->>'reference')
          FROM %1$s e
         WHERE e.details ? 'journal_id' AND e.event_type IN ('funded', 'returned')
         GROUP BY e.details->>'journal_id'
        UNION ALL
        SELECT $1, 'journal', e.details->>'journal_id', 'settled_cycle', min(e.details->>'cycle_id')
          FROM %1$s e
         WHERE e.details ? 'journal_id' AND e.entity = 'payment' AND e.event_type = 'settled'
         GROUP BY e.details->>'journal_id'
        UNION ALL
        -- the events that metrics count (60_metrics.sql: settle._metrics_outbox)
        SELECT $1, 'counter', k.counter, 'count', k.n::text
          FROM (SELECT 'outbox_retries' AS counter,
                       count(*) FILTER (WHERE e.entity = 'batch' AND e.event_type = 'pending' AND e.details ? 'retry') AS n
                  FROM %1$s e
                UNION ALL
                SELECT 'cycles_voided', count(*) FILTER (WHERE e.entity = 'cycle' AND e.event_type = 'voided') FROM %1$s e
                UNION ALL
                SELECT 'pay_outs_failed', count(*) FILTER (WHERE e.entity = 'batch' AND e.event_type IN ('failed', 'returned'))
                  FROM %1$s e) k
        UNION ALL
        -- each batch's first event (settle_verify: batch_record_altered)
        SELECT $1, 'batch', f.entity_id, 'first_event', f.details::text
          FROM (SELECT DISTINCT ON (e.entity_id) e.*
                  FROM %1$s e
                 WHERE e.entity = 'batch'
                   AND NOT EXISTS (SELECT 1 FROM settle.archive_state s
                                    WHERE s.entity = 'batch' AND s.entity_id = e.entity_id AND s.field = 'first_event')
                 ORDER BY e.entity_id, e.event_id) f$q$, t_event)
        USING aid;

    -- out of the live tables (the lock above lets these DELETEs through)
    EXECUTE format('DELETE FROM settle.event e USING %s a WHERE a.event_id = e.event_id', t_event);
    EXECUTE format('DELETE FROM settle.event_seal x USING %s a WHERE a.seq = x.seq', t_seal);
    EXECUTE format('DELETE FROM settle.cycle c USING %s a WHERE a.cycle_id = c.cycle_id', t_cycle);
    EXECUTE format('DELETE FROM settle.seal_run r USING %s a WHERE a.run_id = r.run_id', t_run);

    archive_id := aid; events := n_events; cycles := n_cycles; seal_runs := n_runs;
    first_seq := first_s.seq; last_seq := last_s.seq; end_hash := encode(last_s.hash, 'hex');
    tables := ARRAY[t_event, t_seal, t_cycle, t_run];
    RETURN NEXT;
END
$$;

-- Checks one archive against what settle.archive recorded: its tables still
-- attached, its seals linking from start_hash to end_hash, every archived
-- event's content matching its seal.  One row per archive.
CREATE FUNCTION settle_verify_archive(archive bigint DEFAULT NULL)
RETURNS TABLE (archive_id bigint, attached boolean, events bigint, first_seq bigint, last_seq bigint,
               intact boolean, detail text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    a settle.archive;
    t_event text;
    t_seal text;
    bad bigint;
    n bigint;
    head bytea;
    last bigint;
BEGIN
    FOR a IN SELECT * FROM settle.archive x
              WHERE settle_verify_archive.archive IS NULL OR x.archive_id = settle_verify_archive.archive
              ORDER BY x.archive_id LOOP
        archive_id := a.archive_id; first_seq := a.first_seq; last_seq := a.last_seq;
        t_event := format('%I.%I', a.schema_name, 'event_' || a.archive_id);
        t_seal := format('%I.%I', a.schema_name, 'event_seal_' || a.archive_id);
        attached := to_regclass(t_event) IS NOT NULL AND to_regclass(t_seal) IS NOT NULL;
        IF NOT attached THEN
            events := NULL; intact := NULL;
            detail := format('detached: attach %s and %s to check them against end hash %s',
                             t_event, t_seal, left(encode(a.end_hash, 'hex'), 16));
            RETURN NEXT;
            CONTINUE;
        END IF;
        -- the links, in chain order, from start_hash
        EXECUTE format($q$
            SELECT count(*) FILTER (WHERE y.prev_hash <> coalesce(y.before_hash, $1) OR y.seq <> $2 + y.pos - 1),
                   count(*), (array_agg(y.hash ORDER BY y.seq DESC))[1], max(y.seq)
              FROM (SELECT x.seq, x.prev_hash, x.hash, lag(x.hash) OVER (ORDER BY x.seq) AS before_hash,
                           row_number() OVER (ORDER BY x.seq) AS pos
                      FROM %s x) y$q$, t_seal)
            INTO bad, n, head, last USING a.start_hash, a.first_seq;
        -- the content of every archived event against its seal
        EXECUTE format($q$
            SELECT $1 + count(*) FROM %s x LEFT JOIN %s e ON e.event_id = x.event_id
             WHERE e.event_id IS NULL
                OR sha256(x.prev_hash || settle._event_content(e.event_id, e.occurred_at, e.entity, e.entity_id,
                                                               e.event_type, e.from_status, e.to_status, e.details)) <> x.hash$q$,
                       t_seal, t_event)
            INTO bad USING bad;
        EXECUTE format('SELECT count(*) FROM %s', t_event) INTO events;
        intact := bad = 0 AND n = a.last_seq - a.first_seq + 1 AND last = a.last_seq
                  AND head IS NOT DISTINCT FROM a.end_hash AND events = n;
        detail := CASE WHEN intact THEN format('%s events, seals %s..%s link from the recorded start hash to end hash %s',
                                               events, a.first_seq, a.last_seq, left(encode(a.end_hash, 'hex'), 16))
                       ELSE format('%s broken or altered seals, %s of %s seals, %s events; head %s, recorded %s',
                                   bad, n, a.last_seq - a.first_seq + 1, events,
                                   left(encode(head, 'hex'), 16), left(encode(a.end_hash, 'hex'), 16)) END;
        RETURN NEXT;
    END LOOP;
END
$$;

-- The hash of event seal `seq` if an archive holds it: its end_hash, or the
-- seal itself while the archive's tables are attached (settle_verify_digest).
CREATE FUNCTION settle._archived_seal_hash(seq bigint) RETURNS bytea
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    a settle.archive;
    h bytea;
BEGIN
    SELECT * INTO a FROM settle.archive x WHERE seq BETWEEN x.first_seq AND x.last_seq;
    IF NOT FOUND THEN
        RETURN NULL;
    ELSIF a.last_seq = seq THEN
        RETURN a.end_hash;
    ELSIF to_regclass(format('%I.%I', a.schema_name, 'event_seal_' || a.archive_id)) IS NOT NULL THEN
        EXECUTE format('SELECT x.hash FROM %I.%I x WHERE x.seq = $1', a.schema_name, 'event_seal_' || a.archive_id)
            INTO h USING seq;
    END IF;
    RETURN h;
END
$$;

-- The archived events of one entity, from the archives still attached
-- (settle_payment_history).
CREATE FUNCTION settle._archived_events(p_entity text, p_entity_id text) RETURNS SETOF settle.event
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    a settle.archive;
BEGIN
    FOR a IN SELECT * FROM settle.archive ORDER BY archive_id LOOP
        CONTINUE WHEN to_regclass(format('%I.%I', a.schema_name, 'event_' || a.archive_id)) IS NULL;
        RETURN QUERY EXECUTE format('SELECT * FROM %I.%I e WHERE e.entity = $1 AND e.entity_id = $2 ORDER BY e.event_id',
                                    a.schema_name, 'event_' || a.archive_id)
            USING p_entity, p_entity_id;
    END LOOP;
END
$$;
-- settle install script, part 5: ledger integrity and audit (docs/AUDIT.md).
--
-- Append-only: ledger_entry, journal, event, cycle refuse UPDATE, DELETE and
-- TRUNCATE for every role, owner included (statement triggers, 00_schema.sql);
-- the seal tables below do too.
--
-- Tamper evidence: every ledger entry and every event is *sealed*: appended
-- to a hash chain, settle.ledger_seal / settle.event_seal, where
--     hash(n) = sha256(hash(n-1) || canonical content of the row)
-- and hash(0) is 32 zero bytes.  Writers never take part: a row records the
-- transaction that inserted it (column xid, default pg_current_xact_id()) and
-- settle_seal() later appends, in one pass, every row whose transaction had
-- finished before the sealer's snapshot (xid below the snapshot's xmin), so
-- intake and cycles never wait for each other or for the chain.  Sealers
-- serialise among themselves with a lock on settle.seal_lock.  The chain order is the
-- seal order (seal runs in order; within a run, by inserting transaction then
-- id), recorded in seq.  settle.seal_run logs every run and its horizon.
--
-- settle_verify() checks the whole ledger and both chains; settle_chain_digest()
-- exports the chain heads for safe keeping outside the database, and
-- settle_verify_digest() checks later that they are still in the chain.


-- Unsealed rows are found through their inserting transaction.
CREATE INDEX ledger_entry_xid ON settle.ledger_entry (xid);
CREATE INDEX event_xid ON settle.event (xid);

-- The chains.  seq is the position in the chain (1, 2, ...).
CREATE TABLE settle.ledger_seal (
    seq         bigint PRIMARY KEY,
    entry_id    bigint NOT NULL UNIQUE,
    prev_hash   bytea NOT NULL,
    hash        bytea NOT NULL,
    sealed_at   timestamptz NOT NULL DEFAULT clock_timestamp()
);
SELECT pg_catalog.pg_extension_config_dump('settle.ledger_seal', '');
CREATE TABLE settle.event_seal (
    seq         bigint PRIMARY KEY,
    event_id    bigint NOT NULL UNIQUE,
    prev_hash   bytea NOT NULL,
    hash        bytea NOT NULL,
    sealed_at   timestamptz NOT NULL DEFAULT clock_timestamp()
);
SELECT pg_catalog.pg_extension_config_dump('settle.event_seal', '');
-- One row per chain per seal run: every row of the chain's table whose
-- inserting transaction id is below sealed_below is sealed.
CREATE TABLE settle.seal_run (
    run_id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    chain           text NOT NULL CHECK (chain IN ('ledger_entry', 'event')),
    sealed_below    xid8 NOT NULL,
    rows_sealed     bigint NOT NULL,
    last_seq        bigint NOT NULL,
    last_hash       bytea NOT NULL,
    sealed_at       timestamptz NOT NULL DEFAULT clock_timestamp()
);
SELECT pg_catalog.pg_extension_config_dump('settle.seal_run', '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('settle.seal_run', 'run_id'), '');
CREATE INDEX seal_run_chain ON settle.seal_run (chain, run_id);
CREATE TRIGGER ledger_seal_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON settle.ledger_seal
    FOR EACH STATEMENT EXECUTE FUNCTION settle._refuse_change();
CREATE TRIGGER event_seal_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON settle.event_seal
    FOR EACH STATEMENT EXECUTE FUNCTION settle._refuse_change();
CREATE TRIGGER seal_run_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON settle.seal_run
    FOR EACH STATEMENT EXECUTE FUNCTION settle._refuse_change();

-- Canonical content of a row: the UTF-8 text of a JSON array of its columns
-- in a fixed order; timestamps as integer microseconds since the Unix epoch
-- (independent of the session's TimeZone and DateStyle).  Left without a
-- pinned search_path so that the planner can inline them (they are called
-- once per row); everything they name is in pg_catalog, which is always
-- searched first.
CREATE FUNCTION settle._entry_content(entry_id bigint, journal_id bigint, batch_id bigint, payment_id bigint,
                                      account_id text, currency text, amount bigint, posted_at timestamptz)
RETURNS bytea LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT pg_catalog.convert_to(pg_catalog.jsonb_build_array(
               entry_id, journal_id, batch_id, payment_id, account_id, currency, amount,
               (extract(epoch FROM posted_at) * 1000000)::bigint)::text, 'UTF8')
$$;
CREATE FUNCTION settle._event_content(event_id bigint, occurred_at timestamptz, entity text, entity_id text,
                                      event_type text, from_status text, to_status text, details jsonb)
RETURNS bytea LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT pg_catalog.convert_to(pg_catalog.jsonb_build_array(
               event_id, (extract(epoch FROM occurred_at) * 1000000)::bigint,
               entity, entity_id, event_type, from_status, to_status, details)::text, 'UTF8')
$$;

-- The chain as a running aggregate: state = hash so far (start: the
-- previous head), each row: sha256(state || content).
CREATE FUNCTION settle._chain_step(state bytea, start bytea, content bytea) RETURNS bytea
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT pg_catalog.sha256(coalesce(state, start) OPERATOR(pg_catalog.||) content)
$$;
CREATE AGGREGATE settle._chain(start bytea, content bytea) (
    SFUNC = settle._chain_step,
    STYPE = bytea
);

-- What differs between the two chains: the table, its id column, its seal
-- table, the canonical content of a row (alias e), and the words for them.
CREATE FUNCTION settle._chain_spec(which text,
    OUT tbl text, OUT id text, OUT seal_tbl text, OUT content text, OUT label text, OUT noun text)
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT v.tbl, v.id, v.seal_tbl, v.content, v.label, v.noun
      FROM (VALUES
        ('ledger_entry', 'entry_id', 'ledger_seal',
         'settle._entry_content(e.entry_id, e.journal_id, e.batch_id, e.payment_id, e.account_id, e.currency, e.amount, e.posted_at)',
         'ledger', 'entry'),
        ('event', 'event_id', 'event_seal',
         'settle._event_content(e.event_id, e.occurred_at, e.entity, e.entity_id, e.event_type, e.from_status, e.to_status, e.details)',
         'event', 'event')) v(tbl, id, seal_tbl, content, label, noun)
     WHERE v.tbl = which
$$;

-- Seals one chain up to the horizon: every row written by a transaction that
-- finished below it and not sealed yet, in (xid, id) order, each hash over
-- the previous one and the row's content.
CREATE FUNCTION settle._seal_chain(which text, horizon xid8,
    OUT sealed bigint, OUT last_seq bigint, OUT head bytea, OUT sealed_below xid8)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    c record := settle._chain_spec(which);
    low xid8;
    foreign_from xid8;
    last_seal text := format('SELECT x.seq, x.hash FROM settle.%I x ORDER BY x.seq DESC LIMIT 1', c.seal_tbl);
BEGIN
    SELECT r.sealed_below INTO low FROM settle.seal_run r
     WHERE r.chain = which ORDER BY r.run_id DESC LIMIT 1;
    low := coalesce(low, '0'::xid8);
    EXECUTE last_seal INTO last_seq, head;
    last_seq := coalesce(last_seq, 0);
    head := coalesce(head, decode(repeat('00', 32), 'hex'));
    sealed := 0;
    -- A last seal run whose horizon is ahead of this cluster's transaction
    -- ids came from another cluster: the data was restored from a dump.  Its
    -- xids say nothing here: this run seals this cluster's rows below the
    -- horizon and the restored rows that cluster had not sealed, and the
    -- windows go on from this cluster's horizon.
    IF low > pg_snapshot_xmax(pg_current_snapshot()) THEN
        -- what that cluster had not sealed has xids from its last horizon on
        foreign_from := low;
        low := '0'::xid8;
    END IF;
    IF horizon > low THEN
        -- rows already sealed are skipped: after a restore, rows with another
        -- cluster's xids can fall into a later window
        EXECUTE format($q$
            INSERT INTO settle.%1$I (seq, %2$I, prev_hash, hash)
            SELECT $1 + c.n, c.id, coalesce(lag(c.hash) OVER (ORDER BY c.n), $2), c.hash
              FROM (SELECT e.%2$I AS id, row_number() OVER w AS n, settle._chain($2, %3$s) OVER w AS hash
                      FROM settle.%4$I e
                     WHERE ((e.xid >= $3 AND e.xid < $4) OR e.xid >= $5)
                       AND NOT EXISTS (SELECT 1 FROM settle.%1$I x WHERE x.%2$I = e.%2$I)
                    WINDOW w AS (ORDER BY e.xid, e.%2$I)) c
             ORDER BY c.n$q$, c.seal_tbl, c.id, c.content, c.tbl)
            USING last_seq, head, low, horizon, foreign_from;
        GET DIAGNOSTICS sealed = ROW_COUNT;
        IF sealed > 0 THEN
            EXECUTE last_seal INTO last_seq, head;
        END IF;
        INSERT INTO settle.seal_run (chain, sealed_below, rows_sealed, last_seq, last_hash)
            VALUES (which, horizon, sealed, last_seq, head);
    END IF;
    sealed_below := greatest(horizon, low);
END
$$;

-- Seals every row of both chains whose inserting transaction has finished.
-- Returns one row per chain: rows sealed now, the chain's length and head.
CREATE FUNCTION settle._seal()
RETURNS TABLE (chain text, sealed bigint, last_seq bigint, head text, sealed_below xid8)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    horizon xid8;
    r record;
BEGIN
    IF pg_is_in_recovery() THEN
        RAISE EXCEPTION 'cannot seal on a standby' USING ERRCODE = 'SE111',
            HINT = 'The primary seals; its chains reach the standby by replication.';
    END IF;
    -- one sealer at a time (a lock no other role can take); writers are not involved
    LOCK TABLE settle.seal_lock IN EXCLUSIVE MODE;
    -- every transaction below this one has finished, so its rows are all
    -- visible to any later snapshot (also to the next statements here)
    horizon := pg_snapshot_xmin(pg_current_snapshot());
    FOREACH chain IN ARRAY ARRAY['ledger_entry', 'event'] LOOP
        r := settle._seal_chain(chain, horizon);
        sealed := r.sealed; last_seq := r.last_seq; head := encode(r.head, 'hex');
        sealed_below := r.sealed_below;
        RETURN NEXT;
    END LOOP;
END
$$;

-- The public name; the worker and settle_verify() call settle._seal(), in a
-- schema where nobody else can create an overload that makes a call by name
-- ambiguous (public is not such a schema).
CREATE FUNCTION settle_seal()
RETURNS TABLE (chain text, sealed bigint, last_seq bigint, head text, sealed_below xid8)
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT * FROM settle._seal()
$$;

-- Chain checks of one chain, shared by settle_verify(): each seal whose
-- row is gone or differs from what was sealed, each broken link, each row
-- that should be sealed and is not.  The first problem in chain order is
-- marked "first broken entry".  Problems are named chain_entry_* for the
-- ledger, chain_event_* for the events.
CREATE FUNCTION settle._verify_chain(which text)
RETURNS TABLE (problem text, entity text, entity_id text, detail text)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    c record := settle._chain_spec(which);
    low xid8;
    -- where the live chain starts: after the last archive (48_archive.sql)
    -- for the event chain, at the beginning for the ledger
    base_seq bigint := 0;
    base_hash bytea := decode(repeat('00', 32), 'hex');
BEGIN
    IF which = 'event' THEN
        SELECT b.base_seq, b.base_hash INTO base_seq, base_hash FROM settle._event_chain_base() b;
    END IF;
    SELECT r.sealed_below INTO low FROM settle.seal_run r
     WHERE r.chain = which ORDER BY r.run_id DESC LIMIT 1;
    low := coalesce(low, '0'::xid8);
    -- a seal run of another cluster (restored data) until this cluster seals:
    -- its horizon says nothing about this cluster's xids
    IF low > pg_snapshot_xmax(pg_current_snapshot()) THEN
        low := '0'::xid8;
    END IF;
    RETURN QUERY EXECUTE format($q$
        -- content: in parallel, no ordering needed
        WITH c AS (
            SELECT x.seq, x.%2$I AS id, e.%2$I IS NOT NULL AS present
              FROM settle.%3$I x LEFT JOIN settle.%1$I e ON e.%2$I = x.%2$I
             WHERE e.%2$I IS NULL OR sha256(x.prev_hash || %4$s) <> x.hash),
        -- links: the seals in chain order (primary key order, no sort)
        l AS (
            SELECT y.seq, y.id
              FROM (SELECT x.seq, x.%2$I AS id, x.prev_hash,
                           lag(x.hash) OVER (ORDER BY x.seq) AS before_hash,
                           row_number() OVER (ORDER BY x.seq) AS pos
                      FROM settle.%3$I x) y
             WHERE y.seq <> $1 + y.pos OR y.prev_hash <> coalesce(y.before_hash, $2)),
        p AS (
            SELECT coalesce(l.seq, c.seq) AS seq, coalesce(l.id, c.id) AS id,
                   CASE WHEN l.seq IS NOT NULL THEN 'chain_link_broken'
                        WHEN NOT c.present THEN 'chain_%6$s_missing'
                        ELSE 'chain_%6$s_altered' END AS kind
              FROM l FULL JOIN c ON c.seq = l.seq)
        SELECT p.kind, %1$L, p.id::text,
               format('seal %%s of the %5$s chain: %%s%%s', p.seq,
                      CASE p.kind WHEN 'chain_link_broken' THEN 'does not link to the seal before it (reordered, removed or rewritten seals)'
                                  WHEN 'chain_%6$s_missing' THEN 'the sealed %6$s no longer exists'
                                  ELSE 'the %6$s differs from the content sealed' END,
                      CASE WHEN p.seq = min(p.seq) OVER () THEN '; first broken entry' ELSE '' END)
          FROM p ORDER BY p.seq$q$, c.tbl, c.id, c.seal_tbl, c.content, c.label, c.noun)
        USING base_seq, base_hash;
    RETURN QUERY EXECUTE format($q$
        SELECT 'chain_%4$s_unsealed', %1$L, e.%2$I::text,
               format('%4$s %%s was written by transaction %%s, which had finished before the last seal run, but is not in the chain',
                      e.%2$I, e.xid)
          FROM settle.%1$I e
         WHERE e.xid < $1 AND NOT EXISTS (SELECT 1 FROM settle.%3$I x WHERE x.%2$I = e.%2$I)
         ORDER BY e.%2$I$q$, c.tbl, c.id, c.seal_tbl, c.noun)
        USING low;
END
$$;

-- Checks the whole ledger; one row per problem, none when all is well.
--   batch_unbalanced     a batch whose entries do not sum to zero (per currency)
--   journal_unbalanced   a journal whose entries do not sum to zero per currency
--   balance_mismatch     an account whose balance is not the sum of its entries
--   below_limit          a customer account below its lower limit
--   entry_account_unknown / entry_journal_unknown / entry_payment_unknown
--                        an entry naming an account (in its currency), a journal
--                        or a payment that does not exist
--   payment_not_posted / payment_posted_twice / payment_legs_wrong / payment_posted_unsettled
--                        a settled (or returned) payment without its two legs in
--                        one journal, with legs in several journals, with legs
--                        that do not match its accounts and amounts; a payment
--                        that is neither settled nor returned but has legs
--   payment_return_wrong a returned payment without exactly one reversal
--                        journal that takes back its two legs, or a payment
--                        that is not returned but has reversal legs
--   chain_*              see settle._verify_chain
-- seal => true seals first (not on a standby), so that everything finished
-- is checked against the chain.
CREATE FUNCTION settle._verify()
RETURNS TABLE (problem text, entity text, entity_id text, detail text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN

    RETURN QUERY
    SELECT 'batch_unbalanced', 'batch', b.batch_id::text,
           format('batch %s sums to %s %s, not 0', b.batch_id, settle.to_major(b.total::bigint, b.currency), b.currency)
      FROM (SELECT e.batch_id, e.currency, sum(e.amount) AS total
              FROM settle.ledger_entry e WHERE e.batch_id IS NOT NULL
             GROUP BY e.batch_id, e.currency HAVING sum(e.amount) <> 0) b
     ORDER BY b.batch_id, b.currency;

    RETURN QUERY
    SELECT 'journal_unbalanced', 'journal', j.journal_id::text,
           format('journal %s sums to %s %s, not 0', j.journal_id, settle.to_major(j.total::bigint, j.currency), j.currency)
      FROM (SELECT e.journal_id, e.currency, sum(e.amount) AS total
              FROM settle.ledger_entry e
             GROUP BY e.journal_id, e.currency HAVING sum(e.amount) <> 0) j
     ORDER BY j.journal_id, j.currency;

    RETURN QUERY
    SELECT 'balance_mismatch', 'account', a.account_id,
           format('account %s has balance %s %s but its entries sum to %s', a.account_id,
                  settle.to_major(a.balance, a.currency), a.currency,
                  settle.to_major(coalesce(t.total, 0)::bigint, a.currency))
      FROM settle.account a
      LEFT JOIN (SELECT e.account_id, sum(e.amount) AS total
                   FROM settle.ledger_entry e GROUP BY e.account_id) t ON t.account_id = a.account_id
     WHERE a.balance <> coalesce(t.total, 0)
     ORDER BY a.account_id;

    RETURN QUERY
    SELECT 'entry_account_unknown', 'ledger_entry', e.entry_id::text,
           format('entry %s posts to account %s in %s, which is not an account in that currency',
                  e.entry_id, e.account_id, e.currency)
      FROM settle.ledger_entry e
     WHERE NOT EXISTS (SELECT 1 FROM settle.account a WHERE a.account_id = e.account_id AND a.currency = e.currency)
     ORDER BY e.entry_id;

    RETURN QUERY
    SELECT 'below_limit', 'account', a.account_id,
           format('account %s: balance %s %s (pending debits %s) is below its limit of -%s', a.account_id,
                  settle.to_major(a.balance, a.currency), a.currency,
                  settle.to_major(a.pending_debit, a.currency), settle.to_major(a.lower_limit, a.currency))
      FROM settle.account a
     WHERE a.kind = 'customer' AND a.balance - a.pending_debit < -a.lower_limit
     ORDER BY a.account_id;

    -- each settled (or returned) payment: exactly one journal, a debit of its
    -- amount on the source account and a credit of its destination amount on
    -- the destination; a return's reversal journal is checked below
    RETURN QUERY
    WITH legs AS (
        SELECT e.payment_id, count(*) AS n, count(DISTINCT e.journal_id) AS journals,
               count(*) FILTER (WHERE e.amount < 0) AS debits,
               count(*) FILTER (WHERE e.amount > 0) AS credits,
               sum(-e.amount) FILTER (WHERE e.amount < 0) AS debit,
               sum(e.amount) FILTER (WHERE e.amount > 0) AS credit,
               min(e.account_id) FILTER (WHERE e.amount < 0) AS debit_account,
               min(e.account_id) FILTER (WHERE e.amount > 0) AS credit_account
          FROM settle.ledger_entry e
         WHERE e.payment_id IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM settle.journal j WHERE j.journal_id = e.journal_id AND j.kind = 'reversal')
         GROUP BY e.payment_id),
    c AS (
        SELECT p.payment_id, p.transaction_id, p.status,
               CASE
                   WHEN p.status NOT IN ('settled', 'returned') AND l.n IS NOT NULL THEN 'payment_posted_unsettled'
                   WHEN p.status NOT IN ('settled', 'returned') THEN NULL
                   WHEN l.n IS NULL THEN 'payment_not_posted'
                   WHEN l.journals > 1 OR l.debits > 1 OR l.credits > 1 THEN 'payment_posted_twice'
                   WHEN l.debits <> 1 OR l.credits <> 1
                     OR l.debit <> p.amount OR l.credit <> coalesce(p.destination_amount, p.amount)
                     OR l.debit_account <> p.source_account OR l.credit_account <> p.destination_account
                       THEN 'payment_legs_wrong'
               END AS kind,
               l.n, l.journals, l.debit, l.debit_account, l.credit, l.credit_account,
               p.amount, p.source_account, coalesce(p.destination_amount, p.amount) AS destination_amount,
               p.destination_account
          FROM settle.payment p LEFT JOIN legs l ON l.payment_id = p.payment_id)
    SELECT c.kind, 'payment', c.payment_id::text,
           format('payment %s (transaction_id %s, %s) has %s ledger entries in %s journals', c.payment_id,
                  c.transaction_id, c.status, coalesce(c.n, 0), coalesce(c.journals, 0))
           || CASE WHEN c.kind = 'payment_legs_wrong'
                   THEN format(': debit %s on %s, credit %s on %s (minor units); expected debit %s on %s, credit %s on %s',
                               c.debit, c.debit_account, c.credit, c.credit_account,
                               c.amount, c.source_account, c.destination_amount, c.destination_account)
                   ELSE '' END
      FROM c WHERE c.kind IS NOT NULL
     ORDER BY c.payment_id;

    -- each returned payment: exactly one reversal journal whose legs on the
    -- payment take back its settlement (credit its amount to the source
    -- account, debit its destination amount from the destination); no other
    -- payment has reversal legs
    RETURN QUERY
    WITH rev AS (
        SELECT e.payment_id, count(*) AS n, count(DISTINCT e.journal_id) AS journals,
               sum(e.amount) FILTER (WHERE e.amount > 0) AS credit,
               sum(-e.amount) FILTER (WHERE e.amount < 0) AS debit,
               min(e.account_id) FILTER (WHERE e.amount > 0) AS credit_account,
               min(e.account_id) FILTER (WHERE e.amount < 0) AS debit_account
          FROM settle.ledger_entry e JOIN settle.journal j ON j.journal_id = e.journal_id AND j.kind = 'reversal'
         WHERE e.payment_id IS NOT NULL
         GROUP BY e.payment_id)
    SELECT 'payment_return_wrong', 'payment', p.payment_id::text,
           format('payment %s (transaction_id %s, %s) has %s reversal entries in %s journals', p.payment_id,
                  p.transaction_id, p.status, coalesce(r.n, 0), coalesce(r.journals, 0))
      FROM settle.payment p LEFT JOIN rev r ON r.payment_id = p.payment_id
     WHERE (p.status = 'returned'
            AND (r.n IS NULL OR r.n <> 2 OR r.journals <> 1
                 OR r.credit IS DISTINCT FROM p.amount::numeric OR r.credit_account IS DISTINCT FROM p.source_account
                 OR r.debit IS DISTINCT FROM coalesce(p.destination_amount, p.amount)::numeric
                 OR r.debit_account IS DISTINCT FROM p.destination_account))
        OR (p.status <> 'returned' AND r.n IS NOT NULL)
     ORDER BY p.payment_id;

    RETURN QUERY
    SELECT 'entry_journal_unknown', 'ledger_entry', e.entry_id::text,
           format('entry %s belongs to journal %s, which does not exist', e.entry_id, e.journal_id)
      FROM settle.ledger_entry e
     WHERE NOT EXISTS (SELECT 1 FROM settle.journal j WHERE j.journal_id = e.journal_id)
     ORDER BY e.entry_id;

    -- legs of payments that do not exist
    RETURN QUERY
    SELECT 'entry_payment_unknown', 'ledger_entry', e.entry_id::text,
           format('entry %s names payment %s, which does not exist', e.entry_id, e.payment_id)
      FROM settle.ledger_entry e
     WHERE e.payment_id IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM settle.payment p WHERE p.payment_id = e.payment_id)
     ORDER BY e.entry_id;

    RETURN QUERY SELECT * FROM settle._verify_chain('ledger_entry');
    RETURN QUERY SELECT * FROM settle._verify_chain('event');

    -- the chains against the last seal run: a removed tail (entries and their
    -- seals deleted) leaves the recorded head without its seal
    RETURN QUERY
    WITH last_run AS (
        SELECT DISTINCT ON (r.chain) r.chain, r.last_seq, r.last_hash, r.run_id
          FROM settle.seal_run r WHERE r.last_seq > 0 ORDER BY r.chain, r.run_id DESC),
    heads AS (
        SELECT 'ledger_entry' AS chain, (SELECT max(x.seq) FROM settle.ledger_seal x) AS top,
               (SELECT count(*) FROM settle.ledger_seal x) AS n
        UNION ALL
        -- archived seals (48_archive.sql) count, the live chain goes on from them
        SELECT 'event', coalesce((SELECT max(x.seq) FROM settle.event_seal x), b.base_seq),
               (SELECT count(*) FROM settle.event_seal x) + b.base_seq
          FROM settle._event_chain_base() b)
    SELECT 'chain_head_missing', l.chain, l.last_seq::text,
           format('seal run %s recorded the %s chain up to seal %s (hash %s); the chain now has %s seals, up to seal %s%s',
                  l.run_id, l.chain, l.last_seq, left(encode(l.last_hash, 'hex'), 16), h.n, coalesce(h.top, 0),
                  CASE WHEN s.hash IS NOT NULL AND s.hash <> l.last_hash THEN ', and that seal has another hash' ELSE '' END)
      FROM last_run l JOIN heads h ON h.chain = l.chain
      LEFT JOIN LATERAL (SELECT x.hash FROM settle.ledger_seal x WHERE l.chain = 'ledger_entry' AND x.seq = l.last_seq
                         UNION ALL
                         SELECT x.hash FROM settle.event_seal x WHERE l.chain = 'event' AND x.seq = l.last_seq
                         UNION ALL
                         SELECT a.end_hash FROM settle.archive a WHERE l.chain = 'event' AND a.last_seq = l.last_seq) s ON true
     WHERE s.hash IS NULL OR s.hash <> l.last_hash OR h.n < l.last_seq
     ORDER BY l.chain;

    -- an emptied ledger is never clean: events that posted, seal runs that
    -- sealed entries, or balances other than zero need entries
    RETURN QUERY
    SELECT 'ledger_empty', 'ledger_entry', NULL::text,
           format('the ledger has no entries, but %s events record postings, %s seal runs sealed entries and %s accounts have a balance',
                  (SELECT count(*) FROM settle.event e WHERE e.details ? 'postings'),
                  (SELECT count(*) FROM settle.seal_run r WHERE r.chain = 'ledger_entry' AND r.last_seq > 0),
                  (SELECT count(*) FROM settle.account a WHERE a.balance <> 0))
     WHERE NOT EXISTS (SELECT 1 FROM settle.ledger_entry)
       AND (EXISTS (SELECT 1 FROM settle.event e WHERE e.details ? 'postings')
            OR EXISTS (SELECT 1 FROM settle.seal_run r WHERE r.chain = 'ledger_entry' AND r.last_seq > 0)
            OR EXISTS (SELECT 1 FROM settle.account a WHERE a.balance <> 0));

    -- rows that state money or an outcome, against the chained events that
    -- announced them: a batch (the wire sent to the rail) against its first
    -- event, a cycle record against its 'completed' event, a journal against
    -- the events that posted it
    RETURN QUERY
    SELECT 'batch_record_altered', 'batch', b.batch_id::text,
           format('batch %s: %s %s %s net %s fee %s in cycle %s, but its first event says %s %s %s net %s fee %s in cycle %s',
                  b.batch_id, b.participant_id, b.currency, b.direction, b.net_amount, b.fee, b.cycle_id,
                  coalesce(f.details->>'participant_id', '?'), coalesce(f.details->>'currency', '?'),
                  coalesce(f.details->>'direction', '?'), coalesce(f.details->>'net_amount', '?'),
                  coalesce(f.details->>'fee', '?'), coalesce(f.details->>'cycle_id', '?'))
      FROM settle.batch b
      -- its first event, archived (48_archive.sql) or live
      LEFT JOIN LATERAL (SELECT coalesce(settle._archived('batch', b.batch_id::text, 'first_event')::jsonb,
                                         (SELECT e.details FROM settle.event e
                                           WHERE e.entity = 'batch' AND e.entity_id = b.batch_id::text
                                           ORDER BY e.event_id LIMIT 1)) AS details) f ON true
     WHERE f.details IS NULL
        OR (f.details->>'net_amount')::bigint IS DISTINCT FROM b.net_amount
        OR (f.details->>'cycle_id')::bigint IS DISTINCT FROM b.cycle_id
        OR f.details->>'currency' IS DISTINCT FROM b.currency
        OR f.details->>'participant_id' IS DISTINCT FROM b.participant_id
        OR f.details->>'direction' IS DISTINCT FROM b.direction
        OR (f.details->>'fee')::bigint IS DISTINCT FROM b.fee
     ORDER BY b.batch_id;

    RETURN QUERY
    SELECT 'cycle_record_altered', 'cycle', c.cycle_id::text,
           format('cycle %s records %s settled, %s expired, %s batches, solver %s; its completed event says %s, %s, %s, %s',
                  c.cycle_id, c.settled, c.expired, c.batches, c.solver_status,
                  e.details->>'settled', e.details->>'expired', e.details->>'batches', e.details->>'solver_status')
      FROM settle.cycle c
      LEFT JOIN settle.event e ON e.entity = 'cycle' AND e.entity_id = c.cycle_id::text AND e.event_type = 'completed'
     WHERE e.event_id IS NULL
        OR (e.details->>'settled')::int IS DISTINCT FROM c.settled
        OR (e.details->>'expired')::int IS DISTINCT FROM c.expired
        OR (e.details->>'batches')::int IS DISTINCT FROM c.batches
        OR e.details->>'solver_status' IS DISTINCT FROM c.solver_status
     ORDER BY c.cycle_id;

    RETURN QUERY
    SELECT 'journal_record_altered', 'journal', j.journal_id::text,
           format('journal %s (%s, cycle %s, reference %s) does not match the events that posted it',
                  j.journal_id, j.kind, coalesce(j.cycle_id::text, 'none'), coalesce(j.reference, 'none'))
      FROM settle.journal j
     -- the events that posted it, live or carried by an archive (48_archive.sql)
     WHERE (j.kind = 'funding'
            AND NOT EXISTS (SELECT 1 FROM settle.event e
                             WHERE e.entity = 'account' AND e.event_type = 'funded'
                               AND (e.details->>'journal_id')::bigint = j.journal_id
                               AND e.details->>'reference' IS NOT DISTINCT FROM j.reference)
            AND NOT EXISTS (SELECT 1 FROM settle.archive_state s
                             WHERE s.entity = 'journal' AND s.entity_id = j.journal_id::text
                               AND s.field = 'reference' AND s.value IS NOT DISTINCT FROM j.reference))
        OR (j.kind = 'reversal'
            AND (j.cycle_id IS NOT NULL
                 OR (NOT EXISTS (SELECT 1 FROM settle.event e
                                  WHERE e.entity = 'payment' AND e.event_type = 'returned'
                                    AND (e.details->>'journal_id')::bigint = j.journal_id
                                    AND e.details->>'reference' IS NOT DISTINCT FROM j.reference)
                     AND NOT EXISTS (SELECT 1 FROM settle.archive_state s
                                      WHERE s.entity = 'journal' AND s.entity_id = j.journal_id::text
                                        AND s.field = 'reference' AND s.value IS NOT DISTINCT FROM j.reference))))
        OR (j.kind = 'settlement'
            AND ((NOT EXISTS (SELECT 1 FROM settle.event e
                               WHERE e.entity = 'payment' AND e.event_type = 'settled'
                                 AND (e.details->>'journal_id')::bigint = j.journal_id)
                  AND NOT EXISTS (SELECT 1 FROM settle.archive_state s
                                   WHERE s.entity = 'journal' AND s.entity_id = j.journal_id::text
                                     AND s.field = 'settled_cycle'))
                 OR EXISTS (SELECT 1 FROM settle.event e
                             WHERE e.entity = 'payment' AND e.event_type = 'settled'
                               AND (e.details->>'journal_id')::bigint = j.journal_id
                               AND (e.details->>'cycle_id')::bigint IS DISTINCT FROM j.cycle_id)
                 OR EXISTS (SELECT 1 FROM settle.archive_state s
                             WHERE s.entity = 'journal' AND s.entity_id = j.journal_id::text
                               AND s.field = 'settled_cycle' AND s.value::bigint IS DISTINCT FROM j.cycle_id)))
     ORDER BY j.journal_id;
END
$$;

-- Whether the calling role may seal (operators, superusers): an auditor's
-- questions write nothing.  Called with the caller's rights.
CREATE FUNCTION settle._may_seal() RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT NOT pg_is_in_recovery()
       AND (pg_has_role(current_user, 'settle_operator', 'MEMBER')
            OR (SELECT r.rolsuper FROM pg_roles r WHERE r.rolname = current_user))
$$;

-- The caller's rights: seals first only when the caller may (seal => true,
-- an operator, not a standby); then the checks, as the owner.
CREATE FUNCTION settle_verify(seal boolean DEFAULT true)
RETURNS TABLE (problem text, entity text, entity_id text, detail text)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF seal AND settle._may_seal() THEN
        PERFORM settle._seal();
    END IF;
    RETURN QUERY SELECT * FROM settle._verify();
END
$$;

-- The chain heads, to be stored outside the database (seals first).
CREATE FUNCTION settle._chain_digest()
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

-- The caller's rights: an operator's call seals first, an auditor's writes
-- nothing and exports the heads sealed so far.
CREATE FUNCTION settle_chain_digest()
RETURNS jsonb LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF settle._may_seal() THEN
        PERFORM settle._seal();
    END IF;
    RETURN settle._chain_digest();
END
$$;

-- Checks a digest from settle_chain_digest(): is each head still at its place
-- in the chain with the same hash?  (Run settle_verify() too: it checks that
-- every link up to there is intact, so a matching head vouches for every
-- entry before it.)
CREATE FUNCTION settle_verify_digest(digest jsonb)
RETURNS TABLE (chain text, seq bigint, stored_hash text, current_hash text, matches boolean)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF digest IS NULL OR digest->>'format' IS DISTINCT FROM 'settle-chain-digest/1' THEN
        RAISE EXCEPTION 'not a settle chain digest' USING ERRCODE = 'SE112',
            HINT = 'Pass the jsonb returned by settle_chain_digest().';
    END IF;
    RETURN QUERY
    SELECT c.name, (digest->c.name->>'seq')::bigint, digest->c.name->>'hash',
           encode(coalesce(l.hash, v.hash, a.hash), 'hex'),
           coalesce(encode(coalesce(l.hash, v.hash, a.hash), 'hex') = digest->c.name->>'hash', false)
      FROM (VALUES (1, 'ledger_entry'), (2, 'event')) AS c(ord, name)
      LEFT JOIN settle.ledger_seal l ON c.name = 'ledger_entry' AND l.seq = (digest->c.name->>'seq')::bigint
      LEFT JOIN settle.event_seal v ON c.name = 'event' AND v.seq = (digest->c.name->>'seq')::bigint
      -- a head since archived (48_archive.sql)
      LEFT JOIN LATERAL (SELECT settle._archived_seal_hash((digest->c.name->>'seq')::bigint) AS hash
                          WHERE c.name = 'event') a ON true
     WHERE digest ? c.name AND jsonb_typeof(digest->c.name) = 'object'
     ORDER BY c.ord;
END
$$;

-- Balance of an account as of a moment: the sum of its entries posted at or
-- before it.
CREATE FUNCTION settle_balance_as_of(account_id text, as_of timestamptz)
RETURNS TABLE (currency text, balance numeric, balance_minor bigint, entries bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    cur text;
BEGIN
    SELECT a.currency INTO cur FROM settle.account a WHERE a.account_id = settle_balance_as_of.account_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'account_id "%" does not exist', settle_balance_as_of.account_id USING ERRCODE = 'SE030';
    END IF;
    RETURN QUERY
    SELECT cur, settle.to_major(coalesce(sum(e.amount), 0)::bigint, cur), coalesce(sum(e.amount), 0)::bigint, count(*)
      FROM settle.ledger_entry e
     WHERE e.account_id = settle_balance_as_of.account_id AND e.posted_at <= settle_balance_as_of.as_of;
END
$$;

-- Everything that happened to one payment, in order: its events (also those
-- in archives still attached) and its postings (and reservations, with
-- settle.two_phase).
CREATE FUNCTION settle_payment_history(transaction_id text)
RETURNS TABLE (at timestamptz, source text, id bigint, what text, from_status text, to_status text,
               account_id text, amount numeric, journal_id bigint, batch_id bigint, details jsonb)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    pid bigint;
BEGIN
    SELECT x.payment_id INTO pid FROM settle.payment x WHERE x.transaction_id = settle_payment_history.transaction_id;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    RETURN QUERY
    SELECT h.* FROM (
        SELECT e.occurred_at, 'event'::text, e.event_id, e.event_type, e.from_status, e.to_status,
               NULL::text, NULL::numeric, (e.details->>'journal_id')::bigint, NULL::bigint, e.details
          FROM (SELECT * FROM settle._archived_events('payment', pid::text)   -- 48_archive.sql
                UNION ALL
                SELECT * FROM settle.event x WHERE x.entity = 'payment' AND x.entity_id = pid::text) e
        UNION ALL
        SELECT r.created_at, 'reservation', r.reservation_id, CASE WHEN r.amount < 0 THEN 'debit' ELSE 'credit' END,
               NULL, NULL, r.account_id, settle.to_major(r.amount, r.currency), NULL, r.batch_id,
               jsonb_build_object('cycle_id', r.cycle_id, 'currency', r.currency)
          FROM settle.reservation r WHERE r.payment_id = pid
        UNION ALL
        SELECT l.posted_at, 'ledger', l.entry_id, CASE WHEN l.amount < 0 THEN 'debit' ELSE 'credit' END,
               NULL, NULL, l.account_id, settle.to_major(l.amount, l.currency), l.journal_id, l.batch_id,
               jsonb_build_object('currency', l.currency)
          FROM settle.ledger_entry l WHERE l.payment_id = pid) h(h_at, h_source, h_id, h_what, h_from, h_to,
                                                                h_account, h_amount, h_journal, h_batch, h_details)
     ORDER BY 1, CASE h.h_source WHEN 'event' THEN 0 WHEN 'reservation' THEN 1 ELSE 2 END, 3;
END
$$;

-- Rebuilds state from the event log alone and compares it with the current
-- state: the status of every payment, batch, participant and customer
-- account, every account's lower limit, the cycle of every settled payment,
-- every account's balance, and (two-phase) the pending amounts: the
-- "reservations" of the payments whose last event is "reserved".  Every event that posted to the ledger (a
-- funding, a settled payment, a batch's or a two-phase cycle's counter-entry)
-- carries its "postings"; summed, they are the balances, and journal by
-- journal they must equal the ledger's entries.  Events moved out by
-- settle_archive() count through what their archive carried
-- (settle.archive_state, 48_archive.sql).  only_differences => false
-- returns every comparison.
CREATE FUNCTION settle_replay(only_differences boolean DEFAULT true)
RETURNS TABLE (entity text, entity_id text, field text, replayed text, current text, equal boolean)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    WITH
    -- what archives carried: the latest archive's value of each field
    carried AS (
        SELECT DISTINCT ON (s.entity, s.entity_id, s.field) s.entity, s.entity_id, s.field, s.value, s.archive_id
          FROM settle.archive_state s
         WHERE s.field IN ('last_status', 'cycle_id', 'lower_limit')
         ORDER BY s.entity, s.entity_id, s.field, s.archive_id DESC),
    last_event AS (
        SELECT DISTINCT ON (x.entity, x.entity_id) x.entity, x.entity_id, x.to_status, x.reservations, x.cycle_id
          FROM (SELECT e.entity, e.entity_id, e.to_status, e.details->'reservations' AS reservations,
                       e.details->>'cycle_id' AS cycle_id, e.event_id AS ord
                  FROM settle.event e
                 WHERE e.to_status IS NOT NULL AND e.entity IN ('payment', 'batch', 'participant', 'account')
                UNION ALL
                SELECT c.entity, c.entity_id, c.value::jsonb->>'to_status',
                       nullif(c.value::jsonb->'reservations', 'null'::jsonb), c.value::jsonb->>'cycle_id',
                       c.archive_id - 9000000000000000000
                  FROM carried c WHERE c.field = 'last_status') x
         ORDER BY x.entity, x.entity_id, x.ord DESC),
    -- the cycle of a payment's last status event; a payment requeued by a
    -- voided cycle belongs to none until a later cycle takes it
    settled_in AS (
        SELECT DISTINCT ON (x.entity_id) x.entity_id, x.cycle_id
          FROM (SELECT e.entity_id, CASE WHEN e.event_type <> 'requeued' THEN e.details->>'cycle_id' END AS cycle_id,
                       e.event_id AS ord
                  FROM settle.event e
                 WHERE e.entity = 'payment' AND e.to_status IN ('settled', 'reserved', 'failed', 'queued', 'returned')
                UNION ALL
                SELECT c.entity_id, c.value, c.archive_id - 9000000000000000000
                  FROM carried c WHERE c.entity = 'payment' AND c.field = 'cycle_id') x
         ORDER BY x.entity_id, x.ord DESC),
    limits AS (
        SELECT DISTINCT ON (x.entity_id) x.entity_id, x.lower_limit
          FROM (SELECT e.entity_id,
                       CASE e.event_type WHEN 'created' THEN e.details->>'lower_limit' ELSE e.details->>'to' END AS lower_limit,
                       e.event_id AS ord
                  FROM settle.event e
                 WHERE e.entity = 'account' AND e.event_type IN ('created', 'limit_changed')
                UNION ALL
                SELECT c.entity_id, c.value, c.archive_id - 9000000000000000000
                  FROM carried c WHERE c.entity = 'account' AND c.field = 'lower_limit') x
         ORDER BY x.entity_id, x.ord DESC),
    -- every posting announced by the event log
    posted AS (
        SELECT (e.details->>'journal_id')::bigint AS journal_id, x.account, x.amount
          FROM settle.event e,
               jsonb_to_recordset(e.details->'postings') AS x(account text, amount bigint)
         WHERE e.details ? 'postings'),
    by_journal AS (
        SELECT coalesce(p.journal_id, l.journal_id) AS journal_id, coalesce(p.account, l.account) AS account,
               p.total AS replayed, l.total AS current
          FROM (SELECT x.journal_id, x.account, sum(x.amount) AS total
                  FROM (SELECT journal_id, account, amount FROM posted
                        UNION ALL
                        SELECT s.entity_id::bigint, substr(s.field, 11), s.value::bigint
                          FROM settle.archive_state s
                         WHERE s.entity = 'journal' AND s.field LIKE 'posted to %') x
                 GROUP BY 1, 2) p
          FULL JOIN (SELECT e.journal_id, e.account_id AS account, sum(e.amount) AS total
                       FROM settle.ledger_entry e GROUP BY 1, 2) l
            ON l.journal_id = p.journal_id AND l.account = p.account),
    balances AS (
        SELECT x.account, sum(x.amount) AS total
          FROM (SELECT p.account, p.amount FROM posted p
                UNION ALL
                SELECT s.entity_id, s.value::bigint FROM settle.archive_state s
                 WHERE s.entity = 'account' AND s.field = 'posted') x
         GROUP BY x.account),
    -- two-phase: the legs of payments whose last event is "reserved" are
    -- pending, each account's net per cycle (a net debit or a net credit)
    pending_net AS (
        SELECT l.cycle_id, x.account, sum(x.amount) AS net
          FROM last_event l, jsonb_to_recordset(l.reservations) AS x(account text, amount bigint)
         WHERE l.entity = 'payment' AND l.reservations IS NOT NULL
         GROUP BY l.cycle_id, x.account),
    pending AS (
        SELECT n.account, coalesce(sum(-n.net) FILTER (WHERE n.net < 0), 0) AS debit,
               coalesce(sum(n.net) FILTER (WHERE n.net > 0), 0) AS credit
          FROM pending_net n GROUP BY n.account),
    cmp AS (
        SELECT 'payment' AS entity, p.payment_id::text AS entity_id, 'status' AS field,
               l.to_status AS replayed, p.status AS current
          FROM settle.payment p LEFT JOIN last_event l ON l.entity = 'payment' AND l.entity_id = p.payment_id::text
        UNION ALL
        SELECT 'payment', p.payment_id::text, 'cycle_id', s.cycle_id, p.cycle_id::text
          FROM settle.payment p LEFT JOIN settled_in s ON s.entity_id = p.payment_id::text
        UNION ALL
        SELECT 'batch', b.batch_id::text, 'status', l.to_status, b.status
          FROM settle.batch b LEFT JOIN last_event l ON l.entity = 'batch' AND l.entity_id = b.batch_id::text
        UNION ALL
        SELECT 'participant', x.participant_id, 'status', l.to_status, x.status
          FROM settle.participant x LEFT JOIN last_event l ON l.entity = 'participant' AND l.entity_id = x.participant_id
         WHERE NOT x.is_operator
        UNION ALL
        SELECT 'account', a.account_id, 'status', l.to_status, a.status
          FROM settle.account a LEFT JOIN last_event l ON l.entity = 'account' AND l.entity_id = a.account_id
         WHERE a.kind = 'customer'
        UNION ALL
        SELECT 'account', a.account_id, 'lower_limit', m.lower_limit, a.lower_limit::text
          FROM settle.account a LEFT JOIN limits m ON m.entity_id = a.account_id
         WHERE a.kind = 'customer'
        UNION ALL
        -- journal by journal, what the events posted to each account is what the ledger holds
        SELECT 'journal', j.journal_id::text, 'posted to ' || j.account, j.replayed::text, j.current::text
          FROM by_journal j
        UNION ALL
        SELECT 'account', a.account_id, 'balance', coalesce(b.total, 0)::text, a.balance::text
          FROM settle.account a LEFT JOIN balances b ON b.account = a.account_id
        UNION ALL
        SELECT 'account', a.account_id, 'pending_debit', coalesce(r.debit, 0)::text, a.pending_debit::text
          FROM settle.account a LEFT JOIN pending r ON r.account = a.account_id
         WHERE a.kind = 'customer'
        UNION ALL
        SELECT 'account', a.account_id, 'pending_credit', coalesce(r.credit, 0)::text, a.pending_credit::text
          FROM settle.account a LEFT JOIN pending r ON r.account = a.account_id
         WHERE a.kind = 'customer')
    SELECT c.entity, c.entity_id, c.field, c.replayed, c.current, c.replayed IS NOT DISTINCT FROM c.current
      FROM cmp c
     WHERE NOT only_differences OR c.replayed IS DISTINCT FROM c.current
     ORDER BY 1, 2, 3
$$;

-- Streaming: logical replication and CDC tools (Debezium, pg_recvlogical
-- with pgoutput) subscribe to the publication settle_events and receive
-- every event and every ledger entry in commit order.  Inserts only: nothing
-- else ever happens to these tables.  A publication cannot be a member of an
-- extension, and pg_dump dumps it as an object of its own: created by the
-- install script it made every restore fail ("already exists").  So the
-- operator creates it once, with this function; pg_dump then carries it.
CREATE FUNCTION settle_create_publication()
RETURNS text LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    -- no WARNING about wal_level on servers that do not stream
    PERFORM set_config('client_min_messages', 'error', true);
    IF EXISTS (SELECT 1 FROM pg_publication WHERE pubname = 'settle_events') THEN
        ALTER PUBLICATION settle_events SET TABLE settle.event, settle.ledger_entry;
    ELSE
        CREATE PUBLICATION settle_events FOR TABLE settle.event, settle.ledger_entry WITH (publish = 'insert');
    END IF;
    RETURN 'settle_events';
END
$$;
COMMENT ON FUNCTION settle_create_publication() IS
    'Create (or repair) the publication settle_events: every event and ledger entry, inserts only, for CDC';
-- settle install script, part 5b: the backlog between cycles (issue #18):
-- the queue as the worker last saw it, intake's refusals under overload
-- (SE093, settle.max_queued) and a stuck backlog (settle.stall_after), from
-- shared memory (src/backlog.c, src/pace.c; docs/CYCLE.md, "Pacing,
-- backpressure and a stuck backlog").

-- One row while settle is preloaded and this is the worker's database.
CREATE FUNCTION settle_backlog_status(
    OUT queued_estimate bigint, OUT arrived bigint, OUT refused bigint,
    OUT waiting bigint, OUT oldest_waiting_payment bigint, OUT oldest_waiting_since timestamptz,
    OUT stalled boolean, OUT stalled_since timestamptz, OUT stalls bigint,
    OUT cycles_without_progress integer, OUT backoff_ms double precision,
    OUT batch_delay_ms double precision, OUT arrival_rate double precision,
    OUT lone_payment_cost double precision, OUT netting_saturation double precision,
    OUT waiting_cost_per_second double precision, OUT reported_at timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'settle_backlog_status' LANGUAGE C VOLATILE;
-- the same in settle's schema, for the metrics (a name in public could be
-- made ambiguous by someone else's overload)
CREATE FUNCTION settle._backlog_status(
    OUT queued_estimate bigint, OUT arrived bigint, OUT refused bigint,
    OUT waiting bigint, OUT oldest_waiting_payment bigint, OUT oldest_waiting_since timestamptz,
    OUT stalled boolean, OUT stalled_since timestamptz, OUT stalls bigint,
    OUT cycles_without_progress integer, OUT backoff_ms double precision,
    OUT batch_delay_ms double precision, OUT arrival_rate double precision,
    OUT lone_payment_cost double precision, OUT netting_saturation double precision,
    OUT waiting_cost_per_second double precision, OUT reported_at timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'settle_backlog_status' LANGUAGE C VOLATILE;

-- backlog: what the worker's last cycle left and how it paces itself; 0 (the
-- estimate NULL, NaN in Prometheus) where this database has no worker.
CREATE FUNCTION settle._metrics_backlog()
RETURNS TABLE (metric text, labels jsonb, value double precision)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    WITH b AS (SELECT * FROM settle._backlog_status()),
         one AS (SELECT b.* FROM (SELECT 1) x LEFT JOIN b ON true)
    SELECT 'settle_backlog_queued_estimate', '{}'::jsonb, one.queued_estimate::double precision FROM one
    UNION ALL
    SELECT 'settle_intake_refused_total', '{}'::jsonb, coalesce(one.refused, 0)::double precision FROM one
    UNION ALL
    SELECT 'settle_backlog_waiting_payments', '{}'::jsonb, coalesce(one.waiting, 0)::double precision FROM one
    UNION ALL
    -- how long every cycle has left the same oldest payment waiting
    SELECT 'settle_backlog_oldest_waiting_seconds', '{}'::jsonb,
           coalesce(extract(epoch FROM clock_timestamp() - one.oldest_waiting_since), 0)::double precision FROM one
    UNION ALL
    SELECT 'settle_backlog_stalled', '{}'::jsonb, CASE WHEN one.stalled THEN 1 ELSE 0 END::double precision FROM one
    UNION ALL
    SELECT 'settle_backlog_stalls_total', '{}'::jsonb, coalesce(one.stalls, 0)::double precision FROM one
    UNION ALL
    SELECT 'settle_worker_backoff_seconds', '{}'::jsonb, coalesce(one.backoff_ms / 1000, 0)::double precision FROM one
    UNION ALL
    SELECT 'settle_worker_batch_delay_seconds', '{}'::jsonb,
           coalesce(one.batch_delay_ms / 1000, 0)::double precision FROM one
$$;
-- settle install script, part 6: metrics for operators (docs/OPERATIONS.md).
--
-- settle.metrics is one row per Prometheus sample:
--     family   which group of metrics the row belongs to (queue, cycles,
--              latency, outbox, worker, replication, backlog): filter on it, and only
--              that group is computed;
--     metric   the Prometheus name (settle_..., counters end in _total);
--     labels   the sample's labels, as jsonb;
--     value    double precision.
-- docker/exporter/queries.yaml turns it into series for the standard
-- PostgreSQL exporter.  Every metric is cheap to compute however large the
-- tables grow: cycle counters come from settle.cycle_total (kept by a
-- trigger on settle.cycle, so a scrape never scans the cycle history), the
-- queue and outbox gauges from partial indexes.
--
-- The functions run as the extension owner (aggregates only, no rows), so a
-- monitoring login needs only pg_monitor (or settle_operator,
-- settle_auditor) and SELECT on settle.metrics.


-- Histogram bucket bounds (seconds) of solver and cycle time.
CREATE FUNCTION settle._metrics_bounds() RETURNS double precision[]
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT '{0.001,0.0025,0.005,0.01,0.025,0.05,0.1,0.25,0.5,1,2.5,5}'::double precision[]
$$;

-- Cumulative bucket counts of one observation: 1 in every bucket whose bound is >= seconds.
CREATE FUNCTION settle._metrics_observe(seconds double precision) RETURNS bigint[]
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT array_agg(CASE WHEN seconds <= b THEN 1 ELSE 0 END::bigint ORDER BY i)
      FROM unnest(settle._metrics_bounds()) WITH ORDINALITY AS x(b, i)
$$;

-- Element-wise sum of two bucket arrays.
CREATE FUNCTION settle._metrics_add(a bigint[], b bigint[]) RETURNS bigint[]
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT array_agg(coalesce(x, 0) + coalesce(y, 0) ORDER BY i)
      FROM unnest(a, b) WITH ORDINALITY AS u(x, y, i)
$$;

-- Running totals of every committed cycle, per (run_by, solver_status,
-- reference currency): what the cycle counters read.  settle.cycle is
-- append-only, so totals only grow; cycles are serialised by their table
-- lock, so the upsert never waits for another cycle.
CREATE TABLE settle.cycle_total (
    run_by              text NOT NULL,
    solver_status       text NOT NULL,
    currency            text NOT NULL,
    cycles              bigint NOT NULL DEFAULT 0,
    considered          bigint NOT NULL DEFAULT 0,
    settled             bigint NOT NULL DEFAULT 0,
    deferred            bigint NOT NULL DEFAULT 0,
    unsettled           bigint NOT NULL DEFAULT 0,
    expired             bigint NOT NULL DEFAULT 0,
    settled_value       numeric NOT NULL DEFAULT 0,
    batches             bigint NOT NULL DEFAULT 0,
    wires               bigint NOT NULL DEFAULT 0,
    fee_cost            numeric NOT NULL DEFAULT 0,
    fx_cost             numeric NOT NULL DEFAULT 0,
    cost                numeric NOT NULL DEFAULT 0,
    fifo_settled        bigint NOT NULL DEFAULT 0,
    fifo_value          numeric NOT NULL DEFAULT 0,
    fifo_cost           numeric NOT NULL DEFAULT 0,
    naive_wires         bigint NOT NULL DEFAULT 0,
    naive_cost          numeric NOT NULL DEFAULT 0,
    solver_seconds_sum  double precision NOT NULL DEFAULT 0,
    solver_buckets      bigint[] NOT NULL,
    cycle_seconds_sum   double precision NOT NULL DEFAULT 0,
    cycle_buckets       bigint[] NOT NULL,
    last_finished_at    timestamptz NOT NULL,
    PRIMARY KEY (run_by, solver_status, currency)
);

-- Adds a new cycle to settle.cycle_total.
CREATE FUNCTION settle._cycle_total_add() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO settle.cycle_total AS t
           (run_by, solver_status, currency, cycles, considered, settled, deferred, unsettled, expired,
            settled_value, batches, wires, fee_cost, fx_cost, cost, fifo_settled, fifo_value, fifo_cost,
            naive_wires, naive_cost, solver_seconds_sum, solver_buckets, cycle_seconds_sum, cycle_buckets,
            last_finished_at)
    VALUES (NEW.run_by, NEW.solver_status, NEW.reference_currency, 1, NEW.considered, NEW.settled,
            NEW.deferred, NEW.unsettled, NEW.expired, NEW.settled_value, NEW.batches, NEW.wires,
            NEW.fee_cost, NEW.fx_cost, NEW.cost, NEW.fifo_settled, NEW.fifo_value, NEW.fifo_cost,
            NEW.naive_wires, NEW.naive_cost, NEW.solver_ms / 1000, settle._metrics_observe(NEW.solver_ms / 1000),
            NEW.cycle_ms / 1000, settle._metrics_observe(NEW.cycle_ms / 1000), NEW.finished_at)
    ON CONFLICT (run_by, solver_status, currency) DO UPDATE SET
        cycles = t.cycles + 1,
        considered = t.considered + excluded.considered,
        settled = t.settled + excluded.settled,
        deferred = t.deferred + excluded.deferred,
        unsettled = t.unsettled + excluded.unsettled,
        expired = t.expired + excluded.expired,
        settled_value = t.settled_value + excluded.settled_value,
        batches = t.batches + excluded.batches,
        wires = t.wires + excluded.wires,
        fee_cost = t.fee_cost + excluded.fee_cost,
        fx_cost = t.fx_cost + excluded.fx_cost,
        cost = t.cost + excluded.cost,
        fifo_settled = t.fifo_settled + excluded.fifo_settled,
        fifo_value = t.fifo_value + excluded.fifo_value,
        fifo_cost = t.fifo_cost + excluded.fifo_cost,
        naive_wires = t.naive_wires + excluded.naive_wires,
        naive_cost = t.naive_cost + excluded.naive_cost,
        solver_seconds_sum = t.solver_seconds_sum + excluded.solver_seconds_sum,
        solver_buckets = settle._metrics_add(t.solver_buckets, excluded.solver_buckets),
        cycle_seconds_sum = t.cycle_seconds_sum + excluded.cycle_seconds_sum,
        cycle_buckets = settle._metrics_add(t.cycle_buckets, excluded.cycle_buckets),
        last_finished_at = greatest(t.last_finished_at, excluded.last_finished_at);
    RETURN NULL;
END
$$;
CREATE TRIGGER cycle_total_add AFTER INSERT ON settle.cycle
    FOR EACH ROW EXECUTE FUNCTION settle._cycle_total_add();

-- queue: payments waiting, and how long the oldest has waited.
CREATE FUNCTION settle._metrics_queue()
RETURNS TABLE (metric text, labels jsonb, value double precision)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    -- queued: through the partial index payment_queued
    SELECT 'settle_queue_payments', '{"status": "queued"}'::jsonb,
           (SELECT count(*) FROM settle.payment p WHERE p.status = 'queued')::double precision
    UNION ALL
    -- held for an operator (a suspended participant, an amount that cannot be posted)
    SELECT 'settle_queue_payments', '{"status": "held"}'::jsonb,
           (SELECT count(*) FROM settle.payment p WHERE p.status = 'held')::double precision
    UNION ALL
    -- reserved (two-phase): the payments of cycles whose pay-ins are not all
    -- confirmed; such a cycle always has a pending or instructed batch
    SELECT 'settle_queue_payments', '{"status": "reserved"}'::jsonb,
           (SELECT count(*) FROM settle.payment p
             WHERE p.status = 'reserved'
               AND p.cycle_id IN (SELECT b.cycle_id FROM settle.batch b
                                   WHERE b.status = 'pending' OR b.status = 'instructed'))::double precision
    UNION ALL
    SELECT 'settle_queue_oldest_age_seconds', '{}'::jsonb,
           coalesce(extract(epoch FROM now() - (SELECT min(p.created_at) FROM settle.payment p
                                                 WHERE p.status = 'queued')), 0)::double precision
$$;

-- cycles: committed cycles and what they did, since the extension was created.
CREATE FUNCTION settle._metrics_cycles()
RETURNS TABLE (metric text, labels jsonb, value double precision)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    WITH t AS (SELECT * FROM settle.cycle_total),
    -- money is per reference currency; the current one is always present
    cur AS (SELECT t.currency, sum(t.settled_value) AS settled_value, sum(t.fee_cost) AS fee_cost,
                   sum(t.fx_cost) AS fx_cost, sum(t.cost) AS cost, sum(t.fifo_cost) AS fifo_cost,
                   sum(t.naive_cost) AS naive_cost, sum(t.fifo_value) AS fifo_value
              FROM t GROUP BY t.currency
            UNION ALL
            SELECT current_setting('settle.reference_currency'), 0, 0, 0, 0, 0, 0, 0
             WHERE NOT EXISTS (SELECT 1 FROM t WHERE t.currency = current_setting('settle.reference_currency'))),
    s AS (SELECT coalesce(sum(t.settled), 0) AS settled, coalesce(sum(t.deferred), 0) AS deferred,
                 coalesce(sum(t.unsettled), 0) AS unsettled, coalesce(sum(t.expired), 0) AS expired,
                 coalesce(sum(t.considered), 0) AS considered, coalesce(sum(t.batches), 0) AS batches,
                 coalesce(sum(t.wires), 0) AS wires, coalesce(sum(t.naive_wires), 0) AS naive_wires,
                 coalesce(sum(t.fifo_settled), 0) AS fifo_settled, max(t.last_finished_at) AS last_finished_at
            FROM t)
    SELECT 'settle_cycles_total', jsonb_build_object('run_by', r, 'solver_status', st),
           coalesce((SELECT sum(t.cycles) FROM t WHERE t.run_by = r AND t.solver_status = st), 0)::double precision
      FROM unnest(ARRAY['manual', 'worker']) r, unnest(ARRAY['optimal', 'feasible', 'heuristic', 'error']) st
    UNION ALL
    SELECT 'settle_cycle_considered_payments_total', '{}'::jsonb, s.considered FROM s
    UNION ALL
    SELECT 'settle_cycle_payments_total', jsonb_build_object('outcome', o.outcome), o.n
      FROM s, LATERAL (VALUES ('settled', s.settled), ('deferred', s.deferred),
                              ('unsettled', s.unsettled), ('expired', s.expired)) o(outcome, n)
    UNION ALL
    SELECT 'settle_batches_total', '{}'::jsonb, s.batches FROM s
    UNION ALL
    SELECT 'settle_wires_total', jsonb_build_object('method', w.method), w.n
      FROM s, LATERAL (VALUES ('settle', s.wires), ('naive', s.naive_wires), ('fifo', s.fifo_settled)) w(method, n)
    UNION ALL
    SELECT 'settle_fifo_settled_payments_total', '{}'::jsonb, s.fifo_settled FROM s
    UNION ALL
    SELECT 'settle_settled_value_total', jsonb_build_object('currency', c.currency), c.settled_value FROM cur c
    UNION ALL
    SELECT 'settle_fifo_settled_value_total', jsonb_build_object('currency', c.currency), c.fifo_value FROM cur c
    UNION ALL
    SELECT 'settle_cost_total', jsonb_build_object('currency', c.currency, 'kind', k.kind), k.v
      FROM cur c, LATERAL (VALUES ('fee', c.fee_cost), ('fx', c.fx_cost)) k(kind, v)
    UNION ALL
    SELECT 'settle_baseline_cost_total', jsonb_build_object('currency', c.currency, 'baseline', k.baseline), k.v
      FROM cur c, LATERAL (VALUES ('naive', c.naive_cost), ('fifo', c.fifo_cost)) k(baseline, v)
    UNION ALL
    -- a gauge: against FIFO, which settles fewer payments, it can be negative
    SELECT 'settle_cost_saved', jsonb_build_object('currency', c.currency, 'baseline', k.baseline), k.v
      FROM cur c, LATERAL (VALUES ('naive', c.naive_cost - c.cost), ('fifo', c.fifo_cost - c.cost)) k(baseline, v)
    UNION ALL
    -- NULL (NaN in Prometheus) until the first cycle commits; the worker's
    -- cycles that changed nothing write no record but count as committed
    SELECT 'settle_last_cycle_age_seconds', '{}'::jsonb,
           extract(epoch FROM now() - greatest(s.last_finished_at,
                                               (SELECT w.last_cycle_at FROM settle._worker_status() w)))::double precision
      FROM s
$$;

-- latency: histograms of solver time and whole-cycle time, in seconds.
CREATE FUNCTION settle._metrics_latency()
RETURNS TABLE (metric text, labels jsonb, value double precision)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    WITH h AS (
        SELECT 'settle_cycle_solver_seconds' AS name,
               coalesce((SELECT sum(t.cycles) FROM settle.cycle_total t), 0) AS n,
               coalesce((SELECT sum(t.solver_seconds_sum) FROM settle.cycle_total t), 0) AS total,
               (SELECT array_agg(x ORDER BY i) FROM (
                    SELECT i, sum(c) AS x FROM settle.cycle_total t, unnest(t.solver_buckets) WITH ORDINALITY u(c, i)
                     GROUP BY i) a) AS buckets
        UNION ALL
        SELECT 'settle_cycle_duration_seconds',
               coalesce((SELECT sum(t.cycles) FROM settle.cycle_total t), 0),
               coalesce((SELECT sum(t.cycle_seconds_sum) FROM settle.cycle_total t), 0),
               (SELECT array_agg(x ORDER BY i) FROM (
                    SELECT i, sum(c) AS x FROM settle.cycle_total t, unnest(t.cycle_buckets) WITH ORDINALITY u(c, i)
                     GROUP BY i) a))
    SELECT h.name || '_bucket', jsonb_build_object('le', b.bound::text), coalesce(h.buckets[b.i], 0)::double precision
      FROM h, unnest(settle._metrics_bounds()) WITH ORDINALITY b(bound, i)
    UNION ALL
    SELECT h.name || '_bucket', '{"le": "+Inf"}'::jsonb, h.n FROM h
    UNION ALL
    SELECT h.name || '_sum', '{}'::jsonb, h.total FROM h
    UNION ALL
    SELECT h.name || '_count', '{}'::jsonb, h.n FROM h
$$;

-- outbox (two-phase settlement): wires waiting for the rail, retries, final failures.
CREATE FUNCTION settle._metrics_outbox()
RETURNS TABLE (metric text, labels jsonb, value double precision)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    -- pending and instructed batches are read through their partial indexes
    SELECT 'settle_outbox_batches', jsonb_build_object('status', st),
           (SELECT count(*) FROM settle.batch b WHERE b.status = st)::double precision
      FROM unnest(ARRAY['pending', 'instructed']) st
    UNION ALL
    SELECT 'settle_outbox_oldest_age_seconds', '{}'::jsonb,
           coalesce(extract(epoch FROM now() - least(
               (SELECT min(b.created_at) FROM settle.batch b WHERE b.status = 'pending'),
               (SELECT min(b.created_at) FROM settle.batch b WHERE b.status = 'instructed'))), 0)::double precision
    UNION ALL
    -- counted from the events, and from what archives carried of them
    -- (48_archive.sql), so that the totals never go down
    -- every failed attempt that was scheduled again (settle_rail_fail retryable, or a time-out)
    SELECT 'settle_outbox_retries_total', '{}'::jsonb,
           ((SELECT count(*) FROM settle.event e
              WHERE e.entity = 'batch' AND e.event_type = 'pending' AND e.details ? 'retry')
            + settle._archived_count('outbox_retries'))::double precision
    UNION ALL
    -- final failures: a pay-in voids its cycle; a pay-out's payments are
    -- returned (82_returns.sql), what is left for an operator
    SELECT 'settle_outbox_final_failures_total', '{"direction": "pay_in"}'::jsonb,
           ((SELECT count(*) FROM settle.event e
              WHERE e.entity = 'cycle' AND e.event_type = 'voided')
            + settle._archived_count('cycles_voided'))::double precision
    UNION ALL
    SELECT 'settle_outbox_final_failures_total', '{"direction": "pay_out"}'::jsonb,
           ((SELECT count(*) FROM settle.event e
              WHERE e.entity = 'batch' AND e.event_type IN ('failed', 'returned'))
            + settle._archived_count('pay_outs_failed'))::double precision
$$;

-- What this server's worker has done since the server started (shared
-- memory, src/worker_state.c): rounds that committed, cycles and seals that
-- failed and were rolled back (they leave no row in any table), and the
-- last failure.  No row when settle is not in shared_preload_libraries.
CREATE FUNCTION settle_worker_status(
    OUT pid integer, OUT started_at timestamptz,
    OUT cycles_ok bigint, OUT cycles_failed bigint, OUT seals_failed bigint,
    OUT last_cycle_at timestamptz, OUT last_failure_at timestamptz,
    OUT last_failure_in text, OUT last_sqlstate text, OUT last_error text,
    OUT cycles_unchanged bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'settle_worker_status' LANGUAGE C VOLATILE;
-- the same, under a name in settle's schema for the metrics (a name in public
-- could be made ambiguous by someone else's overload)
CREATE FUNCTION settle._worker_status(
    OUT pid integer, OUT started_at timestamptz,
    OUT cycles_ok bigint, OUT cycles_failed bigint, OUT seals_failed bigint,
    OUT last_cycle_at timestamptz, OUT last_failure_at timestamptz,
    OUT last_failure_in text, OUT last_sqlstate text, OUT last_error text,
    OUT cycles_unchanged bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'settle_worker_status' LANGUAGE C VOLATILE;

-- worker and node: is the worker there and busy, is it enabled, which role this node has.
CREATE FUNCTION settle._metrics_worker()
RETURNS TABLE (metric text, labels jsonb, value double precision)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT 'settle_worker_running', '{}'::jsonb,
           (SELECT count(*) FROM pg_stat_activity a
             WHERE a.backend_type = 'settle worker' AND a.datname = current_database())::double precision
    UNION ALL
    SELECT 'settle_worker_busy', '{}'::jsonb,
           (SELECT count(*) FROM pg_stat_activity a
             WHERE a.backend_type = 'settle worker' AND a.state = 'active'
               AND a.datname = current_database())::double precision
    UNION ALL
    SELECT 'settle_worker_enabled', '{}'::jsonb,
           CASE WHEN current_setting('settle.worker_enabled', true)::boolean THEN 1 ELSE 0 END
    UNION ALL
    -- 0 where this database has no worker (not preloaded, or settle.database is another)
    SELECT 'settle_worker_cycles_failed_total', '{}'::jsonb,
           coalesce((SELECT w.cycles_failed FROM settle._worker_status() w), 0)::double precision
    UNION ALL
    -- cycles that settled and expired nothing: they write no cycle record
    SELECT 'settle_worker_cycles_unchanged_total', '{}'::jsonb,
           coalesce((SELECT w.cycles_unchanged FROM settle._worker_status() w), 0)::double precision    UNION ALL
    SELECT 'settle_worker_seals_failed_total', '{}'::jsonb,
           coalesce((SELECT w.seals_failed FROM settle._worker_status() w), 0)::double precision
    UNION ALL
    -- 1 on the primary, 0 on a replica (a standby in recovery)
    SELECT 'settle_node_primary', '{}'::jsonb, CASE WHEN pg_is_in_recovery() THEN 0 ELSE 1 END
    UNION ALL
    -- 1 on a fenced restored copy (no cycles, intake, rail or calendar until released)
    SELECT 'settle_node_fenced', '{}'::jsonb,
           CASE WHEN (SELECT f.fenced FROM @extschema@.settle_fence_state() f) THEN 1 ELSE 0 END
    UNION ALL
    -- how long a cycle (or a seal) has been waiting for the one before it, 0 if none waits
    SELECT 'settle_lock_wait_seconds', jsonb_build_object('lock', l.name),
           coalesce((SELECT max(extract(epoch FROM clock_timestamp() - k.waitstart)) FROM pg_locks k
                      WHERE k.locktype = 'relation' AND k.relation = l.rel AND NOT k.granted
                        AND k.database = (SELECT d.oid FROM pg_database d WHERE d.datname = current_database())),
                    0)::double precision
      FROM (VALUES ('cycle', 'settle.cycle_lock'::regclass), ('seal', 'settle.seal_lock'::regclass)) l(name, rel)
$$;

-- replication: on a primary, each standby's lag; on a replica, its replay delay.
CREATE FUNCTION settle._metrics_replication()
RETURNS TABLE (metric text, labels jsonb, value double precision)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT 'settle_replication_lag_bytes', jsonb_build_object('standby', r.application_name),
           pg_wal_lsn_diff(pg_current_wal_lsn(), r.replay_lsn)::double precision
      FROM pg_stat_replication r WHERE NOT pg_is_in_recovery()
    UNION ALL
    -- replay_lag is NULL once the standby has replayed everything and nothing new is written
    SELECT 'settle_replication_lag_seconds', jsonb_build_object('standby', r.application_name),
           coalesce(extract(epoch FROM r.replay_lag), 0)::double precision
      FROM pg_stat_replication r WHERE NOT pg_is_in_recovery()
    UNION ALL
    SELECT 'settle_replica_delay_seconds', '{}'::jsonb,
           CASE WHEN pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn() THEN 0
                ELSE coalesce(extract(epoch FROM now() - pg_last_xact_replay_timestamp()), 0) END::double precision
     WHERE pg_is_in_recovery()
$$;

CREATE VIEW settle.metrics AS
              SELECT 'queue'::text AS family, m.metric, m.labels, m.value FROM settle._metrics_queue() m
    UNION ALL SELECT 'cycles', m.metric, m.labels, m.value FROM settle._metrics_cycles() m
    UNION ALL SELECT 'latency', m.metric, m.labels, m.value FROM settle._metrics_latency() m
    UNION ALL SELECT 'outbox', m.metric, m.labels, m.value FROM settle._metrics_outbox() m
    UNION ALL SELECT 'worker', m.metric, m.labels, m.value FROM settle._metrics_worker() m
    UNION ALL SELECT 'replication', m.metric, m.labels, m.value FROM settle._metrics_replication() m
    UNION ALL SELECT 'backlog', m.metric, m.labels, m.value FROM settle._metrics_backlog() m;
COMMENT ON VIEW settle.metrics IS 'settle: one row per Prometheus sample (docs/OPERATIONS.md)';
-- settle install script, part 7b: telling clients at once (issue #18).
--
-- Direct mode: each committed cycle notifies settle_settled from C
-- (src/cycle.c).  Two-phase mode: payments reach their final state only when
-- the rail confirms (settled, settle._post_cycle) or a pay-in fails for good
-- (the defaulter's payments failed, settle._void_cycle); those transactions
-- notify settle_settled and settle_failed.  One payload format everywhere:
--     {"cycle": N, "part": i, "parts": n, "payments": [id, ...]}
-- with at most 400 ids per notification (far below NOTIFY's 8000 bytes).
-- Delivered when the notifying transaction commits; settle's payment ids
-- only (LISTEN has no privilege; docs/OPERATIONS.md, "Real time").

-- Notify channel with the payment ids of one cycle, in parts of at most 400.
CREATE FUNCTION settle._notify_payments(channel text, p_cycle_id bigint, ids bigint[]) RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n integer := coalesce(cardinality(ids), 0);
    per constant integer := 400;
    parts integer := (n + per - 1) / per;
    i integer;
BEGIN
    FOR i IN 1 .. parts LOOP
        -- the text of src/cycle.c's payloads, key for key
        PERFORM pg_notify(channel, format('{"cycle": %s, "part": %s, "parts": %s, "payments": [%s]}',
                                          p_cycle_id, i, parts,
                                          array_to_string(ids[(i - 1) * per + 1 : i * per], ', ')));
    END LOOP;
    RETURN parts;
END
$$;
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
CREATE FUNCTION settle._refuse_outcome_change() RETURNS trigger
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
CREATE FUNCTION settle._batch_event(b settle.batch, new_status text, details jsonb DEFAULT NULL)
RETURNS void LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    INSERT INTO settle.event (entity, entity_id, event_type, from_status, to_status, details)
    VALUES ('batch', b.batch_id::text, new_status, b.status, new_status,
            coalesce(details, '{}'::jsonb) || jsonb_build_object('cycle_id', b.cycle_id, 'attempts', b.attempts))
$$;

-- What a two-phase cycle reserved on each account: total, every reserved
-- amount (what posting adds to the balance); legs, the net of its payments'
-- legs, which the cycle counted in pending_debit (< 0) or pending_credit
-- (> 0): a participant pays in its net, as the solver's limit rule has it.
CREATE FUNCTION settle._reserved_nets(p_cycle_id bigint)
RETURNS TABLE (account_id text, total bigint, legs bigint)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT r.account_id, sum(r.amount)::bigint,
           coalesce(sum(r.amount) FILTER (WHERE r.payment_id IS NOT NULL), 0)::bigint
      FROM settle.reservation r WHERE r.cycle_id = p_cycle_id GROUP BY r.account_id
$$;

-- Posts a two-phase cycle once every pay-in is confirmed: reservations become one journal.
CREATE FUNCTION settle._post_cycle(p_cycle_id bigint) RETURNS bigint
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
CREATE FUNCTION settle._void_cycle(p_cycle_id bigint, defaulter text, reason text) RETURNS void
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
CREATE FUNCTION settle._retain_pay_in(b settle.batch) RETURNS bigint
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
CREATE FUNCTION settle_rail_fetch(max_batches integer DEFAULT 100)
RETURNS TABLE (batch_id bigint, cycle_id bigint, participant_id text, currency text,
               direction text, amount numeric, attempt integer)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    b settle.batch;
BEGIN
    PERFORM settle._check_fence('handing batches to the rail');
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
CREATE FUNCTION settle._ack_lock(p_batch_id bigint) RETURNS settle.batch
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
CREATE FUNCTION settle_rail_confirm(batch_id bigint, rail_reference text DEFAULT NULL)
RETURNS text LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    b settle.batch := settle._ack_lock(batch_id);
BEGIN
    PERFORM settle._check_fence('a rail acknowledgement');
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
CREATE FUNCTION settle_rail_fail(batch_id bigint, reason text, retryable boolean DEFAULT true)
RETURNS text LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    b settle.batch := settle._ack_lock(batch_id);
    max_attempts int := current_setting('settle.rail_max_attempts')::int;
    backoff interval := current_setting('settle.rail_backoff')::interval;
BEGIN
    PERFORM settle._check_fence('a rail acknowledgement');
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
CREATE FUNCTION settle_rail_expire() RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    id bigint;
    n int := 0;
BEGIN
    PERFORM settle._check_fence('the rail time-out job');
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
CREATE FUNCTION settle_end_of_day(business_date date DEFAULT current_date)
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n int;
BEGIN
    PERFORM settle._check_fence('the end-of-day job');
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
CREATE FUNCTION settle_purge_idempotency_keys(keep interval DEFAULT '30 days')
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n int;
BEGIN
    PERFORM settle._check_fence('the key retention job');
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
CREATE FUNCTION settle_schedule_jobs(end_of_day text DEFAULT '5 0 * * *',
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
-- settle install script, part 8.2: returns and reversals (issue #16, item 9).
--
-- A settled payment is never changed in the ledger: a return is a new
-- balanced journal (kind 'reversal') that takes back exactly what the
-- payment's settlement posted: the payee's account is debited its
-- destination amount, the payer's account credited its amount, and, across
-- currencies, the operator's settlement accounts take the two sides (the
-- return is made at the payment's own rate, so the payer gets back what it
-- paid; the operator carries the difference to today's rate).  The payment
-- becomes 'returned' (final) with an event that carries the postings, so
-- history, replay and verify see the return like any posting.
--
-- Two ways in:
--   settle_return_payment(payment_id, reason)   an operator reverses one
--                       settled payment (a recall, a fraud case, an error);
--   settle_rail_fail() on a pay-out that fails for good: the operator could
--                       not deliver that participant's net credit, so the
--                       payments into it are returned to their payers, up to
--                       the undelivered net (docs/SETTLEMENT_FLOW.md).
-- A return follows the limit rule of every posting: the payee's account may
-- not end below its limit (balance - pending_debit >= -lower_limit); if it
-- would, the return is refused (SE107) and the payment stays settled.

-- Returns one settled payment: the journal, the balances, the payment's
-- status and its event.  The caller holds the payment's row lock and has
-- checked that it is settled.  Returns the reversal journal's id.
CREATE FUNCTION settle._return_payment(p settle.payment, reason text, initiated_by text,
                                       batch_id bigint DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    dst_amount bigint := coalesce(p.destination_amount, p.amount);
    payee settle.account;
    original bigint;
    jid bigint;
    postings jsonb;
    ref text := format('return of payment %s: %s', p.payment_id, reason);
BEGIN
    SELECT * INTO payee FROM settle.account a WHERE a.account_id = p.destination_account FOR UPDATE;
    IF payee.balance - dst_amount - payee.pending_debit < -payee.lower_limit THEN
        RAISE EXCEPTION 'payment % cannot be returned: account % would go below its limit',
                        p.payment_id, payee.account_id
            USING ERRCODE = 'SE107',
                  DETAIL = format('Balance %s, pending debits %s, limit %s %s; the return debits %s.',
                                  settle.to_major(payee.balance, payee.currency),
                                  settle.to_major(payee.pending_debit, payee.currency),
                                  settle.to_major(payee.lower_limit, payee.currency), payee.currency,
                                  settle.to_major(dst_amount, payee.currency)),
                  HINT = 'Fund the account or raise its limit first; the payment stays settled.';
    END IF;
    SELECT min(e.journal_id) INTO original FROM settle.ledger_entry e
     WHERE e.payment_id = p.payment_id AND e.amount < 0;
    -- the legs that undo the settlement: the payee's and the payer's first,
    -- then (across currencies) the settlement accounts' two sides
    postings := jsonb_build_array(
        jsonb_build_object('account', p.destination_account, 'currency', p.destination_currency,
                           'amount', -dst_amount, 'payment_id', p.payment_id),
        jsonb_build_object('account', p.source_account, 'currency', p.source_currency,
                           'amount', p.amount, 'payment_id', p.payment_id));
    IF p.source_currency <> p.destination_currency THEN
        postings := postings || jsonb_build_array(
            jsonb_build_object('account', settle._operator_account('settlement', p.destination_currency),
                               'currency', p.destination_currency, 'amount', dst_amount),
            jsonb_build_object('account', settle._operator_account('settlement', p.source_currency),
                               'currency', p.source_currency, 'amount', -p.amount));
    END IF;
    INSERT INTO settle.journal (kind, cycle_id, reference) VALUES ('reversal', NULL, ref)
        RETURNING journal_id INTO jid;
    INSERT INTO settle.ledger_entry (journal_id, batch_id, payment_id, account_id, currency, amount)
        SELECT jid, NULL, (x.leg->>'payment_id')::bigint, x.leg->>'account', x.leg->>'currency',
               (x.leg->>'amount')::bigint
          FROM jsonb_array_elements(postings) WITH ORDINALITY AS x(leg, n)
         ORDER BY x.n;
    -- in account order, as a cycle's posting locks them
    UPDATE settle.account a SET balance = a.balance + d.amount, updated_at = clock_timestamp()
      FROM (SELECT x.account, sum(x.amount) AS amount
              FROM jsonb_to_recordset(postings) AS x(account text, amount bigint) GROUP BY x.account) d
     WHERE a.account_id = d.account;
    UPDATE settle.payment x SET status = 'returned', updated_at = clock_timestamp()
     WHERE x.payment_id = p.payment_id;
    INSERT INTO settle.event (entity, entity_id, event_type, from_status, to_status, details)
        VALUES ('payment', p.payment_id::text, 'returned', 'settled', 'returned',
                jsonb_build_object('journal_id', jid, 'reference', ref, 'reason', reason,
                                   'initiated_by', initiated_by, 'cycle_id', p.cycle_id,
                                   'returns_journal', original, 'batch_id', batch_id,
                                   'by', session_user::text, 'postings', postings));
    RETURN jid;
END
$$;

-- An operator returns one settled payment, with a reason.
CREATE FUNCTION settle_return_payment(payment_id bigint, reason text)
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    p settle.payment;
BEGIN
    PERFORM settle._check_fence('a return');
    IF reason IS NULL OR btrim(reason) = '' THEN
        RAISE EXCEPTION 'a return needs a reason' USING ERRCODE = 'SE108',
            HINT = 'Say why the payment is returned: it is recorded in the journal and the event.';
    END IF;
    -- one at a time with cycles, which post to the same accounts
    LOCK TABLE settle.cycle_lock IN EXCLUSIVE MODE;
    SELECT * INTO p FROM settle.payment x WHERE x.payment_id = settle_return_payment.payment_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'payment % does not exist', payment_id USING ERRCODE = 'SE103';
    ELSIF p.status <> 'settled' THEN
        RAISE EXCEPTION 'payment % is not settled', payment_id USING ERRCODE = 'SE106',
            DETAIL = format('Its status is %s.', p.status),
            HINT = 'Only a settled payment can be returned, once.';
    END IF;
    RETURN settle._return_payment(p, reason, 'operator');
END
$$;

-- A pay-out that failed for good: the participant's net credit in that
-- currency could not be delivered.  The payments of that cycle into the
-- participant's accounts of that currency are returned to their payers,
-- newest first, as long as their total stays within the undelivered net and
-- the limit rule allows each (the participant's own payments of the cycle
-- were funded by the rest of its credits, which stay).  The batch becomes
-- 'returned' when returns cover its whole net, else 'failed' with what is
-- left for an operator.  Returns the amount returned, in minor units.
CREATE FUNCTION settle._return_pay_out(b settle.batch, reason text) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    p settle.payment;
    returned bigint := 0;
    ids bigint[] := '{}';
    refused bigint[] := '{}';
    dst bigint;
BEGIN
    LOCK TABLE settle.cycle_lock IN EXCLUSIVE MODE;
    FOR p IN SELECT x.* FROM settle.payment x JOIN settle.account a ON a.account_id = x.destination_account
              WHERE x.cycle_id = b.cycle_id AND x.status = 'settled'
                AND a.participant_id = b.participant_id AND x.destination_currency = b.currency
              ORDER BY x.payment_id DESC FOR UPDATE OF x LOOP
        dst := coalesce(p.destination_amount, p.amount);
        CONTINUE WHEN returned + dst > b.net_amount;
        BEGIN
            PERFORM settle._return_payment(p, format('pay-out batch %s failed: %s', b.batch_id, reason),
                                           'rail', b.batch_id);
            returned := returned + dst;
            ids := ids || p.payment_id;
        EXCEPTION WHEN SQLSTATE 'SE107' THEN
            refused := refused || p.payment_id;
        END;
    END LOOP;
    PERFORM settle._batch_event(b, CASE WHEN returned = b.net_amount THEN 'returned' ELSE 'failed' END,
                                jsonb_build_object('error', reason, 'returned_payments', to_jsonb(ids),
                                                   'returned', returned, 'not_returned', b.net_amount - returned,
                                                   'refused_by_limit', to_jsonb(refused)));
    UPDATE settle.batch x SET status = CASE WHEN returned = b.net_amount THEN 'returned' ELSE 'failed' END,
           last_error = reason, updated_at = clock_timestamp()
     WHERE x.batch_id = b.batch_id;
    RETURN returned;
END
$$;
-- settle install script, part 8.4: linked payments, all or nothing (issue
-- #16, item 10; docs/SETTLEMENT_FLOW.md "Linked payments").
--
-- A submitter links payments into a group with link_group (a name the
-- parties choose, unique among groups: use an unguessable one, a UUID) and
-- link_size (how many payments the group has, 2 to 1000), on settle_submit
-- or in settle_submit_bulk: the two legs of an FX trade (payment versus
-- payment), a payroll batch.  A group is eligible once complete (link_size
-- members queued); a cycle then settles all of its members or none
-- (src/cycle_links.c).  A member refused at intake (settle_submit_bulk) makes
-- the group fail, an expired or failed member fails or expires the others,
-- and a group still incomplete after settle.link_timeout expires.
-- Who may join: anyone may open a group; the payer of every later member
-- must already be a party of it (the payer or the payee of a member, or of
-- the first one): a stranger who learns a group's name cannot add a payment
-- to it (SE083), and a ring of parties forms one link at a time.

CREATE TABLE settle.link_group (
    link_group      text PRIMARY KEY,
    link_size       integer NOT NULL CHECK (link_size BETWEEN 2 AND 1000),
    -- the parties of the first member: the only payers that may join
    opened_by       text NOT NULL,
    counterparty    text NOT NULL,
    members         integer NOT NULL DEFAULT 0 CHECK (members BETWEEN 0 AND link_size),
    -- open: members arriving or queued; settled: every member settled;
    -- failed / expired: every member that had not settled ended so
    status          text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'settled', 'failed', 'expired')),
    reason          text,
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at      timestamptz NOT NULL DEFAULT clock_timestamp()
);
SELECT pg_catalog.pg_extension_config_dump('settle.link_group', '');
CREATE INDEX link_group_open ON settle.link_group (created_at) WHERE status = 'open';
CREATE TABLE settle.payment_link (
    payment_id      bigint PRIMARY KEY,
    link_group      text NOT NULL REFERENCES settle.link_group
);
SELECT pg_catalog.pg_extension_config_dump('settle.payment_link', '');
CREATE INDEX payment_link_group ON settle.payment_link (link_group);
CREATE TRIGGER payment_link_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON settle.payment_link
    FOR EACH STATEMENT EXECUTE FUNCTION settle._refuse_change();

-- Intake, before its insert: may each linked row join its group?  Locks the
-- groups (creating new ones) until commit, so that concurrent joiners count
-- one at a time.  Rows whose key is already taken are left to intake (a
-- replay or a conflict).  Returns the refused rows (1-based ordinals).
CREATE FUNCTION settle._link_admit(groups text[], sizes integer[], payers text[], payees text[],
                                   keys text[])
RETURNS TABLE (ord integer, code text, message text, detail text)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    g settle.link_group;
    joining jsonb := '{}';
    parties jsonb := '{}';      -- per group: parties added by earlier rows of this call
    n integer;
BEGIN
    FOR i IN 1 .. coalesce(array_length(groups, 1), 0) LOOP
        CONTINUE WHEN EXISTS (SELECT 1 FROM settle.payment p
                               WHERE p.source_participant = payers[i] AND p.idempotency_key = keys[i]);
        INSERT INTO settle.link_group (link_group, link_size, opened_by, counterparty)
            VALUES (groups[i], sizes[i], payers[i], payees[i]) ON CONFLICT DO NOTHING;
        SELECT * INTO g FROM settle.link_group x WHERE x.link_group = groups[i] FOR UPDATE;
        n := coalesce((joining->>groups[i])::int, 0);
        ord := i;
        IF g.link_size <> sizes[i] THEN
            code := 'SE081';
            message := format('link_group "%s" has link_size %s, not %s', groups[i], g.link_size, sizes[i]);
            detail := NULL;
        ELSIF g.status <> 'open' THEN
            code := 'SE082';
            message := format('link_group "%s" is %s', groups[i], g.status);
            detail := g.reason;
        ELSIF payers[i] NOT IN (g.opened_by, g.counterparty)
              AND NOT coalesce(parties->groups[i] ? payers[i], false)
              AND NOT EXISTS (SELECT 1 FROM settle.payment_link l JOIN settle.payment p ON p.payment_id = l.payment_id
                               WHERE l.link_group = groups[i]
                                 AND payers[i] IN (p.source_participant, p.counterparty_id)) THEN
            code := 'SE083';
            message := format('participant %s is not a party of link_group "%s"', payers[i], groups[i]);
            detail := 'A payment joins a group only if its payer is already the payer or the payee of one of the group''s payments.';
        ELSIF g.members + n >= g.link_size THEN
            code := 'SE082';
            message := format('link_group "%s" already has its %s payments', groups[i], g.link_size);
            detail := NULL;
        ELSE
            joining := joining || jsonb_build_object(groups[i], n + 1);
            parties := parties || jsonb_build_object(groups[i],
                           coalesce(parties->groups[i], '[]') || jsonb_build_array(payers[i], payees[i]));
            CONTINUE;
        END IF;
        RETURN NEXT;
    END LOOP;
END
$$;

-- Intake, after its insert: the inserted linked payments join their groups.
CREATE FUNCTION settle._link_record(ids bigint[], groups text[]) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    INSERT INTO settle.payment_link (payment_id, link_group)
        SELECT x.id, x.g FROM unnest(ids, groups) AS x(id, g);
    UPDATE settle.link_group g SET members = g.members + n.k, updated_at = clock_timestamp()
      FROM (SELECT x.g, count(*)::int AS k FROM unnest(groups) AS x(g) GROUP BY x.g) n
     WHERE g.link_group = n.g;
$$;

-- Ends a group: its members that are still queued or held become
-- `outcome` ('failed' or 'expired'), each with an event naming the group.
CREATE FUNCTION settle._link_end(p_group text, outcome text, why text) RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n integer;
BEGIN
    UPDATE settle.link_group g SET status = outcome, reason = why, updated_at = clock_timestamp()
     WHERE g.link_group = p_group AND g.status = 'open';
    WITH old AS (
        SELECT p.payment_id, p.status AS was
          FROM settle.payment p JOIN settle.payment_link l ON l.payment_id = p.payment_id
         WHERE l.link_group = p_group AND p.status IN ('queued', 'held')
           FOR UPDATE OF p),
    e AS (
        UPDATE settle.payment p SET status = outcome, hold_reason = NULL, updated_at = clock_timestamp()
          FROM old WHERE p.payment_id = old.payment_id
        RETURNING p.payment_id, old.was)
    INSERT INTO settle.event (entity, entity_id, event_type, from_status, to_status, details)
        SELECT 'payment', e.payment_id::text, outcome, e.was, outcome,
               jsonb_build_object('link_group', p_group, 'reason', why)
          FROM e;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

-- Intake (settle_submit_bulk), after a linked row was refused: the group
-- fails, unless the refused payer is not one of its parties (a stranger
-- cannot fail someone else's group).  A group not created yet is created
-- failed, so that its other members are refused (SE082) rather than left
-- waiting.
CREATE FUNCTION settle._link_refused(groups text[], sizes integer[], payers text[], payees text[],
                                     reasons text[]) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    g settle.link_group;
BEGIN
    FOR i IN 1 .. coalesce(array_length(groups, 1), 0) LOOP
        INSERT INTO settle.link_group (link_group, link_size, opened_by, counterparty)
            VALUES (groups[i], greatest(least(sizes[i], 1000), 2), payers[i], payees[i]) ON CONFLICT DO NOTHING;
        SELECT * INTO g FROM settle.link_group x WHERE x.link_group = groups[i] FOR UPDATE;
        CONTINUE WHEN g.status <> 'open'
                   OR (payers[i] NOT IN (g.opened_by, g.counterparty)
                       AND NOT EXISTS (SELECT 1 FROM settle.payment_link l JOIN settle.payment p ON p.payment_id = l.payment_id
                                        WHERE l.link_group = groups[i]
                                          AND payers[i] IN (p.source_participant, p.counterparty_id)));
        PERFORM settle._link_end(groups[i], 'failed', 'a payment of the group was refused at intake: ' || reasons[i]);
    END LOOP;
END
$$;

-- Each cycle, after expiring overdue payments (src/cycle_links.c): a group
-- with an expired member expires, one with a failed member fails, an
-- incomplete one older than `timeout` (when > 0) expires, and one whose
-- members all settled is settled.  Returns how many groups ended.
CREATE FUNCTION settle._link_housekeeping(timeout interval) RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r record;
    n integer := 0;
BEGIN
    FOR r IN
        SELECT g.link_group, g.link_size, g.members, g.created_at,
               count(*) FILTER (WHERE p.status = 'expired') AS expired,
               count(*) FILTER (WHERE p.status = 'failed') AS failed,
               count(*) FILTER (WHERE p.status IN ('settled', 'returned')) AS settled,
               min(p.payment_id) FILTER (WHERE p.status IN ('expired', 'failed')) AS culprit
          FROM settle.link_group g
          JOIN settle.payment_link l ON l.link_group = g.link_group
          JOIN settle.payment p ON p.payment_id = l.payment_id
         WHERE g.status = 'open'
         GROUP BY g.link_group
        UNION ALL
        -- open groups nobody has joined (the first member was refused or rolled back)
        SELECT g.link_group, g.link_size, g.members, g.created_at, 0, 0, 0, NULL
          FROM settle.link_group g
         WHERE g.status = 'open' AND g.members = 0
         ORDER BY 1
    LOOP
        IF r.expired > 0 THEN
            PERFORM settle._link_end(r.link_group, 'expired', format('payment %s of the group expired', r.culprit));
        ELSIF r.failed > 0 THEN
            PERFORM settle._link_end(r.link_group, 'failed', format('payment %s of the group failed', r.culprit));
        ELSIF r.members < r.link_size AND timeout > interval '0' AND r.created_at < clock_timestamp() - timeout THEN
            PERFORM settle._link_end(r.link_group, 'expired',
                                     format('%s of %s payments arrived within settle.link_timeout (%s)',
                                            r.members, r.link_size, timeout));
        ELSIF r.members = r.link_size AND r.settled = r.link_size THEN
            UPDATE settle.link_group g SET status = 'settled', updated_at = clock_timestamp()
             WHERE g.link_group = r.link_group;
        ELSE
            CONTINUE;
        END IF;
        n := n + 1;
    END LOOP;
    RETURN n;
END
$$;

-- The groups as users read them: complete once every member has arrived.
CREATE VIEW settle.link_groups AS
    SELECT g.link_group, g.link_size, g.members,
           CASE WHEN g.status <> 'open' THEN g.status
                WHEN g.members < g.link_size THEN 'open'
                -- settled in a cycle since the last housekeeping
                WHEN NOT EXISTS (SELECT 1 FROM settle.payment_link l JOIN settle.payment p ON p.payment_id = l.payment_id
                                  WHERE l.link_group = g.link_group AND p.status NOT IN ('settled', 'returned'))
                     THEN 'settled'
                ELSE 'complete' END AS status,
           g.reason, g.opened_by, g.counterparty, g.created_at, g.updated_at
      FROM settle.link_group g
     WHERE (SELECT settle.sees_all())
        OR (SELECT settle.current_participant()) IN (g.opened_by, g.counterparty);
-- settle install script, part 8.5: API clients of the REST gateway
-- (settle-gateway, docs/GATEWAY.md).
--
-- An API client is a bearer token bound to one login role that
-- settle_map_role() mapped to a participant.  Only the token's SHA-256 is
-- stored: tokens are 244 random bits, so a fast unsalted hash cannot be
-- reversed by guessing (docs/SECURITY.md, "API tokens").  The gateway logs in
-- as a member of settle_gateway, resolves a token here, then submits with
-- SET ROLE to the client's role: intake's SE035/SE036 and row-level security
-- apply to the client's participant, in the database.

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'settle_gateway') THEN
        CREATE ROLE settle_gateway NOLOGIN;
    END IF;
END
$$;
COMMENT ON ROLE settle_gateway IS
    'settle: the REST gateway; member of the roles of API clients with a live token, so that it can SET ROLE to them';

CREATE TABLE settle.api_client (
    client_id       text PRIMARY KEY
                    CONSTRAINT api_client_id_check CHECK (client_id ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$'),
    role_oid        oid NOT NULL,
    role_name       name NOT NULL,
    participant_id  text NOT NULL REFERENCES settle.participant,
    token_hash      bytea NOT NULL CONSTRAINT api_client_token_hash_key UNIQUE
                    CONSTRAINT api_client_token_hash_check CHECK (length(token_hash) = 32),
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    revoked_at      timestamptz
);
SELECT pg_catalog.pg_extension_config_dump('settle.api_client', '');
COMMENT ON TABLE settle.api_client IS 'settle: API clients of settle-gateway, one bearer token each (hashed)';
COMMENT ON COLUMN settle.api_client.client_id IS 'the client''s name, chosen by the operator';
COMMENT ON COLUMN settle.api_client.role_oid IS 'the login role the gateway submits as (SET ROLE), by OID';
COMMENT ON COLUMN settle.api_client.role_name IS 'that role''s name when the token was issued';
COMMENT ON COLUMN settle.api_client.participant_id IS 'the participant the role was mapped to when the token was issued';
COMMENT ON COLUMN settle.api_client.token_hash IS 'SHA-256 of the token; the token itself is shown once and never stored';
COMMENT ON COLUMN settle.api_client.created_at IS 'when the token was issued';
COMMENT ON COLUMN settle.api_client.revoked_at IS 'when the token was revoked (NULL: live)';

-- Issue a token for a login mapped to a participant (operators).  Returns the
-- token, once.  The role is made a member-of target of settle_gateway.
CREATE FUNCTION settle_issue_api_token(client_id text, role_name name)
RETURNS text LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r_oid oid;
    p text;
    token text;
BEGIN
    IF client_id IS NULL OR client_id !~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$' THEN
        RAISE EXCEPTION 'client_id must be 1 to 128 letters, digits, "_", "." or "-", starting with a letter or digit'
            USING ERRCODE = 'SE162';
    END IF;
    SELECT r.oid INTO r_oid FROM pg_roles r WHERE r.rolname = settle_issue_api_token.role_name;
    SELECT m.participant_id INTO p FROM settle.participant_role m
     WHERE m.role_oid = r_oid AND m.role_name = settle_issue_api_token.role_name;
    IF p IS NULL THEN
        RAISE EXCEPTION 'role "%" is not mapped to a participant', role_name
            USING ERRCODE = 'SE036', HINT = 'Map it first: SELECT settle_map_role(role, participant).';
    END IF;
    IF EXISTS (SELECT 1 FROM settle.api_client c WHERE c.client_id = settle_issue_api_token.client_id) THEN
        RAISE EXCEPTION 'API client "%" already exists', client_id
            USING ERRCODE = 'SE160', HINT = 'A client keeps its id after revocation: choose another id.';
    END IF;
    -- two version-4 UUIDs from the server's strong random source: 244 random bits
    token := 'stl_' || replace(gen_random_uuid()::text, '-', '') || replace(gen_random_uuid()::text, '-', '');
    INSERT INTO settle.api_client (client_id, role_oid, role_name, participant_id, token_hash)
        VALUES (settle_issue_api_token.client_id, r_oid, settle_issue_api_token.role_name, p,
                sha256(convert_to(token, 'UTF8')));
    IF NOT pg_has_role('settle_gateway', r_oid, 'MEMBER') THEN
        EXECUTE format('GRANT %I TO settle_gateway', role_name);
    END IF;
    INSERT INTO settle.event (entity, entity_id, event_type, details)
        VALUES ('participant', p, 'api_client_issued',
                jsonb_build_object('client_id', client_id, 'role', role_name));
    RETURN token;
END
$$;

-- Revoke a client's token (operators).  The gateway stops accepting it
-- within its auth cache's lifetime (docs/GATEWAY.md); once the role has no
-- live token left, settle_gateway stops being a member of it.
CREATE FUNCTION settle_revoke_api_token(client_id text)
RETURNS boolean LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    c settle.api_client;
BEGIN
    SELECT * INTO c FROM settle.api_client a WHERE a.client_id = settle_revoke_api_token.client_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'API client "%" does not exist', client_id USING ERRCODE = 'SE161';
    END IF;
    IF c.revoked_at IS NOT NULL THEN
        RETURN false;
    END IF;
    UPDATE settle.api_client a SET revoked_at = clock_timestamp() WHERE a.client_id = c.client_id;
    IF NOT EXISTS (SELECT 1 FROM settle.api_client a WHERE a.role_oid = c.role_oid AND a.revoked_at IS NULL)
       AND EXISTS (SELECT 1 FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.member
                    WHERE m.roleid = c.role_oid AND g.rolname = 'settle_gateway')
       AND EXISTS (SELECT 1 FROM pg_roles r WHERE r.oid = c.role_oid) THEN
        EXECUTE format('REVOKE %I FROM settle_gateway', (SELECT r.rolname FROM pg_roles r WHERE r.oid = c.role_oid));
    END IF;
    INSERT INTO settle.event (entity, entity_id, event_type, details)
        VALUES ('participant', c.participant_id, 'api_client_revoked',
                jsonb_build_object('client_id', c.client_id, 'role', c.role_name));
    RETURN true;
END
$$;

-- The gateway's look-up of a bearer token: the client, its role and its
-- participant, or no row (unknown or revoked token, role dropped, renamed or
-- mapped to another participant since).
CREATE FUNCTION settle_api_authenticate(token text,
    OUT client_id text, OUT role_name name, OUT participant_id text)
RETURNS SETOF record LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT c.client_id, r.rolname, c.participant_id
      FROM settle.api_client c
      JOIN pg_roles r ON r.oid = c.role_oid AND r.rolname = c.role_name
      JOIN settle.participant_role m ON m.role_oid = c.role_oid AND m.participant_id = c.participant_id
     WHERE c.token_hash = sha256(convert_to(token, 'UTF8')) AND c.revoked_at IS NULL
$$;

-- What the gateway's health endpoint reports about the database it reaches.
CREATE FUNCTION settle_gateway_health(
    OUT primary_node boolean, OUT worker_enabled boolean, OUT worker_running boolean,
    OUT last_cycle_age_seconds double precision,
    OUT synchronous_standby_required boolean, OUT synchronous_standbys integer)
RETURNS record LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT NOT pg_is_in_recovery(),
           coalesce(current_setting('settle.worker_enabled', true)::boolean, false)
               AND current_setting('settle.database', true) = current_database(),
           EXISTS (SELECT 1 FROM pg_stat_activity a
                    WHERE a.backend_type = 'settle worker' AND a.datname = current_database()),
           -- the worker's last cycle (it records no row for a cycle that changed nothing), else the last recorded one
           extract(epoch FROM clock_timestamp() - coalesce(
               (SELECT w.last_cycle_at FROM settle._worker_status() w),
               (SELECT c.finished_at FROM settle.cycle c ORDER BY c.cycle_id DESC LIMIT 1)))::double precision,
           current_setting('synchronous_standby_names') <> '',
           (SELECT count(*)::integer FROM pg_stat_replication r
             WHERE r.sync_state IN ('sync', 'quorum') AND NOT pg_is_in_recovery())
$$;

REVOKE ALL ON settle.api_client FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.settle_issue_api_token(text, name), @extschema@.settle_revoke_api_token(text),
    @extschema@.settle_api_authenticate(text), @extschema@.settle_gateway_health() FROM PUBLIC;
GRANT SELECT (client_id, role_name, participant_id, created_at, revoked_at) ON settle.api_client
    TO settle_operator, settle_auditor;
GRANT EXECUTE ON FUNCTION @extschema@.settle_issue_api_token(text, name), @extschema@.settle_revoke_api_token(text)
    TO settle_operator;
GRANT EXECUTE ON FUNCTION @extschema@.settle_api_authenticate(text), @extschema@.settle_gateway_health()
    TO settle_gateway;
GRANT EXECUTE ON FUNCTION @extschema@.settle_gateway_health() TO settle_operator, settle_auditor, pg_monitor;

COMMENT ON FUNCTION @extschema@.settle_issue_api_token(text, name) IS
    'Issue a bearer token for settle-gateway bound to a mapped login (operators); returns the token, shown once';
COMMENT ON FUNCTION @extschema@.settle_revoke_api_token(text) IS
    'Revoke an API client''s token (operators); false if it was already revoked';
COMMENT ON FUNCTION @extschema@.settle_api_authenticate(text) IS
    'The live API client of a bearer token, its role and participant (settle-gateway)';
COMMENT ON FUNCTION @extschema@.settle_gateway_health() IS
    'Primary or standby, worker, age of the last cycle, synchronous standbys: settle-gateway''s health check';
-- settle install script, part 8.5: liquidity prices and funding advice
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
-- settle install script, part 8.6: liquidity forecast (docs/LIQUIDITY.md).
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
-- A family added in 60_metrics.sql must be added here too.
CREATE OR REPLACE VIEW settle.metrics AS
              SELECT 'queue'::text AS family, m.metric, m.labels, m.value FROM settle._metrics_queue() m
    UNION ALL SELECT 'cycles', m.metric, m.labels, m.value FROM settle._metrics_cycles() m
    UNION ALL SELECT 'latency', m.metric, m.labels, m.value FROM settle._metrics_latency() m
    UNION ALL SELECT 'outbox', m.metric, m.labels, m.value FROM settle._metrics_outbox() m
    UNION ALL SELECT 'worker', m.metric, m.labels, m.value FROM settle._metrics_worker() m
    UNION ALL SELECT 'replication', m.metric, m.labels, m.value FROM settle._metrics_replication() m
    UNION ALL SELECT 'backlog', m.metric, m.labels, m.value FROM settle._metrics_backlog() m
    UNION ALL SELECT 'liquidity', m.metric, m.labels, m.value FROM settle._metrics_liquidity() m;
-- settle install script, part 8.7: verifiable statements (docs/AUDIT.md,
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
-- settle install script, part 9: roles, privileges, row-level security:
-- every GRANT, REVOKE and policy of the extension, in one place.
--
--   settle_submitter  submits payments and reads its own participant's
--                     payments, accounts, batches, ledger lines and events;
--   settle_operator   reference data, cycles, all rows;
--   settle_auditor    reads everything, changes nothing.
-- Nothing is granted to PUBLIC.  Functions that write run as the extension
-- owner (SECURITY DEFINER, search_path pinned to pg_catalog, pg_temp, every
-- object schema-qualified, so a caller's objects cannot shadow ours).
-- Intake runs with the caller's rights and switches to the owner itself
-- (src/intake.c), so that it knows which participant is submitting.
-- The roles themselves are created first thing, in 00_schema.sql.

-- Removes the mappings of roles that no longer exist (with an event each).
CREATE FUNCTION settle.forget_dropped_roles() RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n integer;
BEGIN
    WITH gone AS (
        DELETE FROM settle.participant_role m
         WHERE NOT EXISTS (SELECT 1 FROM pg_roles r WHERE r.oid = m.role_oid)
           -- a name that still exists under another OID: restored data, left to settle_remap_roles()
           AND NOT EXISTS (SELECT 1 FROM pg_roles r WHERE r.rolname = m.role_name)
        RETURNING m.role_oid, m.role_name, m.participant_id),
    ev AS (
        INSERT INTO settle.event (entity, entity_id, event_type, details)
        SELECT 'participant', g.participant_id, 'role_unmapped',
               jsonb_build_object('role', g.role_name, 'role_oid', g.role_oid, 'reason', 'role dropped')
          FROM gone g)
    SELECT count(*) INTO n FROM gone;
    RETURN n;
END
$$;


-- After a restore into another cluster the roles have new OIDs: map each
-- mapping's role name to the role of that name now (operators; an event each).
CREATE FUNCTION settle_remap_roles()
RETURNS TABLE (role_name name, participant_id text, old_oid oid, new_oid oid)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN QUERY
    WITH moved AS (
        UPDATE settle.participant_role m SET role_oid = r.oid
          FROM pg_roles r, settle.participant_role o
         WHERE r.rolname = m.role_name AND r.oid <> m.role_oid AND o.role_oid = m.role_oid
           AND NOT EXISTS (SELECT 1 FROM pg_roles x WHERE x.oid = m.role_oid AND x.rolname = m.role_name)
        RETURNING m.role_name, m.participant_id, o.role_oid AS old_oid, m.role_oid AS new_oid),
    ev AS (
        INSERT INTO settle.event (entity, entity_id, event_type, details)
        SELECT 'participant', v.participant_id, 'role_remapped',
               jsonb_build_object('role', v.role_name, 'old_oid', v.old_oid, 'new_oid', v.new_oid)
          FROM moved v)
    SELECT v.role_name, v.participant_id, v.old_oid, v.new_oid FROM moved v;
END
$$;

-- Map a login to a participant and make it a submitter (operators).
CREATE FUNCTION settle_map_role(role_name name, participant_id text)
RETURNS text LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles r WHERE r.rolname = settle_map_role.role_name) THEN
        RAISE EXCEPTION 'role "%" does not exist', role_name USING ERRCODE = 'SE036';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM settle.participant p
                    WHERE p.participant_id = settle_map_role.participant_id AND NOT p.is_operator) THEN
        RAISE EXCEPTION 'participant_id "%" does not exist', participant_id USING ERRCODE = 'SE040';
    END IF;
    PERFORM settle.forget_dropped_roles();
    INSERT INTO settle.participant_role AS m
        SELECT r.oid, r.rolname, settle_map_role.participant_id FROM pg_roles r WHERE r.rolname = settle_map_role.role_name
        ON CONFLICT ON CONSTRAINT participant_role_pkey
        DO UPDATE SET participant_id = excluded.participant_id, role_name = excluded.role_name;
    EXECUTE format('GRANT settle_submitter TO %I', role_name);
    INSERT INTO settle.event (entity, entity_id, event_type, details)
        VALUES ('participant', participant_id, 'role_mapped', jsonb_build_object('role', role_name));
    RETURN participant_id;
END
$$;

-- Nothing for PUBLIC: not the tables, not the functions.
REVOKE ALL ON ALL TABLES IN SCHEMA settle FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA settle FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA settle FROM PUBLIC;
DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN SELECT p.oid::regprocedure FROM pg_proc p
              WHERE p.pronamespace = '@extschema@'::regnamespace AND p.proname LIKE 'settle\_%' LOOP
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
    END LOOP;
END
$$;

-- Writers run as the owner.
ALTER FUNCTION @extschema@.settle_create_participant(text, text) SECURITY DEFINER;
ALTER FUNCTION @extschema@.settle_set_participant_status(text, text) SECURITY DEFINER;
ALTER FUNCTION @extschema@.settle_create_account(text, text, text, numeric, numeric) SECURITY DEFINER;
ALTER FUNCTION @extschema@.settle_set_account_limit(text, numeric) SECURITY DEFINER;
ALTER FUNCTION @extschema@.settle_set_account_status(text, text) SECURITY DEFINER;
ALTER FUNCTION @extschema@.settle_fund_account(text, numeric, text) SECURITY DEFINER;
ALTER FUNCTION @extschema@.settle_set_fx_rate(text, text, numeric, numeric) SECURITY DEFINER;
ALTER FUNCTION @extschema@.settle_set_wire_fee(text, numeric, text) SECURITY DEFINER;
ALTER FUNCTION @extschema@.settle_run_cycle() SECURITY DEFINER;
-- intake: the caller's rights, a pinned search_path
ALTER FUNCTION @extschema@.settle_submit(text, numeric, text, text, text, text, text, text, integer, timestamptz, text, integer)
    SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION @extschema@.settle_submit_bulk(jsonb) SET search_path = pg_catalog, pg_temp;

-- Readers see through the views with their own rights, so row-level security applies.
ALTER VIEW settle.currencies SET (security_invoker = true);
ALTER VIEW settle.participants SET (security_invoker = true);
ALTER VIEW settle.accounts SET (security_invoker = true);
ALTER VIEW settle.transactions SET (security_invoker = true);
ALTER VIEW settle.events SET (security_invoker = true);
ALTER VIEW settle.fx_rates SET (security_invoker = true);
ALTER VIEW settle.wire_fees SET (security_invoker = true);
ALTER VIEW settle.cycles SET (security_invoker = true);
ALTER VIEW settle.batches SET (security_invoker = true);
ALTER VIEW settle.ledger SET (security_invoker = true);

-- Row-level security: a participant's rows only, unless the role sees all.
-- The role tests are scalar subqueries, so that each is computed once per
-- query (an InitPlan), not once per row.
ALTER TABLE settle.payment ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_payments ON settle.payment FOR SELECT
    USING ((SELECT settle.sees_all()) OR source_participant = (SELECT settle.current_participant())
           OR counterparty_id = (SELECT settle.current_participant()));
ALTER TABLE settle.account ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_accounts ON settle.account FOR SELECT
    USING ((SELECT settle.sees_all()) OR participant_id = (SELECT settle.current_participant()));
ALTER TABLE settle.ledger_entry ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_entries ON settle.ledger_entry FOR SELECT
    USING ((SELECT settle.sees_all()) OR EXISTS (SELECT 1 FROM settle.account a
                                         WHERE a.account_id = ledger_entry.account_id
                                           AND a.participant_id = (SELECT settle.current_participant())));
-- a journal is visible when one of its entries is: funding references and
-- settlement timing of other participants stay theirs
ALTER TABLE settle.journal ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_journals ON settle.journal FOR SELECT
    USING ((SELECT settle.sees_all())
           OR journal_id IN (SELECT e.journal_id FROM settle.ledger_entry e
                              WHERE e.account_id IN (SELECT a.account_id FROM settle.account a
                                                      WHERE a.participant_id = (SELECT settle.current_participant()))));
ALTER TABLE settle.batch ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_batches ON settle.batch FOR SELECT
    USING ((SELECT settle.sees_all()) OR participant_id = (SELECT settle.current_participant()));
ALTER TABLE settle.event ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_events ON settle.event FOR SELECT
    USING ((SELECT settle.sees_all())
           -- by primary key (the CASE keeps the cast away from other entities' ids)
           OR (entity = 'payment' AND EXISTS (SELECT 1 FROM settle.payment p WHERE p.payment_id =
                   CASE WHEN event.entity = 'payment' THEN event.entity_id::bigint END))
           OR (entity = 'account' AND EXISTS (SELECT 1 FROM settle.account a WHERE a.account_id = event.entity_id))
           OR (entity = 'participant' AND entity_id = (SELECT settle.current_participant())));
ALTER TABLE settle.participant_role ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_mapping ON settle.participant_role FOR SELECT
    USING ((SELECT settle.sees_all())
           OR (role_oid = (SELECT r.oid FROM pg_roles r WHERE r.rolname = current_user) AND role_name = current_user));

-- Grants.
GRANT USAGE ON SCHEMA settle TO settle_submitter, settle_operator, settle_auditor;
GRANT EXECUTE ON FUNCTION settle.to_major(bigint, text), settle.current_participant(), settle.sees_all(),
                          settle._wait_durable(text)
    TO settle_submitter, settle_operator, settle_auditor;
GRANT SELECT ON settle.currency, settle.participant, settle.fx_rate, settle.wire_fee, settle.journal,
                settle.payment, settle.account, settle.ledger_entry, settle.batch, settle.event,
                settle.participant_role
    TO settle_submitter, settle_operator, settle_auditor;
GRANT SELECT ON settle.currencies, settle.participants, settle.accounts, settle.transactions,
                settle.events, settle.fx_rates, settle.wire_fees, settle.batches, settle.ledger
    TO settle_submitter, settle_operator, settle_auditor;
GRANT SELECT ON settle.cycle, settle.cycles TO settle_operator, settle_auditor;
-- linked payments (84_links.sql): each party sees its groups through the view
GRANT SELECT ON settle.link_groups TO settle_submitter, settle_operator, settle_auditor;
GRANT SELECT ON settle.link_group, settle.payment_link TO settle_operator, settle_auditor;
GRANT EXECUTE ON FUNCTION @extschema@.settle_submit(text, numeric, text, text, text, text, text, text, integer, timestamptz, text, integer),
                          @extschema@.settle_submit_bulk(jsonb),
                          @extschema@.settle_payment_status(text, text)
    TO settle_submitter, settle_operator;
GRANT EXECUTE ON FUNCTION @extschema@.settle_payment_status(text, text) TO settle_auditor;
GRANT EXECUTE ON FUNCTION @extschema@.settle_durable_lsn(), @extschema@.settle_fence_state()
    TO settle_operator, settle_auditor, pg_monitor;
GRANT EXECUTE ON FUNCTION settle._check_fence(text) TO settle_submitter, settle_operator, settle_auditor;
GRANT EXECUTE ON FUNCTION @extschema@.settle_create_participant(text, text),
                          @extschema@.settle_set_participant_status(text, text),
                          @extschema@.settle_create_account(text, text, text, numeric, numeric),
                          @extschema@.settle_set_account_limit(text, numeric),
                          @extschema@.settle_set_account_status(text, text),
                          @extschema@.settle_fund_account(text, numeric, text),
                          @extschema@.settle_set_fx_rate(text, text, numeric, numeric),
                          @extschema@.settle_set_wire_fee(text, numeric, text),
                          @extschema@.settle_run_cycle(),
                          @extschema@.settle_release_payment(bigint),
                          @extschema@.settle_cancel_payment(bigint, text),
                          @extschema@.settle_map_role(name, text),
                          @extschema@.settle_remap_roles()
    TO settle_operator;

-- Archives (48_archive.sql): operators archive; auditors and operators read
-- and check them.
REVOKE ALL ON settle.archive, settle.archive_state, settle.archive_lock FROM PUBLIC;
GRANT SELECT ON settle.archive, settle.archive_state TO settle_operator, settle_auditor;
REVOKE ALL ON FUNCTION @extschema@.settle_archive(timestamptz), @extschema@.settle_verify_archive(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.settle_archive(timestamptz) TO settle_operator;
GRANT EXECUTE ON FUNCTION @extschema@.settle_verify_archive(bigint) TO settle_operator, settle_auditor;

-- Audit (50_audit.sql): auditors and operators ask the questions, operators seal.
REVOKE ALL ON settle.ledger_seal, settle.event_seal, settle.seal_run FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.settle_create_publication() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.settle_create_publication() TO settle_operator;
REVOKE ALL ON FUNCTION @extschema@.settle_seal(), @extschema@.settle_verify(boolean),
    settle._seal(), settle._verify(), settle._may_seal(), settle._chain_digest(),
    @extschema@.settle_chain_digest(), @extschema@.settle_verify_digest(jsonb),
    @extschema@.settle_balance_as_of(text, timestamptz), @extschema@.settle_payment_history(text),
    @extschema@.settle_replay(boolean), settle._verify_chain(text), settle._seal_chain(text, xid8),
    settle._chain_spec(text) FROM PUBLIC;
GRANT SELECT ON settle.ledger_seal, settle.event_seal, settle.seal_run TO settle_operator, settle_auditor;
GRANT EXECUTE ON FUNCTION @extschema@.settle_seal(), settle._seal() TO settle_operator;
GRANT EXECUTE ON FUNCTION settle._verify(), settle._may_seal(), settle._chain_digest() TO settle_operator, settle_auditor;
GRANT EXECUTE ON FUNCTION @extschema@.settle_verify(boolean), @extschema@.settle_chain_digest(),
    @extschema@.settle_verify_digest(jsonb), @extschema@.settle_balance_as_of(text, timestamptz),
    @extschema@.settle_payment_history(text), @extschema@.settle_replay(boolean)
    TO settle_operator, settle_auditor;
-- so that auditors can recompute any seal themselves (docs/AUDIT.md)
GRANT EXECUTE ON FUNCTION
    settle._entry_content(bigint, bigint, bigint, bigint, text, text, bigint, timestamptz),
    settle._event_content(bigint, timestamptz, text, text, text, text, text, jsonb),
    settle._chain_step(bytea, bytea, bytea), settle._chain(bytea, bytea)
    TO settle_operator, settle_auditor;

-- Metrics (60_metrics.sql): the exporter's role reads them.
REVOKE ALL ON settle.cycle_total, settle.metrics FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.settle_worker_status() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.settle_worker_status() TO pg_monitor, settle_operator, settle_auditor;
REVOKE ALL ON FUNCTION settle._metrics_bounds(), settle._metrics_observe(double precision),
    settle._metrics_add(bigint[], bigint[]), settle._cycle_total_add(),
    settle._metrics_queue(), settle._metrics_cycles(), settle._metrics_latency(),
    settle._metrics_outbox(), settle._metrics_worker(), settle._metrics_replication(),
    settle._worker_status() FROM PUBLIC;
GRANT USAGE ON SCHEMA settle TO pg_monitor, settle_operator, settle_auditor;
GRANT SELECT ON settle.metrics TO pg_monitor, settle_operator, settle_auditor;
GRANT SELECT ON settle.cycle_total TO settle_operator, settle_auditor;
GRANT EXECUTE ON FUNCTION settle._metrics_bounds(), settle._metrics_queue(), settle._metrics_cycles(),
    settle._metrics_latency(), settle._metrics_outbox(), settle._metrics_worker(), settle._metrics_replication()
    TO pg_monitor, settle_operator, settle_auditor;
-- the backlog (55_backlog.sql, issue #18)
REVOKE ALL ON FUNCTION @extschema@.settle_backlog_status(), settle._backlog_status(), settle._metrics_backlog() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.settle_backlog_status(), settle._metrics_backlog()
    TO pg_monitor, settle_operator, settle_auditor;

-- The rail and the calendar (80_rail.sql), returns (82_returns.sql): operators.
REVOKE ALL ON FUNCTION @extschema@.settle_rail_fetch(integer), @extschema@.settle_rail_confirm(bigint, text),
    @extschema@.settle_rail_fail(bigint, text, boolean), @extschema@.settle_rail_expire(),
    @extschema@.settle_end_of_day(date), @extschema@.settle_purge_idempotency_keys(interval),
    @extschema@.settle_schedule_jobs(text, text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.settle_rail_fetch(integer), @extschema@.settle_rail_confirm(bigint, text),
    @extschema@.settle_rail_fail(bigint, text, boolean), @extschema@.settle_rail_expire(),
    @extschema@.settle_end_of_day(date), @extschema@.settle_purge_idempotency_keys(interval)
    TO settle_operator;
GRANT SELECT ON settle.reservation, settle.balance_snapshot TO settle_operator, settle_auditor;
REVOKE ALL ON FUNCTION @extschema@.settle_return_payment(bigint, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.settle_return_payment(bigint, text) TO settle_operator;
-- settle install script, part 9.5: what \df+ and \d+ show.  One line per
-- public function, view and view column users read (the functions created
-- with a comment beside them are not repeated here).  Amounts in views are
-- exact numeric in major units; *_minor columns are bigint minor units.

-- functions
COMMENT ON FUNCTION @extschema@.settle_archive(timestamptz) IS
    'Move sealed events older than a time (whole transactions), their cycles and old seal runs to tables of schema settle_archive; the chains and verify stay whole (operators)';
COMMENT ON FUNCTION @extschema@.settle_verify_archive(bigint) IS
    'Check an archive (or all) against the hashes settle.archive recorded: attached or detached, links and content intact';
COMMENT ON TABLE settle.archive IS
    'settle: one row per settle_archive() run: the event chain positions and hashes at both ends of what was moved out';
COMMENT ON TABLE settle.archive_state IS
    'settle: what replay and verify read from archived events (last statuses, limits, postings, journal references, first batch events)';
COMMENT ON FUNCTION @extschema@.settle_balance_as_of(text, timestamptz) IS
    'Balance of an account as of a moment: the sum of its ledger entries posted at or before it';
COMMENT ON FUNCTION @extschema@.settle_cancel_payment(bigint, text) IS
    'Cancel a held payment with a reason: it fails for good and never settles (operators)';
COMMENT ON FUNCTION @extschema@.settle_return_payment(bigint, text) IS
    'Return a settled payment with a reason: a reversal journal takes back its legs, within the payee''s limit; the payment becomes returned (operators)';
COMMENT ON FUNCTION @extschema@.settle_release_payment(bigint) IS
    'Release a held payment back to the queue once its participants are active again (operators)';
COMMENT ON FUNCTION @extschema@.settle_chain_digest() IS
    'The hash chains'' heads as jsonb, to keep outside the database (an operator''s call seals first)';
COMMENT ON FUNCTION @extschema@.settle_create_account(text, text, text, numeric, numeric) IS
    'Create a customer account of a participant in one currency, with a lower limit and an opening balance (operators)';
COMMENT ON FUNCTION @extschema@.settle_create_participant(text, text) IS
    'Create a participant (a bank or other counterparty) (operators)';
COMMENT ON FUNCTION @extschema@.settle_end_of_day(date) IS
    'End of day: one balance snapshot per account for the business date (pg_cron job settle-end-of-day)';
COMMENT ON FUNCTION @extschema@.settle_fund_account(text, numeric, text) IS
    'Fund an account from the operator''s external account: one balanced journal with its reference (operators)';
COMMENT ON FUNCTION @extschema@.settle_map_role(name, text) IS
    'Let a login submit for, and see the rows of, one participant; grants it settle_submitter (operators)';
COMMENT ON FUNCTION @extschema@.settle_payment_history(text) IS
    'Everything that happened to one payment: its events, postings and reservations, in order';
COMMENT ON FUNCTION @extschema@.settle_payment_status(text, text) IS
    'One payment by transaction_id or by the payer''s idempotency_key, answered once it is durable on the synchronous standby';
COMMENT ON FUNCTION @extschema@.settle_purge_idempotency_keys(interval) IS
    'Key retention: release the idempotency keys of payments that ended more than keep ago (pg_cron job settle-retention)';
COMMENT ON FUNCTION @extschema@.settle_rail_confirm(bigint, text) IS
    'The rail confirms an instructed batch (wire); a cycle posts when all its pay-ins are confirmed';
COMMENT ON FUNCTION @extschema@.settle_rail_expire() IS
    'Count instructed batches without an answer for settle.rail_timeout as failed attempts (pg_cron job settle-rail-timeouts)';
COMMENT ON FUNCTION @extschema@.settle_rail_fail(bigint, text, boolean) IS
    'The rail reports a failed batch: retried with backoff, or failed for good (a failed pay-in voids its cycle)';
COMMENT ON FUNCTION @extschema@.settle_rail_fetch(integer) IS
    'The outbox: up to max_batches due batches for the rail, pay-ins first, handed out only once durable on the synchronous standby';
COMMENT ON FUNCTION @extschema@.settle_remap_roles() IS
    'After a restore into another cluster: map each role mapping''s name to the role of that name now (operators)';
COMMENT ON FUNCTION @extschema@.settle_replay(boolean) IS
    'Rebuild statuses, balances, pending amounts and postings from the event log alone and compare them with the tables';
COMMENT ON FUNCTION @extschema@.settle_run_cycle() IS
    'Run one settlement cycle now and return its record (no row if there was nothing to do) (operators)';
COMMENT ON FUNCTION @extschema@.settle_schedule_jobs(text, text, text, text) IS
    'Schedule the calendar jobs with pg_cron: end of day, key retention, rail time-outs, the day''s liquidity forecasts';
COMMENT ON FUNCTION @extschema@.settle_seal() IS
    'Seal finished ledger entries and events into the SHA-256 hash chains (the worker does it after every cycle) (operators)';
COMMENT ON FUNCTION @extschema@.settle_set_account_limit(text, numeric) IS
    'Change how far an account may go below zero (refused if it would already be below the new limit) (operators)';
COMMENT ON FUNCTION @extschema@.settle_set_account_status(text, text) IS
    'Set an account active, frozen or closed; payments touching a frozen account wait in the queue (operators)';
COMMENT ON FUNCTION @extschema@.settle_set_fx_rate(text, text, numeric, numeric) IS
    'Set the mid rate of a currency pair (1 base = mid_rate quote) and the spread converting costs, in basis points (operators)';
COMMENT ON FUNCTION @extschema@.settle_set_participant_status(text, text) IS
    'Set a participant active, suspended or closed (operators)';
COMMENT ON FUNCTION @extschema@.settle_set_wire_fee(text, numeric, text) IS
    'Set the fixed cost of one wire in a currency, for one participant or (NULL) the default (operators)';
COMMENT ON FUNCTION @extschema@.settle_verify(boolean) IS
    'Check the whole ledger: balance, limits, postings, chains, seal runs and the records the chains vouch for; one row per problem';
COMMENT ON FUNCTION @extschema@.settle_verify_digest(jsonb) IS
    'Check a digest from settle_chain_digest(): is each head still at its place in the chain with the same hash?';
COMMENT ON FUNCTION @extschema@.settle_worker_status() IS
    'What this server''s settlement worker did since the server started (only in settle.database): cycles, failures, the last error';
COMMENT ON FUNCTION @extschema@.settle_backlog_status() IS
    'The queue as the settlement worker last saw it (only in settle.database): estimated depth, intake refusals (SE093), payments left waiting, a stalled backlog, the worker''s backoff, its batching delay and what it chose it from (arrival rate, cost of a lone payment, netting saturation, cost of a second''s wait)';

-- views and their columns
COMMENT ON VIEW settle.currencies IS 'ISO 4217 currencies settle knows, with their minor-unit exponents';
COMMENT ON COLUMN settle.currencies.code IS 'ISO 4217 code';
COMMENT ON COLUMN settle.currencies.exponent IS 'decimal places of the minor unit (JPY 0, USD 2, BHD 3, CLF 4)';
COMMENT ON COLUMN settle.currencies.name IS 'currency name';

COMMENT ON VIEW settle.participants IS 'participants (the operator excluded)';
COMMENT ON COLUMN settle.participants.participant_id IS 'participant identifier';
COMMENT ON COLUMN settle.participants.name IS 'display name';
COMMENT ON COLUMN settle.participants.status IS 'active, suspended or closed';
COMMENT ON COLUMN settle.participants.created_at IS 'when it was created';
COMMENT ON COLUMN settle.participants.updated_at IS 'last change';

COMMENT ON VIEW settle.accounts IS 'accounts with balances, limits and what is available (row-level security: a participant sees its own)';
COMMENT ON COLUMN settle.accounts.account_id IS 'account identifier';
COMMENT ON COLUMN settle.accounts.participant_id IS 'owning participant';
COMMENT ON COLUMN settle.accounts.currency IS 'the one currency of the account';
COMMENT ON COLUMN settle.accounts.kind IS 'customer, or the operator''s settlement and external accounts';
COMMENT ON COLUMN settle.accounts.balance IS 'posted balance, major units';
COMMENT ON COLUMN settle.accounts.lower_limit IS 'how far the balance may go below zero, major units';
COMMENT ON COLUMN settle.accounts.available IS 'balance - pending debits + lower limit: what a cycle may still debit, major units';
COMMENT ON COLUMN settle.accounts.balance_minor IS 'posted balance, minor units';
COMMENT ON COLUMN settle.accounts.lower_limit_minor IS 'lower limit, minor units';
COMMENT ON COLUMN settle.accounts.status IS 'active, frozen or closed';
COMMENT ON COLUMN settle.accounts.created_at IS 'when it was created';
COMMENT ON COLUMN settle.accounts.updated_at IS 'last change';
COMMENT ON COLUMN settle.accounts.pending_debit IS 'debits reserved by two-phase cycles, not yet posted, major units';
COMMENT ON COLUMN settle.accounts.pending_credit IS 'credits reserved by two-phase cycles, not yet available, major units';

COMMENT ON VIEW settle.transactions IS 'payments and their outcomes (row-level security: payer and payee)';
COMMENT ON COLUMN settle.transactions.payment_id IS 'settle''s identifier of the payment';
COMMENT ON COLUMN settle.transactions.transaction_id IS 'the payer''s transaction id (unique per payer participant)';
COMMENT ON COLUMN settle.transactions.idempotency_key IS 'the payer''s idempotency key (unique per payer participant); NULL for the payee';
COMMENT ON COLUMN settle.transactions.amount IS 'amount debited, in source_currency major units';
COMMENT ON COLUMN settle.transactions.amount_minor IS 'amount debited, minor units';
COMMENT ON COLUMN settle.transactions.source_currency IS 'currency debited';
COMMENT ON COLUMN settle.transactions.destination_currency IS 'currency credited';
COMMENT ON COLUMN settle.transactions.source_account IS 'account debited';
COMMENT ON COLUMN settle.transactions.destination_account IS 'account credited';
COMMENT ON COLUMN settle.transactions.source_participant IS 'the payer participant (owner of source_account)';
COMMENT ON COLUMN settle.transactions.counterparty_id IS 'the payee participant (owner of destination_account)';
COMMENT ON COLUMN settle.transactions.destination_amount IS 'amount credited once settled, destination_currency major units';
COMMENT ON COLUMN settle.transactions.fx_rate IS 'the rate the credit was converted at (NULL without FX)';
COMMENT ON COLUMN settle.transactions.priority IS 'priority 1..9';
COMMENT ON COLUMN settle.transactions.deadline IS 'latest time to settle; before it the payment may wait when that is cheaper';
COMMENT ON COLUMN settle.transactions.status IS 'queued, held, reserved, settled, expired or failed';
COMMENT ON COLUMN settle.transactions.submitted_at IS 'when it was accepted';
COMMENT ON COLUMN settle.transactions.updated_at IS 'last change of status';
COMMENT ON COLUMN settle.transactions.settled_at IS 'when it settled';
COMMENT ON COLUMN settle.transactions.cycle_id IS 'the cycle that settled (or reserved) it';
COMMENT ON COLUMN settle.transactions.hold_reason IS 'why a held payment is held (a suspended participant, a credit out of range)';

COMMENT ON VIEW settle.events IS 'every state change, append-only and hash-chained (row-level security: a participant''s own)';
COMMENT ON COLUMN settle.events.event_id IS 'event identifier, in insertion order';
COMMENT ON COLUMN settle.events.occurred_at IS 'when it happened';
COMMENT ON COLUMN settle.events.entity IS 'payment, batch, cycle, account, participant, fx_rate or wire_fee';
COMMENT ON COLUMN settle.events.entity_id IS 'identifier of the entity';
COMMENT ON COLUMN settle.events.event_type IS 'what happened';
COMMENT ON COLUMN settle.events.from_status IS 'status before (NULL if none)';
COMMENT ON COLUMN settle.events.to_status IS 'status after (NULL if unchanged)';
COMMENT ON COLUMN settle.events.details IS 'the facts of the change; postings carry account, currency and signed minor amount';

COMMENT ON VIEW settle.fx_rates IS 'the FX rates in force: the latest per pair';
COMMENT ON COLUMN settle.fx_rates.base_currency IS 'base currency';
COMMENT ON COLUMN settle.fx_rates.quote_currency IS 'quote currency';
COMMENT ON COLUMN settle.fx_rates.mid_rate IS '1 base = mid_rate quote';
COMMENT ON COLUMN settle.fx_rates.spread_bps IS 'what converting costs, basis points of the converted value';
COMMENT ON COLUMN settle.fx_rates.valid_from IS 'in force since';

COMMENT ON VIEW settle.wire_fees IS 'the fixed cost of one wire per currency (and participant)';
COMMENT ON COLUMN settle.wire_fees.participant_id IS 'participant, or NULL for the currency''s default';
COMMENT ON COLUMN settle.wire_fees.currency IS 'currency of the wire';
COMMENT ON COLUMN settle.wire_fees.fee IS 'fee per wire, major units';
COMMENT ON COLUMN settle.wire_fees.fee_minor IS 'fee per wire, minor units';

COMMENT ON VIEW settle.cycles IS 'settlement cycles: what each did, what it cost, and the same queue''s baselines (FIFO gross, FIFO netted, naive batching)';
COMMENT ON COLUMN settle.cycles.cycle_id IS 'cycle identifier';
COMMENT ON COLUMN settle.cycles.started_at IS 'start';
COMMENT ON COLUMN settle.cycles.finished_at IS 'end';
COMMENT ON COLUMN settle.cycles.run_by IS 'worker or manual';
COMMENT ON COLUMN settle.cycles.reference_currency IS 'currency of the values and costs below';
COMMENT ON COLUMN settle.cycles.considered IS 'payments in the queue the cycle looked at';
COMMENT ON COLUMN settle.cycles.settled IS 'payments settled (or reserved, two-phase)';
COMMENT ON COLUMN settle.cycles.deferred IS 'payments left to wait because waiting was cheaper';
COMMENT ON COLUMN settle.cycles.unsettled IS 'payments left queued for want of liquidity or held';
COMMENT ON COLUMN settle.cycles.expired IS 'payments expired: deadline passed';
COMMENT ON COLUMN settle.cycles.settled_value IS 'value settled, reference currency';
COMMENT ON COLUMN settle.cycles.batches IS 'batches written (one per participant and currency)';
COMMENT ON COLUMN settle.cycles.wires IS 'batches that move money (net not zero)';
COMMENT ON COLUMN settle.cycles.fee_cost IS 'wire fees, reference currency';
COMMENT ON COLUMN settle.cycles.fx_cost IS 'FX spread on the net converted volume, reference currency';
COMMENT ON COLUMN settle.cycles.cost IS 'fee_cost + fx_cost';
COMMENT ON COLUMN settle.cycles.fifo_settled IS 'payments FIFO gross settlement would have settled';
COMMENT ON COLUMN settle.cycles.fifo_value IS 'value FIFO would have settled';
COMMENT ON COLUMN settle.cycles.fifo_cost IS 'what FIFO would have cost';
COMMENT ON COLUMN settle.cycles.naive_wires IS 'wires of naive batching (one per counterparty and currency pair, no netting)';
COMMENT ON COLUMN settle.cycles.naive_cost IS 'what naive batching would have cost';
COMMENT ON COLUMN settle.cycles.lp_bound_pct IS 'settled weight as a percentage of the LP relaxation''s bound';
COMMENT ON COLUMN settle.cycles.solver_status IS 'optimal, feasible, heuristic or error';
COMMENT ON COLUMN settle.cycles.solver_method IS 'how the selection was found';
COMMENT ON COLUMN settle.cycles.solver_ms IS 'solver time, milliseconds';
COMMENT ON COLUMN settle.cycles.cycle_ms IS 'whole cycle time, milliseconds';
COMMENT ON COLUMN settle.cycles.journal_id IS 'the journal that posted the cycle (NULL until a two-phase cycle posts)';
COMMENT ON COLUMN settle.cycles.saved_vs_naive_pct IS 'cost saved against naive batching, percent';
COMMENT ON COLUMN settle.cycles.value_over_fifo IS 'value settled beyond what FIFO would have settled, reference currency';
COMMENT ON COLUMN settle.cycles.fifo_netted_wires IS 'wires of the netting-only baseline: FIFO''s payments netted per participant and currency, no optimisation (NULL before 1.1)';
COMMENT ON COLUMN settle.cycles.fifo_netted_cost IS 'what the netting-only baseline would have cost: a fee per wire with a net, spread on each currency pair''s net (NULL before 1.1)';
COMMENT ON COLUMN settle.cycles.saved_vs_netting_pct IS 'cost saved against the netting-only baseline, percent (NULL when that cost is 0 or unknown)';
COMMENT ON COLUMN settle.cycle.fifo_netted_wires IS 'wires of the netting-only baseline (settle.cycles)';
COMMENT ON COLUMN settle.cycle.fifo_netted_cost IS 'cost of the netting-only baseline, reference currency (settle.cycles)';

COMMENT ON VIEW settle.batches IS 'batches: one wire per participant and currency per cycle, and its state on the rail (row-level security: a participant''s own)';
COMMENT ON COLUMN settle.batches.batch_id IS 'batch identifier (the rail''s instruction id)';
COMMENT ON COLUMN settle.batches.cycle_id IS 'the cycle that made it';
COMMENT ON COLUMN settle.batches.participant_id IS 'the participant paid or paying';
COMMENT ON COLUMN settle.batches.currency IS 'currency of the wire';
COMMENT ON COLUMN settle.batches.debit_total IS 'the participant''s payments out, major units';
COMMENT ON COLUMN settle.batches.credit_total IS 'its payments in, major units';
COMMENT ON COLUMN settle.batches.net_amount IS 'credit_total - debit_total: negative a pay-in, positive a pay-out, major units';
COMMENT ON COLUMN settle.batches.net_amount_minor IS 'net amount, minor units';
COMMENT ON COLUMN settle.batches.payment_legs IS 'payment legs netted into the wire';
COMMENT ON COLUMN settle.batches.fee IS 'the wire''s fee, major units';
COMMENT ON COLUMN settle.batches.status IS 'settled (direct), or reserved, pending, instructed, confirmed, voided, retained, failed (two-phase)';
COMMENT ON COLUMN settle.batches.created_at IS 'when the cycle wrote it';
COMMENT ON COLUMN settle.batches.direction IS 'pay_in, pay_out or none';
COMMENT ON COLUMN settle.batches.attempts IS 'times handed to the rail';
COMMENT ON COLUMN settle.batches.next_attempt_at IS 'when it is due for the rail (backoff after a failure)';
COMMENT ON COLUMN settle.batches.instructed_at IS 'when it was last handed to the rail';
COMMENT ON COLUMN settle.batches.rail_reference IS 'the rail''s reference on confirmation';
COMMENT ON COLUMN settle.batches.last_error IS 'the rail''s last failure reason';
COMMENT ON COLUMN settle.batches.updated_at IS 'last change of rail state';

COMMENT ON VIEW settle.ledger IS 'the double-entry ledger: every posting, append-only and hash-chained (row-level security: a participant''s accounts)';
COMMENT ON COLUMN settle.ledger.entry_id IS 'entry identifier';
COMMENT ON COLUMN settle.ledger.journal_id IS 'its journal: entries of one journal sum to zero per currency';
COMMENT ON COLUMN settle.ledger.journal_kind IS 'funding, settlement, reversal or adjustment';
COMMENT ON COLUMN settle.ledger.cycle_id IS 'the cycle of a settlement journal';
COMMENT ON COLUMN settle.ledger.batch_id IS 'the batch the entry belongs to';
COMMENT ON COLUMN settle.ledger.payment_id IS 'the payment the entry settles (NULL for a batch''s counter-entry or funding)';
COMMENT ON COLUMN settle.ledger.account_id IS 'account posted to';
COMMENT ON COLUMN settle.ledger.currency IS 'currency of the account';
COMMENT ON COLUMN settle.ledger.amount IS 'signed amount: + credit, - debit, major units';
COMMENT ON COLUMN settle.ledger.amount_minor IS 'signed amount, minor units';
COMMENT ON COLUMN settle.ledger.posted_at IS 'when it was posted';

COMMENT ON COLUMN settle.metrics.family IS 'queue, cycles, latency, outbox, worker, replication or backlog';
COMMENT ON COLUMN settle.metrics.metric IS 'Prometheus metric name';
COMMENT ON COLUMN settle.metrics.labels IS 'Prometheus labels';
COMMENT ON COLUMN settle.metrics.value IS 'sample value';

-- linked payments (84_links.sql)
COMMENT ON VIEW settle.link_groups IS
    'Groups of linked payments that settle all or nothing: the caller''s own (as a party), or every group for operators and auditors';
COMMENT ON COLUMN settle.link_groups.link_group IS 'the group''s name, chosen by its parties';
COMMENT ON COLUMN settle.link_groups.link_size IS 'how many payments the group has';
COMMENT ON COLUMN settle.link_groups.members IS 'how many have arrived';
COMMENT ON COLUMN settle.link_groups.status IS 'open (waiting for members), complete (eligible), settled, failed or expired';
COMMENT ON COLUMN settle.link_groups.reason IS 'why a group failed or expired';
COMMENT ON COLUMN settle.link_groups.opened_by IS 'payer of the first member: a party';
COMMENT ON COLUMN settle.link_groups.counterparty IS 'payee of the first member: the other party';
COMMENT ON COLUMN settle.link_groups.created_at IS 'when the group was opened';
COMMENT ON COLUMN settle.link_groups.updated_at IS 'last change';
