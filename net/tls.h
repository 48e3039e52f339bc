/* tls.h - every OpenSSL call of mailfs lives behind this interface (net/tls.c).
 *
 * Client side only. Verification is on by default: the peer's chain must lead to the
 * system store (or to `ca_file` alone when one is given), the certificate must match the
 * host name (or IP address) we connected to, SNI is sent for names, TLS 1.2 is the
 * minimum. The only way around verification is `verify = false`, which the config sets
 * only from an explicit `tls_verify = no`, and which logs a warning on every handshake.
 *
 * The socket is non-blocking; these calls never wait: they say what they wait for, and
 * net/conn.c polls. */
#ifndef MAILFS_TLS_H
#define MAILFS_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct tls_opts {
	const char *ca_file; /* borrowed; NULL: system store */
	bool verify;         /* false only on explicit request */
};

enum tls_result {
	TLS_OK = 0,
	TLS_WANT_READ = -2,  /* retry after the socket is readable */
	TLS_WANT_WRITE = -3, /* retry after the socket is writable */
	TLS_ERROR = -1,      /* see the message */
	TLS_CERT_ERROR = -4, /* handshake failed verification: see the message */
};

struct tls;

/* Prepare a client session on connected socket `fd` for `host` (name or IP literal).
 * Returns NULL with a message in err (a bad ca_file, ENOMEM). */
struct tls *tls_new(int fd, const char *host, const struct tls_opts *opts, char *err,
		    size_t errlen);
/* Run the handshake a step. TLS_OK when done (and verified), WANT_* to be called again,
 * TLS_CERT_ERROR ("certificate verify failed: self-signed certificate; host localhost"),
 * or TLS_ERROR, each with a message in err. */
enum tls_result tls_handshake(struct tls *t, char *err, size_t errlen);
/* Read up to len bytes: > 0 bytes read, 0 on a clean close by the peer, or a negative
 * tls_result (TLS_ERROR with a message). */
ssize_t tls_read(struct tls *t, void *data, size_t len, char *err, size_t errlen);
/* Write up to len bytes: > 0 bytes written, or a negative tls_result. */
ssize_t tls_write(struct tls *t, const void *data, size_t len, char *err, size_t errlen);
/* Bytes waiting inside OpenSSL: decrypted, or 1 when bytes were read ahead from the socket
 * but not decrypted yet (a read may still wait for the rest of their record). */
size_t tls_pending(const struct tls *t);
/* Protocol and cipher in use, e.g. "TLSv1.3 TLS_AES_256_GCM_SHA384". */
const char *tls_describe(const struct tls *t, char *out, size_t outlen);
/* Send close_notify (best effort, never waits), free, set *t to NULL. */
void tls_free(struct tls **t);

/* Wipe memory holding a secret (OPENSSL_cleanse). */
void tls_cleanse(void *p, size_t len);

#endif
