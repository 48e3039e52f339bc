#!/usr/bin/python3
"""Compare messages fetched over IMAP with what Dovecot holds on disk.

  maildir-compare.py MAILDIR FOLDERDIR FETCHED

MAILDIR is the user's Maildir root, FOLDERDIR the folder's directory below it (as
Maildir layout names it; "" for INBOX), FETCHED a directory of <uid>.eml files.
Dovecot's dovecot-uidlist maps each UID to a file; the IMAP form of a message is the file
with every bare LF turned into CRLF. Every UID in the uidlist must have been fetched with
exactly those bytes, and nothing else may have been fetched. Prints "N messages, B bytes
identical" or the first differences, exit 1.
"""
import os
import re
import sys


def uidlist(folder):
    path = os.path.join(folder, "dovecot-uidlist")
    entries = {}
    with open(path, "rb") as f:
        f.readline()  # header: version, UIDVALIDITY, next UID, GUID
        for line in f:
            line = line.rstrip(b"\n")
            if not line:
                continue
            # "<uid> [<extension>...] :<filename>" (v3) or "<uid> <filename>" (v1)
            m = re.match(rb"^(\d+)(?: [^:]*)? :(.*)$", line) or re.match(rb"^(\d+) (.*)$", line)
            if not m:
                raise SystemExit("unparsable uidlist line: %r" % line)
            entries[int(m.group(1))] = m.group(2).decode()
    return entries


def find_file(folder, base):
    for sub in ("cur", "new"):
        d = os.path.join(folder, sub)
        for name in os.listdir(d):
            if name == base or name.split(":", 1)[0] == base.split(":", 1)[0]:
                return os.path.join(d, name)
    return None


def main():
    root, folderdir, fetched = sys.argv[1:4]
    folder = os.path.join(root, folderdir) if folderdir else root
    entries = uidlist(folder)
    present = {}
    for uid, base in entries.items():
        p = find_file(folder, base)
        if p is not None:  # expunged messages may linger in the uidlist
            present[uid] = p
    got = {}
    for name in os.listdir(fetched):
        m = re.match(r"^(\d+)\.eml$", name)
        if m:
            got[int(m.group(1))] = os.path.join(fetched, name)
    errors = []
    if set(got) != set(present):
        errors.append("UIDs differ: only on disk %s, only fetched %s" % (
            sorted(set(present) - set(got))[:10], sorted(set(got) - set(present))[:10]))
    total = 0
    for uid in sorted(set(got) & set(present)):
        with open(present[uid], "rb") as f:
            disk = f.read()
        want = re.sub(rb"(?<!\r)\n", b"\r\n", disk)
        with open(got[uid], "rb") as f:
            have = f.read()
        if have != want:
            i = next((k for k in range(min(len(have), len(want))) if have[k] != want[k]),
                     min(len(have), len(want)))
            errors.append("UID %d differs at byte %d (fetched %d bytes, expected %d)" % (
                uid, i, len(have), len(want)))
        total += len(have)
    if errors:
        for e in errors[:20]:
            print(e, file=sys.stderr)
        sys.exit(1)
    if not got:
        print("empty folder, nothing fetched")
        return
    print("%d messages, %d bytes identical" % (len(got), total))


if __name__ == "__main__":
    main()
