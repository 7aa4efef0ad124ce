/*
 * iso_read.c -- ISO 20022 messages in (docs/ISO20022.md): pacs.008.001.08
 * and pacs.009.001.08, read with libxml2, validated against the official
 * schemas (iso20022/xsd), and mapped, one transaction at a time, onto the
 * payments settle_submit_bulk takes (as JSON texts, like the JSON path's).
 * A message is its Document alone, or an envelope of a business application
 * header (head.001.001.02 AppHdr) and the Document, as banks send them.
 *
 * The body is hostile until proven otherwise: no network access
 * (XML_PARSE_NONET, and an entity loader that loads nothing once the
 * schemas are in), no entity substitution (no XML_PARSE_NOENT), no DTD at
 * all (the parser stops at <!DOCTYPE, before any entity is declared, so no
 * expansion bomb and no external entity), UTF-8 only, libxml2's default
 * limits (no XML_PARSE_HUGE), at most ISO_MAX_DEPTH levels of elements, and
 * a body no larger than --max-body (http.c).
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <libxml/tree.h>
#include <libxml/xmlschemas.h>

#include "gateway.h"
#include "validate.h"

/* deepest element of a valid pacs.008 is about 12 levels down */
#define ISO_MAX_DEPTH 32
#define NS_PREFIX "urn:iso:std:iso:20022:tech:xsd:"

typedef struct Schema
{
	const char *name;			/* message name and version, e.g. pacs.008.001.08 */
	const char *root;			/* the message element under Document */
	xmlSchemaPtr schema;
} Schema;

static Schema schemas[] = {
	{ISO_MSG_PACS008, "FIToFICstmrCdtTrf", NULL},
	{ISO_MSG_PACS009, "FICdtTrf", NULL},
};
#define NSCHEMAS (sizeof(schemas) / sizeof(schemas[0]))

static xmlSchemaPtr head_schema;	/* head.001.001.02: the AppHdr */
static bool loaded;

/* libxml2 prints its errors to stderr by default: the caller reports them */
static void
silent(void *ctx, const char *msg,...)
{
}

static void
silent_structured(void *ctx, xmlErrorPtr e)
{
}

/* After start-up nothing is ever loaded from outside the body. */
static xmlParserInputPtr
no_loader(const char *url, const char *id, xmlParserCtxtPtr ctxt)
{
	return NULL;
}

int
iso_init(const char *dir)
{
	xmlInitParser();
	for (size_t i = 0; i <= NSCHEMAS; i++)
	{
		char		path[4096];
		xmlSchemaParserCtxtPtr pc;
		xmlSchemaPtr *target = i < NSCHEMAS ? &schemas[i].schema : &head_schema;

		snprintf(path, sizeof(path), "%s/%s.xsd", dir, i < NSCHEMAS ? schemas[i].name : ISO_MSG_HEAD001);
		pc = xmlSchemaNewParserCtxt(path);
		if (pc)
		{
			*target = xmlSchemaParse(pc);
			xmlSchemaFreeParserCtxt(pc);
		}
		if (!*target)
		{
			fprintf(stderr, "settle-gateway: cannot load the ISO 20022 schema %s "
					"(--iso20022-xsd-dir): POST /api/v1/iso20022 answers 503\n", path);
			xmlSetExternalEntityLoader(no_loader);
			return -1;
		}
	}
	xmlSetExternalEntityLoader(no_loader);
	loaded = true;
	return 0;
}

bool
iso_ready(void)
{
	return loaded;
}

/* ---- reading, hardened ---- */

typedef struct ReadState
{
	bool		dtd;			/* a DOCTYPE was met: the parse was stopped */
} ReadState;

static void
refuse_dtd(void *ctx, const xmlChar *name, const xmlChar *external_id, const xmlChar *system_id)
{
	xmlParserCtxtPtr c = ctx;

	((ReadState *) c->_private)->dtd = true;
	xmlStopParser(c);
}

static bool
too_deep(xmlNode *n, int depth)
{
	if (depth > ISO_MAX_DEPTH)
		return true;
	for (xmlNode *c = n->children; c; c = c->next)
		if (c->type == XML_ELEMENT_NODE && too_deep(c, depth + 1))
			return true;
	return false;
}

static void
set_error(char *error, size_t errsize, const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(error, errsize, fmt, ap);
	va_end(ap);
}

/* the first line of a libxml2 error, without its trailing newline */
static void
xml_error_text(const xmlError *e, const char *what, char *error, size_t errsize)
{
	size_t		n;

	if (!e || !e->message)
	{
		set_error(error, errsize, "%s", what);
		return;
	}
	set_error(error, errsize, "%s (line %d): %s", what, e->line, e->message);
	n = strlen(error);
	while (n > 0 && (error[n - 1] == '\n' || error[n - 1] == ' '))
		error[--n] = '\0';
}

static xmlDocPtr
parse(const char *body, size_t len, char *error, size_t errsize)
{
	ReadState	st = {false};
	xmlParserCtxtPtr c;
	xmlDocPtr	doc = NULL;

	if (len > (size_t) 0x7fffffff)
	{
		set_error(error, errsize, "the document is too large");
		return NULL;
	}
	/* UTF-16 and UTF-32 (which libxml2 would read from a byte order mark) have NUL bytes; UTF-8 none */
	if (memchr(body, '\0', len))
	{
		set_error(error, errsize, "the document must be UTF-8 (it has a NUL byte)");
		return NULL;
	}
	c = xmlCreateMemoryParserCtxt(body, (int) len);
	if (!c)
	{
		set_error(error, errsize, "the document cannot be read");
		return NULL;
	}
	/* no NOENT (no substitution), no DTDLOAD/DTDATTR/DTDVALID, no HUGE, no XINCLUDE */
	xmlCtxtUseOptions(c, XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_NOCDATA);
	c->_private = &st;
	c->sax->internalSubset = refuse_dtd;
	c->sax->externalSubset = refuse_dtd;
	c->sax->error = silent;
	c->sax->warning = silent;
	c->sax->serror = NULL;
	xmlParseDocument(c);
	if (st.dtd)
		set_error(error, errsize, "a document type declaration (DTD) is not accepted");
	else if (!c->wellFormed || !c->myDoc)
		xml_error_text(xmlCtxtGetLastError(c), "not well-formed XML", error, errsize);
	else if (c->myDoc->encoding && strcasecmp((const char *) c->myDoc->encoding, "UTF-8") != 0)
		set_error(error, errsize, "the document must be UTF-8, not %s", (const char *) c->myDoc->encoding);
	else if (!xmlDocGetRootElement(c->myDoc))
		set_error(error, errsize, "the document has no root element");
	else if (too_deep(xmlDocGetRootElement(c->myDoc), 1))
		set_error(error, errsize, "elements nested deeper than %d levels", ISO_MAX_DEPTH);
	else
	{
		doc = c->myDoc;
		c->myDoc = NULL;
	}
	if (c->myDoc)
		xmlFreeDoc(c->myDoc);
	c->myDoc = NULL;
	xmlFreeParserCtxt(c);
	return doc;
}

/* ---- walking the validated tree ---- */

static bool
is(xmlNode *n, const char *name)
{
	return n && n->type == XML_ELEMENT_NODE && strcmp((const char *) n->name, name) == 0;
}

static xmlNode *
child(xmlNode *n, const char *name)
{
	if (!n)
		return NULL;
	for (xmlNode *c = n->children; c; c = c->next)
		if (is(c, name))
			return c;
	return NULL;
}

/* a path of child names, NULL-terminated */
static xmlNode *
at(xmlNode *n, ...)
{
	va_list		ap;
	const char *name;

	va_start(ap, n);
	while (n && (name = va_arg(ap, const char *)) != NULL)
		n = child(n, name);
	va_end(ap);
	return n;
}

/* the text of an element, whitespace trimmed (the schemas collapse it), into out */
static bool
text(xmlNode *n, char *out, size_t size)
{
	xmlChar    *t;
	const char *s,
			   *e;

	out[0] = '\0';
	if (!n)
		return false;
	t = xmlNodeGetContent(n);
	if (!t)
		return false;
	s = (const char *) t;
	while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
		e--;
	snprintf(out, size, "%.*s", (int) (e - s), s);
	xmlFree(t);
	return out[0] != '\0';
}

/* An account: its IBAN, or its other identification. */
static bool
account_id(xmlNode *acct, char *out, size_t size)
{
	return text(at(acct, "Id", "IBAN", NULL), out, size) ||
		text(at(acct, "Id", "Othr", "Id", NULL), out, size);
}

/*
 * A financial institution as a participant: its BIC, else its other id,
 * else its clearing member id; *kind (if not NULL) says which ('B', 'O', 'C').
 */
static bool
agent_id_kind(xmlNode *agt, char *out, size_t size, char *kind)
{
	xmlNode    *fi = child(agt, "FinInstnId");
	char		k = text(child(fi, "BICFI"), out, size) ? 'B' :
		text(at(fi, "Othr", "Id", NULL), out, size) ? 'O' :
		text(at(fi, "ClrSysMmbId", "MmbId", NULL), out, size) ? 'C' : 0;

	if (kind)
		*kind = k;
	return k != 0;
}

static bool
agent_id(xmlNode *agt, char *out, size_t size)
{
	return agent_id_kind(agt, out, size, NULL);
}

static void
refuse(IsoTx *t, const char *reason, const char *fmt,...)
{
	va_list		ap;

	t->reason = reason;
	va_start(ap, fmt);
	vsnprintf(t->why, sizeof(t->why), fmt, ap);
	va_end(ap);
}

void
iso_key(const char *msg_name, const char *msg_id, const char *tx_id, char *out, size_t size)
{
	snprintf(out, size, "%s:%s/%s", msg_name, msg_id, tx_id);
}

/* settle's priority 1..9 (9 the most urgent) from the settlement or instruction priority */
static int
priority_of(xmlNode *tx, xmlNode *hdr)
{
	char		p[8];

	if (text(child(tx, "SttlmPrty"), p, sizeof(p)))
		return strcmp(p, "URGT") == 0 ? 9 : strcmp(p, "HIGH") == 0 ? 7 : 5;
	if (text(at(tx, "PmtTpInf", "InstrPrty", NULL), p, sizeof(p)) ||
		text(at(hdr, "PmtTpInf", "InstrPrty", NULL), p, sizeof(p)))
		return strcmp(p, "HIGH") == 0 ? 7 : 5;
	return 0;
}

/*
 * The requested times (docs/ISO20022.md, "Times"), all on the settlement
 * date (the transaction's IntrBkSttlmDt, else the group's): FrTm is settle's
 * not_before, and without it the date's 00:00 UTC is (a value date in the
 * future waits for its day); RjctTm, else TillTm, is the deadline.  Read
 * from the message alone, never the clock, so that the same message sent
 * again maps to the same times and replays.  false: refused (t says why).
 */
static bool
map_times(xmlNode *tx, xmlNode *hdr, Buf *b, IsoTx *t)
{
	xmlNode    *req = child(tx, "SttlmTmReq");
	char		date[16],
				from[40],
				until[40],
				when[80];
	bool		has_date = text(child(tx, "IntrBkSttlmDt"), date, sizeof(date)) ||
		text(child(hdr, "IntrBkSttlmDt"), date, sizeof(date));
	bool		has_from = text(child(req, "FrTm"), from, sizeof(from));
	bool		has_until = text(child(req, "RjctTm"), until, sizeof(until)) ||
		text(child(req, "TillTm"), until, sizeof(until));

	if (!has_date)
	{
		if (has_from || has_until)
		{
			refuse(t, "DT01", "SttlmTmReq/%s needs an IntrBkSttlmDt to be a time",
				   has_from ? "FrTm" : child(req, "RjctTm") ? "RjctTm" : "TillTm");
			return false;
		}
		return true;
	}
	snprintf(when, sizeof(when), "%sT%s", date, has_from ? from : "00:00:00Z");
	buf_puts(b, ",\"not_before\":");
	buf_json_string(b, when);
	if (has_until)
	{
		snprintf(when, sizeof(when), "%sT%s", date, until);
		buf_puts(b, ",\"deadline\":");
		buf_json_string(b, when);
	}
	return true;
}

static void
map_tx(const IsoMessage *m, xmlNode *tx, xmlNode *hdr, bool customer, IsoTx *t)
{
	char		amount[64],
				ccy[8],
				src[GW_MAX_ID + 1],
				dst[GW_MAX_ID + 1],
				cpty[GW_MAX_ID + 1],
				key[GW_MAX_ID + 64],
				bearer[8];
	xmlNode    *amt = child(tx, "IntrBkSttlmAmt");
	xmlChar    *c;
	int			prio;
	Buf			b;

	text(at(tx, "PmtId", "InstrId", NULL), t->instr_id, sizeof(t->instr_id));
	text(at(tx, "PmtId", "EndToEndId", NULL), t->end_to_end_id, sizeof(t->end_to_end_id));
	text(at(tx, "PmtId", "UETR", NULL), t->uetr, sizeof(t->uetr));
	if (!text(at(tx, "PmtId", "TxId", NULL), t->tx_id, sizeof(t->tx_id)) &&
		!text(at(tx, "PmtId", "UETR", NULL), t->tx_id, sizeof(t->tx_id)))
	{
		refuse(t, "NARR", "PmtId has neither TxId nor UETR: settle needs one as the transaction_id");
		return;
	}
	if (strchr(t->tx_id, ' ') || strchr(t->tx_id, '/'))
	{
		refuse(t, "NARR", "TxId \"%s\" has a space or a '/', which a settle transaction_id may not", t->tx_id);
		return;
	}
	if (customer && text(child(tx, "ChrgBr"), bearer, sizeof(bearer)) && strcmp(bearer, "CRED") == 0)
	{
		refuse(t, "AG03", "ChrgBr CRED is not supported: settle credits the whole amount");
		return;
	}
	text(amt, amount, sizeof(amount));
	ccy[0] = '\0';
	if ((c = xmlGetProp(amt, (const xmlChar *) "Ccy")) != NULL)
	{
		snprintf(ccy, sizeof(ccy), "%s", (const char *) c);
		xmlFree(c);
	}
	if (!account_id(child(tx, "DbtrAcct"), src, sizeof(src)))
	{
		refuse(t, "AC02", "DbtrAcct is required: it names the settle account to debit");
		return;
	}
	if (!account_id(child(tx, "CdtrAcct"), dst, sizeof(dst)))
	{
		refuse(t, "AC03", "CdtrAcct is required: it names the settle account to credit");
		return;
	}
	/* the creditor's participant: pacs.008's creditor agent, pacs.009's creditor institution */
	if (!agent_id(child(tx, customer ? "CdtrAgt" : "Cdtr"), cpty, sizeof(cpty)))
	{
		refuse(t, "RC04", "%s has no BICFI, Othr/Id or ClrSysMmbId naming a participant",
			   customer ? "CdtrAgt" : "Cdtr");
		return;
	}
	iso_key(m->name, m->msg_id, t->tx_id, key, sizeof(key));

	buf_init(&b, 512);
	buf_puts(&b, "{\"transaction_id\":");
	buf_json_string(&b, t->tx_id);
	buf_puts(&b, ",\"idempotency_key\":");
	buf_json_string(&b, key);
	buf_puts(&b, ",\"amount\":");
	buf_json_string(&b, amount);
	buf_puts(&b, ",\"source_currency\":");
	buf_json_string(&b, ccy);
	buf_puts(&b, ",\"destination_currency\":");
	buf_json_string(&b, ccy);
	buf_puts(&b, ",\"source_account\":");
	buf_json_string(&b, src);
	buf_puts(&b, ",\"destination_account\":");
	buf_json_string(&b, dst);
	buf_puts(&b, ",\"counterparty_id\":");
	buf_json_string(&b, cpty);
	if ((prio = priority_of(tx, hdr)) > 0)
		buf_printf(&b, ",\"priority\":%d", prio);
	if (!map_times(tx, hdr, &b, t))
	{
		buf_free(&b);
		return;
	}
	buf_puts(&b, "}");
	t->json = buf_steal(&b);
}

static const char *
ns_of(xmlNode *n)
{
	return n->ns && n->ns->href ? (const char *) n->ns->href : "";
}

/* the next element among n and its following siblings */
static xmlNode *
element_from(xmlNode *n)
{
	while (n && n->type != XML_ELEMENT_NODE)
		n = n->next;
	return n;
}

/*
 * An envelope: a root element (any name: CBPR+ uses Envelope in
 * urn:swift:xsd:envelope) holding exactly an AppHdr of head.001.001.02 then
 * a Document.  The header's fields into h; its Document, or NULL.
 */
static xmlNode *
envelope(xmlNode *root, IsoAppHdr *h)
{
	xmlNode    *app = element_from(root->children);
	xmlNode    *doc = app ? element_from(app->next) : NULL;

	if (!doc || element_from(doc->next) || !is(app, "AppHdr") ||
		strcmp(ns_of(app), NS_PREFIX ISO_MSG_HEAD001) != 0 || !is(doc, "Document"))
		return NULL;
	h->present = true;
	snprintf(h->wrapper, sizeof(h->wrapper), "%s", (const char *) root->name);
	snprintf(h->wrapper_ns, sizeof(h->wrapper_ns), "%s", ns_of(root));
	agent_id_kind(at(app, "Fr", "FIId", NULL), h->fr, sizeof(h->fr), &h->fr_kind);
	agent_id_kind(at(app, "To", "FIId", NULL), h->to, sizeof(h->to), &h->to_kind);
	text(child(app, "BizMsgIdr"), h->biz_msg_idr, sizeof(h->biz_msg_idr));
	text(child(app, "MsgDefIdr"), h->msg_def_idr, sizeof(h->msg_def_idr));
	text(child(app, "BizSvc"), h->biz_svc, sizeof(h->biz_svc));
	text(child(app, "CreDt"), h->cre_dt, sizeof(h->cre_dt));
	return doc;
}

/* 0: the element (and what it holds) is valid against the schema */
static int
validate(xmlSchemaPtr schema, xmlDocPtr doc, xmlNode *elem)
{
	xmlSchemaValidCtxtPtr vc = xmlSchemaNewValidCtxt(schema);
	int			rc;

	if (!vc)
		return -1;
	xmlSchemaSetValidErrors(vc, silent, silent, NULL);
	rc = elem == xmlDocGetRootElement(doc) ? xmlSchemaValidateDoc(vc, doc) : xmlSchemaValidateOneElement(vc, elem);
	xmlSchemaFreeValidCtxt(vc);
	return rc;
}

IsoStatus
iso_read_message(const char *body, size_t len, int max_tx, IsoMessage *out, char *error, size_t errsize)
{
	xmlDocPtr	doc;
	xmlNode    *root,
			   *msg,
			   *hdr;
	const char *ns;
	const Schema *sc = NULL;
	int			n = 0;
	IsoStatus	st = ISO_OK;
	char		nb[24];
	size_t		bad;

	memset(out, 0, sizeof(*out));
	/* libxml2's error handlers are per thread */
	xmlSetGenericErrorFunc(NULL, silent);
	xmlSetStructuredErrorFunc(NULL, silent_structured);
	if ((doc = parse(body, len, error, errsize)) == NULL)
		return ISO_NOT_XML;
	root = xmlDocGetRootElement(doc);
	if (!is(root, "Document"))
	{
		xmlNode    *inner = envelope(root, &out->hdr);

		root = inner ? inner : root;
	}
	ns = ns_of(root);
	if (strcmp((const char *) root->name, "Document") == 0 && strncmp(ns, NS_PREFIX, strlen(NS_PREFIX)) == 0)
		for (size_t i = 0; i < NSCHEMAS; i++)
			if (strcmp(ns + strlen(NS_PREFIX), schemas[i].name) == 0)
				sc = &schemas[i];
	if (!sc)
	{
		set_error(error, errsize, "not a supported message: the root must be Document in namespace "
				  NS_PREFIX ISO_MSG_PACS008 " or " NS_PREFIX ISO_MSG_PACS009 ", or an envelope of an AppHdr ("
				  NS_PREFIX ISO_MSG_HEAD001 ") and such a Document; not %s in \"%.100s\"",
				  (const char *) root->name, ns);
		xmlFreeDoc(doc);
		return ISO_UNSUPPORTED;
	}
	/* the AppHdr is the envelope's first element, the Document its second */
	if ((out->hdr.present && validate(head_schema, doc, element_from(root->parent->children)) != 0) ||
		validate(sc->schema, doc, root) != 0)
	{
		xml_error_text(xmlGetLastError(), out->hdr.present ?
					   "the AppHdr or the Document does not validate against its schema" :
					   "the document does not validate against its schema", error, errsize);
		xmlFreeDoc(doc);
		return ISO_INVALID;
	}

	out->name = sc->name;
	msg = child(root, sc->root);
	hdr = child(msg, "GrpHdr");
	text(child(hdr, "MsgId"), out->msg_id, sizeof(out->msg_id));
	text(child(hdr, "CreDtTm"), out->cre_dt_tm, sizeof(out->cre_dt_tm));
	text(child(hdr, "NbOfTxs"), nb, sizeof(nb));
	for (xmlNode *c = msg->children; c; c = c->next)
		if (is(c, "CdtTrfTxInf"))
			n++;
	if (n > max_tx)
	{
		set_error(error, errsize, "%d transactions in one message, more than the gateway's %d (--max-array)",
				  n, max_tx);
		xmlFreeDoc(doc);
		return ISO_TOO_MANY;
	}
	out->n = n;
	out->tx = calloc((size_t) n, sizeof(IsoTx));
	if (out->hdr.present && strcmp(out->hdr.msg_def_idr, sc->name) != 0)
	{
		out->group_reason = "FF01";
		snprintf(out->group_why, sizeof(out->group_why), "AppHdr MsgDefIdr \"%s\" is not the Document's message, %s",
				 out->hdr.msg_def_idr, sc->name);
	}
	else if (out->hdr.present && strcmp(out->hdr.biz_msg_idr, out->msg_id) != 0)
	{
		out->group_reason = "FF01";
		snprintf(out->group_why, sizeof(out->group_why), "AppHdr BizMsgIdr %.35s is not MsgId %.35s",
				 out->hdr.biz_msg_idr, out->msg_id);
	}
	else if (out->hdr.present && !out->hdr.fr[0])
	{
		out->group_reason = "RC01";
		snprintf(out->group_why, sizeof(out->group_why),
				 "AppHdr Fr must name the sending participant as FIId (BICFI, Othr/Id or ClrSysMmbId)");
	}
	else if (settle_check_key(out->msg_id, strlen(out->msg_id), &bad) != FIELD_OK)
	{
		out->group_reason = "FF01";
		snprintf(out->group_why, sizeof(out->group_why),
				 "MsgId must be printable ASCII without spaces: it is part of each payment's idempotency key");
	}
	else if (strtol(nb, NULL, 10) != n || strlen(nb) > 9)
	{
		out->group_reason = "AM18";
		snprintf(out->group_why, sizeof(out->group_why), "NbOfTxs is %s but the message has %d transactions",
				 nb, n);
	}
	else
	{
		int			k = 0;

		for (xmlNode *c = msg->children; c; c = c->next)
			if (is(c, "CdtTrfTxInf"))
				map_tx(out, c, hdr, sc == &schemas[0], &out->tx[k++]);
	}
	xmlFreeDoc(doc);
	return st;
}

void
iso_message_free(IsoMessage *m)
{
	if (m->tx)
		for (int i = 0; i < m->n; i++)
			free(m->tx[i].json);
	free(m->tx);
	m->tx = NULL;
	m->n = 0;
}
