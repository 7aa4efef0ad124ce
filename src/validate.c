/*
 * validate.c -- syntax rules for identifiers and currency codes.
 *
 * These checks run before any table is read, so a malformed field costs no
 * I/O.  The sets are deliberately narrow: identifiers are what clients store
 * and log, and a narrow set keeps control characters, invisible Unicode and
 * quoting tricks out of the ledger.  Lengths are in bytes.
 */
#include <stdbool.h>

#include "validate.h"

static FieldResult check_set(const char *s, size_t len, size_t *bad_pos,
							 bool (*allowed) (unsigned char c, size_t pos));
static bool key_char(unsigned char c, size_t pos);
static bool name_char(unsigned char c, size_t pos);

/* Apply a per-byte rule to a field, with the shared empty/length rules. */
static FieldResult
check_set(const char *s, size_t len, size_t *bad_pos,
		  bool (*allowed) (unsigned char c, size_t pos))
{
	size_t		i;

	*bad_pos = 0;
	if (len == 0)
		return FIELD_EMPTY;
	if (len > SETTLE_MAX_IDENTIFIER)
	{
		*bad_pos = SETTLE_MAX_IDENTIFIER;
		return FIELD_TOO_LONG;
	}
	for (i = 0; i < len; i++)
	{
		if (!allowed((unsigned char) s[i], i))
		{
			*bad_pos = i;
			return FIELD_BAD_CHARS;
		}
	}
	return FIELD_OK;
}

/* Printable ASCII without space. */
static bool
key_char(unsigned char c, size_t pos)
{
	(void) pos;
	return c >= 0x21 && c <= 0x7e;
}

/* Letters, digits, '_', '.', '-'; the first must be a letter or digit. */
static bool
name_char(unsigned char c, size_t pos)
{
	bool		alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		(c >= '0' && c <= '9');

	if (pos == 0)
		return alnum;
	return alnum || c == '_' || c == '.' || c == '-';
}

FieldResult
settle_check_key(const char *s, size_t len, size_t *bad_pos)
{
	return check_set(s, len, bad_pos, key_char);
}

FieldResult
settle_check_transaction_id(const char *s, size_t len, size_t *bad_pos)
{
	FieldResult r = check_set(s, len, bad_pos, key_char);
	size_t		i;

	if (r != FIELD_OK)
		return r;
	for (i = 0; i < len; i++)
		if (s[i] == '/')
		{
			*bad_pos = i;
			return FIELD_BAD_CHARS;
		}
	if ((len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.'))
		return FIELD_NOT_ADDRESSABLE;
	return FIELD_OK;
}

FieldResult
settle_check_name(const char *s, size_t len, size_t *bad_pos)
{
	return check_set(s, len, bad_pos, name_char);
}

int
settle_check_currency_code(const char *s, size_t len)
{
	size_t		i;

	if (len != 3)
		return 0;
	for (i = 0; i < 3; i++)
		if (s[i] < 'A' || s[i] > 'Z')
			return 0;
	return 1;
}
