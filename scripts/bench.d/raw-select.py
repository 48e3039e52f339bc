#!/usr/bin/python3
"""The floor of a no-change resync for `scripts/bench sync`: one TLS session, LOGIN, then
timed: `SELECT MAILBOX (CONDSTORE)` and `UID FETCH 1:* (UID FLAGS) (CHANGEDSINCE M)` with M
the HIGHESTMODSEQ it reported, i.e. what any client must at least ask to learn that
nothing changed (the server checks its mailbox on SELECT).

  raw-select.py HOST PORT CAFILE USER PASSWORD MAILBOX
prints "seconds S".
"""
import re
import socket
import ssl
import sys
import time


def main():
    host, port, ca, user, password, mailbox = sys.argv[1:7]
    ctx = ssl.create_default_context(cafile=ca)
    s = ctx.wrap_socket(socket.create_connection((host, int(port))), server_hostname=host)
    f = s.makefile("rb", buffering=0)

    def command(tag, text):
        s.sendall(tag + b" " + text + b"\r\n")
        lines = []
        while True:
            line = f.readline()
            if not line:
                raise SystemExit("connection closed")
            lines.append(line)
            if line.startswith(tag + b" "):
                if not line.startswith(tag + b" OK"):
                    raise SystemExit("%s failed: %r" % (text.split()[0], line))
                return lines

    f.readline()  # greeting
    command(b"a1", b'LOGIN "%s" "%s"' % (user.encode(), password.encode()))
    t0 = time.monotonic()
    out = command(b"a2", b'SELECT "%s" (CONDSTORE)' % mailbox.encode())
    modseq = 1
    for line in out:
        m = re.search(rb"HIGHESTMODSEQ (\d+)", line)
        if m:
            modseq = int(m.group(1))
    command(b"a3", b"UID FETCH 1:* (UID FLAGS) (CHANGEDSINCE %d)" % modseq)
    t1 = time.monotonic()
    print("seconds %.4f" % (t1 - t0))
    s.sendall(b"a9 LOGOUT\r\n")
    s.close()


if __name__ == "__main__":
    main()
