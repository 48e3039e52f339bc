/* journal.h - the journal of changes made through the mount, waiting to be replayed to the
 * server (DESIGN.md §1 "Changing (IMAP)").
 *
 * A change is applied to the cache rows at once (the mount shows it) and an entry is added
 * in the same transaction, so the two are durable together when the system call returns.
 * The account's sync thread replays entries in id order (cache/replay.h) and deletes each
 * in the transaction that records its result. Entries name rows, not server names, where a
 * row exists: the server name is looked up when the entry is replayed, so a change follows
 * a folder renamed after it was queued.
 *
 *   op              msg_id      folder_id          server_name       uid
 *   JOURNAL_APPEND  the row     -                  -                 -
 *   JOURNAL_EXPUNGE -           folder of the UID  its name (if the folder row is gone)  the UID
 *   JOURNAL_MOVE    the row     source folder      source name (fallback)  UID in source
 *   JOURNAL_FLAGS   the row     -                  -                 -
 *   JOURNAL_CREATE  -           the folder         -                 -
 *   JOURNAL_DELETE  -           -                  the folder's name -
 *   JOURNAL_RENAME  -           the folder         its old name      -
 * uidnext: for APPEND and MOVE, the target's UIDNEXT recorded just before the command went
 * out (0: never sent), so a replay after a crash can find what the first attempt made.
 */
#ifndef MAILFS_JOURNAL_H
#define MAILFS_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache/store.h"

enum journal_op {
	JOURNAL_APPEND = 1,
	JOURNAL_EXPUNGE = 2,
	JOURNAL_MOVE = 3,
	JOURNAL_FLAGS = 4,
	JOURNAL_CREATE = 5,
	JOURNAL_DELETE = 6,
	JOURNAL_RENAME = 7,
};

struct journal_entry {
	int64_t id;
	int64_t account_id;
	enum journal_op op;
	int64_t msg_id;
	int64_t folder_id;
	char server_name[1024];
	uint32_t uid;
	uint32_t uidnext;
	unsigned attempts;
	char error[512];
};

/* Add an entry (in the caller's transaction). */
int journal_add(struct store *s, int64_t account_id, enum journal_op op, int64_t msg_id,
		int64_t folder_id, const char *server_name, uint32_t uid);
/* The account's first entry after `after_id`: 0, 1 none, -1. */
int journal_next(struct store *s, int64_t account_id, int64_t after_id, struct journal_entry *e);
/* Write back uidnext, attempts and error. */
int journal_update(struct store *s, const struct journal_entry *e);
/* Remove a replayed entry. */
int journal_done(struct store *s, int64_t id);
/* Entries waiting, and the first recorded failure ("" if none). */
int journal_count(struct store *s, int64_t account_id, uint64_t *n_r, char *error,
		  size_t errlen);

#endif
