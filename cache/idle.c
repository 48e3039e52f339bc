/* idle.c - the INBOX watcher of an account (see idle.h). */
#include "cache/idle.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "net/conn.h"
#include "net/imap.h"
#include "net/log.h"

#define SLICE_MS 500 /* how long one wait for the server lasts: the stop flag's latency */
#define BACKOFF_MAX 300

struct idle_watch {
	struct sync *s; /* borrowed: the sync outlives its watcher */
	char name[128];
	pthread_t thread;
	pthread_mutex_t mu; /* protects stop and state */
	pthread_cond_t cond;
	bool stop;
	char state[16];
};

static void
set_state(struct idle_watch *w, const char *state)
{
	pthread_mutex_lock(&w->mu);
	snprintf(w->state, sizeof(w->state), "%s", state);
	pthread_mutex_unlock(&w->mu);
}

static bool
stopping(struct idle_watch *w)
{
	pthread_mutex_lock(&w->mu);
	bool stop = w->stop;
	pthread_mutex_unlock(&w->mu);
	return stop;
}

/* Sleep up to `seconds` unless stopped. Returns true if stopping. */
static bool
nap(struct idle_watch *w, unsigned seconds)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += seconds;
	pthread_mutex_lock(&w->mu);
	while (!w->stop)
		if (pthread_cond_timedwait(&w->cond, &w->mu, &ts) == ETIMEDOUT)
			break;
	bool stop = w->stop;
	pthread_mutex_unlock(&w->mu);
	return stop;
}

static time_t
mono_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

/* Tell the sync thread when the server reported a change. */
static void
heard(struct idle_watch *w, struct imap *c)
{
	if (imap_events(c, true) > 0)
		sync_inbox_changed(w->s);
}

/* One IDLE until renewal time, a change or a stop. -1 when the connection is unusable. */
static int
idle_once(struct idle_watch *w, struct imap *c)
{
	if (imap_idle_begin(c) != IMAP_OK)
		return -1;
	time_t renew = mono_s() + IDLE_RENEW_S;
	while (imap_idling(c) && !stopping(w) && mono_s() < renew) {
		if (imap_idle_wait(c, SLICE_MS) != IMAP_OK)
			return -1;
		heard(w, c);
	}
	if (stopping(w))
		conn_set_timeout(imap_conn(c), 2000); /* a dead server must not hold up a stop */
	if (imap_idle_end(c) != IMAP_OK)
		return -1;
	heard(w, c);
	return 0;
}

/* Without IDLE: a NOOP every IDLE_NOOP_S seconds makes the server report what changed. */
static int
noop_once(struct idle_watch *w, struct imap *c)
{
	if (nap(w, IDLE_NOOP_S))
		return 0;
	if (imap_noop(c) != IMAP_OK)
		return -1;
	heard(w, c);
	return 0;
}

static void *
idle_main(void *arg)
{
	struct idle_watch *w = arg;
	unsigned backoff = 1;
	bool connected_before = false;
	char err[700];
	while (!stopping(w)) {
		set_state(w, "connecting");
		struct imap *c = sync_connect(w->s, "idle", 15000, 60000, err, sizeof(err));
		struct imap_select_info si;
		if (c != NULL && imap_select(c, "INBOX", true, &si) != IMAP_OK) {
			snprintf(err, sizeof(err), "%s", imap_errmsg(c));
			imap_close(&c);
		}
		if (c == NULL) {
			set_state(w, "offline");
			log_debug("account %s: INBOX watcher: %s", w->name, err);
			if (nap(w, backoff))
				break;
			backoff = backoff * 2 > BACKOFF_MAX ? BACKOFF_MAX : backoff * 2;
			continue;
		}
		backoff = 1;
		/* Changes made while no one listened were not heard: look once. */
		if (connected_before)
			sync_inbox_changed(w->s);
		connected_before = true;
		(void)imap_events(c, true);
		bool has_idle = imap_has_cap(c, "IDLE");
		set_state(w, has_idle ? "idle" : "noop");
		int r = 0;
		while (r == 0 && !stopping(w))
			r = has_idle ? idle_once(w, c) : noop_once(w, c);
		if (r < 0)
			log_debug("account %s: INBOX watcher lost its connection: %s", w->name,
				  imap_errmsg(c));
		imap_close(&c);
	}
	return NULL;
}

struct idle_watch *
idle_start(struct sync *s, const char *account_name, char *err, size_t errlen)
{
	struct idle_watch *w = calloc(1, sizeof(*w));
	if (w == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	w->s = s;
	snprintf(w->name, sizeof(w->name), "%s", account_name);
	snprintf(w->state, sizeof(w->state), "connecting");
	pthread_mutex_init(&w->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w->cond, &ca);
	pthread_condattr_destroy(&ca);
	int e = pthread_create(&w->thread, NULL, idle_main, w);
	if (e != 0) {
		snprintf(err, errlen, "cannot start a thread: %s", strerror(e));
		pthread_cond_destroy(&w->cond);
		pthread_mutex_destroy(&w->mu);
		free(w);
		return NULL;
	}
	return w;
}

void
idle_stop(struct idle_watch **wp)
{
	struct idle_watch *w = *wp;
	if (w == NULL)
		return;
	pthread_mutex_lock(&w->mu);
	w->stop = true;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->thread, NULL);
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->mu);
	free(w);
	*wp = NULL;
}

const char *
idle_state(struct idle_watch *w, char *out, size_t outlen)
{
	pthread_mutex_lock(&w->mu);
	snprintf(out, outlen, "%s", w->state);
	pthread_mutex_unlock(&w->mu);
	return out;
}
