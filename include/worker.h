/*
 * worker.h -- the settlement background worker.
 */
#ifndef SETTLE_WORKER_H
#define SETTLE_WORKER_H

extern char *settle_database;
extern bool settle_worker_enabled;

/* Register the worker (from _PG_init, while preloading). */
extern void settle_worker_register(void);

#endif							/* SETTLE_WORKER_H */
