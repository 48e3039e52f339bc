/* sync-read.c - on-demand reads of bodies not cached yet (see sync.h, sync_read).
 *
 * They run on the caller's thread over one of READERS connections of their own, never
 * behind the bulk sync, fetch only the range asked for, and give up after READ_IO_MS.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "cache/sync-int.h"
#include "net/log.h"

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
	if (offline && sync_now_s() - s->read_kick >= 5) {
		s->read_kick = sync_now_s(); /* a user's read: reconnect now, at most every 5 s */
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
			sync_count(s, &s->st.ondemand_reads, 1);
			sync_count(s, &s->st.ondemand_bytes, r.got);
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

