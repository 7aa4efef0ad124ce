/*
 * fuzz_fields.c -- libFuzzer target for intake's parsing and validation code.
 *
 * Drives settle_parse_amount (every exponent), settle_format_amount and the
 * identifier and currency-code rules with arbitrary bytes, and checks their
 * contracts, aborting (a fuzzer finding) when one breaks:
 *   - an accepted amount is in 1..SETTLE_MAX_AMOUNT_MINOR;
 *   - formatting an accepted amount and parsing it back gives the same value;
 *   - an amount accepted at exponent e is accepted at e+1 with 10x the minor units;
 *   - an accepted identifier has 1..128 bytes, all in its set; a refused one
 *     really breaks the rule reported;
 *   - an accepted currency code is three upper-case letters;
 *   - a transaction_id is accepted exactly when it is a valid key without
 *     '/' that is not "." or "..";
 *   - an accepted RFC 3339 timestamp has its offset and the fixed layout,
 *     and writing it in UTC and reading that back gives the same instant;
 *     a refusal names the part at fault.
 * Built with AddressSanitizer and UBSan (test/fuzz/run.sh).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "amount.h"
#include "rfc3339.h"
#include "validate.h"

static void check(int cond, const char *what);
static void check_amounts(const char *s);
static void check_identifier(const char *s, size_t len);
static void check_timestamp(const char *s, size_t len);

static void
check(int cond, const char *what)
{
	if (!cond)
	{
		fprintf(stderr, "contract broken: %s\n", what);
		abort();
	}
}

static void
check_amounts(const char *s)
{
	int			e;

	for (e = 0; e <= SETTLE_MAX_EXPONENT; e++)
	{
		int64_t		minor = -1;
		AmountResult r = settle_parse_amount(s, e, &minor);

		check(r >= AMOUNT_OK && r <= AMOUNT_ABOVE_BOUND, "result in range");
		if (r == AMOUNT_OK)
		{
			char		buf[40];
			int64_t		again = -1;

			check(minor > 0 && minor <= SETTLE_MAX_AMOUNT_MINOR, "accepted amount within bounds");
			settle_format_amount(minor, e, buf);
			check(settle_parse_amount(buf, e, &again) == AMOUNT_OK && again == minor,
				  "format then parse round-trips");
			if (e < SETTLE_MAX_EXPONENT)
			{
				int64_t		finer = -1;
				AmountResult rf = settle_parse_amount(s, e + 1, &finer);

				check(rf == AMOUNT_ABOVE_BOUND || (rf == AMOUNT_OK && finer == minor * 10),
					  "one more decimal place means ten times the minor units");
			}
		}
		else
			check(minor == 0, "a refused amount yields 0");
	}
}

static void
check_identifier(const char *s, size_t len)
{
	size_t		pos = 0;
	size_t		i;
	FieldResult k = settle_check_key(s, len, &pos);
	FieldResult n = settle_check_name(s, len, &pos);

	if (k == FIELD_OK)
	{
		check(len >= 1 && len <= SETTLE_MAX_IDENTIFIER, "key length");
		for (i = 0; i < len; i++)
			check((unsigned char) s[i] >= 0x21 && (unsigned char) s[i] <= 0x7e, "key bytes");
	}
	if (k == FIELD_EMPTY)
		check(len == 0, "empty means empty");
	if (k == FIELD_TOO_LONG)
		check(len > SETTLE_MAX_IDENTIFIER, "too long means too long");
	if (n == FIELD_OK)
		check(k == FIELD_OK, "every valid name is a valid key");
	{
		FieldResult t = settle_check_transaction_id(s, len, &pos);
		int			addressable = memchr(s, '/', len) == NULL &&
			!(len == 1 && s[0] == '.') && !(len == 2 && s[0] == '.' && s[1] == '.');

		check((t == FIELD_OK) == (k == FIELD_OK && addressable),
			  "a transaction_id is a key without '/' that is not a dot-segment");
		if (t == FIELD_BAD_CHARS)
			check(pos < len && (s[pos] == '/' || (unsigned char) s[pos] < 0x21 ||
								(unsigned char) s[pos] > 0x7e), "the byte reported breaks the rule");
	}
	if (settle_check_currency_code(s, len))
		check(len == 3 && s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'A' && s[1] <= 'Z' &&
			  s[2] >= 'A' && s[2] <= 'Z', "currency code shape");
}

static void
check_timestamp(const char *s, size_t len)
{
	int64_t		usec = -1;
	const char *what = NULL;
	TimestampResult r = settle_parse_rfc3339(s, len, &usec, &what);

	check(r >= TS_OK && r <= TS_TOO_LONG, "timestamp result in range");
	check(what != NULL, "a part is named (or \"\")");
	if (r != TS_OK)
	{
		check(usec == 0, "a refused timestamp yields 0");
		check(r == TS_TOO_LONG || *what != '\0', "a refusal names the part at fault");
		return;
	}
	check(len >= 20 && len <= SETTLE_MAX_TIMESTAMP_TEXT, "accepted length");
	check(s[4] == '-' && s[7] == '-' && (s[10] == 'T' || s[10] == 't') && s[13] == ':' && s[16] == ':',
		  "accepted layout");
	check(s[len - 1] == 'Z' || s[len - 1] == 'z' || (len >= 25 && s[len - 3] == ':' &&
													 (s[len - 6] == '+' || s[len - 6] == '-')),
		  "an accepted timestamp ends with its offset");
	{
		char		buf[32];
		int64_t		again = -1;
		const char *w2;

		if (settle_format_rfc3339(usec, buf) == 0)
		{
			check(settle_parse_rfc3339(buf, strlen(buf), &again, &w2) == TS_OK && again == usec,
				  "write in UTC then read gives the same instant");
			check(buf[strlen(buf) - 1] == 'Z', "written in UTC");
		}
	}
}

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	   *s = malloc(size + 1);

	memcpy(s, data, size);
	s[size] = '\0';
	check_amounts(s);
	check_identifier(s, size);
	free(s);
	/* the reader gets the bytes without a terminator: it must not read past len */
	{
		char	   *exact = malloc(size ? size : 1);

		memcpy(exact, data, size);
		check_timestamp(exact, size);
		free(exact);
	}
	return 0;
}
