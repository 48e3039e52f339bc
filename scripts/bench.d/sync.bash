# shellcheck shell=bash
# `scripts/bench sync [N...]`, sourced by scripts/bench (which documents it): a large INBOX
# (metadata only, prefetch = none) against mbsync on the same folder. Relies on
# scripts/bench's build() and median(), and on bench.d/mount.bash's helpers (say, die,
# secs, ratio, verdict, row, mb_start, stop_mailfs, status_get, status_vals,
# mailfs_first_sync, mbsync_rc) and the globals they use (mb_work, mb_mnt, mb_mfs_pid);
# runs from the top of the repository.

declare -a bs_summary=()

# bs_hwm: the daemon's peak RSS (VmHWM) in MiB.
bs_hwm() { awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$mb_mfs_pid/status"; }

# bs_wait_passes N SECONDS: until .status says passes >= N (0 if it did).
bs_wait_passes() {
	local want=$1 deadline=$((SECONDS + $2)) p
	while [ $SECONDS -lt "$deadline" ]; do
		p=$(status_get passes)
		[ "${p:-0}" -ge "$want" ] && return 0
		sleep 0.05
	done
	return 1
}

bench_sync_one() {
	local n=$1 have=$2 cfg=$mb_work/sync.conf i t0 line msgs count hwm_list hwm_end
	local restart=() pass=() mbs=() t_ls arrive mb_first="" notes=() p
	say "N=$n: seeding $((n - have)) more messages into alice's INBOX"
	[ "$n" -gt "$have" ] && scripts/seed alice $((n - have)) >/dev/null
	msgs=$($DOVEADM -f flow mailbox status -u alice messages INBOX | sed -n 's/.*messages=//p')

	# 1. First listing: an empty cache until first_sync = done (metadata of every message).
	say "N=$n: mailfs first listing on an empty cache (prefetch = none)"
	rm -rf "${mb_work:?}/cache"
	mkdir "$mb_work/cache"
	cat >"$cfg" <<-EOF
		cache_dir = $mb_work/cache

		[account alice]
		imap = imaps://$HOST:$IMAPS
		user = alice
		password_cmd = echo $ALICE_PASS
		ca_file = $CA
		prefetch = none
		poll = 5s
		folders = INBOX
	EOF
	mailfs_first_sync 0 "$cfg" "$n"
	local t_first=$T_SYNC
	hwm_list=$(bs_hwm)

	# 2. ls | wc -l of the folder, cold kernel cache (the first listing) and warm.
	t0=$EPOCHREALTIME
	count=$(ls "$mb_mnt/alice/INBOX" | wc -l)
	t_ls=$(secs "$t0" "$EPOCHREALTIME")
	t0=$EPOCHREALTIME
	ls "$mb_mnt/alice/INBOX" | wc -l >/dev/null
	local t_ls2
	t_ls2=$(secs "$t0" "$EPOCHREALTIME")
	[ "$count" = "$msgs" ] || notes+=("**ls lists $count files, the server holds $msgs.**")

	# 3. The floor: SELECT (CONDSTORE) + a CHANGEDSINCE FETCH over one session.
	local raw=() line
	for ((i = 0; i < mb_runs; i++)); do
		line=$(scripts/bench.d/raw-select.py "$HOST" "$IMAPS" "$CA" alice "$ALICE_PASS" INBOX)
		raw+=("$(awk '{print $2}' <<<"$line")")
	done
	# No-change passes of the running daemon (poll = 5s): .status last_pass_ms.
	say "N=$n: $mb_runs no-change passes of the running daemon"
	p=$(status_get passes)
	for ((i = 1; i <= mb_runs; i++)); do
		bs_wait_passes $((p + i)) 60 || die "no pass within 60 s"
		pass+=("$(awk -v ms="$(status_get last_pass_ms)" 'BEGIN { printf "%.4f", ms / 1000 }')")
	done

	# 4. A new message: delivered by another client, listed (INBOX is pushed by IDLE).
	# .status is rebuilt at most once a second: this figure has 1 s of resolution. The
	# floor: a bare IMAP session in IDLE on INBOX, hearing the server's EXISTS; and how
	# long the delivery itself took (doveadm save into the server's Maildir).
	say "N=$n: one new message"
	local idle_out=$mb_work/raw-idle.out idle_pid t_saved
	: >"$idle_out"
	scripts/bench.d/raw-idle.py "$HOST" "$IMAPS" "$CA" alice "$ALICE_PASS" INBOX 120 >"$idle_out" &
	idle_pid=$!
	for _ in $(seq 600); do grep -q '^ready' "$idle_out" && break; sleep 0.05; done
	t0=$EPOCHREALTIME
	printf 'From: Bench <bench@example.test>\r\nTo: alice@example.test\r\nSubject: arrival %s\r\nMessage-ID: <arrival.%s@example.test>\r\n\r\nnew\r\n' \
		"$n" "$n" | $DOVEADM save -u alice -m INBOX
	t_saved=$(secs "$t0" "$EPOCHREALTIME")
	arrive=""
	for _ in $(seq 1200); do
		if [ "$(status_get messages)" = $((msgs + 1)) ]; then
			arrive=$(secs "$t0" "$EPOCHREALTIME")
			break
		fi
		sleep 0.05
	done
	[ -n "$arrive" ] || { arrive="n/a"; notes+=("**the new message was not listed within 60 s.**"); }
	wait "$idle_pid" || true
	local t_idle
	t_idle=$(awk -v t0="${t0/,/.}" '$1 == "exists" && $2 != "none" { printf "%.3f", $2 - t0 }' "$idle_out")
	msgs=$((msgs + 1))
	hwm_end=$(bs_hwm)
	stop_mailfs

	# 5. No-change resync at start: the daemon started again on the warm cache, until
	# first_sync = done (connect, login, LIST, the folder's check).
	say "N=$n: $mb_runs restarts on the warm cache"
	for ((i = 0; i < mb_runs; i++)); do
		mailfs_first_sync 0 "$cfg" "$n"
		restart+=("$T_SYNC")
		local h
		h=$(bs_hwm)
		awk -v a="$h" -v b="$hwm_end" 'BEGIN { exit !(a > b) }' && hwm_end=$h
		stop_mailfs
	done

	# 6. mbsync: a first full pull (bodies too: mbsync has no metadata-only mode), then
	# no-change runs on its kept state.
	if [ "$n" -le "${MAILFS_BENCH_MBSYNC_MAX:-100000}" ]; then
		say "N=$n: mbsync first pull, then $mb_runs no-change runs"
		local d=$mb_work/mbsync
		rm -rf "$d"
		mbsync_rc "$d" INBOX
		t0=$EPOCHREALTIME
		mbsync -c "$d/rc" -a -q || die "mbsync failed"
		mb_first=$(secs "$t0" "$EPOCHREALTIME")
		for ((i = 0; i < mb_runs; i++)); do
			t0=$EPOCHREALTIME
			mbsync -c "$d/rc" -a -q || die "mbsync failed"
			mbs+=("$(secs "$t0" "$EPOCHREALTIME")")
		done
		count=$(find "$d/maildir/INBOX/cur" "$d/maildir/INBOX/new" -type f | wc -l)
		[ "$count" = "$msgs" ] || notes+=("**mbsync holds $count messages, the server $msgs.**")
		rm -rf "$d"
	fi

	local mp mr mm rp rr mw
	mw=$(printf '%s\n' "${raw[@]}" | median)
	mp=$(printf '%s\n' "${pass[@]}" | median)
	mr=$(printf '%s\n' "${restart[@]}" | median)
	mm=n/a
	[ ${#mbs[@]} -gt 0 ] && mm=$(printf '%s\n' "${mbs[@]}" | median)
	rp=$(ratio "$mp" "$mm")
	rr=$(ratio "$mr" "$mm")
	printf '\n### scripts/bench sync: %d messages in INBOX (prefetch = none; %d after the new one), median of %d\n\n' "$n" "$msgs" "$mb_runs"
	printf '| step | contender | seconds (median) | all runs | ratio | target |\n|---|---|---:|---|---:|---|\n'
	row "1. first listing, empty cache" "mailfs, until first_sync = done" "$t_first" "" "" ""
	row "" "mbsync, first pull (bodies too)" "${mb_first:-skipped}" "" "" ""
	row "2. \`ls \| wc -l\`" "mailfs, first listing / again" "$t_ls / $t_ls2" "" "" ""
	row "3. no-change resync" "mbsync, no-change run" "$mm" "${mbs[*]}" "1.00" ""
	row "" "floor: SELECT (CONDSTORE) + CHANGEDSINCE FETCH, one session" "$mw" "${raw[*]}" \
		"$(ratio "$mw" "$mm")x mbsync" ""
	row "" "mailfs, a pass of the running daemon" "$mp" "${pass[*]}" "${rp}x mbsync" \
		"$([ "$n" = 100000 ] && echo "<= 0.2x at 100,000: $(verdict "$rp" 0.2)" || echo "(the target is at 100,000)")"
	row "" "mailfs, restart on a warm cache" "$mr" "${restart[*]}" "${rr}x mbsync" ""
	row "4. one new message" "doveadm save returned (the delivery itself)" "$t_saved" "" "" ""
	row "" "floor: a bare IDLE session hears EXISTS" "${t_idle:-n/a}" "" "" ""
	row "" "mailfs lists it (IDLE; 1 s resolution)" "$arrive" "" \
		"$(awk -v a="$arrive" -v b="${t_idle:-x}" 'BEGIN { if (b ~ /^[0-9.]+$/ && a ~ /^[0-9.]+$/) printf "%+.3f s", a - b; else print "n/a" }')" "~2 s"
	row "5. daemon peak RSS (VmHWM)" "mailfs, after the listing / at the end" "$hwm_list / $hwm_end MiB" "" "" \
		"<= 64 MiB: $(verdict "$hwm_end" 64)"
	if [ ${#notes[@]} -gt 0 ]; then printf '\n%s\n' "${notes[@]}"; fi
	bs_summary+=("$(printf '| %d | %s | %s | %s (mbsync %s, %sx) | %s | %s MiB |' "$msgs" "$t_first" \
		"$t_ls" "$mp" "$mm" "$rp" "$arrive" "$hwm_end")")
	rm -rf "${mb_work:?}/cache"
}

bench_sync() {
	local sizes=("$@") n have=0
	[ ${#sizes[@]} -gt 0 ] || sizes=(100000)
	for n in "${sizes[@]}"; do
		[[ "$n" =~ ^[1-9][0-9]*$ ]] || die "N must be a positive number, got '$n'"
		[ "$n" -gt "$have" ] || die "sizes must grow (the INBOX only gets more messages)"
		have=$n
	done
	have=0
	mb_runs=${MAILFS_BENCH_RUNS:-3}
	[[ "$mb_runs" =~ ^[1-9][0-9]*$ ]] || die "MAILFS_BENCH_RUNS must be a positive number"
	export LC_ALL=C
	[ "$(id -u)" -eq 0 ] || die "must run as root (scripts/seed, test servers)"
	command -v mbsync >/dev/null || die "mbsync not found (package isync; scripts/deps)"
	build
	mb_start sync
	for n in "${sizes[@]}"; do
		bench_sync_one "$n" "$have"
		have=$n
	done
	if [ ${#sizes[@]} -gt 1 ]; then
		printf '\n### scripts/bench sync: summary\n\n'
		printf '| messages | first listing s | ls s | no-change pass s (mbsync, ratio) | new message s | peak RSS |\n'
		printf '|---:|---:|---:|---:|---:|---:|\n'
		printf '%s\n' "${bs_summary[@]}"
	fi
}
