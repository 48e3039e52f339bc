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
Login is accepted in plaintext here (LOGINDISABLED is not advertised) so that a client that
would send credentials in the clear is caught: the log then holds its LOGIN line.
"""
import fakeserver

MODES = {"nostarttls", "preauth", "hugeliteral", "longline", "garbage", "deepnest",
         "badnumber", "bye", "hostilenames"}


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


def main():
    mode, portfile, logfile, _ = fakeserver.args("fake-imap.py MODE PORTFILE LOGFILE", MODES)
    srv = fakeserver.listen(portfile)
    log = fakeserver.open_log(logfile)
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
