/*
 * solver_units.c -- linked groups in the model (issue #27): a group of
 * linked payments is one unit, selected and dropped whole by every stage.
 *
 * The LP and the MIP hold x_i = x_j within a group (solver_glpk.c); the
 * stages that change a selection one payment at a time (repair, refill,
 * the local search, kicks) go through the functions here, so that a group
 * is never split, and a candidate that comes from elsewhere (an LP
 * rounding, a kick) is made whole first (settle_solver_whole_groups: a group
 * selected in part is dropped).  settle_solver_complete() then adds, to a
 * fixpoint, every unselected payment or group that still fits and pays
 * for itself: the selection a component returns is maximal.
 * Without groups (problem->group NULL) w->next_member is NULL and none of
 * this changes what the solver does, except the final completion.
 * Plain C11, no PostgreSQL headers (solver_int.h).
 */
#include <stdlib.h>

#include "solver_int.h"

/* Repair's add into a short account tries at most this many groups per step. */
#define UNIT_TRY_MAX 32

/*
 * The members of each group as a ring (w->next_member), and each payment's
 * unit (w->unit_rep: its group's first member, or itself).  False on out
 * of memory.
 */
bool
settle_solver_build_units(Work *w)
{
	const SolverProblem *p = w->p;
	int		   *first;
	int		   *last;
	int			i;
	int			g;

	w->next_member = NULL;
	if (p->group == NULL || p->n_groups <= 0)
		return true;
	w->next_member = malloc(sizeof(int) * (p->n_payments + 1));
	w->unit_rep = malloc(sizeof(int) * (p->n_payments + 1));
	w->unit_fx = malloc(sizeof(double) * (p->n_payments + 1));
	w->unit_fx_pair = malloc(sizeof(int) * (p->n_payments + 1));
	w->unit_credit = malloc(sizeof(wide) * (p->n_payments + 1));
	w->unit_before = malloc(sizeof(wide) * (2 * p->n_payments + 2));
	first = malloc(sizeof(int) * p->n_groups);
	last = malloc(sizeof(int) * p->n_groups);
	if (!w->next_member || !w->unit_rep || !w->unit_fx || !w->unit_fx_pair || !w->unit_credit ||
		!w->unit_before || !first || !last)
	{
		free(first);
		free(last);
		return false;
	}
	for (g = 0; g < p->n_groups; g++)
		first[g] = last[g] = -1;
	for (i = 0; i < p->n_payments; i++)
	{
		g = p->group[i];
		w->next_member[i] = i;
		w->unit_rep[i] = i;
		if (g < 0)
			continue;
		if (first[g] < 0)
			first[g] = i;
		else
			w->next_member[last[g]] = i;
		last[g] = i;
	}
	for (g = 0; g < p->n_groups; g++)
		if (first[g] >= 0)
			w->next_member[last[g]] = first[g];
	for (i = 0; i < p->n_payments; i++)
		if (p->group[i] >= 0)
			w->unit_rep[i] = first[p->group[i]];
	/* each group's credits summed, at its first member, then copied to the others */
	for (i = 0; i < p->n_payments; i++)
		w->unit_credit[i] = 0;
	for (i = 0; i < p->n_payments; i++)
		w->unit_credit[w->unit_rep[i]] += p->payments[i].credit;
	for (i = 0; i < p->n_payments; i++)
		w->unit_credit[i] = w->unit_credit[w->unit_rep[i]];
	free(first);
	free(last);
	return true;
}

/*
 * Select (on) or unselect every member of i's unit that is not so yet,
 * keeping balances, wire use and FX nets; each change is logged as repair
 * logs it (a drop as m, an add as -m - 1) when log is not NULL.
 */
void
settle_solver_unit_set(Work *w, bool *sel, int i, bool on, int *log, int *n_log)
{
	const SolverProblem *p = w->p;
	int			m = i;

	do
	{
		const SolverPayment *s = &p->payments[m];
		int			sign = on ? 1 : -1;

		if (sel[m] != on)
		{
			sel[m] = on;
			w->balance[s->src] -= sign * s->debit;
			w->balance[s->dst] += sign * s->credit;
			use_payment(w, m, sign);
			if (log)
				log[(*n_log)++] = on ? -(m + 1) : m;
		}
		m = w->next_member ? w->next_member[m] : i;
	} while (m != i);
}


/*
 * The fees of the wires i's unit would open and the spread it would add,
 * with the members' shared wires counted once; wire use and FX nets are
 * restored exactly (the nets saved, not recomputed).
 */
double
settle_solver_unit_marginal_cost(Work *w, int i)
{
	const SolverProblem *p = w->p;
	double		cost = 0;
	int			k = 0;
	int			m = i;

	if (!is_linked(w, i))
		return marginal_cost(w, i);
	do
	{
		const SolverPayment *s = &p->payments[m];

		w->effort += 2;			/* counted like the list entries repair scans */
		if (s->fx_pair >= 0)
		{
			w->unit_fx_pair[k] = s->fx_pair;
			w->unit_fx[k++] = w->fx_net[s->fx_pair];
		}
		cost += marginal_cost(w, m);
		use_payment(w, m, 1);
		m = w->next_member[m];
	} while (m != i);
	do
	{
		const SolverPayment *s = &p->payments[m];

		if (s->wire_src >= 0)
			w->wire_use[s->wire_src]--;
		if (s->wire_dst >= 0)
			w->wire_use[s->wire_dst]--;
		m = w->next_member[m];
	} while (m != i);
	/* newest first, so that a pair met twice ends at the value it had */
	while (k > 0)
	{
		k--;
		w->fx_net[w->unit_fx_pair[k]] = w->unit_fx[k];
	}
	return cost;
}

/*
 * Repair's add into short account a (pick_add in solver_repair.c), for the
 * linked payments into a among its first "end" incoming ones: the group of
 * the largest penalty that fits whole (settle_solver_unit_fits: a may stay short,
 * but gains) and pays for its marginal cost, if larger than best_value
 * (the best unlinked one, best, or -1).  Never a chain.
 */
int
settle_solver_unit_pick_add(Work *w, const bool *sel, int a, int end, int best, double best_value)
{
	int			tried = 0;
	int			t;

	for (t = w->in_first[a]; t < end && tried < UNIT_TRY_MAX; t++)
	{
		int			i = w->in_list[t];
		double		value;

		if (sel[i] || !is_linked(w, i) || w->p->payments[i].src == a)
			continue;
		value = solver_unit_penalty(w, i);
		if (best >= 0 && value <= best_value)
			continue;
		tried++;
		if (settle_solver_unit_fits(w, i, a) && value > settle_solver_unit_marginal_cost(w, i))
		{
			best = i;
			best_value = value;
		}
	}
	return best;
}

/*
 * Would adding i's members (all unselected) take no account below its limit
 * that it does not leave better off?  An account the group leaves lower must
 * end within its limit; one it leaves as it was or higher may stay short
 * (repair may be on its way to it).  Account "except" (>= 0: the short
 * account a repair adds into) must gain.  Balances are restored exactly.
 */
bool
settle_solver_unit_fits(Work *w, int i, int except)
{
	const SolverProblem *p = w->p;
	wide	   *before = w->unit_before;
	bool		ok = true;
	int			k = 0;
	int			m = i;

	/*
	 * First, reading only: a payer within its limit now that cannot pay its
	 * member even with every credit of the group ends lower and short (most
	 * groups that do not fit fail here, before any balance is touched).
	 */
	do
	{
		const SolverPayment *s = &p->payments[m];

		if (s->src != except && p->accounts[s->src].constrained && !is_short(w, s->src) &&
			w->balance[s->src] - s->debit + w->unit_credit[m] < floor_of(p, s->src))
			return false;
		m = w->next_member ? w->next_member[m] : i;
	} while (m != i);
	do
	{
		const SolverPayment *s = &p->payments[m];

		before[k++] = w->balance[s->src];
		before[k++] = w->balance[s->dst];
		m = w->next_member ? w->next_member[m] : i;
	} while (m != i);
	do
	{
		w->balance[p->payments[m].src] -= p->payments[m].debit;
		w->balance[p->payments[m].dst] += p->payments[m].credit;
		w->effort += 3;			/* counted like the list entries repair scans */
		m = w->next_member ? w->next_member[m] : i;
	} while (m != i);
	k = 0;
	do
	{
		const SolverPayment *s = &p->payments[m];

		if ((s->src != except && is_short(w, s->src) && w->balance[s->src] < before[k]) ||
			(s->dst != except && is_short(w, s->dst) && w->balance[s->dst] < before[k + 1]))
			ok = false;
		if ((s->src == except && w->balance[except] <= before[k]) ||
			(s->dst == except && w->balance[except] <= before[k + 1]))
			ok = false;			/* the short account must gain */
		k += 2;
		m = w->next_member ? w->next_member[m] : i;
	} while (ok && m != i);
	m = i;
	do
	{
		w->balance[p->payments[m].src] += p->payments[m].debit;
		w->balance[p->payments[m].dst] -= p->payments[m].credit;
		m = w->next_member ? w->next_member[m] : i;
	} while (m != i);
	return ok;
}

/*
 * All or nothing on a candidate that did not come from the unit-wise
 * stages (an LP rounding, a kick, the MIP): a group selected in part is
 * unselected whole.  Balances are not kept: the caller repairs.
 */
void
settle_solver_whole_groups(const Work *w, bool *sel, const int *members, int n)
{
	int			j;

	if (w->next_member == NULL)
		return;
	for (j = 0; j < n; j++)
	{
		int			i = members[j];
		int			m;
		bool		whole = true;

		if (w->unit_rep[i] != i || !is_linked(w, i))
			continue;
		m = i;
		do
		{
			whole = whole && sel[m];
			m = w->next_member[m];
		} while (m != i);
		if (whole)
			continue;
		do
		{
			sel[m] = false;
			m = w->next_member[m];
		} while (m != i);
	}
}

/*
 * Maximality: add every unselected payment or group that fits within every
 * limit and whose penalty exceeds its marginal cost, densest first, until
 * a pass adds nothing (refill stops after a few passes; this does not).
 * Each addition lowers the exact objective, so it can only improve the
 * selection.  Balances and usage are recomputed first.
 */
void
settle_solver_complete(Work *w, bool *sel, const int *members, int n)
{
	const SolverProblem *p = w->p;
	bool		added = true;
	int			j;

	settle_solver_compute_balances(w, sel, members, n);
	settle_solver_compute_usage(w, sel, members, n);
	while (added)
	{
		added = false;
		for (j = n - 1; j >= 0; j--)
		{
			int			i = w->by_density[j];

			if (sel[i])
				continue;
			if (is_linked(w, i))
			{
				if (w->unit_rep[i] != i || !settle_solver_unit_fits(w, i, -1) ||
					solver_unit_penalty(w, i) <= settle_solver_unit_marginal_cost(w, i))
					continue;
			}
			else
			{
				const SolverPayment *s = &p->payments[i];

				if (p->accounts[s->src].constrained &&
					w->balance[s->src] - s->debit < floor_of(p, s->src))
					continue;
				if (s->penalty <= marginal_cost(w, i))
					continue;
			}
			settle_solver_unit_set(w, sel, i, true, NULL, NULL);
			added = true;
		}
	}
}
