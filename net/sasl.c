/* sasl.c - SASL encodings (see sasl.h). No I/O, no protocol state. */
#include "net/sasl.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/tls.h"

static const char b64chars[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *
sasl_base64_encode(const void *data, size_t len)
{
	const unsigned char *p = data;
	if (len > (SIZE_MAX - 1) / 4 * 3 - 3) {
		errno = ENOMEM;
		return NULL;
	}
	char *out = malloc((len + 2) / 3 * 4 + 1);
	if (out == NULL)
		return NULL;
	size_t o = 0;
	for (size_t i = 0; i < len; i += 3) {
		unsigned v = (unsigned)p[i] << 16;
		if (i + 1 < len)
			v |= (unsigned)p[i + 1] << 8;
		if (i + 2 < len)
			v |= p[i + 2];
		out[o++] = b64chars[(v >> 18) & 63];
		out[o++] = b64chars[(v >> 12) & 63];
		out[o++] = i + 1 < len ? b64chars[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < len ? b64chars[v & 63] : '=';
	}
	out[o] = '\0';
	return out;
}

static int
b64val(char c)
{
	const char *p = c ? strchr(b64chars, c) : NULL;
	return p ? (int)(p - b64chars) : -1;
}

unsigned char *
sasl_base64_decode(const char *b64, size_t *len_r)
{
	size_t n = strlen(b64);
	if (n % 4 != 0) {
		errno = EINVAL;
		return NULL;
	}
	unsigned char *out = malloc(n / 4 * 3 + 1);
	if (out == NULL)
		return NULL;
	size_t o = 0;
	for (size_t i = 0; i < n; i += 4) {
		int v[4];
		int pad = 0;
		for (int k = 0; k < 4; k++) {
			char ch = b64[i + k];
			if (ch == '=' && i + 4 == n && k >= 2) {
				v[k] = 0;
				pad++;
				continue;
			}
			v[k] = pad ? -1 : b64val(ch);
			if (v[k] < 0)
				goto bad;
		}
		unsigned w = (unsigned)v[0] << 18 | (unsigned)v[1] << 12 | (unsigned)v[2] << 6 |
			     (unsigned)v[3];
		out[o++] = (unsigned char)(w >> 16);
		if (pad < 2)
			out[o++] = (unsigned char)(w >> 8);
		if (pad < 1)
			out[o++] = (unsigned char)w;
	}
	out[o] = '\0';
	*len_r = o;
	return out;
bad:
	free(out);
	errno = EINVAL;
	return NULL;
}

static char *
encode_parts(const char *const *parts, const size_t *lens, size_t nparts)
{
	size_t total = 0;
	for (size_t i = 0; i < nparts; i++) {
		if (lens[i] > 4096) {
			errno = EINVAL;
			return NULL;
		}
		total += lens[i];
	}
	unsigned char *raw = malloc(total + 1);
	if (raw == NULL)
		return NULL;
	size_t o = 0;
	for (size_t i = 0; i < nparts; i++) {
		memcpy(raw + o, parts[i], lens[i]);
		o += lens[i];
	}
	char *b64 = sasl_base64_encode(raw, total);
	tls_cleanse(raw, total);
	free(raw);
	return b64;
}

char *
sasl_plain(const char *user, const char *password)
{
	const char *parts[] = { "", user, "", password };
	size_t lens[] = { 1, strlen(user), 1, strlen(password) };
	/* parts[0] and parts[2] contribute their terminating NUL as the separator. */
	return encode_parts(parts, lens, 4);
}

char *
sasl_xoauth2(const char *user, const char *token)
{
	const char *parts[] = { "user=", user, "\001auth=Bearer ", token, "\001\001" };
	size_t lens[] = { 5, strlen(user), 13, strlen(token), 2 };
	return encode_parts(parts, lens, 5);
}

void
sasl_free_secret(char **s)
{
	if (*s == NULL)
		return;
	tls_cleanse(*s, strlen(*s));
	free(*s);
	*s = NULL;
}
