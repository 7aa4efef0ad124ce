/*
 * solver_deep_test.c -- unit tests of the deep pass (src/solver_deep.c,
 * issue #27), linked into solver_test (TAP numbering is solver_test's).
 *
 * Effort-bounded, never timed: every pass here has a number of rounds and
 * nodes and no clock, so it is deterministic and the tests hold whatever the
 * machine's load.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "solver.h"
#include "solver_deep.h"
#include "workload.h"

void		test_deep_pass(void (*ok) (int, const char *));

static unsigned long deep_rng = 4242;

static int
deep_rnd(int n)
{
	deep_rng = deep_rng * 6364136223846793005UL + 1442695040888963407UL;
	return (int) ((deep_rng >> 33) % (unsigned long) n);
}

static bool
deep_interrupted(void *arg)
{
	(void) arg;
	return true;
}

/* Effort bounds only: no clock. */
static SolverDeepLimits
effort(int rounds, int region, int nodes)
{
	SolverDeepLimits lim;

	settle_deep_default_limits(&lim);
	lim.rounds = rounds;
	lim.region_payments = region;
	lim.nodes = nodes;
	lim.time_limit_ms = 0;
	return lim;
}

/*
 * The reference instances at 10% liquidity, where the real-time solve
 * stays furthest from the best known (issue #27): from settle_solve's own
 * selection, 25 regions.  Never worse, always within limits, at most its
 * rounds, the same selection twice, and strictly better than the start.
 */
static void
reference(void (*ok) (int, const char *), bool costs)
{
	Workload	wl;
	bool	   *start = calloc(1000, sizeof(bool));
	bool	   *sel = calloc(1000, sizeof(bool));
	bool	   *again = calloc(1000, sizeof(bool));
	SolverResult r;
	SolverDeepLimits lim = effort(25, 150, 30);
	SolverDeepStats st,
				st2;
	double		start_obj;
	char		name[160];

	workload_make(&wl, 1000, 0.10, costs);
	memset(&r, 0, sizeof(r));
	r.settle = start;
	settle_solve(&wl.p, &r);
	start_obj = settle_selection_objective(&wl.p, start);
	memset(&r, 0, sizeof(r));
	r.settle = sel;
	settle_solve_deep(&wl.p, start, &lim, &r, &st);
	snprintf(name, sizeof(name), "deep pass, 1,000 payments, 10%% liquidity, costs %s: within limits, "
			 "objective %.2f not above the start's %.2f", costs ? "on" : "off", r.objective, start_obj);
	ok(r.status == SOLVER_FEASIBLE && settle_check_selection(&wl.p, sel) < 0 &&
	   r.objective <= start_obj && fabs(r.objective - settle_selection_objective(&wl.p, sel)) < 1e-6 &&
	   st.start_objective == start_obj, name);
	snprintf(name, sizeof(name), "deep pass, costs %s: at most its 25 rounds (%d), and it settles "
			 "better than the real-time solve (%d regions improved)", costs ? "on" : "off",
			 st.rounds, st.improved);
	ok(st.rounds <= 25 && st.improved > 0 && r.objective < start_obj, name);
	memset(&r, 0, sizeof(r));
	r.settle = again;
	settle_solve_deep(&wl.p, start, &lim, &r, &st2);
	ok(memcmp(sel, again, 1000) == 0 && st2.rounds == st.rounds && st2.improved == st.improved,
	   "deep pass: effort-bounded, so the same input gives the same selection");
	workload_free(&wl);
	free(start);
	free(sel);
	free(again);
}

/*
 * Tiny random instances (fees, FX, operator accounts, accounts below their
 * limit), one region freeing every payment with no node bound: the pass
 * is then an exact MIP, and must meet the optimum over all subsets,
 * from the empty selection.  Then half the payments: never above the
 * start, within limits.
 */
static void
tiny(void (*ok) (int, const char *))
{
	int			trial;
	int			not_optimal = 0,
				infeasible = 0,
				worse = 0;

	for (trial = 0; trial < 60; trial++)
	{
		int			na = 2 + deep_rnd(4),
					np = 1 + deep_rnd(10),
					i;
		SolverAccount acc[6];
		SolverPayment pay[12];
		double		fees[6];
		double		spread[2] = {0.001 * deep_rnd(20), 0.01};
		bool		sel[12],
					start[12],
					try[12];
		double		best = HUGE_VAL;
		SolverProblem p;
		SolverResult r;
		SolverDeepLimits all = effort(1, 12, 1000000),
					half = effort(6, 1 + np / 2, 5);
		unsigned	mask;

		for (i = 0; i < na; i++)
		{
			acc[i].available = deep_rnd(300) - (deep_rnd(8) == 0 ? 50 : 0);
			acc[i].constrained = deep_rnd(6) != 0;
			fees[i] = deep_rnd(4) * 5.0;
		}
		for (i = 0; i < np; i++)
		{
			int			s = deep_rnd(na),
						d = (s + 1 + deep_rnd(na - 1)) % na;
			int64_t		amt = 1 + deep_rnd(200);
			int			k = deep_rnd(3) - 1;

			pay[i] = (SolverPayment) {s, d, amt, amt + deep_rnd(3),
				deep_rnd(3) == 0 ? 0.5 + deep_rnd(10) : 1.0 * amt,
				deep_rnd(5) ? s : -1, d, k, k >= 0 ? (deep_rnd(2) ? 1.0 : -1.0) * amt : 0};
		}
		memset(&p, 0, sizeof(p));
		p.n_accounts = na;
		p.accounts = acc;
		p.n_payments = np;
		p.payments = pay;
		p.n_wires = na;
		p.wire_fee = fees;
		p.n_fx_pairs = 2;
		p.fx_spread = spread;
		p.time_limit_ms = 2000;
		p.mip_gap = 1e-9;
		p.mip_max_payments = 200;
		for (mask = 0; mask < (1u << np); mask++)
		{
			for (i = 0; i < np; i++)
				try[i] = (mask >> i) & 1;
			if (settle_check_selection(&p, try) < 0 && settle_selection_objective(&p, try) < best)
				best = settle_selection_objective(&p, try);
		}
		memset(start, 0, sizeof(start));
		memset(&r, 0, sizeof(r));
		r.settle = sel;
		settle_solve_deep(&p, start, &all, &r, NULL);
		if (settle_check_selection(&p, sel) >= 0)
			infeasible++;
		else if (r.objective > best + 1e-6 * (1 + best))
			not_optimal++;
		/* from the greedy fallback's selection, regions of half the payments */
		settle_solve_greedy(&p, start);
		memset(&r, 0, sizeof(r));
		r.settle = sel;
		settle_solve_deep(&p, start, &half, &r, NULL);
		if (settle_check_selection(&p, sel) >= 0)
			infeasible++;
		else if (r.objective > settle_selection_objective(&p, start) + 1e-9)
			worse++;
	}
	ok(infeasible == 0, "deep pass, tiny instances: within limits, every time");
	ok(not_optimal == 0, "deep pass, one region freeing everything: the optimum over all subsets");
	ok(worse == 0, "deep pass, regions of half the payments: never above the start");
}

/* Starts it must not trust, no rounds, an interrupt. */
static void
edges(void (*ok) (int, const char *))
{
	Workload	wl;
	bool	   *start = calloc(1000, sizeof(bool));
	bool	   *sel = calloc(1000, sizeof(bool));
	SolverResult r;
	SolverDeepLimits none = effort(0, 150, 30),
				some = effort(3, 150, 30);
	SolverDeepStats st;
	SolverProblem p;
	double		rt_obj;
	int			i;

	workload_make(&wl, 1000, 0.05, true);
	p = wl.p;
	memset(&r, 0, sizeof(r));
	r.settle = sel;
	settle_solve(&p, &r);
	rt_obj = settle_selection_objective(&p, sel);
	/* everything selected breaks limits: the pass starts from settle_solve instead */
	for (i = 0; i < 1000; i++)
		start[i] = true;
	memset(&r, 0, sizeof(r));
	r.settle = sel;
	settle_solve_deep(&p, start, &some, &r, &st);
	ok(settle_check_selection(&p, sel) < 0 && r.objective <= st.start_objective &&
	   fabs(st.start_objective - rt_obj) < 1e-6,
	   "deep pass, a start that breaks a limit: ignored, the real-time solve's selection is the start");
	/* no rounds: the start itself */
	memcpy(start, sel, 1000);
	memset(&r, 0, sizeof(r));
	r.settle = sel;
	settle_solve_deep(&p, start, &none, &r, &st);
	ok(memcmp(start, sel, 1000) == 0 && st.rounds == 0, "deep pass, no rounds: the start, unchanged");
	/* interrupted before its first round: the start, unchanged */
	p.interrupted = deep_interrupted;
	memset(&r, 0, sizeof(r));
	r.settle = sel;
	settle_solve_deep(&p, start, &some, &r, &st);
	ok(memcmp(start, sel, 1000) == 0 && st.rounds == 0 && !st.out_of_time,
	   "deep pass, interrupted: the start, unchanged");
	workload_free(&wl);
	free(start);
	free(sel);
}

void
test_deep_pass(void (*ok) (int, const char *))
{
	reference(ok, false);
	reference(ok, true);
	tiny(ok);
	edges(ok);
}
