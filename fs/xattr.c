/* xattr.c - extended attributes: user.mail.flags (read and written), user.mail.uid,
 * user.mail.message-id, user.mail.status (cached, on server, or why the server fails to
 * send it: cache/setaside.h). Names outside user.mail.* answer EOPNOTSUPP, so coreutils stops
 * asking (one request per listing instead of two per file).
 */
#include "fs/fs-internal.h"

#include <errno.h>
#include <sys/xattr.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cache/change.h"
#include "cache/setaside.h"
#include "cache/store.h"
#include "net/buf.h"
#include "net/log.h"

/* ---- extended attributes -------------------------------------------------------------- */

/* "cached", "on server", "local" (not on the server yet), or "set aside: REASON (N
 * failures since DATE, retried after DATE)", "failing: REASON (N failures since DATE)". */
static int
status_value(struct store *s, const struct store_msg *msg, char *out, size_t outlen)
{
	struct store_aside a;
	int r = msg->uid != 0 ? store_aside_get(s, msg->folder_id, msg->uid, &a) : 1;
	if (r < 0)
		return -EIO;
	if (r == 0 && !msg->has_body) {
		char since[32], retry[32];
		struct tm tm;
		time_t t = (time_t)a.since;
		strftime(since, sizeof(since), "%Y-%m-%d %H:%M:%S", localtime_r(&t, &tm));
		t = (time_t)a.retry_at;
		strftime(retry, sizeof(retry), "%Y-%m-%d %H:%M:%S", localtime_r(&t, &tm));
		if (a.failures >= ASIDE_AFTER)
			snprintf(out, outlen, "set aside: %s (%u failures since %s, retried after %s)",
				 a.reason, a.failures, since, retry);
		else
			snprintf(out, outlen, "failing: %s (%u failures since %s)", a.reason,
				 a.failures, since);
	} else {
		snprintf(out, outlen, "%s", msg->uid == 0 ? "local" : msg->has_body ? "cached"
											: "on server");
	}
	return (int)strlen(out);
}

static int
xattr_value(struct store *s, fuse_ino_t ino, const char *name, char *out, size_t outlen)
{
	int64_t id;
	if (strncmp(name, "user.mail.", 10) != 0)
		return -EOPNOTSUPP;
	if (store_ino_kind(ino, &id) != 2)
		return -ENODATA;
	struct store_msg msg;
	int r = store_msg_get(s, id, &msg);
	if (r != 0)
		return r > 0 ? -ENOENT : -EIO;
	if (strcmp(name, "user.mail.flags") == 0)
		snprintf(out, outlen, "%s", msg.flags);
	else if (strcmp(name, "user.mail.uid") == 0)
		snprintf(out, outlen, "%u", msg.uid);
	else if (strcmp(name, "user.mail.message-id") == 0 && msg.message_id[0] != '\0')
		snprintf(out, outlen, "%s", msg.message_id);
	else if (strcmp(name, "user.mail.status") == 0)
		return status_value(s, &msg, out, outlen);
	else
		return -ENODATA;
	return (int)strlen(out);
}

void
mfs_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	struct mfs *m = fuse_req_userdata(req);
	if (obx_getxattr(m, req, ino, name, size))
		return;
	struct store *s = thread_store(m);
	if (s == NULL)
		return (void)fuse_reply_err(req, EIO);
	char value[1024];
	int n = xattr_value(s, ino, name, value, sizeof(value));
	if (n < 0)
		return (void)fuse_reply_err(req, -n);
	if (size == 0)
		return (void)fuse_reply_xattr(req, (size_t)n);
	if ((size_t)n > size)
		return (void)fuse_reply_err(req, ERANGE);
	fuse_reply_buf(req, value, (size_t)n);
}

void
mfs_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct mfs *m = fuse_req_userdata(req);
	if (obx_listxattr(m, req, ino, size))
		return;
	struct store *s = thread_store(m);
	if (s == NULL)
		return (void)fuse_reply_err(req, EIO);
	char list[128];
	size_t len = 0;
	int64_t id;
	if (store_ino_kind(ino, &id) == 2) {
		struct store_msg msg;
		if (store_msg_get(s, id, &msg) != 0)
			return (void)fuse_reply_err(req, ENOENT);
		static const char base[] = "user.mail.flags\0user.mail.uid\0user.mail.status\0";
		memcpy(list, base, sizeof(base) - 1);
		len = sizeof(base) - 1;
		if (msg.message_id[0] != '\0') {
			static const char mid[] = "user.mail.message-id\0";
			memcpy(list + len, mid, sizeof(mid) - 1);
			len += sizeof(mid) - 1;
		}
	}
	if (size == 0)
		return (void)fuse_reply_xattr(req, len);
	if (len > size)
		return (void)fuse_reply_err(req, ERANGE);
	fuse_reply_buf(req, list, len);
}

/* setfattr -n user.mail.flags -v '\Seen \Flagged' FILE: UID STORE FLAGS (through the
 * journal). The other user.mail.* names are read-only. */
void
mfs_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value, size_t size,
	     int flags)
{
	struct mfs *m = fuse_req_userdata(req);
	if (strncmp(name, "user.mail.", 10) != 0)
		return (void)fuse_reply_err(req, EOPNOTSUPP);
	int64_t id;
	if (strcmp(name, "user.mail.flags") != 0 || store_ino_kind(ino, &id) != 2)
		return (void)fuse_reply_err(req, EPERM);
	if (m->readonly)
		return (void)fuse_reply_err(req, EROFS);
	if (flags & XATTR_CREATE)
		return (void)fuse_reply_err(req, EEXIST); /* the flags always exist */
	struct store *s = thread_store(m);
	if (s == NULL)
		return (void)fuse_reply_err(req, EIO);
	if (pop3_of_msg(m, s, id) != NULL)
		return (void)fuse_reply_err(req, EROFS); /* POP3 has no flags */
	char text[512];
	if (size >= sizeof(text) || memchr(value, '\0', size) != NULL)
		return (void)fuse_reply_err(req, size >= sizeof(text) ? E2BIG : EINVAL);
	memcpy(text, value, size);
	text[size] = '\0';
	struct store_msg msg;
	struct change_acct ca;
	struct account *a;
	if (store_msg_get(s, id, &msg) != 0 || !change_acct_of(m, s, msg.folder_id, &ca, &a))
		return (void)fuse_reply_err(req, ENOENT);
	int e = change_set_flags(s, &ca, id, text);
	fuse_reply_err(req, e);
	if (e == 0)
		changed(a);
}
