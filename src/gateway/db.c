/*
 * db.c -- connections to the cluster and calls with a deadline.
 *
 * A connection goes to the primary (target_session_attrs=read-write) or to
 * any host (health), every host of the configured list tried; TCP liveness
 * (tcp_user_timeout, keepalives: --tcp-timeout-ms) makes a peer cut off by
 * the network a failed call in seconds.  A result is awaited until a
 * deadline (--call-timeout-ms), so that a peer that keeps the connection
 * open and answers nothing holds no worker for good.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "gateway.h"

/* the last failure to reach a primary, per thread, logged when the pool loses it */
static __thread char last_connect_error[512];

const char *
pool_last_connect_error(void)
{
	return last_connect_error;
}

/*
 * One attempt with the configured string; host and port override it when
 * given.  TCP liveness comes first so that the string may override it: a peer
 * cut off by the network (no RST, nothing acknowledged) would otherwise hold
 * a call for the kernel's retransmission time, minutes, instead of seconds.
 */
static PGconn *
connect_once(bool primary, const char *host, const char *port)
{
	char		idle[16],
				user_timeout[16];
	int			t = gw_config.tcp_timeout_ms;
	const char *keys[] = {"keepalives", "keepalives_idle", "keepalives_interval", "keepalives_count",
		"tcp_user_timeout", "connect_timeout", "application_name", "dbname", "target_session_attrs",
	"host", "port", NULL};
	const char *vals[] = {"1", idle, idle, "2", user_timeout, "3", "settle-gateway", gw_config.conninfo,
		primary ? "read-write" : "any", host, port, NULL};
	int			first = 0;

	/* detection after about t: idle, then two unanswered probes */
	snprintf(idle, sizeof(idle), "%d", t / 3000 > 1 ? t / 3000 : 1);
	snprintf(user_timeout, sizeof(user_timeout), "%d", t);
	if (t == 0)
		first = 5;				/* the kernel's defaults */
	if (!host)
		keys[9] = NULL;
	return PQconnectdbParams(keys + first, vals + first, 1);
}

/* The n-th item (from 0) of a comma-separated list, or NULL */
static bool
list_item(const char *list, int n, char *out, size_t outsize)
{
	const char *p = list;

	for (int i = 0; i < n && p; i++)
	{
		p = strchr(p, ',');
		if (p)
			p++;
	}
	if (!p)
		return false;
	size_t		len = strcspn(p, ",");

	if (len >= outsize)
		return false;
	memcpy(out, p, len);
	out[len] = '\0';
	return true;
}

/*
 * A connection to a host of the cluster: the primary, or any (health).
 *
 * libpq tries the hosts of a list in turn, but gives up on the whole list
 * when a host accepts the TCP connection and then closes it (what a proxy or
 * load balancer in front of a dead node does): the primary after it is never
 * tried.  So when the list fails, each host is tried on its own, in order.
 */
PGconn *
pool_connect(bool primary)
{
	PGconn	   *c = connect_once(primary, NULL, NULL);
	PQconninfoOption *opts;
	const char *hosts = NULL,
			   *ports = NULL,
			   *hostaddrs = NULL;

	if (PQstatus(c) == CONNECTION_OK)
		return c;
	if (primary)
		snprintf(last_connect_error, sizeof(last_connect_error), "%s", PQerrorMessage(c));
	PQfinish(c);
	c = NULL;
	opts = PQconninfoParse(gw_config.conninfo, NULL);
	for (PQconninfoOption *o = opts; o && o->keyword; o++)
	{
		if (strcmp(o->keyword, "host") == 0)
			hosts = o->val;
		else if (strcmp(o->keyword, "port") == 0)
			ports = o->val;
		else if (strcmp(o->keyword, "hostaddr") == 0)
			hostaddrs = o->val;
	}
	/* one host (nothing else to try), or hostaddr lists (left to libpq) */
	if (hosts && strchr(hosts, ',') && !(hostaddrs && *hostaddrs))
	{
		char		host[256],
					port[32];

		for (int i = 0; list_item(hosts, i, host, sizeof(host)); i++)
		{
			/* one port for every host, or one each */
			if (!ports || !*ports)
				snprintf(port, sizeof(port), "5432");
			else if (!list_item(ports, strchr(ports, ',') ? i : 0, port, sizeof(port)))
				break;
			c = connect_once(primary, host, port);
			if (PQstatus(c) == CONNECTION_OK)
				break;
			PQfinish(c);
			c = NULL;
		}
	}
	PQconninfoFree(opts);
	return c;
}

/*
 * Whether a failed call lost its connection (or the primary: a read-only
 * transaction error means the node was demoted); a result without SQLSTATE
 * is a connection failure or a call past its deadline.
 */
bool
db_connection_error(PGconn *conn, const char *sqlstate)
{
	if (PQstatus(conn) != CONNECTION_OK)
		return true;
	if (!sqlstate)
		return true;
	return strncmp(sqlstate, "08", 2) == 0 || strncmp(sqlstate, "57P", 3) == 0 ||
		strcmp(sqlstate, "25006") == 0;
}

/*
 * Waits until a whole result can be read without blocking, or the call's
 * deadline passes (false).  A peer that keeps the TCP connection open but
 * answers nothing (a node cut off behind a proxy, a frozen server) would
 * otherwise hold the worker, and every request queued behind it, for good.
 */
static bool
await_result(PGconn *c, double deadline)
{
	while (PQisBusy(c))
	{
		struct pollfd p = {.fd = PQsocket(c), .events = POLLIN};
		double		left = deadline - gw_now();
		int			rc;

		if (left <= 0 || p.fd < 0)
			return p.fd < 0;	/* no socket: PQgetResult reports it */
		rc = poll(&p, 1, (int) (left * 1000) + 1);
		if (rc < 0 && errno != EINTR)
			return true;
		if (rc > 0 && !PQconsumeInput(c))
			return true;		/* the connection failed: PQgetResult says so */
	}
	return true;
}

/* PQgetResult within the call's deadline; NULL and *late when it passed */
PGresult *
db_result_by(PGconn *c, double deadline, bool *late)
{
	if (*late || !await_result(c, deadline))
	{
		*late = true;
		return NULL;
	}
	return PQgetResult(c);
}
