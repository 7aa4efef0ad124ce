#!/bin/bash
# Runs every test suite against a throwaway PostgreSQL 15 cluster and ends
# with one line "N passed, N failed".  Exits non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/.."
. test/lib/cluster.sh

passed=0
failed=0
failures=()

# Record one suite's counts: name passed failed
record() {
    passed=$((passed + $2))
    failed=$((failed + $3))
    [ "$3" -gt 0 ] && failures+=("$1")
    echo "== $1: $2 passed, $3 failed"
}

# Count pg_regress-style "... ok" / "... FAILED" lines in a log.
count_regress() {
    local log=$1 name=$2 rc=$3 ok bad
    ok=$(grep -cE '\.\.\. ok|\.\.\. ignored' "$log" || true)
    bad=$(grep -cE '\.\.\. FAILED|\.\.\. failed' "$log" || true)
    # a run that failed without per-test lines still counts as a failure
    if [ "$rc" != 0 ] && [ "$bad" = 0 ]; then bad=1; fi
    record "$name" "$ok" "$bad"
}

# Count TAP "ok N" / "not ok N" lines.
count_tap() {
    local log=$1 name=$2 rc=$3 ok bad
    ok=$(grep -cE '^ok [0-9]+' "$log" || true)
    bad=$(grep -cE '^not ok [0-9]+' "$log" || true)
    if [ "$rc" != 0 ] && [ "$bad" = 0 ]; then bad=1; fi
    record "$name" "$ok" "$bad"
}

TMP=$(mktemp -d /tmp/settle-test.XXXXXX)
chmod 755 "$TMP"
PORT=$(free_port 55432)
trap 'cluster_stop "$TMP/main" immediate; rm -rf "$TMP"' EXIT

echo "== starting PostgreSQL 15 on 127.0.0.1:$PORT"
cluster_init "$TMP/main" "$PORT" "settle.worker_enabled = off" "max_connections = 50" || exit 1
cluster_start "$TMP/main" || exit 1
export PGHOST=127.0.0.1 PGPORT=$PORT PGUSER=postgres

# 1. pg_regress (sql/, expected/)
make -s installcheck-regress >"$TMP/regress.log" 2>&1; rc=$?
cat "$TMP/regress.log"
[ $rc != 0 ] && [ -f regression.diffs ] && head -200 regression.diffs
count_regress "$TMP/regress.log" "pg_regress" $rc

# 2. isolation (test/isolation/specs)
make -s installcheck-isolation >"$TMP/isolation.log" 2>&1; rc=$?
cat "$TMP/isolation.log"
[ $rc != 0 ] && [ -f test/isolation/output_iso/regression.diffs ] && head -200 test/isolation/output_iso/regression.diffs
count_regress "$TMP/isolation.log" "isolation" $rc

# 3. script tests (test/scripts/*.sh): each prints TAP lines
for t in test/scripts/*.sh; do
    [ -e "$t" ] || continue
    name=$(basename "$t" .sh)
    # SETTLE_SKIP="a b": leave those script suites out (for local iteration only)
    case " ${SETTLE_SKIP:-} " in *" $name "*) echo "== $name: skipped (SETTLE_SKIP)"; continue ;; esac
    bash "$t" >"$TMP/$name.log" 2>&1; rc=$?
    cat "$TMP/$name.log"
    count_tap "$TMP/$name.log" "$name" $rc
done

# 4. the solver alone, and under valgrind
bash test/solver/run.sh >"$TMP/solver.log" 2>&1; rc=$?
cat "$TMP/solver.log"
count_tap "$TMP/solver.log" "solver" $rc

# 5. the fuzzer over intake's parsing and validation code (ASan + UBSan)
FUZZ_SECONDS=${FUZZ_SECONDS:-20} bash test/fuzz/run.sh >"$TMP/fuzz.log" 2>&1; rc=$?
cat "$TMP/fuzz.log"
count_tap "$TMP/fuzz.log" "fuzz" $rc

echo
[ ${#failures[@]} -gt 0 ] && echo "failed suites: ${failures[*]}"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
