/*
 * solver_int.h -- private to the solver files: the work structure one solve
 * allocates, and what the stages call across files.
 *
 * The solver (include/solver.h, docs/ALGORITHM.md) is split by stage:
 *   solver.c         entry: validation, the loop over components (H, L, LS,
 *                    M, keep the cheapest), the greedy fallback, the exact
 *                    limit check
 *   solver_work.c    work memory, clocks, decomposition into components,
 *                    probing, balances, wire use and the exact objective
 *   solver_repair.c  repair (make every account whole again), dropping
 *                    unprofitable deferrals, refill
 *   solver_search.c  local search: moves, fills, ejection chains, don't-look
 *                    bits
 *   solver_perturb.c iterated local search: kicks from the best selection,
 *                    up to an effort bound
 *   solver_glpk.c    the GLPK model: columns, account, wire and FX rows; LP
 *                    (dual simplex or sifting; probed) and MIP
 *   solver_duals.c   the LP's duals (search, liquidity prices), funding
 *                    advice
 *   solver_units.c   linked groups as units (issue #27): a group's members
 *                    selected and dropped together, whole-group checks, the
 *                    final completion that makes the selection maximal
 *
 * Plain C11 over GLPK: no PostgreSQL header may be included here or in any
 * solver file (test/solver builds them standalone).  Functions shared
 * between the files are prefixed solver_: the library is loaded into
 * PostgreSQL backends, where a plain global name could clash.
 */
#ifndef SETTLE_SOLVER_INT_H
#define SETTLE_SOLVER_INT_H

#include <math.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>

#include <glpk.h>

#include "solver.h"

/*
 * A failed local-search move is retried allowing this many added payments
 * whose payers then go short (an ejection chain, docs/ALGORITHM.md).  Also
 * sizes the repair stack.
 */
#define CHAIN_MAX 2

typedef __int128 wide;

/* Everything one solve allocates, so that every exit can free it. */
typedef struct Work
{
	const SolverProblem *p;
	double		deadline_ms;	/* absolute, monotonic clock; <= 0: none */
	double		ls_deadline_ms; /* local search stops here; <= 0: none */
	bool		interrupted;	/* problem->interrupted() said stop */
	int		   *wire_start;		/* LP wire rows in CSR: n_wires + 1 */
	int		   *wire_fill;
	int		   *wire_list;		/* 2n + 1 */
	int		   *ar_start;		/* LP account rows in CSR: n_accounts + 2 */
	int		   *ar_fill;
	double	   *ar_scale;
	int		   *ar_idx;			/* 2n + 1 (entry 0 unused: GLPK is 1-based) */
	double	   *ar_val;
	int		   *parent;			/* union-find over accounts, wires, fx pairs */
	int		   *comp_of;		/* payment -> component */
	int		   *order;			/* payments grouped by component */
	int		   *comp_start;		/* n_comps + 1 offsets into order */
	int			n_comps;
	int		   *local;			/* scratch: global index -> local index */
	double	   *density;		/* penalty per unit of debit */
	wide	   *balance;		/* per account, for the current selection */
	int		   *wire_use;		/* selected payments per wire */
	double	   *fx_net;			/* per fx pair, selected signed volume */
	bool	   *cand;			/* scratch selections */
	bool	   *best;
	bool	   *saved;			/* local search: selection before a round */
	bool	   *trial;			/* iterated search: the kicked selection */
	double	   *mip_x;			/* MIP callback: the incumbent, by column */
	double	   *lpx;			/* the LP's x, by payment */
	int		   *idx;			/* GLPK row/column index scratch */
	double	   *val;
	int		   *sorted;
	int		   *by_density;		/* the component, least penalty per unit of debit first */
	int		   *by_penalty;		/* the component, largest penalty first */
	int		   *out_first;		/* per account: its outgoing payments are */
	int		   *out_end;		/* out_list[out_first .. out_end), least dense first */
	int		   *out_count;
	int		   *in_first;		/* per account: its incoming payments are */
	int		   *in_end;			/* in_list[in_first .. in_end), densest first */
	int		   *in_list;
	int		   *out_list;
	int		   *tmp;			/* sort scratch, n */
	int		   *tmp2;			/* improve: undo log, 3n */
	int		   *stack;			/* repair: accounts to look at, 2n + n_accounts */
	bool	   *mark;			/* per account */
	bool	   *chained;		/* per payment: added by a chain in this move */
	wide	   *snap;			/* per account: balance when the last round started */
	bool	   *dirty;			/* per account: it or a payer into it changed since */
	int			chain_left;		/* settle_solver_repair_from: chain adds still allowed */
	bool		chain_seen;		/* settle_solver_repair_from met a payment a chain could add */
	double	   *key;			/* per payment sort key */
	bool	   *never;			/* per payment: no selection can settle it (probing) */
	double	   *lambda;			/* per account: the LP's dual price per minor unit */
	double	   *rc;				/* per payment: minus the LP's reduced cost */
	bool		have_duals;		/* lambda and rc hold this component's LP */
	long long	effort;			/* local-search effort since the component's LP (list entries) */
	int		   *next_member;	/* per payment: next of its linked group (a ring); NULL: no groups */
	int		   *unit_rep;		/* per payment: its group's first member, or itself */
	double	   *unit_fx;		/* scratch: FX nets saved while a unit's cost is measured */
	int		   *unit_fx_pair;	/* and their pairs */
	wide	   *unit_credit;	/* per payment: the credits of its whole group */
	wide	   *unit_before;	/* scratch: balances before a group is tried, 2 per member */
	glp_prob   *lp;
	jmp_buf		glpk_jump;
} Work;

/* The payer's wire (end 0) or the payee's wire (end 1) of a payment, -1 if none. */
static inline int
payment_wire(const SolverPayment *s, int end)
{
	return end == 0 ? s->wire_src : s->wire_dst;
}

/* The payer's account (end 0) or the payee's account (end 1) of a payment. */
static inline int
payment_account(const SolverPayment *s, int end)
{
	return end == 0 ? s->src : s->dst;
}

/* Lowest balance an account may end at: 0, or below if it starts below. */
static inline wide
floor_of(const SolverProblem *p, int a)
{
	return p->accounts[a].available < 0 ? (wide) p->accounts[a].available : 0;
}

/* True if account a is constrained and below its floor. */
static inline bool
is_short(const Work *w, int a)
{
	return w->p->accounts[a].constrained && w->balance[a] < floor_of(w->p, a);
}

/*
 * Count payment i in (sign 1) or out of (sign -1) wire use and FX nets.
 * Inline, like marginal_cost: repair and the local search call both per step.
 */
static inline void
use_payment(Work *w, int i, int sign)
{
	const SolverPayment *s = &w->p->payments[i];

	if (s->wire_src >= 0)
		w->wire_use[s->wire_src] += sign;
	if (s->wire_dst >= 0)
		w->wire_use[s->wire_dst] += sign;
	if (s->fx_pair >= 0)
		w->fx_net[s->fx_pair] += sign * s->fx_value;
}

/* True if payment i is a member of a linked group (issue #27). */
static inline bool
is_linked(const Work *w, int i)
{
	return w->next_member != NULL && w->next_member[i] != i;
}

/* The penalty of i's unit (its group, or i alone): what leaving it unsettled costs. */
static inline double
solver_unit_penalty(const Work *w, int i)
{
	double		total = 0;
	int			m = i;

	do
	{
		total += w->p->payments[m].penalty;
		m = w->next_member ? w->next_member[m] : i;
	} while (m != i);
	return total;
}

/* Fee of the wires payment i would open and the spread it would add. */
static inline double
marginal_cost(const Work *w, int i)
{
	const SolverProblem *p = w->p;
	const SolverPayment *s = &p->payments[i];
	double		cost = 0;

	if (s->wire_src >= 0 && w->wire_use[s->wire_src] == 0)
		cost += p->wire_fee[s->wire_src];
	if (s->wire_dst >= 0 && w->wire_use[s->wire_dst] == 0 && s->wire_dst != s->wire_src)
		cost += p->wire_fee[s->wire_dst];
	if (s->fx_pair >= 0)
		cost += p->fx_spread[s->fx_pair] *
			(fabs(w->fx_net[s->fx_pair] + s->fx_value) - fabs(w->fx_net[s->fx_pair]));
	return cost;
}

/* solver_work.c: memory, clocks, components, balances and the objective */
extern bool settle_solver_alloc_work(Work *w);
extern void settle_solver_free_work(Work *w);
extern double settle_solver_now_ms(void);
extern bool settle_solver_out_of_time(const Work *w);
extern bool settle_solver_stop_requested(Work *w);
extern bool settle_solver_out_of_ls_time(Work *w);
extern bool settle_solver_decompose(Work *w);
extern void settle_solver_build_lists(Work *w, const int *members, int n);
extern void settle_solver_probe(Work *w, const int *members, int n);
extern void settle_solver_order_by_reduced_value(Work *w, const int *members, int n);
extern void settle_solver_compute_balances(Work *w, const bool *sel, const int *members, int n);
extern void settle_solver_compute_usage(Work *w, const bool *sel, const int *members, int n);
extern double settle_solver_objective(const Work *w, const bool *sel, const int *members, int n);

/* solver_repair.c: exact repair, unprofitable deferrals, refill */
extern bool settle_solver_repair_from(Work *w, bool *sel, int top, int protect, int *log, int *n_log,
							   double budget);
extern void settle_solver_repair(Work *w, bool *sel, const int *members, int n);
extern bool settle_solver_component_feasible(Work *w, const bool *sel, const int *members, int n);
extern void settle_solver_drop_unprofitable(Work *w, bool *sel, const int *members, int n);
extern void settle_solver_refill(Work *w, bool *sel, const int *members, int n);

/* solver_search.c: the local search */
extern void settle_solver_local_search(Work *w, bool *sel, const int *members, int n);
extern void settle_solver_local_search_from(Work *w, bool *sel, const int *members, int n, int first_round);

/* solver_perturb.c: iterated local search from the best selection */
extern int	settle_solver_iterated_search(Work *w, const int *members, int n, double *best_obj);

/* solver_units.c: linked groups as units (issue #27) */
extern bool settle_solver_build_units(Work *w);
extern void settle_solver_unit_set(Work *w, bool *sel, int i, bool on, int *log, int *n_log);
extern int	settle_solver_unit_pick_add(Work *w, const bool *sel, int a, int end, int best,
								 double best_value);
extern double settle_solver_unit_marginal_cost(Work *w, int i);
extern bool settle_solver_unit_fits(Work *w, int i, int except);
extern void settle_solver_whole_groups(const Work *w, bool *sel, const int *members, int n);
extern void settle_solver_complete(Work *w, bool *sel, const int *members, int n);

/* solver_glpk.c: the component's model in GLPK, LP relaxation or MIP */
extern bool settle_solver_solve_model(Work *w, const int *members, int n, bool mip,
							   const bool *incumbent, const bool *guess, bool *out,
							   double *lp_obj, double *lp_weight, bool *proved);

/*
 * solver_duals.c (issue #21): the LP's account prices into w->lambda and
 * p->account_price, its reduced costs into w->rc
 */
extern void settle_solver_record_duals(Work *w, glp_prob *lp, const int *members, int n, bool prices);

#endif							/* SETTLE_SOLVER_INT_H */
