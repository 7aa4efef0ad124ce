-- settle install script, part 8.2: returns and reversals (issue #16, item 9).
--
-- A settled payment is never changed in the ledger: a return is a new
-- balanced journal (kind 'reversal') that takes back exactly what the
-- payment's settlement posted: the payee's account is debited its
-- destination amount, the payer's account credited its amount, and, across
-- currencies, the operator's settlement accounts take the two sides (the
-- return is made at the payment's own rate, so the payer gets back what it
-- paid; the operator carries the difference to today's rate).  The payment
-- becomes 'returned' (final) with an event that carries the postings, so
-- history, replay and verify see the return like any posting.
--
-- Two ways in:
--   settle_return_payment(payment_id, reason)   an operator reverses one
--                       settled payment (a recall, a fraud case, an error);
--   settle_rail_fail() on a pay-out that fails for good: the operator could
--                       not deliver that participant's net credit, so the
--                       payments into it are returned to their payers, up to
--                       the undelivered net (docs/SETTLEMENT_FLOW.md).
-- A return follows the limit rule of every posting: the payee's account may
-- not end below its limit (balance - pending_debit >= -lower_limit); if it
-- would, the return is refused (SE107) and the payment stays settled.

-- Returns one settled payment: the journal, the balances, the payment's
-- status and its event.  The caller holds the payment's row lock and has
-- checked that it is settled.  Returns the reversal journal's id.
CREATE OR REPLACE FUNCTION settle._return_payment(p settle.payment, reason text, initiated_by text,
                                       batch_id bigint DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    dst_amount bigint := coalesce(p.destination_amount, p.amount);
    payee settle.account;
    original bigint;
    jid bigint;
    postings jsonb;
    ref text := format('return of payment %s: %s', p.payment_id, reason);
BEGIN
    SELECT * INTO payee FROM settle.account a WHERE a.account_id = p.destination_account FOR UPDATE;
    IF payee.balance - dst_amount - payee.pending_debit < -payee.lower_limit THEN
        RAISE EXCEPTION 'payment % cannot be returned: account % would go below its limit',
                        p.payment_id, payee.account_id
            USING ERRCODE = 'SE107',
                  DETAIL = format('Balance %s, pending debits %s, limit %s %s; the return debits %s.',
                                  settle.to_major(payee.balance, payee.currency),
                                  settle.to_major(payee.pending_debit, payee.currency),
                                  settle.to_major(payee.lower_limit, payee.currency), payee.currency,
                                  settle.to_major(dst_amount, payee.currency)),
                  HINT = 'Fund the account or raise its limit first; the payment stays settled.';
    END IF;
    SELECT min(e.journal_id) INTO original FROM settle.ledger_entry e
     WHERE e.payment_id = p.payment_id AND e.amount < 0;
    -- the legs that undo the settlement: the payee's and the payer's first,
    -- then (across currencies) the settlement accounts' two sides
    postings := jsonb_build_array(
        jsonb_build_object('account', p.destination_account, 'currency', p.destination_currency,
                           'amount', -dst_amount, 'payment_id', p.payment_id),
        jsonb_build_object('account', p.source_account, 'currency', p.source_currency,
                           'amount', p.amount, 'payment_id', p.payment_id));
    IF p.source_currency <> p.destination_currency THEN
        postings := postings || jsonb_build_array(
            jsonb_build_object('account', settle._operator_account('settlement', p.destination_currency),
                               'currency', p.destination_currency, 'amount', dst_amount),
            jsonb_build_object('account', settle._operator_account('settlement', p.source_currency),
                               'currency', p.source_currency, 'amount', -p.amount));
    END IF;
    INSERT INTO settle.journal (kind, cycle_id, reference) VALUES ('reversal', NULL, ref)
        RETURNING journal_id INTO jid;
    INSERT INTO settle.ledger_entry (journal_id, batch_id, payment_id, account_id, currency, amount)
        SELECT jid, NULL, (x.leg->>'payment_id')::bigint, x.leg->>'account', x.leg->>'currency',
               (x.leg->>'amount')::bigint
          FROM jsonb_array_elements(postings) WITH ORDINALITY AS x(leg, n)
         ORDER BY x.n;
    -- in account order, as a cycle's posting locks them
    UPDATE settle.account a SET balance = a.balance + d.amount, updated_at = clock_timestamp()
      FROM (SELECT x.account, sum(x.amount) AS amount
              FROM jsonb_to_recordset(postings) AS x(account text, amount bigint) GROUP BY x.account) d
     WHERE a.account_id = d.account;
    UPDATE settle.payment x SET status = 'returned', updated_at = clock_timestamp()
     WHERE x.payment_id = p.payment_id;
    INSERT INTO settle.event (entity, entity_id, event_type, from_status, to_status, details)
        VALUES ('payment', p.payment_id::text, 'returned', 'settled', 'returned',
                jsonb_build_object('journal_id', jid, 'reference', ref, 'reason', reason,
                                   'initiated_by', initiated_by, 'cycle_id', p.cycle_id,
                                   'returns_journal', original, 'batch_id', batch_id,
                                   'by', session_user::text, 'postings', postings));
    RETURN jid;
END
$$;

-- An operator returns one settled payment, with a reason.
CREATE OR REPLACE FUNCTION settle_return_payment(payment_id bigint, reason text)
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    p settle.payment;
BEGIN
    PERFORM settle._check_fence('a return');
    PERFORM settle._check_sync_standby('a return');
    IF reason IS NULL OR btrim(reason) = '' THEN
        RAISE EXCEPTION 'a return needs a reason' USING ERRCODE = 'SE108',
            HINT = 'Say why the payment is returned: it is recorded in the journal and the event.';
    END IF;
    -- one at a time with cycles, which post to the same accounts
    LOCK TABLE settle.cycle_lock IN EXCLUSIVE MODE;
    SELECT * INTO p FROM settle.payment x WHERE x.payment_id = settle_return_payment.payment_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'payment % does not exist', payment_id USING ERRCODE = 'SE103';
    ELSIF p.status <> 'settled' THEN
        RAISE EXCEPTION 'payment % is not settled', payment_id USING ERRCODE = 'SE106',
            DETAIL = format('Its status is %s.', p.status),
            HINT = 'Only a settled payment can be returned, once.';
    END IF;
    RETURN settle._return_payment(p, reason, 'operator');
END
$$;

-- A pay-out that failed for good: the participant's net credit in that
-- currency could not be delivered.  The payments of that cycle into the
-- participant's accounts of that currency are returned to their payers,
-- newest first, as long as their total stays within the undelivered net and
-- the limit rule allows each (the participant's own payments of the cycle
-- were funded by the rest of its credits, which stay).  The batch becomes
-- 'returned' when returns cover its whole net, else 'failed' with what is
-- left for an operator.  Returns the amount returned, in minor units.
CREATE OR REPLACE FUNCTION settle._return_pay_out(b settle.batch, reason text) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    p settle.payment;
    returned bigint := 0;
    ids bigint[] := '{}';
    refused bigint[] := '{}';
    dst bigint;
BEGIN
    LOCK TABLE settle.cycle_lock IN EXCLUSIVE MODE;
    FOR p IN SELECT x.* FROM settle.payment x JOIN settle.account a ON a.account_id = x.destination_account
              WHERE x.cycle_id = b.cycle_id AND x.status = 'settled'
                AND a.participant_id = b.participant_id AND x.destination_currency = b.currency
              ORDER BY x.payment_id DESC FOR UPDATE OF x LOOP
        dst := coalesce(p.destination_amount, p.amount);
        CONTINUE WHEN returned + dst > b.net_amount;
        BEGIN
            PERFORM settle._return_payment(p, format('pay-out batch %s failed: %s', b.batch_id, reason),
                                           'rail', b.batch_id);
            returned := returned + dst;
            ids := ids || p.payment_id;
        EXCEPTION WHEN SQLSTATE 'SE107' THEN
            refused := refused || p.payment_id;
        END;
    END LOOP;
    PERFORM settle._batch_event(b, CASE WHEN returned = b.net_amount THEN 'returned' ELSE 'failed' END,
                                jsonb_build_object('error', reason, 'returned_payments', to_jsonb(ids),
                                                   'returned', returned, 'not_returned', b.net_amount - returned,
                                                   'refused_by_limit', to_jsonb(refused)));
    UPDATE settle.batch x SET status = CASE WHEN returned = b.net_amount THEN 'returned' ELSE 'failed' END,
           last_error = reason, updated_at = clock_timestamp()
     WHERE x.batch_id = b.batch_id;
    RETURN returned;
END
$$;
