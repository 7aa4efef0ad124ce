/*
 * merkle.c -- extend the statement Merkle tree over newly sealed ledger
 * entries (settle._merkle_extend(), run by the seal's seal_run trigger).
 *
 * The tree, its leaves and its hashes are defined in
 * src/sql/87_statements.sql and docs/AUDIT.md; settle_verify() and the
 * offline verifier recompute them from that definition, so what is written
 * here must be byte for byte what the SQL definition gives:
 *
 *   content    the text of jsonb_build_array(seq, entry_id, journal_id,
 *              batch_id, payment_id, participant_id, account_id, currency,
 *              amount, posted_at in µs since the Unix epoch, account_seq,
 *              balance_after), in UTF-8
 *   leaf hash  sha256(0x00 || salt || content), salt 16 random bytes
 *   node hash  sha256(0x01 || left || right)
 *
 * Until 1.2 this was a set-based SQL statement; at the production shape's
 * rates it was two thirds of the worker's seal and more than the cycle
 * itself (docs/BENCHMARKS.md, issue #32): per leaf a window aggregate, a
 * jsonb built and printed, two SQL-level sha256 calls, and a self-join per
 * tree level.  Here the leaves are read once in seq order, numbered and
 * hashed in C, the new subtrees computed in memory (reading at most one
 * stored node per level), and everything written with two array inserts per
 * chunk of entries.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "common/int.h"
#include "common/sha2.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "port.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "canonical.h"
#include "settle_errors.h"
#include "spi_util.h"

PG_FUNCTION_INFO_V1(settle_merkle_extend);

/* Entries hashed and written per round: bounds the memory of one round. */
#define MERKLE_CHUNK 8192
#define MERKLE_SALT_LEN 16

/* One sealed entry becoming a leaf. */
typedef struct MerkleLeaf
{
	int64		seq;
	int64		entry_id;
	int64		journal_id;
	int64		batch_id;
	bool		batch_null;
	int64		payment_id;
	bool		payment_null;
	char	   *participant_id; /* NULL: no such account */
	char	   *account_id;
	char	   *currency;
	int64		amount;
	TimestampTz posted_at;
	int64		account_seq;
	int64		balance_after;
	uint8		salt[MERKLE_SALT_LEN];
} MerkleLeaf;

/* The stored subtrees a round adds, in insertion order. */
typedef struct MerkleNodes
{
	int			n;
	int			cap;
	int16	   *level;
	int64	   *idx;
	Datum	   *hash;			/* bytea */
} MerkleNodes;

static void nodes_add(MerkleNodes *nodes, int16 level, int64 idx, const uint8 *h);
static void leaf_content(StringInfo buf, const MerkleLeaf *l);
static int	read_fresh(int64 done, MerkleLeaf *leaves);
static void number_leaves(MerkleLeaf *leaves, int n);
static void read_node(int level, int64 idx, uint8 *out);
static void insert_leaves(const MerkleLeaf *leaves, int n);
static void insert_nodes(const MerkleNodes *nodes);
static int64 extend_round(int64 done);

static void
nodes_add(MerkleNodes *nodes, int16 level, int64 idx, const uint8 *h)
{
	if (nodes->n == nodes->cap)
	{
		nodes->cap = nodes->cap ? nodes->cap * 2 : 2 * MERKLE_CHUNK + 64;
		nodes->level = nodes->level ? repalloc(nodes->level, nodes->cap * sizeof(int16))
			: palloc(nodes->cap * sizeof(int16));
		nodes->idx = nodes->idx ? repalloc(nodes->idx, nodes->cap * sizeof(int64))
			: palloc(nodes->cap * sizeof(int64));
		nodes->hash = nodes->hash ? repalloc(nodes->hash, nodes->cap * sizeof(Datum))
			: palloc(nodes->cap * sizeof(Datum));
	}
	nodes->level[nodes->n] = level;
	nodes->idx[nodes->n] = idx;
	nodes->hash[nodes->n] = PointerGetDatum(settle_canon_hash_bytea(h));
	nodes->n++;
}

/* The leaf's content (settle._leaf_content) */
static void
leaf_content(StringInfo buf, const MerkleLeaf *l)
{
	settle_canon_begin(buf);
	settle_canon_int8(buf, l->seq);
	settle_canon_int8(buf, l->entry_id);
	settle_canon_int8(buf, l->journal_id);
	if (l->batch_null)
		settle_canon_null(buf);
	else
		settle_canon_int8(buf, l->batch_id);
	if (l->payment_null)
		settle_canon_null(buf);
	else
		settle_canon_int8(buf, l->payment_id);
	settle_canon_text(buf, l->participant_id);
	settle_canon_text(buf, l->account_id);
	settle_canon_text(buf, l->currency);
	settle_canon_int8(buf, l->amount);
	settle_canon_epoch_us(buf, l->posted_at);
	settle_canon_int8(buf, l->account_seq);
	settle_canon_int8(buf, l->balance_after);
	settle_canon_end(buf);
}

/* The next sealed entries after leaf seq `done`, in seq order (at most a chunk). */
static int
read_fresh(int64 done, MerkleLeaf *leaves)
{
	Oid			types[2] = {INT8OID, INT4OID};
	Datum		values[2] = {Int64GetDatum(done), Int32GetDatum(MERKLE_CHUNK)};
	int			n;

	MemoryContext caller = CurrentMemoryContext;

	if (settle_spi_execute("SELECT s.seq, e.entry_id, e.journal_id, e.batch_id, e.payment_id, a.participant_id,"
						   " e.account_id, e.currency, e.amount, e.posted_at"
						   " FROM settle.ledger_seal s JOIN settle.ledger_entry e ON e.entry_id OPERATOR(pg_catalog.=) s.entry_id"
						   " LEFT JOIN settle.account a ON a.account_id OPERATOR(pg_catalog.=) e.account_id"
						   " WHERE s.seq OPERATOR(pg_catalog.>) $1 ORDER BY s.seq LIMIT $2",
						   2, types, values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "settle: reading the sealed entries for the Merkle tree failed");
	/* SPI returns in its procedure context: the leaves' texts go to the round's */
	MemoryContextSwitchTo(caller);
	n = (int) SPI_processed;
	for (int i = 0; i < n; i++)
	{
		HeapTuple	t = SPI_tuptable->vals[i];
		TupleDesc	d = SPI_tuptable->tupdesc;
		MerkleLeaf *l = &leaves[i];
		bool		isnull;

		l->seq = DatumGetInt64(SPI_getbinval(t, d, 1, &isnull));
		l->entry_id = DatumGetInt64(SPI_getbinval(t, d, 2, &isnull));
		l->journal_id = DatumGetInt64(SPI_getbinval(t, d, 3, &isnull));
		l->batch_id = DatumGetInt64(SPI_getbinval(t, d, 4, &l->batch_null));
		l->payment_id = DatumGetInt64(SPI_getbinval(t, d, 5, &l->payment_null));
		l->participant_id = SPI_getvalue(t, d, 6);
		l->account_id = SPI_getvalue(t, d, 7);
		l->currency = SPI_getvalue(t, d, 8);
		l->amount = DatumGetInt64(SPI_getbinval(t, d, 9, &isnull));
		l->posted_at = DatumGetTimestampTz(SPI_getbinval(t, d, 10, &isnull));
		if (l->seq != done + i + 1)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("the ledger's hash chain has no seal " INT64_FORMAT " for the statement Merkle tree",
							done + i + 1),
					 errdetail("The next seal after leaf " INT64_FORMAT " is " INT64_FORMAT ".", done + i, l->seq),
					 errhint("Run settle_verify() to see what is missing.")));
	}
	SPI_freetuptable(SPI_tuptable);
	return n;
}

static int
leaf_by_account(const void *a, const void *b)
{
	const MerkleLeaf *x = *(MerkleLeaf *const *) a;
	const MerkleLeaf *y = *(MerkleLeaf *const *) b;
	int			c = strcmp(x->account_id, y->account_id);

	if (c != 0)
		return c;
	return (x->seq > y->seq) - (x->seq < y->seq);
}

/*
 * Each leaf's number and balance in its account: after the account's last
 * leaf (one index probe per account in the round), in seq order.
 */
static void
number_leaves(MerkleLeaf *leaves, int n)
{
	MemoryContext caller = CurrentMemoryContext;
	MerkleLeaf **order = palloc(n * sizeof(MerkleLeaf *));
	char	  **accounts = palloc(n * sizeof(char *));
	int			n_accounts = 0;
	Oid			type = TEXTARRAYOID;
	Datum		value;
	int			a = -1;
	int64		seq = 0,
				balance = 0;

	for (int i = 0; i < n; i++)
		order[i] = &leaves[i];
	qsort(order, n, sizeof(MerkleLeaf *), leaf_by_account);
	for (int i = 0; i < n; i++)
		if (i == 0 || strcmp(order[i]->account_id, order[i - 1]->account_id) != 0)
			accounts[n_accounts++] = order[i]->account_id;

	value = PointerGetDatum(settle_text_array(accounts, n_accounts));
	if (settle_spi_execute("SELECT p.account_seq, p.balance_after"
						   " FROM unnest($1) WITH ORDINALITY AS u(account_id, o)"
						   " LEFT JOIN LATERAL (SELECT x.account_seq, x.balance_after FROM settle.ledger_leaf x"
						   "  WHERE x.account_id OPERATOR(pg_catalog.=) u.account_id"
						   "  ORDER BY x.account_seq DESC LIMIT 1) p ON true"
						   " ORDER BY u.o",
						   1, &type, &value, NULL, false, 0) != SPI_OK_SELECT ||
		SPI_processed != (uint64) n_accounts)
		elog(ERROR, "settle: reading the accounts' last leaves failed");
	MemoryContextSwitchTo(caller);

	for (int i = 0; i < n; i++)
	{
		MerkleLeaf *l = order[i];

		if (i == 0 || strcmp(l->account_id, order[i - 1]->account_id) != 0)
		{
			bool		isnull;
			HeapTuple	t = SPI_tuptable->vals[++a];

			seq = DatumGetInt64(SPI_getbinval(t, SPI_tuptable->tupdesc, 1, &isnull));
			if (isnull)
				seq = 0;
			balance = DatumGetInt64(SPI_getbinval(t, SPI_tuptable->tupdesc, 2, &isnull));
			if (isnull)
				balance = 0;
		}
		if (pg_add_s64_overflow(seq, 1, &seq) ||
			pg_add_s64_overflow(balance, l->amount, &balance))
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("the balance of account \"%s\" after ledger entry " INT64_FORMAT " is out of range for bigint",
							l->account_id, l->entry_id)));
		l->account_seq = seq;
		l->balance_after = balance;
	}
	SPI_freetuptable(SPI_tuptable);
	pfree(order);
	pfree(accounts);
}

/* A stored subtree; its absence means the tree is incomplete. */
static void
read_node(int level, int64 idx, uint8 *out)
{
	MemoryContext caller = CurrentMemoryContext;
	Oid			types[2] = {INT2OID, INT8OID};
	Datum		values[2] = {Int16GetDatum((int16) level), Int64GetDatum(idx)};
	bool		isnull;
	bytea	   *h;

	if (settle_spi_execute("SELECT n.hash FROM settle.ledger_merkle_node n"
						   " WHERE n.level OPERATOR(pg_catalog.=) $1 AND n.idx OPERATOR(pg_catalog.=) $2",
						   2, types, values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "settle: reading a Merkle node failed");
	h = SPI_processed == 1
		? DatumGetByteaPP(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull))
		: NULL;
	if (h == NULL || VARSIZE_ANY_EXHDR(h) != PG_SHA256_DIGEST_LENGTH)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("the statement Merkle tree has no node at level %d, index " INT64_FORMAT, level, idx),
				 errhint("Run settle_verify() to see what is missing.")));
	memcpy(out, VARDATA_ANY(h), PG_SHA256_DIGEST_LENGTH);
	SPI_freetuptable(SPI_tuptable);
	MemoryContextSwitchTo(caller);
}

static void
insert_leaves(const MerkleLeaf *leaves, int n)
{
	MemoryContext caller = CurrentMemoryContext;
	int64	   *seq = palloc(n * sizeof(int64));
	int64	   *entry = palloc(n * sizeof(int64));
	char	  **account = palloc(n * sizeof(char *));
	int64	   *account_seq = palloc(n * sizeof(int64));
	int64	   *balance = palloc(n * sizeof(int64));
	Datum	   *salt = palloc(n * sizeof(Datum));
	SpiArgs		args = {0};

	for (int i = 0; i < n; i++)
	{
		bytea	   *s = palloc(VARHDRSZ + MERKLE_SALT_LEN);

		SET_VARSIZE(s, VARHDRSZ + MERKLE_SALT_LEN);
		memcpy(VARDATA(s), leaves[i].salt, MERKLE_SALT_LEN);
		seq[i] = leaves[i].seq;
		entry[i] = leaves[i].entry_id;
		account[i] = leaves[i].account_id;
		account_seq[i] = leaves[i].account_seq;
		balance[i] = leaves[i].balance_after;
		salt[i] = PointerGetDatum(s);
	}
	settle_spi_arg_int8s(&args, seq, n);
	settle_spi_arg_int8s(&args, entry, n);
	settle_spi_arg_texts(&args, account, n);
	settle_spi_arg_int8s(&args, account_seq, n);
	settle_spi_arg_int8s(&args, balance, n);
	settle_spi_arg(&args, BYTEAARRAYOID,
			PointerGetDatum(construct_array(salt, n, BYTEAOID, -1, false, TYPALIGN_INT)));
	if (settle_spi_execute("INSERT INTO settle.ledger_leaf (seq, entry_id, account_id, account_seq, balance_after, salt)"
						   " SELECT unnest($1), unnest($2), unnest($3), unnest($4), unnest($5), unnest($6)",
						   args.n, args.types, args.values, NULL, false, 0) != SPI_OK_INSERT ||
		SPI_processed != (uint64) n)
		elog(ERROR, "settle: inserting the statement Merkle tree's leaves failed");
	MemoryContextSwitchTo(caller);
}

static void
insert_nodes(const MerkleNodes *nodes)
{
	MemoryContext caller = CurrentMemoryContext;
	SpiArgs		args = {0};
	Datum	   *levels = palloc(nodes->n * sizeof(Datum));

	for (int i = 0; i < nodes->n; i++)
		levels[i] = Int16GetDatum(nodes->level[i]);
	settle_spi_arg(&args, INT2ARRAYOID,
			PointerGetDatum(construct_array(levels, nodes->n, INT2OID, sizeof(int16), true, TYPALIGN_SHORT)));
	settle_spi_arg_int8s(&args, nodes->idx, nodes->n);
	settle_spi_arg(&args, BYTEAARRAYOID,
			PointerGetDatum(construct_array(nodes->hash, nodes->n, BYTEAOID, -1, false, TYPALIGN_INT)));
	if (settle_spi_execute("INSERT INTO settle.ledger_merkle_node (level, idx, hash)"
						   " SELECT unnest($1), unnest($2), unnest($3)",
						   args.n, args.types, args.values, NULL, false, 0) != SPI_OK_INSERT ||
		SPI_processed != (uint64) nodes->n)
		elog(ERROR, "settle: inserting the statement Merkle tree's nodes failed");
	MemoryContextSwitchTo(caller);
}

/*
 * One round: the leaves after `done` (at most a chunk) and every subtree
 * they complete.  Returns the leaves added (0: the tree is up to date).
 */
static int64
extend_round(int64 done)
{
	MerkleLeaf *leaves = palloc(MERKLE_CHUNK * sizeof(MerkleLeaf));
	MerkleNodes nodes = {0};
	StringInfoData content;
	uint8	   *level_hashes;
	int			n = read_fresh(done, leaves);
	int64		total;
	int64		first;

	if (n == 0)
		return 0;
	number_leaves(leaves, n);
	initStringInfo(&content);
	/* level 0: the leaves' hashes, indexes done .. done + n - 1 */
	level_hashes = palloc(n * PG_SHA256_DIGEST_LENGTH);
	for (int i = 0; i < n; i++)
	{
		MerkleLeaf *l = &leaves[i];
		uint8		prefix[1 + MERKLE_SALT_LEN] = {0x00};

		if (!pg_strong_random(l->salt, MERKLE_SALT_LEN))
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("could not generate a random salt for a statement Merkle leaf")));
		memcpy(prefix + 1, l->salt, MERKLE_SALT_LEN);
		leaf_content(&content, l);
		settle_canon_sha256_text(level_hashes + i * PG_SHA256_DIGEST_LENGTH, prefix, sizeof(prefix), &content);
		nodes_add(&nodes, 0, l->seq - 1, level_hashes + i * PG_SHA256_DIGEST_LENGTH);
	}
	total = done + n;

	/*
	 * Level L gains the nodes [done >> L, total >> L).  The new nodes of the
	 * level below start at `first` (level_hashes holds them); a parent's left
	 * child left of `first` (when `first` is odd) was complete before and is
	 * read from the table.
	 */
	first = done;
	for (int level = 1; (total >> level) > (done >> level); level++)
	{
		int64		p0 = done >> level;
		int64		p1 = total >> level;
		uint8	   *up = palloc((p1 - p0) * PG_SHA256_DIGEST_LENGTH);
		uint8		left[PG_SHA256_DIGEST_LENGTH];

		CHECK_FOR_INTERRUPTS();
		for (int64 p = p0; p < p1; p++)
		{
			const uint8 *l,
					   *r = level_hashes + (2 * p + 1 - first) * PG_SHA256_DIGEST_LENGTH;

			if (2 * p < first)
			{
				read_node(level - 1, 2 * p, left);
				l = left;
			}
			else
				l = level_hashes + (2 * p - first) * PG_SHA256_DIGEST_LENGTH;
			settle_canon_sha256(up + (p - p0) * PG_SHA256_DIGEST_LENGTH, "\x01", 1,
						 l, PG_SHA256_DIGEST_LENGTH, r, PG_SHA256_DIGEST_LENGTH);
			nodes_add(&nodes, (int16) level, p, up + (p - p0) * PG_SHA256_DIGEST_LENGTH);
		}
		level_hashes = up;
		first = p0;
	}
	insert_leaves(leaves, n);
	insert_nodes(&nodes);
	return n;
}

/*
 * settle._merkle_extend() RETURNS bigint: adds every sealed entry that is
 * not a leaf yet, and every subtree those leaves complete; returns the
 * number of leaves added.  Runs under the seal lock (the seal_run trigger),
 * so one at a time.
 */
Datum
settle_merkle_extend(PG_FUNCTION_ARGS)
{
	MemoryContext round_cxt;
	MemoryContext outer;
	int64		done;
	int64		added = 0;
	bool		isnull;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (settle_spi_execute("SELECT coalesce(pg_catalog.max(l.seq), 0) FROM settle.ledger_leaf l",
						   0, NULL, NULL, NULL, false, 0) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "settle: reading the statement Merkle tree's size failed");
	done = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));

	round_cxt = AllocSetContextCreate(CurrentMemoryContext, "settle merkle round", ALLOCSET_DEFAULT_SIZES);
	outer = MemoryContextSwitchTo(round_cxt);
	for (;;)
	{
		int64		n;

		CHECK_FOR_INTERRUPTS();
		n = extend_round(done);
		if (n == 0)
			break;
		done += n;
		added += n;
		MemoryContextReset(round_cxt);
	}
	MemoryContextSwitchTo(outer);
	MemoryContextDelete(round_cxt);
	SPI_finish();
	PG_RETURN_INT64(added);
}
