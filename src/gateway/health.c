/*
 * health.c -- what GET /api/v1/health reports.  A thread of its own checks
 * every --health-interval-ms on a connection of its own
 * (settle_gateway_health(): primary or standby, worker, last cycle,
 * synchronous standbys: how many are needed, whether too few stream, why), so that an answer never waits for the database: a
 * health check during a network cut, whose connection attempts take their
 * connect_timeout per host, blocks neither the event loop nor the token
 * look-ups.  A report older than stale_after() is not trusted.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "gateway.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond;
static HealthReport report;
static double report_at;		/* gw_now() of the last report, 0 none */
static bool stopping;
static pthread_t thread;

static const char *health_sql = "SELECT * FROM settle_gateway_health()";

static double
stale_after(void)
{
	double		s = 5.0 * gw_config.health_interval_ms / 1000.0;

	return s < 10.0 ? 10.0 : s;
}

static void
read_report(PGresult *res, HealthReport *h)
{
	h->reachable = true;
	h->primary = PQgetvalue(res, 0, 0)[0] == 't';
	h->worker_enabled = PQgetvalue(res, 0, 1)[0] == 't';
	h->worker_running = PQgetvalue(res, 0, 2)[0] == 't';
	h->has_cycle_age = !PQgetisnull(res, 0, 3);
	h->last_cycle_age = h->has_cycle_age ? atof(PQgetvalue(res, 0, 3)) : 0;
	h->sync_required = PQgetvalue(res, 0, 4)[0] == 't';
	h->sync_standbys = atoi(PQgetvalue(res, 0, 5));
	/* 1.2: whether too few stream for synchronous_standby_names (FIRST n / ANY n), and why */
	h->has_sync_state = PQnfields(res) >= 9 && !PQgetisnull(res, 0, 6);
	if (h->has_sync_state)
	{
		h->sync_needed = atoi(PQgetvalue(res, 0, 6));
		h->sync_missing = PQgetvalue(res, 0, 7)[0] == 't';
		snprintf(h->sync_reason, sizeof(h->sync_reason), "%s", PQgetvalue(res, 0, 8));
	}
	else
	{
		h->sync_needed = h->sync_required ? 1 : 0;
		h->sync_missing = h->sync_required && h->sync_standbys == 0;
	}
}

/* One check: the primary if there is one, else any host that answers. */
static void
check(PGconn **conn, HealthReport *h)
{
	memset(h, 0, sizeof(*h));
	for (int attempt = 0; attempt < 2; attempt++)
	{
		PGresult   *res;

		if (!*conn)
		{
			*conn = pool_connect(true);
			if (!*conn)
				break;
			PQclear(PQexec(*conn, "SET statement_timeout = '5s'"));
		}
		res = PQexec(*conn, health_sql);
		if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
		{
			read_report(res, h);
			PQclear(res);
			/* a primary demoted under us: look for the new one next time */
			if (!h->primary)
			{
				PQfinish(*conn);
				*conn = NULL;
			}
			return;
		}
		snprintf(h->error, sizeof(h->error), "%s", PQerrorMessage(*conn));
		PQclear(res);
		PQfinish(*conn);
		*conn = NULL;
	}
	/* no primary: is any host there at all (a standby)? */
	{
		PGconn	   *c = pool_connect(false);

		if (!c)
		{
			snprintf(h->error, sizeof(h->error), "no database host is reachable");
			return;
		}
		PGresult   *r = PQexec(c, health_sql);

		if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
			read_report(r, h);
		else
			snprintf(h->error, sizeof(h->error), "%s", PQerrorMessage(c));
		PQclear(r);
		PQfinish(c);
	}
}

static void *
health_main(void *arg)
{
	PGconn	   *conn = NULL;

	for (;;)
	{
		HealthReport h;
		struct timespec until;
		double		t;

		check(&conn, &h);
		pthread_mutex_lock(&lock);
		report = h;
		report_at = gw_now();
		pthread_cond_broadcast(&cond);
		t = report_at + gw_config.health_interval_ms / 1000.0;
		until.tv_sec = (time_t) t;
		until.tv_nsec = (long) ((t - (double) until.tv_sec) * 1e9);
		while (!stopping && gw_now() < t)
			pthread_cond_timedwait(&cond, &lock, &until);
		if (stopping)
		{
			pthread_mutex_unlock(&lock);
			break;
		}
		pthread_mutex_unlock(&lock);
	}
	if (conn)
		PQfinish(conn);
	return NULL;
}

void
health_get(HealthReport *out)
{
	double		now = gw_now();
	struct timespec until;
	double		t = now + 5.0;

	until.tv_sec = (time_t) t;
	until.tv_nsec = (long) ((t - (double) until.tv_sec) * 1e9);
	pthread_mutex_lock(&lock);
	while (report_at == 0 && !stopping && gw_now() < t)
		pthread_cond_timedwait(&cond, &lock, &until);
	if (report_at == 0)
	{
		memset(out, 0, sizeof(*out));
		snprintf(out->error, sizeof(out->error), "no health check has finished yet");
	}
	else if (gw_now() - report_at > stale_after())
	{
		memset(out, 0, sizeof(*out));
		snprintf(out->error, sizeof(out->error),
				 "the last health check finished %.0f s ago: the database does not answer",
				 gw_now() - report_at);
	}
	else
		*out = report;
	pthread_mutex_unlock(&lock);
}

void
health_start(void)
{
	pthread_condattr_t ca;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&cond, &ca);
	if (pthread_create(&thread, NULL, health_main, NULL) != 0)
	{
		fprintf(stderr, "settle-gateway: cannot start the health thread\n");
		exit(1);
	}
}

void
health_stop(void)
{
	pthread_mutex_lock(&lock);
	stopping = true;
	pthread_cond_broadcast(&cond);
	pthread_mutex_unlock(&lock);
	pthread_join(thread, NULL);
}
