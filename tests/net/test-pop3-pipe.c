/* test-pop3-pipe.c - unit tests for net/pop3-pipe.c, and for reading a window of
 * pipelined replies with net/pop3-reply's parsers.
 *
 * The window: limits (commands, byte budget, the empty-window rule), order, the ring
 * wrapping round, saturation of the byte sum, and a seeded random run against a plain
 * queue model. The replies: a stream answering a window of TOP/RETR commands (one of
 * them -ERR in the middle), fed whole, byte by byte and in random splits, must give each
 * command its own reply and leave the -ERR affecting only its message. Not tested here:
 * the socket side (net/pop3 against Dovecot and tests/integration/fake-pop3.py).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "net/pop3-pipe.h"
#include "net/pop3-reply.h"

static uint32_t
rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return (uint32_t)(*s >> 32);
}

static void
test_empty_window(void **state)
{
	(void)state;
	struct pop3_pipe p;
	struct pop3_pipe_slot s;
	pop3_pipe_init(&p, 4, 100);
	assert_int_equal(pop3_pipe_count(&p), 0);
	assert_false(pop3_pipe_front(&p, &s));
	assert_false(pop3_pipe_pop(&p));
	/* An empty window takes any command, however large its reply. */
	assert_true(pop3_pipe_room(&p, UINT64_MAX));
	assert_true(pop3_pipe_push(&p, POP3_PIPE_RETR, 7, UINT64_MAX));
	assert_false(pop3_pipe_room(&p, 0));
	assert_true(pop3_pipe_front(&p, &s));
	assert_int_equal(s.cmd, POP3_PIPE_RETR);
	assert_int_equal(s.msg, 7);
	assert_true(pop3_pipe_pop(&p));
	assert_true(pop3_pipe_room(&p, 100));
}

static void
test_clamp(void **state)
{
	(void)state;
	struct pop3_pipe p;
	pop3_pipe_init(&p, 0, 0); /* 0 commands means 1: send, read, send */
	assert_true(pop3_pipe_push(&p, POP3_PIPE_TOP, 1, 0));
	assert_false(pop3_pipe_room(&p, 0));
	assert_false(pop3_pipe_push(&p, POP3_PIPE_TOP, 2, 0));
	assert_int_equal(pop3_pipe_count(&p), 1);
	pop3_pipe_init(&p, 1000, 0); /* at most POP3_PIPE_MAX */
	for (unsigned i = 0; i < POP3_PIPE_MAX; i++)
		assert_true(pop3_pipe_push(&p, POP3_PIPE_TOP, i + 1, 0));
	assert_false(pop3_pipe_room(&p, 0));
	assert_false(pop3_pipe_push(&p, POP3_PIPE_TOP, 999, 0));
	assert_int_equal(pop3_pipe_count(&p), POP3_PIPE_MAX);
}

static void
test_command_limit(void **state)
{
	(void)state;
	struct pop3_pipe p;
	pop3_pipe_init(&p, 3, 0);
	assert_true(pop3_pipe_push(&p, POP3_PIPE_TOP, 1, 10));
	assert_true(pop3_pipe_push(&p, POP3_PIPE_TOP, 2, 10));
	assert_true(pop3_pipe_push(&p, POP3_PIPE_RETR, 3, 10));
	assert_false(pop3_pipe_room(&p, 0));
	assert_false(pop3_pipe_push(&p, POP3_PIPE_RETR, 4, 0));
	assert_true(pop3_pipe_pop(&p));
	assert_true(pop3_pipe_push(&p, POP3_PIPE_RETR, 4, 0));
	struct pop3_pipe_slot s;
	unsigned want[] = {2, 3, 4};
	for (unsigned i = 0; i < 3; i++) {
		assert_true(pop3_pipe_front(&p, &s));
		assert_int_equal(s.msg, want[i]);
		assert_true(pop3_pipe_pop(&p));
	}
	assert_int_equal(pop3_pipe_count(&p), 0);
}

static void
test_byte_budget(void **state)
{
	(void)state;
	struct pop3_pipe p;
	pop3_pipe_init(&p, 32, 1000);
	assert_true(pop3_pipe_push(&p, POP3_PIPE_RETR, 1, 600));
	assert_true(pop3_pipe_room(&p, 400));
	assert_false(pop3_pipe_room(&p, 401));
	assert_false(pop3_pipe_push(&p, POP3_PIPE_RETR, 2, 401));
	assert_true(pop3_pipe_push(&p, POP3_PIPE_RETR, 2, 400));
	assert_false(pop3_pipe_room(&p, 1));
	assert_true(pop3_pipe_room(&p, 0)); /* the budget is spent, not exceeded */
	assert_true(pop3_pipe_pop(&p)); /* 600 back */
	assert_true(pop3_pipe_room(&p, 600));
	assert_false(pop3_pipe_room(&p, 601));
	/* Over the budget through an empty-window push: nothing more until it is read. */
	pop3_pipe_init(&p, 32, 1000);
	assert_true(pop3_pipe_push(&p, POP3_PIPE_RETR, 1, 5000));
	assert_false(pop3_pipe_room(&p, 0));
	assert_true(pop3_pipe_pop(&p));
	assert_true(pop3_pipe_room(&p, 1000));
}

static void
test_saturation(void **state)
{
	(void)state;
	struct pop3_pipe p;
	pop3_pipe_init(&p, 8, 0); /* no budget: the sum may saturate, never wrap */
	assert_true(pop3_pipe_push(&p, POP3_PIPE_RETR, 1, UINT64_MAX - 1));
	assert_true(pop3_pipe_push(&p, POP3_PIPE_RETR, 2, 10));
	assert_int_equal(p.outstanding, UINT64_MAX);
	assert_true(pop3_pipe_pop(&p));
	assert_true(pop3_pipe_pop(&p));
	assert_int_equal(p.outstanding, 0);
}

static void
test_limit_change(void **state)
{
	(void)state;
	struct pop3_pipe p;
	pop3_pipe_init(&p, 8, 0);
	for (unsigned i = 0; i < 5; i++)
		assert_true(pop3_pipe_push(&p, POP3_PIPE_TOP, i + 1, 0));
	pop3_pipe_limit(&p, 2, 0); /* what is in flight stays */
	assert_int_equal(pop3_pipe_count(&p), 5);
	assert_false(pop3_pipe_room(&p, 0));
	for (unsigned i = 0; i < 4; i++)
		assert_true(pop3_pipe_pop(&p));
	assert_true(pop3_pipe_room(&p, 0));
}

/* A seeded random run against a plain queue: same order, same room answers. */
static void
test_random_model(void **state)
{
	(void)state;
	uint64_t seed = 0x9e3779b97f4a7c15ULL;
	for (int round = 0; round < 50; round++) {
		unsigned max = 1 + rnd(&seed) % (POP3_PIPE_MAX + 4);
		uint64_t budget = rnd(&seed) % 3 == 0 ? 0 : 1 + rnd(&seed) % 50000;
		struct pop3_pipe p;
		pop3_pipe_init(&p, max, budget);
		unsigned cap = max > POP3_PIPE_MAX ? POP3_PIPE_MAX : max;
		uint32_t mq[POP3_PIPE_MAX];
		uint64_t eq[POP3_PIPE_MAX];
		unsigned mh = 0, mn = 0;
		uint64_t sum = 0;
		uint32_t next = 1;
		for (int step = 0; step < 2000; step++) {
			if (rnd(&seed) % 2) {
				uint64_t expect = rnd(&seed) % 20000;
				bool room = mn == 0 ||
					    (mn < cap && (budget == 0 || sum + expect <= budget));
				assert_int_equal(pop3_pipe_room(&p, expect), room);
				assert_int_equal(pop3_pipe_push(&p, rnd(&seed) % 2 ? POP3_PIPE_TOP
										 : POP3_PIPE_RETR,
								next, expect),
						 room);
				if (room) {
					mq[(mh + mn) % POP3_PIPE_MAX] = next;
					eq[(mh + mn) % POP3_PIPE_MAX] = expect;
					mn++;
					sum += expect;
					next++;
				}
			} else {
				struct pop3_pipe_slot s;
				bool had = mn > 0;
				assert_int_equal(pop3_pipe_front(&p, &s), had);
				if (had) {
					assert_int_equal(s.msg, mq[mh]);
					assert_int_equal(s.expect, eq[mh]);
					sum -= eq[mh];
					mh = (mh + 1) % POP3_PIPE_MAX;
					mn--;
				}
				assert_int_equal(pop3_pipe_pop(&p), had);
			}
			assert_int_equal(pop3_pipe_count(&p), mn);
			assert_true(p.outstanding == sum);
		}
	}
}

/* ---- a window of pipelined replies through the reply parsers ----------------------- */

/* What the server answers to TOP 1 0, RETR 1, TOP 2 0 (-ERR), RETR 2 (-ERR), RETR 3,
 * TOP 3 0, in that order, in one stream. */
static const char stream[] =
	"+OK headers follow\r\n"
	"Subject: one\r\n\r\n"
	".\r\n"
	"+OK 40 octets\r\n"
	"Subject: one\r\n\r\n"
	"..dot line\r\nbody\r\n"
	".\r\n"
	"-ERR [SYS/TEMP] no such message\r\n"
	"-ERR message 2 locked\r\n"
	"+OK\r\n"
	"Subject: three\r\n\r\n"
	"....\r\n"
	".\r\n"
	"+OK\r\n"
	"Subject: three\r\n\r\n"
	".\r\n";

struct want {
	enum pop3_pipe_cmd cmd;
	uint32_t msg;
	enum pop3_status_kind kind;
	const char *body; /* NULL for -ERR */
};

static const struct want wants[] = {
	{POP3_PIPE_TOP, 1, POP3_OK, "Subject: one\r\n\r\n"},
	{POP3_PIPE_RETR, 1, POP3_OK, "Subject: one\r\n\r\n.dot line\r\nbody\r\n"},
	{POP3_PIPE_TOP, 2, POP3_ERR, NULL},
	{POP3_PIPE_RETR, 2, POP3_ERR, NULL},
	{POP3_PIPE_RETR, 3, POP3_OK, "Subject: three\r\n\r\n...\r\n"},
	{POP3_PIPE_TOP, 3, POP3_OK, "Subject: three\r\n\r\n"},
};
#define NWANT (sizeof(wants) / sizeof(wants[0]))

/* Read every reply of `stream` delivered in chunks (split: 0 whole, 1 byte by byte, else
 * a seed), the window holding at most `window` commands, refilled as replies complete,
 * as net/pop3 and the POP3 sync do. */
static void
read_window(uint64_t split, unsigned window)
{
	struct pop3_pipe p;
	pop3_pipe_init(&p, window, 0);
	struct pop3_status_parser sp;
	struct pop3_status st;
	struct pop3_body b;
	size_t sent = 0, done = 0, off = 0, total = sizeof(stream) - 1;
	char out[512];
	size_t outlen = 0;
	bool in_body = false;
	uint64_t seed = split;
	/* Bytes the "socket" has delivered but the parser has not consumed. */
	size_t avail_end = 0;
	pop3_status_parser_init(&sp);
	while (done < NWANT) {
		while (sent < NWANT && pop3_pipe_room(&p, 0)) {
			assert_true(pop3_pipe_push(&p, wants[sent].cmd, wants[sent].msg, 0));
			sent++;
		}
		if (off == avail_end) {
			size_t n = split == 0 ? total - off
				   : split == 1 ? 1
						: 1 + rnd(&seed) % 9;
			avail_end = off + n > total ? total : off + n;
		}
		assert_true(off < avail_end);
		struct pop3_pipe_slot s;
		assert_true(pop3_pipe_front(&p, &s));
		const struct want *w = &wants[done];
		assert_int_equal(s.cmd, w->cmd);
		assert_int_equal(s.msg, w->msg);
		size_t used = 0;
		if (!in_body) {
			char err[128];
			enum pop3_parse r = pop3_status_parse(&sp, stream + off, avail_end - off,
							      &used, &st, err, sizeof(err));
			off += used;
			assert_int_not_equal(r, POP3_PARSE_ERROR);
			if (r == POP3_PARSE_MORE)
				continue;
			assert_int_equal(st.kind, w->kind);
			pop3_status_parser_init(&sp);
			if (st.kind == POP3_ERR) {
				/* Only this command's reply: the window goes on. */
				assert_true(pop3_pipe_pop(&p));
				done++;
				continue;
			}
			in_body = true;
			outlen = 0;
			pop3_body_init(&b, sizeof(out) - 1);
			continue;
		}
		size_t got = 0;
		char chunk[64];
		size_t n = avail_end - off < sizeof(chunk) - 1 ? avail_end - off : sizeof(chunk) - 1;
		enum pop3_parse r = pop3_body_decode(&b, stream + off, n, &used, chunk, &got);
		assert_int_not_equal(r, POP3_PARSE_ERROR);
		assert_true(outlen + got < sizeof(out));
		memcpy(out + outlen, chunk, got);
		outlen += got;
		off += used;
		if (r == POP3_PARSE_DONE) {
			assert_int_equal(outlen, strlen(w->body));
			assert_memory_equal(out, w->body, outlen);
			assert_true(pop3_pipe_pop(&p));
			in_body = false;
			done++;
		}
	}
	assert_int_equal(off, total);
	assert_int_equal(pop3_pipe_count(&p), 0);
}

static void
test_replies_in_order(void **state)
{
	(void)state;
	for (unsigned window = 1; window <= NWANT + 1; window++) {
		read_window(0, window);
		read_window(1, window);
		for (uint64_t seed = 2; seed < 60; seed++)
			read_window(seed * 0x2545f4914f6cdd1dULL, window);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty_window),   cmocka_unit_test(test_clamp),
		cmocka_unit_test(test_command_limit),  cmocka_unit_test(test_byte_budget),
		cmocka_unit_test(test_saturation),     cmocka_unit_test(test_limit_change),
		cmocka_unit_test(test_random_model),   cmocka_unit_test(test_replies_in_order),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
