/*
 * cycle.h -- one settlement cycle: queue -> GLPK model -> postings.
 */
#ifndef SETTLE_CYCLE_H
#define SETTLE_CYCLE_H

#include "postgres.h"

/* The cycle's settings, defined by settle_cycle_init() (cycle.c) */
extern int	settle_cycle_interval_ms;
extern double settle_solver_time_limit_ms;
extern double settle_mip_gap;
extern int	settle_mip_max_payments;
extern int	settle_max_cycle_payments;
extern char *settle_reference_currency;
extern double settle_delay_cost_bps;
extern bool settle_suspension_holds_payee;

/* The NOTIFY channel of settled payments (docs/OPERATIONS.md, "Real time"). */
#define SETTLE_NOTIFY_CHANNEL "settle_settled"

/* Define the cycle's settings (from _PG_init). */
extern void settle_cycle_init(void);

/*
 * Run one cycle in the current transaction (SPI must not be connected).
 * Returns the new cycle_id, or 0 when there was nothing to do.
 */
extern int64 settle_run_cycle(const char *run_by);

#endif							/* SETTLE_CYCLE_H */
