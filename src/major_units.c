/*
 * major_units.c -- settle.to_major(): minor units as a numeric in major
 * units, for the views (every amount column of settle.accounts,
 * settle.ledger, settle.batches, ...).
 *
 * It runs once per amount per row read, so it is C with a per-backend
 * table of exponents.  A code not seen yet is looked up once; any change
 * to settle.currency (or a DROP EXTENSION) empties the table
 * (src/refcache.c).  The reference functions' checks
 * (refcheck.c) use the same table.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/numeric.h"

#include "amount.h"
#include "major_units.h"
#include "refcache.h"

PG_FUNCTION_INFO_V1(settle_to_major);

#define CODES (26 * 26 * 26)
#define NOT_LOOKED_UP (-2)
#define NO_CURRENCY (-1)		/* what settle_currency_exponent returns for an unknown code */

static int8 *exponent_of = NULL;	/* by code AAA..ZZZ, in TopMemoryContext */
static uint64 exponent_generation = 0;	/* refcache.c generation it was filled at */

int
settle_currency_exponent(const char *code, int len)
{
	int			slot;
	int			i;

	if (len != 3)
		return NO_CURRENCY;
	slot = 0;
	for (i = 0; i < 3; i++)
	{
		if (code[i] < 'A' || code[i] > 'Z')
			return NO_CURRENCY;
		slot = slot * 26 + (code[i] - 'A');
	}
	if (exponent_of == NULL)
		exponent_of = MemoryContextAlloc(TopMemoryContext, CODES);
	/* first use, or settle.currency changed or was dropped since (refcache.c) */
	if (!settle_refcache_valid(&exponent_generation))
	{
		memset(exponent_of, NOT_LOOKED_UP, CODES);
		settle_refcache_watch("currency");
	}
	if (exponent_of[slot] == NOT_LOOKED_UP)
	{
		Oid			types[1] = {TEXTOID};
		Datum		values[1] = {PointerGetDatum(cstring_to_text_with_len(code, 3))};
		int			exponent = NO_CURRENCY;

		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		/* qualified: this runs with the caller's search_path */
		if (SPI_execute_with_args("SELECT exponent::pg_catalog.int4 FROM settle.currency"
								  " WHERE code OPERATOR(pg_catalog.=) $1",
								  1, types, values, NULL, true, 1) != SPI_OK_SELECT)
			elog(ERROR, "currency lookup failed");
		if (SPI_processed == 1)
		{
			bool		isnull;

			exponent = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		}
		SPI_finish();
		/* an unknown code is asked again next time: it may be added */
		if (exponent == NO_CURRENCY)
			return NO_CURRENCY;
		exponent_of[slot] = (int8) exponent;
	}
	return exponent_of[slot];
}

/* settle.to_major(amount bigint, currency text) -> numeric; NULL for an unknown currency. */
Datum
settle_to_major(PG_FUNCTION_ARGS)
{
	int64		amount = PG_GETARG_INT64(0);
	text	   *currency = PG_GETARG_TEXT_PP(1);
	int			exponent = settle_currency_exponent(VARDATA_ANY(currency), VARSIZE_ANY_EXHDR(currency));
	char		buf[64];

	if (exponent == NO_CURRENCY)
		PG_RETURN_NULL();
	settle_format_amount(amount, exponent, buf);
	PG_RETURN_DATUM(DirectFunctionCall3(numeric_in, CStringGetDatum(buf),
										ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1)));
}
