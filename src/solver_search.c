/*
 * solver_search.c -- the local search (LS): improve a feasible selection
 * by single moves, each repaired exactly and undone when it does not gain.
 *
 * A move selects one unsettled payment and repairs the shortfall it causes
 * (settle_solver_repair_from); a move that fails with drops alone is retried as a
 * short ejection chain, which is what closes gridlocked rings.  Rounds
 * repeat while the exact objective falls; a payment is retried only when
 * balances near it changed (don't-look bits).  A linked group moves whole
 * (solver_units.c, issue #27).  docs/ALGORITHM.md, step 5.
 * Plain C11, no PostgreSQL headers (solver_int.h).
 */
#include <math.h>

#include "solver_int.h"

/* At most this many improve + refill rounds per local search. */
#define IMPROVE_ROUNDS 100

/* A move fills at most this many accounts beyond those its drops freed and its payee. */
#define FILL_MAX 16

static void fill_account(Work *w, bool *sel, int a, int *log, int *n_log);
static void fill_after_repair(Work *w, bool *sel, int i, int *log, int *n_log);
static bool try_move(Work *w, bool *sel, int i, int chain);
static int	collect_candidates(Work *w, const bool *sel, const int *members, int n, int round);
static int	improve(Work *w, bool *sel, const int *members, int n, int round);

/* Add what account a can afford now, densest first; adds logged as -i - 1. */
static void
fill_account(Work *w, bool *sel, int a, int *log, int *n_log)
{
	const SolverProblem *p = w->p;
	const int  *ring = w->next_member;	/* NULL without groups */
	bool		linked_seen = false;
	int			t;

	for (t = w->out_end[a] - 1; t >= w->out_first[a]; t--)
	{
		int			i = w->out_list[t];
		const SolverPayment *s = &p->payments[i];

		if (sel[i] || w->never[i])
			continue;
		if (ring && ring[i] != i)
		{
			linked_seen = true; /* after this loop, which then calls nothing */
			continue;
		}
		if (p->accounts[a].constrained && w->balance[a] - s->debit < floor_of(p, a))
			continue;
		if (s->penalty <= marginal_cost(w, i))
			continue;
		sel[i] = true;
		log[(*n_log)++] = -(i + 1);
		w->balance[a] -= s->debit;
		w->balance[s->dst] += s->credit;
		use_payment(w, i, 1);
	}
	w->effort += w->out_end[a] - w->out_first[a];
	/* a group whole, if it fits everywhere (issue #27) */
	for (t = w->out_end[a] - 1; linked_seen && t >= w->out_first[a]; t--)
	{
		int			i = w->out_list[t];

		if (!sel[i] && !w->never[i] && is_linked(w, i) && settle_solver_unit_fits(w, i, -1) &&
			solver_unit_penalty(w, i) > settle_solver_unit_marginal_cost(w, i))
			settle_solver_unit_set(w, sel, i, true, log, n_log);
	}
}

/*
 * Within a move, after its repair: use at once the liquidity the move
 * freed or brought, so that the move is judged with it.  Fill the payers
 * of its drops, the payee of i, then the payees of what was filled (at
 * most FILL_MAX of them).  Only affordable payments are added, so the
 * selection stays within every limit.
 */
static void
fill_after_repair(Work *w, bool *sel, int i, int *log, int *n_log)
{
	const SolverProblem *p = w->p;
	int			n_repair = *n_log;
	int			k;
	int			left = FILL_MAX;
	int			m = i;

	for (k = 0; k < n_repair; k++)
		if (log[k] >= 0)
			fill_account(w, sel, p->payments[log[k]].src, log, n_log);
	do
	{
		fill_account(w, sel, p->payments[m].dst, log, n_log);
		m = w->next_member ? w->next_member[m] : i;
	} while (m != i);
	for (k = n_repair; k < *n_log && left > 0; k++)
		if (log[k] < 0)
		{
			left--;
			fill_account(w, sel, p->payments[-log[k] - 1].dst, log, n_log);
		}
}

/*
 * One local-search move: select payment i, repair the shortfall it causes
 * (never dropping i; at most "chain" payments added whose payers then go
 * short), fill what the freed liquidity now affords (fill_after_repair),
 * keep it if the penalty gained exceeds the penalties dropped plus i's
 * marginal cost, else undo it exactly from the log.  True if kept.  The
 * log holds at most 4n entries: n adds and 2n drops in repair, n fills.
 */
static bool
try_move(Work *w, bool *sel, int i, int chain)
{
	const SolverProblem *p = w->p;
	const SolverPayment *s = &p->payments[i];
	int		   *log = w->tmp2;
	int			n_log = 0;
	int			k;
	bool		ok = true;
	double		gain;
	int			top = 0;
	int			m;

	if (is_linked(w, i))
	{
		/* a group moves whole; each payer it leaves short is repaired (issue #27) */
		gain = solver_unit_penalty(w, i) - settle_solver_unit_marginal_cost(w, i);
		settle_solver_unit_set(w, sel, i, true, NULL, NULL);
		m = i;
		do
		{
			int			a = p->payments[m].src;

			if (is_short(w, a) && !w->mark[a])
			{
				w->mark[a] = true;
				w->stack[top++] = a;
			}
			m = w->next_member[m];
		} while (m != i);
		for (k = 0; k < top; k++)
			w->mark[w->stack[k]] = false;
		chain = 0;
	}
	else
	{
		gain = s->penalty - marginal_cost(w, i);
		sel[i] = true;
		w->balance[s->src] -= s->debit;
		w->balance[s->dst] += s->credit;
		use_payment(w, i, 1);
		if (is_short(w, s->src))
			w->stack[top++] = s->src;
	}
	if (top > 0)
	{
		w->chain_left = chain;
		/* abandoned once it loses four times what it can gain */
		ok = settle_solver_repair_from(w, sel, top, i, log, &n_log, 4 * gain);
		w->chain_left = 0;
	}
	if (ok)
		fill_after_repair(w, sel, i, log, &n_log);
	for (k = 0; k < n_log; k++)
	{
		if (log[k] >= 0)
			gain -= p->payments[log[k]].penalty;
		else
		{
			gain += p->payments[-log[k] - 1].penalty;
			w->chained[-log[k] - 1] = false;
		}
	}
	if (ok && gain > 1e-9 * s->penalty)
		return true;			/* keep (costs re-checked exactly by the caller) */
	/* undo, newest first */
	for (k = n_log - 1; k >= 0; k--)
	{
		int			d = log[k] >= 0 ? log[k] : -log[k] - 1;
		int			sign = log[k] >= 0 ? 1 : -1;	/* re-select a drop, unselect an add */
		const SolverPayment *ds = &p->payments[d];

		sel[d] = sign > 0;
		w->balance[ds->src] -= sign * ds->debit;
		w->balance[ds->dst] += sign * ds->credit;
		use_payment(w, d, sign);
	}
	if (is_linked(w, i))
	{
		settle_solver_unit_set(w, sel, i, false, NULL, NULL);
		return false;
	}
	sel[i] = false;
	w->balance[s->src] += s->debit;
	w->balance[s->dst] -= s->credit;
	use_payment(w, i, -1);
	return false;
}

/*
 * The payments a round tries, into w->sorted, most valuable first; returns
 * how many.  Don't-look bits: a payment tried in the last round failed, and
 * unless the balance of its payer, or of an account paying into its payer
 * (affordable adds, chains), has changed since, it would fail the same way.
 * Round 0 tries every unselected payment.  Balances must be current.
 */
static int
collect_candidates(Work *w, const bool *sel, const int *members, int n, int round)
{
	const SolverProblem *p = w->p;
	int			n_cand = 0;
	int			j;

	for (j = 0; j < n; j++)
	{
		const SolverPayment *s = &p->payments[members[j]];

		if (round == 0 || w->snap[s->src] != w->balance[s->src])
			w->dirty[s->src] = true;
		if (round == 0 || w->snap[s->dst] != w->balance[s->dst])
			w->dirty[s->dst] = true;
	}
	for (j = 0; j < n; j++)
	{
		const SolverPayment *s = &p->payments[members[j]];

		w->mark[s->dst] = w->mark[s->dst] || w->dirty[s->src] || w->dirty[s->dst];
	}
	for (j = 0; j < n; j++)
	{
		const SolverPayment *s = &p->payments[members[j]];

		w->dirty[s->dst] = w->mark[s->dst];
		w->snap[s->src] = w->balance[s->src];
		w->snap[s->dst] = w->balance[s->dst];
	}
	/* the payments unselected when the round starts (a drop waits for the next round) */
	for (j = 0; j < n; j++)
	{
		int			i = w->by_penalty[j];

		if (sel[i])
			continue;
		if (!is_linked(w, i))
		{
			if (w->dirty[p->payments[i].src])
				w->sorted[n_cand++] = i;
		}
		else if (w->unit_rep[i] == i)
		{
			/* a group, at its first member, if the payer of any member changed */
			int			m = i;

			do
			{
				if (w->dirty[p->payments[m].src])
				{
					w->sorted[n_cand++] = i;
					break;
				}
				m = w->next_member[m];
			} while (m != i);
		}
	}
	for (j = 0; j < n; j++)
	{
		const SolverPayment *s = &p->payments[members[j]];

		w->mark[s->dst] = false;
		w->dirty[s->src] = w->dirty[s->dst] = false;
	}
	return n_cand;
}

/*
 * One round: try each candidate, most valuable first (try_move), with a
 * chain only if the move without one met a payment a chain could add (else
 * it would be the same move).  Returns the number of moves kept.  This is
 * what turns a rounded LP solution, whose accounts are all at their
 * limits, into a good one.
 */
static int
improve(Work *w, bool *sel, const int *members, int n, int round)
{
	int			kept = 0;
	const SolverProblem *p = w->p;
	const int  *cands = w->sorted;
	int			n_cand;
	int			j;

	settle_solver_compute_balances(w, sel, members, n);
	settle_solver_compute_usage(w, sel, members, n);
	n_cand = collect_candidates(w, sel, members, n, round);
	w->effort += 4 * n;
	for (j = 0; j < n_cand; j++)
	{
		int			i = cands[j];
		const SolverPayment *s = &p->payments[i];

		if ((j & 15) == 15 && settle_solver_out_of_ls_time(w))
			break;
		if (sel[i] || w->never[i])
			continue;			/* never: probing showed it cannot settle */
		if (is_linked(w, i) ? solver_unit_penalty(w, i) <= settle_solver_unit_marginal_cost(w, i)
			: s->penalty <= marginal_cost(w, i))
			continue;
		w->chain_seen = false;
		w->effort++;
		if (try_move(w, sel, i, 0) || (w->chain_seen && try_move(w, sel, i, CHAIN_MAX)))
			kept++;
	}
	return kept;
}

/*
 * Improve and refill in rounds while the exact objective goes down (the
 * gain improve() estimates ignores the fees saved and the spread changed by
 * its drops, so a round is judged, and undone if need be, on the exact
 * objective: this also rules out cycling).
 */
void
settle_solver_local_search(Work *w, bool *sel, const int *members, int n)
{
	settle_solver_local_search_from(w, sel, members, n, 0);
}

/*
 * The local search, starting at round first_round: 0 tries every unselected
 * payment first; 1 only those near an account whose balance differs from
 * w->snap (set by the caller: the iterated search's kick changed a few
 * accounts, the rest is still a local optimum).
 */
void
settle_solver_local_search_from(Work *w, bool *sel, const int *members, int n, int first_round)
{
	int			round;
	double		obj;
	int			j;

	settle_solver_refill(w, sel, members, n);
	obj = settle_solver_objective(w, sel, members, n);
	for (round = first_round; round < IMPROVE_ROUNDS + first_round && !settle_solver_out_of_ls_time(w); round++)
	{
		double		next;

		for (j = 0; j < n; j++)
			w->saved[members[j]] = sel[members[j]];
		if (improve(w, sel, members, n, round) == 0)
			break;
		settle_solver_refill(w, sel, members, n);
		next = settle_solver_objective(w, sel, members, n);
		w->effort += n;
		if (!(next < obj - 1e-12 * fabs(obj)))
		{
			for (j = 0; j < n; j++)
				sel[members[j]] = w->saved[members[j]];
			break;
		}
		obj = next;
	}
}
