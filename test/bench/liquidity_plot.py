#!/usr/bin/env python3
"""Plot the held-out series of test/bench/liquidity_forecast.sh as SVG
(standard library only): actual net outflow per hour against the forecast,
the seasonal-naive baseline and the plain mean.

    liquidity_plot.py SERIES.csv OUT.svg
"""
import csv
import sys

W, H = 1100, 420
ML, MR, MT, MB = 70, 20, 40, 60
SERIES = [("actual", "#222222", 1.6, ""), ("forecast", "#1f77b4", 1.6, ""),
          ("seasonal_naive", "#ff7f0e", 1.0, "4,3"), ("plain_mean", "#2ca02c", 1.0, "2,2")]


def main(src, dst):
    with open(src, newline="") as f:
        rows = list(csv.DictReader(f))
    values = {name: [float(r[name]) for r in rows] for name, _, _, _ in SERIES}
    lo = min(min(v) for v in values.values())
    hi = max(max(v) for v in values.values())
    n = len(rows)

    def x(i):
        return ML + (W - ML - MR) * i / max(1, n - 1)

    def y(v):
        return MT + (H - MT - MB) * (hi - v) / (hi - lo or 1)

    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="11">' % (W, H),
           '<rect width="100%" height="100%" fill="white"/>',
           '<text x="%d" y="20" font-size="14">Net outflow per hour (USD), 14 held-out days: actual against forecast and baselines</text>' % ML]
    # axes, zero line, a tick per day
    out.append('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#999"/>' % (ML, MT, ML, H - MB))
    out.append('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#bbb"/>' % (ML, y(0), W - MR, y(0)))
    for k in range(5):
        v = lo + (hi - lo) * k / 4
        out.append('<text x="%d" y="%.1f" text-anchor="end">%.0f</text>' % (ML - 6, y(v) + 4, v))
    for i, r in enumerate(rows):
        if r["slot"].endswith("00:00"):
            out.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#eee"/>' % (x(i), MT, x(i), H - MB))
            out.append('<text x="%.1f" y="%d" text-anchor="middle">%s</text>' % (x(i), H - MB + 16, r["slot"][5:10]))
    for name, color, width, dash in SERIES:
        pts = " ".join("%.1f,%.1f" % (x(i), y(v)) for i, v in enumerate(values[name]))
        out.append('<polyline fill="none" stroke="%s" stroke-width="%s"%s points="%s"/>'
                   % (color, width, ' stroke-dasharray="%s"' % dash if dash else "", pts))
    for k, (name, color, width, dash) in enumerate(SERIES):
        lx = ML + 10 + 170 * k
        out.append('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"%s/>'
                   % (lx, H - 18, lx + 24, H - 18, color, ' stroke-dasharray="%s"' % dash if dash else ""))
        out.append('<text x="%d" y="%d">%s</text>' % (lx + 30, H - 14, name.replace("_", " ")))
    out.append("</svg>")
    with open(dst, "w") as f:
        f.write("\n".join(out) + "\n")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.stderr.write(__doc__)
        sys.exit(2)
    main(sys.argv[1], sys.argv[2])
