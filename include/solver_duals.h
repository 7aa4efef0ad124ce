/*
 * solver_duals.h -- what the settlement model says about liquidity
 * (docs/ALGORITHM.md, "Liquidity prices and funding advice").
 *
 * Plain C over GLPK, like the solver (no PostgreSQL header):
 *   - the price of every account's liquidity in the cycle's LP relaxation
 *     (the dual value of its row), filled into SolverProblem.account_price
 *     by a hook where the relaxation is solved (solver_glpk.c);
 *   - settle_solve_topup(): the smallest top-up of one account that lets
 *     the queue settle as much as it could with unlimited liquidity there,
 *     solved exactly as three small MIPs.
 */
#ifndef SETTLE_SOLVER_DUALS_H
#define SETTLE_SOLVER_DUALS_H

#include <stdbool.h>
#include <stdint.h>

/*
 * The queue as settle_solve_topup() sees it.  Amounts are exact (minor units
 * of each account's own currency); the objective's coefficients (weights,
 * fees, spreads) are in one unit of the caller's choice.  The objective
 * maximised is
 *     sum weight[i] x[i] - sum wire_fee[w] y[w] - sum spread[k] z[k]
 * with y[w] = 1 when a settled payment uses wire w, and z[k] the absolute
 * net of volume[i] over the settled payments of FX pair k: the cycle's
 * model (docs/ALGORITHM.md, "Formulation") with the weight for a penalty.
 */
typedef struct TopupProblem
{
	int			n_accounts;
	const int64_t *available;	/* balance + lower limit - pending debits, minor units */
	const bool *constrained;
	int			n_payments;
	const int  *src;			/* account index debited */
	const int  *dst;			/* account index credited */
	const int64_t *amount;		/* minor units of src's currency, > 0: the debit */
	const int64_t *credit;		/* minor units of dst's currency, > 0; NULL: amount (one currency) */
	const double *weight;		/* > 0: settled weight of the payment */
	/* wires (NULL / 0: none): the payer's and the payee's, -1 for none */
	int			n_wires;
	const int  *wire_src;
	const int  *wire_dst;
	const double *wire_fee;		/* >= 0, the objective's unit */
	/* FX pairs (NULL / 0: none): the pair a payment converts in, -1 for none */
	int			n_pairs;
	const int  *pair;
	const double *volume;		/* signed converted volume (one direction of the pair +) */
	const double *spread;		/* >= 0: cost per unit of net |volume|, the objective's unit */
	int			target;			/* the account whose top-up is sought */
	double		time_limit_ms;	/* per MIP, <= 0: none */
} TopupProblem;

typedef enum TopupStatus
{
	TOPUP_OPTIMAL = 0,			/* all three MIPs proven optimal */
	TOPUP_FEASIBLE,				/* a time limit stopped one: best found, not proven */
	TOPUP_ERROR					/* bad input or GLPK failed: nothing */
} TopupStatus;

typedef struct TopupResult
{
	TopupStatus status;
	int64_t		topup;			/* exact: what the chosen selection needs on target */
	/* objective values: weights settled less the fees and spreads they cost */
	double		weight_now;		/* the most without a top-up */
	double		weight_unlimited;	/* the most with unlimited liquidity on target */
	double		weight_topped;	/* with the top-up (= weight_unlimited) */
	bool	   *settled_now;	/* caller-allocated, n_payments */
	bool	   *settled_topped; /* caller-allocated, n_payments */
	char		message[256];
} TopupResult;

extern TopupStatus settle_solve_topup(const TopupProblem *tp, TopupResult *r);

#endif							/* SETTLE_SOLVER_DUALS_H */
