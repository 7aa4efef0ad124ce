#!/usr/bin/python3
"""Decode what pg_recvlogical wrote with the pgoutput plugin (protocol 1) into
one line per message: BEGIN, COMMIT, or for an insert "schema.table" and the
new row's columns, tab-separated (NULL as \\N).  With --first, only the first
column, after a space (test/scripts/stream.sh).  Standard library only.
Usage: pgoutput.py [--first] FILE"""
import struct
import sys

first = sys.argv[1] == "--first"
data = open(sys.argv[-1], "rb").read()
pos = 0
rel = {}


def cstring():
    global pos
    end = data.index(b"\0", pos)
    s = data[pos:end].decode()
    pos = end + 1
    return s


while pos < len(data):
    kind = data[pos:pos + 1]
    pos += 1
    if kind == b"B":
        pos += 20
        print("BEGIN")
    elif kind == b"C":
        pos += 25
        print("COMMIT")
    elif kind == b"R":
        relid = struct.unpack(">I", data[pos:pos + 4])[0]
        pos += 4
        ns = cstring()
        name = cstring()
        pos += 1
        natts = struct.unpack(">h", data[pos:pos + 2])[0]
        pos += 2
        for _ in range(natts):
            pos += 1
            cstring()
            pos += 8
        rel[relid] = ns + "." + name
    elif kind == b"Y":
        pos += 4
        cstring()
        cstring()
    elif kind == b"O":
        pos += 8
        cstring()
    elif kind == b"I":
        relid = struct.unpack(">I", data[pos:pos + 4])[0]
        pos += 5
        ncols = struct.unpack(">h", data[pos:pos + 2])[0]
        pos += 2
        cols = []
        for _ in range(ncols):
            k = data[pos:pos + 1]
            pos += 1
            if k == b"t":
                n = struct.unpack(">i", data[pos:pos + 4])[0]
                pos += 4
                cols.append(data[pos:pos + n].decode())
                pos += n
            else:
                cols.append("\\N")
        if first:
            print(rel[relid], cols[0])
        else:
            print("\t".join([rel[relid]] + cols))
    else:
        sys.exit("unexpected message %r at %d" % (kind, pos - 1))
    # pg_recvlogical ends every message with a newline
    assert data[pos:pos + 1] == b"\n", pos
    pos += 1
