/* smtp-tool.c - drives the net/ SMTP client against a real (or fake) server for the
 * integration tests. Not installed.
 *
 *   smtp-tool [options] login                     connect, log in, print the extensions
 *   smtp-tool [options] send FROM RCPTS FILE...    send each FILE (streamed) over one
 *                                                  session; RCPTS is comma-separated
 * options: -h HOST -p PORT -u USER -w SECRET (or env SMTP_PASSWORD) -c CAFILE
 *          -s (implicit TLS) -P (plaintext, tls = off) -k (tls_verify = no)
 *          -m auto|plain|login|xoauth2   -S (announce each file's size)  -Z N (announce N)
 *          -8 (8-bit body) -U (SMTPUTF8) -A N (the reader fails after N bytes)
 *          -T MS (timeout) -t (protocol trace on stderr)
 * For each message: "result STATUS stage STAGE reply CODE ENHANCED TEXT accepted N/M",
 * then "rcpt ADDR CODE ENHANCED TEXT" per recipient (newlines in texts shown as " | ").
 * Exit status: 0 every message accepted, 1 failure (one line on stderr), 2 usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "net/log.h"
#include "net/smtp.h"

static const char *const status_names[] = {
    [SMTP_OK] = "OK",           [SMTP_ERR_CONN] = "CONN",       [SMTP_ERR_PROTOCOL] = "PROTOCOL",
    [SMTP_ERR_NOTLS] = "NOTLS", [SMTP_ERR_AUTH] = "AUTH",       [SMTP_ERR_TEMP] = "TEMP",
    [SMTP_ERR_PERM] = "PERM",   [SMTP_ERR_ABORTED] = "ABORTED",
};

struct src {
	int fd;
	long long fail_after; /* -1: never */
	long long done;
};

static ssize_t
file_reader(void *ctx, char *buf, size_t len)
{
	struct src *s = ctx;
	if (s->fail_after >= 0 && s->done >= s->fail_after)
		return -1;
	if (s->fail_after >= 0 && (long long)len > s->fail_after - s->done)
		len = (size_t)(s->fail_after - s->done);
	ssize_t n;
	do
		n = read(s->fd, buf, len);
	while (n < 0 && errno == EINTR);
	if (n > 0)
		s->done += n;
	return n;
}

static void
print_text(const char *t)
{
	for (; t != NULL && *t; t++) {
		if (*t == '\n')
			fputs(" | ", stdout);
		else
			putchar(*t);
	}
}

static char *
split_rcpts(char *list, const char ***rcpts_r, size_t *n_r)
{
	size_t n = 1;
	for (char *p = list; *p; p++)
		n += *p == ',';
	const char **r = calloc(n, sizeof(*r));
	size_t i = 0;
	for (char *tok = strtok(list, ","); tok != NULL && r != NULL; tok = strtok(NULL, ","))
		r[i++] = tok;
	*rcpts_r = r;
	*n_r = i;
	return list;
}

int
main(int argc, char **argv)
{
	struct smtp_opts o = {.host = "127.0.0.1", .tls = {.verify = true}};
	const char *user = NULL, *secret = getenv("SMTP_PASSWORD");
	enum smtp_auth_mech mech = SMTP_AUTH_AUTO;
	bool announce = false, eightbit = false, utf8 = false;
	long long fixed_size = -1, fail_after = -1;
	int opt;
	while ((opt = getopt(argc, argv, "h:p:u:w:c:sPkm:SZ:8UA:T:t")) != -1) {
		switch (opt) {
		case 'h':
			o.host = optarg;
			break;
		case 'p':
			o.port = (uint16_t)atoi(optarg);
			break;
		case 'u':
			user = optarg;
			break;
		case 'w':
			secret = optarg;
			break;
		case 'c':
			o.tls.ca_file = optarg;
			break;
		case 's':
			o.implicit_tls = true;
			break;
		case 'P':
			o.plaintext = true;
			break;
		case 'k':
			o.tls.verify = false;
			break;
		case 'm':
			if (strcmp(optarg, "plain") == 0)
				mech = SMTP_AUTH_PLAIN;
			else if (strcmp(optarg, "login") == 0)
				mech = SMTP_AUTH_LOGIN;
			else if (strcmp(optarg, "xoauth2") == 0)
				mech = SMTP_AUTH_XOAUTH2;
			else if (strcmp(optarg, "auto") != 0)
				return 2;
			break;
		case 'S':
			announce = true;
			break;
		case 'Z':
			fixed_size = atoll(optarg);
			break;
		case '8':
			eightbit = true;
			break;
		case 'U':
			utf8 = true;
			break;
		case 'A':
			fail_after = atoll(optarg);
			break;
		case 'T':
			o.timeout_ms = o.final_timeout_ms = atoi(optarg);
			break;
		case 't':
			log_set_level(LOG_LEVEL_DEBUG);
			log_set_trace(true);
			break;
		default:
			return 2;
		}
	}
	if (optind >= argc || o.port == 0) {
		fprintf(stderr, "usage: smtp-tool -p PORT [-u USER -w SECRET] [-c CA] [-s] "
				"login | send FROM RCPTS FILE...\n");
		return 2;
	}
	o.trace = "smtp";
	const char *cmd = argv[optind];
	char err[1024];
	struct smtp *s = NULL;
	if (smtp_connect(&o, &s, err, sizeof(err)) != SMTP_OK) {
		fprintf(stderr, "smtp-tool: %s\n", err);
		return 1;
	}
	int ret = 1;
	enum smtp_err e = smtp_login(s, mech, user, secret);
	if (e != SMTP_OK) {
		fprintf(stderr, "smtp-tool: %s: %s\n", status_names[e], smtp_errmsg(s));
		goto out;
	}
	if (strcmp(cmd, "login") == 0) {
		static const char *const kws[] = {"PIPELINING",         "SIZE",     "8BITMIME",
						  "SMTPUTF8",           "STARTTLS", "AUTH",
						  "ENHANCEDSTATUSCODES"};
		for (size_t i = 0; i < sizeof(kws) / sizeof(kws[0]); i++)
			if (smtp_has_ext(s, kws[i]))
				printf("%s ", kws[i]);
		printf("size-limit %llu\n", (unsigned long long)smtp_size_limit(s));
		char d[128];
		printf("tls %s\n", conn_describe(smtp_conn(s), d, sizeof(d)));
		ret = 0;
	} else if (strcmp(cmd, "send") == 0 && optind + 3 < argc) {
		const char **rcpts;
		size_t n;
		split_rcpts(argv[optind + 2], &rcpts, &n);
		ret = 0;
		for (int f = optind + 3; f < argc; f++) {
			struct src src = {.fd = open(argv[f], O_RDONLY | O_CLOEXEC),
					  .fail_after = fail_after};
			struct stat st;
			if (src.fd < 0 || fstat(src.fd, &st) < 0) {
				fprintf(stderr, "smtp-tool: %s: %s\n", argv[f], strerror(errno));
				ret = 1;
				break;
			}
			struct smtp_envelope env = {
			    .from = argv[optind + 1],
			    .rcpts = rcpts,
			    .nrcpts = n,
			    .size = fixed_size >= 0 ? (uint64_t)fixed_size
				    : announce      ? (uint64_t)st.st_size
						    : 0,
			    .body_8bit = eightbit,
			    .smtputf8 = utf8,
			};
			struct smtp_send_result res;
			e = smtp_send(s, &env, file_reader, &src, &res);
			close(src.fd);
			printf("result %s stage %s reply %d %s ", status_names[res.status],
			       res.stage, res.reply.code,
			       res.reply.enhanced[0] ? res.reply.enhanced : "-");
			print_text(res.reply.text);
			printf(" accepted %zu/%zu\n", res.naccepted, res.nrcpt);
			for (size_t i = 0; i < res.nrcpt; i++) {
				printf("rcpt %s %d %s ", rcpts[i], res.rcpt[i].code,
				       res.rcpt[i].enhanced[0] ? res.rcpt[i].enhanced : "-");
				print_text(res.rcpt[i].text);
				printf("\n");
			}
			smtp_send_result_free(&res);
			if (e != SMTP_OK) {
				fprintf(stderr, "smtp-tool: %s: %s\n", status_names[e],
					smtp_errmsg(s));
				ret = 1;
			}
		}
		free(rcpts);
	} else {
		fprintf(stderr, "smtp-tool: unknown command %s\n", cmd);
		ret = 2;
	}
out:
	fflush(stdout);
	smtp_close(&s);
	return ret;
}
