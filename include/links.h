/*
 * links.h -- linked payments that settle all or nothing (issue #16, item 10;
 * src/sql/84_links.sql, docs/SETTLEMENT_FLOW.md "Linked payments").
 */
#ifndef SETTLE_LINKS_H
#define SETTLE_LINKS_H

#include "cycle_state.h"
#include "solver.h"

/* How long a group may wait for its members (ms, 0 = forever): GUC settle.link_timeout. */
extern int	settle_link_timeout_ms;

/* Define the setting (from settle_cycle_define_settings). */
extern void settle_links_define_settings(void);

/* Whether this database's SQL has linked payments (1.1 or later). */
extern bool settle_links_installed(void);

/* Each cycle, after expiry: groups with an expired or failed member, or too old, end. */
extern void settle_links_housekeeping(void);

/* Before solving: members of groups not wholly in this cycle's queue wait. */
extern void settle_links_filter(CycleState *cs);

/*
 * For the solver (issue #27): each payment's group, 0 .. n - 1, or -1 into
 * group (cs->n_payments entries); returns n, the number of groups (0: none).
 */
extern int	settle_links_groups(const CycleState *cs, int *group);

#endif							/* SETTLE_LINKS_H */
