-- Linked payments, all or nothing (issue #16, item 10): a group settles
-- once complete, all of its members in one cycle or none; an incomplete
-- group waits; a member refused at intake fails the group, an expired
-- member expires it; strangers cannot join; replays compare the link.
-- Own database.
CREATE DATABASE settle_links;
\c settle_links
CREATE EXTENSION settle;
\set VERBOSITY sqlstate
CREATE VIEW st AS
    SELECT transaction_id, status FROM settle.transactions ORDER BY transaction_id;
CREATE VIEW groups AS
    SELECT link_group, link_size, members, status, reason FROM settle.link_groups ORDER BY link_group;
SELECT settle_create_participant(p) FROM unnest(ARRAY['la', 'lb', 'lc', 'ld']) p;
SELECT settle_create_account('la_usd', 'la', 'USD', opening_balance => 100),
       settle_create_account('lb_usd', 'lb', 'USD', opening_balance => 0),
       settle_create_account('lb_eur', 'lb', 'EUR', opening_balance => 100),
       settle_create_account('la_eur', 'la', 'EUR', opening_balance => 0),
       settle_create_account('lc_usd', 'lc', 'USD', opening_balance => 1000),
       settle_create_account('ld_usd', 'ld', 'USD', opening_balance => 0);

------------------------------------------------------------------------
-- Payment versus payment: la pays lb 100 USD, lb pays la 90 EUR, linked.
-- The first leg alone waits (the group is incomplete) although la could
-- pay it; with both legs the group settles in one cycle.
------------------------------------------------------------------------
SELECT status FROM settle_submit('pvp-usd', 100, 'USD', 'USD', 'la_usd', 'lb_usd', 'lb', 'k1',
                                 link_group => 'trade-7', link_size => 2);
SELECT considered, settled FROM settle_run_cycle();
SELECT * FROM st;
SELECT * FROM groups;
SELECT status FROM settle_submit('pvp-eur', 90, 'EUR', 'EUR', 'lb_eur', 'la_eur', 'la', 'k2',
                                 link_group => 'trade-7', link_size => 2);
SELECT * FROM groups;
SELECT considered, settled FROM settle_run_cycle();
SELECT * FROM st;
SELECT account_id, balance FROM settle.accounts WHERE account_id LIKE 'l%' ORDER BY 1;
SELECT * FROM groups;

------------------------------------------------------------------------
-- All or nothing under scarce liquidity: lc pays ld 600 and 600 (linked,
-- size 2) with 1000: either alone fits, both do not.  Nothing of the group
-- settles; an unlinked payment of lc (300) settles beside it.  After a
-- funding of 200 the group settles whole.
------------------------------------------------------------------------
SELECT count(*) FROM settle_submit_bulk('[
  {"transaction_id": "pay-1", "amount": "600", "source_currency": "USD", "destination_currency": "USD",
   "source_account": "lc_usd", "destination_account": "ld_usd", "counterparty_id": "ld",
   "idempotency_key": "k3", "link_group": "payroll-1", "link_size": 2},
  {"transaction_id": "pay-2", "amount": "600", "source_currency": "USD", "destination_currency": "USD",
   "source_account": "lc_usd", "destination_account": "ld_usd", "counterparty_id": "ld",
   "idempotency_key": "k4", "link_group": "payroll-1", "link_size": 2},
  {"transaction_id": "solo", "amount": "300", "source_currency": "USD", "destination_currency": "USD",
   "source_account": "lc_usd", "destination_account": "ld_usd", "counterparty_id": "ld",
   "idempotency_key": "k5"}]') WHERE sqlstate IS NULL;
SELECT considered, settled FROM settle_run_cycle();
SELECT * FROM st WHERE transaction_id IN ('pay-1', 'pay-2', 'solo');
SELECT settle_fund_account('lc_usd', 500, 'top-up') IS NOT NULL AS funded;
SELECT considered, settled FROM settle_run_cycle();
SELECT * FROM st WHERE transaction_id IN ('pay-1', 'pay-2', 'solo');
SELECT * FROM groups;

------------------------------------------------------------------------
-- A ring that only settles as a group: le -> lf -> lg -> le, 50 each, no
-- liquidity anywhere; linked, they settle in one cycle (every net is 0).
------------------------------------------------------------------------
SELECT settle_create_participant(p) FROM unnest(ARRAY['le', 'lf', 'lg']) p;
SELECT settle_create_account(p || '_usd', p, 'USD') FROM unnest(ARRAY['le', 'lf', 'lg']) p;
SELECT status FROM settle_submit('ring-1', 50, 'USD', 'USD', 'le_usd', 'lf_usd', 'lf', 'r1', link_group => 'ring', link_size => 3);
SELECT status FROM settle_submit('ring-2', 50, 'USD', 'USD', 'lf_usd', 'lg_usd', 'lg', 'r2', link_group => 'ring', link_size => 3);
SELECT considered, settled FROM settle_run_cycle();
SELECT * FROM st WHERE transaction_id LIKE 'ring-%';
SELECT status FROM settle_submit('ring-3', 50, 'USD', 'USD', 'lg_usd', 'le_usd', 'le', 'r3', link_group => 'ring', link_size => 3);
SELECT considered, settled FROM settle_run_cycle();
SELECT * FROM st WHERE transaction_id LIKE 'ring-%';

------------------------------------------------------------------------
-- Intake rules: both fields or neither, size 2..1000 (SE080); the same
-- size as the group (SE081); a full or ended group (SE082); only the
-- parties of the group's payments may join (SE083); a retry with the same
-- link is a replay, with another link a conflict (SE060).
------------------------------------------------------------------------
SELECT status FROM settle_submit('bad-1', 1, 'USD', 'USD', 'lc_usd', 'ld_usd', 'ld', 'b1', link_group => 'g1');
SELECT status FROM settle_submit('bad-2', 1, 'USD', 'USD', 'lc_usd', 'ld_usd', 'ld', 'b2', link_size => 2);
SELECT status FROM settle_submit('bad-3', 1, 'USD', 'USD', 'lc_usd', 'ld_usd', 'ld', 'b3', link_group => 'g1', link_size => 1);
SELECT status FROM settle_submit('bad-4', 1, 'USD', 'USD', 'lc_usd', 'ld_usd', 'ld', 'b4', link_group => 'g1', link_size => 1001);
SELECT status FROM settle_submit('bad-5', 1, 'USD', 'USD', 'lc_usd', 'ld_usd', 'ld', 'b5', link_group => 'has space', link_size => 2);
SELECT status FROM settle_submit('g2-1', 1, 'USD', 'USD', 'lc_usd', 'ld_usd', 'ld', 'g2a', link_group => 'g2', link_size => 2);
SELECT status FROM settle_submit('g2-x', 1, 'USD', 'USD', 'lc_usd', 'ld_usd', 'ld', 'g2x', link_group => 'g2', link_size => 3);
-- la is neither lc nor ld: not a party of g2 (nor can it be made one by joining)
SELECT status FROM settle_submit('g2-y', 1, 'USD', 'USD', 'la_usd', 'ld_usd', 'ld', 'g2y', link_group => 'g2', link_size => 2);
-- ld (the payee of the first member) may join
SELECT status FROM settle_submit('g2-2', 1, 'USD', 'USD', 'ld_usd', 'lc_usd', 'lc', 'g2b', link_group => 'g2', link_size => 2);
SELECT status FROM settle_submit('g2-3', 1, 'USD', 'USD', 'lc_usd', 'ld_usd', 'ld', 'g2c', link_group => 'g2', link_size => 2);
SELECT status FROM settle_submit('trade-late', 1, 'USD', 'USD', 'la_usd', 'lb_usd', 'lb', 'k9', link_group => 'trade-7', link_size => 2);
-- replays
SELECT status, replay FROM settle_submit('g2-1', 1, 'USD', 'USD', 'lc_usd', 'ld_usd', 'ld', 'g2a', link_group => 'g2', link_size => 2);
SELECT status, replay FROM settle_submit('g2-1', 1, 'USD', 'USD', 'lc_usd', 'ld_usd', 'ld', 'g2a');
SELECT status, replay FROM settle_submit('g2-1', 1, 'USD', 'USD', 'lc_usd', 'ld_usd', 'ld', 'g2a', link_group => 'g3', link_size => 2);
SELECT status, replay FROM settle_submit('solo', 300, 'USD', 'USD', 'lc_usd', 'ld_usd', 'ld', 'k5', link_group => 'g4', link_size => 2);
SELECT * FROM groups WHERE link_group LIKE 'g%';

------------------------------------------------------------------------
-- settle_submit_bulk: a member refused at intake fails its group, and the
-- member already queued fails with it; a stranger's refused row does not
-- fail someone else's group.
------------------------------------------------------------------------
SELECT ordinal, status, sqlstate FROM settle_submit_bulk('[
  {"transaction_id": "h-1", "amount": "5", "source_currency": "USD", "destination_currency": "USD",
   "source_account": "lc_usd", "destination_account": "ld_usd", "counterparty_id": "ld",
   "idempotency_key": "h1", "link_group": "batch-h", "link_size": 3},
  {"transaction_id": "h-2", "amount": "5", "source_currency": "USD", "destination_currency": "USD",
   "source_account": "lc_usd", "destination_account": "nowhere", "counterparty_id": "ld",
   "idempotency_key": "h2", "link_group": "batch-h", "link_size": 3}]') ORDER BY ordinal;
SELECT * FROM st WHERE transaction_id LIKE 'h-%';
SELECT * FROM groups WHERE link_group = 'batch-h';
SELECT status FROM settle_submit('h-3', 5, 'USD', 'USD', 'lc_usd', 'ld_usd', 'ld', 'h3', link_group => 'batch-h', link_size => 3);
SELECT status FROM settle_submit('i-1', 5, 'USD', 'USD', 'lc_usd', 'ld_usd', 'ld', 'i1', link_group => 'batch-i', link_size => 2);
SELECT ordinal, status, sqlstate FROM settle_submit_bulk('[
  {"transaction_id": "i-x", "amount": "5", "source_currency": "USD", "destination_currency": "USD",
   "source_account": "la_usd", "destination_account": "nowhere", "counterparty_id": "lb",
   "idempotency_key": "ix", "link_group": "batch-i", "link_size": 2}]');
SELECT * FROM groups WHERE link_group = 'batch-i';

------------------------------------------------------------------------
-- An expired member expires its group; an incomplete group expires after
-- settle.link_timeout.
------------------------------------------------------------------------
SELECT status FROM settle_submit('j-1', 5, 'USD', 'USD', 'lc_usd', 'ld_usd', 'ld', 'j1', link_group => 'batch-j', link_size => 2,
                                 deadline => clock_timestamp() + interval '200 milliseconds');
SELECT pg_sleep(0.3);
SELECT status FROM settle_submit('j-2', 5, 'USD', 'USD', 'lc_usd', 'ld_usd', 'ld', 'j2', link_group => 'batch-j', link_size => 2);
SELECT considered, settled FROM settle_run_cycle();
SELECT * FROM st WHERE transaction_id LIKE 'j-%';
SELECT * FROM groups WHERE link_group = 'batch-j';
SET settle.link_timeout = '100ms';
SELECT pg_sleep(0.2);
SELECT considered FROM settle_run_cycle();
SELECT * FROM groups WHERE link_group IN ('batch-i', 'g1');
SELECT * FROM st WHERE transaction_id = 'i-1';
RESET settle.link_timeout;

-- events name the group; verify and replay are clean
SELECT event_type, from_status, to_status, details->>'link_group' AS link_group
  FROM settle.event WHERE entity = 'payment'
   AND entity_id = (SELECT payment_id::text FROM settle.payment WHERE transaction_id = 'i-1') ORDER BY event_id;
SELECT problem, entity, entity_id FROM settle_verify();
SELECT count(*) AS differences FROM settle_replay();

-- a participant sees only its own groups
CREATE ROLE regress_links_lc LOGIN IN ROLE settle_submitter;
SELECT settle_map_role('regress_links_lc', 'lc');
SET ROLE regress_links_lc;
SELECT link_group, status FROM settle.link_groups ORDER BY 1;
SELECT count(*) FROM settle.link_group;
RESET ROLE;

\c postgres
DROP DATABASE settle_links;
DROP ROLE regress_links_lc;
