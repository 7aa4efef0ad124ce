/*
 * posting.h -- post a cycle's selection as one balanced journal (posting.c;
 * settle_post_selection itself is declared with the cycle's state in
 * cycle_state.h).
 */
#ifndef SETTLE_POSTING_H
#define SETTLE_POSTING_H

/* settle.two_phase: cycles reserve, and the rail's confirmations post. */
extern bool settle_two_phase;

/* Define settle.two_phase (from _PG_init). */
extern void settle_posting_define_settings(void);

#endif							/* SETTLE_POSTING_H */
