/*
 * origin.c -- a logical copy of a ledger starts fenced (issue #29, item 2).
 *
 * The install script records in settle.origin where the ledger was created:
 * the cluster's system identifier and the database's oid (src/sql/
 * 05_origin.sql).  The table is dumped with the data, so a database restored
 * from pg_dump, into another database of the same server or into another
 * server, holds the original's row beside the one its own CREATE EXTENSION
 * wrote.  Such a database is a copy: fenced (fence.c: no cycle, intake, rail
 * traffic or calendar job, SE153) until an operator checks it and releases
 * it with settle_release_copy(), which records a 'released' row for this
 * place.  A physical copy keeps the original's identity (a standby promoted
 * by a fail-over is the same ledger): settle.fence covers those.
 *
 * The answer is looked up with a query, in a transaction; a backend keeps
 * "not a copy" for a second (intake asks on every call, and a pg_restore
 * loads the original's row after its CREATE EXTENSION has committed), and
 * asks again at every call while it is a copy (a release elsewhere counts
 * at once).
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "origin.h"
#include "spi_util.h"
#include "version.h"

/* how long a backend keeps "not a copy" */
#define HOME_KEEP_MS 1000

static bool known = false;
static bool is_copy = false;
static TimestampTz known_at = 0;
static char why_buf[512];

bool
settle_origin_stale(void)
{
	return !known || is_copy ||
		TimestampDifferenceExceeds(known_at, GetCurrentTimestamp(), HOME_KEEP_MS);
}

bool
settle_origin_copy(const char **why)
{
	SpiArgs		a = {0};
	int			ret;

	if (!settle_origin_stale() || !IsTransactionState())
	{
		if (is_copy)
			*why = why_buf;
		return is_copy;
	}
	/* the SQL of 1.0 and 1.1 has no settle.origin: never a copy */
	if (settle_sql_release() < SETTLE_SQL_1_2)
	{
		known = true;
		is_copy = false;
		known_at = GetCurrentTimestamp();
		return false;
	}
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	settle_spi_arg(&a, INT8OID, Int64GetDatum((int64) GetSystemIdentifier()));
	settle_spi_arg(&a, OIDOID, ObjectIdGetDatum(MyDatabaseId));
	ret = SPI_execute_with_args("SELECT o.database_name::text, o.system_identifier::text, o.database_oid::text"
								"  FROM settle.origin o"
								" WHERE o.kind OPERATOR(pg_catalog.=) 'created'"
								"   AND (o.system_identifier OPERATOR(pg_catalog.<>) $1 OR o.database_oid OPERATOR(pg_catalog.<>) $2)"
								"   AND NOT EXISTS (SELECT 1 FROM settle.origin r"
								"                    WHERE r.kind OPERATOR(pg_catalog.=) 'released'"
								"                      AND r.system_identifier OPERATOR(pg_catalog.=) $1"
								"                      AND r.database_oid OPERATOR(pg_catalog.=) $2)"
								" ORDER BY o.recorded_at LIMIT 1",
								a.n, a.types, a.values, NULL, true, 1);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "reading settle.origin failed");
	is_copy = SPI_processed > 0;
	if (is_copy)
		snprintf(why_buf, sizeof(why_buf),
				 "this database is a copy of the ledger created in database \"%s\" (oid %s) of the cluster with system identifier %s, "
				 "restored here (database oid %u, system identifier " UINT64_FORMAT ") from a dump; "
				 "an operator releases it with settle_release_copy(reason)",
				 SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1),
				 SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3),
				 SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2),
				 MyDatabaseId, GetSystemIdentifier());
	SPI_finish();
	known = true;
	known_at = GetCurrentTimestamp();
	if (is_copy)
		*why = why_buf;
	return is_copy;
}
