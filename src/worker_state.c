/*
 * worker_state.c -- the settlement worker's counters and last error, in
 * shared memory, and settle_worker_status() to read them.
 *
 * One struct guarded by a spinlock: the worker writes it once per round
 * (a few copies), readers copy it out.  Counters start at zero with the
 * server; they count what this server's worker did since it started.
 */
#include "postgres.h"

#include <unistd.h>

#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "access/xact.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "commands/dbcommands.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "backlog.h"
#include "worker.h"
#include "worker_state.h"

#define LAST_ERROR_BYTES 512

typedef struct SettleWorkerState
{
	slock_t		mutex;
	int			pid;			/* 0: no worker has started yet */
	Latch	   *latch;			/* the worker's latch: set by a commit that queued payments */
	TimestampTz started_at;
	int64		cycles_ok;
	int64		cycles_unchanged;	/* committed but settled and expired nothing: no row */
	int64		cycles_failed;
	int64		seals_failed;
	int64		seals_unchanged;	/* found nothing to seal: no seal run row */
	TimestampTz last_cycle_at;	/* end of the last successful cycle */
	TimestampTz last_failure_at;
	char		last_failure_in[8]; /* "cycle" or "seal" */
	char		last_sqlstate[6];
	char		last_error[LAST_ERROR_BYTES];
} SettleWorkerState;

static SettleWorkerState *state = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static void
worker_state_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(SettleWorkerState)));
}

static void
worker_state_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	state = ShmemInitStruct("settle worker state", sizeof(SettleWorkerState), &found);
	if (!found)
	{
		memset(state, 0, sizeof(SettleWorkerState));
		SpinLockInit(&state->mutex);
	}
	LWLockRelease(AddinShmemInitLock);
}

void
settle_worker_state_init(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = worker_state_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = worker_state_startup;
}

void
settle_worker_state_started(void)
{
	if (state == NULL)
		return;
	SpinLockAcquire(&state->mutex);
	state->pid = MyProcPid;
	state->latch = MyLatch;
	state->started_at = GetCurrentTimestamp();
	SpinLockRelease(&state->mutex);
}

void
settle_worker_state_note(bool is_cycle, ErrorData *edata)
{
	TimestampTz now = GetCurrentTimestamp();
	const char *message = edata && edata->message ? edata->message : "";
	/* cut on a character boundary: the column must stay valid text */
	int			message_len = pg_mbcliplen(message, strlen(message), LAST_ERROR_BYTES - 1);

	if (state == NULL)
		return;
	SpinLockAcquire(&state->mutex);
	if (edata == NULL)
	{
		if (is_cycle)
		{
			state->cycles_ok++;
			state->last_cycle_at = now;
		}
	}
	else
	{
		if (is_cycle)
			state->cycles_failed++;
		else
			state->seals_failed++;
		state->last_failure_at = now;
		strlcpy(state->last_failure_in, is_cycle ? "cycle" : "seal", sizeof(state->last_failure_in));
		strlcpy(state->last_sqlstate, unpack_sql_state(edata->sqlerrcode), sizeof(state->last_sqlstate));
		memcpy(state->last_error, message, message_len);
		state->last_error[message_len] = '\0';
	}
	SpinLockRelease(&state->mutex);
}

/* Wake the worker (a payment was committed to the queue). */
void
settle_worker_wake(void)
{
	Latch	   *latch;

	if (state == NULL)
		return;
	SpinLockAcquire(&state->mutex);
	latch = state->latch;
	SpinLockRelease(&state->mutex);
	/* a worker that died leaves a latch of a free PGPROC: a spurious wake-up at worst */
	if (latch != NULL)
		SetLatch(latch);
}

static bool wake_registered = false;
static bool wake_at_commit = false;

/* Transaction callback: the worker is woken once the queueing transaction has committed. */
static void
wake_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			settle_backlog_pending_committed();
			if (wake_at_commit)
				settle_worker_wake();
			wake_at_commit = false;
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			/* a prepared transaction commits elsewhere: the heartbeat finds it */
			settle_backlog_pending_discarded();
			wake_at_commit = false;
			break;
		default:
			break;
	}
}

/*
 * This transaction queued n payments: count them and wake the worker when
 * (if) it commits.
 */
void
settle_worker_wake_at_commit(int n, int max_priority, TimestampTz min_deadline)
{
	if (state == NULL)
		return;					/* not preloaded: there is no worker */
	settle_backlog_note_pending(n, max_priority, min_deadline);
	if (!wake_registered)
	{
		RegisterXactCallback(wake_xact_callback, NULL);
		wake_registered = true;
	}
	wake_at_commit = true;
}

/* A seal that found nothing to seal and so wrote no seal run. */
void
settle_worker_state_note_seal_unchanged(void)
{
	if (state == NULL)
		return;
	SpinLockAcquire(&state->mutex);
	state->seals_unchanged++;
	SpinLockRelease(&state->mutex);
}

/* A worker cycle that changed nothing and so wrote no cycle record. */
void
settle_worker_state_note_unchanged(void)
{
	if (state == NULL)
		return;
	SpinLockAcquire(&state->mutex);
	state->cycles_unchanged++;
	SpinLockRelease(&state->mutex);
}

PG_FUNCTION_INFO_V1(settle_worker_status);

/*
 * settle_worker_status(): one row, what this server's worker has done since
 * the server started; no row when settle is not preloaded (no worker).
 */
Datum
settle_worker_status(PG_FUNCTION_ARGS)
{
	TupleDesc	desc;
	SettleWorkerState copy;
	Datum		values[12];
	bool		nulls[12] = {0};

	InitMaterializedSRF(fcinfo, 0);
	desc = ((ReturnSetInfo *) fcinfo->resultinfo)->setDesc;
	/* not preloaded: there is no worker; another database: not this one's */
	if (state == NULL || settle_database == NULL || strcmp(settle_database, get_database_name(MyDatabaseId)) != 0)
		PG_RETURN_VOID();
	SpinLockAcquire(&state->mutex);
	memcpy(&copy, state, sizeof(copy));
	SpinLockRelease(&state->mutex);

	values[0] = Int32GetDatum(copy.pid);
	nulls[0] = copy.pid == 0;
	values[1] = TimestampTzGetDatum(copy.started_at);
	nulls[1] = copy.pid == 0;
	values[2] = Int64GetDatum(copy.cycles_ok);
	values[3] = Int64GetDatum(copy.cycles_failed);
	values[4] = Int64GetDatum(copy.seals_failed);
	values[5] = TimestampTzGetDatum(copy.last_cycle_at);
	nulls[5] = copy.last_cycle_at == 0;
	values[6] = TimestampTzGetDatum(copy.last_failure_at);
	nulls[6] = copy.last_failure_at == 0;
	values[7] = CStringGetTextDatum(copy.last_failure_in);
	nulls[7] = copy.last_failure_at == 0;
	values[8] = CStringGetTextDatum(copy.last_sqlstate);
	nulls[8] = copy.last_failure_at == 0;
	values[9] = CStringGetTextDatum(copy.last_error);
	nulls[9] = copy.last_failure_at == 0;
	values[10] = Int64GetDatum(copy.cycles_unchanged);
	values[11] = Int64GetDatum(copy.seals_unchanged);
	/* the SQL of 1.0 and 1.1 declares the first 11 columns */
	Assert(desc->natts <= lengthof(values));
	tuplestore_putvalues(((ReturnSetInfo *) fcinfo->resultinfo)->setResult, desc, values, nulls);
	PG_RETURN_VOID();
}
