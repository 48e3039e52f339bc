/* replay.c - the journal replayed to the server (see replay.h). The IMAP commands per
 * entry (RFC 3501, UIDPLUS RFC 4315, MOVE RFC 6851):
 *   APPEND   STATUS (UIDNEXT) of the target, then APPEND with flags and INTERNALDATE;
 *            the new UID from APPENDUID, else UID SEARCH by size and Message-ID
 *   EXPUNGE  SELECT, UID STORE +FLAGS.SILENT (\Deleted), UID EXPUNGE (without UIDPLUS the
 *            message is only marked \Deleted: a plain EXPUNGE would take others with it)
 *   MOVE     SELECT the source, UID MOVE; without MOVE: UID COPY, STORE, UID EXPUNGE;
 *            the new UID from COPYUID, else UID SEARCH in the target
 *   FLAGS    SELECT, UID STORE FLAGS.SILENT (...)
 *   CREATE / DELETE / RENAME   as they are; "already exists" / "does not exist" count as
 *            done, so a replay after a crash is harmless.
 * Knows nothing of FUSE: what the mount must show differently goes through the hooks.
 */
#include "cache/replay.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cache/change.h"
#include "cache/journal.h"
#include "net/log.h"

/* The longest command line cmd() sends. */
#define CMD_LINE_MAX 2400

enum step { STEP_DONE = 0, STEP_KEEP = 1, STEP_RETRY = 2, STEP_LOST = -1 };

struct run {
	struct replay_ctx *r;
	char selected[1024];
	bool rw;
};

static bool
conn_lost(enum imap_err e)
{
	return e == IMAP_ERR_CONN || e == IMAP_ERR_PROTOCOL || e == IMAP_ERR_BYE ||
	       e == IMAP_ERR_ABORTED;
}

/* The step's result for an IMAP error: lost, or kept with the server's reason. */
static enum step
refused(struct run *u, enum imap_err e, const char *what)
{
	snprintf(u->r->error, sizeof(u->r->error), "%s: %s", what, imap_errmsg(u->r->c));
	return conn_lost(e) ? STEP_LOST : STEP_KEEP;
}

static enum imap_err
cmd(struct run *u, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static enum imap_err
cmd(struct run *u, const char *fmt, ...)
{
	char line[CMD_LINE_MAX];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line))
		return IMAP_ERR_BAD;
	unsigned id;
	enum imap_err e = imap_send(u->r->c, &id, "%s", line);
	return e == IMAP_OK ? imap_wait(u->r->c, id) : e;
}

static bool
said(struct run *u, const char *code)
{
	return strcasestr(imap_errmsg(u->r->c), code) != NULL;
}

static enum imap_err
select_rw(struct run *u, const char *name)
{
	if (u->rw && strcmp(u->selected, name) == 0)
		return IMAP_OK;
	struct imap_select_info si;
	u->selected[0] = '\0';
	enum imap_err e = imap_select(u->r->c, name, false, &si);
	if (e == IMAP_OK) {
		snprintf(u->selected, sizeof(u->selected), "%s", name);
		u->rw = true;
	}
	return e;
}

/* A message just made in `f` from UID `from` on, of this size and Message-ID: its UID, 0
 * if none, or -1 when the connection failed. The folder gets selected. */
static int64_t
find_made(struct run *u, const char *mailbox, uint32_t from, const struct store_msg *m)
{
	if (select_rw(u, mailbox) != IMAP_OK)
		return conn_error(imap_conn(u->r->c)) != CONN_OK ? -1 : 0;
	char crit[1200], q[700];
	int n = snprintf(crit, sizeof(crit), "UID %u:*", from ? from : 1);
	if (m->size > 0)
		n += snprintf(crit + n, sizeof(crit) - (size_t)n, " LARGER %" PRIu64, m->size - 1);
	n += snprintf(crit + n, sizeof(crit) - (size_t)n, " SMALLER %" PRIu64, m->size + 1);
	if (m->message_id[0] != '\0' && imap_quote(m->message_id, q, sizeof(q)) != NULL)
		snprintf(crit + n, sizeof(crit) - (size_t)n, " HEADER Message-ID %s", q);
	uint32_t *uids = NULL;
	size_t nu = 0;
	enum imap_err e = imap_uid_search(u->r->c, crit, &uids, &nu);
	if (e != IMAP_OK) {
		free(uids);
		return conn_lost(e) ? -1 : 0;
	}
	int64_t found = 0;
	for (size_t i = 0; i < nu; i++)
		if (uids[i] >= from && uids[i] > found)
			found = uids[i];
	free(uids);
	return found;
}

static void
learn_next(struct run *u, const char *mailbox, uint32_t uid)
{
	snprintf(u->r->next_of, sizeof(u->r->next_of), "%s", mailbox);
	u->r->next = uid + 1;
}

static int
uidnext_of(struct run *u, const char *mailbox, uint32_t *uidnext_r)
{
	if (u->r->next != 0 && strcmp(u->r->next_of, mailbox) == 0) {
		*uidnext_r = u->r->next;
		return 0;
	}
	struct imap_status_info st;
	enum imap_err e = imap_status(u->r->c, mailbox, &st);
	if (e != IMAP_OK)
		return conn_lost(e) ? -1 : 1;
	*uidnext_r = st.uidnext;
	return 0;
}

/* Flags an APPEND may carry: all but \Recent. */
static void
append_flags(const char *in, char *out, size_t outlen)
{
	size_t n = 0;
	out[0] = '\0';
	for (const char *p = in; *p;) {
		while (*p == ' ')
			p++;
		const char *q = p;
		while (*q && *q != ' ')
			q++;
		size_t len = (size_t)(q - p);
		if (len > 0 && !(len == 7 && strncasecmp(p, "\\Recent", 7) == 0) &&
		    n + len + 2 < outlen) {
			if (n)
				out[n++] = ' ';
			memcpy(out + n, p, len);
			n += len;
			out[n] = '\0';
		}
		p = q;
	}
}

/* Folder f is not on the server under its name: if another client renamed it, the
 * mailbox with its UIDVALIDITY is it (servers keep UIDVALIDITY across RENAME). Its row
 * takes the new server name, so this change and the later ones follow it (the next
 * listing puts the folder where the server has it). 1 found, 0 not, -1 connection lost. */
static int
follow_rename(struct run *u, struct store_folder *f)
{
	if (f->uidvalidity == 0)
		return 0;
	struct imap_mbox *list = NULL;
	size_t n = 0;
	enum imap_err e = imap_list(u->r->c, &list, &n);
	if (e != IMAP_OK)
		return conn_lost(e) ? -1 : 0;
	int found = 0;
	for (size_t i = 0; i < n && found == 0; i++) {
		if ((list[i].flags & IMAP_MBOX_NOSELECT) || strcmp(list[i].raw, f->server_name) == 0)
			continue;
		struct imap_status_info st;
		e = imap_status(u->r->c, list[i].raw, &st);
		if (e != IMAP_OK) {
			if (conn_lost(e))
				found = -1;
			continue;
		}
		if (st.uidvalidity != f->uidvalidity)
			continue;
		char from[1030], to[1030];
		char delim = f->delim ? f->delim : '/';
		snprintf(from, sizeof(from), "%s%c", f->server_name, delim);
		snprintf(to, sizeof(to), "%s%c", list[i].raw, delim);
		snprintf(u->r->note, sizeof(u->r->note), "folder %s was renamed to %s on the "
			 "server: changes follow it", f->server_name, list[i].raw);
		log_info("account %s: %s", u->r->acct->name, u->r->note);
		snprintf(f->server_name, sizeof(f->server_name), "%s", list[i].raw);
		if (store_folder_save(u->r->store, f) == 0 &&
		    store_folder_rename_prefix(u->r->store, u->r->account_id, from, to) == 0)
			found = 1;
	}
	imap_mbox_list_free(&list, n);
	return found;
}

/* A row whose folder is gone from the server goes to INBOX. */
static int
to_inbox(struct run *u, struct store_msg *m, const struct store_folder *from)
{
	struct store_folder inbox;
	if (store_folder_lookup(u->r->store, u->r->top_id, "INBOX", &inbox) != 0 ||
	    inbox.id == m->folder_id)
		return -1;
	char name[STORE_NAME_MAX + 1];
	snprintf(name, sizeof(name), "%s", m->name);
	struct store_msg x;
	for (unsigned i = 2; store_msg_lookup(u->r->store, inbox.id, name, &x) == 0; i++)
		snprintf(name, sizeof(name), "%u-%.200s", i, m->name);
	int64_t old = m->folder_id;
	char oldname[STORE_NAME_MAX + 1];
	snprintf(oldname, sizeof(oldname), "%s", m->name);
	m->folder_id = inbox.id;
	snprintf(m->name, sizeof(m->name), "%s", name);
	if (store_msg_save(u->r->store, m) < 0)
		return -1;
	snprintf(u->r->note, sizeof(u->r->note), "%s/%s: folder %s is gone from the server: "
		 "filed in INBOX as %s", from->name, oldname, from->server_name, name);
	log_warn("account %s: %s", u->r->acct->name, u->r->note);
	if (u->r->msg_removed)
		u->r->msg_removed(u->r->hctx, old, m->id, oldname);
	if (u->r->folder_changed)
		u->r->folder_changed(u->r->hctx, inbox.id);
	return 0;
}

struct body_src {
	struct store *s;
	int64_t id;
	uint64_t off;
};

static ssize_t
body_read(void *ctx, char *buf, size_t len)
{
	struct body_src *b = ctx;
	size_t got = 0;
	if (store_body_read(b->s, b->id, b->off, buf, len, &got) != 0 || got == 0)
		return -1;
	b->off += got;
	return (ssize_t)got;
}

/* Record that UID `uid` of folder f now holds row m's message (or clean up if the row went
 * meanwhile), and remove the entry: inside the caller's transaction. 0 or -1. */
static int
adopt_row(struct run *u, const struct journal_entry *e, int64_t msg_id,
	  const struct store_folder *f, uint32_t uid, enum store_msg_state was)
{
	struct store *s = u->r->store;
	struct store_msg m;
	int r = store_msg_get(s, msg_id, &m);
	int rc = 0;
	if (r == 0 && m.state == was && m.folder_id == f->id) {
		m.state = STORE_MSG_SERVER;
		m.uid = uid;
		m.orig_folder = 0;
		m.orig_uid = 0;
		rc = store_msg_save(s, &m);
	} else if (r == 0 && m.state == STORE_MSG_SCRATCH && m.orig_uid == 0) {
		/* Being rewritten meanwhile: the new content replaces this UID. */
		m.orig_folder = f->id;
		m.orig_uid = uid;
		rc = store_msg_save(s, &m);
	} else if (r == 0 && m.state == was) {
		/* Moved to another folder meanwhile: from here on it is a MOVE. */
		m.state = STORE_MSG_MOVING;
		m.orig_folder = f->id;
		m.orig_uid = uid;
		rc = store_msg_save(s, &m);
		if (rc == 0)
			rc = journal_add(s, u->r->account_id, JOURNAL_MOVE, m.id, f->id, "", uid);
	} else {
		/* Removed meanwhile. */
		rc = journal_add(s, u->r->account_id, JOURNAL_EXPUNGE, 0, f->id, f->server_name,
				 uid);
	}
	if (rc == 0)
		rc = journal_done(s, e->id);
	return rc < 0 ? -1 : 0;
}

/* adopt_row() in a transaction of its own. */
static enum step
adopt(struct run *u, const struct journal_entry *e, int64_t msg_id,
      const struct store_folder *f, uint32_t uid, enum store_msg_state was)
{
	struct store *s = u->r->store;
	if (store_begin(s) < 0)
		return STEP_KEEP;
	if (adopt_row(u, e, msg_id, f, uid, was) < 0 || store_commit(s) < 0) {
		store_rollback(s);
		snprintf(u->r->error, sizeof(u->r->error), "%s", store_errmsg(s));
		return STEP_KEEP;
	}
	return STEP_DONE;
}

/* The target folder of m is not on the server: renamed (follow it) or deleted (INBOX). */
static enum step
gone_folder(struct run *u, struct store_msg *m, struct store_folder *f)
{
	int fr = follow_rename(u, f);
	if (fr != 0)
		return fr < 0 ? STEP_LOST : STEP_RETRY;
	return to_inbox(u, m, f) == 0 ? STEP_RETRY : STEP_KEEP;
}

static int
mark_sent(struct run *u, struct journal_entry *e, uint32_t uidnext)
{
	e->uidnext = uidnext ? uidnext : 1;
	return journal_update(u->r->store, e);
}

static enum step
do_append(struct run *u, struct journal_entry *e)
{
	struct store *s = u->r->store;
	struct store_msg m;
	struct store_folder f;
	if (store_msg_get(s, e->msg_id, &m) != 0 || m.state != STORE_MSG_PENDING)
		return STEP_DONE; /* removed, or rewritten (a newer entry sends it) */
	if (store_folder_get(s, m.folder_id, &f) != 0)
		return STEP_DONE;
	if (f.local)
		return STEP_KEEP; /* its CREATE has not gone through */
	if (!m.has_body) {
		snprintf(u->r->error, sizeof(u->r->error), "%s: body lost from the cache", m.name);
		return STEP_KEEP;
	}
	int64_t uid = 0;
	if (e->uidnext != 0) {
		uid = find_made(u, f.server_name, e->uidnext, &m);
		if (uid < 0)
			return STEP_LOST;
	}
	if (uid == 0) {
		uint32_t next = 0;
		int r = uidnext_of(u, f.server_name, &next);
		if (r < 0)
			return STEP_LOST;
		if (r > 0 && said(u, "NONEXISTENT"))
			return gone_folder(u, &m, &f);
		if (mark_sent(u, e, next) < 0)
			return STEP_KEEP;
		char flags[600];
		append_flags(m.flags, flags, sizeof(flags));
		struct body_src src = {s, m.id, 0};
		uint32_t got = 0;
		enum imap_err ie = imap_append_at(u->r->c, f.server_name, flags, m.internaldate,
						  m.size, body_read, &src, &got);
		if (ie != IMAP_OK) {
			if (!conn_lost(ie) && said(u, "TRYCREATE"))
				return gone_folder(u, &m, &f);
			return refused(u, ie, m.name);
		}
		uid = got;
		if (uid == 0 && (uid = find_made(u, f.server_name, e->uidnext, &m)) < 0)
			return STEP_LOST;
	}
	if (uid == 0) {
		/* On the server, but where cannot be told: the next sync brings it under the
		 * server's name; the local row goes so it is not shown twice. */
		log_warn("account %s: %s appended, its UID unknown", u->r->acct->name, m.name);
		if (store_begin(s) < 0)
			return STEP_KEEP;
		if (store_msg_delete(s, m.id) < 0 || journal_done(s, e->id) < 0 ||
		    store_commit(s) < 0) {
			store_rollback(s);
			return STEP_KEEP;
		}
		if (u->r->msg_removed)
			u->r->msg_removed(u->r->hctx, f.id, m.id, m.name);
		return STEP_DONE;
	}
	learn_next(u, f.server_name, (uint32_t)uid);
	return adopt(u, e, m.id, &f, (uint32_t)uid, STORE_MSG_PENDING);
}

static enum step
do_expunge(struct run *u, struct journal_entry *e)
{
	struct store_folder f;
	const char *name = e->server_name;
	memset(&f, 0, sizeof(f));
	if (store_folder_get(u->r->store, e->folder_id, &f) == 0)
		name = f.server_name;
	if (name[0] == '\0')
		return STEP_DONE;
	enum imap_err ie = select_rw(u, name);
	if (ie != IMAP_OK && !conn_lost(ie) && name == f.server_name) {
		int fr = follow_rename(u, &f);
		if (fr != 0)
			return fr < 0 ? STEP_LOST : STEP_RETRY;
	}
	if (ie != IMAP_OK)
		return conn_lost(ie) ? STEP_LOST : STEP_DONE; /* the folder is gone: so is it */
	ie = cmd(u, "UID STORE %u +FLAGS.SILENT (\\Deleted)", e->uid);
	if (ie == IMAP_OK && imap_has_cap(u->r->c, "UIDPLUS"))
		ie = cmd(u, "UID EXPUNGE %u", e->uid);
	if (ie != IMAP_OK)
		return refused(u, ie, "expunge");
	return STEP_DONE;
}

static enum step
do_move(struct run *u, struct journal_entry *e)
{
	struct store *s = u->r->store;
	struct store_msg m;
	struct store_folder src, dst;
	if (store_msg_get(s, e->msg_id, &m) != 0 || m.state != STORE_MSG_MOVING ||
	    m.orig_uid != e->uid)
		return STEP_DONE;
	if (store_folder_get(s, m.folder_id, &dst) != 0)
		return STEP_DONE;
	if (dst.local)
		return STEP_KEEP;
	const char *src_name = e->server_name;
	if (store_folder_get(s, m.orig_folder, &src) == 0)
		src_name = src.server_name;
	int64_t uid = 0;
	if (e->uidnext != 0 && (uid = find_made(u, dst.server_name, e->uidnext, &m)) < 0)
		return STEP_LOST;
	if (uid == 0) {
		uint32_t next = 0;
		int r = uidnext_of(u, dst.server_name, &next);
		if (r < 0)
			return STEP_LOST;
		if (r > 0 && said(u, "NONEXISTENT"))
			return gone_folder(u, &m, &dst);
		if (mark_sent(u, e, next) < 0)
			return STEP_KEEP;
		char q[1100];
		if (imap_quote(dst.server_name, q, sizeof(q)) == NULL)
			return STEP_KEEP;
		enum imap_err ie = select_rw(u, src_name);
		bool src_failed = ie != IMAP_OK; /* the source may have been renamed */
		if (ie == IMAP_OK) {
			(void)imap_copyuid(u->r->c, true);
			if (imap_has_cap(u->r->c, "MOVE")) {
				ie = cmd(u, "UID MOVE %u %s", e->uid, q);
			} else {
				ie = cmd(u, "UID COPY %u %s", e->uid, q);
				if (ie == IMAP_OK)
					ie = cmd(u, "UID STORE %u +FLAGS.SILENT (\\Deleted)", e->uid);
				if (ie == IMAP_OK && imap_has_cap(u->r->c, "UIDPLUS"))
					ie = cmd(u, "UID EXPUNGE %u", e->uid);
			}
			uid = imap_copyuid(u->r->c, true);
		}
		if (ie != IMAP_OK && conn_lost(ie))
			return STEP_LOST;
		if (ie != IMAP_OK && said(u, "TRYCREATE"))
			return gone_folder(u, &m, &dst);
		if (ie != IMAP_OK && src_failed && store_folder_get(s, m.orig_folder, &src) == 0) {
			int fr = follow_rename(u, &src);
			if (fr != 0)
				return fr < 0 ? STEP_LOST : STEP_RETRY;
		}
		if (uid == 0 && ie == IMAP_OK &&
		    (uid = find_made(u, dst.server_name, e->uidnext, &m)) < 0)
			return STEP_LOST;
	}
	if (uid > 0) {
		learn_next(u, dst.server_name, (uint32_t)uid);
		return adopt(u, e, m.id, &dst, (uint32_t)uid, STORE_MSG_MOVING);
	}
	/* The source message is gone (another client expunged it, or its folder went): what
	 * the cache holds is appended instead; without a cached body there is nothing left. */
	if (store_begin(s) < 0)
		return STEP_KEEP;
	/* Read again inside the transaction: the row may have been renamed or changed
	 * through the mount during the round trips above, and saving the old copy would
	 * undo that. Changed into something else: its own entry takes it from here. */
	int64_t was_uid = m.orig_uid;
	if (store_msg_get(s, e->msg_id, &m) != 0 || m.state != STORE_MSG_MOVING ||
	    m.orig_uid != was_uid) {
		int dr = journal_done(s, e->id);
		if (dr < 0 || store_commit(s) < 0) {
			store_rollback(s);
			return STEP_KEEP;
		}
		return STEP_DONE;
	}
	int rc;
	bool removed = false;
	if (m.has_body) {
		m.state = STORE_MSG_PENDING;
		m.orig_folder = 0;
		m.orig_uid = 0;
		rc = store_msg_save(s, &m);
		if (rc == 0)
			rc = journal_add(s, u->r->account_id, JOURNAL_APPEND, m.id, 0, "", 0);
	} else {
		rc = store_msg_delete(s, m.id);
		removed = true;
	}
	if (rc == 0)
		rc = journal_done(s, e->id);
	if (rc < 0 || store_commit(s) < 0) {
		store_rollback(s);
		return STEP_KEEP;
	}
	if (removed && u->r->msg_removed)
		u->r->msg_removed(u->r->hctx, dst.id, m.id, m.name);
	return STEP_DONE;
}

/* Consecutive MOVE entries of one source to one target, never sent yet, go as one UID MOVE
 * of a UID set (a thousand `mv`s cost one round trip, not a thousand). Each entry is marked
 * sent with the target's UIDNEXT first, as a single MOVE is; each message the COPYUID code
 * maps is adopted; any other entry is left, marked, for the single path (which finds what
 * the batch made, or moves what it did not). False: not a batch here, use the single path.
 * True with *st: STEP_LOST (the connection went) or STEP_DONE.
 *
 * While such entries keep coming (one `mv` of many files renames them one by one), the
 * batch waits for them, up to MOVE_QUIET_MS after the last one and MOVE_WAIT_MS in all:
 * one UID MOVE then carries them all, and the replay's writes do not contend with the
 * renames' for the store's lock. */
#define MOVE_BATCH 1024
#define MOVE_QUIET_MS 4
#define MOVE_WAIT_MS 2000
#define ADOPT_TXN 128 /* adoptions per transaction */

/* Append uid to the UID set `set` (len bytes used, cap bytes in all): consecutive UIDs
 * make a range ("4:9"). False if it does not fit; the set is unchanged then. */
static bool
set_add(char *set, size_t *len, size_t cap, uint32_t *last, uint32_t *run_from, uint32_t uid)
{
	char tail[32];
	size_t keep = *len;
	if (*len > 0 && uid == *last + 1) {
		/* Extend the range that ends at *last: drop its written end, write the new one. */
		if (*run_from != *last)
			keep = *len - (size_t)snprintf(tail, sizeof(tail), ":%u", *last);
		int n = snprintf(tail, sizeof(tail), ":%u", uid);
		if (keep + (size_t)n + 1 > cap)
			return false;
		memcpy(set + keep, tail, (size_t)n + 1);
		*len = keep + (size_t)n;
	} else {
		int n = snprintf(tail, sizeof(tail), "%s%u", *len > 0 ? "," : "", uid);
		if (*len + (size_t)n + 1 > cap)
			return false;
		memcpy(set + *len, tail, (size_t)n + 1);
		*len += (size_t)n;
		*run_from = uid;
	}
	*last = uid;
	return true;
}

static bool
batch_member(struct store *s, const struct journal_entry *x, int64_t src_id, int64_t dst_id)
{
	struct store_msg xm;
	return x->op == JOURNAL_MOVE && x->uidnext == 0 && store_msg_get(s, x->msg_id, &xm) == 0 &&
	       xm.state == STORE_MSG_MOVING && xm.orig_uid == x->uid && xm.folder_id == dst_id &&
	       xm.orig_folder == src_id;
}

static int64_t
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool
move_batch(struct run *u, const struct journal_entry *e, enum step *st)
{
	struct replay_ctx *r = u->r;
	struct store *s = r->store;
	struct store_msg m;
	struct store_folder src, dst;
	if (e->uidnext != 0 || !imap_has_cap(r->c, "MOVE") || !imap_has_cap(r->c, "UIDPLUS") ||
	    store_msg_get(s, e->msg_id, &m) != 0 || m.state != STORE_MSG_MOVING ||
	    m.orig_uid != e->uid || store_folder_get(s, m.folder_id, &dst) != 0 || dst.local ||
	    store_folder_get(s, m.orig_folder, &src) != 0 || src.local)
		return false;
	char q[1100];
	if (imap_quote(dst.server_name, q, sizeof(q)) == NULL)
		return false;
	struct journal_entry *es = malloc(MOVE_BATCH * sizeof(*es));
	/* What fits on cmd()'s line beside "UID MOVE " and the quoted target. */
	size_t cap = CMD_LINE_MAX - strlen(q) - 16;
	char *set = malloc(cap);
	bool batched = false;
	if (es == NULL || set == NULL)
		goto out;
	size_t n = 0;
	es[n++] = *e;
	int64_t t0 = now_ms(), quiet_from = t0;
	while (n < MOVE_BATCH) {
		int jr = journal_next(s, r->account_id, es[n - 1].id, &es[n]);
		if (jr == 0) {
			if (!batch_member(s, &es[n], src.id, dst.id))
				break;
			n++;
			quiet_from = now_ms();
			continue;
		}
		int64_t now = now_ms();
		if (jr < 0 || now - quiet_from >= MOVE_QUIET_MS || now - t0 >= MOVE_WAIT_MS)
			break;
		struct timespec nap = {0, 1000 * 1000};
		nanosleep(&nap, NULL);
	}
	uint32_t next = 0;
	if (n < 2 || uidnext_of(u, dst.server_name, &next) != 0)
		goto out;
	/* Marked sent in one transaction, each row checked again in it (it may have been
	 * moved back or renamed while the batch waited): the set holds the checked prefix. */
	if (store_begin(s) < 0)
		goto out;
	size_t len = 0, k = 0;
	uint32_t last = 0, run_from = 0;
	set[0] = '\0';
	int rc = 0;
	for (; k < n && rc == 0; k++) {
		if (!batch_member(s, &es[k], src.id, dst.id) ||
		    !set_add(set, &len, cap, &last, &run_from, es[k].uid))
			break;
		es[k].uidnext = next ? next : 1;
		rc = journal_update(s, &es[k]);
	}
	n = k;
	if (rc < 0 || n == 0 || store_commit(s) < 0) {
		store_rollback(s);
		goto out;
	}
	/* From here the entries say "sent": whatever happens, the single path takes it up. */
	batched = true;
	*st = STEP_DONE;
	enum imap_err ie = select_rw(u, src.server_name);
	if (ie == IMAP_OK) {
		(void)imap_copyuid(r->c, true);
		ie = cmd(u, "UID MOVE %s %s", set, q);
	}
	if (ie != IMAP_OK) {
		if (conn_lost(ie))
			*st = STEP_LOST;
		goto out;
	}
	/* Adopted ADOPT_TXN to a transaction; a chunk that fails is left to the single path. */
	uint32_t top = 0;
	size_t adopted = 0;
	for (size_t i = 0; i < n;) {
		if (store_begin(s) < 0)
			break;
		size_t done = 0, j = i;
		bool ok = true;
		for (; j < n && j - i < ADOPT_TXN && ok; j++) {
			uint32_t d = imap_copyuid_of(r->c, es[j].uid);
			if (d == 0)
				continue;
			if (d > top)
				top = d;
			ok = adopt_row(u, &es[j], es[j].msg_id, &dst, d, STORE_MSG_MOVING) == 0;
			done++;
		}
		if (!ok || store_commit(s) < 0) {
			store_rollback(s);
			break;
		}
		adopted += done;
		r->replayed += done;
		i = j;
	}
	if (top != 0)
		learn_next(u, dst.server_name, top);
	log_debug("account %s: %zu moves as one UID MOVE, %zu mapped by COPYUID",
		  r->acct->name, n, adopted);
out:
	free(es);
	free(set);
	return batched;
}

static enum step
do_flags(struct run *u, struct journal_entry *e)
{
	struct store_msg m;
	struct store_folder f;
	if (store_msg_get(u->r->store, e->msg_id, &m) != 0)
		return STEP_DONE;
	if (m.state == STORE_MSG_MOVING)
		return STEP_KEEP; /* after its MOVE */
	if (m.state != STORE_MSG_SERVER || store_folder_get(u->r->store, m.folder_id, &f) != 0)
		return STEP_DONE; /* an APPEND carries the flags */
	enum imap_err ie = select_rw(u, f.server_name);
	if (ie != IMAP_OK && !conn_lost(ie)) {
		int fr = follow_rename(u, &f);
		if (fr != 0)
			return fr < 0 ? STEP_LOST : STEP_RETRY;
	}
	if (ie == IMAP_OK) {
		char flags[600];
		append_flags(m.flags, flags, sizeof(flags));
		ie = cmd(u, "UID STORE %u FLAGS.SILENT (%s)", m.uid, flags);
	}
	return ie == IMAP_OK ? STEP_DONE : refused(u, ie, m.name);
}

static enum step
folder_cmd(struct run *u, const char *verb, const char *a, const char *b, const char *ok_code)
{
	char qa[1100], qb[1100];
	if (imap_quote(a, qa, sizeof(qa)) == NULL || (b && imap_quote(b, qb, sizeof(qb)) == NULL))
		return STEP_KEEP;
	u->selected[0] = '\0'; /* a DELETE or RENAME of the selected mailbox deselects it */
	enum imap_err ie = b ? cmd(u, "%s %s %s", verb, qa, qb) : cmd(u, "%s %s", verb, qa);
	if (ie == IMAP_OK || (!conn_lost(ie) && said(u, ok_code)))
		return STEP_DONE;
	return refused(u, ie, a);
}

static enum step
do_create(struct run *u, struct journal_entry *e)
{
	struct store_folder f;
	if (store_folder_get(u->r->store, e->folder_id, &f) != 0)
		return STEP_DONE;
	enum step st = folder_cmd(u, "CREATE", f.server_name, NULL, "ALREADYEXISTS");
	if (st != STEP_DONE)
		return st;
	/* Read the row again: it may have been renamed through the mount while CREATE was on
	 * its way (mkdir -p a/b && mv a c), and saving the old copy would undo that. */
	if (store_folder_get(u->r->store, e->folder_id, &f) != 0)
		return STEP_DONE;
	f.local = false;
	return store_folder_save(u->r->store, &f) < 0 ? STEP_KEEP : STEP_DONE;
}

static enum step
do_rename(struct run *u, struct journal_entry *e)
{
	struct store *s = u->r->store;
	struct store_folder f, parent;
	if (store_folder_get(s, e->folder_id, &f) != 0 || store_folder_get(s, f.parent_id, &parent) != 0)
		return STEP_DONE;
	char delim = f.delim ? f.delim : change_delim(s, u->r->account_id);
	char next[1024];
	if (change_server_name(s, &parent, delim, f.name, next, sizeof(next)) != 0)
		return STEP_KEEP;
	if (strcmp(next, e->server_name) != 0) {
		enum step st = folder_cmd(u, "RENAME", e->server_name, next, "NONEXISTENT");
		if (st != STEP_DONE)
			return st;
	}
	char from[1030], to[1030];
	snprintf(from, sizeof(from), "%s%c", e->server_name, delim);
	snprintf(to, sizeof(to), "%s%c", next, delim);
	if (store_begin(s) < 0)
		return STEP_KEEP;
	/* Again from the row: a rename through the mount meanwhile queued its own entry. */
	if (store_folder_get(s, e->folder_id, &f) != 0) {
		store_rollback(s);
		return STEP_DONE;
	}
	snprintf(f.server_name, sizeof(f.server_name), "%s", next);
	if (store_folder_save(s, &f) < 0 ||
	    store_folder_rename_prefix(s, u->r->account_id, from, to) < 0 ||
	    store_commit(s) < 0) {
		store_rollback(s);
		return STEP_KEEP;
	}
	return STEP_DONE;
}

static enum step
replay_one(struct run *u, struct journal_entry *e)
{
	switch (e->op) {
	case JOURNAL_APPEND:
		return do_append(u, e);
	case JOURNAL_EXPUNGE:
		return do_expunge(u, e);
	case JOURNAL_MOVE:
		return do_move(u, e);
	case JOURNAL_FLAGS:
		return do_flags(u, e);
	case JOURNAL_CREATE:
		return do_create(u, e);
	case JOURNAL_DELETE:
		return folder_cmd(u, "DELETE", e->server_name, NULL, "NONEXISTENT");
	case JOURNAL_RENAME:
		return do_rename(u, e);
	}
	return STEP_DONE; /* an op this version does not know: dropped */
}

int
replay_run(struct replay_ctx *r)
{
	struct run u = {.r = r};
	struct journal_entry e;
	int64_t after = 0;
	bool left = false;
	unsigned retries = 0;
	while (journal_next(r->store, r->account_id, after, &e) == 0) {
		enum step st;
		if (e.op == JOURNAL_MOVE && retries == 0 && move_batch(&u, &e, &st)) {
			if (st == STEP_LOST)
				return -1;
			continue; /* what the batch left is taken up singly, from the same place */
		}
		st = replay_one(&u, &e);
		if (st == STEP_LOST)
			return -1;
		if (st == STEP_RETRY && ++retries <= 3)
			continue; /* the same entry again, now that its row or folder moved */
		if (st == STEP_RETRY)
			st = STEP_KEEP;
		retries = 0;
		if (st == STEP_KEEP) {
			e.attempts++;
			snprintf(e.error, sizeof(e.error), "%s", r->error);
			if (e.attempts >= REPLAY_MAX_ATTEMPTS) {
				log_warn("account %s: gave up on a change after %u refusals: %s",
					 r->acct->name, e.attempts, e.error);
				(void)journal_done(r->store, e.id);
			} else {
				(void)journal_update(r->store, &e);
				left = true;
			}
			after = e.id;
			continue;
		}
		/* Done: entries whose step did not remove them in its own transaction. */
		(void)journal_done(r->store, e.id);
		r->replayed++;
		after = e.id;
	}
	return left ? 1 : 0;
}
