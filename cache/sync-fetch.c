/* sync-fetch.c - FETCH responses of the sync connection into the store (see sync-int.h).
 *
 * Metadata rows are written in transactions of at most TXN_ROWS; bodies stream from the
 * socket into the store, committed every TXN_BODIES bodies, TXN_BODY_BYTES bytes or
 * TXN_MS, so readers never wait long on the write lock.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cache/names.h"
#include "cache/setaside.h"
#include "cache/sync-int.h"
#include "net/imap-date.h"
#include "net/log.h"
#include "net/mail-header.h"

/* ---- transactions ----------------------------------------------------------------- */

int
pass_txn_begin(struct pass *p)
{
	if (p->in_txn)
		return 0;
	if (store_begin(p->store) < 0)
		return -1;
	p->in_txn = true;
	clock_gettime(CLOCK_MONOTONIC, &p->txn_start);
	return 0;
}

int
pass_txn_commit(struct pass *p)
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
	if (r < 0 || pass_txn_begin(p) < 0)
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
	if (uid != 0 && p->f != NULL) {
		p->stream_uid = uid;
		p->stream_folder = p->f->id;
	}
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
		sync_count(p->s, &p->s->st.body_bytes_done, len);
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

/* After a UIDVALIDITY change: the message we had under its old UID (same Message-ID and
 * size) takes the new one and keeps its name and body; else it is a new row. */
static int
adopt_row(struct pass *p, struct store_msg *m)
{
	struct store_msg a;
	int r = pass_txn_begin(p) < 0 ? -1
				      : store_msg_adopt(p->store, p->f->id, m->message_id, m->size,
							m->uid, &a);
	if (r == 0 && store_msg_set_flags(p->store, a.id, m->flags, m->modseq) < 0)
		r = -1;
	if (r == 1) {
		r = store_msg_upsert(p->store, m);
		if (r < 0 && store_name_taken(p->store)) {
			other_name(m->name, m->uid);
			r = store_msg_upsert(p->store, m);
		}
		if (r == 0) {
			p->folder_grew = true;
			sync_count(p->s, &p->s->st.headers_done, 1);
		}
	} else if (r == 0 && strcmp(a.flags, m->flags) != 0) {
		note_changed(p, a.id);
	}
	if (r < 0 || (++p->rows_in_txn >= TXN_ROWS && pass_txn_commit(p) < 0)) {
		log_warn("account %s: cannot store UID %u of %s: %s", p->s->acct->name, m->uid,
			 p->f->server_name, store_errmsg(p->store));
		p->failed = true;
		return -1;
	}
	return 0;
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
	if (!existed && p->adopt)
		return adopt_row(p, &m);
	int up = pass_txn_begin(p) < 0 ? -1 : store_msg_upsert(p->store, &m);
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
		sync_count(p->s, &p->s->st.headers_done, 1);
	} else if (strcmp(old.flags, m.flags) != 0) {
		note_changed(p, old.id);
	}
	if (++p->rows_in_txn >= TXN_ROWS && pass_txn_commit(p) < 0) {
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
	if (pass_txn_begin(p) < 0 || store_msg_set_flags(p->store, m.id, flags, modseq) < 0) {
		p->failed = true;
		return -1;
	}
	if (strcmp(flags, m.flags) != 0)
		note_changed(p, m.id);
	if (++p->rows_in_txn >= TXN_ROWS && pass_txn_commit(p) < 0) {
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
	if (p->aside_rows > 0 && p->aside_folder == p->f->id &&
	    store_aside_clear(p->store, p->f->id, uid) < 0) {
		p->failed = true;
		return -1;
	}
	sync_count(p->s, &p->s->st.bodies_done, 1);
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	int64_t ms = (now.tv_sec - p->txn_start.tv_sec) * 1000 +
		     (now.tv_nsec - p->txn_start.tv_nsec) / 1000000;
	if ((++p->bodies_in_txn >= TXN_BODIES || p->bytes_in_txn >= TXN_BODY_BYTES ||
	     ms >= TXN_MS) && pass_txn_commit(p) < 0) {
		p->failed = true;
		return -1;
	}
	return pass_txn_begin(p);
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
		sync_count(p->s, &p->s->st.headers_done, 1);
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
	p->stream_uid = 0; /* the response came whole */
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
		/* A set-aside message comes without its header fields. */
		if (imap_fetch_find(attrs, n, "INTERNALDATE") != NULL)
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

const struct imap_fetch_handler sync_pass_handler = {
	.body_begin = on_body_begin,
	.body_data = on_body_data,
	.body_end = on_body_end,
	.fetch = on_fetch,
	.vanished = pass_vanished,
};

/* ---- UID sets ---------------------------------------------------------------------- */


/* Append "a" or "a:b" to a UID set string. */
void
uid_set_append(struct buf *b, uint32_t a, uint32_t z)
{
	if (b->len > 0)
		buf_append(b, ",", 1);
	if (a == z)
		buf_printf(b, "%u", a);
	else
		buf_printf(b, "%u:%u", a, z);
}

/* Send UID FETCH commands for `uids` (ascending) in batches. */
int
pass_fetch_uids(struct pass *p, const uint32_t *uids, size_t n, const char *items)
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
			uid_set_append(&set, uids[i], uids[j]);
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
		sync_set_error(p->s, p->failed ? store_errmsg(p->store) : imap_errmsg(p->c));
	return ret;
}
