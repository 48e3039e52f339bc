# shellcheck shell=bash
# `scripts/bench mount [N...]`, sourced by scripts/bench (which documents it): the mounted
# filesystem against the raw server, mbsync, a local directory and libfuse's passthrough_ll.
# Relies on scripts/bench's build() and median(); runs from the top of the repository.

mb_work=""      # temporary directory holding everything below (servers, mounts, copies)
mb_mnt=""       # mailfs mount point
mb_ptm=""       # passthrough_ll mount point
mb_mfs_pid=""   # the mailfs daemon (foreground, so $! is the daemon itself)
mb_pt_pid=""    # the passthrough_ll daemon
mb_runs=3
mb_word=Zq7xVbench9absent
mb_pt_opts=""
mb_pt_nofile=""
declare -a mb_summary=()
declare -A MED=() ALL=() FIRST=()

say() { printf 'bench [%4ds]: %s\n' "$SECONDS" "$*" >&2; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a ~ /^[0-9.]+$/ && b ~ /^[0-9.]+$/ && b > 0) printf (a / b < 0.01 && a > 0) ? "%.4f" : "%.2f", a / b; else print "n/a" }'; }
# verdict VALUE LIMIT: "met" when VALUE <= LIMIT
verdict() { awk -v a="$1" -v b="$2" 'BEGIN { print (a != "n/a" && a + 0 <= b + 0) ? "met" : "**MISSED**" }'; }
mbytes() { awk -v b="$1" 'BEGIN { printf "%.1f MB", b / 1e6 }'; }

# stop_fuse MOUNTPOINT PID: unmount, then wait for the daemon to exit (SIGTERM after 10 s,
# SIGKILL after 12 s). Either argument may be empty.
stop_fuse() {
	local m=$1 pid=$2 i
	if [ -n "$m" ] && mountpoint -q "$m" 2>/dev/null; then
		fusermount3 -u "$m" 2>/dev/null || fusermount3 -uz "$m" 2>/dev/null || true
	fi
	[ -n "$pid" ] || return 0
	for i in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	if kill -0 "$pid" 2>/dev/null; then
		say "pid $pid still runs 10 s after unmount: SIGTERM"
		kill "$pid" 2>/dev/null || true
		for i in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
}

stop_mailfs() { stop_fuse "$mb_mnt" "$mb_mfs_pid"; mb_mfs_pid=""; }
stop_passthrough() { stop_fuse "$mb_ptm" "$mb_pt_pid"; mb_pt_pid=""; }

mount_cleanup() {
	set +e
	trap - INT TERM
	stop_passthrough
	stop_mailfs
	[ -n "$mb_work" ] || return 0
	[ -d "$mb_work/servers" ] && scripts/test-servers stop "$mb_work/servers" >/dev/null 2>&1
	# --one-file-system: never descend into a mount that failed to go away.
	rm -rf --one-file-system "$mb_work"
}

# mb_start NAME: the work directory $mb_work (/tmp/mailfs-bench-NAME.XXXXXX, removed with
# everything in it by mount_cleanup at exit), the mount point $mb_mnt, and test servers of
# their own in $mb_work/servers, their ports sourced.
mb_start() {
	mb_work=$(mktemp -d "${TMPDIR:-/tmp}/mailfs-bench-$1.XXXXXX")
	chmod 755 "$mb_work"
	trap mount_cleanup EXIT
	trap 'exit 130' INT TERM
	mb_mnt=$mb_work/mnt
	mkdir -p "$mb_mnt"
	say "starting test servers (MAILFS_PORT_BASE=$MAILFS_PORT_BASE) in $mb_work/servers"
	mkdir "$mb_work/servers"
	chmod 755 "$mb_work/servers"
	scripts/test-servers start "$mb_work/servers" >/dev/null
	export MAILFS_SERVER_DIR=$mb_work/servers
	# shellcheck disable=SC1091
	. "$mb_work/servers/ports"
}

# status_get KEY: the value of `KEY = value` in the [account alice] block of MOUNT/.status,
# empty if the file or the key is absent.
status_get() {
	awk -v k="$1" '
		/^\[/ { acc = ($0 == "[account alice]"); next }
		acc && index($0, "=") {
			key = $0; sub(/[ \t]*=.*/, "", key)
			if (key == k) { v = $0; sub(/^[^=]*=[ \t]*/, "", v); print v; exit }
		}' "$mb_mnt/.status" 2>/dev/null || true
}

# served_now: served_bytes after the status thread's next refresh (every second), or n/a.
served_now() {
	sleep 1.3
	local v
	v=$(status_get served_bytes)
	echo "${v:-n/a}"
}
delta() { if [ "$1" = n/a ] || [ "$2" = n/a ]; then echo n/a; else echo $(($2 - $1)); fi; }

# measure KEY WARMUPS CMD...: CMD WARMUPS times untimed, then $mb_runs times timed;
# ALL[KEY] = every time, MED[KEY] = their median.
measure() {
	local key=$1 warm=$2 t0 i all=()
	shift 2
	for ((i = 0; i < warm; i++)); do "$@"; done
	for ((i = 0; i < mb_runs; i++)); do
		t0=$EPOCHREALTIME
		"$@"
		all+=("$(secs "$t0" "$EPOCHREALTIME")")
	done
	ALL[$key]="${all[*]}"
	MED[$key]=$(printf '%s\n' "${all[@]}" | median)
}

# The measured commands. grep must find nothing (exit 1): 0 means WORD is in a message,
# 2 a read error; either makes the comparison meaningless.
grep_absent() {
	local rc=0
	grep -r -- "$mb_word" "$1" >/dev/null || rc=$?
	[ "$rc" -eq 1 ] || die "grep -r $mb_word $1: exit $rc (0: the word is in a file, 2: error)"
}
ls_l() { ls -l "$1" >/dev/null; }
rsync_a() { rsync -a "$1" "$2"; }

build_passthrough() {
	local src=/usr/share/doc/libfuse3-dev/examples d=$mb_work/passthrough f
	mkdir -p "$d"
	for f in passthrough_ll.c passthrough_helpers.h; do
		if [ -f "$src/$f" ]; then
			cp "$src/$f" "$d/$f"
		elif [ -f "$src/$f.gz" ]; then
			gzip -dc "$src/$f.gz" >"$d/$f"
		else
			die "$src/$f not found (package libfuse3-dev)"
		fi
	done
	# shellcheck disable=SC2046  # pkg-config prints several words
	gcc -O2 -o "$d/passthrough_ll" "$d/passthrough_ll.c" $(pkg-config --cflags --libs fuse3) ||
		die "cannot build passthrough_ll"
}

# start_passthrough SOURCE N: mount SOURCE (N files) at $mb_ptm through passthrough_ll.
# It keeps an O_PATH descriptor open per inode the kernel knows, so its RLIMIT_NOFILE is
# raised to N + 10000 if the hard limit allows (the subshell execs: $! is the daemon).
# pt_fits N: whether that is possible (without CAP_SYS_RESOURCE the hard limit stays).
pt_fits() { [ $(($1 + 1000)) -le "$(ulimit -Hn)" ]; }
start_passthrough() {
	local i
	mb_pt_opts="source=$1,cache=always"
	mb_pt_nofile=$(($2 + 10000))
	[ "$mb_pt_nofile" -le "$(ulimit -Hn)" ] || mb_pt_nofile=$(ulimit -Hn)
	[ "$mb_pt_nofile" -ge "$(ulimit -n)" ] || mb_pt_nofile=$(ulimit -n)
	(
		ulimit -n "$mb_pt_nofile"
		exec "$mb_work/passthrough/passthrough_ll" -f -o "$mb_pt_opts" "$mb_ptm"
	) >"$mb_work/passthrough.log" 2>&1 &
	mb_pt_pid=$!
	for i in $(seq 100); do mountpoint -q "$mb_ptm" && return 0; sleep 0.1; done
	cat "$mb_work/passthrough.log" >&2
	die "passthrough_ll did not mount $mb_ptm"
}

# status_vals KEY...: the values of the KEYs (as status_get), one line, "|"-separated.
status_vals() {
	awk -v keys="$*" '
		BEGIN { nk = split(keys, k, " ") }
		/^\[/ { acc = ($0 == "[account alice]"); next }
		acc && index($0, "=") {
			key = $0; sub(/[ \t]*=.*/, "", key)
			v = $0; sub(/^[^=]*=[ \t]*/, "", v); val[key] = v
		}
		END { for (i = 1; i <= nk; i++) printf "%s%s", val[k[i]], (i < nk ? "|" : "\n") }
	' "$mb_mnt/.status" 2>/dev/null || true
}

# mailfs_first_sync N CONFIG [M]: start the daemon on an empty cache (M messages on the
# server, default N, set how long to wait at most); sets T_SYNC (seconds
# until first_sync = done), T_BODIES (until bodies_cached >= N as well: the figure the
# target applies to, and the state every later step starts from) and PHASES (when .status
# showed each new phase, "phase@seconds ...") and SYNC_CPU (the daemon's CPU time by then).
mailfs_first_sync() {
	local n=$1 cfg=$2 m=${3:-$1} log=$mb_work/mailfs.log t0 now deadline v fs ph bodies="" last=""
	t0=$EPOCHREALTIME
	build-bench/mailfs -f -o config="$cfg" "$mb_mnt" >"$log" 2>&1 &
	mb_mfs_pid=$!
	deadline=$(awk -v t="$t0" -v n="$m" 'BEGIN { printf "%d", t + 120 + n * 0.006 }')
	T_SYNC=""
	T_BODIES=""
	PHASES=""
	while :; do
		IFS="|" read -r fs ph bodies < <(status_vals first_sync phase bodies_cached) || true
		now=$EPOCHREALTIME
		if [ -n "${ph:-}" ] && [ "$ph" != "$last" ]; then
			PHASES+="${PHASES:+, }$ph@$(secs "$t0" "$now")"
			last=$ph
		fi
		if [ -z "$T_SYNC" ] && [ "${fs:-}" = "done" ]; then
			T_SYNC=$(secs "$t0" "$now")
		fi
		if [ -n "$T_SYNC" ] && [ "${bodies:-0}" -ge "$n" ]; then
			T_BODIES=$(secs "$t0" "$now")
			SYNC_CPU=$(awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, "")
				printf "%.1f s user + %.1f s system", $12 / hz, $13 / hz }' "/proc/$mb_mfs_pid/stat")
			break
		fi
		if ! kill -0 "$mb_mfs_pid" 2>/dev/null; then
			tail -n 30 "$log" >&2
			mb_mfs_pid=""
			die "mailfs exited during its first sync (log above)"
		fi
		if [ "${now%.*}" -ge "$deadline" ]; then
			cat "$mb_mnt/.status" >&2 2>/dev/null || true
			tail -n 30 "$log" >&2
			v=${T_SYNC:+first_sync = done after $T_SYNC s, but bodies_cached = $bodies < $n}
			die "first sync not finished after $((deadline - ${t0%.*})) s ${v:+($v)}"
		fi
		sleep 0.05
	done
}

# mbsync_rc DIR FOLDER: DIR/rc, an mbsync config (defaults, so FSync yes) pulling alice's
# FOLDER into the Maildir DIR/maildir, its sync state kept there.
mbsync_rc() {
	local d=$1 folder=$2
	mkdir -p "$d/maildir"
	cat >"$d/rc" <<-EOF
		IMAPAccount bench
		Host localhost
		Port $IMAPS
		User alice
		Pass "$ALICE_PASS"
		SSLType IMAPS
		CertificateFile $CA

		IMAPStore far
		Account bench

		MaildirStore near
		Path $d/maildir/
		Inbox $d/maildir/INBOX
		SubFolders Verbatim

		Channel bench
		Far :far:
		Near :near:
		Patterns "$folder"
		Sync Pull
		Create Near
		SyncState *
	EOF
}

# run_mbsync FOLDER: mbsync pulls FOLDER into a fresh Maildir; sets T_MBSYNC and
# MBSYNC_FILES.
run_mbsync() {
	local folder=$1 d=$mb_work/mbsync t0
	rm -rf "$d"
	mbsync_rc "$d" "$folder"
	t0=$EPOCHREALTIME
	mbsync -c "$d/rc" -a -q || die "mbsync failed"
	T_MBSYNC=$(secs "$t0" "$EPOCHREALTIME")
	MBSYNC_FILES=$(find "$d/maildir/$folder/cur" "$d/maildir/$folder/new" -type f | wc -l)
	rm -rf "$d"
}

# row STEP SETUP MEDIAN RUNS RATIO TARGET: one line of the Markdown table.
row() { printf '| %s | %s | %s | %s | %s | %s |\n' "$@"; }
# pt_row TEST: the passthrough_ll line of TEST (grep, ls, rsync), or "skipped".
pt_row() {
	if [ -n "${MED[$1.pt]:-}" ]; then
		row "" "passthrough_ll" "${MED[$1.pt]}" "${ALL[$1.pt]}" \
			"$(ratio "${MED[$1.pt]}" "${MED[$1.local]}")x local" ""
	else
		row "" "passthrough_ll" "skipped" "" "" "(see below)"
	fi
}

bench_mount_one() {
	local n=$1 folder="Bench$1" raw_t=() line i cfg
	local local_dir=$mb_work/local d2=$mb_work/dest2 d3=$mb_work/dest3 d4=$mb_work/dest4
	local s0 s1 served_copy served_grep served_rsync t0 files bytes hwm rss
	local msgs bodies ondemand mb_line notes=() load pt
	unset 'MED[grep.pt]' 'MED[ls.pt]' 'MED[rsync.pt]'
	load=$(cut -d' ' -f1-3 /proc/loadavg)

	say "N=$n: seeding $n messages into alice/$folder"
	scripts/seed alice "$n" "$folder" >/dev/null

	# 1. First full sync. The raw fetch runs first, once untimed: Dovecot's index and the
	# page cache are warm for every contender.
	say "N=$n: raw UID FETCH 1:* BODY.PEEK[] (1 warm-up + $mb_runs runs)"
	scripts/bench.d/raw-fetch.py "$HOST" "$IMAPS" "$CA" alice "$ALICE_PASS" "$folder" >/dev/null
	for ((i = 0; i < mb_runs; i++)); do
		line=$(scripts/bench.d/raw-fetch.py "$HOST" "$IMAPS" "$CA" alice "$ALICE_PASS" "$folder")
		raw_t+=("$(awk '{print $4}' <<<"$line")")
	done
	ALL[raw]="${raw_t[*]}"
	MED[raw]=$(printf '%s\n' "${raw_t[@]}" | median)

	say "N=$n: mailfs first sync on an empty cache"
	rm -rf "${mb_work:?}/cache"
	mkdir "$mb_work/cache"
	cfg=$mb_work/mailfs.conf
	cat >"$cfg" <<-EOF
		cache_dir = $mb_work/cache

		[account alice]
		imap = imaps://$HOST:$IMAPS
		user = alice
		password_cmd = echo $ALICE_PASS
		ca_file = $CA
		poll = 60s
		folders = $folder
	EOF
	mailfs_first_sync "$n" "$cfg"
	msgs=$(status_get messages)
	bodies=$(status_get bodies_cached)
	[ "$msgs" = "$n" ] || notes+=("**.status says messages = $msgs, expected $n.**")
	[ "$T_BODIES" = "$T_SYNC" ] ||
		notes+=("**\`first_sync = done\` came $(secs "$T_SYNC" "$T_BODIES") s before all $n bodies were cached.**")

	if [ "$n" -le "${MAILFS_BENCH_MBSYNC_MAX:-100000}" ]; then
		say "N=$n: mbsync into a fresh Maildir"
		run_mbsync "$folder"
		[ "$MBSYNC_FILES" -eq "$n" ] || notes+=("**mbsync stored $MBSYNC_FILES messages, expected $n.**")
		mb_line=$(row "" "mbsync $(mbsync --version | awk '{print $2}'), fresh Maildir (defaults: FSync yes)" \
			"$T_MBSYNC" "$T_MBSYNC" "$(ratio "$T_MBSYNC" "${MED[raw]}")x raw" "")
	else
		mb_line=$(row "" "mbsync" "skipped" "" "" \
			"N > MAILFS_BENCH_MBSYNC_MAX (${MAILFS_BENCH_MBSYNC_MAX:-100000})")
	fi

	# The second rsync comes first, while the kernel's cache of the mount is cold: the first
	# full rsync of the mount is the first read of every message (its copy becomes the
	# local directory), and the no-change runs follow at once. After a READ the kernel
	# marks the file's atime stale, so the first no-change run is the one that pays for it.
	say "N=$n: first full rsync -a of the mount into a local directory, then $mb_runs no-change runs"
	s0=$(served_now)
	t0=$EPOCHREALTIME
	rsync -a "$mb_mnt/alice/" "$local_dir/"
	FIRST[mfs]=$(secs "$t0" "$EPOCHREALTIME")
	s1=$(served_now)
	served_copy=$(delta "$s0" "$s1")
	measure rsync.mfs 0 rsync_a "$mb_mnt/alice/" "$local_dir/"
	s0=$(served_now)
	served_rsync=$(delta "$s1" "$s0")
	files=$(find "$local_dir/$folder" -type f | wc -l)
	bytes=$(find "$local_dir/$folder" -type f -printf '%s\n' | awk '{s += $1} END {print s + 0}')
	[ "$files" -eq "$n" ] || notes+=("**the mounted folder holds $files files, expected $n.**")

	say "N=$n: the same for the local directory and passthrough_ll"
	t0=$EPOCHREALTIME
	rsync -a "$local_dir/" "$d2/"
	FIRST[local]=$(secs "$t0" "$EPOCHREALTIME")
	measure rsync.local 0 rsync_a "$local_dir/" "$d2/"
	if pt_fits "$n"; then
		pt=1
		start_passthrough "$local_dir" "$n"
		t0=$EPOCHREALTIME
		rsync -a "$mb_ptm/" "$d3/"
		FIRST[pt]=$(secs "$t0" "$EPOCHREALTIME")
		measure rsync.pt 0 rsync_a "$mb_ptm/" "$d3/"
	else
		pt=0
		FIRST[pt]="n/a"
		notes+=("passthrough_ll skipped: it holds one open descriptor per inode the kernel knows, and the hard RLIMIT_NOFILE here, $(ulimit -Hn), is below the $n + 1000 it would need (raising it needs CAP_SYS_RESOURCE).")
	fi

	say "N=$n: grep -r (1 warm-up + $mb_runs runs each)"
	measure grep.local 1 grep_absent "$local_dir/$folder"
	[ "$pt" = 0 ] || measure grep.pt 1 grep_absent "$mb_ptm/$folder"
	s0=$(served_now)
	measure grep.mfs 1 grep_absent "$mb_mnt/alice/$folder"
	s1=$(served_now)
	served_grep=$(delta "$s0" "$s1")

	say "N=$n: ls -l (1 warm-up + $mb_runs runs each)"
	measure ls.local 1 ls_l "$local_dir/$folder"
	[ "$pt" = 0 ] || measure ls.pt 1 ls_l "$mb_ptm/$folder"
	measure ls.mfs 1 ls_l "$mb_mnt/alice/$folder"

	hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$mb_mfs_pid/status")
	rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$mb_mfs_pid/status")
	ondemand=$(status_get ondemand_bytes)
	stop_passthrough
	stop_mailfs

	# The same cache with an outbox (an smtp URL): the mount is read-write, as users run
	# it; closes are seen through inotify (.status closes = inotify) so no close costs a
	# FLUSH. Measured like the read-only mount above: a first full rsync into an empty
	# directory, then the no-change runs, then grep and ls -l.
	say "N=$n: the same cache with an outbox (read-write mount): rsync, grep, ls -l"
	printf 'smtp = smtp://%s:%s\n' "$HOST" "$SUBMISSION" >>"$cfg"
	build-bench/mailfs -f -o config="$cfg" "$mb_mnt" >"$mb_work/mailfs-rw.log" 2>&1 &
	mb_mfs_pid=$!
	for ((i = 0; i < 300; i++)); do
		[ -d "$mb_mnt/alice/outbox" ] && break
		sleep 0.05
	done
	[ -d "$mb_mnt/alice/outbox" ] || die "the read-write mount did not come up"
	for ((i = 0; i < 100; i++)); do
		grep -q '^closes *= inotify' "$mb_mnt/.status" && break
		sleep 0.05
	done
	say "closes seen by: $(sed -n 's/^closes *= //p' "$mb_mnt/.status")"
	rsync -a "$mb_mnt/alice/$folder/" "$d4/"
	measure rsync.rw 0 rsync_a "$mb_mnt/alice/$folder/" "$d4/"
	measure grep.rw 1 grep_absent "$mb_mnt/alice/$folder"
	measure ls.rw 1 ls_l "$mb_mnt/alice/$folder"
	stop_mailfs

	local hwm_mib sr gr lr rr rr1 gro lro rro rro1
	hwm_mib=$(awk -v k="$hwm" 'BEGIN { printf "%.1f", k / 1024 }')
	sr=$(ratio "$T_BODIES" "${MED[raw]}")
	gr=$(ratio "${MED[grep.mfs]}" "${MED[grep.local]}")
	lr=$(ratio "${MED[ls.mfs]}" "${MED[ls.local]}")
	rr=$(ratio "${MED[rsync.mfs]}" "${MED[rsync.local]}")
	rr1=$(ratio "${ALL[rsync.mfs]%% *}" "${ALL[rsync.local]%% *}")
	gro=$(ratio "${MED[grep.rw]}" "${MED[grep.local]}")
	lro=$(ratio "${MED[ls.rw]}" "${MED[ls.local]}")
	rro=$(ratio "${MED[rsync.rw]}" "${MED[rsync.local]}")
	rro1=$(ratio "${ALL[rsync.rw]%% *}" "${ALL[rsync.local]%% *}")

	{
		printf '\n### scripts/bench mount: %d messages (alice/%s, %s)\n\n' "$n" "$folder" "$(mbytes "$bytes")"
		printf '%s (load average before this size: %s); mailfs %s; %s; Dovecot %s over TLS on %s:%s; libfuse %s.\n' \
			"$(nproc) CPUs, Linux $(uname -r)" "$load" \
			"$(git describe --always --dirty 2>/dev/null || echo '?')" \
			"$(awk '/^MemTotal:/ {printf "%.0f GB RAM", $2 / 1048576}' /proc/meminfo)" \
			"$(dovecot --version | awk '{print $1}')" "$HOST" "$IMAPS" "$(pkg-config --modversion fuse3)"
		printf 'Warm page cache everywhere (never dropped). grep and ls -l: 1 untimed warm-up run, then %d timed runs; the second rsync: %d runs right after a first full rsync into an empty directory (the first of them is the real second rsync). Commands run with LC_ALL=C. "local" is an rsync -a copy of the mounted account on %s; "passthrough_ll" is that copy through libfuse %s'"'"'s example built with gcc -O2, run as %s%s (otherwise its defaults: multi-threaded, xattr off, no writeback; cache=always: 86400 s entry/attr timeouts, keep_cache, cache_readdir).\n\n' \
			"$mb_runs" "$mb_runs" "$(df --output=fstype "$mb_work" | tail -1)" \
			"$(pkg-config --modversion fuse3)" "\`passthrough_ll -f -o source=LOCAL,cache=always MNT\`" "$( [ "$pt" = 0 ] || echo " with \`ulimit -n $mb_pt_nofile\`, since it holds a descriptor per inode")"
		row "step" "setup" "median s" "all runs (s)" "ratio" "target"
		row "---" "---" "---:" "---" "---:" "---"
		row "1. first full sync" "raw \`UID FETCH 1:* BODY.PEEK[]\`, one TLS session, discarded" \
			"${MED[raw]}" "${ALL[raw]}" "1.00" ""
		row "" "mailfs: start on an empty cache until \`first_sync = done\`" "$T_SYNC" "$T_SYNC" \
			"$(ratio "$T_SYNC" "${MED[raw]}")x raw" ""
		row "" "mailfs: start on an empty cache until \`bodies_cached = $n\`" "$T_BODIES" "$T_BODIES" \
			"${sr}x raw" "<= 1.5x raw: $(verdict "$sr" 1.5)"
		printf '%s\n' "$mb_line"
		row "2. \`grep -r $mb_word\`" "local directory" "${MED[grep.local]}" "${ALL[grep.local]}" "1.00" ""
		pt_row grep
		row "" "mailfs (no outbox: read-only mount)" "${MED[grep.mfs]}" "${ALL[grep.mfs]}" "${gr}x local" "<= 1.2x local: $(verdict "$gr" 1.2)"
		row "" "mailfs with an outbox (read-write)" "${MED[grep.rw]}" "${ALL[grep.rw]}" "${gro}x local" "<= 1.2x local: $(verdict "$gro" 1.2)"
		row "3. \`ls -l\` of the folder" "local directory" "${MED[ls.local]}" "${ALL[ls.local]}" "1.00" ""
		pt_row ls
		row "" "mailfs (no outbox: read-only mount)" "${MED[ls.mfs]}" "${ALL[ls.mfs]}" "${lr}x local" "<= 1.5x local: $(verdict "$lr" 1.5)"
		row "" "mailfs with an outbox (read-write)" "${MED[ls.rw]}" "${ALL[ls.rw]}" "${lro}x local" "<= 1.5x local: $(verdict "$lro" 1.5)"
		row "4. second \`rsync -a\`, no change" "local directory" "${MED[rsync.local]}" "${ALL[rsync.local]}" "1.00" ""
		pt_row rsync
		row "" "mailfs (no outbox: read-only mount)" "${MED[rsync.mfs]}" "${ALL[rsync.mfs]}" "${rr}x local" "<= 1.3x local: $(verdict "$rr" 1.3)"
		row "" "mailfs: the first of these runs alone (vs local's first)" "${ALL[rsync.mfs]%% *}" "" \
			"${rr1}x local" "<= 1.3x local: $(verdict "$rr1" 1.3)"
		row "" "mailfs: message bytes served during these $mb_runs rsync runs" "$served_rsync" "" "" \
			"0: $( [ "$served_rsync" = 0 ] && echo met || echo '**MISSED**')"
		row "" "mailfs with an outbox (read-write), the folder only" "${MED[rsync.rw]}" "${ALL[rsync.rw]}" "${rro}x local" "<= 1.3x local: $(verdict "$rro" 1.3)"
		row "" "mailfs with an outbox: the first of these runs alone" "${ALL[rsync.rw]%% *}" "" \
			"${rro1}x local" "<= 1.3x local: $(verdict "$rro1" 1.3)"
		row "5. daemon peak RSS (VmHWM)" "mailfs, at the end" "$hwm_mib MiB" "" "" \
			"<= 64 MiB: $(verdict "$hwm_mib" 64)"
		printf '\nmailfs phases seen in .status during the first sync (s after start): %s. (.status is at most 20 ms old when read and is polled every 50 ms, so the mailfs sync times include up to 0.07 s of that lag.)\n' "$PHASES"
		printf '\nAlso measured: mailfs CPU time during the first sync: %s. First rsync -a into an empty directory: of the mount %s s (cold kernel cache: every body read once from the mailfs cache; served_bytes +%s), of the local directory %s s, through passthrough_ll %s. served_bytes during the %d grep runs through mailfs: +%s; daemon VmRSS at the end %s MiB; .status at the end: messages = %s, bodies_cached = %s, ondemand_bytes = %s.\n' \
			"$SYNC_CPU" "${FIRST[mfs]}" "$served_copy" "${FIRST[local]}" "$( [ "$pt" = 0 ] && echo skipped || echo "${FIRST[pt]} s")" $((mb_runs + 1)) "$served_grep" \
			"$(awk -v k="$rss" 'BEGIN { printf "%.1f", k / 1024 }')" "$msgs" "$bodies" "${ondemand:-n/a}"
		if [ ${#notes[@]} -gt 0 ]; then printf '\n%s\n' "${notes[@]}"; fi
	}

	mb_summary+=("$(printf '| %d | %s | %s | %s | %s | %s | %s |' "$n" "${sr}x" "${gr}x (with outbox ${gro}x)" "${lr}x (with outbox ${lro}x)" "${rr}x (first run ${rr1}x; with outbox ${rro}x, first ${rro1}x)" \
		"$served_rsync" "$hwm_mib MiB")")

	rm -rf "${mb_work:?}/cache" "$local_dir" "$d2" "$d3" "$d4"
}

bench_mount() {
	local sizes=("$@") n
	[ ${#sizes[@]} -gt 0 ] || sizes=(10000 100000)
	for n in "${sizes[@]}"; do
		[[ "$n" =~ ^[1-9][0-9]*$ ]] || die "N must be a positive number, got '$n'"
	done
	mb_runs=${MAILFS_BENCH_RUNS:-3}
	[[ "$mb_runs" =~ ^[1-9][0-9]*$ ]] || die "MAILFS_BENCH_RUNS must be a positive number"
	export LC_ALL=C # same grep, ls and sort for every contender; "." in $EPOCHREALTIME
	[ "$(id -u)" -eq 0 ] || die "must run as root (scripts/seed, test servers)"
	command -v mbsync >/dev/null || die "mbsync not found (package isync; scripts/deps)"

	build
	mb_start mount
	mb_ptm=$mb_work/pt
	mkdir -p "$mb_ptm"
	build_passthrough

	for n in "${sizes[@]}"; do
		bench_mount_one "$n"
	done
	if [ ${#sizes[@]} -gt 1 ]; then
		printf '\n### scripts/bench mount: summary (ratios of medians)\n\n'
		printf '| messages | all bodies cached / raw | grep -r / local | ls -l / local | 2nd rsync / local (median; first run) | 2nd rsync bytes served | peak RSS |\n'
		printf '|---:|---:|---:|---:|---:|---:|---:|\n'
		printf '%s\n' "${mb_summary[@]}"
		printf '| target | <= 1.5x | <= 1.2x | <= 1.5x | <= 1.3x | 0 | <= 64 MiB |\n'
	fi
}
