/*
 * json.c -- the strict JSON reader of request bodies, and JSON writing.
 *
 * The gateway does not interpret payments: settle_submit_bulk validates
 * every field and names the one it refuses.  What the reader guarantees is
 * that every element it hands on is one the database's jsonb input accepts,
 * so that one request can never make a coalesced call fail for the others:
 * valid UTF-8, no \u0000, no unpaired surrogate, numbers of bounded size,
 * bounded nesting, and no key twice in a payment (a parser differential:
 * jsonb keeps the last one, other readers the first).
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway.h"

#define JSON_MAX_DEPTH 16
#define JSON_MAX_NUMBER 64		/* characters of one number */
#define JSON_MAX_EXPONENT 4		/* digits of its exponent */
#define JSON_MAX_KEYS 64		/* keys of one payment object */

/* ---- writing ---- */

void
buf_init(Buf *b, size_t cap)
{
	b->cap = cap < 64 ? 64 : cap;
	b->data = malloc(b->cap);
	if (!b->data)
		abort();
	b->len = 0;
	b->data[0] = '\0';
}

void
buf_free(Buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

static void
buf_reserve(Buf *b, size_t extra)
{
	if (b->len + extra + 1 <= b->cap)
		return;
	while (b->len + extra + 1 > b->cap)
		b->cap *= 2;
	b->data = realloc(b->data, b->cap);
	if (!b->data)
		abort();
}

void
buf_append(Buf *b, const char *s, size_t n)
{
	buf_reserve(b, n);
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
}

void
buf_puts(Buf *b, const char *s)
{
	buf_append(b, s, strlen(s));
}

void
buf_printf(Buf *b, const char *fmt,...)
{
	va_list		ap;
	int			n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	buf_reserve(b, (size_t) n);
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t) n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t) n;
}

void
buf_json_string(Buf *b, const char *s)
{
	if (s == NULL)
	{
		buf_puts(b, "null");
		return;
	}
	buf_reserve(b, strlen(s) + 2);
	buf_append(b, "\"", 1);
	for (const unsigned char *p = (const unsigned char *) s; *p; p++)
	{
		switch (*p)
		{
			case '"':
				buf_append(b, "\\\"", 2);
				break;
			case '\\':
				buf_append(b, "\\\\", 2);
				break;
			case '\n':
				buf_append(b, "\\n", 2);
				break;
			case '\r':
				buf_append(b, "\\r", 2);
				break;
			case '\t':
				buf_append(b, "\\t", 2);
				break;
			default:
				if (*p < 0x20 || *p == 0x7f)
					buf_printf(b, "\\u%04x", *p);
				else
					buf_append(b, (const char *) p, 1);
		}
	}
	buf_append(b, "\"", 1);
}

char *
buf_steal(Buf *b)
{
	char	   *d = b->data;

	b->data = NULL;
	b->len = b->cap = 0;
	return d;
}

/* ---- reading ---- */

typedef struct Reader
{
	const char *s;
	size_t		len;
	size_t		pos;
	JsonError  *err;
} Reader;

static bool
fail(Reader *r, const char *msg)
{
	r->err->offset = r->pos;
	snprintf(r->err->message, sizeof(r->err->message), "%s at byte %zu", msg, r->pos + 1);
	return false;
}

static void
skip_ws(Reader *r)
{
	while (r->pos < r->len &&
		   (r->s[r->pos] == ' ' || r->s[r->pos] == '\t' || r->s[r->pos] == '\n' || r->s[r->pos] == '\r'))
		r->pos++;
}

/* A hex digit's value, -1 if it is none (JSON's \uXXXX escapes, the path's %XX). */
int
hex_digit_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static bool
read_hex4(Reader *r, unsigned *out)
{
	unsigned	v = 0;

	if (r->pos + 4 > r->len)
		return fail(r, "truncated \\u escape");
	for (int i = 0; i < 4; i++)
	{
		int			h = hex_digit_value(r->s[r->pos + i]);

		if (h < 0)
			return fail(r, "bad \\u escape");
		v = v * 16 + (unsigned) h;
	}
	r->pos += 4;
	*out = v;
	return true;
}

/* Appends a code point as UTF-8 to out (if any). */
static void
put_utf8(Buf *out, unsigned cp)
{
	char		u[4];

	if (!out)
		return;
	if (cp < 0x80)
	{
		u[0] = (char) cp;
		buf_append(out, u, 1);
	}
	else if (cp < 0x800)
	{
		u[0] = (char) (0xC0 | (cp >> 6));
		u[1] = (char) (0x80 | (cp & 0x3F));
		buf_append(out, u, 2);
	}
	else if (cp < 0x10000)
	{
		u[0] = (char) (0xE0 | (cp >> 12));
		u[1] = (char) (0x80 | ((cp >> 6) & 0x3F));
		u[2] = (char) (0x80 | (cp & 0x3F));
		buf_append(out, u, 3);
	}
	else
	{
		u[0] = (char) (0xF0 | (cp >> 18));
		u[1] = (char) (0x80 | ((cp >> 12) & 0x3F));
		u[2] = (char) (0x80 | ((cp >> 6) & 0x3F));
		u[3] = (char) (0x80 | (cp & 0x3F));
		buf_append(out, u, 4);
	}
}

/* A string at r->pos (the opening quote); its decoded text into out if given. */
static bool
read_string(Reader *r, Buf *out)
{
	r->pos++;
	for (;;)
	{
		unsigned char c;

		if (r->pos >= r->len)
			return fail(r, "unterminated string");
		c = (unsigned char) r->s[r->pos];
		if (c == '"')
		{
			r->pos++;
			return true;
		}
		if (c < 0x20)
			return fail(r, "control character in a string");
		if (c == '\\')
		{
			char		e;

			if (++r->pos >= r->len)
				return fail(r, "unterminated string");
			e = r->s[r->pos++];
			switch (e)
			{
				case '"':
				case '\\':
				case '/':
					put_utf8(out, (unsigned) e);
					break;
				case 'b':
					put_utf8(out, '\b');
					break;
				case 'f':
					put_utf8(out, '\f');
					break;
				case 'n':
					put_utf8(out, '\n');
					break;
				case 'r':
					put_utf8(out, '\r');
					break;
				case 't':
					put_utf8(out, '\t');
					break;
				case 'u':
					{
						unsigned	cp,
									lo;

						if (!read_hex4(r, &cp))
							return false;
						if (cp == 0)
							return fail(r, "\\u0000 is not allowed");
						if (cp >= 0xDC00 && cp <= 0xDFFF)
							return fail(r, "unpaired low surrogate");
						if (cp >= 0xD800 && cp <= 0xDBFF)
						{
							if (r->pos + 2 > r->len || r->s[r->pos] != '\\' || r->s[r->pos + 1] != 'u')
								return fail(r, "unpaired high surrogate");
							r->pos += 2;
							if (!read_hex4(r, &lo))
								return false;
							if (lo < 0xDC00 || lo > 0xDFFF)
								return fail(r, "unpaired high surrogate");
							cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
						}
						put_utf8(out, cp);
						break;
					}
				default:
					r->pos--;
					return fail(r, "bad escape");
			}
			continue;
		}
		if (c < 0x80)
		{
			if (out)
				buf_append(out, (const char *) &c, 1);
			r->pos++;
			continue;
		}
		/* UTF-8: shortest form, no surrogates, at most U+10FFFF */
		{
			int			n;
			unsigned	cp;
			size_t		start = r->pos;

			if (c >= 0xC2 && c <= 0xDF)
				n = 1, cp = c & 0x1F;
			else if (c >= 0xE0 && c <= 0xEF)
				n = 2, cp = c & 0x0F;
			else if (c >= 0xF0 && c <= 0xF4)
				n = 3, cp = c & 0x07;
			else
				return fail(r, "invalid UTF-8");
			if (r->pos + 1 + (size_t) n > r->len)
				return fail(r, "invalid UTF-8");
			for (int i = 1; i <= n; i++)
			{
				unsigned char cc = (unsigned char) r->s[r->pos + i];

				if ((cc & 0xC0) != 0x80)
					return fail(r, "invalid UTF-8");
				cp = (cp << 6) | (cc & 0x3F);
			}
			if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
				(cp >= 0xD800 && cp <= 0xDFFF))
				return fail(r, "invalid UTF-8");
			r->pos += 1 + (size_t) n;
			if (out)
				buf_append(out, r->s + start, 1 + (size_t) n);
		}
	}
}

static bool
read_number(Reader *r)
{
	size_t		start = r->pos;
	int			expdigits = 0;

	if (r->s[r->pos] == '-')
		r->pos++;
	if (r->pos >= r->len)
		return fail(r, "bad number");
	if (r->s[r->pos] == '0')
		r->pos++;
	else if (r->s[r->pos] >= '1' && r->s[r->pos] <= '9')
		while (r->pos < r->len && r->s[r->pos] >= '0' && r->s[r->pos] <= '9')
			r->pos++;
	else
		return fail(r, "bad number");
	if (r->pos < r->len && r->s[r->pos] == '.')
	{
		r->pos++;
		if (r->pos >= r->len || r->s[r->pos] < '0' || r->s[r->pos] > '9')
			return fail(r, "bad number");
		while (r->pos < r->len && r->s[r->pos] >= '0' && r->s[r->pos] <= '9')
			r->pos++;
	}
	if (r->pos < r->len && (r->s[r->pos] == 'e' || r->s[r->pos] == 'E'))
	{
		r->pos++;
		if (r->pos < r->len && (r->s[r->pos] == '+' || r->s[r->pos] == '-'))
			r->pos++;
		if (r->pos >= r->len || r->s[r->pos] < '0' || r->s[r->pos] > '9')
			return fail(r, "bad number");
		while (r->pos < r->len && r->s[r->pos] >= '0' && r->s[r->pos] <= '9')
			r->pos++, expdigits++;
	}
	if (r->pos - start > JSON_MAX_NUMBER || expdigits > JSON_MAX_EXPONENT)
	{
		r->pos = start;
		return fail(r, "number too long");
	}
	return true;
}

static bool read_value(Reader *r, int depth, bool payment);

static bool
read_literal(Reader *r, const char *lit)
{
	size_t		n = strlen(lit);

	if (r->pos + n > r->len || memcmp(r->s + r->pos, lit, n) != 0)
		return fail(r, "unexpected character");
	r->pos += n;
	return true;
}

/* An object; payment: the keys are a payment's fields (no key twice). */
static bool
read_object(Reader *r, int depth, bool payment)
{
	char	   *keys[JSON_MAX_KEYS];
	int			nkeys = 0;
	bool		ok = false;

	r->pos++;
	skip_ws(r);
	if (r->pos < r->len && r->s[r->pos] == '}')
	{
		r->pos++;
		return true;
	}
	for (;;)
	{
		Buf			key;

		skip_ws(r);
		if (r->pos >= r->len || r->s[r->pos] != '"')
		{
			fail(r, "expected a key");
			goto out;
		}
		buf_init(&key, 32);
		if (!read_string(r, payment ? &key : NULL))
		{
			buf_free(&key);
			goto out;
		}
		if (payment)
		{
			for (int i = 0; i < nkeys; i++)
				if (strcmp(keys[i], key.data) == 0)
				{
					snprintf(r->err->field, sizeof(r->err->field), "%.*s", GW_MAX_ID, key.data);
					fail(r, "a key appears twice");
					buf_free(&key);
					goto out;
				}
			if (nkeys == JSON_MAX_KEYS)
			{
				fail(r, "too many keys in one payment");
				buf_free(&key);
				goto out;
			}
			keys[nkeys++] = buf_steal(&key);
		}
		else
			buf_free(&key);
		skip_ws(r);
		if (r->pos >= r->len || r->s[r->pos] != ':')
		{
			fail(r, "expected ':'");
			goto out;
		}
		r->pos++;
		if (!read_value(r, depth + 1, false))
			goto out;
		skip_ws(r);
		if (r->pos < r->len && r->s[r->pos] == ',')
		{
			r->pos++;
			continue;
		}
		if (r->pos < r->len && r->s[r->pos] == '}')
		{
			r->pos++;
			ok = true;
			goto out;
		}
		fail(r, "expected ',' or '}'");
		goto out;
	}
out:
	for (int i = 0; i < nkeys; i++)
		free(keys[i]);
	return ok;
}

static bool
read_array(Reader *r, int depth)
{
	r->pos++;
	skip_ws(r);
	if (r->pos < r->len && r->s[r->pos] == ']')
	{
		r->pos++;
		return true;
	}
	for (;;)
	{
		if (!read_value(r, depth + 1, false))
			return false;
		skip_ws(r);
		if (r->pos < r->len && r->s[r->pos] == ',')
		{
			r->pos++;
			continue;
		}
		if (r->pos < r->len && r->s[r->pos] == ']')
		{
			r->pos++;
			return true;
		}
		return fail(r, "expected ',' or ']'");
	}
}

static bool
read_value(Reader *r, int depth, bool payment)
{
	if (depth > JSON_MAX_DEPTH)
		return fail(r, "nested too deeply");
	skip_ws(r);
	if (r->pos >= r->len)
		return fail(r, "unexpected end of the body");
	switch (r->s[r->pos])
	{
		case '{':
			return read_object(r, depth, payment);
		case '[':
			return read_array(r, depth);
		case '"':
			return read_string(r, NULL);
		case 't':
			return read_literal(r, "true");
		case 'f':
			return read_literal(r, "false");
		case 'n':
			return read_literal(r, "null");
		default:
			if (r->s[r->pos] == '-' || (r->s[r->pos] >= '0' && r->s[r->pos] <= '9'))
				return read_number(r);
			return fail(r, "unexpected character");
	}
}

void
json_payments_free(JsonPayments *p)
{
	free(p->elem);
	free(p->elem_len);
	p->elem = NULL;
	p->elem_len = NULL;
	p->n = 0;
}

JsonStatus
json_read_payments(const char *s, size_t len, int max_elems, JsonPayments *out, JsonError *err)
{
	Reader		r = {s, len, 0, err};
	int			cap = 16;

	memset(out, 0, sizeof(*out));
	memset(err, 0, sizeof(*err));
	err->element = -1;
	skip_ws(&r);
	if (r.pos >= len)
	{
		fail(&r, "empty body");
		return JSON_SYNTAX;
	}
	if (s[r.pos] == '{')
	{
		size_t		start = r.pos;

		if (!read_object(&r, 1, true))
			return err->field[0] ? JSON_SHAPE : JSON_SYNTAX;
		skip_ws(&r);
		if (r.pos != len)
		{
			fail(&r, "text after the JSON value");
			return JSON_SYNTAX;
		}
		out->n = 1;
		out->elem = malloc(sizeof(char *));
		out->elem_len = malloc(sizeof(int));
		out->elem[0] = s + start;
		out->elem_len[0] = (int) (r.pos - start);
		while (out->elem_len[0] > 0 && strchr(" \t\r\n", out->elem[0][out->elem_len[0] - 1]))
			out->elem_len[0]--;
		return JSON_OK;
	}
	if (s[r.pos] != '[')
	{
		/* valid JSON of the wrong shape is a 422, invalid JSON a 400 */
		if (!read_value(&r, 1, false))
			return JSON_SYNTAX;
		snprintf(err->message, sizeof(err->message),
				 "the body must be a payment (a JSON object) or an array of payments");
		return JSON_SHAPE;
	}
	out->is_array = true;
	out->elem = malloc(cap * sizeof(char *));
	out->elem_len = malloc(cap * sizeof(int));
	r.pos++;
	skip_ws(&r);
	if (r.pos < len && s[r.pos] == ']')
		r.pos++;
	else
		for (;;)
		{
			size_t		start;

			skip_ws(&r);
			start = r.pos;
			if (out->n == max_elems)
			{
				fail(&r, "too many payments in one request");
				snprintf(err->message, sizeof(err->message),
						 "at most %d payments per request", max_elems);
				json_payments_free(out);
				return JSON_SHAPE;
			}
			err->element = out->n;
			if (r.pos < len && s[r.pos] == '{')
			{
				if (!read_object(&r, 2, true))
				{
					JsonStatus	st = err->field[0] ? JSON_SHAPE : JSON_SYNTAX;

					json_payments_free(out);
					return st;
				}
			}
			else if (!read_value(&r, 2, false))
			{
				json_payments_free(out);
				return JSON_SYNTAX;
			}
			if (out->n == cap)
			{
				cap *= 2;
				out->elem = realloc(out->elem, cap * sizeof(char *));
				out->elem_len = realloc(out->elem_len, cap * sizeof(int));
				if (!out->elem || !out->elem_len)
					abort();
			}
			out->elem[out->n] = s + start;
			out->elem_len[out->n] = (int) (r.pos - start);
			out->n++;
			skip_ws(&r);
			if (r.pos < len && s[r.pos] == ',')
			{
				r.pos++;
				continue;
			}
			if (r.pos < len && s[r.pos] == ']')
			{
				r.pos++;
				break;
			}
			fail(&r, "expected ',' or ']'");
			json_payments_free(out);
			return JSON_SYNTAX;
		}
	err->element = -1;
	skip_ws(&r);
	if (r.pos != len)
	{
		fail(&r, "text after the JSON value");
		json_payments_free(out);
		return JSON_SYNTAX;
	}
	if (out->n == 0)
	{
		snprintf(err->message, sizeof(err->message), "the array holds no payment");
		json_payments_free(out);
		return JSON_SHAPE;
	}
	return JSON_OK;
}

/*
 * One flat JSON object of the controls' bodies (controls.c): every key must
 * be one of fields, at most once, with a value of one of its types; values
 * are not decoded here (the database reads the body as jsonb).  A nested
 * object or array is never a control's field's type.
 */
JsonStatus
json_read_fields(const char *s, size_t len, JsonField *fields, int nfields, JsonError *err)
{
	Reader		r = {s, len, 0, err};

	memset(err, 0, sizeof(*err));
	err->element = -1;
	for (int i = 0; i < nfields; i++)
		fields[i].seen = 0;
	/* syntax, nesting, bounded numbers, no key twice: as for a payment */
	skip_ws(&r);
	if (r.pos >= len)
	{
		fail(&r, "empty body");
		return JSON_SYNTAX;
	}
	if (s[r.pos] != '{')
	{
		if (!read_value(&r, 1, false))
			return JSON_SYNTAX;
		snprintf(err->message, sizeof(err->message), "the body must be a JSON object");
		return JSON_SHAPE;
	}
	if (!read_object(&r, 1, true))
		return err->field[0] ? JSON_SHAPE : JSON_SYNTAX;
	skip_ws(&r);
	if (r.pos != len)
	{
		fail(&r, "text after the JSON value");
		return JSON_SYNTAX;
	}
	/* valid: the keys and the types of their values */
	r.pos = 0;
	skip_ws(&r);
	r.pos++;
	for (;;)
	{
		Buf			key;
		int			type,
					f;

		skip_ws(&r);
		if (s[r.pos] == '}')
			return JSON_OK;
		if (s[r.pos] == ',')
		{
			r.pos++;
			continue;
		}
		buf_init(&key, 32);
		read_string(&r, &key);
		skip_ws(&r);
		r.pos++;				/* ':' */
		skip_ws(&r);
		switch (s[r.pos])
		{
			case '"':
				type = JSON_T_STRING;
				break;
			case 't':
			case 'f':
				type = JSON_T_BOOL;
				break;
			case 'n':
				type = JSON_T_NULL;
				break;
			case '{':
			case '[':
				type = 0;
				break;
			default:
				type = JSON_T_NUMBER;
		}
		for (f = 0; f < nfields; f++)
			if (strcmp(fields[f].name, key.data) == 0)
				break;
		snprintf(err->field, sizeof(err->field), "%.*s", GW_MAX_ID, key.data);
		buf_free(&key);
		if (f == nfields)
		{
			snprintf(err->message, sizeof(err->message), "unknown key \"%s\"", err->field);
			return JSON_SHAPE;
		}
		if (!(fields[f].types & type))
		{
			snprintf(err->message, sizeof(err->message), "%s has a value of the wrong JSON type", err->field);
			return JSON_SHAPE;
		}
		fields[f].seen = type;
		err->field[0] = '\0';
		read_value(&r, 2, false);
	}
}
