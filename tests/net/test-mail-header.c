/* test-mail-header.c - unit tests for net/mail-header.c: finding fields in CRLF and LF
 * headers, name matching, unfolding and trimming, the end of the header block, duplicate
 * and missing fields, lines that are not fields, the cap, and random binary garbage. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "net/mail-header.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Look name up in hdr[0..len); want NULL means "not found". */
static void
get_n(const char *hdr, size_t len, const char *name, const char *want, size_t want_len)
{
	struct buf b;
	buf_init(&b, 1 << 20);
	int rc = mail_header_get(hdr, len, name, &b);
	if (want == NULL) {
		if (rc != 0)
			print_error("%s: found [%.*s]\n", name, (int)b.len, b.data);
		assert_int_equal(rc, 0);
		assert_int_equal(b.len, 0);
	} else {
		if (rc != 1 || b.len != want_len || memcmp(b.data, want, want_len) != 0)
			print_error("%s: rc %d, wanted [%.*s], got [%.*s]\n", name, rc,
				    (int)want_len, want, (int)b.len, b.data ? b.data : "");
		assert_int_equal(rc, 1);
		assert_int_equal(b.len, want_len);
		assert_non_null(b.data);
		assert_memory_equal(b.data, want, want_len);
		assert_int_equal(b.data[b.len], '\0');
	}
	buf_free(&b);
}

static void
get(const char *hdr, const char *name, const char *want)
{
	get_n(hdr, strlen(hdr), name, want, want ? strlen(want) : 0);
}

#define CRLF_HDR                                                                                   \
	"Return-Path: <a@example.com>\r\n"                                                         \
	"Received: from x by y;\r\n"                                                               \
	"\tMon, 1 Jan 2001 10:00:00 +0000\r\n"                                                     \
	"From: Alice <a@example.com>\r\n"                                                          \
	"To: Bob <b@example.com>,\r\n"                                                             \
	" Carol <c@example.com>\r\n"                                                               \
	"Subject: Quarterly report\r\n"                                                            \
	"Date: Thu, 26 Nov 2026 09:30:00 +0000\r\n"                                                \
	"Message-ID: <1@example.com>\r\n"                                                          \
	"\r\n"                                                                                     \
	"Subject: not a header, the body\r\n"                                                      \
	"X-Body: also body\r\n"

static void
test_crlf(void **state)
{
	(void)state;
	get(CRLF_HDR, "Subject", "Quarterly report");
	get(CRLF_HDR, "From", "Alice <a@example.com>");
	get(CRLF_HDR, "Return-Path", "<a@example.com>");
	get(CRLF_HDR, "Received", "from x by y;\tMon, 1 Jan 2001 10:00:00 +0000");
	get(CRLF_HDR, "To", "Bob <b@example.com>, Carol <c@example.com>");
	get(CRLF_HDR, "Date", "Thu, 26 Nov 2026 09:30:00 +0000");
	get(CRLF_HDR, "Message-ID", "<1@example.com>");
	get(CRLF_HDR, "X-Body", NULL); /* after the empty line */
	get(CRLF_HDR, "Cc", NULL);
}

static void
test_lf(void **state)
{
	(void)state;
	const char *h = "From: a@b\n"
			"Subject: hello\n"
			"  world\n"
			"Date: x\n"
			"\n"
			"X-Body: no\n";
	get(h, "Subject", "hello  world");
	get(h, "From", "a@b");
	get(h, "Date", "x");
	get(h, "X-Body", NULL);
	/* mixed line ends */
	get("A: 1\r\nB: 2\nC: 3\r\n\tc\nD: 4\n\r\nE: 5\r\n", "C", "3\tc");
	get("A: 1\r\nB: 2\nC: 3\r\n\tc\nD: 4\n\r\nE: 5\r\n", "D", "4");
	get("A: 1\r\nB: 2\nC: 3\r\n\tc\nD: 4\n\r\nE: 5\r\n", "E", NULL);
}

static void
test_names(void **state)
{
	(void)state;
	const char *h = "SUBJECT: upper\r\nsubject: lower\r\n";
	get(h, "Subject", "upper");
	get(h, "subject", "upper");
	get(h, "sUbJeCt", "upper");
	/* the name must match whole */
	get("Subjects: no\r\nX-Subject: no\r\nSubject: yes\r\n", "Subject", "yes");
	get("Subject: yes\r\n", "Subjec", NULL);
	get("Subject: yes\r\n", "Subject:", NULL);
	get("Subject: yes\r\n", "", NULL);
	/* obsolete white space before the colon (RFC 5322 §4.5) */
	get("Subject  : spaced\r\n", "Subject", "spaced");
	get("Subject\t: tabbed\r\n", "Subject", "tabbed");
	/* no space after the colon */
	get("Subject:tight\r\n", "Subject", "tight");
	/* white space at the start of a line is a continuation, never a field */
	get(" Subject: no\r\nSubject: yes\r\n", "Subject", "yes");
}

static void
test_unfold_trim(void **state)
{
	(void)state;
	get("Subject: a\r\n b\r\n\tc\r\n", "Subject", "a b\tc");
	get("Subject:\r\n folded right away\r\n", "Subject", "folded right away");
	get("Subject:   \t lead and trail \t  \r\n", "Subject", "lead and trail");
	get("Subject: end\r\n   \r\n\t\r\nNext: x\r\n", "Subject", "end");
	get("Subject: a  \r\n  b\r\n", "Subject", "a    b");
	get("Subject: \r\n \r\n x \r\n \r\n", "Subject", "x");
	/* a field with an empty value is found */
	get("Subject:\r\nX: y\r\n", "Subject", "");
	get("Subject:   \r\n\r\n", "Subject", "");
	get("Subject: \r\n \r\n", "Subject", "");
	/* RFC 2047 §8: the folded Subject */
	get("Subject: =?ISO-8859-1?B?SWYgeW91IGNhbiByZWFkIHRoaXMgeW8=?=\r\n"
	    "    =?ISO-8859-2?B?dSB1bmRlcnN0YW5kIHRoZSBleGFtcGxlLg==?=\r\n",
	    "Subject",
	    "=?ISO-8859-1?B?SWYgeW91IGNhbiByZWFkIHRoaXMgeW8=?=    "
	    "=?ISO-8859-2?B?dSB1bmRlcnN0YW5kIHRoZSBleGFtcGxlLg==?=");
	/* the last line without a line end; a CR at the very end */
	get("A: 1\r\nSubject: last", "Subject", "last");
	get("A: 1\r\nSubject: last\r", "Subject", "last");
	get("Subject: last\r\n more", "Subject", "last more");
	/* a bare CR inside is kept */
	get("Subject: a\rb\r\n", "Subject", "a\rb");
	get("Subject: a\r\r\n", "Subject", "a\r");
}

static void
test_duplicates(void **state)
{
	(void)state;
	const char *h = "Subject: first\r\nSubject: second\r\n";
	get(h, "Subject", "first");
	get("Subject: first\r\n cont\r\nSubject: second\r\n", "Subject", "first cont");
	get("X: 1\r\nSubject:\r\nSubject: second\r\n", "Subject", "");
}

static void
test_end_of_header(void **state)
{
	(void)state;
	get("", "Subject", NULL);
	get("\r\n", "Subject", NULL);
	get("\n", "Subject", NULL);
	get("\r\nSubject: body\r\n", "Subject", NULL);
	get("\nSubject: body\n", "Subject", NULL);
	get("A: 1\r\n\r\nSubject: body\r\n", "Subject", NULL);
	/* a line of white space is not the end, it continues the field before it */
	get("A: 1\r\n \r\nSubject: yes\r\n", "Subject", "yes");
	/* the length limits the search; nothing past it is read */
	const char *h = "Subject: cut here";
	get_n(h, 12, "Subject", "cut", 3);
	get_n(h, 8, "Subject", "", 0);
	get_n(h, 7, "Subject", NULL, 0);
	get_n(h, 0, "Subject", NULL, 0);
}

static void
test_not_fields(void **state)
{
	(void)state;
	get("From sender@x Mon Jan  1 10:00:00 2001\r\nSubject: mbox\r\n", "Subject", "mbox");
	get("From sender@x Mon Jan  1 10:00:00 2001\r\nSubject: mbox\r\n", "From", NULL);
	get("no colon here\r\nSubject: yes\r\n", "Subject", "yes");
	get(": no name\r\nSubject: yes\r\n", "Subject", "yes");
	get("Bad Name: x\r\nSubject: yes\r\n", "Bad Name", NULL);
	get("Bad Name: x\r\nSubject: yes\r\n", "Subject", "yes");
	/* a non-field swallows its continuation lines too */
	get("garbage\r\n Subject: no\r\nSubject: yes\r\n", "Subject", "yes");
	get("N\xC3\xA4me: x\r\nSubject: yes\r\n", "N\xC3\xA4me", NULL);
	/* 8-bit and NUL bytes in a value are passed through */
	get_n("Subject: a\0b\xFF\r\n", 15, "Subject", "a\0b\xFF", 4);
	get_n("X\0: 1\r\nSubject: yes\r\n", 21, "Subject", "yes", 3);
}

static void
test_huge_lines(void **state)
{
	(void)state;
	size_t n = 4 << 20;
	char *h = malloc(n + 64);
	assert_non_null(h);
	/* a 4 MiB line without a colon, then the field */
	memset(h, 'x', n);
	memcpy(h + n, "\r\nSubject: after\r\n", 18);
	get_n(h, n + 18, "Subject", "after", 5);
	/* a 4 MiB value, unfolded */
	memcpy(h, "Subject: ", 9);
	memset(h + 9, 'y', n - 9);
	h[n / 2] = '\n';
	h[n / 2 + 1] = ' ';
	struct buf b;
	buf_init(&b, 8 << 20);
	assert_int_equal(mail_header_get(h, n, "Subject", &b), 1);
	assert_int_equal(b.len, n - 9 - 1);
	buf_free(&b);
	/* ... and over the cap: -1, out unchanged */
	buf_init(&b, 1 << 20);
	assert_int_equal(buf_append_str(&b, "keep"), 0);
	errno = 0;
	assert_int_equal(mail_header_get(h, n, "Subject", &b), -1);
	assert_int_equal(errno, E2BIG);
	assert_int_equal(b.len, 4);
	assert_string_equal(b.data, "keep");
	buf_free(&b);
	free(h);
}

static void
test_appends(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 64);
	assert_int_equal(buf_append_str(&b, "Re: "), 0);
	assert_int_equal(mail_header_get("Subject: x\r\n", 12, "Subject", &b), 1);
	assert_string_equal(b.data, "Re: x");
	assert_int_equal(mail_header_get("Subject: x\r\n", 12, "Date", &b), 0);
	assert_string_equal(b.data, "Re: x");
	buf_free(&b);
	/* an empty value into an empty buffer still gives a string */
	buf_init(&b, 64);
	assert_int_equal(mail_header_get("Subject:\r\n", 10, "Subject", &b), 1);
	assert_non_null(b.data);
	assert_string_equal(b.data, "");
	buf_free(&b);
	/* a cap of zero: only the empty value fits */
	buf_init(&b, 0);
	assert_int_equal(mail_header_get("Subject:\r\n", 10, "Subject", &b), 1);
	assert_int_equal(mail_header_get("Subject: x\r\n", 12, "Subject", &b), -1);
	buf_free(&b);
}

/* Random bytes from a small alphabet that makes many near-fields: never a crash, never
 * a read past len (ASan), and a found value never holds a line end or starts/ends with
 * white space. */
static void
test_random_garbage(void **state)
{
	(void)state;
	static const char alpha[] = "Sa:: \t\r\n\n\0\xFFxSubject";
	unsigned seed = 99;
	struct buf b;
	buf_init(&b, 1 << 16);
	for (int iter = 0; iter < 50000; iter++) {
		size_t n = (size_t)(rand_r(&seed) % 200);
		char *h = malloc(n ? n : 1);
		assert_non_null(h);
		for (size_t i = 0; i < n; i++)
			h[i] = rand_r(&seed) % 8 == 0 ? (char)rand_r(&seed)
						      : alpha[rand_r(&seed) % (sizeof(alpha) - 1)];
		buf_reset(&b);
		int rc = mail_header_get(h, n, iter % 2 ? "Subject" : "S", &b);
		assert_true(rc == 0 || rc == 1);
		if (rc == 1 && b.len > 0) {
			assert_null(memchr(b.data, '\n', b.len));
			assert_true(b.data[0] != ' ' && b.data[0] != '\t');
			assert_true(b.data[b.len - 1] != ' ' && b.data[b.len - 1] != '\t');
		}
		free(h);
	}
	buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_crlf),       cmocka_unit_test(test_lf),
	    cmocka_unit_test(test_names),      cmocka_unit_test(test_unfold_trim),
	    cmocka_unit_test(test_duplicates), cmocka_unit_test(test_end_of_header),
	    cmocka_unit_test(test_not_fields), cmocka_unit_test(test_huge_lines),
	    cmocka_unit_test(test_appends),    cmocka_unit_test(test_random_garbage),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
