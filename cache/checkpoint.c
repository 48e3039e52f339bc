/* checkpoint.c - see checkpoint.h. */
#include "cache/checkpoint.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Checkpoints asked within this long of the last one wait for its end: the commits of a
 * burst go on while one runs, and each would ask again. */
#define CKPT_GAP_MS 20

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t thread;
	bool running; /* the thread exists (ckpt_start .. ckpt_stop) */
	bool stop;
	bool wanted; /* a commit asked for a checkpoint since the last one began */
	char *path;
	sqlite3 *db;
	uint64_t inline_runs, background, failures;
} ck = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

/* Wake the checkpointer if it serves path. False: none does; checkpoint here. */
static bool
wake(const char *path)
{
	bool ok = false;
	pthread_mutex_lock(&ck.mu);
	if (ck.running && !ck.stop && strcmp(ck.path, path) == 0) {
		ck.wanted = true;
		pthread_cond_signal(&ck.cv);
		ok = true;
	}
	pthread_mutex_unlock(&ck.mu);
	return ok;
}

/* After each commit, with the WAL's frame count (sqlite3_wal_hook). */
static int
on_commit(void *ctx, sqlite3 *db, const char *name, int frames)
{
	const char *path = ctx;
	if (frames < CKPT_FRAMES)
		return SQLITE_OK;
	if (frames < CKPT_INLINE_FRAMES && wake(path))
		return SQLITE_OK;
	/* What SQLite's autocheckpoint does; a failure (busy) is only a checkpoint missed. */
	(void)sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
	pthread_mutex_lock(&ck.mu);
	ck.inline_runs++;
	pthread_mutex_unlock(&ck.mu);
	return SQLITE_OK;
}

void
ckpt_attach(sqlite3 *db, const char *path)
{
	sqlite3_wal_hook(db, on_commit, (void *)path);
}

static void
deadline_in(struct timespec *ts, long ms)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

static void *
ckpt_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&ck.mu);
	while (!ck.stop) {
		if (!ck.wanted) {
			pthread_cond_wait(&ck.cv, &ck.mu);
			continue;
		}
		ck.wanted = false;
		pthread_mutex_unlock(&ck.mu);
		int log_frames = 0, done = 0;
		int rc = sqlite3_wal_checkpoint_v2(ck.db, NULL, SQLITE_CHECKPOINT_PASSIVE,
						   &log_frames, &done);
		pthread_mutex_lock(&ck.mu);
		ck.background++;
		if (rc != SQLITE_OK && rc != SQLITE_BUSY)
			ck.failures++; /* the WAL grows; from CKPT_INLINE_FRAMES commits try */
		struct timespec until;
		deadline_in(&until, CKPT_GAP_MS);
		while (!ck.stop && pthread_cond_timedwait(&ck.cv, &ck.mu, &until) != ETIMEDOUT)
			;
	}
	pthread_mutex_unlock(&ck.mu);
	return NULL;
}

int
ckpt_start(const char *path, char *err, size_t errlen)
{
	pthread_mutex_lock(&ck.mu);
	bool busy = ck.running;
	pthread_mutex_unlock(&ck.mu);
	if (busy) {
		snprintf(err, errlen, "%s: a checkpointer already runs", path);
		return -1;
	}
	sqlite3 *db = NULL;
	char *p = strdup(path);
	if (p == NULL ||
	    sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
		SQLITE_OK ||
	    sqlite3_exec(db, "PRAGMA synchronous = NORMAL", NULL, NULL, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", path, db ? sqlite3_errmsg(db) : "out of memory");
		sqlite3_close(db);
		free(p);
		return -1;
	}
	pthread_mutex_lock(&ck.mu);
	ck.path = p;
	ck.db = db;
	ck.stop = false;
	ck.wanted = false;
	int e = pthread_create(&ck.thread, NULL, ckpt_main, NULL);
	ck.running = e == 0;
	if (e != 0) {
		ck.path = NULL;
		ck.db = NULL;
	}
	pthread_mutex_unlock(&ck.mu);
	if (e != 0) {
		snprintf(err, errlen, "checkpointer: %s", strerror(e));
		sqlite3_close(db);
		free(p);
		return -1;
	}
	return 0;
}

void
ckpt_stop(void)
{
	pthread_mutex_lock(&ck.mu);
	if (!ck.running) {
		pthread_mutex_unlock(&ck.mu);
		return;
	}
	ck.stop = true;
	pthread_cond_signal(&ck.cv);
	pthread_mutex_unlock(&ck.mu);
	pthread_join(ck.thread, NULL);
	pthread_mutex_lock(&ck.mu);
	ck.running = false;
	sqlite3 *db = ck.db;
	char *p = ck.path;
	ck.db = NULL;
	ck.path = NULL;
	pthread_mutex_unlock(&ck.mu);
	sqlite3_close(db);
	free(p);
}

void
ckpt_stats(struct ckpt_stats *st)
{
	pthread_mutex_lock(&ck.mu);
	st->inline_runs = ck.inline_runs;
	st->background = ck.background;
	st->failures = ck.failures;
	pthread_mutex_unlock(&ck.mu);
}
