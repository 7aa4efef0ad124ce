/*
 * intake_int.h -- what the files of intake share (private to intake).
 *
 *   intake.c         the entry (settle_intake) and the validation rules;
 *   intake_lookup.c  the caller, reference data and its caches;
 *   intake_keys.c    duplicate keys, the insert, replays and conflicts;
 *   settle_intake_fields.c  the payment fields' table (include/payment_fields.h):
 *                    reading, comparing and printing a field by its kind;
 *   intake_links.c   linked payments: joining a group, refusals;
 *   refusal.c        the refusal texts.
 */
#ifndef SETTLE_INTAKE_INT_H
#define SETTLE_INTAKE_INT_H

#include "postgres.h"
#include "access/htup.h"
#include "fmgr.h"
#include "utils/hsearch.h"
#include "utils/jsonb.h"

#include "intake.h"

/* room for a participant and a key side by side (scoped keys) */
#define KEY_BYTES (2 * SETTLE_MAX_IDENTIFIER + 16)

/* What the lookup found about one account. */
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

/* Who is calling, for one call. */
typedef struct IntakeCaller
{
	char	   *name;			/* the role's name */
	bool		restricted;		/* neither a superuser nor a settle_operator member */
	char	   *participant;	/* the participant a restricted caller acts for, or NULL */
} IntakeCaller;

/* One row of include/payment_fields.h, with where the field is in an IntakeRow. */
typedef struct PaymentField
{
	const char *name;
	const char *sql_type;
	PaymentFieldKind kind;
	int			since;			/* SETTLE_SQL_1_0, ... */
	bool		content;		/* a retry must repeat it */
	const char *sql_default;	/* NULL: required */
	const char *stored;			/* the stored value, an expression over settle.payment p */
	size_t		value_off;		/* offsetof(IntakeRow, name) */
	int			has_off;		/* offsetof(IntakeRow, has_name); -1 for TEXT, AMOUNT */
} PaymentField;

/* settle_intake_fields.c */
extern const PaymentField settle_intake_fields[PAYMENT_FIELD_COUNT];
extern const PaymentField *settle_intake_field_named(const char *name);
extern bool settle_intake_field_is_column(const PaymentField *f);
extern void settle_intake_fields_from_args(IntakeRow *row, FunctionCallInfo fcinfo);
extern void settle_intake_fields_from_json(IntakeRow *row, JsonbContainer *obj, int release);
extern const PaymentField *settle_intake_first_difference(const IntakeRow *a, const IntakeRow *b);
extern char *settle_intake_field_select(const PaymentField *f);
extern void settle_intake_field_from_stored(IntakeRow *row, const PaymentField *f, HeapTuple tup,
									 TupleDesc desc, int col);
extern char *settle_intake_field_text(const IntakeRow *row, const PaymentField *f);
extern void settle_intake_field_copy(IntakeRow *dst, const IntakeRow *src, const PaymentField *f);
extern Oid	settle_intake_field_type(const PaymentField *f);
extern Datum settle_intake_field_datum(const IntakeRow *row, const PaymentField *f, bool *isnull);

/* intake_lookup.c */
extern void settle_intake_init_caches(void);
extern Oid	settle_intake_tables_owner(void);
extern void settle_intake_identify_caller(Oid caller_oid, IntakeCaller *caller);
extern HTAB *settle_intake_make_table(const char *name, Size entrysize, long n);
extern void settle_intake_set_key(char *dst, const char *src);
extern void settle_intake_lookup_reference(IntakeRow *rows, int n, HTAB *accounts, HTAB *participants);
extern HTAB *settle_intake_currency_cache(void);
extern HTAB *settle_intake_fxpair_cache(void);

/* intake_keys.c */
extern void settle_intake_set_scope(IntakeRow *row, HTAB *accounts, const IntakeCaller *caller);
extern void settle_intake_mark_duplicates(IntakeRow *rows, int n, MemoryContext outer);
extern void settle_intake_insert_rows(IntakeRow *rows, int n, MemoryContext outer);
extern bool settle_intake_resolve_existing(IntakeRow *rows, int n, MemoryContext outer);

/* intake_links.c */
extern void settle_intake_links_admit(IntakeRow *rows, int n);
extern void settle_intake_links_record(IntakeRow *rows, int n);
extern void settle_intake_links_refused(IntakeRow *rows, int n);


#endif							/* SETTLE_INTAKE_INT_H */
