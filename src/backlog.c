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
#include "access/xact.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "backlog.h"
#include "cycle.h"
#include "settle_errors.h"
#include "worker.h"
#include "worker_state.h"

int			settle_max_queued = 1000000;
int			settle_max_queue_age_ms = 0;
/*
 * settle.cycle_interval, registered with the cycle's settings (cycle_settings.c): how
 * often the worker takes the queue at the latest.  Here, below the cycle and
 * the worker that read it, because the backlog's own report reads it too.
 */
int			settle_cycle_interval_ms = 1000;
int			settle_stall_after_ms = 30000;

typedef struct SettleBacklogShared
{
	slock_t		mutex;
	SettleArrivals arrivals;
	uint64		refused;		/* payments refused by intake (depth or age) */
	uint64		stalls;			/* stall episodes declared */
	bool		published;
	TimestampTz published_at;
	SettleBacklogReport report;
} SettleBacklogShared;

/* one per worker slot (worker_state.c): the queue of each database the launcher serves */
static SettleBacklogShared *backlogs = NULL;
static SettleBacklogShared *my_backlog(void);
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
	DefineCustomIntVariable("settle.max_queue_age",
							"How long committed payments may wait for a cycle to take them before intake refuses new ones (SE093).",
							"0: no limit. Admission by the backlog's age: the worker is behind when what intake "
							"committed has not been taken by a cycle for this long.",
							&settle_max_queue_age_ms,
							0, 0, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("settle.stall_after",
							"How long cycles may leave the same oldest payment waiting before the backlog is reported stalled.",
							NULL, &settle_stall_after_ms,
							30000, 100, 86400000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
}

void
settle_backlog_shmem_request(void)
{
	RequestAddinShmemSpace(MAXALIGN(mul_size(settle_max_databases, sizeof(SettleBacklogShared))));
}

void
settle_backlog_shmem_startup(void)
{
	bool		found;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	backlogs = ShmemInitStruct("settle backlog", mul_size(settle_max_databases, sizeof(SettleBacklogShared)), &found);
	if (!found)
	{
		int			i;

		memset(backlogs, 0, mul_size(settle_max_databases, sizeof(SettleBacklogShared)));
		for (i = 0; i < settle_max_databases; i++)
			SpinLockInit(&backlogs[i].mutex);
	}
	LWLockRelease(AddinShmemInitLock);
}

/* This backend's database's queue, or NULL: the launcher serves no such database. */
static SettleBacklogShared *
my_backlog(void)
{
	int			slot;

	if (backlogs == NULL)
		return NULL;
	slot = settle_worker_my_slot();
	return slot < 0 ? NULL : &backlogs[slot];
}

/* The launcher gives a slot to a database: its queue starts empty. */
void
settle_backlog_reset(int slot)
{
	SettleBacklogShared *b;

	if (backlogs == NULL || slot < 0 || slot >= settle_max_databases)
		return;
	b = &backlogs[slot];
	SpinLockAcquire(&b->mutex);
	memset(((char *) b) + offsetof(SettleBacklogShared, arrivals), 0,
		   sizeof(SettleBacklogShared) - offsetof(SettleBacklogShared, arrivals));
	SpinLockRelease(&b->mutex);
}

/* The worker's figures are current: published since the last two heartbeats (and 30 s). */
static bool
settle_backlog_fresh(const SettleBacklogShared *copy, TimestampTz now)
{
	return copy->published &&
		!TimestampDifferenceExceeds(copy->published_at, now, 2 * settle_cycle_interval_ms + 30000);
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
	if (backlogs == NULL)
		return;					/* not preloaded: there is no worker */
	settle_backlog_note_pending(n, max_priority, min_deadline);
	if (!wake_registered)
	{
		RegisterXactCallback(wake_xact_callback, NULL);
		wake_registered = true;
	}
	wake_at_commit = true;
}

/* this transaction's payments, counted when it commits */
static int	pending_n = 0;
static int	pending_max_priority = 0;
static TimestampTz pending_min_deadline = 0;

void
settle_backlog_note_pending(int n, int max_priority, TimestampTz min_deadline)
{
	SettleBacklogShared *backlog = my_backlog();

	if (backlog == NULL || n <= 0)
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
	SettleBacklogShared *backlog = my_backlog();
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
 * Admission: the queue's estimated depth plus n new payments must stay
 * within settle.max_queued, and what intake committed must not have waited
 * longer than settle.max_queue_age for a cycle to take it (the worker is
 * behind: admission by the backlog's age).  Only in the worker's database,
 * while the worker publishes.  Returns whether n would be refused, and why.
 */
static bool
admission_refuses(int n, int64 *depth, int64 *age_ms, bool *too_deep)
{
	SettleBacklogShared *backlog = my_backlog();
	SettleBacklogShared copy;
	TimestampTz now;

	*depth = 0;
	*age_ms = 0;
	*too_deep = false;
	if (backlog == NULL || n <= 0 || (settle_max_queued <= 0 && settle_max_queue_age_ms <= 0))
		return false;
	SpinLockAcquire(&backlog->mutex);
	memcpy(&copy, backlog, sizeof(copy));
	SpinLockRelease(&backlog->mutex);
	now = GetCurrentTimestamp();
	if (!settle_backlog_fresh(&copy, now))
		return false;
	*depth = copy.report.queued + (int64) (copy.arrivals.arrived - copy.report.arrived_at);
	*too_deep = settle_max_queued > 0 && *depth + n > settle_max_queued;
	if (copy.arrivals.first_at != 0 && now > copy.arrivals.first_at)
		*age_ms = (now - copy.arrivals.first_at) / 1000;
	return *too_deep || (settle_max_queue_age_ms > 0 && *age_ms > settle_max_queue_age_ms);
}

/* Would intake refuse n new payments now?  (No side effect.) */
bool
settle_backlog_would_refuse(int n)
{
	int64		depth,
				age_ms;
	bool		too_deep;

	return admission_refuses(n, &depth, &age_ms, &too_deep);
}

/*
 * Intake, before it inserts n new payments (retries of payments already
 * in the queue not counted: they are answered as replays): refuses the
 * whole call with SE093 when admission says no (nothing written: a retry
 * with the same idempotency keys is safe).
 */
void
settle_backlog_admit(int n)
{
	SettleBacklogShared *backlog = my_backlog();
	int64		depth,
				age_ms;
	bool		too_deep;

	if (!admission_refuses(n, &depth, &age_ms, &too_deep))
		return;
	SpinLockAcquire(&backlog->mutex);
	backlog->refused += n;
	SpinLockRelease(&backlog->mutex);
	if (too_deep)
		ereport(ERROR,
				(errcode(ERRCODE_SETTLE_QUEUE_FULL),
				 errmsg("the settlement queue is full: %d payment(s) refused", n),
				 errdetail("About " INT64_FORMAT " payments are queued; settle.max_queued is %d.",
						   depth, settle_max_queued),
				 errhint("Nothing was written. Retry later with the same idempotency keys; "
						 "settle_backlog_status() shows the queue.")));
	ereport(ERROR,
			(errcode(ERRCODE_SETTLE_QUEUE_FULL),
			 errmsg("the settlement queue is behind: %d payment(s) refused", n),
			 errdetail("Payments committed " INT64_FORMAT " ms ago are not in a cycle yet; settle.max_queue_age is %d ms.",
					   age_ms, settle_max_queue_age_ms),
			 errhint("Nothing was written. Retry later with the same idempotency keys; "
					 "settle_backlog_status() shows the queue.")));
}

bool
settle_backlog_peek(SettleArrivals *out)
{
	SettleBacklogShared *backlog = my_backlog();

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
	SettleBacklogShared *backlog = my_backlog();

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
	SettleBacklogShared *backlog = my_backlog();

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
	SettleBacklogShared *backlog = my_backlog();
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
	SettleBacklogShared *backlog = my_backlog();

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
	SettleBacklogShared *backlog = my_backlog();
	SettleBacklogShared copy;
	Datum		values[17];
	bool		nulls[17] = {0};
	bool		fresh;
	TupleDesc	desc;

	InitMaterializedSRF(fcinfo, 0);
	desc = ((ReturnSetInfo *) fcinfo->resultinfo)->setDesc;
	if (backlog == NULL)
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
