/* conn.h - one connection to a server: TCP (IPv4/IPv6, connect timeout), optional TLS
 * (implicit, or upgraded in place by STARTTLS), a buffered reader that resumes partial lines
 * and a buffered writer. Every protocol client (imap, pop3, smtp) sits on this.
 *
 * Not thread-safe: one thread uses a connection at a time. Every wait (connect, handshake,
 * read, write) is bounded by the connection's timeout. Errors are sticky: after the first
 * failure every call fails with the same code, and the connection must be closed.
 */
#ifndef MAILFS_CONN_H
#define MAILFS_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/tls.h"

enum conn_err {
	CONN_OK = 0,
	CONN_ERR_RESOLVE,  /* host name did not resolve */
	CONN_ERR_CONNECT,  /* refused, unreachable, ... */
	CONN_ERR_TIMEOUT,  /* connect, handshake, read or write took too long */
	CONN_ERR_TLS,      /* TLS failure other than verification */
	CONN_ERR_CERT,     /* certificate or host name verification failed */
	CONN_ERR_CLOSED,   /* the peer closed the connection */
	CONN_ERR_IO,       /* read/write error */
	CONN_ERR_TOO_LONG, /* a line exceeded the cap */
	CONN_ERR_PROTOCOL, /* set by a protocol layer via conn_fail() */
	CONN_ERR_NOMEM,
};

struct conn_opts {
	const char *host;   /* borrowed; name or IP literal */
	uint16_t port;
	bool implicit_tls;  /* TLS right after connect (imaps, pop3s, smtps) */
	struct tls_opts tls;
	int timeout_ms;     /* each wait; default 30000 */
	size_t max_line;    /* conn_read_line cap; default 64 KiB */
	const char *trace;  /* name in protocol traces, e.g. "imap alice"; borrowed */
};

struct conn;

/* Connect (trying each address of `host` in turn) and, for implicit TLS, handshake.
 * Returns 0 and *conn_r, or an error code with a message in err (never NULL *conn_r on 0). */
enum conn_err conn_open(const struct conn_opts *opts, struct conn **conn_r, char *err,
			size_t errlen);
/* Close and free; sets *c to NULL. Accepts NULL. */
void conn_close(struct conn **c);

/* Upgrade to TLS in place (STARTTLS/STLS). Fails if data arrived after the server's reply
 * that was read before the handshake (a STARTTLS injection attempt). */
enum conn_err conn_starttls(struct conn *c);
bool conn_is_tls(const struct conn *c);

/* Buffered bytes, reading from the socket only if none are buffered: on success
 * data_r and len_r (len > 0) are valid until the next call; consume what you use. */
enum conn_err conn_peek(struct conn *c, const unsigned char **data_r, size_t *len_r);
void conn_consume(struct conn *c, size_t n);
/* Bytes ready without waiting (buffered here or inside TLS). */
bool conn_has_buffered(const struct conn *c);

/* One line ending in LF (CRLF or LF), at most max_line bytes: *line_r is NUL-terminated,
 * *len_r excludes the line end; valid until the next read call. A partial line stays
 * buffered across a timeout. */
enum conn_err conn_read_line(struct conn *c, const char **line_r, size_t *len_r);

/* Queue bytes for writing (flushed when the buffer is full or by conn_flush). */
enum conn_err conn_write(struct conn *c, const void *data, size_t len);
enum conn_err conn_printf(struct conn *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
enum conn_err conn_flush(struct conn *c);

/* Wait until data can be read, at most timeout_ms (-1: forever). 1 ready, 0 timeout,
 * or -1 with the connection's error set. */
int conn_wait_readable(struct conn *c, int timeout_ms);

void conn_set_timeout(struct conn *c, int timeout_ms);
/* Mark the connection failed with a protocol error (sticky) and a message. */
enum conn_err conn_fail(struct conn *c, enum conn_err code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
enum conn_err conn_error(const struct conn *c);
/* The last error's message, e.g. "imap.example.com:993: connection refused". */
const char *conn_errmsg(const struct conn *c);
const char *conn_trace_name(const struct conn *c);
/* Bytes received and sent so far (after TLS decryption). */
uint64_t conn_bytes_in(const struct conn *c);
uint64_t conn_bytes_out(const struct conn *c);
/* "TLSv1.3 TLS_AES_256_GCM_SHA384" or "plaintext". */
const char *conn_describe(const struct conn *c, char *out, size_t outlen);

const char *conn_err_name(enum conn_err e);

#endif
