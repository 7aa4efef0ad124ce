/*
 * controls.h -- what a participant controls, in the cycle's model (issue
 * #33, docs/PARTICIPANT_CONTROLS.md): bilateral and multilateral limits,
 * liquidity reservations.
 *
 * Each control is a row of the model like an account's: a limit's row has
 * the headroom left today as its liquidity, is debited by the payer's
 * payments to the counterparties it covers and credited by theirs to it; a
 * reservation's row has the account's liquidity less the reserved amount,
 * is debited by the account's payments below the reservation's priority
 * and credited by every payment into the account.  The solver knows only
 * accounts and payments, so a payment touching control rows is given
 * "legs": extra payments of the model between its rows (or an unconstrained
 * companion account where it touches none on one side), linked with it as
 * one all-or-nothing group.  Every stage of the solver then honours the
 * controls: netting inside a row, maximality, gridlock resolution.
 */
#ifndef SETTLE_CONTROLS_H
#define SETTLE_CONTROLS_H

#include "cycle_state.h"
#include "solver.h"

/* The cycle's model with the controls' rows and legs added. */
typedef struct ControlModel
{
	int			n_accounts;		/* the cycle's accounts, then control rows and their companions */
	SolverAccount *accounts;
	int			n_payments;		/* the cycle's payments, then the legs */
	SolverPayment *payments;
	int			n_groups;
	int		   *group;			/* per model payment, or NULL when no group at all */
	int64	   *payment_id;		/* per model payment: the payment it belongs to */
	char	  **row_name;		/* per account beyond the cycle's: what the row is, for messages */
	int			n_limit_rows;
	int			n_reservation_rows;
} ControlModel;

/* Whether this database's SQL has participant controls (1.2 or later). */
extern bool settle_controls_installed(void);

/*
 * Adds the controls in force for the cycle's participants and accounts to
 * the model the cycle built (accounts, payments, groups as for
 * settle_links_groups, n_groups of them).  Reads the controls with SPI.
 * Without controls the model is returned as it was (legs none).
 */
extern void settle_controls_model(const CycleState *cs, const SolverAccount *accounts,
								  const SolverPayment *payments, const int *group, int n_groups,
								  ControlModel *m);

/*
 * After a cycle that changed something: raise or clear the participants'
 * early warnings (settle._check_alerts(): an event and a NOTIFY each).
 */
extern void settle_controls_check_alerts(void);

#endif							/* SETTLE_CONTROLS_H */
