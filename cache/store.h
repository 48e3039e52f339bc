/* store.h - the SQLite cache: accounts, folders, message metadata and bodies.
 *
 * One database file, `<cache_dir>/mailfs.db` (0600, in a 0700 directory), WAL mode, schema
 * versioned with PRAGMA user_version and migrated forward on open. Each thread opens its own
 * `struct store` (its own SQLite connection) on the same file; a handle is never shared
 * between threads. Writers wait for each other (busy timeout), readers never block writers.
 *
 * Identity: every folder and message row has a rowid that never changes while the row
 * exists; the FUSE layer derives stable inode numbers from them (store_ino_*).
 * Message bodies live apart from the metadata rows, appended to pack files in
 * `<cache_dir>/bodies/` (cache/pack.h), so listing a folder never touches them and a body is
 * written once, not twice as WAL pages and again at each checkpoint. They are written and
 * read in pieces, never held whole in memory. A range of a pack counts only while a message
 * row points at it with has_body; bodies cached by schema version 1 (a table in the
 * database) are still read from there until they are written again.
 *
 * Every lookup used by the file system (by name in a folder, by UID in a folder, children of
 * a folder) goes through an index. Errors: functions return 0 on success, 1 for "not found"
 * where stated, and -1 on failure with the reason in store_errmsg().
 *
 * Ownership: the caller owns what it passes in; structs filled by the store are owned by
 * the caller (fixed-size fields, nothing to free unless stated).
 */
#ifndef MAILFS_STORE_H
#define MAILFS_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STORE_NAME_MAX 255

struct store;

/* Open (creating the directory 0700 and the file 0600 if needed) and migrate. Returns 0 and
 * *store_r, or -1 with a one-line reason in err ("CACHE_DIR/mailfs.db: schema version 9 is
 * newer than this mailfs understands (2)"). */
int store_open(const char *cache_dir, struct store **store_r, char *err, size_t errlen);
void store_close(struct store **s);
/* Checkpoint the cache's WAL on a thread of its own from now on, not inside the commits of
 * this process's connections (cache/checkpoint.h), until store_checkpointer_stop(). 0, or
 * -1 with the reason in err. */
int store_checkpointer_start(const char *cache_dir, char *err, size_t errlen);
void store_checkpointer_stop(void);
const char *store_errmsg(const struct store *s);

/* Transactions (BEGIN IMMEDIATE ... COMMIT). Nesting is not supported. */
int store_begin(struct store *s);
int store_commit(struct store *s);
void store_rollback(struct store *s);

/* Inode numbers: 1 is the FUSE root, 2 is reserved (.status), folders are even from 4,
 * messages odd from 3. */
#define STORE_INO_ROOT 1
#define STORE_INO_STATUS 2
static inline uint64_t
store_ino_folder(int64_t id)
{
	return (uint64_t)id * 2 + 2;
}
static inline uint64_t
store_ino_msg(int64_t id)
{
	return (uint64_t)id * 2 + 1;
}
/* 1 folder (id in *id_r), 2 message, 0 root/reserved. */
static inline int
store_ino_kind(uint64_t ino, int64_t *id_r)
{
	if (ino <= 2)
		return 0;
	if (ino % 2 == 0) {
		*id_r = (int64_t)(ino - 2) / 2;
		return 1;
	}
	*id_r = (int64_t)(ino - 1) / 2;
	return 2;
}

/* ---- accounts ---- */

/* The account's id, creating the row if needed. */
int store_account_ensure(struct store *s, const char *name, int64_t *id_r);

/* ---- folders ---- */

enum store_folder_kind {
	STORE_FOLDER_ACCOUNT = 0, /* the account's top directory (parent 0) */
	STORE_FOLDER_MAILBOX = 1, /* an IMAP mailbox or the POP3 INBOX */
	STORE_FOLDER_DIR = 2,     /* a directory only (\Noselect, or an implied parent) */
	STORE_FOLDER_OUTBOX = 3,  /* the virtual outbox of the account */
};

struct store_folder {
	int64_t id;
	int64_t account_id;
	int64_t parent_id; /* 0 for an account's top directory */
	enum store_folder_kind kind;
	char name[STORE_NAME_MAX + 1]; /* the file name (escaped component) */
	char server_name[1024];        /* raw server name (modified UTF-7); "" for none */
	char delim;                    /* the server's hierarchy delimiter, '\0' if none */
	unsigned special;              /* special-use bits (net/imap.h IMAP_MBOX_*) */
	uint32_t uidvalidity;
	uint32_t uidnext;
	uint64_t highestmodseq;
	uint64_t messages;             /* number of message rows (kept by the store) */
	int64_t mtime;                 /* last change of the listing (seconds) */
	bool local;                    /* made through the mount, CREATE not replayed yet */
};

/* Insert or update the folder (parent_id, name): kind, server_name, delim and special are
 * set; sync state is kept on update. *id_r gets the row id. */
int store_folder_ensure(struct store *s, int64_t account_id, int64_t parent_id, const char *name,
			enum store_folder_kind kind, const char *server_name, char delim,
			unsigned special, int64_t *id_r);
/* 0 found, 1 not found, -1 error. */
int store_folder_get(struct store *s, int64_t id, struct store_folder *r);
int store_folder_lookup(struct store *s, int64_t parent_id, const char *name,
			struct store_folder *r);
/* Record the server state after a sync of the folder. -1 if the folder does not exist. */
int store_folder_set_state(struct store *s, int64_t id, uint32_t uidvalidity, uint32_t uidnext,
			   uint64_t highestmodseq);
/* Delete the folder, its sub-folders, their messages and bodies. Deleting a row that does
 * not exist is not an error (0). */
int store_folder_delete(struct store *s, int64_t id);
/* Children of a folder (parent 0: the account directories), in name order, starting after
 * the child named `after` ("" for the start); at most `max`. Returns the count filled. */
int store_folder_children(struct store *s, int64_t parent_id, const char *after,
			  struct store_folder *out, size_t max);
/* All folders of an account (for the sync engine), in id order (parents before children);
 * the callback may use the store, even write. It returns non-zero to stop. */
int store_folder_each(struct store *s, int64_t account_id,
		      int (*cb)(void *ctx, const struct store_folder *f), void *ctx);

/* ---- messages ---- */

enum store_msg_state {
	STORE_MSG_SERVER = 0,   /* on the server as `uid` */
	STORE_MSG_SCRATCH = 1,  /* local bytes in a scratch file (store_scratch_*); no message */
	STORE_MSG_PENDING = 2,  /* body cached, an APPEND waits in the journal */
	STORE_MSG_MOVING = 3,   /* on the server as orig_uid in orig_folder; a MOVE waits */
	STORE_MSG_DETACHED = 4, /* local copy only: its server copy was replaced */
};

struct store_msg {
	int64_t id;
	int64_t folder_id;
	uint32_t uid;
	int64_t internaldate; /* seconds since the epoch, UTC */
	uint64_t size;        /* RFC822.SIZE, corrected once the body is known */
	char flags[512];      /* space-separated, as the server sent them: "\Seen $Label1" */
	uint64_t modseq;
	char name[STORE_NAME_MAX + 1];
	char message_id[512]; /* Message-ID header value, "" if none */
	bool has_body;        /* the whole body is in the cache */
	/* Local changes (cache/journal.h); uid is 0 for a row that is not on the server. */
	enum store_msg_state state;
	int64_t orig_folder;  /* see enum store_msg_state */
	uint32_t orig_uid;
	bool mtime_set;       /* internaldate was set by the user (utimens) */
	char prev_name[STORE_NAME_MAX + 1];
};

/* Insert (by folder_id + uid) or update flags/modseq/size of an existing row; the name of an
 * existing row never changes. Sets m->id. A name already used by another message of the
 * folder is an error (names embed the UID, so this means a bug or a UIDVALIDITY change).
 * size is updated only while the body is not cached: a cached body's size is the truth.
 * flags longer than 511 bytes are an error; a longer message_id is cut. */
int store_msg_upsert(struct store *s, struct store_msg *m);
/* 0 found, 1 not found, -1 error. */
int store_msg_get(struct store *s, int64_t id, struct store_msg *r);
int store_msg_lookup(struct store *s, int64_t folder_id, const char *name, struct store_msg *r);
int store_msg_by_uid(struct store *s, int64_t folder_id, uint32_t uid, struct store_msg *r);
/* Messages of a folder in row id order, after the row `after_id` (0 for the start), at most
 * max; returns the count filled. The directory listing resumes from the last id it
 * returned, so every page is one index seek (index on messages(folder_id), which holds the
 * rowid). */
int store_msg_list(struct store *s, int64_t folder_id, int64_t after_id, struct store_msg *out,
		   size_t max);
/* All UIDs of a folder, ascending; *uids_r is the caller's to free. */
int store_msg_uids(struct store *s, int64_t folder_id, uint32_t **uids_r, size_t *n_r);
/* UIDs of messages whose body is not cached, ascending, at most max, after `after_uid`. */
int store_msg_missing_bodies(struct store *s, int64_t folder_id, uint32_t after_uid,
			     uint32_t *uids, size_t max, size_t *n_r);
/* The same for messages declared 0 bytes long whose body is not cached: they are fetched
 * whatever `prefetch` says, since the kernel never asks to read an empty file. */
int store_msg_empty_bodies(struct store *s, int64_t folder_id, uint32_t after_uid,
			   uint32_t *uids, size_t max, size_t *n_r);
/* 0, or -1 (also when the message does not exist: "message N not found"). */
int store_msg_set_flags(struct store *s, int64_t id, const char *flags, uint64_t modseq);
/* Give a row inserted under a provisional name its real name, INTERNALDATE, flags, modseq
 * and Message-ID
 * (the sync engine inserts a row when a body starts to stream, before the Subject inside the
 * body is known, in the same transaction). -1 if the name is taken or invalid, or the row
 * does not exist. */
int store_msg_finish(struct store *s, int64_t id, const char *name, int64_t internaldate,
		     const char *flags, uint64_t modseq, const char *message_id);
/* Delete message rows (and bodies) by id. Deleting a row that does not exist is not an
 * error (0). */
int store_msg_delete(struct store *s, int64_t id);

/* ---- bodies ---- */

struct store_body_writer;

/* Start writing the body of message `msg_id`, whose real size is `size` (the literal's
 * size; if it differs from the row's size, the row is corrected and *size_changed_r set).
 * The data goes to the handle's pack in pieces as it arrives (the writer buffers at most
 * 256 KiB); the row changes run in the caller's transaction, or in autocommit mode in short
 * ones of their own, so no lock is held between pieces. One writer per handle at a time (a
 * second store_body_begin fails). End every writer before store_commit, store_rollback or
 * store_close. */
int store_body_begin(struct store *s, int64_t msg_id, uint64_t size,
		     struct store_body_writer **w_r, bool *size_changed_r);
int store_body_write(struct store_body_writer *w, const void *data, size_t len);
/* Finish: when all `size` bytes were written and ok is true, the row points at them and the
 * body is marked cached (in the caller's transaction if one is open). No fsync. Otherwise
 * the partial body is dropped. Frees *w. */
int store_body_end(struct store_body_writer **w, bool ok);
/* Read up to len bytes of a cached body at offset: 0 and *got_r (short at the end), 1 if the
 * body is not cached (also when its pack is missing or ends inside it, as after a crash of
 * the machine), -1 error. */
int store_body_read(struct store *s, int64_t msg_id, uint64_t offset, void *buf, size_t len,
		    size_t *got_r);
/* Remove what a crash left in the pack directory: packs whose row was never committed, and
 * bytes after the last committed body of a pack (appended by a transaction that never
 * committed); give back the ranges still queued as dead. Call once when the cache is opened,
 * before any writer starts, outside a transaction. (Ranges of deleted messages are otherwise
 * punched after the transaction that deleted the rows commits.) *removed_r (may be NULL)
 * gets the number of pack files removed. */
int store_body_sweep(struct store *s, uint64_t *removed_r);

/* ---- local changes (cache/store-local.c): rows changed through the mount ---- */

/* A new scratch row (STORE_MSG_SCRATCH, size 0) named `name` in the folder; internaldate
 * is `mtime` (mtime_set false). m is filled. -1 if the name is taken ("exists" in the
 * message; store_name_taken() tells) or the folder is gone. */
int store_msg_new_local(struct store *s, int64_t folder_id, const char *name, int64_t mtime,
			struct store_msg *m);
/* True if the last failure of this handle was a name already used in the folder. */
bool store_name_taken(const struct store *s);
/* Write back folder_id, uid (0: a local row, stored as -id), internaldate, flags, name,
 * message_id, state, orig_folder, orig_uid, mtime_set and prev_name of m. Size and body
 * are not touched. -1 if the name is taken or the row is gone. */
int store_msg_save(struct store *s, const struct store_msg *m);
/* Set the size of a row without a cached body (a scratch row). */
int store_msg_set_size(struct store *s, int64_t id, uint64_t size);
/* Forget a row's cached body (it is being rewritten); its size becomes `size`. */
int store_msg_drop_body(struct store *s, int64_t id, uint64_t size);
/* The server message of the folder that was renamed from `name` to a backup name: 0, 1
 * none, -1. */
int store_msg_shadow(struct store *s, int64_t folder_id, const char *name, struct store_msg *r);
/* A folder's UIDVALIDITY changed: its server rows (state 0) let go of their UIDs (uid =
 * -id, so the sync no longer sees them) and keep their names, bodies and flags until
 * store_msg_adopt() binds them to the new UIDs or they are deleted. 0 or -1. */
int store_msg_unbind(struct store *s, int64_t folder_id);
/* An unbound row of the folder holding the message with this Message-ID (not "") and size
 * takes `uid`: 0 (*r is the row, uid set), 1 none, -1 error. */
int store_msg_adopt(struct store *s, int64_t folder_id, const char *message_id, uint64_t size,
		    uint32_t uid, struct store_msg *r);
/* An unbound row left in the folder: 0 (*r), 1 none, -1. */
int store_msg_unbound(struct store *s, int64_t folder_id, struct store_msg *r);
/* The next scratch row (of any folder) after row `after_id`: 0, 1 none, -1. */
int store_msg_next_scratch(struct store *s, int64_t after_id, struct store_msg *r);

/* Scratch files: CACHE_DIR/scratch/<id> (0600, the directory 0700), the bytes of a
 * scratch row. Open (creating it when `create`): a descriptor, or -1 with errno. */
int store_scratch_open(struct store *s, int64_t id, bool create);
/* Remove it (a missing file is not an error). */
void store_scratch_remove(struct store *s, int64_t id);

/* Write back parent_id, name, server_name, delim, local and special of f. */
int store_folder_save(struct store *s, const struct store_folder *f);
/* Folders of the account whose server name starts with `old_prefix` get `new_prefix`
 * instead (a RENAME moved the hierarchy under them). */
int store_folder_rename_prefix(struct store *s, int64_t account_id, const char *old_prefix,
			       const char *new_prefix);
/* 1 if the folder has sub-folders or messages, 0 if empty, -1 error. */
int store_folder_busy(struct store *s, int64_t id);
/* The account's first mailbox with one of the special-use bits: 0, 1 none, -1. */
int store_folder_special(struct store *s, int64_t account_id, unsigned special,
			 struct store_folder *r);

/* Commits of this handle wait for the disk (PRAGMA synchronous = FULL) while on: the mount
 * promises a change is durable when its system call returns. */
int store_durable(struct store *s, bool on);
/* Make every commit so far durable (fdatasync of the WAL and of this handle's pack). */
int store_sync(struct store *s);
/* fdatasync the pack this handle appends to (after store_body_end of a body written
 * through the mount, before the commit that records it). */
int store_body_sync(struct store *s);

/* ---- POP3 identities (cache/store-pop3.c) ---- */

/* A POP3 message row's server identity: the UIDL string (or, for a UIDL the server gave
 * twice, "UIDL Message-ID size"), its number in the current session and the pass that
 * last saw it. dele: 0 on the server, 1 DELE wanted (after_cache: its body is durable),
 * 2 gone from the server by our DELE (the cached copy is all there is: kept). */
struct store_pop3 {
	int64_t msg_id;
	uint32_t uid; /* the row's local number (in its name) */
	char uidl[600];
	uint32_t msgno;
	int64_t seen;
	int dele;
	uint64_t size;
	char message_id[512];
	bool has_body;
};

/* Create the table if needed (once per handle before the other calls). */
int store_pop3_init(struct store *s);
/* Record the identity of a new message row. */
int store_pop3_add(struct store *s, int64_t msg_id, int64_t folder_id, const char *uidl,
		   uint32_t msgno, int64_t pass);
/* The row with this identity, not seen yet in pass `pass`, is listed in it as number
 * msgno: 0 and *msg_id_r, 1 no such row (unknown, or already seen in this pass), -1. */
int store_pop3_seen(struct store *s, int64_t folder_id, const char *uidl, uint32_t msgno,
		    int64_t pass, int64_t *msg_id_r);
/* Is there a row with this identity? 0 yes, 1 no, -1. */
int store_pop3_exists(struct store *s, int64_t folder_id, const char *uidl);
/* 0 found, 1 not found, -1. */
int store_pop3_get(struct store *s, int64_t msg_id, struct store_pop3 *r);
/* The next identity of the folder after row after_id: 0, 1 none, -1. */
int store_pop3_next(struct store *s, int64_t folder_id, int64_t after_id, struct store_pop3 *r);
/* How many rows of the folder, not deleted by us, were not seen in pass `pass`. */
int store_pop3_vanished(struct store *s, int64_t folder_id, int64_t pass, uint64_t *n_r);
/* A row not seen in `pass` (and not deleted by us) with this Message-ID and size: 0 and
 * *msg_id_r, 1 none, -1. */
int store_pop3_match(struct store *s, int64_t folder_id, int64_t pass, const char *message_id,
		     uint64_t size, int64_t *msg_id_r);
/* Give a row a new identity (a changed UIDL), seen in `pass` as msgno. */
int store_pop3_rekey(struct store *s, int64_t msg_id, const char *uidl, uint32_t msgno,
		     int64_t pass);
int store_pop3_set_dele(struct store *s, int64_t msg_id, int dele);

/* ---- numbers for .status ---- */

struct store_stats {
	uint64_t folders, messages, bodies, body_bytes;
	uint64_t file_bytes; /* the database file, its WAL and the bodies in packs (all accounts) */
};
/* account_id 0: all accounts. folders counts mailboxes and directories (not account tops
 * or outboxes). */
int store_stats(struct store *s, int64_t account_id, struct store_stats *r);

#endif
