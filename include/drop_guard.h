/*
 * drop_guard.h -- DROP EXTENSION settle keeps the ledger unless confirmed.
 */
#ifndef SETTLE_DROP_GUARD_H
#define SETTLE_DROP_GUARD_H

/* Define settle.allow_drop and install the utility hook (from _PG_init). */
extern void settle_drop_guard_init(void);

#endif							/* SETTLE_DROP_GUARD_H */
