/* dbfile.c - see dbfile.h. */
#include "cache/dbfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int
dbfile_prepare(const char *path, char *err, size_t errlen)
{
	/* Never open the file once SQLite may have it open: closing any descriptor of a file
	 * drops every POSIX lock this process holds on it, SQLite's too, and a connection of
	 * another process (the sqlite3 shell, a second daemon) would then take the database
	 * for unused and delete its WAL under our feet. So: stat and chmod by name, and open
	 * only to create it (before any connection exists). */
	struct stat st;
	if (stat(path, &st) != 0) {
		if (errno != ENOENT) {
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			return -1;
		}
		int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY, 0600);
		if (fd < 0 && errno != EEXIST) {
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			return -1;
		}
		if (fd >= 0)
			close(fd);
		if (stat(path, &st) != 0) {
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			return -1;
		}
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", path);
		return -1;
	}
	if ((st.st_mode & 0777) != 0600 && chmod(path, 0600) != 0) {
		snprintf(err, errlen, "%s: cannot set mode 0600: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

