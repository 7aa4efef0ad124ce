/*
 * posting.c -- post a cycle's selection as one balanced double-entry journal.
 *
 * Third stage of the pipeline (cycle -> settle -> ledger).  Every settled
 * payment gives two entries: a debit on the payer's account (in the source
 * currency) and a credit on the payee's account (in the destination currency,
 * converted at the mid rate).  Entries are grouped into batches, one per
 * participant and currency: the batch is that participant's wire, and its
 * net position is booked against the operator's settlement account of the
 * currency, so every batch sums to zero and so does the journal, per
 * currency.  The settlement accounts' balances are the operator's FX
 * position, squared by converting externally the net of each currency pair.
 *
 * With settle.two_phase on, the same legs are written to settle.reservation
 * instead, and each account's net in the cycle counts in its pending amounts
 * (a net debit against its limit, as the solver judged it); the rail's
 * confirmations post them later (src/sql/80_rail.sql).
 *
 * build_legs computes the entries once; post_direct and post_two_phase
 * write them.  Everything is written with a handful of set-based statements
 * (unnest of arrays), whatever the number of payments.  This file owns
 * settle.two_phase (settle_posting_define_settings).
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "common/int.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"

#include "cycle_state.h"
#include "posting.h"
#include "settle_errors.h"
#include "spi_util.h"

/*
 * The entries' arrays as rows.  Set-returning functions in a target list run
 * in step without materializing; FROM unnest($2, ..., $6) would store every
 * array's rows first (several times slower for 100,000 payments).
 */
#define ENTRY_ROWS \
	"(SELECT unnest($2) b, unnest($3) p, unnest($4) a, unnest($5) c, unnest($6) m) u"

/* settle.two_phase */
bool		settle_two_phase = false;

/* A cycle's entries (ledger entries or reservations) and what they add up to. */
typedef struct PostingLegs
{
	int			n;				/* entries */
	int64	   *batch;
	int64	   *payment;		/* 0: a batch's counter-entry */
	char	  **account;
	char	  **currency;
	int64	   *amount;
	int64	   *delta;			/* per account, then per settlement account (currency) */
	int			n_settled;
	int64	   *settled_ids;
	int64	   *settled_credit;
	char	  **settled_rate;
	char	  **settlement_ccy; /* currencies whose settlement account gets an entry */
	int			n_settlement_ccy;
	bool		any_pay_in;		/* some batch pays in */
} PostingLegs;

static void add_delta(int64 *balance_delta, int index, int64 amount, const char *account);
static void allocate_batches(CycleState *cs);
static void add_leg(PostingLegs *legs, int64 batch, int64 payment, char *account,
					char *currency, int64 amount);
static void add_payment_legs(CycleState *cs, PostingLegs *legs);
static void add_counter_entries(CycleState *cs, PostingLegs *legs);
static void build_legs(CycleState *cs, PostingLegs *legs);
static void create_journal(CycleState *cs);
static void create_settlement_accounts(const PostingLegs *legs);
static void write_batches(CycleState *cs, bool two_phase);
static void write_entries(CycleState *cs, const PostingLegs *legs, bool two_phase);
static void reserve_funds(CycleState *cs, const PostingLegs *legs);
static void update_balances(CycleState *cs, const PostingLegs *legs);
static void settle_payments(CycleState *cs, const PostingLegs *legs, bool two_phase);
static void post_cycle(CycleState *cs);
static void post_direct(CycleState *cs);
static void post_two_phase(CycleState *cs);

/* Define settle.two_phase (from _PG_init). */
void
settle_posting_define_settings(void)
{
	DefineCustomBoolVariable("settle.two_phase",
							 "Cycles reserve, and the rail's confirmations post (see docs/SETTLEMENT_FLOW.md).",
							 "Off: cycles post at once.",
							 &settle_two_phase, false,
							 PGC_SUSET, 0, NULL, NULL, NULL);
}

/* Add to an account's delta, refusing an overflow. */
static void
add_delta(int64 *balance_delta, int index, int64 amount, const char *account)
{
	if (pg_add_s64_overflow(balance_delta[index], amount, &balance_delta[index]))
		ereport(ERROR,
				(errcode(ERRCODE_SETTLE_BALANCE_OVERFLOW),
				 errmsg("balance change of account \"%s\" is out of range", account),
				 errhint("Nothing was posted.")));
}

/* Totals per wire, and a batch id for each wire that has legs. */
static void
allocate_batches(CycleState *cs)
{
	int			i;
	uint64		r;

	for (i = 0; i < cs->n_payments; i++)
	{
		CyclePayment *p = &cs->payments[i];
		CycleWire  *ws = &cs->wires[p->wire_src];
		CycleWire  *wd = &cs->wires[p->wire_dst];

		if (!cs->selected[i])
			continue;
		if (pg_add_s64_overflow(ws->debit_total, p->debit, &ws->debit_total) ||
			pg_add_s64_overflow(wd->credit_total, p->credit, &wd->credit_total))
			ereport(ERROR,
					(errcode(ERRCODE_SETTLE_BALANCE_OVERFLOW),
					 errmsg("batch total is out of range"),
					 errhint("Lower settle.max_cycle_payments.")));
		ws->legs++;
		wd->legs++;
	}
	cs->n_batches = 0;
	for (i = 0; i < cs->n_wires; i++)
		if (cs->wires[i].legs > 0)
			cs->n_batches++;

	{
		Oid			types[1] = {INT4OID};
		Datum		values[1] = {Int32GetDatum(cs->n_batches)};

		if (settle_spi_execute("SELECT pg_catalog.nextval('settle.batch_id_seq'::pg_catalog.regclass)"
								 " FROM pg_catalog.generate_series(1, $1)",
								 1, types, values, NULL, false, 0) != SPI_OK_SELECT ||
			SPI_processed != (uint64) cs->n_batches)
			elog(ERROR, "could not allocate batch ids");
	}
	r = 0;
	for (i = 0; i < cs->n_wires; i++)
	{
		bool		isnull;

		if (cs->wires[i].legs == 0)
			continue;
		cs->wires[i].batch_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[r],
															SPI_tuptable->tupdesc, 1, &isnull));
		r++;
	}
}

/* Append one entry. */
static void
add_leg(PostingLegs *legs, int64 batch, int64 payment, char *account, char *currency,
		int64 amount)
{
	legs->batch[legs->n] = batch;
	legs->payment[legs->n] = payment;
	legs->account[legs->n] = account;
	legs->currency[legs->n] = currency;
	legs->amount[legs->n++] = amount;
}

/*
 * Two legs per settled payment: the debit on the payer's wire, the credit
 * on the payee's; and the cycle's FX cost, the spread on each pair's net.
 */
static void
add_payment_legs(CycleState *cs, PostingLegs *legs)
{
	double	   *fx_net = palloc0(sizeof(double) * cs->n_currencies * cs->n_currencies);
	double	   *fx_spread = palloc0(sizeof(double) * cs->n_currencies * cs->n_currencies);
	int			i;

	for (i = 0; i < cs->n_payments; i++)
	{
		CyclePayment *p = &cs->payments[i];

		if (!cs->selected[i])
			continue;
		CHECK_FOR_INTERRUPTS();
		add_leg(legs, cs->wires[p->wire_src].batch_id, p->payment_id, p->source_account,
				cs->currencies[p->source_ccy].code, -p->debit);
		add_leg(legs, cs->wires[p->wire_dst].batch_id, p->payment_id, p->destination_account,
				cs->currencies[p->destination_ccy].code, p->credit);
		add_delta(legs->delta, p->src, -p->debit, p->source_account);
		add_delta(legs->delta, p->dst, p->credit, p->destination_account);

		legs->settled_ids[legs->n_settled] = p->payment_id;
		legs->settled_credit[legs->n_settled] = p->credit;
		legs->settled_rate[legs->n_settled++] = p->fx_rate;

		if (p->source_ccy != p->destination_ccy)
		{
			int			lo = Min(p->source_ccy, p->destination_ccy);
			int			hi = Max(p->source_ccy, p->destination_ccy);
			int			k = lo * cs->n_currencies + hi;

			fx_net[k] += p->source_ccy == lo ? p->value : -p->value;
			fx_spread[k] = p->spread_bps / 10000.0;
		}
	}
	cs->fx_cost = 0;
	for (i = 0; i < cs->n_currencies * cs->n_currencies; i++)
		cs->fx_cost += fabs(fx_net[i]) * fx_spread[i];
}

/*
 * One counter-entry per batch with a net position, on the operator's
 * settlement account of its currency: the wire, and its fee.
 */
static void
add_counter_entries(CycleState *cs, PostingLegs *legs)
{
	bool	   *ccy_used = palloc0(sizeof(bool) * cs->n_currencies);
	int			i;

	cs->fee_cost = 0;
	cs->n_wires_sent = 0;
	for (i = 0; i < cs->n_wires; i++)
	{
		CycleWire  *w = &cs->wires[i];
		int64		net;

		if (w->legs == 0)
			continue;
		net = w->credit_total - w->debit_total;
		if (net == 0)
			continue;			/* fully offset: no wire, no fee */
		if (net < 0)
			legs->any_pay_in = true;
		cs->n_wires_sent++;
		cs->fee_cost += w->fee_value;
		add_leg(legs, w->batch_id, 0, psprintf("_settlement.%s", cs->currencies[w->currency].code),
				cs->currencies[w->currency].code, -net);
		add_delta(legs->delta, cs->n_accounts + w->currency, -net, legs->account[legs->n - 1]);
		if (!ccy_used[w->currency])
		{
			ccy_used[w->currency] = true;
			legs->settlement_ccy[legs->n_settlement_ccy++] = cs->currencies[w->currency].code;
		}
	}
}

/* Every entry of the selection (batch ids allocated), the deltas, fee and FX cost. */
static void
build_legs(CycleState *cs, PostingLegs *legs)
{
	int			max_entries = 2 * cs->n_settled + cs->n_wires;

	memset(legs, 0, sizeof(*legs));
	legs->batch = palloc(sizeof(int64) * max_entries);
	legs->payment = palloc(sizeof(int64) * max_entries);
	legs->account = palloc(sizeof(char *) * max_entries);
	legs->currency = palloc(sizeof(char *) * max_entries);
	legs->amount = palloc(sizeof(int64) * max_entries);
	legs->delta = palloc0(sizeof(int64) * (cs->n_accounts + cs->n_currencies));
	legs->settled_ids = palloc(sizeof(int64) * cs->n_settled);
	legs->settled_credit = palloc(sizeof(int64) * cs->n_settled);
	legs->settled_rate = palloc(sizeof(char *) * cs->n_settled);
	legs->settlement_ccy = palloc(sizeof(char *) * cs->n_currencies);
	add_payment_legs(cs, legs);
	add_counter_entries(cs, legs);
}

/* The settlement journal (direct posting; two-phase writes it when the rail has confirmed). */
static void
create_journal(CycleState *cs)
{
	SpiArgs		a = {0};
	bool		isnull;

	settle_spi_arg(&a, INT8OID, Int64GetDatum(cs->cycle_id));
	if (settle_spi_execute("INSERT INTO settle.journal (kind, cycle_id) VALUES ('settlement', $1)"
							  " RETURNING journal_id", a.n, a.types, a.values, NULL, false, 1) != SPI_OK_INSERT_RETURNING)
		elog(ERROR, "could not create the settlement journal");
	cs->journal_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

/* The operator's settlement accounts, created on first use. */
static void
create_settlement_accounts(const PostingLegs *legs)
{
	SpiArgs		a = {0};

	if (legs->n_settlement_ccy == 0)
		return;
	settle_spi_arg_texts(&a, legs->settlement_ccy, legs->n_settlement_ccy);
	if (settle_spi_execute("SELECT settle._operator_account('settlement', c) FROM unnest($1) c",
							  a.n, a.types, a.values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not create settlement accounts");
}

/*
 * The batches, one per wire with legs, and an event each.  Two-phase:
 * pay-ins go to the rail now, pay-outs wait for them.  Direct: the batch's
 * counter-entry is posted now, and its event carries it, so that replay can
 * rebuild balances from events alone.
 */
static void
write_batches(CycleState *cs, bool two_phase)
{
	int64	   *b_id = palloc(sizeof(int64) * cs->n_batches);
	char	  **b_participant = palloc(sizeof(char *) * cs->n_batches);
	char	  **b_currency = palloc(sizeof(char *) * cs->n_batches);
	int64	   *b_debit = palloc(sizeof(int64) * cs->n_batches);
	int64	   *b_credit = palloc(sizeof(int64) * cs->n_batches);
	int64	   *b_legs = palloc(sizeof(int64) * cs->n_batches);
	int64	   *b_fee = palloc(sizeof(int64) * cs->n_batches);
	int			nb = 0;
	SpiArgs		a = {0};
	int			i;

	for (i = 0; i < cs->n_wires; i++)
	{
		CycleWire  *w = &cs->wires[i];

		if (w->legs == 0)
			continue;
		b_id[nb] = w->batch_id;
		b_participant[nb] = w->participant_id;
		b_currency[nb] = cs->currencies[w->currency].code;
		b_debit[nb] = w->debit_total;
		b_credit[nb] = w->credit_total;
		b_legs[nb] = w->legs;
		b_fee[nb] = w->credit_total != w->debit_total ? w->fee : 0;
		nb++;
	}
	settle_spi_arg(&a, INT8OID, Int64GetDatum(cs->cycle_id));
	settle_spi_arg_int8s(&a, b_id, nb);
	settle_spi_arg_texts(&a, b_participant, nb);
	settle_spi_arg_texts(&a, b_currency, nb);
	settle_spi_arg_int8s(&a, b_debit, nb);
	settle_spi_arg_int8s(&a, b_credit, nb);
	settle_spi_arg_int8s(&a, b_legs, nb);
	settle_spi_arg_int8s(&a, b_fee, nb);
	settle_spi_arg(&a, BOOLOID, BoolGetDatum(two_phase));
	settle_spi_arg(&a, INT8OID, Int64GetDatum(two_phase ? 0 : cs->journal_id));

	if (settle_spi_execute(
							  "WITH b AS ("
							  " INSERT INTO settle.batch (batch_id, cycle_id, participant_id, currency,"
							  "   debit_total, credit_total, net_amount, payment_legs, fee,"
							  "   direction, status, next_attempt_at)"
							  " SELECT u.id, $1, u.p, u.c, u.d, u.cr, u.cr - u.d, u.l, u.f,"
							  "        CASE WHEN u.cr < u.d THEN 'pay_in' WHEN u.cr > u.d THEN 'pay_out' ELSE 'none' END,"
							  "        CASE WHEN NOT $9 THEN 'settled' WHEN u.cr < u.d THEN 'pending'"
							  "             WHEN u.cr > u.d THEN 'reserved' ELSE 'confirmed' END,"
							  "        CASE WHEN $9 AND u.cr < u.d THEN clock_timestamp() END"
							  "   FROM (SELECT unnest($2) id, unnest($3) p, unnest($4) c, unnest($5) d, unnest($6) cr,"
							  "                unnest($7) l, unnest($8) f) u"
							  " RETURNING batch_id, participant_id, currency, net_amount, fee, status, direction)"
							  "INSERT INTO settle.event (entity, entity_id, event_type, to_status, details)"
							  "SELECT 'batch', batch_id::text, status, status,"
							  "       jsonb_build_object('cycle_id', $1, 'currency', currency, 'net_amount', net_amount,"
							  "                          'fee', fee, 'direction', direction, 'participant_id', participant_id)"
							  "       || CASE WHEN NOT $9 AND net_amount <> 0 THEN jsonb_build_object("
							  "            'journal_id', $10, 'postings', jsonb_build_array(jsonb_build_object("
							  "              'account', '_settlement.' || currency, 'currency', currency,"
							  "              'amount', -net_amount))) ELSE '{}'::jsonb END"
							  "  FROM b",
							  a.n, a.types, a.values, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not write the batches");
}

/* The entries: ledger entries of the journal, or (two-phase) reservations keyed by cycle. */
static void
write_entries(CycleState *cs, const PostingLegs *legs, bool two_phase)
{
	SpiArgs		args = {0};

	settle_spi_arg(&args, INT8OID, Int64GetDatum(two_phase ? cs->cycle_id : cs->journal_id));
	settle_spi_arg_int8s(&args, legs->batch, legs->n);
	settle_spi_arg_int8s(&args, legs->payment, legs->n);
	settle_spi_arg_texts(&args, legs->account, legs->n);
	settle_spi_arg_texts(&args, legs->currency, legs->n);
	settle_spi_arg_int8s(&args, legs->amount, legs->n);
	if (settle_spi_execute(two_phase
							  ? "INSERT INTO settle.reservation (cycle_id, batch_id, payment_id, account_id, currency, amount)"
							  " SELECT $1, u.b, nullif(u.p, 0), u.a, u.c, u.m FROM " ENTRY_ROWS
							  : "INSERT INTO settle.ledger_entry (journal_id, batch_id, payment_id, account_id, currency, amount)"
							  " SELECT $1, u.b, nullif(u.p, 0), u.a, u.c, u.m FROM " ENTRY_ROWS,
							  args.n, args.types, args.values, NULL, false, 0) != SPI_OK_INSERT ||
		SPI_processed != (uint64) legs->n)
		elog(ERROR, "could not write the %s", two_phase ? "reservations" : "ledger entries");
}

/*
 * Two-phase: the customer accounts' pending amounts instead of balances.
 * What an account reserves is its net in the cycle, the quantity the
 * solver held within its limit: the cycle posts or voids as one, so its
 * own credits offset its debits (a ring reserves nothing).  _post_cycle
 * and _void_cycle release the same nets.
 */
static void
reserve_funds(CycleState *cs, const PostingLegs *legs)
{
	char	  **ids = palloc(sizeof(char *) * (cs->n_accounts + 1));
	int64	   *debits = palloc(sizeof(int64) * (cs->n_accounts + 1));
	int64	   *credits = palloc(sizeof(int64) * (cs->n_accounts + 1));
	const int64 *delta = legs->delta;
	int			nd = 0;
	SpiArgs		args = {0};
	int			i;

	for (i = 0; i < cs->n_accounts; i++)
	{
		if (delta[i] == 0)
			continue;
		ids[nd] = cs->accounts[i].account_id;
		debits[nd] = delta[i] < 0 ? -delta[i] : 0;
		credits[nd++] = delta[i] > 0 ? delta[i] : 0;
	}
	settle_spi_arg_texts(&args, ids, nd);
	settle_spi_arg_int8s(&args, debits, nd);
	settle_spi_arg_int8s(&args, credits, nd);
	if (settle_spi_execute(
							  "UPDATE settle.account a SET pending_debit = a.pending_debit + d.dr,"
							  "       pending_credit = a.pending_credit + d.cr, updated_at = clock_timestamp()"
							  "  FROM (SELECT unnest($1) id, unnest($2) dr, unnest($3) cr) d WHERE a.account_id = d.id",
							  args.n, args.types, args.values, NULL, false, 0) != SPI_OK_UPDATE ||
		SPI_processed != (uint64) nd)
		elog(ERROR, "could not reserve funds");
}

/* Direct: the balances of every customer account touched, and of the settlement accounts. */
static void
update_balances(CycleState *cs, const PostingLegs *legs)
{
	char	  **ids = palloc(sizeof(char *) * (cs->n_accounts + cs->n_currencies));
	int64	   *amounts = palloc(sizeof(int64) * (cs->n_accounts + cs->n_currencies));
	const int64 *delta = legs->delta;
	int			nd = 0;
	SpiArgs		args = {0};
	int			i;

	for (i = 0; i < cs->n_accounts + cs->n_currencies; i++)
	{
		if (delta[i] == 0)
			continue;
		ids[nd] = i < cs->n_accounts ? cs->accounts[i].account_id
			: psprintf("_settlement.%s", cs->currencies[i - cs->n_accounts].code);
		amounts[nd++] = delta[i];
	}
	settle_spi_arg_texts(&args, ids, nd);
	settle_spi_arg_int8s(&args, amounts, nd);
	if (settle_spi_execute(
							  "UPDATE settle.account a SET balance = a.balance + d.delta, updated_at = clock_timestamp()"
							  "  FROM (SELECT unnest($1) id, unnest($2) delta) d WHERE a.account_id = d.id",
							  args.n, args.types, args.values, NULL, false, 0) != SPI_OK_UPDATE ||
		SPI_processed != (uint64) nd)
		elog(ERROR, "could not update balances");
}

/* The payments, settled (or reserved), and their events. */
static void
settle_payments(CycleState *cs, const PostingLegs *legs, bool two_phase)
{
	SpiArgs		args = {0};

	settle_spi_arg(&args, INT8OID, Int64GetDatum(cs->cycle_id));
	settle_spi_arg_int8s(&args, legs->settled_ids, legs->n_settled);
	settle_spi_arg_int8s(&args, legs->settled_credit, legs->n_settled);
	settle_spi_arg_texts(&args, legs->settled_rate, legs->n_settled);
	settle_spi_arg(&args, INT8OID, Int64GetDatum(cs->journal_id));
	settle_spi_arg(&args, BOOLOID, BoolGetDatum(two_phase));
	if (settle_spi_execute(
							  "WITH s AS ("
							  " UPDATE settle.payment p SET status = CASE WHEN $6 THEN 'reserved' ELSE 'settled' END,"
							  "        settled_at = CASE WHEN $6 THEN NULL ELSE clock_timestamp() END,"
							  "        updated_at = clock_timestamp(), cycle_id = $1,"
							  "        destination_amount = u.credit, fx_rate = u.rate::numeric"
							  "   FROM (SELECT unnest($2) id, unnest($3) credit, unnest($4) rate) u"
							  "  WHERE p.payment_id = u.id AND p.status = 'queued'"
							  " RETURNING p.payment_id, p.status, p.updated_at, p.source_account, p.source_currency,"
							  "   p.amount, p.destination_account, p.destination_currency, p.destination_amount)"
							  "INSERT INTO settle.event (occurred_at, entity, entity_id, event_type, from_status, to_status, details)"
							  "SELECT s.updated_at, 'payment', s.payment_id::text, s.status, 'queued', s.status,"
							  "       jsonb_build_object('cycle_id', $1,"
							  "         CASE WHEN $6 THEN 'reservations' ELSE 'postings' END,"
							  "         settle._payment_postings(s.source_account, s.source_currency, s.amount,"
							  "           s.destination_account, s.destination_currency, s.destination_amount))"
							  "       || CASE WHEN $6 THEN '{}'::jsonb ELSE jsonb_build_object('journal_id', $5) END"
							  "  FROM s",
							  args.n, args.types, args.values, NULL, false, 0) != SPI_OK_INSERT ||
		SPI_processed != (uint64) legs->n_settled)
		elog(ERROR, "settling payments failed: %d chosen, " UINT64_FORMAT " updated",
			 legs->n_settled, SPI_processed);
}

/* Two-phase with nothing to pay in (all offset): nothing to wait for, post now. */
static void
post_cycle(CycleState *cs)
{
	SpiArgs		args = {0};
	bool		isnull;

	settle_spi_arg(&args, INT8OID, Int64GetDatum(cs->cycle_id));
	if (settle_spi_execute("SELECT settle._post_cycle($1)", args.n, args.types, args.values,
							  NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not post the cycle");
	cs->journal_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

/* Direct: one journal, the batches settled, the balances moved. */
static void
post_direct(CycleState *cs)
{
	PostingLegs legs;

	create_journal(cs);
	build_legs(cs, &legs);
	create_settlement_accounts(&legs);
	write_batches(cs, false);
	write_entries(cs, &legs, false);
	update_balances(cs, &legs);
	settle_payments(cs, &legs, false);
}

/* Two-phase: reservations and pending amounts; the rail's confirmations post. */
static void
post_two_phase(CycleState *cs)
{
	PostingLegs legs;

	build_legs(cs, &legs);
	create_settlement_accounts(&legs);
	write_batches(cs, true);
	write_entries(cs, &legs, true);
	reserve_funds(cs, &legs);
	settle_payments(cs, &legs, true);
	if (!legs.any_pay_in)
		post_cycle(cs);
}

/* Post (or, with settle.two_phase, reserve) the selection; see the header comment. */
void
settle_post_selection(CycleState *cs)
{
	allocate_batches(cs);
	if (settle_two_phase)
		post_two_phase(cs);
	else
		post_direct(cs);
}
