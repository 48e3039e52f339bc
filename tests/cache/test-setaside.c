/* test-setaside.c - the record of messages the server keeps failing to send
 * (cache/setaside.h), and the list of bodies declared empty (store_msg_empty_bodies).
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

#include "cache/setaside.h"
#include "cache/store.h"
#include "rmtree.h"

struct fx {
	char dir[64];
	struct store *s;
	int64_t acct, top, inbox, other;
};

static int
setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	assert_non_null(fx);
	snprintf(fx->dir, sizeof(fx->dir), "/tmp/test-setaside-XXXXXX");
	assert_non_null(mkdtemp(fx->dir));
	char err[512];
	assert_int_equal(store_open(fx->dir, &fx->s, err, sizeof(err)), 0);
	assert_int_equal(store_account_ensure(fx->s, "a", &fx->acct), 0);
	assert_int_equal(store_folder_ensure(fx->s, fx->acct, 0, "a", STORE_FOLDER_ACCOUNT, "", '/',
					     0, &fx->top), 0);
	assert_int_equal(store_folder_ensure(fx->s, fx->acct, fx->top, "INBOX",
					     STORE_FOLDER_MAILBOX, "INBOX", '/', 0, &fx->inbox), 0);
	assert_int_equal(store_folder_ensure(fx->s, fx->acct, fx->top, "Other",
					     STORE_FOLDER_MAILBOX, "Other", '/', 0, &fx->other), 0);
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *fx = *state;
	store_close(&fx->s);
	rm_tree(fx->dir);
	free(fx);
	return 0;
}

static int64_t
add_msg(struct fx *fx, int64_t folder, uint32_t uid, uint64_t size)
{
	struct store_msg m = { .folder_id = folder, .uid = uid, .size = size };
	snprintf(m.name, sizeof(m.name), "m%u.eml", uid);
	assert_int_equal(store_msg_upsert(fx->s, &m), 0);
	return m.id;
}

static unsigned
note_fail(struct fx *fx, int64_t folder, uint32_t uid, const char *why)
{
	unsigned n = 0;
	assert_int_equal(store_aside_fail(fx->s, folder, uid, why, &n), 0);
	return n;
}

static void
test_count_hold_clear(void **state)
{
	struct fx *fx = *state;
	add_msg(fx, fx->inbox, 2, 100);
	assert_int_equal(note_fail(fx, fx->inbox, 2, "BYE one"), 1);
	assert_int_equal(note_fail(fx, fx->inbox, 2, "BYE two"), 2);
	/* Fewer than ASIDE_AFTER failures: not set aside, but the folder has a row. */
	uint32_t uids[8];
	size_t n = 99, rows = 99;
	assert_int_equal(store_aside_uids(fx->s, fx->inbox, 1000, ASIDE_AFTER, uids, 8, &n, &rows), 0);
	assert_int_equal(n, 0);
	assert_int_equal(rows, 1);
	assert_int_equal(note_fail(fx, fx->inbox, 2, "BYE three"), 3);
	assert_int_equal(store_aside_hold(fx->s, fx->inbox, 2, 5000), 0);
	assert_int_equal(store_aside_uids(fx->s, fx->inbox, 1000, ASIDE_AFTER, uids, 8, &n, &rows), 0);
	assert_int_equal(n, 1);
	assert_int_equal(uids[0], 2);
	/* Due again at retry_at. */
	assert_int_equal(store_aside_uids(fx->s, fx->inbox, 5000, ASIDE_AFTER, uids, 8, &n, &rows), 0);
	assert_int_equal(n, 0);
	assert_int_equal(rows, 1);
	/* Other folders are not concerned. */
	assert_int_equal(store_aside_uids(fx->s, fx->other, 1000, ASIDE_AFTER, uids, 8, &n, &rows), 0);
	assert_int_equal(rows, 0);

	struct store_aside a;
	assert_int_equal(store_aside_get(fx->s, fx->inbox, 2, &a), 0);
	assert_int_equal(a.failures, 3);
	assert_string_equal(a.reason, "BYE three");
	assert_int_equal(a.retry_at, 5000);
	assert_true(a.since > 0);
	assert_int_equal(store_aside_get(fx->s, fx->inbox, 3, &a), 1);

	assert_int_equal(store_aside_clear(fx->s, fx->inbox, 2), 0);
	assert_int_equal(store_aside_get(fx->s, fx->inbox, 2, &a), 1);
	assert_int_equal(note_fail(fx, fx->inbox, 2, "again"), 1); /* counting starts over */
}

static int
collect(void *ctx, const struct store_aside *a)
{
	char *out = ctx;
	size_t len = strlen(out);
	snprintf(out + len, 512 - len, "%s/%s:%u:%u:%s;", a->folder, a->name, a->uid, a->failures,
		 a->reason);
	return 0;
}

static void
test_each_and_removal(void **state)
{
	struct fx *fx = *state;
	int64_t m5 = add_msg(fx, fx->inbox, 5, 10);
	add_msg(fx, fx->other, 7, 10);
	note_fail(fx, fx->inbox, 5, "r5");
	note_fail(fx, fx->inbox, 9, "r9"); /* no row yet: fetched whole for the first time */
	note_fail(fx, fx->other, 7, "r7");
	char out[512] = "";
	assert_int_equal(store_aside_each(fx->s, fx->acct, 100, collect, out), 0);
	assert_string_equal(out, "INBOX/m5.eml:5:1:r5;INBOX/:9:1:r9;Other/m7.eml:7:1:r7;");
	/* An expunged message and a removed folder take their records along. */
	assert_int_equal(store_msg_delete(fx->s, m5), 0);
	assert_int_equal(store_folder_delete(fx->s, fx->other), 0);
	out[0] = '\0';
	assert_int_equal(store_aside_each(fx->s, fx->acct, 100, collect, out), 0);
	assert_string_equal(out, "INBOX/:9:1:r9;");
}

static void
test_empty_bodies(void **state)
{
	struct fx *fx = *state;
	add_msg(fx, fx->inbox, 1, 0);
	add_msg(fx, fx->inbox, 2, 50);
	int64_t m3 = add_msg(fx, fx->inbox, 3, 0);
	add_msg(fx, fx->inbox, 4, 0);
	add_msg(fx, fx->other, 5, 0);
	/* Its body turns out to be 40 bytes: no longer declared empty. */
	struct store_body_writer *w = NULL;
	bool changed = false;
	assert_int_equal(store_body_begin(fx->s, m3, 40, &w, &changed), 0);
	assert_int_equal(store_body_write(w, "0123456789012345678901234567890123456789", 40), 0);
	assert_int_equal(store_body_end(&w, true), 0);
	uint32_t uids[8];
	size_t n = 0;
	assert_int_equal(store_msg_empty_bodies(fx->s, fx->inbox, 0, uids, 8, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(uids[0], 1);
	assert_int_equal(uids[1], 4);
	assert_int_equal(store_msg_empty_bodies(fx->s, fx->inbox, 1, uids, 8, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(uids[0], 4);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_count_hold_clear, setup, teardown),
		cmocka_unit_test_setup_teardown(test_each_and_removal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_empty_bodies, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
