/*
 * worker.h -- the settlement background worker.
 */
#ifndef SETTLE_WORKER_H
#define SETTLE_WORKER_H

/* settle.database: the databases the launcher may serve (comma-separated; empty: all) */
extern char *settle_database;
/* loaded through shared_preload_libraries: the worker is registered */
extern bool settle_preloaded;
extern bool settle_worker_enabled;

/* Define the worker's settings (from _PG_init). */
extern void settle_worker_define_settings(void);

#endif							/* SETTLE_WORKER_H */
