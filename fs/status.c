/* status.c - MOUNT/.status: a key = value text per account, rebuilt when it is older than
 * STATUS_MAX_AGE_MS and looked up, stat'ed or listed; a changed text gets a new inode
 * number so the kernel never serves an old one from its page cache, and a new mtime, so
 * that `rsync -a MOUNT/` copies it again only when it changed.
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

#include "cache/journal.h"
#include "cache/setaside.h"
#include "cache/store.h"
#include "net/buf.h"
#include "net/log.h"

/* How old a .status text may be when read: rebuilding costs one pass over the folder rows
 * of each account, and a script polling .status should see a change within a few ms. */
#define STATUS_MAX_AGE_MS 20

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

#define ASIDE_SHOWN 20 /* set-aside messages listed by name; the rest are counted */

struct aside_list {
	struct buf *b;
	unsigned n, shown;
};

static int
aside_line(void *ctx, const struct store_aside *x)
{
	struct aside_list *l = ctx;
	if (x->failures < ASIDE_AFTER)
		return 0;
	if (l->n++ >= ASIDE_SHOWN)
		return 0;
	char retry[32];
	format_time(x->retry_at, retry, sizeof(retry));
	buf_printf(l->b, "set_aside_msg    = %s/%s (UID %u): %s (%u failures, retried after %s)\n",
		   x->folder, x->name[0] ? x->name : "?", x->uid, x->reason, x->failures, retry);
	l->shown++;
	return 0;
}

/* Messages the server keeps failing to send (cache/setaside.h): how many, and the first
 * ASIDE_SHOWN of them. */
static void
aside_status(struct store *s, int64_t account_id, struct buf *b)
{
	struct buf lines;
	buf_init(&lines, 64 << 10);
	struct aside_list l = { .b = &lines };
	if (store_aside_each(s, account_id, 100000, aside_line, &l) < 0)
		log_warn(".status: %s", store_errmsg(s));
	buf_printf(b, "set_aside        = %u\n", l.n);
	if (lines.len > 0)
		buf_append(b, lines.data, lines.len);
	if (l.n > l.shown)
		buf_printf(b, "set_aside_more   = %u\n", l.n - l.shown);
	buf_free(&lines);
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
		else if (a->pop3 != NULL)
			pop3_sync_get_status(a->pop3, &st);
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
			   "push             = %s\n"
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
			   "last_pass_ms     = %.3f\n"
			   "last_sync        = %s\n"
			   "last_error       = %s%s%s%s\n",
			   a->cfg->name, st.online ? "online" : "offline", st.phase,
			   st.push[0] ? st.push : "none", st.first_pass_done ? "done" : "running",
			   (unsigned long long)ss.folders, (unsigned long long)ss.messages,
			   (unsigned long long)ss.bodies, (unsigned long long)ss.body_bytes,
			   (unsigned long long)st.headers_done, (unsigned long long)st.bodies_done,
			   (unsigned long long)st.ondemand_reads,
			   (unsigned long long)st.ondemand_bytes,
			   (unsigned long long)a->served_bytes, (unsigned long long)st.passes,
			   (double)st.last_pass_us / 1000.0, last,
			   st.last_error[0] ? errt : "", st.last_error[0] ? " " : "",
			   st.last_error[0] ? st.last_error : "none", "");
		uint64_t pending = 0;
		char jerr[512] = "";
		if (s != NULL)
			journal_count(s, a->account_id, &pending, jerr, sizeof(jerr));
		buf_printf(b,
			   "journal          = %llu\n"
			   "replayed         = %llu\n"
			   "journal_error    = %s\n"
			   "journal_note     = %s\n",
			   (unsigned long long)pending, (unsigned long long)st.replayed,
			   jerr[0] ? jerr : st.replay_error[0] ? st.replay_error : "none",
			   st.replay_note[0] ? st.replay_note : "none");
		/* Closes are answered before the file is committed: a refusal shows here. */
		char note[sizeof(a->write_note)];
		pthread_mutex_lock(&m->status_mu);
		snprintf(note, sizeof(note), "%s", a->write_note[0] ? a->write_note : "none");
		pthread_mutex_unlock(&m->status_mu);
		buf_printf(b, "write_note       = %s\n", note);
		if (s != NULL)
			aside_status(s, a->account_id, b);
		obx_status(m, i, b);
		buf_printf(b, "\n");
	}
	buf_printf(b, "[cache]\ndir              = %s\nbytes            = %llu\n", m->cfg->cache_dir,
		   (unsigned long long)file_bytes);
	/* How closes of written files are seen (fs/closewatch.c): "inotify" once every
	 * directory is watched (no FLUSH round trips), else "flush"; "none" on -o ro. */
	buf_printf(b, "closes           = %s\n",
		   m->readonly ? "none" : m->noflush ? "inotify" : "flush");
}

/* Rebuild the .status text if it is older than STATUS_MAX_AGE_MS; called when the kernel
 * looks the file up or asks its attributes (both happen before every read of it), so what
 * is read is current. A changed text gets a new inode number (see STATUS_INO_BASE). */
void
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
		clock_gettime(CLOCK_REALTIME, &m->status_mtime);
		b.data = NULL;
	}
	pthread_mutex_unlock(&m->status_mu);
	buf_free(&b);
}

void
status_attr(struct mfs *m, struct stat *st)
{
	refresh_status(m); /* a no-op when the caller just did */
	memset(st, 0, sizeof(*st));
	st->st_mode = S_IFREG | 0400;
	st->st_nlink = 1;
	st->st_uid = m->uid;
	st->st_gid = m->gid;
	pthread_mutex_lock(&m->status_mu);
	st->st_ino = STATUS_INO_BASE + m->status_gen;
	st->st_size = (off_t)m->status_len;
	st->st_mtim = m->status_mtime;
	pthread_mutex_unlock(&m->status_mu);
	if (st->st_mtim.tv_sec == 0) /* not built yet (no memory) */
		st->st_mtim.tv_sec = m->started;
	st->st_ctim = st->st_atim = st->st_mtim;
}
