/*
 * guard.h -- running settle's SQL safely whoever calls it.
 *
 * Every C path that runs SQL through SPI (the worker's rounds, the cycle,
 * intake, sealing) pins search_path to pg_catalog, pg_temp for its duration,
 * so that objects a caller or a database owner planted in public (or in a
 * schema named after the worker's role) can never shadow pg_catalog's
 * functions and operators.  docs/SECURITY.md, "search_path".
 */
#ifndef SETTLE_GUARD_H
#define SETTLE_GUARD_H

/* The search_path every settle statement runs with. */
#define SETTLE_SAFE_SEARCH_PATH "pg_catalog, pg_temp"

/* Pin search_path at a new GUC nest level; returns the level. */
extern int	settle_pin_search_path(void);
/* Undo settle_pin_search_path (an error undoes it by itself). */
extern void settle_unpin_search_path(int nest_level);

#endif							/* SETTLE_GUARD_H */
