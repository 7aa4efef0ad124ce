/*
 * db_events.c -- what the settle launcher must hear from the backends.
 *
 * A backend tells the launcher (its latch) when CREATE EXTENSION settle or
 * CREATE DATABASE commits, so that a worker starts within moments instead
 * of at the launcher's next look.  And a database's worker is in the way of
 * DROP DATABASE, ALTER DATABASE ... RENAME TO / SET TABLESPACE and CREATE
 * DATABASE ... TEMPLATE of it (each refuses while another session is
 * connected): before such a command the backend pauses the database's slot
 * (the launcher starts nothing there for PAUSE_MS), stops its worker and
 * waits for it to leave; afterwards it lifts the pause, except after DROP
 * DATABASE (the launcher frees the slot of a database that is gone, and a
 * failed drop is served again when the pause ends).
 */
#include "postgres.h"

#include <signal.h>

#include "access/xact.h"
#include "commands/dbcommands.h"
#include "commands/defrem.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "tcop/utility.h"
#include "utils/timestamp.h"

#include "launcher.h"
#include "worker_state.h"

/* the launcher starts nothing in a paused database for this long */
#define PAUSE_MS 10000
/* how long a database command waits for the worker to leave */
#define LEAVE_WAIT_MS 5000

static bool callback_registered = false;
static bool tell_at_commit = false;
static bool recheck_at_commit = false;

static void
db_events_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			if (recheck_at_commit)
			{
				int			slot = settle_worker_slot_of(MyDatabaseId);

				if (slot >= 0)
				{
					SpinLockAcquire(&settle_shared->slots[slot].mutex);
					settle_shared->slots[slot].recheck = true;
					SpinLockRelease(&settle_shared->slots[slot].mutex);
				}
			}
			if (tell_at_commit)
				settle_launcher_wake();
			tell_at_commit = recheck_at_commit = false;
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			tell_at_commit = recheck_at_commit = false;
			break;
		default:
			break;
	}
}

static void
tell_launcher_at_commit(bool recheck)
{
	if (!callback_registered)
	{
		RegisterXactCallback(db_events_xact_callback, NULL);
		callback_registered = true;
	}
	tell_at_commit = true;
	recheck_at_commit |= recheck;
}

/* Pause a database's slot and stop its worker; returns the slot, or -1. */
static int
pause_database(const char *name)
{
	Oid			dboid = get_database_oid(name, true);
	int			slot = settle_worker_slot_of(dboid);
	SettleDbSlot *s;
	int			pid;
	int			waited;

	if (slot < 0)
		return -1;
	s = &settle_shared->slots[slot];
	SpinLockAcquire(&s->mutex);
	s->paused_until = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), PAUSE_MS);
	s->run = SETTLE_RUN_PAUSED;
	s->run_since = GetCurrentTimestamp();
	pid = s->pid;
	SpinLockRelease(&s->mutex);
	if (pid == 0)
		return slot;
	(void) kill(pid, SIGTERM);
	for (waited = 0; waited < LEAVE_WAIT_MS; waited += 10)
	{
		SpinLockAcquire(&s->mutex);
		pid = s->pid;
		SpinLockRelease(&s->mutex);
		if (pid == 0)
			break;
		CHECK_FOR_INTERRUPTS();
		pg_usleep(10000L);
	}
	return slot;
}

static void
unpause(int slot)
{
	SpinLockAcquire(&settle_shared->slots[slot].mutex);
	settle_shared->slots[slot].paused_until = 0;
	SpinLockRelease(&settle_shared->slots[slot].mutex);
	settle_launcher_wake();
}

/* The database a command needs without other sessions (NULL: none); *drop for DROP DATABASE. */
static const char *
database_in_the_way(Node *parsetree, bool *drop)
{
	ListCell   *lc;

	*drop = false;
	switch (nodeTag(parsetree))
	{
		case T_DropdbStmt:
			*drop = true;
			return ((DropdbStmt *) parsetree)->dbname;
		case T_RenameStmt:
			if (((RenameStmt *) parsetree)->renameType == OBJECT_DATABASE)
				return ((RenameStmt *) parsetree)->subname;
			return NULL;
		case T_AlterDatabaseStmt:
			foreach(lc, ((AlterDatabaseStmt *) parsetree)->options)
				if (strcmp(((DefElem *) lfirst(lc))->defname, "tablespace") == 0)
					return ((AlterDatabaseStmt *) parsetree)->dbname;
			return NULL;
		case T_CreatedbStmt:
			foreach(lc, ((CreatedbStmt *) parsetree)->options)
				if (strcmp(((DefElem *) lfirst(lc))->defname, "template") == 0)
					return defGetString((DefElem *) lfirst(lc));
			return NULL;
		default:
			return NULL;
	}
}

int
settle_db_events_before_utility(Node *parsetree, bool *drop)
{
	const char *in_the_way = NULL;
	int			paused = -1;

	*drop = false;
	if (settle_shared != NULL)
	{
		if (IsA(parsetree, CreateExtensionStmt) &&
			strcmp(((CreateExtensionStmt *) parsetree)->extname, "settle") == 0)
			tell_launcher_at_commit(true);
		else if (IsA(parsetree, CreatedbStmt))
			tell_launcher_at_commit(false);
		in_the_way = database_in_the_way(parsetree, drop);
		if (in_the_way != NULL)
			paused = pause_database(in_the_way);
	}
	return paused;
}

void
settle_db_events_after_utility(int paused, bool was_drop)
{
	/* a dropped database's slot is freed by the launcher; anything else is served again */
	if (paused >= 0 && !was_drop)
		unpause(paused);
	else if (paused >= 0)
		settle_launcher_wake();
}
