/*
 * solver_bench.c -- model build + solve time and quality at 1k, 10k, 100k
 * queued payments, on the documented reference workload (docs/ALGORITHM.md).
 *
 * Reference workload (deterministic, seed 42):
 *   - P = 50 participants, each with one USD and one EUR account;
 *   - payments between random distinct participants; 80% in one currency,
 *     20% USD<->EUR (FX, spread 5 bps); amounts log-normal, median 1,000.00,
 *     sigma 1.0 (in minor units: exp(N(ln 100000, 1))), at least 1.00;
 *   - priorities 1..9 uniform; 30% deferrable (penalty: 10 bps of value),
 *     the rest due (penalty: 10 x priority/5 x value);
 *   - wire fee 25.00 per (participant, currency); liquidity of each account:
 *     a given fraction of its gross outflow in the queue.
 * For each N it prints one line per run: "bench solver n=... liquidity=...
 * ms=... status=... method=... settled=... weight_pct_of_lp=...
 * greedy_weight_pct_of_lp=..."; the LP bound is that of the same model.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "solver.h"

static unsigned long long rng;

static double
uniform(void)
{
	rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
	return ((rng >> 11) + 0.5) / 9007199254740992.0;
}

static double
normal(void)
{
	return sqrt(-2 * log(uniform())) * cos(2 * M_PI * uniform());
}

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void
run(int n, double liquidity, double time_limit_ms, bool with_costs)
{
	const int	P = 50;
	int			na = 2 * P;
	SolverAccount *acc = calloc(na, sizeof(*acc));
	SolverPayment *pay = calloc(n, sizeof(*pay));
	double	   *fees = calloc(na, sizeof(double));
	double		spread[1] = {with_costs ? 0.0005 : 0};
	int64_t    *outflow = calloc(na, sizeof(int64_t));
	bool	   *sel = calloc(n, sizeof(bool));
	bool	   *greedy = calloc(n, sizeof(bool));
	SolverProblem p;
	SolverResult r;
	double		t0,
				t1,
				gw = 0;
	int			i,
				settled = 0;

	rng = 42;
	for (i = 0; i < n; i++)
	{
		int			s = (int) (uniform() * P),
					d = (s + 1 + (int) (uniform() * (P - 1))) % P;
		int			sc = uniform() < 0.5 ? 0 : 1;
		int			dc = uniform() < 0.2 ? 1 - sc : sc;
		int64_t		amt = (int64_t) exp(log(100000.0) + normal());
		double		value = amt / 100.0;
		int			prio = 1 + (int) (uniform() * 9);
		bool		deferrable = uniform() < 0.3;

		if (amt < 100)
			amt = 100;
		pay[i].src = 2 * s + sc;
		pay[i].dst = 2 * d + dc;
		pay[i].debit = amt;
		pay[i].credit = amt;	/* 1:1 rate keeps the arithmetic readable */
		pay[i].wire_src = pay[i].src;
		pay[i].wire_dst = pay[i].dst;
		pay[i].fx_pair = sc != dc ? 0 : -1;
		pay[i].fx_value = sc != dc ? (sc == 0 ? value : -value) : 0;
		pay[i].penalty = deferrable && with_costs ? value * 0.001 : 10.0 * prio / 5.0 * value;
		outflow[pay[i].src] += amt;
	}
	for (i = 0; i < na; i++)
	{
		acc[i].available = (int64_t) (outflow[i] * liquidity);
		acc[i].constrained = true;
		fees[i] = with_costs ? 25.0 : 0;
	}
	memset(&p, 0, sizeof(p));
	p.n_accounts = na;
	p.accounts = acc;
	p.n_payments = n;
	p.payments = pay;
	p.n_wires = na;
	p.wire_fee = fees;
	p.n_fx_pairs = 1;
	p.fx_spread = spread;
	p.time_limit_ms = time_limit_ms;
	p.mip_gap = 1e-4;
	p.mip_max_payments = 200;

	memset(&r, 0, sizeof(r));
	r.settle = sel;
	t0 = now_ms();
	settle_solve(&p, &r);
	t1 = now_ms();
	settle_solve_greedy(&p, greedy);
	for (i = 0; i < n; i++)
	{
		settled += sel[i];
		if (greedy[i])
			gw += pay[i].penalty;
	}
	printf("bench solver n=%d liquidity=%.2f costs=%s time_limit_ms=%.0f ms=%.1f status=%d method=%s "
		   "settled=%d weight_pct_of_lp=%.3f greedy_weight_pct_of_lp=%.3f check=%s\n",
		   n, liquidity, with_costs ? "on" : "off", time_limit_ms, t1 - t0, (int) r.status, r.method,
		   settled,
		   r.lp_weight_bound > 0 ? 100.0 * r.settled_weight / r.lp_weight_bound : -1.0,
		   r.lp_weight_bound > 0 ? 100.0 * gw / r.lp_weight_bound : -1.0,
		   settle_check_selection(&p, sel) < 0 ? "ok" : "VIOLATED");
	free(acc);
	free(pay);
	free(fees);
	free(outflow);
	free(sel);
	free(greedy);
}

int
main(int argc, char **argv)
{
	double		limit = argc > 1 ? atof(argv[1]) : 5000;

	run(1000, 0.05, limit, false);
	run(1000, 0.10, limit, false);
	run(10000, 0.10, limit, false);
	run(100000, 0.10, limit, false);
	run(1000, 0.10, limit, true);
	run(10000, 0.10, limit, true);
	run(100000, 0.10, limit, true);
	return 0;
}
