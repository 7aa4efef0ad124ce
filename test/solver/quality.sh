#!/bin/bash
# Solver quality against an exact MIP solver, for make bench (test/bench/run.sh
# section 6) or alone.  Prints key=value lines, "q.<N>_<liquidity>_<costs>.<what>":
#
#   1. CBC (cbc_ref.sh) once per reference instance, CBC_SECONDS (60) each,
#      from scratch: its selection, checked exactly, and its proven bound;
#      and the best selections known (best_known/*.sol, CBC's own solution
#      files from longer or luckier runs), checked and costed again here.
#   2. settle_solve on every instance at 1,000 and 10,000 payments (solver_bench,
#      5,000 ms limit, REPEAT solves per run), three runs alternating with the
#      baseline: the same solver without the iterated search's kicks
#      (ILS_KICKS=0).  Per run: median CPU and wall ms of the solves.
#
#   3. the deep pass (issue #27, deep_quality.sh): quality against time (the
#      real-time solve, then 100 ms, 1 s, 10 s in all) on the 1,000- and
#      10,000-payment instances, and CBC stopped at 0.1, 1 and 10 s on the
#      1,000-payment ones (DEEP=0 skips it).
#
# The quality figures do not depend on the run (the solver is deterministic
# unless a time limit cuts it; same=no in solver_bench's line says so).
# Usage: quality.sh [out_dir]   Environment: CBC_SECONDS=60, REPEAT=21, RUNS=3,
# CBC_OUT=file (the CBC lines of an earlier run, not run again)
set -euo pipefail
cd "$(dirname "$0")"
OUT=${1:-$(mktemp -d /tmp/settle-quality.XXXXXX)}
mkdir -p "$OUT"
REPEAT=${REPEAT:-21}
RUNS=${RUNS:-3}
make -s solver_bench solver_model >&2

kv() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<"$1"; }
inst_key() { printf '%s_%s_%s' "$(kv "$1" n)" "$(kv "$1" liquidity)" "$(kv "$1" costs)"; }

# 1. CBC (CBC_OUT=file: reuse the lines of an earlier cbc_ref.sh run instead)
if [ -n "${CBC_OUT:-}" ]; then
    cp "$CBC_OUT" "$OUT/cbc.out"
elif command -v cbc >/dev/null; then
    CBC_KEEP=$OUT/cbc bash cbc_ref.sh >"$OUT/cbc.out" 2>"$OUT/cbc.err" || true
else
    echo "cbc not installed" >"$OUT/cbc.err"
    : >"$OUT/cbc.out"
fi
while read -r line; do
    case $line in cbc\ *) ;; *) continue ;; esac
    k=$(inst_key "$line")
    for f in status objective bound feasible weight settled wall_s seconds; do
        echo "q.$k.cbc_$f=$(kv "$line" $f)"
    done
done <"$OUT/cbc.out"

# 1b. the best selections known (test/solver/best_known/, from earlier CBC runs):
#     re-checked in exact integers and costed by the model in this run
for f in best_known/*.sol; do
    [ -e "$f" ] || continue
    IFS=_ read -r n liq costs <<<"$(basename "$f" .sol)"
    ev=$(./solver_model eval "$n" "$liq" "$costs" "${SEED:-42}" "$f")
    k="${n}_${liq}_${costs}"
    echo "q.$k.known_feasible=$(kv " $ev" feasible)"
    echo "q.$k.known_objective=$(kv " $ev" objective)"
    echo "q.$k.known_source=$(sed -n 's/^# source: //p' "$f" | head -1)"
done

echo "q.repeat=$REPEAT"
echo "cbc_version=$(cbc -quit 2>/dev/null | sed -n 's/^Version: *//p' | head -1 | tr -d ' ')"
# 2. settle, alternating with the solver without kicks
for r in $(seq 1 "$RUNS"); do
    ILS_KICKS=0 REPEAT=$REPEAT ./solver_bench 5000 10000 >"$OUT/base_$r.out"
    REPEAT=$REPEAT ./solver_bench 5000 10000 >"$OUT/settle_$r.out"
done
for side in base settle; do
    for r in $(seq 1 "$RUNS"); do
        while read -r line; do
            case $line in bench\ *) ;; *) continue ;; esac
            k=$(inst_key "$line")
            echo "q.$k.${side}_cpu.r$r=$(kv "$line" cpu_ms_median)"
            echo "q.$k.${side}_wall.r$r=$(kv "$line" ms_median)"
            echo "q.$k.${side}_check.r$r=$(kv "$line" check)"
            echo "q.$k.${side}_same.r$r=$(kv "$line" same)"
            if [ "$r" = 1 ]; then
                for f in objective weight weight_pct_of_lp lp_bound status settled; do
                    echo "q.$k.${side}_$f=$(kv "$line" $f)"
                done
                if [ "$side" = settle ]; then
                    for f in fifo_gross fifo_netted greedy_objective fifo_weight_pct_of_lp greedy_weight_pct_of_lp; do
                        echo "q.$k.$f=$(kv "$line" $f)"
                    done
                fi
            fi
        done <"$OUT/${side}_$r.out"
    done
done
# 3. the deep pass against time, beside CBC's curve
if [ "${DEEP:-1}" = 1 ]; then
    bash deep_quality.sh
fi
