"""Consistency proofs against an independent implementation (test/scripts/statement.sh).

    python3 merkle_check.py VERIFIER LEAVES.txt PROOFS.json

LEAVES.txt: the tree's leaf hashes, hex, one per line, in leaf order.
PROOFS.json: a JSON array of settle_consistency_proof() results.
Recomputes every root and every proof with RFC 9162's recursive
definitions (MTH, SUBPROOF: section 2.1.1 and 2.1.4.1, written out here
independently of the SQL), and checks each proof with the verifier's own
consistent() (section 2.1.4.2), then tampered copies of it, which must all
be rejected.  Prints one line of counts: proofs, roots_differ,
proofs_differ, rejected_genuine, tampered, tampered_accepted.
"""
import hashlib
import importlib.machinery
import json
import random
import sys

verifier = importlib.machinery.SourceFileLoader("verifier", sys.argv[1]).load_module()
leaves = [bytes.fromhex(line.strip()) for line in open(sys.argv[2]) if line.strip()]
proofs = json.load(open(sys.argv[3]))


def h(b):
    return hashlib.sha256(b).digest()


def split(n):
    k = 1
    while k * 2 < n:
        k *= 2
    return k


memo = {}


def mth(lo, hi):
    """The root of leaves lo .. hi - 1, by the recursive definition."""
    if (lo, hi) not in memo:
        n = hi - lo
        if n == 0:
            r = h(b"")
        elif n == 1:
            r = leaves[lo]
        else:
            k = split(n)
            r = h(b"\x01" + mth(lo, lo + k) + mth(lo + k, hi))
        memo[lo, hi] = r
    return memo[lo, hi]


def subproof(m, lo, hi, b):
    n = hi - lo
    if m == n:
        return [] if b else [mth(lo, hi)]
    k = split(n)
    if m <= k:
        return subproof(m, lo, lo + k, b) + [mth(lo + k, hi)]
    return subproof(m - k, lo + k, hi, False) + [mth(lo, lo + k)]


rng = random.Random(29)
counts = dict(proofs=0, roots_differ=0, proofs_differ=0, rejected_genuine=0, tampered=0, tampered_accepted=0)
for p in proofs:
    m, n = p["old"]["size"], p["new"]["size"]
    old_root, new_root = bytes.fromhex(p["old"]["root"]), bytes.fromhex(p["new"]["root"])
    path = [bytes.fromhex(x) for x in p["proof"]]
    counts["proofs"] += 1
    if old_root != mth(0, m) or new_root != mth(0, n):
        counts["roots_differ"] += 1
    expected = [] if m == 0 else subproof(m, 0, n, True)
    if path != expected:
        counts["proofs_differ"] += 1
    if not verifier.consistent(m, n, old_root, new_root, path):
        counts["rejected_genuine"] += 1
        print("# rejected: %d -> %d" % (m, n))
    bad = []
    if path:
        i = rng.randrange(len(path))
        flipped = bytearray(path[i])
        flipped[rng.randrange(32)] ^= 1 << rng.randrange(8)
        bad.append((m, n, old_root, new_root, path[:i] + [bytes(flipped)] + path[i + 1:]))
        bad.append((m, n, old_root, new_root, path[:-1]))
        if len(path) > 1:
            bad.append((m, n, old_root, new_root, path[1:] + path[:1]))
    bad.append((m, n, old_root, new_root, path + [h(b"extra")]))
    if m < n:
        other = bytearray(old_root)
        other[0] ^= 1
        bad.append((m, n, bytes(other), new_root, path))
        if m > 0:
            # (the empty tree is extended by every tree: no root to claim wrongly)
            bad.append((m, n, old_root, old_root, path))
        # (sizes are not tampered with: they are not hashed, a proof binds
        # the roots; the sizes come from the digests beside them)
    for args in bad:
        counts["tampered"] += 1
        if verifier.consistent(*args):
            counts["tampered_accepted"] += 1
            print("# tampered proof accepted: %d -> %d" % (args[0], args[1]))
print(" ".join("%s=%d" % kv for kv in counts.items()))
