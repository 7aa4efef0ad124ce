/*
 * main.c -- settle-gateway: start the pool and the HTTP server, wait for
 * SIGTERM or SIGINT, then stop accepting, answer what is queued, and close.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <gnutls/gnutls.h>

#include "gateway.h"

extern void http_close(void);

int
main(int argc, char **argv)
{
	sigset_t	set;
	int			sig;
	int			rc = config_parse(argc, argv);

	if (rc != 0)
		return rc > 0 ? 0 : 2;
	signal(SIGPIPE, SIG_IGN);
	/* the signals go to sigwait below, not to the server's threads */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	gnutls_global_init();
	/* without its schemas the gateway still serves JSON; POST /api/v1/iso20022 answers 503 */
	iso_init(gw_config.iso_xsd_dir);
	auth_init();
	if (pool_start() != 0)
	{
		fprintf(stderr, "settle-gateway: cannot start the database pool\n");
		return 1;
	}
	health_start();
	if (http_start() != 0)
	{
		health_stop();
		pool_stop();
		return 1;
	}
	if (iso_notify_start() != 0)
		fprintf(stderr, "settle-gateway: cannot start the ISO 20022 notification thread: "
				"GET /api/v1/iso20022/notifications answers 503\n");
	fprintf(stderr, "settle-gateway %s: listening on %s://%s:%d, %d database connections, "
			"batches of up to %d payments\n", GW_VERSION, gw_config.tls_cert ? "https" : "http",
			gw_config.listen_host, gw_config.port, gw_config.pool_size, gw_config.batch_max);
	sigwait(&set, &sig);
	fprintf(stderr, "settle-gateway: signal %d, shutting down\n", sig);
	http_stop();
	iso_notify_stop();
	health_stop();
	pool_stop();
	http_close();
	gnutls_global_deinit();
	return 0;
}
