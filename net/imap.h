/* imap.h - IMAP4rev1 client over net/conn (RFC 3501, with RFC 2595 STARTTLS, RFC 4959
 * SASL-IR, RFC 5161 ENABLE, RFC 6154 SPECIAL-USE, RFC 7162 CONDSTORE/QRESYNC, RFC 4731
 * ESEARCH, RFC 2971 ID).
 *
 * Protocol logic only: the bytes come from net/conn, responses from net/imap-parser. Never
 * logs in over plaintext unless the account says `tls = off`: a server that does not offer
 * STARTTLS (or answers PREAUTH before TLS) is an error. Traces redact LOGIN and
 * AUTHENTICATE arguments.
 *
 * Commands are tagged and may be pipelined: imap_send() queues a command and returns its
 * tag number, waiting (and dispatching responses) only when max_inflight commands are
 * already outstanding; imap_wait() dispatches responses until a given command completes.
 * The simple calls (imap_select, imap_list, ...) send one command and wait for it.
 *
 * Message bodies are never held whole: FETCH body sections are streamed to the caller's
 * imap_fetch_handler as a size and then chunks.
 *
 * Not thread-safe: one thread drives a client. Ownership: the caller owns what it passes
 * in; what the client returns through *_r pointers is the caller's to free with the
 * matching free function.
 */
#ifndef MAILFS_IMAP_H
#define MAILFS_IMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "net/conn.h"
#include "net/imap-parser.h"

/* Errors of this layer. The message (imap_errmsg) says which server and why. */
enum imap_err {
	IMAP_OK = 0,
	IMAP_ERR_CONN,     /* network/TLS: conn_error() on imap_conn() tells which */
	IMAP_ERR_PROTOCOL, /* malformed or unexpected response; the connection is unusable */
	IMAP_ERR_NO,       /* the command failed (tagged NO) */
	IMAP_ERR_BAD,      /* the server rejected the command (tagged BAD) */
	IMAP_ERR_BYE,      /* the server closed the session */
	IMAP_ERR_AUTH,     /* login refused */
	IMAP_ERR_NOTLS,    /* STARTTLS required but not offered (or PREAUTH in plaintext) */
	IMAP_ERR_ABORTED,  /* a callback of the caller returned non-zero */
};

struct imap_opts {
	const char *host; /* borrowed */
	uint16_t port;
	bool implicit_tls; /* imaps:// */
	bool plaintext;    /* tls = off: no STARTTLS, warned about */
	struct tls_opts tls;
	int timeout_ms;        /* default 30000 */
	unsigned max_inflight; /* pipelined commands at most; default 32 */
	const char *trace;     /* name in traces ("imap alice"); borrowed */
};

struct imap;

/* Connect, read the greeting, learn capabilities, upgrade with STARTTLS unless implicit
 * TLS or plaintext was asked for. Returns IMAP_OK and *imap_r, or an error with a one-line
 * message in err (then *imap_r is NULL). */
enum imap_err imap_connect(const struct imap_opts *opts, struct imap **imap_r, char *err,
			   size_t errlen);
/* LOGOUT (best effort, short wait) and close. Sets *c to NULL; accepts NULL. */
void imap_close(struct imap **c);

/* Authenticate: AUTHENTICATE PLAIN (with SASL-IR when offered) if the server offers
 * AUTH=PLAIN, else LOGIN (unless LOGINDISABLED). IMAP_ERR_AUTH when refused. The password
 * never reaches a trace or a message. */
enum imap_err imap_login(struct imap *c, const char *user, const char *password);

/* Capability check (case-insensitive, e.g. "CONDSTORE", "AUTH=PLAIN"). */
bool imap_has_cap(const struct imap *c, const char *cap);
/* The capability list as the server sent it, space separated. */
const char *imap_caps(const struct imap *c);

/* ENABLE the given space-separated extensions (e.g. "CONDSTORE QRESYNC") when the server
 * has ENABLE; those the server confirms can be queried with imap_enabled(). */
enum imap_err imap_enable(struct imap *c, const char *exts);
bool imap_enabled(const struct imap *c, const char *ext);

/* One mailbox from LIST. */
enum imap_mbox_flags {
	IMAP_MBOX_NOSELECT = 1 << 0, /* \Noselect or \NonExistent */
	IMAP_MBOX_HASCHILDREN = 1 << 1,
	IMAP_MBOX_HASNOCHILDREN = 1 << 2,
	IMAP_MBOX_SENT = 1 << 3,
	IMAP_MBOX_DRAFTS = 1 << 4,
	IMAP_MBOX_TRASH = 1 << 5,
	IMAP_MBOX_JUNK = 1 << 6,
	IMAP_MBOX_ARCHIVE = 1 << 7,
	IMAP_MBOX_ALL = 1 << 8,
	IMAP_MBOX_FLAGGED = 1 << 9,
	IMAP_MBOX_BAD_NAME = 1 << 10, /* the name is not valid modified UTF-7: name == raw */
};

struct imap_status_info {
	uint32_t messages, uidnext, uidvalidity, unseen;
	uint64_t highestmodseq; /* 0 if not reported */
};

struct imap_mbox {
	char *raw;   /* the name as the server sent it (modified UTF-7) */
	char *name;  /* decoded to UTF-8 */
	char delim;  /* hierarchy delimiter, '\0' for NIL */
	unsigned flags; /* enum imap_mbox_flags */
	bool has_status; /* the server sent its STATUS with the LIST (LIST-STATUS) */
	struct imap_status_info status; /* MESSAGES UIDNEXT UIDVALIDITY [HIGHESTMODSEQ] */
};

/* LIST "" "*" (with RETURN (SPECIAL-USE) when offered, and with RETURN (STATUS (MESSAGES
 * UIDNEXT UIDVALIDITY [HIGHESTMODSEQ])) where LIST-STATUS is offered, RFC 5819: one round
 * trip tells which folders changed). At most 100,000 mailboxes.
 * *list_r is an array of *n_r entries, to free with imap_mbox_list_free(). */
enum imap_err imap_list(struct imap *c, struct imap_mbox **list_r, size_t *n_r);
void imap_mbox_list_free(struct imap_mbox **list, size_t n);
/* The mailbox as the user sees its path: the UTF-8 name with the server's hierarchy
 * delimiter shown as "/" (a NIL delimiter changes nothing). Written to out (truncated to
 * outlen - 1 bytes and always terminated when outlen > 0); returns out. Pure: no I/O, no
 * escaping (file names are cache/names' business). */
char *imap_mbox_path(const struct imap_mbox *mb, char *out, size_t outlen);

/* STATUS raw-name (MESSAGES UIDNEXT UIDVALIDITY UNSEEN [HIGHESTMODSEQ]). */
enum imap_err imap_status(struct imap *c, const char *raw, struct imap_status_info *r);

struct imap_select_info {
	uint32_t exists;
	uint32_t uidvalidity;
	uint32_t uidnext;
	uint64_t highestmodseq; /* 0 when the server has NOMODSEQ or no CONDSTORE */
	bool readonly;
};
/* SELECT (or EXAMINE when readonly) a mailbox by its raw name; with CONDSTORE enabled or
 * offered, asks for it. The info is filled from the untagged responses. */
enum imap_err imap_select(struct imap *c, const char *raw, bool readonly,
			  struct imap_select_info *r);

/* SELECT/EXAMINE with QRESYNC (RFC 7162 3.2.5; ENABLE QRESYNC first):
 *   select-param =/ "QRESYNC" SP "(" uidvalidity SP mod-sequence-value [SP known-uids] ")"
 * with the UIDVALIDITY and HIGHESTMODSEQ the caller knew and known_uids (a uid-set, or
 * NULL). When the UIDVALIDITY still holds the server answers with FETCH responses of the
 * messages changed since modseq (to the fetch handler) and VANISHED (EARLIER) of those
 * expunged (to its vanished callback). */
enum imap_err imap_select_qresync(struct imap *c, const char *raw, bool readonly,
				  uint32_t uidvalidity, uint64_t modseq, const char *known_uids,
				  struct imap_select_info *r);

/* Is a mailbox selected? */
bool imap_selected(const struct imap *c);

/* UID SEARCH <criteria> (ESEARCH "RETURN (ALL)" when offered). *uids_r: ascending UIDs
 * (caller frees), at most 50,000,000. */
enum imap_err imap_uid_search(struct imap *c, const char *criteria, uint32_t **uids_r,
			      size_t *n_r);

enum imap_err imap_noop(struct imap *c);

/* Untagged responses that tell the selected mailbox changed (EXISTS, EXPUNGE, FETCH,
 * VANISHED) dispatched since the last reset; reset: start counting again. */
unsigned imap_events(struct imap *c, bool reset);

/* IDLE (RFC 2177): imap_idle_begin sends IDLE and waits for the server's "+" (no other
 * command may be in progress); imap_idle_wait waits up to timeout_ms for the server to
 * say something and dispatches all of it (count changes with imap_events), returning
 * IMAP_OK also when nothing came; imap_idle_end sends DONE and waits for the IDLE's
 * tagged reply. A server that ends the IDLE itself leaves imap_idling() false (its
 * result is imap_idle_wait's). No other command may be sent while idling. */
enum imap_err imap_idle_begin(struct imap *c);
enum imap_err imap_idle_wait(struct imap *c, int timeout_ms);
enum imap_err imap_idle_end(struct imap *c);
bool imap_idling(const struct imap *c);

/* The destination UID of the last COPY or MOVE of a single message (COPYUID, RFC 4315),
 * or 0; reset: clear it (call before the command). */
uint32_t imap_copyuid(struct imap *c, bool reset);
/* The destination UID of source UID src in the last COPYUID (any number of messages, up
 * to IMAP_COPYUID_MAX), or 0. */
#define IMAP_COPYUID_MAX 4096
uint32_t imap_copyuid_of(struct imap *c, uint32_t src);

/* Supplies message bytes: fills buf with up to len bytes, returns how many (> 0), or 0 / -1
 * when the source ends or fails. */
typedef ssize_t (*imap_reader)(void *ctx, char *buf, size_t len);
/* APPEND raw-name [(flags)] {size} (RFC 3501 6.3.11): the message is streamed from `rd` in
 * pieces and must be exactly `size` bytes with CRLF line ends. A non-synchronizing literal
 * with LITERAL+ (RFC 7888), else the server's "+" is awaited. If the reader fails or ends
 * early the literal cannot be completed: IMAP_ERR_ABORTED and the connection is unusable.
 * *uid_r (may be NULL): the new message's UID from APPENDUID (RFC 4315), or 0. */
enum imap_err imap_append(struct imap *c, const char *raw, const char *flags, uint64_t size,
			  imap_reader rd, void *ctx, uint32_t *uid_r);
/* The same with an INTERNALDATE (seconds since the epoch, sent in UTC; 0: none). */
enum imap_err imap_append_at(struct imap *c, const char *raw, const char *flags, int64_t date,
			     uint64_t size, imap_reader rd, void *ctx, uint32_t *uid_r);

/* Receives FETCH responses while a command runs.
 * body_begin/body_data/body_end: one body section literal (BODY[...]) streamed in chunks;
 *   `seq` is the message sequence number, `uid` the UID if the server sent it before the
 *   section in the same response (it does when UID is asked for first), else 0; `section`
 *   the section atom ("BODY[]", "BODY[]<0>", "BODY[HEADER.FIELDS (...)]"). Servers may run
 *   pipelined FETCH commands in parallel, so the UID is the only safe way to place a body.
 * fetch: once per complete FETCH response, with its attribute list (pairs of name and
 *   value; streamed sections appear as IMAP_ARG_STREAMED with their size). Use
 *   imap_fetch_find() to pick attributes.
 * Any callback may be NULL. A non-zero return aborts the connection (IMAP_ERR_ABORTED). */
struct imap_fetch_handler {
	int (*body_begin)(void *ctx, uint32_t seq, uint32_t uid, const char *section,
			  uint64_t size);
	int (*body_data)(void *ctx, const unsigned char *data, size_t len);
	int (*body_end)(void *ctx);
	int (*fetch)(void *ctx, uint32_t seq, const struct imap_arg *attrs, size_t nattrs);
	/* vanished: UIDs expunged (QRESYNC enabled): `set` is a uid-set to walk with
	 * imap_uidset_next (valid during the call); earlier: "VANISHED (EARLIER)", the answer
	 * of a SELECT ... (QRESYNC ...) or UID FETCH ... (VANISHED). A malformed VANISHED is
	 * IMAP_ERR_PROTOCOL. */
	int (*vanished)(void *ctx, bool earlier, const char *set);
};
void imap_set_fetch_handler(struct imap *c, const struct imap_fetch_handler *h, void *ctx);
/* Only inside body_begin: an attribute (atom or quoted string, e.g. "INTERNALDATE") that the
 * server sent before the body in the same FETCH response, or NULL. */
const char *imap_fetch_attr_now(const struct imap *c, const char *name);
/* The value following attribute `name` (case-insensitive) in a FETCH list, or NULL. */
const struct imap_arg *imap_fetch_find(const struct imap_arg *attrs, size_t nattrs,
				       const char *name);

/* Queue a command (the tag is added; `fmt` is the rest, without CRLF). Waits only while
 * max_inflight commands are outstanding. Returns IMAP_OK and the command's id in *id_r. */
enum imap_err imap_send(struct imap *c, unsigned *id_r, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Dispatch responses until command `id` completes. IMAP_OK for a tagged OK, IMAP_ERR_NO /
 * IMAP_ERR_BAD with the server's text in imap_errmsg(), or a connection error. */
enum imap_err imap_wait(struct imap *c, unsigned id);
/* Dispatch responses until no command is outstanding; the first failure is returned. */
enum imap_err imap_wait_all(struct imap *c);
/* Commands sent and not yet completed. */
unsigned imap_inflight(const struct imap *c);

/* Quote a string as an IMAP quoted string into out ("a\"b" -> "\"a\\\"b\""). Returns
 * out, or NULL if it does not fit or holds CR, LF or NUL (then a literal is needed). */
char *imap_quote(const char *s, char *out, size_t outlen);

/* The last error's message ("imap.example.com:993: A3 NO [AUTHENTICATIONFAILED] ..."). */
const char *imap_errmsg(const struct imap *c);
struct conn *imap_conn(struct imap *c);

#endif
