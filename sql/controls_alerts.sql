-- Early warnings (issue #33): a participant is warned when its available
-- liquidity, or the lowest headroom of its limits, falls below a threshold
-- it sets; raised once on the way down, cleared once on the way back, an
-- event each (the NOTIFY: isolation controls_concurrent), and a metric.
-- Own database.
CREATE DATABASE settle_alerts;
\c settle_alerts
CREATE EXTENSION settle;
\set VERBOSITY sqlstate
CREATE VIEW al AS
    SELECT participant_id, currency, kind, threshold, value, counterparty_id, alerting
      FROM settle.participant_alerts ORDER BY 1, 2, 3;
CREATE VIEW ev AS
    SELECT entity_id, event_type, details - 'by' AS details FROM settle.events
     WHERE event_type LIKE 'alert%' ORDER BY event_id;
SELECT settle_create_participant(p) FROM unnest(ARRAY['wa', 'wb']) p;
SELECT settle_create_account('wa_usd', 'wa', 'USD', opening_balance => 100, lower_limit => 20),
       settle_create_account('wb_usd', 'wb', 'USD');

SELECT settle_set_alert('wa', 'USD', 'liquidity', 50);
SELECT settle_set_bilateral_limit('wa', 'wb', 'USD', 80);
SELECT settle_set_alert('wa', 'USD', 'headroom', 30);
SELECT * FROM al;
-- wa pays wb 60: available 120 -> 60 (no alert), headroom 80 -> 20 (raised)
SELECT status FROM settle_submit('w1', 60, 'USD', 'USD', 'wa_usd', 'wb_usd', 'wb', 'k1');
SELECT considered, settled FROM settle_run_cycle();
SELECT * FROM al;
SELECT * FROM ev;
-- wa pays 15 more: available 45 (raised); the headroom alert stays raised (no second event)
SELECT status FROM settle_submit('w2', 15, 'USD', 'USD', 'wa_usd', 'wb_usd', 'wb', 'k2');
SELECT considered, settled FROM settle_run_cycle();
SELECT * FROM al;
SELECT metric, labels, value FROM settle.metrics WHERE family = 'alerts' ORDER BY labels->>'kind';
-- wb pays back 40: both clear
SELECT settle_fund_account('wb_usd', 40, 'top-up') IS NOT NULL AS funded;
SELECT status FROM settle_submit('w3', 40, 'USD', 'USD', 'wb_usd', 'wa_usd', 'wa', 'k3');
SELECT considered, settled FROM settle_run_cycle();
SELECT * FROM al;
SELECT * FROM ev;
SELECT metric, labels, value FROM settle.metrics WHERE family = 'alerts' ORDER BY labels->>'kind';
-- a headroom alert without limits in the currency watches nothing
SELECT settle_set_alert('wb', 'USD', 'headroom', 1000);
SELECT considered, settled FROM settle_run_cycle();
SELECT * FROM al WHERE participant_id = 'wb';

-- refusals and rights
SELECT settle_set_alert('wa', 'USD', 'balance', 1);           -- SE185
SELECT settle_set_alert('wa', 'USD', 'liquidity', -1);         -- SE010
CREATE ROLE regress_alerts_wb LOGIN IN ROLE settle_submitter;
SELECT settle_map_role('regress_alerts_wb', 'wb');
SET ROLE regress_alerts_wb;
SELECT settle_set_alert('wa', 'USD', 'liquidity', 1);          -- SE180
SELECT settle_set_alert('wb', 'USD', 'liquidity', 5);
SELECT participant_id, kind, threshold FROM settle.participant_alerts ORDER BY 2;
UPDATE settle.participant_alert SET alerting_since = now();   -- 42501: not its to set
SELECT settle_remove_alert('wb', 'USD', 'headroom'), settle_remove_alert('wb', 'USD', 'headroom');
RESET ROLE;
SELECT entity_id, event_type, details - 'by' AS details, details->>'by' AS by FROM settle.events
 WHERE event_type IN ('alert_set', 'alert_removed') ORDER BY event_id;

\c contrib_regression
DROP DATABASE settle_alerts;
DROP ROLE regress_alerts_wb;
