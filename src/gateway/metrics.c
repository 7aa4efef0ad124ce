/*
 * metrics.c -- what GET /metrics shows (Prometheus text format 0.0.4):
 * requests by status, request latency, batch sizes, payments by outcome,
 * pool and queue.  Counters are atomics: no lock on the request path.  The
 * other modules feed it (http.c, pool.c add to the counters; http.c reads the
 * gauges and hands them to metrics_render); it calls none of them back.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>

#include "gateway.h"

static const double latency_bounds[] = {0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5};
#define NLAT (sizeof(latency_bounds) / sizeof(latency_bounds[0]))
static const int batch_bounds[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024};
#define NBATCH (sizeof(batch_bounds) / sizeof(batch_bounds[0]))

static uint64_t by_status[600];
static uint64_t lat_bucket[NLAT + 1];
static uint64_t lat_sum_us;
static uint64_t lat_count;
static uint64_t batch_bucket[NBATCH + 1];
static uint64_t batch_rows;
static uint64_t batch_count;
static uint64_t pay_created,
			pay_replayed,
			pay_refused;
static uint64_t db_errors;

#define ADD(var, n) __atomic_add_fetch(&(var), (n), __ATOMIC_RELAXED)
#define GET(var) __atomic_load_n(&(var), __ATOMIC_RELAXED)

void
metrics_request(int status, double seconds)
{
	size_t		b = 0;

	if (status >= 100 && status < 600)
		ADD(by_status[status], 1);
	while (b < NLAT && seconds > latency_bounds[b])
		b++;
	ADD(lat_bucket[b], 1);
	ADD(lat_sum_us, (uint64_t) (seconds * 1e6));
	ADD(lat_count, 1);
}

void
metrics_batch(int rows, int created, int replayed, int refused)
{
	size_t		b = 0;

	while (b < NBATCH && rows > batch_bounds[b])
		b++;
	ADD(batch_bucket[b], 1);
	ADD(batch_rows, (uint64_t) rows);
	ADD(batch_count, 1);
	ADD(pay_created, (uint64_t) created);
	ADD(pay_replayed, (uint64_t) replayed);
	ADD(pay_refused, (uint64_t) refused);
}

void
metrics_db_error(void)
{
	ADD(db_errors, 1);
}

void
metrics_render(Buf *o, const MetricsGauges *g)
{
	uint64_t	cum = 0;

	buf_puts(o, "# HELP settle_gateway_requests_total HTTP requests answered, by status code.\n"
			 "# TYPE settle_gateway_requests_total counter\n");
	for (int s = 100; s < 600; s++)
	{
		uint64_t	v = GET(by_status[s]);

		if (v)
			buf_printf(o, "settle_gateway_requests_total{code=\"%d\"} %llu\n", s, (unsigned long long) v);
	}
	buf_puts(o, "# HELP settle_gateway_request_duration_seconds Time from the request's arrival to its answer.\n"
			 "# TYPE settle_gateway_request_duration_seconds histogram\n");
	for (size_t b = 0; b <= NLAT; b++)
	{
		cum += GET(lat_bucket[b]);
		if (b < NLAT)
			buf_printf(o, "settle_gateway_request_duration_seconds_bucket{le=\"%g\"} %llu\n",
					   latency_bounds[b], (unsigned long long) cum);
		else
			buf_printf(o, "settle_gateway_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
					   (unsigned long long) cum);
	}
	buf_printf(o, "settle_gateway_request_duration_seconds_sum %.6f\n", GET(lat_sum_us) / 1e6);
	buf_printf(o, "settle_gateway_request_duration_seconds_count %llu\n", (unsigned long long) GET(lat_count));

	cum = 0;
	buf_puts(o, "# HELP settle_gateway_batch_size Payments per settle_submit_bulk call.\n"
			 "# TYPE settle_gateway_batch_size histogram\n");
	for (size_t b = 0; b <= NBATCH; b++)
	{
		cum += GET(batch_bucket[b]);
		if (b < NBATCH)
			buf_printf(o, "settle_gateway_batch_size_bucket{le=\"%d\"} %llu\n", batch_bounds[b],
					   (unsigned long long) cum);
		else
			buf_printf(o, "settle_gateway_batch_size_bucket{le=\"+Inf\"} %llu\n", (unsigned long long) cum);
	}
	buf_printf(o, "settle_gateway_batch_size_sum %llu\n", (unsigned long long) GET(batch_rows));
	buf_printf(o, "settle_gateway_batch_size_count %llu\n", (unsigned long long) GET(batch_count));

	buf_puts(o, "# HELP settle_gateway_payments_total Payments answered by the database, by outcome.\n"
			 "# TYPE settle_gateway_payments_total counter\n");
	buf_printf(o, "settle_gateway_payments_total{outcome=\"created\"} %llu\n", (unsigned long long) GET(pay_created));
	buf_printf(o, "settle_gateway_payments_total{outcome=\"replayed\"} %llu\n", (unsigned long long) GET(pay_replayed));
	buf_printf(o, "settle_gateway_payments_total{outcome=\"refused\"} %llu\n", (unsigned long long) GET(pay_refused));
	buf_puts(o, "# HELP settle_gateway_db_errors_total Database calls that failed as a whole.\n"
			 "# TYPE settle_gateway_db_errors_total counter\n");
	buf_printf(o, "settle_gateway_db_errors_total %llu\n", (unsigned long long) GET(db_errors));

	buf_puts(o, "# HELP settle_gateway_pool_connections Database connections of the pool, by state.\n"
			 "# TYPE settle_gateway_pool_connections gauge\n");
	buf_printf(o, "settle_gateway_pool_connections{state=\"busy\"} %d\n", g->pool_busy);
	buf_printf(o, "settle_gateway_pool_connections{state=\"connected\"} %d\n", g->pool_connected);
	buf_printf(o, "settle_gateway_pool_connections{state=\"configured\"} %d\n", g->pool_size);
	buf_puts(o, "# HELP settle_gateway_queue_payments Payments waiting for a database connection.\n"
			 "# TYPE settle_gateway_queue_payments gauge\n");
	buf_printf(o, "settle_gateway_queue_payments %d\n", g->queued_rows);
	buf_puts(o, "# HELP settle_gateway_http_connections Open HTTP connections.\n"
			 "# TYPE settle_gateway_http_connections gauge\n");
	buf_printf(o, "settle_gateway_http_connections %u\n", g->http_connections);
}
