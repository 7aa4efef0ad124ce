-- Reference data: participants, accounts, FX rates, wire fees, and their
-- validation (same SQLSTATEs as settle_submit).  Also installs the helper
-- the other tests use to show an error's SQLSTATE and message.
CREATE SCHEMA test;
CREATE FUNCTION test.try(call text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE call;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;

-- the shipped currencies: at least 30, with zero-, two-, three- and four-decimal ones
SELECT count(*) >= 30 AS enough_currencies FROM settle.currencies;
SELECT code, exponent FROM settle.currencies WHERE code IN ('USD', 'JPY', 'BHD', 'KWD', 'CLF', 'EUR') ORDER BY code;

SELECT settle_create_participant('bank_a', 'Bank A');
SELECT settle_create_participant('bank_b', 'Bank B');
SELECT settle_create_participant('bank_c');
SELECT participant_id, name, status FROM settle.participants ORDER BY 1;

-- participant rules
SELECT test.try($$SELECT settle_create_participant('bank_a')$$) AS duplicate;
SELECT test.try($$SELECT settle_create_participant(NULL)$$) AS null_id;
SELECT test.try($$SELECT settle_create_participant('')$$) AS empty_id;
SELECT test.try($$SELECT settle_create_participant('bank a')$$) AS space;
SELECT test.try($$SELECT settle_create_participant('_bank')$$) AS leading_underscore;
SELECT test.try($$SELECT settle_create_participant(repeat('b', 129))$$) AS too_long;
SELECT test.try($$SELECT settle_create_participant('bank_x', E'Bank\nX')$$) AS control_in_name;
SELECT test.try($$SELECT settle_set_participant_status('bank_zz', 'active')$$) AS unknown;
SELECT test.try($$SELECT settle_set_participant_status('bank_c', 'gone')$$) AS bad_status;

-- accounts: balance and limit in the currency's minor units
SELECT settle_create_account('acc_001', 'bank_a', 'USD', lower_limit => 1000, opening_balance => 50000);
SELECT settle_create_account('acc_002', 'bank_b', 'EUR', opening_balance => 20000.50);
SELECT settle_create_account('acc_003', 'bank_b', 'USD');
SELECT settle_create_account('acc_004', 'bank_c', 'JPY', opening_balance => 1000000);
SELECT settle_create_account('acc_005', 'bank_c', 'BHD', opening_balance => 10.125);
SELECT account_id, participant_id, currency, balance, lower_limit, available, balance_minor, status
  FROM settle.accounts WHERE kind = 'customer' ORDER BY 1;

-- account rules
SELECT test.try($$SELECT settle_create_account('acc_001', 'bank_a', 'USD')$$) AS duplicate;
SELECT test.try($$SELECT settle_create_account('acc_009', 'bank_zz', 'USD')$$) AS unknown_participant;
SELECT test.try($$SELECT settle_create_account('acc_009', 'bank_a', 'usd')$$) AS lower_case_currency;
SELECT test.try($$SELECT settle_create_account('acc_009', 'bank_a', 'XXX')$$) AS unknown_currency;
SELECT test.try($$SELECT settle_create_account('acc_009', 'bank_a', 'USD', -5)$$) AS negative_limit;
SELECT test.try($$SELECT settle_create_account('acc_009', 'bank_a', 'JPY', 0.5)$$) AS jpy_decimals;
SELECT test.try($$SELECT settle_create_account('acc_009', 'bank_a', 'USD', 0, 'NaN')$$) AS nan_balance;
SELECT test.try($$SELECT settle_create_account('acc 9', 'bank_a', 'USD')$$) AS bad_account_id;
SELECT test.try($$SELECT settle_fund_account('acc_001', 0)$$) AS fund_zero;
SELECT test.try($$SELECT settle_fund_account('acc_404', 10)$$) AS fund_unknown;
SELECT test.try($$SELECT settle_set_account_status('acc_001', 'sleeping')$$) AS bad_status;
SELECT count(*) AS accounts_after_refusals FROM settle.accounts WHERE kind = 'customer';

-- limits: lowering below the current overdraft is refused
SELECT settle_set_account_limit('acc_003', 500);
SELECT test.try($$SELECT settle_set_account_limit('acc_003', -1)$$) AS negative;
SELECT settle_set_account_status('acc_003', 'frozen');
SELECT settle_set_account_status('acc_003', 'active');

-- funding posts a balanced journal against the operator's external account
SELECT settle_fund_account('acc_003', 100.25, 'top-up') > 0 AS funded;
SELECT account_id, balance FROM settle.accounts WHERE account_id IN ('acc_003', '_external.USD') ORDER BY 1;
SELECT currency, sum(amount) AS sums_to_zero FROM settle.ledger_entry GROUP BY currency ORDER BY 1;

-- FX rates and wire fees
SELECT settle_set_fx_rate('EUR', 'USD', 1.08, 5) IS NOT NULL AS rate_set;
SELECT settle_set_fx_rate('USD', 'JPY', 150.25, 10) IS NOT NULL AS rate_set;
SELECT test.try($$SELECT settle_set_fx_rate('EUR', 'EUR', 1)$$) AS same_pair;
SELECT test.try($$SELECT settle_set_fx_rate('EUR', 'USD', 0)$$) AS zero_rate;
SELECT test.try($$SELECT settle_set_fx_rate('EUR', 'USD', 1.1, -1)$$) AS negative_spread;
SELECT base_currency, quote_currency, mid_rate, spread_bps FROM settle.fx_rates ORDER BY 1, 2;
SELECT settle_set_wire_fee('USD', 25);
SELECT settle_set_wire_fee('EUR', 20);
SELECT settle_set_wire_fee('EUR', 15.5, 'bank_b');
SELECT test.try($$SELECT settle_set_wire_fee('USD', -1)$$) AS negative_fee;
SELECT test.try($$SELECT settle_set_wire_fee('USD', 1, 'bank_zz')$$) AS unknown_participant;
SELECT participant_id, currency, fee, fee_minor FROM settle.wire_fees ORDER BY 2, 1 NULLS FIRST;

-- reference data is never deleted
SELECT test.try($$DELETE FROM settle.account WHERE account_id = 'acc_003'$$) AS delete_account;
SELECT test.try($$DELETE FROM settle.participant WHERE participant_id = 'bank_c'$$) AS delete_participant;
SELECT entity, event_type, count(*) FROM settle.events GROUP BY 1, 2 ORDER BY 1, 2;

-- minor units shown in major units with the currency's scale (every view's amounts)
SELECT c, m, settle.to_major(m, c) AS major, scale(settle.to_major(m, c)) AS scale
  FROM (VALUES ('USD', 12345), ('USD', -5), ('JPY', 1500), ('BHD', 1), ('CLF', -123456789),
               ('USD', 9223372036854775807), ('USD', -9223372036854775808), ('XXQ', 1)) v(c, m);
SELECT settle.to_major(NULL, 'USD') IS NULL AS null_in_null_out;
