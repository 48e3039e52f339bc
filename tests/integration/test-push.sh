#!/usr/bin/env bash
# End-to-end test of push (IMAP IDLE on INBOX, cache/idle.c) against the real Dovecot,
# on a mount whose poll is 10 minutes, so that only push can bring a change in time:
#
#   1. .status says push = idle once the first sync is done
#   2. a message delivered to INBOX by another client is listed within 10 s, and reads
#      back byte for byte what the server holds
#   3. a flag set by another client shows in user.mail.flags within 10 s
#   4. a message expunged by another client is gone from the listing within 10 s
#   5. a folder other than INBOX keeps `poll`: a message delivered there meanwhile is
#      still not listed (the control: the same delivery, heard only through INBOX's IDLE)
#   6. the watcher survives a cut connection: after the relay comes back, a message
#      delivered while it was down is listed without waiting for the poll
#
#   test-push.sh MAILFS           (MAILFS_SERVER_DIR names the servers' DIR)
set -euo pipefail

mailfs=$1
. "$(dirname "$0")/lib.sh"
lib_init push

tag=$(date +%s)$$
msg() { # subject
	printf 'From: p@example.test\nTo: alice@example.test\nSubject: %s\nMessage-ID: <%s@push.test>\nDate: Mon, 07 Dec 2026 10:00:00 +0000\n\nbody of %s\n' "$1" "$1" "$1"
}
listed() { ls "$mnt/alice/$1" 2>/dev/null | grep -q -- "$2"; }
file_of() { ls "$mnt/alice/$1" 2>/dev/null | grep -- "$2" | head -1; }
uid_of() { # folder subject: the message's UID on the server
	imap_state alice msgs "$1" | awk -F'\t' -v s="$2" '$5 == s {print $1}' | tail -1
}
not() { ! "$@"; }
elapsed() { echo $((($(date +%s%N) - $1) / 1000000)); }

dova mailbox create -u alice "Poll$tag"
{
	echo "cache_dir = $work/cache"
	account_conf alice "imap = imaps://localhost:$relay_port" "poll = 10m" \
		"folders = INBOX Poll$tag"
} >"$work/config"
relay_start || { bad "relay did not start"; exit 1; }
mount_start "$work/config" || { bad "mount did not start"; exit 1; }
wait_synced alice 120 || { bad "first sync not done in 120 s"; exit 1; }

# --- 1. push state ------------------------------------------------------------------------
if wait_for 15 status_is alice push idle; then
	ok "push = idle after the first sync"
else
	bad "push is '$(status_get alice push)', want idle"
fi
passes=$(status_get alice passes)

# --- 2. a new message --------------------------------------------------------------------
t0=$(date +%s%N)
msg "new-$tag" | dova save -u alice -m INBOX
msg "other-$tag" | dova save -u alice -m "Poll$tag"
if wait_for 10 listed INBOX "new-$tag"; then
	ok "a delivered message is listed after $(elapsed "$t0") ms (poll = 10m)"
	f=$(file_of INBOX "new-$tag")
	uid=$(uid_of INBOX "new-$tag")
	if [ -n "$uid" ] && cmp -s "$mnt/alice/INBOX/$f" <(imap_state alice body INBOX "$uid"); then
		ok "it reads back what the server holds ($(stat -c %s "$mnt/alice/INBOX/$f") bytes)"
	else
		bad "$f (UID '$uid') differs from the server's copy"
	fi
else
	bad "a delivered message is not listed after 10 s"
fi

# --- 5. the control: another folder keeps poll ----------------------------------------------
if listed "Poll$tag" "other-$tag"; then
	bad "Poll$tag already lists the message delivered there: the poll ran (passes $passes -> $(status_get alice passes))"
else
	ok "Poll$tag does not list its new message yet: only INBOX is pushed"
fi

# --- 3. a flag set elsewhere --------------------------------------------------------------
flags_of() { getfattr --only-values -n user.mail.flags "$mnt/alice/INBOX/$1" 2>/dev/null; }
flagged() { flags_of "$1" | grep -q Flagged; }
if [ -n "${uid:-}" ]; then
	t0=$(date +%s%N)
	dova flags add -u alice '\Flagged' mailbox INBOX uid "$uid"
	if wait_for 10 flagged "$f"; then
		ok "a flag set by another client shows after $(elapsed "$t0") ms: $(flags_of "$f")"
	else
		bad "user.mail.flags is '$(flags_of "$f")' after 10 s, want \\Flagged"
	fi

	# --- 4. an expunge elsewhere ------------------------------------------------------------
	t0=$(date +%s%N)
	dova expunge -u alice mailbox INBOX uid "$uid"
	if wait_for 10 not listed INBOX "new-$tag"; then
		ok "a message expunged by another client is gone after $(elapsed "$t0") ms"
	else
		bad "the expunged message is still listed after 10 s"
	fi
	if [ -e "$mnt/alice/INBOX/$f" ]; then
		bad "$f can still be opened after its expunge"
	else
		ok "$f is gone for lookups too (the kernel's entry was invalidated)"
	fi
fi

# --- 6. a cut connection ------------------------------------------------------------------
relay_stop
wait_for 15 not status_is alice push idle || true
msg "cut-$tag" | dova save -u alice -m INBOX
relay_start || { bad "relay did not restart"; exit 1; }
t0=$(date +%s%N)
if wait_for 40 listed INBOX "cut-$tag"; then
	ok "after a cut, a message delivered meanwhile is listed $(elapsed "$t0") ms after the relay is back"
else
	bad "after a cut, the message delivered meanwhile is not listed after 40 s (push = $(status_get alice push))"
fi
if wait_for 15 status_is alice push idle; then
	ok "push = idle again after the cut"
else
	bad "push is '$(status_get alice push)' after the cut, want idle"
fi

finish "push e2e"
