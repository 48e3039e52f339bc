/* pop3-reply.h - POP3 reply parser (RFC 1939 §3, RFC 2449 for CAPA). Pure functions over
 * bytes: no I/O, no globals, no heap. Each parser is fed whatever the socket gave, split
 * anywhere, and says when its unit is complete; it never blocks.
 *
 * Two parsers, because a POP3 reply has two parts:
 *   - the status line: "+OK [text]" CRLF, "-ERR [text]" CRLF, or "+ [base64]" CRLF (the
 *     SASL continuation of RFC 5034);
 *   - after a positive status to a multi-line command (CAPA, UIDL, LIST, TOP, RETR), the
 *     multi-line body: lines ending in CRLF, a line beginning with "." has it stripped
 *     (dot-unstuffing), and the line "." CRLF ends the body. The terminator is found across
 *     any split of the input.
 *
 * Tolerated (see VIOLATIONS.md): a bare LF as the line end, in the status line and in the
 * body (the byte is passed on as it came); lower case "+ok" / "-err"; control bytes in
 * status text (each becomes '?').
 *
 * Bounded: a status line over POP3_LINE_MAX bytes is an error; a body longer than the
 * caller's cap (chosen at init, 0 = none: RETR streams to disk) is an error. Status state
 * lives in the caller's struct (about 4 KiB), the body decoder keeps a few bytes of state.
 * The caller owns every buffer it passes in.
 */
#ifndef MAILFS_POP3_REPLY_H
#define MAILFS_POP3_REPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define POP3_LINE_MAX 4096 /* a longer status line is an error (RFC 1939 / RFC 2449: 512) */

enum pop3_parse { POP3_PARSE_MORE, POP3_PARSE_DONE, POP3_PARSE_ERROR };

enum pop3_status_kind { POP3_OK, POP3_ERR, POP3_CONT };

struct pop3_status {
	enum pop3_status_kind kind;
	char code[64];                /* RFC 2449 §8 extended code, e.g. "IN-USE", "SYS/TEMP",
				       * from "-ERR [IN-USE] ..."; "" if none */
	char text[POP3_LINE_MAX + 1]; /* the text after the indicator and one SP (after the
				       * code if there was one), NUL-terminated, control bytes
				       * replaced by '?' */
};

/* Opaque in spirit: only pop3-reply.c touches the fields. */
struct pop3_status_parser {
	char line[POP3_LINE_MAX + 2];
	size_t linelen;
	bool failed; /* sticky */
	char err[128];
};

void pop3_status_parser_init(struct pop3_status_parser *p);

/* Feed data[0..len). *used is set to the bytes consumed.
 * POP3_PARSE_MORE: all consumed, the line is not complete yet.
 * POP3_PARSE_DONE: *out holds the status; bytes after its line end are not consumed.
 * POP3_PARSE_ERROR: err (if errlen > 0) says why ("status line neither +OK nor -ERR",
 *   "status line longer than 4096 bytes"); sticky until init; *out untouched. */
enum pop3_parse pop3_status_parse(struct pop3_status_parser *p, const char *data, size_t len,
				  size_t *used, struct pop3_status *out, char *err, size_t errlen);

/* Multi-line body decoder. */
struct pop3_body {
	int state;
	uint64_t total; /* bytes passed on so far */
	uint64_t max;   /* cap on `total`, 0 = none */
	bool failed;
};

/* Start a body; `max` caps the unstuffed bytes (0: no cap). */
void pop3_body_init(struct pop3_body *b, uint64_t max);

/* Decode data[0..len) into out (the caller gives at least len + 1 bytes: a CR held back
 * from the previous call may come out with this one).
 * *used: input bytes consumed; *outlen: bytes written to out (the message content, with
 * its line ends, without stuffing dots and without the terminator).
 * POP3_PARSE_MORE: all consumed, the terminator not seen yet.
 * POP3_PARSE_DONE: the terminator was consumed; bytes after it are not.
 * POP3_PARSE_ERROR: the body exceeds the cap (sticky until init). The bytes up to the cap
 *   are still reported in *outlen; never more than `max` bytes in all. */
enum pop3_parse pop3_body_decode(struct pop3_body *b, const char *data, size_t len, size_t *used,
				 char *out, size_t *outlen);

/* One line of a UIDL listing (RFC 1939 §7): "msg SP unique-id", unique-id 1*70 of
 * 0x21-0x7E. `line` without its line end. Fills *msg_r and uid_r (NUL-terminated, uidcap
 * at least 71). Returns false if malformed. */
bool pop3_uidl_line(const char *line, size_t len, uint32_t *msg_r, char *uid_r, size_t uidcap);

/* One line of a LIST listing or the +OK text of "LIST n" (RFC 1939 §5): "msg SP octets"
 * (anything after a further SP is ignored, as the RFC allows). Overflow is an error. */
bool pop3_list_line(const char *line, size_t len, uint32_t *msg_r, uint64_t *size_r);

/* Is `kw` (e.g. "UIDL", "TOP", "STLS", "SASL") the keyword of this NUL-terminated CAPA
 * line (without its line end)? If so and
 * args_r is not NULL, *args_r points at the arguments after it in `line` ("" if none).
 * Case-insensitive. */
bool pop3_capa_is(const char *line, const char *kw, const char **args_r);

#endif
