/* fs.h - the FUSE file system of mailfs on the libfuse3 low-level API (fs/fs.c).
 *
 *   MOUNT/.status                         read-only text: accounts, sync, cache, errors
 *   MOUNT/<account>/<folder>/.../NAME.eml  messages, byte-exact, from the cache
 *   MOUNT/<account>/outbox/                files written here are sent (fs/outbox.c)
 *
 * Inode numbers are store row ids (cache/store.h), so they are stable across remounts.
 * Every handler answers from SQLite; a body that is not cached is read from the server on
 * a connection of its own (cache/sync). Messages never change under a name, so the kernel
 * keeps entries, attributes and pages for long, and the sync engine's hooks invalidate
 * exactly what changed. Writes outside the outbox are refused with EROFS in this version.
 */
#ifndef MAILFS_FS_H
#define MAILFS_FS_H

#include <fuse_lowlevel.h>

#include "cache/config.h"

/* Mount `cfg` at the mount point given in args and serve until unmounted or signalled.
 * Returns the process exit status (0 on a clean unmount). Errors before the mount is up
 * (unusable cache, unreachable server with an empty cache, wrong password) print one line
 * on stderr and return 1. */
int fs_run(struct cfg *cfg, struct fuse_args *args);

#endif
