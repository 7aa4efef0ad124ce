-- settle install script, part 8.5: liquidity prices and funding advice
-- (docs/ALGORITHM.md, "Liquidity prices and funding advice").
--
-- Each cycle's LP relaxation prices every account's liquidity: the dual
-- value of its row, the objective's decrease per minor unit more available
-- (src/solver_duals.c).  The cycle records the positive ones here (an
-- account without a row in a cycle had price 0 or was not in it).
-- settle_funding_advice() answers, per account of a participant, which of
-- its queued payments its own liquidity blocks, the least top-up that
-- settles them (three exact MIPs) and what that top-up unlocks for everyone.

CREATE TABLE settle.liquidity_price (
    cycle_id        bigint NOT NULL,
    account_id      text NOT NULL,
    participant_id  text NOT NULL,
    currency        text NOT NULL,
    -- the LP dual of the account's row: objective decrease per minor unit more available
    price           double precision NOT NULL,
    -- the same per major unit, in settled priority-weighted value (reference
    -- currency) per unit of liquidity (reference currency): 3 = one more unit
    -- here would let three units of (due, priority 5) payments settle
    value_per_unit  double precision NOT NULL,
    PRIMARY KEY (cycle_id, account_id)
);
SELECT pg_catalog.pg_extension_config_dump('settle.liquidity_price', '');
CREATE INDEX liquidity_price_account ON settle.liquidity_price (account_id, cycle_id);
CREATE TRIGGER liquidity_price_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON settle.liquidity_price
    FOR EACH STATEMENT EXECUTE FUNCTION settle._refuse_change();
COMMENT ON TABLE settle.liquidity_price IS
    'settle: per cycle, each account whose liquidity the LP relaxation priced above 0 (its dual value); docs/ALGORITHM.md';
COMMENT ON COLUMN settle.liquidity_price.price IS
    'The LP dual of the account''s row: decrease of the cycle''s objective per minor unit more available';
COMMENT ON COLUMN settle.liquidity_price.value_per_unit IS
    'Settled priority-weighted value per unit more liquidity, both in the reference currency (price per major unit / due factor)';

-- The three MIPs of src/solver_duals.c over arrays (accounts and payments
-- numbered from 1): the least top-up of account target that settles what
-- unlimited liquidity there would.
CREATE OR REPLACE FUNCTION settle._topup_solve(target integer, available bigint[], constrained boolean[],
        src integer[], dst integer[], amount bigint[], weight double precision[], time_limit_ms double precision,
        OUT status text, OUT top_up bigint, OUT weight_now double precision,
        OUT weight_unlimited double precision, OUT weight_topped double precision,
        OUT settled_now boolean[], OUT settled_topped boolean[])
    AS 'MODULE_PATHNAME', 'settle_topup_solve_sql' LANGUAGE C STRICT VOLATILE;

-- The advice, as the owner (called by settle_funding_advice() only): per
-- customer account of the participant, over the queued payments of the
-- account's currency between active accounts (cross-currency payments are
-- not in this model), weight = priority x amount.
CREATE OR REPLACE FUNCTION settle._funding_advice(pid text)
RETURNS TABLE (account_id text, currency text, available numeric, status text,
               top_up numeric, top_up_minor bigint,
               blocked_by_own_liquidity bigint[], blocked_by_others bigint[],
               unlocked_payments integer, unlocked_amount numeric, unlocked_weight numeric,
               liquidity_value_per_unit double precision, price_cycle_id bigint)
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    acc record;
    q record;
    sol record;
    limit_ms double precision := (SELECT x.setting::double precision FROM pg_settings x
                                   WHERE x.name = 'settle.solver_time_limit');
    last_cycle bigint := (SELECT max(c.cycle_id) FROM settle.cycle c);
BEGIN
    FOR acc IN SELECT a.account_id, a.currency, a.balance + a.lower_limit - a.pending_debit AS avail
                 FROM settle.account a
                WHERE a.participant_id = pid AND a.kind = 'customer'
                ORDER BY a.account_id LOOP
        WITH pay AS (
            SELECT p.payment_id, p.source_account, p.destination_account, p.amount::bigint AS amount,
                   p.priority::integer AS priority
              FROM settle.payment p
              JOIN settle.account sa ON sa.account_id = p.source_account AND sa.status = 'active'
              JOIN settle.account da ON da.account_id = p.destination_account AND da.status = 'active'
             WHERE p.status = 'queued' AND p.source_currency = acc.currency
               AND p.destination_currency = acc.currency),
        ids AS (
            SELECT x.account_id, (row_number() OVER (ORDER BY x.account_id))::integer AS n
              FROM (SELECT pay.source_account AS account_id FROM pay
                    UNION SELECT pay.destination_account FROM pay
                    UNION SELECT acc.account_id) x),
        numbered AS (
            SELECT pay.*, s.n AS sn, d.n AS dn
              FROM pay JOIN ids s ON s.account_id = pay.source_account
                       JOIN ids d ON d.account_id = pay.destination_account)
        SELECT (SELECT i.n FROM ids i WHERE i.account_id = acc.account_id) AS target,
               (SELECT array_agg(a.balance + a.lower_limit - a.pending_debit ORDER BY i.n)
                  FROM ids i JOIN settle.account a ON a.account_id = i.account_id) AS avail,
               (SELECT array_agg(a.kind = 'customer' ORDER BY i.n)
                  FROM ids i JOIN settle.account a ON a.account_id = i.account_id) AS cons,
               array_agg(n.payment_id ORDER BY n.payment_id) AS pids,
               array_agg(n.sn ORDER BY n.payment_id) AS src,
               array_agg(n.dn ORDER BY n.payment_id) AS dst,
               array_agg(n.amount ORDER BY n.payment_id) AS amount,
               array_agg((n.priority * n.amount)::double precision ORDER BY n.payment_id) AS weight,
               array_agg(n.source_account = acc.account_id ORDER BY n.payment_id) AS own
          INTO q FROM numbered n;
        account_id := acc.account_id;
        currency := acc.currency;
        available := settle.to_major(acc.avail, acc.currency);
        SELECT lp.value_per_unit INTO liquidity_value_per_unit FROM settle.liquidity_price lp
         WHERE lp.cycle_id = last_cycle AND lp.account_id = acc.account_id;
        liquidity_value_per_unit := coalesce(liquidity_value_per_unit, CASE WHEN last_cycle IS NOT NULL THEN 0 END);
        price_cycle_id := last_cycle;
        IF q.pids IS NULL OR NOT (true = ANY (q.own)) THEN
            status := 'nothing_queued';
            top_up := 0; top_up_minor := 0;
            blocked_by_own_liquidity := '{}'; blocked_by_others := '{}';
            unlocked_payments := 0; unlocked_amount := 0; unlocked_weight := 0;
            RETURN NEXT;
            CONTINUE;
        END IF;
        sol := settle._topup_solve(q.target, q.avail, q.cons, q.src, q.dst, q.amount, q.weight, limit_ms);
        status := sol.status;
        top_up_minor := sol.top_up;
        top_up := settle.to_major(sol.top_up, acc.currency);
        SELECT coalesce(array_agg(q.pids[i] ORDER BY i) FILTER (WHERE q.own[i] AND sol.settled_topped[i] AND NOT sol.settled_now[i]), '{}'),
               coalesce(array_agg(q.pids[i] ORDER BY i) FILTER (WHERE q.own[i] AND NOT sol.settled_topped[i]), '{}'),
               count(*) FILTER (WHERE sol.settled_topped[i] AND NOT sol.settled_now[i]),
               settle.to_major((coalesce(sum(q.amount[i]) FILTER (WHERE sol.settled_topped[i]), 0)
                                - coalesce(sum(q.amount[i]) FILTER (WHERE sol.settled_now[i]), 0))::bigint, acc.currency)
          INTO blocked_by_own_liquidity, blocked_by_others, unlocked_payments, unlocked_amount
          FROM generate_series(1, cardinality(q.pids)) i;
        unlocked_weight := settle.to_major(round((sol.weight_topped - sol.weight_now) / 5)::bigint, acc.currency);
        RETURN NEXT;
    END LOOP;
END
$$;

-- The caller's rights decide whose advice it may have (src/funding_advice.c).
CREATE OR REPLACE FUNCTION settle_funding_advice(participant_id text)
RETURNS TABLE (account_id text, currency text, available numeric, status text,
               top_up numeric, top_up_minor bigint,
               blocked_by_own_liquidity bigint[], blocked_by_others bigint[],
               unlocked_payments integer, unlocked_amount numeric, unlocked_weight numeric,
               liquidity_value_per_unit double precision, price_cycle_id bigint)
    AS 'MODULE_PATHNAME', 'settle_funding_advice_sql' LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION settle_funding_advice(text) IS
    'Per account of a participant: the queued payments its own liquidity blocks, the least top-up that settles them (solved exactly) and what it unlocks for all';

-- Rights: a participant reads its own prices (row-level security) and its
-- own advice; the advice's internals are the owner's.
ALTER TABLE settle.liquidity_price ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_prices ON settle.liquidity_price FOR SELECT
    USING ((SELECT settle.sees_all()) OR participant_id = (SELECT settle.current_participant()));
REVOKE ALL ON settle.liquidity_price FROM PUBLIC;
GRANT SELECT ON settle.liquidity_price TO settle_submitter, settle_operator, settle_auditor;
REVOKE ALL ON FUNCTION settle._topup_solve(integer, bigint[], boolean[], integer[], integer[], bigint[], double precision[], double precision),
    settle._funding_advice(text), @extschema@.settle_funding_advice(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.settle_funding_advice(text) TO settle_submitter, settle_operator, settle_auditor;
