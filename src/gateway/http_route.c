/*
 * http_route.c -- which route a request takes (path, method, media type)
 * and the job it becomes: its body read into payments, an ISO 20022
 * message or a control, handed to the pool, and taken back when done.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http_int.h"
#include "validate.h"

/* YYYY-MM-DD, month and day in range (the database checks the calendar) */
static bool
is_date(const char *s)
{
	int			y,
				m,
				d;
	char		tail;

	return s && strlen(s) == 10 && s[4] == '-' && s[7] == '-' &&
		strspn(s, "0123456789-") == 10 &&
		sscanf(s, "%4d-%2d-%2d%c", &y, &m, &d, &tail) == 3 && y >= 1 && m >= 1 && m <= 12 && d >= 1 && d <= 31;
}

static void
job_done(Job *j)
{
	Req		   *r = j->owner;

	MHD_resume_connection(r->conn);
}

void
job_clear(Job *j)
{
	if (j->results)
		for (int i = 0; i < j->n; i++)
		{
			free(j->results[i].transaction_id);
			free(j->results[i].idempotency_key);
			free(j->results[i].message);
		}
	free(j->results);
	free(j->status_json);
	free(j->error_message);
	if (j->iso_cells)
		for (int i = 0; i < j->iso_rows * (j->kind == JOB_ISO_REPORT ? ISO_REPORT_COLS :
											j->kind == JOB_ISO_PAYMENT ? ISO_PAYMENT_COLS : ISO_STATUS_COLS); i++)
			free(j->iso_cells[i]);
	free(j->iso_cells);
}

/* Suspend, then queue: the pool may answer before this returns. */
void
submit_job(Req *r)
{
	int			rc;

	r->job.owner = r;
	r->job.done = job_done;
	snprintf(r->job.role, sizeof(r->job.role), "%s", r->auth.role);
	snprintf(r->job.participant, sizeof(r->job.participant), "%s", r->auth.participant);
	r->suspended = true;
	MHD_suspend_connection(r->conn);
	rc = pool_enqueue(&r->job);
	if (rc != 0)
	{
		if (rc == 429)
			decide_problem(r, 429, "saturated", "Too many payments waiting",
						   "the gateway's queue of payments is full; retry after the Retry-After delay",
						   NULL, NULL);
		else
			decide_problem(r, 503, "no-primary", "No primary database",
						   "no primary database is reachable now; retry with the same idempotency_key",
						   NULL, NULL);
		r->suspended = false;
		MHD_resume_connection(r->conn);
	}
}

/*
 * Content-Type is `type` (case-insensitive), with no parameter or with
 * charset=utf-8 only.
 */
static bool
media_type_is(const char *ctype, const char *type)
{
	const char *p;
	size_t		n = strlen(type);

	if (!ctype || strncasecmp(ctype, type, n) != 0)
		return false;
	p = ctype + n;
	while (*p == ' ')
		p++;
	if (*p == '\0')
		return true;
	if (*p != ';')
		return false;
	p++;
	while (*p == ' ')
		p++;
	return strncasecmp(p, "charset=utf-8", 13) == 0 && (p[13] == '\0' || p[13] == ';' || p[13] == ' ');
}

static bool
is_json(const char *ctype)
{
	return media_type_is(ctype, "application/json");
}

/* application/xml or text/xml, UTF-8 if a charset is given */
static bool
is_xml(const char *ctype)
{
	return media_type_is(ctype, "application/xml") || media_type_is(ctype, "text/xml");
}

/* First call: the route and the checks that need no body. */
void
route_request(Req *r, const char *url, const char *method)
{
	size_t		sl = strlen(GW_SUBMIT_PATH);
	const char *allow = NULL;
	struct MHD_Connection *c = r->conn;
	size_t		bad;
	ControlProblem cp;

	if (controls_route(url, method, MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "standing"),
					   &r->ctl, &allow, &cp))
	{
		if (cp.status)
		{
			decide_problem(r, cp.status, cp.type, cp.title, cp.detail, NULL, cp.field);
			return;
		}
		r->route = R_CONTROL;
	}
	else if (strcmp(url, GW_SUBMIT_PATH) == 0 || strcmp(url, "/api/v1/transactions/") == 0)
	{
		if (strcmp(method, "POST") == 0)
			r->route = R_SUBMIT;
		else
			allow = "POST";
	}
	else if (strncmp(url, GW_SUBMIT_PATH, sl) == 0 && url[sl] == '/')
	{
		const char *id = url + sl + 1;

		if (strcmp(method, "GET") != 0)
			allow = "GET";
		else if (settle_check_transaction_id(id, strlen(id), &bad) != FIELD_OK)
		{
			/* libmicrohttpd has decoded the path: intake's rule, so every accepted id reads back */
			decide_problem(r, 404, "not-found", "Not found",
						   "a transaction_id has 1 to 128 bytes of printable ASCII, no space or '/', and is not '.' or '..'",
						   NULL, "transaction_id");
			return;
		}
		else
		{
			r->route = R_STATUS;
			snprintf(r->path_id, sizeof(r->path_id), "%s", id);
		}
	}
	else if (strcmp(url, GW_ISO_PATH) == 0)
	{
		if (strcmp(method, "POST") == 0)
			r->route = R_ISO_SUBMIT;
		else
			allow = "POST";
	}
	else if (strncmp(url, GW_ISO_STATUS_PATH, strlen(GW_ISO_STATUS_PATH)) == 0)
	{
		const char *id = url + strlen(GW_ISO_STATUS_PATH);
		size_t		n = strlen(id);

		if (strcmp(method, "GET") != 0)
			allow = "GET";
		else if (n == 0 || n > ISO_MAX_TEXT || settle_check_key(id, n, &bad) != FIELD_OK)
		{
			decide_problem(r, 404, "not-found", "Not found",
						   "a MsgId the gateway accepts has 1 to 35 bytes of printable ASCII without space",
						   NULL, "MsgId");
			return;
		}
		else
		{
			r->route = R_ISO_STATUS;
			snprintf(r->iso_msg_id, sizeof(r->iso_msg_id), "%s", id);
		}
	}
	else if (strcmp(url, GW_ISO_CAMT053_PATH) == 0 || strcmp(url, GW_ISO_CAMT054_PATH) == 0)
	{
		const char *date = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "date");

		if (strcmp(method, "GET") != 0)
			allow = "GET";
		else if (!is_date(date))
		{
			decide_problem(r, 400, "invalid-query", "Invalid query",
						   "date=YYYY-MM-DD is required: the UTC day the statement covers", NULL, "date");
			return;
		}
		else
		{
			r->route = R_ISO_REPORT;
			r->iso_statement = strcmp(url, GW_ISO_CAMT053_PATH) == 0;
			snprintf(r->iso_date, sizeof(r->iso_date), "%s", date);
		}
	}
	else if (strncmp(url, GW_ISO_CAMT054_PAYMENT_PATH, strlen(GW_ISO_CAMT054_PAYMENT_PATH)) == 0)
	{
		/* /camt.054/{payment_id}, or /camt.054/{MsgId}/{TxId} (a TxId has no '/') */
		const char *rest = url + strlen(GW_ISO_CAMT054_PAYMENT_PATH);
		const char *slash = strrchr(rest, '/');
		size_t		digits = strspn(rest, "0123456789");

		if (strcmp(method, "GET") != 0)
			allow = "GET";
		else if (!slash && digits > 0 && digits <= 18 && rest[digits] == '\0')
		{
			r->route = R_ISO_PAYMENT;
			snprintf(r->iso_payment, sizeof(r->iso_payment), "%s", rest);
		}
		else if (slash && slash > rest && slash - rest <= ISO_MAX_TEXT && strlen(slash + 1) > 0 &&
				 strlen(slash + 1) <= ISO_MAX_TEXT + 1 &&
				 settle_check_key(rest, strlen(rest), &bad) == FIELD_OK)
		{
			char		msg_id[ISO_MAX_TEXT + 1];

			r->route = R_ISO_PAYMENT;
			snprintf(msg_id, sizeof(msg_id), "%.*s", (int) (slash - rest), rest);
			iso_key(ISO_MSG_PACS008, msg_id, slash + 1, r->iso_prefix[0], sizeof(r->iso_prefix[0]));
			iso_key(ISO_MSG_PACS009, msg_id, slash + 1, r->iso_prefix[1], sizeof(r->iso_prefix[1]));
		}
		else
		{
			decide_problem(r, 404, "not-found", "Not found",
						   "camt.054/{payment_id} or camt.054/{MsgId}/{TxId}", NULL, NULL);
			return;
		}
	}
	else if (strcmp(url, GW_ISO_EVENTS_PATH) == 0)
	{
		const char *since = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "since");
		const char *last = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Last-Event-ID");
		const char *cursor = last ? last : since;

		if (strcmp(method, "GET") != 0)
			allow = "GET";
		else if (cursor && !iso_notify_cursor_valid(cursor))
		{
			decide_problem(r, 400, "invalid-query", "Invalid query",
						   "Last-Event-ID (or since=) must be an id this stream sent: <xid>-<event_id>",
						   NULL, last ? "Last-Event-ID" : "since");
			return;
		}
		else
		{
			r->route = R_ISO_EVENTS;
			snprintf(r->iso_cursor, sizeof(r->iso_cursor), "%s", cursor ? cursor : "");
		}
	}
	else if (strcmp(url, GW_HEALTH_PATH) == 0)
	{
		if (strcmp(method, "GET") == 0)
			r->route = R_HEALTH;
		else
			allow = "GET";
	}
	else if (strcmp(url, GW_METRICS_PATH) == 0)
	{
		if (strcmp(method, "GET") == 0)
			r->route = R_METRICS;
		else
			allow = "GET";
	}
	else
	{
		decide_problem(r, 404, "not-found", "Not found", "no such endpoint", NULL, NULL);
		return;
	}
	if (allow)
	{
		decide_problem(r, 405, "method-not-allowed", "Method not allowed", NULL, NULL, NULL);
		MHD_add_response_header(r->pending, MHD_HTTP_HEADER_ALLOW, allow);
		return;
	}
	if (r->route == R_SUBMIT || r->route == R_STATUS || r->route == R_ISO_SUBMIT || r->route == R_ISO_STATUS ||
		r->route == R_ISO_REPORT || r->route == R_CONTROL || r->route == R_ISO_PAYMENT || r->route == R_ISO_EVENTS)
	{
		auth_check(MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION), &r->auth);
		if (r->auth.http_status == 401)
		{
			decide_problem(r, 401, "unauthorized", "Unauthorized", r->auth.reason, NULL, NULL);
			return;
		}
		if (r->auth.http_status)
		{
			decide_problem(r, 503, "no-primary", "Cannot authenticate now", r->auth.reason, NULL, NULL);
			return;
		}
	}
	if (r->route == R_SUBMIT || r->route == R_ISO_SUBMIT || (r->route == R_CONTROL && controls_has_body(&r->ctl)))
	{
		bool		iso = r->route == R_ISO_SUBMIT;
		const char *ctype = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
		const char *clen = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);

		if (!(iso ? is_xml(ctype) : is_json(ctype)))
		{
			decide_problem(r, 415, "unsupported-media-type", "Unsupported media type",
						   iso ? "the body must be Content-Type: application/xml (UTF-8)"
						   : "the body must be Content-Type: application/json (UTF-8)", NULL, NULL);
			return;
		}
		if (clen && strtoull(clen, NULL, 10) > gw_config.max_body)
		{
			decide_problem(r, 413, "body-too-large", "Body too large",
						   "the body is larger than the gateway accepts", NULL, NULL);
			return;
		}
		buf_init(&r->body, iso ? 4096 : 1024);
	}
}

/*
 * Last call for an ISO 20022 message: read, validate and map it, then
 * queue its payments as one job (the JSON path's batches, the same
 * settle_submit_bulk); the answer is a pacs.002.
 */
void
start_iso_submit(Req *r)
{
	char		err[512];
	IsoStatus	st;
	int			sent = 0;

	if (r->too_large)
	{
		decide_problem(r, 413, "body-too-large", "Body too large",
					   "the body is larger than the gateway accepts", NULL, NULL);
		return;
	}
	if (!iso_ready())
	{
		decide_problem(r, 503, "iso20022-unavailable", "ISO 20022 schemas not loaded",
					   "the gateway could not load its ISO 20022 schemas (--iso20022-xsd-dir)", NULL, NULL);
		return;
	}
	st = iso_read_message(r->body.data, r->body.len, gw_config.max_array, &r->iso, err, sizeof(err));
	switch (st)
	{
		case ISO_OK:
			break;
		case ISO_NOT_XML:
			decide_problem(r, 400, "invalid-xml", "Not an XML document the gateway reads", err, NULL, NULL);
			return;
		case ISO_UNSUPPORTED:
			decide_problem(r, 422, "unsupported-message", "Unsupported ISO 20022 message", err, NULL, NULL);
			return;
		case ISO_INVALID:
			decide_problem(r, 422, "schema-invalid", "The message does not validate against its schema",
						   err, NULL, NULL);
			return;
		case ISO_TOO_MANY:
			decide_problem(r, 422, "too-many-transactions", "Too many transactions", err, NULL, NULL);
			return;
	}
	/* the header's sender is the token's participant, or the message is refused as a whole */
	if (r->iso.hdr.present && !r->iso.group_reason && strcmp(r->iso.hdr.fr, r->auth.participant) != 0)
	{
		r->iso.group_reason = "RC01";
		snprintf(r->iso.group_why, sizeof(r->iso.group_why),
				 "AppHdr Fr %.30s is not the token's participant %.30s", r->iso.hdr.fr, r->auth.participant);
	}
	r->iso_sent = malloc(sizeof(int) * (size_t) (r->iso.n + 1));
	r->job.elem = calloc((size_t) r->iso.n + 1, sizeof(char *));
	r->job.elem_len = calloc((size_t) r->iso.n + 1, sizeof(int));
	for (int i = 0; i < r->iso.n; i++)
	{
		r->iso_sent[i] = -1;
		if (!r->iso.group_reason && r->iso.tx[i].json)
		{
			r->iso_sent[i] = sent;
			r->job.elem[sent] = r->iso.tx[i].json;
			r->job.elem_len[sent] = (int) strlen(r->iso.tx[i].json);
			sent++;
		}
	}
	r->job.kind = JOB_SUBMIT;
	r->job.n = sent;
	r->job.results = calloc((size_t) sent + 1, sizeof(PaymentResult));
	if (sent == 0)
	{
		/* nothing for the database: refused as a whole, or every transaction here */
		decide_iso_submit(r);
		return;
	}
	submit_job(r);
}

/* Last call for a control: check the body, queue its statement. */
void
start_control(Req *r)
{
	ControlProblem p;

	if (r->too_large)
	{
		decide_problem(r, 413, "body-too-large", "Body too large",
					   "the body is larger than the gateway accepts", NULL, NULL);
		return;
	}
	if (!controls_prepare(&r->ctl, r->body.data ? r->body.data : "", r->body.len, r->auth.participant,
						  &r->job, &p))
	{
		decide_problem(r, p.status, p.type, p.title, p.detail, NULL, p.field);
		return;
	}
	submit_job(r);
}

/* Last call for a submit: read the body, queue the job. */
void
start_submit(Req *r)
{
	JsonError	err;
	JsonStatus	st;

	if (r->too_large)
	{
		decide_problem(r, 413, "body-too-large", "Body too large",
					   "the body is larger than the gateway accepts", NULL, NULL);
		return;
	}
	st = json_read_payments(r->body.data, r->body.len, gw_config.max_array, &r->pays, &err);
	if (st == JSON_SYNTAX)
	{
		decide_problem(r, 400, "malformed-json", "Malformed JSON", err.message, NULL, NULL);
		return;
	}
	if (st == JSON_SHAPE)
	{
		decide_problem(r, 422, err.field[0] ? "duplicate-field" : "invalid-body",
					   err.field[0] ? "A field appears twice" : "Not a payment or an array of payments",
					   err.message, NULL, err.field);
		return;
	}
	r->job.kind = JOB_SUBMIT;
	r->job.n = r->pays.n;
	r->job.elem = r->pays.elem;
	r->job.elem_len = r->pays.elem_len;
	r->job.results = calloc((size_t) r->pays.n, sizeof(PaymentResult));
	submit_job(r);
}
