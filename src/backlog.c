/*
 * backlog.c -- the queue between cycles, in shared memory: what intake
 * committed since the worker last took the queue, an estimate of the
 * queue's depth, intake's refusals under overload (SE093), and the stuck-
 * backlog state the worker reports.  settle_backlog_status() reads it.
 *
 * The depth is an estimate that costs intake no query: the worker publishes
 * after each committed cycle the depth its snapshot left, and every commit
 * of intake adds its payments to a counter; depth = published depth +
 * arrivals since the cycle took the queue.  A commit that raced the cycle's
 * snapshot can be counted twice, never missed: the estimate errs high by at
 * most one cycle's arrivals and is corrected by the next cycle.  It is used
 * only while the worker publishes (settle_backlog_fresh): with no worker
 * cycling, intake never refuses for depth (the worker alerts cover that).
 */
#include "postgres.h"

#include <math.h>

#include "commands/dbcommands.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "backlog.h"
#include "cycle.h"
#include "settle_errors.h"
#include "worker.h"

int			settle_max_queued = 1000000;
int			settle_stall_after_ms = 30000;

typedef struct SettleBacklogShared
{
	slock_t		mutex;
	SettleArrivals arrivals;
	uint64		refused;		/* payments refused by intake for depth */
	uint64		stalls;			/* stall episodes declared */
	bool		published;
	TimestampTz published_at;
	SettleBacklogReport report;
} SettleBacklogShared;

static SettleBacklogShared *backlog = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* -1 unknown, 0 no, 1 yes: this backend's database is the worker's (it never changes) */
static int	serves_database = -1;

static void backlog_shmem_request(void);
static void backlog_shmem_startup(void);
static bool serves_this_database(void);
static bool settle_backlog_fresh(const SettleBacklogShared *copy, TimestampTz now);

void
settle_backlog_define_settings(void)
{
	DefineCustomIntVariable("settle.max_queued",
							"Most payments the queue may hold; intake refuses new ones beyond it (SE093).",
							"0: no limit. Estimated without a query; applies while the worker cycles.",
							&settle_max_queued,
							1000000, 0, INT_MAX,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("settle.stall_after",
							"How long cycles may leave the same oldest payment waiting before the backlog is reported stalled.",
							NULL, &settle_stall_after_ms,
							30000, 100, 86400000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
}

static void
backlog_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(SettleBacklogShared)));
}

static void
backlog_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	backlog = ShmemInitStruct("settle backlog", sizeof(SettleBacklogShared), &found);
	if (!found)
	{
		memset(backlog, 0, sizeof(SettleBacklogShared));
		SpinLockInit(&backlog->mutex);
	}
	LWLockRelease(AddinShmemInitLock);
}

void
settle_backlog_shmem_init(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = backlog_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = backlog_shmem_startup;
}

/* In a transaction: is this backend's database the one the worker serves? */
static bool
serves_this_database(void)
{
	if (serves_database < 0)
	{
		char	   *name = get_database_name(MyDatabaseId);

		serves_database = (settle_database != NULL && name != NULL && strcmp(settle_database, name) == 0) ? 1 : 0;
	}
	return serves_database == 1;
}

/* The worker's figures are current: published since the last two heartbeats (and 30 s). */
static bool
settle_backlog_fresh(const SettleBacklogShared *copy, TimestampTz now)
{
	return copy->published &&
		!TimestampDifferenceExceeds(copy->published_at, now, 2 * settle_cycle_interval_ms + 30000);
}

/* this transaction's payments, counted when it commits */
static int	pending_n = 0;
static int	pending_max_priority = 0;
static TimestampTz pending_min_deadline = 0;

void
settle_backlog_note_pending(int n, int max_priority, TimestampTz min_deadline)
{
	if (backlog == NULL || n <= 0 || !serves_this_database())
		return;
	pending_n += n;
	pending_max_priority = Max(pending_max_priority, max_priority);
	if (min_deadline != 0 && (pending_min_deadline == 0 || min_deadline < pending_min_deadline))
		pending_min_deadline = min_deadline;
}

void
settle_backlog_pending_discarded(void)
{
	pending_n = 0;
	pending_max_priority = 0;
	pending_min_deadline = 0;
}

/* After commit: the payments are in the queue. */
void
settle_backlog_pending_committed(void)
{
	TimestampTz now;
	int			n = pending_n;
	int			max_priority = pending_max_priority;
	TimestampTz min_deadline = pending_min_deadline;

	settle_backlog_pending_discarded();
	if (backlog == NULL || n <= 0)
		return;
	now = GetCurrentTimestamp();
	SpinLockAcquire(&backlog->mutex);
	backlog->arrivals.arrived += n;
	if (backlog->arrivals.first_at == 0)
	{
		backlog->arrivals.first_at = now;
		backlog->arrivals.max_priority = max_priority;
		backlog->arrivals.min_deadline = min_deadline;
	}
	else
	{
		backlog->arrivals.max_priority = Max(backlog->arrivals.max_priority, max_priority);
		if (min_deadline != 0 &&
			(backlog->arrivals.min_deadline == 0 || min_deadline < backlog->arrivals.min_deadline))
			backlog->arrivals.min_deadline = min_deadline;
	}
	SpinLockRelease(&backlog->mutex);
}

/*
 * Intake, before it inserts n new payments: the queue's estimated depth
 * plus n must stay within settle.max_queued, or the whole call is refused
 * with SE093 (nothing written: a retry with the same idempotency keys is
 * safe).  Only in the worker's database, while the worker publishes.
 */
void
settle_backlog_admit(int n)
{
	SettleBacklogShared copy;
	int64		depth;

	if (backlog == NULL || settle_max_queued <= 0 || n <= 0 || !serves_this_database())
		return;
	SpinLockAcquire(&backlog->mutex);
	memcpy(&copy, backlog, sizeof(copy));
	SpinLockRelease(&backlog->mutex);
	if (!settle_backlog_fresh(&copy, GetCurrentTimestamp()))
		return;
	depth = copy.report.queued + (int64) (copy.arrivals.arrived - copy.report.arrived_at);
	if (depth + n <= settle_max_queued)
		return;
	SpinLockAcquire(&backlog->mutex);
	backlog->refused += n;
	SpinLockRelease(&backlog->mutex);
	ereport(ERROR,
			(errcode(ERRCODE_SETTLE_QUEUE_FULL),
			 errmsg("the settlement queue is full: %d payment(s) refused", n),
			 errdetail("About " INT64_FORMAT " payments are queued; settle.max_queued is %d.",
					   depth, settle_max_queued),
			 errhint("Nothing was written. Retry later with the same idempotency keys; "
					 "settle_backlog_status() shows the queue.")));
}

bool
settle_backlog_peek(SettleArrivals *out)
{
	if (backlog == NULL)
	{
		memset(out, 0, sizeof(*out));
		return false;
	}
	SpinLockAcquire(&backlog->mutex);
	*out = backlog->arrivals;
	SpinLockRelease(&backlog->mutex);
	return true;
}

/* A cycle is about to take the queue: what arrived so far is in it. */
void
settle_backlog_take(SettleArrivals *out)
{
	if (backlog == NULL)
	{
		memset(out, 0, sizeof(*out));
		return;
	}
	SpinLockAcquire(&backlog->mutex);
	*out = backlog->arrivals;
	backlog->arrivals.first_at = 0;
	backlog->arrivals.max_priority = 0;
	backlog->arrivals.min_deadline = 0;
	SpinLockRelease(&backlog->mutex);
}

void
settle_backlog_publish(const SettleBacklogReport *report)
{
	if (backlog == NULL)
		return;
	SpinLockAcquire(&backlog->mutex);
	backlog->report = *report;
	backlog->published = true;
	backlog->published_at = GetCurrentTimestamp();
	SpinLockRelease(&backlog->mutex);
}

bool
settle_backlog_read(SettleBacklogReport *out)
{
	bool		published;

	if (backlog == NULL)
	{
		memset(out, 0, sizeof(*out));
		return false;
	}
	SpinLockAcquire(&backlog->mutex);
	*out = backlog->report;
	published = backlog->published;
	SpinLockRelease(&backlog->mutex);
	return published;
}

void
settle_backlog_count_stall(void)
{
	if (backlog == NULL)
		return;
	SpinLockAcquire(&backlog->mutex);
	backlog->stalls++;
	SpinLockRelease(&backlog->mutex);
}

PG_FUNCTION_INFO_V1(settle_backlog_status);

/*
 * settle_backlog_status(): one row, the queue as the worker last saw it and
 * intake's refusals; no row when settle is not preloaded or this is not the
 * worker's database.
 */
Datum
settle_backlog_status(PG_FUNCTION_ARGS)
{
	SettleBacklogShared copy;
	Datum		values[17];
	bool		nulls[17] = {0};
	bool		fresh;
	TupleDesc	desc;

	InitMaterializedSRF(fcinfo, 0);
	desc = ((ReturnSetInfo *) fcinfo->resultinfo)->setDesc;
	if (backlog == NULL || !serves_this_database())
		PG_RETURN_VOID();
	SpinLockAcquire(&backlog->mutex);
	memcpy(&copy, backlog, sizeof(copy));
	SpinLockRelease(&backlog->mutex);
	fresh = settle_backlog_fresh(&copy, GetCurrentTimestamp());

	/* queued_estimate: NULL while the worker publishes nothing (no admission control then) */
	values[0] = Int64GetDatum(copy.report.queued + (int64) (copy.arrivals.arrived - copy.report.arrived_at));
	nulls[0] = !fresh;
	values[1] = Int64GetDatum((int64) copy.arrivals.arrived);
	values[2] = Int64GetDatum((int64) copy.refused);
	values[3] = Int64GetDatum(copy.report.waiting);
	values[4] = Int64GetDatum(copy.report.oldest_waiting);
	nulls[4] = copy.report.oldest_waiting == 0;
	values[5] = TimestampTzGetDatum(copy.report.oldest_waiting_since);
	nulls[5] = copy.report.oldest_waiting == 0;
	values[6] = BoolGetDatum(copy.report.stalled);
	values[7] = TimestampTzGetDatum(copy.report.stalled_since);
	nulls[7] = !copy.report.stalled;
	values[8] = Int64GetDatum((int64) copy.stalls);
	values[9] = Int32GetDatum(copy.report.no_progress);
	values[10] = Float8GetDatum(copy.report.backoff_ms);
	values[11] = Float8GetDatum(copy.report.batch_delay_ms);
	/* the pacing's inputs: NULL until the worker has learnt them */
	values[12] = Float8GetDatum(copy.report.arrival_rate);
	nulls[12] = !copy.published || isnan(copy.report.arrival_rate);
	values[13] = Float8GetDatum(copy.report.lone_payment_cost);
	nulls[13] = !copy.published || isnan(copy.report.lone_payment_cost);
	values[14] = Float8GetDatum(copy.report.netting_saturation);
	nulls[14] = !copy.published || isnan(copy.report.netting_saturation);
	values[15] = Float8GetDatum(copy.report.waiting_cost);
	nulls[15] = !copy.published || isnan(copy.report.waiting_cost);
	values[16] = TimestampTzGetDatum(copy.published_at);
	nulls[16] = !copy.published;
	tuplestore_putvalues(((ReturnSetInfo *) fcinfo->resultinfo)->setResult, desc, values, nulls);
	PG_RETURN_VOID();
}
