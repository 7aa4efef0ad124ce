/*
 * deep.h -- the worker's deep pass on a stuck queue (issue #27,
 * docs/CYCLE.md "The deep pass").
 *
 * A full worker cycle that may leave the queue stuck copies what it leaves
 * waiting; once the backlog is stuck (settle.deep_after_cycles cycles in a
 * row that changed nothing, or a stalled backlog) the worker runs the deep
 * pass
 * (src/solver_deep.c) on that copy between cycles, outside any transaction
 * and without the cycle lock, for at most settle.deep_budget, and at most
 * once per settle.deep_interval.  What it finds is a hint: the next full
 * cycle takes it if, re-checked against that cycle's own balances, it is
 * within every limit and cheaper than the cycle's own selection.
 */
#ifndef SETTLE_DEEP_H
#define SETTLE_DEEP_H

#include "postgres.h"
#include "utils/timestamp.h"

#include "solver.h"

extern int	settle_deep_budget_ms;
extern int	settle_deep_interval_ms;
extern int	settle_deep_after_cycles;

extern void settle_deep_define_settings(void);

/*
 * The worker, before a cycle: whether the queue may be stuck after it
 * (settle.deep_after_cycles - 1 cycles in a row changed nothing, or the
 * backlog is stalled: pace.c), so that only then the cycle keeps a copy.
 */
extern void settle_deep_cycle_starting(bool stuck_so_far);

/*
 * cycle.c, after a worker cycle's real-time solve (ids: each payment's
 * payment_id; full: no payment was skipped): take the pending hint if it
 * is within limits and cheaper (selected and result updated, true), then,
 * if the queue may be stuck after this cycle, keep a copy of what it
 * leaves waiting for a deep pass.
 */
extern bool settle_deep_cycle_solved(const SolverProblem *problem, const int64 *ids, bool full,
									 bool *selected, SolverResult *result);

/* The worker, after a cycle: a copy taken by a cycle that rolled back is dropped. */
extern void settle_deep_cycle_finished(bool committed);

/* The worker, between cycles: run the deep pass if the queue is stuck and one is due. */
extern void settle_deep_between_cycles(bool stuck, TimestampTz now);

#endif							/* SETTLE_DEEP_H */
