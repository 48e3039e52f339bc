/* pop3-pipe.c - the window of POP3 commands in flight (see pop3-pipe.h).
 *
 * A fixed ring of POP3_PIPE_MAX slots; the only arithmetic is modulo the ring and a sum
 * of expected bytes that saturates instead of wrapping.
 */
#include "net/pop3-pipe.h"

#include <string.h>

static unsigned
clamp_cmds(unsigned n)
{
	if (n < 1)
		return 1;
	return n > POP3_PIPE_MAX ? POP3_PIPE_MAX : n;
}

void
pop3_pipe_init(struct pop3_pipe *p, unsigned max_cmds, uint64_t budget)
{
	memset(p, 0, sizeof(*p));
	pop3_pipe_limit(p, max_cmds, budget);
}

void
pop3_pipe_limit(struct pop3_pipe *p, unsigned max_cmds, uint64_t budget)
{
	p->max_cmds = clamp_cmds(max_cmds);
	p->budget = budget;
}

bool
pop3_pipe_room(const struct pop3_pipe *p, uint64_t expect)
{
	if (p->count == 0)
		return true;
	if (p->count >= p->max_cmds || p->count >= POP3_PIPE_MAX)
		return false;
	if (p->budget == 0)
		return true;
	return p->outstanding <= p->budget && expect <= p->budget - p->outstanding;
}

bool
pop3_pipe_push(struct pop3_pipe *p, enum pop3_pipe_cmd cmd, uint32_t msg, uint64_t expect)
{
	if (!pop3_pipe_room(p, expect))
		return false;
	struct pop3_pipe_slot *s = &p->slot[(p->head + p->count) % POP3_PIPE_MAX];
	s->cmd = cmd;
	s->msg = msg;
	s->expect = expect;
	p->count++;
	p->outstanding = p->outstanding + expect < p->outstanding ? UINT64_MAX
								   : p->outstanding + expect;
	return true;
}

bool
pop3_pipe_front(const struct pop3_pipe *p, struct pop3_pipe_slot *s_r)
{
	if (p->count == 0)
		return false;
	*s_r = p->slot[p->head];
	return true;
}

bool
pop3_pipe_pop(struct pop3_pipe *p)
{
	if (p->count == 0)
		return false;
	uint64_t e = p->slot[p->head].expect;
	p->outstanding = p->outstanding > e ? p->outstanding - e : 0;
	p->head = (p->head + 1) % POP3_PIPE_MAX;
	p->count--;
	if (p->count == 0)
		p->outstanding = 0;
	return true;
}

unsigned
pop3_pipe_count(const struct pop3_pipe *p)
{
	return p->count;
}
