/*
 * pace.c -- when the settlement worker runs its next cycle.
 *
 * A commit of intake wakes the worker; the worker then gathers payments
 * for T milliseconds from the first one not yet in a cycle, T chosen from
 * the cost of waiting against the benefit of a bigger batch:
 *
 *   payments arrive at rate L (per second); a cycle costs K (its wire fees
 *   and spread: the wires a bigger batch nets away); a payment's wait costs
 *   h per second (its priority-weighted value x settle.waiting_cost_bps).
 *   Gathering for T, a batch holds 1 + L.T payments on average, cycles run
 *   at L / (1 + L.T) per second, and the cost per second is
 *       C(T) = L / (1 + L.T) . (K + h.T + h.L.T^2 / 2).
 *   dC/dT = 0 gives x = L.T = sqrt(2 L.K / h - 1) - 1, so
 *       T* = (sqrt(2 L.K / h - 1) - 1) / L   when 2 L.K / h > 2, else 0
 *   (for large L.K / h, T* ~ sqrt(2 K / (L h)), the economic order quantity).
 *
 * L, K and h are moving averages of what the last cycles saw (arrivals from
 * intake's shared counter, each cycle's cost and settled weight).  T* is
 * kept within [settle.batch_window, settle.max_batch_delay]; the least wait
 * applies at once when a payment of priority 9 or with a deadline within
 * reach is among the pending ones.  After a cycle that left payments
 * waiting and changed nothing (settled, expired and held nothing), the
 * next one waits a backoff that doubles up to settle.stall_backoff_max:
 * the worker does not loop hot on an unsettleable queue, and any cycle that
 * settles something ends the backoff.  docs/CYCLE.md has the rule and its
 * parameters; this file owns settle.batch_window, settle.max_batch_delay,
 * settle.waiting_cost_bps and settle.stall_backoff_max.
 */
#include "postgres.h"

#include <math.h>

#include "utils/guc.h"
#include "utils/timestamp.h"

#include "backlog.h"
#include "cycle.h"
#include "pace.h"
#include "worker.h"

int			settle_batch_window_ms = 10;
int			settle_max_batch_delay_ms = 25;
double		settle_waiting_cost_bps = 100;
int			settle_stall_backoff_max_ms = 1000;

/* weight of the newest observation in the moving averages */
#define EWMA_ALPHA 0.3
/* priority of an urgent payment: it waits only the least window */
#define URGENT_PRIORITY 9

typedef struct PaceState
{
	TimestampTz last_round_at;	/* last cycle started, or round skipped: the heartbeat counts from it */
	bool		idle_only;		/* the last round was skipped: only the heartbeat wakes */
	TimestampTz cycle_started_at;
	uint64		arrived_at_start;	/* intake's counter when the last cycle took the queue */
	bool		have_rate;
	double		rate;			/* L, payments per second */
	double		cycle_cost;		/* K, reference currency */
	double		weight_per_payment; /* priority weight x value per settled payment */
	double		last_cycle_ms;
	/* backoff and the stuck backlog */
	int			no_progress;
	double		backoff_ms;
	TimestampTz backoff_until;
	int64		oldest_waiting;
	TimestampTz oldest_waiting_since;
	bool		stalled;
	TimestampTz stalled_since;
	double		batch_delay_ms; /* the last decision */
	int64		queued;
} PaceState;

static PaceState pace;

static double batch_delay_ms(const SettleArrivals *a, TimestampTz now);
static double ewma(double old, double sample, bool first);

void
settle_pace_define_settings(void)
{
	DefineCustomIntVariable("settle.batch_window",
							"Least time the worker gathers payments after a commit wakes it.",
							"0: cycle at once when waiting is not worth its cost. settle.cycle_interval stays the idle heartbeat.",
							&settle_batch_window_ms,
							10, 0, 60000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("settle.max_batch_delay",
							"Most time the worker gathers payments before cycling, from the first one waiting.",
							"Below settle.batch_window, the window applies.",
							&settle_max_batch_delay_ms,
							25, 0, 60000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomRealVariable("settle.waiting_cost_bps",
							 "Cost of one second of a payment's wait for a cycle, in basis points of its priority-weighted value.",
							 "The worker gathers payments while the wire costs a bigger batch saves exceed this cost.",
							 &settle_waiting_cost_bps,
							 100, 0.000001, 1000000,
							 PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("settle.stall_backoff_max",
							"Longest wait of the worker after cycles that left payments waiting and changed nothing.",
							"The wait doubles from settle.batch_window at each such cycle; a cycle that settles anything ends it.",
							&settle_stall_backoff_max_ms,
							1000, 0, 3600000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
}

static double
ewma(double old, double sample, bool first)
{
	return first ? sample : EWMA_ALPHA * sample + (1 - EWMA_ALPHA) * old;
}

/* T*, in ms, within [batch_window, max_batch_delay]. */
static double
batch_delay_ms(const SettleArrivals *a, TimestampTz now)
{
	double		lo = settle_batch_window_ms;
	double		hi = Max(settle_max_batch_delay_ms, settle_batch_window_ms);
	double		h = pace.weight_per_payment * settle_waiting_cost_bps / 10000.0;
	double		t = 0;

	if (a->max_priority >= URGENT_PRIORITY)
		return lo;
	/* a deadline within reach of the longest wait and a cycle: no waiting */
	if (a->min_deadline != 0 &&
		a->min_deadline < a->first_at + (TimestampTz) ((hi + 2 * pace.last_cycle_ms) * 1000.0))
		return lo;
	if (pace.rate > 0 && pace.cycle_cost > 0 && h > 0)
	{
		double		r = 2 * pace.rate * pace.cycle_cost / h - 1;

		if (r > 1)
			t = (sqrt(r) - 1) / pace.rate * 1000.0;
	}
	return Min(Max(t, lo), hi);
}

void
settle_pace_start(TimestampTz now)
{
	SettleArrivals a;

	memset(&pace, 0, sizeof(pace));
	pace.last_round_at = now;
	settle_backlog_peek(&a);
	pace.arrived_at_start = a.arrived;
}

long
settle_pace_wait_ms(TimestampTz now)
{
	SettleArrivals a;
	TimestampTz due = TimestampTzPlusMilliseconds(pace.last_round_at, settle_cycle_interval_ms);

	if (!pace.idle_only && settle_backlog_peek(&a) && a.first_at != 0)
	{
		TimestampTz gathered;

		pace.batch_delay_ms = batch_delay_ms(&a, now);
		gathered = a.first_at + (TimestampTz) (pace.batch_delay_ms * 1000.0);
		if (pace.backoff_until > gathered)
			gathered = pace.backoff_until;
		if (gathered < due)
			due = gathered;
	}
	if (due <= now)
		return 0;
	/* round up: a wait of 0 ms would spin */
	return (long) ((due - now + 999) / 1000);
}

void
settle_pace_skipped(TimestampTz now)
{
	pace.last_round_at = now;
	pace.idle_only = true;
}

void
settle_pace_reloaded(void)
{
	pace.idle_only = false;
}

void
settle_pace_cycle_starting(TimestampTz now)
{
	SettleArrivals a;

	/* what the last cycle did is forgotten: a round that runs no cycle must not reuse it */
	memset(&settle_cycle_outcome, 0, sizeof(settle_cycle_outcome));
	settle_backlog_take(&a);
	if (pace.cycle_started_at != 0 && now > pace.cycle_started_at)
	{
		double		seconds = (double) (now - pace.cycle_started_at) / 1000000.0;

		pace.rate = ewma(pace.rate, (double) (a.arrived - pace.arrived_at_start) / seconds, !pace.have_rate);
		pace.have_rate = true;
	}
	pace.arrived_at_start = a.arrived;
	pace.cycle_started_at = now;
	pace.last_round_at = now;
	pace.idle_only = false;
}

bool
settle_pace_cycle_finished(TimestampTz now, bool committed, SettleStall *stall)
{
	const SettleCycleOutcome *o = &settle_cycle_outcome;
	SettleBacklogReport report;
	bool		progress;
	bool		stalled_now;
	bool		newly = false;

	pace.last_cycle_ms = (double) (now - pace.cycle_started_at) / 1000.0;
	if (committed && !o->ran)
		return false;			/* no extension, another release: nothing was looked at */
	progress = committed && (o->settled > 0 || o->expired > 0 || o->held > 0);
	if (committed && o->settled > 0)
	{
		bool		first = pace.cycle_cost == 0 && pace.weight_per_payment == 0;

		pace.cycle_cost = ewma(pace.cycle_cost, o->cost, first);
		pace.weight_per_payment = ewma(pace.weight_per_payment, o->settled_weight / o->settled, first);
	}
	/* a failed cycle, or one that left payments and changed nothing: back off */
	if (!progress && (!committed || o->waiting > 0))
		pace.no_progress++;
	else
		pace.no_progress = 0;
	if (pace.no_progress > 0)
	{
		double		base = Max(settle_batch_window_ms, 1);

		pace.backoff_ms = Min(base * pow(2.0, Min(pace.no_progress, 30)), (double) settle_stall_backoff_max_ms);
		pace.backoff_until = TimestampTzPlusMilliseconds(now, (int) pace.backoff_ms);
	}
	else
	{
		pace.backoff_ms = 0;
		pace.backoff_until = 0;
	}

	if (committed)
	{
		/* the same oldest payment left by every cycle since oldest_waiting_since */
		if (o->waiting == 0)
			pace.oldest_waiting = 0;
		else if (o->oldest_waiting != pace.oldest_waiting)
		{
			pace.oldest_waiting = o->oldest_waiting;
			pace.oldest_waiting_since = pace.cycle_started_at;
		}
		stalled_now = pace.oldest_waiting != 0 &&
			TimestampDifferenceExceeds(pace.oldest_waiting_since, now, settle_stall_after_ms);
		if (stalled_now && !pace.stalled)
		{
			newly = true;
			pace.stalled_since = now;
			stall->payment_id = pace.oldest_waiting;
			stall->waiting = o->waiting;
			stall->waiting_since = pace.oldest_waiting_since;
			stall->no_progress = pace.no_progress;
			settle_backlog_count_stall();
			ereport(LOG,
					(errmsg("settle backlog stalled: payment " INT64_FORMAT " has been left by every cycle since %s, %d payment(s) waiting",
							pace.oldest_waiting, timestamptz_to_str(pace.oldest_waiting_since), o->waiting),
					 errdetail("%d cycle(s) in a row changed nothing; the worker waits up to %d ms between them.",
							   pace.no_progress, settle_stall_backoff_max_ms),
					 errhint("Look for a participant short of liquidity or a gridlock: SELECT * FROM settle_backlog_status();")));
		}
		else if (!stalled_now && pace.stalled)
			ereport(LOG, (errmsg("settle backlog no longer stalled: %d payment(s) waiting", o->waiting)));
		pace.stalled = stalled_now;
		if (o->queued_after >= 0)
			pace.queued = o->queued_after;
	}

	memset(&report, 0, sizeof(report));
	report.queued = pace.queued;
	report.arrived_at = pace.arrived_at_start;
	report.waiting = committed ? o->waiting : 0;
	report.oldest_waiting = pace.oldest_waiting;
	report.oldest_waiting_since = pace.oldest_waiting_since;
	report.no_progress = pace.no_progress;
	report.stalled = pace.stalled;
	report.stalled_since = pace.stalled_since;
	report.backoff_ms = pace.backoff_ms;
	report.batch_delay_ms = pace.batch_delay_ms;
	if (committed)
		settle_backlog_publish(&report);
	return newly;
}
