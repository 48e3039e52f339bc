/* store-body.c - the bodies of the store (see store.h): pack files (cache/pack.h) for new
 * bodies, the bodies table of schema version 1 for old ones.
 *
 * How bodies are kept. Each store handle appends to a pack of its own (the pack's flock),
 * each body at the next PACK_ALIGN boundary after everything already in the file, never
 * overwriting bytes another handle's open transaction may still commit. A writer keeps at
 * most BODY_CHUNK bytes in memory and pwrite()s them when the buffer is full; at
 * store_body_end the row gets the body's place (body_pack, body_off) and has_body = 1, and
 * packs.used moves past it, in the caller's transaction if one is open, else in a short one
 * of its own: the write lock is never held while the network delivers the next piece.
 *
 * Bytes of a transaction that never committed are garbage: after packs.used they are cut by
 * the sweep at the next start; before the next body they are overwritten and were never
 * referenced. A range a row lets go of (delete, rewrite) is queued in dead_bodies by a
 * trigger in the same transaction and punched out (fallocate) after the commit; a reader
 * that read the row before the commit still reads the body, and checks the row again after
 * reading, so a punched range is never served. Packs are never fsynced: a crash of mailfs
 * loses nothing committed; a crash of the machine can cut a pack short, and a body whose
 * bytes are missing is then not served (store_body_read answers "not cached" and the caller
 * asks the server).
 *
 * What it does not do: decide what to fetch, or hold a body whole in memory.
 */
#include "cache/store.h"
#include "cache/store-int.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache/pack.h"

/* The most a body writer buffers before writing to its pack. */
#define BODY_CHUNK (256 * 1024)
/* Dead ranges punched per transaction. */
#define REAP_BATCH 256

struct store_body_writer {
	struct store *s; /* borrowed */
	int64_t msg_id;
	uint64_t size; /* the body's real size */
	uint64_t off;  /* bytes received */
	int64_t pack;  /* where it goes: pack, from start; pos: where the buffer goes */
	uint64_t start, pos;
	bool failed;
	size_t cap, len;    /* buffer capacity (min(size, BODY_CHUNK)) and fill */
	unsigned char *buf; /* s->wbuf */
};

/* Run one step of body work in the caller's transaction, or in a short one of our own. */
static int
body_txn_begin(struct store *s, bool *own)
{
	*own = sqlite3_get_autocommit(s->db) != 0;
	return *own ? store_begin(s) : 0;
}

static int
body_txn_end(struct store *s, bool own, int ret)
{
	if (!own)
		return ret;
	if (ret == 0)
		ret = store_commit(s);
	if (ret != 0)
		store_rollback(s);
	return ret;
}

void
store_body_close(struct store *s)
{
	if (s->rd_fd >= 0)
		close(s->rd_fd);
	if (s->wpack_fd >= 0)
		close(s->wpack_fd);
	if (s->pack_dfd >= 0)
		close(s->pack_dfd);
	s->rd_fd = s->wpack_fd = s->pack_dfd = -1;
	free(s->wbuf);
	s->wbuf = NULL;
}

/* Let go of the pack this handle appends to (and of its lock). */
static void
release_wpack(struct store *s)
{
	if (s->wpack_fd >= 0)
		close(s->wpack_fd); /* and with it the lock */
	s->wpack_fd = -1;
	s->wpack = 0;
	s->wpack_end = 0;
	s->wpack_base = 0;
}

static int row_int(struct store *s, enum stmt_id which, int64_t id, int64_t *v_r);

void
store_body_rollback(struct store *s)
{
	/* What this handle appended since it took the pack and no committed row points at is
	 * garbage now: cut it off, so that a sync cut again and again (a network that keeps
	 * failing) does not leave a tail in the pack each time. Only bytes from wpack_base
	 * on: below it, another handle's open transaction may own what is past `used`; we
	 * still hold the lock, so nobody appended after us. */
	if (s->wpack_fd >= 0) {
		int64_t used = 0;
		int r = row_int(s, ST_PACK_USED, s->wpack, &used);
		uint64_t keep = r == 0 && (uint64_t)used > s->wpack_base ? (uint64_t)used
									: s->wpack_base;
		struct stat st;
		/* A failure only leaves the tail to the sweep at the next start. */
		if (r >= 0 && fstat(s->wpack_fd, &st) == 0 && (uint64_t)st.st_size > keep)
			(void)!ftruncate(s->wpack_fd, (off_t)keep);
	}
	release_wpack(s);
}

/* A descriptor of pack `id` for reading or punching (kept open for the next call), or -1
 * with errno (ENOENT: the file is gone). */
static int
read_fd(struct store *s, int64_t id)
{
	if (s->rd_fd >= 0 && s->rd_pack == id)
		return s->rd_fd;
	if (s->rd_fd >= 0)
		close(s->rd_fd);
	s->rd_fd = pack_open(s->pack_dfd, id, false, false, NULL);
	s->rd_pack = s->rd_fd >= 0 ? id : 0;
	return s->rd_fd;
}

/* One integer of a one-row statement bound to `id`: 0, 1 if there is no row, -1 error. */
static int
row_int(struct store *s, enum stmt_id which, int64_t id, int64_t *v_r)
{
	sqlite3_stmt *st = store_stmt(s, which);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	int rc = sqlite3_step(st);
	int ret = rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? 1 : store_db_err(s, "pack");
	if (rc == SQLITE_ROW)
		*v_r = sqlite3_column_int64(st, 0);
	store_finish(st);
	return ret;
}

/* Make sure this handle has a pack to append to, with room: the newest pack if no other
 * writer holds it and it is not full, else a new one. Appending starts after everything in
 * the file, committed or not: bytes of another handle's open transaction are never
 * overwritten. Runs in the caller's transaction (a new pack row is committed with the
 * first body in it). */
static int
acquire_wpack(struct store *s)
{
	int64_t id = 0, used = 0;
	uint64_t size = 0;
	if (s->wpack_fd >= 0 && s->wpack_end < PACK_MAX)
		return 0;
	release_wpack(s); /* full: what this transaction wrote there stays */
	sqlite3_stmt *st = store_stmt(s, ST_PACK_LAST);
	if (!st)
		return -1;
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		id = sqlite3_column_int64(st, 0);
	store_finish(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return store_db_err(s, "pack");
	if (id != 0) {
		int fd = pack_open(s->pack_dfd, id, false, true, &size);
		if (fd >= 0 && row_int(s, ST_PACK_USED, id, &used) == 0 &&
		    (uint64_t)used < PACK_MAX && size < PACK_MAX) {
			s->wpack = id;
			s->wpack_fd = fd;
			s->wpack_end = pack_align(size > (uint64_t)used ? size : (uint64_t)used);
			s->wpack_base = s->wpack_end;
			return 0;
		}
		if (fd >= 0)
			close(fd);
	}
	st = store_stmt(s, ST_PACK_ADD);
	if (!st)
		return -1;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		id = sqlite3_column_int64(st, 0);
	store_finish(st);
	if (rc != SQLITE_ROW)
		return store_db_err(s, "pack");
	int fd = pack_open(s->pack_dfd, id, true, true, NULL);
	if (fd < 0 && errno == EEXIST) {
		/* Left by a transaction that was rolled back (the row is ours now; writers
		 * are serialized by the database's lock): start it again. */
		fd = pack_open(s->pack_dfd, id, false, true, NULL);
		if (fd >= 0 && ftruncate(fd, 0) != 0) {
			close(fd);
			fd = -1;
		}
	}
	if (fd < 0) {
		store_set_err(s, "pack %" PRId64 ": %s", id, strerror(errno));
		return -1;
	}
	s->wpack = id;
	s->wpack_fd = fd;
	s->wpack_end = 0;
	s->wpack_base = 0;
	return 0;
}

/* Give back the blocks of ranges no longer wanted (queued in dead_bodies), a batch at a
 * time: first the blocks, then the rows, so a crash in between only repeats the punch.
 * Never inside a transaction. Ranges are never used again (writers only append), so a late
 * or repeated punch is harmless. Failures leave the rows for the next time
 * (store_body_sweep at the latest); they are not the caller's and are not reported. */
void
store_body_reap(struct store *s)
{
	int64_t ids[REAP_BATCH];
	char keep[ERR_MAX];
	memcpy(keep, s->err, sizeof(keep));
	s->reap = false;
	for (;;) {
		sqlite3_stmt *st = store_stmt(s, ST_DEAD_LIST);
		size_t n = 0;
		if (!st)
			break;
		sqlite3_bind_int64(st, 1, REAP_BATCH);
		while (n < REAP_BATCH && sqlite3_step(st) == SQLITE_ROW) {
			ids[n++] = sqlite3_column_int64(st, 0);
			int fd = read_fd(s, sqlite3_column_int64(st, 1));
			if (fd >= 0)
				(void)pack_punch(fd, (uint64_t)sqlite3_column_int64(st, 2),
						 (uint64_t)sqlite3_column_int64(st, 3));
		}
		store_finish(st);
		if (n == 0 || store_begin(s) != 0)
			break;
		int ret = 0;
		st = store_stmt(s, ST_DEAD_DONE);
		for (size_t i = 0; i < n && ret == 0 && st; i++) {
			sqlite3_bind_int64(st, 1, ids[i]);
			ret = store_exec(s, st, "dead bodies");
		}
		if (!st || ret != 0 || store_commit(s) != 0) {
			store_rollback(s);
			break;
		}
		if (n < REAP_BATCH)
			break;
	}
	memcpy(s->err, keep, sizeof(keep));
}

int
store_body_after_delete(struct store *s, int ret)
{
	if (ret != 0)
		return ret;
	if (sqlite3_get_autocommit(s->db))
		store_body_reap(s);
	else
		s->reap = true;
	return 0;
}

struct sweep_ctx {
	struct store *s;
	uint64_t removed;
	int err;
};

static int
sweep_one(void *ctx, int64_t id)
{
	struct sweep_ctx *c = ctx;
	struct store *s = c->s;
	int64_t used = 0;
	int r = row_int(s, ST_PACK_USED, id, &used);
	if (r < 0)
		return 1; /* stop; the reason is in s->err */
	if (r == 1) {
		/* Its row was never committed. */
		if (pack_remove(s->pack_dfd, id) == 0)
			c->removed++;
		else
			c->err = errno;
		return 0;
	}
	uint64_t size;
	int fd = pack_open(s->pack_dfd, id, false, true, &size);
	if (fd < 0) {
		if (errno != EWOULDBLOCK)
			c->err = errno;
		return 0;
	}
	/* Bytes after the last committed body were appended by a transaction that never
	 * committed. */
	if (size > (uint64_t)used && ftruncate(fd, (off_t)used) != 0)
		c->err = errno;
	close(fd);
	return 0;
}

int
store_body_sweep(struct store *s, uint64_t *removed_r)
{
	struct sweep_ctx c = {.s = s};
	if (removed_r)
		*removed_r = 0;
	if (!sqlite3_get_autocommit(s->db)) {
		store_set_err(s, "body sweep: not outside a transaction");
		return -1;
	}
	store_body_reap(s);
	int r = pack_each(s->pack_dfd, sweep_one, &c);
	if (removed_r)
		*removed_r = c.removed;
	if (r > 0)
		return -1; /* sweep_one said why */
	if (r < 0 || c.err != 0) {
		store_set_err(s, "body sweep: %s", strerror(r < 0 ? errno : c.err));
		return -1;
	}
	return 0;
}

int
store_body_begin(struct store *s, int64_t msg_id, uint64_t size, struct store_body_writer **w_r,
		 bool *size_changed_r)
{
	struct store_body_writer *w = NULL;
	sqlite3_stmt *st = NULL;
	bool own = false, changed = false;
	int ret = -1;
	*w_r = NULL;
	if (size_changed_r)
		*size_changed_r = false;
	if (s->writing) {
		store_set_err(s, "message %" PRId64 ": another body is being written", msg_id);
		return -1;
	}
	if (size > (uint64_t)INT64_MAX - PACK_MAX) {
		store_set_err(s, "message %" PRId64 ": body of %" PRIu64 " bytes is too large",
			      msg_id, size);
		return -1;
	}
	if (body_txn_begin(s, &own) != 0)
		goto out;
	st = store_stmt(s, ST_BODY_MSG);
	if (!st)
		goto out;
	sqlite3_bind_int64(st, 1, msg_id);
	int rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		if (rc == SQLITE_DONE)
			store_set_err(s, "message %" PRId64 " not found", msg_id);
		else
			store_db_err(s, "body");
		goto out;
	}
	changed = (uint64_t)sqlite3_column_int64(st, 0) != size;
	bool had = sqlite3_column_int(st, 1) != 0;
	bool legacy = had && sqlite3_column_int64(st, 2) == 0;
	store_finish(st);
	st = NULL;
	if (changed || had) {
		/* The old range, if any, is queued for punching (trigger messages_au_body). */
		st = store_stmt(s, ST_BODY_MARK);
		if (!st)
			goto out;
		sqlite3_bind_int64(st, 1, msg_id);
		sqlite3_bind_int64(st, 2, (int64_t)size);
		if (store_exec(s, st, "body") != 0)
			goto out;
		st = NULL;
		s->reap = true;
	}
	if (legacy) {
		/* A body cached before bodies were packs: the new one replaces it. */
		st = store_stmt(s, ST_BODY_DROP);
		if (!st)
			goto out;
		sqlite3_bind_int64(st, 1, msg_id);
		if (store_exec(s, st, "body") != 0)
			goto out;
		st = NULL;
	}
	if (acquire_wpack(s) != 0)
		goto out;
	if (!s->wbuf && !(s->wbuf = malloc(BODY_CHUNK))) {
		store_set_err(s, "body: out of memory");
		goto out;
	}
	w = calloc(1, sizeof(*w));
	if (!w) {
		store_set_err(s, "body: out of memory");
		goto out;
	}
	w->s = s;
	w->msg_id = msg_id;
	w->size = size;
	w->pack = s->wpack;
	w->start = w->pos = s->wpack_end;
	w->cap = size < BODY_CHUNK ? (size_t)size : BODY_CHUNK;
	w->buf = s->wbuf;
	ret = 0;
out:
	store_finish(st);
	ret = body_txn_end(s, own, ret);
	if (ret == 0) {
		s->writing = true;
		*w_r = w;
		if (size_changed_r)
			*size_changed_r = changed;
	} else {
		free(w);
	}
	return ret;
}

/* Write the buffer to the pack. */
static int
body_flush(struct store_body_writer *w)
{
	struct store *s = w->s;
	if (w->len == 0)
		return 0;
	if (s->wpack_fd < 0 || s->wpack != w->pack) {
		store_set_err(s, "message %" PRId64 ": its transaction was rolled back", w->msg_id);
		w->failed = true;
		return -1;
	}
	if (pack_write(s->wpack_fd, w->pos, w->buf, w->len) != 0) {
		store_set_err(s, "message %" PRId64 ": cannot write its body: %s", w->msg_id,
			      strerror(errno));
		w->failed = true;
		return -1;
	}
	w->pos += w->len;
	w->len = 0;
	return 0;
}

int
store_body_write(struct store_body_writer *w, const void *data, size_t len)
{
	const unsigned char *p = data;
	if (w->failed) {
		store_set_err(w->s, "message %" PRId64 ": body write after an error", w->msg_id);
		return -1;
	}
	if (len > w->size - w->off) {
		store_set_err(w->s,
			      "message %" PRId64 ": body write beyond its size (%" PRIu64 " bytes)",
			      w->msg_id, w->size);
		w->failed = true;
		return -1;
	}
	while (len > 0) {
		size_t n = w->cap - w->len;
		if (n > len)
			n = len;
		memcpy(w->buf + w->len, p, n);
		w->len += n;
		w->off += n;
		p += n;
		len -= n;
		if (w->len == w->cap && body_flush(w) != 0)
			return -1;
	}
	return 0;
}

/* All bytes are in the pack: point the row at them and mark the body cached, and move the
 * pack's committed end, in the caller's transaction or in one of our own. */
static int
body_done(struct store_body_writer *w)
{
	struct store *s = w->s;
	bool own;
	int ret = -1;
	if (s->wpack_fd < 0 || s->wpack != w->pack) {
		store_set_err(s, "message %" PRId64 ": its transaction was rolled back", w->msg_id);
		return -1;
	}
	if (body_txn_begin(s, &own) != 0)
		return -1;
	sqlite3_stmt *st = store_stmt(s, ST_BODY_DONE);
	if (!st)
		goto out;
	sqlite3_bind_int64(st, 1, w->msg_id);
	sqlite3_bind_int64(st, 2, (int64_t)w->size);
	sqlite3_bind_int64(st, 3, w->pack);
	sqlite3_bind_int64(st, 4, (int64_t)w->start);
	if (store_exec(s, st, "body") != 0)
		goto out;
	if (sqlite3_changes(s->db) != 1) {
		store_set_err(
		    s, "message %" PRId64 " was deleted or resized while its body was written",
		    w->msg_id);
		goto out;
	}
	st = store_stmt(s, ST_PACK_GROW);
	if (!st)
		goto out;
	sqlite3_bind_int64(st, 1, w->pack);
	sqlite3_bind_int64(st, 2, (int64_t)(w->start + w->size));
	if (store_exec(s, st, "pack") != 0)
		goto out;
	ret = 0;
out:
	ret = body_txn_end(s, own, ret);
	/* The next body goes after this one; a dropped one's space is used again. */
	if (ret == 0 && s->wpack == w->pack)
		s->wpack_end = pack_align(w->start + w->size);
	return ret;
}

int
store_body_end(struct store_body_writer **wp, bool ok)
{
	struct store_body_writer *w = *wp;
	int ret = -1;
	if (!w)
		return 0;
	struct store *s = w->s;
	if (ok && !w->failed && w->off == w->size) {
		if (body_flush(w) == 0)
			ret = body_done(w);
	} else if (ok && !w->failed) {
		store_set_err(
		    s, "message %" PRId64 ": body incomplete (%" PRIu64 " of %" PRIu64 " bytes)",
		    w->msg_id, w->off, w->size);
	} else if (!ok) {
		ret = 0; /* dropped: has_body stays 0, its bytes are overwritten by the next */
	}
	s->writing = false;
	free(w);
	*wp = NULL;
	return ret;
}

/* A body cached by schema version 1, in the bodies table. */
static int
legacy_read(struct store *s, int64_t msg_id, uint64_t offset, void *buf, size_t len, size_t *got_r)
{
	sqlite3_blob *blob = NULL;
	sqlite3_stmt *st = NULL;
	int ret = -1;
	/* The open blob keeps a read transaction: has_body is read from the same snapshot. */
	if (sqlite3_blob_open(s->db, "main", "bodies", "data", msg_id, 0, &blob) != SQLITE_OK) {
		store_set_err(s, "message %" PRId64 ": cannot read body: %s", msg_id,
			      sqlite3_errmsg(s->db));
		sqlite3_blob_close(blob);
		blob = NULL;
		st = store_stmt(s, ST_BODY_EXISTS);
		if (st) {
			sqlite3_bind_int64(st, 1, msg_id);
			if (sqlite3_step(st) == SQLITE_DONE) {
				store_set_err(s, "message %" PRId64 ": body not cached", msg_id);
				ret = 1;
			}
		}
		goto out;
	}
	st = store_stmt(s, ST_BODY_HAS);
	if (!st)
		goto out;
	sqlite3_bind_int64(st, 1, msg_id);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_DONE || (rc == SQLITE_ROW && sqlite3_column_int(st, 0) == 0)) {
		store_set_err(s, "message %" PRId64 ": body not cached", msg_id);
		ret = 1;
		goto out;
	}
	if (rc != SQLITE_ROW) {
		store_db_err(s, "body read");
		goto out;
	}
	uint64_t size = (uint64_t)sqlite3_blob_bytes(blob);
	if (offset < size) {
		if (len > size - offset)
			len = (size_t)(size - offset);
		if (len > INT_MAX)
			len = INT_MAX;
		if (sqlite3_blob_read(blob, buf, (int)len, (int)offset) != SQLITE_OK) {
			store_db_err(s, "body read");
			goto out;
		}
		*got_r = len;
	}
	ret = 0;
out:
	store_finish(st);
	sqlite3_blob_close(blob);
	return ret;
}

struct body_loc {
	bool has;
	uint64_t size;
	int64_t pack;
	uint64_t off;
};

/* Where the body of msg_id is: 0, or -1 error. A missing row reads as "no body". */
static int
body_where(struct store *s, int64_t msg_id, struct body_loc *r)
{
	memset(r, 0, sizeof(*r));
	sqlite3_stmt *st = store_stmt(s, ST_BODY_MSG);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, msg_id);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		r->size = (uint64_t)sqlite3_column_int64(st, 0);
		r->has = sqlite3_column_int(st, 1) != 0;
		r->pack = sqlite3_column_int64(st, 2);
		r->off = (uint64_t)sqlite3_column_int64(st, 3);
	}
	store_finish(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : store_db_err(s, "body read");
}

int
store_body_read(struct store *s, int64_t msg_id, uint64_t offset, void *buf, size_t len,
		size_t *got_r)
{
	struct body_loc at, again;
	*got_r = 0;
	if (body_where(s, msg_id, &at) != 0)
		return -1;
	if (!at.has) {
		store_set_err(s, "message %" PRId64 ": body not cached", msg_id);
		return 1;
	}
	if (at.pack == 0)
		return legacy_read(s, msg_id, offset, buf, len, got_r);
	if (offset >= at.size)
		return 0;
	if (len > at.size - offset)
		len = (size_t)(at.size - offset);
	int fd = read_fd(s, at.pack);
	size_t got = 0;
	if (fd < 0 && errno != ENOENT) {
		store_set_err(s, "message %" PRId64 ": cannot open pack %" PRId64 ": %s", msg_id,
			      at.pack, strerror(errno));
		return -1;
	}
	if (fd >= 0 && pack_read(fd, at.off + offset, buf, len, &got) != 0) {
		store_set_err(s, "message %" PRId64 ": cannot read pack %" PRId64 ": %s", msg_id,
			      at.pack, strerror(errno));
		return -1;
	}
	/* The range is punched only after the transaction that let it go commits: if the row
	 * still points at it now, what was read is the body. */
	if (body_where(s, msg_id, &again) != 0)
		return -1;
	if (!again.has || again.pack != at.pack || again.off != at.off || again.size != at.size) {
		store_set_err(s, "message %" PRId64 ": body not cached", msg_id);
		return 1;
	}
	if (got < len) {
		/* The pack was cut short (a crash of the machine: packs are never synced): not
		 * served; the caller fetches it from the server. */
		store_set_err(s, "message %" PRId64 ": pack %" PRId64 " ends inside its body",
			      msg_id, at.pack);
		return 1;
	}
	*got_r = got;
	return 0;
}

int
store_body_sync(struct store *s)
{
	if (s->wpack_fd >= 0 && fdatasync(s->wpack_fd) < 0) {
		store_set_err(s, "pack: fdatasync: %s", strerror(errno));
		return -1;
	}
	return 0;
}
