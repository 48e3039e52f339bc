/* address.h - parse RFC 5322 address lists (To, Cc, Bcc, From) into the addresses an SMTP
 * envelope needs and the display names a person reads.
 *
 *   address-list  = (address *("," address)) / obs-addr-list          (RFC 5322 §3.4)
 *   address       = mailbox / group
 *   mailbox       = name-addr / addr-spec
 *   name-addr     = [display-name] angle-addr
 *   angle-addr    = [CFWS] "<" addr-spec ">" [CFWS] / obs-angle-addr
 *   group         = display-name ":" [group-list] ";" [CFWS]
 *   addr-spec     = local-part "@" domain                              (§3.4.1)
 *   local-part    = dot-atom / quoted-string / obs-local-part
 *   domain        = dot-atom / domain-literal / obs-domain
 *   obs-angle-addr = [CFWS] "<" obs-route addr-spec ">" [CFWS]         (§4.4)
 *   obs-route     = obs-domain-list ":"
 *   obs-addr-list = *([CFWS] ",") address *("," [address / CFWS])
 *   obs-local-part = word *("." word)       obs-domain = atom *("." atom)
 *   obs-phrase    = word *(word / "." / CFWS)
 *   atext, qtext, dtext, ctext += UTF8-non-ascii                       (RFC 6532 §3.2)
 *
 * A pure function over bytes: no I/O, no global state, safe from any thread.
 *
 * What the parser accepts: display names made of atoms, quoted strings (with \-escapes)
 * and RFC 2047 encoded-words, and dots (obs-phrase: "John Q. Public"); comments, nested
 * and with \-escapes, wherever CFWS is allowed, also between the parts of an addr-spec
 * (obs forms, "pete(his account)@silly.test"); folds (CRLF or LF followed by SP/HTAB)
 * where white space is allowed, although callers should pass unfolded values; groups,
 * whose members are returned in place of the group, an empty group contributing none;
 * obs-route ("<@a,@b:user@x>", the route is dropped); empty list elements (",,");
 * UTF-8 in local parts, domains, quoted strings and comments (RFC 6532); domain literals
 * ("[192.0.2.1]", "[IPv6:2001:db8::1]"). Tolerated beyond the grammar: a group not closed
 * by ";" at the very end of the value ("undisclosed-recipients:"), a local part with
 * leading, trailing or doubled dots (Japanese mobile carriers hand those out: it is
 * written quoted, "john."@example.jp, which the receiving server reads as the same
 * mailbox).
 *
 * What it refuses (errno EINVAL and a one-line message in err saying what and where, the
 * offset counting bytes from the start of in): an address without "@" ("address 'bob' has
 * no domain"), an empty domain or local part, "<>", an unbalanced '"', '(', ')', '<',
 * '>', '[' or ']', a NUL or any other control byte (HTAB only as white space), a '\'
 * outside quoted strings and comments, an escape or '[' inside a domain literal, words
 * between which a "," or "<...>" is missing, a group inside a group, a list of only
 * commas, invalid UTF-8 in an addr-spec, more than ADDR_MAX_COUNT addresses, an addr-spec
 * longer than ADDR_MAX_SPEC bytes. Nothing is allocated without bound.
 *
 * What it does not do: no check that a domain is a host name that exists or that a domain
 * literal holds a valid IP address, no IDNA conversion, no RFC 2047 encoding (see
 * rfc2047.h for decoding), no unfolding of a whole header (see mail-header.h).
 */
#ifndef MAILFS_ADDRESS_H
#define MAILFS_ADDRESS_H

#include <stdbool.h>
#include <stddef.h>

#define ADDR_MAX_COUNT 1000 /* addresses in one list */
#define ADDR_MAX_SPEC 998   /* bytes of one addr-spec, the RFC 5322 §2.1.1 line limit */

struct addr {
	/* The display name, decoded to valid UTF-8 by rfc2047_decode(): the words of the
	 * phrase with quotes and escapes removed, comments dropped, one SP where the words
	 * were separated by white space or a comment. NULL when there is none or it is
	 * empty. A group's name is not kept. Owned. */
	char *name;
	/* The addr-spec "local@domain" exactly as it goes into an SMTP envelope
	 * (RFC 5321 §4.1.2): comments and white space removed, obs-route dropped; the local
	 * part unquoted when its value is a dot-atom, else written as one quoted-string with
	 * only '"' and '\' escaped; the domain's atoms joined by "." in the case they were
	 * written, or the domain literal with its white space removed. Always holds exactly
	 * one "@" outside the quoted local part and the domain literal, is valid UTF-8,
	 * holds no control byte and is at most ADDR_MAX_SPEC bytes. Owned. */
	char *addr;
};

struct addr_list {
	struct addr *v; /* owned; NULL when n == 0 */
	size_t n;
};

/* Parse the address-list field value in[0..len) (need not be NUL-terminated). Groups
 * contribute their members in order; the result may be empty (n == 0): when in holds
 * only white space and comments, or only empty groups. Whether an empty list is
 * acceptable is the caller's decision.
 *
 * out is overwritten (not freed first) and owned by the caller, who releases it with
 * addr_list_free(); on error it is left empty. err (may be NULL when errlen is 0)
 * receives a NUL-terminated one-line message on EINVAL, e.g. "unbalanced '<' at offset
 * 12", "address 'bob' has no domain".
 * Returns 0, or -1 with errno EINVAL (malformed, see above) or ENOMEM. */
int addr_list_parse(const char *in, size_t len, struct addr_list *out, char *err, size_t errlen);

/* Release every name and addr of l; l is empty again (v NULL, n 0). */
void addr_list_free(struct addr_list *l);

/* True if the addr-spec holds a byte >= 0x80, so that sending it needs the SMTPUTF8
 * extension (RFC 6531). */
bool addr_is_8bit(const char *addr);

/* The domain of the addr-spec addr (as addr_list_parse() writes it): the text after the
 * "@" that follows the local part, quoted or not; NULL when there is no such "@". */
const char *addr_domain(const char *addr);

/* True if the addr-specs a and b (as addr_list_parse() writes them) name the same
 * mailbox for deduplication: local parts compared byte for byte (RFC 5321 §2.4: only the
 * receiving host may interpret them), domains compared ignoring ASCII case. */
bool addr_same(const char *a, const char *b);

#endif
