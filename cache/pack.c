/* pack.c - pack files of message bodies (see pack.h).
 *
 * What it does: names ("<n>.pack" in the directory opened by pack_dir_open, always through
 * its descriptor), whole writes and reads at an offset, the writer's lock (flock), and hole
 * punching. What it does not do: decide where a body goes or whether a range is in use.
 */
#include "cache/pack.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

static void
name_of(int64_t id, char *out, size_t len)
{
	snprintf(out, len, "%" PRId64 ".pack", id);
}

int
pack_dir_open(const char *cache_dir, int *dfd_r, char *err, size_t errlen)
{
	char path[4096];
	struct stat st;
	*dfd_r = -1;
	if (snprintf(path, sizeof(path), "%s/%s", cache_dir, PACK_DIR) >= (int)sizeof(path)) {
		snprintf(err, errlen, "%s: path too long", cache_dir);
		return -1;
	}
	if (mkdir(path, 0700) != 0 && errno != EEXIST) {
		snprintf(err, errlen, "%s: cannot create directory: %s", path, strerror(errno));
		return -1;
	}
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) != 0 || ((st.st_mode & 0077) && fchmod(fd, 0700) != 0)) {
		snprintf(err, errlen, "%s: cannot make the directory private: %s", path,
			 strerror(errno));
		close(fd);
		return -1;
	}
	*dfd_r = fd;
	return 0;
}

int
pack_open(int dfd, int64_t id, bool create, bool lock, uint64_t *size_r)
{
	char name[40];
	struct stat st;
	name_of(id, name, sizeof(name));
	int flags = O_RDWR | O_CLOEXEC | O_NOFOLLOW | (create ? O_CREAT | O_EXCL : 0);
	int fd = openat(dfd, name, flags, 0600);
	if (fd < 0)
		return -1;
	if (lock && flock(fd, LOCK_EX | LOCK_NB) != 0)
		goto fail;
	if (fstat(fd, &st) != 0)
		goto fail;
	if (!S_ISREG(st.st_mode)) {
		errno = EIO;
		goto fail;
	}
	if (size_r)
		*size_r = (uint64_t)st.st_size;
	return fd;
fail:;
	int e = errno;
	close(fd);
	errno = e;
	return -1;
}

int
pack_write(int fd, uint64_t off, const void *data, size_t len)
{
	const unsigned char *p = data;
	while (len > 0) {
		ssize_t n = pwrite(fd, p, len, (off_t)off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0) {
			errno = EIO;
			return -1;
		}
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

int
pack_read(int fd, uint64_t off, void *buf, size_t len, size_t *got_r)
{
	unsigned char *p = buf;
	size_t got = 0;
	*got_r = 0;
	while (got < len) {
		ssize_t n = pread(fd, p + got, len - got, (off_t)(off + got));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	*got_r = got;
	return 0;
}

int
pack_punch(int fd, uint64_t off, uint64_t len)
{
	len = pack_align(len);
	if (len == 0)
		return 0;
	if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len) == 0)
		return 0;
	return errno == EOPNOTSUPP || errno == ENOSYS ? 0 : -1;
}

int
pack_remove(int dfd, int64_t id)
{
	char name[40];
	name_of(id, name, sizeof(name));
	if (unlinkat(dfd, name, 0) != 0 && errno != ENOENT)
		return -1;
	return 0;
}

/* "<n>.pack", n positive without leading zeros: 1 and n, else 0. */
static int
parse_name(const char *name, int64_t *id_r)
{
	int64_t v = 0;
	const char *c = name;
	if (*c < '1' || *c > '9')
		return 0;
	for (; *c >= '0' && *c <= '9'; c++) {
		if (v > (INT64_MAX - (*c - '0')) / 10)
			return 0;
		v = v * 10 + (*c - '0');
	}
	if (strcmp(c, ".pack") != 0)
		return 0;
	*id_r = v;
	return 1;
}

int
pack_each(int dfd, int (*cb)(void *ctx, int64_t id), void *ctx)
{
	/* A descriptor of our own: closedir closes it, and the caller's keeps its position. */
	int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	DIR *d = fdopendir(fd);
	if (d == NULL) {
		close(fd);
		return -1;
	}
	int ret = 0;
	struct dirent *e;
	errno = 0;
	while (ret == 0 && (e = readdir(d)) != NULL) {
		int64_t id;
		if (parse_name(e->d_name, &id))
			ret = cb(ctx, id);
		errno = 0;
	}
	int e2 = ret == 0 ? errno : 0;
	closedir(d);
	if (e2 != 0) {
		errno = e2;
		return -1;
	}
	return ret;
}
