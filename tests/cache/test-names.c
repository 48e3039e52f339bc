/* test-names.c - unit tests for cache/names.c: message names (the DESIGN example, dates
 * and their clamping, the time zone playing no part, separators, encoded subjects, cuts
 * at 255 bytes on code point boundaries) and folder names (every escape, the reserved
 * name, round trips and injectivity on random and exhaustive inputs, whole paths). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cache/names.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "net/utf8.h"

#define T_EXAMPLE 1795685400 /* 2026-11-26 09:30:00 UTC */


/* What every message name must be, whatever the input. */
static void
check_message_name(const char *name, size_t len)
{
	assert_int_equal(strlen(name), len);
	assert_true(len >= 21 && len <= 255);
	assert_true(utf8_valid((const unsigned char *)name, len));
	assert_string_equal(name + len - 4, ".eml");
	assert_null(strchr(name, '/'));
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];
		assert_true(c >= 0x20 && c != 0x7F);
		if (c == 0xC2 && i + 1 < len)
			assert_true((unsigned char)name[i + 1] >= 0xA0); /* no C1 */
	}
	assert_true(name[len - 5] != '-');
}

static void
msg_n(uint32_t uid, int64_t t, const char *subj, size_t n, const char *want)
{
	char out[256];
	memset(out, 'z', sizeof(out));
	size_t len = names_message(uid, t, subj, n, out);
	if (strcmp(out, want) != 0)
		print_error("subject [%.*s]\nwanted  %s\ngot     %s\n", (int)n, subj ? subj : "",
			    want, out);
	assert_string_equal(out, want);
	check_message_name(out, len);
}

static void
msg(const char *subj, const char *want_subject_part)
{
	char want[300];
	if (*want_subject_part)
		snprintf(want, sizeof(want), "2026-11-26_0930_4711_%s.eml", want_subject_part);
	else
		snprintf(want, sizeof(want), "2026-11-26_0930_4711.eml");
	msg_n(4711, T_EXAMPLE, subj, strlen(subj), want);
}

/* ---- message names ----------------------------------------------------------------- */

static void
test_design_example(void **state)
{
	(void)state;
	msg("Quarterly report", "Quarterly-report");
	msg_n(4711, T_EXAMPLE + 59, "Quarterly report", 16,
	      "2026-11-26_0930_4711_Quarterly-report.eml");
	msg_n(4711, T_EXAMPLE, "Quarterly report", 9, "2026-11-26_0930_4711_Quarterly.eml");
}

static void
test_dates(void **state)
{
	(void)state;
	msg_n(1, 0, "x", 1, "1970-01-01_0000_1_x.eml");
	msg_n(1, 951825600, "x", 1, "2000-02-29_1200_1_x.eml");
	msg_n(1, 1735689599, "x", 1, "2024-12-31_2359_1_x.eml");
	/* clamped */
	msg_n(1, -1, "x", 1, "1970-01-01_0000_1_x.eml");
	msg_n(1, -86400 * 365, "x", 1, "1970-01-01_0000_1_x.eml");
	msg_n(1, INT64_MIN, "x", 1, "1970-01-01_0000_1_x.eml");
	msg_n(1, INT64_C(253402300799), "x", 1, "9999-12-31_2359_1_x.eml");
	msg_n(1, INT64_C(253402300800), "x", 1, "9999-12-31_2359_1_x.eml");
	msg_n(1, INT64_MAX, "x", 1, "9999-12-31_2359_1_x.eml");
	/* UIDs */
	msg_n(0, 0, "x", 1, "1970-01-01_0000_0_x.eml");
	msg_n(UINT32_MAX, INT64_MAX, "x", 1, "9999-12-31_2359_4294967295_x.eml");
}

static void
test_timezone_independent(void **state)
{
	(void)state;
	static const char *const zones[] = {
	    "Pacific/Kiritimati", "America/St_Johns", "Asia/Kolkata", "XYZ-5:30", "UTC+14", ""};
	const char *old = getenv("TZ");
	char *saved = old ? strdup(old) : NULL;
	for (size_t i = 0; i < sizeof(zones) / sizeof(zones[0]); i++) {
		setenv("TZ", zones[i], 1);
		tzset();
		msg("Quarterly report", "Quarterly-report");
		msg_n(1, 1735689599, "x", 1, "2024-12-31_2359_1_x.eml");
		msg_n(1, 0, "x", 1, "1970-01-01_0000_1_x.eml");
	}
	if (saved) {
		setenv("TZ", saved, 1);
		free(saved);
	} else {
		unsetenv("TZ");
	}
	tzset();
}

static void
test_separators(void **state)
{
	(void)state;
	msg("Re:  hello   world", "Re:-hello-world");
	msg("a/b", "a-b");
	msg("a / b", "a-b");
	msg("/etc/passwd", "etc-passwd");
	msg("../../etc/passwd", "..-..-etc-passwd");
	msg("..", "..");
	msg("a\tb\nc\r\nd", "a-b-c-d");
	msg("x\x7fy", "x-y");
	msg("x\x01\x02\x1fy", "x-y");
	msg("x\xC2\xA0y", "x-y");                             /* NO-BREAK SPACE */
	msg("x\xE3\x80\x80y", "x-y");                         /* IDEOGRAPHIC SPACE */
	msg("x\xE2\x80\x83y", "x-y");                         /* EM SPACE */
	msg("x\xE2\x80\xA8y", "x-y");                         /* LINE SEPARATOR */
	msg("x\xE2\x80\xAFy", "x-y");                         /* NARROW NO-BREAK SPACE */
	msg("x\xC2\x85y", "x-y");                             /* NEL, a C1 control */
	msg("x\xC2\x9By", "x-y");                             /* CSI */
	msg("invoice\xE2\x80\xAEpdf.exe", "invoice-pdf.exe"); /* RIGHT-TO-LEFT OVERRIDE */
	msg("x \t/\x01 \xC2\xA0 y", "x-y");
	/* literal "-" inside stays, at the ends goes */
	msg("A - B", "A---B");
	msg("-foo-", "foo");
	msg("--a--b--", "a--b");
	msg("  - x -  ", "x");
	/* other characters stay as they are */
	msg("Re: [list] 50% off! (really) <a@b> \"q\" *?",
	    "Re:-[list]-50%-off!-(really)-<a@b>-\"q\"-*?");
	msg("Grüße aus Köln", "Grüße-aus-Köln");
	msg("日本語の件名", "日本語の件名");
	msg("\xE2\x80\x8B", "\xE2\x80\x8B"); /* ZERO WIDTH SPACE is not White_Space */
}

static void
test_empty_subject(void **state)
{
	(void)state;
	msg_n(4711, T_EXAMPLE, NULL, 0, "2026-11-26_0930_4711.eml");
	msg("", "");
	msg(" ", "");
	msg("\r\n\t ", "");
	msg("///", "");
	msg("---", "");
	msg(" - / - ", "");
	msg("\x01\x02\x7f", "");
	msg("\xE3\x80\x80\xC2\xA0", "");
	msg("=?utf-8?q?_/_?=", "");
	msg("=?utf-8?q?\?= =?utf-8?b?\?=", ""); /* "\?": "??=" would be a trigraph */
	msg_n(4711, T_EXAMPLE, "\0\0\0", 3, "2026-11-26_0930_4711.eml");
}

static void
test_encoded_subjects(void **state)
{
	(void)state;
	msg("=?utf-8?q?a=2Fb?=", "a-b");
	msg("=?utf-8?b?Li4vLi4vZXRj?=", "..-..-etc"); /* "../../etc" */
	msg("=?utf-8?q?a=00b?=", "a-b");
	msg("=?utf-8?q?a=0D=0Ab?=", "a-b");
	msg("=?utf-8?q?a=C2=85b?=", "a-b");
	msg("=?ISO-8859-1?Q?Quarterly_report?=", "Quarterly-report");
	msg("=?UTF-8?B?R3LDvMOfZQ==?= =?UTF-8?B?IGF1cyBLw7Zsbg==?=", "Grüße-aus-Köln");
	msg("Re: =?utf-8?q?Caf=C3=A9?= menu", "Re:-Café-menu");
	msg("=?x-unknown?q?a/b?=", "=?x-unknown?q?a-b?=");
	msg("=?ISO-2022-JP?B?GyRCJWEhPCVrGyhC?=", "メール");
	/* raw 8-bit: Windows-1252 */
	msg("caf\xE9 \x93quoted\x94", "café-“quoted”");
	msg("x\x85y", "x…y"); /* 0x85 is "…" in Windows-1252, not NEL */
	msg("x\xA0y", "x-y"); /* 0xA0 is NO-BREAK SPACE */
	/* leading white space does not count against the input cap */
	char in[8192];
	memset(in, ' ', 6000);
	strcpy(in + 6000, "after spaces");
	msg(in, "after-spaces");
}

/* subj made of `pre` ASCII letters and then copies of the character c: the name is the
 * longest such prefix that fits 255 bytes, cut on a code point boundary. */
static void
check_cut(uint32_t uid, size_t pre, const char *c)
{
	char subj[1200], out[256], prefix[64];
	size_t clen = strlen(c), n = pre;
	memset(subj, 'a', pre);
	while (n + clen < sizeof(subj)) {
		memcpy(subj + n, c, clen);
		n += clen;
	}
	size_t len = names_message(uid, T_EXAMPLE, subj, n, out);
	check_message_name(out, len);
	int plen = snprintf(prefix, sizeof(prefix), "2026-11-26_0930_%u_", (unsigned)uid);
	assert_memory_equal(out, prefix, (size_t)plen);
	size_t slen = len - (size_t)plen - 4;
	/* a prefix of the subject, a whole number of characters after the ASCII part */
	assert_memory_equal(out + plen, subj, slen);
	if (slen > pre)
		assert_int_equal((slen - pre) % clen, 0);
	/* and the longest: one more character would not fit */
	assert_true(len + (slen < pre ? 1 : clen) > 255);
}

static void
test_long_subjects(void **state)
{
	(void)state;
	static const char *const chars[] = {"x", "é", "€", "日", "😀", "𠀀"};
	static const uint32_t uids[] = {0, 7, 42, 4711, 123456, 4294967295u};
	for (size_t c = 0; c < sizeof(chars) / sizeof(chars[0]); c++)
		for (size_t u = 0; u < sizeof(uids) / sizeof(uids[0]); u++)
			for (size_t pre = 0; pre < 8; pre++)
				check_cut(uids[u], pre, chars[c]);

	/* 300 ASCII letters: exactly 255 bytes */
	char subj[5000], out[256];
	memset(subj, 'a', 300);
	assert_int_equal(names_message(4711, T_EXAMPLE, subj, 300, out), 255);
	check_message_name(out, 255);
	/* a cut that leaves "-" at the end drops it */
	memset(subj, 'a', 5000);
	size_t room = 255 - strlen("2026-11-26_0930_4711_.eml");
	subj[room - 1] = ' ';
	size_t len = names_message(4711, T_EXAMPLE, subj, 5000, out);
	check_message_name(out, len);
	assert_int_equal(len, 254);
	/* a subject far over the input cap */
	assert_int_equal(names_message(4711, T_EXAMPLE, subj, 5000, out), 254);
	memset(subj, '/', 5000);
	msg_n(4711, T_EXAMPLE, subj, 5000, "2026-11-26_0930_4711.eml");
	/* one long encoded-word */
	strcpy(subj, "=?utf-8?q?");
	for (int i = 0; i < 200; i++)
		strcat(subj, "=E2=82=AC");
	strcat(subj, "?=");
	len = names_message(4711, T_EXAMPLE, subj, strlen(subj), out);
	check_message_name(out, len);
	assert_int_equal(len, 21 + 76 * 3 + 4);
}

/* Random subjects: every name is well-formed and the same on a second call. */
static void
test_random_subjects(void **state)
{
	(void)state;
	static const char *const pieces[] = {
	    "=?",
	    "?=",
	    "?q?",
	    "?b?",
	    "utf-8",
	    "iso-8859-1",
	    "=2F",
	    "=00",
	    "=C3",
	    "=A9",
	    "_",
	    " ",
	    "\t",
	    "/",
	    ".",
	    "-",
	    "\xE9",
	    "\xC2\x85",
	    "\xE3\x80\x80",
	    "😀",
	    "\x80",
	    "\xF0",
	    "\xE2\x80\xAE",
	    "a",
	    "Re:",
	    "\r\n",
	};
	unsigned seed = 777;
	char subj[2048], out[256], again[256];
	for (int iter = 0; iter < 20000; iter++) {
		size_t n = 0;
		int parts = rand_r(&seed) % 64;
		for (int i = 0; i < parts; i++) {
			const char *p;
			char byte[2] = {(char)rand_r(&seed), 0};
			if (rand_r(&seed) % 6 == 0)
				p = byte;
			else
				p = pieces[rand_r(&seed) % (sizeof(pieces) / sizeof(pieces[0]))];
			size_t k = *p ? strlen(p) : 1;
			memcpy(subj + n, p, k);
			n += k;
		}
		uint32_t uid = (uint32_t)rand_r(&seed);
		int64_t t = (int64_t)rand_r(&seed) * 200 - INT64_C(1000000000);
		size_t len = names_message(uid, t, subj, n, out);
		check_message_name(out, len);
		assert_int_equal(names_message(uid, t, subj, n, again), len);
		assert_string_equal(out, again);
	}
}

/* ---- folder names ------------------------------------------------------------------ */

static void
esc_n(const char *name, size_t len, bool top, const char *reserved, const char *want)
{
	char out[256], back[256];
	size_t blen = 999;
	memset(out, 'z', sizeof(out));
	int r = names_folder_escape(name, len, top, reserved, out, sizeof(out));
	if (r < 0 || strcmp(out, want) != 0)
		print_error("escape [%.*s]: %d [%s], wanted [%s]\n", (int)len, name, r,
			    r < 0 ? "" : out, want ? want : "(none)");
	assert_int_equal(r, (int)strlen(want));
	assert_string_equal(out, want);
	assert_int_equal(names_folder_unescape(out, back, sizeof(back), &blen), 0);
	assert_int_equal(blen, len);
	assert_memory_equal(back, name, len);
}

static void
esc(const char *name, const char *want)
{
	esc_n(name, strlen(name), false, NULL, want);
	esc_n(name, strlen(name), true, NULL, want);
	esc_n(name, strlen(name), true, "outbox", strcmp(name, "outbox") ? want : "%6Futbox");
}

static void
test_escape(void **state)
{
	(void)state;
	esc("INBOX", "INBOX");
	esc("Sent Items", "Sent Items"); /* spaces are fine in folder names */
	esc("Archive 2024", "Archive 2024");
	esc("Grüße", "Grüße");
	esc("日本語", "日本語");
	esc(".", "%2E");
	esc("..", "%2E%2E");
	esc("...", "...");
	esc(".hidden", ".hidden");
	esc("a.", "a.");
	esc("", "%");
	esc("%", "%25");
	esc("%%", "%25%25");
	esc("%2F", "%252F");
	esc("100%", "100%25");
	esc("a/b", "a%2Fb");
	esc("/", "%2F");
	esc("../..", "..%2F..");
	esc("\t", "%09");
	esc("a\nb", "a%0Ab");
	esc("\x7f", "%7F");
	esc("\x1b[31m", "%1B[31m");
	esc("caf\xE9", "caf%E9"); /* not UTF-8 */
	esc("\xFF\xFE", "%FF%FE");
	esc("\xC3", "%C3");               /* cut sequence */
	esc("\xC0\xAF", "%C0%AF");        /* overlong "/" */
	esc("\xED\xA0\x80", "%ED%A0%80"); /* surrogate */
	esc("\xC2\x85", "%C2%85");        /* C1 control */
	esc("\xC2\xA0", "\xC2\xA0");      /* NBSP is not a control */
	esc_n("a\0b", 3, false, NULL, "a%00b");
	esc_n("\0", 1, true, NULL, "%00");
}

static void
test_reserved(void **state)
{
	(void)state;
	esc_n("outbox", 6, true, "outbox", "%6Futbox");
	esc_n("outbox", 6, false, "outbox", "outbox");
	esc_n("outbox", 6, true, NULL, "outbox");
	esc_n("Outbox", 6, true, "outbox", "Outbox"); /* case-sensitive */
	esc_n("outbox2", 7, true, "outbox", "outbox2");
	esc_n("outbo", 5, true, "outbox", "outbo");
	esc_n("%6Futbox", 8, true, "outbox", "%256Futbox");
	esc_n("Ausgang", 7, true, "Ausgang", "%41usgang");
	esc_n("Überweisungen", strlen("Überweisungen"), true, "Überweisungen",
	      "%C3%9Cberweisungen");
	esc_n("%x", 2, true, "%x", "%25x");
	esc_n("", 0, true, "", "%");
	esc_n(".", 1, true, ".", "%2E");
}

static void
test_escape_limits(void **state)
{
	(void)state;
	char name[600], out[600];
	memset(name, 'a', sizeof(name));
	assert_int_equal(names_folder_escape(name, 255, false, NULL, out, sizeof(out)), 255);
	errno = 0;
	assert_int_equal(names_folder_escape(name, 256, false, NULL, out, sizeof(out)), -1);
	assert_int_equal(errno, ENAMETOOLONG);
	memset(name, '/', sizeof(name));
	assert_int_equal(names_folder_escape(name, 85, false, NULL, out, sizeof(out)), 255);
	errno = 0;
	assert_int_equal(names_folder_escape(name, 86, false, NULL, out, sizeof(out)), -1);
	assert_int_equal(errno, ENAMETOOLONG);
	/* the output buffer */
	errno = 0;
	assert_int_equal(names_folder_escape("abc", 3, false, NULL, out, 3), -1);
	assert_int_equal(errno, ERANGE);
	assert_int_equal(names_folder_escape("abc", 3, false, NULL, out, 4), 3);
	assert_int_equal(names_folder_escape("", 0, false, NULL, out, 1), -1);
	assert_int_equal(names_folder_escape("", 0, false, NULL, out, 2), 1);
}

static void
unesc_bad(const char *file, int err)
{
	char out[300];
	size_t len = 999;
	errno = 0;
	assert_int_equal(names_folder_unescape(file, out, sizeof(out), &len), -1);
	assert_int_equal(errno, err);
	assert_int_equal(len, 999);
}

static void
test_unescape(void **state)
{
	(void)state;
	char out[300];
	size_t len;
	unesc_bad(".", EINVAL);
	unesc_bad("..", EINVAL);
	unesc_bad("%%", EINVAL);
	unesc_bad("%2", EINVAL);
	unesc_bad("a%", EINVAL);
	unesc_bad("%2f", EINVAL); /* lower case is never produced */
	unesc_bad("%G0", EINVAL);
	unesc_bad("%%25", EINVAL);
	unesc_bad("a/b", EINVAL);
	unesc_bad("a\tb", EINVAL);
	unesc_bad("\x7f", EINVAL);
	unesc_bad("caf\xE9", EINVAL);
	unesc_bad("\xC2\x85", EINVAL);
	unesc_bad("\xC3", EINVAL);
	/* over-escaped characters are accepted */
	assert_int_equal(names_folder_unescape("%41%42C", out, sizeof(out), &len), 0);
	assert_int_equal(len, 3);
	assert_string_equal(out, "ABC");
	assert_int_equal(names_folder_unescape("%2E%2E%2E", out, sizeof(out), &len), 0);
	assert_string_equal(out, "...");
	assert_int_equal(names_folder_unescape("%", out, sizeof(out), &len), 0);
	assert_int_equal(len, 0);
	assert_string_equal(out, "");
	assert_int_equal(names_folder_unescape("%00", out, sizeof(out), &len), 0);
	assert_int_equal(len, 1);
	assert_int_equal(out[0], '\0');
	/* the output buffer */
	errno = 0;
	assert_int_equal(names_folder_unescape("abc", out, 3, &len), -1);
	assert_int_equal(errno, ERANGE);
	assert_int_equal(names_folder_unescape("abc", out, 4, &len), 0);
	assert_int_equal(names_folder_unescape("%41bc", out, 4, &len), 0);
	assert_int_equal(names_folder_unescape("€", out, 3, &len), -1);
	assert_int_equal(names_folder_unescape("€", out, 4, &len), 0);
	assert_int_equal(names_folder_unescape("%", out, 0, &len), -1);
	assert_int_equal(names_folder_unescape("%", out, 1, &len), 0);
}

/* A file name that is safe as one directory entry. */
static void
check_folder_file(const char *s, int r)
{
	assert_true(r >= 1 && r <= 255);
	assert_int_equal(strlen(s), (size_t)r);
	assert_null(strchr(s, '/'));
	assert_true(strcmp(s, ".") != 0 && strcmp(s, "..") != 0);
	assert_true(utf8_valid((const unsigned char *)s, (size_t)r));
}

struct entry {
	char in[64];
	size_t len;
	char out[256];
};

static int
entry_cmp(const void *a, const void *b)
{
	return strcmp(((const struct entry *)a)->out, ((const struct entry *)b)->out);
}

/* Sort by escaped name: equal names must come from equal inputs. */
static void
check_injective(struct entry *e, size_t n)
{
	qsort(e, n, sizeof(*e), entry_cmp);
	for (size_t i = 1; i < n; i++) {
		if (strcmp(e[i - 1].out, e[i].out) != 0)
			continue;
		assert_int_equal(e[i - 1].len, e[i].len);
		assert_memory_equal(e[i - 1].in, e[i].in, e[i].len);
	}
}

/* Random byte strings, weighted towards the bytes that matter. */
static void
test_round_trip_random(void **state)
{
	(void)state;
	static const unsigned char alpha[] = {'%',  '/',  '.',  '.',  '\0', 'a',  'o',  '2',
					      'E',  'F',  0x7F, 0xC2, 0x85, 0xA0, 0xE2, 0x82,
					      0xAC, 0xFF, 0x80, 0xF0, 0x9F, 0x98, 0x80};
	enum { N = 20000 };
	struct entry *e = calloc(N, sizeof(*e));
	assert_non_null(e);
	unsigned seed = 12345;
	for (int i = 0; i < N; i++) {
		size_t len = (size_t)(rand_r(&seed) % 40);
		for (size_t j = 0; j < len; j++)
			e[i].in[j] = rand_r(&seed) % 3 == 0
					 ? (char)rand_r(&seed)
					 : (char)alpha[rand_r(&seed) % sizeof(alpha)];
		e[i].len = len;
		bool top = i % 2 == 0;
		int r = names_folder_escape(e[i].in, len, top, "o%", e[i].out, sizeof(e[i].out));
		check_folder_file(e[i].out, r);
		char back[256];
		size_t blen;
		assert_int_equal(names_folder_unescape(e[i].out, back, sizeof(back), &blen), 0);
		assert_int_equal(blen, len);
		assert_memory_equal(back, e[i].in, len);
	}
	/* top level or not, every name unescapes to its input: no two inputs share one */
	check_injective(e, N);
	free(e);
}

/* Every string of up to 3 bytes over a small alphabet, top-level with a reserved name
 * that is among them: all escapes distinct, all round trips exact. */
static void
test_injective_exhaustive(void **state)
{
	(void)state;
	static const char alpha[] = {'.', '%', '/', 'a', '2', 'E', 'F', '\0', '\xFF', '\xC2'};
	const size_t k = sizeof(alpha);
	size_t total = 1 + k + k * k + k * k * k, n = 0;
	struct entry *e = calloc(total, sizeof(*e));
	assert_non_null(e);
	for (size_t len = 0; len <= 3; len++) {
		size_t count = len == 0 ? 1 : len == 1 ? k : len == 2 ? k * k : k * k * k;
		for (size_t c = 0; c < count; c++) {
			size_t v = c;
			for (size_t j = 0; j < len; j++) {
				e[n].in[j] = alpha[v % k];
				v /= k;
			}
			e[n].len = len;
			int r = names_folder_escape(e[n].in, len, true, "a.", e[n].out,
						    sizeof(e[n].out));
			check_folder_file(e[n].out, r);
			char back[256];
			size_t blen;
			assert_int_equal(names_folder_unescape(e[n].out, back, sizeof(back), &blen),
					 0);
			assert_int_equal(blen, len);
			assert_memory_equal(back, e[n].in, len);
			n++;
		}
	}
	assert_int_equal(n, total);
	check_injective(e, n);
	/* strict: no two distinct inputs gave the same name */
	for (size_t i = 1; i < n; i++)
		assert_true(strcmp(e[i - 1].out, e[i].out) != 0);
	free(e);
}

static void
path_is(const char *name, char delim, const char *reserved, const char *want)
{
	char out[1024];
	int r = names_folder_path(name, delim, reserved, out, sizeof(out));
	if (r < 0 || strcmp(out, want) != 0)
		print_error("path [%s] '%c': %d [%s], wanted [%s]\n", name, delim, r,
			    r < 0 ? "" : out, want);
	assert_int_equal(r, (int)strlen(want));
	assert_string_equal(out, want);
}

static void
test_folder_path(void **state)
{
	(void)state;
	path_is("INBOX", '/', "outbox", "INBOX");
	path_is("INBOX", '\0', "outbox", "INBOX");
	path_is("INBOX.Sent", '.', NULL, "INBOX/Sent");
	path_is("INBOX/Sent", '/', NULL, "INBOX/Sent");
	path_is("Lists.a/b", '.', NULL, "Lists/a%2Fb");
	path_is("a/b", '\0', NULL, "a%2Fb");
	path_is("a/b", '.', NULL, "a%2Fb");
	path_is("a..b", '.', NULL, "a/%/b");
	path_is("a.", '.', NULL, "a/%");
	path_is(".a", '.', NULL, "%/a");
	path_is(".", '/', NULL, "%2E");
	path_is("..", '/', NULL, "%2E%2E");
	path_is("../../etc", '/', NULL, "%2E%2E/%2E%2E/etc");
	path_is("a/../b", '/', NULL, "a/%2E%2E/b");
	path_is("/", '/', NULL, "%/%");
	path_is("", '/', NULL, "%");
	path_is("100%/x", '/', NULL, "100%25/x");
	path_is("outbox/outbox", '/', "outbox", "%6Futbox/outbox");
	path_is("outbox", '/', "outbox", "%6Futbox");
	path_is("Work/outbox", '/', "outbox", "Work/outbox");
	path_is("Arbeit.Entwürfe", '.', NULL, "Arbeit/Entwürfe");

	char name[600], out[1024];
	memset(name, 'a', 255);
	name[255] = '\0';
	assert_int_equal(names_folder_path(name, '/', NULL, out, sizeof(out)), 255);
	name[255] = 'a';
	name[256] = '\0';
	errno = 0;
	assert_int_equal(names_folder_path(name, '/', NULL, out, sizeof(out)), -1);
	assert_int_equal(errno, ENAMETOOLONG);
	/* each component under 255, the whole over outsize */
	memset(name, 'a', 599);
	name[599] = '\0';
	for (int i = 200; i < 599; i += 200)
		name[i] = '/';
	assert_int_equal(names_folder_path(name, '/', NULL, out, sizeof(out)), 599);
	errno = 0;
	assert_int_equal(names_folder_path(name, '/', NULL, out, 599), -1);
	assert_int_equal(errno, ENAMETOOLONG);
	assert_int_equal(names_folder_path(name, '/', NULL, out, 600), 599);
	assert_int_equal(names_folder_path("a", '/', NULL, out, 0), -1);
}

/* Random mailbox names and delimiters: no component of the path is empty, ".", ".." or
 * unescapable, and unescaping the components gives the name back. */
static void
test_folder_path_random(void **state)
{
	(void)state;
	static const char alpha[] = "./%aZ\x01\xC3\xA9\xFF";
	static const char delims[] = {'/', '.', '\0', '%'};
	unsigned seed = 31337;
	for (int iter = 0; iter < 20000; iter++) {
		char name[64], out[4096], rebuilt[4096];
		size_t len = (size_t)(rand_r(&seed) % 40);
		for (size_t j = 0; j < len; j++)
			name[j] = alpha[rand_r(&seed) % (sizeof(alpha) - 1)];
		name[len] = '\0';
		char delim = delims[rand_r(&seed) % sizeof(delims)];
		int r = names_folder_path(name, delim, ".a", out, sizeof(out));
		assert_true(r > 0);
		size_t rlen = 0;
		char *save = NULL;
		bool first = true;
		for (char *c = strtok_r(out, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
			check_folder_file(c, (int)strlen(c));
			size_t blen;
			if (!first)
				rebuilt[rlen++] = delim;
			assert_int_equal(
			    names_folder_unescape(c, rebuilt + rlen, sizeof(rebuilt) - rlen, &blen),
			    0);
			rlen += blen;
			first = false;
		}
		assert_int_equal(rlen, len);
		assert_memory_equal(rebuilt, name, len);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_design_example),
	    cmocka_unit_test(test_dates),
	    cmocka_unit_test(test_timezone_independent),
	    cmocka_unit_test(test_separators),
	    cmocka_unit_test(test_empty_subject),
	    cmocka_unit_test(test_encoded_subjects),
	    cmocka_unit_test(test_long_subjects),
	    cmocka_unit_test(test_random_subjects),
	    cmocka_unit_test(test_escape),
	    cmocka_unit_test(test_reserved),
	    cmocka_unit_test(test_escape_limits),
	    cmocka_unit_test(test_unescape),
	    cmocka_unit_test(test_round_trip_random),
	    cmocka_unit_test(test_injective_exhaustive),
	    cmocka_unit_test(test_folder_path),
	    cmocka_unit_test(test_folder_path_random),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
