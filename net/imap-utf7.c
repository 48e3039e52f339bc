/* imap-utf7.c - modified UTF-7 mailbox names (RFC 3501 §5.1.3), see imap-utf7.h.
 *
 * What it does: converts mailbox names between UTF-8 and modified UTF-7, in both
 * directions strictly, so that decode and encode are inverse bijections on what they
 * accept: a name has exactly one encoding.
 *
 * What it does not do: no hierarchy handling (the delimiter is just a character here), no
 * Unicode normalisation, no escaping for file names (fs/ does that), no UTF8=ACCEPT
 * (RFC 6855) names, which are plain UTF-8 and need no conversion.
 */
#include "net/imap-utf7.h"
#include "net/utf8.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* "&" is followed by modified BASE64: RFC 2045 BASE64 with "," instead of "/". */
static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

static int
b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == ',')
		return 63;
	return -1;
}

/* "printable US-ASCII characters, except for "&", represent themselves" */
static bool
is_direct(unsigned char c)
{
	return c >= 0x20 && c <= 0x7e;
}

static char *
utf8_put(char *o, uint32_t cp)
{
	if (cp < 0x80) {
		*o++ = (char)cp;
	} else if (cp < 0x800) {
		*o++ = (char)(0xc0 | cp >> 6);
		*o++ = (char)(0x80 | (cp & 0x3f));
	} else if (cp < 0x10000) {
		*o++ = (char)(0xe0 | cp >> 12);
		*o++ = (char)(0x80 | (cp >> 6 & 0x3f));
		*o++ = (char)(0x80 | (cp & 0x3f));
	} else {
		*o++ = (char)(0xf0 | cp >> 18);
		*o++ = (char)(0x80 | (cp >> 12 & 0x3f));
		*o++ = (char)(0x80 | (cp >> 6 & 0x3f));
		*o++ = (char)(0x80 | (cp & 0x3f));
	}
	return o;
}

/* Appends one UTF-16 unit to a base64 run. */
static char *
b64_put(char *o, uint32_t unit, uint32_t *bits, unsigned *nbits)
{
	*bits = (*bits << 16 | unit) & 0x3fffff; /* at most 4 + 16 bits are pending */
	*nbits += 16;
	while (*nbits >= 6) {
		*nbits -= 6;
		*o++ = b64[*bits >> *nbits & 0x3f];
	}
	return o;
}

char *
imap_utf7_encode(const char *utf8)
{
	const unsigned char *s = (const unsigned char *)utf8;
	size_t len = strlen(utf8);
	char *out = NULL, *o;
	int err = EINVAL;

	/* worst case: "ä" (2 bytes) becomes "&AOQ-" (5) */
	if (len > (SIZE_MAX - 1) / 3) {
		err = ENOMEM;
		goto fail;
	}
	out = malloc(len * 3 + 1);
	if (out == NULL) {
		err = ENOMEM;
		goto fail;
	}
	o = out;
	while (*s != '\0') {
		if (is_direct(*s)) {
			/* "&" is represented by the two-octet sequence "&-" */
			*o++ = (char)*s;
			if (*s++ == '&')
				*o++ = '-';
			continue;
		}
		if (*s < 0x80)
			goto fail; /* a control character */
		/* "Other characters ... are represented in modified BASE64", one run for
		 * all that follow each other, closed by "-" */
		uint32_t bits = 0;
		unsigned nbits = 0;
		*o++ = '&';
		while (*s >= 0x80) {
			/* NUL-terminated: the NUL ends a sequence before anything past it is read */
			size_t n = utf8_seq_len(s, 4);
			if (n == 0)
				goto fail;
			uint32_t cp = utf8_decode(s, n);
			s += n;
			if (cp >= 0x10000) {
				cp -= 0x10000;
				o = b64_put(o, 0xd800 | cp >> 10, &bits, &nbits);
				o = b64_put(o, 0xdc00 | (cp & 0x3ff), &bits, &nbits);
			} else {
				o = b64_put(o, cp, &bits, &nbits);
			}
		}
		if (nbits > 0)
			*o++ = b64[(bits << (6 - nbits)) & 0x3f]; /* zero padding bits */
		*o++ = '-';
	}
	*o = '\0';
	return out;
fail:
	free(out);
	errno = err;
	return NULL;
}

char *
imap_utf7_decode(const char *mutf7)
{
	const unsigned char *s = (const unsigned char *)mutf7;
	size_t len = strlen(mutf7);
	bool after_run = false;
	char *out = NULL, *o;
	int err = EINVAL;

	/* 16 bits (2.67 base64 characters) give at most 3 bytes of UTF-8 */
	if (len > (SIZE_MAX - 1) / 2) {
		err = ENOMEM;
		goto fail;
	}
	out = malloc(len * 2 + 1);
	if (out == NULL) {
		err = ENOMEM;
		goto fail;
	}
	o = out;
	while (*s != '\0') {
		if (!is_direct(*s))
			goto fail; /* a raw 8-bit byte or control character */
		if (*s != '&') {
			*o++ = (char)*s++;
			after_run = false;
			continue;
		}
		s++;
		if (*s == '-') {
			*o++ = '&';
			s++;
			after_run = false;
			continue;
		}
		/* an encoder writes one run for consecutive characters, never two */
		if (after_run)
			goto fail;
		uint32_t bits = 0, high = 0;
		unsigned nbits = 0;
		for (; *s != '-'; s++) {
			int v = b64_value(*s);
			if (v < 0)
				goto fail; /* not base64, or the end without "-" */
			bits = (bits << 6 | (uint32_t)v) & 0x3fffff;
			nbits += 6;
			if (nbits < 16)
				continue;
			nbits -= 16;
			uint32_t u = bits >> nbits & 0xffff;
			if (high != 0) {
				/* a high surrogate must be followed by a low one */
				if (u < 0xdc00 || u > 0xdfff)
					goto fail;
				o = utf8_put(o, 0x10000 + ((high - 0xd800) << 10) + (u - 0xdc00));
				high = 0;
			} else if (u >= 0xd800 && u <= 0xdbff) {
				high = u;
			} else if (u >= 0xdc00 && u <= 0xdfff) {
				goto fail; /* a low surrogate alone */
			} else if (u < 0x80) {
				goto fail; /* ASCII must stand for itself */
			} else {
				o = utf8_put(o, u);
			}
		}
		s++;
		/* nothing left over but up to 4 zero padding bits; no surrogate open */
		if (high != 0 || nbits >= 6 || (bits & ((1u << nbits) - 1)) != 0)
			goto fail;
		after_run = true;
	}
	*o = '\0';
	return out;
fail:
	free(out);
	errno = err;
	return NULL;
}
