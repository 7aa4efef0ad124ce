-- A participant's bilateral and multilateral limits and liquidity
-- reservations (issue #33): constraints of the cycle's model.  A payment a
-- limit holds back holds back no other payment of its payer; what offsets
-- settles inside a limit (netting), a ring settles under a zero limit;
-- a reservation keeps liquidity for urgent payments.  Own database.
CREATE DATABASE settle_controls;
\c settle_controls
CREATE EXTENSION settle;
\set VERBOSITY sqlstate
CREATE VIEW st AS
    SELECT transaction_id, status FROM settle.transactions ORDER BY transaction_id;
CREATE VIEW lim AS
    SELECT participant_id, counterparty_id, currency, kind, amount, used, headroom
      FROM settle.participant_limits ORDER BY 1, 2 NULLS FIRST, 3;
SELECT settle_create_participant(p) FROM unnest(ARRAY['ca', 'cb', 'cc', 'cd', 'ce', 'cf']) p;
SELECT settle_create_account('ca_usd', 'ca', 'USD', opening_balance => 1000),
       settle_create_account('cb_usd', 'cb', 'USD', opening_balance => 0),
       settle_create_account('cc_usd', 'cc', 'USD', opening_balance => 0),
       settle_create_account('cd_usd', 'cd', 'USD', opening_balance => 0),
       settle_create_account('ce_usd', 'ce', 'USD', opening_balance => 100),
       settle_create_account('cf_usd', 'cf', 'USD', opening_balance => 0);

------------------------------------------------------------------------
-- Bilateral limit: ca accepts a net outflow of at most 100 to cb today.
-- ca pays cb 150 (first, the most valuable), cc 50 and cb 60: the 150
-- would break the limit and waits; it holds back neither the 60 to cb
-- (which fits) nor the 50 to cc (no limit).
------------------------------------------------------------------------
SELECT settle_set_bilateral_limit('ca', 'cb', 'USD', 100);
SELECT * FROM lim;
SELECT status FROM settle_submit('b-150', 150, 'USD', 'USD', 'ca_usd', 'cb_usd', 'cb', 'k1', 9);
SELECT status FROM settle_submit('c-50', 50, 'USD', 'USD', 'ca_usd', 'cc_usd', 'cc', 'k2');
SELECT status FROM settle_submit('b-60', 60, 'USD', 'USD', 'ca_usd', 'cb_usd', 'cb', 'k3');
SELECT considered, settled FROM settle_run_cycle();
SELECT * FROM st;
SELECT * FROM lim;

------------------------------------------------------------------------
-- Netting inside the limit: cb (60) pays ca 120.  Alone, cb cannot pay it
-- and ca's 150 breaks the limit; together ca's net outflow to cb is
-- 150 - 120 = 30 within the 40 left, and cb ends at 60 + 150 - 120 = 90:
-- both settle in one cycle.
------------------------------------------------------------------------
SELECT status FROM settle_submit('back-120', 120, 'USD', 'USD', 'cb_usd', 'ca_usd', 'ca', 'k4');
SELECT considered, settled FROM settle_run_cycle();
SELECT * FROM st;
SELECT * FROM lim;
SELECT account_id, balance FROM settle.accounts WHERE account_id LIKE 'c%' ORDER BY 1;

------------------------------------------------------------------------
-- Multilateral limit: 100 towards everyone ca has no bilateral limit with;
-- the 50 to cc counts (used 50).  ca pays cd 60 (too much) and 30 (fits)
-- and cb 5 (the bilateral limit governs cb, with 10 left): 30 and 5 settle.
------------------------------------------------------------------------
SELECT settle_set_multilateral_limit('ca', 'USD', 100);
SELECT * FROM lim;
SELECT status FROM settle_submit('d-60', 60, 'USD', 'USD', 'ca_usd', 'cd_usd', 'cd', 'k5');
SELECT status FROM settle_submit('d-30', 30, 'USD', 'USD', 'ca_usd', 'cd_usd', 'cd', 'k6');
SELECT status FROM settle_submit('b-5', 5, 'USD', 'USD', 'ca_usd', 'cb_usd', 'cb', 'k7');
SELECT considered, settled FROM settle_run_cycle();
SELECT * FROM st WHERE transaction_id IN ('d-60', 'd-30', 'b-5');
SELECT * FROM lim;
-- raising the limit takes effect at the next cycle
SELECT settle_set_multilateral_limit('ca', 'USD', 200);
SELECT considered, settled FROM settle_run_cycle();
SELECT * FROM st WHERE transaction_id = 'd-60';

------------------------------------------------------------------------
-- Gridlock under a zero limit: cc and cd have nothing; cd accepts no net
-- outflow to cc at all; cc pays cd 70, cd pays cc 70: the pair nets to
-- zero everywhere and settles.  A third payment cd -> cc 10 would make
-- cd's net outflow to cc positive and waits, alone.
------------------------------------------------------------------------
SELECT settle_set_bilateral_limit('cd', 'cc', 'USD', 0);
SELECT status FROM settle_submit('ring-cd', 70, 'USD', 'USD', 'cd_usd', 'cc_usd', 'cc', 'k8');
SELECT status FROM settle_submit('ring-cc', 70, 'USD', 'USD', 'cc_usd', 'cd_usd', 'cd', 'k9');
SELECT status FROM settle_submit('cd-10', 10, 'USD', 'USD', 'cd_usd', 'cc_usd', 'cc', 'k10');
SELECT considered, settled FROM settle_run_cycle();
SELECT * FROM st WHERE transaction_id IN ('ring-cd', 'ring-cc', 'cd-10');
SELECT * FROM lim WHERE participant_id = 'cd';
SELECT settle_remove_limit('cd', 'cc', 'USD'), settle_remove_limit('cd', 'cc', 'USD');
SELECT considered, settled FROM settle_run_cycle();
SELECT * FROM st WHERE transaction_id = 'cd-10';

------------------------------------------------------------------------
-- Reservation: ce keeps 80 of its 100 for payments of priority 7 and up.
-- Low-priority payments may use 20: 15 settles, 50 waits; an urgent 70
-- uses the reserve.  An inflow of 40 (low priority, from cf) does not
-- free the 50: ce's low-priority payments would take it below its
-- reserve.  A standing reservation (10 for priority 3 and up) applies once
-- today's is removed, and lets the 50 (priority 5) settle.
------------------------------------------------------------------------
SELECT settle_set_reservation('ce_usd', 80, 7);
SELECT status FROM settle_submit('e-50', 50, 'USD', 'USD', 'ce_usd', 'cf_usd', 'cf', 'k11', 5);
SELECT status FROM settle_submit('e-15', 15, 'USD', 'USD', 'ce_usd', 'cf_usd', 'cf', 'k12', 5);
SELECT status FROM settle_submit('e-70', 70, 'USD', 'USD', 'ce_usd', 'cf_usd', 'cf', 'k13', 8);
SELECT considered, settled FROM settle_run_cycle();
SELECT * FROM st WHERE transaction_id LIKE 'e-%';
SELECT status FROM settle_submit('f-40', 40, 'USD', 'USD', 'cf_usd', 'ce_usd', 'ce', 'k14', 5);
SELECT considered, settled FROM settle_run_cycle();
SELECT * FROM st WHERE transaction_id IN ('e-50', 'f-40');
SELECT account_id, currency, standing, amount, min_priority, applies_today FROM settle.liquidity_reservations;
-- a standing reservation applies when today has none; today's replaces it
SELECT settle_set_reservation('ce_usd', 10, 3, standing => true);
SELECT account_id, standing, amount, min_priority, applies_today FROM settle.liquidity_reservations ORDER BY standing;
SELECT settle_remove_reservation('ce_usd');
SELECT account_id, standing, amount, min_priority, applies_today FROM settle.liquidity_reservations;
SELECT considered, settled FROM settle_run_cycle();
SELECT * FROM st WHERE transaction_id = 'e-50';
SELECT account_id, balance FROM settle.accounts WHERE account_id IN ('ce_usd', 'cf_usd') ORDER BY 1;

------------------------------------------------------------------------
-- A linked group under a limit: cg (100 EUR) accepts 50 net to ch.  A
-- group of 40 + 30 to ch waits whole; an unlinked 20 beside it settles.
-- Once ch pays 40 back, cg's net to ch is 40 + 30 - 40 = 30, within the
-- 30 left: the group and the payment back settle in one cycle.
------------------------------------------------------------------------
SELECT settle_create_participant(p) FROM unnest(ARRAY['cg', 'ch', 'ci', 'cj']) p;
SELECT settle_create_account('cg_eur', 'cg', 'EUR', opening_balance => 100),
       settle_create_account('ch_eur', 'ch', 'EUR', opening_balance => 0);
SELECT settle_set_bilateral_limit('cg', 'ch', 'EUR', 50);
SELECT status FROM settle_submit('g-40', 40, 'EUR', 'EUR', 'cg_eur', 'ch_eur', 'ch', 'g1', link_group => 'cg-pair', link_size => 2);
SELECT status FROM settle_submit('g-30', 30, 'EUR', 'EUR', 'cg_eur', 'ch_eur', 'ch', 'g2', link_group => 'cg-pair', link_size => 2);
SELECT status FROM settle_submit('g-20', 20, 'EUR', 'EUR', 'cg_eur', 'ch_eur', 'ch', 'g3');
SELECT considered, settled FROM settle_run_cycle();
SELECT * FROM st WHERE transaction_id LIKE 'g-%';
SELECT settle_fund_account('ch_eur', 20, 'top-up') IS NOT NULL AS funded;
SELECT status FROM settle_submit('h-40', 40, 'EUR', 'EUR', 'ch_eur', 'cg_eur', 'cg', 'g4');
SELECT considered, settled FROM settle_run_cycle();
SELECT * FROM st WHERE transaction_id LIKE 'g-%' OR transaction_id = 'h-40';
SELECT * FROM lim WHERE participant_id = 'cg';

------------------------------------------------------------------------
-- Across currencies: a payment counts in its source currency for the
-- payer's limit and in its destination currency for the payee's.  cj
-- (100 USD) accepts no net USD outflow to ci; cj pays ci 50 USD, ci pays
-- cj 40 EUR, credited as 50 USD at 1.25: cj's net USD outflow to ci is 0,
-- and both settle together (alone, cj's payment would wait).
------------------------------------------------------------------------
SELECT settle_set_fx_rate('EUR', 'USD', 1.25, 0) IS NOT NULL AS rate_set;
SELECT settle_create_account('ci_eur', 'ci', 'EUR', opening_balance => 100),
       settle_create_account('ci_usd', 'ci', 'USD'),
       settle_create_account('cj_usd', 'cj', 'USD', opening_balance => 100);
SELECT settle_set_bilateral_limit('cj', 'ci', 'USD', 0);
SELECT status FROM settle_submit('j-50', 50, 'USD', 'USD', 'cj_usd', 'ci_usd', 'ci', 'j1');
SELECT considered, settled FROM settle_run_cycle();
SELECT * FROM st WHERE transaction_id = 'j-50';
SELECT status FROM settle_submit('i-40', 40, 'EUR', 'USD', 'ci_eur', 'cj_usd', 'cj', 'j2');
SELECT considered, settled FROM settle_run_cycle();
SELECT * FROM st WHERE transaction_id IN ('j-50', 'i-40');
SELECT * FROM lim WHERE participant_id = 'cj';

------------------------------------------------------------------------
-- Refusals
------------------------------------------------------------------------
SELECT settle_set_bilateral_limit('ca', 'ca', 'USD', 1);      -- SE181
SELECT settle_set_bilateral_limit('ca', 'nobody', 'USD', 1);  -- SE040
SELECT settle_set_bilateral_limit('ca', NULL, 'USD', 1);      -- SE001
SELECT settle_set_bilateral_limit('ca', 'cb', 'USD', -1);     -- SE010
SELECT settle_set_bilateral_limit('ca', 'cb', 'USD', 0.001);  -- SE012
SELECT settle_set_multilateral_limit('ca', 'XYZ', 1);         -- SE021
SELECT settle_set_multilateral_limit('nobody', 'USD', 1);     -- SE040
SELECT settle_set_reservation('ce_usd', 1, 1);                -- SE050
SELECT settle_set_reservation('nope', 1, 5);                  -- SE030

------------------------------------------------------------------------
-- Rights: a participant sets its own controls only, reads only its own.
------------------------------------------------------------------------
CREATE ROLE regress_ctl_ca LOGIN IN ROLE settle_submitter;
CREATE ROLE regress_ctl_cb LOGIN IN ROLE settle_submitter;
SELECT settle_map_role('regress_ctl_ca', 'ca'), settle_map_role('regress_ctl_cb', 'cb');
SET ROLE regress_ctl_cb;
SELECT settle_set_bilateral_limit('cb', 'ca', 'USD', 500);
SELECT settle_set_bilateral_limit('ca', 'cb', 'USD', 500);    -- SE180
SELECT settle_set_reservation('ce_usd', 1, 5);                -- SE030: not its account
SELECT settle_set_reservation('cb_usd', 20, 9, true);
-- the table itself: row-level security refuses another participant's rows
INSERT INTO settle.participant_limit (participant_id, counterparty_id, currency, amount)
    VALUES ('ca', 'cc', 'USD', 1);                            -- 42501
UPDATE settle.participant_limit SET amount = 1 WHERE participant_id = 'ca';
SELECT participant_id, counterparty_id, amount FROM settle.participant_limits;
SELECT account_id, amount FROM settle.liquidity_reservations;
SELECT settle_remove_limit('ca', 'cb', 'USD');                -- SE180
RESET ROLE;
SELECT participant_id, counterparty_id, amount FROM settle.participant_limit ORDER BY 1, 2 NULLS FIRST;

-- every change an event, with who made it
SELECT entity, entity_id, event_type, details - 'by' - 'valid_on' AS details,
       details->>'valid_on' IS NOT NULL AS one_day, details->>'by' AS by
  FROM settle.events WHERE event_type ~ '(limit|reservation)_' ORDER BY event_id;

-- the ledger and the events still verify, and replay
SELECT problem, entity, entity_id FROM settle_verify();
SELECT count(*) AS replay_differences FROM settle_replay();

\c contrib_regression
DROP DATABASE settle_controls;
DROP ROLE regress_ctl_ca;
DROP ROLE regress_ctl_cb;
