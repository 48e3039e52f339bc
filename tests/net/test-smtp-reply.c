/* test-smtp-reply.c - unit tests for net/smtp-reply.c.
 *
 * Every sample is fed three ways: whole, one byte at a time, and in seeded random splits;
 * each way must give the same replies (compared through a dump that shows every field)
 * and the same outcome. Malformed input must give SMTP_PARSE_ERROR with a message that
 * says why, whatever the split. Also: EHLO keyword parsing. Not tested here: the client
 * that feeds the parser (net/smtp, tested against Postfix and a fake server).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "net/buf.h"
#include "net/smtp-reply.h"

#define RANDOM_SPLITS 200
#define S(x) x, sizeof(x) - 1

enum split { SPLIT_WHOLE, SPLIT_BYTE, SPLIT_RANDOM };

static uint32_t
rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return (uint32_t)(*s >> 32);
}

static void
dump_reply(struct buf *b, const struct smtp_reply *r)
{
	buf_printf(b, "%d|%s|%u|", r->code, r->enhanced, r->nlines);
	for (const unsigned char *p = (const unsigned char *)r->text; *p; p++) {
		if (*p == '\n')
			buf_append_str(b, "\\n");
		else if (*p < 0x20 || *p >= 0x7f || *p == '\\')
			buf_printf(b, "\\x%02x", *p);
		else
			buf_append(b, p, 1);
	}
	buf_append_str(b, "\n");
}

/* Parse everything, split as asked; the dump of every reply, then "ERR: why" or
 * "MORE" (input ends inside a reply) or nothing (ends after a reply). */
static char *
parse_all(const char *in, size_t len, enum split how, uint64_t seed)
{
	static struct smtp_reply_parser p; /* 8 KiB: not on the test's stack */
	static struct smtp_reply r;
	struct buf out;
	buf_init(&out, 1 << 24);
	smtp_reply_parser_init(&p);
	size_t off = 0;
	bool pending = false;
	uint64_t s = seed | 1;
	while (off < len) {
		size_t n = len - off;
		if (how == SPLIT_BYTE)
			n = 1;
		else if (how == SPLIT_RANDOM)
			n = 1 + rnd(&s) % (n < 64 ? n : 64);
		size_t fed = 0;
		while (fed < n) {
			size_t used = SIZE_MAX, rem = n - fed;
			char err[200] = "";
			enum smtp_parse pr =
			    smtp_reply_parse(&p, in + off + fed, rem, &used, &r, err, sizeof(err));
			assert_true(used <= rem);
			if (pr == SMTP_PARSE_ERROR) {
				assert_true(err[0] != '\0');
				/* the error sticks */
				char err2[200];
				assert_int_equal(smtp_reply_parse(&p, "250 x\r\n", 7, &used, &r,
								  err2, sizeof(err2)),
						 SMTP_PARSE_ERROR);
				assert_int_equal(used, 0);
				assert_string_equal(err, err2);
				buf_printf(&out, "ERR: %s", err);
				return out.data;
			}
			fed += used;
			if (pr == SMTP_PARSE_DONE) {
				assert_true(used > 0);
				dump_reply(&out, &r);
				pending = false;
			} else {
				assert_int_equal(used, rem);
				pending = true;
			}
		}
		off += n;
	}
	if (pending)
		buf_append_str(&out, "MORE");
	return out.data != NULL ? out.data : strdup("");
}

/* Feed a sample whole, bytewise and in random splits: all must give `want`. */
static void
check(const char *in, size_t len, const char *want)
{
	char *whole = parse_all(in, len, SPLIT_WHOLE, 0);
	if (strcmp(whole, want) != 0)
		fprintf(stderr, "input: %.*s\n", (int)(len > 200 ? 200 : len), in);
	assert_string_equal(whole, want);
	char *bytes = parse_all(in, len, SPLIT_BYTE, 0);
	assert_string_equal(bytes, want);
	for (uint64_t seed = 1; seed <= RANDOM_SPLITS; seed++) {
		char *split = parse_all(in, len, SPLIT_RANDOM, seed * 0x9e3779b97f4a7c15ULL);
		assert_string_equal(split, want);
		free(split);
	}
	free(whole);
	free(bytes);
}

static void
test_single(void **state)
{
	(void)state;
	check(S("220 mx.example.test ESMTP Postfix\r\n"), "220||1|mx.example.test ESMTP Postfix\n");
	check(S("250 OK\n"), "250||1|OK\n"); /* bare LF */
	check(S("250\r\n"), "250||1|\n");    /* no text */
	check(S("250 \r\n"), "250||1|\n");   /* empty text */
	check(S("354 End data with <CR><LF>.<CR><LF>\r\n"),
	      "354||1|End data with <CR><LF>.<CR><LF>\n");
	check(S("221 2.0.0 Bye\r\n"), "221|2.0.0|1|Bye\n");
	check(S("550 5.1.1 <reject@example.test>: Recipient address rejected\r\n"),
	      "550|5.1.1|1|<reject@example.test>: Recipient address rejected\n");
	check(S("250 2.1.0\r\n"), "250|2.1.0|1|\n"); /* enhanced code, no text */
	check(S("451 4.123.999 x\r\n"), "451|4.123.999|1|x\n");
	/* class must match the code: kept as text */
	check(S("550 4.1.1 mismatch\r\n"), "550||1|4.1.1 mismatch\n");
	check(S("354 2.0.0 go\r\n"), "354||1|2.0.0 go\n"); /* 3xx has no enhanced code */
	/* not an enhanced code: too many digits, missing part, no space after */
	check(S("550 5.1234.1 x\r\n"), "550||1|5.1234.1 x\n");
	check(S("550 5.1 x\r\n"), "550||1|5.1 x\n");
	check(S("550 5.1.1x y\r\n"), "550||1|5.1.1x y\n");
	check(S("550 5.1.1\tx\r\n"), "550||1|5.1.1\\x09x\n");
	/* CR inside the line, NUL and other control bytes become '?'; 8-bit kept */
	check(S("554 a\rb\x01"
		"c\x7f"
		"d\r\r\n"),
	      "554||1|a?b?c?d?\n");
	check("250 a\0b\r\n", 9, "250||1|a?b\n");
	check(S("250 Gr\xc3\xbc\xc3\x9f"
		"e\r\n"),
	      "250||1|Gr\\xc3\\xbc\\xc3\\x9fe\n");
	/* trailing bytes after a reply are not consumed by it */
	check(S("250 a\r\n250 b\r\n"), "250||1|a\n250||1|b\n");
	check(S("250 a\r\n25"), "250||1|a\nMORE");
	check(S("250 a"), "MORE");
	check(S(""), "");
}

static void
test_multiline(void **state)
{
	(void)state;
	check(S("250-mx.example.test\r\n250-PIPELINING\r\n250-SIZE 20971520\r\n250 8BITMIME\r\n"),
	      "250||4|mx.example.test\\nPIPELINING\\nSIZE 20971520\\n8BITMIME\n");
	check(S("250-first\r\n250\r\n"), "250||2|first\\n\n");
	check(S("250-\r\n250-\r\n250 \r\n"), "250||3|\\n\\n\n");
	/* RFC 2034: the enhanced code on every line is stripped from each */
	check(S("550-5.7.1 first line\r\n550-5.7.1 second\r\n550 5.7.1 third\r\n"),
	      "550|5.7.1|3|first line\\nsecond\\nthird\n");
	/* a later line's code is stripped only when the first line had one */
	check(S("550-no code here\r\n550 5.7.1 second\r\n"),
	      "550||2|no code here\\n5.7.1 second\n");
	/* two multi-line replies back to back, mixed line ends */
	check(S("250-a\n250 b\r\n421-c\r\n421 4.3.2 d\n"), "250||2|a\\nb\n421||2|c\\n4.3.2 d\n");
	check(S("250-a\r\n250-b\r\n"), "MORE");
}

static void
test_errors(void **state)
{
	(void)state;
	check(S("hello\r\n"), "ERR: reply line without a 3-digit code");
	check(S("\r\n"), "ERR: reply line without a 3-digit code");
	check(S("25\r\n"), "ERR: reply line without a 3-digit code");
	check(S("2x0 a\r\n"), "ERR: reply line without a 3-digit code");
	check(S("150 x\r\n"), "ERR: reply code 150 out of range");
	check(S("650 x\r\n"), "ERR: reply code 650 out of range");
	check(S("270 x\r\n"), "ERR: reply code 270 out of range");
	check(S("2500 x\r\n"), "ERR: malformed reply line: no space or '-' after the code 250");
	check(S("250\tx\r\n"), "ERR: malformed reply line: no space or '-' after the code 250");
	check(S("250-a\r\n550 b\r\n"), "ERR: code changed in a multi-line reply (250 then 550)");
	check(S("250-a\r\n251 b\r\n"), "ERR: code changed in a multi-line reply (250 then 251)");
	check(S("250-a\r\ngarbage\r\n"), "ERR: reply line without a 3-digit code");
	/* a good reply, then an error: the first is still delivered */
	check(S("250 ok\r\nxyz\r\n"), "250||1|ok\nERR: reply line without a 3-digit code");
	/* binary garbage */
	char bin[512];
	for (size_t i = 0; i < sizeof(bin); i++)
		bin[i] = (char)(i * 37 + 11);
	char *r = parse_all(bin, sizeof(bin), SPLIT_WHOLE, 0);
	assert_non_null(strstr(r, "ERR: "));
	free(r);
}

static void
test_limits(void **state)
{
	(void)state;
	struct buf in;
	/* a line of exactly SMTP_LINE_MAX bytes is fine, with CRLF or LF */
	buf_init(&in, 1 << 24);
	buf_append_str(&in, "250 ");
	for (int i = 4; i < SMTP_LINE_MAX; i++)
		buf_append(&in, "x", 1);
	buf_append_str(&in, "\r\n");
	char *r = parse_all(in.data, in.len, SPLIT_BYTE, 0);
	assert_int_equal(strncmp(r, "250||1|xxxx", 11), 0);
	free(r);
	in.data[in.len - 2] = '\n';
	in.len--;
	r = parse_all(in.data, in.len, SPLIT_WHOLE, 0);
	assert_int_equal(strncmp(r, "250||1|xxxx", 11), 0);
	free(r);
	/* one more byte: an error, with and without the line end, however it is split */
	buf_reset(&in);
	buf_append_str(&in, "250 ");
	for (int i = 4; i < SMTP_LINE_MAX + 1; i++)
		buf_append(&in, "x", 1);
	buf_append_str(&in, "\r\n");
	check(in.data, in.len, "ERR: line longer than 4096 bytes");
	/* 4097 bytes without a line end may still be 4096 and a CR: wait for more */
	check(in.data, in.len - 2, "MORE");
	check(in.data, in.len - 1, "ERR: line longer than 4096 bytes");
	/* an endless line: an error as soon as the cap is passed */
	buf_reset(&in);
	for (int i = 0; i < 100000; i++)
		buf_append(&in, "250-", 4);
	check(in.data, in.len, "ERR: line longer than 4096 bytes");

	/* SMTP_REPLY_LINES_MAX lines are fine, one more is an error */
	buf_reset(&in);
	for (int i = 0; i < SMTP_REPLY_LINES_MAX - 1; i++)
		buf_append_str(&in, "250-ab\r\n");
	buf_append_str(&in, "250 end\r\n");
	r = parse_all(in.data, in.len, SPLIT_WHOLE, 0);
	char want[64];
	snprintf(want, sizeof(want), "250||%d|ab\\nab", SMTP_REPLY_LINES_MAX);
	assert_int_equal(strncmp(r, want, strlen(want)), 0);
	assert_non_null(strstr(r, "\\nend\n"));
	free(r);
	buf_reset(&in);
	for (int i = 0; i < SMTP_REPLY_LINES_MAX; i++)
		buf_append_str(&in, "250-ab\r\n");
	buf_append_str(&in, "250 end\r\n");
	check(in.data, in.len, "ERR: more than 1000 lines in one reply");

	/* long text is truncated to SMTP_REPLY_TEXT_MAX - 1 bytes, never an error */
	static struct smtp_reply_parser p;
	static struct smtp_reply rep;
	buf_reset(&in);
	for (int i = 0; i < 10; i++) {
		buf_append_str(&in, i < 9 ? "550-" : "550 ");
		for (int k = 0; k < 1000; k++)
			buf_append(&in, "y", 1);
		buf_append_str(&in, "\r\n");
	}
	smtp_reply_parser_init(&p);
	size_t used;
	char err[100];
	assert_int_equal(smtp_reply_parse(&p, in.data, in.len, &used, &rep, err, sizeof(err)),
			 SMTP_PARSE_DONE);
	assert_int_equal(used, in.len);
	assert_int_equal(strlen(rep.text), SMTP_REPLY_TEXT_MAX - 1);
	assert_int_equal(rep.nlines, 10);
	/* truncation never cuts a UTF-8 character: 2-byte characters, odd offset */
	buf_reset(&in);
	buf_append_str(&in, "550-x\r\n"); /* the cut falls inside a character */
	for (int l = 0; l < 3; l++) {
		buf_append_str(&in, l < 2 ? "550-" : "550 ");
		for (int k = 0; k < 1000; k++)
			buf_append_str(&in, "\xc3\xa9");
		buf_append_str(&in, "\r\n");
	}
	smtp_reply_parser_init(&p);
	assert_int_equal(smtp_reply_parse(&p, in.data, in.len, &used, &rep, err, sizeof(err)),
			 SMTP_PARSE_DONE);
	size_t tl = strlen(rep.text);
	assert_true(tl < SMTP_REPLY_TEXT_MAX - 1 && tl >= SMTP_REPLY_TEXT_MAX - 3);
	assert_int_equal((unsigned char)rep.text[tl - 2], 0xc3);
	assert_int_equal((unsigned char)rep.text[tl - 1], 0xa9);
	buf_free(&in);
}

/* After an error, init makes the parser usable again; a DONE leaves it ready. */
static void
test_reuse(void **state)
{
	(void)state;
	static struct smtp_reply_parser p;
	static struct smtp_reply r;
	size_t used;
	char err[100];
	smtp_reply_parser_init(&p);
	assert_int_equal(smtp_reply_parse(&p, S("bad\r\n"), &used, &r, err, sizeof(err)),
			 SMTP_PARSE_ERROR);
	assert_int_equal(used, 5);
	assert_int_equal(smtp_reply_parse(&p, S("250 x\r\n"), &used, &r, NULL, 0),
			 SMTP_PARSE_ERROR);
	smtp_reply_parser_init(&p);
	assert_int_equal(
	    smtp_reply_parse(&p, S("250-x\r\n250 y\r\n354 z\r\n"), &used, &r, err, sizeof(err)),
	    SMTP_PARSE_DONE);
	assert_int_equal(used, 14);
	assert_int_equal(r.code, 250);
	assert_string_equal(r.text, "x\ny");
	assert_int_equal(smtp_reply_parse(&p, S("354 z\r\n"), &used, &r, err, sizeof(err)),
			 SMTP_PARSE_DONE);
	assert_int_equal(r.code, 354);
	assert_int_equal(r.nlines, 1);
	assert_string_equal(r.text, "z");
}

static void
ehlo(const char *in, struct smtp_reply *r, struct smtp_ehlo *e)
{
	static struct smtp_reply_parser p;
	size_t used;
	char err[100];
	smtp_reply_parser_init(&p);
	assert_int_equal(smtp_reply_parse(&p, in, strlen(in), &used, r, err, sizeof(err)),
			 SMTP_PARSE_DONE);
	smtp_ehlo_parse(r, e);
}

static void
test_ehlo(void **state)
{
	(void)state;
	static struct smtp_reply r;
	struct smtp_ehlo e;
	ehlo("250-mx.example.test\r\n250-PIPELINING\r\n250-SIZE 20971520\r\n250-VRFY\r\n"
	     "250-ETRN\r\n250-STARTTLS\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n"
	     "250-DSN\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n",
	     &r, &e);
	assert_true(e.pipelining && e.size_offered && e.starttls && e.enhancedstatuscodes &&
		    e.eightbitmime && e.smtputf8);
	assert_false(e.auth);
	assert_int_equal(e.auth_mechs, 0);
	assert_int_equal(e.size, 20971520);
	assert_true(smtp_ehlo_has(&r, "dsn"));
	assert_true(smtp_ehlo_has(&r, "CHUNKING"));
	assert_false(smtp_ehlo_has(&r, "mx.example.test")); /* the greeting is no keyword */
	assert_false(smtp_ehlo_has(&r, "PIPE"));
	assert_false(smtp_ehlo_has(&r, "AUTH"));

	/* both AUTH forms, lower case, SIZE without a number */
	ehlo("250-host says hi\r\n250-auth plain\r\n250-AUTH=LOGIN XOAUTH2 cram-md5\r\n"
	     "250-size\r\n250 pipelining\r\n",
	     &r, &e);
	assert_true(e.auth && e.pipelining && e.size_offered);
	assert_int_equal(e.size, 0);
	assert_int_equal(e.auth_mechs, SMTP_AUTH_BIT_PLAIN | SMTP_AUTH_BIT_LOGIN |
					   SMTP_AUTH_BIT_XOAUTH2 | SMTP_AUTH_BIT_CRAM_MD5);
	assert_false(e.starttls || e.eightbitmime || e.smtputf8 || e.enhancedstatuscodes);
	assert_true(smtp_ehlo_has(&r, "AUTH"));

	ehlo("250-h\r\n250-AUTH GSSAPI\r\n250-SIZE 99999999999999999999999\r\n250 SIZE=5\r\n", &r,
	     &e);
	assert_true(e.auth && e.size_offered);
	assert_int_equal(e.auth_mechs, SMTP_AUTH_BIT_OTHER);
	assert_int_equal(e.size, 0); /* overflow: no usable limit */
	ehlo("250-h\r\n250 SIZE 12x\r\n", &r, &e);
	assert_int_equal(e.size, 0);
	ehlo("250-h\r\n250 SIZE 18446744073709551615\r\n", &r, &e);
	assert_true(e.size == UINT64_MAX);

	/* a single-line EHLO reply: no extensions */
	ehlo("250 h\r\n", &r, &e);
	assert_false(e.pipelining || e.auth || e.size_offered || e.starttls);
	/* an error reply has no extensions even if its text looks like some */
	ehlo("550-h\r\n550 PIPELINING\r\n", &r, &e);
	assert_false(e.pipelining);
	assert_false(smtp_ehlo_has(&r, "PIPELINING"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_single), cmocka_unit_test(test_multiline),
	    cmocka_unit_test(test_errors), cmocka_unit_test(test_limits),
	    cmocka_unit_test(test_reuse),  cmocka_unit_test(test_ehlo),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
