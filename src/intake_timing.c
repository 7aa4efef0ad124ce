/*
 * intake_timing.c -- a payment's earliest settlement time at intake (issue
 * #33, docs/PARTICIPANT_CONTROLS.md "Timed payments"; 1.2's SQL).
 *
 * settle_submit's not_before (the bulk key "not_before"): the cycle does not
 * take the payment before then (src/cycle.c).  Like a link, it is written
 * after the insert, for the rows that have one (the insert itself stays the
 * same for every release's SQL), and a replay is answered with the
 * original only if it repeats the stored time: otherwise it changed the
 * payment, a conflict (SE060) as for any other field.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "intake_int.h"
#include "rfc3339.h"
#include "settle_errors.h"
#include "spi_util.h"
#include "version.h"

/* After the insert: the earliest time of the rows inserted just now. */
void
intake_timing_record(IntakeRow *rows, int n)
{
	int64	   *ids = palloc(sizeof(int64) * n);
	Datum	   *times = palloc(sizeof(Datum) * n);
	int			m = 0;
	int			i;
	Datum		values[2];
	Oid			types[2] = {INT8ARRAYOID, TIMESTAMPTZARRAYOID};

	for (i = 0; i < n; i++)
		if (rows[i].duplicate_of == -2 && rows[i].has_not_before)
		{
			ids[m] = rows[i].payment_id;
			times[m++] = TimestampTzGetDatum(rows[i].not_before);
		}
	if (m == 0)
		return;
	values[0] = PointerGetDatum(settle_int8_array(ids, m));
	values[1] = PointerGetDatum(construct_array(times, m, TIMESTAMPTZOID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	if (SPI_execute_with_args("UPDATE settle.payment p SET not_before = x.t"
							  "  FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2)) AS x(id, t)"
							  " WHERE p.payment_id OPERATOR(pg_catalog.=) x.id",
							  2, types, values, NULL, false, 0) != SPI_OK_UPDATE ||
		SPI_processed != (uint64) m)
		elog(ERROR, "recording the earliest settlement times failed");
}

/* A replay repeats the stored earliest time (both none, or the same), or conflicts. */
void
intake_timing_check_replays(IntakeRow *rows, int n)
{
	MemoryContext caller = CurrentMemoryContext;
	int64	   *ids = palloc(sizeof(int64) * n);
	int			m = 0;
	int			i;
	Datum		values[1];
	Oid			types[1] = {INT8ARRAYOID};
	uint64		r;

	for (i = 0; i < n; i++)
		if (rows[i].sqlerrcode == 0 && rows[i].replay && rows[i].duplicate_of == -1)
			ids[m++] = rows[i].payment_id;
	if (m == 0 || settle_sql_release() < SETTLE_SQL_1_2)
		return;
	values[0] = PointerGetDatum(settle_int8_array(ids, m));
	if (SPI_execute_with_args("SELECT p.payment_id, p.not_before FROM settle.payment p"
							  " WHERE p.payment_id OPERATOR(pg_catalog.=) ANY ($1)",
							  1, types, values, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "reading the earliest times of replayed payments failed");
	/* SPI returns in its procedure context, freed at SPI_finish: the refusal texts go to the caller's */
	MemoryContextSwitchTo(caller);
	for (r = 0; r < SPI_processed; r++)
	{
		HeapTuple	tup = SPI_tuptable->vals[r];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		int64		id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
		Datum		t = SPI_getbinval(tup, desc, 2, &isnull);
		bool		has = !isnull;
		TimestampTz stored = has ? DatumGetTimestampTz(t) : 0;

		for (i = 0; i < n; i++)
		{
			IntakeRow  *row = &rows[i];
			char		when[32];

			if (!(row->sqlerrcode == 0 && row->replay && row->duplicate_of == -1 && row->payment_id == id))
				continue;
			if (row->has_not_before == has && (!has || row->not_before == stored))
				continue;
			if (has)
				settle_format_rfc3339(stored, when);
			row->replay = false;
			intake_refuse(row, ERRCODE_SETTLE_IDEMPOTENCY_CONFLICT,
						  psprintf("idempotency_key \"%s\" was already used for a different payment",
								   row->idempotency_key),
						  psprintf("Payment %lld was submitted with not_before %s.", (long long) id,
								   has ? when : "none"),
						  pstrdup("A retry must repeat the original request exactly; a new payment needs a new key."));
		}
	}
}
