# shellcheck shell=bash
# `scripts/bench writes`, sourced by scripts/bench (which documents it): 1,000 messages
# copied into a folder of the mount and then moved to another folder, each until the server
# holds them, against the same work over one IMAP session (bench.d/raw-writes.py).
# Relies on scripts/bench's build() and median(), and on bench.d/mount.bash's helpers (say,
# die, secs, ratio, verdict, row, stop_mailfs, status_vals, mount_cleanup, build_passthrough,
# start_passthrough, stop_passthrough) and the globals
# they use (mb_work, mb_mnt, mb_mfs_pid, mb_ptm); runs from the top of the repository.

bw_n=1000
declare -a bw_notes=()
declare -A BW=() # "CONTENDER.WHAT" -> the runs' figures, blank-separated

# shellcheck disable=SC2086  # the runs' figures are blank-separated words
bw_med() { printf '%s\n' ${BW[$1]} | median; }

# bw_messages DIR TAG: bw_n distinct messages DIR/w-NNNN.eml, 2 to 4 KB, LF line ends.
bw_messages() {
	local dir=$1 tag=$2
	rm -rf "$dir"
	mkdir -p "$dir"
	awk -v dir="$dir" -v tag="$tag" -v n="$bw_n" -v date="$(date -R)" 'BEGIN {
		for (i = 1; i <= n; i++) {
			f = sprintf("%s/w-%04d.eml", dir, i)
			printf "From: Bench <bench@example.test>\nTo: alice@example.test\n" >f
			printf "Subject: bench writes %s no. %d\nDate: %s\n", tag, i, date >f
			printf "Message-ID: <%s.%04d@example.test>\n\n", tag, i >f
			lines = 30 + (i * 37) % 30
			for (l = 1; l <= lines; l++)
				printf "Line %02d of message %d: the quick brown fox jumps over the lazy dog.\n", l, i >f
			close(f)
		}
	}'
}

bw_count() { # mailbox: its message count on the server
	$DOVEADM -f flow mailbox status -u alice messages "$1" 2>/dev/null | sed -n 's/.*messages=//p'
}

bw_fresh() { # mailbox...: delete and create again, empty
	local b
	for b in "$@"; do
		$DOVEADM mailbox delete -u alice -s "$b" >/dev/null 2>&1 || true
		$DOVEADM mailbox create -u alice "$b" || die "doveadm mailbox create $b failed"
	done
}

# bw_wait WHAT DEADLINE_S BOX_A WANT_A BOX_B WANT_B: poll .status (every 10 ms) until it says
# journal = 0, then check the server's counts (doveadm, not timed: it takes tens of ms on a
# loaded machine, more than the one-session figure itself); prints the seconds from $bw_t0
# to when journal = 0 was seen, for the first such moment after which the server held
# what was wanted. The one-session figure is timed the same way: to its last tagged OK.
bw_wait() {
	local what=$1 limit=$2 a=$3 wa=$4 b=$5 wb=$6 j t deadline=$((SECONDS + $2))
	while :; do
		IFS="|" read -r j < <(status_vals journal) || true
		if [ "${j:-x}" = 0 ]; then
			t=$EPOCHREALTIME
			if [ "$(bw_count "$a")" = "$wa" ] && [ "$(bw_count "$b")" = "$wb" ]; then
				secs "$bw_t0" "$t"
				return 0
			fi
		fi
		kill -0 "$mb_mfs_pid" 2>/dev/null || die "mailfs exited during $what"
		if [ "$SECONDS" -ge "$deadline" ]; then
			cat "$mb_mnt/.status" >&2 || true
			die "$what: not on the server after $limit s ($a: $(bw_count "$a"), $b: $(bw_count "$b"))"
		fi
		sleep 0.01
	done
}

# bw_mailfs RUN: a fresh cache and mount with an outbox; cp of bw_n files into WA, then mv
# of them all into WB. Sets T_CPRET, T_CP (on the server), T_MVRET, T_MV.
bw_mailfs() {
	local run=$1 tag cfg log=$mb_work/mailfs.log fs dup
	tag=bw${bw_stamp}m$run
	bw_messages "$mb_work/msgs" "$tag"
	bw_fresh BenchWa BenchWb
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
		folders = BenchWa BenchWb
		poll = 60s
	EOF
	build-bench/mailfs -f -o config="$cfg" "$mb_mnt" >"$log" 2>&1 &
	mb_mfs_pid=$!
	local deadline=$((SECONDS + 60))
	while :; do
		IFS="|" read -r fs < <(status_vals first_sync) || true
		[ "${fs:-}" != done ] || grep -q '^closes *= inotify' "$mb_mnt/.status" || fs=
		[ "${fs:-}" != done ] || break
		kill -0 "$mb_mfs_pid" 2>/dev/null || die "mailfs exited before its first sync was done"
		[ "$SECONDS" -lt "$deadline" ] || die "mailfs: first sync not done after 60 s"
		sleep 0.05
	done
	bw_t0=$EPOCHREALTIME
	cp -- "$mb_work/msgs"/*.eml "$mb_mnt/alice/BenchWa/" || die "cp into the mount failed"
	T_CPRET=$(secs "$bw_t0" "$EPOCHREALTIME")
	T_CP=$(bw_wait "cp" 300 BenchWa "$bw_n" BenchWb 0)
	bw_t0=$EPOCHREALTIME
	mv -- "$mb_mnt/alice/BenchWa"/*.eml "$mb_mnt/alice/BenchWb/" || die "mv in the mount failed"
	T_MVRET=$(secs "$bw_t0" "$EPOCHREALTIME")
	T_MV=$(bw_wait "mv" 300 BenchWa 0 BenchWb "$bw_n")
	dup=$($DOVEADM fetch -u alice 'hdr.message-id' mailbox BenchWb 2>/dev/null | grep '^hdr.message-id' | sort | uniq -d | wc -l)
	[ "$dup" = 0 ] || bw_notes+=("**mailfs run $run: $dup Message-IDs twice in BenchWb.**")
	local n
	n=$(grep -ciE 'error|warn' "$log" || true)
	[ "$n" = 0 ] || bw_notes+=("mailfs run $run: the daemon logged $n warning or error lines, e.g. \`$(grep -iE -m1 'error|warn' "$log")\`.")
	stop_mailfs
}

# bw_raw RUN: the same over one IMAP session. Sets T_CP, T_MV.
bw_raw() {
	local out
	bw_messages "$mb_work/msgs" "bw${bw_stamp}r$1"
	bw_fresh BenchWa BenchWb
	out=$(python3 scripts/bench.d/raw-writes.py "$HOST" "$IMAPS" "$CA" alice "$ALICE_PASS" \
		"$mb_work/msgs" BenchWa BenchWb) || die "raw-writes.py failed"
	read -r _ T_CP _ T_MV <<<"$out"
	[ "$(bw_count BenchWb)" = "$bw_n" ] || die "raw: BenchWb holds $(bw_count BenchWb)"
}

# bw_floor RUN: the same bw_n files moved with one `mv` between two directories of a local
# copy mounted through libfuse's passthrough_ll (-o cache=always), which answers each
# request with a system call or two on the local file system. Any FUSE file system pays
# these round trips (LOOKUP of the new name, RENAME, GETATTR after it, per file); the
# one-session figure has no per-file work at all. Sets T_PT.
bw_floor() {
	local src=$mb_work/pt-src t0
	rm -rf "$src"
	mkdir -p "$src/a" "$src/b"
	cp -- "$mb_work/msgs"/*.eml "$src/a/"
	start_passthrough "$src" "$bw_n"
	ls -l "$mb_ptm/a" >/dev/null
	t0=$EPOCHREALTIME
	mv -- "$mb_ptm/a"/*.eml "$mb_ptm/b/" || die "mv on passthrough_ll failed"
	T_PT=$(secs "$t0" "$EPOCHREALTIME")
	stop_passthrough
	rm -rf "$src"
}

bench_writes() {
	local r runs load t0_all
	runs=${MAILFS_BENCH_RUNS:-3}
	[[ "$runs" =~ ^[1-9][0-9]*$ ]] || die "MAILFS_BENCH_RUNS must be a positive number"
	export LC_ALL=C
	[ "$(id -u)" -eq 0 ] || die "must run as root (test servers)"
	build
	load=$(cut -d' ' -f1-3 /proc/loadavg)
	t0_all=$SECONDS
	mb_start writes
	mb_ptm=$mb_work/pt
	mkdir -p "$mb_ptm"
	build_passthrough
	bw_stamp=$(date +%s)$$
	for ((r = 1; r <= runs; r++)); do
		say "run $r/$runs: one IMAP session: $bw_n APPENDs, one UID MOVE"
		bw_raw "$r"
		BW[raw.cp]+="$T_CP "
		BW[raw.mv]+="$T_MV "
		say "run $r/$runs: mailfs: cp $bw_n files into a folder, then mv them to another"
		bw_mailfs "$r"
		BW[mfs.cpret]+="$T_CPRET "
		BW[mfs.cp]+="$T_CP "
		BW[mfs.mvret]+="$T_MVRET "
		BW[mfs.mv]+="$T_MV "
		bw_floor "$r"
		BW[pt.mv]+="$T_PT "
	done
	local rc rm rf floor
	rc=$(ratio "$(bw_med mfs.cp)" "$(bw_med raw.cp)")
	rm=$(ratio "$(bw_med mfs.mv)" "$(bw_med raw.mv)")
	floor=$(awk -v a="$(bw_med pt.mv)" -v b="$(bw_med raw.mv)" 'BEGIN { printf "%.3f", a + b }')
	rf=$(ratio "$(bw_med mfs.mv)" "$floor")
	# shellcheck disable=SC2016  # backticks are Markdown here
	{
		printf '\n### scripts/bench writes: %d messages copied into a folder, then moved to another\n\n' "$bw_n"
		printf '%s (load average before: %s); mailfs %s; Dovecot %s on localhost:%s (imaps). Runs: %d, interleaved; the whole bench took %d s.\n' \
			"$(nproc) CPUs, Linux $(uname -r)" "$load" "$(git describe --always --dirty 2>/dev/null || echo '?')" \
			"$(dovecot --version | awk '{print $1}')" "$IMAPS" "$runs" $((SECONDS - t0_all))
		printf 'mailfs: a fresh cache and a read-write mount with an outbox (`folders = BenchWa BenchWb`), first sync done and `closes = inotify` before the clock starts; one `cp` of the %d files (2 to 4 KB, LF) into MOUNT/alice/BenchWa/, timed until .status says `journal = 0` (polled every 10 ms) and the server then holds %d in BenchWa (checked with doveadm, untimed); then one `mv` of them all into BenchWb/, until `journal = 0`, then BenchWa empty and BenchWb holding %d. One IMAP session (the limit): LOGIN, an APPEND per file (CRLF) each waiting for its OK, then SELECT and one `UID MOVE 1:*`. The one-session figure does no per-file work; the `mv` through any FUSE file system costs three round trips per file (LOOKUP, RENAME, GETATTR); the passthrough_ll row is those plus the work of the local file system (a local copy of the files, the same `mv`, passthrough_ll -o cache=always).\n\n' \
			"$bw_n" "$bw_n" "$bw_n"
		row "what" "setup" "median s" "all runs (s)" "ratio" "target"
		row "---" "---" "---:" "---" "---:" "---"
		row "$bw_n cp, on the server" "one IMAP session: APPEND each" "$(bw_med raw.cp)" "${BW[raw.cp]% }" "1.00" ""
		row "" "mailfs: \`cp\` into a folder" "$(bw_med mfs.cp)" "${BW[mfs.cp]% }" "${rc}x" "<= 1.5x: $(verdict "$rc" 1.5)"
		row "" "mailfs: when \`cp\` returned" "$(bw_med mfs.cpret)" "${BW[mfs.cpret]% }" "" ""
		row "$bw_n mv, on the server" "one IMAP session: one UID MOVE" "$(bw_med raw.mv)" "${BW[raw.mv]% }" "1.00" ""
		row "" "mailfs: \`mv\` to another folder" "$(bw_med mfs.mv)" "${BW[mfs.mv]% }" "${rm}x" "<= 1.5x: $(verdict "$rm" 1.5)"
		row "" "mailfs: when \`mv\` returned" "$(bw_med mfs.mvret)" "${BW[mfs.mvret]% }" "" ""
		row "" "passthrough_ll: the same \`mv\` between two local directories (the round trips and the local renames)" "$(bw_med pt.mv)" "${BW[pt.mv]% }" "" ""
		row "" "mailfs against passthrough_ll's \`mv\` + the one UID MOVE ($floor s)" "" "" "${rf}x" "(for reference)"
		if [ ${#bw_notes[@]} -gt 0 ]; then printf '\n%s\n' "${bw_notes[@]}"; fi
		printf '\nThe grep -r and rsync -a ratios on the same kind of mount (read-write, with an outbox) are in `scripts/bench mount 10000`.\n'
	}
}
