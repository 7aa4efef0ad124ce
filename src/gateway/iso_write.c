/*
 * iso_write.c -- ISO 20022 messages out (docs/ISO20022.md): pacs.002.001.10
 * status reports, for a message just submitted and for a message's payments
 * as they are now.  Written as text (escaped), every element in the order
 * the schema gives; the tests validate what is written against
 * iso20022/xsd/pacs.002.001.10.xsd.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gateway.h"

void
buf_xml_text(Buf *b, const char *s)
{
	for (const char *p = s; *p; p++)
		switch (*p)
		{
			case '&':
				buf_puts(b, "&amp;");
				break;
			case '<':
				buf_puts(b, "&lt;");
				break;
			case '>':
				buf_puts(b, "&gt;");
				break;
			case '"':
				buf_puts(b, "&quot;");
				break;
			default:
				/* the control characters XML 1.0 cannot carry */
				if ((unsigned char) *p < 0x20 && *p != '\t' && *p != '\n' && *p != '\r')
					buf_puts(b, " ");
				else
					buf_append(b, p, 1);
		}
}

static void
element(Buf *b, const char *name, const char *value)
{
	if (!value || !*value)
		return;
	buf_printf(b, "<%s>", name);
	buf_xml_text(b, value);
	buf_printf(b, "</%s>", name);
}

/* at most max characters (not bytes) of UTF-8 text, trailing newlines and spaces dropped */
static void
clip_chars(const char *s, int max, char *out, size_t size)
{
	size_t		n = 0;
	int			chars = 0;

	if (strncmp(s, "ERROR:  ", 8) == 0)
		s += 8;
	while (s[n] && chars < max)
	{
		n++;
		while ((s[n] & 0xC0) == 0x80)
			n++;
		chars++;
	}
	if (n >= size)
		n = size - 1;
	memcpy(out, s, n);
	out[n] = '\0';
	while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == ' '))
		out[--n] = '\0';
}

static void
reason(Buf *b, const char *code, const char *why)
{
	char		clipped[512];

	buf_puts(b, "<StsRsnInf><Rsn><Cd>");
	buf_xml_text(b, code ? code : "NARR");
	buf_puts(b, "</Cd></Rsn>");
	if (why && *why)
	{
		clip_chars(why, 105, clipped, sizeof(clipped));
		if (*clipped)
			element(b, "AddtlInf", clipped);
	}
	buf_puts(b, "</StsRsnInf>");
}

/* a header's party: a financial institution identified as the message identified it */
static void
party(Buf *b, const char *name, const char *id, char kind)
{
	buf_printf(b, "<%s><FIId><FinInstnId>", name);
	if (kind == 'B')
		element(b, "BICFI", id);
	else if (kind == 'C')
	{
		buf_puts(b, "<ClrSysMmbId>");
		element(b, "MmbId", id);
		buf_puts(b, "</ClrSysMmbId>");
	}
	else
	{
		buf_puts(b, "<Othr>");
		element(b, "Id", id);
		buf_puts(b, "</Othr>");
	}
	buf_printf(b, "</FinInstnId></FIId></%s>", name);
}

/*
 * The answer's business application header (head.001.001.02), in the
 * envelope the message came in: from the message's receiver to its sender,
 * naming the pacs.002, the message's own header quoted as Rltd.
 */
static void
app_header(Buf *b, const IsoAppHdr *h, const char *id, const char *now)
{
	buf_printf(b, "<%s", h->wrapper);
	if (h->wrapper_ns[0])
	{
		buf_puts(b, " xmlns=\"");
		buf_xml_text(b, h->wrapper_ns);
		buf_puts(b, "\"");
	}
	buf_puts(b, "><AppHdr xmlns=\"urn:iso:std:iso:20022:tech:xsd:" ISO_MSG_HEAD001 "\">");
	party(b, "Fr", h->to[0] ? h->to : "settle", h->to[0] ? h->to_kind : 'O');
	party(b, "To", h->fr, h->fr_kind);
	element(b, "BizMsgIdr", id);
	element(b, "MsgDefIdr", ISO_MSG_PACS002);
	element(b, "BizSvc", h->biz_svc);
	element(b, "CreDt", now);
	buf_puts(b, "<Rltd>");
	party(b, "Fr", h->fr, h->fr_kind);
	party(b, "To", h->to[0] ? h->to : "settle", h->to[0] ? h->to_kind : 'O');
	element(b, "BizMsgIdr", h->biz_msg_idr);
	element(b, "MsgDefIdr", h->msg_def_idr);
	element(b, "BizSvc", h->biz_svc);
	element(b, "CreDt", h->cre_dt);
	buf_puts(b, "</Rltd></AppHdr>");
}

static void
header(Buf *b, const char *orig_msg_id, const char *orig_name, const IsoAppHdr *h)
{
	char		id[ISO_MAX_TEXT + 1];
	char		now[40];
	struct timespec ts;
	struct tm	tm;

	/* the report's id names the message it reports on */
	snprintf(id, sizeof(id), "STS-%.31s", orig_msg_id);
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(now, sizeof(now), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(now + strlen(now), sizeof(now) - strlen(now), ".%03ldZ", ts.tv_nsec / 1000000);
	buf_puts(b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
	if (h && h->present)
		app_header(b, h, id, now);
	buf_puts(b, "<Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:" ISO_MSG_PACS002 "\">"
			 "<FIToFIPmtStsRpt><GrpHdr>");
	element(b, "MsgId", id);
	element(b, "CreDtTm", now);
	buf_puts(b, "</GrpHdr><OrgnlGrpInfAndSts>");
	element(b, "OrgnlMsgId", orig_msg_id);
	element(b, "OrgnlMsgNmId", orig_name);
}

/* the end of the envelope, if the message came in one */
static void
footer(Buf *b, const IsoAppHdr *h)
{
	if (h->present)
		buf_printf(b, "</%s>", h->wrapper);
	buf_puts(b, "\n");
}

static const char *
group_status(int accepted, int settled, int rejected, int pending)
{
	int			total = accepted + settled + rejected + pending;

	if (total == 0)
		return "RJCT";
	if (settled == total)
		return "ACSC";
	if (rejected == total)
		return "RJCT";
	if (pending == total)
		return "PDNG";
	if (rejected > 0)
		return "PART";
	return "ACSP";
}

void
iso_write_pacs002_submit(Buf *b, const IsoMessage *m, const int *sent_index, const PaymentResult *results)
{
	int			accepted = 0,
				rejected = 0;

	header(b, m->msg_id, m->name, &m->hdr);
	element(b, "OrgnlCreDtTm", m->cre_dt_tm);
	buf_printf(b, "<OrgnlNbOfTxs>%d</OrgnlNbOfTxs>", m->n);
	if (m->group_reason)
	{
		buf_puts(b, "<GrpSts>RJCT</GrpSts>");
		reason(b, m->group_reason, m->group_why);
		buf_puts(b, "</OrgnlGrpInfAndSts></FIToFIPmtStsRpt></Document>");
		footer(b, &m->hdr);
		return;
	}
	for (int i = 0; i < m->n; i++)
	{
		if (sent_index[i] >= 0 && results[sent_index[i]].has_payment)
			accepted++;
		else
			rejected++;
	}
	buf_printf(b, "<GrpSts>%s</GrpSts></OrgnlGrpInfAndSts>", group_status(accepted, 0, rejected, 0));
	for (int i = 0; i < m->n; i++)
	{
		const IsoTx *t = &m->tx[i];
		const PaymentResult *pr = sent_index[i] >= 0 ? &results[sent_index[i]] : NULL;

		buf_puts(b, "<TxInfAndSts>");
		element(b, "OrgnlInstrId", t->instr_id);
		element(b, "OrgnlEndToEndId", t->end_to_end_id);
		element(b, "OrgnlTxId", t->tx_id);
		element(b, "OrgnlUETR", t->uetr);
		if (pr && pr->has_payment)
		{
			char		ref[32];

			buf_puts(b, "<TxSts>ACSP</TxSts>");
			/* settle's payment_id: the servicer's reference */
			snprintf(ref, sizeof(ref), "%lld", pr->payment_id);
			element(b, "AcctSvcrRef", ref);
		}
		else
		{
			buf_puts(b, "<TxSts>RJCT</TxSts>");
			if (!pr)
				reason(b, t->reason, t->why);
			else if (pr->sqlstate[0])
			{
				char		why[300];

				snprintf(why, sizeof(why), "%s %s", pr->sqlstate, pr->message ? pr->message : "");
				reason(b, iso_reason_for_sqlstate(pr->sqlstate).code, why);
			}
			else
				reason(b, "NARR", "the database returned no result for this transaction");
		}
		buf_puts(b, "</TxInfAndSts>");
	}
	buf_puts(b, "</FIToFIPmtStsRpt></Document>");
	footer(b, &m->hdr);
}

/* cells: JOB_ISO_STATUS's rows (gateway.h), the first rows of them */
void
iso_write_pacs002_status(Buf *b, const char *msg_id, const char *msg_name, int rows, char *const *cells)
{
	int			accepted = 0,
				settled = 0,
				rejected = 0,
				pending = 0;

	for (int r = 0; r < rows; r++)
	{
		const char *st = cells[r * ISO_STATUS_COLS + 2] ? cells[r * ISO_STATUS_COLS + 2] : "";

		if (strcmp(st, "settled") == 0 || strcmp(st, "returned") == 0)
			settled++;
		else if (strcmp(st, "expired") == 0 || strcmp(st, "failed") == 0)
			rejected++;
		else if (strcmp(st, "held") == 0)
			pending++;
		else
			accepted++;
	}
	header(b, msg_id, msg_name, NULL);
	buf_printf(b, "<OrgnlNbOfTxs>%d</OrgnlNbOfTxs>", rows);
	buf_printf(b, "<GrpSts>%s</GrpSts></OrgnlGrpInfAndSts>", group_status(accepted, settled, rejected, pending));
	for (int r = 0; r < rows; r++)
	{
		const char *txid = cells[r * ISO_STATUS_COLS + 1];
		const char *st = cells[r * ISO_STATUS_COLS + 2] ? cells[r * ISO_STATUS_COLS + 2] : "";
		const char *hold = cells[r * ISO_STATUS_COLS + 3];

		buf_puts(b, "<TxInfAndSts>");
		element(b, "OrgnlTxId", txid);
		if (strcmp(st, "settled") == 0 || strcmp(st, "returned") == 0)
			buf_puts(b, "<TxSts>ACSC</TxSts>");
		else if (strcmp(st, "expired") == 0)
		{
			buf_puts(b, "<TxSts>RJCT</TxSts>");
			reason(b, "NARR", "expired: not settled before its deadline");
		}
		else if (strcmp(st, "failed") == 0)
		{
			buf_puts(b, "<TxSts>RJCT</TxSts>");
			reason(b, "ED05", "failed: the settlement rail did not settle it");
		}
		else if (strcmp(st, "held") == 0)
		{
			buf_puts(b, "<TxSts>PDNG</TxSts>");
			reason(b, "NARR", hold && *hold ? hold : "held");
		}
		else
			buf_puts(b, "<TxSts>ACSP</TxSts>");
		element(b, "AcctSvcrRef", cells[r * ISO_STATUS_COLS + 4]);
		buf_puts(b, "</TxInfAndSts>");
	}
	buf_puts(b, "</FIToFIPmtStsRpt></Document>\n");
}
