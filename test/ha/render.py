#!/usr/bin/env python3
"""Render a template: every ${VAR} or ${VAR:-default} is replaced by the
environment's VAR, or by the default when VAR is unset or empty.  A ${VAR}
with neither is an error, so a forgotten setting never renders as "".

    render.py TEMPLATE > OUTPUT

Used for test/ha/patroni.yml.in by the native harness (test/ha/lib.sh) and by
the container entrypoint (docker/entrypoint.sh): one source of Patroni settings.
"""
import os
import re
import sys

PATTERN = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def render(text, env):
    missing = []

    def sub(m):
        value = env.get(m.group(1))
        if value:
            return value
        if m.group(2) is not None:
            return m.group(2)
        missing.append(m.group(1))
        return ""

    out = PATTERN.sub(sub, text)
    if missing:
        raise SystemExit("render.py: no value for " + ", ".join(sorted(set(missing))))
    return out


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: render.py TEMPLATE")
    with open(sys.argv[1]) as f:
        sys.stdout.write(render(f.read(), os.environ))
