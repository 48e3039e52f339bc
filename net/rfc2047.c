/* rfc2047.c - RFC 2047 encoded-words to UTF-8 (see rfc2047.h).
 *
 * What it does: one pass over the value. Plain text is copied through a UTF-8 check that
 * turns each byte outside a valid sequence into its Windows-1252 character. At "=?" it
 * tries to read a whole encoded-word; if that works, the decoded bytes join a "group" of
 * adjacent words of the same charset, which is converted to UTF-8 in one go when the
 * group ends (different charset, plain text, or the end of the value). The white space
 * after a word is held back until we know whether another word follows (then it is
 * dropped, RFC 2047 §6.2) or not (then it is written).
 *
 * What it does not do: no header parsing, no unfolding, no trimming, no conversion of
 * the output to anything but UTF-8. Every byte written to `out` has been through
 * emit_utf8(), so the output is valid UTF-8 whatever iconv does.
 */
#include "net/rfc2047.h"
#include "net/utf8.h"

#include <errno.h>
#include <iconv.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#define MAX_CHARSET 64
#define REPLACEMENT "\xEF\xBF\xBD" /* U+FFFD */

/* How a byte that is not part of valid UTF-8 is shown. */
enum fallback {
	FALLBACK_CP1252,      /* its Windows-1252 character (raw text) */
	FALLBACK_REPLACEMENT, /* U+FFFD (decoded words: the charset said otherwise) */
};

enum group_kind {
	GROUP_NONE,   /* no word pending */
	GROUP_UTF8,   /* bytes are (meant to be) UTF-8: checked, not converted */
	GROUP_CP1252, /* US-ASCII, ISO-8859-1, Windows-1252: table lookup */
	GROUP_ICONV,  /* anything else: iconv */
};

/* The adjacent encoded-words of one charset, decoded but not converted yet. */
struct group {
	enum group_kind kind;
	char charset[MAX_CHARSET + 1]; /* as written, language suffix removed */
	iconv_t cd;                    /* GROUP_ICONV only; owned */
	struct buf bytes;              /* decoded bytes of the words so far */
};

/* One syntactically valid encoded-word, pointing into the input. */
struct word {
	size_t len; /* bytes of the whole word, "=?" to "?=" */
	char charset[MAX_CHARSET + 1];
	char encoding; /* 'B' or 'Q' */
	const char *text;
	size_t text_len;
};

/* Windows-1252 0x80-0x9F; the five holes (0x81, 0x8D, 0x8F, 0x90, 0x9D) map to the C1
 * control of the same number, as in the WHATWG Encoding Standard. 0xA0-0xFF are Latin-1. */
static const uint16_t cp1252_high[32] = {
    0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
    0x2039, 0x0152, 0x008D, 0x017D, 0x008F, 0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
    0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178,
};

/* Labels mail uses for a charset whose superset decodes more of what is really sent. */
static const struct {
	const char *label;
	enum group_kind kind;
	const char *iconv_name;
} charset_aliases[] = {
    {"utf-8", GROUP_UTF8, NULL},
    {"utf8", GROUP_UTF8, NULL},
    {"us-ascii", GROUP_CP1252, NULL},
    {"ascii", GROUP_CP1252, NULL},
    {"iso-8859-1", GROUP_CP1252, NULL},
    {"iso8859-1", GROUP_CP1252, NULL},
    {"iso_8859-1", GROUP_CP1252, NULL},
    {"latin1", GROUP_CP1252, NULL},
    {"l1", GROUP_CP1252, NULL},
    {"windows-1252", GROUP_CP1252, NULL},
    {"cp1252", GROUP_CP1252, NULL},
    {"gb2312", GROUP_ICONV, "GB18030"},
    {"gbk", GROUP_ICONV, "GB18030"},
    {"x-gbk", GROUP_ICONV, "GB18030"},
    {"shift_jis", GROUP_ICONV, "CP932"},
    {"shift-jis", GROUP_ICONV, "CP932"},
    {"sjis", GROUP_ICONV, "CP932"},
    {"x-sjis", GROUP_ICONV, "CP932"},
    {"ms_kanji", GROUP_ICONV, "CP932"},
    {"euc-kr", GROUP_ICONV, "CP949"},
    {"ks_c_5601-1987", GROUP_ICONV, "CP949"},
    {"iso-8859-8-i", GROUP_ICONV, "ISO-8859-8"},
};

/* ---- UTF-8 output ------------------------------------------------------------------ */

static int
put_cp(struct buf *out, uint32_t cp)
{
	unsigned char s[4];
	size_t n;

	if (cp < 0x80) {
		s[0] = (unsigned char)cp;
		n = 1;
	} else if (cp < 0x800) {
		s[0] = (unsigned char)(0xC0 | cp >> 6);
		s[1] = (unsigned char)(0x80 | (cp & 0x3F));
		n = 2;
	} else {
		s[0] = (unsigned char)(0xE0 | cp >> 12);
		s[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
		s[2] = (unsigned char)(0x80 | (cp & 0x3F));
		n = 3;
	}
	return buf_append(out, s, n);
}

/* Append p[0..n) to out, passing valid UTF-8 through and replacing every other byte as
 * `fb` says. Valid runs are appended in one piece. */
static int
emit_utf8(struct buf *out, const char *p, size_t n, enum fallback fb)
{
	const unsigned char *s = (const unsigned char *)p;
	size_t run = 0, i = 0;

	while (i < n) {
		size_t k = utf8_seq_len(s + i, n - i);
		if (k > 0) {
			i += k;
			continue;
		}
		if (buf_append(out, s + run, i - run) < 0)
			return -1;
		int rc;
		if (fb == FALLBACK_REPLACEMENT)
			rc = buf_append(out, REPLACEMENT, 3);
		else if (s[i] < 0xA0)
			rc = put_cp(out, cp1252_high[s[i] - 0x80]);
		else
			rc = put_cp(out, s[i]);
		if (rc < 0)
			return -1;
		run = ++i;
	}
	return buf_append(out, s + run, n - run);
}

/* Windows-1252 bytes to UTF-8 (every byte is a character, so nothing is replaced). */
static int
emit_cp1252(struct buf *out, const char *p, size_t n)
{
	size_t run = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c < 0x80)
			continue;
		if (buf_append(out, p + run, i - run) < 0 ||
		    put_cp(out, c < 0xA0 ? cp1252_high[c - 0x80] : c) < 0)
			return -1;
		run = i + 1;
	}
	return buf_append(out, p + run, n - run);
}

/* Convert with iconv, U+FFFD for what the charset calls invalid, then through
 * emit_utf8() in case iconv let something odd through. */
static int
emit_iconv(struct buf *out, iconv_t cd, const char *p, size_t n)
{
	char chunk[1024];
	char *in = (char *)p; /* iconv's prototype is not const-correct */
	size_t inleft = n;
	bool flushing = false;

	iconv(cd, NULL, NULL, NULL, NULL); /* initial shift state */
	for (;;) {
		char *o = chunk;
		size_t oleft = sizeof(chunk);
		size_t r = flushing ? iconv(cd, NULL, NULL, &o, &oleft)
				    : iconv(cd, &in, &inleft, &o, &oleft);
		int err = r == (size_t)-1 ? errno : 0;
		if (emit_utf8(out, chunk, (size_t)(o - chunk), FALLBACK_REPLACEMENT) < 0)
			return -1;
		if (err == E2BIG)
			continue; /* chunk full: go on from where iconv stopped */
		if (err == EILSEQ || err == EINVAL) {
			/* invalid, or incomplete at the end: one U+FFFD per byte skipped */
			if (buf_append(out, REPLACEMENT, 3) < 0)
				return -1;
			if (inleft > 0) {
				in++;
				inleft--;
			}
			continue;
		}
		if (flushing || err != 0)
			return 0;
		flushing = true; /* all input read: write the closing shift sequence, if any */
	}
}

/* ---- open iconv descriptors -------------------------------------------------------- */

/* Descriptors are kept open for the next header: opening one loads the charset's gconv
 * module (dlopen) and closing the last one unloads it, which cost more than decoding the
 * Subject (a sixth of a first sync's CPU time, Subjects in a dozen charsets). The cache
 * holds at most CD_CACHE descriptors, each used by one caller at a time; beyond that they
 * are opened and closed as before. */
#define CD_CACHE 16

static pthread_mutex_t cd_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
	char name[MAX_CHARSET + 1]; /* "" for a free slot */
	iconv_t cd;
	bool busy;
} cd_cache[CD_CACHE]; /* protected by cd_mu */

/* iconv_open("UTF-8", name), from the cache when a descriptor for `name` is free there. */
static iconv_t
cd_get(const char *name)
{
	int free_slot = -1;
	pthread_mutex_lock(&cd_mu);
	for (int i = 0; i < CD_CACHE; i++) {
		if (cd_cache[i].name[0] == '\0') {
			if (free_slot < 0)
				free_slot = i;
		} else if (!cd_cache[i].busy && strcmp(cd_cache[i].name, name) == 0) {
			cd_cache[i].busy = true;
			pthread_mutex_unlock(&cd_mu);
			return cd_cache[i].cd;
		}
	}
	iconv_t cd = iconv_open("UTF-8", name);
	if (cd != (iconv_t)-1 && free_slot >= 0 && strlen(name) <= MAX_CHARSET) {
		memcpy(cd_cache[free_slot].name, name, strlen(name) + 1);
		cd_cache[free_slot].cd = cd;
		cd_cache[free_slot].busy = true;
	}
	pthread_mutex_unlock(&cd_mu);
	return cd;
}

/* Give back a descriptor from cd_get (closed if it is not one of the cache's). */
static void
cd_put(iconv_t cd)
{
	if (cd == (iconv_t)-1)
		return;
	pthread_mutex_lock(&cd_mu);
	for (int i = 0; i < CD_CACHE; i++) {
		if (cd_cache[i].name[0] != '\0' && cd_cache[i].cd == cd) {
			cd_cache[i].busy = false;
			pthread_mutex_unlock(&cd_mu);
			return;
		}
	}
	pthread_mutex_unlock(&cd_mu);
	iconv_close(cd);
}

/* ---- groups of adjacent encoded-words ---------------------------------------------- */

static void
group_init(struct group *g, size_t cap)
{
	g->kind = GROUP_NONE;
	g->charset[0] = '\0';
	g->cd = (iconv_t)-1;
	buf_init(&g->bytes, cap);
}

/* Convert and append the pending words, and forget the charset. */
static int
group_flush(struct group *g, struct buf *out)
{
	int rc = 0;

	if (g->bytes.len > 0) {
		switch (g->kind) {
		case GROUP_UTF8:
			rc = emit_utf8(out, g->bytes.data, g->bytes.len, FALLBACK_REPLACEMENT);
			break;
		case GROUP_CP1252:
			rc = emit_cp1252(out, g->bytes.data, g->bytes.len);
			break;
		case GROUP_ICONV:
			rc = emit_iconv(out, g->cd, g->bytes.data, g->bytes.len);
			break;
		case GROUP_NONE:
			break;
		}
	}
	cd_put(g->cd);
	g->cd = (iconv_t)-1;
	g->kind = GROUP_NONE;
	g->charset[0] = '\0';
	buf_reset(&g->bytes);
	return rc;
}

static void
group_free(struct group *g)
{
	cd_put(g->cd);
	g->cd = (iconv_t)-1;
	buf_free(&g->bytes);
}

/* How to convert `charset`: its kind, and for GROUP_ICONV an open descriptor in *cd_r.
 * Returns false if iconv does not know it (or cannot open it now). */
static bool
charset_open(const char *charset, enum group_kind *kind_r, iconv_t *cd_r)
{
	const char *name = charset;

	*cd_r = (iconv_t)-1;
	for (size_t i = 0; i < sizeof(charset_aliases) / sizeof(charset_aliases[0]); i++) {
		if (strcasecmp(charset, charset_aliases[i].label) != 0)
			continue;
		*kind_r = charset_aliases[i].kind;
		if (*kind_r != GROUP_ICONV)
			return true;
		name = charset_aliases[i].iconv_name;
		break;
	}
	*kind_r = GROUP_ICONV;
	*cd_r = cd_get(name);
	return *cd_r != (iconv_t)-1;
}

/* ---- encoded-words ----------------------------------------------------------------- */

/* token = 1*<Any CHAR except SPACE, CTLs, and especials>            (RFC 2045 §5.1)
 * especials = "(" / ")" / "<" / ">" / "@" / "," / ";" / ":" / <"> / "/" / "[" / "]" /
 *             "?" / "." / "="                                        (RFC 2047 §2)
 * "." and ":" are allowed as well: real charset names use them ("ISO_8859-1:1987"). "/"
 * stays out, so iconv never sees "//TRANSLIT" or "//IGNORE" suffixes. "*" is not here:
 * it starts the RFC 2231 language. */
static bool
is_charset_char(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	return c != '\0' && strchr("!#$%&'+-^_`{|}~.:", c) != NULL;
}

/* encoded-text = 1*<Any printable ASCII character other than "?" or SPACE>  (§2)
 * plus SP and HTAB, which some mailers leave in. */
static bool
is_text_char(unsigned char c)
{
	return (c > 0x20 && c < 0x7F && c != '?') || c == ' ' || c == '\t';
}

/* Read the encoded-word syntax at p[0..n) (p starts with "=?"):
 *   encoded-word = "=?" charset "?" encoding "?" encoded-text "?="     (RFC 2047 §2)
 *   charset      = token ["*" language]                                (RFC 2231 §5)
 * Returns true and fills *w if the shape is right; the payload is not checked here. */
static bool
word_parse(const char *p, size_t n, struct word *w)
{
	size_t i = 2, cs = 0;

	while (i < n && is_charset_char((unsigned char)p[i])) {
		if (cs == MAX_CHARSET)
			return false;
		w->charset[cs++] = p[i++];
	}
	w->charset[cs] = '\0';
	if (cs == 0)
		return false;
	if (i < n && p[i] == '*') { /* language = token, e.g. "en-us" */
		size_t start = ++i;
		while (i < n && is_charset_char((unsigned char)p[i]))
			i++;
		if (i == start)
			return false;
	}
	if (i + 3 > n || p[i] != '?' || p[i + 2] != '?')
		return false;
	/* encoding = token; only "B" and "Q" are defined (§4) */
	w->encoding = (char)(p[i + 1] & ~0x20);
	if (w->encoding != 'B' && w->encoding != 'Q')
		return false;
	i += 3;
	w->text = p + i;
	while (i < n && is_text_char((unsigned char)p[i]))
		i++;
	if (i + 2 > n || p[i] != '?' || p[i + 1] != '=')
		return false;
	w->text_len = (size_t)(p + i - w->text);
	w->len = i + 2;
	return true;
}

static int
hex_value(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

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
	if (c == '/')
		return 63;
	return -1;
}

/* "B" encoding: base64 (RFC 2045 §6.8). Missing "=" padding is accepted; a character
 * outside the alphabet, data after "=", or a lone sextet at the end is not.
 * Returns 1 (decoded into dst), 0 (malformed) or -1 (dst's cap). */
static int
decode_b(const char *s, size_t n, struct buf *dst)
{
	uint32_t acc = 0;
	unsigned bits = 0, sextets = 0;
	bool padding = false;
	unsigned char o;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == ' ' || c == '\t')
			continue;
		if (c == '=') {
			padding = true;
			continue;
		}
		int v = b64_value(c);
		if (v < 0 || padding)
			return 0;
		sextets++;
		acc = (acc << 6 | (uint32_t)v) & 0xFFFFFF;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			o = (unsigned char)(acc >> bits);
			if (buf_append(dst, &o, 1) < 0)
				return -1;
		}
	}
	return sextets % 4 == 1 ? 0 : 1;
}

/* "Q" encoding (RFC 2047 §4.2): "=" 2(HEXDIG) is that octet, "_" is 0x20 whatever the
 * charset, anything else stands for itself. Returns 1, 0 (a bad "=") or -1 (cap). */
static int
decode_q(const char *s, size_t n, struct buf *dst)
{
	size_t run = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char o;
		size_t skip;
		if (s[i] == '_') {
			o = ' ';
			skip = 0;
		} else if (s[i] == '=') {
			if (n - i < 3)
				return 0;
			int hi = hex_value((unsigned char)s[i + 1]);
			int lo = hex_value((unsigned char)s[i + 2]);
			if (hi < 0 || lo < 0)
				return 0;
			o = (unsigned char)(hi << 4 | lo);
			skip = 2;
		} else {
			continue;
		}
		if (buf_append(dst, s + run, i - run) < 0 || buf_append(dst, &o, 1) < 0)
			return -1;
		i += skip;
		run = i + 1;
	}
	return buf_append(dst, s + run, n - run) < 0 ? -1 : 1;
}

/* Try the encoded-word at p[0..n). On success add its bytes to the group (after flushing
 * a group of another charset to out) and return its length. Return 0 if it is not a
 * valid word we can decode (the caller then copies it as text), with *err_r set to -1 if
 * the reason was a buffer error (errno set), else 0. */
static size_t
word_take(const char *p, size_t n, struct group *g, struct buf *scratch, struct buf *out,
	  int *err_r)
{
	struct word w;
	*err_r = 0;

	if (!word_parse(p, n, &w))
		return 0;
	buf_reset(scratch);
	int rc = w.encoding == 'B' ? decode_b(w.text, w.text_len, scratch)
				   : decode_q(w.text, w.text_len, scratch);
	if (rc <= 0) {
		*err_r = rc;
		return 0;
	}
	if (g->kind == GROUP_NONE || strcasecmp(g->charset, w.charset) != 0) {
		enum group_kind kind;
		iconv_t cd;
		if (!charset_open(w.charset, &kind, &cd))
			return 0; /* unknown charset: the word stays as written */
		if (group_flush(g, out) < 0) {
			cd_put(cd);
			*err_r = -1;
			return 0;
		}
		g->kind = kind;
		g->cd = cd;
		memcpy(g->charset, w.charset, sizeof(g->charset));
	}
	if (buf_append(&g->bytes, scratch->data, scratch->len) < 0) {
		*err_r = -1;
		return 0;
	}
	return w.len;
}

static bool
is_lws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

int
rfc2047_decode(const char *in, size_t len, struct buf *out)
{
	struct group g;
	struct buf scratch;
	size_t i = 0, text = 0; /* in[text..i) is plain text not written yet */
	size_t ws = 0;          /* white space after a word, held back, starts at in[ws] */
	bool after_word = false;
	int err = 0;

	/* Decoded bytes are never more than the encoded text they come from. */
	group_init(&g, len);
	buf_init(&scratch, len);
	while (i < len) {
		if (after_word && is_lws(in[i])) {
			i++;
			continue;
		}
		if (in[i] == '=' && i + 1 < len && in[i + 1] == '?') {
			/* Plain text before the word goes out first; a group ends with it. */
			if (i > text && !after_word) {
				if (group_flush(&g, out) < 0 ||
				    emit_utf8(out, in + text, i - text, FALLBACK_CP1252) < 0)
					goto fail;
				text = i;
			}
			size_t k = word_take(in + i, len - i, &g, &scratch, out, &err);
			if (err < 0)
				goto fail;
			if (k > 0) {
				/* white space between two words is dropped (§6.2) */
				i += k;
				text = i;
				ws = i;
				after_word = true;
				continue;
			}
		}
		if (after_word) {
			/* The white space after the last word was not followed by a word. */
			if (group_flush(&g, out) < 0)
				goto fail;
			text = ws;
			after_word = false;
		}
		i++;
	}
	if (group_flush(&g, out) < 0 || emit_utf8(out, in + text, len - text, FALLBACK_CP1252) < 0)
		goto fail;
	group_free(&g);
	buf_free(&scratch);
	return 0;
fail:
	err = errno;
	group_free(&g);
	buf_free(&scratch);
	errno = err;
	return -1;
}
