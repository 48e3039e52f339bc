/* replay.h - replaying the journal (cache/journal.h) to the server, on the account's sync
 * thread and its IMAP connection.
 *
 * Entries go in id order. Each is idempotent: an APPEND or MOVE records the target's
 * UIDNEXT before the command goes out, and a replay that finds that mark looks for what
 * the first attempt made (same size and Message-ID at a UID from there on) before sending
 * again, so a crash between the command and the commit of its result neither repeats nor
 * drops it. A server that refuses an entry (NO) keeps it, with the reason, for the next
 * replay; after REPLAY_MAX_ATTEMPTS refusals it is given up and logged (nothing of the
 * user's is lost: the row and its body stay in the cache). A message whose folder is gone
 * from the server goes to INBOX (and the note says so).
 */
#ifndef MAILFS_REPLAY_H
#define MAILFS_REPLAY_H

#include <stdint.h>

#include "cache/config.h"
#include "cache/store.h"
#include "net/imap.h"

#define REPLAY_MAX_ATTEMPTS 5

struct replay_ctx {
	struct store *store;           /* borrowed: the sync thread's */
	struct imap *c;                /* borrowed */
	const struct cfg_account *acct; /* borrowed */
	int64_t account_id, top_id;
	/* What the kernel must hear about (may be NULL). */
	void (*folder_changed)(void *hctx, int64_t folder_id);
	void (*msg_removed)(void *hctx, int64_t folder_id, int64_t msg_id, const char *name);
	void *hctx;
	/* Out: */
	uint64_t replayed;  /* entries done, over the context's life */
	char error[512];    /* the last refusal or failure, "" if none */
	char note[512];     /* the last conflict resolved ("...: folder gone, filed in INBOX") */
	/* A lower bound of the next UID of mailbox next_of, from the last APPENDUID or
	 * COPYUID there: many APPENDs in a row need no STATUS before each. */
	char next_of[1024];
	uint32_t next;
};

/* Replay what the journal holds. 0: it is empty; 1: entries the server refused are left;
 * -1: the connection failed (reason in error). */
int replay_run(struct replay_ctx *r);

#endif
