/* log.c - diagnostics to stderr or syslog (see log.h). Never sees credentials: callers
 * redact protocol lines before tracing them. */
#include "net/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static _Atomic int log_level = LOG_LEVEL_WARN;
static _Atomic bool log_trace_on;
static _Atomic bool log_syslog;

static const char *const level_names[] = { "error", "warning", "info", "debug" };

void
log_set_level(enum log_level level)
{
	log_level = level;
}

void
log_set_trace(bool on)
{
	log_trace_on = on;
}

bool
log_trace_enabled(void)
{
	return log_trace_on;
}

void
log_use_syslog(bool on)
{
	if (on && !log_syslog)
		openlog("mailfs", LOG_PID, LOG_DAEMON);
	log_syslog = on;
}

static void
log_emit(enum log_level level, const char *text)
{
	if (log_syslog) {
		static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
		syslog(prio[level], "%s", text);
		return;
	}
	char line[4200];
	int n = snprintf(line, sizeof(line), "mailfs: %s%s%s\n",
			 level == LOG_LEVEL_INFO ? "" : level_names[level],
			 level == LOG_LEVEL_INFO ? "" : ": ", text);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line)) {
		n = sizeof(line) - 1;
		line[n - 1] = '\n';
	}
	/* One write per message keeps lines from threads whole. */
	ssize_t w = write(STDERR_FILENO, line, (size_t)n);
	(void)w;
}

/* Rate limit: a text logged again within LOG_REPEAT_S seconds is counted, not written;
 * the next time it is written it says how often it came meanwhile. A failing server then
 * writes a line a minute, not thousands. */
#define LOG_REPEAT_S 60
#define LOG_RECENT 32
static pthread_mutex_t recent_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
	uint64_t hash;
	int64_t at;         /* when it was last written (monotonic seconds) */
	unsigned suppressed; /* how often it came since */
} recent[LOG_RECENT];

static uint64_t
text_hash(const char *t)
{
	uint64_t h = 1469598103934665603u; /* FNV-1a */
	for (; *t; t++)
		h = (h ^ (unsigned char)*t) * 1099511628211u;
	return h | 1;
}

/* 0: write it; >0: write it with that many repeats noted; -1: suppress. */
static long
repeat_check(const char *text)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	uint64_t h = text_hash(text);
	size_t slot = 0;
	long ret = 0;
	pthread_mutex_lock(&recent_mu);
	for (size_t i = 0; i < LOG_RECENT; i++) {
		if (recent[i].hash == h) {
			slot = i;
			goto found;
		}
		if (recent[i].at < recent[slot].at)
			slot = i; /* the oldest is replaced */
	}
	recent[slot].hash = h;
	recent[slot].at = ts.tv_sec;
	recent[slot].suppressed = 0;
	goto out;
found:
	if (ts.tv_sec - recent[slot].at < LOG_REPEAT_S) {
		recent[slot].suppressed++;
		ret = -1;
	} else {
		ret = recent[slot].suppressed;
		recent[slot].at = ts.tv_sec;
		recent[slot].suppressed = 0;
	}
out:
	pthread_mutex_unlock(&recent_mu);
	return ret;
}

void
log_msg(enum log_level level, const char *fmt, ...)
{
	if ((int)level > log_level)
		return;
	char text[4096];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	long rep = level == LOG_LEVEL_DEBUG ? 0 : repeat_check(text);
	if (rep < 0)
		return;
	if (rep > 0) {
		size_t n = strlen(text);
		snprintf(text + n, sizeof(text) - n, " (and %ld times more since it was last written)", rep);
	}
	log_emit(level, text);
}

void
log_trace(const char *who, char dir, const char *line, unsigned long len)
{
	if (!log_trace_on)
		return;
	while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
		len--;
	if (len > 1000)
		len = 1000;
	char text[1100];
	size_t o = (size_t)snprintf(text, sizeof(text), "%s %c ", who, dir);
	for (unsigned long i = 0; i < len && o < sizeof(text) - 1; i++) {
		unsigned char c = (unsigned char)line[i];
		text[o++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
	}
	text[o] = '\0';
	log_emit(LOG_LEVEL_DEBUG, text);
}
