/* checkpoint.h - the store's WAL checkpoints, moved off the threads that commit.
 *
 * SQLite checkpoints a WAL database inside the commit that takes the WAL past 1,000 frames
 * (its autocheckpoint): that commit copies every frame back into the database file and
 * waits for two fdatasync(2)s. Whichever thread commits then pays for all: a `mv` of many
 * files pays it in one rename out of some sixty, the file system's handlers and the sync
 * thread each in turn, and every other connection then reads its pages again.
 *
 * With a checkpointer running for a cache directory, each commit there only wakes it; it
 * checkpoints on its own connection (PASSIVE: it never blocks a reader or a writer). A
 * commit still checkpoints itself when the WAL has grown past CKPT_INLINE_FRAMES (the
 * checkpointer falls behind, or a reader keeps it from finishing), and everywhere when
 * no checkpointer runs (a tool, a test): SQLite's own rule then.
 */
#ifndef MAILFS_CACHE_CHECKPOINT_H
#define MAILFS_CACHE_CHECKPOINT_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

/* A checkpoint is wanted from this many frames in the WAL (SQLite's default), and done
 * by the committing thread itself from CKPT_INLINE_FRAMES on (about 80 MB of WAL). */
#define CKPT_FRAMES 1000
#define CKPT_INLINE_FRAMES 20000

/* Start the checkpointer for the database at path (CACHE_DIR/mailfs.db); one per
 * process. 0, or -1 with the reason in err. */
int ckpt_start(const char *path, char *err, size_t errlen);
/* Stop it (waits for a checkpoint in progress); commits checkpoint themselves again. */
void ckpt_stop(void);

/* Install the commit hook on a connection to the database at path (the string must live
 * as long as the connection). Called by store_open for every connection. */
void ckpt_attach(sqlite3 *db, const char *path);

struct ckpt_stats {
	uint64_t inline_runs; /* checkpoints done by a committing thread */
	uint64_t background;  /* checkpoints done by the checkpointer */
	uint64_t failures;    /* of those, ended by an error other than busy */
};
/* Counts since the process started (the unit test reads them; .status does not show
 * them yet). */
void ckpt_stats(struct ckpt_stats *st);

#endif
