/* change.h - what each change a user makes through the mount does to the cache rows and
 * the journal (DESIGN.md §1 "Changing (IMAP)"): the file system layer calls these, the
 * account's sync thread later replays the journal (cache/replay.h).
 *
 * Each call is one transaction, committed before it returns: when the system call that
 * caused it returns, the change survives a kill -9 of the daemon at any point (WAL). A
 * power loss can take the last changes, as on a local file system without fsync; fsync(2)
 * on a file commits it with synchronous = FULL and its body fdatasync'ed, which makes it
 * and every change before it durable. Results are 0 or an errno value (EEXIST, ENOENT, ENOTEMPTY,
 * EINVAL, EPERM, EIO), which the file system layer passes on as it is.
 *
 * Files: a file created in a folder is a scratch row (its bytes in a scratch file) until it
 * is committed: change_commit() turns a scratch row named *.eml into a message waiting for
 * APPEND (LF line ends made CRLF, as the server will hold it). Writing into a message makes
 * it a scratch row again, which replaces the message when committed. A name not ending in
 * .eml is never committed (editor swap files, rsync and sed temporaries).
 *
 * Not thread-safe per handle: each thread passes its own store.
 */
#ifndef MAILFS_CHANGE_H
#define MAILFS_CHANGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache/config.h"
#include "cache/store.h"

/* The account a change belongs to. */
struct change_acct {
	const struct cfg_account *cfg; /* borrowed */
	int64_t account_id;
	int64_t top_id; /* the account's top directory */
};

/* The largest file the mount takes (bytes). */
#define CHANGE_MAX_SIZE (UINT64_C(1) << 30)

/* Ends in ".eml" (and is more than that). */
bool change_is_message_name(const char *name);

/* create NAME in a mailbox folder: a scratch row, mtime now. */
int change_create(struct store *s, int64_t folder_id, const char *name, struct store_msg *m);
/* write: a scratch row takes the bytes; a message becomes a scratch row first (its bytes
 * copied; EIO if its body is not cached). *size_r: the file's size after the write. */
int change_write(struct store *s, int64_t msg_id, const void *data, size_t len, uint64_t off,
		 uint64_t *size_r);
/* truncate to size (O_TRUNC, ftruncate). */
int change_truncate(struct store *s, int64_t msg_id, uint64_t size);
/* utimens: the mtime becomes the INTERNALDATE of what is not on the server yet. */
int change_set_mtime(struct store *s, int64_t msg_id, int64_t mtime);
/* close / fsync (sync: wait for the disk) / rename to *.eml of a scratch row: 0 (committed,
 * or nothing to do),
 * EINVAL (not a message: no header block; it stays a scratch file), EIO. */
int change_commit(struct store *s, const struct change_acct *a, int64_t msg_id, bool sync);
/* rm: see DESIGN (Trash, expunge, or local only). *trash_id_r (may be NULL) gets the
 * folder the message went to (Trash), else 0. */
int change_unlink(struct store *s, const struct change_acct *a, int64_t folder_id,
		  const char *name, int64_t *trash_id_r);
/* What change_rename_msg() found and did, for the file system layer. */
struct change_renamed {
	/* in (may be NULL): called once with the row's id inside the transaction, before
	 * anything is changed; its result is was_dirty (fs: "written since its commit"). */
	bool (*take)(int64_t id);
	/* out */
	int64_t id;                  /* the row renamed (0: none found) */
	bool was_scratch;            /* it was a scratch row before */
	bool was_dirty;              /* take() said so */
	enum store_msg_state state;  /* its state after, when 0 is returned */
};

/* rename of a message or scratch file, maybe over another one (noreplace: EEXIST instead).
 * Commits a scratch row renamed to *.eml (the result is change_commit's). One write
 * transaction holds every read and write of the rename. out may be NULL. ENOENT: no
 * message or scratch file of that name (it may be a folder: change_rename_folder); EXDEV:
 * new_folder_id is in another account. */
int change_rename_msg(struct store *s, const struct change_acct *a, int64_t folder_id,
		      const char *name, int64_t new_folder_id, const char *new_name,
		      bool noreplace, struct change_renamed *out);
/* setfattr user.mail.flags: the value as given ("\Seen \Flagged"); EINVAL if malformed. */
int change_set_flags(struct store *s, const struct change_acct *a, int64_t msg_id,
		     const char *flags);
/* mkdir / rmdir / rename of a folder (parent_id is a folder or the account's top). */
int change_mkdir(struct store *s, const struct change_acct *a, int64_t parent_id,
		 const char *name, int64_t *id_r);
int change_rmdir(struct store *s, const struct change_acct *a, int64_t parent_id,
		 const char *name);
int change_rename_folder(struct store *s, const struct change_acct *a, int64_t parent_id,
			 const char *name, int64_t new_parent_id, const char *new_name,
			 bool noreplace);
/* After a restart: commit the *.eml scratch rows whose writer never closed them (the
 * daemon died); the rest stay scratch files. Returns how many were committed. */
int change_recover(struct store *s, const struct change_acct *accts, size_t n);

/* Server name of a folder named `name` (a file name, %XX-escaped) under parent: modified
 * UTF-7 of the unescaped name, after the parent's server name and the delimiter. EINVAL if
 * the name holds the delimiter. */
int change_server_name(struct store *s, const struct store_folder *parent, char delim,
		       const char *name, char *out, size_t outlen);
/* The account's hierarchy delimiter (from its folders; '/' if none says). */
char change_delim(struct store *s, int64_t account_id);

#endif
