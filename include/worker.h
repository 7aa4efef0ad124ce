/*
 * worker.h -- the settlement background worker (one per database, started
 * by the launcher: launcher.h).
 */
#ifndef SETTLE_WORKER_H
#define SETTLE_WORKER_H

/* loaded through shared_preload_libraries: the launcher is registered */
extern bool settle_preloaded;

#endif							/* SETTLE_WORKER_H */
