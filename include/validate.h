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
	FIELD_BAD_CHARS,			/* a byte outside the allowed set */
	FIELD_NOT_ADDRESSABLE		/* a transaction_id no URL path segment can name */
} FieldResult;

/*
 * Client-chosen keys (transaction_id, idempotency_key): printable ASCII
 * without space, 0x21..0x7E.  *bad_pos is set to the first offending offset.
 */
extern FieldResult settle_check_key(const char *s, size_t len, size_t *bad_pos);

/*
 * A transaction_id: a key (above) that is also one path segment of the
 * gateway's /api/v1/transactions/{transaction_id}, so that every accepted id
 * can be read back over HTTP: no '/' (FIELD_BAD_CHARS at its offset; proxies
 * and servers refuse or decode an escaped slash), and not "." or ".."
 * (FIELD_NOT_ADDRESSABLE; clients resolve them as dot-segments, RFC 3986
 * 5.2.4, even when escaped).  The one rule for SQL, bulk JSON and HTTP; the
 * gateway checks the id of a GET with it too.
 */
extern FieldResult settle_check_transaction_id(const char *s, size_t len, size_t *bad_pos);

/* Reference-data names (accounts, participants): [A-Za-z0-9_.-], first alnum. */
extern FieldResult settle_check_name(const char *s, size_t len, size_t *bad_pos);

/* Currency code: exactly three upper-case ASCII letters. Returns 1 if valid. */
extern int	settle_check_currency_code(const char *s, size_t len);

#endif							/* SETTLE_VALIDATE_H */
