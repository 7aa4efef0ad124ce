#!/usr/bin/env python3
"""TCP proxies on 127.0.0.1 that can cut a node off the network, for the HA harness.

  netsplit.py serve --control PORT [--nodes-dir DIR] ROUTE...
      ROUTE is NODE:LISTEN:TARGET[/TARGET...]:KIND (for example node1:24130:24102:pg):
      connections to LISTEN are carried to the first TARGET that accepts, and belong to NODE.
      The harness gives each node three routes and renders its patroni.yml so that all of the
      node's cluster traffic crosses them: inbound PostgreSQL (postgresql.connect_address: the
      other nodes' replication and pg_rewind, the load client), inbound REST API
      (restapi.connect_address: the other members' checks during a leader race) and its
      Patroni's own connection to etcd (etcd.hosts, with use_proxies so that Patroni does not
      discover etcd's real address; several targets: the etcd members).
      With --nodes-dir, each connection to a pg or rest route is traced to the process that
      opened it (/proc/net/tcp, then /proc/PID/fd): a process whose working directory is
      DIR/NODE (Patroni, pg_rewind, pg_basebackup) or below it (postgres, its walreceiver) is
      NODE's. So a cut node's own outgoing connections to its peers (its walreceiver, its
      Patroni's REST calls, pg_rewind) are cut too, not only those that reach it.

  netsplit.py ctl PORT cut NODE hold|reset|out|in [KIND]  |  ctl PORT heal NODE  |  ctl PORT status
      (KIND: only that route of the node, for example etcd: the node loses etcd only)
      cut hold:  a partition in which packets are lost: every open connection of the node
                 stops moving in both directions (the kernel buffers fill, senders block, as
                 when TCP retransmits into nothing) and new ones are accepted but never
                 reach their target. Only the endpoints' own timeouts end them. On heal,
                 everything held moves on, as TCP delivers once the path is back.
      cut reset: a partition that the hosts are told about: every open connection of the
                 node is reset (RST) and new ones are reset at once.
      cut out:   one-way: nothing the node sends arrives (its open connections still carry
                 what others send to it); new connections are held, as a TCP handshake needs
                 both ways.
      cut in:    one-way: nothing sent to the node arrives; what it sends still does.
      heal:      connections go through again.

Limits of a proxy: a held byte was accepted by the proxy's kernel, so the sender's TCP
sees it acknowledged (a real loss would leave it unacknowledged and retransmitted); both
end the same way for the applications, by their own timeouts. Connections the harness
makes to each node's own port, and etcd's peer traffic, do not cross the proxies.
Standard library only.
"""
import asyncio
import os
import socket
import struct
import sys
import time


def log(msg):
    print("%s netsplit: %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


class State:
    """Who is cut, and how: whole nodes (every route, and what they open elsewhere) and
    single routes of a node (cut NODE MODE KIND)."""
    def __init__(self):
        self.node_mode = {}
        self.route_mode = {}
        self.conns = set()
        self.changed = asyncio.Event()

    def touch(self):
        self.changed.set()
        self.changed = asyncio.Event()

    def mode(self, name, kind, own_route):
        if name is None:
            return None
        m = self.node_mode.get(name)
        if m is None and own_route:
            m = self.route_mode.get((name, kind))
        return m


STATE = None
NODES_DIR = None
NODE_NAMES = set()


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


def find_origin(peer_port, listen_port):
    """The node whose process opened the connection from 127.0.0.1:peer_port, or None."""
    want_l, want_r = "0100007F:%04X" % peer_port, "0100007F:%04X" % listen_port
    inode = None
    try:
        with open("/proc/net/tcp") as f:
            for line in f:
                x = line.split()
                if len(x) > 9 and x[1] == want_l and x[2] == want_r:
                    inode = x[9]
                    break
    except OSError:
        return None
    if not inode or inode == "0":
        return None
    target = "socket:[%s]" % inode
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            for fd in os.listdir("/proc/%s/fd" % pid):
                if os.readlink("/proc/%s/fd/%s" % (pid, fd)) == target:
                    cwd = os.readlink("/proc/%s/cwd" % pid)
                    for n in NODE_NAMES:
                        d = os.path.join(NODES_DIR, n)
                        if cwd == d or cwd.startswith(d + "/"):
                            return n
                    return None
        except OSError:
            continue
    return None


class Conn:
    """One proxied connection. client_node / server_node: the node on each side (None for the
    load client or etcd). On a pg or rest route the server is the route's node and the client
    is found in /proc; on an etcd route the client is the route's node."""
    def __init__(self, route_node, kind, reader, writer):
        self.kind = kind
        self.route_node = route_node
        self.client_node = route_node if kind == "etcd" else None
        self.server_node = None if kind == "etcd" else route_node
        self.cr, self.cw = reader, writer
        self.ur = self.uw = None
        self.tasks = []

    def modes(self):
        own_c = self.client_node == self.route_node
        own_s = self.server_node == self.route_node
        return (STATE.mode(self.client_node, self.kind, own_c), STATE.mode(self.server_node, self.kind, own_s))

    def blocked(self, upward):
        """upward: client -> server. A direction stops when its sender is cut (hold, out)
        or its receiver is (hold, in)."""
        cm, sm = self.modes()
        snd, rcv = (cm, sm) if upward else (sm, cm)
        return snd in ("hold", "out") or rcv in ("hold", "in")

    def is_reset(self):
        return "reset" in self.modes()

    def reset(self):
        rst(self.cw)
        rst(self.uw)
        for t in self.tasks:
            t.cancel()

    async def pump(self, reader, writer, upward):
        try:
            while True:
                data = await reader.read(65536)
                # held: nothing more is read or delivered until the node is healed
                while self.blocked(upward):
                    if self.is_reset():
                        return
                    await STATE.changed.wait()
                if self.is_reset():
                    return
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

    async def run(self, targets, listen):
        STATE.conns.add(self)
        try:
            if self.client_node is None and NODES_DIR:
                peer = self.cw.get_extra_info("peername")
                if peer:
                    self.client_node = await asyncio.get_event_loop().run_in_executor(
                        None, find_origin, peer[1], listen)
            # a new connection needs both directions: any cut of either side holds it
            while True:
                if self.is_reset():
                    rst(self.cw)
                    return
                if not any(m in ("hold", "out", "in") for m in self.modes()):
                    break
                await STATE.changed.wait()
            for t in targets:
                try:
                    self.ur, self.uw = await asyncio.open_connection("127.0.0.1", t)
                    break
                except OSError:
                    continue
            if self.uw is None:
                rst(self.cw)
                return
            if self.is_reset():       # cut while connecting
                self.reset()
                return
            self.tasks = [asyncio.ensure_future(self.pump(self.cr, self.uw, True)),
                          asyncio.ensure_future(self.pump(self.ur, self.cw, False))]
            # the connection ends when both directions have ended (half-close is passed on)
            await asyncio.gather(*self.tasks, return_exceptions=True)
        except asyncio.CancelledError:
            pass
        finally:
            STATE.conns.discard(self)
            for w in (self.cw, self.uw):
                if w is not None:
                    w.transport.abort() if self.is_reset() else w.close()


async def control(routes, reader, writer):
    line = (await reader.readline()).decode().split()
    reply = "error: " + " ".join(line)
    names = {r[0] for r in routes}
    kinds = {r[3] for r in routes}
    if line and line[0] == "status":
        parts = ["%s=%s" % (n, m) for n, m in sorted(STATE.node_mode.items()) if m]
        parts += ["%s/%s=%s" % (n, k, m) for (n, k), m in sorted(STATE.route_mode.items()) if m]
        by = {}
        for c in STATE.conns:
            key = "%s->%s/%s" % (c.client_node or "-", c.route_node, c.kind)
            by[key] = by.get(key, 0) + 1
        reply = " ".join(parts or ["all connected"]) + " | " + " ".join("%s:%d" % kv for kv in sorted(by.items()))
    elif (len(line) in (3, 4) and line[0] == "cut" and line[1] in names and line[2] in ("hold", "reset", "out", "in")
          and (len(line) == 3 or line[3] in kinds)):
        if len(line) == 3:
            STATE.node_mode[line[1]] = line[2]
        else:
            STATE.route_mode[(line[1], line[3])] = line[2]
        k = 0
        for c in list(STATE.conns):
            if line[1] in (c.client_node, c.server_node):
                k += 1
                if c.is_reset():
                    c.reset()
        STATE.touch()
        log("cut %s %s (%s): %d open connections of it" % (line[1], line[3] if len(line) == 4 else "everything", line[2], k))
        reply = "ok"
    elif len(line) == 2 and line[0] == "heal" and line[1] in names:
        STATE.node_mode.pop(line[1], None)
        for key in [k for k in STATE.route_mode if k[0] == line[1]]:
            del STATE.route_mode[key]
        STATE.touch()
        log("healed %s" % line[1])
        reply = "ok"
    writer.write((reply + "\n").encode())
    await writer.drain()
    writer.close()


async def serve(control_port, routes):
    global STATE
    STATE = State()
    for name, listen, targets, kind in routes:
        NODE_NAMES.add(name)

        def handler(r, w, name=name, kind=kind, targets=targets, listen=listen):
            return Conn(name, kind, r, w).run(targets, listen)
        await asyncio.start_server(handler, "127.0.0.1", listen, reuse_address=True)
        log("%s %s: 127.0.0.1:%d -> %s" % (name, kind, listen, ", ".join("127.0.0.1:%d" % t for t in targets)))
    srv = await asyncio.start_server(lambda r, w: control(routes, r, w), "127.0.0.1", control_port,
                                     reuse_address=True)
    log("control on 127.0.0.1:%d%s" % (control_port, ", connections traced to nodes under " + NODES_DIR if NODES_DIR else ""))
    async with srv:
        await srv.serve_forever()


def ctl(port, words):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall((" ".join(words) + "\n").encode())
        reply = s.makefile().readline().strip()
    print(reply)
    return 0 if not reply.startswith("error") else 1


def main(argv):
    global NODES_DIR
    if len(argv) >= 3 and argv[0] == "serve" and argv[1] == "--control":
        rest = argv[3:]
        if len(rest) >= 2 and rest[0] == "--nodes-dir":
            NODES_DIR = rest[1]
            rest = rest[2:]
        routes = []
        for r in rest:
            name, listen, targets, kind = r.split(":")
            routes.append((name, int(listen), [int(t) for t in targets.split("/")], kind))
        asyncio.run(serve(int(argv[2]), routes))
        return 0
    if len(argv) >= 3 and argv[0] == "ctl":
        return ctl(int(argv[1]), argv[2:])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
