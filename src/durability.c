/*
 * durability.c -- wait for the synchronous standby before reporting.
 *
 * Serves intake (replays and conflicts with an existing payment), the
 * status lookup and the rail outbox (settle_rail_fetch).  A reading
 * transaction's commit does not wait for synchronous replication, so a
 * payment whose own commit wait was cancelled (pg_cancel_backend, a pool's
 * timeout) would be reported on the primary although it is on no other
 * node, and vanish at the next fail-over.  Here the reporting backend waits
 * for the WAL position it could have read up to, exactly as a commit waits,
 * and refuses to answer (SE140) if that wait is cancelled.  On an orphan
 * (no synchronous standby streaming: src/sync_standby.c) it does not wait
 * for a time-out but refuses at once (SE170).
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "access/xlog_internal.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "replication/syncrep.h"
#include "replication/walsender.h"
#include "replication/walsender_private.h"
#include "storage/lwlock.h"
#include "utils/builtins.h"
#include "utils/pg_lsn.h"

#include "durability.h"
#include "settle_errors.h"
#include "sync_standby.h"

PG_FUNCTION_INFO_V1(settle_wait_durable_sql);
PG_FUNCTION_INFO_V1(settle_durable_lsn);

/* The position a commit of this session waits for (syncrep.c keeps its own static). */
static int
wait_mode(void)
{
	switch (synchronous_commit)
	{
		case SYNCHRONOUS_COMMIT_REMOTE_WRITE:
			return SYNC_REP_WAIT_WRITE;
		case SYNCHRONOUS_COMMIT_REMOTE_APPLY:
			return SYNC_REP_WAIT_APPLY;
		default:
			return SYNC_REP_WAIT_FLUSH;
	}
}

/* What the synchronous standbys have confirmed, in the session's mode. */
static XLogRecPtr
confirmed_lsn(void)
{
	XLogRecPtr	lsn;

	LWLockAcquire(SyncRepLock, LW_SHARED);
	lsn = WalSndCtl->lsn[wait_mode()];
	LWLockRelease(SyncRepLock);
	return lsn;
}

/* Whether lsn needs no wait: no synchronous standby, or confirmed already. */
static bool
confirmed(XLogRecPtr lsn)
{
	bool		done;

	LWLockAcquire(SyncRepLock, LW_SHARED);
	done = !settle_sync_standbys_defined() || lsn <= WalSndCtl->lsn[wait_mode()];
	LWLockRelease(SyncRepLock);
	return done;
}

/*
 * The insert position as the end of the records before it: right after a
 * page header nothing has been written yet on that page, and that position
 * can neither be flushed nor confirmed until a later record fills the page.
 */
static XLogRecPtr
end_of_records(XLogRecPtr ptr)
{
	uint32		in_page = ptr % XLOG_BLCKSZ;
	uint64		in_segment = XLogSegmentOffset(ptr, wal_segment_size);

	if (in_segment == SizeOfXLogLongPHD ||
		(in_page == SizeOfXLogShortPHD && in_segment >= XLOG_BLCKSZ))
		return ptr - in_page;
	return ptr;
}

void
settle_wait_durable(const char *what)
{
	XLogRecPtr	lsn;

	/* a standby's reads are of WAL it already has; local/off: the session's choice */
	if (RecoveryInProgress() || !SyncRepRequested())
		return;

	/* any commit this backend can see ended before the current insert position */
	lsn = end_of_records(GetXLogInsertRecPtr());
	if (confirmed(lsn))
		return;

	/* an orphan: the wait could only end in a time-out, so refuse at once */
	{
		SyncStandbyState s;

		if (settle_sync_standby_missing(true, &s))
			ereport(ERROR,
					(errcode(ERRCODE_SETTLE_NO_SYNC_STANDBY),
					 errmsg("%s is not yet durable and no synchronous standby is streaming", what),
					 errdetail("synchronous_standby_names needs %d synchronous standby(s), %d streaming; "
							   "what this answer would report is confirmed up to %X/%X, not %X/%X.",
							   s.needed, s.streaming,
							   LSN_FORMAT_ARGS(confirmed_lsn()), LSN_FORMAT_ARGS(lsn)),
					 errhint("Nothing was acknowledged; retry the same call on the current primary, "
							 "or here once its standby is back.")));
	}
	XLogFlush(lsn);

	/* as at commit: interrupts held, a cancel ends the wait with a WARNING */
	HOLD_INTERRUPTS();
	SyncRepWaitForLSN(lsn, true);
	RESUME_INTERRUPTS();
	CHECK_FOR_INTERRUPTS();

	if (!confirmed(lsn))
		ereport(ERROR,
				(errcode(ERRCODE_SETTLE_NOT_DURABLE),
				 errmsg("%s is not yet durable on the synchronous standby", what),
				 errdetail("The wait for synchronous replication up to %X/%X was cancelled.",
						   LSN_FORMAT_ARGS(lsn)),
				 errhint("Nothing was acknowledged; retry the same call, on the current primary.")));
}

/* settle._wait_durable(what): the same, for SQL functions. */
Datum
settle_wait_durable_sql(PG_FUNCTION_ARGS)
{
	settle_wait_durable(PG_ARGISNULL(0) ? "the answer" : text_to_cstring(PG_GETARG_TEXT_PP(0)));
	PG_RETURN_VOID();
}

/*
 * settle_durable_lsn(): the WAL position up to which commits are durable
 * where they must be: confirmed by the synchronous standby (in the mode
 * synchronous_commit asks for), or flushed locally when the server has no
 * synchronous standby.  A CDC consumer acts on a decoded transaction only
 * once its commit LSN is at or below this (docs/AUDIT.md).  NULL on a standby.
 */
Datum
settle_durable_lsn(PG_FUNCTION_ARGS)
{
	XLogRecPtr	flushed;

	if (RecoveryInProgress())
		PG_RETURN_NULL();
	flushed = GetFlushRecPtr(NULL);
	if (confirmed(flushed))
		PG_RETURN_LSN(flushed);
	PG_RETURN_LSN(confirmed_lsn());
}