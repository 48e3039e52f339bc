/* rfc2047.h - decode header values holding RFC 2047 encoded-words into UTF-8.
 *
 *   encoded-word = "=?" charset ["*" language] "?" encoding "?" encoded-text "?="
 *                                      (RFC 2047 §2, language suffix from RFC 2231 §5)
 *
 * The decoder is for showing a header value, not for checking it: whatever it is given, it
 * produces valid UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing above
 * U+10FFFF) and fails only when the output buffer cannot grow. It is a pure function of
 * its input: no logging, safe to call from any thread; its only state is a small cache of
 * open iconv descriptors (behind a mutex), so a charset's module is loaded once.
 *
 * What it does:
 *   - decodes "B" (base64) and "Q" encoded-words (either case) of any charset glibc iconv
 *     knows, plus a few labels mail really uses mapped to their supersets (ISO-8859-1 and
 *     US-ASCII read as Windows-1252, GB2312/GBK as GB18030, Shift_JIS as CP932,
 *     EUC-KR/KS_C_5601-1987 as CP949);
 *   - drops the linear white space between two adjacent encoded-words (§6.2) and decodes
 *     a run of adjacent words of the same charset as one byte string, so a multi-byte
 *     character split across two words (a common violation) still comes out whole (for a
 *     stateful charset such as ISO-2022-JP the shift state carries over too);
 *   - recognises encoded-words wherever they start, even glued to other text (another
 *     common violation; RFC 2047 §5 asks for white space around them);
 *   - keeps bytes outside encoded-words that are valid UTF-8 as they are, and reads every
 *     other byte as Windows-1252 (Latin-1 with the printable 0x80-0x9F block);
 *   - replaces a byte the charset cannot convert (and invalid UTF-8 in a UTF-8 word) by
 *     U+FFFD.
 * What it does not do: no unfolding (see mail_header_get()), no parsing of structured
 * fields (addresses, comments, quoted strings: an encoded-word inside a quoted string is
 * decoded too, as most mail readers do), no trimming.
 *
 * An encoded-word that is malformed (bad base64, a Q "=" not followed by two hex digits,
 * a charset name with characters outside [A-Za-z0-9!#$%&'+^_`{|}~.:-] or longer than 64
 * bytes, a missing "?=") or whose charset iconv cannot open stays in the output exactly
 * as written, including the white space around it. Tolerated beyond the grammar: words
 * longer than 75 characters, an empty encoded-text, SP and HTAB inside the encoded-text
 * (kept in Q, skipped in B), base64 without its "=" padding.
 */
#ifndef MAILFS_RFC2047_H
#define MAILFS_RFC2047_H

#include "net/buf.h"

#include <stddef.h>

/* Decode the header value in[0..len) (need not be NUL-terminated; may hold any bytes,
 * NUL included) and append the UTF-8 result to out. Only out is written; the caller owns
 * both. Returns 0, or -1 with errno E2BIG (out's cap reached) or ENOMEM. On -1, out holds
 * a valid UTF-8 prefix of the result (possibly nothing appended). */
int rfc2047_decode(const char *in, size_t len, struct buf *out);

#endif
