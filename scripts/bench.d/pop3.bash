# shellcheck shell=bash
# `scripts/bench pop3`, sourced by scripts/bench (which documents it): the first full
# download of N messages of a POP3 maildrop by a fresh mailfs mount (pop3s://, empty
# cache, until .status says first_sync = done and bodies_cached = N) against fetchmail
# (--keep --all over pop3s, TLS without its certificate check: fetchmail matches only DNS
# names against 127.0.0.1, and the test certificate's is localhost; delivering into one BSMTP file: no MDA process per message),
# same server, same run, interleaved; and the daemon's peak RSS (VmHWM) for each N, to
# show it flat in the message count. Relies on scripts/bench's build(), start_servers()
# and median().

bp_runs=${MAILFS_BENCH_RUNS:-3}

bp_now() { date +%s.%N; }

# bp_mailfs N WORK: one mailfs first sync; prints "SECONDS VMHWM_KB"
bp_mailfs() {
	local n=$1 w=$2 t0 t1 pid rss
	rm -rf "$w/cache" "$w/mnt"
	mkdir -p "$w/mnt"
	cat >"$w/config" <<EOC
cache_dir = $w/cache
[account alice]
pop3 = pop3s://127.0.0.1:$POP3S
user = alice
password_cmd = echo $ALICE_PASS
ca_file = $CA
EOC
	t0=$(bp_now)
	build-bench/mailfs -f -o config="$w/config" "$w/mnt" >>"$w/mailfs.log" 2>&1 &
	pid=$!
	until awk -v n="$n" '/^first_sync/ {d = ($3 == "done")} /^bodies_cached/ {b = ($3 == n)}
		END {exit !(d && b)}' "$w/mnt/.status" 2>/dev/null; do
		kill -0 "$pid" 2>/dev/null || { tail -5 "$w/mailfs.log" >&2; return 1; }
		sleep 0.05
	done
	t1=$(bp_now)
	rss=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
	fusermount3 -u "$w/mnt"
	wait "$pid" 2>/dev/null || true
	echo "$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}') $rss"
}

# bp_fetchmail WORK: one fetchmail download of everything (kept); prints SECONDS
bp_fetchmail() {
	local w=$1 t0 t1
	rm -f "$w/fm.bsmtp" "$w/fetchids"
	cat >"$w/fetchmailrc" <<EOC
set no bouncemail
set idfile "$w/fetchids"
poll localhost via 127.0.0.1 service $POP3S protocol POP3 user alice password "$ALICE_PASS"
	ssl sslcertfile "$CA" no sslcertck keep fetchall bsmtp "$w/fm.bsmtp"
EOC
	chmod 600 "$w/fetchmailrc"
	t0=$(bp_now)
	HOME=$w fetchmail -f "$w/fetchmailrc" --nodetach --silent >>"$w/fetchmail.log" 2>&1 || {
		[ $? -eq 1 ] || { tail -5 "$w/fetchmail.log" >&2; return 1; }; }
	t1=$(bp_now)
	awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}'
}

bench_pop3() {
	local sizes=("$@")
	[ ${#sizes[@]} -gt 0 ] || sizes=(1000 10000)
	command -v fetchmail >/dev/null || die "fetchmail is not installed (scripts/deps)"
	start_servers
	local have=0 n w
	bp_work=$(mktemp -d /tmp/mailfs-bench-pop3.XXXXXX)
	w=$bp_work
	trap 'fusermount3 -u "$bp_work/mnt" 2>/dev/null; scripts/test-servers stop "$servers" >/dev/null 2>&1 || true; rm -rf "$servers" "$bp_work"; true' EXIT
	for n in "${sizes[@]}"; do
		echo "seeding alice's INBOX up to $n messages ..." >&2
		[ "$n" -gt "$have" ] && scripts/seed alice $((n - have)) >/dev/null
		have=$n
		bp_fetchmail "$w" >/dev/null # warm Dovecot's index and the page cache
		local mt=() ft=() rs=() line
		for _ in $(seq "$bp_runs"); do
			line=$(bp_mailfs "$n" "$w") || die "mailfs run failed"
			mt+=("${line% *}")
			rs+=("${line#* }")
			ft+=("$(bp_fetchmail "$w")") || die "fetchmail run failed"
		done
		local m f r bytes
		m=$(printf '%s\n' "${mt[@]}" | median)
		f=$(printf '%s\n' "${ft[@]}" | median)
		r=$(printf '%s\n' "${rs[@]}" | median)
		bytes=$(du -sb "$MAILDIR_ALICE/cur" | cut -f1)
		printf '\nbench pop3: %d messages (%.1f MB), pop3s, first download, median of %d runs\n' \
			"$n" "$(awk -v b="$bytes" 'BEGIN {print b / 1e6}')" "$bp_runs"
		printf '  %-52s %8s\n' "what" "seconds"
		printf '  %-52s %8.3f\n' "mailfs: empty cache -> first_sync done, all bodies" "$m"
		printf '  %-52s %8.3f\n' "fetchmail --keep --all (BSMTP file)" "$f"
		printf '  ratio mailfs / fetchmail: %s  (target <= 0.5)\n' \
			"$(awk -v a="$m" -v b="$f" 'BEGIN {printf "%.2f", a / b}')"
		printf '  mailfs peak RSS (VmHWM): %d KiB\n' "$r"
		printf '  all runs: mailfs %s; fetchmail %s; RSS %s\n' "${mt[*]}" "${ft[*]}" "${rs[*]}"
	done
	# Not left to the EXIT trap alone: stop the servers and remove the work now.
	scripts/test-servers stop "$servers" >/dev/null 2>&1 || true
	rm -rf "$servers" "$bp_work"
	trap - EXIT
	return 0
}
