/*
 * launcher.c -- the settle launcher: one settlement worker per database.
 *
 * Registered from shared_preload_libraries, the launcher connects to no
 * database.  Every few seconds, and whenever a backend wakes it (CREATE
 * EXTENSION settle or CREATE DATABASE committed, a database command done:
 * src/db_events.c) or a worker it started stops, it reads pg_database and
 * reconciles:
 *
 *   - each connectable, non-template database allowed by settle.database
 *     (empty: every one) gets a slot in shared memory (worker_state.c, at
 *     most settle.max_databases) and a dynamic background worker
 *     (worker.c) that connects to it;
 *   - a worker that finds no extension leaves (state not_installed) and is
 *     started again only when CREATE EXTENSION settle commits there;
 *   - a worker that exits unexpectedly (state failed) is started again
 *     after RESTART_DELAY_MS, never in a loop;
 *   - a database that is gone frees its slot; one that is no longer
 *     allowed, or all of them while settle.worker_enabled is off, has its
 *     worker stopped (state stopped);
 *   - a name in settle.database that matches no database is reported once
 *     (until the next reload), and nothing is started for it.
 *
 * Workers are started with BGW_NEVER_RESTART and bgw_notify_pid set, so the
 * postmaster never restarts them itself and tells the launcher (SIGUSR1,
 * its latch) when one starts or stops.
 */
#include "postgres.h"

#include <signal.h>

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/relscan.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "commands/dbcommands.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "backlog.h"
#include "launcher.h"
#include "worker.h"
#include "worker_state.h"

PGDLLEXPORT void settle_launcher_main(Datum main_arg);

char	   *settle_database = NULL;
bool		settle_worker_enabled = true;

/* how often the launcher looks at pg_database without being woken */
#define SCAN_INTERVAL_MS 5000
/* a worker that exited unexpectedly is started again after this */
#define RESTART_DELAY_MS 10000

typedef struct LaunchedDb
{
	Oid			oid;
	NameData	name;
} LaunchedDb;

/* the launcher's own view, per slot */
static BackgroundWorkerHandle **handles = NULL;
static SettleWorkerRun *intent = NULL;	/* why the launcher stopped it, or FREE */
static TimestampTz *retry_at = NULL;
static bool warned_full = false;
static bool warned_no_worker_slot = false;
static List *warned_missing = NIL;	/* settle.database names reported missing */

/* settle.worker_enabled and settle.database (from _PG_init). */
void
settle_launcher_define_settings(void)
{
	DefineCustomBoolVariable("settle.worker_enabled",
							 "Runs settlement cycles in background workers, one per database with the extension.",
							 "Off: the launcher stops them; cycles run only through settle_run_cycle().",
							 &settle_worker_enabled, true,
							 PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("settle.database",
							   "Databases the settle launcher may start a settlement worker for (comma-separated); empty: every database.",
							   "A database not listed gets no worker; one listed without the extension is reported once.",
							   &settle_database, "",
							   PGC_SIGHUP, 0, NULL, NULL, NULL);
}

void
settle_launcher_register(void)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_ConsistentState;
	worker.bgw_restart_time = 5;
	strlcpy(worker.bgw_library_name, "settle", BGW_MAXLEN);
	strlcpy(worker.bgw_function_name, "settle_launcher_main", BGW_MAXLEN);
	strlcpy(worker.bgw_name, "settle launcher", BGW_MAXLEN);
	strlcpy(worker.bgw_type, "settle launcher", BGW_MAXLEN);
	RegisterBackgroundWorker(&worker);
}

/*
 * Whether settle.database names `name`: a comma-separated list, blanks
 * around a name ignored, names compared exactly (no case folding).
 */
bool
settle_database_listed(const char *name)
{
	const char *p = settle_database;

	if (p == NULL || name == NULL)
		return false;
	while (*p)
	{
		const char *start;
		const char *end;

		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		start = p;
		while (*p && *p != ',')
			p++;
		end = p;
		while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
			end--;
		if (end > start && strlen(name) == (size_t) (end - start) && strncmp(start, name, end - start) == 0)
			return true;
	}
	return false;
}

bool
settle_database_allowed(const char *name)
{
	const char *p = settle_database;

	if (p != NULL)
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
	if (p == NULL || *p == '\0')
		return true;
	return settle_database_listed(name);
}

PG_FUNCTION_INFO_V1(settle_database_served);

/* settle._database_served(): does the launcher start a worker for this database? */
Datum
settle_database_served(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(settle_shared != NULL && settle_worker_enabled &&
				   settle_database_allowed(get_database_name(MyDatabaseId)));
}

static void
launcher_exit(int code, Datum arg)
{
	SpinLockAcquire(&settle_shared->mutex);
	if (settle_shared->launcher_pid == MyProcPid)
	{
		settle_shared->launcher_pid = 0;
		settle_shared->launcher_latch = NULL;
	}
	SpinLockRelease(&settle_shared->mutex);
}

/* Connectable databases that are not templates (a worker in a template would block CREATE DATABASE). */
static List *
scan_databases(void)
{
	List	   *dbs = NIL;
	MemoryContext cxt = CurrentMemoryContext;
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tup;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	(void) GetTransactionSnapshot();
	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while (HeapTupleIsValid(tup = heap_getnext(scan, ForwardScanDirection)))
	{
		Form_pg_database d = (Form_pg_database) GETSTRUCT(tup);
		LaunchedDb *e;
		MemoryContext old;

		CHECK_FOR_INTERRUPTS();
		if (!d->datallowconn || d->datistemplate || database_is_invalid_form(d))
			continue;
		old = MemoryContextSwitchTo(cxt);
		e = palloc(sizeof(LaunchedDb));
		e->oid = d->oid;
		namestrcpy(&e->name, NameStr(d->datname));
		dbs = lappend(dbs, e);
		MemoryContextSwitchTo(old);
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	CommitTransactionCommand();
	/* the commit leaves TopMemoryContext current: back to the look's own */
	MemoryContextSwitchTo(cxt);
	return dbs;
}

static void
set_run(int i, SettleWorkerRun run)
{
	SettleDbSlot *s = &settle_shared->slots[i];

	SpinLockAcquire(&s->mutex);
	if (s->run != run)
	{
		s->run = run;
		s->run_since = GetCurrentTimestamp();
	}
	SpinLockRelease(&s->mutex);
}

/* Stop slot i's worker on purpose; its state becomes `why` once it has gone. */
static void
stop_worker(int i, SettleWorkerRun why)
{
	if (handles[i] != NULL)
	{
		TerminateBackgroundWorker(handles[i]);
		intent[i] = why;
	}
	else
		set_run(i, why);
}

/* A slot for a database: its own, or a free one, counters from zero. */
static int
slot_for(const LaunchedDb *db)
{
	int			i = settle_worker_slot_of(db->oid);

	if (i >= 0)
		return i;
	for (i = 0; i < settle_shared->n_slots; i++)
	{
		SettleDbSlot *s = &settle_shared->slots[i];
		bool		free_slot;

		SpinLockAcquire(&s->mutex);
		free_slot = !OidIsValid(s->dboid) && s->pid == 0;
		if (free_slot)
		{
			/* everything after the spinlock */
			memset(((char *) s) + offsetof(SettleDbSlot, dboid), 0,
				   sizeof(SettleDbSlot) - offsetof(SettleDbSlot, dboid));
			s->dboid = db->oid;
			s->dbname = db->name;
			s->run = SETTLE_RUN_STOPPED;
			s->run_since = GetCurrentTimestamp();
		}
		SpinLockRelease(&s->mutex);
		if (free_slot)
		{
			settle_backlog_reset(i);
			handles[i] = NULL;
			intent[i] = SETTLE_RUN_FREE;
			retry_at[i] = 0;
			return i;
		}
	}
	return -1;
}

static void
start_worker(int i, const LaunchedDb *db)
{
	BackgroundWorker worker;
	BackgroundWorkerHandle *handle;
	SettleDbSlot *s = &settle_shared->slots[i];
	MemoryContext old;
	bool		registered;
	SettleWorkerRun prev_run;
	TimestampTz prev_since;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_ConsistentState;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	strlcpy(worker.bgw_library_name, "settle", BGW_MAXLEN);
	strlcpy(worker.bgw_function_name, "settle_worker_main", BGW_MAXLEN);
	snprintf(worker.bgw_name, BGW_MAXLEN, "settle worker %s", NameStr(db->name));
	strlcpy(worker.bgw_type, "settle worker", BGW_MAXLEN);
	worker.bgw_main_arg = Int32GetDatum(i);
	worker.bgw_notify_pid = MyProcPid;
	/*
	 * Starting before it is registered: a worker that starts at once marks
	 * itself running (settle_worker_state_started), and this must not
	 * overwrite that afterwards.
	 */
	SpinLockAcquire(&s->mutex);
	prev_run = s->run;
	prev_since = s->run_since;
	s->run = SETTLE_RUN_STARTING;
	s->run_since = GetCurrentTimestamp();
	s->recheck = false;
	SpinLockRelease(&s->mutex);
	/* the handle outlives this look at pg_database (its memory is reset after it) */
	old = MemoryContextSwitchTo(TopMemoryContext);
	registered = RegisterDynamicBackgroundWorker(&worker, &handle);
	MemoryContextSwitchTo(old);
	if (!registered)
	{
		SpinLockAcquire(&s->mutex);
		s->run = prev_run;
		s->run_since = prev_since;
		SpinLockRelease(&s->mutex);
		if (!warned_no_worker_slot)
			ereport(WARNING,
					(errmsg("settle launcher: no background worker slot left for database \"%s\"", NameStr(db->name)),
					 errhint("Raise max_worker_processes: settle needs one for its launcher and one per database it serves.")));
		warned_no_worker_slot = true;
		return;
	}
	warned_no_worker_slot = false;
	handles[i] = handle;
	intent[i] = SETTLE_RUN_FREE;
	SpinLockAcquire(&s->mutex);
	s->starts++;
	SpinLockRelease(&s->mutex);
}

/* Note the workers that stopped since the last look. */
static void
observe_workers(TimestampTz now)
{
	int			i;

	for (i = 0; i < settle_shared->n_slots; i++)
	{
		pid_t		pid;
		SettleDbSlot *s = &settle_shared->slots[i];
		SettleWorkerRun run;

		if (handles[i] == NULL)
			continue;
		if (GetBackgroundWorkerPid(handles[i], &pid) != BGWH_STOPPED)
			continue;
		pfree(handles[i]);
		handles[i] = NULL;
		SpinLockAcquire(&s->mutex);
		/* it may never have reached its own bookkeeping (a FATAL while connecting) */
		if (s->pid != 0)
		{
			s->pid = 0;
			s->latch = NULL;
		}
		if (intent[i] != SETTLE_RUN_FREE && s->run != SETTLE_RUN_PAUSED)
		{
			s->run = intent[i];
			s->run_since = now;
		}
		else if (s->run == SETTLE_RUN_STARTING || s->run == SETTLE_RUN_RUNNING)
		{
			s->run = SETTLE_RUN_FAILED;
			s->run_since = now;
		}
		run = s->run;
		SpinLockRelease(&s->mutex);
		intent[i] = SETTLE_RUN_FREE;
		if (run == SETTLE_RUN_FAILED)
			retry_at[i] = TimestampTzPlusMilliseconds(now, RESTART_DELAY_MS);
	}
}

/* One look at pg_database and the slots; returns how long to wait before the next. */
static long
reconcile(void)
{
	TimestampTz now = GetCurrentTimestamp();
	List	   *dbs;
	ListCell   *lc;
	long		wait_ms = SCAN_INTERVAL_MS;
	int			i;

	observe_workers(now);
	dbs = scan_databases();

	/* databases that are gone: stop their workers, free their slots */
	for (i = 0; i < settle_shared->n_slots; i++)
	{
		SettleDbSlot *s = &settle_shared->slots[i];
		Oid			dboid;
		bool		present = false;

		SpinLockAcquire(&s->mutex);
		dboid = s->dboid;
		SpinLockRelease(&s->mutex);
		if (!OidIsValid(dboid))
			continue;
		foreach(lc, dbs)
			if (((LaunchedDb *) lfirst(lc))->oid == dboid)
				present = true;
		if (present)
			continue;
		if (handles[i] != NULL)
		{
			stop_worker(i, SETTLE_RUN_STOPPED);
			wait_ms = Min(wait_ms, 100);
			continue;
		}
		SpinLockAcquire(&s->mutex);
		if (s->pid == 0)
		{
			s->dboid = InvalidOid;
			s->run = SETTLE_RUN_FREE;
		}
		SpinLockRelease(&s->mutex);
	}

	foreach(lc, dbs)
	{
		LaunchedDb *db = lfirst(lc);
		SettleDbSlot *s;
		SettleWorkerRun run;
		bool		recheck;
		TimestampTz paused_until;

		if (!settle_worker_enabled || !settle_database_allowed(NameStr(db->name)))
		{
			i = settle_worker_slot_of(db->oid);
			if (i >= 0)
				stop_worker(i, SETTLE_RUN_STOPPED);
			continue;
		}
		i = slot_for(db);
		if (i < 0)
		{
			if (!warned_full)
				ereport(WARNING,
						(errmsg("settle launcher: database \"%s\" gets no settlement worker: settle.max_databases (%d) are served",
								NameStr(db->name), settle_max_databases),
						 errhint("Raise settle.max_databases (a restart), or list the databases to serve in settle.database.")));
			warned_full = true;
			continue;
		}
		if (handles[i] != NULL)
			continue;
		s = &settle_shared->slots[i];
		SpinLockAcquire(&s->mutex);
		run = s->run;
		recheck = s->recheck;
		paused_until = s->paused_until;
		SpinLockRelease(&s->mutex);
		if (paused_until > now)
		{
			set_run(i, SETTLE_RUN_PAUSED);
			wait_ms = Min(wait_ms, Max(TimestampDifferenceMilliseconds(now, paused_until), 10));
			continue;
		}
		if (run == SETTLE_RUN_NOT_INSTALLED && !recheck)
			continue;
		if (run == SETTLE_RUN_FAILED && retry_at[i] > now)
		{
			wait_ms = Min(wait_ms, Max(TimestampDifferenceMilliseconds(now, retry_at[i]), 10));
			continue;
		}
		start_worker(i, db);
	}

	/* names in settle.database that match no database: said once (until a reload) */
	if (settle_worker_enabled && settle_database != NULL)
	{
		char	   *list = pstrdup(settle_database);
		char	   *tok;
		char	   *save = NULL;

		for (tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
		{
			char	   *end;
			bool		found = false;
			ListCell   *w;

			while (*tok == ' ' || *tok == '\t')
				tok++;
			end = tok + strlen(tok);
			while (end > tok && (end[-1] == ' ' || end[-1] == '\t'))
				*--end = '\0';
			if (*tok == '\0')
				continue;
			foreach(lc, dbs)
				if (strcmp(NameStr(((LaunchedDb *) lfirst(lc))->name), tok) == 0)
					found = true;
			foreach(w, warned_missing)
				if (strcmp((char *) lfirst(w), tok) == 0)
					found = true;
			if (found)
				continue;
			ereport(WARNING,
					(errmsg("settle launcher: settle.database names database \"%s\", which does not exist (or is a template); no worker for it",
							tok),
					 errhint("Create the database, or correct settle.database and reload.")));
			{
				MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

				warned_missing = lappend(warned_missing, pstrdup(tok));
				MemoryContextSwitchTo(old);
			}
		}
	}
	return wait_ms;
}

void
settle_launcher_main(Datum main_arg)
{
	MemoryContext cxt;
	int			i;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);
	pgstat_report_appname("settle launcher");

	SpinLockAcquire(&settle_shared->mutex);
	settle_shared->launcher_pid = MyProcPid;
	settle_shared->launcher_latch = MyLatch;
	SpinLockRelease(&settle_shared->mutex);
	before_shmem_exit(launcher_exit, (Datum) 0);

	handles = MemoryContextAllocZero(TopMemoryContext, sizeof(BackgroundWorkerHandle *) * settle_shared->n_slots);
	intent = MemoryContextAllocZero(TopMemoryContext, sizeof(SettleWorkerRun) * settle_shared->n_slots);
	retry_at = MemoryContextAllocZero(TopMemoryContext, sizeof(TimestampTz) * settle_shared->n_slots);

	/* workers of a launcher that died before us: we have no handle on them, so they go */
	for (i = 0; i < settle_shared->n_slots; i++)
	{
		int			pid;

		SpinLockAcquire(&settle_shared->slots[i].mutex);
		pid = settle_shared->slots[i].pid;
		SpinLockRelease(&settle_shared->slots[i].mutex);
		if (pid != 0)
			kill(pid, SIGTERM);
	}
	/* and are gone before their databases get new ones (5 s at most) */
	for (i = 0; i < settle_shared->n_slots; i++)
	{
		int			tries;

		for (tries = 0; tries < 500; tries++)
		{
			int			pid;

			SpinLockAcquire(&settle_shared->slots[i].mutex);
			pid = settle_shared->slots[i].pid;
			SpinLockRelease(&settle_shared->slots[i].mutex);
			if (pid == 0 || kill(pid, 0) != 0)
				break;
			CHECK_FOR_INTERRUPTS();
			pg_usleep(10000L);
		}
	}
	ereport(LOG,
			(errmsg("settle launcher started: a settlement worker for each database with settle (at most %d)",
					settle_max_databases)));

	cxt = AllocSetContextCreate(TopMemoryContext, "settle launcher", ALLOCSET_DEFAULT_SIZES);
	for (;;)
	{
		long		wait_ms;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			list_free_deep(warned_missing);
			warned_missing = NIL;
			warned_full = false;
		}
		MemoryContextSwitchTo(cxt);
		wait_ms = reconcile();
		MemoryContextSwitchTo(TopMemoryContext);
		MemoryContextReset(cxt);
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, wait_ms, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}
