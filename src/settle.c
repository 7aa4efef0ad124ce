/*
 * settle.c -- module entry: the GUCs no other module owns, every concern's
 * settings, the hooks (hooks.c) and background-worker registration.
 *
 * settle is meant to be in shared_preload_libraries (the launcher, which
 * starts a settlement worker per database with the extension, is
 * registered there); loaded any other way, the SQL functions still work
 * and cycles run by hand (settle_run_cycle) or from pg_cron.
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/guc.h"

#include "cycle.h"
#include "drop_guard.h"
#include "fence.h"
#include "funding_advice.h"
#include "hooks.h"
#include "intake.h"
#include "posting.h"
#include "launcher.h"
#include "sync_standby.h"
#include "worker.h"
#include "worker_state.h"
#include "backlog.h"
#include "pace.h"
#include "quiet.h"
#include "deep.h"

PG_MODULE_MAGIC;

PG_FUNCTION_INFO_V1(settle_preloaded_sql);

/* Whether the library came in through shared_preload_libraries (the launcher exists). */
bool		settle_preloaded = false;

/* the rail's settings: read by its SQL functions (current_setting), never by C */
static int	settle_rail_max_attempts = 5;
static int	settle_rail_backoff_ms = 1000;
static int	settle_rail_timeout_ms = 60000;

void		_PG_init(void);



/* Define GUCs; when preloaded, register the worker. */
void
_PG_init(void)
{
	DefineCustomIntVariable("settle.rail_max_attempts",
							"Attempts of a wire before its failure is final.",
							NULL, &settle_rail_max_attempts,
							5, 1, 1000,
							PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("settle.rail_backoff",
							"Wait before the first retry of a failed wire; doubled at each further attempt.",
							NULL, &settle_rail_backoff_ms,
							1000, 0, 86400000,
							PGC_SUSET, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("settle.rail_timeout",
							"An instructed wire without an answer for this long counts as a failed attempt.",
							NULL, &settle_rail_timeout_ms,
							60000, 1, 86400000,
							PGC_SUSET, GUC_UNIT_MS, NULL, NULL, NULL);

	settle_cycle_define_settings();
	settle_funding_define_settings();
	settle_submit_define_settings();
	settle_posting_define_settings();
	settle_drop_guard_define_settings();
	settle_fence_define_settings();
	settle_sync_standby_define_settings();
	settle_launcher_define_settings();
	settle_worker_state_define_settings();
	settle_backlog_define_settings();
	settle_pace_define_settings();
	settle_quiet_define_settings();
	settle_deep_define_settings();
	MarkGUCPrefixReserved("settle");

	/* every hook and callback, in one place and order (hooks.c) */
	settle_hooks_install(process_shared_preload_libraries_in_progress);

	if (process_shared_preload_libraries_in_progress)
	{
		settle_preloaded = true;
		settle_launcher_register();
	}
}

/* settle._preloaded(): whether this server has the settlement worker. */
Datum
settle_preloaded_sql(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(settle_preloaded);
}
