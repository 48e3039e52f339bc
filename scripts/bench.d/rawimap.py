"""What the bare IMAP sessions of `scripts/bench sync` share (raw-select.py, raw-idle.py):
a TLS connection, LOGIN, and commands that wait for their tagged OK."""
import socket
import ssl


class Session:
    def __init__(self, host, port, ca, user, password):
        ctx = ssl.create_default_context(cafile=ca)
        self.sock = ctx.wrap_socket(socket.create_connection((host, int(port))),
                                    server_hostname=host)
        self.file = self.sock.makefile("rb", buffering=0)
        self.file.readline()  # greeting
        self.command(b"a1", b'LOGIN "%s" "%s"' % (user.encode(), password.encode()))

    def command(self, tag, text):
        """Send TAG TEXT; the lines up to its tagged OK (anything else ends the run)."""
        self.sock.sendall(tag + b" " + text + b"\r\n")
        lines = []
        while True:
            line = self.file.readline()
            if not line:
                raise SystemExit("connection closed")
            lines.append(line)
            if line.startswith(tag + b" "):
                if not line.startswith(tag + b" OK"):
                    raise SystemExit("%s failed: %r" % (text.split()[0], line))
                return lines

    def close(self):
        self.sock.sendall(b"a9 LOGOUT\r\n")
        self.sock.close()
