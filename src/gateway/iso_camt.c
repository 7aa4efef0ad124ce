/*
 * iso_camt.c -- ISO 20022 out (docs/ISO20022.md): camt.053.001.08
 * end-of-day statements and camt.054.001.08 debit/credit notifications of
 * one day, per account of the client's participant, built from
 * settle_statement()'s entries (JOB_ISO_REPORT's rows, gateway.h).  The
 * statement itself, with the Merkle root and each entry's inclusion proof,
 * is carried whole in the document's supplementary data, so that
 * tools/settle-verify-statement checks the camt document as it checks a
 * statement: the proofs, then that every entry and balance shown is the
 * statement's.  And camt.054 notifications of one payment, as it settles
 * (iso_write_camt054_payment: its entries on the participant's accounts).
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gateway.h"

#define C(r, k) cells[(r) * ISO_REPORT_COLS + (k)]
enum
{
	K_KIND, K_STMT, K_ACCOUNT, K_CCY, K_EXP, K_IN_PERIOD, K_AMOUNT, K_POSTED, K_BALANCE,
	K_ENTRY, K_PAYMENT, K_TXID, K_SEQ
};

/* minor units as an exact decimal in major units, without sign */
static void
amount_into(Buf *b, long long minor, int exponent)
{
	unsigned long long v = minor < 0 ? 0ULL - (unsigned long long) minor : (unsigned long long) minor;
	unsigned long long p = 1;

	for (int i = 0; i < exponent; i++)
		p *= 10;
	if (exponent <= 0)
		buf_printf(b, "%llu", v);
	else
		buf_printf(b, "%llu.%0*llu", v / p, exponent, v % p);
}

static void
money(Buf *b, const char *name, long long minor, int exponent, const char *ccy)
{
	buf_printf(b, "<%s Ccy=\"", name);
	buf_xml_text(b, ccy);
	buf_puts(b, "\">");
	amount_into(b, minor, exponent);
	buf_printf(b, "</%s><CdtDbtInd>%s</CdtDbtInd>", name, minor < 0 ? "DBIT" : "CRDT");
}

/* µs since the epoch as an ISO date-time in UTC */
static void
time_into(Buf *b, long long us)
{
	time_t		t = (time_t) (us / 1000000);
	long		frac = (long) (us % 1000000);
	struct tm	tm;
	char		s[40];

	if (frac < 0)
	{
		frac += 1000000;
		t--;
	}
	gmtime_r(&t, &tm);
	strftime(s, sizeof(s), "%Y-%m-%dT%H:%M:%S", &tm);
	buf_printf(b, "%s.%06ldZ", s, frac);
}

static long long
num(const char *s)
{
	return s ? strtoll(s, NULL, 10) : 0;
}

static void
text_element(Buf *b, const char *name, const char *value)
{
	buf_printf(b, "<%s>", name);
	buf_xml_text(b, value);
	buf_printf(b, "</%s>", name);
}

static void
balance(Buf *b, const char *code, long long minor, int exponent, const char *ccy, long long at_us)
{
	buf_printf(b, "<Bal><Tp><CdOrPrtry><Cd>%s</Cd></CdOrPrtry></Tp>", code);
	money(b, "Amt", minor, exponent, ccy);
	buf_puts(b, "<Dt><DtTm>");
	time_into(b, at_us);
	buf_puts(b, "</DtTm></Dt></Bal>");
}

static void
entry_of(Buf *b, const char *ccy, int exponent, long long amount, long long posted_us, const char *entry_id,
		 const char *payment_id, const char *txid)
{
	buf_puts(b, "<Ntry>");
	money(b, "Amt", amount, exponent, ccy);
	buf_puts(b, "<Sts><Cd>BOOK</Cd></Sts><BookgDt><DtTm>");
	time_into(b, posted_us);
	buf_puts(b, "</DtTm></BookgDt>");
	text_element(b, "AcctSvcrRef", entry_id);
	buf_printf(b, "<BkTxCd><Prtry><Cd>%s</Cd><Issr>settle</Issr></Prtry></BkTxCd>",
			   payment_id ? "PAYMENT" : "LEDGER");
	if (payment_id)
	{
		buf_puts(b, "<NtryDtls><TxDtls><Refs>");
		text_element(b, "AcctSvcrRef", payment_id);
		if (txid && strlen(txid) <= ISO_MAX_TEXT)
			text_element(b, "TxId", txid);
		buf_puts(b, "</Refs></TxDtls></NtryDtls>");
	}
	buf_puts(b, "</Ntry>");
}

static void
entry(Buf *b, char *const *cells, int r, int exponent)
{
	entry_of(b, C(r, K_CCY), exponent, num(C(r, K_AMOUNT)), num(C(r, K_POSTED)), C(r, K_ENTRY),
			 C(r, K_PAYMENT), C(r, K_TXID));
}

/* an account id as Max34Text: a longer settle account id is cut */
static void
account(Buf *b, const char *acct, const char *ccy)
{
	char		cut[35];

	buf_puts(b, "<Acct><Id><Othr><Id>");
	snprintf(cut, sizeof(cut), "%s", acct);
	buf_xml_text(b, cut);
	buf_puts(b, "</Id></Othr></Id>");
	text_element(b, "Ccy", ccy);
	buf_puts(b, "</Acct>");
}

/*
 * One payment's camt.054: its ledger entries on the client's participant's
 * accounts (the payer's debit, the payee's credit), one Ntfctn per account,
 * as the rows of ISO_PAYMENT_COLS give them (ordered by account).
 */
void
iso_write_camt054_payment(Buf *b, const char *participant, int rows, char *const *cells)
{
	char		id[ISO_MAX_TEXT + 1];
	struct timespec ts;

#define P(r, k) cells[(r) * ISO_PAYMENT_COLS + (k)]
	clock_gettime(CLOCK_REALTIME, &ts);
	buf_puts(b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
			 "<Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:" ISO_MSG_CAMT054 "\"><BkToCstmrDbtCdtNtfctn><GrpHdr>");
	snprintf(id, sizeof(id), "054-P%.12s-%.16s", rows > 0 ? P(0, 6) : "", participant);
	text_element(b, "MsgId", id);
	buf_puts(b, "<CreDtTm>");
	time_into(b, (long long) ts.tv_sec * 1000000 + ts.tv_nsec / 1000);
	buf_puts(b, "</CreDtTm></GrpHdr>");
	for (int r = 0, n = 1; r < rows; n++)
	{
		int			last = r;

		while (last + 1 < rows && strcmp(P(last + 1, 1), P(r, 1)) == 0)
			last++;
		buf_puts(b, "<Ntfctn>");
		snprintf(id, sizeof(id), "P%.20s-%d", P(r, 6), n);
		text_element(b, "Id", id);
		account(b, P(r, 1), P(r, 2));
		for (int i = r; i <= last; i++)
			entry_of(b, P(i, 2), (int) num(P(i, 3)), num(P(i, 4)), num(P(i, 5)), P(i, 0), P(i, 6), P(i, 7));
		buf_puts(b, "</Ntfctn>");
		r = last + 1;
	}
	buf_puts(b, "</BkToCstmrDbtCdtNtfctn></Document>\n");
#undef P
}

/* midnight UTC of a YYYY-MM-DD, in µs since the epoch */
static long long
day_start_us(const char *date)
{
	struct tm	tm;

	memset(&tm, 0, sizeof(tm));
	if (sscanf(date, "%4d-%2d-%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday) != 3)
		return 0;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return (long long) timegm(&tm) * 1000000;
}

void
iso_write_camt(Buf *b, bool statement, const char *participant, const char *date, int rows, char *const *cells)
{
	const char *ns = statement ? ISO_MSG_CAMT053 : ISO_MSG_CAMT054;
	long long	from = day_start_us(date),
				to = from + 86400LL * 1000000;
	char		ymd[9],
				id[ISO_MAX_TEXT + 1];
	struct timespec ts;
	int			r = 1;

	snprintf(ymd, sizeof(ymd), "%.4s%.2s%.2s", date, date + 5, date + 8);
	clock_gettime(CLOCK_REALTIME, &ts);
	buf_printf(b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
			   "<Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:%s\"><%s><GrpHdr>", ns,
			   statement ? "BkToCstmrStmt" : "BkToCstmrDbtCdtNtfctn");
	snprintf(id, sizeof(id), "%s-%s-%.22s", statement ? "053" : "054", ymd, participant);
	text_element(b, "MsgId", id);
	buf_puts(b, "<CreDtTm>");
	time_into(b, (long long) ts.tv_sec * 1000000 + ts.tv_nsec / 1000);
	buf_puts(b, "</CreDtTm></GrpHdr>");

	/* one Stmt (Ntfctn) per account: its rows are consecutive */
	for (int n = 1; r < rows; n++)
	{
		int			first = r,
					last = r;
		int			exponent = (int) num(C(r, K_EXP));
		const char *ccy = C(r, K_CCY);
		const char *acct = C(r, K_ACCOUNT);
		long long	opening = 0,
					closing;
		bool		known = false;

		while (last + 1 < rows && strcmp(C(last + 1, K_ACCOUNT), acct) == 0)
			last++;
		r = last + 1;
		/* opening: the entry before the day, else what the day's (or a later) first entry started from */
		for (int i = first; i <= last && !known; i++)
			if (C(i, K_IN_PERIOD) && strcmp(C(i, K_IN_PERIOD), "false") == 0 && num(C(i, K_POSTED)) < from)
			{
				opening = num(C(i, K_BALANCE));
				known = true;
			}
		for (int i = first; i <= last && !known; i++)
			if (C(i, K_IN_PERIOD))
			{
				opening = num(C(i, K_BALANCE)) - num(C(i, K_AMOUNT));
				known = true;
			}
		closing = opening;
		for (int i = first; i <= last; i++)
			if (C(i, K_IN_PERIOD) && strcmp(C(i, K_IN_PERIOD), "true") == 0)
				closing = num(C(i, K_BALANCE));

		buf_puts(b, statement ? "<Stmt>" : "<Ntfctn>");
		snprintf(id, sizeof(id), "%s-%d", ymd, n);
		text_element(b, "Id", id);
		buf_puts(b, "<FrToDt><FrDtTm>");
		time_into(b, from);
		buf_puts(b, "</FrDtTm><ToDtTm>");
		time_into(b, to);
		buf_puts(b, "</ToDtTm></FrToDt><Acct><Id><Othr><Id>");
		/* Max34Text: a longer settle account id is cut; the supplementary data has it whole */
		{
			char		cut[35];

			snprintf(cut, sizeof(cut), "%s", acct);
			buf_xml_text(b, cut);
		}
		buf_puts(b, "</Id></Othr></Id>");
		text_element(b, "Ccy", ccy);
		buf_puts(b, "</Acct>");
		if (statement)
		{
			balance(b, "OPBD", opening, exponent, ccy, from);
			balance(b, "CLBD", closing, exponent, ccy, to);
		}
		for (int i = first; i <= last; i++)
			if (C(i, K_IN_PERIOD) && strcmp(C(i, K_IN_PERIOD), "true") == 0)
				entry(b, cells, i, exponent);
		buf_puts(b, statement ? "</Stmt>" : "</Ntfctn>");
	}
	/* settle_statement()'s JSON: the Merkle root and proofs (tools/settle-verify-statement) */
	buf_puts(b, "<SplmtryData><PlcAndNm>settle-statement</PlcAndNm><Envlp>"
			 "<Statement xmlns=\"urn:settle:statement:1\">");
	buf_xml_text(b, rows > 0 && C(0, K_STMT) ? C(0, K_STMT) : "");
	buf_printf(b, "</Statement></Envlp></SplmtryData></%s></Document>\n",
			   statement ? "BkToCstmrStmt" : "BkToCstmrDbtCdtNtfctn");
}
