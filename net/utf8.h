/* utf8.h - UTF-8 sequences as RFC 3629 defines them: the one helper every layer uses to
 * check, cut and decode UTF-8 (cache/names, net/rfc2047, net/address, net/imap-utf7, and
 * the tests' checks of their output).
 *
 *   UTF8-1 = %x00-7F
 *   UTF8-2 = %xC2-DF UTF8-tail
 *   UTF8-3 = %xE0 %xA0-BF UTF8-tail / %xE1-EC 2( UTF8-tail ) /
 *            %xED %x80-9F UTF8-tail / %xEE-EF 2( UTF8-tail )
 *   UTF8-4 = %xF0 %x90-BF 2( UTF8-tail ) / %xF1-F3 3( UTF8-tail ) /
 *            %xF4 %x80-8F 2( UTF8-tail )
 *   UTF8-tail = %x80-BF                                              (RFC 3629 §4)
 *
 * So: shortest form only, no surrogates (U+D800-DFFF), nothing above U+10FFFF. Pure
 * functions over bytes, header-only so that a test or fuzz target that links one module
 * gets them without another source file. */
#ifndef MAILFS_UTF8_H
#define MAILFS_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Length (1-4) of the valid UTF-8 sequence at p[0..n), n >= 1, or 0 if none starts there.
 * It reads a byte only after the ones before it were valid, so a NUL-terminated string
 * may be passed with n larger than what is left of it: the NUL stops the sequence. */
static inline size_t
utf8_seq_len(const unsigned char *p, size_t n)
{
	unsigned char c = p[0];
	size_t need;
	unsigned char lo = 0x80, hi = 0xBF;

	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF)
		need = 2;
	else if (c >= 0xE0 && c <= 0xEF)
		need = 3;
	else if (c >= 0xF0 && c <= 0xF4)
		need = 4;
	else
		return 0;
	if (c == 0xE0)
		lo = 0xA0;
	else if (c == 0xED)
		hi = 0x9F;
	else if (c == 0xF0)
		lo = 0x90;
	else if (c == 0xF4)
		hi = 0x8F;
	if (n < need || p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < need; i++)
		if (p[i] < 0x80 || p[i] > 0xBF)
			return 0;
	return need;
}

/* The code point of a valid sequence of k bytes (k from utf8_seq_len). */
static inline uint32_t
utf8_decode(const unsigned char *p, size_t k)
{
	static const unsigned char lead_mask[5] = {0, 0x7F, 0x1F, 0x0F, 0x07};
	uint32_t cp = p[0] & lead_mask[k];
	for (size_t i = 1; i < k; i++)
		cp = cp << 6 | (p[i] & 0x3F);
	return cp;
}

/* Is s[0..n) UTF-8 from start to end? (n = 0: yes.) */
static inline bool
utf8_valid(const unsigned char *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		size_t k = utf8_seq_len(s + i, n - i);
		if (k == 0)
			return false;
		i += k;
	}
	return true;
}

#endif
