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
        OR (j.kind = 'reversal'
            AND NOT EXISTS (SELECT 1 FROM settle.event e
                             WHERE e.entity = 'payment' AND e.event_type = 'returned'
                               AND (e.details->>'journal_id')::bigint = j.journal_id
                               AND e.details->>'reference' IS NOT DISTINCT FROM j.reference
                               AND j.cycle_id IS NULL))
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

CREATE OR REPLACE FUNCTION settle_replay(only_differences boolean DEFAULT true)
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
         WHERE e.entity = 'payment' AND e.to_status IN ('settled', 'reserved', 'failed', 'queued', 'returned')
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
