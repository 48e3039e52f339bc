/* fs.c - FUSE low-level operations over the cache (see fs.h).
 *
 * Round trips decide how fast the mount feels, so: open and opendir answer ENOSYS once
 * (the kernel then never asks again and keeps page and directory caches), FLUSH is answered
 * at once except for outbox files (and with ENOSYS, for good, on a read-only mount: the
 * default when no account has an outbox), entries and
 * attributes live for a day, extended attributes outside
 * user.mail.* answer EOPNOTSUPP (coreutils then stops asking), and directory listings are
 * READDIRPLUS pages read with one index seek each.
 *
 * It does not talk to servers: the sync engine (cache/sync) does, and tells us through
 * hooks what changed, which we pass on to the kernel with the notify calls.
 */

#define FUSE_USE_VERSION 314

/* How old a .status text may be when read: rebuilding costs one pass over the folder rows
 * of each account, and a script polling .status should see a change within a few ms. */
#define STATUS_MAX_AGE_MS 20

#include "fs/fs.h"
#include "fs/fs-internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cache/check.h"
#include "cache/store.h"
#include "cache/sync.h"
#include "net/buf.h"
#include "net/log.h"

static void refresh_status(struct mfs *m);

/* ---- per-thread store ---------------------------------------------------------------- */

static void
store_key_free(void *p)
{
	struct store *s = p;
	store_close(&s);
}

/* The calling thread's store handle (each thread owns its SQLite connection). */
struct store *
thread_store(struct mfs *m)
{
	struct store *s = pthread_getspecific(m->store_key);
	if (s != NULL)
		return s;
	char err[512];
	if (store_open(m->cfg->cache_dir, &s, err, sizeof(err)) < 0) {
		log_error("%s", err);
		return NULL;
	}
	pthread_setspecific(m->store_key, s);
	return s;
}

static void
outbox_key_free(void *p)
{
	struct outbox *ob = p;
	outbox_close(&ob);
}

struct outbox *
thread_outbox(struct mfs *m)
{
	struct outbox *ob = pthread_getspecific(m->outbox_key);
	if (ob != NULL)
		return ob;
	char err[512];
	if (outbox_open(m->cfg->cache_dir, &ob, err, sizeof(err)) < 0) {
		log_error("%s", err);
		return NULL;
	}
	pthread_setspecific(m->outbox_key, ob);
	return ob;
}

static struct account *
account_of(struct mfs *m, int64_t account_id)
{
	for (size_t i = 0; i < m->nacc; i++)
		if (m->acc[i].account_id == account_id)
			return &m->acc[i];
	return NULL;
}

/* ---- attributes ---------------------------------------------------------------------- */

void
dir_attr(struct mfs *m, uint64_t ino, int64_t mtime, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_mode = S_IFDIR | 0700;
	st->st_nlink = 2;
	st->st_uid = m->uid;
	st->st_gid = m->gid;
	st->st_size = 4096;
	st->st_blksize = 4096;
	st->st_mtim.tv_sec = st->st_ctim.tv_sec = st->st_atim.tv_sec = mtime ? mtime : m->started;
}

static void
msg_attr(struct mfs *m, const struct store_msg *msg, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = store_ino_msg(msg->id);
	st->st_mode = S_IFREG | 0600;
	st->st_nlink = 1;
	st->st_uid = m->uid;
	st->st_gid = m->gid;
	st->st_size = (off_t)msg->size;
	st->st_blocks = (blkcnt_t)((msg->size + 511) / 512);
	st->st_blksize = 128 * 1024;
	st->st_mtim.tv_sec = st->st_ctim.tv_sec = st->st_atim.tv_sec = msg->internaldate;
}

static void
status_attr(struct mfs *m, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_mode = S_IFREG | 0400;
	st->st_nlink = 1;
	st->st_uid = m->uid;
	st->st_gid = m->gid;
	pthread_mutex_lock(&m->status_mu);
	st->st_ino = STATUS_INO_BASE + m->status_gen;
	st->st_size = (off_t)m->status_len;
	pthread_mutex_unlock(&m->status_mu);
	st->st_mtim.tv_sec = st->st_ctim.tv_sec = st->st_atim.tv_sec = time(NULL);
}

/* Attributes of any inode: 0, or an errno. */
static int
ino_attr(struct mfs *m, struct store *s, uint64_t ino, struct stat *st)
{
	if (ino == FUSE_ROOT_ID) {
		dir_attr(m, ino, m->started, st);
		return 0;
	}
	if (ino == STORE_INO_STATUS || ino >= STATUS_INO_BASE) {
		refresh_status(m);
		status_attr(m, st);
		return 0;
	}
	int64_t id;
	int kind = store_ino_kind(ino, &id);
	if (kind == 1) {
		struct store_folder f;
		int r = store_folder_get(s, id, &f);
		if (r != 0)
			return r > 0 ? ENOENT : EIO;
		dir_attr(m, ino, f.mtime, st);
		return 0;
	}
	if (kind == 2) {
		struct store_msg msg;
		int r = store_msg_get(s, id, &msg);
		if (r != 0)
			return r > 0 ? ENOENT : EIO;
		msg_attr(m, &msg, st);
		return 0;
	}
	return ENOENT;
}

/* ---- lookup, getattr ----------------------------------------------------------------- */

static void
mfs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct mfs *m = fuse_req_userdata(req);
	struct store *s = thread_store(m);
	if (s == NULL)
		return (void)fuse_reply_err(req, EIO);
	struct fuse_entry_param e;
	memset(&e, 0, sizeof(e));
	e.entry_timeout = TIMEOUT_LONG;
	e.attr_timeout = TIMEOUT_LONG;
	int64_t pid = 0;
	if (parent == FUSE_ROOT_ID) {
		if (strcmp(name, ".status") == 0) {
			refresh_status(m);
			e.attr_timeout = 0; /* it changes: looked up every time */
			e.entry_timeout = 0;
			status_attr(m, &e.attr);
			e.ino = e.attr.st_ino;
			return (void)fuse_reply_entry(req, &e);
		}
		pid = 0;
	} else if (obx_lookup(m, req, parent, name)) {
		return;
	} else if (store_ino_kind(parent, &pid) != 1) {
		return (void)fuse_reply_err(req, ENOTDIR);
	}
	struct store_folder f;
	int r = store_folder_lookup(s, pid, name, &f);
	if (r == 0) {
		e.ino = store_ino_folder(f.id);
		dir_attr(m, e.ino, f.mtime, &e.attr);
		return (void)fuse_reply_entry(req, &e);
	}
	if (r < 0)
		return (void)fuse_reply_err(req, EIO);
	if (parent != FUSE_ROOT_ID) {
		struct store_msg msg;
		r = store_msg_lookup(s, pid, name, &msg);
		if (r == 0) {
			e.ino = store_ino_msg(msg.id);
			msg_attr(m, &msg, &e.attr);
			return (void)fuse_reply_entry(req, &e);
		}
		if (r < 0)
			return (void)fuse_reply_err(req, EIO);
	}
	fuse_reply_err(req, ENOENT);
}

static void
mfs_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)fi;
	struct mfs *m = fuse_req_userdata(req);
	if (obx_getattr(m, req, ino))
		return;
	struct store *s = thread_store(m);
	if (s == NULL)
		return (void)fuse_reply_err(req, EIO);
	struct stat st;
	int e = ino_attr(m, s, ino, &st);
	if (e != 0)
		return (void)fuse_reply_err(req, e);
	fuse_reply_attr(req, &st,
			ino == STORE_INO_STATUS || ino >= STATUS_INO_BASE ? 0 : TIMEOUT_LONG);
}

/* ---- directories --------------------------------------------------------------------- */

/* Add one entry; returns false when the buffer is full. */
static bool
add_entry(fuse_req_t req, struct buf *b, size_t size, bool plus, const char *name,
	  const struct stat *st, off_t next, double attr_timeout)
{
	size_t room = size - b->len;
	size_t need;
	if (plus) {
		struct fuse_entry_param e;
		memset(&e, 0, sizeof(e));
		e.ino = st->st_ino;
		e.attr = *st;
		e.entry_timeout = attr_timeout == 0 ? 0 : TIMEOUT_LONG;
		e.attr_timeout = attr_timeout;
		need = fuse_add_direntry_plus(req, NULL, 0, name, NULL, 0);
		if (need > room)
			return false;
		fuse_add_direntry_plus(req, b->data + b->len, room, name, &e, next);
	} else {
		need = fuse_add_direntry(req, NULL, 0, name, NULL, 0);
		if (need > room)
			return false;
		fuse_add_direntry(req, b->data + b->len, room, name, st, next);
	}
	b->len += need;
	return true;
}

static void
do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, bool plus)
{
	struct mfs *m = fuse_req_userdata(req);
	if (obx_readdir(m, req, ino, size, off, plus))
		return;
	struct store *s = thread_store(m);
	if (s == NULL)
		return (void)fuse_reply_err(req, EIO);
	int64_t fid = 0;
	if (ino != FUSE_ROOT_ID && store_ino_kind(ino, &fid) != 1)
		return (void)fuse_reply_err(req, ENOTDIR);
	struct store_folder self;
	if (ino != FUSE_ROOT_ID && store_folder_get(s, fid, &self) != 0)
		return (void)fuse_reply_err(req, ENOENT);

	struct buf b;
	buf_init(&b, size);
	b.data = calloc(1, size + 1);
	b.size = size + 1;
	if (b.data == NULL)
		return (void)fuse_reply_err(req, ENOMEM);
	struct stat st;
	uint64_t o = (uint64_t)off;
	bool full = false;

	if (o < 1) {
		dir_attr(m, ino, 0, &st);
		full = !add_entry(req, &b, size, plus, ".", &st, 1, TIMEOUT_LONG);
		o = 1;
	}
	if (!full && o < 2) {
		dir_attr(m, FUSE_ROOT_ID, 0, &st);
		full = !add_entry(req, &b, size, plus, "..", &st, 2, TIMEOUT_LONG);
		o = 2;
	}
	/* Sub-folders (and .status at the root): offset 3 + index. */
	if (!full && o < MSG_OFF_BASE) {
		uint64_t idx = 0;
		if (ino == FUSE_ROOT_ID) {
			if (o <= 2) {
				status_attr(m, &st);
				full = !add_entry(req, &b, size, plus, ".status", &st, 3, 0);
				if (!full)
					o = 3;
			}
			idx = 1;
		}
		struct store_folder kids[64];
		char after[STORE_NAME_MAX + 1] = "";
		while (!full) {
			int n = store_folder_children(s, ino == FUSE_ROOT_ID ? 0 : fid, after, kids,
						      64);
			if (n < 0) {
				free(b.data);
				return (void)fuse_reply_err(req, EIO);
			}
			for (int i = 0; i < n && !full; i++, idx++) {
				if (3 + idx <= o)
					continue; /* returned by an earlier call */
				uint64_t kino = store_ino_folder(kids[i].id);
				dir_attr(m, kino, kids[i].mtime, &st);
				full = !add_entry(req, &b, size, plus, kids[i].name, &st,
						  (off_t)(3 + idx), TIMEOUT_LONG);
				if (!full)
					o = 3 + idx;
			}
			if (n < 64)
				break;
			snprintf(after, sizeof(after), "%s", kids[n - 1].name);
		}
		/* An account's outbox, after its folders. */
		int oa = ino == FUSE_ROOT_ID ? -1 : obx_account_of_top(m, fid);
		if (!full && oa >= 0 && o < MSG_OFF_BASE - 1) {
			dir_attr(m, obx_ino(OBX_DIR, (uint64_t)oa), 0, &st);
			full = !add_entry(req, &b, size, plus, m->acc[oa].cfg->outbox, &st,
					  (off_t)(MSG_OFF_BASE - 1), 0);
			if (!full)
				o = MSG_OFF_BASE - 1;
		}
		if (!full)
			o = MSG_OFF_BASE;
	}
	/* Messages: offset MSG_OFF_BASE + row id. */
	if (!full && ino != FUSE_ROOT_ID && self.kind == STORE_FOLDER_MAILBOX) {
		static __thread struct store_msg page[READDIR_PAGE];
		int64_t after = (int64_t)(o - MSG_OFF_BASE);
		while (!full) {
			int n = store_msg_list(s, fid, after, page, READDIR_PAGE);
			if (n < 0) {
				free(b.data);
				return (void)fuse_reply_err(req, EIO);
			}
			for (int i = 0; i < n && !full; i++) {
				msg_attr(m, &page[i], &st);
				full = !add_entry(req, &b, size, plus, page[i].name, &st,
						  (off_t)(MSG_OFF_BASE + (uint64_t)page[i].id),
						  TIMEOUT_LONG);
			}
			if (n < READDIR_PAGE)
				break;
			after = page[n - 1].id;
		}
	}
	fuse_reply_buf(req, b.data, b.len);
	free(b.data);
}

static void
mfs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	(void)fi;
	do_readdir(req, ino, size, off, false);
}

static void
mfs_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	(void)fi;
	do_readdir(req, ino, size, off, true);
}

/* No open, no opendir: ENOSYS once and the kernel stops asking (and keeps its caches). */
static void
mfs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, ENOSYS);
}

static void
mfs_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, ENOSYS);
}

/* ---- reading ------------------------------------------------------------------------- */

static void
read_status(struct mfs *m, fuse_req_t req, size_t size, off_t off)
{
	pthread_mutex_lock(&m->status_mu);
	size_t len = m->status_len;
	if ((uint64_t)off >= len) {
		pthread_mutex_unlock(&m->status_mu);
		return (void)fuse_reply_buf(req, NULL, 0);
	}
	size_t n = len - (size_t)off < size ? len - (size_t)off : size;
	char *copy = malloc(n ? n : 1);
	if (copy != NULL)
		memcpy(copy, m->status_text + off, n);
	pthread_mutex_unlock(&m->status_mu);
	if (copy == NULL)
		return (void)fuse_reply_err(req, ENOMEM);
	fuse_reply_buf(req, copy, n);
	free(copy);
}

static void
mfs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct mfs *m = fuse_req_userdata(req);
	if (ino == STORE_INO_STATUS || ino >= STATUS_INO_BASE)
		return read_status(m, req, size, off);
	if (obx_read(m, req, ino, size, off, fi))
		return;
	int64_t id;
	if (store_ino_kind(ino, &id) != 2)
		return (void)fuse_reply_err(req, EISDIR);
	struct store *s = thread_store(m);
	if (s == NULL)
		return (void)fuse_reply_err(req, EIO);
	struct store_msg msg;
	int r = store_msg_get(s, id, &msg);
	if (r != 0)
		return (void)fuse_reply_err(req, r > 0 ? ENOENT : EIO);
	if ((uint64_t)off >= msg.size)
		return (void)fuse_reply_buf(req, NULL, 0);
	if (size > msg.size - (uint64_t)off)
		size = (size_t)(msg.size - (uint64_t)off);
	char *data = malloc(size ? size : 1);
	if (data == NULL)
		return (void)fuse_reply_err(req, ENOMEM);
	size_t got = 0;
	struct store_folder f;
	struct account *a = NULL;
	r = store_body_read(s, id, (uint64_t)off, data, size, &got);
	if (r == 1 || m->nacc > 1) {
		if (store_folder_get(s, msg.folder_id, &f) == 0)
			a = account_of(m, f.account_id);
	} else {
		a = &m->acc[0];
	}
	if (r == 1) {
		/* Not cached: from the server, on a reader connection of the account. */
		if (a == NULL || a->sync == NULL) {
			free(data);
			return (void)fuse_reply_err(req, EIO);
		}
		enum sync_read_result sr =
			sync_read(a->sync, f.server_name, msg.uid, (uint64_t)off, size, data, &got);
		if (sr != SYNC_READ_OK) {
			free(data);
			return (void)fuse_reply_err(req, sr == SYNC_READ_GONE ? ENOENT : EIO);
		}
	} else if (r < 0) {
		free(data);
		return (void)fuse_reply_err(req, EIO);
	}
	if (a != NULL)
		a->served_bytes += got;
	fuse_reply_buf(req, data, got);
	free(data);
}

/* ---- extended attributes -------------------------------------------------------------- */

static int
xattr_value(struct store *s, fuse_ino_t ino, const char *name, char *out, size_t outlen)
{
	int64_t id;
	if (strncmp(name, "user.mail.", 10) != 0)
		return -EOPNOTSUPP;
	if (store_ino_kind(ino, &id) != 2)
		return -ENODATA;
	struct store_msg msg;
	int r = store_msg_get(s, id, &msg);
	if (r != 0)
		return r > 0 ? -ENOENT : -EIO;
	if (strcmp(name, "user.mail.flags") == 0)
		snprintf(out, outlen, "%s", msg.flags);
	else if (strcmp(name, "user.mail.uid") == 0)
		snprintf(out, outlen, "%u", msg.uid);
	else if (strcmp(name, "user.mail.message-id") == 0 && msg.message_id[0] != '\0')
		snprintf(out, outlen, "%s", msg.message_id);
	else
		return -ENODATA;
	return (int)strlen(out);
}

static void
mfs_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	struct mfs *m = fuse_req_userdata(req);
	if (obx_getxattr(m, req, ino, name, size))
		return;
	struct store *s = thread_store(m);
	if (s == NULL)
		return (void)fuse_reply_err(req, EIO);
	char value[1024];
	int n = xattr_value(s, ino, name, value, sizeof(value));
	if (n < 0)
		return (void)fuse_reply_err(req, -n);
	if (size == 0)
		return (void)fuse_reply_xattr(req, (size_t)n);
	if ((size_t)n > size)
		return (void)fuse_reply_err(req, ERANGE);
	fuse_reply_buf(req, value, (size_t)n);
}

static void
mfs_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct mfs *m = fuse_req_userdata(req);
	if (obx_listxattr(m, req, ino, size))
		return;
	struct store *s = thread_store(m);
	if (s == NULL)
		return (void)fuse_reply_err(req, EIO);
	char list[128];
	size_t len = 0;
	int64_t id;
	if (store_ino_kind(ino, &id) == 2) {
		struct store_msg msg;
		if (store_msg_get(s, id, &msg) != 0)
			return (void)fuse_reply_err(req, ENOENT);
		static const char base[] = "user.mail.flags\0user.mail.uid\0";
		memcpy(list, base, sizeof(base) - 1);
		len = sizeof(base) - 1;
		if (msg.message_id[0] != '\0') {
			static const char mid[] = "user.mail.message-id\0";
			memcpy(list + len, mid, sizeof(mid) - 1);
			len += sizeof(mid) - 1;
		}
	}
	if (size == 0)
		return (void)fuse_reply_xattr(req, len);
	if (len > size)
		return (void)fuse_reply_err(req, ERANGE);
	fuse_reply_buf(req, list, len);
}

/* ---- changes: the outbox; elsewhere refused in this version ------------------------ */

static void
mfs_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
	    struct fuse_file_info *fi)
{
	if (obx_setattr(fuse_req_userdata(req), req, ino, attr, to_set, fi))
		return;
	fuse_reply_err(req, EROFS);
}

static void
mfs_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
	  struct fuse_file_info *fi)
{
	if (obx_write(fuse_req_userdata(req), req, ino, buf, size, off, fi))
		return;
	fuse_reply_err(req, EROFS);
}

/* Only files created in an outbox have a handle (the rest answer OPEN with ENOSYS), and
 * only their close has something to report; every other FLUSH is answered at once. */
static void
mfs_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct mfs *m = fuse_req_userdata(req);
	/* Mounted with -o ro nothing can be written: ENOSYS, and the kernel never asks again
	 * (one round trip less per file closed, as before the outbox existed). */
	if (m->readonly)
		return (void)fuse_reply_err(req, ENOSYS);
	if (obx_flush(m, req, ino, fi))
		return;
	fuse_reply_err(req, 0);
}

static void
mfs_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (obx_release(fuse_req_userdata(req), req, ino, fi))
		return;
	fuse_reply_err(req, 0);
}

static void
mfs_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value, size_t size,
	     int flags)
{
	(void)ino;
	(void)value;
	(void)size;
	(void)flags;
	fuse_reply_err(req, strncmp(name, "user.mail.", 10) == 0 ? EROFS : EOPNOTSUPP);
}

static void
mfs_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
	   struct fuse_file_info *fi)
{
	if (obx_create(fuse_req_userdata(req), req, parent, name, mode, fi))
		return;
	fuse_reply_err(req, EROFS);
}

static void
mfs_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	(void)parent;
	(void)name;
	(void)mode;
	(void)rdev;
	fuse_reply_err(req, EROFS);
}

static void
mfs_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	(void)name;
	(void)mode;
	uint64_t v;
	fuse_reply_err(req, obx_kind(parent, &v) != OBX_NONE ? EPERM : EROFS);
}

static void
mfs_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	if (obx_unlink(fuse_req_userdata(req), req, parent, name))
		return;
	fuse_reply_err(req, EROFS);
}

static void
mfs_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	(void)name;
	uint64_t v;
	fuse_reply_err(req, obx_kind(parent, &v) != OBX_NONE ? EPERM : EROFS);
}

static void
mfs_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
	   const char *newname, unsigned int flags)
{
	if (obx_rename(fuse_req_userdata(req), req, parent, name, newparent, newname, flags))
		return;
	fuse_reply_err(req, EROFS);
}

static void
mfs_statfs(fuse_req_t req, fuse_ino_t ino)
{
	(void)ino;
	struct mfs *m = fuse_req_userdata(req);
	struct store *s = thread_store(m);
	struct statvfs sv;
	memset(&sv, 0, sizeof(sv));
	sv.f_bsize = 4096;
	sv.f_frsize = 4096;
	sv.f_namemax = 255;
	if (s != NULL) {
		for (size_t i = 0; i < m->nacc; i++) {
			struct store_stats ss;
			if (store_stats(s, m->acc[i].account_id, &ss) == 0) {
				sv.f_files += ss.messages + ss.folders;
				sv.f_blocks += ss.body_bytes / 4096;
			}
		}
	}
	fuse_reply_statfs(req, &sv);
}

/* ---- init ---------------------------------------------------------------------------- */

static void
mfs_init(void *userdata, struct fuse_conn_info *conn)
{
	struct mfs *m = userdata;
	/* Every READDIR is a READDIRPLUS: one request lists many entries with attributes. */
	conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO;
	/* Sizes never change under a name: no writeback cache marking them stale. */
	conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
	if (conn->capable & FUSE_CAP_CACHE_SYMLINKS)
		conn->want |= FUSE_CAP_CACHE_SYMLINKS;
	m->ready = true;
}

static const struct fuse_lowlevel_ops mfs_ops = {
	.init = mfs_init,
	.lookup = mfs_lookup,
	.getattr = mfs_getattr,
	.setattr = mfs_setattr,
	.readdir = mfs_readdir,
	.readdirplus = mfs_readdirplus,
	.open = mfs_open,
	.opendir = mfs_opendir,
	.read = mfs_read,
	.write = mfs_write,
	.create = mfs_create,
	.mknod = mfs_mknod,
	.mkdir = mfs_mkdir,
	.unlink = mfs_unlink,
	.rmdir = mfs_rmdir,
	.flush = mfs_flush,
	.release = mfs_release,
	.rename = mfs_rename,
	.getxattr = mfs_getxattr,
	.listxattr = mfs_listxattr,
	.setxattr = mfs_setxattr,
	.statfs = mfs_statfs,
};

/* ---- hooks from the sync engine -------------------------------------------------------- */

static void
hook_folder_changed(void *ctx, int64_t folder_id)
{
	struct mfs *m = ctx;
	if (m->se != NULL && m->ready)
		fuse_lowlevel_notify_inval_inode(m->se, store_ino_folder(folder_id), 0, 0);
}

static void
hook_msg_removed(void *ctx, int64_t folder_id, int64_t msg_id, const char *name)
{
	struct mfs *m = ctx;
	if (m->se == NULL || !m->ready)
		return;
	fuse_lowlevel_notify_inval_entry(m->se, store_ino_folder(folder_id), name, strlen(name));
	fuse_lowlevel_notify_inval_inode(m->se, store_ino_msg(msg_id), 0, 0);
	fuse_lowlevel_notify_inval_inode(m->se, store_ino_folder(folder_id), 0, 0);
}

static void
hook_msg_changed(void *ctx, int64_t msg_id)
{
	struct mfs *m = ctx;
	if (m->se != NULL && m->ready)
		fuse_lowlevel_notify_inval_inode(m->se, store_ino_msg(msg_id), -1, 0);
}

static void
hook_folder_removed(void *ctx, int64_t parent_id, int64_t folder_id, const char *name)
{
	struct mfs *m = ctx;
	if (m->se == NULL || !m->ready)
		return;
	fuse_ino_t parent = parent_id ? store_ino_folder(parent_id) : FUSE_ROOT_ID;
	fuse_lowlevel_notify_inval_entry(m->se, parent, name, strlen(name));
	fuse_lowlevel_notify_inval_inode(m->se, parent, 0, 0);
	(void)folder_id;
}

/* The account's server answers again: mail waiting in its outbox goes now. */
static void
hook_back_online(void *ctx, int64_t account_id)
{
	struct account *a = account_of(ctx, account_id);
	if (a != NULL)
		sender_retry_all(a->sender);
}

static const struct sender_hooks sender_hooks = {
	.outbox_changed = obx_changed,
};

static const struct sync_hooks hooks = {
	.folder_changed = hook_folder_changed,
	.msg_removed = hook_msg_removed,
	.msg_changed = hook_msg_changed,
	.folder_removed = hook_folder_removed,
	.back_online = hook_back_online,
};

/* ---- .status ------------------------------------------------------------------------- */

static void
format_time(int64_t t, char *out, size_t outlen)
{
	if (t == 0) {
		snprintf(out, outlen, "never");
		return;
	}
	struct tm tm;
	time_t tt = (time_t)t;
	gmtime_r(&tt, &tm);
	strftime(out, outlen, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void
build_status(struct mfs *m, struct store *s, struct buf *b)
{
	uint64_t file_bytes = 0;
	for (size_t i = 0; i < m->nacc; i++) {
		struct account *a = &m->acc[i];
		struct sync_status st;
		memset(&st, 0, sizeof(st));
		st.phase = "stopped";
		if (a->sync != NULL)
			sync_get_status(a->sync, &st);
		struct store_stats ss;
		memset(&ss, 0, sizeof(ss));
		if (s != NULL)
			store_stats(s, a->account_id, &ss);
		file_bytes = ss.file_bytes;
		char last[32], errt[32];
		format_time(st.last_sync_time, last, sizeof(last));
		format_time(st.last_error_time, errt, sizeof(errt));
		buf_printf(b,
			   "[account %s]\n"
			   "state            = %s\n"
			   "phase            = %s\n"
			   "first_sync       = %s\n"
			   "folders          = %llu\n"
			   "messages         = %llu\n"
			   "bodies_cached    = %llu\n"
			   "body_bytes       = %llu\n"
			   "synced_headers   = %llu\n"
			   "synced_bodies    = %llu\n"
			   "ondemand_reads   = %llu\n"
			   "ondemand_bytes   = %llu\n"
			   "served_bytes     = %llu\n"
			   "passes           = %llu\n"
			   "last_sync        = %s\n"
			   "last_error       = %s%s%s%s\n",
			   a->cfg->name, st.online ? "online" : "offline", st.phase,
			   st.first_pass_done ? "done" : "running",
			   (unsigned long long)ss.folders, (unsigned long long)ss.messages,
			   (unsigned long long)ss.bodies, (unsigned long long)ss.body_bytes,
			   (unsigned long long)st.headers_done, (unsigned long long)st.bodies_done,
			   (unsigned long long)st.ondemand_reads,
			   (unsigned long long)st.ondemand_bytes,
			   (unsigned long long)a->served_bytes, (unsigned long long)st.passes, last,
			   st.last_error[0] ? errt : "", st.last_error[0] ? " " : "",
			   st.last_error[0] ? st.last_error : "none", "");
		obx_status(m, i, b);
		buf_printf(b, "\n");
	}
	buf_printf(b, "[cache]\ndir              = %s\nbytes            = %llu\n", m->cfg->cache_dir,
		   (unsigned long long)file_bytes);
}

/* Rebuild the .status text if it is older than STATUS_MAX_AGE_MS; called when the kernel
 * looks the file up or asks its attributes (both happen before every read of it), so what
 * is read is current. A changed text gets a new inode number (see STATUS_INO_BASE). */
static void
refresh_status(struct mfs *m)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	int64_t now_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
	pthread_mutex_lock(&m->status_mu);
	if (m->status_text != NULL && now_ms - m->status_built_ms < STATUS_MAX_AGE_MS) {
		pthread_mutex_unlock(&m->status_mu);
		return;
	}
	m->status_built_ms = now_ms;
	pthread_mutex_unlock(&m->status_mu);

	struct buf b;
	buf_init(&b, 1 << 20);
	build_status(m, thread_store(m), &b);
	pthread_mutex_lock(&m->status_mu);
	if (b.data != NULL &&
	    (m->status_text == NULL || m->status_len != b.len ||
	     memcmp(m->status_text, b.data, b.len) != 0)) {
		free(m->status_text);
		m->status_text = b.data;
		m->status_len = b.len;
		m->status_gen++;
		b.data = NULL;
	}
	pthread_mutex_unlock(&m->status_mu);
	buf_free(&b);
}

/* ---- running ------------------------------------------------------------------------- */

static int
prepare_accounts(struct mfs *m)
{
	char err[1024];
	struct store *s = NULL;
	if (store_open(m->cfg->cache_dir, &s, err, sizeof(err)) < 0) {
		fprintf(stderr, "mailfs: %s\n", err);
		return -1;
	}
	/* Before any sync thread writes a body: what a crash left in the packs goes. */
	if (store_body_sweep(s, NULL) < 0)
		fprintf(stderr, "mailfs: warning: %s\n", store_errmsg(s));
	int ret = -1;
	struct outbox *ob = NULL;
	if (outbox_open(m->cfg->cache_dir, &ob, err, sizeof(err)) < 0 || outbox_recover(ob) < 0) {
		fprintf(stderr, "mailfs: %s\n", ob ? outbox_errmsg(ob) : err);
		outbox_close(&ob);
		store_close(&s);
		return -1;
	}
	outbox_close(&ob);
	m->acc = calloc(m->cfg->naccounts, sizeof(*m->acc));
	if (m->acc == NULL)
		goto out;
	for (size_t i = 0; i < m->cfg->naccounts; i++) {
		const struct cfg_account *ca = &m->cfg->accounts[i];
		struct account *a = &m->acc[m->nacc++];
		a->cfg = ca;
		if (!ca->imap.set) {
			fprintf(stderr, "mailfs: %s: account '%s': POP3 accounts cannot be mounted by "
					"this version yet\n",
				m->cfg->path, ca->name);
			goto out;
		}
		if (store_account_ensure(s, ca->name, &a->account_id) < 0 ||
		    store_folder_ensure(s, a->account_id, 0, ca->name, STORE_FOLDER_ACCOUNT, "", '\0',
					0, &a->top_id) < 0) {
			fprintf(stderr, "mailfs: %s\n", store_errmsg(s));
			goto out;
		}
		/* An empty cache needs the server now; a warm one can start offline. */
		struct store_folder kids[1];
		int n = store_folder_children(s, a->top_id, "", kids, 1);
		if (n == 0 && check_login(ca, err, sizeof(err)) < 0) {
			fprintf(stderr, "mailfs: account '%s': %s\n", ca->name, err);
			goto out;
		}
	}
	ret = 0;
out:
	store_close(&s);
	return ret;
}

/* The last of "-o ro" / "-o rw" given (in any -o list): 1 ro, 0 rw, -1 neither. */
static int
ro_option(const struct fuse_args *args)
{
	int ro = -1;
	for (int i = 1; i < args->argc; i++) {
		const char *o = NULL;
		if (strcmp(args->argv[i], "-o") == 0 && i + 1 < args->argc)
			o = args->argv[++i];
		else if (strncmp(args->argv[i], "-o", 2) == 0)
			o = args->argv[i] + 2;
		if (o == NULL)
			continue;
		for (const char *p = o; *p;) {
			size_t n = strcspn(p, ",");
			if (n == 2 && strncmp(p, "ro", 2) == 0)
				ro = 1;
			else if (n == 2 && strncmp(p, "rw", 2) == 0)
				ro = 0;
			p += n + (p[n] == ',');
		}
	}
	return ro;
}

int
fs_run(struct cfg *cfg, struct fuse_args *args)
{
	struct mfs m;
	memset(&m, 0, sizeof(m));
	m.cfg = cfg;
	m.uid = getuid();
	m.gid = getgid();
	m.started = time(NULL);
	pthread_mutex_init(&m.status_mu, NULL);
	pthread_key_create(&m.store_key, store_key_free);
	pthread_key_create(&m.outbox_key, outbox_key_free);
	pthread_mutex_init(&m.writers_mu, NULL);
	int ret = 1;
	bool mounted = false;
	struct fuse_cmdline_opts fo;
	memset(&fo, 0, sizeof(fo));

	if (fuse_parse_cmdline(args, &fo) != 0)
		goto out;
	int ro = ro_option(args);
	if (fo.mountpoint == NULL) {
		fprintf(stderr, "mailfs: no mount point given (see mailfs --help)\n");
		goto out;
	}
	if (prepare_accounts(&m) < 0)
		goto out;
	/* Only an outbox takes writes in this version: without one (no account has an smtp
	 * URL) the mount is read-only unless -o rw says otherwise. A read-only superblock is
	 * what keeps the kernel from marking atime stale after each READ (one GETATTR per file
	 * read at its next stat), and FLUSH is then answered ENOSYS once and never sent again. */
	bool any_outbox = false;
	for (size_t i = 0; i < m.nacc; i++)
		any_outbox |= m.acc[i].cfg->smtp.set;
	m.readonly = ro == 1 || (ro == -1 && !any_outbox);
	if (m.readonly && ro == -1 && fuse_opt_add_arg(args, "-oro") != 0)
		goto out;
	/* noatime: on a writable mount it spares the GETATTR after reads of cached pages (a
	 * second grep); the first stat after a READ still costs one. */
	if (fuse_opt_add_arg(args, "-onoatime") != 0)
		goto out;
	m.se = fuse_session_new(args, &mfs_ops, sizeof(mfs_ops), &m);
	if (m.se == NULL)
		goto out;
	if (fuse_set_signal_handlers(m.se) != 0)
		goto out;
	if (fuse_session_mount(m.se, fo.mountpoint) != 0) {
		fprintf(stderr, "mailfs: cannot mount on %s\n", fo.mountpoint);
		goto out;
	}
	mounted = true;
	if (!fo.foreground)
		log_use_syslog(true);
	if (fuse_daemonize(fo.foreground) != 0)
		goto out;
	/* Threads start after daemonizing (fork keeps only the calling thread). */
	for (size_t i = 0; i < m.nacc; i++) {
		char err[512];
		m.acc[i].sync = sync_start(m.acc[i].cfg, cfg->cache_dir, m.acc[i].account_id,
					   m.acc[i].top_id, &hooks, &m, err, sizeof(err));
		if (m.acc[i].sync == NULL)
			log_error("%s", err);
		if (m.acc[i].cfg->smtp.set) {
			m.acc[i].sender = sender_start(m.acc[i].cfg, cfg->cache_dir, &sender_hooks,
						       &m, err, sizeof(err));
			if (m.acc[i].sender == NULL)
				log_error("%s", err);
		}
	}
	int r;
	if (fo.singlethread) {
		r = fuse_session_loop(m.se);
	} else {
		struct fuse_loop_config *lc = fuse_loop_cfg_create();
		fuse_loop_cfg_set_clone_fd(lc, fo.clone_fd);
		unsigned max = fo.max_threads;
		fuse_loop_cfg_set_max_threads(lc, max == 0 || max > 1000 ? 16 : max);
		unsigned idle = fo.max_idle_threads; /* UINT_MAX when not given */
		fuse_loop_cfg_set_idle_threads(lc, idle == 0 || idle > 1000 ? 4 : idle);
		r = fuse_session_loop_mt(m.se, lc);
		fuse_loop_cfg_destroy(lc);
	}
	ret = r == 0 ? 0 : 1;
out:
	for (size_t i = 0; i < m.nacc; i++) {
		sync_stop(&m.acc[i].sync);
		sender_stop(&m.acc[i].sender);
	}
	if (m.se != NULL) {
		struct fuse_session *se = m.se;
		m.se = NULL;
		if (mounted)
			fuse_session_unmount(se);
		fuse_remove_signal_handlers(se);
		fuse_session_destroy(se);
	}
	struct store *s = pthread_getspecific(m.store_key);
	store_close(&s);
	pthread_setspecific(m.store_key, NULL);
	struct outbox *ob = pthread_getspecific(m.outbox_key);
	outbox_close(&ob);
	pthread_setspecific(m.outbox_key, NULL);
	free(m.acc);
	free(m.status_text);
	free(fo.mountpoint);
	return ret;
}
