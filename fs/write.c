/* write.c - files written in folders, and the other changes to messages: create, write,
 * truncate, utimens/chmod/chown, close (FLUSH or fs/closewatch.c), fsync, rm, rename (DESIGN.md §1
 * "Changing (IMAP)"). What each means for the rows and the journal is cache/change.c's;
 * here are the FUSE side, the commit points and what the kernel must be told.
 *
 * Commit points: a file written since it was last committed is committed at its last
 * close as fs/closewatch.c sees it (write_closed; FLUSH until the watches are in place),
 * at fsync, and when it is renamed to a *.eml name; fsync and rename report the result
 * (EINVAL: not a message, kept as a local file), a close cannot (it returned already):
 * a refusal then goes to the log and .status (write_note). The commit turns LF
 * line ends into CRLF, so the file's size changes: the kernel's attributes and pages of it
 * are invalidated right after the reply.
 *
 * The outbox has its own files (fs/outbox.c): each handler asks it first.
 */
#include "fs/fs-internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cache/change.h"
#include "net/log.h"

/* ---- files written and not committed yet ---- */

/* A file written since its last commit, and when it was last written (monotonic ms). */
struct dirty_file {
	int64_t id;
	int64_t when_ms;
};
static pthread_mutex_t dirty_mu = PTHREAD_MUTEX_INITIALIZER;
static struct dirty_file *dirty; /* protected by dirty_mu */
static size_t ndirty, dirty_cap;

static int64_t
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
dirty_add(int64_t id)
{
	int64_t t = now_ms();
	pthread_mutex_lock(&dirty_mu);
	for (size_t i = 0; i < ndirty; i++)
		if (dirty[i].id == id) {
			dirty[i].when_ms = t;
			goto out;
		}
	if (ndirty == dirty_cap) {
		size_t cap = dirty_cap ? dirty_cap * 2 : 64;
		struct dirty_file *p = realloc(dirty, cap * sizeof(*p));
		if (p == NULL)
			goto out; /* committed at the next rename, fsync or restart instead */
		dirty = p;
		dirty_cap = cap;
	}
	dirty[ndirty].id = id;
	dirty[ndirty].when_ms = t;
	ndirty++;
out:
	pthread_mutex_unlock(&dirty_mu);
}

/* Is id in the set? */
static bool
dirty_has(int64_t id)
{
	bool has = false;
	pthread_mutex_lock(&dirty_mu);
	for (size_t i = 0; i < ndirty && !has; i++)
		has = dirty[i].id == id;
	pthread_mutex_unlock(&dirty_mu);
	return has;
}

/* The first write to message id since its last commit: make sure its close will be seen. */
static void
first_write(struct mfs *m, struct store *s, int64_t id)
{
	struct store_msg msg;
	if (!dirty_has(id) && store_msg_get(s, id, &msg) == 0)
		closewatch_ensure(m, s, msg.folder_id);
}

/* Take id out of the set: true if it was in. */
static bool
dirty_take(int64_t id)
{
	bool was = false;
	pthread_mutex_lock(&dirty_mu);
	for (size_t i = 0; i < ndirty; i++) {
		if (dirty[i].id == id) {
			dirty[i] = dirty[--ndirty];
			was = true;
			break;
		}
	}
	pthread_mutex_unlock(&dirty_mu);
	return was;
}

size_t
write_idle(int64_t idle_ms, struct write_idle *out, size_t max)
{
	int64_t before = now_ms() - idle_ms;
	size_t n = 0;
	pthread_mutex_lock(&dirty_mu);
	for (size_t i = 0; i < ndirty && n < max; i++)
		if (dirty[i].when_ms <= before) {
			out[n].id = dirty[i].id;
			out[n].when_ms = dirty[i].when_ms;
			n++;
		}
	pthread_mutex_unlock(&dirty_mu);
	return n;
}

/* ---- helpers ---- */

/* The account of folder `fid`, as cache/change wants it; false if none. */
bool
change_acct_of(struct mfs *m, struct store *s, int64_t fid, struct change_acct *ca,
	       struct account **a_r)
{
	struct store_folder f;
	if (store_folder_get(s, fid, &f) != 0)
		return false;
	struct account *a = account_of(m, f.account_id);
	if (a == NULL)
		return false;
	ca->cfg = a->cfg;
	ca->account_id = a->account_id;
	ca->top_id = a->top_id;
	if (a_r != NULL)
		*a_r = a;
	return true;
}

struct account *
pop3_of_folder(struct mfs *m, struct store *s, int64_t fid)
{
	struct store_folder f;
	if (store_folder_get(s, fid, &f) != 0 || f.kind == STORE_FOLDER_OUTBOX)
		return NULL;
	struct account *a = account_of(m, f.account_id);
	return a != NULL && a->cfg->pop3.set ? a : NULL;
}

struct account *
pop3_of_msg(struct mfs *m, struct store *s, int64_t msg_id)
{
	struct store_msg msg;
	if (store_msg_get(s, msg_id, &msg) != 0)
		return NULL;
	return pop3_of_folder(m, s, msg.folder_id);
}

/* The journal got entries: the account's sync thread replays them. */
void
changed(struct account *a)
{
	if (a != NULL && a->sync != NULL)
		sync_changed(a->sync);
}

static int
reply_msg_entry(struct mfs *m, struct store *s, fuse_req_t req, const struct store_msg *msg,
		struct fuse_file_info *fi)
{
	struct fuse_entry_param e;
	memset(&e, 0, sizeof(e));
	e.ino = store_ino_msg(msg->id);
	e.entry_timeout = TIMEOUT_LONG;
	e.attr_timeout = msg_attr_timeout(msg);
	msg_attr(m, s, msg, &e.attr);
	if (fi != NULL)
		return fuse_reply_create(req, &e, fi);
	return fuse_reply_entry(req, &e);
}

/* After a commit: the size changed (CRLF), and the listing of where it is. */
static void
tell_committed(struct mfs *m, int64_t msg_id)
{
	if (m->se != NULL && m->ready)
		fuse_lowlevel_notify_inval_inode(m->se, store_ino_msg(msg_id), 0, 0);
}

/* Commit a written file if it was written since its last commit. 0 or an errno. */
static int
commit_if_dirty(struct mfs *m, struct store *s, int64_t id, bool sync, bool *committed_r)
{
	*committed_r = false;
	if (!dirty_take(id))
		return 0;
	struct store_msg msg;
	struct change_acct ca;
	struct account *a;
	if (store_msg_get(s, id, &msg) != 0 || !change_acct_of(m, s, msg.folder_id, &ca, &a))
		return 0;
	int e = change_commit(s, &ca, id, sync);
	if (e == 0 && msg.state == STORE_MSG_SCRATCH && change_is_message_name(msg.name)) {
		*committed_r = true;
		changed(a);
	}
	return e;
}

void
write_closed(struct mfs *m, struct store *s, int64_t id)
{
	bool committed;
	struct store_msg msg;
	bool have = store_msg_get(s, id, &msg) == 0;
	int e = commit_if_dirty(m, s, id, false, &committed);
	if (committed)
		tell_committed(m, id);
	if (e != 0 && have) {
		struct store_folder f;
		struct account *a = NULL;
		memset(&f, 0, sizeof(f));
		if (store_folder_get(s, msg.folder_id, &f) == 0)
			a = account_of(m, f.account_id);
		char note[STORE_NAME_MAX * 2 + 200];
		snprintf(note, sizeof(note), "%s/%s: %s", f.name, msg.name,
			 e == EINVAL ? "not a message (no header block): kept as a local file"
				     : strerror(e));
		log_warn("account %s: %s", a != NULL ? a->cfg->name : "?", note);
		write_note(m, a, note);
	}
}

void
write_note(struct mfs *m, struct account *a, const char *note)
{
	if (a == NULL)
		return;
	pthread_mutex_lock(&m->status_mu);
	snprintf(a->write_note, sizeof(a->write_note), "%s", note);
	pthread_mutex_unlock(&m->status_mu);
}

/* ---- create, write ---- */

void
mfs_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
	   struct fuse_file_info *fi)
{
	struct mfs *m = fuse_req_userdata(req);
	if (obx_create(m, req, parent, name, mode, fi))
		return;
	if (m->readonly)
		return (void)fuse_reply_err(req, EROFS);
	int64_t fid;
	if (store_ino_kind(parent, &fid) != 1)
		return (void)fuse_reply_err(req, parent == FUSE_ROOT_ID ? EPERM : ENOTDIR);
	if (!S_ISREG(mode))
		return (void)fuse_reply_err(req, EPERM);
	struct store *s = thread_store(m);
	if (s == NULL)
		return (void)fuse_reply_err(req, EIO);
	if (pop3_of_folder(m, s, fid) != NULL)
		return (void)fuse_reply_err(req, EROFS);
	closewatch_ensure(m, s, fid);
	struct store_msg msg;
	int e = change_create(s, fid, name, &msg);
	if (e != 0)
		return (void)fuse_reply_err(req, e);
	fi->fh = 0;
	fi->keep_cache = 1;
	dirty_add(msg.id); /* even empty: `touch x.eml` is a file, then refused as a message */
	reply_msg_entry(m, s, req, &msg, fi);
}

void
mfs_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	(void)rdev;
	struct mfs *m = fuse_req_userdata(req);
	uint64_t v;
	if (obx_kind(parent, &v) != OBX_NONE || !S_ISREG(mode))
		return (void)fuse_reply_err(req, EPERM);
	if (m->readonly)
		return (void)fuse_reply_err(req, EROFS);
	int64_t fid;
	if (store_ino_kind(parent, &fid) != 1)
		return (void)fuse_reply_err(req, EPERM);
	struct store *s = thread_store(m);
	if (s == NULL)
		return (void)fuse_reply_err(req, EIO);
	if (pop3_of_folder(m, s, fid) != NULL)
		return (void)fuse_reply_err(req, EROFS);
	struct store_msg msg;
	int e = change_create(s, fid, name, &msg);
	if (e != 0)
		return (void)fuse_reply_err(req, e);
	reply_msg_entry(m, s, req, &msg, NULL);
}

void
mfs_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
	  struct fuse_file_info *fi)
{
	struct mfs *m = fuse_req_userdata(req);
	if (obx_write(m, req, ino, buf, size, off, fi))
		return;
	if (m->readonly)
		return (void)fuse_reply_err(req, EROFS);
	int64_t id;
	if (store_ino_kind(ino, &id) != 2)
		return (void)fuse_reply_err(req, EISDIR);
	struct store *s = thread_store(m);
	if (s == NULL)
		return (void)fuse_reply_err(req, EIO);
	if (pop3_of_msg(m, s, id) != NULL)
		return (void)fuse_reply_err(req, EROFS);
	first_write(m, s, id);
	uint64_t newsize;
	int e = change_write(s, id, buf, size, (uint64_t)off, &newsize);
	if (e != 0)
		return (void)fuse_reply_err(req, e);
	dirty_add(id);
	fuse_reply_write(req, size);
}

/* ---- the commit points ---- */

/* Commit a file written since its last commit and answer with the result; sync: wait for
 * the disk, and when there is nothing to commit make what was committed durable. */
static void
commit_reply(struct mfs *m, fuse_req_t req, fuse_ino_t ino, bool sync)
{
	int64_t id;
	if (store_ino_kind(ino, &id) != 2)
		return (void)fuse_reply_err(req, 0);
	struct store *s = thread_store(m);
	if (s == NULL)
		return (void)fuse_reply_err(req, EIO);
	bool committed;
	int e = commit_if_dirty(m, s, id, sync, &committed);
	if (sync && e == 0 && !committed && store_sync(s) < 0)
		e = EIO;
	fuse_reply_err(req, e);
	if (committed)
		tell_committed(m, id);
}

void
mfs_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct mfs *m = fuse_req_userdata(req);
	/* Nothing can be written on a read-only mount: ENOSYS, and the kernel never asks
	 * again (one round trip less per file closed). */
	if (m->readonly || m->noflush)
		return (void)fuse_reply_err(req, ENOSYS);
	if (obx_flush(m, req, ino, fi))
		return;
	/* Maybe not the last close (see fs/closewatch.c): in a watched folder the last one
	 * raises the event that commits; without inotify, RELEASE comes (fs/read.c). */
	int64_t id;
	struct store *s = thread_store(m);
	struct store_msg msg;
	if (m->cw == NULL ||
	    (s != NULL && store_ino_kind(ino, &id) == 2 && store_msg_get(s, id, &msg) == 0 &&
	     closewatch_has_folder(m, msg.folder_id)))
		return (void)fuse_reply_err(req, 0);
	commit_reply(m, req, ino, false);
}

void
mfs_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	(void)datasync;
	(void)fi;
	struct mfs *m = fuse_req_userdata(req);
	if (m->readonly)
		return (void)fuse_reply_err(req, 0);
	commit_reply(m, req, ino, true);
}

void
mfs_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct mfs *m = fuse_req_userdata(req);
	if (obx_release(m, req, ino, fi))
		return;
	int64_t id;
	if (!m->readonly && store_ino_kind(ino, &id) == 2) {
		/* As a close seen through inotify: committed, or a note says why not. */
		struct store *s = thread_store(m);
		if (s != NULL)
			write_closed(m, s, id);
		return (void)fuse_reply_err(req, 0);
	}
	fuse_reply_err(req, 0);
}

/* ---- attributes ---- */

void
mfs_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
	    struct fuse_file_info *fi)
{
	struct mfs *m = fuse_req_userdata(req);
	if (obx_setattr(m, req, ino, attr, to_set, fi))
		return;
	if (m->readonly)
		return (void)fuse_reply_err(req, EROFS);
	struct store *s = thread_store(m);
	if (s == NULL)
		return (void)fuse_reply_err(req, EIO);
	int64_t id;
	int kind = store_ino_kind(ino, &id);
	int e = 0;
	if (kind == 2 && (to_set & (FUSE_SET_ATTR_SIZE | FUSE_SET_ATTR_MTIME |
				    FUSE_SET_ATTR_MTIME_NOW)) &&
	    pop3_of_msg(m, s, id) != NULL)
		return (void)fuse_reply_err(req, EROFS);
	if (kind == 2 && (to_set & FUSE_SET_ATTR_SIZE)) {
		first_write(m, s, id);
		e = change_truncate(s, id, (uint64_t)attr->st_size);
		if (e == 0)
			dirty_add(id);
	}
	if (e == 0 && kind == 2 && (to_set & (FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_MTIME_NOW))) {
		int64_t t = (to_set & FUSE_SET_ATTR_MTIME_NOW) ? (int64_t)time(NULL)
							      : (int64_t)attr->st_mtim.tv_sec;
		e = change_set_mtime(s, id, t);
	}
	/* Mode, owner and times of folders: accepted, so `cp -a` and `rsync -a` work; files
	 * stay 0600 and directories 0700 (DESIGN.md §1 Attributes). */
	if (e != 0)
		return (void)fuse_reply_err(req, e);
	struct stat st;
	double timeout;
	if ((e = ino_attr(m, s, ino, &st, &timeout)) != 0)
		return (void)fuse_reply_err(req, e);
	fuse_reply_attr(req, &st, timeout);
}

/* ---- rm, rename ---- */

void
mfs_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct mfs *m = fuse_req_userdata(req);
	if (obx_unlink(m, req, parent, name))
		return;
	if (m->readonly)
		return (void)fuse_reply_err(req, EROFS);
	int64_t fid;
	if (store_ino_kind(parent, &fid) != 1)
		return (void)fuse_reply_err(req, parent == FUSE_ROOT_ID ? EPERM : ENOENT);
	struct store *s = thread_store(m);
	if (s == NULL)
		return (void)fuse_reply_err(req, EIO);
	struct change_acct ca;
	struct account *a;
	if (!change_acct_of(m, s, fid, &ca, &a))
		return (void)fuse_reply_err(req, ENOENT);
	struct store_folder sub;
	if (store_folder_lookup(s, fid, name, &sub) == 0)
		return (void)fuse_reply_err(req, EISDIR);
	struct store_msg msg;
	if (a->pop3 != NULL || a->cfg->pop3.set) {
		/* POP3: DELE then QUIT for exactly this message, now (DESIGN.md §1). */
		if (store_msg_lookup(s, fid, name, &msg) != 0)
			return (void)fuse_reply_err(req, ENOENT);
		if (a->pop3 == NULL)
			return (void)fuse_reply_err(req, EIO);
		enum sync_read_result r = pop3_sync_delete(a->pop3, msg.id);
		if (r != SYNC_READ_OK && r != SYNC_READ_GONE)
			return (void)fuse_reply_err(req, EIO);
		fuse_reply_err(req, 0);
		if (m->se != NULL && m->ready)
			fuse_lowlevel_notify_inval_inode(m->se, store_ino_folder(fid), 0, 0);
		return;
	}
	if (store_msg_lookup(s, fid, name, &msg) == 0)
		(void)dirty_take(msg.id);
	int64_t trash = 0;
	int e = change_unlink(s, &ca, fid, name, &trash);
	fuse_reply_err(req, e);
	if (e != 0)
		return;
	changed(a);
	/* It shows in Trash now: that listing is stale. */
	if (trash != 0 && m->se != NULL && m->ready)
		fuse_lowlevel_notify_inval_inode(m->se, store_ino_folder(trash), 0, 0);
}

/* The rename in the store: an errno; *a_r the account whose journal got entries (NULL if
 * none), *committed_r a message committed by it (0 if none). */
static int
rename_in(struct mfs *m, struct store *s, int64_t from, const char *name, int64_t to,
	  const char *newname, bool noreplace, struct account **a_r, int64_t *committed_r)
{
	struct change_acct ca, cb;
	struct account *a;
	if (!change_acct_of(m, s, from, &ca, &a))
		return ENOENT;
	if (pop3_of_folder(m, s, from) != NULL || pop3_of_folder(m, s, to) != NULL)
		return EROFS;
	/* A message (the common case: one transaction does it all), else a folder. */
	struct change_renamed rn = {.take = dirty_take};
	int e = change_rename_msg(s, &ca, from, name, to, newname, noreplace, &rn);
	if (rn.id != 0) {
		/* Renamed to a scratch name (or refused): still to be committed later. */
		if (rn.was_dirty && e != 0 && e != EINVAL)
			dirty_add(rn.id);
		if (e == 0) {
			if (rn.state == STORE_MSG_SCRATCH && rn.was_dirty)
				dirty_add(rn.id);
			if (rn.was_scratch && rn.state == STORE_MSG_PENDING)
				*committed_r = rn.id;
		}
		if (e == 0 || e == EINVAL)
			*a_r = a;
		return e;
	}
	struct store_folder sub;
	if (e != ENOENT || store_folder_lookup(s, from, name, &sub) != 0)
		return e;
	if (!change_acct_of(m, s, to, &cb, NULL))
		return ENOENT;
	if (ca.account_id != cb.account_id)
		return EXDEV; /* mv copies, then removes */
	e = change_rename_folder(s, &ca, from, name, to, newname, noreplace);
	if (e == 0)
		*a_r = a;
	return e;
}

void
mfs_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
	   const char *newname, unsigned int flags)
{
	struct mfs *m = fuse_req_userdata(req);
	if (obx_rename(m, req, parent, name, newparent, newname, flags))
		return;
	if (m->readonly)
		return (void)fuse_reply_err(req, EROFS);
	if (flags & ~(unsigned)RENAME_NOREPLACE)
		return (void)fuse_reply_err(req, EINVAL); /* RENAME_EXCHANGE, WHITEOUT */
	int64_t from, to;
	if (store_ino_kind(parent, &from) != 1 || store_ino_kind(newparent, &to) != 1)
		return (void)fuse_reply_err(req, EPERM); /* accounts are not renamed */
	struct store *s = writer_store(m);
	if (s == NULL)
		return (void)fuse_reply_err(req, EIO);
	struct account *a = NULL;
	int64_t committed = 0;
	int e = rename_in(m, s, from, name, to, newname, (flags & RENAME_NOREPLACE) != 0, &a,
			  &committed);
	writer_done(m);
	fuse_reply_err(req, e);
	if (committed != 0)
		tell_committed(m, committed);
	changed(a);
}
