/* dbfile.h - making sure an SQLite database file exists, is a regular file and has mode
 * 0600, without ever holding a descriptor of it once SQLite may have it open: closing any
 * descriptor of a file drops every POSIX lock the process holds on it, SQLite's too, and
 * another process's connection (the sqlite3 shell, a second daemon) then takes the database
 * for unused and deletes its WAL under our feet ("How To Corrupt An SQLite Database File",
 * section 2.2). */
#ifndef MAILFS_CACHE_DBFILE_H
#define MAILFS_CACHE_DBFILE_H

#include <stddef.h>

/* 0, or -1 with a message naming path in err. */
int dbfile_prepare(const char *path, char *err, size_t errlen);

#endif
