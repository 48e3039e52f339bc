/* imap-date.c - IMAP date-time and RFC 5322 Date: to and from UTC seconds (see
 * imap-date.h).
 *
 * What it does: checks every field's range itself and turns the civil date into a day
 * number with the days-from-civil algorithm (Howard Hinnant's, proleptic Gregorian, exact
 * for any year), so neither timegm()/mktime() nor the TZ variable are involved and no
 * intermediate can overflow: years are at most 9999, so every value fits easily in
 * int64_t.
 *
 * What it does not do: no time zone names beyond the ten of RFC 5322 (a "CET" outside a
 * comment is not understood as +0100), no two-digit-year windowing beyond RFC 5322 §4.3,
 * no asctime() or RFC 850 formats in rfc5322_date_parse().
 */
#include "net/imap-date.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define MAX_ZONE_MINUTES (14 * 60)

static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
				   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

static bool
is_leap(int year)
{
	return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

static int
days_in_month(int year, int month)
{
	static const unsigned char days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	return month == 2 && is_leap(year) ? 29 : days[month - 1];
}

/* Days since 1970-01-01 of a valid proleptic Gregorian date (month 1-12). */
static int64_t
days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;                                   /* [0, 399] */
	int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1; /* [0, 365] */
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;           /* [0, 146096] */
	return era * 146097 + doe - 719468;
}

/* The inverse of days_from_civil(). */
static void
civil_from_days(int64_t z, int64_t *y_r, int *m_r, int *d_r)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;                                      /* [0, 146096] */
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; /* [0, 399] */
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);               /* [0, 365] */
	int64_t mp = (5 * doy + 2) / 153;                                    /* [0, 11] */
	*d_r = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m_r = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y_r = era * 400 + yoe + (*m_r <= 2);
}

/* All fields already range-checked; zone in minutes east of UTC. */
static int64_t
to_utc(int year, int month, int day, int hour, int min, int sec, int zone)
{
	int64_t days = days_from_civil(year, month, day);
	return days * 86400 + hour * 3600 + min * 60 + sec - (int64_t)zone * 60;
}

static bool
fields_valid(int year, int month, int day, int hour, int min, int sec)
{
	return month >= 1 && month <= 12 && day >= 1 && day <= days_in_month(year, month) &&
	       hour >= 0 && hour <= 23 && min >= 0 && min <= 59 && sec >= 0 && sec <= 60;
}

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool
is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Exactly n digits at s. */
static bool
digits(const char *s, int n, int *v_r)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (!is_digit(s[i]))
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*v_r = v;
	return true;
}

/* The month of a three-letter name (any case), 1-12, or 0. */
static int
month_number(const char *s, size_t len)
{
	if (len != 3)
		return 0;
	for (int i = 0; i < 12; i++)
		if (strncasecmp(s, months[i], 3) == 0)
			return i + 1;
	return 0;
}

/* ("+" / "-") 4DIGIT, HH at most 14 and MM at most 59, total at most 14:00. */
static bool
numeric_zone(const char *s, int *zone_r)
{
	int hh, mm;
	if ((s[0] != '+' && s[0] != '-') || !digits(s + 1, 2, &hh) || !digits(s + 3, 2, &mm))
		return false;
	int minutes = hh * 60 + mm;
	if (mm > 59 || minutes > MAX_ZONE_MINUTES)
		return false;
	*zone_r = s[0] == '-' ? -minutes : minutes;
	return true;
}

int
imap_date_parse(const char *s, int64_t *utc_r)
{
	int day, month, year, hour, min, sec, zone;

	/* date-day-fixed = (SP DIGIT) / 2DIGIT */
	if (s[0] == ' ' && is_digit(s[1]))
		day = s[1] - '0';
	else if (!digits(s, 2, &day))
		goto invalid;
	/* "-" date-month "-" date-year */
	if (s[2] != '-' || s[3] == '\0' || s[4] == '\0' || s[5] == '\0' || s[6] != '-')
		goto invalid;
	month = month_number(s + 3, 3);
	if (month == 0 || !digits(s + 7, 4, &year))
		goto invalid;
	/* SP time = 2DIGIT ":" 2DIGIT ":" 2DIGIT */
	if (s[11] != ' ' || !digits(s + 12, 2, &hour) || s[14] != ':' || !digits(s + 15, 2, &min) ||
	    s[17] != ':' || !digits(s + 18, 2, &sec))
		goto invalid;
	/* SP zone, then the end */
	if (s[20] != ' ' || !numeric_zone(s + 21, &zone) || s[26] != '\0')
		goto invalid;
	if (!fields_valid(year, month, day, hour, min, sec))
		goto invalid;
	*utc_r = to_utc(year, month, day, hour, min, sec, zone);
	return 0;
invalid:
	errno = EINVAL;
	return -1;
}

int
imap_date_format(int64_t utc, char out[27])
{
	/* 0000-01-01T00:00:00Z and 9999-12-31T23:59:59Z */
	const int64_t min = -62167219200, max = 253402300799;
	int64_t year;
	int month, day;

	out[0] = '\0';
	if (utc < min || utc > max) {
		errno = ERANGE;
		return -1;
	}
	int64_t days = utc >= 0 ? utc / 86400 : -((-utc + 86399) / 86400);
	int64_t secs = utc - days * 86400; /* [0, 86399] */
	civil_from_days(days, &year, &month, &day);
	snprintf(out, 27, "%02d-%s-%04d %02d:%02d:%02d +0000", day, months[month - 1], (int)year,
		 (int)(secs / 3600), (int)(secs / 60 % 60), (int)(secs % 60));
	return 0;
}

/* ---- RFC 5322 ---------------------------------------------------------------------- */

/* A lexer over the Date: value that skips CFWS:
 *   FWS      = ([*WSP CRLF] 1*WSP) / obs-FWS
 *   comment  = "(" *([FWS] ccontent) [FWS] ")"
 *   ccontent = ctext / quoted-pair / comment                     (RFC 5322 §3.2.2)
 * and yields numbers, words and single punctuation characters. */
enum tok_kind { TOK_END, TOK_NUM, TOK_WORD, TOK_PUNCT, TOK_BAD };

struct tok {
	enum tok_kind kind;
	const char *s;
	size_t len;
	bool space_before; /* CFWS came before it */
};

/* Skip white space and comments; false on an unbalanced comment. */
static bool
skip_cfws(const char **pp, bool *skipped_r)
{
	const char *p = *pp;
	for (;;) {
		if (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') {
			p++;
			*skipped_r = true;
			continue;
		}
		if (*p != '(')
			break;
		int depth = 0;
		do {
			if (*p == '\0')
				return false;
			if (*p == '\\' && p[1] != '\0')
				p++;
			else if (*p == '(')
				depth++;
			else if (*p == ')')
				depth--;
			p++;
		} while (depth > 0);
		*skipped_r = true;
	}
	*pp = p;
	return true;
}

static struct tok
next_tok(const char **pp)
{
	struct tok t = {TOK_END, NULL, 0, false};
	const char *p = *pp;

	if (!skip_cfws(&p, &t.space_before)) {
		t.kind = TOK_BAD;
		return t;
	}
	t.s = p;
	if (*p == '\0')
		return t;
	if (is_digit(*p)) {
		t.kind = TOK_NUM;
		while (is_digit(p[t.len]) && t.len < 10)
			t.len++;
	} else if (is_alpha(*p)) {
		t.kind = TOK_WORD;
		while (is_alpha(p[t.len]) && t.len < 10)
			t.len++;
	} else {
		t.kind = TOK_PUNCT;
		t.len = 1;
	}
	*pp = p + t.len;
	return t;
}

static int
tok_int(const struct tok *t)
{
	int v = 0;
	for (size_t i = 0; i < t->len; i++)
		v = v * 10 + (t->s[i] - '0');
	return v;
}

static bool
tok_is(const struct tok *t, char c)
{
	return t->kind == TOK_PUNCT && t->s[0] == c;
}

/* obs-zone names and military letters; the offset in minutes east of UTC. */
static bool
zone_name(const struct tok *t, int *zone_r)
{
	static const struct {
		const char *name;
		int minutes;
	} names[] = {
	    {"UT", 0},        {"GMT", 0},       {"UTC", 0},       {"Z", 0},
	    {"EST", -5 * 60}, {"EDT", -4 * 60}, {"CST", -6 * 60}, {"CDT", -5 * 60},
	    {"MST", -7 * 60}, {"MDT", -6 * 60}, {"PST", -8 * 60}, {"PDT", -7 * 60},
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (t->len == strlen(names[i].name) &&
		    strncasecmp(t->s, names[i].name, t->len) == 0) {
			*zone_r = names[i].minutes;
			return true;
		}
	}
	/* %d65-73 / %d75-90 / %d97-105 / %d107-122: "SHOULD all be considered equivalent to
	 * "-0000" unless there is out-of-band information" (§4.3) */
	if (t->len == 1 && t->s[0] != 'J' && t->s[0] != 'j') {
		*zone_r = 0;
		return true;
	}
	return false;
}

int
rfc5322_date_parse(const char *s, int64_t *utc_r)
{
	static const char day_names[7][4] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
	const char *p = s;
	int day, month, year, hour, min, sec = 0, zone = 0;
	struct tok t = next_tok(&p);

	/* [ day-of-week "," ] */
	if (t.kind == TOK_WORD) {
		bool known = false;
		for (int i = 0; i < 7; i++)
			known |= t.len == 3 && strncasecmp(t.s, day_names[i], 3) == 0;
		if (!known)
			goto invalid;
		t = next_tok(&p);
		if (!tok_is(&t, ','))
			goto invalid;
		t = next_tok(&p);
	}
	/* day = ([FWS] 1*2DIGIT FWS) / obs-day */
	if (t.kind != TOK_NUM || t.len > 2)
		goto invalid;
	day = tok_int(&t);
	/* month, with "-" tolerated around it */
	t = next_tok(&p);
	bool dashed = tok_is(&t, '-');
	if (dashed)
		t = next_tok(&p);
	if (t.kind != TOK_WORD || (month = month_number(t.s, t.len)) == 0)
		goto invalid;
	t = next_tok(&p);
	if (dashed && tok_is(&t, '-'))
		t = next_tok(&p);
	/* year = (FWS 4*DIGIT FWS) / obs-year;  obs-year = [CFWS] 2*DIGIT [CFWS] */
	if (t.kind != TOK_NUM || t.len < 2 || t.len > 4)
		goto invalid;
	year = tok_int(&t);
	if (t.len == 2)
		year += year < 50 ? 2000 : 1900;
	else if (t.len == 3)
		year += 1900;
	else if (year < 1900)
		goto invalid;
	/* time-of-day = hour ":" minute [ ":" second ] */
	t = next_tok(&p);
	if (t.kind != TOK_NUM || t.len > 2)
		goto invalid;
	hour = tok_int(&t);
	t = next_tok(&p);
	if (!tok_is(&t, ':'))
		goto invalid;
	t = next_tok(&p);
	if (t.kind != TOK_NUM || t.len != 2)
		goto invalid;
	min = tok_int(&t);
	t = next_tok(&p);
	if (tok_is(&t, ':')) {
		t = next_tok(&p);
		if (t.kind != TOK_NUM || t.len != 2)
			goto invalid;
		sec = tok_int(&t);
		t = next_tok(&p);
	}
	/* zone = (FWS ( "+" / "-" ) 4DIGIT) / obs-zone; missing: UTC */
	if (tok_is(&t, '+') || tok_is(&t, '-')) {
		if (!numeric_zone(t.s, &zone))
			goto invalid;
		p = t.s + 5;
		t = next_tok(&p);
		/* a zone name after the offset, outside a comment: "+0100 CET" */
		if (t.kind == TOK_WORD && t.space_before && t.len <= 5)
			t = next_tok(&p);
	} else if (t.kind == TOK_WORD) {
		if (!zone_name(&t, &zone))
			goto invalid;
		t = next_tok(&p);
	}
	/* [CFWS] and the end */
	if (t.kind != TOK_END)
		goto invalid;
	if (!fields_valid(year, month, day, hour, min, sec))
		goto invalid;
	*utc_r = to_utc(year, month, day, hour, min, sec, zone);
	return 0;
invalid:
	errno = EINVAL;
	return -1;
}
