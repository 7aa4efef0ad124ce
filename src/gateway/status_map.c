/*
 * status_map.c -- SQLSTATE -> HTTP status: the one table (docs/GATEWAY.md,
 * "Status codes", shows the same).  Exact codes first, then classes.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>

#include "gateway.h"
#include "payment_fields.h"

typedef struct Rule
{
	const char *sqlstate;		/* a code, or a class prefix ending in '*' */
	int			http_status;
	const char *title;
	bool		retry;
} Rule;

static const Rule rules[] = {
	/* idempotency: the key or the id is the client's own and taken */
	{"SE060", 409, "Idempotency key already used for a different payment", false},
	{"SE061", 409, "transaction_id already used under another idempotency key", false},
	/* who may pay from where: the database refuses, not only the gateway */
	{"SE035", 403, "Source account is not the client's participant's", false},
	{"SE036", 403, "The client's role is not mapped to a participant", false},
	{"42501", 403, "Permission denied", false},
	/* a participant's controls (controls.c): another's, or a payment no longer the payer's to change */
	{"SE180", 403, "The control is another participant's", false},
	{"SE103", 404, "No such payment", false},
	{"SE182", 409, "The payment is no longer queued", false},
	{"SE183", 409, "The payment is in a settlement cycle: retry after it", false},
	/* answers that cannot be given now, safe to retry with the same key */
	{"SE140", 503, "Not yet durable on the synchronous standby", true},
	{"SE093", 503, "The settlement queue is full", true},
	{"SE170", 503, "No synchronous standby is streaming: retry on the current primary", true},
	{"SE152", 503, "settle library and SQL are of different releases", true},
	{"SE153", 503, "The server is fenced", true},
	{"25006", 503, "The database is read-only (not the primary)", true},
	{"40001", 503, "Serialization failure", true},
	{"40P01", 503, "Deadlock", true},
	{"57014", 503, "The statement was cancelled", true},
	{"08*", 503, "Database connection failure", true},
	{"57P*", 503, "Database shutting down or starting up", true},
	{"53*", 503, "Database out of resources", true},
	/* every other settle code is about the payment's content */
	{"SE*", 422, "Payment refused", false},
	{"22*", 422, "Invalid data", false},
};

StatusMapping
status_for_sqlstate(const char *sqlstate)
{
	StatusMapping m = {500, "Internal error", false};

	if (!sqlstate || !*sqlstate)
		return m;
	for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++)
	{
		const char *code = rules[i].sqlstate;
		size_t		n = strlen(code);
		bool		hit = code[n - 1] == '*' ? strncmp(code, sqlstate, n - 1) == 0
			: strcmp(code, sqlstate) == 0;

		if (hit)
		{
			m.http_status = rules[i].http_status;
			m.title = rules[i].title;
			m.retry = rules[i].retry;
			return m;
		}
	}
	return m;
}

/* the payment fields (settle_submit_bulk's keys): a refusal's message starts with the one it names */
static const char *const payment_fields[] = SETTLE_PAYMENT_FIELD_NAMES;

/* the controls' fields (controls.c) */
static const char *const control_fields[] = {
	"account_id", "min_priority", "threshold", "kind", "position", "reason", NULL
};

void
status_field_of_message(const char *message, char *field, size_t size)
{
	field[0] = '\0';
	if (!message)
		return;
	for (int l = 0; l < 2; l++)
	{
		const char *const *fields = l == 0 ? payment_fields : control_fields;

		for (int i = 0; fields[i]; i++)
		{
			size_t		n = strlen(fields[i]);

			if (strncmp(message, fields[i], n) == 0 && (message[n] == ' ' || message[n] == '\0'))
			{
				snprintf(field, size, "%s", fields[i]);
				return;
			}
		}
	}
	/* SE091: unknown key "x" */
	if (strncmp(message, "unknown key \"", 13) == 0)
	{
		const char *end = strrchr(message + 13, '"');

		if (end && end > message + 13)
			snprintf(field, size, "%.*s", (int) (end - message - 13), message + 13);
	}
}
