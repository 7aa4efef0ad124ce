#!/bin/bash
# The calendar jobs under pg_cron: settle_schedule_jobs() installs them, and
# pg_cron really runs the end-of-day snapshot (scheduled every minute here,
# so this test waits up to ~70 s).
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/scratch.sh
. test/lib/tap.sh

scratch cron
scratch_ports PORT 55475
scratch_cluster "$TMP/c"
cluster_init "$TMP/c" "$PORT" "settle.worker_enabled = off" || exit 1
cluster_start "$TMP/c" || exit 1
Q_PORT=$PORT    # q SQL: test/lib/cluster.sh

q "CREATE EXTENSION settle" >/dev/null
q "CREATE EXTENSION pg_cron" >/dev/null
ok $? "pg_cron is preloaded and installs"
q "SELECT settle_create_participant('cr_a')" >/dev/null
q "SELECT settle_create_account('cr_a_usd', 'cr_a', 'USD', opening_balance => 42)" >/dev/null
is "$(q "SELECT count(*) FROM settle_schedule_jobs(end_of_day => '* * * * *', liquidity_forecast => '* * * * *')")" "4" "settle_schedule_jobs() schedules four jobs"
is "$(q "SELECT string_agg(jobname || '=' || schedule, ',' ORDER BY jobname) FROM cron.job")" \
   "settle-end-of-day=* * * * *,settle-liquidity-forecast=* * * * *,settle-rail-timeouts=* * * * *,settle-retention=30 1 * * *" "the jobs and their schedules"

snapshot_taken() { [ "$(q "SELECT count(*) FROM settle.balance_snapshot WHERE account_id = 'cr_a_usd' AND balance = 4200")" = 1 ]; }
wait_for 75 snapshot_taken
ok $? "pg_cron ran the end-of-day job: today's snapshot of cr_a_usd is there"
forecast_ran() { [ "$(q "SELECT count(*) FROM cron.job_run_details d JOIN cron.job j USING (jobid) WHERE j.jobname = 'settle-liquidity-forecast' AND d.status = 'succeeded'")" -ge 1 ]; }
wait_for 75 forecast_ran
ok $? "pg_cron ran the liquidity forecast job (settle_refresh_liquidity_forecast)"
run_recorded() { [ "$(q "SELECT count(*) FROM cron.job_run_details d JOIN cron.job j USING (jobid) WHERE j.jobname = 'settle-end-of-day' AND d.status = 'succeeded'")" -ge 1 ]; }
wait_for 10 run_recorded
ok $? "pg_cron records the run as succeeded"
done_testing
