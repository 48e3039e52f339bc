/* test-checkpoint.c - the WAL is checkpointed by the checkpointer thread while it runs,
 * never inside a commit below CKPT_INLINE_FRAMES; without it, commits checkpoint
 * themselves as SQLite's autocheckpoint does. Counted by ckpt_stats() and seen in the
 * database file, which grows only when frames are copied back into it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cache/checkpoint.h"
#include "cache/store.h"
#include "rmtree.h"

/* Commits of two frames each (a row of accounts and its index entry): `n` of them. */
static void
commit_rows(struct store *s, const char *tag, int n)
{
	for (int i = 0; i < n; i++) {
		char name[64];
		int64_t id;
		snprintf(name, sizeof(name), "%s-%05d", tag, i);
		assert_int_equal(store_account_ensure(s, name, &id), 0);
	}
}

static off_t
file_size(const char *dir, const char *name)
{
	char p[512];
	struct stat st;
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return stat(p, &st) == 0 ? st.st_size : -1;
}

static void
nap_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static void
test_background_then_inline(void **state)
{
	(void)state;
	char dir[] = "/tmp/test-checkpoint-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char err[512] = "";
	struct store *s = NULL;
	assert_int_equal(store_open(dir, &s, err, sizeof(err)), 0);
	struct ckpt_stats a, b;

	/* No checkpointer: past 1,000 frames a commit checkpoints. */
	ckpt_stats(&a);
	commit_rows(s, "inline", 800);
	ckpt_stats(&b);
	assert_true(b.inline_runs > a.inline_runs);
	assert_int_equal(b.background, a.background);

	/* With it: the commits only wake it, and it copies the frames into the file. */
	assert_int_equal(store_checkpointer_start(dir, err, sizeof(err)), 0);
	assert_int_equal(store_checkpointer_start(dir, err, sizeof(err)), -1); /* one only */
	assert_non_null(strstr(err, "already"));
	ckpt_stats(&a);
	off_t before = file_size(dir, "mailfs.db");
	commit_rows(s, "background", 1500);
	for (int i = 0; i < 500; i++) {
		ckpt_stats(&b);
		if (b.background > a.background && file_size(dir, "mailfs.db") > before)
			break;
		nap_ms(10);
	}
	ckpt_stats(&b);
	assert_true(b.background > a.background);
	assert_int_equal(b.inline_runs, a.inline_runs);
	assert_int_equal(b.failures, 0);
	assert_true(file_size(dir, "mailfs.db") > before);

	/* Stopped: commits checkpoint themselves again. */
	store_checkpointer_stop();
	ckpt_stats(&a);
	commit_rows(s, "again", 1200);
	ckpt_stats(&b);
	assert_true(b.inline_runs > a.inline_runs);
	assert_int_equal(b.background, a.background);

	store_close(&s);
	rm_tree(dir);
}

/* Another cache directory is not served by the checkpointer: its commits checkpoint. */
static void
test_other_directory(void **state)
{
	(void)state;
	char dir[] = "/tmp/test-checkpoint-XXXXXX", other[] = "/tmp/test-checkpoint-XXXXXX";
	assert_non_null(mkdtemp(dir));
	assert_non_null(mkdtemp(other));
	char err[512] = "";
	struct store *s = NULL, *o = NULL;
	assert_int_equal(store_open(dir, &s, err, sizeof(err)), 0);
	assert_int_equal(store_open(other, &o, err, sizeof(err)), 0);
	assert_int_equal(store_checkpointer_start(dir, err, sizeof(err)), 0);
	struct ckpt_stats a, b;
	ckpt_stats(&a);
	commit_rows(o, "other", 800);
	ckpt_stats(&b);
	assert_true(b.inline_runs > a.inline_runs);
	store_checkpointer_stop();
	store_close(&o);
	store_close(&s);
	rm_tree(dir);
	rm_tree(other);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_background_then_inline),
	    cmocka_unit_test(test_other_directory),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
