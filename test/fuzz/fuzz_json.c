/*
 * libFuzzer target: settle-gateway's JSON reader (src/gateway/json.c), the
 * surface every HTTP body meets first.  Contract checked on every input:
 * no crash, leak or undefined behaviour (ASan, UBSan); an accepted body's
 * elements lie inside it, in order, and each is accepted again on its own
 * when it is an object; and everything accepted is what PostgreSQL's jsonb
 * input takes, so one request cannot fail a coalesced call: valid UTF-8
 * (checked here by an independent validator) and no \u0000 escape.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/gateway/gateway.h"

/* strict UTF-8: shortest form, no surrogates, at most U+10FFFF */
static int
valid_utf8(const unsigned char *s, size_t n)
{
	size_t		i = 0;

	while (i < n)
	{
		unsigned char c = s[i];
		size_t		k;
		uint32_t	cp;

		if (c < 0x80)
		{
			i++;
			continue;
		}
		if ((c & 0xE0) == 0xC0)
			k = 1, cp = c & 0x1F;
		else if ((c & 0xF0) == 0xE0)
			k = 2, cp = c & 0x0F;
		else if ((c & 0xF8) == 0xF0)
			k = 3, cp = c & 0x07;
		else
			return 0;
		if (i + k >= n)			/* its continuation bytes are not all there */
			return 0;
		for (size_t j = 1; j <= k; j++)
		{
			if ((s[i + j] & 0xC0) != 0x80)
				return 0;
			cp = (cp << 6) | (s[i + j] & 0x3F);
		}
		if ((k == 1 && cp < 0x80) || (k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) ||
			cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
			return 0;
		i += k + 1;
	}
	return 1;
}

/* a \u0000 escape: a backslash preceded by an even number of backslashes */
static int
has_nul_escape(const char *s, size_t n)
{
	for (size_t i = 0; i + 6 <= n; i++)
		if (memcmp(s + i, "\\u0000", 6) == 0)
		{
			size_t		b = 0;

			while (b < i && s[i - 1 - b] == '\\')
				b++;
			if (b % 2 == 0)
				return 1;
		}
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	JsonPayments p;
	JsonError	e;
	const char *s = (const char *) data;

	if (json_read_payments(s, size, 50, &p, &e) != JSON_OK)
		return 0;
	if (p.n < 1 || p.n > 50 || (!p.is_array && p.n != 1))
		abort();
	if (!valid_utf8(data, size) || has_nul_escape(s, size))
		abort();
	for (int i = 0; i < p.n; i++)
	{
		JsonPayments q;
		JsonError	e2;

		if (p.elem[i] < s || p.elem_len[i] <= 0 || p.elem[i] + p.elem_len[i] > s + size)
			abort();
		if (i > 0 && p.elem[i] < p.elem[i - 1] + p.elem_len[i - 1])
			abort();
		if (p.elem[i][0] == '{')
		{
			if (json_read_payments(p.elem[i], (size_t) p.elem_len[i], 1, &q, &e2) != JSON_OK || q.n != 1 ||
				q.elem_len[0] != p.elem_len[i])
				abort();
			json_payments_free(&q);
		}
	}
	json_payments_free(&p);
	return 0;
}
