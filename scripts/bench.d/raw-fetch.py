#!/usr/bin/python3
"""The raw server limit for `scripts/bench fetch`: one TLS session, LOGIN, EXAMINE, then a
single `UID FETCH 1:* BODY.PEEK[]` whose output is read and discarded without parsing.

  raw-fetch.py HOST PORT CAFILE USER PASSWORD MAILBOX
prints "bytes N seconds S" (time from sending the FETCH to its tagged OK).
"""
import socket
import ssl
import sys
import time


def main():
    host, port, ca, user, password, mailbox = sys.argv[1:7]
    ctx = ssl.create_default_context(cafile=ca)
    raw = socket.create_connection((host, int(port)))
    s = ctx.wrap_socket(raw, server_hostname=host)
    f = s.makefile("rb", buffering=0)

    def command(tag, text):
        s.sendall(tag + b" " + text + b"\r\n")
        while True:
            line = f.readline()
            if line.startswith(tag + b" "):
                if not line.startswith(tag + b" OK"):
                    raise SystemExit("%s failed: %r" % (text.split()[0], line))
                return

    f.readline()  # greeting
    command(b"a1", b'LOGIN "%s" "%s"' % (user.encode(), password.encode()))
    command(b"a2", b'EXAMINE "%s"' % mailbox.encode())
    end = b"\r\nzzrawfetch OK"
    t0 = time.monotonic()
    s.sendall(b"zzrawfetch UID FETCH 1:* BODY.PEEK[]\r\n")
    total = 0
    tail = b""
    buf = bytearray(1 << 20)
    # The tagged OK ends the stream; keep the last bytes to find it across reads.
    while True:
        n = s.recv_into(buf)
        if n == 0:
            raise SystemExit("connection closed")
        total += n
        tail = (tail + bytes(buf[max(0, n - 256):n]))[-256:]
        i = tail.rfind(end)
        if i >= 0 and tail.endswith(b"\r\n") and tail.find(b"\r\n", i + 2) == len(tail) - 2:
            break
    t1 = time.monotonic()
    print("bytes %d seconds %.3f" % (total, t1 - t0))
    s.sendall(b"a9 LOGOUT\r\n")
    s.close()


if __name__ == "__main__":
    main()
