/* test-address.c - unit tests for net/address.c: the address examples of RFC 5322
 * Appendix A (A.1.1-A.1.3, A.5, A.6.1-A.6.3), display names (quoted with commas and
 * escapes, RFC 2047 words, obs-phrase), comments, groups, routes, domain literals, UTF-8,
 * the canonical addr-spec (quoting only when needed), addr_same(), the limits, a table of
 * malformed values with their messages, every value parsed when fed a byte at a time
 * longer (prefixes never crash), and random garbage. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "net/address.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/utf8.h"

/* The list as text: one line per address, "name <addr>" or "<addr>". */
static char *
show(const struct addr_list *l)
{
	size_t size = 1;
	for (size_t i = 0; i < l->n; i++)
		size += (l->v[i].name ? strlen(l->v[i].name) + 1 : 0) + strlen(l->v[i].addr) + 3;
	char *s = malloc(size);
	assert_non_null(s);
	s[0] = '\0';
	for (size_t i = 0; i < l->n; i++) {
		if (l->v[i].name != NULL) {
			strcat(s, l->v[i].name);
			strcat(s, " ");
		}
		strcat(s, "<");
		strcat(s, l->v[i].addr);
		strcat(s, ">");
		if (i + 1 < l->n)
			strcat(s, "\n");
	}
	return s;
}

static void
ok_n(const char *in, size_t len, const char *want)
{
	struct addr_list l;
	char err[200];
	int rc = addr_list_parse(in, len, &l, err, sizeof(err));
	if (rc != 0)
		print_error("[%.*s]: %s\n", (int)len, in, err);
	assert_int_equal(rc, 0);
	char *got = show(&l);
	if (strcmp(got, want) != 0)
		print_error("[%.*s]:\nwanted [%s]\ngot    [%s]\n", (int)len, in, want, got);
	assert_string_equal(got, want);
	for (size_t i = 0; i < l.n; i++) {
		assert_non_null(strchr(l.v[i].addr, '@'));
		if (l.v[i].name != NULL) {
			assert_true(l.v[i].name[0] != '\0');
			assert_true(
			    utf8_valid((const unsigned char *)l.v[i].name, strlen(l.v[i].name)));
		}
	}
	free(got);
	addr_list_free(&l);
	assert_null(l.v);
	assert_int_equal(l.n, 0);
}

static void
ok(const char *in, const char *want)
{
	ok_n(in, strlen(in), want);
}

static void
bad_n(const char *in, size_t len, const char *want)
{
	struct addr_list l = {(struct addr *)1, 99};
	char err[200];
	errno = 0;
	int rc = addr_list_parse(in, len, &l, err, sizeof(err));
	if (rc != -1 || strcmp(err, want) != 0)
		print_error("[%.*s]: rc %d, wanted [%s], got [%s]\n", (int)len, in, rc, want,
			    rc == 0 ? "" : err);
	assert_int_equal(rc, -1);
	assert_int_equal(errno, EINVAL);
	assert_string_equal(err, want);
	assert_null(l.v);
	assert_int_equal(l.n, 0);
}

static void
bad(const char *in, const char *want)
{
	bad_n(in, strlen(in), want);
}

/* RFC 5322 Appendix A.1: addressing. */
static void
test_rfc5322_a1(void **state)
{
	(void)state;
	/* A.1.1 */
	ok("John Doe <jdoe@machine.example>", "John Doe <jdoe@machine.example>");
	ok("Mary Smith <mary@example.net>", "Mary Smith <mary@example.net>");
	/* A.1.2 */
	ok("\"Joe Q. Public\" <john.q.public@example.com>",
	   "Joe Q. Public <john.q.public@example.com>");
	ok("Mary Smith <mary@x.test>, jdoe@example.org, Who? <one@y.test>",
	   "Mary Smith <mary@x.test>\n<jdoe@example.org>\nWho? <one@y.test>");
	ok("<boss@nil.test>, \"Giant; \\\"Big\\\" Box\" <sysservices@example.net>",
	   "<boss@nil.test>\nGiant; \"Big\" Box <sysservices@example.net>");
	/* A.1.3 */
	ok("Pete <pete@silly.example>", "Pete <pete@silly.example>");
	ok("A Group:Ed Jones <c@a.test>,joe@where.test,John <jdoe@one.test>;",
	   "Ed Jones <c@a.test>\n<joe@where.test>\nJohn <jdoe@one.test>");
	ok("Undisclosed recipients:;", "");
}

/* RFC 5322 Appendix A.5: white space, comments and other oddities. */
static void
test_rfc5322_a5(void **state)
{
	(void)state;
	ok("Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>",
	   "Pete <pete@silly.test>");
	ok("A Group(Some people)\r\n     :Chris Jones <c@(Chris's host.)public.example>,\r\n"
	   "         joe@example.org,\r\n  John <jdoe@one.test> (my dear friend); (the end of "
	   "the group)",
	   "Chris Jones <c@public.example>\n<joe@example.org>\nJohn <jdoe@one.test>");
	ok("(Empty list)(start)Hidden recipients  :(nobody(that I know))  ;", "");
}

/* RFC 5322 Appendix A.6: obsolete forms. */
static void
test_rfc5322_a6(void **state)
{
	(void)state;
	/* A.6.1 */
	ok("Joe Q. Public <john.q.public@example.com>",
	   "Joe Q. Public <john.q.public@example.com>");
	ok("Mary Smith <@node.test:mary@example.net>, , jdoe@test  . example",
	   "Mary Smith <mary@example.net>\n<jdoe@test.example>");
	ok("Who? <one@y.test>", "Who? <one@y.test>");
	ok("<boss@nil.test>, \"Giant; \\\"Big\\\" Box\" <bs@example.net>",
	   "<boss@nil.test>\nGiant; \"Big\" Box <bs@example.net>");
	/* A.6.3 */
	ok("John Doe <jdoe@machine(comment).  example>", "John Doe <jdoe@machine.example>");
	ok("Mary Smith\r\n  \r\n     <mary@example.net>", "Mary Smith <mary@example.net>");
	ok("Mary Smith\n     <mary@example.net>", "Mary Smith <mary@example.net>");
}

static void
test_names(void **state)
{
	(void)state;
	ok("\"Doe, John\" <j@x>", "Doe, John <j@x>");
	ok("\"Doe, John\" <j@x>, \"Roe, Jane\" <r@y>", "Doe, John <j@x>\nRoe, Jane <r@y>");
	ok("\"a\\\\b\" <a@b>", "a\\b <a@b>");
	ok("\"\" <a@b>", "<a@b>");
	ok("  <a@b>  ", "<a@b>");
	ok("John   (middle)  Doe <a@b>", "John Doe <a@b>");
	ok("John(x)Doe <a@b>", "John Doe <a@b>");
	ok("\"  spaced  \" <a@b>", "  spaced   <a@b>");
	ok("Dr. J. R. \"Bob\" Dobbs <bob@slack.example>",
	   "Dr. J. R. Bob Dobbs <bob@slack.example>");
	/* RFC 2047 words: decoded, white space between adjacent words dropped */
	ok("=?UTF-8?Q?J=C3=B6rg?= <j@x>", "J\xC3\xB6rg <j@x>");
	ok("=?iso-8859-1?q?Andr=E9?= Pirard <PIRARD@vm1.ulg.ac.be>",
	   "Andr\xC3\xA9 Pirard <PIRARD@vm1.ulg.ac.be>");
	ok("=?UTF-8?B?SsO2cmc=?= =?UTF-8?B?IE3DvGxsZXI=?= <j@x>",
	   "J\xC3\xB6rg M\xC3\xBCller <j@x>");
	ok("\"=?UTF-8?Q?Doe=2C_J=C3=B6rg?=\" <j@x>", "Doe, J\xC3\xB6rg <j@x>");
	/* raw UTF-8 (RFC 6532) and Latin-1 (read as Windows-1252) */
	ok("J\xC3\xB6rg <j@x>", "J\xC3\xB6rg <j@x>");
	ok("J\xF6rg <j@x>", "J\xC3\xB6rg <j@x>");
	/* names beside plain addr-specs carry no name */
	ok("a@b (Alice)", "<a@b>");
}

static void
test_comments(void **state)
{
	(void)state;
	ok("(a (nested (comment)) here) a@b", "<a@b>");
	ok("a@b (trailing (nested \\( paren))", "<a@b>");
	ok("a(x)@(y)b(z).(w)c", "<a@b.c>");
	ok("<(x)a@b(y)>", "<a@b>");
	ok("Name (with \"quote) <a@b>", "Name <a@b>");
	ok("(\xC3\xA9t\xC3\xA9) a@b", "<a@b>");
	ok("(only a comment)", "");
	ok("", "");
	ok("   \t ", "");
}

static void
test_groups(void **state)
{
	(void)state;
	ok("undisclosed-recipients:;", "");
	ok("undisclosed-recipients: ;, a@b", "<a@b>");
	ok("a@b, Friends: c@d, \"E F\" <e@f>; , g@h", "<a@b>\n<c@d>\nE F <e@f>\n<g@h>");
	ok("Team: ,a@b,, ,c@d,;", "<a@b>\n<c@d>");
	ok("\"Quoted group\": a@b;", "<a@b>");
	ok("Friends: a@b;(end)", "<a@b>");
	/* tolerated: not closed at the end */
	ok("undisclosed-recipients:", "");
	ok("Friends: a@b", "<a@b>");
	ok("G1: a@b;, G2: c@d;", "<a@b>\n<c@d>");
}

static void
test_routes_literals(void **state)
{
	(void)state;
	ok("<@a,@b:user@x>", "<user@x>");
	ok("Name <@a.example, @b.example : user@x>", "Name <user@x>");
	ok("<,@a,,@b:user@x>", "<user@x>");
	ok("user@[192.0.2.1]", "<user@[192.0.2.1]>");
	ok("Name <user@[IPv6:2001:db8::1]>", "Name <user@[IPv6:2001:db8::1]>");
	ok("user@[ 192.0.2.1 ]", "<user@[192.0.2.1]>");
	ok("user@(c)[192.0.2.1](d)", "<user@[192.0.2.1]>");
}

static void
test_local_parts(void **state)
{
	(void)state;
	/* quoted only when needed */
	ok("\"john.doe\"@example.com", "<john.doe@example.com>");
	ok("\"john doe\"@example.com", "<\"john doe\"@example.com>");
	ok("john.\"doe\"@example.com", "<john.doe@example.com>");
	ok("\"a\\\"b\"@x", "<\"a\\\"b\"@x>");
	ok("\"a\\\\b\"@x", "<\"a\\\\b\"@x>");
	ok("\"\\a\\b\"@x", "<ab@x>");
	ok("\"a@b\"@x", "<\"a@b\"@x>");
	ok("\"a,b\" <\"a,b\"@x>", "a,b <\"a,b\"@x>");
	ok("\"\"@x", "<\"\"@x>");
	ok("john . doe @ example . com", "<john.doe@example.com>");
	ok("!#$%&'*+-/=?^_`{|}~@x", "<!#$%&'*+-/=?^_`{|}~@x>");
	/* tolerated: dots a dot-atom does not allow, written quoted */
	ok("john.@docomo.ne.jp", "<\"john.\"@docomo.ne.jp>");
	ok("john..doe@x", "<\"john..doe\"@x>");
	ok(".john@x", "<\".john\"@x>");
	/* case kept as written */
	ok("John.Doe@Example.COM", "<John.Doe@Example.COM>");
	/* RFC 6532 UTF-8 */
	ok("j\xC3\xB6rg@m\xC3\xBCller.example", "<j\xC3\xB6rg@m\xC3\xBCller.example>");
	ok("\xE7\x94\xA8\xE6\x88\xB7@\xE4\xBE\x8B\xE5\xAD\x90.\xE5\xB9\xBF\xE5\x91\x8A",
	   "<\xE7\x94\xA8\xE6\x88\xB7@\xE4\xBE\x8B\xE5\xAD\x90.\xE5\xB9\xBF\xE5\x91\x8A>");
	ok("\"j\xC3\xB6 rg\"@x", "<\"j\xC3\xB6 rg\"@x>");
}

static void
test_8bit_same(void **state)
{
	(void)state;
	assert_false(addr_is_8bit("a@b"));
	assert_false(addr_is_8bit(""));
	assert_true(addr_is_8bit("j\xC3\xB6rg@x"));
	assert_true(addr_is_8bit("a@\xC3\xA9.example"));

	assert_true(addr_same("a@example.com", "a@EXAMPLE.com"));
	assert_true(addr_same("a@Example.Com", "a@example.com"));
	assert_false(addr_same("A@example.com", "a@example.com"));
	assert_false(addr_same("a@example.com", "a@example.co"));
	assert_false(addr_same("a@example.com", "ab@example.com"));
	assert_true(addr_same("\"a@b\"@X", "\"a@b\"@x"));
	assert_false(addr_same("\"a@b\"@x", "\"a@B\"@x"));
	assert_true(addr_same("a@[192.0.2.1]", "a@[192.0.2.1]"));
	/* the domain is only ASCII-case-folded */
	assert_false(addr_same("a@\xC3\xA9.x", "a@\xC3\x89.x"));

	assert_string_equal(addr_domain("a@b.c"), "b.c");
	assert_string_equal(addr_domain("\"a@b\"@c"), "c");
	assert_string_equal(addr_domain("\"a\\\"@b\"@c"), "c");
	assert_null(addr_domain("nodomain"));

	/* dedup through parsing: the same mailbox spelled three ways */
	struct addr_list l;
	char err[100];
	const char *three = "\"a\"@X.org, a@x.ORG, <a@x.org>";
	assert_int_equal(addr_list_parse(three, strlen(three), &l, err, sizeof(err)), 0);
	assert_int_equal(l.n, 3);
	assert_true(addr_same(l.v[0].addr, l.v[1].addr));
	assert_true(addr_same(l.v[1].addr, l.v[2].addr));
	addr_list_free(&l);
}

static void
test_errors(void **state)
{
	(void)state;
	static const struct {
		const char *in, *msg;
	} cases[] = {
	    {"bob", "address 'bob' has no domain"},
	    {"a@b, bob, c@d", "address 'bob' has no domain"},
	    {"Bob Smith", "address 'Bob Smith' has no domain"},
	    {"<bob>", "address 'bob' has no domain"},
	    {"Bob <bob >", "address 'bob' has no domain"},
	    {"a@", "address 'a@' has no domain"},
	    {"a@, b@c", "address 'a@' has no domain"},
	    {"<a@>", "address 'a@' has no domain"},
	    {"@example.com", "address without a local part before the '@' at offset 0"},
	    {"a@b.", "empty label in the domain of the address at offset 0 (after the '.' at "
		     "offset 3)"},
	    {"a@b..c", "empty label in the domain of the address at offset 0 (after the '.' at "
		       "offset 3)"},
	    {"a@.b", "address 'a@' has no domain"},
	    {"John Smith <js@x", "unbalanced '<' at offset 11"},
	    {"Ed <a@b> , <c@d", "unbalanced '<' at offset 11"},
	    {"<<a@b>>", "unbalanced '<' at offset 0"},
	    {"a@b>", "unbalanced '>' at offset 3"},
	    {"\"Doe, John <j@x>", "unbalanced '\"' at offset 0"},
	    {"\"Doe\\\"", "unbalanced '\"' at offset 0"},
	    {"a@b (comment", "unbalanced '(' at offset 4"},
	    {"a@b ((nested)", "unbalanced '(' at offset 4"},
	    {"a@b (x\\", "unbalanced '(' at offset 4"},
	    {"a@b)", "unbalanced ')' at offset 3"},
	    {"a@[1.2.3.4", "unbalanced '[' at offset 2"},
	    {"a@b]", "unbalanced ']' at offset 3"},
	    {"a@[1[2]", "unexpected '[' in a domain literal at offset 4"},
	    {"a@[1\\.2]", "unexpected '\\' in a domain literal at offset 4"},
	    {"a@[]", "empty domain literal at offset 2"},
	    {"a\\b@c", "unexpected '\\' at offset 1"},
	    {"a@b\x01", "control character 0x01 at offset 3"},
	    {"a@b\x7F", "control character 0x7F at offset 3"},
	    {"\"a\x1B\"@b", "control character 0x1B at offset 2"},
	    {"a@b\r\nc@d", "control character 0x0D at offset 3"},
	    {"a@b\nc@d", "control character 0x0A at offset 3"},
	    {"\"a\tb\"@x", "control character in the local part of '\"a b\"' at offset 0"},
	    {"j\xF6rg", "address 'j?rg' has no domain"},
	    {"Bob\r\n Smith", "address 'Bob Smith' has no domain"},
	    {"a@b, 0123456789012345678901234567890123456789012345678901234567890123456789",
	     "address '012345678901234567890123456789012345678901234567890123456789...' has no "
	     "domain"},
	    {"a@b, \xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9"
	     "\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9"
	     "\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9x",
	     "address "
	     "'\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9"
	     "\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9"
	     "\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9...' "
	     "has no domain"},
	    {"a@b c@d", "missing ',' before offset 4"},
	    {"a@b <c@d>", "missing ',' before offset 4"},
	    {"Name <a@b> extra", "missing ',' before offset 11"},
	    {"a@b;", "unexpected ';' at offset 3"},
	    {"a@b:", "unexpected ':' at offset 3"},
	    {"John Doe@x", "unexpected '@' at offset 8 (a display name needs <> around the "
			   "address)"},
	    {"<>", "empty address '<>' at offset 0"},
	    {"Name <>", "empty address '<>' at offset 5"},
	    {"<a@b c>", "unexpected 'c' at offset 5 in the address that starts at offset 0"},
	    {"<@a:>", "empty address '<>' at offset 0"},
	    {"<@a b:c@d>", "malformed route in the address at offset 1"},
	    {"<@:c@d>", "address '@' has no domain"},
	    {"G: H: a@b;;", "group inside a group at offset 4"},
	    {": a@b;", "group without a name at offset 0"},
	    {",", "no address between the commas"},
	    {" , ,, ", "no address between the commas"},
	    {"\xC3(x)@b", "address at offset 0 is not valid UTF-8"},
	    {"a@\xFF", "address at offset 0 is not valid UTF-8"},
	    {"a@b\xED\xA0\x80", "address at offset 0 is not valid UTF-8"},
	    {"Name <a@b>, >", "unbalanced '>' at offset 12"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		bad(cases[i].in, cases[i].msg);
	bad_n("a@b\0c", 5, "NUL byte at offset 3");
	bad_n("\"\0\"@b", 4, "NUL byte at offset 1");

	/* a short err buffer is still terminated; NULL err with errlen 0 is fine */
	struct addr_list l;
	char small[8];
	assert_int_equal(addr_list_parse("bob", 3, &l, small, sizeof(small)), -1);
	assert_string_equal(small, "address");
	assert_int_equal(addr_list_parse("bob", 3, &l, NULL, 0), -1);
	assert_int_equal(errno, EINVAL);
}

static void
test_limits(void **state)
{
	(void)state;
	struct addr_list l;
	char err[200];

	/* ADDR_MAX_COUNT addresses, then one more */
	size_t size = (ADDR_MAX_COUNT + 1) * 8;
	char *s = malloc(size);
	assert_non_null(s);
	size_t n = 0;
	for (int i = 0; i < ADDR_MAX_COUNT; i++)
		n += (size_t)sprintf(s + n, "%s%d@x", i ? "," : "", i % 1000);
	assert_int_equal(addr_list_parse(s, n, &l, err, sizeof(err)), 0);
	assert_int_equal(l.n, ADDR_MAX_COUNT);
	addr_list_free(&l);
	size_t n1 = n + (size_t)sprintf(s + n, ",z@x");
	assert_int_equal(addr_list_parse(s, n1, &l, err, sizeof(err)), -1);
	char want[100];
	snprintf(want, sizeof(want), "more than %d addresses (at offset %zu)", ADDR_MAX_COUNT,
		 n + 1);
	assert_string_equal(err, want);
	free(s);

	/* an addr-spec of ADDR_MAX_SPEC bytes, then one more */
	/* A static buffer: GCC at -O2 with ASan warns about memcpy into a malloc'ed one that
	 * cmocka's assert_non_null() does not prove non-NULL. */
	static char spec[ADDR_MAX_SPEC + 2];
	s = spec;
	memset(s, 'a', ADDR_MAX_SPEC + 1);
	memcpy(s + ADDR_MAX_SPEC - 4, "@x.y", 4);
	assert_int_equal(addr_list_parse(s, ADDR_MAX_SPEC, &l, err, sizeof(err)), 0);
	assert_int_equal(strlen(l.v[0].addr), ADDR_MAX_SPEC);
	addr_list_free(&l);
	memset(s, 'a', ADDR_MAX_SPEC + 1);
	memcpy(s + ADDR_MAX_SPEC - 3, "@x.y", 4);
	assert_int_equal(addr_list_parse(s, ADDR_MAX_SPEC + 1, &l, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "address at offset 0 is longer than %d bytes", ADDR_MAX_SPEC);
	assert_string_equal(err, want);

	/* deep comment nesting costs no stack */
	size_t depth = 100000;
	s = malloc(2 * depth + 8);
	assert_non_null(s);
	memcpy(s, "a@b ", 4);
	memset(s + 4, '(', depth);
	memset(s + 4 + depth, ')', depth);
	assert_int_equal(addr_list_parse(s, 4 + 2 * depth, &l, err, sizeof(err)), 0);
	assert_int_equal(l.n, 1);
	addr_list_free(&l);
	free(s);
}

/* Every prefix of a valid list parses or fails cleanly (never reads past len: the copy
 * has no terminator), and the canonical form parses back to itself. */
static void
test_prefixes_roundtrip(void **state)
{
	(void)state;
	static const char *const lists[] = {
	    "A Group(Some people)\r\n :Chris Jones <c@(Chris's host.)public.example>, "
	    "joe@example.org, John <jdoe@one.test> (my dear friend); (the end)",
	    "\"Doe, John\" <\"j d\"@[192.0.2.1]>, <@a,@b:u@x>, =?UTF-8?Q?J=C3=B6rg?= <j@x>",
	    "j\xC3\xB6rg@m\xC3\xBCller.example, john.@docomo.ne.jp, \"a\\\"b\"@x",
	};
	for (size_t k = 0; k < sizeof(lists) / sizeof(lists[0]); k++) {
		size_t len = strlen(lists[k]);
		for (size_t n = 0; n <= len; n++) {
			char *copy = malloc(n ? n : 1);
			assert_non_null(copy);
			memcpy(copy, lists[k], n);
			struct addr_list l;
			char err[200];
			if (addr_list_parse(copy, n, &l, err, sizeof(err)) == 0)
				addr_list_free(&l);
			else
				assert_true(errno == EINVAL && err[0] != '\0');
			free(copy);
		}
		struct addr_list l, l2;
		char err[200];
		assert_int_equal(addr_list_parse(lists[k], len, &l, err, sizeof(err)), 0);
		char *again = malloc(len * 2 + 16);
		assert_non_null(again);
		again[0] = '\0';
		for (size_t i = 0; i < l.n; i++) {
			strcat(again, i ? ", <" : "<");
			strcat(again, l.v[i].addr);
			strcat(again, ">");
		}
		assert_int_equal(addr_list_parse(again, strlen(again), &l2, err, sizeof(err)), 0);
		assert_int_equal(l2.n, l.n);
		for (size_t i = 0; i < l.n; i++)
			assert_string_equal(l.v[i].addr, l2.v[i].addr);
		free(again);
		addr_list_free(&l);
		addr_list_free(&l2);
	}
}

static void
test_random_garbage(void **state)
{
	(void)state;
	static const char alpha[] = "a@b.<>,;:\"\\()[] \t\r\n=?Q\xC3\xA9";
	unsigned seed = 7;
	for (int iter = 0; iter < 100000; iter++) {
		size_t n = (size_t)(rand_r(&seed) % 60);
		char *s = malloc(n ? n : 1);
		assert_non_null(s);
		for (size_t i = 0; i < n; i++)
			s[i] = rand_r(&seed) % 16 == 0 ? (char)rand_r(&seed)
						       : alpha[rand_r(&seed) % (sizeof(alpha) - 1)];
		struct addr_list l;
		char err[200];
		if (addr_list_parse(s, n, &l, err, sizeof(err)) == 0) {
			for (size_t i = 0; i < l.n; i++) {
				assert_non_null(addr_domain(l.v[i].addr));
				assert_true(strlen(l.v[i].addr) <= ADDR_MAX_SPEC);
			}
			addr_list_free(&l);
		} else {
			assert_int_equal(errno, EINVAL);
			assert_true(err[0] != '\0');
		}
		free(s);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rfc5322_a1),      cmocka_unit_test(test_rfc5322_a5),
	    cmocka_unit_test(test_rfc5322_a6),      cmocka_unit_test(test_names),
	    cmocka_unit_test(test_comments),        cmocka_unit_test(test_groups),
	    cmocka_unit_test(test_routes_literals), cmocka_unit_test(test_local_parts),
	    cmocka_unit_test(test_8bit_same),       cmocka_unit_test(test_errors),
	    cmocka_unit_test(test_limits),          cmocka_unit_test(test_prefixes_roundtrip),
	    cmocka_unit_test(test_random_garbage),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
