#!/usr/bin/python3
"""A TLS server that resets connections while the client writes, for the SIGPIPE tests:
the client must report the broken connection in one line, never die of SIGPIPE (OpenSSL
writes to the socket without MSG_NOSIGNAL).

  tls-reset.py PROTO PORTFILE LOGFILE CERT KEY

Serves every connection on 127.0.0.1 (port written to PORTFILE) until killed: accepts
TLS (implicit, as imaps:// and smtps://), greets as PROTO (imap or smtp), reads the
client's first line (logged to LOGFILE), answers it with the start of a reply, then closes
with SO_LINGER 0, so the kernel sends a reset while the client writes or waits; what the
client sends after that (its next command, a TLS close_notify) meets the reset.
"""
import ssl

import fakeserver

GREETING = {
    "imap": b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] reset server ready\r\n",
    "smtp": b"220 reset.example.test ESMTP reset server\r\n",
}
PARTIAL = {
    "imap": b"* CAPABILITY IMAP4rev1",
    "smtp": b"250-reset.example.test\r\n250-AUTH PLAIN",
}


def serve(ctx, raw, proto, log):
    raw.settimeout(10)
    try:
        conn = ctx.wrap_socket(raw, server_side=True)
        conn.sendall(GREETING[proto])
        log.write(conn.recv(4096))
        conn.sendall(PARTIAL[proto])
        # The raw socket under the TLS layer: no close_notify, just the reset.
        fakeserver.reset(conn)
    except (OSError, ssl.SSLError):
        fakeserver.reset(raw)


def main():
    proto, portfile, logfile, (cert, key) = fakeserver.args(
        "tls-reset.py PROTO PORTFILE LOGFILE CERT KEY", set(GREETING), extra=2)
    log = fakeserver.open_log(logfile)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    srv = fakeserver.listen(portfile)
    fakeserver.serve_forever(srv, lambda raw: serve(ctx, raw, proto, log))


if __name__ == "__main__":
    main()
