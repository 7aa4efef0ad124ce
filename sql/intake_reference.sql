-- Reference data: participants, accounts, FX rates, wire fees, and their
-- validation (same SQLSTATEs as settle_submit).
-- errors are recorded by pg_regress: only their SQLSTATE, which is what
-- these tests check (the codes are settle's public interface, docs/ERRORS.md)
\set VERBOSITY sqlstate

-- the shipped currencies: at least 30, with zero-, two-, three- and four-decimal ones
SELECT count(*) >= 30 AS enough_currencies FROM settle.currencies;
SELECT code, exponent FROM settle.currencies WHERE code IN ('USD', 'JPY', 'BHD', 'KWD', 'CLF', 'EUR') ORDER BY code;

SELECT settle_create_participant('bank_a', 'Bank A');
SELECT settle_create_participant('bank_b', 'Bank B');
SELECT settle_create_participant('bank_c');
SELECT participant_id, name, status FROM settle.participants ORDER BY 1;

-- participant rules
SELECT settle_create_participant('bank_a'); -- duplicate
SELECT settle_create_participant(NULL); -- null_id
SELECT settle_create_participant(''); -- empty_id
SELECT settle_create_participant('bank a'); -- space
SELECT settle_create_participant('_bank'); -- leading_underscore
SELECT settle_create_participant(repeat('b', 129)); -- too_long
SELECT settle_create_participant('bank_x', E'Bank\nX'); -- control_in_name
SELECT settle_set_participant_status('bank_zz', 'active'); -- unknown
SELECT settle_set_participant_status('bank_c', 'gone'); -- bad_status

-- accounts: balance and limit in the currency's minor units
SELECT settle_create_account('acc_001', 'bank_a', 'USD', lower_limit => 1000, opening_balance => 50000);
SELECT settle_create_account('acc_002', 'bank_b', 'EUR', opening_balance => 20000.50);
SELECT settle_create_account('acc_003', 'bank_b', 'USD');
SELECT settle_create_account('acc_004', 'bank_c', 'JPY', opening_balance => 1000000);
SELECT settle_create_account('acc_005', 'bank_c', 'BHD', opening_balance => 10.125);
SELECT account_id, participant_id, currency, balance, lower_limit, available, balance_minor, status
  FROM settle.accounts WHERE kind = 'customer' ORDER BY 1;

-- account rules
SELECT settle_create_account('acc_001', 'bank_a', 'USD'); -- duplicate
SELECT settle_create_account('acc_009', 'bank_zz', 'USD'); -- unknown_participant
SELECT settle_create_account('acc_009', 'bank_a', 'usd'); -- lower_case_currency
SELECT settle_create_account('acc_009', 'bank_a', 'XXX'); -- unknown_currency
SELECT settle_create_account('acc_009', 'bank_a', 'USD', -5); -- negative_limit
SELECT settle_create_account('acc_009', 'bank_a', 'JPY', 0.5); -- jpy_decimals
SELECT settle_create_account('acc_009', 'bank_a', 'USD', 0, 'NaN'); -- nan_balance
SELECT settle_create_account('acc 9', 'bank_a', 'USD'); -- bad_account_id
SELECT settle_fund_account('acc_001', 0); -- fund_zero
SELECT settle_fund_account('acc_404', 10); -- fund_unknown
SELECT settle_set_account_status('acc_001', 'sleeping'); -- bad_status
SELECT count(*) AS accounts_after_refusals FROM settle.accounts WHERE kind = 'customer';

-- limits: lowering below the current overdraft is refused
SELECT settle_set_account_limit('acc_003', 500);
SELECT settle_set_account_limit('acc_003', -1); -- negative
SELECT settle_set_account_status('acc_003', 'frozen');
SELECT settle_set_account_status('acc_003', 'active');

-- funding posts a balanced journal against the operator's external account
SELECT settle_fund_account('acc_003', 100.25, 'top-up') > 0 AS funded;
SELECT account_id, balance FROM settle.accounts WHERE account_id IN ('acc_003', '_external.USD') ORDER BY 1;
SELECT currency, sum(amount) AS sums_to_zero FROM settle.ledger_entry GROUP BY currency ORDER BY 1;

-- FX rates and wire fees
SELECT settle_set_fx_rate('EUR', 'USD', 1.08, 5) IS NOT NULL AS rate_set;
SELECT settle_set_fx_rate('USD', 'JPY', 150.25, 10) IS NOT NULL AS rate_set;
SELECT settle_set_fx_rate('EUR', 'EUR', 1); -- same_pair
SELECT settle_set_fx_rate('EUR', 'USD', 0); -- zero_rate
SELECT settle_set_fx_rate('EUR', 'USD', 1.1, -1); -- negative_spread
SELECT base_currency, quote_currency, mid_rate, spread_bps FROM settle.fx_rates ORDER BY 1, 2;
SELECT settle_set_wire_fee('USD', 25);
SELECT settle_set_wire_fee('EUR', 20);
SELECT settle_set_wire_fee('EUR', 15.5, 'bank_b');
SELECT settle_set_wire_fee('USD', -1); -- negative_fee
SELECT settle_set_wire_fee('USD', 1, 'bank_zz'); -- unknown_participant
SELECT participant_id, currency, fee, fee_minor FROM settle.wire_fees ORDER BY 2, 1 NULLS FIRST;

-- reference data is never deleted
DELETE FROM settle.account WHERE account_id = 'acc_003'; -- delete_account
DELETE FROM settle.participant WHERE participant_id = 'bank_c'; -- delete_participant
SELECT entity, event_type, count(*) FROM settle.events GROUP BY 1, 2 ORDER BY 1, 2;

-- minor units shown in major units with the currency's scale (every view's amounts)
SELECT c, m, settle.to_major(m, c) AS major, scale(settle.to_major(m, c)) AS scale
  FROM (VALUES ('USD', 12345), ('USD', -5), ('JPY', 1500), ('BHD', 1), ('CLF', -123456789),
               ('USD', 9223372036854775807), ('USD', -9223372036854775808), ('XXQ', 1)) v(c, m);
SELECT settle.to_major(NULL, 'USD') IS NULL AS null_in_null_out;
