/*
 * sync_standby.c -- an orphan refuses at once.
 *
 * A primary whose synchronous standbys are gone (the orphan of a partition,
 * or a primary whose only standby died) would still accept a payment, and
 * its commit would wait in SyncRep until the client's time-out, then stay
 * local; a cycle would wait there holding the cycle lock.  So intake of new
 * payments, the rail calls that write and every cycle ask here first and,
 * while this node cannot commit durably, refuse (SE170) before writing
 * anything; the worker skips its rounds.  When the standby is back, the next
 * call goes through: nothing to reset.
 *
 * "Cannot commit durably" is decided as a commit would be released
 * (syncrep.c): this session's commits wait (synchronous_commit above local,
 * synchronous_standby_names set) and fewer walsenders are candidates
 * (streaming, named in synchronous_standby_names) than FIRST n / ANY n
 * needs.  A walsender still catching up does not count: it cannot release
 * a commit.  The walsender array is read under its spinlocks, no catalog
 * and no lock: cheap enough for every intake call.
 *
 * A walsender whose standby is cut off by the network stays "streaming"
 * until wal_sender_timeout ends it; until then this node is not seen as an
 * orphan (docs/CONSENSUS.md, "An orphan refuses at once").
 *
 * settle.sync_standby_grace: how long a call waits for a missing standby to
 * come back before it is refused (a walsender restarting, a short catchup);
 * -1 turns refusals off (commits wait in SyncRep, as PostgreSQL does).
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "replication/syncrep.h"
#include "replication/walsender.h"
#include "replication/walsender_private.h"
#include "storage/latch.h"
#include "storage/spin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

#include "settle_errors.h"
#include "sync_standby.h"

PG_FUNCTION_INFO_V1(settle_sync_standby_state_sql);
PG_FUNCTION_INFO_V1(settle_check_sync_standby_sql);

/* ms a call waits for a missing synchronous standby; -1: never refuse */
static int	settle_sync_standby_grace = 500;

void
settle_sync_standby_define_settings(void)
{
	DefineCustomIntVariable("settle.sync_standby_grace",
							"How long a call waits for a missing synchronous standby before it is refused (SE170).",
							"-1: never refuse; commits wait for the standby in SyncRep.",
							&settle_sync_standby_grace,
							500, -1, 60000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
}

bool
settle_sync_standbys_defined(void)
{
#ifdef SYNC_STANDBY_DEFINED
	/* 15.13 and later: the checkpointer's view, or the setting before it has one */
	if (WalSndCtl->sync_standbys_status & SYNC_STANDBY_INIT)
		return (WalSndCtl->sync_standbys_status & SYNC_STANDBY_DEFINED) != 0;
	return SyncRepStandbyNames != NULL && SyncRepStandbyNames[0] != '\0';
#else
	return WalSndCtl->sync_standbys_defined;
#endif
}

void
settle_sync_standby_state(SyncStandbyState *s)
{
	SyncRepStandbyData *candidates;
	int			i;

	memset(s, 0, sizeof(*s));
	/* a standby takes no writes; local/off: this session does not wait */
	if (RecoveryInProgress() || !SyncRepRequested() || !settle_sync_standbys_defined())
		return;
	s->required = true;
	/* this backend's parse of synchronous_standby_names; NULL only in a reload's window */
	s->needed = SyncRepConfig != NULL ? SyncRepConfig->num_sync : 1;
	s->streaming = SyncRepGetCandidateStandbys(&candidates);
	pfree(candidates);
	s->missing = s->streaming < s->needed;

	for (i = 0; i < max_wal_senders; i++)
	{
		WalSnd	   *walsnd = &WalSndCtl->walsnds[i];
		bool		catching_up;

		SpinLockAcquire(&walsnd->mutex);
		catching_up = walsnd->pid != 0 && walsnd->state == WALSNDSTATE_CATCHUP &&
			walsnd->sync_standby_priority > 0;
		SpinLockRelease(&walsnd->mutex);
		if (catching_up)
			s->catching_up++;
	}
}

bool
settle_sync_standby_missing(bool grace_wait, SyncStandbyState *s)
{
	TimestampTz until;

	settle_sync_standby_state(s);
	if (!s->missing || settle_sync_standby_grace < 0)
		return false;
	if (!grace_wait)
		return true;
	until = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), settle_sync_standby_grace);
	for (;;)
	{
		long		left = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), until);

		if (left <= 0)
			return true;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 Min(left, 20), PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		settle_sync_standby_state(s);
		if (!s->missing)
			return false;
	}
}

void
settle_check_sync_standby(const char *what)
{
	SyncStandbyState s;

	if (settle_sync_standby_missing(true, &s))
		ereport(ERROR,
				(errcode(ERRCODE_SETTLE_NO_SYNC_STANDBY),
				 errmsg("%s refused: no synchronous standby is streaming", what),
				 errdetail("synchronous_standby_names needs %d synchronous standby(s), %d streaming%s; "
						   "a commit here could not be made durable.",
						   s.needed, s.streaming,
						   s.catching_up > 0 ? psprintf(" and %d catching up", s.catching_up) : ""),
				 errhint("Nothing was written. Retry with the same idempotency key on the current primary, "
						 "or here once its standby is back; settle_sync_standby_state() shows the state.")));
}

/* Why, in one sentence, for settle_sync_standby_state(). */
static char *
state_why(const SyncStandbyState *s)
{
	if (RecoveryInProgress())
		return pstrdup("a standby: it takes no writes");
	if (!SyncRepRequested())
		return pstrdup("synchronous_commit is local or off: commits do not wait for a standby");
	if (!s->required)
		return pstrdup("no synchronous standby required (synchronous_standby_names is empty)");
	if (!s->missing)
		return psprintf("%d of %d synchronous standby(s) streaming", s->streaming, s->needed);
	if (settle_sync_standby_grace < 0)
		return psprintf("%d of %d synchronous standby(s) streaming%s; refusals are off "
						"(settle.sync_standby_grace = -1): commits wait for a standby",
						s->streaming, s->needed,
						s->catching_up > 0 ? psprintf(", %d catching up", s->catching_up) : "");
	return psprintf("%d of %d synchronous standby(s) streaming%s: new payments, rail calls and cycles "
					"are refused (SE170) until one is back",
					s->streaming, s->needed,
					s->catching_up > 0 ? psprintf(", %d catching up", s->catching_up) : "");
}

/*
 * settle_sync_standby_state() -> (required, needed, streaming, catching_up,
 * refusing, why): what this session sees now, without the grace.
 */
Datum
settle_sync_standby_state_sql(PG_FUNCTION_ARGS)
{
	TupleDesc	desc;
	Datum		values[6];
	bool		nulls[6] = {false, false, false, false, false, false};
	SyncStandbyState s;

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "settle_sync_standby_state must return a record");
	desc = BlessTupleDesc(desc);
	settle_sync_standby_state(&s);
	values[0] = BoolGetDatum(s.required);
	values[1] = Int32GetDatum(s.needed);
	values[2] = Int32GetDatum(s.streaming);
	values[3] = Int32GetDatum(s.catching_up);
	values[4] = BoolGetDatum(s.missing && settle_sync_standby_grace >= 0);
	values[5] = CStringGetTextDatum(state_why(&s));
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
}

/* settle._check_sync_standby(what): settle_check_sync_standby for SQL functions. */
Datum
settle_check_sync_standby_sql(PG_FUNCTION_ARGS)
{
	settle_check_sync_standby(text_to_cstring(PG_GETARG_TEXT_PP(0)));
	PG_RETURN_VOID();
}
