-- settle 1.1 -> 1.2: the table changes of 1.2, written by hand.
--
-- Only what the install script creates once goes here: tables, columns,
-- constraints, indexes, sequences, domains, triggers, policies, reference
-- rows, and the DROP of a function that 1.2 removes or whose signature or
-- result changes.  Functions, views, comments and grants are not copied here:
-- the build appends every re-runnable statement of src/sql/*.sql after this
-- file (tools/sql-upgrade.pl), and test/scripts/upgrade.sh proves that a
-- database updated from 1.0 or 1.1 equals a fresh 1.2 install.

-- #28 item 2 (an orphan refuses at once): settle_gateway_health() reports
-- how many synchronous standbys are needed, whether too few stream, and why.
DROP FUNCTION @extschema@.settle_gateway_health();
