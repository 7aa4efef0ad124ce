/*
 * cycle_int.h -- the stages of one settlement cycle, in the files that run
 * them (private to cycle*.c).  cycle.c calls them in order; none calls back.
 */
#ifndef SETTLE_CYCLE_INT_H
#define SETTLE_CYCLE_INT_H

#include "cycle.h"
#include "cycle_state.h"

/* Penalty factor for a payment that must settle this cycle (cycle_model.c, funding advice). */
#define DUE_FACTOR 10.0

/* cycle_load.c */
extern int	settle_cycle_expire_overdue(void);
extern void settle_cycle_load_currencies(CycleState *cs);
extern void settle_cycle_load_queue(CycleState *cs, char **skip, int n_skip, const char *new_from_xid);
extern void settle_cycle_load_accounts(CycleState *cs);
extern void settle_cycle_load_wires(CycleState *cs);

/* cycle_ranges.c: payments the cycle's arithmetic cannot carry wait or are held */
extern void settle_cycle_hold_out_of_range(CycleState *cs);

/* cycle_model.c */
extern void settle_cycle_build_and_solve(CycleState *cs);

/* cycle_record.c */
extern void settle_cycle_record(CycleState *cs);
extern void settle_cycle_notify_settled(CycleState *cs);
extern void settle_cycle_set_outcome(CycleState *cs, SettleCycleOutcome *o);

/* A payment the cycle leaves queued, not by choice: counted for the backlog report. */
static inline void
note_waiting(CycleState *cs, int64 payment_id)
{
	cs->n_waiting++;
	if (cs->oldest_waiting_id == 0 || payment_id < cs->oldest_waiting_id)
		cs->oldest_waiting_id = payment_id;
}

#endif							/* SETTLE_CYCLE_INT_H */
