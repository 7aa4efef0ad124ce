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
#include "lib/stringinfo.h"
#include "version.h"
#include "settle_errors.h"
#include "spi_util.h"
#include "backlog.h"
#include "worker_state.h"

/*
 * The plans of the insert (one row, or arrays of rows) and of the replay
 * lookup: built from the payment fields of the SQL release they were made
 * for (include/payment_fields.h), made again when the release changes.
 */
static SPIPlanPtr insert_plan = NULL;
static SPIPlanPtr insert_one_plan = NULL;
static int	insert_release = 0;
static SPIPlanPtr existing_plan = NULL;
static int	existing_release = 0;

/*
 * The intake insert (%s: the columns, then the SELECT of their values with
 * created_at and updated_at).  Conflicting keys are skipped, to be resolved
 * as replays or conflicts; each inserted payment gets its event.
 */
#define INSERT_SQL \
	"WITH ins AS (" \
	" INSERT INTO settle.payment (%s, source_participant, created_at, updated_at)" \
	" %s" \
	" ON CONFLICT DO NOTHING" \
	" RETURNING payment_id, idempotency_key, created_at, source_participant)," \
	" ev AS (" \
	" INSERT INTO settle.event (occurred_at, entity, entity_id, event_type, to_status)" \
	" SELECT created_at, 'payment', payment_id::text, 'submitted', 'queued' FROM ins)" \
	"SELECT payment_id, idempotency_key, created_at, source_participant FROM ins"

/*
 * The payments of rows by (payer, key), $1 the payers and $2 the keys:
 * keys are unique per participant.
 */
#define BY_PAYER_AND_KEY \
	" FROM (SELECT pg_catalog.unnest($1) AS s, pg_catalog.unnest($2) AS k) x" \
	" JOIN settle.payment p ON p.source_participant OPERATOR(pg_catalog.=) x.s" \
	" AND p.idempotency_key OPERATOR(pg_catalog.=) x.k"

static void scoped_key(char *dst, const char *scope, const char *key);
static int	compare_rows_by_key(const void *a, const void *b);
static void payer_key_args(IntakeRow **rows, int m, Datum *values);
static bool insert_column(const PaymentField *f, int release);

/*
 * Keys and transaction ids are unique per payer participant: a restricted
 * caller's are its participant's; an operator's are the source account's
 * owner's (none if that account is unknown: no payment can exist from it).
 */
void
settle_intake_set_scope(IntakeRow *row, HTAB *accounts, const IntakeCaller *caller)
{
	char		key[KEY_BYTES];
	AccountInfo *src;

	if (caller->restricted)
	{
		row->scope = caller->participant;
		return;
	}
	settle_intake_set_key(key, row->source_account);
	src = hash_search(accounts, key, HASH_FIND, NULL);
	row->scope = src ? pstrdup(src->participant_id) : NULL;
}

/* "scope\x1fkey": a key within its participant's key space, as a hash key. */
static void
scoped_key(char *dst, const char *scope, const char *key)
{
	snprintf(dst, KEY_BYTES, "%s\x1f%s", scope ? scope : "", key);
}

/*
 * Within one call: a repeated key follows its first row; a reused
 * transaction_id is refused.  The hash tables live in the caller's work
 * context; a refusal's texts are allocated in outer, which outlives it (the
 * answer is built from them after the work context is gone).
 */
void
settle_intake_mark_duplicates(IntakeRow *rows, int n, MemoryContext outer)
{
	HTAB	   *keys;
	HTAB	   *txids;
	int			i;

	if (n < 2)
		return;
	keys = settle_intake_make_table("settle intake keys", sizeof(KeySeen), n);
	txids = settle_intake_make_table("settle intake transaction ids", sizeof(KeySeen), n);
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

			settle_intake_refuse(row, ERRCODE_SETTLE_TRANSACTION_ID_TAKEN,
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

/* $1 and $2 of BY_PAYER_AND_KEY: the rows' payers and keys. */
static void
payer_key_args(IntakeRow **rows, int m, Datum *values)
{
	char	  **scopes = palloc(sizeof(char *) * m);
	char	  **keys = palloc(sizeof(char *) * m);
	int			i;

	for (i = 0; i < m; i++)
	{
		scopes[i] = rows[i]->scope;
		keys[i] = rows[i]->idempotency_key;
	}
	values[0] = PointerGetDatum(settle_text_array(scopes, m));
	values[1] = PointerGetDatum(settle_text_array(keys, m));
}

/* How many of these rows' (payer, key) are already in settle.payment. */
static int
count_existing(IntakeRow **order, int m)
{
	Oid			types[2] = {TEXTARRAYOID, TEXTARRAYOID};
	Datum		values[2];
	bool		isnull;

	payer_key_args(order, m, values);
	if (SPI_execute_with_args("SELECT pg_catalog.count(*)::int4" BY_PAYER_AND_KEY,
							  2, types, values, NULL, true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "intake: counting the retries among the rows failed");
	return DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

/* Whether the insert writes field f: a column of settle.payment in this release. */
static bool
insert_column(const PaymentField *f, int release)
{
	return f->since <= release && settle_intake_field_is_column(f);
}

/*
 * Make the insert's plans for this SQL release: the columns are the fields
 * insert_column() takes, in the table's order, then source_participant.
 */
static void
prepare_insert(int release)
{
	StringInfoData cols;
	StringInfoData one;
	StringInfoData many;
	Oid			types[PAYMENT_FIELD_COUNT + 1];
	Oid			array_types[PAYMENT_FIELD_COUNT + 1];
	int			k = 0;
	int			i;

	if (insert_plan != NULL && insert_release == release)
		return;
	if (insert_plan != NULL)
	{
		SPI_freeplan(insert_plan);
		SPI_freeplan(insert_one_plan);
		insert_plan = insert_one_plan = NULL;
	}
	initStringInfo(&cols);
	initStringInfo(&one);
	initStringInfo(&many);
	for (i = 0; i <= PAYMENT_FIELD_COUNT; i++)
	{
		if (i < PAYMENT_FIELD_COUNT && !insert_column(&settle_intake_fields[i], release))
			continue;
		if (i < PAYMENT_FIELD_COUNT)
		{
			appendStringInfo(&cols, "%s, ", settle_intake_fields[i].name);
			types[k] = settle_intake_field_type(&settle_intake_fields[i]);
		}
		else
			types[k] = TEXTOID;	/* source_participant */
		array_types[k] = get_array_type(types[k]);
		appendStringInfo(&one, "$%d, ", k + 1);
		/*
		 * Arrays side by side as rows: set-returning functions in a target
		 * list run in step without materializing anything; FROM unnest($1,
		 * ..., $n) stores each array's rows first (8 times slower for 10,000
		 * rows here).
		 */
		appendStringInfo(&many, "%spg_catalog.unnest($%d)", k > 0 ? ", " : "", k + 1);
		k++;
	}
	cols.data[cols.len - 2] = '\0';	/* the last ", " */
	insert_one_plan = settle_keep_plan(psprintf(INSERT_SQL, cols.data,
												psprintf("SELECT %sc.ts, c.ts"
														 "  FROM (SELECT pg_catalog.clock_timestamp() AS ts) c",
														 one.data)),
									   k, types, "intake insert");
	insert_plan = settle_keep_plan(psprintf(INSERT_SQL, cols.data,
											psprintf("SELECT u.*, c.ts, c.ts"
													 "  FROM (SELECT %s) u,"
													 "       LATERAL (SELECT pg_catalog.clock_timestamp() AS ts) c",
													 many.data)),
								   k, array_types, "intake bulk insert");
	insert_release = release;
}

/* One INSERT ... ON CONFLICT DO NOTHING for every row still marked insert. */
void
settle_intake_insert_rows(IntakeRow *rows, int n, MemoryContext outer)
{
	IntakeRow **order = palloc(sizeof(IntakeRow *) * n);
	int			m = 0;
	int			i;
	int			k;
	int			f;
	int			release = settle_sql_release();
	Datum		values[PAYMENT_FIELD_COUNT + 1];
	char		nulls[PAYMENT_FIELD_COUNT + 1];
	Datum	   *column;
	bool	   *column_nulls;
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

	prepare_insert(release);
	/* the values: a field's column at a time, then source_participant */
	column = palloc(sizeof(Datum) * m);
	column_nulls = palloc(sizeof(bool) * m);
	dims[0] = m;
	k = 0;
	for (f = 0; f <= PAYMENT_FIELD_COUNT; f++)
	{
		Oid			type = f < PAYMENT_FIELD_COUNT ? settle_intake_field_type(&settle_intake_fields[f]) : TEXTOID;
		int16		typlen;
		bool		typbyval;
		char		typalign;

		if (f < PAYMENT_FIELD_COUNT && !insert_column(&settle_intake_fields[f], release))
			continue;
		for (i = 0; i < m; i++)
		{
			if (f < PAYMENT_FIELD_COUNT)
				column[i] = settle_intake_field_datum(order[i], &settle_intake_fields[f], &column_nulls[i]);
			else
			{
				column[i] = CStringGetTextDatum(order[i]->source_participant);
				column_nulls[i] = false;
			}
		}
		if (m == 1)
		{
			/* one row (settle_submit): scalar parameters, no arrays to build and unnest */
			values[k] = column[0];
			nulls[k] = column_nulls[0] ? 'n' : ' ';
		}
		else
		{
			get_typlenbyvalalign(type, &typlen, &typbyval, &typalign);
			values[k] = PointerGetDatum(construct_md_array(column, column_nulls, 1, dims, lbs,
														   type, typlen, typbyval, typalign));
			nulls[k] = ' ';
		}
		k++;
	}
	if (SPI_execute_plan(m == 1 ? insert_one_plan : insert_plan, values, nulls, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "intake insert failed");

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

	bykey = settle_intake_make_table("settle intake inserted", sizeof(KeySeen), m);
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
 * The replay lookup for this SQL release: the payments of the rows' (payer,
 * key), with the stored value of every content field the release holds
 * (include/payment_fields.h), from column EXISTING_FIELDS on in the table's
 * order.
 */
#define EXISTING_FIELDS 6
static void
prepare_existing(int release)
{
	StringInfoData sql;
	Oid			types[2] = {TEXTARRAYOID, TEXTARRAYOID};
	int			i;

	if (existing_plan != NULL && existing_release == release)
		return;
	if (existing_plan != NULL)
	{
		SPI_freeplan(existing_plan);
		existing_plan = NULL;
	}
	initStringInfo(&sql);
	appendStringInfoString(&sql, "SELECT p.source_participant, p.idempotency_key, p.payment_id, p.status,"
						   " p.created_at, p.updated_at");
	for (i = 0; i < PAYMENT_FIELD_COUNT; i++)
		if (settle_intake_fields[i].content && settle_intake_fields[i].since <= release)
			appendStringInfo(&sql, ", %s", settle_intake_field_select(&settle_intake_fields[i]));
	appendStringInfoString(&sql, BY_PAYER_AND_KEY);
	existing_plan = settle_keep_plan(sql.data, 2, types, "intake replay lookup");
	existing_release = release;
}

/* Whether a row is looked up by its key: not inserted, or refused by a reference rule. */
static bool
looked_up(const IntakeRow *row)
{
	return row->syntax_ok && row->duplicate_of == -1 && row->scope != NULL &&
		(row->insert || row->sqlerrcode != 0);
}

/*
 * Rows that were not inserted (conflict) or failed a reference rule: look up
 * their keys and turn them into replays (every content field the same as
 * stored) or conflicts.  Returns whether an answer now depends on a payment
 * written by another transaction.
 */
bool
settle_intake_resolve_existing(IntakeRow *rows, int n, MemoryContext outer)
{
	IntakeRow **lookup = palloc(sizeof(IntakeRow *) * n);
	int			nkeys = 0;
	int			i;
	int			release = settle_sql_release();
	HTAB	   *found_rows;
	Datum		values[2];
	uint64		r;
	bool		depends = false;

	for (i = 0; i < n; i++)
		if (looked_up(&rows[i]))
			lookup[nkeys++] = &rows[i];
	if (nkeys == 0)
		return false;

	prepare_existing(release);
	payer_key_args(lookup, nkeys, values);
	if (SPI_execute_plan(existing_plan, values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "intake replay lookup failed");
	/* SPI returns in its procedure context, freed at SPI_finish: refusal texts go to outer */
	MemoryContextSwitchTo(outer);

	found_rows = settle_intake_make_table("settle intake existing", sizeof(KeySeen), SPI_processed + 1);
	for (r = 0; r < SPI_processed; r++)
	{
		char		key[KEY_BYTES];
		KeySeen    *k;

		scoped_key(key, SPI_getvalue(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1),
				   SPI_getvalue(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 2));
		k = hash_search(found_rows, key, HASH_ENTER, NULL);
		k->row = (int) r;
	}

	for (i = 0; i < nkeys; i++)
	{
		IntakeRow  *row = lookup[i];
		KeySeen    *k;
		char		key[KEY_BYTES];
		HeapTuple	tup;
		TupleDesc	desc = SPI_tuptable->tupdesc;
		IntakeRow	stored;
		const PaymentField *differs;
		char	   *detail;
		int64		payment_id;
		bool		isnull;
		int			f;
		int			col;

		CHECK_FOR_INTERRUPTS();
		scoped_key(key, row->scope, row->idempotency_key);
		k = hash_search(found_rows, key, HASH_FIND, NULL);
		if (k == NULL)
		{
			if (row->insert)
			{
				/* not inserted, yet no row has the key: the transaction_id was taken */
				depends = true;
				row->insert = false;
				settle_intake_refuse(row, ERRCODE_SETTLE_TRANSACTION_ID_TAKEN,
							  psprintf("transaction_id \"%s\" is already used under another idempotency_key",
									   row->transaction_id),
							  NULL,
							  pstrdup("Retry with the idempotency_key of the original submission, or use a new transaction_id."));
			}
			continue;
		}
		tup = SPI_tuptable->vals[k->row];
		depends = true;
		payment_id = DatumGetInt64(SPI_getbinval(tup, desc, 3, &isnull));
		/* the stored instruction; a field this release does not hold compares as given */
		memset(&stored, 0, sizeof(stored));
		col = EXISTING_FIELDS + 1;
		for (f = 0; f < PAYMENT_FIELD_COUNT; f++)
		{
			if (!settle_intake_fields[f].content)
				continue;
			if (settle_intake_fields[f].since <= release)
				settle_intake_field_from_stored(&stored, &settle_intake_fields[f], tup, desc, col++);
			else
				settle_intake_field_copy(&stored, row, &settle_intake_fields[f]);
		}

		/* amount_minor of a row refused before parsing is 0: never equal */
		differs = row->amount_minor > 0 ? settle_intake_first_difference(row, &stored) : &settle_intake_fields[PF_amount];
		row->insert = false;
		if (differs == NULL)
		{
			row->sqlerrcode = 0;
			row->message = row->detail = row->hint = NULL;
			row->replay = true;
			row->payment_id = payment_id;
			row->status = MemoryContextStrdup(outer, SPI_getvalue(tup, desc, 4));
			row->created_at = DatumGetTimestampTz(SPI_getbinval(tup, desc, 5, &isnull));
			row->updated_at = DatumGetTimestampTz(SPI_getbinval(tup, desc, 6, &isnull));
			continue;
		}
		/* a field added since 1.0 names itself, with the stored value */
		if (differs->since > SETTLE_SQL_1_0)
			detail = psprintf("Payment %lld was submitted with %s %s.", (long long) payment_id,
							  differs->name, settle_intake_field_text(&stored, differs));
		else
			detail = psprintf("It belongs to payment %lld (transaction_id \"%s\").",
							  (long long) payment_id, stored.transaction_id);
		row->sqlerrcode = 0;
		settle_intake_refuse(row, ERRCODE_SETTLE_IDEMPOTENCY_CONFLICT,
					  psprintf("idempotency_key \"%s\" was already used for a different payment",
							   row->idempotency_key),
					  detail,
					  pstrdup("A retry must repeat the original request exactly; a new payment needs a new key."));
	}
	return depends;
}
