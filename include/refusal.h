/*
 * refusal.h -- the texts of intake's refusals (src/refusal.c).
 *
 * Intake and the reference functions' checks (src/refcheck.c) raise or
 * record the same messages; this header is what refcheck.c needs, so it no
 * longer reaches into intake.
 */
#ifndef SETTLE_REFUSAL_H
#define SETTLE_REFUSAL_H

#include "amount.h"
#include "rfc3339.h"
#include "validate.h"

struct IntakeRow;

/* Record a refusal on a row (first one wins). */
extern void settle_intake_refuse(struct IntakeRow *row, int sqlerrcode, char *message,
						  char *detail, char *hint);

/* Refusal text for an identifier rule (0 if the field is fine). */
extern int	settle_field_refusal(const char *field, FieldResult r, size_t pos,
								 const char *value, bool is_key, char **message,
								 char **detail, char **hint);

/* ereport(ERROR) for a name that fails its rule. */
extern void settle_raise_field(const char *field, FieldResult r, size_t pos,
							   const char *value);

/* Refusal text for an amount rule. */
extern int	settle_amount_refusal(const char *field, AmountResult r,
								  const char *currency, int exponent,
								  char **message, char **detail, char **hint);

/* Refusal text for a timestamp given as text (0 if it was read). */
extern int	settle_timestamp_refusal(const char *field, TimestampResult r,
									 const char *what, const char *value,
									 char **message, char **detail, char **hint);

#endif							/* SETTLE_REFUSAL_H */
