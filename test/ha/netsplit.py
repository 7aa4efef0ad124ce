#!/usr/bin/env python3
"""TCP proxies on 127.0.0.1 that can cut a node off the network, for the HA harness.

  netsplit.py serve --control PORT ROUTE...
      ROUTE is NODE:LISTEN:TARGET:KIND (for example node1:24130:24102:pg): connections to
      LISTEN are carried to TARGET, and belong to NODE. The harness gives each node three routes
      and renders its patroni.yml so that all of the node's cluster traffic crosses them:
      inbound PostgreSQL (postgresql.connect_address: the other nodes' replication and
      pg_rewind, the load client), inbound REST API (restapi.connect_address: the other
      members' checks during a leader race) and its Patroni's own connection to etcd
      (etcd.hosts, with use_proxies so that Patroni does not discover etcd's real address).

  netsplit.py ctl PORT cut NODE hold|reset [KIND]  |  ctl PORT heal NODE  |  ctl PORT status
      (KIND: only that route of the node, for example etcd: the node loses etcd only)
      cut hold:  a partition in which packets are lost: every open connection of the node
                 stops moving in both directions (the kernel buffers fill, senders block, as
                 when TCP retransmits into nothing) and new ones are accepted but never
                 reach their target. Only the endpoints' own timeouts end them. On heal,
                 everything held moves on, as TCP delivers once the path is back.
      cut reset: a partition that the hosts are told about: every open connection of the
                 node is reset (RST) and new ones are reset at once.
      heal:      connections go through again.

The node's own outgoing connections to the other nodes (as a replica, to its leader) cross
those nodes' routes, which are not cut: a cut node learns whom to follow only from etcd,
which it cannot reach, so in practice it opens none. Standard library only.
"""
import asyncio
import socket
import struct
import sys
import time


def log(msg):
    print("%s netsplit: %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


class Node:
    """One route of a node (its traffic of one kind)."""
    def __init__(self, name, kind):
        self.name = name
        self.kind = kind
        self.mode = None               # None (connected), "hold" or "reset"
        self.open = asyncio.Event()    # set while not cut
        self.open.set()
        self.conns = set()

    def cut(self, mode):
        self.mode = mode
        self.open.clear()
        n = len(self.conns)
        if mode == "reset":
            for c in list(self.conns):
                c.reset()
        return n

    def heal(self):
        self.mode = None
        self.open.set()


def rst(writer):
    """Close with a TCP reset rather than an orderly FIN."""
    if writer is None:
        return
    sock = writer.get_extra_info("socket")
    try:
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    writer.transport.abort()


class Conn:
    def __init__(self, node, reader, writer):
        self.node = node
        self.cr, self.cw = reader, writer
        self.ur = self.uw = None
        self.tasks = []

    def reset(self):
        rst(self.cw)
        rst(self.uw)
        for t in self.tasks:
            t.cancel()

    async def pump(self, reader, writer):
        try:
            while True:
                data = await reader.read(65536)
                # held: nothing more is read or delivered until the node is healed
                if not self.node.open.is_set():
                    if self.node.mode == "reset":
                        return
                    await self.node.open.wait()
                if not data:
                    if writer.can_write_eof():
                        writer.write_eof()
                    return
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            # one side failed: the other is told at once, rather than left open forever
            rst(self.cw)
            rst(self.uw)

    async def run(self, target):
        node = self.node
        node.conns.add(self)
        try:
            if node.mode == "reset":
                rst(self.cw)
                return
            await node.open.wait()
            try:
                self.ur, self.uw = await asyncio.open_connection("127.0.0.1", target)
            except OSError:
                rst(self.cw)
                return
            if node.mode == "reset":       # cut while connecting
                self.reset()
                return
            self.tasks = [asyncio.ensure_future(self.pump(self.cr, self.uw)),
                          asyncio.ensure_future(self.pump(self.ur, self.cw))]
            # the connection ends when both directions have ended (half-close is passed on)
            await asyncio.gather(*self.tasks, return_exceptions=True)
        except asyncio.CancelledError:
            pass
        finally:
            node.conns.discard(self)
            for w in (self.cw, self.uw):
                if w is not None:
                    w.transport.abort() if node.mode == "reset" else w.close()


async def control(nodes, reader, writer):
    line = (await reader.readline()).decode().split()
    reply = "error: " + " ".join(line)
    names = {n.name for n in nodes.values()}
    if line and line[0] == "status":
        reply = " ".join("%s/%s=%s/%d" % (n.name, n.kind, n.mode or "connected", len(n.conns)) for n in nodes.values())
    elif len(line) in (3, 4) and line[0] == "cut" and line[1] in names and line[2] in ("hold", "reset"):
        links = [n for n in nodes.values() if n.name == line[1] and (len(line) == 3 or n.kind == line[3])]
        if links:
            k = sum(n.cut(line[2]) for n in links)
            log("cut %s %s (%s): %d open connections %s" % (line[1], "/".join(n.kind for n in links), line[2], k,
                                                           "reset" if line[2] == "reset" else "held"))
            reply = "ok"
    elif len(line) == 2 and line[0] == "heal" and line[1] in names:
        for n in nodes.values():
            if n.name == line[1]:
                n.heal()
        log("healed %s" % line[1])
        reply = "ok"
    writer.write((reply + "\n").encode())
    await writer.drain()
    writer.close()


async def serve(control_port, routes):
    nodes = {}
    for name, listen, target, kind in routes:
        node = nodes.setdefault((name, kind), Node(name, kind))

        def handler(r, w, node=node, target=target):
            return Conn(node, r, w).run(target)
        await asyncio.start_server(handler, "127.0.0.1", listen, reuse_address=True)
        log("%s %s: 127.0.0.1:%d -> 127.0.0.1:%d" % (name, kind, listen, target))
    srv = await asyncio.start_server(lambda r, w: control(nodes, r, w), "127.0.0.1", control_port,
                                     reuse_address=True)
    log("control on 127.0.0.1:%d" % control_port)
    async with srv:
        await srv.serve_forever()


def ctl(port, words):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall((" ".join(words) + "\n").encode())
        reply = s.makefile().readline().strip()
    print(reply)
    return 0 if not reply.startswith("error") else 1


def main(argv):
    if len(argv) >= 4 and argv[0] == "serve" and argv[1] == "--control":
        routes = []
        for r in argv[3:]:
            name, listen, target, kind = r.split(":")
            routes.append((name, int(listen), int(target), kind))
        asyncio.run(serve(int(argv[2]), routes))
        return 0
    if len(argv) >= 3 and argv[0] == "ctl":
        return ctl(int(argv[1]), argv[2:])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
