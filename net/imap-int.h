/* imap-int.h - what net/imap.c and net/imap-mbox.c share: the session's struct and the
 * command helpers. Not for other files: they use net/imap.h.
 */
#ifndef MAILFS_NET_IMAP_INT_H
#define MAILFS_NET_IMAP_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "net/buf.h"
#include "net/imap.h"

#define MAX_MAILBOXES 100000
#define RESULT_RING 256

/* Session states, changed only in set_state() so traces read like the protocol. */
enum imap_state {
	ST_GREETING,
	ST_NOT_AUTHENTICATED,
	ST_AUTHENTICATED,
	ST_SELECTED,
	ST_LOGOUT,
};

struct cmd_slot {
	unsigned id; /* 0: free */
	bool done;
	enum imap_err result;
};

struct list_collect {
	struct imap_mbox *items;
	size_t n, size;
	bool overflow;
};

struct search_collect {
	uint32_t *uids;
	size_t n, size;
	bool overflow;
	bool bad;
};

struct imap {
	struct conn *conn;
	struct imap_parser *parser;
	char host[256];
	uint16_t port;
	char trace[64];
	enum imap_state state;
	unsigned max_inflight;
	unsigned next_id;
	struct cmd_slot *slots; /* max_inflight of them */
	unsigned inflight;
	enum imap_err results[RESULT_RING]; /* of retired commands, by id % RESULT_RING */
	struct buf caps;    /* " CAP1 CAP2 " upper-cased */
	struct buf enabled; /* " EXT1 EXT2 " */
	char errmsg[600];
	bool bye;

	const struct imap_fetch_handler *fh; /* borrowed */
	void *fctx;
	bool aborted;

	/* Collectors for the command in progress (at most one of each kind at a time). */
	struct list_collect *list;
	struct imap_status_info *status;
	struct imap_select_info *sel;
	struct search_collect *search;
	uint32_t appenduid; /* from the last [APPENDUID v uid] code (RFC 4315) */
	uint32_t copyuid;   /* from the last [COPYUID v src dst] code, one message only */
	uint32_t *cu_src, *cu_dst; /* the whole last COPYUID: cu_n source -> destination UIDs */
	size_t cu_n;
	unsigned events; /* EXISTS, EXPUNGE, FETCH, VANISHED seen since imap_events() reset */
	unsigned idle_id; /* the IDLE command in progress, 0 if none */
};

/* Session state changes (traced), errors (message kept for imap_errmsg). */
void imap_set_state(struct imap *c, enum imap_state s);
enum imap_err imap_fail(struct imap *c, enum imap_err e, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Send one command and wait for it. */
enum imap_err imap_simple(struct imap *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A mailbox name as an IMAP astring: quoted (names are 7-bit modified UTF-7). */
enum imap_err imap_quote_mailbox(struct imap *c, const char *raw, char *out, size_t outlen);

/* net/imap-mbox.c: untagged LIST and STATUS data for the command in progress. */
enum imap_err imap_handle_list(struct imap *c, const struct imap_response *r);
enum imap_err imap_handle_status(struct imap *c, const struct imap_response *r);

#endif
