/*
 * refusal.c -- the texts of intake's refusals, in one place.
 *
 * Part of intake.  A refused row carries its SQLSTATE, message, detail and
 * hint (settle_submit raises them, settle_submit_bulk returns them per row);
 * the same texts serve the reference functions' checks (src/refcheck.c).
 * docs/ERRORS.md is the table of codes.
 */
#include "postgres.h"

#include "intake.h"
#include "refusal.h"
#include "rfc3339.h"
#include "settle_errors.h"

void
settle_intake_refuse(IntakeRow *row, int sqlerrcode, char *message, char *detail, char *hint)
{
	if (row->sqlerrcode != 0)
		return;
	row->sqlerrcode = sqlerrcode;
	row->message = message;
	row->detail = detail;
	row->hint = hint;
	row->insert = false;
}

int
settle_field_refusal(const char *field, FieldResult r, size_t pos, const char *value,
					 bool is_key, char **message, char **detail, char **hint)
{
	*detail = NULL;
	*hint = NULL;
	switch (r)
	{
		case FIELD_OK:
			return 0;
		case FIELD_EMPTY:
			*message = psprintf("%s must not be empty", field);
			return ERRCODE_SETTLE_EMPTY_IDENTIFIER;
		case FIELD_TOO_LONG:
			*message = psprintf("%s is longer than %d bytes", field, SETTLE_MAX_IDENTIFIER);
			*detail = psprintf("It has %zu bytes.", strlen(value));
			return ERRCODE_SETTLE_IDENTIFIER_TOO_LONG;
		case FIELD_BAD_CHARS:
			*message = psprintf("%s contains a character that is not allowed", field);
			*detail = psprintf("Byte %zu is 0x%02x.", pos + 1, (unsigned char) value[pos]);
			if (value[pos] == '/' && strcmp(field, "transaction_id") == 0)
				*hint = pstrdup("A transaction_id is a path segment of the HTTP API: printable ASCII without spaces or '/'.");
			else
				*hint = pstrdup(is_key ? "Use printable ASCII without spaces."
								: "Use letters, digits, '_', '.' and '-', starting with a letter or digit.");
			return ERRCODE_SETTLE_IDENTIFIER_CHARS;
		case FIELD_NOT_ADDRESSABLE:
			*message = psprintf("%s must not be \".\" or \"..\"", field);
			*hint = pstrdup("A transaction_id is a path segment of the HTTP API, where these two name other paths.");
			return ERRCODE_SETTLE_IDENTIFIER_CHARS;
	}
	return 0;
}

void
settle_raise_field(const char *field, FieldResult r, size_t pos, const char *value)
{
	char	   *message;
	char	   *detail;
	char	   *hint;
	int			code = settle_field_refusal(field, r, pos, value, false, &message, &detail, &hint);

	if (code != 0)
		ereport(ERROR,
				(errcode(code),
				 errmsg_internal("%s", message),
				 detail ? errdetail_internal("%s", detail) : 0,
				 hint ? errhint("%s", hint) : 0));
}

int
settle_amount_refusal(const char *field, AmountResult r, const char *currency,
					  int exponent, char **message, char **detail, char **hint)
{
	*detail = NULL;
	*hint = NULL;
	switch (r)
	{
		case AMOUNT_OK:
			return 0;
		case AMOUNT_SYNTAX:
			*message = psprintf("%s is not a decimal number", field);
			return ERRCODE_SETTLE_AMOUNT_SYNTAX;
		case AMOUNT_NOT_FINITE:
			*message = psprintf("%s must be a finite number", field);
			*detail = pstrdup("NaN and Infinity are not amounts.");
			return ERRCODE_SETTLE_AMOUNT_NOT_FINITE;
		case AMOUNT_NOT_POSITIVE:
			*message = psprintf("%s must be greater than zero", field);
			return ERRCODE_SETTLE_AMOUNT_NOT_POSITIVE;
		case AMOUNT_TOO_MANY_DECIMALS:
			*message = psprintf("%s has more decimals than %s allows", field, currency);
			*detail = psprintf("%s has %d decimal places.", currency, exponent);
			return ERRCODE_SETTLE_AMOUNT_DECIMALS;
		case AMOUNT_ABOVE_BOUND:
			{
				char		buf[40];

				settle_format_amount(SETTLE_MAX_AMOUNT_MINOR, exponent, buf);
				*message = psprintf("%s is above the largest amount accepted", field);
				*detail = psprintf("The largest %s amount is %s.", currency, buf);
				*hint = pstrdup("Split the payment.");
				return ERRCODE_SETTLE_AMOUNT_ABOVE_BOUND;
			}
	}
	return 0;
}

int
settle_timestamp_refusal(const char *field, TimestampResult r, const char *what,
						 const char *value, char **message, char **detail, char **hint)
{
	bool		quotable = strlen(value) <= SETTLE_MAX_TIMESTAMP_TEXT;

	*detail = NULL;
	*hint = pstrdup("Write RFC 3339 with a UTC offset, e.g. 2026-12-01T12:00:00Z or 2026-12-01T13:00:00+01:00.");
	switch (r)
	{
		case TS_OK:
			return 0;
		case TS_NO_OFFSET:
			*message = psprintf("%s has no UTC offset", field);
			*detail = quotable ? psprintf("%s is \"%s\"; a time without an offset would be read in some session's time zone.",
										 field, value) : NULL;
			break;
		case TS_FIELD_RANGE:
			*message = psprintf("%s has its %s out of range", field, what);
			*detail = quotable ? psprintf("%s is \"%s\".", field, value) : NULL;
			break;
		case TS_PRECISION:
			*message = psprintf("%s is more precise than a microsecond", field);
			*detail = quotable ? psprintf("%s is \"%s\".", field, value) : NULL;
			break;
		case TS_TOO_LONG:
			*message = psprintf("%s is longer than %d bytes", field, SETTLE_MAX_TIMESTAMP_TEXT);
			break;
		case TS_SYNTAX:
			*message = psprintf("%s is not an RFC 3339 timestamp", field);
			*detail = quotable ? psprintf("%s is \"%s\"; its %s does not follow YYYY-MM-DDThh:mm:ss[.fraction](Z|+hh:mm|-hh:mm).",
										 field, value, what) : NULL;
			break;
	}
	return ERRCODE_SETTLE_TIMESTAMP_SYNTAX;
}
