#!/bin/bash
# Accuracy of the liquidity forecast (docs/LIQUIDITY.md): a generated
# history with known weekday and intraday seasonality, a trend and noise
# (10 weeks of one participant's payment legs, written straight into a
# scratch database's ledger), then for each of the last 14 days (held out:
# each is forecast from the 8 weeks before it only) the forecast of every
# hourly interval of the day against
#   seasonal naive  the same interval of the same weekday a week earlier;
#   plain mean      the mean net outflow of an interval over the 8 weeks.
# Prints the error table (MAE and RMSE per interval, MAE of the end-of-day
# total), writes the held-out series to $OUT/img/liquidity_forecast.csv and the
# plot docs/img/liquidity_forecast.svg (test/bench/liquidity_plot.py).
# Exit status 0 when the forecast beats both baselines on both measures.
#   PGBIN=... bash test/bench/liquidity_forecast.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/scratch.sh

OUT=${LIQUIDITY_OUT:-docs}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
scratch liquidity-forecast
scratch_ports P 55660
scratch_cluster "$TMP/c"
cluster_init "$TMP/c" "$P" "settle.worker_enabled = off" "timezone = 'UTC'" || exit 1
cluster_start "$TMP/c" || exit 1
q() { cluster_psql "$P" -d postgres -At "$@"; }

q -c "CREATE EXTENSION settle" >/dev/null
q -c "SELECT settle_create_participant(p) FROM unnest(ARRAY['lf_a', 'lf_b']) p" >/dev/null
q -c "SELECT settle_create_account('lf_a_usd', 'lf_a', 'USD'), settle_create_account('lf_b_usd', 'lf_b', 'USD')" >/dev/null

# The history: 70 days from Monday 2026-01-05.  Expected payments per hour:
#   base 6 x weekday factor x intraday shape x trend (+0.4% a day);
# outflows peak mid-morning, inflows mid-afternoon; the count varies +-50%
# around it (uniform), each payment 50.00 to 150.00 USD.
q <<'EOF' >/dev/null
SELECT setseed(0.42);
CREATE TABLE truth AS
SELECT d, h, dir,
       6.0 * (ARRAY[1.2, 1.0, 1.0, 1.05, 1.3, 0.3, 0.2])[extract(isodow FROM d)::int]
           * CASE WHEN dir = 'out' THEN exp(-((h - 10.0) ^ 2) / 8) ELSE exp(-((h - 15.0) ^ 2) / 10) END
           * (1 + 0.004 * ((d::date - '2026-01-05'::date))) + 0.05 AS lambda
  FROM generate_series('2026-01-05'::timestamptz, '2026-03-15'::timestamptz, interval '1 day') d,
       generate_series(0, 23) h, unnest(ARRAY['out', 'in']) dir;
INSERT INTO settle.ledger_entry (journal_id, payment_id, account_id, currency, amount, posted_at)
SELECT 1, 1, 'lf_a_usd', 'USD',
       CASE WHEN t.dir = 'out' THEN -1 ELSE 1 END * (5000 + floor(random() * 10001))::bigint,
       t.d + make_interval(hours => t.h) + make_interval(secs => floor(random() * 3600))
  FROM truth t, LATERAL generate_series(1, round(t.lambda * (0.5 + random()))::int) k;
EOF
q -c "SELECT count(*), min(posted_at)::date, max(posted_at)::date FROM settle.ledger_entry WHERE account_id = 'lf_a_usd'" \
    | sed 's/^/# history: entries, first day, last day: /'

# The 14 held-out days, each forecast from the 8 weeks before it.
q <<'EOF' >/dev/null
CREATE TABLE actual AS
SELECT date_trunc('hour', e.posted_at) AS slot, -sum(e.amount) AS net
  FROM settle.ledger_entry e WHERE e.account_id = 'lf_a_usd' GROUP BY 1;
CREATE TABLE slots AS
SELECT g AS slot FROM generate_series('2026-01-05'::timestamptz, '2026-03-15 23:00'::timestamptz, interval '1 hour') g;
CREATE TABLE held_out AS
SELECT s.slot, coalesce(a.net, 0) AS actual,
       (f.expected_outflow - f.expected_inflow) AS forecast,
       coalesce(w.net, 0) AS seasonal_naive,
       (SELECT coalesce(sum(x.net), 0) / (8 * 7 * 24.0) FROM actual x
         WHERE x.slot >= date_trunc('day', s.slot) - interval '56 days' AND x.slot < date_trunc('day', s.slot)) AS plain_mean
  FROM slots s
  LEFT JOIN actual a ON a.slot = s.slot
  LEFT JOIN actual w ON w.slot = s.slot - interval '7 days'
  JOIN LATERAL settle._flow_forecast('lf_a', 'USD', date_trunc('day', s.slot), 60, 8) f
       ON f.slot_start = s.slot
 WHERE s.slot >= '2026-03-02';
EOF
q -c "SELECT count(*) FROM held_out" | sed 's/^/# held-out intervals: /'
table=$(q -F ' | ' -c "
WITH e AS (
    SELECT m.method, m.v - h.actual AS err, h.slot
      FROM held_out h, LATERAL (VALUES ('forecast (settle_liquidity_forecast)', h.forecast),
                                       ('seasonal naive (same interval, a week earlier)', h.seasonal_naive),
                                       ('plain mean (of the 8 weeks)', h.plain_mean)) m(method, v)),
d AS (SELECT method, date_trunc('day', slot) AS day, sum(err) AS err FROM e GROUP BY 1, 2)
SELECT '| ' || e.method, round(avg(abs(e.err)) / 100, 2), round(sqrt(avg(e.err ^ 2)) / 100, 2),
       round((SELECT avg(abs(d.err)) FROM d WHERE d.method = e.method) / 100, 2) || ' |'
  FROM e GROUP BY e.method ORDER BY avg(abs(e.err))")
echo "| method | MAE per interval | RMSE per interval | MAE of the end-of-day total |"
echo "|---|---|---|---|"
echo "$table"
q -c "SELECT round(avg(abs(actual)) / 100, 2) FROM held_out" | sed 's/^/# mean |actual net outflow| per interval (USD): /'
q -F , -c "SELECT to_char(slot, 'YYYY-MM-DD HH24:MI'), actual / 100.0, forecast / 100.0, seasonal_naive / 100.0, round(plain_mean / 100.0, 2)
             FROM held_out ORDER BY slot" >"$TMP/series.csv"
mkdir -p "$OUT/img"
{ echo "slot,actual,forecast,seasonal_naive,plain_mean"; cat "$TMP/series.csv"; } >"$OUT/img/liquidity_forecast.csv"
$PY test/bench/liquidity_plot.py "$OUT/img/liquidity_forecast.csv" "$OUT/img/liquidity_forecast.svg"
echo "# wrote $OUT/img/liquidity_forecast.csv and $OUT/img/liquidity_forecast.svg"
q -c "
WITH e AS (SELECT avg(abs(forecast - actual)) f, avg(abs(seasonal_naive - actual)) s, avg(abs(plain_mean - actual)) m,
                  sqrt(avg((forecast - actual) ^ 2)) rf, sqrt(avg((seasonal_naive - actual) ^ 2)) rs,
                  sqrt(avg((plain_mean - actual) ^ 2)) rm FROM held_out)
SELECT f < s AND f < m AND rf < rs AND rf < rm FROM e" | grep -qx t
