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
CREATE OR REPLACE FUNCTION settle._notify_payments(channel text, p_cycle_id bigint, ids bigint[]) RETURNS integer
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
