/*
 * http.c -- the HTTP server (libmicrohttpd): routes, limits, answers.
 *
 * An event loop (http_threads threads, epoll) reads requests; a request that
 * needs the database is suspended, handed to the pool as a job, and resumed
 * by the pool once the database answered (after commit): no thread waits on
 * the database per request, so connections cost memory, not threads.
 * Limits: connections (total, per address), silence per connection,
 * memory per connection (request line and headers: above it 431), body size
 * (413), payments per request, payments queued (429).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <stdatomic.h>

#include <microhttpd.h>

#include "gateway.h"
#include "validate.h"

typedef enum
{
	R_NONE,
	R_SUBMIT,
	R_STATUS,
	R_HEALTH,
	R_METRICS,
	R_ISO_SUBMIT,				/* POST an ISO 20022 message */
	R_ISO_STATUS,				/* GET its pacs.002 */
	R_ISO_REPORT,				/* GET a day's camt.053 or camt.054 */
	R_CONTROL,					/* a participant's control (controls.c) */
	R_ISO_PAYMENT,				/* GET one payment's camt.054 */
	R_ISO_EVENTS				/* GET the stream of pacs.002 and camt.054 */
} Route;

typedef struct Req
{
	struct MHD_Connection *conn;
	double		start;
	Route		route;
	int			status;			/* the status answered */
	bool		answered;		/* a response is queued */
	bool		suspended;
	/* a response decided but not yet queued */
	struct MHD_Response *pending;
	int			pending_status;
	Buf			body;
	bool		too_large;
	size_t		discarded;		/* bytes dropped from a body too large */
	AuthResult	auth;
	char		path_id[GW_MAX_ID + 1];
	JsonPayments pays;
	Job			job;
	/* R_ISO_SUBMIT: the message read; where each transaction went in the job (-1: refused here) */
	IsoMessage	iso;
	int		   *iso_sent;
	/* R_ISO_STATUS */
	char		iso_msg_id[ISO_MAX_TEXT + 1];
	char		iso_prefix[2][GW_MAX_ID + 1];
	/* R_ISO_REPORT */
	bool		iso_statement;	/* camt.053, else camt.054 */
	char		iso_date[11];
	/* R_CONTROL */
	ControlCall ctl;
	/* R_ISO_PAYMENT: payment_id, or the keys of MsgId/TxId as pacs.008 and pacs.009 */
	char		iso_payment[24];
	/* R_ISO_EVENTS: the resume point, "" for now */
	char		iso_cursor[48];
} Req;

static struct MHD_Daemon *daemon_;

/*
 * The connection limit, done here rather than by libmicrohttpd's: at its
 * limit libmicrohttpd stops accepting, so new connections wait in the
 * kernel's listen queue, unanswered, until a slot frees.  Instead every
 * connection is accepted and counted: up to max_connections are served; up
 * to OVERFLOW_CONNECTIONS more are answered 503 (Retry-After) to their first
 * request and closed; any beyond are closed at once, unread.
 * libmicrohttpd's own limit is set above all that (with room for the
 * threads' races on the count), so it never stops accepting first.
 */
#define OVERFLOW_CONNECTIONS 64
static atomic_int open_connections;
static char over_limit_mark;	/* socket_context of a connection over the limit */
static char *tls_cert_pem;
static char *tls_key_pem;

static const char *SUBMIT_PATH = "/api/v1/transactions";
static const char *HEALTH_PATH = "/api/v1/health";
static const char *METRICS_PATH = "/metrics";
static const char *ISO_PATH = "/api/v1/iso20022";
static const char *ISO_STATUS_PATH = "/api/v1/iso20022/pacs.002/";
static const char *ISO_CAMT053_PATH = "/api/v1/iso20022/camt.053";
static const char *ISO_CAMT054_PATH = "/api/v1/iso20022/camt.054";
static const char *ISO_CAMT054_PAYMENT_PATH = "/api/v1/iso20022/camt.054/";
static const char *ISO_EVENTS_PATH = "/api/v1/iso20022/notifications";

static unsigned
http_open_connections(void)
{
	const union MHD_DaemonInfo *i;

	if (!daemon_)
		return 0;
	i = MHD_get_daemon_info(daemon_, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
	return i ? i->num_connections : 0;
}

/* ---- building answers ---- */

static struct MHD_Response *
make_response(char *body, const char *ctype)
{
	struct MHD_Response *resp =
		MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);

	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	return resp;
}

/* A problem object (RFC 9457) into b. */
static void
problem_into(Buf *b, int status, const char *type, const char *title, const char *detail,
			 const char *sqlstate, const char *field, const char *instance)
{
	buf_puts(b, "{\"type\":");
	if (sqlstate && *sqlstate)
	{
		char		t[64];

		snprintf(t, sizeof(t), "urn:settle:sqlstate:%s", sqlstate);
		buf_json_string(b, t);
	}
	else
	{
		char		t[96];

		snprintf(t, sizeof(t), "urn:settle:gateway:%s", type);
		buf_json_string(b, t);
	}
	buf_puts(b, ",\"title\":");
	buf_json_string(b, title);
	buf_printf(b, ",\"status\":%d", status);
	if (detail && *detail)
	{
		/* libpq's messages end with a newline and may start with ERROR: */
		char	   *d = strdup(detail);
		size_t		n = strlen(d);

		while (n > 0 && (d[n - 1] == '\n' || d[n - 1] == ' '))
			d[--n] = '\0';
		buf_puts(b, ",\"detail\":");
		buf_json_string(b, strncmp(d, "ERROR:  ", 8) == 0 ? d + 8 : d);
		free(d);
	}
	if (sqlstate && *sqlstate)
	{
		buf_puts(b, ",\"sqlstate\":");
		buf_json_string(b, sqlstate);
	}
	if (field && *field)
	{
		buf_puts(b, ",\"field\":");
		buf_json_string(b, field);
	}
	if (instance)
	{
		buf_puts(b, ",\"instance\":");
		buf_json_string(b, instance);
	}
	buf_puts(b, "}");
}

static void
decide(Req *r, int status, struct MHD_Response *resp)
{
	if (status == 503 || status == 429)
	{
		char		ra[16];

		snprintf(ra, sizeof(ra), "%d", gw_config.retry_after);
		MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, ra);
	}
	if (status == 401)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"settle\"");
	r->pending = resp;
	r->pending_status = status;
}

static void
decide_problem(Req *r, int status, const char *type, const char *title, const char *detail,
			   const char *sqlstate, const char *field)
{
	Buf			b;

	buf_init(&b, 256);
	problem_into(&b, status, type, title, detail, sqlstate, field, NULL);
	decide(r, status, make_response(buf_steal(&b), "application/problem+json"));
}

static enum MHD_Result
send_pending(Req *r)
{
	enum MHD_Result rc;

	r->status = r->pending_status;
	r->answered = true;
	rc = MHD_queue_response(r->conn, (unsigned) r->pending_status, r->pending);
	MHD_destroy_response(r->pending);
	r->pending = NULL;
	return rc;
}

static void
url_encode_into(Buf *b, const char *s)
{
	for (const unsigned char *p = (const unsigned char *) s; *p; p++)
	{
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
			*p == '-' || *p == '_' || *p == '.' || *p == '~')
			buf_append(b, (const char *) p, 1);
		else
			buf_printf(b, "%%%02X", *p);
	}
}

static void
receipt_into(Buf *b, const PaymentResult *pr)
{
	buf_printf(b, "{\"payment_id\":%lld,\"transaction_id\":", pr->payment_id);
	buf_json_string(b, pr->transaction_id);
	buf_puts(b, ",\"idempotency_key\":");
	buf_json_string(b, pr->idempotency_key);
	buf_puts(b, "}");
}

static int
result_status(const PaymentResult *pr)
{
	if (pr->has_payment)
		return pr->replay ? 200 : 201;
	if (!pr->sqlstate[0])
		return 500;
	return status_for_sqlstate(pr->sqlstate).http_status;
}

static void
refusal_into(Buf *b, const PaymentResult *pr)
{
	char		field[GW_MAX_ID + 1];
	int			status = result_status(pr);

	if (!pr->sqlstate[0])
	{
		problem_into(b, 500, "no-result", "The database returned no result for this payment", NULL, NULL,
					 NULL, NULL);
		return;
	}
	status_field_of_message(pr->message, field, sizeof(field));
	problem_into(b, status, NULL, status_for_sqlstate(pr->sqlstate).title, pr->message, pr->sqlstate,
				 field, NULL);
}

/* The answer to a finished submit job. */
static void
decide_submit(Req *r)
{
	Job		   *j = &r->job;
	Buf			b;

	if (j->error_status)
	{
		StatusMapping m = status_for_sqlstate(j->error_sqlstate);

		decide_problem(r, j->error_status, "database", m.title, j->error_message, j->error_sqlstate, NULL);
		return;
	}
	buf_init(&b, 128 * (size_t) j->n);
	if (!r->pays.is_array)
	{
		PaymentResult *pr = &j->results[0];
		int			status = result_status(pr);
		struct MHD_Response *resp;

		if (pr->has_payment)
		{
			Buf			loc;

			receipt_into(&b, pr);
			resp = make_response(buf_steal(&b), "application/json");
			buf_init(&loc, 64);
			buf_puts(&loc, SUBMIT_PATH);
			buf_puts(&loc, "/");
			url_encode_into(&loc, pr->transaction_id ? pr->transaction_id : "");
			MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, loc.data);
			buf_free(&loc);
			MHD_add_response_header(resp, "Idempotent-Replayed", pr->replay ? "true" : "false");
		}
		else
		{
			refusal_into(&b, pr);
			resp = make_response(buf_steal(&b), "application/problem+json");
		}
		decide(r, status, resp);
		return;
	}
	buf_puts(&b, "{\"results\":[");
	for (int i = 0; i < j->n; i++)
	{
		PaymentResult *pr = &j->results[i];

		if (i)
			buf_puts(&b, ",");
		if (pr->has_payment)
		{
			buf_printf(&b, "{\"status\":%d,\"payment_id\":%lld,\"transaction_id\":",
					   result_status(pr), pr->payment_id);
			buf_json_string(&b, pr->transaction_id);
			buf_puts(&b, ",\"idempotency_key\":");
			buf_json_string(&b, pr->idempotency_key);
			buf_puts(&b, "}");
		}
		else
			refusal_into(&b, pr);
	}
	buf_puts(&b, "]}");
	decide(r, 200, make_response(buf_steal(&b), "application/json"));
}

static void
decide_status(Req *r)
{
	Job		   *j = &r->job;

	if (j->error_status)
	{
		StatusMapping m = status_for_sqlstate(j->error_sqlstate);

		decide_problem(r, j->error_status, "database", m.title, j->error_message, j->error_sqlstate, NULL);
	}
	else if (!j->status_json)
		decide_problem(r, 404, "not-found", "No such payment",
					   "no payment of this client's participant has this transaction_id", NULL, NULL);
	else
	{
		decide(r, 200, make_response(j->status_json, "application/json"));
		j->status_json = NULL;	/* the response frees it */
	}
}

static void
decide_health(Req *r)
{
	HealthReport h;
	Buf			b;
	bool		ok;

	health_get(&h);
	/* an orphan (too few synchronous standbys streaming) refuses payments: not ready */
	ok = h.reachable && h.primary && (!h.worker_enabled || h.worker_running) && !h.sync_missing;
	buf_init(&b, 512);
	buf_printf(&b, "{\"status\":\"%s\",\"database\":{\"reachable\":%s,\"role\":%s",
			   ok ? "ok" : "unavailable", h.reachable ? "true" : "false",
			   !h.reachable ? "null" : h.primary ? "\"primary\"" : "\"replica\"");
	if (!h.reachable)
	{
		buf_puts(&b, ",\"error\":");
		buf_json_string(&b, h.error);
	}
	buf_printf(&b, "},\"worker\":{\"enabled\":%s,\"running\":%s,\"last_cycle_age_seconds\":",
			   h.worker_enabled ? "true" : "false", h.worker_running ? "true" : "false");
	if (h.has_cycle_age)
		buf_printf(&b, "%.3f", h.last_cycle_age);
	else
		buf_puts(&b, "null");
	buf_printf(&b, "},\"synchronous_standby\":{\"required\":%s,\"attached\":%d,\"needed\":%d,\"missing\":%s",
			   h.sync_required ? "true" : "false", h.sync_standbys, h.sync_needed,
			   h.sync_missing ? "true" : "false");
	if (h.has_sync_state)
	{
		buf_puts(&b, ",\"reason\":");
		buf_json_string(&b, h.sync_reason);
	}
	buf_puts(&b, "}}");
	decide(r, ok ? 200 : 503, make_response(buf_steal(&b), "application/json"));
}

static void
decide_metrics(Req *r)
{
	Buf			b;
	MetricsGauges g;

	pool_gauges(&g.pool_busy, &g.pool_connected, &g.pool_size, &g.queued_rows);
	g.http_connections = http_open_connections();
	buf_init(&b, 4096);
	metrics_render(&b, &g);
	decide(r, 200, make_response(buf_steal(&b), "text/plain; version=0.0.4; charset=utf-8"));
}

/* ---- ISO 20022 (docs/ISO20022.md) ---- */

static void
decide_xml(Req *r, int status, Buf *b)
{
	decide(r, status, make_response(buf_steal(b), "application/xml; charset=utf-8"));
}

/* The pacs.002 of a message just submitted (or refused as a whole, or with nothing to send). */
static void
decide_iso_submit(Req *r)
{
	Job		   *j = &r->job;
	Buf			b;

	if (j->error_status)
	{
		StatusMapping m = status_for_sqlstate(j->error_sqlstate);

		decide_problem(r, j->error_status, "database", m.title, j->error_message, j->error_sqlstate, NULL);
		return;
	}
	buf_init(&b, 1024 + 512 * (size_t) r->iso.n);
	iso_write_pacs002_submit(&b, &r->iso, r->iso_sent, j->results);
	decide_xml(r, 200, &b);
}

static void
decide_iso_status(Req *r)
{
	Job		   *j = &r->job;
	Buf			b;
	int			rows = 0;

	if (j->error_status)
	{
		StatusMapping m = status_for_sqlstate(j->error_sqlstate);

		decide_problem(r, j->error_status, "database", m.title, j->error_message, j->error_sqlstate, NULL);
		return;
	}
	/* rows of the first kind only (a MsgId used for both pacs.008 and pacs.009: pacs.008's) */
	while (rows < j->iso_rows && strcmp(j->iso_cells[rows * ISO_STATUS_COLS], j->iso_cells[0]) == 0)
		rows++;
	if (rows == 0)
	{
		decide_problem(r, 404, "not-found", "Not found",
					   "no payment of this participant came from a message with this MsgId", NULL, "MsgId");
		return;
	}
	buf_init(&b, 1024 + 256 * (size_t) rows);
	iso_write_pacs002_status(&b, r->iso_msg_id, j->iso_cells[0][0] == '1' ? ISO_MSG_PACS008 : ISO_MSG_PACS009,
							 rows, j->iso_cells);
	decide_xml(r, 200, &b);
}

static void
decide_iso_report(Req *r)
{
	Job		   *j = &r->job;
	Buf			b;

	if (j->error_status)
	{
		StatusMapping m = status_for_sqlstate(j->error_sqlstate);

		decide_problem(r, j->error_status, "database", m.title, j->error_message, j->error_sqlstate, NULL);
		return;
	}
	if (j->iso_rows < 2)
	{
		decide_problem(r, 404, "not-found", "Not found", "the client's participant has no account", NULL, NULL);
		return;
	}
	buf_init(&b, 4096 + 1024 * (size_t) j->iso_rows);
	iso_write_camt(&b, r->iso_statement, r->auth.participant, r->iso_date, j->iso_rows, j->iso_cells);
	decide_xml(r, 200, &b);
}

static void
decide_control(Req *r)
{
	Job		   *j = &r->job;
	ControlProblem p;
	char	   *body;
	int			status;

	if (j->error_status)
	{
		StatusMapping m = status_for_sqlstate(j->error_sqlstate);
		char		field[GW_MAX_ID + 1];
		const char *msg = j->error_message ? j->error_message : "";

		status_field_of_message(strncmp(msg, "ERROR:  ", 8) == 0 ? msg + 8 : msg, field, sizeof(field));
		decide_problem(r, j->error_status, "database", m.title, msg, j->error_sqlstate, field);
		return;
	}
	status = controls_answer(&r->ctl, j, &body, &p);
	if (status == 204)
		decide(r, 204, MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT));
	else if (body)
		decide(r, status, make_response(body, "application/json"));
	else
		decide_problem(r, p.status, p.type, p.title, p.detail, NULL, p.field);
}

/* One payment's camt.054: its entries on the client's participant's accounts. */
static void
decide_iso_payment(Req *r)
{
	Job		   *j = &r->job;
	Buf			b;

	if (j->error_status)
	{
		StatusMapping m = status_for_sqlstate(j->error_sqlstate);

		decide_problem(r, j->error_status, "database", m.title, j->error_message, j->error_sqlstate, NULL);
		return;
	}
	if (j->iso_rows == 0)
	{
		decide_problem(r, 404, "not-found", "Not found",
					   "no entry of this payment on the client's participant's accounts (not settled, or not its)",
					   NULL, NULL);
		return;
	}
	buf_init(&b, 2048 + 512 * (size_t) j->iso_rows);
	iso_write_camt054_payment(&b, r->auth.participant, j->iso_rows, j->iso_cells);
	decide_xml(r, 200, &b);
}

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

/* ---- jobs ---- */

static void
job_done(Job *j)
{
	Req		   *r = j->owner;

	MHD_resume_connection(r->conn);
}

static void
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
static void
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

/* ---- the request ---- */

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
static void
route_request(Req *r, const char *url, const char *method)
{
	size_t		sl = strlen(SUBMIT_PATH);
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
	else if (strcmp(url, SUBMIT_PATH) == 0 || strcmp(url, "/api/v1/transactions/") == 0)
	{
		if (strcmp(method, "POST") == 0)
			r->route = R_SUBMIT;
		else
			allow = "POST";
	}
	else if (strncmp(url, SUBMIT_PATH, sl) == 0 && url[sl] == '/')
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
	else if (strcmp(url, ISO_PATH) == 0)
	{
		if (strcmp(method, "POST") == 0)
			r->route = R_ISO_SUBMIT;
		else
			allow = "POST";
	}
	else if (strncmp(url, ISO_STATUS_PATH, strlen(ISO_STATUS_PATH)) == 0)
	{
		const char *id = url + strlen(ISO_STATUS_PATH);
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
	else if (strcmp(url, ISO_CAMT053_PATH) == 0 || strcmp(url, ISO_CAMT054_PATH) == 0)
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
			r->iso_statement = strcmp(url, ISO_CAMT053_PATH) == 0;
			snprintf(r->iso_date, sizeof(r->iso_date), "%s", date);
		}
	}
	else if (strncmp(url, ISO_CAMT054_PAYMENT_PATH, strlen(ISO_CAMT054_PAYMENT_PATH)) == 0)
	{
		/* /camt.054/{payment_id}, or /camt.054/{MsgId}/{TxId} (a TxId has no '/') */
		const char *rest = url + strlen(ISO_CAMT054_PAYMENT_PATH);
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
	else if (strcmp(url, ISO_EVENTS_PATH) == 0)
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
	else if (strcmp(url, HEALTH_PATH) == 0)
	{
		if (strcmp(method, "GET") == 0)
			r->route = R_HEALTH;
		else
			allow = "GET";
	}
	else if (strcmp(url, METRICS_PATH) == 0)
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
static void
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
static void
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
static void
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

/*
 * Percent-decoding of the path and query, as libmicrohttpd's own but for
 * %00: decoded, it would cut the path short (the handler gets a C string),
 * so that /api/v1/transactions/abc%00xyz would read payment "abc".  Left
 * encoded, it is refused by the transaction_id rule like any other '%...'
 * that names no payment.
 */
static size_t
unescape(void *cls, struct MHD_Connection *c, char *s)
{
	char	   *in = s;
	char	   *out = s;

	while (*in)
	{
		int			hi,
					lo;

		if (in[0] == '%' && (hi = hex_digit_value(in[1])) >= 0 && (lo = hex_digit_value(in[2])) >= 0 &&
			(hi | lo) != 0)
		{
			*out++ = (char) (hi * 16 + lo);
			in += 3;
		}
		else
			*out++ = *in++;
	}
	*out = '\0';
	return (size_t) (out - s);
}

/* Accept policy: beyond the 503 allowance a connection is closed at once. */
static enum MHD_Result
accept_policy(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
	return atomic_load(&open_connections) < gw_config.max_connections + OVERFLOW_CONNECTIONS
		? MHD_YES : MHD_NO;
}

/* Count connections; mark those over max_connections. */
static void
notify_connection(void *cls, struct MHD_Connection *c, void **socket_context,
				  enum MHD_ConnectionNotificationCode toe)
{
	if (toe == MHD_CONNECTION_NOTIFY_STARTED)
	{
		if (atomic_fetch_add(&open_connections, 1) >= gw_config.max_connections)
			*socket_context = &over_limit_mark;
	}
	else if (toe == MHD_CONNECTION_NOTIFY_CLOSED)
		atomic_fetch_sub(&open_connections, 1);
}

static bool
is_over_limit(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *i = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

	return i && i->socket_context == &over_limit_mark;
}

static enum MHD_Result
handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
	   const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
	Req		   *r = *con_cls;

	if (!r)
	{
		r = calloc(1, sizeof(Req));
		if (!r)
			return MHD_NO;
		r->conn = c;
		r->start = gw_now();
		*con_cls = r;
		if (is_over_limit(c))
		{
			decide_problem(r, 503, "too-many-connections", "Too many connections",
						   "the gateway has --max-connections open; retry after the Retry-After delay",
						   NULL, NULL);
			MHD_add_response_header(r->pending, MHD_HTTP_HEADER_CONNECTION, "close");
			return send_pending(r);
		}
		route_request(r, url, method);
		if (r->pending)
			return send_pending(r);
		return MHD_YES;
	}
	if (r->answered)
	{
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (*upload_data_size)
	{
		if (r->route != R_SUBMIT && r->route != R_ISO_SUBMIT && !(r->route == R_CONTROL && controls_has_body(&r->ctl)))
		{
			/* a body where none is read: ignored */
			*upload_data_size = 0;
			return MHD_YES;
		}
		if (r->too_large || r->body.len + *upload_data_size > gw_config.max_body)
		{
			/*
			 * A body without Content-Length (chunked) that grows too large:
			 * libmicrohttpd cannot answer in the middle of a body, so the
			 * rest is read and dropped, up to 64 KiB more; a client that
			 * sends more is cut off.
			 */
			r->too_large = true;
			r->discarded += *upload_data_size;
			*upload_data_size = 0;
			return r->discarded > gw_config.max_body + 65536 ? MHD_NO : MHD_YES;
		}
		buf_append(&r->body, upload_data, *upload_data_size);
		*upload_data_size = 0;
		return MHD_YES;
	}
	/* the request is complete (or the pool answered) */
	if (r->suspended)
	{
		r->suspended = false;
		if (r->route == R_ISO_SUBMIT)
			decide_iso_submit(r);
		else if (r->route == R_ISO_STATUS)
			decide_iso_status(r);
		else if (r->route == R_ISO_REPORT)
			decide_iso_report(r);
		else if (r->route == R_CONTROL)
			decide_control(r);
		else if (r->route == R_ISO_PAYMENT)
			decide_iso_payment(r);
		else if (r->job.kind == JOB_STATUS)
			decide_status(r);
		else
			decide_submit(r);
		return send_pending(r);
	}
	if (!r->pending)
		switch (r->route)
		{
			case R_SUBMIT:
				start_submit(r);
				break;
			case R_STATUS:
				r->job.kind = JOB_STATUS;
				r->job.transaction_id = r->path_id;
				submit_job(r);
				break;
			case R_HEALTH:
				decide_health(r);
				break;
			case R_METRICS:
				decide_metrics(r);
				break;
			case R_ISO_SUBMIT:
				start_iso_submit(r);
				break;
			case R_ISO_STATUS:
				/* the keys of its payments as pacs.008 and as pacs.009 (iso_key) */
				iso_key(ISO_MSG_PACS008, r->iso_msg_id, "", r->iso_prefix[0], sizeof(r->iso_prefix[0]));
				iso_key(ISO_MSG_PACS009, r->iso_msg_id, "", r->iso_prefix[1], sizeof(r->iso_prefix[1]));
				r->job.kind = JOB_ISO_STATUS;
				r->job.iso_prefix[0] = r->iso_prefix[0];
				r->job.iso_prefix[1] = r->iso_prefix[1];
				submit_job(r);
				break;
			case R_ISO_REPORT:
				r->job.kind = JOB_ISO_REPORT;
				r->job.iso_date = r->iso_date;
				submit_job(r);
				break;
			case R_CONTROL:
				start_control(r);
				break;
			case R_ISO_PAYMENT:
				r->job.kind = JOB_ISO_PAYMENT;
				r->job.iso_payment_id = r->iso_payment[0] ? r->iso_payment : NULL;
				r->job.iso_prefix[0] = r->iso_payment[0] ? NULL : r->iso_prefix[0];
				r->job.iso_prefix[1] = r->iso_payment[0] ? NULL : r->iso_prefix[1];
				submit_job(r);
				break;
			case R_ISO_EVENTS:
				{
					int			status = 503;
					const char *why = NULL;
					struct MHD_Response *resp = iso_notify_subscribe(r->conn, r->auth.role, r->auth.participant,
																	 r->iso_cursor[0] ? r->iso_cursor : NULL,
																	 &status, &why);

					if (resp)
						decide(r, 200, resp);
					else
						decide_problem(r, status, "unavailable", "Notifications unavailable", why, NULL, NULL);
				}
				break;
			case R_NONE:
				decide_problem(r, 404, "not-found", "Not found", NULL, NULL, NULL);
				break;
		}
	if (r->pending && !r->suspended)
		return send_pending(r);
	return MHD_YES;
}

static void
completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe)
{
	Req		   *r = *con_cls;

	if (!r)
		return;
	if (r->answered)
		metrics_request(r->status, gw_now() - r->start);
	if (r->pending)
		MHD_destroy_response(r->pending);
	job_clear(&r->job);
	if (r->route == R_ISO_SUBMIT)
	{
		/* the job's elements are the message's texts, freed with it */
		free(r->job.elem);
		free(r->job.elem_len);
		free(r->iso_sent);
		iso_message_free(&r->iso);
	}
	json_payments_free(&r->pays);
	controls_free(&r->ctl);
	buf_free(&r->body);
	free(r);
	*con_cls = NULL;
}

static char *
read_file(const char *path)
{
	FILE	   *f = fopen(path, "rb");
	char	   *data;
	long		n;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	if (n < 0 || n > 1024 * 1024)
	{
		fclose(f);
		return NULL;
	}
	data = malloc((size_t) n + 1);
	if (fread(data, 1, (size_t) n, f) != (size_t) n)
	{
		free(data);
		fclose(f);
		return NULL;
	}
	data[n] = '\0';
	fclose(f);
	return data;
}

static void
log_mhd(void *cls, const char *fmt, va_list ap)
{
	fprintf(stderr, "settle-gateway: http: ");
	vfprintf(stderr, fmt, ap);
}

/*
 * Out of file descriptors, accept() fails and libmicrohttpd stops accepting
 * until one closes: connections would wait unanswered again.  So the soft
 * limit is raised to cover every connection admitted, the database pool and
 * a margin, or the gateway does not start.
 */
static int
reserve_descriptors(unsigned connections)
{
	struct rlimit rl;
	rlim_t		need = (rlim_t) connections + (rlim_t) gw_config.pool_size + 64;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return 0;
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need)
	{
		if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need)
		{
			fprintf(stderr, "settle-gateway: --max-connections %d needs %llu file descriptors, "
					"more than the hard limit %llu (ulimit -Hn)\n",
					gw_config.max_connections, (unsigned long long) need, (unsigned long long) rl.rlim_max);
			return -1;
		}
		rl.rlim_cur = need;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
		{
			perror("settle-gateway: setrlimit(RLIMIT_NOFILE)");
			return -1;
		}
	}
	return 0;
}

int
http_start(void)
{
	struct sockaddr_in addr;
	unsigned	flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
		MHD_USE_ERROR_LOG;
	struct MHD_OptionItem tls[3];
	unsigned	mhd_limit;

	memset(&addr, 0, sizeof(addr));
	addr.sin_family = AF_INET;
	addr.sin_port = htons((uint16_t) gw_config.port);
	if (inet_pton(AF_INET, gw_config.listen_host, &addr.sin_addr) != 1)
	{
		fprintf(stderr, "settle-gateway: --listen \"%s\" is not an IPv4 address\n", gw_config.listen_host);
		return -1;
	}
	tls[0] = (struct MHD_OptionItem) {MHD_OPTION_END, 0, NULL};
	if (gw_config.tls_cert)
	{
		if (!MHD_is_feature_supported(MHD_FEATURE_TLS))
		{
			fprintf(stderr, "settle-gateway: this libmicrohttpd has no TLS support\n");
			return -1;
		}
		tls_cert_pem = read_file(gw_config.tls_cert);
		tls_key_pem = read_file(gw_config.tls_key);
		if (!tls_cert_pem || !tls_key_pem)
		{
			fprintf(stderr, "settle-gateway: cannot read %s or %s\n", gw_config.tls_cert, gw_config.tls_key);
			return -1;
		}
		flags |= MHD_USE_TLS;
		tls[0] = (struct MHD_OptionItem) {MHD_OPTION_HTTPS_MEM_CERT, 0, tls_cert_pem};
		tls[1] = (struct MHD_OptionItem) {MHD_OPTION_HTTPS_MEM_KEY, 0, tls_key_pem};
		tls[2] = (struct MHD_OptionItem) {MHD_OPTION_END, 0, NULL};
	}
	/* above what accept_policy admits, racing threads included (see OVERFLOW_CONNECTIONS) */
	mhd_limit = (unsigned) (gw_config.max_connections + OVERFLOW_CONNECTIONS + 2 * gw_config.http_threads);
	if (reserve_descriptors(mhd_limit) != 0)
		return -1;
	daemon_ = MHD_start_daemon(flags, (uint16_t) gw_config.port, accept_policy, NULL, handle, NULL,
							   MHD_OPTION_EXTERNAL_LOGGER, log_mhd, NULL,
							   MHD_OPTION_SOCK_ADDR, (struct sockaddr *) &addr,
							   MHD_OPTION_THREAD_POOL_SIZE, (unsigned) gw_config.http_threads,
							   MHD_OPTION_CONNECTION_LIMIT, mhd_limit,
							   MHD_OPTION_NOTIFY_CONNECTION, notify_connection, NULL,
							   MHD_OPTION_UNESCAPE_CALLBACK, unescape, NULL,
							   MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned) gw_config.per_ip_connections,
							   MHD_OPTION_CONNECTION_TIMEOUT, (unsigned) gw_config.connection_timeout,
							   MHD_OPTION_CONNECTION_MEMORY_LIMIT, gw_config.connection_memory,
							   MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u,
							   MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
							   MHD_OPTION_ARRAY, tls,
							   MHD_OPTION_END);
	if (!daemon_)
	{
		fprintf(stderr, "settle-gateway: cannot listen on %s:%d\n", gw_config.listen_host, gw_config.port);
		return -1;
	}
	return 0;
}

/* Stop accepting; the pool then answers what is queued; then close. */
void
http_stop(void)
{
	if (daemon_)
		MHD_quiesce_daemon(daemon_);
}

void
http_close(void)
{
	if (daemon_)
		MHD_stop_daemon(daemon_);
	daemon_ = NULL;
}
