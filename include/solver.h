/*
 * solver.h -- the settlement optimisation model, solved with GLPK.
 *
 * The solver is plain C with no PostgreSQL dependency: the cycle (cycle.c)
 * loads the queue, turns it into the arrays below, calls settle_solve(), and
 * posts what the solver chose.  The solver never calls ereport(), never lets
 * GLPK abort or exit the process (error hook + longjmp + glp_free_env), and
 * frees every byte it allocated before it returns, whatever the outcome.
 *
 * Model (see docs/ALGORITHM.md):
 *   x_i in {0,1}   payment i settles in this cycle
 *   y_w in {0,1}   wire w (participant, currency) is sent in this cycle
 *   z_k >= 0       net converted volume of currency pair k
 *   minimise  sum_i penalty_i (1 - x_i) + sum_w fee_w y_w + sum_k spread_k z_k
 *   s.t. for every constrained account a:
 *        available_a + sum_{i: dst=a} credit_i x_i - sum_{i: src=a} debit_i x_i
 *            >= min(0, available_a)   (0; an account already below may not go lower)
 *        x_i <= y_{wire_src_i},  x_i <= y_{wire_dst_i}
 *        z_k >= +sum_{i in k} fxvalue_i x_i,  z_k >= -sum_{i in k} fxvalue_i x_i
 *        x_i = x_j  for payments i, j of one linked group (issue #27)
 * Every cost term is non-negative.  The account constraint is re-checked in
 * exact int64 arithmetic before a result is returned: a returned selection
 * never takes an account below its limit.
 */
#ifndef SETTLE_SOLVER_H
#define SETTLE_SOLVER_H

#include <stdbool.h>
#include <stdint.h>

/* One account taking part in the cycle. */
typedef struct SolverAccount
{
	int64_t		available;		/* balance + lower limit, minor units (>= 0 normally) */
	bool		constrained;	/* false: operator settlement account, no limit */
} SolverAccount;

/* One queued payment. */
typedef struct SolverPayment
{
	int			src;			/* index into accounts: debited */
	int			dst;			/* index into accounts: credited */
	int64_t		debit;			/* minor units of the source account's currency, > 0 */
	int64_t		credit;			/* minor units of the destination account's currency, > 0 */
	double		penalty;		/* cost of leaving it unsettled this cycle, > 0 */
	int			wire_src;		/* index into wire_fee: payer's wire, -1 if none */
	int			wire_dst;		/* index into wire_fee: payee's wire, -1 if none */
	int			fx_pair;		/* index into fx_spread, -1 if same currency */
	double		fx_value;		/* signed converted volume in reference units (+ one way, - other) */
} SolverPayment;

typedef struct SolverProblem
{
	int			n_accounts;
	const SolverAccount *accounts;
	int			n_payments;
	const SolverPayment *payments;
	int			n_wires;
	const double *wire_fee;		/* fixed fee per wire, reference units, >= 0 */
	int			n_fx_pairs;
	const double *fx_spread;	/* cost per reference unit of net converted volume, >= 0 */

	double		time_limit_ms;	/* whole solve, <= 0: no limit */
	double		mip_gap;		/* relative MIP gap, e.g. 1e-4 */
	int			mip_max_payments;	/* components up to this size get a MIP pass */

	/* Called often; returning true aborts the solve (status SOLVER_INTERRUPTED). */
	bool		(*interrupted) (void *arg);
	void	   *interrupted_arg;
	/* Optional sink for GLPK's terminal output and solver diagnostics. */
	void		(*log) (void *arg, const char *msg);
	void	   *log_arg;

	/*
	 * Optional (issue #21), caller-allocated n_accounts: the LP relaxation's
	 * price of each account's liquidity, the dual of its row per minor unit
	 * (objective decrease per unit more available); 0 where no LP priced it.
	 * Filled by src/solver_duals.c.
	 */
	double	   *account_price;

	/*
	 * Optional (issue #27): linked payments, all or nothing.  group[i] is
	 * payment i's group, 0 .. n_groups - 1, or -1 for an unlinked payment;
	 * NULL: none.  A group is one unit of the model (x_i = x_j within it):
	 * every stage selects or drops it whole, and the returned selection is
	 * maximal (no unselected payment or group fits and pays for itself).
	 * Give only complete groups: every member present.
	 */
	int			n_groups;
	const int  *group;
} SolverProblem;

typedef enum SolverStatus
{
	SOLVER_OPTIMAL = 0,			/* proven optimal (within mip_gap) */
	SOLVER_FEASIBLE,			/* good solution, not proven (time limit, LP rounding) */
	SOLVER_HEURISTIC,			/* GLPK failed or timed out: greedy fallback used */
	SOLVER_INTERRUPTED,			/* interrupted() said stop: nothing selected */
	SOLVER_ERROR				/* bad input or out of memory: nothing selected */
} SolverStatus;

typedef struct SolverResult
{
	SolverStatus status;
	bool	   *settle;			/* caller-allocated, n_payments entries: the selection */
	double		objective;		/* cost of the returned selection (model objective) */
	double		lp_bound;		/* LP relaxation lower bound on the objective (or -1) */
	double		settled_weight; /* sum of penalty_i over settled payments */
	double		lp_weight_bound;	/* LP upper bound on settled penalty weight (or -1) */
	double		solve_ms;		/* wall time inside settle_solve */
	int			components;		/* independent sub-problems solved */
	int			mip_components; /* of which solved as MIP */
	char		method[64];		/* e.g. "lp+round+repair", "mip", "greedy" */
	char		message[256];	/* diagnostic for SOLVER_ERROR / HEURISTIC */
} SolverResult;

/* Solve; fills result->settle (caller allocates n_payments bools). Never aborts. */
extern SolverStatus settle_solve(const SolverProblem *problem, SolverResult *result);

/*
 * Tests only: when 1, settle_solve() makes an invalid GLPK call after
 * building each LP, so that GLPK's error path (error hook, longjmp,
 * glp_free_env, greedy fallback) can be exercised; when 2, it selects every
 * payment just before its final exact check (settle_check_selection), so
 * that the check is fed a selection that breaks a limit.  Always 0 in
 * production.
 */
extern int	settle_solver_fault_injection;

/*
 * Kicks of the iterated local search per component (docs/ALGORITHM.md,
 * step 5, ILS; default 4, 0 turns it off).  Tests and the benchmark change it
 * to measure what it adds; the extension leaves it alone.
 */
extern int	settle_solver_ils_kicks;

/*
 * Effort after which no further kick starts, per payment of the component,
 * in the local search's own units (list entries scanned by repair and
 * moves; docs/ALGORITHM.md, step 5, ILS; default 1600, 0: no such bound).
 * Counted, not timed, so that the same input gives the same selection.
 * Tests and the benchmark change it; the extension leaves it alone.
 */
extern int	settle_solver_ils_work;

/*
 * Greedy fallback alone (no GLPK): exact, always feasible.  Its local search
 * stops after 20% of problem->time_limit_ms (no limit if <= 0).
 */
extern void settle_solve_greedy(const SolverProblem *problem, bool *settle);

/*
 * Exact feasibility check of a selection (128-bit sums); returns the index of
 * the first violated account or -1.  A constrained account is violated when it
 * ends below 0 and below where it started: an account whose available is
 * already negative may not go lower, but is not a violation by itself.
 */
extern int	settle_check_selection(const SolverProblem *problem, const bool *settle);

/*
 * All or nothing (issue #27): the first group of problem->group that the
 * selection settles in part, or -1 (always -1 without groups).
 */
extern int	settle_check_groups(const SolverProblem *problem, const bool *settle);

#endif							/* SETTLE_SOLVER_H */
