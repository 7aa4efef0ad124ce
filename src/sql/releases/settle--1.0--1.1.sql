-- settle 1.0 -> 1.1 (ALTER EXTENSION settle UPDATE TO '1.1').
--
-- Every object 1.1 adds or changes, in the order of src/sql/*.sql, so that an
-- updated 1.0 database has exactly the objects of a fresh 1.1 install
-- (test/scripts/upgrade.sh compares the two catalogs).  Each section names the
-- issue it comes from; a function changed in src/sql/ is replaced here whole.

\echo Use "ALTER EXTENSION settle UPDATE TO '1.1'" to load this file. \quit

-- issue #16, item 9: returns and reversals (82_returns.sql); the statuses
-- 'returned' of a payment and of a batch; comments that named old files.
ALTER DOMAIN settle.payment_status DROP CONSTRAINT payment_status_check;
ALTER DOMAIN settle.payment_status ADD CONSTRAINT payment_status_check
    CHECK (VALUE IN ('queued', 'held', 'reserved', 'settled', 'expired', 'failed', 'returned'));
ALTER TABLE settle.batch DROP CONSTRAINT batch_status_check;
ALTER TABLE settle.batch ADD CONSTRAINT batch_status_check
    CHECK (status IN ('settled', 'reserved', 'pending', 'instructed', 'confirmed', 'voided', 'failed', 'retained', 'returned'));
DROP TRIGGER payment_outcome_final ON settle.payment;
CREATE TRIGGER payment_outcome_final BEFORE UPDATE OF status ON settle.payment
    FOR EACH ROW
    WHEN (NEW.status IS DISTINCT FROM OLD.status
          AND ((OLD.status IN ('settled', 'expired', 'failed', 'returned')
                AND NOT (OLD.status = 'settled' AND NEW.status = 'returned'))
               OR (NEW.status = 'returned' AND OLD.status <> 'settled')))
    EXECUTE FUNCTION settle._refuse_outcome_change();

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

ALTER FUNCTION @extschema@.settle_set_account_limit(text, numeric) SECURITY DEFINER;

CREATE OR REPLACE FUNCTION settle_rail_fail(batch_id bigint, reason text, retryable boolean DEFAULT true)
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

CREATE OR REPLACE FUNCTION settle_purge_idempotency_keys(keep interval DEFAULT '30 days')
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
REVOKE ALL ON FUNCTION settle._return_payment(settle.payment, text, text, bigint),
    settle._return_pay_out(settle.batch, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.settle_return_payment(bigint, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.settle_return_payment(bigint, text) TO settle_operator;
COMMENT ON FUNCTION @extschema@.settle_return_payment(bigint, text) IS
    'Return a settled payment with a reason: a reversal journal takes back its legs, within the payee''s limit; the payment becomes returned (operators)';

-- issue #15: archiving the event log, cycles and seal runs by time range
-- (48_archive.sql); the audit functions and the outbox counters read what
-- archives carry; the verify and replay of returns (82_returns.sql, above).
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

CREATE OR REPLACE FUNCTION settle._verify_chain(which text)
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

CREATE OR REPLACE FUNCTION settle._verify()
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

CREATE OR REPLACE FUNCTION settle_verify_digest(digest jsonb)
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

CREATE OR REPLACE FUNCTION settle_payment_history(transaction_id text)
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

CREATE OR REPLACE FUNCTION settle_replay(only_differences boolean DEFAULT true)
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

CREATE OR REPLACE FUNCTION settle._metrics_outbox()
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

REVOKE ALL ON FUNCTION settle._archived(text, text, text), settle._archived_count(text), settle._event_chain_base(),
    settle._archived_seal_hash(bigint), settle._archived_events(text, text) FROM PUBLIC;
REVOKE ALL ON settle.archive, settle.archive_state, settle.archive_lock FROM PUBLIC;
REVOKE ALL ON SEQUENCE settle.archive_archive_id_seq FROM PUBLIC;
GRANT SELECT ON settle.archive, settle.archive_state TO settle_operator, settle_auditor;
REVOKE ALL ON FUNCTION @extschema@.settle_archive(timestamptz), @extschema@.settle_verify_archive(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.settle_archive(timestamptz) TO settle_operator;
GRANT EXECUTE ON FUNCTION @extschema@.settle_verify_archive(bigint) TO settle_operator, settle_auditor;
COMMENT ON FUNCTION @extschema@.settle_archive(timestamptz) IS
    'Move sealed events older than a time (whole transactions), their cycles and old seal runs to tables of schema settle_archive; the chains and verify stay whole (operators)';
COMMENT ON FUNCTION @extschema@.settle_verify_archive(bigint) IS
    'Check an archive (or all) against the hashes settle.archive recorded: attached or detached, links and content intact';
COMMENT ON TABLE settle.archive IS
    'settle: one row per settle_archive() run: the event chain positions and hashes at both ends of what was moved out';
COMMENT ON TABLE settle.archive_state IS
    'settle: what replay and verify read from archived events (last statuses, limits, postings, journal references, first batch events)';

-- issue #16, item 10: linked payments, all or nothing (84_links.sql); the
-- link_group and link_size parameters of settle_submit.
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
DROP FUNCTION settle_submit(text, numeric, text, text, text, text, text, text, integer, timestamptz);
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
ALTER FUNCTION @extschema@.settle_submit(text, numeric, text, text, text, text, text, text, integer, timestamptz, text, integer)
    SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION @extschema@.settle_submit(text, numeric, text, text, text, text, text, text, integer, timestamptz, text, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.settle_submit(text, numeric, text, text, text, text, text, text, integer, timestamptz, text, integer)
    TO settle_submitter, settle_operator;
REVOKE ALL ON FUNCTION settle._link_admit(text[], integer[], text[], text[], text[]), settle._link_record(bigint[], text[]),
    settle._link_end(text, text, text), settle._link_refused(text[], integer[], text[], text[], text[]),
    settle._link_housekeeping(interval) FROM PUBLIC;
REVOKE ALL ON settle.link_group, settle.payment_link, settle.link_groups FROM PUBLIC;
GRANT SELECT ON settle.link_groups TO settle_submitter, settle_operator, settle_auditor;
GRANT SELECT ON settle.link_group, settle.payment_link TO settle_operator, settle_auditor;
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

-- issue #21: what a participant's treasurer needs: funding advice, liquidity forecast, verifiable statements

-- the statement tree's size and root in the digest (src/sql/50_audit.sql)
CREATE OR REPLACE FUNCTION settle._chain_digest()
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

-- src/sql/85_funding_advice.sql
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

-- src/sql/86_liquidity.sql
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
CREATE OR REPLACE VIEW settle.metrics AS
              SELECT 'queue'::text AS family, m.metric, m.labels, m.value FROM settle._metrics_queue() m
    UNION ALL SELECT 'cycles', m.metric, m.labels, m.value FROM settle._metrics_cycles() m
    UNION ALL SELECT 'latency', m.metric, m.labels, m.value FROM settle._metrics_latency() m
    UNION ALL SELECT 'outbox', m.metric, m.labels, m.value FROM settle._metrics_outbox() m
    UNION ALL SELECT 'worker', m.metric, m.labels, m.value FROM settle._metrics_worker() m
    UNION ALL SELECT 'replication', m.metric, m.labels, m.value FROM settle._metrics_replication() m
    UNION ALL SELECT 'liquidity', m.metric, m.labels, m.value FROM settle._metrics_liquidity() m;

-- src/sql/87_statements.sql
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

-- the entries sealed before the update become the statement tree's first leaves
SELECT settle._merkle_extend();

-- issue #19: API clients of the REST gateway (settle-gateway): settle.api_client, token issue/revoke/authenticate, the gateway's health check, role settle_gateway
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

-- issue #18: the backlog between cycles (settle_backlog_status(), family backlog of settle.metrics)
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

CREATE OR REPLACE VIEW settle.metrics AS
              SELECT 'queue'::text AS family, m.metric, m.labels, m.value FROM settle._metrics_queue() m
    UNION ALL SELECT 'cycles', m.metric, m.labels, m.value FROM settle._metrics_cycles() m
    UNION ALL SELECT 'latency', m.metric, m.labels, m.value FROM settle._metrics_latency() m
    UNION ALL SELECT 'outbox', m.metric, m.labels, m.value FROM settle._metrics_outbox() m
    UNION ALL SELECT 'worker', m.metric, m.labels, m.value FROM settle._metrics_worker() m
    UNION ALL SELECT 'replication', m.metric, m.labels, m.value FROM settle._metrics_replication() m
    UNION ALL SELECT 'backlog', m.metric, m.labels, m.value FROM settle._metrics_backlog() m;
REVOKE ALL ON FUNCTION @extschema@.settle_backlog_status(), settle._backlog_status(), settle._metrics_backlog() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.settle_backlog_status(), settle._metrics_backlog()
    TO pg_monitor, settle_operator, settle_auditor;
COMMENT ON FUNCTION @extschema@.settle_backlog_status() IS
    'The queue as the settlement worker last saw it (only in settle.database): estimated depth, intake refusals (SE093), payments left waiting, a stalled backlog, the worker''s backoff, its batching delay and what it chose it from (arrival rate, cost of a lone payment, netting saturation, cost of a second''s wait)';
COMMENT ON COLUMN settle.metrics.family IS 'queue, cycles, latency, outbox, worker, replication or backlog';

-- issue #18: two-phase notifications (settle_settled when the rail's confirmation posts a cycle,
-- settle_failed when a failed pay-in voids it)
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
REVOKE ALL ON FUNCTION settle._notify_payments(text, bigint, bigint[]) FROM PUBLIC;
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

-- 1.1's settle.metrics view, whole: the families of #18 (backlog) and #21
-- (liquidity) together (the sections above each replaced it with their own).
CREATE OR REPLACE VIEW settle.metrics AS
              SELECT 'queue'::text AS family, m.metric, m.labels, m.value FROM settle._metrics_queue() m
    UNION ALL SELECT 'cycles', m.metric, m.labels, m.value FROM settle._metrics_cycles() m
    UNION ALL SELECT 'latency', m.metric, m.labels, m.value FROM settle._metrics_latency() m
    UNION ALL SELECT 'outbox', m.metric, m.labels, m.value FROM settle._metrics_outbox() m
    UNION ALL SELECT 'worker', m.metric, m.labels, m.value FROM settle._metrics_worker() m
    UNION ALL SELECT 'replication', m.metric, m.labels, m.value FROM settle._metrics_replication() m
    UNION ALL SELECT 'backlog', m.metric, m.labels, m.value FROM settle._metrics_backlog() m
    UNION ALL SELECT 'liquidity', m.metric, m.labels, m.value FROM settle._metrics_liquidity() m;

-- issue #21: the day's liquidity forecasts are part of the calendar
-- (settle_schedule_jobs gains the job settle-liquidity-forecast)
DROP FUNCTION settle_schedule_jobs(text, text, text);
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
REVOKE ALL ON FUNCTION @extschema@.settle_schedule_jobs(text, text, text, text) FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.settle_schedule_jobs(text, text, text, text) IS
    'Schedule the calendar jobs with pg_cron: end of day, key retention, rail time-outs, the day''s liquidity forecasts';

-- issue #20: netting-only baseline of every cycle (naive -> netting ->
-- optimised): FIFO's payments netted per participant and currency, its wires
-- and cost on settle.cycle (NULL in cycles recorded before 1.1) and in
-- settle.cycles with saved_vs_netting_pct.  The view now lists its columns
-- (1.0's c.* was expanded when it was created), so the new ones follow
-- value_over_fifo as in a fresh install; CREATE OR REPLACE VIEW resets the
-- view's options, so security_invoker is set again (90_security.sql).
ALTER TABLE settle.cycle ADD COLUMN fifo_netted_wires integer, ADD COLUMN fifo_netted_cost numeric;
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
ALTER VIEW settle.cycles SET (security_invoker = true);
COMMENT ON VIEW settle.cycles IS 'settlement cycles: what each did, what it cost, and the same queue''s baselines (FIFO gross, FIFO netted, naive batching)';
COMMENT ON COLUMN settle.cycles.fifo_netted_wires IS 'wires of the netting-only baseline: FIFO''s payments netted per participant and currency, no optimisation (NULL before 1.1)';
COMMENT ON COLUMN settle.cycles.fifo_netted_cost IS 'what the netting-only baseline would have cost: a fee per wire with a net, spread on each currency pair''s net (NULL before 1.1)';
COMMENT ON COLUMN settle.cycles.saved_vs_netting_pct IS 'cost saved against the netting-only baseline, percent (NULL when that cost is 0 or unknown)';
COMMENT ON COLUMN settle.cycle.fifo_netted_wires IS 'wires of the netting-only baseline (settle.cycles)';
COMMENT ON COLUMN settle.cycle.fifo_netted_cost IS 'cost of the netting-only baseline, reference currency (settle.cycles)';
