/*
 * backlog.h -- the queue as the worker and intake see it between cycles, in
 * shared memory: arrivals since the last cycle, an estimate of the queue's
 * depth, intake's refusals under overload, and the stuck-backlog state.
 *
 * Present only when settle is in shared_preload_libraries; without it every
 * function here does nothing (and intake never refuses for depth).
 * docs/CYCLE.md, "Pacing, backpressure and a stuck backlog", says what each
 * figure means.
 */
#ifndef SETTLE_BACKLOG_H
#define SETTLE_BACKLOG_H

#include "postgres.h"
#include "utils/timestamp.h"

/* settle.max_queued (payments), settle.max_queue_age (ms; 0: no limit) and settle.stall_after (ms) */
extern int	settle_max_queued;
extern int	settle_max_queue_age_ms;
/* settle.cycle_interval (registered in cycle_settings.c) */
extern int	settle_cycle_interval_ms;
extern int	settle_stall_after_ms;

/* What intake committed since the worker last took the queue. */
typedef struct SettleArrivals
{
	uint64		arrived;		/* payments committed to the queue since the server started */
	TimestampTz first_at;		/* first commit not yet taken by a cycle; 0: none */
	int			max_priority;	/* highest priority among them */
	TimestampTz min_deadline;	/* earliest deadline among them; 0: none */
} SettleArrivals;

/* What the worker publishes after each committed cycle (and reads back). */
typedef struct SettleBacklogReport
{
	int64		queued;			/* queue depth as the cycle left it (its snapshot) */
	uint64		arrived_at;		/* arrivals counted when the cycle took the queue */
	int64		waiting;		/* payments the cycle left for lack of liquidity (not deferred) */
	int64		oldest_waiting; /* the oldest of them; 0: none */
	TimestampTz oldest_waiting_since;	/* since when every cycle has left that one */
	int			no_progress;	/* cycles in a row that left payments waiting and changed nothing */
	bool		stalled;
	TimestampTz stalled_since;
	double		backoff_ms;		/* the worker's wait after a cycle that changed nothing */
	double		batch_delay_ms; /* its last decision: how long to gather payments */
	/* what it decided from (pace.c); NaN: not learnt yet */
	double		arrival_rate;	/* L, payments per second */
	double		lone_payment_cost;	/* c, reference currency */
	double		netting_saturation; /* s, per payment */
	double		waiting_cost;	/* h, reference currency per payment and second */
} SettleBacklogReport;

/* From _PG_init: the settings. */
extern void settle_backlog_define_settings(void);
/* The backlogs' shared memory: its size asked for, then attached (hooks.c, while preloaded). */
extern void settle_backlog_shmem_request(void);
extern void settle_backlog_shmem_startup(void);
/* Intake queued n payments: count them and wake this database's worker once the transaction commits. */
extern void settle_worker_wake_at_commit(int n, int max_priority, TimestampTz min_deadline);
/* The launcher gave worker slot `slot` to a database: its queue starts empty. */
extern void settle_backlog_reset(int slot);

/*
 * Intake, in its transaction: n payments will join the queue if it commits;
 * the commit callback (worker_state.c) then counts them, or forgets them.
 */
extern void settle_backlog_note_pending(int n, int max_priority, TimestampTz min_deadline);
extern void settle_backlog_pending_committed(void);
extern void settle_backlog_pending_discarded(void);

/* Intake, before inserting n new payments: refuse (SE093) if the queue is full. */
extern bool settle_backlog_would_refuse(int n);
extern void settle_backlog_admit(int n);

/* The worker: read the arrivals; take them (a cycle starts and will see them). */
extern bool settle_backlog_peek(SettleArrivals *out);
extern void settle_backlog_take(SettleArrivals *out);

/* The worker: publish (and read back) the state after a cycle. */
extern void settle_backlog_publish(const SettleBacklogReport *report);
extern bool settle_backlog_read(SettleBacklogReport *out);

/* One more stall episode declared (settle_backlog_status().stalls). */
extern void settle_backlog_count_stall(void);

#endif							/* SETTLE_BACKLOG_H */
