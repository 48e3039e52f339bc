/* store-int.h - what the parts of the store (cache/store.c, cache/store-body.c) share:
 * the handle, the statements, the error helpers. Not for any other module.
 */
#ifndef MAILFS_STORE_INT_H
#define MAILFS_STORE_INT_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#include "cache/store.h"

#define ERR_MAX 512

#define FOLDER_COLS                                                                                \
	"id, account_id, parent_id, kind, name, server_name, delim, special, uidvalidity,"         \
	" uidnext, highestmodseq, messages, mtime, local"
#define MSG_COLS                                                                                   \
	"id, folder_id, uid, internaldate, size, flags, modseq, name, message_id, has_body, state,"  \
	" orig_folder, orig_uid, mtime_set, prev_name"

/* Every statement: prepared on first use (stmt()), kept for the life of the handle. */
#define STATEMENTS(X)                                                                              \
	X(BEGIN, "BEGIN IMMEDIATE")                                                                \
	X(COMMIT, "COMMIT")                                                                        \
	X(ROLLBACK, "ROLLBACK")                                                                    \
	X(ACCOUNT_GET, "SELECT id FROM accounts WHERE name = ?1")                                  \
	X(ACCOUNT_ADD, "INSERT INTO accounts(name) VALUES (?1) ON CONFLICT(name) DO NOTHING")      \
	X(FOLDER_UPSERT,                                                                           \
	  "INSERT INTO folders(account_id, parent_id, kind, name, server_name,"                    \
	  " delim, special, mtime) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, unixepoch())"               \
	  " ON CONFLICT(parent_id, name) DO UPDATE SET kind = excluded.kind,"                      \
	  " server_name = excluded.server_name, delim = excluded.delim,"                           \
	  " special = excluded.special WHERE account_id = excluded.account_id"                     \
	  " RETURNING id")                                                                         \
	X(FOLDER_GET, "SELECT " FOLDER_COLS " FROM folders WHERE id = ?1")                         \
	X(FOLDER_LOOKUP, "SELECT " FOLDER_COLS " FROM folders WHERE parent_id = ?1 AND name = ?2") \
	X(FOLDER_STATE, "UPDATE folders SET uidvalidity = ?2, uidnext = ?3, highestmodseq = ?4"    \
			" WHERE id = ?1")                                                          \
	X(FOLDER_DELETE, "DELETE FROM folders WHERE id IN (WITH RECURSIVE sub(id) AS"              \
			 " (SELECT ?1 UNION ALL SELECT f.id FROM folders f JOIN sub"               \
			 " ON f.parent_id = sub.id) SELECT id FROM sub)")                          \
	X(FOLDER_CHILDREN, "SELECT " FOLDER_COLS " FROM folders WHERE parent_id = ?1"              \
			   " AND name > ?2 ORDER BY name LIMIT ?3")                                \
	X(FOLDER_NEXT, "SELECT " FOLDER_COLS " FROM folders WHERE account_id = ?1 AND id > ?2"     \
		       " ORDER BY id LIMIT 1")                                                     \
	X(MSG_UPSERT, "INSERT INTO messages(folder_id, uid, internaldate, size, flags, modseq,"    \
		      " name, message_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"                 \
		      " ON CONFLICT(folder_id, uid) DO UPDATE SET flags = excluded.flags,"         \
		      " modseq = excluded.modseq,"                                                 \
		      " size = CASE WHEN has_body THEN size ELSE excluded.size END RETURNING id")  \
	X(MSG_GET, "SELECT " MSG_COLS " FROM messages WHERE id = ?1")                              \
	X(MSG_LOOKUP, "SELECT " MSG_COLS " FROM messages WHERE folder_id = ?1 AND name = ?2")      \
	X(MSG_BY_UID, "SELECT " MSG_COLS " FROM messages WHERE folder_id = ?1 AND uid = ?2")       \
	X(MSG_LIST, "SELECT " MSG_COLS " FROM messages WHERE folder_id = ?1 AND id > ?2"           \
		    " ORDER BY id LIMIT ?3")                                                       \
	X(MSG_UIDS, "SELECT uid FROM messages WHERE folder_id = ?1 AND uid > 0 ORDER BY uid")                  \
	/* No index on has_body (it would cost a third of the insert time): walk the UIDs,         \
	 * unless the folder's counters say every body is there. */                                \
	X(MSG_MISSING, "SELECT uid FROM messages WHERE folder_id = ?1 AND uid > ?2"                \
		       " AND has_body = 0 AND (SELECT bodies < messages FROM folders"              \
		       " WHERE id = ?1) ORDER BY uid LIMIT ?3")                                    \
	X(MSG_FLAGS, "UPDATE messages SET flags = ?2, modseq = ?3 WHERE id = ?1")                  \
	X(MSG_DELETE, "DELETE FROM messages WHERE id = ?1")                                        \
	X(MSG_FINISH, "UPDATE messages SET name = ?2, flags = ?3, modseq = ?4, message_id = ?5, "  \
		      "internaldate = ?6 WHERE id = ?1")                                           \
	X(BODY_MSG, "SELECT size, has_body, body_pack, body_off FROM messages WHERE id = ?1")      \
	X(BODY_MARK, "UPDATE messages SET size = ?2, has_body = 0, body_pack = 0, body_off = 0"    \
		     " WHERE id = ?1")                                                             \
	X(BODY_DONE, "UPDATE messages SET has_body = 1, body_pack = ?3, body_off = ?4"             \
		     " WHERE id = ?1 AND size = ?2")                                               \
	X(BODY_DROP, "DELETE FROM bodies WHERE msg_id = ?1")                                       \
	X(BODY_EXISTS, "SELECT 1 FROM bodies WHERE msg_id = ?1")                                   \
	X(BODY_HAS, "SELECT has_body FROM messages WHERE id = ?1")                                 \
	X(DEAD_LIST, "SELECT id, pack, off, size FROM dead_bodies ORDER BY id LIMIT ?1")           \
	X(DEAD_DONE, "DELETE FROM dead_bodies WHERE id = ?1")                                      \
	X(PACK_LAST, "SELECT id FROM packs ORDER BY id DESC LIMIT 1")                              \
	X(PACK_USED, "SELECT used FROM packs WHERE id = ?1")                                       \
	X(PACK_ADD, "INSERT INTO packs(used) VALUES (0) RETURNING id")                             \
	X(POP3_ADD, "INSERT INTO pop3_msgs(msg_id, folder_id, uidl, msgno, seen) VALUES"           \
		     " (?1, ?2, ?3, ?4, ?5)")                                                       \
	X(POP3_SEEN, "UPDATE pop3_msgs SET seen = ?3, msgno = ?4 WHERE folder_id = ?1"          \
		      " AND uidl = ?2 AND seen != ?3 RETURNING msg_id")                                             \
	X(POP3_GET, "SELECT p.msg_id, m.uid, p.uidl, p.msgno, p.seen, p.dele, m.size,"            \
		     " m.message_id, m.has_body FROM pop3_msgs p JOIN messages m ON m.id = p.msg_id" \
		     " WHERE p.msg_id = ?1")                                                        \
	X(POP3_NEXT, "SELECT p.msg_id, m.uid, p.uidl, p.msgno, p.seen, p.dele, m.size,"           \
		      " m.message_id, m.has_body FROM pop3_msgs p NOT INDEXED JOIN messages m"     \
		      " ON m.id = p.msg_id WHERE p.msg_id > ?2 AND p.folder_id = ?1"                 \
		      " ORDER BY p.msg_id LIMIT 1") /* a rowid range: O(1) per step */        \
	X(POP3_FIND, "SELECT msg_id FROM pop3_msgs WHERE folder_id = ?1 AND uidl = ?2 LIMIT 1")    \
	X(POP3_VANISHED, "SELECT count(*) FROM pop3_msgs WHERE folder_id = ?1 AND seen != ?2"     \
			  " AND dele = 0")                                                           \
	X(POP3_MATCH, "SELECT p.msg_id FROM pop3_msgs p JOIN messages m ON m.id = p.msg_id"       \
		       " WHERE p.folder_id = ?1 AND p.seen != ?2 AND p.dele = 0 AND m.size = ?3"    \
		       " AND m.message_id = ?4 AND ?4 != '' LIMIT 1")                               \
	X(POP3_REKEY, "UPDATE pop3_msgs SET uidl = ?2, msgno = ?3, seen = ?4 WHERE msg_id = ?1")  \
	X(POP3_DELE, "UPDATE pop3_msgs SET dele = ?2 WHERE msg_id = ?1")                          \
	X(PACK_GROW, "UPDATE packs SET used = max(used, ?2) WHERE id = ?1")                        \
	X(MSG_LOCAL_NEW, "INSERT INTO messages(folder_id, uid, internaldate, size, name, state,"   \
			 " mtime_set) VALUES (?1, -4611686018427387904, ?2, 0, ?3, 1, ?4)"         \
			 " RETURNING id")                                                          \
	X(MSG_LOCAL_UID, "UPDATE messages SET uid = -id WHERE id = ?1")                            \
	X(MSG_SAVE, "UPDATE messages SET folder_id = ?2, uid = ?3, internaldate = ?4, flags = ?5," \
		    " name = ?6, message_id = ?7, state = ?8, orig_folder = ?9, orig_uid = ?10,"   \
		    " mtime_set = ?11, prev_name = ?12 WHERE id = ?1")                             \
	X(MSG_SIZE, "UPDATE messages SET size = ?2 WHERE id = ?1 AND has_body = 0")                \
	X(MSG_SHADOW, "SELECT " MSG_COLS " FROM messages WHERE folder_id = ?1 AND prev_name = ?2"  \
		      " AND prev_name != '' LIMIT 1")                                              \
	X(MSG_UNBIND, "UPDATE messages SET uid = -id WHERE folder_id = ?1 AND state = 0 AND uid > 0")  \
	X(MSG_ADOPT, "SELECT " MSG_COLS " FROM messages WHERE folder_id = ?1 AND state = 0"        \
		     " AND uid < 0 AND message_id = ?2 AND size = ?3 LIMIT 1")                     \
	X(MSG_SET_UID, "UPDATE messages SET uid = ?2 WHERE id = ?1")                               \
	X(MSG_UNBOUND, "SELECT " MSG_COLS " FROM messages WHERE folder_id = ?1 AND state = 0"      \
		       " AND uid < 0 LIMIT 1")                                                     \
	X(MSG_SCRATCH_NEXT, "SELECT " MSG_COLS " FROM messages WHERE state = 1 AND id > ?1"        \
			    " ORDER BY id LIMIT 1")                    \
	X(FOLDER_SAVE, "UPDATE folders SET parent_id = ?2, name = ?3, server_name = ?4,"           \
		       " delim = ?5, local = ?6, special = ?7 WHERE id = ?1")                      \
	X(FOLDER_RENAME_SUB, "UPDATE folders SET server_name = ?3 || substr(server_name,"         \
			     " length(?2) + 1) WHERE account_id = ?1 AND length(?2) > 0"           \
			     " AND substr(server_name, 1, length(?2)) = ?2")                       \
	X(FOLDER_BUSY, "SELECT EXISTS (SELECT 1 FROM folders WHERE parent_id = ?1) OR"             \
		       " EXISTS (SELECT 1 FROM messages WHERE folder_id = ?1)")                    \
	X(FOLDER_SPECIAL, "SELECT " FOLDER_COLS " FROM folders WHERE account_id = ?1"              \
			  " AND kind = 1 AND (special & ?2) != 0 ORDER BY id LIMIT 1")             \
	X(J_ADD, "INSERT INTO journal(account_id, op, msg_id, folder_id, server_name, uid)"        \
		 " VALUES (?1, ?2, ?3, ?4, ?5, ?6)")                                               \
	X(J_NEXT, "SELECT id, account_id, op, msg_id, folder_id, server_name, uid, uidnext,"      \
		  " attempts, error FROM journal WHERE account_id = ?1 AND id > ?2"                \
		  " ORDER BY id LIMIT 1")                                                          \
	X(J_SET, "UPDATE journal SET uidnext = ?2, attempts = ?3, error = ?4 WHERE id = ?1")       \
	X(J_DONE, "DELETE FROM journal WHERE id = ?1")                                             \
	X(J_COUNT, "SELECT count(*), coalesce(max(attempts), 0) FROM journal"                     \
		   " WHERE account_id = ?1")                                                       \
	X(J_ERROR, "SELECT error FROM journal WHERE account_id = ?1 AND error != ''"               \
		   " ORDER BY id LIMIT 1")                                                         \
	X(MSG_EMPTY, "SELECT uid FROM messages WHERE folder_id = ?1 AND uid > ?2 AND size = 0"   \
		     " AND has_body = 0 ORDER BY uid LIMIT ?3")                                    \
	X(ASIDE_FAIL, "INSERT INTO setaside(folder_id, uid, failures, reason, since, retry_at)"    \
		      " VALUES (?1, ?2, 1, ?3, unixepoch(), ?4) ON CONFLICT(folder_id, uid) DO"    \
		      " UPDATE SET failures = failures + 1, reason = excluded.reason,"            \
		      " retry_at = excluded.retry_at RETURNING failures")                          \
	X(ASIDE_RETRY, "UPDATE setaside SET retry_at = ?3 WHERE folder_id = ?1 AND uid = ?2")      \
	X(ASIDE_CLEAR, "DELETE FROM setaside WHERE folder_id = ?1 AND uid = ?2")                   \
	X(ASIDE_UIDS, "SELECT uid, failures >= ?3 AND retry_at > ?2 FROM setaside"                 \
		      " WHERE folder_id = ?1 ORDER BY uid LIMIT ?4")                               \
	X(ASIDE_GET, "SELECT failures, reason, since, retry_at FROM setaside"                      \
		     " WHERE folder_id = ?1 AND uid = ?2")                                         \
	X(ASIDE_EACH, "SELECT s.folder_id, s.uid, s.failures, s.reason, s.since, s.retry_at,"     \
		      " coalesce(m.name, ''), f.server_name FROM setaside s"                       \
		      " JOIN folders f ON f.id = s.folder_id LEFT JOIN messages m"                 \
		      " ON m.folder_id = s.folder_id AND m.uid = s.uid WHERE f.account_id = ?1"    \
		      " ORDER BY s.folder_id, s.uid LIMIT ?2")                                     \
	X(STATS_FILES, "SELECT sum(body_bytes) FROM folders WHERE kind IN (1, 2)")                 \
	X(STATS_ALL, "SELECT count(*), sum(messages), sum(bodies), sum(body_bytes) FROM folders"   \
		     " WHERE kind IN (1, 2)")                                                      \
	X(STATS_ACCOUNT, "SELECT count(*), sum(messages), sum(bodies), sum(body_bytes)"            \
			 " FROM folders WHERE account_id = ?1 AND kind IN (1, 2)")

#define STMT_ENUM(name, sql) ST_##name,
enum stmt_id { STATEMENTS(STMT_ENUM) ST__COUNT };

struct store {
	sqlite3 *db;
	char *path;                     /* CACHE_DIR/mailfs.db */
	sqlite3_stmt *stmts[ST__COUNT]; /* prepared on first use, reset after each use */
	int pack_dfd;                   /* CACHE_DIR/bodies (cache/pack.h) */
	bool reap;                      /* the open transaction may have queued dead bodies */
	/* The pack this handle appends to (its lock held while wpack_fd is open), and where
	 * the next body goes. */
	int64_t wpack;
	int wpack_fd;
	uint64_t wpack_end;
	uint64_t wpack_base; /* where this handle began appending to wpack */
	/* The pack the last read or punch used, kept open for the next. */
	int64_t rd_pack;
	int rd_fd;
	unsigned char *wbuf; /* the writer's buffer (BODY_CHUNK), kept between writers */
	bool writing;        /* a writer of this handle is not ended yet */
	int scratch_dfd;     /* CACHE_DIR/scratch, opened on first use (-1) */
	bool durable;        /* synchronous = FULL now (store_durable), else NORMAL */
	char err[ERR_MAX];
};

/* The statement, prepared on first use and kept; NULL (reason in the error) if it cannot
 * be prepared. Reset it with store_finish() after use. */
sqlite3_stmt *store_stmt(struct store *s, enum stmt_id id);
/* Reset a statement and its bindings (NULL is fine). */
void store_finish(sqlite3_stmt *st);
/* Run a statement that returns no rows (or whose rows are ignored), then reset it. 0, or -1
 * with the reason. */
int store_exec(struct store *s, sqlite3_stmt *st, const char *what);
void store_set_err(struct store *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "WHAT: sqlite's message". Returns -1. */
int store_db_err(struct store *s, const char *what);

/* Read a row of MSG_COLS. */
void store_msg_row(sqlite3_stmt *st, struct store_msg *m);

/* From cache/store-body.c, for the rest of the store. */
/* Close the handle's pack descriptors and free its writer's buffer. */
void store_body_close(struct store *s);
/* After a rollback: the pack row may have gone with it; the next writer looks again. */
void store_body_rollback(struct store *s);
/* Punch out the ranges queued in dead_bodies (outside a transaction; never fails). */
void store_body_reap(struct store *s);
/* After a statement that may have deleted messages (ret: its result): reap now in
 * autocommit mode, else when the transaction commits. Returns ret. */
int store_body_after_delete(struct store *s, int ret);

#endif
