#!/usr/bin/python3
"""The floor of a new message's arrival for `scripts/bench sync`: one TLS session, LOGIN,
EXAMINE MAILBOX and IDLE, i.e. the quickest any client can hear of a new message. Prints
"ready" once the server accepted IDLE, then "exists T" (T: time.time() when the server's
EXISTS arrived) when the message count grows; gives up after TIMEOUT seconds.

  raw-idle.py HOST PORT CAFILE USER PASSWORD MAILBOX TIMEOUT
"""
import re
import socket
import sys
import time

from rawimap import Session


def main():
    host, port, ca, user, password, mailbox, timeout = sys.argv[1:8]
    c = Session(host, port, ca, user, password)
    exists = 0
    for line in c.command(b"a2", b'EXAMINE "%s"' % mailbox.encode()):
        m = re.match(rb"\* (\d+) EXISTS", line)
        if m:
            exists = int(m.group(1))
    c.sock.sendall(b"a3 IDLE\r\n")
    if not c.file.readline().startswith(b"+"):
        raise SystemExit("IDLE refused")
    print("ready", flush=True)
    c.sock.settimeout(float(timeout))
    try:
        while True:
            line = c.file.readline()
            if not line:
                raise SystemExit("connection closed")
            m = re.match(rb"\* (\d+) EXISTS", line)
            if m and int(m.group(1)) > exists:
                print("exists %.4f" % time.time(), flush=True)
                break
    except socket.timeout:
        print("exists none", flush=True)
    c.sock.sendall(b"DONE\r\n")
    c.close()


if __name__ == "__main__":
    main()
