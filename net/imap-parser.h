/* imap-parser.h - streaming parser for IMAP server responses (RFC 3501 §7, §9; RFC 7162;
 * RFC 4731; RFC 4315; RFC 3516 literal8).
 *
 * A pure function over bytes: no socket, no blocking, no global state. The caller feeds
 * whatever it has read; the parser consumes it and returns "need more", "error" or one
 * complete response. Input may be split anywhere, even one byte at a time.
 *
 * Limits (all set at creation, all enforced):
 *   - the non-literal bytes of one response (its "line", including buffered small
 *     literals) never exceed max_line;
 *   - lists nest at most max_depth deep;
 *   - a literal is buffered into the response only if it is at most max_literal bytes.
 *     Exception: a literal that is the value of a body section in an untagged FETCH
 *     (BODY[...], BODY[...]<n>, BINARY[...], RFC822, RFC822.HEADER, RFC822.TEXT) is
 *     never buffered: it is handed to the callbacks as a size and then chunks, up to
 *     max_body_literal bytes (default: UINT64_MAX / 2, i.e. any real message);
 *   - numbers (literal sizes, message numbers) are parsed with overflow checks.
 * Anything beyond a limit, or not in the grammar, is IMAP_PARSE_ERROR with a message;
 * the connection must then be dropped (there is no resynchronisation).
 *
 * Ownership: the parser owns every response it returns and everything it points to; a
 * response stays valid until the next call of imap_parser_feed() or imap_parser_free().
 */
#ifndef MAILFS_IMAP_PARSER_H
#define MAILFS_IMAP_PARSER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum imap_parse_result {
	IMAP_PARSE_NEED_MORE = -2, /* all input consumed, response not complete yet */
	IMAP_PARSE_ERROR = -1,     /* malformed or over a limit: see imap_parser_error() */
	IMAP_PARSE_OK = 1,         /* one complete response in *resp_r */
};

enum imap_arg_type {
	IMAP_ARG_ATOM,     /* atom or number, raw as received: "\Seen", "123", "BODY[]<0>" */
	IMAP_ARG_STRING,   /* quoted string, escapes (\\ and \") undone */
	IMAP_ARG_LITERAL,  /* small literal, buffered whole (may contain NUL only if literal8) */
	IMAP_ARG_STREAMED, /* body literal handed to the callbacks; only its size is here */
	IMAP_ARG_NIL,      /* the atom NIL (any case) */
	IMAP_ARG_LIST,     /* parenthesised list */
};

struct imap_arg {
	enum imap_arg_type type;
	/* ATOM, STRING, LITERAL: the bytes (NUL-terminated), and len; LIST: the items and count;
	 * STREAMED: size = the literal's size. */
	const char *str;
	size_t len;
	const struct imap_arg *list;
	uint64_t size;
};

enum imap_resp_kind {
	IMAP_RESP_TAGGED,   /* "A1 OK ..." */
	IMAP_RESP_UNTAGGED, /* "* ..." */
	IMAP_RESP_CONTINUE, /* "+ ..." */
};

enum imap_status {
	IMAP_STATUS_NONE, /* untagged data such as "* 3 EXISTS", "* LIST ..." */
	IMAP_STATUS_OK,
	IMAP_STATUS_NO,
	IMAP_STATUS_BAD,
	IMAP_STATUS_BYE,
	IMAP_STATUS_PREAUTH,
};

/* One server response.
 *
 *   tagged:    tag SP ("OK"/"NO"/"BAD") SP ["[" code *(SP arg) "]" SP] text
 *   untagged status: "*" SP ("OK"/"NO"/"BAD"/"BYE"/"PREAUTH") SP ["[" code ... "]" SP] text
 *   untagged data:   "*" SP [number SP] name [SP args...]      e.g. "* 12 FETCH (...)",
 *                    "* CAPABILITY ...", "* LIST (...) "/" name", "* ESEARCH ...",
 *                    "* VANISHED (EARLIER) 1:3", "* 4 EXISTS", "* SEARCH 1 2"
 *   continuation:    "+" [SP text]
 *
 * Status responses have a free-form text that is not tokenized (it may hold unbalanced
 * quotes or parentheses). The resp-text-code arguments are tokenized like any arguments,
 * except that "]" ends them: "[PERMANENTFLAGS (\Seen \*)]" gives code "PERMANENTFLAGS" and
 * one list argument; "[UIDVALIDITY 3857529045]" one atom; "[ALERT]" none.
 *
 * In FETCH data, an atom that contains "[" extends to the matching "]" even across spaces
 * and parentheses, followed by an optional "<number>": so "BODY[HEADER.FIELDS (DATE FROM)]"
 * and "BODY[]<0>" are single atoms, as the FETCH grammar requires. Atom bytes are
 * ASTRING-CHAR plus "\" and "*" (flags like "\*"); in resp-text-code arguments "]" ends
 * them, and "%" is allowed there (URLs in codes).
 *
 * Empty lists have list == NULL; top-level args/code_args are NULL when their count is 0;
 * str is NULL for NIL, LIST and STREAMED; a LITERAL has size == len; a status without text
 * has text "". Tolerated server quirks are listed in VIOLATIONS.md.
 */
struct imap_response {
	enum imap_resp_kind kind;
	const char *tag;        /* TAGGED: the tag; otherwise NULL */
	enum imap_status status; /* TAGGED always set; UNTAGGED: set for OK/NO/BAD/BYE/PREAUTH */
	const char *code;       /* resp-text-code, upper-cased ("UIDVALIDITY"), or NULL */
	const struct imap_arg *code_args;
	size_t code_nargs;
	const char *text;       /* status text, or CONTINUE text (may be ""); NULL for data */
	bool has_number;        /* UNTAGGED data with a leading number */
	uint32_t number;        /* e.g. 12 in "* 12 FETCH" (message sequence number) */
	const char *name;       /* UNTAGGED data: upper-cased name ("FETCH", "LIST"); else NULL */
	const struct imap_arg *args; /* everything after the name */
	size_t nargs;
};

/* Callbacks for streamed body literals, all optional (NULL: data is discarded).
 * A non-zero return aborts: imap_parser_feed() then returns IMAP_PARSE_ERROR with the
 * message "aborted by caller". Calls come in the order begin, data*, end; data chunks are
 * never empty; `section` is the atom naming the section ("BODY[]", "BODY[]<4096>",
 * "BODY[HEADER.FIELDS (DATE FROM)]"), valid during the callbacks only. `seq` is the FETCH
 * message number. A literal of size 0 still gets begin and end. */
struct imap_parser_callbacks {
	int (*literal_begin)(void *ctx, uint32_t seq, const char *section, uint64_t size);
	int (*literal_data)(void *ctx, const unsigned char *data, size_t len);
	int (*literal_end)(void *ctx);
};

struct imap_parser_limits {
	size_t max_line;           /* default 1 MiB */
	unsigned max_depth;        /* default 16 */
	size_t max_literal;        /* default 64 KiB */
	uint64_t max_body_literal; /* default UINT64_MAX / 2 */
};

struct imap_parser;

/* Create a parser. `limits` may be NULL (defaults), or have zero fields (default for that
 * field). `cb` may be NULL. `ctx` is passed to the callbacks. Returns NULL only on ENOMEM. */
struct imap_parser *imap_parser_new(const struct imap_parser_limits *limits,
				    const struct imap_parser_callbacks *cb, void *ctx);
/* Free the parser and set *p to NULL. Accepts NULL and *p == NULL. */
void imap_parser_free(struct imap_parser **p);

/* Feed `len` bytes. Sets *consumed_r to the bytes used (always all of them on NEED_MORE;
 * on OK, the bytes up to and including the response's final CRLF, so the caller feeds the
 * rest again). On OK, *resp_r points to the response (valid until the next call). On ERROR
 * the parser stays in the error state until imap_parser_reset(). A lone LF is accepted as
 * a line end (some servers), a CR not followed by LF is an error. */
enum imap_parse_result imap_parser_feed(struct imap_parser *p, const unsigned char *data,
					size_t len, size_t *consumed_r,
					const struct imap_response **resp_r);

/* Human-readable reason for the last IMAP_PARSE_ERROR ("line too long", "nesting too
 * deep", "literal too large: 123456 bytes", "unexpected character 0x01 in atom", ...). */
const char *imap_parser_error(const struct imap_parser *p);

/* Only during a literal_begin callback: the value of the attribute `name` (an atom such as
 * "UID", compared case-insensitively) that came before the literal in the same FETCH list,
 * if that value is an atom or a quoted string (INTERNALDATE); else NULL. Servers send "UID n" before the body sections
 * asked for, so the caller learns which message a streamed body belongs to before its data
 * arrives. The string is valid until the callback returns. */
const char *imap_parser_fetch_attr(const struct imap_parser *p, const char *name);

/* Forget any partial response and the error state (e.g. for a new connection). */
void imap_parser_reset(struct imap_parser *p);

/* Helpers over parsed arguments. */

/* True for ATOM, STRING and LITERAL (an IMAP "astring"/"nstring" with a value). */
bool imap_arg_is_string(const struct imap_arg *a);
/* ATOM/STRING/LITERAL value, or NULL for anything else (NIL included). */
const char *imap_arg_str(const struct imap_arg *a);
/* Case-insensitive compare of an ATOM with `s`. */
bool imap_arg_atom_is(const struct imap_arg *a, const char *s);
/* Parse an ATOM as a number (0..2^63-1 for uint64, 0..2^32-1 for uint32). 0 or -1. */
int imap_arg_u64(const struct imap_arg *a, uint64_t *r);
int imap_arg_u32(const struct imap_arg *a, uint32_t *r);

/* Expand a uid-set ("4,7:9", RFC 4315; a range in either order is ascending) into out:
 * how many UIDs, or -1 if s is not a uid-set or holds more than max. */
long imap_uidset_expand(const char *s, uint32_t *out, size_t max);

/* Walk a uid-set range by range without expanding it (a VANISHED set may name millions
 * of UIDs): *pos starts at the set's first byte; each call gives the next range in
 * *lo_r <= *hi_r and returns 1, 0 at the end, -1 if the set is malformed (then *pos is
 * left where the error is). "*" is not allowed (a server never sends it in a set). */
int imap_uidset_next(const char **pos, uint32_t *lo_r, uint32_t *hi_r);

/* A VANISHED response (RFC 7162 3.2.10):
 *   expunged-resp = "VANISHED" [SP "(EARLIER)"] SP known-uids
 * r must be untagged data named "VANISHED". Returns 0 with *earlier_r and the uid-set
 * (*set_r, valid as long as the response, checked with imap_uidset_next), or -1 when it
 * is malformed (no set, an unknown tag list, more arguments, a set that does not parse). */
int imap_vanished(const struct imap_response *r, bool *earlier_r, const char **set_r);

#endif
