/*
 * intake.h -- exactly-once payment intake (settle_submit and its bulk path).
 */
#ifndef SETTLE_INTAKE_H
#define SETTLE_INTAKE_H

#include "postgres.h"
#include "datatype/timestamp.h"
#include "validate.h"
#include "amount.h"

/* Largest number of rows settle_submit_bulk takes in one call (GUC). */
/* Define intake's settings (submit.c, from _PG_init). */
extern void settle_submit_init(void);

/* One payment instruction on its way in, and what became of it. */
typedef struct IntakeRow
{
	/* as given; NULL pointer = SQL NULL */
	char	   *transaction_id;
	char	   *amount;			/* decimal text */
	char	   *source_currency;
	char	   *destination_currency;
	char	   *source_account;
	char	   *destination_account;
	char	   *counterparty_id;
	char	   *idempotency_key;
	int			priority;
	bool		priority_null;
	TimestampTz deadline;
	bool		has_deadline;
	TimestampTz not_before;		/* earliest settlement time (issue #33, 1.2's SQL) */
	bool		has_not_before;
	char	   *link_group;		/* linked payments: NULL if none */
	int			link_size;
	bool		has_link_size;

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
