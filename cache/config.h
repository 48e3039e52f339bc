/* config.h - the mailfs configuration file (INI; see README "Configuration").
 *
 *   cache_dir = ~/.cache/mailfs        ; global keys come before the first section
 *   [account personal]
 *   imap = imaps://imap.example.com    ; or pop3 = ..., one of the two is required
 *   ...
 *
 * Every key is parsed and validated here, even those later layers use; unknown keys,
 * malformed lines, bad values and missing required keys are errors that name file:line
 * (or file and account for what is missing at the end of a section). Comments start with
 * ";" or "#" at the beginning of a line or after white space; values are trimmed; a value
 * may be written in double quotes to keep a ";" or "#" or surrounding spaces.
 *
 * Ownership: a struct cfg owns all its strings; cfg_free() releases everything. */
#ifndef MAILFS_CONFIG_H
#define MAILFS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum cfg_proto { CFG_PROTO_IMAP, CFG_PROTO_POP3, CFG_PROTO_SMTP };

/* A server URL: imap://, imaps://, pop3://, pop3s://, smtp://, smtps://, with an optional
 * port; IPv6 literals in brackets ("imaps://[::1]:993"). No path, no user info. */
struct cfg_url {
	bool set;
	enum cfg_proto proto;
	bool implicit_tls; /* imaps/pop3s/smtps; otherwise STARTTLS/STLS (unless tls = off) */
	char *host;        /* without brackets */
	uint16_t port;     /* the URL's port or the scheme's default (143/993, 110/995, 587/465) */
};

enum cfg_prefetch { CFG_PREFETCH_ALL, CFG_PREFETCH_NONE, CFG_PREFETCH_DAYS };
enum cfg_delete { CFG_DELETE_TRASH, CFG_DELETE_EXPUNGE };
enum cfg_pop3_delete { CFG_POP3_DELETE_NEVER, CFG_POP3_DELETE_AFTER_CACHE };
enum cfg_auth { CFG_AUTH_DEFAULT, CFG_AUTH_PLAIN, CFG_AUTH_LOGIN, CFG_AUTH_XOAUTH2 };

struct cfg_account {
	char *name;        /* "[account NAME]": 1..64 bytes of [A-Za-z0-9._-], not "." or ".." */
	unsigned line;     /* line of the section header */
	struct cfg_url imap;  /* imap = URL */
	struct cfg_url pop3;  /* pop3 = URL (exactly one of imap/pop3 is set) */
	struct cfg_url smtp;  /* smtp = URL (optional: no outbox without it) */
	char *user;           /* required */
	char *password;       /* password = ... (only if the file is not readable by others) */
	char *password_cmd;   /* password_cmd = ... (run by /bin/sh -c, as written) */
	char *from;           /* from = Name <addr> (optional) */
	char *ca_file;        /* ca_file = PATH (~ expanded), or NULL for the system store */
	bool tls;             /* tls = on|off (default on); off means plaintext, warned about */
	bool tls_verify;      /* tls_verify = yes|no (default yes); no is warned about each connect */
	enum cfg_auth auth;   /* auth = plain|login|xoauth2 (default: best offered) */
	enum cfg_prefetch prefetch; /* prefetch = all|none|<N>d (default all) */
	unsigned prefetch_days;
	unsigned poll_seconds; /* poll = N[s|m|h] (default 60s, at least 5s) */
	char *outbox;          /* outbox = NAME (default "outbox") */
	char *sent, *drafts, *trash; /* folder names, NULL = from SPECIAL-USE, then common names */
	bool save_sent;        /* save_sent = yes|no (default yes) */
	enum cfg_delete delete_mode;         /* delete = trash|expunge (default trash) */
	enum cfg_pop3_delete pop3_delete;    /* pop3_delete = never|after_cache (default never) */
	char **folders;        /* folders = pattern ... (IMAP LIST patterns, space separated;
	                        * a pattern with spaces in double quotes); NULL = all */
	size_t nfolders;
};

struct cfg {
	char *path;      /* the file read */
	char *cache_dir; /* cache_dir = DIR (~ expanded), default $XDG_CACHE_HOME/mailfs or
	                  * ~/.cache/mailfs */
	bool debug;      /* debug = yes|no: protocol traces (redacted), default no */
	struct cfg_account *accounts;
	size_t naccounts;
};

/* The default config path: $XDG_CONFIG_HOME/mailfs/config, else ~/.config/mailfs/config.
 * Returns a new string, or NULL if neither variable nor HOME is set. */
char *cfg_default_path(void);

/* Read and validate a config file. Refuses a file holding a `password` key when it is
 * readable or writable by group or others ("FILE: mode 0644 allows others to read the
 * password; chmod 600 it"). Returns 0 and *cfg_r, or -1 with one line in err
 * ("FILE:LINE: unknown key 'imapp'"). */
int cfg_load(const char *path, struct cfg **cfg_r, char *err, size_t errlen);

/* Parse config text already in memory (`mode`: the file's st_mode, for the password
 * check; `name`: used in messages). Same contract as cfg_load(). Does not touch the file
 * system except for HOME/XDG lookups. */
int cfg_parse(const char *name, const char *text, size_t len, mode_t mode, struct cfg **cfg_r,
	      char *err, size_t errlen);

/* Free everything and set *cfg to NULL. Accepts NULL and *cfg == NULL. */
void cfg_free(struct cfg **cfg);

/* The account's password: `password`, or the output of `password_cmd` (run with
 * /bin/sh -c exactly as written, stdin from /dev/null, stdout read up to 64 KiB, one
 * trailing "\n" or "\r\n" removed, exit status must be 0, at most 30 s). Returns 0 and a
 * new string in *pw_r (caller wipes and frees it), or -1 with a reason in err that never
 * contains the password. */
int cfg_password(const struct cfg_account *acct, char **pw_r, char *err, size_t errlen);

/* Wipe and free a secret (password), set *s to NULL. */
void cfg_secret_free(char **s);

#endif
