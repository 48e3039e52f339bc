/* account.c - connections for an account (see account.h).
 *
 * Builds struct imap_opts and struct smtp_opts from the account's configuration in one
 * place, so the sync engine, the sender and --check-config connect the same way. Knows
 * nothing of passwords beyond passing them to net/, nothing of the store or FUSE. */
#include "cache/account.h"

#include <stdio.h>

static void
imap_opts_of(const struct cfg_account *a, int timeout_ms, const char *trace,
	     struct imap_opts *o_r)
{
	*o_r = (struct imap_opts){
		.host = a->imap.host,
		.port = a->imap.port,
		.implicit_tls = a->imap.implicit_tls,
		.plaintext = !a->tls,
		.tls = { .ca_file = a->ca_file, .verify = a->tls_verify },
		.timeout_ms = timeout_ms,
		.trace = trace,
	};
}

static void
smtp_opts_of(const struct cfg_account *a, int timeout_ms, const char *trace,
	     struct smtp_opts *o_r)
{
	*o_r = (struct smtp_opts){
		.host = a->smtp.host,
		.port = a->smtp.port,
		.implicit_tls = a->smtp.implicit_tls,
		.plaintext = !a->tls,
		.tls = { .ca_file = a->ca_file, .verify = a->tls_verify },
		.timeout_ms = timeout_ms,
		.trace = trace,
	};
}

struct imap *
account_imap_connect(const struct cfg_account *acct, const char *who, int timeout_ms,
		     char *err, size_t errlen)
{
	char trace[96];
	if (who != NULL)
		snprintf(trace, sizeof(trace), "imap %s %s", acct->name, who);
	else
		snprintf(trace, sizeof(trace), "imap %s", acct->name);
	struct imap_opts o;
	imap_opts_of(acct, timeout_ms, trace, &o);
	struct imap *c = NULL;
	if (imap_connect(&o, &c, err, errlen) != IMAP_OK)
		return NULL;
	return c;
}

enum imap_err
account_imap_login(struct imap *c, const struct cfg_account *acct, const char *password,
		   char *err, size_t errlen)
{
	enum imap_err e = imap_login(c, acct->user, password);
	if (e != IMAP_OK)
		snprintf(err, errlen, "%s", imap_errmsg(c));
	return e;
}

struct imap *
account_imap_open(const struct cfg_account *acct, const char *who, int timeout_ms,
		  const char *password, char *err, size_t errlen)
{
	struct imap *c = account_imap_connect(acct, who, timeout_ms, err, errlen);
	if (c != NULL && account_imap_login(c, acct, password, err, errlen) != IMAP_OK)
		imap_close(&c);
	return c;
}

enum smtp_err
account_smtp_connect(const struct cfg_account *acct, int timeout_ms, struct smtp **c_r,
		     char *err, size_t errlen)
{
	char trace[96];
	snprintf(trace, sizeof(trace), "smtp %s", acct->name);
	struct smtp_opts o;
	smtp_opts_of(acct, timeout_ms, trace, &o);
	return smtp_connect(&o, c_r, err, errlen);
}

enum smtp_err
account_smtp_login(struct smtp *c, const struct cfg_account *acct, const char *secret,
		   char *err, size_t errlen)
{
	enum smtp_auth_mech mech = acct->auth == CFG_AUTH_PLAIN     ? SMTP_AUTH_PLAIN
				   : acct->auth == CFG_AUTH_LOGIN   ? SMTP_AUTH_LOGIN
				   : acct->auth == CFG_AUTH_XOAUTH2 ? SMTP_AUTH_XOAUTH2
								    : SMTP_AUTH_AUTO;
	enum smtp_err e = smtp_login(c, mech, acct->user, secret);
	if (e != SMTP_OK)
		snprintf(err, errlen, "%s", smtp_errmsg(c));
	return e;
}

struct pop3 *
account_pop3_open(const struct cfg_account *acct, const char *who, int timeout_ms,
		  const char *password, bool *auth_r, char *err, size_t errlen)
{
	char trace[96];
	snprintf(trace, sizeof(trace), "pop3 %s%s%s", acct->name, who ? " " : "", who ? who : "");
	struct pop3_opts o = {
		.host = acct->pop3.host,
		.port = acct->pop3.port,
		.implicit_tls = acct->pop3.implicit_tls,
		.plaintext = !acct->tls,
		.tls = { .ca_file = acct->ca_file, .verify = acct->tls_verify },
		.timeout_ms = timeout_ms,
		.trace = trace,
	};
	if (auth_r != NULL)
		*auth_r = false;
	struct pop3 *c = NULL;
	if (pop3_connect(&o, &c, err, errlen) != POP3_SUCCESS)
		return NULL;
	enum pop3_err e = pop3_login(c, acct->user, password);
	if (e != POP3_SUCCESS) {
		snprintf(err, errlen, "%s", pop3_errmsg(c));
		if (auth_r != NULL)
			*auth_r = e == POP3_ERR_AUTH;
		pop3_close(&c);
	}
	return c;
}
