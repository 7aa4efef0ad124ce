/*
 * cycle_settings.c -- the settings of the settlement cycle (settle.solver_time_limit,
 * settle.reference_currency, ...), defined from _PG_init; read by the cycle's stages.
 */
#include "postgres.h"

#include "access/xact.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "utils/guc.h"

#include "backlog.h"
#include "cycle.h"
#include "links.h"
#include "major_units.h"
#include "spi_util.h"

/* The cycle's settings (settle_cycle_define_settings). */
double		settle_solver_time_limit_ms = 500;
double		settle_mip_gap = 1e-4;
int			settle_mip_max_payments = 200;
int			settle_max_cycle_payments = 100000;
char	   *settle_reference_currency = NULL;
double		settle_delay_cost_bps = 10;
bool		settle_suspension_holds_payee = true;
int			settle_priority_aging_ms = 60000;

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

/* Define the cycle's settings (from _PG_init). */
void
settle_cycle_define_settings(void)
{
	settle_links_define_settings();
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
	DefineCustomIntVariable("settle.priority_aging",
							"Time after which a queued payment's priority weight has doubled (it grows linearly with its age).",
							"0: age does not count. Keeps old payments from starving behind newer ones when liquidity is short.",
							&settle_priority_aging_ms,
							60000, 0, 86400000,
							PGC_SUSET, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomBoolVariable("settle.cycle_keep_plans",
							 "Keeps the plans of a cycle's statements from one cycle to the next.",
							 "Off: every statement is planned again in every cycle (as before 1.1), for comparison.",
							 &settle_keep_plans, true,
							 PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomBoolVariable("settle.suspension_holds_payee",
							 "A suspended participant's queued payments are held as payee too, not only as payer.",
							 "Off: payments to a suspended participant still settle.",
							 &settle_suspension_holds_payee, true,
							 PGC_SUSET, 0, NULL, NULL, NULL);
}
