/* idle.h - push for an account's INBOX: one more IMAP connection that sits in IDLE
 * (RFC 2177) on INBOX and tells the sync thread the moment the server reports a change
 * (a new message, a flag set by another client, an expunge), so that it shows in the
 * mount within seconds instead of at the next `poll`.
 *
 * The watcher only listens: it never writes to the store. What it hears makes the sync
 * thread run a pass over INBOX alone (sync_inbox_changed), which stores the change and
 * invalidates the kernel's entries through the sync hooks as any pass does. The IDLE is
 * renewed every IDLE_RENEW_S seconds (servers may drop an IDLE after 30 minutes); a server
 * without IDLE is asked with NOOP every IDLE_NOOP_S seconds instead. A lost connection is
 * retried with backoff (1 s doubling to 5 min); after a reconnect the INBOX is passed once,
 * since what happened while the watcher was away was not heard.
 */
#ifndef MAILFS_IDLE_H
#define MAILFS_IDLE_H

#include "cache/sync.h"

#define IDLE_RENEW_S (25 * 60)
#define IDLE_NOOP_S 15

struct idle_watch;

/* Start watching the INBOX of the account the sync serves. NULL with a reason in err. */
struct idle_watch *idle_start(struct sync *s, const char *account_name, char *err,
			      size_t errlen);
/* Stop (ending the IDLE with DONE when the connection is up) and free; accepts NULL. */
void idle_stop(struct idle_watch **w);
/* "idle", "noop" (the server has no IDLE), "connecting" or "offline". */
const char *idle_state(struct idle_watch *w, char *out, size_t outlen);

#endif
