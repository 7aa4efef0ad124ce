-- Issue #26: intake reads nothing through a session setting.  A deadline
-- given as text (settle_submit_bulk's JSON, so the gateway's HTTP bodies) is
-- RFC 3339 with an explicit offset, read by settle's own reader whatever
-- TimeZone and DateStyle say; a transaction_id is one the HTTP API can
-- address.  The same submissions under several sessions' settings give the
-- same rows, and every repeat is a replay.  Own database.
CREATE DATABASE settle_timestamps;
\c settle_timestamps
CREATE EXTENSION settle;
\set VERBOSITY sqlstate
SELECT settle_create_participant(p) FROM unnest(ARRAY['tz_a', 'tz_b']) p;
SELECT settle_create_account(p || '_usd', p, 'USD') FROM unnest(ARRAY['tz_a', 'tz_b']) p;

-- One payment as bulk JSON: deadline text d, transaction_id t, key k.
CREATE FUNCTION tz_pay(t text, k text, d text, amount jsonb DEFAULT '"10.00"') RETURNS jsonb
LANGUAGE sql AS $$
  SELECT jsonb_build_object('transaction_id', t, 'idempotency_key', k, 'amount', amount,
                            'source_currency', 'USD', 'destination_currency', 'USD',
                            'source_account', 'tz_a_usd', 'destination_account', 'tz_b_usd',
                            'counterparty_id', 'tz_b', 'deadline', d)
$$;

------------------------------------------------------------------------
-- 1. The reader, in a session far from UTC with a day-first DateStyle:
--    accepted forms and the instant stored (shown in UTC); refused forms
--    and their SQLSTATE (SE052 names the field).
------------------------------------------------------------------------
SET TimeZone = 'Asia/Kolkata';
SET DateStyle = 'SQL, DMY';
CREATE TEMP TABLE forms(n int, d text);
INSERT INTO forms VALUES
  (1, '2099-06-01T12:00:00Z'),
  (2, '2099-06-01T12:00:00-04:00'),
  (3, '2099-06-01T12:00:00.5+05:30'),
  (4, '2099-06-01t12:00:00.123456z'),
  (5, '2099-06-01T12:00:00.120000000Z'),   -- zeros below the microsecond
  (6, '2096-02-29T23:59:59-00:00'),        -- leap day; -00:00 is UTC
  (7, '2099-06-01T12:00:00'),              -- no offset (issue: read in the session's zone)
  (8, 'tomorrow'),                         -- a word (issue: next midnight)
  (9, '2099-06-01'),                       -- a date alone
  (10, '2099-06-01 12:00:00+00'),          -- PostgreSQL's text form
  (11, '2099-06-01T12:00:00+0000'),        -- offset without ':'
  (12, '2099-13-01T12:00:00Z'),            -- month 13
  (13, '2097-02-29T12:00:00Z'),            -- not a leap year
  (14, '2099-06-01T12:00:60Z'),            -- leap second
  (15, '2099-06-01T24:00:00Z'),
  (16, '2099-06-01T12:00:00.1234567Z'),    -- below the microsecond
  (17, ' 2099-06-01T12:00:00Z'),
  (18, '2099-06-01T12:00:00Z '),
  (19, '06/01/2099 12:00:00 UTC'),
  (20, 'infinity'),
  (21, '2099-06-01T12:00:00+24:00'),
  (22, '2099-06-01T12:00:00.Z'),
  (23, '+2099-06-01T12:00:00Z'),
  (24, '2000-01-01T00:00:00Z');            -- well formed, but past: SE051
SELECT f.n, f.d, b.status, b.sqlstate, b.message
  FROM settle_submit_bulk((SELECT jsonb_agg(tz_pay('tz_f' || n, 'tz_fk' || n, d) ORDER BY n) FROM forms)) b
  JOIN forms f ON f.n = b.ordinal ORDER BY f.n;
SELECT transaction_id, to_char(deadline AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS deadline_utc
  FROM settle.payment WHERE transaction_id LIKE 'tz\_f%' ORDER BY payment_id;
-- PostgreSQL reads each accepted text as the same instant (offsets given, so
-- the session's zone does not matter to it either)
SELECT count(*) AS accepted, count(*) FILTER (WHERE p.deadline <> f.d::timestamptz) AS different
  FROM forms f JOIN settle.payment p ON p.transaction_id = 'tz_f' || f.n;
-- and 300 random well-formed ones, from years 2030..2999, every offset form
-- and fraction length: settle's reader and PostgreSQL's agree on each
-- (offsets within PostgreSQL's +-15:59; RFC 3339 and settle allow +-23:59)
SELECT setseed(0.26);
CREATE TEMP TABLE randoms AS
SELECT i, format('%s-%s-%sT%s:%s:%s%s%s', lpad((2030 + floor(random() * 970))::int::text, 4, '0'),
                 lpad((1 + floor(random() * 12))::int::text, 2, '0'), lpad((1 + floor(random() * 28))::int::text, 2, '0'),
                 lpad(floor(random() * 24)::int::text, 2, '0'), lpad(floor(random() * 60)::int::text, 2, '0'),
                 lpad(floor(random() * 60)::int::text, 2, '0'),
                 CASE WHEN random() < 0.5 THEN '' ELSE '.' || left(lpad(floor(random() * 1000000)::int::text, 6, '0'), 1 + floor(random() * 6)::int) END,
                 CASE floor(random() * 4)::int WHEN 0 THEN 'Z' WHEN 1 THEN 'z'
                      ELSE (CASE WHEN random() < 0.5 THEN '+' ELSE '-' END) || lpad(floor(random() * 16)::int::text, 2, '0')
                           || ':' || lpad(floor(random() * 60)::int::text, 2, '0') END) AS d
  FROM generate_series(1, 300) i;
SELECT count(*) FILTER (WHERE status = 'queued') AS accepted
  FROM settle_submit_bulk((SELECT jsonb_agg(tz_pay('tz_r' || i, 'tz_rk' || i, d) ORDER BY i) FROM randoms));
SELECT count(*) FILTER (WHERE p.deadline = r.d::timestamptz) AS same_instant
  FROM randoms r JOIN settle.payment p ON p.transaction_id = 'tz_r' || r.i;
-- the refusal a client sees names the field and the form
SELECT sqlstate, message FROM settle_submit_bulk(jsonb_build_array(tz_pay('tz_x', 'tz_xk', '2099-06-01T12:00:00')));
-- a deadline that is not a JSON string is still SE091
SELECT sqlstate FROM settle_submit_bulk(jsonb_build_array(tz_pay('tz_x', 'tz_xk', NULL) || '{"deadline": 4102444800}'));
RESET TimeZone;
RESET DateStyle;

------------------------------------------------------------------------
-- 2. The same submissions under several sessions' settings: the first
--    writes, every later one replays all of them, and the rows are the
--    same.  Bulk: deadlines with offsets, amounts as JSON numbers and
--    strings (exponent, trailing zeros); settle_submit: a timestamptz
--    value (an absolute instant) and a literal with an offset.
------------------------------------------------------------------------
CREATE TEMP TABLE settings(n int, tz text, ds text, ist text, efd text, lcn text, sp text);
INSERT INTO settings VALUES
  (1, 'UTC', 'ISO, MDY', 'postgres', '1', 'C', '"$user", public'),
  (2, 'America/New_York', 'SQL, DMY', 'sql_standard', '3', 'C.utf8', 'public'),
  (3, 'Asia/Kathmandu', 'German', 'iso_8601', '-15', 'POSIX', 'pg_temp, public'),
  (4, 'Pacific/Kiritimati', 'Postgres, YMD', 'postgres_verbose', '0', 'C', 'tz_evil, public'),
  (5, 'Etc/GMT+12', 'ISO, DMY', 'postgres', '2', 'C', 'tz_evil, pg_catalog, public');
-- a caller's schema that shadows what intake's own statements use: with
-- it first in search_path, intake still uses pg_catalog's (settle_submit
-- and settle_submit_bulk run with search_path = pg_catalog, pg_temp)
CREATE SCHEMA tz_evil;
CREATE FUNCTION tz_evil.unnest(text[]) RETURNS SETOF text LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'intake used a caller''s unnest'; END $$;
CREATE FUNCTION tz_evil.texteq_evil(text, text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'intake used a caller''s ='; END $$;
CREATE OPERATOR tz_evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = tz_evil.texteq_evil);
CREATE TEMP TABLE fixed(d timestamptz);
INSERT INTO fixed VALUES ('2099-06-01T12:00:00Z');
CREATE TEMP TABLE seen(n int, ordinal int, replay boolean, sqlstate text, payment_id bigint);

CREATE FUNCTION tz_round(s settings) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  PERFORM set_config('TimeZone', s.tz, true), set_config('DateStyle', s.ds, true),
          set_config('IntervalStyle', s.ist, true), set_config('extra_float_digits', s.efd, true),
          set_config('lc_numeric', s.lcn, true), set_config('search_path', s.sp, true);
  INSERT INTO seen
  SELECT s.n, b.ordinal, b.replay, b.sqlstate, b.payment_id
    FROM settle_submit_bulk(jsonb_build_array(
           tz_pay('tz_m1', 'tz_mk1', '2099-06-01T12:00:00Z', '12.5'),
           tz_pay('tz_m2', 'tz_mk2', '2099-06-01T08:00:00-04:00', '"1.25e1"'),
           tz_pay('tz_m3', 'tz_mk3', '2099-06-01T17:45:00.250+05:45', '1250E-2'),
           tz_pay('tz_m4', 'tz_mk4', '2099-06-02T01:59:59.999999+14:00', '" 0.10 "'),
           tz_pay('tz_m5', 'tz_mk5', '2099-05-31T23:00:00-12:00', '"7.000"'))) b;
  INSERT INTO seen
  SELECT s.n, 6, r.replay, NULL, r.payment_id
    FROM settle_submit('tz_m6', 3.50, 'USD', 'USD', 'tz_a_usd', 'tz_b_usd', 'tz_b', 'tz_mk6',
                       deadline => (SELECT d FROM fixed)) r;
  INSERT INTO seen
  SELECT s.n, 7, r.replay, NULL, r.payment_id
    FROM settle_submit('tz_m7', 3.50, 'USD', 'USD', 'tz_a_usd', 'tz_b_usd', 'tz_b', 'tz_mk7',
                       deadline => '2099-06-01T12:00:00+02:00') r;
END $$;
SELECT tz_round(s) FROM settings s ORDER BY n;
RESET search_path;

-- round 1 wrote 7 payments; rounds 2..5 replayed each of them, no refusal
SELECT n, count(*) AS answers, count(*) FILTER (WHERE replay) AS replays,
       count(*) FILTER (WHERE sqlstate IS NOT NULL) AS refused, count(DISTINCT payment_id) AS payments
  FROM seen GROUP BY n ORDER BY n;
-- each payment id is the same in every round
SELECT ordinal, count(DISTINCT payment_id) AS ids FROM seen GROUP BY ordinal ORDER BY ordinal;
SELECT transaction_id, amount, to_char(deadline AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS deadline_utc
  FROM settle.payment WHERE transaction_id LIKE 'tz\_m%' ORDER BY transaction_id;

-- the issue's case: a time without an offset is refused in every zone, so
-- it can never be stored as two different instants
SELECT s.tz, b.sqlstate
  FROM settings s,
       LATERAL (SELECT set_config('TimeZone', s.tz, false)) x,
       LATERAL settle_submit_bulk(jsonb_build_array(tz_pay('tz_n', 'tz_nk', '2099-06-01T12:00:00'))) b
 ORDER BY s.n;
RESET TimeZone;

------------------------------------------------------------------------
-- 3. A transaction_id is a path segment of the HTTP API: no '/', not '.'
--    or '..' (SE004), the same rule in settle_submit and the bulk path;
--    every other printable byte is accepted.
------------------------------------------------------------------------
SELECT settle_submit('loc/slash', 1, 'USD', 'USD', 'tz_a_usd', 'tz_b_usd', 'tz_b', 'tz_ik1'); -- slash
SELECT settle_submit('.', 1, 'USD', 'USD', 'tz_a_usd', 'tz_b_usd', 'tz_b', 'tz_ik2'); -- dot
SELECT settle_submit('..', 1, 'USD', 'USD', 'tz_a_usd', 'tz_b_usd', 'tz_b', 'tz_ik3'); -- dotdot
SELECT b.transaction_id, b.status, b.sqlstate, b.message
  FROM settle_submit_bulk(jsonb_build_array(
         tz_pay('loc/slash', 'tz_ik4', NULL), tz_pay('/', 'tz_ik5', NULL), tz_pay('..', 'tz_ik6', NULL),
         tz_pay('...', 'tz_ik7', NULL), tz_pay('a%2Fb?c#d+e;f\g', 'tz_ik8', NULL),
         tz_pay('.x', 'tz_ik9', NULL))) b ORDER BY b.ordinal;
-- the key and link_group are not in a URL: '/' stays allowed there
SELECT status, replay FROM settle_submit('tz_i10', 1, 'USD', 'USD', 'tz_a_usd', 'tz_b_usd', 'tz_b', 'key/with/slash');

\c contrib_regression
DROP DATABASE settle_timestamps;
