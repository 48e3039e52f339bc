/* fs-internal.h - what the parts of the FUSE daemon share: the daemon's state, inode
 * number ranges and the handlers each file implements. fs.c: set-up, the operation table,
 * the sync engine's hooks; lookup.c: names, attributes, listings; read.c: reading;
 * write.c: files written in folders and scratch files; folder.c: mkdir, rmdir, folder
 * renames; xattr.c: user.mail.*; status.c: .status; outbox.c: the outbox directories.
 *
 * Inode numbers:
 *   1                      the root
 *   2                      .status before its first build; then STATUS_INO_BASE + generation
 *   store_ino_folder/msg   folders and messages: store row ids (cache/store.h), < 2^40
 *   OBX_INO_BASE | kind << 48 | value   outbox entries (value: account index or queue row
 *                          id; queue ids are never reused, so neither are these numbers)
 */
#ifndef MAILFS_FS_INTERNAL_H
#define MAILFS_FS_INTERNAL_H

#ifndef FUSE_USE_VERSION
#define FUSE_USE_VERSION 314
#endif

#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#include "cache/config.h"
#include "cache/outbox.h"
#include "cache/sender.h"
#include "cache/store.h"
#include "cache/pop3-sync.h"
#include "cache/sync.h"

#define TIMEOUT_LONG 86400.0
#define NEGATIVE_TIMEOUT 1.0
#define MSG_OFF_BASE (UINT64_C(1) << 62)
#define READDIR_PAGE 256
/* .status gets a new inode number each time its text changes (STATUS_INO_BASE + generation),
 * so the kernel never serves an old text from its page cache; its entry is never cached. */
#define STATUS_INO_BASE (UINT64_C(1) << 63)

#define OBX_INO_BASE (UINT64_C(1) << 61)
enum obx_kind {
	OBX_NONE = 0,
	OBX_DIR = 1,       /* <account>/outbox; value: account index */
	OBX_FAILED_DIR = 2, /* <account>/outbox/failed; value: account index */
	OBX_FILE = 3,      /* outbox/NAME (being written or queued); value: row id */
	OBX_FAILED = 4,    /* outbox/failed/NAME; value: row id */
	OBX_ERROR = 5,     /* outbox/failed/NAME.error; value: row id */
	OBX_SCRATCH = 6,   /* outbox/.NAME, a scratch file; value: serial (fs/outbox.c) */
};

static inline uint64_t
obx_ino(enum obx_kind kind, uint64_t value)
{
	return OBX_INO_BASE | (uint64_t)kind << 48 | value;
}

static inline enum obx_kind
obx_kind(uint64_t ino, uint64_t *value_r)
{
	if ((ino & ~(UINT64_C(0xff) << 48 | ((UINT64_C(1) << 48) - 1))) != OBX_INO_BASE)
		return OBX_NONE;
	*value_r = ino & ((UINT64_C(1) << 48) - 1);
	return (enum obx_kind)(ino >> 48 & 0xff);
}

struct writer; /* fs/outbox.c */

struct account {
	const struct cfg_account *cfg; /* borrowed from mfs.cfg */
	int64_t account_id;
	int64_t top_id;
	struct sync *sync;             /* IMAP accounts */
	struct pop3_sync *pop3;        /* POP3 accounts (then sync is NULL) */
	struct sender *sender;         /* NULL without an smtp URL */
	_Atomic uint64_t served_bytes; /* message bytes returned by read() */
	char write_note[600];          /* the last file refused at its close; mfs.status_mu */
};

struct mfs {
	struct cfg *cfg;
	struct fuse_session *se;
	struct account *acc;
	size_t nacc;
	pthread_key_t store_key;
	pthread_key_t outbox_key;
	/* The connection renames use, one at a time (writer_store). */
	pthread_mutex_t wstore_mu;
	struct store *wstore;
	_Atomic bool ready; /* the kernel's INIT was answered: notifications may go out */
	bool readonly;      /* mounted with -o ro: no outbox writes, no FLUSH round trips */
	uid_t uid;
	gid_t gid;
	time_t started;

	pthread_mutex_t status_mu; /* protects status_text/status_len/status_mtime */
	char *status_text;
	size_t status_len;
	uint64_t status_gen;
	int64_t status_built_ms;     /* monotonic */
	struct timespec status_mtime; /* realtime: when the text last changed */
	struct progress *progress;    /* fs/progress.c; NULL unless in the foreground */

	pthread_mutex_t writers_mu; /* protects the list of files being written */
	struct writer *writers;
	struct writer *live;        /* every writer not freed yet (writers_mu) */
	/* Closes are seen by fs/closewatch.c: FLUSH is answered ENOSYS (never sent again). */
	_Atomic bool noflush;
	_Atomic bool open_refused;      /* OPEN was answered ENOSYS: no RELEASE comes any more */
	_Atomic unsigned folders_gen;   /* bumped when folders may have appeared */
	struct closewatch *cw;       /* NULL: no inotify; OPEN is then answered and RELEASE comes */
	bool singlethread;          /* -s: a handler must not wait on a lookup of this mount */
};

/* The calling thread's store / outbox handles (each thread owns its SQLite connections). */
struct store *thread_store(struct mfs *m);
/* The file system's writer connection, held until writer_done(); NULL (nothing held) if it
 * cannot be opened. One connection for a run of changes keeps its pages: a connection sees
 * another's commit and reads again every page it touches, and with one per FUSE thread
 * (they take requests in turn) every rename of a `mv` did. Hold it only for store work:
 * reply and notify the kernel after writer_done(). */
struct store *writer_store(struct mfs *m);
void writer_done(struct mfs *m);
/* For a read that is over in microseconds (a lookup, a getattr): the writer connection if
 * no one holds it (its pages are the ones the last change touched), else the thread's
 * own. Never waits. Pass *held to reader_done(). */
struct store *reader_store(struct mfs *m, bool *held);
void reader_done(struct mfs *m, bool held);
struct outbox *thread_outbox(struct mfs *m);
void dir_attr(struct mfs *m, uint64_t ino, int64_t mtime, struct stat *st);

/* fs/outbox.c: each returns true if it handled the request (the inode or parent is an
 * outbox one, or `name` is the outbox in an account's top directory). */
bool obx_lookup(struct mfs *m, fuse_req_t req, fuse_ino_t parent, const char *name);
bool obx_getattr(struct mfs *m, fuse_req_t req, fuse_ino_t ino);
bool obx_readdir(struct mfs *m, fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		 bool plus);
bool obx_read(struct mfs *m, fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
	      struct fuse_file_info *fi);
bool obx_create(struct mfs *m, fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		struct fuse_file_info *fi);
bool obx_write(struct mfs *m, fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size,
	       off_t off, struct fuse_file_info *fi);
bool obx_flush(struct mfs *m, fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
bool obx_release(struct mfs *m, fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
bool obx_setattr(struct mfs *m, fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		 struct fuse_file_info *fi);
bool obx_rename(struct mfs *m, fuse_req_t req, fuse_ino_t parent, const char *name,
		fuse_ino_t newparent, const char *newname, unsigned flags);
bool obx_unlink(struct mfs *m, fuse_req_t req, fuse_ino_t parent, const char *name);
bool obx_getxattr(struct mfs *m, fuse_req_t req, fuse_ino_t ino, const char *name, size_t size);
bool obx_listxattr(struct mfs *m, fuse_req_t req, fuse_ino_t ino, size_t size);
/* The account whose top directory is folder `fid` and which has an outbox, or -1. */
int obx_account_of_top(struct mfs *m, int64_t fid);
/* The sender thread's hook. */
void obx_changed(void *ctx, const char *account);
/* .status lines for an account's outbox. */
void obx_status(struct mfs *m, size_t acc, struct buf *b);

/* fs/fs.c */
struct account *account_of(struct mfs *m, int64_t account_id);

/* fs/lookup.c: attributes, lookup, listings */
/* A message's attributes; a scratch row's size is its file's. */
void msg_attr(struct mfs *m, struct store *s, const struct store_msg *msg, struct stat *st);
/* Attribute timeout for a message row: rows not on the server change under the kernel. */
double msg_attr_timeout(const struct store_msg *msg);
/* Attributes of any inode: 0, or an errno; *timeout_r (may be NULL) for the kernel. */
int ino_attr(struct mfs *m, struct store *s, uint64_t ino, struct stat *st, double *timeout_r);
void mfs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name);
void mfs_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void mfs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		 struct fuse_file_info *fi);
void mfs_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		     struct fuse_file_info *fi);

/* fs/read.c */
void mfs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void mfs_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void mfs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi);

/* fs/xattr.c */
void mfs_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size);
void mfs_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size);
void mfs_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
		  size_t size, int flags);

/* fs/write.c: files in folders; fs/folder.c: mkdir, rmdir */
struct change_acct;
/* The POP3 account whose folder (fid) or message row (msg_id) this is, or NULL (an IMAP
 * account, or not found). Its INBOX is read-only but for rm (EROFS). */
struct account *pop3_of_folder(struct mfs *m, struct store *s, int64_t fid);
struct account *pop3_of_msg(struct mfs *m, struct store *s, int64_t msg_id);

bool change_acct_of(struct mfs *m, struct store *s, int64_t fid, struct change_acct *ca,
		    struct account **a_r);
void changed(struct account *a);
void mfs_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		struct fuse_file_info *fi);
void mfs_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev);
void mfs_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
	       struct fuse_file_info *fi);
void mfs_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void mfs_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi);
void mfs_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void mfs_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		 struct fuse_file_info *fi);
void mfs_unlink(fuse_req_t req, fuse_ino_t parent, const char *name);
void mfs_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		const char *newname, unsigned int flags);
void mfs_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode);
void mfs_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name);
/* The last close of message row id was seen (fs/closewatch.c): commit it if it was written;
 * a refusal is logged and shown in .status (write_note). */
void write_closed(struct mfs *m, struct store *s, int64_t id);
/* Up to max rows written and not committed whose last write is idle_ms old or more. */
struct write_idle {
	int64_t id;
	int64_t when_ms; /* the last write (monotonic) */
};
size_t write_idle(int64_t idle_ms, struct write_idle *out, size_t max);
/* Set the account's write_note line of .status. */
void write_note(struct mfs *m, struct account *a, const char *note);

/* fs/outbox.c: the last close of outbox/NAME of account acc was seen (fs/closewatch.c):
 * what the close would have done (queued, or in failed/ with the reason). */
void obx_closed(struct mfs *m, size_t acc, const char *name);
/* fs/outbox.c: events were lost at before_ms (monotonic): files written before then and
 * idle for a second are taken as closed. */
void obx_idle(struct mfs *m, int64_t before_ms);

/* fs/closewatch.c: closes of files written through the mount, seen with inotify on the
 * mount's own directories once it is up; then FLUSH is no longer needed (mfs.noflush).
 * start: a thread that waits for mfs.ready; mountpoint: absolute. */
int closewatch_start(struct mfs *m, const char *mountpoint);
bool closewatch_stop(struct mfs *m, int wait_ms);
/* A file of folder fid (of account acc's outbox) is about to be created, written or
 * truncated: if the directory is not watched yet, watch it now, so that the file's close
 * is seen. Called by file system threads before they answer; true when it is watched. */
bool closewatch_ensure(struct mfs *m, struct store *s, int64_t fid);
bool closewatch_ensure_outbox(struct mfs *m, struct store *s, size_t acc);
/* Is the directory watched now? Then the last close of a file in it raises an event, and
 * a FLUSH (sent on every close(2), also of one of several descriptors, as a shell's
 * redirection makes) need not commit: the event does, at the last close. */
bool closewatch_has_folder(struct mfs *m, int64_t fid);
bool closewatch_has_outbox(struct mfs *m, size_t acc);

/* fs/status.c: rebuild .status if it is old (see STATUS_MAX_AGE_MS there). */
void refresh_status(struct mfs *m);
/* fs/progress.c: the progress of first syncs on stderr (mount in the foreground), for
 * the accounts whose cache is empty; start after the sync threads, stop before them.
 * start: 0, or -1 when there is nothing to report (or no memory). */
int progress_start(struct mfs *m);
void progress_stop(struct mfs *m);
/* Attributes of .status as it is now (rebuilt if old): st_size is the length of the text a
 * read returns, st_mtime the moment that text was first built (unchanged until it
 * changes), st_ino its generation's number. */
void status_attr(struct mfs *m, struct stat *st);


#endif
