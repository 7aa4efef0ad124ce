/*
 * settle_intake_fields.c -- the payment fields' table, as intake uses it.
 *
 * Part of intake.  include/payment_fields.h lists the fields; this file
 * turns each row of it into what intake does with a field, by its kind:
 * read it from settle_submit's arguments or from a settle_submit_bulk
 * object, compare two instructions (a retry must repeat every content
 * field), read the value stored with a replayed payment and print it in a
 * conflict's detail.  A field's own rule (range, syntax, how it relates to
 * other fields) lives in intake.c's check_syntax.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

#include "intake.h"
#include "intake_int.h"
#include "rfc3339.h"
#include "settle_errors.h"

/* Where a field's has_NAME member is: TEXT and AMOUNT have none. */
#define PF_HAS_TEXT(name) -1
#define PF_HAS_AMOUNT(name) -1
#define PF_HAS_INT(name) (int) offsetof(IntakeRow, has_##name)
#define PF_HAS_TIME(name) (int) offsetof(IntakeRow, has_##name)
#define PF_ROW(name, sql_type, kind, since, content, sql_default, stored) \
	{#name, sql_type, PFK_##kind, since, content, sql_default, stored, \
	 offsetof(IntakeRow, name), PF_HAS_##kind(name)},

const PaymentField settle_intake_fields[PAYMENT_FIELD_COUNT] = {
	SETTLE_PAYMENT_FIELDS(PF_ROW)
};

#define PF_TEXT(row, f) (*(char **) ((char *) (row) + (f)->value_off))
#define PF_INT(row, f) (*(int *) ((char *) (row) + (f)->value_off))
#define PF_TIME(row, f) (*(TimestampTz *) ((char *) (row) + (f)->value_off))
#define PF_HAS(row, f) (*(bool *) ((char *) (row) + (f)->has_off))

static void apply_defaults(IntakeRow *row);
static char *jsonb_scalar_text(JsonbValue *v);
static void read_json_value(IntakeRow *row, const PaymentField *f, JsonbValue *v, char **time_text);
static bool parse_time(IntakeRow *row, const PaymentField *f, const char *text);
static bool same_field(const IntakeRow *a, const IntakeRow *b, const PaymentField *f);

/* The field named name (a JSON key), or NULL. */
const PaymentField *
settle_intake_field_named(const char *name)
{
	int			i;

	for (i = 0; i < PAYMENT_FIELD_COUNT; i++)
		if (strcmp(settle_intake_fields[i].name, name) == 0)
			return &settle_intake_fields[i];
	return NULL;
}

/* Whether the field is a column of settle.payment, written by intake's insert. */
bool
settle_intake_field_is_column(const PaymentField *f)
{
	return strncmp(f->stored, "p.", 2) == 0 && strcmp(f->stored + 2, f->name) == 0;
}

/*
 * settle_submit's arguments, in the table's order: as many as this entry
 * point was called with (1.0's SQL passes ten, 1.1's twelve, 1.2's all).
 */
void
settle_intake_fields_from_args(IntakeRow *row, FunctionCallInfo fcinfo)
{
	int			n = Min(PG_NARGS(), PAYMENT_FIELD_COUNT);
	int			i;

	for (i = 0; i < n; i++)
	{
		const PaymentField *f = &settle_intake_fields[i];
		bool		isnull = PG_ARGISNULL(i);

		switch (f->kind)
		{
			case PFK_TEXT:
				PF_TEXT(row, f) = isnull ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(i));
				break;
			case PFK_AMOUNT:
				/* exact decimal text, as the bulk path has it */
				PF_TEXT(row, f) = isnull ? NULL :
					DatumGetCString(DirectFunctionCall1(numeric_out, PG_GETARG_DATUM(i)));
				break;
			case PFK_INT:
				PF_HAS(row, f) = !isnull;
				PF_INT(row, f) = isnull ? 0 : PG_GETARG_INT32(i);
				break;
			case PFK_TIME:
				PF_HAS(row, f) = !isnull;
				PF_TIME(row, f) = isnull ? 0 : PG_GETARG_TIMESTAMPTZ(i);
				break;
		}
	}
}

/* A key left out of a bulk object takes its parameter's DEFAULT (NULL: none). */
static void
apply_defaults(IntakeRow *row)
{
	int			i;

	for (i = 0; i < PAYMENT_FIELD_COUNT; i++)
	{
		const PaymentField *f = &settle_intake_fields[i];

		if (f->sql_default == NULL || strcmp(f->sql_default, "NULL") == 0)
			continue;
		if (f->kind == PFK_INT)
		{
			PF_HAS(row, f) = true;
			PF_INT(row, f) = pg_strtoint32(f->sql_default);
		}
		else if (f->kind == PFK_TEXT)
			PF_TEXT(row, f) = pstrdup(f->sql_default);
		else
			elog(ERROR, "payment field %s: no default of its kind", f->name);
	}
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

/* One key's value, by the field's kind; a time's text is read after the object. */
static void
read_json_value(IntakeRow *row, const PaymentField *f, JsonbValue *v, char **time_text)
{
	switch (f->kind)
	{
		case PFK_TEXT:
		case PFK_AMOUNT:
			if (v->type == jbvNull)
				PF_TEXT(row, f) = NULL;
			else if (v->type == jbvString || (v->type == jbvNumeric && f->kind == PFK_AMOUNT))
				PF_TEXT(row, f) = jsonb_scalar_text(v);
			else
				settle_intake_refuse(row, ERRCODE_SETTLE_BULK_BAD_ELEMENT,
							  psprintf("%s must be a JSON string", f->name), NULL, NULL);
			break;
		case PFK_INT:
			if (v->type == jbvNull)
				PF_HAS(row, f) = false;
			else if (v->type != jbvNumeric)
				settle_intake_refuse(row, ERRCODE_SETTLE_BULK_BAD_ELEMENT,
							  psprintf("%s must be a JSON number", f->name), NULL, NULL);
			else
			{
				char	   *s = jsonb_scalar_text(v);
				char	   *end;
				long		k;

				errno = 0;
				k = strtol(s, &end, 10);
				PF_HAS(row, f) = true;
				/* not an integer, or beyond int: 0, refused by the field's range rule */
				PF_INT(row, f) = (*end != '\0' || errno != 0 || k < INT_MIN || k > INT_MAX) ? 0 : (int) k;
			}
			break;
		case PFK_TIME:
			if (v->type == jbvNull)
				PF_HAS(row, f) = false;
			else if (v->type == jbvString)
				*time_text = jsonb_scalar_text(v);
			else
				settle_intake_refuse(row, ERRCODE_SETTLE_BULK_BAD_ELEMENT,
							  psprintf("%s must be a JSON string", f->name), NULL, NULL);
			break;
	}
}

/*
 * A time given as text: RFC 3339 with its offset, by the one reader
 * (src/rfc3339.c), never timestamptz_in, whose reading depends on the
 * session's TimeZone and DateStyle and takes words such as "tomorrow".
 */
static bool
parse_time(IntakeRow *row, const PaymentField *f, const char *text)
{
	const char *what;
	int64		usec;
	TimestampResult r = settle_parse_rfc3339(text, strlen(text), &usec, &what);
	char	   *message;
	char	   *detail;
	char	   *hint;
	int			code = settle_timestamp_refusal(f->name, r, what, text, &message, &detail, &hint);

	if (code != 0)
	{
		settle_intake_refuse(row, code, message, detail, hint);
		return false;
	}
	PF_TIME(row, f) = (TimestampTz) usec;
	PF_HAS(row, f) = true;
	return true;
}

/*
 * Fill a row from one JSON object of settle_submit_bulk: its keys are the
 * fields of the installed SQL release (settle_submit's parameters), any
 * other key is refused (SE091).
 */
void
settle_intake_fields_from_json(IntakeRow *row, JsonbContainer *obj, int release)
{
	JsonbIterator *it = JsonbIteratorInit(obj);
	JsonbValue	v;
	JsonbIteratorToken tok;
	const PaymentField *f = NULL;
	char	   *time_text[PAYMENT_FIELD_COUNT] = {0};
	int			i;

	apply_defaults(row);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
		{
			char	   *key = pnstrdup(v.val.string.val, v.val.string.len);

			f = settle_intake_field_named(key);
			if (f == NULL || f->since > release)
			{
				settle_intake_refuse(row, ERRCODE_SETTLE_BULK_BAD_ELEMENT,
							  psprintf("unknown key \"%s\"", strlen(key) <= 64 ? key : "(too long)"),
							  NULL,
							  pstrdup("Keys are the parameter names of settle_submit."));
				f = NULL;
			}
			continue;
		}
		if (tok != WJB_VALUE || f == NULL)
			continue;
		read_json_value(row, f, &v, &time_text[f - settle_intake_fields]);
	}
	/* times last, in the table's order */
	for (i = 0; i < PAYMENT_FIELD_COUNT; i++)
		if (time_text[i] != NULL && row->sqlerrcode == 0)
			parse_time(row, &settle_intake_fields[i], time_text[i]);
}

/* Whether two rows hold the same value of field f. */
static bool
same_field(const IntakeRow *a, const IntakeRow *b, const PaymentField *f)
{
	switch (f->kind)
	{
		case PFK_TEXT:
			{
				const char *x = PF_TEXT(a, f);
				const char *y = PF_TEXT(b, f);

				return (x == NULL && y == NULL) || (x != NULL && y != NULL && strcmp(x, y) == 0);
			}
		case PFK_AMOUNT:
			/* the amount in minor units; one refused before it was converted, as text */
			if (a->amount_minor > 0 && b->amount_minor > 0)
				return a->amount_minor == b->amount_minor;
			return a->amount_minor == b->amount_minor && PF_TEXT(a, f) != NULL &&
				PF_TEXT(b, f) != NULL && strcmp(PF_TEXT(a, f), PF_TEXT(b, f)) == 0;
		case PFK_INT:
			return PF_HAS(a, f) == PF_HAS(b, f) && (!PF_HAS(a, f) || PF_INT(a, f) == PF_INT(b, f));
		case PFK_TIME:
			return PF_HAS(a, f) == PF_HAS(b, f) && (!PF_HAS(a, f) || PF_TIME(a, f) == PF_TIME(b, f));
	}
	return false;
}

/*
 * The first content field in which two instructions differ, or NULL: a
 * retry must repeat every one (everything but the key).
 */
const PaymentField *
settle_intake_first_difference(const IntakeRow *a, const IntakeRow *b)
{
	int			i;

	for (i = 0; i < PAYMENT_FIELD_COUNT; i++)
		if (settle_intake_fields[i].content && !same_field(a, b, &settle_intake_fields[i]))
			return &settle_intake_fields[i];
	return NULL;
}

/*
 * The SELECT-list item that reads field f's stored value of payment p, as
 * the type settle_intake_field_from_stored reads.
 */
char *
settle_intake_field_select(const PaymentField *f)
{
	static const char *const types[] = {
		[PFK_TEXT] = "text", [PFK_AMOUNT] = "int8", [PFK_INT] = "int4", [PFK_TIME] = "timestamptz"
	};

	return psprintf("(%s)::pg_catalog.%s", f->stored, types[f->kind]);
}

/* Field f of a stored payment, from column col of a tuple read by settle_intake_field_select. */
void
settle_intake_field_from_stored(IntakeRow *row, const PaymentField *f, HeapTuple tup, TupleDesc desc, int col)
{
	bool		isnull;
	Datum		d;

	switch (f->kind)
	{
		case PFK_TEXT:
			PF_TEXT(row, f) = SPI_getvalue(tup, desc, col);
			break;
		case PFK_AMOUNT:
			d = SPI_getbinval(tup, desc, col, &isnull);
			row->amount_minor = isnull ? 0 : DatumGetInt64(d);
			break;
		case PFK_INT:
			d = SPI_getbinval(tup, desc, col, &isnull);
			PF_HAS(row, f) = !isnull;
			PF_INT(row, f) = isnull ? 0 : DatumGetInt32(d);
			break;
		case PFK_TIME:
			d = SPI_getbinval(tup, desc, col, &isnull);
			PF_HAS(row, f) = !isnull;
			PF_TIME(row, f) = isnull ? 0 : DatumGetTimestampTz(d);
			break;
	}
}

/* Field f's value in a row for a refusal's detail ("none" when it has none). */
char *
settle_intake_field_text(const IntakeRow *row, const PaymentField *f)
{
	char		when[32];

	switch (f->kind)
	{
		case PFK_TEXT:
			return PF_TEXT(row, f) ? quote_literal_cstr(PF_TEXT(row, f)) : pstrdup("none");
		case PFK_AMOUNT:
			return PF_TEXT(row, f) ? pstrdup(PF_TEXT(row, f)) : psprintf(INT64_FORMAT " minor units", row->amount_minor);
		case PFK_INT:
			return PF_HAS(row, f) ? psprintf("%d", PF_INT(row, f)) : pstrdup("none");
		case PFK_TIME:
			if (!PF_HAS(row, f))
				return pstrdup("none");
			settle_format_rfc3339(PF_TIME(row, f), when);
			return pstrdup(when);
	}
	return pstrdup("none");
}

/* Copy field f's value from one row into another. */
void
settle_intake_field_copy(IntakeRow *dst, const IntakeRow *src, const PaymentField *f)
{
	switch (f->kind)
	{
		case PFK_TEXT:
			PF_TEXT(dst, f) = PF_TEXT(src, f);
			break;
		case PFK_AMOUNT:
			PF_TEXT(dst, f) = PF_TEXT(src, f);
			dst->amount_minor = src->amount_minor;
			break;
		case PFK_INT:
			PF_HAS(dst, f) = PF_HAS(src, f);
			PF_INT(dst, f) = PF_INT(src, f);
			break;
		case PFK_TIME:
			PF_HAS(dst, f) = PF_HAS(src, f);
			PF_TIME(dst, f) = PF_TIME(src, f);
			break;
	}
}

/* The SQL type intake passes field f as (a column of the insert). */
Oid
settle_intake_field_type(const PaymentField *f)
{
	switch (f->kind)
	{
		case PFK_TEXT:
			return TEXTOID;
		case PFK_AMOUNT:
			return INT8OID;		/* the amount in minor units */
		case PFK_INT:
			return INT4OID;
		case PFK_TIME:
			return TIMESTAMPTZOID;
	}
	return InvalidOid;
}

/* Field f of a row as a Datum of settle_intake_field_type(f). */
Datum
settle_intake_field_datum(const IntakeRow *row, const PaymentField *f, bool *isnull)
{
	*isnull = false;
	switch (f->kind)
	{
		case PFK_TEXT:
			*isnull = PF_TEXT(row, f) == NULL;
			return *isnull ? (Datum) 0 : CStringGetTextDatum(PF_TEXT(row, f));
		case PFK_AMOUNT:
			return Int64GetDatum(row->amount_minor);
		case PFK_INT:
			*isnull = !PF_HAS(row, f);
			return Int32GetDatum(PF_INT(row, f));
		case PFK_TIME:
			*isnull = !PF_HAS(row, f);
			return TimestampTzGetDatum(PF_TIME(row, f));
	}
	*isnull = true;
	return (Datum) 0;
}
