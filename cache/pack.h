/* pack.h - pack files: where the cache keeps message bodies, appended one after another.
 *
 * `<cache_dir>/bodies/` (0700) holds pack files "<n>.pack" (0600), n a row id of the store's
 * packs table. A body is a range of one pack: it starts at a multiple of PACK_ALIGN, so the
 * blocks of a body that is no longer wanted can be given back to the file system with
 * pack_punch() without touching its neighbours. One writer appends to a pack at a time (an
 * exclusive flock held while it writes there); readers use pread and never lock.
 *
 * Why not SQLite blobs or a file per body: in WAL mode every byte of a blob is written twice
 * (into the WAL as 4 KiB frames, then into the database at each checkpoint, which reads it
 * back and waits for two fdatasyncs); a file per body costs an inode, a directory entry and
 * a writeback of its own. Appending to a large file is one write() per 256 KiB.
 *
 * Nothing is fsynced (see store.c for what that means after a crash of the machine).
 * This module only moves bytes; which ranges hold what is the store's business. It knows
 * nothing of SQLite. Functions return 0 (or a descriptor) and -1 with errno set.
 */
#ifndef MAILFS_PACK_H
#define MAILFS_PACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PACK_DIR "bodies"
#define PACK_ALIGN 4096
/* A writer starts a new pack once its pack has grown beyond this. */
#define PACK_MAX ((uint64_t)256 << 20)

static inline uint64_t
pack_align(uint64_t off)
{
	return (off + PACK_ALIGN - 1) / PACK_ALIGN * PACK_ALIGN;
}

/* Create `<cache_dir>/bodies` (0700, tightened if wider) if needed and open it. Returns 0
 * and the directory's descriptor in *dfd_r, or -1 with a one-line reason in err. */
int pack_dir_open(const char *cache_dir, int *dfd_r, char *err, size_t errlen);

/* Open pack `id` for reading and writing. create: it must not exist yet (0600). lock: take
 * the writer's lock without waiting (-1 with EWOULDBLOCK if another descriptor holds it).
 * *size_r (may be NULL) gets the file's size. */
int pack_open(int dfd, int64_t id, bool create, bool lock, uint64_t *size_r);
/* Write all of data at off (short writes and EINTR are retried). */
int pack_write(int fd, uint64_t off, const void *data, size_t len);
/* Read up to len bytes at off; *got_r is short only at the end of the file. */
int pack_read(int fd, uint64_t off, void *buf, size_t len, size_t *got_r);
/* Give back the blocks of [off, off + len) (off aligned; len rounded up to PACK_ALIGN); they
 * read as zeros afterwards. A file system that cannot punch holes keeps them (0). */
int pack_punch(int fd, uint64_t off, uint64_t len);
/* Remove pack `id`; a pack that is not there is not an error. */
int pack_remove(int dfd, int64_t id);
/* Call cb for every "<n>.pack" in the directory (other names are skipped); a non-zero
 * return stops the walk and is returned. cb may remove the file it is given. */
int pack_each(int dfd, int (*cb)(void *ctx, int64_t id), void *ctx);

#endif
