/*
 * solver_deep.c -- the deep pass (issue #27, include/solver_deep.h): a
 * large-neighbourhood search for a queue that stays stuck.
 *
 * The real-time solve (solver.c) has 20 ms and its local search ends where
 * single moves and a few kicks stop helping; on the reference instances at
 * 10% liquidity that is about 10% above the best known selection, which
 * differs from it in about a hundred payments over most accounts.  Here a
 * region of accounts is freed at a time: every payment into or out of it
 * is a binary column, every other payment keeps its value and is folded
 * into the rows' right-hand sides, and GLPK's branch and bound solves the
 * region (cover and MIR cuts; the current selection offered as incumbent
 * at the root, so its answer is never worse).  The whole selection is then
 * re-checked in exact integers and costed exactly; it replaces the current
 * one only when cheaper.  docs/ALGORITHM.md, "The deep pass".
 *
 * Effort is counted (rounds, nodes per round) so that the pass is
 * deterministic; a wall clock limit may cut it shorter.  GLPK errors
 * longjmp back here: its environment is freed and the best selection so
 * far returned.  Plain C11, no PostgreSQL headers.
 */
#include <limits.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "solver_deep.h"
#include "solver_int.h"

/*
 * Integer feasibility tolerance of the region MIPs: an x at 1 - tol times a
 * debit of 1e7 minor units is still within a unit, so that rounding GLPK's
 * answer rarely breaks an exact limit (the exact check refuses it anyway).
 */
#define DEEP_TOL_INT 1e-9

/*
 * Regions start at limits->region_payments payments (fast to solve, most of
 * the gain early) and grow by a quarter after this many rounds in a row
 * that found nothing, up to DEEP_GROW_MAX times the start.
 */
#define DEEP_GROW_AFTER 30
#define DEEP_GROW_MAX 4

/* Draws of a payment that waits, for a region's first account. */
#define DEEP_SEED_TRIES 20

/* One deep pass's memory: freed on every path. */
typedef struct Deep
{
	const SolverProblem *p;
	const SolverDeepLimits *lim;
	double		deadline_ms;	/* <= 0: none */
	bool		stop;			/* interrupted() said stop (sticky) */
	bool	   *best;			/* the current selection */
	double		best_obj;
	bool	   *cand;
	bool	   *in_region;		/* per account */
	bool	   *free_pay;		/* per payment: a column of this round */
	int		   *col;			/* per payment, wire, pair: column (0: none) */
	int		   *row;			/* per account: row (0: none) */
	int		   *region;			/* accounts of the region, in order of addition */
	int		   *free_list;		/* the round's free payments */
	int			n_free;
	int		   *acc_start;		/* per account: its payments, CSR (both ends) */
	int		   *acc_list;
	wide	   *base;			/* per account: balance from the fixed payments */
	int		   *wire_fixed;		/* per wire: fixed selected payments using it */
	double	   *fx_fixed;		/* per pair: fixed net converted volume */
	int		   *idx;			/* GLPK row scratch, 1-based */
	double	   *val;
	double	   *x;				/* incumbent point, 1-based by column */
	int			ncols;
	int			nodes_left;		/* this round's node budget */
	int			size;			/* payments a region frees now */
	int			fails;			/* rounds since the last improvement */
	glp_prob   *lp;
	unsigned long long rng;
	jmp_buf		jump;
} Deep;

static void deep_error_hook(void *info);
static int	deep_term_hook(void *info, const char *s);
static bool deep_alloc(Deep *d);
static void deep_free(Deep *d);
static bool deep_out_of_time(Deep *d);
static int	deep_below(Deep *d, int k);
static void choose_region(Deep *d);
static void fold_fixed(Deep *d);
static void build_model(Deep *d);
static void deep_callback(glp_tree *tree, void *info);
static bool solve_region(Deep *d);
static void one_round(Deep *d, SolverDeepStats *st);
static void search(Deep *d, SolverDeepStats *st, SolverResult *result);

/* The effort measured in docs/ALGORITHM.md ("The deep pass"). */
void
settle_deep_default_limits(SolverDeepLimits *lim)
{
	lim->rounds = 100000;
	lim->region_payments = 150;
	lim->nodes = 30;
	lim->time_limit_ms = 1000;
	lim->seed = 42;
}

/* The model's objective: what waits, each wire's fee once, each pair's spread on its net. */
double
settle_selection_objective(const SolverProblem *p, const bool *sel)
{
	int		   *used = calloc(p->n_wires + 1, sizeof(int));
	double	   *net = calloc(p->n_fx_pairs + 1, sizeof(double));
	double		cost = 0;
	int			i;

	if (!used || !net)
	{
		free(used);
		free(net);
		return INFINITY;		/* cannot cost it: never preferred */
	}
	for (i = 0; i < p->n_payments; i++)
	{
		const SolverPayment *s = &p->payments[i];

		if (!sel[i])
		{
			cost += s->penalty;
			continue;
		}
		if (s->wire_src >= 0 && used[s->wire_src]++ == 0)
			cost += p->wire_fee[s->wire_src];
		if (s->wire_dst >= 0 && used[s->wire_dst]++ == 0)
			cost += p->wire_fee[s->wire_dst];
		if (s->fx_pair >= 0)
			net[s->fx_pair] += s->fx_value;
	}
	for (i = 0; i < p->n_fx_pairs; i++)
		cost += p->fx_spread[i] * fabs(net[i]);
	free(used);
	free(net);
	return cost;
}

/* GLPK calls this on an internal error: leave through the jump buffer. */
static void
deep_error_hook(void *info)
{
	Deep	   *d = info;

	longjmp(d->jump, 1);
}

/* GLPK's terminal output goes to the caller's log, or nowhere. */
static int
deep_term_hook(void *info, const char *s)
{
	const SolverProblem *p = info;

	if (p->log)
		p->log(p->log_arg, s);
	return 1;
}

static bool
deep_alloc(Deep *d)
{
	const SolverProblem *p = d->p;
	int			n = p->n_payments;
	int			na = p->n_accounts;
	int			ncol = n + p->n_wires + p->n_fx_pairs + 1;
	int			i;

	d->best = calloc(n + 1, sizeof(bool));
	d->cand = calloc(n + 1, sizeof(bool));
	d->free_pay = calloc(n + 1, sizeof(bool));
	d->in_region = calloc(na + 1, sizeof(bool));
	d->col = calloc(ncol, sizeof(int));
	d->row = calloc(na + 1, sizeof(int));
	d->region = calloc(na + 1, sizeof(int));
	d->free_list = calloc(n + 1, sizeof(int));
	d->acc_start = calloc(na + 2, sizeof(int));
	d->acc_list = calloc(2 * (size_t) n + 1, sizeof(int));
	d->base = calloc(na + 1, sizeof(wide));
	d->wire_fixed = calloc(p->n_wires + 1, sizeof(int));
	d->fx_fixed = calloc(p->n_fx_pairs + 1, sizeof(double));
	/* a row holds at most every payment plus one y or z column */
	d->idx = calloc(ncol + 1, sizeof(int));
	d->val = calloc(ncol + 1, sizeof(double));
	d->x = calloc(ncol + 1, sizeof(double));
	if (!d->best || !d->cand || !d->free_pay || !d->in_region || !d->col || !d->row ||
		!d->region || !d->free_list || !d->acc_start || !d->acc_list || !d->base ||
		!d->wire_fixed || !d->fx_fixed || !d->idx || !d->val || !d->x)
		return false;
	/* each account's payments, both ends, for growing regions */
	for (i = 0; i < n; i++)
	{
		d->acc_start[p->payments[i].src + 2]++;
		if (p->payments[i].dst != p->payments[i].src)
			d->acc_start[p->payments[i].dst + 2]++;
	}
	for (i = 2; i <= na + 1; i++)
		d->acc_start[i] += d->acc_start[i - 1];
	for (i = 0; i < n; i++)
	{
		d->acc_list[d->acc_start[p->payments[i].src + 1]++] = i;
		if (p->payments[i].dst != p->payments[i].src)
			d->acc_list[d->acc_start[p->payments[i].dst + 1]++] = i;
	}
	return true;
}

static void
deep_free(Deep *d)
{
	if (d->lp)
		glp_delete_prob(d->lp);
	d->lp = NULL;
	free(d->best);
	free(d->cand);
	free(d->free_pay);
	free(d->in_region);
	free(d->col);
	free(d->row);
	free(d->region);
	free(d->free_list);
	free(d->acc_start);
	free(d->acc_list);
	free(d->base);
	free(d->wire_fixed);
	free(d->fx_fixed);
	free(d->idx);
	free(d->val);
	free(d->x);
}

/* True when the clock or the caller says stop. */
static bool
deep_out_of_time(Deep *d)
{
	if (!d->stop && d->p->interrupted && d->p->interrupted(d->p->interrupted_arg))
		d->stop = true;
	return d->stop || (d->deadline_ms > 0 && settle_solver_now_ms() >= d->deadline_ms);
}

/* Uniform integer in [0, k) from the pass's own generator. */
static int
deep_below(Deep *d, int k)
{
	d->rng = d->rng * 6364136223846793005ULL + 1442695040888963407ULL;
	return (int) ((d->rng >> 33) % (unsigned long long) k);
}

/*
 * The round's region: from the payer of a payment that waits (the
 * liquidity it lacks is what the region may find), add the accounts its
 * payments reach (breadth first, so the region is connected and its freed
 * payments interact), a random one when the frontier runs dry, until the payments
 * into or out of the region reach limits->region_payments.  Connected
 * regions let a whole chain of payments that the local search could only
 * move one at a time change together.
 */
static void
choose_region(Deep *d)
{
	const SolverProblem *p = d->p;
	int			na = p->n_accounts;
	int			n_region = 0;
	int			head = 0;
	int			target = d->size;
	int			i;

	for (i = 0; i < d->n_free; i++)
		d->free_pay[d->free_list[i]] = false;
	for (i = 0; i < na; i++)
		d->in_region[i] = false;
	d->n_free = 0;
	while (d->n_free < target && n_region < na)
	{
		int			a;
		int			t;

		if (head < n_region)
		{
			/* the next account of the frontier: one of its payments' other ends, at random */
			int			from = d->region[head];
			int			deg = d->acc_start[from + 1] - d->acc_start[from];
			int			tries;

			a = -1;
			for (tries = 0; tries < 4 && deg > 0 && a < 0; tries++)
			{
				const SolverPayment *s = &p->payments[d->acc_list[d->acc_start[from] + deep_below(d, deg)]];
				int			other = s->src == from ? s->dst : s->src;

				if (!d->in_region[other])
					a = other;
			}
			if (a < 0)
			{
				head++;
				continue;
			}
		}
		else if (n_region == 0)
		{
			/* the first account: the payer of a payment that waits, if one is found */
			int			q = deep_below(d, p->n_payments);
			int			tries;

			for (tries = 0; tries < DEEP_SEED_TRIES && d->best[q]; tries++)
				q = deep_below(d, p->n_payments);
			a = p->payments[q].src;
		}
		else
		{
			a = deep_below(d, na);
			while (d->in_region[a])
				a = (a + 1) % na;
		}
		d->in_region[a] = true;
		d->region[n_region++] = a;
		for (t = d->acc_start[a]; t < d->acc_start[a + 1]; t++)
		{
			int			q = d->acc_list[t];

			if (!d->free_pay[q])
			{
				d->free_pay[q] = true;
				d->free_list[d->n_free++] = q;
			}
		}
	}
}

/* Balances, wire use and FX nets of the payments the round keeps fixed. */
static void
fold_fixed(Deep *d)
{
	const SolverProblem *p = d->p;
	int			i;

	for (i = 0; i < p->n_accounts; i++)
		d->base[i] = p->accounts[i].available;
	for (i = 0; i < p->n_wires; i++)
		d->wire_fixed[i] = 0;
	for (i = 0; i < p->n_fx_pairs; i++)
		d->fx_fixed[i] = 0;
	for (i = 0; i < p->n_payments; i++)
	{
		const SolverPayment *s = &p->payments[i];

		if (d->free_pay[i] || !d->best[i])
			continue;
		d->base[s->src] -= s->debit;
		d->base[s->dst] += s->credit;
		if (s->wire_src >= 0)
			d->wire_fixed[s->wire_src]++;
		if (s->wire_dst >= 0)
			d->wire_fixed[s->wire_dst]++;
		if (s->fx_pair >= 0)
			d->fx_fixed[s->fx_pair] += s->fx_value;
	}
}

#define WIRE_COL(d, wi) ((d)->col[(d)->p->n_payments + (wi)])
#define FX_COL(d, k)	((d)->col[(d)->p->n_payments + (d)->p->n_wires + (k)])

/*
 * The region's MIP (docs/ALGORITHM.md's model with the fixed payments
 * folded in): x per free payment; y per costly wire that no fixed payment
 * opens; z per costly pair; for every constrained account a free payment
 * touches, credits - debits of the free payments >= floor - fixed balance
 * (scaled by the row's largest coefficient); x <= y per payment end on such
 * a wire; z >= +-(fixed net + free net).  The incumbent point (the current
 * selection) goes into d->x.
 */
static void
build_model(Deep *d)
{
	const SolverProblem *p = d->p;
	glp_prob   *lp;
	double		constant = 0;
	int			nrows = 0;
	int			j;
	int			end;
	int			k;

	for (j = 0; j < p->n_wires + p->n_fx_pairs; j++)
		d->col[p->n_payments + j] = 0;
	for (j = 0; j < d->n_free; j++)
	{
		const SolverPayment *s = &p->payments[d->free_list[j]];

		d->row[s->src] = 0;
		d->row[s->dst] = 0;
	}
	if (d->lp)
		glp_delete_prob(d->lp);
	d->lp = lp = glp_create_prob();
	glp_set_obj_dir(lp, GLP_MIN);
	d->ncols = d->n_free;
	for (j = 0; j < d->n_free; j++)
	{
		const SolverPayment *s = &p->payments[d->free_list[j]];

		d->col[d->free_list[j]] = j + 1;
		for (end = 0; end < 2; end++)
		{
			int			wi = payment_wire(s, end);

			if (wi >= 0 && p->wire_fee[wi] > 0 && d->wire_fixed[wi] == 0 && WIRE_COL(d, wi) == 0)
				WIRE_COL(d, wi) = ++d->ncols;
		}
		if (s->fx_pair >= 0 && p->fx_spread[s->fx_pair] > 0 && FX_COL(d, s->fx_pair) == 0)
			FX_COL(d, s->fx_pair) = ++d->ncols;
	}
	glp_add_cols(lp, d->ncols);
	for (j = 0; j <= d->ncols; j++)
		d->x[j] = 0;
	for (j = 0; j < d->n_free; j++)
	{
		int			i = d->free_list[j];
		const SolverPayment *s = &p->payments[i];

		glp_set_col_kind(lp, j + 1, GLP_BV);
		glp_set_obj_coef(lp, j + 1, -s->penalty);
		constant += s->penalty;
		d->x[j + 1] = d->best[i] ? 1.0 : 0.0;
		for (end = 0; end < 2; end++)
		{
			int			wi = payment_wire(s, end);

			if (wi < 0 || WIRE_COL(d, wi) == 0)
				continue;
			glp_set_col_kind(lp, WIRE_COL(d, wi), GLP_BV);
			glp_set_obj_coef(lp, WIRE_COL(d, wi), p->wire_fee[wi]);
			if (d->best[i])
				d->x[WIRE_COL(d, wi)] = 1.0;
		}
	}
	/* the constant keeps the objective >= 0, so the relative gap means something */
	glp_set_obj_coef(lp, 0, constant);

	/* account rows */
	for (j = 0; j < d->n_free; j++)
	{
		const SolverPayment *s = &p->payments[d->free_list[j]];

		for (end = 0; end < 2; end++)
		{
			int			a = payment_account(s, end);
			int			len = 0;
			double		scale = 0;
			wide		floor = floor_of(p, a);
			int			t;
			int			r;

			if (!p->accounts[a].constrained || d->row[a] != 0)
				continue;
			d->row[a] = ++nrows;
			for (t = d->acc_start[a]; t < d->acc_start[a + 1]; t++)
			{
				int			q = d->acc_list[t];
				const SolverPayment *u = &p->payments[q];
				double		v;

				if (!d->free_pay[q])
					continue;
				v = (u->dst == a ? (double) u->credit : 0) - (u->src == a ? (double) u->debit : 0);
				if (v == 0)
					continue;
				len++;
				d->idx[len] = d->col[q];
				d->val[len] = v;
				if (fabs(v) > scale)
					scale = fabs(v);
			}
			if (scale == 0)
				scale = 1;
			for (t = 1; t <= len; t++)
				d->val[t] /= scale;
			r = glp_add_rows(lp, 1);
			glp_set_mat_row(lp, r, len, d->idx, d->val);
			glp_set_row_bnds(lp, r, GLP_LO, (double) (floor - d->base[a]) / scale, 0.0);
		}
	}
	/* wire links */
	for (j = 0; j < d->n_free; j++)
	{
		const SolverPayment *s = &p->payments[d->free_list[j]];

		for (end = 0; end < 2; end++)
		{
			int			wi = payment_wire(s, end);
			int			r;

			if (wi < 0 || WIRE_COL(d, wi) == 0 || (end == 1 && wi == s->wire_src))
				continue;
			d->idx[1] = j + 1;
			d->val[1] = 1.0;
			d->idx[2] = WIRE_COL(d, wi);
			d->val[2] = -1.0;
			r = glp_add_rows(lp, 1);
			glp_set_mat_row(lp, r, 2, d->idx, d->val);
			glp_set_row_bnds(lp, r, GLP_UP, 0.0, 0.0);
		}
	}
	/* FX rows: z_k >= +-(fixed net + free net) */
	for (k = 0; k < p->n_fx_pairs; k++)
	{
		int			sign;
		double		net = d->fx_fixed[k];

		if (FX_COL(d, k) == 0)
			continue;
		for (j = 0; j < d->n_free; j++)
			if (p->payments[d->free_list[j]].fx_pair == k && d->best[d->free_list[j]])
				net += p->payments[d->free_list[j]].fx_value;
		glp_set_col_bnds(lp, FX_COL(d, k), GLP_LO, 0.0, 0.0);
		glp_set_obj_coef(lp, FX_COL(d, k), p->fx_spread[k]);
		d->x[FX_COL(d, k)] = fabs(net);
		for (sign = -1; sign <= 1; sign += 2)
		{
			int			len = 0;
			int			r;

			for (j = 0; j < d->n_free; j++)
			{
				const SolverPayment *s = &p->payments[d->free_list[j]];

				if (s->fx_pair != k)
					continue;
				len++;
				d->idx[len] = j + 1;
				d->val[len] = -sign * s->fx_value;
			}
			len++;
			d->idx[len] = FX_COL(d, k);
			d->val[len] = 1.0;
			r = glp_add_rows(lp, 1);
			glp_set_mat_row(lp, r, len, d->idx, d->val);
			glp_set_row_bnds(lp, r, GLP_LO, sign * d->fx_fixed[k], 0.0);
		}
	}
	for (j = 0; j < d->n_free; j++)
		d->col[d->free_list[j]] = 0;
}

/*
 * Branch and bound callback: offer the current selection at the root, stop
 * at the node budget, the clock or the caller's interrupt.
 */
static void
deep_callback(glp_tree *tree, void *info)
{
	Deep	   *d = info;
	int			a_cnt,
				n_cnt,
				t_cnt;

	glp_ios_tree_size(tree, &a_cnt, &n_cnt, &t_cnt);
	if (t_cnt > d->nodes_left || deep_out_of_time(d))
	{
		glp_ios_terminate(tree);
		return;
	}
	if (glp_ios_reason(tree) == GLP_IHEUR && glp_ios_curr_node(tree) == 1 &&
		glp_get_num_cols(glp_ios_get_prob(tree)) == d->ncols)
		glp_ios_heur_sol(tree, d->x);
}

/* Solve the region's model; true if GLPK has an integer answer in d->lp. */
static bool
solve_region(Deep *d)
{
	glp_smcp	smcp;
	glp_iocp	iocp;
	double		remaining = d->deadline_ms > 0 ? d->deadline_ms - settle_solver_now_ms() : -1;

	if (d->deadline_ms > 0 && remaining < 1)
		return false;
	glp_scale_prob(d->lp, GLP_SF_AUTO);
	glp_init_smcp(&smcp);
	smcp.msg_lev = GLP_MSG_OFF;
	smcp.meth = GLP_DUALP;
	if (remaining > 0)
		smcp.tm_lim = (int) remaining + 1;
	if (glp_simplex(d->lp, &smcp) != 0 || glp_get_status(d->lp) != GLP_OPT)
		return false;
	glp_init_iocp(&iocp);
	iocp.msg_lev = GLP_MSG_OFF;
	iocp.tol_int = DEEP_TOL_INT;
	iocp.mip_gap = d->p->mip_gap > 0 ? d->p->mip_gap : 1e-6;
	iocp.cov_cuts = getenv("XCOV") ? atoi(getenv("XCOV")) : GLP_ON;
	iocp.mir_cuts = getenv("XMIR") ? atoi(getenv("XMIR")) : GLP_ON;
	iocp.gmi_cuts = getenv("XGMI") ? atoi(getenv("XGMI")) : GLP_OFF;
	iocp.br_tech = getenv("XBR") ? atoi(getenv("XBR")) : GLP_BR_DTH;
	iocp.bt_tech = getenv("XBT") ? atoi(getenv("XBT")) : GLP_BT_BLB;
	iocp.cb_func = deep_callback;
	iocp.cb_info = d;
	remaining = d->deadline_ms > 0 ? d->deadline_ms - settle_solver_now_ms() : -1;
	if (d->deadline_ms > 0 && remaining < 1)
		return false;
	if (remaining > 0)
		iocp.tm_lim = (int) remaining + 1;
	glp_intopt(d->lp, &iocp);
	return glp_mip_status(d->lp) == GLP_OPT || glp_mip_status(d->lp) == GLP_FEAS;
}

/* One region: freed, solved, kept if the exact check passes and it is cheaper. */
static void
one_round(Deep *d, SolverDeepStats *st)
{
	const SolverProblem *p = d->p;
	double		obj;
	int			j;

	choose_region(d);
	if (d->n_free == 0)
		return;
	fold_fixed(d);
	build_model(d);
	d->nodes_left = d->lim->nodes;
	if (!solve_region(d))
		return;
	st->rounds++;
	memcpy(d->cand, d->best, sizeof(bool) * p->n_payments);
	for (j = 0; j < d->n_free; j++)
		d->cand[d->free_list[j]] = glp_mip_col_val(d->lp, j + 1) > 0.5;
	if (settle_check_selection(p, d->cand) >= 0)
	{
		st->rejected++;
		return;
	}
	obj = settle_selection_objective(p, d->cand);
	if (obj < d->best_obj - 1e-9 * (1 + fabs(d->best_obj)))
	{
		d->best_obj = obj;
		memcpy(d->best, d->cand, sizeof(bool) * p->n_payments);
		st->improved++;
		d->fails = 0;
	}
	else if (++d->fails >= DEEP_GROW_AFTER && d->size < DEEP_GROW_MAX * d->lim->region_payments)
	{
		/* small regions are used up: larger ones, slower to solve, reach further */
		d->size += d->size / 4 + 1;
		d->fails = 0;
	}
}

/*
 * The rounds, GLPK wrapped: its terminal output to the caller's log, its
 * errors back here through the jump buffer (its whole environment freed,
 * the best selection so far kept: every kept one passed the exact check).
 */
static void
search(Deep *d, SolverDeepStats *st, SolverResult *result)
{
	const SolverProblem *problem = d->p;
	int			round;

	glp_term_hook(deep_term_hook, (void *) problem);
	glp_term_out(problem->log ? GLP_ON : GLP_OFF);
	glp_error_hook(deep_error_hook, d);
	if (setjmp(d->jump) != 0)
	{
		d->lp = NULL;
		glp_free_env();
		snprintf(result->message, sizeof(result->message), "deep pass: GLPK internal error; best so far kept");
		if (problem->log)
			problem->log(problem->log_arg, result->message);
	}
	else
	{
		for (round = 0; round < d->lim->rounds && d->lim->region_payments > 0; round++)
		{
			if (deep_out_of_time(d))
			{
				st->out_of_time = !d->stop;
				break;
			}
			one_round(d, st);
		}
	}
	glp_error_hook(NULL, NULL);
	glp_term_hook(NULL, NULL);
}

/* See solver_deep.h. */
SolverStatus
settle_solve_deep(const SolverProblem *problem, const bool *start, const SolverDeepLimits *limits,
				  SolverResult *result, SolverDeepStats *stats)
{
	double		t0 = settle_solver_now_ms();
	Deep	   *d = calloc(1, sizeof(Deep));
	SolverDeepStats local;
	SolverDeepStats *st = stats ? stats : &local;
	int			i;

	memset(st, 0, sizeof(*st));
	if (d == NULL)
	{
		memset(result->settle, 0, sizeof(bool) * (problem->n_payments > 0 ? problem->n_payments : 0));
		snprintf(result->message, sizeof(result->message), "out of memory");
		return result->status = SOLVER_ERROR;
	}
	/* the start: the caller's selection if it passes the exact check, else the real-time solve */
	if (start == NULL || problem->n_payments <= 0 || settle_check_selection(problem, start) >= 0)
	{
		settle_solve(problem, result);
		if (result->status == SOLVER_ERROR || result->status == SOLVER_INTERRUPTED)
		{
			free(d);
			return result->status;
		}
	}
	else
	{
		memcpy(result->settle, start, sizeof(bool) * problem->n_payments);
		result->status = SOLVER_FEASIBLE;
		result->lp_bound = -1;
		result->lp_weight_bound = -1;
		result->components = 0;
		result->mip_components = 0;
		result->message[0] = '\0';
	}
	d->p = problem;
	d->lim = limits;
	d->rng = limits->seed ^ 0x9e3779b97f4a7c15ULL;
	d->deadline_ms = limits->time_limit_ms > 0 ? t0 + limits->time_limit_ms : 0;
	if (!deep_alloc(d))
	{
		deep_free(d);
		free(d);
		snprintf(result->message, sizeof(result->message), "deep pass: out of memory; start kept");
		goto done;
	}
	memcpy(d->best, result->settle, sizeof(bool) * problem->n_payments);
	d->size = limits->region_payments;
	d->best_obj = settle_selection_objective(problem, d->best);
	st->start_objective = d->best_obj;

	search(d, st, result);
	memcpy(result->settle, d->best, sizeof(bool) * problem->n_payments);
	deep_free(d);
	free(d);
done:
	if (settle_check_selection(problem, result->settle) >= 0)
	{
		/* cannot happen: the start and every kept answer passed it */
		memset(result->settle, 0, sizeof(bool) * problem->n_payments);
		snprintf(result->message, sizeof(result->message), "selection failed the exact limit check");
		return result->status = SOLVER_ERROR;
	}
	result->objective = settle_selection_objective(problem, result->settle);
	result->settled_weight = 0;
	for (i = 0; i < problem->n_payments; i++)
		if (result->settle[i])
			result->settled_weight += problem->payments[i].penalty;
	if (st->improved > 0)
		result->status = SOLVER_FEASIBLE;
	snprintf(result->method, sizeof(result->method), "deep (%d of %d regions improved)",
			 st->improved, st->rounds);
	result->solve_ms = settle_solver_now_ms() - t0;
	return result->status;
}
