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
CREATE OR REPLACE FUNCTION settle._leaf_content(seq bigint, entry_id bigint, journal_id bigint, batch_id bigint,
                                     payment_id bigint, participant_id text, account_id text, currency text,
                                     amount bigint, posted_at timestamptz, account_seq bigint, balance_after bigint)
RETURNS text LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT pg_catalog.jsonb_build_array(seq, entry_id, journal_id, batch_id, payment_id, participant_id, account_id, currency,
               amount, (extract(epoch FROM posted_at) * 1000000)::bigint, account_seq, balance_after)::text
$$;
-- Microseconds since the epoch; -infinity and infinity as the ends of bigint.
CREATE OR REPLACE FUNCTION settle._epoch_us(t timestamptz) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE WHEN pg_catalog.isfinite(t) THEN (extract(epoch FROM t) * 1000000)::bigint
                WHEN t > '2000-01-01'::timestamptz THEN 9223372036854775807
                ELSE -9223372036854775808 END
$$;
CREATE OR REPLACE FUNCTION settle._leaf_hash(salt bytea, content text) RETURNS bytea
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT pg_catalog.sha256('\x00'::bytea OPERATOR(pg_catalog.||) salt
                             OPERATOR(pg_catalog.||) pg_catalog.convert_to(content, 'UTF8'))
$$;
CREATE OR REPLACE FUNCTION settle._node_hash(l bytea, r bytea) RETURNS bytea
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT pg_catalog.sha256('\x01'::bytea OPERATOR(pg_catalog.||) l OPERATOR(pg_catalog.||) r)
$$;

-- Adds every sealed entry that is not a leaf yet, then every subtree those
-- leaves complete.  Returns the number of leaves added.  Runs under the seal
-- lock (from the seal_run trigger), so leaves are added by one at a time.
-- In C since 1.2 (src/merkle.c: the leaves numbered, hashed and written in
-- chunks, byte for byte what _leaf_content, _leaf_hash and _node_hash above
-- define, which settle_verify() recomputes).
CREATE OR REPLACE FUNCTION settle._merkle_extend() RETURNS bigint
    AS 'MODULE_PATHNAME', 'settle_merkle_extend'
    LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp;

CREATE OR REPLACE FUNCTION settle._merkle_on_seal() RETURNS trigger
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
CREATE OR REPLACE FUNCTION settle._merkle_size() RETURNS bigint
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT coalesce(max(n.idx) + 1, 0) FROM settle.ledger_merkle_node n WHERE n.level = 0
$$;

-- One stored subtree (an error if it is missing: the tree is incomplete).
CREATE OR REPLACE FUNCTION settle._merkle_node(lvl int, i bigint) RETURNS bytea
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
CREATE OR REPLACE FUNCTION settle._merkle_root(n bigint) RETURNS bytea
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
CREATE OR REPLACE FUNCTION settle._merkle_path(m bigint, n bigint) RETURNS bytea[]
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
CREATE OR REPLACE FUNCTION settle_statement(participant_id text, from_time timestamptz, to_time timestamptz,
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

-- ---- Consistency proofs and checking the tree (issue #29) ----

-- The root of leaves off .. off + len - 1 from the stored complete subtrees:
-- the perfect subtrees of len (one per bit, largest first) folded from the
-- right.  off is a multiple of the largest of them (as everywhere the RFC's
-- recursion splits a tree), so each one is a stored node.
CREATE OR REPLACE FUNCTION settle._merkle_range_root(off bigint, len bigint) RETURNS bytea
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    peaks bytea[] := '{}';
    r bytea;
    b int;
    i int;
BEGIN
    IF len = 0 THEN
        RETURN sha256(''::bytea);
    END IF;
    FOR b IN REVERSE 62..0 LOOP
        CONTINUE WHEN (len >> b) & 1 = 0;
        IF off % (1::bigint << b) <> 0 THEN
            RAISE EXCEPTION 'leaves % to % are not a split of the statement tree', off, off + len - 1
                USING ERRCODE = 'XX000';
        END IF;
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

-- The consistency proof between the trees of the first m and the first n
-- leaves (RFC 9162 section 2.1.4.1, SUBPROOF(m, D[n], true)), 0 <= m <= n:
-- empty when m = 0 or m = n.  The recursion, unrolled: each step appends
-- one subtree root after the proof of the part it recurses into, so the
-- roots are collected outermost first and the proof is them in reverse,
-- after the root of the subtree the recursion ends at (when that is not
-- the old tree itself).
CREATE OR REPLACE FUNCTION settle._merkle_consistency(m bigint, n bigint) RETURNS bytea[]
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    off bigint := 0;
    len bigint := n;
    whole boolean := true;      -- the RFC's b: the old tree is D[0:m] itself
    outer_roots bytea[] := '{}';
    path bytea[] := '{}';
    k bigint;
    i int;
BEGIN
    IF m IS NULL OR n IS NULL OR m < 0 OR m > n OR n > settle._merkle_size() THEN
        RAISE EXCEPTION 'no consistency proof from % to % leaves: the statement tree has % leaves', m, n,
            settle._merkle_size() USING ERRCODE = '22023';
    END IF;
    IF m = 0 OR m = n THEN
        RETURN path;
    END IF;
    WHILE m <> len LOOP
        -- k: the largest power of two below len
        k := 1;
        WHILE k * 2 < len LOOP
            k := k * 2;
        END LOOP;
        IF m <= k THEN
            outer_roots := outer_roots || settle._merkle_range_root(off + k, len - k);
            len := k;
        ELSE
            outer_roots := outer_roots || settle._merkle_range_root(off, k);
            off := off + k;
            m := m - k;
            len := len - k;
            whole := false;
        END IF;
    END LOOP;
    IF NOT whole THEN
        path := path || settle._merkle_range_root(off, len);
    END IF;
    FOR i IN REVERSE cardinality(outer_roots) .. 1 LOOP
        path := path || outer_roots[i];
    END LOOP;
    RETURN path;
END
$$;

-- The public face: both trees' sizes and roots and the proof, as the
-- offline verifier reads it (tools/settle-verify-statement --consistency).
-- Hashes only: a participant may have it.
CREATE OR REPLACE FUNCTION settle_consistency_proof(old_size bigint, new_size bigint DEFAULT NULL)
RETURNS jsonb LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n bigint := coalesce(new_size, settle._merkle_size());
BEGIN
    IF old_size IS NULL OR old_size < 0 OR old_size > n OR n > settle._merkle_size() THEN
        RAISE EXCEPTION 'no consistency proof from tree size % to %', old_size, n USING ERRCODE = '22023',
            DETAIL = format('The statement tree has %s leaves; 0 <= old_size <= new_size <= that.', settle._merkle_size());
    END IF;
    RETURN jsonb_build_object(
        'format', 'settle-consistency-proof/1',
        'old', jsonb_build_object('size', old_size, 'root', encode(settle._merkle_root(old_size), 'hex')),
        'new', jsonb_build_object('size', n, 'root', encode(settle._merkle_root(n), 'hex')),
        'proof', (SELECT coalesce(jsonb_agg(encode(h, 'hex') ORDER BY o), '[]'::jsonb)
                    FROM unnest(settle._merkle_consistency(old_size, n)) WITH ORDINALITY AS x(h, o)));
END
$$;
COMMENT ON FUNCTION settle_consistency_proof(bigint, bigint) IS
    'RFC 9162 consistency proof that the statement tree of new_size leaves (default: all) extends the one of old_size; check offline with tools/settle-verify-statement --consistency';

-- The tree's leaves recomputed from the ledger: every sealed entry of the
-- first n in chain order, its leaf hashed from the entry's row and its
-- leaf's salt, with its number and balance in its account counted again
-- from the entries (not read from settle.ledger_leaf).  hash is NULL when
-- the entry's row or its leaf is gone, or the leaf is another entry's.
CREATE OR REPLACE FUNCTION settle._merkle_leaves_recomputed(n bigint)
RETURNS TABLE (seq bigint, entry_id bigint, leaf_entry_id bigint, stored_account_seq bigint, stored_balance bigint,
               account_seq bigint, balance_after bigint, hash bytea, stored_account_id text, account_id text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT c.seq, c.entry_id, l.entry_id, l.account_seq, l.balance_after, c.account_seq, c.balance_after,
           CASE WHEN c.present AND l.entry_id = c.entry_id
                THEN settle._leaf_hash(l.salt, settle._leaf_content(c.seq, c.entry_id, c.journal_id, c.batch_id,
                         c.payment_id, c.participant_id, c.account_id, c.currency, c.amount, c.posted_at,
                         c.account_seq, c.balance_after)) END,
           l.account_id, c.account_id
      FROM (SELECT s.seq, s.entry_id, e.entry_id IS NOT NULL AS present, e.journal_id, e.batch_id, e.payment_id,
                   a.participant_id, e.account_id, e.currency, e.amount, e.posted_at,
                   row_number() OVER w AS account_seq, (sum(e.amount) OVER w)::bigint AS balance_after
              FROM settle.ledger_seal s
              LEFT JOIN settle.ledger_entry e ON e.entry_id = s.entry_id
              LEFT JOIN settle.account a ON a.account_id = e.account_id
             WHERE s.seq <= n
            WINDOW w AS (PARTITION BY e.account_id ORDER BY s.seq)) c
      LEFT JOIN settle.ledger_leaf l ON l.seq = c.seq
     ORDER BY c.seq
$$;

-- The root of the tree of the first n leaves recomputed from the ledger
-- alone (the leaves above, folded as RFC 9162 defines the tree: one stack
-- of perfect subtrees, merged as each leaf completes them), not from the
-- stored subtrees.  NULL when a leaf cannot be recomputed or the chain has
-- fewer than n seals.
CREATE OR REPLACE FUNCTION settle._merkle_root_recomputed(n bigint) RETURNS bytea
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    stack bytea[] := '{}';
    cnt bigint := 0;
    k bigint;
    h bytea;
    r bytea;
    i int;
BEGIN
    IF n IS NULL OR n < 0 THEN
        RETURN NULL;
    END IF;
    IF n = 0 THEN
        RETURN sha256(''::bytea);
    END IF;
    FOR h IN SELECT x.hash FROM settle._merkle_leaves_recomputed(n) x ORDER BY x.seq LOOP
        IF h IS NULL THEN
            RETURN NULL;
        END IF;
        cnt := cnt + 1;
        -- the leaf completes one subtree per trailing zero bit of cnt
        k := cnt;
        WHILE k & 1 = 0 LOOP
            h := settle._node_hash(stack[cardinality(stack)], h);
            stack := stack[1:cardinality(stack) - 1];
            k := k >> 1;
        END LOOP;
        stack := stack || h;
    END LOOP;
    IF cnt <> n THEN
        RETURN NULL;
    END IF;
    r := stack[cardinality(stack)];
    FOR i IN REVERSE cardinality(stack) - 1 .. 1 LOOP
        r := settle._node_hash(stack[i], r);
    END LOOP;
    RETURN r;
END
$$;

-- The tree's checks, for settle_verify() (one row per problem):
--   merkle_leaf_missing   a sealed entry that is not a leaf of the tree (no leaf row, no
--                         leaf hash, or beyond the tree's size)
--   merkle_leaf_altered   a leaf whose stored hash, entry, account, number in its account
--                         or balance differs from what the ledger gives (content, chain order)
--   merkle_node_altered   a stored subtree whose hash is not the hash of its two halves, a
--                         complete subtree not stored, or one stored beyond the tree
--   merkle_root_mismatch  the root from the stored subtrees differs from the root
--                         recomputed from the ledger (or a subtree it needs is missing)
CREATE OR REPLACE FUNCTION settle._verify_merkle()
RETURNS TABLE (problem text, entity text, entity_id text, detail text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n bigint := settle._merkle_size();
    stored bytea;
    recomputed bytea;
BEGIN
    RETURN QUERY
    SELECT CASE WHEN x.leaf_entry_id IS NULL OR nd.hash IS NULL THEN 'merkle_leaf_missing' ELSE 'merkle_leaf_altered' END,
           'ledger_entry', x.entry_id::text,
           format('leaf %s (seal %s, entry %s): %s', x.seq - 1, x.seq, x.entry_id,
                  CASE WHEN x.seq > n THEN format('the entry is sealed but the tree has %s leaves', n)
                       WHEN x.leaf_entry_id IS NULL THEN 'the leaf row is gone'
                       WHEN nd.hash IS NULL THEN 'the leaf hash is gone'
                       WHEN x.leaf_entry_id <> x.entry_id THEN format('the leaf is of entry %s', x.leaf_entry_id)
                       WHEN x.stored_account_seq IS DISTINCT FROM x.account_seq
                         OR x.stored_balance IS DISTINCT FROM x.balance_after
                           THEN format('the leaf says entry %s of its account, balance %s; the ledger gives %s, %s',
                                       x.stored_account_seq, x.stored_balance, x.account_seq, x.balance_after)
                       -- the leaf row's account decides whose statements show it
                       WHEN x.account_id IS NOT NULL AND x.stored_account_id IS DISTINCT FROM x.account_id
                           THEN format('the leaf is filed under account %s; the entry is of account %s',
                                       x.stored_account_id, x.account_id)
                       WHEN x.hash IS NULL THEN 'the sealed entry is gone'
                       ELSE 'the leaf hash differs from the hash of the entry''s content' END)
      FROM settle._merkle_leaves_recomputed(9223372036854775807) x
      LEFT JOIN settle.ledger_merkle_node nd ON nd.level = 0 AND nd.idx = x.seq - 1
     WHERE x.seq > n OR x.leaf_entry_id IS NULL OR nd.hash IS NULL OR x.leaf_entry_id <> x.entry_id
        OR x.stored_account_seq IS DISTINCT FROM x.account_seq OR x.stored_balance IS DISTINCT FROM x.balance_after
        OR (x.account_id IS NOT NULL AND x.stored_account_id IS DISTINCT FROM x.account_id)
        OR x.hash IS DISTINCT FROM nd.hash
     ORDER BY x.seq;

    -- every subtree above the leaves: stored where complete, the hash of its halves
    RETURN QUERY
    WITH expected AS (
        SELECT l.lvl, i.idx
          FROM generate_series(1, 62) l(lvl)
          CROSS JOIN LATERAL generate_series(0, (n >> l.lvl) - 1) i(idx)
         WHERE (n >> l.lvl) > 0),
    checked AS (
        SELECT coalesce(e.lvl, nd.level) AS lvl, coalesce(e.idx, nd.idx) AS idx, nd.hash,
               e.lvl IS NOT NULL AS complete, a.hash AS left_hash, b.hash AS right_hash
          FROM expected e
          FULL JOIN (SELECT x.level, x.idx, x.hash FROM settle.ledger_merkle_node x WHERE x.level > 0) nd
            ON nd.level = e.lvl AND nd.idx = e.idx
          LEFT JOIN settle.ledger_merkle_node a ON a.level = coalesce(e.lvl, nd.level) - 1 AND a.idx = 2 * coalesce(e.idx, nd.idx)
          LEFT JOIN settle.ledger_merkle_node b ON b.level = coalesce(e.lvl, nd.level) - 1 AND b.idx = 2 * coalesce(e.idx, nd.idx) + 1)
    SELECT 'merkle_node_altered', 'ledger_merkle_node', format('%s/%s', c.lvl, c.idx),
           format('subtree (level %s, index %s) of leaves %s to %s: %s', c.lvl, c.idx,
                  c.idx << c.lvl, ((c.idx + 1) << c.lvl) - 1,
                  CASE WHEN NOT c.complete THEN format('stored, but the tree of %s leaves does not complete it', n)
                       WHEN c.hash IS NULL THEN 'complete but not stored'
                       WHEN c.left_hash IS NULL OR c.right_hash IS NULL THEN 'a half of it is not stored'
                       ELSE 'its hash is not the hash of its two halves' END)
      FROM checked c
     WHERE NOT c.complete OR c.hash IS NULL OR c.left_hash IS NULL OR c.right_hash IS NULL
        OR c.hash <> settle._node_hash(c.left_hash, c.right_hash)
     ORDER BY c.lvl, c.idx;

    recomputed := settle._merkle_root_recomputed(n);
    BEGIN
        stored := settle._merkle_root(n);
    EXCEPTION WHEN data_corrupted THEN
        stored := NULL;
    END;
    IF recomputed IS NULL OR stored IS NULL OR stored <> recomputed THEN
        RETURN QUERY
        SELECT 'merkle_root_mismatch', 'ledger_merkle', n::text,
               format('the root of the tree of %s leaves: from the stored subtrees %s; recomputed from the ledger %s', n,
                      coalesce(encode(stored, 'hex'), 'none (a subtree is missing)'),
                      coalesce(encode(recomputed, 'hex'), 'none (a leaf cannot be recomputed)'));
    END IF;
END
$$;

REVOKE ALL ON FUNCTION settle._merkle_range_root(bigint, bigint), settle._merkle_consistency(bigint, bigint),
    settle._merkle_leaves_recomputed(bigint), settle._merkle_root_recomputed(bigint), settle._verify_merkle(),
    @extschema@.settle_consistency_proof(bigint, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION settle._merkle_consistency(bigint, bigint), @extschema@.settle_consistency_proof(bigint, bigint)
    TO settle_submitter, settle_operator, settle_auditor;
