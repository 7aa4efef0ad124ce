-- settle install script, part 8.5: liquidity prices and funding advice
-- (docs/ALGORITHM.md, "Liquidity prices and funding advice").
--
-- Each cycle's LP relaxation prices every account's liquidity: the dual
-- value of its row, the objective's decrease per minor unit more available
-- (src/solver_duals.c).  The cycle records the positive ones here (an
-- account without a row in a cycle had price 0 or was not in it).
-- settle_funding_advice() answers, per account of a participant, which of
-- its queued payments its own liquidity blocks, the least top-up that
-- settles them (three exact MIPs) and what that top-up unlocks for everyone,
-- across currencies, with the wire fees and FX spread the cycle counts.

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

-- The three MIPs of src/solver_duals.c over arrays (accounts, payments,
-- wires and FX pairs numbered from 1; a wire or pair of 0: none): the least
-- top-up of account target that meets what unlimited liquidity there would.
-- The objective: sum of weight over the settled payments, less the fee of
-- every wire they use and each pair's spread on its net |volume|.
CREATE OR REPLACE FUNCTION settle._topup_solve(target integer, available bigint[], constrained boolean[],
        src integer[], dst integer[], amount bigint[], weight double precision[], time_limit_ms double precision,
        credit bigint[], wire_src integer[], wire_dst integer[], wire_fee double precision[],
        pair integer[], volume double precision[], spread double precision[],
        OUT status text, OUT top_up bigint, OUT weight_now double precision,
        OUT weight_unlimited double precision, OUT weight_topped double precision,
        OUT settled_now boolean[], OUT settled_topped boolean[])
    AS 'MODULE_PATHNAME', 'settle_topup_solve_1_2' LANGUAGE C STRICT VOLATILE;

-- The queue as the next cycle would take it (src/cycle_load.c, settle_cycle_load_queue): the
-- queued payments between active accounts, each with the credit the cycle
-- would post (converted exactly at the mid rate in force, rounded half away
-- from zero; a pair stored the other way round divides by its rate) and its
-- pair's spread; a payment without a rate, or whose credit would be under
-- one minor unit or over the largest amount, is not taken by a cycle and is
-- left out.  value_per_minor: what one minor unit of each currency is worth
-- in the reference currency's major units at the mid rates (1:1 without a
-- rate, as the cycle measures).
CREATE OR REPLACE FUNCTION settle._advice_queue()
RETURNS TABLE (payment_id bigint, source_account text, destination_account text, source_participant text,
               counterparty_id text, source_currency text, destination_currency text, amount bigint, credit bigint,
               priority integer, spread_bps numeric)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    WITH r AS (SELECT f.base_currency AS b, f.quote_currency AS q, f.mid_rate AS m, f.spread_bps AS s FROM settle.fx_rates f),
    rr AS (SELECT r.b, r.q, r.m, r.s, false AS inv FROM r
           UNION ALL
           SELECT r1.q, r1.b, r1.m, r1.s, true FROM r r1
            WHERE NOT EXISTS (SELECT 1 FROM r r2 WHERE r2.b = r1.q AND r2.q = r1.b)),
    c AS (
        SELECT p.payment_id, p.source_account, p.destination_account, p.source_participant, p.counterparty_id,
               p.source_currency, p.destination_currency, p.amount, coalesce(p.queue_priority, p.priority)::integer AS priority, x.m, x.s, x.inv,
               CASE WHEN p.source_currency = p.destination_currency THEN p.amount::numeric
                    ELSE p.amount::numeric * 10::numeric ^ (cd.exponent - cs.exponent)::numeric END AS scaled
          FROM settle.payment p
          JOIN settle.account sa ON sa.account_id = p.source_account AND sa.status = 'active'
          JOIN settle.account da ON da.account_id = p.destination_account AND da.status = 'active'
          JOIN settle.currency cs ON cs.code = p.source_currency
          JOIN settle.currency cd ON cd.code = p.destination_currency
          LEFT JOIN rr x ON x.b = p.source_currency AND x.q = p.destination_currency
         WHERE p.status = 'queued'
           -- a payment before its earliest settlement time is not in the cycle's queue yet
           AND (p.not_before IS NULL OR p.not_before <= now())),
    v AS (
        SELECT c.*,
               CASE WHEN c.source_currency = c.destination_currency THEN c.scaled
                    WHEN c.m IS NULL THEN NULL
                    WHEN NOT c.inv THEN round(c.scaled * c.m)
                    ELSE div(c.scaled, c.m) + CASE WHEN 2 * mod(c.scaled, c.m) >= c.m THEN 1 ELSE 0 END
               END AS exact
          FROM c)
    SELECT v.payment_id, v.source_account, v.destination_account, v.source_participant, v.counterparty_id,
           v.source_currency, v.destination_currency, v.amount, v.exact::bigint, v.priority,
           CASE WHEN v.source_currency <> v.destination_currency THEN coalesce(v.s, 0) END
      FROM v
     WHERE v.exact >= 1 AND v.exact <= 999999999999999
$$;

-- The advice, as the owner (called by settle_funding_advice() only): per
-- customer account of the participant, over the whole queue the next cycle
-- would take (every currency: cross-currency payments debit their amount
-- and credit their converted credit), the cycle's cost terms in the
-- objective.  All in one unit, the account's own currency's minor units at
-- the mid rates (value_per_minor), times 5 so that weights are whole in one
-- currency: a payment's weight is priority x its value, a wire's fee (the
-- participant's or the currency's default, counted once for the wires any
-- settled payment uses, as the cycle counts them) 5 x its value, a pair's
-- spread 5 x spread_bps / 10,000 of the net converted value.  Priority 5
-- is face value: (objective gained) / 5 is value settled net of costs.
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
    ref_ccy text := current_setting('settle.reference_currency');
    last_cycle bigint := (SELECT max(c.cycle_id) FROM settle.cycle c);
BEGIN
    FOR acc IN SELECT a.account_id, a.currency, a.balance + a.lower_limit - a.pending_debit AS avail
                 FROM settle.account a
                WHERE a.participant_id = pid AND a.kind = 'customer'
                ORDER BY a.account_id LOOP
        WITH r AS (SELECT f.base_currency AS b, f.quote_currency AS q, f.mid_rate AS m FROM settle.fx_rates f),
        -- a minor unit of each currency in minor units of the account's (src/cycle.c's measure)
        to_ref AS (
            SELECT c.code, c.exponent,
                   CASE WHEN c.code = ref_ccy THEN 1
                        ELSE coalesce((SELECT r.m FROM r WHERE r.b = c.code AND r.q = ref_ccy),
                                      (SELECT 1 / r.m FROM r WHERE r.b = ref_ccy AND r.q = c.code), 1) END AS rate
              FROM settle.currency c),
        unit AS (
            SELECT x.code, CASE WHEN x.code = acc.currency THEN 1::numeric
                                ELSE x.rate / t.rate * 10::numeric ^ (t.exponent - x.exponent)::numeric END AS f
              FROM to_ref x, to_ref t WHERE t.code = acc.currency),
        pay AS (SELECT * FROM settle._advice_queue()),
        ids AS (
            SELECT x.account_id, (row_number() OVER (ORDER BY x.account_id))::integer AS n
              FROM (SELECT pay.source_account AS account_id FROM pay
                    UNION SELECT pay.destination_account FROM pay
                    UNION SELECT acc.account_id) x),
        -- the wires the queue touches, one per (participant, currency), with their fee
        wires AS (
            SELECT w.participant_id, w.currency, (row_number() OVER (ORDER BY w.participant_id, w.currency))::integer AS n,
                   coalesce((SELECT f.fee FROM settle.wire_fee f
                              WHERE f.participant_id = w.participant_id AND f.currency = w.currency),
                            (SELECT f.fee FROM settle.wire_fee f WHERE f.participant_id IS NULL AND f.currency = w.currency),
                            0) AS fee
              FROM (SELECT pay.source_participant AS participant_id, pay.source_currency AS currency FROM pay
                    UNION SELECT pay.counterparty_id, pay.destination_currency FROM pay) w),
        -- the FX pairs, unordered; the spread of the pair's first payment (as the cycle takes it)
        pairs AS (
            SELECT x.lo, x.hi, (row_number() OVER (ORDER BY x.lo, x.hi))::integer AS n, x.spread_bps
              FROM (SELECT DISTINCT ON (least(pay.source_currency, pay.destination_currency),
                                        greatest(pay.source_currency, pay.destination_currency))
                           least(pay.source_currency, pay.destination_currency) AS lo,
                           greatest(pay.source_currency, pay.destination_currency) AS hi, pay.spread_bps
                      FROM pay WHERE pay.source_currency <> pay.destination_currency
                     ORDER BY 1, 2, pay.payment_id) x),
        numbered AS (
            SELECT pay.*, s.n AS sn, d.n AS dn, ws.n AS wsn, wd.n AS wdn, coalesce(k.n, 0) AS kn,
                   pay.amount * u.f AS value
              FROM pay JOIN ids s ON s.account_id = pay.source_account
                       JOIN ids d ON d.account_id = pay.destination_account
                       JOIN unit u ON u.code = pay.source_currency
                       JOIN wires ws ON ws.participant_id = pay.source_participant AND ws.currency = pay.source_currency
                       JOIN wires wd ON wd.participant_id = pay.counterparty_id AND wd.currency = pay.destination_currency
                       LEFT JOIN pairs k ON k.lo = least(pay.source_currency, pay.destination_currency)
                                        AND k.hi = greatest(pay.source_currency, pay.destination_currency))
        SELECT (SELECT i.n FROM ids i WHERE i.account_id = acc.account_id) AS target,
               (SELECT array_agg(a.balance + a.lower_limit - a.pending_debit ORDER BY i.n)
                  FROM ids i JOIN settle.account a ON a.account_id = i.account_id) AS avail,
               (SELECT array_agg(a.kind = 'customer' ORDER BY i.n)
                  FROM ids i JOIN settle.account a ON a.account_id = i.account_id) AS cons,
               array_agg(n.payment_id ORDER BY n.payment_id) AS pids,
               array_agg(n.sn ORDER BY n.payment_id) AS src,
               array_agg(n.dn ORDER BY n.payment_id) AS dst,
               array_agg(n.amount ORDER BY n.payment_id) AS amount,
               array_agg(n.credit ORDER BY n.payment_id) AS credit,
               array_agg((n.priority * n.value)::double precision ORDER BY n.payment_id) AS weight,
               array_agg(n.value ORDER BY n.payment_id) AS value,
               array_agg(n.wsn ORDER BY n.payment_id) AS wire_src,
               array_agg(n.wdn ORDER BY n.payment_id) AS wire_dst,
               (SELECT array_agg((5 * w.fee * u.f)::double precision ORDER BY w.n)
                  FROM wires w JOIN unit u ON u.code = w.currency) AS wire_fee,
               array_agg(n.kn ORDER BY n.payment_id) AS pair,
               array_agg((CASE WHEN n.kn = 0 THEN 0
                               WHEN n.source_currency < n.destination_currency THEN n.value ELSE -n.value END)::double precision
                         ORDER BY n.payment_id) AS volume,
               coalesce((SELECT array_agg((5 * k.spread_bps / 10000)::double precision ORDER BY k.n) FROM pairs k),
                        '{}') AS spread,
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
        sol := settle._topup_solve(q.target, q.avail, q.cons, q.src, q.dst, q.amount, q.weight, limit_ms,
                                   q.credit, q.wire_src, q.wire_dst, q.wire_fee, q.pair, q.volume, q.spread);
        status := sol.status;
        top_up_minor := sol.top_up;
        top_up := settle.to_major(sol.top_up, acc.currency);
        SELECT coalesce(array_agg(q.pids[i] ORDER BY i) FILTER (WHERE q.own[i] AND sol.settled_topped[i] AND NOT sol.settled_now[i]), '{}'),
               coalesce(array_agg(q.pids[i] ORDER BY i) FILTER (WHERE q.own[i] AND NOT sol.settled_topped[i]), '{}'),
               count(*) FILTER (WHERE sol.settled_topped[i] AND NOT sol.settled_now[i]),
               settle.to_major(round(coalesce(sum(q.value[i]) FILTER (WHERE sol.settled_topped[i]), 0)
                                     - coalesce(sum(q.value[i]) FILTER (WHERE sol.settled_now[i]), 0))::bigint, acc.currency)
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
    'Per account of a participant: the queued payments its own liquidity blocks, the least top-up that settles them (solved exactly, across currencies, net of wire fees and FX spread) and what it unlocks for all';

-- Rights: a participant reads its own prices (row-level security) and its
-- own advice; the advice's internals are the owner's.
ALTER TABLE settle.liquidity_price ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_prices ON settle.liquidity_price FOR SELECT
    USING ((SELECT settle.sees_all()) OR participant_id = (SELECT settle.current_participant()));
REVOKE ALL ON settle.liquidity_price FROM PUBLIC;
GRANT SELECT ON settle.liquidity_price TO settle_submitter, settle_operator, settle_auditor;
REVOKE ALL ON FUNCTION settle._topup_solve(integer, bigint[], boolean[], integer[], integer[], bigint[], double precision[],
        double precision, bigint[], integer[], integer[], double precision[], integer[], double precision[], double precision[]),
    settle._advice_queue(), settle._funding_advice(text), @extschema@.settle_funding_advice(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.settle_funding_advice(text) TO settle_submitter, settle_operator, settle_auditor;
