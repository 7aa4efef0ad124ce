/*
 * solver_deep.h -- the deep pass (issue #27): a longer search on a queue
 * that stays stuck, off the real-time path (docs/ALGORITHM.md, "The deep
 * pass").
 *
 * A large-neighbourhood search: from a feasible selection, free every
 * payment into or out of a region of accounts, fix the rest, and solve that
 * region's MIP exactly with GLPK (the current selection as its incumbent);
 * keep the result when the exact objective fell.  Plain C11 over GLPK, no
 * PostgreSQL header, like the rest of the solver (include/solver.h).
 */
#ifndef SETTLE_SOLVER_DEEP_H
#define SETTLE_SOLVER_DEEP_H

#include <stdbool.h>

#include "solver.h"

typedef struct SolverDeepLimits
{
	/*
	 * Effort bounds (counted, not timed: the same input and limits give the
	 * same selection when the clock does not cut the search).
	 */
	int			rounds;			/* regions freed and re-solved, >= 0 */
	int			region_payments;	/* a region grows until it frees this many payments */
	int			nodes;			/* branch-and-bound nodes per region's MIP */
	/* Wall clock for the whole pass, ms; <= 0: none (problem->time_limit_ms is not used). */
	double		time_limit_ms;
	unsigned long long seed;	/* the regions' pseudo-random sequence */
} SolverDeepLimits;

/* What a deep pass did, beside the SolverResult. */
typedef struct SolverDeepStats
{
	double		start_objective;	/* objective of the selection it started from */
	int			rounds;			/* regions solved */
	int			improved;		/* of which lowered the objective */
	int			rejected;		/* MIP answers that failed the exact check */
	bool		out_of_time;	/* the clock stopped it before its rounds were done */
} SolverDeepStats;

/* The default effort: what docs/ALGORITHM.md measures ("The deep pass"). */
extern void settle_deep_default_limits(SolverDeepLimits *lim);

/*
 * Improve start (n_payments bools; NULL or infeasible: settle_solve's own
 * answer within problem->time_limit_ms is the start) into result->settle.
 * The returned selection passes settle_check_selection and its objective
 * is never above the start's.  Never aborts: a GLPK error ends the pass
 * with the best selection found so far.  stats may be NULL.
 */
extern SolverStatus settle_solve_deep(const SolverProblem *problem, const bool *start,
									  const SolverDeepLimits *limits, SolverResult *result,
									  SolverDeepStats *stats);

/* The model's objective of a selection (each wire's fee once, spread on each pair's net). */
extern double settle_selection_objective(const SolverProblem *problem, const bool *settle);

#endif							/* SETTLE_SOLVER_DEEP_H */
