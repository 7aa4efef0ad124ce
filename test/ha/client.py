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

  client.py probe --port P --acked FILE... --prefix Q [--replays N] [--new N] [--timeout S]
      Directly on one node (an orphaned or cut-off old leader): replays of acknowledged
      payments, settle_payment_status of them, new payments, settle_rail_fetch in a
      transaction and alone, each cancelled after S seconds. Exits 1 if any of them answered
      with a payment or a batch.

  client.py nodes --ports P,P,P --acked FILE...
      Every node on its own port at one WAL position: each holds every acknowledged payment,
      and payments, events, ledger, balances, batches and chain heads are the same on all.
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
        # host -> time until which it is tried only when no other host takes the connection:
        # a node that took a statement and never answered (frozen, cut off, or an orphaned
        # primary whose commits wait for a standby that is gone) is still "read-write" to
        # libpq, and would otherwise win the next connection race again
        self.penalty = {}
        self.messages = {}

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
        fallback = False
        while time.time() < self.deadline:
            self.switch_hosts()
            pending = []
            now = time.time()
            hosts = self.hosts.split(",")
            if not fallback:
                hosts = [h for h in hosts if self.penalty.get(h, 0) <= now] or hosts
            fallback = not fallback
            for h in hosts:
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
                    if "no answer within" in str(e):
                        with self.lock:
                            self.penalty["127.0.0.1:%d" % conn.info.port] = time.time() + self.args.penalty
                    code = getattr(e, "pgcode", None)
                    # SE170: an orphan, or a new leader whose synchronous standby is not
                    # streaming yet, refuses at once; retried like a lost connection
                    if code and code.startswith("SE") and code != "SE170":
                        # a refusal by settle itself is a bug here: same key, same content
                        print("client: %s refused: %s %s" % (p[7], code, e), file=sys.stderr)
                        self.failed = True
                        return
                    self.errors += 1
                    msg = (str(e).strip().splitlines() or [type(e).__name__])[0][:120]
                    with self.lock:
                        self.messages[msg] = self.messages.get(msg, 0) + 1
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
        for msg, n in sorted(self.messages.items(), key=lambda kv: -kv[1])[:3]:
            print("client: %d x %s" % (n, msg))
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


def timed(conn, seconds, sql, params=None, begin=False):
    """Run one statement on a synchronous connection; after `seconds` without an answer it is
    cancelled (pg_cancel_backend's protocol request, as statement_timeout would, but also
    reaching a commit's wait for the synchronous standby). Returns (outcome, rows):
    "answer" (rows, no warning), "answer+warning" (rows, and PostgreSQL said the wait for the
    synchronous standby was cancelled), "error SQLSTATE", "cancelled", "no answer" (the
    cancel did not end it either)."""
    done = threading.Event()

    def cancel():
        if not done.wait(seconds):
            try:
                conn.cancel()
            except psycopg2.Error:
                pass
    if conn.closed:
        return "error connection closed", []
    t = threading.Thread(target=cancel, daemon=True)
    t.start()
    del conn.notices[:]
    cur = None
    try:
        cur = conn.cursor()
        if begin:
            cur.execute("BEGIN")
        cur.execute(sql, params)
        rows = cur.fetchall() if cur.description else []
        warned = any("synchronous replication" in n for n in conn.notices)
        return ("answer+warning" if warned else "answer"), rows
    except psycopg2.extensions.QueryCanceledError as e:
        # 57014: our cancel reached a wait that has no answer of its own to give
        return ("error SE140" if e.pgcode == "SE140" else "cancelled"), []
    except psycopg2.Error as e:
        return "error %s" % (e.pgcode or str(e).strip()[:60]), []
    finally:
        done.set()
        try:
            if begin and cur is not None and not conn.closed:
                cur.execute("ROLLBACK")
        except psycopg2.Error:
            pass


def probe(args):
    """What a node that must not acknowledge anything answers (an orphaned primary: its Patroni
    is dead, its synchronous standby was promoted elsewhere): replays of already acknowledged
    payments, new payments, settle_payment_status of acknowledged keys, settle_rail_fetch inside
    a transaction and alone. Each call is cancelled after --timeout. Anything answered with a
    payment or a batch counts as acknowledged; exit 1 if anything was."""
    acked = []
    for f in args.acked:
        with open(f) as fh:
            acked += [json.loads(line)["key"] for line in fh]
    acked = acked[:args.replays]
    # a node that already refuses connections (shutting down to restart in recovery) or
    # answers from recovery was fenced before the probe reached it: it can acknowledge
    # nothing, which is what the probe is for (the round's caller decides whether the
    # round needed a writable orphan)
    try:
        conn = psycopg2.connect("host=127.0.0.1 port=%d user=postgres dbname=postgres connect_timeout=3 "
                                "application_name=ha_probe" % args.port)
        conn.autocommit = True
        cur = conn.cursor()
        cur.execute("SELECT pg_is_in_recovery(), (SELECT count(*) FROM settle.batch WHERE status = 'pending'), "
                    "current_setting('synchronous_standby_names'), "
                    "(SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync')")
        rec, pending, ssn, syncs = cur.fetchone()
    except psycopg2.OperationalError as e:
        print("probe: node on port %d already fenced, no connection: %s" % (args.port, str(e).strip().splitlines()[0]))
        print("probe: acknowledged by the node: 0 (replays 0, status 0, new 0, rail batches 0)")
        return 0
    print("probe: node on port %d: in recovery %s, synchronous_standby_names '%s', synchronous standbys "
          "streaming %d, rail batches pending %d" % (args.port, rec, ssn, syncs, pending))
    results = []

    def one(kind, sql, params=None, begin=False):
        outcome, rows = timed(conn, args.timeout, sql, params, begin)
        # a payment answered with the WARNING that the wait for the standby was cancelled is
        # not an acknowledgement (the load client does not count it either); a batch handed
        # to the rail is out whatever came with it
        bad = len(rows) > 0 and (outcome == "answer" or kind.startswith("rail"))
        results.append((kind, outcome, len(rows), bad))
        return bad

    # one call of each kind first (a cut-off leader demotes itself within seconds: every kind
    # must be tried while it is still a primary), then the rest
    calls = []
    for n, k in enumerate(acked):
        prefix, i = k.rsplit("-", 1)
        calls.append((n, "replay", "SELECT payment_id, replay FROM settle_submit(%s, %s, %s, %s, %s, %s, %s, %s)",
                      payment(prefix, int(i)), False))
        calls.append((n, "status", "SELECT payment_id, status FROM settle_payment_status(idempotency_key => %s)", (k,), False))
    calls.append((0, "rail_fetch in a transaction", "SELECT batch_id FROM settle_rail_fetch(10)", None, True))
    calls.append((0, "rail_fetch", "SELECT batch_id FROM settle_rail_fetch(10)", None, False))
    for i in range(1, args.new + 1):
        calls.append((i - 1, "new", "SELECT payment_id, replay FROM settle_submit(%s, %s, %s, %s, %s, %s, %s, %s)",
                      payment(args.prefix, i), False))
    # the client's retry of a new payment whose commit wait was cancelled (it is committed on
    # this node only): the answer would acknowledge a payment that is on no standby
    for i in range(1, args.new + 1):
        calls.append((i - 1, "replay of a cancelled new one", "SELECT payment_id, replay FROM settle_submit(%s, %s, %s, %s, %s, %s, %s, %s)",
                      payment(args.prefix, i), False))
    # stable sort: round 0 of every kind (in the order above: the new payment before its replay)
    for _, kind, sql, params, begin in sorted(calls, key=lambda c: c[0]):
        one(kind, sql, params, begin)
    conn.close()
    summary = {}
    for kind, outcome, n, bad in results:
        if outcome.startswith("error") and "closed" in outcome:
            outcome = "connection closed"    # the node was demoted (shut down) meanwhile
        if outcome.startswith("answer"):
            outcome += " (%d rows)" % n
        summary.setdefault(kind, {})
        summary[kind][outcome] = summary[kind].get(outcome, 0) + 1
    print("probe: " + "; ".join("%s: %s" % (kind, ", ".join("%d %s" % (n, o) for o, n in sorted(v.items())))
                                for kind, v in summary.items()))
    acks = sum(1 for r in results if r[3])
    print("probe: acknowledged by the node: %d (replays %d, status %d, new %d, rail batches %d)" % (
        acks, sum(1 for r in results if r[3] and r[0].startswith("replay")),
        sum(1 for r in results if r[3] and r[0] == "status"),
        sum(1 for r in results if r[3] and r[0] == "new"),
        sum(r[2] for r in results if r[3] and r[0].startswith("rail"))))
    return 1 if acks else 0


# Each table up to a bound read on the leader: the rows are append-only (events, ledger, seals)
# or no longer change once the round's payments are settled (payments, batches), so every node
# that has replayed past the leader's position when the bounds were read must have the same rows
# up to them, even while the leader goes on writing (the worker's cycles, seals, pg_cron).
BOUNDS = ("SELECT (SELECT coalesce(max(payment_id), 0) FROM settle.payment), (SELECT coalesce(max(event_id), 0) FROM settle.event), "
          "(SELECT coalesce(max(entry_id), 0) FROM settle.ledger_entry), (SELECT coalesce(max(batch_id), 0) FROM settle.batch), "
          "(SELECT coalesce(max(seq), 0) FROM settle.ledger_seal), (SELECT coalesce(max(seq), 0) FROM settle.event_seal)")
NODE_QUERIES = [
    ("payments", "SELECT count(*) || ' ' || md5(coalesce(string_agg(t::text, '|' ORDER BY payment_id), '')) FROM settle.payment t WHERE payment_id <= %(p)s"),
    ("events", "SELECT count(*) || ' ' || md5(coalesce(string_agg(t::text, '|' ORDER BY event_id), '')) FROM settle.event t WHERE event_id <= %(e)s"),
    ("ledger", "SELECT count(*) || ' ' || md5(coalesce(string_agg(t::text, '|' ORDER BY entry_id), '')) FROM settle.ledger_entry t WHERE entry_id <= %(l)s"),
    ("balances", "SELECT md5(coalesce(string_agg(account_id || '=' || balance, '|' ORDER BY account_id), '')) FROM settle.account"),
    ("batches", "SELECT count(*) || ' ' || md5(coalesce(string_agg(t::text, '|' ORDER BY batch_id), '')) FROM settle.batch t WHERE batch_id <= %(b)s"),
    ("chain heads", "SELECT coalesce((SELECT seq || ':' || encode(hash, 'hex') FROM settle.ledger_seal WHERE seq = %(ls)s), '-')"
                    " || ' ' || coalesce((SELECT seq || ':' || encode(hash, 'hex') FROM settle.event_seal WHERE seq = %(es)s), '-')"),
]


def nodes(args):
    """Every node (the leader, the rewound old leader, the replicas) against the acknowledged
    set and against each other: bounds read on the leader, every replica replayed past the
    leader's position after that read, then each node's payments, events, ledger, balances,
    batches and chain heads up to the bounds must be the same, and hold every acknowledged key.
    A difference is looked at again (up to three times, a second apart) before it counts, for a
    balance or a batch that was being written while it was read."""
    acked = {}
    for f in args.acked:
        with open(f) as fh:
            for line in fh:
                r = json.loads(line)
                acked[r["key"]] = r["payment_id"]
    conns = {}
    for p in args.ports.split(","):
        c = psycopg2.connect("host=127.0.0.1 port=%s user=postgres dbname=postgres connect_timeout=3 "
                             "application_name=ha_nodes" % p)
        c.autocommit = True
        conns[int(p)] = c

    def q(c, sql, params=None):
        cur = c.cursor()
        cur.execute(sql, params)
        return cur.fetchone()
    leaders = [p for p, c in conns.items() if not q(c, "SELECT pg_is_in_recovery()")[0]]
    if len(leaders) != 1:
        print("FAIL exactly one node not in recovery: %s" % leaders)
        return 1
    lp = leaders[0]
    deadline = time.time() + args.seconds
    for attempt in range(3):
        bounds = dict(zip(("p", "e", "l", "b", "ls", "es"), q(conns[lp], BOUNDS)))
        l1 = q(conns[lp], "SELECT pg_current_wal_lsn()::text")[0]
        for p, c in conns.items():
            while p != lp and q(c, "SELECT pg_last_wal_replay_lsn() < %s::pg_lsn", (l1,))[0]:
                if time.time() > deadline:
                    print("FAIL node on port %d did not replay up to %s within %d s" % (p, l1, args.seconds))
                    return 1
                time.sleep(0.05)
        digests = {p: [q(c, sql, bounds)[0] for _, sql in NODE_QUERIES] for p, c in conns.items()}
        if all(len({digests[p][i] for p in digests}) == 1 for i in range(len(NODE_QUERIES))):
            break
        time.sleep(1)
    failures = 0
    keys = list(acked)
    for p, c in conns.items():
        cur = c.cursor()
        cur.execute("SELECT idempotency_key, payment_id FROM settle.payment WHERE idempotency_key = ANY(%s)", (keys,))
        found = dict(cur.fetchall())
        missing = [k for k in keys if k not in found]
        wrong = [k for k in keys if k in found and found[k] != acked[k]]
        good = not missing and not wrong
        failures += not good
        print("%s node on port %d (%s): acknowledged %d, found %d%s" % (
            "ok  " if good else "FAIL", p, "leader" if p == lp else "replica", len(keys), len(keys) - len(missing),
            (", missing %s" % missing[:5] if missing else "") + (", other payment_id %s" % wrong[:5] if wrong else "")))
    for i, (name, _) in enumerate(NODE_QUERIES):
        vals = {p: digests[p][i] for p in digests}
        same = len(set(vals.values())) == 1
        failures += not same
        print("%s %s the same on every node (leader at %s): %s" % (
            "ok  " if same else "FAIL", name, l1,
            vals[lp].split(" ")[0] + " rows" if same and name not in ("balances", "chain heads") else
            (vals[lp][:40] if same else vals)))
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
    lo.add_argument("--penalty", type=float, default=10.0,
                    help="seconds a host that did not answer is tried only after the others")
    lo.add_argument("--stop-file")
    lo.add_argument("--after-stop-hosts")
    ch = sub.add_parser("check")
    ch.add_argument("--hosts", required=True)
    ch.add_argument("--acked", nargs="+", required=True)
    ch.add_argument("--prefixes", required=True)
    pr = sub.add_parser("probe")
    pr.add_argument("--port", type=int, required=True)
    pr.add_argument("--acked", nargs="+", required=True)
    pr.add_argument("--prefix", required=True, help="prefix of the new payments tried")
    pr.add_argument("--replays", type=int, default=5)
    pr.add_argument("--new", type=int, default=2)
    pr.add_argument("--timeout", type=float, default=2.0)
    no = sub.add_parser("nodes")
    no.add_argument("--ports", required=True)
    no.add_argument("--acked", nargs="+", required=True)
    no.add_argument("--seconds", type=float, default=30)
    args = ap.parse_args()
    if args.cmd == "load":
        return Loader(args).run()
    if args.cmd == "probe":
        return probe(args)
    if args.cmd == "nodes":
        return nodes(args)
    return check(args)


if __name__ == "__main__":
    sys.exit(main())
