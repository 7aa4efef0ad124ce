-- settle 1.1 -> 1.2: the table changes of 1.2, written by hand.
--
-- Only what the install script creates once goes here: tables, columns,
-- constraints, indexes, sequences, domains, triggers, policies, reference
-- rows, and the DROP of a function that 1.2 removes or whose signature or
-- result changes.  Functions, views, comments and grants are not copied here:
-- the build appends every re-runnable statement of src/sql/*.sql after this
-- file (tools/sql-upgrade.pl), and test/scripts/upgrade.sh proves that a
-- database updated from 1.0 or 1.1 equals a fresh 1.2 install.

-- issue #29: settle_worker_status() gains columns (seals that found nothing,
-- the database, the worker's state) and an all-databases form
DROP FUNCTION @extschema@.settle_worker_status();
DROP FUNCTION settle._worker_status();

-- issue #29: settle_archive() works in slices (a new parameter, max_events)
DROP FUNCTION @extschema@.settle_archive(timestamptz);

