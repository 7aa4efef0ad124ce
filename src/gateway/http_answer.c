/*
 * http_answer.c -- what a request is answered: the JSON of receipts and
 * refusals, problem bodies (RFC 9457), the ISO 20022 documents, and the
 * answer queued on the connection once a job is done.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http_int.h"

struct MHD_Response *
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

void
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

void
decide_problem(Req *r, int status, const char *type, const char *title, const char *detail,
			   const char *sqlstate, const char *field)
{
	Buf			b;

	buf_init(&b, 256);
	problem_into(&b, status, type, title, detail, sqlstate, field, NULL);
	decide(r, status, make_response(buf_steal(&b), "application/problem+json"));
}

enum MHD_Result
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

/*
 * A job the database refused or could not run: its problem answer, true.
 * with_field: the field the message begins with is named (the controls' and
 * the payments' refusals begin with it).
 */
static bool
decided_db_error(Req *r, bool with_field)
{
	Job		   *j = &r->job;
	StatusMapping m;
	char		field[GW_MAX_ID + 1] = "";
	const char *msg = j->error_message ? j->error_message : "";

	if (!j->error_status)
		return false;
	m = status_for_sqlstate(j->error_sqlstate);
	if (with_field)
		status_field_of_message(strncmp(msg, "ERROR:  ", 8) == 0 ? msg + 8 : msg, field, sizeof(field));
	decide_problem(r, j->error_status, "database", m.title, with_field ? msg : j->error_message,
				   j->error_sqlstate, with_field ? field : NULL);
	return true;
}

/* The answer to a finished submit job. */
void
decide_submit(Req *r)
{
	Job		   *j = &r->job;
	Buf			b;

	if (decided_db_error(r, false))
		return;
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
			buf_puts(&loc, GW_SUBMIT_PATH);
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

void
decide_status(Req *r)
{
	Job		   *j = &r->job;

	if (decided_db_error(r, false))
		return;
	if (!j->status_json)
		decide_problem(r, 404, "not-found", "No such payment",
					   "no payment of this client's participant has this transaction_id", NULL, NULL);
	else
	{
		decide(r, 200, make_response(j->status_json, "application/json"));
		j->status_json = NULL;	/* the response frees it */
	}
}

static void
decide_xml(Req *r, int status, Buf *b)
{
	decide(r, status, make_response(buf_steal(b), "application/xml; charset=utf-8"));
}

/* The pacs.002 of a message just submitted (or refused as a whole, or with nothing to send). */
void
decide_iso_submit(Req *r)
{
	Job		   *j = &r->job;
	Buf			b;

	if (decided_db_error(r, false))
		return;
	buf_init(&b, 1024 + 512 * (size_t) r->iso.n);
	iso_write_pacs002_submit(&b, &r->iso, r->iso_sent, j->results);
	decide_xml(r, 200, &b);
}

void
decide_iso_status(Req *r)
{
	Job		   *j = &r->job;
	Buf			b;
	int			rows = 0;

	if (decided_db_error(r, false))
		return;
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

void
decide_iso_report(Req *r)
{
	Job		   *j = &r->job;
	Buf			b;

	if (decided_db_error(r, false))
		return;
	if (j->iso_rows < 2)
	{
		decide_problem(r, 404, "not-found", "Not found", "the client's participant has no account", NULL, NULL);
		return;
	}
	buf_init(&b, 4096 + 1024 * (size_t) j->iso_rows);
	iso_write_camt(&b, r->iso_statement, r->auth.participant, r->iso_date, j->iso_rows, j->iso_cells);
	decide_xml(r, 200, &b);
}

void
decide_control(Req *r)
{
	Job		   *j = &r->job;
	ControlProblem p;
	char	   *body;
	int			status;

	if (decided_db_error(r, true))
		return;
	status = controls_answer(&r->ctl, j, &body, &p);
	if (status == 204)
		decide(r, 204, MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT));
	else if (body)
		decide(r, status, make_response(body, "application/json"));
	else
		decide_problem(r, p.status, p.type, p.title, p.detail, NULL, p.field);
}

/* One payment's camt.054: its entries on the client's participant's accounts. */
void
decide_iso_payment(Req *r)
{
	Job		   *j = &r->job;
	Buf			b;

	if (decided_db_error(r, false))
		return;
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
