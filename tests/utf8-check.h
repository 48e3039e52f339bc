/* utf8-check.h - a strict UTF-8 validator for tests and fuzz targets (shortest form only,
 * no surrogates, nothing above U+10FFFF). Header-only so each test links only its module. */
#ifndef MAILFS_TESTS_UTF8_CHECK_H
#define MAILFS_TESTS_UTF8_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

static inline bool
valid_utf8(const unsigned char *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		unsigned char c = s[i];
		uint32_t cp;
		size_t k;
		if (c < 0x80) {
			i++;
			continue;
		} else if ((c & 0xE0) == 0xC0) {
			k = 2;
			cp = c & 0x1F;
		} else if ((c & 0xF0) == 0xE0) {
			k = 3;
			cp = c & 0x0F;
		} else if ((c & 0xF8) == 0xF0) {
			k = 4;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (n - i < k)
			return false;
		for (size_t j = 1; j < k; j++) {
			if ((s[i + j] & 0xC0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + j] & 0x3F);
		}
		static const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
		if (cp < min[k] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
			return false;
		i += k;
	}
	return true;
}

#endif
