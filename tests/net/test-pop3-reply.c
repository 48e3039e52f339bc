/* test-pop3-reply.c - unit tests for net/pop3-reply.c.
 *
 * Every body sample is fed whole, one byte at a time and in seeded random splits; each way
 * must give the same decoded bytes, the same outcome and leave the same bytes after the
 * terminator. Status lines likewise. Also: caps, UIDL/LIST/CAPA line readers. Not tested
 * here: the client that feeds the parser (net/pop3, tested against Dovecot and a fake).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "net/pop3-reply.h"

#define RANDOM_SPLITS 200
#define S(x) x, sizeof(x) - 1

static uint32_t
rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return (uint32_t)(*s >> 32);
}

struct body_result {
	enum pop3_parse res;
	char out[8192];
	size_t outlen;
	size_t consumed; /* input bytes consumed up to DONE / ERROR */
};

/* split: 0 whole, 1 byte by byte, else a seed for random chunks. */
static void
decode(const char *in, size_t len, uint64_t max, uint64_t split, struct body_result *r)
{
	struct pop3_body b;
	char tmp[8192 + 1];
	pop3_body_init(&b, max);
	r->outlen = 0;
	r->consumed = 0;
	r->res = POP3_PARSE_MORE;
	uint64_t seed = split;
	size_t pos = 0;
	while (pos < len) {
		size_t chunk = len - pos;
		if (split == 1)
			chunk = 1;
		else if (split > 1)
			chunk = 1 + rnd(&seed) % 17;
		if (chunk > len - pos)
			chunk = len - pos;
		size_t used, outlen;
		memset(tmp, 0xAA, sizeof(tmp));
		r->res = pop3_body_decode(&b, in + pos, chunk, &used, tmp, &outlen);
		assert_true(used <= chunk);
		assert_true(outlen <= chunk + 1);
		memcpy(r->out + r->outlen, tmp, outlen);
		r->outlen += outlen;
		pos += used;
		if (r->res != POP3_PARSE_MORE)
			break;
		assert_int_equal(used, chunk);
	}
	r->consumed = pos;
}

static void
check_body(const char *in, size_t len, uint64_t max, enum pop3_parse want, const char *out,
	   size_t outlen, size_t consumed)
{
	static struct body_result a, b;
	for (uint64_t split = 0; split < 2 + RANDOM_SPLITS; split++) {
		decode(in, len, max, split == 0 ? 0 : split == 1 ? 1 : split * 7919, &a);
		assert_int_equal(a.res, want);
		if (want != POP3_PARSE_ERROR) {
			assert_int_equal(a.outlen, outlen);
			assert_memory_equal(a.out, out, outlen);
			assert_int_equal(a.consumed, consumed);
		}
		if (split == 0)
			b = a;
		else if (want != POP3_PARSE_ERROR)
			assert_memory_equal(a.out, b.out, a.outlen);
	}
}

static void
test_body_simple(void **state)
{
	(void)state;
	check_body(S("Subject: a\r\n\r\nhello\r\n.\r\n"), 0, POP3_PARSE_DONE,
		   S("Subject: a\r\n\r\nhello\r\n"), 24);
	/* Bytes after the terminator are not consumed. */
	check_body(S("x\r\n.\r\n+OK next\r\n"), 0, POP3_PARSE_DONE, S("x\r\n"), 6);
	/* An empty body. */
	check_body(S(".\r\n"), 0, POP3_PARSE_DONE, "", 0, 3);
	/* Not finished yet. */
	check_body(S("abc\r\n.\r"), 0, POP3_PARSE_MORE, S("abc\r\n"), 7);
}

static void
test_body_unstuff(void **state)
{
	(void)state;
	check_body(S("..hidden\r\n...\r\n..\r\n.\r\n"), 0, POP3_PARSE_DONE,
		   S(".hidden\r\n..\r\n.\r\n"), 22);
	/* A dot inside a line is content. */
	check_body(S("a.b\r\n .\r\n.\r\n"), 0, POP3_PARSE_DONE, S("a.b\r\n .\r\n"), 12);
	/* "." then other bytes at line start: the dot is stripped (RFC 1939 §3). */
	check_body(S(".x\r\n.\r\n"), 0, POP3_PARSE_DONE, S("x\r\n"), 7);
	/* "." CR then not LF: the CR is content. */
	check_body(S(".\rz\r\n.\r\n"), 0, POP3_PARSE_DONE, S("\rz\r\n"), 8);
	check_body(S(".\r\r\n.\r\n"), 0, POP3_PARSE_DONE, S("\r\r\n"), 7);
}

static void
test_body_binary(void **state)
{
	(void)state;
	/* NUL bytes and 8-bit bytes are kept; CR LF split inside a line is content. */
	static const char in[] = "a\0b\xff\r\n\r.\r\n\r\n.\r\n";
	static const char out[] = "a\0b\xff\r\n\r.\r\n\r\n";
	check_body(in, sizeof(in) - 1, 0, POP3_PARSE_DONE, out, sizeof(out) - 1,
		   sizeof(in) - 1);
	/* A terminator-looking sequence inside a line does not end the body. */
	check_body(S("x\r.\r\ny\r\n.\r\n"), 0, POP3_PARSE_DONE, S("x\r.\r\ny\r\n"), 11);
}

static void
test_body_bare_lf(void **state)
{
	(void)state;
	check_body(S("a\nb\n.\n"), 0, POP3_PARSE_DONE, S("a\nb\n"), 6);
	check_body(S("a\n..b\n.\r\n"), 0, POP3_PARSE_DONE, S("a\n.b\n"), 9);
}

static void
test_body_cap(void **state)
{
	(void)state;
	check_body(S("0123456789\r\n.\r\n"), 12, POP3_PARSE_DONE, S("0123456789\r\n"), 15);
	check_body(S("0123456789\r\n.\r\n"), 11, POP3_PARSE_ERROR, "", 0, 0);
	/* An endless body stops at the cap. */
	static char big[8000];
	memset(big, 'x', sizeof(big));
	check_body(big, sizeof(big), 100, POP3_PARSE_ERROR, "", 0, 0);
	/* Exactly the bytes up to the cap are passed on, whatever the split. */
	static struct body_result r;
	for (uint64_t split = 0; split < 50; split++) {
		decode(S("0123456789\r\n.\r\n"), 11, split, &r);
		assert_int_equal(r.res, POP3_PARSE_ERROR);
		assert_int_equal(r.outlen, 11);
		assert_memory_equal(r.out, "0123456789\r", 11);
	}
	/* The error is sticky. */
	struct pop3_body b;
	size_t used, outlen;
	char out[16];
	pop3_body_init(&b, 2);
	assert_int_equal(pop3_body_decode(&b, S("abc"), &used, out, &outlen), POP3_PARSE_ERROR);
	assert_int_equal(pop3_body_decode(&b, S(".\r\n"), &used, out, &outlen), POP3_PARSE_ERROR);
	assert_int_equal(used, 0);
}

static void
status(const char *in, size_t len, enum pop3_parse want, enum pop3_status_kind kind,
       const char *code, const char *text, size_t consumed)
{
	static struct pop3_status st;
	for (uint64_t split = 0; split < 2 + RANDOM_SPLITS; split++) {
		struct pop3_status_parser p;
		pop3_status_parser_init(&p);
		uint64_t seed = split * 104729;
		size_t pos = 0;
		enum pop3_parse res = POP3_PARSE_MORE;
		char err[160] = "";
		memset(&st, 0, sizeof(st));
		while (pos < len) {
			size_t chunk = split == 0 ? len - pos : split == 1 ? 1 : 1 + rnd(&seed) % 9;
			if (chunk > len - pos)
				chunk = len - pos;
			size_t used;
			res = pop3_status_parse(&p, in + pos, chunk, &used, &st, err, sizeof(err));
			assert_true(used <= chunk);
			pos += used;
			if (res != POP3_PARSE_MORE)
				break;
		}
		assert_int_equal(res, want);
		if (want == POP3_PARSE_ERROR) {
			assert_true(err[0] != '\0');
			continue;
		}
		if (want == POP3_PARSE_DONE) {
			assert_int_equal(st.kind, kind);
			assert_string_equal(st.code, code);
			assert_string_equal(st.text, text);
			assert_int_equal(pos, consumed);
		}
	}
}

static void
test_status(void **state)
{
	(void)state;
	status(S("+OK Dovecot ready.\r\n"), POP3_PARSE_DONE, POP3_OK, "", "Dovecot ready.", 20);
	status(S("+OK\r\n"), POP3_PARSE_DONE, POP3_OK, "", "", 5);
	status(S("-ERR [IN-USE] locked\r\nmore"), POP3_PARSE_DONE, POP3_ERR, "IN-USE", "locked",
	       22);
	status(S("-ERR [SYS/TEMP]\r\n"), POP3_PARSE_DONE, POP3_ERR, "SYS/TEMP", "", 17);
	status(S("-ERR [not a code\r\n"), POP3_PARSE_DONE, POP3_ERR, "", "[not a code", 18);
	status(S("+ \r\n"), POP3_PARSE_DONE, POP3_CONT, "", "", 4);
	status(S("+\r\n"), POP3_PARSE_DONE, POP3_CONT, "", "", 3);
	status(S("+ok bare lf\n"), POP3_PARSE_DONE, POP3_OK, "", "bare lf", 12);
	status(S("+OK a\x01" "b\x7f\r\n"), POP3_PARSE_DONE, POP3_OK, "", "a?b?", 10);
	status(S("+OKAY\r\n"), POP3_PARSE_ERROR, POP3_OK, "", "", 0);
	status(S("* OK imap\r\n"), POP3_PARSE_ERROR, POP3_OK, "", "", 0);
	status(S("\r\n"), POP3_PARSE_ERROR, POP3_OK, "", "", 0);
	status(S("+OK no end"), POP3_PARSE_MORE, POP3_OK, "", "", 0);
}

static void
test_status_long(void **state)
{
	(void)state;
	static char line[POP3_LINE_MAX + 100];
	memcpy(line, "+OK ", 4);
	memset(line + 4, 'a', POP3_LINE_MAX - 4);
	memcpy(line + POP3_LINE_MAX, "\r\n", 2);
	static char want[POP3_LINE_MAX];
	memset(want, 'a', POP3_LINE_MAX - 4);
	want[POP3_LINE_MAX - 4] = '\0';
	status(line, POP3_LINE_MAX + 2, POP3_PARSE_DONE, POP3_OK, "", want, POP3_LINE_MAX + 2);
	memset(line + 4, 'a', POP3_LINE_MAX);
	memcpy(line + POP3_LINE_MAX + 4, "\r\n", 2);
	status(line, POP3_LINE_MAX + 6, POP3_PARSE_ERROR, POP3_OK, "", "", 0);
}

static void
test_uidl(void **state)
{
	(void)state;
	uint32_t msg;
	char uid[71];
	assert_true(pop3_uidl_line(S("1 000000017a1b2c3d"), &msg, uid, sizeof(uid)));
	assert_int_equal(msg, 1);
	assert_string_equal(uid, "000000017a1b2c3d");
	assert_true(pop3_uidl_line(S("4294967295 ~!"), &msg, uid, sizeof(uid)));
	assert_int_equal(msg, 4294967295u);
	assert_false(pop3_uidl_line(S("4294967296 a"), &msg, uid, sizeof(uid)));
	assert_false(pop3_uidl_line(S("0 a"), &msg, uid, sizeof(uid)));
	assert_false(pop3_uidl_line(S("1"), &msg, uid, sizeof(uid)));
	assert_false(pop3_uidl_line(S("1 "), &msg, uid, sizeof(uid)));
	assert_false(pop3_uidl_line(S("1 a b"), &msg, uid, sizeof(uid)));
	assert_false(pop3_uidl_line(S("x a"), &msg, uid, sizeof(uid)));
	static const char nul[] = "1 a\0b";
	assert_false(pop3_uidl_line(nul, sizeof(nul) - 1, &msg, uid, sizeof(uid)));
	char l71[80] = "1 ";
	memset(l71 + 2, 'u', 70);
	assert_true(pop3_uidl_line(l71, 72, &msg, uid, sizeof(uid)));
	l71[72] = 'u';
	assert_false(pop3_uidl_line(l71, 73, &msg, uid, sizeof(uid)));
	assert_false(pop3_uidl_line(S("1 abc"), &msg, uid, 3));
}

static void
test_list(void **state)
{
	(void)state;
	uint32_t msg;
	uint64_t size;
	assert_true(pop3_list_line(S("2 1234"), &msg, &size));
	assert_int_equal(msg, 2);
	assert_int_equal(size, 1234);
	assert_true(pop3_list_line(S("3 18446744073709551615"), &msg, &size));
	assert_true(size == UINT64_MAX);
	assert_false(pop3_list_line(S("3 18446744073709551616"), &msg, &size));
	assert_true(pop3_list_line(S("3 12 extra"), &msg, &size));
	assert_false(pop3_list_line(S("3 12x"), &msg, &size));
	assert_false(pop3_list_line(S("3"), &msg, &size));
	assert_false(pop3_list_line(S("3 "), &msg, &size));
	assert_false(pop3_list_line(S("-1 5"), &msg, &size));
}

static void
test_capa(void **state)
{
	(void)state;
	const char *a = NULL;
	assert_true(pop3_capa_is("SASL PLAIN LOGIN", "SASL", &a));
	assert_string_equal(a, "PLAIN LOGIN");
	assert_true(pop3_capa_is("stls", "STLS", &a));
	assert_string_equal(a, "");
	assert_false(pop3_capa_is("UIDLX", "UIDL", &a));
	assert_false(pop3_capa_is("TO", "TOP", NULL));
	assert_true(pop3_capa_is("TOP", "TOP", NULL));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_body_simple), cmocka_unit_test(test_body_unstuff),
		cmocka_unit_test(test_body_binary), cmocka_unit_test(test_body_bare_lf),
		cmocka_unit_test(test_body_cap),    cmocka_unit_test(test_status),
		cmocka_unit_test(test_status_long), cmocka_unit_test(test_uidl),
		cmocka_unit_test(test_list),        cmocka_unit_test(test_capa),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
