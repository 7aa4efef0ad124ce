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
CREATE OR REPLACE FUNCTION settle._link_admit(groups text[], sizes integer[], payers text[], payees text[],
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
CREATE OR REPLACE FUNCTION settle._link_record(ids bigint[], groups text[]) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    INSERT INTO settle.payment_link (payment_id, link_group)
        SELECT x.id, x.g FROM unnest(ids, groups) AS x(id, g);
    UPDATE settle.link_group g SET members = g.members + n.k, updated_at = clock_timestamp()
      FROM (SELECT x.g, count(*)::int AS k FROM unnest(groups) AS x(g) GROUP BY x.g) n
     WHERE g.link_group = n.g;
$$;

-- Ends a group: its members that are still queued or held become
-- `outcome` ('failed' or 'expired'), each with an event naming the group.
CREATE OR REPLACE FUNCTION settle._link_end(p_group text, outcome text, why text) RETURNS integer
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
CREATE OR REPLACE FUNCTION settle._link_refused(groups text[], sizes integer[], payers text[], payees text[],
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
CREATE OR REPLACE FUNCTION settle._link_housekeeping(timeout interval) RETURNS integer
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
CREATE OR REPLACE VIEW settle.link_groups AS
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
