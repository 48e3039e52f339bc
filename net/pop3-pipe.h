/* pop3-pipe.h - the window of POP3 commands in flight (RFC 2449 §6.6 PIPELINING).
 *
 * Pure bookkeeping: no I/O, no heap, no globals. POP3 answers commands in the order they
 * were sent, so the window is a ring: a command is pushed when it is sent, and the reply
 * being read is always the one to the oldest command (the front). The window is bounded
 * twice: by a number of commands (at most POP3_PIPE_MAX) and by a byte budget, the sum of
 * what the replies in flight are expected to carry (e.g. the LIST size of each RETR). A
 * command is always allowed when nothing is in flight, however large its reply.
 *
 * Without PIPELINING the caller sets the window to one command: send, read, send.
 */
#ifndef MAILFS_POP3_PIPE_H
#define MAILFS_POP3_PIPE_H

#include <stdbool.h>
#include <stdint.h>

#define POP3_PIPE_MAX 64

enum pop3_pipe_cmd { POP3_PIPE_TOP, POP3_PIPE_RETR };

struct pop3_pipe_slot {
	enum pop3_pipe_cmd cmd;
	uint32_t msg;
	uint64_t expect; /* bytes counted against the budget */
};

/* Opaque in spirit: only pop3-pipe.c touches the fields. */
struct pop3_pipe {
	struct pop3_pipe_slot slot[POP3_PIPE_MAX];
	unsigned head;        /* index of the oldest command */
	unsigned count;       /* commands in flight */
	unsigned max_cmds;    /* 1..POP3_PIPE_MAX */
	uint64_t budget;      /* 0: no byte budget */
	uint64_t outstanding; /* sum of `expect` in flight */
};

/* Empty window of at most max_cmds commands (clamped to 1..POP3_PIPE_MAX) and a byte
 * budget (0 = none). */
void pop3_pipe_init(struct pop3_pipe *p, unsigned max_cmds, uint64_t budget);
/* Change the limits (what is in flight stays; it may now exceed them until read). */
void pop3_pipe_limit(struct pop3_pipe *p, unsigned max_cmds, uint64_t budget);
/* May a command whose reply is expected to carry `expect` bytes be sent now? Always true
 * on an empty window; otherwise there must be a free slot and room in the budget. */
bool pop3_pipe_room(const struct pop3_pipe *p, uint64_t expect);
/* Record a sent command. false (nothing recorded) when pop3_pipe_room() says no. */
bool pop3_pipe_push(struct pop3_pipe *p, enum pop3_pipe_cmd cmd, uint32_t msg,
		    uint64_t expect);
/* The oldest command in flight into *s_r; false when none. */
bool pop3_pipe_front(const struct pop3_pipe *p, struct pop3_pipe_slot *s_r);
/* Its reply has been read: drop it. false when none was in flight. */
bool pop3_pipe_pop(struct pop3_pipe *p);
unsigned pop3_pipe_count(const struct pop3_pipe *p);

#endif
