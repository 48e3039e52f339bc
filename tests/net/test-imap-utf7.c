/* test-imap-utf7.c - unit tests for net/imap-utf7.c.
 *
 * Known pairs from RFC 3501 and real servers in both directions, round trips over random
 * valid UTF-8, and every kind of input the strict decoder and encoder must refuse.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>

#include <cmocka.h>

#include "net/imap-utf7.h"

struct pair {
	const char *utf8;
	const char *mutf7;
};

static const struct pair pairs[] = {
    {"", ""},
    {"INBOX", "INBOX"},
    /* RFC 3501 §5.1.3 */
    {"~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e",
     "~peter/mail/&U,BTFw-/&ZeVnLIqe-"},
    /* Dovecot's German "Drafts" */
    {"Entw\xc3\xbcrfe", "Entw&APw-rfe"},
    {"&", "&-"},
    {"&&", "&-&-"},
    {"a&b", "a&-b"},
    {"\xc3\xa4&\xc3\xb6", "&AOQ-&-&APY-"},
    {"\xc3\xa4-", "&AOQ--"},
    {"-&-", "-&--"},
    {"Ged\xc3\xa4\xc3\xa4", "Ged&AOQA5A-"},
    {"\xc3\xa4\xc3\xa4\xc3\xa4", "&AOQA5ADk-"},
    {"Sp\xc3\xa4m/Gel\xc3\xb6scht", "Sp&AOQ-m/Gel&APY-scht"},
    {"\xd0\x92\xd1\x85\xd0\xbe\xd0\xb4\xd1\x8f\xd1\x89\xd0\xb8\xd0\xb5",
     "&BBIERQQ+BDQETwRJBDgENQ-"},
    /* "+" and "," are base64 characters but stand for themselves outside a run */
    {"a+b,c", "a+b,c"},
    {" \x7e", " ~"},
    /* non-BMP: surrogate pairs (U+1F600, U+1F4E7, U+10FFFF, U+10000) */
    {"\xf0\x9f\x98\x80", "&2D3eAA-"},
    {"Mail \xf0\x9f\x93\xa7!", "Mail &2D3c5w-!"},
    {"\xf4\x8f\xbf\xbf", "&2,,f,w-"},
    {"\xf0\x90\x80\x80", "&2ADcAA-"},
    {"\xc2\x80", "&AIA-"},
    {"\xef\xbf\xbd", "&,,0-"},
};

static void
test_pairs(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
		char *e = imap_utf7_encode(pairs[i].utf8);
		assert_non_null(e);
		assert_string_equal(e, pairs[i].mutf7);
		char *d = imap_utf7_decode(pairs[i].mutf7);
		assert_non_null(d);
		assert_string_equal(d, pairs[i].utf8);
		free(e);
		free(d);
	}
}

static void
expect_decode_error(const char *in)
{
	errno = 0;
	char *d = imap_utf7_decode(in);
	if (d != NULL)
		fail_msg("\"%s\" decoded to \"%s\"", in, d);
	assert_int_equal(errno, EINVAL);
}

static void
test_decode_invalid(void **state)
{
	static const char *const bad[] = {
	    "&",          /* unterminated */
	    "a&",         /* unterminated */
	    "&AOQ",       /* unterminated run */
	    "&AOQ-&",     /* unterminated */
	    "&A-",        /* 6 bits: broken run */
	    "&AO-",       /* 12 bits: broken run */
	    "&AOQA-",     /* 16 + 6 bits: broken run */
	    "&AOR-",      /* padding bits not zero */
	    "&AOX-",      /* padding bits not zero */
	    "&AOQA5B-",   /* padding bits not zero after two units */
	    "&AGE-",      /* "a" encoded */
	    "&ACY-",      /* "&" encoded */
	    "&AAA-",      /* NUL encoded */
	    "&AAo-",      /* LF encoded */
	    "&AH8-",      /* DEL encoded */
	    "&AOQAYQ-",   /* "äa": ASCII inside a run */
	    "&AOQ-&APY-", /* two runs back to back */
	    "&AO*-",      /* not base64 */
	    "&AO/-",      /* "/" is not modified base64 */
	    "&AO=-",      /* no padding in modified base64 */
	    "&AO Q-",     /* space in a run */
	    "\xc3\xa4",   /* raw 8-bit */
	    "a\x80",      /* raw 8-bit */
	    "a\tb",       /* control */
	    "a\x7f",      /* DEL */
	    "&2D0-",      /* lone high surrogate at the end */
	    "&2D3YPQ-",   /* high surrogate followed by a high one */
	    "&2D0AYQ-",   /* high surrogate followed by ASCII */
	    "&2D0A5A-",   /* high surrogate followed by a BMP character */
	    "&3gA-",      /* lone low surrogate */
	    "&AOTeAA-",   /* BMP character, then a low surrogate */
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_decode_error(bad[i]);
}

static void
expect_encode_error(const char *in)
{
	errno = 0;
	char *e = imap_utf7_encode(in);
	if (e != NULL)
		fail_msg("invalid UTF-8 encoded to \"%s\"", e);
	assert_int_equal(errno, EINVAL);
}

static void
test_encode_invalid(void **state)
{
	static const char *const bad[] = {
	    "\x80",                     /* continuation byte alone */
	    "a\xc3",                    /* truncated */
	    "\xc3(",                    /* bad continuation */
	    "\xe6\x97",                 /* truncated */
	    "\xf0\x9f\x98",             /* truncated */
	    "\xc0\xaf",                 /* overlong "/" */
	    "\xc1\xbf",                 /* overlong */
	    "\xe0\x80\xaf",             /* overlong */
	    "\xf0\x80\x80\xaf",         /* overlong */
	    "\xed\xa0\x80",             /* surrogate U+D800 */
	    "\xed\xbf\xbf",             /* surrogate U+DFFF */
	    "\xed\xa0\xbd\xed\xb8\x80", /* CESU-8 surrogate pair */
	    "\xf4\x90\x80\x80",         /* above U+10FFFF */
	    "\xf8\x88\x80\x80\x80",     /* 5 bytes */
	    "\xfe",
	    "\xff",
	    "a\tb", /* control characters */
	    "\r\n",
	    "\x7f",
	    "\x1b[0m",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_encode_error(bad[i]);
}

static uint32_t
rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return (uint32_t)(*s >> 32);
}

/* A random code point: printable ASCII, "&", Latin, CJK, or beyond the BMP. */
static uint32_t
random_char(uint64_t *seed)
{
	for (;;) {
		uint32_t cp;
		switch (rnd(seed) % 6) {
		case 0:
			cp = 0x20 + rnd(seed) % 0x5f;
			break;
		case 1:
			cp = '&';
			break;
		case 2:
			cp = 0x80 + rnd(seed) % 0x780;
			break;
		case 3:
			cp = 0x800 + rnd(seed) % 0xf800;
			break;
		default:
			cp = 0x10000 + rnd(seed) % 0x100000;
			break;
		}
		if (cp < 0xd800 || cp > 0xdfff)
			return cp;
	}
}

static size_t
put_utf8(char *o, uint32_t cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xc0 | cp >> 6);
		o[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xe0 | cp >> 12);
		o[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		o[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | cp >> 18);
	o[1] = (char)(0x80 | (cp >> 12 & 0x3f));
	o[2] = (char)(0x80 | (cp >> 6 & 0x3f));
	o[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

static void
test_round_trip(void **state)
{
	uint64_t seed = 0x1234567;

	(void)state;
	for (int i = 0; i < 20000; i++) {
		char in[4 * 40 + 1];
		size_t n = 0, chars = rnd(&seed) % 40;
		for (size_t k = 0; k < chars; k++)
			n += put_utf8(in + n, random_char(&seed));
		in[n] = '\0';

		char *e = imap_utf7_encode(in);
		assert_non_null(e);
		for (const char *c = e; *c != '\0'; c++)
			assert_true(*c >= 0x20 && *c <= 0x7e);
		char *d = imap_utf7_decode(e);
		assert_non_null(d);
		assert_string_equal(d, in);
		free(d);
		free(e);
	}
}

/* Random printable ASCII strings: whatever decodes must encode back to itself. */
static void
test_decode_unique(void **state)
{
	static const char alphabet[] = "&-A,+Dd2930/OQab";
	uint64_t seed = 99;
	int decoded = 0;

	(void)state;
	for (int i = 0; i < 200000; i++) {
		char in[13];
		size_t n = rnd(&seed) % (sizeof(in) - 1);
		for (size_t k = 0; k < n; k++)
			in[k] = alphabet[rnd(&seed) % (sizeof(alphabet) - 1)];
		in[n] = '\0';
		char *d = imap_utf7_decode(in);
		if (d == NULL) {
			assert_int_equal(errno, EINVAL);
			continue;
		}
		decoded++;
		char *e = imap_utf7_encode(d);
		assert_non_null(e);
		assert_string_equal(e, in);
		free(e);
		free(d);
	}
	assert_true(decoded > 1000);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pairs),          cmocka_unit_test(test_decode_invalid),
	    cmocka_unit_test(test_encode_invalid), cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_decode_unique),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
