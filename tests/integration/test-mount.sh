#!/usr/bin/env bash
# End-to-end tests of the mount: real Dovecot and Postfix (scripts/test-servers), a real
# FUSE mount, and only standard tools (find, cat, stat, grep, head, getfattr, ls).
#
#   test-mount.sh MAILFS IMAP_TOOL        (MAILFS_SERVER_DIR names the servers' DIR)
#
# Every file read through the mount is compared byte for byte with Dovecot's Maildir.
# The servers are stopped and started again in the middle (offline mount); they are left
# running at the end.
set -euo pipefail

mailfs=$1
tool=$2
. "$(dirname "$0")/lib.sh"
lib_init e2e
# The test stops the servers in the middle: whatever happens, they run again at the end.
on_cleanup 'MAILFS_PORT_BASE=$IMAP "$top/scripts/test-servers" start "$MAILFS_SERVER_DIR" >/dev/null 2>&1'
alice_imap() { "$tool" -h "$HOST" -p "$IMAPS" -s -c "$CA" -u alice -w "$ALICE_PASS" "$@"; }

word=zqxj$$${RANDOM}planted
# Plant a word in three messages of three folders (one with a non-ASCII name).
plant() { # folder, subject [word in the body]
	printf 'From: Planter <planter@example.test>\nTo: alice@example.test\nSubject: %s\nMessage-ID: <%s@e2e.test>\nDate: Tue, 03 Nov 2026 10:00:00 +0000\n\nThe word %s is here.\n' \
		"$2" "$2" "${3:-$word}" | dova save -u alice -m "$1"
}
plant INBOX "planted-inbox-$word"
plant Archive/2024 "planted-archive-$word"
plant 日本語 "planted-japanese-$word"
dova mailbox create -u alice Renewed 2>/dev/null || true
plant Renewed "renewed-old-1-$$" renewal
plant Renewed "renewed-old-2-$$" renewal
seen_before=$(dova search -u alice mailbox '*' SEEN | wc -l)

cat >"$work/config" <<EOF
cache_dir = $work/cache
[account alice]
imap = imaps://localhost:$IMAPS
user = alice
password_cmd = echo $ALICE_PASS
ca_file = $CA
poll = 5s
[account lazy]
imap = imap://localhost:$IMAP
user = alice
password_cmd = echo $ALICE_PASS
ca_file = $CA
prefetch = none
poll = 5s
folders = INBOX
EOF

start_mount() { mount_start "$work/config" "$@"; }

# --- mount and first sync ----------------------------------------------------------------
if start_mount && wait_synced alice 120 && wait_synced lazy 60; then
	ok "mounted, first sync done"
else
	bad "mount or first sync failed: $(tail -5 "$work/daemon.log")"
	cat "$mnt/.status" 2>/dev/null || true
	exit 1
fi
cat "$mnt/.status"

# --- the mount is read-write; a file that is not a message is refused at its commit ---------
if findmnt -no OPTIONS "$mnt" | tr ',' '\n' | grep -qx rw; then
	ok "mounted read-write"
else
	bad "mount options: $(findmnt -no OPTIONS "$mnt")"
fi
if wait_for 5 grep -q '^closes *= inotify' "$mnt/.status"; then
	ok ".status: closes are seen through inotify (no FLUSH per close)"
else
	bad ".status says closes = $(sed -n 's/^closes *= //p' "$mnt/.status")"
fi
# close() returns before the commit (no FLUSH round trip): the refusal is in .status.
if ! cp /dev/null "$mnt/alice/INBOX/new.eml"; then
	bad "cp of an empty file failed at close"
elif wait_for 10 sh -c "grep '^write_note' '$mnt/.status' | grep -q 'INBOX/new.eml: not a message'"; then
	ok "an empty .eml: refused after its close, .status says so"
else
	bad "no write_note for new.eml: $(grep '^write_note' "$mnt/.status")"
fi
if [ -f "$mnt/alice/INBOX/new.eml" ] && rm "$mnt/alice/INBOX/new.eml"; then
	ok "kept as a local file, then removed"
else
	bad "the refused file is not there to remove"
fi
# fsync is a commit point that answers: dd conv=fsync sees the refusal itself.
if err=$(printf 'no header block\n' | dd of="$mnt/alice/INBOX/new2.eml" conv=fsync status=none 2>&1); then
	bad "fsync of a file without a header block succeeded"
else
	case "$err" in *"Invalid argument"*) ok "fsync of a non-message: EINVAL" ;; *) bad "dd said: $err" ;; esac
fi
rm -f "$mnt/alice/INBOX/new2.eml" || bad "rm of new2.eml failed"

# --- find: every folder and every message --------------------------------------------------
alice_imap list >"$work/list"
while IFS=$'\t' read -r raw name _flags; do
	want=$(alice_imap status "$name" | awk '{print $2}')
	dir="$mnt/alice/$name"
	if [ ! -d "$dir" ]; then bad "folder $name missing"; continue; fi
	have=$(find "$dir" -maxdepth 1 -type f -name '*.eml' | wc -l)
	if [ "$have" = "$want" ]; then ok "find: $name has $have messages"
	else bad "find: $name has $have files, the server $want messages"; fi
	# Byte for byte, through the mount: link each file as <uid>.eml for the comparer.
	rm -rf "$work/by-uid"
	mkdir -p "$work/by-uid"
	find "$dir" -maxdepth 1 -type f -name '*.eml' -printf '%f\n' | while read -r f; do
		uid=$(cut -d_ -f3 <<<"${f%.eml}")
		ln -s "$dir/$f" "$work/by-uid/$uid.eml"
	done
	sub=$raw
	[ "$raw" = INBOX ] && sub=""
	if res=$("$here/maildir-compare.py" "$MAILDIR_ALICE" "$sub" "$work/by-uid" 2>&1); then ok "cat $name: $res"
	else bad "cat $name differs from the server: $res"; fi
done <"$work/list"
if [ -d "$mnt/alice/Archive/2024" ] && [ -d "$mnt/alice/Entwürfe" ] && [ -d "$mnt/alice/With Space" ]; then
	ok "nested, non-ASCII and spaced folder names"
else
	bad "expected folder names missing: $(ls "$mnt/alice")"
fi

# --- st_size is exactly what read returns -------------------------------------------------
mismatch=0
checked=0
while IFS= read -r -d '' f; do
	s=$(stat -c %s "$f")
	n=$(wc -c <"$f")
	checked=$((checked + 1))
	[ "$s" = "$n" ] || { mismatch=$((mismatch + 1)); echo "size $s, read $n: $f"; }
done < <(find "$mnt/alice" "$mnt/lazy" -type f -print0)
if [ "$mismatch" = 0 ] && [ "$checked" -gt 0 ]; then ok "stat size equals bytes read for $checked files"
else bad "stat size differs from bytes read for $mismatch of $checked files"; fi

# --- grep -rl finds exactly the planted messages, and nothing became \Seen ------------------
grep -rl "$word" "$mnt/alice" | sort >"$work/grep"
if [ "$(wc -l <"$work/grep")" = 3 ] && grep -q 'alice/INBOX/.*planted-inbox' "$work/grep" &&
	grep -q 'alice/Archive/2024/.*planted-archive' "$work/grep" &&
	grep -q 'alice/日本語/.*planted-japanese' "$work/grep"; then
	ok "grep -rl found exactly the 3 planted messages"
else
	bad "grep -rl found: $(cat "$work/grep")"
fi
seen_after=$(dova search -u alice mailbox '*' SEEN | wc -l)
if [ "$seen_before" = "$seen_after" ]; then ok "reading everything set no \\Seen flag ($seen_after seen before and after)"
else bad "\\Seen count changed from $seen_before to $seen_after"; fi

# --- head -c 4096 of a large uncached message fetches about that much ----------------------
big=$(find "$mnt/lazy/INBOX" -type f -size +1M -print -quit)
before=$(awk '/^\[account lazy\]/ {a=1} a && /ondemand_bytes/ {print $3; exit}' "$mnt/.status")
if [ -n "$big" ]; then
	uid=$(basename "$big" | cut -d_ -f3)
	head -c 4096 "$big" >"$work/head"
	alice_imap head INBOX "$uid" 4096 >"$work/head.want" 2>/dev/null
	sleep 1.2 # .status is refreshed every second
	after=$(awk '/^\[account lazy\]/ {a=1} a && /ondemand_bytes/ {print $3; exit}' "$mnt/.status")
	moved=$((after - before))
	size=$(stat -c %s "$big")
	if cmp -s "$work/head" "$work/head.want" && [ "$moved" -gt 0 ] && [ "$moved" -le $((512 * 1024)) ]; then
		ok "head -c 4096 of a $size-byte uncached message: right bytes, $moved bytes fetched"
	else
		bad "head -c 4096 of $big: $moved bytes fetched (size $size), bytes $(cmp "$work/head" "$work/head.want" 2>&1)"
	fi
else
	bad "no large message in lazy/INBOX"
fi

# --- extended attributes: the server's flags ---------------------------------------------
f=$(find "$mnt/alice/INBOX" -type f -name '*.eml' -print -quit)
uid=$(basename "$f" | cut -d_ -f3)
want=$(dova fetch -u alice flags mailbox INBOX uid "$uid" | sed -n 's/^flags: *//p')
have=$(getfattr --only-values -n user.mail.flags "$f" 2>/dev/null || true)
if [ "$(tr ' ' '\n' <<<"$want" | grep -v '^\\Recent$' | sort | xargs)" = "$(tr ' ' '\n' <<<"$have" | sort | xargs)" ]; then
	ok "user.mail.flags = '$have' as on the server"
else
	bad "user.mail.flags '$have', server '$want'"
fi
if [ "$(getfattr --only-values -n user.mail.uid "$f")" = "$uid" ]; then ok "user.mail.uid"; else bad "user.mail.uid"; fi
dova flags add -u alice "\\Flagged \$Mfs$$" mailbox INBOX uid "$uid"
if wait_for 30 sh -c "getfattr --only-values -n user.mail.flags '$f' | grep -q 'Mfs$$'"; then
	ok "a flag set by another client shows in user.mail.flags: $(getfattr --only-values -n user.mail.flags "$f")"
else
	bad "flag change not seen: $(getfattr --only-values -n user.mail.flags "$f")"
fi

# --- mail delivered by Postfix, appended and expunged by other clients ---------------------
python3 - "$HOST" "$SUBMISSION" "$CA" "$BOB_PASS" "$$" <<'EOF'
import smtplib, ssl, sys
host, port, ca, pw, tag = sys.argv[1:6]
ctx = ssl.create_default_context(cafile=ca)
with smtplib.SMTP(host, int(port), timeout=30) as s:
    s.starttls(context=ctx)
    s.login("bob", pw)
    s.sendmail("bob@example.test", ["alice@example.test"],
               b"From: bob@example.test\r\nTo: alice@example.test\r\nSubject: e2e delivered by postfix " + tag.encode() + b"\r\n\r\nhello\r\n")
EOF
if wait_for 40 sh -c "ls '$mnt/alice/INBOX' | grep -q 'e2e-delivered-by-postfix-$$'"; then ok "mail delivered through Postfix appeared"
else bad "delivered mail did not appear in alice/INBOX"; fi
printf 'From: other@example.test\r\nSubject: e2e appended by another client %s\r\n\r\nappended\r\n' "$$" >"$work/app.eml"
python3 - "$HOST" "$IMAPS" "$CA" "$ALICE_PASS" "$work/app.eml" <<'EOF'
import imaplib, ssl, sys
host, port, ca, pw, path = sys.argv[1:6]
m = imaplib.IMAP4_SSL(host, int(port), ssl_context=ssl.create_default_context(cafile=ca))
m.login("alice", pw)
m.append("Archive/2025", None, None, open(path, "rb").read())
m.logout()
EOF
if wait_for 40 sh -c "ls '$mnt/alice/Archive/2025' | grep -q 'e2e-appended-by-another-client-$$'"; then ok "message appended by another client appeared"
else bad "appended message did not appear"; fi
gone=$(find "$mnt/alice/With Space" -type f -name '*.eml' -print -quit)
gone_uid=$(basename "$gone" | cut -d_ -f3)
dova expunge -u alice mailbox "With Space" uid "$gone_uid"
if wait_for 40 sh -c "[ ! -e '$gone' ]"; then ok "message expunged by another client disappeared"
else bad "expunged message still listed: $gone"; fi

# --- UIDVALIDITY change: the folder is read again, no stale or duplicate file ---------------
old_v=$(alice_imap status Renewed | awk '{print $6}')
dova mailbox delete -u alice Renewed
dova mailbox create -u alice Renewed
plant Renewed "renewed-new-$$" renewal
new_v=$(alice_imap status Renewed | awk '{print $6}')
renewed_ok() {
	local l
	l=$(ls "$mnt/alice/Renewed")
	[ "$(wc -l <<<"$l")" = 1 ] && grep -q "renewed-new-" <<<"$l" && ! grep -q "renewed-old-" <<<"$l"
}
if [ "$old_v" != "$new_v" ] && wait_for 40 renewed_ok; then
	ok "UIDVALIDITY $old_v -> $new_v: the folder was read again: $(ls "$mnt/alice/Renewed")"
else
	bad "after the UIDVALIDITY change ($old_v -> $new_v) Renewed holds: $(ls "$mnt/alice/Renewed" | xargs)"
fi

# --- restart with the servers stopped: the warm cache serves -------------------------------
cached=$(find "$mnt/alice/Archive/2024" -type f -name '*.eml' -print -quit)
cp "$cached" "$work/cached.copy"
uncached=$(find "$mnt/lazy/INBOX" -type f -name '*.eml' | tail -1)
unmount
MAILFS_PORT_BASE=$IMAP "$top/scripts/test-servers" stop "$MAILFS_SERVER_DIR" >/dev/null
if start_mount; then
	ok "mount starts with the servers down and a warm cache"
	if ls "$mnt/alice/INBOX" >/dev/null && [ "$(find "$mnt/alice" -type f | wc -l)" -gt 0 ] &&
		cmp -s "$cached" "$work/cached.copy"; then
		ok "offline: listing and cached reads work"
	else
		bad "offline: listing or cached read failed"
	fi
	set +e
	err=$(timeout 10 head -c 100 "$uncached" 2>&1 >/dev/null)
	rc=$?
	set -e
	if [ "$rc" != 124 ] && [ "$rc" != 0 ] && grep -q "Input/output error" <<<"$err"; then ok "offline: uncached read fails with EIO ($err)"
	else bad "offline: uncached read: status $rc, $err"; fi
	grep -A2 '^\[account alice\]' "$mnt/.status" | grep -q 'state *= offline' && ok ".status says offline" ||
		bad ".status: $(head -3 "$mnt/.status")"
	# The servers come back: the mount reconnects by itself and catches up.
	MAILFS_PORT_BASE=$IMAP "$top/scripts/test-servers" start "$MAILFS_SERVER_DIR" >/dev/null
	plant INBOX "back-online-$$" renewal
	if wait_for 90 sh -c "ls '$mnt/alice/INBOX' | grep -q 'back-online-$$'" &&
		grep -A2 '^\[account alice\]' "$mnt/.status" | grep -q 'state *= online'; then
		ok "servers back: reconnected, new mail appeared"
	else
		bad "servers back: no reconnect: $(head -4 "$mnt/.status" | xargs); log: $(tail -5 "$work/daemon.log")"
		if [ -n "${MAILFS_E2E_DEBUG:-}" ]; then gdb -p "$daemon" -batch -ex 'thread apply all bt 15' 2>&1 | grep '^#' | grep -v 'libc_read\|clone3\|start_thread' >"$MAILFS_E2E_DEBUG"; ss -tnp >>"$MAILFS_E2E_DEBUG"; { grep fuse /proc/mounts; ps aux | grep '[m]ailfs -f'; echo "daemon=$daemon"; stat "$mnt/.status"; cat "$mnt/.status"; ls -la "$mnt/alice/INBOX" | tail -3; } >>"$MAILFS_E2E_DEBUG" 2>&1; fi
	fi
else
	bad "mount with the servers down failed: $(tail -3 "$work/daemon.log")"
fi
unmount
MAILFS_PORT_BASE=$IMAP "$top/scripts/test-servers" start "$MAILFS_SERVER_DIR" >/dev/null

# --- empty cache and unreachable server: one clear line, non-zero exit ----------------------
sed "s|^cache_dir = .*|cache_dir = $work/cache2|; s|imaps://localhost:$IMAPS|imaps://localhost:1|" "$work/config" >"$work/config.down"
set +e
"$mailfs" -f -o config="$work/config.down" "$mnt" >"$work/down.out" 2>&1
rc=$?
set -e
if [ "$rc" != 0 ] && [ "$(wc -l <"$work/down.out")" = 1 ] && grep -q "account 'alice'" "$work/down.out"; then
	ok "empty cache, server down: $(cat "$work/down.out")"
else
	bad "empty cache, server down: status $rc: $(cat "$work/down.out")"
fi
unmount

# --- kill -9 during the first sync, then restart: complete, no duplicates --------------------
MAILFS_SERVER_DIR=$MAILFS_SERVER_DIR "$top/scripts/seed" alice 3000 Bulk >/dev/null
sed -i "s|^cache_dir = .*|cache_dir = $work/cache3|" "$work/config"
start_mount
sleep 1.5
daemon_kill9
if start_mount && wait_synced alice 180; then
	want=$(alice_imap status Bulk | awk '{print $2}')
	find "$mnt/alice/Bulk" -type f -name '*.eml' -printf '%f\n' | cut -d_ -f3 | sort -n >"$work/uids"
	have=$(wc -l <"$work/uids")
	dups=$(uniq -d "$work/uids" | wc -l)
	if [ "$have" = "$want" ] && [ "$dups" = 0 ]; then ok "kill -9 mid-sync, restart: $have of $want messages, no duplicates"
	else bad "after kill -9: $have files for $want messages, $dups duplicate UIDs"; fi
else
	bad "restart after kill -9 failed: $(tail -3 "$work/daemon.log")"
fi
unmount

# --- hostile folder names cannot escape the tree --------------------------------------------
fake_start fake-imap.py hostilenames
cat >"$work/config.evil" <<EOF
cache_dir = $work/cache4
[account evil]
imap = imap://127.0.0.1:$fport
tls = off
user = x
password = y
EOF
chmod 600 "$work/config.evil"
if mount_start "$work/config.evil" && wait_synced evil 30; then
	find "$mnt/evil" >"$work/evil.find"
	escaped=$(find "$mnt/evil" -name '..' -o -name '.' | wc -l)
	outside=$(grep -cv "^$mnt/evil" "$work/evil.find" || true)
	if [ "$escaped" = 0 ] && [ "$outside" = 0 ] && grep -q '%2E%2E\|/%$\|%2F' "$work/evil.find" &&
		grep -q 'ctl%01%7Fname' "$work/evil.find" && grep -q '%2541' "$work/evil.find"; then
		ok "hostile folder names escaped: $(sed "s|$mnt/evil/||" "$work/evil.find" | tail -n +2 | xargs)"
	else
		bad "hostile folder names: $(cat "$work/evil.find")"
	fi
else
	bad "mount of the hostile server did not sync: $(tail -3 "$work/daemon.log")"
fi
unmount

finish
