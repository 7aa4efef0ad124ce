/*
 * version.h -- the library and the installed SQL must be the same release.
 */
#ifndef SETTLE_VERSION_H
#define SETTLE_VERSION_H

/* The release this library was built as (settle.control's default_version). */
#ifndef SETTLE_VERSION
#error "SETTLE_VERSION is defined by the Makefile from settle.control"
#endif
/* Older releases whose SQL this library still runs (comma-separated, may be empty). */
#ifndef SETTLE_COMPATIBLE_SQL
#define SETTLE_COMPATIBLE_SQL ""
#endif

/*
 * Raise SE152 if the extension installed in this database is another
 * release than the library (checked once per backend and database).
 */
extern void settle_check_version(void);
/* The same, as a boolean (the worker logs and waits instead of raising). */
extern bool settle_version_matches(char **installed);

/*
 * The SQL release installed in this database (major * 100 + minor; 0: none).
 * What each release added that the C must know about:
 *   1.1  settle.payment_link and link_group/link_size (linked payments),
 *        settle.cycle's fifo_netted_* columns, settle.liquidity_price
 *   1.2  settle.origin (copies start fenced)
 * Where a SQL function's arguments differ by release, each release's SQL
 * names its own C entry point instead (settle_submit_1_2, ...), and the
 * older entry points stay for the frozen scripts that name them.
 */
#define SETTLE_SQL_1_0	100
#define SETTLE_SQL_1_1	101
#define SETTLE_SQL_1_2	102
extern int	settle_sql_release(void);

#endif							/* SETTLE_VERSION_H */
