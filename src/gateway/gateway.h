/*
 * gateway.h -- settle-gateway, the REST gateway in front of settle
 * (docs/GATEWAY.md).  What the files share:
 *
 *   main.c        start-up, signals, shut-down;
 *   config.c      options and their defaults;
 *   http.c        the HTTP server (libmicrohttpd): routes, limits, answers;
 *   json.c        the strict JSON reader of request bodies, JSON writing;
 *   pool.c        database connections, coalescing of requests into
 *                 settle_submit_bulk calls, fail-over;
 *   auth.c        bearer tokens: hashed, looked up in the database, cached;
 *   health.c      the health check, refreshed by its own thread and connection;
 *   status_map.c  SQLSTATE -> HTTP status, the one table;
 *   metrics.c     Prometheus counters and histograms.
 */
#ifndef SETTLE_GATEWAY_H
#define SETTLE_GATEWAY_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define GW_VERSION "1.1"
#define GW_MAX_ID 128			/* settle's identifier limit (bytes) */
#define GW_ROLE_LEN 64			/* NAMEDATALEN */

/* ---- config.c ---- */
typedef struct GatewayConfig
{
	char	   *listen_host;	/* an IPv4 address */
	int			port;
	char	   *conninfo;		/* libpq: every host of the cluster */
	char	   *tls_cert;		/* PEM files; both or neither */
	char	   *tls_key;
	int			pool_size;		/* database connections that submit */
	int			batch_max;		/* rows per settle_submit_bulk call */
	int			batch_wait_us;	/* how long a batch waits for company */
	int			queue_max;		/* rows waiting before 429 */
	size_t		max_body;		/* bytes: 413 above */
	int			max_array;		/* payments per request */
	int			max_connections;
	int			per_ip_connections;
	int			connection_timeout; /* seconds of inactivity */
	size_t		connection_memory;	/* per connection: headers and buffers */
	int			http_threads;
	int			auth_ttl;		/* seconds a token look-up is cached */
	int			retry_after;	/* seconds, in 429 and 503 answers */
	int			health_interval_ms;	/* how often health is checked */
} GatewayConfig;

extern GatewayConfig gw_config;
/* 0: run; 1: exit 0 (--help, --version); -1: exit 2 */
extern int	config_parse(int argc, char **argv);

/* ---- json.c ---- */
typedef struct Buf
{
	char	   *data;
	size_t		len;
	size_t		cap;
} Buf;
extern void buf_init(Buf *b, size_t cap);
extern void buf_free(Buf *b);
extern void buf_append(Buf *b, const char *s, size_t n);
extern void buf_puts(Buf *b, const char *s);
extern void buf_printf(Buf *b, const char *fmt,...) __attribute__((format(printf, 2, 3)));
/* a JSON string literal, quotes included; NULL gives null */
extern void buf_json_string(Buf *b, const char *s);
/* json.c: a hex digit's value, -1 if it is none */
extern int	hex_digit_value(char c);
/* steals the buffer: the caller frees the result */
extern char *buf_steal(Buf *b);

typedef enum
{
	JSON_OK = 0,
	JSON_SYNTAX,				/* not JSON: 400 */
	JSON_SHAPE					/* JSON, but not an object or an array of them: 422 */
} JsonStatus;

typedef struct JsonPayments
{
	bool		is_array;
	int			n;
	const char **elem;			/* spans into the body */
	int		   *elem_len;
} JsonPayments;

typedef struct JsonError
{
	size_t		offset;			/* byte where reading stopped */
	int			element;		/* 0-based element of an array, -1 */
	char		field[GW_MAX_ID + 1];	/* the key concerned, or "" */
	char		message[200];
} JsonError;

extern JsonStatus json_read_payments(const char *s, size_t len, int max_elems,
									 JsonPayments *out, JsonError *err);
extern void json_payments_free(JsonPayments *p);

/* ---- status_map.c ---- */
typedef struct StatusMapping
{
	int			http_status;
	const char *title;
	bool		retry;			/* 503: with Retry-After, the connection is suspect */
} StatusMapping;
extern StatusMapping status_for_sqlstate(const char *sqlstate);
/* the field a settle message names (its first word, or an unknown key) */
extern void status_field_of_message(const char *message, char *field, size_t size);

/* ---- metrics.c ---- */
extern void metrics_request(int http_status, double seconds);
extern void metrics_batch(int rows, int created, int replayed, int refused);
extern void metrics_db_error(void);
extern void metrics_render(Buf *out);

/* ---- auth.c ---- */
typedef struct AuthResult
{
	int			http_status;	/* 0: authenticated; else 401 or 503 */
	const char *reason;
	char		client_id[GW_MAX_ID + 1];
	char		role[GW_ROLE_LEN + 1];
	char		participant[GW_MAX_ID + 1];
} AuthResult;
extern void auth_init(void);
extern void auth_check(const char *authorization, AuthResult *out);

/* ---- pool.c ---- */
typedef struct PaymentResult
{
	bool		has_payment;	/* accepted or replayed */
	long long	payment_id;
	bool		replay;
	char	   *transaction_id;
	char	   *idempotency_key;
	char		sqlstate[6];	/* refused: its SQLSTATE */
	char	   *message;
} PaymentResult;

typedef enum
{
	JOB_SUBMIT,
	JOB_STATUS
} JobKind;

typedef struct Job Job;
struct Job
{
	Job		   *next;
	JobKind		kind;
	char		role[GW_ROLE_LEN + 1];
	char		participant[GW_MAX_ID + 1];
	/* JOB_SUBMIT: payments, as JSON texts */
	int			n;
	const char **elem;
	int		   *elem_len;
	PaymentResult *results;		/* n of them, filled by the pool */
	/* JOB_STATUS */
	const char *transaction_id;
	char	   *status_json;	/* the payment, or NULL: not found */
	/* a failure of the whole job: 0 if none */
	int			error_status;
	char		error_sqlstate[6];
	char	   *error_message;
	struct timespec enqueued;
	void		(*done) (Job *job);
	void	   *owner;
};

typedef struct HealthReport
{
	bool		reachable;
	bool		primary;
	bool		worker_enabled;
	bool		worker_running;
	bool		has_cycle_age;
	double		last_cycle_age;
	bool		sync_required;
	int			sync_standbys;
	bool		has_sync_state; /* the database reports needed, missing, reason (1.2) */
	int			sync_needed;
	bool		sync_missing;
	char		sync_reason[200];
	char		error[200];
} HealthReport;

extern int	pool_start(void);
extern void pool_stop(void);
/* a new connection: to the primary, or to any reachable host; NULL if none */
typedef struct pg_conn PGconn;
extern PGconn *pool_connect(bool primary);
/* 0: queued (done() will be called); 429: saturated; 503: no primary */
extern int	pool_enqueue(Job *job);
/* one statement on the control connection (token look-ups); NULL on failure */
typedef struct pg_result PGresult;
extern PGresult *pool_control_exec(const char *sql, int nparams, const char *const *params,
								   char *error, size_t errsize);
extern void pool_gauges(int *busy, int *connected, int *size, int *queued_rows);

/* ---- health.c ---- */
extern void health_start(void);
extern void health_stop(void);
/* the last report (waits for the first one, up to a few seconds) */
extern void health_get(HealthReport *out);

/* ---- http.c ---- */
extern int	http_start(void);
extern void http_stop(void);
extern unsigned http_open_connections(void);

/* monotonic seconds */
static inline double
gw_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

#endif							/* SETTLE_GATEWAY_H */
