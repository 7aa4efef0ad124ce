#!/bin/bash
# The solver-quality part of docs/BENCHMARKS.md, from the q.* figures that
# test/solver/quality.sh wrote into the results file.  Usage:
#   report_quality.sh RESULTS summary   rows of the summary table
#   report_quality.sh RESULTS details   the section "Solver quality against CBC"
# Verdicts compare the exact figures (no rounding before the comparison); shown percentages
# are cut, never rounded in settle's favour: "% of" rounded down, "over" rounded up.
set -euo pipefail
RES=$1 MODE=$2
get() { awk -F= -v k="$1" '$1 == k { v = substr($0, length(k) + 2) } END { print v }' "$RES"; }
fmt() { awk -v v="$1" 'BEGIN { if (v !~ /^-?[0-9]+(\.[0-9]+)?$/) { print v; exit }
        s = sprintf("%.0f", v); n = split(s, p, "."); i = p[1]; o = ""; neg = (i ~ /^-/); if (neg) i = substr(i, 2)
        while (length(i) > 3) { o = "," substr(i, length(i) - 2) o; i = substr(i, 1, length(i) - 3) }
        o = i o; if (neg) o = "-" o; print o }'; }
num() { [[ $1 =~ ^-?[0-9]+(\.[0-9]+)?(e[-+]?[0-9]+)?$ ]]; }
# the per-run figures of instance k: "median (min-max)"
runs() {
    local k=$1 what=$2 v
    v=$(grep -E "^q\.$k\.${what}\.r[0-9]+=" "$RES" | sed 's/.*=//' | sort -n | tr '\n' ' ')
    awk -v s="$v" 'BEGIN { n = split(s, a, " "); if (n == 0) { print "-"; exit }
        printf "%s (%s-%s)", a[int((n + 1) / 2)], a[1], a[n] }'
}
median_of() { runs "$1" "$2" | cut -d' ' -f1; }
# the cheapest objective known for instance k: settle, settle without kicks, CBC's checked
# selection of this run, the committed best known selection (test/solver/best_known/)
best_of() {
    local k=$1 b c
    b=$(awk -v a="$(get "q.$k.settle_objective")" -v b="$(get "q.$k.base_objective")" 'BEGIN { print (a + 0 < b + 0 ? a : b) }')
    c=$(get "q.$k.cbc_objective")
    if [ "$(get "q.$k.cbc_feasible")" = yes ] && num "$c"; then
        b=$(awk -v a="$b" -v c="$c" 'BEGIN { print (c + 0 < a + 0 ? c : a) }')
    fi
    c=$(get "q.$k.known_objective")
    if [ "$(get "q.$k.known_feasible")" = yes ] && num "$c"; then
        b=$(awk -v a="$b" -v c="$c" 'BEGIN { print (c + 0 < a + 0 ? c : a) }')
    fi
    echo "$b"
}
# the deep pass (issue #27): the cheapest objective known, strictest form: best_of and every
# objective the deep pass reached in this run (so it is never judged against less than itself)
deep_best() {
    local k=$1 b v
    b=$(best_of "$k")
    for v in $(grep -E "^q\.$k\.deep_obj\.b[0-9]+=" "$RES" | sed 's/.*=//'); do
        num "$v" && b=$(awk -v a="$b" -v c="$v" 'BEGIN { print (c + 0 < a + 0 ? c : a) }')
    done
    echo "$b"
}
# (o - b) / b in percent, cut upwards (never in settle's favour), signed
over() { awk -v o="$1" -v b="$2" 'BEGIN { v = 100 * (o - b) / b * 1000; c = int(v); if (c < v) c++; printf "%+.3f", c / 1000 }'; }
# the deep pass's verdict at 1 s: within 1% of the best known (exact comparison) in <= 1,000 ms
deep_verdict() {
    local k=$1 o t b
    o=$(get "q.$k.deep_obj.b1000"); b=$(deep_best "$k")
    # the time that the budget counted (CPU time unless DEEP_CLOCK=wall)
    if [ "$(get q.deep_clock)" = wall ]; then t=$(get "q.$k.deep_ms.b1000"); else t=$(get "q.$k.deep_cpu.b1000"); fi
    num "${o:-x}" || { echo "not measured"; return; }
    [ "$(get "q.$k.deep_check.b1000")" = ok ] || { echo "**missed** (FAILED the exact check)"; return; }
    if awk -v o="$o" -v b="$b" -v t="$t" 'BEGIN { exit !(o <= 1.01 * b && t <= 1000) }'; then echo "**met**"
    else echo "**missed** ($(awk -v o="$o" -v b="$b" 'BEGIN { print (o <= 1.01 * b ? "quality met" : "quality missed") }'), $(awk -v t="$t" 'BEGIN { print (t <= 1000 ? "time met" : "time missed") }'))"; fi
}
deep_cell() {
    local k=$1 b=$2 o t
    o=$(get "q.$k.deep_obj.b$b"); t=$(get "q.$k.deep_ms.b$b")
    num "${o:-x}" || { echo "-"; return; }
    echo "$(fmt "$o") ($(over "$o" "$(deep_best "$k")")%; CPU $(get "q.$k.deep_cpu.b$b") ms, wall $t ms$( [ "$(get "q.$k.deep_check.b$b")" = ok ] || echo "; FAILED the exact check"))"
}
cbc_curve_cell() {
    local k=$1 s=$2 o st
    o=$(get "q.$k.cbc_curve_obj.s$s"); st=$(get "q.$k.cbc_curve_status.s$s")
    if [ -z "$st" ]; then echo "not run"; elif num "${o:-x}"; then echo "$(fmt "$o") ($(over "$o" "$(deep_best "$k")")%)"; else echo "none"; fi
}
INST1K="1000_0.05_off 1000_0.05_on 1000_0.10_off 1000_0.10_on"
INST="$INST1K 10000_0.05_off 10000_0.10_off 10000_0.10_on"
label() {
    local n=${1%%_*} r=${1#*_}
    printf '%s, %s%% liquidity, costs %s' "$(fmt "$n")" "$(awk -v l="${r%_*}" 'BEGIN { print l * 100 }')" "${r#*_}"
}

if [ -z "$(get q.1000_0.10_on.settle_objective)" ]; then
    if [ "$MODE" = summary ]; then
        echo "| solver quality | against CBC | not measured in this run | | | - |"
    elif [ "$MODE" != details ]; then
        echo "not measured"
    else
        printf '## Solver quality against CBC\n\nNot measured in this run (test/solver/quality.sh gave no figures).\n\n'
    fi
    exit 0
fi

if [ "$MODE" = wall_1k ] || [ "$MODE" = base_wall_1k ]; then
    side=settle; [ "$MODE" = base_wall_1k ] && side=base
    echo "$(runs 1000_0.10_on ${side}_wall) ms (CPU $(runs 1000_0.10_on ${side}_cpu) ms)"
    exit 0
fi

if [ "$MODE" = summary ]; then
    for k in $INST1K; do
        obj=$(get "q.$k.settle_objective"); best=$(best_of "$k"); wall=$(median_of "$k" settle_wall)
        ex=$(awk -v o="$obj" -v b="$best" 'BEGIN { v = 100 * (o - b) / b * 1000; c = int(v); if (c < v) c++; printf "%.3f", c / 1000 }')
        if awk -v o="$obj" -v b="$best" -v t="$wall" 'BEGIN { exit !(o <= 1.01 * b && t <= 20) }'; then
            v="**met**"
        else
            v="**missed** ($(awk -v o="$obj" -v b="$best" 'BEGIN { print (o <= 1.01 * b ? "quality met" : "quality missed") }'), $(awk -v t="$wall" 'BEGIN { print (t <= 20 ? "time met" : "time missed") }'))"
        fi
        echo "| solver quality, $(label "$k") | objective over the best known (settle, CBC 60 s); wall ms, median of 3 runs | +$ex%; $(runs "$k" settle_wall) ms (CPU $(runs "$k" settle_cpu) ms) | best known $(fmt "$best"); CBC 60 s this run: $(fmt "$(get "q.$k.cbc_objective")") ($(get "q.$k.cbc_status")) | within 1% in <= 20 ms | $v |"
    done
    for k in $INST1K; do
        [ -n "$(get "q.$k.deep_obj.b1000")" ] || continue
        echo "| deep pass, $(label "$k") | objective over the best known after the real-time solve + the deep pass, 1 s in all (CPU time unless DEEP_CLOCK=wall) | $(deep_cell "$k" 1000) | best known $(fmt "$(deep_best "$k")"); CBC 1 s: $(cbc_curve_cell "$k" 1) | within 1% in <= 1 s | $(deep_verdict "$k") |"
    done
    k=10000_0.10_on
    obj=$(get "q.$k.settle_objective"); c=$(get "q.$k.cbc_objective")
    if [ "$(get "q.$k.cbc_feasible")" = yes ] && num "$c"; then
        if awk -v o="$obj" -v c="$c" 'BEGIN { exit !(o <= c) }'; then v="**met**"; else v="**missed**"; fi
        cell="CBC 60 s: $(fmt "$c")"
    elif [ -n "$(get "q.$k.cbc_status")" ]; then
        v="**met** (CBC found no selection)"
        cell="CBC 60 s: none ($(get "q.$k.cbc_status"))"
    else
        v="not measured"
        cell="CBC not run"
    fi
    echo "| solver quality, $(label "$k") | objective (penalties of what waits + fees + spread) | $(fmt "$obj") | $cell | not worse than CBC's 60 s answer | $v |"
    exit 0
fi

cat <<END
## Solver quality against CBC

The reference instances (\`test/solver/workload.h\`, seed 42) written as the model's MIP
(\`test/solver/solver_model.c\`: docs/ALGORITHM.md's formulation, built independently of the solver,
one link \$x_i \\le y_w\$ per payment and wire, exact integer account rows) and given to CBC
($(get cbc_version), Debian \`coinor-cbc\`) for $(get "q.1000_0.10_on.cbc_seconds") s of CPU each, from scratch
(\`test/solver/cbc_ref.sh\` of the commit named above, with its CBC options; once per instance).
CBC's selection is re-checked in exact integers and costed by the model. CBC's answer after a
fixed time depends on its options (the 10%-with-costs instance: 4,092,963 with \`threads 1\`,
3,329,029 with CBC's defaults), so the best selections found so far are kept in
\`test/solver/best_known/\` (CBC's solution files, their source in the first line) and checked and
costed again by every run. *Objective*: penalties of the payments that wait + wire fees +
FX spread (lower is better). *Best known*: the cheapest of settle's, settle's without the kicks, CBC's
of this run and the committed one.
*% of best known*: best known / settle's objective; *over best known*: (settle - best known) / best
known; *% of proven bound*: CBC's proven lower bound / settle's objective; *% of LP bound (weight)*:
settled penalty weight / the solver's LP (aggregated wire rows; the old measure). settle:
\`settle_solve\`, 5,000 ms limit (never reached here); *without kicks*: the same solver with
\`settle_solver_ils_kicks = 0\` (the same solver without its iterated local search), run alternately with it, 3 runs of
$(get q.repeat) solves each; ms = median of a run's solves, shown as the median of the 3 runs (min-max).
Load average during this section: $(get load_quality).

| instance | settle objective | without kicks | CBC 60 s (status) | CBC bound | committed best known (checked) | best known | settle % of best known | over best known | settle % of proven bound | settle % of LP bound (weight) | settle wall ms | settle CPU ms | without kicks wall ms | without kicks CPU ms |
|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|
END
for k in $INST; do
    [ -n "$(get "q.$k.settle_objective")" ] || continue
    obj=$(get "q.$k.settle_objective"); best=$(best_of "$k"); bound=$(get "q.$k.cbc_bound")
    st=$(get "q.$k.cbc_status")
    if [ -z "$st" ]; then c="not run"; bound=""
    elif [ "$(get "q.$k.cbc_feasible")" = yes ]; then c="$(fmt "$(get "q.$k.cbc_objective")") ($st)"
    else c="none$( [ "$st" = none ] || echo " ($st)")"; fi
    pb=$(awk -v o="$obj" -v b="$best" 'BEGIN { v = 100 * b / o; printf "%.3f", int(v * 1000) / 1000 }')
    ex=$(awk -v o="$obj" -v b="$best" 'BEGIN { v = 100 * (o - b) / b * 1000; c = int(v); if (c < v) c++; printf "%.3f", c / 1000 }')
    if num "${bound:-x}"; then
        pbound="$(awk -v o="$obj" -v b="$bound" 'BEGIN { v = 100 * b / o; printf "%.3f", int(v * 1000) / 1000 }')%"; bcell=$(fmt "$bound")
    else
        pbound="-"; bcell="-"
    fi
    kn=$(get "q.$k.known_objective")
    if [ -z "$kn" ]; then kn="-"; elif [ "$(get "q.$k.known_feasible")" = yes ]; then kn="$(fmt "$kn")"; else kn="$(fmt "$kn") (FAILED the exact check)"; fi
    echo "| $(label "$k") | $(fmt "$obj") | $(fmt "$(get "q.$k.base_objective")") | $c | $bcell | $kn | $(fmt "$best") | $pb% | +$ex% | $pbound | $(get "q.$k.settle_weight_pct_of_lp")% | $(runs "$k" settle_wall) | $(runs "$k" settle_cpu) | $(runs "$k" base_wall) | $(runs "$k" base_cpu) |"
done
bad=$(grep -E '^q\..*_check\.r[0-9]+=' "$RES" | grep -vc '=ok$' || true)
cat <<END

Every selection of every run passed the exact limit check: $( [ "$bad" = 0 ] && echo yes || echo "NO ($bad runs failed it)").

### From naive to optimised

The same instances, the same objective. *FIFO, gross*: payments in queue order, each settled alone
if its payer can pay it now (bypass FIFO: one that does not fit is skipped), every settled payment
its own wire at each end and the spread on its own converted value. *FIFO, netted*: the same
selection netted multilaterally (each wire's fee once, the spread on each pair's net): netting
without optimisation. *Greedy*: the solver's fallback (no LP). Then the optimiser without and with
the kicks, and CBC. *Netting saves* = FIFO gross - FIFO netted; *the optimiser adds* = FIFO netted -
settle (what choosing the payments gains beyond netting those FIFO settles).

| instance | FIFO, gross | FIFO, netted | greedy | settle without kicks | settle | CBC 60 s | netting saves | the optimiser adds |
|---|---|---|---|---|---|---|---|---|
END
for k in $INST; do
    [ -n "$(get "q.$k.settle_objective")" ] || continue
    g=$(get "q.$k.fifo_gross"); nt=$(get "q.$k.fifo_netted"); obj=$(get "q.$k.settle_objective")
    c=$(get "q.$k.cbc_objective"); [ "$(get "q.$k.cbc_feasible")" = yes ] || c=-
    echo "| $(label "$k") | $(fmt "$g") | $(fmt "$nt") | $(fmt "$(get "q.$k.greedy_objective")") | $(fmt "$(get "q.$k.base_objective")") | $(fmt "$obj") | $(fmt "$c") | $(fmt "$(awk -v a="$g" -v b="$nt" 'BEGIN { printf "%.2f", a - b }')") ($(awk -v a="$g" -v b="$nt" 'BEGIN { printf "%.2f", 100 * (a - b) / a }')%) | $(fmt "$(awk -v a="$nt" -v b="$obj" 'BEGIN { printf "%.2f", a - b }')") ($(awk -v a="$nt" -v b="$obj" 'BEGIN { printf "%.2f", 100 * (a - b) / a }')%) |"
done
echo
[ -n "$(get q.1000_0.10_on.deep_obj.b0)" ] || exit 0
cat <<END
### The deep pass against time (issue #27)

\`test/solver/deep_quality.sh\` (\`deep_bench\`): per instance the real-time solve (\`settle_solve\`,
stopped by its effort bound, as in the table above), then the deep pass (\`settle_solve_deep\`,
src/solver_deep.c, docs/ALGORITHM.md "The deep pass") from its selection, one run per budget, the
budget being the time of the whole (real-time solve + deep pass), counted in $( [ "$(get q.deep_clock)" = wall ] && echo "wall time" || echo "CPU time of the process, so that the machine's load does not cut the search (wall time is shown beside it)"); the deep pass stops itself
1 ms + 1% early so that its exact check fits. Beside it CBC (same MIP as above, from scratch,
default options) stopped after 0.1, 1 and 10 s of CPU. Percentages are over the *best known* of
this section: the cheapest of the table above's best known and every selection the deep pass
reached in this run, so the deep pass is never judged against less than itself (cut upwards,
never rounded in settle's favour). Target (issue #27): within 1% of the best known within 1 s.
Load average during the quality section: $(get load_quality).

| instance | best known | real-time | deep, 100 ms | deep, 1 s | deep, 10 s | CBC 0.1 s | CBC 1 s | CBC 10 s | CBC 60 s | within 1% in <= 1 s |
|---|---|---|---|---|---|---|---|---|---|---|
END
for k in $INST1K; do
    [ -n "$(get "q.$k.deep_obj.b0")" ] || continue
    c=$(get "q.$k.cbc_objective"); if [ "$(get "q.$k.cbc_feasible")" = yes ] && num "$c"; then c="$(fmt "$c") ($(over "$c" "$(deep_best "$k")")%)"; else c="-"; fi
    echo "| $(label "$k") | $(fmt "$(deep_best "$k")") | $(deep_cell "$k" 0) | $(deep_cell "$k" 100) | $(deep_cell "$k" 1000) | $(deep_cell "$k" 10000) | $(cbc_curve_cell "$k" 0.1) | $(cbc_curve_cell "$k" 1) | $(cbc_curve_cell "$k" 10) | $c | $(deep_verdict "$k") |"
done
cat <<END

At 10,000 payments, against CBC's 60 s answer and its proven lower bound (*gap to the bound*:
(objective - bound) / bound, cut upwards):

| instance | CBC 60 s (status) | CBC bound | real-time | gap to the bound | deep, 1 s | gap to the bound | deep, 10 s | gap to the bound |
|---|---|---|---|---|---|---|---|---|
END
for k in 10000_0.05_off 10000_0.10_off 10000_0.10_on; do
    [ -n "$(get "q.$k.deep_obj.b0")" ] || continue
    bound=$(get "q.$k.cbc_bound"); c=$(get "q.$k.cbc_objective")
    [ "$(get "q.$k.cbc_feasible")" = yes ] && num "${c:-x}" && c="$(fmt "$c") ($(get "q.$k.cbc_status"))" || c="none ($(get "q.$k.cbc_status"))"
    row="| $(label "$k") | $c | $(num "${bound:-x}" && fmt "$bound" || echo -) |"
    for b in 0 1000 10000; do
        o=$(get "q.$k.deep_obj.b$b")
        if num "${o:-x}" && num "${bound:-x}"; then row="$row $(fmt "$o") (CPU $(get "q.$k.deep_cpu.b$b") ms) | $(over "$o" "$bound")% |"
        elif num "${o:-x}"; then row="$row $(fmt "$o") | - |"; else row="$row - | - |"; fi
    done
    echo "$row"
done
echo
