#!/usr/bin/python3
"""Plain TCP relay in front of Dovecot's plaintext (STARTTLS/STLS) listeners.

Usage: relay.py [--delay-ms N] [--count FILE] PIDFILE LISTEN_PORT:TARGET_PORT [...]

Why it exists: Dovecot 2.3 treats a connection whose remote IP equals its local IP
as "secured" (login-common: secured = ssl || trusted || remote_ip == local_ip), so
on 127.0.0.1 it would accept LOGIN / USER+PASS in plaintext before STARTTLS, whatever
disable_plaintext_auth says. The test servers must refuse that, so the public IMAP
and POP3 ports are this relay: it accepts on 127.0.0.1:LISTEN_PORT and connects to
Dovecot's internal listener 127.0.0.1:TARGET_PORT from a source address in
127.0.0.2-127.0.0.254 (round robin, so that even if Dovecot's per-IP auth penalty
were active, a failed login would not slow down the next test). Dovecot sees
remote != local, not secured: it advertises LOGINDISABLED and refuses plaintext auth
until STARTTLS.

Bytes are copied unchanged in both directions (TLS after STARTTLS passes through).
The relay writes PIDFILE once every listener is bound, and exits on SIGTERM.
--delay-ms N holds every chunk N ms before passing it on (each direction), a slow link:
end-to-end tests use it to stretch work over the connection so that they can interrupt it
at chosen points.
--count FILE keeps in FILE the number of bytes passed from the servers to the clients so far
(all connections), rewritten after every chunk: what a client received, whatever the
server counted as sent into its socket buffers.
"""
import itertools
import os
import signal
import socket
import sys
import threading
import time

BUF = 256 * 1024
_sources = itertools.cycle(f"127.0.0.{i}" for i in range(2, 255))
_lock = threading.Lock()
_bind_ok = True
_delay = 0.0
_count_file = None
_count = 0


def log(msg):
    sys.stderr.write(f"relay[{os.getpid()}]: {msg}\n")
    sys.stderr.flush()


def connect_backend(port):
    global _bind_ok
    with _lock:
        src = next(_sources) if _bind_ok else None
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if src is not None:
        try:
            s.bind((src, 0))
        except OSError as e:
            # No 127.0.0.0/8 on lo beyond 127.0.0.1: plaintext would be allowed.
            log(f"cannot bind source {src} ({e}); connecting from 127.0.0.1")
            _bind_ok = False
    s.connect(("127.0.0.1", port))
    return s


def counted(n):
    global _count
    with _lock:
        _count += n
        tmp = _count_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{_count}\n")
        os.replace(tmp, _count_file)


def pump(src, dst, count=False):
    try:
        while True:
            data = src.recv(BUF)
            if not data:
                break
            if _delay:
                time.sleep(_delay)
            dst.sendall(data)
            if count and _count_file:
                counted(len(data))
    except OSError:
        pass
    finally:
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def handle(client, port):
    try:
        backend = connect_backend(port)
    except OSError as e:
        log(f"backend 127.0.0.1:{port}: {e}")
        client.close()
        return
    for s in (client, backend):
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    t = threading.Thread(target=pump, args=(backend, client, True), daemon=True)
    t.start()
    pump(client, backend)
    t.join()
    client.close()
    backend.close()


def serve(listener, port):
    while True:
        try:
            client, _ = listener.accept()
        except OSError as e:
            log(f"accept: {e}")
            continue
        threading.Thread(target=handle, args=(client, port), daemon=True).start()


def main():
    global _delay, _count_file
    args = sys.argv[1:]
    while len(args) >= 2 and args[0] in ("--delay-ms", "--count"):
        if args[0] == "--delay-ms":
            _delay = int(args[1]) / 1000.0
        else:
            _count_file = args[1]
        args = args[2:]
    if len(args) < 2:
        sys.exit(__doc__)
    pidfile = args[0]
    listeners = []
    for spec in args[1:]:
        lport, tport = (int(x) for x in spec.split(":"))
        ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(("127.0.0.1", lport))
        ls.listen(512)
        listeners.append((ls, tport))
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    signal.signal(signal.SIGINT, lambda *_: os._exit(0))
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    tmp = f"{pidfile}.tmp"
    with open(tmp, "w") as f:
        f.write(f"{os.getpid()}\n")
    os.rename(tmp, pidfile)
    log("listening on " + ", ".join(args[1:]))
    for ls, tport in listeners[1:]:
        threading.Thread(target=serve, args=(ls, tport), daemon=True).start()
    serve(*listeners[0])


if __name__ == "__main__":
    main()
