#!/bin/bash
# Solver benchmark on the reference workload (solver_bench.c): N = 1k, 10k,
# 100k.  Usage: bench.sh [time_limit_ms [max_n]]
set -euo pipefail
cd "$(dirname "$0")"
make -s bench BENCH_ARGS="${1:-5000} ${2:-100000}"
