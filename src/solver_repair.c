/*
 * solver_repair.c -- make a selection exact and cost-consistent: repair
 * (every account back within its limit), drop deferrable payments that do
 * not pay for their wires, refill with what the payers can afford.
 *
 * These are the pieces of H, the heuristic (solver.c), and what every other
 * candidate (LP roundings, local-search moves) goes through, so that no
 * selection leaves the solver unless it is feasible in exact integers.
 * A linked group is added and dropped whole (solver_units.c, issue #27).
 * Plain C11, no PostgreSQL headers (solver_int.h).
 */
#include <math.h>

#include "solver_int.h"

/* Repair looks at no more than this many payments of an account per step. */
#define REPAIR_SCAN_MAX 512

static inline int pick_add_impl(Work *w, const bool *sel, int a, int adds_left, bool *chain,
								bool groups);
static int	pick_add(Work *w, const bool *sel, int a, int adds_left, bool *chain);
static inline int pick_drop_impl(Work *w, const bool *sel, int a, int protect, double shortfall,
								 bool groups);
static int	pick_drop(Work *w, const bool *sel, int a, int protect, double shortfall);

/*
 * A payment into short account a to add: the most valuable one its payer
 * can afford without going short and that pays for its marginal cost (it
 * gains penalty and ends the repair there).  Failing that, if a chain is
 * allowed (w->chain_left), the unaffordable one whose payer goes least
 * short, with *chain set: its payer is repaired in turn, which may close a
 * ring that drops never find.  -1 if none.
 */
static inline __attribute__((always_inline)) int
pick_add_impl(Work *w, const bool *sel, int a, int adds_left, bool *chain, bool groups)
{
	const SolverProblem *p = w->p;
	const int  *ring = w->next_member;
	int			best = -1;
	double		best_value = 0;
	int			chain_cand = -1;
	wide		least = 0;
	int			seen = 0;
	bool		linked_seen = false;
	int			t;

	*chain = false;
	if (adds_left <= 0)
		return -1;
	for (t = w->in_first[a]; t < w->in_end[a] && seen < REPAIR_SCAN_MAX; t++)
	{
		int			i = w->in_list[t];
		const SolverPayment *c = &p->payments[i];

		seen++;
		if (sel[i] || c->src == a)
			continue;
		if (groups && ring[i] != i)
		{
			linked_seen = true; /* judged after this loop, which then calls nothing */
			continue;
		}
		if (p->accounts[c->src].constrained &&
			w->balance[c->src] - c->debit < floor_of(p, c->src))
		{
			wide		short_by = floor_of(p, c->src) - (w->balance[c->src] - c->debit);

			w->chain_seen = true;
			if (w->chain_left <= 0 || w->chained[i] ||
				(chain_cand >= 0 && short_by >= least))
				continue;
			if (c->penalty <= marginal_cost(w, i))
				continue;
			chain_cand = i;
			least = short_by;
			continue;
		}
		if (c->penalty <= marginal_cost(w, i))
			continue;
		if (best < 0 || c->penalty > best_value)
		{
			best = i;
			best_value = c->penalty;
		}
	}
	w->effort += t - w->in_first[a];
	if (linked_seen)
		best = settle_solver_unit_pick_add(w, sel, a, t, best, best_value);
	if (best < 0 && chain_cand >= 0)
	{
		*chain = true;
		return chain_cand;
	}
	return best;
}

/*
 * pick_add_impl compiled twice: without groups it is the loop it was
 * before issue #27, with nothing more to test per entry.
 */
static int
pick_add(Work *w, const bool *sel, int a, int adds_left, bool *chain)
{
	return w->next_member ? pick_add_impl(w, sel, a, adds_left, chain, true)
		: pick_add_impl(w, sel, a, adds_left, chain, false);
}

/*
 * A selected payment out of short account a to drop: the one that loses
 * least per unit of shortfall covered, counting the shortfall its lost
 * credit would cause at the payee (a drop there would follow), so chains
 * of drops stop early.  That shortfall is priced at the payee's dual price
 * in the component's LP once there is one (what a unit of its liquidity is
 * worth to the whole component), else at the payment's own penalty per
 * unit.  Never "protect", nor a payment a chain added in
 * this move.  -1 if none.
 */
static inline __attribute__((always_inline)) int
pick_drop_impl(Work *w, const bool *sel, int a, int protect, double shortfall, bool groups)
{
	const SolverProblem *p = w->p;
	const int  *ring = w->next_member;
	int			rep = groups && protect >= 0 ? w->unit_rep[protect] : -1;
	double		best_cost = HUGE_VAL;
	int			best = -1;
	int			seen = 0;
	int			t;

	for (t = w->out_first[a]; t < w->out_end[a] && seen < REPAIR_SCAN_MAX; t++)
	{
		int			i = w->out_list[t];
		const SolverPayment *c = &p->payments[i];
		double		cover,
					induced = 0,
					cost;

		if (!sel[i] || i == protect || w->chained[i] || (groups && rep >= 0 && w->unit_rep[i] == rep))
			continue;
		seen++;
		cover = (double) c->debit < shortfall ? (double) c->debit : shortfall;
		if (p->accounts[c->dst].constrained && c->dst != a)
		{
			double		slack = (double) (w->balance[c->dst] - floor_of(p, c->dst));

			induced = (double) c->credit - (slack > 0 ? slack : 0);
			if (induced < 0)
				induced = 0;
		}
		/* the LP's price of the payee's liquidity, else the payment's own density */
		cost = ((groups && ring[i] != i ? solver_unit_penalty(w, i) : c->penalty) +
				induced * (w->have_duals ? w->lambda[c->dst] : w->density[i])) / cover;
		if (cost < best_cost)
		{
			best_cost = cost;
			best = i;
		}
	}
	w->effort += t - w->out_first[a];
	return best;
}

/* pick_drop_impl compiled twice, as pick_add_impl. */
static int
pick_drop(Work *w, const bool *sel, int a, int protect, double shortfall)
{
	return w->next_member ? pick_drop_impl(w, sel, a, protect, shortfall, true)
		: pick_drop_impl(w, sel, a, protect, shortfall, false);
}

/*
 * Make every account on the stack (w->stack[0 .. top)) whole again: add a
 * payment into a short account when pick_add finds one, else drop one out
 * of it (pick_drop); a payee newly short is pushed.  Payment "protect" is
 * never dropped.  Drops (i) and adds (-i - 1) are appended to log if it is
 * not NULL; balances, wire use and FX nets are kept up to date.  Returns
 * false if some account cannot be repaired, or as soon as the penalty lost
 * exceeds budget (the caller then undoes the log).
 */
bool
settle_solver_repair_from(Work *w, bool *sel, int top, int protect, int *log, int *n_log,
				   double budget)
{
	const SolverProblem *p = w->p;
	int		   *stack = w->stack;
	bool		ok = true;
	double		lost = 0;

	/*
	 * At most n adds per call (then drops only): every drop needs a selected
	 * payment, so there are at most 2n drops, the call ends, and the log
	 * holds at most 3n entries.
	 */
	int			adds_left = p->n_payments;

	while (top > 0)
	{
		int			a = stack[--top];

		if (!p->accounts[a].constrained)
			continue;
		while (w->balance[a] < floor_of(p, a))
		{
			bool		chain;
			int			i = pick_add(w, sel, a, adds_left, &chain);
			const SolverPayment *s;

			if (i >= 0 && is_linked(w, i))
			{
				/* a group, whole: it fits (settle_solver_unit_fits), so no payer goes short */
				int			k = i;

				do
				{
					adds_left--;
					lost -= p->payments[k].penalty;
					k = w->next_member[k];
				} while (k != i);
				settle_solver_unit_set(w, sel, i, true, log, n_log);
				continue;
			}
			if (i >= 0)
			{
				s = &p->payments[i];
				if (chain)
				{
					w->chain_left--;
					w->chained[i] = true;
					stack[top++] = s->src;
				}
				sel[i] = true;
				adds_left--;
				lost -= s->penalty;
				if (log)
					log[(*n_log)++] = -(i + 1);
				w->balance[s->src] -= s->debit;
				w->balance[a] += s->credit;
				use_payment(w, i, 1);
				continue;
			}
			i = pick_drop(w, sel, a, protect, (double) (floor_of(p, a) - w->balance[a]));
			if (i < 0)
			{
				ok = false;
				break;			/* the other accounts are still repaired */
			}
			if (is_linked(w, i))
			{
				/* a group goes whole: each member's lost credit may leave its payee short */
				int			k = i;

				do
				{
					s = &p->payments[k];
					if (sel[k])
					{
						sel[k] = false;
						lost += s->penalty;
						if (log)
							log[(*n_log)++] = k;
						w->balance[s->src] += s->debit;
						w->balance[s->dst] -= s->credit;
						use_payment(w, k, -1);
						if (is_short(w, s->dst) && w->balance[s->dst] + s->credit >= floor_of(p, s->dst))
							stack[top++] = s->dst;	/* newly short */
					}
					k = w->next_member[k];
				} while (k != i);
				if (lost > budget)
					return false;
				continue;
			}
			s = &p->payments[i];
			sel[i] = false;
			lost += s->penalty;
			if (log)
				log[(*n_log)++] = i;
			w->balance[a] += s->debit;
			w->balance[s->dst] -= s->credit;
			use_payment(w, i, -1);
			if (is_short(w, s->dst) && w->balance[s->dst] + s->credit >= floor_of(p, s->dst))
				stack[top++] = s->dst;	/* newly short */
			if (lost > budget)
				return false;	/* the caller undoes it: not worth it */
		}
	}
	return ok;
}

/* Exact check of a component's selection: no account below its floor. */
bool
settle_solver_component_feasible(Work *w, const bool *sel, const int *members, int n)
{
	const SolverProblem *p = w->p;
	int			j;

	settle_solver_compute_balances(w, sel, members, n);
	for (j = 0; j < n; j++)
	{
		const SolverPayment *s = &p->payments[members[j]];

		if (is_short(w, s->src) || is_short(w, s->dst))
			return false;
	}
	return true;
}

/* Repair a whole selection of a component: every short account is pushed. */
void
settle_solver_repair(Work *w, bool *sel, const int *members, int n)
{
	const SolverProblem *p = w->p;
	int			top = 0;
	int			j;

	settle_solver_compute_balances(w, sel, members, n);
	settle_solver_compute_usage(w, sel, members, n);
	for (j = 0; j < n; j++)
	{
		int			a = p->payments[members[j]].src;

		if (is_short(w, a) && !w->mark[a])
		{
			w->mark[a] = true;
			w->stack[top++] = a;
		}
	}
	for (j = 0; j < top; j++)
		w->mark[w->stack[j]] = false;
	settle_solver_repair_from(w, sel, top, -1, NULL, NULL, HUGE_VAL);
}

/*
 * Deferrable payments are worth settling only if their penalties pay for
 * the wires they alone open.  Drop those that do not, then repair (a drop
 * removes a credit).
 */
void
settle_solver_drop_unprofitable(Work *w, bool *sel, const int *members, int n)
{
	const SolverProblem *p = w->p;
	double	   *wire_value = w->val;	/* reused scratch, sized n_wires + 1 */
	int			j;
	int			end;
	bool		dropped = false;

	for (j = 0; j < p->n_wires; j++)
	{
		wire_value[j] = 0;
		w->wire_use[j] = 0;
	}
	for (j = 0; j < n; j++)
	{
		int			i = members[j];

		if (!sel[i])
			continue;
		for (end = 0; end < 2; end++)
		{
			int			wi = payment_wire(&p->payments[i], end);

			if (wi >= 0)
			{
				wire_value[wi] += p->payments[i].penalty;
				w->wire_use[wi]++;
			}
		}
	}
	for (j = 0; j < n; j++)
	{
		int			i = members[j];
		double		fees = 0;
		int			m = i;

		/* a linked group is judged whole, at its first member (issue #27) */
		if (!sel[i] || (is_linked(w, i) && w->unit_rep[i] != i))
			continue;
		do
		{
			for (end = 0; end < 2; end++)
			{
				int			wi = payment_wire(&p->payments[m], end);

				if (wi >= 0 && wire_value[wi] < p->wire_fee[wi])
					fees += p->wire_fee[wi];
			}
			m = w->next_member ? w->next_member[m] : i;
		} while (m != i);
		if (fees > 0 && solver_unit_penalty(w, i) < fees)
		{
			do
			{
				sel[m] = false;
				m = w->next_member ? w->next_member[m] : i;
			} while (m != i);
			dropped = true;
		}
	}
	if (dropped)
		settle_solver_repair(w, sel, members, n);
}

/*
 * Add unselected payments, highest penalty per unit of debit first, when
 * the payer can afford them and their penalty exceeds their marginal cost
 * (fees of the wires they would open, spread they would add).  Repeats
 * while it adds anything, since every credit can make another payment
 * affordable.
 */
void
settle_solver_refill(Work *w, bool *sel, const int *members, int n)
{
	const SolverProblem *p = w->p;
	const int  *sorted = w->by_density;
	int			j;
	int			pass;
	bool		added = true;

	settle_solver_compute_balances(w, sel, members, n);
	settle_solver_compute_usage(w, sel, members, n);

	for (pass = 0; added && pass < 8; pass++)
	{
		added = false;
		w->effort += n;
		for (j = n - 1; j >= 0; j--)
		{
			int			i = sorted[j];
			const SolverPayment *s = &p->payments[i];

			if (sel[i])
				continue;
			if (is_linked(w, i))
			{
				/* a group whole, at its first member's place (issue #27) */
				if (w->unit_rep[i] == i && settle_solver_unit_fits(w, i, -1) &&
					solver_unit_penalty(w, i) > settle_solver_unit_marginal_cost(w, i))
				{
					settle_solver_unit_set(w, sel, i, true, NULL, NULL);
					added = true;
				}
				continue;
			}
			if (p->accounts[s->src].constrained &&
				w->balance[s->src] - s->debit < floor_of(p, s->src))
				continue;
			if (s->penalty <= marginal_cost(w, i))
				continue;
			sel[i] = true;
			added = true;
			w->balance[s->src] -= s->debit;
			w->balance[s->dst] += s->credit;
			use_payment(w, i, 1);
		}
	}
}
