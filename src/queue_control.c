/*
 * queue_control.c -- queue management by the payer (issue #33,
 * src/sql/89_queue.sql, docs/PARTICIPANT_CONTROLS.md "Your queue").
 *
 * settle._queue_change(payment_id, action, arg) runs with the caller's
 * rights, so that it can tell who calls (an operator, or the participant
 * its role is mapped to, as row-level security does); the change itself is
 * made by settle._queue_apply() as the owner of the settle tables, told the
 * caller's participant (NULL for an operator), which refuses another
 * payer's payment.  Nobody else may execute settle._queue_apply(): a
 * participant cannot claim to be another.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"

#include "intake_int.h"
#include "settle_errors.h"

PG_FUNCTION_INFO_V1(settle_queue_change_sql);

Datum
settle_queue_change_sql(PG_FUNCTION_ARGS)
{
	Oid			save_userid;
	int			save_sec_context;
	bool		isnull;
	bool		is_operator;
	MemoryContext outer = CurrentMemoryContext;
	char	   *answer;
	char	   *mine;
	char	   *caller = GetUserNameFromId(GetUserId(), false);
	Oid			types[5] = {INT8OID, TEXTOID, TEXTOID, TEXTOID, TEXTOID};
	Datum		args[5];
	char		nulls[5] = {' ', ' ', ' ', ' ', ' '};
	text	   *result;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_SETTLE_NULL_FIELD),
				 errmsg("payment_id must not be null")));
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	/* who calls, with the caller's rights */
	if (SPI_execute("SELECT pg_catalog.pg_has_role(CURRENT_USER, 'settle_operator', 'MEMBER')"
					"    OR (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) CURRENT_USER),"
					"       settle.current_participant()", true, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "could not tell who is calling");
	is_operator = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)) && !isnull;
	mine = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
	if (!is_operator && mine == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_SETTLE_ROLE_NOT_MAPPED),
				 errmsg("role \"%s\" is not mapped to a participant", caller)));
	args[0] = PG_GETARG_DATUM(0);
	args[1] = PG_GETARG_DATUM(1);
	args[2] = PG_ARGISNULL(2) ? (Datum) 0 : PG_GETARG_DATUM(2);
	nulls[2] = PG_ARGISNULL(2) ? 'n' : ' ';
	args[3] = is_operator ? (Datum) 0 : CStringGetTextDatum(mine);
	nulls[3] = is_operator ? 'n' : ' ';
	args[4] = CStringGetTextDatum(caller);
	/* as the owner of the settle tables (restored below, or by the abort) */
	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(settle_intake_tables_owner(), save_sec_context | SECURITY_LOCAL_USERID_CHANGE);
	if (SPI_execute_with_args("SELECT settle._queue_apply($1, $2, $3, $4, $5)", 5, types, args, nulls, false, 1)
		!= SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "settle._queue_apply failed");
	SetUserIdAndSecContext(save_userid, save_sec_context);
	answer = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	/* the answer outlives SPI's memory */
	MemoryContextSwitchTo(outer);
	result = cstring_to_text(answer);
	SPI_finish();
	PG_RETURN_TEXT_P(result);
}
