-- settle install script, part 8.3: API clients of the REST gateway
-- (settle-gateway, docs/GATEWAY.md).
--
-- An API client is a bearer token bound to one login role that
-- settle_map_role() mapped to a participant.  Only the token's SHA-256 is
-- stored: tokens are 244 random bits, so a fast unsalted hash cannot be
-- reversed by guessing (docs/SECURITY.md, "API tokens").  The gateway logs in
-- as a member of settle_gateway, resolves a token here, then submits with
-- SET ROLE to the client's role: intake's SE035/SE036 and row-level security
-- apply to the client's participant, in the database.

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
CREATE OR REPLACE FUNCTION settle_issue_api_token(client_id text, role_name name)
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
CREATE OR REPLACE FUNCTION settle_revoke_api_token(client_id text)
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
CREATE OR REPLACE FUNCTION settle_api_authenticate(token text,
    OUT client_id text, OUT role_name name, OUT participant_id text)
RETURNS SETOF record LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT c.client_id, r.rolname, c.participant_id
      FROM settle.api_client c
      JOIN pg_roles r ON r.oid = c.role_oid AND r.rolname = c.role_name
      JOIN settle.participant_role m ON m.role_oid = c.role_oid AND m.participant_id = c.participant_id
     WHERE c.token_hash = sha256(convert_to(token, 'UTF8')) AND c.revoked_at IS NULL
$$;

-- What the gateway's health endpoint reports about the database it reaches.
-- synchronous_standbys counts the standbys in sync or quorum state; needed,
-- missing and reason come from settle_sync_standby_state() (an orphan
-- refuses new payments: SE170).
CREATE OR REPLACE FUNCTION settle_gateway_health(
    OUT primary_node boolean, OUT worker_enabled boolean, OUT worker_running boolean,
    OUT last_cycle_age_seconds double precision,
    OUT synchronous_standby_required boolean, OUT synchronous_standbys integer,
    OUT synchronous_standbys_needed integer, OUT synchronous_standby_missing boolean,
    OUT synchronous_standby_reason text)
RETURNS record LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT NOT pg_is_in_recovery(),
           settle._database_served(),
           EXISTS (SELECT 1 FROM pg_stat_activity a
                    WHERE a.backend_type = 'settle worker' AND a.datname = current_database()),
           -- the worker's last cycle (it records no row for a cycle that changed nothing), else the last recorded one
           extract(epoch FROM clock_timestamp() - coalesce(
               (SELECT w.last_cycle_at FROM settle._worker_status() w),
               (SELECT c.finished_at FROM settle.cycle c ORDER BY c.cycle_id DESC LIMIT 1)))::double precision,
           current_setting('synchronous_standby_names') <> '',
           (SELECT count(*)::integer FROM pg_stat_replication r
             WHERE r.sync_state IN ('sync', 'quorum') AND NOT pg_is_in_recovery()),
           s.needed,
           s.required AND s.streaming < s.needed,
           s.reason
      FROM @extschema@.settle_sync_standby_state() s
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
