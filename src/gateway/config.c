/*
 * config.c -- options of settle-gateway (docs/GATEWAY.md, "Configuration").
 * Every option may also come from the environment: --pool-size from
 * SETTLE_GATEWAY_POOL_SIZE, and so on; the command line wins.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway.h"

GatewayConfig gw_config = {
	.listen_host = "127.0.0.1",
	.port = 8080,
	.conninfo = "dbname=postgres",
	.pool_size = 4,
	.batch_max = 256,
	.batch_wait_us = 1000,
	.queue_max = 20000,
	.max_body = 1024 * 1024,
	.max_array = 1000,
	.max_connections = 1024,
	.per_ip_connections = 0,
	.connection_timeout = 15,
	.connection_memory = 32 * 1024,
	.http_threads = 2,
	.auth_ttl = 5,
	.retry_after = 1,
	.health_interval_ms = 1000,
	.call_timeout_ms = 5000,
	.tcp_timeout_ms = 3000,
	.iso_xsd_dir = GW_XSD_DIR,
};

typedef enum
{
	T_STR,
	T_INT,
	T_SIZE
} OptType;

typedef struct Opt
{
	const char *name;
	OptType		type;
	void	   *target;
	long		min;
	long		max;
	const char *help;
} Opt;

static const Opt opts[] = {
	{"listen", T_STR, &gw_config.listen_host, 0, 0, "IPv4 address to listen on (127.0.0.1)"},
	{"port", T_INT, &gw_config.port, 1, 65535, "TCP port (8080)"},
	{"db", T_STR, &gw_config.conninfo, 0, 0, "libpq connection string; list every host of the cluster"},
	{"tls-cert", T_STR, &gw_config.tls_cert, 0, 0, "PEM certificate (chain): serve HTTPS"},
	{"tls-key", T_STR, &gw_config.tls_key, 0, 0, "PEM private key of the certificate"},
	{"pool-size", T_INT, &gw_config.pool_size, 1, 256, "database connections that submit (4)"},
	{"batch-max", T_INT, &gw_config.batch_max, 1, 100000, "payments per settle_submit_bulk call (256)"},
	{"batch-wait-us", T_INT, &gw_config.batch_wait_us, 0, 1000000, "microseconds a batch waits for more payments while another call is in flight (1000)"},
	{"queue-max", T_INT, &gw_config.queue_max, 1, 10000000, "payments waiting for a connection before 429 (20000)"},
	{"max-body", T_SIZE, &gw_config.max_body, 256, 64L * 1024 * 1024, "bytes of a request body before 413 (1048576)"},
	{"max-array", T_INT, &gw_config.max_array, 1, 100000, "payments in one request (1000)"},
	{"max-connections", T_INT, &gw_config.max_connections, 1, 100000, "open HTTP connections (1024)"},
	{"per-ip-connections", T_INT, &gw_config.per_ip_connections, 0, 100000, "open connections per client address, 0 = no limit (0)"},
	{"connection-timeout", T_INT, &gw_config.connection_timeout, 1, 3600, "seconds a connection may stay silent (15)"},
	{"connection-memory", T_SIZE, &gw_config.connection_memory, 4096, 1024 * 1024, "bytes per connection for the request line, headers and buffers (32768)"},
	{"http-threads", T_INT, &gw_config.http_threads, 1, 64, "HTTP event-loop threads (2)"},
	{"auth-ttl", T_INT, &gw_config.auth_ttl, 0, 3600, "seconds a token look-up is cached (5)"},
	{"retry-after", T_INT, &gw_config.retry_after, 1, 3600, "Retry-After seconds in 429 and 503 answers (1)"},
	{"health-interval-ms", T_INT, &gw_config.health_interval_ms, 50, 60000, "milliseconds between health checks, each on the health thread's own connection (1000)"},
	{"call-timeout-ms", T_INT, &gw_config.call_timeout_ms, 100, 3600000, "milliseconds a database call may take before its connection is dropped and the request answered 503, outcome unknown (5000)"},
	{"tcp-timeout-ms", T_INT, &gw_config.tcp_timeout_ms, 0, 600000, "milliseconds after which a database peer that acknowledges nothing (TCP user time-out, keepalives) counts as gone; 0 = the kernel's defaults (3000)"},
	{"iso20022-xsd-dir", T_STR, &gw_config.iso_xsd_dir, 0, 0, "directory of the ISO 20022 schemas (" GW_XSD_DIR ")"},
};
#define NOPTS (sizeof(opts) / sizeof(opts[0]))

static void
usage(FILE *f)
{
	fprintf(f, "settle-gateway %s: the REST gateway of settle (docs/GATEWAY.md)\n\n"
			"usage: settle-gateway [--option value]...\n\n", GW_VERSION);
	for (size_t i = 0; i < NOPTS; i++)
		fprintf(f, "  --%-20s %s\n", opts[i].name, opts[i].help);
	fprintf(f, "  --%-20s %s\n  --%-20s %s\n", "help", "this text", "version", "the version");
	fprintf(f, "\nEach option may be set in the environment as SETTLE_GATEWAY_<NAME>\n"
			"(upper case, '-' as '_'), e.g. SETTLE_GATEWAY_DB.\n");
}

static int
set_opt(const Opt *o, const char *value, const char *from)
{
	char	   *end;
	long		v;

	if (o->type == T_STR)
	{
		*(char **) o->target = strdup(value);
		return 0;
	}
	errno = 0;
	v = strtol(value, &end, 10);
	if (errno || end == value || *end || v < o->min || v > o->max)
	{
		fprintf(stderr, "settle-gateway: %s %s: \"%s\" is not a whole number from %ld to %ld\n",
				from, o->name, value, o->min, o->max);
		return -1;
	}
	if (o->type == T_INT)
		*(int *) o->target = (int) v;
	else
		*(size_t *) o->target = (size_t) v;
	return 0;
}

int
config_parse(int argc, char **argv)
{
	struct option longopts[NOPTS + 3];

	for (size_t i = 0; i < NOPTS; i++)
	{
		char		env[80] = "SETTLE_GATEWAY_";
		size_t		k = strlen(env);
		const char *v;

		for (const char *p = opts[i].name; *p && k < sizeof(env) - 1; p++)
			env[k++] = *p == '-' ? '_' : (char) toupper((unsigned char) *p);
		env[k] = '\0';
		if ((v = getenv(env)) != NULL && set_opt(&opts[i], v, env) != 0)
			return -1;
		longopts[i] = (struct option) {opts[i].name, required_argument, NULL, (int) i + 1000};
	}
	longopts[NOPTS] = (struct option) {"help", no_argument, NULL, 'h'};
	longopts[NOPTS + 1] = (struct option) {"version", no_argument, NULL, 'V'};
	longopts[NOPTS + 2] = (struct option) {NULL, 0, NULL, 0};

	for (;;)
	{
		int			c = getopt_long(argc, argv, "hV", longopts, NULL);

		if (c == -1)
			break;
		if (c == 'h')
		{
			usage(stdout);
			return 1;
		}
		if (c == 'V')
		{
			printf("settle-gateway %s\n", GW_VERSION);
			return 1;
		}
		if (c >= 1000 && c < 1000 + (int) NOPTS)
		{
			if (set_opt(&opts[c - 1000], optarg, "--") != 0)
				return -1;
			continue;
		}
		usage(stderr);
		return -1;
	}
	if (optind < argc)
	{
		fprintf(stderr, "settle-gateway: unexpected argument \"%s\"\n", argv[optind]);
		return -1;
	}
	if ((gw_config.tls_cert == NULL) != (gw_config.tls_key == NULL))
	{
		fprintf(stderr, "settle-gateway: --tls-cert and --tls-key go together\n");
		return -1;
	}
	return 0;
}
