/*
 * cycle.h -- one settlement cycle: queue -> GLPK model -> postings.
 */
#ifndef SETTLE_CYCLE_H
#define SETTLE_CYCLE_H

#include "postgres.h"

/* The cycle's settings, defined by settle_cycle_define_settings() (cycle_settings.c) */
extern double settle_solver_time_limit_ms;
extern double settle_mip_gap;
extern int	settle_mip_max_payments;
extern int	settle_max_cycle_payments;
extern char *settle_reference_currency;
extern double settle_delay_cost_bps;
extern bool settle_suspension_holds_payee;
extern int	settle_priority_aging_ms;

/*
 * What one settle_run_cycle() saw and did, for the worker's pacing and
 * backlog report (read only once the cycle committed).  The caller owns it.
 */
typedef struct SettleCycleOutcome
{
	bool		ran;			/* the cycle got as far as taking the queue */
	int			loaded;			/* queued payments it took */
	int64		queued_after;	/* the queue's depth its snapshot left; -1 unknown */
	int			settled;		/* settled (two-phase: reserved) */
	int			expired;
	int			held;			/* held for an operator by this cycle */
	int			deferred;		/* left because waiting was cheaper */
	int			waiting;		/* left for lack of liquidity, a frozen account, a range or a rate */
	int64		oldest_waiting; /* the oldest of those; 0: none */
	double		cost;			/* wire fees and spread, reference currency */
	double		settled_weight; /* sum of priority weight x value settled, reference currency */
	/* the netted cost of the first half_settled of them, in queue order (pace.c) */
	int			half_settled;
	double		half_cost;
} SettleCycleOutcome;

/* The NOTIFY channel of settled payments (docs/OPERATIONS.md, "Real time"). */
#define SETTLE_NOTIFY_CHANNEL "settle_settled"

/* Define the cycle's settings (from _PG_init). */
extern void settle_cycle_define_settings(void);

/*
 * Run one cycle in the current transaction (SPI must not be connected).
 * Returns the new cycle_id, or 0 when there was nothing to do.  outcome
 * (may be NULL) is zeroed at once and filled once the cycle took the queue.
 */
extern int64 settle_run_cycle(const char *run_by, SettleCycleOutcome *outcome);

#endif							/* SETTLE_CYCLE_H */
