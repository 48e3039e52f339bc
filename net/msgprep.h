/* msgprep.h - prepare a message file from the outbox for SMTP submission: the envelope
 * (sender, recipients) and the header block to send; the body is streamed through
 * crlf_convert() by the caller.
 *
 *   message     = (fields / obs-fields) [CRLF body]                    (RFC 5322 §3.5)
 *   field       = field-name ":" unstructured CRLF ; folded lines start with WSP (§2.2.3)
 *   orig-date   = "Date:" date-time CRLF                                (§3.6.1)
 *   from        = "From:" mailbox-list CRLF                             (§3.6.2)
 *   to / cc     = "To:" / "Cc:" address-list CRLF                       (§3.6.3)
 *   bcc         = "Bcc:" [address-list / CFWS] CRLF
 *   msg-id      = [CFWS] "<" id-left "@" id-right ">" [CFWS]            (§3.6.4)
 *
 * Pure functions over bytes: no I/O, no clock, no randomness, no global state; the caller
 * gives the time and a unique string. Addresses are parsed by addr_list_parse()
 * (address.h, RFC 5322 §3.4/§4.4, RFC 6532), the Subject decoded by rfc2047_decode().
 *
 * How the header block is read (the rules of mail-header.h): lines end in LF or CRLF; a
 * field starts with field-name *WSP ":" (field-name = 1*ftext, printable US-ASCII except
 * ":"); a line starting with SP or HTAB continues the field before it; the block ends
 * at the first empty line. The first line must be a field, else the file is not a message
 * (an mbox "From " line is not a field). A later line that is neither a field nor a
 * continuation (no colon: the user forgot the empty line before the text) ends the header
 * block and starts the body, as Postfix's cleanup reads it; the empty line is then added
 * in the header sent, so the receiver sees the same split.
 *
 * The caller owns everything it passes in; msgprep_free() releases what msgprep_parse()
 * allocated in *out.
 */
#ifndef MAILFS_MSGPREP_H
#define MAILFS_MSGPREP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* The largest header block accepted, counting its line endings and the empty line that
 * ends it. The caller passes at least min(file size, MSGPREP_MAX_HEADER + 2) bytes. */
#define MSGPREP_MAX_HEADER (1024 * 1024)
/* Envelope recipients after deduplication, at most (RFC 5321 §4.5.3.1.8 asks servers for
 * at least 100). */
#define MSGPREP_MAX_RCPTS 1000

struct msgprep {
	/* The envelope sender (reverse-path, RFC 5321 §4.1.1.2): the first address of the
	 * first non-empty From field, else the first address of default_from. Sender is not
	 * used. Owned. */
	char *env_from;
	/* Every address of every To, Cc and Bcc field, in that order of appearance in the
	 * header, deduplicated with addr_same() (the first spelling kept). At least one.
	 * Owned, as is each string. */
	char **rcpts;
	size_t nrcpts;
	/* The header block to send, NUL-terminated: every field of the input in its order,
	 * folds kept, except all Bcc fields (with their continuation lines) and empty
	 * From, Date and Message-ID fields; then, each when the input has no non-empty one,
	 * "From: <default_from>", "Date: <now as RFC 5322 date-time, +0000>" and
	 * "Message-ID: <unique@sender's domain>"; every line ending CRLF, a bare CR inside a
	 * line replaced by SP (RFC 5322 §2.2: CR and LF only together); the empty line
	 * "\r\n" last. Owned. */
	char *header;
	size_t header_len;
	/* Where the body starts in the input: just after the empty line that ends the
	 * header block, at the first line that is not a field (see above), or total_len
	 * when the header runs to the end of the file. */
	uint64_t body_offset;
	/* Some envelope address (env_from or a recipient) holds 8-bit bytes: the
	 * transaction needs SMTPUTF8 (RFC 6531). */
	bool smtputf8;
	/* The Message-ID with its angle brackets: the msg-id of the existing field (the
	 * first "<...>" in it, or its whole trimmed value in brackets when it has none), or
	 * the one added. Owned. */
	char *message_id;
	/* The first Subject, unfolded, trimmed and RFC 2047-decoded to UTF-8, for status
	 * displays; NULL when there is no Subject field. Owned. */
	char *subject;
};

/* Prepare the message whose first len bytes are in[0..len) (need not be NUL-terminated):
 * the caller passes the whole file, or at least its first MSGPREP_MAX_HEADER + 2 bytes;
 * total_len is the size of the whole file (>= len). default_from: the account's `from`
 * value as an address-list ("Me <me@example.com>"), or NULL. now: the time for an added
 * Date field. unique: the left part of an added Message-ID, which the caller makes unique
 * (e.g. "20261126183215.4711.q42"); it must be a dot-atom-text (RFC 5322 §3.6.4 id-left).
 *
 * On success fills *out (overwritten, not freed first) and returns 0. Else *out is left
 * empty and -1 is returned with errno ENOMEM, or EINVAL and one line for the user to read
 * in err (may be NULL when errlen is 0), one of:
 *   "empty file"
 *   "not a message: the file does not start with a header block"
 *   "not a message: NUL byte in the header block at offset N"
 *   "header block larger than 1 MiB"
 *   "header block incomplete: only N bytes given"   (the caller passed too few bytes)
 *   "no recipient: To, Cc and Bcc are missing or empty"
 *   "no sender: no From field and the account has no `from`"
 *   "To: <addr_list_parse() message>", the same for Cc, Bcc and From
 *   "account `from`: <addr_list_parse() message>"
 *   "From: no address"                               (a From that is only an empty group)
 *   "more than 1000 recipients"
 *   "clock out of range" / "invalid unique string"    (the caller's arguments) */
int msgprep_parse(const char *in, size_t len, uint64_t total_len, const char *default_from,
		  time_t now, const char *unique, struct msgprep *out, char *err, size_t errlen);

/* Release everything msgprep_parse() allocated; *p is empty again (safe to call twice). */
void msgprep_free(struct msgprep *p);

/* Streaming line-end normalisation of the body: every line ends in CRLF on the way out.
 * A bare LF becomes CRLF, CRLF stays, and a bare CR (one not followed by LF) becomes CRLF
 * too: RFC 5321 §2.3.8 says CR and LF must only occur together as CRLF, some servers
 * reject a bare CR, and a bare CR next to a "." is what SMTP smuggling exploits
 * ("<CR>.<CR>" read as the end of data by some receivers). After conversion the body
 * holds no CR or LF except in CRLF pairs, so dot-stuffing by lines is unambiguous. A bare
 * CR is the old Mac OS line ending, which is what its conversion to CRLF honours.
 *
 * st carries a CR at the end of one chunk over to the next call (it may be the first half
 * of a CRLF); initialise it to {false} and call crlf_finish() after the last chunk.
 * Converting a body in any number of chunks gives the same bytes as converting it whole.
 * out must have room for 2 * len + 1 bytes (crlf_finish(): 2). Returns the number of bytes
 * written to out (no NUL is added). */
struct crlf_state {
	bool pending_cr;
};
size_t crlf_convert(struct crlf_state *st, const char *in, size_t len, char *out);
/* Write out a CR held over from the last chunk (as CRLF); returns 0 or 2. */
size_t crlf_finish(struct crlf_state *st, char *out);

#endif
