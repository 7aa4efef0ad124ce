#!/usr/bin/python3
"""Listen on settle's notification channel and log when each payment id was
heard: one line "payment_id epoch_seconds" per id, for make bench's end-to-end
section (latency to the listener's receipt) -- standard library and psycopg2.
Usage: listen.py PORT DBNAME CHANNEL OUTFILE; writes OUTFILE.ready once it
listens, stops on SIGTERM (or after 600 s)."""
import json
import select
import signal
import sys
import time

import psycopg2

port, dbname, channel, out = sys.argv[1:5]
stop = False


def on_term(signum, frame):
    global stop
    stop = True


signal.signal(signal.SIGTERM, on_term)
conn = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname=dbname)
conn.autocommit = True
conn.cursor().execute("LISTEN " + channel)
open(out + ".ready", "w").close()
end = time.time() + 600
with open(out, "w") as f:
    while not stop and time.time() < end:
        if select.select([conn], [], [], 0.1) == ([], [], []):
            continue
        conn.poll()
        now = time.time()
        while conn.notifies:
            n = conn.notifies.pop(0)
            for pid in json.loads(n.payload)["payments"]:
                f.write("%d %.6f\n" % (pid, now))
    # what arrived between the last poll and the signal
    conn.poll()
    now = time.time()
    while conn.notifies:
        for pid in json.loads(conn.notifies.pop(0).payload)["payments"]:
            f.write("%d %.6f\n" % (pid, now))
conn.close()
