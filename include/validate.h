/*
 * validate.h -- syntax rules for the text fields of a payment.
 *
 * Pure C (no PostgreSQL headers), shared by intake and the fuzzer.
 */
#ifndef SETTLE_VALIDATE_H
#define SETTLE_VALIDATE_H

#include <stddef.h>

/* Longest identifier (transaction_id, idempotency_key, account, participant). */
#define SETTLE_MAX_IDENTIFIER 128

typedef enum FieldResult
{
	FIELD_OK = 0,
	FIELD_EMPTY,				/* zero length */
	FIELD_TOO_LONG,				/* longer than SETTLE_MAX_IDENTIFIER bytes */
	FIELD_BAD_CHARS				/* a byte outside the allowed set */
} FieldResult;

/*
 * Client-chosen keys (transaction_id, idempotency_key): printable ASCII
 * without space, 0x21..0x7E.  *bad_pos is set to the first offending offset.
 */
extern FieldResult settle_check_key(const char *s, size_t len, size_t *bad_pos);

/* Reference-data names (accounts, participants): [A-Za-z0-9_.-], first alnum. */
extern FieldResult settle_check_name(const char *s, size_t len, size_t *bad_pos);

/* Currency code: exactly three upper-case ASCII letters. Returns 1 if valid. */
extern int	settle_check_currency_code(const char *s, size_t len);

#endif							/* SETTLE_VALIDATE_H */
