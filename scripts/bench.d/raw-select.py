#!/usr/bin/python3
"""The floor of a no-change resync for `scripts/bench sync`: one TLS session, LOGIN, then
timed: `SELECT MAILBOX (CONDSTORE)` and `UID FETCH 1:* (UID FLAGS) (CHANGEDSINCE M)` with M
the HIGHESTMODSEQ it reported, i.e. what any client must at least ask to learn that
nothing changed (the server checks its mailbox on SELECT).

  raw-select.py HOST PORT CAFILE USER PASSWORD MAILBOX
prints "seconds S".
"""
import re
import sys
import time

from rawimap import Session


def main():
    host, port, ca, user, password, mailbox = sys.argv[1:7]
    c = Session(host, port, ca, user, password)
    t0 = time.monotonic()
    out = c.command(b"a2", b'SELECT "%s" (CONDSTORE)' % mailbox.encode())
    modseq = 1
    for line in out:
        m = re.search(rb"HIGHESTMODSEQ (\d+)", line)
        if m:
            modseq = int(m.group(1))
    c.command(b"a3", b"UID FETCH 1:* (UID FLAGS) (CHANGEDSINCE %d)" % modseq)
    t1 = time.monotonic()
    print("seconds %.4f" % (t1 - t0))
    c.close()


if __name__ == "__main__":
    main()
