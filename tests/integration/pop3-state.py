#!/usr/bin/env python3
"""pop3-state.py - the server's view of a POP3 maildrop, for end-to-end tests.

  pop3-state.py HOST PORT USER PASS CA count          number of messages (STAT)
  pop3-state.py HOST PORT USER PASS CA dump DIR       every message as RETR returns it
                                                      (dot-unstuffed) into DIR/<UIDL>
  pop3-state.py HOST PORT USER PASS CA uidls          "n uidl" lines

Speaks STLS on the plaintext port (PORT is taken as pop3s if it ends in 3 and is the
POP3S port: pass --implicit as the first argument for implicit TLS). Never deletes.
"""
import os
import poplib
import ssl
import sys


def main():
    args = sys.argv[1:]
    implicit = False
    if args and args[0] == "--implicit":
        implicit = True
        args = args[1:]
    host, port, user, pw, ca, cmd = args[:6]
    ctx = ssl.create_default_context(cafile=ca)
    if implicit:
        p = poplib.POP3_SSL(host, int(port), context=ctx, timeout=30)
    else:
        p = poplib.POP3(host, int(port), timeout=30)
        p.stls(context=ctx)
    p.user(user)
    p.pass_(pw)
    if cmd == "count":
        print(p.stat()[0])
    elif cmd == "uidls":
        for line in p.uidl()[1]:
            print(line.decode())
    elif cmd == "dump":
        out = args[6]
        os.makedirs(out, exist_ok=True)
        for line in p.uidl()[1]:
            n, uid = line.decode().split()
            # poplib strips the line ends; read the raw reply instead.
            p._putcmd("RETR %s" % n)
            resp = p._getresp()
            assert resp.startswith(b"+OK"), resp
            data = bytearray()
            while True:
                ln = p.file.readline(1 << 24)
                if ln in (b".\r\n", b".\n"):
                    break
                if ln.startswith(b".."):
                    ln = ln[1:]
                data += ln
            with open(os.path.join(out, uid), "wb") as f:
                f.write(data)
    p.quit()


main()
