/* closewatch.c - seeing the last close of files written through the mount, without FLUSH.
 *
 * The kernel sends FLUSH on every close(), of readers too: on a writable mount that one
 * round trip per file read made `grep -r` cost twice the local directory. OPEN is answered
 * ENOSYS (so RELEASE never comes either), and FLUSH is the only request a close makes. So
 * closes are seen here instead: a thread watches the mount's own directories with inotify
 * (IN_CLOSE_WRITE is raised by the kernel when the last reference to a file opened for
 * writing goes, whatever the file system), and once every folder and outbox directory is
 * watched, FLUSH is answered ENOSYS and the kernel never sends it again (mfs.noflush).
 *
 *   folder/NAME closed   write_closed(): committed as FLUSH would have (fs/write.c);
 *   outbox/NAME closed   obx_closed(): queued, or in failed/ with the reason (fs/outbox.c);
 *   a new directory      (mkdir, a folder the server got, a rename) is watched from then.
 *
 * A folder the thread has not watched yet (made a moment ago by mkdir or by the server) is
 * watched by the file system thread that creates, writes or truncates a file in it, before
 * it answers (closewatch_ensure): the file's close comes after that and is seen.
 * A close can still be missed: when the event queue overflowed, in a folder that could not
 * be watched, or for a reason not foreseen. Each tick commits such files once they have
 * not been written for CATCHUP_MS; files in a folder that could not be watched after
 * UNWATCHED_MS; any file after CATCHUP_LOST_MS. A crash before a close was seen loses
 * nothing either: files written and not committed are committed at the next start
 * (change_recover); outbox files are queued then (fs/outbox.c).
 *
 * Until every watch is in place, FLUSH is still sent. The kernel sends it on every close(2),
 * not only the last: a shell's `printf ... >FILE` opens FILE, moves it to descriptor 1 and
 * closes the first descriptor before anything is written. So a FLUSH commits only a file
 * whose directory is not watched (closewatch_has_folder/_outbox); for a watched one the
 * last close raises the event that does. Where no watch can be had, FLUSH commits.
 */
#include "fs/fs-internal.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>

#include "cache/store.h"
#include "net/log.h"

#define TICK_MS 250
#define CATCHUP_MS 1000
#define UNWATCHED_MS 10000
/* Written and not closed for this long: a close lost for a reason not foreseen here (a
 * file kept open and idle that long is committed early, and again at its close). */
#define CATCHUP_LOST_MS 30000
#define RESCAN_MIN_MS 500 /* at most two rescans of the folder tree a second */
#define IDLE_BATCH 256

#define FOLDER_MASK (IN_CLOSE_WRITE | IN_CREATE | IN_MOVED_TO | IN_ONLYDIR)

enum watch_kind { W_TOP, W_FOLDER, W_OUTBOX };

/* One watched directory. */
struct watch {
	int wd;
	enum watch_kind kind;
	int64_t id;       /* W_FOLDER: folder row; W_TOP: the account's top row */
	size_t acc;       /* account index */
	int64_t added_ms; /* monotonic: closes before this were not seen here */
};

struct closewatch {
	struct mfs *m;
	char *mountpoint;
	pthread_t thread;
	_Atomic bool stop;
	_Atomic bool done;
	int fd;
	pthread_mutex_t mu; /* w, nw, capw: the thread and closewatch_ensure() */
	struct watch *w;
	size_t nw, capw;
	bool complete;        /* every directory found has a watch */
	int64_t overflow_ms;  /* when events were last lost (0: never) */
	int64_t rescan_ms;    /* when the tree was last walked */
	bool want_rescan;
	unsigned seen_gen;
};

static int64_t
mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct watch *
watch_by_wd(struct closewatch *cw, int wd)
{
	for (size_t i = 0; i < cw->nw; i++)
		if (cw->w[i].wd == wd)
			return &cw->w[i];
	return NULL;
}

static struct watch *
watch_by_folder(struct closewatch *cw, int64_t fid)
{
	for (size_t i = 0; i < cw->nw; i++)
		if (cw->w[i].kind == W_FOLDER && cw->w[i].id == fid)
			return &cw->w[i];
	return NULL;
}

static struct watch *
watch_by_outbox(struct closewatch *cw, size_t acc)
{
	for (size_t i = 0; i < cw->nw; i++)
		if (cw->w[i].kind == W_OUTBOX && cw->w[i].acc == acc)
			return &cw->w[i];
	return NULL;
}

/* Record watch descriptor wd as (kind, id, acc); cw->mu held. False: no memory. */
static bool
watch_record(struct closewatch *cw, int wd, enum watch_kind kind, int64_t id, size_t acc)
{
	struct watch *w = watch_by_wd(cw, wd);
	if (w == NULL) {
		if (cw->nw == cw->capw) {
			size_t cap = cw->capw ? cw->capw * 2 : 32;
			struct watch *p = realloc(cw->w, cap * sizeof(*p));
			if (p == NULL)
				return false;
			cw->w = p;
			cw->capw = cap;
		}
		w = &cw->w[cw->nw++];
		w->wd = wd;
		w->added_ms = mono_ms();
	}
	/* The same inode may come back under another row (a folder deleted and made again). */
	if (w->kind != kind || w->id != id)
		w->added_ms = mono_ms();
	w->kind = kind;
	w->id = id;
	w->acc = acc;
	return true;
}

/* Watch the directory at path as (kind, id, acc); false if it cannot be watched now. The
 * path is walked without cw->mu: the walk may need this mount's own lookups answered. */
static bool
watch_add(struct closewatch *cw, const char *path, enum watch_kind kind, int64_t id, size_t acc)
{
	int wd = inotify_add_watch(cw->fd, path, FOLDER_MASK);
	if (wd < 0) {
		if (errno != ENOENT && errno != ENOTDIR)
			log_warn("closewatch: cannot watch %s: %s", path, strerror(errno));
		return false;
	}
	pthread_mutex_lock(&cw->mu);
	bool ok = watch_record(cw, wd, kind, id, acc);
	pthread_mutex_unlock(&cw->mu);
	if (!ok)
		inotify_rm_watch(cw->fd, wd);
	return ok;
}

static void
watch_gone(struct closewatch *cw, int wd)
{
	pthread_mutex_lock(&cw->mu);
	for (size_t i = 0; i < cw->nw; i++)
		if (cw->w[i].wd == wd) {
			cw->w[i] = cw->w[--cw->nw];
			break;
		}
	pthread_mutex_unlock(&cw->mu);
}

/* Watch folder fid at path and its sub-folders; false if any could not be watched. */
static bool
scan_folder(struct closewatch *cw, struct store *s, const char *path, int64_t fid, size_t acc,
	    unsigned depth)
{
	bool all = watch_add(cw, path, depth == 0 ? W_TOP : W_FOLDER, fid, acc);
	if (depth > 64)
		return all;
	struct store_folder *kids = malloc(64 * sizeof(*kids));
	if (kids == NULL)
		return false;
	char after[STORE_NAME_MAX + 1] = "";
	for (;;) {
		int n = store_folder_children(s, fid, after, kids, 64);
		if (n <= 0) {
			if (n < 0)
				all = false;
			break;
		}
		for (int i = 0; i < n && !cw->stop; i++) {
			if (kids[i].kind == STORE_FOLDER_OUTBOX)
				continue;
			char sub[PATH_MAX];
			if ((size_t)snprintf(sub, sizeof(sub), "%s/%s", path, kids[i].name) >= sizeof(sub)) {
				all = false;
				continue;
			}
			if (!scan_folder(cw, s, sub, kids[i].id, acc, depth + 1))
				all = false;
		}
		snprintf(after, sizeof(after), "%s", kids[n - 1].name);
		if (n < 64)
			break;
	}
	free(kids);
	return all;
}

/* Walk every account's folders and outbox and watch what is not watched yet. */
static void
scan(struct closewatch *cw)
{
	struct mfs *m = cw->m;
	struct store *s = thread_store(m);
	cw->rescan_ms = mono_ms();
	cw->want_rescan = false;
	cw->seen_gen = m->folders_gen;
	if (s == NULL) {
		cw->complete = false;
		return;
	}
	bool all = true;
	for (size_t i = 0; i < m->nacc && !cw->stop; i++) {
		struct account *a = &m->acc[i];
		struct store_folder top;
		if (store_folder_get(s, a->top_id, &top) != 0) {
			all = false;
			continue;
		}
		char path[PATH_MAX];
		snprintf(path, sizeof(path), "%s/%s", cw->mountpoint, top.name);
		if (!scan_folder(cw, s, path, a->top_id, i, 0))
			all = false;
		if (a->cfg->smtp.set && !m->readonly) {
			char ob[PATH_MAX];
			snprintf(ob, sizeof(ob), "%s/%s", path, a->cfg->outbox);
			if (!watch_add(cw, ob, W_OUTBOX, 0, i))
				all = false;
		}
	}
	cw->complete = all;
	if (all && !m->noflush) {
		m->noflush = true;
		log_info("closes are seen through inotify: FLUSH is no longer needed");
	}
}

static void
on_event(struct closewatch *cw, const struct inotify_event *ev)
{
	struct mfs *m = cw->m;
	if (ev->mask & IN_Q_OVERFLOW) {
		cw->overflow_ms = mono_ms();
		cw->want_rescan = true;
		return;
	}
	if (ev->mask & IN_IGNORED) {
		watch_gone(cw, ev->wd);
		return;
	}
	if (ev->len == 0)
		return;
	if (ev->mask & IN_ISDIR) {
		cw->want_rescan = true; /* a folder made or moved here */
		return;
	}
	if (!(ev->mask & IN_CLOSE_WRITE))
		return;
	pthread_mutex_lock(&cw->mu);
	const struct watch *wp = watch_by_wd(cw, ev->wd);
	struct watch wc = wp != NULL ? *wp : (struct watch){.wd = -1};
	pthread_mutex_unlock(&cw->mu);
	const struct watch *w = wp != NULL ? &wc : NULL;
	if (w == NULL)
		return;
	if (w->kind == W_OUTBOX) {
		obx_closed(m, w->acc, ev->name);
		return;
	}
	if (w->kind != W_FOLDER)
		return;
	struct store *s = thread_store(m);
	struct store_msg msg;
	int r = -1;
	/* A read can fail for a moment under heavy writing (SQLITE_BUSY while the WAL is
	 * reset): try again rather than lose the close (CATCHUP_LOST_MS is the last resort). */
	for (int i = 0; s != NULL && i < 20 && (r = store_msg_lookup(s, w->id, ev->name, &msg)) < 0; i++)
		usleep(5 * 1000);
	if (r == 0)
		write_closed(m, s, msg.id);
	else if (r < 0)
		log_warn("closewatch: %s: cannot look it up: %s", ev->name,
			 s != NULL ? store_errmsg(s) : "no store");
}

/* Commit files whose close may not have been seen (see the top of this file). */
static void
catch_up(struct closewatch *cw)
{
	struct mfs *m = cw->m;
	struct write_idle idle[IDLE_BATCH];
	size_t n = write_idle(CATCHUP_MS, idle, IDLE_BATCH);
	if (n > 0) {
		struct store *s = thread_store(m);
		int64_t now = mono_ms();
		for (size_t i = 0; s != NULL && i < n; i++) {
			struct store_msg msg;
			if (store_msg_get(s, idle[i].id, &msg) != 0)
				continue;
			pthread_mutex_lock(&cw->mu);
			const struct watch *w = watch_by_folder(cw, msg.folder_id);
			bool missed = w == NULL ? now - idle[i].when_ms >= UNWATCHED_MS
						: w->added_ms > idle[i].when_ms ||
							  cw->overflow_ms >= idle[i].when_ms ||
							  now - idle[i].when_ms >= CATCHUP_LOST_MS;
			pthread_mutex_unlock(&cw->mu);
			if (missed) {
				log_info("closewatch: %s committed %" PRId64
					 " ms after its last write: its close was not seen",
					 msg.name, now - idle[i].when_ms);
				write_closed(m, s, idle[i].id);
			}
		}
	}
	if (cw->overflow_ms != 0)
		obx_idle(m, cw->overflow_ms);
}

static void *
closewatch_main(void *arg)
{
	struct closewatch *cw = arg;
	struct mfs *m = cw->m;
	/* Path lookups on the mount need the kernel's INIT answered. */
	while (!m->ready && !cw->stop)
		usleep(10 * 1000);
	if (!cw->stop)
		scan(cw);
	char buf[16 * (sizeof(struct inotify_event) + NAME_MAX + 1)]
		__attribute__((aligned(__alignof__(struct inotify_event))));
	while (!cw->stop) {
		struct pollfd p = {.fd = cw->fd, .events = POLLIN};
		int r = poll(&p, 1, TICK_MS);
		if (r > 0) {
			ssize_t len;
			while ((len = read(cw->fd, buf, sizeof(buf))) > 0 && !cw->stop) {
				for (char *q = buf; q < buf + len;) {
					const struct inotify_event *ev = (const void *)q;
					on_event(cw, ev);
					q += sizeof(*ev) + ev->len;
				}
			}
		}
		if (cw->stop)
			break;
		if (m->folders_gen != cw->seen_gen || !cw->complete)
			cw->want_rescan = true;
		if (cw->want_rescan && mono_ms() - cw->rescan_ms >= RESCAN_MIN_MS)
			scan(cw);
		catch_up(cw);
	}
	cw->done = true;
	return NULL;
}

int
closewatch_start(struct mfs *m, const char *mountpoint)
{
	if (m->readonly || mountpoint == NULL || mountpoint[0] != '/')
		return -1;
	if (getenv("MAILFS_NO_INOTIFY") != NULL) {
		/* A test aid: the mount as it runs where inotify cannot be had. */
		log_info("closewatch: MAILFS_NO_INOTIFY is set: closes are seen through FLUSH");
		return -1;
	}
	struct closewatch *cw = calloc(1, sizeof(*cw));
	if (cw == NULL)
		return -1;
	cw->m = m;
	pthread_mutex_init(&cw->mu, NULL);
	cw->mountpoint = strdup(mountpoint);
	cw->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (cw->mountpoint == NULL || cw->fd < 0) {
		log_warn("closewatch: no inotify (%s): closes are seen through FLUSH",
			 strerror(errno));
		if (cw->fd >= 0)
			close(cw->fd);
		pthread_mutex_destroy(&cw->mu);
		free(cw->mountpoint);
		free(cw);
		return -1;
	}
	if (pthread_create(&cw->thread, NULL, closewatch_main, cw) != 0) {
		close(cw->fd);
		pthread_mutex_destroy(&cw->mu);
		free(cw->mountpoint);
		free(cw);
		return -1;
	}
	m->cw = cw;
	return 0;
}

/* Stop the thread; wait_ms: how long to wait for it (it may be inside a lookup on a mount
 * whose loop has stopped: it then ends when the mount goes). True when it ended. */
bool
closewatch_stop(struct mfs *m, int wait_ms)
{
	struct closewatch *cw = m->cw;
	if (cw == NULL)
		return true;
	cw->stop = true;
	for (int i = 0; !cw->done && i < wait_ms / 10; i++)
		usleep(10 * 1000);
	if (!cw->done && wait_ms > 0)
		return false;
	pthread_join(cw->thread, NULL);
	m->cw = NULL;
	close(cw->fd);
	pthread_mutex_destroy(&cw->mu);
	free(cw->w);
	free(cw->mountpoint);
	free(cw);
	return true;
}

/* The path under the mount of folder fid and its account index; false if not found. */
static bool
folder_path(struct closewatch *cw, struct store *s, int64_t fid, char *path, size_t len,
	    size_t *acc)
{
	struct mfs *m = cw->m;
	const char *names[65];
	struct store_folder *chain = malloc(65 * sizeof(*chain));
	if (chain == NULL)
		return false;
	size_t n = 0;
	int64_t id = fid;
	bool ok = false;
	while (n < 65 && store_folder_get(s, id, &chain[n]) == 0) {
		names[n] = chain[n].name;
		if (chain[n].parent_id == 0) {
			ok = true;
			break;
		}
		id = chain[n++].parent_id;
	}
	if (ok) {
		ok = false;
		for (size_t i = 0; i < m->nacc; i++)
			if (m->acc[i].top_id == chain[n].id) {
				*acc = i;
				ok = true;
			}
	}
	size_t off = ok ? (size_t)snprintf(path, len, "%s", cw->mountpoint) : 0;
	for (size_t i = n + 1; ok && i-- > 0;) {
		int r = snprintf(path + off, len - off, "/%s", names[i]);
		if (r < 0 || (size_t)r >= len - off)
			ok = false;
		else
			off += (size_t)r;
	}
	free(chain);
	return ok;
}

bool
closewatch_ensure(struct mfs *m, struct store *s, int64_t fid)
{
	struct closewatch *cw = m->cw;
	if (cw == NULL || s == NULL)
		return false;
	for (size_t i = 0; i < m->nacc; i++)
		if (m->acc[i].top_id == fid)
			return false; /* no messages there; watched by scan() */
	if (closewatch_has_folder(m, fid) || m->singlethread)
		return closewatch_has_folder(m, fid); /* -s: the walk would wait on this thread */
	char path[PATH_MAX];
	size_t acc;
	if (!folder_path(cw, s, fid, path, sizeof(path), &acc))
		return false;
	if (!watch_add(cw, path, W_FOLDER, fid, acc))
		return false;
	log_debug("closewatch: %s watched before its first write", path);
	return true;
}

bool
closewatch_ensure_outbox(struct mfs *m, struct store *s, size_t acc)
{
	struct closewatch *cw = m->cw;
	if (cw == NULL || s == NULL || acc >= m->nacc)
		return false;
	if (closewatch_has_outbox(m, acc) || m->singlethread)
		return closewatch_has_outbox(m, acc);
	const struct account *a = &m->acc[acc];
	struct store_folder top;
	char path[PATH_MAX];
	if (store_folder_get(s, a->top_id, &top) != 0 ||
	    (size_t)snprintf(path, sizeof(path), "%s/%s/%s", cw->mountpoint, top.name,
			     a->cfg->outbox) >= sizeof(path))
		return false;
	if (!watch_add(cw, path, W_OUTBOX, 0, acc))
		return false;
	log_debug("closewatch: %s watched before its first file", path);
	return true;
}

bool
closewatch_has_folder(struct mfs *m, int64_t fid)
{
	struct closewatch *cw = m->cw;
	if (cw == NULL)
		return false;
	pthread_mutex_lock(&cw->mu);
	bool have = watch_by_folder(cw, fid) != NULL;
	pthread_mutex_unlock(&cw->mu);
	return have;
}

bool
closewatch_has_outbox(struct mfs *m, size_t acc)
{
	struct closewatch *cw = m->cw;
	if (cw == NULL)
		return false;
	pthread_mutex_lock(&cw->mu);
	bool have = watch_by_outbox(cw, acc) != NULL;
	pthread_mutex_unlock(&cw->mu);
	return have;
}
