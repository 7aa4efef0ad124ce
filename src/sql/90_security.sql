-- settle install script, part 9: roles, privileges, row-level security:
-- every GRANT, REVOKE and policy of the extension, in one place.
--
--   settle_submitter  submits payments and reads its own participant's
--                     payments, accounts, batches, ledger lines and events;
--   settle_operator   reference data, cycles, all rows;
--   settle_auditor    reads everything, changes nothing.
-- Nothing is granted to PUBLIC.  Functions that write run as the extension
-- owner (SECURITY DEFINER, search_path pinned to pg_catalog, pg_temp, every
-- object schema-qualified, so a caller's objects cannot shadow ours).
-- Intake runs with the caller's rights and switches to the owner itself
-- (src/intake.c), so that it knows which participant is submitting.
-- The roles themselves are created first thing, in 00_schema.sql.

-- Removes the mappings of roles that no longer exist (with an event each).
CREATE OR REPLACE FUNCTION settle.forget_dropped_roles() RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n integer;
BEGIN
    WITH gone AS (
        DELETE FROM settle.participant_role m
         WHERE NOT EXISTS (SELECT 1 FROM pg_roles r WHERE r.oid = m.role_oid)
           -- a name that still exists under another OID: restored data, left to settle_remap_roles()
           AND NOT EXISTS (SELECT 1 FROM pg_roles r WHERE r.rolname = m.role_name)
        RETURNING m.role_oid, m.role_name, m.participant_id),
    ev AS (
        INSERT INTO settle.event (entity, entity_id, event_type, details)
        SELECT 'participant', g.participant_id, 'role_unmapped',
               jsonb_build_object('role', g.role_name, 'role_oid', g.role_oid, 'reason', 'role dropped')
          FROM gone g)
    SELECT count(*) INTO n FROM gone;
    RETURN n;
END
$$;


-- After a restore into another cluster the roles have new OIDs: map each
-- mapping's role name to the role of that name now (operators; an event each).
CREATE OR REPLACE FUNCTION settle_remap_roles()
RETURNS TABLE (role_name name, participant_id text, old_oid oid, new_oid oid)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN QUERY
    WITH moved AS (
        UPDATE settle.participant_role m SET role_oid = r.oid
          FROM pg_roles r, settle.participant_role o
         WHERE r.rolname = m.role_name AND r.oid <> m.role_oid AND o.role_oid = m.role_oid
           AND NOT EXISTS (SELECT 1 FROM pg_roles x WHERE x.oid = m.role_oid AND x.rolname = m.role_name)
        RETURNING m.role_name, m.participant_id, o.role_oid AS old_oid, m.role_oid AS new_oid),
    ev AS (
        INSERT INTO settle.event (entity, entity_id, event_type, details)
        SELECT 'participant', v.participant_id, 'role_remapped',
               jsonb_build_object('role', v.role_name, 'old_oid', v.old_oid, 'new_oid', v.new_oid)
          FROM moved v)
    SELECT v.role_name, v.participant_id, v.old_oid, v.new_oid FROM moved v;
END
$$;

-- Map a login to a participant and make it a submitter (operators).
CREATE OR REPLACE FUNCTION settle_map_role(role_name name, participant_id text)
RETURNS text LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles r WHERE r.rolname = settle_map_role.role_name) THEN
        RAISE EXCEPTION 'role "%" does not exist', role_name USING ERRCODE = 'SE036';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM settle.participant p
                    WHERE p.participant_id = settle_map_role.participant_id AND NOT p.is_operator) THEN
        RAISE EXCEPTION 'participant_id "%" does not exist', participant_id USING ERRCODE = 'SE040';
    END IF;
    PERFORM settle.forget_dropped_roles();
    INSERT INTO settle.participant_role AS m
        SELECT r.oid, r.rolname, settle_map_role.participant_id FROM pg_roles r WHERE r.rolname = settle_map_role.role_name
        ON CONFLICT ON CONSTRAINT participant_role_pkey
        DO UPDATE SET participant_id = excluded.participant_id, role_name = excluded.role_name;
    EXECUTE format('GRANT settle_submitter TO %I', role_name);
    INSERT INTO settle.event (entity, entity_id, event_type, details)
        VALUES ('participant', participant_id, 'role_mapped', jsonb_build_object('role', role_name));
    RETURN participant_id;
END
$$;

-- Nothing for PUBLIC: not the tables, not the functions.
REVOKE ALL ON ALL TABLES IN SCHEMA settle FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA settle FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA settle FROM PUBLIC;
DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN SELECT p.oid::regprocedure FROM pg_proc p
              WHERE p.pronamespace = '@extschema@'::regnamespace AND p.proname LIKE 'settle\_%' LOOP
        EXECUTE format('REVOKE ALL ON ROUTINE %s FROM PUBLIC', f);
    END LOOP;
END
$$;

-- Writers run as the owner.
ALTER FUNCTION @extschema@.settle_create_participant(text, text) SECURITY DEFINER;
ALTER FUNCTION @extschema@.settle_set_participant_status(text, text) SECURITY DEFINER;
ALTER FUNCTION @extschema@.settle_create_account(text, text, text, numeric, numeric) SECURITY DEFINER;
ALTER FUNCTION @extschema@.settle_set_account_limit(text, numeric) SECURITY DEFINER;
ALTER FUNCTION @extschema@.settle_set_account_status(text, text) SECURITY DEFINER;
ALTER FUNCTION @extschema@.settle_fund_account(text, numeric, text) SECURITY DEFINER;
ALTER FUNCTION @extschema@.settle_set_fx_rate(text, text, numeric, numeric) SECURITY DEFINER;
ALTER FUNCTION @extschema@.settle_set_wire_fee(text, numeric, text) SECURITY DEFINER;
ALTER FUNCTION @extschema@.settle_run_cycle() SECURITY DEFINER;
-- intake: the caller's rights, a pinned search_path (settle_submit named
-- without its parameters, which are the payment fields: include/payment_fields.h)
ALTER FUNCTION @extschema@.settle_submit SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION @extschema@.settle_submit_bulk(jsonb) SET search_path = pg_catalog, pg_temp;

-- Readers see through the views with their own rights, so row-level security applies.
ALTER VIEW settle.currencies SET (security_invoker = true);
ALTER VIEW settle.participants SET (security_invoker = true);
ALTER VIEW settle.accounts SET (security_invoker = true);
ALTER VIEW settle.transactions SET (security_invoker = true);
ALTER VIEW settle.events SET (security_invoker = true);
ALTER VIEW settle.fx_rates SET (security_invoker = true);
ALTER VIEW settle.wire_fees SET (security_invoker = true);
ALTER VIEW settle.cycles SET (security_invoker = true);
ALTER VIEW settle.batches SET (security_invoker = true);
ALTER VIEW settle.ledger SET (security_invoker = true);

-- Row-level security: a participant's rows only, unless the role sees all.
-- The role tests are scalar subqueries, so that each is computed once per
-- query (an InitPlan), not once per row.
ALTER TABLE settle.payment ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_payments ON settle.payment FOR SELECT
    USING ((SELECT settle.sees_all()) OR source_participant = (SELECT settle.current_participant())
           OR counterparty_id = (SELECT settle.current_participant()));
ALTER TABLE settle.account ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_accounts ON settle.account FOR SELECT
    USING ((SELECT settle.sees_all()) OR participant_id = (SELECT settle.current_participant()));
ALTER TABLE settle.ledger_entry ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_entries ON settle.ledger_entry FOR SELECT
    USING ((SELECT settle.sees_all()) OR EXISTS (SELECT 1 FROM settle.account a
                                         WHERE a.account_id = ledger_entry.account_id
                                           AND a.participant_id = (SELECT settle.current_participant())));
-- a journal is visible when one of its entries is: funding references and
-- settlement timing of other participants stay theirs
ALTER TABLE settle.journal ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_journals ON settle.journal FOR SELECT
    USING ((SELECT settle.sees_all())
           OR journal_id IN (SELECT e.journal_id FROM settle.ledger_entry e
                              WHERE e.account_id IN (SELECT a.account_id FROM settle.account a
                                                      WHERE a.participant_id = (SELECT settle.current_participant()))));
ALTER TABLE settle.batch ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_batches ON settle.batch FOR SELECT
    USING ((SELECT settle.sees_all()) OR participant_id = (SELECT settle.current_participant()));
ALTER TABLE settle.event ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_events ON settle.event FOR SELECT
    USING ((SELECT settle.sees_all())
           -- by primary key (the CASE keeps the cast away from other entities' ids)
           OR (entity = 'payment' AND EXISTS (SELECT 1 FROM settle.payment p WHERE p.payment_id =
                   CASE WHEN event.entity = 'payment' THEN event.entity_id::bigint END))
           OR (entity = 'account' AND EXISTS (SELECT 1 FROM settle.account a WHERE a.account_id = event.entity_id))
           OR (entity = 'participant' AND entity_id = (SELECT settle.current_participant())));
ALTER TABLE settle.participant_role ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_mapping ON settle.participant_role FOR SELECT
    USING ((SELECT settle.sees_all())
           OR (role_oid = (SELECT r.oid FROM pg_roles r WHERE r.rolname = current_user) AND role_name = current_user));

-- Grants.
GRANT USAGE ON SCHEMA settle TO settle_submitter, settle_operator, settle_auditor;
GRANT EXECUTE ON FUNCTION settle.to_major(bigint, text), settle.current_participant(), settle.sees_all(),
                          settle._wait_durable(text)
    TO settle_submitter, settle_operator, settle_auditor;
GRANT SELECT ON settle.currency, settle.participant, settle.fx_rate, settle.wire_fee, settle.journal,
                settle.payment, settle.account, settle.ledger_entry, settle.batch, settle.event,
                settle.participant_role
    TO settle_submitter, settle_operator, settle_auditor;
GRANT SELECT ON settle.currencies, settle.participants, settle.accounts, settle.transactions,
                settle.events, settle.fx_rates, settle.wire_fees, settle.batches, settle.ledger
    TO settle_submitter, settle_operator, settle_auditor;
GRANT SELECT ON settle.cycle, settle.cycles TO settle_operator, settle_auditor;
-- linked payments (84_links.sql): each party sees its groups through the view
GRANT SELECT ON settle.link_groups TO settle_submitter, settle_operator, settle_auditor;
GRANT SELECT ON settle.link_group, settle.payment_link TO settle_operator, settle_auditor;
GRANT EXECUTE ON FUNCTION @extschema@.settle_submit,
                          @extschema@.settle_submit_bulk(jsonb),
                          @extschema@.settle_payment_status(text, text)
    TO settle_submitter, settle_operator;
GRANT EXECUTE ON FUNCTION @extschema@.settle_payment_status(text, text) TO settle_auditor;
GRANT EXECUTE ON FUNCTION @extschema@.settle_durable_lsn(), @extschema@.settle_fence_state(),
                          @extschema@.settle_sync_standby_state()
    TO settle_operator, settle_auditor, pg_monitor;
GRANT EXECUTE ON FUNCTION settle._check_fence(text), settle._check_sync_standby(text)
    TO settle_submitter, settle_operator, settle_auditor;
-- the fence check reads where the ledger lives (05_origin.sql) as the caller
REVOKE ALL ON settle.origin FROM PUBLIC;
GRANT SELECT ON settle.origin TO settle_submitter, settle_operator, settle_auditor, pg_monitor;
REVOKE ALL ON FUNCTION @extschema@.settle_release_copy(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.settle_release_copy(text) TO settle_operator;
GRANT EXECUTE ON FUNCTION @extschema@.settle_create_participant(text, text),
                          @extschema@.settle_set_participant_status(text, text),
                          @extschema@.settle_create_account(text, text, text, numeric, numeric),
                          @extschema@.settle_set_account_limit(text, numeric),
                          @extschema@.settle_set_account_status(text, text),
                          @extschema@.settle_fund_account(text, numeric, text),
                          @extschema@.settle_set_fx_rate(text, text, numeric, numeric),
                          @extschema@.settle_set_wire_fee(text, numeric, text),
                          @extschema@.settle_run_cycle(),
                          @extschema@.settle_release_payment(bigint),
                          @extschema@.settle_cancel_payment(bigint, text),
                          @extschema@.settle_map_role(name, text),
                          @extschema@.settle_remap_roles()
    TO settle_operator;

-- Archives (48_archive.sql): operators archive; auditors and operators read
-- and check them.
REVOKE ALL ON settle.archive, settle.archive_state, settle.archive_lock FROM PUBLIC;
GRANT SELECT ON settle.archive, settle.archive_state TO settle_operator, settle_auditor;
REVOKE ALL ON FUNCTION @extschema@.settle_archive(timestamptz, bigint), @extschema@.settle_verify_archive(bigint),
    settle._archive_slice(timestamptz, bigint, boolean) FROM PUBLIC;
REVOKE ALL ON PROCEDURE @extschema@.settle_archive_all(timestamptz, bigint, integer, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.settle_archive(timestamptz, bigint), settle._archive_slice(timestamptz, bigint, boolean)
    TO settle_operator;
GRANT EXECUTE ON PROCEDURE @extschema@.settle_archive_all(timestamptz, bigint, integer, bigint) TO settle_operator;
GRANT EXECUTE ON FUNCTION @extschema@.settle_verify_archive(bigint) TO settle_operator, settle_auditor;

-- Audit (50_audit.sql): auditors and operators ask the questions, operators seal.
REVOKE ALL ON settle.ledger_seal, settle.event_seal, settle.seal_run FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.settle_create_publication() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.settle_create_publication() TO settle_operator;
REVOKE ALL ON FUNCTION @extschema@.settle_seal(), @extschema@.settle_verify(boolean),
    settle._seal(), settle._verify(), settle._may_seal(), settle._chain_digest(),
    @extschema@.settle_chain_digest(), @extschema@.settle_verify_digest(jsonb),
    @extschema@.settle_balance_as_of(text, timestamptz), @extschema@.settle_payment_history(text),
    @extschema@.settle_replay(boolean), settle._replay_state(boolean), settle._replay_controls(),
    settle._control_state(text, text, jsonb), settle._verify_chain(text), settle._seal_chain(text, xid8),
    settle._chain_append(text, bigint, bytea, xid8, xid8, xid8),
    settle._chain_spec(text) FROM PUBLIC;
GRANT SELECT ON settle.ledger_seal, settle.event_seal, settle.seal_run TO settle_operator, settle_auditor;
GRANT EXECUTE ON FUNCTION @extschema@.settle_seal(), settle._seal() TO settle_operator;
GRANT EXECUTE ON FUNCTION settle._verify(), settle._may_seal(), settle._chain_digest() TO settle_operator, settle_auditor;
GRANT EXECUTE ON FUNCTION @extschema@.settle_verify(boolean), @extschema@.settle_chain_digest(),
    @extschema@.settle_verify_digest(jsonb), @extschema@.settle_balance_as_of(text, timestamptz),
    @extschema@.settle_payment_history(text), @extschema@.settle_replay(boolean)
    TO settle_operator, settle_auditor;
-- so that auditors can recompute any seal themselves (docs/AUDIT.md)
GRANT EXECUTE ON FUNCTION
    settle._entry_content(bigint, bigint, bigint, bigint, text, text, bigint, timestamptz),
    settle._event_content(bigint, timestamptz, text, text, text, text, text, jsonb),
    settle._chain_step(bytea, bytea, bytea), settle._chain(bytea, bytea)
    TO settle_operator, settle_auditor;

-- Metrics (60_metrics.sql): the exporter's role reads them.
REVOKE ALL ON settle.cycle_total, settle.metrics FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.settle_worker_status(boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.settle_worker_status(boolean) TO pg_monitor, settle_operator, settle_auditor;
REVOKE ALL ON FUNCTION settle._metrics_bounds(), settle._metrics_observe(double precision),
    settle._metrics_add(bigint[], bigint[]), settle._cycle_total_add(),
    settle._metrics_queue(), settle._metrics_cycles(), settle._metrics_latency(),
    settle._metrics_outbox(), settle._metrics_worker(), settle._metrics_replication(),
    settle._worker_status(), settle._database_served() FROM PUBLIC;
GRANT USAGE ON SCHEMA settle TO pg_monitor, settle_operator, settle_auditor;
GRANT SELECT ON settle.metrics TO pg_monitor, settle_operator, settle_auditor;
GRANT SELECT ON settle.cycle_total TO settle_operator, settle_auditor;
GRANT EXECUTE ON FUNCTION settle._metrics_bounds(), settle._metrics_queue(), settle._metrics_cycles(),
    settle._metrics_latency(), settle._metrics_outbox(), settle._metrics_worker(), settle._metrics_replication()
    TO pg_monitor, settle_operator, settle_auditor;
-- the backlog (55_backlog.sql, issue #18)
REVOKE ALL ON FUNCTION @extschema@.settle_backlog_status(), settle._backlog_status(), settle._metrics_backlog() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.settle_backlog_status(), settle._metrics_backlog()
    TO pg_monitor, settle_operator, settle_auditor;

-- The rail and the calendar (80_rail.sql), returns (82_returns.sql): operators.
REVOKE ALL ON FUNCTION @extschema@.settle_rail_fetch(integer), @extschema@.settle_rail_confirm(bigint, text),
    @extschema@.settle_rail_fail(bigint, text, boolean), @extschema@.settle_rail_expire(),
    @extschema@.settle_end_of_day(date), @extschema@.settle_purge_idempotency_keys(interval),
    @extschema@.settle_schedule_jobs(text, text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.settle_rail_fetch(integer), @extschema@.settle_rail_confirm(bigint, text),
    @extschema@.settle_rail_fail(bigint, text, boolean), @extschema@.settle_rail_expire(),
    @extschema@.settle_end_of_day(date), @extschema@.settle_purge_idempotency_keys(interval)
    TO settle_operator;
GRANT SELECT ON settle.reservation, settle.balance_snapshot TO settle_operator, settle_auditor;
REVOKE ALL ON FUNCTION @extschema@.settle_return_payment(bigint, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.settle_return_payment(bigint, text) TO settle_operator;
