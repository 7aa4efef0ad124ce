/*
 * intake_links.c -- linked payments at intake (issue #16, item 10).
 *
 * Part of intake.  A row with link_group and link_size joins a group that
 * settles all or nothing (src/cycle_links.c).  The rules live in SQL
 * (src/sql/84_links.sql); intake calls them only for linked rows, so an
 * unlinked submission costs nothing more:
 *   before the insert   settle._link_admit: may each row join its group
 *                       (size, still open, a party of the group, room left)?
 *                       Locks the groups until commit;
 *   after the insert    settle._link_record: the inserted rows join;
 *   a replay            the stored link is compared like any other field
 *                       (include/payment_fields.h, src/intake_keys.c);
 *   a refused row       (settle_submit_bulk) settle._link_refused fails its
 *                       group, unless the payer is not a party of it.
 * A database still on 1.0's SQL has no groups: settle_submit_bulk refuses
 * the link keys there as unknown (1.0's settle_submit has no such parameters),
 * and a linked row that came another way would be refused here.
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "intake.h"
#include "intake_int.h"
#include "links.h"
#include "settle_errors.h"
#include "spi_util.h"

static bool linked(const IntakeRow *row);

static bool
linked(const IntakeRow *row)
{
	return row->link_group != NULL && row->sqlerrcode == 0;
}

/*
 * Before the insert: rows that may not join their group are refused.  A
 * database without groups refuses every linked row.
 */
void
settle_intake_links_admit(IntakeRow *rows, int n)
{
	MemoryContext caller = CurrentMemoryContext;
	IntakeRow **linked_rows = palloc(sizeof(IntakeRow *) * n);
	int			m = 0;
	int			i;
	char	  **groups,
			  **payers,
			  **payees,
			  **keys;
	Datum	   *sizes;
	Datum		values[5];
	Oid			types[5] = {TEXTARRAYOID, INT4ARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID};
	uint64		r;

	for (i = 0; i < n; i++)
		if (rows[i].insert && linked(&rows[i]))
			linked_rows[m++] = &rows[i];
	if (m == 0)
		return;
	if (!settle_links_installed())
	{
		for (i = 0; i < m; i++)
			settle_intake_refuse(linked_rows[i], ERRCODE_SETTLE_LINK_INVALID,
						  pstrdup("linked payments need settle 1.1 or later in this database"),
						  NULL, pstrdup("ALTER EXTENSION settle UPDATE, then submit again."));
		return;
	}
	groups = palloc(sizeof(char *) * m);
	payers = palloc(sizeof(char *) * m);
	payees = palloc(sizeof(char *) * m);
	keys = palloc(sizeof(char *) * m);
	sizes = palloc(sizeof(Datum) * m);
	for (i = 0; i < m; i++)
	{
		groups[i] = linked_rows[i]->link_group;
		sizes[i] = Int32GetDatum(linked_rows[i]->link_size);
		payers[i] = linked_rows[i]->source_participant;
		payees[i] = linked_rows[i]->counterparty_id;
		keys[i] = linked_rows[i]->idempotency_key;
	}
	values[0] = PointerGetDatum(settle_text_array(groups, m));
	values[1] = PointerGetDatum(construct_array(sizes, m, INT4OID, 4, true, TYPALIGN_INT));
	values[2] = PointerGetDatum(settle_text_array(payers, m));
	values[3] = PointerGetDatum(settle_text_array(payees, m));
	values[4] = PointerGetDatum(settle_text_array(keys, m));
	if (SPI_execute_with_args("SELECT ord, code, message, detail FROM settle._link_admit($1, $2, $3, $4, $5)",
							  5, types, values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "admitting linked payments failed");
	/* SPI returns in its procedure context, freed at SPI_finish: the texts go to the caller's */
	MemoryContextSwitchTo(caller);
	for (r = 0; r < SPI_processed; r++)
	{
		HeapTuple	tup = SPI_tuptable->vals[r];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		int			ord = DatumGetInt32(SPI_getbinval(tup, desc, 1, &isnull));
		char	   *code = SPI_getvalue(tup, desc, 2);
		IntakeRow  *row = linked_rows[ord - 1];

		/* SPI_getvalue copies into the current context: the caller's (intake's outer one) */
		settle_intake_refuse(row, MAKE_SQLSTATE(code[0], code[1], code[2], code[3], code[4]),
					  SPI_getvalue(tup, desc, 3), SPI_getvalue(tup, desc, 4),
					  pstrdup("See settle.link_groups; a group's payments share link_group and link_size."));
	}
}

/* After the insert: the rows inserted just now join their groups. */
void
settle_intake_links_record(IntakeRow *rows, int n)
{
	char	  **groups = palloc(sizeof(char *) * n);
	int64	   *ids = palloc(sizeof(int64) * n);
	int			m = 0;
	int			i;
	Datum		values[2];
	Oid			types[2] = {INT8ARRAYOID, TEXTARRAYOID};

	for (i = 0; i < n; i++)
		if (rows[i].duplicate_of == -2 && linked(&rows[i]))
		{
			groups[m] = rows[i].link_group;
			ids[m++] = rows[i].payment_id;
		}
	if (m == 0)
		return;
	values[0] = PointerGetDatum(settle_int8_array(ids, m));
	values[1] = PointerGetDatum(settle_text_array(groups, m));
	if (SPI_execute_with_args("SELECT settle._link_record($1, $2)", 2, types, values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "recording linked payments failed");
}

/*
 * settle_submit_bulk: a linked row refused at intake fails its group (a
 * refused settle_submit raises, and its transaction rolls back: the group
 * then waits for the member until settle.link_timeout).  Refusals that say
 * the row could not join (SE081-SE083) or repeat a key (SE060, SE061) are
 * not the group's failure.
 */
void
settle_intake_links_refused(IntakeRow *rows, int n)
{
	char	  **groups = palloc(sizeof(char *) * n);
	char	  **payers = palloc(sizeof(char *) * n);
	char	  **payees = palloc(sizeof(char *) * n);
	char	  **reasons = palloc(sizeof(char *) * n);
	Datum	   *sizes = palloc(sizeof(Datum) * n);
	int			m = 0;
	int			i;
	Datum		values[5];
	Oid			types[5] = {TEXTARRAYOID, INT4ARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID};

	for (i = 0; i < n; i++)
	{
		IntakeRow  *row = &rows[i];
		int			c = row->sqlerrcode;

		if (row->link_group == NULL || c == 0 || row->scope == NULL || row->counterparty_id == NULL ||
			c == ERRCODE_SETTLE_LINK_SIZE_MISMATCH || c == ERRCODE_SETTLE_LINK_CLOSED ||
			c == ERRCODE_SETTLE_LINK_NOT_PARTY || c == ERRCODE_SETTLE_LINK_INVALID ||
			c == ERRCODE_SETTLE_IDEMPOTENCY_CONFLICT || c == ERRCODE_SETTLE_TRANSACTION_ID_TAKEN)
			continue;
		groups[m] = row->link_group;
		sizes[m] = Int32GetDatum(row->link_size);
		payers[m] = row->scope;
		payees[m] = row->counterparty_id;
		reasons[m++] = row->message ? row->message : "refused";
	}
	if (m == 0 || !settle_links_installed())
		return;
	values[0] = PointerGetDatum(settle_text_array(groups, m));
	values[1] = PointerGetDatum(construct_array(sizes, m, INT4OID, 4, true, TYPALIGN_INT));
	values[2] = PointerGetDatum(settle_text_array(payers, m));
	values[3] = PointerGetDatum(settle_text_array(payees, m));
	values[4] = PointerGetDatum(settle_text_array(reasons, m));
	if (SPI_execute_with_args("SELECT settle._link_refused($1, $2, $3, $4, $5)",
							  5, types, values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "failing the groups of refused linked payments failed");
}
