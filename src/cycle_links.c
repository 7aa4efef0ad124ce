/*
 * cycle_links.c -- linked payments in a cycle: all or nothing (issue #16,
 * item 10; docs/ALGORITHM.md "Linked payments").
 *
 * A group (src/sql/84_links.sql) is eligible once all of its link_size
 * members are queued; a cycle settles every member or none:
 *   before   members of a group that is not wholly in this cycle's queue (an
 *            incomplete group, a member held, beyond settle.max_cycle_payments
 *            or kept out by the range guard) wait;
 *   solving  each complete group is one unit of the solver's model (issue
 *            #27): settle_links_groups() numbers the groups for
 *            SolverProblem.group, and every stage of the solver selects or
 *            drops a group whole (src/solver_units.c), so a group that can
 *            never settle crowds nothing out; the cycle checks the result
 *            with settle_check_groups() before posting.
 * The cost is nil without linked payments in the cycle.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

#include "links.h"
#include "version.h"

int			settle_link_timeout_ms = 3600000;

/* The linked payments of a cycle, grouped. */
typedef struct LinkGroups
{
	int			n_groups;
	int		   *start;			/* n_groups + 1 offsets into member */
	int		   *member;			/* payment indexes, grouped */
	int		   *group_of;		/* per payment: its group, or -1 */
} LinkGroups;

static const CyclePayment *sort_payments;

static int
compare_by_group(const void *a, const void *b)
{
	const CyclePayment *x = &sort_payments[*(const int *) a];
	const CyclePayment *y = &sort_payments[*(const int *) b];
	int			c = strcmp(x->link_group, y->link_group);

	return c != 0 ? c : (*(const int *) a - *(const int *) b);
}

/* Group the linked payments of the cycle; false if there are none. */
static bool
build_groups(const CycleState *cs, LinkGroups *g)
{
	int			n = 0;
	int			i;

	g->group_of = palloc(sizeof(int) * Max(cs->n_payments, 1));
	g->member = palloc(sizeof(int) * Max(cs->n_payments, 1));
	for (i = 0; i < cs->n_payments; i++)
	{
		g->group_of[i] = -1;
		if (cs->payments[i].link_group != NULL)
			g->member[n++] = i;
	}
	g->start = palloc(sizeof(int) * (n + 1));
	g->n_groups = 0;
	if (n == 0)
		return false;
	sort_payments = cs->payments;
	qsort(g->member, n, sizeof(int), compare_by_group);
	for (i = 0; i < n; i++)
	{
		if (i == 0 || strcmp(cs->payments[g->member[i]].link_group,
							 cs->payments[g->member[i - 1]].link_group) != 0)
			g->start[g->n_groups++] = i;
		g->group_of[g->member[i]] = g->n_groups - 1;
	}
	g->start[g->n_groups] = n;
	return true;
}

void
settle_links_define_settings(void)
{
	DefineCustomIntVariable("settle.link_timeout",
							"How long a group of linked payments may wait for all of its members.",
							"A group still incomplete after this long expires with its members; 0 waits forever.",
							&settle_link_timeout_ms,
							3600000, 0, INT_MAX,
							PGC_SUSET, GUC_UNIT_MS, NULL, NULL, NULL);
}

bool
settle_links_installed(void)
{
	return settle_sql_release() >= SETTLE_SQL_1_1;
}

void
settle_links_housekeeping(void)
{
	Oid			types[1] = {INTERVALOID};
	Datum		values[1];

	if (!settle_links_installed())
		return;
	values[0] = DirectFunctionCall3(interval_in,
									CStringGetDatum(psprintf("%d milliseconds", settle_link_timeout_ms)),
									ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
	if (SPI_execute_with_args("SELECT settle._link_housekeeping($1)", 1, types, values, NULL, false, 0)
		!= SPI_OK_SELECT)
		elog(ERROR, "ending linked groups failed");
}

void
settle_links_filter(CycleState *cs)
{
	LinkGroups	g;
	bool	   *wait;
	int			kept = 0;
	int			i;

	if (!build_groups(cs, &g))
		return;
	wait = palloc0(sizeof(bool) * Max(g.n_groups, 1));
	for (i = 0; i < g.n_groups; i++)
	{
		const CyclePayment *first = &cs->payments[g.member[g.start[i]]];

		wait[i] = g.start[i + 1] - g.start[i] != first->link_size;
	}
	for (i = 0; i < cs->n_payments; i++)
	{
		if (g.group_of[i] >= 0 && wait[g.group_of[i]])
		{
			cs->held++;			/* considered, left queued */
			continue;
		}
		cs->payments[kept++] = cs->payments[i];
	}
	cs->n_payments = kept;
}

int
settle_links_groups(const CycleState *cs, int *group)
{
	LinkGroups	g;
	int			i;

	if (!build_groups(cs, &g))
		return 0;
	for (i = 0; i < cs->n_payments; i++)
		group[i] = g.group_of[i];
	return g.n_groups;
}
