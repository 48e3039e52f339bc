/* sender.h - one thread per account that submits the outbox queue over SMTP (DESIGN.md
 * "Sending (outbox)").
 *
 * The thread waits until a message is due (queued now, or its retry time came), opens ONE
 * SMTP session for everything due, and sends the messages one after another on it. For each:
 *   accepted for every recipient   -> SENT (synced), then a copy APPENDed to the Sent folder
 *                                      with \Seen (save_sent = yes), then the row goes;
 *   accepted for some recipients   -> sent to those; failed/NAME + NAME.error listing the
 *                                      refused ones and the server's replies; Sent copy made;
 *   temporary failure (4xx, network, TLS, protocol, login) -> stays queued, retried after
 *                                      30 s, 1, 2, 4 ... min, at most 30 min;
 *   permanent failure (5xx, too big for the server's SIZE) -> failed/NAME + NAME.error with
 *                                      the server's reply.
 * The only window for a duplicate: a crash between the server's reply to the final "." and
 * the local commit of SENT (one fsync). Sent copies that could not be made (the IMAP server
 * away) are retried later; they never resend the message.
 *
 * Knows nothing of FUSE: the fs layer is told through the hook that the account's outbox
 * changed, after the change is committed.
 */
#ifndef MAILFS_SENDER_H
#define MAILFS_SENDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache/config.h"

struct sender_hooks {
	/* The outbox or failed/ listing of the account changed (sent, failed, retried). */
	void (*outbox_changed)(void *ctx, const char *account);
};

struct sender_status {
	bool online;          /* the last session got through (or none tried yet) */
	int64_t current_id;   /* the row being sent now, 0 if none */
	uint64_t sent;        /* accepted this run */
	uint64_t failed;      /* refused for good this run */
	uint64_t sessions;    /* SMTP sessions opened this run */
	uint64_t copies;      /* Sent copies made this run */
	char last_error[512]; /* "" if none */
	int64_t last_error_time;
};

struct sender;

/* Start the thread for an account with an smtp URL. The config must outlive the sender. */
struct sender *sender_start(const struct cfg_account *acct, const char *cache_dir,
			    const struct sender_hooks *hooks, void *hooks_ctx, char *err,
			    size_t errlen);
/* Look at the queue now (a message was queued, or the user asked for a retry). */
void sender_kick(struct sender *s);
/* The network is back: every waiting message is due now, whatever its backoff said. */
void sender_retry_all(struct sender *s);
void sender_get_status(struct sender *s, struct sender_status *r);
/* Stop the thread (a message being sent finishes or times out) and free; *s = NULL. */
void sender_stop(struct sender **s);

/* The retry delay after `attempts` failed attempts: 30 s doubling, at most 30 min. */
unsigned sender_backoff(unsigned attempts);

#endif
