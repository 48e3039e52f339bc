/* outbox.c - the durable send queue (see outbox.h).
 *
 * One table in CACHE_DIR/outbox.db. synchronous = FULL: a COMMIT returns after the WAL is
 * fsynced, so a row that says QUEUED survives a power loss, content included. Content is a
 * BLOB written in pieces with incremental blob I/O (never the whole message in memory);
 * the prepared header (Bcc removed, Date and Message-ID added) and the envelope are worked
 * out once, at close, and stored with it, so every attempt sends the same bytes with the
 * same Message-ID and the receiver can tell a duplicate from the crash window.
 *
 * Names: outbox/ names are unique among WRITING and QUEUED rows of an account, failed/
 * names among FAILED rows (partial unique indexes); SENT rows have no visible name.
 */
#include "cache/outbox.h"
#include "cache/dbfile.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include "net/log.h"
#include "net/msgprep.h"

#define OUTBOX_DB_NAME "outbox.db"
#define BUSY_MS 10000
#define CHUNK (64 * 1024)
/* What outbox_submit reads to find the header block. */
#define HEAD_READ (MSGPREP_MAX_HEADER + 4096)

static const char *const migrations[] = {
    /* 1 */
    "CREATE TABLE outbox ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  account TEXT NOT NULL,"
    "  name TEXT NOT NULL,"
    "  state INTEGER NOT NULL,"
    "  mtime INTEGER NOT NULL,"
    "  created INTEGER NOT NULL,"
    "  size INTEGER NOT NULL DEFAULT 0,"
    "  content BLOB,"
    "  header BLOB,"         /* prepared header block, CRLF, ends with the empty line */
    "  body_offset INTEGER NOT NULL DEFAULT 0,"
    "  send_size INTEGER NOT NULL DEFAULT 0," /* header + body as sent (CRLF) */
    "  env_from TEXT NOT NULL DEFAULT '',"
    "  rcpts TEXT NOT NULL DEFAULT ''," /* one address per line */
    "  smtputf8 INTEGER NOT NULL DEFAULT 0,"
    "  body_8bit INTEGER NOT NULL DEFAULT 0,"
    "  message_id TEXT NOT NULL DEFAULT '',"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  next_try INTEGER NOT NULL DEFAULT 0,"
    "  status TEXT NOT NULL DEFAULT '',"
    "  error_text TEXT NOT NULL DEFAULT '',"
    "  need_copy INTEGER NOT NULL DEFAULT 0,"
    "  msg_deleted INTEGER NOT NULL DEFAULT 0,"
    "  error_deleted INTEGER NOT NULL DEFAULT 0);"
    "CREATE UNIQUE INDEX outbox_names ON outbox(account, name) WHERE state IN (0, 1);"
    "CREATE UNIQUE INDEX failed_names ON outbox(account, name) WHERE state = 2;"
    "CREATE INDEX outbox_due ON outbox(account, state, next_try);",
};
#define SCHEMA_VERSION ((int)(sizeof(migrations) / sizeof(migrations[0])))

#define ITEM_COLS                                                                                  \
	"id, account, name, state, size, mtime, attempts, next_try, status, msg_deleted,"         \
	" error_deleted"

struct outbox {
	sqlite3 *db;
	char path[4096];
	char dir[4096]; /* CACHE_DIR/outbox-writing: the files being written */
	char errmsg[512];
};

static int __attribute__((format(printf, 2, 3)))
ob_fail(struct outbox *ob, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(ob->errmsg, sizeof(ob->errmsg), fmt, ap);
	va_end(ap);
	return -1;
}

static int
db_fail(struct outbox *ob, const char *what)
{
	return ob_fail(ob, "%s: %s: %s", ob->path, what, sqlite3_errmsg(ob->db));
}

const char *
outbox_errmsg(const struct outbox *ob)
{
	return ob->errmsg;
}

static int
exec(struct outbox *ob, const char *sql)
{
	return sqlite3_exec(ob->db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : db_fail(ob, sql);
}

static int64_t
query_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st = NULL;
	int64_t v = -1;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static int
migrate(struct outbox *ob)
{
	if (query_int(ob->db, "PRAGMA user_version") == SCHEMA_VERSION)
		return 0;
	if (exec(ob, "BEGIN IMMEDIATE") < 0)
		return -1;
	int64_t v = query_int(ob->db, "PRAGMA user_version");
	if (v < 0 || v > SCHEMA_VERSION) {
		exec(ob, "ROLLBACK");
		return ob_fail(ob, "%s: schema version %" PRId64 " is not one this mailfs knows",
			       ob->path, v);
	}
	for (int i = (int)v; i < SCHEMA_VERSION; i++)
		if (exec(ob, migrations[i]) < 0) {
			exec(ob, "ROLLBACK");
			return -1;
		}
	char sql[64];
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", SCHEMA_VERSION);
	if (exec(ob, sql) < 0 || exec(ob, "COMMIT") < 0) {
		exec(ob, "ROLLBACK");
		return -1;
	}
	return 0;
}

int
outbox_open(const char *cache_dir, struct outbox **ob_r, char *err, size_t errlen)
{
	*ob_r = NULL;
	struct outbox *ob = calloc(1, sizeof(*ob));
	if (ob == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	snprintf(ob->path, sizeof(ob->path), "%s/%s", cache_dir, OUTBOX_DB_NAME);
	snprintf(ob->dir, sizeof(ob->dir), "%s/%s", cache_dir, OUTBOX_WRITING_DIR);
	/* Created 0600 here: SQLite would follow the umask. */
	if (dbfile_prepare(ob->path, err, errlen) != 0) {
		free(ob);
		return -1;
	}
	if (sqlite3_open_v2(ob->path, &ob->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
			    NULL) != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", ob->path,
			 ob->db ? sqlite3_errmsg(ob->db) : "out of memory");
		sqlite3_close(ob->db);
		free(ob);
		return -1;
	}
	sqlite3_busy_timeout(ob->db, BUSY_MS);
	int64_t deadline = BUSY_MS / 50;
	/* Switching to WAL needs the file alone for a moment: retry while others open it. */
	while (exec(ob, "PRAGMA journal_mode = WAL") < 0 && deadline-- > 0)
		usleep(50 * 1000);
	if (exec(ob, "PRAGMA synchronous = FULL") < 0 || migrate(ob) < 0) {
		snprintf(err, errlen, "%s", ob->errmsg);
		outbox_close(&ob);
		return -1;
	}
	*ob_r = ob;
	return 0;
}

void
outbox_close(struct outbox **obp)
{
	struct outbox *ob = *obp;
	if (ob == NULL)
		return;
	sqlite3_close_v2(ob->db);
	free(ob);
	*obp = NULL;
}

/* Prepare, bind with a tiny format ("i" int64, "t" text, "-" skip), and step once. Returns
 * the statement positioned on its first row (SQLITE_ROW) or done; the caller finalizes. */
static sqlite3_stmt *
prep(struct outbox *ob, const char *sql)
{
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(ob->db, sql, -1, &st, NULL) != SQLITE_OK) {
		db_fail(ob, "prepare");
		return NULL;
	}
	return st;
}

static int
step_done(struct outbox *ob, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return ob_fail(ob, "%s: %s: %s", ob->path, what, sqlite3_errstr(rc));
	return 0;
}

static void
copy_text(char *out, size_t outlen, sqlite3_stmt *st, int col)
{
	const unsigned char *t = sqlite3_column_text(st, col);
	snprintf(out, outlen, "%s", t ? (const char *)t : "");
}

static void
read_item(sqlite3_stmt *st, struct outbox_item *it)
{
	memset(it, 0, sizeof(*it));
	it->id = sqlite3_column_int64(st, 0);
	copy_text(it->account, sizeof(it->account), st, 1);
	copy_text(it->name, sizeof(it->name), st, 2);
	it->state = (enum outbox_state)sqlite3_column_int(st, 3);
	it->size = (uint64_t)sqlite3_column_int64(st, 4);
	it->mtime = sqlite3_column_int64(st, 5);
	it->attempts = (unsigned)sqlite3_column_int(st, 6);
	it->next_try = sqlite3_column_int64(st, 7);
	copy_text(it->status, sizeof(it->status), st, 8);
	it->msg_deleted = sqlite3_column_int(st, 9) != 0;
	it->error_deleted = sqlite3_column_int(st, 10) != 0;
}

/* One row into *it: 0, 1 if none, -1. */
static int
one_item(struct outbox *ob, sqlite3_stmt *st, struct outbox_item *it)
{
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		read_item(st, it);
	sqlite3_finalize(st);
	if (rc == SQLITE_ROW)
		return 0;
	if (rc == SQLITE_DONE)
		return 1;
	return ob_fail(ob, "%s: %s", ob->path, sqlite3_errstr(rc));
}

static int
many_items(struct outbox *ob, sqlite3_stmt *st, struct outbox_item *items, int max)
{
	int n = 0, rc;
	while (n < max && (rc = sqlite3_step(st)) == SQLITE_ROW)
		read_item(st, &items[n++]);
	if (n < max && rc != SQLITE_DONE) {
		sqlite3_finalize(st);
		return ob_fail(ob, "%s: %s", ob->path, sqlite3_errstr(rc));
	}
	sqlite3_finalize(st);
	return n;
}

int
outbox_create(struct outbox *ob, const char *account, const char *name, int64_t mtime,
	      int64_t *id_r)
{
	sqlite3_stmt *st = prep(ob, "INSERT INTO outbox (account, name, state, mtime, created)"
				    " VALUES (?, ?, 0, ?, unixepoch())");
	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, account, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, mtime);
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc == SQLITE_CONSTRAINT)
		return 1;
	if (rc != SQLITE_DONE)
		return ob_fail(ob, "%s: create %s: %s", ob->path, name, sqlite3_errstr(rc));
	*id_r = sqlite3_last_insert_rowid(ob->db);
	return 0;
}

/* Copy `size` bytes of fd into the content blob of row id (which holds zeroblob(size)). */
static int
fill_blob(struct outbox *ob, int64_t id, int fd, uint64_t size)
{
	if (size == 0)
		return 0;
	sqlite3_blob *blob = NULL;
	if (sqlite3_blob_open(ob->db, "main", "outbox", "content", id, 1, &blob) != SQLITE_OK)
		return db_fail(ob, "open content");
	char *chunk = malloc(CHUNK);
	int ret = -1;
	if (chunk == NULL) {
		ob_fail(ob, "out of memory");
		goto out;
	}
	for (uint64_t off = 0; off < size;) {
		size_t want = size - off < CHUNK ? (size_t)(size - off) : CHUNK;
		ssize_t got = pread(fd, chunk, want, (off_t)off);
		if (got <= 0) {
			ob_fail(ob, "reading the written file: %s",
				got < 0 ? strerror(errno) : "shorter than its size");
			goto out;
		}
		if (sqlite3_blob_write(blob, chunk, (int)got, (int)off) != SQLITE_OK) {
			db_fail(ob, "write content");
			goto out;
		}
		off += (uint64_t)got;
	}
	ret = 0;
out:
	free(chunk);
	sqlite3_blob_close(blob);
	return ret;
}

/* Body bytes once sent (line ends made CRLF) and whether any is 8-bit. */
static int
measure_body(struct outbox *ob, int fd, uint64_t from, uint64_t size, uint64_t *sent_r,
	     bool *eight_r)
{
	char *in = malloc(CHUNK), *out = malloc(2 * CHUNK + 2);
	if (in == NULL || out == NULL) {
		free(in);
		free(out);
		return ob_fail(ob, "out of memory");
	}
	struct crlf_state cs = {0};
	uint64_t n = 0;
	bool eight = false;
	int ret = 0;
	for (uint64_t off = from; off < size;) {
		size_t want = size - off < CHUNK ? (size_t)(size - off) : CHUNK;
		ssize_t got = pread(fd, in, want, (off_t)off);
		if (got <= 0) {
			ret = ob_fail(ob, "reading the written file: %s",
				      got < 0 ? strerror(errno) : "shorter than its size");
			break;
		}
		for (ssize_t i = 0; i < got && !eight; i++)
			eight = (unsigned char)in[i] >= 0x80;
		n += crlf_convert(&cs, in, (size_t)got, out);
		off += (uint64_t)got;
	}
	n += crlf_finish(&cs, out);
	free(in);
	free(out);
	*sent_r = n;
	*eight_r = eight;
	return ret;
}

/* A FAILED name free in failed/: NAME, else NAME.1, NAME.2 ... */
static int
free_failed_name(struct outbox *ob, const char *account, const char *name, char *out,
		 size_t outlen)
{
	for (unsigned i = 0; i < 10000; i++) {
		if (i == 0)
			snprintf(out, outlen, "%s", name);
		else
			snprintf(out, outlen, "%.*s.%u", (int)(OUTBOX_NAME_MAX - 12), name, i);
		struct outbox_item it;
		int r = outbox_lookup(ob, account, true, out, &it);
		if (r < 0)
			return -1;
		if (r == 1)
			return 0;
	}
	return ob_fail(ob, "no free name for %s in failed/", name);
}

static char *
join_lines(char **v, size_t n)
{
	size_t len = 1;
	for (size_t i = 0; i < n; i++)
		len += strlen(v[i]) + 1;
	char *s = malloc(len), *p = s;
	if (s == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++)
		p += sprintf(p, "%s%s", i ? "\n" : "", v[i]);
	*p = '\0';
	return s;
}

int
outbox_submit(struct outbox *ob, int64_t id, const struct cfg_account *acct, int fd,
	      uint64_t size, int64_t mtime, char *why, size_t whylen)
{
	struct outbox_item it;
	int r = outbox_get(ob, id, &it);
	if (r != 0)
		return r < 0 ? -1 : ob_fail(ob, "outbox row %" PRId64 " is gone", id);
	if (size > 1000 * 1000 * 1000)
		return ob_fail(ob, "%s: larger than 1 GB", it.name);
	size_t head_len = size < HEAD_READ ? (size_t)size : HEAD_READ;
	char *head = malloc(head_len ? head_len : 1);
	if (head == NULL)
		return ob_fail(ob, "out of memory");
	ssize_t got = head_len ? pread(fd, head, head_len, 0) : 0;
	if (got < 0 || (size_t)got != head_len) {
		free(head);
		return ob_fail(ob, "reading the written file: %s",
			       got < 0 ? strerror(errno) : "shorter than its size");
	}
	struct msgprep mp;
	memset(&mp, 0, sizeof(mp));
	char unique[96];
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(unique, sizeof(unique), "%lld.%ld.%d.%" PRId64 ".mailfs", (long long)ts.tv_sec,
		 ts.tv_nsec, (int)getpid(), id);
	char reason[512] = "";
	bool is_msg = msgprep_parse(head, head_len, size, acct->from, ts.tv_sec, unique, &mp,
				    reason, sizeof(reason)) == 0;
	free(head);
	if (!is_msg && errno == ENOMEM)
		return ob_fail(ob, "out of memory");

	uint64_t body_sent = 0;
	bool eight = false;
	char *rcpts = NULL;
	int ret = -1;
	if (is_msg) {
		if (measure_body(ob, fd, mp.body_offset, size, &body_sent, &eight) < 0)
			goto out;
		/* 8BITMIME covers the whole content: raw UTF-8 in a header counts too. */
		for (size_t i = 0; i < mp.header_len && !eight; i++)
			eight = (unsigned char)mp.header[i] >= 0x80;
		rcpts = join_lines(mp.rcpts, mp.nrcpts);
		if (rcpts == NULL) {
			ob_fail(ob, "out of memory");
			goto out;
		}
	}
	if (exec(ob, "BEGIN IMMEDIATE") < 0)
		goto out;
	sqlite3_stmt *st;
	if (is_msg) {
		st = prep(ob, "UPDATE outbox SET state = 1, size = ?2, mtime = ?3,"
			      " content = zeroblob(?2), header = ?4, body_offset = ?5,"
			      " send_size = ?6, env_from = ?7, rcpts = ?8, smtputf8 = ?9,"
			      " body_8bit = ?10, message_id = ?11, next_try = 0, status = 'queued'"
			      " WHERE id = ?1 AND state = 0");
		if (st == NULL)
			goto rollback;
		sqlite3_bind_blob(st, 4, mp.header, (int)mp.header_len, SQLITE_STATIC);
		sqlite3_bind_int64(st, 5, (int64_t)mp.body_offset);
		sqlite3_bind_int64(st, 6, (int64_t)(mp.header_len + body_sent));
		sqlite3_bind_text(st, 7, mp.env_from, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 8, rcpts, -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 9, mp.smtputf8);
		sqlite3_bind_int(st, 10, eight);
		sqlite3_bind_text(st, 11, mp.message_id ? mp.message_id : "", -1, SQLITE_STATIC);
	} else {
		char fname[OUTBOX_NAME_MAX + 1];
		if (free_failed_name(ob, it.account, it.name, fname, sizeof(fname)) < 0)
			goto rollback;
		char text[700];
		snprintf(text, sizeof(text), "%s\n", reason);
		st = prep(ob, "UPDATE outbox SET state = 2, size = ?2, mtime = ?3,"
			      " content = zeroblob(?2), name = ?4, status = ?5, error_text = ?6"
			      " WHERE id = ?1 AND state = 0");
		if (st == NULL)
			goto rollback;
		sqlite3_bind_text(st, 4, fname, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 5, reason, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 6, text, -1, SQLITE_TRANSIENT);
	}
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, (int64_t)size);
	sqlite3_bind_int64(st, 3, mtime);
	if (step_done(ob, st, "queue") < 0 || sqlite3_changes(ob->db) != 1) {
		if (sqlite3_changes(ob->db) != 1)
			ob_fail(ob, "%s: outbox row %" PRId64 " is no longer being written",
				ob->path, id);
		goto rollback;
	}
	if (fill_blob(ob, id, fd, size) < 0)
		goto rollback;
	if (exec(ob, "COMMIT") < 0)
		goto rollback;
	if (!is_msg)
		snprintf(why, whylen, "%s", reason);
	ret = is_msg ? 0 : 1;
	goto out;
rollback:
	sqlite3_exec(ob->db, "ROLLBACK", NULL, NULL, NULL);
out:
	free(rcpts);
	msgprep_free(&mp);
	return ret;
}

int
outbox_delete(struct outbox *ob, int64_t id)
{
	sqlite3_stmt *st = prep(ob, "DELETE FROM outbox WHERE id = ?");
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	return step_done(ob, st, "delete");
}

int
outbox_delete_failed(struct outbox *ob, int64_t id, bool msg)
{
	sqlite3_stmt *st = prep(ob, msg ? "UPDATE outbox SET msg_deleted = 1 WHERE id = ?"
					: "UPDATE outbox SET error_deleted = 1 WHERE id = ?");
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	if (step_done(ob, st, "delete") < 0)
		return -1;
	st = prep(ob, "DELETE FROM outbox WHERE id = ? AND msg_deleted AND error_deleted"
		      " AND need_copy = 0");
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	return step_done(ob, st, "delete");
}

int
outbox_set_mtime(struct outbox *ob, int64_t id, int64_t mtime)
{
	sqlite3_stmt *st = prep(ob, "UPDATE outbox SET mtime = ? WHERE id = ?");
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, mtime);
	sqlite3_bind_int64(st, 2, id);
	return step_done(ob, st, "set mtime");
}

int
outbox_get(struct outbox *ob, int64_t id, struct outbox_item *it)
{
	sqlite3_stmt *st = prep(ob, "SELECT " ITEM_COLS " FROM outbox WHERE id = ?");
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	return one_item(ob, st, it);
}

int
outbox_lookup(struct outbox *ob, const char *account, bool failed, const char *name,
	      struct outbox_item *it)
{
	sqlite3_stmt *st = prep(ob, failed ? "SELECT " ITEM_COLS " FROM outbox"
					     " WHERE account = ? AND name = ? AND state = 2"
					   : "SELECT " ITEM_COLS " FROM outbox"
					     " WHERE account = ? AND name = ? AND state IN (0, 1)");
	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, account, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
	return one_item(ob, st, it);
}

int
outbox_list(struct outbox *ob, const char *account, bool failed, int64_t after,
	    struct outbox_item *items, int max)
{
	sqlite3_stmt *st = prep(ob, failed ? "SELECT " ITEM_COLS " FROM outbox WHERE account = ?"
					     " AND state = 2 AND id > ? ORDER BY id"
					   : "SELECT " ITEM_COLS " FROM outbox WHERE account = ?"
					     " AND state IN (0, 1) AND id > ? ORDER BY id");
	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, account, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, after);
	return many_items(ob, st, items, max);
}

int
outbox_counts(struct outbox *ob, const char *account, unsigned *queued, unsigned *failed,
	      unsigned *sent_pending)
{
	sqlite3_stmt *st = prep(ob, "SELECT coalesce(sum(state = 1), 0),"
				    " coalesce(sum(state = 2 AND NOT (msg_deleted AND error_deleted)), 0),"
				    " coalesce(sum(need_copy), 0) FROM outbox WHERE account = ?");
	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, account, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*queued = (unsigned)sqlite3_column_int(st, 0);
		*failed = (unsigned)sqlite3_column_int(st, 1);
		*sent_pending = (unsigned)sqlite3_column_int(st, 2);
	}
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : ob_fail(ob, "%s: %s", ob->path, sqlite3_errstr(rc));
}

int
outbox_read(struct outbox *ob, int64_t id, uint64_t offset, void *buf, size_t len,
	    size_t *got_r)
{
	*got_r = 0;
	sqlite3_blob *blob = NULL;
	int rc = sqlite3_blob_open(ob->db, "main", "outbox", "content", id, 0, &blob);
	if (rc != SQLITE_OK) {
		/* A NULL content (a row still being written) cannot be opened as a blob. */
		sqlite3_blob_close(blob);
		struct outbox_item it;
		int r = outbox_get(ob, id, &it);
		return r == 0 && it.state == OUTBOX_WRITING ? 1 : r == 1 ? 1 : -1;
	}
	uint64_t total = (uint64_t)sqlite3_blob_bytes(blob);
	if (offset < total) {
		size_t n = total - offset < len ? (size_t)(total - offset) : len;
		if (sqlite3_blob_read(blob, buf, (int)n, (int)offset) != SQLITE_OK) {
			sqlite3_blob_close(blob);
			return db_fail(ob, "read content");
		}
		*got_r = n;
	}
	sqlite3_blob_close(blob);
	return 0;
}

int
outbox_error_text(struct outbox *ob, int64_t id, struct buf *out)
{
	sqlite3_stmt *st = prep(ob, "SELECT error_text FROM outbox WHERE id = ?");
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	int rc = sqlite3_step(st), ret = 1;
	if (rc == SQLITE_ROW) {
		const char *t = (const char *)sqlite3_column_text(st, 0);
		ret = buf_append(out, t ? t : "", t ? strlen(t) : 0) < 0 ? ob_fail(ob, "out of memory")
									  : 0;
	} else if (rc != SQLITE_DONE) {
		ret = ob_fail(ob, "%s: %s", ob->path, sqlite3_errstr(rc));
	}
	sqlite3_finalize(st);
	return ret;
}

int
outbox_due(struct outbox *ob, const char *account, bool sent, int64_t now,
	   struct outbox_item *items, int max)
{
	sqlite3_stmt *st = prep(ob, sent ? "SELECT " ITEM_COLS " FROM outbox WHERE account = ?1"
					   " AND need_copy = 1 AND ?2 = ?2 ORDER BY id"
					 : "SELECT " ITEM_COLS " FROM outbox WHERE account = ?1"
					   " AND state = 1 AND next_try <= ?2 ORDER BY id");
	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, account, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, now);
	return many_items(ob, st, items, max);
}

int
outbox_next_try(struct outbox *ob, const char *account, int64_t *t_r)
{
	sqlite3_stmt *st = prep(ob, "SELECT min(next_try) FROM outbox WHERE account = ?"
				    " AND state = 1");
	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, account, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st), ret = 1;
	if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
		*t_r = sqlite3_column_int64(st, 0);
		ret = 0;
	} else if (rc != SQLITE_ROW) {
		ret = ob_fail(ob, "%s: %s", ob->path, sqlite3_errstr(rc));
	}
	sqlite3_finalize(st);
	return ret;
}

int
outbox_retry(struct outbox *ob, int64_t id, int64_t next_try, const char *status)
{
	sqlite3_stmt *st = prep(ob, "UPDATE outbox SET attempts = attempts + 1, next_try = ?,"
				    " status = ? WHERE id = ? AND state = 1");
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, next_try);
	sqlite3_bind_text(st, 2, status, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, id);
	return step_done(ob, st, "retry");
}

int
outbox_retry_now(struct outbox *ob, int64_t id)
{
	sqlite3_stmt *st = prep(ob, "UPDATE outbox SET next_try = 0 WHERE id = ? AND state = 1");
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	return step_done(ob, st, "retry now");
}

int
outbox_retry_all_now(struct outbox *ob, const char *account)
{
	sqlite3_stmt *st = prep(ob, "UPDATE outbox SET next_try = 0 WHERE account = ?"
				    " AND state = 1");
	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, account, -1, SQLITE_STATIC);
	return step_done(ob, st, "retry now");
}

/* QUEUED -> FAILED under a free failed/ name, with need_copy as given. */
static int
to_failed(struct outbox *ob, int64_t id, const char *status, const char *error_text,
	  bool need_copy)
{
	struct outbox_item it;
	int r = outbox_get(ob, id, &it);
	if (r != 0)
		return r < 0 ? -1 : ob_fail(ob, "outbox row %" PRId64 " is gone", id);
	if (exec(ob, "BEGIN IMMEDIATE") < 0)
		return -1;
	char fname[OUTBOX_NAME_MAX + 1];
	if (free_failed_name(ob, it.account, it.name, fname, sizeof(fname)) < 0)
		goto rollback;
	sqlite3_stmt *st = prep(ob, "UPDATE outbox SET state = 2, name = ?, status = ?,"
				    " error_text = ?, need_copy = ?, attempts = attempts + 1"
				    " WHERE id = ?");
	if (st == NULL)
		goto rollback;
	sqlite3_bind_text(st, 1, fname, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, status, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, error_text, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 4, need_copy);
	sqlite3_bind_int64(st, 5, id);
	if (step_done(ob, st, "fail") < 0 || exec(ob, "COMMIT") < 0)
		goto rollback;
	return 0;
rollback:
	sqlite3_exec(ob->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

int
outbox_fail(struct outbox *ob, int64_t id, const char *status, const char *error_text)
{
	return to_failed(ob, id, status, error_text, false);
}

int
outbox_partial(struct outbox *ob, int64_t id, const char *status, const char *error_text,
	       bool keep_for_sent)
{
	return to_failed(ob, id, status, error_text, keep_for_sent);
}

int
outbox_sent(struct outbox *ob, int64_t id, bool keep_for_sent)
{
	if (!keep_for_sent)
		return outbox_delete(ob, id);
	sqlite3_stmt *st = prep(ob, "UPDATE outbox SET state = 3, need_copy = 1, status = 'sent'"
				    " WHERE id = ?");
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	return step_done(ob, st, "sent");
}

int
outbox_copied(struct outbox *ob, int64_t id)
{
	sqlite3_stmt *st = prep(ob, "UPDATE outbox SET need_copy = 0 WHERE id = ?");
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	if (step_done(ob, st, "copied") < 0)
		return -1;
	st = prep(ob, "DELETE FROM outbox WHERE id = ? AND (state = 3 OR (state = 2 AND"
		      " msg_deleted AND error_deleted))");
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	return step_done(ob, st, "copied");
}

int
outbox_load_send(struct outbox *ob, int64_t id, struct outbox_send *snd)
{
	memset(snd, 0, sizeof(*snd));
	sqlite3_stmt *st = prep(ob, "SELECT header, body_offset, send_size, env_from, rcpts,"
				    " smtputf8, body_8bit, message_id, size FROM outbox WHERE id = ?");
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	int rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		sqlite3_finalize(st);
		return rc == SQLITE_DONE ? 1 : ob_fail(ob, "%s: %s", ob->path, sqlite3_errstr(rc));
	}
	int hl = sqlite3_column_bytes(st, 0);
	const void *h = sqlite3_column_blob(st, 0);
	const char *from = (const char *)sqlite3_column_text(st, 3);
	const char *rc_text = (const char *)sqlite3_column_text(st, 4);
	const char *mid = (const char *)sqlite3_column_text(st, 7);
	snd->header = malloc((size_t)hl + 1);
	snd->env_from = strdup(from ? from : "");
	snd->message_id = strdup(mid ? mid : "");
	char *list = strdup(rc_text ? rc_text : "");
	if (snd->header == NULL || snd->env_from == NULL || snd->message_id == NULL ||
	    list == NULL) {
		sqlite3_finalize(st);
		free(list);
		outbox_send_free(snd);
		return ob_fail(ob, "out of memory");
	}
	if (hl > 0)
		memcpy(snd->header, h, (size_t)hl);
	snd->header[hl] = '\0';
	snd->header_len = (size_t)hl;
	snd->body_offset = (uint64_t)sqlite3_column_int64(st, 1);
	snd->send_size = (uint64_t)sqlite3_column_int64(st, 2);
	snd->smtputf8 = sqlite3_column_int(st, 5) != 0;
	snd->body_8bit = sqlite3_column_int(st, 6) != 0;
	snd->size = (uint64_t)sqlite3_column_int64(st, 8);
	sqlite3_finalize(st);
	/* rcpts: one per line */
	size_t n = *list ? 1 : 0;
	for (const char *p = list; *p; p++)
		n += *p == '\n';
	snd->rcpts = calloc(n + 1, sizeof(char *));
	if (snd->rcpts == NULL) {
		free(list);
		outbox_send_free(snd);
		return ob_fail(ob, "out of memory");
	}
	snd->rcpt_buf = list;
	char *save = NULL;
	for (char *t = strtok_r(list, "\n", &save); t; t = strtok_r(NULL, "\n", &save))
		snd->rcpts[snd->nrcpts++] = t;
	return 0;
}

void
outbox_send_free(struct outbox_send *snd)
{
	free(snd->header);
	free(snd->env_from);
	free(snd->message_id);
	free(snd->rcpts);
	free(snd->rcpt_buf);
	memset(snd, 0, sizeof(*snd));
}

/* ---- files being written, and what a stop left of them ---- */

static void
scratch_path(const struct outbox *ob, int64_t id, char *path, size_t len)
{
	snprintf(path, len, "%s/%" PRId64, ob->dir, id);
}

int
outbox_scratch_open(struct outbox *ob, int64_t id)
{
	if (mkdir(ob->dir, 0700) < 0 && errno != EEXIST)
		return ob_fail(ob, "%s: %s", ob->dir, strerror(errno));
	char path[4200];
	scratch_path(ob, id, path, sizeof(path));
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return ob_fail(ob, "%s: %s", path, strerror(errno));
	return fd;
}

void
outbox_scratch_remove(struct outbox *ob, int64_t id)
{
	char path[4200];
	scratch_path(ob, id, path, sizeof(path));
	(void)unlink(path);
}

/* What recovery does with one WRITING row: its file submitted as its close would have. */
static void
recover_one(struct outbox *ob, const struct outbox_item *it, const struct cfg *cfg,
	    unsigned *n)
{
	const struct cfg_account *acct = NULL;
	for (size_t i = 0; i < cfg->naccounts; i++)
		if (strcmp(cfg->accounts[i].name, it->account) == 0)
			acct = &cfg->accounts[i];
	if (acct == NULL)
		return; /* its account is not configured now: kept for when it is again */
	char path[4200];
	scratch_path(ob, it->id, path, sizeof(path));
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0 || st.st_size == 0) {
		/* Nothing was written: nothing to send. */
		if (fd >= 0)
			close(fd);
		outbox_delete(ob, it->id);
		unlink(path);
		return;
	}
	char why[600] = "";
	int r = outbox_submit(ob, it->id, acct, fd, (uint64_t)st.st_size,
			      (int64_t)st.st_mtim.tv_sec, why, sizeof(why));
	close(fd);
	if (r < 0)
		return; /* the row and the file stay: the next start tries again */
	/* Writers write in blocks (cp 128 KiB, stdio 4 KiB): a file that stopped on a block
	 * boundary may have been cut short by the stop; let the user look before it goes. */
	if (r == 0 && st.st_size % OUTBOX_WRITE_BLOCK == 0) {
		char text[800];
		snprintf(text, sizeof(text),
			 "not sent: mailfs stopped while or just after this file was written, and"
			 " it ends on a %d-byte boundary, so it may be incomplete. If it is"
			 " complete, move it back into the outbox to send it.\n",
			 OUTBOX_WRITE_BLOCK);
		r = outbox_fail(ob, it->id, "may be incomplete (mailfs stopped while it was written)",
				text) < 0
			    ? -1
			    : 1;
		if (r < 0)
			return;
		snprintf(why, sizeof(why), "may be incomplete: in failed/");
	}
	unlink(path);
	log_warn("account %s: outbox/%s was written before mailfs stopped: %s%s", it->account, it->name, r == 0 ? "queued" : "not sent: ", r == 0 ? "" : why);
	(*n)++;
}

int
outbox_recover(struct outbox *ob, const struct cfg *cfg, unsigned *recovered)
{
	*recovered = 0;
	sqlite3_stmt *st = prep(ob, "SELECT id FROM outbox WHERE state = 0 ORDER BY id");
	if (st == NULL)
		return -1;
	int64_t ids[256];
	int n = 0, rc;
	while (n < 256 && (rc = sqlite3_step(st)) == SQLITE_ROW)
		ids[n++] = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	for (int i = 0; i < n; i++) {
		struct outbox_item it;
		if (outbox_get(ob, ids[i], &it) == 0 && it.state == OUTBOX_WRITING)
			recover_one(ob, &it, cfg, recovered);
	}
	/* Files without a WRITING row: submitted or dropped just before a stop. */
	DIR *d = opendir(ob->dir);
	if (d != NULL) {
		struct dirent *de;
		while ((de = readdir(d)) != NULL) {
			char *end;
			long long id = strtoll(de->d_name, &end, 10);
			struct outbox_item it;
			if (de->d_name[0] == '.' || *end != '\0')
				continue;
			if (outbox_get(ob, id, &it) == 1 ||
			    (outbox_get(ob, id, &it) == 0 && it.state != OUTBOX_WRITING)) {
				char path[4200];
				scratch_path(ob, id, path, sizeof(path));
				unlink(path);
			}
		}
		closedir(d);
	}
	return 0;
}
