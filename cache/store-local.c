/* store-local.c - the rows the mount changes (see store.h "local changes"): scratch rows
 * and their files, message rows saved back whole, folders made, renamed or moved here.
 *
 * What it does not do: decide what a change means on the server (cache/journal.h records
 * that), or talk to one.
 */
#include "cache/store.h"
#include "cache/store-int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SCRATCH_DIR "scratch"

bool
store_name_taken(const struct store *s)
{
	return strstr(s->err, "already used") != NULL;
}

static int
name_ok(struct store *s, const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > STORE_NAME_MAX || strchr(name, '/') != NULL || strcmp(name, ".") == 0 ||
	    strcmp(name, "..") == 0) {
		store_set_err(s, "invalid name \"%s\"", name);
		return -1;
	}
	return 0;
}

/* The result of a write statement: 0, or -1 with a reason that names a taken name. */
static int
step_write(struct store *s, sqlite3_stmt *st, const char *what, const char *name)
{
	int rc = sqlite3_step(st);
	while (rc == SQLITE_ROW)
		rc = sqlite3_step(st);
	int ret = 0;
	if (rc == SQLITE_CONSTRAINT_UNIQUE) {
		store_set_err(s, "%s: name \"%s\" is already used", what, name ? name : "");
		ret = -1;
	} else if (rc != SQLITE_DONE) {
		ret = store_db_err(s, what);
	}
	store_finish(st);
	return ret;
}

int
store_msg_new_local(struct store *s, int64_t folder_id, const char *name, int64_t mtime,
		    struct store_msg *m)
{
	if (name_ok(s, name) != 0)
		return -1;
	sqlite3_stmt *st = store_stmt(s, ST_MSG_LOCAL_NEW);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, folder_id);
	sqlite3_bind_int64(st, 2, mtime);
	sqlite3_bind_text(st, 3, name, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 4, 0);
	int rc = sqlite3_step(st);
	int64_t id = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	if (rc == SQLITE_ROW)
		rc = sqlite3_step(st);
	store_finish(st);
	if (rc == SQLITE_CONSTRAINT_UNIQUE) {
		store_set_err(s, "message: name \"%s\" is already used", name);
		return -1;
	}
	if (rc != SQLITE_DONE || id == 0)
		return store_db_err(s, "new local message");
	st = store_stmt(s, ST_MSG_LOCAL_UID);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	if (store_exec(s, st, "new local message") != 0)
		return -1;
	return store_msg_get(s, id, m) == 0 ? 0 : -1;
}

int
store_msg_save(struct store *s, const struct store_msg *m)
{
	if (name_ok(s, m->name) != 0)
		return -1;
	if (strlen(m->flags) >= sizeof(m->flags)) {
		store_set_err(s, "flags too long");
		return -1;
	}
	sqlite3_stmt *st = store_stmt(s, ST_MSG_SAVE);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, m->id);
	sqlite3_bind_int64(st, 2, m->folder_id);
	sqlite3_bind_int64(st, 3, m->uid > 0 ? (int64_t)m->uid : -m->id);
	sqlite3_bind_int64(st, 4, m->internaldate);
	sqlite3_bind_text(st, 5, m->flags, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, m->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 7, m->message_id, (int)strnlen(m->message_id, sizeof(m->message_id)),
			  SQLITE_STATIC);
	sqlite3_bind_int(st, 8, (int)m->state);
	sqlite3_bind_int64(st, 9, m->orig_folder);
	sqlite3_bind_int64(st, 10, m->orig_uid);
	sqlite3_bind_int(st, 11, m->mtime_set ? 1 : 0);
	sqlite3_bind_text(st, 12, m->prev_name, -1, SQLITE_STATIC);
	if (step_write(s, st, "message", m->name) != 0)
		return -1;
	if (sqlite3_changes(s->db) == 0) {
		store_set_err(s, "message %" PRId64 " not found", m->id);
		return -1;
	}
	return 0;
}

int
store_msg_set_size(struct store *s, int64_t id, uint64_t size)
{
	sqlite3_stmt *st = store_stmt(s, ST_MSG_SIZE);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, (int64_t)size);
	return store_exec(s, st, "message size");
}

int
store_msg_drop_body(struct store *s, int64_t id, uint64_t size)
{
	sqlite3_stmt *st = store_stmt(s, ST_BODY_MARK);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, (int64_t)size);
	return store_body_after_delete(s, store_exec(s, st, "message body drop"));
}

int
store_msg_shadow(struct store *s, int64_t folder_id, const char *name, struct store_msg *r)
{
	sqlite3_stmt *st = store_stmt(s, ST_MSG_SHADOW);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, folder_id);
	sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	int ret = rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? 1 : store_db_err(s, "message shadow");
	if (ret == 0)
		store_msg_row(st, r);
	store_finish(st);
	return ret;
}

int
store_msg_next_scratch(struct store *s, int64_t after_id, struct store_msg *r)
{
	sqlite3_stmt *st = store_stmt(s, ST_MSG_SCRATCH_NEXT);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, after_id);
	int rc = sqlite3_step(st);
	int ret = rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? 1 : store_db_err(s, "scratch rows");
	if (ret == 0)
		store_msg_row(st, r);
	store_finish(st);
	return ret;
}

/* ---- scratch files ---- */

static int
scratch_dir(struct store *s)
{
	if (s->scratch_dfd >= 0)
		return s->scratch_dfd;
	char dir[4096];
	const char *slash = strrchr(s->path, '/');
	int n = slash ? (int)(slash - s->path) : 1;
	snprintf(dir, sizeof(dir), "%.*s/%s", n, slash ? s->path : ".", SCRATCH_DIR);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -1;
	s->scratch_dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return s->scratch_dfd;
}

int
store_scratch_open(struct store *s, int64_t id, bool create)
{
	int dfd = scratch_dir(s);
	if (dfd < 0)
		return -1;
	char name[32];
	snprintf(name, sizeof(name), "%" PRId64, id);
	return openat(dfd, name, O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0), 0600);
}

void
store_scratch_remove(struct store *s, int64_t id)
{
	int dfd = scratch_dir(s);
	if (dfd < 0)
		return;
	char name[32];
	snprintf(name, sizeof(name), "%" PRId64, id);
	(void)unlinkat(dfd, name, 0);
}

/* ---- folders ---- */

int
store_folder_save(struct store *s, const struct store_folder *f)
{
	if (name_ok(s, f->name) != 0)
		return -1;
	sqlite3_stmt *st = store_stmt(s, ST_FOLDER_SAVE);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, f->id);
	sqlite3_bind_int64(st, 2, f->parent_id);
	sqlite3_bind_text(st, 3, f->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, f->server_name, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 5, (unsigned char)f->delim);
	sqlite3_bind_int(st, 6, f->local ? 1 : 0);
	sqlite3_bind_int64(st, 7, f->special);
	return step_write(s, st, "folder", f->name);
}

int
store_folder_rename_prefix(struct store *s, int64_t account_id, const char *old_prefix,
			   const char *new_prefix)
{
	sqlite3_stmt *st = store_stmt(s, ST_FOLDER_RENAME_SUB);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, account_id);
	sqlite3_bind_text(st, 2, old_prefix, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, new_prefix, -1, SQLITE_STATIC);
	return store_exec(s, st, "folder rename");
}

int
store_folder_busy(struct store *s, int64_t id)
{
	sqlite3_stmt *st = store_stmt(s, ST_FOLDER_BUSY);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	int rc = sqlite3_step(st);
	int ret = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) != 0 : store_db_err(s, "folder");
	store_finish(st);
	return ret;
}

int
store_folder_special(struct store *s, int64_t account_id, unsigned special,
		     struct store_folder *r)
{
	sqlite3_stmt *st = store_stmt(s, ST_FOLDER_SPECIAL);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, account_id);
	sqlite3_bind_int64(st, 2, special);
	int rc = sqlite3_step(st);
	int ret = rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? 1 : store_db_err(s, "folder");
	int64_t id = ret == 0 ? sqlite3_column_int64(st, 0) : 0;
	store_finish(st);
	if (ret == 0)
		return store_folder_get(s, id, r) == 0 ? 0 : -1;
	return ret;
}

int
store_durable(struct store *s, bool on)
{
	if (sqlite3_exec(s->db, on ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL",
			 NULL, NULL, NULL) != SQLITE_OK)
		return store_db_err(s, "synchronous");
	return 0;
}

int
store_sync(struct store *s)
{
	char wal[4200];
	snprintf(wal, sizeof(wal), "%s-wal", s->path);
	int fd = open(wal, O_RDONLY | O_CLOEXEC);
	int ret = 0;
	if (fd >= 0) {
		if (fdatasync(fd) < 0)
			ret = -1;
		close(fd);
	}
	if (store_body_sync(s) < 0)
		ret = -1;
	if (ret < 0)
		store_set_err(s, "sync: %s", strerror(errno));
	return ret;
}
