#!/usr/bin/env bash
# Integration tests of the net/ layer and `mailfs --check-config` against the real Dovecot
# started by scripts/test-servers, plus a scripted fake server for what no real server sends.
#
#   test-imap.sh IMAP_TOOL MAILFS          (MAILFS_SERVER_DIR must name the servers' DIR)
#
# Every message of every folder of alice is fetched through the IMAP client and compared
# byte for byte with Dovecot's Maildir files; TLS failures must be errors and never lead
# to a plaintext login.
set -euo pipefail

tool=$1
mailfs=$2
. "$(dirname "$0")/lib.sh"
lib_init it

imap() { "$tool" -h "$HOST" -c "$CA" "$@"; }
alice() { imap -p "$IMAPS" -s -u alice -w "$ALICE_PASS" "$@"; }

# --- LIST: seeded folders with their UTF-8 names --------------------------------------
if alice list >"$work/list" 2>"$work/err"; then
	for f in INBOX Archive/2024 Archive/2025 "With Space" Entwürfe 日本語 Sent Drafts Trash; do
		if cut -f2 "$work/list" | grep -qxF -- "$f"; then ok "LIST has $f"; else bad "LIST lacks $f"; fi
	done
	if grep -qP '^Entw&APw-rfe\tEntwürfe\t' "$work/list"; then ok "Entwürfe decoded from Entw&APw-rfe"
	else bad "Entwürfe not decoded from modified UTF-7"; fi
	if grep -qP '^&ZeVnLIqe-\t日本語\t' "$work/list"; then ok "日本語 decoded from &ZeVnLIqe-"
	else bad "日本語 not decoded from modified UTF-7"; fi
else
	bad "LIST failed: $(cat "$work/err")"
fi

# --- every message of every folder, byte for byte --------------------------------------
# Dovecot keeps Maildir with LAYOUT=fs: INBOX is the root, "A/B" is the directory A/B
# (raw modified UTF-7 name).
total=0
while IFS=$'\t' read -r raw name _flags; do
	dir=""
	[ "$raw" = INBOX ] || dir=$raw
	if [ ! -d "$MAILDIR_ALICE/$dir" ]; then
		# Dovecot creates a special-use folder's directory only when it is first used.
		n=$(alice status "$name" | awk '{print $2}')
		if [ "$n" = 0 ]; then ok "$name: empty, not created on disk yet"; else bad "no Maildir folder for $name ($dir)"; fi
		continue
	fi
	out="$work/fetch/$raw"
	mkdir -p "$out"
	if ! alice -b 100 -i 8 fetch "$name" "$out" >"$work/fetch.out" 2>"$work/err"; then
		bad "fetch $name: $(cat "$work/err")"
		continue
	fi
	if res=$("$here/maildir-compare.py" "$MAILDIR_ALICE" "$dir" "$out" 2>&1); then
		ok "fetch $name: $res"
		n=$(find "$out" -name '*.eml' | wc -l)
		total=$((total + n))
	else
		bad "fetch $name differs from the Maildir: $res"
	fi
done <"$work/list"
inbox_n=$(find "$work/fetch/INBOX" -name '*.eml' 2>/dev/null | wc -l)
big=$(find "$work/fetch" -name '*.eml' -size +1M | wc -l)
if [ "$inbox_n" -gt 0 ] && [ "$big" -gt 0 ]; then ok "fetched $total messages ($big over 1 MB)"
else bad "seeded messages missing: INBOX has $inbox_n fetched, $big over 1 MB"; fi

# --- same over STARTTLS, pipelining off and on -----------------------------------------
if imap -p "$IMAP" -u alice -w "$ALICE_PASS" -b 7 -i 1 fetch-discard INBOX >"$work/st1" 2>"$work/err" &&
	imap -p "$IMAP" -u alice -w "$ALICE_PASS" -b 50 -i 32 fetch-discard INBOX >"$work/st2" 2>>"$work/err"; then
	b1=$(awk '{print $4}' "$work/st1"); b2=$(awk '{print $4}' "$work/st2")
	want=$(cat "$work"/fetch/INBOX/*.eml | wc -c)
	if [ "$b1" = "$want" ] && [ "$b2" = "$want" ]; then ok "STARTTLS fetch, 1 and 32 in flight: $want bytes"
	else bad "STARTTLS fetch byte counts $b1 / $b2, expected $want"; fi
else
	bad "STARTTLS fetch failed: $(cat "$work/err")"
fi

# --- partial fetch of a large message --------------------------------------------------
bigfile=$(find "$work/fetch/INBOX" -name '*.eml' -size +1M | head -1)
if [ -n "$bigfile" ]; then
	uid=$(basename "$bigfile" .eml)
	if alice head INBOX "$uid" 4096 >"$work/head" 2>"$work/head.err" &&
		cmp -s "$work/head" <(head -c 4096 "$bigfile"); then
		rx=$(awk '/received/ {print $2}' "$work/head.err")
		if [ "$rx" -lt 65536 ]; then ok "partial fetch: 4096 bytes of a $(stat -c %s "$bigfile")-byte message, $rx bytes received"
		else bad "partial fetch received $rx bytes"; fi
	else
		bad "partial fetch of UID $uid wrong: $(cat "$work/head.err")"
	fi
else
	bad "no large message to test a partial fetch"
fi

# --- wrong password --------------------------------------------------------------------
if imap -p "$IMAPS" -s -u alice -w wrong login >/dev/null 2>"$work/err"; then bad "wrong password accepted"
elif grep -q "refused" "$work/err"; then ok "wrong password refused: $(cat "$work/err")"
else bad "wrong password: unexpected error $(cat "$work/err")"; fi

# --- TLS negative cases: each an error, never a login ----------------------------------
expect_tls_failure() { # description, pattern, args...
	local what=$1 pattern=$2
	shift 2
	if "$tool" -h "$HOST" -u alice -w "$ALICE_PASS" "$@" login >/dev/null 2>"$work/err"; then
		bad "$what: connection accepted"
	elif grep -qi -- "$pattern" "$work/err"; then
		ok "$what refused: $(head -c 200 "$work/err")"
	else
		bad "$what: unexpected error: $(cat "$work/err")"
	fi
}
expect_tls_failure "self-signed certificate" "certificate" -p "$IMAPS_SELFSIGNED" -s -c "$CA"
expect_tls_failure "wrong host name" "certificate" -p "$IMAPS_WRONGHOST" -s -c "$CA"
expect_tls_failure "untrusted CA" "certificate" -p "$IMAPS" -s -c "$OTHER_CA"
expect_tls_failure "system store does not know the test CA" "certificate" -p "$IMAPS" -s
expect_tls_failure "STARTTLS port, untrusted CA" "certificate" -p "$IMAP" -c "$OTHER_CA"
# The explicit opt-out works, with a warning.
if "$tool" -h "$HOST" -u alice -w "$ALICE_PASS" -p "$IMAPS_SELFSIGNED" -s -k login >/dev/null 2>"$work/err" &&
	grep -q "verification is OFF" "$work/err"; then ok "tls_verify = no connects, with a warning"
else bad "tls_verify = no: $(cat "$work/err")"; fi

# --- scripted hostile server -------------------------------------------------------------
fake() { fake_start fake-imap.py "$1"; }
fake nostarttls
if "$tool" -h 127.0.0.1 -p "$fport" -u alice -w secret login >/dev/null 2>"$work/err"; then
	bad "server without STARTTLS: logged in"
elif grep -q "does not offer STARTTLS" "$work/err" && ! grep -qiE 'LOGIN|AUTHENTICATE|secret' "$flog"; then
	ok "server without STARTTLS refused, no credentials sent"
else
	bad "server without STARTTLS: $(cat "$work/err"); server saw: $(cat "$flog")"
fi
fake preauth
if "$tool" -h 127.0.0.1 -p "$fport" -u alice -w secret login >/dev/null 2>"$work/err"; then
	bad "plaintext PREAUTH accepted"
elif grep -q "PREAUTH" "$work/err"; then ok "plaintext PREAUTH refused"
else bad "plaintext PREAUTH: $(cat "$work/err")"; fi
for mode in hugeliteral longline garbage deepnest badnumber bye; do
	fake "$mode"
	set +e
	timeout 60 "$tool" -h 127.0.0.1 -p "$fport" -P -u alice -w secret list >/dev/null 2>"$work/err"
	rc=$?
	set -e
	if [ "$rc" = 1 ] && grep -q '^imap-tool: .*[a-z]' "$work/err"; then ok "hostile server ($mode): $(grep '^imap-tool' "$work/err" | head -c 200)"
	else bad "hostile server ($mode): exit status $rc: $(head -c 300 "$work/err")"; fi
done

# --- mailfs --check-config against the running servers -----------------------------------
cat >"$work/config" <<EOF
# written by test-imap.sh
cache_dir = $work/cache
[account alice]
imap = imaps://$HOST:$IMAPS
user = alice
password_cmd = printf '%s\n' '$ALICE_PASS'
ca_file = $CA
[account bob]
imap = imap://localhost:$IMAP
smtp = smtp://localhost:$SUBMISSION
user = bob
password_cmd = echo $BOB_PASS
ca_file = $CA
EOF
if "$mailfs" --check-config -o config="$work/config" >"$work/check" 2>"$work/err"; then
	ok "check-config: exit 0"
	# Every folder of alice with the count Dovecot reports.
	while IFS=$'\t' read -r raw name _flags; do
		want=$(imap -p "$IMAPS" -s -u alice -w "$ALICE_PASS" status "$name" | awk '{print $2}')
		if awk -v n="$name" -v w="$want" '/^account bob/ {exit} index($0, "    " n " ") == 1 && $0 ~ (" " w " messages") {f=1} END {exit !f}' "$work/check"; then
			ok "check-config lists $name with $want messages"
		else
			bad "check-config: $name with $want messages missing"
		fi
	done <"$work/list"
else
	bad "check-config failed: $(cat "$work/err")"
	cat "$work/check"
fi
sed -i "s/^password_cmd = echo $BOB_PASS/password_cmd = echo wrong/" "$work/config"
if "$mailfs" --check-config -o config="$work/config" >"$work/check" 2>"$work/err"; then
	bad "check-config with a wrong password: exit 0"
elif [ "$(wc -l <"$work/err")" = 1 ] && grep -q "account 'bob'" "$work/err" && grep -q "^  ok" "$work/check"; then
	ok "check-config with a wrong password: exit 1, $(cat "$work/err")"
else
	bad "check-config with a wrong password: $(cat "$work/err")"
fi

finish
