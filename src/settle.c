/*
 * settle.c -- module entry: GUCs and background-worker registration.
 *
 * settle is meant to be in shared_preload_libraries (the settlement worker
 * is registered there); loaded any other way, the SQL functions still work
 * and cycles run by hand or from pg_cron.
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/guc.h"

#include "intake.h"

PG_MODULE_MAGIC;

int			settle_max_bulk_rows = 100000;
bool		settle_worker_enabled = true;

void		_PG_init(void);

/* Define GUCs; when preloaded, register the worker. */
void
_PG_init(void)
{
	DefineCustomIntVariable("settle.max_bulk_rows",
							"Largest number of payments one settle_submit_bulk call accepts.",
							NULL,
							&settle_max_bulk_rows,
							100000, 1, 10000000,
							PGC_USERSET, 0,
							NULL, NULL, NULL);

	DefineCustomBoolVariable("settle.worker_enabled",
							 "Runs settlement cycles in a background worker.",
							 "Off: cycles run only through settle_run_cycle().",
							 &settle_worker_enabled,
							 true,
							 PGC_SIGHUP, 0,
							 NULL, NULL, NULL);

	MarkGUCPrefixReserved("settle");
}
