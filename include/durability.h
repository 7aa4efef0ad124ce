/*
 * durability.h -- nothing is reported before it is durable.
 *
 * An answer that reports a payment (a replay, a status, a refusal that names
 * an existing payment) or hands a batch to the rail must not be given while
 * what it reports could still be lost in a fail-over.  A transaction that
 * only reads has no commit to wait for, so these paths wait themselves until
 * the synchronous standby has confirmed the WAL they could have read.
 */
#ifndef SETTLE_DURABILITY_H
#define SETTLE_DURABILITY_H

/*
 * Wait until everything this backend can see is confirmed by the
 * synchronous standby (as a commit would wait); raise SE140 if the wait is
 * cancelled, SE170 at once on an orphan (no synchronous standby streaming,
 * src/sync_standby.c).  Returns at once without synchronous standbys, on a standby,
 * or when the session turned synchronous_commit down to local or off.
 */
extern void settle_wait_durable(const char *what);

#endif							/* SETTLE_DURABILITY_H */
