#!/usr/bin/env bash
# Integration tests of the net/ SMTP client against the real Postfix started by
# scripts/test-servers, plus a scripted fake server for what Postfix never does.
#
#   test-smtp.sh SMTP_TOOL          (MAILFS_SERVER_DIR must name the servers' DIR)
#
# Messages go from alice to bob over submission (STARTTLS) and submissions (implicit
# TLS); each must arrive in bob's Maildir with its body byte for byte as sent (line ends
# normalised as Postfix stores them). Refusals must be reported with the server's words
# and the right class; TLS failures must be errors, never a plaintext fallback; the
# password never appears in a trace.
set -euo pipefail

tool=$1
. "$(dirname "$0")/lib.sh"
lib_init smtp-it

smtp() { timeout 120 "$tool" -h "$HOST" -c "$CA" "$@"; }
alice_sub() { smtp -p "$SUBMISSION" -u alice -w "$ALICE_PASS" "$@"; }
alice_subs() { smtp -p "$SUBMISSIONS" -s -u alice -w "$ALICE_PASS" "$@"; }

# A message whose body has lines starting with ".", a lone ".", an 8-bit line, mixed
# line ends and no final newline.
make_msg() { # file token
	printf 'From: alice@example.test\r\nTo: bob@example.test\r\nSubject: smtp test %s\r\n\r\n' "$2" >"$1"
	printf 'Body of %s\r\n.leading dot\n..two dots\r\n.\r\n\nGr\xc3\xbc\xc3\x9fe, 8-bit line\n. dot space\nlast line without newline' "$2" >>"$1"
}

# The delivered copy of the message carrying `token` in bob's Maildir, waiting up to 10 s.
find_delivered() { # token -> path on stdout
	for _ in $(seq 100); do
		f=$(grep -rlF -- "smtp test $1" "$MAILDIR_BOB/new" "$MAILDIR_BOB/cur" 2>/dev/null | head -1 || true)
		if [ -n "$f" ]; then echo "$f"; return 0; fi
		sleep 0.1
	done
	return 1
}

# The body as sent (after the header block) must equal the delivered body, with CRLF
# stored as LF and a final newline added.
same_body() { # sent delivered
	python3 - "$1" "$2" <<'EOF'
import sys
sent = open(sys.argv[1], "rb").read()
got = open(sys.argv[2], "rb").read()
def body(b):
    b = b.replace(b"\r\n", b"\n")
    return b[b.index(b"\n\n") + 2:]
want = body(sent)
if not want.endswith(b"\n"):
    want += b"\n"
if body(got) != want:
    print("sent body %r\ndelivered body %r" % (want, body(got)))
    sys.exit(1)
EOF
}

check_arrival() { # description file token
	local f
	if f=$(find_delivered "$3"); then
		if res=$(same_body "$2" "$f"); then ok "$1: delivered to bob, body identical"
		else bad "$1: body differs: $res"; fi
	else
		bad "$1: not in bob's Maildir after 10 s"
	fi
}

# --- submission (STARTTLS) and submissions (implicit TLS) ------------------------------
tok=$RANDOM-$$-a
make_msg "$work/a.eml" "$tok"
if alice_sub -S -8 send alice@example.test bob@example.test "$work/a.eml" >"$work/out" 2>"$work/err" &&
	grep -q '^result OK stage end of data reply 250 ' "$work/out"; then
	ok "submission (STARTTLS): $(head -1 "$work/out")"
	check_arrival "submission" "$work/a.eml" "$tok"
else
	bad "submission send failed: $(cat "$work/out" "$work/err")"
fi
tok=$RANDOM-$$-b
make_msg "$work/b.eml" "$tok"
if alice_subs -m login -8 send alice@example.test bob@example.test "$work/b.eml" >"$work/out" 2>"$work/err" &&
	grep -q '^result OK' "$work/out"; then
	ok "submissions (implicit TLS, AUTH LOGIN): $(head -1 "$work/out")"
	check_arrival "submissions" "$work/b.eml" "$tok"
else
	bad "submissions send failed: $(cat "$work/out" "$work/err")"
fi

# --- two messages over one session -------------------------------------------------------
t1=$RANDOM-$$-c1 t2=$RANDOM-$$-c2
make_msg "$work/c1.eml" "$t1"
make_msg "$work/c2.eml" "$t2"
if alice_sub -t -8 send alice@example.test bob@example.test "$work/c1.eml" "$work/c2.eml" >"$work/out" 2>"$work/err" &&
	[ "$(grep -c '^result OK' "$work/out")" = 2 ]; then
	sessions=$(grep -c '< 220 .*ESMTP' "$work/err" || true)
	if [ "$sessions" = 1 ]; then ok "two messages accepted over one session"
	else bad "two messages: $sessions greetings in the trace"; fi
	check_arrival "session message 1" "$work/c1.eml" "$t1"
	check_arrival "session message 2" "$work/c2.eml" "$t2"
else
	bad "two messages over one session: $(cat "$work/out" "$work/err")"
fi

# --- the password never reaches a trace -------------------------------------------------
plain_b64=$(printf '\0alice\0%s' "$ALICE_PASS" | base64 -w0)
pass_b64=$(printf '%s' "$ALICE_PASS" | base64 -w0)
for m in plain login; do
	if alice_sub -t -m "$m" login >/dev/null 2>"$work/err" && grep -q "AUTH $(echo $m | tr a-z A-Z)" "$work/err"; then
		if grep -qF -e "$ALICE_PASS" -e "$plain_b64" -e "$pass_b64" "$work/err"; then bad "AUTH $m: the password is in the trace"
		elif grep -q '<redacted>' "$work/err"; then ok "AUTH $m: trace redacted"
		else bad "AUTH $m: no redaction marker in the trace"; fi
	else
		bad "AUTH $m with trace: $(cat "$work/err")"
	fi
done

# --- refusals ---------------------------------------------------------------------------
tok=$RANDOM-$$-r
make_msg "$work/r.eml" "$tok"
if alice_sub send alice@example.test reject@example.test "$work/r.eml" >"$work/out" 2>"$work/err"; then
	bad "reject@example.test accepted"
elif grep -q '^result PERM stage RCPT TO reply 550 5.1.1 .*recipient rejected' "$work/out" &&
	grep -q 'PERM: .*RCPT TO: 550 5.1.1' "$work/err"; then
	ok "reject@example.test: $(head -1 "$work/out")"
else
	bad "reject@example.test: $(cat "$work/out" "$work/err")"
fi

tok=$RANDOM-$$-m
make_msg "$work/m.eml" "$tok"
if alice_sub send alice@example.test bob@example.test,reject@example.test "$work/m.eml" >"$work/out" 2>"$work/err" &&
	grep -q '^result OK .* accepted 1/2$' "$work/out" &&
	grep -q '^rcpt bob@example.test 250 ' "$work/out" &&
	grep -q '^rcpt reject@example.test 550 5.1.1 .*recipient rejected' "$work/out"; then
	ok "mixed envelope: accepted for bob, reject@ reported refused"
	check_arrival "mixed envelope" "$work/m.eml" "$tok"
else
	bad "mixed envelope: $(cat "$work/out" "$work/err")"
fi

# A message over the 20 MiB limit: refused before sending when its size is announced,
# and by the server at the end of data when it is not.
python3 -c '
import sys
sys.stdout.buffer.write(b"From: alice@example.test\r\nTo: bob@example.test\r\nSubject: big\r\n\r\n")
sys.stdout.buffer.write(b"a line of a message that is far too big for the server, seventy-six bytes.\r\n" * 290000)
' >"$work/big.eml"
if alice_sub -S send alice@example.test bob@example.test "$work/big.eml" >"$work/out" 2>"$work/err"; then
	bad "oversized message (size announced) accepted"
elif grep -q "^result PERM stage SIZE reply 0 - message size [0-9]* exceeds the server's limit 20971520" "$work/out"; then
	ok "oversized message refused before sending: $(cut -c1-110 "$work/out" | head -1)"
else
	bad "oversized message (size announced): $(cat "$work/out" "$work/err")"
fi
if alice_sub send alice@example.test bob@example.test "$work/big.eml" >"$work/out" 2>"$work/err"; then
	bad "oversized message (size unknown) accepted"
elif grep -q '^result PERM stage \(end of data\|DATA\) reply 552 ' "$work/out"; then
	ok "oversized message refused by the server: $(head -1 "$work/out")"
else
	bad "oversized message (size unknown): $(cat "$work/out" "$work/err")"
fi
rm -f "$work/big.eml"

# --- wrong password ----------------------------------------------------------------------
if smtp -p "$SUBMISSION" -u alice -w wrong login >/dev/null 2>"$work/err"; then bad "wrong password accepted"
elif grep -q '^smtp-tool: AUTH: .*refused.*535' "$work/err"; then ok "wrong password: $(cat "$work/err")"
else bad "wrong password: unexpected error $(cat "$work/err")"; fi

# --- TLS negative cases: each an error, never a login -------------------------------------
expect_tls_failure() { # description, args...
	local what=$1
	shift
	if timeout 60 "$tool" -h "$HOST" -u alice -w "$ALICE_PASS" "$@" login >/dev/null 2>"$work/err"; then
		bad "$what: connection accepted"
	elif grep -qi -- "certificate" "$work/err"; then
		ok "$what refused: $(head -c 200 "$work/err")"
	else
		bad "$what: unexpected error: $(cat "$work/err")"
	fi
}
expect_tls_failure "self-signed certificate" -p "$SMTPS_SELFSIGNED" -s -c "$CA"
expect_tls_failure "wrong host name" -p "$SMTPS_WRONGHOST" -s -c "$CA"
expect_tls_failure "untrusted CA" -p "$SUBMISSIONS" -s -c "$OTHER_CA"
expect_tls_failure "STARTTLS, untrusted CA" -p "$SUBMISSION" -c "$OTHER_CA"

# --- scripted hostile server --------------------------------------------------------------
fake() { fake_start fake-smtp.py "$1"; }
ftool() { # args... -> rc in frc, output in work/out and work/err
	set +e
	timeout 60 "$tool" -h 127.0.0.1 -p "$fport" -T 5000 "$@" >"$work/out" 2>"$work/err"
	frc=$?
	set -e
}
make_msg "$work/f.eml" fake

fake nostarttls
ftool -u alice -w secret send a@example.test b@example.test "$work/f.eml"
if [ "$frc" = 1 ] && grep -q 'does not offer STARTTLS' "$work/err" && ! grep -qiE '^(AUTH|MAIL)' "$flog"; then
	ok "server without STARTTLS refused, no AUTH or MAIL sent"
else
	bad "server without STARTTLS: rc $frc: $(cat "$work/err"); server saw: $(cat "$flog")"
fi

fake rcpt4xx
ftool -P send a@example.test x@example.test,y@example.test "$work/f.eml"
if [ "$frc" = 1 ] && grep -q '^result TEMP stage RCPT TO reply 451 4.3.0 try again later accepted 0/2' "$work/out" &&
	grep -q '^rcpt y@example.test 550 ' "$work/out" && grep -q '^RSET' "$flog"; then
	ok "4xx and 5xx on RCPT: temporary, RSET sent"
else
	bad "4xx on RCPT: rc $frc: $(cat "$work/out" "$work/err")"
fi

fake data354
ftool -P send a@example.test x@example.test "$work/f.eml"
if [ "$frc" = 1 ] && grep -q '^result PERM stage RCPT TO reply 550 ' "$work/out" &&
	[ "$(sed -n '/^DATA/,$p' "$flog" | tr -d '\r' | sed -n 2p)" = . ] &&
	! grep -q 'Body of' "$flog"; then
	ok "354 after every RCPT refused: ended with a lone '.', no body sent"
else
	bad "354 after refused RCPTs: rc $frc: $(cat "$work/out" "$work/err"); server saw: $(cat "$flog")"
fi

fake close421
ftool -P send a@example.test x@example.test "$work/f.eml" "$work/f.eml"
if [ "$frc" = 1 ] && grep -q '^result TEMP stage MAIL FROM reply 421 4.3.2' "$work/out" &&
	grep -q '^result CONN ' "$work/out" && ! grep -q '^RSET' "$flog"; then
	ok "421 mid-session: temporary, the session ends, the next send fails at once"
else
	bad "421 mid-session: rc $frc: $(cat "$work/out" "$work/err")"
fi

fake closedata
ftool -P send a@example.test x@example.test "$work/f.eml"
if [ "$frc" = 1 ] && grep -q '^result CONN ' "$work/out"; then ok "connection closed mid-DATA: $(grep '^smtp-tool' "$work/err" | head -c 200)"
else bad "connection closed mid-DATA: rc $frc: $(cat "$work/out" "$work/err")"; fi

fake ok
ftool -P -A 20 send a@example.test x@example.test "$work/f.eml"
if [ "$frc" = 1 ] && grep -q '^result ABORTED stage body' "$work/out" && ! grep -qx $'.\r' "$flog"; then
	ok "reader failure mid-body: aborted, the data never ended with '.'"
else
	bad "reader failure: rc $frc: $(cat "$work/out" "$work/err"); server saw: $(cat "$flog")"
fi

# What goes on the wire: CRLF line ends (bare LF and bare CR converted), dot-stuffing,
# a final CRLF added, then ".".
fake ok
printf 'Subject: wire\n\na\rb\n.c\r\n..d\n.\r\rlast.' >"$work/wire.eml"
ftool -P send a@example.test x@example.test "$work/wire.eml"
if [ "$frc" = 0 ] && python3 - "$flog" <<'EOF'
import sys
log = open(sys.argv[1], "rb").read()
body = log[log.index(b"DATA\r\n") + 6:]
want = b"Subject: wire\r\n\r\na\r\nb\r\n..c\r\n...d\r\n..\r\n\r\nlast.\r\n.\r\n"
if not body.startswith(want):
    print("wire bytes %r\nexpected   %r" % (body[:len(want) + 20], want))
    sys.exit(1)
EOF
then ok "body on the wire: CRLF, dot-stuffed, final CRLF and '.'"
else bad "body on the wire: rc $frc: $(cat "$work/out" "$work/err")"; fi

fake xoauth2
ftool -P -m xoauth2 -t -u alice@example.test -w 'ya29.secret-token' login
if [ "$frc" = 1 ] && grep -q 'AUTH: .*refused (AUTH XOAUTH2): 535 5.7.8 .*"status":"401"' "$work/err" &&
	! grep -q 'secret-token' "$work/err" && ! grep -q "$(printf 'auth=Bearer ya29.secret-token' | base64 -w0 | cut -c1-20)" "$work/err"; then
	ok "XOAUTH2 error challenge answered, refusal reported, token not traced"
else
	bad "XOAUTH2: rc $frc: $(cat "$work/err"); server saw: $(cat "$flog")"
fi

fake xoauth2ok
ftool -P -m xoauth2 -t -u alice@example.test -w 'ya29.good-token' send a@example.test x@example.test "$work/f.eml"
if [ "$frc" = 0 ] && grep -q '^AUTH XOAUTH2 ' "$flog" && grep -q '^MAIL FROM:<a@example.test>' "$flog" &&
	! grep -q 'good-token' "$work/err"; then
	ok "XOAUTH2 accepted: initial response framed as the server expects, mail sent, token not traced"
else
	bad "XOAUTH2 success: rc $frc: $(cat "$work/out" "$work/err"); server saw: $(head -c 500 "$flog")"
fi

for mode in longline garbage mismatch silent; do
	fake "$mode"
	ftool -P -T 2000 send a@example.test x@example.test "$work/f.eml"
	if [ "$frc" = 1 ] && grep -q '^smtp-tool: .*[a-z]' "$work/err"; then ok "hostile server ($mode): $(head -c 200 "$work/err")"
	else bad "hostile server ($mode): exit status $frc: $(head -c 300 "$work/err")"; fi
done

finish
