#!/usr/bin/python3
"""What a user's server holds, read over IMAP (TLS to Dovecot, EXAMINE only: nothing changes).

Usage: imap-state.py USER COMMAND ARGS...   (MAILFS_SERVER_DIR names the servers' DIR)

  folders PATTERN          the folder names LIST "" PATTERN returns, sorted, one a line
  msgs FOLDER              one line per message, by UID:
                           uid <TAB> size <TAB> internaldate (epoch) <TAB> flags <TAB>
                           subject <TAB> message-id      (flags sorted, \\Recent left out)
  body FOLDER UID          the message's exact bytes (BODY.PEEK[]) on stdout
  dump PREFIX [HEADER VALUE]
                           a normalized state: every folder named PREFIX* (PREFIX cut off),
                           then per folder its messages as "subject size flags", sorted;
                           with HEADER VALUE, also the account's Trash, only the messages
                           whose HEADER is VALUE (so two runs that share Trash compare)
  count-mid PATTERN TEXT   per Message-ID containing TEXT, in every folder matching PATTERN:
                           "count message-id", sorted
Exit status 1 on any IMAP error (printed on stderr).
"""
import datetime
import imaplib
import os
import re
import ssl
import sys


def ports():
    env = {}
    with open(os.path.join(os.environ["MAILFS_SERVER_DIR"], "ports")) as f:
        for line in f:
            m = re.match(r'^([A-Z_0-9]+)="?(.*?)"?$', line.strip())
            if m:
                env[m.group(1)] = m.group(2)
    return env


def connect(user):
    p = ports()
    ctx = ssl.create_default_context(cafile=p["CA"])
    m = imaplib.IMAP4_SSL(p["HOST"], int(p["IMAPS"]), ssl_context=ctx)
    m.login(user, p[user.upper() + "_PASS"])
    return m


def check(res):
    typ, data = res
    if typ != "OK":
        raise imaplib.IMAP4.error(f"{typ} {data}")
    return data


LIST_RE = re.compile(rb'^\((?P<flags>[^)]*)\) (?:"(?P<d>[^"]*)"|NIL) (?P<name>.*)$')


def unquote(b):
    if b.startswith(b'"') and b.endswith(b'"'):
        b = re.sub(rb'\\(.)', rb'\1', b[1:-1])
    return b.decode("utf-8", "replace")


def folders(m, pattern):
    out = []
    for line in check(m.list('""', pattern)):
        if line is None:
            continue
        if isinstance(line, tuple):  # a literal name
            line = line[0].rsplit(b" ", 1)[0] + b" " + line[1]
        mm = LIST_RE.match(line)
        if not mm:
            continue
        if b"\\noselect" in mm.group("flags").lower() or b"\\nonexistent" in mm.group("flags").lower():
            continue
        out.append(unquote(mm.group("name")))
    return sorted(out)


def quote(name):
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


FETCH_RE = re.compile(rb'UID (\d+)|RFC822\.SIZE (\d+)|INTERNALDATE "([^"]*)"|FLAGS \(([^)]*)\)')


def header(block, name):
    m = re.search(rb'(?im)^' + re.escape(name.encode()) + rb':[ \t]*(.*(?:\r?\n[ \t].*)*)', block)
    return m.group(1).decode("utf-8", "replace").replace("\r\n", " ").strip() if m else ""


def msgs(m, folder):
    check(m.select(quote(folder), readonly=True))
    data = check(m.uid("FETCH", "1:*", "(UID RFC822.SIZE INTERNALDATE FLAGS "
                       "BODY.PEEK[HEADER.FIELDS (SUBJECT MESSAGE-ID X-RUN)])"))
    out = []
    for item in data:
        if not isinstance(item, tuple):
            continue
        meta, hdr = item[0], item[1]
        uid = size = date = None
        flags = ""
        for g in FETCH_RE.finditer(meta):
            if g.group(1):
                uid = int(g.group(1))
            elif g.group(2):
                size = int(g.group(2))
            elif g.group(3):
                date = int(datetime.datetime.strptime(
                    g.group(3).decode().strip(), "%d-%b-%Y %H:%M:%S %z").timestamp())
            elif g.group(4) is not None:
                flags = " ".join(sorted(f for f in g.group(4).decode().split() if f != "\\Recent"))
        if uid is None:
            continue
        out.append((uid, size, date, flags, header(hdr, "Subject"), header(hdr, "Message-ID"),
                    header(hdr, "X-Run")))
    out.sort()
    return out


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    user, cmd, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    m = connect(user)
    try:
        if cmd == "folders":
            for f in folders(m, args[0]):
                print(f)
        elif cmd == "msgs":
            for uid, size, date, flags, subj, mid, _ in msgs(m, args[0]):
                print(f"{uid}\t{size}\t{date}\t{flags}\t{subj}\t{mid}")
        elif cmd == "body":
            check(m.select(quote(args[0]), readonly=True))
            data = check(m.uid("FETCH", args[1], "(BODY.PEEK[])"))
            for item in data:
                if isinstance(item, tuple):
                    sys.stdout.buffer.write(item[1])
                    break
            else:
                sys.exit(f"no UID {args[1]} in {args[0]}")
        elif cmd == "dump":
            prefix = args[0]
            boxes = [(f, f[len(prefix):]) for f in folders(m, prefix + "*")]
            if len(args) == 3:
                boxes.append(("Trash", "(Trash)"))
            for f, shown in boxes:
                print(f"folder {shown}")
                lines = []
                for _, size, _, flags, subj, _, run in msgs(m, f):
                    if f == "Trash" and run != args[2]:
                        continue
                    lines.append(f"  {subj} {size} [{flags}]")
                for line in sorted(lines):
                    print(line)
        elif cmd == "count-mid":
            counts = {}
            for f in folders(m, args[0]):
                for _, _, _, _, _, mid, _ in msgs(m, f):
                    if args[1] in mid:
                        counts[mid] = counts.get(mid, 0) + 1
            for mid in sorted(counts):
                print(f"{counts[mid]} {mid}")
        else:
            sys.exit(__doc__)
    except imaplib.IMAP4.error as e:
        sys.exit(f"imap-state: {e}")
    finally:
        try:
            m.logout()
        except Exception:
            pass


if __name__ == "__main__":
    main()
