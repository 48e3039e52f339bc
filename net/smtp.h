/* smtp.h - SMTP submission client over net/conn (RFC 5321, RFC 6409 submission, with
 * RFC 3207 STARTTLS, RFC 4954 AUTH, RFC 2920 PIPELINING, RFC 1870 SIZE, RFC 6152 8BITMIME,
 * RFC 6531 SMTPUTF8, RFC 3463 enhanced status codes).
 *
 * Protocol logic only: the bytes come from net/conn, replies from net/smtp-reply. Never
 * authenticates or sends mail over plaintext unless the account says `tls = off`: an
 * smtp:// server that does not offer STARTTLS is SMTP_ERR_NOTLS before any AUTH or MAIL.
 * Traces redact AUTH arguments and SASL responses; secrets are wiped after use.
 *
 * One session sends any number of messages (smtp_send after smtp_send); after a
 * per-message failure that leaves the session usable the client sends RSET itself.
 * Message bodies are streamed from the caller's reader in pieces, never held whole.
 *
 * Not thread-safe: one thread drives a session. Ownership: the caller owns what it passes
 * in (borrowed for the duration of the call only); struct smtp_send_result holds memory
 * of the client's that smtp_send_result_free() releases.
 *
 * Errors and what the caller should do (DESIGN.md "Sending (outbox)"):
 *   SMTP_ERR_CONN, SMTP_ERR_PROTOCOL, SMTP_ERR_TEMP   temporary: retry later
 *   SMTP_ERR_PERM                                     permanent: the message is refused
 *   SMTP_ERR_NOTLS, SMTP_ERR_AUTH                     configuration: retrying will not help
 *   SMTP_ERR_ABORTED                                  the caller's reader failed
 * After SMTP_ERR_CONN, SMTP_ERR_PROTOCOL, SMTP_ERR_ABORTED or a 421 reply the session is
 * dead: every later call fails at once with SMTP_ERR_CONN; close it and connect again.
 */
#ifndef MAILFS_SMTP_H
#define MAILFS_SMTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "net/conn.h"
#include "net/smtp-reply.h"

/* Errors of this layer. The message (smtp_errmsg) says which server and why. */
enum smtp_err {
	SMTP_OK = 0,
	SMTP_ERR_CONN,     /* network, TLS, timeout, server closed: temporary */
	SMTP_ERR_PROTOCOL, /* malformed or unexpected reply: temporary; the session is dead */
	SMTP_ERR_NOTLS,    /* smtp:// server without STARTTLS: never falls back to plaintext */
	SMTP_ERR_AUTH,     /* login refused (535, 534, 538, ...) or impossible */
	SMTP_ERR_TEMP,     /* 4xx reply (a 421 also ends the session) */
	SMTP_ERR_PERM,     /* 5xx reply, or refused here before sending (size, SMTPUTF8) */
	SMTP_ERR_ABORTED,  /* the body reader failed; the session is dead and the server
			    * discards the partial message (the data was never ended) */
};

struct smtp_opts {
	const char *host; /* borrowed; name or IP literal, checked against the certificate */
	uint16_t port;
	bool implicit_tls; /* smtps:// (RFC 8314 port 465) */
	bool plaintext;    /* tls = off: no STARTTLS, warned about */
	struct tls_opts tls;
	int timeout_ms;        /* each wait; default 30000 (RFC 5321 §4.5.3.2 allows minutes) */
	int final_timeout_ms;  /* wait for the reply to the end of data; default 600000 as in
				* RFC 5321 §4.5.3.2.6, and never less than timeout_ms */
	const char *trace;     /* name in traces ("smtp alice"); borrowed */
	const char *helo_name; /* EHLO argument; NULL: "localhost". No spaces or controls. */
};

struct smtp;

/* Connect, read the greeting (220; a 554 greeting is SMTP_ERR_PERM, a 4xx one
 * SMTP_ERR_TEMP), EHLO (required: a server refusing EHLO is SMTP_ERR_PERM), then unless
 * implicit TLS or plaintext was asked for: STARTTLS (not offered: SMTP_ERR_NOTLS), the TLS
 * handshake and EHLO again, forgetting what was learned before TLS (RFC 3207 §4.2).
 * Returns SMTP_OK and *s_r, or an error with a one-line message in err (*s_r NULL). */
enum smtp_err smtp_connect(const struct smtp_opts *o, struct smtp **s_r, char *err, size_t errlen);

enum smtp_auth_mech { SMTP_AUTH_AUTO, SMTP_AUTH_PLAIN, SMTP_AUTH_LOGIN, SMTP_AUTH_XOAUTH2 };

/* Authenticate (RFC 4954). AUTO: PLAIN if offered, else LOGIN. PLAIN and XOAUTH2 send an
 * initial response; XOAUTH2 uses `secret` as the bearer token, and its 334 error challenge
 * is answered with an empty line as the mechanism requires, its JSON kept in the message.
 * user NULL: no login; SMTP_OK (the server will say at MAIL or RCPT if it wanted one).
 * Errors: SMTP_ERR_AUTH (refused with 5xx, or the mechanism is not offered, or no AUTH at
 * all), SMTP_ERR_TEMP (4xx, e.g. 454), SMTP_ERR_CONN/PROTOCOL. The secret never reaches a
 * trace or a message. */
enum smtp_err smtp_login(struct smtp *s, enum smtp_auth_mech mech, const char *user,
			 const char *secret);

/* Was `kw` announced in the last EHLO reply ("PIPELINING", "DSN", "AUTH")? Case-insensitive. */
bool smtp_has_ext(const struct smtp *s, const char *kw);
/* RFC 1870 SIZE limit from EHLO; 0 = none announced. */
uint64_t smtp_size_limit(const struct smtp *s);

struct smtp_rcpt_result {
	int code;          /* reply to RCPT TO; 0 if none came (the session broke first) */
	char enhanced[32]; /* "5.1.1" or "" */
	char *text;        /* owned by the result; the reply text, NULL if no reply came */
};

struct smtp_send_result {
	enum smtp_err status;          /* also the return value of smtp_send */
	struct smtp_reply reply;       /* the reply that decided: the one to the end of data on
					* success, else the failing one; code 0 when the failure was
					* decided here (size, SMTPUTF8, reader, connection): then
					* reply.text holds our explanation */
	const char *stage;             /* static: "MAIL FROM", "RCPT TO", "DATA", "end of data",
					* "SIZE", "SMTPUTF8", "8BITMIME", "body", "session" */
	struct smtp_rcpt_result *rcpt; /* owned; one per envelope recipient, same order */
	size_t nrcpt;
	size_t naccepted; /* recipients the server accepted (2xx to RCPT TO) */
};

struct smtp_envelope {
	const char *from;         /* addr-spec without <>; "" for the null path <> */
	const char *const *rcpts; /* addr-specs without <> */
	size_t nrcpts;            /* at least 1 */
	uint64_t size;            /* message size, sent as SIZE= when offered; 0 = unknown.
				   * An estimate (RFC 1870 §3): best counted with CRLF ends */
	bool body_8bit;           /* body has 8-bit bytes: BODY=8BITMIME (RFC 6152) */
	bool smtputf8;            /* UTF-8 addresses or headers: SMTPUTF8 (RFC 6531); implied
				   * by an 8-bit byte in any address */
};

/* Fills buf with up to len message bytes: returns the count (> 0), 0 at the end, -1 on
 * error. The bytes are the message as stored (LF or CRLF line ends, no dot-stuffing). */
typedef ssize_t (*smtp_reader)(void *ctx, char *buf, size_t len);

/* Send one message; returns res->status (res is always filled; free it with
 * smtp_send_result_free, also after a failure).
 *
 * Checked first, before anything is sent (SMTP_ERR_PERM, reply.code 0): env->size over
 * the server's SIZE limit ("message size N exceeds the server's limit M", RFC 1870 §6);
 * SMTPUTF8 needed but not offered (RFC 6531 §3.4); an 8-bit body but no 8BITMIME (RFC
 * 6152 §3: we cannot downgrade); addresses holding CR, LF, '<' or '>'.
 *
 * With PIPELINING (RFC 2920 §3.1) MAIL, the RCPTs and DATA go in one write (in groups of
 * at most 100 commands before replies are read, to avoid a window deadlock), else one by
 * one. MAIL refused: that reply decides. Every RCPT refused: any 4xx makes it
 * SMTP_ERR_TEMP, else SMTP_ERR_PERM, the first reply of that class decides, and no body
 * is sent; if the pipelined DATA got 354 anyway, a lone "." ends it (RFC 2920 §3.1) and
 * the message goes nowhere. Some accepted: the body is streamed from rd (bare LF and bare
 * CR become CRLF, lines starting with "." are dot-stuffed, a final CRLF is added if
 * missing, then "." — RFC 5321 §4.5.2), and the reply to the end of data decides: 2xx
 * SMTP_OK (check res->rcpt for recipients that were refused), 4xx SMTP_ERR_TEMP, 5xx
 * SMTP_ERR_PERM.
 *
 * The reader failing mid-body is SMTP_ERR_ABORTED: the connection is dropped rather than
 * ending the data, so the server never takes a truncated message. A connection lost after
 * the final "." but before its reply is SMTP_ERR_CONN although the server may have taken
 * the message (RFC 5321 §4.5.4.1 and RFC 1047: the duplicate risk of SMTP).
 * After a failure that leaves the session usable, RSET is sent (RFC 5321 §4.1.1.5). */
enum smtp_err smtp_send(struct smtp *s, const struct smtp_envelope *env, smtp_reader rd, void *ctx,
			struct smtp_send_result *res);
/* Free what a result owns; the struct may be reused. Accepts a zeroed result. */
void smtp_send_result_free(struct smtp_send_result *res);

/* The last error, e.g. "localhost:587: login as alice refused (AUTH PLAIN): 535 5.7.8
 * Error: authentication failed", "localhost:587: RCPT TO: 550 5.1.1 ...". */
const char *smtp_errmsg(const struct smtp *s);
/* The connection (for conn_describe: TLS version and cipher, byte counts). Borrowed. */
struct conn *smtp_conn(struct smtp *s);
/* QUIT (best effort, waits at most 2 s for 221), close, free. Sets *s to NULL; accepts
 * NULL. */
void smtp_close(struct smtp **s);

#endif
