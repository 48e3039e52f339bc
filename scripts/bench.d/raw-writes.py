#!/usr/bin/python3
"""The one-session limit for `scripts/bench writes`: one TLS session, LOGIN, then
  1. an APPEND of each file of DIR to mailbox A, one after the other (each waits for its
     tagged OK, as any client that wants the APPENDUID does), with the file's LF line ends
     made CRLF (what mailfs sends);
  2. SELECT A, one `UID MOVE 1:* B` (the fewest commands that move them all).

  raw-writes.py HOST PORT CAFILE USER PASSWORD DIR A B
prints "append S move S" (seconds from the first command of a step to its last OK).
"""
import os
import socket
import ssl
import sys
import time


def main():
    host, port, ca, user, password, src, box_a, box_b = sys.argv[1:9]
    ctx = ssl.create_default_context(cafile=ca)
    raw = socket.create_connection((host, int(port)))
    s = ctx.wrap_socket(raw, server_hostname=host)
    f = s.makefile("rb", buffering=0)
    n = [0]

    def wait(tag):
        while True:
            line = f.readline()
            if not line:
                raise SystemExit("connection closed")
            if line.startswith(tag + b" "):
                if not line.startswith(tag + b" OK"):
                    raise SystemExit("failed: %r" % line)
                return
            if line.startswith(b"+"):
                return "cont"

    def command(text, literal=None):
        n[0] += 1
        tag = b"w%d" % n[0]
        if literal is None:
            s.sendall(tag + b" " + text + b"\r\n")
            wait(tag)
            return
        s.sendall(tag + b" " + text + b" {%d}\r\n" % len(literal))
        if wait(tag) != "cont":
            raise SystemExit("no continuation for APPEND")
        s.sendall(literal + b"\r\n")
        wait(tag)

    f.readline()  # greeting
    command(b'LOGIN "%s" "%s"' % (user.encode(), password.encode()))
    files = sorted(os.listdir(src))
    bodies = []
    for name in files:
        with open(os.path.join(src, name), "rb") as fh:
            data = fh.read()
        bodies.append(data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
    t0 = time.monotonic()
    for data in bodies:
        command(b'APPEND "%s" ()' % box_a.encode(), data)
    t1 = time.monotonic()
    command(b'SELECT "%s"' % box_a.encode())
    command(b'UID MOVE 1:* "%s"' % box_b.encode())
    t2 = time.monotonic()
    command(b"LOGOUT")
    print("append %.3f move %.3f" % (t1 - t0, t2 - t1))


main()
