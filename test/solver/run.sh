#!/bin/bash
# Builds and runs the standalone solver tests, then again under valgrind
# (every path must free what it allocates).  Prints TAP.
set -uo pipefail
cd "$(dirname "$0")"
OUT=$(mktemp -d /tmp/settle-solver.XXXXXX)
trap 'rm -rf "$OUT"' EXIT
gcc -std=c11 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Werror -I../../include \
    solver_test.c ../../src/solver.c -o "$OUT/solver_test" -lglpk -lm || { echo "not ok 1 - build"; exit 1; }
"$OUT/solver_test"
rc=$?
if command -v valgrind >/dev/null; then
    valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect --error-exitcode=99 \
        "$OUT/solver_test" >"$OUT/vg.out" 2>"$OUT/vg.err"
    vrc=$?
    if [ $vrc = 99 ]; then
        echo "not ok 21 - valgrind: no invalid access, no leak"
        head -40 "$OUT/vg.err"
        rc=1
    else
        echo "ok 21 - valgrind: no invalid access, no leak (all tests again under memcheck)"
    fi
fi
exit $rc
