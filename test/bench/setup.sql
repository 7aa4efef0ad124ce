-- Benchmark fixtures, loaded into every benchmark database after
-- CREATE EXTENSION settle.  Nothing here is part of the extension.
--
-- Reference workload (the same generator as test/solver/solver_bench.c, in SQL):
--   * 50 participants p01..p50, each with one account in USD, EUR and GBP
--     (pNN_USD, pNN_EUR, pNN_GBP): 150 accounts, lower_limit 0;
--   * FX mid rates EUR/USD 1.10, GBP/USD 1.25 (EUR/GBP implied 0.88),
--     spread 5 bps on every pair; wire fee 25.00 in each currency;
--   * a payment: payer and payee uniform among distinct participants, source
--     currency uniform, 80% in the same currency and 20% converted to one of
--     the two others (uniform); amount log-normal, median 1,000.00, sigma 1,
--     at least 1.00, rounded to the cent; priority 1..9 uniform; a share
--     (30% by default) deferrable: deadline one hour away; the rest due;
--   * liquidity: each account is funded with a fraction of its gross outflow
--     in the generated queue (10% by default; the solver benchmark's "10%").
--   Deterministic: setseed(seed) before generating.

CREATE SCHEMA bench;

-- participants, accounts, rates and fees of the reference workload
CREATE FUNCTION bench.setup_reference() RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    p int;
    c text;
BEGIN
    FOR p IN 1..50 LOOP
        PERFORM settle_create_participant(format('p%s', lpad(p::text, 2, '0')));
        FOREACH c IN ARRAY ARRAY['USD', 'EUR', 'GBP'] LOOP
            PERFORM settle_create_account(format('p%s_%s', lpad(p::text, 2, '0'), c),
                                          format('p%s', lpad(p::text, 2, '0')), c);
        END LOOP;
    END LOOP;
    PERFORM settle_set_fx_rate('EUR', 'USD', 1.10, 5);
    PERFORM settle_set_fx_rate('GBP', 'USD', 1.25, 5);
    PERFORM settle_set_fx_rate('EUR', 'GBP', 0.88, 5);
    PERFORM settle_set_wire_fee('USD', 25);
    PERFORM settle_set_wire_fee('EUR', 25);
    PERFORM settle_set_wire_fee('GBP', 25);
END
$$;

-- the generated queue (before submission)
CREATE TABLE bench.workload (
    id          bigint PRIMARY KEY,
    round       int NOT NULL,
    src_p       text NOT NULL,
    dst_p       text NOT NULL,
    src_cur     text NOT NULL,
    dst_cur     text NOT NULL,
    amount      numeric NOT NULL,
    priority    int NOT NULL,
    is_deferrable boolean NOT NULL
);

-- n payments of the reference workload, ids after the existing ones, tagged round r
CREATE FUNCTION bench.generate(n int, r int, seed float8, deferrable_share float8 DEFAULT 0.3)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    base bigint := coalesce((SELECT max(id) FROM bench.workload), 0);
BEGIN
    PERFORM setseed(seed);
    INSERT INTO bench.workload
    SELECT base + g.i, r,
           format('p%s', lpad(a::text, 2, '0')),
           format('p%s', lpad((CASE WHEN b >= a THEN b + 1 ELSE b END)::text, 2, '0')),
           (ARRAY['USD', 'EUR', 'GBP'])[sc],
           (ARRAY['USD', 'EUR', 'GBP'])[CASE WHEN fx < 0.8 THEN sc
                                            ELSE 1 + (sc - 1 + 1 + (fx >= 0.9)::int) % 3 END],
           greatest(1.00, round(exp(ln(1000) + sqrt(-2 * ln(u1)) * cos(2 * pi() * u2))::numeric, 2)),
           pr, d < deferrable_share
      FROM generate_series(1, n) AS g(i),
           LATERAL (SELECT 1 + floor(random() * 50)::int AS a, 1 + floor(random() * 49)::int AS b,
                           1 + floor(random() * 3)::int AS sc, random() AS fx,
                           1 - random() AS u1, random() AS u2,
                           1 + floor(random() * 9)::int AS pr, random() AS d,
                           g.i AS dummy) x;
END
$$;

-- fund every account with share x its gross outflow in round r (at least 1.00)
CREATE FUNCTION bench.fund(r int, share numeric) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM settle_fund_account(a.account_id,
                                greatest(1.00, round(share * coalesce(o.outflow, 0), 2)), 'bench')
       FROM settle.account a
       LEFT JOIN (SELECT src_p || '_' || src_cur AS account_id, sum(amount) AS outflow
                    FROM bench.workload WHERE round = r GROUP BY 1) o USING (account_id)
      WHERE a.kind = 'customer';
END
$$;

-- one round as the JSON array settle_submit_bulk takes, in chunks of `chunk`
CREATE TABLE bench.bulk_doc (round int, chunk int, doc jsonb, PRIMARY KEY (round, chunk));
CREATE FUNCTION bench.make_docs(r int, chunk int) RETURNS int LANGUAGE sql AS $$
    INSERT INTO bench.bulk_doc
    SELECT r, (id - 1) / chunk,
           jsonb_agg(jsonb_build_object(
               'transaction_id', 'tx' || id, 'idempotency_key', 'key' || id,
               'amount', amount::text, 'source_currency', src_cur, 'destination_currency', dst_cur,
               'source_account', src_p || '_' || src_cur, 'destination_account', dst_p || '_' || dst_cur,
               'counterparty_id', dst_p, 'priority', priority)
               || CASE WHEN is_deferrable THEN jsonb_build_object('deadline', now() + interval '1 hour')
                       ELSE '{}'::jsonb END
               ORDER BY id)
      FROM bench.workload WHERE round = r GROUP BY 1, 2;
    SELECT count(*)::int FROM bench.bulk_doc WHERE round = r;
$$;

-- Baseline of intake: a table with the same columns, types, defaults,
-- constraints and indexes as settle.payment (both unique indexes and the
-- partial queue index), written with a plain INSERT ... ON CONFLICT DO NOTHING.
CREATE TABLE bench.payment_plain (LIKE settle.payment INCLUDING ALL);

-- Baseline of posting: a straightforward transfer function over copies of
-- the accounts and of the ledger table (same columns, indexes, defaults).
CREATE TABLE bench.account (LIKE settle.account INCLUDING ALL);
CREATE TABLE bench.ledger_entry (LIKE settle.ledger_entry INCLUDING ALL);
ALTER TABLE bench.ledger_entry ALTER COLUMN journal_id DROP NOT NULL;

-- lock both accounts (in account order), refuse if the payer would go below
-- its limit, insert two entries, update both balances
CREATE FUNCTION bench.transfer(p_payment bigint, p_src text, p_dst text, p_debit bigint, p_credit bigint)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    src_bal bigint;
    src_lim bigint;
BEGIN
    PERFORM 1 FROM bench.account WHERE account_id IN (p_src, p_dst) ORDER BY account_id FOR UPDATE;
    SELECT balance, lower_limit INTO src_bal, src_lim FROM bench.account WHERE account_id = p_src;
    IF src_bal - p_debit < -src_lim THEN
        RETURN false;
    END IF;
    INSERT INTO bench.ledger_entry (payment_id, account_id, currency, amount)
    VALUES (p_payment, p_src, split_part(p_src, '_', 2), -p_debit),
           (p_payment, p_dst, split_part(p_dst, '_', 2), p_credit);
    UPDATE bench.account SET balance = balance - p_debit, updated_at = clock_timestamp() WHERE account_id = p_src;
    UPDATE bench.account SET balance = balance + p_credit, updated_at = clock_timestamp() WHERE account_id = p_dst;
    RETURN true;
END
$$;

-- copy the current settle accounts (balances, limits) into bench.account
CREATE FUNCTION bench.copy_accounts() RETURNS void LANGUAGE sql AS $$
    DELETE FROM bench.account;
    INSERT INTO bench.account SELECT * FROM settle.account;
$$;

-- credit in minor units of the destination currency at the workload's mid rates
CREATE FUNCTION bench.credit(amount numeric, src text, dst text) RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$
    SELECT round(amount * 100 * CASE WHEN src = dst THEN 1
                                     ELSE (CASE src WHEN 'USD' THEN 1 WHEN 'EUR' THEN 1.10 ELSE 1.25 END)
                                        / (CASE dst WHEN 'USD' THEN 1 WHEN 'EUR' THEN 1.10 ELSE 1.25 END) END)::bigint
$$;

-- gross settlement of round r with bench.transfer, one payment after another
-- in arrival order, in one statement; returns the number posted
CREATE FUNCTION bench.transfer_round(r int) RETURNS bigint LANGUAGE sql AS $$
    SELECT count(*) FILTER (WHERE bench.transfer(w.id, w.src_p || '_' || w.src_cur, w.dst_p || '_' || w.dst_cur,
                                                 (w.amount * 100)::bigint,
                                                 bench.credit(w.amount, w.src_cur, w.dst_cur)))
      FROM (SELECT * FROM bench.workload WHERE round = r ORDER BY id OFFSET 0) w
$$;

-- the same, one payment per call and per transaction (pgbench transfer.pgb):
-- the next payment of the sequence bench.next_payment
CREATE SEQUENCE bench.next_payment;
CREATE FUNCTION bench.transfer_next() RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    w bench.workload;
    next_id bigint := nextval('bench.next_payment');
BEGIN
    SELECT * INTO w FROM bench.workload WHERE id = next_id;
    RETURN bench.transfer(w.id, w.src_p || '_' || w.src_cur, w.dst_p || '_' || w.dst_cur,
                          (w.amount * 100)::bigint, bench.credit(w.amount, w.src_cur, w.dst_cur));
END
$$;

-- Set-based baseline of posting: the same legs as bench.transfer (a debit of
-- the payer, a credit of the payee) for every payment of round r, in plain
-- SQL, one statement and one transaction: all the entries inserted at once,
-- every account's balance updated once by its net, then the payers' limits
-- checked over the result (an error rolls everything back).  Returns the number of
-- payments posted.
CREATE FUNCTION bench.post_set(r int) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
    bad text;
BEGIN
    WITH leg AS (
        SELECT w.id AS payment_id, l.account_id, l.currency, l.amount
          FROM bench.workload w,
               LATERAL (VALUES (w.src_p || '_' || w.src_cur, w.src_cur, -(w.amount * 100)::bigint),
                               (w.dst_p || '_' || w.dst_cur, w.dst_cur,
                                bench.credit(w.amount, w.src_cur, w.dst_cur)))
                       AS l(account_id, currency, amount)
         WHERE w.round = r),
    ins AS (
        INSERT INTO bench.ledger_entry (payment_id, account_id, currency, amount)
        SELECT payment_id, account_id, currency, amount FROM leg
        RETURNING 1),
    upd AS (
        UPDATE bench.account a SET balance = a.balance + s.net, updated_at = clock_timestamp()
          FROM (SELECT account_id, sum(amount)::bigint AS net FROM leg GROUP BY 1) s
         WHERE a.account_id = s.account_id
        RETURNING 1)
    SELECT (SELECT count(*) FROM ins) / 2 + 0 * (SELECT count(*) FROM upd) INTO n;
    -- the payers (the only balances that went down), as bench.transfer checks them
    SELECT a.account_id INTO bad FROM bench.account a
     WHERE a.balance < -a.lower_limit
       AND a.account_id IN (SELECT w.src_p || '_' || w.src_cur FROM bench.workload w WHERE w.round = r)
     LIMIT 1;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'bench.post_set: account % below its limit', bad;
    END IF;
    RETURN n;
END
$$;
