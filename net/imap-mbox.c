/* imap-mbox.c - IMAP mailboxes: LIST (with SPECIAL-USE and LIST-STATUS), STATUS, SELECT
 * and EXAMINE (with CONDSTORE or QRESYNC), and the untagged data they bring.
 */
#include "net/imap.h"
#include "net/imap-int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "net/imap-utf7.h"
#include "net/log.h"

static unsigned
mbox_flag(const char *attr)
{
	static const struct {
		const char *name;
		unsigned flag;
	} map[] = {
		{ "\\Noselect", IMAP_MBOX_NOSELECT },	   { "\\NonExistent", IMAP_MBOX_NOSELECT },
		{ "\\HasChildren", IMAP_MBOX_HASCHILDREN }, { "\\HasNoChildren", IMAP_MBOX_HASNOCHILDREN },
		{ "\\Sent", IMAP_MBOX_SENT },		   { "\\Drafts", IMAP_MBOX_DRAFTS },
		{ "\\Trash", IMAP_MBOX_TRASH },		   { "\\Junk", IMAP_MBOX_JUNK },
		{ "\\Archive", IMAP_MBOX_ARCHIVE },	   { "\\All", IMAP_MBOX_ALL },
		{ "\\Flagged", IMAP_MBOX_FLAGGED },
	};
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strcasecmp(attr, map[i].name) == 0)
			return map[i].flag;
	return 0;
}

/* mailbox-list = "(" [mbx-list-flags] ")" SP (DQUOTE QUOTED-CHAR DQUOTE / nil) SP mailbox */
enum imap_err
imap_handle_list(struct imap *c, const struct imap_response *r)
{
	struct list_collect *lc = c->list;
	if (lc == NULL)
		return IMAP_OK; /* unsolicited: ignore */
	if (r->nargs < 3 || r->args[0].type != IMAP_ARG_LIST ||
	    (r->args[1].type != IMAP_ARG_NIL && r->args[1].type != IMAP_ARG_STRING) ||
	    !imap_arg_is_string(&r->args[2]))
		return imap_fail(c, IMAP_ERR_PROTOCOL, "malformed LIST response");
	if (lc->overflow)
		return IMAP_OK;
	if (lc->n >= MAX_MAILBOXES) {
		lc->overflow = true;
		log_warn("%s: more than %d mailboxes; ignoring the rest", c->trace, MAX_MAILBOXES);
		return IMAP_OK;
	}
	if (lc->n == lc->size) {
		size_t size = lc->size ? lc->size * 2 : 32;
		struct imap_mbox *p = realloc(lc->items, size * sizeof(*p));
		if (p == NULL)
			return imap_fail(c, IMAP_ERR_PROTOCOL, "out of memory");
		lc->items = p;
		lc->size = size;
	}
	const struct imap_arg *delim = &r->args[1];
	if (delim->type == IMAP_ARG_STRING && delim->len != 1)
		return imap_fail(c, IMAP_ERR_PROTOCOL, "malformed LIST delimiter");
	struct imap_mbox *m = &lc->items[lc->n];
	memset(m, 0, sizeof(*m));
	m->delim = delim->type == IMAP_ARG_STRING ? delim->str[0] : '\0';
	const struct imap_arg *fl = &r->args[0];
	for (size_t i = 0; i < fl->len; i++)
		if (fl->list[i].type == IMAP_ARG_ATOM)
			m->flags |= mbox_flag(fl->list[i].str);
	const char *raw = imap_arg_str(&r->args[2]);
	if (strlen(raw) != r->args[2].len)
		return imap_fail(c, IMAP_ERR_PROTOCOL, "mailbox name holds NUL");
	m->raw = strdup(raw);
	if (strcasecmp(raw, "INBOX") == 0)
		m->name = strdup("INBOX");
	else
		m->name = imap_utf7_decode(raw);
	if (m->name == NULL && m->raw != NULL) {
		/* Not valid modified UTF-7 (some servers send raw UTF-8): keep the raw bytes;
		 * the layer that makes file names escapes what cannot stand in one. */
		m->flags |= IMAP_MBOX_BAD_NAME;
		m->name = strdup(raw);
	}
	if (m->raw == NULL || m->name == NULL) {
		free(m->raw);
		free(m->name);
		return imap_fail(c, IMAP_ERR_PROTOCOL, "out of memory");
	}
	lc->n++;
	return IMAP_OK;
}

/* status-att-list = status-att-val *(SP status-att-val) */
enum imap_err
imap_handle_status(struct imap *c, const struct imap_response *r)
{
	struct imap_status_info *st = c->status;
	if (st == NULL && c->list != NULL && r->nargs >= 1 && imap_arg_is_string(&r->args[0])) {
		/* LIST-STATUS: it follows its mailbox's LIST line (RFC 5819), usually at once. */
		struct list_collect *lc = c->list;
		const char *name = r->args[0].str;
		for (size_t i = lc->n; i > 0 && st == NULL; i--) {
			struct imap_mbox *m = &lc->items[i - 1];
			if (strcmp(m->raw, name) == 0) {
				memset(&m->status, 0, sizeof(m->status));
				m->has_status = true;
				st = &m->status;
			}
		}
	}
	if (st == NULL)
		return IMAP_OK;
	if (r->nargs < 2 || r->args[1].type != IMAP_ARG_LIST || r->args[1].len % 2 != 0)
		return imap_fail(c, IMAP_ERR_PROTOCOL, "malformed STATUS response");
	const struct imap_arg *l = r->args[1].list;
	for (size_t i = 0; i + 1 < r->args[1].len; i += 2) {
		uint64_t v;
		if (imap_arg_u64(&l[i + 1], &v) < 0)
			return imap_fail(c, IMAP_ERR_PROTOCOL, "malformed STATUS value");
		uint32_t v32 = v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
		if (imap_arg_atom_is(&l[i], "MESSAGES"))
			st->messages = v32;
		else if (imap_arg_atom_is(&l[i], "UIDNEXT"))
			st->uidnext = v32;
		else if (imap_arg_atom_is(&l[i], "UIDVALIDITY"))
			st->uidvalidity = v32;
		else if (imap_arg_atom_is(&l[i], "UNSEEN"))
			st->unseen = v32;
		else if (imap_arg_atom_is(&l[i], "HIGHESTMODSEQ"))
			st->highestmodseq = v;
	}
	return IMAP_OK;
}

enum imap_err
imap_list(struct imap *c, struct imap_mbox **list_r, size_t *n_r)
{
	struct list_collect lc = { 0 };
	c->list = &lc;
	enum imap_err e;
	bool ext = imap_has_cap(c, "LIST-EXTENDED");
	bool su = ext && imap_has_cap(c, "SPECIAL-USE");
	bool ls = ext && imap_has_cap(c, "LIST-STATUS");
	if (su || ls)
		e = imap_simple(c, "LIST \"\" \"*\" RETURN (%s%s%s%s)", su ? "SPECIAL-USE" : "",
			   su && ls ? " " : "", ls ? "STATUS (MESSAGES UIDNEXT UIDVALIDITY" : "",
			   !ls ? "" : imap_has_cap(c, "CONDSTORE") ? " HIGHESTMODSEQ)" : ")");
	else
		e = imap_simple(c, "LIST \"\" \"*\"");
	c->list = NULL;
	if (e != IMAP_OK) {
		imap_mbox_list_free(&lc.items, lc.n);
		return e;
	}
	*list_r = lc.items;
	*n_r = lc.n;
	return IMAP_OK;
}

void
imap_mbox_list_free(struct imap_mbox **list, size_t n)
{
	if (*list == NULL)
		return;
	for (size_t i = 0; i < n; i++) {
		free((*list)[i].raw);
		free((*list)[i].name);
	}
	free(*list);
	*list = NULL;
}

char *
imap_mbox_path(const struct imap_mbox *mb, char *out, size_t outlen)
{
	if (outlen == 0)
		return out;
	snprintf(out, outlen, "%s", mb->name);
	if (mb->delim != '\0' && mb->delim != '/')
		for (char *p = out; *p; p++)
			if (*p == mb->delim)
				*p = '/';
	return out;
}

enum imap_err
imap_status(struct imap *c, const char *raw, struct imap_status_info *r)
{
	char q[1024];
	enum imap_err e = imap_quote_mailbox(c, raw, q, sizeof(q));
	if (e != IMAP_OK)
		return e;
	memset(r, 0, sizeof(*r));
	c->status = r;
	e = imap_simple(c, "STATUS %s (MESSAGES UIDNEXT UIDVALIDITY UNSEEN%s)", q,
		   imap_has_cap(c, "CONDSTORE") ? " HIGHESTMODSEQ" : "");
	c->status = NULL;
	return e;
}

/* Around a SELECT or EXAMINE: the info to fill, then the state it leaves. */
static void
select_begin(struct imap *c, struct imap_select_info *r, bool readonly)
{
	memset(r, 0, sizeof(*r));
	r->readonly = readonly;
	c->sel = r;
}

static enum imap_err
select_done(struct imap *c, enum imap_err e)
{
	c->sel = NULL;
	if (e == IMAP_OK)
		imap_set_state(c, ST_SELECTED);
	else if (e == IMAP_ERR_NO && c->state == ST_SELECTED)
		imap_set_state(c, ST_AUTHENTICATED); /* a failed SELECT deselects (RFC 3501 6.3.1) */
	return e;
}

enum imap_err
imap_select(struct imap *c, const char *raw, bool readonly, struct imap_select_info *r)
{
	char q[1024];
	enum imap_err e = imap_quote_mailbox(c, raw, q, sizeof(q));
	if (e != IMAP_OK)
		return e;
	select_begin(c, r, readonly);
	bool condstore = imap_has_cap(c, "CONDSTORE") && !imap_enabled(c, "CONDSTORE") &&
			 !imap_enabled(c, "QRESYNC");
	e = imap_simple(c, "%s %s%s", readonly ? "EXAMINE" : "SELECT", q,
		   condstore ? " (CONDSTORE)" : "");
	return select_done(c, e);
}

enum imap_err
imap_select_qresync(struct imap *c, const char *raw, bool readonly, uint32_t uidvalidity,
		    uint64_t modseq, const char *known_uids, struct imap_select_info *r)
{
	char q[1024];
	enum imap_err e = imap_quote_mailbox(c, raw, q, sizeof(q));
	if (e != IMAP_OK)
		return e;
	if (uidvalidity == 0 || modseq == 0 || !imap_enabled(c, "QRESYNC"))
		return imap_select(c, raw, readonly, r);
	if (known_uids != NULL) {
		const char *p = known_uids;
		uint32_t lo, hi;
		int k;
		while ((k = imap_uidset_next(&p, &lo, &hi)) == 1)
			;
		if (k < 0 || p == known_uids)
			return imap_fail(c, IMAP_ERR_BAD, "known UIDs are not a uid-set");
	}
	select_begin(c, r, readonly);
	e = imap_simple(c, "%s %s (QRESYNC (%u %llu%s%s))", readonly ? "EXAMINE" : "SELECT", q,
		   uidvalidity, (unsigned long long)modseq, known_uids ? " " : "",
		   known_uids ? known_uids : "");
	return select_done(c, e);
}

bool
imap_selected(const struct imap *c)
{
	return c->state == ST_SELECTED;
}
