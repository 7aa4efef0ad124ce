-- settle install script, part 1: reference data functions.
-- Each validates its input with the same C rules as settle_submit (same
-- SQLSTATEs), and records an event for every change.

-- C validators shared with intake (src/refcheck.c).
CREATE OR REPLACE FUNCTION settle._check_name(field text, value text) RETURNS text
    AS 'MODULE_PATHNAME', 'settle_check_name_sql' LANGUAGE C IMMUTABLE;
CREATE OR REPLACE FUNCTION settle._check_currency(field text, value text) RETURNS smallint
    AS 'MODULE_PATHNAME', 'settle_check_currency_sql' LANGUAGE C STABLE;
CREATE OR REPLACE FUNCTION settle._to_minor(field text, value numeric, currency text, allow_zero boolean DEFAULT false)
    RETURNS bigint AS 'MODULE_PATHNAME', 'settle_to_minor_sql' LANGUAGE C STABLE;

-- Minor units to a numeric in major units, with the currency's scale.
CREATE OR REPLACE FUNCTION settle.to_major(amount bigint, currency text) RETURNS numeric
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
CREATE OR REPLACE FUNCTION settle._fx_bounds(src text, dst text, OUT min_amount bigint, OUT max_amount bigint)
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
CREATE OR REPLACE FUNCTION settle._operator_account(kind text, currency text) RETURNS text
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

CREATE OR REPLACE FUNCTION settle_create_participant(participant_id text, name text DEFAULT NULL)
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

CREATE OR REPLACE FUNCTION settle_set_participant_status(participant_id text, status text)
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

CREATE OR REPLACE FUNCTION settle_create_account(account_id text, participant_id text, currency text,
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

CREATE OR REPLACE FUNCTION settle_set_account_limit(account_id text, lower_limit numeric)
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

CREATE OR REPLACE FUNCTION settle_set_account_status(account_id text, status text)
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
CREATE OR REPLACE FUNCTION settle._fund_account(account_id text, amount numeric, reference text)
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

CREATE OR REPLACE FUNCTION settle_fund_account(account_id text, amount numeric, reference text DEFAULT NULL)
RETURNS bigint LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT settle._fund_account(account_id, amount, reference)
$$;

CREATE OR REPLACE FUNCTION settle_set_fx_rate(base_currency text, quote_currency text, mid_rate numeric, spread_bps numeric DEFAULT 0)
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

CREATE OR REPLACE FUNCTION settle_set_wire_fee(currency text, fee numeric, participant_id text DEFAULT NULL)
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
