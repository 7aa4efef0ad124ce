-- Hostile input: every field of settle_submit, the bulk path and the
-- reference-data functions against NULLs, empty and padded strings, bad
-- amounts, unknown and wrong accounts, overlong and control characters,
-- quoting and injection strings, unusual Unicode.  Each case has the
-- SQLSTATE documented in docs/ERRORS.md; row counts prove nothing was
-- written.  Runs in its own database.
CREATE DATABASE settle_hostile;
\c settle_hostile
CREATE EXTENSION settle;
SELECT settle_create_participant('bank_h1'), settle_create_participant('bank_h2'), settle_create_participant('bank_h3');
SELECT settle_create_account('acc_h1', 'bank_h1', 'USD', opening_balance => 100),
       settle_create_account('acc_h2', 'bank_h2', 'USD'),
       settle_create_account('acc_h3', 'bank_h3', 'USD'),
       settle_create_account('acc_h4', 'bank_h2', 'EUR'),
       settle_create_account('acc_h5', 'bank_h2', 'USD');
SELECT settle_set_account_status('acc_h5', 'closed');
SELECT settle_set_participant_status('bank_h3', 'suspended');

CREATE FUNCTION sqlstate_of(call text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE call;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE;
END
$$;

-- The valid call, as SQL literals; each case replaces one argument.
CREATE TABLE template (pos int, name text, literal text);
INSERT INTO template VALUES
  (1, 'transaction_id', $$'h_tx'$$), (2, 'amount', '10'), (3, 'source_currency', $$'USD'$$),
  (4, 'destination_currency', $$'USD'$$), (5, 'source_account', $$'acc_h1'$$),
  (6, 'destination_account', $$'acc_h2'$$), (7, 'counterparty_id', $$'bank_h2'$$),
  (8, 'idempotency_key', $$'h_key'$$), (9, 'priority', '5'), (10, 'deadline', 'NULL');

CREATE TABLE cases (id serial, field text, literal text, expected text);

-- text-like values that break every identifier field
CREATE TABLE bad_identifier (literal text, expected text);
INSERT INTO bad_identifier VALUES
  ('NULL', 'SE001'), ($$''$$, 'SE002'), ($$' '$$, 'SE004'), ($$' h_tx'$$, 'SE004'), ($$'h_tx '$$, 'SE004'),
  ($$repeat('x', 129)$$, 'SE003'), ($$repeat('x', 100000)$$, 'SE003'), ($$E'h\x01'$$, 'SE004'),
  ($$E'h\n'$$, 'SE004'), ($$E'h\t1'$$, 'SE004'), ($$E'\x7f'$$, 'SE004'), ($$'h€'$$, 'SE004'),
  ($$U&'h\200B'$$, 'SE004'), ($$U&'\202Eh'$$, 'SE004'), ($$U&'h\FF41'$$, 'SE004'), ($$'h😀'$$, 'SE004'),
  ($$'e' || U&'\0301'$$, 'SE004'), ($$'x; DROP TABLE settle.payment; --'$$, 'SE004');
-- on client keys (transaction_id, idempotency_key) quoting characters are printable ASCII: allowed
INSERT INTO cases (field, literal, expected)
  SELECT f, b.literal, b.expected FROM bad_identifier b, unnest(ARRAY['transaction_id', 'idempotency_key']) f;
INSERT INTO cases (field, literal, expected)
  SELECT f, b.literal, CASE WHEN b.expected = 'SE004' OR b.literal = $$' '$$ THEN 'SE004' ELSE b.expected END
    FROM bad_identifier b, unnest(ARRAY['source_account', 'destination_account', 'counterparty_id']) f;
INSERT INTO cases (field, literal, expected) VALUES
  ('source_account', $$'acc_h1''--'$$, 'SE004'), ('source_account', $$'acc_h1" OR 1=1'$$, 'SE004'),
  ('source_account', $$'_settlement.USD'$$, 'SE004'), ('source_account', $$'ACC_H1'$$, 'SE030'),
  ('source_account', $$'acc_h9'$$, 'SE030'), ('source_account', $$'acc_h4'$$, 'SE032'),
  ('source_account', $$'acc_h5'$$, 'SE031'), ('source_account', $$'acc_h2'$$, 'SE033'),
  ('source_account', $$'acc_h3'$$, 'SE041'),
  ('destination_account', $$'acc_h9'$$, 'SE030'), ('destination_account', $$'acc_h4'$$, 'SE032'),
  ('destination_account', $$'acc_h5'$$, 'SE031'), ('destination_account', $$'acc_h1'$$, 'SE033'),
  ('destination_account', $$'acc_h3'$$, 'SE034'),
  ('counterparty_id', $$'bank_h9'$$, 'SE040'), ('counterparty_id', $$'bank_h3'$$, 'SE041'),
  ('counterparty_id', $$'bank_h1'$$, 'SE034'), ('counterparty_id', $$'BANK_H2'$$, 'SE040'),
  ('counterparty_id', $$'_settle'$$, 'SE004'),
  ('transaction_id', $$'x''; DROP TABLE settle.payment; --'$$, 'SE004'),
  ('transaction_id', $$'Robert''),DROP'$$, 'ok'), ('idempotency_key', $$'%s%n%x'$$, 'ok'),
  ('transaction_id', $$repeat('t', 128)$$, 'ok'), ('idempotency_key', $$'\\x00'$$, 'ok');
-- currency codes
INSERT INTO cases (field, literal, expected)
  SELECT f, c.literal, c.expected FROM (VALUES
    ('NULL', 'SE001'), ($$''$$, 'SE020'), ($$'usd'$$, 'SE020'), ($$'Usd'$$, 'SE020'), ($$' USD'$$, 'SE020'),
    ($$'USD '$$, 'SE020'), ($$'US'$$, 'SE020'), ($$'USDD'$$, 'SE020'), ($$'U$D'$$, 'SE020'),
    ($$'123'$$, 'SE020'), ($$'ÜSD'$$, 'SE020'), ($$U&'\FF35SD'$$, 'SE020'), ($$E'US\x01'$$, 'SE020'),
    ($$'XXX'$$, 'SE021'), ($$'ABC'$$, 'SE021'), ($$'EUR'$$, 'SE032')) c(literal, expected),
    unnest(ARRAY['source_currency', 'destination_currency']) f;
-- amounts
INSERT INTO cases (field, literal, expected) VALUES
  ('amount', 'NULL', 'SE001'), ('amount', '0', 'SE010'), ('amount', '-0', 'SE010'), ('amount', '0.00', 'SE010'),
  ('amount', '-10', 'SE010'), ('amount', '-0.01', 'SE010'), ('amount', $$'NaN'$$, 'SE011'),
  ('amount', $$'Infinity'$$, 'SE011'), ('amount', $$'-Infinity'$$, 'SE011'), ('amount', $$'inf'$$, 'SE011'),
  ('amount', '0.001', 'SE012'), ('amount', '10.005', 'SE012'), ('amount', '1e-3', 'SE012'),
  ('amount', $$'1e-5'$$, 'SE012'), ('amount', '0.0000000000000000001', 'SE012'),
  ('amount', '10000000000000', 'SE013'), ('amount', '9999999999999.999', 'SE012'),
  ('amount', '1e20', 'SE013'), ('amount', $$repeat('9', 400)::numeric$$, 'SE013'),
  ('amount', $$('1' || repeat('0', 1000))::numeric$$, 'SE013'), ('amount', $$'1e13'$$, 'SE013'),
  ('amount', '9999999999999.99', 'ok'), ('amount', '0.01', 'ok'), ('amount', '1e3', 'ok'),
  ('amount', '10.50000', 'ok'), ('amount', $$' 7 '$$, 'ok'), ('amount', $$'0001.10'$$, 'ok');
-- priority and deadline
INSERT INTO cases (field, literal, expected) VALUES
  ('priority', 'NULL', 'SE001'), ('priority', '0', 'SE050'), ('priority', '10', 'SE050'),
  ('priority', '-1', 'SE050'), ('priority', '2147483647', 'SE050'), ('priority', '1', 'ok'), ('priority', '9', 'ok'),
  ('deadline', $$now() - interval '1 second'$$, 'SE051'), ('deadline', $$'-infinity'$$, 'SE051'),
  ('deadline', $$'infinity'$$, 'SE051'), ('deadline', $$'epoch'$$, 'SE051'),
  ('deadline', $$now() + interval '1 day'$$, 'ok');

SELECT count(*) AS submit_cases FROM cases;

-- run every case in its own subtransaction; a case expected 'ok' gets a
-- unique transaction_id and key so that it does not collide with another
SELECT count(*) AS payments_before FROM settle.payment \gset
CREATE TABLE outcome AS
SELECT c.id, c.field, c.literal, c.expected,
       sqlstate_of(format('SELECT settle_submit(%s)',
         (SELECT string_agg(CASE WHEN t.name = c.field THEN c.literal
                                 WHEN c.expected = 'ok' AND t.name IN ('transaction_id', 'idempotency_key')
                                   THEN quote_literal('h_ok_' || c.id || '_' || t.pos)
                                 ELSE t.literal END, ', ' ORDER BY t.pos)
            FROM template t))) AS got
  FROM cases c;
-- no case has another SQLSTATE than documented
SELECT id, field, literal, expected, got FROM outcome WHERE got <> expected ORDER BY id;
SELECT expected, count(*) FROM outcome GROUP BY 1 ORDER BY 1;
-- only the cases expected to pass wrote a payment
SELECT count(*) - :payments_before AS payments_written,
       (SELECT count(*) FROM outcome WHERE expected = 'ok') AS cases_ok
  FROM settle.payment;

-- the same cases through the bulk path, one element each, in one call:
-- JSON has no SQL expressions, so the values are evaluated first; every
-- element has its own keys (a repeated key within a call is its own rule)
SELECT count(*) AS payments_before FROM settle.payment \gset
CREATE FUNCTION literal_value(lit text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE v text;
BEGIN
    EXECUTE 'SELECT (' || lit || ')::text' INTO v;
    RETURN v;
END
$$;
CREATE TABLE bulk_cases AS
SELECT c.id, c.field, c.expected,
       (SELECT jsonb_object_agg(t.name,
                 CASE WHEN t.name = c.field THEN
                        CASE WHEN t.name = 'priority' THEN to_jsonb(literal_value(c.literal)::bigint)
                             -- accepted keys: first character changed, not to collide with the single-path run
                             WHEN c.expected = 'ok' AND t.name IN ('transaction_id', 'idempotency_key')
                               THEN to_jsonb('b' || substr(literal_value(c.literal), 2))
                             ELSE to_jsonb(literal_value(c.literal)) END
                      WHEN t.name IN ('transaction_id', 'idempotency_key')
                        THEN to_jsonb('hb_' || c.id || '_' || t.pos)
                      WHEN t.name = 'priority' THEN to_jsonb(5)
                      ELSE to_jsonb(literal_value(t.literal)) END)
          FROM template t) AS element
  FROM cases c
 WHERE c.literal NOT LIKE '%repeat(''9'', 400)%' AND c.literal NOT LIKE '%repeat(''0'', 1000)%'
   AND c.field <> 'deadline' AND NOT (c.field = 'priority' AND c.literal = '2147483647');
SELECT count(*) AS bulk_cases FROM bulk_cases;
CREATE TABLE bulk_outcome AS
SELECT b.id, b.field, b.expected, coalesce(r.sqlstate, 'ok') AS got
  FROM bulk_cases b
  JOIN settle_submit_bulk((SELECT jsonb_agg(element ORDER BY id) FROM bulk_cases)) r
    ON r.ordinal = (SELECT count(*) FROM bulk_cases b2 WHERE b2.id <= b.id);
-- NULL elements of the JSON objects are JSON nulls: the same SE001
SELECT id, field, expected, got FROM bulk_outcome WHERE got <> expected ORDER BY id;
SELECT count(*) - :payments_before AS bulk_payments_written,
       (SELECT count(*) FROM bulk_outcome WHERE expected = 'ok') AS bulk_cases_ok
  FROM settle.payment;

-- reference-data functions
SELECT count(*) AS participants_before FROM settle.participant \gset
SELECT count(*) AS accounts_before FROM settle.account \gset
CREATE TABLE ref_cases (id serial, call text, expected text);
INSERT INTO ref_cases (call, expected)
  SELECT format('SELECT settle_create_participant(%s)', b.literal),
         CASE WHEN b.literal = $$' '$$ THEN 'SE004' ELSE b.expected END
    FROM bad_identifier b;
INSERT INTO ref_cases (call, expected)
  SELECT format('SELECT settle_create_account(%s, %L, %L)', b.literal, 'bank_h1', 'USD'), b.expected
    FROM bad_identifier b;
INSERT INTO ref_cases (call, expected) VALUES
  ($$SELECT settle_create_participant('bank_h1')$$, 'SE070'),
  ($$SELECT settle_create_participant('bank_hx', repeat('n', 201))$$, 'SE073'),
  ($$SELECT settle_create_participant('bank_hx', E'a\x07b')$$, 'SE073'),
  ($$SELECT settle_create_account('acc_h1', 'bank_h1', 'USD')$$, 'SE071'),
  ($$SELECT settle_create_account('acc_hx', 'bank_h9', 'USD')$$, 'SE040'),
  ($$SELECT settle_create_account('acc_hx', 'bank_h3', 'USD')$$, 'SE041'),
  ($$SELECT settle_create_account('acc_hx', '_settle', 'USD')$$, 'SE004'),
  ($$SELECT settle_create_account('acc_hx', 'bank_h1', 'usd')$$, 'SE020'),
  ($$SELECT settle_create_account('acc_hx', 'bank_h1', 'XYZ')$$, 'SE021'),
  ($$SELECT settle_create_account('acc_hx', 'bank_h1', NULL)$$, 'SE001'),
  ($$SELECT settle_create_account('acc_hx', 'bank_h1', 'USD', -1)$$, 'SE010'),
  ($$SELECT settle_create_account('acc_hx', 'bank_h1', 'USD', 'NaN')$$, 'SE011'),
  ($$SELECT settle_create_account('acc_hx', 'bank_h1', 'USD', 0.001)$$, 'SE012'),
  ($$SELECT settle_create_account('acc_hx', 'bank_h1', 'USD', 1e20)$$, 'SE013'),
  ($$SELECT settle_create_account('acc_hx', 'bank_h1', 'USD', 0, -5)$$, 'SE010'),
  ($$SELECT settle_create_account('acc_hx', 'bank_h1', 'USD', 0, 'Infinity')$$, 'SE011'),
  ($$SELECT settle_create_account('acc_hx', 'bank_h1', 'USD', NULL)$$, 'SE001'),
  ($$SELECT settle_fund_account('acc_h1', 0)$$, 'SE010'),
  ($$SELECT settle_fund_account('acc_h1', -1)$$, 'SE010'),
  ($$SELECT settle_fund_account('acc_h1', NULL)$$, 'SE001'),
  ($$SELECT settle_fund_account('acc_h5', 1)$$, 'SE031'),
  ($$SELECT settle_fund_account('_external.USD', 1)$$, 'SE004'),
  ($$SELECT settle_set_account_limit('acc_h2', -1)$$, 'SE010'),
  ($$SELECT settle_set_account_status('acc_h1', 'deleted')$$, 'SE076'),
  ($$SELECT settle_set_account_status('acc_h1', NULL)$$, 'SE076'),
  ($$SELECT settle_set_participant_status('bank_h1', '')$$, 'SE076'),
  ($$SELECT settle_set_fx_rate('USD', 'usd', 1)$$, 'SE020'),
  ($$SELECT settle_set_fx_rate('USD', 'EUR', 'NaN')$$, 'SE074'),
  ($$SELECT settle_set_fx_rate('USD', 'EUR', -1)$$, 'SE074'),
  ($$SELECT settle_set_fx_rate('USD', 'EUR', 1, 10001)$$, 'SE074'),
  ($$SELECT settle_set_wire_fee('USD', 'NaN')$$, 'SE075'),
  ($$SELECT settle_set_wire_fee('JPY', 0.5)$$, 'SE012'),
  ($$SELECT settle_set_wire_fee('USD', 1, '')$$, 'SE002');
SELECT count(*) AS reference_cases FROM ref_cases;
SELECT id, call, expected, sqlstate_of(call) AS got FROM ref_cases WHERE sqlstate_of(call) <> expected ORDER BY id;
SELECT count(*) - :participants_before AS participants_written FROM settle.participant;
SELECT count(*) - :accounts_before AS accounts_written FROM settle.account;

SELECT (SELECT count(*) FROM cases) + (SELECT count(*) FROM bulk_cases) + (SELECT count(*) FROM ref_cases) AS total_cases;

\c contrib_regression
DROP DATABASE settle_hostile;
