#!/usr/bin/env bash
# End-to-end tests of POP3 accounts against the real Dovecot POP3 of scripts/test-servers
# (STLS on POP3, implicit TLS on POP3S) and against tests/integration/fake-pop3.py:
# byte-exact reads (compared with what RETR gives a separate client), exact sizes,
# EROFS for everything but rm, rm = exactly one message gone from the server, offline
# reads from the cache, pop3_delete = after_cache surviving kill -9 between RETR and
# QUIT, a server that drops mid-RETR, a pipelining server that refuses one TOP and one
# RETR inside a window or drops the connection in the middle of one, TLS refused for a self-signed / wrong-host certificate and for a
# server without STLS, --check-config on a POP3 account.
#
#   test-pop3.sh MAILFS        (MAILFS_SERVER_DIR names the servers' DIR, for lib.sh)
set -euo pipefail

mailfs=$1
. "$(dirname "$0")/lib.sh"
lib_init pop3

pstate() { # user args... : the server's view (tests/integration/pop3-state.py, STLS)
	local user=$1 pass
	shift
	case $user in alice) pass=$ALICE_PASS ;; bob) pass=$BOB_PASS ;; esac
	python3 "$here/pop3-state.py" 127.0.0.1 "$POP3" "$user" "$pass" "$CA" "$@"
}

conf() { # file cache-name account[=user] lines...
	local f=$1 c=$2
	shift 2
	{ echo "cache_dir = $work/cache-$c"; account_conf "$@"; } >"$f"
	chmod 600 "$f"
}

# compare MOUNT_DIR DUMP_DIR LABEL: same multiset of contents, st_size = bytes read
compare() {
	python3 - "$1" "$2" <<'PY'
import hashlib, os, sys
m, d = sys.argv[1], sys.argv[2]
srv = sorted(hashlib.sha256(open(os.path.join(d, f), "rb").read()).hexdigest()
             for f in os.listdir(d))
got, bad = [], []
for f in os.listdir(m):
    p = os.path.join(m, f)
    b = open(p, "rb").read()
    if len(b) != os.stat(p).st_size:
        bad.append("%s: st_size %d, read %d" % (f, os.stat(p).st_size, len(b)))
    got.append(hashlib.sha256(b).hexdigest())
got.sort()
if got != srv:
    missing = len(set(srv) - set(got))
    extra = len(set(got) - set(srv))
    print("contents differ: %d files vs %d on the server, %d missing, %d unexpected"
          % (len(got), len(srv), missing, extra))
    sys.exit(1)
if bad:
    print("; ".join(bad[:5]))
    sys.exit(1)
print("%d files byte-identical to RETR, sizes exact" % len(got))
PY
}

# A message with what POP3 framing has to get right: lines that start with "." (stuffed
# on the wire), a NUL byte, a line of only ".", and no final line end (Dovecot's POP3
# adds CRLF). Written into the maildir directly (LMTP would not keep the NUL).
craft() { # maildir
	local f
	f="$1/new/$(date +%s).M1P$$.pop3test"
	printf 'From: x@example.test\r\nSubject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe_dots?=\r\nMessage-ID: <craft.%s@pop3test>\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\n\r\n.leading dot\r\n..two dots\r\n.\r\nnul:\0:end\r\nno final line end' "$$" >"$f"
	chown --reference="$1" "$f" 2>/dev/null || chown 999:994 "$f"
}

# The other suites expect the seeded INBOXes: what this test adds, deletes (rm,
# after_cache) is put back at exit (the maildir files as they were, then a resync).
snapshot() { # user maildir
	mkdir -p "$work/snap-$1"
	(cd "$2" && find cur new -maxdepth 1 -type f -printf '%P\n' | sed 's/:2,.*//' |
		sort >"$work/snap-$1.list" && tar cf "$work/snap-$1/inbox.tar" cur new)
}
restore() { # user maildir
	[ -f "$work/snap-$1/inbox.tar" ] || return 0
	(cd "$2" && find cur new -maxdepth 1 -type f -delete && tar xpf "$work/snap-$1/inbox.tar")
	dova force-resync -u "$1" INBOX >/dev/null 2>&1 || true
}
snapshot alice "$MAILDIR_ALICE"
snapshot bob "$MAILDIR_BOB"
on_cleanup 'restore alice "$MAILDIR_ALICE"; restore bob "$MAILDIR_BOB"'

# --- 1. pop3:// (STLS): listing, byte-exact reads, sizes -------------------------------------
craft "$MAILDIR_ALICE"
rm -rf "$work/dump"
pstate alice dump "$work/dump"
n0=$(ls "$work/dump" | wc -l)
conf "$work/config.stls" stls old=alice "pop3 = pop3://127.0.0.1:$POP3" "poll = 5s"
if ! mount_start "$work/config.stls"; then
	bad "pop3:// mount did not start: $(tail -3 "$work/daemon.log")"
	exit 1
fi
if wait_synced old 120; then ok "pop3:// first sync done"; else bad "pop3:// first sync not done"; fi
nl=$(ls "$mnt/old/INBOX" | wc -l)
check "pop3:// INBOX lists what UIDL lists ($nl of $n0)" test "$nl" = "$n0"
if out=$(compare "$mnt/old/INBOX" "$work/dump"); then ok "pop3:// $out"; else bad "pop3:// $out"; fi
crafted=$(ls "$mnt/old/INBOX" | grep 'Grüße-dots' || true)
check "name from TOP headers, IMAP form (got '$crafted')" \
	test "$crafted" != "" -a "${crafted:0:16}" = "2024-01-01_1000_"
if [ -n "$crafted" ] && cmp -s "$mnt/old/INBOX/$crafted" \
	<(printf 'From: x@example.test\r\nSubject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe_dots?=\r\nMessage-ID: <craft.%s@pop3test>\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\n\r\n.leading dot\r\n..two dots\r\n.\r\nnul:\0:end\r\nno final line end\r\n' "$$"); then
	ok "dot-unstuffing, NUL kept, final CRLF as Dovecot's RETR gives it"
else
	bad "crafted message differs from what was delivered (+ CRLF)"
fi
mid=$(getfattr --absolute-names --only-values -n user.mail.message-id "$mnt/old/INBOX/$crafted" 2>/dev/null || true)
check "user.mail.message-id from TOP ('$mid')" test "$mid" = "<craft.$$@pop3test>"

# --- 2. read-only but rm ----------------------------------------------------------------------
one=$(ls "$mnt/old/INBOX" | sed -n 1p)
erofs() { # label command...
	local l=$1
	shift
	if "$@" 2>"$work/erofs.err"; then bad "$l succeeded"; return; fi
	if grep -q "Read-only file system" "$work/erofs.err"; then ok "$l: EROFS"
	else bad "$l: $(cat "$work/erofs.err")"; fi
}
erofs "create in a POP3 INBOX" sh -c "echo x > '$mnt/old/INBOX/new.eml'"
erofs "mv inside a POP3 INBOX" mv "$mnt/old/INBOX/$one" "$mnt/old/INBOX/renamed.eml"
erofs "mkdir in a POP3 account" mkdir "$mnt/old/Folder"
erofs "mkdir in a POP3 INBOX" mkdir "$mnt/old/INBOX/sub"
erofs "setfattr user.mail.flags" setfattr -n user.mail.flags -v '\Seen' "$mnt/old/INBOX/$one"
erofs "truncate a POP3 message" truncate -s 0 "$mnt/old/INBOX/$one"
# The daemon answers the WRITE with EROFS (see the -d log); the kernel reports a failed
# WRITE reply to the writer as EIO, so either is accepted here, but the write must fail.
if sh -c "echo x >> '$mnt/old/INBOX/$one'" 2>"$work/erofs.err"; then
	bad "append to a POP3 message succeeded"
elif grep -qE "Read-only file system|I/O error" "$work/erofs.err"; then
	ok "append to a POP3 message refused: $(sed 's/.*: //' "$work/erofs.err")"
else
	bad "append to a POP3 message: $(cat "$work/erofs.err")"
fi
check "nothing changed on the server after the refused writes" test "$(pstate alice count)" = "$n0"

# rm: exactly that message goes (its content no longer among the server's)
victim=$(ls "$mnt/old/INBOX" | sed -n 5p)
vhash=$(sha256sum <"$mnt/old/INBOX/$victim" | cut -d' ' -f1)
if rm "$mnt/old/INBOX/$victim"; then ok "rm of a POP3 message"; else bad "rm of a POP3 message failed"; fi
n1=$(pstate alice count)
check "rm: server count dropped by exactly one ($n0 -> $n1)" test "$n1" = "$((n0 - 1))"
rm -rf "$work/dump1"
pstate alice dump "$work/dump1"
gone=$(for f in "$work/dump1"/*; do sha256sum <"$f" | cut -d' ' -f1; done | grep -c "$vhash" || true)
check "rm: the removed message is the one deleted on the server" test "$gone" = 0
check "rm: the file is gone from the listing" test ! -e "$mnt/old/INBOX/$victim"
sleep 6 # a poll pass
if out=$(compare "$mnt/old/INBOX" "$work/dump1"); then ok "after rm and a poll: $out"; else bad "after rm: $out"; fi
unmount

# --- 3. offline: a warm cache serves every body with the server unreachable -------------------
conf "$work/config.off" stls old=alice "pop3 = pop3s://127.0.0.1:1" "poll = 5s"
if mount_start "$work/config.off"; then
	if out=$(compare "$mnt/old/INBOX" "$work/dump1"); then ok "offline from the cache: $out"
	else bad "offline: $out"; fi
	unmount
else
	bad "warm cache, server unreachable: mount did not start"
fi

# --- 4. pop3s:// (implicit TLS), and --check-config -------------------------------------------
conf "$work/config.tls" tls old=alice "pop3 = pop3s://127.0.0.1:$POP3S"
if "$mailfs" --check-config -o config="$work/config.tls" >"$work/check.out" 2>&1 &&
	grep -q "pop3: logged in" "$work/check.out" && grep -q "INBOX: $n1 messages" "$work/check.out"; then
	ok "--check-config logs in to a POP3 account: $(grep INBOX "$work/check.out")"
else
	bad "--check-config: $(cat "$work/check.out")"
fi
printf 'cache_dir = %s\n[account old]\npop3 = pop3s://127.0.0.1:%s\nuser = alice\npassword_cmd = echo wrong\nca_file = %s\n' \
	"$work/cache-x" "$POP3S" "$CA" >"$work/config.wrong"
if "$mailfs" --check-config -o config="$work/config.wrong" >/dev/null 2>"$work/check.err"; then
	bad "--check-config with a wrong POP3 password succeeded"
else
	ok "--check-config refuses a wrong POP3 password: $(head -1 "$work/check.err")"
fi
if mount_start "$work/config.tls"; then
	wait_synced old 120 || bad "pop3s:// first sync not done"
	if out=$(compare "$mnt/old/INBOX" "$work/dump1"); then ok "pop3s:// $out"; else bad "pop3s:// $out"; fi
	unmount
else
	bad "pop3s:// mount did not start"
fi

# --- 5. TLS refused: self-signed, wrong host, no STLS -----------------------------------------
refused() { # label url [extra line]
	local l=$1
	printf 'cache_dir = %s\n[account t]\npop3 = %s\nuser = alice\npassword_cmd = echo %s\nca_file = %s\n%s\n' \
		"$work/cache-refused" "$2" "$ALICE_PASS" "$CA" "${3:-}" >"$work/config.ref"
	chmod 600 "$work/config.ref"
	if "$mailfs" --check-config -o config="$work/config.ref" >"$work/ref.out" 2>&1; then
		bad "$l: accepted"
	else
		ok "$l: refused: $(grep -m1 FAILED "$work/ref.out" | sed 's/^ *//')"
	fi
}
if [ -n "${POP3S_SELFSIGNED:-}" ]; then
	refused "pop3s self-signed certificate" "pop3s://127.0.0.1:$POP3S_SELFSIGNED"
	refused "pop3s wrong host name" "pop3s://127.0.0.1:$POP3S_WRONGHOST"
else
	bad "no POP3S_SELFSIGNED port: restart scripts/test-servers"
fi
fake_start fake-pop3.py nostls
refused "pop3:// without STLS" "pop3://127.0.0.1:$fport"
if grep -qE '^(USER|PASS|AUTH)' "$flog"; then bad "credentials sent to a server without STLS"
else ok "no USER/PASS/AUTH sent to a server without STLS"; fi

# --- 6. pop3_delete = after_cache, kill -9 between RETR and QUIT ------------------------------
MAILFS_SERVER_DIR=$MAILFS_SERVER_DIR "$top/scripts/seed" bob 200 >/dev/null
rm -rf "$work/bobdump"
pstate bob dump "$work/bobdump"
nb=$(ls "$work/bobdump" | wc -l)
conf "$work/config.ac" ac ac=bob "pop3 = pop3://127.0.0.1:$POP3" "pop3_delete = after_cache" "poll = 5s"
mount_start "$work/config.ac" || bad "after_cache mount did not start"
# bodies phase: RETRs under way, QUIT not sent yet
wait_for 60 sh -c "grep -q 'phase *= bodies' '$mnt/.status' && \
	awk '/synced_bodies/ {exit !(\$3 > 20)}' '$mnt/.status'" || true
daemon_kill9
nk=$(pstate bob count)
check "kill -9 before QUIT: nothing deleted on the server ($nk of $nb)" test "$nk" = "$nb"
mount_start "$work/config.ac" || bad "after_cache remount did not start"
if wait_for 120 sh -c "[ \$(python3 '$here/pop3-state.py' 127.0.0.1 $POP3 bob $BOB_PASS $CA count) = 0 ]"; then
	ok "after_cache: the server's maildrop emptied after the bodies were cached"
else
	bad "after_cache: server still has $(pstate bob count) messages"
fi
sleep 6 # a poll pass after the deletions: the rows must stay
if out=$(compare "$mnt/ac/INBOX" "$work/bobdump"); then ok "after_cache, nothing lost: $out"
else bad "after_cache: $out"; fi
unmount
if mount_start "$work/config.ac"; then
	if out=$(compare "$mnt/ac/INBOX" "$work/bobdump"); then ok "after_cache, remounted: $out"
	else bad "after_cache remounted: $out"; fi
	unmount
fi

# --- 7. a server that drops the connection in the middle of a RETR ----------------------------
fake_start fake-pop3.py droprretr
printf 'cache_dir = %s\n[account f]\npop3 = pop3://127.0.0.1:%s\ntls = off\nuser = x\npassword = y\npoll = 5s\n' \
	"$work/cache-fake" "$fport" >"$work/config.fake"
chmod 600 "$work/config.fake"
if mount_start "$work/config.fake"; then
	wait_for 20 sh -c "[ \$(ls '$mnt/f/INBOX' | wc -l) = 3 ]" || true
	check "dropping server: all three messages listed" test "$(ls "$mnt/f/INBOX" | wc -l)" = 3
	sleep 2
	f1=$(ls "$mnt/f/INBOX" | grep '_1_one') f2=$(ls "$mnt/f/INBOX" | grep '_2_two') f3=$(ls "$mnt/f/INBOX" | grep '_3_three')
	if printf 'From: a@example.test\r\nSubject: one\r\nMessage-ID: <1@x>\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\n\r\n.starts with a dot\r\nnul:\0:\r\nend\r\n' |
		cmp -s - "$mnt/f/INBOX/$f1"; then ok "dropping server: message 1 exact (dot, NUL)"
	else bad "dropping server: message 1 differs"; fi
	check "dropping server: message 3 cached despite message 2" grep -q third "$mnt/f/INBOX/$f3"
	if cat "$mnt/f/INBOX/$f2" >"$work/two.out" 2>/dev/null; then
		bad "dropping server: reading message 2 succeeded ($(wc -c <"$work/two.out") bytes)"
	else
		ok "dropping server: reading message 2 fails (EIO), no truncated body served"
	fi
	cached=$(status_get f bodies_cached)
	check "dropping server: 2 bodies cached, not the cut one (bodies_cached = $cached)" test "$cached" = 2
	check "the daemon survived" kill -0 "$daemon"
	unmount
else
	bad "mount on the dropping server did not start"
fi

# --- 8. PIPELINING: -ERR for one TOP and one RETR inside a window ----------------------------
# fake-pop3.py errpipe: 40 messages; TOP 9 and RETR 17 answer -ERR, every time.
fake_start fake-pop3.py errpipe
printf 'cache_dir = %s\n[account p]\npop3 = pop3://127.0.0.1:%s\ntls = off\nuser = x\npassword = y\npoll = 5s\n' \
	"$work/cache-pipe" "$fport" >"$work/config.pipe"
chmod 600 "$work/config.pipe"
if mount_start "$work/config.pipe"; then
	wait_synced p 30 || bad "pipelining server: first sync not done"
	wait_for 20 status_is p bodies_cached 38 || true
	tops=$(sed -n 's/^# in flight: TOP //p' "$flog" | sed -n 1p)
	retrs=$(sed -n 's/^# in flight: RETR //p' "$flog" | sed -n 1p)
	check "pipelining server: TOPs pipelined (${tops:-none} in flight)" test "${tops:-0}" -gt 1
	check "pipelining server: RETRs pipelined (${retrs:-none} in flight)" test "${retrs:-0}" -gt 1
	np=$(ls "$mnt/p/INBOX" | wc -l)
	check "pipelining server: 39 of 40 listed, not the one whose TOP was refused ($np)" \
		test "$np" = 39
	check "pipelining server: message 9 (TOP -ERR) not listed" \
		test -z "$(ls "$mnt/p/INBOX" | grep '_pipe-9\.eml$' || true)"
	cached=$(status_get p bodies_cached)
	check "pipelining server: 38 bodies cached, not the refused RETR ($cached)" test "$cached" = 38
	nbad=0
	for i in $(seq 1 40); do
		case $i in 9 | 17) continue ;; esac
		f=$(ls "$mnt/p/INBOX" | grep "_pipe-$i\.eml\$" || true)
		if [ -z "$f" ] || ! cmp -s "$flog.$i" "$mnt/p/INBOX/$f"; then
			nbad=$((nbad + 1))
			printf '     pipelining server: message %s differs or is missing (%s)\n' "$i" "$f"
		fi
	done
	check "pipelining server: the other 38 messages byte-exact" test "$nbad" = 0
	err=$(status_get p last_error)
	if printf '%s\n' "$err" | grep -qE 'RETR 17|TOP 9'; then
		ok "pipelining server: the pass's refusal is shown in .status ($err)"
	else
		bad "pipelining server: .status last_error is '$err'"
	fi
	f17=$(ls "$mnt/p/INBOX" | grep '_pipe-17\.eml$' || true)
	check "pipelining server: message 17 (RETR -ERR) listed" test -n "$f17"
	if [ -n "$f17" ] && cat "$mnt/p/INBOX/$f17" >/dev/null 2>&1; then
		bad "pipelining server: reading message 17 succeeded"
	else
		ok "pipelining server: reading message 17 fails, nothing made up"
	fi
	sleep 6 # a poll pass: the refused ones are asked again, nothing else changes
	check "pipelining server: TOP 9 asked again next pass" \
		test "$(grep -c '^TOP 9 0' "$flog")" -ge 2
	check "pipelining server: still 39 listed after a poll" test "$(ls "$mnt/p/INBOX" | wc -l)" = 39
	check "the daemon survived" kill -0 "$daemon"
	unmount
else
	bad "mount on the pipelining server did not start"
fi

# --- 9. PIPELINING: the connection cut in the middle of a window of RETRs ---------------------
# fake-pop3.py droppipe: 40 messages; the first RETR 20 is cut halfway (RST) with the
# rest of the window unanswered. The next pass must resume: what was stored before the
# cut stays (never fetched again) and every message ends up byte-exact.
fake_start fake-pop3.py droppipe
printf 'cache_dir = %s\n[account d]\npop3 = pop3://127.0.0.1:%s\ntls = off\nuser = x\npassword = y\npoll = 5s\n' \
	"$work/cache-droppipe" "$fport" >"$work/config.droppipe"
chmod 600 "$work/config.droppipe"
if mount_start "$work/config.droppipe"; then
	wait_for 30 status_is d bodies_cached 40 || true
	cached=$(status_get d bodies_cached)
	check "cut window: all 40 bodies cached after the next pass ($cached)" test "$cached" = 40
	retrs=$(sed -n 's/^# in flight: RETR //p' "$flog" | sed -n 1p)
	check "cut window: RETRs were pipelined (${retrs:-none} in flight)" test "${retrs:-0}" -gt 1
	check "cut window: RETR 20 sent again after the cut" test "$(grep -c '^RETR 20' "$flog")" = 2
	r1=$(grep -c "^RETR 1$(printf "\r")\$" "$flog" || true) r19=$(grep -c "^RETR 19$(printf "\r")\$" "$flog" || true)
	check "cut window: messages stored before the cut not fetched again (RETR 1 x$r1, RETR 19 x$r19)" \
		test "$r1" = 1 -a "$r19" = 1
	nbad=0
	for i in $(seq 1 40); do
		f=$(ls "$mnt/d/INBOX" | grep "_pipe-$i\.eml\$" || true)
		if [ -z "$f" ] || ! cmp -s "$flog.$i" "$mnt/d/INBOX/$f"; then
			nbad=$((nbad + 1))
			printf '     cut window: message %s differs or is missing (%s)\n' "$i" "$f"
		fi
	done
	check "cut window: all 40 messages byte-exact" test "$nbad" = 0
	check "the daemon survived" kill -0 "$daemon"
	unmount
else
	bad "mount on the cutting server did not start"
fi

finish pop3
