-- Replay of the controls (issue #33): every change of a limit, reservation,
-- alert threshold, and a queued payment's priority and position is an
-- event, and settle_replay() rebuilds them from the event log alone (also
-- once the events are archived: the archive carries each control's last
-- change) and compares them with the tables.  A change that bypassed the
-- events shows as a difference.  Own database.
CREATE DATABASE settle_controls_replay;
\c settle_controls_replay
CREATE EXTENSION settle;
\set VERBOSITY sqlstate
SELECT settle_create_participant(p) FROM unnest(ARRAY['ra', 'rb', 'rc']) p;
SELECT settle_create_account('ra_usd', 'ra', 'USD', opening_balance => 100),
       settle_create_account('rb_usd', 'rb', 'USD', opening_balance => 100);
CREATE FUNCTION pid(t text) RETURNS bigint LANGUAGE sql AS
    $$ SELECT payment_id FROM settle.payment WHERE transaction_id = t $$;
-- today's reservation named without its date
CREATE VIEW controls AS
    SELECT entity, entity_id, replace(field, to_char(settle._settlement_date(), 'YYYY-MM-DD'), 'TODAY') AS field,
           replayed, current, equal
      FROM settle_replay(false)
     WHERE field ~ '^(limit|alert|reservation) ' OR field IN ('queue_priority', 'queued_since')
     ORDER BY 1, 2, 3;

-- before the horizon: controls set, changed, removed; a payment's queue changed
SELECT settle_set_bilateral_limit('ra', 'rb', 'USD', 50);
SELECT settle_set_bilateral_limit('ra', 'rb', 'USD', 40);
SELECT settle_set_bilateral_limit('ra', 'rc', 'USD', 5);
SELECT settle_remove_limit('ra', 'rc', 'USD');
SELECT settle_set_multilateral_limit('ra', 'USD', 70);
SELECT settle_set_reservation('ra_usd', 20, 8);
SELECT settle_set_reservation('ra_usd', 10, 7, standing => true);
SELECT settle_set_alert('ra', 'USD', 'liquidity', 30);
SELECT status FROM settle_submit('big', 500, 'USD', 'USD', 'ra_usd', 'rb_usd', 'rb', 'k1');
SELECT settle_change_priority(pid('big'), 9);
SELECT settle_move_payment(pid('big'), 'back');
SELECT entity, entity_id, field, replayed, equal FROM controls WHERE field <> 'queued_since';
SELECT field, equal FROM controls WHERE field = 'queued_since';
SELECT count(*) AS differences FROM settle_replay();

-- archived: the controls' events leave settle.event, their last state is carried
SELECT count(*) AS chains_sealed FROM settle_seal();
SELECT clock_timestamp() AS horizon \gset
SELECT pg_sleep(0.01);
SELECT settle_set_alert('ra', 'USD', 'headroom', 5);          -- after the horizon
SELECT settle_remove_reservation('ra_usd', standing => true);  -- after the horizon
SELECT events > 0 AS archived FROM settle_archive(:'horizon');
SELECT string_agg(event_type, ', ' ORDER BY event_id) AS control_events_left FROM settle.event
 WHERE event_type IN ('bilateral_limit_set', 'multilateral_limit_set', 'reservation_set', 'alert_set', 'priority_changed',
                      'moved', 'reservation_removed', 'bilateral_limit_removed');
SELECT replace(field, to_char(settle._settlement_date(), 'YYYY-MM-DD'), 'TODAY') AS field, value IS NULL AS removed
  FROM settle.archive_state
 WHERE field ~ '^(limit|alert|reservation) ' OR field IN ('queue_priority', 'queued_since') ORDER BY 1;
SELECT entity, entity_id, field, replayed, equal FROM controls WHERE field <> 'queued_since';
SELECT field, equal FROM controls WHERE field = 'queued_since';
SELECT count(*) AS differences FROM settle_replay();

-- a change that wrote no event (triggers off, as a restore of a bad copy would): a difference
SET session_replication_role = replica;
UPDATE settle.participant_limit SET amount = 999 WHERE counterparty_id = 'rb';
UPDATE settle.payment SET queue_priority = 2 WHERE transaction_id = 'big';
DELETE FROM settle.participant_alert WHERE kind = 'headroom';
RESET session_replication_role;
SELECT entity, field, replayed, current FROM settle_replay() ORDER BY 1, 2;

\c contrib_regression
DROP DATABASE settle_controls_replay;
