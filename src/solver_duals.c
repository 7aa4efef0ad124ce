/*
 * solver_duals.c -- what the settlement model says about liquidity (issue
 * #21, docs/ALGORITHM.md "Liquidity prices and funding advice").
 *
 * settle_solver_record_duals(): called by solver_glpk.c right after a component's
 * LP relaxation is solved (stage L): the dual value of every constrained
 * account's row, per minor unit: without prices into w->lambda (repair
 * prices the credit a drop takes from its payee with it), with each
 * payment's reduced cost into w->rc (the local search's order); with
 * prices into problem->account_price, nothing else.  solver_glpk.c calls it
 * without prices for the probed relaxation (payments that cannot settle
 * fixed at 0), which the search uses, then, if the caller wants prices,
 * with prices for the plain relaxation (see solve_plain_for_prices).  The account
 * rows are rows 1..k of the model, numbered as number_accounts() numbers
 * them (each payment's payer, then its payee, at first sight) and divided
 * by w->ar_scale[r]; the dual of the scaled row divided by that scale is
 * the objective's decrease per minor unit more available on the account.
 * Reading k duals costs k calls, nothing is allocated.
 *
 * settle_solve_topup(): funding advice for one account, solved exactly:
 *   W0   = best objective of the queue as it is                (MIP 1)
 *   Winf = best with no limit on the target                    (MIP 2)
 *   t*   = least top-up of the target with which Winf is met   (MIP 3)
 * where the objective is the settled weight less the wire fees and FX
 * spread the settled payments cost (the cycle's cost terms: a wire's fee
 * once if any settled payment uses it, a pair's spread on its net converted
 * volume), and a payment debits its amount and credits its converted
 * credit.  The top-up is then recomputed exactly (int128) from MIP 3's
 * selection, which is checked against every other account exactly as well.
 *
 * Plain C11 over GLPK (no PostgreSQL header): errors longjmp back here
 * through GLPK's error hook, GLPK's environment is freed, and the answer is
 * TOPUP_ERROR; nothing is allocated but GLPK's own objects.
 */
#include <math.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "solver_int.h"
#include "solver_duals.h"

void
settle_solver_record_duals(Work *w, glp_prob *lp, const int *members, int n, bool prices)
{
	const SolverProblem *p = w->p;
	double	   *price = prices ? p->account_price : w->lambda;
	int			row = 0;
	int			j;
	int			end;

	/* NAN marks the component's accounts not yet numbered */
	for (j = 0; j < n; j++)
	{
		const SolverPayment *s = &p->payments[members[j]];

		price[s->src] = NAN;
		price[s->dst] = NAN;
	}
	for (j = 0; j < n; j++)
	{
		const SolverPayment *s = &p->payments[members[j]];

		for (end = 0; end < 2; end++)
		{
			int			a = payment_account(s, end);

			if (!isnan(price[a]))
				continue;
			if (!p->accounts[a].constrained)
			{
				price[a] = 0;
				continue;
			}
			row++;
			price[a] = glp_get_row_dual(lp, row) / w->ar_scale[row];
			/* a price is never negative; a dual at round-off is none */
			if (!(price[a] > 0))
				price[a] = 0;
		}
	}
	if (prices)
		return;
	/* the local search's order (settle_solver_order_by_reduced_value): x_j is column j + 1 */
	for (j = 0; j < n; j++)
		w->rc[members[j]] = -glp_get_col_dual(lp, j + 1);
	w->have_duals = true;
}

/* ---- funding advice ---- */

typedef struct TopupWork
{
	const TopupProblem *tp;
	jmp_buf		jump;
	glp_prob   *lp;
	int		   *idx;			/* 1-based scratch, n_payments + 3 */
	double	   *val;
	wide		big;			/* the target's total debits: no top-up is ever larger */
	int		   *acc_start;		/* per account, its payments: acc_pay[acc_start[a] .. acc_start[a + 1]) */
	int		   *acc_pay;
	bool	   *in;				/* per payment: in the target's component (the rest cannot matter) */
	bool		integral;		/* weights and fees whole numbers, no spread: so is the objective */
	bool	   *wire_used;		/* scratch, per wire */
	double	   *pair_net;		/* scratch, per pair */
	bool	   *unlimited;		/* MIP 2's selection */
} TopupWork;

typedef enum
{
	STAGE_NOW,					/* max weight, target as it is */
	STAGE_UNLIMITED,			/* max weight, target unconstrained */
	STAGE_TOPUP					/* min top-up, weight at least the unlimited weight */
} Stage;

static void
topup_error_hook(void *info)
{
	TopupWork  *tw = info;

	longjmp(tw->jump, 1);
}

static int
topup_term_hook(void *info, const char *s)
{
	(void) info;
	(void) s;
	return 1;					/* GLPK's terminal output: nowhere */
}

/* What payment i credits its payee (one currency: its amount). */
static inline int64_t
credit_of(const TopupProblem *tp, int i)
{
	return tp->credit != NULL ? tp->credit[i] : tp->amount[i];
}

/* Whether wire w / pair k costs anything (else it has no column). */
static inline bool
wire_costs(const TopupProblem *tp, int w)
{
	return w >= 0 && tp->wire_fee[w] > 0;
}

static inline bool
pair_costs(const TopupProblem *tp, int k)
{
	return k >= 0 && tp->spread[k] > 0;
}

/*
 * One account row: available + credits - debits >= min(0, available), each
 * row divided by its largest coefficient.  With the top-up (target, stage
 * TOPUP): + t when available >= 0; when the target is already below its
 * limit, a top-up first fills the gap: t = -available * z + s, s <= big * z,
 * net + s >= 0 (z binary: any top-up at all).
 */
static void
add_account_row(TopupWork *tw, int a, Stage stage, int t_col)
{
	const TopupProblem *tp = tw->tp;
	int			len = 0;
	double		scale = 1;
	double		avail = (double) (tp->available[a] > 0 ? tp->available[a] : 0);
	int			row;
	int			k;

	for (k = tw->acc_start[a]; k < tw->acc_start[a + 1]; k++)
	{
		int			i = tw->acc_pay[k];
		double		v = 0;

		if (!tw->in[i])
			continue;
		if (tp->src[i] == a)
			v -= (double) tp->amount[i];
		if (tp->dst[i] == a)
			v += (double) credit_of(tp, i);
		if (v == 0)
			continue;
		len++;
		tw->idx[len] = i + 1;
		tw->val[len] = v;
		if (fabs(v) > scale)
			scale = fabs(v);
	}
	if (len == 0)
		return;
	row = glp_add_rows(tw->lp, 1);
	if (a == tp->target && stage == STAGE_UNLIMITED)
	{
		glp_set_row_bnds(tw->lp, row, GLP_FR, 0, 0);
		return;
	}
	if (a == tp->target && stage == STAGE_TOPUP)
	{
		len++;
		tw->idx[len] = t_col;	/* t, or s when below the limit */
		tw->val[len] = 1;
	}
	for (k = 1; k <= len; k++)
		tw->val[k] /= scale;
	glp_set_mat_row(tw->lp, row, len, tw->idx, tw->val);
	glp_set_row_bnds(tw->lp, row, GLP_LO, -avail / scale, 0);
}

/*
 * Build and solve one stage.  weight_floor: the least weight (STAGE_TOPUP).
 * out: the selection.  Returns 0 optimal, 1 feasible (time limit), -1 none.
 */
static int
solve_stage(TopupWork *tw, Stage stage, double weight_floor, bool *out, double *objective)
{
	const TopupProblem *tp = tw->tp;
	glp_iocp	iocp;
	int			t_col = 0;
	int			z_col = 0;
	int			cost_col;		/* the first wire / pair column */
	int			i;
	int			a;
	int			w;
	int			k;
	int			len;
	int			ret;
	int			status;
	bool		below = tp->available[tp->target] < 0;

	tw->lp = glp_create_prob();
	glp_set_obj_dir(tw->lp, stage == STAGE_TOPUP ? GLP_MIN : GLP_MAX);
	glp_add_cols(tw->lp, tp->n_payments);
	for (i = 0; i < tp->n_payments; i++)
	{
		glp_set_col_kind(tw->lp, i + 1, GLP_BV);
		if (!tw->in[i])
			glp_set_col_bnds(tw->lp, i + 1, GLP_FX, 0, 0);
		glp_set_obj_coef(tw->lp, i + 1, stage == STAGE_TOPUP ? 0 : tp->weight[i]);
	}
	if (stage == STAGE_TOPUP)
	{
		/* t (or s): continuous, at most the target's total debits */
		t_col = glp_add_cols(tw->lp, 1);
		glp_set_col_bnds(tw->lp, t_col, GLP_DB, 0, (double) tw->big);
		glp_set_obj_coef(tw->lp, t_col, 1);
		if (below)
		{
			z_col = glp_add_cols(tw->lp, 1);
			glp_set_col_kind(tw->lp, z_col, GLP_BV);
			glp_set_obj_coef(tw->lp, z_col, -(double) tp->available[tp->target]);
		}
	}
	/*
	 * The costs: y_w binary per wire with a fee (column cost_col + w), z_k
	 * >= 0 per pair with a spread (column cost_col + n_wires + k); in the
	 * maximising stages they enter the objective negated, in the top-up
	 * stage the objective floor row.
	 */
	cost_col = glp_get_num_cols(tw->lp) + 1;
	if (tp->n_wires + tp->n_pairs > 0)
		glp_add_cols(tw->lp, tp->n_wires + tp->n_pairs);
	for (w = 0; w < tp->n_wires; w++)
	{
		glp_set_col_kind(tw->lp, cost_col + w, GLP_BV);
		if (!wire_costs(tp, w))
			glp_set_col_bnds(tw->lp, cost_col + w, GLP_FX, 0, 0);
		else if (stage != STAGE_TOPUP)
			glp_set_obj_coef(tw->lp, cost_col + w, -tp->wire_fee[w]);
	}
	for (k = 0; k < tp->n_pairs; k++)
	{
		int			col = cost_col + tp->n_wires + k;

		if (!pair_costs(tp, k))
			glp_set_col_bnds(tw->lp, col, GLP_FX, 0, 0);
		else
		{
			glp_set_col_bnds(tw->lp, col, GLP_LO, 0, 0);
			if (stage != STAGE_TOPUP)
				glp_set_obj_coef(tw->lp, col, -tp->spread[k]);
		}
	}
	/* x_i <= y_w for each costly wire of a payment that can settle */
	for (i = 0; i < tp->n_payments; i++)
	{
		int			ends[2] = {tp->n_wires > 0 ? tp->wire_src[i] : -1,
							   tp->n_wires > 0 ? tp->wire_dst[i] : -1};

		if (!tw->in[i])
			continue;
		for (int e = 0; e < 2; e++)
		{
			int			row;

			if (!wire_costs(tp, ends[e]) || (e == 1 && ends[1] == ends[0]))
				continue;
			row = glp_add_rows(tw->lp, 1);
			tw->idx[1] = i + 1;
			tw->val[1] = 1;
			tw->idx[2] = cost_col + ends[e];
			tw->val[2] = -1;
			glp_set_mat_row(tw->lp, row, 2, tw->idx, tw->val);
			glp_set_row_bnds(tw->lp, row, GLP_UP, 0, 0);
		}
	}
	/* z_k >= +- sum volume x over the pair's payments, each row scaled */
	for (k = 0; k < tp->n_pairs; k++)
	{
		double		scale = 0;

		if (!pair_costs(tp, k))
			continue;
		len = 0;
		for (i = 0; i < tp->n_payments; i++)
			if (tw->in[i] && tp->pair[i] == k && tp->volume[i] != 0)
			{
				len++;
				tw->idx[len] = i + 1;
				if (fabs(tp->volume[i]) > scale)
					scale = fabs(tp->volume[i]);
			}
		if (len == 0)
			continue;
		tw->idx[len + 1] = cost_col + tp->n_wires + k;
		for (int sign = -1; sign <= 1; sign += 2)
		{
			int			row = glp_add_rows(tw->lp, 1);

			for (int j = 1; j <= len; j++)
				tw->val[j] = sign * tp->volume[tw->idx[j] - 1] / scale;
			tw->val[len + 1] = 1 / scale;
			glp_set_mat_row(tw->lp, row, len + 1, tw->idx, tw->val);
			glp_set_row_bnds(tw->lp, row, GLP_LO, 0, 0);
		}
	}
	for (a = 0; a < tp->n_accounts; a++)
		if (tp->constrained[a])
			add_account_row(tw, a, stage, t_col);
	if (stage == STAGE_TOPUP)
	{
		/* the objective at least weight_floor: weights less fees and spreads */
		int			row = glp_add_rows(tw->lp, 1);
		double		scale = 0;

		len = 0;
		for (i = 0; i < tp->n_payments; i++)
		{
			len++;
			tw->idx[len] = i + 1;
			tw->val[len] = tp->weight[i];
		}
		for (w = 0; w < tp->n_wires; w++)
			if (wire_costs(tp, w))
			{
				len++;
				tw->idx[len] = cost_col + w;
				tw->val[len] = -tp->wire_fee[w];
			}
		for (k = 0; k < tp->n_pairs; k++)
			if (pair_costs(tp, k))
			{
				len++;
				tw->idx[len] = cost_col + tp->n_wires + k;
				tw->val[len] = -tp->spread[k];
			}
		for (i = 1; i <= len; i++)
			if (fabs(tw->val[i]) > scale)
				scale = fabs(tw->val[i]);
		for (i = 1; i <= len; i++)
			tw->val[i] /= scale;
		glp_set_mat_row(tw->lp, row, len, tw->idx, tw->val);
		glp_set_row_bnds(tw->lp, row, GLP_LO, weight_floor / scale, 0);
		if (below)
		{
			/* s <= big * z */
			row = glp_add_rows(tw->lp, 1);
			tw->idx[1] = t_col;
			tw->val[1] = 1;
			tw->idx[2] = z_col;
			tw->val[2] = -(double) tw->big;
			glp_set_mat_row(tw->lp, row, 2, tw->idx, tw->val);
			glp_set_row_bnds(tw->lp, row, GLP_UP, 0, 0);
		}
	}
	glp_init_iocp(&iocp);
	iocp.msg_lev = GLP_MSG_OFF;
	iocp.presolve = GLP_ON;
	iocp.mip_gap = 0;
	if (tp->time_limit_ms > 0)
		iocp.tm_lim = (int) tp->time_limit_ms + 1;
	ret = glp_intopt(tw->lp, &iocp);
	status = glp_mip_status(tw->lp);
	if (status != GLP_OPT && status != GLP_FEAS)
	{
		glp_delete_prob(tw->lp);
		tw->lp = NULL;
		return -1;
	}
	for (i = 0; i < tp->n_payments; i++)
		out[i] = glp_mip_col_val(tw->lp, i + 1) > 0.5;
	*objective = glp_mip_obj_val(tw->lp);
	glp_delete_prob(tw->lp);
	tw->lp = NULL;
	return (ret == 0 && status == GLP_OPT) ? 0 : 1;
}

/*
 * Exact check of a selection: every constrained account but the target ends
 * at or above min(0, available); returns the top-up the target needs (>= 0),
 * or -1 if another account would break its limit.
 */
static wide
exact_topup(const TopupProblem *tp, const bool *sel, wide *net)
{
	int			a;
	int			i;
	wide		need = 0;

	for (a = 0; a < tp->n_accounts; a++)
		net[a] = 0;
	for (i = 0; i < tp->n_payments; i++)
		if (sel[i])
		{
			net[tp->src[i]] -= tp->amount[i];
			net[tp->dst[i]] += credit_of(tp, i);
		}
	for (a = 0; a < tp->n_accounts; a++)
	{
		wide		avail = tp->available[a];
		wide		end = avail + net[a];
		wide		floor = avail < 0 ? avail : 0;

		if (!tp->constrained[a] || end >= floor)
			continue;
		if (a != tp->target)
			return -1;
		/* the target ends below: it needs what takes it back to 0 */
		need = -end;
	}
	return need;
}

/* The objective of a selection: weights less the fees and spreads it costs. */
static double
weight_of(TopupWork *tw, const bool *sel)
{
	const TopupProblem *tp = tw->tp;
	double		wsum = 0;
	int			i;

	for (i = 0; i < tp->n_wires; i++)
		tw->wire_used[i] = false;
	for (i = 0; i < tp->n_pairs; i++)
		tw->pair_net[i] = 0;
	for (i = 0; i < tp->n_payments; i++)
		if (sel[i])
		{
			wsum += tp->weight[i];
			if (tp->n_wires > 0)
			{
				if (tp->wire_src[i] >= 0)
					tw->wire_used[tp->wire_src[i]] = true;
				if (tp->wire_dst[i] >= 0)
					tw->wire_used[tp->wire_dst[i]] = true;
			}
			if (tp->n_pairs > 0 && tp->pair[i] >= 0)
				tw->pair_net[tp->pair[i]] += tp->volume[i];
		}
	for (i = 0; i < tp->n_wires; i++)
		if (tw->wire_used[i])
			wsum -= tp->wire_fee[i];
	for (i = 0; i < tp->n_pairs; i++)
		wsum -= tp->spread[i] * fabs(tw->pair_net[i]);
	return wsum;
}

static void
free_topup_work(TopupWork *tw, wide *net, int *parent)
{
	free(tw->idx);
	free(tw->val);
	free(tw->acc_start);
	free(tw->acc_pay);
	free(tw->in);
	free(tw->wire_used);
	free(tw->pair_net);
	free(tw->unlimited);
	free(net);
	free(parent);
}

static int
find_root(int *parent, int a)
{
	while (parent[a] != a)
	{
		parent[a] = parent[parent[a]];
		a = parent[a];
	}
	return a;
}

/*
 * The payments of each account (CSR), and which payments are in the
 * target's component: only those can settle differently with a top-up.
 * Payments are connected through their accounts and through a wire or an
 * FX pair that costs something and that they share (the fee or the spread
 * couples them): parent has a node per account, then per wire, then per
 * pair.
 */
static void
index_accounts(TopupWork *tw, int *parent)
{
	const TopupProblem *tp = tw->tp;
	int			a;
	int			i;
	int			root;

	for (a = 0; a <= tp->n_accounts; a++)
		tw->acc_start[a] = 0;
	for (i = 0; i < tp->n_payments; i++)
	{
		tw->acc_start[tp->src[i] + 1]++;
		if (tp->dst[i] != tp->src[i])
			tw->acc_start[tp->dst[i] + 1]++;
	}
	for (a = 0; a < tp->n_accounts; a++)
		tw->acc_start[a + 1] += tw->acc_start[a];
	for (a = 0; a < tp->n_accounts; a++)
		parent[a] = tw->acc_start[a];	/* fill pointers, for now */
	for (i = 0; i < tp->n_payments; i++)
	{
		tw->acc_pay[parent[tp->src[i]]++] = i;
		if (tp->dst[i] != tp->src[i])
			tw->acc_pay[parent[tp->dst[i]]++] = i;
	}
	for (a = 0; a < tp->n_accounts + tp->n_wires + tp->n_pairs; a++)
		parent[a] = a;
	for (i = 0; i < tp->n_payments; i++)
	{
		int			nodes[4] = {tp->dst[i], -1, -1, -1};

		if (tp->n_wires > 0 && wire_costs(tp, tp->wire_src[i]))
			nodes[1] = tp->n_accounts + tp->wire_src[i];
		if (tp->n_wires > 0 && wire_costs(tp, tp->wire_dst[i]))
			nodes[2] = tp->n_accounts + tp->wire_dst[i];
		if (tp->n_pairs > 0 && pair_costs(tp, tp->pair[i]))
			nodes[3] = tp->n_accounts + tp->n_wires + tp->pair[i];
		for (int e = 0; e < 4; e++)
		{
			int			x = find_root(parent, tp->src[i]);
			int			y;

			if (nodes[e] < 0)
				continue;
			y = find_root(parent, nodes[e]);
			if (x != y)
				parent[x] = y;
		}
	}
	root = find_root(parent, tp->target);
	for (i = 0; i < tp->n_payments; i++)
		tw->in[i] = find_root(parent, tp->src[i]) == root;
}

TopupStatus
settle_solve_topup(const TopupProblem *tp, TopupResult *r)
{
	TopupWork	tw;
	volatile int worst = 0;
	double		obj;
	wide	   *net;
	int		   *parent;
	wide		need;
	double		tol;
	int			i;

	memset(&tw, 0, sizeof(tw));
	tw.tp = tp;
	tw.integral = true;
	r->status = TOPUP_ERROR;
	r->topup = 0;
	r->weight_now = r->weight_unlimited = r->weight_topped = 0;
	r->message[0] = '\0';
	if (tp->n_payments < 0 || tp->n_accounts <= 0 || tp->target < 0 || tp->target >= tp->n_accounts)
	{
		snprintf(r->message, sizeof(r->message), "invalid problem");
		return r->status;
	}
	for (i = 0; i < tp->n_payments; i++)
	{
		r->settled_now[i] = r->settled_topped[i] = false;
		if (tp->src[i] < 0 || tp->src[i] >= tp->n_accounts || tp->dst[i] < 0 ||
			tp->dst[i] >= tp->n_accounts || tp->amount[i] <= 0 || credit_of(tp, i) <= 0 ||
			!(tp->weight[i] > 0) || !isfinite(tp->weight[i]) ||
			(tp->n_wires > 0 && (tp->wire_src[i] < -1 || tp->wire_src[i] >= tp->n_wires ||
								 tp->wire_dst[i] < -1 || tp->wire_dst[i] >= tp->n_wires)) ||
			(tp->n_pairs > 0 && (tp->pair[i] < -1 || tp->pair[i] >= tp->n_pairs || !isfinite(tp->volume[i]))))
		{
			snprintf(r->message, sizeof(r->message), "invalid payment %d", i);
			return r->status;
		}
		if (tp->src[i] == tp->target)
			tw.big += tp->amount[i];
		if (tp->weight[i] != floor(tp->weight[i]))
			tw.integral = false;
	}
	if (tp->n_wires < 0 || tp->n_pairs < 0)
	{
		snprintf(r->message, sizeof(r->message), "invalid problem");
		return r->status;
	}
	for (i = 0; i < tp->n_wires; i++)
	{
		if (!(tp->wire_fee[i] >= 0) || !isfinite(tp->wire_fee[i]))
		{
			snprintf(r->message, sizeof(r->message), "invalid wire fee %d", i);
			return r->status;
		}
		if (tp->wire_fee[i] != floor(tp->wire_fee[i]))
			tw.integral = false;
	}
	for (i = 0; i < tp->n_pairs; i++)
	{
		if (!(tp->spread[i] >= 0) || !isfinite(tp->spread[i]))
		{
			snprintf(r->message, sizeof(r->message), "invalid spread %d", i);
			return r->status;
		}
		if (tp->spread[i] > 0)
			tw.integral = false;
	}
	if (tw.big == 0)
	{
		/* the target pays nothing: no top-up can change anything */
		r->status = TOPUP_OPTIMAL;
		return r->status;
	}
	/* the longest row: the objective floor (payments, wires, pairs) */
	tw.idx = malloc(sizeof(int) * (tp->n_payments + tp->n_wires + tp->n_pairs + 3));
	tw.val = malloc(sizeof(double) * (tp->n_payments + tp->n_wires + tp->n_pairs + 3));
	tw.acc_start = malloc(sizeof(int) * (tp->n_accounts + 1));
	tw.acc_pay = malloc(sizeof(int) * (2 * tp->n_payments + 1));
	tw.in = malloc(sizeof(bool) * tp->n_payments);
	tw.wire_used = malloc(sizeof(bool) * (tp->n_wires + 1));
	tw.pair_net = malloc(sizeof(double) * (tp->n_pairs + 1));
	tw.unlimited = malloc(sizeof(bool) * tp->n_payments);
	net = malloc(sizeof(wide) * tp->n_accounts);
	parent = malloc(sizeof(int) * (tp->n_accounts + tp->n_wires + tp->n_pairs));
	if (!tw.idx || !tw.val || !tw.acc_start || !tw.acc_pay || !tw.in || !tw.wire_used || !tw.pair_net ||
		!tw.unlimited || !net || !parent)
	{
		free_topup_work(&tw, net, parent);
		snprintf(r->message, sizeof(r->message), "out of memory");
		return r->status;
	}
	index_accounts(&tw, parent);
	glp_term_hook(topup_term_hook, NULL);
	glp_error_hook(topup_error_hook, &tw);
	if (setjmp(tw.jump) != 0)
	{
		/* GLPK failed: its whole environment goes (as in solver.c) */
		glp_free_env();
		free_topup_work(&tw, net, parent);
		snprintf(r->message, sizeof(r->message), "GLPK failed");
		r->status = TOPUP_ERROR;
		return r->status;
	}
	for (;;)
	{
		int			s;

		s = solve_stage(&tw, STAGE_NOW, 0, r->settled_now, &obj);
		if (s < 0)
			break;
		worst = s > worst ? s : worst;
		r->weight_now = weight_of(&tw, r->settled_now);
		s = solve_stage(&tw, STAGE_UNLIMITED, 0, r->settled_topped, &obj);
		if (s < 0)
			break;
		worst = s > worst ? s : worst;
		r->weight_unlimited = weight_of(&tw, r->settled_topped);
		if (r->weight_unlimited < r->weight_now)
		{
			/* (MIP 2 stopped early) MIP 1's selection is one of its answers */
			memcpy(r->settled_topped, r->settled_now, sizeof(bool) * tp->n_payments);
			r->weight_unlimited = r->weight_now;
		}
		memcpy(tw.unlimited, r->settled_topped, sizeof(bool) * tp->n_payments);
		/*
		 * "At least Winf": with whole weights and fees and no spread, half a
		 * unit below; else a relative hair below, and a selection that
		 * GLPK's tolerances let fall further is replaced by MIP 2's own (a
		 * top-up that is enough, not proven least: status feasible).
		 */
		tol = tw.integral ? fmax(0.5, 1e-12 * fabs(r->weight_unlimited))
			: 1e-9 * fmax(1, fabs(r->weight_unlimited));
		s = solve_stage(&tw, STAGE_TOPUP, r->weight_unlimited - tol, r->settled_topped, &obj);
		if (s < 0)
			break;
		worst = s > worst ? s : worst;
		if (weight_of(&tw, r->settled_topped) < r->weight_unlimited - (tw.integral ? tol : 100 * tol))
		{
			memcpy(r->settled_topped, tw.unlimited, sizeof(bool) * tp->n_payments);
			worst = worst > 1 ? worst : 1;
		}
		need = exact_topup(tp, r->settled_topped, net);
		if (need < 0 || exact_topup(tp, r->settled_now, net) != 0)
		{
			snprintf(r->message, sizeof(r->message), "a selection failed the exact check");
			break;
		}
		r->topup = (int64_t) need;
		r->weight_topped = weight_of(&tw, r->settled_topped);
		r->status = worst == 0 ? TOPUP_OPTIMAL : TOPUP_FEASIBLE;
		break;
	}
	if (r->status == TOPUP_ERROR && r->message[0] == '\0')
		snprintf(r->message, sizeof(r->message), "GLPK found no solution in time");
	glp_error_hook(NULL, NULL);
	free_topup_work(&tw, net, parent);
	return r->status;
}
