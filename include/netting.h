/*
 * netting.h -- what a set of a cycle's payments costs once netted.
 */
#ifndef SETTLE_NETTING_H
#define SETTLE_NETTING_H

#include "cycle_state.h"

/*
 * Fees and FX spread (reference currency) of settling the payments with
 * chosen[i] set, netted multilaterally as a cycle posts them: one wire per
 * participant and currency whose net is not zero (its fee once), the spread
 * on each currency pair's net value.  *wires gets the wire count if not NULL.
 */
extern double settle_netted_cost(const CycleState *cs, const bool *chosen, int *wires);

#endif							/* SETTLE_NETTING_H */
