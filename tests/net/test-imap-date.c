/* test-imap-date.c - unit tests for net/imap-date.c: IMAP date-time parsing (valid,
 * invalid, every field's range, leap years, zones up to +-1400), formatting and its round
 * trip, cross-checked with gmtime_r()/timegm(); RFC 5322 Date: values including the
 * obsolete forms, comments and zone names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "net/imap-date.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SENTINEL INT64_C(0x5EED5EED)

static void
imap_ok(const char *s, int64_t want)
{
	int64_t t = SENTINEL;
	int rc = imap_date_parse(s, &t);
	if (rc != 0 || t != want)
		print_error("imap_date_parse(\"%s\"): rc %d, %lld, wanted %lld\n", s, rc,
			    (long long)t, (long long)want);
	assert_int_equal(rc, 0);
	assert_int_equal(t, want);
}

static void
imap_bad(const char *s)
{
	int64_t t = SENTINEL;
	errno = 0;
	int rc = imap_date_parse(s, &t);
	if (rc != -1)
		print_error("imap_date_parse(\"%s\") accepted: %lld\n", s, (long long)t);
	assert_int_equal(rc, -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(t, SENTINEL);
}

static void
mail_ok(const char *s, int64_t want)
{
	int64_t t = SENTINEL;
	int rc = rfc5322_date_parse(s, &t);
	if (rc != 0 || t != want)
		print_error("rfc5322_date_parse(\"%s\"): rc %d, %lld, wanted %lld\n", s, rc,
			    (long long)t, (long long)want);
	assert_int_equal(rc, 0);
	assert_int_equal(t, want);
}

static void
mail_bad(const char *s)
{
	int64_t t = SENTINEL;
	errno = 0;
	int rc = rfc5322_date_parse(s, &t);
	if (rc != -1)
		print_error("rfc5322_date_parse(\"%s\") accepted: %lld\n", s, (long long)t);
	assert_int_equal(rc, -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(t, SENTINEL);
}

/* ---- IMAP date-time ---------------------------------------------------------------- */

static void
test_imap_valid(void **state)
{
	(void)state;
	imap_ok("17-Jul-1996 02:44:25 -0700", 837596665); /* RFC 3501 §6.3.11 */
	imap_ok(" 7-Jul-1996 02:44:25 -0700", 836732665);
	imap_ok("07-Jul-1996 02:44:25 -0700", 836732665);
	imap_ok("17-Jul-1996 09:44:25 +0000", 837596665);
	imap_ok("17-Jul-1996 09:44:25 -0000", 837596665);
	imap_ok("17-Jul-1996 11:14:25 +0130", 837596665);
	imap_ok("01-Jan-1970 00:00:00 +0000", 0);
	imap_ok("31-Dec-1969 23:59:59 +0000", -1);
	imap_ok("01-Jan-1970 00:00:00 +0100", -3600);
	imap_ok("26-Nov-2026 09:30:00 +0000", 1795685400);
	/* month names in any case */
	imap_ok("17-jul-1996 02:44:25 -0700", 837596665);
	imap_ok("17-JUL-1996 02:44:25 -0700", 837596665);
	/* every month */
	static const char *const mon[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
					  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	for (int m = 0; m < 12; m++) {
		char s[32];
		snprintf(s, sizeof(s), "01-%s-2001 00:00:00 +0000", mon[m]);
		struct tm tm = {.tm_year = 101, .tm_mon = m, .tm_mday = 1};
		imap_ok(s, (int64_t)timegm(&tm));
	}
}

static void
test_imap_leap_years(void **state)
{
	(void)state;
	imap_ok("29-Feb-2000 12:00:00 +0000", 951825600); /* divisible by 400 */
	imap_ok("29-Feb-2024 00:00:00 +0000", 1709164800);
	imap_ok("29-Feb-1996 00:00:00 +0000", 825552000);
	imap_bad("29-Feb-1900 00:00:00 +0000"); /* divisible by 100 */
	imap_bad("29-Feb-2100 00:00:00 +0000");
	imap_bad("29-Feb-2023 00:00:00 +0000");
	imap_bad("30-Feb-2024 00:00:00 +0000");
	imap_bad("31-Apr-2024 00:00:00 +0000");
	imap_bad("31-Jun-2024 00:00:00 +0000");
	imap_bad("31-Sep-2024 00:00:00 +0000");
	imap_bad("31-Nov-2024 00:00:00 +0000");
	imap_ok("31-Dec-2024 00:00:00 +0000", 1735603200);
	imap_ok("31-Jan-2024 00:00:00 +0000", 1706659200);
	/* a leap second is the first second of the next minute */
	imap_ok("30-Jun-2016 23:59:60 +0000", 1467331200);
	imap_ok("01-Jul-2016 00:00:00 +0000", 1467331200);
}

static void
test_imap_ranges(void **state)
{
	(void)state;
	/* the extremes */
	imap_ok("31-Dec-9999 23:59:59 -1400", INT64_C(253402351199));
	imap_ok("01-Jan-0000 00:00:00 +1400", INT64_C(-62167219200) - 14 * 3600);
	imap_ok("01-Jan-0001 00:00:00 +0000", INT64_C(-62135596800));
	/* zones */
	imap_ok("01-Jan-1970 14:00:00 +1400", 0);
	imap_ok("31-Dec-1969 10:00:00 -1400", 0);
	imap_ok("01-Jan-1970 05:45:00 +0545", 0);
	imap_bad("01-Jan-1970 00:00:00 +1401");
	imap_bad("01-Jan-1970 00:00:00 -1401");
	imap_bad("01-Jan-1970 00:00:00 +1500");
	imap_bad("01-Jan-1970 00:00:00 +0060");
	imap_bad("01-Jan-1970 00:00:00 +9999");
	/* fields */
	imap_bad("00-Jan-2000 00:00:00 +0000");
	imap_bad("32-Jan-2000 00:00:00 +0000");
	imap_bad("99-Jan-2000 00:00:00 +0000");
	imap_bad(" 0-Jan-2000 00:00:00 +0000");
	imap_bad("01-Jan-2000 24:00:00 +0000");
	imap_bad("01-Jan-2000 23:60:00 +0000");
	imap_bad("01-Jan-2000 23:59:61 +0000");
	imap_bad("01-Jan-2000 99:99:99 +0000");
	imap_ok("01-Jan-2000 23:59:59 +0000", 946771199);
}

static void
test_imap_invalid(void **state)
{
	(void)state;
	imap_bad("");
	imap_bad(" ");
	imap_bad("17");
	imap_bad("17-Jul");
	imap_bad("17-Jul-1996");
	imap_bad("17-Jul-1996 02:44:25");
	imap_bad("17-Jul-1996 02:44:25 ");
	imap_bad("17-Jul-1996 02:44:25 -0700 ");
	imap_bad("17-Jul-1996 02:44:25 -0700x");
	imap_bad("\"17-Jul-1996 02:44:25 -0700\"");
	imap_bad("7-Jul-1996 02:44:25 -0700");
	imap_bad("  7-Jul-1996 02:44:25 -0700");
	imap_bad(" 17-Jul-1996 02:44:25 -0700");
	imap_bad("17-Jux-1996 02:44:25 -0700");
	imap_bad("17-July-1996 02:44:25 -0700");
	imap_bad("17-Ju-1996 02:44:25 -0700");
	imap_bad("17-Jul-96 02:44:25 -0700");
	imap_bad("17-Jul-19960 02:44:25 -0700");
	imap_bad("17-Jul-19x6 02:44:25 -0700");
	imap_bad("1x-Jul-1996 02:44:25 -0700");
	imap_bad("17/Jul/1996 02:44:25 -0700");
	imap_bad("17-Jul-1996T02:44:25 -0700");
	imap_bad("17-Jul-1996  02:44:25 -0700");
	imap_bad("17-Jul-1996\t02:44:25 -0700");
	imap_bad("17-Jul-1996 2:44:25 -0700");
	imap_bad("17-Jul-1996 02:44 -0700");
	imap_bad("17-Jul-1996 02-44-25 -0700");
	imap_bad("17-Jul-1996 02:44:25 0700");
	imap_bad("17-Jul-1996 02:44:25 -070");
	imap_bad("17-Jul-1996 02:44:25 -07000");
	imap_bad("17-Jul-1996 02:44:25 GMT");
	imap_bad("17-Jul-1996 02:44:25 +07:00");
	imap_bad("Wed, 17 Jul 1996 02:44:25 -0700");
	imap_bad("17-Jul-1996 02:44:25 -0700\r\n");
	/* every proper prefix of a valid date-time is invalid */
	const char *ok = "17-Jul-1996 02:44:25 -0700";
	for (size_t n = 0; n < strlen(ok); n++) {
		char s[32];
		memcpy(s, ok, n);
		s[n] = '\0';
		imap_bad(s);
	}
}

static void
format_is(int64_t t, const char *want)
{
	char out[27];
	memset(out, 'x', sizeof(out));
	assert_int_equal(imap_date_format(t, out), 0);
	assert_string_equal(out, want);
}

static void
test_imap_format(void **state)
{
	(void)state;
	char out[27];
	format_is(0, "01-Jan-1970 00:00:00 +0000");
	format_is(-1, "31-Dec-1969 23:59:59 +0000");
	format_is(837596665, "17-Jul-1996 09:44:25 +0000");
	format_is(836732665, "07-Jul-1996 09:44:25 +0000");
	format_is(951825600, "29-Feb-2000 12:00:00 +0000");
	format_is(1795685400, "26-Nov-2026 09:30:00 +0000");
	format_is(INT64_C(253402300799), "31-Dec-9999 23:59:59 +0000");
	format_is(INT64_C(-62167219200), "01-Jan-0000 00:00:00 +0000");
	format_is(INT64_C(-2208988800), "01-Jan-1900 00:00:00 +0000");
	const int64_t bad[] = {INT64_C(253402300800), INT64_C(-62167219201), INT64_MAX, INT64_MIN,
			       INT64_MIN + 1};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		errno = 0;
		memset(out, 'x', sizeof(out));
		assert_int_equal(imap_date_format(bad[i], out), -1);
		assert_int_equal(errno, ERANGE);
		assert_string_equal(out, "");
	}
}

/* format -> parse is the identity; format agrees with gmtime_r() */
static void
test_imap_round_trip(void **state)
{
	(void)state;
	static const char *const mon[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
					  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	unsigned seed = 4711;
	for (int i = 0; i < 100000; i++) {
		/* uniformly over years 0000-9999, plus the edges */
		int64_t t = (int64_t)(((uint64_t)rand_r(&seed) << 31 | (uint64_t)rand_r(&seed)) %
				      UINT64_C(315569520000)) -
			    INT64_C(62167219200);
		if (i < 4)
			t = (int64_t[]){INT64_C(-62167219200), INT64_C(253402300799), 0, -1}[i];
		char out[27];
		assert_int_equal(imap_date_format(t, out), 0);
		int64_t back = SENTINEL;
		assert_int_equal(imap_date_parse(out, &back), 0);
		assert_int_equal(back, t);

		time_t tt = (time_t)t;
		struct tm tm;
		assert_non_null(gmtime_r(&tt, &tm));
		char want[40];
		snprintf(want, sizeof(want), "%02d-%s-%04d %02d:%02d:%02d +0000", tm.tm_mday,
			 mon[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
		assert_string_equal(out, want);
	}
}

/* The local time zone plays no part. */
static void
test_imap_tz_independent(void **state)
{
	(void)state;
	const char *old = getenv("TZ");
	char *saved = old ? strdup(old) : NULL;
	setenv("TZ", "Pacific/Kiritimati", 1);
	tzset();
	imap_ok("17-Jul-1996 02:44:25 -0700", 837596665);
	format_is(837596665, "17-Jul-1996 09:44:25 +0000");
	mail_ok("Wed, 17 Jul 1996 02:44:25 -0700", 837596665);
	setenv("TZ", "America/St_Johns", 1);
	tzset();
	imap_ok("17-Jul-1996 02:44:25 -0700", 837596665);
	mail_ok("17 Jul 1996 02:44:25 PDT", 837596665);
	if (saved) {
		setenv("TZ", saved, 1);
		free(saved);
	} else {
		unsetenv("TZ");
	}
	tzset();
}

/* ---- RFC 5322 Date: ---------------------------------------------------------------- */

static void
test_mail_valid(void **state)
{
	(void)state;
	mail_ok("Fri, 21 Nov 1997 09:55:06 -0600", 880127706); /* RFC 5322 A.1.1 */
	mail_ok("Tue, 1 Jul 2003 10:52:37 +0200", 1057049557); /* A.1.2 */
	mail_ok("Thu, 13 Feb 1969 23:32:54 -0330", -27723426); /* A.1.3 */
	mail_ok("Tue, 01 Jul 2003 10:52:37 +0200", 1057049557);
	mail_ok("1 Jul 2003 10:52:37 +0200", 1057049557);  /* no day name */
	mail_ok("Mon, 1 Jan 2001 10:00 +0100", 978339600); /* no seconds */
	mail_ok("Mon, 1 Jan 2001 10:00:00 +0100 (CET)", 978339600);
	mail_ok("Mon, 1 Jan 2001 10:00:00 +0100 CET", 978339600);
	mail_ok("  Mon,  1  Jan  2001  10:00:00  +0100  ", 978339600);
	mail_ok("Mon,1 Jan 2001 10:00:00+0100", 978339600);
	mail_ok("mon, 1 jan 2001 10:00:00 +0100", 978339600);
	mail_ok("MON, 1 JAN 2001 10:00:00 +0100", 978339600);
	mail_ok("Sun, 1 Jan 2001 10:00:00 +0100", 978339600); /* wrong day name: ignored */
	mail_ok("Mon, 1 Jan 2001 10:00:00 +0100\r\n", 978339600);
	mail_ok("Mon, 1 Jan 2001\r\n 10:00:00 +0100", 978339600); /* folded */
	mail_ok("Mon, 1 Jan 2001 9:00:00 +0000", 978339600);      /* one-digit hour */
	mail_ok("Mon, 1-Jan-2001 09:00:00 +0000", 978339600);
	mail_ok("Sat, 31 Dec 9999 23:59:59 +0000", INT64_C(253402300799));
	mail_ok("29 Feb 2024 00:00:00 +0000", 1709164800);
	mail_ok("30 Jun 2016 23:59:60 +0000", 1467331200);
	mail_ok("1 Jan 2001 10:00:00 +1400", 978343200 - 14 * 3600);
	mail_ok("1 Jan 2001 10:00:00 -1400", 978343200 + 14 * 3600);
}

static void
test_mail_obsolete(void **state)
{
	(void)state;
	/* RFC 5322 A.6.2 and A.6.3 */
	mail_ok("21 Nov 97 09:55:06 GMT", 880106106);
	mail_ok("Fri, 21 Nov 1997 09(comment):   55  :  06 -0600", 880127706);
	/* two- and three-digit years (§4.3) */
	mail_ok("1 Jan 49 00:00:00 +0000", 2493072000);
	mail_ok("1 Jan 50 00:00:00 +0000", -631152000);
	mail_ok("1 Jan 01 10:00:00 +0000", 978343200);
	mail_ok("1 Jan 101 10:00:00 +0000", 978343200);
	/* zone names */
	const int64_t t = 978343200; /* 2001-01-01 10:00:00 UTC */
	mail_ok("1 Jan 2001 10:00:00 UT", t);
	mail_ok("1 Jan 2001 10:00:00 GMT", t);
	mail_ok("1 Jan 2001 10:00:00 UTC", t);
	mail_ok("1 Jan 2001 05:00:00 EST", t);
	mail_ok("1 Jan 2001 06:00:00 EDT", t);
	mail_ok("1 Jan 2001 04:00:00 CST", t);
	mail_ok("1 Jan 2001 05:00:00 CDT", t);
	mail_ok("1 Jan 2001 03:00:00 MST", t);
	mail_ok("1 Jan 2001 04:00:00 MDT", t);
	mail_ok("1 Jan 2001 02:00:00 PST", t);
	mail_ok("1 Jan 2001 03:00:00 PDT", t);
	mail_ok("1 Jan 2001 03:00:00 pdt", t);
	/* military zones count as -0000; "J" is not one */
	mail_ok("1 Jan 2001 10:00:00 Z", t);
	mail_ok("1 Jan 2001 10:00:00 A", t);
	mail_ok("1 Jan 2001 10:00:00 y", t);
	mail_bad("1 Jan 2001 10:00:00 J");
	/* no zone at all: UTC */
	mail_ok("Mon, 1 Jan 2001 10:00:00", t);
	mail_ok("Mon, 1 Jan 2001 10:00", t);
	/* comments anywhere CFWS may be, nested, with quoted-pairs */
	mail_ok("(x) Mon (y), (z) 1 (a) Jan (b) 2001 (c) 10:00:00 (d) +0000 (e)", t);
	mail_ok("Mon, 1 Jan 2001 10:00:00 +0000 (a (nested) comment)", t);
	mail_ok("Mon, 1 Jan 2001 10:00:00 +0000 (with \\) and \\( inside)", t);
	mail_ok("Mon, 1 Jan 2001 10:00:00 +0000 (Coordinated Universal Time)", t);
}

static void
test_mail_invalid(void **state)
{
	(void)state;
	mail_bad("");
	mail_bad("   ");
	mail_bad("(only a comment)");
	mail_bad("garbage");
	mail_bad("Foo, 1 Jan 2001 10:00:00 +0000");
	mail_bad("Monday, 1 Jan 2001 10:00:00 +0000");
	mail_bad("Mon 1 Jan 2001 10:00:00 +0000");
	mail_bad("Mon, Jan 1 2001 10:00:00 +0000");
	mail_bad("1 Jan 2001");
	mail_bad("1 Jan 2001 10");
	mail_bad("1 Jan 2001 10:");
	mail_bad("1 Jan 2001 10:0");
	mail_bad("1 Jan 2001 10:00:0 +0000");
	mail_bad("1 Jan 2001 10:00:00 +000");
	mail_bad("1 Jan 2001 10:00:00 +00000");
	mail_bad("1 Jan 2001 10:00:00 +1401");
	mail_bad("1 Jan 2001 10:00:00 -1500");
	mail_bad("1 Jan 2001 10:00:00 +0060");
	mail_bad("1 Jan 2001 10:00:00 +0000 extra words");
	mail_bad("1 Jan 2001 10:00:00 +0000 CET x");
	mail_bad("1 Jan 2001 10:00:00 CET");
	mail_bad("1 Jan 2001 10:00:00 +0000 (unclosed");
	mail_bad("(unclosed 1 Jan 2001 10:00:00 +0000");
	mail_bad("1 Foo 2001 10:00:00 +0000");
	mail_bad("1 January 2001 10:00:00 +0000");
	mail_bad("123 Jan 2001 10:00:00 +0000");
	mail_bad("0 Jan 2001 10:00:00 +0000");
	mail_bad("32 Jan 2001 10:00:00 +0000");
	mail_bad("30 Feb 2024 10:00:00 +0000");
	mail_bad("29 Feb 2023 10:00:00 +0000");
	mail_bad("1 Jan 1899 10:00:00 +0000");
	mail_bad("1 Jan 20011 10:00:00 +0000");
	mail_bad("1 Jan 2 10:00:00 +0000");
	mail_bad("1 Jan 2001 25:00:00 +0000");
	mail_bad("1 Jan 2001 123:00:00 +0000");
	mail_bad("1 Jan 2001 10:60:00 +0000");
	mail_bad("1 Jan 2001 10:00:61 +0000");
	mail_bad("1 Jan 2001 10.00.00 +0000");
	mail_bad("1 Jan 2001 10:00:00 ++0000");
	mail_bad("1/1/2001 10:00:00 +0000");
	mail_bad("2001-01-01T10:00:00Z");
	mail_bad("Mon Jan  1 10:00:00 2001"); /* asctime */
	mail_bad("1 Jan 2001 99999999999999999999:00:00 +0000");
	mail_bad("1 Jan 99999999999999999999 10:00:00 +0000");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_imap_valid),          cmocka_unit_test(test_imap_leap_years),
	    cmocka_unit_test(test_imap_ranges),         cmocka_unit_test(test_imap_invalid),
	    cmocka_unit_test(test_imap_format),         cmocka_unit_test(test_imap_round_trip),
	    cmocka_unit_test(test_imap_tz_independent), cmocka_unit_test(test_mail_valid),
	    cmocka_unit_test(test_mail_obsolete),       cmocka_unit_test(test_mail_invalid),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
