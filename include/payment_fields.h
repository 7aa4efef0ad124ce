/*
 * payment_fields.h -- the fields of a payment instruction, in one table.
 *
 * Plain C (no PostgreSQL): intake (settle_submit's arguments, the keys of
 * settle_submit_bulk, IntakeRow, the replay comparison, the insert), the
 * gateway (which field a refusal names) and test/scripts/payment_fields.sh
 * (settle_submit's SQL signature) are built from or checked against it.
 * Adding a field: docs/ARCHITECTURE.md, "Adding a payment field".
 *
 * One row per field, in settle_submit's parameter order:
 *
 *   X(name, sql_type, kind, since, content, sql_default, stored)
 *
 *   name         settle_submit's parameter, settle_submit_bulk's JSON key,
 *                the IntakeRow member and the settle.payment column
 *   sql_type     the parameter's type, as format_type() prints it
 *   kind         how it is read and held (IntakeRow members):
 *                  TEXT    char *name (NULL: SQL or JSON null);
 *                  AMOUNT  char *name, exact decimal text (JSON string or number);
 *                  INT     int name, bool has_name (given and not null);
 *                  TIME    TimestampTz name, bool has_name (RFC 3339 text in JSON)
 *   since        the SQL release whose settle_submit takes it and whose tables
 *                hold it (SETTLE_SQL_1_0 ... in version.h: major * 100 + minor);
 *                before it settle_submit_bulk refuses the key as unknown
 *   content      part of the instruction a retry must repeat (a replay
 *                compares it with the stored payment, SE060 if it differs);
 *                false only for the key itself
 *   sql_default  the parameter's DEFAULT as SQL text, NULL when it has none
 *                (required); settle_submit_bulk applies it to a missing key
 *   stored       how a replay reads the stored value: an expression over
 *                settle.payment p.  A bare column "p.name" is also written
 *                by intake's insert; any other expression names a field
 *                written by its own code (links: src/intake_links.c)
 */
#ifndef SETTLE_PAYMENT_FIELDS_H
#define SETTLE_PAYMENT_FIELDS_H

#define SETTLE_PAYMENT_FIELDS(X) \
	X(transaction_id, "text", TEXT, 100, 1, NULL, "p.transaction_id") \
	X(amount, "numeric", AMOUNT, 100, 1, NULL, "p.amount") \
	X(source_currency, "text", TEXT, 100, 1, NULL, "p.source_currency") \
	X(destination_currency, "text", TEXT, 100, 1, NULL, "p.destination_currency") \
	X(source_account, "text", TEXT, 100, 1, NULL, "p.source_account") \
	X(destination_account, "text", TEXT, 100, 1, NULL, "p.destination_account") \
	X(counterparty_id, "text", TEXT, 100, 1, NULL, "p.counterparty_id") \
	X(idempotency_key, "text", TEXT, 100, 0, NULL, "p.idempotency_key") \
	X(priority, "integer", INT, 100, 1, "5", "p.priority") \
	X(deadline, "timestamp with time zone", TIME, 100, 1, "NULL", "p.deadline") \
	/* linked payments, all or nothing (src/sql/84_links.sql) */ \
	X(link_group, "text", TEXT, 101, 1, "NULL", \
	  "(SELECT l.link_group FROM settle.payment_link l WHERE l.payment_id = p.payment_id)") \
	X(link_size, "integer", INT, 101, 1, "NULL", \
	  "(SELECT g.link_size FROM settle.payment_link l JOIN settle.link_group g" \
	  " ON g.link_group = l.link_group WHERE l.payment_id = p.payment_id)") \
	/* the earliest settlement time (issue #33) */ \
	X(not_before, "timestamp with time zone", TIME, 102, 1, "NULL", "p.not_before")

/* How a field is read and held (the kind column) */
typedef enum PaymentFieldKind
{
	PFK_TEXT,
	PFK_AMOUNT,
	PFK_INT,
	PFK_TIME
} PaymentFieldKind;

/* The fields' positions: PF_transaction_id = 0, ..., PAYMENT_FIELD_COUNT. */
#define SETTLE_PF_ENUM(name, sql_type, kind, since, content, sql_default, stored) PF_##name,
typedef enum PaymentFieldId
{
	SETTLE_PAYMENT_FIELDS(SETTLE_PF_ENUM)
	PAYMENT_FIELD_COUNT
} PaymentFieldId;
#undef SETTLE_PF_ENUM

/* The fields' names, in order: settle_submit's parameters, settle_submit_bulk's keys. */
#define SETTLE_PF_NAME(name, sql_type, kind, since, content, sql_default, stored) #name,
#define SETTLE_PAYMENT_FIELD_NAMES { SETTLE_PAYMENT_FIELDS(SETTLE_PF_NAME) NULL }

#endif							/* SETTLE_PAYMENT_FIELDS_H */
