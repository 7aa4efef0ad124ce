/*
 * intake.c -- exactly-once intake: validate payment instructions and queue them.
 *
 * First stage of the pipeline (intake -> queue -> cycle -> settle -> ledger).
 * settle_submit (one payment) and settle_submit_bulk (many) share this code:
 *
 *   1. syntax rules that need no table (nulls, identifiers, currency codes,
 *      amount form, priority, deadline), in parameter order;
 *   2. every account and counterparty the rows mention is read by a
 *      primary-key probe (currencies and FX pairs from per-backend caches,
 *      emptied whenever those tables change: src/refcache.c), and the
 *      reference rules run in C, including whether an FX payment's credit
 *      can be posted at today's rate;
 *   3. one INSERT ... ON CONFLICT DO NOTHING writes all valid rows and their
 *      'submitted' events.  The unique indexes on idempotency_key and
 *      transaction_id make concurrent repeats collapse to one row: a second
 *      inserter waits for the first and then finds the conflict;
 *   4. rows that were not inserted, or that failed a reference rule, are
 *      looked up by idempotency key: the same content is a replay (the
 *      original payment is returned, nothing written), different content is
 *      refused with SE060, and a key that is absent means the conflict was on
 *      transaction_id (SE061).  A replay wins over a reference rule, so a
 *      client retrying after its account was frozen still gets its original
 *      answer.
 *
 * Rows are inserted in idempotency-key order so that two bulk calls sharing
 * keys wait on each other in the same order rather than deadlocking.
 *
 * Who may submit: the functions run with the caller's rights (so EXECUTE is
 * granted to settle_submitter only), note the caller, and do their table work
 * as the owner of the settle tables (like PostgreSQL's own RI triggers), so
 * the caller needs no table privileges and row-level security does not hide
 * the counterparty's account from validation.  A caller that is neither a
 * superuser nor a member of settle_operator must be mapped to a participant
 * (settle.participant_role) and may only debit that participant's accounts.
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

#include "durability.h"
#include "intake.h"
#include "refcache.h"
#include "spi_util.h"
#include "settle_errors.h"
#include "fence.h"
#include "version.h"
#include "worker_state.h"

/* room for a participant and a key side by side (scoped_key) */
#define KEY_BYTES (2 * SETTLE_MAX_IDENTIFIER + 16)

/* What the lookup query found about one account. */
typedef struct AccountInfo
{
	char		key[KEY_BYTES];
	char		participant_id[KEY_BYTES];
	char		currency[4];
	char		status[16];
	char		participant_status[16];
} AccountInfo;

/* A name seen in the rows: currency exponent, participant status, FX pair. */
typedef struct NameInfo
{
	char		key[KEY_BYTES];
	int			number;
	char		status[16];
	/* FX pair (source, destination): source amounts whose credit can be posted */
	int64		min_amount;
	int64		max_amount;
} NameInfo;

/* First row in this call that used a key. */
typedef struct KeySeen
{
	char		key[KEY_BYTES];
	int			row;
} KeySeen;

static SPIPlanPtr cache_plan = NULL;
static SPIPlanPtr role_plan = NULL;
static Oid	settle_owner = InvalidOid;

/* The participant the caller submits for; NULL when it may use any account. */
static char *caller_participant = NULL;
static bool caller_restricted = false;
static char *caller_name = NULL;
static SPIPlanPtr insert_plan = NULL;
static SPIPlanPtr insert_one_plan = NULL;

/*
 * The intake insert, with its rows' source (%s: a SELECT of 11 columns,
 * then created_at and updated_at).  Conflicting keys are skipped, to be
 * resolved as replays or conflicts; each inserted payment gets its event.
 */
/*
 * Arrays side by side as rows: set-returning functions in a target list run
 * in step without materializing anything; FROM unnest($1, ..., $11) stores
 * each array's rows first (8 times slower for 10,000 rows here).
 */
#define UNNEST_11 \
	"unnest($1), unnest($2), unnest($3), unnest($4), unnest($5), unnest($6)," \
	" unnest($7), unnest($8), unnest($9), unnest($10), unnest($11)"

#define INSERT_SQL \
	"WITH ins AS (" \
	" INSERT INTO settle.payment (transaction_id, idempotency_key, source_currency," \
	"   destination_currency, source_account, destination_account, counterparty_id," \
	"   source_participant, amount, priority, deadline, created_at, updated_at)" \
	" %s" \
	" ON CONFLICT DO NOTHING" \
	" RETURNING payment_id, idempotency_key, created_at, source_participant)," \
	" ev AS (" \
	" INSERT INTO settle.event (occurred_at, entity, entity_id, event_type, to_status)" \
	" SELECT created_at, 'payment', payment_id::text, 'submitted', 'queued' FROM ins)" \
	"SELECT payment_id, idempotency_key, created_at, source_participant FROM ins"
static SPIPlanPtr existing_plan = NULL;

static Oid	tables_owner(void);
static void identify_caller(Oid caller);
static void check_syntax(IntakeRow *row);
static bool check_field(IntakeRow *row, const char *field, const char *value, bool is_key);
static bool check_currency_field(IntakeRow *row, const char *field, const char *value);
static HTAB *make_table(const char *name, Size entrysize, long n);
static void init_caches(void);
static void fill_caches(IntakeRow *rows, int n);
static void lookup_reference(IntakeRow *rows, int n, HTAB *accounts, HTAB *participants);
static void check_reference(IntakeRow *row, HTAB *accounts, HTAB *currencies,
							HTAB *participants, HTAB *fxpairs);
static bool destination_fits(const IntakeRow *row, const AccountInfo *dst);
static void mark_duplicates(IntakeRow *rows, int n);
static void set_scope(IntakeRow *row, HTAB *accounts);
static void scoped_key(char *dst, const char *scope, const char *key);
static void insert_rows(IntakeRow *rows, int n, MemoryContext outer);
static bool resolve_existing(IntakeRow *rows, int n, MemoryContext outer);
static int	compare_rows_by_key(const void *a, const void *b);
static bool same_content(const IntakeRow *a, const IntakeRow *b);
static bool same_text(const char *a, const char *b);

void
intake_refuse(IntakeRow *row, int sqlerrcode, char *message, char *detail, char *hint)
{
	if (row->sqlerrcode != 0)
		return;
	row->sqlerrcode = sqlerrcode;
	row->message = message;
	row->detail = detail;
	row->hint = hint;
	row->insert = false;
}

int
settle_field_refusal(const char *field, FieldResult r, size_t pos, const char *value,
					 bool is_key, char **message, char **detail, char **hint)
{
	*detail = NULL;
	*hint = NULL;
	switch (r)
	{
		case FIELD_OK:
			return 0;
		case FIELD_EMPTY:
			*message = psprintf("%s must not be empty", field);
			return ERRCODE_SETTLE_EMPTY_IDENTIFIER;
		case FIELD_TOO_LONG:
			*message = psprintf("%s is longer than %d bytes", field, SETTLE_MAX_IDENTIFIER);
			*detail = psprintf("It has %zu bytes.", strlen(value));
			return ERRCODE_SETTLE_IDENTIFIER_TOO_LONG;
		case FIELD_BAD_CHARS:
			*message = psprintf("%s contains a character that is not allowed", field);
			*detail = psprintf("Byte %zu is 0x%02x.", pos + 1, (unsigned char) value[pos]);
			*hint = pstrdup(is_key ? "Use printable ASCII without spaces."
							: "Use letters, digits, '_', '.' and '-', starting with a letter or digit.");
			return ERRCODE_SETTLE_IDENTIFIER_CHARS;
	}
	return 0;
}

void
settle_raise_field(const char *field, FieldResult r, size_t pos, const char *value)
{
	char	   *message;
	char	   *detail;
	char	   *hint;
	int			code = settle_field_refusal(field, r, pos, value, false, &message, &detail, &hint);

	if (code != 0)
		ereport(ERROR,
				(errcode(code),
				 errmsg_internal("%s", message),
				 detail ? errdetail_internal("%s", detail) : 0,
				 hint ? errhint("%s", hint) : 0));
}

int
settle_amount_refusal(const char *field, AmountResult r, const char *currency,
					  int exponent, char **message, char **detail, char **hint)
{
	*detail = NULL;
	*hint = NULL;
	switch (r)
	{
		case AMOUNT_OK:
			return 0;
		case AMOUNT_SYNTAX:
			*message = psprintf("%s is not a decimal number", field);
			return ERRCODE_SETTLE_AMOUNT_SYNTAX;
		case AMOUNT_NOT_FINITE:
			*message = psprintf("%s must be a finite number", field);
			*detail = pstrdup("NaN and Infinity are not amounts.");
			return ERRCODE_SETTLE_AMOUNT_NOT_FINITE;
		case AMOUNT_NOT_POSITIVE:
			*message = psprintf("%s must be greater than zero", field);
			return ERRCODE_SETTLE_AMOUNT_NOT_POSITIVE;
		case AMOUNT_TOO_MANY_DECIMALS:
			*message = psprintf("%s has more decimals than %s allows", field, currency);
			*detail = psprintf("%s has %d decimal places.", currency, exponent);
			return ERRCODE_SETTLE_AMOUNT_DECIMALS;
		case AMOUNT_ABOVE_BOUND:
			{
				char		buf[40];

				settle_format_amount(SETTLE_MAX_AMOUNT_MINOR, exponent, buf);
				*message = psprintf("%s is above the largest amount accepted", field);
				*detail = psprintf("The largest %s amount is %s.", currency, buf);
				*hint = pstrdup("Split the payment.");
				return ERRCODE_SETTLE_AMOUNT_ABOVE_BOUND;
			}
	}
	return 0;
}

/* Refuse a field that is NULL or breaks its identifier rule; true if fine. */
static bool
check_field(IntakeRow *row, const char *field, const char *value, bool is_key)
{
	FieldResult r;
	size_t		pos;
	char	   *message;
	char	   *detail;
	char	   *hint;
	int			code;

	if (value == NULL)
	{
		intake_refuse(row, ERRCODE_SETTLE_NULL_FIELD,
					  psprintf("%s must not be null", field), NULL, NULL);
		return false;
	}
	r = is_key ? settle_check_key(value, strlen(value), &pos) : settle_check_name(value, strlen(value), &pos);
	code = settle_field_refusal(field, r, pos, value, is_key, &message, &detail, &hint);
	if (code == 0)
		return true;
	intake_refuse(row, code, message, detail, hint);
	return false;
}

/* Refuse a currency code that is NULL or not three upper-case letters. */
static bool
check_currency_field(IntakeRow *row, const char *field, const char *value)
{
	if (value == NULL)
	{
		intake_refuse(row, ERRCODE_SETTLE_NULL_FIELD,
					  psprintf("%s must not be null", field), NULL, NULL);
		return false;
	}
	if (!settle_check_currency_code(value, strlen(value)))
	{
		intake_refuse(row, ERRCODE_SETTLE_CURRENCY_SYNTAX,
					  psprintf("%s must be an ISO 4217 code of three upper-case letters", field),
					  strlen(value) <= 16 ? psprintf("%s is \"%s\".", field, value) : NULL,
					  NULL);
		return false;
	}
	return true;
}

/* Owner of the settle tables (the role that created the extension). */
static Oid
tables_owner(void)
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
static void
identify_caller(Oid caller)
{
	Oid			operator_role = get_role_oid("settle_operator", true);
	Oid			types[2] = {OIDOID, TEXTOID};
	Datum		values[2];

	caller_participant = NULL;
	caller_name = GetUserNameFromId(caller, false);
	caller_restricted = !superuser_arg(caller) &&
		!(OidIsValid(operator_role) && has_privs_of_role(caller, operator_role));
	if (!caller_restricted)
		return;
	if (role_plan == NULL)
		role_plan = settle_keep_plan("SELECT participant_id FROM settle.participant_role"
									 " WHERE role_oid = $1 AND role_name = $2::pg_catalog.name",
									 2, types, "caller mapping");
	/* by OID and name: a role dropped and created again under the same name is not mapped */
	values[0] = ObjectIdGetDatum(caller);
	values[1] = CStringGetTextDatum(caller_name);
	if (SPI_execute_plan(role_plan, values, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "caller mapping lookup failed");
	if (SPI_processed == 1)
		caller_participant = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
}

/* The rules that need no table, in parameter order. */
static void
check_syntax(IntakeRow *row)
{
	row->syntax_ok = false;
	if (!check_field(row, "transaction_id", row->transaction_id, true))
		return;
	if (row->amount == NULL)
	{
		intake_refuse(row, ERRCODE_SETTLE_NULL_FIELD, pstrdup("amount must not be null"), NULL, NULL);
		return;
	}
	else
	{
		int64		minor;
		AmountResult r = settle_parse_amount(row->amount, SETTLE_MAX_EXPONENT, &minor);

		/* decimals and bound depend on the currency: judged later */
		if (r == AMOUNT_SYNTAX || r == AMOUNT_NOT_FINITE || r == AMOUNT_NOT_POSITIVE)
		{
			char	   *m,
					   *d,
					   *h;
			int			code = settle_amount_refusal("amount", r, "", 0, &m, &d, &h);

			intake_refuse(row, code, m, d, h);
			return;
		}
	}
	if (!check_currency_field(row, "source_currency", row->source_currency) ||
		!check_currency_field(row, "destination_currency", row->destination_currency) ||
		!check_field(row, "source_account", row->source_account, false) ||
		!check_field(row, "destination_account", row->destination_account, false) ||
		!check_field(row, "counterparty_id", row->counterparty_id, false) ||
		!check_field(row, "idempotency_key", row->idempotency_key, true))
		return;
	if (row->priority_null)
	{
		intake_refuse(row, ERRCODE_SETTLE_NULL_FIELD, pstrdup("priority must not be null"),
					  NULL, pstrdup("Leave it out for the default, 5."));
		return;
	}
	if (row->priority < 1 || row->priority > 9)
	{
		intake_refuse(row, ERRCODE_SETTLE_PRIORITY_RANGE,
					  pstrdup("priority must be between 1 and 9"),
					  psprintf("priority is %d.", row->priority),
					  pstrdup("9 is the most urgent; the default is 5."));
		return;
	}
	row->syntax_ok = true;
	/*
	 * The only rule that depends on the time: refused, but the row still
	 * goes through the key lookup, so that a late retry of a payment that
	 * was accepted (and has settled or expired since) gets its original
	 * answer rather than a refusal that reads as "never accepted".
	 */
	if (row->has_deadline)
	{
		if (TIMESTAMP_NOT_FINITE(row->deadline) ||
			row->deadline <= GetCurrentTimestamp())
			intake_refuse(row, ERRCODE_SETTLE_DEADLINE_PAST,
						  pstrdup("deadline must be a finite time in the future"),
						  psprintf("deadline is %s.", timestamptz_to_str(row->deadline)),
						  pstrdup("Leave deadline null to settle as soon as liquidity allows."));
	}
}

/* A string-keyed hash table in the current memory context. */
static HTAB *
make_table(const char *name, Size entrysize, long n)
{
	HASHCTL		ctl;

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = KEY_BYTES;
	ctl.entrysize = entrysize;
	ctl.hcxt = CurrentMemoryContext;
	return hash_create(name, Max(n, 16), &ctl, HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
}

/* Copy a key into a fixed-size hash key buffer (keys are <= 128 bytes by now). */
static void
set_key(char *dst, const char *src)
{
	strlcpy(dst, src, KEY_BYTES);
}

/*
 * Currencies and FX pairs rarely change, so each backend keeps the ones it
 * has seen (in TopMemoryContext) and asks the database only about the ones
 * it has not, until a change to either table empties the caches
 * (init_caches); accounts and participants, whose status can change at any
 * time, are read on every call.
 */
static HTAB *currency_cache = NULL;
static HTAB *fxpair_cache = NULL;
static uint64 cache_generation = 0;

/*
 * Create the backend-lifetime caches on first use, and again whenever
 * settle.currency, settle.fx_rate or settle.payment (its owner) changed or
 * was dropped since they were filled (src/refcache.c).  Called before any
 * of them is read in a call, so no one holds an entry of the old ones.
 */
static void
init_caches(void)
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
	currency_cache = make_table("settle currency cache", sizeof(NameInfo), 64);
	fxpair_cache = make_table("settle fx pair cache", sizeof(NameInfo), 64);
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
			set_key(key, k == 0 ? rows[i].source_currency : rows[i].destination_currency);
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

		set_key(key, SPI_getvalue(tup, desc, 2));
		e = hash_search(kind[0] == 'c' ? currency_cache : fxpair_cache, key, HASH_ENTER, &found);
		e->number = atoi(SPI_getvalue(tup, desc, 3));
		e->min_amount = DatumGetInt64(SPI_getbinval(tup, desc, 4, &isnull));
		e->max_amount = DatumGetInt64(SPI_getbinval(tup, desc, 5, &isnull));
	}
}

/* An open table with its primary key index (one text column), for probes. */
typedef struct KeyedTable
{
	Relation	rel;
	Relation	pkey;
	Snapshot	snapshot;
} KeyedTable;

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
static void
lookup_reference(IntakeRow *rows, int n, HTAB *accounts, HTAB *participants)
{
	HTAB	   *seen = make_table("settle intake names", sizeof(KeySeen), 3 * n);
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

			set_key(key, id);
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
			set_key(a->participant_id, owner);
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

				set_key(key, rows[i].counterparty_id);
				e = hash_search(participants, key, HASH_ENTER, &found);
				strlcpy(e->status, pstatus, sizeof(e->status));
			}
		}
	}
	keyed_close(&participant);
	keyed_close(&account);
	hash_destroy(seen);
}

/*
 * Whether the destination account could take the payment: it exists, is
 * active, is in destination_currency and belongs to the counterparty.
 */
static bool
destination_fits(const IntakeRow *row, const AccountInfo *dst)
{
	return dst != NULL && strcmp(dst->status, "active") == 0 &&
		strcmp(dst->currency, row->destination_currency) == 0 &&
		strcmp(dst->participant_id, row->counterparty_id) == 0;
}

/* The rules that need reference data, in parameter order. */
static void
check_reference(IntakeRow *row, HTAB *accounts, HTAB *currencies,
				HTAB *participants, HTAB *fxpairs)
{
	NameInfo   *scur,
			   *dcur,
			   *cp;
	AccountInfo *src,
			   *dst;
	AmountResult ar;
	char		key[KEY_BYTES];

	set_key(key, row->source_currency);
	scur = hash_search(currencies, key, HASH_FIND, NULL);
	if (scur == NULL)
	{
		intake_refuse(row, ERRCODE_SETTLE_CURRENCY_UNKNOWN,
					  psprintf("source_currency \"%s\" is not a known currency", row->source_currency),
					  NULL, pstrdup("settle.currencies lists the currencies settle knows."));
		return;
	}
	set_key(key, row->destination_currency);
	dcur = hash_search(currencies, key, HASH_FIND, NULL);
	if (dcur == NULL)
	{
		intake_refuse(row, ERRCODE_SETTLE_CURRENCY_UNKNOWN,
					  psprintf("destination_currency \"%s\" is not a known currency", row->destination_currency),
					  NULL, pstrdup("settle.currencies lists the currencies settle knows."));
		return;
	}
	ar = settle_parse_amount(row->amount, scur->number, &row->amount_minor);
	if (ar != AMOUNT_OK)
	{
		char	   *m,
				   *d,
				   *h;
		int			code = settle_amount_refusal("amount", ar, row->source_currency,
												 scur->number, &m, &d, &h);

		intake_refuse(row, code, m, d, h);
		return;
	}

	set_key(key, row->source_account);
	src = hash_search(accounts, key, HASH_FIND, NULL);
	set_key(key, row->destination_account);
	dst = hash_search(accounts, key, HASH_FIND, NULL);
	if (caller_restricted && caller_participant == NULL)
	{
		intake_refuse(row, ERRCODE_SETTLE_ROLE_NOT_MAPPED,
					  psprintf("role \"%s\" is not mapped to a participant", caller_name),
					  NULL, pstrdup("An operator maps it with settle_map_role()."));
		return;
	}
	/*
	 * A participant learns nothing of accounts it cannot read: another's
	 * account and one that does not exist get the same refusal.
	 */
	if (caller_restricted && (src == NULL || strcmp(src->participant_id, caller_participant) != 0))
	{
		intake_refuse(row, ERRCODE_SETTLE_NOT_OWN_ACCOUNT,
					  psprintf("source_account \"%s\" is not an account of participant \"%s\"",
							   row->source_account, caller_participant),
					  NULL, pstrdup("A participant may only pay from its own accounts."));
		return;
	}
	if (src == NULL)
	{
		intake_refuse(row, ERRCODE_SETTLE_ACCOUNT_UNKNOWN,
					  psprintf("source_account \"%s\" does not exist", row->source_account), NULL, NULL);
		return;
	}
	if (caller_restricted && (dst == NULL || strcmp(dst->participant_id, caller_participant) != 0))
	{
		/* the payee's account: checked in full below, but refused in one way */
		if (!destination_fits(row, dst))
		{
			intake_refuse(row, ERRCODE_SETTLE_DESTINATION_REFUSED,
						  psprintf("destination_account \"%s\" cannot receive this payment", row->destination_account),
						  NULL,
						  pstrdup("It does not exist, is not active, is not in destination_currency or does not belong to counterparty_id; its participant or an operator can tell which."));
			return;
		}
	}
	if (dst == NULL)
	{
		intake_refuse(row, ERRCODE_SETTLE_ACCOUNT_UNKNOWN,
					  psprintf("destination_account \"%s\" does not exist", row->destination_account), NULL, NULL);
		return;
	}
	if (strcmp(src->status, "active") != 0)
	{
		intake_refuse(row, ERRCODE_SETTLE_ACCOUNT_INACTIVE,
					  psprintf("source_account \"%s\" is not active", row->source_account),
					  psprintf("Its status is %s.", src->status), NULL);
		return;
	}
	if (strcmp(dst->status, "active") != 0)
	{
		intake_refuse(row, ERRCODE_SETTLE_ACCOUNT_INACTIVE,
					  psprintf("destination_account \"%s\" is not active", row->destination_account),
					  psprintf("Its status is %s.", dst->status), NULL);
		return;
	}
	if (strcmp(src->currency, row->source_currency) != 0)
	{
		intake_refuse(row, ERRCODE_SETTLE_ACCOUNT_CURRENCY,
					  psprintf("source_account \"%s\" is not in source_currency %s",
							   row->source_account, row->source_currency),
					  psprintf("The account is in %s.", src->currency), NULL);
		return;
	}
	if (strcmp(dst->currency, row->destination_currency) != 0)
	{
		intake_refuse(row, ERRCODE_SETTLE_ACCOUNT_CURRENCY,
					  psprintf("destination_account \"%s\" is not in destination_currency %s",
							   row->destination_account, row->destination_currency),
					  psprintf("The account is in %s.", dst->currency), NULL);
		return;
	}
	if (strcmp(row->source_account, row->destination_account) == 0)
	{
		intake_refuse(row, ERRCODE_SETTLE_SAME_ACCOUNT,
					  pstrdup("source_account and destination_account must differ"),
					  psprintf("Both are \"%s\".", row->source_account), NULL);
		return;
	}
	if (strcmp(src->participant_status, "active") != 0)
	{
		intake_refuse(row, ERRCODE_SETTLE_PARTICIPANT_INACTIVE,
					  psprintf("the participant owning source_account \"%s\" is not active",
							   row->source_account),
					  psprintf("Participant \"%s\" is %s.", src->participant_id, src->participant_status),
					  NULL);
		return;
	}
	set_key(key, row->counterparty_id);
	cp = hash_search(participants, key, HASH_FIND, NULL);
	if (cp == NULL)
	{
		intake_refuse(row, ERRCODE_SETTLE_PARTICIPANT_UNKNOWN,
					  psprintf("counterparty_id \"%s\" does not exist", row->counterparty_id), NULL, NULL);
		return;
	}
	if (strcmp(cp->status, "active") != 0)
	{
		intake_refuse(row, ERRCODE_SETTLE_PARTICIPANT_INACTIVE,
					  psprintf("counterparty_id \"%s\" is not active", row->counterparty_id),
					  psprintf("Its status is %s.", cp->status), NULL);
		return;
	}
	if (strcmp(dst->participant_id, row->counterparty_id) != 0)
	{
		intake_refuse(row, ERRCODE_SETTLE_ACCOUNT_NOT_COUNTERPARTY,
					  psprintf("destination_account \"%s\" does not belong to counterparty_id \"%s\"",
							   row->destination_account, row->counterparty_id),
					  psprintf("It belongs to \"%s\".", dst->participant_id),
					  pstrdup("The counterparty is the participant that receives the payment."));
		return;
	}
	if (strcmp(row->source_currency, row->destination_currency) != 0)
	{
		char		pair[KEY_BYTES];
		NameInfo   *fx;

		snprintf(pair, sizeof(pair), "%s%s", row->source_currency, row->destination_currency);
		fx = hash_search(fxpairs, pair, HASH_FIND, NULL);
		if (fx == NULL)
		{
			intake_refuse(row, ERRCODE_SETTLE_FX_RATE_MISSING,
						  psprintf("no FX rate between %s and %s",
								   row->source_currency, row->destination_currency),
						  NULL, pstrdup("Set one with settle_set_fx_rate()."));
			return;
		}
		/* a credit that could never be posted: refused now, not at every cycle */
		if (row->amount_minor > fx->max_amount)
		{
			char		buf[40];

			settle_format_amount(fx->max_amount, scur->number, buf);
			intake_refuse(row, ERRCODE_SETTLE_CONVERTED_ABOVE_BOUND,
						  psprintf("amount converts to more than the largest %s amount accepted",
								   row->destination_currency),
						  psprintf("At the current rate the largest %s amount that converts to %s is %s.",
								   row->source_currency, row->destination_currency, buf),
						  pstrdup("Split the payment."));
			return;
		}
		if (row->amount_minor < fx->min_amount)
		{
			char		buf[40];

			settle_format_amount(fx->min_amount, scur->number, buf);
			intake_refuse(row, ERRCODE_SETTLE_CONVERTED_TO_ZERO,
						  psprintf("amount converts to less than one minor unit of %s",
								   row->destination_currency),
						  psprintf("At the current rate the smallest %s amount that converts to %s is %s.",
								   row->source_currency, row->destination_currency, buf),
						  NULL);
			return;
		}
	}
	row->source_participant = pstrdup(src->participant_id);
	/* refused before (deadline past): only its key is looked up */
	row->insert = row->sqlerrcode == 0;
}

/*
 * Keys and transaction ids are unique per payer participant: a restricted
 * caller's are its participant's; an operator's are the source account's
 * owner's (none if that account is unknown: no payment can exist from it).
 */
static void
set_scope(IntakeRow *row, HTAB *accounts)
{
	char		key[KEY_BYTES];
	AccountInfo *src;

	if (caller_restricted)
	{
		row->scope = caller_participant;
		return;
	}
	set_key(key, row->source_account);
	src = hash_search(accounts, key, HASH_FIND, NULL);
	row->scope = src ? pstrdup(src->participant_id) : NULL;
}

/* "scope\x1fkey": a key within its participant's key space, as a hash key. */
static void
scoped_key(char *dst, const char *scope, const char *key)
{
	snprintf(dst, KEY_BYTES, "%s\x1f%s", scope ? scope : "", key);
}

/* Whether two rows carry the same instruction (everything but the key). */
static bool
same_content(const IntakeRow *a, const IntakeRow *b)
{
	bool		same_amount;

	/* an amount refused before it could be converted compares as text */
	if (a->amount_minor > 0 && b->amount_minor > 0)
		same_amount = a->amount_minor == b->amount_minor;
	else
		same_amount = a->amount_minor == b->amount_minor && same_text(a->amount, b->amount);

	return same_text(a->transaction_id, b->transaction_id) &&
		same_amount &&
		same_text(a->source_currency, b->source_currency) &&
		same_text(a->destination_currency, b->destination_currency) &&
		same_text(a->source_account, b->source_account) &&
		same_text(a->destination_account, b->destination_account) &&
		same_text(a->counterparty_id, b->counterparty_id) &&
		a->priority == b->priority &&
		a->has_deadline == b->has_deadline &&
		(!a->has_deadline || a->deadline == b->deadline);
}

static bool
same_text(const char *a, const char *b)
{
	return a != NULL && b != NULL && strcmp(a, b) == 0;
}

/* Within one call: a repeated key follows its first row; a reused transaction_id is refused. */
static void
mark_duplicates(IntakeRow *rows, int n)
{
	HTAB	   *keys;
	HTAB	   *txids;
	int			i;

	if (n < 2)
		return;
	keys = make_table("settle intake keys", sizeof(KeySeen), n);
	txids = make_table("settle intake transaction ids", sizeof(KeySeen), n);
	for (i = 0; i < n; i++)
	{
		IntakeRow  *row = &rows[i];
		KeySeen    *k;
		bool		found;
		char		key[KEY_BYTES];

		if (!row->syntax_ok)
			continue;
		scoped_key(key, row->scope, row->idempotency_key);
		k = hash_search(keys, key, HASH_ENTER, &found);
		if (found)
		{
			row->duplicate_of = k->row;
			row->insert = false;
			continue;
		}
		k->row = i;
		scoped_key(key, row->scope, row->transaction_id);
		k = hash_search(txids, key, HASH_ENTER, &found);
		if (found)
			intake_refuse(row, ERRCODE_SETTLE_TRANSACTION_ID_TAKEN,
						  psprintf("transaction_id \"%s\" is already used under another idempotency_key",
								   row->transaction_id),
						  psprintf("Row %d of this call has it.", k->row + 1), NULL);
		else
			k->row = i;
	}
}

static int
compare_rows_by_key(const void *a, const void *b)
{
	const IntakeRow *ra = *(IntakeRow *const *) a;
	const IntakeRow *rb = *(IntakeRow *const *) b;

	return strcmp(ra->idempotency_key, rb->idempotency_key);
}

/* One INSERT ... ON CONFLICT DO NOTHING for every row still marked insert. */
static void
insert_rows(IntakeRow *rows, int n, MemoryContext outer)
{
	IntakeRow **order = palloc(sizeof(IntakeRow *) * n);
	int			m = 0;
	int			i;
	char	  **cols[9];
	Datum	   *amounts,
			   *priorities,
			   *deadlines;
	bool	   *deadline_nulls;
	Datum		values[12];
	char		nulls[12];
	int			dims[1];
	int			lbs[1] = {1};
	HTAB	   *bykey;
	uint64		r;

	for (i = 0; i < n; i++)
		if (rows[i].insert)
			order[m++] = &rows[i];
	if (m == 0)
		return;
	if (m > 1)
		qsort(order, m, sizeof(IntakeRow *), compare_rows_by_key);

	for (i = 0; i < 9; i++)
		cols[i] = palloc(sizeof(char *) * m);
	amounts = palloc(sizeof(Datum) * m);
	priorities = palloc(sizeof(Datum) * m);
	deadlines = palloc(sizeof(Datum) * m);
	deadline_nulls = palloc(sizeof(bool) * m);
	for (i = 0; i < m; i++)
	{
		IntakeRow  *row = order[i];

		cols[0][i] = row->transaction_id;
		cols[1][i] = row->idempotency_key;
		cols[2][i] = row->source_currency;
		cols[3][i] = row->destination_currency;
		cols[4][i] = row->source_account;
		cols[5][i] = row->destination_account;
		cols[6][i] = row->counterparty_id;
		cols[7][i] = row->source_participant;
		amounts[i] = Int64GetDatum(row->amount_minor);
		priorities[i] = Int16GetDatum((int16) row->priority);
		deadlines[i] = TimestampTzGetDatum(row->deadline);
		deadline_nulls[i] = !row->has_deadline;
	}
	if (m == 1)
	{
		/* one row (settle_submit): scalar parameters, no arrays to build and unnest */
		bool		single_nulls[11] = {0};

		for (i = 0; i < 8; i++)
			values[i] = CStringGetTextDatum(cols[i][0]);
		values[8] = amounts[0];
		values[9] = priorities[0];
		values[10] = deadlines[0];
		single_nulls[10] = deadline_nulls[0];
		for (i = 0; i < 11; i++)
			nulls[i] = single_nulls[i] ? 'n' : ' ';
		if (insert_one_plan == NULL)
		{
			Oid			types[11] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID,
			TEXTOID, INT8OID, INT2OID, TIMESTAMPTZOID};

			insert_one_plan = settle_keep_plan(psprintf(INSERT_SQL,
														"SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, c.ts, c.ts"
														"  FROM (SELECT clock_timestamp() AS ts) c"),
											   11, types, "intake insert");
		}
		if (SPI_execute_plan(insert_one_plan, values, nulls, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "intake insert failed");
	}
	else
	{
		for (i = 0; i < 8; i++)
			values[i] = PointerGetDatum(settle_text_array(cols[i], m));
		dims[0] = m;
		values[8] = PointerGetDatum(construct_array(amounts, m, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
		values[9] = PointerGetDatum(construct_array(priorities, m, INT2OID, 2, true, TYPALIGN_SHORT));
		values[10] = PointerGetDatum(construct_md_array(deadlines, deadline_nulls, 1, dims, lbs,
														TIMESTAMPTZOID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
		if (insert_plan == NULL)
		{
			Oid			types[11] = {TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID,
				TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID,
			INT8ARRAYOID, INT2ARRAYOID, TIMESTAMPTZARRAYOID};

			insert_plan = settle_keep_plan(psprintf(INSERT_SQL,
													"SELECT u.*, c.ts, c.ts"
													"  FROM (SELECT " UNNEST_11 ") u,"
													"       LATERAL (SELECT clock_timestamp() AS ts) c"),
										   11, types, "intake bulk insert");
		}
		if (SPI_execute_plan(insert_plan, values, NULL, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "intake insert failed");
	}

	/* the worker cycles as soon as this transaction commits (no poll) */
	if (SPI_processed > 0)
		settle_worker_wake_at_commit();

	bykey = make_table("settle intake inserted", sizeof(KeySeen), m);
	for (i = 0; i < m; i++)
	{
		char		key[KEY_BYTES];
		KeySeen    *k;

		scoped_key(key, order[i]->scope, order[i]->idempotency_key);
		k = hash_search(bykey, key, HASH_ENTER, NULL);
		k->row = (int) (order[i] - rows);
	}
	for (r = 0; r < SPI_processed; r++)
	{
		HeapTuple	tup = SPI_tuptable->vals[r];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		char		key[KEY_BYTES];
		KeySeen    *k;
		IntakeRow  *row;

		scoped_key(key, SPI_getvalue(tup, desc, 4), SPI_getvalue(tup, desc, 2));
		k = hash_search(bykey, key, HASH_FIND, NULL);

		if (k == NULL)
			elog(ERROR, "inserted payment has an unexpected idempotency key");
		row = &rows[k->row];
		row->payment_id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
		row->created_at = DatumGetTimestampTz(SPI_getbinval(tup, desc, 3, &isnull));
		row->updated_at = row->created_at;
		row->status = MemoryContextStrdup(outer, "queued");
		row->replay = false;
		row->insert = false;	/* done */
		row->duplicate_of = -2; /* marks "inserted" */
	}
}

/*
 * Rows that were not inserted (conflict) or failed a reference rule: look up
 * their keys and turn them into replays or conflicts.  Returns whether an
 * answer now depends on a payment written by another transaction.
 */
static bool
resolve_existing(IntakeRow *rows, int n, MemoryContext outer)
{
	char	  **keys = palloc(sizeof(char *) * n);
	char	  **scopes = palloc(sizeof(char *) * n);
	int			nkeys = 0;
	int			i;
	HTAB	   *found_rows;
	Datum		values[2];
	uint64		r;
	bool		depends = false;

	for (i = 0; i < n; i++)
	{
		IntakeRow  *row = &rows[i];

		if (row->syntax_ok && row->duplicate_of == -1 && row->scope != NULL &&
			(row->insert || row->sqlerrcode != 0))
		{
			scopes[nkeys] = row->scope;
			keys[nkeys++] = row->idempotency_key;
		}
	}
	if (nkeys == 0)
		return false;

	if (existing_plan == NULL)
	{
		Oid			types[2] = {TEXTARRAYOID, TEXTARRAYOID};
		SPIPlanPtr	plan;

		/* by (payer, key): keys are unique per participant */
		plan = SPI_prepare(
						   "SELECT p.idempotency_key, p.payment_id, p.transaction_id, p.amount, p.source_currency,"
						   "       p.destination_currency, p.source_account, p.destination_account,"
						   "       p.counterparty_id, p.priority, p.deadline, p.status, p.created_at, p.updated_at,"
						   "       p.source_participant"
						   "  FROM (SELECT unnest($1) AS s, unnest($2) AS k) x"
						   "  JOIN settle.payment p ON p.source_participant = x.s AND p.idempotency_key = x.k",
						   2, types);
		if (plan == NULL)
			elog(ERROR, "SPI_prepare failed for the intake replay lookup: %s",
				 SPI_result_code_string(SPI_result));
		SPI_keepplan(plan);
		existing_plan = plan;
	}
	values[0] = PointerGetDatum(settle_text_array(scopes, nkeys));
	values[1] = PointerGetDatum(settle_text_array(keys, nkeys));
	if (SPI_execute_plan(existing_plan, values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "intake replay lookup failed");

	found_rows = make_table("settle intake existing", sizeof(KeySeen), SPI_processed + 1);
	for (r = 0; r < SPI_processed; r++)
	{
		char		key[KEY_BYTES];
		KeySeen    *k;

		scoped_key(key, SPI_getvalue(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 15),
				   SPI_getvalue(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1));
		k = hash_search(found_rows, key, HASH_ENTER, NULL);
		k->row = (int) r;
	}

	for (i = 0; i < n; i++)
	{
		IntakeRow  *row = &rows[i];
		KeySeen    *k;
		char		key[KEY_BYTES];
		HeapTuple	tup;
		TupleDesc	desc = SPI_tuptable->tupdesc;
		IntakeRow	stored;
		bool		isnull;
		Datum		d;

		if (!(row->syntax_ok && row->duplicate_of == -1 && row->scope != NULL &&
			  (row->insert || row->sqlerrcode != 0)))
			continue;
		scoped_key(key, row->scope, row->idempotency_key);
		k = hash_search(found_rows, key, HASH_FIND, NULL);
		if (k == NULL)
		{
			if (row->insert)
			{
				/* not inserted, yet no row has the key: the transaction_id was taken */
				depends = true;
				row->insert = false;
				intake_refuse(row, ERRCODE_SETTLE_TRANSACTION_ID_TAKEN,
							  psprintf("transaction_id \"%s\" is already used under another idempotency_key",
									   row->transaction_id),
							  NULL,
							  pstrdup("Retry with the idempotency_key of the original submission, or use a new transaction_id."));
			}
			continue;
		}
		tup = SPI_tuptable->vals[k->row];
		depends = true;
		memset(&stored, 0, sizeof(stored));
		stored.transaction_id = SPI_getvalue(tup, desc, 3);
		stored.amount_minor = DatumGetInt64(SPI_getbinval(tup, desc, 4, &isnull));
		stored.source_currency = SPI_getvalue(tup, desc, 5);
		stored.destination_currency = SPI_getvalue(tup, desc, 6);
		stored.source_account = SPI_getvalue(tup, desc, 7);
		stored.destination_account = SPI_getvalue(tup, desc, 8);
		stored.counterparty_id = SPI_getvalue(tup, desc, 9);
		stored.priority = DatumGetInt16(SPI_getbinval(tup, desc, 10, &isnull));
		d = SPI_getbinval(tup, desc, 11, &isnull);
		stored.has_deadline = !isnull;
		stored.deadline = isnull ? 0 : DatumGetTimestampTz(d);

		/* amount_minor of a row refused before parsing is 0: never equal */
		if (row->amount_minor > 0 && same_content(row, &stored))
		{
			row->sqlerrcode = 0;
			row->message = row->detail = row->hint = NULL;
			row->insert = false;
			row->replay = true;
			row->payment_id = DatumGetInt64(SPI_getbinval(tup, desc, 2, &isnull));
			row->status = MemoryContextStrdup(outer, SPI_getvalue(tup, desc, 12));
			row->created_at = DatumGetTimestampTz(SPI_getbinval(tup, desc, 13, &isnull));
			row->updated_at = DatumGetTimestampTz(SPI_getbinval(tup, desc, 14, &isnull));
		}
		else
		{
			row->insert = false;
			row->sqlerrcode = 0;
			intake_refuse(row, ERRCODE_SETTLE_IDEMPOTENCY_CONFLICT,
						  psprintf("idempotency_key \"%s\" was already used for a different payment",
								   row->idempotency_key),
						  psprintf("It belongs to payment %lld (transaction_id \"%s\").",
								   (long long) DatumGetInt64(SPI_getbinval(tup, desc, 2, &isnull)),
								   stored.transaction_id),
						  pstrdup("A retry must repeat the original request exactly; a new payment needs a new key."));
		}
	}
	return depends;
}

void
settle_intake(IntakeRow *rows, int n)
{
	MemoryContext outer = CurrentMemoryContext;
	MemoryContext work;
	HTAB	   *accounts,
			   *currencies,
			   *participants,
			   *fxpairs;
	int			i;
	Oid			caller;
	Oid			save_userid;
	int			save_sec_context;
	bool		depends;

	settle_check_version();
	settle_check_fence("intake");
	for (i = 0; i < n; i++)
	{
		rows[i].duplicate_of = -1;
		rows[i].insert = false;
		rows[i].amount_minor = 0;
		CHECK_FOR_INTERRUPTS();
		check_syntax(&rows[i]);
	}

	/* refusal texts are allocated in outer; the work context holds the rest */
	work = AllocSetContextCreate(outer, "settle intake", ALLOCSET_DEFAULT_SIZES);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	/* reference data cached by this backend: still current? */
	init_caches();

	/* note the caller, then work on the tables as their owner (restored below, or by abort) */
	caller = GetUserId();
	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(tables_owner(), save_sec_context | SECURITY_LOCAL_USERID_CHANGE);
	MemoryContextSwitchTo(outer);
	identify_caller(caller);
	MemoryContextSwitchTo(work);

	accounts = make_table("settle intake accounts", sizeof(AccountInfo), 2 * n);
	participants = make_table("settle intake participants", sizeof(NameInfo), n);
	lookup_reference(rows, n, accounts, participants);
	currencies = currency_cache;
	fxpairs = fxpair_cache;

	MemoryContextSwitchTo(outer);
	for (i = 0; i < n; i++)
	{
		CHECK_FOR_INTERRUPTS();
		if (rows[i].syntax_ok)
			check_reference(&rows[i], accounts, currencies, participants, fxpairs);
	}
	for (i = 0; i < n; i++)
		if (rows[i].syntax_ok)
			set_scope(&rows[i], accounts);
	MemoryContextSwitchTo(work);
	mark_duplicates(rows, n);
	MemoryContextSwitchTo(outer);
	insert_rows(rows, n, outer);
	depends = resolve_existing(rows, n, outer);

	/* rows repeating a key earlier in the same call follow that row */
	for (i = 0; i < n; i++)
	{
		IntakeRow  *row = &rows[i];
		IntakeRow  *first;

		if (row->duplicate_of < 0)
			continue;
		first = &rows[row->duplicate_of];
		if (!same_content(row, first))
		{
			row->sqlerrcode = 0;
			intake_refuse(row, ERRCODE_SETTLE_IDEMPOTENCY_CONFLICT,
						  psprintf("idempotency_key \"%s\" was already used for a different payment",
								   row->idempotency_key),
						  psprintf("Row %d of this call has it.", row->duplicate_of + 1),
						  pstrdup("A retry must repeat the original request exactly; a new payment needs a new key."));
		}
		else if (first->sqlerrcode != 0)
			intake_refuse(row, first->sqlerrcode, first->message, first->detail, first->hint);
		else
		{
			row->sqlerrcode = 0;
			row->replay = true;
			row->payment_id = first->payment_id;
			row->status = first->status;
			row->created_at = first->created_at;
			row->updated_at = first->updated_at;
		}
	}

	SetUserIdAndSecContext(save_userid, save_sec_context);
	SPI_finish();
	MemoryContextDelete(work);

	/*
	 * A replay (or a refusal naming an existing payment) reports a payment
	 * this transaction did not write: its commit will not wait for the
	 * standby, so wait here until the original is durable there.
	 */
	if (depends)
		settle_wait_durable("the payment this answer reports");
}
