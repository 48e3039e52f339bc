/* smtp-reply.c - SMTP reply parser and EHLO keyword reader (see smtp-reply.h).
 *
 * A reply is collected line by line in the parser's own bounded buffers; the caller gets
 * a copy when the last line has arrived. It does no I/O and knows nothing of commands:
 * which codes a command expects is net/smtp.c's business.
 */
#include "net/smtp-reply.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

void
smtp_reply_parser_init(struct smtp_reply_parser *p)
{
	p->linelen = 0;
	memset(&p->cur, 0, sizeof(p->cur));
	p->textlen = 0;
	p->truncated = false;
	p->failed = false;
	p->err[0] = '\0';
}

static int __attribute__((format(printf, 2, 3)))
fail(struct smtp_reply_parser *p, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(p->err, sizeof(p->err), fmt, ap);
	va_end(ap);
	p->failed = true;
	return -1;
}

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* RFC 3463 §2: status-code = class "." subject "." detail, class = "2" / "4" / "5",
 * subject = 1*3digit, detail = 1*3digit; it must be followed by SP or the line end.
 * Returns its length (0: none), and only for the class `cls`. */
static size_t
enhanced_len(const char *s, size_t len, char cls)
{
	if (len < 5 || s[0] != cls || s[1] != '.')
		return 0;
	size_t i = 2;
	for (int part = 0; part < 2; part++) {
		size_t start = i;
		while (i < len && is_digit(s[i]) && i - start < 4)
			i++;
		if (i == start || i - start > 3)
			return 0;
		if (part == 0) {
			if (i >= len || s[i] != '.')
				return 0;
			i++;
		}
	}
	if (i < len && s[i] != ' ')
		return 0;
	return i;
}

/* Append text bytes, dropping what does not fit. Control bytes (but HT) become '?' unless
 * `raw` (the "\n" between lines). */
static void
append_text(struct smtp_reply_parser *p, const char *s, size_t len, bool raw)
{
	for (size_t i = 0; i < len; i++) {
		if (p->textlen >= sizeof(p->cur.text) - 1) {
			p->truncated = true;
			return;
		}
		unsigned char c = (unsigned char)s[i];
		if (!raw && ((c < 0x20 && c != '\t') || c == 0x7f))
			c = '?';
		p->cur.text[p->textlen++] = (char)c;
	}
}

/* After truncation, drop a UTF-8 sequence cut in the middle. */
static void
trim_partial_utf8(struct smtp_reply_parser *p)
{
	size_t n = p->textlen;
	size_t back = 0;
	while (back < 4 && back < n && ((unsigned char)p->cur.text[n - 1 - back] & 0xc0) == 0x80)
		back++;
	if (back == n)
		return;
	unsigned char lead = (unsigned char)p->cur.text[n - 1 - back];
	size_t want = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
	if (lead >= 0xc0 && back + 1 < want)
		p->textlen = n - 1 - back;
}

/* One line without its line end. Returns 1 when it completes the reply, 0 when more
 * lines follow, -1 on error. */
static int
process_line(struct smtp_reply_parser *p, const char *line, size_t len)
{
	if (len < 3 || !is_digit(line[0]) || !is_digit(line[1]) || !is_digit(line[2]))
		return fail(p, "reply line without a 3-digit code");
	/* Reply-code = %x32-35 %x30-35 %x30-39 */
	if (line[0] < '2' || line[0] > '5' || line[1] > '5')
		return fail(p, "reply code %.3s out of range", line);
	int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	bool last;
	if (len == 3 || line[3] == ' ')
		last = true;
	else if (line[3] == '-')
		last = false;
	else
		return fail(p, "malformed reply line: no space or '-' after the code %.3s", line);
	if (p->cur.nlines > 0 && p->cur.code != code)
		return fail(p, "code changed in a multi-line reply (%d then %d)", p->cur.code,
			    code);
	if (p->cur.nlines >= SMTP_REPLY_LINES_MAX)
		return fail(p, "more than %d lines in one reply", SMTP_REPLY_LINES_MAX);
	p->cur.code = code;
	const char *text = len > 4 ? line + 4 : "";
	size_t tlen = len > 4 ? len - 4 : 0;
	/* RFC 3463 / RFC 2034 §4: the enhanced code starts every line's text. */
	if (p->cur.nlines == 0 || p->cur.enhanced[0] != '\0') {
		size_t el = enhanced_len(text, tlen, line[0]);
		if (el > 0 && p->cur.nlines == 0) {
			memcpy(p->cur.enhanced, text, el);
			p->cur.enhanced[el] = '\0';
		}
		if (el > 0) {
			text += el;
			tlen -= el;
			if (tlen > 0) {
				text++;
				tlen--;
			}
		}
	}
	if (p->cur.nlines > 0)
		append_text(p, "\n", 1, true);
	append_text(p, text, tlen, false);
	p->cur.nlines++;
	return last ? 1 : 0;
}

enum smtp_parse
smtp_reply_parse(struct smtp_reply_parser *p, const char *data, size_t len, size_t *used,
		 struct smtp_reply *out, char *err, size_t errlen)
{
	size_t i = 0;
	enum smtp_parse r = SMTP_PARSE_MORE;
	*used = 0;
	if (p->failed)
		goto error;
	while (i < len) {
		const char *lf = memchr(data + i, '\n', len - i);
		size_t chunk = lf != NULL ? (size_t)(lf - (data + i)) : len - i;
		/* Room for SMTP_LINE_MAX bytes and a CR. */
		if (chunk > sizeof(p->line) - 1 - p->linelen) {
			*used = i;
			fail(p, "line longer than %d bytes", SMTP_LINE_MAX);
			goto error;
		}
		memcpy(p->line + p->linelen, data + i, chunk);
		p->linelen += chunk;
		i += chunk;
		if (lf == NULL)
			break;
		i++; /* the LF */
		size_t l = p->linelen;
		if (l > 0 && p->line[l - 1] == '\r')
			l--;
		p->linelen = 0;
		if (l > SMTP_LINE_MAX) {
			*used = i;
			fail(p, "line longer than %d bytes", SMTP_LINE_MAX);
			goto error;
		}
		int done = process_line(p, p->line, l);
		if (done < 0) {
			*used = i;
			goto error;
		}
		if (done) {
			if (p->truncated)
				trim_partial_utf8(p);
			p->cur.text[p->textlen] = '\0';
			memcpy(out, &p->cur, sizeof(*out));
			memset(&p->cur, 0, sizeof(p->cur));
			p->textlen = 0;
			p->truncated = false;
			*used = i;
			return SMTP_PARSE_DONE;
		}
	}
	*used = len;
	return r;
error:
	if (errlen > 0)
		snprintf(err, errlen, "%s", p->err);
	return SMTP_PARSE_ERROR;
}

/* ---- EHLO -------------------------------------------------------------------------- */

static bool
word_is(const char *w, size_t wl, const char *kw)
{
	return strlen(kw) == wl && strncasecmp(w, kw, wl) == 0;
}

static const char *
next_line(const char *p, const char **end_r)
{
	const char *nl = strchr(p, '\n');
	*end_r = nl != NULL ? nl : p + strlen(p);
	return nl != NULL ? nl + 1 : NULL;
}

/* The keyword of an extension line: up to SP, or up to '=' for the old "AUTH=" form. */
static size_t
keyword_len(const char *s, const char *end, bool *eq_r)
{
	size_t n = 0;
	*eq_r = false;
	while (s + n < end && s[n] != ' ' && s[n] != '=')
		n++;
	if (s + n < end && s[n] == '=')
		*eq_r = true;
	return n;
}

static unsigned
mech_bit(const char *w, size_t wl)
{
	if (word_is(w, wl, "PLAIN"))
		return SMTP_AUTH_BIT_PLAIN;
	if (word_is(w, wl, "LOGIN"))
		return SMTP_AUTH_BIT_LOGIN;
	if (word_is(w, wl, "XOAUTH2"))
		return SMTP_AUTH_BIT_XOAUTH2;
	if (word_is(w, wl, "CRAM-MD5"))
		return SMTP_AUTH_BIT_CRAM_MD5;
	return wl > 0 ? SMTP_AUTH_BIT_OTHER : 0;
}

static void
parse_mechs(struct smtp_ehlo *e, const char *s, const char *end)
{
	while (s < end) {
		while (s < end && s[0] == ' ')
			s++;
		const char *w = s;
		while (s < end && s[0] != ' ')
			s++;
		e->auth_mechs |= mech_bit(w, (size_t)(s - w));
	}
}

/* RFC 1870 §4: size-param = [1*DIGIT]; over UINT64_MAX or not digits: no usable limit. */
static uint64_t
parse_size(const char *s, const char *end)
{
	while (s < end && *s == ' ')
		s++;
	uint64_t v = 0;
	if (s == end)
		return 0;
	for (; s < end && *s != ' '; s++) {
		if (!is_digit(*s))
			return 0;
		unsigned d = (unsigned)(*s - '0');
		if (v > (UINT64_MAX - d) / 10)
			return 0;
		v = v * 10 + d;
	}
	return v;
}

void
smtp_ehlo_parse(const struct smtp_reply *r, struct smtp_ehlo *e)
{
	memset(e, 0, sizeof(*e));
	if (r->code / 100 != 2)
		return;
	const char *end;
	const char *line = next_line(r->text, &end); /* skip the greeting line */
	while (line != NULL) {
		const char *next = next_line(line, &end);
		bool eq;
		size_t kl = keyword_len(line, end, &eq);
		const char *args = line + kl + (line + kl < end ? 1 : 0);
		if (word_is(line, kl, "PIPELINING"))
			e->pipelining = true;
		else if (word_is(line, kl, "SIZE") && !eq) {
			e->size_offered = true;
			e->size = parse_size(args, end);
		} else if (word_is(line, kl, "8BITMIME"))
			e->eightbitmime = true;
		else if (word_is(line, kl, "SMTPUTF8"))
			e->smtputf8 = true;
		else if (word_is(line, kl, "STARTTLS"))
			e->starttls = true;
		else if (word_is(line, kl, "ENHANCEDSTATUSCODES"))
			e->enhancedstatuscodes = true;
		else if (word_is(line, kl, "AUTH")) {
			e->auth = true;
			parse_mechs(e, args, end);
		}
		line = next;
	}
}

bool
smtp_ehlo_has(const struct smtp_reply *r, const char *kw)
{
	if (r->code / 100 != 2)
		return false;
	const char *end;
	const char *line = next_line(r->text, &end);
	while (line != NULL) {
		const char *next = next_line(line, &end);
		bool eq;
		size_t kl = keyword_len(line, end, &eq);
		if (word_is(line, kl, kw))
			return true;
		line = next;
	}
	return false;
}
