/*
 * pool.c -- database connections, and coalescing of concurrent requests
 * into settle_submit_bulk calls (group commit in the gateway).
 *
 * Connecting to the primary and waiting for a result within a deadline are
 * db.c's.  Requests are jobs in one FIFO.  Each of pool_size workers owns one
 * connection to the primary (libpq, every host of the cluster,
 * target_session_attrs=read-write) and takes, from the head of the queue,
 * the jobs of one participant up to batch_max payments: one bulk call, one
 * commit, then every job of the batch is answered.  While another worker's
 * call is in flight, a batch smaller than batch_max waits up to
 * batch_wait_us for company (as commit_delay waits for commit_siblings);
 * with every worker idle it goes at once.  No answer is given before the
 * call returned, i.e. after commit (and the synchronous standby, when the
 * server is configured so).  A connection that fails is dropped, its jobs
 * answered 503 (their outcome is unknown: a retry with the same key gets
 * the original), and the worker reconnects to whichever host is primary.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "gateway.h"

typedef struct Worker
{
	pthread_t	thread;
	int			id;
	PGconn	   *conn;
	double		next_connect;
	bool		warned;			/* a WARNING arrived during the current call */
} Worker;

static pthread_mutex_t qlock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t qcond = PTHREAD_COND_INITIALIZER;
static Job *qhead;
static Job *qtail;
static int	queued_rows;
static int	busy_workers;
static int	connected_workers;
static bool primary_missing;	/* the last connection attempt found no primary */
static bool stopping;
static Worker *workers;


static pthread_mutex_t control_lock = PTHREAD_MUTEX_INITIALIZER;
static PGconn *control;


/*
 * Seconds between attempts while no host is read-write.  A fail-over's new
 * primary is found at most this long after its promotion (a lost connection
 * is retried at once, not after this), and each attempt costs a connection
 * to every host, so 0.1 s is cheap for the few seconds of a fail-over.
 */
#define RECONNECT_INTERVAL 0.1

static const char *submit_sql =
"SELECT ordinal, payment_id, replay, sqlstate, message, transaction_id, idempotency_key"
" FROM settle_submit_bulk($1::jsonb)";
/*
 * Times in UTC, RFC 3339 with microseconds, whatever the session's TimeZone
 * (PGTZ, the role's settings): two gateways answer the same bytes.
 */
#define UTC(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
static const char *status_sql =
"SELECT json_build_object('payment_id', t.payment_id, 'transaction_id', t.transaction_id,"
" 'idempotency_key', t.idempotency_key, 'amount', t.amount::text,"
" 'source_currency', t.source_currency, 'destination_currency', t.destination_currency,"
" 'source_account', t.source_account, 'destination_account', t.destination_account,"
" 'source_participant', t.source_participant, 'counterparty_id', t.counterparty_id,"
" 'destination_amount', t.destination_amount::text, 'fx_rate', t.fx_rate::text,"
" 'priority', t.priority, 'deadline', " UTC("t.deadline") ", 'status', t.status,"
" 'submitted_at', " UTC("t.submitted_at") ", 'updated_at', " UTC("t.updated_at") ","
" 'settled_at', " UTC("t.settled_at") ","
" 'cycle_id', t.cycle_id, 'hold_reason', t.hold_reason)::text"
" FROM settle_payment_status(transaction_id => $1) t WHERE t.source_participant = $2";

/*
 * The payments of one ISO 20022 message: their idempotency keys are
 * "<message name>:<MsgId>/<TxId>" (iso_key), and a TxId has no '/', so the
 * rest of the key after the prefix has none either.
 */
static const char *iso_status_sql =
"SELECT CASE WHEN starts_with(t.idempotency_key, $1) THEN 1 ELSE 2 END AS kind,"
" t.transaction_id, t.status, t.hold_reason, t.payment_id::text"
" FROM settle.transactions t"
" WHERE t.source_participant = $3"
" AND ((starts_with(t.idempotency_key, $1) AND strpos(substr(t.idempotency_key, length($1) + 1), '/') = 0)"
" OR (starts_with(t.idempotency_key, $2) AND strpos(substr(t.idempotency_key, length($2) + 1), '/') = 0))"
" ORDER BY kind, t.payment_id";

/*
 * A day's entries for camt.053 and camt.054: settle_statement() of the
 * client's participant from 00:00 UTC to the next 00:00 UTC (its JSON, with
 * the proofs, in the first row), then its entries flattened, in its order.
 */
static const char *iso_report_sql =
"WITH s AS MATERIALIZED (SELECT settle_statement($1, $2::date::timestamp AT TIME ZONE 'UTC',"
"                                                 ($2::date + 1)::timestamp AT TIME ZONE 'UTC') AS j),"
" a AS (SELECT x.v AS acc, x.o AS ai FROM s, jsonb_array_elements(s.j->'accounts') WITH ORDINALITY x(v, o)),"
" e AS (SELECT a.acc, a.ai, y.v AS ent, coalesce(y.o, 0) AS ei, (y.v->>'content')::jsonb AS c"
"       FROM a LEFT JOIN LATERAL jsonb_array_elements(a.acc->'entries') WITH ORDINALITY y(v, o) ON true)"
" SELECT 0 AS k, 0::bigint AS ai, 0::bigint AS ei, s.j::text AS stmt, NULL::text AS account_id,"
"        NULL::text AS currency, NULL::text AS exponent, NULL::text AS in_period, NULL::text AS amount,"
"        NULL::text AS posted_us, NULL::text AS balance_after, NULL::text AS entry_id, NULL::text AS payment_id,"
"        NULL::text AS transaction_id, NULL::text AS account_seq FROM s"
" UNION ALL"
" SELECT 1, e.ai, e.ei, NULL, e.acc->>'account_id', e.acc->>'currency', cur.exponent::text, e.ent->>'in_period',"
"        e.c->>8, e.c->>9, e.c->>11, e.c->>1, e.c->>4, t.transaction_id, e.c->>10"
"   FROM e LEFT JOIN settle.currencies cur ON cur.code = e.acc->>'currency'"
"   LEFT JOIN settle.transactions t ON t.payment_id = (e.c->>4)::bigint"
" ORDER BY 1, 2, 3";

/*
 * One payment's entries on the client's accounts (row-level security shows
 * no other), by payment_id or by the payer's idempotency key (iso_key of
 * MsgId/TxId, as pacs.008 or pacs.009), for its camt.054.
 */
static const char *iso_payment_sql =
"SELECT e.entry_id::text, e.account_id, e.currency, cur.exponent::text, e.amount::text,"
"       (extract(epoch FROM e.posted_at) * 1000000)::bigint::text, p.payment_id::text, p.transaction_id"
"  FROM settle.payment p JOIN settle.ledger_entry e ON e.payment_id = p.payment_id"
"  LEFT JOIN settle.currencies cur ON cur.code = e.currency"
" WHERE CASE WHEN $1::bigint IS NOT NULL THEN p.payment_id = $1::bigint"
"            ELSE p.source_participant = $4 AND p.idempotency_key IN ($2, $3) END"
" ORDER BY e.account_id, e.entry_id";

/*
 * A commit whose wait for the synchronous standby is cancelled
 * (pg_cancel_backend, a pool's time-out) stays local and comes back as a
 * success with a WARNING.  So any WARNING during a submit makes the worker
 * check durability before it answers (run_submit).
 */
static void
notice_receiver(void *arg, const PGresult *res)
{
	Worker	   *w = arg;
	const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);

	if (sev && strcmp(sev, "WARNING") == 0)
		w->warned = true;
}

static bool
worker_connect(Worker *w)
{
	PGconn	   *c = pool_connect(true);

	if (c)
	{
		PQsetNoticeReceiver(c, notice_receiver, w);
		PGresult   *r1 = PQprepare(c, "submit", submit_sql, 1, NULL);
		PGresult   *r2 = PQprepare(c, "status", status_sql, 2, NULL);
		PGresult   *r3 = PQprepare(c, "iso_status", iso_status_sql, 3, NULL);
		PGresult   *r4 = PQprepare(c, "iso_report", iso_report_sql, 2, NULL);
		PGresult   *r5 = PQprepare(c, "iso_payment", iso_payment_sql, 4, NULL);

		if (PQresultStatus(r1) != PGRES_COMMAND_OK || PQresultStatus(r2) != PGRES_COMMAND_OK ||
			PQresultStatus(r3) != PGRES_COMMAND_OK || PQresultStatus(r4) != PGRES_COMMAND_OK ||
			PQresultStatus(r5) != PGRES_COMMAND_OK)
		{
			fprintf(stderr, "settle-gateway: cannot prepare statements: %s", PQerrorMessage(c));
			PQfinish(c);
			c = NULL;
		}
		PQclear(r1);
		PQclear(r2);
		PQclear(r3);
		PQclear(r4);
		PQclear(r5);
	}
	pthread_mutex_lock(&qlock);
	w->conn = c;
	/* one line when the pool loses the primary and one when it has one again */
	if (c)
	{
		if (primary_missing)
			fprintf(stderr, "settle-gateway: connected to the primary again\n");
		connected_workers++;
		primary_missing = false;
	}
	else
	{
		if (!primary_missing)
			fprintf(stderr, "settle-gateway: no primary reachable (answering 503 meanwhile): %s",
					pool_last_connect_error());
		primary_missing = true;
		w->next_connect = gw_now() + RECONNECT_INTERVAL;
	}
	pthread_mutex_unlock(&qlock);
	return c != NULL;
}

static void
worker_disconnect(Worker *w)
{
	PQfinish(w->conn);
	pthread_mutex_lock(&qlock);
	w->conn = NULL;
	connected_workers--;
	w->next_connect = gw_now();
	pthread_mutex_unlock(&qlock);
}

static double
ts_seconds(const struct timespec *t)
{
	return t->tv_sec + t->tv_nsec / 1e9;
}

/* ---- answering jobs ---- */

static void
fail_job(Job *j, int status, const char *sqlstate, const char *message)
{
	j->error_status = status;
	snprintf(j->error_sqlstate, sizeof(j->error_sqlstate), "%s", sqlstate ? sqlstate : "");
	free(j->error_message);
	j->error_message = strdup(message ? message : "");
}

static void
finish_jobs(Job **jobs, int n)
{
	for (int i = 0; i < n; i++)
		jobs[i]->done(jobs[i]);
}


/*
 * One prepared statement as the client's role: SET ROLE and the statement
 * in one pipeline, one implicit transaction, one round trip.  The role is
 * set again for every call, so that the database checks at every batch that
 * the gateway may still act as it (settle_revoke_api_token of a role's last
 * token revokes that), not only when a connection first took the role.
 * An error result if the SET ROLE or the statement failed; a result without
 * SQLSTATE if the connection did.
 */
/*
 * A call that passed its deadline: its connection is in an unknown state (the
 * statement may still commit), so it is dropped and the caller sees a result
 * without SQLSTATE, which every caller treats as a lost connection: 503, the
 * outcome unknown, retry with the same idempotency key.
 */
static PGresult *
call_timed_out(Worker *w)
{
	fprintf(stderr, "settle-gateway: a database call took longer than %d ms (--call-timeout-ms): "
			"connection %d dropped, the request answered 503\n", gw_config.call_timeout_ms, w->id);
	return PQmakeEmptyPGresult(NULL, PGRES_FATAL_ERROR);
}

/*
 * One prepared statement as the client's role: SET ROLE and the statement
 * in one pipeline, one implicit transaction, one round trip.  The role is
 * set again for every call, so that the database checks at every batch that
 * the gateway may still act as it (settle_revoke_api_token of a role's last
 * token revokes that), not only when a connection first took the role.
 * An error result if the SET ROLE or the statement failed; a result without
 * SQLSTATE if the connection did or the call passed its deadline.
 * stmt: a prepared statement's name; or sql: a statement's text.
 */
static PGresult *
exec_sql_as(Worker *w, const char *role, const char *stmt, const char *sql, int nparams,
			const char *const *params)
{
	PGconn	   *c = w->conn;
	const char *rp[1] = {role};
	double		deadline = gw_now() + gw_config.call_timeout_ms / 1000.0;
	bool		late = false;
	PGresult   *r,
			   *got[2] = {NULL, NULL};

	if (!PQenterPipelineMode(c))
		return PQmakeEmptyPGresult(c, PGRES_FATAL_ERROR);
	if (!PQsendQueryParams(c, "SELECT set_config('role', $1, false)", 1, NULL, rp, NULL, NULL, 0) ||
		!(sql ? PQsendQueryParams(c, sql, nparams, NULL, params, NULL, NULL, 0)
		  : PQsendQueryPrepared(c, stmt, nparams, params, NULL, NULL, 0)) ||
		!PQpipelineSync(c))
		goto broken;
	/* the SET ROLE's result, then the statement's, each followed by NULL, then the sync */
	for (int i = 0; i < 2; i++)
	{
		if ((got[i] = db_result_by(c, deadline, &late)) == NULL)
			goto broken;
		while ((r = db_result_by(c, deadline, &late)) != NULL)
			PQclear(r);
		if (late)
			goto broken;
	}
	r = db_result_by(c, deadline, &late);
	if (!r || PQresultStatus(r) != PGRES_PIPELINE_SYNC)
	{
		PQclear(r);
		goto broken;
	}
	PQclear(r);
	PQexitPipelineMode(c);
	if (PQresultStatus(got[0]) != PGRES_TUPLES_OK)
	{
		PQclear(got[1]);
		return got[0];
	}
	PQclear(got[0]);
	return got[1];

broken:
	PQclear(got[0]);
	PQclear(got[1]);
	if (late)
		return call_timed_out(w);
	return PQmakeEmptyPGresult(c, PGRES_FATAL_ERROR);
}

/* A plain statement on the worker's connection, within the call's deadline */
static PGresult *
exec_plain(Worker *w, const char *sql)
{
	double		deadline = gw_now() + gw_config.call_timeout_ms / 1000.0;
	bool		late = false;
	PGresult   *r,
			   *last = NULL;

	if (!PQsendQuery(w->conn, sql))
		return PQmakeEmptyPGresult(w->conn, PGRES_FATAL_ERROR);
	while ((r = db_result_by(w->conn, deadline, &late)) != NULL)
	{
		PQclear(last);
		last = r;
	}
	if (late)
	{
		PQclear(last);
		return call_timed_out(w);
	}
	return last ? last : PQmakeEmptyPGresult(w->conn, PGRES_FATAL_ERROR);
}

static PGresult *
exec_as(Worker *w, const char *role, const char *stmt, int nparams, const char *const *params)
{
	return exec_sql_as(w, role, stmt, NULL, nparams, params);
}

static void
run_submit(Worker *w, Job **jobs, int n)
{
	Buf			arr;
	int			rows = 0;
	int		   *job_of,
			   *idx_of;
	PGresult   *res;
	const char *params[1];
	int			created = 0,
				replayed = 0,
				refused = 0;

	for (int i = 0; i < n; i++)
		rows += jobs[i]->n;
	job_of = malloc(rows * sizeof(int));
	idx_of = malloc(rows * sizeof(int));
	buf_init(&arr, 256 * (size_t) rows + 2);
	buf_append(&arr, "[", 1);
	rows = 0;
	for (int i = 0; i < n; i++)
		for (int k = 0; k < jobs[i]->n; k++)
		{
			if (rows > 0)
				buf_append(&arr, ",", 1);
			buf_append(&arr, jobs[i]->elem[k], (size_t) jobs[i]->elem_len[k]);
			job_of[rows] = i;
			idx_of[rows] = k;
			rows++;
		}
	buf_append(&arr, "]", 1);
	params[0] = arr.data;
	w->warned = false;
	res = exec_as(w, jobs[0]->role, "submit", 1, params);
	buf_free(&arr);
	if (PQresultStatus(res) == PGRES_TUPLES_OK && w->warned)
	{
		/*
		 * Perhaps a commit that did not reach the synchronous standby: wait
		 * until it has (settle._wait_durable, as intake does for replays),
		 * or answer 503 (SE140 if that wait is cancelled too).
		 */
		PGresult   *d = exec_plain(w, "SELECT settle._wait_durable('the payments of this gateway call')");

		if (PQresultStatus(d) != PGRES_TUPLES_OK)
		{
			PQclear(res);
			res = d;
		}
		else
			PQclear(d);
	}

	if (PQresultStatus(res) == PGRES_TUPLES_OK)
	{
		for (int r = 0; r < PQntuples(res); r++)
		{
			int			ord = atoi(PQgetvalue(res, r, 0)) - 1;
			PaymentResult *pr;

			if (ord < 0 || ord >= rows)
				continue;
			pr = &jobs[job_of[ord]]->results[idx_of[ord]];
			pr->has_payment = !PQgetisnull(res, r, 1);
			if (pr->has_payment)
				pr->payment_id = atoll(PQgetvalue(res, r, 1));
			pr->replay = PQgetvalue(res, r, 2)[0] == 't';
			if (!PQgetisnull(res, r, 3))
				snprintf(pr->sqlstate, sizeof(pr->sqlstate), "%s", PQgetvalue(res, r, 3));
			pr->message = PQgetisnull(res, r, 4) ? NULL : strdup(PQgetvalue(res, r, 4));
			pr->transaction_id = PQgetisnull(res, r, 5) ? NULL : strdup(PQgetvalue(res, r, 5));
			pr->idempotency_key = PQgetisnull(res, r, 6) ? NULL : strdup(PQgetvalue(res, r, 6));
			if (!pr->has_payment)
				refused++;
			else if (pr->replay)
				replayed++;
			else
				created++;
		}
		metrics_batch(rows, created, replayed, refused);
		PQclear(res);
	}
	else
	{
		const char *st = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		char	   *msg = strdup(PQresultErrorMessage(res));
		char		state[6];

		snprintf(state, sizeof(state), "%s", st ? st : "");
		PQclear(res);
		metrics_db_error();
		if (db_connection_error(w->conn, st))
		{
			worker_disconnect(w);
			for (int i = 0; i < n; i++)
				fail_job(jobs[i], 503, state[0] ? state : "08006",
						 "the connection to the primary was lost or it is no longer the primary: "
						 "the outcome is unknown, retry with the same idempotency_key");
		}
		else if (n > 1 && strcmp(state, "SE140") != 0 && strcmp(state, "42501") != 0)
		{
			/* one request must not fail the others: each alone */
			for (int i = 0; i < n && w->conn; i++)
				run_submit(w, &jobs[i], 1);
			for (int i = 0; i < n; i++)
				if (!w->conn && jobs[i]->error_status == 0 && jobs[i]->results[0].transaction_id == NULL
					&& !jobs[i]->results[0].sqlstate[0])
					fail_job(jobs[i], 503, "08006", "the connection to the primary was lost");
		}
		else
		{
			StatusMapping m = status_for_sqlstate(state);

			for (int i = 0; i < n; i++)
				fail_job(jobs[i], m.http_status, state, msg);
		}
		free(msg);
	}
	free(job_of);
	free(idx_of);
}

static void
run_status(Worker *w, Job *j)
{
	PGresult   *res;
	const char *params[3] = {j->transaction_id, j->participant, NULL};

	if (j->kind == JOB_ISO_STATUS)
	{
		params[0] = j->iso_prefix[0];
		params[1] = j->iso_prefix[1];
		params[2] = j->participant;
		res = exec_as(w, j->role, "iso_status", 3, params);
	}
	else if (j->kind == JOB_ISO_REPORT)
	{
		params[0] = j->participant;
		params[1] = j->iso_date;
		res = exec_as(w, j->role, "iso_report", 2, params);
	}
	else if (j->kind == JOB_CONTROL)
	{
		w->warned = false;
		res = exec_sql_as(w, j->role, NULL, j->sql, j->nparams, j->params);
		/* a change whose wait for the synchronous standby was cancelled: as run_submit */
		if (PQresultStatus(res) == PGRES_TUPLES_OK && w->warned)
		{
			PGresult   *d = exec_plain(w, "SELECT settle._wait_durable('a participant''s control changed through the gateway')");

			if (PQresultStatus(d) != PGRES_TUPLES_OK)
			{
				PQclear(res);
				res = d;
			}
			else
				PQclear(d);
		}
	}
	else if (j->kind == JOB_ISO_PAYMENT)
	{
		const char *pp[4] = {j->iso_payment_id, j->iso_prefix[0], j->iso_prefix[1], j->participant};

		res = exec_as(w, j->role, "iso_payment", 4, pp);
	}
	else
		res = exec_as(w, j->role, "status", 2, params);
	if (PQresultStatus(res) == PGRES_TUPLES_OK &&
		(j->kind == JOB_ISO_STATUS || j->kind == JOB_ISO_REPORT || j->kind == JOB_ISO_PAYMENT))
	{
		/* the status rows as they are; the report's without its ordering columns (ai, ei) */
		int			cols = j->kind == JOB_ISO_STATUS ? ISO_STATUS_COLS :
			j->kind == JOB_ISO_PAYMENT ? ISO_PAYMENT_COLS : ISO_REPORT_COLS;

		j->iso_rows = PQntuples(res);
		j->iso_cells = calloc((size_t) j->iso_rows * cols + 1, sizeof(char *));
		for (int r = 0; r < j->iso_rows; r++)
			for (int k = 0; k < cols; k++)
			{
				int			f = j->kind == JOB_ISO_REPORT && k > 0 ? k + 2 : k;

				j->iso_cells[r * cols + k] = PQgetisnull(res, r, f) ? NULL : strdup(PQgetvalue(res, r, f));
			}
	}
	else if (PQresultStatus(res) == PGRES_TUPLES_OK)
	{
		if (PQntuples(res) > 0)
			j->status_json = strdup(PQgetvalue(res, 0, 0));
	}
	else
	{
		const char *st = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		bool		lost = db_connection_error(w->conn, st);
		StatusMapping m = status_for_sqlstate(lost ? "08006" : st);

		metrics_db_error();
		fail_job(j, m.http_status, lost ? "08006" : st, PQresultErrorMessage(res));
		if (lost)
		{
			PQclear(res);
			worker_disconnect(w);
			return;
		}
	}
	PQclear(res);
}

/* ---- the queue ---- */

static void
unlink_job(Job *prev, Job *j)
{
	if (prev)
		prev->next = j->next;
	else
		qhead = j->next;
	if (qtail == j)
		qtail = prev;
	j->next = NULL;
	if (j->kind == JOB_SUBMIT)
		queued_rows -= j->n;
}

static int
rows_for_role(const char *role)
{
	int			rows = 0;

	for (Job *j = qhead; j; j = j->next)
		if (j->kind == JOB_SUBMIT && strcmp(j->role, role) == 0)
			rows += j->n;
	return rows;
}

/*
 * Waking workers costs a context switch each (most of the gateway's own CPU
 * in a profile, before this): a job wakes an idle worker only when no worker
 * is collecting a batch, the collector only when its batch is full (or for a
 * status look-up), and a worker that takes a batch passes the wake-up on when
 * work is left.
 */
static pthread_cond_t ccond;	/* the collector's timed wait */
static int	idle_waiters;		/* workers in pthread_cond_wait(&qcond) */
static bool collecting;			/* a worker waits for its batch to fill */
static char collect_role[GW_ROLE_LEN + 1];

static void
wait_idle(void)
{
	idle_waiters++;
	pthread_cond_wait(&qcond, &qlock);
	idle_waiters--;
}

static void
wait_collect(double until, const char *role)
{
	struct timespec ts;

	/* the conditions use CLOCK_MONOTONIC (pool_start), as gw_now() does */
	ts.tv_sec = (time_t) until;
	ts.tv_nsec = (long) ((until - (double) ts.tv_sec) * 1e9);
	if (ts.tv_nsec >= 1000000000L)
	{
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	collecting = true;
	snprintf(collect_role, sizeof(collect_role), "%s", role);
	pthread_cond_timedwait(&ccond, &qlock, &ts);
	collecting = false;
}

/* Sleep outside the lock until t (a worker without a connection), waking for stop. */
static void
sleep_until(double t)
{
	pthread_mutex_unlock(&qlock);
	while (!__atomic_load_n(&stopping, __ATOMIC_RELAXED) && gw_now() < t)
	{
		struct timespec d = {0, 20 * 1000 * 1000};

		nanosleep(&d, NULL);
	}
	pthread_mutex_lock(&qlock);
}

static void *
worker_main(void *arg)
{
	Worker	   *w = arg;
	Job		  **batch = malloc(sizeof(Job *) * (size_t) (gw_config.batch_max + 1));

	pthread_mutex_lock(&qlock);
	while (!stopping)
	{
		Job		   *h,
				   *prev,
				   *hprev = NULL;
		int			nb = 0,
					rows = 0;
		double		now = gw_now();

		if (!w->conn && now >= w->next_connect)
		{
			pthread_mutex_unlock(&qlock);
			worker_connect(w);
			pthread_mutex_lock(&qlock);
			continue;
		}
		if (!w->conn && (connected_workers > 0 || !qhead))
		{
			/* a connected worker takes the jobs; this one tries again later */
			sleep_until(w->next_connect);
			continue;
		}
		/* status look-ups first: they are single and short */
		h = NULL;
		for (Job *j = qhead, *p = NULL; j; p = j, j = j->next)
			if (j->kind != JOB_SUBMIT)
			{
				h = j;
				hprev = p;
				break;
			}
		if (!h)
		{
			h = qhead;
			hprev = NULL;
		}
		if (!h)
		{
			wait_idle();
			continue;
		}
		if (w->conn && h->kind == JOB_SUBMIT && busy_workers > 0 && gw_config.batch_wait_us > 0)
		{
			double		deadline = ts_seconds(&h->enqueued) + gw_config.batch_wait_us / 1e6;

			if (now < deadline && rows_for_role(h->role) < gw_config.batch_max)
			{
				if (collecting)
					wait_idle();
				else
					wait_collect(deadline, h->role);
				continue;
			}
		}
		/* take the batch: h, then the same participant's jobs after it */
		unlink_job(hprev, h);
		batch[nb++] = h;
		rows = h->n;
		if (h->kind == JOB_SUBMIT)
		{
			prev = hprev;
			for (Job *j = prev ? prev->next : qhead; j && rows < gw_config.batch_max;)
			{
				Job		   *next = j->next;

				if (j->kind == JOB_SUBMIT && strcmp(j->role, h->role) == 0)
				{
					if (rows + j->n > gw_config.batch_max)
						break;
					unlink_job(prev, j);
					batch[nb++] = j;
					rows += j->n;
				}
				else
					prev = j;
				j = next;
			}
		}
		/* work left: pass the wake-up on */
		if (qhead && idle_waiters > 0 && !collecting)
			pthread_cond_signal(&qcond);
		busy_workers++;
		pthread_mutex_unlock(&qlock);

		if (!w->conn)
		{
			for (int i = 0; i < nb; i++)
				fail_job(batch[i], 503, "08001", "no primary database is reachable");
		}
		else if (h->kind != JOB_SUBMIT)
			run_status(w, h);
		else
			run_submit(w, batch, nb);
		finish_jobs(batch, nb);

		pthread_mutex_lock(&qlock);
		busy_workers--;
	}
	pthread_mutex_unlock(&qlock);
	free(batch);
	return NULL;
}

int
pool_enqueue(Job *job)
{
	int			rc = 0;

	clock_gettime(CLOCK_MONOTONIC, &job->enqueued);
	job->next = NULL;
	pthread_mutex_lock(&qlock);
	if (stopping)
		rc = 503;
	else if (connected_workers == 0 && primary_missing)
		rc = 503;
	else if (job->kind == JOB_SUBMIT && queued_rows > 0 && queued_rows + job->n > gw_config.queue_max)
		rc = 429;
	else
	{
		if (qtail)
			qtail->next = job;
		else
			qhead = job;
		qtail = job;
		if (job->kind == JOB_SUBMIT)
			queued_rows += job->n;
		if (!collecting || job->kind != JOB_SUBMIT || strcmp(job->role, collect_role) != 0)
		{
			/* an idle worker takes it (or becomes the collector) */
			if (idle_waiters > 0)
				pthread_cond_signal(&qcond);
			else if (collecting)
				pthread_cond_signal(&ccond);
		}
		else if (rows_for_role(collect_role) >= gw_config.batch_max)
			pthread_cond_signal(&ccond);	/* the collector's batch is full */
	}
	pthread_mutex_unlock(&qlock);
	return rc;
}

void
pool_gauges(int *busy, int *connected, int *size, int *rows)
{
	pthread_mutex_lock(&qlock);
	*busy = busy_workers;
	*connected = connected_workers;
	*size = gw_config.pool_size;
	*rows = queued_rows;
	pthread_mutex_unlock(&qlock);
}

int
pool_start(void)
{
	pthread_condattr_t ca;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&qcond, &ca);
	pthread_cond_init(&ccond, &ca);
	workers = calloc((size_t) gw_config.pool_size, sizeof(Worker));
	for (int i = 0; i < gw_config.pool_size; i++)
	{
		workers[i].id = i;
		if (pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]) != 0)
			return -1;
	}
	return 0;
}

void
pool_stop(void)
{
	pthread_mutex_lock(&qlock);
	__atomic_store_n(&stopping, true, __ATOMIC_RELAXED);
	pthread_cond_broadcast(&qcond);
	pthread_cond_broadcast(&ccond);
	pthread_mutex_unlock(&qlock);
	for (int i = 0; i < gw_config.pool_size; i++)
	{
		pthread_join(workers[i].thread, NULL);
		if (workers[i].conn)
			PQfinish(workers[i].conn);
	}
	/* jobs still queued: their connections are being closed by http_stop */
	pthread_mutex_lock(&qlock);
	while (qhead)
	{
		Job		   *j = qhead;

		unlink_job(NULL, j);
		fail_job(j, 503, "57P01", "the gateway is shutting down");
		pthread_mutex_unlock(&qlock);
		j->done(j);
		pthread_mutex_lock(&qlock);
	}
	pthread_mutex_unlock(&qlock);
	if (control)
		PQfinish(control);
	control = NULL;
}

/* ---- the control connection: token look-ups ---- */

PGresult *
pool_control_exec(const char *sql, int nparams, const char *const *params, char *error, size_t errsize)
{
	PGresult   *res = NULL;

	pthread_mutex_lock(&control_lock);
	for (int attempt = 0; attempt < 2; attempt++)
	{
		if (!control || PQstatus(control) != CONNECTION_OK)
		{
			if (control)
				PQfinish(control);
			control = pool_connect(true);
			if (!control)
			{
				snprintf(error, errsize, "no primary database is reachable");
				break;
			}
		}
		res = PQexecParams(control, sql, nparams, NULL, params, NULL, NULL, 0);
		if (PQresultStatus(res) == PGRES_TUPLES_OK)
			break;
		snprintf(error, errsize, "%s", PQresultErrorMessage(res));
		{
			const char *st = PQresultErrorField(res, PG_DIAG_SQLSTATE);
			bool		lost = db_connection_error(control, st);

			PQclear(res);
			res = NULL;
			if (!lost)
				break;
			PQfinish(control);
			control = NULL;
		}
	}
	pthread_mutex_unlock(&control_lock);
	return res;
}
