/*
 * solver_model.c -- the reference workload's instances (workload.h) as a MIP
 * in MPS format, for an independent exact solver (CBC, make bench), and the
 * exact check of the selection that solver returns.
 *
 * The model is docs/ALGORITHM.md's formulation, built here independently of
 * src/solver_glpk.c (which aggregates wire links in its LP and scales rows):
 *
 *   min  sum_i pi_i (1 - x_i) + sum_w f_w y_w + sum_k sigma_k z_k
 *   s.t. sum_{t_i = a} c_i x_i - sum_{s_i = a} d_i x_i >= min(0, L_a) - L_a
 *                                          (every constrained account a)
 *        x_i <= y_w           (each end of each payment on a wire with a fee)
 *        z_k - sum v_i x_i >= 0,  z_k + sum v_i x_i >= 0   (pairs with a spread)
 *        x, y binary, z >= 0
 *
 * Columns are named x<payment>, y<wire>, z<pair> (0-based).  The constant
 * sum_i pi_i is left out of the MPS objective (readers differ on objective
 * constants) and printed instead: objective = constant + MPS objective.
 * Account rows keep their exact integer coefficients (minor units).
 *
 * Usage:
 *   solver_model write N LIQUIDITY on|off SEED FILE.mps [START]
 *       writes the model; prints "constant=... payments=... accounts=..."; with
 *       START also writes settle's selection (settle_solve, 5,000 ms) as a
 *       CBC mipstart file (a header line, then "index name value" lines)
 *   solver_model eval N LIQUIDITY on|off SEED SOLUTION
 *       reads a CBC solution file (solu: "index name value reduced" lines,
 *       nonzero columns only) and prints, in exact integer arithmetic for
 *       the limits, "feasible=yes|no violated=<account or -1> objective=...
 *       weight=... settled=..."
 */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glpk.h>

#include "solver.h"
#include "workload.h"

/* The model's objective of a selection (as settle_solver_objective: each wire's fee once). */
static double
objective_of(const SolverProblem *p, const bool *sel, double *weight)
{
	int		   *used = calloc(p->n_wires + 1, sizeof(int));
	double	   *net = calloc(p->n_fx_pairs + 1, sizeof(double));
	double		cost = 0;
	int			i;

	*weight = 0;
	for (i = 0; i < p->n_payments; i++)
	{
		const SolverPayment *s = &p->payments[i];

		if (!sel[i])
		{
			cost += s->penalty;
			continue;
		}
		*weight += s->penalty;
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

static void
write_model(const SolverProblem *p, const char *file)
{
	glp_prob   *lp = glp_create_prob();
	int			n = p->n_payments;
	int		   *ycol = calloc(p->n_wires + 1, sizeof(int));
	int		   *zcol = calloc(p->n_fx_pairs + 1, sizeof(int));
	int		   *ia = NULL;
	int		   *ja = NULL;
	double	   *ar = NULL;
	int			cap = 8 * n + 16;
	int			ne = 0;
	int			ncols = n;
	int			row;
	int			i,
				a,
				k,
				end;
	double		constant = 0;
	char		name[32];

	ia = malloc(sizeof(int) * (cap + 1));
	ja = malloc(sizeof(int) * (cap + 1));
	ar = malloc(sizeof(double) * (cap + 1));
	if (!ycol || !zcol || !ia || !ja || !ar)
	{
		fprintf(stderr, "out of memory\n");
		exit(1);
	}
	glp_set_prob_name(lp, "settle");
	glp_set_obj_name(lp, "cost");
	glp_set_obj_dir(lp, GLP_MIN);
	for (i = 0; i < p->n_wires; i++)
		if (p->wire_fee[i] > 0)
			ycol[i] = ++ncols;
	for (k = 0; k < p->n_fx_pairs; k++)
		if (p->fx_spread[k] > 0)
			zcol[k] = ++ncols;
	glp_add_cols(lp, ncols);
	for (i = 0; i < n; i++)
	{
		snprintf(name, sizeof(name), "x%d", i);
		glp_set_col_name(lp, i + 1, name);
		glp_set_col_kind(lp, i + 1, GLP_BV);
		glp_set_obj_coef(lp, i + 1, -p->payments[i].penalty);
		constant += p->payments[i].penalty;
	}
	for (i = 0; i < p->n_wires; i++)
		if (ycol[i])
		{
			snprintf(name, sizeof(name), "y%d", i);
			glp_set_col_name(lp, ycol[i], name);
			glp_set_col_kind(lp, ycol[i], GLP_BV);
			glp_set_obj_coef(lp, ycol[i], p->wire_fee[i]);
		}
	for (k = 0; k < p->n_fx_pairs; k++)
		if (zcol[k])
		{
			snprintf(name, sizeof(name), "z%d", k);
			glp_set_col_name(lp, zcol[k], name);
			glp_set_col_bnds(lp, zcol[k], GLP_LO, 0, 0);
			glp_set_obj_coef(lp, zcol[k], p->fx_spread[k]);
		}
	/* account rows */
	for (a = 0; a < p->n_accounts; a++)
	{
		int64_t		L = p->accounts[a].available;
		int			first = ne;

		if (!p->accounts[a].constrained)
			continue;
		for (i = 0; i < n; i++)
		{
			const SolverPayment *s = &p->payments[i];
			double		v = 0;

			if (s->src == a)
				v -= (double) s->debit;
			if (s->dst == a)
				v += (double) s->credit;
			if ((s->src == a || s->dst == a) && v != 0)
			{
				ne++;
				ia[ne] = 0;		/* row set below */
				ja[ne] = i + 1;
				ar[ne] = v;
			}
		}
		if (ne == first)
			continue;
		row = glp_add_rows(lp, 1);
		snprintf(name, sizeof(name), "a%d", a);
		glp_set_row_name(lp, row, name);
		glp_set_row_bnds(lp, row, GLP_LO, (double) ((L < 0 ? L : 0) - L), 0);
		for (k = first + 1; k <= ne; k++)
			ia[k] = row;
	}
	/* wire links */
	for (i = 0; i < n; i++)
		for (end = 0; end < 2; end++)
		{
			const SolverPayment *s = &p->payments[i];
			int			wi = end == 0 ? s->wire_src : s->wire_dst;

			if (wi < 0 || !ycol[wi])
				continue;
			row = glp_add_rows(lp, 1);
			snprintf(name, sizeof(name), "w%d_%d", i, end);
			glp_set_row_name(lp, row, name);
			glp_set_row_bnds(lp, row, GLP_UP, 0, 0);
			ia[++ne] = row, ja[ne] = i + 1, ar[ne] = 1;
			ia[++ne] = row, ja[ne] = ycol[wi], ar[ne] = -1;
		}
	/* FX rows */
	for (k = 0; k < p->n_fx_pairs; k++)
	{
		int			sign;

		if (!zcol[k])
			continue;
		for (sign = -1; sign <= 1; sign += 2)
		{
			row = glp_add_rows(lp, 1);
			snprintf(name, sizeof(name), "f%d_%s", k, sign > 0 ? "p" : "m");
			glp_set_row_name(lp, row, name);
			glp_set_row_bnds(lp, row, GLP_LO, 0, 0);
			for (i = 0; i < n; i++)
				if (p->payments[i].fx_pair == k)
					ia[++ne] = row, ja[ne] = i + 1, ar[ne] = sign * p->payments[i].fx_value;
			ia[++ne] = row, ja[ne] = zcol[k], ar[ne] = 1;
		}
	}
	if (ne > cap)
	{
		fprintf(stderr, "internal: %d entries for %d\n", ne, cap);
		exit(1);
	}
	glp_load_matrix(lp, ne, ia, ja, ar);
	if (glp_write_mps(lp, GLP_MPS_FILE, NULL, file) != 0)
	{
		fprintf(stderr, "cannot write %s\n", file);
		exit(1);
	}
	printf("constant=%.6f payments=%d columns=%d rows=%d\n", constant, n, ncols, glp_get_num_rows(lp));
	glp_delete_prob(lp);
	free(ycol);
	free(zcol);
	free(ia);
	free(ja);
	free(ar);
}

/* settle's selection at 5,000 ms, as a CBC mipstart file. */
static void
write_start(const SolverProblem *p0, const char *file)
{
	SolverProblem p = *p0;
	SolverResult r;
	bool	   *sel = calloc(p.n_payments + 1, sizeof(bool));
	bool	   *wire = calloc(p.n_wires + 1, sizeof(bool));
	FILE	   *f = fopen(file, "w");
	int			i,
				k;

	if (!sel || !wire || !f)
	{
		fprintf(stderr, "cannot write %s\n", file);
		exit(1);
	}
	memset(&r, 0, sizeof(r));
	r.settle = sel;
	p.time_limit_ms = 5000;
	settle_solve(&p, &r);
	/* CBC reads "index name value" lines (its own solution format) and skips the first */
	fprintf(f, "Stopped on iterations - objective value %.6f\n", r.objective);
	for (i = 0; i < p.n_payments; i++)
	{
		fprintf(f, "%d x%d %d\n", i, i, sel[i] ? 1 : 0);
		if (sel[i] && p.payments[i].wire_src >= 0)
			wire[p.payments[i].wire_src] = true;
		if (sel[i] && p.payments[i].wire_dst >= 0)
			wire[p.payments[i].wire_dst] = true;
	}
	for (i = 0, k = p.n_payments; i < p.n_wires; i++)
		if (p.wire_fee[i] > 0)
			fprintf(f, "%d y%d %d\n", k++, i, wire[i] ? 1 : 0);
	fclose(f);
	printf("start_objective=%.6f\n", r.objective);
	free(sel);
	free(wire);
}

static void
eval_solution(const SolverProblem *p, const char *file)
{
	FILE	   *f = fopen(file, "r");
	bool	   *sel = calloc(p->n_payments + 1, sizeof(bool));
	char		line[512];
	int			settled = 0;
	int			bad;
	double		weight,
				obj;
	int			i;

	if (!f || !sel)
	{
		printf("feasible=no violated=-1 objective=nan weight=nan settled=0 (no solution file)\n");
		exit(0);
	}
	while (fgets(line, sizeof(line), f))
	{
		int			idx;
		char		name[64];
		double		val;

		/* "      12 x12    1    -3.5" (a "**" marks an infeasibility in some versions) */
		if (sscanf(line, " %d %63s %lf", &idx, name, &val) == 3 ||
			sscanf(line, " ** %d %63s %lf", &idx, name, &val) == 3)
		{
			int			j;

			if (name[0] == 'x' && sscanf(name + 1, "%d", &j) == 1 && j >= 0 && j < p->n_payments)
				sel[j] = val > 0.5;
		}
	}
	fclose(f);
	for (i = 0; i < p->n_payments; i++)
		settled += sel[i];
	bad = settle_check_selection(p, sel);
	obj = objective_of(p, sel, &weight);
	printf("feasible=%s violated=%d objective=%.6f weight=%.6f settled=%d\n",
		   bad < 0 ? "yes" : "no", bad, obj, weight, settled);
	free(sel);
}

int
main(int argc, char **argv)
{
	Workload	wl;
	int			n;
	double		liq;
	bool		costs;
	unsigned long long seed;

	if (argc < 7 || (strcmp(argv[1], "write") != 0 && strcmp(argv[1], "eval") != 0))
	{
		fprintf(stderr, "usage: solver_model write|eval N LIQUIDITY on|off SEED FILE [START]\n");
		return 2;
	}
	n = atoi(argv[2]);
	liq = atof(argv[3]);
	costs = strcmp(argv[4], "on") == 0;
	seed = strtoull(argv[5], NULL, 10);
	if (!workload_make_seeded(&wl, n, liq, costs, seed))
	{
		fprintf(stderr, "out of memory\n");
		return 1;
	}
	glp_term_out(GLP_OFF);
	if (strcmp(argv[1], "write") == 0)
	{
		write_model(&wl.p, argv[6]);
		if (argc > 7)
			write_start(&wl.p, argv[7]);
	}
	else
		eval_solution(&wl.p, argv[6]);
	workload_free(&wl);
	return 0;
}
