/* fuzz-imap-utf7.c - libFuzzer target for net/imap-utf7.c.
 *
 * The input (up to its first NUL) is tried in both directions:
 *   - as UTF-8: encode must succeed exactly when the input is valid UTF-8 without control
 *     characters (checked by an independent validator below), give printable ASCII, and
 *     decode back to the input;
 *   - as modified UTF-7: whenever decode succeeds, encoding the result must give the
 *     input back (one encoding per name).
 * A violation calls abort(). Not checked: ENOMEM paths.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/imap-utf7.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                                                   \
	do {                                                                                       \
		if (!(x))                                                                          \
			abort();                                                                   \
	} while (0)

/* Valid UTF-8 after the Unicode standard's Table 3-7 (well-formed byte sequences), and no
 * C0 control or DEL. */
static bool
encodable(const unsigned char *s)
{
	while (*s != '\0') {
		unsigned char c = *s;
		size_t n;
		unsigned char lo = 0x80, hi = 0xbf;

		if (c < 0x20 || c == 0x7f)
			return false;
		if (c < 0x80) {
			s++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			if (c == 0xe0)
				lo = 0xa0;
			if (c == 0xed)
				hi = 0x9f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			if (c == 0xf0)
				lo = 0x90;
			if (c == 0xf4)
				hi = 0x8f;
		} else {
			return false;
		}
		if (s[1] < lo || s[1] > hi)
			return false;
		for (size_t i = 2; i <= n; i++)
			if (s[i] < 0x80 || s[i] > 0xbf)
				return false;
		s += n + 1;
	}
	return true;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in = malloc(size + 1);
	char *e = NULL, *d = NULL, *e2 = NULL, *d2 = NULL;

	CHECK(in != NULL);
	memcpy(in, data, size);
	in[size] = '\0';

	/* UTF-8 -> modified UTF-7 -> UTF-8 */
	errno = 0;
	e = imap_utf7_encode(in);
	CHECK((e != NULL) == encodable((const unsigned char *)in));
	if (e == NULL) {
		CHECK(errno == EINVAL);
	} else {
		for (const char *c = e; *c != '\0'; c++)
			CHECK(*c >= 0x20 && *c <= 0x7e);
		d = imap_utf7_decode(e);
		CHECK(d != NULL);
		CHECK(strcmp(d, in) == 0);
	}

	/* modified UTF-7 -> UTF-8 -> modified UTF-7 */
	errno = 0;
	d2 = imap_utf7_decode(in);
	if (d2 == NULL) {
		CHECK(errno == EINVAL);
	} else {
		CHECK(encodable((const unsigned char *)d2));
		e2 = imap_utf7_encode(d2);
		CHECK(e2 != NULL);
		CHECK(strcmp(e2, in) == 0);
	}

	free(in);
	free(e);
	free(d);
	free(d2);
	free(e2);
	return 0;
}
