/* fuzz-imap-parser.c - libFuzzer target for net/imap-parser.c.
 *
 * Input: byte 0 chooses how the rest is split (0: not at all, else chunks of 1..64 bytes
 * with a pattern), byte 1 chooses the limits and whether a callback aborts; the rest is
 * what the server sent. The input is parsed twice, whole and split, and both parses must
 * give the same responses, the same streamed bytes and the same outcome. Every response
 * is checked against the header's promises (types, NUL-terminated strings, limits, list
 * depth); every streamed literal must deliver exactly its announced size in non-empty
 * chunks. A violation calls abort(). Not checked here: whether the grammar is right (the
 * unit tests do that).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/imap-parser.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct trace {
	struct imap_parser_limits limits;
	unsigned abort_at; /* abort in the nth literal_begin (0: never) */
	uint64_t hash;     /* of every response, event and streamed byte, in order */
	bool in_literal;
	uint64_t lit_size, lit_got;
	size_t begins, ends, streamed_args;
	enum imap_parse_result last;
	size_t responses;
};

#define CHECK(x)                                                                                   \
	do {                                                                                       \
		if (!(x))                                                                          \
			abort();                                                                   \
	} while (0)

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
mix_u64(struct trace *t, uint64_t v)
{
	mix(t, &v, sizeof(v));
}

static void
mix_str(struct trace *t, const char *s)
{
	if (s == NULL) {
		mix_u64(t, 0xfeed);
		return;
	}
	mix(t, s, strlen(s) + 1);
}

static int
cb_begin(void *ctx, uint32_t seq, const char *section, uint64_t size)
{
	struct trace *t = ctx;

	CHECK(!t->in_literal);
	CHECK(section != NULL && section[0] != '\0');
	CHECK(size <= t->limits.max_body_literal);
	t->in_literal = true;
	t->lit_size = size;
	t->lit_got = 0;
	t->begins++;
	mix_u64(t, 'B');
	mix_u64(t, seq);
	mix_str(t, section);
	mix_u64(t, size);
	return t->begins == t->abort_at ? -1 : 0;
}

static int
cb_data(void *ctx, const unsigned char *data, size_t len)
{
	struct trace *t = ctx;

	CHECK(t->in_literal);
	CHECK(len > 0);
	CHECK(len <= t->lit_size - t->lit_got);
	t->lit_got += len;
	mix(t, data, len); /* chunk boundaries differ between runs: hash bytes only */
	return 0;
}

static int
cb_end(void *ctx)
{
	struct trace *t = ctx;

	CHECK(t->in_literal);
	CHECK(t->lit_got == t->lit_size);
	t->in_literal = false;
	t->ends++;
	mix_u64(t, 'E');
	return 0;
}

/* Every argument as the header describes it; returns the string bytes it holds. */
static size_t
check_args(struct trace *t, const struct imap_arg *a, size_t n, unsigned depth)
{
	size_t bytes = 0;

	CHECK(n == 0 || a != NULL);
	CHECK(depth <= t->limits.max_depth);
	mix_u64(t, n);
	for (size_t i = 0; i < n; i++) {
		mix_u64(t, a[i].type);
		switch (a[i].type) {
		case IMAP_ARG_ATOM:
		case IMAP_ARG_STRING:
			CHECK(a[i].str != NULL);
			CHECK(strlen(a[i].str) == a[i].len);
			CHECK(a[i].type != IMAP_ARG_ATOM || a[i].len > 0);
			CHECK(imap_arg_is_string(&a[i]) && imap_arg_str(&a[i]) == a[i].str);
			mix(t, a[i].str, a[i].len);
			bytes += a[i].len;
			if (a[i].type == IMAP_ARG_ATOM) {
				uint64_t v;
				CHECK(!imap_arg_atom_is(&a[i], "NIL"));
				if (imap_arg_u64(&a[i], &v) == 0)
					CHECK(v <= INT64_MAX);
			}
			break;
		case IMAP_ARG_LITERAL:
			CHECK(a[i].str != NULL && a[i].str[a[i].len] == '\0');
			CHECK(a[i].len <= t->limits.max_literal);
			mix(t, a[i].str, a[i].len);
			bytes += a[i].len;
			break;
		case IMAP_ARG_STREAMED:
			CHECK(a[i].str == NULL);
			CHECK(a[i].size <= t->limits.max_body_literal);
			CHECK(imap_arg_str(&a[i]) == NULL);
			t->streamed_args++;
			mix_u64(t, a[i].size);
			break;
		case IMAP_ARG_NIL:
			CHECK(imap_arg_str(&a[i]) == NULL);
			break;
		case IMAP_ARG_LIST:
			CHECK(depth < t->limits.max_depth);
			bytes += check_args(t, a[i].list, a[i].len, depth + 1);
			break;
		default:
			abort();
		}
	}
	return bytes;
}

static void
check_response(struct trace *t, const struct imap_response *r)
{
	size_t bytes = 0;

	mix_u64(t, 'R');
	mix_u64(t, r->kind);
	mix_u64(t, r->status);
	CHECK(r->status <= IMAP_STATUS_PREAUTH);
	switch (r->kind) {
	case IMAP_RESP_TAGGED:
		CHECK(r->tag != NULL && r->tag[0] != '\0');
		CHECK(r->status == IMAP_STATUS_OK || r->status == IMAP_STATUS_NO ||
		      r->status == IMAP_STATUS_BAD);
		break;
	case IMAP_RESP_UNTAGGED:
		CHECK(r->tag == NULL);
		break;
	case IMAP_RESP_CONTINUE:
		CHECK(r->tag == NULL && r->status == IMAP_STATUS_NONE);
		break;
	default:
		abort();
	}
	bool data = r->kind == IMAP_RESP_UNTAGGED && r->status == IMAP_STATUS_NONE;
	CHECK(data == (r->name != NULL));
	CHECK(data == (r->text == NULL));
	CHECK(!r->has_number || data);
	CHECK(r->code != NULL || r->code_nargs == 0);
	CHECK(r->name != NULL || r->nargs == 0);
	mix_str(t, r->tag);
	mix_str(t, r->code);
	mix_str(t, r->text);
	mix_str(t, r->name);
	mix_u64(t, r->has_number ? r->number : UINT64_MAX);
	t->streamed_args = 0;
	bytes += check_args(t, r->code_args, r->code_nargs, 0);
	bytes += check_args(t, r->args, r->nargs, 0);
	/* each streamed literal of this response has been announced and finished */
	CHECK(t->streamed_args == t->begins && t->begins == t->ends);
	CHECK(!t->in_literal);
	t->begins = t->ends = 0;
	const char *strs[] = {r->tag, r->code, r->text, r->name};
	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
		bytes += strs[i] != NULL ? strlen(strs[i]) : 0;
	CHECK(bytes <= t->limits.max_line);
	/* VANISHED: a set that is accepted walks to its end in ascending ranges. */
	bool earlier;
	const char *set;
	if (r->name != NULL && imap_vanished(r, &earlier, &set) == 0) {
		CHECK(set != NULL && set[0] != '\0');
		const char *p = set;
		uint32_t lo, hi;
		int k;
		while ((k = imap_uidset_next(&p, &lo, &hi)) == 1)
			CHECK(lo >= 1 && lo <= hi);
		CHECK(k == 0 && *p == '\0');
		mix_u64(t, earlier);
	}
}

static void
feed(struct trace *t, struct imap_parser *p, const unsigned char *d, size_t n)
{
	while (t->last != IMAP_PARSE_ERROR) {
		const struct imap_response *r = NULL;
		size_t used = SIZE_MAX;

		t->last = imap_parser_feed(p, d, n, &used, &r);
		CHECK(used <= n);
		switch (t->last) {
		case IMAP_PARSE_OK:
			CHECK(r != NULL && used > 0);
			check_response(t, r);
			t->responses++;
			d += used;
			n -= used;
			if (n == 0)
				return;
			break;
		case IMAP_PARSE_NEED_MORE:
			CHECK(r == NULL && used == n);
			return;
		case IMAP_PARSE_ERROR:
			CHECK(r == NULL);
			CHECK(imap_parser_error(p)[0] != '\0');
			mix_str(t, imap_parser_error(p));
			/* the error sticks */
			CHECK(imap_parser_feed(p, d, n, &used, &r) == IMAP_PARSE_ERROR);
			CHECK(used == 0 && r == NULL);
			return;
		default:
			abort();
		}
	}
}

static void
run(struct trace *t, const unsigned char *d, size_t n, unsigned split)
{
	static const struct imap_parser_callbacks cb = {cb_begin, cb_data, cb_end};
	struct imap_parser *p = imap_parser_new(&t->limits, &cb, t);
	size_t pos = 0, i = 0;

	CHECK(p != NULL);
	t->last = IMAP_PARSE_NEED_MORE;
	while (pos < n && t->last != IMAP_PARSE_ERROR) {
		size_t chunk = n - pos;
		if (split != 0) {
			/* 1..64 bytes, varying with the position */
			chunk = 1 + (split * (i + 1) * 7) % 64;
			if (chunk > n - pos)
				chunk = n - pos;
		}
		feed(t, p, d + pos, chunk);
		pos += chunk;
		i++;
	}
	/* after a reset the parser works again */
	imap_parser_reset(p);
	const struct imap_response *r;
	size_t used;
	t->in_literal = false;
	t->begins = t->ends = 0;
	CHECK(imap_parser_feed(p, (const unsigned char *)"* 1 EXISTS\r\n", 12, &used, &r) ==
	      IMAP_PARSE_OK);
	CHECK(used == 12 && r->number == 1);
	imap_parser_free(&p);
	CHECK(p == NULL);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct trace whole, split;

	if (size < 2)
		return 0;
	unsigned how = data[0], flags = data[1];
	memset(&whole, 0, sizeof(whole));
	whole.limits.max_line = 64 + (flags & 7) * 128;
	whole.limits.max_depth = 1 + (flags >> 3 & 3) * 3;
	whole.limits.max_literal = 16 + (flags >> 5 & 1) * 200;
	whole.limits.max_body_literal = 4096;
	whole.abort_at = flags >> 6;
	split = whole;

	run(&whole, data + 2, size - 2, 0);
	run(&split, data + 2, size - 2, how);
	/* the split never changes the outcome */
	CHECK(whole.hash == split.hash);
	CHECK(whole.last == split.last);
	CHECK(whole.responses == split.responses);
	return 0;
}
