/* folder.c - mkdir and rmdir in an account (CREATE and DELETE on the server, through the
 * journal: cache/change.c). Renames of folders arrive as renames (fs/write.c). The outbox
 * and the account directories themselves cannot be made or removed (EPERM).
 */
#include "fs/fs-internal.h"

#include <errno.h>
#include <string.h>

#include "cache/change.h"

void
mfs_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	(void)mode;
	struct mfs *m = fuse_req_userdata(req);
	uint64_t v;
	if (obx_kind(parent, &v) != OBX_NONE)
		return (void)fuse_reply_err(req, EPERM);
	if (m->readonly)
		return (void)fuse_reply_err(req, EROFS);
	int64_t pid;
	if (store_ino_kind(parent, &pid) != 1)
		return (void)fuse_reply_err(req, EPERM); /* a new account is made in the config */
	struct store *s = thread_store(m);
	if (s == NULL)
		return (void)fuse_reply_err(req, EIO);
	struct change_acct ca;
	struct account *a;
	if (!change_acct_of(m, s, pid, &ca, &a))
		return (void)fuse_reply_err(req, ENOENT);
	if (pop3_of_folder(m, s, pid) != NULL)
		return (void)fuse_reply_err(req, EROFS);
	int64_t id;
	int e = change_mkdir(s, &ca, pid, name, &id);
	if (e != 0)
		return (void)fuse_reply_err(req, e);
	struct store_folder f;
	if (store_folder_get(s, id, &f) != 0)
		return (void)fuse_reply_err(req, EIO);
	struct fuse_entry_param ep;
	memset(&ep, 0, sizeof(ep));
	ep.ino = store_ino_folder(id);
	ep.entry_timeout = TIMEOUT_LONG;
	ep.attr_timeout = TIMEOUT_LONG;
	dir_attr(m, ep.ino, f.mtime, &ep.attr);
	fuse_reply_entry(req, &ep);
	changed(a);
}

void
mfs_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct mfs *m = fuse_req_userdata(req);
	uint64_t v;
	if (obx_kind(parent, &v) != OBX_NONE)
		return (void)fuse_reply_err(req, EPERM);
	if (m->readonly)
		return (void)fuse_reply_err(req, EROFS);
	int64_t pid;
	if (store_ino_kind(parent, &pid) != 1)
		return (void)fuse_reply_err(req, EPERM);
	struct store *s = thread_store(m);
	if (s == NULL)
		return (void)fuse_reply_err(req, EIO);
	if (obx_account_of_top(m, pid) >= 0 &&
	    strcmp(name, m->acc[obx_account_of_top(m, pid)].cfg->outbox) == 0)
		return (void)fuse_reply_err(req, EPERM);
	struct change_acct ca;
	struct account *a;
	if (!change_acct_of(m, s, pid, &ca, &a))
		return (void)fuse_reply_err(req, ENOENT);
	if (pop3_of_folder(m, s, pid) != NULL)
		return (void)fuse_reply_err(req, EROFS);
	struct store_msg msg;
	if (store_msg_lookup(s, pid, name, &msg) == 0)
		return (void)fuse_reply_err(req, ENOTDIR);
	int e = change_rmdir(s, &ca, pid, name);
	fuse_reply_err(req, e);
	if (e == 0)
		changed(a);
}
