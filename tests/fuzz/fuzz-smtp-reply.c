/* fuzz-smtp-reply.c - libFuzzer target for net/smtp-reply.c.
 *
 * Input: byte 0 chooses how the rest is split (0: not at all, else chunks of 1..64 bytes
 * with a pattern); the rest is what the server sent. It is parsed twice, whole and split,
 * and both parses must give the same replies and the same outcome. Every reply is checked
 * against the header's promises (code range, enhanced code class, NUL-terminated bounded
 * text without control bytes, line count) and run through the EHLO reader. A violation
 * calls abort(). Not checked here: whether the grammar is right (the unit tests do that).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/smtp-reply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                                                   \
	do {                                                                                       \
		if (!(x))                                                                          \
			abort();                                                                   \
	} while (0)

struct trace {
	uint64_t hash;
	size_t replies;
	enum smtp_parse last;
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
check_reply(struct trace *t, const struct smtp_reply *r)
{
	CHECK(r->code >= 200 && r->code <= 559);
	CHECK(r->nlines >= 1 && r->nlines <= SMTP_REPLY_LINES_MAX);
	size_t el = strnlen(r->enhanced, sizeof(r->enhanced));
	CHECK(el < sizeof(r->enhanced));
	if (el > 0)
		CHECK(r->enhanced[0] == '0' + r->code / 100 && r->enhanced[1] == '.');
	size_t tl = strnlen(r->text, sizeof(r->text));
	CHECK(tl < sizeof(r->text));
	size_t newlines = 0;
	for (size_t i = 0; i < tl; i++) {
		unsigned char c = (unsigned char)r->text[i];
		CHECK(c >= 0x20 || c == '\n' || c == '\t');
		CHECK(c != 0x7f);
		newlines += c == '\n';
	}
	CHECK(newlines < r->nlines);
	struct smtp_ehlo e;
	smtp_ehlo_parse(r, &e);
	CHECK(!e.pipelining || smtp_ehlo_has(r, "PIPELINING"));
	CHECK(!e.auth || smtp_ehlo_has(r, "AUTH"));
	CHECK(e.auth || e.auth_mechs == 0);
	CHECK(e.size_offered || e.size == 0);
	mix(t, &r->code, sizeof(r->code));
	mix(t, &r->nlines, sizeof(r->nlines));
	mix(t, r->enhanced, el + 1);
	mix(t, r->text, tl + 1);
	mix(t, &e, sizeof(e));
}

static void
run(struct trace *t, const char *d, size_t n, unsigned split)
{
	static struct smtp_reply_parser p;
	static struct smtp_reply r;
	char err[200];
	size_t pos = 0, i = 0;
	smtp_reply_parser_init(&p);
	t->last = SMTP_PARSE_MORE;
	while (pos < n && t->last != SMTP_PARSE_ERROR) {
		size_t chunk = n - pos;
		if (split != 0) {
			chunk = 1 + (split * (i + 1) * 7) % 64;
			if (chunk > n - pos)
				chunk = n - pos;
		}
		const char *c = d + pos;
		size_t left = chunk;
		while (left > 0) {
			size_t used = SIZE_MAX;
			t->last = smtp_reply_parse(&p, c, left, &used, &r, err, sizeof(err));
			CHECK(used <= left);
			if (t->last == SMTP_PARSE_ERROR) {
				CHECK(err[0] != '\0' && strlen(err) < sizeof(err));
				mix(t, err, strlen(err));
				CHECK(smtp_reply_parse(&p, c, left, &used, &r, NULL, 0) ==
				      SMTP_PARSE_ERROR);
				CHECK(used == 0);
				break;
			}
			if (t->last == SMTP_PARSE_DONE) {
				CHECK(used > 0);
				check_reply(t, &r);
				t->replies++;
			} else {
				CHECK(used == left);
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
	if (size < 1)
		return 0;
	run(&whole, (const char *)data + 1, size - 1, 0);
	run(&split, (const char *)data + 1, size - 1, data[0]);
	CHECK(whole.hash == split.hash);
	CHECK(whole.last == split.last);
	CHECK(whole.replies == split.replies);
	return 0;
}
