/*
 * solver_perturb.c -- iterated local search (ILS) on a component's best
 * selection: ruin part of it, let the local search rebuild it, keep the
 * result if the exact objective fell.  docs/ALGORITHM.md, step 5 (ILS).
 *
 * The local search (solver_search.c) ends in a local optimum that depends
 * on where it starts (the two LP roundings end several points apart); a
 * kick moves the best selection out of its optimum in a way single moves
 * cannot, and the search from there often ends in a better one.  Kicks are
 * deterministic (a fixed pseudo-random sequence per component) so that the
 * same input gives the same selection when no time limit cuts the search.
 * Plain C11, no PostgreSQL headers (solver_int.h).
 */
#include "solver_int.h"

/* Accounts whose payments one kick unselects. */
#define ILS_RUIN_ACCOUNTS 2

/*
 * No kicks above this many payments: a kick costs more as the component
 * grows and gains less (at 10,000 payments the solve was already within
 * 0.1% of the LP bound's weight, and 4 kicks changed nothing on the three
 * reference instances for 2.5 times the CPU time).
 */
#define ILS_MAX_PAYMENTS 5000

/* Kicks per component (solver.h: tests and the benchmark may change it). */
int			settle_solver_ils_kicks = 4;

/*
 * No kick starts once the local search's effort since the component's LP
 * (w->effort: list entries scanned) reaches this many units per payment
 * (solver.h; 0: no such bound).  A deterministic stand-in for time: at
 * 1,000 payments 1,600 units per payment is about 15 ms of CPU here; at 5%
 * liquidity, where each kick costs about 3 ms, it allows 1-3 kicks, at 10%
 * all 4.
 */
int			settle_solver_ils_work = 1600;

/* Uniform integer in [0, k), from the caller's generator state. */
static int
ils_below(unsigned long long *rng, int k)
{
	*rng = *rng * 6364136223846793005ULL + 1442695040888963407ULL;
	return (int) ((*rng >> 33) % (unsigned long long) k);
}

/*
 * Ruin: unselect every selected payment into or out of ILS_RUIN_ACCOUNTS
 * accounts chosen at random among the component's, then repair (a lost
 * credit can leave a payee short).
 */
static void
kick(Work *w, bool *sel, const int *members, int n, unsigned long long *rng)
{
	const SolverProblem *p = w->p;
	int			r;

	for (r = 0; r < ILS_RUIN_ACCOUNTS; r++)
	{
		const SolverPayment *s = &p->payments[members[ils_below(rng, n)]];
		int			a = ils_below(rng, 2) ? s->src : s->dst;
		int			t;

		for (t = w->out_first[a]; t < w->out_end[a]; t++)
			sel[w->out_list[t]] = false;
		for (t = w->in_first[a]; t < w->in_end[a]; t++)
			sel[w->in_list[t]] = false;
	}
	settle_solver_whole_groups(w, sel, members, n);	/* a group ruined in part goes whole */
	settle_solver_repair(w, sel, members, n);
}

/*
 * Kicks from the best selection (w->best, objective *best_obj) while the
 * local search's time share and effort bound (settle_solver_ils_work) last,
 * at most settle_solver_ils_kicks; w->best and
 * *best_obj are updated when a kick ends lower.  Returns the kicks made.
 */
int
settle_solver_iterated_search(Work *w, const int *members, int n, double *best_obj)
{
	bool	   *trial = w->trial;
	int			kicks = n <= ILS_MAX_PAYMENTS ? settle_solver_ils_kicks : 0;
	unsigned long long rng = 0x9e3779b97f4a7c15ULL ^ (unsigned long long) n;
	int			k;
	int			j;

	for (k = 0; k < kicks && !settle_solver_out_of_ls_time(w); k++)
	{
		double		obj;

		if (settle_solver_ils_work > 0 && w->effort >= (long long) settle_solver_ils_work * n)
			break;
		for (j = 0; j < n; j++)
			trial[members[j]] = w->best[members[j]];
		/* the search looks first where the kick changed balances */
		settle_solver_compute_balances(w, trial, members, n);
		for (j = 0; j < n; j++)
		{
			const SolverPayment *s = &w->p->payments[members[j]];

			w->snap[s->src] = w->balance[s->src];
			w->snap[s->dst] = w->balance[s->dst];
			w->dirty[s->src] = w->dirty[s->dst] = false;
		}
		kick(w, trial, members, n, &rng);
		settle_solver_local_search_from(w, trial, members, n, 1);
		if (!settle_solver_component_feasible(w, trial, members, n))
			continue;			/* cannot happen: repair is exact; never trust it */
		obj = settle_solver_objective(w, trial, members, n);
		if (obj < *best_obj)
		{
			*best_obj = obj;
			for (j = 0; j < n; j++)
				w->best[members[j]] = trial[members[j]];
		}
	}
	return k;
}
