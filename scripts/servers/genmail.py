#!/usr/bin/python3
"""Write generated test messages straight into a Maildir folder (used by scripts/seed).

Usage: genmail.py --maildir PATH --user USER --folder FOLDER --count N
                  --uid UID --gid GID --state-dir DIR [--start K]

PATH is the folder's Maildir directory (the one holding cur/ new/ tmp/), as printed by
`doveadm mailbox path`. Messages are written to tmp/ and renamed into cur/ with a
Maildir name "<mtime>.M<index>P<folder-hash>.mailfs-seed,S=<size>,W=<vsize>:2,<flags>"
(S= is the file size, W= the size with CRLF line ends: Dovecot trusts both, they are
exact), owned by UID:GID, mode 0600, mtime = the Date header (= IMAP INTERNALDATE).

Content (LF line ends, as Dovecot stores mail): plain text, multipart/alternative and
multipart/mixed messages of mostly 2-20 KB; about 1 in 500 has a 1-5 MB base64
attachment, and a batch of N >= 20 always has at least one. Subjects and sender names
are RFC 2047 encoded words in UTF-8 (B and Q), ISO-8859-1, ISO-8859-15, Windows-1252,
ISO-2022-JP, Shift_JIS and KOI8-R; about 1 in 100 subjects is raw UTF-8 (RFC 6532).
Every message has a unique Message-ID <seed.INDEX.FOLDERHASH.USER@mailfs.test> and an
X-Mailfs-Seed: USER/FOLDER/INDEX header. Dates are spread over 2024-01-01..2026-10-31.

Deterministic: message INDEX of (USER, FOLDER) is always the same bytes, except that
the forced large attachment depends on the batch (START, N). START defaults to the
next index not used yet in that folder (state file under --state-dir, plus the
highest index found in the folder's file names), so successive calls append.
"""
import argparse
import base64
import binascii
import bisect
import fcntl
import hashlib
import html
import os
import random
import re
import time

# ----------------------------------------------------------------- RFC 2047 words
Q_SAFE = set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!*+-/")


def q_encode(data):
    out = []
    for b in data:
        if b == 0x20:
            out.append("_")
        elif b in Q_SAFE:
            out.append(chr(b))
        else:
            out.append("=%02X" % b)
    return "".join(out)


CODEC = {"UTF-8": "utf-8", "ISO-8859-1": "iso-8859-1", "ISO-8859-15": "iso-8859-15",
         "windows-1252": "cp1252", "ISO-2022-JP": "iso-2022-jp", "Shift_JIS": "shift_jis",
         "KOI8-R": "koi8-r"}
_word_cache = {}


def encoded_words(text, charset, enc):
    """text as RFC 2047 encoded words (each <= 75 chars), folded with LF + space."""
    key = (text, charset, enc)
    if key in _word_cache:
        return _word_cache[key]
    codec = CODEC[charset]
    prefix = "=?%s?%s?" % (charset, enc)

    def payload(s):
        raw = s.encode(codec)
        return base64.b64encode(raw).decode() if enc == "B" else q_encode(raw)

    words, chunk = [], ""
    for ch in text:
        if chunk and len(prefix) + len(payload(chunk + ch)) + 2 > 75:
            words.append(chunk)
            chunk = ch
        else:
            chunk += ch
    words.append(chunk)
    res = "\n ".join(prefix + payload(w) + "?=" for w in words)
    _word_cache[key] = res
    return res


# ----------------------------------------------------------------- material
# (subject, charset or None for plain ASCII, encoding, body language)
SUBJECTS = [
    ("Quarterly report", None, None, "en"),
    ("Invoice for your order", None, None, "en"),
    ("Meeting notes: budget review", None, None, "en"),
    ("Lunch on Friday?", None, None, "en"),
    ("Status: 50% done / next steps", None, None, "en"),
    ("Your weekly newsletter", None, None, "en"),
    ("Build failed on main", None, None, "en"),
    ("Grüße aus Köln – Treffen am Freitag", "UTF-8", "B", "de"),
    ("Café, crème brûlée & naïve façades", "UTF-8", "Q", "fr"),
    ("🎉 Einladung zur Feier 🎂", "UTF-8", "B", "de"),
    ("Ελληνικά: συνάντηση την Τρίτη", "UTF-8", "B", "en"),
    ("中文邮件：项目进度报告", "UTF-8", "B", "en"),
    ("Rechnung für März - bitte prüfen", "ISO-8859-1", "Q", "de"),
    ("Grüße aus München", "ISO-8859-1", "B", "de"),
    ("Facture : 50 € pour l'œuvre", "ISO-8859-15", "Q", "fr"),
    ("“Smart quotes” – price €100 … really", "windows-1252", "Q", "en"),
    ("会議の議事録について", "ISO-2022-JP", "B", "ja"),
    ("お見積もりのご依頼（至急）", "Shift_JIS", "B", "ja"),
    ("Отчёт за третий квартал", "KOI8-R", "B", "ru"),
    ("Привет из Москвы", "KOI8-R", "Q", "ru"),
    ("Ein sehr langer Betreff mit Umlauten (äöü ÄÖÜ ß), der in mehrere kodierte Wörter "
     "aufgeteilt werden muss, damit keine Zeile zu lang wird", "UTF-8", "Q", "de"),
]
RAW_UTF8_SUBJECT = ("Raw UTF-8 subject: Übergrößenträger ✓", "de")
PREFIXES = ["", "", "", "", "Re: ", "Re: ", "Fwd: ", "AW: ", "RE: Re: "]

# (display name, charset, encoding, address)
SENDERS = [
    ("Alice Example", None, None, "alice@example.test"),
    ("Bob Example", None, None, "bob@example.test"),
    ("Jürgen Müller", "UTF-8", "Q", "juergen.mueller@example.org"),
    ("José García", "ISO-8859-1", "Q", "jose@example.es"),
    ("山田太郎", "ISO-2022-JP", "B", "yamada@example.jp"),
    ("Иван Петров", "KOI8-R", "B", "ivan@example.ru"),
    ("O'Brien, Pat", None, None, "pat@example.net"),
    ("Newsletter", None, None, "news@lists.example.com"),
    ("", None, None, "noreply@ci.example.com"),
    ("Zoë Ångström", "UTF-8", "B", "zoe@example.se"),
]

WORDS = {
    "en": ("the a of and to in for on with this that please find attached report invoice "
           "meeting budget project schedule review update team deadline customer contract "
           "draft proposal quarter revenue numbers figures summary notes agenda action items "
           "follow up next week thanks regards best discussed agreed pending approval server "
           "release version migration backup mailbox folder archive message reply forward "
           "question answer yesterday today tomorrow Monday Friday office remote call "
           "document spreadsheet presentation slides travel hotel flight booking").split(),
    "de": ("der die das und mit für von auf bitte anbei Rechnung Besprechung Übersicht "
           "Änderung prüfen schön Straße Größe Grüße Termin Woche Freitag Montag Angebot "
           "Auftrag Bestätigung Zusammenfassung nächste Schritte Dank freundlichen Projekt "
           "Kunde Vertrag Entwurf Bericht Quartal Umsatz Zahlen über für müssen können").split(),
    "fr": ("le la les de et pour avec sur veuillez trouver ci-joint facture réunion été "
           "déjà très œuvre façade budget projet semaine prochaine merci cordialement "
           "rapport trimestre chiffres résumé contrat ébauche proposition équipe").split(),
    "ru": ("отчёт квартал встреча проект бюджет неделя пятница спасибо пожалуйста "
           "документ договор клиент команда сроки обновление вопрос ответ сегодня завтра "
           "вчера письмо папка архив сервер версия резервная копия").split(),
}
JA_SENTENCES = ["本日の会議の議事録をお送りします。", "ご確認のほどよろしくお願いいたします。",
                "来週の打ち合わせの日程について相談させてください。", "見積書を添付いたしました。",
                "プロジェクトの進捗は順調です。", "お忙しいところ恐れ入りますが、", "何卒よろしくお願い申し上げます。"]

DAY = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
MON = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
T_START = 1704067200        # 2024-01-01 00:00:00 UTC
T_END = 1793491199          # 2026-10-31 23:59:59 UTC
TZ_OFFSETS = [0, 0, 60, 60, 120, -300, -240, -420, 540, 330, 180, -180]


def rfc5322_date(ts, off_min):
    t = time.gmtime(ts + off_min * 60)
    sign = "+" if off_min >= 0 else "-"
    a = abs(off_min)
    return "%s, %02d %s %04d %02d:%02d:%02d %s%02d%02d" % (
        DAY[t.tm_wday], t.tm_mday, MON[t.tm_mon - 1], t.tm_year, t.tm_hour, t.tm_min,
        t.tm_sec, sign, a // 60, a % 60)


def _make_lines(rng, lang, nbytes):
    """Paragraphs of wrapped text, about nbytes bytes (UTF-8), as a list of lines."""
    lines = []
    if lang == "ja":
        total = 0
        while total < nbytes:
            s = "".join(rng.choices(JA_SENTENCES, k=rng.randint(2, 5)))
            for i in range(0, len(s), 30):
                lines.append(s[i:i + 30])
                total += len(lines[-1].encode()) + 1
            lines.append("")
        return lines
    vocab = WORDS[lang]
    words = rng.choices(vocab, k=max(8, nbytes // 6))
    i, n, total, in_par = 0, len(words), 0, 0
    while i < n and total < nbytes:
        k = rng.randint(8, 12)
        line = " ".join(words[i:i + k])
        i += k
        if in_par == 0:
            line = line[:1].upper() + line[1:]
        lines.append(line)
        total += len(line.encode()) + 1
        in_par += 1
        if in_par >= rng.randint(3, 7):
            lines[-1] += "."
            lines.append("")
            total += 1
            in_par = 0
    return lines


# Per language, a fixed corpus of ~256 KB of lines made once from a fixed seed; a
# message's text is a run of lines from a random offset (fast, still varied).
CORPUS_BYTES = 256 * 1024
_corpus = {}


def text_lines(rng, lang, nbytes):
    if lang not in _corpus:
        lines = _make_lines(random.Random("corpus/" + lang), lang, CORPUS_BYTES)
        cum, t = [0], 0
        for ln in lines:
            t += len(ln.encode()) + 1
            cum.append(t)
        _corpus[lang] = (lines, cum)
    lines, cum = _corpus[lang]
    nbytes = min(nbytes, CORPUS_BYTES // 2)
    start = rng.randrange(len(lines) // 2)
    end = bisect.bisect_left(cum, cum[start] + nbytes, lo=start)
    out = lines[start:end + 1]
    while out and not out[0]:
        out = out[1:]
    return out


BODY_CHARSET = {"en": ["us-ascii", "utf-8"], "de": ["utf-8", "iso-8859-1"],
                "fr": ["utf-8", "iso-8859-15"], "ru": ["koi8-r", "utf-8"],
                "ja": ["iso-2022-jp", "utf-8"]}


_escaped = {}


def escape(line):
    e = _escaped.get(line)
    if e is None:
        e = _escaped[line] = html.escape(line, quote=False)
    return e


def text_part(rng, lang, nbytes, subtype="plain", greeting=None):
    """(headers, body) of a text part; body is str of LF-terminated lines."""
    lines = text_lines(rng, lang, nbytes)
    if greeting:
        lines.insert(0, greeting)
        lines.insert(1, "")
    charset = rng.choice(BODY_CHARSET[lang])
    if subtype == "html":
        paras, cur = [], []
        for ln in lines:
            if ln:
                cur.append(escape(ln))
            elif cur:
                paras.append("<p>" + "\n".join(cur) + "</p>")
                cur = []
        if cur:
            paras.append("<p>" + "\n".join(cur) + "</p>")
        text = ("<html>\n<head><meta charset=\"%s\"></head>\n<body>\n%s\n</body>\n</html>\n"
                % (charset, "\n".join(paras)))
    else:
        text = "\n".join(lines) + "\n"
    # Bodies are kept as str whose non-ASCII bytes are surrogate escapes: the final
    # encode("utf-8", "surrogateescape") writes them back byte for byte.
    raw = text.encode(charset, "replace")
    if charset in ("us-ascii", "iso-2022-jp"):
        cte, body = "7bit", raw.decode("ascii")
    else:
        r = rng.random()
        if r < 0.45:
            cte, body = "8bit", raw.decode("ascii", "surrogateescape")
        elif r < 0.85:
            cte, body = "quoted-printable", binascii.b2a_qp(raw).decode("ascii")
        else:
            cte = "base64"
            body = base64.encodebytes(raw).decode("ascii")
    if not body.endswith("\n"):
        body += "\n"
    headers = "Content-Type: text/%s; charset=%s\nContent-Transfer-Encoding: %s\n" % (
        subtype, charset if charset != "us-ascii" else "us-ascii", cte)
    return headers, body, charset


def b64_lines(data):
    """base64 in 76-character lines, each ending in LF (like encodebytes, faster)."""
    b = base64.b64encode(data).decode("ascii")
    return "".join([b[i:i + 76] + "\n" for i in range(0, len(b), 76)])


_csv = []


def csv_rows(rng, nbytes):
    if not _csv:
        r = random.Random("corpus/csv")
        _csv.extend("2025-%02d-%02d,item %d,%d.%02d" % (
            r.randint(1, 12), r.randint(1, 28), i, r.randint(1, 999), r.randint(0, 99))
            for i in range(4000))
    start = rng.randrange(len(_csv) - 300)
    return ["date,item,amount"] + _csv[start:start + max(1, nbytes // 30)]


ATTACH_NAMES = [("report.pdf", "application/pdf", None), ("data.csv", "text/csv", None),
                ("photo.png", "image/png", None), ("Rechnung März.pdf", "application/pdf", "2231"),
                ("Übersicht 2025.xlsx",
                 "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "2047"),
                ("notes.txt", "text/plain", None)]


def disposition(name, style):
    if style == "2231":
        q = "".join(chr(b) if b < 128 and (chr(b).isalnum() or chr(b) in "-._") else "%%%02X" % b
                    for b in name.encode("utf-8"))
        return "attachment; filename*=UTF-8''%s" % q, "name*=UTF-8''%s" % q
    if style == "2047":
        w = encoded_words(name, "UTF-8", "B").replace("\n ", "")
        return 'attachment; filename="%s"' % w, 'name="%s"' % w
    return 'attachment; filename="%s"' % name, 'name="%s"' % name


def attachment(rng, big):
    if big:
        size = rng.randint(1 << 20, 5 << 20)
        name, ctype, style = rng.choice([("backup.bin", "application/octet-stream", None),
                                         ("presentation.pdf", "application/pdf", None),
                                         ("Präsentation groß.pdf", "application/pdf", "2231")])
    else:
        name, ctype, style = rng.choice(ATTACH_NAMES)
        size = rng.randint(500, 6000)
    if ctype == "text/csv":
        data = ("\n".join(csv_rows(rng, size)) + "\n").encode()
    elif ctype == "text/plain":
        data = ("\n".join(text_lines(rng, "en", size)) + "\n").encode()
    else:
        magic = b"%PDF-1.4\n" if ctype == "application/pdf" else (
            b"\x89PNG\r\n\x1a\n" if ctype == "image/png" else b"")
        data = magic + rng.randbytes(size)
    disp, nameparam = disposition(name, style)
    headers = ("Content-Type: %s; %s\nContent-Disposition: %s\n"
               "Content-Transfer-Encoding: base64\n" % (ctype, nameparam, disp))
    return headers + "\n" + b64_lines(data)


def message(user, folder, idx, fh, force_big, rng):
    """(bytes, timestamp, flags) of message number idx."""
    big = rng.random() < 1 / 500 or force_big
    ts = rng.randint(T_START, T_END)
    off = rng.choice(TZ_OFFSETS)
    kind = rng.random()
    target = int(2000 * (10 ** rng.random()))        # 2-20 KB, log-uniform
    subj, charset, enc, lang = rng.choice(SUBJECTS)
    prefix = rng.choice(PREFIXES)
    suffix = " #%d" % idx
    if rng.random() < 0.01:
        subj, lang = RAW_UTF8_SUBJECT
        subject = prefix + subj + suffix
    elif charset is None:
        subject = prefix + subj + suffix
    else:
        subject = prefix + encoded_words(subj, charset, enc) + suffix
    sname, scs, senc, saddr = rng.choice(SENDERS)
    if not sname:
        from_h = saddr
    elif scs:
        from_h = "%s <%s>" % (encoded_words(sname, scs, senc), saddr)
    elif "," in sname or "'" in sname:
        from_h = '"%s" <%s>' % (sname, saddr)
    else:
        from_h = "%s <%s>" % (sname, saddr)
    to_addr = "%s@example.test" % user
    msgid = "<seed.%d.%s.%s@mailfs.test>" % (idx, fh, user)
    date = rfc5322_date(ts, off)
    h = ["Return-Path: <%s>" % saddr,
         "Received: from mail.example.org by localhost (Postfix) with ESMTPS id S%08X\n"
         "\tfor <%s>; %s" % (rng.getrandbits(32), to_addr, date),
         "Date: " + date,
         "From: " + from_h,
         "To: %s <%s>" % (user.capitalize(), to_addr)]
    if rng.random() < 0.2:
        h.append("Cc: Carol <carol@example.org>, \"Dave, D.\" <dave@example.net>")
    h.append("Subject: " + subject)
    h.append("Message-ID: " + msgid)
    if prefix and idx > 0:
        ref = "<seed.%d.%s.%s@mailfs.test>" % (rng.randrange(idx), fh, user)
        h.append("In-Reply-To: " + ref)
        h.append("References: " + ref)
    h.append("X-Mailfs-Seed: %s/%s/%d" % (user, folder, idx))
    h.append("MIME-Version: 1.0")
    greeting = "Hello %s," % user.capitalize()
    parts = []
    if big or kind >= 0.75:
        # multipart/mixed: text (or alternative) + attachment(s)
        bnd = "=_mixed_%d_%s" % (idx, fh)
        h.append('Content-Type: multipart/mixed; boundary="%s"' % bnd)
        body_size = max(800, target // 2)
        if rng.random() < 0.4:
            inner = alternative(rng, lang, body_size, greeting, idx, fh)
        else:
            ph, pb, _ = text_part(rng, lang, body_size, greeting=greeting)
            inner = ph + "\n" + pb
        parts.append(inner)
        for _ in range(1 if big else rng.randint(1, 2)):
            parts.append(attachment(rng, big))
            big = False
        body = "This is a multi-part message in MIME format.\n"
        for p in parts:
            body += "\n--%s\n%s" % (bnd, p)
        body += "\n--%s--\n" % bnd
    elif kind >= 0.40:
        alt = alternative(rng, lang, target, greeting, idx, fh)
        hdr, body = alt.split("\n\n", 1)
        h.append(hdr)
    else:
        ph, pb, _ = text_part(rng, lang, target, greeting=greeting)
        h.append(ph.rstrip("\n"))
        body = pb
    text = "\n".join(h) + "\n\n" + body
    flags = ""
    if rng.random() < 0.05:
        flags += "F"
    if rng.random() < 0.10:
        flags += "R"
    if rng.random() < 0.6:
        flags += "S"
    return text.encode("utf-8", "surrogateescape"), ts, flags


def alternative(rng, lang, size, greeting, idx, fh):
    bnd = "=_alt_%d_%s_%d" % (idx, fh, rng.getrandbits(16))
    th, tb, _ = text_part(rng, lang, size // 2, greeting=greeting)
    hh, hb, _ = text_part(rng, lang, size // 2, subtype="html", greeting=greeting)
    return ('Content-Type: multipart/alternative; boundary="%s"\n\n'
            "--%s\n%s\n%s\n--%s\n%s\n%s\n--%s--\n" % (bnd, bnd, th, tb, bnd, hh, hb, bnd))


# ----------------------------------------------------------------- Maildir writing
NAME_RE = re.compile(r"\.M(\d+)P([0-9a-f]{8})\.mailfs-seed")


def highest_index(maildir, fh):
    best = -1
    for sub in ("cur", "new"):
        try:
            names = os.listdir(os.path.join(maildir, sub))
        except FileNotFoundError:
            continue
        for n in names:
            m = NAME_RE.search(n)
            if m and m.group(2) == fh:
                best = max(best, int(m.group(1)))
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--maildir", required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--folder", required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--uid", type=int, required=True)
    ap.add_argument("--gid", type=int, required=True)
    ap.add_argument("--state-dir", required=True)
    ap.add_argument("--start", type=int)
    a = ap.parse_args()

    fh = hashlib.sha1(("%s\0%s" % (a.user, a.folder)).encode()).hexdigest()[:8]
    for sub in ("cur", "new", "tmp"):
        d = os.path.join(a.maildir, sub)
        if not os.path.isdir(d):
            os.makedirs(d, mode=0o700, exist_ok=True)
            os.chown(d, a.uid, a.gid)
    state_dir = os.path.join(a.state_dir, a.user)
    os.makedirs(state_dir, exist_ok=True)
    state = os.path.join(state_dir, fh + ".next")
    fd = os.open(state, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)         # concurrent seeds of one folder serialize
    st = os.read(fd, 100).split()
    start = a.start
    if start is None:
        start = max(int(st[0]) if st else 0, highest_index(a.maildir, fh) + 1)

    force = -1
    if a.count >= 20:
        force = start + a.count // 2       # replaced below if the batch has a big one
        for idx in range(start, start + a.count):
            if random.Random("%s/%s/%d" % (a.user, a.folder, idx)).random() < 1 / 500:
                force = -1
                break

    tmpdir = os.path.join(a.maildir, "tmp")
    curdir = os.path.join(a.maildir, "cur")
    total = 0
    for idx in range(start, start + a.count):
        rng = random.Random("%s/%s/%d" % (a.user, a.folder, idx))
        data, ts, flags = message(a.user, a.folder, idx, fh, idx == force, rng)
        size = len(data)
        vsize = size + data.count(b"\n")
        base = "%d.M%dP%s.mailfs-seed,S=%d,W=%d" % (ts, idx, fh, size, vsize)
        tmp = os.path.join(tmpdir, base)
        f = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(f, view):]
            os.fchown(f, a.uid, a.gid)
            os.utime(f, (ts, ts))
        finally:
            os.close(f)
        os.rename(tmp, os.path.join(curdir, base + ":2," + flags))
        total += size

    os.lseek(fd, 0, 0)
    os.ftruncate(fd, 0)
    os.write(fd, b"%d %s\n" % (start + a.count, a.folder.encode()))
    os.close(fd)
    print("%d %d %d" % (start, start + a.count - 1, total))


if __name__ == "__main__":
    main()
