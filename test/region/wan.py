#!/usr/bin/env python3
"""A wide-area link between two "regions" on 127.0.0.1, for the region test.

  wan.py --listen PORT --delay MS --rest P,P,P --pg P,P,P

Every connection to PORT is carried to the PostgreSQL of the node whose Patroni REST API
(ports --rest, in the same order as --pg) answers 200 on /primary when the connection
opens: the first region's leader, wherever it is.  Each byte is delivered MS milliseconds
after it was read, in both directions and in order (a round trip of 2 x MS), as a
wide-area path delays it; nothing is dropped or reordered.  The kernel has no netem here
(tc: "qdisc kind unknown"), so the delay is made in user space; what it cannot emulate:
a bandwidth limit, loss and retransmission.  Standard library only.
"""
import argparse
import asyncio
import time
import urllib.request


def log(msg):
    print("%s wan: %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


def leader_port(rest_ports, pg_ports):
    for rest, pg in zip(rest_ports, pg_ports):
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/primary" % rest, timeout=1) as r:
                if r.status == 200:
                    return pg
        except Exception:
            continue
    return None


async def carry(reader, writer, delay):
    """Read as it comes; deliver each chunk `delay` seconds after it was read."""
    queue = asyncio.Queue()

    async def deliver():
        while True:
            due, data = await queue.get()
            if data is None:
                break
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()
        writer.close()

    sender = asyncio.ensure_future(deliver())
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            queue.put_nowait((time.monotonic() + delay, data))
    except (ConnectionError, OSError):
        pass
    queue.put_nowait((time.monotonic() + delay, None))
    try:
        await sender
    except (ConnectionError, OSError):
        pass


async def serve(args):
    rest = [int(p) for p in args.rest.split(",")]
    pg = [int(p) for p in args.pg.split(",")]
    delay = args.delay / 1000.0

    async def handle(cr, cw):
        port = await asyncio.get_event_loop().run_in_executor(None, leader_port, rest, pg)
        if port is None:
            cw.close()
            return
        try:
            tr, tw = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            cw.close()
            return
        await asyncio.gather(carry(cr, tw, delay), carry(tr, cw, delay), return_exceptions=True)

    server = await asyncio.start_server(handle, "127.0.0.1", args.listen)
    log("listening on %d, %d ms each way" % (args.listen, args.delay))
    async with server:
        await server.serve_forever()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", type=int, required=True)
    ap.add_argument("--delay", type=float, required=True)
    ap.add_argument("--rest", required=True)
    ap.add_argument("--pg", required=True)
    asyncio.run(serve(ap.parse_args()))


if __name__ == "__main__":
    main()
