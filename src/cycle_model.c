/*
 * cycle_model.c -- the model of solver.h built from a cycle's data
 * (accounts, payments, wires, FX pairs, linked groups, a participant's
 * controls) and solved (cycle.c's stage 3).
 */
#include "postgres.h"

#include <math.h>

#include "miscadmin.h"

#include "controls.h"
#include "cycle.h"
#include "cycle_int.h"
#include "cycle_state.h"
#include "deep.h"
#include "funding_advice.h"
#include "links.h"
#include "settle_errors.h"
#include "solver.h"

/* Interrupt check for the solver: it unwinds cleanly, we then raise. */
static bool
solver_interrupted(void *arg)
{
	return InterruptPending;
}

/* GLPK's and the solver's diagnostics go to the server log at DEBUG1. */
static void
solver_log(void *arg, const char *msg)
{
	elog(DEBUG1, "settle solver: %s", msg);
}

/* Build the model of solver.h from the cycle's data and solve it. */
void
settle_cycle_build_and_solve(CycleState *cs)
{
	SolverProblem problem;
	SolverAccount *accounts = palloc0(sizeof(SolverAccount) * Max(cs->n_accounts, 1));
	SolverPayment *payments = palloc0(sizeof(SolverPayment) * Max(cs->n_payments, 1));
	double	   *wire_fee = palloc0(sizeof(double) * Max(cs->n_wires, 1));
	double	   *fx_spread = palloc0(sizeof(double) * Max(cs->n_currencies * cs->n_currencies, 1));
	int		   *fx_pair_of = palloc(sizeof(int) * Max(cs->n_currencies * cs->n_currencies, 1));
	int			n_fx = 0;
	int		   *group;
	int			n_groups;
	ControlModel ctl;
	int			i;
	SolverStatus status;

	for (i = 0; i < cs->n_currencies * cs->n_currencies; i++)
		fx_pair_of[i] = -1;
	for (i = 0; i < cs->n_accounts; i++)
	{
		CycleAccount *a = &cs->accounts[i];

		/* int64 cannot overflow: balances and limits are bounded by the schema */
		accounts[i].available = a->balance + a->lower_limit;
		accounts[i].constrained = true;
	}
	for (i = 0; i < cs->n_wires; i++)
		wire_fee[i] = cs->wires[i].fee_value;

	for (i = 0; i < cs->n_payments; i++)
	{
		CyclePayment *p = &cs->payments[i];
		SolverPayment *s = &payments[i];
		/* priority weight, growing with age: old payments do not starve (settle.priority_aging) */
		double		weight = p->priority / 5.0 *
			(settle_priority_aging_ms > 0 ? 1.0 + p->age_ms / settle_priority_aging_ms : 1.0);

		s->src = p->src;
		s->dst = p->dst;
		s->debit = p->debit;
		s->credit = p->credit;
		s->wire_src = p->wire_src;
		s->wire_dst = p->wire_dst;
		s->fx_pair = -1;
		s->fx_value = 0;
		if (p->source_ccy != p->destination_ccy)
		{
			int			lo = Min(p->source_ccy, p->destination_ccy);
			int			hi = Max(p->source_ccy, p->destination_ccy);
			int			key = lo * cs->n_currencies + hi;

			if (fx_pair_of[key] < 0)
			{
				fx_pair_of[key] = n_fx;
				fx_spread[n_fx] = p->spread_bps / 10000.0;
				n_fx++;
			}
			s->fx_pair = fx_pair_of[key];
			s->fx_value = p->source_ccy == lo ? p->value : -p->value;
		}

		/*
		 * Due payments: priority-weighted value, scaled to dominate, plus the
		 * most this payment can add to the cost, so settling a due payment is
		 * always worth it when liquidity allows.  Deferrable payments: the
		 * cost of waiting one cycle, so they wait only when that is cheaper.
		 */
		if (p->deferrable)
			s->penalty = weight * p->value * settle_delay_cost_bps / 10000.0;
		else
			s->penalty = weight * p->value * DUE_FACTOR +
				wire_fee[p->wire_src] + wire_fee[p->wire_dst] +
				p->value * p->spread_bps / 10000.0;
		if (!(s->penalty > 0))
			s->penalty = 1e-9;
	}

	/* issue #27: linked groups are units of the model, all or nothing */
	group = palloc(sizeof(int) * Max(cs->n_payments, 1));
	n_groups = settle_links_groups(cs, group);
	/* issue #33: the participants' limits and reservations, rows of the same model */
	settle_controls_model(cs, accounts, payments, n_groups > 0 ? group : NULL, n_groups, &ctl);

	memset(&problem, 0, sizeof(problem));
	problem.n_accounts = ctl.n_accounts;
	problem.accounts = ctl.accounts;
	problem.n_payments = ctl.n_payments;
	problem.payments = ctl.payments;
	problem.n_wires = cs->n_wires;
	problem.wire_fee = wire_fee;
	problem.n_fx_pairs = n_fx;
	problem.fx_spread = fx_spread;
	problem.time_limit_ms = settle_solver_time_limit_ms;
	problem.mip_gap = settle_mip_gap;
	problem.mip_max_payments = settle_mip_max_payments;
	problem.interrupted = solver_interrupted;
	problem.log = solver_log;
	/* issue #21: the LP's liquidity prices, when they are recorded (the cycle's accounts first) */
	problem.account_price = cs->account_price = settle_liquidity_prices_prepare(ctl.n_accounts);
	problem.n_groups = ctl.n_groups;
	problem.group = ctl.n_groups > 0 ? ctl.group : NULL;

	/* the cycle's payments first, then their legs (posting reads the first n_payments) */
	cs->selected = palloc0(sizeof(bool) * Max(ctl.n_payments, 1));
	memset(&cs->result, 0, sizeof(cs->result));
	cs->result.settle = cs->selected;
	status = settle_solve(&problem, &cs->result);
	if (status != SOLVER_INTERRUPTED && status != SOLVER_ERROR && strcmp(cs->run_by, "worker") == 0)
	{
		/* issue #27: the deep pass's hint, re-checked here; this queue for the next one (deep.c) */
		/* a leg carries its payment's id: a hint selects the payment with its legs */
		if (settle_deep_cycle_solved(&problem, ctl.payment_id, cs->n_skipped == 0, cs->selected, &cs->result))
			status = cs->result.status;
	}
	if (status == SOLVER_INTERRUPTED)
	{
		CHECK_FOR_INTERRUPTS();
		ereport(ERROR,
				(errcode(ERRCODE_QUERY_CANCELED),
				 errmsg("settlement cycle interrupted while solving")));
	}
	if (status == SOLVER_ERROR)
	{
		ereport(WARNING,
				(errcode(ERRCODE_SETTLE_SOLVER_FAILED),
				 errmsg("settle solver failed, settling with the greedy heuristic"),
				 errdetail("%s", cs->result.message)));
		memset(cs->selected, 0, sizeof(bool) * ctl.n_payments);
		settle_solve_greedy(&problem, cs->selected);
		strlcpy(cs->result.method, "greedy (solver error)", sizeof(cs->result.method));
	}
	/* never post a selection that breaks a limit, whoever chose it */
	i = settle_check_selection(&problem, cs->selected);
	if (i >= 0 && i >= cs->n_accounts)
		ereport(ERROR,
				(errcode(ERRCODE_SETTLE_SOLVER_FAILED),
				 errmsg("settlement selection would break the %s", ctl.row_name[i]),
				 errdetail("Solver status %d, method %s.", (int) status, cs->result.method),
				 errhint("Nothing was posted; report this as a bug.")));
	if (i >= 0)
		ereport(ERROR,
				(errcode(ERRCODE_SETTLE_SOLVER_FAILED),
				 errmsg("settlement selection would take account \"%s\" below its limit",
						cs->accounts[i].account_id),
				 errdetail("Solver status %d, method %s.", (int) status, cs->result.method),
				 errhint("Nothing was posted; report this as a bug.")));
	/* nor one that settles a linked group in part */
	i = settle_check_groups(&problem, cs->selected);
	if (i >= 0)
	{
		int			k = 0;

		while (k < cs->n_payments - 1 && ctl.group[k] != i)
			k++;
		ereport(ERROR,
				(errcode(ERRCODE_SETTLE_SOLVER_FAILED),
				 errmsg("settlement selection would settle linked group \"%s\" in part",
						cs->payments[k].link_group ? cs->payments[k].link_group : "?"),
				 errdetail("Solver status %d, method %s.", (int) status, cs->result.method),
				 errhint("Nothing was posted; report this as a bug.")));
	}
	cs->solver_status = status;
}
