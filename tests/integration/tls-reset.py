#!/usr/bin/python3
"""A TLS server that resets connections while the client writes, for the SIGPIPE tests:
the client must report the broken connection in one line, never die of SIGPIPE (OpenSSL
writes to the socket without MSG_NOSIGNAL).

  tls-reset.py PROTO CERT KEY PORTFILE [LOGFILE]

Serves every connection on 127.0.0.1 (port written to PORTFILE) until killed: accepts
TLS (implicit, as imaps:// and smtps://), greets as PROTO (imap or smtp), reads the
client's first line (logged to LOGFILE), answers it with the start of a reply, then closes
with SO_LINGER 0, so the kernel sends a reset while the client writes or waits; what the
client sends after that (its next command, a TLS close_notify) meets the reset.
"""
import os
import socket
import ssl
import struct
import sys
import threading

GREETING = {
    "imap": b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] reset server ready\r\n",
    "smtp": b"220 reset.example.test ESMTP reset server\r\n",
}
PARTIAL = {
    "imap": b"* CAPABILITY IMAP4rev1",
    "smtp": b"250-reset.example.test\r\n250-AUTH PLAIN",
}


def reset(sock):
    # SO_LINGER on with a zero timeout: close() sends RST instead of FIN.
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
    except OSError:
        pass


def serve(ctx, raw, proto, log):
    raw.settimeout(10)
    try:
        conn = ctx.wrap_socket(raw, server_side=True)
        conn.sendall(GREETING[proto])
        line = conn.recv(4096)
        if log is not None:
            log.write(line)
        conn.sendall(PARTIAL[proto])
        # The raw socket under the TLS layer: no close_notify, just the reset.
        reset(conn)
    except (OSError, ssl.SSLError):
        reset(raw)


def main():
    proto, cert, key, portfile = sys.argv[1:5]
    log = open(sys.argv[5], "ab", buffering=0) if len(sys.argv) > 5 else None
    if proto not in GREETING:
        sys.exit("tls-reset.py: PROTO must be imap or smtp")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    with open(portfile + ".tmp", "w") as f:
        f.write(str(srv.getsockname()[1]))
    os.rename(portfile + ".tmp", portfile)
    while True:
        raw, _ = srv.accept()
        threading.Thread(target=serve, args=(ctx, raw, proto, log), daemon=True).start()


if __name__ == "__main__":
    main()
