/*
 * solver.c -- choose which queued payments settle this cycle (GLPK): the
 * entry points, the greedy fallback and the exact limit check.
 *
 * Plain C11, no PostgreSQL headers: the cycle (cycle.c) fills a
 * SolverProblem and posts what comes back; test/solver drives the same code
 * standalone.  The model is in include/solver.h and docs/ALGORITHM.md; the
 * stages live in the files solver_int.h lists.
 *
 * Payments interact only through shared accounts, wires and FX pairs, so
 * they are first split into independent components (solver_work.c); each
 * component is solved alone:
 *
 *   H  heuristic, no GLPK: select everything, repair, drop deferrable
 *      payments that do not pay for their wires, refill (solver_repair.c).
 *      Exact, and it resolves gridlock (offsetting payments settle
 *      together).
 *   L  LP relaxation (solver_glpk.c), rounded down and rounded to nearest,
 *      each rounding repaired and improved by the local search.
 *   LS local search (solver_search.c): single moves repaired exactly, with
 *      ejection chains; LS_SHARE of the time limit in all.
 *   ILS iterated local search (solver_perturb.c): a few kicks from the best
 *      selection, each searched again, kept when cheaper (same share).
 *   M  components of at most mip_max_payments payments: the MIP
 *      (solver_glpk.c) with the best selection so far as first incumbent.
 *
 * The cheapest candidate by the model's exact objective is kept, and the
 * whole selection is re-checked (settle_check_selection) before it is
 * returned.  GLPK never aborts the process: glp_error_hook longjmps back
 * to settle_solve, which calls glp_free_env() and falls back to H; GLPK's
 * terminal output goes to problem->log or nowhere; all memory is in one
 * Work, freed on every path.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "solver_int.h"

/* Share of time_limit_ms that the local searches may use in all. */
#define LS_SHARE 0.2

/* What solving one component gave. */
typedef struct Outcome
{
	bool		got_lp;			/* its LP was solved */
	bool		proved;			/* the MIP proved it, or the rounding met the LP bound */
	bool		mip;			/* a MIP answer was considered */
	double		lp_obj;			/* the LP's objective (-1 without LP) */
	double		lp_weight;		/* the LP's settled penalty weight */
	double		obj;			/* the kept selection's objective */
} Outcome;


static void glpk_error_hook(void *info);
static int	glpk_term_hook(void *info, const char *s);
static const char *sums_overflow(const SolverProblem *p);
static const char *invalid_input(const SolverProblem *p);
static const char *prepare_work(Work *w);
static void heuristic(Work *w, bool *sel, const int *members, int n, bool search);
static void try_candidate(Work *w, bool *cand, const int *members, int n, double *best_obj);
static bool try_lp(Work *w, const int *members, int n, double *best_obj, Outcome *o);
static bool try_mip(Work *w, const int *members, int n, double *best_obj, bool *proved);
static void solve_component(Work *w, const int *members, int n, bool *settle, Outcome *o);
static void greedy_after_glpk_error(Work *w, SolverResult *result);
static Work *start_solve(const SolverProblem *problem, SolverResult *result, double start);
static void name_method(SolverResult *result, bool any_lp, bool any_heuristic, int mip_done);
static SolverStatus interrupted_exit(Work *w, SolverResult *result, double start);
static SolverStatus finish_solve(Work *w, SolverResult *result, double start,
								 bool any_heuristic, bool all_proved, int mip_done);

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

/* Exact check of a selection against every limit (see solver.h). */
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
		if (problem->accounts[i].constrained && bal[i] < 0 &&
			bal[i] < (wide) problem->accounts[i].available)
		{
			bad = i;
			break;
		}
	free(bal);
	return bad;
}

/* All or nothing (see solver.h): the first group selected in part, or -1. */
int
settle_check_groups(const SolverProblem *problem, const bool *settle)
{
	int		   *size;
	int		   *chosen;
	int			i;
	int			bad = -1;

	if (problem->group == NULL || problem->n_groups <= 0)
		return -1;
	size = calloc(problem->n_groups, sizeof(int));
	chosen = calloc(problem->n_groups, sizeof(int));
	if (!size || !chosen)
	{
		free(size);
		free(chosen);
		return 0;				/* cannot check: treat as a violation */
	}
	for (i = 0; i < problem->n_payments; i++)
	{
		int			g = problem->group[i];

		if (g < 0 || g >= problem->n_groups)
			continue;
		size[g]++;
		chosen[g] += settle[i] ? 1 : 0;
	}
	for (i = 0; i < problem->n_groups && bad < 0; i++)
		if (chosen[i] > 0 && chosen[i] < size[i])
			bad = i;
	free(size);
	free(chosen);
	return bad;
}

/*
 * Every account's available + all credits and available - all debits must
 * fit in int64 (the caller posts in int64; the solver itself sums in 128
 * bits).  Returns a message or NULL.
 */
static const char *
sums_overflow(const SolverProblem *p)
{
	int64_t    *in = calloc(p->n_accounts + 1, sizeof(int64_t));
	int64_t    *out = calloc(p->n_accounts + 1, sizeof(int64_t));
	const char *msg = NULL;
	int			i;

	if (!in || !out)
		msg = "out of memory";
	for (i = 0; !msg && i < p->n_payments; i++)
	{
		const SolverPayment *s = &p->payments[i];

		if (__builtin_add_overflow(out[s->src], s->debit, &out[s->src]) ||
			__builtin_add_overflow(in[s->dst], s->credit, &in[s->dst]))
			msg = "sum of amounts of an account overflows int64";
	}
	for (i = 0; !msg && i < p->n_accounts; i++)
	{
		int64_t		r;

		if (__builtin_add_overflow(p->accounts[i].available, in[i], &r) ||
			__builtin_sub_overflow(p->accounts[i].available, out[i], &r))
			msg = "balance range of an account overflows int64";
	}
	free(in);
	free(out);
	return msg;
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
		if (p->group && (p->group[i] < -1 || p->group[i] >= p->n_groups))
			return "payment group index out of range";
	}
	if (p->group && p->n_groups < 0)
		return "negative size";
	return sums_overflow(p);
}

/*
 * Validate w->p, allocate the work arrays, decompose into components and
 * compute the densities.  NULL, or why not ("out of memory", or what is
 * invalid in the input); the caller frees the Work either way.
 */
static const char *
prepare_work(Work *w)
{
	const char *bad = invalid_input(w->p);
	int			i;

	if (bad)
		return bad;
	if (!settle_solver_alloc_work(w) || !settle_solver_build_units(w) || !settle_solver_decompose(w))
		return "out of memory";
	for (i = 0; i < w->p->n_payments; i++)
		w->density[i] = w->p->payments[i].penalty / (double) w->p->payments[i].debit;
	return NULL;
}

/* H: everything, repaired, unprofitable deferrals dropped, refilled. */
static void
heuristic(Work *w, bool *sel, const int *members, int n, bool search)
{
	int			j;

	for (j = 0; j < n; j++)
		sel[members[j]] = true;
	settle_solver_build_lists(w, members, n);
	settle_solver_repair(w, sel, members, n);
	settle_solver_drop_unprofitable(w, sel, members, n);
	settle_solver_refill(w, sel, members, n);
	if (search)
		settle_solver_local_search(w, sel, members, n);
	if (!settle_solver_component_feasible(w, sel, members, n))
		for (j = 0; j < n; j++)
			sel[members[j]] = false;	/* cannot happen; nothing is always feasible */
}

/* H plus local search per component, no GLPK (see solver.h). */
void
settle_solve_greedy(const SolverProblem *problem, bool *settle)
{
	Work		w;
	int			c;

	memset(&w, 0, sizeof(w));
	w.p = problem;
	memset(settle, 0, sizeof(bool) * problem->n_payments);
	if (prepare_work(&w) != NULL)
	{
		settle_solver_free_work(&w);
		return;
	}
	/* the local search gets the same share of the time limit as in settle_solve */
	if (problem->time_limit_ms > 0)
		w.ls_deadline_ms = settle_solver_now_ms() + LS_SHARE * problem->time_limit_ms;
	for (c = 0; c < w.n_comps; c++)
	{
		const int  *members = w.order + w.comp_start[c];
		int			n = w.comp_start[c + 1] - w.comp_start[c];

		heuristic(&w, settle, members, n, true);
		settle_solver_complete(&w, settle, members, n);
	}
	settle_solver_free_work(&w);
}

/* Repair, search from a candidate; keep it in w->best if it is cheaper. */
static void
try_candidate(Work *w, bool *cand, const int *members, int n, double *best_obj)
{
	double		obj;
	int			j;

	settle_solver_whole_groups(w, cand, members, n);	/* a rounding may split a group */
	settle_solver_repair(w, cand, members, n);
	settle_solver_local_search(w, cand, members, n);
	if (!settle_solver_component_feasible(w, cand, members, n))
		return;					/* cannot happen: repair is exact; never trust it */
	obj = settle_solver_objective(w, cand, members, n);
	if (obj < *best_obj)
	{
		*best_obj = obj;
		for (j = 0; j < n; j++)
			w->best[members[j]] = cand[members[j]];
	}
}

/*
 * L: the LP relaxation, rounded down, then rounded to nearest if the time
 * share allows (the local search ends in a different optimum from each
 * start), each tried as a candidate.  False if there is no LP.
 */
static bool
try_lp(Work *w, const int *members, int n, double *best_obj, Outcome *o)
{
	bool		proved;
	int			j;

	for (j = 0; j < n; j++)
		w->cand[members[j]] = false;
	if (!settle_solver_solve_model(w, members, n, false, NULL, w->best, w->cand,
							&o->lp_obj, &o->lp_weight, &proved))
		return false;
	if (w->have_duals)
		settle_solver_order_by_reduced_value(w, members, n);
	try_candidate(w, w->cand, members, n, best_obj);
	if (!settle_solver_out_of_ls_time(w))
	{
		for (j = 0; j < n; j++)
			w->cand[members[j]] = w->lpx[members[j]] >= 0.5;
		try_candidate(w, w->cand, members, n, best_obj);
	}
	return true;
}

/*
 * M: the MIP from the best selection so far, kept if it is feasible and
 * cheaper.  False if GLPK gave no usable answer.
 */
static bool
try_mip(Work *w, const int *members, int n, double *best_obj, bool *proved)
{
	double		mip_obj_lp,
				mip_weight,
				obj;
	int			j;

	for (j = 0; j < n; j++)
		w->cand[members[j]] = false;
	if (!settle_solver_solve_model(w, members, n, true, w->best, NULL, w->cand,
							&mip_obj_lp, &mip_weight, proved))
		return false;
	/* the MIP holds every group whole; never trust it */
	settle_solver_whole_groups(w, w->cand, members, n);
	if (!settle_solver_component_feasible(w, w->cand, members, n))
		return false;
	obj = settle_solver_objective(w, w->cand, members, n);
	if (obj < *best_obj)
	{
		*best_obj = obj;
		for (j = 0; j < n; j++)
			w->best[members[j]] = w->cand[members[j]];
	}
	return true;
}

/* One component: H, L, M (or LS from H without an LP); the best into settle. */
static void
solve_component(Work *w, const int *members, int n, bool *settle, Outcome *o)
{
	double		best_obj;
	int			j;

	memset(o, 0, sizeof(*o));
	w->have_duals = false;
	heuristic(w, w->best, members, n, false);
	best_obj = settle_solver_objective(w, w->best, members, n);
	settle_solver_probe(w, members, n);
	w->effort = 0;
	if (!settle_solver_out_of_time(w))
		o->got_lp = try_lp(w, members, n, &best_obj, o);
	/* kicks, unless the rounding already met the LP bound */
	if (o->got_lp && best_obj > o->lp_obj + 1e-9 * (1 + fabs(o->lp_obj)))
		settle_solver_iterated_search(w, members, n, &best_obj);
	if (o->got_lp && n <= w->p->mip_max_payments && !settle_solver_out_of_time(w) &&
		best_obj > o->lp_obj + 1e-9 * (1 + fabs(o->lp_obj)))
		o->mip = try_mip(w, members, n, &best_obj, &o->proved);
	else if (o->got_lp && best_obj <= o->lp_obj + 1e-9 * (1 + fabs(o->lp_obj)))
		o->proved = true;		/* rounding met the LP bound */
	if (!o->got_lp)
	{
		/* no LP: H, improved by the local search if time is left */
		if (!settle_solver_out_of_ls_time(w))
		{
			for (j = 0; j < n; j++)
				w->cand[members[j]] = w->best[members[j]];
			settle_solver_local_search(w, w->cand, members, n);
			if (settle_solver_objective(w, w->cand, members, n) < best_obj)
				for (j = 0; j < n; j++)
					w->best[members[j]] = w->cand[members[j]];
		}
		o->lp_obj = -1;
	}
	/* maximal: whatever still fits and pays for itself is added (issue #27) */
	settle_solver_complete(w, w->best, members, n);
	best_obj = settle_solver_objective(w, w->best, members, n);
	for (j = 0; j < n; j++)
		settle[members[j]] = w->best[members[j]];
	o->obj = best_obj;
}

/* After a GLPK error: its whole environment goes, and H settles every component. */
static void
greedy_after_glpk_error(Work *w, SolverResult *result)
{
	int			c;

	w->lp = NULL;
	w->have_duals = false;		/* H as in the greedy fallback: no LP prices */
	glp_free_env();
	snprintf(result->message, sizeof(result->message), "GLPK internal error; greedy heuristic used");
	if (w->p->log)
		w->p->log(w->p->log_arg, result->message);
	for (c = 0; c < w->n_comps; c++)
	{
		const int  *members = w->order + w->comp_start[c];
		int			n = w->comp_start[c + 1] - w->comp_start[c];

		heuristic(w, result->settle, members, n, false);
		settle_solver_complete(w, result->settle, members, n);
	}
	strcpy(result->method, "greedy (GLPK error)");
	result->lp_bound = -1;
	result->lp_weight_bound = -1;
}

/*
 * Reset the result, then validate and prepare a Work with its deadlines.
 * NULL on failure, with result->status SOLVER_ERROR and the message set.
 */
static Work *
start_solve(const SolverProblem *problem, SolverResult *result, double start)
{
	Work	   *w = calloc(1, sizeof(Work));
	const char *bad;

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
		bad = "out of memory";
	else
	{
		w->p = problem;
		bad = prepare_work(w);
	}
	if (bad)
	{
		snprintf(result->message, sizeof(result->message), "%s%s",
				 strcmp(bad, "out of memory") == 0 ? "" : "invalid input: ", bad);
		if (w)
			settle_solver_free_work(w);
		free(w);
		result->status = SOLVER_ERROR;
		return NULL;
	}
	w->deadline_ms = problem->time_limit_ms > 0 ? start + problem->time_limit_ms : 0;
	w->ls_deadline_ms = problem->time_limit_ms > 0 ? start + LS_SHARE * problem->time_limit_ms : 0;
	result->components = w->n_comps;
	return w;
}

/* The method string of a solve that went through every component. */
static void
name_method(SolverResult *result, bool any_lp, bool any_heuristic, int mip_done)
{
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
}

/* Stopped by interrupted(): nothing selected, everything freed. */
static SolverStatus
interrupted_exit(Work *w, SolverResult *result, double start)
{
	glp_error_hook(NULL, NULL);
	glp_term_hook(NULL, NULL);
	memset(result->settle, 0, sizeof(bool) * w->p->n_payments);
	settle_solver_free_work(w);
	free(w);
	result->solve_ms = settle_solver_now_ms() - start;
	strcpy(result->method, "interrupted");
	return result->status = SOLVER_INTERRUPTED;
}

/* Totals of the whole selection, its exact check, the status; frees w. */
static SolverStatus
finish_solve(Work *w, SolverResult *result, double start,
			 bool any_heuristic, bool all_proved, int mip_done)
{
	const SolverProblem *problem = w->p;
	int			c;
	int			i;

	glp_error_hook(NULL, NULL);
	glp_term_hook(NULL, NULL);
	if (settle_solver_stop_requested(w))
		return interrupted_exit(w, result, start);
	result->mip_components = mip_done;
	result->settled_weight = 0;
	result->objective = 0;
	for (c = 0; c < w->n_comps; c++)
		result->objective += settle_solver_objective(w, result->settle, w->order + w->comp_start[c],
											  w->comp_start[c + 1] - w->comp_start[c]);
	for (i = 0; i < problem->n_payments; i++)
		if (result->settle[i])
			result->settled_weight += problem->payments[i].penalty;
	settle_solver_free_work(w);
	free(w);
	result->solve_ms = settle_solver_now_ms() - start;
	if (settle_solver_fault_injection == 2)
		memset(result->settle, 1, sizeof(bool) * problem->n_payments);	/* tests only */
	if (settle_check_selection(problem, result->settle) >= 0)
	{
		/* cannot happen: every path repairs exactly; refuse rather than trust */
		memset(result->settle, 0, sizeof(bool) * problem->n_payments);
		snprintf(result->message, sizeof(result->message), "selection failed the exact limit check");
		return result->status = SOLVER_ERROR;
	}
	if (settle_check_groups(problem, result->settle) >= 0)
	{
		/* cannot happen: every stage moves groups whole; refuse rather than trust */
		memset(result->settle, 0, sizeof(bool) * problem->n_payments);
		snprintf(result->message, sizeof(result->message), "selection settles a linked group in part");
		return result->status = SOLVER_ERROR;
	}
	if (any_heuristic)
		return result->status = SOLVER_HEURISTIC;
	return result->status = all_proved ? SOLVER_OPTIMAL : SOLVER_FEASIBLE;
}

/* Solve every component (H, L, LS, M), keep the cheapest; see the header comment. */
SolverStatus
settle_solve(const SolverProblem *problem, SolverResult *result)
{
	double		start = settle_solver_now_ms();
	Work	   *w = start_solve(problem, result, start);
	int			c;

	/* volatile: they must survive GLPK's longjmp */
	volatile bool all_proved = true;
	volatile bool any_heuristic = false;
	volatile bool any_lp = false;
	volatile int mip_done = 0;

	if (w == NULL)
		return result->status;

	/* GLPK: no terminal output, errors come back here instead of abort() */
	glp_term_hook(glpk_term_hook, (void *) problem);
	glp_term_out(problem->log ? GLP_ON : GLP_OFF);
	glp_error_hook(glpk_error_hook, w);
	if (setjmp(w->glpk_jump) != 0)
	{
		greedy_after_glpk_error(w, result);
		any_heuristic = true;
		all_proved = false;
		return finish_solve(w, result, start, any_heuristic, all_proved, mip_done);
	}

	for (c = 0; c < w->n_comps; c++)
	{
		Outcome		o;

		if (settle_solver_stop_requested(w))
			return interrupted_exit(w, result, start);
		solve_component(w, w->order + w->comp_start[c], w->comp_start[c + 1] - w->comp_start[c],
						result->settle, &o);
		if (!o.proved)
			all_proved = false;
		if (o.got_lp)
		{
			any_lp = true;
			result->lp_bound += o.lp_obj;
			result->lp_weight_bound += o.lp_weight;
		}
		else
			any_heuristic = true;
		if (o.mip)
			mip_done++;
		result->objective += o.obj;
	}
	name_method(result, any_lp, any_heuristic, mip_done);
	return finish_solve(w, result, start, any_heuristic, all_proved, mip_done);
}
