-- settle install script, part 0.5: where this ledger lives (issue #29;
-- docs/OPERATIONS.md, "Restoring a copy for inspection").
--
-- A database restored from pg_dump holds the same queue, outbox and
-- calendar as the original: served by a worker of its own (another database
-- of the same server, or another server) it would settle the restored queue
-- and hand batches to the rail beside the original.  So the install script
-- records where the ledger was created: the cluster's system identifier and
-- the database's oid.  The table is dumped with the data, so a restore
-- brings the original's row beside the one its own CREATE EXTENSION wrote.
-- A database holding another place's 'created' row and no 'released' row of
-- its own is a copy: fenced (SE153, src/origin.c and src/fence.c) until an
-- operator checks it and runs settle_release_copy(reason).  A physical copy
-- keeps the original's identity (a standby promoted by a fail-over is the
-- same ledger): settle.fence covers those.
CREATE TABLE settle.origin (
    system_identifier bigint NOT NULL,        -- pg_control_system().system_identifier
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
