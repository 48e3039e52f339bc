/* sync.h - the sync engine: one thread per account moving data between the server (net/)
 * and the store (cache/store), and on-demand reads for bodies not cached yet.
 *
 * The sync thread owns its own IMAP connection and its own store handle. A pass lists the
 * folders, brings each folder's message metadata up to date (new messages in pipelined
 * batches, one transaction per batch; flag changes with CONDSTORE CHANGEDSINCE when
 * offered; expunges by UID listing; a changed UIDVALIDITY re-reads the folder), then
 * downloads bodies per `prefetch`, streamed from the socket into the store. Between
 * passes it waits `poll`. A lost connection is retried with exponential backoff (1 s
 * doubling to 5 min) while the store keeps serving.
 *
 * On-demand reads (sync_read) run on the caller's thread over a separate connection
 * (never behind the bulk sync), fetch only the range asked for (BODY.PEEK[]<off.len>),
 * and fail at once with SYNC_OFFLINE when the account is known to be unreachable.
 *
 * Knows nothing of FUSE: changes are reported through sync_hooks, called on the sync
 * thread after the store transaction that made them committed.
 */
#ifndef MAILFS_SYNC_H
#define MAILFS_SYNC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache/config.h"

struct sync_hooks {
	/* Entries were added to or removed from the folder (or the folder itself appeared). */
	void (*folder_changed)(void *ctx, int64_t folder_id);
	/* A message disappeared: its row is gone; `name` was its file name in `folder_id`. */
	void (*msg_removed)(void *ctx, int64_t folder_id, int64_t msg_id, const char *name);
	/* A message's attributes changed (size corrected, flags). */
	void (*msg_changed)(void *ctx, int64_t msg_id);
	/* A folder disappeared (its messages and sub-folders too). */
	void (*folder_removed)(void *ctx, int64_t parent_id, int64_t folder_id, const char *name);
	/* The server answers again after the account was offline (the network is back). */
	void (*back_online)(void *ctx, int64_t account_id);
};

struct sync_status {
	bool online;
	bool first_pass_done;
	const char *phase;      /* "connecting", "listing", "headers", "bodies", "idle", ... */
	uint64_t folders;       /* folders seen in the last listing */
	uint64_t headers_done;  /* messages whose metadata was stored this session */
	uint64_t bodies_done;   /* bodies stored this session */
	uint64_t body_bytes_done; /* bytes of bodies received this session */
	uint64_t bodies_wanted; /* bodies the prefetch has still to get (last count) */
	uint64_t ondemand_reads, ondemand_bytes; /* partial fetches for reads */
	uint64_t passes;
	uint64_t last_pass_us;  /* how long the last complete pass took (microseconds) */
	char last_error[512];   /* "" if none */
	int64_t last_error_time;
	int64_t last_sync_time;
	/* Changes made through the mount (cache/replay.h). */
	uint64_t replayed;        /* journal entries replayed this session */
	char replay_error[512];   /* why entries are left, "" if none */
	char replay_note[512];    /* the last conflict resolved, "" if none */
	char push[16]; /* INBOX watcher (cache/idle.h): idle, noop, connecting, offline, none */
};

struct sync;
struct imap;

/* Start the account's sync thread. `account_id` and `top_id` are the store rows of the
 * account and its top directory (created by the caller). The config must outlive the sync.
 * Returns NULL with a reason in err. */
struct sync *sync_start(const struct cfg_account *acct, const char *cache_dir, int64_t account_id,
			int64_t top_id, const struct sync_hooks *hooks, void *hooks_ctx, char *err,
			size_t errlen);
/* Stop the thread (interrupting waits; a command in flight finishes or times out) and
 * free everything; sets *s to NULL. */
void sync_stop(struct sync **s);
/* Start a pass now instead of waiting for the poll interval. */
void sync_kick(struct sync *s);
/* The journal got entries: replay them now (when online), without a whole pass. */
void sync_changed(struct sync *s);
/* The INBOX watcher heard of a change on the server: pass INBOX now (when online). */
void sync_inbox_changed(struct sync *s);
/* A new IMAP connection of the account, logged in (the password asked once and kept):
 * timeout_ms for connecting and logging in, then io_ms for each wait. NULL with a reason
 * in err. */
struct imap *sync_connect(struct sync *s, const char *who, int timeout_ms, int io_ms,
			  char *err, size_t errlen);
/* A consistent copy of the status. */
void sync_get_status(struct sync *s, struct sync_status *r);
/* Block until the first complete pass (metadata and prefetched bodies) is done, or
 * timeout_ms passes. 1 done, 0 timeout. */
int sync_wait_first_pass(struct sync *s, int timeout_ms);

enum sync_read_result {
	SYNC_READ_OK = 0,
	SYNC_READ_OFFLINE = -1, /* server unreachable: fail fast (EIO) */
	SYNC_READ_GONE = -2,    /* the message is no longer on the server */
	SYNC_READ_ERROR = -3,   /* anything else (EIO) */
};
/* Read len bytes at offset of message `uid` of the mailbox `server_name` from the server
 * into buf (*got_r may be short at the end of the message). Thread-safe; a small pool of
 * connections serves concurrent readers. */
enum sync_read_result sync_read(struct sync *s, const char *server_name, uint32_t uid,
				uint64_t offset, size_t len, void *buf, size_t *got_r);

#endif
