/* store.c - the SQLite cache behind the mount (see store.h): schema and migrations, accounts,
 * folders, message metadata, and the numbers for .status (bodies: store-body.c).
 *
 * What it does: opens `<cache_dir>/mailfs.db` (directory 0700, file 0600, tightened if they
 * exist wider), puts it in WAL mode with synchronous=NORMAL, foreign keys on and a 10 s busy
 * timeout, migrates the schema forward inside one transaction (PRAGMA user_version counts the
 * steps of migrations[]), and answers every lookup through an index with statements prepared
 * once per handle and reset after each use, so no handle keeps a read transaction (and with it
 * an old snapshot, and a WAL that cannot be checkpointed) open between calls.
 *
 * What it does not do: talk to servers, decide names, know about FUSE, or share a handle
 * between threads (one struct store per thread; SQLite is opened in multi-thread mode).
 *
 * Schema notes. Folder and message ids are AUTOINCREMENT: an id, and so an inode number, is
 * never given to another row, even after a delete, so the kernel can never confuse a new file
 * with one it still remembers. Account top directories have parent_id 0 (no foreign key on
 * parent_id: a trigger checks the parent exists in the same account, and store_folder_delete
 * removes a subtree with one recursive statement); messages cascade from folders and bodies
 * from messages. Triggers keep folders.messages, folders.mtime (insert/delete of a message or
 * a sub-folder) and the counters behind store_stats (folders.bodies, folders.body_bytes), so
 * .status costs one pass over the folders, not over the messages.
 *
 * Bodies (cache/store-body.c) live in pack files (cache/pack.h), outside the database, and
 * are written once, not twice (WAL, then checkpoint); bodies of schema version 1 are still
 * read from the bodies table. store-int.h holds what the two files share.
 *
 * How callers batch (the sync engine): store_begin(); for each message store_msg_upsert() /
 * store_body_begin(), store_body_write()..., store_body_end(); store_commit() every ~100
 * messages AND whenever ~1 s has passed, whichever comes first. An open transaction holds the
 * database's single write lock: every other writer waits for it, for at most the busy timeout
 * (10 s), and then fails with "database is locked". End every writer before store_commit()
 * or store_rollback() (a rollback leaves a writer whose rows are gone; its store_body_end
 * then fails and drops what is left). Readers on other handles never wait; they see the
 * batch when it commits.
 */
#include "cache/store.h"
#include "cache/checkpoint.h"
#include "cache/dbfile.h"
#include "cache/store-int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache/pack.h"

#define STORE_DB_NAME "mailfs.db"
#ifndef STORE_BUSY_MS /* a test builds with a short one */
#define STORE_BUSY_MS 10000
#endif
/* PRAGMA application_id: "mlfs". */
#define STORE_APP_ID 0x6d6c6673

/* ---- schema ---- */

/* Each entry is one migration step; user_version is the number of steps applied. Append
 * new steps at the end, never edit a released one. */
static const char *const migrations[] = {
    /* 1: the first schema. */
    "CREATE TABLE accounts ("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL UNIQUE);"
    "CREATE TABLE folders ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,"
    "  parent_id INTEGER NOT NULL," /* 0: the account's top directory */
    "  kind INTEGER NOT NULL,"
    "  name TEXT NOT NULL,"
    "  server_name TEXT NOT NULL DEFAULT '',"
    "  delim INTEGER NOT NULL DEFAULT 0,"
    "  special INTEGER NOT NULL DEFAULT 0,"
    "  uidvalidity INTEGER NOT NULL DEFAULT 0,"
    "  uidnext INTEGER NOT NULL DEFAULT 0,"
    "  highestmodseq INTEGER NOT NULL DEFAULT 0,"
    "  messages INTEGER NOT NULL DEFAULT 0,"
    "  bodies INTEGER NOT NULL DEFAULT 0,"
    "  body_bytes INTEGER NOT NULL DEFAULT 0,"
    "  mtime INTEGER NOT NULL DEFAULT 0);"
    "CREATE UNIQUE INDEX folders_name ON folders(parent_id, name);"
    "CREATE INDEX folders_account ON folders(account_id);"
    "CREATE TABLE messages ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  folder_id INTEGER NOT NULL REFERENCES folders(id) ON DELETE CASCADE,"
    "  uid INTEGER NOT NULL,"
    "  internaldate INTEGER NOT NULL,"
    "  size INTEGER NOT NULL,"
    "  flags TEXT NOT NULL DEFAULT '',"
    "  modseq INTEGER NOT NULL DEFAULT 0,"
    "  name TEXT NOT NULL,"
    "  message_id TEXT NOT NULL DEFAULT '',"
    "  has_body INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX messages_folder ON messages(folder_id);" /* + rowid: the listing */
    "CREATE UNIQUE INDEX messages_uid ON messages(folder_id, uid);"
    "CREATE UNIQUE INDEX messages_name ON messages(folder_id, name);"
    "CREATE TABLE bodies ("
    "  msg_id INTEGER PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE,"
    "  data BLOB NOT NULL);"
    "CREATE TRIGGER folders_parent BEFORE INSERT ON folders"
    "  WHEN new.parent_id != 0 AND NOT EXISTS (SELECT 1 FROM folders"
    "    WHERE id = new.parent_id AND account_id = new.account_id)"
    "  BEGIN SELECT RAISE(ABORT, 'parent folder not found in this account'); END;"
    "CREATE TRIGGER folders_ai AFTER INSERT ON folders WHEN new.parent_id != 0"
    "  BEGIN UPDATE folders SET mtime = unixepoch() WHERE id = new.parent_id; END;"
    "CREATE TRIGGER folders_ad AFTER DELETE ON folders WHEN old.parent_id != 0"
    "  BEGIN UPDATE folders SET mtime = unixepoch() WHERE id = old.parent_id; END;"
    /* A new row never has a body (store_msg_upsert does not set has_body). */
    "CREATE TRIGGER messages_ai AFTER INSERT ON messages BEGIN"
    "  UPDATE folders SET messages = messages + 1, mtime = unixepoch()"
    "    WHERE id = new.folder_id; END;"
    "CREATE TRIGGER messages_ad AFTER DELETE ON messages BEGIN"
    "  UPDATE folders SET messages = messages - 1, bodies = bodies - old.has_body,"
    "    body_bytes = body_bytes - old.has_body * old.size, mtime = unixepoch()"
    "    WHERE id = old.folder_id; END;"
    "CREATE TRIGGER messages_au AFTER UPDATE OF has_body, size ON messages"
    "  WHEN old.has_body != new.has_body OR (new.has_body AND old.size != new.size) BEGIN"
    "  UPDATE folders SET bodies = bodies + new.has_body - old.has_body,"
    "    body_bytes = body_bytes + new.has_body * new.size - old.has_body * old.size"
    "    WHERE id = new.folder_id; END;",
    /* 2: bodies move to pack files (cache/pack.h): a body is the range body_off, size of
     * pack body_pack (0: none, or a body of schema 1 still in the bodies table). packs.used
     * is the end of the last committed body of a pack. A range no longer wanted (the
     * message deleted, or its body written again) is queued in dead_bodies in the same
     * transaction, and its blocks are given back after the commit (reap_dead). */
    "ALTER TABLE messages ADD COLUMN body_pack INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE messages ADD COLUMN body_off INTEGER NOT NULL DEFAULT 0;"
    "CREATE TABLE packs ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  used INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE dead_bodies ("
    "  id INTEGER PRIMARY KEY,"
    "  pack INTEGER NOT NULL,"
    "  off INTEGER NOT NULL,"
    "  size INTEGER NOT NULL);"
    "CREATE TRIGGER messages_ad_body AFTER DELETE ON messages WHEN old.body_pack != 0 BEGIN"
    "  INSERT INTO dead_bodies(pack, off, size)"
    "    VALUES (old.body_pack, old.body_off, old.size); END;"
    "CREATE TRIGGER messages_au_body AFTER UPDATE OF body_pack, body_off ON messages"
    "  WHEN old.body_pack != 0 AND (new.body_pack != old.body_pack"
    "    OR new.body_off != old.body_off) BEGIN"
    "  INSERT INTO dead_bodies(pack, off, size)"
    "    VALUES (old.body_pack, old.body_off, old.size); END;",
    /* 3: changes made through the mount (cache/journal.h). A message row has a state:
     * 0 on the server (uid > 0); 1 scratch: local bytes in CACHE_DIR/scratch/<id>, not a
     * message yet; 2 pending: its body (in a pack) waits for APPEND; 3 moving: its server
     * copy is UID orig_uid in folder orig_folder, a MOVE waits; 4 detached: a local copy
     * whose server copy is gone or replaced. Local rows have uid = -id, so the unique
     * (folder_id, uid) index holds and the sync never sees them. orig_uid/orig_folder of a
     * scratch or pending row: the server message its content replaces. prev_name: the .eml
     * name a server message had before it was renamed to a backup name (an editor's
     * "x.eml~"), so the new x.eml replaces it. mtime_set: the user set the time, it is the
     * INTERNALDATE. A folder with local = 1 was made here and waits for CREATE. */
    "ALTER TABLE messages ADD COLUMN state INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE messages ADD COLUMN orig_folder INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE messages ADD COLUMN orig_uid INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE messages ADD COLUMN mtime_set INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE messages ADD COLUMN prev_name TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE folders ADD COLUMN local INTEGER NOT NULL DEFAULT 0;"
    "CREATE INDEX messages_prev ON messages(folder_id, prev_name) WHERE prev_name != '';"
    "CREATE INDEX messages_scratch ON messages(id) WHERE state = 1;"
    "CREATE TABLE journal ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  account_id INTEGER NOT NULL,"
    "  op INTEGER NOT NULL,"
    "  msg_id INTEGER NOT NULL DEFAULT 0,"
    "  folder_id INTEGER NOT NULL DEFAULT 0,"
    "  server_name TEXT NOT NULL DEFAULT '',"
    "  uid INTEGER NOT NULL DEFAULT 0,"
    "  uidnext INTEGER NOT NULL DEFAULT 0,"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  error TEXT NOT NULL DEFAULT '');"
    "CREATE INDEX journal_account ON journal(account_id, id);"
    /* A row moved to another folder (mv) takes its counts along. */
    "CREATE TRIGGER messages_au_folder AFTER UPDATE OF folder_id ON messages"
    "  WHEN old.folder_id != new.folder_id BEGIN"
    "  UPDATE folders SET messages = messages - 1, bodies = bodies - old.has_body,"
    "    body_bytes = body_bytes - old.has_body * old.size, mtime = unixepoch()"
    "    WHERE id = old.folder_id;"
    "  UPDATE folders SET messages = messages + 1, bodies = bodies + new.has_body,"
    "    body_bytes = body_bytes + new.has_body * new.size, mtime = unixepoch()"
    "    WHERE id = new.folder_id; END;"
    "CREATE TRIGGER messages_au_name AFTER UPDATE OF name ON messages"
    "  WHEN old.name != new.name AND old.folder_id = new.folder_id BEGIN"
    "  UPDATE folders SET mtime = unixepoch() WHERE id = new.folder_id; END;",
    /* 4: messages whose FETCH keeps failing (cache/setaside.h), by server UID: a message
     * fetched whole for the first time has no row until its body is complete. Bodies
     * the server declares 0 bytes long are fetched even without prefetch (the kernel
     * never asks to read an empty file), found through a small partial index. */
    "CREATE TABLE setaside ("
    "  folder_id INTEGER NOT NULL,"
    "  uid INTEGER NOT NULL,"
    "  failures INTEGER NOT NULL,"
    "  reason TEXT NOT NULL,"
    "  since INTEGER NOT NULL,"
    "  retry_at INTEGER NOT NULL,"
    "  PRIMARY KEY (folder_id, uid)) WITHOUT ROWID;"
    "CREATE TRIGGER setaside_msg AFTER DELETE ON messages BEGIN"
    "  DELETE FROM setaside WHERE folder_id = old.folder_id AND uid = old.uid; END;"
    "CREATE TRIGGER setaside_folder AFTER DELETE ON folders BEGIN"
    "  DELETE FROM setaside WHERE folder_id = old.id; END;"
    "CREATE INDEX messages_empty ON messages(folder_id, uid) WHERE size = 0 AND has_body = 0;",
    /* 5: server rows of a folder whose UIDVALIDITY changed wait with uid = -id (state 0)
     * until the re-read finds their message again by Message-ID and size
     * (store_msg_unbind / store_msg_adopt). */
    ("CREATE INDEX messages_unbound ON messages(folder_id, message_id, size)"
     "  WHERE uid < 0 AND state = 0;"),
};
#define SCHEMA_VERSION ((int)(sizeof(migrations) / sizeof(migrations[0])))

/* ---- prepared statements ---- */

#define STMT_SQL(name, sql) [ST_##name] = sql,
static const char *const stmt_sql[ST__COUNT] = {STATEMENTS(STMT_SQL)};

/* ---- errors ---- */

void
store_set_err(struct store *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s->err, sizeof(s->err), fmt, ap);
	va_end(ap);
}

int
store_db_err(struct store *s, const char *what)
{
	store_set_err(s, "%s: %s", what, sqlite3_errmsg(s->db));
	return -1;
}

const char *
store_errmsg(const struct store *s)
{
	return s ? s->err : "no store";
}

/* ---- statements ---- */

sqlite3_stmt *
store_stmt(struct store *s, enum stmt_id id)
{
	if (!s->stmts[id] && sqlite3_prepare_v3(s->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
						&s->stmts[id], NULL) != SQLITE_OK) {
		store_db_err(s, "prepare");
		s->stmts[id] = NULL;
	}
	return s->stmts[id];
}

/* Bind NUL-terminated text without copying (the caller's string outlives the step). */
static int
bind_text(sqlite3_stmt *st, int i, const char *text)
{
	return sqlite3_bind_text(st, i, text, -1, SQLITE_STATIC);
}

static void
copy_col(char *dst, size_t dstlen, sqlite3_stmt *st, int col)
{
	const unsigned char *t = sqlite3_column_text(st, col);
	size_t n = (size_t)sqlite3_column_bytes(st, col);
	if (!t)
		n = 0;
	if (n >= dstlen)
		n = dstlen - 1;
	if (n)
		memcpy(dst, t, n);
	dst[n] = '\0';
}

int
store_exec(struct store *s, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);
	while (rc == SQLITE_ROW)
		rc = sqlite3_step(st);
	int ret = rc == SQLITE_DONE ? 0 : store_db_err(s, what);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return ret;
}

void
store_finish(sqlite3_stmt *st)
{
	if (st) {
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
	}
}

/* A component of a path: 1..255 bytes, no '/', not "." or "..". */
static int
check_name(struct store *s, const char *what, const char *name)
{
	if (!name || !*name) {
		store_set_err(s, "%s: empty name", what);
		return -1;
	}
	size_t n = strlen(name);
	if (n > STORE_NAME_MAX) {
		store_set_err(s, "%s: name longer than %d bytes", what, STORE_NAME_MAX);
		return -1;
	}
	if (strchr(name, '/') || strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
		store_set_err(s, "%s: invalid name \"%s\"", what, name);
		return -1;
	}
	return 0;
}

/* ---- open, close, migrate ---- */

static void open_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
open_err(char *err, size_t errlen, const char *fmt, ...)
{
	if (!err || !errlen)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* mkdir -p: missing components are created 0700; the last one, if group or world may use
 * it, is tightened to 0700 (it is our cache directory). */
static int
make_dir(const char *dir, char *err, size_t errlen)
{
	char *p = strdup(dir);
	int ret = -1;
	struct stat st;
	if (!p) {
		open_err(err, errlen, "%s: out of memory", dir);
		goto out;
	}
	for (char *c = p + 1; *c; c++) {
		if (*c != '/')
			continue;
		*c = '\0';
		if (mkdir(p, 0700) != 0 && errno != EEXIST) {
			open_err(err, errlen, "%s: cannot create directory: %s", p,
				 strerror(errno));
			goto out;
		}
		*c = '/';
	}
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		open_err(err, errlen, "%s: cannot create directory: %s", dir, strerror(errno));
		goto out;
	}
	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		open_err(err, errlen, "%s: not a directory", dir);
		goto out;
	}
	if ((st.st_mode & 0077) && chmod(dir, 0700) != 0) {
		open_err(err, errlen, "%s: cannot make the cache directory private: %s", dir,
			 strerror(errno));
		goto out;
	}
	ret = 0;
out:
	free(p);
	return ret;
}

/* One integer from a PRAGMA or query, -1 on error. */
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
migrate(struct store *s, char *err, size_t errlen)
{
	char sql[96];
	int ret = -1;
	bool txn = false;
	int64_t version = query_int(s->db, "PRAGMA user_version");
	if (version > SCHEMA_VERSION)
		goto newer;
	if (version == SCHEMA_VERSION)
		return 0;
	if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		goto dberr;
	txn = true;
	/* Another handle may have migrated while we waited for the lock. */
	version = query_int(s->db, "PRAGMA user_version");
	if (version < 0)
		goto dberr;
	if (version > SCHEMA_VERSION)
		goto newer;
	for (int v = (int)version; v < SCHEMA_VERSION; v++) {
		if (sqlite3_exec(s->db, migrations[v], NULL, NULL, NULL) != SQLITE_OK) {
			open_err(err, errlen, "%s: migration to schema version %d failed: %s",
				 s->path, v + 1, sqlite3_errmsg(s->db));
			goto out;
		}
	}
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d; PRAGMA application_id = %d",
		 SCHEMA_VERSION, STORE_APP_ID);
	if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		goto dberr;
	txn = false;
	ret = 0;
	goto out;
newer:
	open_err(err, errlen,
		 "%s: schema version %" PRId64 " is newer than this mailfs understands (%d)",
		 s->path, version, SCHEMA_VERSION);
	goto out;
dberr:
	open_err(err, errlen, "%s: %s", s->path, sqlite3_errmsg(s->db));
out:
	if (txn)
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	return ret;
}

/* Switching a new file to WAL needs it alone for a moment, and SQLite answers "database is
 * locked" at once when another connection is opening it too: wait as the busy timeout would. */
static int
set_wal(struct store *s, char *err, size_t errlen)
{
	char mode[16];
	for (int waited = 0;; waited += 10) {
		sqlite3_stmt *st = NULL;
		int rc = sqlite3_prepare_v2(s->db, "PRAGMA journal_mode = WAL", -1, &st, NULL);
		if (rc == SQLITE_OK)
			rc = sqlite3_step(st);
		mode[0] = '\0';
		if (rc == SQLITE_ROW)
			copy_col(mode, sizeof(mode), st, 0);
		sqlite3_finalize(st);
		if (strcmp(mode, "wal") == 0)
			return 0;
		if (waited >= STORE_BUSY_MS)
			break;
		usleep(10 * 1000);
	}
	open_err(err, errlen, "%s: cannot use WAL mode: %s", s->path,
		 mode[0] ? mode : sqlite3_errmsg(s->db));
	return -1;
}

/* Wait for another connection's write lock: short sleeps first (transactions here last
 * well under a millisecond; SQLite's own handler sleeps 1, 2, 5, 10 ms... and made two
 * writers taking turns wait milliseconds each time), up to STORE_BUSY_MS in all. */
static int
busy_wait(void *ctx, int count)
{
	(void)ctx;
	static const unsigned steps_us[] = {20, 50, 100, 200, 500, 1000, 2000, 5000};
	const size_t nsteps = sizeof(steps_us) / sizeof(steps_us[0]);
	uint64_t waited = 0;
	for (int i = 0; i < count; i++)
		waited += steps_us[(size_t)i < nsteps ? (size_t)i : nsteps - 1];
	if (waited >= (uint64_t)STORE_BUSY_MS * 1000)
		return 0;
	usleep(steps_us[(size_t)count < nsteps ? (size_t)count : nsteps - 1]);
	return 1;
}

int
store_open(const char *cache_dir, struct store **store_r, char *err, size_t errlen)
{
	struct store *s = NULL;
	int ret = -1;
	*store_r = NULL;
	if (!cache_dir || !*cache_dir) {
		open_err(err, errlen, "no cache directory");
		goto out;
	}
	if (make_dir(cache_dir, err, errlen) != 0)
		goto out;
	s = calloc(1, sizeof(*s));
	if (s)
		s->pack_dfd = s->wpack_fd = s->rd_fd = s->scratch_dfd = -1;
	if (!s || asprintf(&s->path, "%s/%s", cache_dir, STORE_DB_NAME) < 0) {
		if (s)
			s->path = NULL;
		open_err(err, errlen, "%s: out of memory", cache_dir);
		goto out;
	}
	if (pack_dir_open(cache_dir, &s->pack_dfd, err, errlen) != 0)
		goto out;
	if (dbfile_prepare(s->path, err, errlen) != 0)
		goto out;
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
	if (sqlite3_open_v2(s->path, &s->db, flags, NULL) != SQLITE_OK) {
		open_err(err, errlen, "%s: %s", s->path,
			 s->db ? sqlite3_errmsg(s->db) : "out of memory");
		goto out;
	}
	sqlite3_extended_result_codes(s->db, 1);
	sqlite3_busy_handler(s->db, busy_wait, NULL);
	sqlite3_db_config(s->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
	int64_t app = query_int(s->db, "PRAGMA application_id");
	if (app < 0) {
		open_err(err, errlen, "%s: %s", s->path, sqlite3_errmsg(s->db));
		goto out;
	}
	if (app != 0 && app != STORE_APP_ID) {
		open_err(err, errlen, "%s: not a mailfs cache (application_id %" PRId64 ")",
			 s->path, app);
		goto out;
	}
	/* Takes effect only on a new, empty file, so it must come before WAL mode writes the
	 * first page. With it, a pointer map lets SQLite step over the overflow pages of a
	 * large body without reading them: 128 KiB reads at the end of a 30 MB body cost
	 * about what reads at its start cost (ten times faster than without). */
	/* Only on a new file: on one in use it would wait for the writer's lock (a reader
	 * opening its connection during a sync stalled for seconds). */
	if (query_int(s->db, "PRAGMA page_count") == 0)
		sqlite3_exec(s->db, "PRAGMA auto_vacuum = INCREMENTAL", NULL, NULL, NULL);
	if (set_wal(s, err, errlen) != 0)
		goto out;
	ckpt_attach(s->db, s->path);
	/* A big transaction grows the WAL; give the space back after the next checkpoint. */
	if (sqlite3_exec(s->db,
			 "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;"
			 " PRAGMA journal_size_limit = 33554432",
			 NULL, NULL, NULL) != SQLITE_OK) {
		open_err(err, errlen, "%s: %s", s->path, sqlite3_errmsg(s->db));
		goto out;
	}
	if (migrate(s, err, errlen) != 0)
		goto out;
	*store_r = s;
	s = NULL;
	ret = 0;
out:
	store_close(&s);
	return ret;
}

int
store_checkpointer_start(const char *cache_dir, char *err, size_t errlen)
{
	char *path = NULL;
	if (asprintf(&path, "%s/%s", cache_dir, STORE_DB_NAME) < 0) {
		snprintf(err, errlen, "%s: out of memory", cache_dir);
		return -1;
	}
	int r = ckpt_start(path, err, errlen);
	free(path);
	return r;
}

void
store_checkpointer_stop(void)
{
	ckpt_stop();
}

void
store_close(struct store **sp)
{
	struct store *s = *sp;
	if (!s)
		return;
	for (int i = 0; i < ST__COUNT; i++)
		sqlite3_finalize(s->stmts[i]);
	sqlite3_close_v2(s->db);
	store_body_close(s);
	if (s->scratch_dfd >= 0)
		close(s->scratch_dfd);
	free(s->path);
	free(s);
	*sp = NULL;
}

/* ---- transactions ---- */

int
store_begin(struct store *s)
{
	if (!sqlite3_get_autocommit(s->db)) {
		store_set_err(s, "begin: a transaction is already open (nesting is not supported)");
		return -1;
	}
	sqlite3_stmt *st = store_stmt(s, ST_BEGIN);
	return st ? store_exec(s, st, "begin") : -1;
}

int
store_commit(struct store *s)
{
	if (sqlite3_get_autocommit(s->db)) {
		store_set_err(s, "commit: no transaction is open");
		return -1;
	}
	sqlite3_stmt *st = store_stmt(s, ST_COMMIT);
	if (!st || store_exec(s, st, "commit") != 0)
		return -1;
	if (s->reap)
		store_body_reap(s);
	return 0;
}

void
store_rollback(struct store *s)
{
	if (sqlite3_get_autocommit(s->db))
		return;
	sqlite3_stmt *st = store_stmt(s, ST_ROLLBACK);
	if (st) {
		sqlite3_step(st);
		sqlite3_reset(st);
	}
	/* The pack row may have been created in this transaction, and the bodies appended
	 * since its start are gone: the next writer looks for a pack again. */
	store_body_rollback(s);
}

/* ---- accounts ---- */

static int
account_get(struct store *s, const char *name, int64_t *id_r)
{
	sqlite3_stmt *st = store_stmt(s, ST_ACCOUNT_GET);
	int ret = -1;
	if (!st)
		goto out;
	bind_text(st, 1, name);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*id_r = sqlite3_column_int64(st, 0);
		ret = 0;
	} else if (rc == SQLITE_DONE) {
		ret = 1;
	} else {
		store_db_err(s, "account");
	}
out:
	store_finish(st);
	return ret;
}

int
store_account_ensure(struct store *s, const char *name, int64_t *id_r)
{
	if (check_name(s, "account", name) != 0)
		return -1;
	int rc = account_get(s, name, id_r);
	if (rc != 1)
		return rc;
	sqlite3_stmt *st = store_stmt(s, ST_ACCOUNT_ADD);
	if (!st)
		return -1;
	bind_text(st, 1, name);
	if (store_exec(s, st, "account") != 0)
		return -1;
	rc = account_get(s, name, id_r);
	if (rc == 1)
		store_set_err(s, "account %s: vanished after insert", name);
	return rc == 0 ? 0 : -1;
}

/* ---- folders ---- */

static void
folder_row(sqlite3_stmt *st, struct store_folder *f)
{
	f->id = sqlite3_column_int64(st, 0);
	f->account_id = sqlite3_column_int64(st, 1);
	f->parent_id = sqlite3_column_int64(st, 2);
	f->kind = (enum store_folder_kind)sqlite3_column_int(st, 3);
	copy_col(f->name, sizeof(f->name), st, 4);
	copy_col(f->server_name, sizeof(f->server_name), st, 5);
	f->delim = (char)sqlite3_column_int(st, 6);
	f->special = (unsigned)sqlite3_column_int64(st, 7);
	f->uidvalidity = (uint32_t)sqlite3_column_int64(st, 8);
	f->uidnext = (uint32_t)sqlite3_column_int64(st, 9);
	f->highestmodseq = (uint64_t)sqlite3_column_int64(st, 10);
	f->messages = (uint64_t)sqlite3_column_int64(st, 11);
	f->mtime = sqlite3_column_int64(st, 12);
	f->local = sqlite3_column_int(st, 13) != 0;
}

int
store_folder_ensure(struct store *s, int64_t account_id, int64_t parent_id, const char *name,
		    enum store_folder_kind kind, const char *server_name, char delim,
		    unsigned special, int64_t *id_r)
{
	sqlite3_stmt *st = NULL;
	int ret = -1;
	if (check_name(s, "folder", name) != 0)
		goto out;
	if (!server_name)
		server_name = "";
	if (strlen(server_name) >= sizeof(((struct store_folder *)0)->server_name)) {
		store_set_err(s, "folder %s: server name too long", name);
		goto out;
	}
	if ((unsigned)kind > STORE_FOLDER_OUTBOX ||
	    (parent_id == 0) != (kind == STORE_FOLDER_ACCOUNT)) {
		store_set_err(s, "folder %s: kind %d does not fit parent %" PRId64, name, (int)kind,
			      parent_id);
		goto out;
	}
	st = store_stmt(s, ST_FOLDER_UPSERT);
	if (!st)
		goto out;
	sqlite3_bind_int64(st, 1, account_id);
	sqlite3_bind_int64(st, 2, parent_id);
	sqlite3_bind_int(st, 3, (int)kind);
	bind_text(st, 4, name);
	bind_text(st, 5, server_name);
	sqlite3_bind_int(st, 6, (unsigned char)delim);
	sqlite3_bind_int64(st, 7, special);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*id_r = sqlite3_column_int64(st, 0);
		ret = 0;
	} else if (rc == SQLITE_DONE) {
		store_set_err(
		    s, "folder %s: the name is used by another account under parent %" PRId64, name,
		    parent_id);
	} else if (rc == SQLITE_CONSTRAINT_TRIGGER) {
		store_set_err(s,
			      "folder %s: parent folder %" PRId64 " not found in account %" PRId64,
			      name, parent_id, account_id);
	} else if (rc == SQLITE_CONSTRAINT_FOREIGNKEY) {
		store_set_err(s, "folder %s: account %" PRId64 " not found", name, account_id);
	} else {
		store_db_err(s, "folder");
	}
out:
	store_finish(st);
	return ret;
}

/* Step a bound statement once: 0 and the row read by read_row, 1 not found, -1 error
 * (`what` names the kind of row in the message). The statement is finished either way. */
static int
row_one(struct store *s, sqlite3_stmt *st, void (*read_row)(sqlite3_stmt *, void *), void *r,
	const char *what)
{
	int rc = sqlite3_step(st);
	int ret = -1;
	if (rc == SQLITE_ROW) {
		read_row(st, r);
		ret = 0;
	} else if (rc == SQLITE_DONE) {
		store_set_err(s, "%s not found", what);
		ret = 1;
	} else {
		store_db_err(s, what);
	}
	store_finish(st);
	return ret;
}

static void
folder_row_any(sqlite3_stmt *st, void *r)
{
	folder_row(st, r);
}

/* Fetch one folder row from a statement already bound: 0, 1 not found, -1. */
static int
folder_one(struct store *s, sqlite3_stmt *st, struct store_folder *r)
{
	return row_one(s, st, folder_row_any, r, "folder");
}

int
store_folder_get(struct store *s, int64_t id, struct store_folder *r)
{
	sqlite3_stmt *st = store_stmt(s, ST_FOLDER_GET);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	return folder_one(s, st, r);
}

int
store_folder_lookup(struct store *s, int64_t parent_id, const char *name, struct store_folder *r)
{
	sqlite3_stmt *st = store_stmt(s, ST_FOLDER_LOOKUP);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, parent_id);
	bind_text(st, 2, name ? name : "");
	return folder_one(s, st, r);
}

int
store_folder_set_state(struct store *s, int64_t id, uint32_t uidvalidity, uint32_t uidnext,
		       uint64_t highestmodseq)
{
	sqlite3_stmt *st = store_stmt(s, ST_FOLDER_STATE);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, uidvalidity);
	sqlite3_bind_int64(st, 3, uidnext);
	sqlite3_bind_int64(st, 4, (int64_t)highestmodseq);
	if (store_exec(s, st, "folder state") != 0)
		return -1;
	if (sqlite3_changes(s->db) == 0) {
		store_set_err(s, "folder %" PRId64 " not found", id);
		return -1;
	}
	return 0;
}

int
store_folder_delete(struct store *s, int64_t id)
{
	sqlite3_stmt *st = store_stmt(s, ST_FOLDER_DELETE);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	return store_body_after_delete(s, store_exec(s, st, "folder delete"));
}

int
store_folder_children(struct store *s, int64_t parent_id, const char *after,
		      struct store_folder *out, size_t max)
{
	sqlite3_stmt *st = store_stmt(s, ST_FOLDER_CHILDREN);
	int n = 0, rc = SQLITE_DONE;
	if (!st)
		return -1;
	if (max > INT_MAX)
		max = INT_MAX;
	sqlite3_bind_int64(st, 1, parent_id);
	bind_text(st, 2, after ? after : "");
	sqlite3_bind_int64(st, 3, (int64_t)max);
	while ((size_t)n < max && (rc = sqlite3_step(st)) == SQLITE_ROW)
		folder_row(st, &out[n++]);
	if ((size_t)n < max && rc != SQLITE_DONE)
		n = store_db_err(s, "folder list");
	store_finish(st);
	return n;
}

/* One statement per folder, reset before the callback runs: the callback may use the store
 * (even write to it) without an open statement holding an old snapshot. */
int
store_folder_each(struct store *s, int64_t account_id,
		  int (*cb)(void *ctx, const struct store_folder *f), void *ctx)
{
	struct store_folder *f = malloc(sizeof(*f));
	int64_t last = 0;
	int ret = -1;
	if (!f) {
		store_set_err(s, "folders: out of memory");
		goto out;
	}
	for (;;) {
		sqlite3_stmt *st = store_stmt(s, ST_FOLDER_NEXT);
		if (!st)
			goto out;
		sqlite3_bind_int64(st, 1, account_id);
		sqlite3_bind_int64(st, 2, last);
		int rc = folder_one(s, st, f);
		if (rc == 1)
			break;
		if (rc < 0)
			goto out;
		last = f->id;
		if (cb(ctx, f) != 0)
			break;
	}
	ret = 0;
out:
	free(f);
	return ret;
}

/* ---- messages ---- */

void
store_msg_row(sqlite3_stmt *st, struct store_msg *m)
{
	m->id = sqlite3_column_int64(st, 0);
	m->folder_id = sqlite3_column_int64(st, 1);
	m->uid = (uint32_t)sqlite3_column_int64(st, 2);
	m->internaldate = sqlite3_column_int64(st, 3);
	m->size = (uint64_t)sqlite3_column_int64(st, 4);
	copy_col(m->flags, sizeof(m->flags), st, 5);
	m->modseq = (uint64_t)sqlite3_column_int64(st, 6);
	copy_col(m->name, sizeof(m->name), st, 7);
	copy_col(m->message_id, sizeof(m->message_id), st, 8);
	m->has_body = sqlite3_column_int(st, 9) != 0;
	int64_t uid = sqlite3_column_int64(st, 2);
	m->uid = uid > 0 && uid <= UINT32_MAX ? (uint32_t)uid : 0;
	m->state = (enum store_msg_state)sqlite3_column_int(st, 10);
	m->orig_folder = sqlite3_column_int64(st, 11);
	m->orig_uid = (uint32_t)sqlite3_column_int64(st, 12);
	m->mtime_set = sqlite3_column_int(st, 13) != 0;
	copy_col(m->prev_name, sizeof(m->prev_name), st, 14);
}

static int
check_flags(struct store *s, const char *flags)
{
	if (flags && strlen(flags) >= sizeof(((struct store_msg *)0)->flags)) {
		store_set_err(s, "flags longer than %zu bytes",
			      sizeof(((struct store_msg *)0)->flags) - 1);
		return -1;
	}
	return 0;
}

int
store_msg_upsert(struct store *s, struct store_msg *m)
{
	sqlite3_stmt *st = NULL;
	int ret = -1;
	if (check_name(s, "message", m->name) != 0 || check_flags(s, m->flags) != 0)
		goto out;
	st = store_stmt(s, ST_MSG_UPSERT);
	if (!st)
		goto out;
	sqlite3_bind_int64(st, 1, m->folder_id);
	sqlite3_bind_int64(st, 2, m->uid);
	sqlite3_bind_int64(st, 3, m->internaldate);
	sqlite3_bind_int64(st, 4, (int64_t)m->size);
	bind_text(st, 5, m->flags);
	sqlite3_bind_int64(st, 6, (int64_t)m->modseq);
	bind_text(st, 7, m->name);
	/* The struct field bounds it: a longer Message-ID is cut, not refused. */
	sqlite3_bind_text(st, 8, m->message_id,
			  (int)strnlen(m->message_id, sizeof(m->message_id) - 1), SQLITE_STATIC);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		m->id = sqlite3_column_int64(st, 0);
		ret = 0;
	} else if (rc == SQLITE_CONSTRAINT_UNIQUE) {
		store_set_err(s,
			      "folder %" PRId64 ": name \"%s\" is already used by another message",
			      m->folder_id, m->name);
	} else if (rc == SQLITE_CONSTRAINT_FOREIGNKEY) {
		store_set_err(s, "message %s: folder %" PRId64 " not found", m->name, m->folder_id);
	} else {
		store_db_err(s, "message");
	}
out:
	store_finish(st);
	return ret;
}

static void
msg_row_any(sqlite3_stmt *st, void *r)
{
	store_msg_row(st, r);
}

static int
msg_one(struct store *s, sqlite3_stmt *st, struct store_msg *r)
{
	return row_one(s, st, msg_row_any, r, "message");
}

int
store_msg_get(struct store *s, int64_t id, struct store_msg *r)
{
	sqlite3_stmt *st = store_stmt(s, ST_MSG_GET);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	return msg_one(s, st, r);
}

int
store_msg_lookup(struct store *s, int64_t folder_id, const char *name, struct store_msg *r)
{
	sqlite3_stmt *st = store_stmt(s, ST_MSG_LOOKUP);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, folder_id);
	bind_text(st, 2, name ? name : "");
	return msg_one(s, st, r);
}

int
store_msg_by_uid(struct store *s, int64_t folder_id, uint32_t uid, struct store_msg *r)
{
	sqlite3_stmt *st = store_stmt(s, ST_MSG_BY_UID);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, folder_id);
	sqlite3_bind_int64(st, 2, uid);
	return msg_one(s, st, r);
}

/* ---- a folder re-read after a UIDVALIDITY change ---- */

int
store_msg_unbind(struct store *s, int64_t folder_id)
{
	sqlite3_stmt *st = store_stmt(s, ST_MSG_UNBIND);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, folder_id);
	return store_exec(s, st, "unbind messages");
}

int
store_msg_adopt(struct store *s, int64_t folder_id, const char *message_id, uint64_t size,
		uint32_t uid, struct store_msg *r)
{
	if (message_id[0] == '\0' || uid == 0)
		return 1;
	sqlite3_stmt *st = store_stmt(s, ST_MSG_ADOPT);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, folder_id);
	sqlite3_bind_text(st, 2, message_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (int64_t)size);
	int rc = sqlite3_step(st);
	int ret = rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? 1 : store_db_err(s, "adopt message");
	if (ret == 0)
		store_msg_row(st, r);
	store_finish(st);
	if (ret != 0)
		return ret;
	st = store_stmt(s, ST_MSG_SET_UID);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, r->id);
	sqlite3_bind_int64(st, 2, uid);
	if (store_exec(s, st, "adopt message") != 0)
		return -1;
	r->uid = uid;
	return 0;
}

int
store_msg_unbound(struct store *s, int64_t folder_id, struct store_msg *r)
{
	sqlite3_stmt *st = store_stmt(s, ST_MSG_UNBOUND);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, folder_id);
	int rc = sqlite3_step(st);
	int ret = rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? 1 : store_db_err(s, "unbound rows");
	if (ret == 0)
		store_msg_row(st, r);
	store_finish(st);
	return ret;
}

int
store_msg_list(struct store *s, int64_t folder_id, int64_t after_id, struct store_msg *out,
	       size_t max)
{
	sqlite3_stmt *st = store_stmt(s, ST_MSG_LIST);
	int n = 0, rc = SQLITE_DONE;
	if (!st)
		return -1;
	if (max > INT_MAX)
		max = INT_MAX;
	sqlite3_bind_int64(st, 1, folder_id);
	sqlite3_bind_int64(st, 2, after_id);
	sqlite3_bind_int64(st, 3, (int64_t)max);
	while ((size_t)n < max && (rc = sqlite3_step(st)) == SQLITE_ROW)
		store_msg_row(st, &out[n++]);
	if ((size_t)n < max && rc != SQLITE_DONE)
		n = store_db_err(s, "message list");
	store_finish(st);
	return n;
}

int
store_msg_uids(struct store *s, int64_t folder_id, uint32_t **uids_r, size_t *n_r)
{
	sqlite3_stmt *st = store_stmt(s, ST_MSG_UIDS);
	uint32_t *uids = NULL;
	size_t n = 0, cap = 0;
	int ret = -1, rc;
	*uids_r = NULL;
	*n_r = 0;
	if (!st)
		goto out;
	sqlite3_bind_int64(st, 1, folder_id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 1024;
			uint32_t *p = realloc(uids, ncap * sizeof(*uids));
			if (!p) {
				store_set_err(s, "message uids: out of memory");
				goto out;
			}
			uids = p;
			cap = ncap;
		}
		uids[n++] = (uint32_t)sqlite3_column_int64(st, 0);
	}
	if (rc != SQLITE_DONE) {
		store_db_err(s, "message uids");
		goto out;
	}
	*uids_r = uids;
	*n_r = n;
	uids = NULL;
	ret = 0;
out:
	free(uids);
	store_finish(st);
	return ret;
}

static int
uid_list(struct store *s, enum stmt_id id, int64_t folder_id, uint32_t after_uid, uint32_t *uids,
	 size_t max, size_t *n_r)
{
	sqlite3_stmt *st = store_stmt(s, id);
	size_t n = 0;
	int ret = -1, rc = SQLITE_DONE;
	*n_r = 0;
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, folder_id);
	sqlite3_bind_int64(st, 2, after_uid);
	sqlite3_bind_int64(st, 3, max > INT64_MAX ? INT64_MAX : (int64_t)max);
	while (n < max && (rc = sqlite3_step(st)) == SQLITE_ROW)
		uids[n++] = (uint32_t)sqlite3_column_int64(st, 0);
	if (n < max && rc != SQLITE_DONE) {
		store_db_err(s, "missing bodies");
	} else {
		*n_r = n;
		ret = 0;
	}
	store_finish(st);
	return ret;
}

int
store_msg_missing_bodies(struct store *s, int64_t folder_id, uint32_t after_uid, uint32_t *uids,
			 size_t max, size_t *n_r)
{
	return uid_list(s, ST_MSG_MISSING, folder_id, after_uid, uids, max, n_r);
}

int
store_msg_empty_bodies(struct store *s, int64_t folder_id, uint32_t after_uid, uint32_t *uids,
		       size_t max, size_t *n_r)
{
	return uid_list(s, ST_MSG_EMPTY, folder_id, after_uid, uids, max, n_r);
}

int
store_msg_set_flags(struct store *s, int64_t id, const char *flags, uint64_t modseq)
{
	if (check_flags(s, flags) != 0)
		return -1;
	sqlite3_stmt *st = store_stmt(s, ST_MSG_FLAGS);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	bind_text(st, 2, flags ? flags : "");
	sqlite3_bind_int64(st, 3, (int64_t)modseq);
	if (store_exec(s, st, "message flags") != 0)
		return -1;
	if (sqlite3_changes(s->db) == 0) {
		store_set_err(s, "message %" PRId64 " not found", id);
		return -1;
	}
	return 0;
}

int
store_msg_finish(struct store *s, int64_t id, const char *name, int64_t internaldate,
		 const char *flags, uint64_t modseq, const char *message_id)
{
	if (check_flags(s, flags) != 0)
		return -1;
	size_t nl = strlen(name);
	if (nl == 0 || nl > STORE_NAME_MAX || strchr(name, '/') != NULL || strcmp(name, ".") == 0 ||
	    strcmp(name, "..") == 0) {
		store_set_err(s, "invalid message name");
		return -1;
	}
	char mid[sizeof(((struct store_msg *)0)->message_id)];
	snprintf(mid, sizeof(mid), "%s", message_id ? message_id : "");
	sqlite3_stmt *st = store_stmt(s, ST_MSG_FINISH);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	bind_text(st, 2, name);
	bind_text(st, 3, flags ? flags : "");
	sqlite3_bind_int64(st, 4, (int64_t)modseq);
	bind_text(st, 5, mid);
	sqlite3_bind_int64(st, 6, internaldate);
	if (store_exec(s, st, "message finish") != 0)
		return -1;
	if (sqlite3_changes(s->db) == 0) {
		store_set_err(s, "message %" PRId64 " not found", id);
		return -1;
	}
	return 0;
}

int
store_msg_delete(struct store *s, int64_t id)
{
	sqlite3_stmt *st = store_stmt(s, ST_MSG_DELETE);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	return store_body_after_delete(s, store_exec(s, st, "message delete"));
}

/* ---- numbers ---- */

static uint64_t
file_size(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

/* account_id 0: all accounts. Folders counts mailboxes and directories (not account tops or
 * outboxes); the rest comes from the counters the triggers keep. */
int
store_stats(struct store *s, int64_t account_id, struct store_stats *r)
{
	sqlite3_stmt *st = store_stmt(s, account_id ? ST_STATS_ACCOUNT : ST_STATS_ALL);
	char wal[PATH_MAX];
	int ret = -1;
	memset(r, 0, sizeof(*r));
	if (!st)
		return -1;
	if (account_id)
		sqlite3_bind_int64(st, 1, account_id);
	if (sqlite3_step(st) != SQLITE_ROW) {
		store_db_err(s, "stats");
		goto out;
	}
	r->folders = (uint64_t)sqlite3_column_int64(st, 0);
	r->messages = (uint64_t)sqlite3_column_int64(st, 1);
	r->bodies = (uint64_t)sqlite3_column_int64(st, 2);
	r->body_bytes = (uint64_t)sqlite3_column_int64(st, 3);
	snprintf(wal, sizeof(wal), "%s-wal", s->path);
	r->file_bytes = file_size(s->path) + file_size(wal);
	store_finish(st);
	/* The packs, by the counters of the bodies in them (one pass over the folders). */
	st = store_stmt(s, ST_STATS_FILES);
	if (!st)
		goto out;
	if (sqlite3_step(st) != SQLITE_ROW) {
		store_db_err(s, "stats");
		goto out;
	}
	r->file_bytes += (uint64_t)sqlite3_column_int64(st, 0);
	ret = 0;
out:
	store_finish(st);
	return ret;
}
