#!/bin/bash
# Writes docs/BENCHMARKS.md and docs/img/bench_*.svg from the results of
# test/bench/run.sh.  Usage: report.sh RESULTS SETTINGS DOCDIR WORKDIR
# (rewrite the doc from the last run's figures:
#  bash test/bench/report.sh docs/img/bench_results.txt docs/img/bench_settings.txt docs "$(mktemp -d)")
set -euo pipefail
RES=$1 SETTINGS=$2 DOCDIR=$3 WORK=$4
BENCH=$(cd "$(dirname "$0")" && pwd)
IMG=$DOCDIR/img
mkdir -p "$IMG"

get() { awk -F= -v k="$1" '$1 == k { v = substr($0, length(k) + 2) } END { print v }' "$RES"; }
calc() { awk "BEGIN { printf \"$1\", $2 }"; }
# thousands separators
fmt() { awk -v v="$1" 'BEGIN { if (v !~ /^-?[0-9]+(\.[0-9]+)?$/) { print v; exit }
        s = sprintf("%.0f", v); if (v != int(v) && v < 100) s = v;
        n = split(s, p, "."); i = p[1]; o = ""; neg = (i ~ /^-/); if (neg) i = substr(i, 2)
        while (length(i) > 3) { o = "," substr(i, length(i) - 2) o; i = substr(i, 1, length(i) - 3) }
        o = i o; if (neg) o = "-" o; if (n > 1) o = o "." p[2]; print o }'; }
verdict() { if awk "BEGIN { exit !($1) }"; then echo "**met**"; else echo "**missed**"; fi; }
# "other work": cores kept busy by processes outside this benchmark during a section
other() { local v; v=$(get "cpu_other.$1"); [ -n "$v" ] && echo "$v of $(get cores) cores were busy with processes outside the benchmark" || echo "not measured"; }
# a percentage of the LP bound; -1 means no LP finished in time
pct() { case $1 in -1*) echo "n/a (no LP in time)" ;; *) echo "$1" ;; esac; }
have() { [ -n "$(get "$1")" ] && [ "$(get "$1")" != "n/a" ]; }

CYCLE_NS=$(awk -F'[_.=]' '/^cycle_[0-9]+\.considered=/ { print $2 }' "$RES" | sort -n | tr '\n' ' ')

# ---------------------------------------------------------------- plots
PLOTS=""
if command -v gnuplot >/dev/null 2>&1; then
    : >"$WORK/cycle.dat"
    for n in $CYCLE_NS; do
        l=0.10
        sm=$(get "solver_${n}_${l}_on.ms")
        echo "$n $(get "cycle_$n.cms") $(get "cycle_$n.sms") $(get "cycle_$n.base_ms") ${sm:-NaN}" >>"$WORK/cycle.dat"
    done
    gnuplot <<EOF
set terminal svg size 720,520 dynamic font "sans,12" background rgb "white"
set output "$IMG/bench_cycle.svg"
set termoption noenhanced
set arrow from 500,1000 to 200000,1000 nohead dt 4 lc rgb "gray40"
set label "1 s (target at N = 10,000)" at 12000,1250 tc rgb "gray40"
set title "One settlement cycle against the queue size N (reference workload, 10% liquidity, costs on)"
set logscale xy
set xlabel "queued payments N"
set ylabel "milliseconds"
set key below samplen 3
set bmargin 9
set grid
set xrange [500:200000]
plot "$WORK/cycle.dat" using 1:2 with linespoints lw 2 pt 7 title "settle cycle (settle_run_cycle)", \
     "" using 1:3 with linespoints lw 2 pt 5 title "solver inside the cycle", \
     "" using 1:5 with linespoints lw 2 pt 9 dt 2 title "solver alone (test/solver, same generator)", \
     "" using 1:4 with linespoints lw 2 pt 13 dt 3 title "baseline: PL/pgSQL transfer per payment, 8 clients"
EOF
    cat >"$WORK/intake.dat" <<EOF
"8 clients" $(get intake_settle_8.tps) $(get intake_plain_8.tps)
"32 clients" $(get intake_settle_32.tps) $(get intake_plain_32.tps)
EOF
    gnuplot <<EOF
set terminal svg size 560,420 dynamic font "sans,12" background rgb "white"
set output "$IMG/bench_intake.svg"
set termoption noenhanced
set title "Single-row intake, transactions per second (pgbench, prepared)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set yrange [0:*]
set ylabel "TPS"
set grid ytics
set key below
plot "$WORK/intake.dat" using 2:xtic(1) title "settle_submit", "" using 3 title "plain INSERT ... ON CONFLICT"
EOF
    # latency against savings at the swept batching windows (and the pacer's own choice)
    if [ -n "$(get sweep_windows)" ]; then
        : >"$WORK/sweep.dat"
        for w in $(get sweep_windows); do
            have "sweep_$w.s_p95.med" || continue
            echo "$(get "sweep_$w.s_saved.med") $(get "sweep_$w.s_p50.med") $(get "sweep_$w.s_p95.med") $(get "sweep_$w.s_p99.med") \"$w ms\"" >>"$WORK/sweep.dat"
        done
        sr=$(get sweep_rate)
        echo "$(get "e2e_$sr.s_saved.med") $(get "e2e_$sr.s_p50.med") $(get "e2e_$sr.s_p95.med") $(get "e2e_$sr.s_p99.med") \"pacer\"" >"$WORK/sweep_pacer.dat"
        gnuplot <<EOF
set terminal svg size 720,520 dynamic font "sans,12" background rgb "white"
set output "$IMG/bench_tradeoff.svg"
set termoption noenhanced
set title "Submit-to-settled latency against savings at $sr payments/s (open loop, fsync on)"
set xlabel "saved against naive batching, % (fees and spread of the run's cycles)"
set ylabel "submit-to-settled, ms (median of $(get sweep_rounds) rounds)"
set key below samplen 3
set bmargin 9
set grid
set yrange [0:*]
set arrow from graph 0, first 100 to graph 1, first 100 nohead dt 4 lc rgb "gray40"
set label "P95 target 100 ms" at graph 0.02, first 106 tc rgb "gray40"
set arrow from 25, graph 0 to 25, graph 1 nohead dt 4 lc rgb "gray40"
plot "$WORK/sweep.dat" using 1:3 with linespoints lw 2 pt 7 title "P95, fixed batching window", \
     "" using 1:3:5 with labels offset 1.5,0.8 notitle, \
     "" using 1:4 with linespoints lw 1 pt 6 dt 2 title "P99, fixed batching window", \
     "" using 1:2 with linespoints lw 1 pt 4 dt 3 title "P50, fixed batching window", \
     "$WORK/sweep_pacer.dat" using 1:3 with points pt 9 ps 2 lc rgb "red" title "P95, default settings (the pacer chooses)", \
     "" using 1:4 with points pt 8 ps 2 lc rgb "red" title "P99, default settings"
EOF
    fi
    PLOTS=yes
fi

# ---------------------------------------------------------------- figures
r8=$(get intake_ratio_8); r32=$(get intake_ratio_32)
bulk=$(get bulk_settle_rate)
c10=$(get cycle_10000.cms)
# the 20 ms target holds for every reference instance at 1,000 payments: the slowest one's
# median wall time (median of the runs) decides
s1k=none
for k in 1000_0.05_off 1000_0.05_on 1000_0.10_off 1000_0.10_on; do
    m=$(awk -F= -v k="$k" '$1 ~ "^q\\." k "\\.settle_wall\\.r[0-9]+$" { print $2 }' "$RES" | sort -n | awk '{ v[NR] = $1 } END { print (NR ? v[int((NR + 1) / 2)] : "none") }')
    [ "$m" = none ] && continue
    if [ "$s1k" = none ] || awk -v a="$m" -v b="$s1k" 'BEGIN { exit !(a + 0 > b + 0) }'; then s1k=$m; s1k_inst=$k; fi
done
# the most other work seen in any section: above 0.2 cores the run was disturbed
busy=$(awk -F= '/^cpu_other\./ { if ($2 + 0 > m) m = $2 + 0 } END { printf "%.2f", m + 0 }' "$RES")
rng() { echo "$(get "$1.min")-$(get "$1.max")"; }    # range over the rounds
save=""; lp=""
for n in $CYCLE_NS; do save="$save$(get "cycle_$n.saved")% (N=$(fmt "$n")), "; done
save=${save%, }
savenet=""
for n in $CYCLE_NS; do savenet="$savenet$(get "cycle_$n.saved_net")% (N=$(fmt "$n")), "; done
savenet=${savenet%, }
slp=$(get solver_10000_0.10_on.weight_pct_of_lp)
dblp=$(get cycle_10000.lp)
postr=$(get post.ratio.med)

# verdicts on unrounded ratios (the ratios shown are rounded to 2 decimals): median over the
# rounds of settle TPS / plain TPS, and of the posting rates
med_ratio() {   # num_key den_key rounds
    for r in $(seq 1 "$3"); do
        awk -v a="$(get "${1/R/r$r}")" -v b="$(get "${2/R/r$r}")" 'BEGIN { if (b > 0) printf "%.9f\n", a / b }'
    done | sort -g | awk '{ v[NR] = $1 } END { print (NR ? v[int((NR + 1) / 2)] : 0) }'
}
IR=$(get intake_rounds); IR=${IR:-1}
PR=$(get post_rounds); PR=${PR:-1}
r8x=$(med_ratio intake_settle_8.R.tps intake_plain_8.R.tps "$IR")
r32x=$(med_ratio intake_settle_32.R.tps intake_plain_32.R.tps "$IR")
postrx=$(med_ratio post.settle_rate.R post.base_rate.R "$PR")
intake_v=$(verdict "$r8x >= 0.8 && $r32x >= 0.8")
bulk_v=$(verdict "$bulk >= 100000 || $(get bulk2_settle_rate) >= 100000")
cycle_v=$(verdict "${c10:-1e9} <= 1000")
solver_v=$( [ "$s1k" = none ] && echo "not measured" || verdict "$s1k <= 20")
minsave=$(for n in $CYCLE_NS; do get "cycle_$n.saved"; done | sort -n | head -1)
opt_v=$(verdict "$minsave >= 25")
lp_v=$(verdict "$slp >= 99")
post_v=$(verdict "$postrx >= 2")

if have verify.rate; then
    verify_cell="$(fmt "$(get verify.rate)") entries/s ($(fmt "$(get verify.entries)") entries, $(fmt "$(get verify.ms)") ms, $(get verify.problems) problems)$(have verify.seal_ms && echo "; sealing them first: $(fmt "$(get verify.seal_ms)") ms")"
    verify_v="reported"
else
    verify_cell="not available yet (settle_verify() not installed)"
    verify_v="-"
fi

{
cat <<EOF
# Benchmarks

Generated by \`make bench\` (\`test/bench/run.sh\`) on $(get date); do not edit by hand, run it
again. Every speed figure is shown next to its baseline, measured in the same run, on the same
cluster, with the same settings and the same amount of work.

$(awk -v b="$busy" 'BEGIN { exit !(b > 0.2) }' && printf '%s\n\n' "**Disturbed run**: other processes kept up to $busy of the $(get cores) cores busy during a section (\"other work\" below); every figure of this run is preliminary. Run \`make bench\` again on a quiet machine.")

## Conditions

| | |
|---|---|
| date | $(get date) |
| machine | $(get host): $(get cpu), **$(get cores) cores**, $(get mem) RAM, Linux $(get kernel) |
| load average (1, 5, 15 min) | at start $(get load_start); at end $(get load_end) (includes the benchmark itself) |
| other work during the run | CPU used by processes outside the benchmark, in cores (of $(get cores)), measured per section: intake $(get cpu_other.intake), bulk $(get cpu_other.bulk), cycles $(for n in $CYCLE_NS; do printf '%s ' "$(get cpu_other.cycle_$n)"; done| sed 's/ $//'), posting $(get cpu_other.post), verify $(get cpu_other.verify), solver $(get cpu_other.solver), solver quality (CBC) $(get cpu_other.quality), end to end $(for r in $(get e2e_rates); do printf '%s/s: %s ' "$r" "$(get "cpu_other.e2e_$r")"; done | sed 's/ $//'). Above ~0.2 the figures of that section are disturbed. |
| PostgreSQL | $(get pg), throwaway cluster started by the benchmark on 127.0.0.1 (TCP), clients on the same machine |
| GLPK | $(get glpk) |
| settle | commit $(get commit) (the commit that adds this file comes after it) |
| duration of \`make bench\` | $(get duration_s) s (without the build) |

Server settings (everything else is PostgreSQL's default; **fsync and synchronous_commit on**,
every transaction is flushed to disk before it is acknowledged):

| setting | value |
|---|---|
EOF
sed 's/^\(.*\) = \(.*\)$/| `\1` | \2 |/' "$SETTINGS"
cat <<EOF

## Summary

| benchmark | measure | settle | baseline (same run) | target | |
|---|---|---|---|---|---|
| intake, single row | \`settle_submit\` TPS, pgbench prepared, 8 / 32 clients; p50 / p99 latency | 8: $(fmt "$(get intake_settle_8.tps)") TPS, $(get intake_settle_8.p50) / $(get intake_settle_8.p99) ms; 32: $(fmt "$(get intake_settle_32.tps)") TPS, $(get intake_settle_32.p50) / $(get intake_settle_32.p99) ms | plain INSERT ... ON CONFLICT, same indexes: 8: $(fmt "$(get intake_plain_8.tps)") TPS, $(get intake_plain_8.p50) / $(get intake_plain_8.p99) ms; 32: $(fmt "$(get intake_plain_32.tps)") TPS, $(get intake_plain_32.p50) / $(get intake_plain_32.p99) ms | ratio >= 0.8 | ratio, median of $(get intake_rounds) rounds alternating: $r8 ($(rng intake_ratio_8)) / $r32 ($(rng intake_ratio_32)): $intake_v |
| intake, bulk | payments/s through \`settle_submit_bulk\` (full validation, idempotency), arrays of 10,000; median of $(get bulk_rounds) rounds alternating with the baseline (range) | 1 session: $(fmt "$bulk")/s ($(rng bulk_settle_rate)); 2 sessions: $(fmt "$(get bulk2_settle_rate)")/s ($(rng bulk2_settle_rate)) (replaying the same arrays: $(fmt "$(get bulk_replay_rate)")/s) | plain INSERT ... SELECT FROM jsonb_to_recordset ... ON CONFLICT: 1 session $(fmt "$(get bulk_plain_rate)")/s, 2 sessions $(fmt "$(get bulk2_plain_rate)")/s | >= 100,000/s | $bulk_v (ratio to plain $(get bulk_ratio) ($(rng bulk_ratio)) / $(get bulk2_ratio) ($(rng bulk2_ratio))) |
EOF
for n in $CYCLE_NS; do
    echo "| cycle, N = $(fmt "$n") | one \`settle_run_cycle()\`, solver's share; median of $(get cycle_rounds) rounds alternating with the baseline (range) | $(fmt "$(get "cycle_$n.cms")") ($(rng "cycle_$n.cms")) ms, solver $(get "cycle_$n.sms") ms ($(get "cycle_$n.solver_share")%); $(fmt "$(get "cycle_$n.settled")") settled | gross settlement, PL/pgSQL transfer per payment, 8 clients: $(fmt "$(get "cycle_$n.base_ms")") ($(rng "cycle_$n.base_ms")) ms for $(fmt "$(get "cycle_$n.base_posted")") posted | $( [ "$n" = 10000 ] && echo '10k in <= 1 s' || echo report ) | $( [ "$n" = 10000 ] && echo "$cycle_v" || echo reported ) |"
done
cat <<EOF
| solver | model build + solve, 1,000 queued payments, wall ms: median of 3 runs (each the median of $(get q.repeat) solves), range; 10% liquidity with costs shown, the verdict on the slowest of the four reference instances ($( [ "$s1k" = none ] && echo none || echo "${s1k_inst//_/ }: $s1k ms")) | $(bash "$BENCH/report_quality.sh" "$RES" wall_1k) | the same solver without its kicks (ILS off), alternating with it: $(bash "$BENCH/report_quality.sh" "$RES" base_wall_1k); greedy fallback alone: $(get solver_1000_0.10_on.greedy_ms) ms | <= 20 ms on every instance | $solver_v |
EOF
bash "$BENCH/report_quality.sh" "$RES" summary
# issue #18's targets: P95 < 50 ms at 500/s; P95 < 100 ms, P99 < 200 ms and >= 25% saved at 2,000/s
lt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a != "" && a + 0 < b + 0) }'; }
ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a != "" && a + 0 >= b + 0) }'; }
for rate in $(get e2e_rates); do
    p95=$(get "e2e_$rate.s_p95.med"); p99=$(get "e2e_$rate.s_p99.med"); saved=$(get "e2e_$rate.s_saved.med")
    case "$rate" in
        500) target="P95 < 50 ms"
             if lt "$p95" 50; then e2e_v="met"; else e2e_v="missed (P95 $p95 ms)"; fi ;;
        2000) target="P95 < 100 ms, P99 < 200 ms, saved >= 25%"
              e2e_v=""
              lt "$p95" 100 && e2e_v+="P95 met" || e2e_v+="P95 missed ($p95 ms)"
              lt "$p99" 200 && e2e_v+=", P99 met" || e2e_v+=", P99 missed ($p99 ms)"
              ge "$saved" 25 && e2e_v+=", saved met" || e2e_v+=", saved missed ($saved%)" ;;
        *) target="report"; e2e_v="reported" ;;
    esac
    echo "| end to end, open loop | $rate/s offered (pgbench --rate, 8 clients), worker on, default pacing (woken by commits; heartbeat \`cycle_interval\` $(get e2e_interval) ms): submitted/s; submit-to-settled p50 / p95 / p99 (database timestamps), to a listener's receipt of \`settle_settled\` p95 / p99; schedule lag p99; saved against naive batching; median of $(get e2e_rounds) rounds (range) | $(fmt "$(get "e2e_$rate.tps.med")")/s; $(get "e2e_$rate.s_p50.med") / $p95 ($(rng "e2e_$rate.s_p95")) / $p99 ($(rng "e2e_$rate.s_p99")) ms; listener $(get "e2e_$rate.r_p95.med") / $(get "e2e_$rate.r_p99.med") ms; lag p99 $(get "e2e_$rate.lag_p99.med") ($(rng "e2e_$rate.lag_p99")) ms; saved $saved% ($(rng "e2e_$rate.s_saved")); gathering $(get "e2e_$rate.pace_ms.med") ms | submit alone, same rate, worker off: $(fmt "$(get "e2e_base_$rate.tps.med")")/s, p50 / p99 $(get "e2e_base_$rate.p50.med") / $(get "e2e_base_$rate.p99.med") ms, lag p99 $(get "e2e_base_$rate.lag_p99.med") ms; before issue #18 (worker polling, figures of an earlier \`make bench\` quoted by the issue): 1 s interval p50 / p95 / p99 870 / 1,555 / 1,879 ms, 100 ms interval 175 / 314 / 351 ms | $target (issue #18) | $e2e_v |"
done
mr=$(get maxrate)
if [ -n "$mr" ]; then
    if [ "$mr" = 0 ]; then
        mr_cell="none of the steps ($(get maxrate_steps | sed 's/ /, /g')/s)"
    else
        last=$(get maxrate_steps | awk '{ print $NF }')
        if [ "$mr" = "$last" ]; then nxt="every step kept up with: the highest tried"
        else nxt="the next step, $(get maxrate_steps | tr ' ' '\n' | awk -v m="$mr" 'f { print; exit } $1 == m { f = 1 }')/s, was not"; fi
        mr_cell="$(fmt "$mr")/s (steps $(get maxrate_steps | sed 's/ /, /g')/s; $nxt): submitted $(fmt "$(get "maxrate_$mr.tps.med")")/s, p50 / p95 / p99 $(get "maxrate_$mr.s_p50.med") / $(get "maxrate_$mr.s_p95.med") ($(rng "maxrate_$mr.s_p95")) / $(get "maxrate_$mr.s_p99.med") ms, saved $(get "maxrate_$mr.s_saved.med")%, gathering $(get "maxrate_$mr.pace_ms.med") ms, median of 3 runs"
    fi
    echo "| end to end, highest rate | the highest offered rate the worker keeps up with: >= 95% of the offered rate submitted, less than half a second of arrivals queued at the end of the load | $mr_cell | - | report (issue #18) | reported |"
fi
cat <<EOF
| optimisation | fees and spread saved against naive batching (database, reference workload); mostly netting by definition: against netting FIFO's payments in the same cycles: $savenet; what the optimiser adds on its own is in "Optimisation", "Solver quality against CBC", "From naive to optimised" | $save | naive batching of the same payments (one pay-in and one pay-out wire per participant and currency, spread on gross) | >= 25% | $opt_v |
| optimisation | settled weight against the LP bound, 10,000 payments (solver, 10% liquidity, costs on); in the database | $slp% (database cycle: $dblp%) | FIFO: $(get solver_10000_0.10_on.fifo_weight_pct_of_lp)%, greedy: $(get solver_10000_0.10_on.greedy_weight_pct_of_lp)% | >= 99% | $lp_v |
| posting | payments posted per second (2 legs each + one counter-entry per wire), median of $(get post_rounds) rounds (range) | $(fmt "$(get post.settle_rate.med)")/s (cycle time outside the solver; $(fmt "$(get post.settle_rate_wall.med)")/s on the client's wall time of the whole cycle call) | PL/pgSQL transfer, one per transaction, 8 clients: $(fmt "$(get post.base_rate.med)")/s; set-based plain SQL, all legs in one transaction: $(fmt "$(get post.set_rate.med)")/s | ratio to the transfer >= 2 | ratio $postr ($(rng post.ratio)): $post_v; to set-based SQL $(get post.ratio_set.med) ($(rng post.ratio_set)), whole call $(get post.ratio_wall_set.med) ($(rng post.ratio_wall_set)) |
| verify | ledger entries verified per second, >= 1M entries | $verify_cell | - | report | $verify_v |

EOF

# ---------------------------------------------------------------- details
cat <<EOF
## Intake, single row

\`test/bench/submit.pgb\` against \`test/bench/insert.pgb\`: pgbench \`-M prepared\`, $(get intake_settle_8.n) and
$(get intake_plain_8.n) transactions at 8 clients; each transaction submits one new payment (random participants,
currency and amount; unique keys). The baseline writes the same values into \`bench.payment_plain\`,
created \`LIKE settle.payment INCLUDING ALL\` (same columns, types, defaults, checks, both unique indexes
and the partial queue index), with \`INSERT ... ON CONFLICT DO NOTHING RETURNING payment_id\`.
What settle does more: validates every field (currency, amount and its minor units, accounts and their
owner, participants' status), writes the \`submitted\` event in \`settle.event\`, checks the key for a
replay. Order of the runs: plain 8, settle 8, settle 32, plain 32 (each after a 3 s warm-up).
Meanwhile $(other intake).

| clients | settle TPS | p50 ms | p99 ms | plain TPS | p50 ms | p99 ms | ratio | failed |
|---|---|---|---|---|---|---|---|---|
| 8 | $(fmt "$(get intake_settle_8.tps)") | $(get intake_settle_8.p50) | $(get intake_settle_8.p99) | $(fmt "$(get intake_plain_8.tps)") | $(get intake_plain_8.p50) | $(get intake_plain_8.p99) | $r8 | $(get intake_settle_8.failed) / $(get intake_plain_8.failed) |
| 32 | $(fmt "$(get intake_settle_32.tps)") | $(get intake_settle_32.p50) | $(get intake_settle_32.p99) | $(fmt "$(get intake_plain_32.tps)") | $(get intake_plain_32.p50) | $(get intake_plain_32.p99) | $r32 | $(get intake_settle_32.failed) / $(get intake_plain_32.failed) |

EOF
[ -n "$PLOTS" ] && echo '![single-row intake](img/bench_intake.svg)' && echo
cat <<EOF
## Intake, bulk

$(fmt "$(get bulk_rows)") payments of the reference workload (below) in all, in rounds of new payments as JSON arrays of 10,000
elements, one \`settle_submit_bulk\` call per array, each its own transaction. Refused elements: $(get bulk_settle_errors).
Baseline: the same arrays through \`jsonb_to_recordset\` into \`bench.payment_plain\` with
\`INSERT ... ON CONFLICT DO NOTHING\` (no validation; the source participant taken from the account name).
Replay: the same arrays submitted again right after (every element found by its key, compared, returned,
nothing written). $(get bulk_rounds) rounds in one session, then $(get bulk_rounds) rounds of new payments in two sessions at once
(alternate arrays), both sides alike; in each round settle and the baseline alternate which goes first
(the tables grow from round to round). Median of the rounds (range). Meanwhile $(other bulk).

| path | sessions | payments/s | ratio to the baseline |
|---|---|---|---|
| \`settle_submit_bulk\`, new payments | 1 | $(fmt "$(get bulk_settle_rate)") ($(rng bulk_settle_rate)) | $(get bulk_ratio) ($(rng bulk_ratio)) |
| \`settle_submit_bulk\`, the same again (replays) | 1 | $(fmt "$(get bulk_replay_rate)") ($(rng bulk_replay_rate)) | |
| plain INSERT from jsonb (baseline) | 1 | $(fmt "$(get bulk_plain_rate)") ($(rng bulk_plain_rate)) | |
| \`settle_submit_bulk\`, new payments | 2 | $(fmt "$(get bulk2_settle_rate)") ($(rng bulk2_settle_rate)) | $(get bulk2_ratio) ($(rng bulk2_ratio)) |
| plain INSERT from jsonb (baseline) | 2 | $(fmt "$(get bulk2_plain_rate)") ($(rng bulk2_plain_rate)) | |

## Reference workload

Generated in SQL by \`bench.generate()\` (\`test/bench/setup.sql\`), the same generator as the solver's
benchmark (\`test/solver/solver_bench.c\`): 50 participants, each with one account in USD, EUR and GBP
(150 accounts, limit 0); payer and payee uniform among distinct participants, source currency uniform,
80% in the same currency and 20% converted; amounts log-normal (median 1,000.00, sigma 1, at least 1.00);
priority 1-9 uniform; 30% deferrable (deadline in one hour), the rest due. FX mid rates EUR/USD 1.10,
GBP/USD 1.25, EUR/GBP 0.88, spread 5 bps on each pair; wire fee 25.00 per participant and currency.
Liquidity: each account is funded with 10% of its gross outflow in the queue. Seed fixed (\`setseed(0.42)\`).

## Cycle

One database per N and round, the queue submitted with \`settle_submit_bulk\`, then one \`settle_run_cycle()\`
(default settings: \`settle.solver_time_limit\` 500 ms); $(get cycle_rounds) rounds on the same queue, the settle cycle
and the baseline alternating which goes first; the row is the round with the median cycle time, with the
range of both times over the rounds ("same": the same number settled in every round). "cycle" and "solver" are the cycle's own
\`cycle_ms\` and \`solver_ms\`; "wall" is the client's time for the call including the commit.
Baseline: the same queue from the same starting balances settled gross by the PL/pgSQL transfer
(\`bench.transfer\`: lock both accounts, check the payer's limit, two entries, two balance updates), one
payment per transaction, 8 pgbench clients, in arrival order.

| N | other work (cores) | cycle ms (range) | wall ms | solver ms | solver share | solver status | settled (same) | deferred | unsettled | baseline ms (range) | baseline posted |
|---|---|---|---|---|---|---|---|---|---|---|---|
EOF
for n in $CYCLE_NS; do
    echo "| $(fmt "$n") | $(get "cpu_other.cycle_$n") | $(fmt "$(get "cycle_$n.cms")") ($(rng "cycle_$n.cms")) | $(fmt "$(get "cycle_$n.wall_ms")") | $(get "cycle_$n.sms") | $(get "cycle_$n.solver_share")% | $(get "cycle_$n.sstatus") ($(get "cycle_$n.smethod" | tr '_' ' ')) | $(fmt "$(get "cycle_$n.settled")") ($(get "cycle_$n.same")) | $(fmt "$(get "cycle_$n.deferred")") | $(fmt "$(get "cycle_$n.unsettled")") | $(fmt "$(get "cycle_$n.base_ms")") ($(rng "cycle_$n.base_ms")) | $(fmt "$(get "cycle_$n.base_posted")") |"
done
echo
[ -n "$PLOTS" ] && echo '![cycle and solver time against N](img/bench_cycle.svg)' && echo
cat <<EOF
## Optimisation

The same cycles (database, reference workload, costs in USD), each against the three baselines every
cycle records (\`settle.cycles\`, docs/CYCLE.md): *FIFO, gross*: in arrival order on the same queue, each
payment settled alone if its payer can pay it (one that does not fit is skipped), one wire per payment,
spread on its own value; *netting only*: the payments FIFO settles, netted multilaterally as the cycle
nets its own (one wire per participant and currency with a net, spread on each pair's net), no
optimisation; *naive*: the payments the cycle settled, one pay-in and one pay-out wire per participant
and currency, spread on the gross converted volume. So naive -> netting -> optimised: *saved vs naive*
is mostly netting; *saved vs netting* is what choosing the payments adds on top of netting FIFO's, and
it comes with *more value settled* (the optimiser settles what FIFO cannot, which costs wires too).
*LP bound*: settled priority weight as a percentage of the LP relaxation's ("n/a": the solver used up
\`settle.solver_time_limit\` before the LP finished and the greedy fallback chose).

| N | settled | value settled | cost (wires) | FIFO settled | FIFO value | FIFO, gross: cost | netting only: cost (wires) | naive: cost (wires) | saved vs naive | saved vs netting only | % of LP bound |
|---|---|---|---|---|---|---|---|---|---|---|---|
EOF
for n in $CYCLE_NS; do
    echo "| $(fmt "$n") | $(fmt "$(get "cycle_$n.settled")") | $(fmt "$(get "cycle_$n.value")") | $(fmt "$(get "cycle_$n.cost")") ($(get "cycle_$n.wires")) | $(fmt "$(get "cycle_$n.fifo_n")") | $(fmt "$(get "cycle_$n.fifo_value")") | $(fmt "$(get "cycle_$n.fifo_cost")") | $(fmt "$(get "cycle_$n.netted")") ($(get "cycle_$n.netted_wires")) | $(fmt "$(get "cycle_$n.naive")") ($(get "cycle_$n.naive_wires")) | $(get "cycle_$n.saved")% | $(get "cycle_$n.saved_net")% | $(get "cycle_$n.lp") |"
done
cat <<EOF

The solver alone on the same generator (\`test/solver/bench.sh 500\`: model build + solve, 500 ms limit as in
the extension; weight settled as % of the LP bound, against FIFO (bypass) and the greedy fallback).
Meanwhile $(other solver).

| N | liquidity | costs | ms | status | % of LP | greedy ms | greedy % of LP | FIFO % of LP |
|---|---|---|---|---|---|---|---|---|
EOF
for n in 1000 10000 100000; do
    for lc in 0.05_off 0.05_on 0.10_off 0.10_on; do
        k="solver_${n}_${lc}"
        have "$k.ms" || continue
        echo "| $(fmt "$n") | ${lc%_*} | ${lc#*_} | $(get "$k.ms") | $(get "$k.status") | $(pct "$(get "$k.weight_pct_of_lp")") | $(get "$k.greedy_ms") | $(pct "$(get "$k.greedy_weight_pct_of_lp")") | $(pct "$(get "$k.fifo_weight_pct_of_lp")") |"
    done
done
echo
bash "$BENCH/report_quality.sh" "$RES" details
cat <<EOF

## Posting

$(fmt "$(get post.settled.r1)") payments per round of the reference workload with enough liquidity for all of them and no deadline,
so that every side posts every payment; $(get post_rounds) rounds of new payments, each posted three ways, in
alternating order (odd rounds settle first, even rounds settle last). settle: one cycle posting them as
one journal with set-based statements; its rate is counted on the cycle's time outside the solver (queue
load, account locks, posting, baselines, record - more than the posting alone), and on the client's wall
time of the whole \`settle_run_cycle()\` call (solver and commit included). Baselines, into copies of
\`settle.ledger_entry\` and of the accounts (a fresh copy of the accounts before each): *set-based SQL*,
\`bench.post_set()\` (\`test/bench/setup.sql\`): the same two legs per payment inserted by one statement,
every balance updated once by its net, the limits checked over the result, one transaction, client wall
time including the commit; *transfer*, \`bench.transfer\` once per payment and per transaction, 8 pgbench
clients. (Calling the transfer for every payment inside *one* transaction is far slower: each balance
row is updated thousands of times in the same transaction and every update walks its growing chain of
row versions; at 100,000 payments it took 223 s on this machine.) Meanwhile $(other post).

| round | settle payments/s, outside the solver | settle, whole call (wall) | set-based SQL payments/s | transfer payments/s | ratio to transfer | ratio to set-based | whole call / set-based |
|---|---|---|---|---|---|---|---|
EOF
for r in $(seq 1 "$(get post_rounds)"); do
    echo "| $r | $(fmt "$(get "post.settle_rate.r$r")") ($(get "post.cycle_ms.r$r") - $(get "post.solver_ms.r$r") ms) | $(fmt "$(get "post.settle_rate_wall.r$r")") ($(get "post.settle_wall_ms.r$r") ms) | $(fmt "$(get "post.set_rate.r$r")") ($(get "post.set_ms.r$r") ms) | $(fmt "$(get "post.base_rate.r$r")") | $(get "post.ratio.r$r") | $(get "post.ratio_set.r$r") | $(get "post.ratio_wall_set.r$r") |"
done
echo "| median | $(fmt "$(get post.settle_rate.med)") | $(fmt "$(get post.settle_rate_wall.med)") | $(fmt "$(get post.set_rate.med)") | $(fmt "$(get post.base_rate.med)") | $(get post.ratio.med) | $(get post.ratio_set.med) | $(get post.ratio_wall_set.med) |"
cat <<EOF

## Verify

EOF
if have verify.rate; then
    echo "\`settle_verify()\` over the whole ledger of the posting database ($(fmt "$(get verify.entries)") entries, grown by"
    echo "cycles of 100,000 payments): $(fmt "$(get verify.ms)") ms, $(fmt "$(get verify.rate)") entries/s; problems reported: $(get verify.problems)."
    if have verify.seal_ms; then
        echo "Before it, \`settle_seal()\` sealed the entries and events not yet in their hash chains: $(fmt "$(get verify.seal_ms)") ms"
        echo "(timed apart: sealing is incremental, once per row; verifying reads the whole ledger and both chains every time)."
    fi
    echo "Meanwhile $(other verify)."
    if [ "$(get verify.problems)" != 0 ]; then
        echo
        echo '```'
        get verify.output | tr ';' '\n'
        echo '```'
    fi
else
    echo "Not available yet: \`settle_verify()\` is not installed in this build. The benchmark measures it by"
    echo "itself as soon as the function exists (it then grows the ledger to at least 1,000,000 entries first)."
fi
cat <<EOF

## End to end

Open loop: pgbench \`--rate\` offers new payments with \`settle_submit\` on a fixed schedule (8 clients,
2 threads), whether or not earlier ones are done, so a server that falls behind shows as *schedule lag*
(how late a submission started against its schedule) instead of a lower offered load. The background
worker on with its default pacing: woken by each commit, it gathers payments for as long as the
trade-off of docs/CYCLE.md ("Pacing") says, within \`settle.batch_window\` and \`settle.max_batch_delay\`;
\`settle.cycle_interval\` ($(get e2e_interval) ms) is only its idle heartbeat. Every account with ample
liquidity, every payment due; after the load the benchmark waits for the queue to drain. *settled/s*: payments settled /
(end of the last cycle - first submission); *submit-to-settled*: end of the cycle that settled the
payment (\`settle.cycle.finished_at\`, just before its commit) minus its submission (\`created_at\`); a
client behind schedule adds its lag on top. Baseline: the same open-loop load with the worker off, into
another database of the same cluster (submission alone). $(get e2e_rounds) rounds per rate, alternating the
order of the two; fsync and synchronous_commit on. Median of the rounds, (min-max).

| offered | other work (cores) | submitted/s | settled/s | submit-to-settled p50 ms | p95 ms | p99 ms | to the listener's receipt p50 / p95 / p99 ms | heard (twice) | schedule lag p50 / p99 / max ms | not settled | cycles | payments a cycle | mean cycle ms (solver) | gathering ms | saved vs naive batching % | submit alone: submitted/s | submit alone: latency p50 / p99 ms | submit alone: lag p99 ms |
|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|
EOF
for rate in $(get e2e_rates); do
    have "e2e_$rate.s_cnt.med" || continue
    echo "| $rate/s | $(get "cpu_other.e2e_$rate") | $(fmt "$(get "e2e_$rate.tps.med")") ($(rng "e2e_$rate.tps")) | $(fmt "$(get "e2e_$rate.s_srate.med")") | $(get "e2e_$rate.s_p50.med") ($(rng "e2e_$rate.s_p50")) | $(get "e2e_$rate.s_p95.med") ($(rng "e2e_$rate.s_p95")) | $(get "e2e_$rate.s_p99.med") ($(rng "e2e_$rate.s_p99")) | $(get "e2e_$rate.r_p50.med") / $(get "e2e_$rate.r_p95.med") ($(rng "e2e_$rate.r_p95")) / $(get "e2e_$rate.r_p99.med") | $(fmt "$(get "e2e_$rate.heard.med")") of $(fmt "$(get "e2e_$rate.s_cnt.med")") ($(get "e2e_$rate.dup.max")) | $(get "e2e_$rate.lag_p50.med") / $(get "e2e_$rate.lag_p99.med") ($(rng "e2e_$rate.lag_p99")) / $(get "e2e_$rate.lag_max.med") | $(get "e2e_$rate.s_left.max") (max) | $(get "e2e_$rate.s_cycles.med") | $(get "e2e_$rate.s_per_cycle.med") | $(get "e2e_$rate.s_avg_cycle.med") ($(get "e2e_$rate.s_avg_solver.med")) | $(get "e2e_$rate.pace_ms.med") | $(get "e2e_$rate.s_saved.med") ($(rng "e2e_$rate.s_saved")) | $(fmt "$(get "e2e_base_$rate.tps.med")") | $(get "e2e_base_$rate.p50.med") / $(get "e2e_base_$rate.p99.med") ($(rng "e2e_base_$rate.p99")) | $(get "e2e_base_$rate.lag_p99.med") ($(rng "e2e_base_$rate.lag_p99")) |"
done
echo
cat <<EOF
*to the listener's receipt*: \`test/bench/listen.py\` (psycopg2, its own connection) LISTENs on
\`settle_settled\` during each run and logs the time each payment id arrived; minus the payment's
\`created_at\`. *heard (twice)*: ids heard among those settled (the most heard twice in a round).
*gathering*: the gathering time the worker chose, halfway through the load (\`settle_backlog_status().batch_delay_ms\`),
between \`settle.batch_window\` ($(get e2e_batch_window)) and \`settle.max_batch_delay\` ($(get e2e_max_batch_delay)),
from the trade-off of docs/CYCLE.md, "Pacing".
EOF
if [ -n "$(get sweep_windows)" ]; then
    cat <<EOF

### Latency against savings: the batching window

At $(get sweep_rate) payments/s (open loop as above, $(get sweep_t) s per point, $(get sweep_rounds) rounds going through the
windows in alternating directions), each window W forced on every cycle (\`settle.batch_window\` =
\`settle.max_batch_delay\` = W; "pN": the pacer's own choice with \`settle.max_batch_delay\` = N), against
the default settings (the pacer chooses, row "default" from the table above). Median of the rounds (range).
Meanwhile $(other sweep).

| window | gathering ms | payments a cycle | submit-to-settled p50 ms | p95 ms | p99 ms | listener p95 ms | schedule lag p99 ms | saved vs naive batching % |
|---|---|---|---|---|---|---|---|---|
EOF
    for w in $(get sweep_windows); do
        have "sweep_$w.s_p95.med" || continue
        echo "| $w ms | $(get "sweep_$w.pace_ms.med") | $(get "sweep_$w.s_per_cycle.med") | $(get "sweep_$w.s_p50.med") | $(get "sweep_$w.s_p95.med") ($(rng "sweep_$w.s_p95")) | $(get "sweep_$w.s_p99.med") ($(rng "sweep_$w.s_p99")) | $(get "sweep_$w.r_p95.med") | $(get "sweep_$w.lag_p99.med") | $(get "sweep_$w.s_saved.med") ($(rng "sweep_$w.s_saved")) |"
    done
    sr=$(get sweep_rate)
    have "e2e_$sr.s_p95.med" && echo "| default | $(get "e2e_$sr.pace_ms.med") | $(get "e2e_$sr.s_per_cycle.med") | $(get "e2e_$sr.s_p50.med") | $(get "e2e_$sr.s_p95.med") ($(rng "e2e_$sr.s_p95")) | $(get "e2e_$sr.s_p99.med") ($(rng "e2e_$sr.s_p99")) | $(get "e2e_$sr.r_p95.med") | $(get "e2e_$sr.lag_p99.med") | $(get "e2e_$sr.s_saved.med") ($(rng "e2e_$sr.s_saved")) |"
    echo
    [ -n "$PLOTS" ] && echo '![latency against savings for several batching windows](img/bench_tradeoff.svg)' && echo
fi
if [ -n "$(get maxrate_steps)" ]; then
    cat <<EOF
### The highest rate the worker keeps up with

Offered rates rising ($(get maxrate_steps | sed 's/ /, /g')/s, $(get maxrate_t) s each, default settings) until a step fails: a step is
kept up with when the load was really offered (at least 95% of the rate submitted) and less than
half a second of arrivals was still queued when the load ended. The highest passing rate was then run twice more (3 runs: median (range)). The submitting
clients, the server and the worker share the $(get cores) cores. Meanwhile $(other maxrate).

| offered | kept up | submitted/s | schedule lag p99 ms | queued at the end | submit-to-settled p50 / p95 / p99 ms | payments a cycle | gathering ms | saved vs naive % |
|---|---|---|---|---|---|---|---|---|
EOF
    for rate in $(get maxrate_steps); do
        have "maxrate_$rate.r1.tps" || continue
        echo "| $rate/s | $(get "maxrate_$rate.ok") | $(fmt "$(get "maxrate_$rate.r1.tps")") | $(get "maxrate_$rate.r1.lag_p99") | $(get "maxrate_$rate.r1.end_queued") | $(get "maxrate_$rate.r1.s_p50") / $(get "maxrate_$rate.r1.s_p95") / $(get "maxrate_$rate.r1.s_p99") | $(get "maxrate_$rate.r1.s_per_cycle") | $(get "maxrate_$rate.r1.pace_ms") | $(get "maxrate_$rate.r1.s_saved") |"
    done
    mr=$(get maxrate)
    if [ -n "$mr" ] && [ "$mr" != 0 ]; then
        echo "| $mr/s, 3 runs | yes | $(fmt "$(get "maxrate_$mr.tps.med")") ($(rng "maxrate_$mr.tps")) | $(get "maxrate_$mr.lag_p99.med") ($(rng "maxrate_$mr.lag_p99")) | $(get "maxrate_$mr.end_queued.max") (max) | $(get "maxrate_$mr.s_p50.med") / $(get "maxrate_$mr.s_p95.med") ($(rng "maxrate_$mr.s_p95")) / $(get "maxrate_$mr.s_p99.med") | $(get "maxrate_$mr.s_per_cycle.med") | $(get "maxrate_$mr.pace_ms.med") | $(get "maxrate_$mr.s_saved.med") ($(rng "maxrate_$mr.s_saved")) |"
    fi
    echo
fi
# the REST gateway's section, written by test/bench/gateway.sh
if [ -f "$IMG/bench_gateway.md" ]; then
    cat "$IMG/bench_gateway.md"
    echo
fi
# the production shape's section, written by test/bench/production.sh
if [ -f "$IMG/bench_production.md" ]; then
    cat "$IMG/bench_production.md"
    echo
fi
cat "$BENCH/NOTES.md"
} >"$DOCDIR/BENCHMARKS.md"
