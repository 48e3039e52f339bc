/* main.c - the mailfs command line: option parsing, --version, --help, --check-config,
 * and (from the mount issue on) the FUSE session.
 *
 *   mailfs [FUSE options] [-o config=PATH] [-o cache_dir=DIR] [SOURCE] MOUNTPOINT
 *   mailfs --check-config [-o config=PATH]
 *
 * Options are parsed with libfuse's fuse_opt so that every standard FUSE option (-f, -d,
 * -s, -o allow_other, ...) passes through to the session unchanged. SOURCE is what
 * mount(8) and mount.fuse3 pass before the mount point (the first field of an fstab line,
 * `mount -t fuse.mailfs SOURCE DIR`): it names the mount in /proc/mounts (fsname) and
 * means nothing else. */
#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/check.h"
#include "cache/config.h"
#include "fs/fs.h"
#include "net/log.h"

struct options {
	char *config;    /* -o config=PATH */
	char *cache_dir; /* -o cache_dir=DIR */
	int check;       /* --check-config */
	int version;
	int help;
	int debug; /* -d: also protocol traces */
	char *first; /* the first non-option argument, until we know whether a second comes */
	char *source; /* SOURCE: the first of two non-option arguments */
	int nonopts;
};

#define OPT(t, p) { t, offsetof(struct options, p), 1 }
enum { KEY_DEBUG = 1 };
static const struct fuse_opt option_spec[] = {
	OPT("config=%s", config),
	OPT("cache_dir=%s", cache_dir),
	OPT("--check-config", check),
	OPT("--version", version),
	OPT("-V", version),
	OPT("--help", help),
	OPT("-h", help),
	/* Our own key: with FUSE_OPT_KEY_KEEP, opt_proc would never see them. Kept for FUSE. */
	FUSE_OPT_KEY("-d", KEY_DEBUG),
	FUSE_OPT_KEY("debug", KEY_DEBUG),
	FUSE_OPT_END,
};

static int
opt_proc(void *data, const char *arg, int key, struct fuse_args *outargs)
{
	struct options *o = data;
	if (key == KEY_DEBUG)
		o->debug = 1;
	if (key == FUSE_OPT_KEY_NONOPT) {
		/* Held back: with a second one it is SOURCE, else the mount point (put back). */
		if (++o->nonopts == 1) {
			o->first = strdup(arg);
			return o->first != NULL ? 0 : -1;
		}
		if (o->nonopts == 2) {
			o->source = o->first;
			o->first = NULL;
		}
	}
	return 1; /* kept for FUSE, as is everything else */
}

static void
usage(FILE *f, const char *prog)
{
	fprintf(f,
		"usage: %s [FUSE options] [-o config=PATH] [-o cache_dir=DIR] [SOURCE] MOUNTPOINT\n"
		"       %s --check-config [-o config=PATH]\n"
		"\n"
		"Mounts the mail accounts of the configuration as directories of .eml files.\n"
		"\n"
		"mailfs options:\n"
		"    -o config=PATH       configuration file (default $XDG_CONFIG_HOME/mailfs/config,\n"
		"                         else ~/.config/mailfs/config)\n"
		"    -o cache_dir=DIR     cache directory (overrides cache_dir in the config)\n"
		"    --check-config       connect and log in to every account (IMAP, and SMTP when\n"
		"                         the account has an smtp URL), list the folders, exit 0\n"
		"                         if everything works, 1 otherwise\n"
		"    -d                   debug: FUSE requests and protocol traces (passwords are\n"
		"                         never shown), stay in the foreground\n"
		"    -V, --version        print the version\n"
		"    -h, --help           this help\n"
		"\n"
		"FUSE options:\n",
		prog, prog);
}

int
main(int argc, char **argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct options o = { 0 };
	struct cfg *cfg = NULL;
	char err[1024];
	int ret = 1;

	/* A peer that resets a connection must be an error message, never a silent death:
	 * net/ sends with MSG_NOSIGNAL (and its TLS sessions too), and this covers every
	 * other write (a closed stdout or stderr pipe) before FUSE sets its own handlers. */
	signal(SIGPIPE, SIG_IGN);
	if (fuse_opt_parse(&args, &o, option_spec, opt_proc) == -1)
		goto out;
	if (o.first != NULL && fuse_opt_add_arg(&args, o.first) != 0)
		goto out;
	if (o.nonopts > 2) {
		fprintf(stderr, "mailfs: too many arguments: want [SOURCE] MOUNTPOINT (see mailfs "
				"--help)\n");
		goto out;
	}
	/* SOURCE names the mount in /proc/mounts, if it can stand in an option list. */
	if (o.source != NULL && o.source[0] != '\0' && strpbrk(o.source, ", \t\n\\") == NULL) {
		char fsname[512];
		snprintf(fsname, sizeof(fsname), "-ofsname=%s,subtype=mailfs", o.source);
		if (fuse_opt_add_arg(&args, fsname) != 0)
			goto out;
	}
	if (o.version) {
		printf("mailfs %s (libfuse %s, %s)\n", MAILFS_VERSION, fuse_pkgversion(),
		       "OpenSSL 3, SQLite 3");
		ret = 0;
		goto out;
	}
	if (o.help) {
		usage(stdout, argv[0]);
		fflush(stdout);
		fuse_cmdline_help();
		fuse_lowlevel_help();
		ret = 0;
		goto out;
	}
	if (o.config == NULL) {
		o.config = cfg_default_path();
		if (o.config == NULL) {
			fprintf(stderr, "mailfs: no config path: set HOME or use -o config=PATH\n");
			goto out;
		}
	}
	if (cfg_load(o.config, &cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "mailfs: %s\n", err);
		goto out;
	}
	if (o.cache_dir != NULL) {
		free(cfg->cache_dir);
		cfg->cache_dir = strdup(o.cache_dir);
	}
	if (o.debug || cfg->debug) {
		log_set_level(LOG_LEVEL_DEBUG);
		log_set_trace(true);
	}
	if (o.check) {
		printf("config %s: %zu account%s\n", cfg->path, cfg->naccounts,
		       cfg->naccounts == 1 ? "" : "s");
		int failed = check_accounts(cfg, stdout, stderr);
		ret = failed == 0 ? 0 : 1;
		goto out;
	}
	ret = fs_run(cfg, &args);
out:
	cfg_free(&cfg);
	free(o.config);
	free(o.cache_dir);
	free(o.first);
	free(o.source);
	fuse_opt_free_args(&args);
	return ret;
}
