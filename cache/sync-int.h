/* sync-int.h - what the parts of the sync engine share (cache/sync.c, sync-fetch.c,
 * sync-read.c); not for use outside them.
 *
 * sync.c runs the account's thread: passes over folders, the journal's replay, waits and
 * backoff. sync-fetch.c turns FETCH responses into store rows and bodies inside bounded
 * transactions. sync-read.c serves on-demand reads of bodies not cached yet.
 */
#ifndef MAILFS_SYNC_INT_H
#define MAILFS_SYNC_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "cache/config.h"
#include "cache/replay.h"
#include "cache/setaside.h"
#include "cache/store.h"
#include "cache/sync.h"
#include "net/buf.h"
#include "net/imap.h"

#define HEADER_BATCH 250       /* UIDs per metadata UID FETCH */
#define TXN_ROWS 500           /* metadata rows per transaction */
#define TXN_BODIES 100         /* bodies per transaction */
#define TXN_BODY_BYTES (16u << 20)
#define TXN_MS 1000 /* and at most this long: the write lock waits on the network */
#define READERS 2
#define BACKOFF_MAX 300
#define SYNC_IO_MS 60000 /* each wait of the sync thread's connection */
#define READ_IO_MS 4000  /* each wait of an on-demand read: a stalled server is EIO soon */
/* A message set aside (ASIDE_AFTER failures, cache/setaside.h) is not asked for again
 * for ASIDE_RETRY seconds, doubling with each further failure. */
#define ASIDE_RETRY 3600
#define ASIDE_RETRY_MAX 86400
#define ASIDE_MAX 256 /* set-aside UIDs kept per folder in a pass */

/* MODE_FULL: metadata and body of new messages in one FETCH (prefetch = all); the row is
 * inserted when its body starts to stream and named when the response ends. */
enum fetch_mode { MODE_NONE, MODE_HEADERS, MODE_FLAGS, MODE_BODIES, MODE_FULL };

struct reader {
	pthread_mutex_t mu;
	struct imap *c;       /* protected by mu */
	char selected[1024];  /* raw name of the selected mailbox, protected by mu */
};

struct sync {
	const struct cfg_account *acct; /* borrowed */
	char *cache_dir;
	int64_t account_id, top_id;
	struct sync_hooks hooks;
	void *hctx;
	pthread_t thread;
	bool started;

	pthread_mutex_t mu; /* protects everything below */
	pthread_cond_t cond;
	bool stop, kick;
	bool changes; /* the journal got entries: replay them now */
	bool inbox;   /* the INBOX watcher heard of a change: pass INBOX now */
	struct idle_watch *idle; /* NULL when INBOX is not mounted */
	struct sync_status st;
	char phase[32];
	bool known_offline; /* the last connection attempt failed */
	int64_t read_kick;  /* when a read last woke the backoff wait */
	char *password;     /* cached secret, wiped on stop */

	struct reader readers[READERS];
};

struct listed_state {
	int64_t folder_id;
	struct imap_status_info st;
};

/* Per-pass state of the sync thread (only that thread touches it). */
struct pass {
	struct sync *s;
	struct store *store;
	struct imap *c;
	bool condstore;
	bool qresync;       /* ENABLE QRESYNC confirmed */
	bool adopt; /* re-reading a folder after a UIDVALIDITY change: store_msg_adopt */
	int64_t qr_folder;  /* the folder whose VANISHED responses are applied, or 0 */
	uint32_t *qr_local; /* its UIDs, loaded for a wide VANISHED range (NULL) */
	size_t qr_nlocal;
	/* current folder */
	struct store_folder *f;
	enum fetch_mode mode;
	/* metadata */
	struct buf hdr;
	bool in_hdr;
	unsigned rows_in_txn;
	bool in_txn;
	bool folder_grew;
	/* bodies */
	struct store_body_writer *w;
	uint32_t w_uid;
	int64_t w_msg;
	bool w_size_changed;
	bool w_new;   /* MODE_FULL: the row was inserted for this body */
	bool cap_hdr; /* MODE_FULL: copying the body's header block into hdr */
	unsigned bodies_in_txn;
	uint64_t bytes_in_txn;
	struct timespec txn_start;
	int64_t changed_msgs[TXN_BODIES * 2];
	struct replay_ctx rp; /* the journal's replay over this pass's connection */
	unsigned nchanged;
	bool failed; /* a store error happened inside a callback */
	/* Set-aside messages (cache/setaside.h): the UID whose data is streaming (0 between
	 * responses), blamed when the connection breaks; those set aside in aside_folder. */
	uint32_t stream_uid;
	int64_t stream_folder;
	int64_t aside_folder;
	uint32_t aside[ASIDE_MAX];
	size_t naside, aside_rows;
	/* The folders' state as the last LIST told it (LIST-STATUS), by folder id. */
	struct listed_state *listed;
	size_t nlisted, listed_size;
};

/* ---- sync.c ---------------------------------------------------------------------- */

int64_t sync_now_s(void);
/* Record the last error in the status (and the log). */
void sync_set_error(struct sync *s, const char *msg);
/* Add n to a counter of s->st under s->mu. */
void sync_count(struct sync *s, uint64_t *field, uint64_t n);

/* The vanished callback of sync_pass_handler: remove the messages of p->qr_folder the
 * server says are expunged (nothing when p->qr_folder is 0). */
int pass_vanished(void *ctx, bool earlier, const char *set);

/* ---- sync-fetch.c ---------------------------------------------------------------- */

/* The FETCH handler of the sync connection; its context is the struct pass. */
extern const struct imap_fetch_handler sync_pass_handler;
/* Open the pass's store transaction if none is open. */
int pass_txn_begin(struct pass *p);
/* Commit it and tell the hooks what it changed. */
int pass_txn_commit(struct pass *p);
/* Send UID FETCH commands for `uids` (ascending) in pipelined batches and wait for all. */
int pass_fetch_uids(struct pass *p, const uint32_t *uids, size_t n, const char *items);
/* Append "a" or "a:b" to a UID set string. */
void uid_set_append(struct buf *b, uint32_t a, uint32_t z);

#endif
