/*
 * worker_state.h -- what the settlement worker has done, in shared memory.
 *
 * A failed cycle rolls back and leaves no row anywhere, so its count and
 * last error live in shared memory, where settle_worker_status() and the
 * metrics read them.  Present only when settle is in
 * shared_preload_libraries.
 */
#ifndef SETTLE_WORKER_STATE_H
#define SETTLE_WORKER_STATE_H

#include "postgres.h"
#include "utils/elog.h"
#include "utils/timestamp.h"

/* From _PG_init while preloading: ask for the shared memory. */
extern void settle_worker_state_init(void);

/* The worker has started (or restarted) in this process. */
extern void settle_worker_state_started(void);

/* Wake the worker now; or once the current transaction commits (intake). */
extern void settle_worker_wake(void);
extern void settle_worker_wake_at_commit(int n, int max_priority, TimestampTz min_deadline);

/* A worker cycle committed without settling or expiring anything (no row written). */
extern void settle_worker_state_note_unchanged(void);
/* A worker seal that found nothing to seal (it wrote no seal run). */
extern void settle_worker_state_note_seal_unchanged(void);

/* A round ended: a cycle (or a seal if !is_cycle), failed if edata != NULL. */
extern void settle_worker_state_note(bool is_cycle, ErrorData *edata);

#endif							/* SETTLE_WORKER_STATE_H */
