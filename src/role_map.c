/*
 * role_map.c -- a dropped login loses its participant mapping.
 *
 * Part of security (src/sql/90_security.sql).  settle.participant_role maps
 * a login to a participant by the role's OID, so a role dropped and created
 * again under the same name inherits nothing.  Called by the utility hook
 * (hooks.c) after the statement ran, it also removes the
 * mapping of a role DROP ROLE removes, in the same transaction, when the
 * database it runs in has settle (roles are cluster-wide: mappings left in
 * other databases are removed by settle.forget_dropped_roles(), which
 * settle_map_role() and the end-of-day job call, and never match a new role).
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_class.h"
#include "catalog/namespace.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "tcop/utility.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "guard.h"
#include "role_map.h"

static void forget_dropped_roles(void);
static Oid	rel_owner(Oid relid);

/* The owner of a relation. */
static Oid
rel_owner(Oid relid)
{
	HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	Oid			owner;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);
	return owner;
}

/* After a utility statement ran (hooks.c): a DROP ROLE's roles lose their mappings. */
void
settle_role_map_after_utility(bool was_drop_role)
{
	if (was_drop_role && IsTransactionState() && !RecoveryInProgress() &&
		OidIsValid(get_extension_oid("settle", true)))
		forget_dropped_roles();
}

/* settle.forget_dropped_roles(), as the owner of the mapping table. */
static void
forget_dropped_roles(void)
{
	Oid			nsp = get_namespace_oid("settle", true);
	Oid			relid = OidIsValid(nsp) ? get_relname_relid("participant_role", nsp) : InvalidOid;
	Oid			save_userid;
	int			save_sec_context;
	int			guc_level;

	if (!OidIsValid(relid))
		return;
	CommandCounterIncrement();	/* the roles' deletion is visible */
	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(rel_owner(relid), save_sec_context | SECURITY_LOCAL_USERID_CHANGE);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	guc_level = settle_pin_search_path();
	if (SPI_execute("SELECT settle.forget_dropped_roles()", false, 0) != SPI_OK_SELECT)
		elog(ERROR, "removing the mappings of dropped roles failed");
	settle_unpin_search_path(guc_level);
	SPI_finish();
	SetUserIdAndSecContext(save_userid, save_sec_context);
}
