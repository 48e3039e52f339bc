/* account.h - connections for an account: the net/ options built from a struct cfg_account
 * (server, port, TLS settings), an IMAP client connected and logged in, an SMTP login with
 * the account's mechanism.
 *
 * Does not look up or cache passwords: each caller keeps its own policy (the sync engine
 * caches the secret and forgets it when the server refuses it, the sender hands out
 * copies, --check-config asks once) and passes the password in. Messages in err are one
 * line and never contain the password.
 *
 * Ownership: the caller owns what it passes in; a client returned is the caller's to
 * close (imap_close, smtp_close). */
#ifndef MAILFS_ACCOUNT_H
#define MAILFS_ACCOUNT_H

#include <stdbool.h>
#include <stddef.h>

#include "cache/config.h"
#include "net/imap.h"
#include "net/pop3.h"
#include "net/smtp.h"

/* Connect to the account's IMAP server (its imap URL, `tls`, `ca_file`, `tls_verify`),
 * each wait at most timeout_ms; traces are named "imap NAME WHO", or "imap NAME" when who
 * is NULL. Returns the client (not logged in), or NULL with a one-line reason in err. */
struct imap *account_imap_connect(const struct cfg_account *acct, const char *who,
				  int timeout_ms, char *err, size_t errlen);

/* Log in on c as the account's user with `password`. IMAP_OK, or the error (IMAP_ERR_AUTH
 * when the server refused the password) with the server's one-line message in err; c is
 * left open either way. */
enum imap_err account_imap_login(struct imap *c, const struct cfg_account *acct,
				 const char *password, char *err, size_t errlen);

/* account_imap_connect() then account_imap_login(): the logged-in client, or NULL with a
 * one-line reason in err (the connection, if any, closed). */
struct imap *account_imap_open(const struct cfg_account *acct, const char *who, int timeout_ms,
			       const char *password, char *err, size_t errlen);

/* Connect to the account's SMTP server (its smtp URL and TLS settings), each wait at most
 * timeout_ms; traces are named "smtp NAME". Returns SMTP_OK and *c_r, or the error of
 * smtp_connect() (SMTP_ERR_NOTLS: the server does not offer the STARTTLS the account
 * requires) with a one-line reason in err. */
enum smtp_err account_smtp_connect(const struct cfg_account *acct, int timeout_ms,
				   struct smtp **c_r, char *err, size_t errlen);

/* Authenticate on c with the account's `auth` mechanism (default: the best offered), user
 * and `secret`. SMTP_OK, or the error of smtp_login() (SMTP_ERR_AUTH: refused) with the
 * server's one-line message in err; c is left open either way. */
enum smtp_err account_smtp_login(struct smtp *c, const struct cfg_account *acct,
				 const char *secret, char *err, size_t errlen);

/* Connect to the account's POP3 server (its pop3 URL: STLS required for pop3://, implicit
 * TLS for pop3s://; `tls`, `ca_file`, `tls_verify`) and log in as the account's user,
 * each wait at most timeout_ms; traces "pop3 NAME WHO". The logged-in client, or NULL with
 * a one-line reason in err; *auth_r (may be NULL) is set when the server refused the
 * password. */
struct pop3 *account_pop3_open(const struct cfg_account *acct, const char *who, int timeout_ms,
			       const char *password, bool *auth_r, char *err, size_t errlen);

#endif
