/* test-change.c - unit tests for cache/change.c and cache/journal.c: what each change made
 * through the mount does to the rows and which journal entries it queues, in which order
 * (create/write/commit with the CRLF change, not-a-message refused, overwrite by rename,
 * an editor's backup rename, rewrite in place, rm to Trash and in Trash, mv across folders
 * and back, flags, folders, and the recovery of files whose writer never closed them). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cache/change.h"
#include "cache/journal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "net/imap.h"
#include "rmtree.h"

#define OK(x) assert_int_equal((x), 0)

struct fx {
	char dir[64];
	struct store *s;
	struct cfg_account cfg;
	struct change_acct a;
	int64_t inbox, trash, work;
};

static int
setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	snprintf(fx->dir, sizeof(fx->dir), "/tmp/test-change-XXXXXX");
	assert_non_null(mkdtemp(fx->dir));
	char err[256];
	OK(store_open(fx->dir, &fx->s, err, sizeof(err)));
	fx->cfg.name = (char *)"p";
	fx->cfg.outbox = (char *)"outbox";
	fx->cfg.delete_mode = CFG_DELETE_TRASH;
	fx->a.cfg = &fx->cfg;
	OK(store_account_ensure(fx->s, "p", &fx->a.account_id));
	OK(store_folder_ensure(fx->s, fx->a.account_id, 0, "p", STORE_FOLDER_ACCOUNT, "", 0, 0,
			       &fx->a.top_id));
	OK(store_folder_ensure(fx->s, fx->a.account_id, fx->a.top_id, "INBOX",
			       STORE_FOLDER_MAILBOX, "INBOX", '.', 0, &fx->inbox));
	OK(store_folder_ensure(fx->s, fx->a.account_id, fx->a.top_id, "Bin", STORE_FOLDER_MAILBOX,
			       "Bin", '.', IMAP_MBOX_TRASH, &fx->trash));
	OK(store_folder_ensure(fx->s, fx->a.account_id, fx->a.top_id, "Work",
			       STORE_FOLDER_MAILBOX, "Work", '.', 0, &fx->work));
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *fx = *state;
	store_close(&fx->s);
	rm_tree(fx->dir);
	free(fx);
	return 0;
}

/* A message on the server: UID uid, cached body `body`. */
static int64_t
server_msg(struct fx *fx, int64_t folder, uint32_t uid, const char *name, const char *body)
{
	struct store_msg m;
	memset(&m, 0, sizeof(m));
	m.folder_id = folder;
	m.uid = uid;
	m.internaldate = 1000 + uid;
	m.size = strlen(body);
	snprintf(m.flags, sizeof(m.flags), "\\Seen");
	snprintf(m.name, sizeof(m.name), "%s", name);
	OK(store_msg_upsert(fx->s, &m));
	struct store_body_writer *w;
	OK(store_body_begin(fx->s, m.id, m.size, &w, NULL));
	OK(store_body_write(w, body, m.size));
	OK(store_body_end(&w, true));
	return m.id;
}

static void
body_is(struct fx *fx, int64_t id, const char *want)
{
	char buf[4096];
	size_t got = 0;
	OK(store_body_read(fx->s, id, 0, buf, sizeof(buf), &got));
	assert_int_equal(got, strlen(want));
	assert_memory_equal(buf, want, got);
}

/* The journal as "OP:msg:folder:uid" words, in order. */
static void
journal_is(struct fx *fx, const char *want)
{
	char got[2048] = "";
	struct journal_entry e;
	static const char *const ops[] = {"?", "APPEND", "EXPUNGE", "MOVE", "FLAGS",
					  "CREATE", "DELETE", "RENAME"};
	for (int64_t after = 0; journal_next(fx->s, fx->a.account_id, after, &e) == 0;
	     after = e.id) {
		char one[128];
		snprintf(one, sizeof(one), "%s%s:%lld:%lld:%u", got[0] ? " " : "", ops[e.op],
			 (long long)e.msg_id, (long long)e.folder_id, e.uid);
		strncat(got, one, sizeof(got) - strlen(got) - 1);
	}
	assert_string_equal(got, want);
}

static void
clear_journal(struct fx *fx)
{
	struct journal_entry e;
	while (journal_next(fx->s, fx->a.account_id, 0, &e) == 0)
		OK(journal_done(fx->s, e.id));
}

static int64_t
write_file(struct fx *fx, int64_t folder, const char *name, const char *data)
{
	struct store_msg m;
	OK(change_create(fx->s, folder, name, &m));
	uint64_t size;
	OK(change_write(fx->s, m.id, data, strlen(data), 0, &size));
	assert_int_equal(size, strlen(data));
	return m.id;
}

static void
test_create_commit(void **state)
{
	struct fx *fx = *state;
	int64_t id = write_file(fx, fx->inbox, "new.eml", "Subject: hi\nMessage-ID: <a@b>\n\nx\r\ny\n");
	struct store_msg m;
	OK(store_msg_get(fx->s, id, &m));
	assert_int_equal(m.state, STORE_MSG_SCRATCH);
	assert_int_equal(m.uid, 0);
	journal_is(fx, ""); /* nothing before the close */
	OK(change_commit(fx->s, &fx->a, id, false));
	OK(store_msg_get(fx->s, id, &m));
	assert_int_equal(m.state, STORE_MSG_PENDING);
	assert_true(m.has_body);
	assert_string_equal(m.message_id, "<a@b>");
	assert_string_equal(m.name, "new.eml");
	body_is(fx, id, "Subject: hi\r\nMessage-ID: <a@b>\r\n\r\nx\r\ny\r\n");
	assert_int_equal(m.size, 40);
	char want[64];
	snprintf(want, sizeof(want), "APPEND:%lld:0:0", (long long)id);
	journal_is(fx, want);
	/* The scratch file is gone; a second commit does nothing. */
	assert_int_equal(store_scratch_open(fx->s, id, false), -1);
	OK(change_commit(fx->s, &fx->a, id, false));
	journal_is(fx, want);
	assert_int_equal(change_create(fx->s, fx->inbox, "new.eml", &m), EEXIST);
}

static void
test_not_a_message(void **state)
{
	struct fx *fx = *state;
	int64_t id = write_file(fx, fx->inbox, "bad.eml", "\x89PNG\r\n\x1a\n binary");
	assert_int_equal(change_commit(fx->s, &fx->a, id, false), EINVAL);
	int64_t empty = write_file(fx, fx->inbox, "empty.eml", "");
	assert_int_equal(change_commit(fx->s, &fx->a, empty, false), EINVAL);
	int64_t text = write_file(fx, fx->inbox, "text.eml", "just some words\nno header\n");
	assert_int_equal(change_commit(fx->s, &fx->a, text, true), EINVAL);
	struct store_msg m;
	OK(store_msg_get(fx->s, id, &m));
	assert_int_equal(m.state, STORE_MSG_SCRATCH); /* kept, bytes and all */
	int fd = store_scratch_open(fx->s, id, false);
	assert_true(fd >= 0);
	close(fd);
	/* A name not ending in .eml is never committed. */
	int64_t swp = write_file(fx, fx->inbox, ".new.eml.swp", "Subject: x\n\n");
	OK(change_commit(fx->s, &fx->a, swp, false));
	OK(store_msg_get(fx->s, swp, &m));
	assert_int_equal(m.state, STORE_MSG_SCRATCH);
	journal_is(fx, "");
}

/* change_renamed.take for the tests: remembers the id, says "written". */
static int64_t taken;
static bool
take_dirty(int64_t id)
{
	taken = id;
	return true;
}

static void
test_rename_over(void **state)
{
	struct fx *fx = *state;
	int64_t old = server_msg(fx, fx->inbox, 7, "x.eml", "Subject: old\r\n\r\nold\r\n");
	int64_t tmp = write_file(fx, fx->inbox, "sedAbC123", "Subject: new\n\nnew\n");
	struct change_renamed rn = {.take = take_dirty};
	taken = 0;
	OK(change_rename_msg(fx->s, &fx->a, fx->inbox, "sedAbC123", fx->inbox, "x.eml", false, &rn));
	/* What the fs layer is told: the row, that it was scratch, committed now. */
	assert_int_equal(rn.id, tmp);
	assert_int_equal(taken, tmp);
	assert_true(rn.was_scratch);
	assert_true(rn.was_dirty);
	assert_int_equal(rn.state, STORE_MSG_PENDING);
	struct store_msg m;
	assert_int_equal(store_msg_get(fx->s, old, &m), 1);
	OK(store_msg_get(fx->s, tmp, &m));
	assert_string_equal(m.name, "x.eml");
	assert_int_equal(m.state, STORE_MSG_PENDING);
	assert_string_equal(m.flags, "\\Seen");      /* kept */
	assert_int_equal(m.internaldate, 1007);      /* kept: the date was not set */
	char want[128];
	snprintf(want, sizeof(want), "APPEND:%lld:0:0 EXPUNGE:0:%lld:7", (long long)tmp,
		 (long long)fx->inbox);
	journal_is(fx, want);
	/* noreplace */
	write_file(fx, fx->inbox, "other", "Subject: o\n\n");
	assert_int_equal(
	    change_rename_msg(fx->s, &fx->a, fx->inbox, "other", fx->inbox, "x.eml", true, NULL), EEXIST);
}

static void
test_editor_backup(void **state)
{
	struct fx *fx = *state;
	int64_t old = server_msg(fx, fx->inbox, 9, "d.eml", "Subject: d\r\n\r\nv1\r\n");
	/* vim: rename to the backup name, write the new file, remove the backup. */
	OK(change_rename_msg(fx->s, &fx->a, fx->inbox, "d.eml", fx->inbox, "d.eml~", false, NULL));
	journal_is(fx, "");
	int64_t nw = write_file(fx, fx->inbox, "d.eml", "Subject: d\n\nv2\n");
	OK(change_commit(fx->s, &fx->a, nw, true));
	struct store_msg m;
	OK(store_msg_get(fx->s, old, &m));
	assert_int_equal(m.state, STORE_MSG_DETACHED);
	OK(store_msg_get(fx->s, nw, &m));
	assert_string_equal(m.flags, "\\Seen");
	assert_int_equal(m.internaldate, 1009);
	int64_t trash;
	OK(change_unlink(fx->s, &fx->a, fx->inbox, "d.eml~", &trash));
	assert_int_equal(trash, 0); /* the backup was a local copy only */
	char want[128];
	snprintf(want, sizeof(want), "APPEND:%lld:0:0 EXPUNGE:0:%lld:9", (long long)nw,
		 (long long)fx->inbox);
	journal_is(fx, want);
}

static void
test_rewrite_in_place(void **state)
{
	struct fx *fx = *state;
	int64_t id = server_msg(fx, fx->work, 3, "w.eml", "Subject: w\r\n\r\nabc\r\n");
	OK(change_truncate(fx->s, id, 0));
	uint64_t size;
	OK(change_write(fx->s, id, "Subject: w2\n\n", 13, 0, &size));
	struct store_msg m;
	OK(store_msg_get(fx->s, id, &m));
	assert_int_equal(m.state, STORE_MSG_SCRATCH);
	assert_int_equal(m.orig_uid, 3);
	OK(change_commit(fx->s, &fx->a, id, false));
	body_is(fx, id, "Subject: w2\r\n\r\n");
	char want[128];
	snprintf(want, sizeof(want), "APPEND:%lld:0:0 EXPUNGE:0:%lld:3", (long long)id,
		 (long long)fx->work);
	journal_is(fx, want);
	/* Appending to a message keeps what it had. */
	clear_journal(fx);
	int64_t b = server_msg(fx, fx->work, 4, "b.eml", "Subject: b\r\n\r\n");
	OK(change_write(fx->s, b, "more\r\n", 6, 14, &size));
	assert_int_equal(size, 20);
	OK(change_commit(fx->s, &fx->a, b, false));
	body_is(fx, b, "Subject: b\r\n\r\nmore\r\n");
}

static void
test_rm(void **state)
{
	struct fx *fx = *state;
	int64_t id = server_msg(fx, fx->inbox, 5, "r.eml", "Subject: r\r\n\r\n");
	int64_t trash;
	OK(change_unlink(fx->s, &fx->a, fx->inbox, "r.eml", &trash));
	assert_int_equal(trash, fx->trash); /* the \Trash special-use folder */
	struct store_msg m;
	OK(store_msg_get(fx->s, id, &m));
	assert_int_equal(m.folder_id, fx->trash);
	assert_int_equal(m.state, STORE_MSG_MOVING);
	assert_int_equal(m.orig_folder, fx->inbox);
	assert_int_equal(m.orig_uid, 5);
	char want[128];
	snprintf(want, sizeof(want), "MOVE:%lld:%lld:5", (long long)id, (long long)fx->inbox);
	journal_is(fx, want);
	/* rm in Trash: expunged where it really is. */
	OK(change_unlink(fx->s, &fx->a, fx->trash, "r.eml", &trash));
	assert_int_equal(trash, 0);
	assert_int_equal(store_msg_get(fx->s, id, &m), 1);
	snprintf(want, sizeof(want), "MOVE:%lld:%lld:5 EXPUNGE:0:%lld:5", (long long)id,
		 (long long)fx->inbox, (long long)fx->inbox);
	journal_is(fx, want);
	/* delete = expunge */
	clear_journal(fx);
	fx->cfg.delete_mode = CFG_DELETE_EXPUNGE;
	server_msg(fx, fx->inbox, 6, "e.eml", "Subject: e\r\n\r\n");
	OK(change_unlink(fx->s, &fx->a, fx->inbox, "e.eml", NULL));
	snprintf(want, sizeof(want), "EXPUNGE:0:%lld:6", (long long)fx->inbox);
	journal_is(fx, want);
	assert_int_equal(change_unlink(fx->s, &fx->a, fx->inbox, "e.eml", NULL), ENOENT);
}

static void
test_move(void **state)
{
	struct fx *fx = *state;
	int64_t id = server_msg(fx, fx->inbox, 8, "m.eml", "Subject: m\r\n\r\n");
	OK(change_rename_msg(fx->s, &fx->a, fx->inbox, "m.eml", fx->work, "m.eml", false, NULL));
	struct store_msg m;
	OK(store_msg_get(fx->s, id, &m));
	assert_int_equal(m.state, STORE_MSG_MOVING);
	assert_int_equal(m.folder_id, fx->work);
	/* Renamed inside the folder: nothing more for the server. */
	OK(change_rename_msg(fx->s, &fx->a, fx->work, "m.eml", fx->work, "n.eml", false, NULL));
	char want[128];
	snprintf(want, sizeof(want), "MOVE:%lld:%lld:8", (long long)id, (long long)fx->inbox);
	journal_is(fx, want);
	/* Moved back before the MOVE ran: it is where the server has it again. */
	OK(change_rename_msg(fx->s, &fx->a, fx->work, "n.eml", fx->inbox, "n.eml", false, NULL));
	OK(store_msg_get(fx->s, id, &m));
	assert_int_equal(m.state, STORE_MSG_SERVER);
	assert_int_equal(m.uid, 8);
	/* A missing name is ENOENT with no row (fs then looks for a folder of that name). */
	struct change_renamed rn = {.take = NULL};
	assert_int_equal(change_rename_msg(fx->s, &fx->a, fx->inbox, "none.eml", fx->work,
					   "none.eml", false, &rn),
			 ENOENT);
	assert_int_equal(rn.id, 0);
	/* Not into a folder that is not a mailbox. */
	assert_int_equal(
	    change_rename_msg(fx->s, &fx->a, fx->inbox, "n.eml", fx->a.top_id, "n.eml", false, NULL),
	    EPERM);
}

static void
test_flags(void **state)
{
	struct fx *fx = *state;
	int64_t id = server_msg(fx, fx->inbox, 2, "f.eml", "Subject: f\r\n\r\n");
	OK(change_set_flags(fx->s, &fx->a, id, " \\Flagged  $Label1 \\Recent\n"));
	struct store_msg m;
	OK(store_msg_get(fx->s, id, &m));
	assert_string_equal(m.flags, "\\Flagged $Label1");
	assert_int_equal(change_set_flags(fx->s, &fx->a, id, "bad\"flag"), EINVAL);
	char want[64];
	snprintf(want, sizeof(want), "FLAGS:%lld:0:0", (long long)id);
	journal_is(fx, want);

	/* Flags set on a message whose APPEND is queued (maybe in flight with the old flags):
	 * a FLAGS entry follows the APPEND, so the server gets them once it has the UID. */
	clear_journal(fx);
	int64_t p = write_file(fx, fx->inbox, "p.eml", "Subject: p\n\nx\n");
	OK(change_commit(fx->s, &fx->a, p, false));
	OK(change_set_flags(fx->s, &fx->a, p, "\\Flagged"));
	OK(store_msg_get(fx->s, p, &m));
	assert_string_equal(m.flags, "\\Flagged");
	char want2[128];
	snprintf(want2, sizeof(want2), "APPEND:%lld:0:0 FLAGS:%lld:0:0", (long long)p, (long long)p);
	journal_is(fx, want2);
}

static void
test_folders(void **state)
{
	struct fx *fx = *state;
	int64_t id;
	OK(change_mkdir(fx->s, &fx->a, fx->work, "Sub", &id));
	struct store_folder f;
	OK(store_folder_get(fx->s, id, &f));
	assert_string_equal(f.server_name, "Work.Sub");
	assert_true(f.local);
	assert_int_equal(change_mkdir(fx->s, &fx->a, fx->work, "Sub", NULL), EEXIST);
	assert_int_equal(change_mkdir(fx->s, &fx->a, fx->work, "a.b", NULL), EINVAL);
	assert_int_equal(change_mkdir(fx->s, &fx->a, fx->a.top_id, "outbox", NULL), EEXIST);
	OK(change_mkdir(fx->s, &fx->a, fx->a.top_id, "Übung", &id));
	OK(store_folder_get(fx->s, id, &f));
	assert_string_equal(f.server_name, "&ANw-bung");
	server_msg(fx, fx->work, 1, "k.eml", "Subject: k\r\n\r\n");
	assert_int_equal(change_rmdir(fx->s, &fx->a, fx->a.top_id, "Work"), ENOTEMPTY);
	assert_int_equal(change_rmdir(fx->s, &fx->a, fx->a.top_id, "INBOX"), EPERM);
	OK(change_rename_folder(fx->s, &fx->a, fx->a.top_id, "Work", fx->a.top_id, "Job", false));
	assert_int_equal(change_rename_folder(fx->s, &fx->a, fx->a.top_id, "Job", fx->work,
					      "X", false),
			 EINVAL); /* into itself */
	OK(change_rmdir(fx->s, &fx->a, fx->a.top_id, "Übung"));
	char want[256];
	snprintf(want, sizeof(want), "CREATE:0:%lld:0 CREATE:0:%lld:0 RENAME:0:%lld:0 DELETE:0:0:0",
		 (long long)(id - 1), (long long)id, (long long)fx->work);
	journal_is(fx, want);
	OK(store_folder_get(fx->s, fx->work, &f));
	assert_string_equal(f.name, "Job");
	assert_string_equal(f.server_name, "Work"); /* until the RENAME is replayed */
}

static void
test_recover(void **state)
{
	struct fx *fx = *state;
	int64_t a = write_file(fx, fx->inbox, "crash.eml", "Subject: c\n\n");
	int64_t b = write_file(fx, fx->inbox, "crash.tmp", "Subject: c\n\n");
	assert_int_equal(change_recover(fx->s, &fx->a, 1), 1);
	struct store_msg m;
	OK(store_msg_get(fx->s, a, &m));
	assert_int_equal(m.state, STORE_MSG_PENDING);
	OK(store_msg_get(fx->s, b, &m));
	assert_int_equal(m.state, STORE_MSG_SCRATCH);
	uint64_t n;
	char err[64];
	OK(journal_count(fx->s, fx->a.account_id, &n, err, sizeof(err)));
	assert_int_equal(n, 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_create_commit, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_not_a_message, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rename_over, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_editor_backup, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rewrite_in_place, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rm, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_move, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_flags, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_folders, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_recover, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
