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
  errpipe    CAPA lists PIPELINING; a maildrop of PIPE_N messages where TOP of message
             PIPE_BADTOP and RETR of message PIPE_BADRETR answer -ERR (every time), all
             the others are served whole. Each message is also written to LOGFILE.N (the
             bytes RETR gives after unstuffing) for the test to compare with. Before it
             answers the first TOP and the first RETR of a connection the server waits a
             moment and logs "# in flight: CMD K", K the commands of that kind the client
             had sent by then without waiting for their replies.
  droppipe   as errpipe without the -ERRs, but the first RETR of message PIPE_DROP (of
             all connections) sends half of the message, waits half a second and cuts
             the connection (RST), with the rest of the client's window unanswered.
Login is accepted in plaintext (a test uses tls = off for droprretr).
"""
import time

import fakeserver

MODES = {"droprretr", "nostls", "errpipe", "droppipe"}

PIPE_N, PIPE_BADTOP, PIPE_BADRETR, PIPE_DROP = 40, 9, 17, 20
dropped = []  # droppipe: the cut has happened (shared by all connections)
PIPE_MSGS = [
    b"From: p@example.test\r\nSubject: pipe %d\r\nMessage-ID: <p%d@x>\r\n"
    b"Date: Mon, 1 Jan 2024 10:%02d:00 +0000\r\n\r\n" % (i, i, i % 60)
    + b".dot %d\r\n" % i + (b"line of message %d\r\n" % i) * (i * 37 % 400)
    for i in range(1, PIPE_N + 1)
]

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

    def handle_errpipe(conn):
        send = fakeserver.sender(conn)
        send(b"+OK fake pop3 ready\r\n")
        buf = bytearray()
        first = set()

        def in_flight(cmd):
            """The CMD lines already received (this one included), after a pause."""
            time.sleep(0.3)
            conn.setblocking(False)
            try:
                while True:
                    more = conn.recv(65536)
                    if not more:
                        break
                    buf.extend(more)
            except (BlockingIOError, OSError):
                pass
            conn.setblocking(True)
            return 1 + sum(1 for ln in bytes(buf).split(b"\n")
                           if ln.upper().startswith(cmd + b" "))

        while True:
            while b"\n" not in buf:
                try:
                    more = conn.recv(65536)
                except OSError:
                    return
                if not more:
                    return
                buf.extend(more)
            i = buf.index(b"\n") + 1
            line = bytes(buf[:i])
            del buf[:i]
            log.write(line)
            words = line.strip().split(b" ")
            cmd = words[0].upper()
            arg = int(words[1]) if len(words) > 1 and words[1].isdigit() else 0
            if cmd in (b"TOP", b"RETR") and cmd not in first:
                first.add(cmd)
                log.write(b"# in flight: %s %d\n" % (cmd, in_flight(cmd)))
            if cmd == b"CAPA":
                send(b"+OK\r\nUIDL\r\nTOP\r\nUSER\r\nPIPELINING\r\n.\r\n")
            elif cmd in (b"USER", b"PASS", b"NOOP"):
                send(b"+OK\r\n")
            elif cmd == b"UIDL":
                send(b"+OK\r\n" + b"".join(b"%d pipe-%d\r\n" % (i, i)
                                           for i in range(1, PIPE_N + 1)) + b".\r\n")
            elif cmd == b"LIST":
                send(b"+OK\r\n" + b"".join(b"%d %d\r\n" % (i + 1, len(m))
                                           for i, m in enumerate(PIPE_MSGS)) + b".\r\n")
            elif mode == "droppipe" and cmd == b"RETR" and arg == PIPE_DROP and not dropped:
                dropped.append(arg)
                body = b"+OK\r\n" + stuff(PIPE_MSGS[arg - 1])
                send(body[: len(body) // 2])
                # A pause first: an RST makes the kernel drop what the client has not
                # read yet, and the test wants the replies before the cut delivered.
                time.sleep(0.5)
                fakeserver.reset(conn)
                return
            elif mode == "errpipe" and cmd == b"TOP" and arg == PIPE_BADTOP:
                send(b"-ERR [SYS/TEMP] cannot read message %d\r\n" % arg)
            elif mode == "errpipe" and cmd == b"RETR" and arg == PIPE_BADRETR:
                send(b"-ERR message %d is locked\r\n" % arg)
            elif cmd == b"TOP" and 1 <= arg <= PIPE_N:
                hdr = PIPE_MSGS[arg - 1].split(b"\r\n\r\n")[0] + b"\r\n\r\n"
                send(b"+OK\r\n" + stuff(hdr))
            elif cmd == b"RETR" and 1 <= arg <= PIPE_N:
                send(b"+OK\r\n" + stuff(PIPE_MSGS[arg - 1]))
            elif cmd == b"QUIT":
                send(b"+OK bye\r\n")
                return
            else:
                send(b"-ERR unknown\r\n")

    if mode in ("errpipe", "droppipe"):
        for i, m in enumerate(PIPE_MSGS):
            with open("%s.%d" % (log.name, i + 1), "wb") as f:
                f.write(m)
        return handle_errpipe
    return handle_nostls if mode == "nostls" else handle


def main():
    mode, portfile, logfile, _ = fakeserver.args("fake-pop3.py MODE PORTFILE LOGFILE", MODES)
    log = fakeserver.open_log(logfile)
    srv = fakeserver.listen(portfile)
    fakeserver.serve_forever(srv, handler_for(mode, log))


if __name__ == "__main__":
    main()
