/* pop3-sync.c - the sync engine of a POP3 account (see pop3-sync.h).
 *
 * Not the IMAP engine (cache/sync.c): POP3 has one folder, no flags and no UIDs, so a pass
 * is: UIDL, LIST, TOP for the new ones, RETR for the missing bodies, DELE (after_cache
 * only), QUIT. Memory: the new messages of a pass (number, UIDL, size) are kept in an
 * array; bodies go through a spool file, never whole into the heap.
 *
 * TOP and RETR are pipelined when the server allows it (net/pop3's window): the next
 * commands are sent before the reply at hand is stored, and the replies come back in
 * order. A -ERR for one message skips that message only (it is tried again next pass); a
 * lost connection ends the pass with what was stored so far committed.
 */
#include "cache/pop3-sync.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cache/account.h"
#include "cache/names.h"
#include "cache/store.h"
#include "net/imap-date.h"
#include "net/log.h"
#include "net/mail-header.h"
#include "net/pop3-pipe.h"
#include "net/pop3.h"

#define IO_MS 60000
#define READ_IO_MS 15000
#define TXN_ROWS 500
#define TXN_BODY_BYTES (16u << 20)
#define BACKOFF_MAX 300

struct pop3_sync {
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
	struct sync_status st;
	char phase[32];
	char *password; /* cached secret, wiped on stop */

	pthread_mutex_t op_mu; /* one on-demand session (fetch, delete) at a time */
};

struct newmsg {
	uint32_t msgno;
	uint64_t size;
	bool dup;
	char uidl[POP3_UIDL_MAX + 1];
};

struct pass {
	struct pop3_sync *p;
	struct store *store;
	struct pop3 *c;
	int64_t folder_id;
	int64_t pass;
	struct newmsg *nw;
	size_t nnew, capnew;
	bool failed;
	unsigned refused; /* TOP/RETR answered -ERR this pass */
};

static void
set_phase(struct pop3_sync *p, const char *phase)
{
	pthread_mutex_lock(&p->mu);
	snprintf(p->phase, sizeof(p->phase), "%s", phase);
	p->st.phase = p->phase;
	pthread_mutex_unlock(&p->mu);
}

static void
set_error(struct pop3_sync *p, const char *msg)
{
	pthread_mutex_lock(&p->mu);
	snprintf(p->st.last_error, sizeof(p->st.last_error), "%s", msg);
	p->st.last_error_time = time(NULL);
	pthread_mutex_unlock(&p->mu);
	log_warn("account '%s': %s", p->acct->name, msg);
}

void
pop3_sync_get_status(struct pop3_sync *p, struct sync_status *r)
{
	pthread_mutex_lock(&p->mu);
	*r = p->st;
	snprintf(r->push, sizeof(r->push), "none");
	pthread_mutex_unlock(&p->mu);
}

void
pop3_sync_kick(struct pop3_sync *p)
{
	pthread_mutex_lock(&p->mu);
	p->kick = true;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->mu);
}

int
pop3_sync_wait_first_pass(struct pop3_sync *p, int timeout_ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&p->mu);
	while (!p->st.first_pass_done && !p->stop)
		if (pthread_cond_timedwait(&p->cond, &p->mu, &ts) == ETIMEDOUT)
			break;
	int done = p->st.first_pass_done;
	pthread_mutex_unlock(&p->mu);
	return done;
}

/* Wait `seconds` or until kicked or stopped; true when stopping. */
static bool
wait_for(struct pop3_sync *p, unsigned seconds)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += seconds;
	pthread_mutex_lock(&p->mu);
	while (!p->stop && !p->kick)
		if (pthread_cond_timedwait(&p->cond, &p->mu, &ts) == ETIMEDOUT)
			break;
	p->kick = false;
	bool stop = p->stop;
	pthread_mutex_unlock(&p->mu);
	return stop;
}

static bool
stopping(struct pop3_sync *p)
{
	pthread_mutex_lock(&p->mu);
	bool s = p->stop;
	pthread_mutex_unlock(&p->mu);
	return s;
}

/* A logged-in session (the password asked once and kept); NULL with a reason in err. */
static struct pop3 *
session(struct pop3_sync *p, const char *who, int io_ms, char *err, size_t errlen)
{
	pthread_mutex_lock(&p->mu);
	if (p->password == NULL && cfg_password(p->acct, &p->password, err, errlen) < 0) {
		pthread_mutex_unlock(&p->mu);
		return NULL;
	}
	char *pw = strdup(p->password);
	pthread_mutex_unlock(&p->mu);
	if (pw == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	bool auth = false;
	struct pop3 *c = account_pop3_open(p->acct, who, io_ms, pw, &auth, err, errlen);
	if (c == NULL && auth) {
		pthread_mutex_lock(&p->mu);
		if (p->password != NULL && strcmp(p->password, pw) == 0)
			cfg_secret_free(&p->password);
		pthread_mutex_unlock(&p->mu);
	}
	cfg_secret_free(&pw);
	pthread_mutex_lock(&p->mu);
	p->st.online = c != NULL;
	pthread_mutex_unlock(&p->mu);
	return c;
}

static int
ensure_inbox(struct store *s, const struct pop3_sync *p, struct store_folder *f_r)
{
	int64_t id;
	if (store_folder_ensure(s, p->account_id, p->top_id, "INBOX", STORE_FOLDER_MAILBOX, "INBOX",
				'\0', 0, &id) < 0)
		return -1;
	return store_folder_get(s, id, f_r) == 0 ? 0 : -1;
}

/* ---- RETR into the store ------------------------------------------------------------ */

struct spool {
	int fd;
	uint64_t len;
	bool failed;
};

static int
spool_data(void *ctx, const char *d, size_t n)
{
	struct spool *sp = ctx;
	while (n > 0) {
		ssize_t w = write(sp->fd, d, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			sp->failed = true;
			return -1;
		}
		d += w;
		n -= (size_t)w;
		sp->len += (uint64_t)w;
	}
	return 0;
}

/* The reply to the RETR of msgno, the oldest command in flight, into the row msg_id
 * (inside the caller's transaction if one is open). 0 stored, -1 store error (reason in
 * the store), -2 connection or protocol error, -3 the server refused this message (-ERR;
 * the session goes on). */
static int
retr_to_store(struct pop3_sync *p, struct store *s, struct pop3 *c, uint32_t msgno,
	      int64_t msg_id, bool *size_changed_r, uint64_t *bytes_r)
{
	struct spool sp = {.fd = open(p->cache_dir, O_TMPFILE | O_RDWR, 0600)};
	if (sp.fd < 0) {
		char tmpl[4096];
		snprintf(tmpl, sizeof(tmpl), "%s/.pop3-spool-XXXXXX", p->cache_dir);
		sp.fd = mkstemp(tmpl);
		if (sp.fd >= 0)
			unlink(tmpl);
	}
	if (sp.fd < 0)
		return -1;
	int ret = -2;
	uint32_t got_msg = 0;
	enum pop3_err e = pop3_read_retr(c, &got_msg, spool_data, &sp, NULL);
	if (e == POP3_ERR_NO)
		ret = -3;
	if (e != POP3_SUCCESS || sp.failed)
		goto out;
	if (got_msg != msgno) {
		ret = -1; /* a bug of ours, not the server's: never store under the wrong row */
		goto out;
	}
	ret = -1;
	struct store_body_writer *w = NULL;
	if (store_body_begin(s, msg_id, sp.len, &w, size_changed_r) < 0)
		goto out;
	static _Thread_local char buf[65536];
	uint64_t off = 0;
	bool ok = true;
	while (off < sp.len) {
		ssize_t r = pread(sp.fd, buf, sizeof(buf), (off_t)off);
		if (r <= 0 || store_body_write(w, buf, (size_t)r) < 0) {
			ok = false;
			break;
		}
		off += (uint64_t)r;
	}
	if (store_body_end(&w, ok) < 0 || !ok)
		goto out;
	*bytes_r = sp.len;
	ret = 0;
out:
	close(sp.fd);
	return ret;
}

/* ---- a pass ----------------------------------------------------------------------- */

static int
uidl_listed(void *ctx, uint32_t msgno, const char *uidl)
{
	struct pass *ps = ctx;
	int64_t id;
	int f = store_pop3_seen(ps->store, ps->folder_id, uidl, msgno, ps->pass, &id);
	if (f < 0) {
		ps->failed = true;
		return -1;
	}
	if (f == 0)
		return 0; /* known, listed once so far */
	if (ps->nnew == ps->capnew) {
		size_t cap = ps->capnew ? ps->capnew * 2 : 256;
		struct newmsg *n = realloc(ps->nw, cap * sizeof(*n));
		if (n == NULL) {
			ps->failed = true;
			return -1;
		}
		ps->nw = n;
		ps->capnew = cap;
	}
	struct newmsg *m = &ps->nw[ps->nnew++];
	memset(m, 0, sizeof(*m));
	m->msgno = msgno;
	snprintf(m->uidl, sizeof(m->uidl), "%s", uidl);
	return 0;
}

static int
cmp_msgno(const void *a, const void *b)
{
	const struct newmsg *x = a, *y = b;
	return x->msgno < y->msgno ? -1 : x->msgno > y->msgno;
}

static int
cmp_uidl(const void *a, const void *b)
{
	const struct newmsg *x = a, *y = b;
	int c = strcmp(x->uidl, y->uidl);
	return c ? c : cmp_msgno(a, b);
}

static int
size_listed(void *ctx, uint32_t msgno, uint64_t size)
{
	struct pass *ps = ctx;
	struct newmsg key = {.msgno = msgno};
	struct newmsg *m =
		ps->nnew ? bsearch(&key, ps->nw, ps->nnew, sizeof(*m), cmp_msgno) : NULL;
	if (m != NULL)
		m->size = size;
	return 0;
}

/* Date, Subject, Message-ID of a TOP header block. */
static void
header_fields(const struct buf *hdr, int64_t *date_r, struct buf *subject, char *mid,
	      size_t midlen)
{
	struct buf v;
	buf_init(&v, 8192);
	*date_r = 0;
	if (mail_header_get(hdr->data ? hdr->data : "", hdr->len, "Date", &v) == 1 &&
	    v.data != NULL)
		(void)rfc5322_date_parse(v.data, date_r);
	buf_reset(&v);
	mid[0] = '\0';
	if (mail_header_get(hdr->data ? hdr->data : "", hdr->len, "Message-ID", &v) == 1 &&
	    v.data != NULL)
		snprintf(mid, midlen, "%s", v.data);
	buf_free(&v);
	buf_reset(subject);
	(void)mail_header_get(hdr->data ? hdr->data : "", hdr->len, "Subject", subject);
}

/* What a TOP reply is counted as against the window's byte budget. */
static uint64_t
top_expect(const struct newmsg *m)
{
	return m->size < 8192 ? m->size : 8192;
}

/* Store the new messages of the listing (TOP for each). */
static int
add_new(struct pass *ps, struct store_folder *f, int *added_r)
{
	struct buf hdr, subj;
	buf_init(&hdr, POP3_TOP_MAX);
	buf_init(&subj, NAMES_SUBJECT_INPUT_MAX + 256);
	int ret = -1;
	unsigned rows = 0;
	bool txn = false;
	uint32_t uidnext = f->uidnext ? f->uidnext : 1;
	uint64_t vanished = 0;
	if (ps->nnew > 0 && store_pop3_vanished(ps->store, ps->folder_id, ps->pass, &vanished) < 0)
		goto out;
	size_t sent = 0;
	for (size_t i = 0; i < ps->nnew; i++) {
		struct newmsg *m = &ps->nw[i];
		if (stopping(ps->p))
			goto out;
		/* Keep the window full: TOP for the next messages before this reply is read. */
		while (sent < ps->nnew && pop3_window_room(ps->c, top_expect(&ps->nw[sent]))) {
			if (pop3_send_top(ps->c, ps->nw[sent].msgno, top_expect(&ps->nw[sent])) !=
			    POP3_SUCCESS) {
				set_error(ps->p, pop3_errmsg(ps->c));
				goto out;
			}
			sent++;
		}
		uint32_t got_msg = 0;
		enum pop3_err e = pop3_read_top(ps->c, &got_msg, &hdr);
		if (e == POP3_SUCCESS && got_msg != m->msgno) {
			set_error(ps->p, "TOP reply out of step with the commands sent");
			goto out;
		}
		if (e == POP3_ERR_NO) {
			/* This message only: no row now, it is new again next pass. */
			char msg[700];
			snprintf(msg, sizeof(msg), "TOP %u: %s", m->msgno, pop3_errmsg(ps->c));
			set_error(ps->p, msg);
			ps->refused++;
			continue;
		}
		if (e != POP3_SUCCESS) {
			set_error(ps->p, pop3_errmsg(ps->c));
			goto out;
		}
		int64_t date;
		char mid[512];
		header_fields(&hdr, &date, &subj, mid, sizeof(mid));
		char key[600];
		if (!m->dup) {
			/* Known but already listed this pass under the plain UIDL: a duplicate. */
			int ex = store_pop3_exists(ps->store, ps->folder_id, m->uidl);
			if (ex < 0)
				goto out;
			m->dup = ex == 0;
		}
		if (m->dup)
			snprintf(key, sizeof(key), "%s %s %llu", m->uidl, mid,
				 (unsigned long long)m->size);
		else
			snprintf(key, sizeof(key), "%s", m->uidl);
		if (!txn) {
			if (store_begin(ps->store) < 0)
				goto out;
			txn = true;
		}
		int64_t id;
		int fr = store_pop3_seen(ps->store, ps->folder_id, key, m->msgno, ps->pass, &id);
		if (fr < 0)
			goto out;
		if (fr == 0)
			continue; /* a duplicate already known under its fallback identity */
		/* A changed UIDL: the same Message-ID and size not listed under its old one
		 * (looked for only while some known row is missing from this listing). */
		if (vanished > 0 && mid[0] != '\0') {
			int64_t old;
			int mr = store_pop3_match(ps->store, ps->folder_id, ps->pass, mid, m->size,
						  &old);
			if (mr < 0)
				goto out;
			if (mr == 0) {
				if (store_pop3_rekey(ps->store, old, key, m->msgno, ps->pass) < 0)
					goto out;
				vanished--;
				continue;
			}
		}
		struct store_msg sm;
		memset(&sm, 0, sizeof(sm));
		sm.folder_id = ps->folder_id;
		sm.uid = uidnext;
		sm.internaldate = date;
		sm.size = m->size;
		snprintf(sm.message_id, sizeof(sm.message_id), "%s", mid);
		names_message(uidnext, date, subj.data, subj.len, sm.name);
		if (store_msg_upsert(ps->store, &sm) < 0 ||
		    store_pop3_add(ps->store, sm.id, ps->folder_id, key, m->msgno, ps->pass) < 0)
			goto out;
		uidnext++;
		(*added_r)++;
		if (++rows >= TXN_ROWS) {
			if (store_folder_set_state(ps->store, ps->folder_id, 1, uidnext, 0) < 0 ||
			    store_commit(ps->store) < 0)
				goto out;
			txn = false;
			rows = 0;
			ps->p->hooks.folder_changed(ps->p->hctx, ps->folder_id);
		}
		pthread_mutex_lock(&ps->p->mu);
		ps->p->st.headers_done++;
		pthread_mutex_unlock(&ps->p->mu);
	}
	if (txn) {
		if (store_folder_set_state(ps->store, ps->folder_id, 1, uidnext, 0) < 0 ||
		    store_commit(ps->store) < 0)
			goto out;
		txn = false;
	}
	f->uidnext = uidnext;
	ret = 0;
out:
	if (txn) {
		/* Keep what was stored: the local numbers must not be given out twice. */
		if (store_folder_set_state(ps->store, ps->folder_id, 1, uidnext, 0) < 0 ||
		    store_commit(ps->store) < 0)
			store_rollback(ps->store);
	}
	if (ret < 0 && ps->store != NULL && store_errmsg(ps->store)[0] && !stopping(ps->p))
		log_warn("account '%s': %s", ps->p->acct->name, store_errmsg(ps->store));
	buf_free(&hdr);
	buf_free(&subj);
	return ret;
}

/* Rows not listed this pass: gone from the server. A row we deleted ourselves
 * (after_cache) stays: its cached copy is all there is now. */
static int
remove_gone(struct pass *ps, int *removed_r)
{
	struct store_pop3 r;
	int64_t after = 0;
	int fr;
	while ((fr = store_pop3_next(ps->store, ps->folder_id, after, &r)) == 0) {
		after = r.msg_id;
		if (r.seen == ps->pass || r.dele == 2)
			continue;
		if (r.dele == 1) {
			if (store_pop3_set_dele(ps->store, r.msg_id, 2) < 0)
				return -1;
			continue;
		}
		struct store_msg m;
		if (store_msg_get(ps->store, r.msg_id, &m) != 0)
			continue;
		if (store_msg_delete(ps->store, r.msg_id) < 0)
			return -1;
		ps->p->hooks.msg_removed(ps->p->hctx, ps->folder_id, r.msg_id, m.name);
		(*removed_r)++;
	}
	return fr < 0 ? -1 : 0;
}

static bool
wanted(const struct cfg_account *a, const struct store_pop3 *r, int64_t date)
{
	if (a->prefetch == CFG_PREFETCH_NONE)
		return r->size == 0;
	if (a->prefetch == CFG_PREFETCH_DAYS)
		return date >= time(NULL) - (int64_t)a->prefetch_days * 86400 || r->size == 0;
	return true;
}

/* The next row after *after whose body this pass should fetch: 0 (in *r), 1 none left,
 * -1 store error. */
static int
next_wanted(struct pass *ps, int64_t *after, struct store_pop3 *r)
{
	for (;;) {
		int fr = store_pop3_next(ps->store, ps->folder_id, *after, r);
		if (fr != 0)
			return fr;
		*after = r->msg_id;
		if (r->seen != ps->pass || r->has_body || r->dele == 2)
			continue;
		struct store_msg m;
		if (store_msg_get(ps->store, r->msg_id, &m) != 0 ||
		    !wanted(ps->p->acct, r, m.internaldate))
			continue;
		return 0;
	}
}

struct inflight {
	int64_t msg_id;
	uint32_t msgno;
};

/* RETR the bodies the cache lacks, in transactions of up to TXN_BODY_BYTES; up to a
 * window of RETRs in flight (q mirrors net/pop3's window with the row of each). */
static int
fetch_bodies(struct pass *ps)
{
	struct store_pop3 nx;
	struct inflight q[POP3_PIPE_MAX];
	unsigned qh = 0, qn = 0;
	bool have_next = false, listed_all = false;
	int64_t after = 0;
	uint64_t bytes_txn = 0;
	bool txn = false;
	int ret = -1;
	int64_t changed[64];
	unsigned nchanged = 0;
	set_phase(ps->p, "bodies");
	for (;;) {
		if (stopping(ps->p))
			goto out;
		for (;;) {
			if (!have_next && !listed_all) {
				int nr = next_wanted(ps, &after, &nx);
				if (nr < 0)
					goto out;
				listed_all = nr == 1;
				have_next = nr == 0;
			}
			if (!have_next || qn == POP3_PIPE_MAX ||
			    !pop3_window_room(ps->c, nx.size))
				break;
			if (pop3_send_retr(ps->c, nx.msgno, nx.size) != POP3_SUCCESS) {
				set_error(ps->p, pop3_errmsg(ps->c));
				goto out;
			}
			q[(qh + qn) % POP3_PIPE_MAX] = (struct inflight){nx.msg_id, nx.msgno};
			qn++;
			have_next = false;
		}
		if (qn == 0)
			break;
		struct inflight cur = q[qh];
		qh = (qh + 1) % POP3_PIPE_MAX;
		qn--;
		if (!txn) {
			if (store_begin(ps->store) < 0)
				goto out;
			txn = true;
		}
		bool changed_size = false;
		uint64_t got = 0;
		int rr = retr_to_store(ps->p, ps->store, ps->c, cur.msgno, cur.msg_id,
				       &changed_size, &got);
		if (rr == -3) {
			/* This message only: its body stays uncached, tried again next pass. */
			char msg[700];
			snprintf(msg, sizeof(msg), "RETR %u: %s", cur.msgno, pop3_errmsg(ps->c));
			set_error(ps->p, msg);
			ps->refused++;
			continue;
		}
		if (rr == -2) {
			set_error(ps->p, pop3_errmsg(ps->c));
			goto out;
		}
		if (rr < 0)
			goto out;
		if (changed_size && nchanged < 64)
			changed[nchanged++] = cur.msg_id;
		pthread_mutex_lock(&ps->p->mu);
		ps->p->st.bodies_done++;
		ps->p->st.body_bytes_done += got;
		pthread_mutex_unlock(&ps->p->mu);
		bytes_txn += got;
		if (bytes_txn >= TXN_BODY_BYTES || nchanged == 64) {
			if (store_commit(ps->store) < 0)
				goto out;
			txn = false;
			bytes_txn = 0;
			for (unsigned i = 0; i < nchanged; i++)
				ps->p->hooks.msg_changed(ps->p->hctx, changed[i]);
			nchanged = 0;
		}
	}
	ret = 0;
out:
	if (txn && store_commit(ps->store) < 0) {
		store_rollback(ps->store);
		ret = -1;
	}
	for (unsigned i = 0; i < nchanged; i++)
		ps->p->hooks.msg_changed(ps->p->hctx, changed[i]);
	return ret;
}

/* after_cache: DELE every listed message whose body is durably cached. The caller QUITs. */
static int
delete_cached(struct pass *ps, unsigned *n_r)
{
	/* Everything committed so far reaches the disk before any DELE is sent. */
	if (store_sync(ps->store) < 0)
		return -1;
	struct store_pop3 r;
	int64_t after = 0;
	int fr;
	while ((fr = store_pop3_next(ps->store, ps->folder_id, after, &r)) == 0) {
		after = r.msg_id;
		if (r.seen != ps->pass || !r.has_body || r.dele == 2)
			continue;
		if (r.dele == 0 && store_pop3_set_dele(ps->store, r.msg_id, 1) < 0)
			return -1;
		if (pop3_dele(ps->c, r.msgno) != POP3_SUCCESS) {
			set_error(ps->p, pop3_errmsg(ps->c));
			return -2;
		}
		(*n_r)++;
	}
	return fr < 0 ? -1 : 0;
}

static int
do_pass(struct pop3_sync *p, struct store *s)
{
	char err[512];
	struct pass ps = {.p = p, .store = s};
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	ps.pass = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
	set_phase(p, "connecting");
	ps.c = session(p, NULL, IO_MS, err, sizeof(err));
	if (ps.c == NULL) {
		set_error(p, err);
		return -2;
	}
	int ret = -1;
	struct store_folder f;
	if (ensure_inbox(s, p, &f) < 0)
		goto out;
	ps.folder_id = f.id;
	set_phase(p, "listing");
	enum pop3_err e = pop3_uidl(ps.c, uidl_listed, &ps);
	if (e != POP3_SUCCESS || ps.failed) {
		set_error(p, e == POP3_SUCCESS ? store_errmsg(s) : pop3_errmsg(ps.c));
		ret = e == POP3_SUCCESS ? -1 : -2;
		goto out;
	}
	/* A UIDL listed twice: every occurrence but the first (by number) is a duplicate. */
	if (ps.nnew > 1) {
		qsort(ps.nw, ps.nnew, sizeof(*ps.nw), cmp_uidl);
		for (size_t i = 1; i < ps.nnew; i++)
			if (strcmp(ps.nw[i].uidl, ps.nw[i - 1].uidl) == 0)
				ps.nw[i].dup = true;
		qsort(ps.nw, ps.nnew, sizeof(*ps.nw), cmp_msgno);
	}
	if (ps.nnew > 0 && (e = pop3_list(ps.c, size_listed, &ps)) != POP3_SUCCESS) {
		set_error(p, pop3_errmsg(ps.c));
		ret = -2;
		goto out;
	}
	set_phase(p, "headers");
	int added = 0, removed = 0;
	if (add_new(&ps, &f, &added) < 0) {
		ret = -2;
		goto out;
	}
	if (store_begin(s) < 0)
		goto out;
	if (remove_gone(&ps, &removed) < 0) {
		store_rollback(s);
		goto out;
	}
	if (store_commit(s) < 0)
		goto out;
	if (added > 0 || removed > 0)
		p->hooks.folder_changed(p->hctx, ps.folder_id);
	if (fetch_bodies(&ps) < 0) {
		ret = -2;
		goto out;
	}
	unsigned dels = 0;
	if (p->acct->pop3_delete == CFG_POP3_DELETE_AFTER_CACHE) {
		int d = delete_cached(&ps, &dels);
		if (d < 0) {
			ret = d;
			goto out;
		}
	}
	/* RFC 1939 §6: the DELEs take effect now, in the UPDATE state. */
	if (pop3_quit(ps.c) != POP3_SUCCESS) {
		set_error(p, pop3_errmsg(ps.c));
		ret = -2;
		goto out;
	}
	if (dels > 0)
		log_info("account '%s': %u message(s) deleted on the server (cached)", p->acct->name,
			 dels);
	pthread_mutex_lock(&p->mu);
	p->st.folders = 1;
	p->st.passes++;
	p->st.last_sync_time = time(NULL);
	if (ps.refused == 0)
		p->st.last_error[0] = '\0'; /* else the last refusal stays shown */
	pthread_mutex_unlock(&p->mu);
	if (ps.refused > 0)
		log_warn("account '%s': the server refused %u message(s) this pass; they are "
			 "tried again next pass",
			 p->acct->name, ps.refused);
	ret = 0;
out:
	pop3_close(&ps.c);
	free(ps.nw);
	return ret;
}

static void *
sync_main(void *arg)
{
	struct pop3_sync *p = arg;
	char err[512];
	struct store *s = NULL;
	if (store_open(p->cache_dir, &s, err, sizeof(err)) < 0 || store_pop3_init(s) < 0) {
		set_error(p, s ? store_errmsg(s) : err);
		store_close(&s);
		return NULL;
	}
	unsigned backoff = 1;
	bool was_offline = false;
	while (!stopping(p)) {
		int r = do_pass(p, s);
		pthread_mutex_lock(&p->mu);
		if (r == 0)
			p->st.first_pass_done = true;
		pthread_cond_broadcast(&p->cond);
		pthread_mutex_unlock(&p->mu);
		if (r == 0) {
			if (was_offline && p->hooks.back_online)
				p->hooks.back_online(p->hctx, p->account_id);
			was_offline = false;
			backoff = 1;
			set_phase(p, "idle");
			if (wait_for(p, p->acct->poll_seconds))
				break;
		} else {
			if (r == -1)
				set_error(p, store_errmsg(s));
			pthread_mutex_lock(&p->mu);
			bool online = p->st.online;
			pthread_mutex_unlock(&p->mu);
			was_offline = was_offline || !online;
			set_phase(p, online ? "error" : "offline");
			if (wait_for(p, backoff))
				break;
			backoff = backoff * 2 > BACKOFF_MAX ? BACKOFF_MAX : backoff * 2;
		}
	}
	store_close(&s);
	return NULL;
}

struct pop3_sync *
pop3_sync_start(const struct cfg_account *acct, const char *cache_dir, int64_t account_id,
		int64_t top_id, const struct sync_hooks *hooks, void *hooks_ctx, char *err,
		size_t errlen)
{
	struct pop3_sync *p = calloc(1, sizeof(*p));
	if (p == NULL || (p->cache_dir = strdup(cache_dir)) == NULL) {
		free(p);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	p->acct = acct;
	p->account_id = account_id;
	p->top_id = top_id;
	p->hooks = *hooks;
	p->hctx = hooks_ctx;
	pthread_mutex_init(&p->mu, NULL);
	pthread_mutex_init(&p->op_mu, NULL);
	pthread_cond_init(&p->cond, NULL);
	snprintf(p->phase, sizeof(p->phase), "starting");
	p->st.phase = p->phase;
	int e = pthread_create(&p->thread, NULL, sync_main, p);
	if (e != 0) {
		snprintf(err, errlen, "account '%s': cannot start its sync thread: %s", acct->name,
			 strerror(e));
		pop3_sync_stop(&p);
		return NULL;
	}
	p->started = true;
	return p;
}

void
pop3_sync_stop(struct pop3_sync **pp)
{
	struct pop3_sync *p = *pp;
	if (p == NULL)
		return;
	pthread_mutex_lock(&p->mu);
	p->stop = true;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->mu);
	if (p->started)
		pthread_join(p->thread, NULL);
	cfg_secret_free(&p->password);
	pthread_mutex_destroy(&p->mu);
	pthread_mutex_destroy(&p->op_mu);
	pthread_cond_destroy(&p->cond);
	free(p->cache_dir);
	free(p);
	*pp = NULL;
}

/* ---- on-demand sessions ------------------------------------------------------------ */

struct find {
	const char *uidl; /* the identity's first word */
	size_t len;
	uint32_t msgno;
};

static int
find_listed(void *ctx, uint32_t msgno, const char *uidl)
{
	struct find *f = ctx;
	if (f->msgno == 0 && strlen(uidl) == f->len && memcmp(uidl, f->uidl, f->len) == 0)
		f->msgno = msgno;
	return 0;
}

/* Open a session and find the message's number in it. SYNC_READ_OK with *c_r open. */
static enum sync_read_result
locate(struct pop3_sync *p, struct store *s, int64_t msg_id, struct store_pop3 *r,
       struct pop3 **c_r)
{
	char err[512];
	if (store_pop3_get(s, msg_id, r) != 0)
		return SYNC_READ_GONE;
	if (r->dele == 2)
		return SYNC_READ_GONE;
	struct pop3 *c = session(p, "read", READ_IO_MS, err, sizeof(err));
	if (c == NULL) {
		set_error(p, err);
		return SYNC_READ_OFFLINE;
	}
	struct find f = {.uidl = r->uidl, .len = strcspn(r->uidl, " ")};
	if (pop3_uidl(c, find_listed, &f) != POP3_SUCCESS) {
		set_error(p, pop3_errmsg(c));
		pop3_close(&c);
		return SYNC_READ_ERROR;
	}
	if (f.msgno == 0) {
		(void)pop3_quit(c);
		pop3_close(&c);
		return SYNC_READ_GONE;
	}
	r->msgno = f.msgno;
	*c_r = c;
	return SYNC_READ_OK;
}

static enum sync_read_result
with_store(struct pop3_sync *p, struct store **s_r)
{
	char err[512];
	if (store_open(p->cache_dir, s_r, err, sizeof(err)) < 0 || store_pop3_init(*s_r) < 0) {
		set_error(p, *s_r ? store_errmsg(*s_r) : err);
		store_close(s_r);
		return SYNC_READ_ERROR;
	}
	return SYNC_READ_OK;
}

enum sync_read_result
pop3_sync_fetch(struct pop3_sync *p, int64_t msg_id)
{
	struct store *s = NULL;
	enum sync_read_result res = with_store(p, &s);
	if (res != SYNC_READ_OK)
		return res;
	pthread_mutex_lock(&p->op_mu);
	struct store_pop3 r;
	struct pop3 *c = NULL;
	if (store_pop3_get(s, msg_id, &r) == 0 && r.has_body) {
		res = SYNC_READ_OK; /* the sync thread got it meanwhile */
		goto out;
	}
	res = locate(p, s, msg_id, &r, &c);
	if (res != SYNC_READ_OK)
		goto out;
	bool changed = false;
	uint64_t got = 0;
	int rr = -2;
	if (pop3_send_retr(c, r.msgno, r.size) == POP3_SUCCESS)
		rr = retr_to_store(p, s, c, r.msgno, msg_id, &changed, &got);
	if (rr == -2 || rr == -3)
		set_error(p, pop3_errmsg(c));
	else if (rr == -1)
		set_error(p, store_errmsg(s));
	res = rr == 0 ? SYNC_READ_OK : SYNC_READ_ERROR;
	(void)pop3_quit(c);
	if (rr == 0) {
		pthread_mutex_lock(&p->mu);
		p->st.ondemand_reads++;
		p->st.ondemand_bytes += got;
		pthread_mutex_unlock(&p->mu);
		if (changed)
			p->hooks.msg_changed(p->hctx, msg_id);
	}
out:
	pop3_close(&c);
	pthread_mutex_unlock(&p->op_mu);
	store_close(&s);
	return res;
}

enum sync_read_result
pop3_sync_delete(struct pop3_sync *p, int64_t msg_id)
{
	struct store *s = NULL;
	enum sync_read_result res = with_store(p, &s);
	if (res != SYNC_READ_OK)
		return res;
	pthread_mutex_lock(&p->op_mu);
	struct store_pop3 r;
	struct pop3 *c = NULL;
	res = locate(p, s, msg_id, &r, &c);
	if (res == SYNC_READ_OK) {
		if (pop3_dele(c, r.msgno) != POP3_SUCCESS || pop3_quit(c) != POP3_SUCCESS) {
			set_error(p, pop3_errmsg(c));
			res = SYNC_READ_ERROR;
		}
	}
	if ((res == SYNC_READ_OK || res == SYNC_READ_GONE) && store_msg_delete(s, msg_id) < 0) {
		set_error(p, store_errmsg(s));
		res = SYNC_READ_ERROR;
	}
	pop3_close(&c);
	pthread_mutex_unlock(&p->op_mu);
	store_close(&s);
	return res;
}
