/* test-config.c - unit tests for cache/config.c: every key, the defaults, every error
 * message (with its file:line), quoting and comments, URLs, ~ expansion, the password file
 * mode check through cfg_load() on real files, and password_cmd. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cache/config.h"
#include "net/log.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* A valid account: four lines. */
#define ACCT "[account a]\nimap = imaps://h\nuser = u\npassword_cmd = c\n"
/* The start of a valid account, lines 1-3, for tests that add a line 4. */
#define HEAD "[account a]\nimap = imaps://h\nuser = u\n"
#define HEADPW HEAD "password_cmd = c\n"

static struct cfg *
parse_ok_mode(const char *text, mode_t mode)
{
	struct cfg *cfg = NULL;
	char err[512];
	int rc = cfg_parse("t.conf", text, strlen(text), mode, &cfg, err, sizeof(err));
	if (rc != 0)
		print_error("unexpected error: %s\n", err);
	assert_int_equal(rc, 0);
	assert_non_null(cfg);
	return cfg;
}

static struct cfg *
parse_ok(const char *text)
{
	return parse_ok_mode(text, 0600);
}

/* The error must be one line, start with "t.conf:LINE: " ("t.conf: " if line is 0) and
 * contain reason. */
static bool
check_err(const char *text, size_t len, mode_t mode, unsigned line, const char *reason)
{
	struct cfg *cfg = (struct cfg *)1;
	char err[512], prefix[64];
	memset(err, 'x', sizeof(err));
	int rc = cfg_parse("t.conf", text, len, mode, &cfg, err, sizeof(err));
	if (line > 0)
		snprintf(prefix, sizeof(prefix), "t.conf:%u: ", line);
	else
		snprintf(prefix, sizeof(prefix), "t.conf: ");
	bool ok = rc == -1 && cfg == NULL && strncmp(err, prefix, strlen(prefix)) == 0 &&
		  strstr(err, reason) != NULL && strchr(err, '\n') == NULL;
	if (!ok)
		print_error("for %.*s\nwant: %s...%s\ngot:  rc %d: %s\n", (int)len, text, prefix,
			    reason, rc, rc == 0 ? "(none)" : err);
	if (rc == 0)
		cfg_free(&cfg);
	return ok;
}

#define EXPECT_ERR(text, line, reason)                                                             \
	assert_true(check_err((text), strlen(text), 0600, (line), (reason)))

/* --- valid configurations ---------------------------------------------------------- */

static const char full_config[] = "# mailfs test configuration\n"
				  "cache_dir = /var/cache/mf   ; where bodies go\n"
				  "debug = yes\n"
				  "\n"
				  "[account personal]    ; the main one\n"
				  "imap         = imaps://imap.example.com\n"
				  "smtp         = smtp://smtp.example.com:2587/\n"
				  "user         = me@example.com\n"
				  "password     = \"p;a#s s\\\"w\\\\d\"   # quoted\n"
				  "from         = Me <me@example.com>\n"
				  "ca_file      = /etc/ssl/ca.pem\n"
				  "tls          = on\n"
				  "tls_verify   = no\n"
				  "auth         = xoauth2\n"
				  "prefetch     = 30d\n"
				  "poll         = 5m\n"
				  "outbox       = Out box\n"
				  "sent         = Sent Items\n"
				  "drafts       = Drafts\n"
				  "trash        = \"Deleted Items\"\n"
				  "save_sent    = no\n"
				  "delete       = expunge\n"
				  "folders      = INBOX \"My Folder\" Archive/*   # comment\n"
				  "\n"
				  "\t; indented comment\n"
				  "[account old]\n"
				  "pop3         = pop3://pop.example.com:1110\n"
				  "smtp         = smtp://[2001:db8::25]:25\n"
				  "user         = me\n"
				  "password_cmd = cat ~/.secrets/old | head -1  ; comment\n"
				  "tls          = off\n"
				  "pop3_delete  = after_cache\n"
				  "prefetch     = none\n"
				  "poll         = 1h\n"
				  "auth         = LOGIN\n";

static void
test_full(void **state)
{
	(void)state;
	struct cfg *cfg = parse_ok(full_config);
	assert_string_equal(cfg->path, "t.conf");
	assert_string_equal(cfg->cache_dir, "/var/cache/mf");
	assert_true(cfg->debug);
	assert_int_equal(cfg->naccounts, 2);

	struct cfg_account *a = &cfg->accounts[0];
	assert_string_equal(a->name, "personal");
	assert_int_equal(a->line, 5);
	assert_true(a->imap.set);
	assert_int_equal(a->imap.proto, CFG_PROTO_IMAP);
	assert_true(a->imap.implicit_tls);
	assert_string_equal(a->imap.host, "imap.example.com");
	assert_int_equal(a->imap.port, 993);
	assert_false(a->pop3.set);
	assert_null(a->pop3.host);
	assert_true(a->smtp.set);
	assert_int_equal(a->smtp.proto, CFG_PROTO_SMTP);
	assert_false(a->smtp.implicit_tls);
	assert_string_equal(a->smtp.host, "smtp.example.com");
	assert_int_equal(a->smtp.port, 2587);
	assert_string_equal(a->user, "me@example.com");
	assert_string_equal(a->password, "p;a#s s\"w\\d");
	assert_null(a->password_cmd);
	assert_string_equal(a->from, "Me <me@example.com>");
	assert_string_equal(a->ca_file, "/etc/ssl/ca.pem");
	assert_true(a->tls);
	assert_false(a->tls_verify);
	assert_int_equal(a->auth, CFG_AUTH_XOAUTH2);
	assert_int_equal(a->prefetch, CFG_PREFETCH_DAYS);
	assert_int_equal(a->prefetch_days, 30);
	assert_int_equal(a->poll_seconds, 300);
	assert_string_equal(a->outbox, "Out box");
	assert_string_equal(a->sent, "Sent Items");
	assert_string_equal(a->drafts, "Drafts");
	assert_string_equal(a->trash, "Deleted Items");
	assert_false(a->save_sent);
	assert_int_equal(a->delete_mode, CFG_DELETE_EXPUNGE);
	assert_int_equal(a->pop3_delete, CFG_POP3_DELETE_NEVER);
	assert_int_equal(a->nfolders, 3);
	assert_string_equal(a->folders[0], "INBOX");
	assert_string_equal(a->folders[1], "My Folder");
	assert_string_equal(a->folders[2], "Archive/*");

	a = &cfg->accounts[1];
	assert_string_equal(a->name, "old");
	assert_int_equal(a->line, 26);
	assert_false(a->imap.set);
	assert_true(a->pop3.set);
	assert_int_equal(a->pop3.proto, CFG_PROTO_POP3);
	assert_false(a->pop3.implicit_tls);
	assert_string_equal(a->pop3.host, "pop.example.com");
	assert_int_equal(a->pop3.port, 1110);
	assert_true(a->smtp.set);
	assert_false(a->smtp.implicit_tls);
	assert_string_equal(a->smtp.host, "2001:db8::25");
	assert_int_equal(a->smtp.port, 25);
	assert_string_equal(a->user, "me");
	assert_null(a->password);
	assert_string_equal(a->password_cmd, "cat ~/.secrets/old | head -1");
	assert_null(a->from);
	assert_null(a->ca_file);
	assert_false(a->tls);
	assert_true(a->tls_verify);
	assert_int_equal(a->auth, CFG_AUTH_LOGIN);
	assert_int_equal(a->prefetch, CFG_PREFETCH_NONE);
	assert_int_equal(a->poll_seconds, 3600);
	assert_string_equal(a->outbox, "outbox");
	assert_null(a->sent);
	assert_null(a->drafts);
	assert_null(a->trash);
	assert_true(a->save_sent);
	assert_int_equal(a->delete_mode, CFG_DELETE_TRASH);
	assert_int_equal(a->pop3_delete, CFG_POP3_DELETE_AFTER_CACHE);
	assert_null(a->folders);
	assert_int_equal(a->nfolders, 0);
	cfg_free(&cfg);
	assert_null(cfg);
	cfg_free(&cfg);
	cfg_free(NULL);
}

static void
test_defaults(void **state)
{
	(void)state;
	setenv("HOME", "/home/t", 1);
	unsetenv("XDG_CACHE_HOME");
	struct cfg *cfg = parse_ok("[account a]\nimap = imap://h\nuser = u\npassword = p\n");
	assert_string_equal(cfg->cache_dir, "/home/t/.cache/mailfs");
	assert_false(cfg->debug);
	struct cfg_account *a = &cfg->accounts[0];
	assert_int_equal(a->line, 1);
	assert_false(a->imap.implicit_tls);
	assert_int_equal(a->imap.port, 143);
	assert_false(a->smtp.set);
	assert_null(a->from);
	assert_null(a->ca_file);
	assert_true(a->tls);
	assert_true(a->tls_verify);
	assert_int_equal(a->auth, CFG_AUTH_DEFAULT);
	assert_int_equal(a->prefetch, CFG_PREFETCH_ALL);
	assert_int_equal(a->poll_seconds, 60);
	assert_string_equal(a->outbox, "outbox");
	assert_null(a->sent);
	assert_null(a->drafts);
	assert_null(a->trash);
	assert_true(a->save_sent);
	assert_int_equal(a->delete_mode, CFG_DELETE_TRASH);
	assert_int_equal(a->pop3_delete, CFG_POP3_DELETE_NEVER);
	assert_null(a->folders);
	cfg_free(&cfg);

	setenv("XDG_CACHE_HOME", "/xdg/cache", 1);
	cfg = parse_ok(ACCT);
	assert_string_equal(cfg->cache_dir, "/xdg/cache/mailfs");
	cfg_free(&cfg);
	setenv("XDG_CACHE_HOME", "relative", 1); /* not absolute: ignored, as XDG says */
	cfg = parse_ok(ACCT);
	assert_string_equal(cfg->cache_dir, "/home/t/.cache/mailfs");
	cfg_free(&cfg);
	unsetenv("XDG_CACHE_HOME");
	unsetenv("HOME");
	EXPECT_ERR(ACCT, 0, "no cache directory: HOME is not set");
	cfg = parse_ok("cache_dir = /c\n" ACCT); /* fine without HOME */
	assert_string_equal(cfg->cache_dir, "/c");
	cfg_free(&cfg);
	setenv("HOME", "/home/t", 1);
}

static void
test_default_ports(void **state)
{
	(void)state;
	static const struct {
		const char *line;
		enum cfg_proto proto;
		bool tls;
		unsigned port;
	} cases[] = {
	    {"imap = imap://h", CFG_PROTO_IMAP, false, 143},
	    {"imap = imaps://h", CFG_PROTO_IMAP, true, 993},
	    {"imap = IMAPS://h", CFG_PROTO_IMAP, true, 993},
	    {"pop3 = pop3://h", CFG_PROTO_POP3, false, 110},
	    {"pop3 = pop3s://h", CFG_PROTO_POP3, true, 995},
	    {"imap = imaps://h\nsmtp = smtp://h", CFG_PROTO_SMTP, false, 587},
	    {"imap = imaps://h\nsmtp = smtps://h", CFG_PROTO_SMTP, true, 465},
	    {"imap = imaps://h:1", CFG_PROTO_IMAP, true, 1},
	    {"imap = imaps://h:65535/", CFG_PROTO_IMAP, true, 65535},
	    {"imap = imaps://h:00993", CFG_PROTO_IMAP, true, 993},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char text[256];
		snprintf(text, sizeof(text), "[account a]\n%s\nuser = u\npassword_cmd = c\n",
			 cases[i].line);
		struct cfg *cfg = parse_ok(text);
		struct cfg_account *a = &cfg->accounts[0];
		const struct cfg_url *u = cases[i].proto == CFG_PROTO_IMAP   ? &a->imap
					  : cases[i].proto == CFG_PROTO_POP3 ? &a->pop3
									     : &a->smtp;
		assert_true(u->set);
		assert_int_equal(u->proto, cases[i].proto);
		assert_int_equal(u->implicit_tls, cases[i].tls);
		assert_int_equal(u->port, cases[i].port);
		assert_string_equal(u->host, "h");
		cfg_free(&cfg);
	}
}

static void
test_ipv6(void **state)
{
	(void)state;
	struct cfg *cfg = parse_ok("[account a]\nimap = imaps://[::1]:1993\n"
				   "smtp = smtp://[2001:db8::1]/\nuser = u\npassword_cmd = c\n");
	struct cfg_account *a = &cfg->accounts[0];
	assert_string_equal(a->imap.host, "::1");
	assert_int_equal(a->imap.port, 1993);
	assert_string_equal(a->smtp.host, "2001:db8::1");
	assert_int_equal(a->smtp.port, 587);
	cfg_free(&cfg);
	cfg = parse_ok("[account a]\npop3 = pop3s://[::ffff:192.0.2.1]\nuser = u\n"
		       "password_cmd = c\n");
	assert_string_equal(cfg->accounts[0].pop3.host, "::ffff:192.0.2.1");
	assert_int_equal(cfg->accounts[0].pop3.port, 995);
	cfg_free(&cfg);
	cfg = parse_ok("[account a]\nimap = imap://host-1.example_x.org\nuser = u\n"
		       "password_cmd = c\n");
	assert_string_equal(cfg->accounts[0].imap.host, "host-1.example_x.org");
	cfg_free(&cfg);
	cfg = parse_ok("[account a]\nimap = imap://192.0.2.7:10143\nuser = u\n"
		       "password_cmd = c\n");
	assert_string_equal(cfg->accounts[0].imap.host, "192.0.2.7");
	assert_int_equal(cfg->accounts[0].imap.port, 10143);
	cfg_free(&cfg);
}

static void
test_quoting_and_comments(void **state)
{
	(void)state;
	struct cfg *cfg;
	EXPECT_ERR("[account a]\nimap = imaps://h\nuser = \"\"\"\n", 3,
		   "text after the closing quote");
	EXPECT_ERR("[account a]\nimap = imaps://h;x\n", 2, "only imaps://HOST[:PORT]");

	cfg = parse_ok("; comment\n"
		       "# comment\n"
		       "   ; indented\n"
		       "\t\n"
		       "[ account  a ]#comment\n"
		       "imap=imaps://h\n"
		       "user = a;b#c   ; comment\n"
		       "password = \"  spaced ;# \\\\ \\\"q\\\"  \";comment right after\n"
		       "from = Name \"Q\" <a@b> # tail\n"
		       "sent = \t Sent\t\n"
		       "drafts = \"#Drafts\"\n"
		       "trash = a=b\n");
	struct cfg_account *a = &cfg->accounts[0];
	assert_string_equal(a->name, "a");
	assert_int_equal(a->line, 5);
	assert_string_equal(a->user, "a;b#c");
	assert_string_equal(a->password, "  spaced ;# \\ \"q\"  ");
	assert_string_equal(a->from, "Name \"Q\" <a@b>");
	assert_string_equal(a->sent, "Sent");
	assert_string_equal(a->drafts, "#Drafts");
	assert_string_equal(a->trash, "a=b");
	cfg_free(&cfg);

	/* CRLF line ends, a byte order mark, no final newline. */
	cfg = parse_ok("\xef\xbb\xbf[account a]\r\nimap = imaps://h\r\nuser = u \r\n"
		       "password_cmd = c");
	assert_string_equal(cfg->accounts[0].user, "u");
	assert_string_equal(cfg->accounts[0].password_cmd, "c");
	cfg_free(&cfg);

	/* Folders: quoting, comments, a '#' namespace in quotes. */
	cfg = parse_ok(HEADPW "folders = \t\"a b\"  c \"#shared/*\" \"x;y\";comment\n");
	a = &cfg->accounts[0];
	assert_int_equal(a->nfolders, 4);
	assert_string_equal(a->folders[0], "a b");
	assert_string_equal(a->folders[1], "c");
	assert_string_equal(a->folders[2], "#shared/*");
	assert_string_equal(a->folders[3], "x;y");
	cfg_free(&cfg);
	cfg = parse_ok(HEADPW "folders = a;b \"q\\\"x\" #shared\n");
	a = &cfg->accounts[0];
	assert_int_equal(a->nfolders, 2);
	assert_string_equal(a->folders[0], "a;b");
	assert_string_equal(a->folders[1], "q\"x");
	cfg_free(&cfg);

	/* A line of exactly 4096 bytes is fine. */
	char *big = malloc(8192);
	assert_non_null(big);
	strcpy(big, ACCT);
	size_t n = strlen(big);
	memset(big + n, ';', 4096);
	strcpy(big + n + 4096, "\n");
	cfg = parse_ok(big);
	cfg_free(&cfg);
	memset(big + n, ';', 4097);
	strcpy(big + n + 4097, "\n");
	EXPECT_ERR(big, 5, "line longer than 4096 bytes");
	free(big);
}

static void
test_values(void **state)
{
	(void)state;
	static const char *const yes[] = {"yes", "YES", "on", "On", "true", "TRUE", "1"};
	static const char *const no[] = {"no", "No", "off", "OFF", "false", "False", "0"};
	char text[512];
	for (size_t i = 0; i < 7; i++) {
		snprintf(text, sizeof(text), "debug = %s\n" HEADPW "tls_verify = %s\n", yes[i],
			 no[i]);
		struct cfg *cfg = parse_ok(text);
		assert_true(cfg->debug);
		assert_false(cfg->accounts[0].tls_verify);
		cfg_free(&cfg);
		snprintf(text, sizeof(text), "debug = %s\n" HEADPW "save_sent = %s\n", no[i],
			 yes[i]);
		cfg = parse_ok(text);
		assert_false(cfg->debug);
		assert_true(cfg->accounts[0].save_sent);
		cfg_free(&cfg);
	}
	static const struct {
		const char *v;
		unsigned secs;
	} polls[] = {{"5", 5},         {"5s", 5},        {"60", 60},   {"2m", 120}, {"24h", 86400},
		     {"1440m", 86400}, {"86400", 86400}, {"1H", 3600}, {"007s", 7}};
	for (size_t i = 0; i < sizeof(polls) / sizeof(polls[0]); i++) {
		snprintf(text, sizeof(text), HEADPW "poll = %s\n", polls[i].v);
		struct cfg *cfg = parse_ok(text);
		assert_int_equal(cfg->accounts[0].poll_seconds, polls[i].secs);
		cfg_free(&cfg);
	}
	static const struct {
		const char *v;
		enum cfg_prefetch p;
		unsigned days;
	} pre[] = {{"all", CFG_PREFETCH_ALL, 0},
		   {"NONE", CFG_PREFETCH_NONE, 0},
		   {"1d", CFG_PREFETCH_DAYS, 1},
		   {"36500d", CFG_PREFETCH_DAYS, 36500},
		   {"90D", CFG_PREFETCH_DAYS, 90}};
	for (size_t i = 0; i < sizeof(pre) / sizeof(pre[0]); i++) {
		snprintf(text, sizeof(text), HEADPW "prefetch = %s\n", pre[i].v);
		struct cfg *cfg = parse_ok(text);
		assert_int_equal(cfg->accounts[0].prefetch, pre[i].p);
		assert_int_equal(cfg->accounts[0].prefetch_days, pre[i].days);
		cfg_free(&cfg);
	}
	struct cfg *cfg = parse_ok(HEADPW "auth = plain\ndelete = Trash\n");
	assert_int_equal(cfg->accounts[0].auth, CFG_AUTH_PLAIN);
	assert_int_equal(cfg->accounts[0].delete_mode, CFG_DELETE_TRASH);
	cfg_free(&cfg);
	cfg = parse_ok("[account a]\npop3 = pop3s://h\nuser = u\npassword_cmd = c\n"
		       "pop3_delete = never\nsmtp = smtps://h\n");
	assert_int_equal(cfg->accounts[0].pop3_delete, CFG_POP3_DELETE_NEVER);
	cfg_free(&cfg);
	cfg = parse_ok(HEADPW "outbox = .outbox\n");
	assert_string_equal(cfg->accounts[0].outbox, ".outbox");
	cfg_free(&cfg);
	/* Account names. */
	cfg = parse_ok("[account A-z_0.9]\nimap = imaps://h\nuser = u\npassword_cmd = c\n"
		       "[account "
		       "x123456789012345678901234567890123456789012345678901234567890123]\n"
		       "imap = imaps://h\nuser = u\npassword_cmd = c\n");
	assert_string_equal(cfg->accounts[0].name, "A-z_0.9");
	assert_int_equal(strlen(cfg->accounts[1].name), 64);
	assert_int_equal(cfg->accounts[1].line, 5);
	cfg_free(&cfg);
}

static void
test_tilde(void **state)
{
	(void)state;
	setenv("HOME", "/home/t", 1);
	struct cfg *cfg = parse_ok("cache_dir = ~/c/mailfs\n" HEADPW "ca_file = ~/ca.pem\n");
	assert_string_equal(cfg->cache_dir, "/home/t/c/mailfs");
	assert_string_equal(cfg->accounts[0].ca_file, "/home/t/ca.pem");
	cfg_free(&cfg);
	cfg = parse_ok("cache_dir = ~\n" ACCT);
	assert_string_equal(cfg->cache_dir, "/home/t");
	cfg_free(&cfg);
	cfg = parse_ok("cache_dir = \"~/with space\"\n" ACCT);
	assert_string_equal(cfg->cache_dir, "/home/t/with space");
	cfg_free(&cfg);
	/* password_cmd is not expanded: the shell does it. */
	cfg = parse_ok(HEAD "password_cmd = cat ~/x\n");
	assert_string_equal(cfg->accounts[0].password_cmd, "cat ~/x");
	cfg_free(&cfg);
	EXPECT_ERR("cache_dir = ~bob/c\n" ACCT, 1, "'cache_dir': ~user is not supported");
	EXPECT_ERR("cache_dir = c\n" ACCT, 1, "'cache_dir' must be an absolute path");
	EXPECT_ERR(HEADPW "ca_file = ca.pem\n", 5, "'ca_file' must be an absolute path");
	setenv("HOME", "", 1);
	EXPECT_ERR("cache_dir = ~/c\n" ACCT, 1, "'cache_dir': HOME is not set");
	unsetenv("HOME");
	EXPECT_ERR(HEADPW "ca_file = ~/ca\n", 5, "'ca_file': HOME is not set");
	setenv("HOME", "/home/t", 1);
}

static void
test_default_path(void **state)
{
	(void)state;
	setenv("HOME", "/home/t", 1);
	setenv("XDG_CONFIG_HOME", "/xdg/conf", 1);
	char *p = cfg_default_path();
	assert_string_equal(p, "/xdg/conf/mailfs/config");
	free(p);
	setenv("XDG_CONFIG_HOME", "", 1);
	p = cfg_default_path();
	assert_string_equal(p, "/home/t/.config/mailfs/config");
	free(p);
	unsetenv("XDG_CONFIG_HOME");
	p = cfg_default_path();
	assert_string_equal(p, "/home/t/.config/mailfs/config");
	free(p);
	unsetenv("HOME");
	assert_null(cfg_default_path());
	setenv("XDG_CONFIG_HOME", "/x", 1);
	p = cfg_default_path();
	assert_string_equal(p, "/x/mailfs/config");
	free(p);
	unsetenv("XDG_CONFIG_HOME");
	setenv("HOME", "/home/t", 1);
}

/* --- errors -------------------------------------------------------------------------- */

static void
test_errors_structure(void **state)
{
	(void)state;
	EXPECT_ERR("", 0, "no [account NAME] section");
	EXPECT_ERR("debug = yes\n; nothing else\n", 0, "no [account NAME] section");
	EXPECT_ERR("\n\nimap = imaps://h\n", 3,
		   "key 'imap' must be inside an [account NAME] section");
	EXPECT_ERR("user = u\n", 1, "key 'user' must be inside an [account NAME] section");
	EXPECT_ERR(ACCT "cache_dir = /x\n", 5,
		   "key 'cache_dir' is global: it must come before the first [account NAME]");
	EXPECT_ERR(ACCT "debug = yes\n", 5, "key 'debug' is global");
	EXPECT_ERR("[account a]\nimapp = imaps://h\n", 2, "unknown key 'imapp'");
	EXPECT_ERR("cachedir = /x\n", 1, "unknown key 'cachedir'");
	EXPECT_ERR("[account a]\nIMAP = imaps://h\n", 2, "unknown key 'IMAP'");
	EXPECT_ERR(HEADPW "user = v\n", 5, "duplicate key 'user' (first on line 3)");
	EXPECT_ERR("debug = yes\ndebug = no\n", 2, "duplicate key 'debug' (first on line 1)");
	EXPECT_ERR(HEADPW "folders = a\nfolders = b\n", 6, "duplicate key 'folders'");
	EXPECT_ERR(ACCT "[account b]\nimap = imaps://h\nuser = u\npassword = p\n"
			"[account a]\n",
		   9, "duplicate account 'a' (first on line 1)");
	EXPECT_ERR("[general]\n", 1, "unknown section '[general]' (expected [account NAME])");
	EXPECT_ERR("[Account a]\n", 1, "unknown section '[Account a]'");
	EXPECT_ERR("[accounts a]\n", 1, "unknown section");
	EXPECT_ERR("[]\n", 1, "unknown section '[]'");
	EXPECT_ERR("[general\n", 1, "missing ']'");
	EXPECT_ERR("[account a\n", 1, "missing ']' after the account name");
	EXPECT_ERR("[account]\n", 1, "missing account name");
	EXPECT_ERR("[account ]\n", 1, "missing account name");
	EXPECT_ERR("[account a b]\n", 1, "expected ']' after the account name");
	EXPECT_ERR("[account a] x\n", 1, "text after ']'");
	EXPECT_ERR("[account a/b]\n", 1, "bad account name");
	EXPECT_ERR("[account .]\n", 1, "bad account name");
	EXPECT_ERR("[account ..]\n", 1, "bad account name");
	EXPECT_ERR("[account caf\xc3\xa9]\n", 1, "bad account name");
	EXPECT_ERR("[account "
		   "x1234567890123456789012345678901234567890123456789012345678901234]\n",
		   1, "bad account name");
	/* What is missing is reported at the section's line, naming the account. */
	EXPECT_ERR("\n[account a]\nuser = u\npassword = p\n", 2,
		   "account 'a': needs 'imap' or 'pop3'");
	EXPECT_ERR("[account a]\nimap = imaps://h\npop3 = pop3s://h\nuser = u\npassword = p\n", 1,
		   "account 'a': has both 'imap' and 'pop3'");
	EXPECT_ERR("[account a]\nimap = imaps://h\npassword = p\n", 1,
		   "account 'a': missing 'user'");
	EXPECT_ERR("[account a]\nimap = imaps://h\nuser = u\n", 1,
		   "account 'a': no password or password_cmd");
	EXPECT_ERR("[account a]\nimap = imaps://h\n[account b]\n", 1,
		   "account 'a': missing 'user'");
	EXPECT_ERR(ACCT "[account b]\nimap = imaps://h\nuser = u\n", 5,
		   "account 'b': no password or password_cmd");
	EXPECT_ERR(HEAD "password = p\npassword_cmd = c\n", 5,
		   "account 'a': both 'password' and 'password_cmd' (the other is on line 4)");
	EXPECT_ERR(HEAD "password_cmd = c\npassword = p\n", 5,
		   "account 'a': both 'password' and 'password_cmd'");
	/* Keys for the other protocol. */
	EXPECT_ERR("[account a]\npop3 = pop3s://h\nuser = u\nfolders = INBOX\npassword = p\n", 4,
		   "account 'a': 'folders' applies only to IMAP accounts");
	EXPECT_ERR("[account a]\npop3 = pop3s://h\nuser = u\ndelete = expunge\npassword = p\n", 4,
		   "'delete' applies only to IMAP accounts");
	EXPECT_ERR("[account a]\nsent = S\npop3 = pop3s://h\nuser = u\npassword = p\n", 2,
		   "'sent' applies only to IMAP accounts");
	EXPECT_ERR("[account a]\npop3 = pop3s://h\nuser = u\npassword = p\nsave_sent = no\n", 5,
		   "'save_sent' applies only to IMAP accounts");
	EXPECT_ERR(HEADPW "pop3_delete = never\n", 5,
		   "account 'a': 'pop3_delete' applies only to POP3 accounts");
	EXPECT_ERR(HEADPW "tls = off\n", 5, "account 'a': tls = off contradicts imaps://");
	EXPECT_ERR("[account a]\nimap = imap://h\nsmtp = smtps://h\nuser = u\ntls = no\n"
		   "password = p\n",
		   5, "tls = off contradicts smtps://");
	EXPECT_ERR("[account a]\npop3 = pop3s://h\nuser = u\ntls = 0\npassword = p\n", 4,
		   "tls = off contradicts pop3s://");
}

static void
test_errors_lines(void **state)
{
	(void)state;
	EXPECT_ERR("[account a]\nimap imaps://h\n", 2, "expected 'key = value'");
	EXPECT_ERR("[account a]\n= x\n", 2, "missing key before '='");
	EXPECT_ERR("[account a]\nfoo bar = x\n", 2, "expected 'key = value'");
	EXPECT_ERR("[account a]\nuser\n", 2, "expected 'key = value'");
	EXPECT_ERR(HEAD "password = \"abc\n", 4, "unterminated quote");
	EXPECT_ERR(HEAD "password = \"abc\\\"\n", 4, "unterminated quote");
	EXPECT_ERR(HEAD "password = \"abc\\\n", 4, "unterminated quote");
	EXPECT_ERR(HEAD "password = \"abc\" def\n", 4, "text after the closing quote");
	EXPECT_ERR(HEAD "from = \"Me\" <me@example.com>\n", 4, "text after the closing quote");
	EXPECT_ERR(HEAD "password = \"a\\nb\"\n", 4, "bad escape in quoted value");
	EXPECT_ERR(HEAD "password =\n", 4, "empty value for 'password'");
	EXPECT_ERR(HEAD "password = \"\"\n", 4, "empty value for 'password'");
	EXPECT_ERR(HEAD "password =   ; comment\n", 4, "empty value for 'password'");
	EXPECT_ERR(HEADPW "from = \t\n", 5, "empty value for 'from'");
	EXPECT_ERR(HEADPW "folders =\n", 5, "empty value for 'folders'");
	EXPECT_ERR(HEADPW "folders = # nothing\n", 5, "empty value for 'folders'");

	static const char nul[] = "[account a]\nuser = a\0b\n";
	assert_true(check_err(nul, sizeof(nul) - 1, 0600, 2, "NUL byte"));
	static const char nul2[] = "\0";
	assert_true(check_err(nul2, 1, 0600, 1, "NUL byte"));
	EXPECT_ERR("[account a]\nuser = a\x01z\n", 2, "control character 0x01");
	EXPECT_ERR("[account a]\nuser = a\rb\n", 2, "control character 0x0d");
	EXPECT_ERR("[account a]\nuser = a\x7f\n", 2, "control character 0x7f");

	size_t big = 1024 * 1024 + 1;
	char *text = malloc(big);
	assert_non_null(text);
	memset(text, '\n', big);
	assert_true(check_err(text, big, 0600, 0, "larger than 1 MiB"));
	free(text);
}

static void
test_errors_urls(void **state)
{
	(void)state;
	static const struct {
		const char *line;
		const char *reason;
	} cases[] = {
	    {"imap = pop3s://h", "'imap': the URL must start with imap:// or imaps://"},
	    {"imap = https://h", "'imap': the URL must start with imap://"},
	    {"imap = smtp://h", "'imap': the URL must start with imap://"},
	    {"imap = ://h", "'imap': the URL must start with imap://"},
	    {"pop3 = imap://h", "'pop3': the URL must start with pop3:// or pop3s://"},
	    {"smtp = imaps://h", "'smtp': the URL must start with smtp:// or smtps://"},
	    {"imap = imap.example.com", "'imap' must be a URL"},
	    {"imap = imaps:/h", "'imap' must be a URL"},
	    {"imap = imaps://", "'imap': missing host name"},
	    {"imap = imaps://:993", "'imap': missing host name"},
	    {"imap = imaps:///", "'imap': missing host name"},
	    {"imap = imaps://me@h", "'imap': no user name in the URL"},
	    {"imap = imaps://me:secret@h", "'imap': no user name in the URL"},
	    {"imap = imaps://h/INBOX", "'imap': only imaps://HOST[:PORT] is allowed"},
	    {"imap = imaps://h?x=1", "only imaps://HOST[:PORT] is allowed"},
	    {"imap = imaps://h//", "only imaps://HOST[:PORT] is allowed"},
	    {"imap = imaps://h st", "only imaps://HOST[:PORT] is allowed"},
	    {"imap = imaps://h:12ab", "only imaps://HOST[:PORT] is allowed"},
	    {"imap = imaps://h:993:1", "only imaps://HOST[:PORT] is allowed"},
	    {"imap = imaps://h%41", "only imaps://HOST[:PORT] is allowed"},
	    {"imap = imaps://h:", "'imap': missing port number"},
	    {"imap = imaps://h:/", "'imap': missing port number"},
	    {"imap = imaps://h:-1", "'imap': missing port number"},
	    {"imap = imaps://h:0", "'imap': port out of range (1-65535)"},
	    {"imap = imaps://h:65536", "port out of range"},
	    {"imap = imaps://h:99999999999999999999999999", "port out of range"},
	    {"imap = imaps://[::1", "'imap': missing ']' after the IPv6 address"},
	    {"imap = imaps://[zz::1]", "'imap': bad IPv6 address"},
	    {"imap = imaps://[]", "'imap': bad IPv6 address"},
	    {"imap = imaps://[192.0.2.1]", "'imap': bad IPv6 address"},
	    {"imap = imaps://[::1]x", "only imaps://HOST[:PORT] is allowed"},
	    {"imap = imaps://[fe80::1%eth0]", "'imap': bad IPv6 address"},
	    {"imap = imaps://[0000:0000:0000:0000:0000:0000:0000:0000:0000:1]",
	     "'imap': bad IPv6 address"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char text[512];
		snprintf(text, sizeof(text), "[account a]\nuser = u\n%s\npassword_cmd = c\n",
			 cases[i].line);
		EXPECT_ERR(text, 3, cases[i].reason);
	}
	char text[600] = "[account a]\nimap = imaps://";
	size_t n = strlen(text);
	memset(text + n, 'h', 254);
	strcpy(text + n + 254, "\n");
	EXPECT_ERR(text, 2, "'imap': host name longer than 253 bytes");
	/* The URL (which might hold a password) is never quoted. */
	struct cfg *cfg = NULL;
	char err[256];
	assert_int_equal(cfg_parse("t.conf", "[account a]\nimap = imaps://me:s3cr3t@h\n", 38, 0600,
				   &cfg, err, sizeof(err)),
			 -1);
	assert_null(strstr(err, "s3cr3t"));
}

static void
test_errors_values(void **state)
{
	(void)state;
	static const struct {
		const char *line;
		const char *reason;
	} cases[] = {
	    {"tls = maybe", "bad value for 'tls': expected yes or no"},
	    {"tls_verify = 2", "bad value for 'tls_verify'"},
	    {"save_sent = yes please", "bad value for 'save_sent'"},
	    {"auth = cram-md5", "bad value for 'auth': expected plain, login or xoauth2"},
	    {"delete = remove", "bad value for 'delete': expected trash or expunge"},
	    {"prefetch = some", "bad value for 'prefetch': expected all, none or Nd"},
	    {"prefetch = 30", "bad value for 'prefetch'"},
	    {"prefetch = 30dd", "bad value for 'prefetch'"},
	    {"prefetch = -1d", "bad value for 'prefetch'"},
	    {"prefetch = d", "bad value for 'prefetch'"},
	    {"prefetch = 0d", "'prefetch' days must be between 1 and 36500"},
	    {"prefetch = 36501d", "'prefetch' days must be between 1 and 36500"},
	    {"prefetch = 99999999999999999999999d", "'prefetch' days must be between 1"},
	    {"poll = 4", "'poll' must be between 5s and 24h"},
	    {"poll = 0s", "'poll' must be between 5s and 24h"},
	    {"poll = 86401", "'poll' must be between 5s and 24h"},
	    {"poll = 1441m", "'poll' must be between 5s and 24h"},
	    {"poll = 25h", "'poll' must be between 5s and 24h"},
	    {"poll = 99999999999999999999999h", "'poll' must be between 5s and 24h"},
	    {"poll = 18446744073709551617s", "'poll' must be between 5s and 24h"},
	    {"poll = 10x", "bad value for 'poll': expected N, Ns, Nm or Nh"},
	    {"poll = 1 m", "bad value for 'poll'"},
	    {"poll = s", "bad value for 'poll'"},
	    {"poll = -5", "bad value for 'poll'"},
	    {"poll = 5ms", "bad value for 'poll'"},
	    {"outbox = a/b", "'outbox' must be one file name"},
	    {"outbox = .", "'outbox' must be one file name"},
	    {"outbox = ..", "'outbox' must be one file name"},
	    {"outbox = /", "'outbox' must be one file name"},
	    {"outbox = inbox", "'outbox' cannot be named INBOX"},
	    {"folders = \"a", "unterminated quote"},
	    {"folders = a\"b\"", "'\"' inside a folder pattern"},
	    {"folders = a \"\" b", "empty folder pattern"},
	    {"folders = \"a\"b", "text after the closing quote"},
	    {"folders = \"a\\tb\"", "bad escape in quoted value"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char text[512];
		snprintf(text, sizeof(text), HEADPW "%s\n", cases[i].line);
		EXPECT_ERR(text, 5, cases[i].reason);
	}
	EXPECT_ERR("debug = perhaps\n" ACCT, 1, "bad value for 'debug'");
	char text[600];
	snprintf(text, sizeof(text), HEADPW "outbox = %0256d\n", 0);
	EXPECT_ERR(text, 5, "'outbox' must be one file name");
}

/* Small buffers get a truncated but terminated message; NULL/0 is accepted. */
static void
test_err_buffer(void **state)
{
	(void)state;
	struct cfg *cfg = NULL;
	char err[8];
	memset(err, 'x', sizeof(err));
	assert_int_equal(cfg_parse("t.conf", "x", 1, 0600, &cfg, err, sizeof(err)), -1);
	assert_string_equal(err, "t.conf:");
	assert_int_equal(cfg_parse("t.conf", "x", 1, 0600, &cfg, NULL, 0), -1);
	assert_int_equal(cfg_parse("t.conf", "x", 1, 0600, &cfg, err, 0), -1);
	assert_int_equal(cfg_parse("t.conf", "x", 1, 0600, &cfg, err, 1), -1);
	assert_string_equal(err, "");
	/* A file name with a newline and UTF-8: still one line, no split sequence. */
	char err2[12];
	assert_int_equal(cfg_parse("a\nb\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", "x", 1, 0600, &cfg, err2,
				   sizeof(err2)),
			 -1);
	assert_string_equal(err2, "a?b\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9");
	char err3[9];
	assert_int_equal(cfg_parse("a\nb\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", "x", 1, 0600, &cfg, err3,
				   sizeof(err3)),
			 -1);
	assert_string_equal(err3, "a?b\xc3\xa9\xc3\xa9");
	assert_null(cfg);
	/* Bad arguments are reported, not crashed on. */
	char err4[128];
	assert_int_equal(cfg_parse("t.conf", ACCT, strlen(ACCT), 0600, NULL, err4, sizeof(err4)),
			 -1);
	assert_string_equal(err4, "t.conf: internal error: bad arguments");
	assert_int_equal(cfg_parse("t.conf", NULL, 5, 0600, &cfg, err4, sizeof(err4)), -1);
	assert_string_equal(err4, "t.conf: internal error: bad arguments");
	assert_int_equal(cfg_load(NULL, &cfg, err4, sizeof(err4)), -1);
	assert_string_equal(err4, "config: internal error: bad arguments");
	assert_int_equal(cfg_load("/nonexistent", NULL, err4, sizeof(err4)), -1);
	assert_int_equal(cfg_password(NULL, NULL, err4, sizeof(err4)), -1);
	assert_string_equal(err4, "internal error: bad arguments");
	assert_null(cfg);
}

/* --- the password file mode ---------------------------------------------------------- */

static void
test_mode_parse(void **state)
{
	(void)state;
	static const char pw[] = "[account a]\nimap = imaps://h\nuser = u\npassword = p\n";
	assert_true(check_err(pw, strlen(pw), 0100644, 0,
			      "mode 0644 allows others to read the password; chmod 600 it"));
	assert_true(check_err(pw, strlen(pw), 0640, 0, "mode 0640 allows others"));
	assert_true(check_err(pw, strlen(pw), 0620, 0, "mode 0620"));
	assert_true(check_err(pw, strlen(pw), 0604, 0, "mode 0604"));
	assert_true(check_err(pw, strlen(pw), 0602, 0, "mode 0602"));
	struct cfg *cfg = parse_ok_mode(pw, 0100600);
	cfg_free(&cfg);
	cfg = parse_ok_mode(pw, 0400);
	cfg_free(&cfg);
	cfg = parse_ok_mode(pw, 0711); /* execute bits do not reveal anything */
	cfg_free(&cfg);
	cfg = parse_ok_mode(ACCT, 0666);
	cfg_free(&cfg);
	/* Password in the second account only. */
	static const char two[] = ACCT "[account b]\nimap = imaps://h\nuser = u\npassword = p\n";
	assert_true(check_err(two, strlen(two), 0644, 0, "mode 0644"));
}

struct tmp {
	char dir[64];
	char path[128];
};

static void
tmp_write(struct tmp *t, const char *text, size_t len, mode_t mode)
{
	strcpy(t->dir, "/tmp/test-config.XXXXXX");
	assert_non_null(mkdtemp(t->dir));
	snprintf(t->path, sizeof(t->path), "%s/config", t->dir);
	int fd = open(t->path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

static void
tmp_remove(struct tmp *t)
{
	unlink(t->path);
	rmdir(t->dir);
}

static void
test_mode_load(void **state)
{
	(void)state;
	static const char pw[] = "[account a]\nimap = imaps://h\nuser = u\npassword = p\n";
	struct tmp t;
	struct cfg *cfg = NULL;
	char err[512], want[256];

	tmp_write(&t, pw, strlen(pw), 0644);
	assert_int_equal(cfg_load(t.path, &cfg, err, sizeof(err)), -1);
	assert_null(cfg);
	snprintf(want, sizeof(want),
		 "%s: mode 0644 allows others to read the password; chmod 600 it", t.path);
	assert_string_equal(err, want);
	assert_int_equal(chmod(t.path, 0600), 0);
	assert_int_equal(cfg_load(t.path, &cfg, err, sizeof(err)), 0);
	assert_non_null(cfg);
	assert_string_equal(cfg->path, t.path);
	assert_string_equal(cfg->accounts[0].password, "p");
	cfg_free(&cfg);
	tmp_remove(&t);

	tmp_write(&t, ACCT, strlen(ACCT), 0644);
	assert_int_equal(cfg_load(t.path, &cfg, err, sizeof(err)), 0);
	assert_string_equal(cfg->accounts[0].password_cmd, "c");
	cfg_free(&cfg);
	tmp_remove(&t);

	/* Errors name the file and line. */
	tmp_write(&t, "[account a]\nimapp = x\n", 22, 0600);
	assert_int_equal(cfg_load(t.path, &cfg, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s:2: unknown key 'imapp'", t.path);
	assert_string_equal(err, want);
	tmp_remove(&t);

	/* Over 1 MiB. */
	size_t big = 1024 * 1024 + 1;
	char *text = malloc(big);
	assert_non_null(text);
	memset(text, '\n', big);
	tmp_write(&t, text, big, 0600);
	free(text);
	assert_int_equal(cfg_load(t.path, &cfg, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s: larger than 1 MiB", t.path);
	assert_string_equal(err, want);
	assert_int_equal(cfg_load(t.dir, &cfg, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s: not a regular file", t.dir);
	assert_string_equal(err, want);
	tmp_remove(&t);
	assert_int_equal(cfg_load(t.path, &cfg, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s: No such file or directory", t.path);
	assert_string_equal(err, want);
	assert_null(cfg);
}

/* --- cfg_password -------------------------------------------------------------------- */

static int
run_pw(const char *cmd, char **pw, char *err, size_t errlen)
{
	struct cfg_account a;
	memset(&a, 0, sizeof(a));
	a.name = strdup("acct");
	a.password_cmd = strdup(cmd);
	assert_non_null(a.name);
	assert_non_null(a.password_cmd);
	*pw = (char *)1;
	int rc = cfg_password(&a, pw, err, errlen);
	free(a.name);
	free(a.password_cmd);
	if (rc < 0)
		assert_null(*pw);
	return rc;
}

static void
expect_pw(const char *cmd, const char *want)
{
	char *pw = NULL;
	char err[256];
	int rc = run_pw(cmd, &pw, err, sizeof(err));
	if (rc != 0)
		print_error("%s: %s\n", cmd, err);
	assert_int_equal(rc, 0);
	assert_string_equal(pw, want);
	cfg_secret_free(&pw);
	assert_null(pw);
}

static void
expect_pw_err(const char *cmd, const char *reason)
{
	char *pw = NULL;
	char err[256];
	int rc = run_pw(cmd, &pw, err, sizeof(err));
	if (rc == 0 || strstr(err, reason) == NULL)
		print_error("%s: want '%s', got rc %d '%s'\n", cmd, reason, rc, err);
	assert_int_equal(rc, -1);
	assert_non_null(strstr(err, reason));
	assert_null(strstr(err, "secret"));
	assert_null(strchr(err, '\n'));
}

static void
test_password(void **state)
{
	(void)state;
	expect_pw("printf 'secret\\n'", "secret");
	expect_pw("printf 'a\\r\\n'", "a");
	expect_pw("printf 'no-newline'", "no-newline");
	expect_pw("printf 'two\\n\\n'", "two\n");
	expect_pw("printf 'cr\\r'", "cr\r");
	expect_pw("printf ' spaced \\n'", " spaced ");
	expect_pw("echo a && echo b", "a\nb");
	expect_pw("x=$(printf 'sub'); echo \"$x\" | tr a-z A-Z", "SUB");
}

static void
test_password_long(void **state)
{
	(void)state;
	/* Exactly 64 KiB with the newline is fine; one byte more is not. */
	char *pw = NULL;
	char err[256];
	assert_int_equal(
	    run_pw("head -c 65535 /dev/zero | tr '\\0' x; echo", &pw, err, sizeof(err)), 0);
	assert_int_equal(strlen(pw), 65535);
	cfg_secret_free(&pw);
	expect_pw_err("head -c 65536 /dev/zero | tr '\\0' x; echo",
		      "account 'acct': password_cmd printed more than 64 KiB");
	expect_pw_err("yes | head -c 200000", "printed more than 64 KiB");
	expect_pw_err("yes", "printed more than 64 KiB");
}

static void
test_password_errors(void **state)
{
	(void)state;
	expect_pw_err("exit 3", "account 'acct': password_cmd exited with status 3");
	expect_pw_err("printf 'secret\\n'; exit 2", "password_cmd exited with status 2");
	expect_pw_err("cat", "account 'acct': password_cmd printed nothing");
	expect_pw_err("true", "password_cmd printed nothing");
	expect_pw_err("echo", "password_cmd printed nothing");
	expect_pw_err("printf '\\r\\n'", "password_cmd printed nothing");
	expect_pw_err("printf 'a\\0b\\n'", "password_cmd printed a NUL byte");
	expect_pw_err("kill -9 $$", "password_cmd killed by signal 9");
	expect_pw_err("no-such-command-xyz 2>/dev/null", "exited with status 127");
	expect_pw_err("exec 2>/dev/null; eval 'if then'", "exited with status 2");

	/* A literal password is copied; neither is an error. */
	struct cfg_account a;
	memset(&a, 0, sizeof(a));
	char name[] = "acct", secret[] = "lit";
	a.name = name;
	a.password = secret;
	char *pw = NULL, err[128];
	assert_int_equal(cfg_password(&a, &pw, err, sizeof(err)), 0);
	assert_string_equal(pw, "lit");
	assert_ptr_not_equal(pw, secret);
	cfg_secret_free(&pw);
	a.password = NULL;
	assert_int_equal(cfg_password(&a, &pw, err, sizeof(err)), -1);
	assert_string_equal(err, "account 'acct': no password or password_cmd");
	cfg_secret_free(&pw);
	cfg_secret_free(NULL);
}

static void
test_password_timeout(void **state)
{
	(void)state;
#ifdef CFG_PASSWORD_TIMEOUT_MS
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	/* Only the shell is killed: keep the leftover sleep off our stderr (meson waits for
	 * it to close). */
	expect_pw_err("sleep 10 2>/dev/null", "password_cmd timed out after");
	/* Stdout closed early, still running. */
	expect_pw_err("printf 'secret\\n'; exec >&- 2>/dev/null; sleep 10",
		      "password_cmd timed out after");
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_true(t1.tv_sec - t0.tv_sec < 2 * (CFG_PASSWORD_TIMEOUT_MS / 1000) + 5);
#else
	skip();
#endif
}

int
main(void)
{
	log_set_level(LOG_LEVEL_ERROR);
	setenv("HOME", "/home/t", 1);
	unsetenv("XDG_CACHE_HOME");
	unsetenv("XDG_CONFIG_HOME");
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_full),
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_default_ports),
	    cmocka_unit_test(test_ipv6),
	    cmocka_unit_test(test_quoting_and_comments),
	    cmocka_unit_test(test_values),
	    cmocka_unit_test(test_tilde),
	    cmocka_unit_test(test_default_path),
	    cmocka_unit_test(test_errors_structure),
	    cmocka_unit_test(test_errors_lines),
	    cmocka_unit_test(test_errors_urls),
	    cmocka_unit_test(test_errors_values),
	    cmocka_unit_test(test_err_buffer),
	    cmocka_unit_test(test_mode_parse),
	    cmocka_unit_test(test_mode_load),
	    cmocka_unit_test(test_password),
	    cmocka_unit_test(test_password_long),
	    cmocka_unit_test(test_password_errors),
	    cmocka_unit_test(test_password_timeout),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
