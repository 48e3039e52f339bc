/* sasl.h - SASL mechanism encodings shared by the IMAP, POP3 and SMTP clients
 * (RFC 4616 PLAIN, the LOGIN mechanism, RFC 4648 base64). Pure functions, no I/O.
 * Results that hold a secret must be released with sasl_free_secret(). */
#ifndef MAILFS_SASL_H
#define MAILFS_SASL_H

#include <stddef.h>

/* base64 of `len` bytes, NUL-terminated, new string; NULL on ENOMEM. */
char *sasl_base64_encode(const void *data, size_t len);
/* Decode base64 (RFC 4648, padding required, no white space) into a new buffer that is
 * NUL-terminated; *len_r is the decoded length. NULL with errno EINVAL on bad input. */
unsigned char *sasl_base64_decode(const char *b64, size_t *len_r);

/* The PLAIN initial response: base64("" NUL user NUL password). NULL with errno EINVAL if
 * user or password holds a NUL (impossible in C strings) or is too long (over 4 KiB). */
char *sasl_plain(const char *user, const char *password);

/* The XOAUTH2 initial response: base64("user=" user ^A "auth=Bearer " token ^A ^A). */
char *sasl_xoauth2(const char *user, const char *token);

/* Wipe and free a string that holds a secret; sets *s to NULL. */
void sasl_free_secret(char **s);

#endif
