/*
 * solver_bench.c -- model build + solve time and quality of the solver (src/solver*.c) on
 * a documented, deterministic reference workload, at 1k, 10k and 100k
 * queued payments, against two baselines.
 *
 * Reference workload: workload.h (50 participants x 3 currencies, log-normal
 * amounts, 30% deferrable, costs on/off, liquidity 5% or 10% of outflow).
 *
 * Baselines:
 *   fifo    queue order, one payment at a time, settled if the payer can
 *           pay it now (bypass FIFO: one that cannot is skipped);
 *   greedy  settle_solve_greedy(): select all, repair, refill (no GLPK).
 *
 * Output: one line per run, "key=value" pairs separated by spaces:
 *   bench n=... liquidity=... costs=on|off limit_ms=... ms=... status=...
 *   method=... components=... mip_components=... settled=...
 *   weight_pct_of_lp=... objective=... lp_bound=... fifo_ms=...
 *   fifo_weight_pct_of_lp=... greedy_ms=... greedy_weight_pct_of_lp=...
 *   check=ok|VIOLATED runs=... ms_median=... ms_min=... ms_max=...
 *   cpu_ms_median=... same=yes|no weight=... fifo_gross=... fifo_netted=...
 *   greedy_objective=... kicks=...
 * weight_pct_of_lp = settled penalty weight / result.lp_weight_bound;
 * fifo_gross: FIFO's selection with every settled payment its own wires and
 * the spread on its own converted value (no netting); fifo_netted: the same
 * selection at the model's cost (netted multilaterally: each wire's fee
 * once, spread on each pair's net), i.e. netting without optimisation;
 * greedy_objective: the greedy fallback's selection at the model's cost.
 * ms is the first run; with REPEAT=k the solve is repeated k times and the
 * median, min and max wall time and the median CPU time of the process are
 * given too (CPU time moves less than wall time on a shared machine).  check
 * is settle_check_selection() on every repetition's selection; same=no when
 * a repetition chose differently (the solver is deterministic unless a time
 * limit cuts it short); the other figures are those of the first run.
 * Usage: solver_bench [time_limit_ms (5000)] [max_n (100000)]; environment
 * MIPMAX=k sets mip_max_payments (default 200), REPEAT=k (default 1),
 * ILS_KICKS=k the iterated search's kicks (settle_solver_ils_kicks; 0: off),
 * ILS_WORK=k its effort bound per payment (settle_solver_ils_work; 0: none),
 * MIN_N=k skips smaller sizes, SEED=k another instance of the workload.
 */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "solver.h"
#include "workload.h"

static const char *const status_name[] = {
	"optimal", "feasible", "heuristic", "interrupted", "error"
};

/* Milliseconds, monotonic. */
static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* CPU time of the process, milliseconds. */
static double
cpu_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int
cmp_double(const void *a, const void *b)
{
	double		x = *(const double *) a,
				y = *(const double *) b;

	return x < y ? -1 : x > y;
}

/* Sum of penalties of a selection. */
static double
weight(const SolverProblem *p, const bool *sel)
{
	double		w = 0;
	int			i;

	for (i = 0; i < p->n_payments; i++)
		if (sel[i])
			w += p->payments[i].penalty;
	return w;
}

/*
 * The model's objective of a selection (netted: each wire's fee once, the
 * spread on each pair's net) and, with gross, the cost without netting:
 * every settled payment its own wire at each end and the spread on its own
 * converted value.
 */
static double
cost_of(const SolverProblem *p, const bool *sel, bool gross)
{
	bool	   *used = calloc(p->n_wires + 1, sizeof(bool));
	double	   *net = calloc(p->n_fx_pairs + 1, sizeof(double));
	double		cost = 0;
	int			i;

	for (i = 0; i < p->n_payments; i++)
	{
		const SolverPayment *s = &p->payments[i];
		int			end;

		if (!sel[i])
		{
			cost += s->penalty;
			continue;
		}
		for (end = 0; end < 2; end++)
		{
			int			wi = end == 0 ? s->wire_src : s->wire_dst;

			if (wi < 0 || (end == 1 && wi == s->wire_src))
				continue;
			if (gross || !used[wi])
				cost += p->wire_fee[wi];
			used[wi] = true;
		}
		if (s->fx_pair >= 0)
		{
			if (gross)
				cost += p->fx_spread[s->fx_pair] * fabs(s->fx_value);
			else
				net[s->fx_pair] += s->fx_value;
		}
	}
	for (i = 0; i < p->n_fx_pairs; i++)
		cost += p->fx_spread[i] * fabs(net[i]);
	free(used);
	free(net);
	return cost;
}

static void
run(int n, double liquidity, bool with_costs, double time_limit_ms, int repeat)
{
	Workload	wl;
	bool	   *sel = calloc(n, sizeof(bool));
	bool	   *again = calloc(n, sizeof(bool));
	bool	   *base = calloc(n, sizeof(bool));
	double	   *wall = calloc(repeat, sizeof(double));
	double	   *cpu = calloc(repeat, sizeof(double));
	SolverProblem p;
	SolverResult r,
				r2;
	double		t0,
				c0,
				ms,
				fifo_ms,
				greedy_ms,
				fifo_w,
				fifo_net,
				fifo_gross,
				greedy_obj,
				greedy_w;
	int			i,
				k,
				settled = 0;
	bool		same = true;
	bool		all_within = true;

	if (!sel || !again || !base || !wall || !cpu || !workload_make_seeded(&wl, n, liquidity, with_costs,
												getenv("SEED") ? strtoull(getenv("SEED"), NULL, 10) : 42))
	{
		fprintf(stderr, "out of memory\n");
		exit(1);
	}
	p = wl.p;
	p.time_limit_ms = time_limit_ms;
	p.mip_max_payments = getenv("MIPMAX") ? atoi(getenv("MIPMAX")) : 200;

	memset(&r, 0, sizeof(r));
	r.settle = sel;
	t0 = now_ms();
	c0 = cpu_ms();
	settle_solve(&p, &r);
	ms = wall[0] = now_ms() - t0;
	cpu[0] = cpu_ms() - c0;
	for (k = 1; k < repeat; k++)
	{
		memset(&r2, 0, sizeof(r2));
		r2.settle = again;
		t0 = now_ms();
		c0 = cpu_ms();
		settle_solve(&p, &r2);
		wall[k] = now_ms() - t0;
		cpu[k] = cpu_ms() - c0;
		if (memcmp(sel, again, sizeof(bool) * n) != 0)
			same = false;
		if (settle_check_selection(&p, again) >= 0)
			all_within = false;
	}
	qsort(wall, repeat, sizeof(double), cmp_double);
	qsort(cpu, repeat, sizeof(double), cmp_double);
	for (i = 0; i < n; i++)
		settled += sel[i];

	t0 = now_ms();
	workload_fifo(&p, base);
	fifo_ms = now_ms() - t0;
	fifo_w = weight(&p, base);
	fifo_net = cost_of(&p, base, false);
	fifo_gross = cost_of(&p, base, true);
	t0 = now_ms();
	settle_solve_greedy(&p, base);
	greedy_ms = now_ms() - t0;
	greedy_w = weight(&p, base);
	greedy_obj = cost_of(&p, base, false);

#define PCT(x) (r.lp_weight_bound > 0 ? 100.0 * (x) / r.lp_weight_bound : -1.0)
	printf("bench n=%d liquidity=%.2f costs=%s limit_ms=%.0f ms=%.1f status=%s method=%s "
		   "components=%d mip_components=%d settled=%d weight_pct_of_lp=%.3f "
		   "objective=%.2f lp_bound=%.2f fifo_ms=%.1f fifo_weight_pct_of_lp=%.3f "
		   "greedy_ms=%.1f greedy_weight_pct_of_lp=%.3f check=%s runs=%d ms_median=%.1f "
		   "ms_min=%.1f ms_max=%.1f cpu_ms_median=%.1f same=%s weight=%.2f fifo_gross=%.2f "
		   "fifo_netted=%.2f greedy_objective=%.2f kicks=%d\n",
		   n, liquidity, with_costs ? "on" : "off", time_limit_ms, ms,
		   status_name[r.status], r.method[0] ? r.method : "-", r.components,
		   r.mip_components, settled, PCT(r.settled_weight), r.objective, r.lp_bound,
		   fifo_ms, PCT(fifo_w), greedy_ms, PCT(greedy_w),
		   settle_check_selection(&p, sel) < 0 && all_within ? "ok" : "VIOLATED",
		   repeat, wall[repeat / 2], wall[0], wall[repeat - 1], cpu[repeat / 2],
		   same ? "yes" : "no", r.settled_weight, fifo_gross, fifo_net, greedy_obj,
		   settle_solver_ils_kicks);
	fflush(stdout);
	workload_free(&wl);
	free(sel);
	free(again);
	free(base);
	free(wall);
	free(cpu);
}

int
main(int argc, char **argv)
{
	double		limit = argc > 1 ? atof(argv[1]) : 5000;
	int			max_n = argc > 2 ? atoi(argv[2]) : 100000;
	int			repeat = getenv("REPEAT") ? atoi(getenv("REPEAT")) : 1;
	int			min_n = getenv("MIN_N") ? atoi(getenv("MIN_N")) : 1000;
	int			n;

	if (repeat < 1)
		repeat = 1;
	if (getenv("ILS_KICKS"))
		settle_solver_ils_kicks = atoi(getenv("ILS_KICKS"));
	if (getenv("ILS_WORK"))
		settle_solver_ils_work = atoi(getenv("ILS_WORK"));
	for (n = 1000; n <= max_n; n *= 10)
	{
		if (n < min_n)
			continue;
		run(n, 0.05, false, limit, repeat);
		if (n == 1000)
			run(n, 0.05, true, limit, repeat);
		run(n, 0.10, false, limit, repeat);
		run(n, 0.10, true, limit, repeat);
	}
	return 0;
}
