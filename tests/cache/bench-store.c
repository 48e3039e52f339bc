/* bench-store.c - timings of cache/store.c on a scratch database (not a test; prints figures).
 *
 *   gcc -std=c17 -D_GNU_SOURCE -O2 -I. cache/store.c tests/cache/bench-store.c -lsqlite3 \
 *       -o /tmp/bench-store && /tmp/bench-store [DIR]
 *
 * Inserts 100,000 messages in transactions of 500, lists them in pages of 1,000, looks them
 * up by name and UID, writes 120 MB of bodies in 12 KB pieces (small bodies in batches of
 * 100 per transaction, and large ones in autocommit mode), reads them back in 128 KiB and
 * 4 KiB pieces, and compares incremental blob reads with substr() and store_stats() with
 * sum(length(data)). DIR defaults to a new directory under /tmp, removed at the end. */
#include "cache/store.h"
#include "rmtree.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NMSG 100000
#define PIECE (12 * 1024)

/* Wall-clock and CPU seconds: on a busy machine the CPU time is the steadier figure. */
static double cpu_s;

static double
clock_s(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double
now(void)
{
	cpu_s = clock_s(CLOCK_PROCESS_CPUTIME_ID);
	return clock_s(CLOCK_MONOTONIC);
}

/* Seconds since t0 (from now()); the CPU seconds go to cpu_s. */
static double
since(double t0)
{
	double c0 = cpu_s;
	double t = clock_s(CLOCK_MONOTONIC) - t0;
	cpu_s = clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
	return t;
}

static void
die(struct store *s, const char *what)
{
	fprintf(stderr, "bench-store: %s: %s\n", what, s ? store_errmsg(s) : "");
	exit(1);
}

/* Names as cache/names.c makes them: the date of INTERNALDATE first. The sync engine adds
 * messages in UID order, which is nearly date order, so names mostly arrive in order;
 * `scatter` mixes the dates up (mail imported out of order: the worst case for the index). */
static void
msg_name(char *buf, size_t len, uint32_t uid, bool scatter)
{
	time_t t = 1700000000 + (time_t)(scatter ? (uid * 7919u) % NMSG : uid) * 600;
	struct tm tm;
	char date[32];
	gmtime_r(&t, &tm);
	strftime(date, sizeof(date), "%Y-%m-%d_%H%M", &tm);
	snprintf(buf, len, "%s_%u_Quarterly-report-for-the-team.eml", date, uid);
}

/* Insert NMSG messages into `folder`, 500 per transaction; ids go to ids (if not NULL). */
static double
insert_msgs(struct store *s, int64_t folder, bool scatter, int64_t *ids)
{
	double t0 = now();
	for (uint32_t uid = 1; uid <= NMSG; uid++) {
		struct store_msg m = {.folder_id = folder,
				      .uid = uid,
				      .modseq = uid,
				      .internaldate = 1700000000 + uid,
				      .size = 6000 + uid % 1000};
		msg_name(m.name, sizeof(m.name), uid, scatter);
		snprintf(m.flags, sizeof(m.flags), "\\Seen");
		snprintf(m.message_id, sizeof(m.message_id), "<%u.1700000000@mail.example.com>",
			 uid);
		if (uid % 500 == 1 && store_begin(s) != 0)
			die(s, "begin");
		if (store_msg_upsert(s, &m) != 0)
			die(s, "upsert");
		if (ids)
			ids[uid - 1] = m.id;
		if (uid % 500 == 0 && store_commit(s) != 0)
			die(s, "commit");
	}
	return since(t0);
}

/* Write `n` bodies of `size` bytes to messages ids[0..n), `batch` per transaction (0: no
 * explicit transaction). Returns seconds. */
static double
write_bodies(struct store *s, const int64_t *ids, int n, uint64_t size, int batch)
{
	static unsigned char piece[PIECE];
	memset(piece, 'b', sizeof(piece));
	double t0 = now();
	for (int i = 0; i < n; i++) {
		struct store_body_writer *w = NULL;
		if (batch && i % batch == 0 && store_begin(s) != 0)
			die(s, "begin");
		if (store_body_begin(s, ids[i], size, &w, NULL) != 0)
			die(s, "body begin");
		for (uint64_t off = 0; off < size; off += PIECE) {
			size_t k = size - off < PIECE ? (size_t)(size - off) : PIECE;
			if (store_body_write(w, piece, k) != 0)
				die(s, "body write");
		}
		if (store_body_end(&w, true) != 0)
			die(s, "body end");
		if (batch && (i % batch == batch - 1 || i == n - 1) && store_commit(s) != 0)
			die(s, "commit");
	}
	return since(t0);
}

/* Read n bodies whole in `chunk` pieces; returns seconds. */
static double
read_bodies(struct store *s, const int64_t *ids, int n, size_t chunk, uint64_t *bytes)
{
	unsigned char *buf = malloc(chunk);
	double t0 = now();
	*bytes = 0;
	for (int i = 0; i < n; i++) {
		uint64_t off = 0;
		size_t got;
		do {
			if (store_body_read(s, ids[i], off, buf, chunk, &got) != 0)
				die(s, "body read");
			off += got;
		} while (got == chunk);
		*bytes += off;
	}
	free(buf);
	return since(t0);
}

/* Raw comparison: read n bodies in `chunk` pieces with blob_open or substr(). */
static double
raw_read(sqlite3 *db, const int64_t *ids, int n, size_t chunk, bool substr)
{
	unsigned char *buf = malloc(chunk);
	sqlite3_stmt *st = NULL;
	sqlite3_prepare_v2(db, "SELECT substr(data, ?2, ?3) FROM bodies WHERE msg_id = ?1", -1, &st,
			   NULL);
	double t0 = now();
	for (int i = 0; i < n; i++) {
		for (uint64_t off = 0;; off += chunk) {
			size_t got = 0;
			if (substr) {
				sqlite3_bind_int64(st, 1, ids[i]);
				sqlite3_bind_int64(st, 2, (int64_t)off + 1);
				sqlite3_bind_int64(st, 3, (int64_t)chunk);
				if (sqlite3_step(st) == SQLITE_ROW) {
					got = (size_t)sqlite3_column_bytes(st, 0);
					memcpy(buf, sqlite3_column_blob(st, 0), got);
				}
				sqlite3_reset(st);
			} else {
				sqlite3_blob *b = NULL;
				if (sqlite3_blob_open(db, "main", "bodies", "data", ids[i], 0,
						      &b) == SQLITE_OK) {
					int size = sqlite3_blob_bytes(b);
					got = off < (uint64_t)size ? (size_t)size - off : 0;
					if (got > chunk)
						got = chunk;
					sqlite3_blob_read(b, buf, (int)got, (int)off);
				}
				sqlite3_blob_close(b);
			}
			if (got < chunk)
				break;
		}
	}
	double t = since(t0);
	sqlite3_finalize(st);
	free(buf);
	return t;
}

int
main(int argc, char **argv)
{
	char tmp[64] = "/tmp/bench-store-XXXXXX";
	const char *dir = argc > 1 ? argv[1] : mkdtemp(tmp);
	struct store *s = NULL;
	char err[512], name[STORE_NAME_MAX + 1];
	int64_t acct = 0, top = 0, inbox = 0, other = 0, *ids = malloc(NMSG * sizeof(*ids));
	struct store_msg *page = calloc(1000, sizeof(*page));
	double t0, t;
	if (!dir || !ids || !page || store_open(dir, &s, err, sizeof(err)) != 0) {
		fprintf(stderr, "bench-store: %s\n", err);
		return 1;
	}
	printf("SQLite %s, database in %s\n", sqlite3_libversion(), dir);
	if (store_account_ensure(s, "bench", &acct) ||
	    store_folder_ensure(s, acct, 0, "bench", STORE_FOLDER_ACCOUNT, "", 0, 0, &top) ||
	    store_folder_ensure(s, acct, top, "INBOX", STORE_FOLDER_MAILBOX, "INBOX", '/', 0,
				&inbox) ||
	    store_folder_ensure(s, acct, top, "Other", STORE_FOLDER_MAILBOX, "Other", '/', 0,
				&other))
		die(s, "setup");

	/* 1. Insert 100,000 message rows, 500 per transaction. */
	t = insert_msgs(s, inbox, false, ids);
	printf("insert %d messages (500 per transaction):   %7.3f s  cpu %.3f s\n", NMSG, t, cpu_s);
	t = insert_msgs(s, other, true, NULL);
	printf("the same, names in scattered order:         %7.3f s  cpu %.3f s\n", t, cpu_s);

	/* 1b. The same rows again: an update of flags/modseq each (a resync). */
	t0 = now();
	for (uint32_t uid = 1; uid <= NMSG; uid++) {
		struct store_msg m = {
		    .folder_id = inbox, .uid = uid, .size = 6000 + uid % 1000, .modseq = uid + 1};
		msg_name(m.name, sizeof(m.name), uid, false);
		snprintf(m.flags, sizeof(m.flags), "\\Seen \\Flagged");
		if (uid % 500 == 1 && store_begin(s) != 0)
			die(s, "begin");
		if (store_msg_upsert(s, &m) != 0)
			die(s, "upsert");
		if (uid % 500 == 0 && store_commit(s) != 0)
			die(s, "commit");
	}
	t = since(t0);
	printf("upsert (update) %d messages:               %7.3f s  cpu %.3f s\n", NMSG, t, cpu_s);

	/* 2. List them in pages of 1,000. */
	for (int round = 0; round < 2; round++) {
		int n, total = 0;
		int64_t after = 0;
		t0 = now();
		while ((n = store_msg_list(s, inbox, after, page, 1000)) > 0) {
			total += n;
			after = page[n - 1].id;
		}
		t = since(t0);
		if (n < 0 || total != NMSG)
			die(s, "list");
		printf("list %d messages in pages of 1,000 (%s):  %7.3f s  cpu %.3f s\n", total,
		       round ? "warm" : "cold", t, cpu_s);
	}

	/* 3. Lookups by name and by UID, in random order. */
	struct store_msg m;
	srand(1);
	t0 = now();
	for (int i = 0; i < NMSG; i++) {
		uint32_t uid = (uint32_t)(rand() % NMSG) + 1;
		msg_name(name, sizeof(name), uid, false);
		if (store_msg_lookup(s, inbox, name, &m) != 0)
			die(s, "lookup");
	}
	t = since(t0);
	printf("lookup by name:                             %7.2f us each\n", t / NMSG * 1e6);
	t0 = now();
	for (int i = 0; i < NMSG; i++)
		if (store_msg_by_uid(s, inbox, (uint32_t)(rand() % NMSG) + 1, &m) != 0)
			die(s, "by uid");
	t = since(t0);
	printf("lookup by uid:                              %7.2f us each\n", t / NMSG * 1e6);
	t0 = now();
	for (int i = 0; i < NMSG; i++)
		if (store_msg_get(s, ids[rand() % NMSG], &m) != 0)
			die(s, "get");
	t = since(t0);
	printf("get by id:                                  %7.2f us each\n", t / NMSG * 1e6);

	/* 4. 120 MB of bodies in 12 KB pieces. */
	uint64_t bytes;
	t = write_bodies(s, ids, 2000, 60000, 100);
	printf("write 2,000 x 60 KB bodies, 100 per txn:     %7.3f s  (%.0f MB/s)  cpu %.3f s\n", t,
	       120.0 / t, cpu_s);
	t = write_bodies(s, ids + 2000, 10000, 12000, 100);
	printf("write 10,000 x 12 KB bodies, 100 per txn:    %7.3f s  (%.0f MB/s)  cpu %.3f s\n", t,
	       120.0 / t, cpu_s);
	t = write_bodies(s, ids + 12000, 2000, 60000, 0);
	printf("write 2,000 x 60 KB bodies, autocommit:      %7.3f s  (%.0f MB/s)  cpu %.3f s\n", t,
	       120.0 / t, cpu_s);
	t = write_bodies(s, ids + 14000, 4, 30000000, 0);
	printf("write 4 x 30 MB bodies, autocommit:          %7.3f s  (%.0f MB/s)  cpu %.3f s\n", t,
	       120.0 / t, cpu_s);
	t = write_bodies(s, ids + 14004, 4, 30000000, 1);
	printf("write 4 x 30 MB bodies, 1 per txn:           %7.3f s  (%.0f MB/s)  cpu %.3f s\n", t,
	       120.0 / t, cpu_s);

	/* 5. Read them back. */
	t = read_bodies(s, ids, 2000, 128 * 1024, &bytes);
	printf("read 2,000 x 60 KB in 128 KiB chunks:        %7.3f s  (%.0f MB/s)  cpu %.3f s\n", t,
	       (double)bytes / 1e6 / t, cpu_s);
	t = read_bodies(s, ids + 2000, 10000, 128 * 1024, &bytes);
	printf("read 10,000 x 12 KB in 128 KiB chunks:       %7.3f s  (%.0f MB/s, %.1f us each)\n",
	       t, (double)bytes / 1e6 / t, t / 10000 * 1e6);
	t = read_bodies(s, ids + 14000, 4, 128 * 1024, &bytes);
	printf("read 4 x 30 MB in 128 KiB chunks:            %7.3f s  (%.0f MB/s)  cpu %.3f s\n", t,
	       (double)bytes / 1e6 / t, cpu_s);
	t = read_bodies(s, ids, 2000, 4096, &bytes);
	printf("read 2,000 x 60 KB in 4 KiB chunks:          %7.3f s  (%.0f MB/s)  cpu %.3f s\n", t,
	       (double)bytes / 1e6 / t, cpu_s);

	/* 6. Blob I/O against substr(). */
	char path[128];
	sqlite3 *db = NULL;
	snprintf(path, sizeof(path), "%s/mailfs.db", dir);
	sqlite3_open(path, &db);
	static const size_t chunks[] = {4096, 16384, 131072};
	for (size_t c = 0; c < 3; c++) {
		double tb = raw_read(db, ids + 2000, 2000, chunks[c], false);
		double ts = raw_read(db, ids + 2000, 2000, chunks[c], true);
		printf("12 KB bodies, %6zu B chunks: blob %6.2f us/body, substr %6.2f us/body\n",
		       chunks[c], tb / 2000 * 1e6, ts / 2000 * 1e6);
		tb = raw_read(db, ids, 500, chunks[c], false);
		ts = raw_read(db, ids, 500, chunks[c], true);
		printf("60 KB bodies, %6zu B chunks: blob %6.2f us/body, substr %6.2f us/body\n",
		       chunks[c], tb / 500 * 1e6, ts / 500 * 1e6);
	}
	double tb = raw_read(db, ids + 14000, 1, 131072, false);
	double ts = raw_read(db, ids + 14000, 1, 131072, true);
	printf("one 30 MB body, 128 KiB chunks: blob %.3f s, substr %.3f s\n", tb, ts);

	/* 7. Numbers for .status. */
	struct store_stats st;
	t0 = now();
	for (int i = 0; i < 1000; i++)
		if (store_stats(s, acct, &st) != 0)
			die(s, "stats");
	t = since(t0);
	printf("store_stats: %.1f us (%llu msgs, %llu bodies, %llu body bytes, %llu file bytes)\n",
	       t / 1000 * 1e6, (unsigned long long)st.messages, (unsigned long long)st.bodies,
	       (unsigned long long)st.body_bytes, (unsigned long long)st.file_bytes);
	sqlite3_stmt *q = NULL;
	sqlite3_prepare_v2(db, "SELECT count(*), sum(length(data)) FROM bodies", -1, &q, NULL);
	t0 = now();
	sqlite3_step(q);
	t = since(t0);
	printf("count(*), sum(length(data)) over %lld bodies: %.3f s (sum %lld)\n",
	       (long long)sqlite3_column_int64(q, 0), t, (long long)sqlite3_column_int64(q, 1));
	sqlite3_finalize(q);
	sqlite3_close(db);

	/* 8. Deleting the folder: 100,000 rows and their bodies. */
	t0 = now();
	if (store_folder_delete(s, inbox) != 0)
		die(s, "delete");
	t = since(t0);
	printf("delete the folder (100,000 messages):       %7.3f s  cpu %.3f s\n", t, cpu_s);

	store_close(&s);
	free(ids);
	free(page);
	if (argc <= 1)
		rm_tree(dir);
	return 0;
}
