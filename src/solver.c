/*
 * solver.c -- choose which queued payments settle this cycle (GLPK).
 *
 * Plain C, no PostgreSQL headers: the cycle (cycle.c) fills a SolverProblem
 * and posts what comes back; test/solver drives the same code standalone.
 * The model and its reasoning are in docs/ALGORITHM.md.  In short, per
 * independent component of the payment graph (payments linked through an
 * account, a wire or an FX pair):
 *
 *   H  the heuristic: select every payment, repair (drop the least valuable
 *      payments of the account with the largest shortfall until every account
 *      is within its limit), drop deferrable payments not worth their wires,
 *      then refill greedily.  Exact, O(n log n), and it resolves gridlock.
 *   L  the LP relaxation (glp_simplex, time-limited), rounded down, repaired
 *      and refilled like H.
 *   M  for components of at most mip_max_payments payments, the MIP
 *      (glp_intopt) with the better of H and L as its starting incumbent.
 *
 * The best of these by the model's exact objective is returned, after an
 * exact integer check of every account.  GLPK never aborts the process: its
 * error hook longjmps back here, the environment is freed with
 * glp_free_env(), and H is used.  Every byte allocated is freed on every path.
 */
#include <math.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <glpk.h>

#include "solver.h"

typedef __int128 wide;

/* Everything one solve allocates, so that every exit can free it. */
typedef struct Work
{
	const SolverProblem *p;
	double		deadline_ms;	/* absolute, monotonic clock; <= 0: none */
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
	double	   *lp_x;
	int		   *idx;			/* GLPK row/column index scratch */
	double	   *val;
	int		   *sorted;
	int		   *out_first;		/* repair: CSR of outgoing payments per account */
	int		   *out_next;
	int		   *out_list;
	glp_prob   *lp;
	jmp_buf		glpk_jump;
	char		glpk_msg[200];
} Work;

static double now_ms(void);
static bool out_of_time(const Work *w);
static void glpk_error_hook(void *info);
static int	glpk_term_hook(void *info, const char *s);
static int	uf_find(int *parent, int x);
static void uf_union(int *parent, int a, int b);
static void free_work(Work *w);
static bool decompose(Work *w);
static double objective(const Work *w, const bool *sel, const int *members, int n);
static void repair(Work *w, bool *sel, const int *members, int n);
static void drop_unprofitable(Work *w, bool *sel, const int *members, int n);
static void refill(Work *w, bool *sel, const int *members, int n);
static void heuristic(Work *w, bool *sel, const int *members, int n);
static int	solve_lp(Work *w, const int *members, int n, bool mip, const bool *incumbent,
					 bool *out, double *lp_obj, double *lp_weight, bool *proved);
static int	compare_density(const void *a, const void *b, void *arg);

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

static bool
out_of_time(const Work *w)
{
	return w->deadline_ms > 0 && now_ms() >= w->deadline_ms;
}

/* GLPK calls this on an internal error: leave through the jump buffer. */
static void
glpk_error_hook(void *info)
{
	Work	   *w = info;

	longjmp(w->glpk_jump, 1);
}

/* GLPK's terminal output goes to the caller's log, or nowhere. */
static int
glpk_term_hook(void *info, const char *s)
{
	const SolverProblem *p = info;

	if (p->log)
		p->log(p->log_arg, s);
	return 1;
}

static int
uf_find(int *parent, int x)
{
	while (parent[x] != x)
	{
		parent[x] = parent[parent[x]];
		x = parent[x];
	}
	return x;
}

static void
uf_union(int *parent, int a, int b)
{
	a = uf_find(parent, a);
	b = uf_find(parent, b);
	if (a != b)
		parent[a < b ? b : a] = a < b ? a : b;
}

static void
free_work(Work *w)
{
	if (w->lp)
		glp_delete_prob(w->lp);
	w->lp = NULL;
	free(w->parent);
	free(w->comp_of);
	free(w->order);
	free(w->comp_start);
	free(w->local);
	free(w->density);
	free(w->balance);
	free(w->wire_use);
	free(w->fx_net);
	free(w->cand);
	free(w->best);
	free(w->lp_x);
	free(w->idx);
	free(w->val);
	free(w->sorted);
	free(w->out_first);
	free(w->out_next);
	free(w->out_list);
}

/* Group payments into independent components. */
static bool
decompose(Work *w)
{
	const SolverProblem *p = w->p;
	int			nodes = p->n_accounts + p->n_wires + p->n_fx_pairs;
	int		   *root_comp;
	int		   *count;
	int			i;

	w->parent = malloc(sizeof(int) * (nodes + 1));
	root_comp = malloc(sizeof(int) * (nodes + 1));
	w->comp_of = malloc(sizeof(int) * (p->n_payments + 1));
	w->order = malloc(sizeof(int) * (p->n_payments + 1));
	count = calloc(p->n_payments + 2, sizeof(int));
	if (!w->parent || !root_comp || !w->comp_of || !w->order || !count)
	{
		free(root_comp);
		free(count);
		return false;
	}
	for (i = 0; i < nodes; i++)
	{
		w->parent[i] = i;
		root_comp[i] = -1;
	}
	for (i = 0; i < p->n_payments; i++)
	{
		const SolverPayment *s = &p->payments[i];

		uf_union(w->parent, s->src, s->dst);
		if (s->wire_src >= 0)
			uf_union(w->parent, s->src, p->n_accounts + s->wire_src);
		if (s->wire_dst >= 0)
			uf_union(w->parent, s->dst, p->n_accounts + s->wire_dst);
		if (s->fx_pair >= 0)
			uf_union(w->parent, s->src, p->n_accounts + p->n_wires + s->fx_pair);
	}
	w->n_comps = 0;
	for (i = 0; i < p->n_payments; i++)
	{
		int			r = uf_find(w->parent, p->payments[i].src);

		if (root_comp[r] < 0)
			root_comp[r] = w->n_comps++;
		w->comp_of[i] = root_comp[r];
		count[w->comp_of[i] + 1]++;
	}
	w->comp_start = malloc(sizeof(int) * (w->n_comps + 2));
	if (!w->comp_start)
	{
		free(root_comp);
		free(count);
		return false;
	}
	w->comp_start[0] = 0;
	for (i = 0; i < w->n_comps; i++)
		w->comp_start[i + 1] = w->comp_start[i] + count[i + 1];
	memset(count, 0, sizeof(int) * (p->n_payments + 2));
	for (i = 0; i < p->n_payments; i++)
	{
		int			c = w->comp_of[i];

		w->order[w->comp_start[c] + count[c]++] = i;
	}
	free(root_comp);
	free(count);
	return true;
}

/* The model's objective for a selection of a component (others ignored). */
static double
objective(const Work *w, const bool *sel, const int *members, int n)
{
	const SolverProblem *p = w->p;
	double		cost = 0;
	int			j;

	for (j = 0; j < n; j++)
	{
		int			i = members[j];
		const SolverPayment *s = &p->payments[i];

		if (!sel[i])
			cost += s->penalty;
		else
		{
			if (s->wire_src >= 0)
				w->wire_use[s->wire_src] = 0;
			if (s->wire_dst >= 0)
				w->wire_use[s->wire_dst] = 0;
			if (s->fx_pair >= 0)
				w->fx_net[s->fx_pair] = 0;
		}
	}
	for (j = 0; j < n; j++)
	{
		int			i = members[j];
		const SolverPayment *s = &p->payments[i];

		if (!sel[i])
			continue;
		if (s->wire_src >= 0 && w->wire_use[s->wire_src]++ == 0)
			cost += p->wire_fee[s->wire_src];
		if (s->wire_dst >= 0 && w->wire_use[s->wire_dst]++ == 0)
			cost += p->wire_fee[s->wire_dst];
		if (s->fx_pair >= 0)
			w->fx_net[s->fx_pair] += s->fx_value;
	}
	for (j = 0; j < n; j++)
	{
		int			i = members[j];
		const SolverPayment *s = &p->payments[i];

		if (sel[i] && s->fx_pair >= 0 && !isnan(w->fx_net[s->fx_pair]))
		{
			cost += p->fx_spread[s->fx_pair] * fabs(w->fx_net[s->fx_pair]);
			w->fx_net[s->fx_pair] = NAN;	/* counted once */
		}
	}
	return cost;
}

static int
compare_density(const void *a, const void *b, void *arg)
{
	const double *d = arg;
	double		x = d[*(const int *) a];
	double		y = d[*(const int *) b];

	return x < y ? -1 : x > y ? 1 : (*(const int *) a - *(const int *) b);
}

/* Balances of a component's accounts for a selection (exact). */
static void
compute_balances(Work *w, const bool *sel, const int *members, int n)
{
	const SolverProblem *p = w->p;
	int			j;

	for (j = 0; j < n; j++)
	{
		const SolverPayment *s = &p->payments[members[j]];

		w->balance[s->src] = p->accounts[s->src].available;
		w->balance[s->dst] = p->accounts[s->dst].available;
	}
	for (j = 0; j < n; j++)
	{
		const SolverPayment *s = &p->payments[members[j]];

		if (!sel[members[j]])
			continue;
		w->balance[s->src] -= s->debit;
		w->balance[s->dst] += s->credit;
	}
}

/*
 * Drop selected payments until every constrained account is within its
 * limit: from an account in shortfall, drop its outgoing payments of lowest
 * penalty per unit of debit first.  A drop can push the payee into
 * shortfall; it is then repaired in turn.  Each payment is dropped at most
 * once, so this ends.
 */
static void
repair(Work *w, bool *sel, const int *members, int n)
{
	const SolverProblem *p = w->p;
	int		   *sorted = w->sorted;
	int		   *stack = w->idx;		/* accounts to look at (reused scratch) */
	int		   *first = w->out_first;	/* per account: start of its outgoing list */
	int		   *next = w->out_next; /* per account: next candidate in its list */
	int		   *list = w->out_list;
	int			top = 0;
	int			j;

	compute_balances(w, sel, members, n);
	memcpy(sorted, members, sizeof(int) * n);
	qsort_r(sorted, n, sizeof(int), compare_density, w->density);

	/* outgoing payments of each account, least valuable per unit first (CSR) */
	memset(first, 0, sizeof(int) * (p->n_accounts + 1));
	for (j = 0; j < n; j++)
		first[p->payments[members[j]].src + 1]++;
	for (j = 0; j < p->n_accounts; j++)
		first[j + 1] += first[j];
	for (j = 0; j < p->n_accounts; j++)
		next[j] = first[j];
	for (j = 0; j < n; j++)
	{
		int			i = sorted[j];

		list[next[p->payments[i].src]++] = i;
	}
	for (j = 0; j < p->n_accounts; j++)
		next[j] = first[j];

	for (j = 0; j < n; j++)
	{
		const SolverPayment *s = &p->payments[members[j]];

		if (p->accounts[s->src].constrained && w->balance[s->src] < 0)
			stack[top++] = s->src;
	}
	while (top > 0)
	{
		int			a = stack[--top];

		while (w->balance[a] < 0 && next[a] < first[a + 1])
		{
			int			i = list[next[a]++];
			const SolverPayment *s = &p->payments[i];

			if (!sel[i])
				continue;
			sel[i] = false;
			w->balance[a] += s->debit;
			w->balance[s->dst] -= s->credit;
			if (p->accounts[s->dst].constrained && w->balance[s->dst] < 0 &&
				w->balance[s->dst] + s->credit >= 0)
				stack[top++] = s->dst;	/* newly in shortfall */
		}
	}
}

/*
 * Deferrable payments are worth settling only if their penalties pay for
 * the wires they alone open.  Drop those that do not, then repair (a drop
 * removes a credit).
 */
static void
drop_unprofitable(Work *w, bool *sel, const int *members, int n)
{
	const SolverProblem *p = w->p;
	double	   *wire_value = w->val;	/* reused scratch, sized n_wires + 1 */
	int			j;
	bool		dropped = false;

	for (j = 0; j < p->n_wires; j++)
	{
		wire_value[j] = 0;
		w->wire_use[j] = 0;
	}
	for (j = 0; j < n; j++)
	{
		int			i = members[j];
		const SolverPayment *s = &p->payments[i];

		if (!sel[i])
			continue;
		if (s->wire_src >= 0)
		{
			wire_value[s->wire_src] += s->penalty;
			w->wire_use[s->wire_src]++;
		}
		if (s->wire_dst >= 0)
		{
			wire_value[s->wire_dst] += s->penalty;
			w->wire_use[s->wire_dst]++;
		}
	}
	for (j = 0; j < n; j++)
	{
		int			i = members[j];
		const SolverPayment *s = &p->payments[i];
		double		fees = 0;

		if (!sel[i])
			continue;
		if (s->wire_src >= 0 && wire_value[s->wire_src] < p->wire_fee[s->wire_src])
			fees += p->wire_fee[s->wire_src];
		if (s->wire_dst >= 0 && wire_value[s->wire_dst] < p->wire_fee[s->wire_dst])
			fees += p->wire_fee[s->wire_dst];
		if (fees > 0 && s->penalty < fees)
		{
			sel[i] = false;
			dropped = true;
		}
	}
	if (dropped)
		repair(w, sel, members, n);
}

/*
 * Add unselected payments, most valuable per unit of debit first, when the
 * payer can afford them and their penalty exceeds the fees of the wires they
 * would open and their gross spread.  Repeats while it adds anything, since
 * every credit can make another payment affordable.
 */
static void
refill(Work *w, bool *sel, const int *members, int n)
{
	const SolverProblem *p = w->p;
	int		   *sorted = w->sorted;
	int			j;
	int			pass;
	bool		added = true;

	compute_balances(w, sel, members, n);
	for (j = 0; j < p->n_wires; j++)
		w->wire_use[j] = 0;
	for (j = 0; j < n; j++)
	{
		const SolverPayment *s = &p->payments[members[j]];

		if (!sel[members[j]])
			continue;
		if (s->wire_src >= 0)
			w->wire_use[s->wire_src]++;
		if (s->wire_dst >= 0)
			w->wire_use[s->wire_dst]++;
	}
	memcpy(sorted, members, sizeof(int) * n);
	qsort_r(sorted, n, sizeof(int), compare_density, w->density);

	for (pass = 0; added && pass < 8; pass++)
	{
		added = false;
		for (j = n - 1; j >= 0; j--)
		{
			int			i = sorted[j];
			const SolverPayment *s = &p->payments[i];
			double		marginal = 0;

			if (sel[i])
				continue;
			if (p->accounts[s->src].constrained && w->balance[s->src] < s->debit)
				continue;
			if (s->wire_src >= 0 && w->wire_use[s->wire_src] == 0)
				marginal += p->wire_fee[s->wire_src];
			if (s->wire_dst >= 0 && w->wire_use[s->wire_dst] == 0 && s->wire_dst != s->wire_src)
				marginal += p->wire_fee[s->wire_dst];
			if (s->fx_pair >= 0)
				marginal += p->fx_spread[s->fx_pair] * fabs(s->fx_value);
			if (s->penalty <= marginal)
				continue;
			sel[i] = true;
			added = true;
			w->balance[s->src] -= s->debit;
			w->balance[s->dst] += s->credit;
			if (s->wire_src >= 0)
				w->wire_use[s->wire_src]++;
			if (s->wire_dst >= 0)
				w->wire_use[s->wire_dst]++;
		}
	}
}

/* H: everything, repaired, unprofitable deferrals dropped, refilled. */
static void
heuristic(Work *w, bool *sel, const int *members, int n)
{
	int			j;

	for (j = 0; j < n; j++)
		sel[members[j]] = true;
	repair(w, sel, members, n);
	drop_unprofitable(w, sel, members, n);
	refill(w, sel, members, n);
}

/* MIP callback: stop when interrupted or out of time; offer the incumbent. */
typedef struct MipInfo
{
	Work	   *w;
	const int  *members;
	int			n;
	const bool *incumbent;
	int			x_col0;			/* column of the first x */
} MipInfo;

static void
mip_callback(glp_tree *tree, void *info)
{
	MipInfo    *mi = info;
	Work	   *w = mi->w;

	if ((w->p->interrupted && w->p->interrupted(w->p->interrupted_arg)) || out_of_time(w))
	{
		glp_ios_terminate(tree);
		return;
	}
	if (glp_ios_reason(tree) == GLP_IHEUR && mi->incumbent && glp_ios_curr_node(tree) == 1)
	{
		int			ncols = glp_get_num_cols(glp_ios_get_prob(tree));
		double	   *x = calloc(ncols + 1, sizeof(double));
		int			j;
		const SolverProblem *p = w->p;

		if (x == NULL)
			return;
		for (j = 0; j < mi->n; j++)
			x[mi->x_col0 + j] = mi->incumbent[mi->members[j]] ? 1.0 : 0.0;
		/* y and z columns: the smallest values the incumbent allows */
		for (j = mi->x_col0 + mi->n; j <= ncols; j++)
			x[j] = 0;
		for (j = 0; j < mi->n; j++)
		{
			const SolverPayment *s = &p->payments[mi->members[j]];

			if (!mi->incumbent[mi->members[j]])
				continue;
			if (s->wire_src >= 0)
				x[w->local[p->n_payments + s->wire_src]] = 1.0;
			if (s->wire_dst >= 0)
				x[w->local[p->n_payments + s->wire_dst]] = 1.0;
		}
		{
			/* z_k = |net fx volume| */
			int			k;

			for (k = 0; k < p->n_fx_pairs; k++)
				w->fx_net[k] = 0;
			for (j = 0; j < mi->n; j++)
			{
				const SolverPayment *s = &p->payments[mi->members[j]];

				if (mi->incumbent[mi->members[j]] && s->fx_pair >= 0)
					w->fx_net[s->fx_pair] += s->fx_value;
			}
			for (j = 0; j < mi->n; j++)
			{
				const SolverPayment *s = &p->payments[mi->members[j]];

				if (s->fx_pair >= 0)
					x[w->local[p->n_payments + p->n_wires + s->fx_pair]] = fabs(w->fx_net[s->fx_pair]);
			}
		}
		glp_ios_heur_sol(tree, x);
		free(x);
	}
}

/*
 * Build the component's model in GLPK and solve its LP relaxation, or the
 * MIP.  Columns: x_i, then y_w, then z_k.  Rows: one per constrained
 * account; wire links (aggregated for the LP, one per payment for the MIP);
 * two per FX pair.  Returns 0 on success (out filled with the rounded-down
 * LP or the MIP solution), 1 if GLPK gave nothing usable.
 */
static int
solve_lp(Work *w, const int *members, int n, bool mip, const bool *incumbent,
		 bool *out, double *lp_obj, double *lp_weight, bool *proved)
{
	const SolverProblem *p = w->p;
	glp_prob   *lp;
	int			n_wires_c = 0,
				n_fx_c = 0,
				n_acc_c = 0;
	int			ncols,
				j,
				row;
	int		   *local = w->local;	/* x: payments; then wires; then fx; accounts after */
	int			acc_base = p->n_payments + p->n_wires + p->n_fx_pairs;
	double		remaining;
	int			ret;
	glp_smcp	smcp;
	double		constant = 0;

	*proved = false;
	/* local numbering of the component's wires, fx pairs and accounts */
	for (j = 0; j < n; j++)
	{
		const SolverPayment *s = &p->payments[members[j]];

		local[s->src + acc_base] = -1;
		local[s->dst + acc_base] = -1;
		if (s->wire_src >= 0)
			local[p->n_payments + s->wire_src] = -1;
		if (s->wire_dst >= 0)
			local[p->n_payments + s->wire_dst] = -1;
		if (s->fx_pair >= 0)
			local[p->n_payments + p->n_wires + s->fx_pair] = -1;
	}
	ncols = n;
	for (j = 0; j < n; j++)
	{
		const SolverPayment *s = &p->payments[members[j]];
		int			k;

		local[members[j]] = j + 1;
		for (k = 0; k < 2; k++)
		{
			int			wi = k == 0 ? s->wire_src : s->wire_dst;

			if (wi >= 0 && local[p->n_payments + wi] < 0)
			{
				local[p->n_payments + wi] = ++ncols;
				n_wires_c++;
			}
		}
	}
	for (j = 0; j < n; j++)
	{
		const SolverPayment *s = &p->payments[members[j]];

		if (s->fx_pair >= 0 && local[p->n_payments + p->n_wires + s->fx_pair] < 0)
		{
			local[p->n_payments + p->n_wires + s->fx_pair] = ++ncols;
			n_fx_c++;
		}
	}

	w->lp = lp = glp_create_prob();
	glp_set_obj_dir(lp, GLP_MIN);
	glp_add_cols(lp, ncols);
	for (j = 0; j < n; j++)
	{
		const SolverPayment *s = &p->payments[members[j]];

		glp_set_col_bnds(lp, j + 1, GLP_DB, 0.0, 1.0);
		glp_set_obj_coef(lp, j + 1, -s->penalty);
		constant += s->penalty;
		if (mip)
			glp_set_col_kind(lp, j + 1, GLP_BV);
	}
	/* the constant keeps the objective >= 0, so the relative gap means something */
	glp_set_obj_coef(lp, 0, constant);
	for (j = 0; j < n; j++)
	{
		const SolverPayment *s = &p->payments[members[j]];
		int			k;

		for (k = 0; k < 2; k++)
		{
			int			wi = k == 0 ? s->wire_src : s->wire_dst;

			if (wi < 0)
				continue;
			glp_set_col_bnds(lp, local[p->n_payments + wi], GLP_DB, 0.0, 1.0);
			glp_set_obj_coef(lp, local[p->n_payments + wi], p->wire_fee[wi]);
			if (mip)
				glp_set_col_kind(lp, local[p->n_payments + wi], GLP_BV);
		}
		if (s->fx_pair >= 0)
		{
			int			c = local[p->n_payments + p->n_wires + s->fx_pair];

			glp_set_col_bnds(lp, c, GLP_LO, 0.0, 0.0);
			glp_set_obj_coef(lp, c, p->fx_spread[s->fx_pair]);
		}
	}

	/* account rows: available + credits - debits >= 0, scaled to unit size */
	for (j = 0; j < n; j++)
	{
		const SolverPayment *s = &p->payments[members[j]];

		if (p->accounts[s->src].constrained && local[s->src + acc_base] < 0)
			local[s->src + acc_base] = ++n_acc_c;
		if (p->accounts[s->dst].constrained && local[s->dst + acc_base] < 0)
			local[s->dst + acc_base] = ++n_acc_c;
	}
	if (n_acc_c > 0)
	{
		double	   *scale = calloc(n_acc_c + 1, sizeof(double));
		int		  **rowidx = calloc(n_acc_c + 1, sizeof(int *));
		double	  **rowval = calloc(n_acc_c + 1, sizeof(double *));
		int		   *rowlen = calloc(n_acc_c + 1, sizeof(int));
		int		   *rowcap = calloc(n_acc_c + 1, sizeof(int));
		bool		ok = scale && rowidx && rowval && rowlen && rowcap;

		for (j = 0; ok && j < n; j++)
		{
			const SolverPayment *s = &p->payments[members[j]];
			int			k;

			for (k = 0; k < 2; k++)
			{
				int			a = k == 0 ? s->src : s->dst;
				int			r = local[a + acc_base];
				double		coef = k == 0 ? -(double) s->debit : (double) s->credit;

				if (r <= 0)
					continue;
				if (rowlen[r] == rowcap[r])
				{
					int			cap = rowcap[r] ? 2 * rowcap[r] : 8;
					int		   *ni = realloc(rowidx[r], sizeof(int) * (cap + 1));
					double	   *nv;

					if (ni == NULL)
					{
						ok = false;
						break;
					}
					rowidx[r] = ni;
					nv = realloc(rowval[r], sizeof(double) * (cap + 1));
					if (nv == NULL)
					{
						ok = false;
						break;
					}
					rowval[r] = nv;
					rowcap[r] = cap;
				}
				rowlen[r]++;
				rowidx[r][rowlen[r]] = j + 1;
				rowval[r][rowlen[r]] = coef;
				if (fabs(coef) > scale[r])
					scale[r] = fabs(coef);
			}
		}
		if (ok)
		{
			row = glp_add_rows(lp, n_acc_c);
			for (j = 0; j < n; j++)
			{
				int			k;

				for (k = 0; k < 2; k++)
				{
					const SolverPayment *s = &p->payments[members[j]];
					int			a = k == 0 ? s->src : s->dst;
					int			r = local[a + acc_base];
					int			t;

					if (r <= 0)
						continue;
					for (t = 1; t <= rowlen[r]; t++)
						rowval[r][t] /= scale[r];
					glp_set_row_bnds(lp, row + r - 1, GLP_LO,
									 -(double) p->accounts[a].available / scale[r], 0.0);
					glp_set_mat_row(lp, row + r - 1, rowlen[r], rowidx[r], rowval[r]);
					local[a + acc_base] = 0;	/* done */
				}
			}
		}
		for (j = 0; j <= n_acc_c; j++)
		{
			if (rowidx)
				free(rowidx[j]);
			if (rowval)
				free(rowval[j]);
		}
		free(scale);
		free(rowidx);
		free(rowval);
		free(rowlen);
		free(rowcap);
		if (!ok)
			return 1;
	}

	/* wire rows */
	if (mip)
	{
		for (j = 0; j < n; j++)
		{
			const SolverPayment *s = &p->payments[members[j]];
			int			k;

			for (k = 0; k < 2; k++)
			{
				int			wi = k == 0 ? s->wire_src : s->wire_dst;

				if (wi < 0)
					continue;
				row = glp_add_rows(lp, 1);
				w->idx[1] = j + 1;
				w->val[1] = 1.0;
				w->idx[2] = local[p->n_payments + wi];
				w->val[2] = -1.0;
				glp_set_row_bnds(lp, row, GLP_UP, 0.0, 0.0);
				glp_set_mat_row(lp, row, 2, w->idx, w->val);
			}
		}
	}
	else
	{
		/* aggregated: sum of x_i over the wire's payments <= count * y_w */
		int			wi;

		for (wi = 0; wi < p->n_wires; wi++)
			w->wire_use[wi] = 0;
		for (j = 0; j < n; j++)
		{
			const SolverPayment *s = &p->payments[members[j]];

			if (s->wire_src >= 0)
				w->wire_use[s->wire_src]++;
			if (s->wire_dst >= 0 && s->wire_dst != s->wire_src)
				w->wire_use[s->wire_dst]++;
		}
		for (wi = 0; wi < p->n_wires; wi++)
		{
			int			len = 0;

			if (w->wire_use[wi] == 0)
				continue;
			for (j = 0; j < n; j++)
			{
				const SolverPayment *s = &p->payments[members[j]];

				if (s->wire_src == wi || s->wire_dst == wi)
				{
					len++;
					w->idx[len] = j + 1;
					w->val[len] = 1.0;
				}
			}
			len++;
			w->idx[len] = local[p->n_payments + wi];
			w->val[len] = -(double) w->wire_use[wi];
			row = glp_add_rows(lp, 1);
			glp_set_row_bnds(lp, row, GLP_UP, 0.0, 0.0);
			glp_set_mat_row(lp, row, len, w->idx, w->val);
		}
	}

	/* FX rows: z_k >= +net and z_k >= -net */
	if (n_fx_c > 0)
	{
		int			k;

		for (k = 0; k < p->n_fx_pairs; k++)
		{
			int			c = -1;
			int			len = 0;
			int			sign;

			for (j = 0; j < n; j++)
			{
				const SolverPayment *s = &p->payments[members[j]];

				if (s->fx_pair == k)
				{
					c = local[p->n_payments + p->n_wires + k];
					break;
				}
			}
			if (c < 0)
				continue;
			for (sign = -1; sign <= 1; sign += 2)
			{
				len = 0;
				for (j = 0; j < n; j++)
				{
					const SolverPayment *s = &p->payments[members[j]];

					if (s->fx_pair == k)
					{
						len++;
						w->idx[len] = j + 1;
						w->val[len] = sign * s->fx_value;
					}
				}
				len++;
				w->idx[len] = c;
				w->val[len] = 1.0;
				row = glp_add_rows(lp, 1);
				glp_set_row_bnds(lp, row, GLP_LO, 0.0, 0.0);
				glp_set_mat_row(lp, row, len, w->idx, w->val);
			}
		}
	}

	remaining = w->deadline_ms > 0 ? w->deadline_ms - now_ms() : -1;
	if (w->deadline_ms > 0 && remaining < 1)
		return 1;
	glp_scale_prob(lp, GLP_SF_AUTO);
	glp_init_smcp(&smcp);
	smcp.msg_lev = GLP_MSG_OFF;
	smcp.presolve = GLP_OFF;
	/* dual simplex: few rows, many columns; measured 5-8x faster than primal here */
	smcp.meth = GLP_DUALP;
	if (remaining > 0)
		smcp.tm_lim = (int) remaining;
	ret = glp_simplex(lp, &smcp);
	if (ret != 0 || glp_get_status(lp) != GLP_OPT)
		return 1;
	*lp_obj = glp_get_obj_val(lp);
	*lp_weight = 0;
	for (j = 0; j < n; j++)
	{
		double		x = glp_get_col_prim(lp, j + 1);

		*lp_weight += p->payments[members[j]].penalty * x;
		out[members[j]] = x >= 1.0 - 1e-7;
	}

	if (mip)
	{
		glp_iocp	iocp;
		MipInfo		mi;

		remaining = w->deadline_ms > 0 ? w->deadline_ms - now_ms() : -1;
		if (w->deadline_ms > 0 && remaining < 1)
			return 1;
		glp_init_iocp(&iocp);
		iocp.msg_lev = GLP_MSG_OFF;
		iocp.mip_gap = p->mip_gap;
		if (remaining > 0)
			iocp.tm_lim = (int) remaining;
		mi.w = w;
		mi.members = members;
		mi.n = n;
		mi.incumbent = incumbent;
		mi.x_col0 = 1;
		iocp.cb_func = mip_callback;
		iocp.cb_info = &mi;
		ret = glp_intopt(lp, &iocp);
		if (glp_mip_status(lp) != GLP_OPT && glp_mip_status(lp) != GLP_FEAS)
			return 1;
		for (j = 0; j < n; j++)
			out[members[j]] = glp_mip_col_val(lp, j + 1) > 0.5;
		*proved = (ret == 0 && glp_mip_status(lp) == GLP_OPT);
		glp_delete_prob(lp);
		w->lp = NULL;
		return 0;
	}
	glp_delete_prob(lp);
	w->lp = NULL;
	return 0;
}

int
settle_check_selection(const SolverProblem *problem, const bool *settle)
{
	wide	   *bal;
	int			i;
	int			bad = -1;

	bal = malloc(sizeof(wide) * (problem->n_accounts + 1));
	if (bal == NULL)
		return 0;				/* cannot check: treat as a violation */
	for (i = 0; i < problem->n_accounts; i++)
		bal[i] = problem->accounts[i].available;
	for (i = 0; i < problem->n_payments; i++)
	{
		if (!settle[i])
			continue;
		bal[problem->payments[i].src] -= problem->payments[i].debit;
		bal[problem->payments[i].dst] += problem->payments[i].credit;
	}
	for (i = 0; i < problem->n_accounts; i++)
		if (problem->accounts[i].constrained && bal[i] < 0)
		{
			bad = i;
			break;
		}
	free(bal);
	return bad;
}

/* Check the problem's arrays; returns a message or NULL. */
static const char *
invalid_input(const SolverProblem *p)
{
	int			i;

	if (p->n_payments < 0 || p->n_accounts < 0 || p->n_wires < 0 || p->n_fx_pairs < 0)
		return "negative size";
	if ((p->n_payments > 0 && (!p->payments || !p->accounts)) ||
		(p->n_wires > 0 && !p->wire_fee) || (p->n_fx_pairs > 0 && !p->fx_spread))
		return "missing array";
	for (i = 0; i < p->n_wires; i++)
		if (!(p->wire_fee[i] >= 0) || isinf(p->wire_fee[i]))
			return "wire fee negative or not finite";
	for (i = 0; i < p->n_fx_pairs; i++)
		if (!(p->fx_spread[i] >= 0) || isinf(p->fx_spread[i]))
			return "fx spread negative or not finite";
	for (i = 0; i < p->n_payments; i++)
	{
		const SolverPayment *s = &p->payments[i];

		if (s->src < 0 || s->src >= p->n_accounts || s->dst < 0 || s->dst >= p->n_accounts)
			return "payment account index out of range";
		if (s->wire_src >= p->n_wires || s->wire_dst >= p->n_wires ||
			s->wire_src < -1 || s->wire_dst < -1)
			return "payment wire index out of range";
		if (s->fx_pair >= p->n_fx_pairs || s->fx_pair < -1)
			return "payment fx pair index out of range";
		if (s->debit <= 0 || s->credit <= 0)
			return "payment amount not positive";
		if (!(s->penalty > 0) || isinf(s->penalty) || isnan(s->fx_value) || isinf(s->fx_value))
			return "payment penalty not positive and finite";
	}
	return NULL;
}

/* Allocate the working arrays; false on out of memory. */
static bool
alloc_work(Work *w)
{
	const SolverProblem *p = w->p;
	int			n = p->n_payments;
	int			scratch = n + p->n_wires + p->n_fx_pairs + p->n_accounts + 3;
	int			rows = 2 * n + p->n_wires + p->n_accounts + 3;

	w->local = malloc(sizeof(int) * scratch);
	w->density = malloc(sizeof(double) * (n + 1));
	w->balance = malloc(sizeof(wide) * (p->n_accounts + 1));
	w->wire_use = malloc(sizeof(int) * (p->n_wires + 1));
	w->fx_net = malloc(sizeof(double) * (p->n_fx_pairs + 1));
	w->cand = calloc(n + 1, sizeof(bool));
	w->best = calloc(n + 1, sizeof(bool));
	w->lp_x = malloc(sizeof(double) * (n + 1));
	w->idx = malloc(sizeof(int) * (rows + n + 1));
	w->val = malloc(sizeof(double) * (rows + n + p->n_wires + 1));
	w->sorted = malloc(sizeof(int) * (n + 1));
	w->out_first = malloc(sizeof(int) * (p->n_accounts + 2));
	w->out_next = malloc(sizeof(int) * (p->n_accounts + 2));
	w->out_list = malloc(sizeof(int) * (n + 1));
	return w->out_first && w->out_next && w->out_list && w->local && w->density && w->balance && w->wire_use && w->fx_net &&
		w->cand && w->best && w->lp_x && w->idx && w->val && w->sorted;
}

void
settle_solve_greedy(const SolverProblem *problem, bool *settle)
{
	Work		w;
	int			i;

	memset(&w, 0, sizeof(w));
	w.p = problem;
	memset(settle, 0, sizeof(bool) * problem->n_payments);
	if (invalid_input(problem) || !alloc_work(&w) || !decompose(&w))
	{
		free_work(&w);
		return;
	}
	for (i = 0; i < problem->n_payments; i++)
		w.density[i] = problem->payments[i].penalty / (double) problem->payments[i].debit;
	for (i = 0; i < w.n_comps; i++)
		heuristic(&w, settle, w.order + w.comp_start[i], w.comp_start[i + 1] - w.comp_start[i]);
	free_work(&w);
}

SolverStatus
settle_solve(const SolverProblem *problem, SolverResult *result)
{
	Work	   *w = calloc(1, sizeof(Work));
	double		start = now_ms();
	const char *bad;
	int			c;
	int			i;
	volatile bool all_proved = true;
	volatile bool any_heuristic = false;
	volatile bool any_lp = false;
	volatile int mip_done = 0;

	result->objective = 0;
	result->lp_bound = 0;
	result->settled_weight = 0;
	result->lp_weight_bound = 0;
	result->components = 0;
	result->mip_components = 0;
	result->method[0] = '\0';
	result->message[0] = '\0';
	if (problem->n_payments > 0)
		memset(result->settle, 0, sizeof(bool) * problem->n_payments);

	if (w == NULL)
	{
		snprintf(result->message, sizeof(result->message), "out of memory");
		return result->status = SOLVER_ERROR;
	}
	w->p = problem;
	bad = invalid_input(problem);
	if (bad)
	{
		snprintf(result->message, sizeof(result->message), "invalid input: %s", bad);
		free(w);
		return result->status = SOLVER_ERROR;
	}
	if (!alloc_work(w) || !decompose(w))
	{
		snprintf(result->message, sizeof(result->message), "out of memory");
		free_work(w);
		free(w);
		return result->status = SOLVER_ERROR;
	}
	w->deadline_ms = problem->time_limit_ms > 0 ? start + problem->time_limit_ms : 0;
	for (i = 0; i < problem->n_payments; i++)
		w->density[i] = problem->payments[i].penalty / (double) problem->payments[i].debit;
	result->components = w->n_comps;

	/* GLPK: no terminal output, errors come back here instead of abort() */
	glp_term_hook(glpk_term_hook, (void *) problem);
	glp_term_out(GLP_OFF);
	glp_error_hook(glpk_error_hook, w);
	if (setjmp(w->glpk_jump) != 0)
	{
		/* GLPK failed inside: its whole environment goes, H settles */
		w->lp = NULL;
		glp_free_env();
		snprintf(result->message, sizeof(result->message), "GLPK internal error; greedy heuristic used");
		if (problem->log)
			problem->log(problem->log_arg, result->message);
		for (c = 0; c < w->n_comps; c++)
			heuristic(w, result->settle, w->order + w->comp_start[c], w->comp_start[c + 1] - w->comp_start[c]);
		strcpy(result->method, "greedy (GLPK error)");
		result->lp_bound = -1;
		result->lp_weight_bound = -1;
		any_heuristic = true;
		all_proved = false;
		goto finish;
	}

	for (c = 0; c < w->n_comps; c++)
	{
		const int  *members = w->order + w->comp_start[c];
		int			n = w->comp_start[c + 1] - w->comp_start[c];
		double		best_obj;
		double		lp_obj = 0,
					lp_weight = 0;
		bool		proved = false;
		bool		got_lp = false;
		int			j;

		if (problem->interrupted && problem->interrupted(problem->interrupted_arg))
		{
			memset(result->settle, 0, sizeof(bool) * problem->n_payments);
			free_work(w);
			free(w);
			glp_error_hook(NULL, NULL);
			result->solve_ms = now_ms() - start;
			strcpy(result->method, "interrupted");
			return result->status = SOLVER_INTERRUPTED;
		}

		/* H */
		heuristic(w, w->best, members, n);
		best_obj = objective(w, w->best, members, n);

		/* L */
		if (!out_of_time(w))
		{
			for (j = 0; j < n; j++)
				w->cand[members[j]] = false;
			if (solve_lp(w, members, n, false, NULL, w->cand, &lp_obj, &lp_weight, &proved) == 0)
			{
				double		obj;

				got_lp = true;
				any_lp = true;
				repair(w, w->cand, members, n);
				refill(w, w->cand, members, n);
				obj = objective(w, w->cand, members, n);
				if (obj < best_obj)
				{
					best_obj = obj;
					for (j = 0; j < n; j++)
						w->best[members[j]] = w->cand[members[j]];
				}
			}
		}

		/* M */
		proved = false;
		if (got_lp && n <= problem->mip_max_payments && !out_of_time(w) &&
			best_obj > lp_obj + 1e-9 * (1 + fabs(lp_obj)))
		{
			double		mip_obj_lp,
						mip_w;

			for (j = 0; j < n; j++)
				w->cand[members[j]] = false;
			if (solve_lp(w, members, n, true, w->best, w->cand, &mip_obj_lp, &mip_w, &proved) == 0 &&
				settle_check_selection(problem, w->cand) < 0)
			{
				double		obj = objective(w, w->cand, members, n);

				mip_done++;
				if (obj < best_obj)
				{
					best_obj = obj;
					for (j = 0; j < n; j++)
						w->best[members[j]] = w->cand[members[j]];
				}
			}
		}
		else if (got_lp && best_obj <= lp_obj + 1e-9 * (1 + fabs(lp_obj)))
			proved = true;		/* rounding met the LP bound */

		if (!got_lp)
		{
			any_heuristic = true;
			lp_obj = -1;
		}
		if (!proved)
			all_proved = false;
		if (got_lp)
		{
			result->lp_bound += lp_obj;
			result->lp_weight_bound += lp_weight;
		}
		for (j = 0; j < n; j++)
			result->settle[members[j]] = w->best[members[j]];
		result->objective += best_obj;
	}
	snprintf(result->method, sizeof(result->method), "%s%s",
			 any_lp ? "lp+round+repair" : "greedy",
			 mip_done ? "+mip" : "");
	if (any_heuristic)
	{
		result->lp_bound = -1;
		result->lp_weight_bound = -1;
		if (any_lp)
			snprintf(result->method, sizeof(result->method), "lp+greedy (time limit)");
		else
			snprintf(result->method, sizeof(result->method), "greedy (time limit)");
	}

finish:
	glp_error_hook(NULL, NULL);
	result->mip_components = mip_done;
	result->settled_weight = 0;
	result->objective = 0;
	for (c = 0; c < w->n_comps; c++)
		result->objective += objective(w, result->settle, w->order + w->comp_start[c],
									   w->comp_start[c + 1] - w->comp_start[c]);
	for (i = 0; i < problem->n_payments; i++)
		if (result->settle[i])
			result->settled_weight += problem->payments[i].penalty;
	free_work(w);
	free(w);
	result->solve_ms = now_ms() - start;
	if (settle_check_selection(problem, result->settle) >= 0)
	{
		/* cannot happen: every path repairs exactly; refuse rather than trust */
		memset(result->settle, 0, sizeof(bool) * problem->n_payments);
		snprintf(result->message, sizeof(result->message), "selection failed the exact limit check");
		return result->status = SOLVER_ERROR;
	}
	if (any_heuristic)
		return result->status = SOLVER_HEURISTIC;
	return result->status = all_proved ? SOLVER_OPTIMAL : SOLVER_FEASIBLE;
}
