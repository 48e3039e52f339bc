#!/usr/bin/python3
"""A scripted POP3 server for fault tests: what a real server does only when it breaks.
Serves every connection until killed on 127.0.0.1 (port written to PORTFILE), logs every
line the client sends to LOGFILE, and behaves according to MODE:

  fake-pop3.py MODE PORTFILE LOGFILE

  droprretr  a maildrop of three messages; RETR of message 2 sends half of it, then the
             connection is cut (RST); messages 1 and 3 are served whole. Message 1 has
             a line starting with "." (stuffed on the wire) and a NUL byte.
  nostls     plaintext greeting, CAPA without STLS (a pop3:// client must refuse to log
             in: the log must never hold a USER or PASS line)
Login is accepted in plaintext (a test uses tls = off for droprretr).
"""
import fakeserver

MODES = {"droprretr", "nostls"}

MSGS = [
    b"From: a@example.test\r\nSubject: one\r\nMessage-ID: <1@x>\r\n"
    b"Date: Mon, 1 Jan 2024 10:00:00 +0000\r\n\r\n.starts with a dot\r\nnul:\x00:\r\nend\r\n",
    b"From: b@example.test\r\nSubject: two\r\nMessage-ID: <2@x>\r\n"
    b"Date: Tue, 2 Jan 2024 10:00:00 +0000\r\n\r\n" + b"x" * 70 + b"\r\n" * 1
    + (b"0123456789" * 7 + b"\r\n") * 2000,
    b"From: c@example.test\r\nSubject: three\r\nMessage-ID: <3@x>\r\n"
    b"Date: Wed, 3 Jan 2024 10:00:00 +0000\r\n\r\nthird\r\n",
]


def stuff(msg):
    out = []
    for line in msg.split(b"\r\n")[:-1]:
        out.append(b"." + line if line.startswith(b".") else line)
    return b"\r\n".join(out) + b"\r\n.\r\n"


def handler_for(mode, log):
    def handle(conn):
        send = fakeserver.sender(conn)
        send(b"+OK fake pop3 ready\r\n")
        for line in fakeserver.lines(conn, log):
            words = line.strip().split(b" ")
            cmd = words[0].upper()
            arg = int(words[1]) if len(words) > 1 and words[1].isdigit() else 0
            if cmd == b"CAPA":
                send(b"+OK\r\nUIDL\r\nTOP\r\nUSER\r\n.\r\n")
            elif cmd in (b"USER", b"PASS", b"NOOP"):
                send(b"+OK\r\n")
            elif cmd == b"UIDL":
                send(b"+OK\r\n" + b"".join(b"%d uid-%d\r\n" % (i + 1, i + 1)
                                           for i in range(len(MSGS))) + b".\r\n")
            elif cmd == b"LIST":
                send(b"+OK\r\n" + b"".join(b"%d %d\r\n" % (i + 1, len(m))
                                           for i, m in enumerate(MSGS)) + b".\r\n")
            elif cmd == b"STAT":
                send(b"+OK %d %d\r\n" % (len(MSGS), sum(map(len, MSGS))))
            elif cmd == b"TOP" and 1 <= arg <= len(MSGS):
                hdr = MSGS[arg - 1].split(b"\r\n\r\n")[0] + b"\r\n\r\n"
                send(b"+OK\r\n" + stuff(hdr))
            elif cmd == b"RETR" and 1 <= arg <= len(MSGS):
                body = b"+OK\r\n" + stuff(MSGS[arg - 1])
                if arg == 2:
                    send(body[: len(body) // 2])
                    fakeserver.reset(conn)
                    return
                send(body)
            elif cmd == b"QUIT":
                send(b"+OK bye\r\n")
                return
            else:
                send(b"-ERR unknown\r\n")

    def handle_nostls(conn):
        send = fakeserver.sender(conn)
        send(b"+OK fake pop3 ready\r\n")
        for line in fakeserver.lines(conn, log):
            cmd = line.strip().split(b" ")[0].upper()
            if cmd == b"CAPA":
                send(b"+OK\r\nUIDL\r\nUSER\r\n.\r\n")
            elif cmd == b"QUIT":
                send(b"+OK\r\n")
                return
            else:
                send(b"+OK\r\n")

    return handle_nostls if mode == "nostls" else handle


def main():
    mode, portfile, logfile, _ = fakeserver.args("fake-pop3.py MODE PORTFILE LOGFILE", MODES)
    log = fakeserver.open_log(logfile)
    srv = fakeserver.listen(portfile)
    fakeserver.serve_forever(srv, handler_for(mode, log))


if __name__ == "__main__":
    main()
