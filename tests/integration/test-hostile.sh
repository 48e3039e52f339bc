#!/usr/bin/env bash
# End-to-end tests against scripted servers that misbehave (tests/integration/fake-imap.py):
# a FETCH that always breaks must not make the daemon reconnect in a loop or flood its
# log, and sets that one message aside while the others are cached; a message that breaks
# only a few times is set aside, retried and cached; a server that stops answering (at
# FETCH, or right after login) makes reads fail within seconds; a wrong RFC822.SIZE (too
# small, or 0) never cuts a read and is corrected.
#
#   test-hostile.sh MAILFS        (MAILFS_SERVER_DIR names the servers' DIR, for lib.sh)
set -euo pipefail

mailfs=$1
. "$(dirname "$0")/lib.sh"
lib_init hostile

fake_config() { # name prefetch
	cat >"$work/config.$1" <<EOF2
cache_dir = $work/cache-$1
[account $1]
imap = imap://127.0.0.1:$fport
tls = off
user = x
password = y
prefetch = $2
poll = 5s
EOF2
	chmod 600 "$work/config.$1"
}

# --- a FETCH of one message that always breaks (BYE mid-literal): back off --------------------
fake_start fake-imap.py badfetch
fake_config bad all
if mount_start "$work/config.bad"; then
	sleep 20
	logins=$(grep -c ' LOGIN ' "$flog" || true)
	lines=$(wc -l <"$work/daemon.log")
	if [ "$logins" -le 15 ]; then ok "breaking FETCH: $logins logins in 20 s (bound 15)"
	else bad "breaking FETCH: $logins logins in 20 s (bound 15)"; fi
	if [ "$lines" -le 40 ]; then ok "breaking FETCH: $lines log lines in 20 s (bound 40)"
	else bad "breaking FETCH: $lines log lines in 20 s (bound 40)"; fi
	# UID 2 is set aside after 3 broken FETCHes: listed, EIO, the reason shown (its literal
	# never ends: the server closes the connection in it); UIDs 1 and 3 get cached.
	sleep 1.1 # .status is rebuilt at most once a second
	aside=$(status_get bad set_aside)
	line=$(status_get bad set_aside_msg)
	if [ "$aside" = 1 ] && [[ "$line" == INBOX/*"(UID 2): "*closed*"(3 failures"* ]]; then
		ok "breaking FETCH: .status set_aside = $aside: $line"
	else
		bad "breaking FETCH: .status set_aside = '$aside', set_aside_msg = '$line'"
	fi
	for uid in 1 2 3; do
		f=$(find "$mnt/bad/INBOX" -name "*_${uid}_*.eml" -o -name "*_${uid}.eml" | head -1)
		if [ -z "$f" ]; then bad "breaking FETCH: UID $uid is not listed"; continue; fi
		st=$(getfattr --absolute-names --only-values -n user.mail.status "$f" 2>&1 || true)
		if [ "$uid" = 2 ]; then
			if [[ "$st" == "set aside: "*closed*"(3 failures"* ]]; then
				ok "breaking FETCH: UID 2 listed, user.mail.status = $st"
			else
				bad "breaking FETCH: UID 2 user.mail.status = '$st'"
			fi
			if cat "$f" >/dev/null 2>"$work/aside.err"; then
				bad "breaking FETCH: reading UID 2 succeeded"
			else
				ok "breaking FETCH: reading UID 2 fails: $(cat "$work/aside.err")"
			fi
			continue
		fi
		want=$(python3 -c "import sys, importlib; sys.path.insert(0, '$here'); sys.stdout.buffer.write(importlib.import_module('fake-imap').message($uid))" | sha256sum)
		got=$(sha256sum <"$f")
		if [ "$st" = cached ] && [ "$got" = "$want" ]; then
			ok "breaking FETCH: UID $uid cached and byte-exact beside the set-aside message"
		else
			bad "breaking FETCH: UID $uid user.mail.status = '$st', bytes match: $([ "$got" = "$want" ] && echo yes || echo no)"
		fi
	done
else
	bad "mount of the breaking server failed: $(tail -3 "$work/daemon.log")"
fi
unmount

# --- the same message breaking 3 times only: set aside, then retried and cached --------------
fake_start fake-imap.py flakyfetch
fake_config flaky all
export MAILFS_ASIDE_RETRY=3 # seconds instead of an hour
if mount_start "$work/config.flaky"; then
	f=
	cached_whole() {
		f=$(find "$mnt/flaky/INBOX" -name '*_2_*.eml' -o -name '*_2.eml' | head -1)
		[ -n "$f" ] && [ "$(getfattr --absolute-names --only-values -n user.mail.status "$f" 2>/dev/null)" = cached ]
	}
	if wait_for 40 cached_whole; then
		want=$(python3 -c "import sys, importlib; sys.path.insert(0, '$here'); sys.stdout.buffer.write(importlib.import_module('fake-imap').message(2))" | sha256sum)
		sleep 1.1
		if grep -q "UID 2 set aside after 3 failures" "$work/daemon.log" &&
		   [ "$(sha256sum <"$f")" = "$want" ] && status_is flaky set_aside 0; then
			ok "flaky FETCH: UID 2 set aside after 3 failures, retried, cached byte-exact, record cleared"
		else
			bad "flaky FETCH: set aside logged: $(grep -c 'set aside after' "$work/daemon.log"), set_aside = $(status_get flaky set_aside)"
		fi
	else
		bad "flaky FETCH: UID 2 not cached after 40 s: $(getfattr --absolute-names --only-values -n user.mail.status "$f" 2>&1)"
	fi
else
	bad "mount of the flaky server failed: $(tail -3 "$work/daemon.log")"
fi
unmount
unset MAILFS_ASIDE_RETRY

# read_fails_fast NAME WHAT [SETUP]: mount the fake server as account NAME (prefetch =
# none), run SETUP once synced, then the first read of a body must fail within 15 s.
read_fails_fast() {
	local name=$1 what=$2 setup=${3:-true} f t0 rc el
	fake_config "$name" none
	if mount_start "$work/config.$name" && wait_synced "$name" 30; then
		$setup
		f=$(find "$mnt/$name/INBOX" -name '*.eml' | head -1)
		t0=$(date +%s.%N)
		if cat "$f" >/dev/null 2>"$work/$name.err"; then rc=0; else rc=$?; fi
		el=$(echo "$(date +%s.%N) - $t0" | bc)
		if [ "$rc" != 0 ] && [ "$(echo "$el < 15" | bc)" = 1 ]; then
			ok "read on a server $what failed in ${el}s: $(cat "$work/$name.err")"
		else
			bad "read on a server $what: status $rc after ${el}s"
		fi
	else
		bad "mount of the server $what did not sync: $(tail -3 "$work/daemon.log")"
	fi
	unmount
}

# --- a server that stops answering at FETCH: reads fail within seconds ------------------------
fake_start fake-imap.py stallfetch
read_fails_fast stall "that does not answer FETCH"

# --- a server that stalls right after login: the first read of a body fails within seconds --
stall_new() { touch "$flog.stall"; } # from now on, new connections stall after LOGIN
fake_start fake-imap.py stalllogin
read_fails_fast slogin "stalling right after login" stall_new

# --- RFC822.SIZE too small: reads are not cut, stat is corrected (prefetch = none) ----------
fake_start fake-imap.py wrongsize
fake_config size none
if mount_start "$work/config.size" && wait_synced size 30; then
	f=$(find "$mnt/size/INBOX" -name '*_1_*.eml' | head -1)
	before=$(stat -c %s "$f")
	got=$(cat "$f" | wc -c)
	after=$(stat -c %s "$f")
	real=$(python3 -c "import sys, importlib; sys.path.insert(0, '$here'); print(len(importlib.import_module('fake-imap').message(1)))")
	if [ "$before" = 100 ] && [ "$got" = "$real" ] && [ "$after" = "$real" ]; then
		ok "declared 100 bytes, $real long: read $got bytes, stat $after after the read"
	else
		bad "declared 100 bytes, $real long: read $got bytes, stat $before before and $after after"
	fi
	# Declared 0: the kernel never reads an empty file, so the body is fetched anyway.
	f=$(find "$mnt/size/INBOX" -name '*_2_*.eml' | head -1)
	real=$(python3 -c "import sys, importlib; sys.path.insert(0, '$here'); print(len(importlib.import_module('fake-imap').message(2)))")
	size_is() { [ "$(stat -c %s "$1")" = "$2" ]; }
	if wait_for 15 size_is "$f" "$real"; then
		got=$(cat "$f" | wc -c)
		if [ "$got" = "$real" ]; then ok "declared 0 bytes, $real long: stat $real, read $got bytes"
		else bad "declared 0 bytes, $real long: stat $real but read $got bytes"; fi
	else
		bad "declared 0 bytes, $real long: stat still $(stat -c %s "$f") after 15 s"
	fi
else
	bad "mount of the wrong-size server did not sync: $(tail -3 "$work/daemon.log")"
fi
unmount

finish hostile
