#!/usr/bin/env python3
"""Load client and checks for the settle HA harness.

  client.py load  --hosts H:P,H:P,H:P --prefix P --count N --max-seconds S
                  --acked FILE [--workers W] [--pause SECONDS] [--stop-file F]
      Submits payments P-1 .. P-N with idempotency keys through whichever node is the
      leader (libpq multi-host, target_session_attrs=read-write). Every acknowledged submit
      is appended to FILE as one JSON line {t, key, payment_id, replay, port, attempts}.
      A submit whose connection fails, or that is refused by a node that is no longer the
      leader, is not acknowledged: the client reconnects and retries it with the same key
      and the same content until it is acknowledged. It stops issuing new payments when
      --stop-file exists or --count is reached, and gives up after --max-seconds (exit 1).
      With --after-stop-hosts, once the stop file exists it retries its unacknowledged
      payment through those hosts instead (a client that was cut off with one node).

  client.py check --hosts ... --acked FILE [FILE...] --prefixes P[,P...]
      On the current leader: every acknowledged payment present exactly once with the
      payment_id it was acknowledged with, no payment settled twice, ledger invariants,
      settle_verify() when it exists. Prints one line per check ("ok"/"FAIL"), then
      "acknowledged N, found N, duplicates 0"; exits 1 on any failure.
"""
import argparse
import json
import os
import select
import sys
import threading
import time

import psycopg2

PARTICIPANTS = ["ha_a", "ha_b", "ha_c"]


def dsn(hosts, read_write=True, timeout=2, rotate=0):
    hs = [h.rsplit(":", 1) for h in hosts.split(",")]
    # an asynchronous connection tries the hosts in order with no connect_timeout: start
    # from a different one on each attempt, so that a frozen node does not hold every attempt
    rotate %= len(hs)
    hs = hs[rotate:] + hs[:rotate]
    parts = [
        "host=" + ",".join(h for h, _ in hs),
        "port=" + ",".join(p for _, p in hs),
        "user=postgres dbname=postgres connect_timeout=%d" % timeout,
        "application_name=ha_client",
        # a dead peer is noticed by the kernel on loopback at once; elsewhere within ~5 s
        "keepalives=1 keepalives_idle=2 keepalives_interval=1 keepalives_count=3",
    ]
    if read_write:
        parts.append("target_session_attrs=read-write")
    return " ".join(parts)


def payment(prefix, i):
    """Payment number i of a run: deterministic, so a retry has the same content."""
    s = i % 3
    src = PARTICIPANTS[s]
    dst = PARTICIPANTS[(s + 1) % 3]
    amount = "%d.%02d" % (1 + i % 50, i % 100)
    return ("%s-t%d" % (prefix, i), amount, "USD", "USD", src + "_usd", dst + "_usd", dst,
            "%s-%d" % (prefix, i))


class Loader:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.out = open(args.acked, "a")
        self.deadline = time.time() + args.max_seconds
        self.failed = False
        self.errors = 0
        self.hosts = args.hosts

    def record(self, row):
        with self.lock:
            self.out.write(json.dumps(row) + "\n")
            self.out.flush()

    def wait(self, conn, seconds):
        """Drive an asynchronous connection; a server that does not answer within `seconds`
        (a frozen or partitioned leader: the kernel still acknowledges, nobody answers)
        counts as a failed attempt, like a refused connection."""
        end = time.time() + seconds
        while True:
            state = conn.poll()
            if state == psycopg2.extensions.POLL_OK:
                return
            left = end - time.time()
            if left <= 0:
                raise psycopg2.OperationalError("no answer within %.1f s" % seconds)
            if state == psycopg2.extensions.POLL_READ:
                select.select([conn.fileno()], [], [], min(left, 0.5))
            elif state == psycopg2.extensions.POLL_WRITE:
                select.select([], [conn.fileno()], [], min(left, 0.5))

    def switch_hosts(self):
        """--after-stop-hosts: True when the hosts have just been switched."""
        a = self.args
        if (a.after_stop_hosts and self.hosts != a.after_stop_hosts and a.stop_file
                and os.path.exists(a.stop_file)):
            self.hosts = a.after_stop_hosts
            return True
        return False

    def connect(self):
        """A connection to whichever node is the leader now: one asynchronous connection to
        each host at once (each with target_session_attrs=read-write), the first one ready
        wins. libpq's multi-host connection tries the hosts one after another, so a node that
        accepts and never answers (frozen, cut off) held every attempt that reached it first
        for the whole connect timeout."""
        P = psycopg2.extensions
        while time.time() < self.deadline:
            self.switch_hosts()
            pending = []
            for h in self.hosts.split(","):
                try:
                    pending.append(psycopg2.connect(dsn(h), async_=1))
                except psycopg2.Error:
                    pass
            won = None
            end = time.time() + self.args.connect_timeout
            while pending and won is None and time.time() < end:
                rd, wr = [], []
                for c in list(pending):
                    try:
                        state = c.poll()
                    except psycopg2.Error:
                        pending.remove(c)
                        c.close()
                        continue
                    if state == P.POLL_OK:
                        won = c
                        pending.remove(c)
                        break
                    (rd if state == P.POLL_READ else wr).append(c)
                if won is None and (rd or wr):
                    select.select(rd, wr, [], max(0, min(0.1, end - time.time())))
            for c in pending:
                c.close()
            if won is not None:
                return won
            time.sleep(self.args.reconnect_pause)
        return None

    def worker(self, w):
        a = self.args
        conn = None
        for i in range(1 + w, a.count + 1, a.workers):
            if a.stop_file and os.path.exists(a.stop_file):
                break
            p = payment(a.prefix, i)
            attempts = 0
            while True:
                if time.time() >= self.deadline:
                    print("client: gave up on %s after %d attempts" % (p[7], attempts), file=sys.stderr)
                    self.failed = True
                    return
                if self.switch_hosts():
                    if conn is not None:
                        conn.close()
                        conn = None
                if conn is None:
                    conn = self.connect()
                    if conn is None:
                        continue
                attempts += 1
                try:
                    del conn.notices[:]
                    cur = conn.cursor()
                    # asynchronous connections are in autocommit: the statement's commit is the ack
                    cur.execute("SELECT payment_id, replay FROM settle_submit(%s, %s, %s, %s, %s, %s, %s, %s)", p)
                    self.wait(conn, self.args.timeout)
                    row = cur.fetchone()
                    # A commit whose wait for the synchronous standby was cancelled is local
                    # only: PostgreSQL says so with a WARNING, and it is not an acknowledgement.
                    if any("synchronous replication" in n for n in conn.notices):
                        raise psycopg2.OperationalError("sync replication wait cancelled")
                    self.record({"t": time.time(), "key": p[7], "payment_id": row[0], "replay": row[1],
                                 "port": conn.info.port, "attempts": attempts})
                    break
                except psycopg2.Error as e:
                    code = getattr(e, "pgcode", None)
                    if code and code.startswith("SE"):
                        # a refusal by settle itself is a bug here: same key, same content
                        print("client: %s refused: %s %s" % (p[7], code, e), file=sys.stderr)
                        self.failed = True
                        return
                    self.errors += 1
                    try:
                        conn.close()
                    except psycopg2.Error:
                        pass
                    conn = None
                    time.sleep(a.reconnect_pause)
            if a.pause:
                time.sleep(a.pause)
        if conn is not None:
            conn.close()

    def run(self):
        threads = [threading.Thread(target=self.worker, args=(w,)) for w in range(self.args.workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.out.close()
        print("client: done, %d failed attempts retried" % self.errors)
        return 1 if self.failed else 0


def leader_conn(hosts, seconds=30):
    deadline = time.time() + seconds
    while True:
        try:
            conn = psycopg2.connect(dsn(hosts))
            conn.autocommit = True
            return conn
        except psycopg2.Error:
            if time.time() > deadline:
                raise
            time.sleep(0.2)


def check(args):
    acked = {}
    for f in args.acked:
        with open(f) as fh:
            for line in fh:
                r = json.loads(line)
                if r["key"] in acked and acked[r["key"]] != r["payment_id"]:
                    print("FAIL key %s acknowledged twice with different payments" % r["key"])
                    return 1
                acked[r["key"]] = r["payment_id"]
    conn = leader_conn(args.hosts)
    cur = conn.cursor()
    failures = 0

    def report(good, name, detail=""):
        nonlocal failures
        print(("ok   " if good else "FAIL ") + name + (": " + str(detail) if detail != "" else ""))
        if not good:
            failures += 1

    def one(sql, params=None):
        cur.execute(sql, params)
        return cur.fetchone()[0]

    keys = list(acked)
    cur.execute("SELECT idempotency_key, payment_id FROM settle.payment WHERE idempotency_key = ANY(%s)", (keys,))
    rows = cur.fetchall()
    found = {}
    dup = 0
    for k, pid in rows:
        if k in found:
            dup += 1
        found[k] = pid
    mismatched = [k for k in keys if k in found and found[k] != acked[k]]
    missing = [k for k in keys if k not in found]
    likes = [p + "-%" for p in args.prefixes.split(",")]
    dup_txn = one("SELECT count(*) FROM (SELECT transaction_id FROM settle.payment WHERE idempotency_key LIKE ANY(%s) "
                  "GROUP BY 1 HAVING count(*) > 1) x", (likes,))
    ours = one("SELECT count(*) FROM settle.payment WHERE idempotency_key LIKE ANY(%s)", (likes,))
    dup += dup_txn
    report(not missing, "every acknowledged payment is on the leader", "missing %d %s" % (len(missing), missing[:5]) if missing else "")
    report(not mismatched, "each with the payment_id it was acknowledged with", mismatched[:5] if mismatched else "")
    report(dup == 0, "no payment twice (idempotency key or transaction id)", dup if dup else "")
    report(ours == len(keys), "no payment that was never acknowledged", "" if ours == len(keys) else "%d rows for %d keys" % (ours, len(keys)))

    twice = one("SELECT count(*) FROM (SELECT entity_id FROM settle.event WHERE entity = 'payment' AND to_status = 'settled' "
                "GROUP BY 1 HAVING count(*) > 1) x")
    report(twice == 0, "no payment settled twice (events)", twice if twice else "")
    legs = one("SELECT count(*) FROM (SELECT p.payment_id FROM settle.payment p LEFT JOIN settle.ledger_entry e USING (payment_id) "
               "GROUP BY p.payment_id, p.status HAVING count(e.entry_id) <> CASE WHEN p.status = 'settled' THEN 2 ELSE 0 END) x")
    report(legs == 0, "each settled payment has exactly two ledger entries, others none", legs if legs else "")
    j = one("SELECT count(*) FROM (SELECT journal_id, currency FROM settle.ledger_entry GROUP BY 1, 2 HAVING sum(amount) <> 0) x")
    report(j == 0, "every journal sums to zero per currency", j if j else "")
    b = one("SELECT count(*) FROM (SELECT batch_id, currency FROM settle.ledger_entry WHERE batch_id IS NOT NULL "
            "GROUP BY 1, 2 HAVING sum(amount) <> 0) x")
    report(b == 0, "every batch sums to zero per currency", b if b else "")
    bal = one("SELECT count(*) FROM settle.account a LEFT JOIN (SELECT account_id, sum(amount) s FROM settle.ledger_entry "
              "GROUP BY 1) e USING (account_id) WHERE a.balance <> coalesce(e.s, 0)")
    report(bal == 0, "every balance equals the sum of its ledger entries", bal if bal else "")

    if one("SELECT count(*) FROM pg_proc WHERE proname = 'settle_verify'"):
        try:
            cur.execute("SELECT * FROM settle_verify()")
            cols = [d[0] for d in cur.description]
            res = cur.fetchall()
            clean = verify_clean(cols, res)
            report(clean, "settle_verify() is clean", "" if clean else res[:10])
        except psycopg2.Error as e:
            report(False, "settle_verify() runs", str(e).strip())
    else:
        print("skip settle_verify() does not exist on this build (the queries above stand in for it)")

    print("acknowledged %d, found %d, duplicates %d" % (len(keys), len(keys) - len(missing), dup))
    return 1 if failures else 0


def verify_clean(cols, rows):
    """settle_verify()'s result is clean: one true boolean, no rows, or rows whose boolean
    columns (ok/passed/clean/valid) are all true and whose problem counts are all zero."""
    if not rows:
        return True
    if len(cols) == 1 and len(rows) == 1 and isinstance(rows[0][0], bool):
        return rows[0][0]
    for r in rows:
        for c, v in zip(cols, r):
            if isinstance(v, bool) and not v:
                return False
            if c in ("problems", "failures", "errors", "violations", "bad") and v not in (0, None):
                return False
    return True


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    lo = sub.add_parser("load")
    lo.add_argument("--hosts", required=True)
    lo.add_argument("--prefix", required=True)
    lo.add_argument("--count", type=int, required=True)
    lo.add_argument("--max-seconds", type=float, required=True)
    lo.add_argument("--acked", required=True)
    lo.add_argument("--workers", type=int, default=2)
    lo.add_argument("--pause", type=float, default=0.01)
    lo.add_argument("--reconnect-pause", type=float, default=0.05)
    lo.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for an answer")
    lo.add_argument("--connect-timeout", type=float, default=1.0)
    lo.add_argument("--stop-file")
    lo.add_argument("--after-stop-hosts")
    ch = sub.add_parser("check")
    ch.add_argument("--hosts", required=True)
    ch.add_argument("--acked", nargs="+", required=True)
    ch.add_argument("--prefixes", required=True)
    args = ap.parse_args()
    if args.cmd == "load":
        return Loader(args).run()
    return check(args)


if __name__ == "__main__":
    sys.exit(main())
