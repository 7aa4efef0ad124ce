/*
 * baseline.c -- what the same queue would have cost without the optimiser.
 *
 * Every cycle measures its savings instead of asserting them, against three
 * baselines computed on exactly the payments the cycle considered:
 *
 *   FIFO gross settlement: payments in arrival order, each settled alone
 *     against the payer's current balance (credits received earlier count);
 *     one that does not fit is skipped and the next is tried (bypass FIFO,
 *     the fairer baseline: stopping at the first that does not fit settled
 *     4 of 1,000 on the benchmark's queue); each payment is its own wire
 *     (the payer's fee) and pays the FX spread on its whole value.
 *
 *   FIFO netted (netting only): the payments FIFO settled, netted
 *     multilaterally as the cycle nets its own selection (posting.c): one
 *     wire per participant and currency whose net is not zero, its fee once,
 *     and the FX spread on each currency pair's net converted value.  No
 *     optimisation: naive -> netting -> optimised shows what netting alone
 *     saves and what the optimiser adds beyond it.
 *
 *   Naive batching: the payments the optimiser settled, wired without
 *     netting: one pay-in wire per participant and currency with debits and
 *     one pay-out wire per participant and currency with credits, FX spread
 *     on the gross converted volume.
 */
#include "postgres.h"

#include "cycle_state.h"
#include "netting.h"

/*
 * The netting-only baseline: the payments in settled[] netted per wire and
 * per currency pair by netting.c, with posting's conventions, so that its
 * cost compares with the cycle's own.
 */
static void
compute_fifo_netted(CycleState *cs, const bool *settled)
{
	int			i;

	memset(&cs->fifo_netted, 0, sizeof(cs->fifo_netted));
	for (i = 0; i < cs->n_payments; i++)
		if (settled[i])
		{
			cs->fifo_netted.settled++;
			cs->fifo_netted.value += cs->payments[i].value;
		}
	cs->fifo_netted.cost = settle_netted_cost(cs, settled, &cs->fifo_netted.wires);
}

void
settle_compute_baselines(CycleState *cs)
{
	int64	   *available = palloc(sizeof(int64) * Max(cs->n_accounts, 1));
	bool	   *fifo_settled = palloc0(sizeof(bool) * Max(cs->n_payments, 1));
	bool	   *pays_in = palloc0(sizeof(bool) * Max(cs->n_wires, 1));
	bool	   *pays_out = palloc0(sizeof(bool) * Max(cs->n_wires, 1));
	int			i;

	memset(&cs->fifo, 0, sizeof(cs->fifo));
	memset(&cs->naive, 0, sizeof(cs->naive));

	for (i = 0; i < cs->n_accounts; i++)
		available[i] = cs->accounts[i].balance + cs->accounts[i].lower_limit;
	for (i = 0; i < cs->n_payments; i++)
	{
		CyclePayment *p = &cs->payments[i];

		if (available[p->src] < p->debit)
			continue;			/* skipped: the next may fit */
		available[p->src] -= p->debit;
		available[p->dst] += p->credit;
		fifo_settled[i] = true;
		cs->fifo.settled++;
		cs->fifo.wires++;
		cs->fifo.value += p->value;
		cs->fifo.cost += cs->wires[p->wire_src].fee_value;
		if (p->source_ccy != p->destination_ccy)
			cs->fifo.cost += p->value * p->spread_bps / 10000.0;
	}
	compute_fifo_netted(cs, fifo_settled);

	for (i = 0; i < cs->n_payments; i++)
	{
		CyclePayment *p = &cs->payments[i];

		if (!cs->selected || !cs->selected[i])
			continue;
		cs->naive.settled++;
		cs->naive.value += p->value;
		if (!pays_in[p->wire_src])
		{
			pays_in[p->wire_src] = true;
			cs->naive.wires++;
			cs->naive.cost += cs->wires[p->wire_src].fee_value;
		}
		if (!pays_out[p->wire_dst])
		{
			pays_out[p->wire_dst] = true;
			cs->naive.wires++;
			cs->naive.cost += cs->wires[p->wire_dst].fee_value;
		}
		if (p->source_ccy != p->destination_ccy)
			cs->naive.cost += p->value * p->spread_bps / 10000.0;
	}
}
