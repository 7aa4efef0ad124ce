#!/bin/bash
# Keep a selection as the best known for an instance (best_known/N_LIQ_COSTS.sol)
# if it passes the exact check and is cheaper than the one kept so far.
# Usage: keep_best.sh N:LIQUIDITY:on|off SOLUTION "source (solver, time, date)"
# SOLUTION is a CBC solution file (cbc ... solu FILE); only its x columns at 1
# are kept, as "index name value" lines after a "# source:" line.
set -euo pipefail
cd "$(dirname "$0")"
IFS=: read -r n liq costs <<<"$1"
sol=$2 source=$3
liq=$(awk -v l="$liq" 'BEGIN { printf "%.2f", l }')
make -s solver_model
ev=$(./solver_model eval "$n" "$liq" "$costs" "${SEED:-42}" "$sol")
kv() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<" $1"; }
[ "$(kv "$ev" feasible)" = yes ] || { echo "not kept: $ev"; exit 1; }
obj=$(kv "$ev" objective)
dest=best_known/${n}_${liq}_${costs}.sol
if [ -e "$dest" ]; then
    old=$(kv "$(./solver_model eval "$n" "$liq" "$costs" "${SEED:-42}" "$dest")" objective)
    if awk -v a="$obj" -v b="$old" 'BEGIN { exit !(a + 0 >= b + 0) }'; then
        echo "not kept: $obj is not below the kept $old"
        exit 0
    fi
fi
{
    echo "# source: $source; objective $obj (solver_model eval)"
    awk '$2 ~ /^x[0-9]+$/ && $3 + 0 > 0.5 { print $1, $2, 1 }' "$sol"
} >"$dest"
echo "kept $dest: objective $obj"
