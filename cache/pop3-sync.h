/* pop3-sync.h - the sync engine of a POP3 account (DESIGN.md §1 "POP3 accounts").
 *
 * One thread per account. Every `poll` it opens a session, lists UIDL (identity = the UIDL
 * string; a UIDL the server lists twice falls back to "UIDL Message-ID size"; a message
 * whose UIDL changed is recognised by Message-ID and size), stores new messages in the
 * account's INBOX with names built from their TOP n 0 headers (the same form as IMAP
 * names: the local number stands where the UID would), removes rows of messages gone
 * from the server, downloads the missing bodies (RETR, spooled to a temporary file so the
 * size is exact before the body enters the store; the row's size is corrected), and ends
 * the session with QUIT. With `pop3_delete = after_cache` it then DELEs, in the same
 * session before its QUIT, the messages whose bodies are committed and synced to disk;
 * their rows stay (the cache is then all there is).
 *
 * Reads of bodies not cached yet (pop3_sync_fetch) and `rm` (pop3_sync_delete) open a
 * session of their own. Knows nothing of FUSE: changes are reported through sync_hooks.
 * The caller owns what it passes in; the config must outlive the sync.
 */
#ifndef MAILFS_POP3_SYNC_H
#define MAILFS_POP3_SYNC_H

#include <stdint.h>

#include "cache/config.h"
#include "cache/sync.h"

struct pop3_sync;

/* Start the thread. account_id/top_id: the store rows of the account and its top
 * directory. NULL with a reason in err. */
struct pop3_sync *pop3_sync_start(const struct cfg_account *acct, const char *cache_dir,
				  int64_t account_id, int64_t top_id,
				  const struct sync_hooks *hooks, void *hooks_ctx, char *err,
				  size_t errlen);
/* Stop the thread and free everything; sets *p to NULL. Accepts NULL. */
void pop3_sync_stop(struct pop3_sync **p);
/* Start a pass now. */
void pop3_sync_kick(struct pop3_sync *p);
void pop3_sync_get_status(struct pop3_sync *p, struct sync_status *r);
/* 1 once the first pass is complete, 0 after timeout_ms. */
int pop3_sync_wait_first_pass(struct pop3_sync *p, int timeout_ms);

/* Download the whole body of message row msg_id into the store now (for a read of a
 * body not cached yet). SYNC_READ_OK (the body is cached), _OFFLINE, _GONE, _ERROR. */
enum sync_read_result pop3_sync_fetch(struct pop3_sync *p, int64_t msg_id);
/* `rm`: DELE the message and QUIT, then remove its row (msg_removed is not called: the
 * caller knows). SYNC_READ_OK, _OFFLINE (nothing done), _GONE (it was not on the server
 * any more: the row is removed too), _ERROR. */
enum sync_read_result pop3_sync_delete(struct pop3_sync *p, int64_t msg_id);

#endif
