/*
 * solver_glpk.c -- one component's model in GLPK: its LP relaxation (L)
 * or its MIP (M).
 *
 * Columns: x_i per payment, then y_w per wire with a fee, then z_k per FX
 * pair with a spread (free wires and pairs get none).  Rows: one per
 * constrained account, scaled to unit size; wire links (aggregated per wire
 * for the LP, one per payment and end for the MIP); two per FX pair; one
 * per linked payment after its group's first, x_i = x_first.  The
 * LP is solved by the dual simplex, or by sifting for large components,
 * with the payments probing showed cannot settle fixed at 0 (and again
 * without them when the caller wants liquidity prices); the MIP starts
 * from the best selection so far.  docs/ALGORITHM.md, steps 4 and 6.
 * GLPK errors longjmp back to settle_solve (solver.c), which frees
 * GLPK's environment: every array used here lives in the Work.
 * Plain C11, no PostgreSQL headers (solver_int.h).
 */
#include <limits.h>
#include <stdlib.h>

#include "solver_int.h"

/* Components of at least this many payments get their LP by sifting. */
#define SIFT_MIN 2000
/* An LP value at least this is a settled payment when rounding down. */
#define LP_ROUND (1.0 - 1e-7)

/*
 * w->local numbers the model: x columns by payment, then y columns by
 * wire, z columns by FX pair, account rows by account (< 0: not yet
 * numbered; 0: none or done).
 */
#define WIRE_COL(w, wi)	((w)->local[(w)->p->n_payments + (wi)])
#define FX_COL(w, k)	((w)->local[(w)->p->n_payments + (w)->p->n_wires + (k)])
#define ACC_ROW(w, a)	((w)->local[(w)->p->n_payments + (w)->p->n_wires + (w)->p->n_fx_pairs + (a)])

/* The model being built for one component. */
typedef struct Model
{
	const int  *members;		/* the component's payments; x_j is column j + 1 */
	int			n;
	bool		mip;			/* binary x and y, strong wire links */
	int			ncols;
	int			n_fx;			/* z columns */
	glp_prob   *lp;
} Model;

/* What the MIP callback needs. */
typedef struct MipInfo
{
	Work	   *w;
	const Model *m;
	const bool *incumbent;
} MipInfo;

static void number_columns(Work *w, Model *m);
static void add_columns(Work *w, Model *m);
static int	number_accounts(Work *w, const Model *m);
static void add_account_rows(Work *w, const Model *m);
static void add_wire_links(Work *w, const Model *m);
static void add_wire_rows(Work *w, const Model *m);
static void add_fx_rows(Work *w, const Model *m);
static void add_group_rows(Work *w, const Model *m);
static bool resolve(Work *w, glp_prob *lp, glp_smcp *smcp);
static bool sift(Work *w, const Model *m, const bool *guess, glp_smcp *smcp);
static bool solve_relaxation(Work *w, const Model *m, const bool *guess);
static bool solve_plain_for_prices(Work *w, const Model *m);
static void incumbent_point(Work *w, const MipInfo *mi, double *x, int ncols);
static void mip_callback(glp_tree *tree, void *info);
static bool solve_mip(Work *w, const Model *m, const bool *incumbent, bool *out, bool *proved);

/* Number the component's columns: x, then costly wires (y), then costly FX pairs (z). */
static void
number_columns(Work *w, Model *m)
{
	const SolverProblem *p = w->p;
	int			j;
	int			end;

	for (j = 0; j < m->n; j++)
	{
		const SolverPayment *s = &p->payments[m->members[j]];

		for (end = 0; end < 2; end++)
			if (payment_wire(s, end) >= 0)
				WIRE_COL(w, payment_wire(s, end)) = -1;	/* not numbered yet */
		if (s->fx_pair >= 0)
			FX_COL(w, s->fx_pair) = -1;
	}
	m->ncols = m->n;
	for (j = 0; j < m->n; j++)
	{
		const SolverPayment *s = &p->payments[m->members[j]];

		w->local[m->members[j]] = j + 1;
		for (end = 0; end < 2; end++)
		{
			int			wi = payment_wire(s, end);

			if (wi >= 0 && p->wire_fee[wi] > 0 && WIRE_COL(w, wi) < 0)
				WIRE_COL(w, wi) = ++m->ncols;
		}
	}
	m->n_fx = 0;
	for (j = 0; j < m->n; j++)
	{
		const SolverPayment *s = &p->payments[m->members[j]];

		if (s->fx_pair >= 0 && p->fx_spread[s->fx_pair] > 0 && FX_COL(w, s->fx_pair) < 0)
		{
			FX_COL(w, s->fx_pair) = ++m->ncols;
			m->n_fx++;
		}
	}
}

/* Create the problem and its columns: bounds, kinds and objective. */
static void
add_columns(Work *w, Model *m)
{
	const SolverProblem *p = w->p;
	double		constant = 0;
	int			j;
	int			end;

	/* a model left by a component whose solve failed is freed, not overwritten */
	if (w->lp)
		glp_delete_prob(w->lp);
	w->lp = m->lp = glp_create_prob();
	glp_set_obj_dir(m->lp, GLP_MIN);
	glp_add_cols(m->lp, m->ncols);
	for (j = 0; j < m->n; j++)
	{
		const SolverPayment *s = &p->payments[m->members[j]];

		/* a payment that no selection settles (probing) is 0 in the relaxation too */
		if (!m->mip && w->never[m->members[j]])
			glp_set_col_bnds(m->lp, j + 1, GLP_FX, 0.0, 0.0);
		else
			glp_set_col_bnds(m->lp, j + 1, GLP_DB, 0.0, 1.0);
		glp_set_obj_coef(m->lp, j + 1, -s->penalty);
		constant += s->penalty;
		if (m->mip)
			glp_set_col_kind(m->lp, j + 1, GLP_BV);
	}
	/* the constant keeps the objective >= 0, so the relative gap means something */
	glp_set_obj_coef(m->lp, 0, constant);
	for (j = 0; j < m->n; j++)
	{
		const SolverPayment *s = &p->payments[m->members[j]];

		for (end = 0; end < 2; end++)
		{
			int			wi = payment_wire(s, end);

			if (wi < 0 || p->wire_fee[wi] <= 0)
				continue;
			glp_set_col_bnds(m->lp, WIRE_COL(w, wi), GLP_DB, 0.0, 1.0);
			glp_set_obj_coef(m->lp, WIRE_COL(w, wi), p->wire_fee[wi]);
			if (m->mip)
				glp_set_col_kind(m->lp, WIRE_COL(w, wi), GLP_BV);
		}
		if (s->fx_pair >= 0 && p->fx_spread[s->fx_pair] > 0)
		{
			int			c = FX_COL(w, s->fx_pair);

			glp_set_col_bnds(m->lp, c, GLP_LO, 0.0, 0.0);
			glp_set_obj_coef(m->lp, c, p->fx_spread[s->fx_pair]);
		}
	}
}

/*
 * Number the component's constrained accounts (their rows, 1-based) and
 * put their entries in CSR in w->ar_* (preallocated: nothing to free if
 * GLPK fails): per payment, -debit in the payer's row and +credit in the
 * payee's, one entry credit - debit for a payment to itself.  Returns the
 * number of rows.
 */
static int
number_accounts(Work *w, const Model *m)
{
	const SolverProblem *p = w->p;
	int		   *start = w->ar_start;
	int		   *fill = w->ar_fill;
	int			n_acc = 0;
	int			j;
	int			r;

	for (j = 0; j < m->n; j++)
	{
		const SolverPayment *s = &p->payments[m->members[j]];

		ACC_ROW(w, s->src) = -1;
		ACC_ROW(w, s->dst) = -1;
	}
	for (j = 0; j < m->n; j++)
	{
		const SolverPayment *s = &p->payments[m->members[j]];

		if (p->accounts[s->src].constrained && ACC_ROW(w, s->src) < 0)
			ACC_ROW(w, s->src) = ++n_acc;
		if (p->accounts[s->dst].constrained && ACC_ROW(w, s->dst) < 0)
			ACC_ROW(w, s->dst) = ++n_acc;
	}
	if (n_acc == 0)
		return 0;
	for (r = 0; r <= n_acc + 1; r++)
	{
		start[r] = 0;
		w->ar_scale[r] = 0;
	}
	for (j = 0; j < m->n; j++)
	{
		const SolverPayment *s = &p->payments[m->members[j]];

		if (ACC_ROW(w, s->src) > 0)
			start[ACC_ROW(w, s->src) + 1]++;
		if (ACC_ROW(w, s->dst) > 0 && s->dst != s->src)
			start[ACC_ROW(w, s->dst) + 1]++;
	}
	for (r = 1; r <= n_acc + 1; r++)
		start[r] += start[r - 1];
	for (r = 0; r <= n_acc; r++)
		fill[r] = start[r] + 1; /* GLPK arrays are 1-based */
	for (j = 0; j < m->n; j++)
	{
		const SolverPayment *s = &p->payments[m->members[j]];
		int			rs = ACC_ROW(w, s->src);
		int			rd = ACC_ROW(w, s->dst);

		if (s->src == s->dst)
		{
			if (rs > 0)
			{
				w->ar_idx[fill[rs]] = j + 1;
				w->ar_val[fill[rs]++] = (double) s->credit - (double) s->debit;
			}
			continue;
		}
		if (rs > 0)
		{
			w->ar_idx[fill[rs]] = j + 1;
			w->ar_val[fill[rs]++] = -(double) s->debit;
		}
		if (rd > 0)
		{
			w->ar_idx[fill[rd]] = j + 1;
			w->ar_val[fill[rd]++] = (double) s->credit;
		}
	}
	return n_acc;
}

/*
 * Account rows: available + credits - debits >= 0, each divided by its
 * largest coefficient (amounts reach 1e15, GLPK wants rows near unit size).
 */
static void
add_account_rows(Work *w, const Model *m)
{
	const SolverProblem *p = w->p;
	int			n_acc = number_accounts(w, m);
	const int  *start = w->ar_start;
	double	   *scale = w->ar_scale;
	int			row;
	int			r;
	int			j;
	int			end;

	if (n_acc == 0)
		return;
	row = glp_add_rows(m->lp, n_acc);
	for (r = 1; r <= n_acc; r++)
	{
		int			t;

		for (t = start[r] + 1; t <= start[r + 1]; t++)
			if (fabs(w->ar_val[t]) > scale[r])
				scale[r] = fabs(w->ar_val[t]);
		if (scale[r] == 0)
			scale[r] = 1;
		for (t = start[r] + 1; t <= start[r + 1]; t++)
			w->ar_val[t] /= scale[r];
		/* GLPK reads entries 1..len of the arrays it is given */
		glp_set_mat_row(m->lp, row + r - 1, start[r + 1] - start[r],
						w->ar_idx + start[r], w->ar_val + start[r]);
	}
	for (j = 0; j < m->n; j++)
	{
		const SolverPayment *s = &p->payments[m->members[j]];

		for (end = 0; end < 2; end++)
		{
			int			a = payment_account(s, end);
			int			r2 = ACC_ROW(w, a);

			if (r2 <= 0)
				continue;
			glp_set_row_bnds(m->lp, row + r2 - 1, GLP_LO,
							 -(double) (p->accounts[a].available > 0 ? p->accounts[a].available : 0) / scale[r2], 0.0);
			ACC_ROW(w, a) = 0;	/* done */
		}
	}
}

/* MIP wire links: x_i <= y_w for each end of each payment on a costly wire. */
static void
add_wire_links(Work *w, const Model *m)
{
	const SolverProblem *p = w->p;
	int			j;
	int			end;

	for (j = 0; j < m->n; j++)
	{
		const SolverPayment *s = &p->payments[m->members[j]];

		for (end = 0; end < 2; end++)
		{
			int			wi = payment_wire(s, end);
			int			row;

			if (wi < 0 || p->wire_fee[wi] <= 0)
				continue;
			row = glp_add_rows(m->lp, 1);
			w->idx[1] = j + 1;
			w->val[1] = 1.0;
			w->idx[2] = WIRE_COL(w, wi);
			w->val[2] = -1.0;
			glp_set_row_bnds(m->lp, row, GLP_UP, 0.0, 0.0);
			glp_set_mat_row(m->lp, row, 2, w->idx, w->val);
		}
	}
}

/*
 * LP wire rows, aggregated to keep the LP small: sum of x_i over the
 * wire's payments <= count * y_w, one row per costly wire.  The wire's
 * payments are listed in CSR first (w->wire_*; wire_use holds the counts).
 */
static void
add_wire_rows(Work *w, const Model *m)
{
	const SolverProblem *p = w->p;
	int		   *start = w->wire_start;
	int		   *fill = w->wire_fill;
	int			off = 0;
	int			j;
	int			end;

	for (j = 0; j < m->n; j++)
	{
		const SolverPayment *s = &p->payments[m->members[j]];

		for (end = 0; end < 2; end++)
		{
			int			wi = payment_wire(s, end);

			if (wi >= 0)
			{
				w->wire_use[wi] = 0;
				start[wi] = -1;
			}
		}
	}
	for (j = 0; j < m->n; j++)
	{
		const SolverPayment *s = &p->payments[m->members[j]];

		if (s->wire_src >= 0)
			w->wire_use[s->wire_src]++;
		if (s->wire_dst >= 0 && s->wire_dst != s->wire_src)
			w->wire_use[s->wire_dst]++;
	}
	for (j = 0; j < m->n; j++)
		for (end = 0; end < 2; end++)
		{
			int			wi = payment_wire(&p->payments[m->members[j]], end);

			if (wi >= 0 && p->wire_fee[wi] > 0 && start[wi] < 0)
			{
				start[wi] = fill[wi] = off;
				off += w->wire_use[wi];
			}
		}
	for (j = 0; j < m->n; j++)
	{
		const SolverPayment *s = &p->payments[m->members[j]];

		if (s->wire_src >= 0 && p->wire_fee[s->wire_src] > 0)
			w->wire_list[fill[s->wire_src]++] = j + 1;
		if (s->wire_dst >= 0 && s->wire_dst != s->wire_src && p->wire_fee[s->wire_dst] > 0)
			w->wire_list[fill[s->wire_dst]++] = j + 1;
	}
	for (j = 0; j < m->n; j++)
		for (end = 0; end < 2; end++)
		{
			int			wi = payment_wire(&p->payments[m->members[j]], end);
			int			len = 0;
			int			t;
			int			row;

			/* each costly wire once (start < 0 marks it done) */
			if (wi < 0 || p->wire_fee[wi] <= 0 || start[wi] < 0)
				continue;
			for (t = start[wi]; t < fill[wi]; t++)
			{
				len++;
				w->idx[len] = w->wire_list[t];
				w->val[len] = 1.0;
			}
			len++;
			w->idx[len] = WIRE_COL(w, wi);
			w->val[len] = -(double) w->wire_use[wi];
			row = glp_add_rows(m->lp, 1);
			glp_set_row_bnds(m->lp, row, GLP_UP, 0.0, 0.0);
			glp_set_mat_row(m->lp, row, len, w->idx, w->val);
			start[wi] = -1;
		}
}

/* FX rows: z_k >= +net and z_k >= -net, for each costly pair. */
static void
add_fx_rows(Work *w, const Model *m)
{
	const SolverProblem *p = w->p;
	int			q;
	int			j;

	for (q = 0; q < m->n; q++)
		if (p->payments[m->members[q]].fx_pair >= 0)
			w->fx_net[p->payments[m->members[q]].fx_pair] = 0;
	for (q = 0; q < m->n; q++)
	{
		int			k = p->payments[m->members[q]].fx_pair;
		int			sign;

		/* each costly pair once (NAN marks it done) */
		if (k < 0 || p->fx_spread[k] <= 0 || isnan(w->fx_net[k]))
			continue;
		w->fx_net[k] = NAN;
		for (sign = -1; sign <= 1; sign += 2)
		{
			int			len = 0;
			int			row;

			for (j = 0; j < m->n; j++)
			{
				const SolverPayment *s = &p->payments[m->members[j]];

				if (s->fx_pair == k)
				{
					len++;
					w->idx[len] = j + 1;
					w->val[len] = sign * s->fx_value;
				}
			}
			len++;
			w->idx[len] = FX_COL(w, k);
			w->val[len] = 1.0;
			row = glp_add_rows(m->lp, 1);
			glp_set_row_bnds(m->lp, row, GLP_LO, 0.0, 0.0);
			glp_set_mat_row(m->lp, row, len, w->idx, w->val);
		}
	}
}

/*
 * Linked groups (issue #27): x_i = x_first for every member i of a group
 * but its first, so the relaxation and the MIP hold all or nothing (in the
 * LP a group settles the same fraction of every member).
 */
static void
add_group_rows(Work *w, const Model *m)
{
	int			j;

	for (j = 0; j < m->n; j++)
	{
		int			i = m->members[j];
		int			row;

		if (!is_linked(w, i) || w->unit_rep[i] == i)
			continue;
		row = glp_add_rows(m->lp, 1);
		w->idx[1] = j + 1;
		w->val[1] = 1.0;
		w->idx[2] = w->local[w->unit_rep[i]];
		w->val[2] = -1.0;
		glp_set_row_bnds(m->lp, row, GLP_FX, 0.0, 0.0);
		glp_set_mat_row(m->lp, row, 2, w->idx, w->val);
	}
}

/* Re-solve the LP after a bound change; true if it is optimal. */
static bool
resolve(Work *w, glp_prob *lp, glp_smcp *smcp)
{
	double		remaining = w->deadline_ms > 0 ? w->deadline_ms - settle_solver_now_ms() : -1;

	if (w->deadline_ms > 0 && remaining < 1)
		return false;
	smcp->tm_lim = remaining > 0 ? (int) (0.75 * remaining) + 1 : INT_MAX;
	return glp_simplex(lp, smcp) == 0 && glp_get_status(lp) == GLP_OPT;
}

/*
 * Solve the LP relaxation by sifting, for large components.  Every x starts
 * fixed at the heuristic's feasible selection (so the restricted LP is
 * feasible); after each solve, the fixed x whose reduced cost says the
 * objective would fall if it moved off its bound are freed, and the LP is
 * re-solved from the current basis (primal simplex: the basis stays primal
 * feasible).  GLPK leaves fixed non-basic columns out of its working
 * problem, so each solve only sees the payments in play.  When no fixed
 * column prices out, the solution is optimal for the full LP.
 */
static bool
sift(Work *w, const Model *m, const bool *guess, glp_smcp *smcp)
{
	glp_prob   *lp = m->lp;
	int			j;
	int			round;

	for (j = 0; j < m->n; j++)
	{
		double		g = guess[m->members[j]] ? 1.0 : 0.0;

		glp_set_col_bnds(lp, j + 1, GLP_FX, g, g);
	}
	smcp->meth = GLP_PRIMAL;
	/* GLPK's primal reads uninitialised memory with the long-step test (valgrind) */
	smcp->r_test = GLP_RT_HAR;
	for (round = 0; round < 1000; round++)
	{
		int			freed = 0;

		if (settle_solver_stop_requested(w) || !resolve(w, lp, smcp))
			return false;
		for (j = 1; j <= m->n; j++)
		{
			double		d,
						tol;

			if (glp_get_col_type(lp, j) != GLP_FX || w->never[m->members[j - 1]])
				continue;
			d = glp_get_col_dual(lp, j);
			tol = 1e-9 * (1.0 + fabs(glp_get_obj_coef(lp, j)));
			if (glp_get_col_prim(lp, j) < 0.5 ? d < -tol : d > tol)
			{
				glp_set_col_bnds(lp, j, GLP_DB, 0.0, 1.0);
				freed++;
			}
		}
		if (freed == 0)
			return true;
	}
	return false;
}

/*
 * Scale and solve the LP relaxation: the dual simplex, or sifting from
 * guess for large components; true if it is optimal in time.
 */
static bool
solve_relaxation(Work *w, const Model *m, const bool *guess)
{
	bool		sifted = !m->mip && guess && m->n >= SIFT_MIN;
	double		remaining;
	glp_smcp	smcp;

	if (settle_solver_fault_injection == 1)
	{
		/* tests only: an invalid call, so that GLPK's error path runs */
		w->idx[1] = w->idx[2] = 1;
		w->val[1] = w->val[2] = 1.0;
		glp_set_mat_row(m->lp, 1, 2, w->idx, w->val);	/* duplicate index */
	}
	if (settle_solver_out_of_time(w))
		return false;
	/* full scaling is too slow for the largest components: equilibration suffices */
	glp_scale_prob(m->lp, sifted ? GLP_SF_EQ : GLP_SF_AUTO);
	remaining = w->deadline_ms > 0 ? w->deadline_ms - settle_solver_now_ms() : -1;
	if (w->deadline_ms > 0 && remaining < 1)
		return false;
	glp_init_smcp(&smcp);
	smcp.msg_lev = GLP_MSG_OFF;
	smcp.presolve = GLP_OFF;
	/* few rows, many columns: the dual simplex */
	smcp.meth = GLP_DUALP;
	/* every x is boxed in [0, 1]: one long step can flip many to their other bound */
	smcp.r_test = GLP_RT_FLIP;
	/* GLPK looks at the clock between iterations only: leave it a margin */
	if (remaining > 0)
		smcp.tm_lim = (int) (0.75 * remaining) + 1;
	if (sifted)
		return sift(w, m, guess, &smcp);
	return glp_simplex(m->lp, &smcp) == 0 && glp_get_status(m->lp) == GLP_OPT;
}

/*
 * The relaxation solved for the search is the probed one: every payment
 * that no selection can settle (w->never, settle_solver_probe) fixed at 0.  Its
 * bound is tighter (at 1,000 payments on the reference workload about 11%
 * higher) and its roundings and prices lead the local search to better
 * selections.  The prices the cycle records (issue #21) are those of the
 * plain relaxation: in the probed one a little more liquidity could not
 * unfix anything, so its prices would not say what liquidity is worth.
 * When the caller wants prices, the fixed payments are freed and the LP
 * solved again from the probed optimum (the primal simplex: the basis
 * stays primal feasible).  True if optimal in time.
 */
static bool
solve_plain_for_prices(Work *w, const Model *m)
{
	glp_smcp	smcp;
	int			freed = 0;
	int			j;

	for (j = 0; j < m->n; j++)
		if (w->never[m->members[j]])
		{
			glp_set_col_bnds(m->lp, j + 1, GLP_DB, 0.0, 1.0);
			freed++;
		}
	if (freed == 0)
		return true;
	glp_init_smcp(&smcp);
	smcp.msg_lev = GLP_MSG_OFF;
	smcp.presolve = GLP_OFF;
	smcp.meth = GLP_PRIMAL;
	/* GLPK's primal reads uninitialised memory with the long-step test (valgrind) */
	smcp.r_test = GLP_RT_HAR;
	return resolve(w, m->lp, &smcp);
}

/*
 * The incumbent as a point of the model, into x[0 .. ncols]: its x, and the
 * smallest y and z it allows (a costly wire it uses at 1, each costly
 * pair's z at the absolute net volume).
 */
static void
incumbent_point(Work *w, const MipInfo *mi, double *x, int ncols)
{
	const SolverProblem *p = w->p;
	const Model *m = mi->m;
	int			j;
	int			end;
	int			k;

	for (j = 0; j <= ncols; j++)
		x[j] = 0;
	for (j = 0; j < m->n; j++)
		x[j + 1] = mi->incumbent[m->members[j]] ? 1.0 : 0.0;
	for (j = 0; j < m->n; j++)
	{
		const SolverPayment *s = &p->payments[m->members[j]];

		if (!mi->incumbent[m->members[j]])
			continue;
		for (end = 0; end < 2; end++)
		{
			int			wi = payment_wire(s, end);

			if (wi >= 0 && p->wire_fee[wi] > 0)
				x[WIRE_COL(w, wi)] = 1.0;
		}
	}
	for (k = 0; k < p->n_fx_pairs; k++)
		w->fx_net[k] = 0;
	for (j = 0; j < m->n; j++)
	{
		const SolverPayment *s = &p->payments[m->members[j]];

		if (mi->incumbent[m->members[j]] && s->fx_pair >= 0)
			w->fx_net[s->fx_pair] += s->fx_value;
	}
	for (j = 0; j < m->n; j++)
	{
		const SolverPayment *s = &p->payments[m->members[j]];

		if (s->fx_pair >= 0 && p->fx_spread[s->fx_pair] > 0)
			x[FX_COL(w, s->fx_pair)] = fabs(w->fx_net[s->fx_pair]);
	}
}

/* MIP callback: stop when interrupted or out of time; offer the incumbent. */
static void
mip_callback(glp_tree *tree, void *info)
{
	MipInfo    *mi = info;
	Work	   *w = mi->w;
	int			ncols;

	if (settle_solver_stop_requested(w) || settle_solver_out_of_time(w))
	{
		glp_ios_terminate(tree);
		return;
	}
	if (glp_ios_reason(tree) != GLP_IHEUR || !mi->incumbent || glp_ios_curr_node(tree) != 1)
		return;
	/* only for the problem we built (no MIP presolve: same columns) */
	ncols = glp_get_num_cols(glp_ios_get_prob(tree));
	if (w->mip_x == NULL || ncols != mi->m->ncols)
		return;
	incumbent_point(w, mi, w->mip_x, ncols);
	glp_ios_heur_sol(tree, w->mip_x);
}

/*
 * Branch and bound from the solved relaxation, within the time left and
 * the MIP gap; out gets the MIP's selection, proved whether it is optimal.
 */
static bool
solve_mip(Work *w, const Model *m, const bool *incumbent, bool *out, bool *proved)
{
	double		remaining = w->deadline_ms > 0 ? w->deadline_ms - settle_solver_now_ms() : -1;
	glp_iocp	iocp;
	MipInfo		mi;
	int			ret;
	int			j;

	if (w->deadline_ms > 0 && remaining < 1)
		return false;
	glp_init_iocp(&iocp);
	iocp.msg_lev = GLP_MSG_OFF;
	iocp.mip_gap = w->p->mip_gap;
	if (remaining > 0)
		iocp.tm_lim = (int) remaining;
	mi.w = w;
	mi.m = m;
	mi.incumbent = incumbent;
	free(w->mip_x);
	w->mip_x = calloc(m->ncols + 1, sizeof(double));	/* freed by settle_solver_free_work */
	iocp.cb_func = mip_callback;
	iocp.cb_info = &mi;
	ret = glp_intopt(m->lp, &iocp);
	if (glp_mip_status(m->lp) != GLP_OPT && glp_mip_status(m->lp) != GLP_FEAS)
		return false;
	for (j = 0; j < m->n; j++)
		out[m->members[j]] = glp_mip_col_val(m->lp, j + 1) > 0.5;
	*proved = (ret == 0 && glp_mip_status(m->lp) == GLP_OPT);
	return true;
}

/*
 * Build the component's model and solve its LP relaxation, then the MIP if
 * mip.  On success out holds the LP rounded down (or the MIP's selection),
 * lp_obj and lp_weight the LP's objective and settled penalty weight,
 * w->lpx its x; false if GLPK gave nothing usable (in time).
 */
bool
settle_solver_solve_model(Work *w, const int *members, int n, bool mip, const bool *incumbent,
				   const bool *guess, bool *out, double *lp_obj, double *lp_weight,
				   bool *proved)
{
	const SolverProblem *p = w->p;
	Model		m = {.members = members, .n = n, .mip = mip};
	int			j;

	*proved = false;
	number_columns(w, &m);
	add_columns(w, &m);
	add_account_rows(w, &m);
	if (mip)
		add_wire_links(w, &m);
	else
		add_wire_rows(w, &m);
	if (m.n_fx > 0)
		add_fx_rows(w, &m);
	if (w->next_member)
		add_group_rows(w, &m);
	if (!solve_relaxation(w, &m, guess))
		return false;
	/* the probed relaxation's prices and reduced costs, for the search (solver_duals.c) */
	if (!mip)
		settle_solver_record_duals(w, m.lp, members, n, false);
	*lp_obj = glp_get_obj_val(m.lp);
	*lp_weight = 0;
	for (j = 0; j < n; j++)
		*lp_weight += p->payments[members[j]].penalty * glp_get_col_prim(m.lp, j + 1);
	for (j = 0; j < n; j++)
	{
		w->lpx[members[j]] = glp_get_col_prim(m.lp, j + 1);
		out[members[j]] = w->lpx[members[j]] >= LP_ROUND;
	}
	/* issue #21: the plain relaxation's price of each account's liquidity, if wanted */
	if (!mip && p->account_price && solve_plain_for_prices(w, &m))
		settle_solver_record_duals(w, m.lp, members, n, true);
	if (mip && !solve_mip(w, &m, incumbent, out, proved))
		return false;
	glp_delete_prob(m.lp);
	w->lp = NULL;
	return true;
}
