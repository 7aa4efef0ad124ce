#!/bin/bash
# Solver benchmark on the reference workload: N = 1k, 10k, 100k (see
# solver_bench.c for the generator).  Usage: bench.sh [time_limit_ms]
set -euo pipefail
cd "$(dirname "$0")"
OUT=$(mktemp -d /tmp/settle-solver-bench.XXXXXX)
trap 'rm -rf "$OUT"' EXIT
gcc -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -I../../include \
    solver_bench.c ../../src/solver.c -o "$OUT/solver_bench" -lglpk -lm
"$OUT/solver_bench" "${1:-5000}"
