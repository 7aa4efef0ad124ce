/*
 * controls.c -- a participant's controls over REST (docs/GATEWAY.md,
 * "A participant's controls"; docs/PARTICIPANT_CONTROLS.md): its limits,
 * its accounts' reservations, its alerts, and its queued payments.
 *
 * Each request is one statement calling the SQL API under the client's
 * role (pool.c, JOB_CONTROL), for the client's own participant: the
 * database decides who may change what (the functions' SE180, SE030,
 * row-level security), not the gateway.  The gateway checks the path and
 * the body's shape (known keys, JSON types); the body itself is read by the
 * database as jsonb, so amounts stay exact decimals.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway.h"
#include "validate.h"

enum
{
	A_NONE = 0,
	A_LIMITS,					/* GET /api/v1/limits */
	A_LIMIT_SET,				/* PUT /api/v1/limits/{currency}[/{counterparty_id}] */
	A_LIMIT_DEL,				/* DELETE the same */
	A_RESERVATIONS,				/* GET /api/v1/reservations */
	A_RESERVATION_SET,			/* PUT /api/v1/reservations/{account_id} */
	A_RESERVATION_DEL,			/* DELETE the same (?standing=true) */
	A_ALERTS,					/* GET /api/v1/alerts */
	A_ALERT_SET,				/* PUT /api/v1/alerts/{currency}/{kind} */
	A_ALERT_DEL,				/* DELETE the same */
	A_PRIORITY,					/* POST /api/v1/transactions/{transaction_id}/priority */
	A_POSITION,					/* POST .../position */
	A_REVOKE					/* POST .../revoke */
};

#define UTC(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"

/* $1 the client's participant */
static const char *limits_sql =
"SELECT json_build_object('limits', coalesce(json_agg(json_build_object("
" 'counterparty_id', l.counterparty_id, 'currency', l.currency, 'kind', l.kind,"
" 'amount', l.amount::text, 'used', l.used::text, 'headroom', l.headroom::text,"
" 'updated_at', " UTC("l.updated_at") ") ORDER BY l.currency, l.counterparty_id NULLS FIRST), '[]'))::text"
" FROM settle.participant_limits l WHERE l.participant_id = $1";

/* $1 participant, $2 currency, $3 counterparty (NULL: multilateral), $4 the body */
static const char *limit_set_sql =
"SELECT json_build_object('counterparty_id', $3::text, 'currency', $2::text,"
" 'kind', CASE WHEN $3::text IS NULL THEN 'multilateral' ELSE 'bilateral' END,"
" 'amount', (CASE WHEN $3::text IS NULL"
"  THEN settle_set_multilateral_limit($1, $2, ($4::jsonb->>'amount')::numeric)"
"  ELSE settle_set_bilateral_limit($1, $3, $2, ($4::jsonb->>'amount')::numeric) END)::text)::text";
static const char *limit_del_sql =
"SELECT 'removed' WHERE settle_remove_limit($1, $3, $2)";

static const char *reservations_sql =
"SELECT json_build_object('reservations', coalesce(json_agg(json_build_object("
" 'account_id', r.account_id, 'currency', r.currency, 'amount', r.amount::text,"
" 'min_priority', r.min_priority, 'standing', r.standing, 'valid_on', r.valid_on::text,"
" 'applies_today', r.applies_today, 'updated_at', " UTC("r.updated_at") ")"
" ORDER BY r.account_id, r.valid_on NULLS FIRST), '[]'))::text"
" FROM settle.liquidity_reservations r WHERE r.participant_id = $1";

/* $1 account, $2 the body */
static const char *reservation_set_sql =
"SELECT json_build_object('account_id', $1::text,"
" 'amount', settle_set_reservation($1, ($2::jsonb->>'amount')::numeric, ($2::jsonb->>'min_priority')::integer,"
"   coalesce(($2::jsonb->>'standing')::boolean, false))::text,"
" 'min_priority', ($2::jsonb->>'min_priority')::integer,"
" 'standing', coalesce(($2::jsonb->>'standing')::boolean, false))::text";
/* $1 account, $2 standing */
static const char *reservation_del_sql =
"SELECT 'removed' WHERE settle_remove_reservation($1, $2::boolean)";

static const char *alerts_sql =
"SELECT json_build_object('alerts', coalesce(json_agg(json_build_object("
" 'currency', a.currency, 'kind', a.kind, 'threshold', a.threshold::text, 'value', a.value::text,"
" 'counterparty_id', a.counterparty_id, 'alerting', a.alerting,"
" 'alerting_since', " UTC("a.alerting_since") ") ORDER BY a.currency, a.kind), '[]'))::text"
" FROM settle.participant_alerts a WHERE a.participant_id = $1";

/* $1 participant, $2 currency, $3 kind, $4 the body */
static const char *alert_set_sql =
"SELECT json_build_object('currency', $2::text, 'kind', $3::text,"
" 'threshold', settle_set_alert($1, $2, $3, ($4::jsonb->>'threshold')::numeric)::text)::text";
static const char *alert_del_sql =
"SELECT 'removed' WHERE settle_remove_alert($1, $2, $3)";

/*
 * $1 transaction_id, $2 participant, $3 the body.  Only the payer's own
 * payment is found (as GET /api/v1/transactions/{id}): another's is 404.
 */
static const char *priority_sql =
"SELECT json_build_object('payment_id', t.payment_id, 'transaction_id', t.transaction_id,"
" 'priority', settle_change_priority(t.payment_id, ($3::jsonb->>'priority')::integer))::text"
" FROM settle.transactions t WHERE t.transaction_id = $1 AND t.source_participant = $2";
static const char *position_sql =
"SELECT json_build_object('payment_id', t.payment_id, 'transaction_id', t.transaction_id,"
" 'position', settle_move_payment(t.payment_id, $3::jsonb->>'position'))::text"
" FROM settle.transactions t WHERE t.transaction_id = $1 AND t.source_participant = $2";
static const char *revoke_sql =
"SELECT json_build_object('payment_id', t.payment_id, 'transaction_id', t.transaction_id,"
" 'status', settle_revoke_payment(t.payment_id, $3::jsonb->>'reason'))::text"
" FROM settle.transactions t WHERE t.transaction_id = $1 AND t.source_participant = $2";

static void
set_problem(ControlProblem *p, int status, const char *type, const char *title, const char *detail,
			const char *field)
{
	p->status = status;
	p->type = type;
	p->title = title;
	snprintf(p->detail, sizeof(p->detail), "%s", detail ? detail : "");
	snprintf(p->field, sizeof(p->field), "%s", field ? field : "");
}

/* a name of the path: 1..128 bytes of printable ASCII (the database checks the rest) */
static bool
copy_name(const char *s, size_t n, char *out)
{
	if (n == 0 || n > GW_MAX_ID)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char) s[i] <= 0x20 || (unsigned char) s[i] >= 0x7f)
			return false;
	memcpy(out, s, n);
	out[n] = '\0';
	return true;
}

/* splits rest ("a", "a/b") into at most max names; -1 if one is not a name or there are more */
static int
split_names(const char *rest, int max, ControlCall *call)
{
	int			n = 0;

	while (*rest)
	{
		const char *slash = strchr(rest, '/');
		size_t		len = slash ? (size_t) (slash - rest) : strlen(rest);

		if (n == max || !copy_name(rest, len, call->arg[n]))
			return -1;
		n++;
		if (!slash)
			break;
		rest = slash + 1;
		if (!*rest)
			return -1;			/* a trailing '/' */
	}
	return n;
}

static const char *
after(const char *url, const char *prefix)
{
	size_t		n = strlen(prefix);

	if (strncmp(url, prefix, n) != 0)
		return NULL;
	if (url[n] == '\0')
		return url + n;
	return url[n] == '/' ? url + n + 1 : NULL;
}

/* the action of method among a path's (0: it takes none of them), or *allow: the methods it takes */
static void
choose(ControlCall *call, const char **allow, const char *method, int on_get, int on_put, int on_delete,
	   const char *methods)
{
	if (on_get && strcmp(method, "GET") == 0)
		call->action = on_get;
	else if (on_put && strcmp(method, "PUT") == 0)
		call->action = on_put;
	else if (on_delete && strcmp(method, "DELETE") == 0)
		call->action = on_delete;
	else
		*allow = methods;
}

int
controls_route(const char *url, const char *method, const char *standing, ControlCall *call,
			   const char **allow, ControlProblem *p)
{
	const char *rest;
	int			n;

	memset(call, 0, sizeof(*call));
	*allow = NULL;
	p->status = 0;
	if ((rest = after(url, "/api/v1/limits")) != NULL)
	{
		n = split_names(rest, 2, call);
		if (n == 0)
			choose(call, allow, method, A_LIMITS, 0, 0, "GET");
		else if (n > 0)
			choose(call, allow, method, 0, A_LIMIT_SET, A_LIMIT_DEL, "PUT, DELETE");
		else
			set_problem(p, 404, "not-found", "Not found",
						"/api/v1/limits/{currency} (multilateral) or /api/v1/limits/{currency}/{counterparty_id}",
						NULL);
		return 1;
	}
	if ((rest = after(url, "/api/v1/reservations")) != NULL)
	{
		n = split_names(rest, 1, call);
		if (n == 0)
			choose(call, allow, method, A_RESERVATIONS, 0, 0, "GET");
		else if (n > 0)
			choose(call, allow, method, 0, A_RESERVATION_SET, A_RESERVATION_DEL, "PUT, DELETE");
		else
			set_problem(p, 404, "not-found", "Not found", "/api/v1/reservations/{account_id}", "account_id");
		if (call->action == A_RESERVATION_DEL)
		{
			if (standing && strcmp(standing, "true") != 0 && strcmp(standing, "false") != 0)
				set_problem(p, 400, "invalid-query", "Invalid query",
							"standing is true (the standing reservation) or false (today's, the default)",
							"standing");
			snprintf(call->standing, sizeof(call->standing), "%s", standing ? standing : "false");
		}
		return 1;
	}
	if ((rest = after(url, "/api/v1/alerts")) != NULL)
	{
		n = split_names(rest, 2, call);
		if (n == 0)
			choose(call, allow, method, A_ALERTS, 0, 0, "GET");
		else if (n == 2)
			choose(call, allow, method, 0, A_ALERT_SET, A_ALERT_DEL, "PUT, DELETE");
		else
			set_problem(p, 404, "not-found", "Not found", "/api/v1/alerts/{currency}/{kind}", NULL);
		return 1;
	}
	if ((rest = after(url, "/api/v1/transactions")) != NULL)
	{
		/* {transaction_id}/{priority|position|revoke}; a transaction_id has no '/' */
		const char *slash = strrchr(rest, '/');
		int			action;
		size_t		bad;

		if (!slash)
			return 0;
		if (strcmp(slash + 1, "priority") == 0)
			action = A_PRIORITY;
		else if (strcmp(slash + 1, "position") == 0)
			action = A_POSITION;
		else if (strcmp(slash + 1, "revoke") == 0)
			action = A_REVOKE;
		else
			return 0;
		if (settle_check_transaction_id(rest, (size_t) (slash - rest), &bad) != FIELD_OK)
		{
			set_problem(p, 404, "not-found", "Not found",
						"a transaction_id has 1 to 128 bytes of printable ASCII, no space or '/', and is not '.' or '..'",
						"transaction_id");
			return 1;
		}
		memcpy(call->arg[0], rest, (size_t) (slash - rest));
		call->arg[0][slash - rest] = '\0';
		if (strcmp(method, "POST") == 0)
			call->action = action;
		else
			*allow = "POST";
		return 1;
	}
	return 0;
}

bool
controls_has_body(const ControlCall *call)
{
	return call->action == A_LIMIT_SET || call->action == A_RESERVATION_SET || call->action == A_ALERT_SET ||
		call->action == A_PRIORITY || call->action == A_POSITION || call->action == A_REVOKE;
}

bool
controls_prepare(ControlCall *call, const char *body, size_t len, const char *participant, Job *job,
				 ControlProblem *p)
{
	JsonField	f[3];
	int			nf = 0;
	JsonError	err;
	JsonStatus	st;

	switch (call->action)
	{
		case A_LIMIT_SET:
			f[nf++] = (JsonField) {"amount", JSON_T_STRING | JSON_T_NUMBER, 0};
			break;
		case A_RESERVATION_SET:
			f[nf++] = (JsonField) {"amount", JSON_T_STRING | JSON_T_NUMBER, 0};
			f[nf++] = (JsonField) {"min_priority", JSON_T_NUMBER, 0};
			f[nf++] = (JsonField) {"standing", JSON_T_BOOL, 0};
			break;
		case A_ALERT_SET:
			f[nf++] = (JsonField) {"threshold", JSON_T_STRING | JSON_T_NUMBER, 0};
			break;
		case A_PRIORITY:
			f[nf++] = (JsonField) {"priority", JSON_T_NUMBER, 0};
			break;
		case A_POSITION:
			f[nf++] = (JsonField) {"position", JSON_T_STRING, 0};
			break;
		case A_REVOKE:
			f[nf++] = (JsonField) {"reason", JSON_T_STRING, 0};
			break;
	}
	if (controls_has_body(call))
	{
		st = json_read_fields(body, len, f, nf, &err);
		if (st == JSON_SYNTAX)
		{
			set_problem(p, 400, "malformed-json", "Malformed JSON", err.message, NULL);
			return false;
		}
		if (st == JSON_SHAPE)
		{
			bool		twice = strstr(err.message, "appears twice") != NULL;

			set_problem(p, 422, twice ? "duplicate-field" : "invalid-body",
						twice ? "A field appears twice" : "Not the fields this endpoint takes", err.message, err.field);
			return false;
		}
		/* every field but a reservation's standing is required */
		for (int i = 0; i < nf; i++)
			if (!f[i].seen && strcmp(f[i].name, "standing") != 0)
			{
				snprintf(err.message, sizeof(err.message), "%s is required", f[i].name);
				set_problem(p, 422, "invalid-body", "Not the fields this endpoint takes", err.message, f[i].name);
				return false;
			}
		call->body = strndup(body, len);
	}

	job->kind = JOB_CONTROL;
	job->params[0] = participant;
	job->params[1] = call->arg[0];
	job->params[2] = call->arg[1][0] ? call->arg[1] : NULL;
	job->params[3] = call->body;
	job->nparams = 4;
	switch (call->action)
	{
		case A_LIMITS:
			job->sql = limits_sql;
			job->nparams = 1;
			break;
		case A_LIMIT_SET:
			job->sql = limit_set_sql;
			break;
		case A_LIMIT_DEL:
			job->sql = limit_del_sql;
			job->nparams = 3;
			break;
		case A_RESERVATIONS:
			job->sql = reservations_sql;
			job->nparams = 1;
			break;
		case A_RESERVATION_SET:
		case A_RESERVATION_DEL:
			job->sql = call->action == A_RESERVATION_SET ? reservation_set_sql : reservation_del_sql;
			job->params[0] = call->arg[0];
			job->params[1] = call->action == A_RESERVATION_SET ? call->body : call->standing;
			job->nparams = 2;
			break;
		case A_ALERTS:
			job->sql = alerts_sql;
			job->nparams = 1;
			break;
		case A_ALERT_SET:
			job->sql = alert_set_sql;
			break;
		case A_ALERT_DEL:
			job->sql = alert_del_sql;
			job->nparams = 3;
			break;
		case A_PRIORITY:
		case A_POSITION:
		case A_REVOKE:
			job->sql = call->action == A_PRIORITY ? priority_sql : call->action == A_POSITION ? position_sql : revoke_sql;
			job->params[0] = call->arg[0];
			job->params[1] = participant;
			job->params[2] = call->body;
			job->nparams = 3;
			break;
	}
	return true;
}

int
controls_answer(const ControlCall *call, Job *job, char **body, ControlProblem *p)
{
	*body = NULL;
	if (!job->status_json)
	{
		switch (call->action)
		{
			case A_LIMIT_DEL:
				set_problem(p, 404, "not-found", "No such limit",
							"the client's participant has no such limit", NULL);
				break;
			case A_RESERVATION_DEL:
				set_problem(p, 404, "not-found", "No such reservation",
							strcmp(call->standing, "true") == 0 ? "the account has no standing reservation"
							: "the account has no reservation for today", NULL);
				break;
			case A_ALERT_DEL:
				set_problem(p, 404, "not-found", "No such alert",
							"the client's participant has no such alert", NULL);
				break;
			default:
				set_problem(p, 404, "not-found", "No such payment",
							"no payment of this client's participant has this transaction_id", "transaction_id");
		}
		return p->status;
	}
	if (call->action == A_LIMIT_DEL || call->action == A_RESERVATION_DEL || call->action == A_ALERT_DEL)
		return 204;
	*body = job->status_json;
	job->status_json = NULL;	/* the caller's now */
	return 200;
}

void
controls_free(ControlCall *call)
{
	free(call->body);
	call->body = NULL;
}
