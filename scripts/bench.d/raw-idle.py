#!/usr/bin/python3
"""The floor of a new message's arrival for `scripts/bench sync`: one TLS session, LOGIN,
EXAMINE MAILBOX and IDLE, i.e. the quickest any client can hear of a new message. Prints
"ready" once the server accepted IDLE, then "exists T" (T: time.time() when the server's
EXISTS arrived) when the message count grows; gives up after TIMEOUT seconds.

  raw-idle.py HOST PORT CAFILE USER PASSWORD MAILBOX TIMEOUT
"""
import re
import socket
import ssl
import sys
import time


def main():
    host, port, ca, user, password, mailbox, timeout = sys.argv[1:8]
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
    exists = 0
    for line in command(b"a2", b'EXAMINE "%s"' % mailbox.encode()):
        m = re.match(rb"\* (\d+) EXISTS", line)
        if m:
            exists = int(m.group(1))
    s.sendall(b"a3 IDLE\r\n")
    if not f.readline().startswith(b"+"):
        raise SystemExit("IDLE refused")
    print("ready", flush=True)
    s.settimeout(float(timeout))
    try:
        while True:
            line = f.readline()
            if not line:
                raise SystemExit("connection closed")
            m = re.match(rb"\* (\d+) EXISTS", line)
            if m and int(m.group(1)) > exists:
                print("exists %.4f" % time.time(), flush=True)
                break
    except socket.timeout:
        print("exists none", flush=True)
    s.sendall(b"DONE\r\na9 LOGOUT\r\n")
    s.close()


if __name__ == "__main__":
    main()
