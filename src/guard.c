/*
 * guard.c -- a pinned search_path around settle's own SQL.
 *
 * Used by every stage that runs SQL from C: the worker (cycle and seal),
 * settle_run_cycle, intake.  It works like the SET clause of a function:
 * a new GUC nest level, a value saved for it, and AtEOXact_GUC to restore
 * the caller's value; an error restores it through transaction abort.
 */
#include "postgres.h"

#include "utils/guc.h"

#include "guard.h"

/* Pin search_path at a new GUC nest level; returns the level. */
int
settle_pin_search_path(void)
{
	int			nest_level = NewGUCNestLevel();

	(void) set_config_option("search_path", SETTLE_SAFE_SEARCH_PATH,
							 PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	return nest_level;
}

/* Restore the search_path the caller had. */
void
settle_unpin_search_path(int nest_level)
{
	AtEOXact_GUC(true, nest_level);
}
