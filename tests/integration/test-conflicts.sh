#!/usr/bin/env bash
# End-to-end tests of changes that meet a server changed by someone else while the mount
# was offline (DESIGN.md §1 "Changing (IMAP)", conflicts): a real mount against the real
# Dovecot, reached through a TCP relay this test stops and starts (the mount goes offline,
# doveadm still changes the server), driven with cp and sed only, checked over IMAP.
#
#   test-conflicts.sh MAILFS              (MAILFS_SERVER_DIR names the servers' DIR)
#
#   1. a message copied into a folder that another client renamed: it follows the folder;
#   2. a message copied into a folder that another client deleted: it goes to INBOX and
#      .status says so;
#   3. a message edited offline whose original another client expunged: still appended,
#      once, with the new content;
#   4. a message moved offline whose source another client expunged: the cached copy is
#      appended in the target.
set -euo pipefail

mailfs=$1
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
lib_init conflicts
on_cleanup 'for b in "${boxes[@]}"; do dova mailbox delete -u alice -s "$b" >/dev/null 2>&1; done'

# Subjects of the messages of a server folder, one per line.
subjects() { dova fetch -u alice 'hdr.subject' mailbox "$1" 2>/dev/null | sed -n 's/^hdr.subject: //p'; }

tag=c$$
boxes=("Proj$tag" "Project$tag" "Doomed$tag" "Edit$tag" "Src$tag" "Dst$tag")
for b in "Proj$tag" "Doomed$tag" "Edit$tag" "Src$tag" "Dst$tag"; do dova mailbox create -u alice "$b"; done
msg() { # subject
	printf 'From: c@example.test\nTo: alice@example.test\nSubject: %s\nMessage-ID: <%s@conflicts.test>\nDate: Tue, 03 Nov 2026 10:00:00 +0000\n\nbody of %s\n' "$1" "$1" "$1"
}
msg "orig-$tag" | dova save -u alice -m "Edit$tag"
msg "moving-$tag" | dova save -u alice -m "Src$tag"

{
	echo "cache_dir = $work/cache"
	account_conf alice "imap = imaps://localhost:$relay_port" "poll = 5s"
} >"$work/config"
relay_start || { bad "relay did not start"; exit 1; }
if mount_start "$work/config" && wait_for 60 sh -c "ls '$mnt/alice/Edit$tag' 2>/dev/null | grep -q orig" &&
	wait_for 30 sh -c "ls '$mnt/alice/Src$tag' 2>/dev/null | grep -q moving"; then
	ok "mounted, first sync done"
else
	bad "mount or first sync failed: $(tail -5 "$work/daemon.log")"
	exit 1
fi

# --- offline: the changes wait in the journal ----------------------------------------------
relay_stop
wait_for 30 status_is alice state offline || bad "the account did not go offline"
msg "follows-$tag" >"$work/f.eml"
msg "orphan-$tag" >"$work/o.eml"
cp "$work/f.eml" "$mnt/alice/Proj$tag/" && cp "$work/o.eml" "$mnt/alice/Doomed$tag/" ||
	bad "cp while offline failed"
edit=$(ls "$mnt/alice/Edit$tag/"*.eml)
sed -i "s/body of orig-$tag/edited offline $tag/" "$edit" || bad "sed -i while offline failed"
moving=$(ls "$mnt/alice/Src$tag/"*.eml)
mv "$moving" "$mnt/alice/Dst$tag/" || bad "mv while offline failed"
# .status may be a few ms old: give it a moment to show the queue.
queued() { [ -n "$(status_get alice journal)" ] && ! status_is alice journal 0; }
if wait_for 5 queued; then
	ok "offline: changes queued"
else
	bad "nothing queued while offline: state $(status_get alice state), journal $(status_get alice journal)"
fi

# --- meanwhile another client changes the server --------------------------------------------
dova mailbox rename -u alice "Proj$tag" "Project$tag"
dova mailbox delete -u alice -s "Doomed$tag"
dova expunge -u alice mailbox "Edit$tag" all
dova expunge -u alice mailbox "Src$tag" all

# --- back online: replayed -------------------------------------------------------------------
relay_start || bad "relay did not start again"
if wait_drained alice 60; then ok "back online: the journal drained"; else
	bad "journal not drained: $(status_get alice journal) $(status_get alice journal_error)"
fi
if [ "$(subjects "Project$tag")" = "follows-$tag" ]; then
	ok "a change to a folder renamed on the server followed it"
else
	bad "Project$tag holds: $(subjects "Project$tag" | tr '\n' ' '); Proj$tag: $(subjects "Proj$tag" | tr '\n' ' '); log: $(grep -i "proj" "$work/daemon.log" | tail -5)"
fi
if [ "$(dova search -u alice mailbox INBOX header message-id "orphan-$tag@conflicts.test" | wc -l)" = 1 ]; then
	ok "a message for a folder deleted on the server went to INBOX"
else
	bad "orphan not in INBOX exactly once"
fi
if status_get alice journal_note | grep -q INBOX; then
	ok ".status says where it went"
else
	bad ".status note: $(grep journal_note "$mnt/.status")"
fi
body=$(dova fetch -u alice text mailbox "Edit$tag" | tr -d '\r')
if [ "$(subjects "Edit$tag" | wc -l)" = 1 ] && printf '%s' "$body" | grep -q "edited offline $tag"; then
	ok "edited offline, original expunged meanwhile: appended once with the new text"
else
	bad "Edit$tag: $(subjects "Edit$tag" | wc -l) messages: $body"
fi
if [ "$(subjects "Dst$tag")" = "moving-$tag" ] && [ -z "$(subjects "Src$tag")" ]; then
	ok "moved offline, source expunged meanwhile: the cached copy is in the target"
else
	bad "Dst$tag: $(subjects "Dst$tag" | tr '\n' ' ') Src$tag: $(subjects "Src$tag" | tr '\n' ' ')"
fi
# The mount shows the server's view after the next listing: the renamed folder, no Doomed.
if wait_for 30 sh -c "[ -d '$mnt/alice/Project$tag' ] && [ ! -e '$mnt/alice/Proj$tag' ] && [ ! -e '$mnt/alice/Doomed$tag' ]"; then
	ok "the mount shows the renamed folder and not the deleted one"
else
	bad "mount folders: $(ls "$mnt/alice" | tr '\n' ' ')"
fi

finish "conflicts e2e"
