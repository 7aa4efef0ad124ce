/*
 * pace.c -- when the settlement worker runs its next cycle.
 *
 * A commit of intake wakes the worker; the worker then gathers payments
 * for T milliseconds from the first one not yet in a cycle, T chosen from
 * the cost of waiting against the benefit of a bigger batch:
 *
 *   payments arrive at rate L (per second); one second of a payment's wait
 *   costs h (its priority-weighted value x settle.waiting_cost_bps); a batch
 *   of n payments costs K(n) in wire fees and spread.  Netting makes K grow
 *   slower than n: a participant that both pays and is paid in a batch needs
 *   one wire, not two, and a batch can never need more wires than there are
 *   participants and currencies.  K is modelled as saturating,
 *       K(n) = c . (1 - exp(-s.n)) / s
 *   (c: what a payment alone costs; 1/s: the batch size at which netting
 *   has taken about two thirds of what it ever can; s = 0: K = c.n, no
 *   netting, waiting buys nothing).  Gathering for T, a batch holds
 *   n = 1 + L.T payments, the first waits T, the others T/2 on average, and
 *   the cost per payment is
 *       g(T) = (K(n) + h.T + h.L.T^2 / 2) / n,
 *   minimised over [settle.batch_window, settle.max_batch_delay] on a grid.
 *   With a saturating K the benefit of waiting grows with L (more payments
 *   join the batch per millisecond waited) while its cost per payment does
 *   not: the worker waits at high rates, where waiting nets much, and not at
 *   low ones.  (A K independent of n, the economic order quantity, gives the
 *   opposite: T* ~ sqrt(2K / (L.h)), the longest waits at the lowest rates.)
 *
 * Each cycle measures its own economies of scale: it costs the first half
 * of its settled payments alone, netted the same way (netting.c), and c and
 * s are fitted so that K(n) and K(n/2) are the two costs observed (on moving
 * averages of both over about 20 cycles).  Until a cycle of at least
 * FIT_MIN_SETTLED payments has been fitted, K is taken as the last cycles'
 * cost whatever the batch (the economic order quantity).  L and h are moving
 * averages too (intake's shared arrival counter, each cycle's settled
 * weight).  The least wait applies at once when a payment of priority 9
 * or with a deadline within reach is among the pending ones.  After a cycle that left payments
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
int			settle_max_batch_delay_ms = 75;
double		settle_waiting_cost_bps = 100;
int			settle_stall_backoff_max_ms = 1000;

/* weight of the newest observation in the moving averages */
#define EWMA_ALPHA 0.3
/* priority of an urgent payment: it waits only the least window */
#define URGENT_PRIORITY 9
/* points of [batch_window, max_batch_delay] at which g(T) is evaluated */
#define DELAY_GRID 64
/* fewest settled payments a cycle needs for its costs to be fitted */
#define FIT_MIN_SETTLED 4
/*
 * weight of the newest cycle in the averages the fit uses: a small batch's
 * two costs differ from n : n/2 by little more than their noise, so the fit
 * is made on averages over about 1 / FIT_ALPHA cycles, not averaged over
 * fits (a fit cut at s = 0 is biased upwards)
 */
#define FIT_ALPHA 0.05
/* s at most SATURATED / (half batch): K(n/2) = K(n) to the precision used */
#define SATURATED 20.0

typedef struct PaceState
{
	TimestampTz last_round_at;	/* last cycle started, or round skipped: the heartbeat counts from it */
	bool		idle_only;		/* the last round was skipped: only the heartbeat wakes */
	TimestampTz cycle_started_at;
	uint64		arrived_at_start;	/* intake's counter when the last cycle took the queue */
	bool		have_rate;
	double		rate;			/* L, payments per second */
	double		cycle_cost;		/* until a fit: K, taken as the same for any batch */
	/* moving averages of the fitted cycles' n, n/2 and their two costs */
	bool		have_fit;
	double		fit_n;
	double		fit_half_n;
	double		fit_cost;
	double		fit_half_cost;
	double		lone_cost;		/* c: cost of a payment alone, reference currency */
	double		saturation;		/* s, per payment (0: no netting) */
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
static double batch_cost(double n);
static void fit_batch_cost(const SettleCycleOutcome *o);

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
							75, 0, 60000,
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

/* K(n): the modelled cost of a batch of n payments. */
static double
batch_cost(double n)
{
	if (!pace.have_fit)
		return pace.cycle_cost;
	if (pace.saturation <= 0)
		return pace.lone_cost * n;
	return pace.lone_cost * (1 - exp(-pace.saturation * n)) / pace.saturation;
}

/*
 * Fold the cycle's two costs, K(n) = cost and K(m) = half_cost (m = n / 2),
 * into the averages and fit c and s to them.  K(m) / K(n) runs from m / n
 * (s = 0) up to 1 (s large) as s grows: bisection.
 */
static void
fit_batch_cost(const SettleCycleOutcome *o)
{
	bool		first = !pace.have_fit;
	double		n;
	double		m;
	double		r;
	double		s;

	if (o->settled < FIT_MIN_SETTLED || o->half_settled < 1 || o->cost <= 0)
		return;
	pace.fit_n = first ? o->settled : FIT_ALPHA * o->settled + (1 - FIT_ALPHA) * pace.fit_n;
	pace.fit_half_n = first ? o->half_settled : FIT_ALPHA * o->half_settled + (1 - FIT_ALPHA) * pace.fit_half_n;
	pace.fit_cost = first ? o->cost : FIT_ALPHA * o->cost + (1 - FIT_ALPHA) * pace.fit_cost;
	pace.fit_half_cost = first ? o->half_cost : FIT_ALPHA * o->half_cost + (1 - FIT_ALPHA) * pace.fit_half_cost;
	pace.have_fit = true;

	n = pace.fit_n;
	m = pace.fit_half_n;
	r = pace.fit_half_cost / pace.fit_cost;
	if (r <= m / n)
		s = 0;					/* no economy of scale seen */
	else if (r >= 1)
		s = SATURATED / m;
	else
	{
		double		lo = 0;
		double		hi = SATURATED / m;
		int			i;

		for (i = 0; i < 50; i++)
		{
			double		mid = (lo + hi) / 2;

			if ((1 - exp(-mid * m)) / (1 - exp(-mid * n)) < r)
				lo = mid;
			else
				hi = mid;
		}
		s = (lo + hi) / 2;
	}
	pace.saturation = s;
	pace.lone_cost = s > 0 ? pace.fit_cost * s / (1 - exp(-s * n)) : pace.fit_cost / n;
}

/* T*, in ms: the least g(T) on a grid of [batch_window, max_batch_delay]. */
static double
batch_delay_ms(const SettleArrivals *a, TimestampTz now)
{
	double		lo = settle_batch_window_ms;
	double		hi = Max(settle_max_batch_delay_ms, settle_batch_window_ms);
	double		h = pace.weight_per_payment * settle_waiting_cost_bps / 10000.0;
	double		best_t = lo;
	double		best_g = 0;
	int			k;

	if (a->max_priority >= URGENT_PRIORITY)
		return lo;
	/* a deadline within reach of the longest wait and a cycle: no waiting */
	if (a->min_deadline != 0 &&
		a->min_deadline < a->first_at + (TimestampTz) ((hi + 2 * pace.last_cycle_ms) * 1000.0))
		return lo;
	if (pace.rate <= 0 || (pace.have_fit ? pace.lone_cost : pace.cycle_cost) <= 0 || h <= 0 || hi <= lo)
		return lo;
	for (k = 0; k <= DELAY_GRID; k++)
	{
		double		t_ms = lo + (hi - lo) * k / DELAY_GRID;
		double		t = t_ms / 1000.0;
		double		n = 1 + pace.rate * t;
		double		g = (batch_cost(n) + h * t + h * pace.rate * t * t / 2) / n;

		if (k == 0 || g < best_g)
		{
			best_g = g;
			best_t = t_ms;
		}
	}
	return best_t;
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
settle_pace_cycle_finished(TimestampTz now, bool committed, const SettleCycleOutcome *o, SettleStall *stall)
{
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
		pace.cycle_cost = ewma(pace.cycle_cost, o->cost, pace.weight_per_payment == 0);
		pace.weight_per_payment = ewma(pace.weight_per_payment, o->settled_weight / o->settled,
									   pace.weight_per_payment == 0);
		fit_batch_cost(o);
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
	report.arrival_rate = pace.have_rate ? pace.rate : NAN;
	report.lone_payment_cost = pace.have_fit ? pace.lone_cost : NAN;
	report.netting_saturation = pace.have_fit ? pace.saturation : NAN;
	report.waiting_cost = pace.weight_per_payment > 0 ?
		pace.weight_per_payment * settle_waiting_cost_bps / 10000.0 : NAN;
	if (committed)
		settle_backlog_publish(&report);
	return newly;
}

/* Stuck: this many worker cycles in a row changed nothing, or the backlog is stalled (deep.c). */
bool
settle_pace_stuck(int cycles)
{
	return pace.no_progress >= cycles || pace.stalled;
}
