/*
 * refcheck.c -- intake's field rules, callable from SQL.
 *
 * The reference-data functions (settle_create_account and friends, written
 * in PL/pgSQL) call these so that a malformed name or amount gets exactly the
 * SQLSTATE and message that settle_submit gives.
 */
#include "postgres.h"

#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/numeric.h"

#include "refusal.h"
#include "major_units.h"
#include "settle_errors.h"

PG_FUNCTION_INFO_V1(settle_check_name_sql);
PG_FUNCTION_INFO_V1(settle_check_currency_sql);
PG_FUNCTION_INFO_V1(settle_to_minor_sql);

static int	currency_exponent(const char *field, const char *code);

/* settle._check_name(field, value): raise unless value is a valid name. */
Datum
settle_check_name_sql(PG_FUNCTION_ARGS)
{
	char	   *field = PG_ARGISNULL(0) ? "value" : text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *value;
	size_t		pos;
	FieldResult r;

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_SETTLE_NULL_FIELD),
				 errmsg("%s must not be null", field)));
	value = text_to_cstring(PG_GETARG_TEXT_PP(1));
	r = settle_check_name(value, strlen(value), &pos);
	settle_raise_field(field, r, pos, value);
	PG_RETURN_TEXT_P(PG_GETARG_TEXT_PP(1));
}

/* The exponent of a known currency; raises for a malformed or unknown code. */
static int
currency_exponent(const char *field, const char *code)
{
	int			exponent;

	if (!settle_check_currency_code(code, strlen(code)))
		ereport(ERROR,
				(errcode(ERRCODE_SETTLE_CURRENCY_SYNTAX),
				 errmsg("%s must be an ISO 4217 code of three upper-case letters", field)));
	exponent = settle_currency_exponent(code, strlen(code));
	if (exponent < 0)
		ereport(ERROR,
				(errcode(ERRCODE_SETTLE_CURRENCY_UNKNOWN),
				 errmsg("%s \"%s\" is not a known currency", field, code),
				 errhint("settle.currencies lists the currencies settle knows.")));
	return exponent;
}

/* settle._check_currency(field, code) -> exponent. */
Datum
settle_check_currency_sql(PG_FUNCTION_ARGS)
{
	char	   *field = PG_ARGISNULL(0) ? "currency" : text_to_cstring(PG_GETARG_TEXT_PP(0));

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_SETTLE_NULL_FIELD),
				 errmsg("%s must not be null", field)));
	PG_RETURN_INT16((int16) currency_exponent(field, text_to_cstring(PG_GETARG_TEXT_PP(1))));
}

/* settle._to_minor(field, amount, currency, allow_zero) -> minor units. */
Datum
settle_to_minor_sql(PG_FUNCTION_ARGS)
{
	char	   *field = PG_ARGISNULL(0) ? "amount" : text_to_cstring(PG_GETARG_TEXT_PP(0));
	bool		allow_zero = !PG_ARGISNULL(3) && PG_GETARG_BOOL(3);
	char	   *digits;
	char	   *currency;
	int			exponent;
	int64		minor;
	AmountResult r;
	char	   *message,
			   *detail,
			   *hint;
	int			code;

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_SETTLE_NULL_FIELD),
				 errmsg("%s must not be null", field)));
	if (PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_SETTLE_NULL_FIELD),
				 errmsg("currency must not be null")));
	currency = text_to_cstring(PG_GETARG_TEXT_PP(2));
	exponent = currency_exponent("currency", currency);
	digits = DatumGetCString(DirectFunctionCall1(numeric_out, PG_GETARG_DATUM(1)));
	r = settle_parse_amount(digits, exponent, &minor);
	if (r == AMOUNT_NOT_POSITIVE && allow_zero)
	{
		/* zero is a valid limit or fee; negative values are not */
		AmountResult neg = settle_parse_amount(digits[0] == '-' ? digits + 1 : digits, exponent, &minor);

		if (neg == AMOUNT_NOT_POSITIVE)
			PG_RETURN_INT64(0);
		if (digits[0] != '-')
			r = neg;
	}
	if (r == AMOUNT_OK)
		PG_RETURN_INT64(minor);
	code = settle_amount_refusal(field, r, currency, exponent, &message, &detail, &hint);
	if (r == AMOUNT_NOT_POSITIVE && allow_zero)
		message = psprintf("%s must not be negative", field);
	ereport(ERROR,
			(errcode(code),
			 errmsg_internal("%s", message),
			 detail ? errdetail_internal("%s", detail) : 0,
			 hint ? errhint("%s", hint) : 0));
	PG_RETURN_NULL();
}
