/* store-pop3.c - the server identities of POP3 message rows (see store.h).
 *
 * POP3 has no UIDs: a row keeps a local number (in its file name, like an IMAP UID) and
 * this table maps it to the UIDL string. The table is created on first use; its rows go
 * with their message rows (ON DELETE CASCADE). Knows nothing of the protocol.
 */
#include <stdio.h>
#include <string.h>

#include "cache/store-int.h"

int
store_pop3_init(struct store *s)
{
	char *msg = NULL;
	int rc = sqlite3_exec(s->db,
			      "CREATE TABLE IF NOT EXISTS pop3_msgs ("
			      " msg_id INTEGER PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE,"
			      " folder_id INTEGER NOT NULL, uidl TEXT NOT NULL,"
			      " msgno INTEGER NOT NULL DEFAULT 0, seen INTEGER NOT NULL DEFAULT 0,"
			      " dele INTEGER NOT NULL DEFAULT 0);"
			      "CREATE INDEX IF NOT EXISTS pop3_msgs_uidl ON pop3_msgs(folder_id, uidl);",
			      NULL, NULL, &msg);
	if (rc != SQLITE_OK) {
		snprintf(s->err, sizeof(s->err), "pop3 table: %s", msg ? msg : sqlite3_errstr(rc));
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

int
store_pop3_add(struct store *s, int64_t msg_id, int64_t folder_id, const char *uidl,
	       uint32_t msgno, int64_t pass)
{
	sqlite3_stmt *st = store_stmt(s, ST_POP3_ADD);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, msg_id);
	sqlite3_bind_int64(st, 2, folder_id);
	sqlite3_bind_text(st, 3, uidl, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, msgno);
	sqlite3_bind_int64(st, 5, pass);
	return store_exec(s, st, "pop3 add");
}

int
store_pop3_seen(struct store *s, int64_t folder_id, const char *uidl, uint32_t msgno,
		int64_t pass, int64_t *msg_id_r)
{
	sqlite3_stmt *st = store_stmt(s, ST_POP3_SEEN);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, folder_id);
	sqlite3_bind_text(st, 2, uidl, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, pass);
	sqlite3_bind_int64(st, 4, msgno);
	int ret = 1;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		*msg_id_r = sqlite3_column_int64(st, 0);
		ret = 0;
	}
	if (rc != SQLITE_DONE) {
		snprintf(s->err, sizeof(s->err), "pop3 seen: %s", sqlite3_errmsg(s->db));
		ret = -1;
	}
	store_finish(st);
	return ret;
}

static int
row(struct store *s, sqlite3_stmt *st, struct store_pop3 *r, const char *what)
{
	int rc = sqlite3_step(st);
	int ret = 1;
	if (rc == SQLITE_ROW) {
		memset(r, 0, sizeof(*r));
		r->msg_id = sqlite3_column_int64(st, 0);
		r->uid = (uint32_t)sqlite3_column_int64(st, 1);
		snprintf(r->uidl, sizeof(r->uidl), "%s", (const char *)sqlite3_column_text(st, 2));
		r->msgno = (uint32_t)sqlite3_column_int64(st, 3);
		r->seen = sqlite3_column_int64(st, 4);
		r->dele = sqlite3_column_int(st, 5);
		r->size = (uint64_t)sqlite3_column_int64(st, 6);
		const unsigned char *mid = sqlite3_column_text(st, 7);
		snprintf(r->message_id, sizeof(r->message_id), "%s", mid ? (const char *)mid : "");
		r->has_body = sqlite3_column_int(st, 8) != 0;
		ret = 0;
	} else if (rc != SQLITE_DONE) {
		snprintf(s->err, sizeof(s->err), "%s: %s", what, sqlite3_errmsg(s->db));
		ret = -1;
	}
	store_finish(st);
	return ret;
}

int
store_pop3_get(struct store *s, int64_t msg_id, struct store_pop3 *r)
{
	sqlite3_stmt *st = store_stmt(s, ST_POP3_GET);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, msg_id);
	return row(s, st, r, "pop3 get");
}

int
store_pop3_next(struct store *s, int64_t folder_id, int64_t after_id, struct store_pop3 *r)
{
	sqlite3_stmt *st = store_stmt(s, ST_POP3_NEXT);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, folder_id);
	sqlite3_bind_int64(st, 2, after_id);
	return row(s, st, r, "pop3 next");
}

int
store_pop3_rekey(struct store *s, int64_t msg_id, const char *uidl, uint32_t msgno,
		 int64_t pass)
{
	sqlite3_stmt *st = store_stmt(s, ST_POP3_REKEY);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, msg_id);
	sqlite3_bind_text(st, 2, uidl, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, msgno);
	sqlite3_bind_int64(st, 4, pass);
	return store_exec(s, st, "pop3 rekey");
}

int
store_pop3_set_dele(struct store *s, int64_t msg_id, int dele)
{
	sqlite3_stmt *st = store_stmt(s, ST_POP3_DELE);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, msg_id);
	sqlite3_bind_int(st, 2, dele);
	return store_exec(s, st, "pop3 dele");
}

int
store_pop3_exists(struct store *s, int64_t folder_id, const char *uidl)
{
	sqlite3_stmt *st = store_stmt(s, ST_POP3_FIND);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, folder_id);
	sqlite3_bind_text(st, 2, uidl, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	int ret = rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? 1 : -1;
	if (ret < 0)
		snprintf(s->err, sizeof(s->err), "pop3 find: %s", sqlite3_errmsg(s->db));
	store_finish(st);
	return ret;
}

int
store_pop3_vanished(struct store *s, int64_t folder_id, int64_t pass, uint64_t *n_r)
{
	sqlite3_stmt *st = store_stmt(s, ST_POP3_VANISHED);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, folder_id);
	sqlite3_bind_int64(st, 2, pass);
	int rc = sqlite3_step(st);
	*n_r = rc == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(st, 0) : 0;
	if (rc != SQLITE_ROW)
		snprintf(s->err, sizeof(s->err), "pop3 vanished: %s", sqlite3_errmsg(s->db));
	store_finish(st);
	return rc == SQLITE_ROW ? 0 : -1;
}

int
store_pop3_match(struct store *s, int64_t folder_id, int64_t pass, const char *message_id,
		 uint64_t size, int64_t *msg_id_r)
{
	sqlite3_stmt *st = store_stmt(s, ST_POP3_MATCH);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, folder_id);
	sqlite3_bind_int64(st, 2, pass);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)size);
	sqlite3_bind_text(st, 4, message_id, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	int ret = rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? 1 : -1;
	if (ret == 0)
		*msg_id_r = sqlite3_column_int64(st, 0);
	else if (ret < 0)
		snprintf(s->err, sizeof(s->err), "pop3 match: %s", sqlite3_errmsg(s->db));
	store_finish(st);
	return ret;
}
