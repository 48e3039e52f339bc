/* smtp-reply.h - SMTP reply parser (RFC 5321 §4.2) and EHLO keyword reader (§4.1.1.1),
 * with RFC 3463 enhanced status codes. Pure functions over bytes: no I/O, no globals, no
 * heap. The parser is fed whatever the socket gave, split anywhere, and says when one
 * complete reply is there; it never blocks.
 *
 *   Reply-line = *( Reply-code "-" [ textstring ] CRLF )
 *                Reply-code [ SP textstring ] CRLF
 *   Reply-code = %x32-35 %x30-35 %x30-39
 *
 * Tolerated (see VIOLATIONS.md): a bare LF as the line end; a last line "250" with
 * neither separator nor text; control bytes in the text (each becomes '?'); 8-bit bytes
 * in the text (kept as they are: an SMTPUTF8 server may send UTF-8).
 *
 * Bounded: a line over SMTP_LINE_MAX bytes or a reply over SMTP_REPLY_LINES_MAX lines is
 * an error, text beyond SMTP_REPLY_TEXT_MAX is dropped. All state lives in the caller's
 * struct smtp_reply_parser (about 8 KiB), so a hostile server cannot make it allocate.
 */
#ifndef MAILFS_SMTP_REPLY_H
#define MAILFS_SMTP_REPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SMTP_REPLY_TEXT_MAX 4096  /* text kept per reply; longer is truncated, never an error */
#define SMTP_LINE_MAX 4096        /* a longer reply line is an error (RFC 5321 §4.5.3.1.5: 512) */
#define SMTP_REPLY_LINES_MAX 1000 /* a reply with more lines is an error */

struct smtp_reply {
	int code;          /* 200..599: the first digit is 2-5 */
	char enhanced[32]; /* RFC 3463 "5.1.1" from the first line if present (its class equals
			    * the code's first digit), else "" */
	char text[SMTP_REPLY_TEXT_MAX]; /* each line's text after the code, the separator and
					 * (when the first line had one) the enhanced code,
					 * joined with "\n"; NUL-terminated; when truncated,
					 * cut at a UTF-8 character boundary */
	unsigned nlines;                /* lines in the reply, 1..SMTP_REPLY_LINES_MAX */
};

enum smtp_parse { SMTP_PARSE_MORE, SMTP_PARSE_DONE, SMTP_PARSE_ERROR };

/* Opaque in spirit: only smtp-reply.c touches the fields. */
struct smtp_reply_parser {
	char line[SMTP_LINE_MAX + 2]; /* the partial line (room for a CR before the LF) */
	size_t linelen;
	struct smtp_reply cur; /* the reply being collected */
	size_t textlen;
	bool truncated;
	bool failed; /* sticky: every later call returns SMTP_PARSE_ERROR */
	char err[128];
};

/* Start (or restart, e.g. after STARTTLS) with nothing buffered. */
void smtp_reply_parser_init(struct smtp_reply_parser *p);

/* Feed data[0..len). *used is set to the bytes consumed.
 * SMTP_PARSE_MORE: everything was consumed, the reply is not complete yet.
 * SMTP_PARSE_DONE: *out holds one complete reply; the bytes after its last line are not
 *   consumed (feed them again for the next reply). The parser is ready for the next one.
 * SMTP_PARSE_ERROR: err (if errlen > 0) says why, e.g. "reply line without a 3-digit
 *   code", "code changed in a multi-line reply (250 then 550)", "line longer than 4096
 *   bytes", "more than 1000 lines in one reply". The error is sticky until
 *   smtp_reply_parser_init(); *out is left untouched.
 * out and err may be the same across calls or not; only *p keeps state. */
enum smtp_parse smtp_reply_parse(struct smtp_reply_parser *p, const char *data, size_t len,
				 size_t *used, struct smtp_reply *out, char *err, size_t errlen);

/* Service extensions from a 250 reply to EHLO (RFC 5321 §4.1.1.1: the first line is the
 * server's name, each further line "keyword [params]"). Keywords are case-insensitive. */
enum smtp_auth_bits {
	SMTP_AUTH_BIT_PLAIN = 1 << 0,
	SMTP_AUTH_BIT_LOGIN = 1 << 1,
	SMTP_AUTH_BIT_XOAUTH2 = 1 << 2,
	SMTP_AUTH_BIT_CRAM_MD5 = 1 << 3,
	SMTP_AUTH_BIT_OTHER = 1 << 4, /* some mechanism we do not implement */
};
struct smtp_ehlo {
	bool pipelining;          /* RFC 2920 */
	bool size_offered;        /* RFC 1870 SIZE */
	uint64_t size;            /* SIZE limit; 0 = none announced (or "SIZE 0", "SIZE" alone) */
	bool eightbitmime;        /* RFC 6152 */
	bool smtputf8;            /* RFC 6531 */
	bool starttls;            /* RFC 3207 */
	bool enhancedstatuscodes; /* RFC 2034 */
	bool auth;                /* RFC 4954: AUTH (or the pre-standard "AUTH=") was listed */
	unsigned auth_mechs;      /* enum smtp_auth_bits, union of both forms */
};
/* Fill *e from an EHLO reply (anything but a 2xx reply gives all false/0). */
void smtp_ehlo_parse(const struct smtp_reply *r, struct smtp_ehlo *e);
/* Is `kw` (e.g. "PIPELINING", "DSN") the keyword of one of the reply's extension lines?
 * Case-insensitive; "AUTH" also matches the "AUTH=..." form. */
bool smtp_ehlo_has(const struct smtp_reply *r, const char *kw);

#endif
