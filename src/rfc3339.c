/*
 * rfc3339.c -- read and write timestamps as RFC 3339 text, exactly.
 *
 * A deadline given as text (settle_submit_bulk's JSON, and so the gateway's
 * HTTP bodies) is read here, not by timestamptz_in: timestamptz_in reads
 * words ("tomorrow"), many layouts chosen by DateStyle, and a time without a
 * zone in the session's TimeZone, so the same bytes could mean different
 * instants from two clients, and an exact retry could be refused as a
 * conflict.  This reader takes one form, whose text carries its own offset,
 * and depends on no setting.  Calendar arithmetic is integer only (days from
 * the civil date, proleptic Gregorian).  Pure C, so the fuzzer drives it.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "rfc3339.h"

#define USECS_PER_SEC INT64_C(1000000)
#define USECS_PER_DAY INT64_C(86400000000)
/* days from 1970-01-01 to 2000-01-01, PostgreSQL's epoch */
#define PG_EPOCH_DAYS 10957

static bool digits(const char *s, int n, int *value);
static bool leap_year(int y);
static int	days_in_month(int y, int m);
static int64_t days_from_civil(int64_t y, int m, int d);
static void civil_from_days(int64_t z, int64_t *y, int *m, int *d);

/* n ASCII digits at s as a number. */
static bool
digits(const char *s, int n, int *value)
{
	int			v = 0;
	int			i;

	for (i = 0; i < n; i++)
	{
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*value = v;
	return true;
}

static bool
leap_year(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int
days_in_month(int y, int m)
{
	static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

	return m == 2 && leap_year(y) ? 29 : days[m - 1];
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm). */
static int64_t
days_from_civil(int64_t y, int m, int d)
{
	int64_t		era;
	int64_t		yoe,
				doy,
				doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* The inverse of days_from_civil. */
static void
civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
	int64_t		era,
				doe,
				yoe,
				doy,
				mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (int) (doy - (153 * mp + 2) / 5 + 1);
	*m = (int) (mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

TimestampResult
settle_parse_rfc3339(const char *s, size_t len, int64_t *usec, const char **what)
{
	int			year,
				month,
				day,
				hour,
				minute,
				second,
				off_h,
				off_m;
	int64_t		frac = 0;
	int			frac_digits = 0;
	int			offset_sign = 0;
	size_t		p;

	*usec = 0;
	*what = "";
	if (s == NULL)
		return TS_SYNTAX;
	if (len > SETTLE_MAX_TIMESTAMP_TEXT)
		return TS_TOO_LONG;

	/* full-date: 4DIGIT "-" 2DIGIT "-" 2DIGIT */
	if (len < 10 || !digits(s, 4, &year) || s[4] != '-' ||
		!digits(s + 5, 2, &month) || s[7] != '-' || !digits(s + 8, 2, &day))
	{
		*what = "date";
		return TS_SYNTAX;
	}
	if (len == 10)
	{
		/* a date alone: a day in no time zone */
		*what = "time";
		return TS_NO_OFFSET;
	}
	if (s[10] != 'T' && s[10] != 't')
	{
		*what = "separator";
		return TS_SYNTAX;
	}
	/* partial-time: 2DIGIT ":" 2DIGIT ":" 2DIGIT ["." 1*DIGIT] */
	if (len < 19 || !digits(s + 11, 2, &hour) || s[13] != ':' ||
		!digits(s + 14, 2, &minute) || s[16] != ':' || !digits(s + 17, 2, &second))
	{
		*what = "time";
		return TS_SYNTAX;
	}
	p = 19;
	if (p < len && s[p] == '.')
	{
		size_t		start = ++p;

		while (p < len && s[p] >= '0' && s[p] <= '9')
		{
			/* microseconds; digits below them must be zero */
			if (frac_digits < 6)
				frac = frac * 10 + (s[p] - '0');
			else if (s[p] != '0')
			{
				*what = "fraction";
				return TS_PRECISION;
			}
			frac_digits++;
			p++;
		}
		if (p == start)
		{
			*what = "fraction";
			return TS_SYNTAX;
		}
		for (; frac_digits < 6; frac_digits++)
			frac *= 10;
	}
	/* time-offset: "Z" / ("+" / "-") 2DIGIT ":" 2DIGIT */
	if (p == len)
	{
		*what = "offset";
		return TS_NO_OFFSET;
	}
	if (s[p] == 'Z' || s[p] == 'z')
	{
		off_h = off_m = 0;
		p++;
	}
	else if (s[p] == '+' || s[p] == '-')
	{
		offset_sign = s[p] == '-' ? -1 : 1;
		if (len - p < 6 || !digits(s + p + 1, 2, &off_h) || s[p + 3] != ':' ||
			!digits(s + p + 4, 2, &off_m))
		{
			*what = "offset";
			return TS_SYNTAX;
		}
		p += 6;
	}
	else
	{
		*what = "offset";
		return TS_SYNTAX;
	}
	if (p != len)
	{
		*what = "end";
		return TS_SYNTAX;
	}

	if (month < 1 || month > 12)
		*what = "month";
	else if (day < 1 || day > days_in_month(year, month))
		*what = "day";
	else if (hour > 23)
		*what = "hour";
	else if (minute > 59)
		*what = "minute";
	else if (second > 59)
		*what = "second";		/* a leap second cannot be stored */
	else if (off_h > 23 || off_m > 59)
		*what = "offset";
	if (**what != '\0')
		return TS_FIELD_RANGE;

	{
		int64_t		days = days_from_civil(year, month, day) - PG_EPOCH_DAYS;
		int64_t		secs = (int64_t) hour * 3600 + minute * 60 + second;
		int64_t		offset = offset_sign * ((int64_t) off_h * 3600 + off_m * 60);

		*usec = days * USECS_PER_DAY + (secs - offset) * USECS_PER_SEC + frac;
	}
	return TS_OK;
}

int
settle_format_rfc3339(int64_t usec, char *buf)
{
	int64_t		days,
				rem,
				y;
	int			m,
				d;
	int			secs,
				micro;

	/* floor division: times before 2000 have a negative usec */
	days = usec / USECS_PER_DAY;
	rem = usec % USECS_PER_DAY;
	if (rem < 0)
	{
		rem += USECS_PER_DAY;
		days--;
	}
	civil_from_days(days + PG_EPOCH_DAYS, &y, &m, &d);
	if (y < 0 || y > 9999)
	{
		strcpy(buf, "out of range");
		return -1;
	}
	secs = (int) (rem / USECS_PER_SEC);
	micro = (int) (rem % USECS_PER_SEC);
	if (micro == 0)
		snprintf(buf, 32, "%04d-%02d-%02dT%02d:%02d:%02dZ",
				 (int) y, m, d, secs / 3600, secs / 60 % 60, secs % 60);
	else
		snprintf(buf, 32, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ",
				 (int) y, m, d, secs / 3600, secs / 60 % 60, secs % 60, micro);
	return 0;
}
