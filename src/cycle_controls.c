/*
 * cycle_controls.c -- a participant's limits and reservations as rows of the
 * cycle's model (issue #33; include/controls.h, docs/PARTICIPANT_CONTROLS.md).
 *
 * Limit rows, per (participant, counterparty or none, currency): liquidity
 * = the limit less the net outflow already used today (settle._limit_positions);
 * a payment P -> Q in currency X debits P's bilateral row towards Q in X, or
 * P's multilateral row in X when P has no bilateral limit towards Q in X;
 * it credits Q's row towards P in its destination currency the same way.
 * Reservation rows, per account: liquidity = the account's less the reserved
 * amount; debited by the account's payments below the reservation's
 * priority, credited by every payment into the account.  A payment gets one
 * leg per kind of row it touches (src: its debit-side row or the row's
 * companion, dst: its credit-side row or the companion), linked with it.
 *
 * The cost is one query when no control exists (two lookups of an empty
 * table); the rows and legs exist only for the participants and accounts
 * that set controls.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"

#include "controls.h"
#include "spi_util.h"
#include "version.h"

/* Participant ids are at most 128 bytes (validate.c): two, a currency, separators. */
#define CONTROL_KEY_LEN 272

typedef struct ControlKey
{
	char		key[CONTROL_KEY_LEN];
	int			row;
} ControlKey;

typedef struct Builder
{
	ControlModel *m;
	int			cap_accounts;
	int			cap_payments;
	int			n_real_accounts;
} Builder;

bool
settle_controls_installed(void)
{
	return settle_sql_release() >= SETTLE_SQL_1_2;
}

static void
limit_key(char *buf, const char *participant, const char *counterparty, const char *currency)
{
	snprintf(buf, CONTROL_KEY_LEN, "%s\x01%s\x01%s", participant,
			 counterparty != NULL ? counterparty : "", currency);
}

static int
find_row(HTAB *t, const char *participant, const char *counterparty, const char *currency)
{
	char		key[CONTROL_KEY_LEN];
	ControlKey *e;

	limit_key(key, participant, counterparty, currency);
	e = hash_search(t, key, HASH_FIND, NULL);
	return e != NULL ? e->row : -1;
}

/* A control row and its unconstrained companion (the next account); returns the row. */
static int
add_row(Builder *b, int64 available, char *name)
{
	ControlModel *m = b->m;
	int			row = m->n_accounts;

	if (m->n_accounts + 2 > b->cap_accounts)
	{
		b->cap_accounts *= 2;
		m->accounts = repalloc(m->accounts, sizeof(SolverAccount) * b->cap_accounts);
		m->row_name = repalloc(m->row_name, sizeof(char *) * b->cap_accounts);
	}
	m->accounts[row].available = available;
	m->accounts[row].constrained = true;
	m->row_name[row] = name;
	m->accounts[row + 1].available = 0;
	m->accounts[row + 1].constrained = false;
	m->row_name[row + 1] = name;
	m->n_accounts += 2;
	return row;
}

/* One leg of payment i between rows src and dst (-1: none on that side). */
static void
add_leg(Builder *b, int i, int src, int dst, int64 debit, int64 credit, int *group_of_new)
{
	ControlModel *m = b->m;
	SolverPayment *leg;
	int			k;

	if (src < 0 && dst < 0)
		return;
	if (m->n_payments + 1 > b->cap_payments)
	{
		b->cap_payments *= 2;
		m->payments = repalloc(m->payments, sizeof(SolverPayment) * b->cap_payments);
		m->group = repalloc(m->group, sizeof(int) * b->cap_payments);
		m->payment_id = repalloc(m->payment_id, sizeof(int64) * b->cap_payments);
	}
	k = m->n_payments++;
	leg = &m->payments[k];
	memset(leg, 0, sizeof(*leg));
	/* a side without a row goes to the other side's companion: it constrains nothing */
	leg->src = src >= 0 ? src : dst + 1;
	leg->dst = dst >= 0 ? dst : src + 1;
	leg->debit = debit;
	leg->credit = credit;
	leg->wire_src = -1;
	leg->wire_dst = -1;
	leg->fx_pair = -1;
	leg->fx_value = 0;
	/* the payment's penalty stays its own: a leg adds next to nothing to the group's */
	leg->penalty = m->payments[i].penalty * 1e-6;
	if (m->group[i] < 0)
		m->group[i] = (*group_of_new)++;
	m->group[k] = m->group[i];
	m->payment_id[k] = m->payment_id[i];
}

void
settle_controls_model(const CycleState *cs, const SolverAccount *accounts,
					  const SolverPayment *payments, const int *group, int n_groups,
					  ControlModel *m)
{
	Builder		b;
	HASHCTL		ctl;
	HTAB	   *limits;
	HTAB	   *accounts_by_id;
	int		   *res_row;		/* per cycle account: its reservation row, or -1 */
	int		   *res_level;		/* the reservation's min_priority */
	int			n = cs->n_payments;
	int			n_groups_new = n_groups;
	Oid			types[1] = {TEXTARRAYOID};
	Datum		values[1];
	char	  **ids;
	uint64		r;
	int			i;
	bool		have_limits;
	bool		have_reservations;
	uint64		nrows;

	memset(m, 0, sizeof(*m));
	b.m = m;
	b.n_real_accounts = cs->n_accounts;
	b.cap_accounts = Max(cs->n_accounts * 2, 16);
	b.cap_payments = Max(n * 2, 16);
	m->n_accounts = cs->n_accounts;
	m->accounts = palloc(sizeof(SolverAccount) * b.cap_accounts);
	memcpy(m->accounts, accounts, sizeof(SolverAccount) * cs->n_accounts);
	m->row_name = palloc0(sizeof(char *) * b.cap_accounts);
	m->n_payments = n;
	m->payments = palloc(sizeof(SolverPayment) * b.cap_payments);
	memcpy(m->payments, payments, sizeof(SolverPayment) * n);
	m->group = palloc(sizeof(int) * b.cap_payments);
	m->payment_id = palloc(sizeof(int64) * b.cap_payments);
	for (i = 0; i < n; i++)
	{
		m->group[i] = group != NULL && n_groups > 0 ? group[i] : -1;
		m->payment_id[i] = cs->payments[i].payment_id;
	}
	m->n_groups = n_groups;
	if (!settle_controls_installed() || n == 0)
		return;
	/* most cycles meet no control at all: one cheap look, before any plan of the positions */
	if (settle_spi_execute("SELECT EXISTS (SELECT 1 FROM settle.participant_limit),"
						   "       EXISTS (SELECT 1 FROM settle.liquidity_reservation)",
						   0, NULL, NULL, NULL, true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "looking for participant controls failed");
	{
		bool		isnull;

		have_limits = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		have_reservations = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	}
	if (!have_limits && !have_reservations)
		return;

	/* limits with today's headroom, of the participants in this cycle */
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = CONTROL_KEY_LEN;
	ctl.entrysize = sizeof(ControlKey);
	ctl.hcxt = CurrentMemoryContext;
	limits = hash_create("settle cycle limits", 64, &ctl, HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	ids = palloc(sizeof(char *) * Max(2 * n, 1));
	for (i = 0; i < n; i++)
	{
		ids[2 * i] = cs->payments[i].source_participant;
		ids[2 * i + 1] = cs->payments[i].counterparty_id;
	}
	values[0] = PointerGetDatum(settle_text_array(ids, 2 * n));
	if (have_limits &&
		settle_spi_execute("SELECT x.participant_id, x.counterparty_id, x.currency,"
						   "       (x.amount::numeric OPERATOR(pg_catalog.-) x.used::numeric)::text"
						   "  FROM settle._limit_positions(settle._settlement_day_start()) x"
						   " WHERE x.participant_id OPERATOR(pg_catalog.=) ANY ($1)"
						   " ORDER BY 1, 2 NULLS FIRST, 3",
						   1, types, values, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "loading participant limits failed");
	nrows = have_limits ? SPI_processed : 0;
	for (r = 0; r < nrows; r++)
	{
		HeapTuple	tup = SPI_tuptable->vals[r];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		char	   *participant = SPI_getvalue(tup, desc, 1);
		char	   *counterparty = SPI_getvalue(tup, desc, 2);
		char	   *currency = SPI_getvalue(tup, desc, 3);
		/* limit - used: both within +-10^15, so the difference fits int64 */
		int64		headroom = DatumGetInt64(DirectFunctionCall1(int8in, CStringGetDatum(SPI_getvalue(tup, desc, 4))));
		char		key[CONTROL_KEY_LEN];
		ControlKey *e;
		bool		found;

		CHECK_FOR_INTERRUPTS();
		limit_key(key, participant, counterparty, currency);
		e = hash_search(limits, key, HASH_ENTER, &found);
		e->row = add_row(&b, headroom,
						 counterparty != NULL
						 ? psprintf("bilateral limit of %s towards %s in %s", participant, counterparty, currency)
						 : psprintf("multilateral limit of %s in %s", participant, currency));
		m->n_limit_rows++;
	}

	/* reservations in force today on the cycle's accounts */
	res_row = palloc(sizeof(int) * Max(cs->n_accounts, 1));
	res_level = palloc(sizeof(int) * Max(cs->n_accounts, 1));
	accounts_by_id = hash_create("settle cycle reserved accounts", Max(cs->n_accounts, 16), &ctl,
								 HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	for (i = 0; i < cs->n_accounts; i++)
	{
		char		key[CONTROL_KEY_LEN];
		ControlKey *e;

		res_row[i] = -1;
		ids[i] = cs->accounts[i].account_id;
		limit_key(key, ids[i], NULL, "");
		e = hash_search(accounts_by_id, key, HASH_ENTER, NULL);
		e->row = i;
	}
	values[0] = PointerGetDatum(settle_text_array(ids, cs->n_accounts));
	if (have_reservations &&
		settle_spi_execute("SELECT r.account_id, r.amount, r.min_priority::int"
						   "  FROM settle.liquidity_reservation r"
						   " WHERE r.account_id OPERATOR(pg_catalog.=) ANY ($1)"
						   "   AND (r.valid_on OPERATOR(pg_catalog.=) settle._settlement_date()"
						   "        OR (r.valid_on IS NULL AND NOT EXISTS ("
						   "              SELECT 1 FROM settle.liquidity_reservation d"
						   "               WHERE d.account_id OPERATOR(pg_catalog.=) r.account_id"
						   "                 AND d.valid_on OPERATOR(pg_catalog.=) settle._settlement_date())))"
						   " ORDER BY 1",
						   1, types, values, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "loading liquidity reservations failed");
	nrows = have_reservations ? SPI_processed : 0;
	for (r = 0; r < nrows; r++)
	{
		HeapTuple	tup = SPI_tuptable->vals[r];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		char	   *account = SPI_getvalue(tup, desc, 1);
		int64		amount = DatumGetInt64(SPI_getbinval(tup, desc, 2, &isnull));
		int			level = DatumGetInt32(SPI_getbinval(tup, desc, 3, &isnull));
		int			a = find_row(accounts_by_id, account, NULL, "");

		if (a < 0 || amount == 0)
			continue;
		/* both within +-10^15 and the schema's bounds: no overflow */
		res_row[a] = add_row(&b, accounts[a].available - amount,
							 psprintf("reservation of account %s", account));
		res_level[a] = level;
		m->n_reservation_rows++;
	}

	if (m->n_limit_rows == 0 && m->n_reservation_rows == 0)
		return;

	for (i = 0; i < n; i++)
	{
		const CyclePayment *p = &cs->payments[i];
		const SolverPayment *s = &payments[i];

		CHECK_FOR_INTERRUPTS();
		if (m->n_limit_rows > 0 && strcmp(p->source_participant, p->counterparty_id) != 0)
		{
			const char *src_ccy = cs->currencies[p->source_ccy].code;
			const char *dst_ccy = cs->currencies[p->destination_ccy].code;
			int			out = find_row(limits, p->source_participant, p->counterparty_id, src_ccy);
			int			in = find_row(limits, p->counterparty_id, p->source_participant, dst_ccy);

			if (out < 0)
				out = find_row(limits, p->source_participant, NULL, src_ccy);
			if (in < 0)
				in = find_row(limits, p->counterparty_id, NULL, dst_ccy);
			add_leg(&b, i, out, in, s->debit, s->credit, &n_groups_new);
		}
		if (m->n_reservation_rows > 0)
		{
			int			out = res_row[s->src] >= 0 && p->priority < res_level[s->src] ? res_row[s->src] : -1;
			int			in = res_row[s->dst];

			add_leg(&b, i, out, in, s->debit, s->credit, &n_groups_new);
		}
	}
	m->n_groups = n_groups_new;
}

void
settle_controls_check_alerts(void)
{
	if (!settle_controls_installed())
		return;
	/* nothing to plan or run when no participant set an alert */
	if (settle_spi_execute("SELECT settle._check_alerts() WHERE EXISTS (SELECT 1 FROM settle.participant_alert)",
						   0, NULL, NULL, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "checking participants' alerts failed");
}
