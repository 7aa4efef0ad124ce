/*
 * http_load: an open-loop HTTP load generator for settle-gateway
 * (test/bench/production.sh; not part of the extension).
 *
 * Request i is scheduled at start + i / rate, whether or not earlier ones
 * were answered: a request that finds no free connection waits in a queue,
 * and its latency is still counted from its scheduled time, so a stall of the
 * server shows as latency instead of a lower offered load (no coordinated
 * omission).  One thread, epoll, keep-alive connections with one request in
 * flight each; free connections are taken in turn, so the load is spread over
 * all of them.  Every request is one payment with a unique transaction_id and
 * idempotency key, from a participant to another, with the payer's token.
 *
 * All connections are opened (a few hundred connects at a time) before the
 * load starts; with -m PID the resident memory of that process (the gateway)
 * is printed before and after, for the memory per idle connection.
 *
 * Usage: http_load -p PORT -r RATE -d SECONDS -c CONNECTIONS -P PARTICIPANTS
 *                  -x PREFIX -o OUT [-C USD,EUR,GBP] [-f FX_SHARE] [-s SEED]
 *                  [-m PID] [-D DRAIN_SECONDS] [-I IDLE_SECONDS]
 * PARTICIPANTS: lines "participant token"; a participant's account in
 * currency C is participant_C.  OUT: one line per request, "scheduled_us
 * answered_us status transaction_id" (epoch microseconds; status 0 and
 * answered 0: no answer before the end of the drain).  A last line on
 * stdout: RESULT key=value ...
 *
 * Build: cc -O2 -o http_load http_load.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAXCUR 8
#define RBUF 8192

typedef struct
{
	char	   *name;
	char	   *token;
} participant;

typedef struct
{
	int			fd;
	int			state;			/* 0 closed, 1 connecting, 2 free, 3 busy */
	long		req;			/* request in flight, or -1 */
	size_t		sent;
	size_t		len;
	char		out[2048];
	char		in[RBUF];
	size_t		inlen;
} conn;

static participant *parts;
static int	nparts;
static char *curs[MAXCUR];
static int	ncur;
static double fx_share = 0.2;
static const char *prefix = "h";
static int	port;
static double rate;
static double duration;
static int	nconn;

static conn *conns;
static int *freeq;				/* ring of free connection indexes */
static int	free_head,
			free_n;
static long *waitq;				/* requests scheduled but not yet sent */
static long wait_head,
			wait_n,
			wait_cap;
static int64_t *sched_us,
		   *ack_us;
static short *status;
static long total;
static int	epfd;
static long reconnects,
			conn_errors,
			nbusy;

static int64_t
now_us(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static uint64_t rng_state = 88172645463325252ULL;
static uint64_t
rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static void
die(const char *m)
{
	perror(m);
	exit(1);
}

static void
free_push(int i)
{
	freeq[(free_head + free_n) % nconn] = i;
	free_n++;
}

static int
free_pop(void)
{
	int			i = freeq[free_head];

	free_head = (free_head + 1) % nconn;
	free_n--;
	return i;
}

static void
wait_push(long r)
{
	if (wait_n == wait_cap)
	{
		long	   *n = malloc(sizeof(long) * wait_cap * 2);

		for (long k = 0; k < wait_n; k++)
			n[k] = waitq[(wait_head + k) % wait_cap];
		free(waitq);
		waitq = n;
		wait_head = 0;
		wait_cap *= 2;
	}
	waitq[(wait_head + wait_n) % wait_cap] = r;
	wait_n++;
}

static long
wait_pop(void)
{
	long		r = waitq[wait_head];

	wait_head = (wait_head + 1) % wait_cap;
	wait_n--;
	return r;
}

static void
open_conn(int i)
{
	conn	   *c = &conns[i];
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
	struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP, .data.u32 = i};
	int			one = 1;

	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (c->fd < 0)
		die("socket");
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(c->fd, (struct sockaddr *) &a, sizeof(a)) < 0 && errno != EINPROGRESS)
		die("connect");
	c->state = 1;
	c->req = -1;
	c->inlen = 0;
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0)
		die("epoll_ctl");
}

static void
set_events(conn *c, int i, uint32_t events)
{
	struct epoll_event ev = {.events = events | EPOLLRDHUP, .data.u32 = i};

	epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

static void
try_send(int i)
{
	conn	   *c = &conns[i];

	while (c->sent < c->len)
	{
		ssize_t		n = write(c->fd, c->out + c->sent, c->len - c->sent);

		if (n < 0)
		{
			if (errno == EAGAIN)
			{
				set_events(c, i, EPOLLIN | EPOLLOUT);
				return;
			}
			return;				/* the read side sees the close */
		}
		c->sent += n;
	}
	set_events(c, i, EPOLLIN);
}

static void
start_request(int i, long r)
{
	conn	   *c = &conns[i];
	int			a = rnd() % nparts,
				b = rnd() % (nparts - 1),
				sc = rnd() % ncur,
				dc = sc;
	long		cents = 100 + rnd() % 9999901;
	char		body[1024];
	int			blen;

	if (b >= a)
		b++;
	if (ncur > 1 && (rnd() % 1000000) < fx_share * 1000000)
		dc = (sc + 1 + rnd() % (ncur - 1)) % ncur;
	blen = snprintf(body, sizeof(body),
					"{\"transaction_id\":\"%s_%ld\",\"amount\":\"%ld.%02ld\","
					"\"source_currency\":\"%s\",\"destination_currency\":\"%s\","
					"\"source_account\":\"%s_%s\",\"destination_account\":\"%s_%s\","
					"\"counterparty_id\":\"%s\",\"idempotency_key\":\"%s_k_%ld\"}",
					prefix, r, cents / 100, cents % 100, curs[sc], curs[dc],
					parts[a].name, curs[sc], parts[b].name, curs[dc], parts[b].name, prefix, r);
	c->len = snprintf(c->out, sizeof(c->out),
					  "POST /api/v1/transactions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
					  "Authorization: Bearer %s\r\nContent-Type: application/json\r\n"
					  "Content-Length: %d\r\n\r\n%s", parts[a].token, blen, body);
	c->sent = 0;
	c->req = r;
	c->state = 3;
	nbusy++;
	try_send(i);
}

static void
dispatch(int i)
{
	if (wait_n > 0)
		start_request(i, wait_pop());
	else
	{
		conns[i].state = 2;
		free_push(i);
	}
}

/*
 * The connection is gone.  A free one stays in the ring of free connections
 * and is opened again when its turn comes (take_free); a busy one is opened
 * again at once, and dispatches itself when connected.
 */
static void
lost(int i)
{
	conn	   *c = &conns[i];
	int			was = c->state;

	epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	if (was == 3)
		nbusy--;
	if (was == 3 && c->req >= 0)
	{
		/*
		 * Not answered: the payment may or may not exist.  It is counted as
		 * unanswered (status 0), never retried under another id.
		 */
		status[c->req] = 0;
		ack_us[c->req] = 0;
		conn_errors++;
	}
	c->state = 0;
	c->req = -1;
	if (was != 2)
	{
		reconnects++;
		open_conn(i);
	}
}

/* a free, connected connection, or -1 */
static int
take_free(void)
{
	while (free_n > 0)
	{
		int			i = free_pop();

		if (conns[i].state == 2)
			return i;
		reconnects++;
		open_conn(i);
	}
	return -1;
}

/* a complete response in c->in? returns its length, 0 if not yet */
static size_t
response_len(conn *c, int *st)
{
	char	   *hend,
			   *cl;
	long		clen = 0;

	if (c->inlen < 12)
		return 0;
	c->in[c->inlen] = '\0';
	hend = strstr(c->in, "\r\n\r\n");
	if (!hend)
		return 0;
	*st = atoi(c->in + 9);
	cl = strcasestr(c->in, "\r\nContent-Length:");
	if (cl && cl < hend)
		clen = atol(cl + 17);
	if ((size_t) (hend + 4 - c->in) + clen > c->inlen)
		return 0;
	return (hend + 4 - c->in) + clen;
}

static void
on_event(int i, uint32_t ev, int64_t real_now)
{
	conn	   *c = &conns[i];

	if (c->state == 1)
	{
		int			err = 0;
		socklen_t	l = sizeof(err);

		getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
		if (err != 0 || (ev & (EPOLLERR | EPOLLHUP)))
		{
			lost(i);
			return;
		}
		c->state = 2;
		set_events(c, i, EPOLLIN);
		dispatch(i);
		return;
	}
	if (ev & EPOLLOUT)
		try_send(i);
	if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
	{
		for (;;)
		{
			ssize_t		n = read(c->fd, c->in + c->inlen, RBUF - 1 - c->inlen);
			size_t		rl;
			int			st;

			if (n == 0 || (n < 0 && errno != EAGAIN))
			{
				lost(i);
				return;
			}
			if (n < 0)
				break;
			c->inlen += n;
			while ((rl = response_len(c, &st)) > 0)
			{
				if (c->req >= 0)
				{
					status[c->req] = st;
					ack_us[c->req] = real_now;
					c->req = -1;
					nbusy--;
				}
				memmove(c->in, c->in + rl, c->inlen - rl);
				c->inlen -= rl;
				dispatch(i);
			}
			if (c->inlen >= RBUF - 1)
			{
				lost(i);
				return;
			}
		}
	}
}

static long
rss_kb(int pid)
{
	char		path[64],
				line[256];
	long		kb = -1;
	FILE	   *f;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	if (!(f = fopen(path, "r")))
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, "VmRSS:", 6) == 0)
			kb = atol(line + 6);
	fclose(f);
	return kb;
}

static int
cmp64(const void *a, const void *b)
{
	int64_t		x = *(const int64_t *) a,
				y = *(const int64_t *) b;

	return x < y ? -1 : x > y;
}

int
main(int argc, char **argv)
{
	const char *pfile = NULL,
			   *out = NULL;
	char	   *curlist = strdup("USD,EUR,GBP");
	int			opt,
				watch = 0;
	double		drain = 30,
				idle = 0;
	struct rlimit rl;
	FILE	   *f;
	char		name[256],
				token[256];
	struct epoll_event evs[512];
	int64_t		t0,
				t0_real,
				end_us,
				rss0 = -1,
				rss1 = -1;
	long		next = 0,
				connected,
				open_started,
				max_wait = 0;

	while ((opt = getopt(argc, argv, "p:r:d:c:P:x:o:C:f:s:m:D:I:")) != -1)
	{
		switch (opt)
		{
			case 'p': port = atoi(optarg); break;
			case 'r': rate = atof(optarg); break;
			case 'd': duration = atof(optarg); break;
			case 'c': nconn = atoi(optarg); break;
			case 'P': pfile = optarg; break;
			case 'x': prefix = optarg; break;
			case 'o': out = optarg; break;
			case 'C': curlist = strdup(optarg); break;
			case 'f': fx_share = atof(optarg); break;
			case 's': rng_state ^= strtoull(optarg, NULL, 10) * 0x9E3779B97F4A7C15ULL; break;
			case 'm': watch = atoi(optarg); break;
			case 'D': drain = atof(optarg); break;
			case 'I': idle = atof(optarg); break;
			default:
				fprintf(stderr, "usage: see the comment at the top of http_load.c\n");
				return 2;
		}
	}
	if (!port || rate <= 0 || duration <= 0 || nconn < 1 || !pfile || !out)
	{
		fprintf(stderr, "http_load: -p, -r, -d, -c, -P and -o are required\n");
		return 2;
	}
	for (char *t = strtok(curlist, ","); t && ncur < MAXCUR; t = strtok(NULL, ","))
		curs[ncur++] = t;
	if (!(f = fopen(pfile, "r")))
		die(pfile);
	while (fscanf(f, "%255s %255s", name, token) == 2)
	{
		parts = realloc(parts, sizeof(participant) * (nparts + 1));
		parts[nparts].name = strdup(name);
		parts[nparts].token = strdup(token);
		nparts++;
	}
	fclose(f);
	if (nparts < 2)
	{
		fprintf(stderr, "http_load: at least two participants\n");
		return 2;
	}

	/* a descriptor per connection, and some */
	getrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_cur < (rlim_t) nconn + 64)
	{
		rl.rlim_cur = rl.rlim_max < (rlim_t) nconn + 64 ? rl.rlim_max : (rlim_t) nconn + 64;
		setrlimit(RLIMIT_NOFILE, &rl);
		if (rl.rlim_cur < (rlim_t) nconn + 64)
		{
			fprintf(stderr, "http_load: %d connections need more descriptors than the limit (%ld)\n",
					nconn, (long) rl.rlim_cur);
			return 2;
		}
	}

	total = (long) (rate * duration + 0.5);
	sched_us = calloc(total, sizeof(int64_t));
	ack_us = calloc(total, sizeof(int64_t));
	status = calloc(total, sizeof(short));
	conns = calloc(nconn, sizeof(conn));
	freeq = calloc(nconn, sizeof(int));
	wait_cap = 1024;
	waitq = malloc(sizeof(long) * wait_cap);
	if (!sched_us || !ack_us || !status || !conns || !freeq || !waitq)
		die("calloc");
	if ((epfd = epoll_create1(0)) < 0)
		die("epoll_create1");

	/* open every connection first, at most 256 connects in progress */
	if (watch)
		rss0 = rss_kb(watch);
	connected = 0;
	open_started = 0;
	{
		int64_t		deadline = now_us(CLOCK_MONOTONIC) + 60 * 1000000LL;

		while (free_n < nconn && now_us(CLOCK_MONOTONIC) < deadline)
		{
			int			n;

			while (open_started < nconn && open_started - free_n < 256)
				open_conn(open_started++);
			n = epoll_wait(epfd, evs, 512, 10);
			for (int k = 0; k < n; k++)
				on_event(evs[k].data.u32, evs[k].events, 0);
		}
		connected = free_n;
		if (connected < nconn)
		{
			fprintf(stderr, "http_load: only %ld of %d connections opened in 60 s\n", connected, nconn);
			return 1;
		}
	}
	if (watch)
	{
		struct timespec one = {1, 0};

		nanosleep(&one, NULL);
		rss1 = rss_kb(watch);
	}
	/* hold the connections idle for a while (the gateway's memory is read above) */
	if (idle > 0)
	{
		int64_t		until = now_us(CLOCK_MONOTONIC) + (int64_t) (idle * 1e6);

		while (now_us(CLOCK_MONOTONIC) < until)
		{
			int			n = epoll_wait(epfd, evs, 512, 50);

			for (int k = 0; k < n; k++)
				on_event(evs[k].data.u32, evs[k].events, 0);
		}
	}

	/* the load: request i at t0 + i / rate */
	reconnects = 0;
	t0 = now_us(CLOCK_MONOTONIC);
	t0_real = now_us(CLOCK_REALTIME);
	end_us = t0 + (int64_t) (duration * 1e6) + (int64_t) (drain * 1e6);
	for (;;)
	{
		int64_t		mono = now_us(CLOCK_MONOTONIC),
					real = t0_real + (mono - t0);
		int			n,
					timeout;
		long		answered_all;

		while (next < total && t0 + (int64_t) (next * 1e6 / rate) <= mono)
		{
			sched_us[next] = t0_real + (int64_t) (next * 1e6 / rate);
			int			i = take_free();

			if (i >= 0)
				start_request(i, next);
			else
				wait_push(next);
			next++;
		}
		if (wait_n > max_wait)
			max_wait = wait_n;
		if (next >= total)
		{
			answered_all = (wait_n == 0 && nbusy == 0);
			if (answered_all || mono >= end_us)
				break;
		}
		if (next < total)
		{
			int64_t		due = t0 + (int64_t) (next * 1e6 / rate) - mono;

			timeout = due <= 0 ? 0 : (int) ((due + 999) / 1000);
		}
		else
			timeout = 10;
		n = epoll_wait(epfd, evs, 512, timeout);
		real = t0_real + (now_us(CLOCK_MONOTONIC) - t0);
		for (int k = 0; k < n; k++)
			on_event(evs[k].data.u32, evs[k].events, real);
	}

	/* the per-request results and a summary */
	{
		long		ok = 0,
					replayed = 0,
					other = 0,
					none = 0,
					m = 0;
		int64_t    *lat = malloc(sizeof(int64_t) * (total + 1));
		struct rusage ru;
		FILE	   *o = fopen(out, "w");

		if (!o || !lat)
			die(out);
		for (long r = 0; r < total; r++)
		{
			if (ack_us[r] == 0)
				status[r] = 0;
			fprintf(o, "%lld %lld %d %s_%ld\n", (long long) sched_us[r], (long long) ack_us[r],
					status[r], prefix, r);
			if (status[r] == 201)
				ok++;
			else if (status[r] == 200)
				replayed++;
			else if (status[r] == 0)
				none++;
			else
				other++;
			if (status[r] == 201 || status[r] == 200)
				lat[m++] = ack_us[r] - sched_us[r];
		}
		fclose(o);
		qsort(lat, m, sizeof(int64_t), cmp64);
		getrusage(RUSAGE_SELF, &ru);
#define PCT(p) (m ? lat[(long) ((p) * (m - 1))] / 1000.0 : 0)
		printf("RESULT offered=%ld created=%ld replayed=%ld other=%ld unanswered=%ld "
			   "ack_p50_ms=%.2f ack_p95_ms=%.2f ack_p99_ms=%.2f ack_max_ms=%.2f max_waiting=%ld "
			   "reconnects=%ld lost_in_flight=%ld connections=%d rss_before_kb=%lld rss_after_kb=%lld "
			   "cpu_s=%.3f\n",
			   total, ok, replayed, other, none, PCT(0.50), PCT(0.95), PCT(0.99),
			   m ? lat[m - 1] / 1000.0 : 0, max_wait, reconnects, conn_errors, nconn,
			   (long long) rss0, (long long) rss1,
			   ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
	}
	return 0;
}
