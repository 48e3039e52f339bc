/* names.h - the file names mailfs shows: messages and folders (DESIGN.md §1 "Layout").
 *
 *   MOUNT/<account>/<folder>/<sub-folder>/YYYY-MM-DD_HHMM_<uid>_<subject>.eml
 *
 * Pure functions: no SQLite, no FUSE, no locale, no time zone, no global state; safe from
 * any thread. A name depends only on the arguments, so it is stable for as long as they
 * are (a message's UID, INTERNALDATE and Subject never change while UIDVALIDITY holds).
 *
 * Safety: whatever a hostile server or sender puts in a mailbox name or a Subject, every
 * name built here is one file name component: 1 to 255 bytes, valid UTF-8 for messages,
 * never "." or "..", never containing "/" or NUL. Folder names are escaped injectively,
 * so two server folders never share a directory and names_folder_unescape() gives back
 * the server's name exactly.
 */
#ifndef MAILFS_NAMES_H
#define MAILFS_NAMES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest name of one directory entry (NAME_MAX on Linux), without the NUL. */
#define NAMES_MAX 255
/* How much of a raw Subject value is looked at (after leading white space). */
#define NAMES_SUBJECT_INPUT_MAX 4096

/* Build the file name of a message into out (NUL-terminated) and return its length
 * (at most NAMES_MAX):
 *
 *   YYYY-MM-DD_HHMM_<uid>_<subject>.eml     e.g. 2026-11-26_0930_4711_Quarterly-report.eml
 *   YYYY-MM-DD_HHMM_<uid>.eml               when nothing of the subject is left
 *
 * The date is internaldate_utc (seconds since the epoch, from INTERNALDATE) in UTC,
 * clamped to 1970-01-01 00:00 .. 9999-12-31 23:59. `subject` is the raw, unfolded value
 * of the Subject field (may be NULL when subject_len is 0; need not be NUL-terminated);
 * leading white space is skipped and at most NAMES_SUBJECT_INPUT_MAX further bytes are
 * used. It is decoded with rfc2047_decode() (so it is valid UTF-8), then:
 *   - every run of white space (any Unicode White_Space character: SP, HTAB, LF, CR,
 *     U+00A0, U+1680, U+2000-U+200A, U+2028, U+2029, U+202F, U+205F, U+3000...), "/",
 *     control characters (C0, DEL, C1 U+0080-U+009F) and bidirectional formatting
 *     characters (U+061C, U+200E, U+200F, U+202A-U+202E, U+2066-U+2069, which could make
 *     a name display as something else) becomes one "-"; adjacent ones form one run;
 *   - "-" at the start and the end are removed;
 *   - the subject is cut on a code point boundary so the whole name fits NAMES_MAX
 *     bytes (and "-" the cut leaves at the end removed too).
 * Never fails: if decoding runs out of memory, what was decoded so far (possibly
 * nothing) is used. */
size_t names_message(uint32_t uid, int64_t internaldate_utc, const char *subject,
		     size_t subject_len, char out[NAMES_MAX + 1]);

/* Turn one component of a mailbox name (the UTF-8 text between two server delimiters,
 * name[0..len), may contain any byte) into a directory name, written NUL-terminated to
 * out[0..outsize). Escapes, as "%" and two upper-case hex digits of the byte:
 *   - "%" (always: so "%" in a name is always an escape) and "/";
 *   - NUL, C0 controls and DEL; the two bytes of C1 controls (U+0080-U+009F);
 *   - every byte that is not part of valid UTF-8;
 *   - a name "." (-> "%2E") or ".." (-> "%2E%2E");
 *   - when top_level and reserved is not NULL and the name equals reserved (byte for
 *     byte, e.g. the account's outbox directory "outbox" -> "%6Futbox"): its first
 *     character (every byte of it, if it is not ASCII).
 * The empty name becomes "%" alone (no escape is a lone "%", so this is unambiguous).
 * Returns the length written, or -1 with errno ENAMETOOLONG (the result would be longer
 * than NAMES_MAX) or ERANGE (it does not fit outsize with its NUL). */
int names_folder_escape(const char *name, size_t len, bool top_level, const char *reserved,
			char *out, size_t outsize);

/* The inverse of names_folder_escape(): decode the directory name `file`
 * (NUL-terminated) into out[0..outsize), NUL-terminated, and its length into *len_r (the
 * result may contain NUL bytes from "%00"). Accepts every name names_folder_escape()
 * produces, and also "%XX" for a byte that needed no escape ("%41" is "A"; needed for
 * the reserved rule); refuses what it could never produce: "." and "..", a "%" not
 * followed by two upper-case hex digits (except the lone "%" that is the empty name),
 * and a raw byte that would have been escaped ("/", controls, invalid UTF-8).
 * Returns 0, or -1 with errno EINVAL (malformed) or ERANGE (out too small). */
int names_folder_unescape(const char *file, char *out, size_t outsize, size_t *len_r);

/* The relative directory path of a whole mailbox name: split utf8_name (NUL-terminated)
 * at every `delim` (no split if delim is '\0'), escape each component with
 * names_folder_escape() (top_level for the first only, with `reserved`), and join them
 * with "/" into out (NUL-terminated). "INBOX" stays "INBOX"; "Lists.a/b" with delim '.'
 * is "Lists/a%2Fb"; empty components (a doubled or trailing delimiter) become "%".
 * Returns the length, or -1 with errno ENAMETOOLONG (a component over NAMES_MAX bytes
 * escaped, or the path does not fit outsize with its NUL). */
int names_folder_path(const char *utf8_name, char delim, const char *reserved, char *out,
		      size_t outsize);

#endif
