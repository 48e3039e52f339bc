/* test-imap-mbox.c - unit tests for imap_mbox_path() in net/imap.c: the path a LIST name
 * shows as, for "/", "." and NIL delimiters, and truncation to the caller's buffer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "net/imap.h"

static const char *
path_of(const char *name, char delim, char *out, size_t outlen)
{
	struct imap_mbox mb = { .raw = (char *)name, .name = (char *)name, .delim = delim };
	return imap_mbox_path(&mb, out, outlen);
}

static void
test_delimiters(void **state)
{
	(void)state;
	char out[64];
	assert_string_equal(path_of("INBOX", '/', out, sizeof(out)), "INBOX");
	assert_string_equal(path_of("Archive/2025", '/', out, sizeof(out)), "Archive/2025");
	assert_string_equal(path_of("Archive.2025.Q1", '.', out, sizeof(out)), "Archive/2025/Q1");
	/* A name holding "/" under another delimiter keeps it (cache/names escapes it). */
	assert_string_equal(path_of("a/b.c", '.', out, sizeof(out)), "a/b/c");
	/* NIL: a flat namespace, nothing replaced. */
	assert_string_equal(path_of("a.b", '\0', out, sizeof(out)), "a.b");
	assert_string_equal(path_of("Entw\xc3\xbcrfe.x", '.', out, sizeof(out)),
			    "Entw\xc3\xbcrfe/x");
	assert_string_equal(path_of("", '.', out, sizeof(out)), "");
}

static void
test_truncation(void **state)
{
	(void)state;
	char out[6];
	assert_ptr_equal(path_of("abc.defgh", '.', out, sizeof(out)), out);
	assert_string_equal(out, "abc/d");
	char one[1] = { 'x' };
	assert_string_equal(path_of("abc", '.', one, sizeof(one)), "");
	char none = 'x';
	assert_ptr_equal(path_of("abc", '.', &none, 0), &none);
	assert_int_equal(none, 'x');
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_delimiters),
	    cmocka_unit_test(test_truncation),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
