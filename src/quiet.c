/*
 * quiet.c -- payers a worker cycle need not judge again.
 *
 * With thousands of payments stuck behind payers without liquidity, every
 * cycle loaded, locked and solved all of them again (20,000 stuck: about
 * 220 ms a cycle, against a few ms for the new payments), and new,
 * affordable payments waited for that.  A payment the solver leaves for
 * lack of liquidity can only settle once its payer's position improves:
 *
 *   - the payer's account row changes (funding, a limit, a settlement of a
 *     payment to it, a two-phase confirmation or void, a status), or its
 *     participant's row (a status, a change of its limits or reservations,
 *     issue #33): its xmin is at or after the previous cycle's snapshot xmin;
 *   - or a payment that this cycle may settle credits the payer (netting).
 *
 * A payer whose queued payments the last cycle all left so (at least one
 * left by the solver, none settled or deferred, none left for another
 * reason: a frozen account, a range, a missing rate) is quiet.  The next
 * worker cycle skips the old payments of quiet payers, except for payers
 * whose account changed and, transitively, payers credited by a payment of
 * a payer that is not skipped (so a ring closed by a new payment is judged
 * whole).  New payments (inserted or queued again after the previous
 * cycle's snapshot: their xmin) are always loaded.  Skipping never changes
 * what a cycle may post, only when a payment is judged; every
 * settle.full_cycle_interval a cycle judges the whole queue.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "cycle_state.h"
#include "quiet.h"
#include "spi_util.h"

int			settle_full_cycle_interval_ms = 30000;

#define KEY_LEN (NAMEDATALEN * 3)

typedef struct QuietPayer
{
	char		key[KEY_LEN];
	int			waiting;		/* left by the solver */
	int			other;			/* settled, deferred, or left for another reason */
	bool		skipped;		/* skipped by this cycle */
} QuietPayer;

/* the worker's state between cycles (TopMemoryContext) */
static MemoryContext quiet_cxt = NULL;
static bool have_state = false;
static bool use_this_cycle = false;
static TimestampTz last_full = 0;
static char *prev_xmin = NULL;	/* the previous cycle's snapshot xmin, as text xid */
static char **quiet = NULL;
static int	n_quiet = 0;

/* this cycle's: the payers in the cycle's memory; what outlives it in stage_cxt */
static bool in_worker_cycle = false;
static HTAB *payers = NULL;
static MemoryContext stage_cxt = NULL;
static char *this_xmin = NULL;
static char **next_quiet = NULL;
static int	n_next_quiet = 0;

static QuietPayer *payer_entry(const char *account);

void
settle_quiet_define_settings(void)
{
	DefineCustomIntVariable("settle.full_cycle_interval",
							"Longest time between two worker cycles that judge the whole queue.",
							"In between, the old payments of payers that cannot settle anything until their position changes are skipped. 0: every cycle judges the whole queue.",
							&settle_full_cycle_interval_ms,
							30000, 0, 3600000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
}

void
settle_quiet_cycle_starting(TimestampTz now)
{
	use_this_cycle = have_state && settle_full_cycle_interval_ms > 0 && n_quiet > 0 &&
		!TimestampDifferenceExceeds(last_full, now, settle_full_cycle_interval_ms);
	if (!use_this_cycle)
		last_full = now;
	if (stage_cxt == NULL)
		stage_cxt = AllocSetContextCreate(TopMemoryContext, "settle quiet payers (cycle)", ALLOCSET_SMALL_SIZES);
	MemoryContextReset(stage_cxt);
	in_worker_cycle = true;
	payers = NULL;
	this_xmin = NULL;
	next_quiet = NULL;
	n_next_quiet = 0;
}

/* After the cycle: keep what it found if it committed, else start over with a full cycle. */
void
settle_quiet_cycle_finished(bool committed)
{
	int			i;

	in_worker_cycle = false;
	payers = NULL;				/* lived in the cycle's memory */
	if (!committed || this_xmin == NULL)
	{
		have_state = false;
		n_quiet = 0;
		return;
	}
	if (quiet_cxt == NULL)
		quiet_cxt = AllocSetContextCreate(TopMemoryContext, "settle quiet payers", ALLOCSET_SMALL_SIZES);
	MemoryContextReset(quiet_cxt);
	prev_xmin = MemoryContextStrdup(quiet_cxt, this_xmin);
	quiet = MemoryContextAlloc(quiet_cxt, sizeof(char *) * Max(n_next_quiet, 1));
	for (i = 0; i < n_next_quiet; i++)
		quiet[i] = MemoryContextStrdup(quiet_cxt, next_quiet[i]);
	n_quiet = n_next_quiet;
	have_state = true;
}

static QuietPayer *
payer_entry(const char *account)
{
	char		key[KEY_LEN];
	QuietPayer *e;
	bool		found;

	if (payers == NULL)
	{
		HASHCTL		ctl;

		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = KEY_LEN;
		ctl.entrysize = sizeof(QuietPayer);
		ctl.hcxt = CurrentMemoryContext;
		payers = hash_create("settle quiet payers", 64, &ctl, HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	}
	strlcpy(key, account, sizeof(key));
	e = hash_search(payers, key, HASH_ENTER, &found);
	if (!found)
	{
		/* dynahash sets only the key */
		e->waiting = 0;
		e->other = 0;
		e->skipped = false;
	}
	return e;
}

/*
 * Before the queue is loaded, in the cycle's transaction: this cycle's
 * snapshot xmin (the next cycle's "new from"), and, when skipping, which
 * quiet payers stay skipped.  One aggregate over the queue (no locks, no
 * conversions): per (payer, payee), whether a payment is new, and how many
 * old ones there are and the oldest.
 */
char **
settle_quiet_skip(int *n_skip, char **new_from_xid, int64 *skipped, int64 *skipped_oldest)
{
	char	  **skip;
	int			n = 0;
	uint64		r;
	bool		isnull;
	bool		changed;
	int			i;

	*n_skip = 0;
	*skipped = 0;
	*skipped_oldest = 0;
	*new_from_xid = NULL;
	if (!in_worker_cycle)
		return NULL;			/* a manual cycle: full */
	if (settle_spi_execute("SELECT (pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot())::text::bigint"
							 " OPERATOR(pg_catalog.%) 4294967296)::text",
							 0, NULL, NULL, NULL, true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "reading the cycle's snapshot failed");
	this_xmin = MemoryContextStrdup(stage_cxt, SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
	*new_from_xid = prev_xmin != NULL && use_this_cycle ? prev_xmin : this_xmin;
	if (!use_this_cycle)
		return NULL;

	/* candidates: the quiet payers, less those whose account changed since the previous cycle */
	for (i = 0; i < n_quiet; i++)
		payer_entry(quiet[i])->skipped = true;
	{
		SpiArgs		a = {0};

		settle_spi_arg_texts(&a, quiet, n_quiet);
		settle_spi_arg(&a, TEXTOID, CStringGetTextDatum(prev_xmin));
		/*
		 * the account, or its participant: a change of the participant's
		 * limits or reservations (issue #33) touches its row
		 * (settle._control_changed)
		 */
		if (settle_spi_execute("SELECT a.account_id FROM settle.account a"
								 "  JOIN settle.participant p ON p.participant_id OPERATOR(pg_catalog.=) a.participant_id"
								 " WHERE a.account_id OPERATOR(pg_catalog.=) ANY ($1)"
								 "   AND (pg_catalog.age(a.xmin) OPERATOR(pg_catalog.<=) pg_catalog.age($2::text::pg_catalog.xid)"
								 "        OR pg_catalog.age(p.xmin) OPERATOR(pg_catalog.<=) pg_catalog.age($2::text::pg_catalog.xid))",
								 a.n, a.types, a.values, NULL, true, 0) != SPI_OK_SELECT)
			elog(ERROR, "reading changed accounts failed");
		for (r = 0; r < SPI_processed; r++)
			payer_entry(SPI_getvalue(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1))->skipped = false;
	}

	/* the queue's edges; a payer credited by a payment that is not skipped is not skipped (to a fixpoint) */
	{
		SpiArgs		a = {0};
		int			n_edges;
		char	  **src;
		char	  **dst;
		bool	   *has_new;
		int64	   *n_old;
		int64	   *oldest;

		settle_spi_arg(&a, TEXTOID, CStringGetTextDatum(prev_xmin));
		if (settle_spi_execute("SELECT q.source_account, q.destination_account, pg_catalog.bool_or(q.new),"
								 "       pg_catalog.count(*) FILTER (WHERE NOT q.new),"
								 "       coalesce(pg_catalog.min(q.payment_id) FILTER (WHERE NOT q.new), 0)"
								 "  FROM (SELECT p.source_account, p.destination_account, p.payment_id,"
								 "               pg_catalog.age(p.xmin) OPERATOR(pg_catalog.<=) pg_catalog.age($1::text::pg_catalog.xid) AS new"
								 "          FROM settle.payment p WHERE p.status = 'queued') q"
								 " GROUP BY q.source_account, q.destination_account",
								 a.n, a.types, a.values, NULL, true, 0) != SPI_OK_SELECT)
			elog(ERROR, "reading the queue's edges failed");
		n_edges = (int) SPI_processed;
		src = palloc(sizeof(char *) * Max(n_edges, 1));
		dst = palloc(sizeof(char *) * Max(n_edges, 1));
		has_new = palloc(sizeof(bool) * Max(n_edges, 1));
		n_old = palloc(sizeof(int64) * Max(n_edges, 1));
		oldest = palloc(sizeof(int64) * Max(n_edges, 1));
		for (r = 0; r < SPI_processed; r++)
		{
			HeapTuple	tup = SPI_tuptable->vals[r];
			TupleDesc	desc = SPI_tuptable->tupdesc;

			src[r] = SPI_getvalue(tup, desc, 1);
			dst[r] = SPI_getvalue(tup, desc, 2);
			has_new[r] = DatumGetBool(SPI_getbinval(tup, desc, 3, &isnull));
			n_old[r] = DatumGetInt64(SPI_getbinval(tup, desc, 4, &isnull));
			oldest[r] = DatumGetInt64(SPI_getbinval(tup, desc, 5, &isnull));
		}
		do
		{
			changed = false;
			for (i = 0; i < n_edges; i++)
			{
				QuietPayer *from = payer_entry(src[i]);
				QuietPayer *to;

				/* a payment that may settle (its payer not skipped, or new) credits its payee */
				if (from->skipped && !has_new[i])
					continue;
				to = payer_entry(dst[i]);
				if (to->skipped)
				{
					to->skipped = false;
					changed = true;
				}
			}
		} while (changed);
		/* what stays skipped, for the backlog report (new payments of skipped payers are loaded) */
		for (i = 0; i < n_edges; i++)
		{
			if (!payer_entry(src[i])->skipped)
				continue;
			*skipped += n_old[i];
			if (n_old[i] > 0 && (*skipped_oldest == 0 || oldest[i] < *skipped_oldest))
				*skipped_oldest = oldest[i];
		}
	}
	skip = palloc(sizeof(char *) * Max(n_quiet, 1));
	for (i = 0; i < n_quiet; i++)
		if (payer_entry(quiet[i])->skipped)
			skip[n++] = quiet[i];
	*n_skip = n;
	elog(DEBUG1, "settle quiet payers: %d of %d skipped, " INT64_FORMAT " old payments not loaded (oldest " INT64_FORMAT "), new from xid %s",
		 n, n_quiet, *skipped, *skipped_oldest, prev_xmin);
	return skip;
}

void
settle_quiet_noisy(const char *payer_account)
{
	if (in_worker_cycle)
		payer_entry(payer_account)->other++;
}

/*
 * After solving: the payers of this cycle's payments that the solver left
 * (and nothing else), and the skipped payers none of whose new payments
 * settled or was deferred, are quiet for the next cycle.
 */
void
settle_quiet_collect(const CycleState *cs)
{
	HASH_SEQ_STATUS seq;
	QuietPayer *e;
	int			i;
	long		n;

	if (!in_worker_cycle)
		return;
	for (i = 0; i < cs->n_payments; i++)
	{
		QuietPayer *q = payer_entry(cs->payments[i].source_account);

		if (!cs->selected[i] && !cs->payments[i].deferrable)
			q->waiting++;
		else
			q->other++;
	}
	if (payers == NULL)
		return;
	n = hash_get_num_entries(payers);
	next_quiet = MemoryContextAlloc(stage_cxt, sizeof(char *) * Max(n, 1));
	hash_seq_init(&seq, payers);
	while ((e = hash_seq_search(&seq)) != NULL)
		if (e->other == 0 && (e->waiting > 0 || e->skipped))
			next_quiet[n_next_quiet++] = MemoryContextStrdup(stage_cxt, e->key);
}

/*
 * The next worker cycle judges the whole queue (the deep pass's hint,
 * src/deep.c, is a selection over the whole queue).
 */
void
settle_quiet_force_full(void)
{
	last_full = 0;
}
