/*
 * version.c -- refuse to run against SQL objects of another release.
 *
 * Lifecycle (docs/OPERATIONS.md, "Upgrades").  The library is one file,
 * $libdir/settle.so, replaced when a new release is installed, while each
 * database keeps the SQL objects of the release it was created or last
 * updated to.  A new library running old SQL (or the reverse) would read and
 * write tables whose shape it does not know, so intake, the cycle and the
 * worker check that pg_extension.extversion is the release the library was
 * built as, and otherwise stop with SE152 and the fix: ALTER EXTENSION
 * settle UPDATE (a release may also declare older SQL it still runs:
 * COMPATIBLE_SQL in the Makefile).  The lookup is done once per backend (a worker or a
 * pooled connection keeps its library for its life, and ALTER EXTENSION
 * UPDATE runs the new release's SQL, so a match stays a match).
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/indexing.h"
#include "catalog/pg_extension.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/rel.h"

#include "settle_errors.h"
#include "version.h"

static Oid	checked_database = InvalidOid;

/*
 * Older releases whose SQL objects this library still runs correctly
 * (Makefile: COMPATIBLE_SQL, comma-separated; empty when the C code needs
 * the current schema).  Each release decides, and says so in CHANGELOG.md.
 */
static bool
compatible(const char *installed)
{
	const char *list = SETTLE_COMPATIBLE_SQL;
	size_t		len = strlen(installed);

	while (*list)
	{
		const char *end = strchr(list, ',');
		size_t		n = end ? (size_t) (end - list) : strlen(list);

		if (n == len && strncmp(list, installed, n) == 0)
			return true;
		if (!end)
			break;
		list = end + 1;
	}
	return false;
}

/* pg_extension.extversion of settle in this database, or NULL. */
static char *
installed_version(void)
{
	Relation	rel;
	SysScanDesc scan;
	ScanKeyData key;
	HeapTuple	tup;
	char	   *version = NULL;

	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber, F_NAMEEQ,
				CStringGetDatum("settle"));
	scan = systable_beginscan(rel, ExtensionNameIndexId, true, NULL, 1, &key);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
	{
		bool		isnull;
		Datum		d = heap_getattr(tup, Anum_pg_extension_extversion, RelationGetDescr(rel), &isnull);

		if (!isnull)
			version = text_to_cstring(DatumGetTextPP(d));
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return version;
}

bool
settle_version_matches(char **installed)
{
	char	   *v;

	if (checked_database == MyDatabaseId)
		return true;
	v = installed_version();
	if (installed)
		*installed = v;
	/* not installed (yet): nothing to compare; CREATE EXTENSION runs the matching script */
	if (v != NULL && strcmp(v, SETTLE_VERSION) != 0 && !compatible(v))
		return false;
	if (v != NULL)
		checked_database = MyDatabaseId;
	return true;
}

void
settle_check_version(void)
{
	char	   *installed = NULL;

	if (!settle_version_matches(&installed))
		ereport(ERROR,
				(errcode(ERRCODE_SETTLE_VERSION_MISMATCH),
				 errmsg("the settle library is release %s but this database has settle %s",
						SETTLE_VERSION, installed),
				 errdetail("The library and the SQL objects of the extension must be the same release."),
				 errhint("Run ALTER EXTENSION settle UPDATE in this database (docs/OPERATIONS.md, \"Upgrades\").")));
}

/*
 * The SQL release installed in this database, as SETTLE_SQL_1_0, ..._1_1,
 * ..._1_2 (major * 100 + minor), or 0 when settle is not installed.
 *
 * The library runs older releases' SQL (COMPATIBLE_SQL), so C that reads a
 * table or column a later release added asks which release this database
 * has, by name, instead of probing the catalog for the object.  Read from
 * pg_extension once per transaction: ALTER EXTENSION settle UPDATE under a
 * running worker takes effect at its next transaction.
 */
int
settle_sql_release(void)
{
	static LocalTransactionId cached_lxid = InvalidLocalTransactionId;
	static Oid	cached_db = InvalidOid;
	static int	cached = 0;
	char	   *v;
	int			major = 0,
				minor = 0;

	if (cached_lxid == MyProc->lxid && cached_db == MyDatabaseId &&
		cached_lxid != InvalidLocalTransactionId)
		return cached;
	v = installed_version();
	cached = (v != NULL && sscanf(v, "%d.%d", &major, &minor) == 2) ? major * 100 + minor : 0;
	cached_lxid = MyProc->lxid;
	cached_db = MyDatabaseId;
	return cached;
}
