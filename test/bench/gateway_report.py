#!/usr/bin/python3
"""Writes the gateway section of docs/BENCHMARKS.md (and its plots) from the
results of test/bench/gateway.sh.  Standard library; gnuplot for the plots if
installed.

usage: gateway_report.py RESULTS OUT.md IMGDIR REPS T CONN RATE_CONN POOL SINGLE_CLIENTS "RATES"
"""
import os
import shutil
import statistics
import subprocess
import sys

res_file, out, img, reps, T, conn, rate_conn, pool, single_clients, rates = sys.argv[1:11]
reps = int(reps)
rates = rates.split()
R = {}
for line in open(res_file):
    if "=" in line:
        k, v = line.rstrip("\n").split("=", 1)
        R[k] = v


def num(k):
    return float(R[k])


def series(fmt):
    return [num(fmt % r) for r in range(1, reps + 1)]


def med(xs):
    return statistics.median(xs)


def fmt(x, d=0):
    return f"{x:,.{d}f}"


def row(label, xs, d=0, unit=""):
    cells = " | ".join(fmt(x, d) + unit for x in xs)
    return f"| {label} | {cells} | **{fmt(med(xs), d)}{unit}** | {fmt(min(xs), d)}-{fmt(max(xs), d)}{unit} |"


def per_payment(kind, name):
    """CPU microseconds per payment accepted in run NAME_r."""
    return [num(f"{name}_{r}.cs_{kind}") * 1e6 / num(f"{name}_{r}.created") for r in range(1, reps + 1)]


http = series("http_%d.rate")
direct = series("direct_%d.rate")
single = series("single_%d.rate")
r_direct = [h / d for h, d in zip(http, direct)]
r_single = [h / s for h, s in zip(http, single)]
batch = series("http_%d.batch")
others = [num(k) for k in R if k.endswith(".cpu_other")]
max_other = max(others) if others else 0.0
hdr = " | ".join(f"run {r}" for r in range(1, reps + 1))
sep = "|".join(["---"] * (reps + 3))

L = []
L.append("## REST gateway (settle-gateway)\n")
L.append(f"Measured by `test/bench/gateway.sh` on {R['date']} (part of `make bench`; the figures below are "
         f"from that script's own run). The gateway ([GATEWAY.md](GATEWAY.md)) in front of a throwaway "
         f"cluster with the settings above (**fsync and synchronous_commit on**, no standby, the worker off "
         f"so that no cycle runs during the load); one participant's client submits single-payment requests "
         f"with unique keys over HTTP/1.1 keep-alive.\n")
L.append("| | |\n|---|---|")
L.append(f"| machine | {R['cpu']}, **{R['cores']} cores**, shared by PostgreSQL, the gateway and the load generator |")
L.append(f"| software | PostgreSQL {R['pg']}, libmicrohttpd {R['mhd']}, wrk {R['wrk']}, settle commit {R['commit']} |")
L.append(f"| gateway | `--pool-size {pool}` (and one control connection), `--batch-max 256`, `--batch-wait-us 1000`, 2 HTTP threads |")
L.append(f"| load | wrk, 2 threads, {conn} connections, {T} s per run, test/bench/gateway.lua; paced runs {rate_conn} connections |")
L.append(f"| load average (1, 5, 15 min) | at start {R['load_start']}; at end {R['load_end']} (includes the benchmark itself) |")
L.append(f"| other work during the runs | CPU of processes outside the benchmark, in cores (of {R['cores']}), per run: "
         + ", ".join(f"{k.split('.')[0]} {R[k]}" for k in R if k.endswith('.cpu_other')) + " |")
L.append("")
if max_other > 0.2:
    L.append(f"**Preliminary figures: the machine was shared during this run** (other processes used up to "
             f"{max_other:.2f} of {R['cores']} cores in a run, load average {R['load_start']} at the start). "
             f"Every ratio is still against a baseline measured in the same repetition, under the same "
             f"conditions.\n")
verdict = "met" if med(http) >= 10000 else f"missed by {100 * (1 - med(http) / 10000):.0f}%"
L.append(f"**Throughput: {fmt(med(http))} accepted payments/s over HTTP** (median of {reps}; target >= 10,000/s: "
         f"{verdict}). Each repetition runs the HTTP load, then the two baselines with the same work:\n")
L.append(f"| | {hdr} | median | range |")
L.append(f"|{sep}|")
L.append(row("HTTP, payments accepted/s (201)", http))
L.append(row("average payments per `settle_submit_bulk` call (gateway metrics)", batch, 1))
L.append(row(f"baseline: `settle_submit_bulk` direct over libpq, {pool} sessions, that batch size, /s", direct))
L.append(row(f"baseline: single-row `settle_submit` over libpq (pgbench, {single_clients} clients), /s", single))
L.append(row("**ratio HTTP / direct bulk**", r_direct, 2))
L.append(row("**ratio HTTP / single-row**", r_single, 2))
L.append(row("HTTP P50 latency at full load, ms", series("http_%d.p50_ms"), 2))
L.append(row("HTTP P99 latency at full load, ms", series("http_%d.p99_ms"), 2))
L.append(row("CPU of the gateway during the HTTP run, cores", series("http_%d.cpu_gw"), 2))
L.append(row("CPU of wrk, cores", series("http_%d.cpu_client"), 2))
L.append(row("CPU of PostgreSQL, cores", series("http_%d.cpu_pg"), 2))
L.append(row("CPU per payment, HTTP run: the gateway, us", per_payment("gw", "http"), 1))
L.append(row("CPU per payment, HTTP run: wrk, us", per_payment("client", "http"), 1))
L.append(row("CPU per payment, HTTP run: PostgreSQL, us", per_payment("pg", "http"), 1))
L.append(row("CPU per payment, direct bulk: PostgreSQL, us", per_payment("pg", "direct"), 1))
L.append(row("CPU per payment, direct bulk: the Python client, us", per_payment("client", "direct"), 1))
L.append(row("CPU per payment, single-row: PostgreSQL, us", per_payment("pg", "single"), 1))
L.append(row("CPU per payment, single-row: pgbench, us", per_payment("client", "single"), 1))
L.append("")
pg_http = med(per_payment("pg", "http"))
pg_direct = med(per_payment("pg", "direct"))
gw = med(per_payment("gw", "http"))
wrk_us = med(per_payment("client", "http"))
total = pg_http + gw + wrk_us
ours = med([num(f"http_{r}.cpu_pg") + num(f"http_{r}.cpu_gw") + num(f"http_{r}.cpu_client") for r in range(1, reps + 1)])
L.append(f"Where the CPU goes (medians): per payment accepted over HTTP, PostgreSQL used {pg_http:.1f} us "
         f"(called directly with the same batches: {pg_direct:.1f} us), the gateway {gw:.1f} us and wrk "
         f"{wrk_us:.1f} us, {total:.1f} us together. Arithmetic, not a measurement: at that cost the three would "
         f"accept about {int(R['cores']) * 1e6 / total:,.0f} payments/s with all {R['cores']} cores to themselves; "
         f"during the HTTP runs they got {ours:.2f} cores (the rest of the machine's CPU went to the other work above). "
         f"Other limits (commit latency, the pool of {pool} connections) are not separated by this run, so it does "
         f"not show what the gateway reaches on an idle machine.\n")
L.append("**Latency at a paced rate** (wrk with a fixed interval between requests per thread, "
         f"{rate_conn} connections; a request waits for a free connection, so a rate that is not reached "
         "shows as achieved below offered; latency is from sending the request to the whole answer):\n")
L.append(f"| offered | achieved /s (median) | P50 ms, median (range) | P99 ms, median (range) | target |")
L.append("|---|---|---|---|---|")
lat = {}
for rt in rates:
    ach = series(f"paced{rt}_%d.rate")
    p50 = series(f"paced{rt}_%d.p50_ms")
    p99 = series(f"paced{rt}_%d.p99_ms")
    lat[rt] = (p50, p99)
    target = ""
    if rt == "5000":
        target = "P99 < 50 ms: " + ("met" if med(p99) < 50 else f"missed ({fmt(med(p99), 1)} ms)")
    L.append(f"| {int(rt):,}/s | {fmt(med(ach))} | {fmt(med(p50), 2)} ({fmt(min(p50), 2)}-{fmt(max(p50), 2)}) | "
             f"{fmt(med(p99), 2)} ({fmt(min(p99), 2)}-{fmt(max(p99), 2)}) | {target} |")
L.append("")

plots = shutil.which("gnuplot") is not None
if plots:
    dat = os.path.join(img, "bench_gateway_tp.dat")
    with open(dat, "w") as f:
        for i, (label, xs) in enumerate([("HTTP (gateway)", http), ("bulk direct", direct), ("single-row", single)]):
            f.write(f'{i} "{label}" {med(xs)} {min(xs)} {max(xs)}\n')
    lat_dat = os.path.join(img, "bench_gateway_lat.dat")
    with open(lat_dat, "w") as f:
        for rt in rates:
            p50, p99 = lat[rt]
            f.write(f"{rt} {med(p50)} {min(p50)} {max(p50)} {med(p99)} {min(p99)} {max(p99)}\n")
    script = f"""
set terminal svg size 560,380 dynamic font "sans,12" background rgb "white"
set output "{img}/bench_gateway_throughput.svg"
set title "payments/s accepted (median, range of {reps})"
set style fill solid 0.6
set boxwidth 0.6
set yrange [0:*]
set grid ytics
unset key
plot "{dat}" using 1:3:xtic(2) with boxes lc rgb "#4477aa", "" using 1:3:4:5 with yerrorbars lc rgb "black" pt 0
set output "{img}/bench_gateway_latency.svg"
set title "HTTP latency at a paced rate (median, range of {reps})"
set xlabel "offered payments/s"
set ylabel "ms"
set key top left
set logscale y
set xrange [0:{int(max(float(x) for x in rates) * 1.2)}]
unset style
plot "{lat_dat}" using 1:2:3:4 with yerrorlines title "P50" lc rgb "#4477aa", \\
     "" using 1:5:6:7 with yerrorlines title "P99" lc rgb "#cc6677"
"""
    subprocess.run(["gnuplot"], input=script.encode(), check=True)
    os.remove(dat)
    os.remove(lat_dat)
    L.append("![gateway throughput against its baselines](img/bench_gateway_throughput.svg)")
    L.append("![gateway latency at paced rates](img/bench_gateway_latency.svg)\n")

L.append("How to read it: the direct baseline is what the database does with the same batches and no HTTP: "
         "the ratio is the cost of HTTP, JSON, the queue and the hand-over between threads, all on the same two "
         "cores as the database (a core the gateway and wrk use is a core PostgreSQL does not get). The "
         "single-row baseline is what a client gets without coalescing: one commit per payment. "
         f"Raw figures: `img/bench_gateway_results.txt`. Payments written in the whole run: {R['payments_total']}.\n")
open(out, "w").write("\n".join(L))
