/* store.c - the SQLite cache behind the mount (see store.h): schema and migrations, accounts,
 * folders, message metadata, bodies in pieces, and the numbers for .status.
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
 * Bodies and transactions. Bodies live in pack files (cache/pack.h), outside the database:
 * written once, not twice (WAL, then checkpoint). A handle appends to a pack of its own (its
 * flock), each body at the next PACK_ALIGN boundary after everything already in the file. A
 * writer keeps at most BODY_CHUNK bytes in memory and pwrite()s them when the buffer is full;
 * at store_body_end the row gets the body's place (body_pack, body_off) and has_body = 1, and
 * packs.used moves past it, in the caller's transaction if one is open, else in a short one of
 * its own: the write lock is never held while the network delivers the next piece. Bytes
 * appended by a transaction that never committed are garbage after packs.used (cut by the
 * sweep at the next start) or before the next body (overwritten, never referenced). A range
 * a row lets go of (delete, rewrite) is queued in dead_bodies by a trigger in the same
 * transaction and punched out (fallocate) after the commit: a reader that read the row before
 * the commit still reads the body, and checks the row again after reading. Packs are never
 * fsynced: a crash of mailfs loses nothing committed; a crash of the machine can cut a pack
 * short, and a body whose bytes are missing is then not served (store_body_read answers "not
 * cached" and the caller asks the server).
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
#define STORE_BUSY_MS 10000
/* PRAGMA application_id: "mlfs". */
#define STORE_APP_ID 0x6d6c6673
/* The most a body writer buffers before writing to its file. */
#define BODY_CHUNK (256 * 1024)
/* Dead bodies removed per transaction. */
#define REAP_BATCH 256
#define ERR_MAX 512

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
};
#define SCHEMA_VERSION ((int)(sizeof(migrations) / sizeof(migrations[0])))

/* ---- prepared statements ---- */

#define FOLDER_COLS                                                                                \
	"id, account_id, parent_id, kind, name, server_name, delim, special, uidvalidity,"         \
	" uidnext, highestmodseq, messages, mtime"
#define MSG_COLS "id, folder_id, uid, internaldate, size, flags, modseq, name, message_id, has_body"

/* Every statement: prepared on first use (stmt()), kept for the life of the handle. */
#define STATEMENTS(X)                                                                              \
	X(BEGIN, "BEGIN IMMEDIATE")                                                                \
	X(COMMIT, "COMMIT")                                                                        \
	X(ROLLBACK, "ROLLBACK")                                                                    \
	X(ACCOUNT_GET, "SELECT id FROM accounts WHERE name = ?1")                                  \
	X(ACCOUNT_ADD, "INSERT INTO accounts(name) VALUES (?1) ON CONFLICT(name) DO NOTHING")      \
	X(FOLDER_UPSERT,                                                                           \
	  "INSERT INTO folders(account_id, parent_id, kind, name, server_name,"                    \
	  " delim, special, mtime) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, unixepoch())"               \
	  " ON CONFLICT(parent_id, name) DO UPDATE SET kind = excluded.kind,"                      \
	  " server_name = excluded.server_name, delim = excluded.delim,"                           \
	  " special = excluded.special WHERE account_id = excluded.account_id"                     \
	  " RETURNING id")                                                                         \
	X(FOLDER_GET, "SELECT " FOLDER_COLS " FROM folders WHERE id = ?1")                         \
	X(FOLDER_LOOKUP, "SELECT " FOLDER_COLS " FROM folders WHERE parent_id = ?1 AND name = ?2") \
	X(FOLDER_STATE, "UPDATE folders SET uidvalidity = ?2, uidnext = ?3, highestmodseq = ?4"    \
			" WHERE id = ?1")                                                          \
	X(FOLDER_DELETE, "DELETE FROM folders WHERE id IN (WITH RECURSIVE sub(id) AS"              \
			 " (SELECT ?1 UNION ALL SELECT f.id FROM folders f JOIN sub"               \
			 " ON f.parent_id = sub.id) SELECT id FROM sub)")                          \
	X(FOLDER_CHILDREN, "SELECT " FOLDER_COLS " FROM folders WHERE parent_id = ?1"              \
			   " AND name > ?2 ORDER BY name LIMIT ?3")                                \
	X(FOLDER_NEXT, "SELECT " FOLDER_COLS " FROM folders WHERE account_id = ?1 AND id > ?2"     \
		       " ORDER BY id LIMIT 1")                                                     \
	X(MSG_UPSERT, "INSERT INTO messages(folder_id, uid, internaldate, size, flags, modseq,"    \
		      " name, message_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"                 \
		      " ON CONFLICT(folder_id, uid) DO UPDATE SET flags = excluded.flags,"         \
		      " modseq = excluded.modseq,"                                                 \
		      " size = CASE WHEN has_body THEN size ELSE excluded.size END RETURNING id")  \
	X(MSG_GET, "SELECT " MSG_COLS " FROM messages WHERE id = ?1")                              \
	X(MSG_LOOKUP, "SELECT " MSG_COLS " FROM messages WHERE folder_id = ?1 AND name = ?2")      \
	X(MSG_BY_UID, "SELECT " MSG_COLS " FROM messages WHERE folder_id = ?1 AND uid = ?2")       \
	X(MSG_LIST, "SELECT " MSG_COLS " FROM messages WHERE folder_id = ?1 AND id > ?2"           \
		    " ORDER BY id LIMIT ?3")                                                       \
	X(MSG_UIDS, "SELECT uid FROM messages WHERE folder_id = ?1 ORDER BY uid")                  \
	/* No index on has_body (it would cost a third of the insert time): walk the UIDs,         \
	 * unless the folder's counters say every body is there. */                                \
	X(MSG_MISSING, "SELECT uid FROM messages WHERE folder_id = ?1 AND uid > ?2"                \
		       " AND has_body = 0 AND (SELECT bodies < messages FROM folders"              \
		       " WHERE id = ?1) ORDER BY uid LIMIT ?3")                                    \
	X(MSG_FLAGS, "UPDATE messages SET flags = ?2, modseq = ?3 WHERE id = ?1")                  \
	X(MSG_DELETE, "DELETE FROM messages WHERE id = ?1")                                        \
	X(MSG_FINISH, "UPDATE messages SET name = ?2, flags = ?3, modseq = ?4, message_id = ?5, "  \
		      "internaldate = ?6 WHERE id = ?1")                                           \
	X(BODY_MSG, "SELECT size, has_body, body_pack, body_off FROM messages WHERE id = ?1")      \
	X(BODY_MARK, "UPDATE messages SET size = ?2, has_body = 0, body_pack = 0, body_off = 0"    \
		     " WHERE id = ?1")                                                             \
	X(BODY_DONE, "UPDATE messages SET has_body = 1, body_pack = ?3, body_off = ?4"             \
		     " WHERE id = ?1 AND size = ?2")                                               \
	X(BODY_DROP, "DELETE FROM bodies WHERE msg_id = ?1")                                       \
	X(BODY_EXISTS, "SELECT 1 FROM bodies WHERE msg_id = ?1")                                   \
	X(BODY_HAS, "SELECT has_body FROM messages WHERE id = ?1")                                 \
	X(DEAD_LIST, "SELECT id, pack, off, size FROM dead_bodies ORDER BY id LIMIT ?1")           \
	X(DEAD_DONE, "DELETE FROM dead_bodies WHERE id = ?1")                                      \
	X(PACK_LAST, "SELECT id FROM packs ORDER BY id DESC LIMIT 1")                              \
	X(PACK_USED, "SELECT used FROM packs WHERE id = ?1")                                       \
	X(PACK_ADD, "INSERT INTO packs(used) VALUES (0) RETURNING id")                             \
	X(PACK_GROW, "UPDATE packs SET used = max(used, ?2) WHERE id = ?1")                        \
	X(STATS_FILES, "SELECT sum(body_bytes) FROM folders WHERE kind IN (1, 2)")                 \
	X(STATS_ALL, "SELECT count(*), sum(messages), sum(bodies), sum(body_bytes) FROM folders"   \
		     " WHERE kind IN (1, 2)")                                                      \
	X(STATS_ACCOUNT, "SELECT count(*), sum(messages), sum(bodies), sum(body_bytes)"            \
			 " FROM folders WHERE account_id = ?1 AND kind IN (1, 2)")

#define STMT_ENUM(name, sql) ST_##name,
#define STMT_SQL(name, sql) [ST_##name] = sql,
enum stmt_id { STATEMENTS(STMT_ENUM) ST__COUNT };
static const char *const stmt_sql[ST__COUNT] = {STATEMENTS(STMT_SQL)};

struct store {
	sqlite3 *db;
	char *path;                     /* CACHE_DIR/mailfs.db */
	sqlite3_stmt *stmts[ST__COUNT]; /* prepared on first use, reset after each use */
	int pack_dfd;                   /* CACHE_DIR/bodies (cache/pack.h) */
	bool reap;                      /* the open transaction may have queued dead bodies */
	/* The pack this handle appends to (its lock held while wpack_fd is open), and where
	 * the next body goes. */
	int64_t wpack;
	int wpack_fd;
	uint64_t wpack_end;
	/* The pack the last read or punch used, kept open for the next. */
	int64_t rd_pack;
	int rd_fd;
	unsigned char *wbuf; /* the writer's buffer (BODY_CHUNK), kept between writers */
	bool writing;        /* a writer of this handle is not ended yet */
	char err[ERR_MAX];
};

struct store_body_writer {
	struct store *s; /* borrowed */
	int64_t msg_id;
	uint64_t size;  /* the body's real size */
	uint64_t off;   /* bytes received */
	int64_t pack;   /* where it goes: pack, from start; pos: where the buffer goes */
	uint64_t start, pos;
	bool failed;
	size_t cap, len;    /* buffer capacity (min(size, BODY_CHUNK)) and fill */
	unsigned char *buf; /* s->wbuf */
};

/* ---- errors ---- */

static void set_err(struct store *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
set_err(struct store *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s->err, sizeof(s->err), fmt, ap);
	va_end(ap);
}

/* "WHAT: sqlite's message". Returns -1. */
static int
db_err(struct store *s, const char *what)
{
	set_err(s, "%s: %s", what, sqlite3_errmsg(s->db));
	return -1;
}

const char *
store_errmsg(const struct store *s)
{
	return s ? s->err : "no store";
}

/* ---- statements ---- */

static sqlite3_stmt *
stmt(struct store *s, enum stmt_id id)
{
	if (!s->stmts[id] && sqlite3_prepare_v3(s->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
						&s->stmts[id], NULL) != SQLITE_OK) {
		db_err(s, "prepare");
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

/* Run a statement that returns no rows (or whose rows are ignored). */
static int
exec_stmt(struct store *s, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);
	while (rc == SQLITE_ROW)
		rc = sqlite3_step(st);
	int ret = rc == SQLITE_DONE ? 0 : db_err(s, what);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return ret;
}

static void reap_dead(struct store *s);
static void release_wpack(struct store *s);
static int after_delete(struct store *s, int ret);

static void
finish(sqlite3_stmt *st)
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
		set_err(s, "%s: empty name", what);
		return -1;
	}
	size_t n = strlen(name);
	if (n > STORE_NAME_MAX) {
		set_err(s, "%s: name longer than %d bytes", what, STORE_NAME_MAX);
		return -1;
	}
	if (strchr(name, '/') || strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
		set_err(s, "%s: invalid name \"%s\"", what, name);
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

/* Create the file 0600 ourselves (SQLite would honour the umask), or tighten it. */
static int
make_file(const char *path, char *err, size_t errlen)
{
	struct stat st;
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);
	int ret = -1;
	if (fd < 0) {
		open_err(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		open_err(err, errlen, "%s: not a regular file", path);
		goto out;
	}
	if ((st.st_mode & 0777) != 0600 && fchmod(fd, 0600) != 0) {
		open_err(err, errlen, "%s: cannot set mode 0600: %s", path, strerror(errno));
		goto out;
	}
	ret = 0;
out:
	if (fd >= 0)
		close(fd);
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
		s->pack_dfd = s->wpack_fd = s->rd_fd = -1;
	if (!s || asprintf(&s->path, "%s/%s", cache_dir, STORE_DB_NAME) < 0) {
		if (s)
			s->path = NULL;
		open_err(err, errlen, "%s: out of memory", cache_dir);
		goto out;
	}
	if (pack_dir_open(cache_dir, &s->pack_dfd, err, errlen) != 0)
		goto out;
	if (make_file(s->path, err, errlen) != 0)
		goto out;
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
	if (sqlite3_open_v2(s->path, &s->db, flags, NULL) != SQLITE_OK) {
		open_err(err, errlen, "%s: %s", s->path,
			 s->db ? sqlite3_errmsg(s->db) : "out of memory");
		goto out;
	}
	sqlite3_extended_result_codes(s->db, 1);
	sqlite3_busy_timeout(s->db, STORE_BUSY_MS);
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
	sqlite3_exec(s->db, "PRAGMA auto_vacuum = INCREMENTAL", NULL, NULL, NULL);
	if (set_wal(s, err, errlen) != 0)
		goto out;
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

void
store_close(struct store **sp)
{
	struct store *s = *sp;
	if (!s)
		return;
	for (int i = 0; i < ST__COUNT; i++)
		sqlite3_finalize(s->stmts[i]);
	sqlite3_close_v2(s->db);
	if (s->rd_fd >= 0)
		close(s->rd_fd);
	if (s->wpack_fd >= 0)
		close(s->wpack_fd);
	if (s->pack_dfd >= 0)
		close(s->pack_dfd);
	free(s->wbuf);
	free(s->path);
	free(s);
	*sp = NULL;
}

/* ---- transactions ---- */

int
store_begin(struct store *s)
{
	if (!sqlite3_get_autocommit(s->db)) {
		set_err(s, "begin: a transaction is already open (nesting is not supported)");
		return -1;
	}
	sqlite3_stmt *st = stmt(s, ST_BEGIN);
	return st ? exec_stmt(s, st, "begin") : -1;
}

int
store_commit(struct store *s)
{
	if (sqlite3_get_autocommit(s->db)) {
		set_err(s, "commit: no transaction is open");
		return -1;
	}
	sqlite3_stmt *st = stmt(s, ST_COMMIT);
	if (!st || exec_stmt(s, st, "commit") != 0)
		return -1;
	if (s->reap)
		reap_dead(s);
	return 0;
}

void
store_rollback(struct store *s)
{
	if (sqlite3_get_autocommit(s->db))
		return;
	sqlite3_stmt *st = stmt(s, ST_ROLLBACK);
	if (st) {
		sqlite3_step(st);
		sqlite3_reset(st);
	}
	/* The pack row may have been created in this transaction, and the bodies appended
	 * since its start are gone: the next writer looks for a pack again. */
	release_wpack(s);
}

/* ---- accounts ---- */

static int
account_get(struct store *s, const char *name, int64_t *id_r)
{
	sqlite3_stmt *st = stmt(s, ST_ACCOUNT_GET);
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
		db_err(s, "account");
	}
out:
	finish(st);
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
	sqlite3_stmt *st = stmt(s, ST_ACCOUNT_ADD);
	if (!st)
		return -1;
	bind_text(st, 1, name);
	if (exec_stmt(s, st, "account") != 0)
		return -1;
	rc = account_get(s, name, id_r);
	if (rc == 1)
		set_err(s, "account %s: vanished after insert", name);
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
		set_err(s, "folder %s: server name too long", name);
		goto out;
	}
	if ((unsigned)kind > STORE_FOLDER_OUTBOX ||
	    (parent_id == 0) != (kind == STORE_FOLDER_ACCOUNT)) {
		set_err(s, "folder %s: kind %d does not fit parent %" PRId64, name, (int)kind,
			parent_id);
		goto out;
	}
	st = stmt(s, ST_FOLDER_UPSERT);
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
		set_err(s, "folder %s: the name is used by another account under parent %" PRId64,
			name, parent_id);
	} else if (rc == SQLITE_CONSTRAINT_TRIGGER) {
		set_err(s, "folder %s: parent folder %" PRId64 " not found in account %" PRId64,
			name, parent_id, account_id);
	} else if (rc == SQLITE_CONSTRAINT_FOREIGNKEY) {
		set_err(s, "folder %s: account %" PRId64 " not found", name, account_id);
	} else {
		db_err(s, "folder");
	}
out:
	finish(st);
	return ret;
}

/* Fetch one folder row from a statement already bound: 0, 1 not found, -1. */
static int
folder_one(struct store *s, sqlite3_stmt *st, struct store_folder *r)
{
	int rc = sqlite3_step(st);
	int ret = -1;
	if (rc == SQLITE_ROW) {
		folder_row(st, r);
		ret = 0;
	} else if (rc == SQLITE_DONE) {
		set_err(s, "folder not found");
		ret = 1;
	} else {
		db_err(s, "folder");
	}
	finish(st);
	return ret;
}

int
store_folder_get(struct store *s, int64_t id, struct store_folder *r)
{
	sqlite3_stmt *st = stmt(s, ST_FOLDER_GET);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	return folder_one(s, st, r);
}

int
store_folder_lookup(struct store *s, int64_t parent_id, const char *name, struct store_folder *r)
{
	sqlite3_stmt *st = stmt(s, ST_FOLDER_LOOKUP);
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
	sqlite3_stmt *st = stmt(s, ST_FOLDER_STATE);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, uidvalidity);
	sqlite3_bind_int64(st, 3, uidnext);
	sqlite3_bind_int64(st, 4, (int64_t)highestmodseq);
	if (exec_stmt(s, st, "folder state") != 0)
		return -1;
	if (sqlite3_changes(s->db) == 0) {
		set_err(s, "folder %" PRId64 " not found", id);
		return -1;
	}
	return 0;
}

int
store_folder_delete(struct store *s, int64_t id)
{
	sqlite3_stmt *st = stmt(s, ST_FOLDER_DELETE);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	return after_delete(s, exec_stmt(s, st, "folder delete"));
}

int
store_folder_children(struct store *s, int64_t parent_id, const char *after,
		      struct store_folder *out, size_t max)
{
	sqlite3_stmt *st = stmt(s, ST_FOLDER_CHILDREN);
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
		n = db_err(s, "folder list");
	finish(st);
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
		set_err(s, "folders: out of memory");
		goto out;
	}
	for (;;) {
		sqlite3_stmt *st = stmt(s, ST_FOLDER_NEXT);
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

static void
msg_row(sqlite3_stmt *st, struct store_msg *m)
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
}

static int
check_flags(struct store *s, const char *flags)
{
	if (flags && strlen(flags) >= sizeof(((struct store_msg *)0)->flags)) {
		set_err(s, "flags longer than %zu bytes",
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
	st = stmt(s, ST_MSG_UPSERT);
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
		set_err(s, "folder %" PRId64 ": name \"%s\" is already used by another message",
			m->folder_id, m->name);
	} else if (rc == SQLITE_CONSTRAINT_FOREIGNKEY) {
		set_err(s, "message %s: folder %" PRId64 " not found", m->name, m->folder_id);
	} else {
		db_err(s, "message");
	}
out:
	finish(st);
	return ret;
}

static int
msg_one(struct store *s, sqlite3_stmt *st, struct store_msg *r)
{
	int rc = sqlite3_step(st);
	int ret = -1;
	if (rc == SQLITE_ROW) {
		msg_row(st, r);
		ret = 0;
	} else if (rc == SQLITE_DONE) {
		set_err(s, "message not found");
		ret = 1;
	} else {
		db_err(s, "message");
	}
	finish(st);
	return ret;
}

int
store_msg_get(struct store *s, int64_t id, struct store_msg *r)
{
	sqlite3_stmt *st = stmt(s, ST_MSG_GET);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	return msg_one(s, st, r);
}

int
store_msg_lookup(struct store *s, int64_t folder_id, const char *name, struct store_msg *r)
{
	sqlite3_stmt *st = stmt(s, ST_MSG_LOOKUP);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, folder_id);
	bind_text(st, 2, name ? name : "");
	return msg_one(s, st, r);
}

int
store_msg_by_uid(struct store *s, int64_t folder_id, uint32_t uid, struct store_msg *r)
{
	sqlite3_stmt *st = stmt(s, ST_MSG_BY_UID);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, folder_id);
	sqlite3_bind_int64(st, 2, uid);
	return msg_one(s, st, r);
}

int
store_msg_list(struct store *s, int64_t folder_id, int64_t after_id, struct store_msg *out,
	       size_t max)
{
	sqlite3_stmt *st = stmt(s, ST_MSG_LIST);
	int n = 0, rc = SQLITE_DONE;
	if (!st)
		return -1;
	if (max > INT_MAX)
		max = INT_MAX;
	sqlite3_bind_int64(st, 1, folder_id);
	sqlite3_bind_int64(st, 2, after_id);
	sqlite3_bind_int64(st, 3, (int64_t)max);
	while ((size_t)n < max && (rc = sqlite3_step(st)) == SQLITE_ROW)
		msg_row(st, &out[n++]);
	if ((size_t)n < max && rc != SQLITE_DONE)
		n = db_err(s, "message list");
	finish(st);
	return n;
}

int
store_msg_uids(struct store *s, int64_t folder_id, uint32_t **uids_r, size_t *n_r)
{
	sqlite3_stmt *st = stmt(s, ST_MSG_UIDS);
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
				set_err(s, "message uids: out of memory");
				goto out;
			}
			uids = p;
			cap = ncap;
		}
		uids[n++] = (uint32_t)sqlite3_column_int64(st, 0);
	}
	if (rc != SQLITE_DONE) {
		db_err(s, "message uids");
		goto out;
	}
	*uids_r = uids;
	*n_r = n;
	uids = NULL;
	ret = 0;
out:
	free(uids);
	finish(st);
	return ret;
}

int
store_msg_missing_bodies(struct store *s, int64_t folder_id, uint32_t after_uid, uint32_t *uids,
			 size_t max, size_t *n_r)
{
	sqlite3_stmt *st = stmt(s, ST_MSG_MISSING);
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
		db_err(s, "missing bodies");
	} else {
		*n_r = n;
		ret = 0;
	}
	finish(st);
	return ret;
}

int
store_msg_set_flags(struct store *s, int64_t id, const char *flags, uint64_t modseq)
{
	if (check_flags(s, flags) != 0)
		return -1;
	sqlite3_stmt *st = stmt(s, ST_MSG_FLAGS);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	bind_text(st, 2, flags ? flags : "");
	sqlite3_bind_int64(st, 3, (int64_t)modseq);
	if (exec_stmt(s, st, "message flags") != 0)
		return -1;
	if (sqlite3_changes(s->db) == 0) {
		set_err(s, "message %" PRId64 " not found", id);
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
		set_err(s, "invalid message name");
		return -1;
	}
	char mid[sizeof(((struct store_msg *)0)->message_id)];
	snprintf(mid, sizeof(mid), "%s", message_id ? message_id : "");
	sqlite3_stmt *st = stmt(s, ST_MSG_FINISH);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	bind_text(st, 2, name);
	bind_text(st, 3, flags ? flags : "");
	sqlite3_bind_int64(st, 4, (int64_t)modseq);
	bind_text(st, 5, mid);
	sqlite3_bind_int64(st, 6, internaldate);
	if (exec_stmt(s, st, "message finish") != 0)
		return -1;
	if (sqlite3_changes(s->db) == 0) {
		set_err(s, "message %" PRId64 " not found", id);
		return -1;
	}
	return 0;
}

int
store_msg_delete(struct store *s, int64_t id)
{
	sqlite3_stmt *st = stmt(s, ST_MSG_DELETE);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	return after_delete(s, exec_stmt(s, st, "message delete"));
}

/* ---- bodies ---- */

/* Run one step of body work in the caller's transaction, or in a short one of our own. */
static int
body_txn_begin(struct store *s, bool *own)
{
	*own = sqlite3_get_autocommit(s->db) != 0;
	return *own ? store_begin(s) : 0;
}

static int
body_txn_end(struct store *s, bool own, int ret)
{
	if (!own)
		return ret;
	if (ret == 0)
		ret = store_commit(s);
	if (ret != 0)
		store_rollback(s);
	return ret;
}

static void
release_wpack(struct store *s)
{
	if (s->wpack_fd >= 0)
		close(s->wpack_fd); /* and with it the lock */
	s->wpack_fd = -1;
	s->wpack = 0;
	s->wpack_end = 0;
}

/* A descriptor of pack `id` for reading or punching (kept open for the next call), or -1
 * with errno (ENOENT: the file is gone). */
static int
read_fd(struct store *s, int64_t id)
{
	if (s->rd_fd >= 0 && s->rd_pack == id)
		return s->rd_fd;
	if (s->rd_fd >= 0)
		close(s->rd_fd);
	s->rd_fd = pack_open(s->pack_dfd, id, false, false, NULL);
	s->rd_pack = s->rd_fd >= 0 ? id : 0;
	return s->rd_fd;
}

/* One integer of a one-row statement bound to `id`: 0, 1 if there is no row, -1 error. */
static int
row_int(struct store *s, enum stmt_id which, int64_t id, int64_t *v_r)
{
	sqlite3_stmt *st = stmt(s, which);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	int rc = sqlite3_step(st);
	int ret = rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? 1 : db_err(s, "pack");
	if (rc == SQLITE_ROW)
		*v_r = sqlite3_column_int64(st, 0);
	finish(st);
	return ret;
}

/* Make sure this handle has a pack to append to, with room: the newest pack if no other
 * writer holds it and it is not full, else a new one. Appending starts after everything in
 * the file, committed or not: bytes of another handle's open transaction are never
 * overwritten. Runs in the caller's transaction (a new pack row is committed with the
 * first body in it). */
static int
acquire_wpack(struct store *s)
{
	int64_t id = 0, used = 0;
	uint64_t size = 0;
	if (s->wpack_fd >= 0 && s->wpack_end < PACK_MAX)
		return 0;
	release_wpack(s);
	sqlite3_stmt *st = stmt(s, ST_PACK_LAST);
	if (!st)
		return -1;
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		id = sqlite3_column_int64(st, 0);
	finish(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_err(s, "pack");
	if (id != 0) {
		int fd = pack_open(s->pack_dfd, id, false, true, &size);
		if (fd >= 0 && row_int(s, ST_PACK_USED, id, &used) == 0 &&
		    (uint64_t)used < PACK_MAX && size < PACK_MAX) {
			s->wpack = id;
			s->wpack_fd = fd;
			s->wpack_end = pack_align(size > (uint64_t)used ? size : (uint64_t)used);
			return 0;
		}
		if (fd >= 0)
			close(fd);
	}
	st = stmt(s, ST_PACK_ADD);
	if (!st)
		return -1;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		id = sqlite3_column_int64(st, 0);
	finish(st);
	if (rc != SQLITE_ROW)
		return db_err(s, "pack");
	int fd = pack_open(s->pack_dfd, id, true, true, NULL);
	if (fd < 0 && errno == EEXIST) {
		/* Left by a transaction that was rolled back (the row is ours now; writers
		 * are serialized by the database's lock): start it again. */
		fd = pack_open(s->pack_dfd, id, false, true, NULL);
		if (fd >= 0 && ftruncate(fd, 0) != 0) {
			close(fd);
			fd = -1;
		}
	}
	if (fd < 0) {
		set_err(s, "pack %" PRId64 ": %s", id, strerror(errno));
		return -1;
	}
	s->wpack = id;
	s->wpack_fd = fd;
	s->wpack_end = 0;
	return 0;
}

/* Give back the blocks of ranges no longer wanted (queued in dead_bodies), a batch at a
 * time: first the blocks, then the rows, so a crash in between only repeats the punch.
 * Never inside a transaction. Ranges are never used again (writers only append), so a late
 * or repeated punch is harmless. Failures leave the rows for the next time
 * (store_body_sweep at the latest); they are not the caller's and are not reported. */
static void
reap_dead(struct store *s)
{
	int64_t ids[REAP_BATCH];
	char keep[ERR_MAX];
	memcpy(keep, s->err, sizeof(keep));
	s->reap = false;
	for (;;) {
		sqlite3_stmt *st = stmt(s, ST_DEAD_LIST);
		size_t n = 0;
		if (!st)
			break;
		sqlite3_bind_int64(st, 1, REAP_BATCH);
		while (n < REAP_BATCH && sqlite3_step(st) == SQLITE_ROW) {
			ids[n++] = sqlite3_column_int64(st, 0);
			int fd = read_fd(s, sqlite3_column_int64(st, 1));
			if (fd >= 0)
				(void)pack_punch(fd, (uint64_t)sqlite3_column_int64(st, 2),
						 (uint64_t)sqlite3_column_int64(st, 3));
		}
		finish(st);
		if (n == 0 || store_begin(s) != 0)
			break;
		int ret = 0;
		st = stmt(s, ST_DEAD_DONE);
		for (size_t i = 0; i < n && ret == 0 && st; i++) {
			sqlite3_bind_int64(st, 1, ids[i]);
			ret = exec_stmt(s, st, "dead bodies");
		}
		if (!st || ret != 0 || store_commit(s) != 0) {
			store_rollback(s);
			break;
		}
		if (n < REAP_BATCH)
			break;
	}
	memcpy(s->err, keep, sizeof(keep));
}

/* After a statement that may have queued dead bodies: their blocks go now in autocommit
 * mode, or when the caller's transaction commits. */
static int
after_delete(struct store *s, int ret)
{
	if (ret != 0)
		return ret;
	if (sqlite3_get_autocommit(s->db))
		reap_dead(s);
	else
		s->reap = true;
	return 0;
}

struct sweep_ctx {
	struct store *s;
	uint64_t removed;
	int err;
};

static int
sweep_one(void *ctx, int64_t id)
{
	struct sweep_ctx *c = ctx;
	struct store *s = c->s;
	int64_t used = 0;
	int r = row_int(s, ST_PACK_USED, id, &used);
	if (r < 0)
		return 1; /* stop; the reason is in s->err */
	if (r == 1) {
		/* Its row was never committed. */
		if (pack_remove(s->pack_dfd, id) == 0)
			c->removed++;
		else
			c->err = errno;
		return 0;
	}
	uint64_t size;
	int fd = pack_open(s->pack_dfd, id, false, true, &size);
	if (fd < 0) {
		if (errno != EWOULDBLOCK)
			c->err = errno;
		return 0;
	}
	/* Bytes after the last committed body were appended by a transaction that never
	 * committed. */
	if (size > (uint64_t)used && ftruncate(fd, (off_t)used) != 0)
		c->err = errno;
	close(fd);
	return 0;
}

int
store_body_sweep(struct store *s, uint64_t *removed_r)
{
	struct sweep_ctx c = {.s = s};
	if (removed_r)
		*removed_r = 0;
	if (!sqlite3_get_autocommit(s->db)) {
		set_err(s, "body sweep: not outside a transaction");
		return -1;
	}
	reap_dead(s);
	int r = pack_each(s->pack_dfd, sweep_one, &c);
	if (removed_r)
		*removed_r = c.removed;
	if (r > 0)
		return -1; /* sweep_one said why */
	if (r < 0 || c.err != 0) {
		set_err(s, "body sweep: %s", strerror(r < 0 ? errno : c.err));
		return -1;
	}
	return 0;
}

int
store_body_begin(struct store *s, int64_t msg_id, uint64_t size, struct store_body_writer **w_r,
		 bool *size_changed_r)
{
	struct store_body_writer *w = NULL;
	sqlite3_stmt *st = NULL;
	bool own = false, changed = false;
	int ret = -1;
	*w_r = NULL;
	if (size_changed_r)
		*size_changed_r = false;
	if (s->writing) {
		set_err(s, "message %" PRId64 ": another body is being written", msg_id);
		return -1;
	}
	if (size > (uint64_t)INT64_MAX - PACK_MAX) {
		set_err(s, "message %" PRId64 ": body of %" PRIu64 " bytes is too large", msg_id,
			size);
		return -1;
	}
	if (body_txn_begin(s, &own) != 0)
		goto out;
	st = stmt(s, ST_BODY_MSG);
	if (!st)
		goto out;
	sqlite3_bind_int64(st, 1, msg_id);
	int rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		if (rc == SQLITE_DONE)
			set_err(s, "message %" PRId64 " not found", msg_id);
		else
			db_err(s, "body");
		goto out;
	}
	changed = (uint64_t)sqlite3_column_int64(st, 0) != size;
	bool had = sqlite3_column_int(st, 1) != 0;
	bool legacy = had && sqlite3_column_int64(st, 2) == 0;
	finish(st);
	st = NULL;
	if (changed || had) {
		/* The old range, if any, is queued for punching (trigger messages_au_body). */
		st = stmt(s, ST_BODY_MARK);
		if (!st)
			goto out;
		sqlite3_bind_int64(st, 1, msg_id);
		sqlite3_bind_int64(st, 2, (int64_t)size);
		if (exec_stmt(s, st, "body") != 0)
			goto out;
		st = NULL;
		s->reap = true;
	}
	if (legacy) {
		/* A body cached before bodies were packs: the new one replaces it. */
		st = stmt(s, ST_BODY_DROP);
		if (!st)
			goto out;
		sqlite3_bind_int64(st, 1, msg_id);
		if (exec_stmt(s, st, "body") != 0)
			goto out;
		st = NULL;
	}
	if (acquire_wpack(s) != 0)
		goto out;
	if (!s->wbuf && !(s->wbuf = malloc(BODY_CHUNK))) {
		set_err(s, "body: out of memory");
		goto out;
	}
	w = calloc(1, sizeof(*w));
	if (!w) {
		set_err(s, "body: out of memory");
		goto out;
	}
	w->s = s;
	w->msg_id = msg_id;
	w->size = size;
	w->pack = s->wpack;
	w->start = w->pos = s->wpack_end;
	w->cap = size < BODY_CHUNK ? (size_t)size : BODY_CHUNK;
	w->buf = s->wbuf;
	ret = 0;
out:
	finish(st);
	ret = body_txn_end(s, own, ret);
	if (ret == 0) {
		s->writing = true;
		*w_r = w;
		if (size_changed_r)
			*size_changed_r = changed;
	} else {
		free(w);
	}
	return ret;
}

/* Write the buffer to the pack. */
static int
body_flush(struct store_body_writer *w)
{
	struct store *s = w->s;
	if (w->len == 0)
		return 0;
	if (s->wpack_fd < 0 || s->wpack != w->pack) {
		set_err(s, "message %" PRId64 ": its transaction was rolled back", w->msg_id);
		w->failed = true;
		return -1;
	}
	if (pack_write(s->wpack_fd, w->pos, w->buf, w->len) != 0) {
		set_err(s, "message %" PRId64 ": cannot write its body: %s", w->msg_id,
			strerror(errno));
		w->failed = true;
		return -1;
	}
	w->pos += w->len;
	w->len = 0;
	return 0;
}

int
store_body_write(struct store_body_writer *w, const void *data, size_t len)
{
	const unsigned char *p = data;
	if (w->failed) {
		set_err(w->s, "message %" PRId64 ": body write after an error", w->msg_id);
		return -1;
	}
	if (len > w->size - w->off) {
		set_err(w->s, "message %" PRId64 ": body write beyond its size (%" PRIu64 " bytes)",
			w->msg_id, w->size);
		w->failed = true;
		return -1;
	}
	while (len > 0) {
		size_t n = w->cap - w->len;
		if (n > len)
			n = len;
		memcpy(w->buf + w->len, p, n);
		w->len += n;
		w->off += n;
		p += n;
		len -= n;
		if (w->len == w->cap && body_flush(w) != 0)
			return -1;
	}
	return 0;
}

/* All bytes are in the pack: point the row at them and mark the body cached, and move the
 * pack's committed end, in the caller's transaction or in one of our own. */
static int
body_done(struct store_body_writer *w)
{
	struct store *s = w->s;
	bool own;
	int ret = -1;
	if (s->wpack_fd < 0 || s->wpack != w->pack) {
		set_err(s, "message %" PRId64 ": its transaction was rolled back", w->msg_id);
		return -1;
	}
	if (body_txn_begin(s, &own) != 0)
		return -1;
	sqlite3_stmt *st = stmt(s, ST_BODY_DONE);
	if (!st)
		goto out;
	sqlite3_bind_int64(st, 1, w->msg_id);
	sqlite3_bind_int64(st, 2, (int64_t)w->size);
	sqlite3_bind_int64(st, 3, w->pack);
	sqlite3_bind_int64(st, 4, (int64_t)w->start);
	if (exec_stmt(s, st, "body") != 0)
		goto out;
	if (sqlite3_changes(s->db) != 1) {
		set_err(s, "message %" PRId64 " was deleted or resized while its body was written",
			w->msg_id);
		goto out;
	}
	st = stmt(s, ST_PACK_GROW);
	if (!st)
		goto out;
	sqlite3_bind_int64(st, 1, w->pack);
	sqlite3_bind_int64(st, 2, (int64_t)(w->start + w->size));
	if (exec_stmt(s, st, "pack") != 0)
		goto out;
	ret = 0;
out:
	ret = body_txn_end(s, own, ret);
	/* The next body goes after this one; a dropped one's space is used again. */
	if (ret == 0 && s->wpack == w->pack)
		s->wpack_end = pack_align(w->start + w->size);
	return ret;
}

int
store_body_end(struct store_body_writer **wp, bool ok)
{
	struct store_body_writer *w = *wp;
	int ret = -1;
	if (!w)
		return 0;
	struct store *s = w->s;
	if (ok && !w->failed && w->off == w->size) {
		if (body_flush(w) == 0)
			ret = body_done(w);
	} else if (ok && !w->failed) {
		set_err(s,
			"message %" PRId64 ": body incomplete (%" PRIu64 " of %" PRIu64 " bytes)",
			w->msg_id, w->off, w->size);
	} else if (!ok) {
		ret = 0; /* dropped: has_body stays 0, its bytes are overwritten by the next */
	}
	s->writing = false;
	free(w);
	*wp = NULL;
	return ret;
}

/* A body cached by schema version 1, in the bodies table. */
static int
legacy_read(struct store *s, int64_t msg_id, uint64_t offset, void *buf, size_t len,
	    size_t *got_r)
{
	sqlite3_blob *blob = NULL;
	sqlite3_stmt *st = NULL;
	int ret = -1;
	/* The open blob keeps a read transaction: has_body is read from the same snapshot. */
	if (sqlite3_blob_open(s->db, "main", "bodies", "data", msg_id, 0, &blob) != SQLITE_OK) {
		set_err(s, "message %" PRId64 ": cannot read body: %s", msg_id,
			sqlite3_errmsg(s->db));
		sqlite3_blob_close(blob);
		blob = NULL;
		st = stmt(s, ST_BODY_EXISTS);
		if (st) {
			sqlite3_bind_int64(st, 1, msg_id);
			if (sqlite3_step(st) == SQLITE_DONE) {
				set_err(s, "message %" PRId64 ": body not cached", msg_id);
				ret = 1;
			}
		}
		goto out;
	}
	st = stmt(s, ST_BODY_HAS);
	if (!st)
		goto out;
	sqlite3_bind_int64(st, 1, msg_id);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_DONE || (rc == SQLITE_ROW && sqlite3_column_int(st, 0) == 0)) {
		set_err(s, "message %" PRId64 ": body not cached", msg_id);
		ret = 1;
		goto out;
	}
	if (rc != SQLITE_ROW) {
		db_err(s, "body read");
		goto out;
	}
	uint64_t size = (uint64_t)sqlite3_blob_bytes(blob);
	if (offset < size) {
		if (len > size - offset)
			len = (size_t)(size - offset);
		if (len > INT_MAX)
			len = INT_MAX;
		if (sqlite3_blob_read(blob, buf, (int)len, (int)offset) != SQLITE_OK) {
			db_err(s, "body read");
			goto out;
		}
		*got_r = len;
	}
	ret = 0;
out:
	finish(st);
	sqlite3_blob_close(blob);
	return ret;
}

struct body_loc {
	bool has;
	uint64_t size;
	int64_t pack;
	uint64_t off;
};

/* Where the body of msg_id is: 0, or -1 error. A missing row reads as "no body". */
static int
body_where(struct store *s, int64_t msg_id, struct body_loc *r)
{
	memset(r, 0, sizeof(*r));
	sqlite3_stmt *st = stmt(s, ST_BODY_MSG);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, msg_id);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		r->size = (uint64_t)sqlite3_column_int64(st, 0);
		r->has = sqlite3_column_int(st, 1) != 0;
		r->pack = sqlite3_column_int64(st, 2);
		r->off = (uint64_t)sqlite3_column_int64(st, 3);
	}
	finish(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : db_err(s, "body read");
}

int
store_body_read(struct store *s, int64_t msg_id, uint64_t offset, void *buf, size_t len,
		size_t *got_r)
{
	struct body_loc at, again;
	*got_r = 0;
	if (body_where(s, msg_id, &at) != 0)
		return -1;
	if (!at.has) {
		set_err(s, "message %" PRId64 ": body not cached", msg_id);
		return 1;
	}
	if (at.pack == 0)
		return legacy_read(s, msg_id, offset, buf, len, got_r);
	if (offset >= at.size)
		return 0;
	if (len > at.size - offset)
		len = (size_t)(at.size - offset);
	int fd = read_fd(s, at.pack);
	size_t got = 0;
	if (fd < 0 && errno != ENOENT) {
		set_err(s, "message %" PRId64 ": cannot open pack %" PRId64 ": %s", msg_id,
			at.pack, strerror(errno));
		return -1;
	}
	if (fd >= 0 && pack_read(fd, at.off + offset, buf, len, &got) != 0) {
		set_err(s, "message %" PRId64 ": cannot read pack %" PRId64 ": %s", msg_id,
			at.pack, strerror(errno));
		return -1;
	}
	/* The range is punched only after the transaction that let it go commits: if the row
	 * still points at it now, what was read is the body. */
	if (body_where(s, msg_id, &again) != 0)
		return -1;
	if (!again.has || again.pack != at.pack || again.off != at.off || again.size != at.size) {
		set_err(s, "message %" PRId64 ": body not cached", msg_id);
		return 1;
	}
	if (got < len) {
		/* The pack was cut short (a crash of the machine: packs are never synced): not
		 * served; the caller fetches it from the server. */
		set_err(s, "message %" PRId64 ": pack %" PRId64 " ends inside its body", msg_id,
			at.pack);
		return 1;
	}
	*got_r = got;
	return 0;
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
	sqlite3_stmt *st = stmt(s, account_id ? ST_STATS_ACCOUNT : ST_STATS_ALL);
	char wal[PATH_MAX];
	int ret = -1;
	memset(r, 0, sizeof(*r));
	if (!st)
		return -1;
	if (account_id)
		sqlite3_bind_int64(st, 1, account_id);
	if (sqlite3_step(st) != SQLITE_ROW) {
		db_err(s, "stats");
		goto out;
	}
	r->folders = (uint64_t)sqlite3_column_int64(st, 0);
	r->messages = (uint64_t)sqlite3_column_int64(st, 1);
	r->bodies = (uint64_t)sqlite3_column_int64(st, 2);
	r->body_bytes = (uint64_t)sqlite3_column_int64(st, 3);
	snprintf(wal, sizeof(wal), "%s-wal", s->path);
	r->file_bytes = file_size(s->path) + file_size(wal);
	finish(st);
	/* The packs, by the counters of the bodies in them (one pass over the folders). */
	st = stmt(s, ST_STATS_FILES);
	if (!st)
		goto out;
	if (sqlite3_step(st) != SQLITE_ROW) {
		db_err(s, "stats");
		goto out;
	}
	r->file_bytes += (uint64_t)sqlite3_column_int64(st, 0);
	ret = 0;
out:
	finish(st);
	return ret;
}
