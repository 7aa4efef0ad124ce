/*
 * origin.h -- a logical copy of a ledger (restored from pg_dump into another
 * database or server) starts fenced until an operator releases it.
 */
#ifndef SETTLE_ORIGIN_H
#define SETTLE_ORIGIN_H

/*
 * Whether this database is a copy not yet released; *why says so.  Asks
 * settle.origin in a transaction; outside one, the last answer.
 */
extern bool settle_origin_copy(const char **why);
/* Whether the next settle_origin_copy() in a transaction asks again. */
extern bool settle_origin_stale(void);

#endif							/* SETTLE_ORIGIN_H */
