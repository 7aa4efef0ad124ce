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
 * The files: this one is the entry (settle_intake) and the validation rules
 * of steps 1 and 2; intake_lookup.c the caller, reference data and caches;
 * intake_keys.c steps 3 and 4 (keys, the insert, replays and conflicts);
 * settle_intake_fields.c the payment fields (include/payment_fields.h); intake_links.c
 * linked payments (link groups); refusal.c the refusal
 * texts.  intake_int.h is what they share.
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
#include "fence.h"
#include "intake.h"
#include "intake_int.h"
#include "rfc3339.h"
#include "settle_errors.h"
#include "sync_standby.h"
#include "version.h"

static void check_syntax(IntakeRow *row);
typedef FieldResult (*FieldRule) (const char *s, size_t len, size_t *bad_pos);
static bool check_field(IntakeRow *row, const char *field, const char *value, FieldRule rule);
static bool check_currency_field(IntakeRow *row, const char *field, const char *value);
static bool destination_fits(const IntakeRow *row, const AccountInfo *dst);
static NameInfo *check_currencies_and_amount(IntakeRow *row, HTAB *currencies);
static bool check_accounts(IntakeRow *row, const IntakeCaller *caller, AccountInfo *src, AccountInfo *dst);
static bool check_counterparty(IntakeRow *row, HTAB *participants, AccountInfo *dst);
static bool check_fx(IntakeRow *row, HTAB *fxpairs, NameInfo *scur);
static void check_reference(IntakeRow *row, const IntakeCaller *caller, HTAB *accounts,
							HTAB *currencies, HTAB *participants, HTAB *fxpairs);

/* Refuse a field that is NULL or breaks its identifier rule; true if fine. */
static bool
check_field(IntakeRow *row, const char *field, const char *value, FieldRule rule)
{
	FieldResult r;
	size_t		pos;
	char	   *message;
	char	   *detail;
	char	   *hint;
	int			code;

	if (value == NULL)
	{
		settle_intake_refuse(row, ERRCODE_SETTLE_NULL_FIELD,
					  psprintf("%s must not be null", field), NULL, NULL);
		return false;
	}
	r = rule(value, strlen(value), &pos);
	code = settle_field_refusal(field, r, pos, value, rule != settle_check_name, &message, &detail, &hint);
	if (code == 0)
		return true;
	settle_intake_refuse(row, code, message, detail, hint);
	return false;
}

/* Refuse a currency code that is NULL or not three upper-case letters. */
static bool
check_currency_field(IntakeRow *row, const char *field, const char *value)
{
	if (value == NULL)
	{
		settle_intake_refuse(row, ERRCODE_SETTLE_NULL_FIELD,
					  psprintf("%s must not be null", field), NULL, NULL);
		return false;
	}
	if (!settle_check_currency_code(value, strlen(value)))
	{
		settle_intake_refuse(row, ERRCODE_SETTLE_CURRENCY_SYNTAX,
					  psprintf("%s must be an ISO 4217 code of three upper-case letters", field),
					  strlen(value) <= 16 ? psprintf("%s is \"%s\".", field, value) : NULL,
					  NULL);
		return false;
	}
	return true;
}



/* The rules that need no table, in parameter order. */
static void
check_syntax(IntakeRow *row)
{
	row->syntax_ok = false;
	if (!check_field(row, "transaction_id", row->transaction_id, settle_check_transaction_id))
		return;
	if (row->amount == NULL)
	{
		settle_intake_refuse(row, ERRCODE_SETTLE_NULL_FIELD, pstrdup("amount must not be null"), NULL, NULL);
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

			settle_intake_refuse(row, code, m, d, h);
			return;
		}
	}
	if (!check_currency_field(row, "source_currency", row->source_currency) ||
		!check_currency_field(row, "destination_currency", row->destination_currency) ||
		!check_field(row, "source_account", row->source_account, settle_check_name) ||
		!check_field(row, "destination_account", row->destination_account, settle_check_name) ||
		!check_field(row, "counterparty_id", row->counterparty_id, settle_check_name) ||
		!check_field(row, "idempotency_key", row->idempotency_key, settle_check_key))
		return;
	if (!row->has_priority)
	{
		settle_intake_refuse(row, ERRCODE_SETTLE_NULL_FIELD, pstrdup("priority must not be null"),
					  NULL, pstrdup("Leave it out for the default, 5."));
		return;
	}
	if (row->priority < 1 || row->priority > 9)
	{
		settle_intake_refuse(row, ERRCODE_SETTLE_PRIORITY_RANGE,
					  pstrdup("priority must be between 1 and 9"),
					  psprintf("priority is %d.", row->priority),
					  pstrdup("9 is the most urgent; the default is 5."));
		return;
	}
	if (row->link_group != NULL || row->has_link_size)
	{
		if (row->link_group == NULL || !row->has_link_size)
		{
			settle_intake_refuse(row, ERRCODE_SETTLE_LINK_INVALID,
						  pstrdup("link_group and link_size go together"),
						  NULL, pstrdup("Give both to link the payment into a group, or neither."));
			return;
		}
		if (!check_field(row, "link_group", row->link_group, settle_check_key))
			return;
		if (row->link_size < 2 || row->link_size > 1000)
		{
			settle_intake_refuse(row, ERRCODE_SETTLE_LINK_INVALID,
						  pstrdup("link_size must be between 2 and 1000"),
						  psprintf("link_size is %d.", row->link_size),
						  pstrdup("link_size is how many payments the group has, this one included."));
			return;
		}
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
		{
			char		when[32];

			/* in UTC whatever the session's TimeZone and DateStyle */
			if (TIMESTAMP_IS_NOBEGIN(row->deadline))
				strcpy(when, "-infinity");
			else if (TIMESTAMP_IS_NOEND(row->deadline))
				strcpy(when, "infinity");
			else
				settle_format_rfc3339(row->deadline, when);
			settle_intake_refuse(row, ERRCODE_SETTLE_DEADLINE_PAST,
						  pstrdup("deadline must be a finite time in the future"),
						  psprintf("deadline is %s.", when),
						  pstrdup("Leave deadline null to settle as soon as liquidity allows."));
		}
	}
	/* the earliest settlement time (issue #33): finite, before the deadline; past is now */
	if (row->has_not_before && row->sqlerrcode == 0)
	{
		if (TIMESTAMP_NOT_FINITE(row->not_before))
			settle_intake_refuse(row, ERRCODE_SETTLE_NOT_BEFORE_INVALID,
						  pstrdup("not_before must be a finite time"), NULL,
						  pstrdup("Leave not_before null to settle as soon as liquidity allows."));
		else if (row->has_deadline && row->not_before >= row->deadline)
		{
			char		nb[32];
			char		dl[32];

			settle_format_rfc3339(row->not_before, nb);
			settle_format_rfc3339(row->deadline, dl);
			settle_intake_refuse(row, ERRCODE_SETTLE_NOT_BEFORE_INVALID,
						  pstrdup("not_before must be before deadline"),
						  psprintf("not_before is %s, deadline %s.", nb, dl),
						  pstrdup("A payment may settle from not_before until its deadline."));
		}
	}
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

/* Currencies known, and the amount within the source currency's rules. */
static NameInfo *
check_currencies_and_amount(IntakeRow *row, HTAB *currencies)
{
	NameInfo   *scur,
			   *dcur;
	AmountResult ar;
	char		key[KEY_BYTES];

	settle_intake_set_key(key, row->source_currency);
	scur = hash_search(currencies, key, HASH_FIND, NULL);
	if (scur == NULL)
	{
		settle_intake_refuse(row, ERRCODE_SETTLE_CURRENCY_UNKNOWN,
					  psprintf("source_currency \"%s\" is not a known currency", row->source_currency),
					  NULL, pstrdup("settle.currencies lists the currencies settle knows."));
		return NULL;
	}
	settle_intake_set_key(key, row->destination_currency);
	dcur = hash_search(currencies, key, HASH_FIND, NULL);
	if (dcur == NULL)
	{
		settle_intake_refuse(row, ERRCODE_SETTLE_CURRENCY_UNKNOWN,
					  psprintf("destination_currency \"%s\" is not a known currency", row->destination_currency),
					  NULL, pstrdup("settle.currencies lists the currencies settle knows."));
		return NULL;
	}
	ar = settle_parse_amount(row->amount, scur->number, &row->amount_minor);
	if (ar != AMOUNT_OK)
	{
		char	   *m,
				   *d,
				   *h;
		int			code = settle_amount_refusal("amount", ar, row->source_currency,
												 scur->number, &m, &d, &h);

		settle_intake_refuse(row, code, m, d, h);
		return NULL;
	}

	return scur;
}

/*
 * The two accounts: the caller's right to the source, then what each
 * account must be.  A participant gets one refusal without detail for an
 * account it cannot read.
 */
static bool
check_accounts(IntakeRow *row, const IntakeCaller *caller, AccountInfo *src, AccountInfo *dst)
{
	if (caller->restricted && caller->participant == NULL)
	{
		settle_intake_refuse(row, ERRCODE_SETTLE_ROLE_NOT_MAPPED,
					  psprintf("role \"%s\" is not mapped to a participant", caller->name),
					  NULL, pstrdup("An operator maps it with settle_map_role()."));
		return false;
	}
	/*
	 * A participant learns nothing of accounts it cannot read: another's
	 * account and one that does not exist get the same refusal.
	 */
	if (caller->restricted && (src == NULL || strcmp(src->participant_id, caller->participant) != 0))
	{
		settle_intake_refuse(row, ERRCODE_SETTLE_NOT_OWN_ACCOUNT,
					  psprintf("source_account \"%s\" is not an account of participant \"%s\"",
							   row->source_account, caller->participant),
					  NULL, pstrdup("A participant may only pay from its own accounts."));
		return false;
	}
	if (src == NULL)
	{
		settle_intake_refuse(row, ERRCODE_SETTLE_ACCOUNT_UNKNOWN,
					  psprintf("source_account \"%s\" does not exist", row->source_account), NULL, NULL);
		return false;
	}
	if (caller->restricted && (dst == NULL || strcmp(dst->participant_id, caller->participant) != 0))
	{
		/* the payee's account: checked in full below, but refused in one way */
		if (!destination_fits(row, dst))
		{
			settle_intake_refuse(row, ERRCODE_SETTLE_DESTINATION_REFUSED,
						  psprintf("destination_account \"%s\" cannot receive this payment", row->destination_account),
						  NULL,
						  pstrdup("It does not exist, is not active, is not in destination_currency or does not belong to counterparty_id; its participant or an operator can tell which."));
			return false;
		}
	}
	if (dst == NULL)
	{
		settle_intake_refuse(row, ERRCODE_SETTLE_ACCOUNT_UNKNOWN,
					  psprintf("destination_account \"%s\" does not exist", row->destination_account), NULL, NULL);
		return false;
	}
	if (strcmp(src->status, "active") != 0)
	{
		settle_intake_refuse(row, ERRCODE_SETTLE_ACCOUNT_INACTIVE,
					  psprintf("source_account \"%s\" is not active", row->source_account),
					  psprintf("Its status is %s.", src->status), NULL);
		return false;
	}
	if (strcmp(dst->status, "active") != 0)
	{
		settle_intake_refuse(row, ERRCODE_SETTLE_ACCOUNT_INACTIVE,
					  psprintf("destination_account \"%s\" is not active", row->destination_account),
					  psprintf("Its status is %s.", dst->status), NULL);
		return false;
	}
	if (strcmp(src->currency, row->source_currency) != 0)
	{
		settle_intake_refuse(row, ERRCODE_SETTLE_ACCOUNT_CURRENCY,
					  psprintf("source_account \"%s\" is not in source_currency %s",
							   row->source_account, row->source_currency),
					  psprintf("The account is in %s.", src->currency), NULL);
		return false;
	}
	if (strcmp(dst->currency, row->destination_currency) != 0)
	{
		settle_intake_refuse(row, ERRCODE_SETTLE_ACCOUNT_CURRENCY,
					  psprintf("destination_account \"%s\" is not in destination_currency %s",
							   row->destination_account, row->destination_currency),
					  psprintf("The account is in %s.", dst->currency), NULL);
		return false;
	}
	if (strcmp(row->source_account, row->destination_account) == 0)
	{
		settle_intake_refuse(row, ERRCODE_SETTLE_SAME_ACCOUNT,
					  pstrdup("source_account and destination_account must differ"),
					  psprintf("Both are \"%s\".", row->source_account), NULL);
		return false;
	}
	if (strcmp(src->participant_status, "active") != 0)
	{
		settle_intake_refuse(row, ERRCODE_SETTLE_PARTICIPANT_INACTIVE,
					  psprintf("the participant owning source_account \"%s\" is not active",
							   row->source_account),
					  psprintf("Participant \"%s\" is %s.", src->participant_id, src->participant_status),
					  NULL);
		return false;
	}
	return true;
}

/* The counterparty: exists, active, owns the destination account. */
static bool
check_counterparty(IntakeRow *row, HTAB *participants, AccountInfo *dst)
{
	NameInfo   *cp;
	char		key[KEY_BYTES];

	settle_intake_set_key(key, row->counterparty_id);
	cp = hash_search(participants, key, HASH_FIND, NULL);
	if (cp == NULL)
	{
		settle_intake_refuse(row, ERRCODE_SETTLE_PARTICIPANT_UNKNOWN,
					  psprintf("counterparty_id \"%s\" does not exist", row->counterparty_id), NULL, NULL);
		return false;
	}
	if (strcmp(cp->status, "active") != 0)
	{
		settle_intake_refuse(row, ERRCODE_SETTLE_PARTICIPANT_INACTIVE,
					  psprintf("counterparty_id \"%s\" is not active", row->counterparty_id),
					  psprintf("Its status is %s.", cp->status), NULL);
		return false;
	}
	if (strcmp(dst->participant_id, row->counterparty_id) != 0)
	{
		settle_intake_refuse(row, ERRCODE_SETTLE_ACCOUNT_NOT_COUNTERPARTY,
					  psprintf("destination_account \"%s\" does not belong to counterparty_id \"%s\"",
							   row->destination_account, row->counterparty_id),
					  psprintf("It belongs to \"%s\".", dst->participant_id),
					  pstrdup("The counterparty is the participant that receives the payment."));
		return false;
	}
	return true;
}

/* An FX payment: a rate exists and the credit can be posted at it. */
static bool
check_fx(IntakeRow *row, HTAB *fxpairs, NameInfo *scur)
{
	if (strcmp(row->source_currency, row->destination_currency) != 0)
	{
		char		pair[KEY_BYTES];
		NameInfo   *fx;

		snprintf(pair, sizeof(pair), "%s%s", row->source_currency, row->destination_currency);
		fx = hash_search(fxpairs, pair, HASH_FIND, NULL);
		if (fx == NULL)
		{
			settle_intake_refuse(row, ERRCODE_SETTLE_FX_RATE_MISSING,
						  psprintf("no FX rate between %s and %s",
								   row->source_currency, row->destination_currency),
						  NULL, pstrdup("Set one with settle_set_fx_rate()."));
			return false;
		}
		/* a credit that could never be posted: refused now, not at every cycle */
		if (row->amount_minor > fx->max_amount)
		{
			char		buf[40];

			settle_format_amount(fx->max_amount, scur->number, buf);
			settle_intake_refuse(row, ERRCODE_SETTLE_CONVERTED_ABOVE_BOUND,
						  psprintf("amount converts to more than the largest %s amount accepted",
								   row->destination_currency),
						  psprintf("At the current rate the largest %s amount that converts to %s is %s.",
								   row->source_currency, row->destination_currency, buf),
						  pstrdup("Split the payment."));
			return false;
		}
		if (row->amount_minor < fx->min_amount)
		{
			char		buf[40];

			settle_format_amount(fx->min_amount, scur->number, buf);
			settle_intake_refuse(row, ERRCODE_SETTLE_CONVERTED_TO_ZERO,
						  psprintf("amount converts to less than one minor unit of %s",
								   row->destination_currency),
						  psprintf("At the current rate the smallest %s amount that converts to %s is %s.",
								   row->source_currency, row->destination_currency, buf),
						  NULL);
			return false;
		}
	}
	return true;
}

/* The rules that need reference data, in parameter order. */
static void
check_reference(IntakeRow *row, const IntakeCaller *caller, HTAB *accounts,
				HTAB *currencies, HTAB *participants, HTAB *fxpairs)
{
	NameInfo   *scur;
	AccountInfo *src,
			   *dst;
	char		key[KEY_BYTES];

	scur = check_currencies_and_amount(row, currencies);
	if (scur == NULL)
		return;
	settle_intake_set_key(key, row->source_account);
	src = hash_search(accounts, key, HASH_FIND, NULL);
	settle_intake_set_key(key, row->destination_account);
	dst = hash_search(accounts, key, HASH_FIND, NULL);
	if (!check_accounts(row, caller, src, dst) ||
		!check_counterparty(row, participants, dst) ||
		!check_fx(row, fxpairs, scur))
		return;
	row->source_participant = pstrdup(src->participant_id);
	/* refused before (deadline past): only its key is looked up */
	row->insert = row->sqlerrcode == 0;
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
	Oid			caller_oid;
	IntakeCaller caller;
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
	settle_intake_init_caches();

	/* note the caller, then work on the tables as their owner (restored below, or by abort) */
	caller_oid = GetUserId();
	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(settle_intake_tables_owner(), save_sec_context | SECURITY_LOCAL_USERID_CHANGE);
	MemoryContextSwitchTo(outer);
	settle_intake_identify_caller(caller_oid, &caller);
	MemoryContextSwitchTo(work);

	accounts = settle_intake_make_table("settle intake accounts", sizeof(AccountInfo), 2 * n);
	participants = settle_intake_make_table("settle intake participants", sizeof(NameInfo), n);
	settle_intake_lookup_reference(rows, n, accounts, participants);
	currencies = settle_intake_currency_cache();
	fxpairs = settle_intake_fxpair_cache();

	MemoryContextSwitchTo(outer);
	for (i = 0; i < n; i++)
	{
		CHECK_FOR_INTERRUPTS();
		if (rows[i].syntax_ok)
			check_reference(&rows[i], &caller, accounts, currencies, participants, fxpairs);
	}
	for (i = 0; i < n; i++)
		if (rows[i].syntax_ok)
			settle_intake_set_scope(&rows[i], accounts, &caller);
	MemoryContextSwitchTo(work);
	settle_intake_mark_duplicates(rows, n, outer);
	MemoryContextSwitchTo(outer);
	/*
	 * On an orphan, refused before anything is written (a group's row locks
	 * included).  A retry is refused too: that a row repeats a payment is
	 * only learnt from its insert
	 */
	for (i = 0; i < n; i++)
		if (rows[i].insert)
		{
			settle_check_sync_standby("intake");
			break;
		}
	/*
	 * Every SPI call returns in SPI's procedure context, which SPI_finish
	 * frees: each step starts in outer, where refusal texts must live (the
	 * answer is built from them after SPI_finish).
	 */
	settle_intake_links_admit(rows, n);
	MemoryContextSwitchTo(outer);
	settle_intake_insert_rows(rows, n, outer);
	MemoryContextSwitchTo(outer);
	settle_intake_links_record(rows, n);
	MemoryContextSwitchTo(outer);
	depends = settle_intake_resolve_existing(rows, n, outer);
	MemoryContextSwitchTo(outer);

	/* rows repeating a key earlier in the same call follow that row */
	for (i = 0; i < n; i++)
	{
		IntakeRow  *row = &rows[i];
		IntakeRow  *first;

		if (row->duplicate_of < 0)
			continue;
		first = &rows[row->duplicate_of];
		if (settle_intake_first_difference(row, first) != NULL)
		{
			row->sqlerrcode = 0;
			settle_intake_refuse(row, ERRCODE_SETTLE_IDEMPOTENCY_CONFLICT,
						  psprintf("idempotency_key \"%s\" was already used for a different payment",
								   row->idempotency_key),
						  psprintf("Row %d of this call has it.", row->duplicate_of + 1),
						  pstrdup("A retry must repeat the original request exactly; a new payment needs a new key."));
		}
		else if (first->sqlerrcode != 0)
			settle_intake_refuse(row, first->sqlerrcode, first->message, first->detail, first->hint);
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

	/*
	 * A refused linked row fails its group (settle_submit_bulk; a refused
	 * settle_submit raises, and this rolls back with it)
	 */
	settle_intake_links_refused(rows, n);

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
