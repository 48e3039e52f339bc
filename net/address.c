/* address.c - RFC 5322 address lists to envelope addresses and display names (see
 * address.h).
 *
 * What it does: a lexer turns the value into tokens (atom, quoted-string, domain literal,
 * one special character), skipping CFWS and remembering whether some came before each
 * token; a recursive-descent parser with one token of lookahead reads the list. A run of
 * words and dots is collected once and read as a display name when "<" or ":" follows it
 * and as a local part when "@" follows it, so no backtracking is needed. Linear in len;
 * allocations are the result and two scratch buffers capped at a multiple of len.
 *
 * What it does not do: no recursion on the input's nesting (comments are skipped with a
 * depth counter, groups cannot nest), no decoding beyond rfc2047_decode() for names, no
 * knowledge of header fields.
 */
#include "net/address.h"
#include "net/buf.h"
#include "net/rfc2047.h"
#include "net/utf8.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum tok_kind {
	TOK_END,
	TOK_ATOM,    /* in[off..end) */
	TOK_QSTR,    /* in[off..end) including both quotes */
	TOK_DLIT,    /* in[off..end) including both brackets */
	TOK_SPECIAL, /* one of < > @ , ; : . ] */
};

struct tok {
	enum tok_kind kind;
	size_t off, end;
	char ch;        /* TOK_SPECIAL */
	bool ws_before; /* white space or a comment right before it */
};

struct parser {
	const char *in;
	size_t len;
	size_t pos;     /* where the lexer reads next */
	struct tok tok; /* the lookahead token, starting before pos */
	char *err;
	size_t errlen;
	struct addr_list *out;
	size_t cap; /* allocated entries of out->v */
	bool failed;
	/* a run of words and dots: display name or local part */
	struct buf name;  /* words joined with one SP where they were apart */
	struct buf local; /* the local part's value: words and dots, nothing between */
	struct buf text;  /* scratch: decoded names, the addr-spec being built */
};

/* The words and dots before "<", ":", "@" or the end of an element. */
struct phrase {
	size_t start, end; /* raw extent in the input */
	size_t nwords, ntoks;
	bool adjacent; /* two words without a dot between them: not a local part */
	bool last_word;
};

static int __attribute__((format(printf, 2, 3))) fail(struct parser *p, const char *fmt, ...)
{
	if (p->errlen > 0) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(p->err, p->errlen, fmt, ap);
		va_end(ap);
	}
	p->failed = true;
	errno = EINVAL;
	return -1;
}

static int
nomem(struct parser *p)
{
	if (p->errlen > 0)
		snprintf(p->err, p->errlen, "out of memory");
	p->failed = true;
	errno = ENOMEM;
	return -1;
}

/* atext = ALPHA / DIGIT / "!" / "#" / ... / "~"      (RFC 5322 §3.2.3)
 *       / UTF8-non-ascii                              (RFC 6532 §3.2)
 * Every printable US-ASCII character except the specials ()<>[]:;@\,." is atext. */
static bool
is_atext(unsigned char c)
{
	if (c >= 0x80)
		return true;
	if (c <= 32 || c == 127)
		return false;
	return strchr("()<>[]:;@\\,.\"", c) == NULL;
}

static bool
is_ctl(unsigned char c)
{
	return (c < 32 && c != '\t') || c == 127;
}

/* FWS = ([*WSP CRLF] 1*WSP): the length of a line break that is a fold at in[i] (CRLF or a
 * bare LF, followed by SP or HTAB), else 0. */
static size_t
fold_at(const char *in, size_t len, size_t i)
{
	if (i + 2 < len && in[i] == '\r' && in[i + 1] == '\n' &&
	    (in[i + 2] == ' ' || in[i + 2] == '\t'))
		return 2;
	if (i + 1 < len && in[i] == '\n' && (in[i + 1] == ' ' || in[i + 1] == '\t'))
		return 1;
	return 0;
}

static int
bad_byte(struct parser *p, size_t i)
{
	unsigned char c = (unsigned char)p->in[i];
	if (c == 0)
		return fail(p, "NUL byte at offset %zu", i);
	return fail(p, "control character 0x%02X at offset %zu", c, i);
}

/* comment = "(" *([FWS] ccontent) [FWS] ")"     ccontent = ctext / quoted-pair / comment
 * p->in[p->pos] is "(": skip to after the matching ")". */
static int
skip_comment(struct parser *p)
{
	size_t start = p->pos, i = p->pos + 1, depth = 1;

	while (depth > 0) {
		if (i >= p->len)
			return fail(p, "unbalanced '(' at offset %zu", start);
		unsigned char c = (unsigned char)p->in[i];
		size_t f = fold_at(p->in, p->len, i);
		if (f > 0) {
			i += f;
		} else if (c == '(') {
			depth++;
			i++;
		} else if (c == ')') {
			depth--;
			i++;
		} else if (c == '\\') {
			/* quoted-pair = ("\" (VCHAR / WSP)) / obs-qp */
			if (i + 1 >= p->len)
				return fail(p, "unbalanced '(' at offset %zu", start);
			if (is_ctl((unsigned char)p->in[i + 1]))
				return bad_byte(p, i + 1);
			i += 2;
		} else if (is_ctl(c)) {
			return bad_byte(p, i);
		} else {
			i++;
		}
	}
	p->pos = i;
	return 0;
}

/* quoted-string = [CFWS] DQUOTE *([FWS] qcontent) [FWS] DQUOTE [CFWS]
 * qcontent = qtext / quoted-pair. p->in[p->pos] is DQUOTE. */
static int
lex_quoted(struct parser *p)
{
	size_t start = p->pos, i = p->pos + 1;

	for (;;) {
		if (i >= p->len)
			return fail(p, "unbalanced '\"' at offset %zu", start);
		unsigned char c = (unsigned char)p->in[i];
		size_t f = fold_at(p->in, p->len, i);
		if (f > 0) {
			i += f;
		} else if (c == '"') {
			break;
		} else if (c == '\\') {
			if (i + 1 >= p->len)
				return fail(p, "unbalanced '\"' at offset %zu", start);
			if (is_ctl((unsigned char)p->in[i + 1]))
				return bad_byte(p, i + 1);
			i += 2;
		} else if (is_ctl(c)) {
			return bad_byte(p, i);
		} else {
			i++;
		}
	}
	p->tok.kind = TOK_QSTR;
	p->tok.end = i + 1;
	p->pos = i + 1;
	return 0;
}

/* domain-literal = [CFWS] "[" *([FWS] dtext) [FWS] "]" [CFWS]
 * dtext = %d33-90 / %d94-126 / UTF8-non-ascii. p->in[p->pos] is "[". The obsolete
 * quoted-pair in a literal is refused: an SMTP address-literal cannot carry it. */
static int
lex_literal(struct parser *p)
{
	size_t start = p->pos, i = p->pos + 1;

	for (;;) {
		if (i >= p->len)
			return fail(p, "unbalanced '[' at offset %zu", start);
		unsigned char c = (unsigned char)p->in[i];
		size_t f = fold_at(p->in, p->len, i);
		if (f > 0)
			i += f;
		else if (c == ']')
			break;
		else if (c == '[' || c == '\\')
			return fail(p, "unexpected '%c' in a domain literal at offset %zu", c, i);
		else if (is_ctl(c))
			return bad_byte(p, i);
		else
			i++;
	}
	p->tok.kind = TOK_DLIT;
	p->tok.end = i + 1;
	p->pos = i + 1;
	return 0;
}

/* Read the next token into p->tok. */
static int
lex(struct parser *p)
{
	bool ws = false;

	/* CFWS = (1*([FWS] comment) [FWS]) / FWS */
	while (p->pos < p->len) {
		char c = p->in[p->pos];
		size_t f = fold_at(p->in, p->len, p->pos);
		if (c == ' ' || c == '\t') {
			p->pos++;
		} else if (f > 0) {
			p->pos += f;
		} else if (c == '(') {
			if (skip_comment(p) < 0)
				return -1;
		} else {
			break;
		}
		ws = true;
	}
	p->tok.ws_before = ws;
	p->tok.off = p->pos;
	p->tok.end = p->pos;
	if (p->pos >= p->len) {
		p->tok.kind = TOK_END;
		return 0;
	}
	unsigned char c = (unsigned char)p->in[p->pos];
	if (c == '"')
		return lex_quoted(p);
	if (c == '[')
		return lex_literal(p);
	if (c == ')')
		return fail(p, "unbalanced ')' at offset %zu", p->pos);
	if (c == '\\')
		return fail(p, "unexpected '\\' at offset %zu", p->pos);
	if (is_ctl(c))
		return bad_byte(p, p->pos);
	if (strchr("<>@,;:.]", c) != NULL) {
		p->tok.kind = TOK_SPECIAL;
		p->tok.ch = (char)c;
		p->pos++;
		p->tok.end = p->pos;
		return 0;
	}
	size_t i = p->pos;
	while (i < p->len && is_atext((unsigned char)p->in[i]))
		i++;
	p->tok.kind = TOK_ATOM;
	p->tok.end = i;
	p->pos = i;
	return 0;
}

static bool
at_special(const struct parser *p, char ch)
{
	return p->tok.kind == TOK_SPECIAL && p->tok.ch == ch;
}

/* Append the value of the quoted-string in[off..end): quotes, backslashes of
 * quoted-pairs and the line breaks of folds removed. */
static int
append_unquoted(const char *in, size_t off, size_t end, struct buf *b)
{
	size_t i = off + 1, stop = end - 1;
	while (i < stop) {
		size_t f = fold_at(in, end, i);
		if (f > 0) {
			i += f;
			continue;
		}
		if (in[i] == '\\')
			i++;
		size_t j = i + 1;
		/* copy a run of ordinary bytes at once */
		while (j < stop && in[j] != '\\' && in[j] != '\r' && in[j] != '\n')
			j++;
		if (buf_append(b, in + i, j - i) < 0)
			return -1;
		i = j;
	}
	return 0;
}

/* The input text in[a..b) made fit for a one-line message: cut after about `max` bytes
 * (with "..."), line breaks dropped, HTAB as SP, bytes outside valid UTF-8 as "?". */
#define SHOW_MAX 60
struct shown {
	char s[SHOW_MAX + 8];
};

static size_t
utf8_seq(const unsigned char *s, size_t n)
{
	size_t k = s[0] >= 0xC2 && s[0] <= 0xDF   ? 2
		   : (s[0] & 0xF0) == 0xE0        ? 3
		   : s[0] >= 0xF0 && s[0] <= 0xF4 ? 4
						  : 0;
	if (k == 0 || k > n)
		return 0;
	for (size_t j = 1; j < k; j++)
		if ((s[j] & 0xC0) != 0x80)
			return 0;
	/* overlong 3- and 4-byte forms, surrogates, beyond U+10FFFF */
	if ((s[0] == 0xE0 && s[1] < 0xA0) || (s[0] == 0xED && s[1] >= 0xA0) ||
	    (s[0] == 0xF0 && s[1] < 0x90) || (s[0] == 0xF4 && s[1] >= 0x90))
		return 0;
	return k;
}

static const char *
show(const struct parser *p, size_t a, size_t b, size_t max, struct shown *sh)
{
	const unsigned char *in = (const unsigned char *)p->in;
	size_t o = 0;

	if (max > SHOW_MAX)
		max = SHOW_MAX;
	while (a < b) {
		size_t k = in[a] < 0x80 ? 1 : utf8_seq(in + a, b - a);
		if (o + (k ? k : 1) > max) {
			memcpy(sh->s + o, "...", 3);
			o += 3;
			break;
		}
		if (in[a] == '\r' || in[a] == '\n') {
			a++;
		} else if (k == 0 || in[a] < 32 || in[a] == 127) {
			sh->s[o++] = in[a] == '\t' ? ' ' : '?';
			a++;
		} else {
			memcpy(sh->s + o, in + a, k);
			o += k;
			a += k;
		}
	}
	sh->s[o] = '\0';
	return sh->s;
}

static void
trim_raw(const struct parser *p, size_t *a, size_t *b)
{
	while (*a < *b && (p->in[*a] == ' ' || p->in[*a] == '\t'))
		(*a)++;
	while (*b > *a && (p->in[*b - 1] == ' ' || p->in[*b - 1] == '\t'))
		(*b)--;
}

/* obs-phrase = word *(word / "." / CFWS), also read as obs-local-part = word *("." word).
 * Collects the run of atoms, quoted strings and dots at the lookahead into p->name and
 * p->local. */
static int
collect_phrase(struct parser *p, struct phrase *ph)
{
	memset(ph, 0, sizeof(*ph));
	ph->start = ph->end = p->tok.off;
	buf_reset(&p->name);
	buf_reset(&p->local);
	for (;;) {
		bool word = p->tok.kind == TOK_ATOM || p->tok.kind == TOK_QSTR;
		if (!word && !at_special(p, '.'))
			return 0;
		if (ph->ntoks > 0 && p->tok.ws_before && buf_append(&p->name, " ", 1) < 0)
			return nomem(p);
		int rc;
		if (p->tok.kind == TOK_QSTR) {
			rc = append_unquoted(p->in, p->tok.off, p->tok.end, &p->name);
			if (rc == 0)
				rc = append_unquoted(p->in, p->tok.off, p->tok.end, &p->local);
		} else {
			size_t n = p->tok.end - p->tok.off;
			rc = buf_append(&p->name, p->in + p->tok.off, n);
			if (rc == 0)
				rc = buf_append(&p->local, p->in + p->tok.off, n);
		}
		if (rc < 0)
			return nomem(p);
		if (word) {
			if (ph->last_word)
				ph->adjacent = true;
			ph->nwords++;
		}
		ph->last_word = word;
		ph->ntoks++;
		ph->end = p->tok.end;
		if (lex(p) < 0)
			return -1;
	}
}

/* dot-atom-text = 1*atext *("." 1*atext) */
static bool
is_dot_atom(const char *s, size_t n)
{
	if (n == 0 || s[0] == '.' || s[n - 1] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '.') {
			if (s[i + 1] == '.')
				return false;
		} else if (!is_atext((unsigned char)s[i])) {
			return false;
		}
	}
	return true;
}

/* Append the local part held in p->local to p->text: as it is when it is a dot-atom,
 * else as one quoted-string.
 *   Quoted-string = DQUOTE *QcontentSMTP DQUOTE                   (RFC 5321 §4.1.2) */
static int
put_local(struct parser *p, const struct phrase *ph)
{
	const char *s = p->local.data ? p->local.data : "";
	size_t n = p->local.len;

	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 32 || s[i] == 127)
			return fail(p, "control character in the local part of '%s' at offset %zu",
				    show(p, ph->start, ph->end, SHOW_MAX, &(struct shown){0}),
				    ph->start);
	if (is_dot_atom(s, n))
		return buf_append(&p->text, s, n) < 0 ? nomem(p) : 0;
	if (buf_append(&p->text, "\"", 1) < 0)
		return nomem(p);
	for (size_t i = 0; i < n; i++) {
		if ((s[i] == '"' || s[i] == '\\') && buf_append(&p->text, "\\", 1) < 0)
			return nomem(p);
		if (buf_append(&p->text, s + i, 1) < 0)
			return nomem(p);
	}
	return buf_append(&p->text, "\"", 1) < 0 ? nomem(p) : 0;
}

/* domain = dot-atom / domain-literal / obs-domain. The lookahead is the token after "@";
 * append the domain to p->text. start: where the address began, for messages. */
static int
parse_domain(struct parser *p, size_t start)
{
	if (p->tok.kind == TOK_DLIT) {
		size_t before = p->text.len;
		for (size_t i = p->tok.off; i < p->tok.end; i++) {
			char c = p->in[i];
			if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
				continue;
			if (buf_append(&p->text, &c, 1) < 0)
				return nomem(p);
		}
		if (p->text.len - before == 2)
			return fail(p, "empty domain literal at offset %zu", p->tok.off);
		return lex(p);
	}
	if (p->tok.kind != TOK_ATOM) {
		size_t a = start, b = p->tok.off;
		trim_raw(p, &a, &b);
		return fail(p, "address '%s' has no domain",
			    show(p, a, b, SHOW_MAX, &(struct shown){0}));
	}
	for (;;) {
		if (buf_append(&p->text, p->in + p->tok.off, p->tok.end - p->tok.off) < 0)
			return nomem(p);
		if (lex(p) < 0)
			return -1;
		if (!at_special(p, '.'))
			return 0;
		size_t dot = p->tok.off;
		if (lex(p) < 0)
			return -1;
		if (p->tok.kind != TOK_ATOM)
			return fail(p,
				    "empty label in the domain of the address at offset %zu "
				    "(after the '.' at offset %zu)",
				    start, dot);
		if (buf_append(&p->text, ".", 1) < 0)
			return nomem(p);
	}
}

/* The collected phrase is a local part and the lookahead is "@": read the domain and
 * add the address with display name `name` (owned, may be NULL). */
static int
finish_addr_spec(struct parser *p, const struct phrase *ph, char **name)
{
	size_t at = p->tok.off;

	if (ph->nwords == 0)
		return fail(p, "address without a local part before the '@' at offset %zu", at);
	if (ph->adjacent)
		return fail(p,
			    "unexpected '@' at offset %zu (a display name needs <> around "
			    "the address)",
			    at);
	buf_reset(&p->text);
	if (put_local(p, ph) < 0)
		return -1;
	if (buf_append(&p->text, "@", 1) < 0)
		return nomem(p);
	if (lex(p) < 0 || parse_domain(p, ph->start) < 0)
		return -1;
	if (p->text.len > ADDR_MAX_SPEC)
		return fail(p, "address at offset %zu is longer than %d bytes", ph->start,
			    ADDR_MAX_SPEC);
	if (!utf8_valid((const unsigned char *)p->text.data, p->text.len))
		return fail(p, "address at offset %zu is not valid UTF-8", ph->start);
	if (p->out->n >= ADDR_MAX_COUNT)
		return fail(p, "more than %d addresses (at offset %zu)", ADDR_MAX_COUNT, ph->start);
	if (p->out->n == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 4;
		struct addr *v = realloc(p->out->v, cap * sizeof(*v));
		if (v == NULL)
			return nomem(p);
		p->out->v = v;
		p->cap = cap;
	}
	char *a = strdup(p->text.data);
	if (a == NULL)
		return nomem(p);
	p->out->v[p->out->n].addr = a;
	p->out->v[p->out->n].name = *name;
	*name = NULL;
	p->out->n++;
	return 0;
}

/* The display name collected in p->name, RFC 2047-decoded; NULL (and *name_r NULL) when
 * there is none. */
static int
decode_name(struct parser *p, const struct phrase *ph, char **name_r)
{
	*name_r = NULL;
	if (ph->ntoks == 0 || p->name.len == 0)
		return 0;
	buf_reset(&p->text);
	if (rfc2047_decode(p->name.data, p->name.len, &p->text) < 0)
		return nomem(p);
	if (p->text.len == 0)
		return 0;
	*name_r = strdup(p->text.data);
	return *name_r == NULL ? nomem(p) : 0;
}

/* obs-route = obs-domain-list ":"
 * obs-domain-list = *(CFWS / ",") "@" domain *("," [CFWS] ["@" domain])
 * The lookahead is the "@" or "," after "<"; skip up to and including the ":". */
static int
skip_route(struct parser *p)
{
	size_t start = p->tok.off;
	for (;;) {
		if (at_special(p, ',')) {
			if (lex(p) < 0)
				return -1;
		} else if (at_special(p, '@')) {
			if (lex(p) < 0)
				return -1;
			buf_reset(&p->text);
			if (parse_domain(p, start) < 0)
				return -1;
		} else if (at_special(p, ':')) {
			return lex(p);
		} else {
			return fail(p, "malformed route in the address at offset %zu", start);
		}
	}
}

/* angle-addr = [CFWS] "<" addr-spec ">" [CFWS] / obs-angle-addr. The lookahead is "<". */
static int
parse_angle(struct parser *p, char **name)
{
	size_t open = p->tok.off;
	struct phrase ph;

	if (lex(p) < 0)
		return -1;
	if (at_special(p, '@') || at_special(p, ','))
		if (skip_route(p) < 0)
			return -1;
	if (collect_phrase(p, &ph) < 0)
		return -1;
	if (at_special(p, '@')) {
		if (finish_addr_spec(p, &ph, name) < 0)
			return -1;
	} else if (ph.ntoks == 0 && at_special(p, '>')) {
		return fail(p, "empty address '<>' at offset %zu", open);
	} else if (ph.ntoks > 0 && (at_special(p, '>') || p->tok.kind == TOK_END)) {
		size_t a = ph.start, b = ph.end;
		trim_raw(p, &a, &b);
		return fail(p, "address '%s' has no domain",
			    show(p, a, b, SHOW_MAX, &(struct shown){0}));
	}
	if (p->tok.kind == TOK_END)
		return fail(p, "unbalanced '<' at offset %zu", open);
	if (!at_special(p, '>')) {
		if (p->tok.kind == TOK_SPECIAL && p->tok.ch == '<')
			return fail(p, "unbalanced '<' at offset %zu", open);
		return fail(p,
			    "unexpected '%s' at offset %zu in the address that starts at "
			    "offset %zu",
			    show(p, p->tok.off, p->tok.end, 20, &(struct shown){0}), p->tok.off,
			    open);
	}
	return lex(p);
}

static int
unexpected(struct parser *p)
{
	if (p->tok.kind == TOK_SPECIAL && (p->tok.ch == '>' || p->tok.ch == ']'))
		return fail(p, "unbalanced '%c' at offset %zu", p->tok.ch, p->tok.off);
	return fail(p, "unexpected '%s' at offset %zu",
		    show(p, p->tok.off, p->tok.end, 20, &(struct shown){0}), p->tok.off);
}

static int parse_element(struct parser *p, bool in_group);

/* group = display-name ":" [group-list] ";" [CFWS]
 * group-list = mailbox-list / CFWS / obs-group-list. The lookahead is ":". */
static int
parse_group(struct parser *p)
{
	if (lex(p) < 0)
		return -1;
	for (;;) {
		if (at_special(p, ';'))
			return lex(p);
		if (p->tok.kind == TOK_END)
			return 0; /* tolerated: a group not closed at the end of the value */
		if (at_special(p, ',')) {
			if (lex(p) < 0)
				return -1;
			continue;
		}
		if (parse_element(p, true) < 0)
			return -1;
		if (!at_special(p, ',') && !at_special(p, ';') && p->tok.kind != TOK_END)
			return unexpected(p);
	}
}

/* One address (or group, or empty element) at the lookahead; stops before the "," or
 * ";" or end that follows it. */
static int
parse_element(struct parser *p, bool in_group)
{
	struct phrase ph;
	char *name = NULL;
	int rc = -1;

	if (collect_phrase(p, &ph) < 0)
		return -1;
	if (at_special(p, '<')) {
		if (decode_name(p, &ph, &name) < 0)
			return -1;
		rc = parse_angle(p, &name);
	} else if (at_special(p, '@')) {
		rc = finish_addr_spec(p, &ph, &name);
	} else if (at_special(p, ':')) {
		if (in_group)
			return fail(p, "group inside a group at offset %zu", p->tok.off);
		if (ph.nwords == 0)
			return fail(p, "group without a name at offset %zu", p->tok.off);
		rc = parse_group(p);
	} else if (p->tok.kind == TOK_END || at_special(p, ',') ||
		   (in_group && at_special(p, ';'))) {
		if (ph.ntoks == 0)
			return 0; /* an empty element: obs-addr-list allows it */
		size_t a = ph.start, b = ph.end;
		trim_raw(p, &a, &b);
		return fail(p, "address '%s' has no domain",
			    show(p, a, b, SHOW_MAX, &(struct shown){0}));
	} else {
		return unexpected(p);
	}
	free(name);
	if (rc < 0)
		return -1;
	if (at_special(p, ',') || p->tok.kind == TOK_END || (in_group && at_special(p, ';')))
		return 0;
	if (p->tok.kind == TOK_ATOM || p->tok.kind == TOK_QSTR || at_special(p, '<'))
		return fail(p, "missing ',' before offset %zu", p->tok.off);
	return unexpected(p);
}

int
addr_list_parse(const char *in, size_t len, struct addr_list *out, char *err, size_t errlen)
{
	struct parser p = {.in = in, .len = len, .err = err, .errlen = errlen, .out = out};
	bool comma = false;
	size_t elements = 0;

	out->v = NULL;
	out->n = 0;
	if (errlen > 0)
		err[0] = '\0';
	/* A display name expands at most 3-fold in rfc2047_decode() (one byte of
	 * Windows-1252 or U+FFFD for one byte); 4 is a cap it cannot reach. */
	size_t cap = len > SIZE_MAX / 8 ? SIZE_MAX / 2 : len * 4 + 64;
	buf_init(&p.name, cap);
	buf_init(&p.local, cap);
	buf_init(&p.text, cap);

	if (lex(&p) == 0) {
		while (p.tok.kind != TOK_END) {
			if (at_special(&p, ',')) {
				comma = true;
				if (lex(&p) < 0)
					break;
				continue;
			}
			elements++;
			if (parse_element(&p, false) < 0)
				break;
		}
	}
	if (!p.failed && comma && elements == 0)
		fail(&p, "no address between the commas");
	buf_free(&p.name);
	buf_free(&p.local);
	buf_free(&p.text);
	if (p.failed) {
		int e = errno;
		addr_list_free(out);
		errno = e;
		return -1;
	}
	return 0;
}

void
addr_list_free(struct addr_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->v[i].name);
		free(l->v[i].addr);
	}
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

bool
addr_is_8bit(const char *addr)
{
	for (const unsigned char *s = (const unsigned char *)addr; *s != '\0'; s++)
		if (*s >= 0x80)
			return true;
	return false;
}

/* The "@" between local part and domain: after a quoted local part, else the first. */
static const char *
addr_at(const char *a)
{
	if (a[0] == '"') {
		const char *s = a + 1;
		while (*s != '\0' && *s != '"')
			s += s[0] == '\\' && s[1] != '\0' ? 2 : 1;
		return strchr(s, '@');
	}
	return strchr(a, '@');
}

const char *
addr_domain(const char *addr)
{
	const char *at = addr_at(addr);
	return at != NULL ? at + 1 : NULL;
}

bool
addr_same(const char *a, const char *b)
{
	const char *at_a = addr_at(a), *at_b = addr_at(b);

	if (at_a == NULL || at_b == NULL)
		return strcmp(a, b) == 0;
	if (at_a - a != at_b - b || memcmp(a, b, (size_t)(at_a - a)) != 0)
		return false;
	for (const char *x = at_a, *y = at_b;; x++, y++) {
		char cx = *x >= 'A' && *x <= 'Z' ? (char)(*x + 32) : *x;
		char cy = *y >= 'A' && *y <= 'Z' ? (char)(*y + 32) : *y;
		if (cx != cy)
			return false;
		if (cx == '\0')
			return true;
	}
}
