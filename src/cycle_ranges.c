/*
 * cycle_ranges.c -- what a cycle's int64 arithmetic cannot carry stays out of
 * it, and payments the cycle cannot handle are held for an operator.
 */
#include "postgres.h"

#include "executor/spi.h"

#include "cycle_int.h"
#include "cycle_state.h"
#include "quiet.h"
#include "spi_util.h"

/*
 * Hold payments the cycle cannot handle (or whose participant is suspended):
 * status 'held' with the reason, one 'held' event each.  They stay visible in
 * settle.transactions; settle_release_payment() queues them again,
 * settle_cancel_payment() ends them.  The rows are locked by this cycle.
 */
void
settle_hold_payments(int64 *ids, char **reasons, int n)
{
	SpiArgs		a = {0};

	settle_spi_arg_int8s(&a, ids, n);
	settle_spi_arg_texts(&a, reasons, n);
	if (settle_spi_execute(
							  "WITH h AS ("
							  " UPDATE settle.payment p SET status = 'held', hold_reason = u.reason,"
							  "        updated_at = pg_catalog.clock_timestamp()"
							  "   FROM (SELECT pg_catalog.unnest($1) AS id, pg_catalog.unnest($2) AS reason) u"
							  "  WHERE p.payment_id = u.id AND p.status = 'queued'"
							  " RETURNING p.payment_id, p.hold_reason, p.updated_at)"
							  "INSERT INTO settle.event (occurred_at, entity, entity_id, event_type, from_status, to_status, details)"
							  "SELECT h.updated_at, 'payment', h.payment_id::text, 'held', 'queued', 'held',"
							  "       pg_catalog.jsonb_build_object('reason', h.hold_reason)"
							  "  FROM h",
							  a.n, a.types, a.values, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "holding payments failed");
}

/*
 * Keep out of the cycle what its arithmetic cannot carry.  Every amount the
 * cycle writes is an int64 sum: an account's balance (and, two-phase, its
 * pending amounts) after the cycle, the solver's available + credits and
 * available - debits, a wire's debit and credit totals, the operator's
 * settlement account of each currency.  Payments are taken oldest first;
 * one that would take any of those sums out of range together with the ones
 * taken before it stays queued for a later cycle, so that an extreme payment
 * cannot stop every other one (the solver refuses a whole instance whose
 * sums could overflow).  A payment that does not fit even alone can never
 * settle: it is held, with the reason and an event, for an operator.
 */
void
settle_cycle_hold_out_of_range(CycleState *cs)
{
	int128	   *acc_in = palloc0(sizeof(int128) * Max(cs->n_accounts, 1));
	int128	   *acc_out = palloc0(sizeof(int128) * Max(cs->n_accounts, 1));
	int128	   *wire_debit = palloc0(sizeof(int128) * Max(cs->n_wires, 1));
	int128	   *wire_credit = palloc0(sizeof(int128) * Max(cs->n_wires, 1));
	int128	   *ccy_in = palloc0(sizeof(int128) * Max(cs->n_currencies, 1));
	int128	   *ccy_out = palloc0(sizeof(int128) * Max(cs->n_currencies, 1));
	int128	   *ccy_balance = palloc0(sizeof(int128) * Max(cs->n_currencies, 1));
	int64	   *hold_ids = palloc(sizeof(int64) * Max(cs->n_payments, 1));
	char	  **hold_reasons = palloc(sizeof(char *) * Max(cs->n_payments, 1));
	int			n_hold = 0;
	int			kept = 0;
	int			i;
	uint64		r;
	const int128 max = PG_INT64_MAX;
	const int128 min = PG_INT64_MIN;

	if (settle_spi_execute("SELECT currency, balance FROM settle.account WHERE kind = 'settlement'", 0, NULL, NULL, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "reading the settlement accounts failed");
	for (r = 0; r < SPI_processed; r++)
	{
		bool		isnull;
		const char *code = SPI_getvalue(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1);
		int			c;

		/* a few currencies: a scan, not cycle_load.c's index (no call back) */
		for (c = 0; c < cs->n_currencies; c++)
			if (strcmp(cs->currencies[c].code, code) == 0)
				break;
		if (c < cs->n_currencies)
			ccy_balance[c] = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 2, &isnull));
	}

	for (i = 0; i < cs->n_payments; i++)
	{
		CyclePayment *p = &cs->payments[i];
		int			pass;
		const char *why = NULL;

		/* pass 0: with what is already taken; pass 1: alone */
		for (pass = 0; pass < 2; pass++)
		{
			CycleAccount *src = &cs->accounts[p->src];
			CycleAccount *dst = &cs->accounts[p->dst];
			int128		out = (pass == 0 ? acc_out[p->src] : 0) + p->debit;
			int128		in = (pass == 0 ? acc_in[p->dst] : 0) + p->credit;
			int128		s_avail = (int128) src->balance + src->lower_limit;
			int128		d_avail = (int128) dst->balance + dst->lower_limit;
			int128		wd = (pass == 0 ? wire_debit[p->wire_src] : 0) + p->debit;
			int128		wc = (pass == 0 ? wire_credit[p->wire_dst] : 0) + p->credit;
			int128		ci = (pass == 0 ? ccy_in[p->source_ccy] : 0) + p->debit;
			int128		co = (pass == 0 ? ccy_out[p->destination_ccy] : 0) + p->credit;

			why = NULL;
			if (s_avail - out < min || (int128) src->posted - out < min ||
				(int128) src->pending_debit + out > max)
				why = psprintf("its debit would take account %s beyond the range of a balance", src->account_id);
			else if (d_avail + in > max || (int128) dst->posted + in > max ||
					 (int128) dst->pending_credit + in > max)
				why = psprintf("its credit would take account %s beyond the range of a balance", dst->account_id);
			else if (wd > max || wc > max)
				why = pstrdup("a wire total would be beyond the range of an amount");
			else if (ccy_balance[p->source_ccy] + ci > max ||
					 ccy_balance[p->destination_ccy] - co < min)
				why = pstrdup("the operator's settlement account would be beyond the range of a balance");
			if (why == NULL)
				break;
		}
		if (why == NULL && pass == 0)
		{
			acc_out[p->src] += p->debit;
			acc_in[p->dst] += p->credit;
			wire_debit[p->wire_src] += p->debit;
			wire_credit[p->wire_dst] += p->credit;
			ccy_in[p->source_ccy] += p->debit;
			ccy_out[p->destination_ccy] += p->credit;
			cs->payments[kept++] = *p;
			continue;
		}
		cs->held++;				/* considered, left unsettled */
		if (why == NULL)
		{
			note_waiting(cs, p->payment_id);	/* fits alone: a later cycle */
			settle_quiet_noisy(p->source_account);
		}
		else
		{
			/* it does not fit even alone: it never will */
			hold_ids[n_hold] = p->payment_id;
			hold_reasons[n_hold++] = (char *) why;
		}
	}
	cs->n_payments = kept;
	cs->n_newly_held += n_hold;
	if (n_hold > 0)
		settle_hold_payments(hold_ids, hold_reasons, n_hold);
}
