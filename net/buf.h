/* buf.h - a growable byte buffer with a hard cap chosen at creation.
 *
 * Every buffer that holds data from the network has a cap: a hostile peer cannot make us
 * allocate without bound. Appending past the cap fails and leaves the buffer unchanged.
 * The data is always NUL-terminated (the NUL is not counted in len). */
#ifndef MAILFS_BUF_H
#define MAILFS_BUF_H

#include <stddef.h>

struct buf {
	char *data; /* owned; NULL until the first append */
	size_t len;
	size_t size; /* allocated bytes */
	size_t cap;  /* len never exceeds this */
};

/* Initialise an empty buffer that will never hold more than `cap` bytes. */
void buf_init(struct buf *b, size_t cap);
/* Release the memory; the buffer is empty again and may be reused. */
void buf_free(struct buf *b);
/* Empty the buffer, keeping its memory. */
void buf_reset(struct buf *b);
/* Append bytes. Returns 0, or -1 (errno E2BIG past the cap, ENOMEM). */
int buf_append(struct buf *b, const void *data, size_t len);
int buf_append_str(struct buf *b, const char *s);
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Drop the first n bytes (n <= len). */
void buf_consume(struct buf *b, size_t n);

#endif
