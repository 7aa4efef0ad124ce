/*
 * role_map.h -- keeping settle.participant_role in step with the roles.
 */
#ifndef SETTLE_ROLE_MAP_H
#define SETTLE_ROLE_MAP_H

#include "postgres.h"

/*
 * After a utility statement ran (hooks.c), with whether it was DROP ROLE:
 * the dropped roles' participant mappings are removed.
 */
extern void settle_role_map_after_utility(bool was_drop_role);

#endif							/* SETTLE_ROLE_MAP_H */
