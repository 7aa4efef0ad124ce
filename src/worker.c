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
#include "catalog/pg_type.h"
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
#include "sync_standby.h"
#include "version.h"
#include "worker.h"
#include "worker_state.h"
#include "backlog.h"
#include "pace.h"
#include "quiet.h"
#include "spi_util.h"

char	   *settle_database = NULL;
bool		settle_worker_enabled = true;

/* the worker said once that the extension is missing (said again after it was there) */
static bool said_not_installed = false;
/* the same for a fenced server */
static bool said_fenced = false;
/* the same for an orphan: no synchronous standby streaming */
static bool said_orphan = false;
/* the same for a library and SQL of different releases */
static bool said_version_mismatch = false;

PGDLLEXPORT void settle_worker_main(Datum main_arg);

static void do_cycle(void);
static void do_seal(void);
static bool run_safely(MemoryContext worker_cxt, const char *what, bool is_cycle, void (*fn) (void));

/* a stalled backlog to report in the next seal's transaction */
static bool stall_to_report = false;
static SettleStall stall;

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
	if (stall_to_report)
	{
		/*
		 * A stalled backlog: one event on its oldest payment, sealed with
		 * the rest (entity payment, type stalled; docs/CYCLE.md).
		 */
		SpiArgs		a = {0};

		spi_arg(&a, INT8OID, Int64GetDatum(stall.payment_id));
		spi_arg(&a, INT8OID, Int64GetDatum(stall.waiting));
		spi_arg(&a, TIMESTAMPTZOID, TimestampTzGetDatum(stall.waiting_since));
		spi_arg(&a, INT4OID, Int32GetDatum(stall.no_progress));
		spi_arg(&a, INT4OID, Int32GetDatum(settle_stall_after_ms));
		if (SPI_execute_with_args("INSERT INTO settle.event (entity, entity_id, event_type, details)"
								  " VALUES ('payment', $1::text, 'stalled',"
								  "  pg_catalog.jsonb_build_object('waiting', $2, 'left_by_every_cycle_since', $3,"
								  "   'cycles_without_progress', $4, 'stall_after_ms', $5,"
								  "   'reason', CASE WHEN $4 > 0"
								  "     THEN 'no cycle settles anything: a gridlock or participants without liquidity'"
								  "     ELSE 'other payments settle, this one waits: its payer lacks liquidity or an account is frozen' END))",
								  a.n, a.types, a.values, NULL, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "reporting the stalled backlog failed");
		stall_to_report = false;
	}
	if (SPI_execute("SELECT count(*) FROM settle._seal()", false, 0) != SPI_OK_SELECT)
		elog(ERROR, "settle._seal() failed");
	SPI_finish();
}

/*
 * Run fn in its own transaction; an error is logged and rolled back, not
 * fatal.  Either way the outcome is counted (settle_worker_status()).
 */
static bool
run_safely(MemoryContext worker_cxt, const char *what, bool is_cycle, void (*fn) (void))
{
	volatile bool committed = false;

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
		committed = true;
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
	return committed;
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

	settle_pace_start(GetCurrentTimestamp());
	for (;;)
	{
		long		wait_ms;
		bool		committed;

		/*
		 * Woken by a commit that queued payments (intake sets this latch
		 * after commit) or by the heartbeat, settle.cycle_interval; the
		 * next cycle is due when pace.c says gathering more is not worth
		 * waiting for (or a backoff after cycles that changed nothing ends).
		 */
		wait_ms = settle_pace_wait_ms(GetCurrentTimestamp());
		if (wait_ms > 0)
		{
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 wait_ms, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
		}
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			settle_pace_reloaded();
		}
		if (settle_pace_wait_ms(GetCurrentTimestamp()) > 0)
			continue;			/* woken before the cycle is due: wait the rest */
		if (!settle_worker_enabled)
		{
			settle_pace_skipped(GetCurrentTimestamp());
			continue;
		}
		if (RecoveryInProgress())
		{
			if (!was_standby)
				ereport(LOG, (errmsg("settle worker waiting: server is in recovery")));
			was_standby = true;
			settle_pace_skipped(GetCurrentTimestamp());
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
				settle_pace_skipped(GetCurrentTimestamp());
				continue;
			}
			if (said_fenced)
				ereport(LOG, (errmsg("settle worker: released, cycling")));
			said_fenced = false;
		}
		{
			SyncStandbyState ss;

			/*
			 * An orphan: a cycle's commit would wait in SyncRep holding the
			 * cycle lock.  No round (no transaction, no lock) until a
			 * synchronous standby streams again; checked every round.
			 */
			if (settle_sync_standby_missing(false, &ss))
			{
				if (!said_orphan)
					ereport(LOG,
							(errcode(ERRCODE_SETTLE_NO_SYNC_STANDBY),
							 errmsg("settle worker: no synchronous standby is streaming, no cycles until one is"),
							 errdetail("synchronous_standby_names needs %d, %d streaming.",
									   ss.needed, ss.streaming)));
				said_orphan = true;
				settle_pace_skipped(GetCurrentTimestamp());
				continue;
			}
			if (said_orphan)
				ereport(LOG, (errmsg("settle worker: a synchronous standby streams again, cycling")));
			said_orphan = false;
		}

		settle_pace_cycle_starting(GetCurrentTimestamp());
		settle_quiet_cycle_starting(GetCurrentTimestamp());
		committed = run_safely(worker_cxt, "settle cycle", true, do_cycle);
		settle_quiet_cycle_finished(committed);
		if (settle_pace_cycle_finished(GetCurrentTimestamp(), committed, &stall))
			stall_to_report = true;
		/* the audit chains, in a transaction of their own: writers never wait for them */
		run_safely(worker_cxt, "settle seal", false, do_seal);
		MemoryContextReset(worker_cxt);
	}
}
