/*
 * cycle.c -- one settlement cycle: take the queue, optimise, post, record.
 *
 * Second and third stages of the pipeline (queue -> cycle -> settle).  In one
 * transaction, serialised against other cycles by a lock on settle.cycle_lock:
 *
 *   1. expire queued payments whose deadline has passed (with an event);
 *   2. load the queue (FOR UPDATE SKIP LOCKED, so intake never waits) with
 *      each FX payment's credit converted exactly in numeric at the mid rate,
 *      and lock the balances of every account involved;
 *   3. build the model of solver.h -- accounts, payments, wires (one per
 *      participant and currency: its net position), FX pairs -- and solve it
 *      with GLPK; a solver failure falls back to the greedy heuristic and the
 *      selection is re-checked in exact integer arithmetic before posting;
 *   4. post the selection (posting.c) as one balanced journal, batch by batch;
 *   5. compute the baselines on the same queue (baseline.c) and write the
 *      cycle record and one log line.
 *
 * Money is int64 minor units throughout; doubles appear only in the model's
 * objective and in the cycle record's measurements.
 */
#include "postgres.h"

#include <math.h>

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/async.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "portability/instr_time.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "cycle.h"
#include "deep.h"
#include "cycle_state.h"
#include "netting.h"
#include "fence.h"
#include "sync_standby.h"
#include "guard.h"
#include "controls.h"
#include "links.h"
#include "major_units.h"
#include "posting.h"
#include "settle_errors.h"
#include "solver.h"
#include "spi_util.h"
#include "version.h"
#include "funding_advice.h"
#include "backlog.h"
#include "quiet.h"
#include "worker_state.h"

PG_FUNCTION_INFO_V1(settle_run_cycle_sql);

/* The cycle's settings (settle_cycle_init). */
double		settle_solver_time_limit_ms = 500;
double		settle_mip_gap = 1e-4;
int			settle_mip_max_payments = 200;
int			settle_max_cycle_payments = 100000;
char	   *settle_reference_currency = NULL;
double		settle_delay_cost_bps = 10;
bool		settle_suspension_holds_payee = true;
int			settle_priority_aging_ms = 60000;

static bool check_reference_currency(char **newval, void **extra, GucSource source);

/*
 * settle.reference_currency: three upper-case letters, and a currency
 * settle knows when it can look (in a transaction of a database that has
 * the extension; a configuration file is read outside any transaction).
 */
static bool
check_reference_currency(char **newval, void **extra, GucSource source)
{
	const char *v = *newval;

	if (v == NULL || strlen(v) != 3 ||
		v[0] < 'A' || v[0] > 'Z' || v[1] < 'A' || v[1] > 'Z' || v[2] < 'A' || v[2] > 'Z')
	{
		GUC_check_errdetail("A currency is an ISO 4217 code of three upper-case letters.");
		return false;
	}
	if (source != PGC_S_TEST && source != PGC_S_FILE && source != PGC_S_DEFAULT &&
		IsTransactionState() && !IsAbortedTransactionBlockState() &&
		OidIsValid(get_extension_oid("settle", true)) &&
		settle_currency_exponent(v, 3) < 0)
	{
		GUC_check_errdetail("settle.currencies lists the currencies settle knows.");
		return false;
	}
	return true;
}

/* Define the cycle's settings (from _PG_init). */
void
settle_cycle_init(void)
{
	settle_links_init();
	DefineCustomIntVariable("settle.cycle_interval",
							"Time between two settlement cycles of the worker.",
							"Payments whose deadline falls within one interval must settle now.",
							&settle_cycle_interval_ms,
							1000, 10, 86400000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomRealVariable("settle.solver_time_limit",
							 "Time limit of the GLPK solve in one cycle.",
							 "When it is reached the best solution found so far, or the greedy heuristic, is used.",
							 &settle_solver_time_limit_ms,
							 500, 0.000001, 3600000,
							 PGC_SUSET, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomRealVariable("settle.mip_gap",
							 "Relative MIP gap at which GLPK stops branching.",
							 NULL, &settle_mip_gap,
							 1e-4, 0, 1,
							 PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("settle.mip_max_payments",
							"Largest independent component solved as a MIP (larger ones: LP, rounding and repair).",
							NULL, &settle_mip_max_payments,
							200, 0, 100000,
							PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("settle.max_cycle_payments",
							"Most queued payments one cycle considers (oldest first).",
							NULL, &settle_max_cycle_payments,
							100000, 1, 10000000,
							PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("settle.reference_currency",
							   "Currency in which cycle values and costs are measured.",
							   NULL, &settle_reference_currency, "USD",
							   PGC_SUSET, 0, check_reference_currency, NULL, NULL);
	DefineCustomRealVariable("settle.delay_cost_bps",
							 "Cost of making a deferrable payment wait one cycle, in basis points of its value.",
							 "A payment whose deadline is after the next cycle waits when its wire fee and spread cost more than this.",
							 &settle_delay_cost_bps,
							 10, 0.000001, 10000,
							 PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("settle.priority_aging",
							"Time after which a queued payment's priority weight has doubled (it grows linearly with its age).",
							"0: age does not count. Keeps old payments from starving behind newer ones when liquidity is short.",
							&settle_priority_aging_ms,
							60000, 0, 86400000,
							PGC_SUSET, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomBoolVariable("settle.cycle_keep_plans",
							 "Keeps the plans of a cycle's statements from one cycle to the next.",
							 "Off: every statement is planned again in every cycle (as before 1.1), for comparison.",
							 &settle_keep_plans, true,
							 PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomBoolVariable("settle.suspension_holds_payee",
							 "A suspended participant's queued payments are held as payee too, not only as payer.",
							 "Off: payments to a suspended participant still settle.",
							 &settle_suspension_holds_payee, true,
							 PGC_SUSET, 0, NULL, NULL, NULL);
}

/* SETTLE_MAX_AMOUNT_MINOR (amount.h) as SQL text */
#define MAX_AMOUNT_SQL "999999999999999"

/* Penalty factor for a payment that must settle this cycle. */
#define DUE_FACTOR 10.0

typedef struct NameIndex
{
	char		key[NAMEDATALEN * 3];
	int			index;
} NameIndex;

static HTAB *name_table(const char *what, long n);
static int	name_lookup(HTAB *t, const char *key);
static int	name_insert(HTAB *t, const char *key, int index, bool *found);
static int	expire_overdue(void);
static void load_currencies(CycleState *cs);
static void load_queue(CycleState *cs, char **skip, int n_skip, const char *new_from_xid);
static void load_accounts(CycleState *cs);
static void load_wires(CycleState *cs);
static void guard_ranges(CycleState *cs);
static void build_and_solve(CycleState *cs);
static bool solver_interrupted(void *arg);
static void solver_log(void *arg, const char *msg);
static void record_cycle(CycleState *cs);
static void cycle_error_context(void *arg);
static void lock_cycles(const char *run_by);
static void notify_settled(CycleState *cs);
static void note_waiting(CycleState *cs, int64 payment_id);
static int64 count_queued(int64 bound);
static void set_outcome(CycleState *cs, SettleCycleOutcome *o);
static void enter_stage(CycleState *cs, int stage, const char *name);
static void log_stages(CycleState *cs);

/* Close the stage being timed and start the next (-1: none); name is for the error context. */
static void
enter_stage(CycleState *cs, int stage, const char *name)
{
	instr_time	now;

	INSTR_TIME_SET_CURRENT(now);
	if (cs->cur_stage >= 0)
	{
		instr_time	d = now;

		INSTR_TIME_SUBTRACT(d, cs->stage_start);
		cs->stage_ms[cs->cur_stage] += INSTR_TIME_GET_MILLISEC(d);
	}
	cs->cur_stage = stage;
	cs->stage_start = now;
	if (name != NULL)
		cs->stage = name;
}

/* Where the cycle's time went, at DEBUG1 (test/bench/profile_cycle.sh reads it). */
static void
log_stages(CycleState *cs)
{
	enter_stage(cs, -1, NULL);
	elog(DEBUG1, "settle cycle stages (ms): considered %d settled %d lock %.3f expire %.3f load %.3f accounts %.3f"
		 " solve %.3f post %.3f baselines %.3f record %.3f notify %.3f outcome %.3f",
		 cs->n_loaded, cs->n_settled,
		 cs->stage_ms[CYCLE_STAGE_LOCK], cs->stage_ms[CYCLE_STAGE_EXPIRE], cs->stage_ms[CYCLE_STAGE_LOAD],
		 cs->stage_ms[CYCLE_STAGE_ACCOUNTS], cs->stage_ms[CYCLE_STAGE_SOLVE], cs->stage_ms[CYCLE_STAGE_POST],
		 cs->stage_ms[CYCLE_STAGE_BASELINES], cs->stage_ms[CYCLE_STAGE_RECORD], cs->stage_ms[CYCLE_STAGE_NOTIFY],
		 cs->stage_ms[CYCLE_STAGE_OUTCOME]);
}

/* A payment the cycle leaves queued, not by choice: counted for the backlog report. */
static void
note_waiting(CycleState *cs, int64 payment_id)
{
	cs->n_waiting++;
	if (cs->oldest_waiting_id == 0 || payment_id < cs->oldest_waiting_id)
		cs->oldest_waiting_id = payment_id;
}

/* Queued payments in this cycle's snapshot, counted up to bound (an index scan). */
static int64
count_queued(int64 bound)
{
	Oid			types[1] = {INT8OID};
	Datum		values[1];
	bool		isnull;

	values[0] = Int64GetDatum(bound);
	if (settle_spi_execute("SELECT pg_catalog.count(*) FROM (SELECT 1 FROM settle.payment"
							  " WHERE status = 'queued' LIMIT $1) q",
							  1, types, values, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "counting the queue failed");
	return DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

/*
 * What this cycle saw and did, for the worker (read once it committed).  The
 * depth it leaves: what it took minus what it settled or held, unless it took
 * a full settle.max_cycle_payments, when the queue may hold more: then it is
 * counted, up to a bound (settle.max_queued + 1, or 10 x max_cycle_payments
 * without a limit), so that overload costs at most one bounded index scan.
 */
static void
set_outcome(CycleState *cs, SettleCycleOutcome *o)
{
	int			i;

	o->ran = true;
	o->loaded = cs->n_loaded;
	o->settled = cs->n_settled;
	o->expired = cs->n_expired;
	o->held = cs->n_newly_held;
	o->deferred = cs->n_deferred;
	/* the payments of quiet payers wait too, unjudged (quiet.c) */
	o->waiting = cs->n_waiting + (int) Min(cs->n_skipped, INT_MAX / 2);
	o->oldest_waiting = cs->oldest_waiting_id;
	if (cs->skipped_oldest != 0 && (o->oldest_waiting == 0 || cs->skipped_oldest < o->oldest_waiting))
		o->oldest_waiting = cs->skipped_oldest;
	o->cost = cs->fee_cost + cs->fx_cost;
	o->settled_weight = 0;
	for (i = 0; i < cs->n_payments; i++)
		if (cs->selected != NULL && cs->selected[i])
			o->settled_weight += cs->payments[i].priority / 5.0 * cs->payments[i].value;
	/* what half the batch would have cost: how much a bigger batch nets away (pace.c) */
	o->half_settled = 0;
	o->half_cost = 0;
	if (cs->selected != NULL && cs->n_settled >= 2)
	{
		bool	   *half = palloc0(sizeof(bool) * cs->n_payments);

		for (i = 0; i < cs->n_payments && o->half_settled < cs->n_settled / 2; i++)
			if (cs->selected[i])
			{
				half[i] = true;
				o->half_settled++;
			}
		o->half_cost = settle_netted_cost(cs, half, NULL);
		pfree(half);
	}
	if (cs->n_loaded < settle_max_cycle_payments)
		o->queued_after = cs->n_loaded - cs->n_settled - cs->n_newly_held + cs->n_skipped;
	else
		o->queued_after = count_queued(settle_max_queued > 0 ? (int64) settle_max_queued + 1
									   : 10 * (int64) settle_max_cycle_payments);
}

/* Payment ids per notification: a payload stays far below NOTIFY's 8000 bytes. */
#define NOTIFY_IDS_PER_PAYLOAD 400

/*
 * Tell listeners which payments this cycle settled: NOTIFY settle_settled
 * with {"cycle": N, "part": i, "parts": n, "payments": [ids]}, in as many
 * notifications as the ids need.  Delivered when the cycle commits (after
 * its wait for the synchronous standby), exactly once per listener.  Only
 * settle's payment ids: PostgreSQL puts no privilege on LISTEN, and a
 * participant's transaction ids are its own (docs/OPERATIONS.md).
 */
static void
notify_settled(CycleState *cs)
{
	int			parts = (cs->n_settled + NOTIFY_IDS_PER_PAYLOAD - 1) / NOTIFY_IDS_PER_PAYLOAD;
	int			part = 0;
	int			in_part = 0;
	int			i;
	StringInfoData buf;

	if (cs->n_settled == 0)
		return;
	initStringInfo(&buf);
	for (i = 0; i < cs->n_payments; i++)
	{
		if (!cs->selected[i])
			continue;
		if (in_part == 0)
		{
			resetStringInfo(&buf);
			appendStringInfo(&buf, "{\"cycle\": %lld, \"part\": %d, \"parts\": %d, \"payments\": [",
							 (long long) cs->cycle_id, part + 1, parts);
		}
		appendStringInfo(&buf, "%s%lld", in_part > 0 ? ", " : "", (long long) cs->payments[i].payment_id);
		if (++in_part == NOTIFY_IDS_PER_PAYLOAD)
		{
			appendStringInfoString(&buf, "]}");
			Async_Notify(SETTLE_NOTIFY_CHANNEL, buf.data);
			in_part = 0;
			part++;
		}
	}
	if (in_part > 0)
	{
		appendStringInfoString(&buf, "]}");
		Async_Notify(SETTLE_NOTIFY_CHANNEL, buf.data);
	}
}

/*
 * One cycle at a time: a second one waits here for the first to commit.
 * The lock is on a table nobody is granted anything on, so no other role
 * can hold it (an advisory lock could be taken by any login); a wait is
 * logged, and settle.metrics shows how long it lasts.
 */
static void
lock_cycles(const char *run_by)
{
	Oid			relid = get_relname_relid("cycle_lock", get_namespace_oid("settle", false));

	if (!OidIsValid(relid))
		elog(ERROR, "settle.cycle_lock does not exist");
	if (!ConditionalLockRelationOid(relid, ExclusiveLock))
	{
		ereport(LOG,
				(errmsg("settle cycle (%s) waits for the cycle that is running to finish", run_by)));
		LockRelationOid(relid, ExclusiveLock);
	}
}

/* Says which cycle and which stage an error came from. */
static void
cycle_error_context(void *arg)
{
	CycleState *cs = (CycleState *) arg;

	if (cs->cycle_id > 0)
		errcontext("settle cycle %lld (%s), stage: %s", (long long) cs->cycle_id, cs->run_by, cs->stage);
	else
		errcontext("settle cycle (%s), stage: %s", cs->run_by, cs->stage);
}

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
static int
expire_overdue(void)
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
static void
load_currencies(CycleState *cs)
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
static void
load_queue(CycleState *cs, char **skip, int n_skip, const char *new_from_xid)
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

/*
 * Hold payments the cycle cannot handle (or whose participant is suspended):
 * status 'held' with the reason, one 'held' event each.  They stay visible in
 * settle.transactions; settle_release_payment() queues them again,
 * settle_cancel_payment() ends them.  The rows are locked by this cycle.
 */
void
settle_hold_payments(int64 *ids, char **reasons, int n)
{
	SpiArgs		a = {0};

	spi_arg_int8s(&a, ids, n);
	spi_arg_texts(&a, reasons, n);
	if (settle_spi_execute(
							  "WITH h AS ("
							  " UPDATE settle.payment p SET status = 'held', hold_reason = u.reason,"
							  "        updated_at = pg_catalog.clock_timestamp()"
							  "   FROM (SELECT pg_catalog.unnest($1) AS id, pg_catalog.unnest($2) AS reason) u"
							  "  WHERE p.payment_id = u.id AND p.status = 'queued'"
							  " RETURNING p.payment_id, p.hold_reason, p.updated_at)"
							  "INSERT INTO settle.event (occurred_at, entity, entity_id, event_type, from_status, to_status, details)"
							  "SELECT h.updated_at, 'payment', h.payment_id::text, 'held', 'queued', 'held',"
							  "       pg_catalog.jsonb_build_object('reason', h.hold_reason)"
							  "  FROM h",
							  a.n, a.types, a.values, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "holding payments failed");
}

/* Lock and load every account the queue touches, in account order. */
static void
load_accounts(CycleState *cs)
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
static void
load_wires(CycleState *cs)
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

/*
 * Keep out of the cycle what its arithmetic cannot carry.  Every amount the
 * cycle writes is an int64 sum: an account's balance (and, two-phase, its
 * pending amounts) after the cycle, the solver's available + credits and
 * available - debits, a wire's debit and credit totals, the operator's
 * settlement account of each currency.  Payments are taken oldest first;
 * one that would take any of those sums out of range together with the ones
 * taken before it stays queued for a later cycle, so that an extreme payment
 * cannot stop every other one (the solver refuses a whole instance whose
 * sums could overflow).  A payment that does not fit even alone can never
 * settle: it is held, with the reason and an event, for an operator.
 */
static void
guard_ranges(CycleState *cs)
{
	int128	   *acc_in = palloc0(sizeof(int128) * Max(cs->n_accounts, 1));
	int128	   *acc_out = palloc0(sizeof(int128) * Max(cs->n_accounts, 1));
	int128	   *wire_debit = palloc0(sizeof(int128) * Max(cs->n_wires, 1));
	int128	   *wire_credit = palloc0(sizeof(int128) * Max(cs->n_wires, 1));
	int128	   *ccy_in = palloc0(sizeof(int128) * Max(cs->n_currencies, 1));
	int128	   *ccy_out = palloc0(sizeof(int128) * Max(cs->n_currencies, 1));
	int128	   *ccy_balance = palloc0(sizeof(int128) * Max(cs->n_currencies, 1));
	int64	   *hold_ids = palloc(sizeof(int64) * Max(cs->n_payments, 1));
	char	  **hold_reasons = palloc(sizeof(char *) * Max(cs->n_payments, 1));
	int			n_hold = 0;
	int			kept = 0;
	int			i;
	uint64		r;
	const int128 max = PG_INT64_MAX;
	const int128 min = PG_INT64_MIN;

	if (settle_spi_execute("SELECT currency, balance FROM settle.account WHERE kind = 'settlement'", 0, NULL, NULL, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "reading the settlement accounts failed");
	for (r = 0; r < SPI_processed; r++)
	{
		bool		isnull;
		int			c = name_lookup(cs->currency_index,
									SPI_getvalue(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1));

		if (c >= 0)
			ccy_balance[c] = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 2, &isnull));
	}

	for (i = 0; i < cs->n_payments; i++)
	{
		CyclePayment *p = &cs->payments[i];
		int			pass;
		const char *why = NULL;

		/* pass 0: with what is already taken; pass 1: alone */
		for (pass = 0; pass < 2; pass++)
		{
			CycleAccount *src = &cs->accounts[p->src];
			CycleAccount *dst = &cs->accounts[p->dst];
			int128		out = (pass == 0 ? acc_out[p->src] : 0) + p->debit;
			int128		in = (pass == 0 ? acc_in[p->dst] : 0) + p->credit;
			int128		s_avail = (int128) src->balance + src->lower_limit;
			int128		d_avail = (int128) dst->balance + dst->lower_limit;
			int128		wd = (pass == 0 ? wire_debit[p->wire_src] : 0) + p->debit;
			int128		wc = (pass == 0 ? wire_credit[p->wire_dst] : 0) + p->credit;
			int128		ci = (pass == 0 ? ccy_in[p->source_ccy] : 0) + p->debit;
			int128		co = (pass == 0 ? ccy_out[p->destination_ccy] : 0) + p->credit;

			why = NULL;
			if (s_avail - out < min || (int128) src->posted - out < min ||
				(int128) src->pending_debit + out > max)
				why = psprintf("its debit would take account %s beyond the range of a balance", src->account_id);
			else if (d_avail + in > max || (int128) dst->posted + in > max ||
					 (int128) dst->pending_credit + in > max)
				why = psprintf("its credit would take account %s beyond the range of a balance", dst->account_id);
			else if (wd > max || wc > max)
				why = pstrdup("a wire total would be beyond the range of an amount");
			else if (ccy_balance[p->source_ccy] + ci > max ||
					 ccy_balance[p->destination_ccy] - co < min)
				why = pstrdup("the operator's settlement account would be beyond the range of a balance");
			if (why == NULL)
				break;
		}
		if (why == NULL && pass == 0)
		{
			acc_out[p->src] += p->debit;
			acc_in[p->dst] += p->credit;
			wire_debit[p->wire_src] += p->debit;
			wire_credit[p->wire_dst] += p->credit;
			ccy_in[p->source_ccy] += p->debit;
			ccy_out[p->destination_ccy] += p->credit;
			cs->payments[kept++] = *p;
			continue;
		}
		cs->held++;				/* considered, left unsettled */
		if (why == NULL)
		{
			note_waiting(cs, p->payment_id);	/* fits alone: a later cycle */
			settle_quiet_noisy(p->source_account);
		}
		else
		{
			/* it does not fit even alone: it never will */
			hold_ids[n_hold] = p->payment_id;
			hold_reasons[n_hold++] = (char *) why;
		}
	}
	cs->n_payments = kept;
	cs->n_newly_held += n_hold;
	if (n_hold > 0)
		settle_hold_payments(hold_ids, hold_reasons, n_hold);
}

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
static void
build_and_solve(CycleState *cs)
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

/* The cycle's completed event, after the WITH c AS (INSERT INTO settle.cycle ...) */
#define CYCLE_COMPLETED_EVENT \
	"INSERT INTO settle.event (entity, entity_id, event_type, to_status, details)" \
	"SELECT 'cycle', cycle_id::text, 'completed', 'completed'," \
	"       jsonb_build_object('settled', $6, 'expired', $9, 'batches', $11, 'solver_status', $22::text)" \
	"  FROM c"

/*
 * Write the cycle record and its event; log one line if the cycle did work.
 * The netting-only baseline's columns are written where they exist (1.1's
 * SQL; the library also runs 1.0's, COMPATIBLE_SQL).
 */
static void
record_cycle(CycleState *cs)
{
	Oid			types[29];
	Datum		values[29];
	char		nulls[29];
	int			i;
	/* settle.cycle of a database still at 1.0's SQL has no netting-only baseline */
	bool		with_netted = settle_sql_release() >= SETTLE_SQL_1_1;
	double		cycle_ms;
	instr_time	now;
	static const char *status_names[] = {"optimal", "feasible", "heuristic", "interrupted", "error"};
	const char *status_name = status_names[cs->solver_status];
	double		lp_pct = -1;

	INSTR_TIME_SET_CURRENT(now);
	INSTR_TIME_SUBTRACT(now, cs->start_instr);
	cycle_ms = INSTR_TIME_GET_MILLISEC(now);
	if (cs->result.lp_weight_bound > 0)
		lp_pct = 100.0 * cs->result.settled_weight / cs->result.lp_weight_bound;

	memset(nulls, ' ', sizeof(nulls));
	i = 0;
#define ARG(type, datum) (types[i] = (type), values[i] = (datum), i++)
#define NUMARG(x) ARG(NUMERICOID, DirectFunctionCall1(float8_numeric, Float8GetDatum(x)))
	ARG(INT8OID, Int64GetDatum(cs->cycle_id));
	ARG(TIMESTAMPTZOID, TimestampTzGetDatum(cs->started_at));
	ARG(TEXTOID, CStringGetTextDatum(cs->run_by));
	ARG(TEXTOID, CStringGetTextDatum(settle_reference_currency));
	ARG(INT4OID, Int32GetDatum(cs->n_payments + cs->held));
	ARG(INT4OID, Int32GetDatum(cs->n_settled));
	ARG(INT4OID, Int32GetDatum(cs->n_deferred));
	ARG(INT4OID, Int32GetDatum(cs->n_payments - cs->n_settled - cs->n_deferred + cs->held));
	ARG(INT4OID, Int32GetDatum(cs->n_expired));
	NUMARG(cs->settled_value);
	ARG(INT4OID, Int32GetDatum(cs->n_batches));
	ARG(INT4OID, Int32GetDatum(cs->n_wires_sent));
	NUMARG(cs->fee_cost);
	NUMARG(cs->fx_cost);
	NUMARG(cs->fee_cost + cs->fx_cost);
	ARG(INT4OID, Int32GetDatum(cs->fifo.settled));
	NUMARG(cs->fifo.value);
	NUMARG(cs->fifo.cost);
	ARG(INT4OID, Int32GetDatum(cs->naive.wires));
	NUMARG(cs->naive.cost);
	NUMARG(lp_pct);
	if (lp_pct < 0)
		nulls[i - 1] = 'n';
	ARG(TEXTOID, CStringGetTextDatum(status_name));
	ARG(TEXTOID, CStringGetTextDatum(cs->result.method[0] ? cs->result.method : "none"));
	ARG(FLOAT8OID, Float8GetDatum(cs->result.solve_ms));
	ARG(FLOAT8OID, Float8GetDatum(cycle_ms));
	ARG(INT8OID, Int64GetDatum(cs->journal_id));
	if (cs->journal_id == 0)
		nulls[i - 1] = 'n';
	if (with_netted)
	{
		ARG(INT4OID, Int32GetDatum(cs->fifo_netted.wires));
		NUMARG(cs->fifo_netted.cost);
	}
#undef ARG
#undef NUMARG

	if (settle_spi_execute(with_netted ?
							  "WITH c AS ("
							  " INSERT INTO settle.cycle (cycle_id, started_at, finished_at, run_by, reference_currency,"
							  "   considered, settled, deferred, unsettled, expired, settled_value, batches, wires,"
							  "   fee_cost, fx_cost, cost, fifo_settled, fifo_value, fifo_cost, naive_wires, naive_cost,"
							  "   lp_bound_pct, solver_status, solver_method, solver_ms, cycle_ms, journal_id,"
							  "   fifo_netted_wires, fifo_netted_cost)"
							  " VALUES ($1, $2, clock_timestamp(), $3, $4, $5, $6, $7, $8, $9, round($10, 4), $11, $12,"
							  "   round($13, 4), round($14, 4), round($15, 4), $16, round($17, 4), round($18, 4), $19,"
							  "   round($20, 4), round($21, 3), $22, $23, $24, $25, $26, $27, round($28, 4))"
							  " RETURNING cycle_id)"
							  CYCLE_COMPLETED_EVENT :
							  "WITH c AS ("
							  " INSERT INTO settle.cycle (cycle_id, started_at, finished_at, run_by, reference_currency,"
							  "   considered, settled, deferred, unsettled, expired, settled_value, batches, wires,"
							  "   fee_cost, fx_cost, cost, fifo_settled, fifo_value, fifo_cost, naive_wires, naive_cost,"
							  "   lp_bound_pct, solver_status, solver_method, solver_ms, cycle_ms, journal_id)"
							  " VALUES ($1, $2, clock_timestamp(), $3, $4, $5, $6, $7, $8, $9, round($10, 4), $11, $12,"
							  "   round($13, 4), round($14, 4), round($15, 4), $16, round($17, 4), round($18, 4), $19,"
							  "   round($20, 4), round($21, 3), $22, $23, $24, $25, $26)"
							  " RETURNING cycle_id)"
							  CYCLE_COMPLETED_EVENT,
							  i, types, values, nulls, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "recording the cycle failed");

	if (cs->n_settled > 0 || cs->n_expired > 0)
		ereport(LOG,
				(errhidecontext(true),
				 errmsg("settle cycle %lld: %d of %d settled in %d batches (%d wires), %d deferred, %d expired;"
						" value %.2f %s, cost %.2f (naive %.2f, fifo %.2f for %d); solver %s/%s %.1f ms; cycle %.1f ms",
						(long long) cs->cycle_id, cs->n_settled, cs->n_payments + cs->held,
						cs->n_batches, cs->n_wires_sent, cs->n_deferred, cs->n_expired,
						cs->settled_value, settle_reference_currency,
						cs->fee_cost + cs->fx_cost, cs->naive.cost, cs->fifo.cost, cs->fifo.settled,
						status_name, cs->result.method, cs->result.solve_ms, cycle_ms)));
}

int64
settle_run_cycle(const char *run_by, SettleCycleOutcome *outcome)
{
	MemoryContext outer = CurrentMemoryContext;
	MemoryContext work;
	CycleState *cs;
	int64		cycle_id;
	bool		isnull;
	int			i;
	ErrorContextCallback errcallback;
	int			guc_level;

	settle_check_version();
	settle_check_fence("a settlement cycle");
	/* an orphan: its commit would wait in SyncRep holding the cycle lock */
	settle_check_sync_standby("a settlement cycle");
	if (outcome != NULL)
		memset(outcome, 0, sizeof(*outcome));
	work = AllocSetContextCreate(outer, "settle cycle", ALLOCSET_DEFAULT_SIZES);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	/* whoever runs the cycle (the worker as superuser), names resolve in pg_catalog only */
	guc_level = settle_pin_search_path();
	MemoryContextSwitchTo(work);

	cs = palloc0(sizeof(CycleState));
	cs->run_by = run_by;
	cs->started_at = GetCurrentTimestamp();
	INSTR_TIME_SET_CURRENT(cs->start_instr);
	cs->cur_stage = -1;
	enter_stage(cs, CYCLE_STAGE_LOCK, "waiting for the cycle lock");
	errcallback.callback = cycle_error_context;
	errcallback.arg = cs;
	errcallback.previous = error_context_stack;
	error_context_stack = &errcallback;

	lock_cycles(run_by);

	enter_stage(cs, CYCLE_STAGE_EXPIRE, "expiring overdue payments");
	cs->n_expired = expire_overdue();
	/* a group with an expired or failed member ends with it */
	settle_links_housekeeping();
	enter_stage(cs, CYCLE_STAGE_LOAD, "loading the queue");
	load_currencies(cs);
	{
		int			n_skip;
		char	   *new_from;
		char	  **skip = settle_quiet_skip(&n_skip, &new_from, &cs->n_skipped, &cs->skipped_oldest);

		load_queue(cs, skip, n_skip, new_from);
	}
	if (cs->n_payments == 0 && cs->n_expired == 0 && cs->held == 0)
	{
		settle_quiet_collect(cs);	/* the skipped payers stay quiet */
		enter_stage(cs, CYCLE_STAGE_OUTCOME, NULL);
		if (outcome != NULL)
			set_outcome(cs, outcome);
		log_stages(cs);
		error_context_stack = errcallback.previous;
		settle_unpin_search_path(guc_level);
		SPI_finish();
		MemoryContextSwitchTo(outer);
		MemoryContextDelete(work);
		return 0;
	}
	enter_stage(cs, CYCLE_STAGE_ACCOUNTS, "locking accounts");
	load_accounts(cs);
	load_wires(cs);
	guard_ranges(cs);
	settle_links_filter(cs);

	if (settle_spi_execute("SELECT pg_catalog.nextval('settle.cycle_id_seq'::pg_catalog.regclass)", 0, NULL, NULL, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not allocate a cycle id");
	cs->cycle_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));

	enter_stage(cs, CYCLE_STAGE_SOLVE, "solving");
	if (cs->n_payments > 0)
		build_and_solve(cs);
	else
		cs->solver_status = SOLVER_OPTIMAL;

	for (i = 0; i < cs->n_payments; i++)
	{
		if (cs->selected[i])
		{
			cs->n_settled++;
			cs->settled_value += cs->payments[i].value;
		}
		else if (cs->payments[i].deferrable)
			cs->n_deferred++;
		else
			note_waiting(cs, cs->payments[i].payment_id);
	}
	settle_quiet_collect(cs);
	enter_stage(cs, CYCLE_STAGE_POST, settle_two_phase ? "reserving" : "posting");
	if (cs->n_settled > 0)
		settle_post_selection(cs);
	if (cs->n_settled == 0 && cs->n_expired == 0 && strcmp(run_by, "worker") == 0)
	{
		/*
		 * A worker cycle that changed nothing (everything deferred or
		 * waiting) writes no record: a payment deferred to a far deadline
		 * would otherwise add a cycle row and an event every interval.
		 * It is counted instead (settle_worker_status(), settle.metrics).
		 */
		settle_worker_state_note_unchanged();
		cycle_id = 0;
	}
	else
	{
		enter_stage(cs, CYCLE_STAGE_BASELINES, "recording");
		settle_compute_baselines(cs);
		enter_stage(cs, CYCLE_STAGE_RECORD, NULL);
		record_cycle(cs);
		settle_liquidity_prices_record(cs, cs->account_price, DUE_FACTOR);
		/* issue #33: early warnings, in the cycle's transaction (their NOTIFY at its commit) */
		settle_controls_check_alerts();
		enter_stage(cs, CYCLE_STAGE_NOTIFY, NULL);
		if (!settle_two_phase)
			notify_settled(cs);
		cycle_id = cs->cycle_id;
	}
	enter_stage(cs, CYCLE_STAGE_OUTCOME, NULL);
	if (outcome != NULL)
		set_outcome(cs, outcome);
	log_stages(cs);

	error_context_stack = errcallback.previous;
	settle_unpin_search_path(guc_level);
	SPI_finish();
	MemoryContextSwitchTo(outer);
	MemoryContextDelete(work);
	return cycle_id;
}

/* settle._run_cycle(run_by) -> cycle_id or NULL. */
Datum
settle_run_cycle_sql(PG_FUNCTION_ARGS)
{
	const char *run_by = PG_ARGISNULL(0) ? "manual" : text_to_cstring(PG_GETARG_TEXT_PP(0));
	int64		id;

	if (strcmp(run_by, "manual") != 0 && strcmp(run_by, "worker") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("run_by must be manual or worker")));
	id = settle_run_cycle(run_by, NULL);
	if (id == 0)
		PG_RETURN_NULL();
	PG_RETURN_INT64(id);
}
