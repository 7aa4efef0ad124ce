/*
 * settle.c -- module entry: the GUCs no other module owns, and background-worker registration.
 *
 * settle is meant to be in shared_preload_libraries (the settlement worker
 * is registered there); loaded any other way, the SQL functions still work
 * and cycles run by hand (settle_run_cycle) or from pg_cron.
 */
#include "postgres.h"

#include "access/xact.h"
#include "commands/extension.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/guc.h"

#include "cycle.h"
#include "drop_guard.h"
#include "fence.h"
#include "intake.h"
#include "major_units.h"
#include "posting.h"
#include "refcache.h"
#include "role_map.h"
#include "worker.h"
#include "worker_state.h"

PG_MODULE_MAGIC;

PG_FUNCTION_INFO_V1(settle_preloaded_sql);

/* Whether the library came in through shared_preload_libraries (the worker exists). */
bool		settle_preloaded = false;

int			settle_max_bulk_rows = 100000;
bool		settle_worker_enabled = true;
int			settle_cycle_interval_ms = 1000;
double		settle_solver_time_limit_ms = 500;
double		settle_mip_gap = 1e-4;
int			settle_mip_max_payments = 200;
int			settle_max_cycle_payments = 100000;
char	   *settle_reference_currency = NULL;
double		settle_delay_cost_bps = 10;
bool		settle_suspension_holds_payee = true;
int			settle_rail_max_attempts = 5;
int			settle_rail_backoff_ms = 1000;
int			settle_rail_timeout_ms = 60000;

void		_PG_init(void);

static bool check_reference_currency(char **newval, void **extra, GucSource source);

/*
 * settle.reference_currency: three upper-case letters, and a currency
 * settle knows when it can look (in a transaction of a database that has
 * the extension; a configuration file is read outside any transaction).
 */
static bool
check_reference_currency(char **newval, void **extra, GucSource source)
{
	const char *v = *newval;

	if (v == NULL || strlen(v) != 3 ||
		v[0] < 'A' || v[0] > 'Z' || v[1] < 'A' || v[1] > 'Z' || v[2] < 'A' || v[2] > 'Z')
	{
		GUC_check_errdetail("A currency is an ISO 4217 code of three upper-case letters.");
		return false;
	}
	if (source != PGC_S_TEST && source != PGC_S_FILE && source != PGC_S_DEFAULT &&
		IsTransactionState() && !IsAbortedTransactionBlockState() &&
		OidIsValid(get_extension_oid("settle", true)) &&
		settle_currency_exponent(v, 3) < 0)
	{
		GUC_check_errdetail("settle.currencies lists the currencies settle knows.");
		return false;
	}
	return true;
}

/* Define GUCs; when preloaded, register the worker. */
void
_PG_init(void)
{
	DefineCustomIntVariable("settle.max_bulk_rows",
							"Largest number of payments one settle_submit_bulk call accepts.",
							NULL, &settle_max_bulk_rows,
							100000, 1, 10000000,
							PGC_SUSET, 0, NULL, NULL, NULL);
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
	DefineCustomIntVariable("settle.cycle_interval",
							"Time between two settlement cycles of the worker.",
							"Payments whose deadline falls within one interval must settle now.",
							&settle_cycle_interval_ms,
							1000, 10, 86400000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomRealVariable("settle.solver_time_limit",
							 "Time limit of the GLPK solve in one cycle.",
							 "When it is reached the best solution found so far, or the greedy heuristic, is used.",
							 &settle_solver_time_limit_ms,
							 500, 0.000001, 3600000,
							 PGC_SUSET, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomRealVariable("settle.mip_gap",
							 "Relative MIP gap at which GLPK stops branching.",
							 NULL, &settle_mip_gap,
							 1e-4, 0, 1,
							 PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("settle.mip_max_payments",
							"Largest independent component solved as a MIP (larger ones: LP, rounding and repair).",
							NULL, &settle_mip_max_payments,
							200, 0, 100000,
							PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("settle.max_cycle_payments",
							"Most queued payments one cycle considers (oldest first).",
							NULL, &settle_max_cycle_payments,
							100000, 1, 10000000,
							PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("settle.reference_currency",
							   "Currency in which cycle values and costs are measured.",
							   NULL, &settle_reference_currency, "USD",
							   PGC_SUSET, 0, check_reference_currency, NULL, NULL);
	DefineCustomRealVariable("settle.delay_cost_bps",
							 "Cost of making a deferrable payment wait one cycle, in basis points of its value.",
							 "A payment whose deadline is after the next cycle waits when its wire fee and spread cost more than this.",
							 &settle_delay_cost_bps,
							 10, 0.000001, 10000,
							 PGC_SUSET, 0, NULL, NULL, NULL);

	DefineCustomBoolVariable("settle.suspension_holds_payee",
							 "A suspended participant's queued payments are held as payee too, not only as payer.",
							 "Off: payments to a suspended participant still settle.",
							 &settle_suspension_holds_payee, true,
							 PGC_SUSET, 0, NULL, NULL, NULL);
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

	settle_posting_init();
	settle_drop_guard_init();
	settle_fence_init();
	settle_worker_define_settings();
	MarkGUCPrefixReserved("settle");
	settle_role_map_init();
	settle_refcache_init();

	if (process_shared_preload_libraries_in_progress)
	{
		settle_preloaded = true;
		settle_worker_state_init();
		settle_worker_register();
	}
}

/* settle._preloaded(): whether this server has the settlement worker. */
Datum
settle_preloaded_sql(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(settle_preloaded);
}
