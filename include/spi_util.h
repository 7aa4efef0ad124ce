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
/* Prepare and keep a plan, or raise with the statement's purpose. */
extern SPIPlanPtr settle_keep_plan(const char *sql, int nargs, Oid *types, const char *what);

#endif							/* SETTLE_SPI_UTIL_H */
