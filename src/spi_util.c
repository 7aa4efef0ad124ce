/*
 * spi_util.c -- array parameters, kept plans, and the executor the cycle's
 * stages share (settle_spi_execute).
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"

#include "spi_util.h"

ArrayType *
settle_text_array(char **values, int n)
{
	Datum	   *d;
	bool	   *nulls;
	int			dims[1] = {n};
	int			lbs[1] = {1};
	int			i;

	if (n == 0)
		return construct_empty_array(TEXTOID);
	d = palloc(sizeof(Datum) * n);
	nulls = palloc(sizeof(bool) * n);
	for (i = 0; i < n; i++)
	{
		nulls[i] = values[i] == NULL;
		d[i] = nulls[i] ? (Datum) 0 : CStringGetTextDatum(values[i]);
	}
	return construct_md_array(d, nulls, 1, dims, lbs, TEXTOID, -1, false, TYPALIGN_INT);
}

ArrayType *
settle_int8_array(const int64 *values, int n)
{
	Datum	   *d;
	int			i;

	if (n == 0)
		return construct_empty_array(INT8OID);
	d = palloc(sizeof(Datum) * n);
	for (i = 0; i < n; i++)
		d[i] = Int64GetDatum(values[i]);
	return construct_array(d, n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE);
}

SPIPlanPtr
settle_keep_plan(const char *sql, int nargs, Oid *types, const char *what)
{
	SPIPlanPtr	plan = SPI_prepare(sql, nargs, types);

	if (plan == NULL)
		elog(ERROR, "could not prepare the %s statement: %s", what,
			 SPI_result_code_string(SPI_result));
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "could not keep the %s plan", what);
	return plan;
}

void
settle_spi_arg(SpiArgs *a, Oid type, Datum value)
{
	if (a->n >= SETTLE_MAX_SPI_ARGS)
		elog(ERROR, "too many SPI parameters");
	a->types[a->n] = type;
	a->values[a->n++] = value;
}

void
settle_spi_arg_int8s(SpiArgs *a, const int64 *values, int n)
{
	settle_spi_arg(a, INT8ARRAYOID, PointerGetDatum(settle_int8_array(values, n)));
}

void
settle_spi_arg_texts(SpiArgs *a, char **values, int n)
{
	settle_spi_arg(a, TEXTARRAYOID, PointerGetDatum(settle_text_array(values, n)));
}

/*
 * The plans kept by settle_spi_execute, by statement text: the cycle's
 * statements never change text (their values are parameters), so each is
 * planned once per process instead of once per cycle (planning the queue's
 * statement alone took 2-4 ms, more than executing it for a small queue).
 * PostgreSQL's plan cache re-plans them when a table, function or the
 * search_path they depend on changes.  Keyed by a hash of the text, texts
 * that share a hash chained; no limit: the texts come from a fixed set.
 */
typedef struct KeptPlan
{
	char	   *sql;
	SPIPlanPtr	plan;
	struct KeptPlan *next;
} KeptPlan;

typedef struct KeptPlanBucket
{
	uint32		hash;			/* the key */
	KeptPlan   *first;
} KeptPlanBucket;

static HTAB *kept_plans = NULL;

/* settle.cycle_keep_plans (registered with the cycle's settings, cycle_settings.c) */
bool		settle_keep_plans = true;

int
settle_spi_execute(const char *sql, int nargs, Oid *types, Datum *values, const char *nulls,
				   bool read_only, long count)
{
	uint32		hash;
	KeptPlanBucket *bucket;
	KeptPlan   *k;
	bool		found;

	if (!settle_keep_plans)
		return SPI_execute_with_args(sql, nargs, types, values, nulls, read_only, count);
	if (kept_plans == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(uint32);
		ctl.entrysize = sizeof(KeptPlanBucket);
		ctl.hcxt = TopMemoryContext;
		kept_plans = hash_create("settle kept plans", 64, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	hash = hash_bytes((const unsigned char *) sql, strlen(sql));
	bucket = hash_search(kept_plans, &hash, HASH_ENTER, &found);
	if (!found)
		bucket->first = NULL;
	for (k = bucket->first; k != NULL; k = k->next)
		if (strcmp(k->sql, sql) == 0)
			return SPI_execute_plan(k->plan, values, nulls, read_only, count);
	/* prepared before it is linked in: a failed prepare leaves nothing behind */
	k = MemoryContextAlloc(TopMemoryContext, sizeof(KeptPlan));
	k->plan = settle_keep_plan(sql, nargs, types, "settlement cycle");
	k->sql = MemoryContextStrdup(TopMemoryContext, sql);
	k->next = bucket->first;
	bucket->first = k;
	return SPI_execute_plan(k->plan, values, nulls, read_only, count);
}
