/*
 * worker_state.h -- the settlement workers, one per database, in shared
 * memory: which database each slot serves, the state the launcher and the
 * worker keep there, and what each worker has done.
 *
 * A failed cycle rolls back and leaves no row anywhere, so its count and
 * last error live in shared memory, where settle_worker_status() and the
 * metrics read them.  Present only when settle is in
 * shared_preload_libraries.  Only the launcher assigns and frees slots
 * (src/launcher.c); a slot's fields are guarded by its spinlock.
 */
#ifndef SETTLE_WORKER_STATE_H
#define SETTLE_WORKER_STATE_H

#include "postgres.h"
#include "storage/latch.h"
#include "storage/spin.h"
#include "utils/elog.h"
#include "utils/timestamp.h"

#define SETTLE_LAST_ERROR_BYTES 512

/* What a database's worker is doing (settle_worker_status().state). */
typedef enum SettleWorkerRun
{
	SETTLE_RUN_FREE = 0,		/* the slot serves no database */
	SETTLE_RUN_STARTING,		/* registered, not connected yet */
	SETTLE_RUN_RUNNING,			/* connected, cycling (or waiting: standby, fence, release) */
	SETTLE_RUN_NOT_INSTALLED,	/* no extension there: started again on CREATE EXTENSION */
	SETTLE_RUN_STOPPED,			/* not allowed by settle.database, or the workers are off */
	SETTLE_RUN_FAILED,			/* exited unexpectedly: started again after a delay */
	SETTLE_RUN_PAUSED			/* DROP/RENAME DATABASE or a copy of it as template under way */
} SettleWorkerRun;

typedef struct SettleDbSlot
{
	slock_t		mutex;
	Oid			dboid;			/* InvalidOid: free */
	NameData	dbname;
	SettleWorkerRun run;
	bool		recheck;		/* CREATE EXTENSION committed here since the worker left */
	TimestampTz paused_until;	/* no start before (a database command under way) */
	TimestampTz run_since;
	int64		starts;			/* workers started for this database */
	int			pid;			/* 0: no worker process */
	Latch	   *latch;			/* the worker's latch: set by a commit that queued payments */
	TimestampTz started_at;
	int64		cycles_ok;
	int64		cycles_unchanged;	/* committed but settled and expired nothing: no row */
	int64		cycles_failed;
	int64		seals_failed;
	int64		seals_unchanged;	/* found nothing to seal: no seal run row */
	TimestampTz last_cycle_at;	/* end of the last successful cycle */
	TimestampTz last_failure_at;
	char		last_failure_in[8]; /* "cycle" or "seal" */
	char		last_sqlstate[6];
	char		last_error[SETTLE_LAST_ERROR_BYTES];
} SettleDbSlot;

typedef struct SettleShared
{
	slock_t		mutex;
	int			launcher_pid;
	Latch	   *launcher_latch;
	int			n_slots;
	SettleDbSlot slots[FLEXIBLE_ARRAY_MEMBER];
} SettleShared;

/* NULL unless preloaded */
extern SettleShared *settle_shared;
/* settle.max_databases: the slots, the most databases with a worker */
extern int	settle_max_databases;

/* From _PG_init: define settle.max_databases. */
extern void settle_worker_state_define_settings(void);
/* The shared memory of the slots: its size asked for, then attached (hooks.c, while preloaded). */
extern void settle_worker_state_shmem_request(void);
extern void settle_worker_state_shmem_startup(void);

/* The slot serving a database, or -1. */
extern int	settle_worker_slot_of(Oid dboid);
/* The slot of this backend's database (cached), or -1. */
extern int	settle_worker_my_slot(void);
/* The name of a state. */
extern const char *settle_worker_run_name(SettleWorkerRun run);

/* The worker of slot `slot` has started in this process; it leaves with `run`. */
extern void settle_worker_state_started(int slot);
extern void settle_worker_state_leaving(SettleWorkerRun run);

/* Wake this database's worker now (backlog.c's settle_worker_wake_at_commit: once intake commits). */
extern void settle_worker_wake(void);
/* Wake the launcher (a database or the extension came or went). */
extern void settle_launcher_wake(void);

/* A worker cycle committed without settling or expiring anything (no row written). */
extern void settle_worker_state_note_unchanged(void);
/* A worker seal that found nothing to seal (it wrote no seal run). */
extern void settle_worker_state_note_seal_unchanged(void);

/* A round ended: a cycle (or a seal if !is_cycle), failed if edata != NULL. */
extern void settle_worker_state_note(bool is_cycle, ErrorData *edata);

#endif							/* SETTLE_WORKER_STATE_H */
