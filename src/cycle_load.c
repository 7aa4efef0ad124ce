/*
 * cycle_load.c -- what a cycle reads before it solves (cycle.c's stages 1 and
 * 2): overdue payments expired, the currencies, the queue (locked without
 * waiting, FX credits converted exactly in numeric at the mid rate), the
 * accounts it touches (locked, in account order) and the wires with their fees.
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"

#include "backlog.h"
#include "controls.h"
#include "cycle.h"
#include "cycle_int.h"
#include "cycle_state.h"
#include "links.h"
#include "quiet.h"
#include "settle_errors.h"
#include "spi_util.h"

/* SETTLE_MAX_AMOUNT_MINOR (amount.h) as SQL text */
#define MAX_AMOUNT_SQL "999999999999999"

typedef struct NameIndex
{
	char		key[NAMEDATALEN * 3];
	int			index;
} NameIndex;

static HTAB *name_table(const char *what, long n);
static int	name_lookup(HTAB *t, const char *key);
static int	name_insert(HTAB *t, const char *key, int index, bool *found);

/* A string-keyed table of indexes. */
static HTAB *
name_table(const char *what, long n)
{
	HASHCTL		ctl;

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = NAMEDATALEN * 3;
	ctl.entrysize = sizeof(NameIndex);
	ctl.hcxt = CurrentMemoryContext;
	return hash_create(what, Max(n, 16), &ctl, HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
}

static int
name_lookup(HTAB *t, const char *key)
{
	char		k[NAMEDATALEN * 3];
	NameIndex  *e;

	strlcpy(k, key, sizeof(k));
	e = hash_search(t, k, HASH_FIND, NULL);
	return e ? e->index : -1;
}

static int
name_insert(HTAB *t, const char *key, int index, bool *found)
{
	char		k[NAMEDATALEN * 3];
	NameIndex  *e;

	strlcpy(k, key, sizeof(k));
	e = hash_search(t, k, HASH_ENTER, found);
	if (!*found)
		e->index = index;
	return e->index;
}

/* Expire queued payments whose deadline has passed; returns how many. */
int
settle_cycle_expire_overdue(void)
{
	int			ret;
	bool		isnull;

	/* held payments expire too: a deadline is the last moment to settle (held: hold_reason is set) */
	ret = settle_spi_execute("WITH x AS ("
					  "  UPDATE settle.payment SET status = 'expired', updated_at = clock_timestamp()"
					  "   WHERE (status = 'queued' OR status = 'held') AND deadline < now()"
					  "  RETURNING payment_id, CASE WHEN hold_reason IS NULL THEN 'queued' ELSE 'held' END AS was),"
					  " e AS ("
					  "  INSERT INTO settle.event (entity, entity_id, event_type, from_status, to_status, details)"
					  "  SELECT 'payment', payment_id::text, 'expired', was, 'expired',"
					  "         '{\"reason\": \"deadline passed before it could settle\"}'::jsonb FROM x)"
					  "SELECT count(*)::int FROM x", 0, NULL, NULL, NULL, false, 0);
	if (ret != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "expiring overdue payments failed");
	return DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

/* Currencies: exponent and value of one major unit in the reference currency. */
void
settle_cycle_load_currencies(CycleState *cs)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1];
	uint64		i;

	values[0] = CStringGetTextDatum(settle_reference_currency);
	if (settle_spi_execute(
							  "WITH r AS (SELECT base_currency AS b, quote_currency AS q, mid_rate AS m FROM settle.fx_rates)"
							  " SELECT c.code, c.exponent::int,"
							  "        (CASE WHEN c.code = $1 THEN 1"
							  "              ELSE coalesce((SELECT m FROM r WHERE b = c.code AND q = $1),"
							  "                            (SELECT 1 / m FROM r WHERE b = $1 AND q = c.code)) END)::float8"
							  "   FROM settle.currency c",
							  1, types, values, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "loading currencies failed");

	cs->n_currencies = (int) SPI_processed;
	cs->currencies = palloc0(sizeof(CycleCurrency) * Max(cs->n_currencies, 1));
	cs->currency_index = name_table("settle cycle currencies", cs->n_currencies);
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		CycleCurrency *c = &cs->currencies[i];
		bool		isnull;
		bool		found;
		Datum		d;

		strlcpy(c->code, SPI_getvalue(tup, desc, 1), sizeof(c->code));
		c->exponent = DatumGetInt32(SPI_getbinval(tup, desc, 2, &isnull));
		d = SPI_getbinval(tup, desc, 3, &isnull);
		/* no rate to the reference currency: measured 1:1 (documented) */
		c->to_reference = isnull ? 1.0 : DatumGetFloat8(d);
		name_insert(cs->currency_index, c->code, (int) i, &found);
	}
	if (name_lookup(cs->currency_index, settle_reference_currency) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("settle.reference_currency \"%s\" is not a known currency",
						settle_reference_currency)));
}

/* Value of an amount of minor units of currency ci in reference major units. */
double
settle_reference_value(const CycleState *cs, int ci, int64 minor)
{
	const CycleCurrency *c = &cs->currencies[ci];

	return (double) minor / pow(10.0, c->exponent) * c->to_reference;
}

/* The queue, locked without waiting, with FX credits converted exactly. */
void
settle_cycle_load_queue(CycleState *cs, char **skip, int n_skip, const char *new_from_xid)
{
	Oid			types[5] = {INTERVALOID, INT4OID, BOOLOID, TEXTARRAYOID, TEXTOID};
	Datum		values[5];
	uint64		i;
	int			n = 0;
	int64	   *hold_ids;
	char	  **hold_reasons;
	int			n_hold = 0;
	bool		links;

	values[0] = DirectFunctionCall3(interval_in,
									CStringGetDatum(psprintf("%d milliseconds", settle_cycle_interval_ms)),
									ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
	values[1] = Int32GetDatum(settle_max_cycle_payments);
	values[2] = BoolGetDatum(settle_suspension_holds_payee);
	/* quiet payers (quiet.c): their payments older than $5's snapshot are not loaded */
	values[3] = PointerGetDatum(settle_text_array(skip, n_skip));
	values[4] = CStringGetTextDatum(new_from_xid != NULL ? new_from_xid : "3");
	links = settle_links_installed();
	if (settle_spi_execute(psprintf("%s%s%s%s%s%s%s%s%s",
							  "WITH r AS (SELECT base_currency AS b, quote_currency AS q, mid_rate AS m, spread_bps AS s"
							  "             FROM settle.fx_rates),"
							  /* a pair stored the other way round: the credit divides by its rate */
							  " rr AS (SELECT b, q, m, s, false AS inv FROM r"
							  "        UNION ALL"
							  "        SELECT q, b, m, s, true FROM r r1"
							  "         WHERE NOT EXISTS (SELECT 1 FROM r r2 WHERE r2.b = r1.q AND r2.q = r1.b)),"
							  " c AS ("
							  " SELECT p.payment_id, p.source_account, p.destination_account,"
							  "        p.source_participant, p.counterparty_id,"
							  "        p.source_currency, p.destination_currency, p.amount, x.m, x.s, x.inv,"
							  "        p.deadline,",
							  /*
							   * issue #33 (1.2's SQL): the priority its payer set since, and a
							   * payment its payer moved ages from where it was put
							   */
							  settle_controls_installed()
							  ? " coalesce(p.queue_priority, p.priority) AS priority, coalesce(p.queued_since, p.created_at) AS created_at,"
							  : " p.priority, p.created_at,",
							  " sp.status AS payer_status, tp.status AS payee_status,",
							  /* linked payments: 1.1's SQL has them (src/cycle_links.c) */
							  links ? " lk.link_group, lg.link_size," : " NULL::text AS link_group, NULL::int AS link_size,",
							  ""
							  "        CASE WHEN p.source_currency = p.destination_currency THEN p.amount::numeric"
							  /* amount x 10^(exponent difference): exact in numeric */
							  "             ELSE p.amount::numeric OPERATOR(pg_catalog.*) (10::numeric OPERATOR(pg_catalog.^)"
							  "                    (cd.exponent OPERATOR(pg_catalog.-) cs.exponent)::numeric) END AS scaled"
							  "   FROM settle.payment p"
							  "   JOIN settle.currency cs ON cs.code = p.source_currency"
							  "   JOIN settle.currency cd ON cd.code = p.destination_currency"
							  "   LEFT JOIN rr x ON x.b = p.source_currency AND x.q = p.destination_currency"
							  "   JOIN settle.participant sp ON sp.participant_id = p.source_participant"
							  "   JOIN settle.participant tp ON tp.participant_id = p.counterparty_id",
							  links ? " LEFT JOIN settle.payment_link lk ON lk.payment_id = p.payment_id"
							  " LEFT JOIN settle.link_group lg ON lg.link_group = lk.link_group" : "",
							  ""
							  "  WHERE p.status = 'queued'",
							  /*
							   * issue #33 (1.2's SQL): not before its earliest settlement
							   * time; a timed payment is always judged once due (quiet.c
							   * cannot tell when its time came)
							   */
							  settle_controls_installed()
							  ? "    AND (p.not_before IS NULL OR p.not_before OPERATOR(pg_catalog.<=) pg_catalog.now())"
							  "    AND (p.source_account OPERATOR(pg_catalog.<>) ALL ($4) OR p.not_before IS NOT NULL"
							  : "    AND (p.source_account OPERATOR(pg_catalog.<>) ALL ($4)",
							  "         OR pg_catalog.age(p.xmin) OPERATOR(pg_catalog.<=) pg_catalog.age($5::text::pg_catalog.xid))"
							  "  ORDER BY p.payment_id"
							  "  LIMIT $2"
							  "  FOR UPDATE OF p SKIP LOCKED),"
							  /*
							   * The exact credit, rounded half away from zero (amounts are
							   * positive: half up).  Stored the other way round, the quotient
							   * is exact too: div() truncates exactly and mod() is the exact
							   * remainder, so no reciprocal is ever rounded.
							   */
							  " v AS ("
							  " SELECT c.*,"
							  "        CASE WHEN c.source_currency = c.destination_currency THEN c.scaled"
							  "             WHEN NOT c.inv THEN pg_catalog.round(c.scaled OPERATOR(pg_catalog.*) c.m)"
							  "             ELSE pg_catalog.div(c.scaled, c.m) OPERATOR(pg_catalog.+)"
							  "                  CASE WHEN 2 OPERATOR(pg_catalog.*) pg_catalog.mod(c.scaled, c.m)"
							  "                            OPERATOR(pg_catalog.>=) c.m THEN 1 ELSE 0 END"
							  "        END AS exact"
							  "   FROM c)"
							  " SELECT v.payment_id, v.source_account, v.destination_account,"
							  "        v.source_participant, v.counterparty_id,"
							  "        v.source_currency, v.destination_currency, v.amount,"
							  "        CASE WHEN v.exact OPERATOR(pg_catalog.>=) 1"
							  "              AND v.exact OPERATOR(pg_catalog.<=) " MAX_AMOUNT_SQL "::numeric"
							  "             THEN v.exact::bigint END AS credit,"
							  "        CASE WHEN v.source_currency = v.destination_currency THEN NULL"
							  "             WHEN v.inv THEN (1 OPERATOR(pg_catalog./) v.m)::text ELSE v.m::text END,"
							  "        coalesce(v.s, 0)::float8, v.priority::int,"
							  "        (v.deadline IS NOT NULL AND v.deadline > now() + $1) AS deferrable,"
							  "        CASE WHEN v.payer_status <> 'active'"
							  "             THEN pg_catalog.format('payer %s is %s', v.source_participant, v.payer_status)"
							  "             WHEN v.payee_status <> 'active' AND $3"
							  "             THEN pg_catalog.format('payee %s is %s', v.counterparty_id, v.payee_status)"
							  "             WHEN v.exact IS NULL THEN NULL"
							  "             WHEN v.exact OPERATOR(pg_catalog.<) 1 THEN 'converts to less than one minor unit'"
							  "             WHEN v.exact OPERATOR(pg_catalog.>) " MAX_AMOUNT_SQL "::numeric"
							  "                  THEN 'converts to more than the largest amount accepted' END AS problem,"
							  "        (pg_catalog.date_part('epoch', now() OPERATOR(pg_catalog.-) v.created_at)"
							  "           OPERATOR(pg_catalog.*) 1000)::float8 AS age_ms,"
							  "        v.link_group, v.link_size"
							  "   FROM v ORDER BY v.payment_id"),
							  5, types, values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "loading the queue failed");

	cs->n_loaded = (int) SPI_processed;
	cs->payments = palloc0(sizeof(CyclePayment) * Max(SPI_processed, 1));
	hold_ids = palloc(sizeof(int64) * Max(SPI_processed, 1));
	hold_reasons = palloc(sizeof(char *) * Max(SPI_processed, 1));
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		CyclePayment *p = &cs->payments[n];
		bool		isnull;
		Datum		credit;
		char	   *problem;

		CHECK_FOR_INTERRUPTS();
		p->payment_id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
		p->source_account = SPI_getvalue(tup, desc, 2);
		p->destination_account = SPI_getvalue(tup, desc, 3);
		p->source_participant = SPI_getvalue(tup, desc, 4);
		p->counterparty_id = SPI_getvalue(tup, desc, 5);
		p->source_ccy = name_lookup(cs->currency_index, SPI_getvalue(tup, desc, 6));
		p->destination_ccy = name_lookup(cs->currency_index, SPI_getvalue(tup, desc, 7));
		p->debit = DatumGetInt64(SPI_getbinval(tup, desc, 8, &isnull));
		problem = SPI_getvalue(tup, desc, 14);
		if (problem != NULL)
		{
			/*
			 * A suspended participant's payment, or one that can never be
			 * posted at today's rate: held for an operator, with the reason,
			 * and the rest of the queue settles.
			 */
			hold_ids[n_hold] = p->payment_id;
			hold_reasons[n_hold++] = problem;
			continue;
		}
		credit = SPI_getbinval(tup, desc, 9, &isnull);
		if (isnull)
		{
			note_waiting(cs, p->payment_id);	/* no rate any more: stays queued */
			settle_quiet_noisy(p->source_account);
			continue;
		}
		p->credit = DatumGetInt64(credit);
		p->fx_rate = SPI_getvalue(tup, desc, 10);
		p->spread_bps = DatumGetFloat8(SPI_getbinval(tup, desc, 11, &isnull));
		p->priority = DatumGetInt32(SPI_getbinval(tup, desc, 12, &isnull));
		p->deferrable = DatumGetBool(SPI_getbinval(tup, desc, 13, &isnull));
		p->age_ms = Max(DatumGetFloat8(SPI_getbinval(tup, desc, 15, &isnull)), 0);
		p->value = settle_reference_value(cs, p->source_ccy, p->debit);
		p->link_group = SPI_getvalue(tup, desc, 16);
		if (p->link_group != NULL)
			p->link_size = DatumGetInt32(SPI_getbinval(tup, desc, 17, &isnull));
		n++;
	}
	cs->n_payments = n;
	if (n_hold > 0)
		settle_hold_payments(hold_ids, hold_reasons, n_hold);
	cs->held += n_hold;			/* considered, and left unsettled */
	cs->n_newly_held += n_hold;
}

/* Lock and load every account the queue touches, in account order. */
void
settle_cycle_load_accounts(CycleState *cs)
{
	char	  **ids = palloc(sizeof(char *) * Max(2 * cs->n_payments, 1));
	Oid			types[1] = {TEXTARRAYOID};
	Datum		values[1];
	int			i;
	uint64		r;
	int			kept = 0;

	{
		/* each account once: planning = ANY is linear in the array's length */
		HTAB	   *seen = name_table("settle cycle account ids", 2 * cs->n_payments);
		int			nids = 0;

		for (i = 0; i < 2 * cs->n_payments; i++)
		{
			char	   *id = i % 2 == 0 ? cs->payments[i / 2].source_account
				: cs->payments[i / 2].destination_account;
			bool		found;

			name_insert(seen, id, nids, &found);
			if (!found)
				ids[nids++] = id;
		}
		values[0] = PointerGetDatum(settle_text_array(ids, nids));
	}
	if (settle_spi_execute(
							  "SELECT account_id, participant_id, currency, balance - pending_debit, lower_limit,"
							  "       status = 'active', balance, pending_debit, pending_credit"
							  "  FROM settle.account WHERE account_id = ANY ($1) AND kind = 'customer'"
							  " ORDER BY account_id FOR UPDATE",
							  1, types, values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "locking accounts failed");

	cs->n_accounts = (int) SPI_processed;
	cs->accounts = palloc0(sizeof(CycleAccount) * Max(cs->n_accounts, 1));
	cs->account_index = name_table("settle cycle accounts", cs->n_accounts);
	for (r = 0; r < SPI_processed; r++)
	{
		HeapTuple	tup = SPI_tuptable->vals[r];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		CycleAccount *a = &cs->accounts[r];
		bool		isnull;
		bool		found;

		a->account_id = SPI_getvalue(tup, desc, 1);
		a->participant_id = SPI_getvalue(tup, desc, 2);
		a->currency = name_lookup(cs->currency_index, SPI_getvalue(tup, desc, 3));
		/* pending debits of two-phase cycles count against the limit */
		a->balance = DatumGetInt64(SPI_getbinval(tup, desc, 4, &isnull));
		a->lower_limit = DatumGetInt64(SPI_getbinval(tup, desc, 5, &isnull));
		a->active = DatumGetBool(SPI_getbinval(tup, desc, 6, &isnull));
		a->posted = DatumGetInt64(SPI_getbinval(tup, desc, 7, &isnull));
		a->pending_debit = DatumGetInt64(SPI_getbinval(tup, desc, 8, &isnull));
		a->pending_credit = DatumGetInt64(SPI_getbinval(tup, desc, 9, &isnull));
		name_insert(cs->account_index, a->account_id, (int) r, &found);
	}

	/* payments touching a frozen or closed account wait in the queue */
	for (i = 0; i < cs->n_payments; i++)
	{
		CyclePayment *p = &cs->payments[i];

		p->src = name_lookup(cs->account_index, p->source_account);
		p->dst = name_lookup(cs->account_index, p->destination_account);
		if (p->src < 0 || p->dst < 0 ||
			!cs->accounts[p->src].active || !cs->accounts[p->dst].active)
		{
			cs->held++;
			note_waiting(cs, p->payment_id);
			settle_quiet_noisy(p->source_account);
			continue;
		}
		cs->payments[kept++] = *p;
	}
	cs->n_payments = kept;
}

/* Wires: one per (participant, currency) the queue touches, with its fee. */
void
settle_cycle_load_wires(CycleState *cs)
{
	HTAB	   *fees = name_table("settle cycle fees", 64);
	int64	   *fee_values;
	int			n_fees = 0;
	uint64		r;
	int			i;

	if (settle_spi_execute("SELECT coalesce(participant_id, ''), currency, fee FROM settle.wire_fee", 0, NULL, NULL, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "loading wire fees failed");
	fee_values = palloc(sizeof(int64) * (SPI_processed + 1));
	for (r = 0; r < SPI_processed; r++)
	{
		HeapTuple	tup = SPI_tuptable->vals[r];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		bool		found;
		char	   *key = psprintf("%s|%s", SPI_getvalue(tup, desc, 1), SPI_getvalue(tup, desc, 2));

		fee_values[n_fees] = DatumGetInt64(SPI_getbinval(tup, desc, 3, &isnull));
		name_insert(fees, key, n_fees, &found);
		n_fees++;
	}

	cs->wires = palloc0(sizeof(CycleWire) * Max(2 * cs->n_payments, 1));
	cs->wire_index = name_table("settle cycle wires", 2 * cs->n_payments);
	for (i = 0; i < cs->n_payments; i++)
	{
		CyclePayment *p = &cs->payments[i];
		int			side;

		for (side = 0; side < 2; side++)
		{
			const char *participant = side == 0 ? p->source_participant : p->counterparty_id;
			int			ccy = side == 0 ? p->source_ccy : p->destination_ccy;
			char	   *key = psprintf("%s|%s", participant, cs->currencies[ccy].code);
			bool		found;
			int			w = name_insert(cs->wire_index, key, cs->n_wires, &found);

			if (!found)
			{
				CycleWire  *wire = &cs->wires[w];
				int			f = name_lookup(fees, key);

				if (f < 0)
					f = name_lookup(fees, psprintf("|%s", cs->currencies[ccy].code));
				wire->participant_id = pstrdup(participant);
				wire->currency = ccy;
				wire->fee = f >= 0 ? fee_values[f] : 0;
				wire->fee_value = settle_reference_value(cs, ccy, wire->fee);
				cs->n_wires++;
			}
			if (side == 0)
				p->wire_src = w;
			else
				p->wire_dst = w;
		}
	}
}
