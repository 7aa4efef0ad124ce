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
 * Whether this database's settle SQL has the table settle.<relname>: the
 * library runs older releases' SQL too (COMPATIBLE_SQL), so code that needs
 * a newer release's table asks first.
 */
extern bool settle_sql_has_table(const char *relname);
/* The same for a column settle.<relname>.<colname> a newer release added. */
extern bool settle_sql_has_column(const char *relname, const char *colname);

#endif							/* SETTLE_VERSION_H */
