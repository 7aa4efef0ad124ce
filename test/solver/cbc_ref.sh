#!/bin/bash
# The quality reference for the solver benchmark: each reference instance
# (workload.h, seed 42) written as a MIP (solver_model.c) and given to CBC
# (Debian coinor-cbc) for CBC_SECONDS (60) from scratch, default options; CBC's
# selection is then checked in exact integers and costed by solver_model.
# One line per instance on stdout:
#   cbc n=... liquidity=... costs=on|off seconds=... status=... objective=...
#   bound=... feasible=yes|no weight=... settled=... wall_s=...
# objective and bound are the model's (the constant sum of penalties added
# back); status is CBC's result line ("optimal", "time limit", "none").
# Usage: cbc_ref.sh [instances...]   instance = N:LIQUIDITY:on|off
#   (default: the reference instances of make bench)
# Environment: CBC_SECONDS=60, CBC_START=1 starts CBC from settle's answer
# (mipstart) instead of from scratch, SEED=42, CBC_KEEP=dir keeps the files.
set -euo pipefail
cd "$(dirname "$0")"
command -v cbc >/dev/null || { echo "cbc not installed (test/deps.sh: coinor-cbc)" >&2; exit 1; }
make -s solver_model
SECS=${CBC_SECONDS:-60}
SEED=${SEED:-42}
INSTANCES=("$@")
[ ${#INSTANCES[@]} -gt 0 ] || INSTANCES=(1000:0.05:off 1000:0.05:on 1000:0.10:off 1000:0.10:on 10000:0.05:off 10000:0.10:off 10000:0.10:on)
TMP=${CBC_KEEP:-$(mktemp -d /tmp/settle-cbc.XXXXXX)}
mkdir -p "$TMP"
[ -n "${CBC_KEEP:-}" ] || trap 'rm -rf "$TMP"' EXIT
for inst in "${INSTANCES[@]}"; do
    IFS=: read -r n liq costs <<<"$inst"
    base=$TMP/m_${n}_${liq}_${costs}
    rm -f "$base.sol"
    if [ "${CBC_START:-0}" = 1 ]; then
        constant=$(./solver_model write "$n" "$liq" "$costs" "$SEED" "$base.mps" "$base.start" | sed -n 's/^constant=\([^ ]*\).*/\1/p')
        startcmd=(mipstart "$base.start")
    else
        constant=$(./solver_model write "$n" "$liq" "$costs" "$SEED" "$base.mps" | sed -n 's/^constant=\([^ ]*\).*/\1/p')
        startcmd=()
    fi
    t0=$(date +%s.%N)
    # CBC's default options (sequential); "threads 1" takes another search path
    cbc "$base.mps" "${startcmd[@]}" sec "$SECS" solve solu "$base.sol" >"$base.log" 2>&1 || true
    wall=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
    result=$(sed -n 's/^Result - //p' "$base.log" | head -1)
    case $result in
        Optimal*) status=optimal ;;
        Stopped\ on\ time*) status="time_limit" ;;
        *) status=none ;;
    esac
    obj=$(sed -n 's/^Objective value:[[:space:]]*\([-0-9.e+]*\).*/\1/p' "$base.log" | head -1)
    bound=$(sed -n 's/^Lower bound:[[:space:]]*\([-0-9.e+]*\).*/\1/p' "$base.log" | head -1)
    # an optimal run prints no "Lower bound" line: its bound is its objective
    [ -n "$bound" ] || bound=$obj
    if [ -s "$base.sol" ] && ! grep -q -i "infeasible\|no feasible" "$base.sol"; then
        ev=$(./solver_model eval "$n" "$liq" "$costs" "$SEED" "$base.sol")
    else
        ev="feasible=no violated=-1 objective=nan weight=nan settled=0"
        status=none
    fi
    awk -v c="$constant" -v o="${obj:-nan}" -v b="${bound:-nan}" -v n="$n" -v l="$liq" -v k="$costs" \
        -v s="$SECS" -v st="$status" -v ev="$ev" -v wall="$wall" -v start="${CBC_START:-0}" 'BEGIN {
        split(ev, f, " "); for (i in f) { split(f[i], kv, "="); e[kv[1]] = kv[2] }
        # no solution from CBC (its objective 1e+50): nothing to check
        if (o == "nan" || o + 0 > 1e49) { st = "none"; e["feasible"] = "no"; e["weight"] = "nan"; e["settled"] = 0 }
        # the exact objective of the checked selection, not CBC own figure
        printf "cbc n=%d liquidity=%.2f costs=%s seconds=%s start=%s status=%s objective=%s cbc_objective=%s bound=%s feasible=%s weight=%s settled=%s wall_s=%s\n",
            n, l, k, s, (start == 1 ? "settle" : "scratch"), st, (st == "none" ? "nan" : e["objective"]),
            (o == "nan" || o + 0 > 1e49 ? "nan" : sprintf("%.2f", c + o)),
            (b == "nan" || b + 0 > 1e49 ? "nan" : sprintf("%.2f", c + b)), e["feasible"], e["weight"], e["settled"], wall }'
done
