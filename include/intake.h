/*
 * intake.h -- exactly-once payment intake (settle_submit and its bulk path).
 */
#ifndef SETTLE_INTAKE_H
#define SETTLE_INTAKE_H

#include "postgres.h"
#include "datatype/timestamp.h"
#include "validate.h"
#include "amount.h"
#include "payment_fields.h"

/* Largest number of rows settle_submit_bulk takes in one call (GUC). */
/* Define intake's settings (submit.c, from _PG_init). */
extern void settle_submit_define_settings(void);

/* IntakeRow's members for one field, by its kind */
#define SETTLE_PF_MEMBER_TEXT(name) char *name;
#define SETTLE_PF_MEMBER_AMOUNT(name) char *name;
#define SETTLE_PF_MEMBER_INT(name) int name; bool has_##name;
#define SETTLE_PF_MEMBER_TIME(name) TimestampTz name; bool has_##name;
#define SETTLE_PF_MEMBER(name, sql_type, kind, since, content, sql_default, stored) \
	SETTLE_PF_MEMBER_##kind(name)

/* One payment instruction on its way in, and what became of it. */
typedef struct IntakeRow
{
	/*
	 * As given: one member per payment field (include/payment_fields.h),
	 * NULL pointer = SQL NULL; has_NAME: an INT or TIME field given, not null
	 */
	SETTLE_PAYMENT_FIELDS(SETTLE_PF_MEMBER)

	/* derived during validation */
	int64		amount_minor;
	char	   *source_participant;
	char	   *scope;			/* whose keys: the payer participant (NULL: unknown) */
	bool		syntax_ok;		/* passed the checks that need no table */
	bool		insert;			/* goes to the INSERT */
	int			duplicate_of;	/* earlier row in the same call with this key, or -1 */

	/* outcome */
	int			sqlerrcode;		/* 0 = accepted or replayed */
	char	   *message;
	char	   *detail;
	char	   *hint;
	int64		payment_id;
	char	   *status;
	bool		replay;
	TimestampTz created_at;
	TimestampTz updated_at;
} IntakeRow;

/* Validate and enqueue rows[0..n-1]; each row gets its own outcome. */
extern void settle_intake(IntakeRow *rows, int n);

/* The refusal texts: refusal.h. */
#include "refusal.h"

#endif							/* SETTLE_INTAKE_H */
