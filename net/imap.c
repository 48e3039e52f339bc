/* imap.c - IMAP client: session setup, authentication, tagged pipelined commands and
 * dispatch of untagged data (see imap.h). Mailbox commands (LIST, STATUS, SELECT) are in
 * net/imap-mbox.c; what both share is in net/imap-int.h.
 *
 * It does not parse bytes itself (net/imap-parser.c does), does not touch sockets or TLS
 * (net/conn.c does), and keeps no mailbox data beyond what one command returns: FETCH
 * results go straight to the caller's handler, bodies in chunks.
 */
#include "net/imap.h"
#include "net/imap-int.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <strings.h>

#include "net/buf.h"
#include "net/imap-utf7.h"
#include "net/log.h"
#include "net/sasl.h"

#define MAX_SEARCH_UIDS 50000000u

static const char *const state_names[] = { "greeting", "not-authenticated", "authenticated",
					   "selected", "logout" };


void
imap_set_state(struct imap *c, enum imap_state s)
{
	if (c->state != s && log_trace_enabled())
		log_debug("%s: state %s -> %s", c->trace, state_names[c->state], state_names[s]);
	c->state = s;
}

enum imap_err
imap_fail(struct imap *c, enum imap_err e, const char *fmt, ...)
{
	char msg[500];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(c->errmsg, sizeof(c->errmsg), "%s:%u: %s", c->host, c->port, msg);
	if (e == IMAP_ERR_PROTOCOL || e == IMAP_ERR_ABORTED)
		conn_fail(c->conn, CONN_ERR_PROTOCOL, "%s", msg);
	return e;
}

static enum imap_err
conn_failed(struct imap *c)
{
	snprintf(c->errmsg, sizeof(c->errmsg), "%s", conn_errmsg(c->conn));
	return IMAP_ERR_CONN;
}

/* Parser callbacks: forward streamed bodies to the caller's handler. */
static int
on_literal_begin(void *ctx, uint32_t seq, const char *section, uint64_t size)
{
	struct imap *c = ctx;
	uint32_t uid = 0;
	const char *u = imap_parser_fetch_attr(c->parser, "UID");
	if (u != NULL) {
		char *end;
		errno = 0;
		unsigned long v = strtoul(u, &end, 10);
		if (errno == 0 && *end == '\0' && v <= UINT32_MAX && *u >= '0' && *u <= '9')
			uid = (uint32_t)v;
	}
	if (c->fh != NULL && c->fh->body_begin != NULL &&
	    c->fh->body_begin(c->fctx, seq, uid, section, size)) {
		c->aborted = true;
		return -1;
	}
	return 0;
}

static int
on_literal_data(void *ctx, const unsigned char *data, size_t len)
{
	struct imap *c = ctx;
	if (c->fh != NULL && c->fh->body_data != NULL && c->fh->body_data(c->fctx, data, len)) {
		c->aborted = true;
		return -1;
	}
	return 0;
}

static int
on_literal_end(void *ctx)
{
	struct imap *c = ctx;
	if (c->fh != NULL && c->fh->body_end != NULL && c->fh->body_end(c->fctx)) {
		c->aborted = true;
		return -1;
	}
	return 0;
}

static const struct imap_parser_callbacks parser_cb = {
	.literal_begin = on_literal_begin,
	.literal_data = on_literal_data,
	.literal_end = on_literal_end,
};

/* ---- tracing ---------------------------------------------------------------------- */

static void
render_args(struct buf *b, const struct imap_arg *args, size_t n)
{
	for (size_t i = 0; i < n && b->len < 300; i++) {
		const struct imap_arg *a = &args[i];
		if (i > 0)
			buf_append(b, " ", 1);
		switch (a->type) {
		case IMAP_ARG_ATOM:
			buf_append(b, a->str, a->len);
			break;
		case IMAP_ARG_STRING:
			buf_printf(b, "\"%.*s\"", (int)(a->len > 80 ? 80 : a->len), a->str);
			break;
		case IMAP_ARG_LITERAL:
			buf_printf(b, "{%zu}", a->len);
			break;
		case IMAP_ARG_STREAMED:
			buf_printf(b, "{%llu streamed}", (unsigned long long)a->size);
			break;
		case IMAP_ARG_NIL:
			buf_append(b, "NIL", 3);
			break;
		case IMAP_ARG_LIST:
			buf_append(b, "(", 1);
			render_args(b, a->list, a->len);
			buf_append(b, ")", 1);
			break;
		}
	}
}

static void
trace_response(struct imap *c, const struct imap_response *r)
{
	if (!log_trace_enabled())
		return;
	struct buf b;
	buf_init(&b, 1024);
	if (r->kind == IMAP_RESP_CONTINUE) {
		buf_printf(&b, "+ %s", r->text ? r->text : "");
	} else {
		buf_append_str(&b, r->kind == IMAP_RESP_TAGGED ? r->tag : "*");
		if (r->has_number)
			buf_printf(&b, " %u", r->number);
		if (r->name != NULL) {
			buf_printf(&b, " %s ", r->name);
			render_args(&b, r->args, r->nargs);
		} else {
			static const char *const st[] = { "", "OK", "NO", "BAD", "BYE", "PREAUTH" };
			buf_printf(&b, " %s", st[r->status]);
			if (r->code != NULL) {
				buf_printf(&b, " [%s", r->code);
				if (r->code_nargs > 0)
					buf_append(&b, " ", 1);
				render_args(&b, r->code_args, r->code_nargs);
				buf_append(&b, "]", 1);
			}
			buf_printf(&b, " %s", r->text ? r->text : "");
		}
	}
	if (b.data != NULL)
		log_trace(c->trace, '<', b.data, b.len);
	buf_free(&b);
}

/* ---- capabilities ----------------------------------------------------------------- */

static void
set_caps(struct imap *c, const struct imap_arg *args, size_t n)
{
	buf_reset(&c->caps);
	buf_append(&c->caps, " ", 1);
	for (size_t i = 0; i < n; i++) {
		if (args[i].type != IMAP_ARG_ATOM)
			continue;
		for (size_t k = 0; k < args[i].len; k++) {
			char ch = (char)toupper((unsigned char)args[i].str[k]);
			buf_append(&c->caps, &ch, 1);
		}
		buf_append(&c->caps, " ", 1);
	}
}

static bool
word_in(const struct buf *b, const char *word)
{
	if (b->data == NULL)
		return false;
	size_t wl = strlen(word);
	for (const char *p = b->data; (p = strcasestr(p, word)) != NULL; p++) {
		if (p > b->data && p[-1] == ' ' && p[wl] == ' ')
			return true;
	}
	return false;
}

bool
imap_has_cap(const struct imap *c, const char *cap)
{
	return word_in(&c->caps, cap);
}

const char *
imap_caps(const struct imap *c)
{
	if (c->caps.data == NULL || c->caps.len < 2)
		return "";
	return c->caps.data + 1;
}

bool
imap_enabled(const struct imap *c, const char *ext)
{
	return word_in(&c->enabled, ext);
}

/* ---- untagged data (LIST and STATUS: net/imap-mbox.c) ------------------------------ */

static int
search_add(struct search_collect *sc, uint32_t uid)
{
	if (sc->n >= MAX_SEARCH_UIDS) {
		sc->overflow = true;
		return -1;
	}
	if (sc->n == sc->size) {
		size_t size = sc->size ? sc->size * 2 : 256;
		uint32_t *p = realloc(sc->uids, size * sizeof(*p));
		if (p == NULL) {
			sc->overflow = true;
			return -1;
		}
		sc->uids = p;
		sc->size = size;
	}
	sc->uids[sc->n++] = uid;
	return 0;
}

/* sequence-set = (seq-number / seq-range) ["," sequence-set]; seq-range = n ":" n */
static int
search_add_set(struct search_collect *sc, const char *set)
{
	const char *p = set;
	while (*p != '\0') {
		char *end;
		errno = 0;
		unsigned long a = strtoul(p, &end, 10);
		if (end == p || errno != 0 || a == 0 || a > UINT32_MAX || *p == '-' || *p == '+')
			return -1;
		unsigned long b = a;
		p = end;
		if (*p == ':') {
			p++;
			errno = 0;
			b = strtoul(p, &end, 10);
			if (end == p || errno != 0 || b == 0 || b > UINT32_MAX || *p == '-' || *p == '+')
				return -1;
			p = end;
			if (b < a) {
				unsigned long t = a;
				a = b;
				b = t;
			}
		}
		if (b - a >= MAX_SEARCH_UIDS)
			return -1;
		for (unsigned long u = a; u <= b; u++)
			if (search_add(sc, (uint32_t)u) < 0)
				return -1;
		if (*p == ',')
			p++;
		else if (*p != '\0')
			return -1;
	}
	return 0;
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static enum imap_err
handle_search(struct imap *c, const struct imap_response *r, bool esearch)
{
	struct search_collect *sc = c->search;
	if (sc == NULL)
		return IMAP_OK;
	if (!esearch) {
		/* mailbox-data =/ "SEARCH" *(SP nz-number) [SP "(" "MODSEQ" SP mod-sequence ")"] */
		for (size_t i = 0; i < r->nargs; i++) {
			uint32_t u;
			if (r->args[i].type == IMAP_ARG_LIST)
				continue;
			if (imap_arg_u32(&r->args[i], &u) < 0 || u == 0) {
				sc->bad = true;
				return imap_fail(c, IMAP_ERR_PROTOCOL, "malformed SEARCH response");
			}
			if (search_add(sc, u) < 0)
				return IMAP_OK;
		}
		return IMAP_OK;
	}
	/* esearch-response = "ESEARCH" [search-correlator] [SP "UID"] *(SP search-return-data) */
	for (size_t i = 0; i < r->nargs; i++) {
		if (r->args[i].type == IMAP_ARG_LIST || imap_arg_atom_is(&r->args[i], "UID"))
			continue;
		if (imap_arg_atom_is(&r->args[i], "ALL") && i + 1 < r->nargs &&
		    r->args[i + 1].type == IMAP_ARG_ATOM) {
			if (search_add_set(sc, r->args[i + 1].str) < 0 && !sc->overflow) {
				sc->bad = true;
				return imap_fail(c, IMAP_ERR_PROTOCOL, "malformed ESEARCH ALL");
			}
			i++;
		} else if (i + 1 < r->nargs) {
			i++; /* MIN n, MAX n, COUNT n, MODSEQ n: not asked for */
		}
	}
	return IMAP_OK;
}


/* Keep the mapping of a COPYUID code (bounded: a set of more UIDs than one command of ours
 * names is ignored, and then no UID is known). */
static void
copyuid_sets(struct imap *c, const char *src, const char *dst)
{
	c->cu_n = 0;
	if (src == NULL || dst == NULL)
		return;
	if (c->cu_src == NULL) {
		c->cu_src = malloc(IMAP_COPYUID_MAX * sizeof(uint32_t));
		c->cu_dst = malloc(IMAP_COPYUID_MAX * sizeof(uint32_t));
		if (c->cu_src == NULL || c->cu_dst == NULL) {
			free(c->cu_src);
			free(c->cu_dst);
			c->cu_src = c->cu_dst = NULL;
			return;
		}
	}
	long ns = imap_uidset_expand(src, c->cu_src, IMAP_COPYUID_MAX);
	long nd = imap_uidset_expand(dst, c->cu_dst, IMAP_COPYUID_MAX);
	if (ns > 0 && ns == nd)
		c->cu_n = (size_t)ns;
}

static void
handle_code(struct imap *c, const struct imap_response *r)
{
	if (r->code == NULL)
		return;
	if (strcmp(r->code, "CAPABILITY") == 0) {
		set_caps(c, r->code_args, r->code_nargs);
		return;
	}
	if (strcmp(r->code, "ALERT") == 0) {
		log_warn("%s: server alert: %s", c->trace, r->text ? r->text : "");
		return;
	}
	/* resp-code-copy = "COPYUID" SP nz-number SP uid-set SP uid-set (RFC 4315): the new
	 * UID is kept only when one message was copied or moved. */
	if (strcmp(r->code, "COPYUID") == 0 && r->code_nargs >= 3) {
		uint64_t u = 0;
		c->copyuid = imap_arg_u64(&r->code_args[2], &u) == 0 && u > 0 && u <= UINT32_MAX
				     ? (uint32_t)u
				     : 0;
		copyuid_sets(c, imap_arg_str(&r->code_args[1]), imap_arg_str(&r->code_args[2]));
		return;
	}
	if (strcmp(r->code, "APPENDUID") == 0 && r->code_nargs >= 2) {
		uint64_t u = 0;
		if (imap_arg_u64(&r->code_args[1], &u) == 0 && u > 0 && u <= UINT32_MAX)
			c->appenduid = (uint32_t)u;
		return;
	}
	if (c->sel == NULL)
		return;
	uint64_t v = 0;
	bool num = r->code_nargs >= 1 && imap_arg_u64(&r->code_args[0], &v) == 0;
	if (strcmp(r->code, "UIDVALIDITY") == 0 && num)
		c->sel->uidvalidity = v > UINT32_MAX ? 0 : (uint32_t)v;
	else if (strcmp(r->code, "UIDNEXT") == 0 && num)
		c->sel->uidnext = v > UINT32_MAX ? 0 : (uint32_t)v;
	else if (strcmp(r->code, "HIGHESTMODSEQ") == 0 && num)
		c->sel->highestmodseq = v;
	else if (strcmp(r->code, "NOMODSEQ") == 0)
		c->sel->highestmodseq = 0;
	else if (strcmp(r->code, "READ-ONLY") == 0)
		c->sel->readonly = true;
	else if (strcmp(r->code, "READ-WRITE") == 0)
		c->sel->readonly = false;
}

static enum imap_err
handle_untagged(struct imap *c, const struct imap_response *r)
{
	if (r->status != IMAP_STATUS_NONE) {
		handle_code(c, r);
		if (r->status == IMAP_STATUS_BYE) {
			c->bye = true;
			if (c->state != ST_LOGOUT)
				return imap_fail(c, IMAP_ERR_BYE, "server closed the session: %s",
					    r->text ? r->text : "");
		}
		return IMAP_OK;
	}
	const char *name = r->name;
	if (strcmp(name, "EXISTS") == 0 || strcmp(name, "EXPUNGE") == 0 ||
	    strcmp(name, "FETCH") == 0 || strcmp(name, "VANISHED") == 0)
		c->events++;
	if (strcmp(name, "FETCH") == 0) {
		if (!r->has_number || r->nargs != 1 || r->args[0].type != IMAP_ARG_LIST ||
		    r->args[0].len % 2 != 0)
			return imap_fail(c, IMAP_ERR_PROTOCOL, "malformed FETCH response");
		if (c->fh != NULL && c->fh->fetch != NULL &&
		    c->fh->fetch(c->fctx, r->number, r->args[0].list, r->args[0].len) != 0) {
			c->aborted = true;
			return imap_fail(c, IMAP_ERR_ABORTED, "aborted while receiving FETCH data");
		}
		return IMAP_OK;
	}
	if (strcmp(name, "VANISHED") == 0) {
		bool earlier;
		const char *set;
		if (imap_vanished(r, &earlier, &set) < 0)
			return imap_fail(c, IMAP_ERR_PROTOCOL, "malformed VANISHED response");
		if (c->fh != NULL && c->fh->vanished != NULL &&
		    c->fh->vanished(c->fctx, earlier, set) != 0) {
			c->aborted = true;
			return imap_fail(c, IMAP_ERR_ABORTED, "aborted while receiving VANISHED");
		}
		return IMAP_OK;
	}
	if (strcmp(name, "CAPABILITY") == 0) {
		set_caps(c, r->args, r->nargs);
	} else if (strcmp(name, "ENABLED") == 0) {
		for (size_t i = 0; i < r->nargs; i++)
			if (r->args[i].type == IMAP_ARG_ATOM) {
				if (c->enabled.len == 0) /* " EXT1 EXT2 ": every word between spaces */
					buf_append(&c->enabled, " ", 1);
				buf_append_str(&c->enabled, r->args[i].str);
				buf_append(&c->enabled, " ", 1);
			}
	} else if (strcmp(name, "LIST") == 0) {
		return imap_handle_list(c, r);
	} else if (strcmp(name, "STATUS") == 0) {
		return imap_handle_status(c, r);
	} else if (strcmp(name, "SEARCH") == 0) {
		return handle_search(c, r, false);
	} else if (strcmp(name, "ESEARCH") == 0) {
		return handle_search(c, r, true);
	} else if (strcmp(name, "EXISTS") == 0 && r->has_number) {
		if (c->sel != NULL)
			c->sel->exists = r->number;
	}
	/* EXPUNGE, RECENT, FLAGS, ID, NAMESPACE: nothing to do here (yet the sync
	 * engine of the next layer re-lists what changed). */
	return IMAP_OK;
}

/* ---- reading ---------------------------------------------------------------------- */

/* Read one complete response. */
static enum imap_err
read_response(struct imap *c, const struct imap_response **r)
{
	for (;;) {
		const unsigned char *data;
		size_t len, used = 0;
		if (conn_peek(c->conn, &data, &len) != CONN_OK)
			return conn_failed(c);
		enum imap_parse_result pr = imap_parser_feed(c->parser, data, len, &used, r);
		conn_consume(c->conn, used);
		if (pr == IMAP_PARSE_OK) {
			trace_response(c, *r);
			return IMAP_OK;
		}
		if (pr == IMAP_PARSE_ERROR) {
			if (c->aborted)
				return imap_fail(c, IMAP_ERR_ABORTED, "aborted while receiving a body");
			return imap_fail(c, IMAP_ERR_PROTOCOL, "bad response: %s",
				    imap_parser_error(c->parser));
		}
	}
}

static struct cmd_slot *
find_slot(struct imap *c, unsigned id)
{
	for (unsigned i = 0; i < c->max_inflight; i++)
		if (c->slots[i].id == id)
			return &c->slots[i];
	return NULL;
}

static enum imap_err
handle_tagged(struct imap *c, const struct imap_response *r)
{
	handle_code(c, r);
	char *end;
	unsigned long id = r->tag[0] == 'A' ? strtoul(r->tag + 1, &end, 10) : 0;
	struct cmd_slot *s = id ? find_slot(c, (unsigned)id) : NULL;
	if (s == NULL || s->done || *end != '\0')
		return imap_fail(c, IMAP_ERR_PROTOCOL, "response with unknown tag %s", r->tag);
	s->done = true;
	switch (r->status) {
	case IMAP_STATUS_OK:
		s->result = IMAP_OK;
		break;
	case IMAP_STATUS_NO:
	case IMAP_STATUS_BAD:
		s->result = r->status == IMAP_STATUS_NO ? IMAP_ERR_NO : IMAP_ERR_BAD;
		snprintf(c->errmsg, sizeof(c->errmsg), "%s:%u: %s %s %s%s%s%s", c->host, c->port,
			 r->tag, r->status == IMAP_STATUS_NO ? "NO" : "BAD", r->code ? "[" : "",
			 r->code ? r->code : "", r->code ? "] " : "", r->text ? r->text : "");
		break;
	default:
		return imap_fail(c, IMAP_ERR_PROTOCOL, "tagged %s response",
			    r->status == IMAP_STATUS_BYE ? "BYE" : "PREAUTH");
	}
	return IMAP_OK;
}

/* Read and dispatch one response. Continuations are returned through *cont_r when the
 * caller expects one (else they are a protocol error). */
static enum imap_err
dispatch_one(struct imap *c, bool *cont_r)
{
	const struct imap_response *r;
	enum imap_err e = read_response(c, &r);
	if (e != IMAP_OK)
		return e;
	switch (r->kind) {
	case IMAP_RESP_TAGGED:
		return handle_tagged(c, r);
	case IMAP_RESP_UNTAGGED:
		return handle_untagged(c, r);
	case IMAP_RESP_CONTINUE:
		if (cont_r == NULL)
			return imap_fail(c, IMAP_ERR_PROTOCOL, "unexpected continuation request");
		*cont_r = true;
		return IMAP_OK;
	}
	return IMAP_OK;
}

static void
retire(struct imap *c, struct cmd_slot *s)
{
	c->results[s->id % RESULT_RING] = s->result;
	s->id = 0;
	s->done = false;
	c->inflight--;
}

static enum imap_err
wait_slot_free(struct imap *c)
{
	while (c->inflight >= c->max_inflight) {
		for (unsigned i = 0; i < c->max_inflight; i++)
			if (c->slots[i].id != 0 && c->slots[i].done) {
				retire(c, &c->slots[i]);
				return IMAP_OK;
			}
		enum imap_err e = dispatch_one(c, NULL);
		if (e != IMAP_OK)
			return e;
	}
	return IMAP_OK;
}

/* Start a command: allocate a tag, write "A<id> " + text (not flushed). `redacted` is what
 * the trace shows instead of the text (NULL: the text itself). */
static enum imap_err
start_cmd(struct imap *c, unsigned *id_r, const char *text, const char *redacted)
{
	if (conn_error(c->conn) != CONN_OK)
		return conn_failed(c);
	enum imap_err e = wait_slot_free(c);
	if (e != IMAP_OK)
		return e;
	unsigned id = ++c->next_id;
	if (id == 0)
		id = ++c->next_id;
	struct cmd_slot *s = find_slot(c, 0);
	s->id = id;
	s->done = false;
	s->result = IMAP_OK;
	c->inflight++;
	char tag[16];
	int tl = snprintf(tag, sizeof(tag), "A%u ", id);
	if (log_trace_enabled()) {
		char line[1100];
		snprintf(line, sizeof(line), "%s%s", tag, redacted ? redacted : text);
		log_trace(c->trace, '>', line, strlen(line));
	}
	if (conn_write(c->conn, tag, (size_t)tl) != CONN_OK ||
	    conn_write(c->conn, text, strlen(text)) != CONN_OK)
		return conn_failed(c);
	*id_r = id;
	return IMAP_OK;
}

enum imap_err
imap_send(struct imap *c, unsigned *id_r, const char *fmt, ...)
{
	char small[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(small) - 2)
		return imap_fail(c, IMAP_ERR_BAD, "command too long");
	memcpy(small + n, "\r\n", 3);
	enum imap_err e = start_cmd(c, id_r, small, NULL);
	/* Pipelining: the write buffer goes out when full, when we wait, or at a read. */
	return e;
}

enum imap_err
imap_wait(struct imap *c, unsigned id)
{
	struct cmd_slot *s = find_slot(c, id);
	if (s == NULL)
		return id <= c->next_id ? c->results[id % RESULT_RING] : IMAP_ERR_BAD;
	while (!s->done) {
		enum imap_err e = dispatch_one(c, NULL);
		if (e != IMAP_OK)
			return e;
	}
	enum imap_err result = s->result;
	retire(c, s);
	return result;
}

enum imap_err
imap_wait_all(struct imap *c)
{
	enum imap_err first = IMAP_OK;
	for (unsigned i = 0; i < c->max_inflight; i++) {
		if (c->slots[i].id == 0)
			continue;
		enum imap_err e = imap_wait(c, c->slots[i].id);
		if (e == IMAP_ERR_CONN || e == IMAP_ERR_PROTOCOL || e == IMAP_ERR_ABORTED ||
		    e == IMAP_ERR_BYE)
			return e;
		if (first == IMAP_OK)
			first = e;
	}
	return first;
}

unsigned
imap_inflight(const struct imap *c)
{
	return c->inflight;
}

/* Send one command and wait for it. */
enum imap_err
imap_simple(struct imap *c, const char *fmt, ...)
{
	char line[1100];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line) - 2)
		return imap_fail(c, IMAP_ERR_BAD, "command too long");
	memcpy(line + n, "\r\n", 3);
	unsigned id;
	enum imap_err e = start_cmd(c, &id, line, NULL);
	return e != IMAP_OK ? e : imap_wait(c, id);
}

/* ---- session ---------------------------------------------------------------------- */

static enum imap_err
read_greeting(struct imap *c, bool *preauth_r)
{
	const struct imap_response *r;
	enum imap_err e = read_response(c, &r);
	if (e != IMAP_OK)
		return e;
	if (r->kind != IMAP_RESP_UNTAGGED || r->status == IMAP_STATUS_NONE)
		return imap_fail(c, IMAP_ERR_PROTOCOL, "not an IMAP server greeting");
	if (r->status == IMAP_STATUS_BYE)
		return imap_fail(c, IMAP_ERR_BYE, "server refused the connection: %s",
			    r->text ? r->text : "");
	if (r->status != IMAP_STATUS_OK && r->status != IMAP_STATUS_PREAUTH)
		return imap_fail(c, IMAP_ERR_PROTOCOL, "not an IMAP server greeting");
	handle_code(c, r);
	*preauth_r = r->status == IMAP_STATUS_PREAUTH;
	return IMAP_OK;
}

static enum imap_err
refresh_caps(struct imap *c)
{
	buf_reset(&c->caps);
	enum imap_err e = imap_simple(c, "CAPABILITY");
	if (e == IMAP_OK && !imap_has_cap(c, "IMAP4rev1") && !imap_has_cap(c, "IMAP4rev2"))
		return imap_fail(c, IMAP_ERR_PROTOCOL, "server is not IMAP4rev1");
	return e;
}

enum imap_err
imap_connect(const struct imap_opts *opts, struct imap **imap_r, char *err, size_t errlen)
{
	*imap_r = NULL;
	struct imap *c = calloc(1, sizeof(*c));
	if (c == NULL) {
		snprintf(err, errlen, "out of memory");
		return IMAP_ERR_CONN;
	}
	snprintf(c->host, sizeof(c->host), "%s", opts->host);
	snprintf(c->trace, sizeof(c->trace), "%s", opts->trace ? opts->trace : "imap");
	c->port = opts->port;
	c->max_inflight = opts->max_inflight ? opts->max_inflight : 32;
	buf_init(&c->caps, 16 * 1024);
	buf_init(&c->enabled, 4 * 1024);
	c->slots = calloc(c->max_inflight, sizeof(*c->slots));
	c->parser = imap_parser_new(NULL, &parser_cb, c);
	enum imap_err e = IMAP_ERR_CONN;
	if (c->slots == NULL || c->parser == NULL) {
		snprintf(c->errmsg, sizeof(c->errmsg), "out of memory");
		goto fail;
	}
	struct conn_opts co = {
		.host = opts->host,
		.port = opts->port,
		.implicit_tls = opts->implicit_tls,
		.tls = opts->tls,
		.timeout_ms = opts->timeout_ms,
		.trace = c->trace,
	};
	if (conn_open(&co, &c->conn, c->errmsg, sizeof(c->errmsg)) != CONN_OK)
		goto fail;
	imap_set_state(c, ST_GREETING);
	bool preauth = false;
	e = read_greeting(c, &preauth);
	if (e != IMAP_OK)
		goto fail;
	bool tls_needed = !opts->implicit_tls && !opts->plaintext;
	if (preauth && tls_needed) {
		e = imap_fail(c, IMAP_ERR_NOTLS,
			 "server greeted with PREAUTH before TLS; refusing a plaintext session");
		goto fail;
	}
	imap_set_state(c, preauth ? ST_AUTHENTICATED : ST_NOT_AUTHENTICATED);
	if (c->caps.len == 0 && (e = refresh_caps(c)) != IMAP_OK)
		goto fail;
	if (tls_needed) {
		if (!imap_has_cap(c, "STARTTLS")) {
			e = imap_fail(c, IMAP_ERR_NOTLS,
				 "server does not offer STARTTLS; refusing to log in in plaintext "
				 "(use imaps://, or tls = off to allow plaintext)");
			goto fail;
		}
		e = imap_simple(c, "STARTTLS");
		if (e != IMAP_OK)
			goto fail;
		if (conn_starttls(c->conn) != CONN_OK) {
			e = conn_failed(c);
			goto fail;
		}
		imap_parser_reset(c->parser);
		/* RFC 3501 §6.2.1: capabilities learned before TLS must be discarded. */
		if ((e = refresh_caps(c)) != IMAP_OK)
			goto fail;
	} else if (opts->plaintext && !opts->implicit_tls) {
		log_warn("%s: %s:%u: plaintext connection (tls = off): the password and all mail "
			 "cross the network unencrypted",
			 c->trace, c->host, c->port);
	}
	*imap_r = c;
	return IMAP_OK;
fail:
	snprintf(err, errlen, "%s", c->errmsg);
	c->state = ST_LOGOUT;
	imap_close(&c);
	return e;
}

void
imap_close(struct imap **cp)
{
	struct imap *c = *cp;
	if (c == NULL)
		return;
	if (c->conn != NULL && conn_error(c->conn) == CONN_OK && !c->bye &&
	    c->state != ST_LOGOUT) {
		conn_set_timeout(c->conn, 2000);
		/* Drain what is in flight quickly, then say goodbye. */
		if (imap_wait_all(c) != IMAP_ERR_CONN) {
			imap_set_state(c, ST_LOGOUT);
			(void)imap_simple(c, "LOGOUT");
		}
	}
	conn_close(&c->conn);
	imap_parser_free(&c->parser);
	buf_free(&c->caps);
	buf_free(&c->enabled);
	free(c->slots);
	free(c->cu_src);
	free(c->cu_dst);
	free(c);
	*cp = NULL;
}

/* Wait for a "+" continuation (or the command's completion, which is a failure). */
static enum imap_err
await_continuation(struct imap *c, unsigned id)
{
	if (conn_flush(c->conn) != CONN_OK)
		return conn_failed(c);
	struct cmd_slot *s = find_slot(c, id);
	bool cont = false;
	while (!cont && !s->done) {
		enum imap_err e = dispatch_one(c, &cont);
		if (e != IMAP_OK)
			return e;
	}
	if (s->done) {
		enum imap_err r = s->result;
		retire(c, s);
		if (r == IMAP_OK)
			return imap_fail(c, IMAP_ERR_PROTOCOL,
				    "command completed without the continuation it needs");
		return r;
	}
	return IMAP_OK;
}

static bool
quotable(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p == '\r' || *p == '\n' || *p >= 0x80)
			return false;
	return strlen(s) < 900;
}

char *
imap_quote(const char *s, char *out, size_t outlen)
{
	size_t o = 0;
	if (outlen < 3)
		return NULL;
	out[o++] = '"';
	for (const char *p = s; *p; p++) {
		if (*p == '\r' || *p == '\n')
			return NULL;
		if (*p == '"' || *p == '\\') {
			if (o + 1 >= outlen)
				return NULL;
			out[o++] = '\\';
		}
		if (o + 2 >= outlen)
			return NULL;
		out[o++] = *p;
	}
	out[o++] = '"';
	out[o] = '\0';
	return out;
}

static enum imap_err
login_auth_plain(struct imap *c, const char *user, const char *password)
{
	char *ir = sasl_plain(user, password);
	if (ir == NULL)
		return imap_fail(c, IMAP_ERR_AUTH, "user name or password too long");
	unsigned id;
	enum imap_err e;
	if (imap_has_cap(c, "SASL-IR")) {
		struct buf line;
		buf_init(&line, 16 * 1024);
		if (buf_printf(&line, "AUTHENTICATE PLAIN %s\r\n", ir) < 0) {
			buf_free(&line);
			sasl_free_secret(&ir);
			return imap_fail(c, IMAP_ERR_AUTH, "user name or password too long");
		}
		e = start_cmd(c, &id, line.data, "AUTHENTICATE PLAIN <redacted>");
		tls_cleanse(line.data, line.len);
		buf_free(&line);
	} else {
		e = start_cmd(c, &id, "AUTHENTICATE PLAIN\r\n", NULL);
		if (e == IMAP_OK)
			e = await_continuation(c, id);
		if (e == IMAP_OK) {
			log_trace(c->trace, '>', "<redacted>", 10);
			if (conn_write(c->conn, ir, strlen(ir)) != CONN_OK ||
			    conn_write(c->conn, "\r\n", 2) != CONN_OK)
				e = conn_failed(c);
		}
	}
	sasl_free_secret(&ir);
	if (e != IMAP_OK)
		return e;
	return imap_wait(c, id);
}

static enum imap_err
login_plain_login(struct imap *c, const char *user, const char *password)
{
	if (imap_has_cap(c, "LOGINDISABLED"))
		return imap_fail(c, IMAP_ERR_AUTH, "server disabled LOGIN and offers no AUTH=PLAIN");
	char quser[1024];
	if (!quotable(user) || imap_quote(user, quser, sizeof(quser)) == NULL)
		return imap_fail(c, IMAP_ERR_AUTH, "user name cannot be sent with LOGIN");
	unsigned id;
	enum imap_err e;
	if (quotable(password)) {
		char qpw[2048];
		char line[3200];
		if (imap_quote(password, qpw, sizeof(qpw)) == NULL)
			return imap_fail(c, IMAP_ERR_AUTH, "password too long");
		snprintf(line, sizeof(line), "LOGIN %s %s\r\n", quser, qpw);
		e = start_cmd(c, &id, line, "LOGIN <redacted>");
		tls_cleanse(qpw, sizeof(qpw));
		tls_cleanse(line, sizeof(line));
	} else {
		/* 8-bit password: a synchronizing literal. */
		char line[1200];
		size_t pl = strlen(password);
		snprintf(line, sizeof(line), "LOGIN %s {%zu}\r\n", quser, pl);
		e = start_cmd(c, &id, line, "LOGIN <redacted>");
		if (e == IMAP_OK)
			e = await_continuation(c, id);
		if (e == IMAP_OK && (conn_write(c->conn, password, pl) != CONN_OK ||
				     conn_write(c->conn, "\r\n", 2) != CONN_OK))
			e = conn_failed(c);
	}
	if (e != IMAP_OK)
		return e;
	return imap_wait(c, id);
}

enum imap_err
imap_login(struct imap *c, const char *user, const char *password)
{
	if (c->state != ST_NOT_AUTHENTICATED)
		return c->state == ST_AUTHENTICATED ? IMAP_OK : IMAP_ERR_PROTOCOL;
	enum imap_err e = imap_has_cap(c, "AUTH=PLAIN") ? login_auth_plain(c, user, password)
							 : login_plain_login(c, user, password);
	if (e == IMAP_ERR_NO || e == IMAP_ERR_BAD) {
		/* Keep the server's words (they never contain the password). */
		char msg[600];
		snprintf(msg, sizeof(msg), "%s", c->errmsg);
		snprintf(c->errmsg, sizeof(c->errmsg), "login as %s refused: %s", user, msg);
		return IMAP_ERR_AUTH;
	}
	if (e != IMAP_OK)
		return e;
	imap_set_state(c, ST_AUTHENTICATED);
	/* Servers may change capabilities after login; ask unless the OK carried them. */
	if (!imap_has_cap(c, "IMAP4rev1") || imap_has_cap(c, "AUTH=PLAIN") ||
	    imap_has_cap(c, "STARTTLS") || imap_has_cap(c, "LOGINDISABLED"))
		return refresh_caps(c);
	return IMAP_OK;
}

enum imap_err
imap_enable(struct imap *c, const char *exts)
{
	if (!imap_has_cap(c, "ENABLE"))
		return IMAP_OK;
	return imap_simple(c, "ENABLE %s", exts);
}

/* A mailbox name as an IMAP astring: quoted (names are 7-bit modified UTF-7). */
enum imap_err
imap_quote_mailbox(struct imap *c, const char *raw, char *out, size_t outlen)
{
	if (!quotable(raw) || imap_quote(raw, out, outlen) == NULL)
		return imap_fail(c, IMAP_ERR_BAD, "mailbox name cannot be quoted");
	return IMAP_OK;
}

enum imap_err
imap_uid_search(struct imap *c, const char *criteria, uint32_t **uids_r, size_t *n_r)
{
	struct search_collect sc = { 0 };
	c->search = &sc;
	enum imap_err e;
	if (imap_has_cap(c, "ESEARCH"))
		e = imap_simple(c, "UID SEARCH RETURN (ALL) %s", criteria);
	else
		e = imap_simple(c, "UID SEARCH %s", criteria);
	c->search = NULL;
	if (e == IMAP_OK && sc.overflow)
		e = imap_fail(c, IMAP_ERR_PROTOCOL, "search result too large");
	if (e != IMAP_OK) {
		free(sc.uids);
		return e;
	}
	if (sc.n > 1)
		qsort(sc.uids, sc.n, sizeof(uint32_t), cmp_u32);
	*uids_r = sc.uids;
	*n_r = sc.n;
	return IMAP_OK;
}

enum imap_err
imap_append(struct imap *c, const char *raw, const char *flags, uint64_t size, imap_reader rd,
	    void *ctx, uint32_t *uid_r)
{
	return imap_append_at(c, raw, flags, 0, size, rd, ctx, uid_r);
}

enum imap_err
imap_append_at(struct imap *c, const char *raw, const char *flags, int64_t date, uint64_t size,
	       imap_reader rd, void *ctx, uint32_t *uid_r)
{
	char qname[1024];
	enum imap_err e = imap_quote_mailbox(c, raw, qname, sizeof(qname));
	if (e != IMAP_OK)
		return e;
	/* LITERAL+ (RFC 7888): no round trip for the "+"; LITERAL- allows it up to 4096 bytes. */
	bool nonsync = imap_has_cap(c, "LITERAL+") ||
		       (imap_has_cap(c, "LITERAL-") && size <= 4096);
	/* date-time = DQUOTE date-day-fixed "-" date-month "-" date-year SP time SP zone DQUOTE */
	char when[48] = "";
	if (date > 0) {
		static const char *const mon[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
						  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
		time_t tt = (time_t)date;
		struct tm tm;
		if (gmtime_r(&tt, &tm) != NULL && tm.tm_year + 1900 < 10000)
			snprintf(when, sizeof(when), " \"%2d-%s-%04d %02d:%02d:%02d +0000\"",
				 tm.tm_mday, mon[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour,
				 tm.tm_min, tm.tm_sec);
	}
	char line[2300];
	int n = snprintf(line, sizeof(line), "APPEND %s%s%s%s%s {%" PRIu64 "%s}\r\n", qname,
			 flags && *flags ? " (" : "", flags && *flags ? flags : "",
			 flags && *flags ? ")" : "", when, size, nonsync ? "+" : "");
	if (n < 0 || (size_t)n >= sizeof(line))
		return imap_fail(c, IMAP_ERR_BAD, "command too long");
	unsigned id;
	c->appenduid = 0;
	e = start_cmd(c, &id, line, NULL);
	if (e == IMAP_OK && !nonsync)
		e = await_continuation(c, id);
	if (e != IMAP_OK)
		return e;
	char chunk[64 * 1024];
	uint64_t left = size;
	while (left > 0) {
		size_t want = left < sizeof(chunk) ? (size_t)left : sizeof(chunk);
		ssize_t got = rd(ctx, chunk, want);
		if (got <= 0) {
			/* The literal cannot be taken back: the session is unusable. */
			conn_fail(c->conn, CONN_ERR_PROTOCOL, "message source ended %" PRIu64
				  " bytes early", left);
			c->aborted = true;
			return imap_fail(c, IMAP_ERR_ABORTED, "%s:%u: APPEND: message source failed",
				    c->host, c->port);
		}
		if (conn_write(c->conn, chunk, (size_t)got) != CONN_OK)
			return conn_failed(c);
		left -= (uint64_t)got;
	}
	if (conn_write(c->conn, "\r\n", 2) != CONN_OK)
		return conn_failed(c);
	if (conn_flush(c->conn) != CONN_OK)
		return conn_failed(c);
	e = imap_wait(c, id);
	if (uid_r != NULL)
		*uid_r = e == IMAP_OK ? c->appenduid : 0;
	return e;
}

uint32_t
imap_copyuid(struct imap *c, bool reset)
{
	uint32_t u = c->copyuid;
	if (reset) {
		c->copyuid = 0;
		c->cu_n = 0;
	}
	return u;
}

uint32_t
imap_copyuid_of(struct imap *c, uint32_t src)
{
	for (size_t i = 0; i < c->cu_n; i++)
		if (c->cu_src[i] == src)
			return c->cu_dst[i];
	return 0;
}

enum imap_err
imap_noop(struct imap *c)
{
	return imap_simple(c, "NOOP");
}

unsigned
imap_events(struct imap *c, bool reset)
{
	unsigned n = c->events;
	if (reset)
		c->events = 0;
	return n;
}

/* ---- IDLE (RFC 2177) ---------------------------------------------------------------- */

enum imap_err
imap_idle_begin(struct imap *c)
{
	if (c->idle_id != 0 || c->inflight != 0)
		return imap_fail(c, IMAP_ERR_BAD, "IDLE needs a client with no command in progress");
	unsigned id;
	enum imap_err e = start_cmd(c, &id, "IDLE\r\n", NULL);
	if (e == IMAP_OK)
		e = await_continuation(c, id);
	if (e == IMAP_OK)
		c->idle_id = id;
	return e;
}

bool
imap_idling(const struct imap *c)
{
	return c->idle_id != 0;
}

enum imap_err
imap_idle_wait(struct imap *c, int timeout_ms)
{
	if (c->idle_id == 0)
		return imap_fail(c, IMAP_ERR_BAD, "not in IDLE");
	if (!conn_has_buffered(c->conn)) {
		int r = conn_wait_readable(c->conn, timeout_ms);
		if (r < 0)
			return conn_failed(c);
		if (r == 0)
			return IMAP_OK;
	}
	struct cmd_slot *s = find_slot(c, c->idle_id);
	do {
		enum imap_err e = dispatch_one(c, NULL);
		if (e != IMAP_OK)
			return e;
	} while (!s->done && conn_has_buffered(c->conn));
	if (s->done) {
		/* The server ended the IDLE itself: the session goes on without it. */
		enum imap_err result = s->result;
		retire(c, s);
		c->idle_id = 0;
		return result;
	}
	return IMAP_OK;
}

enum imap_err
imap_idle_end(struct imap *c)
{
	unsigned id = c->idle_id;
	if (id == 0)
		return IMAP_OK;
	c->idle_id = 0;
	if (log_trace_enabled())
		log_trace(c->trace, '>', "DONE", 4);
	if (conn_write(c->conn, "DONE\r\n", 6) != CONN_OK || conn_flush(c->conn) != CONN_OK)
		return conn_failed(c);
	return imap_wait(c, id);
}

void
imap_set_fetch_handler(struct imap *c, const struct imap_fetch_handler *h, void *ctx)
{
	c->fh = h;
	c->fctx = ctx;
}

const char *
imap_fetch_attr_now(const struct imap *c, const char *name)
{
	return imap_parser_fetch_attr(c->parser, name);
}

const struct imap_arg *
imap_fetch_find(const struct imap_arg *attrs, size_t nattrs, const char *name)
{
	for (size_t i = 0; i + 1 < nattrs; i += 2)
		if (imap_arg_atom_is(&attrs[i], name))
			return &attrs[i + 1];
	return NULL;
}

const char *
imap_errmsg(const struct imap *c)
{
	return c->errmsg;
}

struct conn *
imap_conn(struct imap *c)
{
	return c->conn;
}
