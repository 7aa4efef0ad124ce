/*
 * refcache.h -- invalidation of the per-backend caches of reference data
 * (src/refcache.c).
 */
#ifndef SETTLE_REFCACHE_H
#define SETTLE_REFCACHE_H

#include "postgres.h"

/* The relcache callback, registered by hooks.c. */
extern void settle_refcache_relation_changed(Datum arg, Oid relid);

/*
 * Whether a cache built at *generation is still good; if not, *generation is
 * moved to the current one and the caller must rebuild.  Call it where a
 * cache is about to be used, never from inside a callback.
 */
extern bool settle_refcache_valid(uint64 *generation);

/* Watch settle.<relname> (its changes and its drop) from now on; returns its OID. */
extern Oid	settle_refcache_watch(const char *relname);

#endif							/* SETTLE_REFCACHE_H */
