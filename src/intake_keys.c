/*
 * intake_keys.c -- exactly once: duplicate keys, the insert, replays.
 *
 * Part of intake (src/intake.c).  Idempotency keys and transaction ids are
 * unique per payer participant (the scope).  Within one call a repeated key
 * follows its first row; one INSERT ... ON CONFLICT DO NOTHING writes the
 * valid rows and their 'submitted' events in key order (two bulk calls
 * sharing keys wait on each other in the same order instead of
 * deadlocking); rows that were not inserted, or failed a reference rule, are
 * looked up by (scope, key) and become replays (same content) or conflicts
 * (SE060, SE061).
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/acl.h"
#include "utils/fmgroids.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "intake.h"
#include "intake_int.h"
#include "settle_errors.h"
#include "spi_util.h"
#include "backlog.h"
#include "worker_state.h"

static SPIPlanPtr insert_plan = NULL;
static SPIPlanPtr insert_one_plan = NULL;

/*
 * The intake insert, with its rows' source (%s: a SELECT of 11 columns,
 * then created_at and updated_at).  Conflicting keys are skipped, to be
 * resolved as replays or conflicts; each inserted payment gets its event.
 */
/*
 * Arrays side by side as rows: set-returning functions in a target list run
 * in step without materializing anything; FROM unnest($1, ..., $11) stores
 * each array's rows first (8 times slower for 10,000 rows here).
 */
#define UNNEST_11 \
	"unnest($1), unnest($2), unnest($3), unnest($4), unnest($5), unnest($6)," \
	" unnest($7), unnest($8), unnest($9), unnest($10), unnest($11)"

#define INSERT_SQL \
	"WITH ins AS (" \
	" INSERT INTO settle.payment (transaction_id, idempotency_key, source_currency," \
	"   destination_currency, source_account, destination_account, counterparty_id," \
	"   source_participant, amount, priority, deadline, created_at, updated_at)" \
	" %s" \
	" ON CONFLICT DO NOTHING" \
	" RETURNING payment_id, idempotency_key, created_at, source_participant)," \
	" ev AS (" \
	" INSERT INTO settle.event (occurred_at, entity, entity_id, event_type, to_status)" \
	" SELECT created_at, 'payment', payment_id::text, 'submitted', 'queued' FROM ins)" \
	"SELECT payment_id, idempotency_key, created_at, source_participant FROM ins"
static SPIPlanPtr existing_plan = NULL;

static void scoped_key(char *dst, const char *scope, const char *key);
static int	compare_rows_by_key(const void *a, const void *b);
static bool same_text(const char *a, const char *b);

/*
 * Keys and transaction ids are unique per payer participant: a restricted
 * caller's are its participant's; an operator's are the source account's
 * owner's (none if that account is unknown: no payment can exist from it).
 */
void
intake_set_scope(IntakeRow *row, HTAB *accounts, const IntakeCaller *caller)
{
	char		key[KEY_BYTES];
	AccountInfo *src;

	if (caller->restricted)
	{
		row->scope = caller->participant;
		return;
	}
	intake_set_key(key, row->source_account);
	src = hash_search(accounts, key, HASH_FIND, NULL);
	row->scope = src ? pstrdup(src->participant_id) : NULL;
}

/* "scope\x1fkey": a key within its participant's key space, as a hash key. */
static void
scoped_key(char *dst, const char *scope, const char *key)
{
	snprintf(dst, KEY_BYTES, "%s\x1f%s", scope ? scope : "", key);
}

/* Whether two rows carry the same instruction (everything but the key). */
bool
intake_same_content(const IntakeRow *a, const IntakeRow *b)
{
	bool		same_amount;

	/* an amount refused before it could be converted compares as text */
	if (a->amount_minor > 0 && b->amount_minor > 0)
		same_amount = a->amount_minor == b->amount_minor;
	else
		same_amount = a->amount_minor == b->amount_minor && same_text(a->amount, b->amount);

	return same_text(a->transaction_id, b->transaction_id) &&
		same_amount &&
		same_text(a->source_currency, b->source_currency) &&
		same_text(a->destination_currency, b->destination_currency) &&
		same_text(a->source_account, b->source_account) &&
		same_text(a->destination_account, b->destination_account) &&
		same_text(a->counterparty_id, b->counterparty_id) &&
		a->priority == b->priority &&
		a->has_deadline == b->has_deadline &&
		(!a->has_deadline || a->deadline == b->deadline) &&
		a->has_not_before == b->has_not_before &&
		(!a->has_not_before || a->not_before == b->not_before) &&
		((a->link_group == NULL && b->link_group == NULL) || same_text(a->link_group, b->link_group)) &&
		a->has_link_size == b->has_link_size && a->link_size == b->link_size;
}

static bool
same_text(const char *a, const char *b)
{
	return a != NULL && b != NULL && strcmp(a, b) == 0;
}

/*
 * Within one call: a repeated key follows its first row; a reused
 * transaction_id is refused.  The hash tables live in the caller's work
 * context; a refusal's texts are allocated in outer, which outlives it (the
 * answer is built from them after the work context is gone).
 */
void
intake_mark_duplicates(IntakeRow *rows, int n, MemoryContext outer)
{
	HTAB	   *keys;
	HTAB	   *txids;
	int			i;

	if (n < 2)
		return;
	keys = intake_make_table("settle intake keys", sizeof(KeySeen), n);
	txids = intake_make_table("settle intake transaction ids", sizeof(KeySeen), n);
	for (i = 0; i < n; i++)
	{
		IntakeRow  *row = &rows[i];
		KeySeen    *k;
		bool		found;
		char		key[KEY_BYTES];

		if (!row->syntax_ok)
			continue;
		scoped_key(key, row->scope, row->idempotency_key);
		k = hash_search(keys, key, HASH_ENTER, &found);
		if (found)
		{
			row->duplicate_of = k->row;
			row->insert = false;
			continue;
		}
		k->row = i;
		scoped_key(key, row->scope, row->transaction_id);
		k = hash_search(txids, key, HASH_ENTER, &found);
		if (found)
		{
			MemoryContext work = MemoryContextSwitchTo(outer);

			intake_refuse(row, ERRCODE_SETTLE_TRANSACTION_ID_TAKEN,
						  psprintf("transaction_id \"%s\" is already used under another idempotency_key",
								   row->transaction_id),
						  psprintf("Row %d of this call has it.", k->row + 1), NULL);
			MemoryContextSwitchTo(work);
		}
		else
			k->row = i;
	}
}

static int
compare_rows_by_key(const void *a, const void *b)
{
	const IntakeRow *ra = *(IntakeRow *const *) a;
	const IntakeRow *rb = *(IntakeRow *const *) b;

	return strcmp(ra->idempotency_key, rb->idempotency_key);
}

/* How many of these rows' (payer, key) are already in settle.payment. */
static int
count_existing(IntakeRow **order, int m)
{
	char	  **scopes = palloc(sizeof(char *) * m);
	char	  **keys = palloc(sizeof(char *) * m);
	Oid			types[2] = {TEXTARRAYOID, TEXTARRAYOID};
	Datum		values[2];
	bool		isnull;
	int			i;

	for (i = 0; i < m; i++)
	{
		scopes[i] = order[i]->scope;
		keys[i] = order[i]->idempotency_key;
	}
	values[0] = PointerGetDatum(settle_text_array(scopes, m));
	values[1] = PointerGetDatum(settle_text_array(keys, m));
	if (SPI_execute_with_args("SELECT pg_catalog.count(*)::int4 FROM (SELECT unnest($1) AS s, unnest($2) AS k) x"
							  " JOIN settle.payment p ON p.source_participant OPERATOR(pg_catalog.=) x.s"
							  " AND p.idempotency_key OPERATOR(pg_catalog.=) x.k",
							  2, types, values, NULL, true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "intake: counting the retries among the rows failed");
	return DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

/* One INSERT ... ON CONFLICT DO NOTHING for every row still marked insert. */
void
intake_insert_rows(IntakeRow *rows, int n, MemoryContext outer)
{
	IntakeRow **order = palloc(sizeof(IntakeRow *) * n);
	int			m = 0;
	int			i;
	char	  **cols[9];
	Datum	   *amounts,
			   *priorities,
			   *deadlines;
	bool	   *deadline_nulls;
	Datum		values[12];
	char		nulls[12];
	int			dims[1];
	int			lbs[1] = {1};
	HTAB	   *bykey;
	uint64		r;

	for (i = 0; i < n; i++)
		if (rows[i].insert)
			order[m++] = &rows[i];
	if (m == 0)
		return;
	if (m > 1)
		qsort(order, m, sizeof(IntakeRow *), compare_rows_by_key);

	/*
	 * Backpressure: a full queue, or a worker behind, refuses the call before
	 * anything is written (SE093); rows whose key is already in the queue are
	 * retries, answered as replays, and do not count.
	 */
	if (settle_backlog_would_refuse(m))
		settle_backlog_admit(m - count_existing(order, m));

	for (i = 0; i < 9; i++)
		cols[i] = palloc(sizeof(char *) * m);
	amounts = palloc(sizeof(Datum) * m);
	priorities = palloc(sizeof(Datum) * m);
	deadlines = palloc(sizeof(Datum) * m);
	deadline_nulls = palloc(sizeof(bool) * m);
	for (i = 0; i < m; i++)
	{
		IntakeRow  *row = order[i];

		cols[0][i] = row->transaction_id;
		cols[1][i] = row->idempotency_key;
		cols[2][i] = row->source_currency;
		cols[3][i] = row->destination_currency;
		cols[4][i] = row->source_account;
		cols[5][i] = row->destination_account;
		cols[6][i] = row->counterparty_id;
		cols[7][i] = row->source_participant;
		amounts[i] = Int64GetDatum(row->amount_minor);
		priorities[i] = Int16GetDatum((int16) row->priority);
		deadlines[i] = TimestampTzGetDatum(row->deadline);
		deadline_nulls[i] = !row->has_deadline;
	}
	if (m == 1)
	{
		/* one row (settle_submit): scalar parameters, no arrays to build and unnest */
		bool		single_nulls[11] = {0};

		for (i = 0; i < 8; i++)
			values[i] = CStringGetTextDatum(cols[i][0]);
		values[8] = amounts[0];
		values[9] = priorities[0];
		values[10] = deadlines[0];
		single_nulls[10] = deadline_nulls[0];
		for (i = 0; i < 11; i++)
			nulls[i] = single_nulls[i] ? 'n' : ' ';
		if (insert_one_plan == NULL)
		{
			Oid			types[11] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID,
			TEXTOID, INT8OID, INT2OID, TIMESTAMPTZOID};

			insert_one_plan = settle_keep_plan(psprintf(INSERT_SQL,
														"SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, c.ts, c.ts"
														"  FROM (SELECT clock_timestamp() AS ts) c"),
											   11, types, "intake insert");
		}
		if (SPI_execute_plan(insert_one_plan, values, nulls, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "intake insert failed");
	}
	else
	{
		for (i = 0; i < 8; i++)
			values[i] = PointerGetDatum(settle_text_array(cols[i], m));
		dims[0] = m;
		values[8] = PointerGetDatum(construct_array(amounts, m, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
		values[9] = PointerGetDatum(construct_array(priorities, m, INT2OID, 2, true, TYPALIGN_SHORT));
		values[10] = PointerGetDatum(construct_md_array(deadlines, deadline_nulls, 1, dims, lbs,
														TIMESTAMPTZOID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
		if (insert_plan == NULL)
		{
			Oid			types[11] = {TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID,
				TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID,
			INT8ARRAYOID, INT2ARRAYOID, TIMESTAMPTZARRAYOID};

			insert_plan = settle_keep_plan(psprintf(INSERT_SQL,
													"SELECT u.*, c.ts, c.ts"
													"  FROM (SELECT " UNNEST_11 ") u,"
													"       LATERAL (SELECT clock_timestamp() AS ts) c"),
										   11, types, "intake bulk insert");
		}
		if (SPI_execute_plan(insert_plan, values, NULL, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "intake insert failed");
	}

	/* the worker cycles as soon as this transaction commits (no poll) */
	if (SPI_processed > 0)
	{
		int			max_priority = 0;
		TimestampTz min_deadline = 0;

		for (i = 0; i < m; i++)
		{
			max_priority = Max(max_priority, order[i]->priority);
			if (order[i]->has_deadline && (min_deadline == 0 || order[i]->deadline < min_deadline))
				min_deadline = order[i]->deadline;
		}
		settle_worker_wake_at_commit((int) SPI_processed, max_priority, min_deadline);
	}

	bykey = intake_make_table("settle intake inserted", sizeof(KeySeen), m);
	for (i = 0; i < m; i++)
	{
		char		key[KEY_BYTES];
		KeySeen    *k;

		scoped_key(key, order[i]->scope, order[i]->idempotency_key);
		k = hash_search(bykey, key, HASH_ENTER, NULL);
		k->row = (int) (order[i] - rows);
	}
	for (r = 0; r < SPI_processed; r++)
	{
		HeapTuple	tup = SPI_tuptable->vals[r];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		char		key[KEY_BYTES];
		KeySeen    *k;
		IntakeRow  *row;

		scoped_key(key, SPI_getvalue(tup, desc, 4), SPI_getvalue(tup, desc, 2));
		k = hash_search(bykey, key, HASH_FIND, NULL);

		if (k == NULL)
			elog(ERROR, "inserted payment has an unexpected idempotency key");
		row = &rows[k->row];
		row->payment_id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
		row->created_at = DatumGetTimestampTz(SPI_getbinval(tup, desc, 3, &isnull));
		row->updated_at = row->created_at;
		row->status = MemoryContextStrdup(outer, "queued");
		row->replay = false;
		row->insert = false;	/* done */
		row->duplicate_of = -2; /* marks "inserted" */
	}
}

/*
 * Rows that were not inserted (conflict) or failed a reference rule: look up
 * their keys and turn them into replays or conflicts.  Returns whether an
 * answer now depends on a payment written by another transaction.
 */
bool
intake_resolve_existing(IntakeRow *rows, int n, MemoryContext outer)
{
	char	  **keys = palloc(sizeof(char *) * n);
	char	  **scopes = palloc(sizeof(char *) * n);
	int			nkeys = 0;
	int			i;
	HTAB	   *found_rows;
	Datum		values[2];
	uint64		r;
	bool		depends = false;

	for (i = 0; i < n; i++)
	{
		IntakeRow  *row = &rows[i];

		if (row->syntax_ok && row->duplicate_of == -1 && row->scope != NULL &&
			(row->insert || row->sqlerrcode != 0))
		{
			scopes[nkeys] = row->scope;
			keys[nkeys++] = row->idempotency_key;
		}
	}
	if (nkeys == 0)
		return false;

	if (existing_plan == NULL)
	{
		Oid			types[2] = {TEXTARRAYOID, TEXTARRAYOID};
		SPIPlanPtr	plan;

		/* by (payer, key): keys are unique per participant */
		plan = SPI_prepare(
						   "SELECT p.idempotency_key, p.payment_id, p.transaction_id, p.amount, p.source_currency,"
						   "       p.destination_currency, p.source_account, p.destination_account,"
						   "       p.counterparty_id, p.priority, p.deadline, p.status, p.created_at, p.updated_at,"
						   "       p.source_participant"
						   "  FROM (SELECT unnest($1) AS s, unnest($2) AS k) x"
						   "  JOIN settle.payment p ON p.source_participant = x.s AND p.idempotency_key = x.k",
						   2, types);
		if (plan == NULL)
			elog(ERROR, "SPI_prepare failed for the intake replay lookup: %s",
				 SPI_result_code_string(SPI_result));
		SPI_keepplan(plan);
		existing_plan = plan;
	}
	values[0] = PointerGetDatum(settle_text_array(scopes, nkeys));
	values[1] = PointerGetDatum(settle_text_array(keys, nkeys));
	if (SPI_execute_plan(existing_plan, values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "intake replay lookup failed");
	/* SPI returns in its procedure context, freed at SPI_finish: refusal texts go to outer */
	MemoryContextSwitchTo(outer);

	found_rows = intake_make_table("settle intake existing", sizeof(KeySeen), SPI_processed + 1);
	for (r = 0; r < SPI_processed; r++)
	{
		char		key[KEY_BYTES];
		KeySeen    *k;

		scoped_key(key, SPI_getvalue(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 15),
				   SPI_getvalue(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1));
		k = hash_search(found_rows, key, HASH_ENTER, NULL);
		k->row = (int) r;
	}

	for (i = 0; i < n; i++)
	{
		IntakeRow  *row = &rows[i];
		KeySeen    *k;
		char		key[KEY_BYTES];
		HeapTuple	tup;
		TupleDesc	desc = SPI_tuptable->tupdesc;
		IntakeRow	stored;
		bool		isnull;
		Datum		d;

		if (!(row->syntax_ok && row->duplicate_of == -1 && row->scope != NULL &&
			  (row->insert || row->sqlerrcode != 0)))
			continue;
		scoped_key(key, row->scope, row->idempotency_key);
		k = hash_search(found_rows, key, HASH_FIND, NULL);
		if (k == NULL)
		{
			if (row->insert)
			{
				/* not inserted, yet no row has the key: the transaction_id was taken */
				depends = true;
				row->insert = false;
				intake_refuse(row, ERRCODE_SETTLE_TRANSACTION_ID_TAKEN,
							  psprintf("transaction_id \"%s\" is already used under another idempotency_key",
									   row->transaction_id),
							  NULL,
							  pstrdup("Retry with the idempotency_key of the original submission, or use a new transaction_id."));
			}
			continue;
		}
		tup = SPI_tuptable->vals[k->row];
		depends = true;
		memset(&stored, 0, sizeof(stored));
		stored.transaction_id = SPI_getvalue(tup, desc, 3);
		stored.amount_minor = DatumGetInt64(SPI_getbinval(tup, desc, 4, &isnull));
		stored.source_currency = SPI_getvalue(tup, desc, 5);
		stored.destination_currency = SPI_getvalue(tup, desc, 6);
		stored.source_account = SPI_getvalue(tup, desc, 7);
		stored.destination_account = SPI_getvalue(tup, desc, 8);
		stored.counterparty_id = SPI_getvalue(tup, desc, 9);
		stored.priority = DatumGetInt16(SPI_getbinval(tup, desc, 10, &isnull));
		d = SPI_getbinval(tup, desc, 11, &isnull);
		stored.has_deadline = !isnull;
		stored.deadline = isnull ? 0 : DatumGetTimestampTz(d);
		/* the stored earliest time is compared apart (intake_timing_check_replays) */
		stored.has_not_before = row->has_not_before;
		stored.not_before = row->not_before;
		/* the stored link is compared apart (intake_links_check_replays) */
		stored.link_group = row->link_group;
		stored.link_size = row->link_size;
		stored.has_link_size = row->has_link_size;

		/* amount_minor of a row refused before parsing is 0: never equal */
		if (row->amount_minor > 0 && intake_same_content(row, &stored))
		{
			row->sqlerrcode = 0;
			row->message = row->detail = row->hint = NULL;
			row->insert = false;
			row->replay = true;
			row->payment_id = DatumGetInt64(SPI_getbinval(tup, desc, 2, &isnull));
			row->status = MemoryContextStrdup(outer, SPI_getvalue(tup, desc, 12));
			row->created_at = DatumGetTimestampTz(SPI_getbinval(tup, desc, 13, &isnull));
			row->updated_at = DatumGetTimestampTz(SPI_getbinval(tup, desc, 14, &isnull));
		}
		else
		{
			row->insert = false;
			row->sqlerrcode = 0;
			intake_refuse(row, ERRCODE_SETTLE_IDEMPOTENCY_CONFLICT,
						  psprintf("idempotency_key \"%s\" was already used for a different payment",
								   row->idempotency_key),
						  psprintf("It belongs to payment %lld (transaction_id \"%s\").",
								   (long long) DatumGetInt64(SPI_getbinval(tup, desc, 2, &isnull)),
								   stored.transaction_id),
						  pstrdup("A retry must repeat the original request exactly; a new payment needs a new key."));
		}
	}
	return depends;
}
