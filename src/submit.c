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
#include "intake_int.h"
#include "settle_errors.h"
#include "version.h"

PG_FUNCTION_INFO_V1(settle_submit);
PG_FUNCTION_INFO_V1(settle_submit_1_2);
PG_FUNCTION_INFO_V1(settle_submit_bulk);

/* Largest settle_submit_bulk call (settle.max_bulk_rows). */
static int	settle_max_bulk_rows = 100000;

/* Define intake's settings (from _PG_init). */
void
settle_submit_define_settings(void)
{
	DefineCustomIntVariable("settle.max_bulk_rows",
							"Largest number of payments one settle_submit_bulk call accepts.",
							NULL, &settle_max_bulk_rows,
							100000, 1, 10000000,
							PGC_SUSET, 0, NULL, NULL, NULL);
}

static void raise_refusal(IntakeRow *row);

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
 * settle_submit(the payment fields, include/payment_fields.h)
 *   -> (payment_id, status, replay, submitted_at, updated_at)
 */
static Datum
submit_one(FunctionCallInfo fcinfo)
{
	IntakeRow	row;
	TupleDesc	desc;
	Datum		values[5];
	bool		nulls[5] = {false, false, false, false, false};

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "settle_submit must return a composite type");

	memset(&row, 0, sizeof(row));
	settle_intake_fields_from_args(&row, fcinfo);

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

/* The entry point of 1.2's SQL: every field of the table. */
Datum
settle_submit_1_2(PG_FUNCTION_ARGS)
{
	return submit_one(fcinfo);
}

/*
 * The entry point the frozen scripts of 1.0 and 1.1 name: 1.0's SQL passes
 * ten arguments (no linked payments), 1.1's twelve; the fields are read as
 * far as the call goes.
 */
Datum
settle_submit(PG_FUNCTION_ARGS)
{
	return submit_one(fcinfo);
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
	int			release;

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
	/* the keys are the fields of this database's SQL release */
	release = settle_sql_release();

	it = JsonbIteratorInit(&payments->root);
	i = 0;
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok != WJB_ELEM)
			continue;
		CHECK_FOR_INTERRUPTS();
		if (v.type == jbvBinary && JsonContainerIsObject(v.val.binary.data))
			settle_intake_fields_from_json(&rows[i], v.val.binary.data, release);
		else
			settle_intake_refuse(&rows[i], ERRCODE_SETTLE_BULK_BAD_ELEMENT,
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
