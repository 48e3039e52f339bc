/* fuzz-names.c - libFuzzer target for cache/names.c (and the header and date parsers a
 * message name is built from: net/mail-header.c, net/imap-date.c).
 *
 * Input: byte 0 chooses options (delimiter, top level, reserved name), bytes 1-12 give a
 * UID and an INTERNALDATE, the rest is used three ways:
 *   - as a raw Subject value for names_message(): the name must be 21-255 bytes of valid
 *     UTF-8 ending in ".eml", without "/" or control characters (C0, DEL, C1), the same
 *     on a second call;
 *   - as a header block: Subject and Date are taken out with mail_header_get() and
 *     rfc5322_date_parse() and make a name with the same properties;
 *   - as a mailbox name component for names_folder_escape(): on success the result is
 *     1-255 bytes, holds no "/" or NUL, is neither "." nor "..", and
 *     names_folder_unescape() gives the input back; otherwise errno is ENAMETOOLONG.
 *     names_folder_path() on it (up to the first NUL) gives components with the same
 *     properties;
 *   - as an IMAP date-time: when it parses, formatting and parsing again is the identity.
 * Seed corpus: tests/fuzz/corpus/names/. */
#include "cache/names.h"
#include "net/buf.h"
#include "net/imap-date.h"
#include "net/mail-header.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond))                                                                       \
			abort();                                                                   \
	} while (0)


static void
check_message(uint32_t uid, int64_t t, const char *subj, size_t n)
{
	char out[NAMES_MAX + 1], again[NAMES_MAX + 1];
	size_t len = names_message(uid, t, subj, n, out);

	CHECK(len >= 21 && len <= NAMES_MAX && strlen(out) == len);
	CHECK(utf8_valid((const unsigned char *)out, len));
	CHECK(memcmp(out + len - 4, ".eml", 4) == 0 && out[len - 5] != '-');
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)out[i];
		CHECK(c >= 0x20 && c != 0x7F && c != '/');
		CHECK(!(c == 0xC2 && (unsigned char)out[i + 1] < 0xA0)); /* C1 */
	}
	CHECK(names_message(uid, t, subj, n, again) == len && memcmp(out, again, len) == 0);
}

static void
check_component(const char *s, size_t len)
{
	CHECK(len >= 1 && len <= NAMES_MAX && strlen(s) == len);
	CHECK(strchr(s, '/') == NULL && strcmp(s, ".") != 0 && strcmp(s, "..") != 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 13)
		return 0;
	uint8_t opt = data[0];
	uint32_t uid;
	int64_t t;
	memcpy(&uid, data + 1, 4);
	memcpy(&t, data + 5, 8);
	const char *rest = (const char *)data + 13;
	size_t n = size - 13;

	/* raw Subject */
	check_message(uid, t, rest, n);

	/* header block: Subject and Date */
	struct buf subj, date;
	buf_init(&subj, 1 << 20);
	buf_init(&date, 1 << 20);
	int rs = mail_header_get(rest, n, "Subject", &subj);
	int rd = mail_header_get(rest, n, "Date", &date);
	CHECK(rs >= 0 && rd >= 0);
	if (rd == 1 && date.data != NULL) {
		int64_t parsed;
		if (rfc5322_date_parse(date.data, &parsed) == 0)
			t = parsed;
	}
	check_message(uid, t, subj.data, subj.len);
	buf_free(&subj);
	buf_free(&date);

	/* one folder name component */
	static const char *const reserved[] = {NULL, "outbox", ".", "", "%", "a"};
	const char *res = reserved[(opt >> 1) % 6];
	bool top = opt & 1;
	char esc[NAMES_MAX + 1], back[NAMES_MAX + 1];
	size_t blen;
	int r = names_folder_escape(rest, n, top, res, esc, sizeof(esc));
	if (r >= 0) {
		check_component(esc, (size_t)r);
		CHECK(names_folder_unescape(esc, back, sizeof(back), &blen) == 0);
		CHECK(blen == n && memcmp(back, rest, n) == 0);
	} else {
		CHECK(errno == ENAMETOOLONG && n > NAMES_MAX / 3);
	}

	/* a whole mailbox name (up to the first NUL) */
	char *name = malloc(n + 1);
	char *path = malloc(4 * n + 2);
	CHECK(name != NULL && path != NULL);
	memcpy(name, rest, n);
	name[n] = '\0';
	static const char delims[] = {'/', '.', '\0', '%', '\\', 'a'};
	char delim = delims[(opt >> 4) % 6];
	r = names_folder_path(name, delim, res, path, 4 * n + 2);
	if (r >= 0) {
		CHECK(strlen(path) == (size_t)r);
		char *save = NULL;
		size_t comps = 0;
		for (char *c = strtok_r(path, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
			check_component(c, strlen(c));
			CHECK(names_folder_unescape(c, back, sizeof(back), &blen) == 0);
			comps++;
		}
		CHECK(comps >= 1);
	} else {
		CHECK(errno == ENAMETOOLONG);
	}

	/* IMAP date-time: format(parse(x)) parses to the same instant */
	int64_t when;
	if (imap_date_parse(name, &when) == 0) {
		char fmt[27];
		int64_t again;
		CHECK(imap_date_format(when, fmt) == 0 || when < INT64_C(-62167219200) ||
		      when > INT64_C(253402300799));
		if (fmt[0] != '\0')
			CHECK(imap_date_parse(fmt, &again) == 0 && again == when);
	}
	free(name);
	free(path);
	return 0;
}
