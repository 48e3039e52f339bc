# shellcheck shell=bash
# `scripts/bench send`, sourced by scripts/bench (which documents it): 200 messages copied
# into a mailfs outbox until all are delivered, against msmtp run once per message.
# Relies on scripts/bench's build() and median(), and on bench.d/mount.bash's helpers (say,
# die, secs, ratio, verdict, stop_mailfs, status_vals, mount_cleanup) and the globals they
# use (mb_work, mb_mnt, mb_mfs_pid); runs from the top of the repository.

bs_n=200        # messages per run
bs_runs=3
bs_copy_wait=5 # s to wait for the Sent copies once the outbox is empty
bs_stamp=""     # unique per bench run: part of every Message-ID and Subject
declare -a bs_notes=()
declare -A BS=() # "CONTENDER.WHAT" -> the runs' figures, blank-separated

# bs_med KEY: the median of BS[KEY].
# shellcheck disable=SC2086  # the runs' figures are blank-separated words
bs_med() { printf '%s\n' ${BS[$1]} | median; }

# bs_messages DIR TAG: write bs_n distinct messages DIR/msg-NNN.eml from alice to bob, each
# with Message-ID <TAG.NNN@example.test> and TAG in its Subject, 2 to 6 KB; every fourth
# has an 8-bit (UTF-8) body. TAG appears nowhere else, so grep -l TAG counts deliveries.
bs_messages() {
	local dir=$1 tag=$2
	rm -rf "$dir"
	mkdir -p "$dir"
	awk -v dir="$dir" -v tag="$tag" -v n="$bs_n" -v date="$(date -R)" 'BEGIN {
		for (i = 1; i <= n; i++) {
			f = sprintf("%s/msg-%03d.eml", dir, i)
			eight = (i % 4 == 0)
			printf "From: Alice <alice@example.test>\n" >f
			printf "To: Bob <bob@example.test>\n" >f
			printf "Subject: bench send %s no. %d\n", tag, i >f
			printf "Date: %s\n", date >f
			printf "Message-ID: <%s.%03d@example.test>\n", tag, i >f
			printf "MIME-Version: 1.0\n" >f
			printf "Content-Type: text/plain; charset=utf-8\n" >f
			printf "Content-Transfer-Encoding: %s\n\n", eight ? "8bit" : "7bit" >f
			lines = 30 + (i * 37) % 60 # 30..89 lines of about 70 bytes: 2 to 6 KB
			for (l = 1; l <= lines; l++) {
				if (eight)
					printf "Zeile %02d: Grüße aus Köln, naïve café, 10 € pro Stück, Ærøskøbing.\n", l >f
				else
					printf "Line %02d of message %d: the quick brown fox jumps over the dog.\n", l, i >f
			}
			close(f)
		}
	}'
}

# bs_delivered TAG: how many files in bob's Maildir (new/ and cur/) hold TAG.
bs_delivered() {
	{ grep -rlF -- "$1" "$MAILDIR_BOB/new" "$MAILDIR_BOB/cur" 2>/dev/null || true; } | wc -l
}

# bs_empty_bob: expunge bob's INBOX (untimed, between runs), so polling greps one run's mail.
bs_empty_bob() {
	$DOVEADM expunge -u bob mailbox INBOX all || die "doveadm expunge failed for bob"
}

# bs_connects: the number of SMTP connections Postfix's submission service logged so far.
bs_connects() {
	{ grep -c 'postfix/submission/smtpd\[[0-9]*\]: connect from' "$MAILFS_SERVER_DIR/postfix.log" ||
		true; }
}

# bs_wait_fail WHAT: print what helps to see why WHAT did not finish, then die.
bs_wait_fail() {
	[ -z "$mb_mfs_pid" ] || cat "$mb_mnt/.status" >&2 2>/dev/null || true
	[ ! -f "$mb_work/mailfs.log" ] || tail -n 20 "$mb_work/mailfs.log" >&2
	tail -n 20 "$MAILFS_SERVER_DIR/postfix.log" >&2
	die "$1"
}

# bs_mailfs RUN SAVE_SENT: one mailfs run on a fresh cache and mount. Sets T_CP (the one
# `cp` of all bs_n files into the outbox returned), T_DELIV (all in bob's Maildir), T_EMPTY
# (.status: outbox_queued = 0 and outbox_sending = no), T_DONE (both), T_COPIES (save_sent =
# yes: sent_copies_due = 0 as well, within bs_copy_wait s of T_DONE; else ""), SENT (.status sent), SESSIONS (submission
# connections Postfix logged meanwhile).
bs_mailfs() {
	local run=$1 save=$2 tag cfg log=$mb_work/mailfs.log t0 now c0 n fs q sending sent copies
	local deadline left
	tag=bs$bs_stamp${save}r$run
	bs_messages "$mb_work/msgs" "$tag"
	bs_empty_bob
	rm -rf "${mb_work:?}/cache"
	mkdir "$mb_work/cache"
	cfg=$mb_work/mailfs.conf
	cat >"$cfg" <<-EOF
		cache_dir = $mb_work/cache

		[account alice]
		imap = imaps://localhost:$IMAPS
		smtp = smtp://localhost:$SUBMISSION
		user = alice
		password_cmd = echo $ALICE_PASS
		ca_file = $CA
		prefetch = none
		poll = 60s
		save_sent = $save
	EOF
	build-bench/mailfs -f -o config="$cfg" "$mb_mnt" >"$log" 2>&1 &
	mb_mfs_pid=$!
	deadline=$((SECONDS + 60))
	while :; do
		IFS="|" read -r fs < <(status_vals first_sync) || true
		[ "${fs:-}" != "done" ] || break
		kill -0 "$mb_mfs_pid" 2>/dev/null || { mb_mfs_pid=""; bs_wait_fail "mailfs exited before its first sync was done"; }
		[ "$SECONDS" -lt "$deadline" ] || bs_wait_fail "mailfs: first sync not done after 60 s"
		sleep 0.05
	done

	c0=$(bs_connects)
	T_DELIV="" T_EMPTY="" T_DONE="" T_COPIES=""
	t0=$EPOCHREALTIME
	cp -- "$mb_work/msgs"/*.eml "$mb_mnt/alice/outbox/" || bs_wait_fail "cp into the outbox failed"
	T_CP=$(secs "$t0" "$EPOCHREALTIME")
	deadline=$((SECONDS + 120))
	while :; do
		n=$(bs_delivered "$tag")
		IFS="|" read -r q sending sent copies < <(status_vals outbox_queued outbox_sending sent sent_copies_due) || true
		now=$EPOCHREALTIME
		if [ -z "$T_DELIV" ] && [ "$n" -ge "$bs_n" ]; then T_DELIV=$(secs "$t0" "$now"); fi
		if [ -z "$T_EMPTY" ] && [ "${q:-x}" = 0 ] && [ "${sending:-}" = no ] && [ "${sent:-0}" -ge "$bs_n" ]; then
			T_EMPTY=$(secs "$t0" "$now")
		fi
		if [ -z "$T_DONE" ] && [ -n "$T_DELIV" ] && [ -n "$T_EMPTY" ]; then
			T_DONE=$(secs "$t0" "$now")
			[ "$save" = yes ] || break
			deadline=$((SECONDS + bs_copy_wait))
		fi
		if [ -n "$T_DONE" ] && [ "${copies:-x}" = 0 ]; then
			T_COPIES=$(secs "$t0" "$now")
			break
		fi
		if [ -n "$T_DONE" ] && [ "$SECONDS" -ge "$deadline" ]; then
			bs_notes+=("**mailfs run $run (save_sent = $save): \`sent_copies_due = $copies\` (of $bs_n) still $bs_copy_wait s after the outbox was empty; not waited for further.**")
			break
		fi
		kill -0 "$mb_mfs_pid" 2>/dev/null || { mb_mfs_pid=""; bs_wait_fail "mailfs exited while sending"; }
		if [ "$SECONDS" -ge "$deadline" ]; then
			bs_wait_fail "mailfs ($tag): after 120 s, $n of $bs_n delivered, outbox_queued = ${q:-?}, sent = ${sent:-?}, sent_copies_due = ${copies:-?}"
		fi
		sleep 0.05
	done
	SENT=$sent
	# Postfix's log is written by postlogd: give its last lines a moment.
	sleep 0.3
	SESSIONS=$(($(bs_connects) - c0))
	left=$(find "$mb_mnt/alice/outbox" -maxdepth 1 -type f | wc -l)
	[ "$left" -eq 0 ] || bs_notes+=("**mailfs run $run (save_sent = $save): $left files still listed in outbox/ after .status said outbox_queued = 0.**")
	IFS="|" read -r n < <(status_vals outbox_failed) || true
	[ "${n:-0}" = 0 ] || bs_notes+=("**mailfs run $run (save_sent = $save): outbox_failed = $n.**")
	[ "$SENT" = "$bs_n" ] || bs_notes+=("**mailfs run $run (save_sent = $save): .status says sent = $SENT, expected $bs_n.**")
	n=$(grep -ciE 'error|warn' "$log" || true)
	[ "$n" = 0 ] || bs_notes+=("mailfs run $run (save_sent = $save): the daemon logged $n warning or error lines, e.g. \`$(grep -iE -m1 'error|warn' "$log")\`.")
	stop_mailfs
	n=$(bs_delivered "$tag")
	[ "$n" -eq "$bs_n" ] || bs_notes+=("**mailfs run $run (save_sent = $save): bob's Maildir holds $n messages of the run, expected $bs_n (duplicates?).**")
}

# bs_msmtp RUN: msmtp once per message, one after the other. Sets T_LOOP (the last msmtp
# exited), T_DELIV (all in bob's Maildir), SESSIONS (as for bs_mailfs).
bs_msmtp() {
	local run=$1 tag rc=$mb_work/msmtprc t0 c0 f n deadline
	tag=bs${bs_stamp}msmtpr$run
	bs_messages "$mb_work/msgs" "$tag"
	bs_empty_bob
	cat >"$rc" <<-EOF
		defaults
		logfile $mb_work/msmtp.log

		account bench
		host localhost
		port $SUBMISSION
		tls on
		tls_starttls on
		tls_trust_file $CA
		auth on
		user alice
		password $ALICE_PASS
		from alice@example.test
	EOF
	chmod 600 "$rc"
	c0=$(bs_connects)
	T_DELIV=""
	t0=$EPOCHREALTIME
	for f in "$mb_work/msgs"/*.eml; do
		msmtp -C "$rc" -a bench bob@example.test <"$f" ||
			{ tail -n 5 "$mb_work/msmtp.log" >&2; die "msmtp failed on $f"; }
	done
	T_LOOP=$(secs "$t0" "$EPOCHREALTIME")
	deadline=$((SECONDS + 120))
	while :; do
		n=$(bs_delivered "$tag")
		if [ "$n" -ge "$bs_n" ]; then T_DELIV=$(secs "$t0" "$EPOCHREALTIME"); break; fi
		[ "$SECONDS" -lt "$deadline" ] || bs_wait_fail "msmtp ($tag): after 120 s, $n of $bs_n delivered"
		sleep 0.05
	done
	sleep 0.3
	SESSIONS=$(($(bs_connects) - c0))
}

bench_send() {
	local r save load t0_all
	bs_runs=${MAILFS_BENCH_RUNS:-3}
	[[ "$bs_runs" =~ ^[1-9][0-9]*$ ]] || die "MAILFS_BENCH_RUNS must be a positive number"
	[ $# -eq 0 ] || die "scripts/bench send takes no argument (it always sends $bs_n messages)"
	export LC_ALL=C # "." in $EPOCHREALTIME
	[ "$(id -u)" -eq 0 ] || die "must run as root (test servers)"

	build
	command -v msmtp >/dev/null || die "msmtp not found (package msmtp; scripts/deps)"
	load=$(cut -d' ' -f1-3 /proc/loadavg)
	t0_all=$SECONDS
	mb_start send
	bs_stamp=$(date +%s)$$

	# Interleaved, so that a slow moment of the machine hits every contender alike.
	for ((r = 1; r <= bs_runs; r++)); do
		for save in yes no; do
			say "run $r/$bs_runs: mailfs, save_sent = $save: cp $bs_n messages into the outbox"
			bs_mailfs "$r" "$save"
			BS[$save.CP]+="$T_CP "
			BS[$save.DELIV]+="$T_DELIV "
			BS[$save.EMPTY]+="$T_EMPTY "
			BS[$save.DONE]+="$T_DONE "
			BS[$save.COPIES]+="${T_COPIES:-n/a} "
			BS[$save.sent]+="$SENT "
			BS[$save.sessions]+="$SESSIONS "
		done
		say "run $r/$bs_runs: msmtp, one process per message"
		bs_msmtp "$r"
		BS[msmtp.LOOP]+="$T_LOOP "
		BS[msmtp.DELIV]+="$T_DELIV "
		BS[msmtp.sessions]+="$SESSIONS "
	done

	local m_ms m_yes m_no r_yes r_no
	m_ms=$(bs_med msmtp.DELIV)
	m_yes=$(bs_med yes.DONE)
	m_no=$(bs_med no.DONE)
	r_yes=$(ratio "$m_yes" "$m_ms")
	r_no=$(ratio "$m_no" "$m_ms")

	# shellcheck disable=SC2016  # backticks are Markdown here
	{
		printf '\n### scripts/bench send: %d messages from alice to bob\n\n' "$bs_n"
		printf '%s (load average before: %s); mailfs %s; Postfix %s (submission: STARTTLS, then AUTH) on localhost:%s delivering over LMTP to Dovecot %s; msmtp %s. Runs of each contender: %d, interleaved; the whole bench took %d s.\n' \
			"$(nproc) CPUs, Linux $(uname -r)" "$load" \
			"$(git describe --always --dirty 2>/dev/null || echo '?')" \
			"$(postconf -d -h mail_version)" "$SUBMISSION" "$(dovecot --version | awk '{print $1}')" \
			"$(msmtp --version | awk 'NR == 1 {print $3}')" "$bs_runs" $((SECONDS - t0_all))
		printf 'Each run sends %d new messages (2 to 6 KB, every fourth with an 8-bit UTF-8 body; Message-ID and Subject unique to the run) and counts the files holding the run'"'"'s Message-IDs in bob'"'"'s Maildir (new/ and cur/) every 50 ms; bob'"'"'s INBOX is expunged before each run. mailfs: a fresh cache and mount per run (`prefetch = none`, `poll = 60s`, IMAP over imaps, SMTP over smtp:// with STARTTLS), started and waited for until `first_sync = done` before the clock starts; then one `cp` of the %d files into MOUNT/alice/outbox/; "done" is when all have arrived and .status says `outbox_queued = 0`, `outbox_sending = no`, `sent = %d`. msmtp: `msmtp -C RC -a bench bob@example.test < FILE` for each file in turn (host localhost, STARTTLS, tls_trust_file = the test CA, AUTH, password in RC), timed until all have arrived. SMTP sessions are the `connect from` lines Postfix'"'"'s submission service logged during the run.\n\n' \
			"$bs_n" "$bs_n" "$bs_n"
		row "what" "setup" "median s" "all runs (s)" "ratio" "target"
		row "---" "---" "---:" "---" "---:" "---"
		row "all $bs_n delivered" "msmtp, one process per message, sequential" "$m_ms" "${BS[msmtp.DELIV]% }" "1.00" ""
		row "" "mailfs, \`save_sent = yes\`: \`cp\` into outbox/ until delivered and outbox empty" \
			"$m_yes" "${BS[yes.DONE]% }" "${r_yes}x msmtp" "<= 0.1x msmtp: $(verdict "$r_yes" 0.1)"
		row "" "mailfs, \`save_sent = no\`: the same" \
			"$m_no" "${BS[no.DONE]% }" "${r_no}x msmtp" "<= 0.1x msmtp: $(verdict "$r_no" 0.1)"
		row "accepted" "msmtp: the last of the $bs_n processes exited" "$(bs_med msmtp.LOOP)" "${BS[msmtp.LOOP]% }" "" ""
		row "" "mailfs, \`save_sent = yes\`: the one \`cp\` of $bs_n files returned" "$(bs_med yes.CP)" "${BS[yes.CP]% }" "" ""
		row "" "mailfs, \`save_sent = no\`: the same" "$(bs_med no.CP)" "${BS[no.CP]% }" "" ""
		row "SMTP sessions per run" "msmtp" "" "${BS[msmtp.sessions]% }" "" ""
		row "" "mailfs, \`save_sent = yes\`" "" "${BS[yes.sessions]% }" "" "1 (one session)"
		row "" "mailfs, \`save_sent = no\`" "" "${BS[no.sessions]% }" "" "1 (one session)"
		printf '\nAlso measured (s after the first cp, per run), save_sent = yes: all delivered %s; outbox empty %s; Sent copies done (`sent_copies_due = 0`) %s. save_sent = no: all delivered %s; outbox empty %s. .status `sent` at the end: %s (save_sent = yes), %s (no).\n' \
			"${BS[yes.DELIV]% }" "${BS[yes.EMPTY]% }" "${BS[yes.COPIES]% }" "${BS[no.DELIV]% }" "${BS[no.EMPTY]% }" \
			"${BS[yes.sent]% }" "${BS[no.sent]% }"
		if [ ${#bs_notes[@]} -gt 0 ]; then printf '\n%s\n' "${bs_notes[@]}"; fi
	}
}
