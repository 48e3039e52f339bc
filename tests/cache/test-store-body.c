/* test-store-body.c - unit tests for message bodies in cache/store-body.c and cache/pack.c:
 * bodies in pieces, in and out of transactions, beyond the size, dropped, incomplete, size
 * correction and rewrite; packs (two writers, alignment, modes, the sweep after a crash,
 * blocks given back when a deletion commits, a pack cut short); the migration of a schema 1
 * cache with bodies in the database. */
#include "store-fx.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- bodies ---- */

static void
test_body_small(void **state)
{
	struct fx *fx = *state;
	int64_t id = add_msg(fx->s, fx->inbox, 1, "one.eml", 5000);
	bool changed = true;
	OK(put_body(fx->s, id, 5000, 1000, &changed));
	assert_false(changed);
	struct store_msg r;
	OK(store_msg_get(fx->s, id, &r));
	assert_true(r.has_body);
	assert_true(check_body(fx->s, id, 5000, 4096));
	assert_true(check_body(fx->s, id, 5000, 5000));
	assert_true(check_body(fx->s, id, 5000, 1));

	unsigned char buf[100];
	size_t got = 99;
	OK(store_body_read(fx->s, id, 4950, buf, sizeof(buf), &got));
	assert_int_equal(got, 50);
	for (size_t i = 0; i < got; i++)
		assert_int_equal(buf[i], pat(id, 4950 + i));
	OK(store_body_read(fx->s, id, 5000, buf, sizeof(buf), &got));
	assert_int_equal(got, 0);
	OK(store_body_read(fx->s, id, 1u << 30, buf, sizeof(buf), &got));
	assert_int_equal(got, 0);
	OK(store_body_read(fx->s, id, 10, buf, 0, &got));
	assert_int_equal(got, 0);

	/* Not cached, no such message. */
	int64_t id2 = add_msg(fx->s, fx->inbox, 2, "two.eml", 10);
	got = 5;
	assert_int_equal(store_body_read(fx->s, id2, 0, buf, sizeof(buf), &got), 1);
	assert_int_equal(got, 0);
	assert_int_equal(store_body_read(fx->s, 987654, 0, buf, sizeof(buf), &got), 1);
	struct store_body_writer *w = (struct store_body_writer *)1;
	assert_int_equal(store_body_begin(fx->s, 987654, 10, &w, NULL), -1);
	assert_null(w);
	assert_non_null(strstr(store_errmsg(fx->s), "987654 not found"));
	assert_int_equal(store_body_end(&w, true), 0); /* NULL writer */
}

static void
test_body_large(void **state)
{
	struct fx *fx = *state;
	/* Bigger than the writer's buffer, odd piece sizes, in autocommit mode. */
	uint64_t size = 3 * 1024 * 1024 + 12345;
	int64_t id = add_msg(fx->s, fx->inbox, 1, "big.eml", size);
	OK(put_body(fx->s, id, size, 12 * 1024, NULL));
	assert_true(check_body(fx->s, id, size, 128 * 1024));
	assert_true(check_body(fx->s, id, size, 4096 + 17));
	/* Inside a transaction, with one piece as large as the body. */
	int64_t id2 = add_msg(fx->s, fx->inbox, 2, "big2.eml", size);
	int64_t id3 = add_msg(fx->s, fx->inbox, 3, "big3.eml", 256 * 1024);
	OK(store_begin(fx->s));
	OK(put_body(fx->s, id2, size, (size_t)size, NULL));
	OK(put_body(fx->s, id3, 256 * 1024, 256 * 1024, NULL)); /* exactly the buffer */
	OK(store_commit(fx->s));
	assert_true(check_body(fx->s, id2, size, 128 * 1024));
	assert_true(check_body(fx->s, id3, 256 * 1024, 100000));
	struct store_stats st;
	OK(store_stats(fx->s, 0, &st));
	assert_int_equal(st.bodies, 3);
	assert_int_equal(st.body_bytes, 2 * size + 256 * 1024);
}

static void
test_body_errors(void **state)
{
	struct fx *fx = *state;
	int64_t id = add_msg(fx->s, fx->inbox, 1, "one.eml", 10);
	struct store_body_writer *w = NULL;
	char data[400000];
	memset(data, 'x', sizeof(data));
	size_t got;

	/* Beyond the size: an error, and the body is dropped at the end. */
	OK(store_body_begin(fx->s, id, 10, &w, NULL));
	OK(store_body_write(w, data, 6));
	assert_int_equal(store_body_write(w, data, 5), -1);
	assert_non_null(strstr(store_errmsg(fx->s), "beyond its size (10 bytes)"));
	assert_int_equal(store_body_write(w, data, 1), -1);
	assert_int_equal(store_body_end(&w, true), -1);
	assert_null(w);
	assert_int_equal(store_body_read(fx->s, id, 0, data, 10, &got), 1);

	/* ok = false drops a complete body, even a large one already partly on disk. */
	OK(store_body_begin(fx->s, id, 10, &w, NULL));
	OK(store_body_write(w, data, 10));
	OK(store_body_end(&w, false));
	assert_int_equal(store_body_read(fx->s, id, 0, data, 10, &got), 1);
	OK(store_body_begin(fx->s, id, sizeof(data), &w, NULL));
	OK(store_body_write(w, data, sizeof(data) - 1));
	assert_true(pack_blocks(fx->dir) >= 256 * 1024); /* partly on disk */
	OK(store_body_end(&w, false));
	assert_int_equal(raw_query(fx->dir, "SELECT count(*) FROM messages WHERE body_pack"), 0);
	assert_int_equal(store_body_read(fx->s, id, 0, data, 10, &got), 1);

	/* Incomplete with ok = true: an error, dropped. */
	OK(store_body_begin(fx->s, id, 10, &w, NULL));
	OK(store_body_write(w, data, 9));
	assert_int_equal(store_body_end(&w, true), -1);
	assert_non_null(strstr(store_errmsg(fx->s), "incomplete (9 of 10 bytes)"));
	assert_int_equal(store_body_read(fx->s, id, 0, data, 10, &got), 1);
	struct store_msg r;
	OK(store_msg_get(fx->s, id, &r));
	assert_false(r.has_body);

	/* The message vanishes while its body is written. */
	OK(store_body_begin(fx->s, id, 10, &w, NULL));
	OK(store_body_write(w, data, 10));
	OK(store_msg_delete(fx->s, id));
	assert_int_equal(store_body_end(&w, true), -1);
	assert_non_null(strstr(store_errmsg(fx->s), "deleted"));
	assert_int_equal(raw_query(fx->dir, "SELECT count(*) FROM messages WHERE body_pack"), 0);

	/* Larger than a file can be. */
	int64_t id2 = add_msg(fx->s, fx->inbox, 2, "two.eml", 10);
	assert_int_equal(store_body_begin(fx->s, id2, UINT64_MAX, &w, NULL), -1);
	assert_non_null(strstr(store_errmsg(fx->s), "too large"));
	assert_null(w);

	/* Rolled back under a writer: its end fails and leaves nothing. */
	OK(store_begin(fx->s));
	OK(store_body_begin(fx->s, id2, 10, &w, NULL));
	OK(store_body_write(w, data, 10));
	store_rollback(fx->s);
	OK(store_body_end(&w, false));
	assert_int_equal(store_body_read(fx->s, id2, 0, data, 10, &got), 1);
}

static void
test_body_size_correction(void **state)
{
	struct fx *fx = *state;
	/* The server said 100, the literal has 120. */
	int64_t id = add_msg(fx->s, fx->inbox, 1, "one.eml", 100);
	bool changed = false;
	OK(put_body(fx->s, id, 120, 50, &changed));
	assert_true(changed);
	struct store_msg r;
	OK(store_msg_get(fx->s, id, &r));
	assert_int_equal(r.size, 120);
	assert_true(r.has_body);
	assert_true(check_body(fx->s, id, 120, 4096));
	/* A later sync repeating the wrong RFC822.SIZE does not undo the correction. */
	struct store_msg u = r;
	u.size = 100;
	snprintf(u.flags, sizeof(u.flags), "\\Seen");
	OK(store_msg_upsert(fx->s, &u));
	OK(store_msg_get(fx->s, id, &r));
	assert_int_equal(r.size, 120);
	assert_string_equal(r.flags, "\\Seen");
	struct store_stats st;
	OK(store_stats(fx->s, fx->acct, &st));
	assert_int_equal(st.body_bytes, 120);

	/* Smaller, and inside a transaction; the failed body still corrected the size. */
	struct store_body_writer *w = NULL;
	OK(store_begin(fx->s));
	OK(store_body_begin(fx->s, id, 80, &w, &changed));
	assert_true(changed);
	OK(store_body_end(&w, false));
	OK(store_commit(fx->s));
	OK(store_msg_get(fx->s, id, &r));
	assert_int_equal(r.size, 80);
	assert_false(r.has_body);
	/* Without a body, the server's size is taken again. */
	u.size = 81;
	OK(store_msg_upsert(fx->s, &u));
	OK(store_msg_get(fx->s, id, &r));
	assert_int_equal(r.size, 81);
	OK(store_stats(fx->s, fx->acct, &st));
	assert_int_equal(st.body_bytes, 0);
}

static void
test_body_rewrite_empty(void **state)
{
	struct fx *fx = *state;
	int64_t id = add_msg(fx->s, fx->inbox, 1, "one.eml", 600000);
	OK(put_body(fx->s, id, 600000, 12000, NULL));
	struct store_body_writer *w = NULL;
	unsigned char buf[64];
	size_t got;
	OK(store_body_begin(fx->s, id, 600000, &w, NULL));
	/* While it is rewritten the old body is not served. */
	assert_int_equal(store_body_read(fx->s, id, 0, buf, sizeof(buf), &got), 1);
	memset(buf, 'z', sizeof(buf));
	for (int i = 0; i < 600000 / 64; i++)
		OK(store_body_write(w, buf, 64));
	OK(store_body_write(w, buf, 600000 % 64));
	OK(store_body_end(&w, true));
	OK(store_body_read(fx->s, id, 599990, buf, sizeof(buf), &got));
	assert_int_equal(got, 10);
	assert_int_equal(buf[0], 'z');
	/* The old body's range was given back; the new one is elsewhere. */
	assert_int_equal(raw_query(fx->dir, "SELECT count(*) FROM dead_bodies"), 0);
	assert_int_equal(raw_query(fx->dir, "SELECT body_off FROM messages WHERE body_pack"),
			 600000 / 4096 * 4096 + 4096);
	assert_true(pack_blocks(fx->dir) < 2 * 600000);

	/* An empty body is a body. */
	int64_t e = add_msg(fx->s, fx->inbox, 2, "empty.eml", 0);
	OK(store_body_begin(fx->s, e, 0, &w, NULL));
	OK(store_body_write(w, "", 0));
	assert_int_equal(store_body_write(w, "x", 1), -1);
	store_body_end(&w, false);
	OK(store_body_begin(fx->s, e, 0, &w, NULL));
	OK(store_body_end(&w, true));
	got = 9;
	OK(store_body_read(fx->s, e, 0, buf, sizeof(buf), &got));
	assert_int_equal(got, 0);
	struct store_msg r;
	OK(store_msg_get(fx->s, e, &r));
	assert_true(r.has_body);
}

/* ---- packs ---- */

static uint64_t
size_of(const char *path)
{
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	return (uint64_t)st.st_size;
}

static void
test_body_packs(void **state)
{
	struct fx *fx = *state;
	char path[256];
	/* Two handles writing at once append to two packs, each body whole and aligned. */
	struct store *s2 = open_ok(fx->dir);
	int64_t a = add_msg(fx->s, fx->inbox, 1, "a.eml", 300001);
	int64_t b = add_msg(fx->s, fx->inbox, 2, "b.eml", 5000);
	struct store_body_writer *wa = NULL, *wb = NULL;
	OK(store_body_begin(fx->s, a, 300001, &wa, NULL));
	OK(store_body_begin(s2, b, 5000, &wb, NULL));
	/* One writer per handle at a time. */
	struct store_body_writer *w3 = NULL;
	assert_int_equal(store_body_begin(fx->s, b, 5000, &w3, NULL), -1);
	assert_null(w3);
	unsigned char buf[1000];
	for (uint64_t off = 0; off < 300001; off += 1000) {
		size_t n = 300001 - off < 1000 ? (size_t)(300001 - off) : 1000;
		for (size_t i = 0; i < n; i++)
			buf[i] = pat(a, off + i);
		OK(store_body_write(wa, buf, n));
		if (off < 5000) {
			for (size_t i = 0; i < 1000; i++)
				buf[i] = pat(b, off + i);
			OK(store_body_write(wb, buf, 1000));
		}
	}
	OK(store_body_end(&wb, true));
	OK(store_body_end(&wa, true));
	assert_true(check_body(fx->s, a, 300001, 4096));
	assert_true(check_body(s2, b, 5000, 333));
	assert_true(check_body(s2, a, 300001, 128 * 1024));
	assert_int_equal(raw_query(fx->dir, "SELECT count(DISTINCT body_pack) FROM messages"), 2);
	/* The next body of a handle goes into its pack after the last, aligned. */
	int64_t c = add_msg(fx->s, fx->inbox, 3, "c.eml", 10);
	OK(put_body(fx->s, c, 10, 3, NULL));
	assert_true(check_body(s2, c, 10, 4));
	sqlite3 *db = raw_open(fx->dir);
	char sql[160];
	snprintf(sql, sizeof(sql), "SELECT body_off FROM messages WHERE id = %" PRId64, c);
	assert_int_equal(raw_int(db, sql), (300001 + 4095) / 4096 * 4096);
	snprintf(sql, sizeof(sql),
		 "SELECT count(*) FROM messages WHERE body_pack = (SELECT body_pack FROM"
		 " messages WHERE id = %" PRId64 ")",
		 a);
	assert_int_equal(raw_int(db, sql), 2);
	sqlite3_close(db);
	store_close(&s2);
	/* Private: the directory 0700, the packs 0600, whatever the umask. */
	snprintf(path, sizeof(path), "%s/bodies", fx->dir);
	assert_int_equal(mode_of(path), 0700);
	snprintf(path, sizeof(path), "%s/bodies/1.pack", fx->dir);
	assert_int_equal(mode_of(path), 0600);
	snprintf(path, sizeof(path), "%s/bodies/2.pack", fx->dir);
	assert_int_equal(mode_of(path), 0600);
}

/* A crash (here: a handle closed with its transaction open, and a pack nobody knows) leaves
 * bytes no row vouches for; the sweep at the next start removes them. */
static void
test_body_sweep(void **state)
{
	struct fx *fx = *state;
	char path[256];
	int64_t a = add_msg(fx->s, fx->inbox, 1, "a.eml", 70000);
	int64_t b = add_msg(fx->s, fx->inbox, 2, "b.eml", 90000);
	OK(put_body(fx->s, a, 70000, 7000, NULL));
	OK(store_begin(fx->s));
	OK(put_body(fx->s, b, 90000, 9000, NULL));
	store_close(&fx->s); /* never committed */
	snprintf(path, sizeof(path), "%s/bodies/1.pack", fx->dir);
	assert_true(size_of(path) > 70000 + 90000);
	snprintf(path, sizeof(path), "%s/bodies/77.pack", fx->dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs("junk", f);
	fclose(f);
	snprintf(path, sizeof(path), "%s/bodies/notes.txt", fx->dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fclose(f);

	fx->s = open_ok(fx->dir);
	uint64_t removed = 9;
	OK(store_body_sweep(fx->s, &removed));
	assert_int_equal(removed, 1);
	snprintf(path, sizeof(path), "%s/bodies/77.pack", fx->dir);
	assert_int_equal(access(path, F_OK), -1);
	snprintf(path, sizeof(path), "%s/bodies/notes.txt", fx->dir);
	assert_int_equal(access(path, F_OK), 0); /* not ours: left alone */
	snprintf(path, sizeof(path), "%s/bodies/1.pack", fx->dir);
	assert_int_equal(size_of(path), 70000);
	assert_true(check_body(fx->s, a, 70000, 65536));
	unsigned char buf[8];
	size_t got;
	assert_int_equal(store_body_read(fx->s, b, 0, buf, sizeof(buf), &got), 1);
	/* The body is fetched again and lands after the first. */
	OK(put_body(fx->s, b, 90000, 9000, NULL));
	assert_true(check_body(fx->s, b, 90000, 8192));
	assert_true(check_body(fx->s, a, 70000, 8192));
	OK(store_body_sweep(fx->s, &removed));
	assert_int_equal(removed, 0);

	/* A pack cut short (a crash of the machine): its bodies are not served. */
	assert_int_equal(truncate(path, 80000), 0);
	assert_int_equal(store_body_read(fx->s, b, 10000, buf, sizeof(buf), &got), 1);
	assert_false(check_body(fx->s, b, 90000, 8192));
	assert_true(check_body(fx->s, a, 70000, 8192));
	/* A pack that vanished: not served either, and no error. */
	assert_int_equal(unlink(path), 0);
	store_close(&fx->s);
	fx->s = open_ok(fx->dir);
	assert_int_equal(store_body_read(fx->s, a, 0, buf, sizeof(buf), &got), 1);
}

/* The blocks of a deleted message go when the deletion commits, not before. */
static void
test_body_delete_txn(void **state)
{
	struct fx *fx = *state;
	struct store *s2 = open_ok(fx->dir);
	int64_t a = add_msg(fx->s, fx->inbox, 1, "a.eml", 500000);
	OK(put_body(fx->s, a, 500000, 65536, NULL));
	uint64_t full = pack_blocks(fx->dir);
	assert_true(full >= 500000);

	OK(store_begin(fx->s));
	OK(store_msg_delete(fx->s, a));
	assert_true(check_body(s2, a, 500000, 128 * 1024)); /* others still see it */
	store_rollback(fx->s);
	assert_true(check_body(fx->s, a, 500000, 128 * 1024));
	assert_int_equal(pack_blocks(fx->dir), full);
	assert_int_equal(raw_query(fx->dir, "SELECT count(*) FROM dead_bodies"), 0);

	OK(store_begin(fx->s));
	OK(store_msg_delete(fx->s, a));
	assert_int_equal(pack_blocks(fx->dir), full);
	OK(store_commit(fx->s));
	assert_true(pack_blocks(fx->dir) + 495000 <= full);
	assert_int_equal(raw_query(fx->dir, "SELECT count(*) FROM dead_bodies"), 0);
	unsigned char buf[8];
	size_t got;
	assert_int_equal(store_body_read(s2, a, 0, buf, sizeof(buf), &got), 1);
	store_close(&s2);
}

/* A cache of schema version 1 (bodies in a table of the database) is migrated: its bodies
 * are still served, and one written again moves to a pack. */
static void
test_migrate_v1(void **state)
{
	(void)state;
	char dir[64], path[128];
	int64_t acct, top, inbox;
	make_tmp(dir, sizeof(dir));
	struct store *s = open_ok(dir);
	struct fx fxs = {.s = s}, *fx = &fxs;
	OK(store_account_ensure(s, "personal", &acct));
	OK(store_folder_ensure(s, acct, 0, "personal", STORE_FOLDER_ACCOUNT, "", 0, 0, &top));
	OK(store_folder_ensure(s, acct, top, "INBOX", STORE_FOLDER_MAILBOX, "INBOX", '/', 0,
			       &inbox));
	int64_t id = add_msg(s, inbox, 1, "old.eml", 11);
	int64_t gone = add_msg(s, inbox, 2, "gone.eml", 3);
	store_close(&s);
	/* Back to version 1, as an older mailfs left it. */
	char sql[2048];
	snprintf(sql, sizeof(sql),
		 "DROP INDEX messages_unbound; DROP TRIGGER setaside_msg; DROP TRIGGER setaside_folder; DROP INDEX messages_empty;"
		 " DROP TABLE setaside; DROP TRIGGER messages_au_folder; DROP TRIGGER messages_au_name;"
		 " DROP INDEX messages_prev; DROP INDEX messages_scratch; DROP TABLE journal;"
		 " ALTER TABLE messages DROP COLUMN state;"
		 " ALTER TABLE messages DROP COLUMN orig_folder;"
		 " ALTER TABLE messages DROP COLUMN orig_uid;"
		 " ALTER TABLE messages DROP COLUMN mtime_set;"
		 " ALTER TABLE messages DROP COLUMN prev_name;"
		 " ALTER TABLE folders DROP COLUMN local;"
		 " DROP TRIGGER messages_ad_body; DROP TRIGGER messages_au_body;"
		 " DROP TABLE dead_bodies; DROP TABLE packs;"
		 " ALTER TABLE messages DROP COLUMN body_pack;"
		 " ALTER TABLE messages DROP COLUMN body_off;"
		 " INSERT INTO bodies(msg_id, data) VALUES (%" PRId64 ", CAST('legacy body'"
		 " AS BLOB)), (%" PRId64 ", CAST('old' AS BLOB));"
		 " UPDATE messages SET has_body = 1; PRAGMA user_version = 1",
		 id, gone);
	raw_exec(dir, sql);
	snprintf(path, sizeof(path), "%s/bodies", dir);
	assert_int_equal(rmdir(path), 0);

	s = fx->s = open_ok(dir);
	assert_int_equal(raw_query(dir, "PRAGMA user_version"), 5);
	OK(store_body_sweep(s, NULL));
	char buf[32];
	size_t got;
	OK(store_body_read(s, id, 0, buf, sizeof(buf), &got));
	assert_int_equal(got, 11);
	assert_memory_equal(buf, "legacy body", 11);
	OK(store_body_read(s, id, 7, buf, 2, &got));
	assert_int_equal(got, 2);
	assert_memory_equal(buf, "bo", 2);
	struct store_stats st;
	OK(store_stats(s, acct, &st));
	assert_int_equal(st.bodies, 2);
	assert_int_equal(st.body_bytes, 14);
	/* Deleting a message with a legacy body works as before. */
	OK(store_msg_delete(s, gone));
	assert_int_equal(raw_query(dir, "SELECT count(*) FROM bodies"), 1);
	/* Written again: from a pack now, and the old copy is gone. */
	OK(put_body(s, id, 11, 4, NULL));
	assert_true(check_body(s, id, 11, 5));
	assert_int_equal(raw_query(dir, "SELECT count(*) FROM bodies"), 0);
	assert_int_equal(raw_query(dir, "SELECT count(*) FROM messages WHERE body_pack"), 1);
	store_close(&s);
	rm_tree(dir);
}


int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_body_small, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_body_large, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_body_errors, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_body_size_correction, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_body_rewrite_empty, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_body_packs, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_body_sweep, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_body_delete_txn, setup, teardown),
	    cmocka_unit_test(test_migrate_v1),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
