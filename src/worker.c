/*
 * worker.c -- the settlement worker: a cycle every settle.cycle_interval.
 *
 * Registered from shared_preload_libraries, it connects to settle.database
 * and loops: wait on its latch for the interval, then run one cycle in its
 * own transaction.  While the server is in recovery (a standby) it only
 * waits; after promotion it starts cycling by itself, without a restart.
 * After each cycle it seals the new ledger entries and events into the
 * audit hash chains (settle_seal(), in its own transaction).  A failed cycle
 * is logged and rolled back, and the next one runs after the interval; SIGTERM stops the worker, SIGHUP reloads its settings.  It does
 * nothing in a database where the extension is not installed.
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "cycle.h"
#include "fence.h"
#include "guard.h"
#include "settle_errors.h"
#include "version.h"
#include "worker.h"
#include "worker_state.h"

char	   *settle_database = NULL;
bool		settle_worker_enabled = true;
int			settle_batch_window_ms = 10;

/* the worker said once that the extension is missing (said again after it was there) */
static bool said_not_installed = false;
/* the same for a fenced server */
static bool said_fenced = false;
/* the same for a library and SQL of different releases */
static bool said_version_mismatch = false;

PGDLLEXPORT void settle_worker_main(Datum main_arg);

static void do_cycle(void);
static void do_seal(void);
static void run_safely(MemoryContext worker_cxt, const char *what, bool is_cycle, void (*fn) (void));

/* The worker's own settings (from _PG_init). */
void
settle_worker_define_settings(void)
{
	DefineCustomBoolVariable("settle.worker_enabled",
							 "Runs settlement cycles in a background worker.",
							 "Off: cycles run only through settle_run_cycle().",
							 &settle_worker_enabled, true,
							 PGC_SIGHUP, 0, NULL, NULL, NULL);
	/* a postmaster setting can only be defined while preloading; loaded later it is read-only */
	DefineCustomStringVariable("settle.database",
							   "Database the settlement worker connects to.",
							   NULL, &settle_database, "postgres",
							   process_shared_preload_libraries_in_progress ? PGC_POSTMASTER : PGC_INTERNAL,
							   0, NULL, NULL, NULL);
	DefineCustomIntVariable("settle.batch_window",
							"After a commit wakes the worker, how long it waits for more payments before cycling.",
							"0: cycle at once. settle.cycle_interval stays the idle heartbeat.",
							&settle_batch_window_ms,
							10, 0, 60000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
}

void
settle_worker_register(void)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_ConsistentState;
	worker.bgw_restart_time = 1;
	strlcpy(worker.bgw_library_name, "settle", BGW_MAXLEN);
	strlcpy(worker.bgw_function_name, "settle_worker_main", BGW_MAXLEN);
	strlcpy(worker.bgw_name, "settle worker", BGW_MAXLEN);
	strlcpy(worker.bgw_type, "settle worker", BGW_MAXLEN);
	RegisterBackgroundWorker(&worker);
}

/* One cycle, in the current transaction. */
static void
do_cycle(void)
{
	(void) settle_run_cycle("worker");
}

/*
 * Seal what the last cycles wrote into the audit chains (src/sql/50_audit.sql).
 * settle._seal() lives in settle's own schema: a name in the extension's
 * schema (public by default) could be made ambiguous by another role's
 * overload, and the seal would fail round after round.
 */
static void
do_seal(void)
{
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute("SELECT count(*) FROM settle._seal()", false, 0) != SPI_OK_SELECT)
		elog(ERROR, "settle._seal() failed");
	SPI_finish();
}

/*
 * Run fn in its own transaction; an error is logged and rolled back, not
 * fatal.  Either way the outcome is counted (settle_worker_status()).
 */
static void
run_safely(MemoryContext worker_cxt, const char *what, bool is_cycle, void (*fn) (void))
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, what);

	PG_TRY();
	{
		bool		installed = OidIsValid(get_extension_oid("settle", true));
		char	   *sql_version = NULL;

		if (installed && !settle_version_matches(&sql_version))
		{
			/* a new library with the old SQL: wait for ALTER EXTENSION settle UPDATE */
			if (!said_version_mismatch)
				ereport(WARNING,
						(errcode(ERRCODE_SETTLE_VERSION_MISMATCH),
						 errmsg("settle worker: the library is release %s but database \"%s\" has settle %s; waiting",
								SETTLE_VERSION, settle_database, sql_version),
						 errhint("Run ALTER EXTENSION settle UPDATE in that database.")));
			said_version_mismatch = true;
		}
		else if (installed)
		{
			said_version_mismatch = false;
			fn();
		}
		else if (!said_not_installed)
			ereport(WARNING,
					(errmsg("settle worker: extension settle is not installed in database \"%s\"; waiting",
							settle_database),
					 errhint("CREATE EXTENSION settle in that database, or set settle.database to the database that has it.")));
		said_not_installed = !installed;
		PopActiveSnapshot();
		CommitTransactionCommand();
		if (installed)
			settle_worker_state_note(is_cycle, NULL);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(worker_cxt);
		edata = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		ereport(LOG,
				(errcode(edata->sqlerrcode),
				 errmsg("%s failed: %s", what, edata->message),
				 edata->detail ? errdetail_internal("%s", edata->detail) : 0,
				 errhint("Nothing of it was written; the next round retries."),
				 edata->context ? errcontext("%s", edata->context) : 0));
		settle_worker_state_note(is_cycle, edata);
		FreeErrorData(edata);
	}
	PG_END_TRY();
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, NULL);
	MemoryContextSwitchTo(worker_cxt);
}

void
settle_worker_main(Datum main_arg)
{
	MemoryContext worker_cxt;
	bool		was_standby = false;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	BackgroundWorkerInitializeConnection(settle_database, NULL, 0);
	/*
	 * The worker is a superuser: no name it resolves may come from public or
	 * from a schema named after its role (ALTER ROLE/DATABASE SET included).
	 */
	SetConfigOption("search_path", SETTLE_SAFE_SEARCH_PATH, PGC_SUSET, PGC_S_OVERRIDE);
	pgstat_report_appname("settle worker");
	worker_cxt = AllocSetContextCreate(TopMemoryContext, "settle worker", ALLOCSET_DEFAULT_SIZES);
	MemoryContextSwitchTo(worker_cxt);
	settle_worker_state_started();
	ereport(LOG,
			(errmsg("settle worker started in database \"%s\", cycle every %d ms",
					settle_database, settle_cycle_interval_ms)));

	for (;;)
	{
		int			rc;

		/*
		 * Woken by a commit that queued payments (intake sets this latch
		 * after commit), or by the heartbeat, settle.cycle_interval.
		 */
		rc = WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
					   settle_cycle_interval_ms, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if ((rc & WL_LATCH_SET) && settle_batch_window_ms > 0)
		{
			/*
			 * A batching window: the commits of the next few milliseconds
			 * join this cycle (their wake-ups are cleared: they are in it).
			 */
			(void) WaitLatch(NULL, WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 settle_batch_window_ms, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			CHECK_FOR_INTERRUPTS();
		}

		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		if (!settle_worker_enabled)
			continue;
		if (RecoveryInProgress())
		{
			if (!was_standby)
				ereport(LOG, (errmsg("settle worker waiting: server is in recovery")));
			was_standby = true;
			continue;
		}
		if (was_standby)
			ereport(LOG, (errmsg("settle worker: server promoted, cycling")));
		was_standby = false;
		{
			const char *why;

			/* a restored copy: nothing until an operator releases it */
			if (settle_fenced(&why))
			{
				if (!said_fenced)
					ereport(LOG,
							(errmsg("settle worker: this server is fenced, no cycles until an operator releases it"),
							 errdetail("%s.", why),
							 errhint("ALTER SYSTEM SET settle.fence = off; SELECT pg_reload_conf();")));
				said_fenced = true;
				continue;
			}
			if (said_fenced)
				ereport(LOG, (errmsg("settle worker: released, cycling")));
			said_fenced = false;
		}

		run_safely(worker_cxt, "settle cycle", true, do_cycle);
		/* the audit chains, in a transaction of their own: writers never wait for them */
		run_safely(worker_cxt, "settle seal", false, do_seal);
		MemoryContextReset(worker_cxt);
	}
}
