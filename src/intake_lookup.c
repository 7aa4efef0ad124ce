/*
 * intake_lookup.c -- what intake reads: the caller, reference data, caches.
 *
 * Part of intake (src/intake.c).  Who is calling (a superuser or operator,
 * or a login mapped to one participant), and every account, participant,
 * currency and FX pair the rows mention: accounts and participants by
 * primary-key probes on every call (their status can change at any time),
 * currencies and FX pairs from per-backend caches emptied whenever those
 * tables change (src/refcache.c).  Reads are done as the owner of the
 * settle tables, so validation sees the counterparty's account that the
 * caller cannot read.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/acl.h"
#include "utils/fmgroids.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "intake.h"
#include "intake_int.h"
#include "refcache.h"
#include "spi_util.h"

static SPIPlanPtr cache_plan = NULL;
static SPIPlanPtr role_plan = NULL;
static Oid	settle_owner = InvalidOid;

/*
 * Currencies and FX pairs rarely change, so each backend keeps the ones it
 * has seen (in TopMemoryContext) and asks the database only about the ones
 * it has not, until a change to either table empties the caches
 * (settle_intake_init_caches); accounts and participants, whose status can change at any
 * time, are read on every call.
 */
static HTAB *currency_cache = NULL;
static HTAB *fxpair_cache = NULL;
static uint64 cache_generation = 0;

static void fill_caches(IntakeRow *rows, int n);

/* The caches, filled for these rows (after settle_intake_lookup_reference). */
HTAB *
settle_intake_currency_cache(void)
{
	return currency_cache;
}

HTAB *
settle_intake_fxpair_cache(void)
{
	return fxpair_cache;
}

/* An open table with its primary key index (one text column), for probes. */
typedef struct KeyedTable
{
	Relation	rel;
	Relation	pkey;
	Snapshot	snapshot;
} KeyedTable;

/* Owner of the settle tables (the role that created the extension). */
Oid
settle_intake_tables_owner(void)
{
	if (!OidIsValid(settle_owner))
	{
		Oid			relid = get_relname_relid("payment", get_namespace_oid("settle", false));
		HeapTuple	tup;

		if (!OidIsValid(relid))
			elog(ERROR, "settle.payment does not exist");
		tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
		if (!HeapTupleIsValid(tup))
			elog(ERROR, "cache lookup failed for relation %u", relid);
		settle_owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
		ReleaseSysCache(tup);
	}
	return settle_owner;
}

/* Superusers and settle_operator members may debit any account; others only their participant's. */
void
settle_intake_identify_caller(Oid caller_oid, IntakeCaller *caller)
{
	Oid			operator_role = get_role_oid("settle_operator", true);
	Oid			types[2] = {OIDOID, TEXTOID};
	Datum		values[2];

	caller->participant = NULL;
	caller->name = GetUserNameFromId(caller_oid, false);
	caller->restricted = !superuser_arg(caller_oid) &&
		!(OidIsValid(operator_role) && has_privs_of_role(caller_oid, operator_role));
	if (!caller->restricted)
		return;
	if (role_plan == NULL)
		role_plan = settle_keep_plan("SELECT participant_id FROM settle.participant_role"
									 " WHERE role_oid = $1 AND role_name = $2::pg_catalog.name",
									 2, types, "caller mapping");
	/* by OID and name: a role dropped and created again under the same name is not mapped */
	values[0] = ObjectIdGetDatum(caller_oid);
	values[1] = CStringGetTextDatum(caller->name);
	if (SPI_execute_plan(role_plan, values, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "caller mapping lookup failed");
	if (SPI_processed == 1)
		caller->participant = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
}

/* A string-keyed hash table in the current memory context. */
HTAB *
settle_intake_make_table(const char *name, Size entrysize, long n)
{
	HASHCTL		ctl;

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = KEY_BYTES;
	ctl.entrysize = entrysize;
	ctl.hcxt = CurrentMemoryContext;
	return hash_create(name, Max(n, 16), &ctl, HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
}

/* Copy a key into a fixed-size hash key buffer (keys are <= 128 bytes by now). */
void
settle_intake_set_key(char *dst, const char *src)
{
	strlcpy(dst, src, KEY_BYTES);
}

/*
 * Create the backend-lifetime caches on first use, and again whenever
 * settle.currency, settle.fx_rate or settle.payment (its owner) changed or
 * was dropped since they were filled (src/refcache.c).  Called before any
 * of them is read in a call, so no one holds an entry of the old ones.
 */
void
settle_intake_init_caches(void)
{
	MemoryContext old;

	if (currency_cache != NULL && settle_refcache_valid(&cache_generation))
		return;
	(void) settle_refcache_valid(&cache_generation);
	if (currency_cache != NULL)
	{
		hash_destroy(currency_cache);
		hash_destroy(fxpair_cache);
	}
	settle_owner = InvalidOid;
	settle_refcache_watch("currency");
	settle_refcache_watch("fx_rate");
	settle_refcache_watch("payment");
	old = MemoryContextSwitchTo(TopMemoryContext);
	currency_cache = settle_intake_make_table("settle currency cache", sizeof(NameInfo), 64);
	fxpair_cache = settle_intake_make_table("settle fx pair cache", sizeof(NameInfo), 64);
	MemoryContextSwitchTo(old);
}

/* Fetch into the caches the currencies and FX pairs they do not hold yet. */
static void
fill_caches(IntakeRow *rows, int n)
{
	char	  **cur = palloc(sizeof(char *) * 2 * n);
	char	  **fx = palloc(sizeof(char *) * 2 * n);
	int			ncur = 0,
				nfx = 0;
	Datum		values[2];
	int			i;
	uint64		r;
	char		key[KEY_BYTES];

	for (i = 0; i < n; i++)
	{
		int			k;

		if (!rows[i].syntax_ok)
			continue;
		for (k = 0; k < 2; k++)
		{
			settle_intake_set_key(key, k == 0 ? rows[i].source_currency : rows[i].destination_currency);
			if (hash_search(currency_cache, key, HASH_FIND, NULL) == NULL)
				cur[ncur++] = k == 0 ? rows[i].source_currency : rows[i].destination_currency;
		}
		if (strcmp(rows[i].source_currency, rows[i].destination_currency) != 0)
		{
			char		ab[KEY_BYTES];

			/* by direction: what a source amount converts to differs */
			snprintf(ab, sizeof(ab), "%s%s", rows[i].source_currency, rows[i].destination_currency);
			if (hash_search(fxpair_cache, ab, HASH_FIND, NULL) == NULL)
				fx[nfx++] = pstrdup(ab);
		}
	}
	if (ncur == 0 && nfx == 0)
		return;

	if (cache_plan == NULL)
	{
		Oid			types[2] = {TEXTARRAYOID, TEXTARRAYOID};

		cache_plan = settle_keep_plan(
									  "SELECT 'c'::text, c.code, c.exponent::int, 0::bigint, 0::bigint"
									  "  FROM settle.currency c WHERE c.code = ANY ($1)"
									  " UNION ALL "
									  "SELECT 'f', x, 0, b.min_amount, b.max_amount"
									  "  FROM unnest($2::text[]) x, settle._fx_bounds(left(x, 3), right(x, 3)) b"
									  " WHERE b.min_amount IS NOT NULL",
									  2, types, "currency and FX pair lookup");
	}
	values[0] = PointerGetDatum(settle_text_array(cur, ncur));
	values[1] = PointerGetDatum(settle_text_array(fx, nfx));
	if (SPI_execute_plan(cache_plan, values, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "currency and FX pair lookup failed");
	for (r = 0; r < SPI_processed; r++)
	{
		HeapTuple	tup = SPI_tuptable->vals[r];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		char	   *kind = SPI_getvalue(tup, desc, 1);
		NameInfo   *e;
		bool		found;
		bool		isnull;

		settle_intake_set_key(key, SPI_getvalue(tup, desc, 2));
		e = hash_search(kind[0] == 'c' ? currency_cache : fxpair_cache, key, HASH_ENTER, &found);
		e->number = atoi(SPI_getvalue(tup, desc, 3));
		e->min_amount = DatumGetInt64(SPI_getbinval(tup, desc, 4, &isnull));
		e->max_amount = DatumGetInt64(SPI_getbinval(tup, desc, 5, &isnull));
	}
}

static void
keyed_open(KeyedTable *t, const char *relname)
{
	Oid			relid = get_relname_relid(relname, get_namespace_oid("settle", false));

	if (!OidIsValid(relid))
		elog(ERROR, "settle.%s does not exist", relname);
	t->rel = table_open(relid, AccessShareLock);
	t->pkey = index_open(RelationGetPrimaryKeyIndex(t->rel), AccessShareLock);
	t->snapshot = GetActiveSnapshot();
}

static void
keyed_close(KeyedTable *t)
{
	index_close(t->pkey, AccessShareLock);
	table_close(t->rel, AccessShareLock);
}

/*
 * The row with this primary key, as the statement's snapshot sees it
 * (palloc'd copy), or NULL.  The key is compared in the index's collation.
 */
static HeapTuple
keyed_fetch(KeyedTable *t, const char *key)
{
	ScanKeyData skey;
	SysScanDesc scan;
	HeapTuple	tup;

	ScanKeyInit(&skey, 1, BTEqualStrategyNumber, F_TEXTEQ, CStringGetTextDatum(key));
	skey.sk_collation = t->pkey->rd_indcollation[0];
	scan = systable_beginscan(t->rel, RelationGetRelid(t->pkey), true, t->snapshot, 1, &skey);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
		tup = heap_copytuple(tup);
	systable_endscan(scan);
	return tup;
}

/* A text column of a fetched row, by name. */
static char *
keyed_text(KeyedTable *t, HeapTuple tup, const char *column)
{
	AttrNumber	attnum = get_attnum(RelationGetRelid(t->rel), column);
	bool		isnull;
	Datum		d;

	if (attnum == InvalidAttrNumber)
		elog(ERROR, "column %s of %s does not exist", column, RelationGetRelationName(t->rel));
	d = heap_getattr(tup, attnum, RelationGetDescr(t->rel), &isnull);
	return isnull ? NULL : TextDatumGetCString(d);
}

/* A participant's status (and whether it is the operator), NULL if unknown. */
static char *
participant_status(KeyedTable *participant, const char *participant_id, bool *is_operator)
{
	HeapTuple	tup = keyed_fetch(participant, participant_id);
	AttrNumber	attnum;
	bool		isnull;

	if (tup == NULL)
		return NULL;
	attnum = get_attnum(RelationGetRelid(participant->rel), "is_operator");
	*is_operator = DatumGetBool(heap_getattr(tup, attnum, RelationGetDescr(participant->rel), &isnull));
	return keyed_text(participant, tup, "status");
}

/*
 * Every account and counterparty the rows name (each once), and their
 * participants' status: primary-key probes through the indexes with the
 * statement's snapshot, a few microseconds each, where a query would spend
 * most of a single-row call starting an executor.  Currencies and FX pairs
 * come from the caches.
 */
void
settle_intake_lookup_reference(IntakeRow *rows, int n, HTAB *accounts, HTAB *participants)
{
	HTAB	   *seen = settle_intake_make_table("settle intake names", sizeof(KeySeen), 3 * n);
	KeyedTable account;
	KeyedTable participant;
	char		key[KEY_BYTES];
	int			i;

	fill_caches(rows, n);
	keyed_open(&account, "account");
	keyed_open(&participant, "participant");
	for (i = 0; i < n; i++)
	{
		int			k;
		bool		found;

		if (!rows[i].syntax_ok)
			continue;
		CHECK_FOR_INTERRUPTS();
		for (k = 0; k < 2; k++)
		{
			const char *id = k == 0 ? rows[i].source_account : rows[i].destination_account;
			HeapTuple	tup;
			char	   *kind;
			char	   *owner;
			char	   *pstatus;
			bool		is_operator;
			AccountInfo *a;

			settle_intake_set_key(key, id);
			hash_search(seen, key, HASH_ENTER, &found);
			if (found)
				continue;
			tup = keyed_fetch(&account, id);
			if (tup == NULL)
				continue;
			kind = keyed_text(&account, tup, "kind");
			if (strcmp(kind, "customer") != 0)
				continue;		/* the operator's accounts are not for payments */
			owner = keyed_text(&account, tup, "participant_id");
			pstatus = participant_status(&participant, owner, &is_operator);
			if (pstatus == NULL)
				continue;		/* cannot happen: foreign key */
			a = hash_search(accounts, key, HASH_ENTER, &found);
			settle_intake_set_key(a->participant_id, owner);
			strlcpy(a->currency, keyed_text(&account, tup, "currency"), sizeof(a->currency));
			strlcpy(a->status, keyed_text(&account, tup, "status"), sizeof(a->status));
			strlcpy(a->participant_status, pstatus, sizeof(a->participant_status));
		}
		/* participants and accounts share the set of names; the prefix keeps them apart */
		snprintf(key, sizeof(key), "\x01%s", rows[i].counterparty_id);
		hash_search(seen, key, HASH_ENTER, &found);
		if (!found)
		{
			bool		is_operator;
			char	   *pstatus = participant_status(&participant, rows[i].counterparty_id, &is_operator);

			if (pstatus != NULL && !is_operator)
			{
				NameInfo   *e;

				settle_intake_set_key(key, rows[i].counterparty_id);
				e = hash_search(participants, key, HASH_ENTER, &found);
				strlcpy(e->status, pstatus, sizeof(e->status));
			}
		}
	}
	keyed_close(&participant);
	keyed_close(&account);
	hash_destroy(seen);
}
