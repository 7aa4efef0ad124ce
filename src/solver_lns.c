/*
 * solver_lns.c -- large-neighbourhood search: re-select exactly (GLPK's MIP)
 * the payments into and out of a few accounts, every other payment fixed at
 * the best selection, keep the result if the exact objective fell.
 *
 * The local search (solver_search.c) moves one payment at a time (with at
 * most two chained adds); the payments of a few accounts are few enough (a
 * few dozen binaries) for branch and bound to solve to optimality quickly,
 * and that optimum may add and drop many payments at once.  The MIP decides
 * with doubles: its selection goes through the same exact check and exact
 * objective as every candidate.  docs/ALGORITHM.md, step 4c.
 * Plain C11, no PostgreSQL headers (solver_int.h).
 */
#include <limits.h>
#include <stdlib.h>

#include "solver_int.h"

/* At most this many payments are freed in one neighbourhood. */
#define LNS_MAX_FREE 160

/* Neighbourhoods per component (solver.h; 0: off). */
int			settle_solver_lns_steps = 0;
/* Accounts per neighbourhood. */
int			settle_solver_lns_accounts = 3;

/* Uniform integer in [0, k), from the caller's generator state. */
static int
lns_below(unsigned long long *rng, int k)
{
	*rng = *rng * 6364136223846793005ULL + 1442695040888963407ULL;
	return (int) ((*rng >> 33) % (unsigned long long) k);
}

/* Add row lo <= sum val[1..len] x[idx[1..len]] (GLP_LO) or <= up (GLP_UP). */
static void
add_row(glp_prob *lp, int len, const int *idx, const double *val, int type, double bound)
{
	int			row = glp_add_rows(lp, 1);

	glp_set_row_bnds(lp, row, type, bound, bound);
	glp_set_mat_row(lp, row, len, idx, val);
}

/*
 * Build the MIP of the free payments freed[0 .. n_free) with the rest of
 * the component fixed: balances, wire use and FX nets in w must be those of
 * the fixed rest.  Column j + 1 is freed[j]; then one y per wire that no
 * fixed payment opens, one z per FX pair with a spread.
 */
static glp_prob *
build_neighbourhood(Work *w, const int *freed, int n_free)
{
	const SolverProblem *p = w->p;
	glp_prob   *lp;
	int			j,
				k,
				end;

	if (w->lp)
		glp_delete_prob(w->lp);
	w->lp = lp = glp_create_prob();
	glp_set_obj_dir(lp, GLP_MIN);
	glp_add_cols(lp, n_free);
	for (j = 0; j < n_free; j++)
	{
		glp_set_col_kind(lp, j + 1, GLP_BV);
		glp_set_obj_coef(lp, j + 1, -p->payments[freed[j]].penalty);
	}
	/* account rows: each constrained account of a free payment once (w->mark) */
	for (j = 0; j < n_free; j++)
		for (end = 0; end < 2; end++)
		{
			int			a = payment_account(&p->payments[freed[j]], end);
			int			len = 0;

			if (!p->accounts[a].constrained || w->mark[a])
				continue;
			w->mark[a] = true;
			for (k = 0; k < n_free; k++)
			{
				const SolverPayment *s = &p->payments[freed[k]];
				double		v = (s->dst == a ? (double) s->credit : 0) -
					(s->src == a ? (double) s->debit : 0);

				if ((s->src == a || s->dst == a) && v != 0)
				{
					len++;
					w->idx[len] = k + 1;
					w->val[len] = v;
				}
			}
			if (len > 0)
				add_row(lp, len, w->idx, w->val, GLP_LO, (double) (floor_of(p, a) - w->balance[a]));
		}
	for (j = 0; j < n_free; j++)
		for (end = 0; end < 2; end++)
			w->mark[payment_account(&p->payments[freed[j]], end)] = false;
	/* a wire no fixed payment uses: y_w with its fee, x_i <= y_w (w->wire_fill[wi]: its column) */
	for (j = 0; j < n_free; j++)
		for (end = 0; end < 2; end++)
		{
			int			wi = payment_wire(&p->payments[freed[j]], end);

			if (wi >= 0)
				w->wire_fill[wi] = 0;
		}
	for (j = 0; j < n_free; j++)
		for (end = 0; end < 2; end++)
		{
			int			wi = payment_wire(&p->payments[freed[j]], end);

			if (wi < 0 || p->wire_fee[wi] <= 0 || w->wire_use[wi] > 0)
				continue;
			if (w->wire_fill[wi] == 0)
			{
				w->wire_fill[wi] = glp_add_cols(lp, 1);
				glp_set_col_kind(lp, w->wire_fill[wi], GLP_BV);
				glp_set_obj_coef(lp, w->wire_fill[wi], p->wire_fee[wi]);
			}
			w->idx[1] = j + 1;
			w->val[1] = 1;
			w->idx[2] = w->wire_fill[wi];
			w->val[2] = -1;
			add_row(lp, 2, w->idx, w->val, GLP_UP, 0);
		}
	/* FX: z_k >= +-(fixed net + free net), spread on z */
	for (k = 0; k < p->n_fx_pairs; k++)
	{
		int			len = 0,
					col,
					sign,
					t;

		if (p->fx_spread[k] <= 0)
			continue;
		for (j = 0; j < n_free; j++)
			if (p->payments[freed[j]].fx_pair == k)
			{
				len++;
				w->idx[len] = j + 1;
			}
		if (len == 0)
			continue;
		col = glp_add_cols(lp, 1);
		glp_set_col_bnds(lp, col, GLP_LO, 0, 0);
		glp_set_obj_coef(lp, col, p->fx_spread[k]);
		for (sign = -1; sign <= 1; sign += 2)
		{
			for (t = 1; t <= len; t++)
				w->val[t] = sign * p->payments[freed[w->idx[t] - 1]].fx_value;
			w->idx[len + 1] = col;
			w->val[len + 1] = 1;
			add_row(lp, len + 1, w->idx, w->val, GLP_LO, sign * w->fx_net[k]);
		}
	}
	return lp;
}

/*
 * One neighbourhood: free the payments of accounts acc[0 .. n_acc), solve
 * their MIP within time_ms, and write its selection of them into trial
 * (a copy of sel).  False if GLPK gave no selection.
 */
static bool
solve_neighbourhood(Work *w, const bool *sel, bool *trial, const int *members, int n,
					const int *acc, int n_acc, double time_ms)
{
	const SolverProblem *p = w->p;
	int		   *freed = w->stack;	/* free while no repair runs */
	int			n_free = 0;
	int			r,
				t,
				j;
	glp_prob   *lp;
	glp_iocp	iocp;

	for (r = 0; r < n_acc; r++)
	{
		int			a = acc[r];

		for (t = w->out_first[a]; t < w->out_end[a] && n_free < LNS_MAX_FREE; t++)
			if (!w->chained[w->out_list[t]])
			{
				w->chained[w->out_list[t]] = true;
				freed[n_free++] = w->out_list[t];
			}
		for (t = w->in_first[a]; t < w->in_end[a] && n_free < LNS_MAX_FREE; t++)
			if (!w->chained[w->in_list[t]])
			{
				w->chained[w->in_list[t]] = true;
				freed[n_free++] = w->in_list[t];
			}
	}
	for (j = 0; j < n_free; j++)
		w->chained[freed[j]] = false;
	if (n_free == 0)
		return false;

	/* balances, wire use, nets of the fixed rest */
	solver_compute_balances(w, sel, members, n);
	solver_compute_usage(w, sel, members, n);
	for (j = 0; j < n_free; j++)
	{
		const SolverPayment *s = &p->payments[freed[j]];

		if (!sel[freed[j]])
			continue;
		w->balance[s->src] += s->debit;
		w->balance[s->dst] -= s->credit;
		use_payment(w, freed[j], -1);
	}
	lp = build_neighbourhood(w, freed, n_free);
	glp_init_iocp(&iocp);
	iocp.msg_lev = GLP_MSG_OFF;
	iocp.presolve = GLP_ON;
	iocp.mip_gap = 0;
	iocp.tm_lim = time_ms >= 1 ? (int) time_ms : 1;
	glp_intopt(lp, &iocp);
	if (glp_mip_status(lp) != GLP_OPT && glp_mip_status(lp) != GLP_FEAS)
	{
		glp_delete_prob(lp);
		w->lp = NULL;
		return false;
	}
	for (j = 0; j < n; j++)
		trial[members[j]] = sel[members[j]];
	for (j = 0; j < n_free; j++)
		trial[freed[j]] = glp_mip_col_val(lp, j + 1) > 0.5;
	glp_delete_prob(lp);
	w->lp = NULL;
	return true;
}

/*
 * Neighbourhoods from the best selection (w->best, objective *best_obj):
 * settle_solver_lns_steps of them at most, while the local search's time
 * share lasts; each kept if its exact objective is lower.  Returns the
 * number of improvements.
 */
int
solver_neighbourhood_search(Work *w, const int *members, int n, double *best_obj)
{
	const SolverProblem *p = w->p;
	bool	   *trial = w->trial;
	unsigned long long rng = 0x2545f4914f6cdd1dULL ^ (unsigned long long) n;
	int			acc[8];
	int			step,
				kept = 0;
	int			j;
	int			n_acc = settle_solver_lns_accounts < 1 ? 1 :
		settle_solver_lns_accounts > 8 ? 8 : settle_solver_lns_accounts;

	for (step = 0; step < settle_solver_lns_steps && !solver_out_of_ls_time(w); step++)
	{
		double		obj;
		double		left = w->ls_deadline_ms > 0 ? w->ls_deadline_ms - solver_now_ms() : 1000;

		for (j = 0; j < n_acc; j++)
		{
			const SolverPayment *s = &p->payments[members[lns_below(&rng, n)]];

			acc[j] = lns_below(&rng, 2) ? s->src : s->dst;
		}
		if (!solve_neighbourhood(w, w->best, trial, members, n, acc, n_acc, left))
			continue;
		if (!solver_component_feasible(w, trial, members, n))
			continue;			/* the MIP's doubles erred: the exact check decides */
		obj = solver_objective(w, trial, members, n);
		if (obj < *best_obj - 1e-9 * (1 + *best_obj))
		{
			*best_obj = obj;
			for (j = 0; j < n; j++)
				w->best[members[j]] = trial[members[j]];
			kept++;
		}
	}
	return kept;
}
