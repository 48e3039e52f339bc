/* msgprep.c - a message file to an SMTP envelope and header block (see msgprep.h).
 *
 * What it does: one pass finds where the header block ends (and checks that the file
 * starts with one); a second pass walks its fields, parses From, To, Cc and Bcc with
 * addr_list_parse() on the unfolded value, and copies every field to send with its line
 * endings made CRLF; the missing From, Date and Message-ID fields are appended last.
 * Linear in the header size except recipient deduplication (quadratic in the number of
 * distinct recipients, which is capped).
 *
 * What it does not do: no reading of the body (the caller streams it through
 * crlf_convert()), no dot-stuffing (the SMTP layer's job), no check of fields other than
 * the address fields, no re-encoding of 8-bit header text, no line length limit.
 */
#include "net/msgprep.h"
#include "net/address.h"
#include "net/buf.h"
#include "net/rfc2047.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_UNIQUE 200

static int __attribute__((format(printf, 3, 4)))
fail(char *err, size_t errlen, const char *fmt, ...)
{
	if (errlen > 0) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	errno = EINVAL;
	return -1;
}

static bool
is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

/* ftext = %d33-57 / %d59-126 ; printable US-ASCII except ":"   (RFC 5322 §3.6.8) */
static bool
is_ftext(char c)
{
	return c >= 33 && c <= 126 && c != ':';
}

/* One physical line: in[start..end) without its line ending; next is where the following
 * line starts (len when there is none); lf tells whether it ended in LF. */
struct line {
	size_t start, end, next;
	bool lf;
};

static struct line
line_at(const char *in, size_t len, size_t pos)
{
	struct line l = {pos, len, len, false};
	const char *lf = memchr(in + pos, '\n', len - pos);

	if (lf != NULL) {
		l.end = (size_t)(lf - in);
		l.next = l.end + 1;
		l.lf = true;
	}
	if (l.end > l.start && in[l.end - 1] == '\r')
		l.end--;
	return l;
}

/* field-name *WSP ":" at the start of the line: the offset of the colon, or 0 (a colon is
 * never at offset 0 of a line). */
static size_t
field_colon(const char *in, const struct line *l)
{
	size_t i = l->start;
	while (i < l->end && is_ftext(in[i]))
		i++;
	if (i == l->start)
		return 0;
	while (i < l->end && is_wsp(in[i]))
		i++;
	return i < l->end && in[i] == ':' ? i : 0;
}

/* One field of the header block: in[start..next) with its continuation lines and line
 * endings; the name is in[start..name_end), the value in[colon+1..vend). */
struct field {
	size_t start, name_end, colon, vend, next;
};

/* The field at pos, which the first pass found to start a field. */
static struct field
field_at(const char *in, size_t hdr_end, size_t pos)
{
	struct line l = line_at(in, hdr_end, pos);
	struct field f = {
	    .start = pos, .colon = field_colon(in, &l), .vend = l.end, .next = l.next};
	f.name_end = f.start;
	while (is_ftext(in[f.name_end]))
		f.name_end++;
	while (f.next < hdr_end && is_wsp(in[f.next])) {
		l = line_at(in, hdr_end, f.next);
		f.vend = l.end;
		f.next = l.next;
	}
	return f;
}

static bool
field_is(const char *in, const struct field *f, const char *name)
{
	size_t n = strlen(name);
	return f->name_end - f->start == n && strncasecmp(in + f->start, name, n) == 0;
}

/* The value of f unfolded (every line ending inside it removed), trimmed of SP/HTAB,
 * with a bare CR made SP, into b. */
static int
unfold(const char *in, const struct field *f, struct buf *b)
{
	size_t a = f->colon + 1;

	buf_reset(b);
	while (a < f->vend) {
		const char *lf = memchr(in + a, '\n', f->vend - a);
		size_t end = lf != NULL ? (size_t)(lf - in) : f->vend;
		size_t seg = end > a && lf != NULL && in[end - 1] == '\r' ? end - 1 : end;
		if (buf_append(b, in + a, seg - a) < 0)
			return -1;
		a = end + 1;
	}
	if (buf_append(b, "", 0) < 0)
		return -1;
	/* a bare CR reads as the SP it is sent as (see emit_field()) */
	for (char *cr = memchr(b->data, '\r', b->len); cr != NULL;
	     cr = memchr(cr, '\r', b->len - (size_t)(cr - b->data)))
		*cr = ' ';
	size_t s = 0;
	while (s < b->len && is_wsp(b->data[s]))
		s++;
	buf_consume(b, s);
	while (b->len > 0 && is_wsp(b->data[b->len - 1]))
		b->data[--b->len] = '\0';
	return 0;
}

/* Copy the lines of f to out, each ending in CRLF, a bare CR inside a line made SP. */
static int
emit_field(const char *in, size_t hdr_end, const struct field *f, struct buf *out)
{
	size_t pos = f->start;
	while (pos < f->next) {
		struct line l = line_at(in, hdr_end, pos);
		size_t a = l.start;
		while (a < l.end) {
			const char *cr = memchr(in + a, '\r', l.end - a);
			size_t stop = cr != NULL ? (size_t)(cr - in) : l.end;
			if (buf_append(out, in + a, stop - a) < 0)
				return -1;
			if (cr != NULL && buf_append(out, " ", 1) < 0)
				return -1;
			a = cr != NULL ? stop + 1 : stop;
		}
		if (buf_append(out, "\r\n", 2) < 0)
			return -1;
		pos = l.next;
	}
	return 0;
}

/* dot-atom-text of printable US-ASCII atext: what an id-left may be (RFC 5322 §3.6.4). */
static bool
valid_unique(const char *s)
{
	size_t n = s != NULL ? strlen(s) : 0;
	if (n == 0 || n > MAX_UNIQUE || s[0] == '.' || s[n - 1] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '.' ? s[i + 1] == '.'
			     : c <= 32 || c >= 127 || strchr("()<>[]:;@\\,.\"", c) != NULL)
			return false;
	}
	return true;
}

/* date-time = [ day-of-week "," ] date time [CFWS]          (RFC 5322 §3.3), in UTC */
static int
format_date(time_t now, struct buf *out)
{
	static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
	static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
					   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	struct tm tm;

	if (gmtime_r(&now, &tm) == NULL || tm.tm_year < 0 || tm.tm_year > 9999 - 1900 ||
	    tm.tm_wday < 0 || tm.tm_wday > 6 || tm.tm_mon < 0 || tm.tm_mon > 11) {
		errno = EINVAL;
		return -1;
	}
	return buf_printf(out, "Date: %s, %d %s %04d %02d:%02d:%02d +0000\r\n", days[tm.tm_wday],
			  tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
			  tm.tm_sec);
}

/* The fields msgprep_parse() looks at. */
enum kind { F_OTHER, F_TO, F_CC, F_BCC, F_FROM, F_DATE, F_MSGID, F_SUBJECT };
static const char *const kind_names[] = {
    [F_TO] = "To",           [F_CC] = "Cc",     [F_BCC] = "Bcc",
    [F_FROM] = "From",       [F_DATE] = "Date", [F_MSGID] = "Message-ID",
    [F_SUBJECT] = "Subject",
};

static enum kind
field_kind(const char *in, const struct field *f)
{
	for (enum kind k = F_TO; k <= F_SUBJECT; k++)
		if (field_is(in, f, kind_names[k]))
			return k;
	return F_OTHER;
}

/* The state of one msgprep_parse() call. */
struct prep {
	struct msgprep *out;
	size_t rcpt_cap;
	char *err;
	size_t errlen;
};

static int
add_rcpt(struct prep *p, const char *addr)
{
	struct msgprep *m = p->out;
	for (size_t i = 0; i < m->nrcpts; i++)
		if (addr_same(m->rcpts[i], addr))
			return 0;
	if (m->nrcpts >= MSGPREP_MAX_RCPTS)
		return fail(p->err, p->errlen, "more than %d recipients", MSGPREP_MAX_RCPTS);
	if (m->nrcpts == p->rcpt_cap) {
		size_t cap = p->rcpt_cap ? p->rcpt_cap * 2 : 8;
		char **v = realloc(m->rcpts, cap * sizeof(*v));
		if (v == NULL)
			return -1;
		m->rcpts = v;
		p->rcpt_cap = cap;
	}
	if ((m->rcpts[m->nrcpts] = strdup(addr)) == NULL)
		return -1;
	m->nrcpts++;
	return 0;
}

/* Parse the address list in value[0..len) for the field `what`; on EINVAL the message
 * becomes "<what>: <parser message>". */
static int
parse_list(struct prep *p, const char *what, const char *value, size_t len, struct addr_list *l)
{
	char msg[160];
	if (addr_list_parse(value, len, l, msg, sizeof(msg)) == 0)
		return 0;
	if (errno == EINVAL)
		return fail(p->err, p->errlen, "%s: %s", what, msg);
	return -1;
}

/* Where the header block ends (*hdr_end: just after the last field's line ending) and
 * where the body starts; or -1 with the reason. */
static int
find_header_end(struct prep *p, const char *in, size_t len, uint64_t total_len, size_t *hdr_end,
		uint64_t *body)
{
	size_t pos = 0, size;

	for (;;) {
		if (pos > MSGPREP_MAX_HEADER)
			return fail(p->err, p->errlen, "header block larger than 1 MiB");
		if (pos >= len && len == total_len) {
			/* the header runs to the end of the file */
			*hdr_end = len;
			*body = total_len;
			size = len;
			break;
		}
		struct line l = line_at(in, len, pos);
		if (pos >= len || (!l.lf && len < total_len)) {
			/* the header goes on past what we were given */
			if (len >= MSGPREP_MAX_HEADER)
				return fail(p->err, p->errlen, "header block larger than 1 MiB");
			return fail(p->err, p->errlen,
				    "header block incomplete: only %zu bytes given", len);
		}
		if (pos > 0 && l.end == l.start) {
			*hdr_end = l.start;
			*body = l.next;
			size = l.next;
			break;
		}
		if (field_colon(in, &l) == 0 && (pos == 0 || !is_wsp(in[l.start]))) {
			if (pos == 0)
				return fail(p->err, p->errlen,
					    "not a message: the file does not "
					    "start with a header block");
			/* not a field: the body starts here (see msgprep.h) */
			*hdr_end = l.start;
			*body = l.start;
			size = l.start;
			break;
		}
		pos = l.next;
	}
	if (size > MSGPREP_MAX_HEADER)
		return fail(p->err, p->errlen, "header block larger than 1 MiB");
	/* SMTP cannot carry a NUL (RFC 5321 §2.3.8 without BINARYMIME), and a header with one
	 * is most likely a binary file that happens to start like a field */
	const char *nul = memchr(in, '\0', *hdr_end);
	if (nul != NULL)
		return fail(p->err, p->errlen,
			    "not a message: NUL byte in the header block at "
			    "offset %zu",
			    (size_t)(nul - in));
	return 0;
}

/* The msg-id in a Message-ID value: the first "<...>", else the value in brackets. */
static char *
extract_msgid(const char *v, size_t n)
{
	const char *lt = memchr(v, '<', n);
	const char *gt = lt != NULL ? memchr(lt, '>', n - (size_t)(lt - v)) : NULL;
	char *id;

	if (gt != NULL)
		return strndup(lt, (size_t)(gt - lt) + 1);
	if (lt != NULL) {
		/* "<id" without its ">" */
		n -= (size_t)(lt + 1 - v);
		v = lt + 1;
	}
	if ((id = malloc(n + 3)) == NULL)
		return NULL;
	id[0] = '<';
	memcpy(id + 1, v, n);
	id[n + 1] = '>';
	id[n + 2] = '\0';
	return id;
}

int
msgprep_parse(const char *in, size_t len, uint64_t total_len, const char *default_from, time_t now,
	      const char *unique, struct msgprep *out, char *err, size_t errlen)
{
	struct prep p = {.out = out, .err = err, .errlen = errlen};
	struct buf hdr, value;
	struct addr_list l = {0};
	size_t hdr_end = 0;
	uint64_t body = 0;
	bool have_from = false, have_date = false;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (errlen > 0)
		err[0] = '\0';
	buf_init(&hdr, 2 * (size_t)MSGPREP_MAX_HEADER + 2 * MAX_UNIQUE + 1024 +
			   (default_from != NULL ? strlen(default_from) : 0));
	buf_init(&value, MSGPREP_MAX_HEADER);
	if (total_len < len)
		total_len = len;
	if (!valid_unique(unique)) {
		fail(err, errlen, "invalid unique string");
		goto out;
	}
	if (total_len == 0) {
		fail(err, errlen, "empty file");
		goto out;
	}
	if (len == 0) {
		fail(err, errlen, "header block incomplete: only 0 bytes given");
		goto out;
	}
	if (find_header_end(&p, in, len, total_len, &hdr_end, &body) < 0)
		goto out;
	out->body_offset = body;

	for (size_t pos = 0; pos < hdr_end;) {
		struct field f = field_at(in, hdr_end, pos);
		enum kind k = field_kind(in, &f);
		pos = f.next;
		if (k != F_OTHER && unfold(in, &f, &value) < 0)
			goto out;
		switch (k) {
		case F_TO:
		case F_CC:
		case F_BCC:
			if (parse_list(&p, kind_names[k], value.data, value.len, &l) < 0)
				goto out;
			for (size_t i = 0; i < l.n; i++)
				if (add_rcpt(&p, l.v[i].addr) < 0)
					goto out;
			addr_list_free(&l);
			break;
		case F_FROM:
			if (value.len == 0)
				continue; /* empty: replaced by the account's `from` */
			if (have_from)
				break;
			if (parse_list(&p, "From", value.data, value.len, &l) < 0)
				goto out;
			if (l.n == 0) {
				fail(err, errlen, "From: no address");
				goto out;
			}
			if ((out->env_from = strdup(l.v[0].addr)) == NULL)
				goto out;
			addr_list_free(&l);
			have_from = true;
			break;
		case F_DATE:
			if (value.len == 0)
				continue; /* empty: replaced */
			have_date = true;
			break;
		case F_MSGID:
			if (value.len == 0)
				continue; /* empty: replaced */
			if (out->message_id == NULL &&
			    (out->message_id = extract_msgid(value.data, value.len)) == NULL)
				goto out;
			break;
		case F_SUBJECT:
			if (out->subject == NULL) {
				struct buf s;
				buf_init(&s, 4 * value.len + 64);
				if (rfc2047_decode(value.data, value.len, &s) < 0 ||
				    buf_append(&s, "", 0) < 0) {
					buf_free(&s);
					goto out;
				}
				out->subject = s.data;
			}
			break;
		case F_OTHER:
			break;
		}
		if (k != F_BCC && emit_field(in, hdr_end, &f, &hdr) < 0)
			goto out;
	}

	if (out->nrcpts == 0) {
		fail(err, errlen, "no recipient: To, Cc and Bcc are missing or empty");
		goto out;
	}
	if (!have_from) {
		if (default_from == NULL) {
			fail(err, errlen, "no sender: no From field and the account has no `from`");
			goto out;
		}
		if (parse_list(&p, "account `from`", default_from, strlen(default_from), &l) < 0)
			goto out;
		if (l.n == 0) {
			fail(err, errlen, "account `from`: no address");
			goto out;
		}
		if ((out->env_from = strdup(l.v[0].addr)) == NULL)
			goto out;
		addr_list_free(&l);
		if (buf_printf(&hdr, "From: %s\r\n", default_from) < 0)
			goto out;
	}
	if (!have_date && format_date(now, &hdr) < 0) {
		if (errno == EINVAL)
			fail(err, errlen, "clock out of range");
		goto out;
	}
	if (out->message_id == NULL) {
		out->message_id = malloc(strlen(unique) + strlen(addr_domain(out->env_from)) + 4);
		if (out->message_id == NULL)
			goto out;
		sprintf(out->message_id, "<%s@%s>", unique, addr_domain(out->env_from));
		if (buf_printf(&hdr, "Message-ID: %s\r\n", out->message_id) < 0)
			goto out;
	}
	if (buf_append(&hdr, "\r\n", 2) < 0)
		goto out;

	out->smtputf8 = addr_is_8bit(out->env_from);
	for (size_t i = 0; i < out->nrcpts; i++)
		out->smtputf8 = out->smtputf8 || addr_is_8bit(out->rcpts[i]);
	out->header = hdr.data;
	out->header_len = hdr.len;
	hdr.data = NULL;
	rc = 0;
out:
	if (rc < 0) {
		int e = errno;
		if (e == E2BIG) {
			/* a cap meant never to be reached; report it as what it is about */
			fail(err, errlen, "header block larger than 1 MiB");
			e = EINVAL;
		}
		addr_list_free(&l);
		msgprep_free(out);
		errno = e;
	}
	buf_free(&hdr);
	buf_free(&value);
	return rc;
}

void
msgprep_free(struct msgprep *p)
{
	free(p->env_from);
	for (size_t i = 0; i < p->nrcpts; i++)
		free(p->rcpts[i]);
	free(p->rcpts);
	free(p->header);
	free(p->message_id);
	free(p->subject);
	memset(p, 0, sizeof(*p));
}

size_t
crlf_convert(struct crlf_state *st, const char *in, size_t len, char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		char c = in[i];
		if (st->pending_cr) {
			st->pending_cr = false;
			out[o++] = '\r';
			out[o++] = '\n';
			if (c == '\n')
				continue; /* CRLF */
		}
		if (c == '\r') {
			st->pending_cr = true;
		} else if (c == '\n') {
			out[o++] = '\r';
			out[o++] = '\n';
		} else {
			out[o++] = c;
		}
	}
	return o;
}

size_t
crlf_finish(struct crlf_state *st, char *out)
{
	if (!st->pending_cr)
		return 0;
	st->pending_cr = false;
	out[0] = '\r';
	out[1] = '\n';
	return 2;
}
