/* progress.c - the progress of a first sync on stderr, for a mount in the foreground (-f).
 *
 * For each account whose cache held no message when the mount started, a line every
 * PROGRESS_EVERY_S seconds until its first pass is done, then at once one line with the
 * totals:
 *
 *   mailfs: alice: first sync: 1200 of 5000 messages (24%), 33.1 MB, 6.2 MB/s, ETA 1m02s
 *   mailfs: alice: first sync done: 5000 messages, 140.0 MB in 23 s (6.1 MB/s)
 *
 * The counts are the sync engine's (cache/sync.h: messages and body bytes stored this
 * session, first_pass_done), as .status shows them; the number of messages on the server comes from one STATUS
 * per folder on a connection of this thread's own (cache/check.h), so the mount does not
 * wait for it. The rate is the average since the mount started; the ETA assumes it holds.
 * It never talks to the kernel and never blocks a FUSE or sync thread.
 */
#include "fs/fs-internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cache/check.h"
#include "cache/store.h"
#include "net/log.h"

#define PROGRESS_EVERY_S 5
#define PROGRESS_TICK_MS 500 /* how soon the end of a first sync is reported */

struct progress_acct {
	size_t acc;         /* index into mfs.acc */
	bool done;          /* its "done" line was printed */
	int64_t printed_ms; /* when its last line was printed */
	bool total_known;
	uint64_t total;     /* messages on the server, when known */
};

struct progress {
	struct mfs *m;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cond;
	bool stop; /* mu */
	int64_t start_ms;
	struct progress_acct *pa;
	size_t npa;
};

static int64_t
mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
fmt_bytes(uint64_t n, char *out, size_t outlen)
{
	if (n < 1000 * 1000)
		snprintf(out, outlen, "%.1f kB", (double)n / 1e3);
	else if (n < UINT64_C(1000) * 1000 * 1000)
		snprintf(out, outlen, "%.1f MB", (double)n / 1e6);
	else
		snprintf(out, outlen, "%.2f GB", (double)n / 1e9);
}

static void
fmt_duration(uint64_t s, char *out, size_t outlen)
{
	if (s >= 3600)
		snprintf(out, outlen, "%lluh%02llum", (unsigned long long)(s / 3600),
			 (unsigned long long)(s / 60 % 60));
	else if (s >= 60)
		snprintf(out, outlen, "%llum%02llus", (unsigned long long)(s / 60),
			 (unsigned long long)(s % 60));
	else
		snprintf(out, outlen, "%llus", (unsigned long long)s);
}

/* One line to stderr in one write, so that it never mixes with a log line. */
static void __attribute__((format(printf, 1, 2)))
say(const char *fmt, ...)
{
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	ssize_t w;
	do
		w = write(STDERR_FILENO, line, (size_t)n);
	while (w < 0 && errno == EINTR);
}

/* Report account pa: its "done" line as soon as its first sync is over (then true), a
 * progress line when PROGRESS_EVERY_S passed since the last. */
static bool
report(struct progress *p, struct progress_acct *pa, struct store *s, int64_t now_ms)
{
	struct account *a = &p->m->acc[pa->acc];
	struct sync_status st;
	memset(&st, 0, sizeof(st));
	if (a->sync == NULL)
		return true;
	sync_get_status(a->sync, &st);
	struct store_stats ss;
	if (s == NULL || store_stats(s, a->account_id, &ss) < 0)
		return false;
	double secs = (double)(now_ms - p->start_ms) / 1000.0;
	if (secs < 0.001)
		secs = 0.001;
	uint64_t msgs = st.headers_done, bytes = st.body_bytes_done;
	char b[32], rate[32];
	fmt_bytes(bytes, b, sizeof(b));
	fmt_bytes((uint64_t)((double)bytes / secs), rate, sizeof(rate));
	if (st.first_pass_done) {
		char took[32];
		fmt_duration((uint64_t)(secs + 0.5), took, sizeof(took));
		say("mailfs: %s: first sync done: %llu messages, %s in %s (%s/s)", a->cfg->name,
		    (unsigned long long)ss.messages, b, took, rate);
		return true;
	}
	if (now_ms - pa->printed_ms < PROGRESS_EVERY_S * 1000)
		return false;
	pa->printed_ms = now_ms;
	if (!pa->total_known || pa->total == 0) {
		say("mailfs: %s: first sync: %llu messages, %s, %s/s (%s)", a->cfg->name,
		    (unsigned long long)msgs, b, rate, st.online ? st.phase : "offline");
		return false;
	}
	uint64_t have = msgs < pa->total ? msgs : pa->total;
	char eta[48] = "ETA unknown";
	if (!st.online) {
		snprintf(eta, sizeof(eta), "offline");
	} else if (have >= pa->total) {
		/* Every message is listed; bodies may still come (prefetch = 30d). */
		snprintf(eta, sizeof(eta), "%s", st.phase);
	} else if (msgs > 0) {
		double left = (double)(pa->total - have) * secs / (double)msgs;
		char d[32];
		fmt_duration((uint64_t)(left + 0.5), d, sizeof(d));
		snprintf(eta, sizeof(eta), "ETA %s", d);
	}
	say("mailfs: %s: first sync: %llu of %llu messages (%llu%%), %s, %s/s, %s",
	    a->cfg->name, (unsigned long long)have, (unsigned long long)pa->total,
	    (unsigned long long)(have * 100 / pa->total), b, rate, eta);
	return false;
}

static void *
progress_main(void *arg)
{
	struct progress *p = arg;
	struct store *s = NULL;
	char err[512];
	if (store_open(p->m->cfg->cache_dir, &s, err, sizeof(err)) < 0) {
		log_warn("progress: %s", err);
		return NULL;
	}
	for (size_t i = 0; i < p->npa; i++) {
		struct progress_acct *pa = &p->pa[i];
		const struct cfg_account *ca = p->m->acc[pa->acc].cfg;
		pthread_mutex_lock(&p->mu);
		bool stop = p->stop;
		pthread_mutex_unlock(&p->mu);
		if (stop)
			break;
		pa->total_known = check_count(ca, &pa->total, err, sizeof(err)) == 0;
		if (!pa->total_known)
			log_warn("account %s: cannot count the messages on the server: %s", ca->name,
				 err);
	}
	for (size_t i = 0; i < p->npa; i++)
		p->pa[i].printed_ms = p->start_ms;
	pthread_mutex_lock(&p->mu);
	for (;;) {
		struct timespec due;
		clock_gettime(CLOCK_REALTIME, &due);
		due.tv_nsec += PROGRESS_TICK_MS * 1000000L;
		due.tv_sec += due.tv_nsec / 1000000000L;
		due.tv_nsec %= 1000000000L;
		while (!p->stop && pthread_cond_timedwait(&p->cond, &p->mu, &due) != ETIMEDOUT)
			;
		if (p->stop)
			break;
		pthread_mutex_unlock(&p->mu);
		int64_t now = mono_ms();
		bool all_done = true;
		for (size_t i = 0; i < p->npa; i++) {
			if (p->pa[i].done)
				continue;
			p->pa[i].done = report(p, &p->pa[i], s, now);
			all_done = all_done && p->pa[i].done;
		}
		pthread_mutex_lock(&p->mu);
		if (all_done)
			break;
	}
	pthread_mutex_unlock(&p->mu);
	store_close(&s);
	return NULL;
}

int
progress_start(struct mfs *m)
{
	struct progress *p = calloc(1, sizeof(*p));
	if (p == NULL)
		return -1;
	p->m = m;
	p->start_ms = mono_ms();
	p->pa = calloc(m->nacc ? m->nacc : 1, sizeof(*p->pa));
	struct store *s = NULL;
	char err[512];
	if (p->pa == NULL || store_open(m->cfg->cache_dir, &s, err, sizeof(err)) < 0)
		goto fail;
	for (size_t i = 0; i < m->nacc; i++) {
		struct store_stats ss;
		if (m->acc[i].sync == NULL || store_stats(s, m->acc[i].account_id, &ss) < 0)
			continue;
		if (ss.messages > 0)
			continue; /* a warm cache: its first pass is a resync, not worth a report */
		p->pa[p->npa++] = (struct progress_acct){ .acc = i };
	}
	store_close(&s);
	if (p->npa == 0)
		goto fail;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cond, NULL);
	if (pthread_create(&p->thread, NULL, progress_main, p) != 0) {
		pthread_cond_destroy(&p->cond);
		pthread_mutex_destroy(&p->mu);
		goto fail;
	}
	m->progress = p;
	return 0;
fail:
	store_close(&s);
	free(p->pa);
	free(p);
	return -1;
}

void
progress_stop(struct mfs *m)
{
	struct progress *p = m->progress;
	if (p == NULL)
		return;
	pthread_mutex_lock(&p->mu);
	p->stop = true;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->mu);
	pthread_join(p->thread, NULL);
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->mu);
	free(p->pa);
	free(p);
	m->progress = NULL;
}
