-- settle 1.1 -> 1.2: the table changes of 1.2, written by hand.
--
-- Only what the install script creates once goes here: tables, columns,
-- constraints, indexes, sequences, domains, triggers, policies, reference
-- rows, and the DROP of a function that 1.2 removes or whose signature or
-- result changes.  Functions, views, comments and grants are not copied here:
-- the build appends every re-runnable statement of src/sql/*.sql after this
-- file (tools/sql-upgrade.pl), and test/scripts/upgrade.sh proves that a
-- database updated from 1.0 or 1.1 equals a fresh 1.2 install.

-- Issue #29, item 5: the funding advice's solver takes the whole queue
-- (credits, wires, FX pairs): settle._topup_solve has seven more arguments.
DROP FUNCTION settle._topup_solve(integer, bigint[], boolean[], integer[], integer[], bigint[], double precision[],
                                  double precision);

-- #28 item 2 (an orphan refuses at once): settle_gateway_health() reports
-- how many synchronous standbys are needed, whether too few stream, and why.
DROP FUNCTION @extschema@.settle_gateway_health();

-- issue #29: settle_worker_status() gains columns (seals that found nothing,
-- the database, the worker's state) and an all-databases form
DROP FUNCTION @extschema@.settle_worker_status();
DROP FUNCTION settle._worker_status();

-- issue #29: settle_archive() works in slices (a new parameter, max_events)
DROP FUNCTION @extschema@.settle_archive(timestamptz);

-- issue #29: where this ledger lives; a copy restored from a dump starts
-- fenced (05_origin.sql).  An installation updated in place is where it was
-- created.
CREATE TABLE settle.origin (
    system_identifier bigint NOT NULL,
    database_oid      oid NOT NULL,
    database_name     name NOT NULL,
    kind              text NOT NULL CHECK (kind IN ('created', 'released')),
    recorded_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    recorded_by       name NOT NULL DEFAULT session_user,
    reason            text,
    PRIMARY KEY (system_identifier, database_oid, kind)
);
SELECT pg_catalog.pg_extension_config_dump('settle.origin', '');
CREATE TRIGGER origin_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON settle.origin
    FOR EACH STATEMENT EXECUTE FUNCTION settle._refuse_change();
INSERT INTO settle.origin (system_identifier, database_oid, database_name, kind)
SELECT s.system_identifier, d.oid, d.datname, 'created'
  FROM pg_catalog.pg_control_system() s, pg_catalog.pg_database d
 WHERE d.datname = pg_catalog.current_database();
