#!/usr/bin/python3
"""A scripted, deliberately broken SMTP server for negative tests: what Postfix never
does. Serves one connection on 127.0.0.1 (port written to PORTFILE), logs every line the
client sends to LOGFILE, and behaves according to MODE:

  fake-smtp.py MODE PORTFILE LOGFILE

  nostarttls   EHLO offers AUTH PLAIN LOGIN but no STARTTLS (the client must stop there)
  rcpt4xx      PIPELINING; RCPT answered 451 (first) and 550 (others); DATA 554
  data354      PIPELINING; every RCPT refused with 550, but DATA answered 354
  close421     MAIL answered 421 4.3.2, then the connection is closed
  longline     EHLO answered with an endless line (4 MiB without a line end)
  garbage      binary garbage instead of a greeting
  closedata    after 354, reads a little of the body and closes the connection
  mismatch     EHLO answered "250-..." then "550 ..." (code changes mid-reply)
  xoauth2      AUTH XOAUTH2 answered with a 334 error challenge, then 535
  xoauth2ok    AUTH XOAUTH2 accepted (235) only for user alice@example.test with the bearer
               token ya29.good-token, exactly as RFC 7628 / Google's XOAUTH2 frame it
  silent       greets, then never answers EHLO
  ok           a well-behaved server without PIPELINING (accepts everything)
Plaintext throughout (clients use tls = off, except against nostarttls): a client that
would send AUTH or MAIL in the clear is caught by the log.
"""
import base64
import time

import fakeserver

MODES = {"nostarttls", "rcpt4xx", "data354", "close421", "longline", "garbage", "closedata",
         "mismatch", "xoauth2", "xoauth2ok", "silent", "ok"}


def main():
    mode, portfile, logfile, _ = fakeserver.args("fake-smtp.py MODE PORTFILE LOGFILE", MODES)
    srv = fakeserver.listen(portfile)
    conn = fakeserver.accept_one(srv, timeout=20)
    log = fakeserver.open_log(logfile)
    send = fakeserver.sender(conn)

    if mode == "garbage":
        send(bytes(range(256)) * 16)
        time.sleep(1)
        conn.close()
        return
    send(b"220 fake.example.test ESMTP fake\r\n")
    exts = [b"fake.example.test", b"SIZE 1000000", b"8BITMIME", b"ENHANCEDSTATUSCODES"]
    if mode in ("rcpt4xx", "data354"):
        exts.append(b"PIPELINING")
    if mode in ("xoauth2", "xoauth2ok"):
        exts.append(b"AUTH XOAUTH2 PLAIN")
    else:
        exts.append(b"AUTH PLAIN LOGIN")
    nrcpt = 0
    in_data = False
    client = fakeserver.lines(conn, log)
    for line in client:
        if in_data:
            if mode == "closedata":
                conn.close()
                return
            if line == b".\r\n":
                in_data = False
                send(b"554 5.5.1 no valid recipients\r\n" if mode == "data354"
                     else b"250 2.0.0 queued\r\n")
            continue
        cmd = line.split(b" ", 1)[0].split(b":", 1)[0].strip().upper()
        if cmd == b"EHLO":
            if mode == "longline":
                send(b"250-" + b"A" * (4 << 20))
                time.sleep(2)
                break
            if mode == "mismatch":
                send(b"250-fake.example.test\r\n550 5.0.0 changed my mind\r\n")
                continue
            if mode == "silent":
                time.sleep(10)
                break
            out = b""
            for i, e in enumerate(exts):
                out += b"250" + (b" " if i == len(exts) - 1 else b"-") + e + b"\r\n"
            send(out)
        elif cmd == b"AUTH":
            if mode == "xoauth2" and line.upper().startswith(b"AUTH XOAUTH2"):
                js = b'{"status":"401","schemes":"bearer","scope":"https://mail.example/"}'
                send(b"334 " + base64.b64encode(js) + b"\r\n")
                nxt = next(client, b"")
                if nxt == b"\r\n":
                    send(b"535 5.7.8 Username and Password not accepted\r\n")
                else:
                    send(b"501 5.5.2 expected an empty line\r\n")
            elif mode == "xoauth2ok":
                parts = line.split()
                want = b"user=alice@example.test\x01auth=Bearer ya29.good-token\x01\x01"
                try:
                    got = base64.b64decode(parts[2], validate=True) if len(parts) == 3 else b""
                except ValueError:
                    got = b""
                if parts[1].upper() == b"XOAUTH2" and got == want:
                    send(b"235 2.7.0 accepted\r\n")
                else:
                    send(b"535 5.7.8 bad XOAUTH2 response\r\n")
            else:
                send(b"235 2.7.0 ok\r\n")
        elif cmd == b"MAIL":
            nrcpt = 0
            if mode == "close421":
                send(b"421 4.3.2 System shutting down\r\n")
                break
            send(b"250 2.1.0 ok\r\n")
        elif cmd == b"RCPT":
            nrcpt += 1
            if mode == "rcpt4xx":
                send(b"451 4.3.0 try again later\r\n" if nrcpt == 1
                     else b"550 5.1.1 no such user\r\n")
            elif mode == "data354":
                send(b"550 5.1.1 no such user\r\n")
            else:
                send(b"250 2.1.5 ok\r\n")
        elif cmd == b"DATA":
            if mode == "rcpt4xx":
                send(b"554 5.5.1 no valid recipients\r\n")
            else:
                in_data = True
                send(b"354 go ahead\r\n")
        elif cmd == b"RSET":
            send(b"250 2.0.0 ok\r\n")
        elif cmd == b"QUIT":
            send(b"221 2.0.0 bye\r\n")
            break
        else:
            send(b"502 5.5.2 unknown command\r\n")
    try:
        conn.close()
    except OSError:
        pass


if __name__ == "__main__":
    main()
