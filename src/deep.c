/*
 * deep.c -- the worker's deep pass on a stuck queue (issue #27,
 * include/deep.h, docs/CYCLE.md "The deep pass").
 *
 * The real-time solve has its 20 ms and a gridlocked queue gets the same
 * answer from it cycle after cycle.  Here the worker gives that queue a
 * longer search (settle_solve_deep, src/solver_deep.c) between cycles:
 *
 *   - a full worker cycle (no payer skipped, quiet.c) that may leave the
 *     queue stuck (settle.deep_after_cycles - 1 cycles in a row before it
 *     changed nothing, or the backlog is stalled) copies what it leaves
 *     waiting into the worker's memory: the payments it did not select and
 *     the accounts' available after those it did (the snapshot);
 *   - when the queue is stuck (pace.c: settle.deep_after_cycles cycles in
 *     a row changed nothing, or the backlog is stalled) and
 *     settle.deep_interval has passed since the last deep pass, the worker
 *     runs it on the snapshot, outside any transaction, holding no lock,
 *     for at most settle.deep_budget; a commit that wakes the worker (new
 *     payments), a signal or a reload cuts it short with what it has;
 *   - a selection of the waiting payments that settles something (cheaper
 *     than settling none of them) is kept as a hint (payment ids) and the
 *     next worker cycle is made a full one;
 *   - that cycle, after its own real-time solve, maps the hint onto its own
 *     queue, fills in what else fits, and takes it only if it passes the
 *     exact limit check against the cycle's own balances and is cheaper
 *     than the real-time selection.  Groups and the final limit check of
 *     cycle.c apply to it as to any selection: nothing is settled that the
 *     real-time checks would refuse.  A hint is used once.
 *
 * Worker state in its own memory contexts under TopMemoryContext.
 */
#include "postgres.h"

#include <math.h>

#include "miscadmin.h"
#include "postmaster/interrupt.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "deep.h"
#include "quiet.h"
#include "solver_deep.h"

int			settle_deep_budget_ms = 1000;
int			settle_deep_interval_ms = 10000;
int			settle_deep_after_cycles = 3;

/* what the last full cycle left waiting: its problem, ids and the empty start */
static MemoryContext snap_cxt = NULL;
static SolverProblem snap;
static int64 *snap_ids = NULL;
static bool *snap_sel = NULL;
static bool have_snap = false;
static bool snap_searched = false;	/* a deep pass already ran on it */

/* the hint: the deep pass's selection, payment ids sorted */
static MemoryContext hint_cxt = NULL;
static int64 *hint_ids = NULL;
static int	n_hint = 0;

static TimestampTz last_deep = 0;
/* the worker's word before this cycle: the queue may be stuck after it (pace.c) */
static bool may_be_stuck = false;

static int	cmp_int64(const void *a, const void *b);
static bool deep_interrupted(void *arg);
static void take_snapshot(const SolverProblem *p, const int64 *ids, const bool *sel);

void
settle_deep_define_settings(void)
{
	DefineCustomIntVariable("settle.deep_budget",
							"Longest deep pass the worker runs on a stuck queue, between cycles.",
							"0 turns the deep pass off. It runs outside any transaction and holds no lock; a commit that wakes the worker cuts it short.",
							&settle_deep_budget_ms,
							1000, 0, 60000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("settle.deep_interval",
							"Shortest time between two deep passes.",
							NULL, &settle_deep_interval_ms,
							10000, 100, 86400000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("settle.deep_after_cycles",
							"Worker cycles in a row that change nothing before the queue gets a deep pass.",
							"A stalled backlog (settle.stall_after) gets one too.",
							&settle_deep_after_cycles,
							3, 1, 1000,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
}

static int
cmp_int64(const void *a, const void *b)
{
	int64		x = *(const int64 *) a,
				y = *(const int64 *) b;

	return x < y ? -1 : x > y;
}

/* The deep pass stops for new payments (the worker's latch), a signal or a reload. */
static bool
deep_interrupted(void *arg)
{
	return InterruptPending || ConfigReloadPending || MyLatch->is_set;
}

/*
 * Copy what the cycle leaves waiting into the worker's memory: the payments
 * it did not select, and every account's available after those it did (the
 * queue the next cycle will see if nothing else happens).  The deep pass
 * starts from settling none of them.
 */
static void
take_snapshot(const SolverProblem *p, const int64 *ids, const bool *sel)
{
	MemoryContext old;
	SolverAccount *acc;
	SolverPayment *pay;
	double	   *fee;
	double	   *spread;
	int			n = 0;
	int			i;

	if (snap_cxt == NULL)
		snap_cxt = AllocSetContextCreate(TopMemoryContext, "settle deep pass snapshot", ALLOCSET_DEFAULT_SIZES);
	MemoryContextReset(snap_cxt);
	have_snap = false;
	old = MemoryContextSwitchTo(snap_cxt);
	acc = palloc(sizeof(SolverAccount) * Max(p->n_accounts, 1));
	pay = palloc(sizeof(SolverPayment) * Max(p->n_payments, 1));
	fee = palloc(sizeof(double) * Max(p->n_wires, 1));
	spread = palloc(sizeof(double) * Max(p->n_fx_pairs, 1));
	snap_ids = palloc(sizeof(int64) * Max(p->n_payments, 1));
	snap_sel = palloc0(sizeof(bool) * Max(p->n_payments, 1));
	MemoryContextSwitchTo(old);
	memcpy(acc, p->accounts, sizeof(SolverAccount) * p->n_accounts);
	for (i = 0; i < p->n_payments; i++)
	{
		const SolverPayment *s = &p->payments[i];

		if (sel[i])
		{
			/* within int64: the solver checked every account's range (solver.c) */
			acc[s->src].available -= s->debit;
			acc[s->dst].available += s->credit;
			continue;
		}
		pay[n] = *s;
		snap_ids[n++] = ids[i];
	}
	if (p->n_wires > 0)
		memcpy(fee, p->wire_fee, sizeof(double) * p->n_wires);
	if (p->n_fx_pairs > 0)
		memcpy(spread, p->fx_spread, sizeof(double) * p->n_fx_pairs);
	memset(&snap, 0, sizeof(snap));
	snap.n_accounts = p->n_accounts;
	snap.accounts = acc;
	snap.n_payments = n;
	snap.payments = pay;
	snap.n_wires = p->n_wires;
	snap.wire_fee = fee;
	snap.n_fx_pairs = p->n_fx_pairs;
	snap.fx_spread = spread;
	snap.time_limit_ms = p->time_limit_ms;
	snap.mip_gap = p->mip_gap;
	snap.mip_max_payments = p->mip_max_payments;
	snap.interrupted = deep_interrupted;
	have_snap = n > 0;
	snap_searched = false;
}

void
settle_deep_cycle_starting(bool stuck_so_far)
{
	may_be_stuck = stuck_so_far;
}

void
settle_deep_cycle_finished(bool committed)
{
	/* a cycle rolled back: its copy assumed a selection that was not posted */
	if (!committed)
		have_snap = false;
	may_be_stuck = false;
}

bool
settle_deep_cycle_solved(const SolverProblem *problem, const int64 *ids, bool full,
						 bool *selected, SolverResult *result)
{
	bool		used = false;
	int			n = problem->n_payments;
	int			i;

	if (n_hint > 0 && full)
	{
		bool	   *cand = palloc0(sizeof(bool) * Max(n, 1));
		bool		within_limits;
		__int128   *bal = palloc(sizeof(__int128) * Max(problem->n_accounts, 1));

		/* the hint on this cycle's queue (payments gone since are not in it) */
		for (i = 0; i < problem->n_accounts; i++)
			bal[i] = problem->accounts[i].available;
		for (i = 0; i < n; i++)
			if (bsearch(&ids[i], hint_ids, n_hint, sizeof(int64), cmp_int64) != NULL)
			{
				cand[i] = true;
				bal[problem->payments[i].src] -= problem->payments[i].debit;
				bal[problem->payments[i].dst] += problem->payments[i].credit;
			}
		/* then, in queue order, what the real-time solve chose and still fits (new payments) */
		for (i = 0; i < n; i++)
		{
			const SolverPayment *s = &problem->payments[i];
			int			a = s->src;
			__int128	floor = problem->accounts[a].available < 0 ? problem->accounts[a].available : 0;
			__int128	after = bal[a] - s->debit + (s->dst == a ? s->credit : 0);

			if (cand[i] || !selected[i])
				continue;
			if (!problem->accounts[a].constrained || after >= floor || after >= bal[a])
			{
				cand[i] = true;
				bal[a] -= s->debit;
				bal[s->dst] += s->credit;
			}
		}
		pfree(bal);
		within_limits = settle_check_selection(problem, cand) < 0;
		if (within_limits && settle_check_groups(problem, cand) >= 0)
			/* the deep pass does not model linked groups: a hint that splits one is dropped */
			ereport(LOG,
					(errmsg("settle deep pass: hint not taken: it settles a linked group in part")));
		else if (within_limits)
		{
			double		hint_obj = settle_selection_objective(problem, cand);
			double		own_obj = settle_selection_objective(problem, selected);

			if (hint_obj < own_obj - 1e-9 * (1 + fabs(own_obj)))
			{
				memcpy(selected, cand, sizeof(bool) * n);
				result->objective = hint_obj;
				result->settled_weight = 0;
				for (i = 0; i < n; i++)
					if (selected[i])
						result->settled_weight += problem->payments[i].penalty;
				result->status = SOLVER_FEASIBLE;
				snprintf(result->method, sizeof(result->method), "deep pass hint");
				used = true;
			}
			ereport(LOG,
					(errmsg("settle deep pass: hint %s: objective %.2f against the cycle's own %.2f",
							used ? "taken" : "not taken (not cheaper)", hint_obj, own_obj)));
		}
		else
			ereport(LOG,
					(errmsg("settle deep pass: hint not taken: it breaks a limit on this cycle's balances")));
		pfree(cand);
		MemoryContextReset(hint_cxt);
		hint_ids = NULL;
		n_hint = 0;
	}
	/* a copy only when the queue may be stuck after this cycle: a flowing queue costs nothing */
	if (settle_deep_budget_ms <= 0 || !full || !may_be_stuck)
		return used;
	take_snapshot(problem, ids, selected);
	may_be_stuck = false;		/* one copy per word from the worker */
	return used;
}

void
settle_deep_between_cycles(bool stuck, TimestampTz now)
{
	SolverDeepLimits lim;
	SolverDeepStats st;
	SolverResult r;
	bool	   *sel;
	int			n;
	int			i;
	int			k = 0;
	MemoryContext old;

	if (!stuck || !have_snap || snap_searched || settle_deep_budget_ms <= 0 ||
		(last_deep != 0 && !TimestampDifferenceExceeds(last_deep, now, settle_deep_interval_ms)))
		return;
	last_deep = now;
	snap_searched = true;
	n = snap.n_payments;
	settle_deep_default_limits(&lim);
	lim.time_limit_ms = settle_deep_budget_ms;
	sel = palloc0(sizeof(bool) * Max(n, 1));
	memset(&r, 0, sizeof(r));
	r.settle = sel;
	settle_solve_deep(&snap, snap_sel, &lim, &r, &st);
	CHECK_FOR_INTERRUPTS();
	if ((r.status == SOLVER_FEASIBLE || r.status == SOLVER_OPTIMAL) &&
		r.objective < st.start_objective - 1e-9 * (1 + fabs(st.start_objective)))
	{
		if (hint_cxt == NULL)
			hint_cxt = AllocSetContextCreate(TopMemoryContext, "settle deep pass hint", ALLOCSET_SMALL_SIZES);
		MemoryContextReset(hint_cxt);
		old = MemoryContextSwitchTo(hint_cxt);
		hint_ids = palloc(sizeof(int64) * Max(n, 1));
		MemoryContextSwitchTo(old);
		for (i = 0; i < n; i++)
			if (sel[i])
				hint_ids[k++] = snap_ids[i];
		qsort(hint_ids, k, sizeof(int64), cmp_int64);
		n_hint = k;
		/* the hint is for the whole queue: the next cycle judges it whole */
		settle_quiet_force_full();
	}
	ereport(LOG,
			(errmsg("settle deep pass on %d stuck payment(s): objective %.2f -> %.2f in %.0f ms, %d of %d region(s) improved%s",
					n, st.start_objective, r.objective, r.solve_ms, st.improved, st.rounds,
					n_hint > 0 ? "; the next cycle considers it" : "")));
	pfree(sel);
}
