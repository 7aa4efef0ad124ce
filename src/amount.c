/*
 * amount.c -- parse exact decimal amounts into integer minor units.
 *
 * Intake receives amounts as numeric (single submit, printed back with
 * numeric_out) or as JSON numbers or strings (bulk).  Both go through
 * settle_parse_amount so that the two paths accept exactly the same values.
 * The parser never builds a floating-point value: it locates the first and
 * last non-zero digits, works out their decimal powers, and refuses the value
 * before doing any arithmetic that could overflow.  Trailing zeros below the
 * minor unit are accepted ("1.500" USD is 150 cents); non-zero digits there
 * are not.  Pure C, so the fuzzer in test/fuzz drives it directly.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "amount.h"

static bool is_space(char c);
static bool word_at(const char *s, const char *word, const char **end);

/* ASCII whitespace, as numeric_in skips it. */
static bool
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* Case-insensitive match of an ASCII word at s; *end is set past it. */
static bool
word_at(const char *s, const char *word, const char **end)
{
	size_t		i;

	for (i = 0; word[i] != '\0'; i++)
	{
		char		c = s[i];

		if (c >= 'A' && c <= 'Z')
			c = (char) (c - 'A' + 'a');
		if (c != word[i])
			return false;
	}
	*end = s + i;
	return true;
}

AmountResult
settle_parse_amount(const char *s, int exponent, int64_t *minor)
{
	const char *p = s;
	const char *word_end;
	bool		negative = false;
	const char *int_start,
			   *int_end,
			   *frac_start = NULL,
			   *frac_end = NULL;
	int64_t		nint,
				nfrac,
				ndigits,
				exp10 = 0,
				first = -1,
				last = -1,
				j;
	int64_t		value = 0;

	*minor = 0;
	if (s == NULL || exponent < 0 || exponent > SETTLE_MAX_EXPONENT)
		return AMOUNT_SYNTAX;

	while (is_space(*p))
		p++;

	/* NaN and the infinities, in the spellings numeric_in accepts */
	if (word_at(p, "nan", &word_end))
	{
		p = word_end;
		while (is_space(*p))
			p++;
		return *p == '\0' ? AMOUNT_NOT_FINITE : AMOUNT_SYNTAX;
	}
	if (*p == '+' || *p == '-')
	{
		negative = (*p == '-');
		p++;
	}
	if (word_at(p, "infinity", &word_end) || word_at(p, "inf", &word_end))
	{
		p = word_end;
		while (is_space(*p))
			p++;
		return *p == '\0' ? AMOUNT_NOT_FINITE : AMOUNT_SYNTAX;
	}

	int_start = p;
	while (*p >= '0' && *p <= '9')
		p++;
	int_end = p;
	if (*p == '.')
	{
		p++;
		frac_start = p;
		while (*p >= '0' && *p <= '9')
			p++;
		frac_end = p;
	}
	nint = int_end - int_start;
	nfrac = frac_start ? frac_end - frac_start : 0;
	if (nint + nfrac == 0)
		return AMOUNT_SYNTAX;

	if (*p == 'e' || *p == 'E')
	{
		bool		exp_negative = false;
		const char *exp_start;

		p++;
		if (*p == '+' || *p == '-')
		{
			exp_negative = (*p == '-');
			p++;
		}
		exp_start = p;
		while (*p >= '0' && *p <= '9')
		{
			/* saturate: anything this large is refused below anyway */
			if (exp10 < 1000000)
				exp10 = exp10 * 10 + (*p - '0');
			p++;
		}
		if (p == exp_start)
			return AMOUNT_SYNTAX;
		if (exp_negative)
			exp10 = -exp10;
	}
	while (is_space(*p))
		p++;
	if (*p != '\0')
		return AMOUNT_SYNTAX;

	/* digit j of int||frac has decimal power nint - 1 - j + exp10 */
	ndigits = nint + nfrac;
	for (j = 0; j < ndigits; j++)
	{
		char		d = j < nint ? int_start[j] : frac_start[j - nint];

		if (d != '0')
		{
			if (first < 0)
				first = j;
			last = j;
		}
	}
	if (first < 0 || negative)
		return AMOUNT_NOT_POSITIVE;

	/* lowest non-zero digit must not be below the minor unit */
	if (nint - 1 - last + exp10 + exponent < 0)
		return AMOUNT_TOO_MANY_DECIMALS;
	/* highest non-zero digit: 10^15 minor units or more is above the bound */
	if (nint - 1 - first + exp10 + exponent > 14)
		return AMOUNT_ABOVE_BOUND;

	for (j = first; j < ndigits; j++)
	{
		char		d = j < nint ? int_start[j] : frac_start[j - nint];
		int64_t		power = nint - 1 - j + exp10 + exponent;

		if (power < 0)
			break;
		value = value * 10 + (d - '0');
	}
	/* append the zeros the exponent implies after the last written digit */
	{
		int64_t		low_power = nint - 1 - (ndigits - 1) + exp10 + exponent;

		for (; low_power > 0; low_power--)
			value *= 10;
	}
	if (value > SETTLE_MAX_AMOUNT_MINOR)
		return AMOUNT_ABOVE_BOUND;
	*minor = value;
	return AMOUNT_OK;
}

void
settle_format_amount(int64_t minor, int exponent, char *buf)
{
	char		digits[32];
	int			len;
	int			intlen;
	uint64_t	mag = minor < 0 ? (uint64_t) (-(minor + 1)) + 1 : (uint64_t) minor;
	char	   *out = buf;

	len = snprintf(digits, sizeof(digits), "%llu", (unsigned long long) mag);
	if (minor < 0)
		*out++ = '-';
	if (exponent <= 0)
	{
		memcpy(out, digits, (size_t) len + 1);
		return;
	}
	intlen = len - exponent;
	if (intlen <= 0)
	{
		*out++ = '0';
		*out++ = '.';
		for (; intlen < 0; intlen++)
			*out++ = '0';
		memcpy(out, digits, (size_t) len + 1);
		return;
	}
	memcpy(out, digits, (size_t) intlen);
	out += intlen;
	*out++ = '.';
	memcpy(out, digits + intlen, (size_t) exponent + 1);
}
