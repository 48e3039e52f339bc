/* smtp.c - SMTP submission client: session setup, AUTH, pipelined envelopes and the
 * streamed, dot-stuffed body (see smtp.h).
 *
 * It does not parse reply bytes itself (net/smtp-reply.c does), does not touch sockets or
 * TLS (net/conn.c does), and does not read messages: the caller's reader hands it bytes,
 * which go to the connection in pieces. It knows nothing of queues or retries either: it
 * reports temporary and permanent failures, the sender decides.
 */
#include "net/smtp.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/log.h"
#include "net/sasl.h"

#define PIPELINE_WINDOW 100 /* commands written before their replies are read */
#define ADDR_MAX 900        /* RFC 5321 §4.5.3.1.3 path: 256; generous, but bounded */
#define BODY_CHUNK (16 * 1024)

/* Session states, changed only in set_state() so traces read like the protocol. */
enum smtp_state {
	ST_GREETING,
	ST_EHLO,
	ST_STARTTLS,
	ST_AUTH,
	ST_READY,
	ST_ENVELOPE,
	ST_BODY,
	ST_RSET,
	ST_QUIT,
	ST_DEAD,
};
static const char *const state_names[] = {"greeting", "ehlo", "starttls", "auth", "ready",
					  "envelope", "body", "rset",     "quit", "dead"};

struct smtp {
	struct conn *conn;
	struct smtp_reply_parser parser;
	struct smtp_reply ehlo; /* the last EHLO reply */
	struct smtp_ehlo ext;
	struct smtp_reply r, r_mail, r_data; /* scratch, kept off the stack */
	char host[256];
	uint16_t port;
	char trace[64];
	char helo[256];
	int timeout_ms, final_timeout_ms;
	enum smtp_state state;
	char errmsg[700];
};

static void
set_state(struct smtp *s, enum smtp_state st)
{
	if (s->state != st && log_trace_enabled())
		log_debug("%s: state %s -> %s", s->trace, state_names[s->state], state_names[st]);
	s->state = st;
}

static bool
alive(const struct smtp *s)
{
	return s->state != ST_DEAD && conn_error(s->conn) == CONN_OK;
}

/* A session-ending error: the connection is marked failed so that nothing more is sent. */
static void
kill_session(struct smtp *s, const char *why)
{
	if (conn_error(s->conn) == CONN_OK)
		conn_fail(s->conn, CONN_ERR_PROTOCOL, "%s", why);
	set_state(s, ST_DEAD);
}

static enum smtp_err __attribute__((format(printf, 3, 4)))
fail(struct smtp *s, enum smtp_err e, const char *fmt, ...)
{
	char msg[600];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(s->errmsg, sizeof(s->errmsg), "%s:%u: %s", s->host, s->port, msg);
	if (e == SMTP_ERR_PROTOCOL || e == SMTP_ERR_ABORTED || e == SMTP_ERR_CONN)
		kill_session(s, msg);
	return e;
}

static enum smtp_err
conn_failed(struct smtp *s)
{
	snprintf(s->errmsg, sizeof(s->errmsg), "%s", conn_errmsg(s->conn));
	set_state(s, ST_DEAD);
	return SMTP_ERR_CONN;
}

/* "550 5.1.1 text" on one line, the reply's lines joined with spaces. */
static const char *
reply_str(const struct smtp_reply *r, char *out, size_t outlen)
{
	int n = snprintf(out, outlen, "%d%s%s%s%.400s", r->code, r->enhanced[0] ? " " : "",
			 r->enhanced, r->text[0] ? " " : "", r->text);
	for (int i = 0; i < n && (size_t)i < outlen; i++)
		if (out[i] == '\n')
			out[i] = ' ';
	return out;
}

/* The error class of a reply: 2xx OK, 4xx TEMP, 5xx PERM, else PROTOCOL. */
static enum smtp_err
reply_class(const struct smtp_reply *r)
{
	switch (r->code / 100) {
	case 2:
		return SMTP_OK;
	case 4:
		return SMTP_ERR_TEMP;
	case 5:
		return SMTP_ERR_PERM;
	default:
		return SMTP_ERR_PROTOCOL;
	}
}

/* ---- lines -------------------------------------------------------------------------- */

static void
trace_reply(struct smtp *s, const struct smtp_reply *r)
{
	if (!log_trace_enabled())
		return;
	const char *p = r->text;
	for (unsigned i = 0; i < r->nlines; i++) {
		const char *nl = strchr(p, '\n');
		size_t len = nl != NULL ? (size_t)(nl - p) : strlen(p);
		char line[SMTP_LINE_MAX + 64];
		int n = snprintf(line, sizeof(line), "%d%c%s%s%.*s", r->code,
				 i + 1 < r->nlines ? '-' : ' ', r->enhanced,
				 r->enhanced[0] && len > 0 ? " " : "", (int)len, p);
		log_trace(s->trace, '<', line,
			  (unsigned long)(n < 0                      ? 0
					  : (size_t)n < sizeof(line) ? (size_t)n
								     : sizeof(line) - 1));
		if (nl == NULL)
			break;
		p = nl + 1;
	}
}

/* Read one complete reply into *r. A 421 (RFC 5321 §3.8: the server is closing) is
 * returned like any reply, but the session is over. */
static enum smtp_err
read_reply(struct smtp *s, struct smtp_reply *r)
{
	for (;;) {
		const unsigned char *d;
		size_t n, used;
		char perr[160];
		if (conn_peek(s->conn, &d, &n) != CONN_OK)
			return conn_failed(s);
		enum smtp_parse pr =
		    smtp_reply_parse(&s->parser, (const char *)d, n, &used, r, perr, sizeof(perr));
		conn_consume(s->conn, used);
		if (pr == SMTP_PARSE_ERROR)
			return fail(s, SMTP_ERR_PROTOCOL, "malformed reply: %s", perr);
		if (pr == SMTP_PARSE_DONE) {
			trace_reply(s, r);
			if (r->code == 421) {
				char rs[600];
				kill_session(s, reply_str(r, rs, sizeof(rs)));
			}
			return SMTP_OK;
		}
	}
}

/* Queue one command line (CRLF added); `redacted` is what the trace shows instead. */
static enum smtp_err
send_line(struct smtp *s, const char *line, const char *redacted)
{
	if (!alive(s))
		return conn_failed(s);
	if (log_trace_enabled()) {
		const char *t = redacted != NULL ? redacted : line;
		log_trace(s->trace, '>', t, (unsigned long)strlen(t));
	}
	if (conn_write(s->conn, line, strlen(line)) != CONN_OK ||
	    conn_write(s->conn, "\r\n", 2) != CONN_OK)
		return conn_failed(s);
	return SMTP_OK;
}

/* Send one command, flush, read its reply into s->r. */
static enum smtp_err __attribute__((format(printf, 2, 3)))
command(struct smtp *s, const char *fmt, ...)
{
	char line[1100];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line))
		return fail(s, SMTP_ERR_PERM, "command too long");
	enum smtp_err e = send_line(s, line, NULL);
	if (e == SMTP_OK && conn_flush(s->conn) != CONN_OK)
		e = conn_failed(s);
	return e != SMTP_OK ? e : read_reply(s, &s->r);
}

/* ---- session ------------------------------------------------------------------------ */

static enum smtp_err
do_ehlo(struct smtp *s)
{
	char rs[600];
	set_state(s, ST_EHLO);
	memset(&s->ext, 0, sizeof(s->ext));
	memset(&s->ehlo, 0, sizeof(s->ehlo));
	enum smtp_err e = command(s, "EHLO %s", s->helo);
	if (e != SMTP_OK)
		return e;
	switch (reply_class(&s->r)) {
	case SMTP_OK:
		memcpy(&s->ehlo, &s->r, sizeof(s->ehlo));
		smtp_ehlo_parse(&s->ehlo, &s->ext);
		return SMTP_OK;
	case SMTP_ERR_TEMP:
		return fail(s, SMTP_ERR_TEMP, "EHLO refused: %s", reply_str(&s->r, rs, sizeof(rs)));
	case SMTP_ERR_PERM:
		return fail(s, SMTP_ERR_PERM, "EHLO refused (ESMTP is required): %s",
			    reply_str(&s->r, rs, sizeof(rs)));
	default:
		return fail(s, SMTP_ERR_PROTOCOL, "unexpected reply to EHLO: %s",
			    reply_str(&s->r, rs, sizeof(rs)));
	}
}

static bool
valid_helo(const char *h)
{
	if (h[0] == '\0' || strlen(h) > 255)
		return false;
	for (const unsigned char *p = (const unsigned char *)h; *p; p++)
		if (*p <= 0x20 || *p >= 0x7f)
			return false;
	return true;
}

static enum smtp_err
start_session(struct smtp *s, const struct smtp_opts *o)
{
	char rs[600];
	struct conn_opts co = {
	    .host = o->host,
	    .port = o->port,
	    .implicit_tls = o->implicit_tls,
	    .tls = o->tls,
	    .timeout_ms = s->timeout_ms,
	    .trace = s->trace,
	};
	if (conn_open(&co, &s->conn, s->errmsg, sizeof(s->errmsg)) != CONN_OK)
		return SMTP_ERR_CONN;
	/* RFC 5321 §4.2: greeting = ( "220 " ... ) / ( "554 " ... ) */
	enum smtp_err e = read_reply(s, &s->r);
	if (e != SMTP_OK)
		return e;
	switch (reply_class(&s->r)) {
	case SMTP_OK:
		if (s->r.code == 220)
			break;
		/* fall through */
	default:
		return fail(s, SMTP_ERR_PROTOCOL, "not an SMTP greeting: %s",
			    reply_str(&s->r, rs, sizeof(rs)));
	case SMTP_ERR_TEMP:
		return fail(s, SMTP_ERR_TEMP, "server not available: %s",
			    reply_str(&s->r, rs, sizeof(rs)));
	case SMTP_ERR_PERM:
		return fail(s, SMTP_ERR_PERM, "server refused the session: %s",
			    reply_str(&s->r, rs, sizeof(rs)));
	}
	if ((e = do_ehlo(s)) != SMTP_OK)
		return e;
	if (o->implicit_tls)
		return SMTP_OK;
	if (o->plaintext) {
		log_warn("%s: %s:%u: plaintext connection (tls = off): the password and all mail "
			 "cross the network unencrypted",
			 s->trace, s->host, s->port);
		return SMTP_OK;
	}
	/* RFC 3207: STARTTLS or nothing; never AUTH or MAIL in plaintext. */
	if (!s->ext.starttls)
		return fail(s, SMTP_ERR_NOTLS,
			    "server does not offer STARTTLS; refusing to send in plaintext "
			    "(use smtps://, or tls = off to allow plaintext)");
	set_state(s, ST_STARTTLS);
	if ((e = command(s, "STARTTLS")) != SMTP_OK)
		return e;
	if (s->r.code != 220) {
		enum smtp_err c = reply_class(&s->r);
		return fail(s, c == SMTP_ERR_TEMP ? SMTP_ERR_TEMP : SMTP_ERR_NOTLS,
			    "STARTTLS refused: %s", reply_str(&s->r, rs, sizeof(rs)));
	}
	if (conn_starttls(s->conn) != CONN_OK)
		return conn_failed(s);
	/* RFC 3207 §4.2: discard what was learned before TLS, ask again. */
	smtp_reply_parser_init(&s->parser);
	return do_ehlo(s);
}

enum smtp_err
smtp_connect(const struct smtp_opts *o, struct smtp **s_r, char *err, size_t errlen)
{
	*s_r = NULL;
	struct smtp *s = calloc(1, sizeof(*s));
	if (s == NULL) {
		snprintf(err, errlen, "out of memory");
		return SMTP_ERR_CONN;
	}
	snprintf(s->host, sizeof(s->host), "%s", o->host);
	snprintf(s->trace, sizeof(s->trace), "%s", o->trace ? o->trace : "smtp");
	snprintf(s->helo, sizeof(s->helo), "%s", o->helo_name ? o->helo_name : "localhost");
	s->port = o->port;
	s->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 30000;
	s->final_timeout_ms = o->final_timeout_ms > 0 ? o->final_timeout_ms : 600000;
	if (s->final_timeout_ms < s->timeout_ms)
		s->final_timeout_ms = s->timeout_ms;
	smtp_reply_parser_init(&s->parser);
	s->state = ST_GREETING;
	enum smtp_err e;
	if (o->helo_name != NULL && !valid_helo(o->helo_name)) {
		snprintf(s->errmsg, sizeof(s->errmsg), "%s:%u: invalid EHLO name", s->host,
			 s->port);
		e = SMTP_ERR_PERM;
	} else {
		e = start_session(s, o);
	}
	if (e != SMTP_OK) {
		snprintf(err, errlen, "%s", s->errmsg);
		set_state(s, ST_DEAD);
		smtp_close(&s);
		return e;
	}
	set_state(s, ST_READY);
	*s_r = s;
	return SMTP_OK;
}

void
smtp_close(struct smtp **sp)
{
	struct smtp *s = *sp;
	if (s == NULL)
		return;
	if (s->conn != NULL && alive(s)) {
		conn_set_timeout(s->conn, 2000);
		set_state(s, ST_QUIT);
		(void)command(s, "QUIT");
	}
	conn_close(&s->conn);
	tls_cleanse(s, sizeof(*s)); /* the parser saw AUTH exchanges */
	free(s);
	*sp = NULL;
}

/* ---- AUTH (RFC 4954) ---------------------------------------------------------------- */

/* The reply that ends an AUTH exchange (in s->r). */
static enum smtp_err
auth_final(struct smtp *s, const char *mech, const char *user, const char *extra)
{
	char rs[600];
	reply_str(&s->r, rs, sizeof(rs));
	if (s->r.code == 235) {
		set_state(s, ST_READY);
		return SMTP_OK;
	}
	set_state(s, alive(s) ? ST_READY : ST_DEAD);
	switch (reply_class(&s->r)) {
	case SMTP_ERR_TEMP:
		return fail(s, SMTP_ERR_TEMP, "login as %s: temporary failure: %s%s", user, rs,
			    extra);
	case SMTP_ERR_PERM:
		return fail(s, SMTP_ERR_AUTH, "login as %s refused (AUTH %s): %s%s", user, mech, rs,
			    extra);
	default:
		return fail(s, SMTP_ERR_PROTOCOL, "unexpected reply to AUTH %s: %s", mech, rs);
	}
}

/* Send a secret SASL line (wiped afterwards), flush, read the reply into s->r. */
static enum smtp_err
send_secret(struct smtp *s, char **line, const char *redacted)
{
	enum smtp_err e = send_line(s, *line, redacted);
	sasl_free_secret(line);
	if (e == SMTP_OK && conn_flush(s->conn) != CONN_OK)
		e = conn_failed(s);
	return e != SMTP_OK ? e : read_reply(s, &s->r);
}

/* A 334 we did not expect: cancel with "*" (RFC 4954 §4), expect 501. */
static enum smtp_err
auth_cancel(struct smtp *s, const char *mech)
{
	enum smtp_err e = command(s, "*");
	if (e != SMTP_OK)
		return e;
	set_state(s, ST_READY);
	return fail(s, SMTP_ERR_AUTH, "AUTH %s: the server asked for more than the mechanism has",
		    mech);
}

static char *
concat(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	char *r = malloc(la + lb + 1);
	if (r != NULL) {
		memcpy(r, a, la);
		memcpy(r + la, b, lb + 1);
	}
	return r;
}

static enum smtp_err
auth_plain(struct smtp *s, const char *user, const char *secret)
{
	char *ir = sasl_plain(user, secret);
	char *line = ir != NULL ? concat("AUTH PLAIN ", ir) : NULL;
	sasl_free_secret(&ir);
	if (line == NULL)
		return fail(s, SMTP_ERR_AUTH, "user name or password too long");
	enum smtp_err e = send_secret(s, &line, "AUTH PLAIN <redacted>");
	if (e != SMTP_OK)
		return e;
	if (s->r.code == 334)
		return auth_cancel(s, "PLAIN");
	return auth_final(s, "PLAIN", user, "");
}

static enum smtp_err
auth_login(struct smtp *s, const char *user, const char *secret)
{
	enum smtp_err e = command(s, "AUTH LOGIN");
	const char *parts[2] = {user, secret};
	for (int i = 0; i < 2 && e == SMTP_OK; i++) {
		if (s->r.code != 334)
			return auth_final(s, "LOGIN", user, "");
		char *line = sasl_base64_encode(parts[i], strlen(parts[i]));
		if (line == NULL)
			return fail(s, SMTP_ERR_CONN, "out of memory");
		e = send_secret(s, &line, "<redacted>");
	}
	if (e != SMTP_OK)
		return e;
	if (s->r.code == 334)
		return auth_cancel(s, "LOGIN");
	return auth_final(s, "LOGIN", user, "");
}

static enum smtp_err
auth_xoauth2(struct smtp *s, const char *user, const char *token)
{
	char *ir = sasl_xoauth2(user, token);
	char *line = ir != NULL ? concat("AUTH XOAUTH2 ", ir) : NULL;
	sasl_free_secret(&ir);
	if (line == NULL)
		return fail(s, SMTP_ERR_AUTH, "user name or token too long");
	enum smtp_err e = send_secret(s, &line, "AUTH XOAUTH2 <redacted>");
	if (e != SMTP_OK || s->r.code != 334)
		return e != SMTP_OK ? e : auth_final(s, "XOAUTH2", user, "");
	/* The error challenge: base64 JSON ({"status":"401",...}); the client answers with an
	 * empty line and gets the final reply. Keep the JSON for the message. */
	char extra[300] = "";
	size_t jl = 0;
	unsigned char *json = sasl_base64_decode(s->r.text, &jl);
	if (json != NULL) {
		size_t o = (size_t)snprintf(extra, sizeof(extra), " (");
		for (size_t i = 0; i < jl && o + 3 < sizeof(extra); i++)
			extra[o++] = json[i] >= 0x20 && json[i] < 0x7f ? (char)json[i] : '?';
		extra[o++] = ')';
		extra[o] = '\0';
		free(json);
	}
	if ((e = command(s, "%s", "")) != SMTP_OK)
		return e;
	if (s->r.code == 235) /* not after an error challenge */
		return fail(s, SMTP_ERR_PROTOCOL, "AUTH XOAUTH2: success after an error challenge");
	return auth_final(s, "XOAUTH2", user, extra);
}

enum smtp_err
smtp_login(struct smtp *s, enum smtp_auth_mech mech, const char *user, const char *secret)
{
	if (!alive(s))
		return conn_failed(s);
	if (user == NULL)
		return SMTP_OK;
	if (secret == NULL)
		return fail(s, SMTP_ERR_AUTH, "login as %s: no password", user);
	if (!s->ext.auth)
		return fail(s, SMTP_ERR_AUTH, "login as %s impossible: the server offers no AUTH",
			    user);
	unsigned m = s->ext.auth_mechs;
	if (mech == SMTP_AUTH_AUTO) {
		if (m & SMTP_AUTH_BIT_PLAIN)
			mech = SMTP_AUTH_PLAIN;
		else if (m & SMTP_AUTH_BIT_LOGIN)
			mech = SMTP_AUTH_LOGIN;
		else
			return fail(s, SMTP_ERR_AUTH,
				    "login as %s impossible: the server offers neither AUTH PLAIN "
				    "nor AUTH LOGIN",
				    user);
	}
	static const struct {
		unsigned bit;
		const char *name;
	} mechs[] = {
	    [SMTP_AUTH_PLAIN] = {SMTP_AUTH_BIT_PLAIN, "PLAIN"},
	    [SMTP_AUTH_LOGIN] = {SMTP_AUTH_BIT_LOGIN, "LOGIN"},
	    [SMTP_AUTH_XOAUTH2] = {SMTP_AUTH_BIT_XOAUTH2, "XOAUTH2"},
	};
	if ((unsigned)mech >= sizeof(mechs) / sizeof(mechs[0]) || mechs[mech].name == NULL)
		return fail(s, SMTP_ERR_AUTH, "unknown AUTH mechanism");
	if (!(m & mechs[mech].bit))
		return fail(s, SMTP_ERR_AUTH,
			    "login as %s impossible: the server does not offer "
			    "AUTH %s",
			    user, mechs[mech].name);
	set_state(s, ST_AUTH);
	switch (mech) {
	case SMTP_AUTH_PLAIN:
		return auth_plain(s, user, secret);
	case SMTP_AUTH_LOGIN:
		return auth_login(s, user, secret);
	default:
		return auth_xoauth2(s, user, secret);
	}
}

bool
smtp_has_ext(const struct smtp *s, const char *kw)
{
	return smtp_ehlo_has(&s->ehlo, kw);
}

uint64_t
smtp_size_limit(const struct smtp *s)
{
	return s->ext.size;
}

const char *
smtp_errmsg(const struct smtp *s)
{
	return s->errmsg;
}

struct conn *
smtp_conn(struct smtp *s)
{
	return s->conn;
}

/* ---- sending (RFC 5321 §3.3, §4.1.1.2-4) ------------------------------------------- */

void
smtp_send_result_free(struct smtp_send_result *res)
{
	for (size_t i = 0; res->rcpt != NULL && i < res->nrcpt; i++)
		free(res->rcpt[i].text);
	free(res->rcpt);
	res->rcpt = NULL;
	res->nrcpt = 0;
	res->naccepted = 0;
}

/* A failure decided here, without a reply: res->reply.code 0, the text explains. */
static enum smtp_err __attribute__((format(printf, 4, 5)))
local_fail(struct smtp *s, struct smtp_send_result *res, enum smtp_err e, const char *fmt, ...)
{
	char msg[600];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fail(s, e, "%s", msg);
	memset(&res->reply, 0, sizeof(res->reply));
	snprintf(res->reply.text, sizeof(res->reply.text), "%s", msg);
	res->status = e;
	return e;
}

/* A failure already reported in s->errmsg (connection, malformed reply). */
static enum smtp_err
session_fail(struct smtp *s, struct smtp_send_result *res, enum smtp_err e)
{
	memset(&res->reply, 0, sizeof(res->reply));
	snprintf(res->reply.text, sizeof(res->reply.text), "%s", s->errmsg);
	res->status = e;
	return e;
}

/* A failure decided by a server reply. */
static enum smtp_err
reply_fail(struct smtp *s, struct smtp_send_result *res, const struct smtp_reply *r,
	   const char *what)
{
	char rs[600];
	enum smtp_err e = reply_class(r);
	if (e == SMTP_OK)
		e = SMTP_ERR_PROTOCOL; /* a success where none belongs */
	if (e == SMTP_ERR_PROTOCOL)
		fail(s, e, "unexpected reply to %s: %s", what, reply_str(r, rs, sizeof(rs)));
	else
		fail(s, e, "%s: %s", what, reply_str(r, rs, sizeof(rs)));
	memcpy(&res->reply, r, sizeof(res->reply));
	res->status = e;
	return e;
}

/* What may go between < and > here: no controls, no angle brackets, bounded. */
static bool
valid_addr(const char *a, bool *eightbit)
{
	size_t n = 0;
	for (const unsigned char *p = (const unsigned char *)a; *p; p++, n++) {
		if (*p < 0x20 || *p == 0x7f || *p == '<' || *p == '>')
			return false;
		if (*p >= 0x80)
			*eightbit = true;
	}
	return n <= ADDR_MAX;
}

/* Stream the body: CRLF line ends, dot-stuffing, final CRLF, then "." (RFC 5321 §4.5.2). */
static enum smtp_err
send_body(struct smtp *s, smtp_reader rd, void *ctx, struct smtp_send_result *res)
{
	static const char crlf[] = "\r\n";
	char in[BODY_CHUNK];
	char out[2 * BODY_CHUNK + 8];
	bool bol = true, cr = false;
	uint64_t total = 0;
	set_state(s, ST_BODY);
	for (;;) {
		ssize_t n = rd(ctx, in, sizeof(in));
		if (n < 0 || (size_t)n > sizeof(in)) {
			/* Never end the data: a "." now would submit a truncated message. */
			res->stage = "body";
			return local_fail(s, res, SMTP_ERR_ABORTED,
					  "reading the message failed after %llu bytes; the "
					  "connection was dropped so the server discards it",
					  (unsigned long long)total);
		}
		if (n == 0)
			break;
		total += (uint64_t)n;
		size_t o = 0;
		for (ssize_t i = 0; i < n; i++) {
			char c = in[i];
			if (cr) {
				cr = false;
				out[o++] = '\r';
				out[o++] = '\n';
				bol = true;
				if (c == '\n')
					continue;
			}
			if (c == '\r') {
				cr = true;
				continue;
			}
			if (c == '\n') {
				out[o++] = '\r';
				out[o++] = '\n';
				bol = true;
				continue;
			}
			if (bol && c == '.')
				out[o++] = '.';
			out[o++] = c;
			bol = false;
		}
		if (conn_write(s->conn, out, o) != CONN_OK)
			return session_fail(s, res, conn_failed(s));
	}
	size_t o = 0;
	if (cr || !bol) {
		memcpy(out, crlf, 2);
		o = 2;
	}
	memcpy(out + o, ".\r\n", 3);
	o += 3;
	if (log_trace_enabled()) {
		char t[80];
		int tl = snprintf(t, sizeof(t), "[message, %llu bytes]", (unsigned long long)total);
		log_trace(s->trace, '>', t, (unsigned long)tl);
		log_trace(s->trace, '>', ".", 1);
	}
	if (conn_write(s->conn, out, o) != CONN_OK || conn_flush(s->conn) != CONN_OK)
		return session_fail(s, res, conn_failed(s));
	return SMTP_OK;
}

/* RSET after a failed transaction, so the session can send the next message. */
static void
reset_transaction(struct smtp *s)
{
	if (!alive(s))
		return;
	set_state(s, ST_RSET);
	char msg[700];
	snprintf(msg, sizeof(msg), "%s", s->errmsg); /* keep the message that matters */
	if (command(s, "RSET") == SMTP_OK && s->r.code / 100 != 2) {
		char rs[600];
		kill_session(s, reply_str(&s->r, rs, sizeof(rs)));
	}
	snprintf(s->errmsg, sizeof(s->errmsg), "%s", msg);
	if (alive(s))
		set_state(s, ST_READY);
}

/* Read the reply to command `i` of the envelope (0 MAIL, 1..n RCPT, n+1 DATA). */
static enum smtp_err
envelope_reply(struct smtp *s, size_t i, size_t nrcpts, struct smtp_send_result *res)
{
	struct smtp_reply *r = i == 0 ? &s->r_mail : i == nrcpts + 1 ? &s->r_data : &s->r;
	enum smtp_err e = read_reply(s, r);
	if (e != SMTP_OK)
		return e;
	if (i >= 1 && i <= nrcpts) {
		struct smtp_rcpt_result *rr = &res->rcpt[i - 1];
		rr->code = r->code;
		memcpy(rr->enhanced, r->enhanced, sizeof(rr->enhanced));
		rr->text = strdup(r->text);
		if (rr->text == NULL)
			return fail(s, SMTP_ERR_CONN, "out of memory");
		if (r->code / 100 == 2)
			res->naccepted++;
	}
	return SMTP_OK;
}

/* Write envelope command `i`. */
static enum smtp_err
envelope_cmd(struct smtp *s, size_t i, const struct smtp_envelope *env, const char *mail)
{
	char line[ADDR_MAX + 20];
	if (i == 0)
		return send_line(s, mail, NULL);
	if (i == env->nrcpts + 1)
		return send_line(s, "DATA", NULL);
	snprintf(line, sizeof(line), "RCPT TO:<%s>", env->rcpts[i - 1]);
	return send_line(s, line, NULL);
}

/* MAIL, RCPTs and DATA; pipelined in windows when offered (RFC 2920 §3.1), else one by
 * one, stopping after a refused MAIL or when no recipient was accepted. On return, the
 * replies are in s->r_mail, res->rcpt and (if *data_sent) s->r_data. */
static enum smtp_err
send_envelope(struct smtp *s, const struct smtp_envelope *env, const char *mail,
	      struct smtp_send_result *res, bool *data_sent)
{
	size_t total = env->nrcpts + 2, sent = 0, got = 0;
	bool pipe = s->ext.pipelining, stop = false;
	*data_sent = false;
	while (got < sent || (sent < total && !stop)) {
		while (sent < total && !stop &&
		       (pipe ? sent - got < PIPELINE_WINDOW : sent == got)) {
			if (sent > 0 && got >= 1 && s->r_mail.code / 100 != 2) {
				stop = true; /* MAIL refused: no use sending more */
				break;
			}
			if (sent == total - 1 && got == sent && res->naccepted == 0) {
				stop = true; /* nobody to send to */
				break;
			}
			enum smtp_err e = envelope_cmd(s, sent, env, mail);
			if (e != SMTP_OK)
				return e;
			if (sent == total - 1)
				*data_sent = true;
			sent++;
		}
		if (got == sent)
			break;
		if (conn_flush(s->conn) != CONN_OK)
			return conn_failed(s);
		res->stage = got == 0 ? "MAIL FROM" : got <= env->nrcpts ? "RCPT TO" : "DATA";
		enum smtp_err e = envelope_reply(s, got, env->nrcpts, res);
		if (e != SMTP_OK)
			return e;
		got++;
		if (!alive(s))
			return SMTP_ERR_TEMP; /* 421: the session is closing */
	}
	return SMTP_OK;
}

/* The decision when the server refused every recipient: any 4xx makes it temporary. */
static const struct smtp_reply *
worst_rcpt(struct smtp *s, const struct smtp_envelope *env, struct smtp_send_result *res)
{
	size_t pick = SIZE_MAX;
	for (size_t i = 0; i < env->nrcpts; i++) {
		if (res->rcpt[i].code / 100 == 4) {
			pick = i;
			break;
		}
		if (pick == SIZE_MAX && res->rcpt[i].code != 0)
			pick = i;
	}
	struct smtp_reply *r = &s->r;
	memset(r, 0, sizeof(*r));
	if (pick == SIZE_MAX)
		return r;
	r->code = res->rcpt[pick].code;
	r->nlines = 1;
	memcpy(r->enhanced, res->rcpt[pick].enhanced, sizeof(r->enhanced));
	snprintf(r->text, sizeof(r->text), "%s", res->rcpt[pick].text);
	return r;
}

enum smtp_err
smtp_send(struct smtp *s, const struct smtp_envelope *env, smtp_reader rd, void *ctx,
	  struct smtp_send_result *res)
{
	memset(res, 0, sizeof(*res));
	res->stage = "session";
	if (!alive(s))
		return session_fail(s, res, conn_failed(s));
	if (env->nrcpts == 0 || env->rcpts == NULL) {
		res->stage = "RCPT TO";
		return local_fail(s, res, SMTP_ERR_PERM, "no recipients");
	}
	res->rcpt = calloc(env->nrcpts, sizeof(*res->rcpt));
	if (res->rcpt == NULL)
		return local_fail(s, res, SMTP_ERR_TEMP, "out of memory");
	res->nrcpt = env->nrcpts;

	/* Checks that need no round trip. */
	bool utf8 = env->smtputf8;
	const char *from = env->from != NULL ? env->from : "";
	res->stage = "MAIL FROM";
	if (!valid_addr(from, &utf8))
		return local_fail(s, res, SMTP_ERR_PERM, "invalid sender address");
	res->stage = "RCPT TO";
	for (size_t i = 0; i < env->nrcpts; i++)
		if (env->rcpts[i] == NULL || env->rcpts[i][0] == '\0' ||
		    !valid_addr(env->rcpts[i], &utf8))
			return local_fail(s, res, SMTP_ERR_PERM, "invalid recipient address #%zu",
					  i + 1);
	if (utf8 && !s->ext.smtputf8) {
		res->stage = "SMTPUTF8";
		return local_fail(s, res, SMTP_ERR_PERM,
				  "the message needs SMTPUTF8 (UTF-8 addresses or headers), which "
				  "the server does not offer");
	}
	if (env->body_8bit && !s->ext.eightbitmime) {
		res->stage = "8BITMIME";
		return local_fail(s, res, SMTP_ERR_PERM,
				  "the message has 8-bit text, and the server does not offer "
				  "8BITMIME");
	}
	if (env->size > 0 && s->ext.size > 0 && env->size > s->ext.size) {
		res->stage = "SIZE";
		return local_fail(s, res, SMTP_ERR_PERM,
				  "message size %llu exceeds the server's limit %llu",
				  (unsigned long long)env->size, (unsigned long long)s->ext.size);
	}
	char mail[ADDR_MAX + 100];
	char size_param[40] = "";
	if (env->size > 0 && s->ext.size_offered)
		snprintf(size_param, sizeof(size_param), " SIZE=%llu",
			 (unsigned long long)env->size);
	snprintf(mail, sizeof(mail), "MAIL FROM:<%s>%s%s%s", from, size_param,
		 env->body_8bit ? " BODY=8BITMIME" : "", utf8 ? " SMTPUTF8" : "");

	set_state(s, ST_ENVELOPE);
	memset(&s->r_mail, 0, sizeof(s->r_mail));
	memset(&s->r_data, 0, sizeof(s->r_data));
	bool data_sent = false;
	enum smtp_err e = send_envelope(s, env, mail, res, &data_sent);
	char rs[600];
	if (e == SMTP_ERR_TEMP) /* a 421 */
		return reply_fail(s, res,
				  data_sent && s->r_data.code ? &s->r_data
				  : res->stage[0] == 'M'      ? &s->r_mail
							      : worst_rcpt(s, env, res),
				  res->stage);
	if (e != SMTP_OK)
		return session_fail(s, res, e);
	bool data_open = data_sent && s->r_data.code == 354;
	const struct smtp_reply *decided = NULL;
	if (s->r_mail.code / 100 != 2) {
		res->stage = "MAIL FROM";
		decided = &s->r_mail;
	} else if (res->naccepted == 0) {
		res->stage = "RCPT TO";
		decided = worst_rcpt(s, env, res);
	}
	if (decided != NULL) {
		reply_fail(s, res, decided, res->stage);
		if (data_open) {
			/* RFC 2920 §3.1: DATA was accepted although nobody was: end it empty. */
			set_state(s, ST_BODY);
			if (send_line(s, ".", NULL) != SMTP_OK || conn_flush(s->conn) != CONN_OK ||
			    read_reply(s, &s->r_data) != SMTP_OK)
				return res->status;
			if (s->r_data.code / 100 == 2) {
				/* the server took a message without recipients: it goes nowhere */
				log_warn("%s: %s:%u: server accepted an empty message without "
					 "recipients",
					 s->trace, s->host, s->port);
			}
		}
		reset_transaction(s);
		return res->status;
	}
	res->stage = "DATA";
	if (!data_open) {
		reply_fail(s, res, &s->r_data, "DATA");
		reset_transaction(s);
		return res->status;
	}
	e = send_body(s, rd, ctx, res);
	if (e != SMTP_OK)
		return e;
	res->stage = "end of data";
	conn_set_timeout(s->conn, s->final_timeout_ms);
	e = read_reply(s, &s->r);
	conn_set_timeout(s->conn, s->timeout_ms);
	if (e != SMTP_OK)
		return session_fail(s, res, e);
	if (s->r.code / 100 == 2) {
		memcpy(&res->reply, &s->r, sizeof(res->reply));
		res->status = SMTP_OK;
		set_state(s, ST_READY);
		return SMTP_OK;
	}
	snprintf(rs, sizeof(rs), "end of data");
	reply_fail(s, res, &s->r, rs);
	reset_transaction(s);
	return res->status;
}
