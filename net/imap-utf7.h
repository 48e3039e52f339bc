/* imap-utf7.h - modified UTF-7 mailbox names (RFC 3501 §5.1.3).
 *
 * Printable US-ASCII other than "&" stands for itself; "&" is "&-"; every other run of
 * characters is "&" + modified BASE64 of its UTF-16BE ("," instead of "/", no padding) +
 * "-". Decoding is strict: what a correct encoder cannot produce (an encoded run of plain
 * ASCII, "&" + "-" padding bits not zero, a bad surrogate, a broken base64 run, a raw 8-bit
 * byte or control) is an error, so every name has exactly one encoding. */
#ifndef MAILFS_IMAP_UTF7_H
#define MAILFS_IMAP_UTF7_H

#include <stddef.h>

/* UTF-8 -> modified UTF-7. Returns a new string (caller frees) or NULL with errno
 * EINVAL (input is not valid UTF-8, or holds NUL/control characters) or ENOMEM. */
char *imap_utf7_encode(const char *utf8);

/* Modified UTF-7 -> UTF-8. Returns a new string (caller frees) or NULL with errno
 * EINVAL (invalid modified UTF-7, see above) or ENOMEM. */
char *imap_utf7_decode(const char *mutf7);

#endif
