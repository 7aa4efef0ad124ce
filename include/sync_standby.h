/*
 * sync_standby.h -- an orphan refuses at once (src/sync_standby.c).
 *
 * A primary that requires synchronous standbys and has too few of them
 * streaming cannot commit durably: every commit would wait in SyncRep until
 * its client gives up, and then stay local.  Intake, the rail and the
 * cycles ask here first and refuse (SE170) before writing anything.
 */
#ifndef SETTLE_SYNC_STANDBY_H
#define SETTLE_SYNC_STANDBY_H

typedef struct SyncStandbyState
{
	bool		required;		/* this session's commits wait for synchronous standbys */
	int			needed;			/* how many must confirm (FIRST n / ANY n), 0 if not required */
	int			streaming;		/* candidates streaming now (catchup does not count) */
	int			catching_up;	/* named in synchronous_standby_names, still catching up */
	bool		missing;		/* required and streaming < needed */
} SyncStandbyState;

/* Define settle.sync_standby_grace (from _PG_init). */
extern void settle_sync_standby_define_settings(void);

/* Whether synchronous standbys are configured at all (shared memory's view). */
extern bool settle_sync_standbys_defined(void);

/* The state now, without waiting. */
extern void settle_sync_standby_state(SyncStandbyState *s);

/*
 * Whether commits are impossible to make durable now: required and missing
 * (after waiting up to settle.sync_standby_grace for it to come back when
 * grace_wait); false when refusals are turned off (grace -1).
 */
extern bool settle_sync_standby_missing(bool grace_wait, SyncStandbyState *s);

/* Raise SE170 if missing after the grace: what names the refused action. */
extern void settle_check_sync_standby(const char *what);

#endif							/* SETTLE_SYNC_STANDBY_H */
