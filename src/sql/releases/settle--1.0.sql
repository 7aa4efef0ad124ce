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
    CONSTRAINT payment_status_check CHECK (VALUE IN ('queued', 'held', 'reserved', 'settled', 'expired', 'failed'));
CREATE DOMAIN settle.event_entity AS text
    CONSTRAINT event_entity_check
    CHECK (VALUE IN ('payment', 'batch', 'cycle', 'account', 'participant', 'fx_rate', 'wire_fee'));

-- Refuses UPDATE, DELETE and TRUNCATE on append-only tables, for every role.
CREATE FUNCTION settle._refuse_change() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
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
    -- two-phase settlement (80_executor.sql): a cycle's net debit reserved,
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
    -- pending debits of two-phase cycles (80_executor.sql) count against the limit too
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
    journal_id          bigint
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
    -- settled (direct mode); the rail's states in two-phase mode (80_executor.sql)
    status          text NOT NULL DEFAULT 'settled'
                    CHECK (status IN ('settled', 'reserved', 'pending', 'instructed', 'confirmed', 'voided', 'failed', 'retained')),
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

CREATE VIEW settle.cycles AS
    SELECT c.*,
           CASE WHEN c.naive_cost > 0 THEN round(100 * (c.naive_cost - c.cost) / c.naive_cost, 2) END
               AS saved_vs_naive_pct,
           c.settled_value - c.fifo_value AS value_over_fifo
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

-- Held payments (docs/ENGINE.md, "Held payments"): an operator releases one
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
BEGIN
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
             WHERE y.seq <> y.pos OR y.prev_hash <> coalesce(y.before_hash, decode(repeat('00', 32), 'hex'))),
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
          FROM p ORDER BY p.seq$q$, c.tbl, c.id, c.seal_tbl, c.content, c.label, c.noun);
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
--                        a settled payment without its two legs in one journal,
--                        with legs in several journals, with legs that do not
--                        match its accounts and amounts; a payment that is not
--                        settled but has legs
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

    -- each settled payment: exactly one journal, a debit of its amount on the
    -- source account and a credit of its destination amount on the destination
    RETURN QUERY
    WITH legs AS (
        SELECT e.payment_id, count(*) AS n, count(DISTINCT e.journal_id) AS journals,
               count(*) FILTER (WHERE e.amount < 0) AS debits,
               count(*) FILTER (WHERE e.amount > 0) AS credits,
               sum(-e.amount) FILTER (WHERE e.amount < 0) AS debit,
               sum(e.amount) FILTER (WHERE e.amount > 0) AS credit,
               min(e.account_id) FILTER (WHERE e.amount < 0) AS debit_account,
               min(e.account_id) FILTER (WHERE e.amount > 0) AS credit_account
          FROM settle.ledger_entry e WHERE e.payment_id IS NOT NULL GROUP BY e.payment_id),
    c AS (
        SELECT p.payment_id, p.transaction_id, p.status,
               CASE
                   WHEN p.status <> 'settled' AND l.n IS NOT NULL THEN 'payment_posted_unsettled'
                   WHEN p.status <> 'settled' THEN NULL
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
        SELECT 'event', (SELECT max(x.seq) FROM settle.event_seal x), (SELECT count(*) FROM settle.event_seal x))
    SELECT 'chain_head_missing', l.chain, l.last_seq::text,
           format('seal run %s recorded the %s chain up to seal %s (hash %s); the chain now has %s seals, up to seal %s%s',
                  l.run_id, l.chain, l.last_seq, left(encode(l.last_hash, 'hex'), 16), h.n, coalesce(h.top, 0),
                  CASE WHEN s.hash IS NOT NULL AND s.hash <> l.last_hash THEN ', and that seal has another hash' ELSE '' END)
      FROM last_run l JOIN heads h ON h.chain = l.chain
      LEFT JOIN LATERAL (SELECT x.hash FROM settle.ledger_seal x WHERE l.chain = 'ledger_entry' AND x.seq = l.last_seq
                         UNION ALL
                         SELECT x.hash FROM settle.event_seal x WHERE l.chain = 'event' AND x.seq = l.last_seq) s ON true
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
      LEFT JOIN LATERAL (SELECT e.details FROM settle.event e
                          WHERE e.entity = 'batch' AND e.entity_id = b.batch_id::text
                          ORDER BY e.event_id LIMIT 1) f ON true
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
     WHERE (j.kind = 'funding'
            AND NOT EXISTS (SELECT 1 FROM settle.event e
                             WHERE e.entity = 'account' AND e.event_type = 'funded'
                               AND (e.details->>'journal_id')::bigint = j.journal_id
                               AND e.details->>'reference' IS NOT DISTINCT FROM j.reference))
        OR (j.kind = 'settlement'
            AND (NOT EXISTS (SELECT 1 FROM settle.event e
                              WHERE e.entity = 'payment' AND e.event_type = 'settled'
                                AND (e.details->>'journal_id')::bigint = j.journal_id)
                 OR EXISTS (SELECT 1 FROM settle.event e
                             WHERE e.entity = 'payment' AND e.event_type = 'settled'
                               AND (e.details->>'journal_id')::bigint = j.journal_id
                               AND (e.details->>'cycle_id')::bigint IS DISTINCT FROM j.cycle_id)))
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
                           FROM settle.event_seal x ORDER BY x.seq DESC LIMIT 1))
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
           encode(coalesce(l.hash, v.hash), 'hex'),
           coalesce(encode(coalesce(l.hash, v.hash), 'hex') = digest->c.name->>'hash', false)
      FROM (VALUES (1, 'ledger_entry'), (2, 'event')) AS c(ord, name)
      LEFT JOIN settle.ledger_seal l ON c.name = 'ledger_entry' AND l.seq = (digest->c.name->>'seq')::bigint
      LEFT JOIN settle.event_seal v ON c.name = 'event' AND v.seq = (digest->c.name->>'seq')::bigint
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

-- Everything that happened to one payment, in order: its events and its
-- postings (and reservations, with settle.two_phase).
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
          FROM settle.event e WHERE e.entity = 'payment' AND e.entity_id = pid::text
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
-- journal they must equal the ledger's entries.  only_differences => false
-- returns every comparison.
CREATE FUNCTION settle_replay(only_differences boolean DEFAULT true)
RETURNS TABLE (entity text, entity_id text, field text, replayed text, current text, equal boolean)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    WITH
    last_event AS (
        SELECT DISTINCT ON (e.entity, e.entity_id) e.entity, e.entity_id, e.to_status,
               e.details->'reservations' AS reservations, e.details->>'cycle_id' AS cycle_id
          FROM settle.event e
         WHERE e.to_status IS NOT NULL AND e.entity IN ('payment', 'batch', 'participant', 'account')
         ORDER BY e.entity, e.entity_id, e.event_id DESC),
    -- the cycle of a payment's last status event; a payment requeued by a
    -- voided cycle belongs to none until a later cycle takes it
    settled_in AS (
        SELECT DISTINCT ON (e.entity_id) e.entity_id,
               CASE WHEN e.event_type <> 'requeued' THEN e.details->>'cycle_id' END AS cycle_id
          FROM settle.event e
         WHERE e.entity = 'payment' AND e.to_status IN ('settled', 'reserved', 'failed', 'queued')
         ORDER BY e.entity_id, e.event_id DESC),
    limits AS (
        SELECT DISTINCT ON (e.entity_id) e.entity_id,
               CASE e.event_type WHEN 'created' THEN e.details->>'lower_limit' ELSE e.details->>'to' END AS lower_limit
          FROM settle.event e
         WHERE e.entity = 'account' AND e.event_type IN ('created', 'limit_changed')
         ORDER BY e.entity_id, e.event_id DESC),
    -- every posting announced by the event log
    posted AS (
        SELECT (e.details->>'journal_id')::bigint AS journal_id, x.account, x.amount
          FROM settle.event e,
               jsonb_to_recordset(e.details->'postings') AS x(account text, amount bigint)
         WHERE e.details ? 'postings'),
    by_journal AS (
        SELECT coalesce(p.journal_id, l.journal_id) AS journal_id, coalesce(p.account, l.account) AS account,
               p.total AS replayed, l.total AS current
          FROM (SELECT journal_id, account, sum(amount) AS total FROM posted GROUP BY 1, 2) p
          FULL JOIN (SELECT e.journal_id, e.account_id AS account, sum(e.amount) AS total
                       FROM settle.ledger_entry e GROUP BY 1, 2) l
            ON l.journal_id = p.journal_id AND l.account = p.account),
    balances AS (
        SELECT p.account, sum(p.amount) AS total FROM posted p GROUP BY p.account),
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
-- settle install script, part 6: metrics for operators (docs/OPERATIONS.md).
--
-- settle.metrics is one row per Prometheus sample:
--     family   which group of metrics the row belongs to (queue, cycles,
--              latency, outbox, worker, replication): filter on it, and only
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
    -- every failed attempt that was scheduled again (settle_rail_fail retryable, or a time-out)
    SELECT 'settle_outbox_retries_total', '{}'::jsonb,
           (SELECT count(*) FROM settle.event e
             WHERE e.entity = 'batch' AND e.event_type = 'pending' AND e.details ? 'retry')::double precision
    UNION ALL
    -- final failures: a pay-in voids its cycle; a pay-out is left failed for an operator
    SELECT 'settle_outbox_final_failures_total', '{"direction": "pay_in"}'::jsonb,
           (SELECT count(*) FROM settle.event e
             WHERE e.entity = 'cycle' AND e.event_type = 'voided')::double precision
    UNION ALL
    SELECT 'settle_outbox_final_failures_total', '{"direction": "pay_out"}'::jsonb,
           (SELECT count(*) FROM settle.event e
             WHERE e.entity = 'batch' AND e.event_type = 'failed')::double precision
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
    UNION ALL SELECT 'replication', m.metric, m.labels, m.value FROM settle._metrics_replication() m;
COMMENT ON VIEW settle.metrics IS 'settle: one row per Prometheus sample (docs/OPERATIONS.md)';
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
-- good stays posted (the operator owes the participant the net amount) and
-- is marked failed for an operator to resolve.  Nothing is ever updated or
-- deleted in the ledger.  docs/SETTLEMENT_FLOW.md draws the state machines.

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
-- expired and failed stay so, settled stays settled.  Whatever the path (a
-- retry, a cycle, a late or racing acknowledgement, a bug), the row refuses.
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
    WHEN (OLD.status IN ('settled', 'expired', 'failed') AND NEW.status IS DISTINCT FROM OLD.status)
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
        -- already posted: the operator still owes the net; an operator must act
        PERFORM settle._batch_event(b, 'failed', jsonb_build_object('error', reason));
        UPDATE settle.batch x SET status = 'failed', last_error = reason, updated_at = clock_timestamp()
         WHERE x.batch_id = b.batch_id;
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
         WHERE x.status IN ('settled', 'expired', 'failed') AND x.updated_at < clock_timestamp() - keep
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
                                     rail_timeouts text DEFAULT '* * * * *')
RETURNS SETOF bigint LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_cron') THEN
        RAISE EXCEPTION 'pg_cron is not installed in this database' USING ERRCODE = 'SE130',
            HINT = 'Add pg_cron to shared_preload_libraries and run CREATE EXTENSION pg_cron.';
    END IF;
    RETURN NEXT cron.schedule('settle-end-of-day', end_of_day, format('SELECT %I.settle_end_of_day()', '@extschema@'));
    RETURN NEXT cron.schedule('settle-retention', retention, format('SELECT %I.settle_purge_idempotency_keys()', '@extschema@'));
    RETURN NEXT cron.schedule('settle-rail-timeouts', rail_timeouts, format('SELECT %I.settle_rail_expire()', '@extschema@'));
END
$$;
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
ALTER FUNCTION @extschema@.settle_submit(text, numeric, text, text, text, text, text, text, integer, timestamptz)
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
GRANT EXECUTE ON FUNCTION @extschema@.settle_submit(text, numeric, text, text, text, text, text, text, integer, timestamptz),
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

-- The rail and the calendar (80_executor.sql): operators.
REVOKE ALL ON FUNCTION @extschema@.settle_rail_fetch(integer), @extschema@.settle_rail_confirm(bigint, text),
    @extschema@.settle_rail_fail(bigint, text, boolean), @extschema@.settle_rail_expire(),
    @extschema@.settle_end_of_day(date), @extschema@.settle_purge_idempotency_keys(interval),
    @extschema@.settle_schedule_jobs(text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.settle_rail_fetch(integer), @extschema@.settle_rail_confirm(bigint, text),
    @extschema@.settle_rail_fail(bigint, text, boolean), @extschema@.settle_rail_expire(),
    @extschema@.settle_end_of_day(date), @extschema@.settle_purge_idempotency_keys(interval)
    TO settle_operator;
GRANT SELECT ON settle.reservation, settle.balance_snapshot TO settle_operator, settle_auditor;
-- settle install script, part 9.5: what \df+ and \d+ show.  One line per
-- public function, view and view column users read (the functions created
-- with a comment beside them are not repeated here).  Amounts in views are
-- exact numeric in major units; *_minor columns are bigint minor units.

-- functions
COMMENT ON FUNCTION @extschema@.settle_balance_as_of(text, timestamptz) IS
    'Balance of an account as of a moment: the sum of its ledger entries posted at or before it';
COMMENT ON FUNCTION @extschema@.settle_cancel_payment(bigint, text) IS
    'Cancel a held payment with a reason: it fails for good and never settles (operators)';
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
COMMENT ON FUNCTION @extschema@.settle_schedule_jobs(text, text, text) IS
    'Schedule the calendar jobs with pg_cron: end of day, key retention, rail time-outs';
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

COMMENT ON VIEW settle.cycles IS 'settlement cycles: what each did, what it cost, and the same queue''s baselines (FIFO gross, naive batching)';
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

COMMENT ON COLUMN settle.metrics.family IS 'queue, cycles, latency, outbox, worker or replication';
COMMENT ON COLUMN settle.metrics.metric IS 'Prometheus metric name';
COMMENT ON COLUMN settle.metrics.labels IS 'Prometheus labels';
COMMENT ON COLUMN settle.metrics.value IS 'sample value';
