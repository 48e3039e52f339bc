/* log.h - diagnostics for every layer of mailfs.
 *
 * Messages go to stderr (foreground) or syslog (daemon). Protocol traces are a separate
 * switch (`-d` or `debug = yes`): callers must pass only redacted lines to log_trace();
 * credentials never reach this module. Thread-safe: each message is one write. */
#ifndef MAILFS_LOG_H
#define MAILFS_LOG_H

#include <stdbool.h>

enum log_level { LOG_LEVEL_ERROR, LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };

/* Messages above `level` are dropped. Default: LOG_LEVEL_WARN. */
void log_set_level(enum log_level level);
/* Protocol traces on or off (default off). */
void log_set_trace(bool on);
bool log_trace_enabled(void);
/* Send messages to syslog instead of stderr (after daemonizing). */
void log_use_syslog(bool on);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* One protocol line: `who` names the connection ("imap alice"), `dir` is '<' or '>'.
 * `line` need not be NUL-terminated; trailing CR/LF are not printed. */
void log_trace(const char *who, char dir, const char *line, unsigned long len);

#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)

#endif
