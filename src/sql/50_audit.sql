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
CREATE OR REPLACE FUNCTION settle._entry_content(entry_id bigint, journal_id bigint, batch_id bigint, payment_id bigint,
                                      account_id text, currency text, amount bigint, posted_at timestamptz)
RETURNS bytea LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT pg_catalog.convert_to(pg_catalog.jsonb_build_array(
               entry_id, journal_id, batch_id, payment_id, account_id, currency, amount,
               (extract(epoch FROM posted_at) * 1000000)::bigint)::text, 'UTF8')
$$;
CREATE OR REPLACE FUNCTION settle._event_content(event_id bigint, occurred_at timestamptz, entity text, entity_id text,
                                      event_type text, from_status text, to_status text, details jsonb)
RETURNS bytea LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT pg_catalog.convert_to(pg_catalog.jsonb_build_array(
               event_id, (extract(epoch FROM occurred_at) * 1000000)::bigint,
               entity, entity_id, event_type, from_status, to_status, details)::text, 'UTF8')
$$;

-- The chain as a running aggregate: state = hash so far (start: the
-- previous head), each row: sha256(state || content).
CREATE OR REPLACE FUNCTION settle._chain_step(state bytea, start bytea, content bytea) RETURNS bytea
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT pg_catalog.sha256(coalesce(state, start) OPERATOR(pg_catalog.||) content)
$$;
CREATE OR REPLACE AGGREGATE settle._chain(start bytea, content bytea) (
    SFUNC = settle._chain_step,
    STYPE = bytea
);

-- What differs between the two chains: the table, its id column, its seal
-- table, the canonical content of a row (alias e), and the words for them.
CREATE OR REPLACE FUNCTION settle._chain_spec(which text,
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

-- Appends the chain's unsealed rows of the window [low, horizon) (and, after
-- a restore, of xid >= foreign_from) after seal last_seq with hash head, in
-- (xid, id) order, each hash sha256(previous hash || content) with the
-- content _entry_content / _event_content define (byte for byte: in C since
-- 1.2, src/seal_chain.c).  Returns the rows sealed.
CREATE OR REPLACE FUNCTION settle._chain_append(which text, last_seq bigint, head bytea,
                                                low xid8, horizon xid8, foreign_from xid8) RETURNS bigint
    AS 'MODULE_PATHNAME', 'settle_chain_append'
    LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp;

-- Seals one chain up to the horizon: every row written by a transaction that
-- finished below it and not sealed yet, in (xid, id) order, each hash over
-- the previous one and the row's content.
CREATE OR REPLACE FUNCTION settle._seal_chain(which text, horizon xid8,
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
        -- (in (xid, id) order, each hash over the previous one: src/seal_chain.c)
        sealed := settle._chain_append(which, last_seq, head, low, horizon, foreign_from);
        -- a run that sealed nothing leaves no row (issue #29): an idle server
        -- writes nothing, and the next run starts from the same horizon
        IF sealed > 0 THEN
            EXECUTE last_seal INTO last_seq, head;
            INSERT INTO settle.seal_run (chain, sealed_below, rows_sealed, last_seq, last_hash)
                VALUES (which, horizon, sealed, last_seq, head);
        END IF;
    END IF;
    -- also when nothing was sealed: every row below the horizon is in the chain
    sealed_below := greatest(horizon, low);
END
$$;

-- Seals every row of both chains whose inserting transaction has finished.
-- Returns one row per chain: rows sealed now, the chain's length and head.
CREATE OR REPLACE FUNCTION settle._seal()
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
CREATE OR REPLACE FUNCTION settle_seal()
RETURNS TABLE (chain text, sealed bigint, last_seq bigint, head text, sealed_below xid8)
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT * FROM settle._seal()
$$;

-- Chain checks of one chain, shared by settle_verify(): each seal whose
-- row is gone or differs from what was sealed, each broken link, each row
-- that should be sealed and is not.  The first problem in chain order is
-- marked "first broken entry".  Problems are named chain_entry_* for the
-- ledger, chain_event_* for the events.
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
--   merkle_*             see settle._verify_merkle (87_statements.sql)
-- seal => true seals first (not on a standby), so that everything finished
-- is checked against the chain.
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
    -- the statement Merkle tree against the ledger (87_statements.sql)
    RETURN QUERY SELECT * FROM settle._verify_merkle();

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
     -- the events that posted it, live or carried by an archive (48_archive.sql);
     -- nothing in settle writes an adjustment journal (the kind is reserved),
     -- so no event announces one
     WHERE j.kind NOT IN ('funding', 'reversal', 'settlement')
        OR (j.kind = 'funding'
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
CREATE OR REPLACE FUNCTION settle._may_seal() RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT NOT pg_is_in_recovery()
       AND (pg_has_role(current_user, 'settle_operator', 'MEMBER')
            OR (SELECT r.rolsuper FROM pg_roles r WHERE r.rolname = current_user))
$$;

-- The caller's rights: seals first only when the caller may (seal => true,
-- an operator, not a standby); then the checks, as the owner.
CREATE OR REPLACE FUNCTION settle_verify(seal boolean DEFAULT true)
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

-- The caller's rights: an operator's call seals first, an auditor's writes
-- nothing and exports the heads sealed so far.
CREATE OR REPLACE FUNCTION settle_chain_digest()
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
-- entry before it.)  And the statement tree's root of the digest's size,
-- recomputed from the ledger (not from the stored subtrees): row
-- ledger_merkle, seq = the tree size.
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
    -- digests before 1.1 have no tree
    IF jsonb_typeof(digest->'ledger_merkle') = 'object' THEN
        RETURN QUERY
        SELECT 'ledger_merkle'::text, t.size, digest->'ledger_merkle'->>'root', encode(t.root, 'hex'),
               coalesce(encode(t.root, 'hex') = digest->'ledger_merkle'->>'root', false)
          FROM (SELECT x.size, settle._merkle_root_recomputed(x.size) AS root
                  FROM (SELECT (digest->'ledger_merkle'->>'size')::bigint AS size) x) t;
    END IF;
END
$$;

-- Balance of an account as of a moment: the sum of its entries posted at or
-- before it.
CREATE OR REPLACE FUNCTION settle_balance_as_of(account_id text, as_of timestamptz)
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
-- returns every comparison.  settle_replay() (88_controls.sql, once the
-- controls' tables exist) is this and the participants' controls.
CREATE OR REPLACE FUNCTION settle._replay_state(only_differences boolean)
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
CREATE OR REPLACE FUNCTION settle_create_publication()
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
