/*
 * worker_state.c -- the settlement workers' slots in shared memory (one per
 * database the launcher serves), the counters and last error of each, and
 * settle_worker_status() to read them.
 *
 * The launcher (src/launcher.c) assigns a slot to a database and frees it;
 * the worker of that database writes its counters there once per round, and
 * readers copy a slot out under its spinlock.  Counters start at zero when
 * the slot is assigned (the server's start, or the database's first worker)
 * and survive the worker's restarts.
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
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "worker.h"
#include "worker_state.h"

SettleShared *settle_shared = NULL;
int			settle_max_databases = 16;


/* this process's worker slot (a settlement worker), or -1 */
static int	my_worker_slot = -1;
/* this backend's database's slot as last found */
static int	my_slot_cache = -1;

static Size
shared_size(void)
{
	return add_size(offsetof(SettleShared, slots), mul_size(settle_max_databases, sizeof(SettleDbSlot)));
}

void
settle_worker_state_shmem_request(void)
{
	RequestAddinShmemSpace(MAXALIGN(shared_size()));
}

void
settle_worker_state_shmem_startup(void)
{
	bool		found;
	int			i;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	settle_shared = ShmemInitStruct("settle workers", shared_size(), &found);
	if (!found)
	{
		memset(settle_shared, 0, shared_size());
		SpinLockInit(&settle_shared->mutex);
		settle_shared->n_slots = settle_max_databases;
		for (i = 0; i < settle_max_databases; i++)
			SpinLockInit(&settle_shared->slots[i].mutex);
	}
	LWLockRelease(AddinShmemInitLock);
}

void
settle_worker_state_define_settings(void)
{
	/* a postmaster setting can only be defined while preloading; loaded later it is read-only */
	DefineCustomIntVariable("settle.max_databases",
							"Most databases the settle launcher starts a settlement worker for.",
							"Each worker is a background worker: max_worker_processes must leave room for them and the launcher.",
							&settle_max_databases, 16, 1, 1024,
							process_shared_preload_libraries_in_progress ? PGC_POSTMASTER : PGC_INTERNAL,
							0, NULL, NULL, NULL);
}

int
settle_worker_slot_of(Oid dboid)
{
	int			i;

	if (settle_shared == NULL || !OidIsValid(dboid))
		return -1;
	for (i = 0; i < settle_shared->n_slots; i++)
	{
		SettleDbSlot *s = &settle_shared->slots[i];
		bool		match;

		SpinLockAcquire(&s->mutex);
		match = s->dboid == dboid;
		SpinLockRelease(&s->mutex);
		if (match)
			return i;
	}
	return -1;
}

int
settle_worker_my_slot(void)
{
	if (settle_shared == NULL)
		return -1;
	if (my_slot_cache >= 0)
	{
		SettleDbSlot *s = &settle_shared->slots[my_slot_cache];
		bool		still;

		SpinLockAcquire(&s->mutex);
		still = s->dboid == MyDatabaseId;
		SpinLockRelease(&s->mutex);
		if (still)
			return my_slot_cache;
	}
	my_slot_cache = settle_worker_slot_of(MyDatabaseId);
	return my_slot_cache;
}

const char *
settle_worker_run_name(SettleWorkerRun run)
{
	switch (run)
	{
		case SETTLE_RUN_STARTING:
			return "starting";
		case SETTLE_RUN_RUNNING:
			return "running";
		case SETTLE_RUN_NOT_INSTALLED:
			return "not_installed";
		case SETTLE_RUN_STOPPED:
			return "stopped";
		case SETTLE_RUN_FAILED:
			return "failed";
		case SETTLE_RUN_PAUSED:
			return "paused";
		default:
			return "free";
	}
}

/* The worker leaves: its slot says why, and nobody wakes a dead latch. */
static SettleWorkerRun leaving_run = SETTLE_RUN_FAILED;

static void
worker_exit(int code, Datum arg)
{
	SettleDbSlot *s;

	if (settle_shared == NULL || my_worker_slot < 0)
		return;
	s = &settle_shared->slots[my_worker_slot];
	SpinLockAcquire(&s->mutex);
	if (s->pid == MyProcPid)
	{
		s->pid = 0;
		s->latch = NULL;
		/* a worker that leaves on an error has failed, whatever it meant to do */
		if (s->run != SETTLE_RUN_PAUSED)
		{
			s->run = code == 0 ? leaving_run : SETTLE_RUN_FAILED;
			s->run_since = GetCurrentTimestamp();
		}
	}
	SpinLockRelease(&s->mutex);
}

void
settle_worker_state_started(int slot)
{
	SettleDbSlot *s;

	if (settle_shared == NULL || slot < 0 || slot >= settle_shared->n_slots)
		return;
	my_worker_slot = slot;
	s = &settle_shared->slots[slot];
	SpinLockAcquire(&s->mutex);
	s->pid = MyProcPid;
	s->latch = MyLatch;
	s->started_at = GetCurrentTimestamp();
	s->run = SETTLE_RUN_RUNNING;
	s->run_since = s->started_at;
	s->recheck = false;
	SpinLockRelease(&s->mutex);
	before_shmem_exit(worker_exit, (Datum) 0);
}

void
settle_worker_state_leaving(SettleWorkerRun run)
{
	leaving_run = run;
}

void
settle_worker_state_note(bool is_cycle, ErrorData *edata)
{
	TimestampTz now = GetCurrentTimestamp();
	const char *message = edata && edata->message ? edata->message : "";
	/* cut on a character boundary: the column must stay valid text */
	int			message_len = pg_mbcliplen(message, strlen(message), SETTLE_LAST_ERROR_BYTES - 1);
	SettleDbSlot *s;

	if (settle_shared == NULL || my_worker_slot < 0)
		return;
	s = &settle_shared->slots[my_worker_slot];
	SpinLockAcquire(&s->mutex);
	if (edata == NULL)
	{
		if (is_cycle)
		{
			s->cycles_ok++;
			s->last_cycle_at = now;
		}
	}
	else
	{
		if (is_cycle)
			s->cycles_failed++;
		else
			s->seals_failed++;
		s->last_failure_at = now;
		strlcpy(s->last_failure_in, is_cycle ? "cycle" : "seal", sizeof(s->last_failure_in));
		strlcpy(s->last_sqlstate, unpack_sql_state(edata->sqlerrcode), sizeof(s->last_sqlstate));
		memcpy(s->last_error, message, message_len);
		s->last_error[message_len] = '\0';
	}
	SpinLockRelease(&s->mutex);
}

/* Wake this database's worker (a payment was committed to the queue). */
void
settle_worker_wake(void)
{
	Latch	   *latch = NULL;
	int			slot = settle_worker_my_slot();

	if (slot < 0)
		return;
	SpinLockAcquire(&settle_shared->slots[slot].mutex);
	latch = settle_shared->slots[slot].latch;
	SpinLockRelease(&settle_shared->slots[slot].mutex);
	/* a worker that died leaves a latch of a free PGPROC: a spurious wake-up at worst */
	if (latch != NULL)
		SetLatch(latch);
}

void
settle_launcher_wake(void)
{
	Latch	   *latch;

	if (settle_shared == NULL)
		return;
	SpinLockAcquire(&settle_shared->mutex);
	latch = settle_shared->launcher_latch;
	SpinLockRelease(&settle_shared->mutex);
	if (latch != NULL)
		SetLatch(latch);
}

/* A worker cycle that changed nothing and so wrote no cycle record. */
void
settle_worker_state_note_unchanged(void)
{
	SettleDbSlot *s;

	if (settle_shared == NULL || my_worker_slot < 0)
		return;
	s = &settle_shared->slots[my_worker_slot];
	SpinLockAcquire(&s->mutex);
	s->cycles_unchanged++;
	SpinLockRelease(&s->mutex);
}

/* A seal that found nothing to seal and so wrote no seal run. */
void
settle_worker_state_note_seal_unchanged(void)
{
	SettleDbSlot *s;

	if (settle_shared == NULL || my_worker_slot < 0)
		return;
	s = &settle_shared->slots[my_worker_slot];
	SpinLockAcquire(&s->mutex);
	s->seals_unchanged++;
	SpinLockRelease(&s->mutex);
}

#define STATUS_COLUMNS 16

static void
put_slot(ReturnSetInfo *rsinfo, TupleDesc desc, const SettleDbSlot *copy)
{
	Datum		values[STATUS_COLUMNS];
	bool		nulls[STATUS_COLUMNS] = {0};
	bool		no_failure = copy->last_failure_at == 0;

	values[0] = Int32GetDatum(copy->pid);
	nulls[0] = copy->pid == 0;
	values[1] = TimestampTzGetDatum(copy->started_at);
	nulls[1] = copy->started_at == 0;
	values[2] = Int64GetDatum(copy->cycles_ok);
	values[3] = Int64GetDatum(copy->cycles_failed);
	values[4] = Int64GetDatum(copy->seals_failed);
	values[5] = TimestampTzGetDatum(copy->last_cycle_at);
	nulls[5] = copy->last_cycle_at == 0;
	values[6] = TimestampTzGetDatum(copy->last_failure_at);
	nulls[6] = no_failure;
	values[7] = CStringGetTextDatum(copy->last_failure_in);
	nulls[7] = no_failure;
	values[8] = CStringGetTextDatum(copy->last_sqlstate);
	nulls[8] = no_failure;
	values[9] = CStringGetTextDatum(copy->last_error);
	nulls[9] = no_failure;
	values[10] = Int64GetDatum(copy->cycles_unchanged);
	/* since 1.2; the SQL of 1.0 and 1.1 declares the first 11 columns only */
	values[11] = Int64GetDatum(copy->seals_unchanged);
	values[12] = NameGetDatum(&copy->dbname);
	values[13] = CStringGetTextDatum(settle_worker_run_name(copy->run));
	values[14] = TimestampTzGetDatum(copy->run_since);
	nulls[14] = copy->run_since == 0;
	values[15] = Int64GetDatum(copy->starts);
	Assert(desc->natts <= STATUS_COLUMNS);
	tuplestore_putvalues(rsinfo->setResult, desc, values, nulls);
}

PG_FUNCTION_INFO_V1(settle_worker_status);

/*
 * settle_worker_status([all_databases]): this database's worker (one row),
 * or every database's the launcher knows; no row when settle is not
 * preloaded (no worker) or the launcher serves no such database.
 */
Datum
settle_worker_status(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	bool		all = PG_NARGS() > 0 && !PG_ARGISNULL(0) && PG_GETARG_BOOL(0);
	SettleDbSlot *copy;
	int			i;

	InitMaterializedSRF(fcinfo, 0);
	if (settle_shared == NULL)
		PG_RETURN_VOID();
	copy = palloc(sizeof(SettleDbSlot));
	for (i = 0; i < settle_shared->n_slots; i++)
	{
		SettleDbSlot *s = &settle_shared->slots[i];

		SpinLockAcquire(&s->mutex);
		memcpy(copy, s, sizeof(SettleDbSlot));
		SpinLockRelease(&s->mutex);
		if (!OidIsValid(copy->dboid) || (!all && copy->dboid != MyDatabaseId))
			continue;
		put_slot(rsinfo, rsinfo->setDesc, copy);
	}
	PG_RETURN_VOID();
}
