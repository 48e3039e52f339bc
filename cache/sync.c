/* sync.c - the per-account sync thread (see sync.h; FETCH handling in sync-fetch.c,
 * on-demand reads in sync-read.c).
 *
 * Moves data from the IMAP server into the store; never touches FUSE (changes are
 * reported through the hooks) and never parses protocol bytes (net/imap does). Changes
 * made through the mount are replayed first (cache/replay.h), before every pass and as
 * soon as sync_changed() says there are new ones; a folder listing runs only while the
 * journal is empty, so a folder renamed or removed here is never brought back from the
 * server's old view.
 */
#include "cache/sync.h"

#include <errno.h>
#include <fnmatch.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache/account.h"
#include "cache/idle.h"
#include "cache/journal.h"
#include "cache/names.h"
#include "cache/replay.h"
#include "cache/setaside.h"
#include "cache/store.h"
#include "cache/sync-int.h"
#include "net/buf.h"
#include "net/imap.h"
#include "net/log.h"

/* ---- status ---------------------------------------------------------------------- */

int64_t
sync_now_s(void)
{
	return (int64_t)time(NULL);
}

static void
set_phase(struct sync *s, const char *phase)
{
	pthread_mutex_lock(&s->mu);
	snprintf(s->phase, sizeof(s->phase), "%s", phase);
	pthread_mutex_unlock(&s->mu);
}

void
sync_set_error(struct sync *s, const char *msg)
{
	pthread_mutex_lock(&s->mu);
	snprintf(s->st.last_error, sizeof(s->st.last_error), "%s", msg);
	s->st.last_error_time = sync_now_s();
	pthread_mutex_unlock(&s->mu);
	log_warn("account %s: %s", s->acct->name, msg);
}

void
sync_count(struct sync *s, uint64_t *field, uint64_t n)
{
	pthread_mutex_lock(&s->mu);
	*field += n;
	pthread_mutex_unlock(&s->mu);
}

void
sync_get_status(struct sync *s, struct sync_status *r)
{
	pthread_mutex_lock(&s->mu);
	*r = s->st;
	r->phase = s->phase; /* static storage of s; good until sync_stop */
	pthread_mutex_unlock(&s->mu);
	if (s->idle != NULL)
		idle_state(s->idle, r->push, sizeof(r->push));
	else
		snprintf(r->push, sizeof(r->push), "none");
}

void
sync_kick(struct sync *s)
{
	pthread_mutex_lock(&s->mu);
	s->kick = true;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->mu);
}

void
sync_changed(struct sync *s)
{
	pthread_mutex_lock(&s->mu);
	s->changes = true;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->mu);
}

void
sync_inbox_changed(struct sync *s)
{
	pthread_mutex_lock(&s->mu);
	s->inbox = true;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->mu);
}

int
sync_wait_first_pass(struct sync *s, int timeout_ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&s->mu);
	while (!s->st.first_pass_done && !s->stop)
		if (pthread_cond_timedwait(&s->cond, &s->mu, &ts) == ETIMEDOUT)
			break;
	int done = s->st.first_pass_done;
	pthread_mutex_unlock(&s->mu);
	return done;
}

/* Wait until the deadline (CLOCK_MONOTONIC) or until stopped/kicked; with *changes_r
 * non-NULL, also until the journal got entries or the INBOX watcher heard of a change
 * (then *changes_r / *inbox_r are set and the wait ends early). Returns true if stopping. */
static bool
wait_until(struct sync *s, const struct timespec *ts, bool *changes_r, bool *inbox_r)
{
	pthread_mutex_lock(&s->mu);
	while (!s->stop && !s->kick && !(changes_r && (s->changes || s->inbox)))
		if (pthread_cond_timedwait(&s->cond, &s->mu, ts) == ETIMEDOUT)
			break;
	if (changes_r) {
		*changes_r = s->changes && !s->kick;
		*inbox_r = s->inbox && !s->kick;
		s->changes = false;
		s->inbox = false;
	}
	if (changes_r == NULL || !(*changes_r || *inbox_r))
		s->kick = false;
	bool stop = s->stop;
	pthread_mutex_unlock(&s->mu);
	return stop;
}

/* Wait up to `seconds` or until stopped/kicked. Returns true if stopping. */
static bool
wait_for(struct sync *s, unsigned seconds)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += seconds;
	return wait_until(s, &ts, NULL, NULL);
}

static bool
stopping(struct sync *s)
{
	pthread_mutex_lock(&s->mu);
	bool stop = s->stop;
	pthread_mutex_unlock(&s->mu);
	return stop;
}

/* ---- connecting ------------------------------------------------------------------- */

struct imap *
sync_connect(struct sync *s, const char *who, int timeout_ms, int io_ms, char *err,
	     size_t errlen)
{
	const struct cfg_account *a = s->acct;
	struct imap *c = account_imap_connect(a, who, timeout_ms, err, errlen);
	if (c == NULL)
		return NULL;
	/* The password is asked once (under the lock, so password_cmd runs once); the login
	 * itself runs without the lock, which .status and every read take too. */
	pthread_mutex_lock(&s->mu);
	if (s->password == NULL && cfg_password(a, &s->password, err, errlen) < 0) {
		pthread_mutex_unlock(&s->mu);
		imap_close(&c);
		return NULL;
	}
	char *pw = strdup(s->password);
	pthread_mutex_unlock(&s->mu);
	if (pw == NULL) {
		snprintf(err, errlen, "out of memory");
		imap_close(&c);
		return NULL;
	}
	enum imap_err e = account_imap_login(c, a, pw, err, errlen);
	if (e == IMAP_ERR_AUTH) {
		pthread_mutex_lock(&s->mu);
		if (s->password != NULL && strcmp(s->password, pw) == 0)
			cfg_secret_free(&s->password); /* ask password_cmd again next time */
		pthread_mutex_unlock(&s->mu);
	}
	cfg_secret_free(&pw);
	if (e != IMAP_OK) {
		imap_close(&c);
		return NULL;
	}
	conn_set_timeout(imap_conn(c), io_ms);
	return c;
}

/* ---- folders ---------------------------------------------------------------------- */

static bool
folder_wanted(const struct cfg_account *a, const char *name)
{
	if (a->nfolders == 0)
		return true;
	for (size_t i = 0; i < a->nfolders; i++)
		if (fnmatch(a->folders[i], name, 0) == 0)
			return true;
	return false;
}

struct seen_set {
	int64_t *ids;
	size_t n, size;
};

static int
seen_add(struct seen_set *ss, int64_t id)
{
	if (ss->n == ss->size) {
		size_t size = ss->size ? ss->size * 2 : 64;
		int64_t *p = realloc(ss->ids, size * sizeof(*p));
		if (p == NULL)
			return -1;
		ss->ids = p;
		ss->size = size;
	}
	ss->ids[ss->n++] = id;
	return 0;
}

static bool
seen_has(const struct seen_set *ss, int64_t id)
{
	for (size_t i = 0; i < ss->n; i++)
		if (ss->ids[i] == id)
			return true;
	return false;
}

/* Create the directories of one mailbox path ("A/B/C") under the account; returns the
 * id of the last one. */
static int
ensure_path(struct pass *p, const char *path, const struct imap_mbox *m, struct seen_set *seen,
	    int64_t *id_r)
{
	int64_t parent = p->s->top_id;
	char comp[NAMES_MAX + 1];
	const char *c = path;
	for (;;) {
		const char *slash = strchr(c, '/');
		size_t len = slash ? (size_t)(slash - c) : strlen(c);
		if (len == 0 || len > NAMES_MAX)
			return -1;
		memcpy(comp, c, len);
		comp[len] = '\0';
		struct store_folder f;
		int r = store_folder_lookup(p->store, parent, comp, &f);
		if (r < 0)
			return -1;
		int64_t id;
		bool last = slash == NULL;
		if (last) {
			enum store_folder_kind kind = (m->flags & IMAP_MBOX_NOSELECT)
							      ? STORE_FOLDER_DIR
							      : STORE_FOLDER_MAILBOX;
			if (r == 0 && f.kind == kind && strcmp(f.server_name, m->raw) == 0) {
				id = f.id;
			} else {
				if (store_folder_ensure(p->store, p->s->account_id, parent, comp,
							kind, m->raw, m->delim,
							m->flags & 0x3f8, &id) < 0)
					return -1;
				if (p->s->hooks.folder_changed)
					p->s->hooks.folder_changed(p->s->hctx, parent);
			}
		} else if (r == 0) {
			id = f.id;
		} else {
			if (store_folder_ensure(p->store, p->s->account_id, parent, comp,
						STORE_FOLDER_DIR, "", m->delim, 0, &id) < 0)
				return -1;
			if (p->s->hooks.folder_changed)
				p->s->hooks.folder_changed(p->s->hctx, parent);
		}
		if (seen_add(seen, id) < 0)
			return -1;
		if (last) {
			*id_r = id;
			return 0;
		}
		parent = id;
		c = slash + 1;
	}
}

struct gone_ctx {
	struct seen_set *seen;
	struct seen_set gone;
	int64_t top;
};

static int
collect_gone(void *ctx, const struct store_folder *f)
{
	struct gone_ctx *g = ctx;
	if (f->id == g->top || f->kind == STORE_FOLDER_ACCOUNT || f->kind == STORE_FOLDER_OUTBOX ||
	    f->local)
		return 0;
	if (!seen_has(g->seen, f->id))
		return seen_add(&g->gone, f->id);
	return 0;
}

/* What LIST-STATUS said of a folder, kept for sync_folder (ids come in ascending order
 * of the listing, not of id: looked up linearly from the end, folders are few). */
static int
listed_add(struct pass *p, int64_t id, const struct imap_status_info *st)
{
	if (p->nlisted == p->listed_size) {
		size_t size = p->listed_size ? p->listed_size * 2 : 64;
		struct listed_state *l = realloc(p->listed, size * sizeof(*l));
		if (l == NULL)
			return -1;
		p->listed = l;
		p->listed_size = size;
	}
	p->listed[p->nlisted++] = (struct listed_state){ .folder_id = id, .st = *st };
	return 0;
}

static const struct imap_status_info *
listed_get(const struct pass *p, int64_t id)
{
	for (size_t i = p->nlisted; i > 0; i--)
		if (p->listed[i - 1].folder_id == id)
			return &p->listed[i - 1].st;
	return NULL;
}

static int
list_folders(struct pass *p, struct seen_set *mailboxes)
{
	struct imap_mbox *list = NULL;
	size_t n = 0;
	struct seen_set seen = { 0 };
	int ret = -1;
	p->nlisted = 0;
	if (imap_list(p->c, &list, &n) != IMAP_OK) {
		sync_set_error(p->s, imap_errmsg(p->c));
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		char display[2048], path[4096];
		imap_mbox_path(&list[i], display, sizeof(display));
		if (!folder_wanted(p->s->acct, display))
			continue;
		if (names_folder_path(list[i].name, list[i].delim, p->s->acct->outbox, path,
				      sizeof(path)) < 0) {
			log_warn("account %s: folder %s: name cannot be shown, skipped",
				 p->s->acct->name, list[i].raw);
			continue;
		}
		int64_t id;
		if (ensure_path(p, path, &list[i], &seen, &id) < 0) {
			log_warn("account %s: folder %s: cannot record: %s", p->s->acct->name,
				 list[i].raw, store_errmsg(p->store));
			continue;
		}
		if (list[i].has_status && listed_add(p, id, &list[i].status) < 0)
			goto out;
		if (!(list[i].flags & IMAP_MBOX_NOSELECT) && seen_add(mailboxes, id) < 0)
			goto out;
	}
	/* Folders the server no longer has. */
	struct gone_ctx g = { .seen = &seen, .top = p->s->top_id };
	if (store_folder_each(p->store, p->s->account_id, collect_gone, &g) < 0)
		goto out;
	for (size_t i = 0; i < g.gone.n; i++) {
		struct store_folder f;
		if (store_folder_get(p->store, g.gone.ids[i], &f) != 0)
			continue; /* already gone with its parent */
		if (store_folder_delete(p->store, f.id) < 0)
			continue;
		if (p->s->hooks.folder_removed)
			p->s->hooks.folder_removed(p->s->hctx, f.parent_id, f.id, f.name);
	}
	free(g.gone.ids);
	pthread_mutex_lock(&p->s->mu);
	p->s->st.folders = mailboxes->n;
	pthread_mutex_unlock(&p->s->mu);
	ret = 0;
out:
	free(seen.ids);
	imap_mbox_list_free(&list, n);
	return ret;
}

/* ---- one folder ------------------------------------------------------------------- */

/* After the re-read of a folder whose UIDVALIDITY changed: delete the rows no message
 * claimed (store_msg_adopt). */
static int
drop_unbound(struct pass *p, struct store_folder *f)
{
	struct store_msg m;
	int r;
	bool removed = false;
	while ((r = store_msg_unbound(p->store, f->id, &m)) == 0) {
		if (store_msg_delete(p->store, m.id) < 0)
			return -1;
		removed = true;
		if (p->s->hooks.msg_removed)
			p->s->hooks.msg_removed(p->s->hctx, f->id, m.id, m.name);
	}
	if (removed && p->s->hooks.folder_changed)
		p->s->hooks.folder_changed(p->s->hctx, f->id);
	p->adopt = false;
	return r < 0 ? -1 : 0;
}

/* Remove messages the server no longer has. */
static int
sync_expunged(struct pass *p)
{
	uint32_t *server = NULL, *local = NULL;
	size_t ns = 0, nl = 0;
	int ret = -1;
	if (imap_uid_search(p->c, "ALL", &server, &ns) != IMAP_OK) {
		sync_set_error(p->s, imap_errmsg(p->c));
		goto out;
	}
	if (store_msg_uids(p->store, p->f->id, &local, &nl) < 0)
		goto out;
	size_t j = 0;
	bool removed = false;
	for (size_t i = 0; i < nl; i++) {
		while (j < ns && server[j] < local[i])
			j++;
		if (j < ns && server[j] == local[i])
			continue;
		struct store_msg m;
		if (store_msg_by_uid(p->store, p->f->id, local[i], &m) != 0)
			continue;
		if (store_msg_delete(p->store, m.id) < 0)
			goto out;
		removed = true;
		if (p->s->hooks.msg_removed)
			p->s->hooks.msg_removed(p->s->hctx, p->f->id, m.id, m.name);
	}
	if (removed && p->s->hooks.folder_changed)
		p->s->hooks.folder_changed(p->s->hctx, p->f->id);
	ret = 0;
out:
	free(server);
	free(local);
	return ret;
}

/* ---- VANISHED (QRESYNC) ------------------------------------------------------------ */

static int
vanish_one(struct pass *p, uint32_t uid, bool *removed)
{
	struct store_msg m;
	int r = store_msg_by_uid(p->store, p->qr_folder, uid, &m);
	if (r != 0)
		return r < 0 ? -1 : 0;
	if (store_msg_delete(p->store, m.id) < 0)
		return -1;
	*removed = true;
	if (p->s->hooks.msg_removed)
		p->s->hooks.msg_removed(p->s->hctx, p->qr_folder, m.id, m.name);
	return 0;
}

/* A range narrower than this is looked up UID by UID; a wider one ("1:4000000" after a
 * mass expunge) against the folder's UIDs, so the work follows what the folder holds. */
#define VANISH_SCAN 4096

int
pass_vanished(void *ctx, bool earlier, const char *set)
{
	struct pass *p = ctx;
	(void)earlier;
	if (p->qr_folder == 0)
		return 0; /* not a folder being synced: the next pass's SELECT tells again */
	/* Rows of flag changes first: a removal is told to the hooks once it is visible. */
	if (pass_txn_commit(p) < 0)
		goto fail;
	const char *pos = set;
	uint32_t lo, hi;
	bool removed = false;
	while (imap_uidset_next(&pos, &lo, &hi) == 1) {
		if (hi - lo < VANISH_SCAN) {
			for (uint64_t u = lo; u <= hi; u++)
				if (vanish_one(p, (uint32_t)u, &removed) < 0)
					goto fail;
			continue;
		}
		if (p->qr_local == NULL &&
		    store_msg_uids(p->store, p->qr_folder, &p->qr_local, &p->qr_nlocal) < 0)
			goto fail;
		for (size_t i = 0; i < p->qr_nlocal; i++)
			if (p->qr_local[i] >= lo && p->qr_local[i] <= hi &&
			    vanish_one(p, p->qr_local[i], &removed) < 0)
				goto fail;
	}
	if (removed && p->s->hooks.folder_changed)
		p->s->hooks.folder_changed(p->s->hctx, p->qr_folder);
	return 0;
fail:
	p->failed = true;
	log_warn("account %s: cannot remove expunged messages: %s", p->s->acct->name,
		 store_errmsg(p->store));
	return -1;
}

static void
vanish_done(struct pass *p)
{
	p->qr_folder = 0;
	free(p->qr_local);
	p->qr_local = NULL;
	p->qr_nlocal = 0;
}

/* ---- messages that keep failing (cache/setaside.h) --------------------------------- */

static int
load_aside(struct pass *p, const struct store_folder *f)
{
	p->aside_folder = f->id;
	return store_aside_uids(p->store, f->id, sync_now_s(), ASIDE_AFTER, p->aside, ASIDE_MAX,
				&p->naside, &p->aside_rows);
}

static bool
is_aside(const struct pass *p, uint32_t uid)
{
	size_t lo = 0, hi = p->naside;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (p->aside[mid] == uid)
			return true;
		if (p->aside[mid] < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

/* Keep the UIDs of `uids` not set aside (in order); the set-aside ones go to `aside`. */
static size_t
split_aside(const struct pass *p, uint32_t *uids, size_t n, uint32_t *aside, size_t *naside_r)
{
	size_t k = 0, a = 0;
	for (size_t i = 0; i < n; i++) {
		if (is_aside(p, uids[i]))
			aside[a++] = uids[i];
		else
			uids[k++] = uids[i];
	}
	*naside_r = a;
	return k;
}

/* How long a message stays set aside at first: ASIDE_RETRY, or MAILFS_ASIDE_RETRY
 * seconds (for tests, which cannot wait an hour). */
static int64_t
aside_retry_s(void)
{
	const char *v = getenv("MAILFS_ASIDE_RETRY");
	char *end;
	long long n = v != NULL ? strtoll(v, &end, 10) : 0;
	return v != NULL && *v != '\0' && *end == '\0' && n > 0 && n <= ASIDE_RETRY_MAX
		       ? (int64_t)n
		       : ASIDE_RETRY;
}

/* The connection broke while a message's data was streaming: count it against that
 * message, and set the message aside when it keeps happening. */
static void
blame_stream(struct pass *p)
{
	const char *why = imap_errmsg(p->c);
	unsigned failures = 0;
	if (store_aside_fail(p->store, p->stream_folder, p->stream_uid, why, &failures) < 0) {
		log_warn("account %s: %s", p->s->acct->name, store_errmsg(p->store));
		return;
	}
	if (failures < ASIDE_AFTER)
		return;
	int64_t wait = aside_retry_s();
	for (unsigned i = ASIDE_AFTER; i < failures && wait < ASIDE_RETRY_MAX; i++)
		wait *= 2;
	if (wait > ASIDE_RETRY_MAX)
		wait = ASIDE_RETRY_MAX;
	if (store_aside_hold(p->store, p->stream_folder, p->stream_uid, sync_now_s() + wait) < 0) {
		log_warn("account %s: %s", p->s->acct->name, store_errmsg(p->store));
		return;
	}
	struct store_folder f;
	log_warn("account %s: %s UID %u set aside after %u failures, retried in %lld min: %s",
		 p->s->acct->name,
		 store_folder_get(p->store, p->stream_folder, &f) == 0 ? f.server_name : "?",
		 p->stream_uid, failures, (long long)wait / 60, why);
}

/* Remove from uids[0..*n) those the folder already has a row for, and fetch the flags of
 * those (a cut-off first sync resumes where it stopped: no body is asked for twice). */
static int
split_known(struct pass *p, struct store_folder *f, uint32_t *uids, size_t *n)
{
	uint32_t *local = NULL, *known = NULL;
	size_t nl = 0, nk = 0, k = 0, j = 0;
	int ret = -1;
	if (store_msg_uids(p->store, f->id, &local, &nl) < 0)
		return -1;
	if (nl == 0) {
		free(local);
		return 0;
	}
	known = local; /* filled in place: never ahead of the reading index j */
	for (size_t i = 0; i < *n; i++) {
		while (j < nl && local[j] < uids[i])
			j++;
		if (j < nl && local[j] == uids[i])
			known[nk++] = local[j++];
		else
			uids[k++] = uids[i];
	}
	*n = k;
	if (nk > 0)
		log_info("account %s: %s: %zu messages already cached, resuming", p->s->acct->name,
			 f->server_name, nk);
	p->mode = MODE_FLAGS;
	if (pass_fetch_uids(p, known, nk,
			    p->condstore ? "(UID FLAGS MODSEQ)" : "(UID FLAGS)") < 0 ||
	    pass_txn_commit(p) < 0)
		goto out;
	ret = 0;
out:
	free(local);
	return ret;
}

/* SELECT the folder; with QRESYNC the server tells what changed since the state we keep:
 * flags in FETCH responses, expunges in VANISHED (EARLIER). *qr_r: it did. */
static enum imap_err
select_folder(struct pass *p, struct store_folder *f, struct imap_select_info *si, bool *qr_r)
{
	*qr_r = p->qresync && f->uidvalidity != 0 && f->highestmodseq != 0;
	p->qr_folder = p->qresync ? f->id : 0;
	p->mode = MODE_FLAGS;
	enum imap_err e;
	if (*qr_r) {
		char known[32];
		snprintf(known, sizeof(known), "1:%u", f->uidnext > 1 ? f->uidnext - 1 : 1);
		e = imap_select_qresync(p->c, f->server_name, true, f->uidvalidity,
					f->highestmodseq, known, si);
	} else {
		e = imap_select(p->c, f->server_name, true, si);
	}
	if (p->failed)
		e = IMAP_ERR_ABORTED;
	if (e == IMAP_OK && pass_txn_commit(p) < 0)
		e = IMAP_ERR_ABORTED;
	/* A server that forgot the state we knew says so with a new UIDVALIDITY. */
	if (si->uidvalidity != f->uidvalidity)
		*qr_r = false;
	p->mode = MODE_NONE;
	return e;
}

static int sync_folder_selected(struct pass *p, struct store_folder *f,
				const struct imap_select_info *si, bool qr);

static int
sync_folder(struct pass *p, struct store_folder *f)
{
	struct imap_select_info si;
	bool qr;
	p->f = f;
	/* The listing's STATUS says nothing changed: no SELECT at all (on Dovecot a SELECT
	 * after a LIST costs time in proportion to the folder's size). Only with a
	 * HIGHESTMODSEQ, which also tells of flag changes. */
	const struct imap_status_info *ls = listed_get(p, f->id);
	if (ls != NULL && p->condstore && ls->highestmodseq != 0 && f->uidvalidity != 0 &&
	    ls->uidvalidity == f->uidvalidity && ls->uidnext == f->uidnext &&
	    ls->messages == f->messages && ls->highestmodseq == f->highestmodseq)
		return 0;
	enum imap_err e = select_folder(p, f, &si, &qr);
	if (e == IMAP_ERR_ABORTED) {
		vanish_done(p);
		sync_set_error(p->s, store_errmsg(p->store));
		return -1;
	}
	if (e == IMAP_OK) {
		int r = sync_folder_selected(p, f, &si, qr);
		vanish_done(p);
		return r;
	}
	vanish_done(p);
	{
		if (conn_error(imap_conn(p->c)) != CONN_OK)
			return -1;
		log_warn("account %s: cannot open %s: %s", p->s->acct->name, f->server_name,
			 imap_errmsg(p->c));
		return 0; /* the folder may have just been deleted; the next listing tells */
	}
}

/* The folder is selected (si: what SELECT said; qr: its QRESYNC answer told the flag
 * changes and expunges already). */
static int
sync_folder_selected(struct pass *p, struct store_folder *f, const struct imap_select_info *sip,
		     bool qr)
{
	struct imap_select_info si = *sip;
	if (f->uidvalidity != 0 && si.uidvalidity != f->uidvalidity) {
		log_info("account %s: %s: UIDVALIDITY changed, reading the folder again",
			 p->s->acct->name, f->server_name);
		/* Its rows wait for the re-read, which gives each message found again (same
		 * Message-ID and size) its new UID: names and bodies stay. */
		if (store_msg_unbind(p->store, f->id) < 0)
			return -1;
		p->adopt = true;
		f->uidnext = 0;
		f->highestmodseq = 0;
		f->messages = 0;
	}
	/* Nothing changed. Without a HIGHESTMODSEQ, flags changed elsewhere show only in a
	 * FETCH of them all: the new-message and expunge steps below skip themselves. */
	if (f->uidvalidity == si.uidvalidity && f->uidnext == si.uidnext &&
	    f->messages == si.exists && si.highestmodseq != 0 &&
	    si.highestmodseq == f->highestmodseq)
		return 0;

	set_phase(p->s, "headers");
	const char *items = p->condstore ? "(UID FLAGS INTERNALDATE RFC822.SIZE MODSEQ "
					   "BODY.PEEK[HEADER.FIELDS (DATE FROM SUBJECT MESSAGE-ID)])"
					 : "(UID FLAGS INTERNALDATE RFC822.SIZE "
					   "BODY.PEEK[HEADER.FIELDS (DATE FROM SUBJECT MESSAGE-ID)])";
	/* New messages. */
	if (si.exists > 0 && (f->uidnext == 0 || si.uidnext > f->uidnext)) {
		uint32_t *uids = NULL;
		size_t n = 0;
		char crit[64];
		snprintf(crit, sizeof(crit), "UID %u:*", f->uidnext ? f->uidnext : 1);
		if (imap_uid_search(p->c, crit, &uids, &n) != IMAP_OK) {
			sync_set_error(p->s, imap_errmsg(p->c));
			return -1;
		}
		/* "n:*" always includes the last message, even below n. */
		size_t k = 0;
		for (size_t i = 0; i < n; i++)
			if (f->uidnext == 0 || uids[i] >= f->uidnext)
				uids[k++] = uids[i];
		/* A first sync that was cut off (or a folder re-read after a UIDVALIDITY
		 * change) finds rows it already has: only their flags are asked for. */
		if (f->uidnext == 0 && split_known(p, f, uids, &k) < 0) {
			free(uids);
			return -1;
		}
		/* Set-aside messages are listed from their metadata alone. */
		uint32_t aside[ASIDE_MAX];
		size_t naside = 0;
		if (load_aside(p, f) < 0) {
			free(uids);
			return -1;
		}
		k = split_aside(p, uids, k, aside, &naside);
		/* With everything prefetched, metadata and body come in one FETCH. */
		bool full = p->s->acct->prefetch == CFG_PREFETCH_ALL && !p->adopt;
		p->mode = full ? MODE_FULL : MODE_HEADERS;
		if (full)
			set_phase(p->s, "messages");
		int r = pass_fetch_uids(p, uids, k,
				   !full ? items
				   : p->condstore ? "(UID FLAGS INTERNALDATE MODSEQ BODY.PEEK[])"
						  : "(UID FLAGS INTERNALDATE BODY.PEEK[])");
		free(uids);
		if (r == 0 && naside > 0) {
			p->mode = MODE_HEADERS;
			r = pass_fetch_uids(p, aside, naside,
					    p->condstore ? "(UID FLAGS INTERNALDATE RFC822.SIZE MODSEQ)"
							 : "(UID FLAGS INTERNALDATE RFC822.SIZE)");
		}
		if (r < 0 || pass_txn_commit(p) < 0)
			return -1;
	}
	/* Rows of a re-read folder nobody claimed: their messages are gone. */
	if (p->adopt && drop_unbound(p, f) < 0)
		return -1;
	/* Flag changes of the messages we had (QRESYNC: told by the SELECT). */
	if (!qr && f->uidnext > 1 && f->messages > 0) {
		unsigned id;
		p->mode = MODE_FLAGS;
		enum imap_err e;
		if (p->condstore && f->highestmodseq > 0 && si.highestmodseq > 0)
			e = imap_send(p->c, &id, "UID FETCH 1:%u (UID FLAGS) (CHANGEDSINCE %llu)",
				      f->uidnext - 1, (unsigned long long)f->highestmodseq);
		else
			e = imap_send(p->c, &id, "UID FETCH 1:%u (UID FLAGS)", f->uidnext - 1);
		if (e == IMAP_OK)
			e = imap_wait(p->c, id);
		if (e != IMAP_OK || p->failed) {
			sync_set_error(p->s, p->failed ? store_errmsg(p->store) : imap_errmsg(p->c));
			return -1;
		}
		if (pass_txn_commit(p) < 0)
			return -1;
	}
	p->mode = MODE_NONE;
	/* Expunged messages. */
	struct store_folder now;
	if (store_folder_get(p->store, f->id, &now) != 0)
		return -1;
	if (now.messages != si.exists && sync_expunged(p) < 0)
		return -1;
	if (store_folder_set_state(p->store, f->id, si.uidvalidity, si.uidnext,
				   si.highestmodseq) < 0)
		return -1;
	return 0;
}

/* ---- bodies ----------------------------------------------------------------------- */

static int
prefetch_folder(struct pass *p, struct store_folder *f)
{
	const struct cfg_account *a = p->s->acct;
	int64_t since = a->prefetch == CFG_PREFETCH_DAYS
				? sync_now_s() - (int64_t)a->prefetch_days * 86400
				: INT64_MIN;
	uint32_t uids[512], aside[ASIDE_MAX];
	size_t n = 0, naside;
	uint32_t after = 0;
	bool selected = false;
	/* Bodies declared empty first, whatever `prefetch` says: the kernel never reads an
	 * empty file, so only their body can show that they are not. */
	bool empty = true;
	p->f = f;
	if (load_aside(p, f) < 0)
		return -1;
	for (;;) {
		if ((empty ? store_msg_empty_bodies : store_msg_missing_bodies)(p->store, f->id, after,
										 uids, 512, &n) < 0)
			return -1;
		if (n == 0 && empty && a->prefetch != CFG_PREFETCH_NONE) {
			empty = false;
			after = 0;
			continue;
		}
		if (n == 0)
			break;
		after = uids[n - 1];
		if (!selected) {
			struct imap_select_info si;
			if (imap_select(p->c, f->server_name, true, &si) != IMAP_OK)
				return conn_error(imap_conn(p->c)) != CONN_OK ? -1 : 0;
			selected = true;
			set_phase(p->s, "bodies");
		}
		p->mode = MODE_BODIES;
		size_t k = 0;
		n = split_aside(p, uids, n, aside, &naside);
		for (size_t i = 0; i < n; i++) {
			if (since != INT64_MIN && !empty) {
				struct store_msg m;
				if (store_msg_by_uid(p->store, f->id, uids[i], &m) != 0 ||
				    m.internaldate < since)
					continue;
			}
			uids[k++] = uids[i];
		}
		/* Bodies are placed by the UID sent before them in each response. */
		if (pass_txn_begin(p) < 0 || pass_fetch_uids(p, uids, k, "(UID BODY.PEEK[])") < 0)
			return -1;
		if (pass_txn_commit(p) < 0)
			return -1;
		if (stopping(p->s))
			return 0;
	}
	p->mode = MODE_NONE;
	return 0;
}

/* ---- changes made through the mount ---------------------------------------------- */

/* Replay the journal: 0 (empty or only refused entries left), -1 the connection failed. */
static int
replay(struct pass *p)
{
	struct sync *s = p->s;
	p->rp.store = p->store;
	p->rp.c = p->c;
	set_phase(s, "replaying");
	int r = replay_run(&p->rp);
	pthread_mutex_lock(&s->mu);
	s->st.replayed = p->rp.replayed;
	snprintf(s->st.replay_error, sizeof(s->st.replay_error), "%s", r == 0 ? "" : p->rp.error);
	snprintf(s->st.replay_note, sizeof(s->st.replay_note), "%s", p->rp.note);
	pthread_mutex_unlock(&s->mu);
	if (r < 0)
		sync_set_error(s, p->rp.error[0] ? p->rp.error : "connection lost while replaying changes");
	return r < 0 ? -1 : 0;
}

/* Entries not replayed yet (a store error counts as some). */
static bool
journal_busy(struct pass *p)
{
	uint64_t n = 0;
	return journal_count(p->store, p->s->account_id, &n, NULL, 0) < 0 || n > 0;
}

/* ---- a pass ----------------------------------------------------------------------- */

/* Run `step` on every mailbox of the listing, INBOX first: it is what people look at.
 * 0 when all were done, 1 when the sync is stopping (the rest skipped), -1 when a step
 * failed. */
static int
each_mailbox(struct pass *p, const struct seen_set *mailboxes,
	     int (*step)(struct pass *p, struct store_folder *f))
{
	for (int round = 0; round < 2; round++) {
		for (size_t i = 0; i < mailboxes->n; i++) {
			struct store_folder f;
			if (store_folder_get(p->store, mailboxes->ids[i], &f) != 0)
				continue;
			bool inbox = strcmp(f.server_name, "INBOX") == 0;
			if ((round == 0) != inbox)
				continue;
			if (stopping(p->s))
				return 1;
			if (step(p, &f) < 0)
				return -1;
		}
	}
	return 0;
}

/* What a pass leaves: a body in flight dropped, the open transaction committed (ret 0) or
 * rolled back. Returns ret, or -1 when the commit failed. */
static int
pass_end(struct pass *p, int ret)
{
	if (p->w != NULL)
		store_body_end(&p->w, false);
	if (p->in_txn) {
		if (ret == 0) {
			if (pass_txn_commit(p) < 0)
				ret = -1;
		} else {
			store_rollback(p->store);
			p->in_txn = false;
		}
	}
	if (ret < 0 && p->stream_uid != 0 && p->c != NULL &&
	    conn_error(imap_conn(p->c)) != CONN_OK)
		blame_stream(p);
	p->stream_uid = 0;
	p->nlisted = 0; /* a listing tells only the pass that made it */
	p->mode = MODE_NONE;
	p->failed = false;
	p->adopt = false;
	vanish_done(p);
	return ret;
}

static int
do_pass(struct pass *p)
{
	struct seen_set mailboxes = { 0 };
	int ret = -1, r;
	/* The listing would undo a folder change not on the server yet: replay first. */
	if (replay(p) < 0)
		goto out;
	if (journal_busy(p)) {
		ret = 0;
		goto out;
	}
	set_phase(p->s, "listing");
	if (list_folders(p, &mailboxes) < 0)
		goto out;
	r = each_mailbox(p, &mailboxes, sync_folder);
	if (r == 0)
		r = each_mailbox(p, &mailboxes, prefetch_folder);
	if (r < 0)
		goto out;
	ret = 0;
out:
	free(mailboxes.ids);
	return pass_end(p, ret);
}

/* A pass over INBOX alone, when the watcher heard of a change (cache/idle.h). */
static int
inbox_pass(struct pass *p)
{
	struct store_folder f;
	if (replay(p) < 0)
		return pass_end(p, -1);
	if (journal_busy(p) || store_folder_lookup(p->store, p->s->top_id, "INBOX", &f) != 0 ||
	    strcmp(f.server_name, "INBOX") != 0)
		return pass_end(p, 0);
	set_phase(p->s, "inbox");
	/* STATUS first (as a listing would): when the watcher's news was already taken in by
	 * the pass that was running, there is no SELECT at all. Not while a mailbox is
	 * selected: STATUS of the selected one may be stale (RFC 3501 6.3.10), and the
	 * connection stays selected between passes on purpose: on Dovecot, STATUS of a
	 * mailbox no session of the connection holds open reads its index, in time that
	 * grows with its size (100 ms at 100,000 messages), while that of the held one is
	 * answered at once. */
	struct imap_status_info st;
	if (p->condstore && !imap_selected(p->c)) {
		if (imap_status(p->c, f.server_name, &st) == IMAP_OK)
			listed_add(p, f.id, &st);
		else if (conn_error(imap_conn(p->c)) != CONN_OK)
			return pass_end(p, -1);
	}
	int r = sync_folder(p, &f);
	if (r == 0)
		r = prefetch_folder(p, &f);
	return pass_end(p, r < 0 ? -1 : 0);
}

static void *
sync_main(void *arg)
{
	struct sync *s = arg;
	struct pass p = { .s = s };
	p.rp.acct = s->acct;
	p.rp.account_id = s->account_id;
	p.rp.top_id = s->top_id;
	p.rp.folder_changed = s->hooks.folder_changed;
	p.rp.msg_removed = s->hooks.msg_removed;
	p.rp.hctx = s->hctx;
	char err[700];
	buf_init(&p.hdr, 64 * 1024);
	if (store_open(s->cache_dir, &p.store, err, sizeof(err)) < 0) {
		sync_set_error(s, err);
		goto out;
	}
	unsigned backoff = 1;
	while (!stopping(s)) {
		set_phase(s, "connecting");
		p.c = sync_connect(s, "sync", 15000, SYNC_IO_MS, err, sizeof(err));
		if (p.c == NULL) {
			pthread_mutex_lock(&s->mu);
			s->st.online = false;
			s->known_offline = true;
			pthread_mutex_unlock(&s->mu);
			sync_set_error(s, err);
			set_phase(s, "offline");
			if (wait_for(s, backoff))
				break;
			backoff = backoff * 2 > BACKOFF_MAX ? BACKOFF_MAX : backoff * 2;
			continue;
		}
		imap_set_fetch_handler(p.c, &sync_pass_handler, &p);
		p.condstore = imap_has_cap(p.c, "CONDSTORE");
		p.qresync = false;
		/* QRESYNC (RFC 7162) implies CONDSTORE; it needs ENABLE. */
		if (imap_has_cap(p.c, "QRESYNC") && imap_has_cap(p.c, "ENABLE") &&
		    imap_enable(p.c, "QRESYNC") == IMAP_OK && imap_enabled(p.c, "QRESYNC")) {
			p.qresync = true;
			p.condstore = true;
		} else if (p.condstore) {
			(void)imap_enable(p.c, "CONDSTORE");
		}
		pthread_mutex_lock(&s->mu);
		bool was_offline = s->known_offline;
		s->st.online = true;
		s->known_offline = false;
		pthread_mutex_unlock(&s->mu);
		if (was_offline && s->hooks.back_online)
			s->hooks.back_online(s->hctx, s->account_id);
		for (;;) {
			struct timespec t0, t1;
			clock_gettime(CLOCK_MONOTONIC, &t0);
			if (do_pass(&p) < 0)
				break;
			clock_gettime(CLOCK_MONOTONIC, &t1);
			backoff = 1; /* a pass that fails makes the next attempt wait longer */
			pthread_mutex_lock(&s->mu);
			s->st.last_pass_us = (uint64_t)((t1.tv_sec - t0.tv_sec) * 1000000 +
							(t1.tv_nsec - t0.tv_nsec) / 1000);
			s->st.passes++;
			s->st.last_sync_time = sync_now_s();
			bool first = !s->st.first_pass_done;
			s->st.first_pass_done = true;
			if (first)
				pthread_cond_broadcast(&s->cond);
			snprintf(s->phase, sizeof(s->phase), "idle");
			pthread_mutex_unlock(&s->mu);
			/* Until the next poll, replay changes as they come. */
			struct timespec due;
			clock_gettime(CLOCK_MONOTONIC, &due);
			due.tv_sec += s->acct->poll_seconds;
			bool changes = false, inbox = false, lost = false;
			while (!wait_until(s, &due, &changes, &inbox) && (changes || inbox)) {
				if ((changes && replay(&p) < 0) || (inbox && inbox_pass(&p) < 0)) {
					lost = true;
					break;
				}
				set_phase(s, "idle");
			}
			if (lost || stopping(s))
				break;
			if (imap_noop(p.c) != IMAP_OK)
				break;
		}
		imap_close(&p.c);
		pthread_mutex_lock(&s->mu);
		s->st.online = false;
		pthread_mutex_unlock(&s->mu);
		if (wait_for(s, backoff)) /* never a reconnect storm against a failing server */
			break;
		backoff = backoff * 2 > BACKOFF_MAX ? BACKOFF_MAX : backoff * 2;
	}
out:
	imap_close(&p.c);
	store_close(&p.store);
	buf_free(&p.hdr);
	free(p.listed);
	return NULL;
}

/* ---- life cycle ------------------------------------------------------------------- */

struct sync *
sync_start(const struct cfg_account *acct, const char *cache_dir, int64_t account_id,
	   int64_t top_id, const struct sync_hooks *hooks, void *hooks_ctx, char *err,
	   size_t errlen)
{
	struct sync *s = calloc(1, sizeof(*s));
	if (s == NULL || (s->cache_dir = strdup(cache_dir)) == NULL) {
		free(s);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->acct = acct;
	s->account_id = account_id;
	s->top_id = top_id;
	if (hooks != NULL)
		s->hooks = *hooks;
	s->hctx = hooks_ctx;
	pthread_mutex_init(&s->mu, NULL);
	/* Waits are timed on the monotonic clock: a wall clock that steps never stretches them. */
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->cond, &ca);
	pthread_condattr_destroy(&ca);
	snprintf(s->phase, sizeof(s->phase), "starting");
	for (int i = 0; i < READERS; i++)
		pthread_mutex_init(&s->readers[i].mu, NULL);
	if (!acct->imap.set) {
		snprintf(err, errlen, "account %s: only IMAP accounts can be mounted so far",
			 acct->name);
		sync_stop(&s);
		return NULL;
	}
	int e = pthread_create(&s->thread, NULL, sync_main, s);
	if (e != 0) {
		snprintf(err, errlen, "cannot start a thread: %s", strerror(e));
		sync_stop(&s);
		return NULL;
	}
	s->started = true;
	/* Push for INBOX when it is mounted; without the watcher INBOX keeps `poll`. */
	if (folder_wanted(acct, "INBOX")) {
		char werr[256];
		s->idle = idle_start(s, acct->name, werr, sizeof(werr));
		if (s->idle == NULL)
			log_warn("account %s: no push for INBOX: %s", acct->name, werr);
	}
	return s;
}

void
sync_stop(struct sync **sp)
{
	struct sync *s = *sp;
	if (s == NULL)
		return;
	pthread_mutex_lock(&s->mu);
	s->stop = true;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->mu);
	idle_stop(&s->idle);
	if (s->started)
		pthread_join(s->thread, NULL);
	for (int i = 0; i < READERS; i++) {
		imap_close(&s->readers[i].c);
		pthread_mutex_destroy(&s->readers[i].mu);
	}
	cfg_secret_free(&s->password);
	pthread_cond_destroy(&s->cond);
	pthread_mutex_destroy(&s->mu);
	free(s->cache_dir);
	free(s);
	*sp = NULL;
}
