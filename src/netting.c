/*
 * netting.c -- what a set of a cycle's payments costs once netted.
 *
 * The same rule as posting (src/posting.c: add_payment_legs and
 * add_counter_entries) on any subset of the cycle's payments, without
 * posting anything: the netting-only baseline costs FIFO's payments with it
 * (src/baseline.c), and each cycle the first half of its own batch, from
 * which the worker's pacing learns how much a bigger batch nets away
 * (src/pace.c).
 */
#include "postgres.h"

#include <math.h>

#include "common/int.h"
#include "miscadmin.h"

#include "netting.h"

double
settle_netted_cost(const CycleState *cs, const bool *chosen, int *wires)
{
	int64	   *debit = palloc0(sizeof(int64) * Max(cs->n_wires, 1));
	int64	   *credit = palloc0(sizeof(int64) * Max(cs->n_wires, 1));
	bool	   *used = palloc0(sizeof(bool) * Max(cs->n_wires, 1));
	bool	   *overflow = palloc0(sizeof(bool) * Max(cs->n_wires, 1));
	int			nc = cs->n_currencies;
	double	   *fx_net = palloc0(sizeof(double) * Max(nc * nc, 1));
	double	   *fx_spread = palloc0(sizeof(double) * Max(nc * nc, 1));
	double		cost = 0;
	int			n_wires = 0;
	int			i;

	for (i = 0; i < cs->n_payments; i++)
	{
		const CyclePayment *p = &cs->payments[i];

		if (!chosen[i])
			continue;
		CHECK_FOR_INTERRUPTS();
		used[p->wire_src] = used[p->wire_dst] = true;
		/* totals beyond bigint (posting would refuse them): the wire counts */
		if (pg_add_s64_overflow(debit[p->wire_src], p->debit, &debit[p->wire_src]))
			overflow[p->wire_src] = true;
		if (pg_add_s64_overflow(credit[p->wire_dst], p->credit, &credit[p->wire_dst]))
			overflow[p->wire_dst] = true;
		if (p->source_ccy != p->destination_ccy)
		{
			int			lo = Min(p->source_ccy, p->destination_ccy);
			int			hi = Max(p->source_ccy, p->destination_ccy);

			fx_net[lo * nc + hi] += p->source_ccy == lo ? p->value : -p->value;
			fx_spread[lo * nc + hi] = p->spread_bps / 10000.0;
		}
	}
	for (i = 0; i < cs->n_wires; i++)
	{
		if (!used[i] || (!overflow[i] && credit[i] == debit[i]))
			continue;			/* no legs, or fully offset: no wire, no fee */
		n_wires++;
		cost += cs->wires[i].fee_value;
	}
	for (i = 0; i < nc * nc; i++)
		cost += fabs(fx_net[i]) * fx_spread[i];
	pfree(debit);
	pfree(credit);
	pfree(used);
	pfree(overflow);
	pfree(fx_net);
	pfree(fx_spread);
	if (wires)
		*wires = n_wires;
	return cost;
}
