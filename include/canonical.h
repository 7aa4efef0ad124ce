/*
 * canonical.h -- the canonical content of audited rows, and its hashes.
 *
 * The audit chains and the statement Merkle tree hash a row's content as
 * the UTF-8 text of a jsonb array of its columns (src/sql/50_audit.sql,
 * src/sql/87_statements.sql): what jsonb_build_array(...)::text prints,
 * which settle_verify() and the offline verifier recompute.  These build
 * that text in C, byte for byte, and hash it.
 */
#ifndef SETTLE_CANONICAL_H
#define SETTLE_CANONICAL_H

#include "postgres.h"

#include "common/sha2.h"
#include "lib/stringinfo.h"
#include "utils/timestamp.h"

/* "[" ... "]": elements separated by ", " as jsonb prints them */
extern void settle_canon_begin(StringInfo buf);
extern void settle_canon_int8(StringInfo buf, int64 v);
extern void settle_canon_text(StringInfo buf, const char *s);	/* NULL: null */
extern void settle_canon_null(StringInfo buf);
/* a jsonb value (already printed by jsonb_out), or null */
extern void settle_canon_raw(StringInfo buf, const char *printed);
/* a timestamp as integer µs since the Unix epoch, as settle._epoch_us prints it */
extern void settle_canon_epoch_us(StringInfo buf, TimestampTz t);
extern void settle_canon_end(StringInfo buf);

/* sha256(prefix bytes || a || b); either of a, b may be empty */
extern void settle_canon_sha256(uint8 *out, const void *prefix, size_t plen,
						 const void *a, size_t alen, const void *b, size_t blen);
/* a hash as a bytea value */
extern bytea *settle_canon_hash_bytea(const uint8 *h);
/* sha256(a || UTF-8 of the text), the text in the server's encoding */
extern void settle_canon_sha256_text(uint8 *out, const void *a, size_t alen, const StringInfo text);

#endif							/* SETTLE_CANONICAL_H */
