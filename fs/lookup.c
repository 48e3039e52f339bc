/* lookup.c - names and attributes: lookup, getattr and directory listings (READDIRPLUS
 * pages read with one index seek each). Entries and attributes live for a day: a message
 * never changes under its name, and the sync engine's hooks invalidate what changed.
 */
#include "fs/fs-internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cache/store.h"
#include "net/buf.h"
#include "net/log.h"

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

void
msg_attr(struct mfs *m, struct store *s, const struct store_msg *msg, struct stat *st)
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
	if (msg->state == STORE_MSG_SCRATCH) {
		struct stat fst;
		int fd = store_scratch_open(s, msg->id, false);
		if (fd >= 0 && fstat(fd, &fst) == 0) {
			st->st_size = fst.st_size;
			st->st_blocks = (blkcnt_t)((fst.st_size + 511) / 512);
		} else {
			st->st_size = 0;
			st->st_blocks = 0;
		}
		if (fd >= 0)
			close(fd);
	}
}

double
msg_attr_timeout(const struct store_msg *msg)
{
	/* A file being written changes through the kernel, which keeps its size itself; a
	 * commit changes it behind the kernel and invalidates it (fs/write.c). */
	(void)msg;
	return TIMEOUT_LONG;
}

/* Attributes of any inode: 0, or an errno; *timeout_r (may be NULL): how long the kernel
 * may keep them. */
int
ino_attr(struct mfs *m, struct store *s, uint64_t ino, struct stat *st, double *timeout_r)
{
	if (timeout_r != NULL)
		*timeout_r = ino == STORE_INO_STATUS || ino >= STATUS_INO_BASE ? 0 : TIMEOUT_LONG;
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
		msg_attr(m, s, &msg, st);
		if (timeout_r != NULL)
			*timeout_r = msg_attr_timeout(&msg);
		return 0;
	}
	return ENOENT;
}

/* ---- lookup, getattr ----------------------------------------------------------------- */

/* A name in a folder (pid; 0: the root) looked up in the store: 0 with *e (a negative
 * entry when e->ino is 0), or an errno. */
static int
lookup_in(struct mfs *m, struct store *s, fuse_ino_t parent, int64_t pid, const char *name,
	  struct fuse_entry_param *e)
{
	struct store_folder f;
	int r = store_folder_lookup(s, pid, name, &f);
	if (r == 0) {
		e->ino = store_ino_folder(f.id);
		dir_attr(m, e->ino, f.mtime, &e->attr);
		return 0;
	}
	if (r < 0)
		return EIO;
	if (parent == FUSE_ROOT_ID)
		return ENOENT;
	struct store_msg msg;
	r = store_msg_lookup(s, pid, name, &msg);
	if (r == 0) {
		e->ino = store_ino_msg(msg.id);
		msg_attr(m, s, &msg, &e->attr);
		e->attr_timeout = msg_attr_timeout(&msg);
		return 0;
	}
	if (r < 0)
		return EIO;
	/* A negative entry for a moment: `cp` looks the name up, then creates it (two
	 * lookups otherwise). Short, because names the sync adds are not invalidated one by
	 * one. */
	memset(e, 0, sizeof(*e));
	e->entry_timeout = NEGATIVE_TIMEOUT;
	return 0;
}

void
mfs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct mfs *m = fuse_req_userdata(req);
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
	} else if (obx_lookup(m, req, parent, name)) {
		return;
	} else if (store_ino_kind(parent, &pid) != 1) {
		return (void)fuse_reply_err(req, ENOTDIR);
	}
	bool held;
	struct store *s = reader_store(m, &held);
	if (s == NULL)
		return (void)fuse_reply_err(req, EIO);
	int err = lookup_in(m, s, parent, pid, name, &e);
	reader_done(m, held);
	if (err != 0)
		return (void)fuse_reply_err(req, err);
	fuse_reply_entry(req, &e);
}

void
mfs_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)fi;
	struct mfs *m = fuse_req_userdata(req);
	if (obx_getattr(m, req, ino))
		return;
	bool held;
	struct store *s = reader_store(m, &held);
	if (s == NULL)
		return (void)fuse_reply_err(req, EIO);
	struct stat st;
	double timeout;
	int e = ino_attr(m, s, ino, &st, &timeout);
	reader_done(m, held);
	if (e != 0)
		return (void)fuse_reply_err(req, e);
	fuse_reply_attr(req, &st, timeout);
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
				msg_attr(m, s, &page[i], &st);
				full = !add_entry(req, &b, size, plus, page[i].name, &st,
						  (off_t)(MSG_OFF_BASE + (uint64_t)page[i].id),
						  msg_attr_timeout(&page[i]));
			}
			if (n < READDIR_PAGE)
				break;
			after = page[n - 1].id;
		}
	}
	fuse_reply_buf(req, b.data, b.len);
	free(b.data);
}

void
mfs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	(void)fi;
	do_readdir(req, ino, size, off, false);
}

void
mfs_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	(void)fi;
	do_readdir(req, ino, size, off, true);
}
