/*
 * launcher.h -- the settle launcher: one background worker, connected to no
 * database, that starts and stops a settlement worker for each database
 * where the extension is installed (docs/OPERATIONS.md, "Several databases").
 */
#ifndef SETTLE_LAUNCHER_H
#define SETTLE_LAUNCHER_H

#include "postgres.h"
#include "nodes/nodes.h"

/* settle.database: the databases the launcher may serve (comma-separated; empty: all) */
extern char *settle_database;
/* settle.worker_enabled: off, the launcher stops every worker */
extern bool settle_worker_enabled;

/* Define settle.worker_enabled and settle.database (from _PG_init). */
extern void settle_launcher_define_settings(void);

/* Register the launcher (from _PG_init, while preloading). */
extern void settle_launcher_register(void);

/* settle.database is empty (every database) or names this one. */
extern bool settle_database_allowed(const char *name);
/* settle.database names this database explicitly. */
extern bool settle_database_listed(const char *name);

/*
 * Around a utility statement, while preloaded (hooks.c; src/db_events.c):
 * before it, the launcher is told about CREATE EXTENSION settle and CREATE
 * DATABASE (at commit), and a database's worker is stopped before DROP
 * DATABASE, ALTER DATABASE ... RENAME or SET TABLESPACE, or CREATE DATABASE
 * ... TEMPLATE of it: returns the paused slot (-1: none), *drop whether the
 * statement drops it.  After it, whether it ran or failed: the pause ends.
 */
extern int	settle_db_events_before_utility(Node *parsetree, bool *drop);
extern void settle_db_events_after_utility(int paused, bool was_drop);

#endif							/* SETTLE_LAUNCHER_H */
