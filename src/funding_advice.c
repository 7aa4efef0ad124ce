/*
 * funding_advice.c -- a participant's treasurer asks what liquidity buys
 * (issue #21, docs/ALGORITHM.md "Liquidity prices and funding advice").
 *
 *   - after each cycle, the LP relaxation's price of every account's
 *     liquidity (src/solver_duals.c) goes into settle.liquidity_price, one
 *     multi-row INSERT of the accounts whose price is positive;
 *   - settle._topup_solve(): arrays in, settle_solve_topup() (exact MIPs)
 *     out, for settle._funding_advice() (src/sql/85_funding_advice.sql):
 *     1.1's SQL passes one currency's queue (8 arguments), 1.2's the whole
 *     queue with credits, wires and FX pairs (15);
 *   - settle_funding_advice(participant_id): the caller's rights decide
 *     whose advice it may have (its own participant, or any for operators
 *     and auditors), then settle._funding_advice() runs as the owner of the
 *     settle tables, since the advice weighs the whole queue (others'
 *     payments included) but returns only the caller's payments and totals.
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/tuplestore.h"

#include "funding_advice.h"
#include "version.h"
#include "intake_int.h"
#include "settle_errors.h"
#include "solver_duals.h"

PG_FUNCTION_INFO_V1(settle_topup_solve_sql);
PG_FUNCTION_INFO_V1(settle_topup_solve_1_2);
PG_FUNCTION_INFO_V1(settle_funding_advice_sql);

bool		settle_record_liquidity_prices = true;

void
settle_funding_define_settings(void)
{
	DefineCustomBoolVariable("settle.liquidity_prices",
							 "Record each cycle's LP price of every account's liquidity (settle.liquidity_price).",
							 "Only accounts whose price is positive get a row; off: nothing recorded.",
							 &settle_record_liquidity_prices,
							 true, PGC_SUSET, 0, NULL, NULL, NULL);
}

double *
settle_liquidity_prices_prepare(int n_accounts)
{
	if (!settle_record_liquidity_prices || n_accounts <= 0)
		return NULL;
	/* a database still on 1.0's SQL has no table for the prices */
	if (settle_sql_release() < SETTLE_SQL_1_1)
		return NULL;
	return palloc0(sizeof(double) * n_accounts);
}

void
settle_liquidity_prices_record(const CycleState *cs, const double *price, double due_factor)
{
	Datum	   *accounts;
	Datum	   *prices;
	Datum	   *values;
	int			n = 0;
	int			i;
	Oid			types[4] = {INT8OID, TEXTARRAYOID, FLOAT8ARRAYOID, FLOAT8ARRAYOID};
	Datum		args[4];

	if (price == NULL)
		return;
	accounts = palloc(sizeof(Datum) * cs->n_accounts);
	prices = palloc(sizeof(Datum) * cs->n_accounts);
	values = palloc(sizeof(Datum) * cs->n_accounts);
	for (i = 0; i < cs->n_accounts; i++)
	{
		const CycleCurrency *c = &cs->currencies[cs->accounts[i].currency];
		double		per_major;

		if (!(price[i] > 0))
			continue;
		/*
		 * value_per_unit: the objective is priority/5 x reference value x
		 * due_factor for a due payment; per major unit of the account's
		 * currency, in reference value: a dimensionless "settled
		 * priority-weighted value per unit of liquidity".
		 */
		per_major = price[i];
		for (int e = 0; e < c->exponent; e++)
			per_major *= 10.0;
		accounts[n] = CStringGetTextDatum(cs->accounts[i].account_id);
		prices[n] = Float8GetDatum(price[i]);
		values[n] = Float8GetDatum(c->to_reference > 0 ? per_major / c->to_reference / due_factor : 0);
		n++;
	}
	if (n == 0)
		return;
	args[0] = Int64GetDatum(cs->cycle_id);
	args[1] = PointerGetDatum(construct_array(accounts, n, TEXTOID, -1, false, TYPALIGN_INT));
	args[2] = PointerGetDatum(construct_array(prices, n, FLOAT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	args[3] = PointerGetDatum(construct_array(values, n, FLOAT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	if (SPI_execute_with_args("INSERT INTO settle.liquidity_price (cycle_id, account_id, participant_id, currency,"
							  "                                    price, value_per_unit)"
							  " SELECT $1, x.account_id, a.participant_id, a.currency, x.price, x.value_per_unit"
							  "   FROM ROWS FROM (pg_catalog.unnest($2), pg_catalog.unnest($3), pg_catalog.unnest($4)) AS x(account_id, price, value_per_unit)"
							  "   JOIN settle.account a ON a.account_id OPERATOR(pg_catalog.=) x.account_id",
							  4, types, args, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "recording the liquidity prices failed");
}

/* The elements of a one-dimensional array argument without NULLs. */
static int
array_elements(ArrayType *a, Oid type, Datum **elems, const char *name)
{
	bool	   *nulls;
	int			n;
	int16		typlen;
	bool		typbyval;
	char		typalign;

	if (ARR_NDIM(a) > 1)
		ereport(ERROR, (errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR), errmsg("%s must be one-dimensional", name)));
	get_typlenbyvalalign(type, &typlen, &typbyval, &typalign);
	deconstruct_array(a, type, typlen, typbyval, typalign, elems, &nulls, &n);
	for (int i = 0; i < n; i++)
		if (nulls[i])
			ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("%s must not contain NULL", name)));
	return n;
}

/*
 * settle._topup_solve(target, available[], constrained[], src[], dst[],
 * amount[], weight[], time_limit_ms [, credit[], wire_src[], wire_dst[],
 * wire_fee[], pair[], volume[], spread[]]): accounts, payments, wires and
 * pairs numbered from 1; a wire or pair of 0 is none.
 */
static Datum
topup_solve(FunctionCallInfo fcinfo, bool with_queue)
{
	TupleDesc	tupdesc;
	TopupProblem tp;
	TopupResult r;
	Datum	   *avail_d,
			   *cons_d,
			   *src_d,
			   *dst_d,
			   *amount_d,
			   *weight_d;
	int			na,
				np;
	int64_t    *available;
	bool	   *constrained;
	int		   *src,
			   *dst;
	int64_t    *amount;
	double	   *weight;
	Datum		out[7];
	bool		nulls[7] = {false};
	Datum	   *now_d,
			   *topped_d;
	int64_t    *credit = NULL;
	int		   *wire_src = NULL,
			   *wire_dst = NULL,
			   *pair = NULL;
	double	   *wire_fee = NULL,
			   *volume = NULL,
			   *spread = NULL;
	int			nw = 0,
				nk = 0;
	static const char *status_names[] = {"optimal", "feasible", "error"};

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "settle._topup_solve must return a record");
	na = array_elements(PG_GETARG_ARRAYTYPE_P(1), INT8OID, &avail_d, "available");
	if (array_elements(PG_GETARG_ARRAYTYPE_P(2), BOOLOID, &cons_d, "constrained") != na)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("available and constrained differ in length")));
	np = array_elements(PG_GETARG_ARRAYTYPE_P(3), INT4OID, &src_d, "src");
	if (array_elements(PG_GETARG_ARRAYTYPE_P(4), INT4OID, &dst_d, "dst") != np ||
		array_elements(PG_GETARG_ARRAYTYPE_P(5), INT8OID, &amount_d, "amount") != np ||
		array_elements(PG_GETARG_ARRAYTYPE_P(6), FLOAT8OID, &weight_d, "weight") != np)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("the payment arrays differ in length")));
	available = palloc(sizeof(int64_t) * Max(na, 1));
	constrained = palloc(sizeof(bool) * Max(na, 1));
	src = palloc(sizeof(int) * Max(np, 1));
	dst = palloc(sizeof(int) * Max(np, 1));
	amount = palloc(sizeof(int64_t) * Max(np, 1));
	weight = palloc(sizeof(double) * Max(np, 1));
	for (int i = 0; i < na; i++)
	{
		available[i] = DatumGetInt64(avail_d[i]);
		constrained[i] = DatumGetBool(cons_d[i]);
	}
	for (int i = 0; i < np; i++)
	{
		src[i] = DatumGetInt32(src_d[i]) - 1;
		dst[i] = DatumGetInt32(dst_d[i]) - 1;
		amount[i] = DatumGetInt64(amount_d[i]);
		weight[i] = DatumGetFloat8(weight_d[i]);
	}
	if (with_queue)
	{
		Datum	   *credit_d,
				   *wsrc_d,
				   *wdst_d,
				   *fee_d,
				   *pair_d,
				   *volume_d,
				   *spread_d;

		if (array_elements(PG_GETARG_ARRAYTYPE_P(8), INT8OID, &credit_d, "credit") != np ||
			array_elements(PG_GETARG_ARRAYTYPE_P(9), INT4OID, &wsrc_d, "wire_src") != np ||
			array_elements(PG_GETARG_ARRAYTYPE_P(10), INT4OID, &wdst_d, "wire_dst") != np ||
			array_elements(PG_GETARG_ARRAYTYPE_P(12), INT4OID, &pair_d, "pair") != np ||
			array_elements(PG_GETARG_ARRAYTYPE_P(13), FLOAT8OID, &volume_d, "volume") != np)
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("the payment arrays differ in length")));
		nw = array_elements(PG_GETARG_ARRAYTYPE_P(11), FLOAT8OID, &fee_d, "wire_fee");
		nk = array_elements(PG_GETARG_ARRAYTYPE_P(14), FLOAT8OID, &spread_d, "spread");
		credit = palloc(sizeof(int64_t) * Max(np, 1));
		wire_src = palloc(sizeof(int) * Max(np, 1));
		wire_dst = palloc(sizeof(int) * Max(np, 1));
		pair = palloc(sizeof(int) * Max(np, 1));
		volume = palloc(sizeof(double) * Max(np, 1));
		wire_fee = palloc(sizeof(double) * Max(nw, 1));
		spread = palloc(sizeof(double) * Max(nk, 1));
		for (int i = 0; i < np; i++)
		{
			credit[i] = DatumGetInt64(credit_d[i]);
			wire_src[i] = DatumGetInt32(wsrc_d[i]) - 1;
			wire_dst[i] = DatumGetInt32(wdst_d[i]) - 1;
			pair[i] = DatumGetInt32(pair_d[i]) - 1;
			volume[i] = DatumGetFloat8(volume_d[i]);
		}
		for (int w = 0; w < nw; w++)
			wire_fee[w] = DatumGetFloat8(fee_d[w]);
		for (int k = 0; k < nk; k++)
			spread[k] = DatumGetFloat8(spread_d[k]);
	}
	memset(&tp, 0, sizeof(tp));
	tp.n_accounts = na;
	tp.available = available;
	tp.constrained = constrained;
	tp.n_payments = np;
	tp.src = src;
	tp.dst = dst;
	tp.amount = amount;
	tp.credit = credit;
	tp.weight = weight;
	tp.n_wires = nw;
	tp.wire_src = wire_src;
	tp.wire_dst = wire_dst;
	tp.wire_fee = wire_fee;
	tp.n_pairs = nk;
	tp.pair = pair;
	tp.volume = volume;
	tp.spread = spread;
	tp.target = PG_GETARG_INT32(0) - 1;
	tp.time_limit_ms = PG_GETARG_FLOAT8(7);
	memset(&r, 0, sizeof(r));
	r.settled_now = palloc0(sizeof(bool) * Max(np, 1));
	r.settled_topped = palloc0(sizeof(bool) * Max(np, 1));
	settle_solve_topup(&tp, &r);
	CHECK_FOR_INTERRUPTS();
	if (r.status == TOPUP_ERROR)
		ereport(ERROR,
				(errcode(ERRCODE_SETTLE_SOLVER_FAILED),
				 errmsg("the funding advice could not be solved"),
				 errdetail("%s", r.message)));
	now_d = palloc(sizeof(Datum) * Max(np, 1));
	topped_d = palloc(sizeof(Datum) * Max(np, 1));
	for (int i = 0; i < np; i++)
	{
		now_d[i] = BoolGetDatum(r.settled_now[i]);
		topped_d[i] = BoolGetDatum(r.settled_topped[i]);
	}
	out[0] = CStringGetTextDatum(status_names[r.status]);
	out[1] = Int64GetDatum(r.topup);
	out[2] = Float8GetDatum(r.weight_now);
	out[3] = Float8GetDatum(r.weight_unlimited);
	out[4] = Float8GetDatum(r.weight_topped);
	out[5] = PointerGetDatum(construct_array(now_d, np, BOOLOID, 1, true, TYPALIGN_CHAR));
	out[6] = PointerGetDatum(construct_array(topped_d, np, BOOLOID, 1, true, TYPALIGN_CHAR));
	tupdesc = BlessTupleDesc(tupdesc);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, out, nulls)));
}

/* 1.2's SQL: the whole queue (credits, wires, FX pairs), fifteen arguments. */
Datum
settle_topup_solve_1_2(PG_FUNCTION_ARGS)
{
	return topup_solve(fcinfo, true);
}

/* 1.1's SQL (its frozen script names this entry point): eight arguments. */
Datum
settle_topup_solve_sql(PG_FUNCTION_ARGS)
{
	return topup_solve(fcinfo, false);
}

/*
 * settle_funding_advice(participant_id): who may ask is decided with the
 * caller's rights (settle.sees_all(), settle.current_participant(), as
 * row-level security decides); the advice is computed as the tables'
 * owner by settle._funding_advice(), which nobody else may execute.
 */
Datum
settle_funding_advice_sql(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *participant = text_to_cstring(PG_GETARG_TEXT_PP(0));
	Oid			save_userid;
	int			save_sec_context;
	bool		sees_all;
	bool		isnull;
	char	   *mine = NULL;
	Oid			types[1] = {TEXTOID};
	Datum		args[1];

	InitMaterializedSRF(fcinfo, 0);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute("SELECT settle.sees_all(), settle.current_participant()", true, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "could not tell who is calling");
	sees_all = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)) && !isnull;
	mine = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
	if (!sees_all)
	{
		if (mine == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_SETTLE_ROLE_NOT_MAPPED),
					 errmsg("role \"%s\" is not mapped to a participant", GetUserNameFromId(GetUserId(), false))));
		if (strcmp(mine, participant) != 0)
			/* the same refusal as an unknown participant: nothing is learnt about others */
			ereport(ERROR,
					(errcode(ERRCODE_SETTLE_PARTICIPANT_UNKNOWN),
					 errmsg("participant_id \"%s\" does not exist", participant)));
	}
	/* as the owner of the settle tables (restored below, or by the abort) */
	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(settle_intake_tables_owner(), save_sec_context | SECURITY_LOCAL_USERID_CHANGE);
	args[0] = CStringGetTextDatum(participant);
	if (SPI_execute_with_args("SELECT * FROM settle._funding_advice($1)", 1, types, args, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "settle._funding_advice failed");
	SetUserIdAndSecContext(save_userid, save_sec_context);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		Datum		values[32];
		bool		nulls[32];
		int			natts = rsinfo->setDesc->natts;

		if (natts != SPI_tuptable->tupdesc->natts || natts > 32)
			elog(ERROR, "settle._funding_advice returns %d columns, not %d", SPI_tuptable->tupdesc->natts, natts);
		heap_deform_tuple(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, values, nulls);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	SPI_finish();
	return (Datum) 0;
}
