/* Unit tests for cache/outbox.c: the durable send queue. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <inttypes.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache/outbox.h"

static char dir[] = "/tmp/mailfs-test-outbox.XXXXXX";

static const char good[] = "From: Alice <alice@example.test>\n"
			   "To: Bob <bob@example.test>, carol@example.test\n"
			   "Cc: bob@EXAMPLE.test\n"
			   "Bcc: dave@example.test\n"
			   "Subject: queue test\n"
			   "\n"
			   "line one\n"
			   ".dot line\n"
			   "last\n";

static struct cfg_account account_cfg = { .name = (char *)"alice", .from = NULL };

/* A scratch file holding `text`, as the fs layer hands it over. */
static int
scratch(const char *text, size_t len)
{
	char path[] = "/tmp/mailfs-test-outbox-scratch.XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	unlink(path);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	return fd;
}

static struct outbox *
open_ob(void)
{
	struct outbox *ob = NULL;
	char err[512];
	if (outbox_open(dir, &ob, err, sizeof(err)) != 0)
		fail_msg("outbox_open: %s", err);
	return ob;
}

/* Create and submit `text` as NAME; returns the row id and the submit result in *r. */
static int64_t
put(struct outbox *ob, const char *name, const char *text, int *r, char *why, size_t whylen)
{
	int64_t id = 0;
	assert_int_equal(outbox_create(ob, "alice", name, 1700000000, &id), 0);
	int fd = scratch(text, strlen(text));
	*r = outbox_submit(ob, id, &account_cfg, fd, strlen(text), 1700000001, why, whylen);
	close(fd);
	return id;
}

static void
test_file_mode(void **state)
{
	(void)state;
	struct outbox *ob = open_ob();
	char path[600];
	snprintf(path, sizeof(path), "%s/outbox.db", dir);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	outbox_close(&ob);
	assert_null(ob);
}

static void
test_queue_good_message(void **state)
{
	(void)state;
	struct outbox *ob = open_ob();
	char why[256] = "";
	int r;
	int64_t id = put(ob, "good.eml", good, &r, why, sizeof(why));
	assert_int_equal(r, 0);

	struct outbox_item it;
	assert_int_equal(outbox_lookup(ob, "alice", false, "good.eml", &it), 0);
	assert_int_equal(it.id, id);
	assert_int_equal(it.state, OUTBOX_QUEUED);
	assert_int_equal(it.size, strlen(good));
	assert_int_equal(it.mtime, 1700000001);
	assert_int_equal(outbox_lookup(ob, "alice", true, "good.eml", &it), 1);
	assert_int_equal(outbox_lookup(ob, "bob", false, "good.eml", &it), 1);

	/* The content reads back as written, in pieces too. */
	char buf[512];
	size_t got = 0;
	assert_int_equal(outbox_read(ob, id, 0, buf, sizeof(buf), &got), 0);
	assert_int_equal(got, strlen(good));
	assert_memory_equal(buf, good, got);
	assert_int_equal(outbox_read(ob, id, 10, buf, 5, &got), 0);
	assert_int_equal(got, 5);
	assert_memory_equal(buf, good + 10, 5);
	assert_int_equal(outbox_read(ob, id, strlen(good), buf, 5, &got), 0);
	assert_int_equal(got, 0);

	/* What will be sent was worked out at submit time. */
	struct outbox_send snd;
	assert_int_equal(outbox_load_send(ob, id, &snd), 0);
	assert_string_equal(snd.env_from, "alice@example.test");
	assert_int_equal(snd.nrcpts, 3); /* bob (once), carol, dave */
	assert_string_equal(snd.rcpts[0], "bob@example.test");
	assert_string_equal(snd.rcpts[1], "carol@example.test");
	assert_string_equal(snd.rcpts[2], "dave@example.test");
	assert_null(strstr(snd.header, "Bcc"));
	assert_non_null(strstr(snd.header, "\r\nDate: "));
	assert_non_null(strstr(snd.header, "\r\nMessage-ID: <"));
	assert_string_equal(snd.header + snd.header_len - 4, "\r\n\r\n");
	assert_memory_equal(good + snd.body_offset, "line one\n", 9);
	/* body "line one\n.dot line\nlast\n": 24 bytes, 3 LF -> CRLF */
	assert_int_equal(snd.send_size, snd.header_len + 24 + 3);
	assert_false(snd.body_8bit);
	assert_string_equal(snd.message_id + strlen(snd.message_id) - 14, "@example.test>");
	outbox_send_free(&snd);

	/* A second file of the same name in outbox/ is refused. */
	int64_t id2;
	assert_int_equal(outbox_create(ob, "alice", "good.eml", 0, &id2), 1);
	unsigned q, f, c;
	assert_int_equal(outbox_counts(ob, "alice", &q, &f, &c), 0);
	assert_int_equal(q, 1);
	assert_int_equal(outbox_delete(ob, id), 0);
	assert_int_equal(outbox_get(ob, id, &it), 1);
	outbox_close(&ob);
}

static void
test_not_a_message(void **state)
{
	(void)state;
	struct outbox *ob = open_ob();
	char why[256] = "";
	int r;
	int64_t id = put(ob, "bad.eml", "Subject: x\n\nno one\n", &r, why, sizeof(why));
	assert_int_equal(r, 1);
	assert_non_null(strstr(why, "no recipient"));
	struct outbox_item it;
	assert_int_equal(outbox_lookup(ob, "alice", false, "bad.eml", &it), 1);
	assert_int_equal(outbox_lookup(ob, "alice", true, "bad.eml", &it), 0);
	assert_int_equal(it.id, id);
	assert_int_equal(it.state, OUTBOX_FAILED);
	struct buf b;
	buf_init(&b, 4096);
	assert_int_equal(outbox_error_text(ob, id, &b), 0);
	assert_non_null(strstr(b.data, "no recipient"));
	buf_free(&b);

	/* The same name failing again gets a suffix; nothing is replaced. */
	int64_t id2 = put(ob, "bad.eml", "garbage without a colon\n", &r, why, sizeof(why));
	assert_int_equal(r, 1);
	assert_non_null(strstr(why, "not a message"));
	assert_int_equal(outbox_get(ob, id2, &it), 0);
	assert_string_equal(it.name, "bad.eml.1");

	/* failed/NAME and NAME.error go one by one; the row goes with the second. */
	assert_int_equal(outbox_delete_failed(ob, id, true), 0);
	assert_int_equal(outbox_get(ob, id, &it), 0);
	assert_true(it.msg_deleted);
	assert_int_equal(outbox_delete_failed(ob, id, false), 0);
	assert_int_equal(outbox_get(ob, id, &it), 1);
	outbox_delete(ob, id2);
	outbox_close(&ob);
}

/* A WRITING row NAME of account acct whose file holds len bytes of text. */
static int64_t
writing_row(struct outbox *ob, const char *acct, const char *name, const char *text, size_t len)
{
	int64_t id;
	assert_int_equal(outbox_create(ob, acct, name, 0, &id), 0);
	int fd = outbox_scratch_open(ob, id);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	close(fd);
	return id;
}

static bool
scratch_exists(int64_t id)
{
	char path[600];
	snprintf(path, sizeof(path), "%s/%s/%" PRId64, dir, OUTBOX_WRITING_DIR, id);
	return access(path, F_OK) == 0;
}

static void
test_recover_and_durability(void **state)
{
	(void)state;
	struct outbox *ob = open_ob();
	int64_t empty;
	assert_int_equal(outbox_create(ob, "alice", "half.eml", 0, &empty), 0);
	char buf[8];
	size_t got;
	assert_int_equal(outbox_read(ob, empty, 0, buf, sizeof(buf), &got), 1);
	char why[256];
	int r;
	int64_t queued = put(ob, "kept.eml", good, &r, why, sizeof(why));
	assert_int_equal(r, 0);
	/* Written, close not seen before the stop: */
	int64_t whole = writing_row(ob, "alice", "whole.eml", good, strlen(good));
	int64_t junk = writing_row(ob, "alice", "junk.eml", "no header block\n", 16);
	char block[8192];
	memset(block, 'x', sizeof(block));
	memcpy(block, good, strlen(good));
	block[sizeof(block) - 1] = '\n';
	int64_t cut = writing_row(ob, "alice", "cut.eml", block, sizeof(block));
	int64_t other = writing_row(ob, "gone", "other.eml", good, strlen(good));
	/* A file whose row was submitted just before the stop. */
	int fd = outbox_scratch_open(ob, queued);
	assert_true(fd >= 0);
	close(fd);
	outbox_close(&ob);

	/* A new process: what was written is submitted as its close would have. */
	ob = open_ob();
	struct cfg_account accts[1] = {account_cfg};
	struct cfg cfg = {.accounts = accts, .naccounts = 1};
	unsigned recovered;
	assert_int_equal(outbox_recover(ob, &cfg, &recovered), 0);
	assert_int_equal(recovered, 3);
	struct outbox_item it;
	assert_int_equal(outbox_get(ob, empty, &it), 1); /* nothing written: nothing to send */
	assert_int_equal(outbox_get(ob, queued, &it), 0);
	assert_int_equal(it.state, OUTBOX_QUEUED);
	assert_false(scratch_exists(queued));
	assert_int_equal(outbox_get(ob, whole, &it), 0);
	assert_int_equal(it.state, OUTBOX_QUEUED);
	assert_int_equal(it.size, strlen(good));
	assert_false(scratch_exists(whole));
	assert_int_equal(outbox_read(ob, whole, 0, buf, sizeof(buf), &got), 0);
	assert_memory_equal(buf, good, got);
	assert_int_equal(outbox_get(ob, junk, &it), 0);
	assert_int_equal(it.state, OUTBOX_FAILED);
	assert_int_equal(outbox_get(ob, cut, &it), 0);
	assert_int_equal(it.state, OUTBOX_FAILED);
	assert_non_null(strstr(it.status, "incomplete"));
	assert_int_equal(it.size, sizeof(block));
	/* An account no longer configured: kept, file and all. */
	assert_int_equal(outbox_get(ob, other, &it), 0);
	assert_int_equal(it.state, OUTBOX_WRITING);
	assert_true(scratch_exists(other));
	/* Ids are never reused. */
	int64_t next;
	assert_int_equal(outbox_create(ob, "alice", "new.eml", 0, &next), 0);
	assert_true(next > queued && next > other);
	int64_t ids[] = {next, queued, whole, junk, cut, other};
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		outbox_delete(ob, ids[i]);
		outbox_scratch_remove(ob, ids[i]);
	}
	outbox_close(&ob);
}

static void
test_retry_and_outcomes(void **state)
{
	(void)state;
	struct outbox *ob = open_ob();
	char why[256];
	int r;
	int64_t a = put(ob, "a.eml", good, &r, why, sizeof(why));
	int64_t b = put(ob, "b.eml", good, &r, why, sizeof(why));
	int64_t c = put(ob, "c.eml", good, &r, why, sizeof(why));
	struct outbox_item items[8];
	assert_int_equal(outbox_due(ob, "alice", false, 100, items, 8), 3);

	/* A temporary failure: later, with the reason kept. */
	assert_int_equal(outbox_retry(ob, a, 5000, "waiting: 451 try later"), 0);
	assert_int_equal(outbox_due(ob, "alice", false, 100, items, 8), 2);
	assert_int_equal(outbox_due(ob, "alice", false, 5000, items, 8), 3);
	int64_t t;
	assert_int_equal(outbox_next_try(ob, "alice", &t), 0);
	assert_int_equal(t, 0);
	struct outbox_item it;
	assert_int_equal(outbox_get(ob, a, &it), 0);
	assert_int_equal(it.attempts, 1);
	assert_string_equal(it.status, "waiting: 451 try later");
	assert_int_equal(outbox_retry_now(ob, a), 0);
	assert_int_equal(outbox_due(ob, "alice", false, 100, items, 8), 3);

	/* Accepted: invisible, waiting for its Sent copy, then gone. */
	assert_int_equal(outbox_sent(ob, b, true), 0);
	assert_int_equal(outbox_lookup(ob, "alice", false, "b.eml", &it), 1);
	assert_int_equal(outbox_due(ob, "alice", true, 0, items, 8), 1);
	assert_int_equal(items[0].id, b);
	assert_int_equal(outbox_copied(ob, b), 0);
	assert_int_equal(outbox_get(ob, b, &it), 1);

	/* Partly refused: in failed/ and still owed a Sent copy. */
	assert_int_equal(outbox_partial(ob, c, "sent to 1 of 2", "refused: x\n", true), 0);
	assert_int_equal(outbox_lookup(ob, "alice", true, "c.eml", &it), 0);
	assert_int_equal(outbox_due(ob, "alice", true, 0, items, 8), 1);
	assert_int_equal(outbox_copied(ob, c), 0);
	assert_int_equal(outbox_get(ob, c, &it), 0); /* the failed file stays */

	/* Refused for good. */
	assert_int_equal(outbox_fail(ob, a, "failed: 550 no", "550 no\n"), 0);
	assert_int_equal(outbox_get(ob, a, &it), 0);
	assert_int_equal(it.state, OUTBOX_FAILED);
	assert_int_equal(outbox_next_try(ob, "alice", &t), 1);
	unsigned q, f, cp;
	assert_int_equal(outbox_counts(ob, "alice", &q, &f, &cp), 0);
	assert_int_equal(q, 0);
	assert_int_equal(f, 2);
	assert_int_equal(cp, 0);
	assert_int_equal(outbox_list(ob, "alice", true, 0, items, 8), 2);
	outbox_delete(ob, a);
	outbox_delete(ob, c);
	outbox_close(&ob);
}

static void
test_large_content_in_pieces(void **state)
{
	(void)state;
	struct outbox *ob = open_ob();
	size_t hl = strlen(good), n = hl + 3 * 1024 * 1024 + 17;
	char *text = malloc(n + 1);
	assert_non_null(text);
	memcpy(text, good, hl);
	for (size_t i = hl; i < n; i++)
		text[i] = i % 77 == 0 ? '\n' : (char)('a' + i % 26);
	text[n] = '\0';
	int64_t id;
	assert_int_equal(outbox_create(ob, "alice", "big.eml", 0, &id), 0);
	int fd = scratch(text, n);
	char why[256];
	assert_int_equal(outbox_submit(ob, id, &account_cfg, fd, n, 0, why, sizeof(why)), 0);
	close(fd);
	char *back = malloc(n);
	size_t off = 0, got;
	while (off < n) {
		assert_int_equal(outbox_read(ob, id, off, back + off, 100000, &got), 0);
		assert_true(got > 0);
		off += got;
	}
	assert_memory_equal(back, text, n);
	free(back);
	free(text);
	outbox_delete(ob, id);
	outbox_close(&ob);
}

static void
test_eight_bit(void **state)
{
	(void)state;
	struct outbox *ob = open_ob();
	char why[256];
	int r;
	/* Raw UTF-8 only in the Subject: still BODY=8BITMIME; none anywhere: no. */
	int64_t a = put(ob, "h8.eml", "From: a@example.test\nTo: b@example.test\n"
				      "Subject: Gr\xc3\xbc\xc3\x9f" "e\n\nplain\n", &r, why, sizeof(why));
	assert_int_equal(r, 0);
	int64_t b = put(ob, "b8.eml", "From: a@example.test\nTo: b@example.test\n\n"
				      "caf\xc3\xa9\n", &r, why, sizeof(why));
	assert_int_equal(r, 0);
	int64_t c = put(ob, "a7.eml", "From: a@example.test\nTo: b@example.test\n\nascii\n", &r,
			why, sizeof(why));
	assert_int_equal(r, 0);
	struct outbox_send snd;
	assert_int_equal(outbox_load_send(ob, a, &snd), 0);
	assert_true(snd.body_8bit);
	outbox_send_free(&snd);
	assert_int_equal(outbox_load_send(ob, b, &snd), 0);
	assert_true(snd.body_8bit);
	outbox_send_free(&snd);
	assert_int_equal(outbox_load_send(ob, c, &snd), 0);
	assert_false(snd.body_8bit);
	outbox_send_free(&snd);
	outbox_delete(ob, a);
	outbox_delete(ob, b);
	outbox_delete(ob, c);
	outbox_close(&ob);
}

static int
setup(void **state)
{
	(void)state;
	return mkdtemp(dir) == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	(void)state;
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_file_mode),
		cmocka_unit_test(test_queue_good_message),
		cmocka_unit_test(test_not_a_message),
		cmocka_unit_test(test_recover_and_durability),
		cmocka_unit_test(test_retry_and_outcomes),
		cmocka_unit_test(test_large_content_in_pieces),
		cmocka_unit_test(test_eight_bit),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
