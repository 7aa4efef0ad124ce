-- settle 1.0 -> 1.1 (ALTER EXTENSION settle UPDATE TO '1.1').
--
-- Every object 1.1 adds or changes, in the order of src/sql/*.sql, so that an
-- updated 1.0 database has exactly the objects of a fresh 1.1 install
-- (test/scripts/upgrade.sh compares the two catalogs).  Each section names the
-- issue it comes from; a function changed in src/sql/ is replaced here whole.

\echo Use "ALTER EXTENSION settle UPDATE TO '1.1'" to load this file. \quit

