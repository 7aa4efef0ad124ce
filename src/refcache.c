/*
 * refcache.c -- keeps the per-backend caches of reference data honest.
 *
 * Intake (currencies, FX pairs and the bounds of what a pair converts, the
 * owner of the tables) and settle.to_major (currency exponents) keep what
 * they read for the backend's life, which in a pooled connection can be
 * days.  Any change must reach them, as pg_cron's job cache does:
 *
 *   - a statement trigger on settle.currency and settle.fx_rate
 *     (settle._reference_changed) sends a relcache invalidation for the
 *     table: other backends receive it at their next transaction, this
 *     backend at its next command;
 *   - DROP EXTENSION drops the tables, which invalidates them too, and
 *     ALTER TABLE ... OWNER does the same for settle.payment;
 *   - a relcache callback, registered once per backend, counts every
 *     invalidation of a watched table (or of every relation) in a
 *     generation number; a cache compares the generation it was built at
 *     with the current one before use and starts again when they differ.
 *
 * The callback only counts: it may run in the middle of a lookup, so it
 * never frees what a caller may be reading.
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "nodes/pg_list.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "refcache.h"

PG_FUNCTION_INFO_V1(settle_reference_changed);

static uint64 generation = 1;
static List *watched = NIL;		/* OIDs, in TopMemoryContext */

/*
 * The relcache callback (hooks.c registers it): count an invalidation of a
 * watched table, or of every relation.
 */
void
settle_refcache_relation_changed(Datum arg, Oid relid)
{
	if (!OidIsValid(relid) || list_member_oid(watched, relid))
		generation++;
}

bool
settle_refcache_valid(uint64 *built_at)
{
	if (*built_at == generation)
		return true;
	*built_at = generation;
	return false;
}

Oid
settle_refcache_watch(const char *relname)
{
	Oid			nsp = get_namespace_oid("settle", false);
	Oid			relid = get_relname_relid(relname, nsp);

	if (!OidIsValid(relid))
		elog(ERROR, "settle.%s does not exist", relname);
	if (!list_member_oid(watched, relid))
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		watched = lappend_oid(watched, relid);
		MemoryContextSwitchTo(old);
	}
	return relid;
}

/* Statement trigger: the reference table changed; every backend's caches of it are stale. */
Datum
settle_reference_changed(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "settle._reference_changed() must be called as a trigger");
	CacheInvalidateRelcache(trigdata->tg_relation);
	return PointerGetDatum(NULL);
}
