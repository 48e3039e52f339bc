/* mail-header.c - find, unfold and trim one header field (see mail-header.h).
 *
 * What it does: walks the header block line by line (memchr for LF), recognises the
 * start of each field, and for the first one with the wanted name collects its
 * continuation lines, then appends the value with every line ending removed and the
 * white space at both ends trimmed. Linear in len; no allocation besides out.
 *
 * What it does not do: no decoding of encoded-words, no parsing of the value's syntax, no
 * check that the header is valid RFC 5322 (8-bit bytes and bare CRs are passed through).
 */
#include "net/mail-header.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

static bool
is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

/* ftext = %d33-57 / %d59-126 ; printable US-ASCII except ":"   (RFC 5322 §3.6.8) */
static bool
is_ftext(char c)
{
	return c >= 33 && c <= 126 && c != ':';
}

/* One physical line: hdr[start..end) without its line ending; next is where the
 * following line starts (len at the end). */
struct line {
	size_t start, end, next;
};

static struct line
line_at(const char *hdr, size_t len, size_t pos)
{
	struct line l = {pos, len, len};
	const char *lf = memchr(hdr + pos, '\n', len - pos);

	if (lf != NULL) {
		l.end = (size_t)(lf - hdr);
		l.next = l.end + 1;
	}
	/* CRLF: the CR belongs to the line ending (also a CR at the very end of the input,
	 * most likely a CRLF cut short) */
	if (l.end > l.start && hdr[l.end - 1] == '\r')
		l.end--;
	return l;
}

/* Append hdr[a..b) with every line ending (LF, or CR LF) removed: inside a field's
 * extent each of them is a fold.
 *   unfolding = removing any CRLF that is immediately followed by WSP (§2.2.3) */
static int
append_unfolded(const char *hdr, size_t a, size_t b, struct buf *out)
{
	while (a < b) {
		const char *lf = memchr(hdr + a, '\n', b - a);
		if (lf == NULL)
			return buf_append(out, hdr + a, b - a);
		size_t end = (size_t)(lf - hdr);
		size_t seg_end = end > a && hdr[end - 1] == '\r' ? end - 1 : end;
		if (buf_append(out, hdr + a, seg_end - a) < 0)
			return -1;
		a = end + 1;
	}
	return 0;
}

int
mail_header_get(const char *hdr, size_t len, const char *name, struct buf *out)
{
	size_t nlen = strlen(name);
	size_t pos = 0;

	while (pos < len) {
		struct line l = line_at(hdr, len, pos);
		pos = l.next;
		/* the empty line ends the header block */
		if (l.end == l.start)
			return 0;
		/* a continuation of a field we are not interested in (or of nothing) */
		if (is_wsp(hdr[l.start]))
			continue;
		/* field-name *WSP ":" */
		size_t i = l.start;
		while (i < l.end && is_ftext(hdr[i]))
			i++;
		size_t name_end = i;
		while (i < l.end && is_wsp(hdr[i]))
			i++;
		if (name_end == l.start || i == l.end || hdr[i] != ':')
			continue;
		if (name_end - l.start != nlen || strncasecmp(hdr + l.start, name, nlen) != 0)
			continue;

		/* Found: the value runs over every following line that starts with WSP. */
		size_t a = i + 1, b = l.end;
		while (pos < len && is_wsp(hdr[pos])) {
			struct line c = line_at(hdr, len, pos);
			b = c.end;
			pos = c.next;
		}
		/* Trim SP/HTAB and folds at both ends. */
		while (a < b) {
			if (is_wsp(hdr[a]) || hdr[a] == '\n')
				a++;
			else if (hdr[a] == '\r' && a + 1 < b && hdr[a + 1] == '\n')
				a += 2;
			else
				break;
		}
		while (b > a) {
			if (is_wsp(hdr[b - 1]))
				b--;
			else if (hdr[b - 1] == '\n')
				b -= b - 1 > a && hdr[b - 2] == '\r' ? 2 : 1;
			else
				break;
		}
		size_t start = out->len;
		if (append_unfolded(hdr, a, b, out) < 0) {
			out->len = start;
			if (out->data != NULL)
				out->data[start] = '\0';
			return -1;
		}
		/* an empty value still gets a terminated (allocated) buffer */
		if (out->data == NULL && buf_append(out, "", 0) < 0)
			return -1;
		return 1;
	}
	return 0;
}
