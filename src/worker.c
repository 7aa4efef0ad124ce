/*
 * worker.c -- the settlement worker of one database: a cycle every
 * settle.cycle_interval.
 *
 * Started by the launcher (src/launcher.c) for a database, given its slot
 * in shared memory (worker_state.c), it connects to that database and
 * leaves at once if the extension is not installed there (the launcher
 * starts it again on CREATE EXTENSION), or when it is dropped.  It loops: wait on its latch for the interval, then run one cycle in its
 * own transaction.  While the server is in recovery (a standby) it only
 * waits; after promotion it starts cycling by itself, without a restart.
 * After each cycle it seals the new ledger entries and events into the
 * audit hash chains (settle_seal(), in its own transaction).  A failed cycle
 * is logged and rolled back, and the next one runs after the interval; SIGTERM stops the worker, SIGHUP reloads its settings.
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
#include "commands/dbcommands.h"
#include "storage/spin.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "cycle.h"
#include "fence.h"
#include "guard.h"
#include "settle_errors.h"
#include "sync_standby.h"
#include "version.h"
#include "worker.h"
#include "launcher.h"
#include "origin.h"
#include "worker_state.h"
#include "backlog.h"
#include "pace.h"
#include "quiet.h"
#include "deep.h"
#include "spi_util.h"

/* this worker's database */
static char *my_database = NULL;
/* the extension is not (or no longer) installed: the worker leaves */
static bool not_installed = false;
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
/* what this round's cycle did, for pacing: zero when none ran (a round must not reuse the last) */
static SettleCycleOutcome outcome;

/* One cycle, in the current transaction. */
static void
do_cycle(void)
{
	(void) settle_run_cycle("worker", &outcome);
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

		settle_spi_arg(&a, INT8OID, Int64GetDatum(stall.payment_id));
		settle_spi_arg(&a, INT8OID, Int64GetDatum(stall.waiting));
		settle_spi_arg(&a, TIMESTAMPTZOID, TimestampTzGetDatum(stall.waiting_since));
		settle_spi_arg(&a, INT4OID, Int32GetDatum(stall.no_progress));
		settle_spi_arg(&a, INT4OID, Int32GetDatum(settle_stall_after_ms));
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
	if (SPI_execute("SELECT pg_catalog.sum(s.sealed) OPERATOR(pg_catalog.=) 0 FROM settle._seal() s", false, 0) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "settle._seal() failed");
	{
		bool		isnull;

		/* nothing new: (since 1.2) no seal run was written; counted instead */
		if (DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)) && !isnull)
			settle_worker_state_note_seal_unchanged();
	}
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
								SETTLE_VERSION, my_database, sql_version),
						 errhint("Run ALTER EXTENSION settle UPDATE in that database.")));
			said_version_mismatch = true;
		}
		else if (installed)
		{
			said_version_mismatch = false;
			fn();
		}
		not_installed = !installed;
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

/* Whether the extension is installed here, in a transaction of its own. */
static bool
extension_installed(void)
{
	bool		installed;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	installed = OidIsValid(get_extension_oid("settle", true));
	if (my_database == NULL)
		my_database = MemoryContextStrdup(TopMemoryContext, get_database_name(MyDatabaseId));
	CommitTransactionCommand();
	return installed;
}

/*
 * The extension is not installed here: leave, saying so where an operator
 * asked for this database by name (settle.database); the launcher starts a
 * worker again when CREATE EXTENSION settle commits here.
 */
static void
leave_not_installed(void)
{
	if (settle_database_listed(my_database))
		ereport(WARNING,
				(errmsg("settle worker: extension settle is not installed in database \"%s\"; waiting for CREATE EXTENSION",
						my_database),
				 errhint("CREATE EXTENSION settle in that database, or take it out of settle.database.")));
	else
		ereport(DEBUG1,
				(errmsg("settle worker: extension settle is not installed in database \"%s\"", my_database)));
	settle_worker_state_leaving(SETTLE_RUN_NOT_INSTALLED);
	proc_exit(0);
}

/*
 * Ask settle.origin whether this database is a copy, in a transaction of
 * its own (read only: it writes nothing); a failure is logged, and the
 * last answer stands.
 */
static void
check_origin(MemoryContext worker_cxt)
{
	const char *why;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	PG_TRY();
	{
		(void) settle_origin_copy(&why);
		PopActiveSnapshot();
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(worker_cxt);
		edata = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		ereport(LOG, (errmsg("settle worker: reading settle.origin failed: %s", edata->message)));
		FreeErrorData(edata);
	}
	PG_END_TRY();
	MemoryContextSwitchTo(worker_cxt);
}

void
settle_worker_main(Datum main_arg)
{
	MemoryContext worker_cxt;
	bool		was_standby = false;
	int			slot = DatumGetInt32(main_arg);
	Oid			dboid;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	if (settle_shared == NULL || slot < 0 || slot >= settle_shared->n_slots)
		proc_exit(0);
	SpinLockAcquire(&settle_shared->slots[slot].mutex);
	dboid = settle_shared->slots[slot].dboid;
	SpinLockRelease(&settle_shared->slots[slot].mutex);
	if (!OidIsValid(dboid))
		proc_exit(0);			/* the database went away before the worker started */
	settle_worker_state_started(slot);
	/* a database dropped meanwhile: FATAL, and the launcher never restarts it */
	BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid, 0);
	/*
	 * The worker is a superuser: no name it resolves may come from public or
	 * from a schema named after its role (ALTER ROLE/DATABASE SET included).
	 */
	SetConfigOption("search_path", SETTLE_SAFE_SEARCH_PATH, PGC_SUSET, PGC_S_OVERRIDE);
	pgstat_report_appname("settle worker");
	if (!extension_installed())
		leave_not_installed();
	worker_cxt = AllocSetContextCreate(TopMemoryContext, "settle worker", ALLOCSET_DEFAULT_SIZES);
	MemoryContextSwitchTo(worker_cxt);
	ereport(LOG,
			(errmsg("settle worker started in database \"%s\", cycle every %d ms",
					my_database, settle_cycle_interval_ms)));

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
			if (settle_origin_stale())
				check_origin(worker_cxt);
			if (settle_fenced(&why))
			{
				if (!said_fenced)
					ereport(LOG,
							(errmsg("settle worker: database \"%s\" is fenced, no cycles until an operator releases it", my_database),
							 errdetail("%s.", why),
							 errhint("A copy: SELECT * FROM settle_release_copy('...') there; settle.fence: ALTER SYSTEM SET settle.fence = off; SELECT pg_reload_conf();")));
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

		memset(&outcome, 0, sizeof(outcome));
		settle_pace_cycle_starting(GetCurrentTimestamp());
		settle_quiet_cycle_starting(GetCurrentTimestamp());
		settle_deep_cycle_starting(settle_pace_stuck(settle_deep_after_cycles - 1));
		committed = run_safely(worker_cxt, "settle cycle", true, do_cycle);
		if (not_installed)
		{
			/* DROP EXTENSION settle: nothing left to do here */
			ereport(LOG, (errmsg("settle worker: extension settle was dropped from database \"%s\"; leaving", my_database)));
			settle_worker_state_leaving(SETTLE_RUN_NOT_INSTALLED);
			proc_exit(0);
		}
		settle_quiet_cycle_finished(committed);
		settle_deep_cycle_finished(committed);
		if (settle_pace_cycle_finished(GetCurrentTimestamp(), committed, &outcome, &stall))
			stall_to_report = true;
		/* the audit chains, in a transaction of their own: writers never wait for them */
		run_safely(worker_cxt, "settle seal", false, do_seal);
		/* a stuck queue: the deep pass, between cycles, outside any transaction (deep.c) */
		settle_deep_between_cycles(settle_pace_stuck(settle_deep_after_cycles), GetCurrentTimestamp());
		MemoryContextReset(worker_cxt);
	}
}
