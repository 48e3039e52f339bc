/* check.h - `mailfs --check-config`: connect and log in to every configured account and
 * report what was found (capabilities, folders with message counts), and log in to the
 * account's SMTP server as the sender will (TLS verified as configured, AUTH), so that a
 * server the outbox cannot use is reported at set-up and not at the first send.
 *
 * Lives in cache/ because it drives net/ for each account as the sync engine will; it
 * knows nothing of FUSE. */
#ifndef MAILFS_CHECK_H
#define MAILFS_CHECK_H

#include <stdint.h>
#include <stdio.h>

#include "cache/config.h"

/* Check every account of `cfg`, printing a report to `out` and one line per failing
 * account to `errout` ("mailfs: account 'x': <reason>", "...: SMTP: <reason>", or both
 * joined by "; "). An account fails when its IMAP (or POP3) check or its SMTP check
 * fails. Returns the number of accounts that failed (0: all good). */
int check_accounts(const struct cfg *cfg, FILE *out, FILE *errout);

/* Connect and log in to the account's server, then log out: 0, or -1 with a one-line
 * reason in err (for a mount starting with an empty cache). */
int check_login(const struct cfg_account *acct, char *err, size_t errlen);

/* Log in (asking for the password again) and count the messages of the folders the sync
 * engine will read (the `folders` patterns; STATUS, which changes nothing): 0 and
 * *messages_r, or -1 with a one-line reason in err. For the progress of a first sync. */
int check_count(const struct cfg_account *acct, uint64_t *messages_r, char *err,
		size_t errlen);

#endif
