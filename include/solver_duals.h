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

/* The queue of one currency as settle_solve_topup() sees it. */
typedef struct TopupProblem
{
	int			n_accounts;
	const int64_t *available;	/* balance + lower limit - pending debits, minor units */
	const bool *constrained;
	int			n_payments;
	const int  *src;			/* account index debited */
	const int  *dst;			/* account index credited */
	const int64_t *amount;		/* minor units, > 0 (one currency: debit = credit) */
	const double *weight;		/* > 0: settled weight of the payment */
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
	double		weight_now;		/* most weight that settles without a top-up */
	double		weight_unlimited;	/* most that settles with unlimited liquidity on target */
	double		weight_topped;	/* what settles with the top-up (= weight_unlimited) */
	bool	   *settled_now;	/* caller-allocated, n_payments */
	bool	   *settled_topped; /* caller-allocated, n_payments */
	char		message[256];
} TopupResult;

extern TopupStatus settle_solve_topup(const TopupProblem *tp, TopupResult *r);

#endif							/* SETTLE_SOLVER_DUALS_H */
