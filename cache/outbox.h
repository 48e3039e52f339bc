/* outbox.h - the durable queue of mail to send (DESIGN.md "Sending (outbox)").
 *
 * Its own SQLite file, CACHE_DIR/outbox.db (0600, WAL, synchronous = FULL), apart from the
 * message cache: the cache can always be fetched again, the queue holds mail that exists
 * nowhere else. A message is in the queue (content and row, synced to disk) before
 * outbox_submit() returns 0; a kill -9 or a power loss after that loses nothing.
 *
 * One row per file the user wrote, in one of these states:
 *   OUTBOX_WRITING  created, being written: the content is in CACHE_DIR/outbox-writing/ID
 *                   (outbox_scratch_open), so that a stop before the close was seen loses
 *                   nothing: outbox_recover() submits such files at the next start.
 *   OUTBOX_QUEUED   waiting to be sent (outbox/NAME); attempts, next_try, last error kept.
 *   OUTBOX_FAILED   refused for good or not a message (outbox/failed/NAME + NAME.error).
 *   OUTBOX_SENT     accepted by the server, copy to the Sent folder still to do; invisible.
 * Row ids are never reused (AUTOINCREMENT): the FUSE layer derives inode numbers from them.
 *
 * Each thread opens its own handle (SQLite connections are not shared). Functions return
 * 0 on success, 1 for "no such row" where noted, -1 on error with outbox_errmsg().
 */
#ifndef MAILFS_OUTBOX_H
#define MAILFS_OUTBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "cache/config.h"
#include "net/buf.h"

#define OUTBOX_NAME_MAX 255
#define OUTBOX_STATUS_MAX 600

enum outbox_state {
	OUTBOX_WRITING = 0,
	OUTBOX_QUEUED = 1,
	OUTBOX_FAILED = 2,
	OUTBOX_SENT = 3,
};

struct outbox_item {
	int64_t id;
	char account[65];
	char name[OUTBOX_NAME_MAX + 1];
	enum outbox_state state;
	uint64_t size;
	int64_t mtime;    /* seconds; the file's modification time */
	unsigned attempts;
	int64_t next_try; /* QUEUED: epoch seconds of the next attempt */
	char status[OUTBOX_STATUS_MAX]; /* last error of a QUEUED row, reason of a FAILED one */
	bool msg_deleted;   /* FAILED: the user removed failed/NAME (NAME.error stays) */
	bool error_deleted; /* FAILED: the user removed failed/NAME.error */
};

struct outbox;

int outbox_open(const char *cache_dir, struct outbox **ob_r, char *err, size_t errlen);
void outbox_close(struct outbox **ob);
#define OUTBOX_WRITING_DIR "outbox-writing"
/* Recovery calls a file of this many bytes (a multiple) possibly cut short. */
#define OUTBOX_WRITE_BLOCK 4096
/* Once at start, before any file is written: each WRITING row a stop left behind is
 * submitted as its close would have (queued, or failed/ with the reason; a file whose size
 * is a multiple of OUTBOX_WRITE_BLOCK goes to failed/ as possibly cut short; one with no
 * bytes goes); rows of accounts not in cfg are kept. Each is told on stderr; *recovered:
 * how many. Files without a WRITING row are removed. */
int outbox_recover(struct outbox *ob, const struct cfg *cfg, unsigned *recovered);
/* The file holding what is written to WRITING row id (created empty): fd, or -1. */
int outbox_scratch_open(struct outbox *ob, int64_t id);
/* Remove it (the row was submitted or dropped). */
void outbox_scratch_remove(struct outbox *ob, int64_t id);
const char *outbox_errmsg(const struct outbox *ob);

/* A new WRITING row for outbox/NAME of `account`. 1 if the name is taken in outbox/. */
int outbox_create(struct outbox *ob, const char *account, const char *name, int64_t mtime,
		  int64_t *id_r);

/* Close of a WRITING row whose content is the `size` bytes of file descriptor fd (read with
 * pread, in pieces). The content is checked as a message for `acct` (header block,
 * recipients, addresses; see net/msgprep.h):
 *   a message:  it becomes QUEUED, content and row synced to disk; returns 0;
 *   not one:    it becomes FAILED (failed/NAME, reason in NAME.error); returns 1 and the
 *               reason in `why`;
 *   -1 on error (disk, database); the row is left as it was.
 * A FAILED name already taken in failed/ gets a suffix ("NAME.1"), so nothing is replaced. */
int outbox_submit(struct outbox *ob, int64_t id, const struct cfg_account *acct, int fd,
		  uint64_t size, int64_t mtime, char *why, size_t whylen);

/* Drop a row (WRITING, QUEUED or SENT) and its content. */
int outbox_delete(struct outbox *ob, int64_t id);
/* Remove failed/NAME (msg) or failed/NAME.error (!msg); the row goes when both are gone. */
int outbox_delete_failed(struct outbox *ob, int64_t id, bool msg);
/* Change the modification time of a row (utimens on the file). */
int outbox_set_mtime(struct outbox *ob, int64_t id, int64_t mtime);

/* Row by id (any state): 0, 1 if none. */
int outbox_get(struct outbox *ob, int64_t id, struct outbox_item *it);
/* Row by name: in outbox/ (failed = false: WRITING or QUEUED) or in failed/ (a FAILED row
 * whose message is not deleted; with error_file, "NAME.error" names its error file). */
int outbox_lookup(struct outbox *ob, const char *account, bool failed, const char *name,
		  struct outbox_item *it);
/* Rows of outbox/ (failed = false) or failed/ (true) with id > after, ascending, at most
 * max. Returns how many, or -1. */
int outbox_list(struct outbox *ob, const char *account, bool failed, int64_t after,
		struct outbox_item *items, int max);
/* Counts for .status. */
int outbox_counts(struct outbox *ob, const char *account, unsigned *queued, unsigned *failed,
		  unsigned *sent_pending);

/* Read content at offset: 0 and *got_r (short at the end), 1 if the row has no content. */
int outbox_read(struct outbox *ob, int64_t id, uint64_t offset, void *buf, size_t len,
		size_t *got_r);
/* The text of failed/NAME.error (appended to out). */
int outbox_error_text(struct outbox *ob, int64_t id, struct buf *out);

/* For the sender: QUEUED rows of `account` due at `now` (next_try <= now), by id, at most
 * max; and SENT rows (Sent copy pending) when `sent` is true. */
int outbox_due(struct outbox *ob, const char *account, bool sent, int64_t now,
	       struct outbox_item *items, int max);
/* The earliest next_try of a QUEUED row of `account`: 0 and *t_r, 1 if none queued. */
int outbox_next_try(struct outbox *ob, const char *account, int64_t *t_r);
/* After a temporary failure: attempts + 1, next_try, status. */
int outbox_retry(struct outbox *ob, int64_t id, int64_t next_try, const char *status);
/* The user asked for a retry (touch): next_try = now. */
int outbox_retry_now(struct outbox *ob, int64_t id);
/* At start: every QUEUED row of the account is due now (a restart is a retry). */
int outbox_retry_all_now(struct outbox *ob, const char *account);
/* After a permanent failure: FAILED with the reason (the text of NAME.error). */
int outbox_fail(struct outbox *ob, int64_t id, const char *status, const char *error_text);
/* Accepted by the server: SENT (synced). With keep_for_sent false the row is deleted. */
int outbox_sent(struct outbox *ob, int64_t id, bool keep_for_sent);
/* Accepted for some recipients, refused for others: FAILED with error_text listing both,
 * and (keep_for_sent) a SENT twin so the Sent copy is still made. */
int outbox_partial(struct outbox *ob, int64_t id, const char *status, const char *error_text,
		   bool keep_for_sent);

/* The Sent copy was made (or is not wanted): clears need_copy; a SENT row goes. */
int outbox_copied(struct outbox *ob, int64_t id);

/* What the sender needs of a QUEUED row, worked out once at outbox_submit(). */
struct outbox_send {
	char *header;  /* prepared header block (CRLF, Bcc removed, ends with the empty line) */
	size_t header_len;
	uint64_t body_offset; /* where the body starts in the content */
	uint64_t size;        /* content bytes */
	uint64_t send_size;   /* header_len + body with CRLF line ends */
	char *env_from;
	char **rcpts;         /* nrcpts, deduplicated; point into rcpt_buf */
	size_t nrcpts;
	char *rcpt_buf;
	bool smtputf8, body_8bit;
	char *message_id;
};
int outbox_load_send(struct outbox *ob, int64_t id, struct outbox_send *snd);
void outbox_send_free(struct outbox_send *snd);

#endif
