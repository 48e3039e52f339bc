/* fuzz-pop3-reply.c - libFuzzer target for net/pop3-reply.c.
 *
 * Input: byte 0 chooses how the rest is split (0: not at all, else chunks of 1..64 bytes
 * with a pattern), byte 1 a body cap (0: none, else byte * 37); the rest is what the server
 * sent. It is read as POP3 does: a status line, and after +OK a multi-line body, again and
 * again. It is parsed twice, whole and split; both must give the same statuses, the same
 * decoded bytes and the same outcome. Each status is checked against the header's promises,
 * the decoder against its output bound and cap, and every body line goes through the
 * UIDL/LIST/CAPA readers. The replies are also matched to a window of pipelined commands
 * (net/pop3-pipe, its limits from byte 0 and the cap), refilled as each reply completes
 * the way net/pop3 does: every reply must find its own command in flight, in order. A
 * violation calls abort(). Not checked: the grammar (unit tests).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/pop3-pipe.h"
#include "net/pop3-reply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                                                   \
	do {                                                                                       \
		if (!(x))                                                                          \
			abort();                                                                   \
	} while (0)

struct trace {
	uint64_t hash;
	size_t units;
	enum pop3_parse last;
};

static void
mix(struct trace *t, const void *p, size_t n)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++) {
		t->hash ^= b[i];
		t->hash *= 0x100000001b3ULL;
	}
}

static void
check_status(struct trace *t, const struct pop3_status *s)
{
	CHECK(s->kind == POP3_OK || s->kind == POP3_ERR || s->kind == POP3_CONT);
	size_t cl = strnlen(s->code, sizeof(s->code));
	CHECK(cl < sizeof(s->code));
	for (size_t i = 0; i < cl; i++)
		CHECK(s->code[i] > 0x20 && s->code[i] < 0x7f && s->code[i] != ']');
	size_t tl = strnlen(s->text, sizeof(s->text));
	CHECK(tl < sizeof(s->text));
	for (size_t i = 0; i < tl; i++) {
		unsigned char c = (unsigned char)s->text[i];
		CHECK(c >= 0x20 || c == '\t');
		CHECK(c != 0x7f);
	}
	mix(t, &s->kind, sizeof(s->kind));
	mix(t, s->code, cl + 1);
	mix(t, s->text, tl + 1);
}

/* Run the line readers over the decoded body (their results go into the hash). */
static void
check_lines(struct trace *t, const char *b, size_t n)
{
	size_t start = 0;
	for (size_t i = 0; i <= n; i++) {
		if (i < n && b[i] != '\n')
			continue;
		size_t len = i - start;
		if (len > 0 && b[start + len - 1] == '\r')
			len--;
		uint32_t msg = 0;
		uint64_t sz = 0;
		char uid[71];
		bool u = pop3_uidl_line(b + start, len, &msg, uid, sizeof(uid));
		if (u) {
			CHECK(msg > 0 && strlen(uid) >= 1 && strlen(uid) <= 70);
			mix(t, uid, strlen(uid));
		}
		bool l = pop3_list_line(b + start, len, &msg, &sz);
		if (l)
			CHECK(msg > 0);
		mix(t, &u, sizeof(u));
		mix(t, &l, sizeof(l));
		start = i + 1;
	}
}

/* A reply is complete: it belongs to the oldest command in flight. */
static void
answer(struct pop3_pipe *pp, uint32_t *answered)
{
	struct pop3_pipe_slot s;
	CHECK(pop3_pipe_front(pp, &s));
	CHECK(s.msg == *answered + 1);
	CHECK(s.cmd == (s.msg % 2 ? POP3_PIPE_TOP : POP3_PIPE_RETR));
	CHECK(pop3_pipe_pop(pp));
	(*answered)++;
}

static void
run(struct trace *t, const char *d, size_t n, unsigned split, uint64_t cap)
{
	static struct pop3_status_parser p;
	static struct pop3_status st;
	static char body[1 << 16];
	static char out[64 + 1];
	struct pop3_body b;
	size_t bodylen = 0;
	bool in_body = false;
	char err[200];
	size_t pos = 0, i = 0;
	struct pop3_pipe pp;
	uint32_t sent = 0, answered = 0;
	pop3_pipe_init(&pp, 1 + split % 70, cap * 3);
	pop3_status_parser_init(&p);
	t->last = POP3_PARSE_MORE;
	while (pos < n && t->last != POP3_PARSE_ERROR) {
		size_t chunk = n - pos;
		if (split != 0)
			chunk = 1 + (split * (i + 1) * 7) % 64;
		if (chunk > n - pos)
			chunk = n - pos;
		const char *c = d + pos;
		size_t left = chunk;
		while (left > 0 && t->last != POP3_PARSE_ERROR) {
			size_t used = SIZE_MAX;
			/* Keep the window full; each command expects a made-up reply size. */
			while (pop3_pipe_room(&pp, (sent * 131u) % 5000)) {
				CHECK(pop3_pipe_push(&pp, sent % 2 ? POP3_PIPE_RETR : POP3_PIPE_TOP,
						     sent + 1, (sent * 131u) % 5000));
				sent++;
			}
			CHECK(pop3_pipe_count(&pp) >= 1 && pop3_pipe_count(&pp) <= POP3_PIPE_MAX);
			CHECK(sent - answered == pop3_pipe_count(&pp));
			if (!in_body) {
				t->last = pop3_status_parse(&p, c, left, &used, &st, err, sizeof(err));
				CHECK(used <= left);
				if (t->last == POP3_PARSE_ERROR) {
					CHECK(err[0] != '\0' && strlen(err) < sizeof(err));
					mix(t, err, strlen(err));
					break;
				}
				if (t->last == POP3_PARSE_DONE) {
					CHECK(used > 0);
					check_status(t, &st);
					t->units++;
					if (st.kind != POP3_OK)
						answer(&pp, &answered);
					if (st.kind == POP3_OK) {
						in_body = true;
						bodylen = 0;
						pop3_body_init(&b, cap);
					}
				}
			} else {
				/* The decoder may be fed at most 64 bytes here (out's size - 1). */
				size_t feed = left < 64 ? left : 64;
				size_t outlen = SIZE_MAX;
				t->last = pop3_body_decode(&b, c, feed, &used, out, &outlen);
				CHECK(used <= feed && outlen <= feed + 1);
				CHECK(cap == 0 || b.total <= cap);
				if (bodylen + outlen <= sizeof(body)) {
					memcpy(body + bodylen, out, outlen);
					bodylen += outlen;
				}
				mix(t, out, outlen);
				if (t->last == POP3_PARSE_DONE) {
					t->units++;
					answer(&pp, &answered);
					check_lines(t, body, bodylen);
					in_body = false;
				} else if (t->last == POP3_PARSE_MORE) {
					CHECK(used == feed);
				}
			}
			c += used;
			left -= used;
		}
		pos += chunk;
		i++;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct trace whole = {0}, split = {0};
	if (size < 2)
		return 0;
	uint64_t cap = (uint64_t)data[1] * 37;
	run(&whole, (const char *)data + 2, size - 2, 0, cap);
	run(&split, (const char *)data + 2, size - 2, data[0], cap);
	CHECK(whole.hash == split.hash);
	CHECK(whole.last == split.last);
	CHECK(whole.units == split.units);
	return 0;
}
