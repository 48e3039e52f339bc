/* store-fx.h - the fixture and helpers the unit tests of cache/store.c share (test-store.c,
 * test-store-body.c): a cache with one account and its INBOX, messages, bodies written
 * and checked against a pattern, raw SQL on the database, pack file sizes. */
#ifndef MAILFS_TESTS_STORE_FX_H
#define MAILFS_TESTS_STORE_FX_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cache/store.h"
#include "rmtree.h"

/* ---- helpers ---- */

struct fx {
	char dir[64];
	struct store *s;
	int64_t acct, top, inbox;
};

static inline void
make_tmp(char *dir, size_t len)
{
	snprintf(dir, len, "/tmp/test-store-XXXXXX");
	assert_non_null(mkdtemp(dir));
}

static inline struct store *
open_ok(const char *dir)
{
	struct store *s = NULL;
	char err[512] = "";
	int rc = store_open(dir, &s, err, sizeof(err));
	if (rc != 0)
		print_error("store_open: %s\n", err);
	assert_int_equal(rc, 0);
	assert_non_null(s);
	return s;
}

static inline int
setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	assert_non_null(fx);
	make_tmp(fx->dir, sizeof(fx->dir));
	fx->s = open_ok(fx->dir);
	assert_int_equal(store_account_ensure(fx->s, "personal", &fx->acct), 0);
	assert_int_equal(store_folder_ensure(fx->s, fx->acct, 0, "personal", STORE_FOLDER_ACCOUNT,
					     "", 0, 0, &fx->top),
			 0);
	assert_int_equal(store_folder_ensure(fx->s, fx->acct, fx->top, "INBOX",
					     STORE_FOLDER_MAILBOX, "INBOX", '/', 0, &fx->inbox),
			 0);
	*state = fx;
	return 0;
}

static inline int
teardown(void **state)
{
	struct fx *fx = *state;
	store_close(&fx->s);
	assert_null(fx->s);
	rm_tree(fx->dir);
	free(fx);
	return 0;
}

#define OK(expr)                                                                                   \
	do {                                                                                       \
		int rc_ = (expr);                                                                  \
		if (rc_ != 0)                                                                      \
			print_error("%s: %d: %s\n", #expr, rc_, store_errmsg(fx->s));              \
		assert_int_equal(rc_, 0);                                                          \
	} while (0)

static inline int64_t
add_msg(struct store *s, int64_t folder, uint32_t uid, const char *name, uint64_t size)
{
	struct store_msg m = {.folder_id = folder,
			      .uid = uid,
			      .internaldate = 1700000000 + uid,
			      .size = size,
			      .modseq = 1};
	snprintf(m.name, sizeof(m.name), "%s", name);
	snprintf(m.flags, sizeof(m.flags), "\\Seen");
	snprintf(m.message_id, sizeof(m.message_id), "<%u@example.com>", uid);
	int rc = store_msg_upsert(s, &m);
	if (rc != 0)
		print_error("upsert %s: %s\n", name, store_errmsg(s));
	assert_int_equal(rc, 0);
	assert_true(m.id > 0);
	return m.id;
}

static inline unsigned char
pat(int64_t id, uint64_t off)
{
	return (unsigned char)(id * 131 + off * 7 + (off >> 9));
}

/* Write a body of `size` bytes in pieces of `piece`. */
static inline int
put_body(struct store *s, int64_t id, uint64_t size, size_t piece, bool *changed)
{
	struct store_body_writer *w = NULL;
	unsigned char *buf = malloc(piece);
	int rc = store_body_begin(s, id, size, &w, changed);
	assert_non_null(buf);
	if (rc != 0) {
		free(buf);
		return rc;
	}
	for (uint64_t off = 0; off < size;) {
		size_t n = size - off < piece ? (size_t)(size - off) : piece;
		for (size_t i = 0; i < n; i++)
			buf[i] = pat(id, off + i);
		if (store_body_write(w, buf, n) != 0) {
			store_body_end(&w, false);
			free(buf);
			return -1;
		}
		off += n;
	}
	free(buf);
	return store_body_end(&w, true);
}

/* Read the whole body in `chunk` pieces and compare it with the pattern. */
static inline bool
check_body(struct store *s, int64_t id, uint64_t size, size_t chunk)
{
	unsigned char *buf = malloc(chunk);
	uint64_t off = 0;
	bool ok = true;
	assert_non_null(buf);
	for (;;) {
		size_t got = 0;
		int rc = store_body_read(s, id, off, buf, chunk, &got);
		if (rc != 0) {
			ok = false;
			break;
		}
		for (size_t i = 0; i < got && ok; i++)
			ok = buf[i] == pat(id, off + i);
		off += got;
		if (got < chunk || !ok)
			break;
	}
	free(buf);
	return ok && off == size;
}

static inline sqlite3 *
raw_open(const char *dir)
{
	char path[128];
	sqlite3 *db = NULL;
	snprintf(path, sizeof(path), "%s/mailfs.db", dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 10000);
	return db;
}

static inline int64_t
raw_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st = NULL;
	int64_t v = -1;
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static inline int64_t
raw_query(const char *dir, const char *sql)
{
	sqlite3 *db = raw_open(dir);
	int64_t v = raw_int(db, sql);
	sqlite3_close(db);
	return v;
}

static inline void
raw_exec(const char *dir, const char *sql)
{
	sqlite3 *db = raw_open(dir);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

/* Bytes the pack files of the cache in dir take on disk (their allocated blocks). */
static inline uint64_t
pack_blocks(const char *dir)
{
	char path[256];
	uint64_t sum = 0;
	snprintf(path, sizeof(path), "%s/bodies", dir);
	DIR *d = opendir(path);
	assert_non_null(d);
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		struct stat st;
		if (!strstr(e->d_name, ".pack"))
			continue;
		snprintf(path, sizeof(path), "%s/bodies/%s", dir, e->d_name);
		assert_int_equal(stat(path, &st), 0);
		sum += (uint64_t)st.st_blocks * 512;
	}
	closedir(d);
	return sum;
}

static inline mode_t
mode_of(const char *path)
{
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	return st.st_mode & 07777;
}

#endif
