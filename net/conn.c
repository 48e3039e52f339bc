/* conn.c - TCP + TLS connection with buffered, timeout-bounded I/O (see conn.h).
 *
 * The socket is non-blocking and every wait goes through poll() with the connection's
 * timeout, so a silent server costs at most that long. It knows nothing of any mail
 * protocol and does not trace: protocol layers trace their own (redacted) lines. */
#include "net/conn.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RBUF_CHUNK (64 * 1024)
#define WBUF_SIZE (64 * 1024)

struct conn {
	int fd;
	struct tls *tls; /* NULL while plaintext */
	struct tls_opts tls_opts;
	char *ca_file; /* owned copy for tls_opts */
	char host[256];
	char trace[64];
	uint16_t port;
	int timeout_ms;
	size_t max_line;

	unsigned char *rbuf; /* rbuf[rpos..rlen) is unread */
	size_t rpos, rlen, rsize;
	unsigned char wbuf[WBUF_SIZE];
	size_t wlen;

	uint64_t bytes_in, bytes_out;
	enum conn_err err;
	char errmsg[512];
};

static const char *const err_names[] = {
	[CONN_OK] = "ok",
	[CONN_ERR_RESOLVE] = "name resolution failed",
	[CONN_ERR_CONNECT] = "connection failed",
	[CONN_ERR_TIMEOUT] = "timeout",
	[CONN_ERR_TLS] = "TLS error",
	[CONN_ERR_CERT] = "certificate rejected",
	[CONN_ERR_CLOSED] = "connection closed",
	[CONN_ERR_IO] = "I/O error",
	[CONN_ERR_TOO_LONG] = "line too long",
	[CONN_ERR_PROTOCOL] = "protocol error",
	[CONN_ERR_NOMEM] = "out of memory",
};

const char *
conn_err_name(enum conn_err e)
{
	if ((unsigned)e < sizeof(err_names) / sizeof(err_names[0]) && err_names[e])
		return err_names[e];
	return "unknown error";
}

static enum conn_err __attribute__((format(printf, 3, 0)))
vset_error(struct conn *c, enum conn_err code, const char *fmt, va_list ap)
{
	if (c->err != CONN_OK)
		return c->err; /* the first error is the one that explains */
	char msg[400];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	snprintf(c->errmsg, sizeof(c->errmsg), "%s:%u: %s", c->host, c->port, msg);
	c->err = code;
	return code;
}

static enum conn_err __attribute__((format(printf, 3, 4)))
set_error(struct conn *c, enum conn_err code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vset_error(c, code, fmt, ap);
	va_end(ap);
	return c->err;
}

enum conn_err
conn_fail(struct conn *c, enum conn_err code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vset_error(c, code, fmt, ap);
	va_end(ap);
	return c->err;
}

static int64_t
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait for `events` on the socket until `deadline` (ms, monotonic). 0 ready, or an error. */
static enum conn_err
wait_fd(struct conn *c, short events, int64_t deadline, const char *what)
{
	for (;;) {
		int64_t left = deadline - now_ms();
		if (left <= 0)
			return set_error(c, CONN_ERR_TIMEOUT, "%s timed out after %d ms", what,
					 c->timeout_ms);
		struct pollfd p = { .fd = c->fd, .events = events };
		int n = poll(&p, 1, left > INT32_MAX ? INT32_MAX : (int)left);
		if (n > 0)
			return CONN_OK;
		if (n < 0 && errno != EINTR)
			return set_error(c, CONN_ERR_IO, "poll: %s", strerror(errno));
	}
}

static enum conn_err
tls_step_wait(struct conn *c, ssize_t r, int64_t deadline, const char *what)
{
	if (r == TLS_WANT_READ)
		return wait_fd(c, POLLIN, deadline, what);
	if (r == TLS_WANT_WRITE)
		return wait_fd(c, POLLOUT, deadline, what);
	return CONN_OK;
}

static enum conn_err
do_handshake(struct conn *c)
{
	char err[400];
	c->tls = tls_new(c->fd, c->host, &c->tls_opts, err, sizeof(err));
	if (c->tls == NULL)
		return set_error(c, CONN_ERR_TLS, "%s", err);
	int64_t deadline = now_ms() + c->timeout_ms;
	for (;;) {
		enum tls_result r = tls_handshake(c->tls, err, sizeof(err));
		if (r == TLS_OK)
			return CONN_OK;
		if (r == TLS_CERT_ERROR)
			return set_error(c, CONN_ERR_CERT, "%s", err);
		if (r == TLS_ERROR)
			return set_error(c, CONN_ERR_TLS, "%s", err);
		enum conn_err e = tls_step_wait(c, r, deadline, "TLS handshake");
		if (e != CONN_OK)
			return e;
	}
}

static int
connect_one(struct conn *c, const struct addrinfo *ai, char *why, size_t whylen)
{
	int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
			ai->ai_protocol);
	if (fd < 0) {
		snprintf(why, whylen, "socket: %s", strerror(errno));
		return -1;
	}
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS) {
		snprintf(why, whylen, "%s", strerror(errno));
		close(fd);
		return -1;
	}
	struct pollfd p = { .fd = fd, .events = POLLOUT };
	int64_t deadline = now_ms() + c->timeout_ms;
	for (;;) {
		int64_t left = deadline - now_ms();
		int n = left > 0 ? poll(&p, 1, (int)left) : 0;
		if (n > 0)
			break;
		if (n == 0) {
			snprintf(why, whylen, "connect timed out after %d ms", c->timeout_ms);
			close(fd);
			return -2;
		}
		if (errno != EINTR) {
			snprintf(why, whylen, "poll: %s", strerror(errno));
			close(fd);
			return -1;
		}
	}
	int soerr = 0;
	socklen_t sl = sizeof(soerr);
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 || soerr != 0) {
		snprintf(why, whylen, "%s", strerror(soerr ? soerr : errno));
		close(fd);
		return -1;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

enum conn_err
conn_open(const struct conn_opts *opts, struct conn **conn_r, char *err, size_t errlen)
{
	*conn_r = NULL;
	struct conn *c = calloc(1, sizeof(*c));
	if (c == NULL) {
		snprintf(err, errlen, "out of memory");
		return CONN_ERR_NOMEM;
	}
	c->fd = -1;
	snprintf(c->host, sizeof(c->host), "%s", opts->host);
	snprintf(c->trace, sizeof(c->trace), "%s", opts->trace ? opts->trace : opts->host);
	c->port = opts->port;
	c->timeout_ms = opts->timeout_ms > 0 ? opts->timeout_ms : 30000;
	c->max_line = opts->max_line > 0 ? opts->max_line : 64 * 1024;
	c->tls_opts = opts->tls;
	if (opts->tls.ca_file != NULL) {
		c->ca_file = strdup(opts->tls.ca_file);
		c->tls_opts.ca_file = c->ca_file;
	}
	c->rsize = c->max_line + RBUF_CHUNK;
	c->rbuf = malloc(c->rsize + 1);
	if (c->rbuf == NULL || (opts->tls.ca_file != NULL && c->ca_file == NULL)) {
		conn_close(&c);
		snprintf(err, errlen, "out of memory");
		return CONN_ERR_NOMEM;
	}

	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_ADDRCONFIG };
	struct addrinfo *res = NULL;
	char port[8];
	snprintf(port, sizeof(port), "%u", opts->port);
	int gai = getaddrinfo(opts->host, port, &hints, &res);
	if (gai != 0) {
		set_error(c, CONN_ERR_RESOLVE, "cannot resolve host: %s", gai_strerror(gai));
		goto fail;
	}
	char why[256] = "no address";
	bool timed_out = false;
	for (struct addrinfo *ai = res; ai != NULL && c->fd < 0; ai = ai->ai_next) {
		int fd = connect_one(c, ai, why, sizeof(why));
		if (fd >= 0)
			c->fd = fd;
		else if (fd == -2)
			timed_out = true;
	}
	freeaddrinfo(res);
	if (c->fd < 0) {
		set_error(c, timed_out ? CONN_ERR_TIMEOUT : CONN_ERR_CONNECT, "%s", why);
		goto fail;
	}
	if (opts->implicit_tls && do_handshake(c) != CONN_OK)
		goto fail;
	*conn_r = c;
	return CONN_OK;
fail:;
	enum conn_err e = c->err;
	snprintf(err, errlen, "%s", c->errmsg);
	conn_close(&c);
	return e;
}

void
conn_close(struct conn **cp)
{
	struct conn *c = *cp;
	if (c == NULL)
		return;
	tls_free(&c->tls);
	if (c->fd >= 0)
		close(c->fd);
	free(c->rbuf);
	free(c->ca_file);
	free(c);
	*cp = NULL;
}

enum conn_err
conn_starttls(struct conn *c)
{
	if (c->err != CONN_OK)
		return c->err;
	if (c->tls != NULL)
		return set_error(c, CONN_ERR_PROTOCOL, "STARTTLS on a TLS connection");
	if (c->rlen > c->rpos)
		return set_error(c, CONN_ERR_PROTOCOL,
				 "server sent data before the TLS handshake (STARTTLS injection?)");
	if (conn_flush(c) != CONN_OK)
		return c->err;
	return do_handshake(c);
}

bool
conn_is_tls(const struct conn *c)
{
	return c->tls != NULL;
}

/* Read more bytes from the socket into rbuf (after compacting). */
static enum conn_err
fill(struct conn *c)
{
	if (c->err != CONN_OK)
		return c->err;
	if (conn_flush(c) != CONN_OK)
		return c->err;
	if (c->rpos > 0) {
		memmove(c->rbuf, c->rbuf + c->rpos, c->rlen - c->rpos);
		c->rlen -= c->rpos;
		c->rpos = 0;
	}
	size_t room = c->rsize - c->rlen;
	if (room == 0)
		return set_error(c, CONN_ERR_TOO_LONG, "read buffer full");
	int64_t deadline = now_ms() + c->timeout_ms;
	char err[400];
	for (;;) {
		ssize_t n;
		if (c->tls != NULL) {
			n = tls_read(c->tls, c->rbuf + c->rlen, room, err, sizeof(err));
			if (n == TLS_WANT_READ || n == TLS_WANT_WRITE) {
				if (tls_step_wait(c, n, deadline, "read") != CONN_OK)
					return c->err;
				continue;
			}
			if (n < 0)
				return set_error(c, CONN_ERR_TLS, "%s", err);
		} else {
			n = recv(c->fd, c->rbuf + c->rlen, room, 0);
			if (n < 0) {
				if (errno == EAGAIN || errno == EWOULDBLOCK) {
					if (wait_fd(c, POLLIN, deadline, "read") != CONN_OK)
						return c->err;
					continue;
				}
				if (errno == EINTR)
					continue;
				return set_error(c, CONN_ERR_IO, "read: %s", strerror(errno));
			}
		}
		if (n == 0)
			return set_error(c, CONN_ERR_CLOSED, "connection closed by the server");
		c->rlen += (size_t)n;
		c->bytes_in += (uint64_t)n;
		return CONN_OK;
	}
}

enum conn_err
conn_peek(struct conn *c, const unsigned char **data_r, size_t *len_r)
{
	if (c->err != CONN_OK)
		return c->err;
	if (c->rpos == c->rlen) {
		c->rpos = c->rlen = 0;
		if (fill(c) != CONN_OK)
			return c->err;
	}
	*data_r = c->rbuf + c->rpos;
	*len_r = c->rlen - c->rpos;
	return CONN_OK;
}

void
conn_consume(struct conn *c, size_t n)
{
	if (n > c->rlen - c->rpos)
		n = c->rlen - c->rpos;
	c->rpos += n;
}

bool
conn_has_buffered(const struct conn *c)
{
	return c->rlen > c->rpos || (c->tls != NULL && tls_pending(c->tls) > 0);
}

enum conn_err
conn_read_line(struct conn *c, const char **line_r, size_t *len_r)
{
	size_t scanned = 0;
	for (;;) {
		if (c->err != CONN_OK)
			return c->err;
		unsigned char *start = c->rbuf + c->rpos;
		size_t avail = c->rlen - c->rpos;
		unsigned char *lf = memchr(start + scanned, '\n', avail - scanned);
		if (lf != NULL) {
			size_t len = (size_t)(lf - start);
			if (len > c->max_line)
				return set_error(c, CONN_ERR_TOO_LONG, "line longer than %zu bytes",
						 c->max_line);
			c->rpos += len + 1;
			if (len > 0 && start[len - 1] == '\r')
				len--;
			start[len] = '\0';
			*line_r = (const char *)start;
			*len_r = len;
			return CONN_OK;
		}
		scanned = avail;
		if (avail > c->max_line)
			return set_error(c, CONN_ERR_TOO_LONG, "line longer than %zu bytes",
					 c->max_line);
		if (fill(c) != CONN_OK)
			return c->err;
	}
}

static enum conn_err
write_all(struct conn *c, const unsigned char *p, size_t len)
{
	int64_t deadline = now_ms() + c->timeout_ms;
	char err[400];
	while (len > 0) {
		ssize_t n;
		if (c->tls != NULL) {
			n = tls_write(c->tls, p, len, err, sizeof(err));
			if (n == TLS_WANT_READ || n == TLS_WANT_WRITE) {
				if (tls_step_wait(c, n, deadline, "write") != CONN_OK)
					return c->err;
				continue;
			}
			if (n < 0)
				return set_error(c, CONN_ERR_TLS, "%s", err);
		} else {
			n = send(c->fd, p, len, MSG_NOSIGNAL);
			if (n < 0) {
				if (errno == EAGAIN || errno == EWOULDBLOCK) {
					if (wait_fd(c, POLLOUT, deadline, "write") != CONN_OK)
						return c->err;
					continue;
				}
				if (errno == EINTR)
					continue;
				return set_error(c, errno == EPIPE || errno == ECONNRESET
							    ? CONN_ERR_CLOSED
							    : CONN_ERR_IO,
						 "write: %s", strerror(errno));
			}
		}
		p += n;
		len -= (size_t)n;
		c->bytes_out += (uint64_t)n;
		deadline = now_ms() + c->timeout_ms; /* progress resets the clock */
	}
	return CONN_OK;
}

enum conn_err
conn_flush(struct conn *c)
{
	if (c->err != CONN_OK)
		return c->err;
	if (c->wlen == 0)
		return CONN_OK;
	size_t n = c->wlen;
	c->wlen = 0;
	return write_all(c, c->wbuf, n);
}

enum conn_err
conn_write(struct conn *c, const void *data, size_t len)
{
	if (c->err != CONN_OK)
		return c->err;
	if (len <= sizeof(c->wbuf) - c->wlen) {
		memcpy(c->wbuf + c->wlen, data, len);
		c->wlen += len;
		return CONN_OK;
	}
	if (conn_flush(c) != CONN_OK)
		return c->err;
	if (len <= sizeof(c->wbuf)) {
		memcpy(c->wbuf, data, len);
		c->wlen = len;
		return CONN_OK;
	}
	return write_all(c, data, len);
}

enum conn_err
conn_printf(struct conn *c, const char *fmt, ...)
{
	char small[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		return set_error(c, CONN_ERR_IO, "format error");
	if ((size_t)n < sizeof(small))
		return conn_write(c, small, (size_t)n);
	char *big = malloc((size_t)n + 1);
	if (big == NULL)
		return set_error(c, CONN_ERR_NOMEM, "out of memory");
	va_start(ap, fmt);
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	enum conn_err e = conn_write(c, big, (size_t)n);
	free(big);
	return e;
}

int
conn_wait_readable(struct conn *c, int timeout_ms)
{
	if (c->err != CONN_OK)
		return -1;
	if (conn_flush(c) != CONN_OK)
		return -1;
	if (conn_has_buffered(c))
		return 1;
	struct pollfd p = { .fd = c->fd, .events = POLLIN };
	for (;;) {
		int n = poll(&p, 1, timeout_ms);
		if (n > 0)
			return 1;
		if (n == 0)
			return 0;
		if (errno != EINTR) {
			set_error(c, CONN_ERR_IO, "poll: %s", strerror(errno));
			return -1;
		}
	}
}

void
conn_set_timeout(struct conn *c, int timeout_ms)
{
	c->timeout_ms = timeout_ms > 0 ? timeout_ms : 30000;
}

enum conn_err
conn_error(const struct conn *c)
{
	return c->err;
}

const char *
conn_errmsg(const struct conn *c)
{
	return c->err != CONN_OK ? c->errmsg : "no error";
}

const char *
conn_trace_name(const struct conn *c)
{
	return c->trace;
}

uint64_t
conn_bytes_in(const struct conn *c)
{
	return c->bytes_in;
}

uint64_t
conn_bytes_out(const struct conn *c)
{
	return c->bytes_out;
}

const char *
conn_describe(const struct conn *c, char *out, size_t outlen)
{
	if (c->tls == NULL) {
		snprintf(out, outlen, "plaintext");
		return out;
	}
	return tls_describe(c->tls, out, outlen);
}
