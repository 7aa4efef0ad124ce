/*
 * spi_util.h -- building array parameters for set-based SPI statements.
 *
 * Intake and the cycle write many rows with one statement each
 * (INSERT ... SELECT FROM unnest($1, $2, ...)); these build the arrays.
 */
#ifndef SETTLE_SPI_UTIL_H
#define SETTLE_SPI_UTIL_H

#include "postgres.h"
#include "utils/array.h"

/* text[] from C strings; NULL pointers become SQL NULLs. */
extern ArrayType *settle_text_array(char **values, int n);
/* bigint[] from int64 values. */
extern ArrayType *settle_int8_array(const int64 *values, int n);
/*
 * The parameters of one statement, added in order ($1, $2, ...):
 *   SpiArgs a = {0};
 *   settle_spi_arg(&a, INT8OID, Int64GetDatum(id));
 *   settle_spi_arg_int8s(&a, amounts, n);
 *   SPI_execute_with_args(sql, a.n, a.types, a.values, NULL, false, 0);
 */
#define SETTLE_MAX_SPI_ARGS 16
typedef struct SpiArgs
{
	int			n;
	Oid			types[SETTLE_MAX_SPI_ARGS];
	Datum		values[SETTLE_MAX_SPI_ARGS];
} SpiArgs;

extern void settle_spi_arg(SpiArgs *a, Oid type, Datum value);
/* bigint[] / text[] parameters from C arrays */
extern void settle_spi_arg_int8s(SpiArgs *a, const int64 *values, int n);
extern void settle_spi_arg_texts(SpiArgs *a, char **values, int n);

/* Prepare and keep a plan, or raise with the statement's purpose. */
extern SPIPlanPtr settle_keep_plan(const char *sql, int nargs, Oid *types, const char *what);

/*
 * SPI_execute_with_args for the cycle's stages (load, posting, quiet
 * payers, record), with the plan kept for the life of the process by
 * statement text while settle.cycle_keep_plans (settle_keep_plans) is on.
 */
extern bool settle_keep_plans;
extern int	settle_spi_execute(const char *sql, int nargs, Oid *types, Datum *values, const char *nulls,
							   bool read_only, long count);

#endif							/* SETTLE_SPI_UTIL_H */
