/* tls.c - TLS client sessions over OpenSSL 3 (see tls.h).
 *
 * The only file that includes OpenSSL headers. It does not own the socket (conn.c does),
 * does not poll (conn.c does), and does not know any mail protocol.
 *
 * OpenSSL's own socket BIO writes with write(2): a server that resets the connection
 * makes the next write (often the close_notify of tls_free) raise SIGPIPE, which kills a
 * process that has not ignored it. So the session sits on a BIO of ours that sends with
 * MSG_NOSIGNAL and keeps the errno of the last failure for the message. */
#include "net/tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <sys/socket.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/log.h"

/* The read-ahead buffer: room for a few records per read(). */
#define TLS_READ_AHEAD (64 * 1024)

struct tls {
	SSL_CTX *ctx;
	SSL *ssl;
	char host[256];
	bool verify;
	int fd;         /* borrowed: conn.c owns the socket */
	int last_errno; /* of the last failed send/recv, 0 if none */
	bool eof;       /* recv returned 0 */
};

/* ---- the socket BIO: send(MSG_NOSIGNAL) and recv ------------------------------------- */

static BIO_METHOD *sock_method;
static pthread_once_t sock_method_once = PTHREAD_ONCE_INIT;

static int
sock_write(BIO *b, const char *data, int len)
{
	struct tls *t = BIO_get_data(b);
	BIO_clear_retry_flags(b);
	ssize_t n;
	do
		n = send(t->fd, data, (size_t)len, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			BIO_set_retry_write(b);
		else
			t->last_errno = errno;
		return -1;
	}
	return (int)n;
}

static int
sock_read(BIO *b, char *data, int len)
{
	struct tls *t = BIO_get_data(b);
	BIO_clear_retry_flags(b);
	ssize_t n;
	do
		n = recv(t->fd, data, (size_t)len, 0);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			BIO_set_retry_read(b);
		else
			t->last_errno = errno;
		return -1;
	}
	if (n == 0)
		t->eof = true;
	return (int)n;
}

static long
sock_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	struct tls *t = BIO_get_data(b);
	(void)num;
	switch (cmd) {
	case BIO_CTRL_FLUSH:
	case BIO_CTRL_DUP:
		return 1;
	case BIO_CTRL_EOF: /* OpenSSL tells an unexpected EOF from an error by this */
		return t != NULL && t->eof;
	case BIO_C_GET_FD:
		if (t == NULL)
			return -1;
		if (ptr != NULL)
			*(int *)ptr = t->fd;
		return t->fd;
	default:
		return 0;
	}
}

static int
sock_create(BIO *b)
{
	BIO_set_init(b, 1);
	return 1;
}

static void
sock_method_init(void)
{
	BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK |
					     BIO_TYPE_DESCRIPTOR,
				     "mailfs socket");
	if (m == NULL)
		return;
	if (!BIO_meth_set_write(m, sock_write) || !BIO_meth_set_read(m, sock_read) ||
	    !BIO_meth_set_ctrl(m, sock_ctrl) || !BIO_meth_set_create(m, sock_create)) {
		BIO_meth_free(m);
		return;
	}
	sock_method = m; /* lives as long as the process */
}

/* A BIO over t's socket, or NULL. */
static BIO *
sock_bio_new(struct tls *t)
{
	pthread_once(&sock_method_once, sock_method_init);
	if (sock_method == NULL)
		return NULL;
	BIO *b = BIO_new(sock_method);
	if (b != NULL)
		BIO_set_data(b, t);
	return b;
}

static void
set_err(char *err, size_t errlen, const char *what)
{
	unsigned long e = ERR_get_error();
	char ossl[256] = "";
	if (e != 0)
		ERR_error_string_n(e, ossl, sizeof(ossl));
	ERR_clear_error();
	snprintf(err, errlen, "%s%s%s", what, e ? ": " : "", ossl);
}

static bool
is_ip_literal(const char *host)
{
	unsigned char tmp[16];
	return inet_pton(AF_INET, host, tmp) == 1 || inet_pton(AF_INET6, host, tmp) == 1;
}

struct tls *
tls_new(int fd, const char *host, const struct tls_opts *opts, char *err, size_t errlen)
{
	struct tls *t = calloc(1, sizeof(*t));
	if (t == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	snprintf(t->host, sizeof(t->host), "%s", host);
	t->verify = opts->verify;
	t->fd = fd;

	t->ctx = SSL_CTX_new(TLS_client_method());
	if (t->ctx == NULL) {
		set_err(err, errlen, "cannot create TLS context");
		goto fail;
	}
	if (!SSL_CTX_set_min_proto_version(t->ctx, TLS1_2_VERSION)) {
		set_err(err, errlen, "cannot require TLS 1.2");
		goto fail;
	}
	SSL_CTX_set_mode(t->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
				     SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	/* Read what the socket has, not a record header and then its body: servers send small
	 * records (Dovecot's average about 4 KB), and two read()s per record were most of the
	 * system calls of a first sync. tls_pending() counts what is read ahead. */
	SSL_CTX_set_read_ahead(t->ctx, 1);
	SSL_CTX_set_default_read_buffer_len(t->ctx, TLS_READ_AHEAD);
	if (opts->ca_file != NULL) {
		if (SSL_CTX_load_verify_locations(t->ctx, opts->ca_file, NULL) != 1) {
			char what[512];
			snprintf(what, sizeof(what), "cannot load ca_file %s", opts->ca_file);
			set_err(err, errlen, what);
			goto fail;
		}
	} else if (SSL_CTX_set_default_verify_paths(t->ctx) != 1) {
		set_err(err, errlen, "cannot load the system certificate store");
		goto fail;
	}
	SSL_CTX_set_verify(t->ctx, opts->verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);

	t->ssl = SSL_new(t->ctx);
	BIO *bio = t->ssl != NULL ? sock_bio_new(t) : NULL;
	if (bio == NULL) {
		set_err(err, errlen, "cannot create TLS session");
		goto fail;
	}
	SSL_set_bio(t->ssl, bio, bio); /* the session owns it now */
	if (is_ip_literal(host)) {
		/* RFC 6066: no SNI for addresses; check the address against the SAN. */
		X509_VERIFY_PARAM *param = SSL_get0_param(t->ssl);
		if (X509_VERIFY_PARAM_set1_ip_asc(param, host) != 1) {
			set_err(err, errlen, "cannot set the expected IP address");
			goto fail;
		}
	} else {
		if (SSL_set_tlsext_host_name(t->ssl, host) != 1 || SSL_set1_host(t->ssl, host) != 1) {
			set_err(err, errlen, "cannot set the expected host name");
			goto fail;
		}
		SSL_set_hostflags(t->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	}
	if (!opts->verify)
		log_warn("%s: TLS certificate verification is OFF (tls_verify = no): the connection "
			 "can be intercepted",
			 host);
	return t;
fail:
	tls_free(&t);
	return NULL;
}

static enum tls_result
map_ssl_error(struct tls *t, int ret, const char *what, char *err, size_t errlen)
{
	int e = SSL_get_error(t->ssl, ret);
	switch (e) {
	case SSL_ERROR_WANT_READ:
		return TLS_WANT_READ;
	case SSL_ERROR_WANT_WRITE:
		return TLS_WANT_WRITE;
	case SSL_ERROR_ZERO_RETURN:
		snprintf(err, errlen, "%s: connection closed by the server", what);
		return TLS_ERROR;
	case SSL_ERROR_SYSCALL:
		if (ERR_peek_error() == 0 && t->last_errno != 0) {
			/* "connection reset by peer", "broken pipe" */
			snprintf(err, errlen, "%s: %s", what, strerror(t->last_errno));
			return TLS_ERROR;
		}
		if (ERR_peek_error() == 0) {
			snprintf(err, errlen, "%s: connection closed unexpectedly", what);
			return TLS_ERROR;
		}
		/* fall through */
	default:
		set_err(err, errlen, what);
		return TLS_ERROR;
	}
}

enum tls_result
tls_handshake(struct tls *t, char *err, size_t errlen)
{
	ERR_clear_error();
	t->last_errno = 0;
	int ret = SSL_connect(t->ssl);
	if (ret == 1) {
		if (t->verify && SSL_get_verify_result(t->ssl) != X509_V_OK) {
			snprintf(err, errlen, "certificate verify failed for %s", t->host);
			return TLS_CERT_ERROR;
		}
		return TLS_OK;
	}
	enum tls_result r = map_ssl_error(t, ret, "TLS handshake failed", err, errlen);
	if (r != TLS_ERROR)
		return r;
	long v = SSL_get_verify_result(t->ssl);
	if (t->verify && v != X509_V_OK) {
		snprintf(err, errlen, "certificate verify failed for %s: %s", t->host,
			 X509_verify_cert_error_string(v));
		return TLS_CERT_ERROR;
	}
	return TLS_ERROR;
}

ssize_t
tls_read(struct tls *t, void *data, size_t len, char *err, size_t errlen)
{
	size_t n = 0;
	ERR_clear_error();
	t->last_errno = 0;
	int ret = SSL_read_ex(t->ssl, data, len, &n);
	if (ret == 1)
		return (ssize_t)n;
	if (SSL_get_error(t->ssl, ret) == SSL_ERROR_ZERO_RETURN)
		return 0;
	return map_ssl_error(t, ret, "TLS read failed", err, errlen);
}

ssize_t
tls_write(struct tls *t, const void *data, size_t len, char *err, size_t errlen)
{
	size_t n = 0;
	ERR_clear_error();
	t->last_errno = 0;
	int ret = SSL_write_ex(t->ssl, data, len, &n);
	if (ret == 1)
		return (ssize_t)n;
	return map_ssl_error(t, ret, "TLS write failed", err, errlen);
}

size_t
tls_pending(const struct tls *t)
{
	int n = SSL_pending(t->ssl);
	if (n > 0)
		return (size_t)n;
	/* Read ahead but not decrypted yet: at least a byte will come without waiting. */
	return SSL_has_pending(t->ssl) ? 1 : 0;
}

const char *
tls_describe(const struct tls *t, char *out, size_t outlen)
{
	snprintf(out, outlen, "%s %s", SSL_get_version(t->ssl),
		 SSL_CIPHER_get_name(SSL_get_current_cipher(t->ssl)));
	return out;
}

void
tls_free(struct tls **tp)
{
	struct tls *t = *tp;
	if (t == NULL)
		return;
	if (t->ssl != NULL) {
		/* close_notify, without waiting for the peer's (the socket is non-blocking). */
		if (SSL_is_init_finished(t->ssl))
			(void)SSL_shutdown(t->ssl);
		SSL_free(t->ssl);
	}
	SSL_CTX_free(t->ctx);
	ERR_clear_error();
	free(t);
	*tp = NULL;
}

void
tls_cleanse(void *p, size_t len)
{
	OPENSSL_cleanse(p, len);
}
