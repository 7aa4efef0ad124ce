/*
 * pace.h -- when the worker runs its next cycle (docs/CYCLE.md, "Pacing").
 *
 * The worker gathers payments for as long as waiting is worth its price:
 * the delay cost of the payments that wait against the wire costs that a
 * bigger batch saves (a closed form of the batching trade-off), within
 * settle.batch_window and settle.max_batch_delay.  After a cycle that left
 * payments waiting and changed nothing it backs off (up to
 * settle.stall_backoff_max), and it reports a backlog whose oldest payment
 * every cycle leaves (settle.stall_after).  State of the worker process.
 */
#ifndef SETTLE_PACE_H
#define SETTLE_PACE_H

#include "postgres.h"
#include "utils/timestamp.h"

#include "cycle.h"

extern int	settle_batch_window_ms;
extern int	settle_max_batch_delay_ms;
extern double settle_waiting_cost_bps;
extern int	settle_stall_backoff_max_ms;

/* What the worker must report once (an event and a log line): a backlog newly stalled. */
typedef struct SettleStall
{
	int64		payment_id;		/* the oldest waiting payment */
	int64		waiting;
	TimestampTz waiting_since;
	int			no_progress;	/* cycles in a row that changed nothing */
} SettleStall;

extern void settle_pace_define_settings(void);

/* The worker started: the heartbeat counts from now. */
extern void settle_pace_start(TimestampTz now);

/* Milliseconds until the next cycle is due (0: now). */
extern long settle_pace_wait_ms(TimestampTz now);

/* A round was skipped (disabled, standby, fenced): only the heartbeat wakes it. */
extern void settle_pace_skipped(TimestampTz now);

/* The settings were reloaded: pending payments count again (the worker may be enabled now). */
extern void settle_pace_reloaded(void);

/* A cycle is about to start: the pending arrivals are its. */
extern void settle_pace_cycle_starting(TimestampTz now);

/*
 * The cycle ended, committed or not (*o says what it did: all zero when it
 * did not get as far as taking the queue).  Returns true, with *stall
 * filled, when the backlog has just stalled.
 */
extern bool settle_pace_cycle_finished(TimestampTz now, bool committed, const SettleCycleOutcome *o,
									   SettleStall *stall);

/* Stuck: cycles worker cycles in a row changed nothing, or the backlog is stalled. */
extern bool settle_pace_stuck(int cycles);

#endif							/* SETTLE_PACE_H */
