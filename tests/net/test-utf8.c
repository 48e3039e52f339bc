/* test-utf8.c - unit tests for net/utf8.h against an independent reference.
 *
 * The reference says what RFC 3629 says in other words than the code: a sequence is valid
 * when its lead and tail bytes have the bit patterns of their length, and the code point
 * they carry is not a surrogate, not above U+10FFFF, and would not fit in fewer bytes.
 * Every sequence of up to three bytes is tried, and every four-byte one over the leads
 * F0-F7 with the tail bytes at and around the edges of their range; every code point is
 * encoded and decoded.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "net/utf8.h"

/* Length a lead byte announces by its bit pattern: 1-4, or 0 (a tail byte or 11111xxx). */
static size_t
ref_lead_len(unsigned char c)
{
	if ((c & 0x80) == 0x00)
		return 1;
	if ((c & 0xE0) == 0xC0)
		return 2;
	if ((c & 0xF0) == 0xE0)
		return 3;
	if ((c & 0xF8) == 0xF0)
		return 4;
	return 0;
}

static size_t
ref_encode(uint32_t cp, unsigned char out[4])
{
	if (cp < 0x80) {
		out[0] = (unsigned char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (unsigned char)(0xC0 | cp >> 6);
		out[1] = (unsigned char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (unsigned char)(0xE0 | cp >> 12);
		out[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
		out[2] = (unsigned char)(0x80 | (cp & 0x3F));
		return 3;
	}
	out[0] = (unsigned char)(0xF0 | cp >> 18);
	out[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3F));
	out[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
	out[3] = (unsigned char)(0x80 | (cp & 0x3F));
	return 4;
}

/* Is p[0..k) exactly one valid sequence? */
static bool
ref_is_seq(const unsigned char *p, size_t k)
{
	if (ref_lead_len(p[0]) != k)
		return false;
	static const unsigned char payload[5] = {0, 0x7F, 0x1F, 0x0F, 0x07};
	uint32_t cp = p[0] & payload[k];
	for (size_t i = 1; i < k; i++) {
		if ((p[i] & 0xC0) != 0x80)
			return false;
		cp = cp << 6 | (p[i] & 0x3F);
	}
	if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return false;
	unsigned char again[4];
	return ref_encode(cp, again) == k; /* shortest form */
}

/* What utf8_seq_len(p, n) must say: the length of the valid sequence p starts with. */
static size_t
ref_seq_len(const unsigned char *p, size_t n)
{
	size_t k = ref_lead_len(p[0]);
	return k != 0 && k <= n && ref_is_seq(p, k) ? k : 0;
}

static void
test_up_to_three_bytes(void **state)
{
	(void)state;
	unsigned char p[3];
	unsigned long bad = 0, valid2 = 0, valid3 = 0;
	for (unsigned a = 0; a < 256; a++) {
		p[0] = (unsigned char)a;
		bad += utf8_seq_len(p, 1) != ref_seq_len(p, 1);
		for (unsigned b = 0; b < 256; b++) {
			p[1] = (unsigned char)b;
			size_t k2 = utf8_seq_len(p, 2);
			bad += k2 != ref_seq_len(p, 2);
			valid2 += k2 == 2;
			for (unsigned c = 0; c < 256; c++) {
				p[2] = (unsigned char)c;
				size_t k3 = utf8_seq_len(p, 3);
				bad += k3 != ref_seq_len(p, 3);
				valid3 += k3 == 3;
			}
		}
	}
	assert_int_equal(bad, 0);
	/* U+0080-07FF, and U+0800-FFFF without the 2048 surrogates */
	assert_int_equal(valid2, 0x800 - 0x80);
	assert_int_equal(valid3, 0x10000 - 0x800 - 0x800);
}

static void
test_four_bytes(void **state)
{
	(void)state;
	static const unsigned char edges[] = {0x00, 0x7F, 0x80, 0x81, 0x8F, 0x90,
					      0x9F, 0xA0, 0xBF, 0xC0, 0xFF};
	unsigned char p[4];
	unsigned long bad = 0;
	for (unsigned a = 0xF0; a <= 0xF7; a++) {
		p[0] = (unsigned char)a;
		for (unsigned b = 0; b < 256; b++) {
			p[1] = (unsigned char)b;
			for (unsigned c = 0; c < 256; c++) {
				p[2] = (unsigned char)c;
				for (size_t d = 0; d < sizeof(edges); d++) {
					p[3] = edges[d];
					for (size_t n = 1; n <= 4; n++)
						bad += utf8_seq_len(p, n) != ref_seq_len(p, n);
				}
			}
		}
	}
	assert_int_equal(bad, 0);
}

static void
test_every_code_point(void **state)
{
	(void)state;
	unsigned long bad = 0;
	for (uint32_t cp = 0; cp <= 0x10FFFF; cp++) {
		unsigned char p[4];
		size_t k = ref_encode(cp, p);
		bool surrogate = cp >= 0xD800 && cp <= 0xDFFF;
		size_t got = utf8_seq_len(p, k);
		if (surrogate)
			bad += got != 0;
		else
			bad += got != k || utf8_decode(p, k) != cp;
		/* One byte short is never a sequence (but a one-byte one). */
		if (k > 1)
			bad += utf8_seq_len(p, k - 1) != 0;
	}
	assert_int_equal(bad, 0);
}

static void
test_valid(void **state)
{
	(void)state;
	const char *good[] = {"", "plain ASCII", "Gr\xc3\xbc\xc3\x9f" "e", "\xe2\x82\xac 5",
			      "\xf0\x9f\x98\x80", "\xef\xbf\xbf\xf4\x8f\xbf\xbf"};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		assert_true(utf8_valid((const unsigned char *)good[i], strlen(good[i])));
	const char *badv[] = {"\x80", "\xc0\xaf", "\xc3", "ok\xe2\x82", "\xed\xa0\x80",
			      "\xf4\x90\x80\x80", "\xf8\x88\x80\x80\x80", "\xff", "a\xc3(b"};
	for (size_t i = 0; i < sizeof(badv) / sizeof(badv[0]); i++)
		assert_false(utf8_valid((const unsigned char *)badv[i], strlen(badv[i])));
	/* An embedded NUL is a valid one-byte sequence; the length decides. */
	assert_true(utf8_valid((const unsigned char *)"a\0b", 3));
	/* A NUL ends a sequence before anything past it is read (imap-utf7 relies on it). */
	const unsigned char cut[] = {0xE2, 0x82, 0x00};
	assert_int_equal(utf8_seq_len(cut, 4), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_up_to_three_bytes),
	    cmocka_unit_test(test_four_bytes),
	    cmocka_unit_test(test_every_code_point),
	    cmocka_unit_test(test_valid),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
