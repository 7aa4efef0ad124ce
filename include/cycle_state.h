/*
 * cycle_state.h -- the state one settlement cycle shares between its stages:
 * cycle*.c (load, ranges, model, record), posting.c (ledger) and baseline.c.
 */
#ifndef SETTLE_CYCLE_STATE_H
#define SETTLE_CYCLE_STATE_H

#include "postgres.h"
#include "portability/instr_time.h"
#include "utils/hsearch.h"
#include "utils/timestamp.h"

#include "solver.h"

typedef struct CycleCurrency
{
	char		code[4];
	int			exponent;
	double		to_reference;	/* one major unit in reference major units */
} CycleCurrency;

typedef struct CycleAccount
{
	char	   *account_id;
	char	   *participant_id;
	int			currency;		/* index into currencies */
	int64		balance;		/* minor units, locked for the cycle: posted - pending debits */
	int64		lower_limit;
	bool		active;
	int64		posted;			/* the balance column */
	int64		pending_debit;
	int64		pending_credit;
} CycleAccount;

typedef struct CyclePayment
{
	int64		payment_id;
	char	   *source_account;
	char	   *destination_account;
	char	   *source_participant;
	char	   *counterparty_id;
	int			source_ccy;		/* index into currencies */
	int			destination_ccy;
	int64		debit;			/* minor units of source_ccy */
	int64		credit;			/* minor units of destination_ccy, converted at mid */
	char	   *fx_rate;		/* mid rate applied (text numeric), NULL if same currency */
	double		spread_bps;
	int			priority;
	bool		deferrable;		/* deadline after the next cycle */
	double		age_ms;			/* how long it has been queued, at the cycle's start */
	double		value;			/* reference major units, for the objective and reports */
	int			src;			/* index into accounts */
	int			dst;
	int			wire_src;		/* index into wires */
	int			wire_dst;
	char	   *link_group;		/* linked payments (src/cycle_links.c): NULL if none */
	int			link_size;
} CyclePayment;

/* A wire: one participant's net position in one currency. */
typedef struct CycleWire
{
	char	   *participant_id;
	int			currency;
	int64		fee;			/* minor units of the currency */
	double		fee_value;		/* reference major units */
	/* filled by posting */
	int64		debit_total;
	int64		credit_total;
	int			legs;
	int64		batch_id;
} CycleWire;

typedef struct BaselineFigures
{
	int			settled;
	double		value;
	double		cost;
	int			wires;
} BaselineFigures;

/* The stages of a cycle whose time is measured (settle cycle's DEBUG1 line, test/bench/profile_cycle.sh). */
typedef enum CycleStage
{
	CYCLE_STAGE_LOCK,
	CYCLE_STAGE_EXPIRE,
	CYCLE_STAGE_LOAD,			/* currencies and the queue */
	CYCLE_STAGE_ACCOUNTS,		/* lock accounts, wires, ranges, cycle id */
	CYCLE_STAGE_SOLVE,
	CYCLE_STAGE_POST,
	CYCLE_STAGE_BASELINES,
	CYCLE_STAGE_RECORD,
	CYCLE_STAGE_NOTIFY,
	CYCLE_STAGE_OUTCOME,		/* the worker's figures (a bounded count under overload) */
	CYCLE_STAGES
} CycleStage;

typedef struct CycleState
{
	const char *run_by;
	const char *stage;			/* for the error context */
	TimestampTz started_at;
	instr_time	start_instr;
	int			cur_stage;		/* CycleStage being timed, -1 none */
	instr_time	stage_start;
	double		stage_ms[CYCLE_STAGES];
	int64		cycle_id;
	int64		journal_id;

	int			n_currencies;
	CycleCurrency *currencies;
	HTAB	   *currency_index;
	int			n_accounts;
	CycleAccount *accounts;
	HTAB	   *account_index;
	int			n_payments;
	CyclePayment *payments;
	int			n_wires;
	CycleWire  *wires;
	HTAB	   *wire_index;

	bool	   *selected;
	double	   *account_price;	/* issue #21: LP price per account, NULL if not recorded */
	SolverResult result;
	SolverStatus solver_status;

	int			held;			/* considered but left: an account frozen or closed, held, out of range */
	int			n_loaded;		/* queued payments taken (locked) by the cycle */
	int			n_newly_held;	/* of which held for an operator by this cycle */
	int			n_waiting;		/* left for lack of liquidity, a frozen account, a range or a rate */
	int64		oldest_waiting_id;	/* the oldest of those; 0: none */
	int64		n_skipped;		/* old payments of quiet payers not loaded (quiet.c) */
	int64		skipped_oldest; /* the oldest of them; 0: none */
	int			n_expired;
	int			n_settled;
	int			n_deferred;
	int			n_batches;
	int			n_wires_sent;	/* batches with a non-zero net: real wires */
	double		settled_value;
	double		fee_cost;
	double		fx_cost;
	BaselineFigures fifo;
	BaselineFigures naive;
	BaselineFigures fifo_netted;	/* FIFO's payments, netted: wires and cost only */
} CycleState;

/* Value of minor units of currency ci in reference major units. */
/* (cycle_load.c) */
extern double settle_reference_value(const CycleState *cs, int ci, int64 minor);

/* cycle_ranges.c: hold payments for an operator, with a reason and an event each. */
extern void settle_hold_payments(int64 *ids, char **reasons, int n);

/* posting.c: post the selection as one balanced journal; fills cost figures. */
extern void settle_post_selection(CycleState *cs);

/* baseline.c: FIFO gross settlement, FIFO netted and naive batching on the same queue. */
extern void settle_compute_baselines(CycleState *cs);

#endif							/* SETTLE_CYCLE_STATE_H */
