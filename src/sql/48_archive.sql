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
CREATE OR REPLACE FUNCTION settle._archived(p_entity text, p_entity_id text, p_field text) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT s.value FROM settle.archive_state s
     WHERE s.entity = p_entity AND s.entity_id = p_entity_id AND s.field = p_field
     ORDER BY s.archive_id DESC LIMIT 1
$$;

-- The sum of one counter over every archive (metrics that count events).
CREATE OR REPLACE FUNCTION settle._archived_count(counter text) RETURNS bigint
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT coalesce(sum(s.value::bigint), 0)::bigint FROM settle.archive_state s
     WHERE s.entity = 'counter' AND s.entity_id = counter AND s.field = 'count'
$$;

-- The event chain's base: the position and hash the live chain goes on from
-- (0 and 32 zero bytes before any archive).
CREATE OR REPLACE FUNCTION settle._event_chain_base(OUT base_seq bigint, OUT base_hash bytea)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT coalesce(max(a.last_seq), 0),
           coalesce((SELECT a2.end_hash FROM settle.archive a2 ORDER BY a2.last_seq DESC LIMIT 1),
                    decode(repeat('00', 32), 'hex'))
      FROM settle.archive a
$$;

-- One slice (issue #29): archives the sealed events older than `before`
-- (whole transactions, a prefix of the live chain), at most about max_events
-- of them (NULL: all; a transaction is never split, so one larger than
-- max_events is archived whole), the cycles completed by them and the seal
-- runs before the last of each chain.  Archives only what is sealed (the
-- worker seals after every cycle; settle_seal() otherwise).  With
-- full_verify it refuses while settle_verify() reports a problem (an archive
-- must carry a clean state); the check runs before the seal lock is taken,
-- so seals and cycles go on meanwhile.  Every slice checks its own seals:
-- linked from the live chain's base, each event's content matching its seal.
-- The seal lock is held only for the slice's copy and delete.  Returns the
-- new archive, or no row when there is nothing to archive.
CREATE OR REPLACE FUNCTION settle._archive_slice(before timestamptz, max_events bigint, full_verify boolean)
RETURNS TABLE (archive_id bigint, events bigint, cycles bigint, seal_runs bigint, first_seq bigint,
               last_seq bigint, end_hash text, tables text[])
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    cut_time bigint;
    tx_first bigint;
    tx_last bigint;
    base record;
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
    IF max_events IS NOT NULL AND max_events < 1 THEN
        RAISE EXCEPTION 'a slice must hold at least one event' USING ERRCODE = '22023',
            DETAIL = format('Asked for %s.', max_events);
    END IF;
    -- one archive at a time (the lock also lets this transaction's DELETEs through)
    LOCK TABLE settle.archive_lock IN EXCLUSIVE MODE;
    base := settle._event_chain_base();
    IF full_verify THEN
        SELECT count(*) INTO problems FROM settle._verify();
        IF problems > 0 THEN
            RAISE EXCEPTION 'the ledger does not verify: nothing archived' USING ERRCODE = 'SE155',
                DETAIL = format('settle_verify() reports %s problems.', problems),
                HINT = 'An archive carries the state its events prove: resolve what settle_verify() reports first.';
        END IF;
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
    -- the chain's last seal stays: the next seal run links to it
    IF cut IS NOT NULL AND NOT EXISTS (SELECT 1 FROM settle.event_seal x WHERE x.seq > cut) THEN
        SELECT coalesce(min(x.seq) - 1, cut) INTO cut
          FROM settle.event_seal x JOIN settle.event e ON e.event_id = x.event_id
         WHERE e.xid = (SELECT e2.xid FROM settle.event_seal x2 JOIN settle.event e2 ON e2.event_id = x2.event_id
                         WHERE x2.seq = cut);
    END IF;
    IF cut IS NULL OR cut <= base.base_seq THEN
        RETURN;
    END IF;
    -- a slice: at most max_events, ending with a whole transaction (the one
    -- the limit falls into is left out, or taken whole if it is the first)
    cut_time := cut;
    IF max_events IS NOT NULL AND base.base_seq + max_events < cut_time THEN
        cut := base.base_seq + max_events;
        SELECT min(x.seq), max(x.seq) INTO tx_first, tx_last
          FROM settle.event_seal x JOIN settle.event e ON e.event_id = x.event_id
         WHERE x.seq > base.base_seq AND x.seq <= cut_time
           AND e.xid = (SELECT e2.xid FROM settle.event_seal x2 JOIN settle.event e2 ON e2.event_id = x2.event_id
                         WHERE x2.seq = cut + 1);
        IF tx_first IS NOT NULL AND tx_first <= cut THEN
            cut := CASE WHEN tx_first - 1 > base.base_seq THEN tx_first - 1 ELSE tx_last END;
        END IF;
    END IF;
    -- the slice's own seals: linked from the live chain's base, contents intact
    SELECT count(*) INTO problems
      FROM (SELECT x.seq, x.prev_hash, x.hash, lag(x.hash) OVER (ORDER BY x.seq) AS before_hash,
                   row_number() OVER (ORDER BY x.seq) AS pos, e.event_id AS present,
                   settle._event_content(e.event_id, e.occurred_at, e.entity, e.entity_id, e.event_type,
                                         e.from_status, e.to_status, e.details) AS content
              FROM settle.event_seal x LEFT JOIN settle.event e ON e.event_id = x.event_id
             WHERE x.seq > base.base_seq AND x.seq <= cut) y
     WHERE y.seq <> base.base_seq + y.pos OR y.prev_hash <> coalesce(y.before_hash, base.base_hash)
        OR y.present IS NULL OR sha256(y.prev_hash || y.content) <> y.hash;
    IF problems > 0 THEN
        RAISE EXCEPTION 'the ledger does not verify: nothing archived' USING ERRCODE = 'SE155',
            DETAIL = format('%s seals of the events to archive are broken or do not match their events.', problems),
            HINT = 'An archive carries the state its events prove: resolve what settle_verify() reports first.';
    END IF;
    -- only now, for the copy and the delete: no seal run in between
    LOCK TABLE settle.seal_lock IN EXCLUSIVE MODE;
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
        -- each control's last change (settle._replay_controls, 88_controls.sql)
        (SELECT DISTINCT ON (e.entity, e.entity_id, c.field) $1, e.entity, e.entity_id, c.field, c.value
           FROM %1$s e, settle._control_state(e.entity, e.event_type, e.details) c
          ORDER BY e.entity, e.entity_id, c.field, e.event_id DESC)
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

-- One slice of at most max_events (default 10,000) events, in the caller's
-- transaction: call it again (or CALL settle_archive_all) until it returns no
-- row.  Checks the whole ledger first (SE155), outside the seal lock.
CREATE OR REPLACE FUNCTION settle_archive(before timestamptz, max_events bigint DEFAULT 10000)
RETURNS TABLE (archive_id bigint, events bigint, cycles bigint, seal_runs bigint, first_seq bigint,
               last_seq bigint, end_hash text, tables text[])
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT * FROM settle._archive_slice(before, max_events, true)
$$;

-- Everything older than `before`, slice after slice, each slice committed in
-- its own transaction (CALL it outside a transaction block, e.g. from
-- pg_cron): seals first, checks the whole ledger once (SE155), then each
-- slice checks its own seals.  Interrupted, it leaves whole archives behind,
-- and a new CALL goes on from there.  No SET clause and no SECURITY DEFINER
-- (either would forbid COMMIT): every name is schema-qualified, and the
-- work is done by settle._archive_slice as the owner.
CREATE OR REPLACE PROCEDURE settle_archive_all(before timestamptz, slice_events bigint DEFAULT 10000,
                                               INOUT archives integer DEFAULT NULL, INOUT events bigint DEFAULT NULL)
LANGUAGE plpgsql AS $$
DECLARE
    r record;
    first boolean := true;
BEGIN
    archives := 0;
    events := 0;
    IF settle._may_seal() THEN
        PERFORM settle._seal();
    END IF;
    COMMIT;
    LOOP
        SELECT * INTO r FROM settle._archive_slice(before, slice_events, first);
        EXIT WHEN r.archive_id IS NULL;
        archives := archives OPERATOR(pg_catalog.+) 1;
        events := events OPERATOR(pg_catalog.+) r.events;
        first := false;
        COMMIT;
    END LOOP;
END
$$;

-- Checks one archive against what settle.archive recorded: its tables still
-- attached, its seals linking from start_hash to end_hash, every archived
-- event's content matching its seal.  One row per archive.
CREATE OR REPLACE FUNCTION settle_verify_archive(archive bigint DEFAULT NULL)
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
CREATE OR REPLACE FUNCTION settle._archived_seal_hash(seq bigint) RETURNS bytea
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
CREATE OR REPLACE FUNCTION settle._archived_events(p_entity text, p_entity_id text) RETURNS SETOF settle.event
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
