/* change.c - changes made through the mount, applied to the rows and recorded in the
 * journal in one transaction each (see change.h, journal.h).
 *
 * The server identity of a message row, the thing a change may have to remove or move:
 *   SERVER: (folder_id, uid); MOVING: (orig_folder, orig_uid); SCRATCH and PENDING may
 *   carry (orig_folder, orig_uid), the server message their content replaces when they are
 *   committed or appended; DETACHED and plain scratch files have none.
 */
#include "cache/change.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cache/journal.h"
#include "cache/names.h"
#include "net/buf.h"
#include "net/imap-utf7.h"
#include "net/imap.h"
#include "net/log.h"
#include "net/mail-header.h"

#define COPY_CHUNK (128 * 1024)
#define HEADER_MAX (64 * 1024)

bool
change_is_message_name(const char *name)
{
	size_t n = strlen(name);
	return n > 4 && strcmp(name + n - 4, ".eml") == 0;
}

/* ---- transactions ---- */

/* durable: the commit waits for the disk (fsync(2) asked for it); otherwise it survives a
 * kill of the daemon at any point (WAL, synchronous = NORMAL), not a power loss. */
static int
begin(struct store *s, bool durable)
{
	if (store_durable(s, durable) < 0)
		return EIO;
	return store_begin(s) < 0 ? EIO : 0;
}

static int
fail(struct store *s, int e)
{
	log_warn("change: %s", store_errmsg(s));
	store_rollback(s);
	return e;
}

/* Rows are read before the write transaction and saved whole: another thread may have
 * changed the row in between (the close of a file committed by fs/closewatch.c while a
 * FUSE thread renames it or sets its flags), and saving the old copy would undo that, up
 * to losing the message. Called right after begin(): true if m is still what the row
 * holds; if not, the transaction is rolled back and the caller starts again. */
static bool
row_unchanged(struct store *s, const struct store_msg *m)
{
	struct store_msg now;
	if (store_msg_get(s, m->id, &now) == 0 && now.state == m->state &&
	    now.folder_id == m->folder_id && now.uid == m->uid && now.orig_uid == m->orig_uid &&
	    now.orig_folder == m->orig_folder && now.has_body == m->has_body &&
	    now.internaldate == m->internaldate && now.mtime_set == m->mtime_set &&
	    strcmp(now.name, m->name) == 0 && strcmp(now.flags, m->flags) == 0 &&
	    strcmp(now.prev_name, m->prev_name) == 0)
		return true;
	store_rollback(s);
	return false;
}
/* At most this many attempts (each lost to another thread's change of the same row). */
#define ROW_RETRIES 20

static int
commit(struct store *s)
{
	if (store_commit(s) < 0)
		return fail(s, EIO);
	return 0;
}

/* ---- identities ---- */

struct ident {
	int64_t folder_id;
	uint32_t uid;
};

static struct ident
server_ident(const struct store_msg *m)
{
	struct ident id = {0, 0};
	if (m->state == STORE_MSG_SERVER && m->uid > 0) {
		id.folder_id = m->folder_id;
		id.uid = m->uid;
	} else if (m->state != STORE_MSG_DETACHED && m->orig_uid > 0) {
		id.folder_id = m->orig_folder;
		id.uid = m->orig_uid;
	}
	return id;
}

/* Queue the removal of a server message (\Deleted + UID EXPUNGE). */
static int
queue_expunge(struct store *s, int64_t account_id, struct ident id)
{
	if (id.uid == 0)
		return 0;
	struct store_folder f;
	const char *name = "";
	if (store_folder_get(s, id.folder_id, &f) == 0)
		name = f.server_name;
	return journal_add(s, account_id, JOURNAL_EXPUNGE, 0, id.folder_id, name, id.uid) < 0 ? -1
											       : 0;
}

static int64_t
account_of_folder(struct store *s, int64_t folder_id)
{
	struct store_folder f;
	return store_folder_get(s, folder_id, &f) == 0 ? f.account_id : 0;
}

/* ---- scratch bytes ---- */

/* Copy the cached body of m into a new scratch file (first `limit` bytes). */
static int
body_to_scratch(struct store *s, const struct store_msg *m, uint64_t limit)
{
	int fd = store_scratch_open(s, m->id, true);
	if (fd < 0)
		return EIO;
	int e = 0;
	if (ftruncate(fd, 0) < 0)
		e = EIO;
	uint64_t want = limit < m->size ? limit : m->size;
	char *buf = want > 0 ? malloc(COPY_CHUNK) : NULL;
	if (want > 0 && buf == NULL)
		e = ENOMEM;
	for (uint64_t off = 0; e == 0 && off < want;) {
		size_t n = want - off < COPY_CHUNK ? (size_t)(want - off) : COPY_CHUNK, got = 0;
		int r = store_body_read(s, m->id, off, buf, n, &got);
		if (r != 0 || got == 0) {
			e = EIO; /* not cached: it cannot be rewritten offline */
			break;
		}
		if (pwrite(fd, buf, got, (off_t)off) != (ssize_t)got)
			e = EIO;
		off += got;
	}
	free(buf);
	close(fd);
	if (e != 0)
		store_scratch_remove(s, m->id);
	return e;
}

/* Make a message row a scratch row holding its first `keep` bytes (a write or truncate
 * into it): its server identity moves to orig_*, to be replaced when it is committed. */
static int
make_scratch(struct store *s, struct store_msg *m, uint64_t keep)
{
	if (m->state == STORE_MSG_SCRATCH)
		return 0;
	int e = body_to_scratch(s, m, keep);
	if (e != 0)
		return e;
	if ((e = begin(s, false)) != 0)
		return e;
	struct ident id = server_ident(m);
	m->orig_folder = id.folder_id;
	m->orig_uid = id.uid;
	m->state = STORE_MSG_SCRATCH;
	m->uid = 0;
	m->prev_name[0] = '\0';
	if (store_msg_save(s, m) < 0 || store_msg_drop_body(s, m->id, keep < m->size ? keep : m->size) < 0)
		return fail(s, EIO);
	return commit(s);
}

/* A folder that takes messages: 0, ENOENT, or EPERM (an account's directory, a
 * \Noselect one, the outbox). */
static int
mailbox_of(struct store *s, int64_t folder_id, struct store_folder *f)
{
	if (store_folder_get(s, folder_id, f) != 0)
		return ENOENT;
	return f->kind == STORE_FOLDER_MAILBOX ? 0 : EPERM;
}

int
change_create(struct store *s, int64_t folder_id, const char *name, struct store_msg *m)
{
	struct store_folder f;
	int r = mailbox_of(s, folder_id, &f);
	if (r != 0)
		return r;
	if (store_folder_lookup(s, folder_id, name, &f) == 0)
		return EEXIST;
	struct store_msg old;
	if (store_msg_lookup(s, folder_id, name, &old) == 0)
		return EEXIST;
	int e = begin(s, false);
	if (e != 0)
		return e;
	if (store_msg_new_local(s, folder_id, name, (int64_t)time(NULL), m) < 0)
		return fail(s, store_name_taken(s) ? EEXIST : EIO);
	if ((e = commit(s)) != 0)
		return e;
	int fd = store_scratch_open(s, m->id, true);
	if (fd < 0 || ftruncate(fd, 0) < 0) {
		if (fd >= 0)
			close(fd);
		return EIO;
	}
	close(fd);
	return 0;
}

int
change_write(struct store *s, int64_t msg_id, const void *data, size_t len, uint64_t off,
	     uint64_t *size_r)
{
	struct store_msg m;
	if (store_msg_get(s, msg_id, &m) != 0)
		return ENOENT;
	if (off + len > CHANGE_MAX_SIZE)
		return EFBIG;
	int e = make_scratch(s, &m, UINT64_MAX);
	if (e != 0)
		return e;
	int fd = store_scratch_open(s, msg_id, true);
	if (fd < 0)
		return EIO;
	ssize_t w = pwrite(fd, data, len, (off_t)off);
	struct stat st;
	if (w != (ssize_t)len || fstat(fd, &st) < 0) {
		close(fd);
		return EIO;
	}
	close(fd);
	*size_r = (uint64_t)st.st_size;
	return 0;
}

int
change_truncate(struct store *s, int64_t msg_id, uint64_t size)
{
	struct store_msg m;
	if (store_msg_get(s, msg_id, &m) != 0)
		return ENOENT;
	if (size > CHANGE_MAX_SIZE)
		return EFBIG;
	if (m.state != STORE_MSG_SCRATCH && size == m.size)
		return 0;
	int e = make_scratch(s, &m, size);
	if (e != 0)
		return e;
	int fd = store_scratch_open(s, msg_id, true);
	if (fd < 0)
		return EIO;
	e = ftruncate(fd, (off_t)size) < 0 ? EIO : 0;
	close(fd);
	return e;
}

int
change_set_mtime(struct store *s, int64_t msg_id, int64_t mtime)
{
	struct store_msg m;
	int tries = 0;
again:
	if (store_msg_get(s, msg_id, &m) != 0)
		return ENOENT;
	/* On the server already: its INTERNALDATE cannot change (accepted, like chmod). */
	if (m.state == STORE_MSG_SERVER || m.state == STORE_MSG_MOVING)
		return 0;
	int e = begin(s, false);
	if (e != 0)
		return e;
	if (!row_unchanged(s, &m)) {
		if (++tries < ROW_RETRIES)
			goto again;
		return EAGAIN;
	}
	m.internaldate = mtime;
	m.mtime_set = true;
	if (store_msg_save(s, &m) < 0)
		return fail(s, EIO);
	return commit(s);
}

/* ---- commit: a scratch *.eml becomes a message ---- */

/* A header block first: field-name ":" (RFC 5322 2.2: printable ASCII but ":"), and a
 * space or tab only in continuation lines. */
static bool
looks_like_message(const char *p, size_t n)
{
	if (n == 0)
		return false;
	size_t i = 0;
	while (i < n && p[i] != ':' && p[i] != '\n') {
		unsigned char c = (unsigned char)p[i];
		if (c <= 32 || c >= 127)
			return false;
		i++;
	}
	return i > 0 && i < n && p[i] == ':';
}

struct scratch_src {
	int fd;
	uint64_t off, size;
	char *buf;
	size_t len, pos;
	bool cr; /* the last byte handed out was a CR */
};

/* The scratch bytes with every LF not after a CR made CRLF; 0 at the end, -1 error. */
static ssize_t
crlf_read(struct scratch_src *src, char *out, size_t cap)
{
	size_t n = 0;
	while (n + 1 < cap) {
		if (src->pos == src->len) {
			if (src->off >= src->size)
				break;
			ssize_t r = pread(src->fd, src->buf, COPY_CHUNK, (off_t)src->off);
			if (r <= 0)
				return -1;
			src->off += (uint64_t)r;
			src->len = (size_t)r;
			src->pos = 0;
		}
		char c = src->buf[src->pos++];
		if (c == '\n' && !src->cr)
			out[n++] = '\r';
		out[n++] = c;
		src->cr = c == '\r';
	}
	return (ssize_t)n;
}

/* Size after the CRLF change, and the header block (up to HEADER_MAX) into hdr. */
static int
scan_scratch(int fd, uint64_t size, uint64_t *crlf_size_r, struct buf *hdr)
{
	char *buf = malloc(COPY_CHUNK);
	if (buf == NULL)
		return -1;
	uint64_t extra = 0;
	bool cr = false;
	for (uint64_t off = 0; off < size;) {
		ssize_t r = pread(fd, buf, COPY_CHUNK, (off_t)off);
		if (r <= 0) {
			free(buf);
			return -1;
		}
		for (ssize_t i = 0; i < r; i++) {
			if (buf[i] == '\n' && !cr)
				extra++;
			cr = buf[i] == '\r';
		}
		if (hdr->len < HEADER_MAX)
			(void)buf_append(hdr, buf,
					 (size_t)r < HEADER_MAX - hdr->len ? (size_t)r
									   : HEADER_MAX - hdr->len);
		off += (uint64_t)r;
	}
	free(buf);
	*crlf_size_r = size + extra;
	return 0;
}

static void
header_value(const struct buf *hdr, const char *field, char *out, size_t outlen)
{
	struct buf v;
	buf_init(&v, 4096);
	out[0] = '\0';
	size_t end = hdr->len;
	const char *sep = hdr->data ? memmem(hdr->data, hdr->len, "\n\n", 2) : NULL;
	const char *sep2 = hdr->data ? memmem(hdr->data, hdr->len, "\r\n\r\n", 4) : NULL;
	if (sep2 != NULL && (sep == NULL || sep2 < sep))
		sep = sep2;
	if (sep != NULL)
		end = (size_t)(sep - hdr->data) + 2;
	if (hdr->data != NULL && mail_header_get(hdr->data, end, field, &v) > 0 && v.data)
		snprintf(out, outlen, "%s", v.data);
	buf_free(&v);
}

int
change_commit(struct store *s, const struct change_acct *a, int64_t msg_id, bool sync)
{
	struct store_msg m;
	int tries = 0;
again:
	if (store_msg_get(s, msg_id, &m) != 0)
		return ENOENT;
	if (m.state != STORE_MSG_SCRATCH || !change_is_message_name(m.name))
		return 0;
	int fd = store_scratch_open(s, msg_id, false);
	if (fd < 0)
		return EIO;
	struct stat st;
	struct buf hdr;
	buf_init(&hdr, HEADER_MAX);
	uint64_t size = 0;
	int e = 0;
	if (fstat(fd, &st) < 0 || scan_scratch(fd, (uint64_t)st.st_size, &size, &hdr) < 0)
		e = EIO;
	else if (!looks_like_message(hdr.data, hdr.len))
		e = EINVAL;
	if (e != 0) {
		buf_free(&hdr);
		close(fd);
		if (e == EINVAL)
			log_info("%s: not a message (no header block): kept as a local file",
				 m.name);
		return e;
	}
	header_value(&hdr, "Message-ID", m.message_id, sizeof(m.message_id));
	buf_free(&hdr);

	struct store_body_writer *w = NULL;
	bool changed;
	struct scratch_src src = {.fd = fd, .size = (uint64_t)st.st_size};
	char *out = malloc(COPY_CHUNK * 2);
	src.buf = malloc(COPY_CHUNK);
	if (out == NULL || src.buf == NULL) {
		e = ENOMEM;
		goto out;
	}
	if ((e = begin(s, sync)) != 0)
		goto out;
	if (!row_unchanged(s, &m)) {
		free(out);
		free(src.buf);
		close(fd);
		if (++tries < ROW_RETRIES)
			goto again;
		return EAGAIN;
	}
	/* An editor's backup of the same name ("x.eml" renamed to "x.eml~" before the new
	 * x.eml was written): the new one replaces its server message. */
	struct store_msg shadow;
	if (m.orig_uid == 0 && store_msg_shadow(s, m.folder_id, m.name, &shadow) == 0 &&
	    shadow.id != m.id && shadow.state == STORE_MSG_SERVER) {
		m.orig_folder = shadow.folder_id;
		m.orig_uid = shadow.uid;
		if (m.flags[0] == '\0')
			snprintf(m.flags, sizeof(m.flags), "%s", shadow.flags);
		if (!m.mtime_set)
			m.internaldate = shadow.internaldate;
		shadow.state = STORE_MSG_DETACHED;
		shadow.uid = 0;
		shadow.prev_name[0] = '\0';
		if (store_msg_save(s, &shadow) < 0)
			goto fail;
	}
	if (store_body_begin(s, msg_id, size, &w, &changed) < 0)
		goto fail;
	for (;;) {
		ssize_t n = crlf_read(&src, out, COPY_CHUNK * 2);
		if (n < 0)
			goto fail;
		if (n == 0)
			break;
		if (store_body_write(w, out, (size_t)n) < 0)
			goto fail;
	}
	if (store_body_end(&w, true) < 0 || (sync && store_body_sync(s) < 0))
		goto fail;
	struct ident old = {m.orig_folder, m.orig_uid};
	m.state = STORE_MSG_PENDING;
	m.uid = 0;
	m.orig_folder = 0;
	m.orig_uid = 0;
	if (store_msg_save(s, &m) < 0 ||
	    journal_add(s, a->account_id, JOURNAL_APPEND, m.id, 0, "", 0) < 0 ||
	    queue_expunge(s, a->account_id, old) < 0)
		goto fail;
	e = commit(s);
	if (e == 0)
		store_scratch_remove(s, msg_id);
	goto out;
fail:
	if (w != NULL)
		store_body_end(&w, false);
	e = fail(s, EIO);
out:
	free(out);
	free(src.buf);
	close(fd);
	return e;
}

/* ---- rm ---- */

/* The account's Trash: `trash = NAME`, else the \Trash special-use folder, else "Trash";
 * made (CREATE queued) if there is none. */
static int
find_trash(struct store *s, const struct change_acct *a, struct store_folder *t)
{
	if (a->cfg->trash != NULL && store_folder_lookup(s, a->top_id, a->cfg->trash, t) == 0)
		return 0;
	if (store_folder_special(s, a->account_id, IMAP_MBOX_TRASH, t) == 0)
		return 0;
	if (store_folder_lookup(s, a->top_id, "Trash", t) == 0)
		return 0;
	int64_t id;
	if (change_mkdir(s, a, a->top_id, a->cfg->trash ? a->cfg->trash : "Trash", &id) != 0)
		return -1;
	return store_folder_get(s, id, t) == 0 ? 0 : -1;
}

/* A name free in folder_id: `name`, else "NAME-2.eml", "NAME-3.eml", ... */
static int
free_name(struct store *s, int64_t folder_id, const char *name, char *out, size_t outlen)
{
	struct store_msg x;
	snprintf(out, outlen, "%s", name);
	for (unsigned i = 2; store_msg_lookup(s, folder_id, out, &x) == 0; i++) {
		if (i > 1000)
			return -1;
		size_t n = strlen(name);
		bool eml = change_is_message_name(name);
		size_t stem = eml ? n - 4 : n;
		if (stem > STORE_NAME_MAX - 16)
			stem = STORE_NAME_MAX - 16;
		snprintf(out, outlen, "%.*s-%u%s", (int)stem, name, i, eml ? ".eml" : "");
	}
	return 0;
}

static int
remove_row(struct store *s, const struct store_msg *m)
{
	if (store_msg_delete(s, m->id) < 0)
		return -1;
	return 0;
}

int
change_unlink(struct store *s, const struct change_acct *a, int64_t folder_id,
	      const char *name, int64_t *trash_id_r)
{
	if (trash_id_r != NULL)
		*trash_id_r = 0;
	struct store_msg m;
	int tries = 0;
again:;
	int r = store_msg_lookup(s, folder_id, name, &m);
	if (r != 0)
		return r > 0 ? ENOENT : EIO;
	struct store_folder trash;
	bool to_trash = false;
	bool on_server = m.state == STORE_MSG_SERVER || m.state == STORE_MSG_MOVING ||
			 m.state == STORE_MSG_PENDING;
	if (on_server && a->cfg->delete_mode == CFG_DELETE_TRASH) {
		if (find_trash(s, a, &trash) < 0)
			return EIO;
		to_trash = trash.id != folder_id;
	}
	int e = begin(s, false);
	if (e != 0)
		return e;
	if (!row_unchanged(s, &m)) {
		if (++tries < ROW_RETRIES)
			goto again;
		return EAGAIN;
	}
	if (to_trash) {
		char nn[STORE_NAME_MAX + 1];
		if (free_name(s, trash.id, m.name, nn, sizeof(nn)) < 0)
			return fail(s, EIO);
		struct ident id = server_ident(&m);
		if (m.state == STORE_MSG_SERVER) {
			m.state = STORE_MSG_MOVING;
			m.orig_folder = id.folder_id;
			m.orig_uid = id.uid;
			m.uid = 0;
			if (journal_add(s, a->account_id, JOURNAL_MOVE, m.id, id.folder_id, "",
					id.uid) < 0)
				return fail(s, EIO);
		}
		/* MOVING: the queued MOVE goes to where the row is when it runs; PENDING: the
		 * APPEND goes there. */
		m.folder_id = trash.id;
		snprintf(m.name, sizeof(m.name), "%s", nn);
		m.prev_name[0] = '\0';
		if (store_msg_save(s, &m) < 0)
			return fail(s, EIO);
		if (trash_id_r != NULL)
			*trash_id_r = trash.id;
	} else {
		if (queue_expunge(s, a->account_id, server_ident(&m)) < 0 || remove_row(s, &m) < 0)
			return fail(s, EIO);
	}
	e = commit(s);
	if (e == 0 && m.state == STORE_MSG_SCRATCH)
		store_scratch_remove(s, m.id);
	return e;
}

/* ---- rename ---- */

int
change_rename_msg(struct store *s, const struct change_acct *a, int64_t folder_id,
		  const char *name, int64_t new_folder_id, const char *new_name, bool noreplace,
		  struct change_renamed *out)
{
	struct store_msg m, t;
	struct change_renamed info;
	memset(&info, 0, sizeof(info));
	/* Every row is read inside the write transaction, so none can change under it: one
	 * lock, one look at the WAL, where reading first and checking again took three. */
	int e = begin(s, false);
	if (e != 0)
		return e;
	int r = store_msg_lookup(s, folder_id, name, &m);
	if (r != 0)
		goto refuse_r;
	info.id = m.id;
	info.was_scratch = m.state == STORE_MSG_SCRATCH;
	info.state = m.state;
	if (out != NULL && out->take != NULL)
		info.was_dirty = out->take(m.id);
	struct store_folder nf;
	if (store_folder_get(s, new_folder_id, &nf) != 0) {
		e = ENOENT;
		goto refuse;
	}
	if (nf.account_id != a->account_id || nf.kind != STORE_FOLDER_MAILBOX) {
		e = nf.account_id != a->account_id ? EXDEV : EPERM; /* EXDEV: mv copies */
		goto refuse;
	}
	struct store_folder sub;
	if (store_folder_lookup(s, new_folder_id, new_name, &sub) == 0) {
		e = EISDIR;
		goto refuse;
	}
	r = store_msg_lookup(s, new_folder_id, new_name, &t);
	if (r < 0) {
		e = EIO;
		goto refuse;
	}
	bool replace = r == 0;
	if (replace && t.id == m.id) {
		e = 0;
		goto refuse;
	}
	if (replace && noreplace) {
		e = EEXIST;
		goto refuse;
	}
	if (replace) {
		/* The target's server message goes; a scratch row taking its place replaces it
		 * when committed (flags and date carried over). */
		struct ident tid = server_ident(&t);
		if (m.state == STORE_MSG_SCRATCH && m.orig_uid == 0) {
			m.orig_folder = tid.folder_id;
			m.orig_uid = tid.uid;
		} else if (queue_expunge(s, a->account_id, tid) < 0) {
			e = fail(s, EIO);
			goto out;
		}
		if (m.state == STORE_MSG_SCRATCH) {
			if (m.flags[0] == '\0')
				snprintf(m.flags, sizeof(m.flags), "%s", t.flags);
			if (!m.mtime_set)
				m.internaldate = t.internaldate;
		}
		if (remove_row(s, &t) < 0) {
			e = fail(s, EIO);
			goto out;
		}
	}
	if (new_folder_id != folder_id) {
		if (m.state == STORE_MSG_SERVER) {
			m.state = STORE_MSG_MOVING;
			m.orig_folder = m.folder_id;
			m.orig_uid = m.uid;
			m.uid = 0;
			if (journal_add(s, a->account_id, JOURNAL_MOVE, m.id, m.orig_folder, "",
					m.orig_uid) < 0) {
				e = fail(s, EIO);
				goto out;
			}
		} else if (m.state == STORE_MSG_MOVING && m.orig_folder == new_folder_id) {
			/* Moved back before the MOVE ran: nothing to do on the server. */
			m.state = STORE_MSG_SERVER;
			m.uid = m.orig_uid;
			m.orig_folder = 0;
			m.orig_uid = 0;
		}
		m.prev_name[0] = '\0';
	} else if (m.state == STORE_MSG_SERVER) {
		/* An editor renames x.eml to a backup name before writing the new x.eml. */
		if (change_is_message_name(name) && !change_is_message_name(new_name))
			snprintf(m.prev_name, sizeof(m.prev_name), "%s", name);
		else if (change_is_message_name(new_name))
			m.prev_name[0] = '\0';
	}
	m.folder_id = new_folder_id;
	snprintf(m.name, sizeof(m.name), "%s", new_name);
	if (store_msg_save(s, &m) < 0) {
		e = fail(s, store_name_taken(s) ? EEXIST : EIO);
		goto out;
	}
	if ((e = commit(s)) != 0)
		goto out;
	if (replace && t.state == STORE_MSG_SCRATCH)
		store_scratch_remove(s, t.id);
	info.state = m.state;
	if (m.state == STORE_MSG_SCRATCH && change_is_message_name(new_name)) {
		e = change_commit(s, a, m.id, false);
		struct store_msg now;
		if (e == 0 && store_msg_get(s, m.id, &now) == 0)
			info.state = now.state;
	}
	goto out;
refuse_r:
	e = r > 0 ? ENOENT : EIO;
refuse:
	store_rollback(s);
out:
	if (out != NULL) {
		info.take = out->take;
		*out = info;
	}
	return e;
}

/* ---- flags ---- */

/* flag-list members: "\Seen", keywords (atoms); \Recent cannot be set. */
static int
normalize_flags(const char *in, char *out, size_t outlen)
{
	size_t n = 0;
	out[0] = '\0';
	for (const char *p = in; *p;) {
		while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '(' || *p == ')')
			p++;
		if (*p == '\0')
			break;
		const char *q = p;
		while (*q && *q != ' ' && *q != '\t' && *q != '\n' && *q != '(' && *q != ')')
			q++;
		size_t len = (size_t)(q - p);
		for (size_t i = (*p == '\\'); i < len; i++) {
			unsigned char c = (unsigned char)p[i];
			if (c <= 32 || c >= 127 || strchr("(){%*\"\\]", c) != NULL)
				return EINVAL;
		}
		if (len == 1 && *p == '\\')
			return EINVAL;
		if (!(len == 7 && strncasecmp(p, "\\Recent", 7) == 0)) {
			if (n + len + 2 > outlen)
				return E2BIG;
			if (n > 0)
				out[n++] = ' ';
			memcpy(out + n, p, len);
			n += len;
			out[n] = '\0';
		}
		p = q;
	}
	return 0;
}

int
change_set_flags(struct store *s, const struct change_acct *a, int64_t msg_id,
		 const char *flags)
{
	struct store_msg m;
	int tries = 0;
again:
	if (store_msg_get(s, msg_id, &m) != 0)
		return ENOENT;
	char norm[sizeof(m.flags)];
	int e = normalize_flags(flags, norm, sizeof(norm));
	if (e != 0)
		return e;
	if ((e = begin(s, false)) != 0)
		return e;
	if (!row_unchanged(s, &m)) {
		if (++tries < ROW_RETRIES)
			goto again;
		return EAGAIN;
	}
	snprintf(m.flags, sizeof(m.flags), "%s", norm);
	if (store_msg_save(s, &m) < 0)
		return fail(s, EIO);
	/* A PENDING message's APPEND carries its flags, but it may be on its way already with
	 * the old ones: the entry (after the APPEND's) stores them once it has a UID. */
	if ((m.state == STORE_MSG_SERVER || m.state == STORE_MSG_MOVING ||
	     m.state == STORE_MSG_PENDING) &&
	    journal_add(s, a->account_id, JOURNAL_FLAGS, m.id, 0, "", 0) < 0)
		return fail(s, EIO);
	return commit(s);
}

/* ---- folders ---- */

struct delim_ctx {
	char delim;
};

static int
delim_of(void *ctx, const struct store_folder *f)
{
	struct delim_ctx *d = ctx;
	if (f->kind != STORE_FOLDER_MAILBOX && f->kind != STORE_FOLDER_DIR)
		return 0;
	if (f->delim != '\0') {
		d->delim = f->delim;
		return 1;
	}
	return 0;
}

char
change_delim(struct store *s, int64_t account_id)
{
	struct delim_ctx d = {'\0'};
	(void)store_folder_each(s, account_id, delim_of, &d);
	return d.delim ? d.delim : '/';
}

int
change_server_name(struct store *s, const struct store_folder *parent, char delim,
		   const char *name, char *out, size_t outlen)
{
	(void)s;
	char raw[STORE_NAME_MAX + 1];
	size_t len;
	if (names_folder_unescape(name, raw, sizeof(raw), &len) < 0 || strlen(raw) != len ||
	    len == 0 || memchr(raw, delim, len) != NULL)
		return EINVAL;
	char *enc = imap_utf7_encode(raw);
	if (enc == NULL)
		return EINVAL;
	int n;
	if (parent->kind == STORE_FOLDER_ACCOUNT)
		n = snprintf(out, outlen, "%s", enc);
	else
		n = snprintf(out, outlen, "%s%c%s", parent->server_name, delim, enc);
	free(enc);
	return n < 0 || (size_t)n >= outlen ? ENAMETOOLONG : 0;
}

int
change_mkdir(struct store *s, const struct change_acct *a, int64_t parent_id, const char *name,
	     int64_t *id_r)
{
	struct store_folder p, x;
	if (store_folder_get(s, parent_id, &p) != 0)
		return ENOENT;
	if (p.account_id != a->account_id || p.kind == STORE_FOLDER_OUTBOX)
		return EPERM;
	if (store_folder_lookup(s, parent_id, name, &x) == 0)
		return EEXIST;
	struct store_msg m;
	if (store_msg_lookup(s, parent_id, name, &m) == 0)
		return EEXIST;
	if (p.kind == STORE_FOLDER_ACCOUNT && strcmp(name, a->cfg->outbox) == 0)
		return EEXIST;
	char delim = p.delim ? p.delim : change_delim(s, a->account_id);
	char server[1024];
	int e = change_server_name(s, &p, delim, name, server, sizeof(server));
	if (e != 0)
		return e;
	if ((e = begin(s, false)) != 0)
		return e;
	int64_t id;
	if (store_folder_ensure(s, a->account_id, parent_id, name, STORE_FOLDER_MAILBOX, server,
				delim, 0, &id) < 0 ||
	    store_folder_get(s, id, &x) != 0)
		return fail(s, EIO);
	x.local = true;
	if (store_folder_save(s, &x) < 0 ||
	    journal_add(s, a->account_id, JOURNAL_CREATE, 0, id, server, 0) < 0)
		return fail(s, EIO);
	if ((e = commit(s)) != 0)
		return e;
	if (id_r != NULL)
		*id_r = id;
	return 0;
}

int
change_rmdir(struct store *s, const struct change_acct *a, int64_t parent_id, const char *name)
{
	struct store_folder f;
	int r = store_folder_lookup(s, parent_id, name, &f);
	if (r != 0)
		return r > 0 ? ENOENT : EIO;
	if (f.kind != STORE_FOLDER_MAILBOX && f.kind != STORE_FOLDER_DIR)
		return EPERM;
	if (strcmp(f.server_name, "INBOX") == 0)
		return EPERM;
	r = store_folder_busy(s, f.id);
	if (r != 0)
		return r > 0 ? ENOTEMPTY : EIO;
	int e = begin(s, false);
	if (e != 0)
		return e;
	if ((f.server_name[0] != '\0' &&
	     journal_add(s, a->account_id, JOURNAL_DELETE, 0, 0, f.server_name, 0) < 0) ||
	    store_folder_delete(s, f.id) < 0)
		return fail(s, EIO);
	return commit(s);
}

int
change_rename_folder(struct store *s, const struct change_acct *a, int64_t parent_id,
		     const char *name, int64_t new_parent_id, const char *new_name,
		     bool noreplace)
{
	struct store_folder f, np, t;
	int r = store_folder_lookup(s, parent_id, name, &f);
	if (r != 0)
		return r > 0 ? ENOENT : EIO;
	if (f.kind != STORE_FOLDER_MAILBOX && f.kind != STORE_FOLDER_DIR)
		return EPERM;
	if (strcmp(f.server_name, "INBOX") == 0)
		return EPERM;
	if (store_folder_get(s, new_parent_id, &np) != 0)
		return ENOENT;
	if (np.account_id != a->account_id || np.kind == STORE_FOLDER_OUTBOX)
		return EXDEV;
	/* Not into itself or below it. */
	for (int64_t p = new_parent_id; p != 0;) {
		if (p == f.id)
			return EINVAL;
		struct store_folder pf;
		if (store_folder_get(s, p, &pf) != 0)
			break;
		p = pf.parent_id;
	}
	struct store_msg m;
	if (store_msg_lookup(s, new_parent_id, new_name, &m) == 0)
		return ENOTDIR;
	bool replace = store_folder_lookup(s, new_parent_id, new_name, &t) == 0;
	if (replace && (noreplace || t.id == f.id))
		return t.id == f.id ? 0 : EEXIST;
	if (replace && store_folder_busy(s, t.id) != 0)
		return ENOTEMPTY;
	char delim = np.delim ? np.delim : change_delim(s, a->account_id);
	char server[1024];
	int e = change_server_name(s, &np, delim, new_name, server, sizeof(server));
	if (e != 0)
		return e;
	if ((e = begin(s, false)) != 0)
		return e;
	if (replace && ((t.server_name[0] != '\0' &&
			 journal_add(s, a->account_id, JOURNAL_DELETE, 0, 0, t.server_name, 0) < 0) ||
			store_folder_delete(s, t.id) < 0))
		return fail(s, EIO);
	/* The server name stays what the server has until the RENAME is replayed (replay
	 * works out the new one from where the folder is then). */
	if (f.server_name[0] != '\0' &&
	    journal_add(s, a->account_id, JOURNAL_RENAME, 0, f.id, f.server_name, 0) < 0)
		return fail(s, EIO);
	f.parent_id = new_parent_id;
	snprintf(f.name, sizeof(f.name), "%s", new_name);
	if (store_folder_save(s, &f) < 0)
		return fail(s, store_name_taken(s) ? EEXIST : EIO);
	return commit(s);
}

/* ---- recovery ---- */

int
change_recover(struct store *s, const struct change_acct *accts, size_t n)
{
	int done = 0;
	struct store_msg m;
	for (int64_t after = 0; store_msg_next_scratch(s, after, &m) == 0; after = m.id) {
		if (!change_is_message_name(m.name))
			continue;
		int64_t acc = account_of_folder(s, m.folder_id);
		for (size_t i = 0; i < n; i++) {
			if (accts[i].account_id != acc)
				continue;
			if (change_commit(s, &accts[i], m.id, true) == 0)
				done++;
		}
	}
	return done;
}
