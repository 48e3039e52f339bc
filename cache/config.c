/* config.c - read and validate the mailfs configuration file (see config.h).
 *
 * What it does: splits the INI text into lines (LF or CRLF, at most 4096 bytes each, 1 MiB in
 * all), reads `[account NAME]` sections and `key = value` lines with optional double-quoted
 * values, checks every value (server URLs, booleans, durations, folder patterns, names, paths
 * with ~ expanded from HOME) and the rules that span a section (imap or pop3, a user, one
 * password source), refuses a `password` in a file that others may read, and runs
 * `password_cmd` when the caller asks for the password (cfg_password()).
 *
 * What it does not do: connect anywhere, create the cache directory, open ca_file, apply the
 * command line overrides (-o cache_dir=), or keep a password it fetched: the caller owns and
 * wipes it. The warning about tls = off is logged once here; warnings about tls_verify = no
 * belong to each connection. Error messages never quote a value (it may be a password). */
#include "cache/config.h"

#include "net/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CFG_MAX_FILE (1024 * 1024)
#define CFG_MAX_LINE 4096
#define CFG_MAX_NAME 64
#define CFG_MAX_HOST 253
#define CFG_POLL_MIN 5
#define CFG_POLL_MAX 86400
#define CFG_POLL_DEFAULT 60
#define CFG_PREFETCH_MAX_DAYS 36500
#define CFG_PW_MAX (64 * 1024)
/* Overridable at build time so that the unit tests can check the timeout quickly. */
#ifndef CFG_PASSWORD_TIMEOUT_MS
#define CFG_PASSWORD_TIMEOUT_MS 30000
#endif

enum key_id {
	K_CACHE_DIR,
	K_DEBUG,
	K_IMAP,
	K_POP3,
	K_SMTP,
	K_USER,
	K_PASSWORD,
	K_PASSWORD_CMD,
	K_FROM,
	K_CA_FILE,
	K_TLS,
	K_TLS_VERIFY,
	K_AUTH,
	K_PREFETCH,
	K_POLL,
	K_OUTBOX,
	K_SENT,
	K_DRAFTS,
	K_TRASH,
	K_SAVE_SENT,
	K_DELETE,
	K_POP3_DELETE,
	K_FOLDERS,
	K_COUNT
};

/* Where a key may appear: before the first section, in any account, or in an account of one
 * protocol only (a key that could only be ignored is an error, never silently dropped). */
enum key_scope { SCOPE_GLOBAL, SCOPE_ACCOUNT, SCOPE_IMAP, SCOPE_POP3 };
/* How a value is stored: generically at `off` in struct cfg (globals) or struct cfg_account,
 * or by set_key() itself (T_OWN). */
enum key_type { T_STR, T_PATH, T_BOOL, T_URL, T_OWN };

#define ACC(field) offsetof(struct cfg_account, field)
static const struct key {
	const char *name;
	enum key_scope scope;
	enum key_type type;
	size_t off;
} keys[K_COUNT] = {
    [K_CACHE_DIR] = {"cache_dir", SCOPE_GLOBAL, T_PATH, offsetof(struct cfg, cache_dir)},
    [K_DEBUG] = {"debug", SCOPE_GLOBAL, T_BOOL, offsetof(struct cfg, debug)},
    [K_IMAP] = {"imap", SCOPE_ACCOUNT, T_URL, ACC(imap)},
    [K_POP3] = {"pop3", SCOPE_ACCOUNT, T_URL, ACC(pop3)},
    [K_SMTP] = {"smtp", SCOPE_ACCOUNT, T_URL, ACC(smtp)},
    [K_USER] = {"user", SCOPE_ACCOUNT, T_STR, ACC(user)},
    [K_PASSWORD] = {"password", SCOPE_ACCOUNT, T_STR, ACC(password)},
    [K_PASSWORD_CMD] = {"password_cmd", SCOPE_ACCOUNT, T_STR, ACC(password_cmd)},
    [K_FROM] = {"from", SCOPE_ACCOUNT, T_STR, ACC(from)},
    [K_CA_FILE] = {"ca_file", SCOPE_ACCOUNT, T_PATH, ACC(ca_file)},
    [K_TLS] = {"tls", SCOPE_ACCOUNT, T_BOOL, ACC(tls)},
    [K_TLS_VERIFY] = {"tls_verify", SCOPE_ACCOUNT, T_BOOL, ACC(tls_verify)},
    [K_AUTH] = {"auth", SCOPE_ACCOUNT, T_OWN, 0},
    [K_PREFETCH] = {"prefetch", SCOPE_ACCOUNT, T_OWN, 0},
    [K_POLL] = {"poll", SCOPE_ACCOUNT, T_OWN, 0},
    [K_OUTBOX] = {"outbox", SCOPE_ACCOUNT, T_OWN, 0},
    [K_SENT] = {"sent", SCOPE_IMAP, T_STR, ACC(sent)},
    [K_DRAFTS] = {"drafts", SCOPE_IMAP, T_STR, ACC(drafts)},
    [K_TRASH] = {"trash", SCOPE_IMAP, T_STR, ACC(trash)},
    [K_SAVE_SENT] = {"save_sent", SCOPE_IMAP, T_BOOL, ACC(save_sent)},
    [K_DELETE] = {"delete", SCOPE_IMAP, T_OWN, 0},
    [K_POP3_DELETE] = {"pop3_delete", SCOPE_POP3, T_OWN, 0},
    [K_FOLDERS] = {"folders", SCOPE_IMAP, T_OWN, 0},
};
#undef ACC

/* URL schemes, their protocol and default port. */
static const struct scheme {
	const char *name;
	enum cfg_proto proto;
	bool implicit_tls;
	uint16_t port;
} schemes[] = {
    {"imap", CFG_PROTO_IMAP, false, 143}, {"imaps", CFG_PROTO_IMAP, true, 993},
    {"pop3", CFG_PROTO_POP3, false, 110}, {"pop3s", CFG_PROTO_POP3, true, 995},
    {"smtp", CFG_PROTO_SMTP, false, 587}, {"smtps", CFG_PROTO_SMTP, true, 465},
};

struct parser {
	const char *name; /* borrowed: file name for messages */
	char *err;        /* borrowed */
	size_t errlen;
	struct cfg *cfg; /* owned until handed to the caller */
	size_t accounts_size;
	unsigned line;
	struct cfg_account *acct;    /* the section being read; NULL before the first */
	unsigned seen[K_COUNT];      /* line of each key in the current section (or the globals) */
	bool has_password;           /* some account has a `password` key */
	char text[CFG_MAX_LINE + 1]; /* the current line; wiped at the end */
	char val[CFG_MAX_LINE + 1];  /* the current value, unquoted; wiped at the end */
};

/* --- small helpers ------------------------------------------------------------------- */

static bool
is_ws(char c)
{
	return c == ' ' || c == '\t';
}

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool
is_alnum(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Host names, keys and account names: [A-Za-z0-9._-]. */
static bool
is_name_char(char c)
{
	return is_alnum(c) || c == '-' || c == '.' || c == '_';
}

static char
ascii_lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* Locale-independent case-insensitive comparison of n bytes of a against NUL-terminated b. */
static bool
ascii_ieq_n(const char *a, size_t n, const char *b)
{
	size_t i;
	for (i = 0; i < n; i++)
		if (b[i] == '\0' || ascii_lower(a[i]) != ascii_lower(b[i]))
			return false;
	return b[i] == '\0';
}

static bool
ascii_ieq(const char *a, const char *b)
{
	return ascii_ieq_n(a, strlen(a), b);
}

static char *
skip_ws(const char *s)
{
	while (is_ws(*s))
		s++;
	return (char *)s;
}

/* A ';' or '#' at s starts a comment if it is at the start of the line or after white space. */
static bool
is_comment(const char *line, const char *s)
{
	return (*s == ';' || *s == '#') && (s == line || is_ws(s[-1]));
}

static char *
concat(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	char *s = malloc(la + lb + 1);
	if (s == NULL)
		return NULL;
	memcpy(s, a, la);
	memcpy(s + la, b, lb + 1);
	return s;
}

/* A non-empty environment variable; XDG_* must be absolute paths (the spec says to ignore
 * others). */
static const char *
env(const char *var)
{
	const char *v = getenv(var);
	if (v == NULL || v[0] == '\0' || (var[0] == 'X' && v[0] != '/'))
		return NULL;
	return v;
}

/* --- error messages ------------------------------------------------------------------ */

/* Format one line into err: control characters become '?', and a truncated message does not
 * end inside a UTF-8 sequence. */
static void __attribute__((format(printf, 3, 0)))
verr(char *err, size_t errlen, const char *fmt, va_list ap)
{
	if (err == NULL || errlen == 0)
		return;
	int n = vsnprintf(err, errlen, fmt, ap);
	if (n < 0) {
		err[0] = '\0';
		return;
	}
	size_t len = strlen(err);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)err[i];
		if (c < 0x20 || c == 0x7f)
			err[i] = '?';
	}
	if ((size_t)n < errlen)
		return;
	size_t i = len;
	while (i > 0 && ((unsigned char)err[i - 1] & 0xc0) == 0x80)
		i--;
	if (i > 0 && (unsigned char)err[i - 1] >= 0xc0) {
		unsigned char lead = (unsigned char)err[i - 1];
		size_t need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : 2;
		if (len - (i - 1) < need)
			err[i - 1] = '\0';
	} else if (i < len) {
		err[i] = '\0'; /* continuation bytes without a lead */
	}
}

static void __attribute__((format(printf, 3, 4)))
set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	verr(err, errlen, fmt, ap);
	va_end(ap);
}

/* Report "NAME:LINE: reason" (or "NAME: reason" when line is 0); returns -1. */
static int __attribute__((format(printf, 3, 4)))
fail(struct parser *ps, unsigned line, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (line > 0)
		set_err(ps->err, ps->errlen, "%s:%u: %s", ps->name, line, msg);
	else
		set_err(ps->err, ps->errlen, "%s: %s", ps->name, msg);
	return -1;
}

static int
fail_oom(struct parser *ps)
{
	return fail(ps, 0, "out of memory");
}

/* --- values -------------------------------------------------------------------------- */

/* Read a double-quoted string starting at *sp (on the opening quote) into out, with the
 * escapes \" and \\. Leaves *sp after the closing quote. */
static int
read_quoted(struct parser *ps, const char **sp, char *out)
{
	const char *s = *sp + 1;
	for (;;) {
		if (*s == '\0')
			return fail(ps, ps->line, "unterminated quote");
		if (*s == '"')
			break;
		if (*s == '\\') {
			if (s[1] == '"' || s[1] == '\\') {
				*out++ = s[1];
				s += 2;
				continue;
			}
			if (s[1] == '\0')
				return fail(ps, ps->line, "unterminated quote");
			return fail(ps, ps->line,
				    "bad escape in quoted value (only \\\" and \\\\ are allowed)");
		}
		*out++ = *s++;
	}
	*out = '\0';
	*sp = s + 1;
	return 0;
}

/* The value after '=' (raw: the rest of the line) into ps->val: quoted, or up to a comment
 * and trimmed. */
static int
parse_value(struct parser *ps, const char *raw)
{
	const char *s = skip_ws(raw);
	if (*s == '"') {
		if (read_quoted(ps, &s, ps->val) < 0)
			return -1;
		s = skip_ws(s);
		if (*s != '\0' && *s != ';' && *s != '#')
			return fail(ps, ps->line,
				    "text after the closing quote (to keep quotes inside a value, "
				    "quote all of it and write \\\")");
		return 0;
	}
	const char *e = s;
	while (*e != '\0' && !is_comment(ps->text, e))
		e++;
	while (e > s && is_ws(e[-1]))
		e--;
	memcpy(ps->val, s, (size_t)(e - s));
	ps->val[e - s] = '\0';
	return 0;
}

/* Decimal digits into *n, at most max; -1 if not a number, -2 if above max. */
static int
parse_uint(const char **sp, unsigned long max, unsigned long *n)
{
	const char *s = *sp;
	unsigned long v = 0;
	if (!is_digit(*s))
		return -1;
	for (; is_digit(*s); s++) {
		v = v * 10 + (unsigned long)(*s - '0');
		if (v > max) {
			while (is_digit(*s))
				s++;
			*sp = s;
			return -2;
		}
	}
	*sp = s;
	*n = v;
	return 0;
}

static int
set_str(struct parser *ps, char **dst, const char *v)
{
	*dst = strdup(v);
	return *dst == NULL ? fail_oom(ps) : 0;
}

/* cache_dir, ca_file: "~" or "~/..." from HOME; the result must be absolute. */
static int
set_path(struct parser *ps, char **dst, const char *v, const char *key)
{
	if (v[0] == '~') {
		if (v[1] != '\0' && v[1] != '/')
			return fail(ps, ps->line,
				    "'%s': ~user is not supported (use ~/ or a full path)", key);
		const char *home = env("HOME");
		if (home == NULL)
			return fail(ps, ps->line, "'%s': HOME is not set, cannot expand '~'", key);
		*dst = concat(home, v + 1);
		if (*dst == NULL)
			return fail_oom(ps);
	} else if (set_str(ps, dst, v) < 0) {
		return -1;
	}
	if ((*dst)[0] != '/')
		return fail(ps, ps->line, "'%s' must be an absolute path (or start with ~/)", key);
	return 0;
}

/* URL = scheme "://" ( host / "[" IPv6 "]" ) [ ":" port ] [ "/" ]
 * `key` is also the plain scheme: "imap" accepts imap:// and imaps://. */
static int
set_url(struct parser *ps, struct cfg_url *u, const char *v, const char *key)
{
	char host[CFG_MAX_HOST + 1];
	const struct scheme *sc = NULL;
	enum cfg_proto proto = CFG_PROTO_IMAP;
	for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++)
		if (strcmp(schemes[i].name, key) == 0)
			proto = schemes[i].proto;
	const char *sep = strstr(v, "://");
	if (sep == NULL)
		return fail(ps, ps->line,
			    "'%s' must be a URL: %s://HOST[:PORT] or %ss://HOST[:PORT]", key, key,
			    key);
	for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++)
		if (ascii_ieq_n(v, (size_t)(sep - v), schemes[i].name))
			sc = &schemes[i];
	if (sc == NULL || sc->proto != proto)
		return fail(ps, ps->line, "'%s': the URL must start with %s:// or %ss://", key, key,
			    key);
	const char *h = sep + 3;
	if (strchr(h, '@') != NULL)
		return fail(ps, ps->line, "'%s': no user name in the URL (use 'user = ...')", key);
	const char *p;
	if (*h == '[') {
		const char *rb = strchr(h, ']');
		if (rb == NULL)
			return fail(ps, ps->line, "'%s': missing ']' after the IPv6 address", key);
		size_t hl = (size_t)(rb - h - 1);
		struct in6_addr a6;
		if (hl == 0 || hl >= INET6_ADDRSTRLEN)
			return fail(ps, ps->line, "'%s': bad IPv6 address", key);
		memcpy(host, h + 1, hl);
		host[hl] = '\0';
		if (inet_pton(AF_INET6, host, &a6) != 1)
			return fail(ps, ps->line, "'%s': bad IPv6 address", key);
		p = rb + 1;
	} else {
		p = h;
		while (is_name_char(*p))
			p++;
		size_t hl = (size_t)(p - h);
		if (hl == 0)
			return fail(ps, ps->line, "'%s': missing host name in the URL", key);
		if (hl > CFG_MAX_HOST)
			return fail(ps, ps->line, "'%s': host name longer than %d bytes", key,
				    CFG_MAX_HOST);
		memcpy(host, h, hl);
		host[hl] = '\0';
	}
	unsigned long port = sc->port;
	if (*p == ':') {
		p++;
		int r = parse_uint(&p, 65535, &port);
		if (r == -1)
			return fail(ps, ps->line, "'%s': missing port number after ':'", key);
		if (r == -2 || port == 0)
			return fail(ps, ps->line, "'%s': port out of range (1-65535)", key);
	}
	if (*p == '/')
		p++;
	if (*p != '\0')
		return fail(ps, ps->line,
			    "'%s': only %s://HOST[:PORT] is allowed (no path, query or other text)",
			    key, sc->name);
	u->host = strdup(host);
	if (u->host == NULL)
		return fail_oom(ps);
	u->set = true;
	u->proto = proto;
	u->implicit_tls = sc->implicit_tls;
	u->port = (uint16_t)port;
	return 0;
}

/* poll = N | Ns | Nm | Nh, 5 s to 24 h */
static int
set_poll(struct parser *ps, unsigned *secs, const char *v)
{
	static const char units[] = "smh";
	static const unsigned long mults[] = {1, 60, 3600};
	const char *p = v, *u;
	unsigned long n = 0, mult = 1;
	int r = parse_uint(&p, CFG_POLL_MAX, &n);
	if (*p != '\0' && (u = strchr(units, ascii_lower(*p))) != NULL) {
		mult = mults[u - units];
		p++;
	}
	if (r == -1 || *p != '\0')
		return fail(ps, ps->line,
			    "bad value for 'poll': expected N, Ns, Nm or Nh (seconds, minutes, "
			    "hours)");
	if (r == -2 || n > CFG_POLL_MAX / mult || n * mult < CFG_POLL_MIN)
		return fail(ps, ps->line, "'poll' must be between %ds and 24h", CFG_POLL_MIN);
	*secs = (unsigned)(n * mult);
	return 0;
}

/* prefetch = all | none | Nd */
static int
set_prefetch(struct parser *ps, struct cfg_account *a, const char *v)
{
	if (ascii_ieq(v, "all") || ascii_ieq(v, "none")) {
		a->prefetch = ascii_ieq(v, "all") ? CFG_PREFETCH_ALL : CFG_PREFETCH_NONE;
		return 0;
	}
	const char *p = v;
	unsigned long n = 0;
	int r = parse_uint(&p, CFG_PREFETCH_MAX_DAYS, &n);
	if (r == -1 || ascii_lower(*p) != 'd' || p[1] != '\0')
		return fail(ps, ps->line,
			    "bad value for 'prefetch': expected all, none or Nd "
			    "(days, e.g. 30d)");
	if (r == -2 || n == 0)
		return fail(ps, ps->line, "'prefetch' days must be between 1 and %d",
			    CFG_PREFETCH_MAX_DAYS);
	a->prefetch = CFG_PREFETCH_DAYS;
	a->prefetch_days = (unsigned)n;
	return 0;
}

/* outbox = NAME: one file name, not INBOX (an account's directory already has one). */
static int
set_outbox(struct parser *ps, struct cfg_account *a, const char *v)
{
	if (strchr(v, '/') != NULL || strcmp(v, ".") == 0 || strcmp(v, "..") == 0 ||
	    strlen(v) > 255)
		return fail(ps, ps->line,
			    "'outbox' must be one file name (no '/', not '.' or '..', at most 255 "
			    "bytes)");
	if (ascii_ieq(v, "INBOX"))
		return fail(ps, ps->line, "'outbox' cannot be named INBOX");
	return set_str(ps, &a->outbox, v);
}

/* folders = pattern ... : space separated, a pattern with spaces in double quotes. */
static int
set_folders(struct parser *ps, struct cfg_account *a, const char *raw)
{
	const char *s = raw;
	bool done = false;
	while (!done) {
		s = skip_ws(s);
		if (*s == '\0' || is_comment(ps->text, s))
			break;
		char *o = ps->val;
		if (*s == '"') {
			if (read_quoted(ps, &s, o) < 0)
				return -1;
			if (*s != '\0' && !is_ws(*s) && *s != ';' && *s != '#')
				return fail(ps, ps->line, "text after the closing quote");
			if (o[0] == '\0')
				return fail(ps, ps->line, "empty folder pattern");
			if (*s == ';' || *s == '#')
				done = true; /* a comment right after the quote */
		} else {
			while (*s != '\0' && !is_ws(*s)) {
				if (*s == '"')
					return fail(ps, ps->line,
						    "'\"' inside a folder pattern (quote "
						    "the whole pattern)");
				*o++ = *s++;
			}
			*o = '\0';
		}
		char **f = realloc(a->folders, (a->nfolders + 1) * sizeof(*f));
		if (f == NULL)
			return fail_oom(ps);
		a->folders = f;
		f[a->nfolders] = strdup(ps->val);
		if (f[a->nfolders] == NULL)
			return fail_oom(ps);
		a->nfolders++;
	}
	if (a->nfolders == 0)
		return fail(ps, ps->line, "empty value for 'folders'");
	return 0;
}

/* One of n words (case-insensitive) into *out, its index; `expect` lists them for humans. */
static int
set_enum(struct parser *ps, const char *v, const char *key, const char *const *words, int n,
	 const char *expect, int *out)
{
	for (*out = 0; *out < n; (*out)++)
		if (ascii_ieq(v, words[*out]))
			return 0;
	return fail(ps, ps->line, "bad value for '%s': expected %s", key, expect);
}

static int
set_bool(struct parser *ps, bool *b, const char *v, const char *key)
{
	static const char *const words[] = {"no", "yes", "off", "on", "false", "true", "0", "1"};
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
		if (ascii_ieq(v, words[i])) {
			*b = i % 2 == 1;
			return 0;
		}
	}
	return fail(ps, ps->line,
		    "bad value for '%s': expected yes or no (on/off, true/false, 1/0)", key);
}

/* Store a value (all but folders) that has been read into ps->val. */
static int
set_key(struct parser *ps, enum key_id id, const char *v)
{
	static const char *const auths[] = {"plain", "login", "xoauth2"};
	static const char *const deletes[] = {"trash", "expunge"};
	static const char *const pop3_deletes[] = {"never", "after_cache"};
	struct cfg_account *a = ps->acct;
	const char *key = keys[id].name;
	void *field = (keys[id].scope == SCOPE_GLOBAL ? (char *)ps->cfg : (char *)a) + keys[id].off;
	int e = 0;

	switch (keys[id].type) {
	case T_STR:
		return set_str(ps, field, v);
	case T_PATH:
		return set_path(ps, field, v, key);
	case T_BOOL:
		return set_bool(ps, field, v, key);
	case T_URL:
		return set_url(ps, field, v, key);
	case T_OWN:
		break;
	}
	switch (id) {
	case K_AUTH:
		if (set_enum(ps, v, key, auths, 3, "plain, login or xoauth2", &e) < 0)
			return -1;
		a->auth = (enum cfg_auth)(CFG_AUTH_PLAIN + e);
		return 0;
	case K_PREFETCH:
		return set_prefetch(ps, a, v);
	case K_POLL:
		return set_poll(ps, &a->poll_seconds, v);
	case K_OUTBOX:
		return set_outbox(ps, a, v);
	case K_DELETE:
		if (set_enum(ps, v, key, deletes, 2, "trash or expunge", &e) < 0)
			return -1;
		a->delete_mode = e == 0 ? CFG_DELETE_TRASH : CFG_DELETE_EXPUNGE;
		return 0;
	case K_POP3_DELETE:
		if (set_enum(ps, v, key, pop3_deletes, 2, "never or after_cache", &e) < 0)
			return -1;
		a->pop3_delete = e == 0 ? CFG_POP3_DELETE_NEVER : CFG_POP3_DELETE_AFTER_CACHE;
		return 0;
	default:
		return fail(ps, ps->line, "internal error: key '%s'", key);
	}
}

/* --- lines and sections -------------------------------------------------------------- */

static bool
valid_account_name(const char *s, size_t n)
{
	if (n == 0 || n > CFG_MAX_NAME)
		return false;
	if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_name_char(s[i]))
			return false;
	return true;
}

/* The checks that need the whole section, run when it ends. */
static int
finish_account(struct parser *ps)
{
	struct cfg_account *a = ps->acct;
	if (a == NULL)
		return 0;
	if (!a->imap.set && !a->pop3.set)
		return fail(ps, a->line, "account '%s': needs 'imap' or 'pop3'", a->name);
	if (a->imap.set && a->pop3.set)
		return fail(ps, a->line,
			    "account '%s': has both 'imap' and 'pop3' (one server per account)",
			    a->name);
	if (a->user == NULL)
		return fail(ps, a->line, "account '%s': missing 'user'", a->name);
	if (a->password == NULL && a->password_cmd == NULL)
		return fail(ps, a->line, "account '%s': no password or password_cmd", a->name);
	for (int k = 0; k < K_COUNT; k++) {
		if (ps->seen[k] == 0)
			continue;
		if (keys[k].scope == SCOPE_IMAP && !a->imap.set)
			return fail(ps, ps->seen[k],
				    "account '%s': '%s' applies only to IMAP accounts", a->name,
				    keys[k].name);
		if (keys[k].scope == SCOPE_POP3 && !a->pop3.set)
			return fail(ps, ps->seen[k],
				    "account '%s': '%s' applies only to POP3 accounts", a->name,
				    keys[k].name);
	}
	if (!a->tls) {
		const struct cfg_url *urls[] = {&a->imap, &a->pop3, &a->smtp}; /* K_IMAP... */
		for (int i = 0; i < 3; i++)
			if (urls[i]->set && urls[i]->implicit_tls)
				return fail(ps, ps->seen[K_TLS],
					    "account '%s': tls = off contradicts %ss://", a->name,
					    keys[K_IMAP + i].name);
		log_warn("%s:%u: account '%s': tls = off: the password and all mail cross the "
			 "network unencrypted",
			 ps->name, ps->seen[K_TLS], a->name);
	}
	if (a->outbox == NULL && set_str(ps, &a->outbox, "outbox") < 0)
		return -1;
	ps->acct = NULL;
	return 0;
}

static int
start_account(struct parser *ps, const char *name, size_t n)
{
	struct cfg *cfg = ps->cfg;
	for (size_t i = 0; i < cfg->naccounts; i++)
		if (strlen(cfg->accounts[i].name) == n &&
		    memcmp(cfg->accounts[i].name, name, n) == 0)
			return fail(ps, ps->line, "duplicate account '%.*s' (first on line %u)",
				    (int)n, name, cfg->accounts[i].line);
	if (cfg->naccounts == ps->accounts_size) {
		size_t size = ps->accounts_size ? ps->accounts_size * 2 : 4;
		struct cfg_account *v = realloc(cfg->accounts, size * sizeof(*v));
		if (v == NULL)
			return fail_oom(ps);
		cfg->accounts = v;
		ps->accounts_size = size;
	}
	/* The defaults (outbox is set when the section ends). */
	static const struct cfg_account defaults = {.tls = true,
						    .tls_verify = true,
						    .auth = CFG_AUTH_DEFAULT,
						    .prefetch = CFG_PREFETCH_ALL,
						    .poll_seconds = CFG_POLL_DEFAULT,
						    .save_sent = true,
						    .delete_mode = CFG_DELETE_TRASH,
						    .pop3_delete = CFG_POP3_DELETE_NEVER};
	struct cfg_account *a = &cfg->accounts[cfg->naccounts];
	*a = defaults;
	a->name = strndup(name, n);
	if (a->name == NULL)
		return fail_oom(ps);
	cfg->naccounts++;
	a->line = ps->line;
	ps->acct = a;
	memset(ps->seen, 0, sizeof(ps->seen));
	return 0;
}

/* "[account NAME]"; s is just after the '['. */
static int
parse_section(struct parser *ps, const char *s)
{
	if (finish_account(ps) < 0)
		return -1;
	const char *p = skip_ws(s);
	const char *w = p;
	while (*p != '\0' && !is_ws(*p) && *p != ']')
		p++;
	if ((size_t)(p - w) != 7 || memcmp(w, "account", 7) != 0) {
		const char *rb = strchr(s, ']');
		if (rb == NULL)
			return fail(ps, ps->line, "missing ']' after the section name");
		int n = (int)(rb - s) > 64 ? 64 : (int)(rb - s);
		return fail(ps, ps->line, "unknown section '[%.*s]' (expected [account NAME])", n,
			    s);
	}
	p = skip_ws(p);
	const char *name = p;
	while (*p != '\0' && !is_ws(*p) && *p != ']')
		p++;
	size_t n = (size_t)(p - name);
	p = skip_ws(p);
	if (*p == '\0')
		return fail(ps, ps->line, "missing ']' after the account name");
	if (*p != ']')
		return fail(ps, ps->line,
			    "expected ']' after the account name (no spaces in names)");
	if (n == 0)
		return fail(ps, ps->line, "missing account name: [account NAME]");
	p = skip_ws(p + 1);
	if (*p != '\0' && *p != ';' && *p != '#')
		return fail(ps, ps->line, "text after ']'");
	if (!valid_account_name(name, n))
		return fail(ps, ps->line,
			    "bad account name (1-%d characters of A-Z a-z 0-9 . _ -, not '.' or "
			    "'..')",
			    CFG_MAX_NAME);
	return start_account(ps, name, n);
}

static int
parse_key(struct parser *ps, const char *key, const char *raw)
{
	int id;
	for (id = 0; id < K_COUNT; id++)
		if (strcmp(keys[id].name, key) == 0)
			break;
	if (id == K_COUNT)
		return fail(ps, ps->line, "unknown key '%.64s'", key);
	if (keys[id].scope == SCOPE_GLOBAL && ps->acct != NULL)
		return fail(ps, ps->line,
			    "key '%s' is global: it must come before the first [account NAME] "
			    "section",
			    key);
	if (keys[id].scope != SCOPE_GLOBAL && ps->acct == NULL)
		return fail(ps, ps->line, "key '%s' must be inside an [account NAME] section", key);
	if (ps->seen[id])
		return fail(ps, ps->line, "duplicate key '%s' (first on line %u)", key,
			    ps->seen[id]);
	ps->seen[id] = ps->line;
	if (id == K_PASSWORD || id == K_PASSWORD_CMD) {
		unsigned other = ps->seen[id == K_PASSWORD ? K_PASSWORD_CMD : K_PASSWORD];
		if (other != 0)
			return fail(ps, ps->line,
				    "account '%s': both 'password' and 'password_cmd' (the other "
				    "is on line %u)",
				    ps->acct->name, other);
		ps->has_password |= id == K_PASSWORD;
	}
	if (id == K_FOLDERS)
		return set_folders(ps, ps->acct, raw);
	if (parse_value(ps, raw) < 0)
		return -1;
	if (ps->val[0] == '\0')
		return fail(ps, ps->line, "empty value for '%s'", key);
	return set_key(ps, (enum key_id)id, ps->val);
}

/* One line, NUL-terminated in ps->text, without its line end. */
static int
parse_line(struct parser *ps)
{
	char *s = skip_ws(ps->text);
	if (*s == '\0' || *s == ';' || *s == '#')
		return 0;
	if (*s == '[')
		return parse_section(ps, s + 1);
	char *eq = strchr(s, '=');
	if (eq == NULL)
		return fail(ps, ps->line, "expected 'key = value' or '[account NAME]'");
	char *kend = eq;
	while (kend > s && is_ws(kend[-1]))
		kend--;
	if (kend == s)
		return fail(ps, ps->line, "missing key before '='");
	for (const char *q = s; q < kend; q++)
		if (!is_name_char(*q))
			return fail(ps, ps->line, "expected 'key = value' or '[account NAME]'");
	*kend = '\0';
	return parse_key(ps, s, eq + 1);
}

static int
parse_text(struct parser *ps, const char *text, size_t len)
{
	const char *p = text, *end = text + len;
	if (len >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0)
		p += 3; /* a UTF-8 byte order mark */
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl != NULL ? nl : end;
		size_t n = (size_t)(le - p);
		ps->line++;
		if (n > 0 && p[n - 1] == '\r')
			n--;
		if (n > CFG_MAX_LINE)
			return fail(ps, ps->line, "line longer than %d bytes", CFG_MAX_LINE);
		for (size_t i = 0; i < n; i++) {
			unsigned char c = (unsigned char)p[i];
			if (c == '\0')
				return fail(ps, ps->line, "NUL byte in the line");
			if ((c < 0x20 && c != '\t') || c == 0x7f)
				return fail(ps, ps->line, "control character 0x%02x in the line",
					    c);
		}
		memcpy(ps->text, p, n);
		ps->text[n] = '\0';
		if (parse_line(ps) < 0)
			return -1;
		p = nl != NULL ? nl + 1 : end;
	}
	return 0;
}

static int
default_cache_dir(struct parser *ps)
{
	const char *xdg = env("XDG_CACHE_HOME");
	const char *home = env("HOME");
	if (xdg != NULL)
		ps->cfg->cache_dir = concat(xdg, "/mailfs");
	else if (home != NULL)
		ps->cfg->cache_dir = concat(home, "/.cache/mailfs");
	else
		return fail(ps, 0, "no cache directory: HOME is not set (set cache_dir)");
	return ps->cfg->cache_dir == NULL ? fail_oom(ps) : 0;
}

/* --- public API ---------------------------------------------------------------------- */

char *
cfg_default_path(void)
{
	const char *xdg = env("XDG_CONFIG_HOME");
	if (xdg != NULL)
		return concat(xdg, "/mailfs/config");
	const char *home = env("HOME");
	if (home != NULL)
		return concat(home, "/.config/mailfs/config");
	return NULL;
}

/* Everything but the setup: parse, check what spans the file, fill in defaults. */
static int
parse_all(struct parser *ps, const char *text, size_t len, mode_t mode)
{
	if (len > CFG_MAX_FILE)
		return fail(ps, 0, "larger than 1 MiB");
	if ((len > 0 && parse_text(ps, text, len) < 0) || finish_account(ps) < 0)
		return -1;
	if (ps->cfg->naccounts == 0)
		return fail(ps, 0, "no [account NAME] section");
	if (ps->cfg->cache_dir == NULL && default_cache_dir(ps) < 0)
		return -1;
	if (ps->has_password && (mode & (S_IRGRP | S_IWGRP | S_IROTH | S_IWOTH)) != 0)
		return fail(ps, 0, "mode %04o allows others to read the password; chmod 600 it",
			    (unsigned)(mode & 07777));
	return 0;
}

int
cfg_parse(const char *name, const char *text, size_t len, mode_t mode, struct cfg **cfg_r,
	  char *err, size_t errlen)
{
	struct parser *ps = NULL;
	int rc = -1;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (cfg_r != NULL)
		*cfg_r = NULL;
	if (name == NULL)
		name = "config";
	ps = calloc(1, sizeof(*ps));
	if (ps == NULL) {
		set_err(err, errlen, "%s: out of memory", name);
		goto out;
	}
	ps->name = name;
	ps->err = err;
	ps->errlen = errlen;
	if (cfg_r == NULL || (text == NULL && len > 0)) {
		fail(ps, 0, "internal error: bad arguments");
		goto out;
	}
	ps->cfg = calloc(1, sizeof(*ps->cfg));
	if (ps->cfg == NULL || (ps->cfg->path = strdup(name)) == NULL) {
		fail_oom(ps);
		goto out;
	}
	if (parse_all(ps, text, len, mode) < 0)
		goto out;
	*cfg_r = ps->cfg;
	ps->cfg = NULL;
	rc = 0;
out:
	if (ps != NULL) {
		cfg_free(&ps->cfg);
		explicit_bzero(ps, sizeof(*ps));
		free(ps);
	}
	return rc;
}

int
cfg_load(const char *path, struct cfg **cfg_r, char *err, size_t errlen)
{
	char *text = NULL;
	size_t len = 0;
	int fd = -1, rc = -1;
	const char *why = NULL;
	struct stat st;

	if (path == NULL || cfg_r == NULL)
		return cfg_parse(path, NULL, 1, 0, cfg_r, err, errlen); /* "bad arguments" */
	/* O_NONBLOCK: a FIFO must not hang us; a regular file ignores it. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0 || fstat(fd, &st) < 0)
		why = strerror(errno);
	else if (!S_ISREG(st.st_mode))
		why = "not a regular file";
	else if (st.st_size > CFG_MAX_FILE)
		why = "larger than 1 MiB";
	else if ((text = malloc(CFG_MAX_FILE + 1)) == NULL)
		why = "out of memory";
	while (why == NULL) {
		ssize_t n = read(fd, text + len, CFG_MAX_FILE + 1 - len);
		if (n < 0 && errno != EINTR)
			why = strerror(errno);
		else if (n == 0)
			break;
		else if (n > 0 && (len += (size_t)n) > CFG_MAX_FILE)
			why = "larger than 1 MiB";
	}
	if (why != NULL)
		set_err(err, errlen, "%s: %s", path, why);
	else
		rc = cfg_parse(path, text, len, st.st_mode, cfg_r, err, errlen);
	if (text != NULL) {
		explicit_bzero(text, len);
		free(text);
	}
	if (fd >= 0)
		close(fd);
	return rc;
}

void
cfg_free(struct cfg **cfgp)
{
	if (cfgp == NULL || *cfgp == NULL)
		return;
	struct cfg *cfg = *cfgp;
	for (size_t i = 0; i < cfg->naccounts; i++) {
		struct cfg_account *a = &cfg->accounts[i];
		free(a->name);
		free(a->imap.host);
		free(a->pop3.host);
		free(a->smtp.host);
		free(a->user);
		cfg_secret_free(&a->password);
		free(a->password_cmd);
		free(a->from);
		free(a->ca_file);
		free(a->outbox);
		free(a->sent);
		free(a->drafts);
		free(a->trash);
		for (size_t j = 0; j < a->nfolders; j++)
			free(a->folders[j]);
		free(a->folders);
	}
	free(cfg->accounts);
	free(cfg->path);
	free(cfg->cache_dir);
	free(cfg);
	*cfgp = NULL;
}

void
cfg_secret_free(char **s)
{
	if (s == NULL || *s == NULL)
		return;
	explicit_bzero(*s, strlen(*s));
	free(*s);
	*s = NULL;
}

/* --- password_cmd -------------------------------------------------------------------- */

static long long
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Start `/bin/sh -c cmd` with stdin from /dev/null and stdout into out_fd; errno value. */
static int
spawn_shell(char *cmd, int out_fd, pid_t *pid)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, all;
	char sh[] = "sh", dash_c[] = "-c";
	char *argv[] = {sh, dash_c, cmd, NULL};
	int e = posix_spawn_file_actions_init(&fa);
	if (e != 0)
		return e;
	e = posix_spawnattr_init(&at);
	if (e != 0) {
		posix_spawn_file_actions_destroy(&fa);
		return e;
	}
	sigemptyset(&none);
	sigfillset(&all);
	/* dup2 before opening fd 0: the pipe may be fd 0 if our stdin was closed. The daemon's
	 * blocked or ignored signals (SIGPIPE...) are none of the command's business. */
	e = posix_spawn_file_actions_adddup2(&fa, out_fd, STDOUT_FILENO);
	e = e ? e : posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
	e = e ? e : posix_spawnattr_setsigmask(&at, &none);
	e = e ? e : posix_spawnattr_setsigdefault(&at, &all);
	e = e ? e : posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	e = e ? e : posix_spawn(pid, "/bin/sh", &fa, &at, argv, environ);
	posix_spawnattr_destroy(&at);
	posix_spawn_file_actions_destroy(&fa);
	return e;
}

/* Read fd to EOF into out (at most CFG_PW_MAX bytes) before the deadline. Returns 0, or -1
 * with the reason in why. */
static int
read_output(int fd, char *out, size_t *n, long long deadline, char *why, size_t whylen)
{
	for (;;) {
		long long left = deadline - now_ms();
		if (left <= 0) {
			snprintf(why, whylen, "timed out after %d s",
				 CFG_PASSWORD_TIMEOUT_MS / 1000);
			return -1;
		}
		struct pollfd pf = {.fd = fd, .events = POLLIN};
		int r = poll(&pf, 1, (int)left);
		ssize_t k = r > 0 ? read(fd, out + *n, CFG_PW_MAX + 1 - *n) : 0;
		if ((r < 0 || k < 0) && errno != EINTR && errno != EAGAIN) {
			snprintf(why, whylen, "%s: %s", r < 0 ? "poll" : "read", strerror(errno));
			return -1;
		}
		if (r > 0 && k == 0)
			return 0;
		if (k > 0)
			*n += (size_t)k;
		if (*n > CFG_PW_MAX) {
			snprintf(why, whylen, "printed more than %d KiB", CFG_PW_MAX / 1024);
			return -1;
		}
	}
}

/* Wait for the child until the deadline; 0 and *status, or -1 with the reason in why. */
static int
wait_child(pid_t pid, long long deadline, int *status, char *why, size_t whylen)
{
	long sleep_ms = 1;
	for (;;) {
		pid_t r = waitpid(pid, status, WNOHANG);
		if (r == pid)
			return 0;
		if (r < 0 && errno != EINTR) {
			snprintf(why, whylen, "waitpid: %s", strerror(errno));
			return -1;
		}
		if (now_ms() >= deadline) {
			snprintf(why, whylen, "timed out after %d s",
				 CFG_PASSWORD_TIMEOUT_MS / 1000);
			return -1;
		}
		struct timespec ts = {0, sleep_ms * 1000000L};
		nanosleep(&ts, NULL);
		if (sleep_ms < 50)
			sleep_ms *= 2;
	}
}

/* Run password_cmd; its stdout, one line end removed, is the password. On timeout or too
 * much output only the shell is killed: its children get SIGPIPE when they next write. No
 * new process group, so that a command that prompts on the terminal still can. */
static int
run_password_cmd(const struct cfg_account *a, char **pw_r, char *err, size_t errlen)
{
	int pfd[2] = {-1, -1};
	pid_t pid = -1;
	char *out = NULL;
	size_t n = 0;
	int rc = -1, e, status = 0;
	char why[128] = "out of memory";

	out = malloc(CFG_PW_MAX + 1);
	if (out == NULL)
		goto out;
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		snprintf(why, sizeof(why), "pipe: %s", strerror(errno));
		goto out;
	}
	e = spawn_shell(a->password_cmd, pfd[1], &pid);
	if (e != 0) {
		pid = -1;
		snprintf(why, sizeof(why), "cannot run /bin/sh: %s", strerror(e));
		goto out;
	}
	close(pfd[1]);
	pfd[1] = -1;
	long long deadline = now_ms() + CFG_PASSWORD_TIMEOUT_MS;
	if (read_output(pfd[0], out, &n, deadline, why, sizeof(why)) < 0 ||
	    wait_child(pid, deadline, &status, why, sizeof(why)) < 0)
		goto out;
	pid = -1;
	if (WIFSIGNALED(status)) {
		snprintf(why, sizeof(why), "killed by signal %d", WTERMSIG(status));
		goto out;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		snprintf(why, sizeof(why), "exited with status %d",
			 WIFEXITED(status) ? WEXITSTATUS(status) : -1);
		goto out;
	}
	size_t len = n;
	if (len > 0 && out[len - 1] == '\n')
		len -= (len > 1 && out[len - 2] == '\r') ? 2 : 1;
	if (len == 0) {
		snprintf(why, sizeof(why), "printed nothing");
		goto out;
	}
	if (memchr(out, '\0', len) != NULL) {
		snprintf(why, sizeof(why), "printed a NUL byte");
		goto out;
	}
	*pw_r = strndup(out, len);
	if (*pw_r == NULL)
		goto out;
	rc = 0;
out:
	if (rc < 0)
		set_err(err, errlen, "account '%s': password_cmd %s", a->name, why);
	if (pid > 0) {
		kill(pid, SIGKILL);
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
	}
	if (pfd[0] >= 0)
		close(pfd[0]);
	if (pfd[1] >= 0)
		close(pfd[1]);
	if (out != NULL) {
		explicit_bzero(out, n < CFG_PW_MAX ? n + 1 : CFG_PW_MAX + 1);
		free(out);
	}
	return rc;
}

int
cfg_password(const struct cfg_account *acct, char **pw_r, char *err, size_t errlen)
{
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (pw_r == NULL || acct == NULL) {
		set_err(err, errlen, "internal error: bad arguments");
		return -1;
	}
	*pw_r = NULL;
	if (acct->password != NULL) {
		*pw_r = strdup(acct->password);
		if (*pw_r == NULL)
			set_err(err, errlen, "account '%s': out of memory", acct->name);
		return *pw_r != NULL ? 0 : -1;
	}
	if (acct->password_cmd == NULL) {
		set_err(err, errlen, "account '%s': no password or password_cmd", acct->name);
		return -1;
	}
	return run_password_cmd(acct, pw_r, err, errlen);
}
