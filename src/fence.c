/*
 * fence.c -- a restored copy starts fenced.
 *
 * Lifecycle (docs/OPERATIONS.md, "Physical backups and point-in-time
 * recovery").  A database restored from a physical backup holds the same
 * queue, outbox and calendar as the original: left alone it would run
 * cycles, hand batches to the rail and run the pg_cron jobs a second time,
 * next to the original or in place of a ledger the operator has not
 * checked yet.  So a restored copy is fenced until an operator releases it:
 * no cycle (worker or by hand), no intake, no rail traffic, no calendar job
 * (SE153); reading, auditing and verifying work.
 *
 * settle.fence (sighup): 'auto' fences a server started with a recovery
 * target (point-in-time recovery: recovery_target*, as pgBackRest's
 * --type=time/xid/lsn/name writes them); 'on' fences (a restore without a
 * target sets it: pgbackrest restore --recovery-option=settle.fence=on, or
 * postgresql.auto.conf); 'off' releases (ALTER SYSTEM SET settle.fence =
 * off; SELECT pg_reload_conf()).
 *
 * A logical copy (restored from pg_dump into another database or server)
 * is fenced too, per database, whatever settle.fence says, until released
 * with settle_release_copy() (origin.c).
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/guc.h"

#include "fence.h"
#include "origin.h"
#include "settle_errors.h"

PG_FUNCTION_INFO_V1(settle_fence_state);
PG_FUNCTION_INFO_V1(settle_check_fence_sql);

typedef enum
{
	FENCE_AUTO,
	FENCE_ON,
	FENCE_OFF
} FenceMode;

static const struct config_enum_entry fence_options[] = {
	{"auto", FENCE_AUTO, false},
	{"on", FENCE_ON, false},
	{"off", FENCE_OFF, false},
	{NULL, 0, false}
};

static int	settle_fence = FENCE_AUTO;

void
settle_fence_define_settings(void)
{
	DefineCustomEnumVariable("settle.fence",
							 "Fences a restored copy: no cycles, intake, rail traffic or calendar jobs.",
							 "auto: fenced when the server was started with a recovery target (point-in-time recovery); "
							 "on: fenced; off: released by an operator.",
							 &settle_fence, FENCE_AUTO, fence_options,
							 PGC_SIGHUP, 0, NULL, NULL, NULL);
}

/*
 * Whether a recovery target is set (the server did point-in-time recovery).
 * They are postmaster settings: looked up once per backend (intake asks on
 * every call).
 */
static bool
recovery_target_set(void)
{
	static const char *const targets[] = {
		"recovery_target", "recovery_target_time", "recovery_target_xid",
		"recovery_target_lsn", "recovery_target_name", NULL
	};
	static int	known = -1;
	int			i;

	if (known >= 0)
		return known == 1;
	known = 0;
	for (i = 0; targets[i]; i++)
	{
		const char *v = GetConfigOption(targets[i], true, false);

		if (v != NULL && v[0] != '\0')
			known = 1;
	}
	return known == 1;
}

/* the last settle_fenced() answer was a logical copy's (another hint) */
static bool fenced_as_copy = false;

bool
settle_fenced(const char **why)
{
	fenced_as_copy = false;
	switch (settle_fence)
	{
		case FENCE_ON:
			*why = "settle.fence is on";
			return true;
		case FENCE_OFF:
			*why = "released (settle.fence = off)";
			break;
		default:
			if (recovery_target_set())
			{
				*why = "the server was started with a recovery target (point-in-time recovery) and settle.fence is auto";
				return true;
			}
			*why = "not a restored copy (settle.fence = auto, no recovery target)";
			break;
	}
	if (settle_origin_copy(why))
	{
		fenced_as_copy = true;
		return true;
	}
	return false;
}

void
settle_check_fence(const char *what)
{
	const char *why;

	if (settle_fenced(&why))
		ereport(ERROR,
				(errcode(ERRCODE_SETTLE_FENCED),
				 errmsg(fenced_as_copy ? "%s refused: this database is a fenced copy" : "%s refused: this server is fenced", what),
				 errdetail("%s.", why),
				 fenced_as_copy ?
				 errhint("A restored copy does nothing to the outside world until an operator checks it and releases it: "
						 "SELECT * FROM settle_release_copy('why it may settle');") :
				 errhint("A restored copy does nothing to the outside world until an operator checks it and releases it: "
						 "ALTER SYSTEM SET settle.fence = off; SELECT pg_reload_conf();")));
}

/* settle_fence_state(): (fenced, why). */
Datum
settle_fence_state(PG_FUNCTION_ARGS)
{
	TupleDesc	desc;
	Datum		values[2];
	bool		nulls[2] = {false, false};
	const char *why;

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "settle_fence_state must return a record");
	desc = BlessTupleDesc(desc);
	values[0] = BoolGetDatum(settle_fenced(&why));
	values[1] = CStringGetTextDatum(why);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
}

/* settle._check_fence(what): settle_check_fence for SQL functions. */
Datum
settle_check_fence_sql(PG_FUNCTION_ARGS)
{
	settle_check_fence(text_to_cstring(PG_GETARG_TEXT_PP(0)));
	PG_RETURN_VOID();
}
