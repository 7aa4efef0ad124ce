/*
 * rfc3339.h -- the one reading of a timestamp given as text (src/rfc3339.c).
 *
 * Pure C (no PostgreSQL headers), shared by intake and the fuzzer.  The
 * reading depends on no session setting (TimeZone, DateStyle, locale): the
 * text must say its own UTC offset.
 */
#ifndef SETTLE_RFC3339_H
#define SETTLE_RFC3339_H

#include <stddef.h>
#include <stdint.h>

/* Longest timestamp text read (room for many zero fraction digits). */
#define SETTLE_MAX_TIMESTAMP_TEXT 64

typedef enum TimestampResult
{
	TS_OK = 0,
	TS_SYNTAX,					/* not date "T" time offset, digit for digit */
	TS_NO_OFFSET,				/* a date-time without "Z" or "+hh:mm" */
	TS_FIELD_RANGE,				/* a month, day, hour, minute, second or offset out of range */
	TS_PRECISION,				/* non-zero digits below the microsecond */
	TS_TOO_LONG					/* longer than SETTLE_MAX_TIMESTAMP_TEXT */
} TimestampResult;

/*
 * Read an RFC 3339 date-time (section 5.6):
 *   YYYY-MM-DD "T" hh:mm:ss [.fraction] ("Z" | "+hh:mm" | "-hh:mm")
 * "T" and "Z" may be lower case; nothing else (no spaces, words, missing
 * offset, leap second 60).  *usec is microseconds since 2000-01-01 00:00:00
 * UTC, PostgreSQL's TimestampTz.  On a failure, *what names the part at fault
 * (a static string, e.g. "month"), or is "" if none.
 */
extern TimestampResult settle_parse_rfc3339(const char *s, size_t len, int64_t *usec,
											const char **what);

/*
 * Write microseconds since 2000-01-01 UTC as RFC 3339 in UTC:
 * "YYYY-MM-DDThh:mm:ss[.ffffff]Z" (the fraction only if not zero).
 * Years 0..9999 only; buf has at least 32 bytes.  Returns 0, or -1 for a
 * time outside those years (buf then holds "out of range").
 */
extern int	settle_format_rfc3339(int64_t usec, char *buf);

#endif							/* SETTLE_RFC3339_H */
