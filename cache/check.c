/* check.c - `mailfs --check-config` (see check.h).
 *
 * For each account: password (password or password_cmd), connection with the account's
 * TLS settings, login, capabilities, the folder list with STATUS counts; then, for an
 * account with an smtp URL, what the sender will do before its first message: connect
 * (TLS verified as configured), EHLO, STARTTLS, AUTH, QUIT. It changes nothing on the
 * servers (STATUS never selects, so no flag and no \Recent changes; no MAIL is sent). */
#include "cache/check.h"

#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

#include "cache/account.h"
#include "net/imap.h"
#include "net/smtp.h"


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

/* Log in to the account's SMTP server as the sender will. 0, or -1 with a reason in err. */
static int
check_smtp(const struct cfg_account *a, const char *password, FILE *out, char *err,
	   size_t errlen)
{
	struct smtp *c = NULL;
	int ret = -1;
	if (account_smtp_connect(a, 15000, &c, err, errlen) != SMTP_OK)
		goto out;
	char desc[128];
	fprintf(out, "  smtp connection: %s\n", conn_describe(smtp_conn(c), desc, sizeof(desc)));
	if (account_smtp_login(c, a, password, err, errlen) != SMTP_OK)
		goto out;
	uint64_t limit = smtp_size_limit(c);
	if (limit > 0)
		fprintf(out, "  smtp login: ok (messages up to %llu bytes)\n",
			(unsigned long long)limit);
	else
		fprintf(out, "  smtp login: ok\n");
	ret = 0;
out:
	smtp_close(&c);
	return ret;
}

/* The `folders` patterns, as the sync engine applies them to a folder's shown path. */
static bool
wanted(const struct cfg_account *a, const char *path)
{
	if (a->nfolders == 0)
		return true;
	for (size_t i = 0; i < a->nfolders; i++)
		if (fnmatch(a->folders[i], path, 0) == 0)
			return true;
	return false;
}

int
check_count(const struct cfg_account *a, uint64_t *messages_r, char *err, size_t errlen)
{
	char *password = NULL;
	struct imap *c = NULL;
	struct imap_mbox *list = NULL;
	size_t n = 0;
	uint64_t total = 0;
	int ret = -1;
	if (!a->imap.set) {
		snprintf(err, errlen, "not an IMAP account");
		goto out;
	}
	if (cfg_password(a, &password, err, errlen) < 0)
		goto out;
	c = account_imap_open(a, "count", 15000, password, err, errlen);
	cfg_secret_free(&password);
	if (c == NULL)
		goto out;
	if (imap_list(c, &list, &n) != IMAP_OK) {
		snprintf(err, errlen, "LIST failed: %s", imap_errmsg(c));
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		char path[2048];
		imap_mbox_path(&list[i], path, sizeof(path));
		if ((list[i].flags & IMAP_MBOX_NOSELECT) || !wanted(a, path))
			continue;
		struct imap_status_info st;
		if (imap_status(c, list[i].raw, &st) != IMAP_OK) {
			snprintf(err, errlen, "STATUS %s failed: %s", path, imap_errmsg(c));
			goto out;
		}
		total += st.messages;
	}
	*messages_r = total;
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
	if (a->pop3.set) {
		struct pop3 *pc = account_pop3_open(a, "check", 10000, password, NULL, err, errlen);
		if (pc == NULL)
			goto out;
		(void)pop3_quit(pc);
		pop3_close(&pc);
		ret = 0;
		goto out;
	}
	if ((c = account_imap_open(a, "check", 10000, password, err, errlen)) == NULL)
		goto out;
	ret = 0;
out:
	cfg_secret_free(&password);
	imap_close(&c);
	return ret;
}

static int
count_listed(void *ctx, uint32_t msg, uint64_t size)
{
	uint64_t *n = ctx;
	n[0]++;
	n[1] += size;
	return 0;
}

/* Log in to a POP3 account, say what it offers and how much mail waits; changes nothing. */
static int
check_pop3(const struct cfg_account *a, const char *password, FILE *out, char *err,
	   size_t errlen)
{
	struct pop3 *c = account_pop3_open(a, "check", 10000, password, NULL, err, errlen);
	if (c == NULL)
		return -1;
	int ret = -1;
	fprintf(out, "  pop3: logged in%s%s\n", pop3_has_capa(c, "UIDL") ? ", UIDL" : "",
		pop3_has_capa(c, "TOP") ? ", TOP" : "");
	uint64_t n[2] = {0, 0};
	if (pop3_list(c, count_listed, n) != POP3_SUCCESS) {
		snprintf(err, errlen, "LIST failed: %s", pop3_errmsg(c));
		goto out;
	}
	fprintf(out, "  INBOX: %llu messages, %llu bytes%s\n", (unsigned long long)n[0],
		(unsigned long long)n[1],
		a->pop3_delete == CFG_POP3_DELETE_AFTER_CACHE ? " (pop3_delete = after_cache)" : "");
	if (pop3_quit(c) != POP3_SUCCESS) {
		snprintf(err, errlen, "QUIT failed: %s", pop3_errmsg(c));
		goto out;
	}
	ret = 0;
out:
	pop3_close(&c);
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
		char err[700] = "", smtp_err[700] = "";
		char *password = NULL;
		int r = -1, rs = 0;
		bool have_password = cfg_password(a, &password, err, sizeof(err)) == 0;
		if (have_password) {
			if (a->imap.set)
				r = check_imap(a, password, out, err, sizeof(err));
			else
				r = check_pop3(a, password, out, err, sizeof(err));
			if (r != 0)
				fprintf(out, "  FAILED: %s\n", err);
		}
		/* The sender logs in with the same password: with none there is nothing to try. */
		if (a->smtp.set && have_password) {
			fprintf(out, "  smtp: %s://%s:%u%s\n", scheme(&a->smtp), a->smtp.host,
				a->smtp.port,
				!a->tls ? " (plaintext: tls = off)"
				: a->smtp.implicit_tls ? "" : " (STARTTLS)");
			fflush(out);
			rs = check_smtp(a, password, out, smtp_err, sizeof(smtp_err));
			if (rs != 0)
				fprintf(out, "  smtp FAILED: %s\n", smtp_err);
		}
		cfg_secret_free(&password);
		if (r == 0 && rs == 0) {
			fprintf(out, "  ok\n");
		} else {
			if (!have_password)
				fprintf(out, "  FAILED: %s\n", err);
			/* One line per account on errout, naming every part that failed. */
			fprintf(errout, "mailfs: account '%s': %s%s%s%s\n", a->name,
				r != 0 ? err : "", r != 0 && rs != 0 ? "; " : "",
				rs != 0 ? "SMTP: " : "", rs != 0 ? smtp_err : "");
			failed++;
		}
		fflush(out);
	}
	return failed;
}
