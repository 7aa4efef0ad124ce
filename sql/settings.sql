-- Settings: what may change what is written, or how much work one call may
-- do, is for superusers (PGC_SUSET) or the configuration file (PGC_SIGHUP);
-- values are checked and take PostgreSQL's units.  Own database.
CREATE DATABASE settle_settings;
\c settle_settings
CREATE EXTENSION settle;
\set VERBOSITY sqlstate
SELECT name, context, unit FROM pg_settings WHERE name LIKE 'settle.%' ORDER BY name;
-- a login with no privileges (a participant's, say) changes none of them
CREATE ROLE settings_user LOGIN;
SET ROLE settings_user;
SET settle.max_bulk_rows = 10000000;
SET settle.two_phase = on;
SET settle.reference_currency = 'EUR';
SET settle.solver_time_limit = '1h';
SET settle.max_cycle_payments = 10000000;
SET settle.rail_max_attempts = 1000;
SHOW settle.max_bulk_rows;
SHOW settle.two_phase;
RESET ROLE;
-- units: the time settings take '1s', '500ms'
SET settle.solver_time_limit = '1s';
SHOW settle.solver_time_limit;
SET settle.solver_time_limit = '250ms';
SHOW settle.solver_time_limit;
SET settle.rail_backoff = '2min';
SHOW settle.rail_backoff;
-- checked values
SET settle.reference_currency = 'usd';
SET settle.reference_currency = 'XYZ';
SET settle.reference_currency = 'EUR';
SHOW settle.reference_currency;
SET settle.max_bulk_rows = 0;
SET settle.solver_time_limit = '-1ms';
SET settle.cycle_interval = '1s';
\c contrib_regression
DROP DATABASE settle_settings;
DROP ROLE settings_user;
