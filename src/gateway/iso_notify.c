/*
 * iso_notify.c -- ISO 20022 pushed (docs/ISO20022.md, "Pushed reports"):
 * GET /api/v1/iso20022/notifications is a Server-Sent Events stream of the
 * client's participant's payment outcomes as they happen: a pacs.002 for
 * each transaction of its ISO 20022 messages that settles, fails or expires,
 * and a camt.054 for each payment settled on its accounts (its debit as
 * payer, its credit as payee).
 *
 * The events are read from the database's event log (settle.event), not
 * from NOTIFY payloads: NOTIFY only wakes the thread (settle_settled,
 * settle_failed; expiries have no notification, a one-second tick finds
 * them).  Each subscriber's query runs under the client's role, so
 * row-level security shows it its own payments and entries only.  The
 * cursor is (xid, event_id) of the last event delivered, and only events of
 * transactions older than every running one (pg_snapshot_xmin) are read:
 * every transaction below that horizon has finished, so no event can
 * appear later behind the cursor.  The SSE id of each event is that
 * cursor; a client that reconnects with Last-Event-ID (or ?since=) misses
 * nothing and gets nothing twice.
 *
 * One thread, one database connection.  A subscriber's buffer is bounded:
 * nothing more is read for it while ISO_NOTIFY_LOW bytes wait to be sent,
 * and one whose client has taken nothing for ISO_NOTIFY_STALL seconds is
 * ended (an "end" event when it can still be delivered whole), so a hung
 * client costs one connection and a bounded buffer, until it is dropped.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <microhttpd.h>
#include <libpq-fe.h>

#include "gateway.h"

#define ISO_NOTIFY_MAX_SUBS 64		/* streams per gateway */
#define ISO_NOTIFY_LOW (64 * 1024)	/* bytes waiting: read no more for it */
#define ISO_NOTIFY_STALL 30			/* seconds without progress: dropped */
#define ISO_NOTIFY_HEARTBEAT 15		/* seconds: a comment line keeps it open */
#define ISO_NOTIFY_BATCH "200"		/* events per query */

typedef struct Sub Sub;
struct Sub
{
	Sub		   *next;
	struct MHD_Connection *conn;
	char		role[GW_ROLE_LEN + 1];
	char		participant[GW_MAX_ID + 1];
	char		cursor_xid[24];	/* "" until the first round sets it */
	char		cursor_id[24];
	bool		started;		/* the ready event is written */
	Buf			out;			/* SSE text not yet given to libmicrohttpd */
	size_t		sent;			/* bytes of out given */
	bool		suspended;		/* the reader found nothing and suspended it */
	bool		closing;		/* end the stream once out is sent */
	atomic_bool gone;			/* libmicrohttpd freed the response */
	double		last_progress;	/* when its client last took bytes (or out was written to while empty) */
	double		last_write;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static Sub *subs;
static int	nsubs;
static pthread_t thread;
static atomic_bool running;
static bool started;

/* query: the final outcomes after the cursor, with the payment's entries on the client's accounts */
static const char *events_sql =
"WITH ev AS ("
"  SELECT e.event_id, e.xid, e.to_status, p.payment_id, p.transaction_id, p.idempotency_key,"
"         p.source_participant, p.hold_reason"
"    FROM settle.event e"
"    JOIN settle.payment p ON p.payment_id = CASE WHEN e.entity = 'payment' THEN e.entity_id::bigint END"
"   WHERE e.entity = 'payment' AND e.to_status IN ('settled', 'failed', 'expired')"
"     AND (e.xid, e.event_id) > ($1::xid8, $2::bigint)"
"     AND e.xid < pg_snapshot_xmin(pg_current_snapshot())"
"   ORDER BY e.xid, e.event_id LIMIT " ISO_NOTIFY_BATCH ")"
" SELECT ev.event_id::text, ev.xid::text, ev.to_status, ev.payment_id::text, ev.transaction_id,"
"        ev.idempotency_key, ev.source_participant, ev.hold_reason,"
"        le.entry_id::text, le.account_id, le.currency, cur.exponent::text, le.amount::text,"
"        (extract(epoch FROM le.posted_at) * 1000000)::bigint::text"
"   FROM ev LEFT JOIN settle.ledger_entry le ON ev.to_status = 'settled' AND le.payment_id = ev.payment_id"
"   LEFT JOIN settle.currencies cur ON cur.code = le.currency"
"  ORDER BY ev.xid, ev.event_id, le.account_id, le.entry_id";

bool
iso_notify_cursor_valid(const char *s)
{
	size_t		a,
				b;

	if (!s)
		return false;
	a = strspn(s, "0123456789");
	if (a < 1 || a > 19 || s[a] != '-')
		return false;
	b = strspn(s + a + 1, "0123456789");
	return b >= 1 && b <= 18 && s[a + 1 + b] == '\0';
}

/* libmicrohttpd asks for bytes of the stream */
static ssize_t
reader(void *cls, uint64_t pos, char *buf, size_t max)
{
	Sub		   *s = cls;
	ssize_t		n;

	pthread_mutex_lock(&mu);
	if (s->out.len > s->sent)
	{
		n = (ssize_t) (s->out.len - s->sent < max ? s->out.len - s->sent : max);
		memcpy(buf, s->out.data + s->sent, (size_t) n);
		s->sent += (size_t) n;
		s->last_progress = gw_now();
		if (s->sent == s->out.len)
		{
			s->out.len = 0;
			s->sent = 0;
		}
		pthread_mutex_unlock(&mu);
		return n;
	}
	if (s->closing)
	{
		pthread_mutex_unlock(&mu);
		return MHD_CONTENT_READER_END_OF_STREAM;
	}
	/* nothing to send: the thread resumes it when there is */
	s->suspended = true;
	MHD_suspend_connection(s->conn);
	pthread_mutex_unlock(&mu);
	return 0;
}

static void
free_sub(void *cls)
{
	Sub		   *s = cls;

	/* not while suspended: only the thread unlinks and frees it, without libmicrohttpd's locks held */
	atomic_store(&s->gone, true);
}

/* under mu: wake the connection if its reader suspended it */
static void
wake(Sub *s)
{
	if (s->suspended && !atomic_load(&s->gone))
	{
		s->suspended = false;
		MHD_resume_connection(s->conn);
	}
}

/* under mu: append text, and count it as progress if nothing was waiting */
static void
put(Sub *s, const char *text)
{
	if (s->out.len == s->sent)
		s->last_progress = gw_now();
	buf_puts(&s->out, text);
	s->last_write = gw_now();
}

struct MHD_Response *
iso_notify_subscribe(struct MHD_Connection *conn, const char *role, const char *participant,
					 const char *cursor, int *status, const char **why)
{
	Sub		   *s;
	struct MHD_Response *resp;

	if (!started)
	{
		*status = 503;
		*why = "the gateway's notification thread is not running";
		return NULL;
	}
	s = calloc(1, sizeof(Sub));
	if (!s)
	{
		*status = 503;
		*why = "out of memory";
		return NULL;
	}
	s->conn = conn;
	snprintf(s->role, sizeof(s->role), "%s", role);
	snprintf(s->participant, sizeof(s->participant), "%s", participant);
	if (cursor)
		sscanf(cursor, "%23[0-9]-%23[0-9]", s->cursor_xid, s->cursor_id);
	buf_init(&s->out, 4096);
	s->last_progress = s->last_write = gw_now();
	atomic_init(&s->gone, false);
	resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, reader, s, free_sub);
	if (!resp)
	{
		buf_free(&s->out);
		free(s);
		*status = 503;
		*why = "out of memory";
		return NULL;
	}
	pthread_mutex_lock(&mu);
	if (nsubs >= ISO_NOTIFY_MAX_SUBS)
	{
		pthread_mutex_unlock(&mu);
		MHD_destroy_response(resp);		/* free_sub only marks it */
		buf_free(&s->out);
		free(s);
		*status = 503;
		*why = "the gateway serves as many notification streams as it can (64)";
		return NULL;
	}
	s->next = subs;
	subs = s;
	nsubs++;
	pthread_mutex_unlock(&mu);
	/*
	 * Not --connection-timeout: an idle stream writes a heartbeat every 15 s;
	 * a client that takes no byte for three of them (one that stopped reading,
	 * whose socket is full) is closed by libmicrohttpd, after the stall rule
	 * ended its stream.
	 */
	MHD_set_connection_option(conn, MHD_CONNECTION_OPTION_TIMEOUT, 3u * ISO_NOTIFY_HEARTBEAT);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream; charset=utf-8");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	*status = 200;
	return resp;
}

/* ---- the events ---- */

/* an SSE event: its type, each line of doc as a data line, the id if given */
static void
sse_event(Buf *b, const char *type, const char *doc, const char *id)
{
	buf_printf(b, "event: %s\n", type);
	for (const char *p = doc; *p;)
	{
		size_t		n = strcspn(p, "\n");

		if (n > 0)
		{
			buf_puts(b, "data: ");
			buf_append(b, p, n);
			buf_puts(b, "\n");
		}
		p += n;
		if (*p)
			p++;
	}
	if (id)
		buf_printf(b, "id: %s\n", id);
	buf_puts(b, "\n");
}

#define V(r, k) (PQgetisnull(res, r, k) ? NULL : PQgetvalue(res, r, k))

/* The documents of the rows first..last (one event) for participant, into b. */
static void
event_documents(Buf *b, const char *participant, PGresult *res, int first, int last, const char *id)
{
	const char *key = V(first, 5);
	const char *colon = key ? strchr(key, ':') : NULL;
	const char *slash = key ? strrchr(key, '/') : NULL;
	const char *payer = PQgetvalue(res, first, 6);	/* "" if NULL */
	bool		pacs = false;
	int			entries = 0;
	Buf			doc;

	for (int r = first; r <= last; r++)
		if (V(r, 8))
			entries++;
	/* the payer's transaction of an ISO 20022 message: its key names the message */
	if (strcmp(payer, participant) == 0 && colon && slash && slash > colon &&
		((size_t) (colon - key) == strlen(ISO_MSG_PACS008) &&
		 (strncmp(key, ISO_MSG_PACS008, (size_t) (colon - key)) == 0 ||
		  strncmp(key, ISO_MSG_PACS009, (size_t) (colon - key)) == 0)))
		pacs = true;
	if (pacs)
	{
		char		msg_id[GW_MAX_ID + 1];
		char	   *cells[ISO_STATUS_COLS];

		snprintf(msg_id, sizeof(msg_id), "%.*s", (int) (slash - colon - 1), colon + 1);
		cells[0] = "1";
		cells[1] = V(first, 4);
		cells[2] = V(first, 2);
		cells[3] = V(first, 7);
		cells[4] = V(first, 3);
		buf_init(&doc, 1024);
		iso_write_pacs002_status(&doc, msg_id, strncmp(key, ISO_MSG_PACS008, strlen(ISO_MSG_PACS008)) == 0
								 ? ISO_MSG_PACS008 : ISO_MSG_PACS009, 1, cells);
		sse_event(b, "pacs.002", doc.data, entries ? NULL : id);
		buf_free(&doc);
	}
	if (entries)
	{
		char	  **cells = calloc((size_t) entries * ISO_PAYMENT_COLS, sizeof(char *));
		int			k = 0;

		for (int r = first; r <= last; r++)
			if (V(r, 8))
			{
				char	  **c = cells + k++ * ISO_PAYMENT_COLS;

				c[0] = V(r, 8);
				c[1] = V(r, 9);
				c[2] = V(r, 10);
				c[3] = V(r, 11) ? V(r, 11) : "2";
				c[4] = V(r, 12);
				c[5] = V(r, 13);
				c[6] = V(r, 3);
				c[7] = V(r, 4);
			}
		buf_init(&doc, 2048);
		iso_write_camt054_payment(&doc, participant, entries, cells);
		sse_event(b, "camt.054", doc.data, id);
		buf_free(&doc);
		free(cells);
	}
}

/* One statement under the client's role; NULL (and the connection suspect) on failure. */
static PGresult *
query_as(PGconn *c, const char *role, const char *sql, int n, const char *const *params)
{
	const char *rp[1] = {role};
	PGresult   *r = PQexecParams(c, "SELECT set_config('role', $1, false)", 1, NULL, rp, NULL, NULL, 0);
	PGresult   *q;

	if (PQresultStatus(r) != PGRES_TUPLES_OK)
	{
		PQclear(r);
		return NULL;
	}
	PQclear(r);
	q = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
	PQclear(PQexec(c, "RESET ROLE"));
	return q;
}

typedef struct Snapshot
{
	Sub		   *sub;
	char		role[GW_ROLE_LEN + 1];
	char		participant[GW_MAX_ID + 1];
	char		xid[24];
	char		id[24];
} Snapshot;

/*
 * One round: for each subscriber that can take more, its events after its
 * cursor.  true: some subscriber got a full batch (go again at once).
 */
static bool
round_once(PGconn *c)
{
	Snapshot   *snap;
	int			n = 0;
	bool		more = false;

	pthread_mutex_lock(&mu);
	snap = calloc((size_t) nsubs + 1, sizeof(Snapshot));
	for (Sub *s = subs; s; s = s->next)
		if (!atomic_load(&s->gone) && !s->closing && s->out.len - s->sent < ISO_NOTIFY_LOW)
		{
			snap[n].sub = s;
			snprintf(snap[n].role, sizeof(snap[n].role), "%s", s->role);
			snprintf(snap[n].participant, sizeof(snap[n].participant), "%s", s->participant);
			snprintf(snap[n].xid, sizeof(snap[n].xid), "%s", s->cursor_xid);
			snprintf(snap[n].id, sizeof(snap[n].id), "%s", s->cursor_id);
			n++;
		}
	pthread_mutex_unlock(&mu);

	for (int i = 0; i < n && atomic_load(&running); i++)
	{
		Snapshot   *sn = &snap[i];
		Buf			b;
		PGresult   *res;
		char		id[64] = "";
		int			rows;

		buf_init(&b, 1024);
		if (!sn->xid[0])
		{
			/* a new stream without a cursor: from now, the current horizon */
			res = PQexec(c, "SELECT pg_snapshot_xmin(pg_current_snapshot())::text");
			if (PQresultStatus(res) != PGRES_TUPLES_OK)
			{
				PQclear(res);
				buf_free(&b);
				break;
			}
			snprintf(sn->xid, sizeof(sn->xid), "%s", PQgetvalue(res, 0, 0));
			snprintf(sn->id, sizeof(sn->id), "0");
			PQclear(res);
		}
		{
			const char *params[2] = {sn->xid, sn->id};

			res = query_as(c, sn->role, events_sql, 2, params);
		}
		if (!res || PQresultStatus(res) != PGRES_TUPLES_OK)
		{
			PQclear(res);
			buf_free(&b);
			if (PQstatus(c) != CONNECTION_OK)
				break;			/* the caller connects again */
			continue;			/* this client's role cannot read now: the others still can */
		}
		rows = PQntuples(res);
		for (int r = 0, events = 0; r < rows; events++)
		{
			int			last = r;

			while (last + 1 < rows && strcmp(PQgetvalue(res, last + 1, 0), PQgetvalue(res, r, 0)) == 0)
				last++;
			snprintf(id, sizeof(id), "%s-%s", PQgetvalue(res, r, 1), PQgetvalue(res, r, 0));
			event_documents(&b, sn->participant, res, r, last, id);
			r = last + 1;
			if (r >= rows && events + 1 >= atoi(ISO_NOTIFY_BATCH))
				more = true;
		}
		PQclear(res);

		pthread_mutex_lock(&mu);
		for (Sub *s = subs; s; s = s->next)
			if (s == sn->sub && !atomic_load(&s->gone))
			{
				if (!s->started)
				{
					char		ready[128];

					snprintf(ready, sizeof(ready), "event: ready\ndata: {\"cursor\": \"%s-%s\"}\nid: %s-%s\n\n",
							 sn->xid, sn->id, sn->xid, sn->id);
					put(s, ready);
					s->started = true;
					snprintf(s->cursor_xid, sizeof(s->cursor_xid), "%s", sn->xid);
					snprintf(s->cursor_id, sizeof(s->cursor_id), "%s", sn->id);
				}
				if (id[0])
				{
					put(s, b.data);
					sscanf(id, "%23[0-9]-%23[0-9]", s->cursor_xid, s->cursor_id);
				}
				if (s->out.len > s->sent)
					wake(s);
			}
		pthread_mutex_unlock(&mu);
		buf_free(&b);
	}
	free(snap);
	return more;
}

/* Heartbeats, stalled subscribers ended, freed ones unlinked. */
static void
housekeeping(void)
{
	double		now = gw_now();

	pthread_mutex_lock(&mu);
	for (Sub **p = &subs; *p;)
	{
		Sub		   *s = *p;

		if (atomic_load(&s->gone))
		{
			*p = s->next;
			nsubs--;
			buf_free(&s->out);
			free(s);
			continue;
		}
		if (!s->closing && s->out.len > s->sent && now - s->last_progress > ISO_NOTIFY_STALL)
		{
			/* its client takes nothing: what it has not been given is dropped; it resumes from its last id */
			s->out.len = s->sent;
			if (s->sent == 0)
				put(s, "event: end\ndata: {\"reason\": \"slow subscriber: reconnect with Last-Event-ID\"}\n\n");
			s->closing = true;
			wake(s);
		}
		else if (s->started && !s->closing && s->out.len == s->sent && now - s->last_write > ISO_NOTIFY_HEARTBEAT)
		{
			put(s, ": keep-alive\n\n");
			wake(s);
		}
		p = &s->next;
	}
	pthread_mutex_unlock(&mu);
}

static void *
notify_main(void *arg)
{
	PGconn	   *c = NULL;

	while (atomic_load(&running))
	{
		bool		more = false;

		housekeeping();
		if (!c || PQstatus(c) != CONNECTION_OK)
		{
			if (c)
				PQfinish(c);
			c = pool_connect(true);
			if (PQstatus(c) == CONNECTION_OK)
				PQclear(PQexec(c, "LISTEN settle_settled; LISTEN settle_failed"));
			else
			{
				/* no primary: the streams stay open (heartbeats), the cursors where they were */
				struct timespec ts = {1, 0};

				nanosleep(&ts, NULL);
				continue;
			}
		}
		pthread_mutex_lock(&mu);
		more = nsubs > 0;
		pthread_mutex_unlock(&mu);
		if (more)
			more = round_once(c);
		if (!more)
		{
			/* until a cycle notifies, or a second passes (expiries are not notified) */
			struct pollfd pfd = {PQsocket(c), POLLIN, 0};

			if (poll(&pfd, 1, 1000) > 0)
				PQconsumeInput(c);
		}
		else
			PQconsumeInput(c);
		for (PGnotify *n; (n = PQnotifies(c)) != NULL;)
			PQfreemem(n);
	}
	if (c)
		PQfinish(c);
	return NULL;
}

int
iso_notify_start(void)
{
	atomic_store(&running, true);
	if (pthread_create(&thread, NULL, notify_main, NULL) != 0)
	{
		atomic_store(&running, false);
		return -1;
	}
	started = true;
	return 0;
}

/* Every stream ended (resumed, so that libmicrohttpd can close it), the thread stopped. */
void
iso_notify_stop(void)
{
	if (!started)
		return;
	atomic_store(&running, false);
	pthread_join(thread, NULL);
	started = false;
	pthread_mutex_lock(&mu);
	for (Sub *s = subs; s; s = s->next)
	{
		s->closing = true;
		wake(s);
	}
	pthread_mutex_unlock(&mu);
}
