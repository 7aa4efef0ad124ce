/*
 * submit.c -- the SQL entry points of intake: settle_submit and settle_submit_bulk.
 *
 * Both turn their arguments into IntakeRows and hand them to settle_intake
 * (intake.c).  settle_submit raises the row's refusal as an ERROR, so the
 * caller's transaction writes nothing; settle_submit_bulk reports one result
 * row per input element and writes the accepted ones.
 */
#include "postgres.h"

#include "funcapi.h"
#include "miscadmin.h"
#include "access/htup_details.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

#include "intake.h"
#include "rfc3339.h"
#include "settle_errors.h"
#include "version.h"

PG_FUNCTION_INFO_V1(settle_submit);
PG_FUNCTION_INFO_V1(settle_submit_1_2);
PG_FUNCTION_INFO_V1(settle_submit_bulk);

/* Largest settle_submit_bulk call (settle.max_bulk_rows). */
static int	settle_max_bulk_rows = 100000;

/* Define intake's settings (from _PG_init). */
void
settle_submit_init(void)
{
	DefineCustomIntVariable("settle.max_bulk_rows",
							"Largest number of payments one settle_submit_bulk call accepts.",
							NULL, &settle_max_bulk_rows,
							100000, 1, 10000000,
							PGC_SUSET, 0, NULL, NULL, NULL);
}

static char *text_arg(FunctionCallInfo fcinfo, int n);
static char *numeric_arg(FunctionCallInfo fcinfo, int n, IntakeRow *row);
static void raise_refusal(IntakeRow *row);
static void row_from_jsonb(IntakeRow *row, JsonbContainer *obj);
static char *jsonb_scalar_text(JsonbValue *v);
static bool parse_time(IntakeRow *row, const char *field, const char *text, TimestampTz *ts, bool *has);

/* A text argument as a C string, NULL for SQL NULL. */
static char *
text_arg(FunctionCallInfo fcinfo, int n)
{
	if (PG_ARGISNULL(n))
		return NULL;
	return text_to_cstring(PG_GETARG_TEXT_PP(n));
}

/* A numeric argument printed as exact decimal text, NULL for SQL NULL. */
static char *
numeric_arg(FunctionCallInfo fcinfo, int n, IntakeRow *row)
{
	if (PG_ARGISNULL(n))
		return NULL;
	return DatumGetCString(DirectFunctionCall1(numeric_out, PG_GETARG_DATUM(n)));
}

/* ereport a row's refusal. */
static void
raise_refusal(IntakeRow *row)
{
	ereport(ERROR,
			(errcode(row->sqlerrcode),
			 errmsg_internal("%s", row->message),
			 row->detail ? errdetail_internal("%s", row->detail) : 0,
			 row->hint ? errhint("%s", row->hint) : 0));
}

/*
 * settle_submit(transaction_id, amount, source_currency, destination_currency,
 *               source_account, destination_account, counterparty_id,
 *               idempotency_key, priority, deadline)
 *   -> (payment_id, status, replay, submitted_at, updated_at)
 */
static Datum
submit_one(FunctionCallInfo fcinfo, bool with_links)
{
	IntakeRow	row;
	TupleDesc	desc;
	Datum		values[5];
	bool		nulls[5] = {false, false, false, false, false};

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "settle_submit must return a composite type");

	memset(&row, 0, sizeof(row));
	row.transaction_id = text_arg(fcinfo, 0);
	row.amount = numeric_arg(fcinfo, 1, &row);
	row.source_currency = text_arg(fcinfo, 2);
	row.destination_currency = text_arg(fcinfo, 3);
	row.source_account = text_arg(fcinfo, 4);
	row.destination_account = text_arg(fcinfo, 5);
	row.counterparty_id = text_arg(fcinfo, 6);
	row.idempotency_key = text_arg(fcinfo, 7);
	row.priority_null = PG_ARGISNULL(8);
	row.priority = row.priority_null ? 0 : PG_GETARG_INT32(8);
	row.has_deadline = !PG_ARGISNULL(9);
	row.deadline = row.has_deadline ? PG_GETARG_TIMESTAMPTZ(9) : 0;
	if (with_links)
	{
		row.link_group = text_arg(fcinfo, 10);
		row.has_link_size = !PG_ARGISNULL(11);
		row.link_size = row.has_link_size ? PG_GETARG_INT32(11) : 0;
	}
	/* 1.2's SQL: the earliest settlement time (issue #33) */
	if (PG_NARGS() > 12)
	{
		row.has_not_before = !PG_ARGISNULL(12);
		row.not_before = row.has_not_before ? PG_GETARG_TIMESTAMPTZ(12) : 0;
	}

	settle_intake(&row, 1);
	if (row.sqlerrcode != 0)
		raise_refusal(&row);

	values[0] = Int64GetDatum(row.payment_id);
	values[1] = CStringGetTextDatum(row.status);
	values[2] = BoolGetDatum(row.replay);
	values[3] = TimestampTzGetDatum(row.created_at);
	values[4] = TimestampTzGetDatum(row.updated_at);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls)));
}

/* The entry point of 1.2's SQL: every argument above, link_group and link_size included. */
Datum
settle_submit_1_2(PG_FUNCTION_ARGS)
{
	return submit_one(fcinfo, true);
}

/*
 * The entry point the frozen scripts of 1.0 and 1.1 name: 1.0's SQL passes
 * ten arguments (no linked payments), 1.1's twelve.
 */
Datum
settle_submit(PG_FUNCTION_ARGS)
{
	return submit_one(fcinfo, PG_NARGS() >= 12);
}

/* A JSON scalar as text: strings as they are, numbers printed exactly. */
static char *
jsonb_scalar_text(JsonbValue *v)
{
	switch (v->type)
	{
		case jbvString:
			return pnstrdup(v->val.string.val, v->val.string.len);
		case jbvNumeric:
			return DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(v->val.numeric)));
		default:
			return NULL;
	}
}

/*
 * Read a deadline or not_before given as text: RFC 3339 with its offset, by the one
 * reader (src/rfc3339.c), never timestamptz_in, whose reading depends on the
 * session's TimeZone and DateStyle and takes words such as "tomorrow".
 */
static bool
parse_time(IntakeRow *row, const char *field, const char *text, TimestampTz *ts, bool *has)
{
	const char *what;
	int64		usec;
	TimestampResult r = settle_parse_rfc3339(text, strlen(text), &usec, &what);
	char	   *message;
	char	   *detail;
	char	   *hint;
	int			code = settle_timestamp_refusal(field, r, what, text, &message, &detail, &hint);

	if (code != 0)
	{
		intake_refuse(row, code, message, detail, hint);
		return false;
	}
	*ts = (TimestampTz) usec;
	*has = true;
	return true;
}

/* Fill a row from one JSON object of the bulk input. */
static void
row_from_jsonb(IntakeRow *row, JsonbContainer *obj)
{
	JsonbIterator *it = JsonbIteratorInit(obj);
	JsonbValue	v;
	JsonbIteratorToken tok;
	char	   *key = NULL;
	char	   *deadline_text = NULL;
	char	   *not_before_text = NULL;
	/* the earliest settlement time is a key of 1.2's SQL only (issue #33) */
	bool		timed = settle_sql_release() >= SETTLE_SQL_1_2;

	row->priority = 5;
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
		{
			key = pnstrdup(v.val.string.val, v.val.string.len);
			continue;
		}
		if (tok != WJB_VALUE || key == NULL)
			continue;

		if (strcmp(key, "priority") == 0)
		{
			if (v.type == jbvNull)
				row->priority_null = true;
			else if (v.type != jbvNumeric)
				intake_refuse(row, ERRCODE_SETTLE_BULK_BAD_ELEMENT,
							  pstrdup("priority must be a JSON number"), NULL, NULL);
			else
			{
				char	   *s = jsonb_scalar_text(&v);
				char	   *end;
				long		p = strtol(s, &end, 10);

				if (*end != '\0' || p < INT_MIN || p > INT_MAX)
					row->priority = 0;	/* refused as out of range */
				else
					row->priority = (int) p;
			}
		}
		else if (strcmp(key, "link_size") == 0)
		{
			if (v.type == jbvNumeric)
			{
				char	   *s = jsonb_scalar_text(&v);
				char	   *end;
				long		k = strtol(s, &end, 10);

				row->has_link_size = true;
				/* not an integer, or far out of range: refused as out of range */
				row->link_size = (*end != '\0' || k < 0 || k > INT_MAX) ? 0 : (int) k;
			}
			else if (v.type != jbvNull)
				intake_refuse(row, ERRCODE_SETTLE_BULK_BAD_ELEMENT,
							  pstrdup("link_size must be a JSON number"), NULL, NULL);
		}
		else if (strcmp(key, "deadline") == 0)
		{
			if (v.type == jbvString)
				deadline_text = jsonb_scalar_text(&v);
			else if (v.type != jbvNull)
				intake_refuse(row, ERRCODE_SETTLE_BULK_BAD_ELEMENT,
							  pstrdup("deadline must be a JSON string"), NULL, NULL);
		}
		else if (timed && strcmp(key, "not_before") == 0)
		{
			if (v.type == jbvString)
				not_before_text = jsonb_scalar_text(&v);
			else if (v.type != jbvNull)
				intake_refuse(row, ERRCODE_SETTLE_BULK_BAD_ELEMENT,
							  pstrdup("not_before must be a JSON string"), NULL, NULL);
		}
		else
		{
			char	  **field = NULL;

			if (strcmp(key, "transaction_id") == 0)
				field = &row->transaction_id;
			else if (strcmp(key, "amount") == 0)
				field = &row->amount;
			else if (strcmp(key, "source_currency") == 0)
				field = &row->source_currency;
			else if (strcmp(key, "destination_currency") == 0)
				field = &row->destination_currency;
			else if (strcmp(key, "source_account") == 0)
				field = &row->source_account;
			else if (strcmp(key, "destination_account") == 0)
				field = &row->destination_account;
			else if (strcmp(key, "counterparty_id") == 0)
				field = &row->counterparty_id;
			else if (strcmp(key, "idempotency_key") == 0)
				field = &row->idempotency_key;
			else if (strcmp(key, "link_group") == 0)
				field = &row->link_group;
			else
			{
				intake_refuse(row, ERRCODE_SETTLE_BULK_BAD_ELEMENT,
							  psprintf("unknown key \"%s\"", strlen(key) <= 64 ? key : "(too long)"),
							  NULL,
							  pstrdup("Keys are the parameter names of settle_submit."));
				continue;
			}
			if (v.type == jbvNull)
				*field = NULL;
			else if (v.type == jbvString || (v.type == jbvNumeric && field == &row->amount))
				*field = jsonb_scalar_text(&v);
			else
				intake_refuse(row, ERRCODE_SETTLE_BULK_BAD_ELEMENT,
							  psprintf("%s must be a JSON string", key), NULL, NULL);
		}
	}
	if (deadline_text != NULL && row->sqlerrcode == 0)
		parse_time(row, "deadline", deadline_text, &row->deadline, &row->has_deadline);
	if (not_before_text != NULL && row->sqlerrcode == 0)
		parse_time(row, "not_before", not_before_text, &row->not_before, &row->has_not_before);
}

/*
 * settle_submit_bulk(payments jsonb) -> setof (ordinal, transaction_id,
 *     idempotency_key, payment_id, status, replay, sqlstate, message)
 */
Datum
settle_submit_bulk(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Jsonb	   *payments;
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	IntakeRow  *rows;
	int			n;
	int			i;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_SETTLE_NULL_FIELD),
				 errmsg("payments must not be null")));
	payments = PG_GETARG_JSONB_P(0);
	if (!JB_ROOT_IS_ARRAY(payments) || JB_ROOT_IS_SCALAR(payments))
		ereport(ERROR,
				(errcode(ERRCODE_SETTLE_BULK_NOT_ARRAY),
				 errmsg("payments must be a JSON array of objects"),
				 errhint("Pass '[{\"transaction_id\": ..., \"amount\": ...}, ...]'.")));
	n = JB_ROOT_COUNT(payments);
	if (n > settle_max_bulk_rows)
		ereport(ERROR,
				(errcode(ERRCODE_SETTLE_BULK_TOO_LARGE),
				 errmsg("payments has %d elements, more than settle.max_bulk_rows", n),
				 errdetail("settle.max_bulk_rows is %d.", settle_max_bulk_rows),
				 errhint("Split the input into several calls.")));

	InitMaterializedSRF(fcinfo, 0);
	rows = palloc0(sizeof(IntakeRow) * Max(n, 1));

	it = JsonbIteratorInit(&payments->root);
	i = 0;
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok != WJB_ELEM)
			continue;
		CHECK_FOR_INTERRUPTS();
		if (v.type == jbvBinary && JsonContainerIsObject(v.val.binary.data))
			row_from_jsonb(&rows[i], v.val.binary.data);
		else
			intake_refuse(&rows[i], ERRCODE_SETTLE_BULK_BAD_ELEMENT,
						  pstrdup("each element of payments must be a JSON object"), NULL, NULL);
		i++;
	}
	Assert(i == n);

	/* rows refused while reading JSON must not go through the other rules */
	{
		IntakeRow  *todo = palloc(sizeof(IntakeRow) * Max(n, 1));
		int		   *where = palloc(sizeof(int) * Max(n, 1));
		int			m = 0;

		for (i = 0; i < n; i++)
			if (rows[i].sqlerrcode == 0)
			{
				where[m] = i;
				todo[m++] = rows[i];
			}
		settle_intake(todo, m);
		for (i = 0; i < m; i++)
			rows[where[i]] = todo[i];
	}

	for (i = 0; i < n; i++)
	{
		IntakeRow  *row = &rows[i];
		Datum		values[8];
		bool		nulls[8];

		memset(nulls, 0, sizeof(nulls));
		values[0] = Int32GetDatum(i + 1);
		nulls[1] = row->transaction_id == NULL;
		values[1] = nulls[1] ? (Datum) 0 : CStringGetTextDatum(row->transaction_id);
		nulls[2] = row->idempotency_key == NULL;
		values[2] = nulls[2] ? (Datum) 0 : CStringGetTextDatum(row->idempotency_key);
		if (row->sqlerrcode == 0)
		{
			values[3] = Int64GetDatum(row->payment_id);
			values[4] = CStringGetTextDatum(row->status);
			values[5] = BoolGetDatum(row->replay);
			nulls[6] = nulls[7] = true;
		}
		else
		{
			nulls[3] = true;
			values[4] = CStringGetTextDatum("refused");
			values[5] = BoolGetDatum(false);
			values[6] = CStringGetTextDatum(unpack_sql_state(row->sqlerrcode));
			values[7] = CStringGetTextDatum(row->message);
		}
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	PG_RETURN_NULL();
}
