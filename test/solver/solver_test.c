/*
 * solver_test.c -- unit tests of src/solver.c, without PostgreSQL (TAP).
 *
 * Small cases checked by hand (gridlock, deferral, FX netting, limits),
 * random instances checked exactly against the limits, and the failure
 * paths: time limit, interruption, invalid input.  Run under valgrind by
 * test/solver/run.sh to prove that every path frees what it allocates.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "solver.h"

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

	p.time_limit_ms = 2000;
	p.interrupted = always_interrupted;
	solve(&p, sel, &r);
	for (i = 0; i < np && !sel[i]; i++)
		;
	ok(r.status == SOLVER_INTERRUPTED && i == np, "interrupted: nothing selected");

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
	free(acc);
	free(pay);
	free(fees);
	free(sel);
}

int
main(void)
{
	test_gridlock();
	test_deferral();
	test_fx_netting();
	test_random_limits();
	test_failure_paths();
	printf("1..%d\n", n_test);
	return n_failed != 0;
}
