/*
 * workload.h -- the reference workload of the solver benchmark, shared by
 * solver_bench.c and solver_test.c (so that the tests hold the benchmark's
 * instances to a quality floor).  Deterministic: seed 42 for every instance.
 *
 *   - 50 participants, each with one account in each of 3 currencies
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
 * Header-only (static inline functions).
 */
#ifndef SETTLE_WORKLOAD_H
#define SETTLE_WORKLOAD_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "solver.h"

#define WL_P		50			/* participants */
#define WL_C		3			/* currencies */
#define WL_NACC		(WL_P * WL_C)
#define WL_PI		3.14159265358979323846

typedef struct Workload
{
	SolverAccount *acc;
	SolverPayment *pay;
	double	   *fees;
	double		spread[3];
	SolverProblem p;
} Workload;

static unsigned long long wl_rng;

/* Uniform in (0, 1), 64-bit LCG (deterministic across platforms). */
static inline double
wl_uniform(void)
{
	wl_rng = wl_rng * 6364136223846793005ULL + 1442695040888963407ULL;
	return ((wl_rng >> 11) + 0.5) / 9007199254740992.0;
}

/* Standard normal (Box-Muller). */
static inline double
wl_normal(void)
{
	double		u = wl_uniform();

	return sqrt(-2 * log(u)) * cos(2 * WL_PI * wl_uniform());
}

/* Index of the unordered pair of distinct currencies. */
static inline int
wl_fx_pair_of(int a, int b)
{
	int			lo = a < b ? a : b,
				hi = a < b ? b : a;

	return lo == 0 ? hi - 1 : 2;	/* (0,1)=0 (0,2)=1 (1,2)=2 */
}

/*
 * Build the instance (n payments) into wl; wl->p is ready to solve but for
 * time_limit_ms, mip_gap and mip_max_payments (set to 5000, 1e-4, 200).
 * Returns false on out of memory.  Free with workload_free().
 */
static inline bool
workload_make_seeded(Workload *wl, int n, double liquidity, bool with_costs,
					 unsigned long long seed)
{
	static const double rate[WL_C] = {1.0, 1.10, 1.25};	/* USD per unit */
	int64_t    *outflow = calloc(WL_NACC, sizeof(int64_t));
	int			i,
				k;

	memset(wl, 0, sizeof(*wl));
	wl->acc = calloc(WL_NACC, sizeof(*wl->acc));
	wl->pay = calloc(n > 0 ? n : 1, sizeof(*wl->pay));
	wl->fees = calloc(WL_NACC, sizeof(double));
	if (!outflow || !wl->acc || !wl->pay || !wl->fees)
	{
		free(outflow);
		return false;
	}
	wl_rng = seed;
	for (k = 0; k < 3; k++)
		wl->spread[k] = with_costs ? 0.0005 : 0;
	for (i = 0; i < WL_NACC; i++)
		wl->fees[i] = with_costs ? 25.0 : 0;
	for (i = 0; i < n; i++)
	{
		int			s = (int) (wl_uniform() * WL_P),
					d = (s + 1 + (int) (wl_uniform() * (WL_P - 1))) % WL_P;
		int			sc = (int) (wl_uniform() * WL_C);
		int			dc = wl_uniform() < 0.2 ? (sc + 1 + (int) (wl_uniform() * (WL_C - 1))) % WL_C : sc;
		int64_t		debit = (int64_t) exp(log(100000.0) + wl_normal());
		int			prio = 1 + (int) (wl_uniform() * 9);
		bool		deferrable = wl_uniform() < 0.3;
		double		value;
		SolverPayment *q = &wl->pay[i];

		if (debit < 100)
			debit = 100;
		value = debit / 100.0 * rate[sc];
		q->src = s * WL_C + sc;
		q->dst = d * WL_C + dc;
		q->debit = debit;
		q->credit = (int64_t) (debit * rate[sc] / rate[dc]);
		if (q->credit < 1)
			q->credit = 1;
		q->wire_src = q->src;
		q->wire_dst = q->dst;
		q->fx_pair = sc != dc ? wl_fx_pair_of(sc, dc) : -1;
		q->fx_value = sc != dc ? (sc < dc ? value : -value) : 0;
		if (deferrable)
			q->penalty = value * 0.001;
		else
			q->penalty = 10.0 * prio / 5.0 * value + wl->fees[q->wire_src] + wl->fees[q->wire_dst] +
				(q->fx_pair >= 0 ? wl->spread[q->fx_pair] * value : 0);
		outflow[q->src] += debit;
	}
	for (i = 0; i < WL_NACC; i++)
	{
		wl->acc[i].available = (int64_t) (outflow[i] * liquidity);
		wl->acc[i].constrained = true;
	}
	free(outflow);
	wl->p.n_accounts = WL_NACC;
	wl->p.accounts = wl->acc;
	wl->p.n_payments = n;
	wl->p.payments = wl->pay;
	wl->p.n_wires = WL_NACC;
	wl->p.wire_fee = wl->fees;
	wl->p.n_fx_pairs = 3;
	wl->p.fx_spread = wl->spread;
	wl->p.time_limit_ms = 5000;
	wl->p.mip_gap = 1e-4;
	wl->p.mip_max_payments = 200;
	return true;
}

/* The reference instance: seed 42. */
static inline bool
workload_make(Workload *wl, int n, double liquidity, bool with_costs)
{
	return workload_make_seeded(wl, n, liquidity, with_costs, 42);
}

static inline void
workload_free(Workload *wl)
{
	free(wl->acc);
	free(wl->pay);
	free(wl->fees);
	memset(wl, 0, sizeof(*wl));
}

/* Bypass FIFO, the queue-order baseline: settle each payment alone if its payer can pay now. */
static inline void
workload_fifo(const SolverProblem *p, bool *sel)
{
	int64_t    *bal = malloc(sizeof(int64_t) * (p->n_accounts + 1));
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

#endif							/* SETTLE_WORKLOAD_H */
