#!/bin/bash
# Where a cycle's time goes (#18): the reference workload (test/bench/setup.sql)
# queued with the worker off, then one settle_run_cycle() whose DEBUG1 line
# "settle cycle stages (ms)" (src/cycle.c) gives each stage's time.  Sizes
# 10, 100 and 1,000 payments (PROFILE_SIZES), each repeated (PROFILE_REPEAT,
# 3) with settle.cycle_keep_plans off (before: every statement planned in
# every cycle) and on (after), alternating, on a fresh queue each time, all
# in one session (the worker is one long-lived process); after a warm-up
# cycle in each mode.  Prints every run and the median (range) per stage.
#   PGBIN=... bash test/bench/profile_cycle.sh
# Not part of make test.  Load is bounded: 3 x (100 + 1,000) payments.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/scratch.sh

SIZES=${PROFILE_SIZES:-10 100 1000}
REPEAT=${PROFILE_REPEAT:-3}
scratch profile_cycle
scratch_ports P 55680
scratch_cluster "$TMP/db"
cluster_init "$TMP/db" "$P" "settle.worker_enabled = off" "settle.database = postgres" || exit 1
cluster_start "$TMP/db" || exit 1
q() { cluster_psql "$P" -d postgres -At "$@"; }
q -c "CREATE EXTENSION settle" -f test/bench/setup.sql -c "SELECT bench.setup_reference()" >/dev/null || exit 1

STAGES="lock expire load accounts solve post baselines record notify outcome"
: >"$TMP/script.sql"
round=0
pair=0
for spec in 10w $SIZES; do   # 10w: the warm-up, not counted
    n=${spec%w}
    reps=$REPEAT; [ "$spec" != "$n" ] && reps=1
    for rep in $(seq 1 "$reps"); do
      pair=$((pair + 1))
      for keep in off on; do
        round=$((round + 1))
        # the queue: n payments (the same ones, by seed, for off and on), accounts funded
        # with 10% of their outflow (some wait); then one cycle; what it left is cancelled,
        # so that every run starts from an empty queue
        cat >>"$TMP/script.sql" <<SQL
SELECT bench.generate($n, $round, $pair * 0.01);
SELECT bench.fund($round, 0.10);
SELECT bench.make_docs($round, 10000);
SELECT count(*) FROM bench.bulk_doc d, settle_submit_bulk(d.doc) WHERE d.round = $round;
\\echo run $spec $keep
SET settle.cycle_keep_plans = $keep;
SET client_min_messages = debug1;
SELECT count(*) FROM settle_run_cycle();
RESET client_min_messages;
SELECT count(settle_cancel_payment(payment_id, 'profile')) FROM settle.payment WHERE status = 'queued';
SQL
      done
    done
done
# one session, as the worker is one long-lived process (warm caches)
q -f "$TMP/script.sql" >"$TMP/out.txt" 2>&1 || { tail -20 "$TMP/out.txt"; exit 1; }
awk '/^run /{n=$2 ":" $3} /settle cycle stages \(ms\): /{sub(/.*settle cycle stages \(ms\): /, ""); print n, $0}' "$TMP/out.txt" >"$TMP/runs.txt"
[ "$(wc -l <"$TMP/runs.txt")" = "$round" ] || { echo "expected $round stage lines"; tail -20 "$TMP/out.txt"; exit 1; }
sed 's/^/# N=/' "$TMP/runs.txt"
/usr/bin/python3 - "$TMP/runs.txt" $STAGES <<'PY'
import statistics, sys
stages = sys.argv[2:]
runs = {}
for line in open(sys.argv[1]):
    w = line.split()
    size, keep = w[0].split(":")
    if size.endswith("w"):
        continue
    d = dict(zip(w[1::2], w[2::2]))
    runs.setdefault((int(size), keep == "on"), []).append(d)
print("| N | plans kept | considered | settled | " + " | ".join(stages) + " | total |")
print("|---" * (len(stages) + 5) + "|")
for (n, keep), rs in sorted(runs.items()):
    cells = []
    tot = [sum(float(r[s]) for s in stages) for r in rs]
    for s in stages:
        v = [float(r[s]) for r in rs]
        cells.append("%.2f (%.2f-%.2f)" % (statistics.median(v), min(v), max(v)))
    print("| %d | %s | %s | %s | %s | %.2f (%.2f-%.2f) |" % (
        n, "on" if keep else "off", rs[0]["considered"], statistics.median(int(r["settled"]) for r in rs), " | ".join(cells),
        statistics.median(tot), min(tot), max(tot)))
PY
