/*
 * cycle.c -- one settlement cycle: take the queue, optimise, post, record.
 *
 * Second and third stages of the pipeline (queue -> cycle -> settle).  In one
 * transaction, serialised against other cycles by a lock on settle.cycle_lock,
 * this file runs the stages in order and times them; each lives in its file:
 *
 *   1. expire queued payments whose deadline has passed (with an event);
 *   2. load the queue (FOR UPDATE SKIP LOCKED, so intake never waits) with
 *      each FX payment's credit converted exactly in numeric at the mid rate,
 *      and lock the balances of every account involved (cycle_load.c); keep
 *      out what the int64 sums cannot carry (cycle_ranges.c);
 *   3. build the model of solver.h -- accounts, payments, wires (one per
 *      participant and currency: its net position), FX pairs -- and solve it
 *      with GLPK; a solver failure falls back to the greedy heuristic and the
 *      selection is re-checked in exact integer arithmetic before posting
 *      (cycle_model.c);
 *   4. post the selection (posting.c) as one balanced journal, batch by batch;
 *   5. compute the baselines on the same queue (baseline.c) and write the
 *      cycle record, its notification and one log line (cycle_record.c).
 *
 * Its settings are in cycle_settings.c.  What the cycle did goes back to the
 * caller (SettleCycleOutcome), not into a global.  Money is int64 minor units
 * throughout; doubles appear only in the model's objective and in the cycle
 * record's measurements.
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "executor/spi.h"
#include "portability/instr_time.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include "cycle.h"
#include "cycle_state.h"
#include "cycle_int.h"
#include "fence.h"
#include "sync_standby.h"
#include "guard.h"
#include "controls.h"
#include "links.h"
#include "posting.h"
#include "spi_util.h"
#include "version.h"
#include "funding_advice.h"
#include "quiet.h"
#include "worker_state.h"

PG_FUNCTION_INFO_V1(settle_run_cycle_sql);

static void cycle_error_context(void *arg);
static void lock_cycles(const char *run_by);
static void enter_stage(CycleState *cs, int stage, const char *name);
static void log_stages(CycleState *cs);

/* Close the stage being timed and start the next (-1: none); name is for the error context. */
static void
enter_stage(CycleState *cs, int stage, const char *name)
{
	instr_time	now;

	INSTR_TIME_SET_CURRENT(now);
	if (cs->cur_stage >= 0)
	{
		instr_time	d = now;

		INSTR_TIME_SUBTRACT(d, cs->stage_start);
		cs->stage_ms[cs->cur_stage] += INSTR_TIME_GET_MILLISEC(d);
	}
	cs->cur_stage = stage;
	cs->stage_start = now;
	if (name != NULL)
		cs->stage = name;
}

/* Where the cycle's time went, at DEBUG1 (test/bench/profile_cycle.sh reads it). */
static void
log_stages(CycleState *cs)
{
	enter_stage(cs, -1, NULL);
	elog(DEBUG1, "settle cycle stages (ms): considered %d settled %d lock %.3f expire %.3f load %.3f accounts %.3f"
		 " solve %.3f post %.3f baselines %.3f record %.3f notify %.3f outcome %.3f",
		 cs->n_loaded, cs->n_settled,
		 cs->stage_ms[CYCLE_STAGE_LOCK], cs->stage_ms[CYCLE_STAGE_EXPIRE], cs->stage_ms[CYCLE_STAGE_LOAD],
		 cs->stage_ms[CYCLE_STAGE_ACCOUNTS], cs->stage_ms[CYCLE_STAGE_SOLVE], cs->stage_ms[CYCLE_STAGE_POST],
		 cs->stage_ms[CYCLE_STAGE_BASELINES], cs->stage_ms[CYCLE_STAGE_RECORD], cs->stage_ms[CYCLE_STAGE_NOTIFY],
		 cs->stage_ms[CYCLE_STAGE_OUTCOME]);
}

/*
 * One cycle at a time: a second one waits here for the first to commit.
 * The lock is on a table nobody is granted anything on, so no other role
 * can hold it (an advisory lock could be taken by any login); a wait is
 * logged, and settle.metrics shows how long it lasts.
 */
static void
lock_cycles(const char *run_by)
{
	Oid			relid = get_relname_relid("cycle_lock", get_namespace_oid("settle", false));

	if (!OidIsValid(relid))
		elog(ERROR, "settle.cycle_lock does not exist");
	if (!ConditionalLockRelationOid(relid, ExclusiveLock))
	{
		ereport(LOG,
				(errmsg("settle cycle (%s) waits for the cycle that is running to finish", run_by)));
		LockRelationOid(relid, ExclusiveLock);
	}
}

/* Says which cycle and which stage an error came from. */
static void
cycle_error_context(void *arg)
{
	CycleState *cs = (CycleState *) arg;

	if (cs->cycle_id > 0)
		errcontext("settle cycle %lld (%s), stage: %s", (long long) cs->cycle_id, cs->run_by, cs->stage);
	else
		errcontext("settle cycle (%s), stage: %s", cs->run_by, cs->stage);
}

int64
settle_run_cycle(const char *run_by, SettleCycleOutcome *outcome)
{
	MemoryContext outer = CurrentMemoryContext;
	MemoryContext work;
	CycleState *cs;
	int64		cycle_id;
	bool		isnull;
	int			i;
	ErrorContextCallback errcallback;
	int			guc_level;

	settle_check_version();
	settle_check_fence("a settlement cycle");
	/* an orphan: its commit would wait in SyncRep holding the cycle lock */
	settle_check_sync_standby("a settlement cycle");
	if (outcome != NULL)
		memset(outcome, 0, sizeof(*outcome));
	work = AllocSetContextCreate(outer, "settle cycle", ALLOCSET_DEFAULT_SIZES);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	/* whoever runs the cycle (the worker as superuser), names resolve in pg_catalog only */
	guc_level = settle_pin_search_path();
	MemoryContextSwitchTo(work);

	cs = palloc0(sizeof(CycleState));
	cs->run_by = run_by;
	cs->started_at = GetCurrentTimestamp();
	INSTR_TIME_SET_CURRENT(cs->start_instr);
	cs->cur_stage = -1;
	enter_stage(cs, CYCLE_STAGE_LOCK, "waiting for the cycle lock");
	errcallback.callback = cycle_error_context;
	errcallback.arg = cs;
	errcallback.previous = error_context_stack;
	error_context_stack = &errcallback;

	lock_cycles(run_by);

	enter_stage(cs, CYCLE_STAGE_EXPIRE, "expiring overdue payments");
	cs->n_expired = settle_cycle_expire_overdue();
	/* a group with an expired or failed member ends with it */
	settle_links_housekeeping();
	enter_stage(cs, CYCLE_STAGE_LOAD, "loading the queue");
	settle_cycle_load_currencies(cs);
	{
		int			n_skip;
		char	   *new_from;
		char	  **skip = settle_quiet_skip(&n_skip, &new_from, &cs->n_skipped, &cs->skipped_oldest);

		settle_cycle_load_queue(cs, skip, n_skip, new_from);
	}
	if (cs->n_payments == 0 && cs->n_expired == 0 && cs->held == 0)
	{
		settle_quiet_collect(cs);	/* the skipped payers stay quiet */
		enter_stage(cs, CYCLE_STAGE_OUTCOME, NULL);
		if (outcome != NULL)
			settle_cycle_set_outcome(cs, outcome);
		log_stages(cs);
		error_context_stack = errcallback.previous;
		settle_unpin_search_path(guc_level);
		SPI_finish();
		MemoryContextSwitchTo(outer);
		MemoryContextDelete(work);
		return 0;
	}
	enter_stage(cs, CYCLE_STAGE_ACCOUNTS, "locking accounts");
	settle_cycle_load_accounts(cs);
	settle_cycle_load_wires(cs);
	settle_cycle_hold_out_of_range(cs);
	settle_links_filter(cs);

	if (settle_spi_execute("SELECT pg_catalog.nextval('settle.cycle_id_seq'::pg_catalog.regclass)", 0, NULL, NULL, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not allocate a cycle id");
	cs->cycle_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));

	enter_stage(cs, CYCLE_STAGE_SOLVE, "solving");
	if (cs->n_payments > 0)
		settle_cycle_build_and_solve(cs);
	else
		cs->solver_status = SOLVER_OPTIMAL;

	for (i = 0; i < cs->n_payments; i++)
	{
		if (cs->selected[i])
		{
			cs->n_settled++;
			cs->settled_value += cs->payments[i].value;
		}
		else if (cs->payments[i].deferrable)
			cs->n_deferred++;
		else
			note_waiting(cs, cs->payments[i].payment_id);
	}
	settle_quiet_collect(cs);
	enter_stage(cs, CYCLE_STAGE_POST, settle_two_phase ? "reserving" : "posting");
	if (cs->n_settled > 0)
		settle_post_selection(cs);
	if (cs->n_settled == 0 && cs->n_expired == 0 && strcmp(run_by, "worker") == 0)
	{
		/*
		 * A worker cycle that changed nothing (everything deferred or
		 * waiting) writes no record: a payment deferred to a far deadline
		 * would otherwise add a cycle row and an event every interval.
		 * It is counted instead (settle_worker_status(), settle.metrics).
		 */
		settle_worker_state_note_unchanged();
		cycle_id = 0;
	}
	else
	{
		enter_stage(cs, CYCLE_STAGE_BASELINES, "recording");
		settle_compute_baselines(cs);
		enter_stage(cs, CYCLE_STAGE_RECORD, NULL);
		settle_cycle_record(cs);
		settle_liquidity_prices_record(cs, cs->account_price, DUE_FACTOR);
		/* issue #33: early warnings, in the cycle's transaction (their NOTIFY at its commit) */
		settle_controls_check_alerts();
		enter_stage(cs, CYCLE_STAGE_NOTIFY, NULL);
		if (!settle_two_phase)
			settle_cycle_notify_settled(cs);
		cycle_id = cs->cycle_id;
	}
	enter_stage(cs, CYCLE_STAGE_OUTCOME, NULL);
	if (outcome != NULL)
		settle_cycle_set_outcome(cs, outcome);
	log_stages(cs);

	error_context_stack = errcallback.previous;
	settle_unpin_search_path(guc_level);
	SPI_finish();
	MemoryContextSwitchTo(outer);
	MemoryContextDelete(work);
	return cycle_id;
}

/* settle._run_cycle(run_by) -> cycle_id or NULL. */
Datum
settle_run_cycle_sql(PG_FUNCTION_ARGS)
{
	const char *run_by = PG_ARGISNULL(0) ? "manual" : text_to_cstring(PG_GETARG_TEXT_PP(0));
	int64		id;

	if (strcmp(run_by, "manual") != 0 && strcmp(run_by, "worker") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("run_by must be manual or worker")));
	id = settle_run_cycle(run_by, NULL);
	if (id == 0)
		PG_RETURN_NULL();
	PG_RETURN_INT64(id);
}
