#!/usr/bin/env bash
# End-to-end tests of what a new user meets first: the entry points and daily use.
#
#   test-entry.sh MAILFS IMAP_TOOL SMTP_TOOL MAN_PAGE UNIT_FILE
#                                          (MAILFS_SERVER_DIR names the servers' DIR)
#
#   1. a server that resets the connection while the client writes over TLS
#      (tests/integration/tls-reset.py): the test tools, --check-config, a first mount and
#      a running mount report it in one line and never die of SIGPIPE (exit 141)
#   2. --check-config logs in to SMTP too: self-signed, wrong host name, unreachable and a
#      refused login fail it with exit 1; a good server passes
#   3. .status: stat size = bytes read, mtime unchanged while the text is, a second
#      rsync -a copies nothing
#   4. the progress of a first sync on stderr in the foreground (through a slow relay)
#   5. mounting through mount(8) and mount.fuse3 (fuse.mailfs), reading a message
#   6. the man page renders cleanly and names every option and config key of the code;
#      the systemd user unit parses
set -euo pipefail

mailfs=$1
imap_tool=$2
smtp_tool=$3
man_page=$4
unit_file=$5
. "$(dirname "$0")/lib.sh"
lib_init entry

cert=$MAILFS_SERVER_DIR/certs/server.pem
key=$MAILFS_SERVER_DIR/certs/server.key
reset_start() { # proto: a TLS server that resets, on port $reset_port (killed at exit)
	fake_start tls-reset.py "$1" "$cert" "$key"
	reset_port=$fport
}

# An exit status and stderr that are one clear line, not a death by signal.
one_line_error() { # what, rc, stderr file, pattern
	local what=$1 rc=$2 err=$3 pat=$4
	if [ "$rc" -ge 128 ]; then
		bad "$what: killed by signal $((rc - 128)) (exit $rc), stderr: $(head -c 300 "$err")"
	elif [ "$rc" != 1 ]; then
		bad "$what: exit $rc, want 1: $(head -c 300 "$err")"
	elif [ "$(grep -c . "$err")" != 1 ] || ! grep -qiE "$pat" "$err"; then
		bad "$what: want one line matching '$pat', got: $(head -c 400 "$err")"
	else
		ok "$what: exit 1, $(cat "$err")"
	fi
}

config() { # file, imap URL, smtp URL or "", [extra lines]
	local smtp=()
	[ -z "$3" ] || smtp=("smtp = $3")
	{
		echo "cache_dir = $work/cache-$(basename "$1")"
		account_conf alice "imap = $2" "${smtp[@]}" "${@:4}"
	} >"$1"
}

# --- 1. SIGPIPE ---------------------------------------------------------------------------
reset_start imap
rimap=$reset_port
reset_start smtp
rsmtp=$reset_port
set +e
"$imap_tool" -h localhost -p "$rimap" -s -c "$CA" -u alice -w "$ALICE_PASS" login >/dev/null 2>"$work/err"
one_line_error "imap-tool against a server that resets" $? "$work/err" 'reset|closed|broken pipe'
"$smtp_tool" -h localhost -p "$rsmtp" -s -c "$CA" -u alice -w "$ALICE_PASS" login >/dev/null 2>"$work/err"
one_line_error "smtp-tool against a server that resets" $? "$work/err" 'reset|closed|broken pipe'

config "$work/c-reset" "imaps://localhost:$rimap" ""
"$mailfs" --check-config -o config="$work/c-reset" >"$work/out" 2>"$work/err"
one_line_error "--check-config, IMAP server resets" $? "$work/err" "account 'alice'.*(reset|closed)"
config "$work/c-reset-smtp" "imaps://localhost:$IMAPS" "smtps://localhost:$rsmtp"
"$mailfs" --check-config -o config="$work/c-reset-smtp" >"$work/out" 2>"$work/err"
one_line_error "--check-config, SMTP server resets" $? "$work/err" "account 'alice': SMTP: .*(reset|closed)"

# A first mount (empty cache) in the foreground and as a daemon: one line, exit 1.
timeout 60 "$mailfs" -f -o config="$work/c-reset" "$mnt" >"$work/out" 2>"$work/err"
one_line_error "first mount (-f), IMAP server resets" $? "$work/err" "account 'alice'.*(reset|closed)"
timeout 60 "$mailfs" -o config="$work/c-reset" "$mnt" >"$work/out" 2>"$work/err"
one_line_error "first mount (daemon), IMAP server resets" $? "$work/err" "account 'alice'.*(reset|closed)"
set -e

# After FUSE started: a warm cache whose server now resets every connection, and an SMTP
# server that resets while the sender talks: the daemon stays up, .status says why.
config "$work/c-warm" "imaps://localhost:$IMAPS" "" "poll = 5s"
if mount_start "$work/c-warm" && wait_for 60 status_is alice first_sync done; then
	ok "warm-up mount synced"
else
	bad "warm-up mount did not sync: $(tail -3 "$work/daemon.log")"
fi
unmount
config "$work/c-warm" "imaps://localhost:$rimap" "smtps://localhost:$rsmtp" "poll = 5s"
if mount_start "$work/c-warm"; then
	if ! printf 'From: alice@example.test\nTo: bob@example.test\nSubject: reset %s\n\nhello\n' "$$" \
		>"$mnt/alice/outbox/reset.eml"; then
		bad "writing into the outbox failed"
	fi
	sleep 4 # the sync has tried the IMAP server, the sender the SMTP server
	if kill -0 "$daemon" 2>/dev/null && mountpoint -q "$mnt" && status_is alice state offline &&
		status_get alice last_error | grep -qiE 'reset|closed'; then
		ok "running mount survives servers that reset: $(status_get alice last_error)"
	else
		bad "running mount against resetting servers: alive=$(kill -0 "$daemon" 2>/dev/null && echo yes || echo no), $(grep -E '^(state|last_error)' "$mnt/.status" 2>/dev/null | tr '\n' ' ')"
	fi
	if getfattr --absolute-names -n user.mail.status --only-values "$mnt/alice/outbox/reset.eml" 2>/dev/null | grep -qiE 'reset|closed|waiting'; then
		ok "the outbox message waits: $(getfattr --absolute-names -n user.mail.status --only-values "$mnt/alice/outbox/reset.eml")"
	else
		bad "outbox message state: $(getfattr --absolute-names -n user.mail.status --only-values "$mnt/alice/outbox/reset.eml" 2>&1)"
	fi
	rm -f "$mnt/alice/outbox/reset.eml"
else
	bad "warm mount against resetting servers did not start: $(tail -3 "$work/daemon.log")"
fi
unmount

# --- 2. --check-config logs in to SMTP ---------------------------------------------------------
check_smtp() { # what, smtp URL, expect (ok|fail), pattern, [password]
	config "$work/c-smtp" "imaps://localhost:$IMAPS" "$2"
	[ -z "${5:-}" ] || sed -i "s/^password_cmd = .*/password_cmd = echo $5/" "$work/c-smtp"
	set +e
	"$mailfs" --check-config -o config="$work/c-smtp" >"$work/out" 2>"$work/err"
	local rc=$?
	set -e
	if grep -q 'arrives with the outbox' "$work/out"; then
		bad "$1: stale text in the report"
	fi
	if [ "$3" = ok ]; then
		if [ "$rc" = 0 ] && grep -q '^  smtp login: ok' "$work/out" && [ ! -s "$work/err" ]; then
			ok "$1: exit 0, $(grep '^  smtp' "$work/out" | tr '\n' ' ')"
		else
			bad "$1: exit $rc: $(cat "$work/err") $(grep smtp "$work/out")"
		fi
	else
		one_line_error "$1" "$rc" "$work/err" "$4"
	fi
}
check_smtp "check-config, SMTP STARTTLS" "smtp://localhost:$SUBMISSION" ok ''
check_smtp "check-config, SMTPS" "smtps://localhost:$SUBMISSIONS" ok ''
check_smtp "check-config, self-signed SMTP certificate" "smtps://localhost:$SMTPS_SELFSIGNED" fail \
	"account 'alice': SMTP: .*self-signed"
check_smtp "check-config, SMTP host name mismatch" "smtps://localhost:$SMTPS_WRONGHOST" fail \
	"account 'alice': SMTP: .*(host ?name|mismatch)"
# A port nothing listens on: the relay's, while no relay runs.
check_smtp "check-config, SMTP unreachable" "smtps://localhost:$relay_port" fail \
	"account 'alice': SMTP: .*refused"
check_smtp "check-config, wrong password" "smtps://localhost:$SUBMISSIONS" fail \
	"account 'alice': .*refused.*; SMTP: .*refused" wrongpass

# --- 3. .status ---------------------------------------------------------------------------
config "$work/c-status" "imaps://localhost:$IMAPS" "" "poll = 600s"
if mount_start "$work/c-status" && wait_for 60 status_is alice first_sync done; then
	sleep 1.5 # nothing changes from now on (no poll for 10 minutes)
	sizes_ok=1
	for _ in 1 2 3; do
		s=$(stat -c %s "$mnt/.status")
		n=$(cat "$mnt/.status" | wc -c)
		l=$(find "$mnt" -maxdepth 1 -name .status -printf '%s')
		[ "$s" = "$n" ] && [ "$l" = "$n" ] || { sizes_ok=0; bad ".status: stat $s, listing $l, read $n bytes"; }
	done
	[ "$sizes_ok" = 0 ] || ok ".status: stat and listing sizes equal the bytes read ($n)"
	m1=$(stat -c %.9Y "$mnt/.status")
	sleep 2.2
	m2=$(stat -c %.9Y "$mnt/.status")
	if [ "$m1" = "$m2" ]; then ok ".status: mtime unchanged while its text is ($m1)"
	else bad ".status: mtime changed from $m1 to $m2 with the same text"; fi
	mkdir -p "$work/backup"
	rsync -a "$mnt/.status" "$work/backup/"
	sleep 1.2
	changes=$(rsync -a --itemize-changes "$mnt/.status" "$work/backup/")
	if [ -z "$changes" ] && cmp -s "$mnt/.status" "$work/backup/.status"; then
		ok ".status: a second rsync -a copies nothing"
	else
		bad ".status: the second rsync -a: '$changes'"
	fi
else
	bad ".status mount did not sync: $(tail -3 "$work/daemon.log")"
fi
unmount

# --- 4. progress of the first sync ----------------------------------------------------------
relay_start 150
: >"$work/daemon.log" # the lines of this mount only
config "$work/c-progress" "imaps://localhost:$relay_port" "" "poll = 600s"
if mount_start "$work/c-progress" && wait_for 120 status_is alice first_sync done; then
	sleep 1 # the done line comes within half a second
	prog=$(grep -E '^mailfs: alice: first sync: [0-9]+ of [0-9]+ messages \([0-9]+%\), [0-9.]+ [kMG]B, [0-9.]+ [kMG]B/s, ' "$work/daemon.log" | head -1 || true)
	done_line=$(grep -E '^mailfs: alice: first sync done: [0-9]+ messages, [0-9.]+ [kMG]B in ' "$work/daemon.log" || true)
	total=$(echo "$prog" | sed -nE 's/.* of ([0-9]+) messages.*/\1/p')
	got=$(echo "$done_line" | sed -nE 's/.*done: ([0-9]+) messages.*/\1/p')
	if [ -n "$prog" ] && echo "$prog" | grep -qE 'ETA [0-9]+' && [ -n "$done_line" ] && [ "$total" = "$got" ]; then
		ok "first sync progress on stderr: '$prog', then '$done_line'"
	else
		bad "first sync progress: progress '$prog', done '$done_line' (total $total, got $got)"
	fi
else
	bad "progress mount did not sync: $(tail -3 "$work/daemon.log")"
fi
unmount
relay_stop

# --- 5. mount(8) and mount.fuse3 ---------------------------------------------------------------
config "$work/c-fstab" "imaps://localhost:$IMAPS" "" "poll = 600s"
mailfs_abs=$(realpath "$mailfs")
# Find and wait for the daemon that mount.fuse3 started (it went to the background).
fs_daemon() { pgrep -n -f "^$mailfs_abs mailfs $mnt " || true; }
read_one() { # how: one message read through the mount equals the server's bytes
	local f uid
	wait_for 60 status_is alice first_sync done || true
	f=$(find "$mnt/alice/INBOX" -name '*.eml' | sort | sed -n 1p)
	uid=$(basename "$f" | cut -d_ -f3)
	if [ -n "$uid" ] && imap_state alice body INBOX "$uid" >"$work/server.eml" &&
		cmp -s "$f" "$work/server.eml"; then
		ok "$1: $(grep " $mnt " /proc/mounts | cut -d' ' -f1,3), $(basename "$f") reads as on the server"
	else
		bad "$1: no message or a different one: '$f' (uid '$uid')"
	fi
}
mount_via() { # what, command...
	local what=$1
	shift
	if "$@" 2>"$work/err" && mountpoint -q "$mnt"; then
		daemon=$(fs_daemon)
		[ -n "$daemon" ] || bad "$what: no daemon process found"
		if grep -q " $mnt fuse.mailfs " /proc/mounts; then read_one "$what"
		else bad "$what: type in /proc/mounts: $(grep " $mnt " /proc/mounts)"; fi
		umount "$mnt" || bad "$what: umount failed"
		for _ in $(seq 100); do [ -z "$daemon" ] || kill -0 "$daemon" 2>/dev/null || break; sleep 0.1; done
		if [ -n "$daemon" ] && kill -0 "$daemon" 2>/dev/null; then bad "$what: the daemon did not exit"
		else ok "$what: unmounted, the daemon exited"; daemon=; fi
	else
		bad "$what: $(cat "$work/err")"
	fi
	unmount
}
mount_via "mount -t fuse MAILFS#mailfs (mount.fuse3)" \
	mount -t fuse "$mailfs_abs#mailfs" "$mnt" -o "config=$work/c-fstab,noauto,user,_netdev"
# -t fuse.mailfs: mount(8) finds "mailfs" on its own PATH only when installed; mount.fuse3
# called with the same type finds it on ours.
installed=$(PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin command -v mailfs || true)
if [ -n "$installed" ] && cmp -s "$installed" "$mailfs_abs"; then
	mailfs_abs=$installed
	mount_via "mount -t fuse.mailfs" mount -t fuse.mailfs mailfs "$mnt" -o "config=$work/c-fstab"
	mailfs_abs=$(realpath "$mailfs")
else
	echo "note: no installed mailfs equal to this build: mount -t fuse.mailfs tested through mount.fuse3"
fi
mailfs_abs=mailfs
PATH=$(dirname "$(realpath "$mailfs")"):$PATH
mount_via "mount.fuse3 -t fuse.mailfs" mount.fuse3 mailfs "$mnt" -t fuse.mailfs -o "config=$work/c-fstab"

# --- 6. the man page and the unit ------------------------------------------------------------
if out=$(groff -man -ww -z "$man_page" 2>&1) && [ -z "$out" ]; then ok "man page: groff -ww has no warnings"
else bad "man page: groff warnings: $out"; fi
missing=
# Every config key of cache/config.c and every option of fs/main.c is in the man page.
for k in $(sed -nE 's/^ *\[K_[A-Z0-9_]+\] = \{"([a-z0-9_]+)".*/\1/p' "$top/cache/config.c"); do
	grep -qE "^\.(B|BI|BR) \"?$k =" "$man_page" || missing="$missing $k"
done
groff -man -Tascii "$man_page" 2>/dev/null | col -b >"$work/man.txt"
for o in $(sed -nE 's/^\s*(OPT|FUSE_OPT_KEY)\("([^"=%]+)[=%"].*/\2/p' "$top/fs/main.c"); do
	grep -qE -- "(^| )$o([ ,=]|$)" "$work/man.txt" || missing="$missing $o"
done
if [ -z "$missing" ]; then ok "man page: every config key and option is described"
else bad "man page: not described:$missing"; fi
if command -v systemd-analyze >/dev/null; then
	sed "s|^ExecStart=[^ ]*|ExecStart=$(realpath "$mailfs")|; /^Documentation=/d" "$unit_file" \
		>"$work/mailfs@Mail.service"
	if out=$(systemd-analyze verify "$work/mailfs@Mail.service" 2>&1) && [ -z "$out" ]; then
		ok "systemd unit: systemd-analyze verify is clean"
	else
		bad "systemd unit: $out"
	fi
fi

finish entry
