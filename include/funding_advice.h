/*
 * funding_advice.h -- liquidity prices recorded per cycle, and the funding
 * advice a participant asks for (issue #21, docs/ALGORITHM.md "Liquidity
 * prices and funding advice").
 */
#ifndef SETTLE_FUNDING_ADVICE_H
#define SETTLE_FUNDING_ADVICE_H

#include "cycle_state.h"

/* settle.liquidity_prices: record each cycle's prices (default on). */
extern bool settle_record_liquidity_prices;

extern void settle_funding_define_settings(void);

/*
 * Where the solver should put the prices of a cycle's n accounts, or NULL
 * when they are not recorded: switched off, or the database still has
 * settle 1.0's SQL (no settle.liquidity_price table; a catalog lookup per
 * cycle, nothing cached, so ALTER EXTENSION UPDATE takes effect at once).
 */
extern double *settle_liquidity_prices_prepare(int n_accounts);

/* One row per account whose price is positive, in settle.liquidity_price. */
extern void settle_liquidity_prices_record(const CycleState *cs, const double *price, double due_factor);

#endif							/* SETTLE_FUNDING_ADVICE_H */
