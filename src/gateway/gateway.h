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
 *   iso_read.c    ISO 20022 messages in: hardened XML parsing, schema
 *                 validation, pacs.008/pacs.009 mapped onto payments;
 *   iso_reason.c  SQLSTATE -> ISO 20022 status reason code, the one table;
 *   iso_write.c   ISO 20022 messages out: pacs.002 status reports;
 *   iso_camt.c    ISO 20022 messages out: camt.053 statements, camt.054
 *                 notifications, with settle_statement()'s proofs;
 *   controls.c    a participant's controls: limits, reservations, alerts,
 *                 its queue (docs/PARTICIPANT_CONTROLS.md);
 *   iso_notify.c  ISO 20022 pushed: the Server-Sent Events stream of
 *                 pacs.002 and camt.054 as payments settle or fail;
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
#ifndef GW_XSD_DIR				/* where make install puts iso20022/xsd */
#define GW_XSD_DIR "iso20022/xsd"
#endif

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
	int			call_timeout_ms;	/* a database call's deadline: then the
									 * connection is dropped, outcome unknown */
	int			tcp_timeout_ms; /* a silent database peer counts as gone */
	char	   *iso_xsd_dir;	/* the ISO 20022 schemas (iso20022/xsd) */
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

/* a field of a control's body (json_read_fields): its name, the JSON types it may take */
#define JSON_T_STRING 1
#define JSON_T_NUMBER 2
#define JSON_T_BOOL 4
#define JSON_T_NULL 8
typedef struct JsonField
{
	const char *name;
	int			types;
	int			seen;			/* the type it had, 0: absent */
} JsonField;
extern JsonStatus json_read_fields(const char *s, size_t len, JsonField *fields, int nfields,
								   JsonError *err);

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

/* ---- iso_read.c, iso_reason.c, iso_write.c: ISO 20022 (docs/ISO20022.md) ---- */
#define ISO_MAX_TEXT 35			/* Max35Text: MsgId, EndToEndId, TxId */
#define ISO_MSG_PACS008 "pacs.008.001.08"
#define ISO_MSG_PACS009 "pacs.009.001.08"
#define ISO_MSG_PACS002 "pacs.002.001.10"
#define ISO_MSG_CAMT053 "camt.053.001.08"
#define ISO_MSG_CAMT054 "camt.054.001.08"
#define ISO_MSG_HEAD001 "head.001.001.02"

typedef struct IsoTx
{
	char	   *json;			/* the payment for settle_submit_bulk; NULL: refused here */
	char		instr_id[ISO_MAX_TEXT + 1];
	char		end_to_end_id[ISO_MAX_TEXT + 1];
	char		tx_id[ISO_MAX_TEXT + 2];	/* TxId, or the UETR (36) */
	char		uetr[37];
	const char *reason;			/* refused here: ISO reason code and why */
	char		why[106];
} IsoTx;

/* a business application header (head.001.001.02) and the envelope around it */
typedef struct IsoAppHdr
{
	bool		present;
	char		wrapper[64];	/* the envelope element: its local name ... */
	char		wrapper_ns[256];	/* ... and namespace ("" if none) */
	char		fr[GW_MAX_ID + 1];	/* Fr/FIId's participant ("" if none) */
	char		fr_kind;		/* 'B' BICFI, 'O' Othr/Id, 'C' ClrSysMmbId/MmbId */
	char		to[GW_MAX_ID + 1];
	char		to_kind;
	char		biz_msg_idr[ISO_MAX_TEXT + 1];
	char		msg_def_idr[ISO_MAX_TEXT + 1];
	char		biz_svc[ISO_MAX_TEXT + 1];
	char		cre_dt[64];
} IsoAppHdr;

typedef struct IsoMessage
{
	const char *name;			/* ISO_MSG_PACS008 or ISO_MSG_PACS009 */
	IsoAppHdr	hdr;			/* sent with a header: answered with one */
	char		msg_id[ISO_MAX_TEXT + 1];
	char		cre_dt_tm[64];
	int			n;
	IsoTx	   *tx;
	/* refused as a whole, but a pacs.002 can say so: reason code and why */
	const char *group_reason;
	char		group_why[106];
} IsoMessage;

typedef enum
{
	ISO_OK = 0,
	ISO_NOT_XML,				/* not well-formed, a DTD, not UTF-8, too deep: 400 */
	ISO_UNSUPPORTED,			/* another message or version: 422 */
	ISO_INVALID,				/* fails its schema: 422 */
	ISO_TOO_MANY				/* more transactions than --max-array: 422 */
} IsoStatus;

/* 0, or -1 with a line on stderr: the schemas could not be loaded */
extern int	iso_init(const char *xsd_dir);
extern bool iso_ready(void);
extern IsoStatus iso_read_message(const char *body, size_t len, int max_tx, IsoMessage *out,
								  char *error, size_t errsize);
extern void iso_message_free(IsoMessage *m);
/* the idempotency key of a transaction: "<message name>:<MsgId>/<TxId>" */
extern void iso_key(const char *msg_name, const char *msg_id, const char *tx_id, char *out, size_t size);

typedef struct IsoReason
{
	const char *code;			/* ExternalStatusReason1Code */
	const char *name;
} IsoReason;
extern IsoReason iso_reason_for_sqlstate(const char *sqlstate);

/* a pacs.002 answering a message just submitted (results: one per transaction sent) */
struct PaymentResult;
extern void iso_write_pacs002_submit(Buf *b, const IsoMessage *m, const int *sent_index,
									 const struct PaymentResult *results);
/* a pacs.002 of a message's payments as they are now (the first rows of JOB_ISO_STATUS's) */
extern void iso_write_pacs002_status(Buf *b, const char *msg_id, const char *msg_name, int rows,
									 char *const *cells);
/* camt.053 (statement) or camt.054 (notification) of one day, from JOB_ISO_REPORT's rows */
extern void iso_write_camt(Buf *b, bool statement, const char *participant, const char *date, int rows,
						   char *const *cells);
/*
 * camt.054 of one payment, from rows of ISO_PAYMENT_COLS: entry_id,
 * account_id, currency, exponent, amount (minor units), posted_at (µs since
 * the epoch), payment_id, transaction_id; ordered by account, entry
 */
#define ISO_PAYMENT_COLS 8
extern void iso_write_camt054_payment(Buf *b, const char *participant, int rows, char *const *cells);
/* XML text escaping */
extern void buf_xml_text(Buf *b, const char *s);

/* ---- controls.c: a participant's controls (docs/PARTICIPANT_CONTROLS.md) ---- */
struct Job;
typedef struct ControlCall
{
	int			action;			/* controls.c's; 0: not a controls path */
	char		arg[2][GW_MAX_ID + 1];	/* the path's names */
	char		standing[6];	/* DELETE of a reservation: "true" or "false" */
	char	   *body;			/* a copy of the body, NUL-terminated */
} ControlCall;

/* a refusal of the gateway's own (before the database) */
typedef struct ControlProblem
{
	int			status;
	const char *type;
	const char *title;
	char		detail[256];
	char		field[GW_MAX_ID + 1];
} ControlProblem;

/*
 * Whether url is a controls path: 0 if not; else 1, with call->action set
 * (its method taken) or *allow set (the methods it takes), or a 404 in p.
 */
extern int	controls_route(const char *url, const char *method, const char *standing, ControlCall *call,
						   const char **allow, ControlProblem *p);
extern bool controls_has_body(const ControlCall *call);
/* the job for the call, from its body: true, or false with the refusal in p */
extern bool controls_prepare(ControlCall *call, const char *body, size_t len, const char *participant,
							 struct Job *job, ControlProblem *p);
/* the answer of a job done without error: its status and body (NULL: none, 204), or a problem */
extern int	controls_answer(const ControlCall *call, struct Job *job, char **body, ControlProblem *p);
extern void controls_free(ControlCall *call);
/* ---- iso_notify.c: GET /api/v1/iso20022/notifications (docs/ISO20022.md) ---- */
struct MHD_Connection;
struct MHD_Response;
extern int	iso_notify_start(void);
extern void iso_notify_stop(void);
/* "<xid>-<event_id>": a resume point (Last-Event-ID, ?since=) */
extern bool iso_notify_cursor_valid(const char *s);
/* the stream's response, or NULL with *status (503) and *why */
extern struct MHD_Response *iso_notify_subscribe(struct MHD_Connection *conn, const char *role,
												 const char *participant, const char *cursor,
												 int *status, const char **why);

/* ---- metrics.c ---- */

/* ---- metrics.c ----
 * Fed by the other modules (counters they add to, gauges their caller reads
 * and hands over); it calls none of them. */
typedef struct MetricsGauges
{
	int			pool_busy;		/* database connections of the pool, by state */
	int			pool_connected;
	int			pool_size;
	int			queued_rows;	/* payments waiting for a database connection */
	unsigned	http_connections;	/* open HTTP connections */
} MetricsGauges;
extern void metrics_request(int http_status, double seconds);
extern void metrics_batch(int rows, int created, int replayed, int refused);
extern void metrics_db_error(void);
extern void metrics_render(Buf *out, const MetricsGauges *gauges);

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
	JOB_STATUS,
	JOB_ISO_STATUS,				/* the payments of one ISO 20022 message */
	JOB_ISO_REPORT,				/* a day's entries, for camt.053 and camt.054 */
	JOB_CONTROL,				/* a participant's control (controls.c): one statement */
	JOB_ISO_PAYMENT				/* one payment's entries, for its camt.054 */
} JobKind;

#define ISO_STATUS_COLS 5
/*
 * JOB_ISO_REPORT's rows: the first (kind 0) carries settle_statement()'s
 * JSON; then one per entry shown (kind 1) or per account without any: kind,
 * statement, account_id, currency, exponent, in_period, amount (minor
 * units), posted_at (µs since the epoch), balance_after, entry_id,
 * payment_id, transaction_id, account_seq
 */
#define ISO_REPORT_COLS 13
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
	/*
	 * JOB_ISO_STATUS: the key prefixes of a MsgId as pacs.008 and as
	 * pacs.009; rows of (1 or 2: which prefix, transaction_id, status,
	 * hold_reason, payment_id), ordered by prefix and payment
	 */
	const char *iso_prefix[2];
	int			iso_rows;
	char	  **iso_cells;		/* iso_rows * ISO_STATUS_COLS (or ISO_REPORT_COLS), NULL for SQL NULL */
	/* JOB_ISO_REPORT: the day (YYYY-MM-DD, UTC) */
	const char *iso_date;
	/* JOB_CONTROL: its statement; the answer, the first row's text, in status_json */
	const char *sql;
	int			nparams;
	const char *params[5];
	/* JOB_ISO_PAYMENT: the payment_id, or NULL and the two keys in iso_prefix */
	const char *iso_payment_id;
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
typedef struct pg_conn PGconn;

/* 0: queued (done() will be called); 429: saturated; 503: no primary */
extern int	pool_enqueue(Job *job);
/* one statement on the control connection (token look-ups); NULL on failure */
typedef struct pg_result PGresult;
extern PGresult *pool_control_exec(const char *sql, int nparams, const char *const *params,
								   char *error, size_t errsize);
extern void pool_gauges(int *busy, int *connected, int *size, int *queued_rows);

/* ---- db.c ---- */
/* a new connection: to the primary, or to any reachable host; NULL if none */
extern PGconn *pool_connect(bool primary);
/* why the calling thread's last pool_connect(true) found no primary */
extern const char *pool_last_connect_error(void);
/* the connection (or the primary) was lost: the call's outcome is unknown */
extern bool db_connection_error(PGconn *conn, const char *sqlstate);
/* PQgetResult within a deadline (gw_now() seconds); NULL and *late when it passed */
extern PGresult *db_result_by(PGconn *c, double deadline, bool *late);

/* ---- health.c ---- */
extern void health_start(void);
extern void health_stop(void);
/* the last report (waits for the first one, up to a few seconds) */
extern void health_get(HealthReport *out);

/* ---- http.c ---- */
extern int	http_start(void);
extern void http_stop(void);

/* monotonic seconds */
static inline double
gw_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

#endif							/* SETTLE_GATEWAY_H */
