/*
 * fence.h -- a restored copy does nothing to the outside world until released.
 */
#ifndef SETTLE_FENCE_H
#define SETTLE_FENCE_H

/* Define settle.fence (from _PG_init). */
extern void settle_fence_define_settings(void);
/* Whether this server (settle.fence) or database (a logical copy) is fenced; *why says why (a static string). */
extern bool settle_fenced(const char **why);
/* Raise SE153 if fenced: what names the refused action. */
extern void settle_check_fence(const char *what);

#endif							/* SETTLE_FENCE_H */
