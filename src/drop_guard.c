/*
 * drop_guard.c -- DROP EXTENSION settle: refused while the ledger holds
 * entries, unless confirmed; when it goes, what it left outside goes too.
 *
 * Lifecycle of the extension (docs/OPERATIONS.md, "Install and drop").  The
 * ledger and event tables refuse DELETE and TRUNCATE, but DROP EXTENSION
 * would remove them with everything else, silently.  This guard, called by
 * the utility hook (hooks.c) before the statement runs, refuses it
 * (SE151) while settle.ledger_entry has a row, unless the operator set
 * settle.allow_drop = on (a superuser setting).  A drop that goes ahead also
 * removes what the extension created outside itself: the pg_cron jobs named
 * settle-* (settle_schedule_jobs()) and the publication settle_events
 * (settle_create_publication()), which are not extension members.
 */
#include "postgres.h"

#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "tcop/utility.h"
#include "utils/guc.h"

#include "drop_guard.h"
#include "guard.h"
#include "settle_errors.h"

static bool settle_allow_drop = false;

static bool drops_settle(Node *stmt);
static void before_drop(void);

void
settle_drop_guard_define_settings(void)
{
	DefineCustomBoolVariable("settle.allow_drop",
							 "Lets DROP EXTENSION settle remove a ledger that holds entries.",
							 "Off: DROP EXTENSION settle is refused while settle.ledger_entry has a row.",
							 &settle_allow_drop, false,
							 PGC_SUSET, 0, NULL, NULL, NULL);
}

/* Whether a statement is DROP EXTENSION naming settle. */
static bool
drops_settle(Node *stmt)
{
	DropStmt   *drop;
	ListCell   *lc;

	if (!IsA(stmt, DropStmt))
		return false;
	drop = (DropStmt *) stmt;
	if (drop->removeType != OBJECT_EXTENSION)
		return false;
	foreach(lc, drop->objects)
	{
		if (strcmp(strVal(lfirst(lc)), "settle") == 0)
			return true;
	}
	return false;
}

/* Refuse, or remove the cron jobs and the publication, before the drop. */
static void
before_drop(void)
{
	bool		has_entries;
	bool		isnull;
	int			guc_level;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	guc_level = settle_pin_search_path();
	if (SPI_execute("SELECT EXISTS (SELECT 1 FROM settle.ledger_entry)", true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read settle.ledger_entry");
	has_entries = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	if (has_entries && !settle_allow_drop)
		ereport(ERROR,
				(errcode(ERRCODE_SETTLE_DROP_REFUSED),
				 errmsg("extension settle holds a ledger and is not dropped"),
				 errdetail("DROP EXTENSION would remove settle.ledger_entry, settle.event and their seals with it."),
				 errhint("Back the database up first; then SET settle.allow_drop = on (a superuser) and drop it again.")));
	/* what settle created outside the extension */
	/*
	 * pg_cron's jobs only if the extension itself is here: a schema merely
	 * named cron could be anyone's (a database owner may create one), and
	 * this runs as the superuser who drops settle.
	 */
	if (OidIsValid(get_extension_oid("pg_cron", true)) &&
		SPI_execute("SELECT cron.unschedule(j.jobid) FROM cron.job j"
					" WHERE j.jobname LIKE 'settle-%' AND j.database = pg_catalog.current_database()",
					false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not remove the pg_cron jobs of settle");
	if (SPI_execute("SELECT 1 FROM pg_catalog.pg_publication WHERE pubname = 'settle_events'", true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read pg_publication");
	if (SPI_processed == 1 &&
		SPI_execute("DROP PUBLICATION settle_events", false, 0) != SPI_OK_UTILITY)
		elog(ERROR, "could not drop the publication settle_events");
	settle_unpin_search_path(guc_level);
	SPI_finish();
}

void
settle_drop_guard_before_utility(Node *parsetree)
{
	if (drops_settle(parsetree) && OidIsValid(get_extension_oid("settle", true)))
		before_drop();
}
