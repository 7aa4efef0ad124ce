-- The statement Merkle tree checked (issue #29, item 4; docs/AUDIT.md):
-- 1. settle_verify() recomputes every leaf from the ledger, every stored
--    subtree from its halves and the root from the leaves: each kind of
--    tampering is reported with its own problem kind;
-- 2. settle_verify_digest() recomputes the digest's root at the digest's size;
-- 3. settle_consistency_proof(): shapes and refusals (the proofs themselves
--    are checked against an independent implementation and the offline
--    verifier in test/scripts/statement.sh).
-- Own database.
CREATE DATABASE settle_statement_tree;
\c settle_statement_tree
CREATE EXTENSION settle;
SELECT settle_create_participant(p) FROM unnest(ARRAY['mt_a', 'mt_b', 'mt_c']) p;
SELECT count(*) FROM (SELECT settle_create_account(p || '_usd', p, 'USD', opening_balance => 1000)
                        FROM unnest(ARRAY['mt_a', 'mt_b', 'mt_c']) p) x;
SELECT count(*) FROM (
    SELECT settle_submit('mt_' || i, 10 + i, 'USD', 'USD', s || '_usd', d || '_usd', d, 'mtk_' || i)
      FROM generate_series(1, 3) i, (VALUES ('mt_a', 'mt_b'), ('mt_b', 'mt_c'), ('mt_c', 'mt_a')) v(s, d)) x;
SELECT settled FROM settle_run_cycle();
SELECT count(*) > 0 AS sealed FROM settle_seal() WHERE sealed > 0;
-- 3 fundings (2 entries each) and 9 payments (2 legs each, batches net 0): 24 leaves
SELECT settle._merkle_size() AS size, (SELECT count(*) FROM settle.ledger_seal) AS seals;
SELECT settle_chain_digest() AS digest \gset
SELECT * FROM settle_verify();

------------------------------------------------------------------------
-- 1. Tampering, each undone by its ROLLBACK.
------------------------------------------------------------------------
CREATE FUNCTION problems() RETURNS TABLE (problem text, entity text, entity_id text, detail text)
LANGUAGE sql AS $$
    SELECT v.problem, v.entity, v.entity_id, regexp_replace(v.detail, '[0-9a-f]{64}', '<hash>', 'g')
      FROM settle_verify(seal => false) v WHERE v.problem LIKE 'merkle%'
$$;
-- an inner subtree's hash
BEGIN;
ALTER TABLE settle.ledger_merkle_node DISABLE TRIGGER ledger_merkle_node_append_only;
UPDATE settle.ledger_merkle_node SET hash = sha256(hash) WHERE level = 2 AND idx = 1;
SELECT * FROM problems();
ROLLBACK;
-- a peak, the root's own half (16 of the 24 leaves)
BEGIN;
ALTER TABLE settle.ledger_merkle_node DISABLE TRIGGER ledger_merkle_node_append_only;
UPDATE settle.ledger_merkle_node SET hash = sha256(hash) WHERE level = 4 AND idx = 0;
SELECT * FROM problems();
ROLLBACK;
-- a leaf hash and its parent recomputed to match: the leaf still differs from its entry
BEGIN;
ALTER TABLE settle.ledger_merkle_node DISABLE TRIGGER ledger_merkle_node_append_only;
UPDATE settle.ledger_merkle_node SET hash = sha256(hash) WHERE level = 0 AND idx = 5;
UPDATE settle.ledger_merkle_node p SET hash = settle._node_hash(a.hash, b.hash)
  FROM settle.ledger_merkle_node a, settle.ledger_merkle_node b
 WHERE p.level = 1 AND p.idx = 2 AND a.level = 0 AND a.idx = 4 AND b.level = 0 AND b.idx = 5;
SELECT * FROM problems();
ROLLBACK;
-- a leaf's balance (its number in the account is the ledger's)
BEGIN;
ALTER TABLE settle.ledger_leaf DISABLE TRIGGER ledger_leaf_append_only;
UPDATE settle.ledger_leaf SET balance_after = balance_after + 1 WHERE seq = 20;
SELECT * FROM problems();
ROLLBACK;
-- a leaf row gone, and a complete subtree gone
BEGIN;
ALTER TABLE settle.ledger_leaf DISABLE TRIGGER ledger_leaf_append_only;
ALTER TABLE settle.ledger_merkle_node DISABLE TRIGGER ledger_merkle_node_append_only;
DELETE FROM settle.ledger_leaf WHERE seq = 3;
DELETE FROM settle.ledger_merkle_node WHERE level = 3 AND idx = 2;
SELECT * FROM problems();
ROLLBACK;
-- the tree's last leaf gone: the tree is one leaf shorter than the chain
BEGIN;
ALTER TABLE settle.ledger_merkle_node DISABLE TRIGGER ledger_merkle_node_append_only;
DELETE FROM settle.ledger_merkle_node WHERE level = 0 AND idx = 23;
SELECT * FROM problems();
ROLLBACK;
-- an entry changed after sealing, its seals and its leaf recomputed to hide it
-- (a consistent rewrite of the chain): the leaf's entry and balance tell
BEGIN;
ALTER TABLE settle.ledger_entry DISABLE TRIGGER ledger_entry_append_only;
ALTER TABLE settle.ledger_seal DISABLE TRIGGER ledger_seal_append_only;
UPDATE settle.ledger_entry SET amount = amount - 1 WHERE entry_id = (SELECT entry_id FROM settle.ledger_seal WHERE seq = 10);
UPDATE settle.ledger_seal x SET prev_hash = n.prev_hash, hash = n.hash
  FROM (SELECT c.seq, coalesce(lag(c.hash) OVER (ORDER BY c.seq), decode(repeat('00', 32), 'hex')) AS prev_hash, c.hash
          FROM (SELECT s.seq, settle._chain(decode(repeat('00', 32), 'hex'),
                           settle._entry_content(e.entry_id, e.journal_id, e.batch_id, e.payment_id, e.account_id,
                                                 e.currency, e.amount, e.posted_at)) OVER (ORDER BY s.seq) AS hash
                  FROM settle.ledger_seal s JOIN settle.ledger_entry e USING (entry_id)) c) n
 WHERE n.seq = x.seq;
SELECT problem, count(*) FROM settle_verify(seal => false) GROUP BY 1 ORDER BY 1;
------------------------------------------------------------------------
-- 2. The digest's root, recomputed from the ledger at the digest's size
------------------------------------------------------------------------
SELECT chain, seq, matches FROM settle_verify_digest(:'digest');
ROLLBACK;
SELECT chain, seq, matches, stored_hash = current_hash AS same FROM settle_verify_digest(:'digest');
-- an earlier size's root matches too; another root does not
SELECT chain, seq, matches FROM settle_verify_digest(jsonb_build_object('format', 'settle-chain-digest/1',
           'ledger_merkle', jsonb_build_object('size', 7, 'root', encode(settle._merkle_root(7), 'hex'))));
SELECT chain, seq, matches FROM settle_verify_digest(jsonb_set(:'digest', '{ledger_merkle,root}',
           to_jsonb(encode(sha256('x'), 'hex'))));
-- a size beyond the chain: nothing to recompute
SELECT chain, seq, matches, current_hash IS NULL AS no_root FROM settle_verify_digest(jsonb_build_object('format', 'settle-chain-digest/1',
           'ledger_merkle', jsonb_build_object('size', 25, 'root', encode(settle._merkle_root(24), 'hex'))));
-- the root recomputed from the ledger is the one from the stored subtrees, at every size
SELECT count(*) FILTER (WHERE settle._merkle_root_recomputed(n) = settle._merkle_root(n)) AS equal, count(*) AS sizes
  FROM generate_series(0, 24) n;

------------------------------------------------------------------------
-- 3. Consistency proofs: lengths, the shape of one, refusals
------------------------------------------------------------------------
SELECT m, n, jsonb_array_length(p->'proof') AS hashes, p->'old'->>'size' AS old_size, p->'new'->>'size' AS new_size,
       p->'old'->>'root' = encode(settle._merkle_root(m), 'hex') AND p->'new'->>'root' = encode(settle._merkle_root(n), 'hex') AS roots
  FROM (VALUES (0, 24), (1, 24), (8, 24), (12, 24), (16, 24), (23, 24), (24, 24), (3, 7), (4, 8), (6, 8)) v(m, n),
       LATERAL (SELECT settle_consistency_proof(m, n) AS p) x;
-- RFC 9162 section 2.1.4.3's example (leaves d0 .. d6, inner nodes g = (d0 d1), h, i = (d4 d5),
-- k = (g h), l = (i j), j = d6): from 3 leaves [c, d, g, l], from 4 [l], from 6 [i, j, k]
CREATE FUNCTION rfc_name(h bytea) RETURNS text LANGUAGE sql AS $$
    SELECT CASE h WHEN settle._merkle_node(0, 2) THEN 'c' WHEN settle._merkle_node(0, 3) THEN 'd'
                  WHEN settle._merkle_node(1, 0) THEN 'g' WHEN settle._merkle_node(1, 2) THEN 'i'
                  WHEN settle._merkle_node(0, 6) THEN 'j' WHEN settle._merkle_node(2, 0) THEN 'k'
                  WHEN settle._node_hash(settle._merkle_node(1, 2), settle._merkle_node(0, 6)) THEN 'l'
                  ELSE '?' END
$$;
SELECT m, (SELECT array_agg(rfc_name(h) ORDER BY o) FROM unnest(settle._merkle_consistency(m, 7)) WITH ORDINALITY x(h, o)) AS proof
  FROM unnest(ARRAY[3, 4, 6]) m;
SELECT (settle_consistency_proof(24))->'new'->>'size' AS default_new_size;
SELECT settle_consistency_proof(5, 3);
SELECT settle_consistency_proof(-1, 3);
SELECT settle_consistency_proof(3, 25);
SELECT settle_consistency_proof(NULL, 3);
------------------------------------------------------------------------
-- 4. The tree grown by later seals of other sizes (src/merkle.c adds leaves
--    after a tree whose size is not a power of two, reading the complete
--    subtrees to the left of the new ones): every leaf, subtree and root is
--    what the SQL definition recomputes, at every size
------------------------------------------------------------------------
SELECT settle_create_account('mt_d_usd', 'mt_a', 'USD', opening_balance => 5) IS NOT NULL AS created;
SELECT sum(sealed) AS sealed FROM settle_seal() WHERE chain = 'ledger_entry';
SELECT settle_submit('mt_x1', 1, 'USD', 'USD', 'mt_d_usd', 'mt_b_usd', 'mt_b', 'mtk_x1') IS NOT NULL AS queued;
SELECT settled FROM settle_run_cycle();
SELECT sum(sealed) AS sealed FROM settle_seal() WHERE chain = 'ledger_entry';
SELECT count(*) FROM (
    SELECT settle_submit('mt_y' || i, i, 'USD', 'USD', 'mt_c_usd', 'mt_a_usd', 'mt_a', 'mtk_y' || i)
      FROM generate_series(1, 5) i) x;
SELECT settled FROM settle_run_cycle();
SELECT sum(sealed) AS sealed FROM settle_seal() WHERE chain = 'ledger_entry';
SELECT settle._merkle_size() AS size, (SELECT count(*) FROM settle.ledger_seal) AS seals;
SELECT * FROM settle_verify();
SELECT count(*) FILTER (WHERE settle._merkle_root_recomputed(n) = settle._merkle_root(n)) AS equal, count(*) AS sizes
  FROM generate_series(0, settle._merkle_size()) n;
-- every account's leaves numbered 1, 2, ... with the running balance
SELECT count(*) AS leaves_off FROM (
    SELECT l.account_seq <> row_number() OVER w AS seq_off,
           l.balance_after <> sum(e.amount) OVER w AS balance_off
      FROM settle.ledger_leaf l JOIN settle.ledger_entry e USING (entry_id)
    WINDOW w AS (PARTITION BY l.account_id ORDER BY l.seq)) x
 WHERE seq_off OR balance_off;
------------------------------------------------------------------------
-- 5. The chains' content, printed in C (src/seal_chain.c, src/canonical.c),
--    is byte for byte what jsonb prints: events whose texts and details
--    need escaping, nesting, numbers jsonb normalises, non-ASCII text, and
--    NULLs, sealed, then recomputed in SQL by settle_verify() and here
------------------------------------------------------------------------
INSERT INTO settle.event (entity, entity_id, event_type, from_status, to_status, details)
VALUES ('payment', 'q"uote\back', 'tab	and newline
here', NULL, 'ünïcødé ✓', '{"b": [1, 2.50, 1e3, -0.0, null, true], "a": {"z": "\"x\"", "é": "\u0001"}, "": ""}'),
       ('payment', 'plain', 'nulls', NULL, NULL, NULL),
       ('payment', 'scalar', 'scalar details', 'a', 'b', '"just a string"'),
       ('payment', 'number', 'number details', 'a', 'b', '12345678901234567890.123');
SELECT sum(sealed) > 0 AS sealed FROM settle_seal() WHERE chain = 'event';
SELECT * FROM settle_verify();
SELECT count(*) AS recomputed_equal
  FROM settle.event_seal x JOIN settle.event e USING (event_id)
 WHERE e.entity_id IN ('q"uote\back', 'plain', 'scalar', 'number')
   AND sha256(x.prev_hash || settle._event_content(e.event_id, e.occurred_at, e.entity, e.entity_id, e.event_type,
                                                   e.from_status, e.to_status, e.details)) = x.hash;
\c contrib_regression
DROP DATABASE settle_statement_tree;
