/* pop3-reply.c - POP3 status line parser, multi-line body decoder and listing readers
 * (see pop3-reply.h).
 *
 * It does no I/O and knows nothing of commands: which command expects a multi-line body is
 * net/pop3.c's business. The body decoder is a byte-at-a-time state machine, so the
 * terminator "CRLF . CRLF" and stuffed dots are found wherever the input was split.
 */
#include "net/pop3-reply.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

void
pop3_status_parser_init(struct pop3_status_parser *p)
{
	p->linelen = 0;
	p->failed = false;
	p->err[0] = '\0';
}

static enum pop3_parse __attribute__((format(printf, 4, 5)))
status_fail(struct pop3_status_parser *p, char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(p->err, sizeof(p->err), fmt, ap);
	va_end(ap);
	p->failed = true;
	if (err && errlen > 0)
		snprintf(err, errlen, "%s", p->err);
	return POP3_PARSE_ERROR;
}

/* RFC 1939 §3: status indicator "+OK" / "-ERR", then optionally SP and text.
 * RFC 5034 §4: the SASL continuation "+" SP [base64] (or "+" alone). */
static enum pop3_parse
status_line(struct pop3_status_parser *p, const char *s, size_t n, struct pop3_status *out,
	    char *err, size_t errlen)
{
	size_t skip;
	enum pop3_status_kind kind;
	if (n >= 3 && strncasecmp(s, "+OK", 3) == 0 && (n == 3 || s[3] == ' ')) {
		kind = POP3_OK;
		skip = 3;
	} else if (n >= 4 && strncasecmp(s, "-ERR", 4) == 0 && (n == 4 || s[4] == ' ')) {
		kind = POP3_ERR;
		skip = 4;
	} else if (n >= 1 && s[0] == '+' && (n == 1 || s[1] == ' ')) {
		kind = POP3_CONT;
		skip = 1;
	} else {
		return status_fail(p, err, errlen, "status line neither +OK nor -ERR");
	}
	if (skip < n)
		skip++; /* the SP */
	out->kind = kind;
	out->code[0] = '\0';
	/* RFC 2449 §8: resp-code = "[" resp-level *("/" resp-level) "]",
	 * resp-level = 1*<any CHAR except SP, CR, LF, "[", "]">. */
	if (kind != POP3_CONT && skip < n && s[skip] == '[') {
		size_t i = skip + 1;
		while (i < n && s[i] != ']' && s[i] != ' ' && s[i] != '[' &&
		       (unsigned char)s[i] > 0x20 && (unsigned char)s[i] < 0x7f)
			i++;
		size_t clen = i - skip - 1;
		if (i < n && s[i] == ']' && clen > 0 && clen < sizeof(out->code)) {
			memcpy(out->code, s + skip + 1, clen);
			out->code[clen] = '\0';
			skip = i + 1;
			if (skip < n && s[skip] == ' ')
				skip++;
		}
	}
	size_t t = 0;
	for (size_t i = skip; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		out->text[t++] = ((c < 0x20 && c != '\t') || c == 0x7f) ? '?' : (char)c;
	}
	out->text[t] = '\0';
	return POP3_PARSE_DONE;
}

enum pop3_parse
pop3_status_parse(struct pop3_status_parser *p, const char *data, size_t len, size_t *used,
		  struct pop3_status *out, char *err, size_t errlen)
{
	*used = 0;
	if (p->failed) {
		if (err && errlen > 0)
			snprintf(err, errlen, "%s", p->err);
		return POP3_PARSE_ERROR;
	}
	for (size_t i = 0; i < len; i++) {
		char c = data[i];
		if (c == '\n') {
			size_t n = p->linelen;
			if (n > 0 && p->line[n - 1] == '\r')
				n--; /* CRLF; a bare LF is tolerated */
			*used = i + 1;
			p->linelen = 0;
			return status_line(p, p->line, n, out, err, errlen);
		}
		/* Room for the line and a CR before its LF. */
		if (p->linelen >= POP3_LINE_MAX + 1) {
			*used = i;
			return status_fail(p, err, errlen, "status line longer than %d bytes",
					   POP3_LINE_MAX);
		}
		p->line[p->linelen++] = c;
	}
	*used = len;
	return POP3_PARSE_MORE;
}

/* Body decoder states. */
enum {
	B_BOL,     /* at the beginning of a line */
	B_DOT,     /* "." at the beginning of a line */
	B_DOT_CR,  /* "." CR at the beginning of a line */
	B_LINE,    /* inside a line */
	B_LINE_CR, /* CR inside a line */
};

void
pop3_body_init(struct pop3_body *b, uint64_t max)
{
	b->state = B_BOL;
	b->total = 0;
	b->max = max;
	b->failed = false;
}

enum pop3_parse
pop3_body_decode(struct pop3_body *b, const char *data, size_t len, size_t *used, char *out,
		 size_t *outlen)
{
	size_t o = 0;
	*used = 0;
	*outlen = 0;
	if (b->failed)
		return POP3_PARSE_ERROR;
	for (size_t i = 0; i < len; i++) {
		char c = data[i];
		switch (b->state) {
		case B_BOL:
			if (c == '.') {
				b->state = B_DOT;
				break;
			}
			out[o++] = c;
			b->state = c == '\r' ? B_LINE_CR : c == '\n' ? B_BOL : B_LINE;
			break;
		case B_DOT:
			if (c == '\r') {
				b->state = B_DOT_CR;
				break;
			}
			if (c == '\n') { /* "." LF: a bare-LF terminator, tolerated */
				*used = i + 1;
				*outlen = o;
				b->total += o;
				return POP3_PARSE_DONE;
			}
			/* RFC 1939 §3: the termination octet is stripped and the line is kept. */
			out[o++] = c;
			b->state = B_LINE;
			break;
		case B_DOT_CR:
			if (c == '\n') {
				*used = i + 1;
				*outlen = o;
				b->total += o;
				return POP3_PARSE_DONE;
			}
			/* "." CR then not LF: the dot was stuffing, the CR is content. */
			out[o++] = '\r';
			out[o++] = c;
			b->state = c == '\r' ? B_LINE_CR : c == '\n' ? B_BOL : B_LINE;
			break;
		case B_LINE:
			out[o++] = c;
			if (c == '\r')
				b->state = B_LINE_CR;
			else if (c == '\n')
				b->state = B_BOL;
			break;
		case B_LINE_CR:
			out[o++] = c;
			b->state = c == '\n' ? B_BOL : c == '\r' ? B_LINE_CR : B_LINE;
			break;
		}
		if (b->max != 0 && b->total + o > b->max) {
			/* Never pass on more than the cap. */
			b->failed = true;
			*used = i + 1;
			*outlen = (size_t)(b->max - b->total);
			b->total = b->max;
			return POP3_PARSE_ERROR;
		}
	}
	*used = len;
	*outlen = o;
	b->total += o;
	return POP3_PARSE_MORE;
}

/* Digits to a number, with overflow checks; returns the digits read (0: none/overflow). */
static size_t
read_number(const char *s, size_t len, uint64_t limit, uint64_t *v_r)
{
	uint64_t v = 0;
	size_t i = 0;
	while (i < len && s[i] >= '0' && s[i] <= '9') {
		unsigned d = (unsigned)(s[i] - '0');
		if (v > (limit - d) / 10)
			return 0;
		v = v * 10 + d;
		i++;
	}
	*v_r = v;
	return i;
}

/* unique-id-listing = msg SP unique-id; unique-id = 1*70 %x21-7E (RFC 1939 §7). */
bool
pop3_uidl_line(const char *line, size_t len, uint32_t *msg_r, char *uid_r, size_t uidcap)
{
	uint64_t msg;
	size_t i = read_number(line, len, UINT32_MAX, &msg);
	if (i == 0 || msg == 0 || i >= len || line[i] != ' ')
		return false;
	i++;
	size_t start = i;
	while (i < len && (unsigned char)line[i] >= 0x21 && (unsigned char)line[i] <= 0x7e)
		i++;
	size_t n = i - start;
	if (n == 0 || n > 70 || i != len || n + 1 > uidcap)
		return false;
	memcpy(uid_r, line + start, n);
	uid_r[n] = '\0';
	*msg_r = (uint32_t)msg;
	return true;
}

/* scan-listing = msg SP octets [SP ...] (RFC 1939 §5). */
bool
pop3_list_line(const char *line, size_t len, uint32_t *msg_r, uint64_t *size_r)
{
	uint64_t msg, size;
	size_t i = read_number(line, len, UINT32_MAX, &msg);
	if (i == 0 || msg == 0 || i >= len || line[i] != ' ')
		return false;
	i++;
	size_t n = read_number(line + i, len - i, UINT64_MAX, &size);
	if (n == 0)
		return false;
	i += n;
	if (i != len && line[i] != ' ')
		return false;
	*msg_r = (uint32_t)msg;
	*size_r = size;
	return true;
}

/* capability = capa-tag *(SP param) (RFC 2449 §6). */
bool
pop3_capa_is(const char *line, const char *kw, const char **args_r)
{
	size_t k = strlen(kw);
	if (strncasecmp(line, kw, k) != 0 || (line[k] != '\0' && line[k] != ' '))
		return false;
	if (args_r) {
		const char *a = line + k;
		while (*a == ' ')
			a++;
		*args_r = a;
	}
	return true;
}
