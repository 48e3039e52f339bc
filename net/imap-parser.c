/* imap-parser.c - streaming parser for IMAP server responses (see imap-parser.h).
 *
 * What it does: a byte-driven state machine that turns whatever the caller has read into
 * one struct imap_response at a time, however the input is split. Small literals are
 * buffered into the response; the body-section literals of an untagged FETCH are handed
 * to the callbacks in the chunks the caller fed, never copied. Every limit of the header
 * is checked before the memory it protects is used.
 *
 * What it does not do: no I/O, no knowledge of commands (which tag answers what), no
 * interpretation of FETCH items, LIST attributes or response codes beyond their shape,
 * no resynchronisation after an error (the connection is to be dropped).
 *
 * Memory: one string buffer (every atom, string, literal, tag, name and text of the
 * response, each NUL-terminated) and one argument array, both reused from one response to
 * the next. The argument array is used from both ends: the items of the lists still open
 * (and the top-level arguments) form a stack at the bottom; when a list closes, its items
 * move to the top end, where they stay contiguous, which is what imap_arg.list needs.
 * While parsing, positions are offsets (the buffers may grow); they become pointers when
 * the response is complete. Every argument takes at least two bytes of the line (itself and
 * a separator or bracket), and every string byte and NUL comes from one byte of the line, so
 * a response needs at most about max_line * (2 + sizeof(struct imap_arg) / 2) bytes, about
 * 22 * max_line on 64-bit systems; typical responses need a few hundred bytes.
 */
#include "net/imap-parser.h"

#include "net/buf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DEFAULT_MAX_LINE ((size_t)1024 * 1024)
#define DEFAULT_MAX_DEPTH 16
#define DEFAULT_MAX_LITERAL ((size_t)64 * 1024)
#define DEFAULT_MAX_BODY_LITERAL (UINT64_MAX / 2)
/* Buffers larger than this after a response are given back rather than kept. */
#define KEEP_BYTES ((size_t)256 * 1024)
#define NO_OFF SIZE_MAX

/* Character classes, one table lookup per byte in the scanning loops. */
enum {
	/* ATOM-CHAR = <any CHAR except atom-specials>, plus "\" and "*" for flags;
	 * "[" and "]" are left out: their meaning depends on where the atom stands. */
	CC_ATOM = 0x01,
	/* QUOTED-CHAR = <any TEXT-CHAR except quoted-specials> (8-bit allowed, RFC 6855) */
	CC_QUOTED = 0x02,
	/* TEXT-CHAR = <any CHAR except CR and LF> (NUL refused, 8-bit allowed) */
	CC_TEXT = 0x04,
	/* inside "[...]" of a FETCH atom: printable ASCII and SP, brackets counted apart */
	CC_SECTION = 0x08,
};

/* atom-specials = "(" / ")" / "{" / SP / CTL / list-wildcards / quoted-specials /
 *                 resp-specials */
#define IS_ATOM(c)                                                                                 \
	((c) > 0x20 && (c) < 0x7f && (c) != '(' && (c) != ')' && (c) != '{' && (c) != '%' &&       \
	 (c) != '"' && (c) != '[' && (c) != ']')
#define IS_TEXT(c) ((c) != 0 && (c) != '\r' && (c) != '\n')
#define CLS(c)                                                                                     \
	((IS_ATOM(c) ? CC_ATOM : 0) | (IS_TEXT(c) && (c) != '"' && (c) != '\\' ? CC_QUOTED : 0) |  \
	 (IS_TEXT(c) ? CC_TEXT : 0) |                                                              \
	 ((c) >= 0x20 && (c) < 0x7f && (c) != '[' && (c) != ']' ? CC_SECTION : 0))
#define R4(n) CLS(n), CLS((n) + 1), CLS((n) + 2), CLS((n) + 3)
#define R16(n) R4(n), R4((n) + 4), R4((n) + 8), R4((n) + 12)
#define R64(n) R16(n), R16((n) + 16), R16((n) + 32), R16((n) + 48)
static const unsigned char cclass[256] = {R64(0), R64(64), R64(128), R64(192)};

enum state {
	S_START,        /* first byte of a response */
	S_TAG,          /* tag = 1*<any ASTRING-CHAR except "+"> */
	S_STATUS,       /* tagged: "OK" / "NO" / "BAD" */
	S_AFTER_STATUS, /* SP or end of line */
	S_CODE_OR_TEXT, /* "[" resp-text-code "]" or text */
	S_CODE,         /* the atom of resp-text-code */
	S_AFTER_CODE,   /* "]" read: SP text, or end of line */
	S_TEXT,         /* text = 1*TEXT-CHAR */
	S_AFTER_STAR,   /* "*" read: SP */
	S_AFTER_PLUS,   /* "+" read: SP text, or end of line */
	S_WORD,         /* after "* ": a number or a name */
	S_NAME,         /* after "* n ": the name */
	S_ARG,          /* start of an argument */
	S_SEP,          /* after an argument: SP, ")", "]" or end of line */
	S_ATOM,
	S_QUOTED,
	S_QUOTED_ESC,
	S_TILDE,      /* "~": literal8 or an atom starting with "~" */
	S_LIT_SIZE,   /* "{" read: number "}" */
	S_LIT_CRLF,   /* "}" read: CRLF */
	S_LIT_LF,     /* "}" CR read: LF */
	S_LIT_DATA,   /* a buffered literal's bytes */
	S_LIT_STREAM, /* a body literal's bytes, handed to the callbacks */
	S_EOL_LF,     /* CR at the end of the line read: LF */
};

enum arg_mode {
	MODE_DATA, /* untagged data: FETCH bracket rule, "]" is an ASTRING-CHAR */
	MODE_CODE, /* resp-text-code arguments: "]" at depth 0 ends them */
};

struct imap_parser {
	struct imap_parser_limits limits;
	struct imap_parser_callbacks cb;
	void *ctx; /* borrowed */

	enum state state;
	enum arg_mode mode;
	bool failed;   /* sticks until imap_parser_reset() */
	bool returned; /* a response is out: start a new one at the next feed */
	char error[160];

	size_t line_len;       /* non-streamed bytes of this response so far */
	struct buf str;        /* the response's strings, each NUL-terminated */
	struct imap_arg *args; /* owned: stack [0, top), closed lists' items [perm, args_cap) */
	size_t args_cap, top, perm;
	size_t open; /* stack index of the innermost open list, or NO_OFF */
	unsigned depth;

	/* the token being read */
	size_t tok;       /* its offset in str */
	unsigned bracket; /* "[" nesting inside a FETCH atom */
	bool in_fetch;    /* "* n FETCH": body literals stream */
	bool brackets;    /* "* ... FETCH": "[" opens a section in atoms */
	bool lit8, lit_stream, lit_digits;
	uint64_t lit_size, lit_left;

	/* the response; its strings are offsets into str until it is complete */
	struct imap_response resp;
	size_t tag_off, code_off, text_off, name_off;
};

static int fail(struct imap_parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int
fail(struct imap_parser *p, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(p->error, sizeof(p->error), fmt, ap);
	va_end(ap);
	p->failed = true;
	return -1;
}

static int
fail_char(struct imap_parser *p, unsigned char c, const char *where)
{
	if (c >= 0x20 && c < 0x7f)
		return fail(p, "unexpected character '%c' %s", c, where);
	return fail(p, "unexpected character 0x%02x %s", c, where);
}

static int
fail_errno(struct imap_parser *p)
{
	if (errno == E2BIG)
		return fail(p, "line too long (over %zu bytes)", p->limits.max_line);
	return fail(p, "out of memory");
}

static int
append(struct imap_parser *p, const void *s, size_t n)
{
	struct buf *b = &p->str;

	/* the common case, inline: room left and under the cap */
	if (n < b->size - b->len && n <= b->cap - b->len) {
		memcpy(b->data + b->len, s, n);
		b->len += n;
		b->data[b->len] = '\0';
		return 0;
	}
	if (n > 0 && buf_append(b, s, n) < 0)
		return fail_errno(p);
	return 0;
}

/* Ends the current token with its NUL; returns its length. */
static int
end_token(struct imap_parser *p, size_t *len_r)
{
	if (append(p, "", 1) < 0)
		return -1;
	*len_r = p->str.len - 1 - p->tok;
	return 0;
}

static void
drop_token(struct imap_parser *p)
{
	p->str.len = p->tok;
	if (p->str.data != NULL)
		p->str.data[p->str.len] = '\0';
}

static void
upcase(char *s)
{
	for (; *s != '\0'; s++)
		if (*s >= 'a' && *s <= 'z')
			*s = (char)(*s - 'a' + 'A');
}

static bool
is_line_end(unsigned char c)
{
	return c == '\r' || c == '\n';
}

/* --- the argument array --- */

static struct imap_arg *
push_arg(struct imap_parser *p, enum imap_arg_type type)
{
	if (p->top == p->perm) {
		size_t old = p->args_cap;
		size_t cap = old != 0 ? old * 2 : 64;
		if (cap > SIZE_MAX / sizeof(*p->args)) {
			fail(p, "out of memory");
			return NULL;
		}
		struct imap_arg *a = realloc(p->args, cap * sizeof(*a));
		if (a == NULL) {
			fail(p, "out of memory");
			return NULL;
		}
		/* The closed lists' items move to the new end: their offsets are counted
		 * from the end, so they stay right. */
		memmove(a + p->perm + (cap - old), a + p->perm, (old - p->perm) * sizeof(*a));
		p->perm += cap - old;
		p->args = a;
		p->args_cap = cap;
	}
	struct imap_arg *arg = &p->args[p->top++];
	memset(arg, 0, sizeof(*arg));
	arg->type = type;
	return arg;
}

/* A string argument: str is still an offset, kept in size until the response ends. */
static int
push_string(struct imap_parser *p, enum imap_arg_type type)
{
	size_t len;
	if (end_token(p, &len) < 0)
		return -1;
	struct imap_arg *a = push_arg(p, type);
	if (a == NULL)
		return -1;
	a->len = len;
	a->size = p->tok;
	return 0;
}

static int
open_list(struct imap_parser *p)
{
	if (p->depth >= p->limits.max_depth)
		return fail(p, "nesting too deep (over %u)", p->limits.max_depth);
	struct imap_arg *a = push_arg(p, IMAP_ARG_LIST);
	if (a == NULL)
		return -1;
	a->size = p->open; /* while open: the parent's index */
	p->open = p->top - 1;
	p->depth++;
	return 0;
}

static void
close_list(struct imap_parser *p)
{
	size_t node = p->open;
	size_t n = p->top - node - 1;
	struct imap_arg *a = &p->args[node];

	/* perm >= top always holds, so the move fits; it may overlap. */
	p->perm -= n;
	memmove(p->args + p->perm, p->args + node + 1, n * sizeof(*a));
	p->open = (size_t)a->size;
	a->len = n;
	a->size = p->args_cap - p->perm; /* once closed: items' offset from the end */
	p->top = node + 1;
	p->depth--;
}

/* Called at "}": is this literal the value of a body section in an untagged FETCH?
 *   msg-att = "(" (msg-att-dynamic / msg-att-static) *(SP ...) ")"
 *   msg-att-static =/ "RFC822" [".HEADER" / ".TEXT"] SP nstring /
 *                     "BODY" section ["<" number ">"] SP nstring
 *   RFC 3516: "BINARY" section-binary ["<" number ">"] SP (nstring / literal8)
 * The literal must be a value (odd position) in the list that is the first argument. */
static bool
is_body_literal(const struct imap_parser *p)
{
	if (!p->in_fetch || p->depth != 1 || p->open != 0)
		return false;
	if ((p->top - 1) % 2 == 0)
		return false;
	const struct imap_arg *prev = &p->args[p->top - 1];
	if (prev->type != IMAP_ARG_ATOM)
		return false;
	const char *s = p->str.data + prev->size;
	return strncasecmp(s, "BODY[", 5) == 0 || strncasecmp(s, "BINARY[", 7) == 0 ||
	       strcasecmp(s, "RFC822") == 0 || strcasecmp(s, "RFC822.HEADER") == 0 ||
	       strcasecmp(s, "RFC822.TEXT") == 0;
}

const char *
imap_parser_fetch_attr(const struct imap_parser *p, const char *name)
{
	if (p->state != S_LIT_STREAM && !(p->lit_stream && p->state == S_SEP))
		return NULL;
	if (!p->in_fetch || p->open != 0)
		return NULL;
	/* The FETCH list is args[0]; its items so far are args[1..top), the streamed literal
	 * last. Items still hold their string offsets in size. */
	for (size_t i = 1; i + 1 < p->top; i += 2) {
		const struct imap_arg *k = &p->args[i], *v = &p->args[i + 1];
		if (k->type == IMAP_ARG_ATOM &&
		    (v->type == IMAP_ARG_ATOM || v->type == IMAP_ARG_STRING) &&
		    strcasecmp(p->str.data + k->size, name) == 0)
			return p->str.data + v->size;
	}
	return NULL;
}

/* --- response boundaries --- */

static void
response_start(struct imap_parser *p)
{
	if (p->args_cap * sizeof(*p->args) > KEEP_BYTES) {
		free(p->args);
		p->args = NULL;
		p->args_cap = 0;
	}
	if (p->str.size > KEEP_BYTES)
		buf_free(&p->str);
	buf_reset(&p->str);
	p->state = S_START;
	p->mode = MODE_DATA;
	p->returned = false;
	p->line_len = 0;
	p->top = 0;
	p->perm = p->args_cap;
	p->open = NO_OFF;
	p->depth = 0;
	p->tok = 0;
	p->bracket = 0;
	p->in_fetch = false;
	p->brackets = false;
	p->lit8 = p->lit_stream = p->lit_digits = false;
	p->lit_size = p->lit_left = 0;
	memset(&p->resp, 0, sizeof(p->resp));
	p->tag_off = p->code_off = p->text_off = p->name_off = NO_OFF;
}

static void
fix_arg(struct imap_parser *p, struct imap_arg *a)
{
	switch (a->type) {
	case IMAP_ARG_ATOM:
	case IMAP_ARG_STRING:
	case IMAP_ARG_LITERAL:
		a->str = p->str.data + a->size;
		a->size = a->type == IMAP_ARG_LITERAL ? a->len : 0;
		break;
	case IMAP_ARG_LIST:
		a->list = a->len > 0 ? p->args + (p->args_cap - a->size) : NULL;
		a->size = 0;
		break;
	case IMAP_ARG_STREAMED:
	case IMAP_ARG_NIL:
		break;
	}
}

static const char *
str_at(const struct imap_parser *p, size_t off)
{
	return off == NO_OFF ? NULL : p->str.data + off;
}

/* The line is complete: offsets become pointers. */
static void
response_finish(struct imap_parser *p)
{
	struct imap_response *r = &p->resp;

	for (size_t i = 0; i < p->top; i++)
		fix_arg(p, &p->args[i]);
	for (size_t i = p->perm; i < p->args_cap; i++)
		fix_arg(p, &p->args[i]);
	r->tag = str_at(p, p->tag_off);
	r->code = str_at(p, p->code_off);
	r->name = str_at(p, p->name_off);
	if (r->kind == IMAP_RESP_CONTINUE || r->status != IMAP_STATUS_NONE)
		r->text = p->text_off != NO_OFF ? p->str.data + p->text_off : "";
	const struct imap_arg *top = p->top > 0 ? p->args : NULL;
	if (p->code_off != NO_OFF) {
		r->code_args = top;
		r->code_nargs = p->top;
	} else if (r->name != NULL) {
		r->args = top;
		r->nargs = p->top;
	}
	p->returned = true;
}

/* --- the states --- */

/* Appends a run of CC_ATOM bytes to the current token. */
static size_t
scan_atom(struct imap_parser *p, const unsigned char *d, size_t pos, size_t end)
{
	size_t s = pos;
	while (pos < end && (cclass[d[pos]] & CC_ATOM) != 0)
		pos++;
	if (append(p, d + s, pos - s) < 0)
		return NO_OFF;
	return pos;
}

static enum imap_status
status_of(const char *s)
{
	if (strcmp(s, "OK") == 0)
		return IMAP_STATUS_OK;
	if (strcmp(s, "NO") == 0)
		return IMAP_STATUS_NO;
	if (strcmp(s, "BAD") == 0)
		return IMAP_STATUS_BAD;
	if (strcmp(s, "BYE") == 0)
		return IMAP_STATUS_BYE;
	if (strcmp(s, "PREAUTH") == 0)
		return IMAP_STATUS_PREAUTH;
	return IMAP_STATUS_NONE;
}

/* A word of the response's head (tag, status, number or name) ends at SP or end of line;
 * returns 1 when it has ended (not consuming the delimiter), 0 for more, -1 on error. */
static int
word(struct imap_parser *p, const unsigned char *d, size_t *pos, size_t end, const char *what)
{
	*pos = scan_atom(p, d, *pos, end);
	if (*pos == NO_OFF)
		return -1;
	if (*pos == end)
		return 0;
	unsigned char c = d[*pos];
	if (c != ' ' && !is_line_end(c)) {
		char where[40];
		snprintf(where, sizeof(where), "in %s", what);
		return fail_char(p, c, where);
	}
	if (p->str.len == p->tok)
		return fail(p, "missing %s", what);
	size_t len;
	return end_token(p, &len) < 0 ? -1 : 1;
}

/* The head of an untagged response:
 *   response-data = "*" SP (resp-cond-state / resp-cond-bye / mailbox-data /
 *                   message-data / capability-data) CRLF
 *   message-data  = nz-number SP ("EXPUNGE" / ("FETCH" SP msg-att))
 *   mailbox-data  =/ number SP "EXISTS" / number SP "RECENT" */
static int
untagged_word(struct imap_parser *p, const unsigned char *d, size_t *pos)
{
	char *w = p->str.data + p->tok;
	unsigned char c = d[*pos];

	if (p->state == S_WORD && w[strspn(w, "0123456789")] == '\0') {
		uint64_t n = 0;
		for (; *w != '\0'; w++) {
			n = n * 10 + (uint64_t)(*w - '0');
			if (n > UINT32_MAX)
				return fail(p, "number too large in untagged response");
		}
		p->resp.has_number = true;
		p->resp.number = (uint32_t)n;
		drop_token(p);
		if (c != ' ')
			return fail(p, "missing name after number %u", p->resp.number);
		(*pos)++;
		p->state = S_NAME;
		return 0;
	}
	upcase(w);
	if (p->state == S_WORD) {
		p->resp.status = status_of(w);
		if (p->resp.status != IMAP_STATUS_NONE) {
			drop_token(p);
			p->state = S_AFTER_STATUS;
			return 0;
		}
	}
	p->name_off = p->tok;
	p->brackets = strcmp(w, "FETCH") == 0;
	p->in_fetch = p->resp.has_number && p->brackets;
	p->mode = MODE_DATA;
	p->state = S_SEP;
	return 0;
}

/* Where an argument may start: "(", ")", quoted, literal, literal8, atom (NIL included). */
static int
arg_start(struct imap_parser *p, const unsigned char *d, size_t *pos)
{
	unsigned char c = d[*pos];

	switch (c) {
	case '(':
		(*pos)++;
		return open_list(p);
	case ')':
		/* "()": an empty list */
		if (p->depth == 0 || p->top != p->open + 1)
			return fail(p, "unexpected ')'");
		(*pos)++;
		close_list(p);
		p->state = S_SEP;
		return 0;
	case '"':
		(*pos)++;
		p->tok = p->str.len;
		p->state = S_QUOTED;
		return 0;
	case '{':
		(*pos)++;
		p->lit8 = false;
		p->lit_size = 0;
		p->lit_digits = false;
		p->state = S_LIT_SIZE;
		return 0;
	case '~':
		(*pos)++;
		p->state = S_TILDE;
		return 0;
	case ']':
		if (p->mode == MODE_CODE) {
			/* "[CODE arg ]": tolerate the space before "]" */
			if (p->depth > 0)
				return fail(p, "unexpected ']' in list");
			(*pos)++;
			p->state = S_AFTER_CODE;
			return 0;
		}
		break;
	case '\r':
	case '\n':
		/* a trailing SP before the end of the line is tolerated */
		if (p->depth > 0)
			return fail(p, "unterminated list");
		if (p->mode == MODE_CODE)
			return fail(p, "unterminated response code");
		(*pos)++;
		p->state = S_EOL_LF;
		return c == '\n' ? 1 : 0;
	default:
		if ((cclass[c] & CC_ATOM) == 0 && c != '[' && !(c == '%' && p->mode == MODE_CODE))
			return fail_char(p, c, "at start of argument");
		break;
	}
	p->tok = p->str.len;
	p->bracket = 0;
	p->state = S_ATOM;
	return 0;
}

/* After an argument: SP, ")" closing a list, "]" ending code arguments, or end of line. */
static int
arg_sep(struct imap_parser *p, const unsigned char *d, size_t *pos)
{
	unsigned char c = d[*pos];

	switch (c) {
	case ' ':
		(*pos)++;
		p->state = S_ARG;
		return 0;
	case ')':
		if (p->depth == 0)
			return fail(p, "unexpected ')'");
		(*pos)++;
		close_list(p);
		return 0;
	case ']':
		if (p->mode != MODE_CODE || p->depth > 0)
			return fail(p, "unexpected ']'");
		(*pos)++;
		p->state = S_AFTER_CODE;
		return 0;
	case '\r':
	case '\n':
		if (p->depth > 0)
			return fail(p, "unterminated list (missing ')')");
		if (p->mode == MODE_CODE)
			return fail(p, "unterminated response code (missing ']')");
		(*pos)++;
		p->state = S_EOL_LF;
		return c == '\n' ? 1 : 0;
	default:
		if (p->top > 0 && p->args[p->top - 1].type == IMAP_ARG_LIST)
			return fail_char(p, c, "after list");
		return fail_char(p, c, "(missing space)");
	}
}

static int
atom_end(struct imap_parser *p)
{
	size_t len;

	if (end_token(p, &len) < 0)
		return -1;
	p->state = S_SEP;
	/* nil = "NIL" */
	if (len == 3 && strcasecmp(p->str.data + p->tok, "NIL") == 0) {
		drop_token(p);
		return push_arg(p, IMAP_ARG_NIL) != NULL ? 0 : -1;
	}
	struct imap_arg *a = push_arg(p, IMAP_ARG_ATOM);
	if (a == NULL)
		return -1;
	a->len = len;
	a->size = p->tok;
	return 0;
}

/* atom = 1*ATOM-CHAR; in FETCH data, "[" opens a section that runs to the matching "]"
 * across SP and parentheses:
 *   "BODY" section ["<" number ">"];  section = "[" [section-spec] "]"
 * Elsewhere "[" is an ATOM-CHAR and "]" an ASTRING-CHAR ("* LIST () "/" [Gmail]/Sent";
 * Dovecot sends any name made of ASTRING-CHARs unquoted, even "[x" or "a]b"). */
static int
atom(struct imap_parser *p, const unsigned char *d, size_t *pos, size_t end)
{
	size_t s = *pos, i = *pos;

	if (p->bracket == 0) {
		while (i < end && (cclass[d[i]] & CC_ATOM) != 0)
			i++;
	} else {
		while (i < end && (cclass[d[i]] & CC_SECTION) != 0)
			i++;
	}
	if (append(p, d + s, i - s) < 0)
		return -1;
	*pos = i;
	if (i == end)
		return 0;

	unsigned char c = d[i];
	if (c == '[') {
		if (p->brackets && ++p->bracket > p->limits.max_depth)
			return fail(p, "nesting too deep (over %u)", p->limits.max_depth);
	} else if (c == ']' && p->bracket > 0) {
		p->bracket--;
	} else if (c == ']' && p->mode == MODE_DATA) {
		/* ASTRING-CHAR = ATOM-CHAR / resp-specials: a mailbox "a]b" */
	} else if (c == '%' && p->mode == MODE_CODE) {
		/* tolerated in code arguments: URLs ("[WEBALERT https://...%2F...]") */
	} else if (p->bracket > 0) {
		if (is_line_end(c))
			return fail(p, "unterminated '[' in atom");
		return fail_char(p, c, "in atom section");
	} else if (c == ' ' || c == ')' || c == ']' || is_line_end(c)) {
		return atom_end(p);
	} else {
		return fail_char(p, c, "in atom");
	}
	(*pos)++;
	return append(p, &c, 1);
}

/* quoted = DQUOTE *QUOTED-CHAR DQUOTE
 * QUOTED-CHAR = <any TEXT-CHAR except quoted-specials> / "\" quoted-specials */
static int
quoted(struct imap_parser *p, const unsigned char *d, size_t *pos, size_t end)
{
	size_t s = *pos, i = *pos;

	while (i < end && (cclass[d[i]] & CC_QUOTED) != 0)
		i++;
	if (append(p, d + s, i - s) < 0)
		return -1;
	*pos = i;
	if (i == end)
		return 0;
	switch (d[i]) {
	case '"':
		(*pos)++;
		p->state = S_SEP;
		return push_string(p, IMAP_ARG_STRING);
	case '\\':
		(*pos)++;
		p->state = S_QUOTED_ESC;
		return 0;
	case '\0':
		return fail(p, "NUL in quoted string");
	default:
		return fail(p, "unterminated quoted string");
	}
}

/* literal = "{" number "}" CRLF *CHAR8;  literal8 = "~{" number "}" CRLF *OCTET */
static int
literal_size(struct imap_parser *p, const unsigned char *d, size_t *pos, size_t end)
{
	size_t start = *pos, i = *pos;

	while (i < end && d[i] >= '0' && d[i] <= '9') {
		unsigned digit = (unsigned)(d[i] - '0');
		if (p->lit_size > (UINT64_MAX - digit) / 10)
			return fail(p, "literal size too large");
		p->lit_size = p->lit_size * 10 + digit;
		p->lit_digits = true;
		i++;
	}
	*pos = i;
	if (i == end)
		return 0;
	if (d[i] != '}' || !p->lit_digits)
		return fail_char(p, d[i], "in literal size");
	(*pos)++;
	p->lit_stream = is_body_literal(p);
	if (p->lit_stream) {
		if (p->lit_size > p->limits.max_body_literal)
			return fail(p, "literal too large: %llu bytes",
				    (unsigned long long)p->lit_size);
	} else {
		if (p->lit_size > p->limits.max_literal)
			return fail(p, "literal too large: %llu bytes",
				    (unsigned long long)p->lit_size);
		/* fail now if the literal cannot fit: the line so far (up to "}") and at
		 * least an LF come before it; counted the same however input is split */
		size_t used = p->line_len + (*pos - start);
		if (p->lit_size >= p->limits.max_line - used)
			return fail(p, "line too long (over %zu bytes)", p->limits.max_line);
	}
	p->state = S_LIT_CRLF;
	return 0;
}

/* The CRLF after "}" has been read. */
static int
literal_start(struct imap_parser *p)
{
	p->lit_left = p->lit_size;
	if (!p->lit_stream) {
		p->tok = p->str.len;
		p->state = S_LIT_DATA;
		if (p->lit_size == 0) {
			p->state = S_SEP;
			return push_string(p, IMAP_ARG_LITERAL);
		}
		return 0;
	}

	const char *section = p->str.data + p->args[p->top - 1].size;
	struct imap_arg *a = push_arg(p, IMAP_ARG_STREAMED);
	if (a == NULL)
		return -1;
	a->size = p->lit_size;
	p->state = S_LIT_STREAM;
	if (p->cb.literal_begin != NULL &&
	    p->cb.literal_begin(p->ctx, p->resp.number, section, p->lit_size) != 0)
		return fail(p, "aborted by caller");
	if (p->lit_size == 0) {
		p->state = S_SEP;
		if (p->cb.literal_end != NULL && p->cb.literal_end(p->ctx) != 0)
			return fail(p, "aborted by caller");
	}
	return 0;
}

static int
literal_data(struct imap_parser *p, const unsigned char *d, size_t *pos, size_t end)
{
	size_t n = end - *pos;

	if (n > p->lit_left)
		n = (size_t)p->lit_left;
	if (!p->lit8 && memchr(d + *pos, '\0', n) != NULL)
		return fail(p, "NUL in literal");
	if (append(p, d + *pos, n) < 0)
		return -1;
	*pos += n;
	p->lit_left -= n;
	if (p->lit_left > 0)
		return 0;
	p->state = S_SEP;
	return push_string(p, IMAP_ARG_LITERAL);
}

/* A body literal: the whole span we have goes to the callback in one call. */
static int
literal_stream(struct imap_parser *p, const unsigned char *d, size_t len, size_t *n_r)
{
	size_t n = len;

	if (n > p->lit_left)
		n = (size_t)p->lit_left;
	*n_r = n;
	if (p->cb.literal_data != NULL && p->cb.literal_data(p->ctx, d, n) != 0)
		return fail(p, "aborted by caller");
	p->lit_left -= n;
	if (p->lit_left > 0)
		return 0;
	p->state = S_SEP;
	if (p->cb.literal_end != NULL && p->cb.literal_end(p->ctx) != 0)
		return fail(p, "aborted by caller");
	return 0;
}

/* Consumes input in [*pos, end) for the current state. Returns 1 when the response is
 * complete (its final LF consumed), 0 to go on, -1 on error. */
static int
step(struct imap_parser *p, const unsigned char *d, size_t *pos, size_t end)
{
	unsigned char c = d[*pos];
	size_t len;
	int r;

	switch (p->state) {
	case S_START:
		/* response = *(continue-req / response-data) response-done */
		if (c == '+') {
			p->resp.kind = IMAP_RESP_CONTINUE;
			p->state = S_AFTER_PLUS;
			(*pos)++;
		} else if (c == '*') {
			p->resp.kind = IMAP_RESP_UNTAGGED;
			p->state = S_AFTER_STAR;
			(*pos)++;
		} else {
			p->resp.kind = IMAP_RESP_TAGGED;
			p->tag_off = p->tok = p->str.len;
			p->state = S_TAG;
		}
		return 0;

	case S_TAG:
		/* response-tagged = tag SP resp-cond-state CRLF */
		if ((r = word(p, d, pos, end, "tag")) <= 0)
			return r;
		if (d[*pos] != ' ')
			return fail(p, "missing space after tag");
		(*pos)++;
		p->tok = p->str.len;
		p->state = S_STATUS;
		return 0;

	case S_STATUS:
		/* resp-cond-state = ("OK" / "NO" / "BAD") SP resp-text */
		if ((r = word(p, d, pos, end, "status")) <= 0)
			return r;
		upcase(p->str.data + p->tok);
		p->resp.status = status_of(p->str.data + p->tok);
		if (p->resp.status != IMAP_STATUS_OK && p->resp.status != IMAP_STATUS_NO &&
		    p->resp.status != IMAP_STATUS_BAD)
			return fail(p, "unknown status \"%.32s\" in tagged response",
				    p->str.data + p->tok);
		drop_token(p);
		p->state = S_AFTER_STATUS;
		return 0;

	case S_AFTER_STATUS:
		/* resp-text = ["[" resp-text-code "]" SP] text; a bare "OK" is tolerated */
		(*pos)++;
		if (c == ' ') {
			p->state = S_CODE_OR_TEXT;
			return 0;
		}
		if (c == '\r') {
			p->state = S_EOL_LF;
			return 0;
		}
		if (c == '\n')
			return 1;
		return fail(p, "missing space after status");

	case S_CODE_OR_TEXT:
		if (c == '[') {
			(*pos)++;
			p->code_off = p->tok = p->str.len;
			p->state = S_CODE;
		} else {
			p->text_off = p->str.len;
			p->state = S_TEXT;
		}
		return 0;

	case S_CODE:
		/* resp-text-code = ... / atom [SP 1*<any TEXT-CHAR except "]">] */
		*pos = scan_atom(p, d, *pos, end);
		if (*pos == NO_OFF)
			return -1;
		if (*pos == end)
			return 0;
		c = d[*pos];
		if (c != ' ' && c != ']') {
			if (is_line_end(c))
				return fail(p, "unterminated response code (missing ']')");
			return fail_char(p, c, "in response code");
		}
		if (p->str.len == p->tok)
			return fail(p, "empty response code");
		if (end_token(p, &len) < 0)
			return -1;
		upcase(p->str.data + p->tok);
		(*pos)++;
		p->mode = MODE_CODE;
		p->state = c == ' ' ? S_ARG : S_AFTER_CODE;
		return 0;

	case S_AFTER_CODE:
		/* "]" SP text; a code without text is tolerated ("* OK [CLOSED]") */
		(*pos)++;
		if (c == ' ') {
			p->text_off = p->str.len;
			p->state = S_TEXT;
			return 0;
		}
		if (c == '\r') {
			p->state = S_EOL_LF;
			return 0;
		}
		if (c == '\n')
			return 1;
		return fail(p, "missing space after response code");

	case S_TEXT: {
		/* text = 1*TEXT-CHAR */
		size_t s = *pos, i = *pos;
		while (i < end && (cclass[d[i]] & CC_TEXT) != 0)
			i++;
		if (append(p, d + s, i - s) < 0)
			return -1;
		*pos = i;
		if (i == end)
			return 0;
		if (d[i] == '\0')
			return fail(p, "NUL in text");
		p->tok = p->text_off;
		if (end_token(p, &len) < 0)
			return -1;
		(*pos)++;
		p->state = S_EOL_LF;
		return d[i] == '\n' ? 1 : 0;
	}

	case S_AFTER_STAR:
		if (c != ' ')
			return fail(p, "missing space after '*'");
		(*pos)++;
		p->tok = p->str.len;
		p->state = S_WORD;
		return 0;

	case S_AFTER_PLUS:
		/* continue-req = "+" SP (resp-text / base64) CRLF; "+" CRLF is tolerated */
		if (c == '\r' || c == '\n') {
			(*pos)++;
			p->state = S_EOL_LF;
			return c == '\n' ? 1 : 0;
		}
		if (c == ' ')
			(*pos)++;
		p->text_off = p->str.len;
		p->state = S_TEXT;
		return 0;

	case S_WORD:
	case S_NAME:
		if ((r = word(p, d, pos, end, "response name")) <= 0)
			return r;
		return untagged_word(p, d, pos);

	case S_ARG:
		return arg_start(p, d, pos);

	case S_SEP:
		return arg_sep(p, d, pos);

	case S_ATOM:
		return atom(p, d, pos, end);

	case S_QUOTED:
		return quoted(p, d, pos, end);

	case S_QUOTED_ESC:
		if (c != '\\' && c != '"')
			return fail_char(p, c, "after '\\' in quoted string");
		(*pos)++;
		p->state = S_QUOTED;
		return append(p, &c, 1);

	case S_TILDE:
		if (c == '{') {
			(*pos)++;
			p->lit8 = true;
			p->lit_size = 0;
			p->lit_digits = false;
			p->state = S_LIT_SIZE;
			return 0;
		}
		/* an atom such as "~peter/mail" */
		p->tok = p->str.len;
		p->bracket = 0;
		p->state = S_ATOM;
		return append(p, "~", 1);

	case S_LIT_SIZE:
		return literal_size(p, d, pos, end);

	case S_LIT_CRLF:
		(*pos)++;
		if (c == '\r') {
			p->state = S_LIT_LF;
			return 0;
		}
		if (c == '\n')
			return literal_start(p);
		return fail(p, "missing CRLF after literal size");

	case S_LIT_LF:
		if (c != '\n')
			return fail(p, "CR without LF");
		(*pos)++;
		return literal_start(p);

	case S_LIT_DATA:
		return literal_data(p, d, pos, end);

	case S_LIT_STREAM:
		break; /* handled by the caller */

	case S_EOL_LF:
		if (c != '\n')
			return fail(p, "CR without LF");
		(*pos)++;
		return 1;
	}
	return fail(p, "internal error: bad state");
}

/* --- the interface --- */

struct imap_parser *
imap_parser_new(const struct imap_parser_limits *limits, const struct imap_parser_callbacks *cb,
		void *ctx)
{
	struct imap_parser *p = calloc(1, sizeof(*p));
	if (p == NULL)
		return NULL;
	if (limits != NULL)
		p->limits = *limits;
	if (p->limits.max_line == 0)
		p->limits.max_line = DEFAULT_MAX_LINE;
	if (p->limits.max_depth == 0)
		p->limits.max_depth = DEFAULT_MAX_DEPTH;
	if (p->limits.max_literal == 0)
		p->limits.max_literal = DEFAULT_MAX_LITERAL;
	if (p->limits.max_body_literal == 0)
		p->limits.max_body_literal = DEFAULT_MAX_BODY_LITERAL;
	if (cb != NULL)
		p->cb = *cb;
	p->ctx = ctx;
	/* every byte of the line at most once, plus one NUL per string */
	size_t cap =
	    p->limits.max_line > (SIZE_MAX - 16) / 2 ? SIZE_MAX - 1 : p->limits.max_line * 2 + 16;
	buf_init(&p->str, cap);
	response_start(p);
	return p;
}

void
imap_parser_free(struct imap_parser **pp)
{
	if (pp == NULL || *pp == NULL)
		return;
	struct imap_parser *p = *pp;
	buf_free(&p->str);
	free(p->args);
	free(p);
	*pp = NULL;
}

void
imap_parser_reset(struct imap_parser *p)
{
	p->failed = false;
	p->error[0] = '\0';
	response_start(p);
}

const char *
imap_parser_error(const struct imap_parser *p)
{
	return p->error;
}

enum imap_parse_result
imap_parser_feed(struct imap_parser *p, const unsigned char *data, size_t len, size_t *consumed_r,
		 const struct imap_response **resp_r)
{
	size_t pos = 0;
	enum imap_parse_result ret = IMAP_PARSE_NEED_MORE;
	int r = 0;

	*resp_r = NULL;
	if (p->failed) {
		ret = IMAP_PARSE_ERROR;
		goto out;
	}
	if (p->returned)
		response_start(p);
	while (pos < len) {
		if (p->state == S_LIT_STREAM) {
			size_t n;
			r = literal_stream(p, data + pos, len - pos, &n);
			pos += n;
		} else {
			/* every byte but streamed ones counts against max_line */
			size_t room = p->limits.max_line - p->line_len;
			if (room == 0) {
				r = fail(p, "line too long (over %zu bytes)", p->limits.max_line);
				break;
			}
			size_t end = len - pos > room ? pos + room : len;
			size_t start = pos;
			r = step(p, data, &pos, end);
			p->line_len += pos - start;
		}
		if (r != 0)
			break;
	}
	if (r < 0) {
		ret = IMAP_PARSE_ERROR;
	} else if (r > 0) {
		response_finish(p);
		*resp_r = &p->resp;
		ret = IMAP_PARSE_OK;
	}
out:
	*consumed_r = pos;
	return ret;
}

/* --- helpers over arguments --- */

bool
imap_arg_is_string(const struct imap_arg *a)
{
	return a->type == IMAP_ARG_ATOM || a->type == IMAP_ARG_STRING ||
	       a->type == IMAP_ARG_LITERAL;
}

const char *
imap_arg_str(const struct imap_arg *a)
{
	return imap_arg_is_string(a) ? a->str : NULL;
}

bool
imap_arg_atom_is(const struct imap_arg *a, const char *s)
{
	return a->type == IMAP_ARG_ATOM && strlen(s) == a->len && strcasecmp(a->str, s) == 0;
}

static int
arg_number(const struct imap_arg *a, uint64_t max, uint64_t *r)
{
	uint64_t n = 0;

	if (a->type != IMAP_ARG_ATOM || a->len == 0)
		return -1;
	for (size_t i = 0; i < a->len; i++) {
		unsigned char c = (unsigned char)a->str[i];
		if (c < '0' || c > '9')
			return -1;
		if (n > (max - (c - '0')) / 10)
			return -1;
		n = n * 10 + (c - '0');
	}
	*r = n;
	return 0;
}

int
imap_arg_u64(const struct imap_arg *a, uint64_t *r)
{
	return arg_number(a, INT64_MAX, r);
}

int
imap_arg_u32(const struct imap_arg *a, uint32_t *r)
{
	uint64_t n;

	if (arg_number(a, UINT32_MAX, &n) < 0)
		return -1;
	*r = (uint32_t)n;
	return 0;
}

/* One nz-number of a uid-set at *p: its value, or 0 if none. */
static uint32_t
uidset_num(const char **p)
{
	uint64_t v = 0;
	const char *q = *p;
	while (*q >= '0' && *q <= '9' && v <= UINT32_MAX)
		v = v * 10 + (uint64_t)(*q++ - '0');
	if (q == *p || v == 0 || v > UINT32_MAX)
		return 0;
	*p = q;
	return (uint32_t)v;
}

long
imap_uidset_expand(const char *s, uint32_t *out, size_t max)
{
	size_t n = 0;
	const char *p = s;
	for (;;) {
		uint32_t a = uidset_num(&p), b = a;
		if (a == 0)
			return -1;
		if (*p == ':') {
			p++;
			if ((b = uidset_num(&p)) == 0)
				return -1;
		}
		uint32_t lo = a < b ? a : b, hi = a < b ? b : a;
		if ((uint64_t)hi - lo + 1 > max - n)
			return -1;
		for (uint64_t u = lo; u <= hi; u++)
			out[n++] = (uint32_t)u;
		if (*p == '\0')
			return (long)n;
		if (*p++ != ',')
			return -1;
	}
}

int
imap_uidset_next(const char **pos, uint32_t *lo_r, uint32_t *hi_r)
{
	const char *p = *pos;
	if (*p == '\0')
		return 0;
	uint32_t a = uidset_num(&p), b = a;
	if (a == 0)
		return -1;
	if (*p == ':') {
		p++;
		if ((b = uidset_num(&p)) == 0)
			return -1;
	}
	if (*p == ',') {
		if (p[1] == '\0')
			return -1;
		p++;
	} else if (*p != '\0') {
		return -1;
	}
	*lo_r = a < b ? a : b;
	*hi_r = a < b ? b : a;
	*pos = p;
	return 1;
}

int
imap_vanished(const struct imap_response *r, bool *earlier_r, const char **set_r)
{
	size_t i = 0;
	*earlier_r = false;
	*set_r = NULL;
	if (r->kind != IMAP_RESP_UNTAGGED || r->name == NULL || strcmp(r->name, "VANISHED") != 0 ||
	    r->has_number)
		return -1;
	if (r->nargs >= 1 && r->args[0].type == IMAP_ARG_LIST) {
		if (r->args[0].len != 1 || !imap_arg_atom_is(&r->args[0].list[0], "EARLIER"))
			return -1;
		*earlier_r = true;
		i = 1;
	}
	if (r->nargs != i + 1 || r->args[i].type != IMAP_ARG_ATOM)
		return -1;
	const char *set = r->args[i].str, *p = set;
	uint32_t lo, hi;
	int k;
	while ((k = imap_uidset_next(&p, &lo, &hi)) == 1)
		;
	if (k < 0 || p == set)
		return -1;
	*set_r = set;
	return 0;
}
