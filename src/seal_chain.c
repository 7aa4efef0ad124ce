/*
 * seal_chain.c -- append rows to an audit hash chain
 * (settle._chain_append(), called by settle._seal_chain()).
 *
 * Each row of settle.ledger_entry or settle.event written by a transaction
 * in the seal's window, and not sealed yet, gets the next seq of its chain:
 *   hash = sha256(previous hash || content)
 * in (xid, id) order, content being the row's canonical text
 * (settle._entry_content / settle._event_content, src/sql/50_audit.sql),
 * which settle_verify() recomputes.  The window, the horizon and the seal
 * run stay in settle._seal_chain(); this is its one set-based statement,
 * which built a jsonb and ran a SQL-level aggregate step per row, done in
 * C: the rows read once through a cursor, hashed, and written with one
 * array insert per chunk (issue #32: the seal runs after every cycle).
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "canonical.h"
#include "spi_util.h"

PG_FUNCTION_INFO_V1(settle_chain_append);

#define CHAIN_CHUNK 8192

/* What differs between the two chains (settle._chain_spec). */
typedef struct ChainSpec
{
	const char *name;
	const char *select;			/* $1 low, $2 horizon, $3 foreign_from */
	const char *insert;
	void		(*content) (StringInfo buf, HeapTuple t, TupleDesc d);
} ChainSpec;

static int64 column_int8(HeapTuple t, TupleDesc d, int col, bool *isnull);
static void entry_content(StringInfo buf, HeapTuple t, TupleDesc d);
static void event_content(StringInfo buf, HeapTuple t, TupleDesc d);

static const ChainSpec chains[] = {
	{"ledger_entry",
		"SELECT e.entry_id, e.journal_id, e.batch_id, e.payment_id, e.account_id, e.currency, e.amount, e.posted_at"
		" FROM settle.ledger_entry e"
		" WHERE ((e.xid >= $1 AND e.xid < $2) OR e.xid >= $3)"
		" AND NOT EXISTS (SELECT 1 FROM settle.ledger_seal x WHERE x.entry_id = e.entry_id)"
		" ORDER BY e.xid, e.entry_id",
		"INSERT INTO settle.ledger_seal (seq, entry_id, prev_hash, hash)"
		" SELECT unnest($1), unnest($2), unnest($3), unnest($4)",
	entry_content},
	{"event",
		"SELECT e.event_id, e.occurred_at, e.entity::text, e.entity_id, e.event_type, e.from_status, e.to_status,"
		" e.details::text"
		" FROM settle.event e"
		" WHERE ((e.xid >= $1 AND e.xid < $2) OR e.xid >= $3)"
		" AND NOT EXISTS (SELECT 1 FROM settle.event_seal x WHERE x.event_id = e.event_id)"
		" ORDER BY e.xid, e.event_id",
		"INSERT INTO settle.event_seal (seq, event_id, prev_hash, hash)"
		" SELECT unnest($1), unnest($2), unnest($3), unnest($4)",
	event_content},
};

static int64
column_int8(HeapTuple t, TupleDesc d, int col, bool *isnull)
{
	return DatumGetInt64(SPI_getbinval(t, d, col, isnull));
}

/* settle._entry_content: [entry_id, journal_id, batch_id, payment_id, account_id, currency, amount, posted_at] */
static void
entry_content(StringInfo buf, HeapTuple t, TupleDesc d)
{
	bool		isnull;

	settle_canon_begin(buf);
	for (int col = 1; col <= 4; col++)
	{
		int64		v = column_int8(t, d, col, &isnull);

		if (isnull)
			settle_canon_null(buf);
		else
			settle_canon_int8(buf, v);
	}
	settle_canon_text(buf, SPI_getvalue(t, d, 5));
	settle_canon_text(buf, SPI_getvalue(t, d, 6));
	settle_canon_int8(buf, column_int8(t, d, 7, &isnull));
	settle_canon_epoch_us(buf, DatumGetTimestampTz(SPI_getbinval(t, d, 8, &isnull)));
	settle_canon_end(buf);
}

/* settle._event_content: [event_id, occurred_at, entity, entity_id, event_type, from_status, to_status, details] */
static void
event_content(StringInfo buf, HeapTuple t, TupleDesc d)
{
	bool		isnull;

	settle_canon_begin(buf);
	settle_canon_int8(buf, column_int8(t, d, 1, &isnull));
	settle_canon_epoch_us(buf, DatumGetTimestampTz(SPI_getbinval(t, d, 2, &isnull)));
	for (int col = 3; col <= 7; col++)
		settle_canon_text(buf, SPI_getvalue(t, d, col));
	/* jsonb's own text, nested as jsonb_build_array nests it */
	settle_canon_raw(buf, SPI_getvalue(t, d, 8));
	settle_canon_end(buf);
}

/*
 * settle._chain_append(which text, last_seq bigint, head bytea, low xid8,
 * horizon xid8, foreign_from xid8) RETURNS bigint: seals the chain's rows
 * of xid in [low, horizon) or >= foreign_from (NULL: none) not sealed yet,
 * after seal last_seq whose hash is head; returns the rows sealed.
 */
Datum
settle_chain_append(PG_FUNCTION_ARGS)
{
	char	   *which = text_to_cstring(PG_GETARG_TEXT_PP(0));
	int64		seq = PG_GETARG_INT64(1);
	bytea	   *head = PG_GETARG_BYTEA_PP(2);
	const ChainSpec *spec = NULL;
	Oid			types[3] = {XID8OID, XID8OID, XID8OID};
	Datum		values[3] = {PG_GETARG_DATUM(3), PG_GETARG_DATUM(4), PG_ARGISNULL(5) ? (Datum) 0 : PG_GETARG_DATUM(5)};
	char		nulls[3] = {' ', ' ', PG_ARGISNULL(5) ? 'n' : ' '};
	uint8		prev[PG_SHA256_DIGEST_LENGTH];
	Portal		portal;
	MemoryContext chunk_cxt;
	MemoryContext outer;
	StringInfoData content;
	int64		sealed = 0;

	for (int i = 0; i < lengthof(chains); i++)
		if (strcmp(chains[i].name, which) == 0)
			spec = &chains[i];
	if (spec == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("there is no audit chain \"%s\"", which),
				 errhint("The chains are ledger_entry and event.")));
	if (VARSIZE_ANY_EXHDR(head) != PG_SHA256_DIGEST_LENGTH)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a chain's head is a SHA-256 hash of 32 bytes, not %d",
						(int) VARSIZE_ANY_EXHDR(head))));
	memcpy(prev, VARDATA_ANY(head), PG_SHA256_DIGEST_LENGTH);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	portal = SPI_cursor_open_with_args(NULL, spec->select, 3, types, values, nulls, false, 0);
	chunk_cxt = AllocSetContextCreate(CurrentMemoryContext, "settle chain chunk", ALLOCSET_DEFAULT_SIZES);
	for (;;)
	{
		int			n;
		int64	   *seqs;
		int64	   *ids;
		Datum	   *prev_hashes;
		Datum	   *hashes;
		SPITupleTable *rows;
		SpiArgs		args = {0};

		CHECK_FOR_INTERRUPTS();
		SPI_cursor_fetch(portal, true, CHAIN_CHUNK);
		rows = SPI_tuptable;
		n = (int) SPI_processed;
		if (n == 0)
			break;
		outer = MemoryContextSwitchTo(chunk_cxt);
		initStringInfo(&content);
		seqs = palloc(n * sizeof(int64));
		ids = palloc(n * sizeof(int64));
		prev_hashes = palloc(n * sizeof(Datum));
		hashes = palloc(n * sizeof(Datum));
		for (int i = 0; i < n; i++)
		{
			bool		isnull;
			uint8		h[PG_SHA256_DIGEST_LENGTH];

			spec->content(&content, rows->vals[i], rows->tupdesc);
			settle_canon_sha256_text(h, prev, PG_SHA256_DIGEST_LENGTH, &content);
			seqs[i] = ++seq;
			ids[i] = column_int8(rows->vals[i], rows->tupdesc, 1, &isnull);
			prev_hashes[i] = PointerGetDatum(settle_canon_hash_bytea(prev));
			hashes[i] = PointerGetDatum(settle_canon_hash_bytea(h));
			memcpy(prev, h, PG_SHA256_DIGEST_LENGTH);
		}
		settle_spi_arg_int8s(&args, seqs, n);
		settle_spi_arg_int8s(&args, ids, n);
		settle_spi_arg(&args, BYTEAARRAYOID,
				PointerGetDatum(construct_array(prev_hashes, n, BYTEAOID, -1, false, TYPALIGN_INT)));
		settle_spi_arg(&args, BYTEAARRAYOID,
				PointerGetDatum(construct_array(hashes, n, BYTEAOID, -1, false, TYPALIGN_INT)));
		if (settle_spi_execute(spec->insert, args.n, args.types, args.values, NULL, false, 0) != SPI_OK_INSERT ||
			SPI_processed != (uint64) n)
			elog(ERROR, "settle: appending to the %s chain failed", spec->name);
		sealed += n;
		MemoryContextSwitchTo(outer);
		MemoryContextReset(chunk_cxt);
		SPI_freetuptable(rows);
	}
	SPI_cursor_close(portal);
	SPI_finish();
	PG_RETURN_INT64(sealed);
}
