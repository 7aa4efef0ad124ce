-- settle install script, part 9.5: what \df+ and \d+ show.  One line per
-- public function, view and view column users read (the functions created
-- with a comment beside them are not repeated here).  Amounts in views are
-- exact numeric in major units; *_minor columns are bigint minor units.

-- functions
COMMENT ON FUNCTION @extschema@.settle_archive(timestamptz, bigint) IS
    'Move one slice (at most max_events) of the sealed events older than a time (whole transactions), their cycles and old seal runs to tables of schema settle_archive; the chains and verify stay whole; call again until no row (operators)';
COMMENT ON PROCEDURE @extschema@.settle_archive_all(timestamptz, bigint, integer, bigint) IS
    'Archive everything older than a time, slice after slice, each committed on its own (CALL outside a transaction block; resumable) (operators)';
COMMENT ON FUNCTION @extschema@.settle_verify_archive(bigint) IS
    'Check an archive (or all) against the hashes settle.archive recorded: attached or detached, links and content intact';
COMMENT ON TABLE settle.archive IS
    'settle: one row per settle_archive() run: the event chain positions and hashes at both ends of what was moved out';
COMMENT ON TABLE settle.archive_state IS
    'settle: what replay and verify read from archived events (last statuses, limits, postings, journal references, first batch events)';
COMMENT ON FUNCTION @extschema@.settle_balance_as_of(text, timestamptz) IS
    'Balance of an account as of a moment: the sum of its ledger entries posted at or before it';
COMMENT ON FUNCTION @extschema@.settle_cancel_payment(bigint, text) IS
    'Cancel a held payment with a reason: it fails for good and never settles (operators)';
COMMENT ON FUNCTION @extschema@.settle_return_payment(bigint, text) IS
    'Return a settled payment with a reason: a reversal journal takes back its legs, within the payee''s limit; the payment becomes returned (operators)';
COMMENT ON FUNCTION @extschema@.settle_release_payment(bigint) IS
    'Release a held payment back to the queue once its participants are active again (operators)';
COMMENT ON FUNCTION @extschema@.settle_chain_digest() IS
    'The hash chains'' heads as jsonb, to keep outside the database (an operator''s call seals first)';
COMMENT ON FUNCTION @extschema@.settle_create_account(text, text, text, numeric, numeric) IS
    'Create a customer account of a participant in one currency, with a lower limit and an opening balance (operators)';
COMMENT ON FUNCTION @extschema@.settle_create_participant(text, text) IS
    'Create a participant (a bank or other counterparty) (operators)';
COMMENT ON FUNCTION @extschema@.settle_end_of_day(date) IS
    'End of day: one balance snapshot per account for the business date (pg_cron job settle-end-of-day)';
COMMENT ON FUNCTION @extschema@.settle_fund_account(text, numeric, text) IS
    'Fund an account from the operator''s external account: one balanced journal with its reference (operators)';
COMMENT ON FUNCTION @extschema@.settle_map_role(name, text) IS
    'Let a login submit for, and see the rows of, one participant; grants it settle_submitter (operators)';
COMMENT ON FUNCTION @extschema@.settle_payment_history(text) IS
    'Everything that happened to one payment: its events, postings and reservations, in order';
COMMENT ON FUNCTION @extschema@.settle_payment_status(text, text) IS
    'One payment by transaction_id or by the payer''s idempotency_key, answered once it is durable on the synchronous standby';
COMMENT ON FUNCTION @extschema@.settle_purge_idempotency_keys(interval) IS
    'Key retention: release the idempotency keys of payments that ended more than keep ago (pg_cron job settle-retention)';
COMMENT ON FUNCTION @extschema@.settle_rail_confirm(bigint, text) IS
    'The rail confirms an instructed batch (wire); a cycle posts when all its pay-ins are confirmed';
COMMENT ON FUNCTION @extschema@.settle_rail_expire() IS
    'Count instructed batches without an answer for settle.rail_timeout as failed attempts (pg_cron job settle-rail-timeouts)';
COMMENT ON FUNCTION @extschema@.settle_rail_fail(bigint, text, boolean) IS
    'The rail reports a failed batch: retried with backoff, or failed for good (a failed pay-in voids its cycle)';
COMMENT ON FUNCTION @extschema@.settle_rail_fetch(integer) IS
    'The outbox: up to max_batches due batches for the rail, pay-ins first, handed out only once durable on the synchronous standby';
COMMENT ON FUNCTION @extschema@.settle_remap_roles() IS
    'After a restore into another cluster: map each role mapping''s name to the role of that name now (operators)';
COMMENT ON FUNCTION @extschema@.settle_replay(boolean) IS
    'Rebuild statuses, balances, pending amounts and postings from the event log alone and compare them with the tables';
COMMENT ON FUNCTION @extschema@.settle_run_cycle() IS
    'Run one settlement cycle now and return its record (no row if there was nothing to do) (operators)';
COMMENT ON FUNCTION @extschema@.settle_schedule_jobs(text, text, text, text) IS
    'Schedule the calendar jobs with pg_cron: end of day, key retention, rail time-outs, the day''s liquidity forecasts';
COMMENT ON FUNCTION @extschema@.settle_seal() IS
    'Seal finished ledger entries and events into the SHA-256 hash chains (the worker does it after every cycle) (operators)';
COMMENT ON FUNCTION @extschema@.settle_set_account_limit(text, numeric) IS
    'Change how far an account may go below zero (refused if it would already be below the new limit) (operators)';
COMMENT ON FUNCTION @extschema@.settle_set_account_status(text, text) IS
    'Set an account active, frozen or closed; payments touching a frozen account wait in the queue (operators)';
COMMENT ON FUNCTION @extschema@.settle_set_fx_rate(text, text, numeric, numeric) IS
    'Set the mid rate of a currency pair (1 base = mid_rate quote) and the spread converting costs, in basis points (operators)';
COMMENT ON FUNCTION @extschema@.settle_set_participant_status(text, text) IS
    'Set a participant active, suspended or closed (operators)';
COMMENT ON FUNCTION @extschema@.settle_set_wire_fee(text, numeric, text) IS
    'Set the fixed cost of one wire in a currency, for one participant or (NULL) the default (operators)';
COMMENT ON FUNCTION @extschema@.settle_verify(boolean) IS
    'Check the whole ledger: balance, limits, postings, chains, seal runs, the records the chains vouch for and the statement Merkle tree recomputed from the ledger; one row per problem';
COMMENT ON FUNCTION @extschema@.settle_verify_digest(jsonb) IS
    'Check a digest from settle_chain_digest(): is each head still at its place in the chain with the same hash, and is its statement tree root the one recomputed from the ledger at its size?';
COMMENT ON FUNCTION @extschema@.settle_worker_status(boolean) IS
    'What this database''s settlement worker did since the server started (or every database''s the launcher serves): cycles, failures, the last error, its state';
COMMENT ON FUNCTION @extschema@.settle_backlog_status() IS
    'The queue as this database''s settlement worker last saw it: estimated depth, intake refusals (SE093), payments left waiting, a stalled backlog, the worker''s backoff, its batching delay and what it chose it from (arrival rate, cost of a lone payment, netting saturation, cost of a second''s wait)';

-- views and their columns
COMMENT ON VIEW settle.currencies IS 'ISO 4217 currencies settle knows, with their minor-unit exponents';
COMMENT ON COLUMN settle.currencies.code IS 'ISO 4217 code';
COMMENT ON COLUMN settle.currencies.exponent IS 'decimal places of the minor unit (JPY 0, USD 2, BHD 3, CLF 4)';
COMMENT ON COLUMN settle.currencies.name IS 'currency name';

COMMENT ON VIEW settle.participants IS 'participants (the operator excluded)';
COMMENT ON COLUMN settle.participants.participant_id IS 'participant identifier';
COMMENT ON COLUMN settle.participants.name IS 'display name';
COMMENT ON COLUMN settle.participants.status IS 'active, suspended or closed';
COMMENT ON COLUMN settle.participants.created_at IS 'when it was created';
COMMENT ON COLUMN settle.participants.updated_at IS 'last change';

COMMENT ON VIEW settle.accounts IS 'accounts with balances, limits and what is available (row-level security: a participant sees its own)';
COMMENT ON COLUMN settle.accounts.account_id IS 'account identifier';
COMMENT ON COLUMN settle.accounts.participant_id IS 'owning participant';
COMMENT ON COLUMN settle.accounts.currency IS 'the one currency of the account';
COMMENT ON COLUMN settle.accounts.kind IS 'customer, or the operator''s settlement and external accounts';
COMMENT ON COLUMN settle.accounts.balance IS 'posted balance, major units';
COMMENT ON COLUMN settle.accounts.lower_limit IS 'how far the balance may go below zero, major units';
COMMENT ON COLUMN settle.accounts.available IS 'balance - pending debits + lower limit: what a cycle may still debit, major units';
COMMENT ON COLUMN settle.accounts.balance_minor IS 'posted balance, minor units';
COMMENT ON COLUMN settle.accounts.lower_limit_minor IS 'lower limit, minor units';
COMMENT ON COLUMN settle.accounts.status IS 'active, frozen or closed';
COMMENT ON COLUMN settle.accounts.created_at IS 'when it was created';
COMMENT ON COLUMN settle.accounts.updated_at IS 'last change';
COMMENT ON COLUMN settle.accounts.pending_debit IS 'debits reserved by two-phase cycles, not yet posted, major units';
COMMENT ON COLUMN settle.accounts.pending_credit IS 'credits reserved by two-phase cycles, not yet available, major units';

COMMENT ON VIEW settle.transactions IS 'payments and their outcomes (row-level security: payer and payee)';
COMMENT ON COLUMN settle.transactions.payment_id IS 'settle''s identifier of the payment';
COMMENT ON COLUMN settle.transactions.transaction_id IS 'the payer''s transaction id (unique per payer participant)';
COMMENT ON COLUMN settle.transactions.idempotency_key IS 'the payer''s idempotency key (unique per payer participant); NULL for the payee';
COMMENT ON COLUMN settle.transactions.amount IS 'amount debited, in source_currency major units';
COMMENT ON COLUMN settle.transactions.amount_minor IS 'amount debited, minor units';
COMMENT ON COLUMN settle.transactions.source_currency IS 'currency debited';
COMMENT ON COLUMN settle.transactions.destination_currency IS 'currency credited';
COMMENT ON COLUMN settle.transactions.source_account IS 'account debited';
COMMENT ON COLUMN settle.transactions.destination_account IS 'account credited';
COMMENT ON COLUMN settle.transactions.source_participant IS 'the payer participant (owner of source_account)';
COMMENT ON COLUMN settle.transactions.counterparty_id IS 'the payee participant (owner of destination_account)';
COMMENT ON COLUMN settle.transactions.destination_amount IS 'amount credited once settled, destination_currency major units';
COMMENT ON COLUMN settle.transactions.fx_rate IS 'the rate the credit was converted at (NULL without FX)';
COMMENT ON COLUMN settle.transactions.not_before IS 'the earliest settlement time its payer gave: no cycle takes it before (NULL: at once)';
COMMENT ON COLUMN settle.transactions.priority IS 'priority 1..9 in force: as submitted, or as its payer changed it since (settle_change_priority)';
COMMENT ON COLUMN settle.transactions.deadline IS 'latest time to settle; before it the payment may wait when that is cheaper';
COMMENT ON COLUMN settle.transactions.status IS 'queued, held, reserved, settled, expired or failed';
COMMENT ON COLUMN settle.transactions.submitted_at IS 'when it was accepted';
COMMENT ON COLUMN settle.transactions.updated_at IS 'last change of status';
COMMENT ON COLUMN settle.transactions.settled_at IS 'when it settled';
COMMENT ON COLUMN settle.transactions.cycle_id IS 'the cycle that settled (or reserved) it';
COMMENT ON COLUMN settle.transactions.hold_reason IS 'why a held payment is held (a suspended participant, a credit out of range)';

COMMENT ON VIEW settle.events IS 'every state change, append-only and hash-chained (row-level security: a participant''s own)';
COMMENT ON COLUMN settle.events.event_id IS 'event identifier, in insertion order';
COMMENT ON COLUMN settle.events.occurred_at IS 'when it happened';
COMMENT ON COLUMN settle.events.entity IS 'payment, batch, cycle, account, participant, fx_rate or wire_fee';
COMMENT ON COLUMN settle.events.entity_id IS 'identifier of the entity';
COMMENT ON COLUMN settle.events.event_type IS 'what happened';
COMMENT ON COLUMN settle.events.from_status IS 'status before (NULL if none)';
COMMENT ON COLUMN settle.events.to_status IS 'status after (NULL if unchanged)';
COMMENT ON COLUMN settle.events.details IS 'the facts of the change; postings carry account, currency and signed minor amount';

COMMENT ON VIEW settle.fx_rates IS 'the FX rates in force: the latest per pair';
COMMENT ON COLUMN settle.fx_rates.base_currency IS 'base currency';
COMMENT ON COLUMN settle.fx_rates.quote_currency IS 'quote currency';
COMMENT ON COLUMN settle.fx_rates.mid_rate IS '1 base = mid_rate quote';
COMMENT ON COLUMN settle.fx_rates.spread_bps IS 'what converting costs, basis points of the converted value';
COMMENT ON COLUMN settle.fx_rates.valid_from IS 'in force since';

COMMENT ON VIEW settle.wire_fees IS 'the fixed cost of one wire per currency (and participant)';
COMMENT ON COLUMN settle.wire_fees.participant_id IS 'participant, or NULL for the currency''s default';
COMMENT ON COLUMN settle.wire_fees.currency IS 'currency of the wire';
COMMENT ON COLUMN settle.wire_fees.fee IS 'fee per wire, major units';
COMMENT ON COLUMN settle.wire_fees.fee_minor IS 'fee per wire, minor units';

COMMENT ON VIEW settle.cycles IS 'settlement cycles: what each did, what it cost, and the same queue''s baselines (FIFO gross, FIFO netted, naive batching)';
COMMENT ON COLUMN settle.cycles.cycle_id IS 'cycle identifier';
COMMENT ON COLUMN settle.cycles.started_at IS 'start';
COMMENT ON COLUMN settle.cycles.finished_at IS 'end';
COMMENT ON COLUMN settle.cycles.run_by IS 'worker or manual';
COMMENT ON COLUMN settle.cycles.reference_currency IS 'currency of the values and costs below';
COMMENT ON COLUMN settle.cycles.considered IS 'payments in the queue the cycle looked at';
COMMENT ON COLUMN settle.cycles.settled IS 'payments settled (or reserved, two-phase)';
COMMENT ON COLUMN settle.cycles.deferred IS 'payments left to wait because waiting was cheaper';
COMMENT ON COLUMN settle.cycles.unsettled IS 'payments left queued for want of liquidity or held';
COMMENT ON COLUMN settle.cycles.expired IS 'payments expired: deadline passed';
COMMENT ON COLUMN settle.cycles.settled_value IS 'value settled, reference currency';
COMMENT ON COLUMN settle.cycles.batches IS 'batches written (one per participant and currency)';
COMMENT ON COLUMN settle.cycles.wires IS 'batches that move money (net not zero)';
COMMENT ON COLUMN settle.cycles.fee_cost IS 'wire fees, reference currency';
COMMENT ON COLUMN settle.cycles.fx_cost IS 'FX spread on the net converted volume, reference currency';
COMMENT ON COLUMN settle.cycles.cost IS 'fee_cost + fx_cost';
COMMENT ON COLUMN settle.cycles.fifo_settled IS 'payments FIFO gross settlement would have settled';
COMMENT ON COLUMN settle.cycles.fifo_value IS 'value FIFO would have settled';
COMMENT ON COLUMN settle.cycles.fifo_cost IS 'what FIFO would have cost';
COMMENT ON COLUMN settle.cycles.naive_wires IS 'wires of naive batching (one per counterparty and currency pair, no netting)';
COMMENT ON COLUMN settle.cycles.naive_cost IS 'what naive batching would have cost';
COMMENT ON COLUMN settle.cycles.lp_bound_pct IS 'settled weight as a percentage of the LP relaxation''s bound';
COMMENT ON COLUMN settle.cycles.solver_status IS 'optimal, feasible, heuristic or error';
COMMENT ON COLUMN settle.cycles.solver_method IS 'how the selection was found';
COMMENT ON COLUMN settle.cycles.solver_ms IS 'solver time, milliseconds';
COMMENT ON COLUMN settle.cycles.cycle_ms IS 'whole cycle time, milliseconds';
COMMENT ON COLUMN settle.cycles.journal_id IS 'the journal that posted the cycle (NULL until a two-phase cycle posts)';
COMMENT ON COLUMN settle.cycles.saved_vs_naive_pct IS 'cost saved against naive batching, percent';
COMMENT ON COLUMN settle.cycles.value_over_fifo IS 'value settled beyond what FIFO would have settled, reference currency';
COMMENT ON COLUMN settle.cycles.fifo_netted_wires IS 'wires of the netting-only baseline: FIFO''s payments netted per participant and currency, no optimisation (NULL before 1.1)';
COMMENT ON COLUMN settle.cycles.fifo_netted_cost IS 'what the netting-only baseline would have cost: a fee per wire with a net, spread on each currency pair''s net (NULL before 1.1)';
COMMENT ON COLUMN settle.cycles.saved_vs_netting_pct IS 'cost saved against the netting-only baseline, percent (NULL when that cost is 0 or unknown)';
COMMENT ON COLUMN settle.cycle.fifo_netted_wires IS 'wires of the netting-only baseline (settle.cycles)';
COMMENT ON COLUMN settle.cycle.fifo_netted_cost IS 'cost of the netting-only baseline, reference currency (settle.cycles)';

COMMENT ON VIEW settle.batches IS 'batches: one wire per participant and currency per cycle, and its state on the rail (row-level security: a participant''s own)';
COMMENT ON COLUMN settle.batches.batch_id IS 'batch identifier (the rail''s instruction id)';
COMMENT ON COLUMN settle.batches.cycle_id IS 'the cycle that made it';
COMMENT ON COLUMN settle.batches.participant_id IS 'the participant paid or paying';
COMMENT ON COLUMN settle.batches.currency IS 'currency of the wire';
COMMENT ON COLUMN settle.batches.debit_total IS 'the participant''s payments out, major units';
COMMENT ON COLUMN settle.batches.credit_total IS 'its payments in, major units';
COMMENT ON COLUMN settle.batches.net_amount IS 'credit_total - debit_total: negative a pay-in, positive a pay-out, major units';
COMMENT ON COLUMN settle.batches.net_amount_minor IS 'net amount, minor units';
COMMENT ON COLUMN settle.batches.payment_legs IS 'payment legs netted into the wire';
COMMENT ON COLUMN settle.batches.fee IS 'the wire''s fee, major units';
COMMENT ON COLUMN settle.batches.status IS 'settled (direct), or reserved, pending, instructed, confirmed, voided, retained, failed (two-phase)';
COMMENT ON COLUMN settle.batches.created_at IS 'when the cycle wrote it';
COMMENT ON COLUMN settle.batches.direction IS 'pay_in, pay_out or none';
COMMENT ON COLUMN settle.batches.attempts IS 'times handed to the rail';
COMMENT ON COLUMN settle.batches.next_attempt_at IS 'when it is due for the rail (backoff after a failure)';
COMMENT ON COLUMN settle.batches.instructed_at IS 'when it was last handed to the rail';
COMMENT ON COLUMN settle.batches.rail_reference IS 'the rail''s reference on confirmation';
COMMENT ON COLUMN settle.batches.last_error IS 'the rail''s last failure reason';
COMMENT ON COLUMN settle.batches.updated_at IS 'last change of rail state';

COMMENT ON VIEW settle.ledger IS 'the double-entry ledger: every posting, append-only and hash-chained (row-level security: a participant''s accounts)';
COMMENT ON COLUMN settle.ledger.entry_id IS 'entry identifier';
COMMENT ON COLUMN settle.ledger.journal_id IS 'its journal: entries of one journal sum to zero per currency';
COMMENT ON COLUMN settle.ledger.journal_kind IS 'funding, settlement, reversal or adjustment';
COMMENT ON COLUMN settle.ledger.cycle_id IS 'the cycle of a settlement journal';
COMMENT ON COLUMN settle.ledger.batch_id IS 'the batch the entry belongs to';
COMMENT ON COLUMN settle.ledger.payment_id IS 'the payment the entry settles (NULL for a batch''s counter-entry or funding)';
COMMENT ON COLUMN settle.ledger.account_id IS 'account posted to';
COMMENT ON COLUMN settle.ledger.currency IS 'currency of the account';
COMMENT ON COLUMN settle.ledger.amount IS 'signed amount: + credit, - debit, major units';
COMMENT ON COLUMN settle.ledger.amount_minor IS 'signed amount, minor units';
COMMENT ON COLUMN settle.ledger.posted_at IS 'when it was posted';

COMMENT ON COLUMN settle.metrics.family IS 'queue, cycles, latency, outbox, worker, replication or backlog';
COMMENT ON COLUMN settle.metrics.metric IS 'Prometheus metric name';
COMMENT ON COLUMN settle.metrics.labels IS 'Prometheus labels';
COMMENT ON COLUMN settle.metrics.value IS 'sample value';

-- linked payments (84_links.sql)
COMMENT ON VIEW settle.link_groups IS
    'Groups of linked payments that settle all or nothing: the caller''s own (as a party), or every group for operators and auditors';
COMMENT ON COLUMN settle.link_groups.link_group IS 'the group''s name, chosen by its parties';
COMMENT ON COLUMN settle.link_groups.link_size IS 'how many payments the group has';
COMMENT ON COLUMN settle.link_groups.members IS 'how many have arrived';
COMMENT ON COLUMN settle.link_groups.status IS 'open (waiting for members), complete (eligible), settled, failed or expired';
COMMENT ON COLUMN settle.link_groups.reason IS 'why a group failed or expired';
COMMENT ON COLUMN settle.link_groups.opened_by IS 'payer of the first member: a party';
COMMENT ON COLUMN settle.link_groups.counterparty IS 'payee of the first member: the other party';
COMMENT ON COLUMN settle.link_groups.created_at IS 'when the group was opened';
COMMENT ON COLUMN settle.link_groups.updated_at IS 'last change';
