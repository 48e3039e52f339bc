/* fuzz-msgprep.c - libFuzzer target for net/msgprep.c (and net/address.c under it).
 *
 * Input: byte 0 chooses the account's `from` (none, ASCII, UTF-8) and whether the caller
 * gives the whole file or says the file is longer than the bytes given; the rest is the
 * message file. On success: the header ends in "\r\n\r\n", holds no CR or LF outside
 * CRLF pairs and no Bcc field; there is a recipient, each with a domain, no two the same
 * mailbox; the sender has a domain; the Message-ID is in angle brackets; the Subject is
 * valid UTF-8; body_offset is within the file; smtputf8 matches the addresses; and
 * preparing the header sent gives the same header again (nothing more is added). On
 * failure: EINVAL with a one-line message, or ENOMEM. The body after body_offset is run
 * through crlf_convert() in chunks and whole, which must agree.
 * Seed corpus: tests/fuzz/corpus/msgprep/. */
#include "net/address.h"
#include "net/msgprep.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "net/utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond))                                                                       \
			abort();                                                                   \
	} while (0)

#define NOW 1795717935
#define UNIQUE "20261126183215.4711.q42"

static void
check_header(const struct msgprep *m)
{
	const char *h = m->header;
	size_t n = m->header_len;

	CHECK(h != NULL && strlen(h) == n);
	CHECK(n >= 4 && memcmp(h + n - 4, "\r\n\r\n", 4) == 0);
	for (size_t i = 0; i < n; i++) {
		if (h[i] == '\r')
			CHECK(i + 1 < n && h[i + 1] == '\n');
		if (h[i] == '\n')
			CHECK(i > 0 && h[i - 1] == '\r');
	}
	/* no line starts a Bcc field: "Bcc" *WSP ":" */
	for (size_t i = 0; i < n; i = (size_t)((const char *)memchr(h + i, '\n', n - i) - h) + 1) {
		if (strncasecmp(h + i, "bcc", 3) == 0) {
			size_t j = i + 3;
			while (h[j] == ' ' || h[j] == '\t')
				j++;
			CHECK(h[j] != ':');
		}
	}
}

static void
check_body(const char *body, size_t len)
{
	char *whole = malloc(2 * len + 3), *split = malloc(2 * len + 3);
	CHECK(whole != NULL && split != NULL);
	struct crlf_state st = {false};
	size_t nw = crlf_convert(&st, body, len, whole);
	CHECK(nw <= 2 * len + 1);
	nw += crlf_finish(&st, whole + nw);
	size_t ns = 0, pos = 0, chunk = 1;
	while (pos < len) {
		size_t k = chunk > len - pos ? len - pos : chunk;
		ns += crlf_convert(&st, body + pos, k, split + ns);
		pos += k;
		chunk = chunk % 7 + 1;
	}
	ns += crlf_finish(&st, split + ns);
	CHECK(ns == nw && memcmp(whole, split, nw) == 0);
	for (size_t i = 0; i < nw; i++) {
		if (whole[i] == '\r')
			CHECK(i + 1 < nw && whole[i + 1] == '\n');
		if (whole[i] == '\n')
			CHECK(i > 0 && whole[i - 1] == '\r');
	}
	free(whole);
	free(split);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const froms[] = {NULL, "Me <me@example.com>", "j\xC3\xB6rg@x.example",
					    "List:;"};
	struct msgprep m, m2;
	char err[256];

	if (size < 1)
		return 0;
	const char *from = froms[data[0] & 3];
	bool longer = data[0] & 4;
	const char *in = (const char *)data + 1;
	size_t len = size - 1;
	uint64_t total = longer ? (uint64_t)len + 100000 : len;

	if (msgprep_parse(in, len, total, from, NOW, UNIQUE, &m, err, sizeof(err)) < 0) {
		CHECK(errno == EINVAL || errno == ENOMEM);
		if (errno == EINVAL)
			CHECK(err[0] != '\0' && strchr(err, '\n') == NULL);
		CHECK(m.header == NULL && m.rcpts == NULL && m.env_from == NULL);
		return 0;
	}
	check_header(&m);
	CHECK(m.body_offset <= total);
	CHECK(m.nrcpts >= 1 && m.nrcpts <= MSGPREP_MAX_RCPTS);
	bool utf8 = addr_is_8bit(m.env_from);
	CHECK(addr_domain(m.env_from) != NULL);
	for (size_t i = 0; i < m.nrcpts; i++) {
		CHECK(addr_domain(m.rcpts[i]) != NULL);
		utf8 = utf8 || addr_is_8bit(m.rcpts[i]);
		for (size_t j = 0; j < i; j++)
			CHECK(!addr_same(m.rcpts[i], m.rcpts[j]));
	}
	CHECK(utf8 == m.smtputf8);
	size_t idl = strlen(m.message_id);
	CHECK(idl >= 2 && m.message_id[0] == '<' && m.message_id[idl - 1] == '>');
	CHECK(m.subject == NULL || utf8_valid((const unsigned char *)m.subject, strlen(m.subject)));
	if (!longer && m.body_offset < len)
		check_body(in + m.body_offset, len - (size_t)m.body_offset);

	/* the header sent is a fixed point (unless all recipients were Bcc) */
	if (msgprep_parse(m.header, m.header_len, m.header_len, from, NOW, UNIQUE, &m2, err,
			  sizeof(err)) == 0) {
		CHECK(m2.header_len == m.header_len &&
		      memcmp(m2.header, m.header, m.header_len) == 0);
		CHECK(strcmp(m2.env_from, m.env_from) == 0);
		CHECK(strcmp(m2.message_id, m.message_id) == 0);
		CHECK(m2.body_offset == m.header_len);
		msgprep_free(&m2);
	} else {
		CHECK(strcmp(err, "no recipient: To, Cc and Bcc are missing or empty") == 0);
	}
	msgprep_free(&m);
	return 0;
}
