#!/usr/bin/python3
"""Baseline for the gateway benchmark: settle_submit_bulk called directly over
libpq (psycopg2), SESSIONS sessions for SECONDS, each call BATCH payments as
one JSON text parameter, the same payments as the HTTP load (unique keys, one
source account), one commit per call.  Prints RESULT created=N seconds=S rate=R."""
import argparse
import threading
import time

import psycopg2


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dsn", required=True)
    ap.add_argument("--sessions", type=int, default=4)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--prefix", required=True)
    args = ap.parse_args()
    row = ('{"transaction_id":"%s","amount":"1.00","source_currency":"USD","destination_currency":"USD",'
           '"source_account":"gb_a_usd","destination_account":"gb_b_usd","counterparty_id":"gb_b",'
           '"idempotency_key":"%s"}')
    created = [0] * args.sessions
    conns = [psycopg2.connect(args.dsn) for _ in range(args.sessions)]
    for c in conns:
        c.autocommit = True
    start = time.monotonic()
    end = start + args.seconds

    def run(s):
        cur = conns[s].cursor()
        n = 0
        while time.monotonic() < end:
            keys = ["%s_%d_%d" % (args.prefix, s, n + i) for i in range(args.batch)]
            n += args.batch
            body = "[" + ",".join(row % (k, k) for k in keys) + "]"
            cur.execute("SELECT count(*) FILTER (WHERE payment_id IS NOT NULL AND NOT replay)"
                        " FROM settle_submit_bulk(%s::jsonb)", (body,))
            created[s] += cur.fetchone()[0]

    ts = [threading.Thread(target=run, args=(s,)) for s in range(args.sessions)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    secs = time.monotonic() - start
    print("RESULT created=%d seconds=%.3f rate=%.0f" % (sum(created), secs, sum(created) / secs))


if __name__ == "__main__":
    main()
