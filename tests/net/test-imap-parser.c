/* test-imap-parser.c - unit tests for net/imap-parser.c.
 *
 * Every sample is fed three ways: whole, one byte at a time, and in seeded random splits;
 * each way must give the same responses (compared through a dump that shows every field)
 * and the same streamed literal bytes. Malformed input must give IMAP_PARSE_ERROR with a
 * message that says why, whatever the split. Not tested here: the connection that feeds
 * the parser (net/conn) and the meaning of the responses (net/imap).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "net/buf.h"
#include "net/imap-parser.h"

#define RANDOM_SPLITS 300
#define S(x) x, sizeof(x) - 1

enum split { SPLIT_WHOLE, SPLIT_BYTE, SPLIT_RANDOM };
enum abort_at { ABORT_NONE, ABORT_BEGIN, ABORT_DATA, ABORT_END };

/* What one parse produced. */
struct run {
	struct buf out;    /* one dump line per response */
	struct buf stream; /* "B<seq>,<section>,<size>:" data "|E;" per streamed literal */
	bool failed;
	char error[200];
	size_t responses;
	size_t data_calls, max_chunk;
	bool in_literal;
	uint64_t lit_size, lit_got;
	enum abort_at abort_at;
	uint64_t seed;
};

static uint32_t
rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return (uint32_t)(*s >> 32);
}

/* --- dumping a response --- */

static void
dump_str(struct buf *b, const char *s, size_t len)
{
	buf_append_str(b, "\"");
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\')
			buf_printf(b, "\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			buf_printf(b, "\\x%02x", c);
		else
			buf_append(b, &c, 1);
	}
	buf_append_str(b, "\"");
}

static void
dump_args(struct buf *b, const struct imap_arg *a, size_t n, unsigned depth)
{
	assert_true(n == 0 || a != NULL);
	assert_true(depth < 100);
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			buf_append_str(b, " ");
		switch (a[i].type) {
		case IMAP_ARG_ATOM:
			assert_non_null(a[i].str);
			assert_int_equal(strlen(a[i].str), a[i].len);
			assert_true(a[i].len > 0);
			if (strpbrk(a[i].str, " ()") != NULL)
				buf_printf(b, "`%s`", a[i].str);
			else
				buf_append_str(b, a[i].str);
			break;
		case IMAP_ARG_STRING:
			assert_non_null(a[i].str);
			assert_int_equal(strlen(a[i].str), a[i].len);
			dump_str(b, a[i].str, a[i].len);
			break;
		case IMAP_ARG_LITERAL:
			assert_non_null(a[i].str);
			assert_int_equal(a[i].str[a[i].len], '\0');
			buf_printf(b, "{%zu}", a[i].len);
			dump_str(b, a[i].str, a[i].len);
			break;
		case IMAP_ARG_STREAMED:
			buf_printf(b, "STREAM(%llu)", (unsigned long long)a[i].size);
			break;
		case IMAP_ARG_NIL:
			buf_append_str(b, "NIL");
			break;
		case IMAP_ARG_LIST:
			buf_append_str(b, "(");
			dump_args(b, a[i].list, a[i].len, depth + 1);
			buf_append_str(b, ")");
			break;
		default:
			fail_msg("bad arg type %d", (int)a[i].type);
		}
	}
}

static void
dump_resp(struct buf *b, const struct imap_response *r)
{
	static const char *const status[] = {"", " OK", " NO", " BAD", " BYE", " PREAUTH"};

	switch (r->kind) {
	case IMAP_RESP_TAGGED:
		assert_non_null(r->tag);
		assert_true(r->status == IMAP_STATUS_OK || r->status == IMAP_STATUS_NO ||
			    r->status == IMAP_STATUS_BAD);
		buf_append_str(b, r->tag);
		break;
	case IMAP_RESP_UNTAGGED:
		assert_null(r->tag);
		buf_append_str(b, "*");
		break;
	case IMAP_RESP_CONTINUE:
		assert_null(r->tag);
		assert_int_equal(r->status, IMAP_STATUS_NONE);
		buf_append_str(b, "+");
		break;
	}
	assert_true((unsigned)r->status <= IMAP_STATUS_PREAUTH);
	buf_append_str(b, status[r->status]);
	/* a status or continuation has text and no name; data the other way round */
	bool data = r->kind == IMAP_RESP_UNTAGGED && r->status == IMAP_STATUS_NONE;
	assert_true(data == (r->text == NULL));
	assert_true(data == (r->name != NULL));
	assert_true(!r->has_number || data);
	if (r->code != NULL) {
		buf_printf(b, " [%s", r->code);
		if (r->code_nargs > 0)
			buf_append_str(b, " ");
		dump_args(b, r->code_args, r->code_nargs, 0);
		buf_append_str(b, "]");
	} else {
		assert_int_equal(r->code_nargs, 0);
	}
	if (r->text != NULL) {
		buf_append_str(b, " ");
		dump_str(b, r->text, strlen(r->text));
	}
	if (r->has_number)
		buf_printf(b, " %u", r->number);
	if (r->name != NULL) {
		buf_printf(b, " %s", r->name);
		if (r->nargs > 0)
			buf_append_str(b, " ");
		dump_args(b, r->args, r->nargs, 0);
	} else {
		assert_int_equal(r->nargs, 0);
	}
	buf_append_str(b, "\n");
}

/* --- callbacks recording the streamed literals --- */

static int
cb_begin(void *ctx, uint32_t seq, const char *section, uint64_t size)
{
	struct run *r = ctx;

	assert_false(r->in_literal);
	r->in_literal = true;
	r->lit_size = size;
	r->lit_got = 0;
	buf_printf(&r->stream, "B%u,%s,%llu:", seq, section, (unsigned long long)size);
	return r->abort_at == ABORT_BEGIN ? -1 : 0;
}

static int
cb_data(void *ctx, const unsigned char *data, size_t len)
{
	struct run *r = ctx;

	assert_true(r->in_literal);
	assert_true(len > 0);
	r->lit_got += len;
	assert_true(r->lit_got <= r->lit_size);
	r->data_calls++;
	if (len > r->max_chunk)
		r->max_chunk = len;
	buf_append(&r->stream, data, len);
	return r->abort_at == ABORT_DATA ? -1 : 0;
}

static int
cb_end(void *ctx)
{
	struct run *r = ctx;

	assert_true(r->in_literal);
	assert_int_equal(r->lit_got, r->lit_size);
	r->in_literal = false;
	buf_append_str(&r->stream, "|E;");
	return r->abort_at == ABORT_END ? -1 : 0;
}

static const struct imap_parser_callbacks record_cb = {cb_begin, cb_data, cb_end};

/* --- feeding --- */

static void
run_init(struct run *r)
{
	memset(r, 0, sizeof(*r));
	buf_init(&r->out, SIZE_MAX / 2);
	buf_init(&r->stream, SIZE_MAX / 2);
}

static void
run_free(struct run *r)
{
	buf_free(&r->out);
	buf_free(&r->stream);
}

/* Feeds one chunk as a caller would: after each response, the rest again. */
static void
feed_chunk(struct run *r, struct imap_parser *p, const unsigned char *d, size_t n)
{
	while (!r->failed) {
		size_t used = 0xdead;
		const struct imap_response *resp = (const void *)&used;
		enum imap_parse_result res = imap_parser_feed(p, d, n, &used, &resp);

		assert_true(used <= n);
		if (res == IMAP_PARSE_OK) {
			assert_non_null(resp);
			assert_true(used > 0);
			dump_resp(&r->out, resp);
			r->responses++;
			d += used;
			n -= used;
			if (n == 0)
				return;
			continue;
		}
		assert_null(resp);
		if (res == IMAP_PARSE_ERROR) {
			r->failed = true;
			snprintf(r->error, sizeof(r->error), "%s", imap_parser_error(p));
			assert_true(r->error[0] != '\0');
			/* the error sticks */
			res = imap_parser_feed(p, (const unsigned char *)"\r\n", 2, &used, &resp);
			assert_int_equal(res, IMAP_PARSE_ERROR);
			assert_int_equal(used, 0);
			assert_string_equal(imap_parser_error(p), r->error);
			return;
		}
		assert_int_equal(res, IMAP_PARSE_NEED_MORE);
		assert_int_equal(used, n);
		return;
	}
}

static void
feed_all(struct run *r, struct imap_parser *p, const void *in, size_t len, enum split how)
{
	const unsigned char *d = in;
	size_t pos = 0;

	while (pos < len && !r->failed) {
		size_t n = len - pos;
		if (how == SPLIT_BYTE)
			n = 1;
		else if (how == SPLIT_RANDOM)
			n = (rnd(&r->seed) & 1) ? 1 + rnd(&r->seed) % 8 : 1 + rnd(&r->seed) % n;
		if (n > len - pos)
			n = len - pos;
		feed_chunk(r, p, d + pos, n);
		pos += n;
	}
}

static void
parse(struct run *r, const struct imap_parser_limits *lim, const void *in, size_t len,
      enum split how, uint64_t seed)
{
	struct imap_parser *p = imap_parser_new(lim, &record_cb, r);

	assert_non_null(p);
	r->seed = seed * 0x9e3779b97f4a7c15ULL + 1;
	feed_all(r, p, in, len, how);
	imap_parser_free(&p);
	assert_null(p);
}

/* The input must give exactly `out` (dump lines) and `stream`, however it is split. */
static void
check_parse(const void *in, size_t len, const char *out, const void *stream, size_t slen)
{
	for (unsigned i = 0; i < 2 + RANDOM_SPLITS; i++) {
		struct run r;
		enum split how = i == 0 ? SPLIT_WHOLE : i == 1 ? SPLIT_BYTE : SPLIT_RANDOM;

		run_init(&r);
		parse(&r, NULL, in, len, how, i);
		if (r.failed)
			fail_msg("split %u: error \"%s\" for %.*s", i, r.error, (int)len,
				 (const char *)in);
		assert_false(r.in_literal);
		assert_string_equal(r.out.data != NULL ? r.out.data : "", out);
		assert_int_equal(r.stream.len, slen);
		if (slen > 0)
			assert_memory_equal(r.stream.data, stream, slen);
		run_free(&r);
	}
}

/* The input must fail with a message containing `msg`, however it is split. */
static void
check_error(const struct imap_parser_limits *lim, const void *in, size_t len, const char *msg)
{
	for (unsigned i = 0; i < 2 + RANDOM_SPLITS / 6; i++) {
		struct run r;
		enum split how = i == 0 ? SPLIT_WHOLE : i == 1 ? SPLIT_BYTE : SPLIT_RANDOM;

		run_init(&r);
		parse(&r, lim, in, len, how, i);
		if (!r.failed)
			fail_msg("split %u: no error for \"%.*s\"", i, (int)len, (const char *)in);
		if (strstr(r.error, msg) == NULL)
			fail_msg("split %u: error \"%s\", expected \"%s\"", i, r.error, msg);
		run_free(&r);
	}
}

/* --- samples --- */

struct sample {
	const char *in;
	size_t len;
	const char *out;
	const char *stream; /* may hold NUL */
	size_t slen;
};

static const struct sample samples[] = {
    /* Dovecot 2.3 greeting, LIST, STATUS, SELECT */
    {S("* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ "
       "STARTTLS AUTH=PLAIN] Dovecot ready.\r\n"),
     "* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ STARTTLS "
     "AUTH=PLAIN] \"Dovecot ready.\"\n",
     S("")},
    {S("* LIST (\\HasNoChildren \\Sent) \"/\" Sent\r\n"),
     "* LIST (\\HasNoChildren \\Sent) \"/\" Sent\n", S("")},
    {S("* LIST (\\HasChildren) \"/\" \"Archive\"\r\n"),
     "* LIST (\\HasChildren) \"/\" \"Archive\"\n", S("")},
    {S("* LIST () \"/\" \"Entw&APw-rfe\"\r\n"), "* LIST () \"/\" \"Entw&APw-rfe\"\n", S("")},
    {S("* LIST (\\Noselect) \"/\" {5}\r\nA/B/C\r\n"), "* LIST (\\Noselect) \"/\" {5}\"A/B/C\"\n",
     S("")},
    {S("* STATUS INBOX (MESSAGES 231 UIDNEXT 44292)\r\n"),
     "* STATUS INBOX (MESSAGES 231 UIDNEXT 44292)\n", S("")},
    {S("* 1 FETCH (UID 1 BODY[] {12}\r\nHello World!)\r\n"),
     "* 1 FETCH (UID 1 BODY[] STREAM(12))\n", S("B1,BODY[],12:Hello World!|E;")},
    {S("* 1 FETCH (UID 1 BODY[]<0> {4}\r\nHell)\r\n"), "* 1 FETCH (UID 1 BODY[]<0> STREAM(4))\n",
     S("B1,BODY[]<0>,4:Hell|E;")},
    {S("* ESEARCH (TAG \"A282\") UID MIN 2 COUNT 3 ALL 2,10:11\r\n"),
     "* ESEARCH (TAG \"A282\") UID MIN 2 COUNT 3 ALL 2,10:11\n", S("")},
    {S("* VANISHED (EARLIER) 300:310,405,411\r\n"), "* VANISHED (EARLIER) 300:310,405,411\n",
     S("")},
    {S("* 3 EXPUNGE\r\n"), "* 3 EXPUNGE\n", S("")},
    {S("* 18 EXISTS\r\n"), "* 18 EXISTS\n", S("")},
    {S("* 0 EXISTS\r\n"), "* 0 EXISTS\n", S("")},
    {S("* OK [UIDVALIDITY 3857529045] UIDs valid\r\n"),
     "* OK [UIDVALIDITY 3857529045] \"UIDs valid\"\n", S("")},
    {S("* OK [PERMANENTFLAGS (\\Deleted \\Seen \\*)] Limited\r\n"),
     "* OK [PERMANENTFLAGS (\\Deleted \\Seen \\*)] \"Limited\"\n", S("")},
    {S("* OK [HIGHESTMODSEQ 715194045007]\r\n"), "* OK [HIGHESTMODSEQ 715194045007] \"\"\n", S("")},
    {S("* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n"),
     "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\n", S("")},
    {S("A1 OK [READ-WRITE] SELECT completed\r\n"), "A1 OK [READ-WRITE] \"SELECT completed\"\n",
     S("")},
    {S("A2 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"),
     "A2 NO [AUTHENTICATIONFAILED] \"Authentication failed.\"\n", S("")},
    {S("* BYE Logging out\r\n"), "* BYE \"Logging out\"\n", S("")},
    {S("+ \r\n"), "+ \"\"\n", S("")},
    {S("+\r\n"), "+ \"\"\n", S("")},
    {S("+ idling\r\n"), "+ \"idling\"\n", S("")},
    {S("+ YGgGCSqGSIb3EgECAgIAb1kwV6ADAgEFoQMCAQ+iSzBJoAMCAQGiQgRAtHTEzY=\r\n"),
     "+ \"YGgGCSqGSIb3EgECAgIAb1kwV6ADAgEFoQMCAQ+iSzBJoAMCAQGiQgRAtHTEzY=\"\n", S("")},
    {S("* SEARCH 2 84 882\r\n"), "* SEARCH 2 84 882\n", S("")},
    {S("* SEARCH\r\n"), "* SEARCH\n", S("")},
    {S("* SEARCH 1 2 \r\n"), "* SEARCH 1 2\n", S("")}, /* trailing SP tolerated */
    {S("* ENABLED CONDSTORE QRESYNC\r\n"), "* ENABLED CONDSTORE QRESYNC\n", S("")},
    {S("* ID (\"name\" \"Dovecot\")\r\n"), "* ID (\"name\" \"Dovecot\")\n", S("")},
    {S("* ID NIL\r\n"), "* ID NIL\n", S("")},
    {S("* NAMESPACE ((\"\" \"/\")) NIL NIL\r\n"), "* NAMESPACE ((\"\" \"/\")) NIL NIL\n", S("")},
    {S("* 1 FETCH (UID 5 MODSEQ (12345) FLAGS ())\r\n"),
     "* 1 FETCH (UID 5 MODSEQ (12345) FLAGS ())\n", S("")},
    {S("* PREAUTH ready\r\n"), "* PREAUTH \"ready\"\n", S("")},
    {S("A3 OK [APPENDUID 38505 3955] APPEND completed\r\n"),
     "A3 OK [APPENDUID 38505 3955] \"APPEND completed\"\n", S("")},
    {S("* OK [CLOSED]\r\n"), "* OK [CLOSED] \"\"\n", S("")},
    {S("* OK [ALERT] \r\n"), "* OK [ALERT] \"\"\n", S("")},
    {S("A5 BAD\r\n"), "A5 BAD \"\"\n", S("")},
    {S("* OK\r\n"), "* OK \"\"\n", S("")},
    /* case-insensitive names and statuses; lone LF */
    {S("a4 ok [read-only] done\n"), "a4 OK [READ-ONLY] \"done\"\n", S("")},
    {S("* 5 fetch (flags (\\Seen))\n"), "* 5 FETCH (flags (\\Seen))\n", S("")},
    {S("* Bye later\n"), "* BYE \"later\"\n", S("")},
    {S("* capability IMAP4rev1\n"), "* CAPABILITY IMAP4rev1\n", S("")},
    /* text is not tokenized */
    {S("* OK [ALERT] \"unbalanced ( quote ]x\r\n"), "* OK [ALERT] \"\\\"unbalanced ( quote ]x\"\n",
     S("")},
    {S("* NO Quota \xc3\xbc [x\r\n"), "* NO \"Quota \\xc3\\xbc [x\"\n", S("")},
    {S("* OK [REFERRAL imap://u@h/INBOX;UIDVALIDITY=1] see\r\n"),
     "* OK [REFERRAL imap://u@h/INBOX;UIDVALIDITY=1] \"see\"\n", S("")},
    {S("* OK [BADCHARSET (UTF-8 \"x\" {1}\r\ny)] no\r\n"),
     "* OK [BADCHARSET (UTF-8 \"x\" {1}\"y\")] \"no\"\n", S("")},
    /* quoted escapes, astrings, atoms */
    {S("* LIST (\\HasNoChildren) \"\\\\\" \"a\\\"b\\\\c\"\r\n"),
     "* LIST (\\HasNoChildren) \"\\\\\" \"a\\\"b\\\\c\"\n", S("")},
    {S("* LIST () \"/\" ~peter/mail\r\n"), "* LIST () \"/\" ~peter/mail\n", S("")},
    {S("* LIST () \"/\" [Gmail]/Sent\r\n"), "* LIST () \"/\" [Gmail]/Sent\n", S("")},
    {S("* LIST () \"/\" a]b\r\n"), "* LIST () \"/\" a]b\n", S("")},
    {S("* LIST () \"/\" [x\r\n"), "* LIST () \"/\" [x\n", S("")},
    {S("* NO [WEBALERT https://x/?a=%2F&b] Web login required\r\n"),
     "* NO [WEBALERT https://x/?a=%2F&b] \"Web login required\"\n", S("")},
    {S("* FETCH (BODY[1 2] X)\r\n"), "* FETCH (`BODY[1 2]` X)\n", S("")},
    {S("* LIST () \"/\" \"\xe5\x8f\xb0\"\r\n"), "* LIST () \"/\" \"\\xe5\\x8f\\xb0\"\n", S("")},
    {S("* X nil Nil \"NIL\" NILS\r\n"), "* X NIL NIL \"NIL\" NILS\n", S("")},
    {S("* OKx\r\n"), "* OKX\n", S("")},
    {S("* X ((((a)) b) (c (d)))\r\n"), "* X ((((a)) b) (c (d)))\n", S("")},
    {S("* X () (()) (() ())\r\n"), "* X () (()) (() ())\n", S("")},
    /* buffered literals, literal8 with NUL */
    {S("* LIST () \"/\" {0}\r\n\r\n"), "* LIST () \"/\" {0}\"\"\n", S("")},
    {S("* X ~{3}\r\na\0b\r\n"), "* X {3}\"a\\x00b\"\n", S("")},
    {S("* X {4}\n(\r\n) {2}\r\n{}\r\n"), "* X {4}\"(\\x0d\\x0a)\" {2}\"{}\"\n", S("")},
    {S("* 4 FETCH (ENVELOPE (\"date\" {5}\r\nhello NIL) UID 7)\r\n"),
     "* 4 FETCH (ENVELOPE (\"date\" {5}\"hello\" NIL) UID 7)\n", S("")},
    {S("* 4 FETCH (X-FOO {3}\r\nabc)\r\n"), "* 4 FETCH (X-FOO {3}\"abc\")\n", S("")},
    {S("* 4 FETCH (UID BODY[] {2}\r\nab)\r\n"), "* 4 FETCH (UID BODY[] {2}\"ab\")\n", S("")},
    {S("* 6 FETCH (X (BODY[] {2}\r\nab))\r\n"), "* 6 FETCH (X (BODY[] {2}\"ab\"))\n", S("")},
    {S("* 6 FETCH (BODY[] {2}\r\nab) {1}\r\nc\r\n"), "* 6 FETCH (BODY[] STREAM(2)) {1}\"c\"\n",
     S("B6,BODY[],2:ab|E;")},
    {S("* 6 NOTFETCH (BODY[] {2}\r\nab)\r\n"), "* 6 NOTFETCH (BODY[] {2}\"ab\")\n", S("")},
    {S("* OK [X (BODY {2}\r\nab)] t\r\n"), "* OK [X (BODY {2}\"ab\")] \"t\"\n", S("")},
    /* streamed body literals */
    {S("* 2 FETCH (BODY[] {0}\r\n)\r\n"), "* 2 FETCH (BODY[] STREAM(0))\n", S("B2,BODY[],0:|E;")},
    {S("* 2 FETCH (BODY[] \"\" BODY[1] NIL)\r\n"), "* 2 FETCH (BODY[] \"\" BODY[1] NIL)\n", S("")},
    {S("* 3 FETCH (BODY[1] {3}\r\nabc BINARY[2] ~{2}\r\n\0x RFC822.HEADER {2}\n\r\n "
       "RFC822.SIZE 9)\r\n"),
     "* 3 FETCH (BODY[1] STREAM(3) BINARY[2] STREAM(2) RFC822.HEADER STREAM(2) RFC822.SIZE "
     "9)\n",
     S("B3,BODY[1],3:abc|E;B3,BINARY[2],2:\0x|E;B3,RFC822.HEADER,2:\r\n|E;")},
    {S("* 5 FETCH (RFC822 {3}\r\n)}) rfc822.text {1}\r\nx)\r\n"),
     "* 5 FETCH (RFC822 STREAM(3) rfc822.text STREAM(1))\n",
     S("B5,RFC822,3:)})|E;B5,rfc822.text,1:x|E;")},
    {S("* 7 FETCH (body[header.fields (DATE \"FROM\")]<10> {3}\r\nabc)\r\n"),
     "* 7 FETCH (`body[header.fields (DATE \"FROM\")]<10>` STREAM(3))\n",
     S("B7,body[header.fields (DATE \"FROM\")]<10>,3:abc|E;")},
    {S("* 8 FETCH (BODY[1.MIME] {1}\r\n\0)\r\n"), "* 8 FETCH (BODY[1.MIME] STREAM(1))\n",
     S("B8,BODY[1.MIME],1:\0|E;")},
    {S("* 4294967295 FETCH (BODY[] {1}\r\nz)\r\n"), "* 4294967295 FETCH (BODY[] STREAM(1))\n",
     S("B4294967295,BODY[],1:z|E;")},
};

static void
test_samples(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
		const struct sample *s = &samples[i];
		check_parse(s->in, s->len, s->out, s->stream, s->slen);
	}
}

/* All samples back to back, in one input: consumed_r must cut exactly. */
static void
test_samples_concatenated(void **state)
{
	struct buf in, out, stream;

	(void)state;
	buf_init(&in, SIZE_MAX / 2);
	buf_init(&out, SIZE_MAX / 2);
	buf_init(&stream, SIZE_MAX / 2);
	for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
		buf_append(&in, samples[i].in, samples[i].len);
		buf_append_str(&out, samples[i].out);
		buf_append(&stream, samples[i].stream, samples[i].slen);
	}
	check_parse(in.data, in.len, out.data, stream.data, stream.len);
	buf_free(&in);
	buf_free(&out);
	buf_free(&stream);
}

/* The RFC 3501 FETCH example with a 342-byte header literal, field by field. */
static void
test_fetch_fields(void **state)
{
	const char *head = "* 12 FETCH (UID 4827 FLAGS (\\Seen $Label1) INTERNALDATE "
			   "\"17-Jul-1996 02:44:25 -0700\" RFC822.SIZE 4286 BODY[HEADER.FIELDS "
			   "(DATE FROM SUBJECT MESSAGE-ID)] {342}\r\n";
	const char *section = "BODY[HEADER.FIELDS (DATE FROM SUBJECT MESSAGE-ID)]";
	char lit[342];
	struct buf in, stream;
	struct run r;

	(void)state;
	for (size_t i = 0; i < sizeof(lit); i++)
		lit[i] = "Subject: a (b) {3}\r\n\"]*\\"[i % 25];
	buf_init(&in, SIZE_MAX / 2);
	buf_init(&stream, SIZE_MAX / 2);
	buf_append_str(&in, head);
	buf_append(&in, lit, sizeof(lit));
	buf_append_str(&in, ")\r\n");
	buf_printf(&stream, "B12,%s,342:", section);
	buf_append(&stream, lit, sizeof(lit));
	buf_append_str(&stream, "|E;");
	check_parse(in.data, in.len,
		    "* 12 FETCH (UID 4827 FLAGS (\\Seen $Label1) INTERNALDATE \"17-Jul-1996 "
		    "02:44:25 -0700\" RFC822.SIZE 4286 `BODY[HEADER.FIELDS (DATE FROM SUBJECT "
		    "MESSAGE-ID)]` STREAM(342))\n",
		    stream.data, stream.len);

	/* and field by field */
	run_init(&r);
	struct imap_parser *p = imap_parser_new(NULL, &record_cb, &r);
	const struct imap_response *resp;
	size_t used;
	assert_int_equal(imap_parser_feed(p, (const unsigned char *)in.data, in.len, &used, &resp),
			 IMAP_PARSE_OK);
	assert_int_equal(used, in.len);
	assert_int_equal(resp->kind, IMAP_RESP_UNTAGGED);
	assert_null(resp->tag);
	assert_int_equal(resp->status, IMAP_STATUS_NONE);
	assert_null(resp->code);
	assert_null(resp->code_args);
	assert_int_equal(resp->code_nargs, 0);
	assert_null(resp->text);
	assert_true(resp->has_number);
	assert_int_equal(resp->number, 12);
	assert_string_equal(resp->name, "FETCH");
	assert_int_equal(resp->nargs, 1);
	const struct imap_arg *l = resp->args;
	assert_int_equal(l->type, IMAP_ARG_LIST);
	assert_int_equal(l->len, 10);
	const struct imap_arg *a = l->list;
	assert_true(imap_arg_atom_is(&a[0], "uid"));
	uint32_t u32;
	assert_int_equal(imap_arg_u32(&a[1], &u32), 0);
	assert_int_equal(u32, 4827);
	assert_true(imap_arg_atom_is(&a[2], "FLAGS"));
	assert_int_equal(a[3].type, IMAP_ARG_LIST);
	assert_int_equal(a[3].len, 2);
	assert_string_equal(a[3].list[0].str, "\\Seen");
	assert_int_equal(a[3].list[0].len, 5);
	assert_string_equal(a[3].list[1].str, "$Label1");
	assert_int_equal(a[5].type, IMAP_ARG_STRING);
	assert_string_equal(a[5].str, "17-Jul-1996 02:44:25 -0700");
	assert_int_equal(a[5].len, 26);
	assert_true(imap_arg_atom_is(&a[6], "RFC822.SIZE"));
	uint64_t u64;
	assert_int_equal(imap_arg_u64(&a[7], &u64), 0);
	assert_int_equal(u64, 4286);
	assert_int_equal(a[8].type, IMAP_ARG_ATOM);
	assert_string_equal(a[8].str, section);
	assert_int_equal(a[9].type, IMAP_ARG_STREAMED);
	assert_int_equal(a[9].size, 342);
	assert_null(a[9].str);
	assert_int_equal(r.data_calls, 1);
	assert_int_equal(r.max_chunk, 342);
	imap_parser_free(&p);
	run_free(&r);
	buf_free(&in);
	buf_free(&stream);
}

static const struct imap_response *
parse_one(struct imap_parser *p, const char *s)
{
	const struct imap_response *resp = NULL;
	size_t used;

	assert_int_equal(imap_parser_feed(p, (const unsigned char *)s, strlen(s), &used, &resp),
			 IMAP_PARSE_OK);
	assert_int_equal(used, strlen(s));
	return resp;
}

static void
test_status_fields(void **state)
{
	struct imap_parser *p = imap_parser_new(NULL, NULL, NULL);
	const struct imap_response *r;

	(void)state;
	r = parse_one(p, "* OK [PERMANENTFLAGS (\\Deleted \\Seen \\*)] Limited\r\n");
	assert_int_equal(r->kind, IMAP_RESP_UNTAGGED);
	assert_int_equal(r->status, IMAP_STATUS_OK);
	assert_string_equal(r->code, "PERMANENTFLAGS");
	assert_int_equal(r->code_nargs, 1);
	assert_int_equal(r->code_args[0].type, IMAP_ARG_LIST);
	assert_int_equal(r->code_args[0].len, 3);
	assert_string_equal(r->code_args[0].list[2].str, "\\*");
	assert_string_equal(r->text, "Limited");
	assert_null(r->name);
	assert_null(r->args);
	assert_int_equal(r->nargs, 0);
	assert_false(r->has_number);

	r = parse_one(p, "A1 OK [READ-WRITE] SELECT completed\r\n");
	assert_int_equal(r->kind, IMAP_RESP_TAGGED);
	assert_string_equal(r->tag, "A1");
	assert_int_equal(r->status, IMAP_STATUS_OK);
	assert_string_equal(r->code, "READ-WRITE");
	assert_int_equal(r->code_nargs, 0);
	assert_string_equal(r->text, "SELECT completed");

	r = parse_one(p, "* ok [uidvalidity 3857529045] x\r\n");
	assert_string_equal(r->code, "UIDVALIDITY");
	assert_int_equal(imap_arg_u32(&r->code_args[0], &(uint32_t){0}), 0);

	r = parse_one(p, "+ idling\r\n");
	assert_int_equal(r->kind, IMAP_RESP_CONTINUE);
	assert_null(r->tag);
	assert_string_equal(r->text, "idling");

	r = parse_one(p, "* LIST (\\Noselect) \"/\" {5}\r\nA/B/C\r\n");
	assert_int_equal(r->nargs, 3);
	assert_int_equal(r->args[0].type, IMAP_ARG_LIST);
	assert_string_equal(r->args[0].list[0].str, "\\Noselect");
	assert_int_equal(r->args[1].type, IMAP_ARG_STRING);
	assert_string_equal(imap_arg_str(&r->args[1]), "/");
	assert_int_equal(r->args[2].type, IMAP_ARG_LITERAL);
	assert_string_equal(r->args[2].str, "A/B/C");
	assert_int_equal(r->args[2].len, 5);
	assert_true(imap_arg_is_string(&r->args[2]));

	r = parse_one(p, "* NAMESPACE ((\"\" \"/\")) NIL NIL\r\n");
	assert_int_equal(r->nargs, 3);
	assert_int_equal(r->args[0].len, 1);
	assert_int_equal(r->args[0].list[0].type, IMAP_ARG_LIST);
	assert_string_equal(r->args[0].list[0].list[0].str, "");
	assert_int_equal(r->args[0].list[0].list[0].len, 0);
	assert_string_equal(r->args[0].list[0].list[1].str, "/");
	assert_int_equal(r->args[1].type, IMAP_ARG_NIL);
	assert_null(imap_arg_str(&r->args[1]));
	assert_false(imap_arg_is_string(&r->args[1]));

	r = parse_one(p, "* 3 EXPUNGE\r\n");
	assert_true(r->has_number);
	assert_int_equal(r->number, 3);
	assert_string_equal(r->name, "EXPUNGE");
	assert_int_equal(r->nargs, 0);
	assert_null(r->text);
	imap_parser_free(&p);
	imap_parser_free(&p); /* NULL is fine */
	imap_parser_free(NULL);
}

static void
test_arg_helpers(void **state)
{
	struct imap_parser *p = imap_parser_new(NULL, NULL, NULL);
	const struct imap_response *r;
	uint64_t u64;
	uint32_t u32;

	(void)state;
	r = parse_one(p, "* X 9223372036854775807 9223372036854775808 4294967295 4294967296 "
			 "12a \"5\" 0 007\r\n");
	const struct imap_arg *a = r->args;
	assert_int_equal(r->nargs, 8);
	assert_int_equal(imap_arg_u64(&a[0], &u64), 0);
	assert_int_equal(u64, 9223372036854775807ULL);
	assert_int_equal(imap_arg_u64(&a[1], &u64), -1);
	assert_int_equal(imap_arg_u32(&a[2], &u32), 0);
	assert_int_equal(u32, 4294967295U);
	assert_int_equal(imap_arg_u32(&a[3], &u32), -1);
	assert_int_equal(imap_arg_u64(&a[3], &u64), 0);
	assert_int_equal(imap_arg_u64(&a[4], &u64), -1);
	assert_int_equal(imap_arg_u64(&a[5], &u64), -1); /* a string is not a number */
	assert_int_equal(imap_arg_u32(&a[6], &u32), 0);
	assert_int_equal(u32, 0);
	assert_int_equal(imap_arg_u32(&a[7], &u32), 0);
	assert_int_equal(u32, 7);
	assert_true(imap_arg_atom_is(&a[4], "12A"));
	assert_false(imap_arg_atom_is(&a[4], "12"));
	assert_false(imap_arg_atom_is(&a[5], "5"));
	assert_string_equal(imap_arg_str(&a[5]), "5");
	imap_parser_free(&p);
}

/* Several responses in one buffer: each OK stops right after its line. */
static void
test_consumed(void **state)
{
	static const char in[] = "* 1 EXISTS\r\n* 2 EXISTS\n"
				 "* 3 FETCH (BODY[] {3}\r\nabc)\r\nA1 OK done\r\n* 4 EX";
	struct run r;
	const struct imap_response *resp;
	size_t used, pos = 0;

	(void)state;
	run_init(&r);
	struct imap_parser *p = imap_parser_new(NULL, &record_cb, &r);
	const unsigned char *d = (const unsigned char *)in;
	size_t len = sizeof(in) - 1;

	assert_int_equal(imap_parser_feed(p, d, len, &used, &resp), IMAP_PARSE_OK);
	assert_int_equal(used, 12);
	assert_int_equal(resp->number, 1);
	pos += used;
	assert_int_equal(imap_parser_feed(p, d + pos, len - pos, &used, &resp), IMAP_PARSE_OK);
	assert_int_equal(used, 11);
	assert_int_equal(resp->number, 2);
	pos += used;
	assert_int_equal(imap_parser_feed(p, d + pos, len - pos, &used, &resp), IMAP_PARSE_OK);
	assert_int_equal(used, 29);
	assert_int_equal(resp->args[0].list[1].type, IMAP_ARG_STREAMED);
	pos += used;
	assert_int_equal(imap_parser_feed(p, d + pos, len - pos, &used, &resp), IMAP_PARSE_OK);
	assert_int_equal(used, 12);
	assert_string_equal(resp->tag, "A1");
	pos += used;
	assert_int_equal(imap_parser_feed(p, d + pos, len - pos, &used, &resp),
			 IMAP_PARSE_NEED_MORE);
	assert_int_equal(used, len - pos);
	assert_null(resp);
	assert_int_equal(imap_parser_feed(p, d, 0, &used, &resp), IMAP_PARSE_NEED_MORE);
	assert_int_equal(used, 0);
	assert_int_equal(imap_parser_feed(p, (const unsigned char *)"ISTS\r\n", 6, &used, &resp),
			 IMAP_PARSE_OK);
	assert_int_equal(used, 6);
	assert_int_equal(resp->number, 4);
	assert_string_equal(resp->name, "EXISTS");
	assert_string_equal(r.stream.data, "B3,BODY[],3:abc|E;");
	imap_parser_free(&p);
	run_free(&r);
}

/* Literal data reaches the callback in the chunks it was fed in, never copied whole. */
static void
test_stream_chunks(void **state)
{
	enum { SIZE = 100000 };
	struct buf in;
	struct run r;
	const struct imap_response *resp;
	size_t used;

	(void)state;
	buf_init(&in, SIZE_MAX / 2);
	buf_printf(&in, "* 9 FETCH (UID 1 BINARY[] ~{%d}\r\n", SIZE);
	size_t head = in.len;
	for (int i = 0; i < SIZE; i++)
		buf_append(&in, &(char){(char)(i * 7)}, 1);
	buf_append_str(&in, ")\r\n");
	const unsigned char *d = (const unsigned char *)in.data;

	/* whole: one call */
	run_init(&r);
	struct imap_parser_limits lim = {.max_line = 100, .max_literal = 10};
	struct imap_parser *p = imap_parser_new(&lim, &record_cb, &r);
	assert_int_equal(imap_parser_feed(p, d, in.len, &used, &resp), IMAP_PARSE_OK);
	assert_int_equal(used, in.len);
	assert_int_equal(r.data_calls, 1);
	assert_int_equal(r.max_chunk, SIZE);
	assert_int_equal(r.stream.len, strlen("B9,BINARY[],100000:") + SIZE + 3);
	assert_memory_equal(r.stream.data + r.stream.len - SIZE - 3, d + head, SIZE);
	run_free(&r);

	/* split: head + 100, 5000, 60000, rest; the parser is reused */
	run_init(&r);
	size_t cuts[] = {head + 100, 5000, 60000, in.len - head - 65100};
	size_t pos = 0;
	for (size_t i = 0; i < 4; i++) {
		enum imap_parse_result res = imap_parser_feed(p, d + pos, cuts[i], &used, &resp);
		assert_int_equal(res, i < 3 ? IMAP_PARSE_NEED_MORE : IMAP_PARSE_OK);
		assert_int_equal(used, cuts[i]);
		pos += cuts[i];
	}
	assert_int_equal(r.data_calls, 4);
	assert_int_equal(r.max_chunk, 60000);
	assert_memory_equal(r.stream.data + r.stream.len - SIZE - 3, d + head, SIZE);
	assert_int_equal(resp->args[0].list[3].size, SIZE);
	imap_parser_free(&p);
	run_free(&r);

	/* one byte at a time and random splits */
	struct buf expect;
	buf_init(&expect, SIZE_MAX / 2);
	buf_printf(&expect, "B9,BINARY[],%d:", SIZE);
	buf_append(&expect, d + head, SIZE);
	buf_append_str(&expect, "|E;");
	for (unsigned i = 0; i < 20; i++) {
		run_init(&r);
		parse(&r, &lim, in.data, in.len, i == 0 ? SPLIT_BYTE : SPLIT_RANDOM, i);
		assert_false(r.failed);
		assert_int_equal(r.responses, 1);
		assert_int_equal(r.stream.len, expect.len);
		assert_memory_equal(r.stream.data, expect.data, expect.len);
		if (i == 0)
			assert_int_equal(r.data_calls, SIZE);
		run_free(&r);
	}
	buf_free(&expect);
	buf_free(&in);
}

/* Without callbacks the body is dropped, the response still arrives. */
static void
test_no_callbacks(void **state)
{
	struct imap_parser *p = imap_parser_new(NULL, NULL, NULL);
	const struct imap_response *r;

	(void)state;
	r = parse_one(p, "* 1 FETCH (BODY[] {5}\r\nhello UID 3)\r\n");
	assert_int_equal(r->args[0].list[1].type, IMAP_ARG_STREAMED);
	assert_int_equal(r->args[0].list[1].size, 5);
	assert_string_equal(r->args[0].list[3].str, "3");
	imap_parser_free(&p);
}

static void
test_abort(void **state)
{
	static const char in[] = "* 1 FETCH (BODY[] {5}\r\nhello)\r\n";

	(void)state;
	for (int at = ABORT_BEGIN; at <= ABORT_END; at++) {
		struct run r;
		run_init(&r);
		r.abort_at = (enum abort_at)at;
		struct imap_parser *p = imap_parser_new(NULL, &record_cb, &r);
		feed_all(&r, p, in, sizeof(in) - 1, SPLIT_WHOLE);
		assert_true(r.failed);
		assert_string_equal(r.error, "aborted by caller");
		/* reset: the parser works again */
		imap_parser_reset(p);
		assert_string_equal(imap_parser_error(p), "");
		r.abort_at = ABORT_NONE;
		r.in_literal = false;
		assert_non_null(parse_one(p, "* 1 EXISTS\r\n"));
		imap_parser_free(&p);
		run_free(&r);
	}
}

/* Reset drops a partial response. */
static void
test_reset(void **state)
{
	struct imap_parser *p = imap_parser_new(NULL, NULL, NULL);
	const struct imap_response *r;
	size_t used;

	(void)state;
	assert_int_equal(imap_parser_feed(p, (const unsigned char *)"* 1 FETCH (BODY[] {9}\r\nab",
					  26, &used, &r),
			 IMAP_PARSE_NEED_MORE);
	imap_parser_reset(p);
	r = parse_one(p, "* 2 EXISTS\r\n");
	assert_int_equal(r->number, 2);
	imap_parser_reset(p);
	r = parse_one(p, "A7 NO x\r\n");
	assert_string_equal(r->tag, "A7");
	imap_parser_free(&p);
}

/* Limits are exact: max_line bytes pass, one more does not; streamed bytes are free. */
static void
test_limits(void **state)
{
	struct imap_parser_limits lim = {.max_line = 13};
	struct imap_parser *p;
	struct run r;

	(void)state;
	p = imap_parser_new(&lim, NULL, NULL);
	parse_one(p, "* OK abcdef\r\n"); /* 13 bytes */
	imap_parser_free(&p);
	check_error(&lim, S("* OK abcdefg\r\n"), "line too long");
	check_error(&lim, S("* OK abcdef\r\r\n"), "CR without LF");

	/* a buffered literal counts, a streamed one does not; a literal that cannot fit
	 * fails at its "}" however the input is split (found by the fuzzer) */
	lim = (struct imap_parser_limits){.max_line = 64, .max_literal = 1000};
	check_error(&lim, S("* X {100}\r\n"), "line too long");
	lim.max_line = 20;
	check_error(&lim, S("* X {12}"), "line too long");
	p = imap_parser_new(&lim, NULL, NULL);
	parse_one(p, "* X {10}\n0123456789\n"); /* 20 bytes */
	imap_parser_free(&p);
	lim.max_line = 64;
	run_init(&r);
	static const char big[] = "* 1 FETCH (BODY[] {100}\r\n"
				  "0123456789012345678901234567890123456789012345678901234567890123"
				  "456789012345678901234567890123456789)\r\n";
	parse(&r, &lim, big, sizeof(big) - 1, SPLIT_BYTE, 0);
	assert_false(r.failed);
	assert_int_equal(r.responses, 1);
	run_free(&r);

	/* an endless line stops at exactly max_line bytes (default 1 MiB) */
	size_t huge = 3 << 20;
	unsigned char *endless = malloc(huge);
	assert_non_null(endless);
	memset(endless, 'a', huge);
	memcpy(endless, "* X ", 4);
	p = imap_parser_new(NULL, NULL, NULL);
	const struct imap_response *resp;
	size_t used;
	assert_int_equal(imap_parser_feed(p, endless, huge, &used, &resp), IMAP_PARSE_ERROR);
	assert_int_equal(used, 1 << 20);
	assert_string_equal(imap_parser_error(p), "line too long (over 1048576 bytes)");
	imap_parser_free(&p);
	free(endless);

	/* depth: 3 passes, 4 does not */
	lim = (struct imap_parser_limits){.max_depth = 3};
	p = imap_parser_new(&lim, NULL, NULL);
	parse_one(p, "* X (((a)))\r\n");
	parse_one(p, "* 1 FETCH (BODY[[[x]]] NIL)\r\n");
	imap_parser_free(&p);
	check_error(&lim, S("* X ((((a))))\r\n"), "nesting too deep");
	check_error(&lim, S("* 1 FETCH (BODY[[[[x]]]] NIL)\r\n"), "nesting too deep");

	lim = (struct imap_parser_limits){.max_literal = 10, .max_body_literal = 100};
	p = imap_parser_new(&lim, NULL, NULL);
	parse_one(p, "* X {10}\r\n0123456789\r\n");
	imap_parser_free(&p);
	check_error(&lim, S("* X {11}\r\n"), "literal too large: 11 bytes");
	check_error(&lim, S("* 1 FETCH (X {11}\r\n"), "literal too large: 11 bytes");
	check_error(&lim, S("* 1 FETCH (BODY[] {101}\r\n"), "literal too large: 101 bytes");
	check_error(NULL, S("* X {65537}\r\n"), "literal too large: 65537 bytes");
	check_error(NULL, S("* 1 FETCH (BODY[] {9223372036854775808}\r\n"),
		    "literal too large: 9223372036854775808 bytes");
}

struct bad {
	const char *in;
	size_t len;
	const char *msg;
};

static const struct bad bad[] = {
    {S("* LIST () \"/\" \"abc\r\n"), "unterminated quoted string"},
    {S("* LIST () \"/\" \"a\nbc\"\r\n"), "unterminated quoted string"},
    {S("* LIST () \"/\" \"a\0b\"\r\n"), "NUL in quoted string"},
    {S("* LIST () \"/\" \"a\\b\"\r\n"), "'b' after '\\' in quoted string"},
    {S("* LIST () \"/\" {abc}\r\n"), "'a' in literal size"},
    {S("* LIST () \"/\" {}\r\n"), "'}' in literal size"},
    {S("* LIST () \"/\" {5+}\r\n"), "'+' in literal size"},
    {S("* LIST () \"/\" {5}x"), "missing CRLF after literal size"},
    {S("* LIST () \"/\" {5}\rx"), "CR without LF"},
    {S("* LIST () \"/\" ~x{5}\r\n"), "'{' in atom"},
    {S("* LIST () \"/\" {99999999999999999999}\r\n"), "literal size too large"},
    {S("* 1 FETCH (BODY[] {18446744073709551616}\r\n"), "literal size too large"},
    {S("* 99999999999 EXISTS\r\n"), "number too large"},
    {S("* 4294967296 EXISTS\r\n"), "number too large"},
    {S("* OK hi\rX\r\n"), "CR without LF"},
    {S("* 3 EXISTS\r\r\n"), "CR without LF"},
    {S("* LIST (\\Noselect\r) \"/\" x\r\n"), "unterminated list"},
    {S("* LIST ( ) \"/\" x\r\n"), "unexpected character ' ' at start of argument"},
    {S("* LIST (a  b) \"/\" x\r\n"), "unexpected character ' ' at start of argument"},
    {S("* X {2}\r\na\0\r\n"), "NUL in literal"},
    {S("* SEARCH 1\0 2\r\n"), "unexpected character 0x00 in atom"},
    {S("* SEARCH 1\x01 2\r\n"), "unexpected character 0x01 in atom"},
    {S("* SEARCH 1\xff\r\n"), "unexpected character 0xff in atom"},
    {S("* SEARCH 1 2(3)\r\n"), "'(' in atom"},
    {S("* SEARCH 1 %\r\n"), "'%' at start of argument"},
    {S("* OK \0\r\n"), "NUL in text"},
    {S("A1OK\r\n"), "missing space after tag"},
    {S("A1 \r\n"), "missing status"},
    {S("A1 FOO bar\r\n"), "unknown status \"FOO\""},
    {S("A1 BYE bar\r\n"), "unknown status \"BYE\""},
    {S("A1 OKAY bar\r\n"), "unknown status"},
    {S("A1 OK[X] bar\r\n"), "'[' in status"},
    {S("(A1 OK bar\r\n"), "'(' in tag"},
    {S("*OK\r\n"), "missing space after '*'"},
    {S("* \r\n"), "missing response name"},
    {S("*  OK\r\n"), "missing response name"},
    {S("* 3\r\n"), "missing name after number 3"},
    {S("* 3 \r\n"), "missing response name"},
    {S("* 3  EXISTS\r\n"), "missing response name"},
    {S("* X ((),())\r\n"), "',' after list"},
    {S("* 1 FETCH(UID 1)\r\n"), "'(' in response name"},
    {S("* LIST ()\"/\" x\r\n"), "'\"' after list"},
    {S("* FLAGS (\\Seen)x\r\n"), "'x' after list"},
    {S("* LIST () \"/\"x\r\n"), "'x' (missing space)"},
    {S("* X {1}\r\nab\r\n"), "'b' (missing space)"},
    {S("* FLAGS (\\Seen\r\n"), "unterminated list"},
    {S("* FLAGS (\\Seen \r\n"), "unterminated list"},
    {S("* FLAGS \\Seen)\r\n"), "unexpected ')'"},
    {S("* FLAGS (a ))\r\n"), "unexpected ')'"},
    {S("* FLAGS (a) )\r\n"), "unexpected ')'"},
    {S("* FLAGS ((a)] x\r\n"), "unexpected ']'"},
    {S("* LIST () \"/\" [a (b)]\r\n"), "unexpected ']'"}, /* spans only in FETCH */
    {S("* OK [ALERT\r\n"), "unterminated response code"},
    {S("* OK [ALERT x\r\n"), "unterminated response code"},
    {S("* OK [ALERT (x]\r\n"), "unexpected ']'"},
    {S("* OK [ALERT (x ]\r\n"), "unexpected ']' in list"},
    {S("* OK [X (BODY[] {2}\r\nab)] t\r\n"), "unexpected ']'"},
    {S("* OK [ALERT]x\r\n"), "missing space after response code"},
    {S("* OK [] x\r\n"), "empty response code"},
    {S("* OK [(] x\r\n"), "'(' in response code"},
    {S("* 1 FETCH (BODY[HEADER\r\n"), "unterminated '[' in atom"},
    {S("* 1 FETCH (BODY[HEADER\x01] x)\r\n"), "0x01 in atom section"},
    {S("* 1 FETCH (BODY[] {3}\r\nabc\r\n"), "unterminated list"},
};

static void
test_errors(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		check_error(NULL, bad[i].in, bad[i].len, bad[i].msg);
}

/* Incomplete input is never an error and never a response. */
static void
test_incomplete(void **state)
{
	static const char *const partial[] = {
	    "* 1 FETCH (BODY[] {3}\r\nabc",
	    "* 1 FETCH (BODY[] {3}\r\nab",
	    "A1 OK [ALERT] text",
	    "* LIST () \"/\" \"abc",
	    "* X {3}\r\n",
	    "* X ~",
	    "* X ~{",
	    "*",
	    "+",
	    "",
	    "* OK [X (a b",
	    "* 1 FETCH (BODY[ab",
	    "* OK x\r",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(partial) / sizeof(partial[0]); i++) {
		for (unsigned k = 0; k < 30; k++) {
			struct run r;
			run_init(&r);
			parse(&r, NULL, partial[i], strlen(partial[i]),
			      k == 0   ? SPLIT_WHOLE
			      : k == 1 ? SPLIT_BYTE
				       : SPLIT_RANDOM,
			      k);
			assert_false(r.failed);
			assert_int_equal(r.responses, 0);
			run_free(&r);
		}
	}
}

/* Random garbage never crashes and never takes more than its limits. */
static void
test_garbage(void **state)
{
	static const char alphabet[] = "* ()[]{}~\"\\\r\n0123456789AOKBDYFETCHNIL<>.%\x01\x80";
	struct imap_parser_limits lim = {.max_line = 200, .max_literal = 20, .max_depth = 4};
	uint64_t seed = 42;

	(void)state;
	for (int i = 0; i < 2000; i++) {
		char in[120];
		size_t len = 1 + rnd(&seed) % sizeof(in);
		for (size_t k = 0; k < len; k++)
			in[k] = alphabet[rnd(&seed) % (sizeof(alphabet) - 1)];
		struct run whole, split;
		run_init(&whole);
		run_init(&split);
		parse(&whole, &lim, in, len, SPLIT_WHOLE, 0);
		parse(&split, &lim, in, len, SPLIT_RANDOM, (uint64_t)i);
		/* the split never changes the outcome */
		assert_int_equal(whole.failed, split.failed);
		assert_string_equal(whole.error, split.error);
		assert_int_equal(whole.responses, split.responses);
		if (whole.out.len > 0)
			assert_string_equal(whole.out.data, split.out.data);
		run_free(&whole);
		run_free(&split);
	}
}

/* During literal_begin, the attributes already sent in the FETCH list are available. */
struct attr_seen {
	struct imap_parser *p;
	char uid[32], idate[64], flags[8];
	int calls;
};

static int
attr_begin(void *ctx, uint32_t seq, const char *section, uint64_t size)
{
	struct attr_seen *a = ctx;
	const char *u = imap_parser_fetch_attr(a->p, "uid");
	const char *d = imap_parser_fetch_attr(a->p, "INTERNALDATE");
	const char *f = imap_parser_fetch_attr(a->p, "FLAGS"); /* a list: not returned */
	snprintf(a->uid, sizeof(a->uid), "%s", u ? u : "(null)");
	snprintf(a->idate, sizeof(a->idate), "%s", d ? d : "(null)");
	snprintf(a->flags, sizeof(a->flags), "%s", f ? f : "(null)");
	a->calls++;
	return 0;
}

static void
test_fetch_attr(void **state)
{
	(void)state;
	static const char in[] = "* 3 FETCH (UID 7 FLAGS (\\Seen) INTERNALDATE "
				 "\"17-Jul-1996 02:44:25 -0700\" BODY[] {3}\r\nabc)\r\n";
	for (int bytewise = 0; bytewise < 2; bytewise++) {
		struct attr_seen a = { 0 };
		struct imap_parser_callbacks cb = { .literal_begin = attr_begin };
		a.p = imap_parser_new(NULL, &cb, &a);
		assert_non_null(a.p);
		assert_null(imap_parser_fetch_attr(a.p, "UID")); /* outside a callback */
		size_t len = sizeof(in) - 1, off = 0;
		enum imap_parse_result r = IMAP_PARSE_NEED_MORE;
		const struct imap_response *resp = NULL;
		while (off < len && r == IMAP_PARSE_NEED_MORE) {
			size_t n = bytewise ? 1 : len - off, used = 0;
			r = imap_parser_feed(a.p, (const unsigned char *)in + off, n, &used, &resp);
			off += used;
		}
		assert_int_equal(r, IMAP_PARSE_OK);
		assert_int_equal(a.calls, 1);
		assert_string_equal(a.uid, "7");
		assert_string_equal(a.idate, "17-Jul-1996 02:44:25 -0700");
		assert_string_equal(a.flags, "(null)");
		imap_parser_free(&a.p);

	}
}


/* uid-sets of COPYUID codes (RFC 4315). */
static void
test_uidset(void **state)
{
	(void)state;
	uint32_t u[8];
	assert_int_equal(imap_uidset_expand("7", u, 8), 1);
	assert_int_equal(u[0], 7);
	assert_int_equal(imap_uidset_expand("4,7:9,2", u, 8), 5);
	uint32_t want[] = {4, 7, 8, 9, 2};
	assert_memory_equal(u, want, sizeof(want));
	assert_int_equal(imap_uidset_expand("9:7", u, 8), 3); /* either order: ascending */
	assert_int_equal(u[0], 7);
	assert_int_equal(u[2], 9);
	assert_int_equal(imap_uidset_expand("4294967295", u, 8), 1);
	assert_int_equal(u[0], 4294967295u);
	/* More than max (a hostile range), zero, too large, syntax: refused. */
	assert_int_equal(imap_uidset_expand("1:9", u, 8), -1);
	assert_int_equal(imap_uidset_expand("1:4294967295", u, 8), -1);
	assert_int_equal(imap_uidset_expand("0", u, 8), -1);
	assert_int_equal(imap_uidset_expand("4294967296", u, 8), -1);
	assert_int_equal(imap_uidset_expand("", u, 8), -1);
	assert_int_equal(imap_uidset_expand("3,", u, 8), -1);
	assert_int_equal(imap_uidset_expand("3:", u, 8), -1);
	assert_int_equal(imap_uidset_expand("3:*", u, 8), -1);
	assert_int_equal(imap_uidset_expand("1 2", u, 8), -1);
	assert_int_equal(imap_uidset_expand("1,,2", u, 8), -1);
}

/* uid-sets walked range by range (VANISHED): nothing is expanded. */
static void
test_uidset_next(void **state)
{
	(void)state;
	const char *p = "1:3,7,4294967295:10";
	uint32_t lo, hi;
	assert_int_equal(imap_uidset_next(&p, &lo, &hi), 1);
	assert_int_equal(lo, 1);
	assert_int_equal(hi, 3);
	assert_int_equal(imap_uidset_next(&p, &lo, &hi), 1);
	assert_int_equal(lo, 7);
	assert_int_equal(hi, 7);
	assert_int_equal(imap_uidset_next(&p, &lo, &hi), 1);
	assert_int_equal(lo, 10);
	assert_int_equal(hi, 4294967295u);
	assert_int_equal(imap_uidset_next(&p, &lo, &hi), 0);
	const char *refused[] = {"0", "1,", ",1", "1::2", "1:*", "*", "1 2", "4294967296", "a"};
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		const char *q = refused[i];
		int k;
		while ((k = imap_uidset_next(&q, &lo, &hi)) == 1)
			;
		assert_int_equal(k, -1);
	}
}

/* Parse one line; the response stays valid while *pp lives. */
static const struct imap_response *
one_response(struct imap_parser **pp, const char *line)
{
	*pp = imap_parser_new(NULL, NULL, NULL);
	assert_non_null(*pp);
	size_t used = 0;
	const struct imap_response *r = NULL;
	assert_int_equal(imap_parser_feed(*pp, (const unsigned char *)line, strlen(line), &used, &r),
			 IMAP_PARSE_OK);
	assert_int_equal(used, strlen(line));
	return r;
}

/* expunged-resp = "VANISHED" [SP "(EARLIER)"] SP known-uids (RFC 7162). */
static void
test_vanished(void **state)
{
	(void)state;
	struct imap_parser *p;
	bool earlier;
	const char *set;
	const struct imap_response *r = one_response(&p, "* VANISHED (EARLIER) 41,43:116,118\r\n");
	assert_int_equal(imap_vanished(r, &earlier, &set), 0);
	assert_true(earlier);
	assert_string_equal(set, "41,43:116,118");
	imap_parser_free(&p);
	r = one_response(&p, "* vanished 405,407,410:425\r\n");
	assert_int_equal(imap_vanished(r, &earlier, &set), 0);
	assert_false(earlier);
	assert_string_equal(set, "405,407,410:425");
	imap_parser_free(&p);
	/* The same split one byte at a time. */
	const char *line = "* VANISHED (EARLIER) 1:2\r\n";
	p = imap_parser_new(NULL, NULL, NULL);
	r = NULL;
	for (size_t i = 0; line[i]; i++) {
		size_t used = 0;
		enum imap_parse_result k =
			imap_parser_feed(p, (const unsigned char *)line + i, 1, &used, &r);
		assert_int_equal(k, line[i + 1] ? IMAP_PARSE_NEED_MORE : IMAP_PARSE_OK);
	}
	assert_int_equal(imap_vanished(r, &earlier, &set), 0);
	assert_true(earlier);
	assert_string_equal(set, "1:2");
	imap_parser_free(&p);
	const char *refused[] = {
		"* VANISHED\r\n",                 /* no set */
		"* VANISHED (EARLIER)\r\n",       /* no set */
		"* VANISHED (LATER) 1\r\n",       /* unknown tag */
		"* VANISHED (EARLIER FOO) 1\r\n", /* more in the list */
		"* VANISHED 1 2\r\n",             /* more arguments */
		"* VANISHED 0\r\n",               /* not a uid-set */
		"* VANISHED 1:*\r\n",             /* "*" never in known-uids */
		"* VANISHED \"1\"\r\n",           /* a string, not a sequence-set */
		"* 3 VANISHED 1\r\n",             /* a number before the name */
		"* 3 EXPUNGE\r\n",                /* not VANISHED */
	};
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		r = one_response(&p, refused[i]);
		assert_int_equal(imap_vanished(r, &earlier, &set), -1);
		assert_null(set);
		imap_parser_free(&p);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fetch_attr),
	    cmocka_unit_test(test_samples),       cmocka_unit_test(test_samples_concatenated),
	    cmocka_unit_test(test_fetch_fields),  cmocka_unit_test(test_status_fields),
	    cmocka_unit_test(test_arg_helpers),   cmocka_unit_test(test_consumed),
	    cmocka_unit_test(test_stream_chunks), cmocka_unit_test(test_no_callbacks),
	    cmocka_unit_test(test_abort),         cmocka_unit_test(test_reset),
	    cmocka_unit_test(test_limits),        cmocka_unit_test(test_errors),
	    cmocka_unit_test(test_incomplete),    cmocka_unit_test(test_garbage),
	    cmocka_unit_test(test_uidset),
	    cmocka_unit_test(test_uidset_next),
	    cmocka_unit_test(test_vanished),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
