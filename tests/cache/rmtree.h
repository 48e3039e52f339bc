/* rmtree.h - remove a test's temporary directory and everything in it (the store files,
 * packs, scratch files the test left), without following symbolic links. */
#ifndef MAILFS_TEST_RMTREE_H
#define MAILFS_TEST_RMTREE_H

#include <ftw.h>
#include <stdio.h>

static int
rmtree_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static inline void
rm_tree(const char *dir)
{
	nftw(dir, rmtree_entry, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
