/*
 * solver_test.c -- unit tests of the solver (src/solver*.c), without PostgreSQL (TAP).
 *
 * Small cases checked by hand (gridlock, deferral, FX netting, limits),
 * random instances checked exactly against the limits and, when tiny,
 * against the optimum found by enumerating every subset, and the failure
 * paths: time limit, interruption, invalid input, overflow.  "make test"
 * (test/solver/Makefile) runs it again under valgrind to prove that every
 * path frees what it allocates.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <glpk.h>

#include "solver.h"
#include "workload.h"

/* solver_deep_test.c: the deep pass (issue #27) */
extern void test_deep_pass(void (*ok) (int, const char *));

static int	n_test = 0;
static int	n_failed = 0;

static void
ok(int cond, const char *name)
{
	n_test++;
	if (!cond)
		n_failed++;
	printf("%sok %d - %s\n", cond ? "" : "not ", n_test, name);
}

/* A problem over the given arrays, with default settings. */
static SolverProblem
problem(int na, SolverAccount *acc, int np, SolverPayment *pay, int nw, double *fees,
		int nfx, double *spread)
{
	SolverProblem p;

	memset(&p, 0, sizeof(p));
	p.n_accounts = na;
	p.accounts = acc;
	p.n_payments = np;
	p.payments = pay;
	p.n_wires = nw;
	p.wire_fee = fees;
	p.n_fx_pairs = nfx;
	p.fx_spread = spread;
	p.time_limit_ms = 2000;
	p.mip_gap = 1e-6;
	p.mip_max_payments = 200;
	return p;
}

static SolverStatus
solve(SolverProblem *p, bool *sel, SolverResult *r)
{
	memset(r, 0, sizeof(*r));
	r->settle = sel;
	return settle_solve(p, r);
}

static bool
always_interrupted(void *arg)
{
	(void) arg;
	return true;
}

/* The model's objective without FX: penalties left plus fees of used wires. */
static double
cost_of(const SolverProblem *p, const bool *sel)
{
	double		cost = 0;
	bool	   *used = calloc(p->n_wires + 1, sizeof(bool));
	int			i;

	for (i = 0; i < p->n_payments; i++)
	{
		const SolverPayment *s = &p->payments[i];

		if (!sel[i])
		{
			cost += s->penalty;
			continue;
		}
		if (s->wire_src >= 0 && !used[s->wire_src])
			cost += p->wire_fee[s->wire_src], used[s->wire_src] = true;
		if (s->wire_dst >= 0 && !used[s->wire_dst])
			cost += p->wire_fee[s->wire_dst], used[s->wire_dst] = true;
	}
	free(used);
	return cost;
}

static unsigned long rng = 12345;
static int
rnd(int n)
{
	rng = rng * 6364136223846793005UL + 1442695040888963407UL;
	return (int) ((rng >> 33) % (unsigned long) n);
}

/* The model's full objective (penalties, fees of used wires, net spreads). */
static double
full_cost(const SolverProblem *p, const bool *sel)
{
	double		cost = cost_of(p, sel);
	double	   *net = calloc(p->n_fx_pairs + 1, sizeof(double));
	int			i;

	for (i = 0; i < p->n_payments; i++)
		if (sel[i] && p->payments[i].fx_pair >= 0)
			net[p->payments[i].fx_pair] += p->payments[i].fx_value;
	for (i = 0; i < p->n_fx_pairs; i++)
		cost += p->fx_spread[i] * fabs(net[i]);
	free(net);
	return cost;
}

static void
test_gridlock(void)
{
	/* A -> B -> C -> A, 100 each, nobody has a cent: only offsetting settles */
	SolverAccount acc[3] = {{0, true}, {0, true}, {0, true}};
	SolverPayment pay[3] = {
		{0, 1, 100, 100, 10, 0, 1, -1, 0},
		{1, 2, 100, 100, 10, 1, 2, -1, 0},
		{2, 0, 100, 100, 10, 2, 0, -1, 0}};
	double		fees[3] = {1, 1, 1};
	SolverProblem p = problem(3, acc, 3, pay, 3, fees, 0, NULL);
	bool		sel[3];
	bool		greedy[3];
	SolverResult r;

	workload_fifo(&p, greedy);
	ok(!greedy[0] && !greedy[1] && !greedy[2], "gridlock: one by one in queue order, nothing settles");
	solve(&p, sel, &r);
	ok(sel[0] && sel[1] && sel[2], "gridlock: the ring settles as a whole");
	ok(r.status == SOLVER_OPTIMAL, "gridlock: proven optimal");
	ok(settle_check_selection(&p, sel) < 0, "gridlock: every account within its limit");
	/* one by one, nothing fits: A has 0 and must pay first */
	settle_solve_greedy(&p, greedy);
	ok(greedy[0] && greedy[1] && greedy[2], "gridlock: the repair heuristic settles the ring too");
	pay[2].debit = pay[2].credit = 99;	/* C pays back 99: A would end at -1 */
	solve(&p, sel, &r);
	ok(!sel[0] || settle_check_selection(&p, sel) < 0, "broken ring: no account below its limit");
	ok(settle_check_selection(&p, sel) < 0, "broken ring: selection passes the exact check");
}

static void
test_deferral(void)
{
	/* one payment of value 10 would open two wires costing 18 each */
	SolverAccount acc[2] = {{1000, true}, {0, true}};
	SolverPayment pay[1] = {{0, 1, 1000, 1000, 0.01, 0, 1, -1, 0}};
	double		fees[2] = {18, 18};
	SolverProblem p = problem(2, acc, 1, pay, 2, fees, 0, NULL);
	bool		sel[1];
	SolverResult r;

	solve(&p, sel, &r);
	ok(!sel[0], "deferral: a payment cheaper to delay than its wires waits");
	ok(fabs(r.objective - 0.01) < 1e-12, "deferral: cost is its penalty only");
	settle_solve_greedy(&p, sel);
	ok(!sel[0], "deferral: the greedy fallback defers it too");
	pay[0].penalty = 1000;		/* its deadline has come */
	solve(&p, sel, &r);
	ok(sel[0], "deferral: the same payment settles once it is due");
	ok(fabs(r.objective - 36) < 1e-9, "deferral: cost is the two wire fees");
}

static void
test_fx_netting(void)
{
	/* p0: 1100 USD -> 1000 EUR, p1: 500 EUR -> 550 USD; spread 0.1% on the net */
	SolverAccount acc[4] = {{1200, true}, {0, true}, {600, true}, {0, true}};
	SolverPayment pay[2] = {
		{0, 1, 110000, 100000, 100000, 0, 1, 0, 1100},
		{2, 3, 50000, 55000, 100000, 1, 0, 0, -550}};
	double		fees[2] = {25, 22};
	double		spread[1] = {0.001};
	SolverProblem p = problem(4, acc, 2, pay, 2, fees, 1, spread);
	bool		sel[2];
	SolverResult r;

	acc[0].available = 120000;
	acc[2].available = 60000;
	solve(&p, sel, &r);
	ok(sel[0] && sel[1], "fx: both opposite payments settle");
	ok(fabs(r.objective - (25 + 22 + 0.55)) < 1e-6, "fx: spread paid on the net (0.55), fees once per wire");
}

static void
test_random_limits(void)
{
	int			trial;
	int			bad = 0;
	int			worse = 0;

	for (trial = 0; trial < 50; trial++)
	{
		int			na = 2 + rnd(8),
					np = 1 + rnd(60),
					i;
		SolverAccount *acc = calloc(na, sizeof(*acc));
		SolverPayment *pay = calloc(np, sizeof(*pay));
		double	   *fees = calloc(na, sizeof(double));
		bool	   *sel = calloc(np, sizeof(bool));
		bool	   *g = calloc(np, sizeof(bool));
		SolverProblem p;
		SolverResult r;

		for (i = 0; i < na; i++)
		{
			acc[i].available = rnd(1000);
			acc[i].constrained = rnd(10) != 0;
			fees[i] = rnd(3);
		}
		for (i = 0; i < np; i++)
		{
			int			s = rnd(na),
						d = (s + 1 + rnd(na - 1)) % na;
			int64_t		amt = 1 + rnd(500);

			pay[i] = (SolverPayment) {s, d, amt, amt, 1 + rnd(50) * (double) amt, s, d, -1, 0};
		}
		p = problem(na, acc, np, pay, na, fees, 0, NULL);
		solve(&p, sel, &r);
		if (r.status > SOLVER_HEURISTIC || settle_check_selection(&p, sel) >= 0)
			bad++;
		settle_solve_greedy(&p, g);
		if (settle_check_selection(&p, g) >= 0)
			bad++;
		/* the solver keeps the cheapest candidate, the heuristic among them */
		if (r.objective > cost_of(&p, g) + 1e-6)
			worse++;
		free(acc);
		free(pay);
		free(fees);
		free(sel);
		free(g);
	}
	ok(bad == 0, "random instances: no selection ever breaks a limit (exact check)");
	ok(worse == 0, "random instances: the solver never costs more than the heuristic alone");
}

/*
 * Tiny random instances with fees, FX, unconstrained accounts and an
 * account already below its limit: the solver's cost must equal the best
 * over all 2^n selections, and its reported figures must be consistent.
 */
static void
test_brute_force(void)
{
	int			trial;
	int			not_optimal = 0,
				bad_report = 0,
				infeasible = 0;

	for (trial = 0; trial < 60; trial++)
	{
		int			na = 2 + rnd(4),
					np = 1 + rnd(10),
					nfx = 2,
					i;
		SolverAccount acc[6];
		SolverPayment pay[12];
		double		fees[6];
		double		spread[2] = {0.001 * rnd(20), 0.01};
		bool		sel[12],
					try[12];
		double		best = HUGE_VAL;
		SolverProblem p;
		SolverResult r;
		unsigned	mask;

		for (i = 0; i < na; i++)
		{
			acc[i].available = rnd(300) - (rnd(8) == 0 ? 50 : 0);
			acc[i].constrained = rnd(6) != 0;
			fees[i] = rnd(4) * 5.0;
		}
		for (i = 0; i < np; i++)
		{
			int			s = rnd(na),
						d = (s + 1 + rnd(na - 1)) % na;
			int64_t		amt = 1 + rnd(200);
			int			k = rnd(3) - 1;

			pay[i] = (SolverPayment) {s, d, amt, amt + rnd(3), rnd(3) == 0 ? 0.5 + rnd(10) : 1.0 * amt,
				rnd(5) ? s : -1, d, k, k >= 0 ? (rnd(2) ? 1.0 : -1.0) * amt : 0};
		}
		p = problem(na, acc, np, pay, na, fees, nfx, spread);
		p.mip_gap = 1e-9;
		for (mask = 0; mask < (1u << np); mask++)
		{
			for (i = 0; i < np; i++)
				try[i] = (mask >> i) & 1;
			if (settle_check_selection(&p, try) < 0 && full_cost(&p, try) < best)
				best = full_cost(&p, try);
		}
		solve(&p, sel, &r);
		if (r.status > SOLVER_HEURISTIC || settle_check_selection(&p, sel) >= 0)
			infeasible++;
		else if (r.objective > best + 1e-6 * (1 + best))
			not_optimal++;
		if (fabs(r.objective - full_cost(&p, sel)) > 1e-6 * (1 + best) ||
			(r.lp_bound >= 0 && r.lp_bound > r.objective + 1e-6 * (1 + best)))
			bad_report++;
	}
	ok(infeasible == 0, "tiny instances: feasible selections only");
	ok(not_optimal == 0, "tiny instances: cost equals the optimum over all subsets");
	ok(bad_report == 0, "tiny instances: objective is the exact cost, LP bound below it");
}

/*
 * Medium random instances with everything at once (fees, FX, operator
 * accounts, an account below its limit, payments to itself), some large
 * enough to be sifted: always within limits, objective exact, the LP bound
 * below the objective, close to or below the greedy fallback.  Not
 * "never worse": the solver does not search H as the fallback does (at
 * 10,000 payments and a 500 ms limit that search took the local search's
 * time share), so the two can end in different local optima; on trial 5
 * (2,151 payments) the fallback ends 0.19% lower (the previous version had
 * the same two optima the other way round).
 */
static void
test_random_medium(void)
{
	int			trial;
	int			infeasible = 0,
				bad_report = 0,
				worse = 0,
				much_worse = 0;

	for (trial = 0; trial < 8; trial++)
	{
		int			na = 10 + rnd(40),
					np = trial < 4 ? 200 + rnd(800) : 2000 + rnd(1500),
					nfx = 3,
					i;
		SolverAccount *acc = calloc(na, sizeof(*acc));
		SolverPayment *pay = calloc(np, sizeof(*pay));
		double	   *fees = calloc(na, sizeof(double));
		double		spread[3] = {0.0005, 0.001, 0};
		bool	   *sel = calloc(np, sizeof(bool));
		bool	   *g = calloc(np, sizeof(bool));
		SolverProblem p;
		SolverResult r;
		double		cost;

		for (i = 0; i < na; i++)
		{
			acc[i].available = rnd(20) == 0 ? -rnd(5000) : rnd(200000);
			acc[i].constrained = rnd(15) != 0;
			fees[i] = rnd(3) * 10.0;
		}
		for (i = 0; i < np; i++)
		{
			int			s = rnd(na),
						d = rnd(100) == 0 ? s : (s + 1 + rnd(na - 1)) % na;
			int64_t		amt = 1 + rnd(50000);
			int			k = rnd(4) - 1;
			double		value = amt / 100.0;

			pay[i] = (SolverPayment) {s, d, amt, k >= 0 ? amt + rnd(amt / 10 + 1) : amt,
				rnd(3) == 0 ? value * 0.001 : (1 + rnd(9)) * value + 20, s, d, k,
				k >= 0 ? (rnd(2) ? value : -value) : 0};
		}
		p = problem(na, acc, np, pay, na, fees, nfx, spread);
		p.time_limit_ms = 0;	/* no limit: the comparison must not depend on speed */
		solve(&p, sel, &r);
		cost = full_cost(&p, sel);
		if (r.status > SOLVER_HEURISTIC || settle_check_selection(&p, sel) >= 0)
			infeasible++;
		if (fabs(r.objective - cost) > 1e-6 * (1 + cost) ||
			(r.lp_bound >= 0 && r.lp_bound > r.objective + 1e-6 * (1 + cost)))
			bad_report++;
		settle_solve_greedy(&p, g);
		if (settle_check_selection(&p, g) >= 0)
			infeasible++;
		printf("# medium trial %d (%d payments): objective %.2f, greedy fallback %.2f\n",
			   trial, np, r.objective, full_cost(&p, g));
		if (r.objective > full_cost(&p, g) + 1e-6 * (1 + cost))
			worse++;
		if (r.objective > 1.005 * full_cost(&p, g) + 1e-6 * (1 + cost))
			much_worse++;
		free(acc);
		free(pay);
		free(fees);
		free(sel);
		free(g);
	}
	ok(infeasible == 0, "medium instances (200-3500 payments, sifted above 2000): within every limit");
	ok(bad_report == 0, "medium instances: objective is the exact cost, LP bound below it");
	ok(much_worse == 0 && worse <= 1,
	   "medium instances: never 0.5% costlier than the greedy fallback, costlier on at most 1 of 8");
}

/* Payments of unrelated participants are solved as separate components. */
static void
test_components(void)
{
	SolverAccount acc[6] = {{0, true}, {0, true}, {0, true}, {0, true}, {5, true}, {0, true}};
	SolverPayment pay[5] = {
		{0, 1, 100, 100, 10, -1, -1, -1, 0},
		{1, 0, 100, 100, 10, -1, -1, -1, 0},
		{2, 3, 50, 50, 10, -1, -1, -1, 0},
		{3, 2, 50, 50, 10, -1, -1, -1, 0},
		{4, 5, 10, 10, 10, -1, -1, -1, 0}};
	SolverProblem p = problem(6, acc, 5, pay, 0, NULL, 0, NULL);
	bool		sel[5];
	SolverResult r;

	solve(&p, sel, &r);
	ok(r.components == 3, "components: three independent pairs are three components");
	ok(sel[0] && sel[1] && sel[2] && sel[3] && !sel[4], "components: both swaps settle, the unfunded payment waits");
	ok(fabs(r.settled_weight - 40) < 1e-9 && fabs(r.objective - 10) < 1e-9, "components: weight and cost add up");
}

/* Odd but legal input: an account paying itself, unconstrained operator accounts. */
static void
test_odd_input(void)
{
	SolverAccount acc[3] = {{0, true}, {0, false}, {-20, true}};
	SolverPayment pay[4] = {
		{0, 0, 10, 10, 5, -1, -1, -1, 0},	/* to itself: no net effect */
		{1, 0, 70, 70, 5, -1, -1, -1, 0},	/* from the operator's account */
		{0, 2, 60, 60, 5, -1, -1, -1, 0},	/* into an account below its limit */
		{2, 1, 90, 90, 5, -1, -1, -1, 0}};	/* out of it: -20 + 60 - 90 < -20 */
	SolverProblem p = problem(3, acc, 4, pay, 0, NULL, 0, NULL);
	bool		sel[4];
	SolverResult r;

	solve(&p, sel, &r);
	ok(r.status <= SOLVER_FEASIBLE && settle_check_selection(&p, sel) < 0,
	   "odd input: solved, within limits");
	ok(sel[0] && sel[1] && sel[2] && !sel[3], "odd input: self-payment and operator funding settle, overdraft does not");
	pay[3].debit = pay[3].credit = 40;
	solve(&p, sel, &r);
	ok(sel[3], "odd input: an account below its limit may pay out what it received");
}

/*
 * Large component (solved by sifting): the LP bound reported must be the
 * LP relaxation's optimum, solved here independently with plain simplex.
 */
static void
test_lp_bound(void)
{
	int			na = 40,
				np = 3000,
				i;
	SolverAccount *acc = calloc(na, sizeof(*acc));
	SolverPayment *pay = calloc(np, sizeof(*pay));
	int64_t    *out = calloc(na, sizeof(int64_t));
	bool	   *sel = calloc(np, sizeof(bool));
	int		   *idx = malloc(sizeof(int) * (np + 1));
	double	   *val = malloc(sizeof(double) * (np + 1));
	double		total = 0,
				z;
	SolverProblem p;
	SolverResult r;
	glp_prob   *lp;
	glp_smcp	smcp;

	for (i = 0; i < np; i++)
	{
		int			s = rnd(na),
					d = (s + 1 + rnd(na - 1)) % na;
		int64_t		amt = 1 + rnd(100000);

		pay[i] = (SolverPayment) {s, d, amt, amt, (1 + rnd(9)) * (double) amt, -1, -1, -1, 0};
		out[s] += amt;
		total += pay[i].penalty;
	}
	for (i = 0; i < na; i++)
		acc[i] = (SolverAccount) {out[i] / 20, true};
	p = problem(na, acc, np, pay, 0, NULL, 0, NULL);
	p.time_limit_ms = 20000;
	solve(&p, sel, &r);

	glp_term_out(GLP_OFF);
	lp = glp_create_prob();
	glp_set_obj_dir(lp, GLP_MAX);
	glp_add_cols(lp, np);
	glp_add_rows(lp, na);
	for (i = 0; i < np; i++)
	{
		glp_set_col_bnds(lp, i + 1, GLP_DB, 0, 1);
		glp_set_obj_coef(lp, i + 1, pay[i].penalty);
	}
	for (i = 0; i < na; i++)
	{
		int			j,
					len = 0;

		for (j = 0; j < np; j++)
		{
			if (pay[j].src == i)
			{
				idx[++len] = j + 1;
				val[len] = -(double) pay[j].debit;
			}
			else if (pay[j].dst == i)
			{
				idx[++len] = j + 1;
				val[len] = (double) pay[j].credit;
			}
		}
		glp_set_row_bnds(lp, i + 1, GLP_LO, -(double) acc[i].available, 0);
		glp_set_mat_row(lp, i + 1, len, idx, val);
	}
	glp_init_smcp(&smcp);
	smcp.msg_lev = GLP_MSG_OFF;
	glp_simplex(lp, &smcp);
	z = glp_get_obj_val(lp);
	glp_delete_prob(lp);
	glp_free_env();
	ok(r.status == SOLVER_FEASIBLE || r.status == SOLVER_OPTIMAL, "large component: solved with the LP");
	ok(fabs(r.lp_bound - (total - z)) <= 1e-6 * total && fabs(r.lp_weight_bound - z) <= 1e-6 * total,
	   "large component: LP bound equals an independent simplex solve");
	ok(r.settled_weight <= z * (1 + 1e-9) && r.settled_weight >= 0.95 * z,
	   "large component: settled weight within 5% of the LP bound");
	free(acc);
	free(pay);
	free(out);
	free(sel);
	free(idx);
	free(val);
}

/*
 * The benchmark's reference instances at 1,000 payments (workload.h, seed
 * 42), without a time limit so that the result does not depend on the
 * machine: within every limit, and at least as good as this version of the
 * solver measured (the floors sit a little below the measured 77.351%,
 * 88.007% and 87.992% of the LP bound; without the iterated search's kicks
 * 77.351%, 88.007% and 87.180%).  The bound is that of the probed LP (issue
 * #20: payments that cannot settle fixed at 0), about 10% lower in weight
 * than the plain LP's, so earlier figures (71.5%, 82.8%, 84.8% of the plain
 * LP before the dual-priced repair and the filling moves) do not compare.
 */
static void
test_reference_workload(void)
{
	static const struct
	{
		double		liquidity;
		bool		costs;
		double		floor_pct;
	}			cases[3] = {{0.05, false, 77.0}, {0.10, false, 87.5}, {0.10, true, 87.5}};
	int			c;

	for (c = 0; c < 3; c++)
	{
		Workload	wl;
		bool	   *sel = calloc(1000, sizeof(bool));
		bool	   *g = calloc(1000, sizeof(bool));
		SolverResult r;
		char		name[160];
		double		pct;

		if (!sel || !g || !workload_make(&wl, 1000, cases[c].liquidity, cases[c].costs))
		{
			ok(0, "reference workload: out of memory");
			free(sel);
			free(g);
			continue;
		}
		wl.p.time_limit_ms = 0;
		solve(&wl.p, sel, &r);
		pct = r.lp_weight_bound > 0 ? 100.0 * r.settled_weight / r.lp_weight_bound : -1;
		settle_solve_greedy(&wl.p, g);
		snprintf(name, sizeof(name),
				 "reference workload 1,000 payments, liquidity %.0f%%, costs %s: within limits, "
				 "%.3f%% of the LP bound >= %.1f%%, not costlier than greedy",
				 100 * cases[c].liquidity, cases[c].costs ? "on" : "off", pct, cases[c].floor_pct);
		ok(r.status == SOLVER_FEASIBLE && settle_check_selection(&wl.p, sel) < 0 &&
		   pct >= cases[c].floor_pct &&
		   r.objective <= full_cost(&wl.p, g) + 1e-6 * (1 + r.objective), name);
		workload_free(&wl);
		free(sel);
		free(g);
	}
}

/*
 * The iterated local search (solver_perturb.c) on the reference instances
 * at 1,000 payments (four of them) and two other seeds, no time limit: with
 * its kicks the selection is within every limit and never costlier than
 * without them (it keeps a kick only when the exact objective falls), and
 * it is cheaper on at least half of the instances (else the kicks do
 * nothing: measured cheaper on 10 of the 12).  Then the time limit holds with
 * far more kicks than the time allows: the kicks stop at the local search's
 * share of the limit.
 */
static void
test_iterated_search(void)
{
	static const struct
	{
		double		liquidity;
		bool		costs;
	}			cases[4] = {{0.05, false}, {0.05, true}, {0.10, false}, {0.10, true}};
	static const unsigned long long seeds[3] = {42, 1, 2};
	int			saved_kicks = settle_solver_ils_kicks;
	int			saved_work = settle_solver_ils_work;
	int			c,
				k,
				better = 0,
				total = 0;
	bool		all_ok = true;

	for (k = 0; k < 3; k++)
		for (c = 0; c < 4; c++)
		{
			Workload	wl;
			bool	   *sel = calloc(1000, sizeof(bool));
			SolverResult r0,
						r4;

			if (!sel || !workload_make_seeded(&wl, 1000, cases[c].liquidity, cases[c].costs, seeds[k]))
			{
				all_ok = false;
				free(sel);
				continue;
			}
			wl.p.time_limit_ms = 0;
			settle_solver_ils_kicks = 0;
			solve(&wl.p, sel, &r0);
			settle_solver_ils_kicks = 4;
			solve(&wl.p, sel, &r4);
			total++;
			if (r4.status != SOLVER_FEASIBLE || settle_check_selection(&wl.p, sel) >= 0 ||
				fabs(full_cost(&wl.p, sel) - r4.objective) > 1e-6 * (1 + r4.objective) ||
				r4.objective > r0.objective + 1e-9 * (1 + r0.objective))
			{
				printf("# seed %llu liquidity %.2f costs %s: status %d, objective %.2f with kicks, %.2f without\n",
					   seeds[k], cases[c].liquidity, cases[c].costs ? "on" : "off", (int) r4.status,
					   r4.objective, r0.objective);
				all_ok = false;
			}
			if (r4.objective < r0.objective - 1e-9 * (1 + r0.objective))
				better++;
			workload_free(&wl);
			free(sel);
		}
	settle_solver_ils_kicks = saved_kicks;
	printf("# iterated search: cheaper on %d of %d instances\n", better, total);
	ok(all_ok && total == 12 && 2 * better >= total,
	   "iterated local search: 12 instances at 1,000 payments within limits, exact objective, "
	   "never costlier than without kicks, cheaper on at least half");

	{
		Workload	wl;
		bool	   *sel = calloc(1000, sizeof(bool));
		SolverResult r;
		double		limit = 40;

		if (!sel || !workload_make(&wl, 1000, 0.05, false))
		{
			ok(0, "iterated search time limit: out of memory");
			free(sel);
			return;
		}
		settle_solver_ils_kicks = 100000;
		settle_solver_ils_work = 0;		/* only the time limit stops them */
		wl.p.time_limit_ms = limit;
		solve(&wl.p, sel, &r);
		settle_solver_ils_kicks = saved_kicks;
		settle_solver_ils_work = saved_work;
		printf("# 100,000 kicks, limit %.0f ms: %.1f ms wall, status %d\n", limit, r.solve_ms, (int) r.status);
		/* wall clock on a shared machine: the bound is loose, not a benchmark */
		ok((r.status == SOLVER_FEASIBLE || r.status == SOLVER_HEURISTIC) &&
		   settle_check_selection(&wl.p, sel) < 0 && r.solve_ms < limit + 250,
		   "iterated local search with 100,000 kicks stops at the time limit (40 ms, 1,000 payments)");
		workload_free(&wl);
		free(sel);
	}

	{
		/*
		 * The effort bound, not the clock, stops 100,000 kicks without a time
		 * limit: the solve ends, twice alike, and a bound twice as large
		 * allows more effort (never a costlier selection: kicks only replace
		 * the best when cheaper).
		 */
		Workload	wl;
		bool	   *a = calloc(1000, sizeof(bool));
		bool	   *b = calloc(1000, sizeof(bool));
		SolverResult ra,
					rb,
					r2;
		bool		same;

		if (!a || !b || !workload_make(&wl, 1000, 0.10, false))
		{
			ok(0, "iterated search effort bound: out of memory");
			free(a);
			free(b);
			return;
		}
		wl.p.time_limit_ms = 0;
		settle_solver_ils_kicks = 100000;
		settle_solver_ils_work = 1600;
		solve(&wl.p, a, &ra);
		solve(&wl.p, b, &rb);
		same = memcmp(a, b, 1000 * sizeof(bool)) == 0;
		settle_solver_ils_work = 3200;
		solve(&wl.p, b, &r2);
		settle_solver_ils_kicks = saved_kicks;
		settle_solver_ils_work = saved_work;
		printf("# effort bound 1600: %.1f ms, objective %.2f; 3200: %.1f ms, objective %.2f\n",
			   ra.solve_ms, ra.objective, r2.solve_ms, r2.objective);
		ok(ra.status == SOLVER_FEASIBLE && rb.status == SOLVER_FEASIBLE && same &&
		   ra.objective == rb.objective && settle_check_selection(&wl.p, a) < 0 &&
		   r2.objective <= ra.objective,
		   "iterated local search without a time limit stops at its effort bound, deterministically");
		workload_free(&wl);
		free(a);
		free(b);
	}
}

/*
 * Probing (issue #20) and the liquidity prices (issue #21).  The ring
 * f1 -> f2 -> f3 -> f4 -> f1 of 100, 100, 100, 70 with f1 holding 10
 * (sql/funding_advice.sql): no payment can ever settle, probing fixes them
 * all at 0 in the relaxation the search uses, yet the prices the cycle
 * records are the plain relaxation's, where f1's liquidity is worth
 * something (the ring settles 0.8 of itself fractionally).  And asking for
 * prices changes no selection: the reference instance with and without.
 */
static void
test_probing_and_prices(void)
{
	SolverAccount acc[4] = {{1000, true}, {0, true}, {0, true}, {0, true}};
	SolverPayment pay[4] = {
		{0, 1, 10000, 10000, 100, -1, -1, -1, 0},
		{1, 2, 10000, 10000, 100, -1, -1, -1, 0},
		{2, 3, 10000, 10000, 100, -1, -1, -1, 0},
		{3, 0, 7000, 7000, 70, -1, -1, -1, 0}};
	SolverProblem p = problem(4, acc, 4, pay, 0, NULL, 0, NULL);
	double		price[4] = {-1, -1, -1, -1};
	bool		sel[4];
	SolverResult r;
	Workload	wl;
	bool	   *a = calloc(1000, sizeof(bool));
	bool	   *b = calloc(1000, sizeof(bool));
	double	   *prices = calloc(WL_NACC, sizeof(double));
	SolverResult ra,
				rb;
	int			i,
				positive = 0,
				negative = 0;

	p.account_price = price;
	solve(&p, sel, &r);
	printf("# ring prices: %g %g %g %g, lp bound %g\n", price[0], price[1], price[2], price[3], r.lp_bound);
	ok(!sel[0] && !sel[1] && !sel[2] && !sel[3] && r.status == SOLVER_OPTIMAL,
	   "probing: a ring that can never settle settles nothing, proven (the probed LP bound is met)");
	ok(price[0] > 0 && price[1] >= 0 && price[2] >= 0 && price[3] >= 0,
	   "probing: the recorded prices are the plain relaxation's (f1's liquidity is worth something)");

	if (!a || !b || !prices || !workload_make(&wl, 1000, 0.10, false))
	{
		ok(0, "prices on the reference instance: out of memory");
		free(a);
		free(b);
		free(prices);
		return;
	}
	wl.p.time_limit_ms = 0;
	solve(&wl.p, a, &ra);
	wl.p.account_price = prices;
	solve(&wl.p, b, &rb);
	for (i = 0; i < WL_NACC; i++)
	{
		positive += prices[i] > 0;
		negative += prices[i] < 0;
	}
	printf("# reference instance: %d of %d accounts priced above 0\n", positive, WL_NACC);
	ok(memcmp(a, b, 1000 * sizeof(bool)) == 0 && ra.objective == rb.objective &&
	   positive > 0 && negative == 0,
	   "prices: asking for them changes no selection (reference instance, 1,000 payments)");
	workload_free(&wl);
	free(a);
	free(b);
	free(prices);
}

/*
 * The exact check itself, fed selections that break a limit (issue #17,
 * item 9a): exactly at the limit passes, one minor unit over fails, an
 * account already below zero may not go lower, an unconstrained one may, and
 * sums beyond int64 neither wrap into a pass nor into a false violation.
 * Then settle_solve's own final check, fed a bad selection (fault injection
 * 2): the solve fails rather than return it.
 */
static void
test_exact_check(void)
{
	SolverAccount acc[3] = {{100, true}, {10, true}, {-50, true}};
	SolverPayment pay[4] = {
		{0, 1, 100, 100, 1, -1, -1, -1, 0},
		{1, 0, 1, 1, 1, -1, -1, -1, 0},
		{2, 1, 10, 10, 1, -1, -1, -1, 0},
		{1, 2, 10, 10, 1, -1, -1, -1, 0}};
	bool		sel[4] = {true, false, false, false};
	SolverProblem p = problem(3, acc, 4, pay, 0, NULL, 0, NULL);
	SolverAccount big[3] = {{10, true}, {INT64_MAX, true}, {INT64_MAX, true}};
	SolverPayment bigpay[3] = {
		{0, 1, INT64_MAX, INT64_MAX, 1, -1, -1, -1, 0},
		{0, 1, INT64_MAX, INT64_MAX, 1, -1, -1, -1, 0},
		{2, 1, INT64_MAX, INT64_MAX, 1, -1, -1, -1, 0}};
	bool		bigsel[3] = {false, false, true};
	SolverProblem bp = problem(3, big, 3, bigpay, 0, NULL, 0, NULL);
	SolverAccount racc[3] = {{0, true}, {0, true}, {0, true}};
	SolverPayment rpay[3] = {
		{0, 1, 100, 100, 10, -1, -1, -1, 0},
		{1, 2, 100, 100, 10, -1, -1, -1, 0},
		{2, 0, 99, 99, 10, -1, -1, -1, 0}};
	SolverProblem rp = problem(3, racc, 3, rpay, 0, NULL, 0, NULL);
	bool		rsel[3];
	SolverResult r;

	ok(settle_check_selection(&p, sel) == -1, "exact check: ending exactly at the limit passes");
	pay[0].debit = 101;
	ok(settle_check_selection(&p, sel) == 0, "exact check: one minor unit over the limit fails (account 0)");
	sel[1] = true;
	ok(settle_check_selection(&p, sel) == -1, "exact check: a credit of one unit in the same selection makes it fit");
	pay[1].credit = 0;
	ok(settle_check_selection(&p, sel) == 0, "exact check: debit 101 against 100 with no credit fails again");
	pay[0].debit = 100;
	pay[1].credit = 1;
	sel[0] = sel[1] = false;
	sel[3] = true;
	ok(settle_check_selection(&p, sel) == -1, "exact check: an account below zero may receive");
	sel[2] = true;
	ok(settle_check_selection(&p, sel) == -1, "exact check: an account below zero may pay what it receives (ends where it started)");
	sel[3] = false;
	ok(settle_check_selection(&p, sel) == 2, "exact check: an account below zero may not go lower (account 2)");
	acc[2].constrained = false;
	ok(settle_check_selection(&p, sel) == -1, "exact check: an unconstrained account may go lower");
	acc[2].constrained = true;
	sel[0] = true;
	pay[0].debit = 101;
	ok(settle_check_selection(&p, sel) == 0, "exact check: of two violated accounts, the first is reported");

	ok(settle_check_selection(&bp, bigsel) == -1,
	   "exact check, 128 bits: INT64_MAX + INT64_MAX is a large balance, not a negative one");
	bigsel[0] = bigsel[1] = true;
	bigsel[2] = false;
	ok(settle_check_selection(&bp, bigsel) == 0,
	   "exact check, 128 bits: 10 - 2 x INT64_MAX does not wrap into a pass");

	settle_solver_fault_injection = 2;
	solve(&rp, rsel, &r);
	settle_solver_fault_injection = 0;
	ok(r.status == SOLVER_ERROR && strstr(r.message, "exact limit check") != NULL,
	   "final check: a bad selection makes the solve fail (status error, message)");
	ok(!rsel[0] && !rsel[1] && !rsel[2], "final check: the bad selection is not returned");
	solve(&rp, rsel, &r);
	ok(r.status == SOLVER_OPTIMAL && !rsel[0] && !rsel[1] && !rsel[2],
	   "final check: without the fault, the broken ring settles nothing, optimally");
}

/* A GLPK internal error must come back as the greedy result, not abort(). */
static void
test_glpk_error(void)
{
	SolverAccount acc[3] = {{0, true}, {0, true}, {0, true}};
	SolverPayment pay[3] = {
		{0, 1, 100, 100, 10, -1, -1, -1, 0},
		{1, 2, 100, 100, 10, -1, -1, -1, 0},
		{2, 0, 100, 100, 10, -1, -1, -1, 0}};
	SolverProblem p = problem(3, acc, 3, pay, 0, NULL, 0, NULL);
	bool		sel[3];
	SolverResult r;

	settle_solver_fault_injection = 1;
	solve(&p, sel, &r);
	settle_solver_fault_injection = 0;
	ok(r.status == SOLVER_HEURISTIC && strstr(r.message, "GLPK") != NULL,
	   "GLPK error: caught by the hook, status heuristic with a message");
	ok(sel[0] && sel[1] && sel[2] && settle_check_selection(&p, sel) < 0,
	   "GLPK error: the greedy result is used (the ring settles)");
	solve(&p, sel, &r);
	ok(r.status == SOLVER_OPTIMAL && sel[0], "GLPK error: the next solve works normally");
}

static int	interrupt_after;

static bool
interrupted_later(void *arg)
{
	(void) arg;
	return --interrupt_after < 0;
}

static void
test_failure_paths(void)
{
	int			np = 20000,
				na = 50,
				i;
	SolverAccount *acc = calloc(na, sizeof(*acc));
	SolverPayment *pay = calloc(np, sizeof(*pay));
	double	   *fees = calloc(na, sizeof(double));
	bool	   *sel = calloc(np, sizeof(bool));
	SolverProblem p;
	SolverResult r;
	SolverPayment bad_pay[1] = {{0, 5, 10, 10, 1, -1, -1, -1, 0}};
	SolverAccount two[2] = {{10, true}, {0, true}};
	int			calls,
				fired = 0;
	clock_t		cpu0;
	double		cpu_ms;

	for (i = 0; i < na; i++)
		acc[i] = (SolverAccount) {1000 + rnd(100000), true};
	for (i = 0; i < np; i++)
	{
		int			s = rnd(na),
					d = (s + 1 + rnd(na - 1)) % na;
		int64_t		amt = 1 + rnd(5000);

		pay[i] = (SolverPayment) {s, d, amt, amt, (double) amt, s, d, -1, 0};
	}
	p = problem(na, acc, np, pay, na, fees, 0, NULL);
	p.time_limit_ms = 0.000001;
	solve(&p, sel, &r);
	ok(r.status == SOLVER_HEURISTIC, "time limit: falls back to the heuristic");
	ok(settle_check_selection(&p, sel) < 0, "time limit: the fallback selection is within every limit");
	ok(strstr(r.method, "greedy") != NULL, "time limit: the method says greedy");
	for (i = 0; i < np && !sel[i]; i++)
		;
	ok(i < np, "time limit: the fallback still settles something");
	p.time_limit_ms = 15;
	cpu0 = clock();
	solve(&p, sel, &r);
	cpu_ms = 1000.0 * (double) (clock() - cpu0) / CLOCKS_PER_SEC;
	printf("# time limit 15 ms on 20,000 payments: %.1f ms wall, %.1f ms CPU, status %d\n",
		   r.solve_ms, cpu_ms, (int) r.status);

	/*
	 * On time: the wall clock, or the CPU time when the process was starved
	 * (under valgrind on a machine with a load average above 5 the wall
	 * clock reached 318 ms for about 70 ms of work, old and new solver
	 * alike).
	 */
	ok((r.status == SOLVER_FEASIBLE || r.status == SOLVER_HEURISTIC) &&
	   settle_check_selection(&p, sel) < 0 && (r.solve_ms < 15 + 250 || cpu_ms < 15 + 250),
	   "time limit 15 ms on 20,000 payments: feasible or heuristic, within limits, on time");

	p.time_limit_ms = 2000;
	p.interrupted = always_interrupted;
	solve(&p, sel, &r);
	for (i = 0; i < np && !sel[i]; i++)
		;
	ok(r.status == SOLVER_INTERRUPTED && i == np, "interrupted: nothing selected");
	for (calls = 1; calls <= 1000; calls *= 10)
	{
		interrupt_after = calls;
		p.interrupted = interrupted_later;
		solve(&p, sel, &r);
		for (i = 0; i < np && !sel[i]; i++)
			;
		/* once the callback has said stop, nothing may be selected */
		if (interrupt_after < 0 && (r.status != SOLVER_INTERRUPTED || i != np))
			break;
		if (interrupt_after < 0)
			fired++;
	}
	if (calls <= 1000 || fired < 1)
		printf("# calls %d fired %d status %d\n", calls, fired, (int) r.status);
	ok(calls > 1000 && fired >= 1, "interrupted later (after 1, 10, 100, 1000 checks): nothing selected");
	p.interrupted = NULL;

	p = problem(2, two, 0, NULL, 0, NULL, 0, NULL);
	solve(&p, sel, &r);
	ok(r.status == SOLVER_OPTIMAL && r.objective == 0 && r.components == 0, "empty queue: optimal, nothing to do");
	p = problem(2, two, 1, bad_pay, 0, NULL, 0, NULL);
	solve(&p, sel, &r);
	ok(r.status == SOLVER_ERROR && !sel[0], "invalid input: refused, nothing selected");
	bad_pay[0].dst = 1;
	bad_pay[0].penalty = -1;
	solve(&p, sel, &r);
	ok(r.status == SOLVER_ERROR, "negative penalty: refused");
	bad_pay[0].penalty = 1;
	bad_pay[0].debit = 0;
	solve(&p, sel, &r);
	ok(r.status == SOLVER_ERROR, "zero amount: refused");
	bad_pay[0].debit = 10;
	bad_pay[0].wire_src = 3;
	solve(&p, sel, &r);
	ok(r.status == SOLVER_ERROR && strstr(r.message, "wire") != NULL, "wire index out of range: refused with a message");
	bad_pay[0].wire_src = -1;
	two[1].available = INT64_MAX - 5;
	solve(&p, sel, &r);
	ok(r.status == SOLVER_ERROR && strstr(r.message, "overflow") != NULL && !sel[0],
	   "int64 overflow of an account's balance range: refused");
	two[1].available = 0;
	solve(&p, sel, &r);
	ok(r.status == SOLVER_OPTIMAL && sel[0], "the same payment, valid again: settles");
	free(acc);
	free(pay);
	free(fees);
	free(sel);
}

/*
 * Linked groups (issue #27).  The unit of choice: the group's payments
 * (group[i] == g) or the unlinked payment i alone.  unit_members() lists
 * them into out; returns how many.
 */
static int
unit_members(const SolverProblem *p, int i, int *out)
{
	int			k = 0;
	int			j;

	if (p->group == NULL || p->group[i] < 0)
	{
		out[0] = i;
		return 1;
	}
	for (j = 0; j < p->n_payments; j++)
		if (p->group[j] == p->group[i])
			out[k++] = j;
	return k;
}

/*
 * Maximality, checked independently of the solver: no unselected payment
 * or whole group can be added to the selection so that it stays within
 * every limit (settle_check_selection) and its full cost falls.  Returns
 * the number of such units.
 */
static int
addable_units(const SolverProblem *p, const bool *sel)
{
	bool	   *with = malloc(sizeof(bool) * (p->n_payments + 1));
	int		   *m = malloc(sizeof(int) * (p->n_payments + 1));
	double		base = full_cost(p, sel);
	int			found = 0;
	int			i;

	for (i = 0; i < p->n_payments; i++)
	{
		int			k = unit_members(p, i, m);
		int			j;

		if (sel[i] || m[0] != i)
			continue;			/* selected, or the group is looked at from its first member */
		memcpy(with, sel, sizeof(bool) * p->n_payments);
		for (j = 0; j < k; j++)
			with[m[j]] = true;
		if (settle_check_selection(p, with) < 0 && full_cost(p, with) < base - 1e-9 * (1 + base))
			found++;
	}
	free(with);
	free(m);
	return found;
}

/*
 * The frozen payer of issue #27, in the solver: X (100.00) pays 100.00 in a
 * group whose other leg's payer has nothing, 5.00 unlinked and a group of
 * two payments of 10.00.  Without the groups in the model the largest leg
 * takes all of X's liquidity; with them, the group that cannot settle is
 * never chosen and what X can pay (25.00) settles.
 */
static void
test_group_frozen_payer(void)
{
	/* 0 X usd, 1 Y usd, 2 Y eur, 3 X eur, 4 Z usd */
	SolverAccount acc[5] = {{10000, true}, {0, true}, {0, true}, {0, true}, {0, true}};
	SolverPayment pay[5] = {
		{0, 1, 10000, 10000, 200, -1, -1, -1, 0},	/* stuck group, leg 1 */
		{2, 3, 5000, 5000, 100, -1, -1, -1, 0}, /* stuck group, leg 2: Y has no EUR */
		{0, 4, 500, 500, 10, -1, -1, -1, 0},	/* unlinked */
		{0, 4, 1000, 1000, 20, -1, -1, -1, 0},	/* payable group */
		{0, 4, 1000, 1000, 20, -1, -1, -1, 0}};
	int			group[5] = {0, 0, -1, 1, 1};
	SolverProblem p = problem(5, acc, 5, pay, 0, NULL, 0, NULL);
	bool		sel[5];
	bool		g[5];
	SolverResult r;

	solve(&p, sel, &r);
	ok(sel[0] && !sel[2] && !sel[3], "frozen payer: without groups the largest leg takes all of X's liquidity");
	p.n_groups = 2;
	p.group = group;
	solve(&p, sel, &r);
	ok(r.status == SOLVER_OPTIMAL && !sel[0] && !sel[1] && sel[2] && sel[3] && sel[4],
	   "frozen payer: with groups in the model the stuck group waits, the rest of X settles (proven)");
	settle_solve_greedy(&p, g);
	ok(!g[0] && !g[1] && g[2] && g[3] && g[4], "frozen payer: the greedy fallback too");
	p.mip_max_payments = 0;
	solve(&p, sel, &r);
	ok(!sel[0] && !sel[1] && sel[2] && sel[3] && sel[4], "frozen payer: without the MIP too (LP, rounding, search)");
	settle_solver_fault_injection = 1;
	solve(&p, sel, &r);
	settle_solver_fault_injection = 0;
	ok(r.status == SOLVER_HEURISTIC && !sel[0] && !sel[1] && sel[2] && sel[3] && sel[4],
	   "frozen payer: after a GLPK error too (the heuristic)");
	group[2] = 2;
	solve(&p, sel, &r);
	ok(r.status == SOLVER_ERROR && strstr(r.message, "group") != NULL,
	   "groups: a group index out of range is refused with a message");
	group[2] = -1;
}

/*
 * A random instance with linked groups: accounts 0 .. na-2 as in the other
 * random tests, account na-1 has nothing and receives nothing (a group with
 * a member it pays can never settle); every fourth group has one.  Groups
 * of 2-4 consecutive payments, about a third of all payments, sharing
 * payers and payees with the unlinked ones.
 */
static void
random_grouped(int na, int np, SolverAccount *acc, SolverPayment *pay, double *fees,
			   int *group, int *n_groups, bool costs, bool fx)
{
	int			i;

	for (i = 0; i < na; i++)
	{
		acc[i].available = i == na - 1 ? 0 : rnd(20) == 0 ? -rnd(500) : rnd(40000);
		acc[i].constrained = i == na - 1 || rnd(12) != 0;
		fees[i] = costs ? rnd(3) * 10.0 : 0;
	}
	for (i = 0; i < np; i++)
	{
		int			s = rnd(na - 1),
					d = (s + 1 + rnd(na - 2)) % (na - 1);
		int64_t		amt = 1 + rnd(5000);
		int			k = fx ? rnd(3) - 1 : -1;
		double		value = amt / 100.0;

		pay[i] = (SolverPayment) {s, d, amt, k >= 0 ? amt + rnd(amt / 10 + 1) : amt,
			(costs && rnd(4) == 0) ? value * 0.01 : (1 + rnd(9)) * value + 20,
			s, d, k, k >= 0 ? (rnd(2) ? value : -value) : 0};
		group[i] = -1;
	}
	*n_groups = 0;
	for (i = 0; i + 1 < np;)
	{
		int			size = 2 + rnd(3);
		int			j;

		if (rnd(3) != 0 || i + size > np)
		{
			i++;
			continue;
		}
		for (j = i; j < i + size; j++)
			group[j] = *n_groups;
		if (*n_groups % 4 == 3)
			pay[i + size - 1].src = pay[i + size - 1].wire_src = na - 1;	/* unpayable */
		(*n_groups)++;
		i += size;
	}
}

/*
 * Tiny random instances with groups: the solver's cost equals the optimum
 * over every selection that keeps each group whole and every limit (the
 * MIP has the groups exactly), and the selection is whole and maximal.
 */
static void
test_group_brute_force(void)
{
	int			trial;
	int			not_optimal = 0,
				bad = 0,
				not_maximal = 0;

	for (trial = 0; trial < 60; trial++)
	{
		int			na = 3 + rnd(3),
					np = 2 + rnd(10),
					ng,
					i;
		SolverAccount acc[6];
		SolverPayment pay[12];
		double		fees[6];
		double		spread[2] = {0.001 * rnd(20), 0.01};
		int			group[12];
		bool		sel[12],
					try[12];
		double		best = HUGE_VAL;
		SolverProblem p;
		SolverResult r;
		unsigned	mask;

		random_grouped(na, np, acc, pay, fees, group, &ng, trial % 2 == 0, trial % 3 == 0);
		for (i = 0; i < na; i++)
			acc[i].available = acc[i].available % 400;
		p = problem(na, acc, np, pay, na, fees, 2, spread);
		p.mip_gap = 1e-9;
		p.n_groups = ng;
		p.group = group;
		for (mask = 0; mask < (1u << np); mask++)
		{
			for (i = 0; i < np; i++)
				try[i] = (mask >> i) & 1;
			if (settle_check_selection(&p, try) < 0 && settle_check_groups(&p, try) < 0 &&
				full_cost(&p, try) < best)
				best = full_cost(&p, try);
		}
		solve(&p, sel, &r);
		if (r.status > SOLVER_HEURISTIC || settle_check_selection(&p, sel) >= 0 ||
			settle_check_groups(&p, sel) >= 0)
			bad++;
		else if (r.objective > best + 1e-6 * (1 + best))
			not_optimal++;
		not_maximal += addable_units(&p, sel) > 0;
	}
	ok(bad == 0, "groups, tiny instances: within every limit, every group whole");
	ok(not_optimal == 0, "groups, tiny instances: cost equals the optimum over all whole-group subsets");
	ok(not_maximal == 0, "groups, tiny instances: maximal (no payment or group could be added)");
}

/*
 * The property of issue #27 over random instances with groups (some
 * unpayable, sharing payers and payees with unlinked payments), with and
 * without costs and FX, sifted or not, by the solver (no limit, a 15 ms
 * limit, no MIP) and by the greedy fallback: every limit held, every
 * group whole, and the selection maximal: no unselected payment or group
 * could be added within the limits at a lower cost.
 */
static void
test_group_random_maximal(void)
{
	int			trial;
	int			bad = 0,
				split = 0,
				not_maximal = 0,
				runs = 0,
				groups_settled = 0,
				groups_left = 0;

	for (trial = 0; trial < 12; trial++)
	{
		int			na = 6 + rnd(30),
					np = trial < 10 ? 20 + rnd(1500) : 2000 + rnd(800),
					ng,
					run,
					i;
		SolverAccount *acc = calloc(na, sizeof(*acc));
		SolverPayment *pay = calloc(np, sizeof(*pay));
		double	   *fees = calloc(na, sizeof(double));
		double		spread[2] = {0.0005, 0.001};
		int		   *group = calloc(np, sizeof(int));
		bool	   *sel = calloc(np, sizeof(bool));
		SolverProblem p;
		SolverResult r;

		random_grouped(na, np, acc, pay, fees, group, &ng, trial % 2 == 1, trial % 3 == 2);
		p = problem(na, acc, np, pay, na, fees, 2, spread);
		p.n_groups = ng;
		p.group = group;
		for (run = 0; run < 4; run++)
		{
			p.time_limit_ms = run == 0 ? 0 : run == 1 ? 15 : 2000;
			p.mip_max_payments = run == 2 ? 0 : 200;
			if (run < 3)
				solve(&p, sel, &r);
			else
				settle_solve_greedy(&p, sel);
			runs++;
			if ((run < 3 && r.status > SOLVER_HEURISTIC) || settle_check_selection(&p, sel) >= 0)
				bad++;
			if (settle_check_groups(&p, sel) >= 0)
				split++;
			not_maximal += addable_units(&p, sel) > 0;
			if (run == 0)
				for (i = 0; i < np; i++)
					if (group[i] >= 0 && (i == 0 || group[i - 1] != group[i]))
						*(sel[i] ? &groups_settled : &groups_left) += 1;
		}
		free(acc);
		free(pay);
		free(fees);
		free(group);
		free(sel);
	}
	printf("# groups, random: %d runs; without a limit %d groups settled, %d left\n",
		   runs, groups_settled, groups_left);
	ok(bad == 0, "groups, random instances: within every limit (solver, 15 ms limit, no MIP, greedy)");
	ok(split == 0, "groups, random instances: every group settles whole or not at all");
	ok(not_maximal == 0, "groups, random instances: maximal, nothing more fits at a lower cost");
	ok(groups_settled > 0 && groups_left > 0, "groups, random instances: groups both settled and left");
}

/*
 * Groups on the reference instances at 1,000 payments (5% and 10%
 * liquidity, costs off and on): a third of the payments linked, in groups
 * of 2-3 consecutive payments (every payer, payee and wire shared with
 * unlinked ones).  Within every limit, whole, maximal; the CPU time and
 * the settled weight with and without the groups are printed (measured,
 * not asserted: docs/ALGORITHM.md, "Linked payments").
 */
static void
test_group_reference(void)
{
	static const struct
	{
		double		liquidity;
		bool		costs;
	}			cases[3] = {{0.05, false}, {0.10, false}, {0.10, true}};
	int			c;
	int			bad = 0,
				not_maximal = 0;

	for (c = 0; c < 3; c++)
	{
		Workload	wl;
		bool	   *sel = calloc(1000, sizeof(bool));
		int		   *group = calloc(1000, sizeof(int));
		SolverResult r;
		clock_t		cpu0;
		double		plain_ms,
					grouped_ms,
					plain_pct;
		int			i,
					ng = 0,
					linked = 0;

		if (!sel || !group || !workload_make(&wl, 1000, cases[c].liquidity, cases[c].costs))
		{
			bad++;
			free(sel);
			free(group);
			continue;
		}
		wl.p.time_limit_ms = 0;
		cpu0 = clock();
		solve(&wl.p, sel, &r);
		plain_ms = 1000.0 * (clock() - cpu0) / CLOCKS_PER_SEC;
		plain_pct = 100.0 * r.settled_weight / r.lp_weight_bound;
		for (i = 0; i < 1000; i++)
			group[i] = -1;
		for (i = 0; i + 3 <= 1000; i += 9)
		{
			int			size = 2 + (i / 9) % 2;
			int			j;

			for (j = i; j < i + size; j++)
				group[j] = ng;
			ng++;
			linked += size;
		}
		wl.p.n_groups = ng;
		wl.p.group = group;
		cpu0 = clock();
		solve(&wl.p, sel, &r);
		grouped_ms = 1000.0 * (clock() - cpu0) / CLOCKS_PER_SEC;
		if (r.status > SOLVER_FEASIBLE || settle_check_selection(&wl.p, sel) >= 0 ||
			settle_check_groups(&wl.p, sel) >= 0 ||
			fabs(r.objective - full_cost(&wl.p, sel)) > 1e-6 * (1 + r.objective) ||
			r.lp_bound > r.objective + 1e-6 * (1 + r.objective))
			bad++;
		not_maximal += addable_units(&wl.p, sel) > 0;
		printf("# reference 1,000 payments, liquidity %.0f%%, costs %s: without groups %.1f ms CPU, "
			   "%.3f%% of the LP weight bound; %d groups (%d payments linked): %.1f ms CPU, %.3f%%\n",
			   100 * cases[c].liquidity, cases[c].costs ? "on" : "off", plain_ms, plain_pct,
			   ng, linked, grouped_ms, 100.0 * r.settled_weight / r.lp_weight_bound);
		workload_free(&wl);
		free(sel);
		free(group);
	}
	ok(bad == 0, "groups on the reference instances: within limits, whole, objective exact, LP bound below it");
	ok(not_maximal == 0, "groups on the reference instances: maximal");
}

int
main(void)
{
	test_gridlock();
	test_deferral();
	test_fx_netting();
	test_random_limits();
	test_brute_force();
	test_random_medium();
	test_components();
	test_odd_input();
	test_glpk_error();
	test_exact_check();
	test_lp_bound();
	test_reference_workload();
	test_iterated_search();
	test_probing_and_prices();
	test_failure_paths();
	test_group_frozen_payer();
	test_group_brute_force();
	test_group_random_maximal();
	test_group_reference();
	test_deep_pass(ok);
	printf("1..%d\n", n_test);
	return n_failed != 0;
}
