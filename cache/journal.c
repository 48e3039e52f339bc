/* journal.c - the journal table (see journal.h). Rows only: what an entry means on the
 * server is cache/replay.c's business. */
#include "cache/journal.h"
#include "cache/store-int.h"

#include <stdio.h>
#include <string.h>

int
journal_add(struct store *s, int64_t account_id, enum journal_op op, int64_t msg_id,
	    int64_t folder_id, const char *server_name, uint32_t uid)
{
	sqlite3_stmt *st = store_stmt(s, ST_J_ADD);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, account_id);
	sqlite3_bind_int(st, 2, (int)op);
	sqlite3_bind_int64(st, 3, msg_id);
	sqlite3_bind_int64(st, 4, folder_id);
	sqlite3_bind_text(st, 5, server_name ? server_name : "", -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 6, uid);
	return store_exec(s, st, "journal add");
}

static void
copy_text(char *dst, size_t dstlen, sqlite3_stmt *st, int col)
{
	const unsigned char *t = sqlite3_column_text(st, col);
	snprintf(dst, dstlen, "%s", t ? (const char *)t : "");
}

int
journal_next(struct store *s, int64_t account_id, int64_t after_id, struct journal_entry *e)
{
	sqlite3_stmt *st = store_stmt(s, ST_J_NEXT);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, account_id);
	sqlite3_bind_int64(st, 2, after_id);
	int rc = sqlite3_step(st);
	int ret = rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? 1 : store_db_err(s, "journal");
	if (ret == 0) {
		memset(e, 0, sizeof(*e));
		e->id = sqlite3_column_int64(st, 0);
		e->account_id = sqlite3_column_int64(st, 1);
		e->op = (enum journal_op)sqlite3_column_int(st, 2);
		e->msg_id = sqlite3_column_int64(st, 3);
		e->folder_id = sqlite3_column_int64(st, 4);
		copy_text(e->server_name, sizeof(e->server_name), st, 5);
		e->uid = (uint32_t)sqlite3_column_int64(st, 6);
		e->uidnext = (uint32_t)sqlite3_column_int64(st, 7);
		e->attempts = (unsigned)sqlite3_column_int(st, 8);
		copy_text(e->error, sizeof(e->error), st, 9);
	}
	store_finish(st);
	return ret;
}

int
journal_update(struct store *s, const struct journal_entry *e)
{
	sqlite3_stmt *st = store_stmt(s, ST_J_SET);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, e->id);
	sqlite3_bind_int64(st, 2, e->uidnext);
	sqlite3_bind_int(st, 3, (int)e->attempts);
	sqlite3_bind_text(st, 4, e->error, -1, SQLITE_STATIC);
	return store_exec(s, st, "journal update");
}

int
journal_done(struct store *s, int64_t id)
{
	sqlite3_stmt *st = store_stmt(s, ST_J_DONE);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	return store_exec(s, st, "journal done");
}

int
journal_count(struct store *s, int64_t account_id, uint64_t *n_r, char *error, size_t errlen)
{
	sqlite3_stmt *st = store_stmt(s, ST_J_COUNT);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, account_id);
	int rc = sqlite3_step(st);
	*n_r = rc == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(st, 0) : 0;
	store_finish(st);
	if (rc != SQLITE_ROW)
		return store_db_err(s, "journal count");
	if (error == NULL || errlen == 0)
		return 0;
	error[0] = '\0';
	st = store_stmt(s, ST_J_ERROR);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, account_id);
	if (sqlite3_step(st) == SQLITE_ROW)
		copy_text(error, errlen, st, 0);
	store_finish(st);
	return 0;
}
