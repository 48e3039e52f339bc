/* fuzz-address.c - libFuzzer target for net/address.c: parse arbitrary bytes as an
 * address-list value. On success every addr-spec has a domain after its "@", holds no
 * control byte, is valid UTF-8 and at most ADDR_MAX_SPEC bytes; every name is non-empty
 * valid UTF-8; there are at most ADDR_MAX_COUNT addresses; the list written back as
 * "<addr>, <addr>..." parses to the same addr-specs (the canonical form is a fixed point);
 * parsing is deterministic. On failure errno is EINVAL with a one-line message, or ENOMEM.
 * Seed corpus: tests/fuzz/corpus/address/. */
#include "net/address.h"

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
check_addr(const struct addr *a)
{
	size_t n = strlen(a->addr);
	bool high = false;
	CHECK(n > 0 && n <= ADDR_MAX_SPEC);
	CHECK(utf8_valid((const unsigned char *)a->addr, n));
	for (size_t i = 0; i < n; i++) {
		CHECK((unsigned char)a->addr[i] >= 32 && a->addr[i] != 127);
		high = high || (unsigned char)a->addr[i] >= 0x80;
	}
	CHECK(addr_is_8bit(a->addr) == high);
	const char *d = addr_domain(a->addr);
	CHECK(d != NULL && *d != '\0');
	CHECK(addr_same(a->addr, a->addr));
	if (a->name != NULL) {
		CHECK(a->name[0] != '\0');
		CHECK(utf8_valid((const unsigned char *)a->name, strlen(a->name)));
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct addr_list l, l2;
	char err[256];

	if (addr_list_parse((const char *)data, size, &l, err, sizeof(err)) < 0) {
		CHECK(errno == EINVAL || errno == ENOMEM);
		CHECK(l.n == 0 && l.v == NULL);
		if (errno == EINVAL)
			CHECK(err[0] != '\0' && strchr(err, '\n') == NULL);
		/* the same error again */
		char err2[256];
		CHECK(addr_list_parse((const char *)data, size, &l2, err2, sizeof(err2)) < 0);
		CHECK(strcmp(err, err2) == 0);
		return 0;
	}
	CHECK(l.n <= ADDR_MAX_COUNT);
	size_t total = 1;
	for (size_t i = 0; i < l.n; i++) {
		check_addr(&l.v[i]);
		total += strlen(l.v[i].addr) + 4;
	}

	/* deterministic */
	CHECK(addr_list_parse((const char *)data, size, &l2, err, sizeof(err)) == 0);
	CHECK(l2.n == l.n);
	for (size_t i = 0; i < l.n; i++) {
		CHECK(strcmp(l.v[i].addr, l2.v[i].addr) == 0);
		CHECK((l.v[i].name == NULL) == (l2.v[i].name == NULL));
		CHECK(l.v[i].name == NULL || strcmp(l.v[i].name, l2.v[i].name) == 0);
	}
	addr_list_free(&l2);

	/* the canonical addr-specs read back as themselves */
	char *again = malloc(total);
	CHECK(again != NULL);
	size_t n = 0;
	for (size_t i = 0; i < l.n; i++) {
		if (i > 0) {
			memcpy(again + n, ", ", 2);
			n += 2;
		}
		size_t k = strlen(l.v[i].addr);
		again[n++] = '<';
		memcpy(again + n, l.v[i].addr, k);
		n += k;
		again[n++] = '>';
	}
	if (addr_list_parse(again, n, &l2, err, sizeof(err)) != 0)
		abort();
	CHECK(l2.n == l.n);
	for (size_t i = 0; i < l.n; i++) {
		CHECK(strcmp(l.v[i].addr, l2.v[i].addr) == 0);
		CHECK(l2.v[i].name == NULL);
	}
	addr_list_free(&l2);
	free(again);
	addr_list_free(&l);
	return 0;
}
