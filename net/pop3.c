/* pop3.c - POP3 client (see pop3.h).
 *
 * Every reply goes through read_status() (one status line, net/pop3-reply's status parser
 * fed from conn_peek) and, for multi-line replies, read_body() (net/pop3-reply's body
 * decoder, which undoes dot-stuffing and finds "CRLF.CRLF" across reads). Listings are
 * split into lines by a small capped accumulator. Does not know about the cache: RETR
 * hands its bytes to a callback.
 *
 * Pipelining (RFC 2449 §6.6): TOP and RETR can be queued ahead of their replies within the
 * window net/pop3-pipe keeps; the queued lines are written out together when the next
 * reply is read. Every other command waits until the window is empty.
 */
#include "net/pop3.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/conn.h"
#include "net/log.h"
#include "net/pop3-pipe.h"
#include "net/pop3-reply.h"
#include "net/sasl.h"

#define LIST_LINE_MAX 1024 /* a UIDL/LIST/CAPA line (RFC 1939: 512 with its CRLF) */
#define CAPA_MAX (16 * 1024)

enum state { ST_GREETING, ST_AUTHORIZATION, ST_TRANSACTION, ST_QUIT, ST_CLOSED };
static const char *const state_names[] = {"greeting", "authorization", "transaction", "quit",
					  "closed"};

struct pop3 {
	struct conn *conn;
	enum state state;
	char trace[64];
	char host[256];
	uint16_t port;
	struct buf capa; /* CAPA lines, each NUL-terminated and followed by '\n' */
	struct pop3_status_parser sp;
	struct pop3_status st;
	struct pop3_pipe pipe; /* TOP/RETR sent, replies not read yet */
	bool pipelining;       /* CAPA lists PIPELINING */
	char errmsg[512];
};

static void
set_state(struct pop3 *c, enum state s)
{
	if (c->state != s && log_trace_enabled()) {
		char line[64];
		snprintf(line, sizeof(line), "state %s -> %s", state_names[c->state],
			 state_names[s]);
		log_trace(c->trace, '-', line, strlen(line));
	}
	c->state = s;
}

static enum pop3_err __attribute__((format(printf, 3, 4)))
fail(struct pop3 *c, enum pop3_err e, const char *fmt, ...)
{
	char msg[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(c->errmsg, sizeof(c->errmsg), "%s:%u: %s", c->host, c->port, msg);
	if (e == POP3_ERR_PROTOCOL && conn_error(c->conn) == CONN_OK)
		conn_fail(c->conn, CONN_ERR_PROTOCOL, "%s", msg);
	return e;
}

static enum pop3_err
conn_failed(struct pop3 *c)
{
	snprintf(c->errmsg, sizeof(c->errmsg), "%s", conn_errmsg(c->conn));
	set_state(c, ST_CLOSED);
	return POP3_ERR_CONN;
}

/* Queue one command line (CRLF added) without flushing. `shown` is what the trace shows
 * (NULL: the line). */
static enum pop3_err
queue_line(struct pop3 *c, const char *line, const char *shown)
{
	if (strpbrk(line, "\r\n") != NULL)
		return fail(c, POP3_ERR_PROTOCOL, "refusing to send a command with a line break");
	if (log_trace_enabled()) {
		const char *s = shown ? shown : line;
		log_trace(c->trace, '>', s, strlen(s));
	}
	if (conn_write(c->conn, line, strlen(line)) != CONN_OK ||
	    conn_write(c->conn, "\r\n", 2) != CONN_OK)
		return conn_failed(c);
	return POP3_SUCCESS;
}

/* Send one command line and flush; only with nothing in flight (its reply is next). */
static enum pop3_err
send_line(struct pop3 *c, const char *line, const char *shown)
{
	if (pop3_pipe_count(&c->pipe) > 0)
		return fail(c, POP3_ERR_PROTOCOL, "%s while %u pipelined replies are unread",
			    shown ? shown : line, pop3_pipe_count(&c->pipe));
	enum pop3_err e = queue_line(c, line, shown);
	if (e == POP3_SUCCESS && conn_flush(c->conn) != CONN_OK)
		return conn_failed(c);
	return e;
}

/* Read one status line into c->st. POP3_SUCCESS for +OK (and "+ " continuations),
 * POP3_ERR_NO for -ERR (the text in errmsg). */
static enum pop3_err
read_status(struct pop3 *c)
{
	pop3_status_parser_init(&c->sp);
	for (;;) {
		const unsigned char *data;
		size_t len, used = 0;
		if (conn_peek(c->conn, &data, &len) != CONN_OK)
			return conn_failed(c);
		char perr[160];
		enum pop3_parse r = pop3_status_parse(&c->sp, (const char *)data, len, &used,
						      &c->st, perr, sizeof(perr));
		conn_consume(c->conn, used);
		if (r == POP3_PARSE_MORE)
			continue;
		if (r == POP3_PARSE_ERROR)
			return fail(c, POP3_ERR_PROTOCOL, "%s", perr);
		break;
	}
	if (log_trace_enabled()) {
		char line[POP3_LINE_MAX + 16];
		snprintf(line, sizeof(line), "%s %s",
			 c->st.kind == POP3_OK ? "+OK" : c->st.kind == POP3_ERR ? "-ERR" : "+",
			 c->st.text);
		log_trace(c->trace, '<', line, strlen(line));
	}
	if (c->st.kind == POP3_ERR) {
		snprintf(c->errmsg, sizeof(c->errmsg), "%s:%u: server said: -ERR %s%s%s%s", c->host,
			 c->port, c->st.code[0] ? "[" : "", c->st.code, c->st.code[0] ? "] " : "",
			 c->st.text);
		return POP3_ERR_NO;
	}
	return POP3_SUCCESS;
}

/* Read a multi-line body after +OK, handing the decoded bytes to cb (when not NULL;
 * a non-zero return stops the calls but the body is still read to its end). */
static enum pop3_err
read_body(struct pop3 *c, uint64_t max, int (*cb)(void *ctx, const char *d, size_t n),
	  void *ctx, uint64_t *total_r)
{
	struct pop3_body b;
	pop3_body_init(&b, max);
	static _Thread_local char out[POP3_CHUNK + 1];
	bool aborted = false, over = false;
	for (;;) {
		const unsigned char *data;
		size_t len;
		if (conn_peek(c->conn, &data, &len) != CONN_OK)
			return conn_failed(c);
		if (len > POP3_CHUNK)
			len = POP3_CHUNK;
		size_t used = 0, outlen = 0;
		enum pop3_parse r =
			pop3_body_decode(&b, (const char *)data, len, &used, out, &outlen);
		if (r == POP3_PARSE_ERROR && !over) {
			/* Over the cap: keep reading to the terminator with no cap. */
			over = true;
			uint64_t seen = b.total;
			pop3_body_init(&b, 0);
			b.total = seen;
			if (outlen > 0 && cb != NULL && !aborted && cb(ctx, out, outlen) != 0)
				aborted = true;
			conn_consume(c->conn, used);
			aborted = aborted || cb == NULL;
			continue;
		}
		if (outlen > 0 && cb != NULL && !aborted && !over && cb(ctx, out, outlen) != 0)
			aborted = true;
		conn_consume(c->conn, used);
		if (r == POP3_PARSE_DONE)
			break;
	}
	if (total_r != NULL)
		*total_r = b.total;
	if (aborted)
		return POP3_ERR_ABORT;
	return POP3_SUCCESS;
}

/* Splits a multi-line body into lines for a per-line callback. */
struct lines {
	char line[LIST_LINE_MAX + 1];
	size_t len;
	bool toolong;
	int (*line_cb)(void *ctx, const char *line, size_t len);
	void *ctx;
	int rc;
};

static int
lines_data(void *ctx, const char *d, size_t n)
{
	struct lines *l = ctx;
	for (size_t i = 0; i < n; i++) {
		char ch = d[i];
		if (ch == '\n') {
			size_t len = l->len;
			if (len > 0 && l->line[len - 1] == '\r')
				len--;
			l->line[len] = '\0';
			if (l->toolong) {
				l->rc = -2;
				return -1;
			}
			if (l->rc == 0)
				l->rc = l->line_cb(l->ctx, l->line, len);
			l->len = 0;
			if (l->rc != 0)
				return -1;
			continue;
		}
		if (l->len < LIST_LINE_MAX)
			l->line[l->len++] = ch;
		else
			l->toolong = true;
	}
	return 0;
}

static enum pop3_err
read_lines(struct pop3 *c, int (*line_cb)(void *ctx, const char *line, size_t len), void *ctx)
{
	struct lines *l = calloc(1, sizeof(*l));
	if (l == NULL)
		return fail(c, POP3_ERR_PROTOCOL, "out of memory");
	l->line_cb = line_cb;
	l->ctx = ctx;
	enum pop3_err e = read_body(c, 0, lines_data, l, NULL);
	if (e == POP3_ERR_ABORT && l->rc == -2)
		e = fail(c, POP3_ERR_PROTOCOL, "listing line longer than %d bytes", LIST_LINE_MAX);
	else if (e == POP3_ERR_ABORT && l->rc == -3)
		e = fail(c, POP3_ERR_PROTOCOL, "malformed listing line");
	free(l);
	return e;
}

static int
capa_line(void *ctx, const char *line, size_t len)
{
	struct buf *b = ctx;
	if (buf_append(b, line, len) < 0 || buf_append(b, "\n", 1) < 0)
		return -2;
	return 0;
}

static enum pop3_err
refresh_capa(struct pop3 *c)
{
	buf_reset(&c->capa);
	enum pop3_err e = send_line(c, "CAPA", NULL);
	if (e == POP3_SUCCESS)
		e = read_status(c);
	if (e == POP3_ERR_NO)
		return POP3_SUCCESS; /* no CAPA: an RFC 1939 server; nothing is offered */
	if (e != POP3_SUCCESS)
		return e;
	e = read_lines(c, capa_line, &c->capa);
	c->pipelining = e == POP3_SUCCESS && pop3_has_capa(c, "PIPELINING");
	if (c->pipelining)
		pop3_pipe_limit(&c->pipe, POP3_WINDOW_CMDS, POP3_WINDOW_BYTES);
	else
		pop3_pipe_limit(&c->pipe, 1, 0);
	return e;
}

/* The arguments of a CAPA keyword into out ("" if absent; out may be NULL); false if the
 * keyword is not listed. */
static bool
capa_args(const struct pop3 *c, const char *kw, char *out, size_t outlen)
{
	const char *p = c->capa.data;
	if (p == NULL)
		return false;
	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);
		char line[LIST_LINE_MAX + 1];
		if (n > LIST_LINE_MAX)
			n = LIST_LINE_MAX;
		memcpy(line, p, n);
		line[n] = '\0';
		const char *args;
		if (pop3_capa_is(line, kw, &args)) {
			if (out != NULL)
				snprintf(out, outlen, "%s", args);
			return true;
		}
		p += n + (nl != NULL);
	}
	return false;
}

bool
pop3_has_capa(const struct pop3 *c, const char *kw)
{
	return capa_args(c, kw, NULL, 0);
}

enum pop3_err
pop3_connect(const struct pop3_opts *opts, struct pop3 **c_r, char *err, size_t errlen)
{
	*c_r = NULL;
	struct pop3 *c = calloc(1, sizeof(*c));
	if (c == NULL) {
		snprintf(err, errlen, "out of memory");
		return POP3_ERR_CONN;
	}
	snprintf(c->host, sizeof(c->host), "%s", opts->host);
	snprintf(c->trace, sizeof(c->trace), "%s", opts->trace ? opts->trace : "pop3");
	c->port = opts->port;
	buf_init(&c->capa, CAPA_MAX);
	pop3_pipe_init(&c->pipe, 1, 0);
	enum pop3_err e = POP3_ERR_CONN;
	struct conn_opts co = {
		.host = opts->host,
		.port = opts->port,
		.implicit_tls = opts->implicit_tls,
		.tls = opts->tls,
		.timeout_ms = opts->timeout_ms,
		.max_line = POP3_LINE_MAX,
		.trace = c->trace,
	};
	if (conn_open(&co, &c->conn, c->errmsg, sizeof(c->errmsg)) != CONN_OK)
		goto fail;
	set_state(c, ST_GREETING);
	/* greeting = "+OK" [resp-text] CRLF */
	e = read_status(c);
	if (e == POP3_ERR_NO)
		e = POP3_ERR_CONN;
	if (e != POP3_SUCCESS)
		goto fail;
	set_state(c, ST_AUTHORIZATION);
	if ((e = refresh_capa(c)) != POP3_SUCCESS)
		goto fail;
	bool tls_needed = !opts->implicit_tls && !opts->plaintext;
	if (tls_needed) {
		if (!pop3_has_capa(c, "STLS")) {
			e = fail(c, POP3_ERR_NOTLS,
				 "server does not offer STLS; refusing to log in in plaintext "
				 "(use pop3s://, or tls = off to allow plaintext)");
			goto fail;
		}
		if ((e = send_line(c, "STLS", NULL)) != POP3_SUCCESS || (e = read_status(c)) != POP3_SUCCESS) {
			if (e == POP3_ERR_NO)
				e = POP3_ERR_NOTLS;
			goto fail;
		}
		if (conn_starttls(c->conn) != CONN_OK) {
			e = conn_failed(c);
			goto fail;
		}
		/* RFC 2595 §4: what was learned before TLS is discarded. */
		if ((e = refresh_capa(c)) != POP3_SUCCESS)
			goto fail;
	} else if (opts->plaintext && !opts->implicit_tls) {
		log_warn("%s: %s:%u: plaintext connection (tls = off): the password and all mail "
			 "cross the network unencrypted",
			 c->trace, c->host, c->port);
	}
	*c_r = c;
	return POP3_SUCCESS;
fail:
	snprintf(err, errlen, "%s", c->errmsg);
	pop3_close(&c);
	return e;
}

static enum pop3_err
auth_plain(struct pop3 *c, const char *user, const char *password)
{
	char *ir = sasl_plain(user, password);
	if (ir == NULL)
		return fail(c, POP3_ERR_AUTH, "user name or password cannot be sent with PLAIN");
	enum pop3_err e;
	size_t n = strlen(ir);
	/* RFC 5034 §4: an initial response that would make the line longer than 255
	 * octets is sent after the "+" continuation instead. */
	if (n + strlen("AUTH PLAIN ") + 2 <= 255) {
		char *line = malloc(n + 16);
		if (line == NULL) {
			sasl_free_secret(&ir);
			return fail(c, POP3_ERR_PROTOCOL, "out of memory");
		}
		snprintf(line, n + 16, "AUTH PLAIN %s", ir);
		e = send_line(c, line, "AUTH PLAIN [redacted]");
		sasl_free_secret(&line);
		if (e == POP3_SUCCESS)
			e = read_status(c);
	} else {
		e = send_line(c, "AUTH PLAIN", NULL);
		if (e == POP3_SUCCESS)
			e = read_status(c);
		if (e == POP3_SUCCESS && c->st.kind != POP3_CONT)
			e = fail(c, POP3_ERR_PROTOCOL, "AUTH PLAIN: expected a continuation");
		if (e == POP3_SUCCESS)
			e = send_line(c, ir, "[redacted]");
		if (e == POP3_SUCCESS)
			e = read_status(c);
	}
	sasl_free_secret(&ir);
	if (e == POP3_SUCCESS && c->st.kind == POP3_CONT) {
		(void)send_line(c, "*", NULL);
		(void)read_status(c);
		return fail(c, POP3_ERR_AUTH, "AUTH PLAIN: unexpected challenge");
	}
	return e == POP3_ERR_NO ? POP3_ERR_AUTH : e;
}

enum pop3_err
pop3_login(struct pop3 *c, const char *user, const char *password)
{
	char sasl[512];
	enum pop3_err e;
	bool plain = false;
	if (capa_args(c, "SASL", sasl, sizeof(sasl))) {
		for (char *t = strtok(sasl, " "); t != NULL; t = strtok(NULL, " "))
			if (strcasecmp(t, "PLAIN") == 0)
				plain = true;
	}
	if (plain) {
		e = auth_plain(c, user, password);
	} else {
		size_t n = strlen(user) + strlen(password) + 8;
		char *line = malloc(n);
		if (line == NULL)
			return fail(c, POP3_ERR_PROTOCOL, "out of memory");
		snprintf(line, n, "USER %s", user);
		e = send_line(c, line, NULL);
		if (e == POP3_SUCCESS)
			e = read_status(c);
		if (e == POP3_SUCCESS) {
			snprintf(line, n, "PASS %s", password);
			e = send_line(c, line, "PASS [redacted]");
			if (e == POP3_SUCCESS)
				e = read_status(c);
		}
		sasl_free_secret(&line);
		if (e == POP3_ERR_NO)
			e = POP3_ERR_AUTH;
	}
	if (e != POP3_SUCCESS)
		return e;
	set_state(c, ST_TRANSACTION);
	return POP3_SUCCESS;
}

struct uidl_ctx {
	int (*cb)(void *ctx, uint32_t msg, const char *uidl);
	void *ctx;
};

static int
uidl_line(void *ctx, const char *line, size_t len)
{
	struct uidl_ctx *u = ctx;
	uint32_t msg;
	char uid[POP3_UIDL_MAX + 1];
	if (!pop3_uidl_line(line, len, &msg, uid, sizeof(uid)))
		return -3;
	return u->cb(u->ctx, msg, uid) != 0 ? -1 : 0;
}

enum pop3_err
pop3_uidl(struct pop3 *c, int (*msg_listed)(void *ctx, uint32_t msg, const char *uidl),
	  void *ctx)
{
	struct uidl_ctx u = {msg_listed, ctx};
	enum pop3_err e = send_line(c, "UIDL", NULL);
	if (e == POP3_SUCCESS)
		e = read_status(c);
	if (e == POP3_SUCCESS)
		e = read_lines(c, uidl_line, &u);
	return e;
}

struct list_ctx {
	int (*cb)(void *ctx, uint32_t msg, uint64_t size);
	void *ctx;
};

static int
list_line(void *ctx, const char *line, size_t len)
{
	struct list_ctx *u = ctx;
	uint32_t msg;
	uint64_t size;
	if (!pop3_list_line(line, len, &msg, &size))
		return -3;
	return u->cb(u->ctx, msg, size) != 0 ? -1 : 0;
}

enum pop3_err
pop3_list(struct pop3 *c, int (*size_listed)(void *ctx, uint32_t msg, uint64_t size),
	  void *ctx)
{
	struct list_ctx u = {size_listed, ctx};
	enum pop3_err e = send_line(c, "LIST", NULL);
	if (e == POP3_SUCCESS)
		e = read_status(c);
	if (e == POP3_SUCCESS)
		e = read_lines(c, list_line, &u);
	return e;
}

static int
top_data(void *ctx, const char *d, size_t n)
{
	struct buf *b = ctx;
	size_t room = b->cap > b->len ? b->cap - b->len : 0;
	if (room > POP3_TOP_MAX)
		room = POP3_TOP_MAX;
	(void)buf_append(b, d, n < room ? n : room);
	return 0;
}

bool
pop3_can_pipeline(const struct pop3 *c)
{
	return c->pipelining;
}

bool
pop3_window_room(const struct pop3 *c, uint64_t expect)
{
	return c->state == ST_TRANSACTION && pop3_pipe_room(&c->pipe, expect);
}

static enum pop3_err
queue_cmd(struct pop3 *c, enum pop3_pipe_cmd cmd, uint32_t msg, uint64_t expect)
{
	if (c->state != ST_TRANSACTION)
		return fail(c, POP3_ERR_PROTOCOL, "%s outside the transaction state",
			    cmd == POP3_PIPE_TOP ? "TOP" : "RETR");
	if (!pop3_pipe_room(&c->pipe, expect))
		return fail(c, POP3_ERR_PROTOCOL, "pipelining window full (%u in flight)",
			    pop3_pipe_count(&c->pipe));
	char line[64];
	if (cmd == POP3_PIPE_TOP)
		snprintf(line, sizeof(line), "TOP %u 0", msg);
	else
		snprintf(line, sizeof(line), "RETR %u", msg);
	enum pop3_err e = queue_line(c, line, NULL);
	if (e == POP3_SUCCESS)
		(void)pop3_pipe_push(&c->pipe, cmd, msg, expect);
	return e;
}

enum pop3_err
pop3_send_top(struct pop3 *c, uint32_t msg, uint64_t expect)
{
	return queue_cmd(c, POP3_PIPE_TOP, msg, expect);
}

enum pop3_err
pop3_send_retr(struct pop3 *c, uint32_t msg, uint64_t expect)
{
	return queue_cmd(c, POP3_PIPE_RETR, msg, expect);
}

/* The status of the reply to the oldest command in flight, which must be `cmd`: flushes
 * what is queued first. The command leaves the window here: on -ERR (POP3_ERR_NO, only
 * this message affected) as on +OK (the caller reads the body next). */
static enum pop3_err
next_reply(struct pop3 *c, enum pop3_pipe_cmd cmd, uint32_t *msg_r)
{
	struct pop3_pipe_slot s;
	if (!pop3_pipe_front(&c->pipe, &s) || s.cmd != cmd)
		return fail(c, POP3_ERR_PROTOCOL, "no %s in flight to read the reply of",
			    cmd == POP3_PIPE_TOP ? "TOP" : "RETR");
	if (conn_flush(c->conn) != CONN_OK)
		return conn_failed(c);
	*msg_r = s.msg;
	enum pop3_err e = read_status(c);
	if (e == POP3_SUCCESS || e == POP3_ERR_NO)
		(void)pop3_pipe_pop(&c->pipe);
	if (e == POP3_SUCCESS && c->st.kind == POP3_CONT)
		return fail(c, POP3_ERR_PROTOCOL, "continuation where +OK or -ERR was due");
	return e;
}

enum pop3_err
pop3_read_top(struct pop3 *c, uint32_t *msg_r, struct buf *out)
{
	buf_reset(out);
	enum pop3_err e = next_reply(c, POP3_PIPE_TOP, msg_r);
	if (e == POP3_SUCCESS)
		e = read_body(c, 0, top_data, out, NULL);
	return e;
}

enum pop3_err
pop3_read_retr(struct pop3 *c, uint32_t *msg_r,
	       int (*data_received)(void *ctx, const char *data, size_t len), void *ctx,
	       uint64_t *total_r)
{
	enum pop3_err e = next_reply(c, POP3_PIPE_RETR, msg_r);
	if (e == POP3_SUCCESS)
		e = read_body(c, 0, data_received, ctx, total_r);
	return e;
}

enum pop3_err
pop3_top(struct pop3 *c, uint32_t msg, struct buf *out)
{
	uint32_t got;
	if (pop3_pipe_count(&c->pipe) > 0)
		return fail(c, POP3_ERR_PROTOCOL, "TOP while pipelined replies are unread");
	enum pop3_err e = pop3_send_top(c, msg, 0);
	return e == POP3_SUCCESS ? pop3_read_top(c, &got, out) : e;
}

enum pop3_err
pop3_retr(struct pop3 *c, uint32_t msg,
	  int (*data_received)(void *ctx, const char *data, size_t len), void *ctx,
	  uint64_t *total_r)
{
	uint32_t got;
	if (pop3_pipe_count(&c->pipe) > 0)
		return fail(c, POP3_ERR_PROTOCOL, "RETR while pipelined replies are unread");
	enum pop3_err e = pop3_send_retr(c, msg, 0);
	return e == POP3_SUCCESS ? pop3_read_retr(c, &got, data_received, ctx, total_r) : e;
}

static enum pop3_err
simple(struct pop3 *c, const char *line)
{
	enum pop3_err e = send_line(c, line, NULL);
	if (e == POP3_SUCCESS)
		e = read_status(c);
	return e;
}

enum pop3_err
pop3_dele(struct pop3 *c, uint32_t msg)
{
	char line[64];
	snprintf(line, sizeof(line), "DELE %u", msg);
	return simple(c, line);
}

enum pop3_err
pop3_noop(struct pop3 *c)
{
	return simple(c, "NOOP");
}

enum pop3_err
pop3_quit(struct pop3 *c)
{
	enum pop3_err e = simple(c, "QUIT");
	set_state(c, ST_QUIT);
	return e;
}

void
pop3_close(struct pop3 **cp)
{
	struct pop3 *c = *cp;
	if (c == NULL)
		return;
	conn_close(&c->conn);
	buf_free(&c->capa);
	free(c);
	*cp = NULL;
}

const char *
pop3_errmsg(const struct pop3 *c)
{
	return c->errmsg;
}
