/*
 * deep_bench.c -- quality against time of the deep pass (src/solver_deep.c,
 * issue #27) on the reference instances (workload.h, seed 42).
 *
 * Per instance: the real-time solve (settle_solve with a REALTIME_MS limit,
 * default 5000 as in solver_bench, which its effort bound stops first at
 * about 20 ms on 1,000 payments), then, from its selection, one deep pass per budget, each
 * a wall clock limit on the whole (real-time solve + deep pass), with
 * effort bounds large enough that the clock stops it (the deep pass gets
 * the budget less the real-time solve's time and a margin of 1 ms + 1%).  One line each:
 *
 *   deep n=... liquidity=... costs=on|off budget_ms=... objective=...
 *   ms=... cpu_ms=... rounds=... improved=... rejected=... check=ok|VIOLATED
 *
 * budget_ms=0 is the real-time solve alone.  ms and cpu_ms: wall and process
 * CPU time of the real-time solve plus the deep pass.
 * Usage: deep_bench N:LIQUIDITY:on|off... ; environment BUDGETS="100 1000
 * 10000", REALTIME_MS=5000, REGION=k (limits.region_payments), NODES=k,
 * SEED=42 (the instance), DEEP_SEED=42 (the regions), CLOCK=cpu (the budget
 * counts the process's CPU time, so that a loaded machine does not cut the
 * search short; default: wall clock).
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "solver.h"
#include "solver_deep.h"
#include "workload.h"

static double
clock_ms(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* CLOCK=cpu: the deep pass stops at a budget of process CPU time (interrupted() polls it). */
static double cpu_stop_at = 0;
static bool use_cpu_clock = false;

static bool
cpu_budget_spent(void *arg)
{
	(void) arg;
	return clock_ms(CLOCK_PROCESS_CPUTIME_ID) >= cpu_stop_at;
}

static void
line(const SolverProblem *p, int n, double liq, const char *costs, double budget,
	 const bool *sel, double ms, double cpu, const SolverDeepStats *st)
{
	printf("deep n=%d liquidity=%.2f costs=%s budget_ms=%.0f clock=%s objective=%.2f ms=%.1f cpu_ms=%.1f "
		   "rounds=%d improved=%d rejected=%d check=%s\n",
		   n, liq, costs, budget, use_cpu_clock ? "cpu" : "wall", settle_selection_objective(p, sel), ms, cpu,
		   st ? st->rounds : 0, st ? st->improved : 0, st ? st->rejected : 0,
		   settle_check_selection(p, sel) < 0 ? "ok" : "VIOLATED");
	fflush(stdout);
}

static void
run(int n, double liq, const char *costs, const char *budgets, double realtime_ms)
{
	Workload	wl;
	bool	   *rt = calloc(n, sizeof(bool));
	bool	   *sel = calloc(n, sizeof(bool));
	SolverProblem p;
	SolverResult r;
	SolverDeepLimits lim;
	SolverDeepStats st;
	double		t0,
				c0,
				rt_ms,
				rt_cpu;
	char	   *list,
			   *tok,
			   *save = NULL;

	if (!rt || !sel || !workload_make_seeded(&wl, n, liq, strcmp(costs, "on") == 0,
											 getenv("SEED") ? strtoull(getenv("SEED"), NULL, 10) : 42))
	{
		fprintf(stderr, "out of memory\n");
		exit(1);
	}
	p = wl.p;
	p.time_limit_ms = realtime_ms;
	memset(&r, 0, sizeof(r));
	r.settle = rt;
	t0 = clock_ms(CLOCK_MONOTONIC);
	c0 = clock_ms(CLOCK_PROCESS_CPUTIME_ID);
	settle_solve(&p, &r);
	rt_ms = clock_ms(CLOCK_MONOTONIC) - t0;
	rt_cpu = clock_ms(CLOCK_PROCESS_CPUTIME_ID) - c0;
	line(&p, n, liq, costs, 0, rt, rt_ms, rt_cpu, NULL);
	list = strdup(budgets);
	for (tok = strtok_r(list, " ,", &save); tok; tok = strtok_r(NULL, " ,", &save))
	{
		double		budget = atof(tok);

		settle_deep_default_limits(&lim);
		lim.rounds = 1000000;
		/* the exact check and costing after the last round fit in the margin */
		lim.time_limit_ms = budget - rt_ms - (1 + 0.01 * budget);
		if (lim.time_limit_ms < 1)
			lim.time_limit_ms = 1;
		if (getenv("REGION"))
			lim.region_payments = atoi(getenv("REGION"));
		if (getenv("NODES"))
			lim.nodes = atoi(getenv("NODES"));
		if (getenv("DEEP_SEED"))
			lim.seed = strtoull(getenv("DEEP_SEED"), NULL, 10);
		memset(&r, 0, sizeof(r));
		r.settle = sel;
		t0 = clock_ms(CLOCK_MONOTONIC);
		c0 = clock_ms(CLOCK_PROCESS_CPUTIME_ID);
		if (use_cpu_clock)
		{
			/* the same budget, counted in CPU time: the machine's load does not cut it */
			cpu_stop_at = c0 + budget - rt_cpu - (1 + 0.01 * budget);
			lim.time_limit_ms = 0;
			p.interrupted = cpu_budget_spent;
		}
		settle_solve_deep(&p, rt, &lim, &r, &st);
		p.interrupted = NULL;
		line(&p, n, liq, costs, budget, sel, rt_ms + clock_ms(CLOCK_MONOTONIC) - t0,
			 rt_cpu + clock_ms(CLOCK_PROCESS_CPUTIME_ID) - c0, &st);
	}
	free(list);
	workload_free(&wl);
	free(rt);
	free(sel);
}

int
main(int argc, char **argv)
{
	const char *budgets = getenv("BUDGETS") ? getenv("BUDGETS") : "100 1000 10000";
	/* the real-time solve as make bench measures it: stopped by its effort bound, not the clock */
	double		realtime = getenv("REALTIME_MS") ? atof(getenv("REALTIME_MS")) : 5000;
	int			a;

	use_cpu_clock = getenv("CLOCK") && strcmp(getenv("CLOCK"), "cpu") == 0;
	for (a = 1; a < argc; a++)
	{
		int			n;
		double		liq;
		char		costs[8];

		if (sscanf(argv[a], "%d:%lf:%7s", &n, &liq, costs) != 3 || n < 1)
		{
			fprintf(stderr, "usage: deep_bench N:LIQUIDITY:on|off...\n");
			return 2;
		}
		run(n, liq, costs, budgets, realtime);
	}
	return 0;
}
