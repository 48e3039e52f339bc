"""Socket set-up shared by the scripted fake servers (fake-imap.py, fake-smtp.py,
tls-reset.py): every one of them is started by lib.sh's fake_start as

  SCRIPT MODE PORTFILE LOGFILE [ARGS...]

listens on 127.0.0.1 on a port the kernel picks, publishes it in PORTFILE (written to
PORTFILE.tmp and renamed, so a reader never sees half a number) and logs what the client
sends to LOGFILE. Only the socket plumbing lives here; what each server says is its own.
"""
import socket
import struct
import sys
import threading


def args(usage, modes, extra=0):
    """(mode, portfile, logfile, [extra args]) from argv, or exit with USAGE."""
    argv = sys.argv[1:]
    if len(argv) != 3 + extra or argv[0] not in modes:
        sys.exit("usage: " + usage + "\n  MODE is one of: " + " ".join(sorted(modes)))
    return argv[0], argv[1], argv[2], argv[3:]


def listen(portfile):
    """A listening socket on 127.0.0.1, its port published atomically in PORTFILE."""
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    with open(portfile + ".tmp", "w") as f:
        f.write(str(srv.getsockname()[1]))
    import os
    os.rename(portfile + ".tmp", portfile)
    return srv


def open_log(path):
    """The log, unbuffered, so a test reads every line as soon as it is written."""
    return open(path, "ab", buffering=0)


def accept_one(srv, wait=30, timeout=10):
    """The one connection of a single-shot server; none within WAIT seconds exits."""
    srv.settimeout(wait)
    try:
        conn, _ = srv.accept()
    except socket.timeout:
        sys.exit("fake server: no client connected within %d s" % wait)
    conn.settimeout(timeout)
    return conn


def serve_forever(srv, handler):
    """Every connection until killed, each in its own thread: handler(conn), then close."""
    srv.settimeout(None)

    def run(conn):
        try:
            handler(conn)
        except OSError:
            pass
        finally:
            try:
                conn.close()
            except OSError:
                pass

    while True:
        conn, _ = srv.accept()
        threading.Thread(target=run, args=(conn,), daemon=True).start()


def sender(conn):
    """send(data): sendall that ignores a client which has already gone away."""
    def send(data):
        try:
            conn.sendall(data)
        except OSError:
            pass
    return send


def reset(sock):
    """Close with SO_LINGER 0, so the kernel sends RST instead of FIN."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
    except OSError:
        pass


def lines(conn, log):
    """The client's lines, each logged first, until it closes or the connection breaks."""
    rfile = conn.makefile("rb")
    while True:
        try:
            line = rfile.readline()
        except OSError:
            return
        if not line:
            return
        log.write(line)
        yield line
