/*
 * solver_bench.c -- model build + solve time and quality of src/solver.c on
 * a documented, deterministic reference workload, at 1k, 10k and 100k
 * queued payments, against two baselines.
 *
 * Reference workload (generator below, seed 42 for every run):
 *   - P = 50 participants, each with one account in each of 3 currencies
 *     (USD, EUR, GBP; mid rates 1, 1.10, 1.25 USD): 150 accounts, all
 *     constrained;
 *   - each payment: payer and payee uniform among distinct participants;
 *     payer currency uniform; 80% pay in the same currency, 20% convert to
 *     another currency (uniform), credit = debit x rate (rounded down);
 *   - amounts log-normal: debit = exp(N(ln 100000, 1)) minor units, i.e.
 *     median 1,000.00, at least 1.00;
 *   - priority 1..9 uniform; 30% have a deadline after the next cycle
 *     (deferrable), the rest are due;
 *   - penalty (as cycle.c builds it): due: 10 x priority/5 x value in USD
 *     plus its two wire fees plus its gross spread; deferrable:
 *     value x 10 bps (the cost of waiting one cycle);
 *   - costs "on": wire fee 25.00 USD per (participant, currency), spread
 *     5 bps per unordered currency pair; costs "off": both zero (pure
 *     liquidity problem);
 *   - liquidity: each account's available = a fraction (5% or 10%) of its
 *     gross outflow in the queue.
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
 *   check=ok|VIOLATED
 * weight_pct_of_lp = settled penalty weight / result.lp_weight_bound.
 * Usage: solver_bench [time_limit_ms (5000)] [max_n (100000)]; environment
 * MIPMAX=k sets mip_max_payments (default 200) for experiments.
 */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "solver.h"

#define P			50			/* participants */
#define C			3			/* currencies */
#define NACC		(P * C)
#define PI			3.14159265358979323846

static unsigned long long rng;

static const char *const status_name[] = {
	"optimal", "feasible", "heuristic", "interrupted", "error"
};

/* Uniform in (0, 1), 64-bit LCG (deterministic across platforms). */
static double
uniform(void)
{
	rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
	return ((rng >> 11) + 0.5) / 9007199254740992.0;
}

/* Standard normal (Box-Muller). */
static double
normal(void)
{
	double		u = uniform();

	return sqrt(-2 * log(u)) * cos(2 * PI * uniform());
}

/* Milliseconds, monotonic. */
static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Bypass FIFO: in queue order, settle what the payer can pay now. */
static void
fifo(const SolverProblem *p, bool *sel)
{
	int64_t    *bal = malloc(sizeof(int64_t) * p->n_accounts);
	int			i;

	for (i = 0; i < p->n_accounts; i++)
		bal[i] = p->accounts[i].available;
	for (i = 0; i < p->n_payments; i++)
	{
		const SolverPayment *s = &p->payments[i];

		sel[i] = !p->accounts[s->src].constrained || bal[s->src] >= s->debit;
		if (sel[i])
		{
			bal[s->src] -= s->debit;
			bal[s->dst] += s->credit;
		}
	}
	free(bal);
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

/* Index of the unordered pair of distinct currencies a < b. */
static int
fx_pair_of(int a, int b)
{
	int			lo = a < b ? a : b,
				hi = a < b ? b : a;

	return lo == 0 ? hi - 1 : 2;	/* (0,1)=0 (0,2)=1 (1,2)=2 */
}

static void
run(int n, double liquidity, bool with_costs, double time_limit_ms)
{
	static const double rate[C] = {1.0, 1.10, 1.25};	/* USD per unit */
	SolverAccount *acc = calloc(NACC, sizeof(*acc));
	SolverPayment *pay = calloc(n, sizeof(*pay));
	double	   *fees = calloc(NACC, sizeof(double));
	double		spread[3];
	int64_t    *outflow = calloc(NACC, sizeof(int64_t));
	bool	   *sel = calloc(n, sizeof(bool));
	bool	   *base = calloc(n, sizeof(bool));
	SolverProblem p;
	SolverResult r;
	double		t0,
				ms,
				fifo_ms,
				greedy_ms,
				fifo_w,
				greedy_w;
	int			i,
				k,
				settled = 0;

	rng = 42;
	for (k = 0; k < 3; k++)
		spread[k] = with_costs ? 0.0005 : 0;
	for (i = 0; i < NACC; i++)
		fees[i] = with_costs ? 25.0 : 0;
	for (i = 0; i < n; i++)
	{
		int			s = (int) (uniform() * P),
					d = (s + 1 + (int) (uniform() * (P - 1))) % P;
		int			sc = (int) (uniform() * C);
		int			dc = uniform() < 0.2 ? (sc + 1 + (int) (uniform() * (C - 1))) % C : sc;
		int64_t		debit = (int64_t) exp(log(100000.0) + normal());
		int			prio = 1 + (int) (uniform() * 9);
		bool		deferrable = uniform() < 0.3;
		double		value;
		SolverPayment *q = &pay[i];

		if (debit < 100)
			debit = 100;
		value = debit / 100.0 * rate[sc];
		q->src = s * C + sc;
		q->dst = d * C + dc;
		q->debit = debit;
		q->credit = (int64_t) (debit * rate[sc] / rate[dc]);
		if (q->credit < 1)
			q->credit = 1;
		q->wire_src = q->src;
		q->wire_dst = q->dst;
		q->fx_pair = sc != dc ? fx_pair_of(sc, dc) : -1;
		q->fx_value = sc != dc ? (sc < dc ? value : -value) : 0;
		if (deferrable)
			q->penalty = value * 0.001;
		else
			q->penalty = 10.0 * prio / 5.0 * value + fees[q->wire_src] + fees[q->wire_dst] +
				(q->fx_pair >= 0 ? spread[q->fx_pair] * value : 0);
		outflow[q->src] += debit;
	}
	for (i = 0; i < NACC; i++)
	{
		acc[i].available = (int64_t) (outflow[i] * liquidity);
		acc[i].constrained = true;
	}
	memset(&p, 0, sizeof(p));
	p.n_accounts = NACC;
	p.accounts = acc;
	p.n_payments = n;
	p.payments = pay;
	p.n_wires = NACC;
	p.wire_fee = fees;
	p.n_fx_pairs = 3;
	p.fx_spread = spread;
	p.time_limit_ms = time_limit_ms;
	p.mip_gap = 1e-4;
	p.mip_max_payments = getenv("MIPMAX") ? atoi(getenv("MIPMAX")) : 200;

	memset(&r, 0, sizeof(r));
	r.settle = sel;
	t0 = now_ms();
	settle_solve(&p, &r);
	ms = now_ms() - t0;
	for (i = 0; i < n; i++)
		settled += sel[i];

	t0 = now_ms();
	fifo(&p, base);
	fifo_ms = now_ms() - t0;
	fifo_w = weight(&p, base);
	t0 = now_ms();
	settle_solve_greedy(&p, base);
	greedy_ms = now_ms() - t0;
	greedy_w = weight(&p, base);

#define PCT(x) (r.lp_weight_bound > 0 ? 100.0 * (x) / r.lp_weight_bound : -1.0)
	printf("bench n=%d liquidity=%.2f costs=%s limit_ms=%.0f ms=%.1f status=%s method=%s "
		   "components=%d mip_components=%d settled=%d weight_pct_of_lp=%.3f "
		   "objective=%.2f lp_bound=%.2f fifo_ms=%.1f fifo_weight_pct_of_lp=%.3f "
		   "greedy_ms=%.1f greedy_weight_pct_of_lp=%.3f check=%s\n",
		   n, liquidity, with_costs ? "on" : "off", time_limit_ms, ms,
		   status_name[r.status], r.method[0] ? r.method : "-", r.components,
		   r.mip_components, settled, PCT(r.settled_weight), r.objective, r.lp_bound,
		   fifo_ms, PCT(fifo_w), greedy_ms, PCT(greedy_w),
		   settle_check_selection(&p, sel) < 0 ? "ok" : "VIOLATED");
	fflush(stdout);
	free(acc);
	free(pay);
	free(fees);
	free(outflow);
	free(sel);
	free(base);
}

int
main(int argc, char **argv)
{
	double		limit = argc > 1 ? atof(argv[1]) : 5000;
	int			max_n = argc > 2 ? atoi(argv[2]) : 100000;
	int			n;

	for (n = 1000; n <= max_n; n *= 10)
	{
		run(n, 0.05, false, limit);
		run(n, 0.10, false, limit);
		run(n, 0.10, true, limit);
	}
	return 0;
}
