#!/bin/bash
# Liquidity needed with a participant's controls (issue #33,
# docs/PARTICIPANT_CONTROLS.md): a day of payments among P participants,
# arriving in ROUNDS batches with a cycle after each (then END extra cycles
# at the end of the day), settled by settle with and without the controls
# (bilateral limits, a multilateral limit, a reservation for priority 8 and
# up), against the literature's two bounds on the same day:
#   FIFO gross, immediate (the upper bound): every payment settled the
#     moment it arrives; a participant needs its largest cumulative net
#     outflow over the day;
#   netting only (the lower bound): one multilateral net at the end of the
#     day; a participant needs its final net outflow.
# Liquidity needed by settle: the smallest s (binary search, STEPS
# halvings over 0..3) such that opening balances of LB + s x UB for
# each participant (LB, UB: its lower and upper bound) settle every payment
# by the end of the day; reported as a share of the two bounds' totals, with
# the value-weighted mean delay (rounds from arrival to settlement) and the
# cycles' solver time, with and without the controls.  Each trial is one
# transaction, rolled back.  The limits are set at or above each pair's (and
# each participant's) net outflow of the whole day, so that the day can
# settle, and below the intraday peaks, where they bind; the reservation
# keeps a tenth of the opening balance for priority 8 and up.  Both bounds
# are also reported under the same controls (netting only, exactly; FIFO
# gross, queued, simulated by fifo_left()), for a comparison at equal
# constraints (docs/PARTICIPANT_CONTROLS.md, "Measured").  By itself:
#   PGBIN=... bash test/bench/controls.sh [payments] [participants]
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/scratch.sh

N=${1:-${BENCH_CONTROLS_N:-4000}}
P=${2:-${BENCH_CONTROLS_PARTICIPANTS:-20}}
ROUNDS=${BENCH_CONTROLS_ROUNDS:-40}
END=${BENCH_CONTROLS_END:-3}
STEPS=${BENCH_CONTROLS_STEPS:-8}
scratch bench-controls
scratch_ports PORT 55680
scratch_cluster "$TMP/c"
cluster_init "$TMP/c" "$PORT" "settle.worker_enabled = off" "settle.solver_time_limit = 2s" || exit 1
cluster_start "$TMP/c" || exit 1
q() { cluster_psql "$PORT" -d postgres -At "$@"; }

q -c "CREATE EXTENSION settle" >/dev/null
q -c "SELECT count(*) FROM (SELECT settle_create_participant('cp' || i) FROM generate_series(1, $P) i) x" >/dev/null
q -c "SELECT count(*) FROM (SELECT settle_create_account('cp' || i || '_usd', 'cp' || i, 'USD') FROM generate_series(1, $P) i) x" >/dev/null
# the day: payments skewed towards a few large participants, 10% urgent (priority 8, 9)
q >/dev/null <<EOF
SELECT setseed(0.33);
CREATE TABLE day AS
SELECT g AS id, 1 + (g - 1) * $ROUNDS / $N AS round, s, d,
       (1 + floor(random() * 999))::bigint * 100 AS amount,
       CASE WHEN random() < 0.1 THEN 8 + floor(random() * 2)::int ELSE 1 + floor(random() * 7)::int END AS priority
  FROM (SELECT g, 1 + floor(power(random(), 2) * $P)::int AS s, 1 + floor(random() * ($P - 1))::int AS o
          FROM generate_series(1, $N) g) x,
       LATERAL (SELECT 1 + (s + o - 1) % $P AS d) y;
-- per participant: the upper bound (largest cumulative net outflow, immediate gross) and the lower (final net)
CREATE TABLE bounds AS
WITH f AS (
    SELECT id, s AS p, amount AS out FROM day UNION ALL SELECT id, d, -amount FROM day),
c AS (SELECT p, sum(out) OVER (PARTITION BY p ORDER BY id) AS cum FROM f)
SELECT p, greatest(0, max(cum)) AS ub, greatest(0, (SELECT sum(out) FROM f f2 WHERE f2.p = c.p)) AS lb
  FROM c GROUP BY p;
-- the controls: towards its 3 largest counterparties a bilateral limit of the day's net
-- outflow to it (at least 0) plus a quarter of the gross; a multilateral limit of the day's
-- net towards the others plus a quarter of their gross
CREATE TABLE lims AS
WITH pair AS (
    SELECT s, d, sum(amount) AS gross,
           sum(amount) - coalesce((SELECT sum(b.amount) FROM day b WHERE b.s = a.d AND b.d = a.s), 0) AS net
      FROM day a GROUP BY s, d),
ranked AS (SELECT pair.*, row_number() OVER (PARTITION BY s ORDER BY gross DESC) AS r FROM pair)
SELECT s, d, greatest(net, 0) + gross / 4 AS amount FROM ranked WHERE r <= 3
UNION ALL
SELECT s, NULL, greatest(sum(net), 0) + sum(gross) / 4 FROM ranked WHERE r > 3 GROUP BY s;
EOF
UB=$(q -c "SELECT sum(ub) FROM bounds")
LB=$(q -c "SELECT sum(lb) FROM bounds")

# The bounds honouring the same controls.  Netting only: the day's final net
# keeps every limit (they are set at or above each final net), but a
# reservation binds it: the payments below priority 8, with every inflow,
# may not take the account below the reserve (a tenth of an opening
# balance of 10.00 or more, as in the trials), so a participant needs its
# net, or if that is 10.00 or more, at least (the net of its low-priority
# outflows and all inflows) x 10/9.
q >/dev/null <<EOF
CREATE TABLE bounds_controlled AS
WITH f AS (
    SELECT s AS p, amount AS out_all, CASE WHEN priority < 8 THEN amount ELSE 0 END AS out_low, 0 AS inflow FROM day
    UNION ALL SELECT d, 0, 0, amount FROM day),
n AS (SELECT p, greatest(0, sum(out_all) - sum(inflow)) AS net,
             ceil((sum(out_low) - sum(inflow)) * 10 / 9.0)::bigint AS reserved FROM f GROUP BY p)
SELECT p, CASE WHEN net < 1000 THEN net ELSE greatest(net, reserved) END AS lb FROM n;
EOF
LB_C=$(q -c "SELECT sum(lb) FROM bounds_controlled")

# FIFO gross with the same controls (a simulation; without controls it needs
# exactly the upper bound): each payer's payments in arrival order, each
# settled as soon as it fits and the ones before it of the same payer have
# settled (no bypass, no netting, no optimiser): the balance (a payment
# below priority 8 may not take it below the reserve), the bilateral limit
# towards its payee or else the multilateral limit, with the payee's
# inflow freeing its own limit towards the payer.  Opening balances as in
# the trials (lower + s x upper bound per mille); returns the payments
# still queued at the end of the day.
q >/dev/null <<'EOF'
CREATE FUNCTION fifo_left(scale integer) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    np integer := (SELECT max(p) FROM bounds);
    bal bigint[];
    reserve bigint[];
    lim bigint[];           -- np*np: bilateral limit of s towards d, NULL none
    mlim bigint[];          -- multilateral limit of s, NULL none
    used bigint[];          -- np*np: net outflow so far, s towards d
    mused bigint[];         -- net outflow towards those without a bilateral limit
    q bigint[] := '{}';     -- queued payment ids, in arrival order
    blocked boolean[];
    progress boolean;
    left_ bigint[];
    pay record;
    ok boolean;
    k integer;
BEGIN
    SELECT array_agg(floor(lb + ub * scale / 1000)::bigint ORDER BY p) INTO bal FROM bounds;
    SELECT array_agg(CASE WHEN b >= 1000 THEN round(b / 10.0)::bigint ELSE 0 END) INTO reserve FROM unnest(bal) b;
    lim := array_fill(NULL::bigint, ARRAY[np * np]);
    used := array_fill(0::bigint, ARRAY[np * np]);
    mlim := array_fill(NULL::bigint, ARRAY[np]);
    mused := array_fill(0::bigint, ARRAY[np]);
    FOR pay IN SELECT * FROM lims LOOP
        IF pay.d IS NULL THEN mlim[pay.s] := pay.amount; ELSE lim[(pay.s - 1) * np + pay.d] := pay.amount; END IF;
    END LOOP;
    FOR r IN 1 .. (SELECT max(round) FROM day) LOOP
        q := q || (SELECT coalesce(array_agg(id ORDER BY id), '{}') FROM day WHERE day.round = r);
        LOOP
            progress := false;
            blocked := array_fill(false, ARRAY[np]);
            left_ := '{}';
            FOREACH k IN ARRAY q LOOP
                SELECT * INTO pay FROM day WHERE id = k;
                ok := NOT blocked[pay.s] AND bal[pay.s] - pay.amount >= CASE WHEN pay.priority < 8 THEN reserve[pay.s] ELSE 0 END;
                IF ok AND lim[(pay.s - 1) * np + pay.d] IS NOT NULL THEN
                    ok := used[(pay.s - 1) * np + pay.d] + pay.amount <= lim[(pay.s - 1) * np + pay.d];
                ELSIF ok AND mlim[pay.s] IS NOT NULL THEN
                    ok := mused[pay.s] + pay.amount <= mlim[pay.s];
                END IF;
                IF ok THEN
                    bal[pay.s] := bal[pay.s] - pay.amount;
                    bal[pay.d] := bal[pay.d] + pay.amount;
                    IF lim[(pay.s - 1) * np + pay.d] IS NOT NULL THEN
                        used[(pay.s - 1) * np + pay.d] := used[(pay.s - 1) * np + pay.d] + pay.amount;
                    ELSE
                        mused[pay.s] := mused[pay.s] + pay.amount;
                    END IF;
                    IF lim[(pay.d - 1) * np + pay.s] IS NOT NULL THEN
                        used[(pay.d - 1) * np + pay.s] := used[(pay.d - 1) * np + pay.s] - pay.amount;
                    ELSE
                        mused[pay.d] := mused[pay.d] - pay.amount;
                    END IF;
                    progress := true;
                ELSE
                    blocked[pay.s] := true;
                    left_ := left_ || k;
                END IF;
            END LOOP;
            q := left_;
            EXIT WHEN NOT progress;
        END LOOP;
    END LOOP;
    RETURN cardinality(q);
END
$$;
EOF

# one day at scale s (per mille of each participant's upper bound); prints
# queued-at-the-end|solver ms summed|cycles
cat >"$TMP/trial.sql" <<EOF
BEGIN;
CREATE TEMP TABLE bal AS SELECT p, floor(lb + ub * :s / 1000) AS minor FROM bounds;
CREATE TEMP TABLE round_cycle (r integer, cycle_id bigint);
SELECT count(*) FROM (SELECT settle_fund_account('cp' || p || '_usd', (minor / 100.0)::numeric(20, 2), 'bench')
                        FROM bal WHERE minor >= 1) x \g /dev/null
SELECT count(*) FROM (SELECT settle_set_bilateral_limit('cp' || s, 'cp' || d, 'USD', amount / 100.0)
                        FROM lims WHERE :controls AND d IS NOT NULL) x \g /dev/null
SELECT count(*) FROM (SELECT settle_set_multilateral_limit('cp' || s, 'USD', amount / 100.0)
                        FROM lims WHERE :controls AND d IS NULL) x \g /dev/null
SELECT count(*) FROM (SELECT settle_set_reservation('cp' || p || '_usd', (minor / 1000.0)::numeric(20, 2), 8)
                        FROM bal WHERE :controls AND minor >= 1000) x \g /dev/null
DO \$\$
BEGIN
    FOR r IN 1 .. $ROUNDS + $END LOOP
        PERFORM count(*) FROM settle_submit_bulk((SELECT coalesce(jsonb_agg(jsonb_build_object(
            'transaction_id', 't' || id, 'idempotency_key', 'k' || id, 'amount', (amount / 100.0)::text,
            'source_currency', 'USD', 'destination_currency', 'USD',
            'source_account', 'cp' || s || '_usd', 'destination_account', 'cp' || d || '_usd',
            'counterparty_id', 'cp' || d, 'priority', priority)), '[]') FROM day WHERE day.round = r));
        PERFORM settle_run_cycle();
        INSERT INTO round_cycle SELECT r, max(c.cycle_id) FROM settle.cycle c;
    END LOOP;
END
\$\$;
SELECT (SELECT count(*) FROM settle.payment WHERE status = 'queued') || '|' ||
       (SELECT round(coalesce(sum(solver_ms), 0)::numeric, 1) FROM settle.cycle) || '|' ||
       (SELECT count(*) FROM settle.cycle) || '|' ||
       (SELECT coalesce(round(sum((rc.r - d.round) * d.amount)::numeric / nullif(sum(d.amount), 0), 2), 0)
          FROM settle.payment p JOIN day d ON 't' || d.id = p.transaction_id
          JOIN (SELECT cycle_id, min(r) AS r FROM round_cycle GROUP BY cycle_id) rc ON rc.cycle_id = p.cycle_id
         WHERE p.status = 'settled');
ROLLBACK;
EOF
trial() { q -v s="$1" -v controls="$2" -f "$TMP/trial.sql" | tail -1; }

echo "# controls: $N payments among $P participants, $ROUNDS rounds + $END end-of-day cycles"
echo "# upper bound (FIFO gross, immediate): $(q -c "SELECT to_char($UB / 100.0, 'FM999999999990.00')") USD; lower bound (netting only): $(q -c "SELECT to_char($LB / 100.0, 'FM999999999990.00')") USD"
echo "# with the same controls: netting only needs $(q -c "SELECT to_char($LB_C / 100.0, 'FM999999999990.00')") USD ($(q -c "SELECT round(100.0 * $LB_C / nullif($LB, 0), 1)")% of the lower bound: the reservations)"
# FIFO gross with the controls: the same binary search over the same opening balances
lo=0 hi=3000
if [ "$(q -c "SELECT fifo_left(0)")" = 0 ]; then
    hi=0
elif [ "$(q -c "SELECT fifo_left($hi)")" != 0 ]; then
    hi=
    echo "# with the same controls: FIFO gross does not settle the day even with the lower bound + 3 x the upper bound ($(q -c "SELECT fifo_left(3000)") payments left: a payer's first payment waits on a limit that only its payee's payments, themselves waiting, would free)"
fi
if [ -n "$hi" ]; then
    for _ in $(seq 1 "$STEPS"); do
        [ "$hi" = 0 ] && break
        mid=$(((lo + hi) / 2))
        if [ "$(q -c "SELECT fifo_left($mid)")" = 0 ]; then hi=$mid; else lo=$mid; fi
    done
    need=$(q -c "SELECT sum(floor(lb + ub * $hi / 1000)) FROM bounds")
    echo "# with the same controls: FIFO gross (queued, no bypass) needs $(q -c "SELECT to_char($need / 100.0, 'FM999999999990.00')") USD = $(q -c "SELECT round(100.0 * $need / $UB, 1)")% of the upper bound"
fi
for controls in false true; do
    lo=0 hi=3000
    line=$(trial 0 "$controls")
    if [ "${line%%|*}" = 0 ]; then
        hi=0
    else
        line=$(trial "$hi" "$controls")
        if [ "${line%%|*}" != 0 ]; then
            echo "# controls $controls: the day does not settle even with the lower bound + 3 x the upper bound ($line)"
            continue
        fi
    fi
    for _ in $(seq 1 "$STEPS"); do
        [ "$hi" = 0 ] && break
        mid=$(((lo + hi) / 2))
        line=$(trial "$mid" "$controls")
        if [ "${line%%|*}" = 0 ]; then hi=$mid; else lo=$mid; fi
    done
    line=$(trial "$hi" "$controls")
    IFS='|' read -r left ms cycles delay <<<"$line"
    need=$(q -c "SELECT sum(floor(lb + ub * $hi / 1000)) FROM bounds")
    echo "# controls $controls: liquidity needed $(q -c "SELECT to_char($need / 100.0, 'FM999999999990.00')") USD = $(q -c "SELECT round(100.0 * $need / $UB, 1)")% of the upper bound, $(q -c "SELECT CASE WHEN $LB > 0 THEN round(100.0 * $need / $LB, 1) END")% of the lower bound; mean delay $delay rounds (value-weighted); solver $ms ms over $cycles cycles"
    eval "need_$controls=$need ms_$controls=$ms s_$controls=$hi"
done
# the controls' cost in cycle time at the same liquidity
if [ -n "${s_true:-}" ]; then
    IFS='|' read -r left ms cycles delay <<<"$(trial "$s_true" false)"
    echo "# at the controls' liquidity: solver ${ms_true} ms with the controls, $ms ms without ($cycles cycles; mean delay without: $delay rounds)"
fi
