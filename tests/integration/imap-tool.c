/* imap-tool.c - drives the net/ IMAP client against a real server for the integration
 * tests and for `scripts/bench fetch`. Not installed.
 *
 *   imap-tool [options] login                 connect and log in, print capabilities
 *   imap-tool [options] list                  one line per mailbox: raw TAB utf8 TAB flags
 *   imap-tool [options] status MAILBOX         "messages N uidnext N uidvalidity N"
 *   imap-tool [options] fetch MAILBOX OUTDIR   every message into OUTDIR/<uid>.eml
 *   imap-tool [options] fetch-discard MAILBOX  every message, bytes discarded; prints
 *                                             "messages N bytes N seconds S"
 *   imap-tool [options] head MAILBOX UID N     first N bytes of one message (partial FETCH)
 * options: -h HOST -p PORT -u USER -w PASSWORD (or env IMAP_PASSWORD) -c CAFILE
 *          -s (implicit TLS) -P (plaintext, tls = off) -k (tls_verify = no)
 *          -b BATCH (UIDs per UID FETCH, default 200) -i INFLIGHT (pipelined, default 16)
 *          -t (protocol trace on stderr)
 * Mailbox arguments are UTF-8 names with "/" as delimiter, as `list` prints them.
 * Exit status: 0 success, 1 failure (one line on stderr), 2 usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "net/imap-utf7.h"
#include "net/imap.h"
#include "net/log.h"

struct sink {
	const char *outdir; /* NULL: discard */
	int fd;
	uint64_t bytes;
	uint64_t expected;
	uint64_t got;
	uint32_t messages;
	uint32_t cur_uid;
	char path[4096];
	char tmp[4096];
	int failed;
};

static int
body_begin(void *ctx, uint32_t seq, uint32_t uid, const char *section, uint64_t size)
{
	(void)uid;
	(void)section;
	struct sink *s = ctx;
	s->expected = size;
	s->got = 0;
	if (s->outdir == NULL)
		return 0;
	snprintf(s->tmp, sizeof(s->tmp), "%s/.seq-%u.tmp", s->outdir, seq);
	s->fd = open(s->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	return s->fd < 0 ? -1 : 0;
}

static int
body_data(void *ctx, const unsigned char *data, size_t len)
{
	struct sink *s = ctx;
	s->got += len;
	s->bytes += len;
	if (s->fd >= 0) {
		while (len > 0) {
			ssize_t n = write(s->fd, data, len);
			if (n < 0)
				return -1;
			data += n;
			len -= (size_t)n;
		}
	}
	return 0;
}

static int
body_end(void *ctx)
{
	struct sink *s = ctx;
	if (s->got != s->expected)
		return -1;
	if (s->fd >= 0) {
		if (close(s->fd) < 0)
			return -1;
		s->fd = -1;
	}
	return 0;
}

static int
on_fetch(void *ctx, uint32_t seq, const struct imap_arg *attrs, size_t n)
{
	struct sink *s = ctx;
	const struct imap_arg *uid = imap_fetch_find(attrs, n, "UID");
	uint32_t u;
	if (uid == NULL || imap_arg_u32(uid, &u) < 0)
		return -1;
	bool has_body = false;
	for (size_t i = 0; i + 1 < n; i += 2)
		if (attrs[i + 1].type == IMAP_ARG_STREAMED)
			has_body = true;
	if (!has_body)
		return 0; /* an unsolicited flag update */
	s->messages++;
	if (s->outdir != NULL) {
		snprintf(s->path, sizeof(s->path), "%s/%u.eml", s->outdir, u);
		char tmp[4096];
		snprintf(tmp, sizeof(tmp), "%s/.seq-%u.tmp", s->outdir, seq);
		if (rename(tmp, s->path) < 0)
			return -1;
	}
	return 0;
}

static const struct imap_fetch_handler handler = {
	.body_begin = body_begin,
	.body_data = body_data,
	.body_end = body_end,
	.fetch = on_fetch,
};

static double
now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Find the raw (modified UTF-7, server delimiter) name of a mailbox given as UTF-8 with "/". */
static char *
raw_name(struct imap *c, const char *want)
{
	struct imap_mbox *list = NULL;
	size_t n = 0;
	char *raw = NULL;
	if (imap_list(c, &list, &n) != IMAP_OK)
		return NULL;
	for (size_t i = 0; i < n && raw == NULL; i++) {
		char name[2048];
		if (strcmp(imap_mbox_path(&list[i], name, sizeof(name)), want) == 0)
			raw = strdup(list[i].raw);
	}
	imap_mbox_list_free(&list, n);
	return raw;
}

static int
fetch_all(struct imap *c, const char *mailbox, const char *outdir, unsigned batch)
{
	char *raw = raw_name(c, mailbox);
	if (raw == NULL) {
		fprintf(stderr, "imap-tool: no mailbox %s\n", mailbox);
		return 1;
	}
	struct imap_select_info si;
	uint32_t *uids = NULL;
	size_t nuids = 0;
	int ret = 1;
	double t0 = now();
	if (imap_select(c, raw, true, &si) != IMAP_OK ||
	    imap_uid_search(c, "ALL", &uids, &nuids) != IMAP_OK) {
		fprintf(stderr, "imap-tool: %s\n", imap_errmsg(c));
		goto out;
	}
	struct sink s = { .outdir = outdir, .fd = -1 };
	imap_set_fetch_handler(c, &handler, &s);
	/* Pipelined batches: UID FETCH a:b (UID BODY.PEEK[]) with a bounded number in flight. */
	for (size_t i = 0; i < nuids; i += batch) {
		size_t last = i + batch - 1 < nuids ? i + batch - 1 : nuids - 1;
		unsigned id;
		if (imap_send(c, &id, "UID FETCH %u:%u (UID BODY.PEEK[])", uids[i], uids[last]) !=
		    IMAP_OK) {
			fprintf(stderr, "imap-tool: %s\n", imap_errmsg(c));
			goto out;
		}
	}
	if (imap_wait_all(c) != IMAP_OK) {
		fprintf(stderr, "imap-tool: %s\n", imap_errmsg(c));
		goto out;
	}
	double t1 = now();
	if (s.messages != nuids) {
		fprintf(stderr, "imap-tool: fetched %u messages, the mailbox has %zu\n", s.messages,
			nuids);
		goto out;
	}
	printf("messages %u bytes %llu seconds %.3f\n", s.messages, (unsigned long long)s.bytes,
	       t1 - t0);
	ret = 0;
out:
	imap_set_fetch_handler(c, NULL, NULL);
	free(uids);
	free(raw);
	return ret;
}

static int
head_one(struct imap *c, const char *mailbox, const char *uid, const char *count)
{
	char *raw = raw_name(c, mailbox);
	struct imap_select_info si;
	if (raw == NULL || imap_select(c, raw, true, &si) != IMAP_OK) {
		fprintf(stderr, "imap-tool: cannot select %s\n", mailbox);
		free(raw);
		return 1;
	}
	free(raw);
	struct sink s = { .outdir = NULL, .fd = STDOUT_FILENO };
	imap_set_fetch_handler(c, &handler, &s);
	unsigned id;
	if (imap_send(c, &id, "UID FETCH %s (UID BODY.PEEK[]<0.%s>)", uid, count) != IMAP_OK ||
	    imap_wait(c, id) != IMAP_OK) {
		fprintf(stderr, "imap-tool: %s\n", imap_errmsg(c));
		return 1;
	}
	fprintf(stderr, "received %llu bytes in all\n",
		(unsigned long long)conn_bytes_in(imap_conn(c)));
	s.fd = -1;
	return 0;
}

int
main(int argc, char **argv)
{
	struct imap_opts o = { .host = "127.0.0.1", .tls = { .verify = true } };
	const char *user = NULL, *password = getenv("IMAP_PASSWORD");
	unsigned batch = 200;
	int opt;
	while ((opt = getopt(argc, argv, "h:p:u:w:c:sPkb:i:t")) != -1) {
		switch (opt) {
		case 'h': o.host = optarg; break;
		case 'p': o.port = (uint16_t)atoi(optarg); break;
		case 'u': user = optarg; break;
		case 'w': password = optarg; break;
		case 'c': o.tls.ca_file = optarg; break;
		case 's': o.implicit_tls = true; break;
		case 'P': o.plaintext = true; break;
		case 'k': o.tls.verify = false; break;
		case 'b': batch = (unsigned)atoi(optarg); break;
		case 'i': o.max_inflight = (unsigned)atoi(optarg); break;
		case 't':
			log_set_level(LOG_LEVEL_DEBUG);
			log_set_trace(true);
			break;
		default: return 2;
		}
	}
	if (optind >= argc || o.port == 0 || user == NULL || password == NULL || batch == 0) {
		fprintf(stderr, "usage: imap-tool -p PORT -u USER -w PASSWORD [-c CA] [-s] COMMAND\n");
		return 2;
	}
	if (o.max_inflight == 0)
		o.max_inflight = 16;
	const char *cmd = argv[optind];
	char err[1024];
	struct imap *c = NULL;
	if (imap_connect(&o, &c, err, sizeof(err)) != IMAP_OK) {
		fprintf(stderr, "imap-tool: %s\n", err);
		return 1;
	}
	int ret = 1;
	if (imap_login(c, user, password) != IMAP_OK) {
		fprintf(stderr, "imap-tool: %s\n", imap_errmsg(c));
		goto out;
	}
	if (strcmp(cmd, "login") == 0) {
		printf("%s\n", imap_caps(c));
		ret = 0;
	} else if (strcmp(cmd, "list") == 0) {
		struct imap_mbox *list = NULL;
		size_t n = 0;
		if (imap_list(c, &list, &n) != IMAP_OK) {
			fprintf(stderr, "imap-tool: %s\n", imap_errmsg(c));
			goto out;
		}
		for (size_t i = 0; i < n; i++) {
			char name[2048];
			printf("%s\t%s\t%u\n", list[i].raw,
			       imap_mbox_path(&list[i], name, sizeof(name)), list[i].flags);
		}
		imap_mbox_list_free(&list, n);
		ret = 0;
	} else if (strcmp(cmd, "status") == 0 && optind + 1 < argc) {
		char *raw = raw_name(c, argv[optind + 1]);
		struct imap_status_info st;
		if (raw != NULL && imap_status(c, raw, &st) == IMAP_OK) {
			printf("messages %u uidnext %u uidvalidity %u\n", st.messages, st.uidnext,
			       st.uidvalidity);
			ret = 0;
		} else {
			fprintf(stderr, "imap-tool: status failed: %s\n", imap_errmsg(c));
		}
		free(raw);
	} else if (strcmp(cmd, "fetch") == 0 && optind + 2 < argc) {
		ret = fetch_all(c, argv[optind + 1], argv[optind + 2], batch);
	} else if (strcmp(cmd, "fetch-discard") == 0 && optind + 1 < argc) {
		ret = fetch_all(c, argv[optind + 1], NULL, batch);
	} else if (strcmp(cmd, "head") == 0 && optind + 3 < argc) {
		ret = head_one(c, argv[optind + 1], argv[optind + 2], argv[optind + 3]);
	} else {
		fprintf(stderr, "imap-tool: unknown command %s\n", cmd);
		ret = 2;
	}
out:
	imap_close(&c);
	return ret;
}
