#!/usr/bin/env python3
"""Hold docs/ARCHITECTURE.md to the code.

    architecture.py [--doc docs/ARCHITECTURE.md] [--objdir DIR]

Prints one line per problem and exits 1 if there is any:
  - a source file not named in the doc, or a file the doc names that does not exist;
  - a C file without a layer;
  - a call from a file to a file of a higher layer, or a circle of calls, that the doc does not
    list under "Known calls back up"; a listed one that no longer exists;
  - a symbol settle.so exports without the settle_ prefix (but PostgreSQL's own, the
    SQL-callable functions and those the doc lists as still to be renamed), and a C file over
    MAX_LINES lines that the doc does not list; a listed one that is gone.
Calls are read from objects with nm: file A calls file B when A uses a symbol B defines.  The
extension's objects are src/*.o (make all builds them); the gateway's files are compiled here
one by one into --objdir.
"""
import argparse
import collections
import glob
import os
import re
import subprocess
import sys

MAX_LINES = 900

SOURCES = ['src/*.c', 'src/*.h', 'include/*.h', 'src/gateway/*.c', 'src/gateway/*.h',
           'src/sql/*.sql', 'src/sql/updates/*.sql', 'tools/*']


def parse_doc(text):
    named = set(re.findall(r'`((?:src|include|tools)/[^`\s]+)`', text))
    layers = {}
    for path, layer in re.findall(r'^\| `([^`]+\.[ch])` \| (\d) \|', text, re.M):
        layers[path] = int(layer)
    known = []
    section = text.split('## Known calls back up', 1)
    if len(section) == 2:
        body = section[1].split('\n## ', 1)[0]
        for a, arrow, b, syms in re.findall(r'`(\w+) (<->|->) (\w+): ([\w, ]+)`', body):
            known.append((a, arrow, b, {s.strip() for s in syms.split(',')}))
    return named, layers, known


def listed_after(text, label):
    """The backticked names of the doc's item that starts with label (up to its full stop)."""
    m = re.search(re.escape(label) + r'(.*?)\.\s*$', text, re.M | re.S)
    return set(re.findall(r'`([^`]+)`', m.group(1))) if m else set()


def check_names(text, so, problems):
    """Exported symbols carry the settle_ prefix (docs/ARCHITECTURE.md, "Names and setup")."""
    if not os.path.exists(so):
        problems.append(f'{so}: not built (run make all first)')
        return
    out = subprocess.run(['nm', '-D', '--defined-only', so], capture_output=True, text=True, check=True).stdout
    exported = {line.split()[-1] for line in out.splitlines() if len(line.split()) == 3}
    sql_callable = {n[len('pg_finfo_'):] for n in exported if n.startswith('pg_finfo_')}
    own = {'_PG_init', 'Pg_magic_func'}
    listed = listed_after(text, 'exported without the prefix:')
    for name in sorted(exported):
        if name.startswith('settle_') or name.startswith('pg_finfo_') or name in own or name in sql_callable:
            continue
        if name not in listed:
            problems.append(f'{name}: exported by {so} without the settle_ prefix (make it static, or name it settle_...)')
    for name in sorted(listed - exported):
        problems.append(f'{name}: listed as exported without the prefix but not exported: remove it from the list')


def check_sizes(text, problems, root='.'):
    listed = listed_after(text, 'over 900 lines:')
    found = glob.glob(os.path.join(root, 'src/*.c')) + glob.glob(os.path.join(root, 'src/gateway/*.c'))
    for path in sorted(os.path.relpath(p, root) for p in found):
        with open(os.path.join(root, path)) as f:
            n = sum(1 for _ in f)
        if n > MAX_LINES and path not in listed:
            problems.append(f'{path}: {n} lines, over {MAX_LINES}: split it by concern')
        elif n <= MAX_LINES and path in listed:
            problems.append(f'{path}: listed as over {MAX_LINES} lines but has {n}: remove it from the list')
    for path in sorted(listed):
        if not os.path.exists(os.path.join(root, path)):
            problems.append(f'{path}: listed as over {MAX_LINES} lines but does not exist')


def symbols(obj):
    out = subprocess.run(['nm', '-g', obj], capture_output=True, text=True, check=True).stdout
    defined, used = set(), set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in 'TDBRCV':
            defined.add(parts[2])
        elif len(parts) == 2 and parts[0] == 'U':
            used.add(parts[1])
    return defined, used


def call_graph(objects):
    """{(caller, callee): {symbols}} over the given {module: object file}."""
    defs, uses = {}, {}
    for module, obj in objects.items():
        d, u = symbols(obj)
        uses[module] = u
        for s in d:
            defs[s] = module
    edges = collections.defaultdict(set)
    for module, used in uses.items():
        for s in used:
            owner = defs.get(s)
            if owner and owner != module:
                edges[(module, owner)].add(s)
    return edges


def gateway_objects(objdir):
    inc = subprocess.run(['pg_config', '--includedir'], capture_output=True, text=True).stdout.strip()
    pc = subprocess.run(['pkg-config', '--cflags', 'libmicrohttpd', 'gnutls', 'libxml-2.0'],
                        capture_output=True, text=True).stdout.split()
    objs = {}
    for src in sorted(glob.glob('src/gateway/*.c')):
        module = 'gateway/' + os.path.basename(src)[:-2]
        obj = os.path.join(objdir, os.path.basename(src)[:-2] + '.o')
        # -Iinclude: the gateway shares settle's pure-C rules (validate.h)
        subprocess.run(['cc', '-std=c11', '-c', '-pthread', '-Iinclude', '-I' + inc] + pc + ['-o', obj, src],
                       check=True)
        objs[module] = obj
    return objs


def has_cycle(nodes, edges):
    graph = collections.defaultdict(list)
    for a, b in edges:
        graph[a].append(b)
    state = {}

    def visit(n, path):
        state[n] = 1
        for m in graph[n]:
            if state.get(m) == 1:
                return path[path.index(m):] + [m] if m in path else [n, m]
            if m not in state:
                found = visit(m, path + [m])
                if found:
                    return found
        state[n] = 2
        return None

    for n in sorted(nodes):
        if n not in state:
            found = visit(n, [n])
            if found:
                return found
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--doc', default='docs/ARCHITECTURE.md')
    ap.add_argument('--objdir', default='/tmp')
    ap.add_argument('--so', default='settle.so')
    ap.add_argument('--size-root', default='.', help="where the C files whose size is checked are (the tests' own tree)")
    args = ap.parse_args()
    with open(args.doc) as f:
        text = f.read()
    named, layers, known = parse_doc(text)
    problems = []
    check_names(text, args.so, problems)
    check_sizes(text, problems, args.size_root)

    files = set()
    for pattern in SOURCES:
        files.update(p for p in glob.glob(pattern) if os.path.isfile(p))
    for path in sorted(files - named):
        problems.append(f'{path}: not in {args.doc}')
    for path in sorted(named):
        if not os.path.exists(path) and not path.endswith('/'):
            problems.append(f'{path}: named in {args.doc} but does not exist')
    for path in sorted(p for p in files if p.endswith('.c')):
        if path not in layers:
            problems.append(f'{path}: no layer in {args.doc}')

    def layer_of(module):
        path = 'src/' + module + '.c'
        return layers.get(path)

    objects = {}
    for src in sorted(glob.glob('src/*.c')):
        obj = src[:-2] + '.o'
        if not os.path.exists(obj):
            problems.append(f'{obj}: not built (run make all first)')
            continue
        objects[os.path.basename(src)[:-2]] = obj
    ext_edges = call_graph(objects)
    gw_edges = call_graph(gateway_objects(args.objdir))
    edges = dict(ext_edges)
    edges.update(gw_edges)

    def short(m):
        return m.split('/')[-1]

    def listed(a, b, syms):
        for ka, arrow, kb, ksyms in known:
            same = (ka, kb) == (short(a), short(b))
            rev = (kb, ka) == (short(a), short(b))
            if (same or (arrow == '<->' and rev)) and syms <= ksyms:
                return True
        return False

    remaining = {}
    for (a, b), syms in sorted(edges.items()):
        if not listed(a, b, syms):
            remaining[(a, b)] = syms
    for (a, b), syms in sorted(remaining.items()):
        la, lb = layer_of(a), layer_of(b)
        if la is not None and lb is not None and la < lb:
            problems.append(f'{short(a)} -> {short(b)}: a call up the layers ({la} -> {lb}): {", ".join(sorted(syms))}')
    circle = has_cycle({m for e in remaining for m in e}, remaining.keys())
    if circle:
        problems.append('a circle of calls: ' + ' -> '.join(short(m) for m in circle))

    # a listed exception that is gone must leave the list
    present = {(short(a), short(b)): syms for (a, b), syms in edges.items()}
    for ka, arrow, kb, ksyms in known:
        found = set(present.get((ka, kb), set()))
        if arrow == '<->':
            found |= present.get((kb, ka), set())
        if not (found & ksyms):
            problems.append(f'listed under "Known calls back up" but gone: {ka} {arrow} {kb}: remove it')

    for p in problems:
        print(p)
    print(f'# {len(files)} files, {len(edges)} calls between files, {len(known)} known exceptions')
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main())
