/* test-msgprep.c - unit tests for net/msgprep.c: the header sent (Bcc fields removed,
 * folded ones too; From, Date and Message-ID added only when missing or empty; LF and bare
 * CR made CRLF), the body offset for LF, CRLF, header-only and text-without-empty-line
 * files, the envelope (sender, recipients deduplicated across To/Cc/Bcc, SMTPUTF8), the
 * Subject, every error with its message, the 1 MiB limit, and crlf_convert() fed in random
 * splits against whole. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "net/msgprep.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOW 1795717935 /* Thu, 26 Nov 2026 18:32:15 +0000 */
#define UNIQUE "20261126183215.4711.q42"
#define ACCOUNT "Me <me@example.com>"

static void
prep_ok(const char *in, const char *from, struct msgprep *m)
{
	char err[200];
	int rc = msgprep_parse(in, strlen(in), strlen(in), from, NOW, UNIQUE, m, err, sizeof(err));
	if (rc != 0)
		print_error("msgprep_parse: %s\n", err);
	assert_int_equal(rc, 0);
	assert_non_null(m->header);
	assert_int_equal(strlen(m->header), m->header_len);
}

/* The header sent, for want with "\n" line ends (compared after making them CRLF). */
static void
header_is(const struct msgprep *m, const char *want_lf)
{
	char *want = malloc(2 * strlen(want_lf) + 1);
	assert_non_null(want);
	char *o = want;
	for (const char *s = want_lf; *s != '\0'; s++) {
		if (*s == '\n')
			*o++ = '\r';
		*o++ = *s;
	}
	*o = '\0';
	if (strcmp(m->header, want) != 0)
		print_error("wanted [%s]\ngot    [%s]\n", want, m->header);
	assert_string_equal(m->header, want);
	free(want);
}

static void
rcpts_are(const struct msgprep *m, const char *const *want, size_t n)
{
	if (m->nrcpts != n)
		for (size_t i = 0; i < m->nrcpts; i++)
			print_error("rcpt %zu: %s\n", i, m->rcpts[i]);
	assert_int_equal(m->nrcpts, n);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(m->rcpts[i], want[i]);
}

static void
prep_bad_n(const char *in, size_t len, uint64_t total, const char *from, const char *want)
{
	struct msgprep m;
	char err[200];
	memset(&m, 0xA5, sizeof(m));
	errno = 0;
	int rc = msgprep_parse(in, len, total, from, NOW, UNIQUE, &m, err, sizeof(err));
	if (rc != -1 || strcmp(err, want) != 0)
		print_error("rc %d, wanted [%s], got [%s]\n", rc, want, rc == 0 ? "" : err);
	assert_int_equal(rc, -1);
	assert_int_equal(errno, EINVAL);
	assert_string_equal(err, want);
	assert_null(m.header);
	assert_null(m.rcpts);
	assert_null(m.env_from);
	msgprep_free(&m);
}

static void
prep_bad(const char *in, const char *from, const char *want)
{
	prep_bad_n(in, strlen(in), strlen(in), from, want);
}

static void
test_complete_crlf(void **state)
{
	(void)state;
	const char *in = "From: Alice <alice@example.com>\r\n"
			 "To: Bob <bob@example.org>, carol@example.net\r\n"
			 "Cc: dave@example.org\r\n"
			 "Bcc: eve@example.com\r\n"
			 "Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\r\n"
			 "Date: Thu, 26 Nov 2026 09:30:00 +0100\r\n"
			 "Message-ID: <1234@example.com>\r\n"
			 "\r\n"
			 "Hello\r\n";
	struct msgprep m;
	prep_ok(in, ACCOUNT, &m);
	header_is(&m, "From: Alice <alice@example.com>\n"
		      "To: Bob <bob@example.org>, carol@example.net\n"
		      "Cc: dave@example.org\n"
		      "Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\n"
		      "Date: Thu, 26 Nov 2026 09:30:00 +0100\n"
		      "Message-ID: <1234@example.com>\n"
		      "\n");
	assert_string_equal(m.env_from, "alice@example.com");
	static const char *const r[] = {"bob@example.org", "carol@example.net", "dave@example.org",
					"eve@example.com"};
	rcpts_are(&m, r, 4);
	assert_int_equal(m.body_offset, strlen(in) - strlen("Hello\r\n"));
	assert_false(m.smtputf8);
	assert_string_equal(m.message_id, "<1234@example.com>");
	assert_string_equal(m.subject, "Gr\xC3\xBC\xC3\x9F"
				       "e");
	msgprep_free(&m);
	assert_null(m.header);
	msgprep_free(&m); /* twice is fine */
}

static void
test_lf_and_added_fields(void **state)
{
	(void)state;
	const char *in = "To: bob@example.org\n"
			 "Subject: hi\n"
			 "\n"
			 "body\nmore\n";
	struct msgprep m;
	prep_ok(in, ACCOUNT, &m);
	header_is(&m, "To: bob@example.org\n"
		      "Subject: hi\n"
		      "From: Me <me@example.com>\n"
		      "Date: Thu, 26 Nov 2026 18:32:15 +0000\n"
		      "Message-ID: <" UNIQUE "@example.com>\n"
		      "\n");
	assert_string_equal(m.env_from, "me@example.com");
	assert_string_equal(m.message_id, "<" UNIQUE "@example.com>");
	assert_int_equal(m.body_offset, strlen("To: bob@example.org\nSubject: hi\n\n"));
	msgprep_free(&m);

	/* a From of its own: Message-ID's domain is the sender's; the day is not padded */
	char err[200];
	in = "From: a@Sender.example\nTo: b@x\n";
	assert_int_equal(
	    msgprep_parse(in, strlen(in), strlen(in), NULL, 978663845, "u.1", &m, err, sizeof(err)),
	    0);
	header_is(&m, "From: a@Sender.example\nTo: b@x\n"
		      "Date: Fri, 5 Jan 2001 03:04:05 +0000\n"
		      "Message-ID: <u.1@Sender.example>\n\n");
	assert_null(m.subject);
	msgprep_free(&m);

	/* empty From, Date and Message-ID fields count as missing and are replaced */
	in = "From:\nDate: \nMessage-ID:\t\nTo: b@x\nSubject:\n\n";
	prep_ok(in, ACCOUNT, &m);
	header_is(&m, "To: b@x\nSubject:\n"
		      "From: Me <me@example.com>\n"
		      "Date: Thu, 26 Nov 2026 18:32:15 +0000\n"
		      "Message-ID: <" UNIQUE "@example.com>\n\n");
	assert_string_equal(m.subject, "");
	msgprep_free(&m);

	/* an existing Message-ID without brackets, or with text around them */
	in = "To: b@x\nMessage-ID: abc@def\n\n";
	prep_ok(in, ACCOUNT, &m);
	assert_string_equal(m.message_id, "<abc@def>");
	header_is(&m, "To: b@x\nMessage-ID: abc@def\nFrom: Me <me@example.com>\n"
		      "Date: Thu, 26 Nov 2026 18:32:15 +0000\n\n");
	msgprep_free(&m);
	in = "To: b@x\nmessage-id: (c) <a@b> (d)\n\n";
	prep_ok(in, ACCOUNT, &m);
	assert_string_equal(m.message_id, "<a@b>");
	msgprep_free(&m);
}

static void
test_bcc_removed(void **state)
{
	(void)state;
	const char *in = "From: a@x\n"
			 "Bcc: one@x,\n"
			 "  two@x,\n"
			 "\tThree <three@x>\n"
			 "To: b@x\n"
			 "BCC:four@x\r\n"
			 "X-Bcc: kept@x\n"
			 "bcc : five@x\n"
			 "Bcc:\n"
			 "Subject: s\n"
			 "\n"
			 "Bcc: in the body\n";
	struct msgprep m;
	prep_ok(in, ACCOUNT, &m);
	header_is(&m, "From: a@x\n"
		      "To: b@x\n"
		      "X-Bcc: kept@x\n"
		      "Subject: s\n"
		      "Date: Thu, 26 Nov 2026 18:32:15 +0000\n"
		      "Message-ID: <" UNIQUE "@x>\n\n");
	static const char *const r[] = {"one@x", "two@x", "three@x", "b@x", "four@x", "five@x"};
	rcpts_are(&m, r, 6);
	msgprep_free(&m);

	/* only Bcc recipients: still sent */
	in = "From: a@x\nBcc: secret@y\n\nhi\n";
	prep_ok(in, NULL, &m);
	header_is(&m, "From: a@x\nDate: Thu, 26 Nov 2026 18:32:15 +0000\n"
		      "Message-ID: <" UNIQUE "@x>\n\n");
	static const char *const r2[] = {"secret@y"};
	rcpts_are(&m, r2, 1);
	msgprep_free(&m);
}

static void
test_dedup_and_folds(void **state)
{
	(void)state;
	const char *in = "From: me@x\n"
			 "To: \"Bob\" <bob@Example.org>, Friends: carol@x, bob@example.ORG;\n"
			 "Cc: Carol <carol@x>,\n"
			 " \"bob\"@example.org, Bob@example.org\n"
			 "To: dave@x\n"
			 "Bcc: dave@X, (nobody)\n"
			 "\n";
	struct msgprep m;
	prep_ok(in, NULL, &m);
	static const char *const r[] = {"bob@Example.org", "carol@x", "Bob@example.org", "dave@x"};
	rcpts_are(&m, r, 4);
	/* the folded Cc goes out folded, with CRLF */
	assert_non_null(strstr(m.header, "Cc: Carol <carol@x>,\r\n \"bob\"@example.org, "
					 "Bob@example.org\r\n"));
	msgprep_free(&m);
}

static void
test_body_offset(void **state)
{
	(void)state;
	struct msgprep m;
	const char *in;
	char err[200];

	/* no body, no empty line */
	in = "To: b@x\nFrom: a@x";
	prep_ok(in, NULL, &m);
	assert_int_equal(m.body_offset, strlen(in));
	assert_non_null(strstr(m.header, "From: a@x\r\n"));
	msgprep_free(&m);
	/* only the empty line */
	in = "To: b@x\r\nFrom: a@x\r\n\r\n";
	prep_ok(in, NULL, &m);
	assert_int_equal(m.body_offset, strlen(in));
	msgprep_free(&m);
	/* a CR at the end of the file ends the last line */
	in = "To: b@x\r\nFrom: a@x\r";
	prep_ok(in, NULL, &m);
	assert_int_equal(m.body_offset, strlen(in));
	assert_null(strstr(m.header, "a@x \r\n"));
	msgprep_free(&m);
	/* the body starts with an empty line of its own */
	in = "To: b@x\nFrom: a@x\n\n\nbody";
	prep_ok(in, NULL, &m);
	assert_int_equal(m.body_offset, strlen("To: b@x\nFrom: a@x\n\n"));
	msgprep_free(&m);
	/* text right after the header, without an empty line: the body starts there */
	in = "To: b@x\nFrom: a@x\nHello Bob,\nTo: not-a-rcpt@x\n";
	prep_ok(in, NULL, &m);
	assert_int_equal(m.body_offset, strlen("To: b@x\nFrom: a@x\n"));
	assert_int_equal(m.nrcpts, 1);
	assert_non_null(strstr(m.header, "a@x\r\nDate:"));
	msgprep_free(&m);
	/* only the first bytes given: the offset is in the whole file */
	in = "To: b@x\nFrom: a@x\n\nbody...";
	assert_int_equal(
	    msgprep_parse(in, strlen(in), 1000000, NULL, NOW, UNIQUE, &m, err, sizeof(err)), 0);
	assert_int_equal(m.body_offset, strlen("To: b@x\nFrom: a@x\n\n"));
	msgprep_free(&m);
}

static void
test_header_bytes(void **state)
{
	(void)state;
	struct msgprep m;
	/* a bare CR inside a line is made SP; CRCRLF ends a line too */
	const char *in = "To: b@x\nSubject: a\rb\r\r\nFrom: a@x\n\n";
	prep_ok(in, NULL, &m);
	assert_non_null(strstr(m.header, "Subject: a b \r\nFrom: a@x\r\n"));
	assert_string_equal(m.subject, "a b");
	for (size_t i = 0; i < m.header_len; i++) {
		if (m.header[i] == '\n')
			assert_true(i > 0 && m.header[i - 1] == '\r');
		if (m.header[i] == '\r')
			assert_true(i + 1 < m.header_len && m.header[i + 1] == '\n');
	}
	msgprep_free(&m);
	/* 8-bit envelope addresses need SMTPUTF8; 8-bit names do not */
	in = "From: J\xC3\xB6rg <a@x>\nTo: b@x\n\n";
	prep_ok(in, NULL, &m);
	assert_false(m.smtputf8);
	msgprep_free(&m);
	in = "From: a@x\nTo: b@x, j\xC3\xB6rg@x\n\n";
	prep_ok(in, NULL, &m);
	assert_true(m.smtputf8);
	msgprep_free(&m);
	in = "To: b@x\n\n";
	prep_ok(in, "\xC3\xB6@x", &m);
	assert_true(m.smtputf8);
	assert_string_equal(m.message_id, "<" UNIQUE "@x>");
	msgprep_free(&m);
	/* obs-field: white space before the colon */
	in = "To : b@x\nFrom\t: a@x\n\n";
	prep_ok(in, NULL, &m);
	assert_string_equal(m.env_from, "a@x");
	assert_string_equal(m.rcpts[0], "b@x");
	msgprep_free(&m);
}

static void
test_errors(void **state)
{
	(void)state;
	prep_bad("", ACCOUNT, "empty file");
	prep_bad_n("", 0, 10, ACCOUNT, "header block incomplete: only 0 bytes given");
	prep_bad("Hello Bob,\n\nTo: b@x\n", ACCOUNT,
		 "not a message: the file does not start with a header block");
	prep_bad("From alice@x Thu Nov 26 09:30:00 2026\nTo: b@x\n\n", ACCOUNT,
		 "not a message: the file does not start with a header block");
	prep_bad("\nTo: b@x\n", ACCOUNT,
		 "not a message: the file does not start with a header block");
	prep_bad(" To: b@x\n\n", ACCOUNT,
		 "not a message: the file does not start with a header block");
	prep_bad("\x89PNG\r\n\x1A\n", ACCOUNT,
		 "not a message: the file does not start with a header block");
	prep_bad_n("To: b@x\nSubject: a\0b\n\n", 21, 21, ACCOUNT,
		   "not a message: NUL byte in the header block at offset 18");
	prep_bad("Subject: x\n\n", ACCOUNT, "no recipient: To, Cc and Bcc are missing or empty");
	prep_bad("Subject: x\nTo:\nCc: (nobody)\nBcc: undisclosed-recipients:;\n\n", ACCOUNT,
		 "no recipient: To, Cc and Bcc are missing or empty");
	prep_bad("Subject: x\n\nTo: b@x\n", ACCOUNT,
		 "no recipient: To, Cc and Bcc are missing or empty");
	prep_bad("To: b@x\n\n", NULL, "no sender: no From field and the account has no `from`");
	prep_bad("To: b@x\nFrom: \n\n", NULL,
		 "no sender: no From field and the account has no `from`");
	prep_bad("To: bob\n\n", ACCOUNT, "To: address 'bob' has no domain");
	prep_bad("To: a@x\nCc: John Smith <js@x\n\n", ACCOUNT, "Cc: unbalanced '<' at offset 11");
	prep_bad("To: a@x\nBcc: a@x,\n b@\n\n", ACCOUNT, "Bcc: address 'b@' has no domain");
	prep_bad("To: a@x\nFrom: me\n\n", ACCOUNT, "From: address 'me' has no domain");
	prep_bad("To: a@x\nFrom: Nobody:;\n\n", ACCOUNT, "From: no address");
	prep_bad("To: a@x\n\n", "me", "account `from`: address 'me' has no domain");
	prep_bad("To: a@x\n\n", "List:;", "account `from`: no address");
	prep_bad("To: a@x\nTo: \"a\x01"
		 "b\"@x\n\n",
		 ACCOUNT, "To: control character 0x01 at offset 2");

	/* the caller's arguments */
	struct msgprep m;
	char err[100];
	const char *in = "To: a@x\n\n";
	assert_int_equal(
	    msgprep_parse(in, strlen(in), strlen(in), ACCOUNT, NOW, "a b", &m, err, sizeof(err)),
	    -1);
	assert_string_equal(err, "invalid unique string");
	assert_int_equal(
	    msgprep_parse(in, strlen(in), strlen(in), ACCOUNT, NOW, NULL, &m, err, sizeof(err)),
	    -1);
	assert_int_equal(
	    msgprep_parse(in, strlen(in), strlen(in), ACCOUNT, NOW, "a..b", &m, err, sizeof(err)),
	    -1);
	assert_int_equal(msgprep_parse(in, strlen(in), strlen(in), ACCOUNT, (time_t)400000000000LL,
				       UNIQUE, &m, err, sizeof(err)),
			 -1);
	assert_string_equal(err, "clock out of range");
	/* too few bytes given */
	prep_bad_n("To: a@x\nSubject: long", 20, 5000, ACCOUNT,
		   "header block incomplete: only 20 bytes given");
	prep_bad_n("To: a@x\n", 8, 5000, ACCOUNT, "header block incomplete: only 8 bytes given");
	/* no err buffer */
	assert_int_equal(msgprep_parse("", 0, 0, NULL, NOW, UNIQUE, &m, NULL, 0), -1);
	assert_int_equal(errno, EINVAL);
}

/* "To: a@x\n" then X-Pad fields up to `size` bytes of header, then the empty line. */
static char *
big_header(size_t size, size_t *len)
{
	char *s = malloc(size + 64);
	assert_non_null(s);
	size_t n = (size_t)sprintf(s, "To: a@x\nFrom: b@x\n");
	while (n < size) {
		size_t line = size - n > 1000 ? 1000 : size - n;
		if (line < 10)
			line = 10;
		memcpy(s + n, "X-Pad: ", 7);
		memset(s + n + 7, 'p', line - 8);
		s[n + line - 1] = '\n';
		n += line;
	}
	memcpy(s + n, "\nbody\n", 6);
	*len = n + 6;
	return s;
}

static void
test_size_limit(void **state)
{
	(void)state;
	struct msgprep m;
	char err[200];
	size_t len;

	/* exactly MSGPREP_MAX_HEADER bytes with the empty line: accepted */
	char *s = big_header(MSGPREP_MAX_HEADER - 1, &len);
	assert_int_equal(len, MSGPREP_MAX_HEADER - 1 + 6);
	assert_int_equal(msgprep_parse(s, len, len, NULL, NOW, UNIQUE, &m, err, sizeof(err)), 0);
	assert_int_equal(m.body_offset, MSGPREP_MAX_HEADER);
	msgprep_free(&m);
	/* the caller passes only MSGPREP_MAX_HEADER + 2 bytes of a bigger file: the same */
	assert_int_equal(msgprep_parse(s, MSGPREP_MAX_HEADER + 2, 50000000, NULL, NOW, UNIQUE, &m,
				       err, sizeof(err)),
			 0);
	assert_int_equal(m.body_offset, MSGPREP_MAX_HEADER);
	msgprep_free(&m);
	free(s);

	/* one byte more */
	s = big_header(MSGPREP_MAX_HEADER, &len);
	prep_bad_n(s, len, len, NULL, "header block larger than 1 MiB");
	prep_bad_n(s, MSGPREP_MAX_HEADER + 2, 50000000, NULL, "header block larger than 1 MiB");
	prep_bad_n(s, MSGPREP_MAX_HEADER, 50000000, NULL, "header block larger than 1 MiB");
	free(s);

	/* a header without an end, much bigger than the limit */
	s = big_header(3 * MSGPREP_MAX_HEADER, &len);
	prep_bad_n(s, len - 6, len - 6, NULL, "header block larger than 1 MiB");
	free(s);
}

static void
test_crlf_convert(void **state)
{
	(void)state;
	static const struct {
		const char *in, *want;
	} cases[] = {
	    {"", ""},
	    {"a", "a"},
	    {"a\n", "a\r\n"},
	    {"a\r\n", "a\r\n"},
	    {"a\rb", "a\r\nb"},
	    {"a\r", "a\r\n"},
	    {"\r\r\n\n", "\r\n\r\n\r\n"},
	    {"\n\n", "\r\n\r\n"},
	    {".\r.\r\n", ".\r\n.\r\n"},
	};
	char out[64];
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct crlf_state st = {false};
		size_t n = crlf_convert(&st, cases[i].in, strlen(cases[i].in), out);
		n += crlf_finish(&st, out + n);
		assert_int_equal(n, strlen(cases[i].want));
		assert_memory_equal(out, cases[i].want, n);
	}

	/* random bytes in random splits give the same as converting whole */
	unsigned seed = 3;
	static const char alpha[] = "\r\n\r\nab.";
	for (int iter = 0; iter < 3000; iter++) {
		size_t len = (size_t)(rand_r(&seed) % 300);
		char *in = malloc(len + 1);
		char *whole = malloc(2 * len + 3);
		char *split = malloc(2 * len + 3);
		assert_true(in && whole && split);
		for (size_t i = 0; i < len; i++)
			in[i] = rand_r(&seed) % 10 == 0 ? (char)rand_r(&seed)
							: alpha[rand_r(&seed) % 7];
		struct crlf_state st = {false};
		size_t nw = crlf_convert(&st, in, len, whole);
		assert_true(nw <= 2 * len + 1);
		nw += crlf_finish(&st, whole + nw);
		size_t ns = 0, pos = 0;
		st.pending_cr = false;
		while (pos < len) {
			size_t chunk = (size_t)(rand_r(&seed) % 8);
			if (chunk > len - pos)
				chunk = len - pos;
			size_t k = crlf_convert(&st, in + pos, chunk, split + ns);
			assert_true(k <= 2 * chunk + 1);
			ns += k;
			pos += chunk;
		}
		ns += crlf_finish(&st, split + ns);
		assert_int_equal(ns, nw);
		assert_memory_equal(split, whole, nw);
		/* only CRLF pairs */
		for (size_t i = 0; i < nw; i++) {
			if (whole[i] == '\r')
				assert_true(i + 1 < nw && whole[i + 1] == '\n');
			if (whole[i] == '\n')
				assert_true(i > 0 && whole[i - 1] == '\r');
		}
		free(in);
		free(whole);
		free(split);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_complete_crlf), cmocka_unit_test(test_lf_and_added_fields),
	    cmocka_unit_test(test_bcc_removed),   cmocka_unit_test(test_dedup_and_folds),
	    cmocka_unit_test(test_body_offset),   cmocka_unit_test(test_header_bytes),
	    cmocka_unit_test(test_errors),        cmocka_unit_test(test_size_limit),
	    cmocka_unit_test(test_crlf_convert),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
