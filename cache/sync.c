/* sync.c - the per-account sync thread and the on-demand readers (see sync.h).
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
#include <strings.h>
#include <time.h>

#include "cache/account.h"
#include "cache/idle.h"
#include "cache/journal.h"
#include "cache/names.h"
#include "cache/replay.h"
#include "cache/store.h"
#include "net/buf.h"
#include "net/imap-date.h"
#include "net/imap.h"
#include "net/log.h"
#include "net/mail-header.h"

#define HEADER_BATCH 250       /* UIDs per metadata UID FETCH */
#define TXN_ROWS 500           /* metadata rows per transaction */
#define TXN_BODIES 100         /* bodies per transaction */
#define TXN_BODY_BYTES (16u << 20)
#define TXN_MS 1000 /* and at most this long: the write lock waits on the network */
#define READERS 2
#define BACKOFF_MAX 300
#define SYNC_IO_MS 60000 /* each wait of the sync thread's connection */
#define READ_IO_MS 4000  /* each wait of an on-demand read: a stalled server is EIO soon */

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

/* Per-pass state of the sync thread (only that thread touches it). */
struct pass {
	struct sync *s;
	struct store *store;
	struct imap *c;
	bool condstore;
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
};

/* ---- status ---------------------------------------------------------------------- */

static int64_t
now_s(void)
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

static void
set_error(struct sync *s, const char *msg)
{
	pthread_mutex_lock(&s->mu);
	snprintf(s->st.last_error, sizeof(s->st.last_error), "%s", msg);
	s->st.last_error_time = now_s();
	pthread_mutex_unlock(&s->mu);
	log_warn("account %s: %s", s->acct->name, msg);
}

static void
count(struct sync *s, uint64_t *field, uint64_t n)
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
	pthread_mutex_lock(&s->mu);
	if (s->password == NULL && cfg_password(a, &s->password, err, errlen) < 0) {
		pthread_mutex_unlock(&s->mu);
		imap_close(&c);
		return NULL;
	}
	enum imap_err e = account_imap_login(c, a, s->password, err, errlen);
	if (e == IMAP_ERR_AUTH)
		cfg_secret_free(&s->password); /* ask password_cmd again next time */
	pthread_mutex_unlock(&s->mu);
	if (e != IMAP_OK) {
		imap_close(&c);
		return NULL;
	}
	conn_set_timeout(imap_conn(c), io_ms);
	return c;
}

/* ---- transactions ----------------------------------------------------------------- */

static int
txn_begin(struct pass *p)
{
	if (p->in_txn)
		return 0;
	if (store_begin(p->store) < 0)
		return -1;
	p->in_txn = true;
	clock_gettime(CLOCK_MONOTONIC, &p->txn_start);
	return 0;
}

static int
txn_commit(struct pass *p)
{
	if (!p->in_txn)
		return 0;
	p->in_txn = false;
	if (store_commit(p->store) < 0) {
		store_rollback(p->store);
		return -1;
	}
	/* Tell the file system what changed, now that it is visible. */
	if (p->folder_grew && p->s->hooks.folder_changed)
		p->s->hooks.folder_changed(p->s->hctx, p->f->id);
	p->folder_grew = false;
	for (unsigned i = 0; i < p->nchanged; i++)
		if (p->s->hooks.msg_changed)
			p->s->hooks.msg_changed(p->s->hctx, p->changed_msgs[i]);
	p->nchanged = 0;
	p->rows_in_txn = 0;
	p->bodies_in_txn = 0;
	p->bytes_in_txn = 0;
	return 0;
}

static void
note_changed(struct pass *p, int64_t msg_id)
{
	if (p->nchanged < sizeof(p->changed_msgs) / sizeof(p->changed_msgs[0]))
		p->changed_msgs[p->nchanged++] = msg_id;
}

/* ---- FETCH handling --------------------------------------------------------------- */

static void
flags_to_string(const struct imap_arg *fl, char *out, size_t outlen)
{
	size_t o = 0;
	out[0] = '\0';
	if (fl == NULL || fl->type != IMAP_ARG_LIST)
		return;
	for (size_t i = 0; i < fl->len; i++) {
		const struct imap_arg *a = &fl->list[i];
		if (a->type != IMAP_ARG_ATOM)
			continue;
		/* \Recent belongs to one session, not to the message. */
		if (a->len == 7 && strncasecmp(a->str, "\\Recent", 7) == 0)
			continue;
		if (o + a->len + 2 >= outlen)
			break;
		if (o > 0)
			out[o++] = ' ';
		memcpy(out + o, a->str, a->len);
		o += a->len;
		out[o] = '\0';
	}
}

static uint64_t
modseq_of(const struct imap_arg *attrs, size_t n)
{
	const struct imap_arg *m = imap_fetch_find(attrs, n, "MODSEQ");
	uint64_t v = 0;
	if (m != NULL && m->type == IMAP_ARG_LIST && m->len == 1)
		(void)imap_arg_u64(&m->list[0], &v);
	return v;
}

static int
full_begin(struct pass *p, uint32_t uid, uint64_t size)
{
	struct store_msg m;
	int r = store_msg_by_uid(p->store, p->f->id, uid, &m);
	if (r < 0 || txn_begin(p) < 0)
		goto fail;
	p->w_new = r == 1;
	if (p->w_new) {
		memset(&m, 0, sizeof(m));
		m.folder_id = p->f->id;
		m.uid = uid;
		m.size = size;
		const char *d = imap_fetch_attr_now(p->c, "INTERNALDATE");
		if (d == NULL || imap_date_parse(d, &m.internaldate) < 0)
			m.internaldate = 0;
		/* Provisional: named when the response ends, before the transaction commits. */
		snprintf(m.name, sizeof(m.name), "%%pending-%u", uid);
		if (store_msg_upsert(p->store, &m) < 0)
			goto fail;
	}
	if (store_body_begin(p->store, m.id, size, &p->w, &p->w_size_changed) < 0)
		goto fail;
	p->w_uid = uid;
	p->w_msg = m.id;
	buf_reset(&p->hdr);
	p->cap_hdr = true;
	return 0;
fail:
	p->failed = true;
	return -1;
}

static int
on_body_begin(void *ctx, uint32_t seq, uint32_t uid, const char *section, uint64_t size)
{
	struct pass *p = ctx;
	(void)seq;
	if (strncasecmp(section, "BODY[HEADER", 11) == 0) {
		buf_reset(&p->hdr);
		p->in_hdr = true;
		return 0;
	}
	p->in_hdr = false;
	if (p->w != NULL) /* the last body never got its FETCH end: drop it */
		store_body_end(&p->w, false);
	if (p->mode == MODE_FULL && uid != 0 && strcasecmp(section, "BODY[]") == 0)
		return full_begin(p, uid, size);
	if (p->mode != MODE_BODIES || uid == 0)
		return 0; /* a body nobody asked for, or of unknown message: discarded */
	struct store_msg m;
	if (store_msg_by_uid(p->store, p->f->id, uid, &m) != 0)
		return 0;
	if (store_body_begin(p->store, m.id, size, &p->w, &p->w_size_changed) < 0) {
		p->failed = true;
		return -1;
	}
	p->w_uid = uid;
	p->w_msg = m.id;
	return 0;
}

static int
on_body_data(void *ctx, const unsigned char *data, size_t len)
{
	struct pass *p = ctx;
	if (p->in_hdr) {
		/* Header fields beyond 64 KiB are not needed for a name: keep the start. */
		size_t room = p->hdr.cap - p->hdr.len;
		(void)buf_append(&p->hdr, data, len < room ? len : room);
		return 0;
	}
	if (p->w != NULL) {
		if (store_body_write(p->w, data, len) < 0) {
			p->failed = true;
			return -1;
		}
		p->bytes_in_txn += len;
		count(p->s, &p->s->st.body_bytes_done, len);
	}
	if (p->cap_hdr) {
		/* Keep the header block (up to the empty line, at most the buffer's cap). */
		size_t old = p->hdr.len, room = p->hdr.cap - p->hdr.len;
		(void)buf_append(&p->hdr, data, len < room ? len : room);
		size_t from = old > 3 ? old - 3 : 0;
		if (p->hdr.len == p->hdr.cap ||
		    memmem(p->hdr.data + from, p->hdr.len - from, "\r\n\r\n", 4) != NULL ||
		    memmem(p->hdr.data + from, p->hdr.len - from, "\n\n", 2) != NULL)
			p->cap_hdr = false;
	}
	return 0;
}

static int
on_body_end(void *ctx)
{
	(void)ctx;
	return 0;
}

/* The name a message gets when its usual one is taken in the folder (a file the user
 * wrote or moved there may have any name): "-u<uid>" before ".eml". */
static void
other_name(char name[NAMES_MAX + 1], uint32_t uid)
{
	char tail[24];
	snprintf(tail, sizeof(tail), "-u%u.eml", uid);
	size_t n = strlen(name);
	if (n > 4 && strcmp(name + n - 4, ".eml") == 0)
		n -= 4;
	if (n + strlen(tail) > NAMES_MAX)
		n = NAMES_MAX - strlen(tail);
	while (n > 0 && ((unsigned char)name[n] & 0xc0) == 0x80)
		n--; /* not inside a UTF-8 sequence */
	snprintf(name + n, NAMES_MAX + 1 - n, "%s", tail);
}

static int
handle_headers(struct pass *p, uint32_t uid, const struct imap_arg *attrs, size_t n)
{
	const struct imap_arg *idate = imap_fetch_find(attrs, n, "INTERNALDATE");
	const struct imap_arg *size = imap_fetch_find(attrs, n, "RFC822.SIZE");
	struct store_msg m;
	memset(&m, 0, sizeof(m));
	m.folder_id = p->f->id;
	m.uid = uid;
	if (idate == NULL || imap_arg_str(idate) == NULL ||
	    imap_date_parse(imap_arg_str(idate), &m.internaldate) < 0)
		m.internaldate = 0;
	if (size == NULL || imap_arg_u64(size, &m.size) < 0)
		m.size = 0;
	flags_to_string(imap_fetch_find(attrs, n, "FLAGS"), m.flags, sizeof(m.flags));
	m.modseq = modseq_of(attrs, n);

	struct buf v;
	buf_init(&v, 8192);
	const char *hdr = p->hdr.data ? p->hdr.data : "";
	if (mail_header_get(hdr, p->hdr.len, "Subject", &v) < 0)
		buf_reset(&v);
	names_message(uid, m.internaldate, v.data, v.len, m.name);
	buf_reset(&v);
	if (mail_header_get(hdr, p->hdr.len, "Message-ID", &v) > 0)
		snprintf(m.message_id, sizeof(m.message_id), "%s", v.data);
	buf_free(&v);
	buf_reset(&p->hdr);

	struct store_msg old;
	bool existed = store_msg_by_uid(p->store, p->f->id, uid, &old) == 0;
	int up = txn_begin(p) < 0 ? -1 : store_msg_upsert(p->store, &m);
	if (up < 0 && !existed && store_name_taken(p->store)) {
		other_name(m.name, uid);
		up = store_msg_upsert(p->store, &m);
	}
	if (up < 0) {
		log_warn("account %s: cannot store UID %u of %s: %s", p->s->acct->name, uid,
			 p->f->server_name, store_errmsg(p->store));
		p->failed = true;
		return -1;
	}
	if (!existed) {
		p->folder_grew = true;
		count(p->s, &p->s->st.headers_done, 1);
	} else if (strcmp(old.flags, m.flags) != 0) {
		note_changed(p, old.id);
	}
	if (++p->rows_in_txn >= TXN_ROWS && txn_commit(p) < 0) {
		p->failed = true;
		return -1;
	}
	return 0;
}

static int
handle_flags(struct pass *p, uint32_t uid, const struct imap_arg *attrs, size_t n)
{
	const struct imap_arg *fl = imap_fetch_find(attrs, n, "FLAGS");
	if (fl == NULL)
		return 0;
	struct store_msg m;
	if (store_msg_by_uid(p->store, p->f->id, uid, &m) != 0)
		return 0; /* not known yet: the next pass fetches it */
	char flags[sizeof(m.flags)];
	flags_to_string(fl, flags, sizeof(flags));
	uint64_t modseq = modseq_of(attrs, n);
	if (strcmp(flags, m.flags) == 0 && modseq == m.modseq)
		return 0;
	if (txn_begin(p) < 0 || store_msg_set_flags(p->store, m.id, flags, modseq) < 0) {
		p->failed = true;
		return -1;
	}
	if (strcmp(flags, m.flags) != 0)
		note_changed(p, m.id);
	if (++p->rows_in_txn >= TXN_ROWS && txn_commit(p) < 0) {
		p->failed = true;
		return -1;
	}
	return 0;
}

static int
handle_body(struct pass *p, uint32_t uid)
{
	if (p->w == NULL)
		return 0;
	bool ok = p->w_uid == uid;
	int64_t msg = p->w_msg;
	bool changed = p->w_size_changed;
	if (store_body_end(&p->w, ok) < 0) {
		p->failed = true;
		return -1;
	}
	if (!ok)
		return 0;
	if (changed)
		note_changed(p, msg);
	count(p->s, &p->s->st.bodies_done, 1);
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	int64_t ms = (now.tv_sec - p->txn_start.tv_sec) * 1000 +
		     (now.tv_nsec - p->txn_start.tv_nsec) / 1000000;
	if ((++p->bodies_in_txn >= TXN_BODIES || p->bytes_in_txn >= TXN_BODY_BYTES ||
	     ms >= TXN_MS) && txn_commit(p) < 0) {
		p->failed = true;
		return -1;
	}
	return txn_begin(p);
}

static int
handle_full(struct pass *p, uint32_t uid, const struct imap_arg *attrs, size_t n)
{
	p->cap_hdr = false;
	if (p->w == NULL || p->w_uid != uid) {
		if (p->w != NULL && store_body_end(&p->w, false) < 0)
			goto fail;
		return 0;
	}
	char flags[sizeof(((struct store_msg *)0)->flags)];
	flags_to_string(imap_fetch_find(attrs, n, "FLAGS"), flags, sizeof(flags));
	uint64_t modseq = modseq_of(attrs, n);
	if (p->w_new) {
		int64_t idate = 0;
		const struct imap_arg *d = imap_fetch_find(attrs, n, "INTERNALDATE");
		if (d == NULL || imap_arg_str(d) == NULL || imap_date_parse(imap_arg_str(d), &idate) < 0)
			idate = 0;
		struct buf v;
		buf_init(&v, 8192);
		const char *hdr = p->hdr.data ? p->hdr.data : "";
		char name[NAMES_MAX + 1], mid[512] = "";
		if (mail_header_get(hdr, p->hdr.len, "Subject", &v) < 0)
			buf_reset(&v);
		names_message(uid, idate, v.data, v.len, name);
		buf_reset(&v);
		if (mail_header_get(hdr, p->hdr.len, "Message-ID", &v) > 0)
			snprintf(mid, sizeof(mid), "%s", v.data);
		buf_free(&v);
		int fin = store_msg_finish(p->store, p->w_msg, name, idate, flags, modseq, mid);
		if (fin < 0 && store_name_taken(p->store)) {
			other_name(name, uid);
			fin = store_msg_finish(p->store, p->w_msg, name, idate, flags, modseq, mid);
		}
		if (fin < 0)
			goto fail;
		p->folder_grew = true;
		count(p->s, &p->s->st.headers_done, 1);
	} else if (store_msg_set_flags(p->store, p->w_msg, flags, modseq) < 0) {
		goto fail;
	}
	buf_reset(&p->hdr);
	return handle_body(p, uid);
fail:
	log_warn("account %s: cannot store UID %u of %s: %s", p->s->acct->name, uid,
		 p->f->server_name, store_errmsg(p->store));
	p->failed = true;
	return -1;
}

static int
on_fetch(void *ctx, uint32_t seq, const struct imap_arg *attrs, size_t n)
{
	struct pass *p = ctx;
	(void)seq;
	const struct imap_arg *u = imap_fetch_find(attrs, n, "UID");
	uint32_t uid;
	if (u == NULL || imap_arg_u32(u, &uid) < 0 || uid == 0)
		return 0; /* without a UID we cannot place it */
	bool has_section = false;
	for (size_t i = 0; i + 1 < n; i += 2)
		if (attrs[i + 1].type == IMAP_ARG_STREAMED)
			has_section = true;
	switch (p->mode) {
	case MODE_HEADERS:
		if (has_section && imap_fetch_find(attrs, n, "INTERNALDATE") != NULL)
			return handle_headers(p, uid, attrs, n);
		return handle_flags(p, uid, attrs, n);
	case MODE_BODIES:
		if (has_section)
			return handle_body(p, uid);
		return handle_flags(p, uid, attrs, n);
	case MODE_FULL:
		if (has_section)
			return handle_full(p, uid, attrs, n);
		return handle_flags(p, uid, attrs, n);
	case MODE_FLAGS:
		return handle_flags(p, uid, attrs, n);
	default:
		return 0;
	}
}

static const struct imap_fetch_handler pass_handler = {
	.body_begin = on_body_begin,
	.body_data = on_body_data,
	.body_end = on_body_end,
	.fetch = on_fetch,
};

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

static int
list_folders(struct pass *p, struct seen_set *mailboxes)
{
	struct imap_mbox *list = NULL;
	size_t n = 0;
	struct seen_set seen = { 0 };
	int ret = -1;
	if (imap_list(p->c, &list, &n) != IMAP_OK) {
		set_error(p->s, imap_errmsg(p->c));
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

/* Append "a" or "a:b" to a UID set string. */
static void
set_append(struct buf *b, uint32_t a, uint32_t z)
{
	if (b->len > 0)
		buf_append(b, ",", 1);
	if (a == z)
		buf_printf(b, "%u", a);
	else
		buf_printf(b, "%u:%u", a, z);
}

/* Send UID FETCH commands for `uids` (ascending) in batches. */
static int
fetch_uids(struct pass *p, const uint32_t *uids, size_t n, const char *items)
{
	struct buf set;
	buf_init(&set, 4096);
	size_t i = 0;
	int ret = 0;
	while (i < n && ret == 0) {
		buf_reset(&set);
		size_t count_in = 0;
		while (i < n && count_in < HEADER_BATCH && set.len < 700) {
			size_t j = i;
			while (j + 1 < n && uids[j + 1] == uids[j] + 1 && count_in + (j - i) + 1 < HEADER_BATCH)
				j++;
			set_append(&set, uids[i], uids[j]);
			count_in += j - i + 1;
			i = j + 1;
		}
		unsigned id;
		if (imap_send(p->c, &id, "UID FETCH %s %s", set.data, items) != IMAP_OK)
			ret = -1;
	}
	buf_free(&set);
	if (ret == 0 && imap_wait_all(p->c) != IMAP_OK)
		ret = -1;
	if (p->failed)
		ret = -1;
	if (ret < 0)
		set_error(p->s, p->failed ? store_errmsg(p->store) : imap_errmsg(p->c));
	return ret;
}

static int
purge_folder(struct pass *p, int64_t folder_id)
{
	uint32_t *uids = NULL;
	size_t n = 0;
	if (store_msg_uids(p->store, folder_id, &uids, &n) < 0)
		return -1;
	int ret = 0;
	for (size_t i = 0; i < n && ret == 0; i++) {
		struct store_msg m;
		if (store_msg_by_uid(p->store, folder_id, uids[i], &m) != 0)
			continue;
		if (store_msg_delete(p->store, m.id) < 0)
			ret = -1;
		else if (p->s->hooks.msg_removed)
			p->s->hooks.msg_removed(p->s->hctx, folder_id, m.id, m.name);
	}
	free(uids);
	return ret;
}

/* Remove messages the server no longer has. */
static int
sync_expunged(struct pass *p)
{
	uint32_t *server = NULL, *local = NULL;
	size_t ns = 0, nl = 0;
	int ret = -1;
	if (imap_uid_search(p->c, "ALL", &server, &ns) != IMAP_OK) {
		set_error(p->s, imap_errmsg(p->c));
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

static int
sync_folder(struct pass *p, struct store_folder *f)
{
	struct imap_select_info si;
	p->f = f;
	if (imap_select(p->c, f->server_name, true, &si) != IMAP_OK) {
		if (conn_error(imap_conn(p->c)) != CONN_OK)
			return -1;
		log_warn("account %s: cannot open %s: %s", p->s->acct->name, f->server_name,
			 imap_errmsg(p->c));
		return 0; /* the folder may have just been deleted; the next listing tells */
	}
	if (f->uidvalidity != 0 && si.uidvalidity != f->uidvalidity) {
		log_info("account %s: %s: UIDVALIDITY changed, reading the folder again",
			 p->s->acct->name, f->server_name);
		if (purge_folder(p, f->id) < 0)
			return -1;
		if (p->s->hooks.folder_changed)
			p->s->hooks.folder_changed(p->s->hctx, f->id);
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
			set_error(p->s, imap_errmsg(p->c));
			return -1;
		}
		/* "n:*" always includes the last message, even below n. */
		size_t k = 0;
		for (size_t i = 0; i < n; i++)
			if (f->uidnext == 0 || uids[i] >= f->uidnext)
				uids[k++] = uids[i];
		/* With everything prefetched, metadata and body come in one FETCH. */
		bool full = p->s->acct->prefetch == CFG_PREFETCH_ALL;
		p->mode = full ? MODE_FULL : MODE_HEADERS;
		if (full)
			set_phase(p->s, "messages");
		int r = fetch_uids(p, uids, k,
				   !full ? items
				   : p->condstore ? "(UID FLAGS INTERNALDATE MODSEQ BODY.PEEK[])"
						  : "(UID FLAGS INTERNALDATE BODY.PEEK[])");
		free(uids);
		if (r < 0 || txn_commit(p) < 0)
			return -1;
	}
	/* Flag changes of the messages we had. */
	if (f->uidnext > 1 && f->messages > 0) {
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
			set_error(p->s, p->failed ? store_errmsg(p->store) : imap_errmsg(p->c));
			return -1;
		}
		if (txn_commit(p) < 0)
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
	if (a->prefetch == CFG_PREFETCH_NONE)
		return 0;
	int64_t since = a->prefetch == CFG_PREFETCH_DAYS
				? now_s() - (int64_t)a->prefetch_days * 86400
				: INT64_MIN;
	uint32_t uids[512];
	size_t n = 0;
	uint32_t after = 0;
	bool selected = false;
	p->f = f;
	for (;;) {
		if (store_msg_missing_bodies(p->store, f->id, after, uids, 512, &n) < 0)
			return -1;
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
		for (size_t i = 0; i < n; i++) {
			if (since != INT64_MIN) {
				struct store_msg m;
				if (store_msg_by_uid(p->store, f->id, uids[i], &m) != 0 ||
				    m.internaldate < since)
					continue;
			}
			uids[k++] = uids[i];
		}
		/* Bodies are placed by the UID sent before them in each response. */
		if (txn_begin(p) < 0 || fetch_uids(p, uids, k, "(UID BODY.PEEK[])") < 0)
			return -1;
		if (txn_commit(p) < 0)
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
		set_error(s, p->rp.error[0] ? p->rp.error : "connection lost while replaying changes");
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
			if (txn_commit(p) < 0)
				ret = -1;
		} else {
			store_rollback(p->store);
			p->in_txn = false;
		}
	}
	p->mode = MODE_NONE;
	p->failed = false;
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
		set_error(s, err);
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
			set_error(s, err);
			set_phase(s, "offline");
			if (wait_for(s, backoff))
				break;
			backoff = backoff * 2 > BACKOFF_MAX ? BACKOFF_MAX : backoff * 2;
			continue;
		}
		imap_set_fetch_handler(p.c, &pass_handler, &p);
		p.condstore = imap_has_cap(p.c, "CONDSTORE");
		if (p.condstore)
			(void)imap_enable(p.c, "CONDSTORE");
		pthread_mutex_lock(&s->mu);
		bool was_offline = s->known_offline;
		s->st.online = true;
		s->known_offline = false;
		pthread_mutex_unlock(&s->mu);
		if (was_offline && s->hooks.back_online)
			s->hooks.back_online(s->hctx, s->account_id);
		for (;;) {
			if (do_pass(&p) < 0)
				break;
			backoff = 1; /* a pass that fails makes the next attempt wait longer */
			pthread_mutex_lock(&s->mu);
			s->st.passes++;
			s->st.last_sync_time = now_s();
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

/* ---- on-demand reads -------------------------------------------------------------- */

struct read_ctx {
	unsigned char *buf;
	size_t len, got;
	bool seen;
};

static int
read_begin(void *ctx, uint32_t seq, uint32_t uid, const char *section, uint64_t size)
{
	struct read_ctx *r = ctx;
	(void)seq;
	(void)uid;
	(void)size;
	r->seen = strncasecmp(section, "BODY[]", 6) == 0;
	return 0;
}

static int
read_data(void *ctx, const unsigned char *data, size_t len)
{
	struct read_ctx *r = ctx;
	if (!r->seen)
		return 0;
	size_t room = r->len - r->got;
	size_t n = len < room ? len : room;
	memcpy(r->buf + r->got, data, n);
	r->got += n;
	return 0;
}

static const struct imap_fetch_handler read_handler = {
	.body_begin = read_begin,
	.body_data = read_data,
};

enum sync_read_result
sync_read(struct sync *s, const char *server_name, uint32_t uid, uint64_t offset, size_t len,
	  void *buf, size_t *got_r)
{
	*got_r = 0;
	pthread_mutex_lock(&s->mu);
	bool offline = s->known_offline;
	if (offline && now_s() - s->read_kick >= 5) {
		s->read_kick = now_s(); /* a user's read: reconnect now, at most every 5 s */
		s->kick = true;
		pthread_cond_broadcast(&s->cond);
	}
	pthread_mutex_unlock(&s->mu);
	if (offline)
		return SYNC_READ_OFFLINE;
	/* A free reader if there is one, else wait for the one this UID maps to. */
	struct reader *rd = NULL;
	for (int i = 0; i < READERS && rd == NULL; i++)
		if (pthread_mutex_trylock(&s->readers[i].mu) == 0)
			rd = &s->readers[i];
	if (rd == NULL) {
		rd = &s->readers[uid % READERS];
		pthread_mutex_lock(&rd->mu);
	}
	enum sync_read_result ret = SYNC_READ_ERROR;
	for (int attempt = 0; attempt < 2; attempt++) {
		char err[700];
		if (rd->c == NULL) {
			rd->c = sync_connect(s, "read", 1000, READ_IO_MS, err, sizeof(err));
			rd->selected[0] = '\0';
			if (rd->c == NULL) {
				log_warn("account %s: on-demand read: %s", s->acct->name, err);
				ret = SYNC_READ_OFFLINE;
				break;
			}
		}
		struct imap_select_info si;
		if (strcmp(rd->selected, server_name) != 0) {
			if (imap_select(rd->c, server_name, true, &si) != IMAP_OK) {
				enum conn_err se = conn_error(imap_conn(rd->c));
				if (se != CONN_OK) {
					imap_close(&rd->c);
					if (se == CONN_ERR_TIMEOUT)
						break;
					continue;
				}
				ret = SYNC_READ_GONE;
				break;
			}
			snprintf(rd->selected, sizeof(rd->selected), "%s", server_name);
		}
		struct read_ctx r = { .buf = buf, .len = len };
		imap_set_fetch_handler(rd->c, &read_handler, &r);
		unsigned id;
		enum imap_err e = imap_send(rd->c, &id, "UID FETCH %u (UID BODY.PEEK[]<%llu.%zu>)", uid,
					    (unsigned long long)offset, len);
		if (e == IMAP_OK)
			e = imap_wait(rd->c, id);
		imap_set_fetch_handler(rd->c, NULL, NULL);
		if (e == IMAP_OK) {
			*got_r = r.got;
			ret = r.seen ? SYNC_READ_OK : SYNC_READ_GONE;
			count(s, &s->st.ondemand_reads, 1);
			count(s, &s->st.ondemand_bytes, r.got);
			break;
		}
		enum conn_err ce = conn_error(imap_conn(rd->c));
		if (ce != CONN_OK)
			imap_close(&rd->c);
		/* A server that does not answer gets no second try: EIO within READ_IO_MS. */
		if (ce == CONN_OK || ce == CONN_ERR_TIMEOUT)
			break; /* else dropped: try once more on a new connection */
	}
	pthread_mutex_unlock(&rd->mu);
	return ret;
}
