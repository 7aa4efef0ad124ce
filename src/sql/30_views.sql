-- settle install script, part 3: the views users read, and status look-up.
-- Amounts appear twice: exact numeric in major units, and minor units.

CREATE OR REPLACE VIEW settle.currencies AS
    SELECT code, exponent, name FROM settle.currency;

CREATE OR REPLACE VIEW settle.participants AS
    SELECT participant_id, name, status, created_at, updated_at
      FROM settle.participant WHERE NOT is_operator;

CREATE OR REPLACE VIEW settle.accounts AS
    SELECT a.account_id, a.participant_id, a.currency, a.kind,
           settle.to_major(a.balance, a.currency) AS balance,
           settle.to_major(a.lower_limit, a.currency) AS lower_limit,
           settle.to_major(a.balance - a.pending_debit + a.lower_limit, a.currency) AS available,
           a.balance AS balance_minor, a.lower_limit AS lower_limit_minor,
           a.status, a.created_at, a.updated_at,
           settle.to_major(a.pending_debit, a.currency) AS pending_debit,
           settle.to_major(a.pending_credit, a.currency) AS pending_credit
      FROM settle.account a;

-- idempotency_key is the payer's: the payee sees NULL there
CREATE OR REPLACE VIEW settle.transactions AS
    SELECT p.payment_id, p.transaction_id,
           CASE WHEN (SELECT settle.sees_all()) OR p.source_participant = (SELECT settle.current_participant())
                THEN p.idempotency_key END AS idempotency_key,
           settle.to_major(p.amount, p.source_currency) AS amount,
           p.amount AS amount_minor,
           p.source_currency, p.destination_currency,
           p.source_account, p.destination_account,
           p.source_participant, p.counterparty_id,
           settle.to_major(p.destination_amount, p.destination_currency) AS destination_amount,
           -- the priority in force: as its payer set it since (issue #33), or as submitted
           p.fx_rate, coalesce(p.queue_priority, p.priority)::settle.payment_priority AS priority, p.deadline, p.status,
           p.created_at AS submitted_at, p.updated_at, p.settled_at, p.cycle_id,
           p.hold_reason,
           p.not_before
      FROM settle.payment p;

CREATE OR REPLACE VIEW settle.events AS
    SELECT event_id, occurred_at, entity, entity_id, event_type,
           from_status, to_status, details
      FROM settle.event;

CREATE OR REPLACE VIEW settle.fx_rates AS
    SELECT DISTINCT ON (base_currency, quote_currency)
           base_currency, quote_currency, mid_rate, spread_bps, valid_from
      FROM settle.fx_rate
     ORDER BY base_currency, quote_currency, valid_from DESC;

CREATE OR REPLACE VIEW settle.wire_fees AS
    SELECT w.participant_id, w.currency, settle.to_major(w.fee, w.currency) AS fee, w.fee AS fee_minor
      FROM settle.wire_fee w;

-- Status of one payment, by transaction_id or by idempotency_key; answered
-- only once what it reports is on the synchronous standby.
CREATE OR REPLACE FUNCTION settle_payment_status(transaction_id text DEFAULT NULL, idempotency_key text DEFAULT NULL)
RETURNS SETOF settle.transactions
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN QUERY
    SELECT t.* FROM settle.transactions t
     WHERE t.transaction_id = settle_payment_status.transaction_id
    UNION ALL
    SELECT t.* FROM settle.transactions t
     WHERE t.idempotency_key = settle_payment_status.idempotency_key
       AND t.transaction_id IS DISTINCT FROM settle_payment_status.transaction_id;
    PERFORM settle._wait_durable('the payment status');
END
$$;
