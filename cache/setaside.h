/* setaside.h - messages the server keeps failing to send (part of the store).
 *
 * When a connection breaks while a message's data is streaming, the sync engine counts a
 * failure against that message (by folder and server UID). After a few failures in a row
 * the message is set aside: it stays listed, its body is no longer asked for in the bulk
 * sync until retry_at, and the rest of the account goes on. A complete body clears the
 * row; so does the message's (or its folder's) removal. The policy (how many failures,
 * how long) is the caller's; this file only keeps the record.
 */
#ifndef MAILFS_SETASIDE_H
#define MAILFS_SETASIDE_H

#include <stddef.h>
#include <stdint.h>

#include "cache/names.h"
#include "cache/store.h"

/* Failures in a row that set a message aside. */
#define ASIDE_AFTER 3

struct store_aside {
	int64_t folder_id;
	uint32_t uid;
	unsigned failures;
	int64_t since;    /* the first failure of this run, unix time */
	int64_t retry_at; /* not asked for again before this, unix time */
	char reason[256];
	char name[NAMES_MAX + 1]; /* the message's file name, "" while it has no row */
	char folder[512];         /* the folder's server name */
};

/* Count one more failure of (folder, uid) with its reason; *failures_r is the new count. */
int store_aside_fail(struct store *s, int64_t folder_id, uint32_t uid, const char *reason,
		     unsigned *failures_r);
/* Do not ask for the message again before `retry_at` (unix time). */
int store_aside_hold(struct store *s, int64_t folder_id, uint32_t uid, int64_t retry_at);
/* The message arrived whole: forget its failures. */
int store_aside_clear(struct store *s, int64_t folder_id, uint32_t uid);
/* The UIDs of the folder set aside at `now` (at least `min_failures` failures and retry_at
 * later than now), ascending, at most `max`; *rows_r counts every row of the folder
 * (messages with fewer failures too), so that a caller knows whether to clear any. */
int store_aside_uids(struct store *s, int64_t folder_id, int64_t now, unsigned min_failures,
		     uint32_t *uids, size_t max, size_t *n_r, size_t *rows_r);
/* The record of one message: 0 found, 1 none, -1 error. */
int store_aside_get(struct store *s, int64_t folder_id, uint32_t uid, struct store_aside *r);
/* Every record of the account (at most `max`), in folder and UID order. The callback
 * returns non-zero to stop. */
int store_aside_each(struct store *s, int64_t account_id, size_t max,
		     int (*cb)(void *ctx, const struct store_aside *a), void *ctx);

#endif
