/* mail-header.h - read one field out of a message's header block (RFC 5322 §2.2, §3.6).
 *
 * For the few fields mailfs itself needs (Subject for file names, Message-ID, Date):
 * no full parse, no structured-field syntax, no decoding (see rfc2047.h for that).
 * A pure function over bytes; garbage in (binary data, lines without a colon, endless
 * lines, no empty line at the end) is read as well as it can be and never read past `len`.
 */
#ifndef MAILFS_MAIL_HEADER_H
#define MAILFS_MAIL_HEADER_H

#include "net/buf.h"

#include <stddef.h>

/* Find the first field called `name` (compared case-insensitively, a NUL-terminated
 * field name without the colon) in the header block hdr[0..len) and append its value to
 * out, unfolded and trimmed:
 *
 *   field       = field-name ":" unstructured CRLF                  (RFC 5322 §2.2)
 *   field-name  = 1*ftext ; printable US-ASCII except ":"
 *   obs-field   = field-name *WSP ":" ...                          (§4.5: WSP before ":")
 *   unfolding   = "simply removing any CRLF that is immediately followed by WSP" (§2.2.3)
 *
 * Lines may end in CRLF or a bare LF (a bare CR is an ordinary byte). The block ends at
 * the first empty line or at len; a body after it is never looked at. Lines that are not
 * a field (no colon, a name with a space or control character, a continuation line at
 * the very start, an mbox "From " line) are skipped with their continuation lines. The
 * value is the unfolded text after the colon with leading and trailing SP/HTAB removed;
 * it may be empty, and may hold any bytes (NUL, 8-bit) as they were.
 *
 * hdr need not be NUL-terminated. The caller owns hdr, name and out.
 * Returns 1 if the field was found (value appended), 0 if not (out unchanged), -1 with
 * errno E2BIG (out's cap) or ENOMEM (out unchanged). */
int mail_header_get(const char *hdr, size_t len, const char *name, struct buf *out);

#endif
