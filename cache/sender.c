/* sender.c - the outbox sender thread (see sender.h).
 *
 * Loop: wait for a kick or the next retry time; when something is due, one SMTP session
 * for all of it; then the Sent copies over one IMAP session. Every state change goes to the
 * queue (cache/outbox, synchronous = FULL) before the next step; the fs layer hears of it
 * through the hook.
 */
#include "cache/sender.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cache/account.h"
#include "cache/outbox.h"
#include "net/buf.h"
#include "net/imap.h"
#include "net/log.h"
#include "net/msgprep.h"
#include "net/smtp.h"

#define BATCH 64
#define READ_CHUNK (64 * 1024)
#define BACKOFF_FIRST 30
#define BACKOFF_MAX (30 * 60)
/* How long an idle SMTP session waits for more mail before QUIT. */
#define LINGER_S 2

struct sender {
	const struct cfg_account *acct;
	char *cache_dir;
	struct sender_hooks hooks;
	void *hooks_ctx;
	pthread_t thread;
	bool started;

	pthread_mutex_t mu;
	pthread_cond_t cond;
	bool stop, kick, retry_all;
	struct sender_status st;
	char *password; /* cached after the first successful lookup; wiped at stop */
	char sent_raw[1024]; /* the Sent folder's server name, once found */
};

unsigned
sender_backoff(unsigned attempts)
{
	unsigned d = BACKOFF_FIRST;
	for (unsigned i = 1; i < attempts && d < BACKOFF_MAX; i++)
		d *= 2;
	return d > BACKOFF_MAX ? BACKOFF_MAX : d;
}

static bool
stopping(struct sender *s)
{
	pthread_mutex_lock(&s->mu);
	bool r = s->stop;
	pthread_mutex_unlock(&s->mu);
	return r;
}

static void
set_error(struct sender *s, const char *msg)
{
	pthread_mutex_lock(&s->mu);
	snprintf(s->st.last_error, sizeof(s->st.last_error), "%s", msg);
	s->st.last_error_time = time(NULL);
	pthread_mutex_unlock(&s->mu);
	log_warn("account %s: sending: %s", s->acct->name, msg);
}

static void
changed(struct sender *s)
{
	if (s->hooks.outbox_changed != NULL)
		s->hooks.outbox_changed(s->hooks_ctx, s->acct->name);
}

/* A copy of the password (the caller wipes it with cfg_secret_free). */
static int
get_password(struct sender *s, char **pw_r, char *err, size_t errlen)
{
	pthread_mutex_lock(&s->mu);
	int r = 0;
	if (s->password == NULL)
		r = cfg_password(s->acct, &s->password, err, errlen);
	*pw_r = r == 0 ? strdup(s->password) : NULL;
	pthread_mutex_unlock(&s->mu);
	if (r == 0 && *pw_r == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return r;
}

static void
forget_password(struct sender *s)
{
	pthread_mutex_lock(&s->mu);
	cfg_secret_free(&s->password);
	pthread_mutex_unlock(&s->mu);
}

/* ---- the message as sent: prepared header, then the content's body -------------------- */

struct reader {
	struct outbox *ob;
	int64_t id;
	const struct outbox_send *snd;
	size_t hpos;     /* header bytes given out */
	uint64_t off;    /* next content offset of the body */
	struct crlf_state cs;
	bool finished;   /* the content is read and the converter flushed */
	char *in;        /* READ_CHUNK */
	char *pend;      /* converted bytes not given out yet: 2 * READ_CHUNK + 4 */
	size_t pend_len, pend_pos;
};

/* Header, then the body with CRLF line ends, in whatever pieces the consumer asks for. */
static ssize_t
read_message(void *ctx, char *buf, size_t len)
{
	struct reader *r = ctx;
	if (r->hpos < r->snd->header_len) {
		size_t n = r->snd->header_len - r->hpos < len ? r->snd->header_len - r->hpos : len;
		memcpy(buf, r->snd->header + r->hpos, n);
		r->hpos += n;
		return (ssize_t)n;
	}
	while (r->pend_pos == r->pend_len) {
		if (r->finished)
			return 0;
		r->pend_pos = r->pend_len = 0;
		uint64_t left = r->snd->size > r->off ? r->snd->size - r->off : 0;
		size_t want = left < READ_CHUNK ? (size_t)left : READ_CHUNK;
		if (want > 0) {
			size_t got = 0;
			if (outbox_read(r->ob, r->id, r->off, r->in, want, &got) != 0 || got == 0)
				return -1;
			r->off += got;
			r->pend_len = crlf_convert(&r->cs, r->in, got, r->pend);
		}
		if (r->off >= r->snd->size) {
			r->pend_len += crlf_finish(&r->cs, r->pend + r->pend_len);
			r->finished = true;
		}
	}
	size_t n = r->pend_len - r->pend_pos < len ? r->pend_len - r->pend_pos : len;
	memcpy(buf, r->pend + r->pend_pos, n);
	r->pend_pos += n;
	return (ssize_t)n;
}

static int
reader_init(struct reader *r, struct outbox *ob, int64_t id, const struct outbox_send *snd)
{
	memset(r, 0, sizeof(*r));
	r->ob = ob;
	r->id = id;
	r->snd = snd;
	r->off = snd->body_offset;
	r->in = malloc(READ_CHUNK);
	r->pend = malloc(2 * READ_CHUNK + 4);
	if (r->in == NULL || r->pend == NULL) {
		free(r->in);
		free(r->pend);
		return -1;
	}
	return 0;
}

static void
reader_free(struct reader *r)
{
	free(r->in);
	free(r->pend);
	r->in = r->pend = NULL;
}

/* ---- SMTP ----------------------------------------------------------------------------- */

static struct smtp *
smtp_session(struct sender *s, char *err, size_t errlen, bool *config_error)
{
	const struct cfg_account *a = s->acct;
	struct smtp *c = NULL;
	*config_error = false;
	enum smtp_err e = account_smtp_connect(a, 30000, &c, err, errlen);
	if (e != SMTP_OK) {
		*config_error = e == SMTP_ERR_NOTLS;
		return NULL;
	}
	char *pw;
	if (get_password(s, &pw, err, errlen) < 0) {
		smtp_close(&c);
		return NULL;
	}
	e = account_smtp_login(c, a, pw, err, errlen);
	cfg_secret_free(&pw);
	if (e != SMTP_OK) {
		if (e == SMTP_ERR_AUTH)
			forget_password(s); /* ask password_cmd again next time */
		smtp_close(&c);
		return NULL;
	}
	return c;
}

static void
reply_line(const struct smtp_reply *rp, char *out, size_t outlen)
{
	if (rp->code == 0) {
		snprintf(out, outlen, "%s", rp->text);
		return;
	}
	/* Multi-line replies: lines joined by " / " on one line for status and xattr. */
	char flat[SMTP_REPLY_TEXT_MAX];
	snprintf(flat, sizeof(flat), "%s", rp->text);
	for (char *p = flat; *p; p++)
		if (*p == '\n')
			*p = ' ';
	snprintf(out, outlen, "%d%s%s %s", rp->code, rp->enhanced[0] ? " " : "", rp->enhanced,
		 flat);
}

static void
now_text(char *out, size_t outlen)
{
	time_t t = time(NULL);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, outlen, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* The NAME.error text after a refusal. */
static void
error_text(struct buf *b, const char *name, const struct outbox_send *snd,
	   const struct smtp_send_result *res, const char *server)
{
	char when[32], line[SMTP_REPLY_TEXT_MAX + 64];
	now_text(when, sizeof(when));
	buf_printf(b, "%s was not sent to everyone.\n", name);
	buf_printf(b, "Server: %s\nDate: %s\n", server, when);
	if (snd->message_id[0])
		buf_printf(b, "Message-ID: %s\n", snd->message_id);
	if (res->status == SMTP_OK) {
		buf_printf(b, "\nDelivered to:\n");
		for (size_t i = 0; i < res->nrcpt && i < snd->nrcpts; i++)
			if (res->rcpt[i].code >= 200 && res->rcpt[i].code < 300)
				buf_printf(b, "  %s\n", snd->rcpts[i]);
		buf_printf(b, "\nRefused (not sent to them; not retried):\n");
		for (size_t i = 0; i < res->nrcpt && i < snd->nrcpts; i++)
			if (res->rcpt[i].code < 200 || res->rcpt[i].code >= 300)
				buf_printf(b, "  %s: %d%s%s %s\n", snd->rcpts[i], res->rcpt[i].code,
					   res->rcpt[i].enhanced[0] ? " " : "",
					   res->rcpt[i].enhanced, res->rcpt[i].text);
		return;
	}
	reply_line(&res->reply, line, sizeof(line));
	buf_printf(b, "Refused at %s: %s\n", res->stage ? res->stage : "?", line);
	bool any = false;
	for (size_t i = 0; i < res->nrcpt && i < snd->nrcpts; i++) {
		if (res->rcpt[i].code == 0 || (res->rcpt[i].code >= 200 && res->rcpt[i].code < 300))
			continue;
		if (!any)
			buf_printf(b, "\nRecipients refused:\n");
		any = true;
		buf_printf(b, "  %s: %d%s%s %s\n", snd->rcpts[i], res->rcpt[i].code,
			   res->rcpt[i].enhanced[0] ? " " : "", res->rcpt[i].enhanced,
			   res->rcpt[i].text);
	}
}

/* Send one row on the session. Returns false when the session is no longer usable. */
static bool
send_one(struct sender *s, struct outbox *ob, struct smtp *c, const struct outbox_item *it)
{
	struct outbox_send snd;
	if (outbox_load_send(ob, it->id, &snd) != 0) {
		set_error(s, outbox_errmsg(ob));
		return true;
	}
	struct reader rd;
	if (reader_init(&rd, ob, it->id, &snd) < 0) {
		outbox_send_free(&snd);
		return true;
	}
	pthread_mutex_lock(&s->mu);
	s->st.current_id = it->id;
	pthread_mutex_unlock(&s->mu);
	changed(s);
	struct smtp_envelope env = {
		.from = snd.env_from,
		.rcpts = (const char *const *)snd.rcpts,
		.nrcpts = snd.nrcpts,
		.size = snd.send_size,
		.body_8bit = snd.body_8bit,
		.smtputf8 = snd.smtputf8,
	};
	struct smtp_send_result res;
	memset(&res, 0, sizeof(res));
	enum smtp_err e = smtp_send(c, &env, read_message, &rd, &res);
	char server[300], line[SMTP_REPLY_TEXT_MAX + 64];
	snprintf(server, sizeof(server), "%s:%u", s->acct->smtp.host, s->acct->smtp.port);
	reply_line(&res.reply, line, sizeof(line));
	bool usable = true;
	int r = 0;
	struct buf text;
	buf_init(&text, 256 * 1024);
	if (e == SMTP_OK && res.naccepted == snd.nrcpts) {
		r = outbox_sent(ob, it->id, s->acct->save_sent);
		log_info("account %s: sent %s (%s)", s->acct->name, it->name, line);
		pthread_mutex_lock(&s->mu);
		s->st.sent++;
		s->st.online = true;
		pthread_mutex_unlock(&s->mu);
	} else if (e == SMTP_OK) {
		error_text(&text, it->name, &snd, &res, server);
		char status[OUTBOX_STATUS_MAX];
		snprintf(status, sizeof(status), "sent to %zu of %zu recipients; see %s.error",
			 res.naccepted, snd.nrcpts, it->name);
		r = outbox_partial(ob, it->id, status, text.data ? text.data : "",
				   s->acct->save_sent);
		pthread_mutex_lock(&s->mu);
		s->st.sent++;
		s->st.failed++;
		pthread_mutex_unlock(&s->mu);
	} else if (e == SMTP_ERR_PERM) {
		error_text(&text, it->name, &snd, &res, server);
		char status[OUTBOX_STATUS_MAX];
		snprintf(status, sizeof(status), "failed: %s", line);
		r = outbox_fail(ob, it->id, status, text.data ? text.data : "");
		log_warn("account %s: %s refused: %s", s->acct->name, it->name, line);
		pthread_mutex_lock(&s->mu);
		s->st.failed++;
		pthread_mutex_unlock(&s->mu);
	} else {
		/* Temporary: network, 4xx, protocol, our reader. */
		char status[OUTBOX_STATUS_MAX];
		const char *why = res.reply.code != 0 || res.reply.text[0] ? line : smtp_errmsg(c);
		int64_t next = (int64_t)time(NULL) + sender_backoff(it->attempts + 1);
		char when[32];
		struct tm tm;
		time_t nt = (time_t)next;
		gmtime_r(&nt, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
		snprintf(status, sizeof(status), "waiting: attempt %u failed: %s; next try %s",
			 it->attempts + 1, why, when);
		r = outbox_retry(ob, it->id, next, status);
		set_error(s, why);
		usable = e == SMTP_ERR_TEMP && res.reply.code != 421;
	}
	if (r < 0)
		set_error(s, outbox_errmsg(ob));
	buf_free(&text);
	smtp_send_result_free(&res);
	reader_free(&rd);
	outbox_send_free(&snd);
	pthread_mutex_lock(&s->mu);
	s->st.current_id = 0;
	pthread_mutex_unlock(&s->mu);
	changed(s);
	return usable;
}

/* Wait up to `seconds` for a kick (more mail queued): true if one came. */
static bool
linger(struct sender *s, int seconds)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += seconds;
	pthread_mutex_lock(&s->mu);
	while (!s->stop && !s->kick)
		if (pthread_cond_timedwait(&s->cond, &s->mu, &ts) == ETIMEDOUT)
			break;
	bool kicked = s->kick && !s->stop;
	s->kick = false;
	pthread_mutex_unlock(&s->mu);
	return kicked;
}

/* Everything due now, over one session (a new one if the server drops it). */
static void
send_due(struct sender *s, struct outbox *ob)
{
	struct outbox_item *items = calloc(BATCH, sizeof(*items));
	if (items == NULL)
		return;
	struct smtp *c = NULL;
	while (!stopping(s)) {
		int n = outbox_due(ob, s->acct->name, false, time(NULL), items, BATCH);
		if (n < 0)
			break;
		/* Queue empty: keep the session a moment for what is still being copied in. */
		if (n == 0 && (c == NULL || !linger(s, LINGER_S)))
			break;
		if (n == 0)
			continue;
		if (c == NULL) {
			char err[700];
			bool config_error;
			c = smtp_session(s, err, sizeof(err), &config_error);
			if (c == NULL) {
				/* Nobody got through: every due message waits its backoff. */
				set_error(s, err);
				pthread_mutex_lock(&s->mu);
				s->st.online = false;
				pthread_mutex_unlock(&s->mu);
				for (int i = 0; i < n; i++) {
					char status[OUTBOX_STATUS_MAX];
					int64_t next = (int64_t)time(NULL) +
						       sender_backoff(items[i].attempts + 1);
					snprintf(status, sizeof(status),
						 "waiting: attempt %u failed: %s",
						 items[i].attempts + 1, err);
					outbox_retry(ob, items[i].id, next, status);
				}
				changed(s);
				break;
			}
			pthread_mutex_lock(&s->mu);
			s->st.sessions++;
			s->st.online = true;
			pthread_mutex_unlock(&s->mu);
		}
		for (int i = 0; i < n && !stopping(s); i++) {
			if (!send_one(s, ob, c, &items[i])) {
				smtp_close(&c);
				break;
			}
		}
	}
	smtp_close(&c);
	free(items);
}

/* ---- the Sent copy -------------------------------------------------------------------- */

static struct imap *
imap_session(struct sender *s, char *err, size_t errlen)
{
	const struct cfg_account *a = s->acct;
	struct imap *c = account_imap_connect(a, "sent", 30000, err, errlen);
	if (c == NULL)
		return NULL;
	char *pw;
	if (get_password(s, &pw, err, errlen) < 0) {
		imap_close(&c);
		return NULL;
	}
	enum imap_err e = account_imap_login(c, a, pw, err, errlen);
	cfg_secret_free(&pw);
	if (e != IMAP_OK) {
		imap_close(&c);
		return NULL;
	}
	return c;
}

/* The Sent folder's server name: `sent = NAME` matched against LIST (UTF-8, "/" for the
 * delimiter), else the \Sent special-use folder, else a folder called "Sent", else "Sent"
 * is created. */
static int
find_sent(struct sender *s, struct imap *c, char *err, size_t errlen)
{
	if (s->sent_raw[0])
		return 0;
	struct imap_mbox *list = NULL;
	size_t n = 0;
	if (imap_list(c, &list, &n) != IMAP_OK) {
		snprintf(err, errlen, "%s", imap_errmsg(c));
		return -1;
	}
	const char *pick = NULL;
	for (size_t i = 0; i < n && pick == NULL; i++) {
		if (list[i].flags & IMAP_MBOX_NOSELECT)
			continue;
		if (s->acct->sent != NULL) {
			char name[1024];
			if (strcmp(imap_mbox_path(&list[i], name, sizeof(name)), s->acct->sent) == 0)
				pick = list[i].raw;
		} else if (list[i].flags & IMAP_MBOX_SENT) {
			pick = list[i].raw;
		}
	}
	for (size_t i = 0; i < n && pick == NULL && s->acct->sent == NULL; i++)
		if (strcasecmp(list[i].name, "Sent") == 0 && !(list[i].flags & IMAP_MBOX_NOSELECT))
			pick = list[i].raw;
	if (pick != NULL)
		snprintf(s->sent_raw, sizeof(s->sent_raw), "%s", pick);
	imap_mbox_list_free(&list, n);
	if (pick != NULL)
		return 0;
	if (s->acct->sent != NULL) {
		snprintf(err, errlen, "the Sent folder '%s' (sent = ...) does not exist",
			 s->acct->sent);
		return -1;
	}
	unsigned id;
	if (imap_send(c, &id, "CREATE \"Sent\"") != IMAP_OK || imap_wait(c, id) != IMAP_OK) {
		snprintf(err, errlen, "no Sent folder, and creating one failed: %s",
			 imap_errmsg(c));
		return -1;
	}
	snprintf(s->sent_raw, sizeof(s->sent_raw), "Sent");
	return 0;
}

/* Append to Sent what was sent, in batches over one IMAP session. 0 when every copy due
 * was made, -1 when some must wait (server away, or an APPEND refused). */
static int
copy_sent(struct sender *s, struct outbox *ob)
{
	struct outbox_item *items = calloc(BATCH, sizeof(*items));
	if (items == NULL)
		return -1;
	struct imap *c = NULL;
	int ret = 0;
	while (!stopping(s) && ret == 0) {
		int n = outbox_due(ob, s->acct->name, true, 0, items, BATCH);
		if (n <= 0) {
			ret = n < 0 ? -1 : 0;
			break;
		}
		if (!s->acct->imap.set) { /* nowhere to copy to */
			for (int i = 0; i < n; i++)
				outbox_copied(ob, items[i].id);
			continue;
		}
		char err[700];
		if (c == NULL) {
			c = imap_session(s, err, sizeof(err));
			if (c == NULL || find_sent(s, c, err, sizeof(err)) < 0) {
				set_error(s, err);
				ret = -1;
				break;
			}
		}
		for (int i = 0; i < n && !stopping(s) && ret == 0; i++) {
			struct outbox_send snd;
			if (outbox_load_send(ob, items[i].id, &snd) != 0) {
				ret = -1;
				break;
			}
			struct reader rd;
			if (reader_init(&rd, ob, items[i].id, &snd) == 0) {
				enum imap_err e = imap_append(c, s->sent_raw, "\\Seen", snd.send_size,
							      read_message, &rd, NULL);
				if (e == IMAP_OK && outbox_copied(ob, items[i].id) == 0) {
					pthread_mutex_lock(&s->mu);
					s->st.copies++;
					pthread_mutex_unlock(&s->mu);
				} else {
					char msg[800];
					snprintf(msg, sizeof(msg), "copy to Sent: %s",
						 e == IMAP_OK ? outbox_errmsg(ob) : imap_errmsg(c));
					set_error(s, msg);
					ret = -1; /* the rest waits for the next round */
				}
				reader_free(&rd);
			} else {
				ret = -1;
			}
			outbox_send_free(&snd);
		}
	}
	imap_close(&c);
	free(items);
	changed(s);
	return ret;
}

/* ---- the thread ----------------------------------------------------------------------- */

static void *
run(void *arg)
{
	struct sender *s = arg;
	struct outbox *ob = NULL;
	char err[700];
	if (outbox_open(s->cache_dir, &ob, err, sizeof(err)) < 0) {
		set_error(s, err);
		return NULL;
	}
	int64_t copy_retry = 0;
	s->retry_all = true; /* a restart is a retry */
	while (!stopping(s)) {
		pthread_mutex_lock(&s->mu);
		bool all = s->retry_all;
		s->retry_all = false;
		pthread_mutex_unlock(&s->mu);
		if (all && outbox_retry_all_now(ob, s->acct->name) < 0)
			set_error(s, outbox_errmsg(ob));
		send_due(s, ob);
		int64_t now = time(NULL);
		unsigned qd = 0, fd = 0, sp = 0;
		if (outbox_counts(ob, s->acct->name, &qd, &fd, &sp) == 0 && sp > 0 &&
		    now >= copy_retry)
			copy_retry = copy_sent(s, ob) < 0 ? now + 60 : 0;
		/* Sleep until the next retry, a kick, or a minute (Sent copies). */
		int64_t next = now + 60, t;
		if (outbox_next_try(ob, s->acct->name, &t) == 0 && t < next)
			next = t;
		if (next <= now)
			continue;
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += next - now;
		pthread_mutex_lock(&s->mu);
		while (!s->stop && !s->kick)
			if (pthread_cond_timedwait(&s->cond, &s->mu, &ts) == ETIMEDOUT)
				break;
		s->kick = false;
		pthread_mutex_unlock(&s->mu);
	}
	outbox_close(&ob);
	return NULL;
}

struct sender *
sender_start(const struct cfg_account *acct, const char *cache_dir,
	     const struct sender_hooks *hooks, void *hooks_ctx, char *err, size_t errlen)
{
	struct sender *s = calloc(1, sizeof(*s));
	if (s == NULL || (s->cache_dir = strdup(cache_dir)) == NULL) {
		free(s);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->acct = acct;
	if (hooks != NULL)
		s->hooks = *hooks;
	s->hooks_ctx = hooks_ctx;
	s->st.online = true;
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cond, NULL);
	if (pthread_create(&s->thread, NULL, run, s) != 0) {
		snprintf(err, errlen, "account %s: cannot start the sender thread", acct->name);
		pthread_mutex_destroy(&s->mu);
		pthread_cond_destroy(&s->cond);
		free(s->cache_dir);
		free(s);
		return NULL;
	}
	s->started = true;
	return s;
}

void
sender_kick(struct sender *s)
{
	if (s == NULL)
		return;
	pthread_mutex_lock(&s->mu);
	s->kick = true;
	pthread_cond_signal(&s->cond);
	pthread_mutex_unlock(&s->mu);
}

void
sender_retry_all(struct sender *s)
{
	if (s == NULL)
		return;
	pthread_mutex_lock(&s->mu);
	s->retry_all = true;
	s->kick = true;
	pthread_cond_signal(&s->cond);
	pthread_mutex_unlock(&s->mu);
}

void
sender_get_status(struct sender *s, struct sender_status *r)
{
	pthread_mutex_lock(&s->mu);
	*r = s->st;
	pthread_mutex_unlock(&s->mu);
}

void
sender_stop(struct sender **sp)
{
	struct sender *s = *sp;
	if (s == NULL)
		return;
	pthread_mutex_lock(&s->mu);
	s->stop = true;
	pthread_cond_signal(&s->cond);
	pthread_mutex_unlock(&s->mu);
	if (s->started)
		pthread_join(s->thread, NULL);
	cfg_secret_free(&s->password);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cond);
	free(s->cache_dir);
	free(s);
	*sp = NULL;
}
