/*
 * canonical.c -- the canonical content of audited rows, and its hashes
 * (include/canonical.h).  jsonb prints an array as "[" elements joined by
 * ", " "]", strings through escape_json, numbers as their digits and SQL
 * NULL as null; the hashes are SHA-256 through PostgreSQL's cryptohash.
 */
#include "postgres.h"

#include "common/cryptohash.h"
#include "mb/pg_wchar.h"
#include "utils/json.h"

#include "canonical.h"

/* µs from the Unix epoch to PostgreSQL's (2000-01-01) */
#define UNIX_TO_PG_EPOCH_US \
	((int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * USECS_PER_DAY)

/* the separator before every element but the first */
static void
canon_next(StringInfo buf)
{
	if (buf->len > 1)
		appendBinaryStringInfo(buf, ", ", 2);
}

void
settle_canon_begin(StringInfo buf)
{
	resetStringInfo(buf);
	appendStringInfoChar(buf, '[');
}

void
settle_canon_int8(StringInfo buf, int64 v)
{
	canon_next(buf);
	appendStringInfo(buf, INT64_FORMAT, v);
}

void
settle_canon_text(StringInfo buf, const char *s)
{
	canon_next(buf);
	if (s == NULL)
		appendBinaryStringInfo(buf, "null", 4);
	else
		escape_json(buf, s);
}

void
settle_canon_null(StringInfo buf)
{
	canon_next(buf);
	appendBinaryStringInfo(buf, "null", 4);
}

void
settle_canon_raw(StringInfo buf, const char *printed)
{
	canon_next(buf);
	appendStringInfoString(buf, printed == NULL ? "null" : printed);
}

/*
 * settle._epoch_us: (extract(epoch FROM t) * 1000000)::bigint for a finite
 * timestamp; the audited columns are never infinite (their defaults are
 * clock_timestamp()), and an infinite one is refused rather than hashed.
 */
void
settle_canon_epoch_us(StringInfo buf, TimestampTz t)
{
	if (TIMESTAMP_NOT_FINITE(t))
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("an audited row has an infinite timestamp")));
	settle_canon_int8(buf, t + UNIX_TO_PG_EPOCH_US);
}

void
settle_canon_end(StringInfo buf)
{
	appendStringInfoChar(buf, ']');
}

void
settle_canon_sha256(uint8 *out, const void *prefix, size_t plen,
			 const void *a, size_t alen, const void *b, size_t blen)
{
	pg_cryptohash_ctx *ctx = pg_cryptohash_create(PG_SHA256);

	if (ctx == NULL ||
		pg_cryptohash_init(ctx) < 0 ||
		pg_cryptohash_update(ctx, prefix, plen) < 0 ||
		pg_cryptohash_update(ctx, a, alen) < 0 ||
		pg_cryptohash_update(ctx, b, blen) < 0 ||
		pg_cryptohash_final(ctx, out, PG_SHA256_DIGEST_LENGTH) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not compute a SHA-256 hash: %s", pg_cryptohash_error(ctx))));
	pg_cryptohash_free(ctx);
}

void
settle_canon_sha256_text(uint8 *out, const void *a, size_t alen, const StringInfo text)
{
	char	   *utf8 = pg_server_to_any(text->data, text->len, PG_UTF8);

	settle_canon_sha256(out, a, alen, utf8, strlen(utf8), NULL, 0);
	if (utf8 != text->data)
		pfree(utf8);
}

bytea *
settle_canon_hash_bytea(const uint8 *h)
{
	bytea	   *b = (bytea *) palloc(VARHDRSZ + PG_SHA256_DIGEST_LENGTH);

	SET_VARSIZE(b, VARHDRSZ + PG_SHA256_DIGEST_LENGTH);
	memcpy(VARDATA(b), h, PG_SHA256_DIGEST_LENGTH);
	return b;
}
