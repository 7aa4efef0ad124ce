/*
 * libFuzzer target: settle-gateway's ISO 20022 reader (src/gateway/iso_read.c,
 * libxml2 and the official schemas) and the pacs.002 writer behind it
 * (iso_write.c).  Contract checked on every input: no crash, leak or
 * undefined behaviour (ASan, UBSan); a message accepted is a supported one
 * with its transactions counted, each either mapped onto a payment (a JSON
 * object naming its transaction_id) or refused with a four-letter reason
 * code; and the pacs.002 answering it (every mapped transaction accepted, as
 * if the database had taken them all) is written whole, in the message's
 * envelope with an AppHdr when it came with one.  Run from the top of the
 * tree (test/fuzz/run.sh): the schemas are read from iso20022/xsd.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/gateway/gateway.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int	ready = -1;
	IsoMessage	m;
	char		err[512];
	IsoStatus	st;

	if (ready < 0)
		ready = iso_init("iso20022/xsd") == 0;
	if (!ready)
		abort();				/* the schemas must load: a broken harness is a failure */
	st = iso_read_message((const char *) data, size, 50, &m, err, sizeof(err));
	if (st != ISO_OK)
	{
		if (!err[0])
			abort();			/* every refusal says why */
		return 0;
	}
	if (strcmp(m.name, ISO_MSG_PACS008) != 0 && strcmp(m.name, ISO_MSG_PACS009) != 0)
		abort();
	if (m.n < 1 || m.n > 50)
		abort();
	{
		int		   *sent = malloc(sizeof(int) * (size_t) m.n);
		PaymentResult *results = calloc((size_t) m.n, sizeof(PaymentResult));
		int			k = 0;
		Buf			b;

		for (int i = 0; i < m.n; i++)
		{
			const IsoTx *t = &m.tx[i];

			sent[i] = -1;
			if (m.group_reason)
				continue;
			if (t->json)
			{
				if (t->json[0] != '{' || !strstr(t->json, "\"transaction_id\":"))
					abort();
				results[k].has_payment = true;
				results[k].payment_id = k + 1;
				sent[i] = k++;
			}
			else if (!t->reason || strlen(t->reason) != 4)
				abort();
		}
		buf_init(&b, 1024);
		iso_write_pacs002_submit(&b, &m, sent, results);
		if (!strstr(b.data, "</Document>"))
			abort();
		if (m.hdr.present)
		{
			char		close[80];

			snprintf(close, sizeof(close), "</%s>\n", m.hdr.wrapper);
			if (!strstr(b.data, "<AppHdr xmlns=") || b.len < strlen(close) ||
				strcmp(b.data + b.len - strlen(close), close) != 0)
				abort();		/* the answer's header and envelope, whole */
		}
		buf_free(&b);
		free(sent);
		free(results);
	}
	iso_message_free(&m);
	return 0;
}
