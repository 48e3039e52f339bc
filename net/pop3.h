/* pop3.h - POP3 client over net/conn (RFC 1939, RFC 2449 CAPA, RFC 2595 STLS, RFC 5034
 * SASL PLAIN).
 *
 * Protocol logic only: the bytes come from net/conn, replies are decoded by net/pop3-reply
 * (status lines; multi-line bodies with dot-unstuffing, the CRLF.CRLF terminator found
 * across any split of the reads). Never logs in over plaintext unless asked
 * (`plaintext`): a pop3:// server that does not offer STLS is an error. Traces redact
 * PASS and AUTH lines.
 *
 * Bounded memory: listing lines and TOP headers have caps chosen here; RETR streams the
 * message to the caller's callback in chunks of at most POP3_CHUNK bytes.
 *
 * Pipelining (RFC 2449 §6.6): when CAPA lists PIPELINING, TOP and RETR can be sent ahead
 * of their replies (pop3_send_top/pop3_send_retr) within a bounded window, the replies
 * read in order (pop3_read_top/pop3_read_retr). Without PIPELINING the window is one
 * command, so the same calling code runs one command at a time. Nothing is buffered
 * beyond one reply's chunk: the replies in flight wait in the kernel's socket buffers.
 *
 * Not thread-safe: one thread drives a client. The caller owns what it passes in.
 * Deletions (DELE) take effect on the server only at pop3_quit() (RFC 1939 §6).
 */
#ifndef MAILFS_POP3_H
#define MAILFS_POP3_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/buf.h"
#include "net/tls.h"

#define POP3_CHUNK 16384
#define POP3_UIDL_MAX 71   /* 70 characters + NUL (RFC 1939 §7) */
#define POP3_TOP_MAX (256 * 1024) /* cap on a TOP n 0 header block */
#define POP3_WINDOW_CMDS 32            /* the window with PIPELINING: commands in flight ... */
#define POP3_WINDOW_BYTES (1024 * 1024) /* ... and bytes their replies are expected to carry */

enum pop3_err {
	POP3_SUCCESS = 0,
	POP3_ERR_CONN,     /* connect, TLS, certificate, timeout, connection lost */
	POP3_ERR_NOTLS,    /* pop3:// and the server does not offer STLS */
	POP3_ERR_AUTH,     /* the server refused the user name or password */
	POP3_ERR_NO,       /* the server answered -ERR (e.g. no such message) */
	POP3_ERR_PROTOCOL, /* a reply that is not POP3, or over a cap */
	POP3_ERR_ABORT,    /* the caller's callback returned non-zero */
};

struct pop3_opts {
	const char *host; /* borrowed */
	uint16_t port;
	bool implicit_tls; /* pop3s:// */
	bool plaintext;    /* tls = off: no STLS (warned about) */
	struct tls_opts tls;
	int timeout_ms;
	const char *trace; /* e.g. "pop3 old"; borrowed */
};

struct pop3;

/* Connect, read the greeting, ask CAPA, and (pop3://) upgrade with STLS, asking CAPA
 * again. POP3_SUCCESS and *c_r, or an error with one line in err (*c_r NULL). */
enum pop3_err pop3_connect(const struct pop3_opts *opts, struct pop3 **c_r, char *err,
			   size_t errlen);
/* Log in: AUTH PLAIN when CAPA lists SASL PLAIN (the initial response on the AUTH line
 * when it fits 255 bytes, else after the server's "+" continuation), else USER/PASS.
 * POP3_ERR_AUTH when refused. */
enum pop3_err pop3_login(struct pop3 *c, const char *user, const char *password);
/* Send QUIT and read its reply (deletions are committed by the server now); the
 * connection stays allocated for pop3_close(). */
enum pop3_err pop3_quit(struct pop3 *c);
/* Close (without QUIT: DELEs not yet committed are forgotten by the server) and free;
 * sets *c to NULL. Accepts NULL. */
void pop3_close(struct pop3 **c);
const char *pop3_errmsg(const struct pop3 *c);
/* Does the last CAPA list this keyword (e.g. "UIDL", "TOP")? */
bool pop3_has_capa(const struct pop3 *c, const char *kw);

/* UIDL: msg_listed(ctx, msg, uidl) for each line, in the server's order. A callback
 * returning non-zero stops (the rest of the listing is still read): POP3_ERR_ABORT. */
enum pop3_err pop3_uidl(struct pop3 *c, int (*msg_listed)(void *ctx, uint32_t msg,
							  const char *uidl),
			void *ctx);
/* LIST: size_listed(ctx, msg, octets) for each line. */
enum pop3_err pop3_list(struct pop3 *c, int (*size_listed)(void *ctx, uint32_t msg,
							   uint64_t size),
			void *ctx);
/* TOP msg 0: the header block (unstuffed, CRLF line ends as sent) into out (reset first;
 * bytes past its cap or POP3_TOP_MAX are read and dropped). */
enum pop3_err pop3_top(struct pop3 *c, uint32_t msg, struct buf *out);
/* RETR msg: the message after dot-unstuffing, without the terminator, in chunks to
 * data_received(ctx, data, len). A callback returning non-zero aborts: the rest of the
 * message is read and dropped (the session stays usable) and POP3_ERR_ABORT returned. */
enum pop3_err pop3_retr(struct pop3 *c, uint32_t msg,
			int (*data_received)(void *ctx, const char *data, size_t len), void *ctx,
			uint64_t *total_r);
/* Does the server pipeline (CAPA listed PIPELINING)? */
bool pop3_can_pipeline(const struct pop3 *c);
/* May a TOP/RETR whose reply should carry about `expect` bytes be sent now (logged in,
 * room in the window)? Always true, once logged in, when nothing is in flight. */
bool pop3_window_room(const struct pop3 *c, uint64_t expect);
/* Queue "TOP msg 0" / "RETR msg" (sent with the next read). POP3_ERR_PROTOCOL when the
 * window has no room (ask pop3_window_room first) or not logged in; POP3_ERR_CONN. */
enum pop3_err pop3_send_top(struct pop3 *c, uint32_t msg, uint64_t expect);
enum pop3_err pop3_send_retr(struct pop3 *c, uint32_t msg, uint64_t expect);
/* Read the reply to the oldest command in flight, which must be a TOP (else
 * POP3_ERR_PROTOCOL); *msg_r says which message it was for. As pop3_top. POP3_ERR_NO: the
 * server refused this one message; the rest of the window is unaffected. */
enum pop3_err pop3_read_top(struct pop3 *c, uint32_t *msg_r, struct buf *out);
/* The same for a RETR; as pop3_retr (an aborting callback leaves the session usable). */
enum pop3_err pop3_read_retr(struct pop3 *c, uint32_t *msg_r,
			     int (*data_received)(void *ctx, const char *data, size_t len),
			     void *ctx, uint64_t *total_r);
/* Every other command (UIDL, LIST, DELE, NOOP, QUIT, and pop3_top/pop3_retr above) needs
 * an empty window: POP3_ERR_PROTOCOL otherwise. */

/* DELE msg (marked; removed at QUIT). POP3_ERR_NO if the server refused. */
enum pop3_err pop3_dele(struct pop3 *c, uint32_t msg);
/* NOOP (keeps the session alive, checks it). */
enum pop3_err pop3_noop(struct pop3 *c);

#endif
