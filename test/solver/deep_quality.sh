#!/bin/bash
# The deep pass (issue #27, src/solver_deep.c) against time, beside CBC's
# answer at the same times, for make bench (test/solver/quality.sh) or alone.
# Prints key=value lines, "q.<N>_<liquidity>_<costs>.<what>":
#
#   deep_obj.b<ms>, deep_ms.b<ms>, deep_cpu.b<ms>, deep_check.b<ms>:
#       deep_bench: the real-time solve (settle_solve, its effort bound; b0),
#       then the deep pass from its selection with the clock as its only
#       bound, the whole (real-time + deep) within <ms> of CPU time
#       (DEEP_CLOCK=cpu, the default: the machine's load does not cut the
#       search) or of wall time (DEEP_CLOCK=wall); deep_clock says which;
#   cbc_curve_obj.s<s>, cbc_curve_status.s<s>, cbc_curve_bound.s<s>:
#       CBC (cbc_ref.sh, from scratch, default options) stopped after <s>
#       seconds, its selection checked and costed exactly (1,000 payments).
#
# Usage: deep_quality.sh   Environment: DEEP_BUDGETS="100 1000 10000" (1,000
# payments), DEEP_BUDGETS_10K="1000 10000", CBC_CURVE="0.1 1 10" (empty: CBC
# not run), DEEP_10K=1 (0: only the 1,000-payment instances), DEEP_CLOCK=cpu|wall.
set -euo pipefail
cd "$(dirname "$0")"
make -s deep_bench solver_model >&2
kv() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<" $1"; }
inst_key() { printf '%s_%s_%s' "$(kv "$1" n)" "$(kv "$1" liquidity)" "$(kv "$1" costs)"; }
I1K=(1000:0.05:off 1000:0.05:on 1000:0.10:off 1000:0.10:on)
I10K=(10000:0.05:off 10000:0.10:off 10000:0.10:on)

emit() {
    while read -r line; do
        case $line in deep\ *) ;; *) continue ;; esac
        k=$(inst_key "$line") b=$(kv "$line" budget_ms)
        echo "q.$k.deep_obj.b$b=$(kv "$line" objective)"
        echo "q.$k.deep_ms.b$b=$(kv "$line" ms)"
        echo "q.$k.deep_cpu.b$b=$(kv "$line" cpu_ms)"
        echo "q.$k.deep_check.b$b=$(kv "$line" check)"
        echo "q.$k.deep_rounds.b$b=$(kv "$line" rounds)"
    done
}
echo "q.deep_clock=${DEEP_CLOCK:-cpu}"
export CLOCK=${DEEP_CLOCK:-cpu}
echo "q.deep_budgets=${DEEP_BUDGETS:-100 1000 10000}"
BUDGETS=${DEEP_BUDGETS:-100 1000 10000} ./deep_bench "${I1K[@]}" | emit
if [ "${DEEP_10K:-1}" = 1 ]; then
    echo "q.deep_budgets_10k=${DEEP_BUDGETS_10K:-1000 10000}"
    BUDGETS=${DEEP_BUDGETS_10K:-1000 10000} ./deep_bench "${I10K[@]}" | emit
fi
if command -v cbc >/dev/null; then
    echo "q.cbc_curve=${CBC_CURVE-0.1 1 10}"
    for s in ${CBC_CURVE-0.1 1 10}; do
        CBC_SECONDS=$s bash cbc_ref.sh "${I1K[@]}" | while read -r line; do
            k=$(inst_key "$line")
            echo "q.$k.cbc_curve_obj.s$s=$(kv "$line" objective)"
            echo "q.$k.cbc_curve_status.s$s=$(kv "$line" status)"
            echo "q.$k.cbc_curve_bound.s$s=$(kv "$line" bound)"
        done
    done
fi
