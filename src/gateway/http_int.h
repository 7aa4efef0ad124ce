/*
 * http_int.h -- what the HTTP server's three files share: a request's
 * state (Req), its route, the paths, and the functions each file offers the
 * others.  http_route.c turns a request into a route and a job, http_answer.c
 * turns a job's outcome into the answer, http.c is the server around them.
 */
#ifndef SETTLE_GATEWAY_HTTP_INT_H
#define SETTLE_GATEWAY_HTTP_INT_H

#include <microhttpd.h>

#include "gateway.h"

#define GW_SUBMIT_PATH "/api/v1/transactions"
#define GW_HEALTH_PATH "/api/v1/health"
#define GW_METRICS_PATH "/metrics"
#define GW_ISO_PATH "/api/v1/iso20022"
#define GW_ISO_STATUS_PATH "/api/v1/iso20022/pacs.002/"
#define GW_ISO_CAMT053_PATH "/api/v1/iso20022/camt.053"
#define GW_ISO_CAMT054_PATH "/api/v1/iso20022/camt.054"
#define GW_ISO_CAMT054_PAYMENT_PATH "/api/v1/iso20022/camt.054/"
#define GW_ISO_EVENTS_PATH "/api/v1/iso20022/notifications"

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

/* ---- http_answer.c ---- */
extern struct MHD_Response *make_response(char *body, const char *ctype);
extern void decide(Req *r, int status, struct MHD_Response *resp);
extern void decide_problem(Req *r, int status, const char *type, const char *title, const char *detail, const char *sqlstate, const char *field);
extern enum MHD_Result send_pending(Req *r);
extern void decide_submit(Req *r);
extern void decide_status(Req *r);
extern void decide_iso_submit(Req *r);
extern void decide_iso_status(Req *r);
extern void decide_iso_report(Req *r);
extern void decide_control(Req *r);
extern void decide_iso_payment(Req *r);

/* ---- http_route.c ---- */
extern void job_clear(Job *j);
extern void submit_job(Req *r);
extern void route_request(Req *r, const char *url, const char *method);
extern void start_iso_submit(Req *r);
extern void start_control(Req *r);
extern void start_submit(Req *r);

#endif							/* SETTLE_GATEWAY_HTTP_INT_H */
