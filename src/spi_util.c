/*
 * spi_util.c -- array parameters and kept plans for SPI.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"

#include "spi_util.h"

ArrayType *
settle_text_array(char **values, int n)
{
	Datum	   *d;
	bool	   *nulls;
	int			dims[1] = {n};
	int			lbs[1] = {1};
	int			i;

	if (n == 0)
		return construct_empty_array(TEXTOID);
	d = palloc(sizeof(Datum) * n);
	nulls = palloc(sizeof(bool) * n);
	for (i = 0; i < n; i++)
	{
		nulls[i] = values[i] == NULL;
		d[i] = nulls[i] ? (Datum) 0 : CStringGetTextDatum(values[i]);
	}
	return construct_md_array(d, nulls, 1, dims, lbs, TEXTOID, -1, false, TYPALIGN_INT);
}

ArrayType *
settle_int8_array(const int64 *values, int n)
{
	Datum	   *d;
	int			i;

	if (n == 0)
		return construct_empty_array(INT8OID);
	d = palloc(sizeof(Datum) * n);
	for (i = 0; i < n; i++)
		d[i] = Int64GetDatum(values[i]);
	return construct_array(d, n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE);
}

SPIPlanPtr
settle_keep_plan(const char *sql, int nargs, Oid *types, const char *what)
{
	SPIPlanPtr	plan = SPI_prepare(sql, nargs, types);

	if (plan == NULL)
		elog(ERROR, "could not prepare the %s statement: %s", what,
			 SPI_result_code_string(SPI_result));
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "could not keep the %s plan", what);
	return plan;
}

void
spi_arg(SpiArgs *a, Oid type, Datum value)
{
	if (a->n >= SETTLE_MAX_SPI_ARGS)
		elog(ERROR, "too many SPI parameters");
	a->types[a->n] = type;
	a->values[a->n++] = value;
}

void
spi_arg_int8s(SpiArgs *a, const int64 *values, int n)
{
	spi_arg(a, INT8ARRAYOID, PointerGetDatum(settle_int8_array(values, n)));
}

void
spi_arg_texts(SpiArgs *a, char **values, int n)
{
	spi_arg(a, TEXTARRAYOID, PointerGetDatum(settle_text_array(values, n)));
}
