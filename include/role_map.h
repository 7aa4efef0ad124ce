/*
 * role_map.h -- keeping settle.participant_role in step with the roles.
 */
#ifndef SETTLE_ROLE_MAP_H
#define SETTLE_ROLE_MAP_H

/* Install the DROP ROLE hook (from _PG_init). */
extern void settle_role_map_init(void);

#endif							/* SETTLE_ROLE_MAP_H */
