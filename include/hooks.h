/*
 * hooks.h -- the one place that installs settle's hooks (src/hooks.c).
 */
#ifndef SETTLE_HOOKS_H
#define SETTLE_HOOKS_H

#include "postgres.h"

/*
 * From _PG_init, after the settings are defined: the utility hook and the
 * relcache callback; while preloading (preloaded) also the shared-memory
 * hooks and the launcher's part of the utility hook.
 */
extern void settle_hooks_install(bool preloaded);

#endif							/* SETTLE_HOOKS_H */
