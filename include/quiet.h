/*
 * quiet.h -- payers a worker cycle need not judge again (docs/CYCLE.md,
 * "Quiet payers: a stuck backlog does not slow new payments").
 *
 * A payment the solver leaves for lack of liquidity can settle only when its
 * payer's position improves: the payer's account changes (funding, a
 * limit, a settlement, a two-phase confirmation or void) or a payment that
 * may be settled in the same cycle credits it.  A payer whose queued
 * payments were all left so, none settled or deferred, is *quiet*: the
 * worker's next cycle does not load its old payments unless one of those
 * things happened.  Every settle.full_cycle_interval a cycle judges the
 * whole queue again.  State of the worker process; manual cycles are full.
 */
#ifndef SETTLE_QUIET_H
#define SETTLE_QUIET_H

#include "postgres.h"
#include "utils/timestamp.h"

#include "cycle_state.h"

/* settle.full_cycle_interval, ms (0: every cycle is full) */
extern int	settle_full_cycle_interval_ms;

extern void settle_quiet_define_settings(void);

/* The worker, around each cycle: may this one skip quiet payers? Then what it found. */
extern void settle_quiet_cycle_starting(TimestampTz now);
extern void settle_quiet_cycle_finished(bool committed);

/*
 * The cycle (worker only), before loading the queue: the payers whose old
 * payments it skips (NULL, 0 for a full cycle), the transaction id from
 * which a payment counts as new (text, for the load's $5), and what is
 * skipped (count and oldest payment id, for the backlog report).
 */
extern char **settle_quiet_skip(int *n_skip, char **new_from_xid, int64 *skipped, int64 *skipped_oldest);

/* The cycle: a payer with a payment left for another reason than liquidity is not quiet. */
extern void settle_quiet_noisy(const char *payer_account);

/* The cycle, after solving: which payers are quiet for the next cycle. */
extern void settle_quiet_collect(const CycleState *cs);

/* The next worker cycle judges the whole queue (the deep pass's hint, deep.c). */
extern void settle_quiet_force_full(void);

#endif							/* SETTLE_QUIET_H */
