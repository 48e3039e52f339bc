/* outbox.c - MOUNT/<account>/outbox/ and outbox/failed/ (DESIGN.md "Sending (outbox)").
 *
 *   create NAME      a queue row in state WRITING and its file CACHE_DIR/outbox-writing/ID
 *                    (outbox_scratch_open): if mailfs stops before the close is seen, the
 *                    next start queues what was written (outbox_recover);
 *   write            into that file;
 *   last close       seen by fs/closewatch.c (FLUSH until its watches are in place, and
 *                    without inotify): the content is checked and copied into the queue,
 *                    synced to disk: queued, or not a message and now in failed/ with
 *                    NAME.error; if it could not be stored it is kept and tried again;
 *   rm NAME          a queued message is cancelled (EBUSY while it is being sent);
 *   touch NAME       retry now (a waiting message's next try is moved to now);
 *   failed/NAME, failed/NAME.error   what was refused and why; rm removes them.
 * Names starting with "." (editor swap files, rsync's temporaries) are scratch files: kept in
 * memory and a scratch file only, never queued, gone at unmount; renaming one to a name
 * without the dot queues it then, and the rename reports what close would have (0, EINVAL,
 * EIO). So `rsync msg.eml outbox/` and editors work.
 * Everything here has zero entry and attribute timeouts: the sender changes these
 * directories behind the kernel's back, and they are small.
 *
 * The mount answers OPEN with ENOSYS (no OPEN/RELEASE round trips for readers), so only
 * files created here have a file handle (from CREATE); a write or truncate of an existing
 * name comes without one and is refused once the file is queued. Once OPEN was refused
 * the kernel sends no RELEASE for created files either: their handle is let go when
 * their close is seen. Handles are serial numbers looked up among live writers, so a
 * late RELEASE or FLUSH never touches a writer that is gone.
 */
#include "fs/fs-internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "net/buf.h"
#include "net/log.h"

#define MAX_WRITE_SIZE (UINT64_C(1000) * 1000 * 1000)
#define LIST_PAGE 64
/* readdir offsets of scratch files: after every queue row (4 + 2 * id). */
#define SCRATCH_OFF (UINT64_C(1) << 60)

/* A file being written in outbox/ (one per CREATE; fi->fh points to it).
 *
 * Lifetime: a writer is freed when it is out of the list (released, or a scratch file
 * removed or renamed), its CREATE handle is released, and no handler holds a reference
 * from writer_find()/scratch_find() (each such reference is dropped with writer_put()).
 * in_list, handles and refs are protected by mfs.writers_mu; the rest by w->mu. */
struct writer {
	struct writer *next;
	struct writer *live_next; /* mfs.live: every writer not freed */
	uint64_t fh;      /* its CREATE handle's value (never reused; a pointer could be) */
	bool in_list;
	unsigned handles; /* CREATE handles not released yet */
	bool closed;      /* the handle was let go (release, or a close seen without one) */
	unsigned refs;    /* references held by handlers */
	int64_t id;       /* queue row */
	size_t acc;       /* account index */
	int fd;           /* scratch file */
	uint64_t size;
	int64_t mtime;
	int64_t last_ms;  /* the last write (monotonic) */
	bool done;        /* submitted (or cancelled): later writes are refused */
	int result;       /* of the submission: 0 or an errno for every later flush */
	pthread_mutex_t mu;
	bool scratch;    /* a dot name: kept here until renamed */
	bool named;      /* fd is CACHE_DIR/outbox-writing/ID (outbox_scratch_open) */
	uint64_t serial; /* scratch files: inode value (OBX_SCRATCH) */
	char name[OUTBOX_NAME_MAX + 1]; /* under which it was created or queued */
};

static _Atomic uint64_t scratch_serial;
static _Atomic uint64_t handle_serial;

static int64_t
mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
writer_free(struct writer *w)
{
	if (w->fd >= 0)
		close(w->fd);
	pthread_mutex_destroy(&w->mu);
	free(w);
}

/* What lets go of a writer: a handler's reference, its CREATE handle, its place in the list. */
enum writer_hold { HOLD_REF, HOLD_HANDLE, HOLD_LIST };

/* Let go of one hold on w; the last one frees it. */
static void
writer_drop(struct mfs *m, struct writer *w, enum writer_hold what)
{
	if (w == NULL)
		return;
	pthread_mutex_lock(&m->writers_mu);
	if (what == HOLD_REF)
		w->refs--;
	else if (what == HOLD_HANDLE)
		w->handles--;
	else if (w->in_list) {
		for (struct writer **p = &m->writers; *p != NULL; p = &(*p)->next)
			if (*p == w) {
				*p = w->next;
				break;
			}
		w->in_list = false; /* it can no longer be found */
	}
	bool free_it = !w->in_list && w->handles == 0 && w->refs == 0;
	if (free_it)
		for (struct writer **p = &m->live; *p != NULL; p = &(*p)->live_next)
			if (*p == w) {
				*p = w->live_next;
				break;
			}
	pthread_mutex_unlock(&m->writers_mu);
	if (free_it && w->named) {
		/* Submitted or dropped: its file is no longer needed to recover it. */
		struct outbox *ob = thread_outbox(m);
		if (ob != NULL)
			outbox_scratch_remove(ob, w->id);
	}
	if (free_it)
		writer_free(w);
}

static void
writer_put(struct mfs *m, struct writer *w)
{
	writer_drop(m, w, HOLD_REF);
}

static void
writer_unlist(struct mfs *m, struct writer *w)
{
	writer_drop(m, w, HOLD_LIST);
}

/* Let go of w's CREATE handle, once (a RELEASE and a close seen here may both come). */
static void
writer_close_handle(struct mfs *m, struct writer *w)
{
	pthread_mutex_lock(&m->writers_mu);
	bool first = !w->closed;
	w->closed = true;
	pthread_mutex_unlock(&m->writers_mu);
	if (first)
		writer_drop(m, w, HOLD_HANDLE);
}

/* The writer whose CREATE handle is fh, if it is not freed; with a reference. */
static struct writer *
writer_by_fh(struct mfs *m, uint64_t fh)
{
	if (fh == 0)
		return NULL;
	pthread_mutex_lock(&m->writers_mu);
	struct writer *w = m->live;
	while (w != NULL && w->fh != fh)
		w = w->live_next;
	if (w != NULL)
		w->refs++;
	pthread_mutex_unlock(&m->writers_mu);
	return w;
}

/* The scratch file NAME of account acc, or by serial (name NULL); with a reference. */
static struct writer *
scratch_find(struct mfs *m, size_t acc, const char *name, uint64_t serial)
{
	pthread_mutex_lock(&m->writers_mu);
	struct writer *w = m->writers;
	for (; w != NULL; w = w->next)
		if (w->scratch &&
		    (name ? w->acc == acc && strcmp(w->name, name) == 0 : w->serial == serial))
			break;
	if (w != NULL)
		w->refs++;
	pthread_mutex_unlock(&m->writers_mu);
	return w;
}

/* The file being written as queue row id; with a reference. */
static struct writer *
writer_find(struct mfs *m, int64_t id)
{
	pthread_mutex_lock(&m->writers_mu);
	struct writer *w = m->writers;
	while (w != NULL && (w->scratch || w->id != id))
		w = w->next;
	if (w != NULL)
		w->refs++;
	pthread_mutex_unlock(&m->writers_mu);
	return w;
}

/* ---- names and attributes ------------------------------------------------------------- */

int
obx_account_of_top(struct mfs *m, int64_t fid)
{
	for (size_t i = 0; i < m->nacc; i++)
		if (m->acc[i].top_id == fid && m->acc[i].cfg->smtp.set)
			return (int)i;
	return -1;
}

/* The account whose outbox `name` in directory `parent` is (its top directory), or -1. */
static int
outbox_named(struct mfs *m, fuse_ino_t parent, const char *name)
{
	int64_t fid;
	if (store_ino_kind(parent, &fid) != 1)
		return -1;
	int a = obx_account_of_top(m, fid);
	return a >= 0 && strcmp(name, m->acc[a].cfg->outbox) == 0 ? a : -1;
}

static void
file_attr(struct mfs *m, uint64_t ino, uint64_t size, int64_t mtime, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_mode = S_IFREG | 0600;
	st->st_nlink = 1;
	st->st_uid = m->uid;
	st->st_gid = m->gid;
	st->st_size = (off_t)size;
	st->st_blksize = 4096;
	st->st_blocks = (blkcnt_t)((size + 511) / 512);
	st->st_mtim.tv_sec = st->st_ctim.tv_sec = st->st_atim.tv_sec = mtime;
}

/* Attributes of any outbox inode: 0, or an errno. */
static int
obx_attr(struct mfs *m, uint64_t ino, struct stat *st)
{
	uint64_t v;
	enum obx_kind k = obx_kind(ino, &v);
	if (k == OBX_DIR || k == OBX_FAILED_DIR) {
		if (v >= m->nacc)
			return ENOENT;
		dir_attr(m, ino, 0, st);
		return 0;
	}
	if (k == OBX_NONE)
		return ENOENT;
	if (k == OBX_SCRATCH) {
		struct writer *sw = scratch_find(m, 0, NULL, v);
		if (sw == NULL)
			return ENOENT;
		pthread_mutex_lock(&sw->mu);
		file_attr(m, ino, sw->size, sw->mtime, st);
		pthread_mutex_unlock(&sw->mu);
		writer_put(m, sw);
		return 0;
	}
	struct writer *w = k == OBX_FILE ? writer_find(m, (int64_t)v) : NULL;
	if (w != NULL) {
		pthread_mutex_lock(&w->mu);
		file_attr(m, ino, w->size, w->mtime, st);
		pthread_mutex_unlock(&w->mu);
		writer_put(m, w);
		return 0;
	}
	struct outbox *ob = thread_outbox(m);
	if (ob == NULL)
		return EIO;
	struct outbox_item it;
	int r = outbox_get(ob, (int64_t)v, &it);
	if (r != 0)
		return r < 0 ? EIO : ENOENT;
	if (k == OBX_FILE && it.state != OUTBOX_QUEUED && it.state != OUTBOX_WRITING)
		return ENOENT;
	if (k == OBX_FAILED && (it.state != OUTBOX_FAILED || it.msg_deleted))
		return ENOENT;
	if (k == OBX_ERROR) {
		if (it.state != OUTBOX_FAILED || it.error_deleted)
			return ENOENT;
		struct buf b;
		buf_init(&b, 1 << 20);
		if (outbox_error_text(ob, it.id, &b) < 0) {
			buf_free(&b);
			return EIO;
		}
		file_attr(m, ino, b.len, it.mtime, st);
		buf_free(&b);
		return 0;
	}
	file_attr(m, ino, it.size, it.mtime, st);
	return 0;
}

static void
reply_entry(struct mfs *m, fuse_req_t req, uint64_t ino)
{
	struct fuse_entry_param e;
	memset(&e, 0, sizeof(e));
	int r = obx_attr(m, ino, &e.attr);
	if (r != 0)
		return (void)fuse_reply_err(req, r);
	e.ino = ino;
	e.entry_timeout = 0;
	e.attr_timeout = 0;
	fuse_reply_entry(req, &e);
}

bool
obx_lookup(struct mfs *m, fuse_req_t req, fuse_ino_t parent, const char *name)
{
	uint64_t v;
	enum obx_kind k = obx_kind(parent, &v);
	if (k == OBX_NONE) {
		int a = outbox_named(m, parent, name);
		if (a < 0)
			return false;
		reply_entry(m, req, obx_ino(OBX_DIR, (uint64_t)a));
		return true;
	}
	if ((k != OBX_DIR && k != OBX_FAILED_DIR) || v >= m->nacc) {
		fuse_reply_err(req, ENOTDIR);
		return true;
	}
	const char *acct = m->acc[v].cfg->name;
	struct outbox *ob = thread_outbox(m);
	if (ob == NULL) {
		fuse_reply_err(req, EIO);
		return true;
	}
	struct outbox_item it;
	if (k == OBX_DIR) {
		if (strcmp(name, "failed") == 0) {
			reply_entry(m, req, obx_ino(OBX_FAILED_DIR, v));
			return true;
		}
		if (name[0] == '.') {
			struct writer *sw = scratch_find(m, v, name, 0);
			if (sw == NULL) {
				fuse_reply_err(req, ENOENT);
				return true;
			}
			uint64_t serial = sw->serial;
			writer_put(m, sw);
			reply_entry(m, req, obx_ino(OBX_SCRATCH, serial));
			return true;
		}
		int r = outbox_lookup(ob, acct, false, name, &it);
		if (r != 0)
			fuse_reply_err(req, r < 0 ? EIO : ENOENT);
		else
			reply_entry(m, req, obx_ino(OBX_FILE, (uint64_t)it.id));
		return true;
	}
	int r = outbox_lookup(ob, acct, true, name, &it);
	if (r == 0 && !it.msg_deleted) {
		reply_entry(m, req, obx_ino(OBX_FAILED, (uint64_t)it.id));
		return true;
	}
	size_t len = strlen(name);
	if (r >= 0 && len > 6 && strcmp(name + len - 6, ".error") == 0) {
		char base[OUTBOX_NAME_MAX + 1];
		snprintf(base, sizeof(base), "%.*s", (int)(len - 6), name);
		r = outbox_lookup(ob, acct, true, base, &it);
		if (r == 0 && !it.error_deleted) {
			reply_entry(m, req, obx_ino(OBX_ERROR, (uint64_t)it.id));
			return true;
		}
	}
	fuse_reply_err(req, r < 0 ? EIO : ENOENT);
	return true;
}

bool
obx_getattr(struct mfs *m, fuse_req_t req, fuse_ino_t ino)
{
	uint64_t v;
	if (obx_kind(ino, &v) == OBX_NONE)
		return false;
	struct stat st;
	int r = obx_attr(m, ino, &st);
	if (r != 0)
		fuse_reply_err(req, r);
	else
		fuse_reply_attr(req, &st, 0);
	return true;
}

/* ---- listing -------------------------------------------------------------------------- */

static bool
add(fuse_req_t req, struct buf *b, size_t size, bool plus, const char *name,
    const struct stat *st, off_t next)
{
	size_t room = size - b->len, need;
	if (plus) {
		struct fuse_entry_param e;
		memset(&e, 0, sizeof(e));
		e.ino = st->st_ino;
		e.attr = *st;
		need = fuse_add_direntry_plus(req, b->data + b->len, room, name, &e, next);
	} else {
		need = fuse_add_direntry(req, b->data + b->len, room, name, st, next);
	}
	if (need > room)
		return false;
	b->len += need;
	return true;
}

bool
obx_readdir(struct mfs *m, fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, bool plus)
{
	uint64_t v;
	enum obx_kind k = obx_kind(ino, &v);
	if (k == OBX_NONE)
		return false;
	if ((k != OBX_DIR && k != OBX_FAILED_DIR) || v >= m->nacc) {
		fuse_reply_err(req, ENOTDIR);
		return true;
	}
	struct outbox *ob = thread_outbox(m);
	struct buf b;
	buf_init(&b, size);
	b.data = calloc(1, size + 1);
	struct outbox_item *items = calloc(LIST_PAGE, sizeof(*items));
	if (ob == NULL || b.data == NULL || items == NULL) {
		free(b.data);
		free(items);
		fuse_reply_err(req, ob == NULL ? EIO : ENOMEM);
		return true;
	}
	b.size = size + 1;
	struct stat st;
	uint64_t o = (uint64_t)off;
	bool full = false;
	/* Offsets: 1 ".", 2 "..", 3 "failed", then 4 + 2 * id (+ 1 for NAME.error). */
	if (o < 1) {
		dir_attr(m, ino, 0, &st);
		full = !add(req, &b, size, plus, ".", &st, 1);
	}
	if (!full && o < 2) {
		dir_attr(m, k == OBX_DIR ? FUSE_ROOT_ID : obx_ino(OBX_DIR, v), 0, &st);
		full = !add(req, &b, size, plus, "..", &st, 2);
	}
	if (!full && o < 3 && k == OBX_DIR) {
		dir_attr(m, obx_ino(OBX_FAILED_DIR, v), 0, &st);
		full = !add(req, &b, size, plus, "failed", &st, 3);
	}
	/* Resume at the row of the last offset returned; entries at or below it are skipped. */
	int64_t after = o >= 6 ? (int64_t)((o - 4) / 2) - 1 : 0;
	const char *acct = m->acc[v].cfg->name;
	while (!full && o < SCRATCH_OFF) {
		int n = outbox_list(ob, acct, k == OBX_FAILED_DIR, after, items, LIST_PAGE);
		if (n < 0) {
			free(b.data);
			free(items);
			fuse_reply_err(req, EIO);
			return true;
		}
		for (int i = 0; i < n && !full; i++) {
			uint64_t base = 4 + 2 * (uint64_t)items[i].id;
			if (k == OBX_DIR) {
				if (base > o &&
				    obx_attr(m, obx_ino(OBX_FILE, (uint64_t)items[i].id), &st) == 0)
					full = !add(req, &b, size, plus, items[i].name, &st,
						    (off_t)base);
				continue;
			}
			if (!items[i].msg_deleted && base > o &&
			    obx_attr(m, obx_ino(OBX_FAILED, (uint64_t)items[i].id), &st) == 0)
				full = !add(req, &b, size, plus, items[i].name, &st, (off_t)base);
			if (!full && !items[i].error_deleted && base + 1 > o &&
			    obx_attr(m, obx_ino(OBX_ERROR, (uint64_t)items[i].id), &st) == 0) {
				char ename[OUTBOX_NAME_MAX + 8];
				snprintf(ename, sizeof(ename), "%s.error", items[i].name);
				full = !add(req, &b, size, plus, ename, &st, (off_t)(base + 1));
			}
		}
		if (n < LIST_PAGE)
			break;
		after = items[n - 1].id;
	}
	if (k == OBX_DIR && !full) {
		/* Scratch files, by serial (the list is newest first: walk it for each). */
		uint64_t last = o > SCRATCH_OFF ? o - SCRATCH_OFF : 0;
		for (;;) {
			struct writer *next = NULL;
			pthread_mutex_lock(&m->writers_mu);
			for (struct writer *w = m->writers; w != NULL; w = w->next)
				if (w->scratch && w->acc == v && w->serial > last &&
				    (next == NULL || w->serial < next->serial))
					next = w;
			char name[OUTBOX_NAME_MAX + 1];
			uint64_t serial = next ? next->serial : 0;
			if (next != NULL)
				snprintf(name, sizeof(name), "%s", next->name);
			pthread_mutex_unlock(&m->writers_mu);
			if (next == NULL || obx_attr(m, obx_ino(OBX_SCRATCH, serial), &st) != 0)
				break;
			if (!add(req, &b, size, plus, name, &st, (off_t)(SCRATCH_OFF + serial)))
				break;
			last = serial;
		}
	}
	fuse_reply_buf(req, b.data, b.len);
	free(b.data);
	free(items);
	return true;
}

/* ---- reading -------------------------------------------------------------------------- */

bool
obx_read(struct mfs *m, fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
	 struct fuse_file_info *fi)
{
	(void)fi;
	uint64_t v;
	enum obx_kind k = obx_kind(ino, &v);
	if (k == OBX_NONE)
		return false;
	if (k == OBX_DIR || k == OBX_FAILED_DIR) {
		fuse_reply_err(req, EISDIR);
		return true;
	}
	char *data = malloc(size ? size : 1);
	struct outbox *ob = thread_outbox(m);
	if (data == NULL || ob == NULL) {
		free(data);
		fuse_reply_err(req, data == NULL ? ENOMEM : EIO);
		return true;
	}
	size_t got = 0;
	int r = 0;
	struct writer *w = k == OBX_FILE      ? writer_find(m, (int64_t)v)
			   : k == OBX_SCRATCH ? scratch_find(m, 0, NULL, v)
					      : NULL;
	if (k == OBX_SCRATCH && w == NULL) {
		free(data);
		fuse_reply_err(req, ENOENT);
		return true;
	}
	bool from_scratch = false;
	if (w != NULL) {
		pthread_mutex_lock(&w->mu);
		from_scratch = !w->done;
		pthread_mutex_unlock(&w->mu);
	}
	if (from_scratch) {
		ssize_t n = pread(w->fd, data, size, off);
		r = n < 0 ? -1 : 0;
		got = n < 0 ? 0 : (size_t)n;
	} else if (k == OBX_ERROR) {
		struct buf b;
		buf_init(&b, 1 << 20);
		r = outbox_error_text(ob, (int64_t)v, &b);
		if (r == 0 && (uint64_t)off < b.len) {
			got = b.len - (size_t)off < size ? b.len - (size_t)off : size;
			memcpy(data, b.data + off, got);
		}
		buf_free(&b);
	} else {
		r = outbox_read(ob, (int64_t)v, (uint64_t)off, data, size, &got);
	}
	writer_put(m, w);
	if (r < 0)
		fuse_reply_err(req, EIO);
	else
		fuse_reply_buf(req, data, got);
	free(data);
	return true;
}

/* ---- writing -------------------------------------------------------------------------- */

static int
scratch_file(struct mfs *m)
{
	int fd = open(m->cfg->cache_dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL))
		return fd;
	/* No O_TMPFILE on this file system: a named file, unlinked at once. */
	char path[4200];
	snprintf(path, sizeof(path), "%s/.outbox-XXXXXX", m->cfg->cache_dir);
	fd = mkostemp(path, O_CLOEXEC);
	if (fd >= 0)
		unlink(path);
	return fd;
}

static bool
name_ok(const char *name)
{
	return strcmp(name, "failed") != 0 && strlen(name) <= OUTBOX_NAME_MAX;
}

bool
obx_create(struct mfs *m, fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
	   struct fuse_file_info *fi)
{
	uint64_t v;
	enum obx_kind k = obx_kind(parent, &v);
	if (k == OBX_NONE)
		return false;
	if (k != OBX_DIR || v >= m->nacc || !S_ISREG(mode)) {
		fuse_reply_err(req, k == OBX_FAILED_DIR ? EPERM : EINVAL);
		return true;
	}
	if (!name_ok(name)) {
		fuse_reply_err(req, EEXIST);
		return true;
	}
	struct outbox *ob = thread_outbox(m);
	if (ob == NULL) {
		fuse_reply_err(req, EIO);
		return true;
	}
	/* Its last close is to be seen by fs/closewatch.c, whichever FLUSH comes first. */
	(void)closewatch_ensure_outbox(m, thread_store(m), v);
	struct writer *w = calloc(1, sizeof(*w));
	if (w == NULL) {
		fuse_reply_err(req, ENOMEM);
		return true;
	}
	w->fd = -1;
	w->acc = v;
	w->mtime = time(NULL);
	w->last_ms = mono_ms();
	pthread_mutex_init(&w->mu, NULL);
	w->handles = 1;
	w->fh = ++handle_serial;
	snprintf(w->name, sizeof(w->name), "%s", name);
	if (name[0] == '.') {
		w->scratch = true;
		w->serial = ++scratch_serial;
		struct writer *old = scratch_find(m, v, name, 0);
		if (old != NULL) {
			writer_put(m, old);
			writer_free(w);
			fuse_reply_err(req, EEXIST);
			return true;
		}
	}
	int r = w->scratch ? 0 : outbox_create(ob, m->acc[v].cfg->name, name, w->mtime, &w->id);
	if (r != 0) {
		if (r < 0)
			log_error("outbox: %s", outbox_errmsg(ob));
		writer_free(w);
		fuse_reply_err(req, r < 0 ? EIO : EEXIST);
		return true;
	}
	/* A file to be queued is written into a named file, so that a stop before its close
	 * was seen loses nothing (outbox_recover); a dot name's goes with the process. */
	if (w->scratch) {
		w->fd = scratch_file(m);
		if (w->fd < 0)
			log_error("outbox: cannot create a scratch file in %s: %s",
				  m->cfg->cache_dir, strerror(errno));
	} else {
		w->fd = outbox_scratch_open(ob, w->id);
		w->named = w->fd >= 0;
		if (w->fd < 0) {
			log_error("outbox: %s", outbox_errmsg(ob));
			outbox_delete(ob, w->id);
		}
	}
	if (w->fd < 0) {
		writer_free(w);
		fuse_reply_err(req, EIO);
		return true;
	}
	pthread_mutex_lock(&m->writers_mu);
	w->next = m->writers;
	m->writers = w;
	w->in_list = true;
	w->live_next = m->live;
	m->live = w;
	pthread_mutex_unlock(&m->writers_mu);
	struct fuse_entry_param e;
	memset(&e, 0, sizeof(e));
	e.ino = w->scratch ? obx_ino(OBX_SCRATCH, w->serial) : obx_ino(OBX_FILE, (uint64_t)w->id);
	file_attr(m, e.ino, 0, w->mtime, &e.attr);
	fi->fh = w->fh;
	fi->direct_io = 1; /* what is read back comes from the scratch file or the queue */
	if (fuse_reply_create(req, &e, fi) != 0) {
		/* The creating process went away: nothing was promised. */
		if (!w->scratch)
			outbox_delete(ob, w->id);
		writer_unlist(m, w);
		writer_close_handle(m, w);
	}
	return true;
}

static struct writer *
writer_of(struct mfs *m, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct writer *w = writer_by_fh(m, fi != NULL ? fi->fh : 0);
	if (w != NULL)
		return w;
	uint64_t v;
	enum obx_kind k = obx_kind(ino, &v);
	return k == OBX_FILE	  ? writer_find(m, (int64_t)v)
	       : k == OBX_SCRATCH ? scratch_find(m, 0, NULL, v)
				  : NULL;
}

bool
obx_write(struct mfs *m, fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size,
	  off_t off, struct fuse_file_info *fi)
{
	uint64_t v;
	if (obx_kind(ino, &v) == OBX_NONE)
		return false;
	struct writer *w = writer_of(m, ino, fi);
	if (w == NULL) {
		/* A queued or failed file: its content is fixed. */
		fuse_reply_err(req, EPERM);
		return true;
	}
	pthread_mutex_lock(&w->mu);
	int err = 0;
	if (w->done)
		err = EPERM;
	else if ((uint64_t)off + size > MAX_WRITE_SIZE)
		err = EFBIG;
	ssize_t n = 0;
	if (err == 0) {
		n = pwrite(w->fd, buf, size, off);
		if (n < 0)
			err = errno == ENOSPC ? ENOSPC : EIO;
		else if ((uint64_t)off + (uint64_t)n > w->size)
			w->size = (uint64_t)off + (uint64_t)n;
		w->last_ms = mono_ms();
	}
	pthread_mutex_unlock(&w->mu);
	writer_put(m, w);
	if (err != 0)
		fuse_reply_err(req, err);
	else
		fuse_reply_write(req, (size_t)n);
	return true;
}

/* Queue what was written: 0, EINVAL (not a message: now in failed/), EIO. */
static int
submit(struct mfs *m, struct writer *w)
{
	if (w->done)
		return w->result;
	struct outbox *ob = thread_outbox(m);
	if (ob == NULL)
		return EIO;
	char why[600] = "";
	struct account *a = &m->acc[w->acc];
	int r = outbox_submit(ob, w->id, a->cfg, w->fd, w->size, w->mtime, why, sizeof(why));
	if (r < 0) {
		struct outbox_item it;
		if (outbox_get(ob, w->id, &it) == 1) {
			/* Removed while being written (rm before close): nothing to send. */
			w->done = true;
			w->result = 0;
			return 0;
		}
		log_error("outbox: account %s: %s", a->cfg->name, outbox_errmsg(ob));
		return EIO; /* not done: a later flush or the release tries again */
	}
	w->done = true;
	w->result = r == 0 ? 0 : EINVAL;
	if (r == 1)
		log_warn("outbox: account %s: not sent: %s", a->cfg->name, why);
	sender_kick(a->sender);
	return w->result;
}

/* The last close of w was seen (FLUSH, RELEASE or fs/closewatch.c): queue it, as a close
 * promises; 0, EINVAL (now in failed/) or EIO (not queued: kept for a retry). */
static int
writer_closed(struct mfs *m, struct writer *w)
{
	if (w->scratch)
		return 0; /* queued only when renamed */
	pthread_mutex_lock(&w->mu);
	int r = submit(m, w);
	pthread_mutex_unlock(&w->mu);
	struct account *a = &m->acc[w->acc];
	if (r == EINVAL)
		obx_changed(m, a->cfg->name);
	if (r == EIO) {
		char note[OUTBOX_NAME_MAX + 100];
		snprintf(note, sizeof(note), "%s/%s: could not be queued (retried)",
			 a->cfg->outbox, w->name);
		write_note(m, a, note);
	} else {
		writer_unlist(m, w);
	}
	return r;
}

bool
obx_flush(struct mfs *m, fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	uint64_t v;
	enum obx_kind k = obx_kind(ino, &v);
	if ((k != OBX_FILE && k != OBX_SCRATCH) || fi == NULL)
		return false;
	struct writer *w = writer_by_fh(m, fi->fh);
	if (w == NULL)
		return false;
	if (closewatch_has_outbox(m, w->acc) || m->cw == NULL) {
		/* Maybe not the last close: the last one raises the event that queues it, or
		 * without inotify, RELEASE comes (OPEN is answered then: fs/read.c). */
		writer_put(m, w);
		fuse_reply_err(req, 0);
		return true;
	}
	pthread_mutex_lock(&w->mu);
	bool empty = w->size == 0 && !w->done;
	pthread_mutex_unlock(&w->mu);
	if (empty) {
		/* Nothing to queue yet (an empty file is no message): a shell's redirection
		 * closes one descriptor before it writes through another. The file waits for
		 * its writes, a RELEASE, an rm, or the restart that finds it (outbox_recover). */
		writer_put(m, w);
		fuse_reply_err(req, 0);
		return true;
	}
	int r = 0;
	if (!w->scratch) {
		pthread_mutex_lock(&w->mu);
		r = submit(m, w);
		pthread_mutex_unlock(&w->mu);
		if (r == EINVAL)
			obx_changed(m, m->acc[w->acc].cfg->name);
	}
	/* Once OPEN was refused the kernel sends no RELEASE, for created files too: this
	 * close is the last word (a file is closed once in practice; a dup's later writes are
	 * refused as after any submit). */
	if (m->open_refused) {
		if (!w->scratch && r != EIO)
			writer_unlist(m, w);
		writer_close_handle(m, w);
	}
	writer_put(m, w);
	fuse_reply_err(req, r);
	return true;
}

bool
obx_release(struct mfs *m, fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	uint64_t v;
	enum obx_kind k = obx_kind(ino, &v);
	if ((k != OBX_FILE && k != OBX_SCRATCH) || fi == NULL || fi->fh == 0)
		return false;
	struct writer *w = writer_by_fh(m, fi->fh);
	if (w == NULL || w->closed) {
		/* Its close was seen already (fs/closewatch.c). */
		writer_put(m, w);
		fuse_reply_err(req, 0);
		return true;
	}
	if (w->scratch) {
		/* Kept until renamed or removed; freed here if that already happened. */
		writer_close_handle(m, w);
		writer_put(m, w);
		fuse_reply_err(req, 0);
		return true;
	}
	pthread_mutex_lock(&w->mu);
	if (!w->done && submit(m, w) == EIO) {
		/* Never acknowledged to anyone: drop the row rather than leave it WRITING. */
		struct outbox *ob = thread_outbox(m);
		if (ob != NULL)
			outbox_delete(ob, w->id);
	}
	pthread_mutex_unlock(&w->mu);
	writer_unlist(m, w);
	writer_close_handle(m, w);
	writer_put(m, w);
	fuse_reply_err(req, 0);
	return true;
}

void
obx_closed(struct mfs *m, size_t acc, const char *name)
{
	/* The newest writer of that name whose handle is still held. */
	pthread_mutex_lock(&m->writers_mu);
	struct writer *w = m->live;
	while (w != NULL && (w->closed || w->acc != acc || strcmp(w->name, name) != 0))
		w = w->live_next;
	if (w != NULL)
		w->refs++;
	pthread_mutex_unlock(&m->writers_mu);
	if (w == NULL)
		return;
	if (w->in_list)
		(void)writer_closed(m, w);
	/* Without OPEN answered, no RELEASE comes for it: let go of the handle here. With
	 * RELEASE still to come, it does (and finds the file queued). */
	if (m->open_refused)
		writer_close_handle(m, w);
	writer_put(m, w);
}

void
obx_idle(struct mfs *m, int64_t before_ms)
{
	int64_t now = mono_ms();
	for (;;) {
		/* One at a time: submitting may take a while, and unlists the writer. */
		pthread_mutex_lock(&m->writers_mu);
		struct writer *w = m->writers;
		for (; w != NULL; w = w->next) {
			if (w->scratch || w->done)
				continue;
			/* A close that found the queue unwritable; or a close lost with events. */
			if (w->closed || (before_ms != 0 && w->last_ms <= before_ms &&
					  now - w->last_ms >= 1000))
				break;
		}
		if (w != NULL)
			w->refs++;
		pthread_mutex_unlock(&m->writers_mu);
		if (w == NULL)
			return;
		int r = writer_closed(m, w);
		if (w->closed || m->open_refused)
			writer_close_handle(m, w);
		writer_put(m, w);
		if (r == EIO)
			return; /* the next tick tries again */
	}
}

/* Rename the scratch file w (NULL: not one) of account acc: to another dot name it stays a
 * scratch file; to a plain name it is queued, as a close would have, and the result is
 * what close would have said (0, EINVAL with the file in failed/, EIO). It may still be
 * open: RELEASE comes after close() returned, asynchronously; what was written when it
 * is renamed is what is queued. */
static int
rename_scratch(struct mfs *m, struct writer *w, size_t acc, fuse_ino_t newparent,
	       const char *newname, unsigned flags)
{
	uint64_t nv = 0;
	/* Only a scratch file renamed within its outbox; the rest is fixed for now. */
	if (w == NULL || obx_kind(newparent, &nv) != OBX_DIR || nv != acc ||
	    strcmp(newname, "failed") == 0 || (flags & RENAME_EXCHANGE))
		return EPERM;
	if (strlen(newname) > OUTBOX_NAME_MAX)
		return ENAMETOOLONG;
	if (newname[0] == '.') {
		struct writer *old = scratch_find(m, acc, newname, 0);
		if (old != NULL && (flags & RENAME_NOREPLACE)) {
			writer_put(m, old);
			return EEXIST;
		}
		if (old != NULL && old != w)
			writer_unlist(m, old);
		writer_put(m, old);
		pthread_mutex_lock(&m->writers_mu);
		snprintf(w->name, sizeof(w->name), "%s", newname);
		pthread_mutex_unlock(&m->writers_mu);
		return 0;
	}
	struct outbox *ob = thread_outbox(m);
	if (ob == NULL)
		return EIO;
	struct account *a = &m->acc[acc];
	pthread_mutex_lock(&w->mu);
	uint64_t size = w->size;
	int64_t mtime = w->mtime;
	pthread_mutex_unlock(&w->mu);
	int64_t id;
	int r = outbox_create(ob, a->cfg->name, newname, mtime, &id);
	if (r != 0)
		return r < 0 ? EIO : EEXIST;
	char why[600] = "";
	r = outbox_submit(ob, id, a->cfg, w->fd, size, mtime, why, sizeof(why));
	if (r < 0) {
		log_error("outbox: account %s: %s", a->cfg->name, outbox_errmsg(ob));
		outbox_delete(ob, id);
		return EIO;
	}
	pthread_mutex_lock(&m->writers_mu);
	snprintf(w->name, sizeof(w->name), "%s", newname); /* its close comes under this name */
	pthread_mutex_unlock(&m->writers_mu);
	writer_unlist(m, w);
	if (r == 1)
		log_warn("outbox: account %s: not sent: %s", a->cfg->name, why);
	sender_kick(a->sender);
	return r == 0 ? 0 : EINVAL;
}

bool
obx_rename(struct mfs *m, fuse_req_t req, fuse_ino_t parent, const char *name,
	   fuse_ino_t newparent, const char *newname, unsigned flags)
{
	uint64_t v = 0, nv = 0;
	enum obx_kind k = obx_kind(parent, &v), nk = obx_kind(newparent, &nv);
	if (k == OBX_NONE && nk == OBX_NONE)
		return false;
	if (k == OBX_NONE) {
		/* Into the outbox from a folder: EXDEV makes mv copy, which queues it. */
		fuse_reply_err(req, EXDEV);
		return true;
	}
	struct writer *w = k == OBX_DIR && v < m->nacc ? scratch_find(m, v, name, 0) : NULL;
	int err = rename_scratch(m, w, v, newparent, newname, flags);
	writer_put(m, w);
	fuse_reply_err(req, err);
	if (err == 0 || err == EINVAL)
		obx_changed(m, m->acc[v].cfg->name);
	return true;
}

bool
obx_setattr(struct mfs *m, fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
	    struct fuse_file_info *fi)
{
	uint64_t v;
	enum obx_kind k = obx_kind(ino, &v);
	if (k == OBX_NONE)
		return false;
	struct outbox *ob = thread_outbox(m);
	if (ob == NULL) {
		fuse_reply_err(req, EIO);
		return true;
	}
	struct writer *w = k == OBX_FILE || k == OBX_SCRATCH ? writer_of(m, ino, fi) : NULL;
	if (k == OBX_SCRATCH && w == NULL) {
		fuse_reply_err(req, ENOENT);
		return true;
	}
	int err = 0;
	int64_t mtime = -1;
	if (to_set & FUSE_SET_ATTR_MTIME_NOW)
		mtime = time(NULL);
	else if (to_set & FUSE_SET_ATTR_MTIME)
		mtime = attr->st_mtim.tv_sec;
	if (w != NULL) {
		pthread_mutex_lock(&w->mu);
		if (to_set & FUSE_SET_ATTR_SIZE) {
			if (w->done)
				err = EPERM;
			else if (ftruncate(w->fd, attr->st_size) != 0)
				err = EIO;
			else
				w->size = (uint64_t)attr->st_size;
		}
		if (err == 0 && mtime >= 0)
			w->mtime = mtime;
		bool done = w->done;
		int64_t id = w->id;
		pthread_mutex_unlock(&w->mu);
		writer_put(m, w);
		if (err == 0 && done && mtime >= 0)
			outbox_set_mtime(ob, id, mtime);
	} else if (k == OBX_FILE || k == OBX_FAILED || k == OBX_ERROR) {
		struct outbox_item it;
		int r = outbox_get(ob, (int64_t)v, &it);
		if (r != 0)
			err = r < 0 ? EIO : ENOENT;
		else if (to_set & FUSE_SET_ATTR_SIZE)
			err = EPERM; /* queued or failed content is fixed */
		else if (mtime >= 0 && k != OBX_ERROR) {
			outbox_set_mtime(ob, it.id, mtime);
			/* touch on a waiting message: try again now. */
			if (k == OBX_FILE && it.state == OUTBOX_QUEUED && it.next_try > time(NULL)) {
				outbox_retry_now(ob, it.id);
				for (size_t i = 0; i < m->nacc; i++)
					if (strcmp(m->acc[i].cfg->name, it.account) == 0)
						sender_kick(m->acc[i].sender);
			}
		}
	}
	if (err != 0) {
		fuse_reply_err(req, err);
		return true;
	}
	struct stat st;
	err = obx_attr(m, ino, &st);
	if (err != 0)
		fuse_reply_err(req, err);
	else
		fuse_reply_attr(req, &st, 0);
	return true;
}

bool
obx_unlink(struct mfs *m, fuse_req_t req, fuse_ino_t parent, const char *name)
{
	uint64_t v;
	enum obx_kind k = obx_kind(parent, &v);
	if (k == OBX_NONE) {
		if (outbox_named(m, parent, name) < 0)
			return false;
		fuse_reply_err(req, EPERM);
		return true;
	}
	if ((k != OBX_DIR && k != OBX_FAILED_DIR) || v >= m->nacc) {
		fuse_reply_err(req, ENOTDIR);
		return true;
	}
	struct outbox *ob = thread_outbox(m);
	if (ob == NULL) {
		fuse_reply_err(req, EIO);
		return true;
	}
	const char *acct = m->acc[v].cfg->name;
	struct outbox_item it;
	int r;
	if (k == OBX_DIR) {
		if (strcmp(name, "failed") == 0) {
			fuse_reply_err(req, EISDIR);
			return true;
		}
		if (name[0] == '.') {
			struct writer *sw = scratch_find(m, v, name, 0);
			if (sw != NULL)
				writer_unlist(m, sw);
			fuse_reply_err(req, sw != NULL ? 0 : ENOENT);
			writer_put(m, sw);
			return true;
		}
		r = outbox_lookup(ob, acct, false, name, &it);
		if (r == 0) {
			struct sender_status ss;
			memset(&ss, 0, sizeof(ss));
			if (m->acc[v].sender != NULL)
				sender_get_status(m->acc[v].sender, &ss);
			if (ss.current_id == it.id) {
				fuse_reply_err(req, EBUSY);
				return true;
			}
			r = outbox_delete(ob, it.id);
		}
	} else {
		r = outbox_lookup(ob, acct, true, name, &it);
		if (r == 0 && !it.msg_deleted) {
			r = outbox_delete_failed(ob, it.id, true);
		} else {
			size_t len = strlen(name);
			r = 1;
			if (len > 6 && strcmp(name + len - 6, ".error") == 0) {
				char base[OUTBOX_NAME_MAX + 1];
				snprintf(base, sizeof(base), "%.*s", (int)(len - 6), name);
				r = outbox_lookup(ob, acct, true, base, &it);
				if (r == 0 && it.error_deleted)
					r = 1;
				if (r == 0)
					r = outbox_delete_failed(ob, it.id, false);
			}
		}
	}
	fuse_reply_err(req, r == 0 ? 0 : r < 0 ? EIO : ENOENT);
	return true;
}

/* ---- extended attributes -------------------------------------------------------------- */

/* user.mail.status: "writing", "queued", "sending", "waiting: ...", "failed: ...". */
static int
status_value(struct mfs *m, uint64_t ino, char *out, size_t outlen)
{
	uint64_t v;
	enum obx_kind k = obx_kind(ino, &v);
	if (k != OBX_FILE && k != OBX_FAILED)
		return -ENODATA;
	struct writer *w = k == OBX_FILE ? writer_find(m, (int64_t)v) : NULL;
	bool writing = false;
	if (w != NULL) {
		pthread_mutex_lock(&w->mu);
		writing = !w->done;
		pthread_mutex_unlock(&w->mu);
		writer_put(m, w);
	}
	if (writing) {
		snprintf(out, outlen, "writing");
		return (int)strlen(out);
	}
	struct outbox *ob = thread_outbox(m);
	if (ob == NULL)
		return -EIO;
	struct outbox_item it;
	int r = outbox_get(ob, (int64_t)v, &it);
	if (r != 0)
		return r < 0 ? -EIO : -ENOENT;
	struct sender_status ss;
	memset(&ss, 0, sizeof(ss));
	for (size_t i = 0; i < m->nacc; i++)
		if (m->acc[i].sender != NULL && strcmp(m->acc[i].cfg->name, it.account) == 0)
			sender_get_status(m->acc[i].sender, &ss);
	if (it.state == OUTBOX_QUEUED && ss.current_id == it.id)
		snprintf(out, outlen, "sending");
	else
		snprintf(out, outlen, "%s", it.status[0] ? it.status : "queued");
	return (int)strlen(out);
}

bool
obx_getxattr(struct mfs *m, fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	uint64_t v;
	if (obx_kind(ino, &v) == OBX_NONE)
		return false;
	if (strncmp(name, "user.mail.", 10) != 0) {
		fuse_reply_err(req, EOPNOTSUPP);
		return true;
	}
	char value[OUTBOX_STATUS_MAX + 64];
	int n = strcmp(name, "user.mail.status") == 0 ? status_value(m, ino, value, sizeof(value))
						       : -ENODATA;
	if (n < 0)
		fuse_reply_err(req, -n);
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)n);
	else if ((size_t)n > size)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, value, (size_t)n);
	return true;
}

bool
obx_listxattr(struct mfs *m, fuse_req_t req, fuse_ino_t ino, size_t size)
{
	uint64_t v;
	enum obx_kind k = obx_kind(ino, &v);
	if (k == OBX_NONE)
		return false;
	static const char list[] = "user.mail.status";
	size_t len = k == OBX_FILE || k == OBX_FAILED ? sizeof(list) : 0;
	if (size == 0)
		fuse_reply_xattr(req, len);
	else if (len > size)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, list, len);
	(void)m;
	return true;
}

/* ---- from the sender thread and for .status ------------------------------------------- */

void
obx_changed(void *ctx, const char *account)
{
	struct mfs *m = ctx;
	if (m->se == NULL || !m->ready)
		return;
	for (size_t i = 0; i < m->nacc; i++) {
		if (strcmp(m->acc[i].cfg->name, account) != 0)
			continue;
		fuse_lowlevel_notify_inval_inode(m->se, obx_ino(OBX_DIR, i), 0, 0);
		fuse_lowlevel_notify_inval_inode(m->se, obx_ino(OBX_FAILED_DIR, i), 0, 0);
	}
}

void
obx_status(struct mfs *m, size_t acc, struct buf *b)
{
	struct account *a = &m->acc[acc];
	if (a->sender == NULL) {
		buf_printf(b, "outbox           = none (no smtp URL)\n");
		return;
	}
	struct sender_status ss;
	sender_get_status(a->sender, &ss);
	unsigned queued = 0, failed = 0, copies = 0;
	struct outbox *ob = thread_outbox(m);
	if (ob != NULL)
		outbox_counts(ob, a->cfg->name, &queued, &failed, &copies);
	buf_printf(b,
		   "outbox_queued    = %u\n"
		   "outbox_failed    = %u\n"
		   "outbox_sending   = %s\n"
		   "sent             = %llu\n"
		   "smtp_sessions    = %llu\n"
		   "sent_copies_due  = %u\n"
		   "smtp             = %s\n"
		   "smtp_last_error  = %s\n",
		   queued, failed, ss.current_id ? "yes" : "no", (unsigned long long)ss.sent,
		   (unsigned long long)ss.sessions, copies,
		   ss.online ? "ok" : "unreachable", ss.last_error[0] ? ss.last_error : "none");
}
