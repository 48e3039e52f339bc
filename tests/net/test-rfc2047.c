/* test-rfc2047.c - unit tests for net/rfc2047.c: every example of RFC 2047 §8, B and Q in
 * many charsets (single-byte, multi-byte, stateful), the joining of adjacent words, what
 * stays as written (bad base64, bad Q, unknown charsets, lone "=?"), raw 8-bit text, the
 * buffer cap, and valid UTF-8 output on random input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "net/rfc2047.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "net/utf8.h"

/* Strict RFC 3629 check, written apart from the decoder's. */

/* Decode in[0..len) and compare with want[0..want_len). */
static void
check_n(const char *in, size_t len, const char *want, size_t want_len)
{
	struct buf b;
	buf_init(&b, 1 << 20);
	assert_int_equal(rfc2047_decode(in, len, &b), 0);
	if (b.len != want_len || memcmp(b.data, want, want_len) != 0)
		print_error("input  [%.*s]\nwanted [%.*s]\ngot    [%.*s]\n", (int)len, in,
			    (int)want_len, want, (int)b.len, b.data ? b.data : "");
	assert_int_equal(b.len, want_len);
	assert_memory_equal(b.data ? b.data : "", want, want_len);
	assert_true(utf8_valid((const unsigned char *)b.data, b.len));
	buf_free(&b);
}

static void
check(const char *in, const char *want)
{
	check_n(in, strlen(in), want, strlen(want));
}

/* The input must come out exactly as it went in. */
static void
same(const char *in)
{
	check(in, in);
}

/* ---- RFC 2047 §8 ------------------------------------------------------------------- */

static void
test_rfc_header_examples(void **state)
{
	(void)state;
	check("=?US-ASCII?Q?Keith_Moore?= <moore@cs.utk.edu>", "Keith Moore <moore@cs.utk.edu>");
	check("=?ISO-8859-1?Q?Keld_J=F8rn_Simonsen?= <keld@dkuug.dk>",
	      "Keld Jørn Simonsen <keld@dkuug.dk>");
	check("=?ISO-8859-1?Q?Andr=E9?= Pirard <PIRARD@vm1.ulg.ac.be>",
	      "André Pirard <PIRARD@vm1.ulg.ac.be>");
	check("=?ISO-8859-1?B?SWYgeW91IGNhbiByZWFkIHRoaXMgeW8=?= "
	      "=?ISO-8859-2?B?dSB1bmRlcnN0YW5kIHRoZSBleGFtcGxlLg==?=",
	      "If you can read this you understand the example.");
	/* the same, still folded as in the RFC */
	check("=?ISO-8859-1?B?SWYgeW91IGNhbiByZWFkIHRoaXMgeW8=?=\r\n    "
	      "=?ISO-8859-2?B?dSB1bmRlcnN0YW5kIHRoZSBleGFtcGxlLg==?=",
	      "If you can read this you understand the example.");
	check("=?ISO-8859-1?Q?Olle_J=E4rnefors?= <ojarnef@admin.kth.se>",
	      "Olle Järnefors <ojarnef@admin.kth.se>");
	check("=?ISO-8859-1?Q?Patrik_F=E4ltstr=F6m?= <paf@nada.kth.se>",
	      "Patrik Fältström <paf@nada.kth.se>");
	same("Test of new header generator");
	same("comp.mail.mime");
	check("Nathaniel Borenstein <nsb@thumper.bellcore.com> "
	      "(=?iso-8859-8?b?7eXs+SDv4SDp7Oj08A==?=)",
	      "Nathaniel Borenstein <nsb@thumper.bellcore.com> (םולש ןב ילטפנ)");
}

static void
test_rfc_display_examples(void **state)
{
	(void)state;
	check("(=?ISO-8859-1?Q?a?=)", "(a)");
	check("(=?ISO-8859-1?Q?a?= b)", "(a b)");
	check("(=?ISO-8859-1?Q?a?= =?ISO-8859-1?Q?b?=)", "(ab)");
	check("(=?ISO-8859-1?Q?a?=  =?ISO-8859-1?Q?b?=)", "(ab)");
	check("(=?ISO-8859-1?Q?a?=\r\n    =?ISO-8859-1?Q?b?=)", "(ab)");
	check("(=?ISO-8859-1?Q?a_b?=)", "(a b)");
	check("(=?ISO-8859-1?Q?a?= =?ISO-8859-2?Q?_b?=)", "(a b)");
}

/* RFC 2231 §5: charset "*" language */
static void
test_language_suffix(void **state)
{
	(void)state;
	check("=?US-ASCII*EN?Q?Keith_Moore?=", "Keith Moore");
	check("=?utf-8*de-DE?B?R3LDvMOfZQ==?=", "Grüße");
	same("=?utf-8*?Q?a?="); /* empty language */
}

/* ---- charsets ---------------------------------------------------------------------- */

static void
test_charsets(void **state)
{
	(void)state;
	check("=?UTF-8?B?R3LDvMOfZQ==?=", "Grüße");
	check("=?utf-8?q?Gr=C3=BC=C3=9Fe?=", "Grüße");
	check("=?utf8?Q?=F0=9F=98=80?=", "😀");
	check("=?ISO-8859-1?Q?=E9t=E9?=", "été");
	check("=?latin1?Q?=E9?=", "é");
	check("=?ISO-8859-15?B?pHVybw==?=", "€uro");
	check("=?ISO-8859-15?Q?=A4=BD?=", "€œ");
	check("=?windows-1252?B?k3F1b3RlZJQ=?=", "“quoted”");
	check("=?Windows-1252?Q?=80=85=99?=", "€…™");
	/* ISO-8859-1 and US-ASCII are read as Windows-1252 (what senders mean) */
	check("=?ISO-8859-1?Q?=93x=94?=", "“x”");
	check("=?us-ascii?Q?=E9?=", "é");
	check("=?KOI8-R?B?8NLJ18XU?=", "Привет");
	check("=?koi8-r?Q?=F0=D2=C9=D7=C5=D4?=", "Привет");
	check("=?ISO-2022-JP?B?GyRCJWEhPCVrGyhC?=", "メール");
	check("=?ISO-2022-JP?B?GyRCJEgkJCQmJWEhPCVrGyhC?=", "というメール");
	check("=?Shift_JIS?B?k/qWe4zq?=", "日本語");
	check("=?SHIFT-JIS?Q?=93=FA=96=7B=8C=EA?=", "日本語");
	check("=?GB2312?B?1tDOxA==?=", "中文");
	check("=?gbk?B?1tDOxA==?=", "中文");
	check("=?GB18030?B?lTKCNg==?=", "𠀀");
	check("=?EUC-KR?B?x9Gxub7u?=", "한국어");
	check("=?ks_c_5601-1987?B?x9Gxub7u?=", "한국어");
	check("=?Big5?B?pKSk5Q==?=", "中文");
	check("=?UTF-16BE?B?AGEAYg==?=", "ab");
	check("=?ISO-8859-7?Q?=E1=E2=E3?=", "αβγ");
	check("=?iso-8859-8-i?b?7eXs+SDv4SDp7Oj08A==?=", "םולש ןב ילטפנ");
}

/* A stateful charset whose word ends in the two-byte mode: adjacent words of one charset
 * are one byte string, so the mode carries over into the next word (as some Japanese
 * mailers expect when they split a run); with text between, each word starts afresh. */
static void
test_iso2022_unterminated(void **state)
{
	(void)state;
	check("=?ISO-2022-JP?B?GyRCJWEhPCVr?= x", "メール x");
	/* "ab" is one JIS X 0208 character, "c" half of one */
	check("=?ISO-2022-JP?B?GyRCJWEhPCVr?= =?ISO-2022-JP?Q?abc?=", "メール痰\xEF\xBF\xBD");
	check("=?ISO-2022-JP?B?GyRCJWEhPCVr?= x =?ISO-2022-JP?Q?abc?=", "メール x abc");
	/* a lone shift sequence */
	check("=?ISO-2022-JP?Q?=1B$B?=", "");
}

/* Bytes the charset does not define become U+FFFD; the rest of the word survives. */
static void
test_invalid_bytes_in_charset(void **state)
{
	(void)state;
	check("=?utf-8?q?x=FFy?=", "x\xEF\xBF\xBDy");
	check("=?utf-8?q?=ED=A0=80?=", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"); /* surrogate */
	check("=?utf-8?q?=C0=AF?=", "\xEF\xBF\xBD\xEF\xBF\xBD");                /* overlong */
	check("=?Shift_JIS?Q?a=81?=", "a\xEF\xBF\xBD"); /* lead byte cut off */
	check_n("=?KOI8-R?Q?a=00b?=", 18, "a\0b", 3);
	check_n("=?utf-8?q?a=00b?=", 17, "a\0b", 3);
}

/* ---- joining ----------------------------------------------------------------------- */

static void
test_adjacent_words(void **state)
{
	(void)state;
	/* one character split over two words of the same charset */
	check("=?utf-8?q?=C3?= =?utf-8?q?=A9?=", "é");
	check("=?UTF-8?B?w6k=?==?utf-8?B?w6k=?=", "éé");
	check("=?utf-8?b?4oK=?= =?UTF-8?b?rA==?=", "€");
	/* tabs and line breaks between words go too */
	check("=?utf-8?q?a?=\t \t=?utf-8?q?b?=", "ab");
	check("=?utf-8?q?a?=\n =?utf-8?q?b?=", "ab");
	/* different charsets: space dropped, each converted on its own */
	check("=?koi8-r?q?=F0?= =?iso-8859-1?q?=E9?=", "Пé");
	/* text between words keeps its space */
	check("=?utf-8?q?a?= b =?utf-8?q?c?=", "a b c");
	check("=?utf-8?q?a?= - =?utf-8?q?c?=", "a - c");
	/* white space around words at the ends is kept */
	check("  =?utf-8?q?a?=  ", "  a  ");
	check("x =?utf-8?q?a?= =?utf-8?q?b?= y", "x ab y");
	/* an underscore is a space that is not dropped */
	check("=?utf-8?q?a_?= =?utf-8?q?_b?=", "a  b");
	/* encoded-words glued to text are decoded */
	check("foo=?utf-8?q?bar?=baz", "foobarbaz");
	check("[=?utf-8?q?x?=]", "[x]");
	check("\"=?utf-8?q?quoted?=\" <a@b>", "\"quoted\" <a@b>");
}

/* An invalid word between two valid ones is plain text with its spaces. */
static void
test_invalid_between(void **state)
{
	(void)state;
	check("=?utf-8?q?a?= =?x-unknown?q?b?= =?utf-8?q?c?=", "a =?x-unknown?q?b?= c");
	check("=?utf-8?q?a?= =?utf-8?b?!?= =?utf-8?q?c?=", "a =?utf-8?b?!?= c");
	check("=?utf-8?q?a?= =? =?utf-8?q?c?=", "a =? c");
}

/* ---- what stays as written --------------------------------------------------------- */

static void
test_bad_base64(void **state)
{
	(void)state;
	same("=?utf-8?b?!!!!?=");
	same("=?utf-8?B?Y?=");      /* one sextet cannot make a byte */
	same("=?utf-8?B?YWJjZ?=");  /* five */
	same("=?utf-8?B?=YQ==?=");  /* data after padding */
	same("=?utf-8?B?YQ==YQ?="); /* data after padding */
	same("=?utf-8?B?Y-Q=?=");
	same("x =?utf-8?B?Y?= y");
	/* missing padding is fine; so is padding in excess */
	check("=?utf-8?B?YQ?=", "a");
	check("=?utf-8?B?YWI?=", "ab");
	check("=?utf-8?B?YQ===?=", "a");
	/* SP inside a B word is skipped */
	check("=?utf-8?B?YW Jj?=", "abc");
}

static void
test_bad_q(void **state)
{
	(void)state;
	same("=?utf-8?q?a=Zb?=");
	same("=?utf-8?q?a=?=");
	same("=?utf-8?q?a=4?=");
	same("=?utf-8?q?=G0?=");
	/* lower-case hex, SP inside, any printable character */
	check("=?utf-8?q?=c3=a9?=", "é");
	check("=?utf-8?q?a b?=", "a b");
	check("=?utf-8?q?(x)+<y>*!?=", "(x)+<y>*!");
	/* empty encoded-text */
	check("=?utf-8?q?\?=", ""); /* "\?": "??=" would be a trigraph */
	check("a =?utf-8?q?\?= =?utf-8?q?b?=", "a b");
}

static void
test_unknown_charset(void **state)
{
	(void)state;
	same("=?x-unknown?q?abc?=");
	same("=?unknown-8bit?b?YWJj?=");
	same("=?x-unknown?q?a?= =?x-unknown?q?b?=");
	same("=?UTF-8//TRANSLIT?q?a?="); /* "/" is not a charset character */
	same("=?UTF-8 ?q?a?=");
	/* 64 characters is the longest charset name we try */
	same("=?aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa?q?a?=");
}

static void
test_malformed_words(void **state)
{
	(void)state;
	same("=?");
	same("a =? b");
	same("=?=");
	same("?=");
	same("=??q?a?=");          /* no charset */
	same("=?utf-8?x?a?=");     /* no such encoding */
	same("=?utf-8?qq?a?=");    /* encoding longer than one letter */
	same("=?utf-8?q?abc");     /* no end */
	same("=?utf-8?q?a?b?=");   /* "?" inside */
	same("=?utf-8?q?a?");      /* cut before "=" */
	same("=?utf-8?q?a\001?="); /* control character inside */
	same("=?utf-8");
	same("=?utf-8?");
	same("=?utf-8?q");
	same("=?utf-8?q?");
	same("====??????");
	/* a malformed word, then a good one right after */
	check("=?=?utf-8?q?a?=", "=?a");
	check("=?utf-8?q?x=?utf-8?q?a?=", "=?utf-8?q?xa");
}

/* ---- text outside encoded-words ---------------------------------------------------- */

static void
test_raw_text(void **state)
{
	(void)state;
	same("");
	same("plain ascii subject");
	same("Grüße, 日本語 and 😀"); /* valid UTF-8 stays */
	check("caf\xE9", "café");    /* Latin-1 */
	check("\x93quoted\x94", "“quoted”");
	check("\x80 100", "€ 100");
	check("\x81\x8D\x8F\x90\x9D", "\xC2\x81\xC2\x8D\xC2\x8F\xC2\x90\xC2\x9D");
	check("\xFF\xFE", "ÿþ");
	check("\xC3", "Ã");                  /* cut UTF-8 sequence */
	check("\xC3(", "Ã(");                /* bad continuation */
	check("\xC0\xAF", "À¯");             /* overlong */
	check("\xED\xA0\x80", "í\xC2\xA0€"); /* surrogate */
	check("\xF4\x90\x80\x80", "ô\xC2\x90€€");
	check("Gr\374\337e =?utf-8?q?=C3=A9?=", "Grüße é"); /* octal: \xDFe is one escape */
	/* mixed: valid sequences kept, others converted one byte at a time */
	check("é\xE9", "éé");
	check_n("a\0b", 3, "a\0b", 3);
	same("tab\tand\r\nnewline");
}

/* ---- limits ------------------------------------------------------------------------ */

static void
test_cap(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 4);
	errno = 0;
	assert_int_equal(rfc2047_decode("abcdef", 6, &b), -1);
	assert_int_equal(errno, E2BIG);
	assert_true(b.len <= 4);
	buf_free(&b);

	buf_init(&b, 4);
	assert_int_equal(rfc2047_decode("=?utf-8?q?abcdef?=", 18, &b), -1);
	assert_int_equal(errno, E2BIG);
	buf_free(&b);

	/* a U+FFFD that does not fit: nothing half-written */
	buf_init(&b, 2);
	assert_int_equal(rfc2047_decode("=?utf-8?q?a=FF?=", 16, &b), -1);
	assert_int_equal(errno, E2BIG);
	assert_true(utf8_valid((const unsigned char *)b.data, b.len));
	buf_free(&b);

	buf_init(&b, 3);
	assert_int_equal(rfc2047_decode("\xE9\xE9", 2, &b), -1);
	assert_int_equal(b.len, 2);
	assert_memory_equal(b.data, "é", 2);
	buf_free(&b);

	/* exactly at the cap is fine; appending keeps what was there */
	buf_init(&b, 5);
	assert_int_equal(buf_append_str(&b, "xy"), 0);
	assert_int_equal(rfc2047_decode("=?utf-8?q?abc?=", 15, &b), 0);
	assert_string_equal(b.data, "xyabc");
	buf_free(&b);
}

/* Many words, long words, a long value. */
static void
test_long_input(void **state)
{
	(void)state;
	struct buf in, want, out;
	buf_init(&in, 1 << 22);
	buf_init(&want, 1 << 22);
	buf_init(&out, 1 << 22);
	for (int i = 0; i < 20000; i++) {
		assert_int_equal(buf_append_str(&in, "=?utf-8?q?=C3=A9_?= "), 0);
		assert_int_equal(buf_append_str(&want, "é "), 0);
	}
	assert_int_equal(buf_append_str(&want, " "), 0); /* the space after the last word */
	assert_int_equal(rfc2047_decode(in.data, in.len, &out), 0);
	assert_int_equal(out.len, want.len);
	assert_memory_equal(out.data, want.data, want.len);

	/* one word of 100,000 characters (the 75 limit is not enforced) */
	buf_reset(&in);
	buf_reset(&want);
	buf_reset(&out);
	assert_int_equal(buf_append_str(&in, "=?utf-8?q?"), 0);
	for (int i = 0; i < 100000; i++) {
		assert_int_equal(buf_append_str(&in, "x"), 0);
		assert_int_equal(buf_append_str(&want, "x"), 0);
	}
	assert_int_equal(buf_append_str(&in, "?="), 0);
	assert_int_equal(rfc2047_decode(in.data, in.len, &out), 0);
	assert_int_equal(out.len, want.len);

	/* many "=?" that never finish */
	buf_reset(&in);
	buf_reset(&out);
	for (int i = 0; i < 50000; i++)
		assert_int_equal(buf_append_str(&in, "=?a?q?"), 0);
	assert_int_equal(rfc2047_decode(in.data, in.len, &out), 0);
	assert_int_equal(out.len, in.len);
	assert_memory_equal(out.data, in.data, in.len);
	buf_free(&in);
	buf_free(&want);
	buf_free(&out);
}

/* Random pieces of encoded-words and random bytes: the output is always valid UTF-8. */
static void
test_random_valid_utf8(void **state)
{
	(void)state;
	static const char *const pieces[] = {
	    "=?",         "?=",     "?",           "=",         "utf-8",  "UTF-8",
	    "iso-8859-1", "koi8-r", "ISO-2022-JP", "Shift_JIS", "gb2312", "utf-16",
	    "x-bad",      "?q?",    "?B?",         "?b?",       "=C3",    "=A9",
	    "=FF",        "=00",    "_",           " ",         "\t",     "\r\n ",
	    "YQ==",       "w6k=",   "GyRC",        "GyhC",      "\xE9",   "\xC3",
	    "\xA9",       "\x80",   "\xF0\x9F",    "\x98\x80",  "a",      "*en",
	};
	unsigned seed = 20260101;
	struct buf in, out;
	buf_init(&in, 4096);
	buf_init(&out, 1 << 16);
	for (int iter = 0; iter < 20000; iter++) {
		buf_reset(&in);
		buf_reset(&out);
		int n = rand_r(&seed) % 24;
		for (int i = 0; i < n; i++) {
			if (rand_r(&seed) % 5 == 0) {
				unsigned char c = (unsigned char)rand_r(&seed);
				assert_int_equal(buf_append(&in, &c, 1), 0);
			} else {
				const char *p =
				    pieces[rand_r(&seed) % (sizeof(pieces) / sizeof(pieces[0]))];
				assert_int_equal(buf_append_str(&in, p), 0);
			}
		}
		assert_int_equal(rfc2047_decode(in.data ? in.data : "", in.len, &out), 0);
		assert_true(utf8_valid((const unsigned char *)out.data, out.len));
	}
	buf_free(&in);
	buf_free(&out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rfc_header_examples),
	    cmocka_unit_test(test_rfc_display_examples),
	    cmocka_unit_test(test_language_suffix),
	    cmocka_unit_test(test_charsets),
	    cmocka_unit_test(test_iso2022_unterminated),
	    cmocka_unit_test(test_invalid_bytes_in_charset),
	    cmocka_unit_test(test_adjacent_words),
	    cmocka_unit_test(test_invalid_between),
	    cmocka_unit_test(test_bad_base64),
	    cmocka_unit_test(test_bad_q),
	    cmocka_unit_test(test_unknown_charset),
	    cmocka_unit_test(test_malformed_words),
	    cmocka_unit_test(test_raw_text),
	    cmocka_unit_test(test_cap),
	    cmocka_unit_test(test_long_input),
	    cmocka_unit_test(test_random_valid_utf8),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
