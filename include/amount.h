/*
 * amount.h -- exact decimal amounts in a currency's minor units.
 *
 * Pure C (no PostgreSQL headers) so that the fuzzer can drive it directly.
 */
#ifndef SETTLE_AMOUNT_H
#define SETTLE_AMOUNT_H

#include <stdint.h>

/* Largest amount accepted, in minor units: 15 digits (USD 9,999,999,999,999.99). */
#define SETTLE_MAX_AMOUNT_MINOR INT64_C(999999999999999)

/* Longest currency exponent we support (ISO 4217 uses 0..4). */
#define SETTLE_MAX_EXPONENT 4

typedef enum AmountResult
{
	AMOUNT_OK = 0,
	AMOUNT_SYNTAX,				/* not a decimal number */
	AMOUNT_NOT_FINITE,			/* NaN or Infinity */
	AMOUNT_NOT_POSITIVE,		/* zero or negative */
	AMOUNT_TOO_MANY_DECIMALS,	/* non-zero digits below the minor unit */
	AMOUNT_ABOVE_BOUND			/* more than SETTLE_MAX_AMOUNT_MINOR */
} AmountResult;

/*
 * Parse a decimal string (the forms numeric_in accepts: optional sign,
 * digits, optional fraction, optional exponent, surrounding whitespace,
 * NaN and Infinity) into minor units of a currency with the given exponent.
 */
extern AmountResult settle_parse_amount(const char *s, int exponent, int64_t *minor);

/* Write minor units as a decimal string with exponent places; buf >= 32 bytes. */
extern void settle_format_amount(int64_t minor, int exponent, char *buf);

#endif							/* SETTLE_AMOUNT_H */
