/*
 * solver_work.c -- the solver's work memory, clocks, decomposition into
 * independent components, and the exact accounting every stage shares:
 * balances, wire use, FX nets and the model's objective.
 *
 * Plain C11, no PostgreSQL headers (solver_int.h).
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "solver_int.h"

/*
 * Tests only (solver.h): 1 makes an invalid GLPK call to exercise the error
 * path; 2 selects every payment just before the final exact check.  Here,
 * with the work every stage shares, so that no stage reaches up for it.
 */
int			settle_solver_fault_injection = 0;

static int	uf_find(int *parent, int x);
static void uf_union(int *parent, int a, int b);
static void sort_by_key(int *idx, int n, const double *key, int *tmp);
static void build_account_lists(Work *w, const int *members, int n, int end,
								int *first, int *last, int *list);

/* Milliseconds on the monotonic clock. */
double
settle_solver_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

/* True when the whole solve's time limit has passed. */
bool
settle_solver_out_of_time(const Work *w)
{
	return w->deadline_ms > 0 && settle_solver_now_ms() >= w->deadline_ms;
}

/* True once the caller's interrupted() callback has said stop (sticky). */
bool
settle_solver_stop_requested(Work *w)
{
	if (!w->interrupted && w->p->interrupted && w->p->interrupted(w->p->interrupted_arg))
		w->interrupted = true;
	return w->interrupted;
}

/* True when the local search's share of the time is used up, or on stop. */
bool
settle_solver_out_of_ls_time(Work *w)
{
	return settle_solver_stop_requested(w) || settle_solver_out_of_time(w) ||
		(w->ls_deadline_ms > 0 && settle_solver_now_ms() >= w->ls_deadline_ms);
}

/* Allocate the working arrays; false on out of memory. */
bool
settle_solver_alloc_work(Work *w)
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
	w->saved = calloc(n + 1, sizeof(bool));
	w->trial = calloc(n + 1, sizeof(bool));
	w->lpx = calloc(n + 1, sizeof(double));
	w->idx = malloc(sizeof(int) * (rows + n + 1));
	w->val = malloc(sizeof(double) * (rows + n + p->n_wires + 1));
	w->sorted = malloc(sizeof(int) * (n + 1));
	w->by_density = malloc(sizeof(int) * (n + 1));
	w->by_penalty = malloc(sizeof(int) * (n + 1));
	w->out_first = malloc(sizeof(int) * (p->n_accounts + 2));
	w->out_list = malloc(sizeof(int) * (n + 1));
	w->out_end = malloc(sizeof(int) * (p->n_accounts + 2));
	w->out_count = malloc(sizeof(int) * (p->n_accounts + 2));
	w->in_first = malloc(sizeof(int) * (p->n_accounts + 2));
	w->in_end = malloc(sizeof(int) * (p->n_accounts + 2));
	w->in_list = malloc(sizeof(int) * (n + 1));
	w->tmp = malloc(sizeof(int) * (n + 1));
	w->tmp2 = malloc(sizeof(int) * (4 * n + 1));
	w->stack = malloc(sizeof(int) * (2 * n + p->n_accounts + CHAIN_MAX + 1));
	w->chained = calloc(n + 1, sizeof(bool));
	w->snap = malloc(sizeof(wide) * (p->n_accounts + 1));
	w->dirty = calloc(p->n_accounts + 1, sizeof(bool));
	w->mark = calloc(p->n_accounts + 1, sizeof(bool));
	w->key = malloc(sizeof(double) * (n + 1));
	w->never = calloc(n + 1, sizeof(bool));
	w->lambda = calloc(p->n_accounts + 1, sizeof(double));
	w->rc = calloc(n + 1, sizeof(double));
	if (!w->never || !w->lambda || !w->rc)
		return false;
	w->ar_start = malloc(sizeof(int) * (p->n_accounts + 3));
	w->wire_start = malloc(sizeof(int) * (p->n_wires + 1));
	w->wire_fill = malloc(sizeof(int) * (p->n_wires + 1));
	w->wire_list = malloc(sizeof(int) * (2 * n + 1));
	if (!w->wire_start || !w->wire_fill || !w->wire_list)
		return false;
	w->ar_fill = malloc(sizeof(int) * (p->n_accounts + 3));
	w->ar_scale = malloc(sizeof(double) * (p->n_accounts + 3));
	w->ar_idx = malloc(sizeof(int) * (2 * n + 2));
	w->ar_val = malloc(sizeof(double) * (2 * n + 2));
	if (!w->ar_start || !w->ar_fill || !w->ar_scale || !w->ar_idx || !w->ar_val)
		return false;
	return w->in_first && w->in_end && w->in_list && w->out_end && w->out_count && w->tmp && w->tmp2 && w->stack && w->mark && w->key && w->chained && w->snap && w->dirty &&
		w->out_first && w->out_list && w->local && w->density && w->balance && w->wire_use && w->fx_net &&
		w->cand && w->best && w->saved && w->trial && w->lpx && w->idx && w->val && w->sorted &&
		w->by_density && w->by_penalty;
}

/* Free everything a Work holds (safe on partly allocated ones). */
void
settle_solver_free_work(Work *w)
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
	free(w->never);
	free(w->lambda);
	free(w->rc);
	free(w->balance);
	free(w->wire_use);
	free(w->fx_net);
	free(w->cand);
	free(w->best);
	free(w->saved);
	free(w->trial);
	free(w->mip_x);
	free(w->lpx);
	free(w->idx);
	free(w->val);
	free(w->sorted);
	free(w->by_density);
	free(w->by_penalty);
	free(w->out_first);
	free(w->out_list);
	free(w->out_end);
	free(w->out_count);
	free(w->in_first);
	free(w->in_end);
	free(w->in_list);
	free(w->tmp);
	free(w->tmp2);
	free(w->stack);
	free(w->mark);
	free(w->chained);
	free(w->snap);
	free(w->dirty);
	free(w->key);
	free(w->ar_start);
	free(w->wire_start);
	free(w->wire_fill);
	free(w->wire_list);
	free(w->ar_fill);
	free(w->ar_scale);
	free(w->ar_idx);
	free(w->ar_val);
	free(w->next_member);
	free(w->unit_rep);
	free(w->unit_fx);
	free(w->unit_fx_pair);
	free(w->unit_credit);
	free(w->unit_before);
}

/* Union-find root of x, with path halving. */
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

/* Union-find: join the sets of a and b (smaller root wins). */
static void
uf_union(int *parent, int a, int b)
{
	a = uf_find(parent, a);
	b = uf_find(parent, b);
	if (a != b)
		parent[a < b ? b : a] = a < b ? a : b;
}

/*
 * Group payments into independent components: two payments interact only
 * through a shared account, wire or FX pair (union-find over those).
 */
bool
settle_solver_decompose(Work *w)
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
		/* a linked group is one unit: its members share a component */
		if (is_linked(w, i))
			uf_union(w->parent, s->src, p->payments[w->unit_rep[i]].src);
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

/* Sort idx[0..n) by key[idx] ascending, ties by index (merge sort, stable). */
static void
sort_by_key(int *idx, int n, const double *key, int *tmp)
{
	int			width;

	for (width = 1; width < n; width *= 2)
	{
		int			lo;

		for (lo = 0; lo < n; lo += 2 * width)
		{
			int			mid = lo + width < n ? lo + width : n;
			int			hi = lo + 2 * width < n ? lo + 2 * width : n;
			int			a = lo,
						b = mid,
						k = lo;

			while (a < mid && b < hi)
			{
				double		ka = key[idx[a]],
							kb = key[idx[b]];

				if (ka < kb || (ka == kb && idx[a] <= idx[b]))
					tmp[k++] = idx[a++];
				else
					tmp[k++] = idx[b++];
			}
			while (a < mid)
				tmp[k++] = idx[a++];
			while (b < hi)
				tmp[k++] = idx[b++];
		}
		memcpy(idx, tmp, sizeof(int) * n);
	}
}

/*
 * The component's fixed orders and per-account lists, built once per
 * component (repair, refill and improve only read them): by_density,
 * by_penalty, each account's outgoing and incoming payments.
 */
void
settle_solver_build_lists(Work *w, const int *members, int n)
{
	const SolverProblem *p = w->p;
	int			j;

	memcpy(w->by_density, members, sizeof(int) * n);
	sort_by_key(w->by_density, n, w->density, w->tmp);
	memcpy(w->by_penalty, members, sizeof(int) * n);
	for (j = 0; j < n; j++)
		w->key[members[j]] = -p->payments[members[j]].penalty;
	sort_by_key(w->by_penalty, n, w->key, w->tmp);
	build_account_lists(w, members, n, 0, w->out_first, w->out_end, w->out_list);
	build_account_lists(w, members, n, 1, w->in_first, w->in_end, w->in_list);
}

/*
 * Probing (as an exact solver's preprocessing does): a payment whose payer
 * stays below its floor even if every credit that can still arrive arrives
 * and nothing else leaves can settle in no selection; the credit it will
 * never bring may make others impossible in turn (to the fixpoint, which
 * does not depend on the order).  A worklist of accounts whose possible
 * inflow fell: each payment is marked at most once, an account is looked
 * at again only when one of its credits is lost.  Into w->never; needs the
 * component's account lists (settle_solver_build_lists); w->snap is scratch.
 */
void
settle_solver_probe(Work *w, const int *members, int n)
{
	const SolverProblem *p = w->p;
	wide	   *cap = w->snap;
	int		   *stack = w->stack;
	int			top = 0;
	int			j;

	for (j = 0; j < n; j++)
	{
		const SolverPayment *s = &p->payments[members[j]];

		w->never[members[j]] = false;
		cap[s->src] = p->accounts[s->src].available;
		cap[s->dst] = p->accounts[s->dst].available;
	}
	for (j = 0; j < n; j++)
	{
		const SolverPayment *s = &p->payments[members[j]];

		if (s->src != s->dst)
			cap[s->dst] += s->credit;
		if (!w->mark[s->src])
		{
			w->mark[s->src] = true;
			stack[top++] = s->src;
		}
	}
	while (top > 0)
	{
		int			a = stack[--top];
		int			t;

		w->mark[a] = false;
		if (!p->accounts[a].constrained)
			continue;
		for (t = w->out_first[a]; t < w->out_end[a]; t++)
		{
			int			i = w->out_list[t];
			const SolverPayment *s = &p->payments[i];

			int			m = i;

			if (w->never[i] || s->src == s->dst || cap[a] - s->debit >= floor_of(p, a))
				continue;
			/* a linked group settles whole: none of its members can settle (issue #27) */
			do
			{
				const SolverPayment *ms = &p->payments[m];

				if (!w->never[m])
				{
					w->never[m] = true;
					if (ms->src != ms->dst)
						cap[ms->dst] -= ms->credit;
					if (!w->mark[ms->dst])
					{
						w->mark[ms->dst] = true;
						stack[top++] = ms->dst;
					}
				}
				m = w->next_member ? w->next_member[m] : i;
			} while (m != i);
		}
	}
}

/*
 * After the LP: the local search tries payments by the LP's reduced value
 * (w->rc, largest first; those the LP left fractional have 0 and come by
 * penalty), instead of by penalty alone.
 */
void
settle_solver_order_by_reduced_value(Work *w, const int *members, int n)
{
	const SolverProblem *p = w->p;
	int			j;

	memcpy(w->by_penalty, members, sizeof(int) * n);
	for (j = 0; j < n; j++)
		w->key[members[j]] = -(w->rc[members[j]] + 1e-6 * p->payments[members[j]].penalty);
	sort_by_key(w->by_penalty, n, w->key, w->tmp);
}

/*
 * Per account, its outgoing payments (end 0, least penalty per unit of debit
 * first) or its incoming payments (end 1, most first), in CSR: the account's
 * payments are list[first[a] .. end[a]).
 */
static void
build_account_lists(Work *w, const int *members, int n, int end, int *first, int *last, int *list)
{
	const SolverProblem *p = w->p;
	int		   *count = w->out_count;
	int			off = 0;
	int			j;

	for (j = 0; j < n; j++)
	{
		const SolverPayment *s = &p->payments[members[j]];

		first[s->src] = last[s->src] = 0;
		first[s->dst] = last[s->dst] = 0;
		count[payment_account(s, end)] = 0;
	}
	for (j = 0; j < n; j++)
		count[payment_account(&p->payments[members[j]], end)]++;
	for (j = 0; j < n; j++)
	{
		int			a = payment_account(&p->payments[members[j]], end);

		if (count[a] > 0)
		{
			first[a] = last[a] = off;
			off += count[a];
			count[a] = 0;
		}
	}
	for (j = 0; j < n; j++)
	{
		int			i = w->by_density[end == 0 ? j : n - 1 - j];
		int			a = payment_account(&p->payments[i], end);

		list[last[a]++] = i;
	}
}

/* Balances of a component's accounts for a selection (exact). */
void
settle_solver_compute_balances(Work *w, const bool *sel, const int *members, int n)
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

/* Wire use counts and FX nets of a component's selection. */
void
settle_solver_compute_usage(Work *w, const bool *sel, const int *members, int n)
{
	const SolverProblem *p = w->p;
	int			j;

	for (j = 0; j < n; j++)
	{
		const SolverPayment *s = &p->payments[members[j]];

		if (s->wire_src >= 0)
			w->wire_use[s->wire_src] = 0;
		if (s->wire_dst >= 0)
			w->wire_use[s->wire_dst] = 0;
		if (s->fx_pair >= 0)
			w->fx_net[s->fx_pair] = 0;
	}
	for (j = 0; j < n; j++)
		if (sel[members[j]])
			use_payment(w, members[j], 1);
}

/*
 * The model's objective for a selection of a component (others ignored):
 * penalties of the unselected, each used wire's fee once, each FX pair's
 * spread on its net.
 */
double
settle_solver_objective(const Work *w, const bool *sel, const int *members, int n)
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
