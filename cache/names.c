/* names.c - message and folder file names (see names.h).
 *
 * What it does: formats a message's name from its UID, INTERNALDATE and decoded Subject,
 * and escapes/unescapes mailbox name components so that every one is a single safe,
 * distinct directory entry.
 *
 * What it does not do: no modified UTF-7 (the caller decodes mailbox names first, see
 * net/imap-utf7.h), no uniqueness beyond what the UID gives, no lookup of names in the
 * cache, no Unicode normalisation (a name keeps the code points the server sent).
 */
#include "cache/names.h"

#include "net/buf.h"
#include "net/rfc2047.h"
#include "net/utf8.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

_Static_assert(sizeof(time_t) >= 8, "names_message needs a 64-bit time_t up to year 9999");

/* 1970-01-01T00:00:00Z and 9999-12-31T23:59:59Z */
#define DATE_MIN 0
#define DATE_MAX INT64_C(253402300799)
/* Decoded subjects larger than this are cut (far more than a name can show). */
#define DECODED_MAX ((size_t)64 * 1024)

static const char hex_digits[] = "0123456789ABCDEF";

/* Characters a subject's run of separators is made of: "/", controls, Unicode
 * White_Space, and bidirectional formatting characters. */
static bool
is_separator(uint32_t cp)
{
	if (cp == '/' || cp <= 0x20 || (cp >= 0x7F && cp <= 0xA0))
		return true; /* C0, SP, DEL, C1 (incl. U+0085 NEL), U+00A0 NBSP */
	switch (cp) {
	case 0x061C: /* ARABIC LETTER MARK */
	case 0x1680: /* OGHAM SPACE MARK */
	case 0x2028: /* LINE SEPARATOR */
	case 0x2029: /* PARAGRAPH SEPARATOR */
	case 0x202F: /* NARROW NO-BREAK SPACE */
	case 0x205F: /* MEDIUM MATHEMATICAL SPACE */
	case 0x3000: /* IDEOGRAPHIC SPACE */
		return true;
	default:
		break;
	}
	return (cp >= 0x2000 && cp <= 0x200A) || /* EN QUAD .. HAIR SPACE */
	       cp == 0x200E || cp == 0x200F ||   /* LRM, RLM */
	       (cp >= 0x202A && cp <= 0x202E) || /* LRE, RLE, PDF, LRO, RLO */
	       (cp >= 0x2066 && cp <= 0x2069);   /* LRI, RLI, FSI, PDI */
}

/* Write the sanitised subject s[0..n) (valid UTF-8) to dst, at most max bytes; returns
 * the length. Separator runs become one "-"; "-" at both ends are dropped. */
static size_t
subject_clean(const char *s, size_t n, char *dst, size_t max)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, len = 0;
	bool dash = false; /* a separator run since the last character written */

	while (i < n) {
		size_t k = utf8_seq_len(p + i, n - i);
		uint32_t cp = k > 0 ? utf8_decode(p + i, k) : 0; /* not UTF-8: a separator */
		if (k == 0)
			k = 1;
		if (is_separator(cp)) {
			dash = true;
			i += k;
			continue;
		}
		if (len == 0 && cp == '-') { /* leading "-" */
			i += k;
			continue;
		}
		size_t need = k + (dash && len > 0);
		if (need > max - len)
			break; /* cut on this code point boundary */
		if (dash && len > 0)
			dst[len++] = '-';
		memcpy(dst + len, p + i, k);
		len += k;
		dash = false;
		i += k;
	}
	while (len > 0 && dst[len - 1] == '-')
		len--;
	return len;
}

static bool
is_lws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

size_t
names_message(uint32_t uid, int64_t internaldate_utc, const char *subject, size_t subject_len,
	      char out[NAMES_MAX + 1])
{
	int64_t t = internaldate_utc;
	struct tm tm;
	struct buf dec;

	if (t < DATE_MIN)
		t = DATE_MIN;
	if (t > DATE_MAX)
		t = DATE_MAX;
	time_t tt = (time_t)t;
	gmtime_r(&tt, &tm);
	int n = snprintf(out, NAMES_MAX + 1, "%04d-%02d-%02d_%02d%02d_%u", tm.tm_year + 1900,
			 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, (unsigned)uid);
	size_t len = (size_t)n; /* at most 26: "9999-12-31_2359_4294967295" */

	/* Only the first NAMES_SUBJECT_INPUT_MAX bytes after leading white space. */
	while (subject_len > 0 && is_lws(*subject)) {
		subject++;
		subject_len--;
	}
	if (subject_len > NAMES_SUBJECT_INPUT_MAX)
		subject_len = NAMES_SUBJECT_INPUT_MAX;
	buf_init(&dec, DECODED_MAX);
	if (subject_len > 0)
		(void)rfc2047_decode(subject, subject_len, &dec); /* on error: what we have */

	/* "_" subject ".eml" must fit after the prefix */
	size_t room = NAMES_MAX - len - 1 - 4;
	size_t slen = dec.len > 0 ? subject_clean(dec.data, dec.len, out + len + 1, room) : 0;
	buf_free(&dec);
	if (slen > 0) {
		out[len] = '_';
		len += 1 + slen;
	}
	memcpy(out + len, ".eml", 5);
	return len + 4;
}

/* ---- folders ----------------------------------------------------------------------- */

/* A name under construction, at most NAMES_MAX bytes. */
struct esc {
	char s[NAMES_MAX + 1];
	size_t len;
	bool too_long;
};

static void
esc_put(struct esc *e, const void *p, size_t n)
{
	if (n > NAMES_MAX - e->len) {
		e->too_long = true;
		return;
	}
	memcpy(e->s + e->len, p, n);
	e->len += n;
}

static void
esc_hex(struct esc *e, const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char x[3] = {'%', hex_digits[p[i] >> 4], hex_digits[p[i] & 0xF]};
		esc_put(e, x, 3);
	}
}

/* Bytes starting at p that a folder name must not hold raw: 0 if the sequence there is
 * fine as it is (its length in *k_r), else the number of bytes to escape in *k_r. */
static bool
needs_escape(const unsigned char *p, size_t n, size_t *k_r)
{
	unsigned char c = p[0];

	*k_r = 1;
	if (c == '%' || c == '/' || c < 0x20 || c == 0x7F)
		return true;
	if (c < 0x80)
		return false;
	size_t k = utf8_seq_len(p, n);
	if (k == 0)
		return true; /* not UTF-8: this byte alone */
	*k_r = k;
	return k == 2 && c == 0xC2 && p[1] < 0xA0; /* C1 control U+0080-U+009F */
}

int
names_folder_escape(const char *name, size_t len, bool top_level, const char *reserved, char *out,
		    size_t outsize)
{
	const unsigned char *p = (const unsigned char *)name;
	struct esc e = {.len = 0, .too_long = false};
	size_t i = 0, k;

	if (len == 0) {
		esc_put(&e, "%", 1); /* the empty name: a lone "%" */
	} else if (len == 1 && name[0] == '.') {
		esc_put(&e, "%2E", 3);
	} else if (len == 2 && name[0] == '.' && name[1] == '.') {
		esc_put(&e, "%2E%2E", 6);
	} else {
		if (top_level && reserved != NULL && strlen(reserved) == len &&
		    memcmp(name, reserved, len) == 0) {
			/* the first character, all its bytes, so the result stays UTF-8 */
			needs_escape(p, len, &k);
			esc_hex(&e, p, k);
			i = k;
		}
		while (i < len && !e.too_long) {
			if (needs_escape(p + i, len - i, &k))
				esc_hex(&e, p + i, k);
			else
				esc_put(&e, p + i, k);
			i += k;
		}
	}
	if (e.too_long) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if (e.len + 1 > outsize) {
		errno = ERANGE;
		return -1;
	}
	memcpy(out, e.s, e.len);
	out[e.len] = '\0';
	return (int)e.len;
}

static int
upper_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
names_folder_unescape(const char *file, char *out, size_t outsize, size_t *len_r)
{
	const unsigned char *p = (const unsigned char *)file;
	size_t flen = strlen(file), i = 0, n = 0, k;

	if (strcmp(file, "%") == 0) {
		flen = 0; /* the empty name */
		i = 1;
	} else if (strcmp(file, ".") == 0 || strcmp(file, "..") == 0) {
		errno = EINVAL;
		return -1;
	}
	/* Each step writes at most as many bytes as it reads: flen + 1 is enough. */
	if (outsize == 0) {
		errno = ERANGE;
		return -1;
	}
	while (i < flen) {
		if (p[i] == '%') {
			int hi = upper_hex(file[i + 1]);
			int lo = hi < 0 ? -1 : upper_hex(file[i + 2]);
			if (lo < 0)
				goto invalid;
			if (n + 1 >= outsize)
				goto range;
			out[n++] = (char)(hi << 4 | lo);
			i += 3;
			continue;
		}
		if (needs_escape(p + i, flen - i, &k))
			goto invalid;
		if (k >= outsize - n)
			goto range;
		memcpy(out + n, p + i, k);
		n += k;
		i += k;
	}
	out[n] = '\0';
	*len_r = n;
	return 0;
invalid:
	errno = EINVAL;
	return -1;
range:
	errno = ERANGE;
	return -1;
}

int
names_folder_path(const char *utf8_name, char delim, const char *reserved, char *out,
		  size_t outsize)
{
	char comp[NAMES_MAX + 1];
	const char *s = utf8_name;
	size_t n = 0;
	bool first = true;

	for (;;) {
		const char *end = delim != '\0' ? strchr(s, delim) : NULL;
		size_t clen = end != NULL ? (size_t)(end - s) : strlen(s);
		int r = names_folder_escape(s, clen, first, reserved, comp, sizeof(comp));
		if (r < 0)
			return -1; /* ENAMETOOLONG: comp has room for any valid component */
		size_t need = (size_t)r + (first ? 0 : 1);
		if (outsize == 0 || need + 1 > outsize - n) {
			errno = ENAMETOOLONG;
			return -1;
		}
		if (!first)
			out[n++] = '/';
		memcpy(out + n, comp, (size_t)r);
		n += (size_t)r;
		out[n] = '\0';
		if (end == NULL)
			break;
		s = end + 1;
		first = false;
	}
	return (int)n;
}
