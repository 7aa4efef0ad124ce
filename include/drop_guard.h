/*
 * drop_guard.h -- DROP EXTENSION settle keeps the ledger unless confirmed.
 */
#ifndef SETTLE_DROP_GUARD_H
#define SETTLE_DROP_GUARD_H

#include "postgres.h"
#include "nodes/nodes.h"

/* Define settle.allow_drop (from _PG_init). */
extern void settle_drop_guard_define_settings(void);

/*
 * Before a utility statement runs (hooks.c): DROP EXTENSION settle is
 * refused while the ledger holds entries, unless settle.allow_drop.
 */
extern void settle_drop_guard_before_utility(Node *parsetree);

#endif							/* SETTLE_DROP_GUARD_H */
