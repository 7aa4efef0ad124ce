/*
 * http.c -- the HTTP server (libmicrohttpd): connections, limits, the
 * request's life (routes: http_route.c; answers: http_answer.c).
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

#include "http_int.h"

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

static unsigned
http_open_connections(void)
{
	const union MHD_DaemonInfo *i;

	if (!daemon_)
		return 0;
	i = MHD_get_daemon_info(daemon_, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
	return i ? i->num_connections : 0;
}

/* ---- the server's own answers: health and metrics ---- */

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

/* ---- the request ---- */

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
