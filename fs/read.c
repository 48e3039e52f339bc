/* read.c - reading messages and .status. open and opendir answer ENOSYS once, so the
 * kernel never asks again and keeps its page and directory caches; a read is served from
 * the cache, or for a body not cached yet from the server over a reader connection.
 */
#include "fs/fs-internal.h"

#include <errno.h>
#include <fcntl.h>
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

/* No open, no opendir: ENOSYS once and the kernel stops asking (and keeps its caches). */
void
mfs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	struct mfs *m = fuse_req_userdata(req);
	if (!m->readonly && m->cw == NULL) {
		/* Closes cannot be seen through inotify (fs/closewatch.c): RELEASE is then the
		 * only sure sign of a file's last close, and it comes only while OPEN is
		 * answered. The cost is two round trips per file opened. */
		fi->fh = 0;
		fi->keep_cache = 1;
		fi->noflush = (fi->flags & O_ACCMODE) == O_RDONLY;
		return (void)fuse_reply_open(req, fi);
	}
	/* From now on the kernel sends no RELEASE, not even for created files (fs/outbox.c). */
	m->open_refused = true;
	fuse_reply_err(req, ENOSYS);
}

void
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

/* A file being written (or a scratch file): its bytes as they are. */
static void
read_scratch(fuse_req_t req, struct store *s, int64_t id, size_t size, off_t off)
{
	int fd = store_scratch_open(s, id, false);
	if (fd < 0)
		return (void)fuse_reply_buf(req, NULL, 0);
	char *data = malloc(size ? size : 1);
	if (data == NULL) {
		close(fd);
		return (void)fuse_reply_err(req, ENOMEM);
	}
	ssize_t n = pread(fd, data, size, off);
	close(fd);
	if (n < 0) {
		free(data);
		return (void)fuse_reply_err(req, EIO);
	}
	fuse_reply_buf(req, data, (size_t)n);
	free(data);
}

/* The server's RFC822.SIZE was wrong if a read of a body not cached returned more than
 * it announced, or ended before it: find the real size (reading on to the end when the
 * body is longer), correct the row and make the kernel ask the attributes again (only
 * the attributes: safe inside this READ), so that the next read is not cut at the old
 * size and stat shows the new one. */
static void
correct_size(struct mfs *m, struct store *s, struct account *a, const struct store_folder *f,
	     const struct store_msg *msg, uint64_t off, size_t asked, size_t got)
{
	uint64_t real;
	if (got < asked && (got > 0 || off == 0)) {
		real = off + got;
	} else if (got == asked && off + got > msg->size) {
		static const size_t step = 64 * 1024;
		char *probe = malloc(step);
		if (probe == NULL)
			return;
		real = off + got;
		for (;;) {
			size_t n = 0;
			if (sync_read(a->sync, f->server_name, msg->uid, real, step, probe, &n) !=
			    SYNC_READ_OK) {
				free(probe);
				return;
			}
			real += n;
			if (n < step)
				break;
		}
		free(probe);
	} else {
		return;
	}
	if (real == msg->size || store_msg_set_size(s, msg->id, real) < 0)
		return;
	log_info("account %s: UID %u of %s: the server said %llu bytes, the body has %llu",
		 a->cfg->name, msg->uid, f->server_name, (unsigned long long)msg->size,
		 (unsigned long long)real);
	if (m->se != NULL && m->ready)
		fuse_lowlevel_notify_inval_inode(m->se, store_ino_msg(msg->id), -1, 0);
}

void
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
	if (msg.state == STORE_MSG_SCRATCH)
		return read_scratch(req, s, id, size, off);
	/* A body not cached is asked for as the kernel asks: RFC822.SIZE may be wrong. */
	bool cached = msg.has_body;
	if (cached && (uint64_t)off >= msg.size)
		return (void)fuse_reply_buf(req, NULL, 0);
	if (cached && size > msg.size - (uint64_t)off)
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
	if (r == 1 && msg.state == STORE_MSG_MOVING) {
		/* Its server copy is still where it was moved from. */
		msg.uid = msg.orig_uid;
		if (store_folder_get(s, msg.orig_folder, &f) != 0)
			r = -1;
	} else if (r == 1 && msg.state != STORE_MSG_SERVER) {
		r = -1; /* a local row without its body: nothing to fetch */
	}
	if (r == 1 && a != NULL && a->pop3 != NULL) {
		/* POP3 has no partial RETR: the whole body comes into the cache, then the read
		 * is served from there (its size corrected first if LIST was wrong). */
		enum sync_read_result sr = pop3_sync_fetch(a->pop3, id);
		if (sr != SYNC_READ_OK) {
			free(data);
			return (void)fuse_reply_err(req, sr == SYNC_READ_GONE ? ENOENT : EIO);
		}
		r = store_body_read(s, id, (uint64_t)off, data, size, &got);
		if (r != 0) {
			free(data);
			return (void)fuse_reply_err(req, EIO);
		}
	} else if (r == 1) {
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
		if (msg.state == STORE_MSG_SERVER)
			correct_size(m, s, a, &f, &msg, (uint64_t)off, size, got);
	} else if (r < 0) {
		free(data);
		return (void)fuse_reply_err(req, EIO);
	}
	if (a != NULL)
		a->served_bytes += got;
	fuse_reply_buf(req, data, got);
	free(data);
}
