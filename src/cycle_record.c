/*
 * cycle_record.c -- what a cycle leaves behind (cycle.c's stage 5): its
 * record and completed event, the NOTIFY of settled payments, and its
 * outcome for the caller (the worker's pacing).
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "commands/async.h"
#include "executor/spi.h"
#include "portability/instr_time.h"
#include "utils/builtins.h"

#include "backlog.h"
#include "cycle.h"
#include "cycle_int.h"
#include "cycle_state.h"
#include "netting.h"
#include "spi_util.h"
#include "version.h"

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
void
settle_cycle_set_outcome(CycleState *cs, SettleCycleOutcome *o)
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
void
settle_cycle_notify_settled(CycleState *cs)
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
void
settle_cycle_record(CycleState *cs)
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
