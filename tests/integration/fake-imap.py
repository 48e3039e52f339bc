#!/usr/bin/python3
"""A scripted, deliberately broken IMAP server for negative tests: what no real server
sends. Serves one connection on 127.0.0.1 (port written to PORTFILE), logs every line the
client sends to LOGFILE, and behaves according to MODE:

  fake-imap.py MODE PORTFILE LOGFILE

  nostarttls   plaintext greeting without STARTTLS in the capabilities
  preauth      plaintext PREAUTH greeting
  hugeliteral  after login, answers LIST with a literal announcing 10^15 bytes
  longline     after login, sends an endless line without CRLF (4 MiB, then waits)
  garbage      after login, sends binary garbage
  deepnest     after login, a LIST response nested 1000 levels deep
  badnumber    after login, a FETCH with a literal size that overflows 64 bits
  bye          after login, BYE in the middle of LIST
  hostilenames serves every connection until killed; LIST returns folder names that try
               to break out of a file tree ("..", ".", "a/../../etc" with "." as the
               delimiter, control characters, "%41", an empty name); each is empty
  badfetch     serves every connection until killed: INBOX holds UIDs 1, 2 and 3; every
               FETCH of the whole body of UID 2 ends in BYE in the middle of its literal
  stallfetch   the same INBOX, but a FETCH of a body gets no answer at all (the
               connection stays open, silent)
  wrongsize    the same INBOX, but RFC822.SIZE is wrong: 100 for UID 1, 0 for UID 2
  flakyfetch   like badfetch, but only the first 3 whole-body FETCHes of UID 2 break
  stalllogin   the same INBOX; once the file LOGFILE.stall exists, a new connection is
               answered up to its LOGIN and then not at all (a server that stalls right
               after login)
Every connection of the mailbox modes logs "LOGIN" lines, so a test counts reconnects.
Login is accepted in plaintext here (LOGINDISABLED is not advertised) so that a client that
would send credentials in the clear is caught: the log then holds its LOGIN line.
"""
import os

import fakeserver

MODES = {"nostarttls", "preauth", "hugeliteral", "longline", "garbage", "deepnest",
         "badnumber", "bye", "hostilenames", "badfetch", "stallfetch", "wrongsize",
         "flakyfetch", "stalllogin"}


HOSTILE = [
    b'* LIST () "." ".."',
    b'* LIST () "." "."',
    b'* LIST () "." "a/../../etc"',
    b'* LIST () "." "ctl\x01\x7fname"',
    b'* LIST () "." "%41"',
    b'* LIST () NIL "slash/inside"',
    b'* LIST () "." "INBOX"',
]


def serve_hostile(conn, log):
    """A minimal well-formed server whose folder names are hostile."""
    conn.sendall(b"* OK [CAPABILITY IMAP4rev1] hostile names\r\n")
    for line in fakeserver.lines(conn, log):
        parts = line.split(b" ", 2)
        tag = parts[0]
        cmd = parts[1].strip().upper() if len(parts) > 1 else b""
        rest = parts[2] if len(parts) > 2 else b""
        if cmd == b"CAPABILITY":
            out = b"* CAPABILITY IMAP4rev1\r\n" + tag + b" OK done\r\n"
        elif cmd == b"LIST":
            out = b"\r\n".join(HOSTILE) + b"\r\n" + tag + b" OK done\r\n"
        elif cmd in (b"SELECT", b"EXAMINE"):
            out = (b"* 0 EXISTS\r\n* OK [UIDVALIDITY 7] ok\r\n* OK [UIDNEXT 1] ok\r\n" +
                   tag + b" OK [READ-ONLY] done\r\n")
        elif cmd == b"UID" and rest.upper().startswith(b"SEARCH"):
            out = b"* SEARCH\r\n" + tag + b" OK done\r\n"
        elif cmd == b"LOGOUT":
            conn.sendall(b"* BYE bye\r\n" + tag + b" OK done\r\n")
            return
        else:
            out = tag + b" OK done\r\n"
        conn.sendall(out)


def message(uid):
    body = b"".join(b"line %d of message %d, padding padding padding\r\n" % (i, uid)
                    for i in range(40 * uid))
    return (b"From: Fake <fake@example.test>\r\nTo: you@example.test\r\n"
            b"Subject: message %d\r\nMessage-ID: <m%d@fake.test>\r\n"
            b"Date: Tue, 03 Nov 2026 10:00:00 +0000\r\n\r\n" % (uid, uid)) + body


UIDS = [1, 2, 3]
broken = 0  # whole-body FETCHes of UID 2 broken so far (flakyfetch)


def uid_set(text):
    out = set()
    for part in text.split(b","):
        a, _, z = part.partition(b":")
        lo = int(a) if a != b"*" else max(UIDS)
        hi = lo if not z else (int(z) if z != b"*" else max(UIDS))
        lo, hi = min(lo, hi), max(lo, hi)
        out.update(u for u in UIDS if lo <= u <= hi)
    return sorted(out)


def declared(mode, uid, msg):
    if mode == "wrongsize" and uid in (1, 2):
        return 100 if uid == 1 else 0
    return len(msg)


def fetch(conn, mode, tag, rest):
    """UID FETCH SET ITEMS: what badfetch and stallfetch answer."""
    words = rest.split(b" ", 2)
    items = words[2].upper() if len(words) > 2 else b""
    for uid in uid_set(words[1]):
        msg = message(uid)
        head = b"* %d FETCH (UID %d FLAGS () INTERNALDATE \"03-Nov-2026 10:00:00 +0000\"" % (uid, uid)
        if b"BODY.PEEK[HEADER" in items:
            hdr = msg.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"
            conn.sendall(head + b" RFC822.SIZE %d BODY[HEADER.FIELDS (DATE FROM SUBJECT MESSAGE-ID)] {%d}\r\n" %
                         (declared(mode, uid, msg), len(hdr)) + hdr + b")\r\n")
        elif b"BODY.PEEK[]" in items:
            if mode == "stallfetch":
                return False  # never answers: the client has to time out
            sec = b"BODY[]"
            data = msg
            if b"BODY.PEEK[]<" in items:
                rng = items.split(b"BODY.PEEK[]<", 1)[1].split(b">", 1)[0]
                off, _, ln = rng.partition(b".")
                data = msg[int(off):int(off) + int(ln)]
                sec = b"BODY[]<%d>" % int(off)
            global broken
            if uid == 2 and (mode == "badfetch" or (mode == "flakyfetch" and broken < 3)):
                broken += 1
                conn.sendall(head + b" " + sec + b" {%d}\r\n" % len(data) + data[:len(data) // 2] +
                             b"\r\n* BYE broken\r\n")
                return True  # and the connection is closed
            conn.sendall(head + b" " + sec + b" {%d}\r\n" % len(data) + data + b")\r\n")
        else:
            conn.sendall(head + b" RFC822.SIZE %d)\r\n" % declared(mode, uid, msg))
    conn.sendall(tag + b" OK done\r\n")
    return False


def serve_mailbox(conn, log, mode):
    """A small well-formed server with one INBOX of three messages, broken per mode."""
    conn.sendall(b"* OK [CAPABILITY IMAP4rev1] mailbox\r\n")
    stall = mode == "stalllogin" and os.path.exists(log.name + ".stall")
    logged_in = False
    for line in fakeserver.lines(conn, log):
        parts = line.rstrip(b"\r\n").split(b" ", 2)
        tag = parts[0]
        cmd = parts[1].strip().upper() if len(parts) > 1 else b""
        rest = parts[2] if len(parts) > 2 else b""
        if stall and logged_in:
            continue  # read, never answered
        if cmd == b"LOGIN":
            logged_in = True
        if cmd == b"CAPABILITY":
            out = b"* CAPABILITY IMAP4rev1\r\n" + tag + b" OK done\r\n"
        elif cmd == b"LIST":
            out = b'* LIST () "/" INBOX\r\n' + tag + b" OK done\r\n"
        elif cmd in (b"SELECT", b"EXAMINE"):
            out = (b"* 3 EXISTS\r\n* OK [UIDVALIDITY 7] ok\r\n* OK [UIDNEXT 4] ok\r\n" +
                   tag + b" OK [READ-ONLY] done\r\n")
        elif cmd == b"UID" and rest.upper().startswith(b"SEARCH"):
            out = b"* SEARCH 1 2 3\r\n" + tag + b" OK done\r\n"
        elif cmd == b"UID" and rest.upper().startswith(b"FETCH"):
            if fetch(conn, mode, tag, rest):
                return
            continue
        elif cmd == b"LOGOUT":
            conn.sendall(b"* BYE bye\r\n" + tag + b" OK done\r\n")
            return
        else:
            out = tag + b" OK done\r\n"
        conn.sendall(out)


def main():
    mode, portfile, logfile, _ = fakeserver.args("fake-imap.py MODE PORTFILE LOGFILE", MODES)
    srv = fakeserver.listen(portfile)
    log = fakeserver.open_log(logfile)
    if mode in ("badfetch", "stallfetch", "wrongsize", "flakyfetch", "stalllogin"):
        fakeserver.serve_forever(srv, lambda conn: serve_mailbox(conn, log, mode))
        return
    if mode == "hostilenames":
        fakeserver.serve_forever(srv, lambda conn: serve_hostile(conn, log))
        return
    conn = fakeserver.accept_one(srv)
    send = fakeserver.sender(conn)

    if mode == "preauth":
        send(b"* PREAUTH [CAPABILITY IMAP4rev1] logged in already\r\n")
    else:
        send(b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN LOGIN] fake server ready\r\n")
    for line in fakeserver.lines(conn, log):
        parts = line.split(b" ", 2)
        tag = parts[0]
        cmd = parts[1].strip().upper() if len(parts) > 1 else b""
        if cmd == b"CAPABILITY":
            send(b"* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n" + tag + b" OK done\r\n")
        elif cmd in (b"LOGIN", b"AUTHENTICATE"):
            send(tag + b" OK logged in\r\n")
        elif cmd == b"LOGOUT":
            send(b"* BYE bye\r\n" + tag + b" OK done\r\n")
            break
        elif cmd == b"LIST":
            if mode == "hugeliteral":
                send(b'* LIST () "/" {1000000000000000}\r\nabc')
            elif mode == "longline":
                send(b"* LIST () \"/\" " + b"A" * (4 << 20))
            elif mode == "garbage":
                send(bytes(range(256)) * 64)
            elif mode == "deepnest":
                send(b"* LIST " + b"(" * 1000 + b")" * 1000 + b' "/" INBOX\r\n')
            elif mode == "badnumber":
                send(b"* 1 FETCH (UID 1 BODY[] {99999999999999999999999}\r\n")
            elif mode == "bye":
                send(b'* LIST () "/" INBOX\r\n* BYE going away\r\n')
                break
            else:
                send(b'* LIST () "/" INBOX\r\n' + tag + b" OK done\r\n")
        else:
            send(tag + b" BAD unknown\r\n")
    try:
        conn.close()
    except OSError:
        pass


if __name__ == "__main__":
    main()
