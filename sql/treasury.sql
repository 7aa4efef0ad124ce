-- What a participant's treasurer reads (issue #21): the liquidity forecast
-- (docs/LIQUIDITY.md) on a history without noise, where the answer is
-- known exactly; its metrics; and who may read a forecast and a statement
-- (docs/AUDIT.md).  The statement's proofs are checked offline by
-- test/scripts/statement.sh.  Own database.
CREATE DATABASE settle_treasury;
\c settle_treasury
CREATE EXTENSION settle;
SET TimeZone = 'UTC';
SELECT settle_create_participant(p) FROM unnest(ARRAY['tr_a', 'tr_b']) p;
SELECT settle_create_account('tr_a_usd', 'tr_a', 'USD', lower_limit => 20, opening_balance => 100),
       settle_create_account('tr_b_usd', 'tr_b', 'USD', opening_balance => 1000);

------------------------------------------------------------------------
-- 1. Eight weeks of payment legs before Monday 2026-03-02: every day tr_a
--    pays 100.00 between 10:00 and 11:00 (200.00 on Mondays) and receives
--    50.00 between 14:00 and 15:00.  (Written straight into the ledger: a
--    history, not a balanced one.)
------------------------------------------------------------------------
INSERT INTO settle.ledger_entry (journal_id, payment_id, account_id, currency, amount, posted_at)
SELECT 1, 1, 'tr_a_usd', 'USD', x.amount, d + x.at
  FROM generate_series('2026-01-05'::timestamptz, '2026-03-01'::timestamptz, interval '1 day') d,
       LATERAL (VALUES (CASE WHEN extract(isodow FROM d) = 1 THEN -20000 ELSE -10000 END, interval '10 hours 20 minutes'),
                       (5000, interval '14 hours 5 minutes')) x(amount, at);
-- the forecast for the Monday, as of 09:30: the Monday factor (1.75) times
-- the deseasonalised level (114.29) is exactly 200.00, all of it in the
-- 10:00 interval; 50.00 in at 14:00
SELECT currency, window_kind, window_start, window_end, expected_outflow, expected_inflow, expected_net_outflow,
       cumulative_net_outflow, available, shortfall
  FROM settle_liquidity_forecast('tr_a', '2026-03-02 09:30+00')
 WHERE window_kind = 'end_of_day' OR expected_outflow <> 0 OR expected_inflow <> 0 OR window_start < '2026-03-02 10:00+00';
-- a Tuesday, 2-hour intervals, as of 12:00: the outflow is past, the inflow to
-- come; the Monday before has no history, a day without flows: 46.94, not 50.00
SELECT window_kind, window_start, expected_outflow, expected_inflow, cumulative_net_outflow, shortfall
  FROM settle_liquidity_forecast('tr_a', '2026-03-03 12:00+00', slot_minutes => 120)
 WHERE window_kind = 'end_of_day' OR expected_inflow <> 0;
SELECT count(*) FROM settle_liquidity_forecast('tr_a', '2026-03-02 00:00+00') WHERE window_kind = 'interval';
SELECT * FROM settle_liquidity_forecast('tr_a', now(), slot_minutes => 7);

------------------------------------------------------------------------
-- 2. The stored forecasts and the metrics: today's forecast of every
--    participant; the five liquidity series per participant and currency.
------------------------------------------------------------------------
SELECT settle_refresh_liquidity_forecast() > 0 AS refreshed;
SELECT participant_id, currency, count(*) AS slots FROM settle.liquidity_forecast GROUP BY 1, 2 ORDER BY 1, 2;
SELECT metric, count(*) AS series, bool_and(value >= 0) FILTER (WHERE metric LIKE '%shortfall') AS shortfall_not_negative
  FROM settle.metrics WHERE family = 'liquidity' GROUP BY metric ORDER BY metric;

------------------------------------------------------------------------
-- 3. Rights: tr_b's login reads its own forecast and statement, and
--    neither of tr_a; an unmapped login neither.
------------------------------------------------------------------------
CREATE ROLE tr_login_b;
CREATE ROLE tr_unmapped IN ROLE settle_submitter;
SELECT settle_map_role('tr_login_b', 'tr_b');
SELECT count(*) > 0 AS sealed FROM settle_seal();
SET ROLE tr_login_b;
SELECT currency, window_kind, expected_outflow FROM settle_liquidity_forecast('tr_b', '2026-03-02 12:00+00')
 WHERE window_kind = 'end_of_day';
SELECT s->>'participant_id' AS participant, jsonb_array_length(s->'accounts') AS accounts,
       (SELECT sum(jsonb_array_length(a->'entries')) FROM jsonb_array_elements(s->'accounts') a) AS entries,
       (s->'tree'->>'size')::bigint > 0 AS tree
  FROM settle_statement('tr_b', '-infinity', 'infinity') s;
SELECT DISTINCT participant_id FROM settle.liquidity_forecast;
SELECT count(*) AS leaves_seen FROM settle.ledger_leaf;
SELECT * FROM settle_liquidity_forecast('tr_a');
SELECT * FROM settle_statement('tr_a', '-infinity', 'infinity');
RESET ROLE;
SET ROLE tr_unmapped;
SELECT * FROM settle_liquidity_forecast('tr_b');
SELECT * FROM settle_statement('tr_b', '-infinity', 'infinity');
RESET ROLE;
\c contrib_regression
DROP DATABASE settle_treasury;
DROP ROLE tr_login_b;
DROP ROLE tr_unmapped;
