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
SET settle.priority_aging = 0;
SET settle.cycle_keep_plans = off;
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
SET settle.priority_aging = '2min';
SHOW settle.priority_aging;
-- checked values
SET settle.reference_currency = 'usd';
SET settle.reference_currency = 'XYZ';
SET settle.reference_currency = 'EUR';
SHOW settle.reference_currency;
SET settle.max_bulk_rows = 0;
SET settle.solver_time_limit = '-1ms';
SET settle.cycle_interval = '1s';
SET settle.priority_aging = '-1ms';
-- the worker's pacing and the backlog (docs/CYCLE.md): the configuration file's,
-- checked by ALTER SYSTEM (nothing is written when refused)
SET settle.max_batch_delay = '20ms';
SET settle.waiting_cost_bps = 5;
SET settle.max_queued = 10;
SET settle.stall_after = '5s';
SET settle.stall_backoff_max = '5s';
SET settle.full_cycle_interval = '1s';
SET settle.deep_budget = '5s';
ALTER SYSTEM SET settle.max_batch_delay = '2min';
ALTER SYSTEM SET settle.waiting_cost_bps = 0;
ALTER SYSTEM SET settle.max_queued = -1;
ALTER SYSTEM SET settle.stall_after = '10ms';
ALTER SYSTEM SET settle.stall_backoff_max = '2h';
ALTER SYSTEM SET settle.full_cycle_interval = '-1s';
ALTER SYSTEM SET settle.deep_budget = '2min';
ALTER SYSTEM SET settle.deep_interval = '10ms';
ALTER SYSTEM SET settle.deep_after_cycles = 0;
SELECT count(*) FROM pg_file_settings WHERE name LIKE 'settle.%' AND sourcefile LIKE '%postgresql.auto.conf';
\c contrib_regression
DROP DATABASE settle_settings;
DROP ROLE settings_user;
