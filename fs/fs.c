/* fs.c - FUSE low-level operations over the cache (see fs.h).
 *
 * Round trips decide how fast the mount feels, so: open and opendir answer ENOSYS once
 * (the kernel then never asks again and keeps page and directory caches), FLUSH is answered
 * ENOSYS for good once fs/closewatch.c sees closes (and at once on a read-only mount),
 * entries and attributes live for a day, extended attributes outside user.mail.* answer
 * EOPNOTSUPP (coreutils then stops asking), and directory listings are READDIRPLUS pages
 * read with one index seek each.
 *
 * It does not talk to servers: the sync engine (cache/sync) does, and tells us through
 * hooks what changed, which we pass on to the kernel with the notify calls.
 */

#define FUSE_USE_VERSION 314

#include "fs/fs.h"
#include "fs/fs-internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cache/change.h"
#include "cache/check.h"
#include "cache/store.h"
#include "cache/pop3-sync.h"
#include "cache/sync.h"
#include "net/buf.h"
#include "net/log.h"


/* ---- per-thread store ---------------------------------------------------------------- */

static void
store_key_free(void *p)
{
	struct store *s = p;
	store_close(&s);
}

/* The calling thread's store handle (each thread owns its SQLite connection). */
struct store *
thread_store(struct mfs *m)
{
	struct store *s = pthread_getspecific(m->store_key);
	if (s != NULL)
		return s;
	char err[512];
	if (store_open(m->cfg->cache_dir, &s, err, sizeof(err)) < 0) {
		log_error("%s", err);
		return NULL;
	}
	pthread_setspecific(m->store_key, s);
	return s;
}

struct store *
writer_store(struct mfs *m)
{
	pthread_mutex_lock(&m->wstore_mu);
	if (m->wstore == NULL) {
		char err[512];
		if (store_open(m->cfg->cache_dir, &m->wstore, err, sizeof(err)) < 0) {
			log_error("%s", err);
			pthread_mutex_unlock(&m->wstore_mu);
			return NULL;
		}
	}
	return m->wstore;
}

void
writer_done(struct mfs *m)
{
	pthread_mutex_unlock(&m->wstore_mu);
}

struct store *
reader_store(struct mfs *m, bool *held)
{
	*held = false;
	if (pthread_mutex_trylock(&m->wstore_mu) == 0) {
		if (m->wstore != NULL) {
			*held = true;
			return m->wstore;
		}
		pthread_mutex_unlock(&m->wstore_mu);
	}
	return thread_store(m);
}

void
reader_done(struct mfs *m, bool held)
{
	if (held)
		pthread_mutex_unlock(&m->wstore_mu);
}

static void
outbox_key_free(void *p)
{
	struct outbox *ob = p;
	outbox_close(&ob);
}

struct outbox *
thread_outbox(struct mfs *m)
{
	struct outbox *ob = pthread_getspecific(m->outbox_key);
	if (ob != NULL)
		return ob;
	char err[512];
	if (outbox_open(m->cfg->cache_dir, &ob, err, sizeof(err)) < 0) {
		log_error("%s", err);
		return NULL;
	}
	pthread_setspecific(m->outbox_key, ob);
	return ob;
}

struct account *
account_of(struct mfs *m, int64_t account_id)
{
	for (size_t i = 0; i < m->nacc; i++)
		if (m->acc[i].account_id == account_id)
			return &m->acc[i];
	return NULL;
}
static void
mfs_statfs(fuse_req_t req, fuse_ino_t ino)
{
	(void)ino;
	struct mfs *m = fuse_req_userdata(req);
	struct store *s = thread_store(m);
	struct statvfs sv;
	memset(&sv, 0, sizeof(sv));
	sv.f_bsize = 4096;
	sv.f_frsize = 4096;
	sv.f_namemax = 255;
	if (s != NULL) {
		for (size_t i = 0; i < m->nacc; i++) {
			struct store_stats ss;
			if (store_stats(s, m->acc[i].account_id, &ss) == 0) {
				sv.f_files += ss.messages + ss.folders;
				sv.f_blocks += ss.body_bytes / 4096;
			}
		}
	}
	fuse_reply_statfs(req, &sv);
}

/* ---- init ---------------------------------------------------------------------------- */

static void
mfs_init(void *userdata, struct fuse_conn_info *conn)
{
	struct mfs *m = userdata;
	/* Every READDIR is a READDIRPLUS: one request lists many entries with attributes. */
	conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO;
	/* Sizes never change under a name: no writeback cache marking them stale. */
	conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
	/* open(O_TRUNC) must reach us as a SETATTR of size 0: with atomic O_TRUNC the kernel
	 * leaves the truncation to OPEN, which is answered ENOSYS, and the old bytes past
	 * the new end would stay (`cp new.eml over.eml`). */
	conn->want &= ~FUSE_CAP_ATOMIC_O_TRUNC;
	if (conn->capable & FUSE_CAP_CACHE_SYMLINKS)
		conn->want |= FUSE_CAP_CACHE_SYMLINKS;
	m->ready = true;
}

static const struct fuse_lowlevel_ops mfs_ops = {
	.init = mfs_init,
	.lookup = mfs_lookup,
	.getattr = mfs_getattr,
	.setattr = mfs_setattr,
	.readdir = mfs_readdir,
	.readdirplus = mfs_readdirplus,
	.open = mfs_open,
	.opendir = mfs_opendir,
	.read = mfs_read,
	.write = mfs_write,
	.create = mfs_create,
	.mknod = mfs_mknod,
	.mkdir = mfs_mkdir,
	.unlink = mfs_unlink,
	.rmdir = mfs_rmdir,
	.flush = mfs_flush,
	.fsync = mfs_fsync,
	.release = mfs_release,
	.rename = mfs_rename,
	.getxattr = mfs_getxattr,
	.listxattr = mfs_listxattr,
	.setxattr = mfs_setxattr,
	.statfs = mfs_statfs,
};

/* ---- hooks from the sync engine -------------------------------------------------------- */

static void
hook_folder_changed(void *ctx, int64_t folder_id)
{
	struct mfs *m = ctx;
	m->folders_gen++; /* a sub-folder may have come: fs/closewatch.c watches it */
	if (m->se != NULL && m->ready)
		fuse_lowlevel_notify_inval_inode(m->se, store_ino_folder(folder_id), 0, 0);
}

static void
hook_msg_removed(void *ctx, int64_t folder_id, int64_t msg_id, const char *name)
{
	struct mfs *m = ctx;
	if (m->se == NULL || !m->ready)
		return;
	fuse_lowlevel_notify_inval_entry(m->se, store_ino_folder(folder_id), name, strlen(name));
	fuse_lowlevel_notify_inval_inode(m->se, store_ino_msg(msg_id), 0, 0);
	fuse_lowlevel_notify_inval_inode(m->se, store_ino_folder(folder_id), 0, 0);
}

static void
hook_msg_changed(void *ctx, int64_t msg_id)
{
	struct mfs *m = ctx;
	if (m->se != NULL && m->ready)
		fuse_lowlevel_notify_inval_inode(m->se, store_ino_msg(msg_id), -1, 0);
}

static void
hook_folder_removed(void *ctx, int64_t parent_id, int64_t folder_id, const char *name)
{
	struct mfs *m = ctx;
	if (m->se == NULL || !m->ready)
		return;
	fuse_ino_t parent = parent_id ? store_ino_folder(parent_id) : FUSE_ROOT_ID;
	fuse_lowlevel_notify_inval_entry(m->se, parent, name, strlen(name));
	fuse_lowlevel_notify_inval_inode(m->se, parent, 0, 0);
	(void)folder_id;
}

/* The account's server answers again: mail waiting in its outbox goes now. */
static void
hook_back_online(void *ctx, int64_t account_id)
{
	struct account *a = account_of(ctx, account_id);
	if (a != NULL)
		sender_retry_all(a->sender);
}

static const struct sender_hooks sender_hooks = {
	.outbox_changed = obx_changed,
};

static const struct sync_hooks hooks = {
	.folder_changed = hook_folder_changed,
	.msg_removed = hook_msg_removed,
	.msg_changed = hook_msg_changed,
	.folder_removed = hook_folder_removed,
	.back_online = hook_back_online,
};

/* ---- running ------------------------------------------------------------------------- */

static int
prepare_accounts(struct mfs *m)
{
	char err[1024];
	struct store *s = NULL;
	if (store_open(m->cfg->cache_dir, &s, err, sizeof(err)) < 0) {
		fprintf(stderr, "mailfs: %s\n", err);
		return -1;
	}
	/* Before any sync thread writes a body: what a crash left in the packs goes. */
	if (store_body_sweep(s, NULL) < 0)
		fprintf(stderr, "mailfs: warning: %s\n", store_errmsg(s));
	int ret = -1;
	struct outbox *ob = NULL;
	unsigned recovered;
	if (outbox_open(m->cfg->cache_dir, &ob, err, sizeof(err)) < 0 ||
	    outbox_recover(ob, m->cfg, &recovered) < 0) {
		fprintf(stderr, "mailfs: %s\n", ob ? outbox_errmsg(ob) : err);
		outbox_close(&ob);
		store_close(&s);
		return -1;
	}
	outbox_close(&ob);
	m->acc = calloc(m->cfg->naccounts, sizeof(*m->acc));
	if (m->acc == NULL)
		goto out;
	for (size_t i = 0; i < m->cfg->naccounts; i++) {
		const struct cfg_account *ca = &m->cfg->accounts[i];
		struct account *a = &m->acc[m->nacc++];
		a->cfg = ca;
		if (store_account_ensure(s, ca->name, &a->account_id) < 0 ||
		    store_folder_ensure(s, a->account_id, 0, ca->name, STORE_FOLDER_ACCOUNT, "", '\0',
					0, &a->top_id) < 0) {
			fprintf(stderr, "mailfs: %s\n", store_errmsg(s));
			goto out;
		}
		/* An empty cache needs the server now; a warm one can start offline. */
		struct store_folder kids[1];
		int n = store_folder_children(s, a->top_id, "", kids, 1);
		if (n == 0 && check_login(ca, err, sizeof(err)) < 0) {
			fprintf(stderr, "mailfs: account '%s': %s\n", ca->name, err);
			goto out;
		}
	}
	ret = 0;
out:
	store_close(&s);
	return ret;
}

/* Files written into folders whose writer never got to close them (the daemon was
 * killed): committed now if they are messages, kept as local files if not. */
static int
recover_writes(struct mfs *m)
{
	char err[1024];
	struct store *s = NULL;
	if (store_open(m->cfg->cache_dir, &s, err, sizeof(err)) < 0) {
		fprintf(stderr, "mailfs: %s\n", err);
		return -1;
	}
	struct change_acct *ca = calloc(m->nacc ? m->nacc : 1, sizeof(*ca));
	if (ca == NULL) {
		store_close(&s);
		return -1;
	}
	for (size_t i = 0; i < m->nacc; i++) {
		ca[i].cfg = m->acc[i].cfg;
		ca[i].account_id = m->acc[i].account_id;
		ca[i].top_id = m->acc[i].top_id;
	}
	int n = change_recover(s, ca, m->nacc);
	if (n > 0)
		log_info("%d file(s) written before a crash were committed", n);
	free(ca);
	store_close(&s);
	return 0;
}

/* The last of "-o ro" / "-o rw" given (in any -o list): 1 ro, 0 rw, -1 neither. */
static int
ro_option(const struct fuse_args *args)
{
	int ro = -1;
	for (int i = 1; i < args->argc; i++) {
		const char *o = NULL;
		if (strcmp(args->argv[i], "-o") == 0 && i + 1 < args->argc)
			o = args->argv[++i];
		else if (strncmp(args->argv[i], "-o", 2) == 0)
			o = args->argv[i] + 2;
		if (o == NULL)
			continue;
		for (const char *p = o; *p;) {
			size_t n = strcspn(p, ",");
			if (n == 2 && strncmp(p, "ro", 2) == 0)
				ro = 1;
			else if (n == 2 && strncmp(p, "rw", 2) == 0)
				ro = 0;
			p += n + (p[n] == ',');
		}
	}
	return ro;
}

int
fs_run(struct cfg *cfg, struct fuse_args *args)
{
	struct mfs m;
	memset(&m, 0, sizeof(m));
	m.cfg = cfg;
	m.uid = getuid();
	m.gid = getgid();
	m.started = time(NULL);
	pthread_mutex_init(&m.status_mu, NULL);
	pthread_key_create(&m.store_key, store_key_free);
	pthread_key_create(&m.outbox_key, outbox_key_free);
	pthread_mutex_init(&m.writers_mu, NULL);
	pthread_mutex_init(&m.wstore_mu, NULL);
	int ret = 1;
	bool mounted = false;
	struct fuse_cmdline_opts fo;
	memset(&fo, 0, sizeof(fo));

	if (fuse_parse_cmdline(args, &fo) != 0)
		goto out;
	int ro = ro_option(args);
	if (fo.mountpoint == NULL) {
		fprintf(stderr, "mailfs: no mount point given (see mailfs --help)\n");
		goto out;
	}
	if (prepare_accounts(&m) < 0 || recover_writes(&m) < 0)
		goto out;
	/* Folders take writes: the mount is read-write unless -o ro is given. A read-only
	 * superblock keeps the kernel from marking atime stale after each READ (one GETATTR
	 * per file read at its next stat), and FLUSH is then answered ENOSYS once and never
	 * sent again. */
	m.readonly = ro == 1;
	/* noatime: on a writable mount it spares the GETATTR after reads of cached pages (a
	 * second grep); the first stat after a READ still costs one. */
	if (fuse_opt_add_arg(args, "-onoatime") != 0)
		goto out;
	m.se = fuse_session_new(args, &mfs_ops, sizeof(mfs_ops), &m);
	if (m.se == NULL)
		goto out;
	if (fuse_set_signal_handlers(m.se) != 0)
		goto out;
	if (fuse_session_mount(m.se, fo.mountpoint) != 0) {
		fprintf(stderr, "mailfs: cannot mount on %s\n", fo.mountpoint);
		goto out;
	}
	mounted = true;
	if (!fo.foreground)
		log_use_syslog(true);
	if (fuse_daemonize(fo.foreground) != 0)
		goto out;
	/* Threads start after daemonizing (fork keeps only the calling thread). The first:
	 * the WAL's checkpoints, so that no rename or sync batch waits for one. */
	{
		char err[512];
		if (store_checkpointer_start(cfg->cache_dir, err, sizeof(err)) < 0)
			log_warn("%s (commits checkpoint themselves)", err);
	}
	for (size_t i = 0; i < m.nacc; i++) {
		char err[512];
		if (m.acc[i].cfg->pop3.set) {
			m.acc[i].pop3 = pop3_sync_start(m.acc[i].cfg, cfg->cache_dir,
							m.acc[i].account_id, m.acc[i].top_id,
							&hooks, &m, err, sizeof(err));
			if (m.acc[i].pop3 == NULL)
				log_error("%s", err);
		} else {
			m.acc[i].sync = sync_start(m.acc[i].cfg, cfg->cache_dir,
						   m.acc[i].account_id, m.acc[i].top_id, &hooks,
						   &m, err, sizeof(err));
			if (m.acc[i].sync == NULL)
				log_error("%s", err);
		}
		if (m.acc[i].cfg->smtp.set) {
			m.acc[i].sender = sender_start(m.acc[i].cfg, cfg->cache_dir, &sender_hooks,
						       &m, err, sizeof(err));
			if (m.acc[i].sender == NULL)
				log_error("%s", err);
		}
	}
	if (fo.foreground)
		(void)progress_start(&m);
	/* Closes are seen through inotify once the loop answers lookups (fs/closewatch.c). */
	m.singlethread = fo.singlethread;
	(void)closewatch_start(&m, fo.mountpoint);
	int r;
	if (fo.singlethread) {
		r = fuse_session_loop(m.se);
	} else {
		struct fuse_loop_config *lc = fuse_loop_cfg_create();
		fuse_loop_cfg_set_clone_fd(lc, fo.clone_fd);
		unsigned max = fo.max_threads;
		fuse_loop_cfg_set_max_threads(lc, max == 0 || max > 1000 ? 16 : max);
		unsigned idle = fo.max_idle_threads; /* UINT_MAX when not given */
		fuse_loop_cfg_set_idle_threads(lc, idle == 0 || idle > 1000 ? 4 : idle);
		r = fuse_session_loop_mt(m.se, lc);
		fuse_loop_cfg_destroy(lc);
	}
	ret = r == 0 ? 0 : 1;
out:;
	/* It may be inside a lookup that the stopped loop will not answer: the unmount ends
	 * that, so wait for it briefly here and for good after the unmount. */
	bool cw_stopped = closewatch_stop(&m, 1000);
	progress_stop(&m);
	for (size_t i = 0; i < m.nacc; i++) {
		sync_stop(&m.acc[i].sync);
		pop3_sync_stop(&m.acc[i].pop3);
		sender_stop(&m.acc[i].sender);
	}
	if (m.se != NULL) {
		struct fuse_session *se = m.se;
		m.se = NULL;
		if (mounted)
			fuse_session_unmount(se);
		if (!cw_stopped)
			closewatch_stop(&m, 0);
		fuse_remove_signal_handlers(se);
		fuse_session_destroy(se);
	}
	store_close(&m.wstore);
	store_checkpointer_stop();
	struct store *s = pthread_getspecific(m.store_key);
	store_close(&s);
	pthread_setspecific(m.store_key, NULL);
	struct outbox *ob = pthread_getspecific(m.outbox_key);
	outbox_close(&ob);
	pthread_setspecific(m.outbox_key, NULL);
	free(m.acc);
	free(m.status_text);
	free(fo.mountpoint);
	return ret;
}

