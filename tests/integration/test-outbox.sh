#!/usr/bin/env bash
# End-to-end tests of sending: a real mount, `cp` into MOUNT/alice/outbox/, the real Postfix
# submission (STARTTLS + AUTH) delivering into Dovecot, checked in bob's and alice's Maildirs.
#
#   test-outbox.sh MAILFS                 (MAILFS_SERVER_DIR names the servers' DIR)
#
# Postfix is stopped and started again in the middle; it is left running at the end.
set -euo pipefail

mailfs=$1
. "$(dirname "$0")/lib.sh"
lib_init outbox
postfix_cmd() { postfix -c "$MAILFS_SERVER_DIR/postfix" "$@" >/dev/null 2>&1; }
# The test stops Postfix in the middle: whatever happens, it runs again at the end.
on_cleanup 'postfix_cmd status || postfix_cmd start'

{
	printf 'cache_dir = %s\ndebug = yes\n' "$work/cache"
	account_conf alice "imap = imaps://localhost:$IMAPS" "smtp = smtp://localhost:$SUBMISSION" \
		"prefetch = none" "folders = INBOX Sent" "poll = 60s"
	account_conf bob "imap = imaps://localhost:$IMAPS" "folders = INBOX" "poll = 5s"
	# Two more accounts that log in as alice, each with an SMTP server TLS must refuse.
	account_conf selfsigned=alice "imap = imaps://localhost:$IMAPS" \
		"smtp = smtps://localhost:$SMTPS_SELFSIGNED" "prefetch = none" "folders = INBOX"
	account_conf wronghost=alice "imap = imaps://localhost:$IMAPS" \
		"smtp = smtps://localhost:$SMTPS_WRONGHOST" "prefetch = none" "folders = INBOX"
} >"$work/config"

start() {
	if ! mount_start "$work/config" || ! wait_for 15 test -d "$mnt/alice/outbox"; then
		bad "mount did not come up"
		cat "$work/daemon.log"
		exit 1
	fi
}

# Files in a Maildir (new and cur) holding Message-ID <id>.
count_in() { # maildir, id
	local n=0 f
	for f in "$1"/new/* "$1"/cur/*; do
		[ -f "$f" ] || continue
		grep -qiF "Message-ID: <$2>" "$f" && n=$((n + 1))
	done
	echo "$n"
}
file_in() { # maildir, id
	local f
	for f in "$1"/new/* "$1"/cur/*; do
		[ -f "$f" ] && grep -qiF "Message-ID: <$2>" "$f" && { echo "$f"; return 0; }
	done
	return 1
}
count_at_least() { [ "$(count_in "$1" "$2")" -ge "$3" ]; } # maildir, id, n
wait_count() { wait_for "$4" count_at_least "$1" "$2" "$3"; } # maildir, id, n, seconds
wait_gone() { wait_for "$2" test ! -e "$1"; } # path, seconds
body_of() { sed '1,/^$/d' "$1"; } # everything after the first empty line
bob_inbox=$MAILDIR_BOB
alice_inbox=$MAILDIR_ALICE
alice_sent=$MAILDIR_ALICE/Sent
[ -d "$alice_sent" ] || alice_sent=$MAILDIR_ALICE/.Sent
tag=$$-$RANDOM

msg() { # file, message-id, to, extra headers, body
	printf 'From: Alice <alice@example.test>\nTo: %s\n%sSubject: outbox test %s\nMessage-ID: <%s>\n\n%s' \
		"$3" "$4" "$2" "$2" "$5" >"$1"
}

start
outbox=$mnt/alice/outbox
if findmnt -no OPTIONS "$mnt" | tr ',' '\n' | grep -qx rw; then
	ok "with an outbox the mount is read-write"
else
	bad "mount options with an outbox: $(findmnt -no OPTIONS "$mnt")"
fi
if err=$(touch "$mnt/alice/new.eml" 2>&1); then
	bad "a file could be created in the account's directory"
else
	case "$err" in *"Operation not permitted"*) ok "no files in the account's directory: EPERM" ;; *) bad "touch said: $err" ;; esac
fi

# --- 1. cp into the outbox: delivered to To and Bcc, no Bcc header, Sent copy with \Seen ----
id1=one-$tag@e2e.test
body1=$'Hello Bob,\n.a line that starts with a dot\n..two dots\n.\nand an 8-bit line: gr\xc3\xbc\xc3\x9fe\nlast line\n'
msg "$work/one.eml" "$id1" 'Bob <bob@example.test>' $'Cc: \n''Bcc: "Alice, again" <alice@example.test>'$'\n' "$body1"
check "cp into outbox/ returns 0" cp "$work/one.eml" "$outbox/"
check "bob's INBOX receives it" wait_count "$bob_inbox" "$id1" 1 20
check "the Bcc recipient (alice) receives it" wait_count "$alice_inbox" "$id1" 1 20
f=$(file_in "$bob_inbox" "$id1" || true)
if [ -n "$f" ] && [ "$(body_of "$f")" = "$(body_of "$work/one.eml")" ]; then
	ok "body delivered byte for byte (dot lines, 8-bit)"
else
	bad "body differs"; [ -n "$f" ] && diff <(body_of "$work/one.eml") <(body_of "$f") | head -5
fi
if [ -n "$f" ] && ! grep -qi '^Bcc:' "$f"; then ok "no Bcc header at bob"; else bad "Bcc header reached bob"; fi
fa=$(file_in "$alice_inbox" "$id1" || true)
if [ -n "$fa" ] && ! grep -qi '^Bcc:' "$fa"; then ok "no Bcc header at the Bcc recipient"; else bad "Bcc header at alice"; fi
for h in 'From: Alice <alice@example.test>' 'To: Bob <bob@example.test>' "Subject: outbox test $id1"; do
	if [ -n "$f" ] && grep -qxF "$h" "$f"; then ok "header kept: $h"; else bad "header lost: $h"; fi
done
if [ -n "$f" ] && grep -q '^Date: ' "$f"; then ok "Date added"; else bad "no Date"; fi
check "the Sent copy appears in alice's Sent" wait_count "$alice_sent" "$id1" 1 20
fs=$(file_in "$alice_sent" "$id1" || true)
case "$fs" in *:2,*S*) ok "the Sent copy is \\Seen" ;; *) bad "Sent copy flags: $fs" ;; esac
check "the file left the outbox" wait_gone "$outbox/one.eml" 10

# --- 1b. closes are seen without FLUSH, and the daemon lets go of every file it queued ------
check ".status: closes are seen through inotify" grep -q '^closes *= inotify' "$mnt/.status"
# A read answers OPEN with ENOSYS: from then on the kernel sends no RELEASE for created
# files either, so each queued file's handle must be let go when its close is seen.
cat "$mnt"/alice/INBOX/*.eml >/dev/null 2>&1 || true
fd0=$(ls "/proc/$daemon/fd" | wc -l)
for i in $(seq 20); do msg "$work/many-$i.eml" "many-$i-$tag@e2e.test" 'Bob <bob@example.test>' '' "many $i"$'\n'; done
check "cp of 20 files into outbox/ returns 0" cp "$work"/many-*.eml "$outbox/"
all=yes
for i in $(seq 20); do wait_count "$bob_inbox" "many-$i-$tag@e2e.test" 1 20 || all=no; done
check "all 20 delivered" test "$all" = yes
for _ in $(seq 50); do [ -z "$(ls "$outbox")" ] || [ "$(ls "$outbox")" = failed ] && break; sleep 0.1; done
fd1=$(ls "/proc/$daemon/fd" | wc -l)
if [ "$fd1" -lt $((fd0 + 10)) ]; then
	ok "no descriptor kept per file sent ($fd0 before, $fd1 after)"
else
	bad "the daemon holds $fd1 descriptors after 20 files, $fd0 before"
fi
# The same message read back through the mount of bob's account (over IMAP, CRLF).
fm=
for _ in $(seq 200); do
	fm=$(grep -l -F "Message-ID: <$id1>" "$mnt"/bob/INBOX/*.eml 2>/dev/null | head -1 || true)
	[ -n "$fm" ] && break
	sleep 0.1
done
# shellcheck disable=SC2016
crlf_body_equal='import sys
sent = open(sys.argv[1], "rb").read().split(b"\n\n", 1)[1].replace(b"\n", b"\r\n")
got = open(sys.argv[2], "rb").read().split(b"\r\n\r\n", 1)[1]
sys.exit(0 if got == sent else 1)'
if [ -n "$fm" ] && python3 -c "$crlf_body_equal" "$work/one.eml" "$fm"; then
	ok "bob's mount shows it, body byte-identical (CRLF as IMAP serves it)"
else
	bad "bob's mount: ${fm:-message not there}"
fi
if [ -n "$fm" ] && ! grep -qi '^Bcc:' "$fm"; then ok "no Bcc header in bob's mount"; else bad "Bcc in bob's mount"; fi
[ "$(count_in "$bob_inbox" "$id1")" = 1 ] && ok "delivered once" || bad "delivered $(count_in "$bob_inbox" "$id1") times"

# --- 2. CRLF input and a message without Message-ID -----------------------------------------
id2=crlf-$tag@e2e.test
printf 'From: alice@example.test\r\nTo: bob@example.test\r\nSubject: crlf %s\r\nX-Id: %s\r\n\r\nline one\r\nline two\r\n' "$id2" "$id2" >"$work/crlf.eml"
check "cp of a CRLF file returns 0" cp "$work/crlf.eml" "$outbox/"
n=0
for _ in $(seq 200); do
	f=$(grep -l "X-Id: $id2" "$bob_inbox"/new/* "$bob_inbox"/cur/* 2>/dev/null | head -1 || true)
	[ -n "$f" ] && break
	sleep 0.1
done
if [ -n "$f" ] && [ "$(body_of "$f")" = $'line one\nline two' ] && grep -q '^Message-ID: <.*@example.test>' "$f"; then
	ok "CRLF message delivered, Message-ID added"
else
	bad "CRLF message: ${f:-not delivered}"
fi

# --- 2b. rsync into the outbox (a dot-named temporary renamed into place), scratch files ----
id3=rsync-$tag@e2e.test
msg "$work/rsynced.eml" "$id3" 'bob@example.test' '' $'sent with rsync\n'
check "rsync -a into outbox/ succeeds" rsync -a "$work/rsynced.eml" "$outbox/"
check "the rsynced message is delivered" wait_count "$bob_inbox" "$id3" 1 20
printf 'swap file junk' >"$outbox/.scratch.swp"
check "a dot-file is a scratch file: listed" sh -c "ls -a '$outbox' | grep -qx .scratch.swp"
check "a scratch file reads back" grep -qx 'swap file junk' "$outbox/.scratch.swp"
check "rm of a scratch file" rm "$outbox/.scratch.swp"
check "it is gone, and nothing failed" test ! -e "$outbox/.scratch.swp" -a ! -e "$outbox/failed/.scratch.swp"
printf 'not a message\n' >"$work/nomsg.eml"
if rsync "$work/nomsg.eml" "$outbox/" 2>/dev/null; then bad "rsync of a non-message succeeded"; else ok "rsync of a non-message fails (EINVAL at rename)"; fi
check "the rsynced non-message is in failed/" test -e "$outbox/failed/nomsg.eml" -a -e "$outbox/failed/nomsg.eml.error"

# --- 3. not a message: in failed/ with the reason (close() returns first) ------------------
printf 'Subject: nobody\n\nno recipients here\n' >"$work/norcpt.eml"
check "cp of a message without recipients returns (the refusal comes after)" cp "$work/norcpt.eml" "$outbox/"
for _ in $(seq 100); do [ -e "$outbox/failed/norcpt.eml.error" ] && break; sleep 0.1; done
check "it is in failed/" cmp -s "$work/norcpt.eml" "$outbox/failed/norcpt.eml"
check "NAME.error says why" grep -q "no recipient" "$outbox/failed/norcpt.eml.error"
check "and not in the outbox" test ! -e "$outbox/norcpt.eml"
{ printf '\x89PNG\r\n\x1a\n'; head -c 3000 /dev/urandom; } >"$work/garbage.eml" # binary: a PNG signature first
check "cp of binary garbage returns" cp "$work/garbage.eml" "$outbox/"
for _ in $(seq 100); do [ -e "$outbox/failed/garbage.eml.error" ] && break; sleep 0.1; done
if grep -q "not a message" "$outbox/failed/garbage.eml.error"; then
	ok "garbage.eml.error says not a message"
else
	bad "garbage.eml.error: $(cat "$outbox/failed/garbage.eml.error" 2>&1; ls -la "$outbox/failed/" 2>&1)"
fi
check "rm of failed/NAME and NAME.error" rm "$outbox/failed/garbage.eml" "$outbox/failed/garbage.eml.error"
check "both are gone" test ! -e "$outbox/failed/garbage.eml" -a ! -e "$outbox/failed/garbage.eml.error"

# --- 4. refused recipient, mixed envelope, too big -------------------------------------------
id4=reject-$tag@e2e.test
msg "$work/reject.eml" "$id4" 'reject@example.test' '' $'refused\n'
check "cp of a message to a refused address returns 0" cp "$work/reject.eml" "$outbox/"
for _ in $(seq 200); do [ -e "$outbox/failed/reject.eml.error" ] && break; sleep 0.1; done
check "failed/reject.eml.error holds the server's 550" grep -q "550" "$outbox/failed/reject.eml.error"
check "user.mail.status says failed" sh -c "getfattr --absolute-names --only-values -n user.mail.status '$outbox/failed/reject.eml' | grep -q '^failed: 5'"

id5=mixed-$tag@e2e.test
msg "$work/mixed.eml" "$id5" 'bob@example.test, reject@example.test' '' $'half\n'
check "cp of a mixed envelope returns 0" cp "$work/mixed.eml" "$outbox/"
check "bob receives the mixed one" wait_count "$bob_inbox" "$id5" 1 20
for _ in $(seq 200); do [ -e "$outbox/failed/mixed.eml.error" ] && break; sleep 0.1; done
check "mixed.eml.error lists the refused address" grep -q "reject@example.test: 550" "$outbox/failed/mixed.eml.error"
check "mixed.eml.error lists who got it" sh -c "grep -A2 'Delivered to' '$outbox/failed/mixed.eml.error' | grep -q bob@example.test"

id6=big-$tag@e2e.test
{
	printf 'From: alice@example.test\nTo: bob@example.test\nSubject: big\nMessage-ID: <%s>\n\n' "$id6"
	head -c 16000000 /dev/urandom | base64 -w 76
} >"$work/big.eml"
check "cp of a 21 MB message returns 0" cp "$work/big.eml" "$outbox/"
for _ in $(seq 300); do [ -e "$outbox/failed/big.eml.error" ] && break; sleep 0.1; done
check "too big: failed/ with the size limit in .error" grep -qi "size" "$outbox/failed/big.eml.error"
check "the big one is byte-identical in failed/" cmp -s "$work/big.eml" "$outbox/failed/big.eml"
[ "$(count_in "$bob_inbox" "$id6")" = 0 ] && ok "the big one was not delivered" || bad "the big one arrived"

# --- 5. Postfix stopped: the file waits with a reason; started again: delivered once ---------
postfix_cmd stop
for _ in $(seq 50); do postfix_cmd status || break; sleep 0.1; done
id7=wait-$tag@e2e.test
msg "$work/wait.eml" "$id7" 'bob@example.test' '' $'waited\n'
id8=cancel-$tag@e2e.test
msg "$work/cancel.eml" "$id8" 'bob@example.test' '' $'cancelled\n'
check "cp while Postfix is down returns 0" cp "$work/wait.eml" "$work/cancel.eml" "$outbox/"
st=
for _ in $(seq 100); do
	st=$(getfattr --absolute-names --only-values -n user.mail.status "$outbox/wait.eml" 2>/dev/null || true)
	case "$st" in waiting:*) break ;; esac
	sleep 0.1
done
case "$st" in waiting:*) ok "user.mail.status: $st" ;; *) bad "user.mail.status while down: '$st'" ;; esac
check "ls outbox shows what waits" sh -c "ls '$outbox' | grep -qx wait.eml"
check ".status counts the queue" grep -q "outbox_queued    = 2" "$mnt/.status"
check "rm cancels a waiting message" rm "$outbox/cancel.eml"
postfix_cmd start
check "after Postfix is back it is delivered (retry within 45 s)" wait_count "$bob_inbox" "$id7" 1 45
check "the waiting file left the outbox" wait_gone "$outbox/wait.eml" 10
sleep 1
[ "$(count_in "$bob_inbox" "$id7")" = 1 ] && ok "delivered exactly once" || bad "delivered $(count_in "$bob_inbox" "$id7") times"
[ "$(count_in "$bob_inbox" "$id8")" = 0 ] && ok "the cancelled one was not sent" || bad "the cancelled one was sent"

# --- 6. kill -9 right after close: after a restart it is delivered exactly once --------------
id9=kill-$tag@e2e.test
msg "$work/kill.eml" "$id9" 'bob@example.test' '' $'survives kill -9\n'
postfix_cmd stop # keep it queued across the kill
# A file fully written and still open at the kill: its close is never seen by mailfs
# (it returns 0 all the same); what was written must still be sent.
id10=open-$tag@e2e.test
msg "$work/open.eml" "$id10" 'bob@example.test' '' $'written, closed after kill -9\n'
exec 3>"$outbox/open.eml"
cat "$work/open.eml" >&3 && ok "written into outbox/, kept open across the kill" || bad "write before kill -9"
cp "$work/kill.eml" "$outbox/" && ok "cp before kill -9 returns 0" || bad "cp before kill -9"
kill -9 "$daemon"
wait "$daemon" 2>/dev/null || true
daemon=
exec 3>&-
fusermount3 -uz "$mnt" 2>/dev/null || true
postfix_cmd start
start
check "after kill -9 and restart it is delivered" wait_count "$bob_inbox" "$id9" 1 30
check "the file open at the kill is delivered after the restart" wait_count "$bob_inbox" "$id10" 1 30
sleep 2
[ "$(count_in "$bob_inbox" "$id9")" = 1 ] && ok "delivered exactly once after kill -9" || bad "delivered $(count_in "$bob_inbox" "$id9") times after kill -9"
[ "$(count_in "$bob_inbox" "$id10")" = 1 ] && ok "the open one: delivered exactly once" || bad "the open one: delivered $(count_in "$bob_inbox" "$id10") times"

# --- 7. submission TLS: self-signed and wrong-host certificates are refused ------------------
for acct in selfsigned wronghost; do
	idt=$acct-$tag@e2e.test
	msg "$work/$acct.eml" "$idt" 'bob@example.test' '' $'tls\n'
	cp "$work/$acct.eml" "$mnt/$acct/outbox/" || bad "cp into $acct/outbox"
	st=
	for _ in $(seq 100); do
		st=$(getfattr --absolute-names --only-values -n user.mail.status "$mnt/$acct/outbox/$acct.eml" 2>/dev/null || true)
		case "$st" in waiting:*) break ;; esac
		sleep 0.1
	done
	case "$st" in *certificate*) ok "$acct: refused, status names the certificate" ;; *) bad "$acct: status '$st'" ;; esac
	[ "$(count_in "$bob_inbox" "$idt")" = 0 ] && ok "$acct: nothing sent" || bad "$acct: sent anyway"
done

unmount
# The daemon ran with protocol traces on: AUTH and LOGIN must be redacted.
plain64=$(printf '\0alice\0%s' "$ALICE_PASS" | base64 -w0)
pass64=$(printf '%s' "$ALICE_PASS" | base64 -w0)
if grep -qi "AUTH" "$work/daemon.log" && grep -q "smtp alice" "$work/daemon.log"; then
	ok "SMTP traces were on"
else
	bad "no SMTP trace in the log: the password check below would prove nothing"
fi
if grep -qF -e "$ALICE_PASS" -e "$plain64" -e "$pass64" "$work/daemon.log"; then
	bad "the password is in the log"
else
	ok "no password in the traces (plain or base64)"
fi

# --- 8. shell redirections: close(2) of one descriptor while another stays open ----------------
# `printf ... >FILE` opens FILE, moves it to descriptor 1 and closes the first descriptor
# before it writes: the kernel sends FLUSH for that close too. Right after the mount comes
# up (FLUSH still on), and on a mount that sees every close through FLUSH (no inotify).
redirect_sends() { # label
	local idr=redir-$1-$tag@e2e.test idx=exec-$1-$tag@e2e.test idf=folder-$1-$tag@e2e.test
	if msg "$outbox/redir-$1.eml" "$idr" 'bob@example.test' '' $'by redirection\n' &&
		wait_count "$bob_inbox" "$idr" 1 20; then
		ok "$1: printf >outbox/NAME.eml is delivered"
	else
		bad "$1: printf >outbox/NAME.eml: $(count_in "$bob_inbox" "$idr") delivered, outbox: $(ls "$outbox" | xargs), failed: $(ls "$outbox/failed" | xargs)"
	fi
	# shellcheck disable=SC2094
	if exec 3>"$outbox/exec-$1.eml" && printf 'From: alice@example.test\nTo: bob@example.test\n' >&3 &&
		printf 'Subject: exec %s\nMessage-ID: <%s>\n\nline one\n' "$1" "$idx" >&3 && exec 3>&- &&
		wait_count "$bob_inbox" "$idx" 1 20; then
		ok "$1: exec 3>outbox/NAME.eml, two writes, then close: delivered"
	else
		exec 3>&- || true
		bad "$1: exec 3>: $(count_in "$bob_inbox" "$idx") delivered, failed: $(ls "$outbox/failed" | xargs)"
	fi
	if msg "$mnt/alice/INBOX/folder-$1.eml" "$idf" 'alice@example.test' '' $'into a folder\n' &&
		wait_count "$alice_inbox" "$idf" 1 20; then
		ok "$1: printf >INBOX/NAME.eml is appended"
	else
		bad "$1: printf >INBOX/NAME.eml: $(count_in "$alice_inbox" "$idf") on the server"
	fi
	sleep 1
	local n
	n=$(($(count_in "$bob_inbox" "$idr") + $(count_in "$bob_inbox" "$idx") + $(count_in "$alice_inbox" "$idf")))
	[ "$n" = 3 ] && ok "$1: each once" || bad "$1: $n copies of 3 messages"
}
start
redirect_sends early
unmount
MAILFS_NO_INOTIFY=1 start
check "MAILFS_NO_INOTIFY: .status says closes are seen through FLUSH" grep -q '^closes *= flush' "$mnt/.status"
cat "$mnt"/alice/INBOX/*.eml >/dev/null 2>&1 || true # OPEN refused from now: no RELEASE
redirect_sends flush
unmount
finish "outbox e2e"
