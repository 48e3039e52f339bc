/* setaside.c - the record of messages the server keeps failing to send (see setaside.h). */
#include "cache/setaside.h"

#include <stdio.h>
#include <string.h>

#include "cache/store-int.h"

static void
copy_text(char *out, size_t outlen, sqlite3_stmt *st, int col)
{
	const unsigned char *t = sqlite3_column_text(st, col);
	snprintf(out, outlen, "%s", t ? (const char *)t : "");
}

int
store_aside_fail(struct store *s, int64_t folder_id, uint32_t uid, const char *reason,
		 unsigned *failures_r)
{
	sqlite3_stmt *st = store_stmt(s, ST_ASIDE_FAIL);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, folder_id);
	sqlite3_bind_int64(st, 2, uid);
	sqlite3_bind_text(st, 3, reason, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 4, 0);
	int ret = -1;
	if (sqlite3_step(st) == SQLITE_ROW) {
		*failures_r = (unsigned)sqlite3_column_int64(st, 0);
		ret = 0;
	} else {
		store_db_err(s, "set aside");
	}
	store_finish(st);
	return ret;
}

int
store_aside_hold(struct store *s, int64_t folder_id, uint32_t uid, int64_t retry_at)
{
	sqlite3_stmt *st = store_stmt(s, ST_ASIDE_RETRY);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, folder_id);
	sqlite3_bind_int64(st, 2, uid);
	sqlite3_bind_int64(st, 3, retry_at);
	return store_exec(s, st, "set aside");
}

int
store_aside_clear(struct store *s, int64_t folder_id, uint32_t uid)
{
	sqlite3_stmt *st = store_stmt(s, ST_ASIDE_CLEAR);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, folder_id);
	sqlite3_bind_int64(st, 2, uid);
	return store_exec(s, st, "clear set-aside");
}

int
store_aside_uids(struct store *s, int64_t folder_id, int64_t now, unsigned min_failures,
		 uint32_t *uids, size_t max, size_t *n_r, size_t *rows_r)
{
	sqlite3_stmt *st = store_stmt(s, ST_ASIDE_UIDS);
	*n_r = 0;
	*rows_r = 0;
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, folder_id);
	sqlite3_bind_int64(st, 2, now);
	sqlite3_bind_int64(st, 3, min_failures);
	/* A folder with more rows than `max` still counts as having rows. */
	sqlite3_bind_int64(st, 4, (int64_t)max + 1);
	size_t n = 0, rows = 0;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		rows++;
		if (sqlite3_column_int64(st, 1) != 0 && n < max)
			uids[n++] = (uint32_t)sqlite3_column_int64(st, 0);
	}
	int ret = 0;
	if (rc != SQLITE_DONE)
		ret = store_db_err(s, "set-aside messages");
	store_finish(st);
	*n_r = n;
	*rows_r = rows;
	return ret;
}

int
store_aside_get(struct store *s, int64_t folder_id, uint32_t uid, struct store_aside *r)
{
	sqlite3_stmt *st = store_stmt(s, ST_ASIDE_GET);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, folder_id);
	sqlite3_bind_int64(st, 2, uid);
	int ret, rc = sqlite3_step(st);
	memset(r, 0, sizeof(*r));
	if (rc == SQLITE_ROW) {
		r->folder_id = folder_id;
		r->uid = uid;
		r->failures = (unsigned)sqlite3_column_int64(st, 0);
		copy_text(r->reason, sizeof(r->reason), st, 1);
		r->since = sqlite3_column_int64(st, 2);
		r->retry_at = sqlite3_column_int64(st, 3);
		ret = 0;
	} else {
		ret = rc == SQLITE_DONE ? 1 : store_db_err(s, "set-aside message");
	}
	store_finish(st);
	return ret;
}

int
store_aside_each(struct store *s, int64_t account_id, size_t max,
		 int (*cb)(void *ctx, const struct store_aside *a), void *ctx)
{
	sqlite3_stmt *st = store_stmt(s, ST_ASIDE_EACH);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, account_id);
	sqlite3_bind_int64(st, 2, (int64_t)max);
	int rc;
	struct store_aside a;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		a.folder_id = sqlite3_column_int64(st, 0);
		a.uid = (uint32_t)sqlite3_column_int64(st, 1);
		a.failures = (unsigned)sqlite3_column_int64(st, 2);
		copy_text(a.reason, sizeof(a.reason), st, 3);
		a.since = sqlite3_column_int64(st, 4);
		a.retry_at = sqlite3_column_int64(st, 5);
		copy_text(a.name, sizeof(a.name), st, 6);
		copy_text(a.folder, sizeof(a.folder), st, 7);
		if (cb(ctx, &a) != 0)
			break;
	}
	int ret = rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : store_db_err(s, "set-aside messages");
	store_finish(st);
	return ret;
}
