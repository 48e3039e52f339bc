/* test-store-readers.c - reads never wait on the writer (issue 12, item 3): a connection
 * opened while another holds a write transaction must open and read at once. Built with
 * a short busy timeout (STORE_BUSY_MS=300): an open or read that needed the write lock
 * fails here with "database is locked" instead of stalling for seconds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#define _XOPEN_SOURCE 700
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache/store.h"
#include "rmtree.h"

static int64_t
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
test_open_during_write(void **state)
{
	(void)state;
	char dir[] = "/tmp/test-store-readers-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char err[512] = "";
	struct store *w = NULL, *r = NULL;
	assert_int_equal(store_open(dir, &w, err, sizeof(err)), 0);
	int64_t acct, top, folder;
	assert_int_equal(store_account_ensure(w, "a", &acct), 0);
	assert_int_equal(store_folder_ensure(w, acct, 0, "a", STORE_FOLDER_ACCOUNT, "", '/', 0, &top), 0);
	assert_int_equal(store_folder_ensure(w, acct, top, "INBOX", STORE_FOLDER_MAILBOX, "INBOX",
					     '/', 0, &folder), 0);
	/* The writer holds the write lock, with rows not committed yet. */
	assert_int_equal(store_begin(w), 0);
	struct store_msg m = { .folder_id = folder, .uid = 1, .size = 10 };
	snprintf(m.name, sizeof(m.name), "x.eml");
	assert_int_equal(store_msg_upsert(w, &m), 0);

	int64_t t0 = now_ms();
	int rc = store_open(dir, &r, err, sizeof(err));
	if (rc != 0)
		print_error("store_open while another connection writes: %s\n", err);
	assert_int_equal(rc, 0);
	struct store_folder f;
	assert_int_equal(store_folder_get(r, folder, &f), 0);
	struct store_msg got;
	assert_int_equal(store_msg_lookup(r, folder, "x.eml", &got), 1); /* not committed */
	int64_t took = now_ms() - t0;
	print_message("open and reads during a write transaction: %lld ms\n", (long long)took);
	assert_true(took < 200);

	assert_int_equal(store_commit(w), 0);
	assert_int_equal(store_msg_lookup(r, folder, "x.eml", &got), 0);
	store_close(&r);
	store_close(&w);
	rm_tree(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_open_during_write),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
