#!/usr/bin/env bash
# End-to-end test of resynchronisation against the real Dovecot (CONDSTORE and QRESYNC):
#
#   1. an interrupted first sync resumes where it stopped: cut five times while bodies
#      stream over a slow link (kill -9 of the daemon and a network cut, in turn); no body the cache already held is asked
#      for again (the UID FETCH commands of each run, from the protocol trace, against the
#      UIDs with a body in the cache when the run began), the bytes of bodies the server
#      sent (its log: body_bytes) stay near the folder's size, and the packs stay near the
#      size of what they hold (apparent and allocated)
#   2. a resync after changes by another client (flags set and cleared, an expunge, new
#      messages) runs with SELECT ... (QRESYNC ...), and the mount then lists the same
#      names, sizes, contents and flags as a fresh mount with an empty cache
#   3. a UIDVALIDITY change (the mailbox deleted and created again, its messages saved in
#      another order so that their UIDs differ, one left out, one new; a message written
#      into the folder while offline): the folder is re-read, names of the messages found
#      again (Message-ID + size) stay, no duplicates, the one left out is gone, every file
#      reads what the server holds, and the message written offline is on the server
#
#   test-resync.sh MAILFS           (MAILFS_SERVER_DIR names the servers' DIR)
set -euo pipefail

mailfs=$1
. "$(dirname "$0")/lib.sh"
lib_init resync

tag=$(date +%s)$$
R=Resume$tag
Q=Qr$tag
U=Uv$tag
dlog=$MAILFS_SERVER_DIR/dovecot.log

msg() { # n subject [kbytes]: a message with a body of about kbytes KiB
	printf 'From: r@example.test\r\nTo: alice@example.test\r\nSubject: %s\r\nMessage-ID: <%s-%s@resync.test>\r\nDate: Mon, 07 Dec 2026 10:%02d:00 +0000\r\n\r\n' \
		"$2" "$2" "$tag" $(($1 % 60))
	local k=${3:-1}
	for _ in $(seq $((k * 16))); do
		printf '%s line of %-40s %06d\r\n' "$2" "message $1" "$RANDOM"
	done
}
conf() { # file folders [lines...]
	local f=$1 folders=$2
	shift 2
	{
		echo "cache_dir = $work/cache"
		echo "debug = yes"
		account_conf alice "imap = imaps://localhost:$relay_port" "poll = 10m" \
			"folders = $folders" "$@"
	} >"$f"
}
# "name size flags" of every message of a folder of the mount, and a digest of its bytes.
dump() { # dir
	local f
	(cd "$1" && for f in *.eml; do
		[ -e "$f" ] || continue
		printf '%s %s %s %s\n' "$f" "$(stat -c %s "$f")" \
			"$(getfattr --only-values -n user.mail.flags "$f" 2>/dev/null | tr ' ' '\n' | sort | tr '\n' ' ')" \
			"$(sha256sum <"$f" | cut -c1-16)"
	done) | sort
}
# Sum of body_bytes= of alice's IMAP sessions logged after line $1 of Dovecot's log.
served_bytes() {
	tail -n +"$(($1 + 1))" "$dlog" | grep 'imap(alice)' | grep -o 'body_bytes=[0-9]*' |
		awk -F= '{s += $2} END {print s + 0}'
}
log_mark() { wc -l <"$dlog"; }
no_sessions() { ! dova who 2>/dev/null | grep -q '^alice'; }
cached_uids() { # folder: UIDs with a body in the cache
	sqlite3 "$work/cache/mailfs.db" "SELECT m.uid FROM messages m JOIN folders f ON f.id = m.folder_id WHERE f.server_name = '$1' AND m.has_body = 1 AND m.uid > 0 ORDER BY m.uid" 2>/dev/null || true
}
# UIDs whose body (BODY.PEEK[]) the daemon's log, from line $2 on, asked for.
fetched_uids() { # log from-line
	tail -n +"$2" "$1" | python3 -c '
import re, sys
out = set()
for line in sys.stdin:
    m = re.search(r"> \S+ UID FETCH (\S+) \(.*BODY\.PEEK\[\]", line)
    if not m:
        continue
    for part in m.group(1).split(","):
        a, _, b = part.partition(":")
        a = int(a); b = int(b) if b else a
        out.update(range(min(a, b), max(a, b) + 1))
print("\n".join(str(u) for u in sorted(out)))'
}
not() { ! "$@"; }
bodies() { status_get alice bodies_cached; }
# The relay of lib.sh, counting what it passes to the daemon in $work/relay.count.
relay_counted() { # delay_ms
	rm -f "$work/relay.pid"
	python3 "$top/scripts/servers/relay.py" --delay-ms "$1" --count "$work/relay.count" \
		"$work/relay.pid" "$relay_port:$IMAPS" >>"$work/relay.log" 2>&1 &
	relay_pid=$!
	wait_for 5 test -s "$work/relay.pid"
}
received() { cat "$work/relay.count" 2>/dev/null || echo 0; }
uid_subjects() { imap_state alice msgs "$1" | awk -F'\t' '{print $1, $5}'; }
uidvalidity() { dova mailbox status -u alice uidvalidity "$1" | grep -o 'uidvalidity=[0-9]*'; }
passes_ge1() { local v; v=$(status_get alice passes); [ -n "$v" ] && [ "$v" -ge 1 ]; }
at_least() { local v; v=$(bodies); [ -n "$v" ] && [ "$v" -ge "$1" ]; }

# --- 1. an interrupted first sync ------------------------------------------------------------
N=60
dova mailbox create -u alice "$R"
on_cleanup "dova mailbox delete -u alice -s \"$R\" \"$Q\" \"$U\" 2>/dev/null"
for i in $(seq 1 $N); do msg "$i" "r$i" 48 | dova save -u alice -m "$R"; done
folder_bytes=$(imap_state alice msgs "$R" | awk -F'\t' '{s += $2} END {print s}')
conf "$work/config" "$R"
mark=$(log_mark)
# Each chunk held 1 s (chunks are at most 256 KiB): the folder takes about 10 s to come.
relay_counted 1000 || { bad "relay did not start"; exit 1; }
counts=""
cuts=0
refetched=0
got_cut=0 # bytes of the relays stopped so far (a new relay counts from 0)
running=false
log_lines() { { cat "$work/daemon.log" 2>/dev/null || true; } | wc -l; }
before=
from=1
# Asked for again, in the daemon's log since line $from: a body cached at that point.
count_refetched() {
	local again
	again=$(comm -12 <(echo "$before" | tr ' ' '\n' | grep . | sort) \
		<(fetched_uids "$work/daemon.log" "$from" | sort))
	refetched=$((refetched + $(echo "$again" | grep -c . || true)))
}
# Five cuts: kill -9 of the daemon, then the network (the relay stopped under a running
# daemon, which rolls back and reconnects), in turn.
for want in 10 20 30 40 50; do
	if ! $running; then
		mount_start "$work/config" || { bad "mount did not start"; exit 1; }
		running=true
	fi
	wait_for 120 at_least "$want" || bad "bodies_cached did not reach $want (is '$(bodies)')"
	if [ $((cuts % 2)) -eq 0 ]; then
		daemon_kill9
		running=false
	else
		got_cut=$((got_cut + $(received)))
		relay_stop
		wait_for 30 status_is alice state offline || bad "the daemon did not see the cut"
		relay_counted 1000 || { bad "relay did not start"; exit 1; }
	fi
	cuts=$((cuts + 1))
	count_refetched
	before=$(cached_uids "$R" | tr '\n' ' ')
	from=$(($(log_lines) + 1))
	counts="$counts $(cached_uids "$R" | grep -c . || true)"
done
got_cut=$((got_cut + $(received)))
relay_stop
# Else the test proves nothing: each cut must have come before the folder was complete.
c=$(cached_uids "$R" | grep -c . || true)
echo "     bodies in the cache after each cut:$counts"
check "the cuts came before the end of the first sync ($c of $N bodies cached)" [ "$c" -lt $N ]
relay_counted 0 || { bad "relay did not start"; exit 1; }
before=$(cached_uids "$R" | tr '\n' ' ')
from=$(($(log_lines) + 1))
mount_start "$work/config" || { bad "mount did not start"; exit 1; }
wait_synced alice 120 || bad "the resumed first sync did not finish in 120 s"
wait_for 60 status_is alice bodies_cached $N || bad "bodies_cached is '$(bodies)', want $N"
count_refetched
if [ "$cuts" -eq 5 ] && [ "$refetched" -eq 0 ]; then
	ok "after $cuts cuts, no body already cached was asked for again"
else
	bad "$refetched bodies already cached were asked for again ($cuts cuts)"
fi
listed=$(find "$mnt/alice/$R" -name '*.eml' | wc -l)
check "all $N messages listed after the resume (got $listed)" [ "$listed" -eq $N ]
unmount
wait_for 20 no_sessions || true
sent=$(served_bytes "$mark")
# The pack files alone (du of the directory would count the directory too).
apparent=$(stat -c %s "$work/cache/bodies/"*.pack | awk '{s += $1} END {print s + 0}')
real=$(stat -c '%b %B' "$work/cache/bodies/"*.pack | awk '{s += $1 * $2} END {print s + 0}')
got=$((got_cut + $(received)))
echo "     folder $folder_bytes B; over the runs the server counted $sent B of bodies sent" \
	"(socket buffers included), the daemon received $got B (all bytes, TLS included);" \
	"packs: $apparent B apparent, $real B allocated"
# Bodies of a transaction not committed at a cut come again: about what a second of the
# slow link carries, per cut; starting over would repeat what each cut had cached
# (10 + 20 + 30 + 40 + 50 of 60 bodies, more than 2 folders more).
check "bytes received ($got) < 2 x the folder ($folder_bytes)" \
	[ "$got" -lt $((folder_bytes * 2)) ]
# Each body starts on a 4 KiB boundary: nothing else may be in the packs.
aligned=$(sqlite3 "$work/cache/mailfs.db" "SELECT sum((size + 4095) / 4096 * 4096) FROM messages WHERE has_body = 1")
check "packs' apparent size ($apparent) <= the bodies they hold, aligned ($aligned)" \
	[ "$apparent" -le "$aligned" ]
check "packs' allocated size ($real) <= the bodies they hold, aligned + 4 KiB a pack ($aligned)" \
	[ "$real" -le $((aligned + 4096 * $(ls "$work/cache/bodies" | grep -c pack))) ]
fetched=$(fetched_uids "$work/daemon.log" 1 | grep -c . || true)
check "the trace shows the bodies asked for ($fetched UIDs over all runs, want >= $N)" [ "$fetched" -ge $N ]
# The contents, read over IMAP only now: those reads count in the server's log too.
mount_start "$work/config" || { bad "mount did not start"; exit 1; }
wait_synced alice 60 || bad "the remount did not sync"
same=0
while read -r uid subj; do
	f=$(ls "$mnt/alice/$R" | grep -- "_${subj}.eml\$" | head -1 || true)
	if [ -n "$f" ] && cmp -s "$mnt/alice/$R/$f" <(imap_state alice body "$R" "$uid"); then
		same=$((same + 1))
	fi
done < <(uid_subjects "$R")
check "every message reads back what the server holds ($same of $N)" [ "$same" -eq $N ]
unmount

# --- 2. QRESYNC resync after changes by another client ------------------------------------------
dova mailbox create -u alice "$Q"
for i in $(seq 1 20); do msg "$i" "q$i" | dova save -u alice -m "$Q"; done
dova flags add -u alice '\Seen' mailbox "$Q" uid 1:10
conf "$work/config" "$Q"
rm -rf "$work/cache"
mount_start "$work/config" || { bad "mount did not start"; exit 1; }
wait_synced alice 60 || bad "first sync of $Q not done"
unmount
dova flags add -u alice '\Flagged $Label1' mailbox "$Q" uid 3,15
dova flags remove -u alice '\Seen' mailbox "$Q" uid 4
dova expunge -u alice mailbox "$Q" uid 7
for i in 21 22; do msg "$i" "q$i" | dova save -u alice -m "$Q"; done
from=$(($(wc -l <"$work/daemon.log") + 1))
mount_start "$work/config" || { bad "mount did not start"; exit 1; }
wait_for 60 passes_ge1 || bad "no pass after the remount"
if tail -n +"$from" "$work/daemon.log" | grep -Eq "(SELECT|EXAMINE) \"$Q\" \(QRESYNC \([0-9]+ [0-9]+ "; then
	ok "the resync selected $Q with QRESYNC"
else
	bad "no SELECT ... (QRESYNC ...) of $Q in the trace"
fi
if tail -n +"$from" "$work/daemon.log" | grep -Eq 'UID SEARCH (RETURN \(ALL\) )?ALL *$'; then
	bad "the QRESYNC resync still listed every UID (UID SEARCH ALL)"
else
	ok "the QRESYNC resync did not list every UID"
fi
dump "$mnt/alice/$Q" >"$work/warm.txt"
unmount
mv "$work/cache" "$work/cache.warm"
mount_start "$work/config" || { bad "mount did not start"; exit 1; }
wait_synced alice 60 || bad "fresh sync of $Q not done"
dump "$mnt/alice/$Q" >"$work/fresh.txt"
unmount
rm -rf "$work/cache"
mv "$work/cache.warm" "$work/cache"
if [ "$(wc -l <"$work/fresh.txt")" -eq 21 ] && cmp -s "$work/warm.txt" "$work/fresh.txt"; then
	ok "after flags, an expunge and new messages elsewhere, the resync equals a fresh sync (21 messages)"
else
	bad "the resync differs from a fresh sync:"
	diff "$work/warm.txt" "$work/fresh.txt" | head -20 || true
fi
check "the message expunged elsewhere is gone" not grep -q '_q7\.eml ' "$work/warm.txt"
check "the new messages are listed" grep -q '_q22\.eml ' "$work/warm.txt"
check "flags set elsewhere are in the resync" grep -q '_q3\.eml [0-9]* $Label1 \\Flagged \\Seen ' "$work/warm.txt"
check "a flag cleared elsewhere is gone in the resync" grep -q '_q4\.eml [0-9]*  ' "$work/warm.txt"

# --- 3. UIDVALIDITY change ------------------------------------------------------------------------
dova mailbox create -u alice "$U"
for i in 1 2 3 4 5 6; do msg "$i" "u$i" 2 >"$work/u$i.eml"; done
for i in 1 2 3 4 5; do dova save -u alice -m "$U" <"$work/u$i.eml"; done
conf "$work/config" "$U"
rm -rf "$work/cache"
relay_stop
relay_start || { bad "relay did not start"; exit 1; }
mount_start "$work/config" || { bad "mount did not start"; exit 1; }
wait_synced alice 60 || bad "first sync of $U not done"
uv_before=$(uidvalidity "$U")
ls "$mnt/alice/$U" | sort >"$work/names-before.txt"
# Offline, a message written into the folder waits for its APPEND.
relay_stop
msg 9 "u-offline" >"$mnt/alice/$U/written-offline.eml"
# The mailbox is made again: 5 first, then 1..3 (new UIDs), 4 left out, 6 new.
dova mailbox delete -u alice "$U"
sleep 1 # UIDVALIDITY is a time stamp: a mailbox made in the same second could share it
dova mailbox create -u alice "$U"
for i in 5 1 2 3 6; do dova save -u alice -m "$U" <"$work/u$i.eml"; done
uv_after=$(uidvalidity "$U")
echo "     $U: UIDVALIDITY $uv_before -> $uv_after"
check "the server's UIDVALIDITY changed" [ "$uv_before" != "$uv_after" ]
relay_start || { bad "relay did not start"; exit 1; }
# The poll is 10 minutes: a remount makes the pass that sees the change.
unmount
from=$(($(wc -l <"$work/daemon.log") + 1))
mount_start "$work/config" || { bad "mount did not start"; exit 1; }
synced_u() {
	ls "$mnt/alice/$U" 2>/dev/null | grep -q _u6.eml && ! ls "$mnt/alice/$U" | grep -q _u4.eml
}
wait_for 60 synced_u || bad "the re-read of $U did not show u6 / drop u4"
wait_drained alice 30 || bad "the journal did not drain"
wait_for 30 passes_ge1 || bad "no pass after the remount"
ls "$mnt/alice/$U" | sort >"$work/names-after.txt"
kept=0
for n in 1 2 3 5; do
	old=$(grep -- "_u$n.eml\$" "$work/names-before.txt")
	grep -qxF -- "$old" "$work/names-after.txt" && kept=$((kept + 1))
done
check "the 4 messages found again keep their names ($kept of 4)" [ "$kept" -eq 4 ]
count=$(grep -c '\.eml$' "$work/names-after.txt" || true)
check "no duplicates: 6 files (u1 u2 u3 u5 u6 written-offline; got $count)" [ "$count" -eq 6 ]
check "u4, left out of the new mailbox, is gone" not grep -q _u4.eml "$work/names-after.txt"
refetched=$(tail -n +"$from" "$work/daemon.log" | grep -c '> .* UID FETCH .*BODY\.PEEK\[\]' || true)
echo "     body FETCH commands after the change: $refetched (u6 and the appended one at most)"
same=0
total=0
while read -r uid subj; do
	total=$((total + 1))
	f=$(grep -- "_${subj}.eml\$" "$work/names-after.txt" | head -1 || true)
	if [ -z "$f" ] && [ "$subj" = u-offline ]; then f=written-offline.eml; fi
	if [ -n "$f" ] && cmp -s "$mnt/alice/$U/$f" <(imap_state alice body "$U" "$uid"); then
		same=$((same + 1))
	fi
done < <(uid_subjects "$U")
check "the server holds 6 messages, written-offline among them ($total)" [ "$total" -eq 6 ]
check "every file reads what the server holds ($same of $total)" [ "$same" -eq "$total" ]
check "written-offline.eml is on the server" grep -q u-offline <(uid_subjects "$U")
unmount
finish "resync e2e"
