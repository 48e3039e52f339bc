/* test-store.c - unit tests for cache/store.c: opening and migrating (modes of the directory,
 * the file and its WAL; a newer schema and a foreign file refused), ids that survive a reopen
 * and are never reused, accounts, folders (upsert, lookup, paging, each, state, cascading
 * delete), messages (upsert, lookups, paging, uids, missing bodies, flags, delete, unbind
 * and adopt), transactions, stats, the query plans of every statement, and two threads
 * writing and reading the same file at once. Bodies and packs: test-store-body.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cache/store.h"
#include "rmtree.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "store-fx.h"

/* ---- open ---- */

static void
test_open_modes(void **state)
{
	(void)state;
	char dir[64], sub[128], path[192];
	make_tmp(dir, sizeof(dir));
	snprintf(sub, sizeof(sub), "%s/a/b/cache", dir);
	mode_t old = umask(0);
	struct store *s = open_ok(sub);
	umask(old);
	assert_int_equal(mode_of(sub), 0700);
	snprintf(path, sizeof(path), "%s/a", dir);
	assert_int_equal(mode_of(path), 0700);
	snprintf(path, sizeof(path), "%s/mailfs.db", sub);
	assert_int_equal(mode_of(path), 0600);
	int64_t id;
	assert_int_equal(store_account_ensure(s, "x", &id), 0);
	snprintf(path, sizeof(path), "%s/mailfs.db-wal", sub);
	assert_int_equal(mode_of(path), 0600);
	store_close(&s);
	store_close(&s); /* NULL is fine */

	/* Migrated from an empty file: version 1, our application id, WAL. */
	assert_int_equal(raw_query(sub, "PRAGMA user_version"), 5);
	assert_int_equal(raw_query(sub, "PRAGMA application_id"), 0x6d6c6673);
	assert_int_equal(raw_query(sub, "SELECT count(*) FROM sqlite_schema WHERE name ="
					" 'messages'"),
			 1);

	/* An existing directory and file that others may read are tightened. */
	assert_int_equal(chmod(sub, 0755), 0);
	snprintf(path, sizeof(path), "%s/mailfs.db", sub);
	assert_int_equal(chmod(path, 0644), 0);
	s = open_ok(sub);
	assert_int_equal(mode_of(sub), 0700);
	assert_int_equal(mode_of(path), 0600);
	store_close(&s);

	/* An empty pre-existing file is migrated. */
	rm_tree(sub);
	assert_int_equal(mkdir(sub, 0700), 0);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fclose(f);
	s = open_ok(sub);
	store_close(&s);
	assert_int_equal(raw_query(sub, "PRAGMA user_version"), 5);
	rm_tree(dir);
}

static void *
open_thread(void *arg)
{
	struct store *s = NULL;
	char err[512];
	int64_t id;
	intptr_t ok = store_open(arg, &s, err, sizeof(err)) == 0 &&
		      store_account_ensure(s, "shared", &id) == 0;
	if (!ok)
		print_error("open_thread: %s\n", s ? store_errmsg(s) : err);
	store_close(&s);
	return (void *)ok;
}

/* Several threads creating the same new cache at once: one migrates, all open. */
static void
test_open_race(void **state)
{
	(void)state;
	char dir[64];
	pthread_t t[4];
	make_tmp(dir, sizeof(dir));
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, open_thread, dir), 0);
	for (int i = 0; i < 4; i++) {
		void *ok = NULL;
		pthread_join(t[i], &ok);
		assert_true(ok != NULL);
	}
	assert_int_equal(raw_query(dir, "PRAGMA user_version"), 5);
	assert_int_equal(raw_query(dir, "PRAGMA auto_vacuum"), 2);
	assert_int_equal(raw_query(dir, "SELECT count(*) FROM accounts"), 1);
	rm_tree(dir);
}

/* A second connection opened in the process must not drop the first one's locks: then a
 * reader in another process (the sqlite3 shell) took the database for unused when it
 * closed and deleted the WAL under the daemon, which lost what it wrote next. */
static void
test_open_keeps_locks(void **state)
{
	(void)state;
	char dir[64], wal[128];
	make_tmp(dir, sizeof(dir));
	struct store *a = open_ok(dir);
	int64_t id;
	assert_int_equal(store_account_ensure(a, "locks", &id), 0);
	struct store *b = open_ok(dir); /* as each FUSE worker thread does */
	snprintf(wal, sizeof(wal), "%s/mailfs.db-wal", dir);
	assert_int_equal(access(wal, F_OK), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* Another process, a fresh one (a forked copy would share SQLite's idea of our
		 * locks): this program again, as a reader that closes (see main). */
		execl("/proc/self/exe", "test-store", "--read-and-close", dir, (char *)NULL);
		_exit(127);
	}
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_int_equal(access(wal, F_OK), 0); /* still there: we hold our locks */
	int64_t id2;
	assert_int_equal(store_account_ensure(b, "locks2", &id2), 0);
	store_close(&b);
	store_close(&a);
	assert_int_equal(raw_query(dir, "SELECT count(*) FROM accounts WHERE name LIKE 'locks%'"), 2);
	rm_tree(dir);
}

static void
test_open_errors(void **state)
{
	(void)state;
	char dir[64], path[256], err[512];
	struct store *s = (struct store *)1;
	make_tmp(dir, sizeof(dir));

	assert_int_equal(store_open("", &s, err, sizeof(err)), -1);
	assert_null(s);
	assert_non_null(strstr(err, "no cache directory"));

	/* The cache directory is a file. */
	snprintf(path, sizeof(path), "%s/file", dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs("x", f);
	fclose(f);
	assert_int_equal(store_open(path, &s, err, sizeof(err)), -1);
	assert_non_null(strstr(err, path));

	/* mailfs.db is not a database. */
	char sub[96];
	snprintf(sub, sizeof(sub), "%s/junk", dir);
	assert_int_equal(mkdir(sub, 0700), 0);
	snprintf(path, sizeof(path), "%s/mailfs.db", sub);
	f = fopen(path, "w");
	assert_non_null(f);
	for (int i = 0; i < 1000; i++)
		fputs("this is not a database ", f);
	fclose(f);
	assert_int_equal(store_open(sub, &s, err, sizeof(err)), -1);
	assert_null(s);
	assert_non_null(strstr(err, "mailfs.db"));
	assert_null(strchr(err, '\n'));

	/* Another application's database. */
	rm_tree(sub);
	assert_int_equal(mkdir(sub, 0700), 0);
	raw_exec(sub, "PRAGMA application_id = 42; CREATE TABLE t(x)");
	assert_int_equal(store_open(sub, &s, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "not a mailfs cache"));
	rm_tree(dir);
}

static void
test_open_newer(void **state)
{
	(void)state;
	char dir[64], err[512], want[256];
	struct store *s = NULL;
	make_tmp(dir, sizeof(dir));
	s = open_ok(dir);
	store_close(&s);
	raw_exec(dir, "PRAGMA user_version = 9");
	assert_int_equal(store_open(dir, &s, err, sizeof(err)), -1);
	assert_null(s);
	snprintf(want, sizeof(want),
		 "%s/mailfs.db: schema version 9 is newer than this mailfs understands (5)", dir);
	assert_string_equal(err, want);
	/* Refused, not damaged. */
	assert_int_equal(raw_query(dir, "PRAGMA user_version"), 9);
	rm_tree(dir);
}

static void
test_reopen_keeps_ids(void **state)
{
	struct fx *fx = *state;
	int64_t sub, m1, m2, a2, id;
	OK(store_folder_ensure(fx->s, fx->acct, fx->inbox, "Sub", STORE_FOLDER_MAILBOX, "INBOX/Sub",
			       '/', 0, &sub));
	m1 = add_msg(fx->s, fx->inbox, 1, "one.eml", 10);
	m2 = add_msg(fx->s, sub, 2, "two.eml", 20);
	store_close(&fx->s);
	fx->s = open_ok(fx->dir);

	OK(store_account_ensure(fx->s, "personal", &a2));
	assert_int_equal(a2, fx->acct);
	OK(store_folder_ensure(fx->s, fx->acct, fx->top, "INBOX", STORE_FOLDER_MAILBOX, "INBOX",
			       '/', 0, &id));
	assert_int_equal(id, fx->inbox);
	struct store_folder f;
	OK(store_folder_lookup(fx->s, fx->inbox, "Sub", &f));
	assert_int_equal(f.id, sub);
	struct store_msg m;
	OK(store_msg_lookup(fx->s, fx->inbox, "one.eml", &m));
	assert_int_equal(m.id, m1);
	OK(store_msg_by_uid(fx->s, sub, 2, &m));
	assert_int_equal(m.id, m2);

	/* Ids (inode numbers) are never given to another row, even after a delete. */
	OK(store_msg_delete(fx->s, m2));
	int64_t m3 = add_msg(fx->s, sub, 3, "three.eml", 30);
	assert_true(m3 > m2);
	OK(store_folder_delete(fx->s, sub));
	int64_t sub2;
	OK(store_folder_ensure(fx->s, fx->acct, fx->inbox, "Sub", STORE_FOLDER_MAILBOX, "INBOX/Sub",
			       '/', 0, &sub2));
	assert_true(sub2 > sub);
}

static void
test_ino(void **state)
{
	(void)state;
	int64_t id = -7;
	assert_int_equal(store_ino_kind(STORE_INO_ROOT, &id), 0);
	assert_int_equal(store_ino_kind(STORE_INO_STATUS, &id), 0);
	assert_int_equal(id, -7);
	assert_int_equal(store_ino_folder(1), 4);
	assert_int_equal(store_ino_msg(1), 3);
	int64_t ids[] = {1, 2, 3, 1000, 123456789, INT64_MAX / 2 - 1};
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		assert_int_equal(store_ino_kind(store_ino_folder(ids[i]), &id), 1);
		assert_int_equal(id, ids[i]);
		assert_int_equal(store_ino_kind(store_ino_msg(ids[i]), &id), 2);
		assert_int_equal(id, ids[i]);
		assert_true(store_ino_folder(ids[i]) > STORE_INO_STATUS);
		assert_true(store_ino_msg(ids[i]) > STORE_INO_STATUS);
	}
}

/* ---- accounts and folders ---- */

static void
test_accounts(void **state)
{
	struct fx *fx = *state;
	int64_t a, b, c;
	OK(store_account_ensure(fx->s, "work", &a));
	OK(store_account_ensure(fx->s, "work", &b));
	assert_int_equal(a, b);
	assert_int_not_equal(a, fx->acct);
	OK(store_account_ensure(fx->s, "personal", &c));
	assert_int_equal(c, fx->acct);
	assert_int_equal(store_account_ensure(fx->s, "", &c), -1);
	assert_non_null(strstr(store_errmsg(fx->s), "empty name"));
	assert_int_equal(store_account_ensure(fx->s, "a/b", &c), -1);
	assert_int_equal(store_account_ensure(fx->s, "..", &c), -1);
	assert_non_null(strstr(store_errmsg(fx->s), "invalid name"));
}

static void
test_folder_ensure(void **state)
{
	struct fx *fx = *state;
	struct store_folder f;
	int64_t id, id2, other, otop;

	OK(store_folder_get(fx->s, fx->inbox, &f));
	assert_int_equal(f.account_id, fx->acct);
	assert_int_equal(f.parent_id, fx->top);
	assert_int_equal(f.kind, STORE_FOLDER_MAILBOX);
	assert_string_equal(f.name, "INBOX");
	assert_string_equal(f.server_name, "INBOX");
	assert_int_equal(f.delim, '/');
	assert_int_equal(f.messages, 0);
	assert_true(f.mtime > 0);

	/* Update: kind, server name, delimiter and special change; sync state is kept. */
	OK(store_folder_set_state(fx->s, fx->inbox, 42, 100, 5000000000ULL));
	OK(store_folder_ensure(fx->s, fx->acct, fx->top, "INBOX", STORE_FOLDER_DIR, "Inbox", '.', 8,
			       &id));
	assert_int_equal(id, fx->inbox);
	OK(store_folder_get(fx->s, id, &f));
	assert_int_equal(f.kind, STORE_FOLDER_DIR);
	assert_string_equal(f.server_name, "Inbox");
	assert_int_equal(f.delim, '.');
	assert_int_equal(f.special, 8);
	assert_int_equal(f.uidvalidity, 42);
	assert_int_equal(f.uidnext, 100);
	assert_int_equal(f.highestmodseq, 5000000000ULL);

	/* A delimiter above 127 and a NUL delimiter survive. */
	OK(store_folder_ensure(fx->s, fx->acct, fx->top, "Odd", STORE_FOLDER_MAILBOX, NULL,
			       (char)0xe9, 0, &id2));
	OK(store_folder_get(fx->s, id2, &f));
	assert_int_equal(f.delim, (char)0xe9);
	assert_string_equal(f.server_name, "");

	/* Errors. */
	assert_int_equal(store_folder_ensure(fx->s, fx->acct, 999999, "X", STORE_FOLDER_MAILBOX,
					     "X", '/', 0, &id),
			 -1);
	assert_non_null(strstr(store_errmsg(fx->s), "parent folder 999999 not found"));
	assert_int_equal(
	    store_folder_ensure(fx->s, fx->acct, 0, "Y", STORE_FOLDER_MAILBOX, "Y", '/', 0, &id),
	    -1);
	assert_non_null(strstr(store_errmsg(fx->s), "does not fit"));
	assert_int_equal(
	    store_folder_ensure(fx->s, fx->acct, fx->top, "Y", STORE_FOLDER_ACCOUNT, "", 0, 0, &id),
	    -1);
	assert_int_equal(store_folder_ensure(fx->s, fx->acct, fx->top, "Y",
					     (enum store_folder_kind)7, "", 0, 0, &id),
			 -1);
	assert_int_equal(
	    store_folder_ensure(fx->s, 999, 0, "nobody", STORE_FOLDER_ACCOUNT, "", 0, 0, &id), -1);
	assert_non_null(strstr(store_errmsg(fx->s), "account 999 not found"));
	assert_int_equal(store_folder_ensure(fx->s, fx->acct, fx->top, ".", STORE_FOLDER_MAILBOX,
					     ".", '/', 0, &id),
			 -1);
	char big[1100];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(store_folder_ensure(fx->s, fx->acct, fx->top, "Big", STORE_FOLDER_MAILBOX,
					     big, '/', 0, &id),
			 -1);
	assert_non_null(strstr(store_errmsg(fx->s), "server name too long"));
	big[STORE_NAME_MAX + 1] = '\0';
	assert_int_equal(store_folder_ensure(fx->s, fx->acct, fx->top, big, STORE_FOLDER_MAILBOX,
					     "", '/', 0, &id),
			 -1);
	big[STORE_NAME_MAX] = '\0';
	OK(store_folder_ensure(fx->s, fx->acct, fx->top, big, STORE_FOLDER_MAILBOX, "", '/', 0,
			       &id));
	OK(store_folder_get(fx->s, id, &f));
	assert_string_equal(f.name, big);

	/* Another account: its top cannot take our name, nor can it use our folders. */
	OK(store_account_ensure(fx->s, "work", &other));
	assert_int_equal(
	    store_folder_ensure(fx->s, other, 0, "personal", STORE_FOLDER_ACCOUNT, "", 0, 0, &id),
	    -1);
	assert_non_null(strstr(store_errmsg(fx->s), "another account"));
	assert_int_equal(store_folder_ensure(fx->s, other, fx->top, "Mine", STORE_FOLDER_MAILBOX,
					     "", '/', 0, &id),
			 -1);
	OK(store_folder_ensure(fx->s, other, 0, "work", STORE_FOLDER_ACCOUNT, "", 0, 0, &otop));
	assert_int_not_equal(otop, fx->top);
}

static void
test_folder_get_lookup(void **state)
{
	struct fx *fx = *state;
	struct store_folder f;
	OK(store_folder_lookup(fx->s, 0, "personal", &f));
	assert_int_equal(f.id, fx->top);
	assert_int_equal(f.kind, STORE_FOLDER_ACCOUNT);
	assert_int_equal(f.parent_id, 0);
	OK(store_folder_lookup(fx->s, fx->top, "INBOX", &f));
	assert_int_equal(f.id, fx->inbox);
	assert_int_equal(store_folder_lookup(fx->s, fx->top, "inbox", &f), 1);
	assert_int_equal(store_folder_lookup(fx->s, fx->inbox, "INBOX", &f), 1);
	assert_int_equal(store_folder_lookup(fx->s, fx->top, NULL, &f), 1);
	assert_int_equal(store_folder_get(fx->s, 424242, &f), 1);
	assert_non_null(strstr(store_errmsg(fx->s), "not found"));
	assert_int_equal(store_folder_set_state(fx->s, 424242, 1, 2, 3), -1);
	assert_non_null(strstr(store_errmsg(fx->s), "424242 not found"));
}

static void
test_folder_children(void **state)
{
	struct fx *fx = *state;
	struct store_folder out[10];
	char name[32];
	int64_t id, w;
	for (int i = 24; i >= 0; i--) {
		snprintf(name, sizeof(name), "f%02d", i);
		OK(store_folder_ensure(fx->s, fx->acct, fx->top, name, STORE_FOLDER_MAILBOX, name,
				       '/', 0, &id));
	}
	/* INBOX sorts before f00 (bytewise). */
	int n = store_folder_children(fx->s, fx->top, "", out, 10);
	assert_int_equal(n, 10);
	assert_string_equal(out[0].name, "INBOX");
	assert_string_equal(out[1].name, "f00");
	int total = n;
	char after[STORE_NAME_MAX + 1];
	snprintf(after, sizeof(after), "%s", out[n - 1].name);
	while ((n = store_folder_children(fx->s, fx->top, after, out, 10)) > 0) {
		assert_true(strcmp(out[0].name, after) > 0);
		for (int i = 1; i < n; i++)
			assert_true(strcmp(out[i - 1].name, out[i].name) < 0);
		total += n;
		snprintf(after, sizeof(after), "%s", out[n - 1].name);
	}
	assert_int_equal(n, 0);
	assert_int_equal(total, 26);
	assert_int_equal(store_folder_children(fx->s, fx->top, NULL, out, 0), 0);
	assert_int_equal(store_folder_children(fx->s, fx->inbox, "", out, 10), 0);

	/* Parent 0: the account directories. */
	OK(store_account_ensure(fx->s, "work", &w));
	OK(store_folder_ensure(fx->s, w, 0, "work", STORE_FOLDER_ACCOUNT, "", 0, 0, &id));
	n = store_folder_children(fx->s, 0, "", out, 10);
	assert_int_equal(n, 2);
	assert_string_equal(out[0].name, "personal");
	assert_string_equal(out[1].name, "work");
	n = store_folder_children(fx->s, 0, "personal", out, 10);
	assert_int_equal(n, 1);
	assert_int_equal(out[0].id, id);
}

struct each_ctx {
	struct store *s;
	int64_t seen[16];
	int n, stop_at;
};

static int
each_cb(void *ctx, const struct store_folder *f)
{
	struct each_ctx *c = ctx;
	c->seen[c->n++] = f->id;
	/* Writing from the callback works: nothing is left open. */
	assert_int_equal(store_folder_set_state(c->s, f->id, 7, (uint32_t)c->n, 0), 0);
	return c->n == c->stop_at;
}

static void
test_folder_each(void **state)
{
	struct fx *fx = *state;
	int64_t a, b, w, wt;
	OK(store_folder_ensure(fx->s, fx->acct, fx->inbox, "A", STORE_FOLDER_MAILBOX, "INBOX/A",
			       '/', 0, &a));
	OK(store_folder_ensure(fx->s, fx->acct, a, "B", STORE_FOLDER_MAILBOX, "INBOX/A/B", '/', 0,
			       &b));
	OK(store_account_ensure(fx->s, "work", &w));
	OK(store_folder_ensure(fx->s, w, 0, "work", STORE_FOLDER_ACCOUNT, "", 0, 0, &wt));

	struct each_ctx c = {.s = fx->s, .stop_at = -1};
	OK(store_folder_each(fx->s, fx->acct, each_cb, &c));
	assert_int_equal(c.n, 4);
	/* Parents come before their children. */
	assert_int_equal(c.seen[0], fx->top);
	assert_int_equal(c.seen[1], fx->inbox);
	assert_int_equal(c.seen[2], a);
	assert_int_equal(c.seen[3], b);
	struct store_folder f;
	OK(store_folder_get(fx->s, b, &f));
	assert_int_equal(f.uidvalidity, 7);
	assert_int_equal(f.uidnext, 4);

	struct each_ctx c2 = {.s = fx->s, .stop_at = 2};
	OK(store_folder_each(fx->s, fx->acct, each_cb, &c2));
	assert_int_equal(c2.n, 2);
	struct each_ctx c3 = {.s = fx->s, .stop_at = -1};
	OK(store_folder_each(fx->s, 12345, each_cb, &c3));
	assert_int_equal(c3.n, 0);
}

static void
test_folder_delete_cascade(void **state)
{
	struct fx *fx = *state;
	int64_t a, b, c, keep;
	OK(store_folder_ensure(fx->s, fx->acct, fx->inbox, "A", STORE_FOLDER_MAILBOX, "INBOX/A",
			       '/', 0, &a));
	OK(store_folder_ensure(fx->s, fx->acct, a, "B", STORE_FOLDER_MAILBOX, "", '/', 0, &b));
	OK(store_folder_ensure(fx->s, fx->acct, b, "C", STORE_FOLDER_MAILBOX, "", '/', 0, &c));
	OK(store_folder_ensure(fx->s, fx->acct, fx->inbox, "Keep", STORE_FOLDER_MAILBOX, "", '/', 0,
			       &keep));
	int64_t ma = add_msg(fx->s, a, 1, "a.eml", 100);
	int64_t mc = add_msg(fx->s, c, 1, "c.eml", 300000);
	int64_t mk = add_msg(fx->s, keep, 1, "k.eml", 50);
	OK(put_body(fx->s, ma, 100, 64, NULL));
	OK(put_body(fx->s, mc, 300000, 12000, NULL));
	OK(put_body(fx->s, mk, 50, 50, NULL));
	assert_int_equal(raw_query(fx->dir, "SELECT count(*) FROM messages WHERE body_pack"), 3);
	uint64_t before = pack_blocks(fx->dir);

	raw_exec(fx->dir, "UPDATE folders SET mtime = 0");
	OK(store_folder_delete(fx->s, a));
	struct store_folder f;
	assert_int_equal(store_folder_get(fx->s, a, &f), 1);
	assert_int_equal(store_folder_get(fx->s, b, &f), 1);
	assert_int_equal(store_folder_get(fx->s, c, &f), 1);
	OK(store_folder_get(fx->s, keep, &f));
	assert_int_equal(f.messages, 1);
	OK(store_folder_get(fx->s, fx->inbox, &f));
	assert_true(f.mtime > 0); /* the parent's listing changed */
	struct store_msg m;
	assert_int_equal(store_msg_get(fx->s, ma, &m), 1);
	assert_int_equal(store_msg_get(fx->s, mc, &m), 1);
	size_t got;
	char buf[16];
	assert_int_equal(store_body_read(fx->s, mc, 0, buf, sizeof(buf), &got), 1);
	/* The deleted bodies' blocks were given back. */
	assert_int_equal(raw_query(fx->dir, "SELECT count(*) FROM dead_bodies"), 0);
	assert_true(pack_blocks(fx->dir) + 290000 <= before);
	assert_int_equal(raw_query(fx->dir, "SELECT count(*) FROM messages"), 1);
	assert_true(check_body(fx->s, mk, 50, 4096));

	/* Deleting what is gone is not an error. */
	OK(store_folder_delete(fx->s, a));
	/* Deleting the account top removes everything of the account. */
	OK(store_folder_delete(fx->s, fx->top));
	assert_int_equal(raw_query(fx->dir, "SELECT count(*) FROM folders"), 0);
	assert_int_equal(raw_query(fx->dir, "SELECT count(*) FROM messages"), 0);
	assert_int_equal(raw_query(fx->dir, "SELECT count(*) FROM dead_bodies"), 0);
	assert_int_equal(pack_blocks(fx->dir), 0);
}

/* ---- messages ---- */

static void
test_msg_upsert(void **state)
{
	struct fx *fx = *state;
	struct store_msg m = {.folder_id = fx->inbox,
			      .uid = 17,
			      .internaldate = 1764149400,
			      .size = 4711,
			      .modseq = 9};
	snprintf(m.name, sizeof(m.name), "2025-11-26_0930_17_Hello.eml");
	snprintf(m.flags, sizeof(m.flags), "\\Seen $Label1");
	snprintf(m.message_id, sizeof(m.message_id), "<abc@example.com>");
	OK(store_msg_upsert(fx->s, &m));
	int64_t id = m.id;
	struct store_msg r;
	OK(store_msg_get(fx->s, id, &r));
	assert_int_equal(r.folder_id, fx->inbox);
	assert_int_equal(r.uid, 17);
	assert_int_equal(r.internaldate, 1764149400);
	assert_int_equal(r.size, 4711);
	assert_string_equal(r.flags, "\\Seen $Label1");
	assert_int_equal(r.modseq, 9);
	assert_string_equal(r.name, "2025-11-26_0930_17_Hello.eml");
	assert_string_equal(r.message_id, "<abc@example.com>");
	assert_false(r.has_body);
	struct store_folder f;
	OK(store_folder_get(fx->s, fx->inbox, &f));
	assert_int_equal(f.messages, 1);

	/* Update by uid: flags, modseq and size change; the name and date do not. */
	struct store_msg u = m;
	u.id = 0;
	snprintf(u.name, sizeof(u.name), "renamed.eml");
	snprintf(u.flags, sizeof(u.flags), "\\Flagged");
	u.modseq = 10;
	u.size = 4712;
	u.internaldate = 1;
	OK(store_msg_upsert(fx->s, &u));
	assert_int_equal(u.id, id);
	OK(store_msg_get(fx->s, id, &r));
	assert_string_equal(r.name, "2025-11-26_0930_17_Hello.eml");
	assert_string_equal(r.flags, "\\Flagged");
	assert_int_equal(r.modseq, 10);
	assert_int_equal(r.size, 4712);
	assert_int_equal(r.internaldate, 1764149400);
	OK(store_folder_get(fx->s, fx->inbox, &f));
	assert_int_equal(f.messages, 1);

	/* The same name for another UID is an error. */
	struct store_msg d = m;
	d.uid = 18;
	assert_int_equal(store_msg_upsert(fx->s, &d), -1);
	assert_non_null(strstr(store_errmsg(fx->s), "already used by another message"));
	/* The same UID in another folder is another message. */
	int64_t other;
	OK(store_folder_ensure(fx->s, fx->acct, fx->top, "Other", STORE_FOLDER_MAILBOX, "Other",
			       '/', 0, &other));
	d = m;
	d.folder_id = other;
	OK(store_msg_upsert(fx->s, &d));
	assert_int_not_equal(d.id, id);

	/* No such folder; bad names; flags too long; a long Message-ID is cut. */
	d.folder_id = 999999;
	assert_int_equal(store_msg_upsert(fx->s, &d), -1);
	assert_non_null(strstr(store_errmsg(fx->s), "folder 999999 not found"));
	d = m;
	d.uid = 19;
	snprintf(d.name, sizeof(d.name), "a/b.eml");
	assert_int_equal(store_msg_upsert(fx->s, &d), -1);
	d.name[0] = '\0';
	assert_int_equal(store_msg_upsert(fx->s, &d), -1);
	snprintf(d.name, sizeof(d.name), "19.eml");
	memset(d.flags, 'f', sizeof(d.flags)); /* not terminated */
	assert_int_equal(store_msg_upsert(fx->s, &d), -1);
	assert_non_null(strstr(store_errmsg(fx->s), "flags longer"));
	d.flags[0] = '\0';
	memset(d.message_id, 'm', sizeof(d.message_id));
	OK(store_msg_upsert(fx->s, &d));
	OK(store_msg_get(fx->s, d.id, &r));
	assert_int_equal(strlen(r.message_id), sizeof(r.message_id) - 1);
}

/* A row inserted under a provisional name gets its real name and metadata; the provisional
 * name is gone, a taken or invalid name is refused. */
static void
test_msg_finish(void **state)
{
	struct fx *fx = *state;
	struct store_msg m = { .folder_id = fx->inbox, .uid = 42, .size = 10 };
	snprintf(m.name, sizeof(m.name), "%%pending-42");
	OK(store_msg_upsert(fx->s, &m));
	struct store_msg other = { .folder_id = fx->inbox, .uid = 43, .size = 5 };
	snprintf(other.name, sizeof(other.name), "taken.eml");
	OK(store_msg_upsert(fx->s, &other));

	assert_int_equal(store_msg_finish(fx->s, m.id, "taken.eml", 7, "", 0, ""), -1);
	assert_int_equal(store_msg_finish(fx->s, m.id, "a/b", 7, "", 0, ""), -1);
	assert_int_equal(store_msg_finish(fx->s, 999999, "x.eml", 7, "", 0, ""), -1);
	OK(store_msg_finish(fx->s, m.id, "2026-01-01_0000_42_hi.eml", 1767225600, "\\Seen", 9,
			    "<id@x>"));
	struct store_msg r;
	assert_int_equal(store_msg_lookup(fx->s, fx->inbox, "%pending-42", &r), 1);
	assert_int_equal(store_msg_lookup(fx->s, fx->inbox, "2026-01-01_0000_42_hi.eml", &r), 0);
	assert_int_equal(r.id, m.id);
	assert_int_equal(r.internaldate, 1767225600);
	assert_string_equal(r.flags, "\\Seen");
	assert_int_equal(r.modseq, 9);
	assert_string_equal(r.message_id, "<id@x>");
}

static void
test_msg_lookups(void **state)
{
	struct fx *fx = *state;
	int64_t id = add_msg(fx->s, fx->inbox, 4000000000u, "big-uid.eml", 1);
	struct store_msg r;
	OK(store_msg_lookup(fx->s, fx->inbox, "big-uid.eml", &r));
	assert_int_equal(r.id, id);
	assert_int_equal(r.uid, 4000000000u);
	OK(store_msg_by_uid(fx->s, fx->inbox, 4000000000u, &r));
	assert_int_equal(r.id, id);
	assert_int_equal(store_msg_lookup(fx->s, fx->inbox, "nope.eml", &r), 1);
	assert_int_equal(store_msg_lookup(fx->s, fx->top, "big-uid.eml", &r), 1);
	assert_int_equal(store_msg_by_uid(fx->s, fx->inbox, 1, &r), 1);
	assert_int_equal(store_msg_get(fx->s, id + 100, &r), 1);
}

static void
test_msg_list(void **state)
{
	struct fx *fx = *state;
	enum { N = 1234 };
	char name[64];
	/* Insert in an order unrelated to the name order. */
	OK(store_begin(fx->s));
	for (uint32_t i = 0; i < N; i++) {
		uint32_t k = (i * 7919) % N;
		snprintf(name, sizeof(name), "2025-01-%02u_%04u.eml", k % 28 + 1, k);
		add_msg(fx->s, fx->inbox, k + 1, name, k);
	}
	OK(store_commit(fx->s));
	/* Another folder's rows in between must not show up. */
	int64_t other;
	OK(store_folder_ensure(fx->s, fx->acct, fx->top, "Other", STORE_FOLDER_MAILBOX, "Other",
			       '/', 0, &other));
	add_msg(fx->s, other, 1, "other.eml", 1);
	add_msg(fx->s, fx->inbox, N + 1, "last.eml", 1);
	struct store_msg *out = calloc(100, sizeof(*out));
	assert_non_null(out);
	int64_t after = 0;
	int n, total = 0;
	char last[STORE_NAME_MAX + 1] = "";
	while ((n = store_msg_list(fx->s, fx->inbox, after, out, 100)) > 0) {
		/* Row id order, resuming after the last id. */
		assert_true(out[0].id > after);
		for (int i = 1; i < n; i++)
			assert_true(out[i - 1].id < out[i].id);
		for (int i = 0; i < n; i++)
			assert_int_equal(out[i].folder_id, fx->inbox);
		total += n;
		after = out[n - 1].id;
		snprintf(last, sizeof(last), "%s", out[n - 1].name);
	}
	assert_int_equal(n, 0);
	assert_int_equal(total, N + 1);
	assert_string_equal(last, "last.eml"); /* inserted last, listed last */
	assert_int_equal(store_msg_list(fx->s, fx->inbox, 0, out, 0), 0);
	assert_int_equal(store_msg_list(fx->s, fx->top, 0, out, 100), 0);
	assert_int_equal(store_msg_list(fx->s, fx->inbox, INT64_MAX, out, 100), 0);
	/* A page of three, starting inside the folder. */
	n = store_msg_list(fx->s, fx->inbox, 0, out, 3);
	assert_int_equal(n, 3);
	int64_t third = out[2].id;
	n = store_msg_list(fx->s, fx->inbox, out[1].id, out, 3);
	assert_int_equal(n, 3);
	assert_int_equal(out[0].id, third);
	free(out);
	struct store_folder f;
	OK(store_folder_get(fx->s, fx->inbox, &f));
	assert_int_equal(f.messages, N + 1);
}

static void
test_msg_uids_missing(void **state)
{
	struct fx *fx = *state;
	uint32_t *uids = (uint32_t *)1;
	size_t n = 99;
	OK(store_msg_uids(fx->s, fx->inbox, &uids, &n));
	assert_int_equal(n, 0);
	free(uids);

	int64_t ids[3000];
	char name[32];
	OK(store_begin(fx->s));
	for (uint32_t i = 0; i < 3000; i++) {
		uint32_t uid = 3000 - i; /* descending insert */
		snprintf(name, sizeof(name), "%u.eml", uid);
		ids[uid - 1] = add_msg(fx->s, fx->inbox, uid, name, 10);
	}
	OK(store_commit(fx->s));
	OK(store_msg_uids(fx->s, fx->inbox, &uids, &n));
	assert_int_equal(n, 3000);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(uids[i], i + 1);
	free(uids);

	/* Cache the bodies of UIDs 1, 2 and every tenth. */
	OK(store_begin(fx->s));
	for (uint32_t uid = 1; uid <= 3000; uid++)
		if (uid <= 2 || uid % 10 == 0)
			OK(put_body(fx->s, ids[uid - 1], 10, 10, NULL));
	OK(store_commit(fx->s));
	uint32_t miss[8];
	OK(store_msg_missing_bodies(fx->s, fx->inbox, 0, miss, 8, &n));
	assert_int_equal(n, 8);
	uint32_t want[] = {3, 4, 5, 6, 7, 8, 9, 11};
	for (size_t i = 0; i < 8; i++)
		assert_int_equal(miss[i], want[i]);
	OK(store_msg_missing_bodies(fx->s, fx->inbox, 2995, miss, 8, &n));
	assert_int_equal(n, 4);
	assert_int_equal(miss[0], 2996);
	assert_int_equal(miss[3], 2999);
	OK(store_msg_missing_bodies(fx->s, fx->inbox, 3000, miss, 8, &n));
	assert_int_equal(n, 0);
	OK(store_msg_missing_bodies(fx->s, fx->inbox, 0, miss, 0, &n));
	assert_int_equal(n, 0);
	size_t total = 0;
	uint32_t after = 0;
	do {
		OK(store_msg_missing_bodies(fx->s, fx->inbox, after, miss, 8, &n));
		if (n)
			after = miss[n - 1];
		total += n;
	} while (n == 8);
	assert_int_equal(total, 3000 - 2 - 300);
}

static void
test_msg_flags_delete(void **state)
{
	struct fx *fx = *state;
	int64_t id = add_msg(fx->s, fx->inbox, 5, "five.eml", 40);
	add_msg(fx->s, fx->inbox, 6, "six.eml", 60);
	OK(store_msg_set_flags(fx->s, id, "\\Seen \\Answered", 77));
	struct store_msg r;
	OK(store_msg_get(fx->s, id, &r));
	assert_string_equal(r.flags, "\\Seen \\Answered");
	assert_int_equal(r.modseq, 77);
	OK(store_msg_set_flags(fx->s, id, NULL, 78));
	OK(store_msg_get(fx->s, id, &r));
	assert_string_equal(r.flags, "");
	assert_int_equal(store_msg_set_flags(fx->s, id + 1000, "\\Seen", 1), -1);
	assert_non_null(strstr(store_errmsg(fx->s), "not found"));
	char big[600];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(store_msg_set_flags(fx->s, id, big, 1), -1);

	OK(put_body(fx->s, id, 40, 7, NULL));
	struct store_stats st;
	OK(store_stats(fx->s, fx->acct, &st));
	assert_int_equal(st.bodies, 1);
	assert_int_equal(st.body_bytes, 40);
	raw_exec(fx->dir, "UPDATE folders SET mtime = 0");
	OK(store_msg_delete(fx->s, id));
	assert_int_equal(store_msg_get(fx->s, id, &r), 1);
	struct store_folder f;
	OK(store_folder_get(fx->s, fx->inbox, &f));
	assert_int_equal(f.messages, 1);
	assert_true(f.mtime >= time(NULL) - 5);
	assert_int_equal(raw_query(fx->dir, "SELECT count(*) FROM dead_bodies"), 0);
	OK(store_stats(fx->s, fx->acct, &st));
	assert_int_equal(st.messages, 1);
	assert_int_equal(st.bodies, 0);
	assert_int_equal(st.body_bytes, 0);
	OK(store_msg_delete(fx->s, id)); /* gone already: fine */
}

/* ---- transactions and numbers ---- */

static void
test_transactions(void **state)
{
	struct fx *fx = *state;
	assert_int_equal(store_commit(fx->s), -1);
	assert_non_null(strstr(store_errmsg(fx->s), "no transaction"));
	store_rollback(fx->s); /* harmless */
	OK(store_begin(fx->s));
	assert_int_equal(store_begin(fx->s), -1);
	assert_non_null(strstr(store_errmsg(fx->s), "nesting"));
	int64_t id = add_msg(fx->s, fx->inbox, 1, "one.eml", 10);
	store_rollback(fx->s);
	struct store_msg r;
	assert_int_equal(store_msg_get(fx->s, id, &r), 1);
	struct store_folder f;
	OK(store_folder_get(fx->s, fx->inbox, &f));
	assert_int_equal(f.messages, 0);
	OK(store_begin(fx->s));
	id = add_msg(fx->s, fx->inbox, 1, "one.eml", 10);
	OK(store_commit(fx->s));
	OK(store_msg_get(fx->s, id, &r));
}

static void
test_stats(void **state)
{
	struct fx *fx = *state;
	int64_t w, wt, wi, sent, ob;
	OK(store_account_ensure(fx->s, "work", &w));
	OK(store_folder_ensure(fx->s, w, 0, "work", STORE_FOLDER_ACCOUNT, "", 0, 0, &wt));
	OK(store_folder_ensure(fx->s, w, wt, "INBOX", STORE_FOLDER_MAILBOX, "INBOX", '/', 0, &wi));
	OK(store_folder_ensure(fx->s, fx->acct, fx->top, "Sent", STORE_FOLDER_MAILBOX, "Sent", '/',
			       8, &sent));
	OK(store_folder_ensure(fx->s, fx->acct, fx->top, "outbox", STORE_FOLDER_OUTBOX, "", 0, 0,
			       &ob));
	int64_t a = add_msg(fx->s, fx->inbox, 1, "a.eml", 1000);
	add_msg(fx->s, sent, 1, "b.eml", 2000);
	int64_t c = add_msg(fx->s, wi, 1, "c.eml", 3000);
	OK(put_body(fx->s, a, 1000, 100, NULL));
	OK(put_body(fx->s, c, 3001, 100, NULL));
	struct store_stats st;
	OK(store_stats(fx->s, fx->acct, &st));
	assert_int_equal(st.folders, 2); /* INBOX, Sent */
	assert_int_equal(st.messages, 2);
	assert_int_equal(st.bodies, 1);
	assert_int_equal(st.body_bytes, 1000);
	assert_true(st.file_bytes > 4096);
	OK(store_stats(fx->s, w, &st));
	assert_int_equal(st.folders, 1);
	assert_int_equal(st.messages, 1);
	assert_int_equal(st.bodies, 1);
	assert_int_equal(st.body_bytes, 3001);
	OK(store_stats(fx->s, 0, &st));
	assert_int_equal(st.folders, 3);
	assert_int_equal(st.messages, 3);
	assert_int_equal(st.bodies, 2);
	assert_int_equal(st.body_bytes, 4001);
	OK(store_stats(fx->s, 4242, &st));
	assert_int_equal(st.folders, 0);
	assert_int_equal(st.messages, 0);
	/* The counters agree with the rows. */
	assert_int_equal(raw_query(fx->dir, "SELECT sum(size) FROM messages WHERE body_pack"),
			 4001);
}

/* ---- query plans ---- */

static sqlite3 *last_db;

static int
grab_db(sqlite3 *db, char **err, const struct sqlite3_api_routines *api)
{
	(void)err;
	(void)api;
	last_db = db;
	return SQLITE_OK;
}

/* The plan of `sql` on db, one detail per line. */
static void
plan_of(sqlite3 *db, const char *sql, char *out, size_t len)
{
	char *q = sqlite3_mprintf("EXPLAIN QUERY PLAN %s", sql);
	sqlite3_stmt *st = NULL;
	size_t used = 0;
	out[0] = '\0';
	assert_int_equal(sqlite3_prepare_v2(db, q, -1, &st, NULL), SQLITE_OK);
	while (sqlite3_step(st) == SQLITE_ROW && used < len) {
		int n = snprintf(out + used, len - used, "%s\n",
				 (const char *)sqlite3_column_text(st, 3));
		used += n > 0 ? (size_t)n : 0;
	}
	sqlite3_finalize(st);
	sqlite3_free(q);
}

static void
test_query_plans(void **state)
{
	(void)state;
	char dir[64];
	make_tmp(dir, sizeof(dir));
	last_db = NULL;
	assert_int_equal(sqlite3_auto_extension((void (*)(void))grab_db), SQLITE_OK);
	struct store *s = open_ok(dir);
	sqlite3_cancel_auto_extension((void (*)(void))grab_db);
	sqlite3 *db = last_db;
	assert_non_null(db);

	/* Use every function so that every statement is prepared. */
	struct fx fxs = {.s = s}, *fx = &fxs;
	int64_t a, top, inbox, id;
	OK(store_account_ensure(s, "p", &a));
	OK(store_folder_ensure(s, a, 0, "p", STORE_FOLDER_ACCOUNT, "", 0, 0, &top));
	OK(store_folder_ensure(s, a, top, "INBOX", STORE_FOLDER_MAILBOX, "INBOX", '/', 0, &inbox));
	struct store_folder f[2];
	store_folder_get(s, inbox, f);
	store_folder_lookup(s, top, "INBOX", f);
	OK(store_folder_set_state(s, inbox, 1, 2, 3));
	assert_int_equal(store_folder_children(s, top, "", f, 2), 1);
	struct each_ctx c = {.s = s, .stop_at = -1};
	OK(store_folder_each(s, a, each_cb, &c));
	id = add_msg(s, inbox, 1, "1.eml", 10);
	struct store_msg m[2];
	OK(store_msg_get(s, id, m));
	OK(store_msg_lookup(s, inbox, "1.eml", m));
	OK(store_msg_by_uid(s, inbox, 1, m));
	assert_int_equal(store_msg_list(s, inbox, 0, m, 2), 1);
	uint32_t *uids, miss[2];
	size_t n;
	OK(store_msg_uids(s, inbox, &uids, &n));
	free(uids);
	OK(store_msg_missing_bodies(s, inbox, 0, miss, 2, &n));
	OK(store_msg_set_flags(s, id, "", 1));
	OK(put_body(s, id, 300000, 100000, NULL));
	OK(put_body(s, id, 10, 10, NULL));
	unsigned char buf[8];
	OK(store_body_read(s, id, 0, buf, sizeof(buf), &n));
	struct store_body_writer *w = NULL;
	OK(store_body_begin(s, id, 10, &w, NULL));
	OK(store_body_end(&w, false));
	assert_int_equal(store_body_read(s, id, 0, buf, sizeof(buf), &n), 1);
	struct store_stats st;
	OK(store_stats(s, a, &st));
	OK(store_stats(s, 0, &st));
	OK(store_msg_delete(s, id));
	OK(store_folder_delete(s, inbox));
	OK(store_begin(s));
	OK(store_commit(s));
	OK(store_begin(s));
	store_rollback(s);

	/* Collect the store's statements first: EXPLAIN adds statements to the list. */
	char *sqls[64];
	int nsql = 0;
	for (sqlite3_stmt *p = sqlite3_next_stmt(db, NULL); p && nsql < 64;
	     p = sqlite3_next_stmt(db, p))
		sqls[nsql++] = strdup(sqlite3_sql(p));
	assert_true(nsql >= 29);
	char plan[2048];
	int checked = 0;
	bool saw_name = false, saw_uid = false, saw_list = false, saw_missing = false;
	for (int i = 0; i < nsql; i++) {
		plan_of(db, sqls[i], plan, sizeof(plan));
		/* No statement reads a whole table of messages or bodies, or sorts. */
		bool bad = strstr(plan, "SCAN messages") || strstr(plan, "SCAN bodies") ||
			   strstr(plan, "TEMP B-TREE") ||
			   (strstr(plan, "SCAN folders") && !strstr(sqls[i], "kind IN (1, 2)"));
		if (bad)
			print_error("full scan or sort in:\n%s\n%s", sqls[i], plan);
		assert_false(bad);
		if (strstr(sqls[i], "FROM messages WHERE folder_id = ?1 AND name = ?2")) {
			assert_non_null(strstr(plan, "SEARCH messages USING INDEX messages_name"
						     " (folder_id=? AND name=?)"));
			saw_name = true;
		}
		if (strstr(sqls[i], "FROM messages WHERE folder_id = ?1 AND uid = ?2")) {
			assert_non_null(strstr(plan, "SEARCH messages USING INDEX messages_uid"
						     " (folder_id=? AND uid=?)"));
			saw_uid = true;
		}
		if (strstr(sqls[i], "FROM messages WHERE folder_id = ?1 AND id > ?2")) {
			assert_non_null(strstr(plan, "SEARCH messages USING INDEX messages_folder"
						     " (folder_id=? AND rowid>?)"));
			saw_list = true;
		}
		if (strstr(sqls[i], "AND has_body = 0")) {
			assert_non_null(strstr(plan, "SEARCH messages USING INDEX messages_uid"
						     " (folder_id=? AND uid>?)"));
			saw_missing = true;
		}
		checked++;
		free(sqls[i]);
	}
	assert_true(saw_name && saw_uid && saw_list && saw_missing);
	assert_true(checked >= 29);
	store_close(&s);
	rm_tree(dir);
}

/* ---- two threads on one file ---- */

enum { CONC_MSGS = 400 };

struct conc {
	const char *dir;
	int64_t folder;
	int64_t ids[CONC_MSGS];
	uint64_t sizes[CONC_MSGS];
	int done, errors, reads, lists, rounds; /* __atomic */
	char err[512];
};

static int
conc_get(int *p)
{
	return __atomic_load_n(p, __ATOMIC_SEQ_CST);
}

static void
conc_add(int *p)
{
	__atomic_add_fetch(p, 1, __ATOMIC_SEQ_CST);
}

static void
conc_fail(struct conc *c, struct store *s, const char *what)
{
	conc_add(&c->errors);
	snprintf(c->err, sizeof(c->err), "%s: %s", what, s ? store_errmsg(s) : "open");
}

/* Writes every body (the first 300 in transactions of 50, the rest in autocommit mode) and
 * adds messages on the way; then rewrites them until the reader has listed the folder a
 * few times while it wrote. */
static void *
conc_writer(void *arg)
{
	struct conc *c = arg;
	struct store *s = NULL;
	char err[256];
	if (store_open(c->dir, &s, err, sizeof(err)) != 0) {
		conc_fail(c, NULL, err);
		goto out;
	}
	for (int round = 0; round == 0 || (conc_get(&c->lists) < 3 && round < 100); round++) {
		for (int i = 0; i < CONC_MSGS; i++) {
			if (i < 300 && i % 50 == 0 && store_begin(s) != 0)
				conc_fail(c, s, "begin");
			if (put_body(s, c->ids[i], c->sizes[i], 12 * 1024, NULL) != 0)
				conc_fail(c, s, "body");
			if (i % 20 == 0) {
				struct store_msg m = {.folder_id = c->folder,
						      .uid = 100000 + (uint32_t)i};
				snprintf(m.name, sizeof(m.name), "new-%d.eml", i);
				if (store_msg_upsert(s, &m) != 0)
					conc_fail(c, s, "upsert");
			}
			if (i < 300 && i % 50 == 49 && store_commit(s) != 0)
				conc_fail(c, s, "commit");
		}
		conc_add(&c->rounds);
	}
out:
	store_close(&s);
	__atomic_store_n(&c->done, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

static void *
conc_flagger(void *arg)
{
	struct conc *c = arg;
	struct store *s = NULL;
	char err[256];
	if (store_open(c->dir, &s, err, sizeof(err)) != 0) {
		conc_fail(c, NULL, err);
		return NULL;
	}
	for (unsigned i = 0; !conc_get(&c->done); i++)
		if (store_msg_set_flags(s, c->ids[i % CONC_MSGS], i % 2 ? "\\Seen" : "", i) != 0)
			conc_fail(c, s, "flags");
	store_close(&s);
	return NULL;
}

/* Read a body in 128 KiB pieces: a body being rewritten may be "not cached" (1) at any
 * moment, but whatever is read must be right. */
static void
conc_read_body(struct conc *c, struct store *s, int64_t id, uint64_t size)
{
	static __thread unsigned char buf[128 * 1024];
	uint64_t off = 0;
	size_t got;
	int rc;
	while ((rc = store_body_read(s, id, off, buf, sizeof(buf), &got)) == 0) {
		for (size_t i = 0; i < got; i++)
			if (buf[i] != pat(id, off + i)) {
				conc_fail(c, s, "body content");
				return;
			}
		off += got;
		if (got < sizeof(buf))
			break;
	}
	if (rc < 0)
		conc_fail(c, s, "read");
	else if (rc == 0 && off != size)
		conc_fail(c, s, "body size");
	else if (rc == 0)
		conc_add(&c->reads);
}

static void *
conc_reader(void *arg)
{
	struct conc *c = arg;
	struct store *s = NULL;
	struct store_msg *page = calloc(64, sizeof(*page));
	char err[256];
	if (!page || store_open(c->dir, &s, err, sizeof(err)) != 0) {
		conc_fail(c, NULL, err);
		goto out;
	}
	while (!conc_get(&c->done)) {
		int64_t after = 0;
		int n;
		while ((n = store_msg_list(s, c->folder, after, page, 64)) > 0) {
			after = page[n - 1].id;
			for (int i = 0; i < n; i++) {
				struct store_msg m;
				if (store_msg_lookup(s, c->folder, page[i].name, &m) != 0)
					conc_fail(c, s, "lookup");
				else if (m.has_body && m.uid < 100000)
					conc_read_body(c, s, m.id, c->sizes[m.uid - 1]);
			}
		}
		if (n < 0)
			conc_fail(c, s, "list");
		struct store_stats st;
		if (store_stats(s, 0, &st) != 0)
			conc_fail(c, s, "stats");
		conc_add(&c->lists);
	}
out:
	free(page);
	store_close(&s);
	return NULL;
}

static void
test_concurrent(void **state)
{
	struct fx *fx = *state;
	struct conc *c = calloc(1, sizeof(*c));
	assert_non_null(c);
	c->dir = fx->dir;
	c->folder = fx->inbox;
	char name[32];
	OK(store_begin(fx->s));
	for (int i = 0; i < CONC_MSGS; i++) {
		c->sizes[i] = (i % 7 == 0) ? 300000 + (uint64_t)i : 2000 + (uint64_t)i * 37;
		snprintf(name, sizeof(name), "%04d.eml", i);
		c->ids[i] = add_msg(fx->s, fx->inbox, (uint32_t)i + 1, name, c->sizes[i]);
	}
	OK(store_commit(fx->s));
	pthread_t tw, tr, tf;
	assert_int_equal(pthread_create(&tr, NULL, conc_reader, c), 0);
	assert_int_equal(pthread_create(&tf, NULL, conc_flagger, c), 0);
	assert_int_equal(pthread_create(&tw, NULL, conc_writer, c), 0);
	pthread_join(tw, NULL);
	pthread_join(tr, NULL);
	pthread_join(tf, NULL);
	if (c->errors)
		print_error("%d errors, last: %s\n", c->errors, c->err);
	assert_int_equal(c->errors, 0);
	assert_true(c->lists >= 3 || c->rounds == 100);
	assert_true(c->reads > 0);
	for (int i = 0; i < CONC_MSGS; i++)
		assert_true(check_body(fx->s, c->ids[i], c->sizes[i], 128 * 1024));
	struct store_stats st;
	OK(store_stats(fx->s, fx->acct, &st));
	assert_int_equal(st.messages, CONC_MSGS + CONC_MSGS / 20);
	assert_int_equal(st.bodies, CONC_MSGS);
	free(c);
}

/* A UIDVALIDITY change: rows let go of their UIDs, the re-read binds the same messages
 * (Message-ID + size) to the new ones with their names; the rest is found as unbound. */
static void
test_msg_unbind_adopt(void **state)
{
	struct fx *fx = *state;
	int64_t a = add_msg(fx->s, fx->inbox, 1, "a.eml", 100);
	int64_t b = add_msg(fx->s, fx->inbox, 2, "b.eml", 200);
	int64_t c = add_msg(fx->s, fx->inbox, 3, "c.eml", 300);
	OK(store_msg_unbind(fx->s, fx->inbox));
	struct store_msg m;
	assert_int_equal(store_msg_by_uid(fx->s, fx->inbox, 1, &m), 1);
	uint32_t *uids = NULL;
	size_t n = 9;
	OK(store_msg_uids(fx->s, fx->inbox, &uids, &n));
	assert_int_equal(n, 0);
	free(uids);
	/* Still listed under their names. */
	OK(store_msg_lookup(fx->s, fx->inbox, "b.eml", &m));
	assert_int_equal(m.id, b);
	/* UID 2's message is now UID 7 (new UIDs may collide with the old ones: 1). */
	OK(store_msg_adopt(fx->s, fx->inbox, "<2@example.com>", 200, 7, &m));
	assert_int_equal(m.id, b);
	assert_int_equal(m.uid, 7);
	assert_string_equal(m.name, "b.eml");
	OK(store_msg_adopt(fx->s, fx->inbox, "<1@example.com>", 100, 1, &m));
	assert_int_equal(m.id, a);
	/* Not again, not with another size, not without a Message-ID. */
	assert_int_equal(store_msg_adopt(fx->s, fx->inbox, "<2@example.com>", 200, 8, &m), 1);
	assert_int_equal(store_msg_adopt(fx->s, fx->inbox, "<3@example.com>", 301, 8, &m), 1);
	assert_int_equal(store_msg_adopt(fx->s, fx->inbox, "", 300, 8, &m), 1);
	OK(store_msg_by_uid(fx->s, fx->inbox, 7, &m));
	assert_int_equal(m.id, b);
	/* The one nobody claimed. */
	OK(store_msg_unbound(fx->s, fx->inbox, &m));
	assert_int_equal(m.id, c);
	OK(store_msg_delete(fx->s, c));
	assert_int_equal(store_msg_unbound(fx->s, fx->inbox, &m), 1);
	OK(store_msg_uids(fx->s, fx->inbox, &uids, &n));
	assert_int_equal(n, 2);
	assert_int_equal(uids[0], 1);
	assert_int_equal(uids[1], 7);
	free(uids);
}

int
main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--read-and-close") == 0) {
		/* For test_open_keeps_locks: another process reading the cache, then closing. */
		sqlite3 *db = NULL;
		char path[128];
		snprintf(path, sizeof(path), "%s/mailfs.db", argv[2]);
		int ok = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK &&
			 sqlite3_exec(db, "SELECT count(*) FROM accounts", NULL, NULL, NULL) ==
				 SQLITE_OK;
		sqlite3_close(db);
		return ok ? 0 : 1;
	}
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_open_modes),
	    cmocka_unit_test(test_open_race),
	    cmocka_unit_test(test_open_keeps_locks),
	    cmocka_unit_test(test_open_errors),
	    cmocka_unit_test(test_open_newer),
	    cmocka_unit_test_setup_teardown(test_reopen_keeps_ids, setup, teardown),
	    cmocka_unit_test(test_ino),
	    cmocka_unit_test_setup_teardown(test_accounts, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_folder_ensure, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_folder_get_lookup, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_folder_children, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_folder_each, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_folder_delete_cascade, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_msg_upsert, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_msg_finish, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_msg_lookups, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_msg_list, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_msg_uids_missing, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_msg_flags_delete, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_transactions, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stats, setup, teardown),
	    cmocka_unit_test(test_query_plans),
	    cmocka_unit_test_setup_teardown(test_msg_unbind_adopt, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_concurrent, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
