/* check.c - `mailfs --check-config` (see check.h).
 *
 * For each account: password (password or password_cmd), connection with the account's
 * TLS settings, login, capabilities, the folder list with STATUS counts. It changes
 * nothing on the server (STATUS never selects, so no flag and no \Recent changes). */
#include "cache/check.h"

#include <stdlib.h>
#include <string.h>

#include "cache/account.h"
#include "net/imap.h"


static int
cmp_mbox(const void *a, const void *b)
{
	const struct imap_mbox *x = a, *y = b;
	bool xi = strcmp(x->raw, "INBOX") == 0, yi = strcmp(y->raw, "INBOX") == 0;
	if (xi != yi)
		return xi ? -1 : 1;
	return strcmp(x->name, y->name);
}

static const char *
special_use(unsigned flags)
{
	if (flags & IMAP_MBOX_SENT)
		return " [sent]";
	if (flags & IMAP_MBOX_DRAFTS)
		return " [drafts]";
	if (flags & IMAP_MBOX_TRASH)
		return " [trash]";
	if (flags & IMAP_MBOX_JUNK)
		return " [junk]";
	if (flags & IMAP_MBOX_ARCHIVE)
		return " [archive]";
	return "";
}

/* Returns 0 or -1 with a reason in err. */
static int
check_imap(const struct cfg_account *a, const char *password, FILE *out, char *err,
	   size_t errlen)
{
	struct imap *c = NULL;
	struct imap_mbox *list = NULL;
	size_t n = 0;
	int ret = -1;
	if ((c = account_imap_connect(a, NULL, 15000, err, errlen)) == NULL)
		goto out;
	char desc[128];
	fprintf(out, "  connection: %s\n", conn_describe(imap_conn(c), desc, sizeof(desc)));
	if (account_imap_login(c, a, password, err, errlen) != IMAP_OK)
		goto out;
	fprintf(out, "  capabilities: %s\n", imap_caps(c));
	if (imap_list(c, &list, &n) != IMAP_OK) {
		snprintf(err, errlen, "LIST failed: %s", imap_errmsg(c));
		goto out;
	}
	qsort(list, n, sizeof(*list), cmp_mbox);
	fprintf(out, "  folders: %zu\n", n);
	uint64_t total = 0;
	for (size_t i = 0; i < n; i++) {
		char name[1024];
		imap_mbox_path(&list[i], name, sizeof(name));
		if (list[i].flags & IMAP_MBOX_NOSELECT) {
			fprintf(out, "    %-32s (not selectable)\n", name);
			continue;
		}
		struct imap_status_info st;
		if (imap_status(c, list[i].raw, &st) != IMAP_OK) {
			snprintf(err, errlen, "STATUS %s failed: %s", name, imap_errmsg(c));
			goto out;
		}
		total += st.messages;
		fprintf(out, "    %-32s %7u messages, %u unseen%s%s\n", name, st.messages,
			st.unseen, special_use(list[i].flags),
			list[i].flags & IMAP_MBOX_BAD_NAME ? " (name is not modified UTF-7)" : "");
	}
	fprintf(out, "  messages in all: %llu\n", (unsigned long long)total);
	ret = 0;
out:
	imap_mbox_list_free(&list, n);
	imap_close(&c);
	return ret;
}

int
check_login(const struct cfg_account *a, char *err, size_t errlen)
{
	char *password = NULL;
	struct imap *c = NULL;
	int ret = -1;
	if (cfg_password(a, &password, err, errlen) < 0)
		goto out;
	if ((c = account_imap_open(a, "check", 10000, password, err, errlen)) == NULL)
		goto out;
	ret = 0;
out:
	cfg_secret_free(&password);
	imap_close(&c);
	return ret;
}

static const char *
scheme(const struct cfg_url *u)
{
	switch (u->proto) {
	case CFG_PROTO_IMAP:
		return u->implicit_tls ? "imaps" : "imap";
	case CFG_PROTO_POP3:
		return u->implicit_tls ? "pop3s" : "pop3";
	case CFG_PROTO_SMTP:
		return u->implicit_tls ? "smtps" : "smtp";
	}
	return "?";
}

int
check_accounts(const struct cfg *cfg, FILE *out, FILE *errout)
{
	int failed = 0;
	for (size_t i = 0; i < cfg->naccounts; i++) {
		const struct cfg_account *a = &cfg->accounts[i];
		const struct cfg_url *u = a->imap.set ? &a->imap : &a->pop3;
		fprintf(out, "account %s: %s://%s:%u as %s\n", a->name, scheme(u), u->host, u->port,
			a->user);
		fflush(out);
		char err[700] = "";
		char *password = NULL;
		int r = -1;
		if (cfg_password(a, &password, err, sizeof(err)) == 0) {
			if (a->imap.set)
				r = check_imap(a, password, out, err, sizeof(err));
			else
				snprintf(err, sizeof(err),
					 "POP3 accounts cannot be checked yet: this build has no POP3 "
					 "client");
		}
		cfg_secret_free(&password);
		if (a->smtp.set)
			fprintf(out, "  outbox: %s://%s:%u (sending arrives with the outbox)\n",
				scheme(&a->smtp), a->smtp.host, a->smtp.port);
		if (r == 0) {
			fprintf(out, "  ok\n");
		} else {
			fprintf(out, "  FAILED: %s\n", err);
			fprintf(errout, "mailfs: account '%s': %s\n", a->name, err);
			failed++;
		}
		fflush(out);
	}
	return failed;
}
