#!/usr/bin/python3
"""HTTP load through settle-gateway during a fail-over (test/scripts/ha_failover.sh).

  gateway_client.py load --url URL --token T --prefix P --acked FILE --stop-file F
                         [--workers W] [--max-seconds S] [--pause S]
      Each worker submits payments with unique keys, one request each.  An
      answer 201 or 200 acknowledges the payment (a line in FILE); a 503 or a
      lost connection is retried with the same key and content until it is
      acknowledged, as a client must during a fail-over.  Anything else ends
      the run with status 1.  After the stop file appears, each worker
      finishes its payment and stops.
  gateway_client.py check --dsn DSN --acked FILE --prefix P
      Every acknowledged payment is in the database exactly once, with the
      payment_id the gateway answered, and nothing else has the prefix.
  gateway_client.py rate --url URL --token T --prefix P --acked FILE --seconds S
                         [--rate R] [--batch B] [--workers W]
      A steady load for the soak (test/ha/soak.sh): W workers together send
      R payments a second as arrays of B, each worker paced to its share.
      An element answered 201 or 200 is acknowledged (a line "key,payment_id,t"
      in FILE, CSV for the database's COPY); a 503 answer, a 503 element or a
      lost connection is sent again with the same keys and content until it
      is acknowledged.  Prints a line every 10 s and a JSON summary: payments
      acknowledged, the rate reached, retries, the longest time without any
      acknowledgement.  Status 1 on any other answer.
  gateway_client.py window --acked FILE --t0 T
      The client's unavailability window of a fault at T (epoch seconds):
      from the last acknowledgement at or before T, the longest time without
      an acknowledgement up to the last one of the run.  When nothing is
      answered after the fault starts this is the time from the last
      acknowledgement before it to the first one after it; when the old
      leader still answers for a moment (a switchover's clean shutdown) the
      window starts at its last answer.  Prints "WINDOW LAST FIRST": the
      window, and its ends relative to T; "never" if nothing was
      acknowledged after T.
"""
import argparse
import http.client
import json
import os
import sys
import threading
import time
import urllib.parse


def payment(prefix, w, i):
    k = "%s-%d-%d" % (prefix, w, i)
    return k, json.dumps({
        "transaction_id": k, "amount": "%d.%02d" % (1 + i % 40, i % 100),
        "source_currency": "USD", "destination_currency": "USD",
        "source_account": "ha_a_usd", "destination_account": "ha_b_usd",
        "counterparty_id": "ha_b", "idempotency_key": k})


def load(args):
    u = urllib.parse.urlparse(args.url)
    lock = threading.Lock()
    out = open(args.acked, "a")
    stats = {"acked": 0, "retries": 0, "replays_after_retry": 0, "unfinished": 0, "failed": 0}
    deadline = time.time() + args.max_seconds

    def worker(w):
        conn = None
        i = 0
        while not os.path.exists(args.stop_file) and time.time() < deadline:
            i += 1
            key, body = payment(args.prefix, w, i)
            attempts = 0
            while True:
                attempts += 1
                status = None
                try:
                    if conn is None:
                        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=args.timeout)
                    conn.request("POST", "/api/v1/transactions", body,
                                 {"Content-Type": "application/json", "Authorization": "Bearer " + args.token})
                    r = conn.getresponse()
                    text = r.read()
                    status = r.status
                except (OSError, http.client.HTTPException):
                    conn = None
                if status in (200, 201):
                    pid = json.loads(text)["payment_id"]
                    with lock:
                        out.write(json.dumps({"key": key, "payment_id": pid, "t": time.time(),
                                              "status": status, "attempts": attempts}) + "\n")
                        out.flush()
                        stats["acked"] += 1
                        if attempts > 1 and status == 200:
                            stats["replays_after_retry"] += 1
                    break
                if status not in (None, 503):
                    with lock:
                        stats["failed"] += 1
                        print("unexpected %s for %s: %s" % (status, key, text[:300]), flush=True)
                    return
                with lock:
                    stats["retries"] += 1
                if time.time() > deadline + args.finish_seconds:
                    with lock:
                        stats["unfinished"] += 1
                        print("gave up on %s" % key, flush=True)
                    return
                time.sleep(args.retry_pause)
            time.sleep(args.pause)

    ts = [threading.Thread(target=worker, args=(w,)) for w in range(args.workers)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    print(json.dumps(stats), flush=True)
    return 1 if stats["failed"] or stats["unfinished"] else 0


def check(args):
    import psycopg2
    acked = {}
    for line in open(args.acked):
        r = json.loads(line)
        if r["key"] in acked and acked[r["key"]] != r["payment_id"]:
            print("key %s acknowledged with two payment ids" % r["key"])
            return 1
        acked[r["key"]] = r["payment_id"]
    c = psycopg2.connect(args.dsn)
    cur = c.cursor()
    cur.execute("SELECT idempotency_key, payment_id FROM settle.payment WHERE idempotency_key LIKE %s",
                (args.prefix + "-%",))
    found = {}
    dup = 0
    for k, pid in cur.fetchall():
        if k in found:
            dup += 1
        found[k] = pid
    missing = [k for k in acked if k not in found]
    wrong = [k for k in acked if k in found and found[k] != acked[k]]
    extra = [k for k in found if k not in acked]
    print("acknowledged %d, in the database %d, missing %d, other payment_id %d, not acknowledged %d, twice %d"
          % (len(acked), len(found), len(missing), len(wrong), len(extra), dup))
    return 0 if len(acked) > 0 and not (missing or wrong or extra or dup) else 1


def rate(args):
    u = urllib.parse.urlparse(args.url)
    lock = threading.Lock()
    out = open(args.acked, "a")
    stats = {"acked": 0, "retries": 0, "failed": 0, "requests": 0}
    last = {"t": None, "gap": 0.0}
    start = time.time()
    deadline = start + args.seconds
    interval = args.batch * args.workers / float(args.rate)
    headers = {"Content-Type": "application/json", "Authorization": "Bearer " + args.token}

    def record(rows, now):
        with lock:
            for k, pid in rows:
                out.write("%s,%s,%.6f\n" % (k, pid, now))
            stats["acked"] += len(rows)
            if last["t"] is not None and now - last["t"] > last["gap"]:
                last["gap"] = now - last["t"]
            last["t"] = now

    def worker(w):
        conn = None
        i = 0
        slot = start + interval * w / args.workers
        while time.time() < deadline and not stats["failed"]:
            pending = {}
            for _ in range(args.batch):
                i += 1
                k, body = payment(args.prefix, w, i)
                pending[k] = body
            while pending:
                keys = list(pending)
                body = "[" + ",".join(pending[k] for k in keys) + "]"
                status = None
                try:
                    if conn is None:
                        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=args.timeout)
                    conn.request("POST", "/api/v1/transactions", body, headers)
                    r = conn.getresponse()
                    text = r.read()
                    status = r.status
                except (OSError, http.client.HTTPException):
                    conn = None
                with lock:
                    stats["requests"] += 1
                if status == 200:
                    got, now = [], time.time()
                    for k, res in zip(keys, json.loads(text)["results"]):
                        if res.get("status") in (200, 201):
                            got.append((k, res["payment_id"]))
                            del pending[k]
                        elif res.get("status") != 503:
                            with lock:
                                stats["failed"] += 1
                                print("unexpected element %s for %s" % (json.dumps(res)[:300], k), flush=True)
                            return
                    record(got, now)
                elif status not in (None, 503):
                    with lock:
                        stats["failed"] += 1
                        print("unexpected %s: %s" % (status, text[:300]), flush=True)
                    return
                if pending:
                    with lock:
                        stats["retries"] += 1
                    if time.time() > deadline + args.finish_seconds:
                        with lock:
                            stats["failed"] += 1
                            print("gave up on %d payments" % len(pending), flush=True)
                        return
                    time.sleep(args.retry_pause)
            slot += interval
            pause = slot - time.time()
            if pause > 0:
                time.sleep(pause)
            else:
                slot = time.time()    # behind: no burst to catch up

    def reporter():
        prev = 0
        while time.time() < deadline:
            time.sleep(10)
            with lock:
                n = stats["acked"]
            print("%.0f s: %d acknowledged, %.0f/s in the last 10 s" % (time.time() - start, n, (n - prev) / 10.0), flush=True)
            prev = n

    threading.Thread(target=reporter, daemon=True).start()
    ts = [threading.Thread(target=worker, args=(w,)) for w in range(args.workers)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    took = time.time() - start
    stats["seconds"] = round(took, 1)
    stats["rate"] = round(stats["acked"] / took, 1)
    stats["longest_gap"] = round(last["gap"], 3)
    print(json.dumps(stats), flush=True)
    return 1 if stats["failed"] else 0


def window(args):
    ts = sorted(json.loads(line)["t"] for line in open(args.acked))
    before = [t for t in ts if t <= args.t0]
    after = [t for t in ts if t > args.t0]
    if not after:
        print("never")
        return 1
    prev = before[-1] if before else args.t0
    best, start, end = 0.0, prev, after[0]
    for t in after:
        if t - prev > best:
            best, start, end = t - prev, prev, t
        prev = t
    print("%.3f %.3f %.3f" % (best, start - args.t0, end - args.t0))
    return 0


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    lo = sub.add_parser("load")
    lo.add_argument("--url", required=True)
    lo.add_argument("--token", required=True)
    lo.add_argument("--prefix", required=True)
    lo.add_argument("--acked", required=True)
    lo.add_argument("--stop-file", required=True)
    lo.add_argument("--workers", type=int, default=2)
    lo.add_argument("--max-seconds", type=float, default=90)
    lo.add_argument("--finish-seconds", type=float, default=40)
    lo.add_argument("--pause", type=float, default=0.01)
    lo.add_argument("--retry-pause", type=float, default=0.1)
    lo.add_argument("--timeout", type=float, default=10)
    ch = sub.add_parser("check")
    ch.add_argument("--dsn", required=True)
    ch.add_argument("--acked", required=True)
    ch.add_argument("--prefix", required=True)
    ra = sub.add_parser("rate")
    ra.add_argument("--url", required=True)
    ra.add_argument("--token", required=True)
    ra.add_argument("--prefix", required=True)
    ra.add_argument("--acked", required=True)
    ra.add_argument("--seconds", type=float, required=True)
    ra.add_argument("--rate", type=float, default=2000)
    ra.add_argument("--batch", type=int, default=50)
    ra.add_argument("--workers", type=int, default=4)
    ra.add_argument("--finish-seconds", type=float, default=60)
    ra.add_argument("--retry-pause", type=float, default=0.05)
    ra.add_argument("--timeout", type=float, default=10)
    wi = sub.add_parser("window")
    wi.add_argument("--acked", required=True)
    wi.add_argument("--t0", type=float, required=True)
    args = ap.parse_args()
    sys.exit({"load": load, "check": check, "rate": rate, "window": window}[args.cmd](args))


if __name__ == "__main__":
    main()
